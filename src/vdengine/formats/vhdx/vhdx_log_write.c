/* Writing the VHDX log ([MS-VHDX] 2.3): entries, and the order an update
 * follows (vhdx_log_write.h).  What is written here is what vhdx_log.c and
 * qemu replay: entry header, data descriptors, data sectors, CRC-32C over
 * the whole entry with the checksum field zero (2.3.1). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_log_write.h"

#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/guid.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "host/file_holes.h"

/* The log is read this much at a time when looking for sequence numbers. */
#define VD_VHDX_LOG_SCAN_CHUNK (256u * 1024u)

static size_t vd_vhdx_log_descriptor_sectors(size_t count)
{
    return (count + VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS + VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR - 1)
         / VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR;
}

static void vd_vhdx_log_fill_descriptor(uint8_t *descriptor, const vd_vhdx_sector_write *write,
                                        uint64_t sequence)
{
    memcpy(descriptor, VD_VHDX_LOG_DATA_DESC_SIGNATURE, 4);
    memcpy(descriptor + VD_VHDX_LOG_DESC_TRAILING_OFFSET,
           write->data + VD_VHDX_LOG_SECTOR_SIZE - VD_VHDX_LOG_TRAILING_BYTES, VD_VHDX_LOG_TRAILING_BYTES);
    memcpy(descriptor + VD_VHDX_LOG_DESC_LEADING_OFFSET, write->data, VD_VHDX_LOG_LEADING_BYTES);
    vd_store_le64(descriptor + VD_VHDX_LOG_DESC_FILE_OFFSET_OFFSET, write->file_offset);
    vd_store_le64(descriptor + VD_VHDX_LOG_DESC_SEQUENCE_OFFSET, sequence);
}

/* The data sector keeps the middle of the target sector; its first 8 and
 * last 4 bytes carry the signature and the sequence number instead, and
 * the descriptor holds the target's own (2.3.1.3). */
static void vd_vhdx_log_fill_data(uint8_t *sector, const vd_vhdx_sector_write *write, uint64_t sequence)
{
    memcpy(sector, write->data, VD_VHDX_LOG_SECTOR_SIZE);
    memcpy(sector, VD_VHDX_LOG_DATA_SIGNATURE, 4);
    vd_store_le32(sector + VD_VHDX_LOG_DATA_SEQUENCE_HIGH_OFFSET, (uint32_t)(sequence >> 32));
    vd_store_le32(sector + VD_VHDX_LOG_DATA_SEQUENCE_LOW_OFFSET, (uint32_t)sequence);
}

static void vd_vhdx_log_fill_zero_descriptor(uint8_t *descriptor, const vd_vhdx_zero_run *run, uint64_t sequence)
{
    memcpy(descriptor, VD_VHDX_LOG_ZERO_SIGNATURE, 4);
    vd_store_le64(descriptor + VD_VHDX_LOG_ZERO_LENGTH_OFFSET, run->length);
    vd_store_le64(descriptor + VD_VHDX_LOG_DESC_FILE_OFFSET_OFFSET, run->file_offset);
    vd_store_le64(descriptor + VD_VHDX_LOG_DESC_SEQUENCE_OFFSET, sequence);
}

/* The entry's length in sectors: descriptors, then one data sector per
 * logged sector. */
static size_t vd_vhdx_log_entry_sectors(const vd_vhdx_log_update *update)
{
    return vd_vhdx_log_descriptor_sectors(update->logged_count + update->zero_count) + update->logged_count;
}

