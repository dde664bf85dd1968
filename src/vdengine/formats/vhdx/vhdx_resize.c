/* Resizing a VHDX (driver.h's resize; api/resize.c has the rules): the
 * Virtual Disk Size metadata item and the BAT entries of the new size, in
 * one logged transaction (vhdx_log_write.h), so that a crash leaves the old
 * size or the new one.  Fixed and dynamic images; under the allocation lock,
 * so that no content write allocates a block meanwhile.
 *
 * Grow.  Payload block i keeps BAT index i + i / ChunkRatio whatever the
 * size (2.5), so existing entries stay where they are and the new ones
 * follow.  When the BAT region holds the new entries, they are made
 * NOT_PRESENT in the same transaction (where they are not already).  When
 * it does not, the region grows where it is, in whole MiB, when only
 * payload and sector bitmap blocks follow it: those in the way move to the
 * end of the file first, each batch durable before its entries change
 * (vhdx_bat_grow.h), and the new entries are written into the space they
 * left, free until the transaction, which also rewrites both region
 * tables with the region's new length, commits.  New entries that are
 * zeros (a dynamic image's NOT_PRESENT ones) go into the log entry as zero
 * descriptors, so that the transaction costs one flush whatever the
 * table's growth (vhdx_log_write.h).  When another region
 * follows it (a layout the engine does not make), a new BAT region is
 * written past the end of the file (old entries, then zeros) and flushed,
 * and the transaction points both region tables at it; the old region
 * stays behind as unused space.  A fixed image's new blocks are allocated in the same step
 * (FULLY_PRESENT over a file extended with ftruncate: constant time, the
 * file system's holes read zeros).
 *
 * Where the old size ends inside a present block, the bytes past it are
 * zeroed first (the disk never showed them, and after a shrink they hold
 * what the shrink cut off): the grown disk reads zeros past the old end.
 * A differencing child's sectors of that block which it does not hold
 * would read the parent there; they are written as zeros through the
 * write path first, so the child holds them.
 *
 * Shrink.  The entries past the new size are set NOT_PRESENT in the same
 * transaction; the blocks they named become unused space (CompactVirtualDisk
 * gives it back).  The BAT region is never made smaller.
 *
 * Cancellation is honoured before the transaction, where nothing live has
 * changed but the place of blocks that made room for the BAT and the
 * bytes past the old end, and before each batch of those moves. */
#include "disk/driver.h"

#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/crc32c.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_bat_grow.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_metadata.h"
#include "formats/vhdx/vhdx_pending.h"
#include "formats/vhdx/vhdx_sectors.h"
#include "formats/vhdx/vhdx_write_plan.h"

static const uint8_t vd_vhdx_guid_size[16] = VD_VHDX_GUID_VIRTUAL_DISK_SIZE;
static const uint8_t vd_vhdx_guid_bat[16] = VD_VHDX_GUID_BAT_REGION;

static uint64_t vd_vhdx_resize_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

/* Payload blocks of an image of `size` bytes. */
static uint64_t vd_vhdx_blocks_for(const vd_vhdx_state *state, uint64_t size)
{
    return (size + state->block_size - 1) / state->block_size;
}

/* BAT entries of an image of `size` bytes (2.5): a differencing image has
 * its last chunk's entries whole, sector bitmap entry included. */
static uint64_t vd_vhdx_entries_for(const vd_vhdx_state *state, uint64_t size)
{
    uint64_t blocks = vd_vhdx_blocks_for(state, size);
    if (state->differencing)
        return (blocks + state->chunk_ratio - 1) / state->chunk_ratio * ((uint64_t)state->chunk_ratio + 1);
    return blocks + (blocks - 1) / state->chunk_ratio;
}

