/* VHDX sector bitmap bits (vhdx_bitmap.h). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_bitmap.h"

#include <stdlib.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_pending.h"

#define VD_VHDX_BITS_PER_SECTOR (UINT64_C(8) * VD_VHDX_LOG_SECTOR_SIZE)

/* The mask of the bits of byte `byte` inside [first, first + count). */
static uint8_t vd_vhdx_byte_mask(uint64_t byte, uint64_t first, uint64_t end)
{
    uint64_t low = byte * 8 < first ? first - byte * 8 : 0;
    uint64_t high = byte * 8 + 8 > end ? end - byte * 8 : 8;
    return (uint8_t)(((1u << high) - 1u) & ~((1u << low) - 1u));
}

uint64_t vd_vhdx_bitmap_sectors_spanned(uint64_t first, uint64_t count)
{
    if (count == 0)
        return 0;
    return (first + count - 1) / VD_VHDX_BITS_PER_SECTOR - first / VD_VHDX_BITS_PER_SECTOR + 1;
}

/* Visits the bytes of [first, first + count) sector by sector of the set;
 * `assign` < 0 only checks that every bit is set. */
static uint32_t vd_vhdx_bitmap_walk(vd_image *image, vd_vhdx_sector_set *set, uint64_t block, int fresh,
                                    uint64_t first, uint64_t count, int assign, int *result)
{
    uint64_t end = first + count;
    if (end > VD_VHDX_SECTORS_PER_CHUNK || end < first)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "sectors %" PRIu64 "+%" PRIu64 " lie outside a chunk's sector bitmap", first, count);
    *result = assign < 0;
    for (uint64_t bit = first; bit < end;) {
        uint64_t sector_first = bit / VD_VHDX_BITS_PER_SECTOR * VD_VHDX_BITS_PER_SECTOR;
        uint64_t sector_end = sector_first + VD_VHDX_BITS_PER_SECTOR < end ? sector_first + VD_VHDX_BITS_PER_SECTOR
                                                                             : end;
        vd_vhdx_sector *sector;
        uint32_t status = vd_vhdx_sectors_get(image, set, block + sector_first / 8, fresh, &sector);
        if (status != VD_ERROR_SUCCESS)
            return status;
        for (uint64_t byte = bit / 8; byte * 8 < sector_end; byte++) {
            uint8_t mask = vd_vhdx_byte_mask(byte, bit, sector_end);
            uint8_t *target = sector->data + (byte - sector_first / 8);
            if (assign < 0) {
                if ((*target & mask) != mask) {
                    *result = 0;
                    return VD_ERROR_SUCCESS;
                }
                continue;
            }
            uint8_t value = assign ? (uint8_t)(*target | mask) : (uint8_t)(*target & ~mask);
            if (value != *target) {
                *target = value;
                sector->dirty = 1;
                *result = 1;
            }
        }
        bit = sector_end;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_bitmap_assign(vd_image *image, vd_vhdx_sector_set *set, uint64_t block, int fresh,
                               uint64_t first, uint64_t count, int value, int *changed)
{
    return vd_vhdx_bitmap_walk(image, set, block, fresh, first, count, value != 0, changed);
}

uint32_t vd_vhdx_bitmap_all_set(vd_image *image, vd_vhdx_sector_set *set, uint64_t block, int fresh,
                                uint64_t first, uint64_t count, int *all)
{
    return vd_vhdx_bitmap_walk(image, set, block, fresh, first, count, -1, all);
}

uint32_t vd_vhdx_bitmap_file_all_set(vd_image *image, uint64_t block, uint64_t first, uint64_t count,
                                     int *all)
{
    uint64_t end = first + count;
    if (count == 0 || end > VD_VHDX_SECTORS_PER_CHUNK || end < first)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "sectors %" PRIu64 "+%" PRIu64 " lie outside a chunk's sector bitmap", first, count);
    uint64_t first_byte = first / 8, bytes = (end - 1) / 8 - first_byte + 1;
    uint8_t small[512];
    uint8_t *buffer = bytes <= sizeof small ? small : malloc((size_t)bytes);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_pending_read(image, block + first_byte, buffer, (size_t)bytes);
    *all = status == VD_ERROR_SUCCESS;
    for (uint64_t i = 0; *all && i < bytes; i++) {
        uint8_t mask = vd_vhdx_byte_mask(first_byte + i, first, end);
        *all = (buffer[i] & mask) == mask;
    }
    if (buffer != small)
        free(buffer);
    return status;
}
