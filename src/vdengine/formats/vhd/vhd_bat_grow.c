/* Making room for a dynamic VHD's BAT to grow where it is (vhd_resize.c's
 * grow, when Max Table Entries' sectors do not hold the new entries).
 *
 * The table keeps its offset and grows over the space that follows it, up
 * to `to`.  When the footer copy, the dynamic header or a parent locator's
 * data lies there, nothing is written and *room is 0: the caller writes a
 * new table where blocks are appended instead.  Otherwise the blocks in the
 * way (sector bitmap and data) move past the data's end and past `to`,
 * their data on a 4 KiB boundary as appended blocks have it, and the end
 * footer moves after them:
 *
 *   1. a copy of the (old) end footer at the new end of the file, then the
 *      bytes of every block in the way at its new place; flush.  Until an
 *      entry changes this is unused space, and the old footer copy at 0
 *      stays what it was.  With no block in the way the flush is left to
 *      the caller's next one: until then a crash may lose the copy while
 *      the caller's table overwrites the old end footer, and open takes
 *      the copy at 0, which still holds the old footer: the old disk.
 *   2. each moved block's BAT entry (4 bytes, inside one sector: a sector
 *      write switches it whole); flush (none when no block moved).  After any prefix every block is
 *      at its old place or its new one, both holding the same bytes: the
 *      old disk.
 *
 * Afterwards the space between the table and `to` is unused (the old
 * places and perhaps the old footer's sector); the caller writes the new
 * entries there before the header that names them.  The image's view of
 * the table follows each entry, so writes through the same handle find the
 * moved blocks even when a later step fails.
 *
 * Cancellation is honoured before each block's copy in step 1, so that a
 * cancel ends within one block move (OPERATION_ABORTED): what step 1 wrote
 * is flushed, no entry has changed, and the image is the old disk with its
 * end footer at the new end of the file.  Progress counts the bytes moved
 * (the operation clamps it to its total, the new size); the checkpoint
 * before each copy is also where the engine's test hold stops a resize
 * after a given number of moved bytes.  It runs under the disk's lock,
 * which neither a cancel nor GetVirtualDiskOperationProgress takes. */
#include "formats/vhd/vhd_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "api/operation.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "host/file_copy.h"

#define VD_VHD_BAT_GROW_ALIGNMENT 4096u

static uint64_t vd_vhd_grow_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

static int vd_vhd_meets(uint64_t start, uint64_t end, uint64_t from, uint64_t to)
{
    return start < to && end > from;
}

/* Whether a structure other than the BAT meets [from, to). */
static uint32_t vd_vhd_structure_in_way(const vd_image *image, const vd_vhd_state *state, uint64_t from,
                                        uint64_t to, int *in_way)
{
    vd_vhd_extent structures[VD_VHD_STRUCTURE_MAX];
    size_t count = 0;
    uint32_t status = vd_vhd_structures(image, state, structures, &count);
    *in_way = 0;
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++)
        if (structures[i].start != state->table_offset
            && vd_vhd_meets(structures[i].start, structures[i].end, from, to))
            *in_way = 1;
    return status;
}

