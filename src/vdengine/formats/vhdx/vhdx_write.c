/* VHDX content writes and flush ([MS-VHDX] 2.2.2, 2.3, 2.5).
 *
 * A write into a FULLY_PRESENT block is a plain pwrite: no metadata I/O.
 * A write into a block the file does not hold (NOT_PRESENT, ZERO,
 * UNMAPPED, UNDEFINED) of a fixed or dynamic image allocates, under the
 * state's allocation lock, in the order that survives a crash at any
 * point (2.3 "data first, then the BAT through the log"):
 *
 *   1. the file is extended to a new 1 MiB aligned block at its end (the
 *      place Windows and qemu put new payload blocks); the extension reads
 *      zeros, so the sectors this write does not cover read zero, which is
 *      what the block read before (every non-present state reads zero here,
 *      vhdx.c);
 *   2. the data is written into the block and flushed;
 *   3. the 4 KiB BAT sector with the entry set FULLY_PRESENT goes through
 *      the log (vhdx_log_write.c), which flushes at each of its steps.
 *
 * The blocks one write allocates (up to 64) share steps 1-3: one size
 * change, one data flush and one log transaction, not one per block.
 * A crash before 3's log entry is durable leaves the old entry: the block
 * is unreferenced space past the old structures and every sector reads its
 * old content; after, the entry replays and the sectors read new content.
 * Before the first user-visible data change of an open, a header with a
 * new DataWriteGuid (and FileWriteGuid) is written and flushed (2.2.2), so
 * a child whose parent_linkage names the old DataWriteGuid no longer
 * matches a parent that changed.
 *
 * Damage refused before anything is written: a present block whose range
 * meets the header section, the log, the BAT or the metadata region, or
 * reaches past the end of the file, gets VHD_BLOCK_ALLOCATION_TABLE_CORRUPT
 * (the code reads give for the same entry); reserved states and bits too.
 * Differencing images: overwrites of FULLY_PRESENT blocks and writes of a
 * whole block (which becomes FULLY_PRESENT) work; a partial write into a
 * block the child does not hold whole answers NOT_SUPPORTED (sector
 * bitmaps are not written yet). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/guid.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"

static int vd_vhdx_overlaps(uint64_t a, uint64_t a_length, uint64_t b, uint64_t b_length)
{
    return a < b + b_length && b < a + a_length;
}

/* Where a present payload block lies, checked against every structure the
 * write must never overwrite. */
static uint32_t vd_vhdx_payload_place(const vd_vhdx_state *state, uint64_t entry, uint64_t bytes,
                                      uint64_t *offset)
{
    if ((entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "a BAT entry the write needs has reserved bits set");
    uint64_t start = (entry >> VD_VHDX_BAT_OFFSET_SHIFT) * VD_VHDX_MIB;
    if (start < VD_VHDX_HEADER_SECTION_SIZE || start > state->data_size || bytes > state->data_size - start
        || vd_vhdx_overlaps(start, bytes, state->log_offset, state->log_length)
        || vd_vhdx_overlaps(start, bytes, state->bat_offset, state->bat_length)
        || vd_vhdx_overlaps(start, bytes, state->metadata_offset, state->metadata_length))
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "a BAT entry points at offset %" PRIu64 ", into the headers, log, BAT, metadata or past the file's end", start);
    *offset = start;
    return VD_ERROR_SUCCESS;
}

/* Once per open, before the first data change: a new DataWriteGuid. */
static uint32_t vd_vhdx_data_write_guid(vd_image *image, vd_vhdx_state *state)
{
    if (state->data_write_guid_fresh)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint8_t guid[16];
    static const uint8_t no_log[16];
    status = vd_guid_random(guid);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_header_update(image, guid, no_log);
    if (status != VD_ERROR_SUCCESS)
        return status;
    memcpy(image->identifier.bytes, guid, 16);
    state->data_write_guid_fresh = 1;
    return VD_ERROR_SUCCESS;
}

/* Blocks allocated by one write share one log transaction, up to this
 * many (64 BAT entries fit in at most 2 BAT sectors of the log entry). */
#define VD_VHDX_BATCH_BLOCKS 64u

typedef struct vd_vhdx_new_block {
    uint64_t index;               /* BAT entry */
    uint64_t start;               /* file offset of the block */
    uint64_t within, count;       /* the bytes this write puts there */
    const uint8_t *data;
} vd_vhdx_new_block;

