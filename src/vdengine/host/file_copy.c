/* Copies within a file, in the kernel where it can, and through a buffer,
 * within a file or between two (file_copy.h). */
#define _GNU_SOURCE   /* copy_file_range */

#include "host/file_copy.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/vd_errors.h"

#define VD_FILE_COPY_PIECE ((uint64_t)1 << 20)

uint32_t vd_file_copy_in_kernel(const vd_file *source, uint64_t from, const vd_file *destination,
                                uint64_t to, uint64_t length, uint64_t *copied)
{
    *copied = 0;
#if defined(__linux__)
    while (*copied < length) {
#ifdef VD_FAULT_INJECTION
        if (vd_fault_stops_here())
            return VD_ERROR_WRITE_FAULT;
#endif
        loff_t in = (loff_t)(from + *copied), out = (loff_t)(to + *copied);
        size_t piece = length - *copied < ((size_t)1 << 30) ? (size_t)(length - *copied)
                                                            : ((size_t)1 << 30);
        ssize_t done = copy_file_range(source->fd, &in, destination->fd, &out, piece, 0);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP
                || errno == ENOTSUP)
                return VD_ERROR_SUCCESS;
            return vd_error_from_errno(errno);
        }
        /* Some file systems answer 0 before the source's end (a virtual
         * file, a network one): the caller's pread + pwrite then copies
         * the rest, or finds the real end. */
        if (done == 0)
            return VD_ERROR_SUCCESS;
        *copied += (uint64_t)done;
    }
#else
    (void)source, (void)from, (void)destination, (void)to, (void)length;
#endif
    return VD_ERROR_SUCCESS;
}

uint32_t vd_file_copy_range(const vd_file *file, uint64_t from, uint64_t to, uint64_t length)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!file->writable)
        return VD_ERROR_ACCESS_DENIED;
    if (length > (uint64_t)INT64_MAX || from > (uint64_t)INT64_MAX - length
        || to > (uint64_t)INT64_MAX - length)
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    uint64_t copied = 0;
    uint32_t status = vd_file_copy_in_kernel(file, from, file, to, length, &copied);
    if (status != VD_ERROR_SUCCESS || copied == length)
        return status;
    return vd_file_copy_between(file, from + copied, file, to + copied, length - copied);
}

uint32_t vd_file_copy_through(const vd_file *source, uint64_t from, const vd_file *destination,
                              uint64_t to, uint64_t length, void *buffer, size_t capacity)
{
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t done = 0; done < length && status == VD_ERROR_SUCCESS;) {
        size_t piece = (size_t)(length - done < capacity ? length - done : capacity);
        status = vd_file_read(source, from + done, buffer, piece);
        if (status == VD_ERROR_SUCCESS)
            status = vd_file_write(destination, to + done, buffer, piece);
        done += piece;
    }
    return status;
}

uint32_t vd_file_copy_between(const vd_file *source, uint64_t from, const vd_file *destination,
                              uint64_t to, uint64_t length)
{
    if (length == 0)
        return VD_ERROR_SUCCESS;
    size_t capacity = (size_t)(length < VD_FILE_COPY_PIECE ? length : VD_FILE_COPY_PIECE);
    uint8_t *buffer = malloc(capacity);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_file_copy_through(source, from, destination, to, length, buffer,
                                           capacity);
    free(buffer);
    return status;
}
