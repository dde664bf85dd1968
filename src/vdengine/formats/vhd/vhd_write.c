/* VHD content writes, unmap and flush (Microsoft "Virtual Hard Disk Image
 * Format Specification" 1.0: "Block Allocation Table", "Data Blocks",
 * "Implementing a Differencing Hard Disk").
 *
 * Fixed disks: the data area is the disk, a write is a pwrite.
 *
 * Dynamic and differencing disks.  A write into sectors whose bitmap bits
 * are set is a pwrite into the block: no lock, no metadata I/O.  Each
 * block has a flag (state->present, vhd_present.c) telling that every one
 * of its sectors is marked present; a write into such a block goes
 * straight to the data.  A write into a block of this open whose flag does
 * not say so reads the block's bitmap, under the lock (from the copy this
 * open keeps of a partly present block's, vhd_bitmaps.c, when it has one),
 * and sets the flag from what it finds (reads learn it too).
 *
 * A write into sectors whose bits are clear (an allocated block of a
 * differencing child that holds only some sectors, or a dynamic block a
 * writer left partly marked) writes the data, then sets the bits that
 * change and writes only the bitmap sectors holding them.  When the file's
 * BAT names the block, a flush goes in between: a crash before the bitmap
 * write leaves the old content (the parent's, or zeros), after it the new
 * one.  A block whose allocation waits for its commit needs none: nothing
 * on disk names it, and the commit flushes before its entry.
 *
 * A write into a block the file does not hold allocates, under the lock,
 * the blocks one request needs (up to VD_VHD_RUN_BLOCKS) together:
 *
 *   1. the footer (the bytes open trusted) is written past the new blocks:
 *      the file grows and ends with a valid footer at every point;
 *   2. each block's sector bitmap, then the data of this write: the space
 *      between reads zeros (it lies past the old end of the file), so the
 *      sectors the write leaves out read zero;
 *   3. the entries go into the in-memory table, which this open's reads
 *      and writes use from then on, and into the pending record; nothing
 *      is flushed.
 *
 * The BAT entries are written by the commit (vhd_commit.c): a flush, so
 * that every pending block's bitmap and data are durable, then the BAT
 * sectors holding them.  It runs in the flush op (which flushes again
 * after it), when the record would pass VD_VHD_PENDING_MAX blocks, at the
 * release of a writable image, and before resize, compact, merge and the
 * update ops.  So a first write of N blocks costs no flush until the
 * caller's flush, as a disk with a write cache behaves (SCSI SYNCHRONIZE
 * CACHE, FlushFileBuffers): a write not followed by a flush may be lost,
 * a flushed one never is.
 *
 * The copy of the footer at offset 0 is never written.  A crash before
 * the commit's BAT write leaves the old entries: the new blocks are unused
 * space in front of a valid footer, every sector reads its old content,
 * and the next allocation appends after them.  The order is the spec's
 * (data, BAT, footer) with the footer moved first rather than last: the
 * spec's order leaves the file without an end footer between 2 and its
 * last step, to be recovered from the copy at 0; moving it first keeps
 * both valid.  Allocations that wait for one commit each move the footer
 * on past their blocks, so the file ends with a valid footer after each
 * of their writes too.
 *
 * Layout, as Windows lays out the blocks it appends: a new block starts
 * where the footer was, moved on so that its data (after the sector bitmap,
 * whole 512-byte sectors) starts on a 4 KiB boundary (research/formats.md
 * 2.8: Windows 10's dynamic.vhd has bitmap 7680, data 8192).  The padding
 * in front of the first new block, where the old footer was, is zeroed by
 * the bitmap's write.  Every block takes block_size bytes, the last one of
 * a disk whose size is not a multiple of blocks too (qemu refuses a BAT
 * whose blocks end past the file, counting whole blocks).  Bitmaps of new
 * dynamic blocks have every bit set, as qemu and this engine's creator
 * write them: the sectors not written read as the zeros they hold.  A new
 * block of a differencing child marks only the sectors written (a whole
 * block write marks all), so the others keep reading from the parent.
 *
 * Unmap.  Sectors read zeros afterwards.  Fixed disks and the allocated
 * blocks of dynamic disks get zeros written into their data (qemu reads
 * dynamic blocks without their bitmaps, so clearing bits would not show it
 * zeros); unallocated dynamic blocks already read zero.  A differencing
 * child must hide its parent: the range is written as zeros through the
 * write path (new blocks get their bits set and no data write, the space
 * reads zero already).
 *
 * Damage refused before anything is written: at the first write of an
 * open the whole BAT is checked, and a block that meets the footer copy,
 * the dynamic header, the BAT, a parent locator's data, another block, or
 * ends past the data (the end footer) gets VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
 * the code reads give for a block past the end.  A block whose 32-bit
 * sector number would not fit (files beyond 2 TiB) is
 * VHD_BLOCK_ALLOCATION_FAILURE. */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhd/vhd_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"

