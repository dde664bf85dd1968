/* The planned VHDX write (vhdx_write.c describes the order and the block
 * states): first every block of the request is looked at and what it
 * needs is gathered -- data writes, new blocks, BAT entries, bitmap bits in
 * a sector set -- with nothing written; then the plan is carried out. */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_write_plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_bitmap.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_pending.h"
#include "formats/vhdx/vhdx_sectors.h"

#define VD_VHDX_PLAN_BLOCKS 64u

/* Bitmap sectors one plan may change: with the BAT sectors and the
 * descriptor sectors this stays well inside the smallest log (1 MiB, 256
 * sectors). */
#define VD_VHDX_PLAN_BITMAP_SECTORS 96u

typedef struct vd_vhdx_plan_write {
    uint64_t target;
    const uint8_t *data;
    uint64_t count;
} vd_vhdx_plan_write;

typedef struct vd_vhdx_plan_entry {
    uint64_t index, value;
} vd_vhdx_plan_entry;

typedef struct vd_vhdx_plan_chunk {
    uint64_t chunk, offset;
    int fresh;
} vd_vhdx_plan_chunk;

typedef struct vd_vhdx_plan {
    vd_vhdx_sector_set sectors;
    vd_vhdx_plan_write writes[VD_VHDX_PLAN_BLOCKS];
    size_t write_count;
    /* A payload and a bitmap entry per block at most. */
    vd_vhdx_plan_entry entries[2 * VD_VHDX_PLAN_BLOCKS];
    size_t entry_count;
    vd_vhdx_plan_chunk chunks[VD_VHDX_PLAN_BLOCKS];
    size_t chunk_count;
    uint64_t end;                 /* the file's end after the new blocks */
    int grows;
} vd_vhdx_plan;

static uint64_t vd_vhdx_round_mib(uint64_t value)
{
    return (value + VD_VHDX_MIB - 1) / VD_VHDX_MIB * VD_VHDX_MIB;
}

/* The entries reach sectors when the plan runs: the sectors they land in
 * depend on whether the plan is logged or deferred. */
static void vd_vhdx_plan_entry_set(vd_vhdx_plan *plan, uint64_t index, uint64_t value)
{
    plan->entries[plan->entry_count++] = (vd_vhdx_plan_entry){ index, value };
}

/* A new block of `bytes` at the end of the file. */
static uint32_t vd_vhdx_plan_block(vd_vhdx_state *state, vd_vhdx_plan *plan, uint64_t *offset)
{
    /* FileOffsetMB has 44 bits; past that the format cannot point. */
    if (plan->end / VD_VHDX_MIB >= (UINT64_C(1) << 44) || state->block_size > UINT64_MAX - plan->end)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE, "no room for a block at offset %" PRIu64 ": VHDX block offsets have 44 bits of MiB", plan->end);
    *offset = plan->end;
    plan->grows = 1;
    return VD_ERROR_SUCCESS;
}

/* The sector bitmap block of `chunk`: the present one, or (`allocate`) a
 * new one when the chunk has none. */
