/* VHD compact (CompactVirtualDisk V1, file-system agnostic) of dynamic and
 * differencing disks.  VHD has no state between "allocated" and "not
 * allocated": a block leaves the file by getting its BAT entry back to
 * 0xFFFFFFFF, and the content reads the same before and after.
 *
 *   which blocks leave   a block whose sector bitmap marks no sector
 *       present holds nothing (it reads zeros, or the parent's sectors):
 *       it always leaves.  With the zero scan (not NO_ZERO_SCAN) also
 *       a dynamic block whose data bytes are all zero, and a
 *       differencing block whose present sectors hold zeros where the
 *       parent reads zeros too: after it leaves, every sector reads the
 *       parent, which is what it read before.  An all-zero child block
 *       over a parent that holds data stays, since it hides that data.
 *       Without the parent (a handle opened with NO_PARENTS) only the
 *       empty-bitmap rule applies.  With NO_ZERO_SCAN no data is read, so
 *       a dynamic disk written by Windows or this engine (they mark every
 *       sector of a dynamic block) gives back only space no block uses.
 *   dropping   the entries are written, flushed, and only then (with
 *       NO_BLOCK_MOVES) the blocks' space becomes a hole (PUNCH_HOLE).
 *   block moves (without NO_BLOCK_MOVES)   the blocks at the end of the
 *       file move, last first, into the lowest gaps that hold a bitmap and
 *       a whole block with the data on a 4 KiB boundary, as blocks are
 *       appended: each batch's bitmaps and data are copied and flushed,
 *       then its BAT entries are written and flushed.  Last, the footer is
 *       written after the last block in use, flushed, and the file is cut
 *       after it.  The copy of the footer at offset 0 is never written.
 *
 * Every step leaves an image that opens and reads the old content: a copy
 * lies in space no entry names until its entry is written, and a moved
 * block's old place is reused only by a later batch, after its new entry
 * is durable (gaps are searched below the block being moved, and blocks
 * move in descending order).  Until the cut the old end footer stays the
 * one open trusts.  A cancel stops between blocks; a batch not yet
 * committed is left behind as unused space. */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/endian.h"
#include "base/bytes.h"
#include "base/vd_errors.h"
#include "disk/compact_space.h"
#include "disk/driver.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"
#include "host/file_copy.h"

/* BAT entries one flush covers at most. */
#define VD_VHD_COMPACT_BATCH 64u
/* Where moved blocks' data starts, as vhd_write.c appends them. */
#define VD_VHD_COMPACT_ALIGNMENT 4096u

typedef struct vd_vhd_compact_run {
    vd_image *image;
    vd_vhd_state *state;
    const vd_compact_request *request;
    vd_vhd_entry *table;
    uint8_t *buffer;              /* one block: bitmap then data */
    uint8_t *parent_buffer;       /* the parent's bytes of one block */
    uint64_t data_end;            /* where blocks end: the end footer */
    uint64_t done, total;
    uint64_t unstarted;           /* moved since the writeback last started */
} vd_vhd_compact_run;

/* BAT changes waiting for one flush. */
typedef struct vd_vhd_compact_batch {
    uint32_t block[VD_VHD_COMPACT_BATCH], value[VD_VHD_COMPACT_BATCH];
    size_t count;
} vd_vhd_compact_batch;

static uint64_t vd_vhd_compact_span(const vd_vhd_compact_run *c)
{
    return (uint64_t)c->state->bitmap_size + c->state->block_size;
}

/* The file bytes a block at sector `entry` occupies, cut at the data end. */
static vd_extent vd_vhd_compact_place(const vd_vhd_compact_run *c, uint32_t entry)
{
    uint64_t start = (uint64_t)entry * VD_VHD_SECTOR_SIZE, end = start + vd_vhd_compact_span(c);
    return (vd_extent){ start, end < c->data_end ? end : c->data_end };
}

/* Writes the batch's entries, flushes, and then the engine's table follows;
 * with `punch` the dropped blocks' space becomes holes. */
