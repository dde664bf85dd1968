/* Room for a VHDX BAT region to grow in place (vhdx_bat_grow.h). */
#include "formats/vhdx/vhdx_bat_grow.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_sectors.h"
#include "host/file_copy.h"

/* BAT entries one transaction changes at most: their sectors, with the
 * descriptors, stay well inside the smallest log (1 MiB). */
#define VD_VHDX_BAT_GROW_BATCH 64u

static const uint8_t vd_vhdx_guid_bat[16] = VD_VHDX_GUID_BAT_REGION;

static int vd_vhdx_meets(uint64_t start, uint64_t length, uint64_t from, uint64_t to)
{
    return start < to && start + length > from;
}

/* Whether the log or a region other than the BAT meets [from, to). */
static uint32_t vd_vhdx_structure_in_way(vd_image *image, uint64_t from, uint64_t to, int *in_way)
{
    const vd_vhdx_state *state = image->format_state;
    *in_way = vd_vhdx_meets(state->log_offset, state->log_length, from, to)
              || vd_vhdx_meets(0, VD_VHDX_HEADER_SECTION_SIZE, from, to);
    uint8_t *table = malloc(VD_VHDX_REGION_TABLE_SIZE);
    if (table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_state_read(image, VD_VHDX_REGION_TABLE1_OFFSET, table, VD_VHDX_REGION_TABLE_SIZE);
    uint32_t count = status == VD_ERROR_SUCCESS ? vd_load_le32(table + VD_VHDX_REGION_ENTRY_COUNT_OFFSET) : 0;
    for (uint32_t i = 0; i < count && i < VD_VHDX_REGION_MAX_ENTRIES; i++) {
        const uint8_t *entry = table + VD_VHDX_REGION_HEADER_SIZE + (size_t)i * VD_VHDX_REGION_ENTRY_SIZE;
        if (memcmp(entry + VD_VHDX_REGION_ENTRY_GUID_OFFSET, vd_vhdx_guid_bat, 16) == 0)
            continue;
        if (vd_vhdx_meets(vd_load_le64(entry + VD_VHDX_REGION_ENTRY_FILE_OFFSET_OFFSET),
                          vd_load_le32(entry + VD_VHDX_REGION_ENTRY_LENGTH_OFFSET), from, to))
            *in_way = 1;
    }
    free(table);
    return status;
}

/* A block that names file space where the region grows. */
typedef struct vd_vhdx_in_way {
    uint64_t index, entry, start, length;
} vd_vhdx_in_way;

typedef struct vd_vhdx_in_way_list {
    vd_vhdx_in_way *items;
    size_t count, capacity;
} vd_vhdx_in_way_list;

static uint32_t vd_vhdx_in_way_add(vd_vhdx_in_way_list *list, vd_vhdx_in_way item)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        vd_vhdx_in_way *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = item;
    return VD_ERROR_SUCCESS;
}

/* Every payload or sector bitmap block whose file space meets [from, to),
 * whatever its state: a block keeps its bytes and its state when it moves. */
static uint32_t vd_vhdx_blocks_in_way(vd_image *image, uint64_t from, uint64_t to, vd_vhdx_in_way_list *list)
{
    const vd_vhdx_state *state = image->format_state;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t index = 0; index < state->bat_entries && status == VD_ERROR_SUCCESS; index++) {
        uint64_t entry;
        status = vd_vhdx_bat_get(image, index, &entry);
        uint64_t place = entry >> VD_VHDX_BAT_OFFSET_SHIFT;
        if (status != VD_ERROR_SUCCESS || place == 0)
            continue;
        int bitmap = (index + 1) % ((uint64_t)state->chunk_ratio + 1) == 0;
        vd_vhdx_in_way block = { index, entry, place * VD_VHDX_MIB,
                                 bitmap ? VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE : state->block_size };
        if (block.start < state->bat_offset + state->bat_length && block.start + block.length > state->bat_offset)
            status = vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                             "BAT entry %" PRIu64 " points into the BAT region", index);
        else if (vd_vhdx_meets(block.start, block.length, from, to))
            status = vd_vhdx_in_way_add(list, block);
    }
    return status;
}

