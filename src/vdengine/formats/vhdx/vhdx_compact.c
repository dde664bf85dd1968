/* VHDX compact (CompactVirtualDisk V1, file-system agnostic), on [MS-VHDX]
 * 2.5.1 block states.  The content reads the same before and after; how:
 *
 *   scan (skipped with NO_ZERO_SCAN)   a FULLY_PRESENT block whose bytes
 *       are all zero leaves the file: UNMAPPED with FileOffsetMB 0 in a
 *       dynamic image (what unmap leaves), ZERO in a differencing one (the
 *       state whose reads MUST return zeros, whatever the parent holds, so
 *       no parent read is needed).  A PARTIALLY_PRESENT block leaves only
 *       where its bytes in the file are zero and the parent reads zeros
 *       over the whole block: every sector read zero before, ZERO keeps it.
 *   unmapped blocks   a ZERO block, or an UNMAPPED block of a dynamic
 *       image, that still names file space gets FileOffsetMB 0 (in a
 *       differencing image UNMAPPED may show older contents, so it stays).
 *   the freed space   without NO_BLOCK_MOVES, the payload blocks at the
 *       end of the file move down into the lowest gaps after the regions
 *       (header, log, BAT, metadata) and the sector bitmap blocks: the
 *       bytes are copied and flushed first, then the BAT entries change
 *       through the log, and the file is cut after the last block in use.
 *       With NO_BLOCK_MOVES, freed blocks become holes (PUNCH_HOLE) and
 *       the size stays.
 *
 * Each batch of BAT changes is one log transaction after the data it names
 * is durable; the log writer ends every transaction with a clean header
 * (LogGuid zero), so cutting the file afterwards leaves no log entry that
 * names the old size.  A crash or a cancel between batches leaves a valid
 * image with the content unchanged.  Content writes through the same handle
 * while a compact runs are the caller's to avoid: Windows requires the disk
 * detached or attached read-only. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/detail.h"
#include "base/bytes.h"
#include "base/vd_errors.h"
#include "disk/compact_space.h"
#include "disk/driver.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_pending.h"
#include "formats/vhdx/vhdx_sectors.h"
#include "formats/vhdx/vhdx_write_plan.h"
#include "host/file_copy.h"

/* BAT entries one transaction changes at most. */
#define VD_VHDX_COMPACT_BATCH 64u

typedef struct vd_vhdx_compact_run {
    vd_image *image;
    vd_vhdx_state *state;
    const vd_compact_request *request;
    uint8_t *buffer;              /* the zero scan's, one piece of a block */
    uint8_t *parent_buffer;       /* the parent's bytes of one block */
    uint64_t done, total;
    uint64_t unstarted;           /* moved since the writeback last started */
} vd_vhdx_compact_run;

typedef struct vd_vhdx_compact_batch {
    vd_vhdx_sector_set sectors;
    uint64_t index[VD_VHDX_COMPACT_BATCH], value[VD_VHDX_COMPACT_BATCH];
    vd_extent freed[VD_VHDX_COMPACT_BATCH];
    size_t count, freed_count;
} vd_vhdx_compact_batch;