static uint32_t vd_vhd_compact_commit(vd_vhd_compact_run *c, vd_vhd_compact_batch *batch, int punch)
{
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t i = 0; i < batch->count && status == VD_ERROR_SUCCESS; i++) {
        uint8_t raw[VD_VHD_BAT_ENTRY_SIZE];
        vd_store_be32(raw, batch->value[i]);
        status = vd_file_write(&c->image->file,
                               c->state->table_offset + (uint64_t)batch->block[i] * VD_VHD_BAT_ENTRY_SIZE,
                               raw, sizeof raw);
    }
    if (status == VD_ERROR_SUCCESS && batch->count > 0)
        status = vd_file_flush(&c->image->file);
    for (size_t i = 0; i < batch->count && status == VD_ERROR_SUCCESS; i++) {
        uint32_t block = batch->block[i];
        uint32_t old = atomic_load_explicit(&c->table[block], memory_order_relaxed);
        atomic_store_explicit(&c->table[block], batch->value[i], memory_order_release);
        if (batch->value[i] != VD_VHD_BAT_UNALLOCATED)
            continue;
        atomic_store_explicit(&vd_vhd_flags_of(c->state)[block], VD_VHD_BITS_UNKNOWN,
                              memory_order_release);
        /* A hole that cannot be punched costs only space. */
        vd_extent freed = vd_vhd_compact_place(c, old);
        if (punch && freed.end > freed.start)
            (void)vd_file_zero_range(&c->image->file, freed.start, freed.end - freed.start, 1);
    }
    batch->count = 0;
    return status;
}

static int vd_vhd_compact_bit(const uint8_t *bitmap, uint32_t sector)
{
    return bitmap[sector / 8] >> (7 - sector % 8) & 1;   /* MSB first */
}

/* The parent's content of block `block` (`bytes` long) into
 * c->parent_buffer, zeros past a smaller parent's end. */
static uint32_t vd_vhd_compact_parent(vd_vhd_compact_run *c, uint32_t block, uint64_t bytes)
{
    vd_image *parent = c->request->parent;
    uint64_t offset = (uint64_t)block * c->state->block_size, from_parent = 0;
    if (offset < parent->virtual_size)
        from_parent = parent->virtual_size - offset < bytes ? parent->virtual_size - offset : bytes;
    memset(c->parent_buffer + from_parent, 0, (size_t)(bytes - from_parent));
    return from_parent > 0 ? parent->ops->read(parent, NULL, offset, c->parent_buffer, from_parent)
                           : VD_ERROR_SUCCESS;
}

/* Whether every present sector of a differencing block holds zeros where
 * the parent reads zeros (the block's data is in c->buffer already). */