uint32_t vd_vhdx_log_entry_build(const uint8_t log_guid[16], uint64_t sequence, uint32_t tail,
                                 uint64_t file_size, const vd_vhdx_log_update *update,
                                 uint8_t **entry_out, size_t *length_out)
{
    const vd_vhdx_sector_write *writes = update->logged;
    size_t count = update->logged_count, descriptors = count + update->zero_count;
    size_t descriptor_sectors = vd_vhdx_log_descriptor_sectors(descriptors);
    size_t length = vd_vhdx_log_entry_sectors(update) * VD_VHDX_LOG_SECTOR_SIZE;
    if (length > UINT32_MAX)
        return VD_ERROR_VHD_METADATA_FULL;
    uint8_t *entry = calloc(1, length);
    if (entry == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(entry, VD_VHDX_LOG_ENTRY_SIGNATURE, 4);
    vd_store_le32(entry + VD_VHDX_LOG_ENTRY_LENGTH_OFFSET, (uint32_t)length);
    vd_store_le32(entry + VD_VHDX_LOG_ENTRY_TAIL_OFFSET, tail);
    vd_store_le64(entry + VD_VHDX_LOG_ENTRY_SEQUENCE_OFFSET, sequence);
    vd_store_le32(entry + VD_VHDX_LOG_ENTRY_DESC_COUNT_OFFSET, (uint32_t)descriptors);
    memcpy(entry + VD_VHDX_LOG_ENTRY_LOG_GUID_OFFSET, log_guid, 16);
    vd_store_le64(entry + VD_VHDX_LOG_ENTRY_FLUSHED_OFFSET, file_size);
    vd_store_le64(entry + VD_VHDX_LOG_ENTRY_LAST_OFFSET, file_size);
    for (size_t i = 0; i < count; i++) {
        size_t slot = i + VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS;
        vd_vhdx_log_fill_descriptor(entry + slot * VD_VHDX_LOG_DESCRIPTOR_SIZE, &writes[i], sequence);
        vd_vhdx_log_fill_data(entry + (descriptor_sectors + i) * VD_VHDX_LOG_SECTOR_SIZE, &writes[i],
                              sequence);
    }
    for (size_t i = 0; i < update->zero_count; i++) {
        size_t slot = count + i + VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS;
        vd_vhdx_log_fill_zero_descriptor(entry + slot * VD_VHDX_LOG_DESCRIPTOR_SIZE, &update->zeros[i], sequence);
    }
    vd_store_le32(entry + VD_VHDX_LOG_ENTRY_CHECKSUM_OFFSET, vd_crc32c(entry, length));
    *entry_out = entry;
    *length_out = length;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_log_highest_sequence(const vd_file *file, uint64_t log_offset, uint32_t log_length,
                                      uint64_t *highest)
{
    *highest = 0;
    size_t chunk = log_length < VD_VHDX_LOG_SCAN_CHUNK ? log_length : VD_VHDX_LOG_SCAN_CHUNK;
    uint8_t *buffer = malloc(chunk ? chunk : 1);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t done = 0; done < log_length && status == VD_ERROR_SUCCESS; done += chunk) {
        /* Holes read zeros, which hold no entry header: a log never yet
         * written (an engine-made file's) is not read at all. */
        uint64_t data = vd_file_next_data(file, log_offset + done, log_offset + log_length) - log_offset;
        done = data / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
        if (done >= log_length)
            break;
        size_t piece = log_length - done < chunk ? (size_t)(log_length - done) : chunk;
        status = vd_file_read(file, log_offset + done, buffer, piece);
        for (size_t at = 0; status == VD_ERROR_SUCCESS && at + VD_VHDX_LOG_SECTOR_SIZE <= piece;
             at += VD_VHDX_LOG_SECTOR_SIZE) {
            const uint8_t *sector = buffer + at;
            if (memcmp(sector, VD_VHDX_LOG_ENTRY_SIGNATURE, 4) != 0)
                continue;
            uint64_t sequence = vd_load_le64(sector + VD_VHDX_LOG_ENTRY_SEQUENCE_OFFSET);
            if (sequence > *highest)
                *highest = sequence;
        }
    }
    free(buffer);
    return status == VD_ERROR_HANDLE_EOF ? vd_fail(VD_ERROR_FILE_CORRUPT, "the file ends inside the log") : status;
}

/* Writes sorted sectors, one write per run of adjacent ones. */
static uint32_t vd_vhdx_write_sectors(const vd_file *file, const vd_vhdx_sector_write *writes, size_t count)
{
    uint8_t *run = NULL;
    size_t run_capacity = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t first = 0; first < count && status == VD_ERROR_SUCCESS;) {
        size_t end = first + 1;
        while (end < count
               && writes[end].file_offset == writes[end - 1].file_offset + VD_VHDX_LOG_SECTOR_SIZE)
            end++;
        size_t sectors = end - first;
        if (sectors == 1) {
            status = vd_file_write(file, writes[first].file_offset, writes[first].data,
                                   VD_VHDX_LOG_SECTOR_SIZE);
        } else {
            if (sectors * VD_VHDX_LOG_SECTOR_SIZE > run_capacity) {
                uint8_t *grown = realloc(run, sectors * VD_VHDX_LOG_SECTOR_SIZE);
                if (grown == NULL) {
                    status = VD_ERROR_NOT_ENOUGH_MEMORY;
                    break;
                }
                run = grown;
                run_capacity = sectors * VD_VHDX_LOG_SECTOR_SIZE;
            }
            for (size_t i = 0; i < sectors; i++)
                memcpy(run + i * VD_VHDX_LOG_SECTOR_SIZE, writes[first + i].data, VD_VHDX_LOG_SECTOR_SIZE);
            status = vd_file_write(file, writes[first].file_offset, run, sectors * VD_VHDX_LOG_SECTOR_SIZE);
        }
        first = end;
    }
    free(run);
    return status;
}

