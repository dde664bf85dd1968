/* The sector comparison behind merges and mirrors (write_differences.h). */
#include "disk/write_differences.h"

#include <string.h>

#include "base/vd_errors.h"

uint32_t vd_write_differences(vd_image *target, uint64_t offset, const uint8_t *wanted,
                              uint8_t *scratch, uint64_t length, uint64_t *written)
{
    uint32_t status = target->ops->read(target, NULL, offset, scratch, length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    const uint64_t sector = target->logical_sector_size;
    uint64_t at = 0;
    while (at < length) {
        while (at < length && memcmp(wanted + at, scratch + at, sector) == 0)
            at += sector;
        uint64_t run = at;
        while (run < length && memcmp(wanted + run, scratch + run, sector) != 0)
            run += sector;
        if (run > at) {
            status = target->ops->write(target, offset + at, wanted + at, run - at);
            if (status != VD_ERROR_SUCCESS)
                return status;
            *written += run - at;
        }
        at = run;
    }
    return VD_ERROR_SUCCESS;
}