#define VD_VHD_DATA_ALIGNMENT 4096u
/* Blocks one allocation takes at most: one footer move for a request of
 * up to 128 MiB with 2 MiB blocks. */
#define VD_VHD_RUN_BLOCKS 64u
#define VD_VHD_ZERO_PIECE ((size_t)64 << 10)

static const uint8_t vd_vhd_zeros[VD_VHD_ZERO_PIECE];

static uint64_t vd_vhd_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

uint32_t vd_vhd_write_init(vd_vhd_state *state, uint64_t file_size)
{
    atomic_init(&state->file_end, file_size);
    atomic_init(&state->checked, 0);
    atomic_init(&state->present, NULL);
    atomic_init(&state->bitmaps, NULL);
    state->bitmap_bytes = 0;
    state->scratch = NULL;
    return pthread_mutex_init(&state->lock, NULL) == 0 ? VD_ERROR_SUCCESS
                                                       : VD_ERROR_NOT_ENOUGH_MEMORY;
}

void vd_vhd_write_release(vd_vhd_state *state)
{
    vd_vhd_bitmaps_release(state);
    free((void *)atomic_load_explicit(&state->present, memory_order_relaxed));
    free(state->scratch);
    atomic_store_explicit(&state->present, NULL, memory_order_relaxed);
    state->scratch = NULL;
    pthread_mutex_destroy(&state->lock);
}

uint8_t *vd_vhd_scratch(vd_vhd_state *state)
{
    if (state->scratch == NULL)
        state->scratch = malloc(state->bitmap_size);
    return state->scratch;
}

/* `length` bytes of `data` at `offset`; NULL data writes zeros. */
static uint32_t vd_vhd_put(const vd_file *file, uint64_t offset, const uint8_t *data,
                           uint64_t length)
{
    if (data != NULL)
        return vd_file_write(file, offset, data, (size_t)length);
    return vd_file_write_repeated(file, offset, vd_vhd_zeros, VD_VHD_ZERO_PIECE, length);
}