/* Steps 1-3 above for `count` new blocks: one size change, the data, one
 * flush, then one log transaction holding every BAT sector they touch. */
static uint32_t vd_vhdx_allocate(vd_image *image, vd_vhdx_state *state, const vd_vhdx_new_block *blocks,
                                 size_t count, uint64_t end)
{
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_set_size(&image->file, end);
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++)
        status = vd_file_write(&image->file, blocks[i].start + blocks[i].within, blocks[i].data,
                               (size_t)blocks[i].count);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(&image->file);
    if (status != VD_ERROR_SUCCESS)
        return status;   /* ENOSPC is DISK_FULL (io.c); the old entries stand */
    state->data_size = end;

    uint8_t *sectors = malloc(count * VD_VHDX_LOG_SECTOR_SIZE);
    vd_vhdx_sector_write *writes = malloc(count * sizeof *writes);
    size_t used = 0;
    if (sectors == NULL || writes == NULL)
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    /* Blocks come in ascending order, so their BAT sectors do too. */
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        uint64_t byte = blocks[i].index * VD_VHDX_BAT_ENTRY_SIZE;
        uint64_t sector = state->bat_offset + byte / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
        if (used == 0 || writes[used - 1].file_offset != sector) {
            uint8_t *bytes = sectors + used * VD_VHDX_LOG_SECTOR_SIZE;
            status = vd_vhdx_state_read(image, sector, bytes, VD_VHDX_LOG_SECTOR_SIZE);
            writes[used].file_offset = sector;
            writes[used].data = bytes;
            used++;
        }
        uint64_t entry = blocks[i].start / VD_VHDX_MIB << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT;
        vd_store_le64(sectors + (used - 1) * VD_VHDX_LOG_SECTOR_SIZE + byte % VD_VHDX_LOG_SECTOR_SIZE, entry);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_log_commit(image, writes, used, NULL, 0);
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++)
        vd_vhdx_bat_set(image, blocks[i].index,
                        blocks[i].start / VD_VHDX_MIB << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT);
    free(sectors);
    free(writes);
    return status;
}

static uint64_t vd_vhdx_round_mib(uint64_t value)
{
    return (value + VD_VHDX_MIB - 1) / VD_VHDX_MIB * VD_VHDX_MIB;
}

/* Damage in the entries of the first VD_VHDX_BATCH_BLOCKS blocks of the
 * range is refused before anything, the DataWriteGuid header included, is
 * written. */
static uint32_t vd_vhdx_check_range(vd_image *image, vd_vhdx_state *state, uint64_t offset, uint64_t length)
{
    uint64_t first = offset / state->block_size;
    uint64_t last = (offset + length - 1) / state->block_size;
    if (last - first >= VD_VHDX_BATCH_BLOCKS)
        last = first + VD_VHDX_BATCH_BLOCKS - 1;
    for (uint64_t block = first; block <= last; block++) {
        uint64_t entry, payload;
        uint64_t block_start = block * state->block_size;
        uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                             ? state->virtual_size - block_start : state->block_size;
        uint32_t status = vd_vhdx_bat_get(image, block + block / state->chunk_ratio, &entry);
        if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has reserved bits set", block + block / state->chunk_ratio);
        if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_PAYLOAD_FULLY_PRESENT)
            status = vd_vhdx_payload_place(state, entry, block_bytes, &payload);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return VD_ERROR_SUCCESS;
}

/* Under the allocation lock: the blocks of [offset, offset + length), at
 * most VD_VHDX_BATCH_BLOCKS of them; *done = the bytes handled. */