uint32_t vd_vhdx_update_blocked(const vd_image *image)
{
    const vd_vhdx_state *state = image->format_state;
    if (!image->file.writable || state->replay != NULL)
        return VD_ERROR_ACCESS_DENIED;
    return state->update_failure;
}

/* Step 3 of vhdx_log_write.h: the entry's changes in place, unflushed. */
static uint32_t vd_vhdx_log_apply(vd_image *image, const vd_vhdx_log_update *update)
{
    vd_vhdx_state *state = image->format_state;
    state->log_applied_unflushed = 1;
    uint32_t status = vd_vhdx_write_sectors(&image->file, update->logged, update->logged_count);
    for (size_t i = 0; i < update->zero_count && status == VD_ERROR_SUCCESS; i++)
        status = vd_file_zero_range(&image->file, update->zeros[i].file_offset, update->zeros[i].length, 0);
    return status;
}

uint32_t vd_vhdx_log_commit(vd_image *image, const vd_vhdx_log_update *update)
{
    vd_vhdx_state *state = image->format_state;
    uint32_t status = vd_vhdx_update_blocked(image);
    int entry_needed = update->logged_count > 0 || update->zero_count > 0;
    if (status != VD_ERROR_SUCCESS || (!entry_needed && update->direct_count == 0))
        return status;
    if (!entry_needed) {
        status = vd_vhdx_write_sectors(&image->file, update->direct, update->direct_count);
        return status == VD_ERROR_SUCCESS ? vd_vhdx_file_flush(image) : status;
    }
    if (vd_vhdx_log_entry_sectors(update) > state->log_length / VD_VHDX_LOG_SECTOR_SIZE)
        return VD_ERROR_VHD_METADATA_FULL;

    if (state->log_sequence == 0) {
        status = vd_vhdx_log_highest_sequence(&image->file, state->log_offset, state->log_length,
                                              &state->log_sequence);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    if (state->log_sequence == UINT64_MAX)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the log's sequence number %" PRIu64 " cannot advance",
                       state->log_sequence);
    uint64_t sequence = state->log_sequence + 1;
    uint8_t log_guid[16];
    status = vd_guid_random(log_guid);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint8_t *entry = NULL;
    size_t entry_length = 0;
    status = vd_vhdx_log_entry_build(log_guid, sequence, 0, image->file.size, update, &entry, &entry_length);
    if (status != VD_ERROR_SUCCESS)
        return status;

    /* Step 1: the direct sectors, flushed before the entry (by the header's
     * flush when it has one); a flush also makes the entry before durable
     * in place. */
    status = vd_vhdx_write_sectors(&image->file, update->direct, update->direct_count);
    if (status == VD_ERROR_SUCCESS && update->leave_live && update->direct_count > 0)
        status = vd_vhdx_file_flush(image);
    /* Step 2: the header, then the entry; one flush for both when the
     * entry is left live. */
    if (status == VD_ERROR_SUCCESS)
        status = update->leave_live ? vd_vhdx_header_stage(image, NULL, log_guid)
                                    : vd_vhdx_header_update(image, NULL, log_guid);
    if (status == VD_ERROR_SUCCESS) {
        static const uint8_t no_log[16];
        state->log_sequence = sequence;
        status = vd_file_write(&image->file, state->log_offset, entry, entry_length);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_file_flush(image);
        /* Step 3, and for a retired entry steps 4 and 5. */
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_log_apply(image, update);
        if (status == VD_ERROR_SUCCESS && !update->leave_live)
            status = vd_vhdx_file_flush(image);
        if (status == VD_ERROR_SUCCESS && !update->leave_live)
            status = vd_vhdx_header_update(image, NULL, no_log);
        if (status != VD_ERROR_SUCCESS)
            state->update_failure = status;
    }
    free(entry);
    return status;
}
