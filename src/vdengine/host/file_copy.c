/* Copies through a buffer, within a file or between two (file_copy.h). */
#include "host/file_copy.h"

#include <stdlib.h>

#include "base/vd_errors.h"

#define VD_FILE_COPY_PIECE ((uint64_t)1 << 20)

uint32_t vd_file_copy_range(const vd_file *file, uint64_t from, uint64_t to, uint64_t length)
{
    return vd_file_copy_between(file, from, file, to, length);
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
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t done = 0; done < length && status == VD_ERROR_SUCCESS;) {
        size_t piece = (size_t)(length - done < capacity ? length - done : capacity);
        status = vd_file_read(source, from + done, buffer, piece);
        if (status == VD_ERROR_SUCCESS)
            status = vd_file_write(destination, to + done, buffer, piece);
        done += piece;
    }
    free(buffer);
    return status;
}