static uint32_t vd_vhdx_compact_entry(vd_vhdx_compact_run *c, uint64_t index, uint64_t *entry)
{
    uint32_t status = vd_vhdx_bat_get(c->image, index, entry);
    if (status == VD_ERROR_SUCCESS && (*entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                         "BAT entry %" PRIu64 " has reserved bits set", index);
    return status;
}

/* The batch's entries through the log, then the holes. */
static uint32_t vd_vhdx_compact_commit(vd_vhdx_compact_run *c, vd_vhdx_compact_batch *batch, int punch)
{
    uint32_t status = VD_ERROR_SUCCESS;
    if (batch->count > 0)
        status = vd_vhdx_sectors_commit(c->image, &batch->sectors);
    for (size_t i = 0; i < batch->count && status == VD_ERROR_SUCCESS; i++)
        vd_vhdx_bat_set(c->image, batch->index[i], batch->value[i]);
    /* A hole that cannot be punched costs only space. */
    for (size_t i = 0; i < batch->freed_count && status == VD_ERROR_SUCCESS && punch; i++)
        (void)vd_file_zero_range(&c->image->file, batch->freed[i].start,
                                 batch->freed[i].end - batch->freed[i].start, 1);
    vd_vhdx_sectors_free(&batch->sectors);
    memset(batch, 0, sizeof *batch);
    return status;
}

static uint32_t vd_vhdx_compact_add(vd_vhdx_compact_run *c, vd_vhdx_compact_batch *batch, uint64_t index,
                                    uint64_t value)
{
    uint32_t status = vd_vhdx_sectors_set_entry(c->image, &batch->sectors, c->state->bat_offset, index, value);
    if (status == VD_ERROR_SUCCESS) {
        batch->index[batch->count] = index;
        batch->value[batch->count++] = value;
    }
    return status;
}

/* Whether a PARTIALLY_PRESENT block may become ZERO: its file bytes are
 * zero (found already) and the parent reads zeros. */
static uint32_t vd_vhdx_parent_zero(vd_vhdx_compact_run *c, uint64_t block, uint64_t bytes, int *zero)
{
    vd_image *parent = c->request->parent;
    *zero = 0;
    if (parent == NULL)
        return VD_ERROR_SUCCESS;
    uint64_t offset = block * c->state->block_size;
    if (offset + bytes > parent->virtual_size)
        return VD_ERROR_SUCCESS;
    uint32_t status = parent->ops->read(parent, NULL, offset, c->parent_buffer, bytes);
    if (status == VD_ERROR_SUCCESS)
        *zero = vd_bytes_zero(c->parent_buffer, (size_t)bytes);
    return status;
}

/* What the scan does with payload block `block`: *drop set with the new
 * entry in *value, the file space it held in *freed (end 0: none). */
static uint32_t vd_vhdx_compact_judge(vd_vhdx_compact_run *c, uint64_t block, uint64_t entry, int *drop,
                                      uint64_t *value, vd_extent *freed)
{
    vd_vhdx_state *state = c->state;
    uint32_t kind = (uint32_t)(entry & VD_VHDX_BAT_STATE_MASK);
    uint64_t bytes = vd_vhdx_block_bytes(state, block), place = entry >> VD_VHDX_BAT_OFFSET_SHIFT;
    int scan = (c->request->flags & COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN) == 0;
    uint64_t payload = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    *drop = 0;
    *freed = (vd_extent){ 0, 0 };
    switch (kind) {
    case VD_VHDX_PAYLOAD_ZERO:
    case VD_VHDX_PAYLOAD_UNMAPPED:
        if (place != 0 && (kind == VD_VHDX_PAYLOAD_ZERO || !state->differencing)) {
            *drop = 1;
            *value = kind;
            *freed = (vd_extent){ place * VD_VHDX_MIB, place * VD_VHDX_MIB + state->block_size };
        }
        return VD_ERROR_SUCCESS;
    case VD_VHDX_PAYLOAD_FULLY_PRESENT:
    case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
        if (!scan)
            return VD_ERROR_SUCCESS;
        break;
    default:
        return VD_ERROR_SUCCESS;
    }
    int zero = 0;
    status = vd_vhdx_payload_place(state, entry, bytes, &payload);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_range_zero(&c->image->file, payload, bytes, c->buffer, &zero);
    if (status != VD_ERROR_SUCCESS || !zero)
        return status;
    if (kind == VD_VHDX_PAYLOAD_PARTIALLY_PRESENT)
        status = vd_vhdx_parent_zero(c, block, bytes, &zero);
    if (status == VD_ERROR_SUCCESS && zero) {
        *drop = 1;
        *value = state->differencing ? VD_VHDX_PAYLOAD_ZERO : VD_VHDX_PAYLOAD_UNMAPPED;
        *freed = (vd_extent){ payload, payload + state->block_size };
    }
    return status;
}

static uint64_t vd_vhdx_payload_blocks(const vd_vhdx_state *state)
{
    return (state->virtual_size + state->block_size - 1) / state->block_size;
}

static void vd_vhdx_compact_progress(vd_vhdx_compact_run *c, uint64_t bytes)
{
    c->done += bytes;
    vd_operation_set_done(c->request->operation, c->done);
}

static uint32_t vd_vhdx_compact_scan(vd_vhdx_compact_run *c, int punch)
{
    vd_vhdx_state *state = c->state;
    vd_vhdx_compact_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    uint64_t blocks = vd_vhdx_payload_blocks(state);
    for (uint64_t block = 0; block < blocks && status == VD_ERROR_SUCCESS; block++) {
        if (vd_operation_cancelled(c->request->operation)) {
            status = VD_ERROR_OPERATION_ABORTED;
            break;
        }
        uint64_t index = vd_vhdx_payload_index(state, block), entry, value = 0;
        int drop = 0;
        vd_extent freed;
        status = vd_vhdx_compact_entry(c, index, &entry);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_compact_judge(c, block, entry, &drop, &value, &freed);
        if (status == VD_ERROR_SUCCESS && drop) {
            status = vd_vhdx_compact_add(c, batch, index, value);
            if (freed.end != 0)
                batch->freed[batch->freed_count++] = freed;
        }
        if (status == VD_ERROR_SUCCESS && batch->count == VD_VHDX_COMPACT_BATCH)
            status = vd_vhdx_compact_commit(c, batch, punch);
        vd_vhdx_compact_progress(c, vd_vhdx_block_bytes(state, block));
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_compact_commit(c, batch, punch);
    vd_vhdx_sectors_free(&batch->sectors);
    free(batch);
    return status;
}

/* ---- block moves */

typedef struct vd_vhdx_movable {
    uint64_t start, index, entry;
} vd_vhdx_movable;

static int vd_vhdx_movable_order(const void *a, const void *b)
{
    uint64_t x = ((const vd_vhdx_movable *)a)->start, y = ((const vd_vhdx_movable *)b)->start;
    return x > y ? -1 : x < y;   /* the last block first */
}

/* The regions and every block that names file space, and the payload
 * blocks among them (the ones that move). */
static uint32_t vd_vhdx_compact_layout(vd_vhdx_compact_run *c, vd_extent **extents, size_t *count,
                                       vd_vhdx_movable **movable, size_t *movable_count,
                                       uint64_t *floor)
{
    vd_vhdx_state *state = c->state;
    size_t capacity = (size_t)state->bat_entries + 1;
    *extents = malloc(capacity * sizeof **extents);
    *movable = malloc(capacity * sizeof **movable);
    *count = *movable_count = 0;
    if (*extents == NULL || *movable == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint64_t regions = VD_VHDX_HEADER_SECTION_SIZE;
    uint64_t ends[3] = { state->log_offset + state->log_length, state->bat_offset + state->bat_length,
                         state->metadata_offset + state->metadata_length };
    for (size_t i = 0; i < 3; i++)
        regions = ends[i] > regions ? ends[i] : regions;
    *floor = regions;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t index = 0; index < state->bat_entries && status == VD_ERROR_SUCCESS; index++) {
        uint64_t entry;
        status = vd_vhdx_compact_entry(c, index, &entry);
        uint64_t place = entry >> VD_VHDX_BAT_OFFSET_SHIFT;
        if (status != VD_ERROR_SUCCESS || place == 0)
            continue;
        int bitmap = (index + 1) % (state->chunk_ratio + 1) == 0;
        uint64_t start = place * VD_VHDX_MIB;
        uint64_t length = bitmap ? VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE : state->block_size;
        if (start < regions)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                             "BAT entry %" PRIu64 " points into the VHDX regions", index);
        (*extents)[(*count)++] = (vd_extent){ start, start + length };
        if (!bitmap)
            (*movable)[(*movable_count)++] = (vd_vhdx_movable){ start, index, entry };
    }
    vd_extents_sort(*extents, *count);
    for (size_t i = 1; i < *count && status == VD_ERROR_SUCCESS; i++)
        if ((*extents)[i].start < (*extents)[i - 1].end)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                             "two BAT entries share file space at offset %" PRIu64, (*extents)[i].start);
    if (*movable_count > 1)
        qsort(*movable, *movable_count, sizeof **movable, vd_vhdx_movable_order);
    return status;
}