/* Blocks [first, end) of the list copied to *next on, flushed, then their
 * entries through the log and into the page cache.  A cancel is honoured
 * before each block's copy: the blocks copied until then move all the
 * same (their entries commit), so a cancel ends within one block's copy
 * and leaves the old disk with some blocks elsewhere.  *moved counts the
 * bytes copied, for the progress. */
static uint32_t vd_vhdx_move_batch(vd_image *image, const vd_vhdx_in_way_list *list, size_t first, size_t end,
                                   vd_operation *operation, uint64_t *next, uint64_t *moved)
{
    vd_vhdx_state *state = image->format_state;
    uint64_t values[VD_VHDX_BAT_GROW_BATCH];
    uint64_t to = *next;
    uint32_t status = VD_ERROR_SUCCESS, stopped = VD_ERROR_SUCCESS;
    size_t copied = first;
    for (; copied < end && status == VD_ERROR_SUCCESS; copied++) {
        if (vd_operation_checkpoint(operation)) {
            stopped = VD_ERROR_OPERATION_ABORTED;
            break;
        }
        const vd_vhdx_in_way *block = &list->items[copied];
        /* A last block of a file cut short after its data has fewer bytes. */
        uint64_t bytes = block->start >= image->file.size ? 0
                         : block->length < image->file.size - block->start ? block->length
                         : image->file.size - block->start;
        status = vd_file_copy_range(&image->file, block->start, to, bytes);
        values[copied - first] = (to / VD_VHDX_MIB) << VD_VHDX_BAT_OFFSET_SHIFT
                                 | (block->entry & (VD_VHDX_BAT_STATE_MASK | VD_VHDX_BAT_RESERVED_MASK));
        to += block->length;
        if (status == VD_ERROR_SUCCESS) {
            *moved += block->length;
            vd_operation_set_done(operation, *moved);
        }
    }
    if (status == VD_ERROR_SUCCESS && copied > first) {
        status = vd_file_set_size(&image->file, to);
        if (status == VD_ERROR_SUCCESS) {
            atomic_store(&state->data_size, to);
            status = vd_vhdx_file_flush(image);
        }
    }
    vd_vhdx_sector_set set = { 0 };
    for (size_t i = first; i < copied && status == VD_ERROR_SUCCESS; i++)
        status = vd_vhdx_sectors_set_entry(image, &set, state->bat_offset, list->items[i].index,
                                           values[i - first]);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_commit(image, &set);
    for (size_t i = first; i < copied && status == VD_ERROR_SUCCESS; i++)
        vd_vhdx_bat_set(image, list->items[i].index, values[i - first]);
    vd_vhdx_sectors_free(&set);
    *next = to;
    return status != VD_ERROR_SUCCESS ? status : stopped;
}

uint32_t vd_vhdx_bat_make_room(vd_image *image, uint64_t new_length, vd_operation *operation, int *room)
{
    vd_vhdx_state *state = image->format_state;
    uint64_t from = state->bat_offset + state->bat_length, to = state->bat_offset + new_length;
    int in_way = 0;
    *room = 0;
    uint32_t status = vd_vhdx_structure_in_way(image, from, to, &in_way);
    if (status != VD_ERROR_SUCCESS || in_way)
        return status;
    vd_vhdx_in_way_list list = { 0 };
    status = vd_vhdx_blocks_in_way(image, from, to, &list);
    /* Moved blocks go past the file's end and past the grown region. */
    uint64_t end = atomic_load(&state->data_size);
    end = end > image->file.size ? end : image->file.size;
    end = end > to ? end : to;
    uint64_t next = (end + VD_VHDX_MIB - 1) / VD_VHDX_MIB * VD_VHDX_MIB, moved = 0;
    for (size_t first = 0; first < list.count && status == VD_ERROR_SUCCESS; first += VD_VHDX_BAT_GROW_BATCH) {
        size_t last = list.count - first < VD_VHDX_BAT_GROW_BATCH ? list.count : first + VD_VHDX_BAT_GROW_BATCH;
        status = vd_vhdx_move_batch(image, &list, first, last, operation, &next, &moved);
    }
    free(list.items);
    if (status == VD_ERROR_SUCCESS && image->file.size < to) {
        status = vd_file_set_size(&image->file, to);
        if (status == VD_ERROR_SUCCESS)
            atomic_store(&state->data_size, to);
    }
    *room = status == VD_ERROR_SUCCESS;
    return status;
}
