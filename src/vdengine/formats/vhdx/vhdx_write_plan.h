/* What the VHDX content writers share (vhdx_write.c, vhdx_write_plan.c,
 * vhdx_unmap.c): where a block lies, the once-per-open DataWriteGuid, and
 * the planned write that runs under the allocation lock. */
#ifndef VDENGINE_VHDX_WRITE_PLAN_H
#define VDENGINE_VHDX_WRITE_PLAN_H

#include <stdint.h>

#include "disk/image.h"
#include "formats/vhdx/vhdx_internal.h"

/* Where the block of BAT value `entry` lies, checked against every
 * structure a write must never overwrite (header section, log, BAT,
 * metadata region) and the end of the file; `bytes` of it are used.
 * VHD_BLOCK_ALLOCATION_TABLE_CORRUPT otherwise, and for reserved bits. */
uint32_t vd_vhdx_payload_place(const vd_vhdx_state *state, uint64_t entry, uint64_t bytes, uint64_t *offset);

/* Once per open, before the first user-visible data change: a header with
 * a new DataWriteGuid (2.2.2).  Under the allocation lock. */
uint32_t vd_vhdx_data_write_guid(vd_image *image, vd_vhdx_state *state);

/* Bytes of virtual block `block` inside the disk (the last may be short). */
uint64_t vd_vhdx_block_bytes(const vd_vhdx_state *state, uint64_t block);

/* The chunk bitmap bit of block `block`'s first sector. */
static inline uint64_t vd_vhdx_chunk_bit(const vd_vhdx_state *state, uint64_t block)
{
    return (block % state->chunk_ratio) * (state->block_size / state->logical_sector_size);
}

/* The write of [offset, offset + length) from the first block on, as far
 * as one plan reaches (64 blocks, a bounded number of bitmap sectors);
 * *done = the bytes handled.  Damage in any block the plan reaches is
 * refused with nothing written.  `visible`: the bytes are user-visible
 * data, so the DataWriteGuid changes first (not for bytes past the
 * virtual size, which a grow's own zeros are).  The caller holds the
 * allocation lock. */
uint32_t vd_vhdx_write_planned(vd_image *image, vd_vhdx_state *state, uint64_t offset, const uint8_t *data,
                               uint64_t length, int visible, uint64_t *done);

#endif