/* The indexes of the blocks that meet [from, to), in *moved. */
static uint32_t vd_vhd_blocks_in_way(const vd_vhd_state *state, const vd_vhd_entry *table, uint64_t from,
                                     uint64_t to, uint32_t **moved, size_t *count)
{
    uint64_t span = (uint64_t)state->bitmap_size + state->block_size;
    *count = 0;
    *moved = malloc(((size_t)state->table_entries + 1) * sizeof **moved);
    if (*moved == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    for (uint32_t i = 0; i < state->table_entries; i++) {
        uint32_t sector = atomic_load(&table[i]);
        uint64_t start = (uint64_t)sector * VD_VHD_SECTOR_SIZE;
        if (sector != VD_VHD_BAT_UNALLOCATED && vd_vhd_meets(start, start + span, from, to))
            (*moved)[(*count)++] = i;
    }
    return VD_ERROR_SUCCESS;
}

/* Step 1: the blocks' bytes from `next` on, then the footer copy after
 * them; their new sectors in `sectors`.  A cancel before a block's copy
 * stops the copies; what was written is flushed all the same. */
static uint32_t vd_vhd_copy_blocks(vd_image *image, const vd_vhd_state *state, const vd_vhd_entry *table,
                                   const uint32_t *moved, size_t count, uint64_t next,
                                   const uint8_t footer[VD_VHD_FOOTER_SIZE], uint32_t *sectors,
                                   vd_operation *operation)
{
    uint64_t span = (uint64_t)state->bitmap_size + state->block_size;
    for (size_t i = 0; i < count; i++) {
        uint64_t start = vd_vhd_grow_up(next + state->bitmap_size, VD_VHD_BAT_GROW_ALIGNMENT) - state->bitmap_size;
        if (start / VD_VHD_SECTOR_SIZE >= VD_VHD_BAT_UNALLOCATED)
            return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE,
                           "a VHD block at offset %" PRIu64 " is past what a BAT entry can name", start);
        sectors[i] = (uint32_t)(start / VD_VHD_SECTOR_SIZE);
        next = start + span;
    }
    uint32_t status = vd_file_write(&image->file, next, footer, VD_VHD_FOOTER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    image->file.size = next + VD_VHD_FOOTER_SIZE;
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        if (vd_operation_checkpoint(operation)) {
            status = VD_ERROR_OPERATION_ABORTED;
            break;
        }
        status = vd_file_copy_range(&image->file, (uint64_t)atomic_load(&table[moved[i]]) * VD_VHD_SECTOR_SIZE,
                                    (uint64_t)sectors[i] * VD_VHD_SECTOR_SIZE, span);
        if (status == VD_ERROR_SUCCESS)
            vd_operation_set_done(operation, (uint64_t)(i + 1) * span);
    }
    if (status != VD_ERROR_SUCCESS && status != VD_ERROR_OPERATION_ABORTED)
        return status;
    /* With no block to move, nothing names the new place before the
     * caller's own flush: the footer copy waits for it (vhd_resize.c). */
    if (count == 0)
        return status;
    uint32_t flushed = vd_file_flush(&image->file);
    return flushed != VD_ERROR_SUCCESS ? flushed : status;
}

/* Step 2. */
static uint32_t vd_vhd_point_blocks(vd_image *image, vd_vhd_state *state, vd_vhd_entry *table,
                                    const uint32_t *moved, const uint32_t *sectors, size_t count)
{
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        uint8_t raw[VD_VHD_BAT_ENTRY_SIZE];
        vd_store_be32(raw, sectors[i]);
        status = vd_file_write(&image->file, state->table_offset + (uint64_t)moved[i] * VD_VHD_BAT_ENTRY_SIZE, raw,
                               sizeof raw);
        if (status == VD_ERROR_SUCCESS)
            atomic_store(&table[moved[i]], sectors[i]);
    }
    return status == VD_ERROR_SUCCESS && count > 0 ? vd_file_flush(&image->file) : status;
}

uint32_t vd_vhd_bat_make_room(vd_image *image, uint64_t from, uint64_t to, uint64_t data_end,
                              const uint8_t footer[VD_VHD_FOOTER_SIZE], vd_operation *operation, int *room)
{
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table = NULL;
    int in_way = 0;
    *room = 0;
    uint32_t status = vd_vhd_structure_in_way(image, state, from, to, &in_way);
    if (status == VD_ERROR_SUCCESS && !in_way)
        status = vd_vhd_table(state, &image->file, &table);
    if (status != VD_ERROR_SUCCESS || in_way)
        return status;
    pthread_mutex_lock(&state->lock);
    uint32_t *moved = NULL, *sectors = NULL;
    size_t count = 0;
    status = vd_vhd_blocks_in_way(state, table, from, to, &moved, &count);
    if (status == VD_ERROR_SUCCESS && (count > 0 || to > data_end)) {
        sectors = malloc((count + 1) * sizeof *sectors);
        status = sectors == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY
                                 : vd_vhd_copy_blocks(image, state, table, moved, count,
                                                      vd_vhd_grow_up(data_end > to ? data_end : to,
                                                                     VD_VHD_SECTOR_SIZE),
                                                      footer, sectors, operation);
        /* The end footer is at the file's new end once its copy is
         * written, whether or not the moves finished: appended blocks go
         * after it. */
        if (image->file.size > atomic_load(&state->file_end))
            atomic_store(&state->file_end, image->file.size);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhd_point_blocks(image, state, table, moved, sectors, count);
    }
    pthread_mutex_unlock(&state->lock);
    free(moved);
    free(sectors);
    *room = status == VD_ERROR_SUCCESS;
    return status;
}
