/* VHDX content writes and flush ([MS-VHDX] 2.2.2, 2.3, 2.4, 2.5).
 *
 * A write into a FULLY_PRESENT block, or into sectors of a PARTIALLY_PRESENT
 * block whose sector bitmap bits are all set, is a plain pwrite: no lock,
 * no metadata I/O.  Every other write is planned and carried out under the
 * state's allocation lock, in the order that survives a crash at any point
 * (2.3: data first, then the structures through the log):
 *
 *   1. the file is extended by the new 1 MiB aligned blocks at its end (the
 *      place Windows and qemu put new blocks); the extension reads zeros;
 *   2. the data is written into its blocks;
 *   3. the plan's BAT entries and sector bitmap sectors are recorded
 *      (vhdx_pending.h) and set in memory; at the next flush the data is
 *      flushed and the recorded sectors go through the log in one
 *      transaction (vhdx_log_write.c, which flushes at each of its steps).
 *      A sector of a bitmap block allocated by a recorded write is free
 *      space until the logged entry points at it, and is written directly
 *      before the entry.
 *
 * A crash before the log entry is durable leaves the old entries and bits:
 * new blocks are unreferenced space, and sectors whose bits were clear
 * still read from the parent; afterwards the entry replays and every
 * sector reads its new content.  The spec asks the log for every update of
 * structures other than the header and payload blocks (2.3), and sector
 * bitmap blocks are such structures: a bitmap sector is never half new.
 *
 * What each block state becomes:
 *   FULLY_PRESENT        stays; the data goes in place.
 *   NOT_PRESENT of a fixed or dynamic image, UNDEFINED, ZERO, UNMAPPED
 *                        a new FULLY_PRESENT block.  All of these read zeros
 *                        (vhdx.c), and so do the sectors of the new block
 *                        this write does not cover: the file extension.
 *   NOT_PRESENT of a differencing image, written whole
 *                        a new FULLY_PRESENT block: nothing of the parent
 *                        shows through it any more.
 *   NOT_PRESENT of a differencing image, written in part
 *                        a new PARTIALLY_PRESENT block (its data not copied
 *                        from the parent) whose bitmap bits are exactly the
 *                        sectors written; the chunk's sector bitmap block is
 *                        allocated (1 MiB, zeros, SB_BLOCK_PRESENT) when the
 *                        chunk has none.  Stale bits a bitmap block may hold
 *                        for a block that was not present are cleared.
 *   PARTIALLY_PRESENT    the data in place, the bits of its sectors set; a
 *                        block whose every bit is then set becomes
 *                        FULLY_PRESENT in the same transaction.
 * Bitmap updates are serialised by the allocation lock, so bits set by
 * several threads in one bitmap sector are never lost.
 *
 * The blocks one write touches share one plan (up to 64 blocks, and as many
 * bitmap sectors as fit a small log): one size change, and at most one data
 * flush and one log transaction, not one per block.  Before the first user-visible
 * data change of an open, a header with a new DataWriteGuid (and
 * FileWriteGuid) is written and flushed (2.2.2), so a child whose
 * parent_linkage names the old DataWriteGuid no longer matches a parent
 * that changed.
 *
 * Damage refused before anything is written: a present block whose range
 * meets the header section, the log, the BAT or the metadata region, or
 * reaches past the end of the file, gets VHD_BLOCK_ALLOCATION_TABLE_CORRUPT
 * (the code reads give for the same entry); reserved states and bits too;
 * so does a PARTIALLY_PRESENT block without a present sector bitmap block,
 * and a chunk whose bitmap entry is not present while one of its blocks is
 * PARTIALLY_PRESENT. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/guid.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_bitmap.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_pending.h"
#include "formats/vhdx/vhdx_sectors.h"
#include "formats/vhdx/vhdx_write_plan.h"

static int vd_vhdx_overlaps(uint64_t a, uint64_t a_length, uint64_t b, uint64_t b_length)
{
    return a < b + b_length && b < a + a_length;
}

uint32_t vd_vhdx_payload_place(const vd_vhdx_state *state, uint64_t entry, uint64_t bytes, uint64_t *offset)
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

uint32_t vd_vhdx_data_write_guid(vd_image *image, vd_vhdx_state *state)
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

uint64_t vd_vhdx_block_bytes(const vd_vhdx_state *state, uint64_t block)
{
    uint64_t start = block * state->block_size;
    return state->virtual_size - start < state->block_size ? state->virtual_size - start : state->block_size;
}

/* Whether an unlocked write of [within, within + count) into the block of
 * BAT value `entry` needs nothing but the pwrite; *target is where. */
static int vd_vhdx_plain_write(vd_image *image, vd_vhdx_state *state, uint64_t block, uint64_t entry,
                               uint64_t within, uint64_t count, uint64_t *target)
{
    uint64_t payload;
    uint32_t kind = (uint32_t)(entry & VD_VHDX_BAT_STATE_MASK);
    if (!state->data_write_guid_fresh
        || (kind != VD_VHDX_PAYLOAD_FULLY_PRESENT && (kind != VD_VHDX_PAYLOAD_PARTIALLY_PRESENT || !state->differencing))
        || vd_vhdx_payload_place(state, entry, vd_vhdx_block_bytes(state, block), &payload) != VD_ERROR_SUCCESS)
        return 0;
    if (kind == VD_VHDX_PAYLOAD_PARTIALLY_PRESENT) {
        uint64_t chunk = block / state->chunk_ratio, bitmap_entry, bitmap;
        int all = 0;
        uint64_t sector = state->logical_sector_size;
        if (vd_vhdx_bat_get(image, chunk * (state->chunk_ratio + 1) + state->chunk_ratio, &bitmap_entry)
                != VD_ERROR_SUCCESS
            || (bitmap_entry & VD_VHDX_BAT_STATE_MASK) != VD_VHDX_SB_PRESENT
            || vd_vhdx_payload_place(state, bitmap_entry, VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE, &bitmap)
                   != VD_ERROR_SUCCESS
            || vd_vhdx_bitmap_file_all_set(image, bitmap,
                                           vd_vhdx_chunk_bit(state, block) + within / sector, count / sector, &all)
                   != VD_ERROR_SUCCESS
            || !all)
            return 0;
    }
    *target = payload + within;
    return 1;
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
        uint64_t entry, target;
        uint32_t status = vd_vhdx_bat_get(image, vd_vhdx_payload_index(state, block), &entry);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (vd_vhdx_plain_write(image, state, block, entry, within, count, &target)) {
            /* The common case: no lock, no metadata. */
            status = vd_file_write(&image->file, target, in, (size_t)count);
        } else {
            pthread_mutex_lock(&state->allocation_lock);
            status = vd_vhdx_write_planned(image, state, offset, in, length, 1, &count);
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
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_pending_commit(image);
    pthread_mutex_unlock(&state->allocation_lock);
    /* Also what plain writes put into present blocks meanwhile. */
    return status == VD_ERROR_SUCCESS ? vd_vhdx_file_flush(image) : status;
}
