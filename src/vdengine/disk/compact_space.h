/* Free space inside an image file, for the block moves of a compact
 * (formats/vhd/vhd_compact.c, formats/vhdx/vhdx_compact.c): the file's used
 * byte ranges, and the lowest gap between them that a block fits in. */
#ifndef VDENGINE_COMPACT_SPACE_H
#define VDENGINE_COMPACT_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "host/io.h"

typedef struct vd_extent {
    uint64_t start, end;
} vd_extent;

/* Sorts `extents` by start. */
void vd_extents_sort(vd_extent *extents, size_t count);

/* The lowest start s >= floor with (s + bias) % align == 0 such that
 * [s, s + size) meets none of the sorted `extents` and ends at or before
 * `limit`; 0 when there is none (no block starts at offset 0). */
uint64_t vd_extents_gap(const vd_extent *extents, size_t count, uint64_t floor, uint64_t size,
                        uint64_t align, uint64_t bias, uint64_t limit);

/* Replaces the extent that starts at `old_start` with one at `new_start`
 * of the same length and keeps the list sorted. */
void vd_extents_move(vd_extent *extents, size_t count, uint64_t old_start, uint64_t new_start);

/* The end of the last extent (`floor` when there is none beyond it). */
uint64_t vd_extents_end(const vd_extent *extents, size_t count, uint64_t floor);

/* Whether the file's bytes [offset, offset + length) are all zero, read in
 * pieces of VD_FILE_ZERO_PIECE into `buffer` (at least that long, or
 * `length` when shorter): a piece read stays in the CPU cache for its test,
 * and a block of data is told apart by its first piece, not read whole.
 * Holes of the file (host/file_holes.h) read zeros and are not read.
 * *zero is set on success; the buffer's content is left unspecified. */
#define VD_FILE_ZERO_PIECE ((uint64_t)1 << 20)
uint32_t vd_file_range_zero(const vd_file *file, uint64_t offset, uint64_t length,
                            uint8_t *buffer, int *zero);

#endif
