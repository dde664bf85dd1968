/* VHDX unmap ([MS-VHDX] 2.5.1.1): what SCSI UNMAP and WRITE SAME with the
 * UNMAP bit reach.  Afterwards every unmapped sector reads zeros, in every
 * image type, so the SCSI target reports LBPRZ; how:
 *
 *   whole blocks of a dynamic image    FULLY_PRESENT becomes UNMAPPED with
 *       FileOffsetMB 0 (the state Windows leaves after a trim), through
 *       the log; blocks that read zeros already (NOT_PRESENT, UNDEFINED,
 *       ZERO, UNMAPPED) stay as they are.
 *   whole blocks of a differencing image   FULLY_PRESENT, PARTIALLY_PRESENT
 *       and NOT_PRESENT become ZERO (FileOffsetMB 0).  ZERO is the state
 *       whose reads MUST return zeros; UNMAPPED may also read "the contents
 *       of the block immediately before", which for a block the child never
 *       held is the parent's, and an unmapped sector must not show the
 *       parent again.
 *   whole blocks of a fixed image      stay FULLY_PRESENT (an implementation
 *       "cannot transition blocks to these states in fixed VHDX files",
 *       footnote <6>) and are zeroed in place with their space kept.
 *   part of a block                    a FULLY_PRESENT block is zeroed in
 *       place; the sectors of a differencing block the child does not hold
 *       whole (NOT_PRESENT, PARTIALLY_PRESENT) get zeros written through the
 *       write path (vhdx_write.c), which sets their bitmap bits; blocks
 *       that read zeros already are left alone.
 *
 * A block that leaves the file (FileOffsetMB 0) gives its space back to the
 * host: a hole is punched once the logged entry is in place.  The space is
 * not reused by later allocations (new blocks go to the end of the file).
 * A crash before the log entry is durable leaves the old blocks, after it
 * the new states; zeroing in place is a data write, each sector old or
 * zero. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_sectors.h"
#include "formats/vhdx/vhdx_write_plan.h"

/* Blocks one unmap transaction changes at most (a few BAT sectors). */
#define VD_VHDX_UNMAP_BLOCKS 1024u

typedef struct vd_vhdx_range64 {
    uint64_t offset, length;
} vd_vhdx_range64;

typedef struct vd_vhdx_unmap_batch {
    vd_vhdx_sector_set sectors;
    uint64_t index[VD_VHDX_UNMAP_BLOCKS], value[VD_VHDX_UNMAP_BLOCKS];
    size_t entry_count;
    vd_vhdx_range64 zero[VD_VHDX_UNMAP_BLOCKS];      /* zeroed in place */
    size_t zero_count;
    vd_vhdx_range64 freed[VD_VHDX_UNMAP_BLOCKS];     /* punched after the log */
    size_t freed_count;
} vd_vhdx_unmap_batch;

enum vd_vhdx_unmap_action { VD_VHDX_UNMAP_NOTHING, VD_VHDX_UNMAP_STATE, VD_VHDX_UNMAP_ZERO_IN_PLACE,
                            VD_VHDX_UNMAP_WRITE_ZEROS };

/* What unmapping [within, within + count) of a block in `kind` takes. */
static uint32_t vd_vhdx_unmap_action(const vd_image *image, const vd_vhdx_state *state, uint32_t kind, int whole,
                                     uint64_t *new_kind, int *action)
{
    int fixed = image->subtype == VD_SUBTYPE_FIXED;
    *action = VD_VHDX_UNMAP_NOTHING;
    switch (kind) {
    case VD_VHDX_PAYLOAD_FULLY_PRESENT:
        *action = whole && !fixed ? VD_VHDX_UNMAP_STATE : VD_VHDX_UNMAP_ZERO_IN_PLACE;
        break;
    case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
        if (!state->differencing)
            return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "a BAT entry is PARTIALLY_PRESENT in an image without a parent");
        *action = whole ? VD_VHDX_UNMAP_STATE : VD_VHDX_UNMAP_WRITE_ZEROS;
        break;
    case VD_VHDX_PAYLOAD_NOT_PRESENT:
        if (state->differencing)
            *action = whole ? VD_VHDX_UNMAP_STATE : VD_VHDX_UNMAP_WRITE_ZEROS;
        break;
    case VD_VHDX_PAYLOAD_UNDEFINED:
    case VD_VHDX_PAYLOAD_ZERO:
    case VD_VHDX_PAYLOAD_UNMAPPED:
        break;
    default:
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "a BAT entry has the reserved state %u", (unsigned)kind);
    }
    *new_kind = state->differencing ? VD_VHDX_PAYLOAD_ZERO : VD_VHDX_PAYLOAD_UNMAPPED;
    return VD_ERROR_SUCCESS;
}

