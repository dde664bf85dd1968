/* VHDX sector bitmaps as a writer sees them ([MS-VHDX] 2.4): one bit per
 * logical sector of a chunk, bit 0 of byte 0 first; 1 = the sector is in
 * this file, 0 = read it from the parent.  Bits are numbered within their
 * chunk, so block b's sectors start at bit (b mod ChunkRatio) x
 * (BlockSize / LogicalSectorSize).
 *
 * Changes are made in a sector set (vhdx_sectors.h), which the caller
 * records (vhdx_pending.h) and which reaches the log after the data the new
 * bits describe is durable: a bit set before its sector's data is on disk would, after a
 * crash, show bytes that are neither the old nor the new content. */
#ifndef VDENGINE_VHDX_BITMAP_H
#define VDENGINE_VHDX_BITMAP_H

#include <stdint.h>

#include "disk/image.h"
#include "formats/vhdx/vhdx_sectors.h"

/* Sets bits [first, first + count) of the bitmap block at file offset
 * `block` to `value` in the set (loading its sectors, as zeros when the
 * block is `fresh`); *changed tells whether any bit was different. */
uint32_t vd_vhdx_bitmap_assign(vd_image *image, vd_vhdx_sector_set *set, uint64_t block, int fresh,
                               uint64_t first, uint64_t count, int value, int *changed);

/* Whether bits [first, first + count) are all set, as the set has them. */
uint32_t vd_vhdx_bitmap_all_set(vd_image *image, vd_vhdx_sector_set *set, uint64_t block, int fresh,
                                uint64_t first, uint64_t count, int *all);

/* The same question read from the file (with the recorded bits over it,
 * vhdx_pending.h), without holding the allocation lock: bits only go from
 * 0 to 1 while a block stays PARTIALLY_PRESENT, so a bit seen set stays set
 * (and is recorded, in the log or in place already). */
uint32_t vd_vhdx_bitmap_file_all_set(vd_image *image, uint64_t block, uint64_t first, uint64_t count,
                                     int *all);

/* An upper bound of the bitmap sectors bits [first, first + count) touch. */
uint64_t vd_vhdx_bitmap_sectors_spanned(uint64_t first, uint64_t count);

#endif