/* The file offset of the Virtual Disk Size item. */
static uint32_t vd_vhdx_size_item_offset(vd_image *image, uint64_t *offset)
{
    const vd_vhdx_state *state = image->format_state;
    vd_vhdx_metadata table;
    uint32_t status = vd_vhdx_metadata_load(image, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    size_t index = vd_vhdx_metadata_find(&table, vd_vhdx_guid_size, 0);
    if (index == SIZE_MAX || vd_vhdx_metadata_entry_length(&table, index) < 8)
        status = vd_fail(VD_ERROR_FILE_CORRUPT, "the Virtual Disk Size metadata item is missing");
    else
        *offset = state->metadata_offset
                  + vd_load_le32(table.entries[index] + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET);
    vd_vhdx_metadata_free(&table);
    return status;
}

/* Bytes `value` at `offset` in the set's copy of the file.  Sectors at or
 * past `fresh_from` are free space the transaction makes live: they start
 * as zeros and are written whole, directly (vhdx_sectors.h). */
static uint32_t vd_vhdx_set_bytes(vd_image *image, vd_vhdx_sector_set *set, uint64_t offset,
                                  const uint8_t *value, size_t length, uint64_t fresh_from)
{
    while (length > 0) {
        uint64_t base = offset / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
        size_t within = (size_t)(offset - base);
        size_t piece = VD_VHDX_LOG_SECTOR_SIZE - within < length ? VD_VHDX_LOG_SECTOR_SIZE - within : length;
        int fresh = base >= fresh_from;
        vd_vhdx_sector *sector;
        uint32_t status = vd_vhdx_sectors_get(image, set, base, fresh, &sector);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (fresh || memcmp(sector->data + within, value, piece) != 0) {
            memcpy(sector->data + within, value, piece);
            sector->dirty = 1;
        }
        offset += piece;
        value += piece;
        length -= piece;
    }
    return VD_ERROR_SUCCESS;
}

/* Both region tables with the BAT region at `offset`, `length` bytes. */
static uint32_t vd_vhdx_set_bat_region(vd_image *image, vd_vhdx_sector_set *set, uint64_t offset,
                                        uint64_t length)
{
    uint8_t *table = malloc(VD_VHDX_REGION_TABLE_SIZE);
    if (table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_state_read(image, VD_VHDX_REGION_TABLE1_OFFSET, table, VD_VHDX_REGION_TABLE_SIZE);
    uint32_t count = status == VD_ERROR_SUCCESS ? vd_load_le32(table + VD_VHDX_REGION_ENTRY_COUNT_OFFSET) : 0;
    uint8_t *entry = NULL;
    for (uint32_t i = 0; i < count && i < VD_VHDX_REGION_MAX_ENTRIES; i++) {
        uint8_t *candidate = table + VD_VHDX_REGION_HEADER_SIZE + (size_t)i * VD_VHDX_REGION_ENTRY_SIZE;
        if (memcmp(candidate + VD_VHDX_REGION_ENTRY_GUID_OFFSET, vd_vhdx_guid_bat, 16) == 0)
            entry = candidate;
    }
    if (status == VD_ERROR_SUCCESS && entry == NULL)
        status = vd_fail(VD_ERROR_FILE_CORRUPT, "region table 1 has no BAT entry");
    if (status == VD_ERROR_SUCCESS) {
        vd_store_le64(entry + VD_VHDX_REGION_ENTRY_FILE_OFFSET_OFFSET, offset);
        vd_store_le32(entry + VD_VHDX_REGION_ENTRY_LENGTH_OFFSET, (uint32_t)length);
        vd_store_le32(table + VD_VHDX_REGION_CHECKSUM_OFFSET, 0);
        vd_store_le32(table + VD_VHDX_REGION_CHECKSUM_OFFSET, vd_crc32c(table, VD_VHDX_REGION_TABLE_SIZE));
        /* The header and the entries lie in the table's first sector; the
         * rest, and so the checksum's input there, is unchanged. */
        status = vd_vhdx_set_bytes(image, set, VD_VHDX_REGION_TABLE1_OFFSET, table, VD_VHDX_LOG_SECTOR_SIZE,
                                   UINT64_MAX);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_set_bytes(image, set, VD_VHDX_REGION_TABLE2_OFFSET, table, VD_VHDX_LOG_SECTOR_SIZE,
                                   UINT64_MAX);
    free(table);
    return status;
}

/* A BAT region past the end of the file holding the current entries and
 * room for `entries`: written and flushed, its place in *offset, *length. */
static uint32_t vd_vhdx_write_new_bat(vd_image *image, uint64_t entries, uint64_t *offset, uint64_t *length)
{
    vd_vhdx_state *state = image->format_state;
    uint64_t end = atomic_load(&state->data_size);
    if (image->file.size > end)
        end = image->file.size;
    *offset = vd_vhdx_resize_up(end, VD_VHDX_ALIGNMENT);
    *length = vd_vhdx_resize_up(entries * VD_VHDX_BAT_ENTRY_SIZE, VD_VHDX_ALIGNMENT);
    size_t kept = (size_t)(state->bat_entries * VD_VHDX_BAT_ENTRY_SIZE);
    uint8_t *bat = calloc(1, (size_t)*length);
    if (bat == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_state_read(image, state->bat_offset, bat, kept);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(&image->file, *offset, bat, (size_t)*length);
    free(bat);
    if (status != VD_ERROR_SUCCESS)
        return status;
    image->file.size = *offset + *length;
    atomic_store(&state->data_size, image->file.size);
    return vd_vhdx_file_flush(image);
}

/* Room for `entries`: the region grown where it is when only blocks lie
 * after it (vhdx_bat_grow.h), else a new region past the end of the file.
 * Its place in *offset, *length. */
static uint32_t vd_vhdx_longer_bat(vd_image *image, uint64_t entries, vd_operation *operation,
                                   uint64_t *offset, uint64_t *length)
{
    const vd_vhdx_state *state = image->format_state;
    uint64_t needed = vd_vhdx_resize_up(entries * VD_VHDX_BAT_ENTRY_SIZE, VD_VHDX_ALIGNMENT);
    if (needed > UINT32_MAX)
        return vd_fail(VD_ERROR_VHD_INVALID_SIZE, "a BAT of %" PRIu64 " entries is longer than a region may be",
                       entries);
    int room = 0;
    uint32_t status = vd_vhdx_bat_make_room(image, needed, operation, &room);
    if (status != VD_ERROR_SUCCESS || !room)
        return status == VD_ERROR_SUCCESS ? vd_vhdx_write_new_bat(image, entries, offset, length) : status;
    *offset = state->bat_offset;
    *length = needed;
    return VD_ERROR_SUCCESS;
}

/* Bytes of zeros a child's tail is written with at a time. */
#define VD_VHDX_TAIL_PIECE (UINT32_C(1) << 20)

/* A differencing child's bytes [from, to) of its old last block, past the
 * old size, written as zeros through the write path (vhdx_write_plan.h):
 * the block is allocated where it is NOT_PRESENT and the sectors' bitmap
 * bits are set, so that once the size includes them they read zeros, not
 * the parent's bytes (a parent larger than the child, after a shrink, has
 * data there).  Past the end they show nowhere until then, so the
 * DataWriteGuid stays, as in every other resize.  They are made
 * durable, the data and then the log, before the grow's own transaction:
 * a crash leaves the old size, or the new one reading zeros there. */
static uint32_t vd_vhdx_own_tail(vd_image *image, uint64_t from, uint64_t to)
{
    vd_vhdx_state *state = image->format_state;
    uint8_t *zeros = calloc(1, VD_VHDX_TAIL_PIECE);
    if (zeros == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    while (from < to && status == VD_ERROR_SUCCESS) {
        uint64_t done = 0;
        uint64_t piece = to - from < VD_VHDX_TAIL_PIECE ? to - from : VD_VHDX_TAIL_PIECE;
        status = vd_vhdx_write_planned(image, state, from, zeros, piece, 0, &done);
        from += done;
    }
    free(zeros);
    return status == VD_ERROR_SUCCESS ? vd_vhdx_pending_commit(image) : status;
}

/* The old last block past the old size reads zeros after the grow: its
 * bytes in the file are zeroed where it is present (the disk never showed
 * them, and after a shrink they hold what the shrink cut off), and a
 * child's sectors there that it does not hold, which would read the
 * parent, become its own (vd_vhdx_own_tail). */
static uint32_t vd_vhdx_zero_tail(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    uint64_t within = state->virtual_size % state->block_size;
    if (within == 0)
        return VD_ERROR_SUCCESS;
    uint64_t block = state->virtual_size / state->block_size;
    uint64_t entry, start = 0;
    uint32_t status = vd_vhdx_bat_get(image, vd_vhdx_payload_index(state, block), &entry);
    uint64_t kind = entry & VD_VHDX_BAT_STATE_MASK;
    int present = kind == VD_VHDX_PAYLOAD_FULLY_PRESENT || kind == VD_VHDX_PAYLOAD_PARTIALLY_PRESENT;
    if (status != VD_ERROR_SUCCESS || (!present && kind != VD_VHDX_PAYLOAD_NOT_PRESENT))
        return status;
    if (present)
        status = vd_vhdx_payload_place(state, entry, state->block_size, &start);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* The write path zeros the payload of a child's partial block too. */
    if (state->differencing && kind != VD_VHDX_PAYLOAD_FULLY_PRESENT)
        return vd_vhdx_own_tail(image, state->virtual_size, (block + 1) * state->block_size);
    if (!present)
        return VD_ERROR_SUCCESS;
    status = vd_file_zero_range(&image->file, start + within, state->block_size - within, 0);
    return status == VD_ERROR_SUCCESS ? vd_vhdx_file_flush(image) : status;
}

/* Where the new entries go, and what they say. */
typedef struct vd_vhdx_new_entries {
    uint64_t bat_offset;
    uint64_t first, end;          /* BAT indexes */
    uint64_t bitmaps_from;        /* sector bitmap entries below stay: their chunk is in use */
    uint64_t payload_state;       /* what a new payload entry says (not fixed) */
    uint64_t fresh_from;          /* file offset: sectors past the live entries */
    int fixed;                    /* payload entries FULLY_PRESENT from fixed_base on */
    uint64_t fixed_base;          /* file offset of payload block first_block */
    uint64_t first_block;
} vd_vhdx_new_entries;

static uint32_t vd_vhdx_set_entries(vd_image *image, vd_vhdx_sector_set *set, const vd_vhdx_new_entries *plan)
{
    const vd_vhdx_state *state = image->format_state;
    uint64_t group = (uint64_t)state->chunk_ratio + 1;
    /* A fresh sector starts as zeros: once it is in the set, its zero
     * entries need no copy (a grow to 64 TiB has millions of them). */
    uint64_t zero_sector = UINT64_MAX;
    for (uint64_t index = plan->first; index < plan->end; index++) {
        uint8_t raw[VD_VHDX_BAT_ENTRY_SIZE] = { 0 };
        /* Every chunk_ratio + 1-th entry is a sector bitmap's: NOT_PRESENT. */
        int bitmap = (index + 1) % group == 0;
        if (bitmap && index < plan->bitmaps_from)
            continue;
        if (plan->fixed && !bitmap) {
            uint64_t block = index - index / group;
            uint64_t offset = plan->fixed_base + (block - plan->first_block) * state->block_size;
            vd_store_le64(raw, (offset / VD_VHDX_MIB) << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT);
        } else if (!bitmap) {
            vd_store_le64(raw, plan->payload_state);
        }
        uint64_t offset = plan->bat_offset + index * VD_VHDX_BAT_ENTRY_SIZE;
        uint64_t sector = offset / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
        int zero = vd_load_le64(raw) == 0 && sector >= plan->fresh_from;
        if (zero && sector == zero_sector)
            continue;
        uint32_t status = vd_vhdx_set_bytes(image, set, offset, raw, sizeof raw, plan->fresh_from);
        if (status != VD_ERROR_SUCCESS)
            return status;
        zero_sector = zero ? sector : UINT64_MAX;
    }
    return VD_ERROR_SUCCESS;
}

/* Everything a grow writes before its transaction, and its entries. */
static uint32_t vd_vhdx_grow(vd_image *image, vd_vhdx_sector_set *set, const vd_resize_request *request)
{
    uint64_t new_size = request->new_size;
    vd_vhdx_state *state = image->format_state;
    uint64_t new_entries = vd_vhdx_entries_for(state, new_size);
    /* A child's new blocks are ZERO, not NOT_PRESENT: the grown part reads
     * zeros even where a parent larger than the old size has data.  Its
     * last chunk holds entries past the old size already. */
    uint64_t first_new = vd_vhdx_payload_index(state, vd_vhdx_blocks_for(state, state->virtual_size));
    vd_vhdx_new_entries plan = {
        .bat_offset = state->bat_offset,
        .first = first_new < state->bat_entries ? first_new : state->bat_entries,
        .end = new_entries, .bitmaps_from = state->bat_entries,
        .payload_state = state->differencing ? VD_VHDX_PAYLOAD_ZERO : VD_VHDX_PAYLOAD_NOT_PRESENT,
        .fixed = image->subtype == VD_SUBTYPE_FIXED };
    uint32_t status = vd_vhdx_zero_tail(image);
    uint64_t bat_length = state->bat_length;
    int longer = new_entries * VD_VHDX_BAT_ENTRY_SIZE > bat_length;
    if (status == VD_ERROR_SUCCESS && longer)
        status = vd_vhdx_longer_bat(image, new_entries, request->operation, &plan.bat_offset, &bat_length);
    plan.fresh_from = plan.bat_offset + vd_vhdx_resize_up(state->bat_entries * VD_VHDX_BAT_ENTRY_SIZE,
                                                          VD_VHDX_LOG_SECTOR_SIZE);
    if (status == VD_ERROR_SUCCESS && plan.fixed) {
        uint64_t end = atomic_load(&state->data_size);
        plan.fixed_base = vd_vhdx_resize_up(end > image->file.size ? end : image->file.size, VD_VHDX_ALIGNMENT);
        plan.first_block = vd_vhdx_blocks_for(state, state->virtual_size);
        uint64_t blocks = (new_size + state->block_size - 1) / state->block_size - plan.first_block;
        status = vd_file_set_size(&image->file, plan.fixed_base + blocks * state->block_size);
        if (status == VD_ERROR_SUCCESS) {
            atomic_store(&state->data_size, image->file.size);
            status = vd_vhdx_file_flush(image);
        }
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_set_entries(image, set, &plan);
    if (status == VD_ERROR_SUCCESS && longer)
        status = vd_vhdx_set_bat_region(image, set, plan.bat_offset, bat_length);
    return status;
}

static uint32_t vd_vhdx_resize_locked(vd_image *image, const vd_resize_request *request)
{
    vd_vhdx_state *state = image->format_state;
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* The BAT may move or grow in place: it starts from the file. */
    status = vd_vhdx_pending_commit(image);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (request->new_size % state->logical_sector_size != 0)
        return VD_ERROR_INVALID_PARAMETER;
    uint64_t item = 0;
    status = vd_vhdx_size_item_offset(image, &item);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhdx_sector_set set = { 0 };
    if (request->new_size > state->virtual_size) {
        status = vd_vhdx_grow(image, &set, request);
    } else {
        /* The blocks past the new size go; a child keeps its last chunk's
         * sector bitmap entry while a block of that chunk remains. */
        vd_vhdx_new_entries plan = {
            .bat_offset = state->bat_offset,
            .first = vd_vhdx_payload_index(state, vd_vhdx_blocks_for(state, request->new_size)),
            .end = state->bat_entries, .bitmaps_from = vd_vhdx_entries_for(state, request->new_size),
            .payload_state = VD_VHDX_PAYLOAD_NOT_PRESENT, .fresh_from = UINT64_MAX };
        status = vd_vhdx_set_entries(image, &set, &plan);
    }
    uint8_t size[8];
    vd_store_le64(size, request->new_size);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_set_bytes(image, &set, item, size, sizeof size, UINT64_MAX);
    if (status == VD_ERROR_SUCCESS && vd_operation_cancelled(request->operation))
        status = VD_ERROR_OPERATION_ABORTED;
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_commit_live(image, &set);
    vd_vhdx_sectors_free(&set);
    return status;
}

uint32_t vd_vhdx_resize(vd_image *image, const vd_resize_request *request)
{
    vd_vhdx_state *state = image->format_state;
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_resize_locked(image, request);
    pthread_mutex_unlock(&state->allocation_lock);
    return status;
}