static uint32_t vd_vhdx_plan_bitmap(vd_image *image, vd_vhdx_state *state, vd_vhdx_plan *plan, uint64_t chunk,
                                    int allocate, vd_vhdx_plan_chunk **found)
{
    for (size_t i = 0; i < plan->chunk_count; i++) {
        if (plan->chunks[i].chunk == chunk) {
            *found = &plan->chunks[i];
            return VD_ERROR_SUCCESS;
        }
    }
    uint64_t index = chunk * (state->chunk_ratio + 1) + state->chunk_ratio, entry, offset;
    uint32_t status = vd_vhdx_bat_get(image, index, &entry);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if ((entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "sector bitmap BAT entry %" PRIu64 " has reserved bits set", index);
    int fresh = 0;
    if ((entry & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_SB_PRESENT) {
        status = vd_vhdx_payload_place(state, entry, VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE, &offset);
    } else if ((entry & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_SB_NOT_PRESENT && allocate) {
        /* 2.5.1.2: no block of a chunk without a bitmap may be partially
         * present; one that is would read its parent once bits exist. */
        uint64_t first = chunk * (state->chunk_ratio + 1);
        for (uint64_t i = first; i < index && status == VD_ERROR_SUCCESS; i++) {
            uint64_t payload;
            status = vd_vhdx_bat_get(image, i, &payload);
            if (status == VD_ERROR_SUCCESS
                && (payload & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_PAYLOAD_PARTIALLY_PRESENT)
                status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " is PARTIALLY_PRESENT in a chunk without a sector bitmap", i);
        }
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_plan_block(state, plan, &offset);
        if (status == VD_ERROR_SUCCESS) {
            plan->end += VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE;
            fresh = 1;
            vd_vhdx_plan_entry_set(plan, index, offset / VD_VHDX_MIB << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_SB_PRESENT);
        }
    } else {
        status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "sector bitmap BAT entry %" PRIu64 " has the state %u", index, (unsigned)(entry & VD_VHDX_BAT_STATE_MASK));
    }
    if (status != VD_ERROR_SUCCESS)
        return status;
    plan->chunks[plan->chunk_count] = (vd_vhdx_plan_chunk){ chunk, offset, fresh };
    *found = &plan->chunks[plan->chunk_count++];
    return VD_ERROR_SUCCESS;
}

/* Bits for [within, within + count) of `block`: set (and, for a block
 * that was not present, every other bit of the block cleared); a
 * PARTIALLY_PRESENT block left with every bit set becomes FULLY_PRESENT. */
static uint32_t vd_vhdx_plan_bits(vd_image *image, vd_vhdx_state *state, vd_vhdx_plan *plan, uint64_t block,
                                  uint64_t payload, int was_present, uint64_t within, uint64_t count)
{
    vd_vhdx_plan_chunk *chunk;
    uint32_t status = vd_vhdx_plan_bitmap(image, state, plan, block / state->chunk_ratio, !was_present, &chunk);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t sector = state->logical_sector_size, first = vd_vhdx_chunk_bit(state, block);
    uint64_t offset = chunk->offset;
    int fresh = chunk->fresh, changed = 0, all = 0;
    if (!was_present && !fresh)
        status = vd_vhdx_bitmap_assign(image, &plan->sectors, offset, 0, first, state->block_size / sector, 0,
                                       &changed);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_bitmap_assign(image, &plan->sectors, offset, fresh, first + within / sector,
                                       count / sector, 1, &changed);
    if (status == VD_ERROR_SUCCESS && was_present && changed)
        status = vd_vhdx_bitmap_all_set(image, &plan->sectors, offset, fresh, first,
                                        vd_vhdx_block_bytes(state, block) / sector, &all);
    uint64_t kind = was_present && all ? VD_VHDX_PAYLOAD_FULLY_PRESENT : VD_VHDX_PAYLOAD_PARTIALLY_PRESENT;
    if (status == VD_ERROR_SUCCESS && (!was_present || all))
        vd_vhdx_plan_entry_set(plan, vd_vhdx_payload_index(state, block),
                               payload / VD_VHDX_MIB << VD_VHDX_BAT_OFFSET_SHIFT | kind);
    return status;
}

/* What block `block` needs for the bytes [within, within + count). */
static uint32_t vd_vhdx_plan_one(vd_image *image, vd_vhdx_state *state, vd_vhdx_plan *plan, uint64_t block,
                                 uint64_t within, uint64_t count, const uint8_t *data)
{
    uint64_t index = vd_vhdx_payload_index(state, block), entry, payload;
    uint64_t bytes = vd_vhdx_block_bytes(state, block);
    uint32_t status = vd_vhdx_bat_get(image, index, &entry);
    if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has reserved bits set", index);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint32_t kind = (uint32_t)(entry & VD_VHDX_BAT_STATE_MASK);
    int whole = within == 0 && count == bytes;
    switch (kind) {
    case VD_VHDX_PAYLOAD_FULLY_PRESENT:
        status = vd_vhdx_payload_place(state, entry, bytes, &payload);
        break;
    case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
        if (!state->differencing)
            return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " is PARTIALLY_PRESENT in an image without a parent", index);
        status = vd_vhdx_payload_place(state, entry, bytes, &payload);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_plan_bits(image, state, plan, block, payload, 1, within, count);
        break;
    case VD_VHDX_PAYLOAD_NOT_PRESENT:
    case VD_VHDX_PAYLOAD_UNDEFINED:
    case VD_VHDX_PAYLOAD_ZERO:
    case VD_VHDX_PAYLOAD_UNMAPPED:
        if (state->differencing && kind == VD_VHDX_PAYLOAD_NOT_PRESENT && !whole) {
            /* The bitmap block first, so that a refusal there allocates
             * nothing. */
            vd_vhdx_plan_chunk *chunk;
            status = vd_vhdx_plan_bitmap(image, state, plan, block / state->chunk_ratio, 1, &chunk);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_plan_block(state, plan, &payload);
            if (status == VD_ERROR_SUCCESS) {
                plan->end += state->block_size;
                status = vd_vhdx_plan_bits(image, state, plan, block, payload, 0, within, count);
            }
            break;
        }
        status = vd_vhdx_plan_block(state, plan, &payload);
        if (status == VD_ERROR_SUCCESS) {
            plan->end += state->block_size;
            vd_vhdx_plan_entry_set(plan, index,
                                   payload / VD_VHDX_MIB << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT);
        }
        break;
    default:
        status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has the reserved state %u", index, (unsigned)kind);
    }
    if (status == VD_ERROR_SUCCESS)
        plan->writes[plan->write_count++] = (vd_vhdx_plan_write){ payload + within, data, count };
    return status;
}

/* Step 3 of vhdx_write.c: the plan's sector bitmap sectors and BAT entries
 * join the record (vhdx_pending.h), bits before the entries that make
 * them live; the record is committed first when the plan would take it
 * past its limit, and afterwards when it is full. */
static uint32_t vd_vhdx_plan_defer(vd_image *image, vd_vhdx_state *state, vd_vhdx_plan *plan)
{
    uint32_t status = VD_ERROR_SUCCESS;
    if (vd_vhdx_pending_no_room(state, vd_vhdx_sectors_dirty(&plan->sectors) + plan->entry_count))
        status = vd_vhdx_pending_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_pending_take(image, state, &plan->sectors);
    for (size_t i = 0; i < plan->entry_count && status == VD_ERROR_SUCCESS; i++)
        status = vd_vhdx_pending_set(image, state, plan->entries[i].index, plan->entries[i].value);
    if (status == VD_ERROR_SUCCESS && vd_vhdx_pending_full(state))
        status = vd_vhdx_pending_commit(image);
    return status;
}

/* Steps 1-3 of vhdx_write.c for a plan. */
static uint32_t vd_vhdx_plan_run(vd_image *image, vd_vhdx_state *state, vd_vhdx_plan *plan)
{
    int metadata = plan->entry_count > 0 || vd_vhdx_sectors_dirty(&plan->sectors) > 0;
    uint32_t status = metadata || plan->grows ? vd_vhdx_update_blocked(image) : VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS && plan->grows)
        status = vd_file_set_size(&image->file, plan->end);
    for (size_t i = 0; i < plan->write_count && status == VD_ERROR_SUCCESS; i++)
        status = vd_file_write(&image->file, plan->writes[i].target, plan->writes[i].data,
                               (size_t)plan->writes[i].count);
    if (status != VD_ERROR_SUCCESS)
        return status;   /* ENOSPC is DISK_FULL (io.c); the old entries stand */
    if (plan->grows)
        state->data_size = plan->end;
    return metadata ? vd_vhdx_plan_defer(image, state, plan) : VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_write_planned(vd_image *image, vd_vhdx_state *state, uint64_t offset, const uint8_t *data,
                               uint64_t length, int visible, uint64_t *done)
{
    vd_vhdx_plan *plan = calloc(1, sizeof *plan);
    if (plan == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint64_t file_end = image->file.size > state->data_size ? image->file.size : state->data_size;
    plan->end = vd_vhdx_round_mib(file_end);
    uint64_t position = 0, sector = state->logical_sector_size;
    uint32_t status = VD_ERROR_SUCCESS;
    while (position < length && plan->write_count < VD_VHDX_PLAN_BLOCKS) {
        uint64_t at = offset + position;
        uint64_t block = at / state->block_size, within = at % state->block_size;
        uint64_t count = state->block_size - within < length - position ? state->block_size - within
                                                                        : length - position;
        /* A block's bits, at worst every bit of the block, must fit the
         * plan's bitmap budget; the first block always fits. */
        uint64_t worst = state->differencing
                       ? vd_vhdx_bitmap_sectors_spanned(vd_vhdx_chunk_bit(state, block), state->block_size / sector)
                       : 0;
        if (plan->write_count > 0 && vd_vhdx_sectors_dirty(&plan->sectors) + worst > VD_VHDX_PLAN_BITMAP_SECTORS)
            break;
        status = vd_vhdx_plan_one(image, state, plan, block, within, count, data + position);
        if (status != VD_ERROR_SUCCESS)
            break;
        position += count;
    }
    /* A refusal drops the whole plan: it may hold bits of the refused
     * block already, and nothing of a failed write has to be new.  So
     * damage anywhere in the plan's reach leaves the file as it was, the
     * header included. */
    if (status == VD_ERROR_SUCCESS && plan->write_count > 0) {
        status = visible ? vd_vhdx_data_write_guid(image, state) : VD_ERROR_SUCCESS;
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_plan_run(image, state, plan);
    }
    vd_vhdx_sectors_free(&plan->sectors);
    free(plan);
    *done = position;
    return status;
}