/* A block's bytes to its new place; the last block of a file cut short
 * after its data has fewer. */
static uint32_t vd_vhdx_copy(vd_vhdx_compact_run *c, uint64_t from, uint64_t to)
{
    uint64_t length = c->state->block_size;
    if (from + length > c->image->file.size)
        length = c->image->file.size - from;
    uint32_t status = vd_file_copy_range(&c->image->file, from, to, length);
    /* The moved blocks reach the disk while later ones are copied, so the
     * batch's flush waits for little. */
    if (status == VD_ERROR_SUCCESS)
        vd_file_pace_writeback(&c->image->file, &c->unstarted, length);
    return status;
}

/* Moves blocks down in batches (copies, flush, logged entries), then cuts
 * the file after the last extent. */
static uint32_t vd_vhdx_compact_moves(vd_vhdx_compact_run *c)
{
    vd_vhdx_state *state = c->state;
    vd_extent *extents = NULL;
    vd_vhdx_movable *movable = NULL;
    size_t count = 0, movable_count = 0;
    uint64_t floor = 0;
    vd_vhdx_compact_batch *batch = calloc(1, sizeof *batch);
    uint32_t status = batch != NULL ? vd_vhdx_compact_layout(c, &extents, &count, &movable, &movable_count, &floor)
                                    : VD_ERROR_NOT_ENOUGH_MEMORY;
    c->total += (uint64_t)movable_count * state->block_size;
    vd_operation_set_total(c->request->operation, c->total);
    for (size_t i = 0; i < movable_count && status == VD_ERROR_SUCCESS; i++) {
        if (vd_operation_cancelled(c->request->operation)) {
            status = VD_ERROR_OPERATION_ABORTED;
            break;
        }
        uint64_t to = vd_extents_gap(extents, count, floor, state->block_size, VD_VHDX_MIB, 0,
                                     movable[i].start);
        if (to == 0)
            break;   /* the blocks below have no lower gap either */
        status = vd_vhdx_copy(c, movable[i].start, to);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_compact_add(c, batch, movable[i].index,
                                         (to / VD_VHDX_MIB) << VD_VHDX_BAT_OFFSET_SHIFT
                                             | (movable[i].entry & VD_VHDX_BAT_STATE_MASK));
        if (status == VD_ERROR_SUCCESS)
            vd_extents_move(extents, count, movable[i].start, to);
        if (status == VD_ERROR_SUCCESS && (batch->count == VD_VHDX_COMPACT_BATCH || i + 1 == movable_count)) {
            status = vd_vhdx_file_flush(c->image);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_compact_commit(c, batch, 0);
        }
        vd_vhdx_compact_progress(c, state->block_size);
    }
    /* The copies whose entries a cancel or a missing gap left uncommitted. */
    if (status == VD_ERROR_SUCCESS || status == VD_ERROR_OPERATION_ABORTED) {
        uint32_t flushed = batch->count > 0 ? vd_vhdx_file_flush(c->image) : VD_ERROR_SUCCESS;
        if (flushed == VD_ERROR_SUCCESS)
            flushed = vd_vhdx_compact_commit(c, batch, 0);
        if (flushed != VD_ERROR_SUCCESS)
            status = flushed;
    }
    if (status == VD_ERROR_SUCCESS) {
        uint64_t end = vd_extents_end(extents, count, floor);
        if (end < c->image->file.size) {
            atomic_store(&state->data_size, end);
            status = vd_file_set_size(&c->image->file, end);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_file_flush(c->image);
        }
    }
    if (batch != NULL)
        vd_vhdx_sectors_free(&batch->sectors);
    free(batch);
    free(extents);
    free(movable);
    return status;
}