/* Zeroing in place, the new states through the log, then the holes. */
static uint32_t vd_vhdx_unmap_run(vd_image *image, vd_vhdx_state *state, vd_vhdx_unmap_batch *batch)
{
    if (batch->zero_count == 0 && batch->entry_count == 0)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhdx_data_write_guid(image, state);
    int keep = image->subtype == VD_SUBTYPE_FIXED;
    for (size_t i = 0; i < batch->zero_count && status == VD_ERROR_SUCCESS; i++)
        status = vd_file_zero_range(&image->file, batch->zero[i].offset, batch->zero[i].length, !keep);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_commit(image, &batch->sectors);
    if (status != VD_ERROR_SUCCESS)
        return status;
    for (size_t i = 0; i < batch->entry_count; i++)
        vd_vhdx_bat_set(image, batch->index[i], batch->value[i]);
    /* Free space now: a hole that cannot be punched only costs space. */
    for (size_t i = 0; i < batch->freed_count; i++)
        (void)vd_file_zero_range(&image->file, batch->freed[i].offset, batch->freed[i].length, 1);
    return VD_ERROR_SUCCESS;
}

/* Under the allocation lock: the blocks from `offset` on up to the first
 * that needs zeros written (*write_zeros then set) or the batch limit;
 * *done = the bytes handled. */
static uint32_t vd_vhdx_unmap_locked(vd_image *image, vd_vhdx_state *state, uint64_t offset, uint64_t length,
                                     uint64_t *done, int *write_zeros)
{
    vd_vhdx_unmap_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint64_t position = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    *write_zeros = 0;
    for (size_t blocks = 0; position < length && blocks < VD_VHDX_UNMAP_BLOCKS; blocks++) {
        uint64_t at = offset + position;
        uint64_t block = at / state->block_size, within = at % state->block_size;
        uint64_t count = state->block_size - within < length - position ? state->block_size - within
                                                                        : length - position;
        uint64_t bytes = vd_vhdx_block_bytes(state, block);
        uint64_t index = vd_vhdx_payload_index(state, block), entry, payload = 0, new_kind = 0;
        int action = VD_VHDX_UNMAP_NOTHING;
        status = vd_vhdx_bat_get(image, index, &entry);
        if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has reserved bits set", index);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_unmap_action(image, state, (uint32_t)(entry & VD_VHDX_BAT_STATE_MASK),
                                          within == 0 && count == bytes, &new_kind, &action);
        uint32_t kind = (uint32_t)(entry & VD_VHDX_BAT_STATE_MASK);
        int present = kind == VD_VHDX_PAYLOAD_FULLY_PRESENT || kind == VD_VHDX_PAYLOAD_PARTIALLY_PRESENT;
        if (status == VD_ERROR_SUCCESS && present)
            status = vd_vhdx_payload_place(state, entry, bytes, &payload);
        if (status != VD_ERROR_SUCCESS)
            break;
        if (action == VD_VHDX_UNMAP_WRITE_ZEROS) {
            *write_zeros = 1;
            break;
        }
        if (action == VD_VHDX_UNMAP_ZERO_IN_PLACE) {
            batch->zero[batch->zero_count++] = (vd_vhdx_range64){ payload + within, count };
        } else if (action == VD_VHDX_UNMAP_STATE) {
            /* 2.5.1.1: FileOffsetMB 0 for ZERO (Hyper-V reads nothing else)
             * and for UNMAPPED, which then holds no old contents. */
            status = vd_vhdx_sectors_set_entry(image, &batch->sectors, state->bat_offset, index, new_kind);
            if (status != VD_ERROR_SUCCESS)
                break;
            batch->index[batch->entry_count] = index;
            batch->value[batch->entry_count++] = new_kind;
            if (present)
                batch->freed[batch->freed_count++] = (vd_vhdx_range64){ payload, bytes };
        }
        position += count;
    }
    /* Damage refuses the batch with nothing changed. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_unmap_run(image, state, batch);
    vd_vhdx_sectors_free(&batch->sectors);
    free(batch);
    *done = position;
    return status;
}

/* Zeros through the write path, for the sectors of one block. */
static uint32_t vd_vhdx_write_zeros(vd_image *image, uint64_t offset, uint64_t length)
{
    const uint64_t piece = VD_VHDX_MIB;
    uint8_t *zeros = calloc(1, (size_t)(length < piece ? length : piece));
    if (zeros == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    while (length > 0 && status == VD_ERROR_SUCCESS) {
        uint64_t count = length < piece ? length : piece;
        status = vd_vhdx_write(image, offset, zeros, count);
        offset += count;
        length -= count;
    }
    free(zeros);
    return status;
}

uint32_t vd_vhdx_unmap(vd_image *image, uint64_t offset, uint64_t length)
{
    vd_vhdx_state *state = image->format_state;
    if (state->replay != NULL || !image->file.writable)
        return VD_ERROR_ACCESS_DENIED;
    if (offset > state->virtual_size || length > state->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    while (length > 0) {
        uint64_t done = 0;
        int write_zeros = 0;
        pthread_mutex_lock(&state->allocation_lock);
        uint32_t status = vd_vhdx_unmap_locked(image, state, offset, length, &done, &write_zeros);
        pthread_mutex_unlock(&state->allocation_lock);
        if (status == VD_ERROR_SUCCESS && write_zeros) {
            /* The piece of the block the batch stopped at. */
            uint64_t at = offset + done, within = at % state->block_size;
            uint64_t count = state->block_size - within < length - done ? state->block_size - within
                                                                       : length - done;
            status = vd_vhdx_write_zeros(image, at, count);
            done += count;
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
        offset += done;
        length -= done;
    }
    return VD_ERROR_SUCCESS;
}
