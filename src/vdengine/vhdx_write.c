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

#include "endian.h"
#include "guid.h"
#include "vd_errors.h"
#include "vhdx_format.h"
#include "vhdx_internal.h"
#include "vhdx_log_write.h"

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
        return VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT;
    uint64_t start = (entry >> VD_VHDX_BAT_OFFSET_SHIFT) * VD_VHDX_MIB;
    if (start < VD_VHDX_HEADER_SECTION_SIZE || start > state->data_size || bytes > state->data_size - start
        || vd_vhdx_overlaps(start, bytes, state->log_offset, state->log_length)
        || vd_vhdx_overlaps(start, bytes, state->bat_offset, state->bat_length)
        || vd_vhdx_overlaps(start, bytes, state->metadata_offset, state->metadata_length))
        return VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT;
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

/* The BAT sector holding entry `index`, with that entry set to `entry`,
 * through the log. */
static uint32_t vd_vhdx_bat_commit(vd_image *image, vd_vhdx_state *state, uint64_t index, uint64_t entry)
{
    uint64_t byte = index * VD_VHDX_BAT_ENTRY_SIZE;
    uint64_t sector_offset = state->bat_offset + byte / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
    uint8_t *sector = malloc(VD_VHDX_LOG_SECTOR_SIZE);
    if (sector == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_state_read(image, sector_offset, sector, VD_VHDX_LOG_SECTOR_SIZE);
    if (status == VD_ERROR_SUCCESS) {
        vd_store_le64(sector + byte % VD_VHDX_LOG_SECTOR_SIZE, entry);
        vd_vhdx_sector_write write = { sector_offset, sector };
        status = vd_vhdx_log_commit(image, &write, 1, NULL, 0);
    }
    free(sector);
    return status;
}

/* A write into block `block` that is not present: steps 1-3 above. */
static uint32_t vd_vhdx_allocate(vd_image *image, vd_vhdx_state *state, uint64_t block, uint64_t index,
                                 uint64_t within, const uint8_t *data, uint64_t count)
{
    uint64_t start = (image->file.size + VD_VHDX_MIB - 1) / VD_VHDX_MIB * VD_VHDX_MIB;
    if (start < state->data_size)
        start = (state->data_size + VD_VHDX_MIB - 1) / VD_VHDX_MIB * VD_VHDX_MIB;
    uint64_t entry_offset_mb = start / VD_VHDX_MIB;
    /* FileOffsetMB has 44 bits; past that the format cannot point. */
    if (entry_offset_mb >= (UINT64_C(1) << 44) || state->block_size > UINT64_MAX - start)
        return VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE;
    (void)block;
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_set_size(&image->file, start + state->block_size);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(&image->file, start + within, data, (size_t)count);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(&image->file);
    if (status != VD_ERROR_SUCCESS)
        return status;   /* ENOSPC is DISK_FULL (io.c) */
    state->data_size = start + state->block_size;
    uint64_t entry = entry_offset_mb << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT;
    status = vd_vhdx_bat_commit(image, state, index, entry);
    if (status == VD_ERROR_SUCCESS)
        vd_vhdx_bat_set(image, index, entry);
    return status;
}

static uint32_t vd_vhdx_write_block(vd_image *image, vd_vhdx_state *state, uint64_t block, uint64_t within,
                                    const uint8_t *data, uint64_t count)
{
    uint64_t index = block + block / state->chunk_ratio;
    uint64_t block_start = block * state->block_size;
    uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                         ? state->virtual_size - block_start : state->block_size;
    uint64_t entry, payload;
    uint32_t status = vd_vhdx_bat_get(image, index, &entry);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if ((entry & VD_VHDX_BAT_STATE_MASK) == VD_VHDX_PAYLOAD_FULLY_PRESENT && state->data_write_guid_fresh) {
        status = vd_vhdx_payload_place(state, entry, block_bytes, &payload);
        if (status == VD_ERROR_SUCCESS)
            status = vd_file_write(&image->file, payload + within, data, (size_t)count);
        return status;
    }

    pthread_mutex_lock(&state->allocation_lock);
    status = vd_vhdx_bat_get(image, index, &entry);   /* another writer may have allocated it */
    if (status == VD_ERROR_SUCCESS && (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        status = VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT;
    uint64_t kind = entry & VD_VHDX_BAT_STATE_MASK;
    if (status == VD_ERROR_SUCCESS) {
        switch (kind) {
        case VD_VHDX_PAYLOAD_FULLY_PRESENT:
            status = vd_vhdx_payload_place(state, entry, block_bytes, &payload);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_data_write_guid(image, state);
            if (status == VD_ERROR_SUCCESS)
                status = vd_file_write(&image->file, payload + within, data, (size_t)count);
            break;
        case VD_VHDX_PAYLOAD_NOT_PRESENT:
        case VD_VHDX_PAYLOAD_UNDEFINED:
        case VD_VHDX_PAYLOAD_ZERO:
        case VD_VHDX_PAYLOAD_UNMAPPED:
            /* In a differencing child the sectors this write leaves out
             * must keep reading from the parent, which needs the sector
             * bitmap (not written yet); a write of the whole block needs
             * none: FULLY_PRESENT hides the parent for all of it. */
            if (state->differencing && (within != 0 || count != block_bytes)) {
                status = VD_ERROR_NOT_SUPPORTED;
                break;
            }
            status = vd_vhdx_data_write_guid(image, state);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_allocate(image, state, block, index, within, data, count);
            break;
        case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
            status = state->differencing ? VD_ERROR_NOT_SUPPORTED : VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT;
            break;
        default:
            status = VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT;
        }
    }
    pthread_mutex_unlock(&state->allocation_lock);
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
        uint32_t status = vd_vhdx_write_block(image, state, block, within, in, count);
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