static uint32_t vd_vhd_compact_child_zero(vd_vhd_compact_run *c, uint32_t block, uint32_t sectors,
                                          int *zero)
{
    const uint8_t *bitmap = c->buffer, *data = c->buffer + c->state->bitmap_size;
    *zero = 0;
    if (c->request->parent == NULL)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhd_compact_parent(c, block, (uint64_t)sectors * VD_VHD_SECTOR_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    for (uint32_t s = 0; s < sectors; s++) {
        size_t at = (size_t)s * VD_VHD_SECTOR_SIZE;
        if (vd_vhd_compact_bit(bitmap, s)
            && (!vd_bytes_zero(data + at, VD_VHD_SECTOR_SIZE)
                || !vd_bytes_zero(c->parent_buffer + at, VD_VHD_SECTOR_SIZE)))
            return VD_ERROR_SUCCESS;
    }
    *zero = 1;
    return VD_ERROR_SUCCESS;
}

/* Whether allocated block `block` at sector `entry` may leave the file
 * (the file comment's rules). */
static uint32_t vd_vhd_compact_judge(vd_vhd_compact_run *c, uint32_t block, uint32_t entry, int *drop)
{
    vd_vhd_state *state = c->state;
    uint64_t bytes = vd_vhd_block_bytes(c->image, state, block);
    uint32_t sectors = (uint32_t)(bytes / VD_VHD_SECTOR_SIZE);
    uint64_t at = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
    *drop = 0;
    uint32_t status = vd_file_read(&c->image->file, at, c->buffer, state->bitmap_size);
    if (status != VD_ERROR_SUCCESS)
        return status;
    int marked = 0;
    for (uint32_t s = 0; s < sectors && !marked; s++)
        marked = vd_vhd_compact_bit(c->buffer, s);
    if (!marked || (c->request->flags & COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN) != 0) {
        *drop = !marked;
        return VD_ERROR_SUCCESS;
    }
    uint8_t *data = c->buffer + state->bitmap_size;
    if (c->image->subtype != VD_SUBTYPE_DIFFERENCING)
        return vd_file_range_zero(&c->image->file, at + state->bitmap_size, bytes, data, drop);
    status = vd_file_read(&c->image->file, at + state->bitmap_size, data, (size_t)bytes);
    if (status != VD_ERROR_SUCCESS)
        return status;
    return vd_vhd_compact_child_zero(c, block, sectors, drop);
}

static void vd_vhd_compact_progress(vd_vhd_compact_run *c, uint64_t bytes)
{
    c->done += bytes;
    vd_operation_set_done(c->request->operation, c->done);
}

static uint32_t vd_vhd_compact_scan(vd_vhd_compact_run *c, vd_vhd_compact_batch *batch, int punch)
{
    vd_vhd_state *state = c->state;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint32_t block = 0; block < state->table_entries && status == VD_ERROR_SUCCESS; block++) {
        if (vd_operation_cancelled(c->request->operation))
            return VD_ERROR_OPERATION_ABORTED;
        uint32_t entry = atomic_load_explicit(&c->table[block], memory_order_relaxed);
        int drop = 0;
        if (entry != VD_VHD_BAT_UNALLOCATED)
            status = vd_vhd_compact_judge(c, block, entry, &drop);
        if (status == VD_ERROR_SUCCESS && drop) {
            batch->block[batch->count] = block;
            batch->value[batch->count++] = VD_VHD_BAT_UNALLOCATED;
        }
        if (status == VD_ERROR_SUCCESS && batch->count == VD_VHD_COMPACT_BATCH)
            status = vd_vhd_compact_commit(c, batch, punch);
        vd_vhd_compact_progress(c, vd_vhd_block_bytes(c->image, state, block));
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_compact_commit(c, batch, punch);
    return status;
}

/* ---- block moves */

typedef struct vd_vhd_movable {
    uint64_t start;
    uint32_t block;
} vd_vhd_movable;

static int vd_vhd_movable_order(const void *a, const void *b)
{
    uint64_t x = ((const vd_vhd_movable *)a)->start, y = ((const vd_vhd_movable *)b)->start;
    return x > y ? -1 : x < y;   /* the last block first */
}

/* The structures and the allocated blocks as used file space, and the
 * blocks (the ones that move), last first; each block may move, so the
 * progress total grows by a block each.  The BAT check of the write path
 * made sure none of them overlap. */
static uint32_t vd_vhd_compact_layout(vd_vhd_compact_run *c, vd_extent **extents, size_t *count,
                                      vd_vhd_movable **movable, size_t *movable_count)
{
    vd_vhd_state *state = c->state;
    size_t capacity = (size_t)state->table_entries + VD_VHD_STRUCTURE_MAX;
    *extents = malloc(capacity * sizeof **extents);
    *movable = malloc(((size_t)state->table_entries + 1) * sizeof **movable);
    *count = *movable_count = 0;
    if (*extents == NULL || *movable == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_vhd_extent structures[VD_VHD_STRUCTURE_MAX];
    size_t structure_count = 0;
    uint32_t status = vd_vhd_structures(c->image, state, structures, &structure_count);
    for (size_t i = 0; i < structure_count && status == VD_ERROR_SUCCESS; i++)
        (*extents)[(*count)++] = (vd_extent){ structures[i].start, structures[i].end };
    for (uint32_t block = 0; block < state->table_entries && status == VD_ERROR_SUCCESS; block++) {
        uint32_t entry = atomic_load_explicit(&c->table[block], memory_order_relaxed);
        if (entry == VD_VHD_BAT_UNALLOCATED)
            continue;
        vd_extent place = vd_vhd_compact_place(c, entry);
        (*extents)[(*count)++] = place;
        (*movable)[(*movable_count)++] = (vd_vhd_movable){ place.start, block };
    }
    vd_extents_sort(*extents, *count);
    if (*movable_count > 1)
        qsort(*movable, *movable_count, sizeof **movable, vd_vhd_movable_order);
    c->total += (uint64_t)*movable_count * state->block_size;
    vd_operation_set_total(c->request->operation, c->total);
    return status;
}

/* A block's bitmap and data to `to`; a block the data end cuts short
 * (written so by another tool) has fewer bytes to copy. */
static uint32_t vd_vhd_compact_copy(vd_vhd_compact_run *c, uint64_t from, uint64_t to)
{
    uint64_t length = vd_vhd_compact_span(c);
    if (from + length > c->data_end)
        length = c->data_end - from;
    uint32_t status = vd_file_copy_range(&c->image->file, from, to, length);
    /* The moved blocks reach the disk while later ones are copied, so the
     * batch's flush waits for little. */
    if (status == VD_ERROR_SUCCESS)
        vd_file_pace_writeback(&c->image->file, &c->unstarted, length);
    return status;
}

/* The footer after the last block in use, flushed, then the file cut after
 * it: until the cut, the old end footer is the one open finds. */
static uint32_t vd_vhd_compact_cut(vd_vhd_compact_run *c, const uint8_t footer[VD_VHD_FOOTER_SIZE],
                                   uint64_t last_end)
{
    uint64_t end = (last_end + VD_VHD_SECTOR_SIZE - 1) / VD_VHD_SECTOR_SIZE * VD_VHD_SECTOR_SIZE;
    if (end + VD_VHD_FOOTER_SIZE > c->data_end)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_file_write(&c->image->file, end, footer, VD_VHD_FOOTER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(&c->image->file);
    if (status == VD_ERROR_SUCCESS) {
        atomic_store_explicit(&c->state->file_end, end + VD_VHD_FOOTER_SIZE, memory_order_release);
        status = vd_file_set_size(&c->image->file, end + VD_VHD_FOOTER_SIZE);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(&c->image->file);
    return status;
}

static uint32_t vd_vhd_compact_moves(vd_vhd_compact_run *c, vd_vhd_compact_batch *batch,
                                     const uint8_t footer[VD_VHD_FOOTER_SIZE])
{
    vd_vhd_state *state = c->state;
    vd_extent *extents = NULL;
    vd_vhd_movable *movable = NULL;
    size_t count = 0, movable_count = 0;
    uint32_t status = vd_vhd_compact_layout(c, &extents, &count, &movable, &movable_count);
    for (size_t i = 0; i < movable_count && status == VD_ERROR_SUCCESS; i++) {
        if (vd_operation_cancelled(c->request->operation)) {
            status = VD_ERROR_OPERATION_ABORTED;
            break;
        }
        uint64_t to = vd_extents_gap(extents, count, VD_VHD_FOOTER_SIZE, vd_vhd_compact_span(c),
                                     VD_VHD_COMPACT_ALIGNMENT, state->bitmap_size, movable[i].start);
        if (to == 0)
            break;   /* the blocks below have no lower gap either */
        status = vd_vhd_compact_copy(c, movable[i].start, to);
        if (status == VD_ERROR_SUCCESS) {
            batch->block[batch->count] = movable[i].block;
            batch->value[batch->count++] = (uint32_t)(to / VD_VHD_SECTOR_SIZE);
            vd_extents_move(extents, count, movable[i].start, to);
        }
        int last = i + 1 == movable_count;
        if (status == VD_ERROR_SUCCESS && (batch->count == VD_VHD_COMPACT_BATCH || last)) {
            status = vd_file_flush(&c->image->file);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhd_compact_commit(c, batch, 0);
        }
        vd_vhd_compact_progress(c, state->block_size);
    }
    /* The copies a missing gap left without their entries. */
    if (status == VD_ERROR_SUCCESS && batch->count > 0) {
        status = vd_file_flush(&c->image->file);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhd_compact_commit(c, batch, 0);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_compact_cut(c, footer, vd_extents_end(extents, count, VD_VHD_FOOTER_SIZE));
    free(extents);
    free(movable);
    return status;
}

uint32_t vd_vhd_compact(vd_image *image, const vd_compact_request *request)
{
    vd_vhd_state *state = image->format_state;
    if (!image->file.writable)
        return VD_ERROR_ACCESS_DENIED;
    uint32_t status = vd_vhd_ready(image, state);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhd_compact_run c = { image, state, request,
                             atomic_load_explicit(&state->table, memory_order_acquire),
                             malloc((size_t)state->bitmap_size + state->block_size),
                             malloc(state->block_size), 0, 0, image->virtual_size, 0 };
    vd_vhd_compact_batch *batch = calloc(1, sizeof *batch);
    if (c.buffer == NULL || c.parent_buffer == NULL || batch == NULL)
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    int moves = (request->flags & COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES) == 0;
    vd_operation_set_total(request->operation, c.total);
    pthread_mutex_lock(&state->lock);
    uint8_t footer[VD_VHD_FOOTER_SIZE];
    /* Blocks move and entries change one by one: none may wait behind. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_commit_locked(image, state);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_data_end(image, footer, &c.data_end);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_compact_scan(&c, batch, !moves);
    if (status == VD_ERROR_SUCCESS && moves)
        status = vd_vhd_compact_moves(&c, batch, footer);
    pthread_mutex_unlock(&state->lock);
    if (status == VD_ERROR_SUCCESS)
        vd_operation_set_done(request->operation, c.total);
    free(batch);
    free(c.buffer);
    free(c.parent_buffer);
    return status;
}
