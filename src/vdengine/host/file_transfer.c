/* Copies from an image's file into another file (file_transfer.h). */
#define _GNU_SOURCE   /* SEEK_DATA / SEEK_HOLE */

#include "host/file_transfer.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "host/file_copy.h"
#include "host/file_holes.h"

void vd_file_transfer_begin(vd_file_transfer *transfer, int fd)
{
    memset(transfer, 0, sizeof *transfer);
    transfer->destination.fd = fd;
    transfer->destination.writable = 1;
#if defined(__linux__)
    transfer->kernel_copy = 1;
#endif
}

uint32_t vd_file_transfer_write(vd_file_transfer *transfer, uint64_t to, const void *buffer,
                                size_t length)
{
    return vd_file_write(&transfer->destination, to, buffer, length);
}

/* A run of `source` that holds data (no hole inside it). */
static uint32_t vd_file_transfer_data(vd_file_transfer *transfer, const vd_file *source,
                                      uint64_t from, uint64_t to, uint64_t length)
{
    uint64_t copied = 0;
    if (transfer->kernel_copy) {
        uint32_t status = vd_file_copy_in_kernel(source, from, &transfer->destination, to, length,
                                                 &copied);
        if (status != VD_ERROR_SUCCESS || copied == length)
            return status;
        transfer->kernel_copy = 0;   /* refused: the pread + pwrite way from now on */
    }
    /* The pread + pwrite way. */
    return vd_file_copy_between(source, from + copied, &transfer->destination, to + copied,
                                length - copied);
}

uint32_t vd_file_transfer_copy(vd_file_transfer *transfer, const vd_file *source, uint64_t from,
                               uint64_t to, uint64_t length)
{
    if (!vd_file_may_have_holes(source))
        return vd_file_transfer_data(transfer, source, from, to, length);
    uint64_t end = from + length;
    uint64_t position = from;
    while (position < end) {
        uint64_t data = position, hole = end;
#if defined(SEEK_DATA) && defined(SEEK_HOLE)
        /* Holes of the source are skipped as cp skips them; a file system
         * that cannot tell has none (EINVAL: all data). */
        off_t found = lseek(source->fd, (off_t)position, SEEK_DATA);
        if (found < 0 && errno == ENXIO)
            return VD_ERROR_SUCCESS;   /* only a hole up to the file's end */
        if (found >= 0) {
            data = (uint64_t)found;
            if (data >= end)
                return VD_ERROR_SUCCESS;
            off_t next_hole = lseek(source->fd, found, SEEK_HOLE);
            if (next_hole >= 0 && (uint64_t)next_hole < end)
                hole = (uint64_t)next_hole;
        }
#endif
        uint32_t status = vd_file_transfer_data(transfer, source, data, to + (data - from),
                                                hole - data);
        if (status != VD_ERROR_SUCCESS)
            return status;
        position = hole;
    }
    return VD_ERROR_SUCCESS;
}
