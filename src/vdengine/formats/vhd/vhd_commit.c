/* Deferred BAT commits of dynamic and differencing VHDs: vhd_write.c's
 * allocation records the blocks it appends, this file writes their BAT
 * entries.
 *
 * An allocation writes its blocks' bitmaps and data behind the moved end
 * footer and stores their entries in the in-memory table, which the reads
 * and writes of this open use at once; the file's BAT does not name the
 * blocks yet.  The commit makes them part of the image:
 *
 *   1. flush: every new block's bitmap and data (and the file's grown
 *      size) are durable before anything on disk points at them;
 *   2. the BAT sectors that hold pending entries, taken from the in-memory
 *      table (their other entries are what the file holds already), each
 *      run of consecutive sectors one write of up to 4 KiB, the last
 *      sector cut at the disk's last entry.
 *
 * A crash before 2 leaves the old entries: the new blocks are unused space
 * in front of a valid footer, every sector reads its old content, and the
 * next allocation appends after them.  A crash inside 2 leaves each entry
 * old or new, and every new one names a block that is durable.  Making the
 * entries themselves durable is the caller's flush (the flush op flushes
 * again after the commit).
 *
 * Who commits: the flush op, an allocation that would take the record
 * past VD_VHD_PENDING_MAX, the release of a writable image, and every
 * operation that reads the BAT from the file, rewrites it or moves blocks
 * (resize, compact, merge, the update ops).  A failed commit keeps the
 * record, so the next one writes the same entries again: their values do
 * not change while they wait, since only allocation stores into an entry
 * that names no block, and the operations that change others commit
 * first. */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhd/vhd_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "base/vd_errors.h"

#define VD_VHD_ENTRIES_PER_SECTOR (VD_VHD_SECTOR_SIZE / VD_VHD_BAT_ENTRY_SIZE)
/* BAT sectors one write takes at most: a sequential run of
 * VD_VHD_PENDING_MAX blocks in one write. */
#define VD_VHD_COMMIT_SECTORS 8u

static int vd_vhd_block_order(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Entries [first, end) of `table`, big-endian, at their place in the BAT. */
static uint32_t vd_vhd_commit_entries(vd_image *image, const vd_vhd_state *state,
                                      const vd_vhd_entry *table, uint32_t first, uint32_t end)
{
    uint8_t raw[VD_VHD_COMMIT_SECTORS * VD_VHD_SECTOR_SIZE];
    for (uint32_t i = first; i < end; i++)
        vd_store_be32(raw + (size_t)(i - first) * VD_VHD_BAT_ENTRY_SIZE,
                      atomic_load_explicit(&table[i], memory_order_relaxed));
    return vd_file_write(&image->file, state->table_offset + (uint64_t)first * VD_VHD_BAT_ENTRY_SIZE,
                         raw, (size_t)(end - first) * VD_VHD_BAT_ENTRY_SIZE);
}

uint32_t vd_vhd_commit_locked(vd_image *image, vd_vhd_state *state)
{
    if (state->pending_count == 0)
        return VD_ERROR_SUCCESS;
    const vd_vhd_entry *table = atomic_load_explicit(&state->table, memory_order_acquire);
    uint32_t status = vd_file_flush(&image->file);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint32_t sorted[VD_VHD_PENDING_MAX];
    uint32_t count = state->pending_count;
    memcpy(sorted, state->pending, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, vd_vhd_block_order);
    uint32_t i = 0;
    while (i < count && status == VD_ERROR_SUCCESS) {
        /* One run: the sectors from this entry's on, while each next
         * pending entry lies in the run's last sector or the one after. */
        uint32_t first_sector = sorted[i] / VD_VHD_ENTRIES_PER_SECTOR;
        uint32_t last_sector = first_sector;
        while (i < count) {
            uint32_t sector = sorted[i] / VD_VHD_ENTRIES_PER_SECTOR;
            if (sector > last_sector + 1 || sector >= first_sector + VD_VHD_COMMIT_SECTORS)
                break;
            last_sector = sector;
            i++;
        }
        uint64_t end = (uint64_t)(last_sector + 1) * VD_VHD_ENTRIES_PER_SECTOR;
        if (end > state->table_entries)
            end = state->table_entries;
        status = vd_vhd_commit_entries(image, state, table, first_sector * VD_VHD_ENTRIES_PER_SECTOR,
                                       (uint32_t)end);
    }
    if (status == VD_ERROR_SUCCESS)
        state->pending_count = 0;
    return status;
}

uint32_t vd_vhd_commit(vd_image *image)
{
    vd_vhd_state *state = image->format_state;
    if (state == NULL || image->subtype == VD_SUBTYPE_FIXED)
        return VD_ERROR_SUCCESS;
    pthread_mutex_lock(&state->lock);
    uint32_t status = vd_vhd_commit_locked(image, state);
    pthread_mutex_unlock(&state->lock);
    return status;
}

int vd_vhd_pending_holds(const vd_vhd_state *state, uint32_t block)
{
    /* The latest first: a partial write tends to follow its allocation. */
    for (uint32_t i = state->pending_count; i > 0; i--)
        if (state->pending[i - 1] == block)
            return 1;
    return 0;
}

uint32_t vd_vhd_pending_reserve(vd_image *image, vd_vhd_state *state, uint32_t count)
{
    if (state->pending_count + count <= VD_VHD_PENDING_MAX)
        return VD_ERROR_SUCCESS;
    return vd_vhd_commit_locked(image, state);
}

void vd_vhd_pending_add(vd_vhd_state *state, uint32_t block)
{
    state->pending[state->pending_count++] = block;
}