uint32_t vd_vhdx_compact(vd_image *image, const vd_compact_request *request)
{
    vd_vhdx_state *state = image->format_state;
    if (state->replay != NULL || !image->file.writable)
        return VD_ERROR_ACCESS_DENIED;
    if (state->update_failure != VD_ERROR_SUCCESS)
        return state->update_failure;
    size_t scan = (size_t)(state->block_size < VD_FILE_ZERO_PIECE ? state->block_size : VD_FILE_ZERO_PIECE);
    vd_vhdx_compact_run c = { image, state, request, malloc(scan), malloc(state->block_size), 0,
                          vd_vhdx_payload_blocks(state) * state->block_size, 0 };
    uint32_t status = c.buffer != NULL && c.parent_buffer != NULL ? VD_ERROR_SUCCESS : VD_ERROR_NOT_ENOUGH_MEMORY;
    int moves = (request->flags & COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES) == 0;
    vd_operation_set_total(request->operation, c.total);
    pthread_mutex_lock(&state->allocation_lock);
    /* Block moves and truncation start from a file that holds every entry. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_pending_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_compact_scan(&c, !moves);
    if (status == VD_ERROR_SUCCESS && moves)
        status = vd_vhdx_compact_moves(&c);
    pthread_mutex_unlock(&state->allocation_lock);
    if (status == VD_ERROR_SUCCESS)
        vd_operation_set_done(request->operation, c.total);
    free(c.buffer);
    free(c.parent_buffer);
    return status;
}