static uint32_t vd_vhdx_write_locked(vd_image *image, vd_vhdx_state *state, uint64_t offset,
                                     const uint8_t *data, uint64_t length, uint64_t *done)
{
    vd_vhdx_new_block blocks[VD_VHDX_BATCH_BLOCKS];
    size_t count = 0, visited = 0;
    uint64_t file_end = image->file.size > state->data_size ? image->file.size : state->data_size;
    uint64_t end = vd_vhdx_round_mib(file_end);
    uint64_t position = 0;
    uint32_t status = vd_vhdx_check_range(image, state, offset, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_data_write_guid(image, state);
    while (status == VD_ERROR_SUCCESS && position < length && visited < VD_VHDX_BATCH_BLOCKS) {
        uint64_t at = offset + position;
        uint64_t block = at / state->block_size, within = at % state->block_size;
        uint64_t count_here = state->block_size - within < length - position ? state->block_size - within
                                                                             : length - position;
        uint64_t index = block + block / state->chunk_ratio;
        uint64_t block_start = block * state->block_size;
        uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                             ? state->virtual_size - block_start : state->block_size;
        uint64_t entry, payload;
        status = vd_vhdx_bat_get(image, index, &entry);
        if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has reserved bits set", index);
        if (status != VD_ERROR_SUCCESS)
            break;
        switch (entry & VD_VHDX_BAT_STATE_MASK) {
        case VD_VHDX_PAYLOAD_FULLY_PRESENT:
            status = vd_vhdx_payload_place(state, entry, block_bytes, &payload);
            if (status == VD_ERROR_SUCCESS)
                status = vd_file_write(&image->file, payload + within, data + position, (size_t)count_here);
            break;
        case VD_VHDX_PAYLOAD_NOT_PRESENT:
        case VD_VHDX_PAYLOAD_UNDEFINED:
        case VD_VHDX_PAYLOAD_ZERO:
        case VD_VHDX_PAYLOAD_UNMAPPED:
            /* In a differencing child the sectors this write leaves out
             * must keep reading from the parent, which needs the sector
             * bitmap (not written yet); a write of the whole block needs
             * none: FULLY_PRESENT hides the parent for all of it. */
            if (state->differencing && (within != 0 || count_here != block_bytes)) {
                status = VD_ERROR_NOT_SUPPORTED;
                break;
            }
            /* FileOffsetMB has 44 bits; past that the format cannot point. */
            if (end / VD_VHDX_MIB >= (UINT64_C(1) << 44) || state->block_size > UINT64_MAX - end) {
                status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE, "no room for a block at offset %" PRIu64 ": VHDX block offsets have 44 bits of MiB", end);
                break;
            }
            blocks[count++] = (vd_vhdx_new_block){ index, end, within, count_here, data + position };
            end += state->block_size;
            break;
        case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
            status = state->differencing ? VD_ERROR_NOT_SUPPORTED : vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " is PARTIALLY_PRESENT in an image without a parent", index);
            break;
        default:
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has the reserved state %u", index, (unsigned)(entry & VD_VHDX_BAT_STATE_MASK));
        }
        if (status != VD_ERROR_SUCCESS)
            break;
        position += count_here;
        visited++;
    }
    /* The blocks collected before a refusal are still allocated: their
     * data is part of this write, and a write that fails part way may
     * leave any sector old or new. */
    if (count > 0) {
        uint32_t allocated = vd_vhdx_allocate(image, state, blocks, count, end);
        if (status == VD_ERROR_SUCCESS)
            status = allocated;
    }
    *done = position;
    return status;
}

uint32_t vd_vhdx_write(vd_image *image, uint64_t offset, const void *buffer, uint64_t length)
{
    vd_vhdx_state *state = image->format_state;
    if (state->replay != NULL || !image->file.writable)
        return VD_ERROR_ACCESS_DENIED;
    if (offset > state->virtual_size || length > state->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    const uint8_t *in = buffer;
    while (length > 0) {
        uint64_t block = offset / state->block_size;
        uint64_t within = offset % state->block_size;
        uint64_t count = state->block_size - within < length ? state->block_size - within : length;
        uint64_t block_start = block * state->block_size;
        uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                             ? state->virtual_size - block_start : state->block_size;
        uint64_t entry, payload;
        uint32_t status = vd_vhdx_bat_get(image, block + block / state->chunk_ratio, &entry);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if ((entry & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_PAYLOAD_FULLY_PRESENT && state->data_write_guid_fresh) {
            /* The common case: no lock, no metadata. */
            status = vd_vhdx_payload_place(state, entry, block_bytes, &payload);
            if (status == VD_ERROR_SUCCESS)
                status = vd_file_write(&image->file, payload + within, in, (size_t)count);
        } else {
            pthread_mutex_lock(&state->allocation_lock);
            status = vd_vhdx_write_locked(image, state, offset, in, length, &count);
            pthread_mutex_unlock(&state->allocation_lock);
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
        in += count;
        offset += count;
        length -= count;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_flush(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (state->replay != NULL || !image->file.writable)
        return VD_ERROR_SUCCESS;
    return vd_file_flush(&image->file);
}
