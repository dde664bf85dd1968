/* Gap search for compact block moves (compact_space.h).  The lists are a
 * few thousand extents at most (one per allocated block), so a linear walk
 * per move keeps the code plain. */
#include "disk/compact_space.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/vd_errors.h"
#include "host/file_holes.h"

static int vd_extent_order(const void *a, const void *b)
{
    uint64_t x = ((const vd_extent *)a)->start, y = ((const vd_extent *)b)->start;
    return x < y ? -1 : x > y;
}

void vd_extents_sort(vd_extent *extents, size_t count)
{
    if (count > 1)
        qsort(extents, count, sizeof *extents, vd_extent_order);
}

static uint64_t vd_align_up(uint64_t value, uint64_t align, uint64_t bias)
{
    uint64_t r = (value + bias) % align;
    return r == 0 ? value : value + (align - r);
}

uint64_t vd_extents_gap(const vd_extent *extents, size_t count, uint64_t floor, uint64_t size,
                        uint64_t align, uint64_t bias, uint64_t limit)
{
    uint64_t candidate = vd_align_up(floor, align, bias);
    for (size_t i = 0; i <= count; i++) {
        if (candidate + size > limit)
            return 0;
        if (i == count || candidate + size <= extents[i].start)
            return candidate;
        if (extents[i].end > candidate)
            candidate = vd_align_up(extents[i].end, align, bias);
    }
    return 0;
}

void vd_extents_move(vd_extent *extents, size_t count, uint64_t old_start, uint64_t new_start)
{
    for (size_t i = 0; i < count; i++) {
        if (extents[i].start == old_start) {
            extents[i].end = new_start + (extents[i].end - extents[i].start);
            extents[i].start = new_start;
            break;
        }
    }
    vd_extents_sort(extents, count);
}

uint64_t vd_extents_end(const vd_extent *extents, size_t count, uint64_t floor)
{
    uint64_t end = floor;
    for (size_t i = 0; i < count; i++)
        if (extents[i].end > end)
            end = extents[i].end;
    return end;
}


uint32_t vd_file_range_zero(const vd_file *file, uint64_t offset, uint64_t length,
                            uint8_t *buffer, int *zero)
{
    *zero = 1;
    uint64_t end = offset + length;
    int holes = vd_file_may_have_holes(file);
    for (uint64_t at = offset; at < end;) {
        /* A hole reads zeros: only the data after it is read. */
        if (holes && (at = vd_file_next_data(file, at, end)) == end)
            break;
        size_t piece = (size_t)(end - at < VD_FILE_ZERO_PIECE ? end - at : VD_FILE_ZERO_PIECE);
        uint32_t status = vd_file_read(file, at, buffer, piece);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (!vd_bytes_zero(buffer, piece)) {
            *zero = 0;
            break;
        }
        at += piece;
    }
    return VD_ERROR_SUCCESS;
}