static uint32_t vd_vhd_check_write(const vd_image *image, uint64_t offset, uint64_t length)
{
    if (!image->file.writable)
        return VD_ERROR_ACCESS_DENIED;
    if (offset > image->virtual_size || length > image->virtual_size - offset
        || (uint64_t)(size_t)length != length)
        return VD_ERROR_INVALID_PARAMETER;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_write_fixed(vd_image *image, uint64_t offset, const void *buffer, uint64_t length)
{
    uint32_t status = vd_vhd_check_write(image, offset, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_put(&image->file, offset, buffer, length);
    return status;
}

uint32_t vd_vhd_unmap_fixed(vd_image *image, uint64_t offset, uint64_t length)
{
    return vd_vhd_write_fixed(image, offset, NULL, length);
}

/* The pending BAT entries committed (data flushed, then the entries),
 * then flushed themselves. */
uint32_t vd_vhd_flush(vd_image *image)
{
    if (!image->file.writable)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhd_commit(image);
    return status == VD_ERROR_SUCCESS ? vd_file_flush(&image->file) : status;
}

/* ---- sector bitmaps (MSB first: bit 7 of byte 0 is sector 0) */

/* Sets the bits of sectors [first, end); [*low, *high) are the bytes that
 * changed (empty when none did). */
static void vd_vhd_bits_mark(uint8_t *bitmap, uint32_t first, uint32_t end, uint32_t *low,
                             uint32_t *high)
{
    *low = UINT32_MAX;
    *high = 0;
    for (uint32_t sector = first; sector < end; sector++) {
        uint8_t bit = (uint8_t)(0x80u >> (sector % 8));
        if (bitmap[sector / 8] & bit)
            continue;
        bitmap[sector / 8] |= bit;
        if (*low == UINT32_MAX)
            *low = sector / 8;
        *high = sector / 8 + 1;
    }
    if (*low == UINT32_MAX)
        *low = 0;
}

/* ---- the BAT check of the first write */

static int vd_vhd_extent_order(const void *a, const void *b)
{
    uint64_t x = ((const vd_vhd_extent *)a)->start, y = ((const vd_vhd_extent *)b)->start;
    return x < y ? -1 : x > y;
}

/* Where data may end: before the footer at the end of the file, or at the
 * file's end when that footer is damaged (open trusted the copy at 0).
 * `footer` receives the trusted footer, the bytes a move writes. */
uint32_t vd_vhd_data_end(const vd_image *image, uint8_t footer[VD_VHD_FOOTER_SIZE],
                         uint64_t *data_end)
{
    vd_vhd_footer decoded;
    uint64_t tail;
    uint32_t status = vd_vhd_find_footer(&image->file, &decoded, footer, &tail);
    if (status == VD_ERROR_SUCCESS)
        *data_end = image->file.size - tail;
    return status;
}

/* The structures no block may meet: the footer copy, the dynamic header,
 * the BAT and the parent locators' data; *count of them. */
uint32_t vd_vhd_structures(const vd_image *image, const vd_vhd_state *state,
                           vd_vhd_extent out[VD_VHD_STRUCTURE_MAX], size_t *count)
{
    uint8_t header[VD_VHD_HEADER_SIZE];
    uint32_t status = vd_file_read(&image->file, state->footer.data_offset, header, sizeof header);
    if (status != VD_ERROR_SUCCESS)
        return status;
    size_t n = 0;
    out[n++] = (vd_vhd_extent){ 0, VD_VHD_FOOTER_SIZE };
    out[n++] = (vd_vhd_extent){ state->footer.data_offset,
                                state->footer.data_offset + VD_VHD_HEADER_SIZE };
    out[n++] = (vd_vhd_extent){ state->table_offset,
                                state->table_offset
                                    + vd_vhd_up((uint64_t)state->table_entries * VD_VHD_BAT_ENTRY_SIZE,
                                                VD_VHD_SECTOR_SIZE) };
    for (unsigned i = 0; i < VD_VHD_LOCATOR_COUNT; i++) {
        const uint8_t *entry = header + VD_VHD_HEADER_LOCATORS_OFFSET + i * VD_VHD_LOCATOR_ENTRY_SIZE;
        uint32_t length = vd_load_be32(entry + VD_VHD_LOCATOR_LENGTH_OFFSET);
        uint64_t offset = vd_load_be64(entry + VD_VHD_LOCATOR_DATA_OFFSET);
        if (vd_load_be32(entry + VD_VHD_LOCATOR_CODE_OFFSET) == VD_VHD_PLATFORM_NONE || length == 0)
            continue;
        if (offset > image->file.size || length > image->file.size - offset)
            return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CORRUPT,
                           "VHD parent locator %u lies past the end of the file", i);
        out[n++] = (vd_vhd_extent){ offset, vd_vhd_up(offset + length, VD_VHD_SECTOR_SIZE) };
    }
    *count = n;
    return VD_ERROR_SUCCESS;
}

/* Every allocated block inside the data and clear of the structures and of
 * the other blocks; then the per-block flags and the bitmap buffer. */
static uint32_t vd_vhd_check_table(vd_image *image, vd_vhd_state *state)
{
    vd_vhd_entry *table;
    uint32_t status = vd_vhd_table(state, &image->file, &table);
    vd_vhd_extent structures[VD_VHD_STRUCTURE_MAX];
    size_t structure_count = 0;
    uint8_t footer[VD_VHD_FOOTER_SIZE];
    uint64_t data_end = 0;
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_structures(image, state, structures, &structure_count);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_data_end(image, footer, &data_end);
    for (size_t i = 0; i < structure_count && status == VD_ERROR_SUCCESS; i++)
        if (structures[i].end > data_end)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                             "VHD structure %zu ends past the footer", i);
    if (status != VD_ERROR_SUCCESS)
        return status;

    vd_vhd_extent *blocks = malloc(((size_t)state->table_entries + 1) * sizeof *blocks);
    if (blocks == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    size_t count = 0;
    for (uint32_t i = 0; i < state->table_entries && status == VD_ERROR_SUCCESS; i++) {
        uint32_t entry = atomic_load_explicit(&table[i], memory_order_relaxed);
        if (entry == VD_VHD_BAT_UNALLOCATED)
            continue;
        uint64_t start = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
        uint64_t end = start + state->bitmap_size + vd_vhd_block_bytes(image, state, i);
        if (end > data_end)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                             "BAT entry %" PRIu32 " points past the footer", i);
        for (size_t s = 0; s < structure_count && status == VD_ERROR_SUCCESS; s++)
            if (start < structures[s].end && structures[s].start < end)
                status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                                 "BAT entry %" PRIu32 " points into the VHD's own structures", i);
        blocks[count++] = (vd_vhd_extent){ start, end };
    }
    if (status == VD_ERROR_SUCCESS && count > 1) {
        qsort(blocks, count, sizeof *blocks, vd_vhd_extent_order);
        for (size_t i = 1; i < count && status == VD_ERROR_SUCCESS; i++)
            if (blocks[i].start < blocks[i - 1].end)
                status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                                 "two BAT entries point at overlapping blocks at offset %" PRIu64,
                                 blocks[i].start);
    }
    free(blocks);
    if (status != VD_ERROR_SUCCESS)
        return status;

    /* Flags the reads learned before stay: they are facts of the file. */
    if (vd_vhd_present_flags(state) == NULL || vd_vhd_scratch(state) == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;   /* freed by release */
    atomic_store_explicit(&state->checked, 1, memory_order_release);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_ready(vd_image *image, vd_vhd_state *state)
{
    if (atomic_load_explicit(&state->checked, memory_order_acquire))
        return VD_ERROR_SUCCESS;
    pthread_mutex_lock(&state->lock);
    uint32_t status = VD_ERROR_SUCCESS;
    if (!atomic_load_explicit(&state->checked, memory_order_relaxed))
        status = vd_vhd_check_table(image, state);
    pthread_mutex_unlock(&state->lock);
    return status;
}

/* ---- writes under the lock */

/* The part of one request that falls in one block; NULL data is zeros. */
typedef struct vd_vhd_piece {
    uint32_t block;
    uint32_t within;
    uint32_t count;
    const uint8_t *data;
} vd_vhd_piece;

/* The sector bitmap of the block `piece` allocates (bitmap_size bytes):
 * every bit of a dynamic block or a whole one, else those of the sectors
 * written; whether every sector is present. */
static int vd_vhd_new_bitmap(const vd_image *image, const vd_vhd_state *state,
                             const vd_vhd_piece *piece, uint8_t *bitmap)
{
    uint32_t sectors = (uint32_t)(vd_vhd_block_bytes(image, state, piece->block) / VD_VHD_SECTOR_SIZE);
    uint32_t first = piece->within / VD_VHD_SECTOR_SIZE;
    uint32_t end = first + piece->count / VD_VHD_SECTOR_SIZE;
    if (image->subtype != VD_SUBTYPE_DIFFERENCING || (first == 0 && end == sectors)) {
        memset(bitmap, 0xFF, state->bitmap_size);
        return 1;
    }
    uint32_t low, high;
    memset(bitmap, 0, state->bitmap_size);
    vd_vhd_bits_mark(bitmap, first, end, &low, &high);
    return 0;
}

/* Steps 1-3 of the file comment for `n` consecutive unallocated blocks. */
static uint32_t vd_vhd_allocate(vd_image *image, vd_vhd_state *state, vd_vhd_entry *table,
                                const vd_vhd_piece *pieces, size_t n)
{
    uint8_t footer[VD_VHD_FOOTER_SIZE];
    uint64_t data_end;
    uint32_t status = vd_vhd_pending_reserve(image, state, (uint32_t)n);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_data_end(image, footer, &data_end);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t starts[VD_VHD_RUN_BLOCKS];
    uint64_t at = vd_vhd_up(data_end, VD_VHD_SECTOR_SIZE);
    for (size_t i = 0; i < n; i++) {
        starts[i] = vd_vhd_up(at + state->bitmap_size, VD_VHD_DATA_ALIGNMENT) - state->bitmap_size;
        at = starts[i] + state->bitmap_size + state->block_size;
    }
    /* BAT entries are 32-bit sector numbers. */
    if (starts[n - 1] / VD_VHD_SECTOR_SIZE >= VD_VHD_BAT_UNALLOCATED)
        return VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE;

    /* The front: zeros over the old footer's place up to the first bitmap. */
    size_t front = (size_t)(starts[0] - data_end);
    uint8_t *buffer = malloc(front + state->bitmap_size);
    if (buffer == NULL)
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(&image->file, at, footer, VD_VHD_FOOTER_SIZE);
    if (status == VD_ERROR_SUCCESS) {
        /* Stored before any entry names a block below it. */
        image->file.size = at + VD_VHD_FOOTER_SIZE;
        atomic_store_explicit(&state->file_end, image->file.size, memory_order_release);
    }
    uint8_t *bitmap = buffer + front;
    for (size_t i = 0; i < n && status == VD_ERROR_SUCCESS; i++) {
        const vd_vhd_piece *piece = &pieces[i];
        (void)vd_vhd_new_bitmap(image, state, piece, bitmap);
        if (i == 0) {
            memset(buffer, 0, front);
            status = vd_file_write(&image->file, data_end, buffer, front + state->bitmap_size);
        } else {
            status = vd_file_write(&image->file, starts[i], bitmap, state->bitmap_size);
        }
        /* Zeros need no write: the block lies past the old end. */
        if (status == VD_ERROR_SUCCESS && piece->data != NULL)
            status = vd_file_write(&image->file, starts[i] + state->bitmap_size + piece->within,
                                   piece->data, piece->count);
    }
    /* The blocks are this open's now; the file's BAT names them at the
     * next commit (vhd_commit.c). */
    vd_vhd_flag *flags = vd_vhd_flags_of(state);
    for (size_t i = 0; i < n && status == VD_ERROR_SUCCESS; i++) {
        /* A block left partly to the parent keeps its bits in memory. */
        int whole = vd_vhd_new_bitmap(image, state, &pieces[i], bitmap);
        if (!whole)
            vd_vhd_bitmap_keep(state, pieces[i].block, bitmap);
        atomic_store_explicit(&flags[pieces[i].block], whole ? VD_VHD_BITS_ALL : VD_VHD_BITS_SOME,
                              memory_order_release);
        atomic_store_explicit(&table[pieces[i].block], (uint32_t)(starts[i] / VD_VHD_SECTOR_SIZE),
                              memory_order_release);
        vd_vhd_pending_add(state, pieces[i].block);
    }
    free(buffer);
    return status;
}

/* A write into an allocated block whose sectors may not all be marked:
 * the data, then the bits that change, flushed in between when the file's
 * BAT names the block. */
static uint32_t vd_vhd_write_marking(vd_image *image, vd_vhd_state *state, uint32_t entry,
                                     const vd_vhd_piece *piece)
{
    uint64_t bitmap_offset = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
    uint64_t data_offset = bitmap_offset + state->bitmap_size + piece->within;
    uint8_t *bitmap = state->scratch;
    uint32_t sectors = (uint32_t)(vd_vhd_block_bytes(image, state, piece->block) / VD_VHD_SECTOR_SIZE);
    uint32_t first = piece->within / VD_VHD_SECTOR_SIZE;
    uint32_t end = first + piece->count / VD_VHD_SECTOR_SIZE;
    uint32_t status = VD_ERROR_SUCCESS;
    if (!vd_vhd_bitmap_take(state, piece->block, bitmap))
        status = vd_file_read(&image->file, bitmap_offset, bitmap, state->bitmap_size);
    if (status != VD_ERROR_SUCCESS)
        return status;
    int marked = vd_vhd_bits_set(bitmap, first, end);
    status = vd_vhd_put(&image->file, data_offset, piece->data, piece->count);
    if (status == VD_ERROR_SUCCESS && !marked) {
        uint32_t low, high;
        vd_vhd_bits_mark(bitmap, first, end, &low, &high);
        uint64_t from = low / VD_VHD_SECTOR_SIZE * VD_VHD_SECTOR_SIZE;
        uint64_t to = vd_vhd_up(high, VD_VHD_SECTOR_SIZE);
        /* A block still waiting for its commit is named by nothing on
         * disk: the commit's flush puts data and bits before its entry. */
        if (!vd_vhd_pending_holds(state, piece->block))
            status = vd_file_flush(&image->file);
        if (status == VD_ERROR_SUCCESS)
            status = vd_file_write(&image->file, bitmap_offset + from, bitmap + from,
                                   (size_t)(to - from));
    }
    vd_vhd_flag *flag = &vd_vhd_flags_of(state)[piece->block];
    if (status != VD_ERROR_SUCCESS) {
        /* The bitmap may or may not have changed: the next read asks the file. */
        atomic_store_explicit(flag, VD_VHD_BITS_UNKNOWN, memory_order_release);
        return status;
    }
    int all = vd_vhd_bits_set(bitmap, 0, sectors);
    if (!all)
        vd_vhd_bitmap_keep(state, piece->block, bitmap);
    atomic_store_explicit(flag, all ? VD_VHD_BITS_ALL : VD_VHD_BITS_SOME, memory_order_release);
    return status;
}

/* Under the lock: the block at `offset`, and when it is unallocated the
 * unallocated blocks that follow it in the request; *done = bytes handled. */
static uint32_t vd_vhd_write_locked(vd_image *image, vd_vhd_state *state, vd_vhd_entry *table,
                                    uint64_t offset, const uint8_t *data, uint64_t length,
                                    uint64_t *done)
{
    vd_vhd_piece pieces[VD_VHD_RUN_BLOCKS];
    size_t n = 0;
    uint64_t position = 0;
    uint32_t entry = atomic_load_explicit(&table[offset / state->block_size], memory_order_relaxed);
    while (position < length && n < VD_VHD_RUN_BLOCKS) {
        uint64_t at = offset + position;
        uint32_t block = (uint32_t)(at / state->block_size);
        uint32_t within = (uint32_t)(at % state->block_size);
        uint64_t count = state->block_size - within < length - position ? state->block_size - within
                                                                         : length - position;
        if (n > 0 && atomic_load_explicit(&table[block], memory_order_relaxed) != VD_VHD_BAT_UNALLOCATED)
            break;
        pieces[n++] = (vd_vhd_piece){ block, within, (uint32_t)count,
                                      data != NULL ? data + position : NULL };
        position += count;
        if (entry != VD_VHD_BAT_UNALLOCATED)
            break;
    }
    *done = position;
    if (entry != VD_VHD_BAT_UNALLOCATED)
        return vd_vhd_write_marking(image, state, entry, &pieces[0]);
    return vd_vhd_allocate(image, state, table, pieces, n);
}

/* What every write or unmap of a dynamic or differencing disk does first:
 * the range and access checks, the once-per-open BAT check, and the table
 * it then works on. */
static uint32_t vd_vhd_begin(vd_image *image, vd_vhd_state *state, uint64_t offset,
                             uint64_t length, vd_vhd_entry **table)
{
    uint32_t status = vd_vhd_check_write(image, offset, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_ready(image, state);
    if (status == VD_ERROR_SUCCESS)
        *table = atomic_load_explicit(&state->table, memory_order_acquire);
    return status;
}

/* The block holding `offset`, where in it `offset` lies, and how many of
 * `length` bytes fall inside it. */
static uint64_t vd_vhd_span(const vd_vhd_state *state, uint64_t offset, uint64_t length,
                            uint32_t *block, uint64_t *within)
{
    *block = (uint32_t)(offset / state->block_size);
    *within = offset % state->block_size;
    return state->block_size - *within < length ? state->block_size - *within : length;
}

/* Writes `data` (NULL: zeros) at `offset` of a dynamic or differencing disk. */
static uint32_t vd_vhd_write_blocks(vd_image *image, uint64_t offset, const uint8_t *data,
                                    uint64_t length)
{
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table = NULL;
    uint32_t status = vd_vhd_begin(image, state, offset, length, &table);
    while (length > 0 && status == VD_ERROR_SUCCESS) {
        uint32_t block;
        uint64_t within;
        uint64_t done = vd_vhd_span(state, offset, length, &block, &within);
        uint32_t entry = atomic_load_explicit(&table[block], memory_order_acquire);
        if (entry != VD_VHD_BAT_UNALLOCATED
            && atomic_load_explicit(&vd_vhd_flags_of(state)[block], memory_order_acquire)
                   == VD_VHD_BITS_ALL) {
            /* The common case: no lock, no metadata. */
            status = vd_vhd_put(&image->file,
                                (uint64_t)entry * VD_VHD_SECTOR_SIZE + state->bitmap_size + within,
                                data, done);
        } else {
            pthread_mutex_lock(&state->lock);
            status = vd_vhd_write_locked(image, state, table, offset, data, length, &done);
            pthread_mutex_unlock(&state->lock);
        }
        offset += done;
        length -= done;
        if (data != NULL)
            data += done;
    }
    return status;
}

uint32_t vd_vhd_write_sparse(vd_image *image, uint64_t offset, const void *buffer, uint64_t length)
{
    if (buffer == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    return vd_vhd_write_blocks(image, offset, buffer, length);
}

uint32_t vd_vhd_unmap_sparse(vd_image *image, uint64_t offset, uint64_t length)
{
    if (image->subtype == VD_SUBTYPE_DIFFERENCING)
        return vd_vhd_write_blocks(image, offset, NULL, length);
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table = NULL;
    uint32_t status = vd_vhd_begin(image, state, offset, length, &table);
    while (length > 0 && status == VD_ERROR_SUCCESS) {
        uint32_t block;
        uint64_t within;
        uint64_t count = vd_vhd_span(state, offset, length, &block, &within);
        uint32_t entry = atomic_load_explicit(&table[block], memory_order_acquire);
        /* Unallocated blocks read zero already; allocated ones get zeros
         * whatever their bits say (a clear bit reads zero too). */
        if (entry != VD_VHD_BAT_UNALLOCATED)
            status = vd_vhd_put(&image->file,
                                (uint64_t)entry * VD_VHD_SECTOR_SIZE + state->bitmap_size + within,
                                NULL, count);
        offset += count;
        length -= count;
    }
    return status;
}
