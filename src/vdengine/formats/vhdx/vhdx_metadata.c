/* The VHDX metadata region for updates: table, items, one logged
 * transaction per change (vhdx_metadata.h).
 *
 * A change is built as an edit: the 4 KiB sectors of the region it
 * touches, each as it was and as it will be.  At commit only the sectors
 * that differ are written; those of the table and those holding bytes of
 * a live item go through the log, the others (free space the change makes
 * live) are written directly before the entry (vhdx_log_write.h). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_metadata.h"

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"

#define VD_VHDX_PAGE VD_VHDX_LOG_SECTOR_SIZE

/* ---- the table ----------------------------------------------------------- */

static uint32_t vd_vhdx_entry_offset(const uint8_t *entry)
{
    return vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET);
}

static uint32_t vd_vhdx_entry_length(const uint8_t *entry)
{
    return vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET);
}

static int vd_vhdx_entry_is_user(const uint8_t *entry)
{
    return (vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_FLAGS_OFFSET) & VD_VHDX_METADATA_IS_USER) != 0;
}

static int vd_vhdx_entry_placed_well(const uint8_t *entry, uint32_t region_length)
{
    uint32_t offset = vd_vhdx_entry_offset(entry), length = vd_vhdx_entry_length(entry);
    if (length > VD_VHDX_METADATA_MAX_ITEM_LENGTH)
        return 0;
    return length == 0
        || (offset >= VD_VHDX_METADATA_TABLE_SIZE && offset <= region_length
            && length <= region_length - offset);
}

uint32_t vd_vhdx_metadata_load(const vd_image *image, vd_vhdx_metadata *table)
{
    const vd_vhdx_state *state = image->format_state;
    memset(table, 0, sizeof *table);
    /* A failed update may have left the region half rewritten in place;
     * only the replay at the next open makes it whole again. */
    if (state->update_failure != VD_ERROR_SUCCESS)
        return state->update_failure;
    uint8_t header[VD_VHDX_METADATA_HEADER_SIZE];
    uint32_t status = vd_vhdx_state_read(image, state->metadata_offset, header, sizeof header);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint32_t count = vd_load_le16(header + VD_VHDX_METADATA_ENTRY_COUNT_OFFSET);
    if (memcmp(header, VD_VHDX_METADATA_SIGNATURE, 8) != 0 || count > VD_VHDX_METADATA_MAX_ENTRIES)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the metadata table's signature is missing or its entry count"
                       " (%" PRIu32 ") too large", count);
    /* Room for one more, so a change can append without reallocating. */
    table->entries = malloc(((size_t)count + 1) * sizeof *table->entries);
    if (table->entries == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    table->count = count;
    if (count > 0)
        status = vd_vhdx_state_read(image, state->metadata_offset + VD_VHDX_METADATA_HEADER_SIZE,
                                    table->entries, (size_t)count * VD_VHDX_METADATA_ENTRY_SIZE);
    for (uint32_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        if (!vd_vhdx_entry_placed_well(table->entries[i], state->metadata_length))
            status = vd_fail(VD_ERROR_FILE_CORRUPT, "metadata table entry %" PRIu32 " lies outside the metadata"
                             " region", i);
    }
    if (status != VD_ERROR_SUCCESS)
        vd_vhdx_metadata_free(table);
    return status;
}

void vd_vhdx_metadata_free(vd_vhdx_metadata *table)
{
    free(table->entries);
    table->entries = NULL;
    table->count = 0;
}

size_t vd_vhdx_metadata_find(const vd_vhdx_metadata *table, const uint8_t item[16], int is_user)
{
    for (size_t i = 0; i < table->count; i++) {
        if (memcmp(table->entries[i], item, 16) == 0 && vd_vhdx_entry_is_user(table->entries[i]) == !!is_user)
            return i;
    }
    return SIZE_MAX;
}

uint32_t vd_vhdx_metadata_entry_length(const vd_vhdx_metadata *table, size_t index)
{
    return vd_vhdx_entry_length(table->entries[index]);
}

int vd_vhdx_metadata_entry_is_user(const vd_vhdx_metadata *table, size_t index)
{
    return vd_vhdx_entry_is_user(table->entries[index]);
}

uint32_t vd_vhdx_metadata_read_item(const vd_image *image, const vd_vhdx_metadata *table, size_t index,
                                    void *buffer)
{
    const vd_vhdx_state *state = image->format_state;
    uint32_t length = vd_vhdx_entry_length(table->entries[index]);
    if (length == 0)
        return VD_ERROR_SUCCESS;
    return vd_vhdx_state_read(image, state->metadata_offset + vd_vhdx_entry_offset(table->entries[index]),
                              buffer, length);
}

/* ---- free space ----------------------------------------------------------- */

/* First gap after the table that holds `length` bytes, among the items
 * live now (the one being replaced included: it stays live until the
 * change commits). */
static uint32_t vd_vhdx_place(const vd_vhdx_range *live, size_t count, uint32_t region_length,
                              uint32_t length, uint32_t *offset)
{
    uint64_t cursor = VD_VHDX_METADATA_TABLE_SIZE;
    for (size_t i = 0; i < count; i++) {
        if (live[i].offset >= cursor && live[i].offset - cursor >= length)
            break;
        uint64_t end = (uint64_t)live[i].offset + live[i].length;
        cursor = end > cursor ? end : cursor;
    }
    if (cursor > region_length || region_length - cursor < length)
        return VD_ERROR_VHD_METADATA_FULL;
    *offset = (uint32_t)cursor;
    return VD_ERROR_SUCCESS;
}

static int vd_vhdx_page_holds_live(const vd_vhdx_range *live, size_t count, uint64_t page)
{
    uint64_t start = page * VD_VHDX_PAGE, end = start + VD_VHDX_PAGE;
    for (size_t i = 0; i < count; i++) {
        if (live[i].offset < end && start < (uint64_t)live[i].offset + live[i].length)
            return 1;
    }
    return 0;
}

/* ---- edits ---------------------------------------------------------------- */

typedef struct vd_vhdx_page {
    uint32_t index;                /* region offset / 4 KiB */
    uint8_t *before;
    uint8_t *after;
} vd_vhdx_page;

typedef struct vd_vhdx_edit {
    vd_image *image;
    vd_vhdx_page *pages;
    size_t count;
    size_t capacity;
} vd_vhdx_edit;

static void vd_vhdx_edit_free(vd_vhdx_edit *edit)
{
    for (size_t i = 0; i < edit->count; i++) {
        free(edit->pages[i].before);
        free(edit->pages[i].after);
    }
    free(edit->pages);
}

/* The page as the change leaves it, read on first use. */
static uint32_t vd_vhdx_edit_page(vd_vhdx_edit *edit, uint32_t index, uint8_t **after)
{
    for (size_t i = 0; i < edit->count; i++) {
        if (edit->pages[i].index == index) {
            *after = edit->pages[i].after;
            return VD_ERROR_SUCCESS;
        }
    }
    if (edit->count == edit->capacity) {
        size_t capacity = edit->capacity ? 2 * edit->capacity : 8;
        vd_vhdx_page *grown = realloc(edit->pages, capacity * sizeof *grown);
        if (grown == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        edit->pages = grown;
        edit->capacity = capacity;
    }
    vd_vhdx_page *page = &edit->pages[edit->count];
    page->index = index;
    page->before = malloc(VD_VHDX_PAGE);
    page->after = malloc(VD_VHDX_PAGE);
    if (page->before == NULL || page->after == NULL) {
        free(page->before);
        free(page->after);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    const vd_vhdx_state *state = edit->image->format_state;
    uint32_t status = vd_vhdx_state_read(edit->image, state->metadata_offset + (uint64_t)index * VD_VHDX_PAGE,
                                         page->before, VD_VHDX_PAGE);
    if (status != VD_ERROR_SUCCESS) {
        free(page->before);
        free(page->after);
        return status;
    }
    memcpy(page->after, page->before, VD_VHDX_PAGE);
    edit->count++;
    *after = page->after;
    return VD_ERROR_SUCCESS;
}

/* Puts `length` bytes at region offset `offset`; NULL data writes zeros. */
static uint32_t vd_vhdx_edit_write(vd_vhdx_edit *edit, uint64_t offset, const void *data, uint64_t length)
{
    const uint8_t *source = data;
    while (length > 0) {
        uint8_t *page;
        uint32_t status = vd_vhdx_edit_page(edit, (uint32_t)(offset / VD_VHDX_PAGE), &page);
        if (status != VD_ERROR_SUCCESS)
            return status;
        size_t within = (size_t)(offset % VD_VHDX_PAGE);
        size_t piece = VD_VHDX_PAGE - within < length ? VD_VHDX_PAGE - within : (size_t)length;
        if (source != NULL) {
            memcpy(page + within, source, piece);
            source += piece;
        } else {
            memset(page + within, 0, piece);
        }
        offset += piece;
        length -= piece;
    }
    return VD_ERROR_SUCCESS;
}

/* The table as `entries` (new_count of them), replacing `old_count`. */
static uint32_t vd_vhdx_edit_table(vd_vhdx_edit *edit, const uint8_t (*entries)[32], uint32_t new_count,
                                   uint32_t old_count)
{
    uint8_t count[2];
    vd_store_le16(count, (uint16_t)new_count);
    uint32_t status = vd_vhdx_edit_write(edit, VD_VHDX_METADATA_ENTRY_COUNT_OFFSET, count, sizeof count);
    if (status == VD_ERROR_SUCCESS && new_count > 0)
        status = vd_vhdx_edit_write(edit, VD_VHDX_METADATA_HEADER_SIZE, entries,
                                    (uint64_t)new_count * VD_VHDX_METADATA_ENTRY_SIZE);
    if (status == VD_ERROR_SUCCESS && old_count > new_count)
        status = vd_vhdx_edit_write(edit,
                                    VD_VHDX_METADATA_HEADER_SIZE + (uint64_t)new_count * VD_VHDX_METADATA_ENTRY_SIZE,
                                    NULL, (uint64_t)(old_count - new_count) * VD_VHDX_METADATA_ENTRY_SIZE);
    return status;
}

static int vd_vhdx_page_order(const void *left, const void *right)
{
    uint32_t a = ((const vd_vhdx_page *)left)->index, b = ((const vd_vhdx_page *)right)->index;
    return (a > b) - (a < b);
}

/* Writes the pages that changed: table pages and pages holding bytes of an
 * item live before the change (`live`) through the log, the rest
 * directly. */
static uint32_t vd_vhdx_edit_commit(vd_vhdx_edit *edit, const vd_vhdx_range *live, size_t live_count)
{
    const vd_vhdx_state *state = edit->image->format_state;
    qsort(edit->pages, edit->count, sizeof *edit->pages, vd_vhdx_page_order);
    vd_vhdx_sector_write *logged = malloc((edit->count ? edit->count : 1) * sizeof *logged);
    vd_vhdx_sector_write *direct = malloc((edit->count ? edit->count : 1) * sizeof *direct);
    if (logged == NULL || direct == NULL) {
        free(logged);
        free(direct);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    size_t logged_count = 0, direct_count = 0;
    for (size_t i = 0; i < edit->count; i++) {
        const vd_vhdx_page *page = &edit->pages[i];
        if (memcmp(page->before, page->after, VD_VHDX_PAGE) == 0)
            continue;
        vd_vhdx_sector_write write = { state->metadata_offset + (uint64_t)page->index * VD_VHDX_PAGE,
                                       page->after };
        if ((uint64_t)page->index * VD_VHDX_PAGE < VD_VHDX_METADATA_TABLE_SIZE
            || vd_vhdx_page_holds_live(live, live_count, page->index))
            logged[logged_count++] = write;
        else
            direct[direct_count++] = write;
    }
    vd_vhdx_log_update update = { .logged = logged, .logged_count = logged_count,
                                  .direct = direct, .direct_count = direct_count };
    uint32_t status = vd_vhdx_log_commit(edit->image, &update);
    free(logged);
    free(direct);
    return status;
}

/* ---- changes -------------------------------------------------------------- */

/* One change: the table as loaded (its entries edited in place), the items
 * live before the change, and the edit. */
typedef struct vd_vhdx_change {
    vd_vhdx_metadata table;
    vd_vhdx_range *live;
    size_t live_count;
    vd_vhdx_edit edit;
} vd_vhdx_change;

static void vd_vhdx_change_end(vd_vhdx_change *change)
{
    vd_vhdx_edit_free(&change->edit);
    free(change->live);
    vd_vhdx_metadata_free(&change->table);
}

static uint32_t vd_vhdx_change_begin(vd_image *image, vd_vhdx_change *change)
{
    memset(change, 0, sizeof *change);
    change->edit.image = image;
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_metadata_load(image, &change->table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    change->live = vd_vhdx_item_ranges((const uint8_t(*)[VD_VHDX_METADATA_ENTRY_SIZE])change->table.entries,
                                       change->table.count, &change->live_count);
    if (change->live == NULL) {
        vd_vhdx_change_end(change);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_change_commit(vd_vhdx_change *change)
{
    return vd_vhdx_edit_commit(&change->edit, change->live, change->live_count);
}

static uint32_t vd_vhdx_user_count(const vd_vhdx_metadata *table)
{
    uint32_t users = 0;
    for (size_t i = 0; i < table->count; i++)
        users += (uint32_t)vd_vhdx_entry_is_user(table->entries[i]);
    return users;
}

uint32_t vd_vhdx_metadata_put(vd_image *image, const uint8_t item[16], int is_user, uint32_t flags,
                              const void *data, uint32_t length)
{
    const vd_vhdx_state *state = image->format_state;
    if (length > VD_VHDX_METADATA_MAX_ITEM_LENGTH)
        return VD_ERROR_VHD_METADATA_FULL;
    vd_vhdx_change change;
    uint32_t status = vd_vhdx_change_begin(image, &change);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhdx_metadata *table = &change.table;
    size_t index = vd_vhdx_metadata_find(table, item, is_user);
    uint32_t new_count = table->count;
    if (index == SIZE_MAX) {
        if (table->count >= VD_VHDX_METADATA_MAX_ENTRIES
            || (is_user && vd_vhdx_user_count(table) >= VD_VHDX_METADATA_MAX_USER_ENTRIES))
            status = VD_ERROR_VHD_METADATA_FULL;
        index = new_count++;
    }
    /* New bytes go to free space, never over the live item they replace;
     * Length 0 has Offset 0 (2.6.1.2). */
    uint32_t offset = 0;
    if (status == VD_ERROR_SUCCESS && length > 0)
        status = vd_vhdx_place(change.live, change.live_count, state->metadata_length, length, &offset);
    if (status == VD_ERROR_SUCCESS && length > 0)
        status = vd_vhdx_edit_write(&change.edit, offset, data, length);
    if (status == VD_ERROR_SUCCESS) {
        uint8_t *entry = table->entries[index];
        if (index == table->count) {
            memset(entry, 0, VD_VHDX_METADATA_ENTRY_SIZE);
            memcpy(entry, item, 16);
            vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_FLAGS_OFFSET,
                          flags | (is_user ? VD_VHDX_METADATA_IS_USER : 0u));
        }
        vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET, offset);
        vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET, length);
        status = vd_vhdx_edit_table(&change.edit, (const uint8_t(*)[32])table->entries, new_count,
                                    table->count);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_change_commit(&change);
    vd_vhdx_change_end(&change);
    return status;
}

uint32_t vd_vhdx_metadata_overwrite(vd_image *image, const uint8_t item[16], const void *data,
                                    uint32_t length)
{
    vd_vhdx_change change;
    uint32_t status = vd_vhdx_change_begin(image, &change);
    if (status != VD_ERROR_SUCCESS)
        return status;
    size_t index = vd_vhdx_metadata_find(&change.table, item, 0);
    if (index == SIZE_MAX || vd_vhdx_entry_length(change.table.entries[index]) < length)
        status = vd_fail(VD_ERROR_FILE_CORRUPT, "the metadata item to overwrite is missing or shorter than"
                         " %" PRIu32 " bytes", length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_edit_write(&change.edit, vd_vhdx_entry_offset(change.table.entries[index]), data,
                                    length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_change_commit(&change);
    vd_vhdx_change_end(&change);
    return status;
}

uint32_t vd_vhdx_metadata_remove(vd_image *image, const uint8_t item[16], int is_user)
{
    vd_vhdx_change change;
    uint32_t status = vd_vhdx_change_begin(image, &change);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhdx_metadata *table = &change.table;
    size_t index = vd_vhdx_metadata_find(table, item, is_user);
    if (index == SIZE_MAX)
        status = VD_ERROR_NOT_FOUND;
    if (status == VD_ERROR_SUCCESS) {
        /* Later entries move up one slot; the item's bytes become free
         * space once the table no longer names them. */
        memmove(table->entries[index], table->entries[index + 1],
                (table->count - index - 1) * sizeof *table->entries);
        status = vd_vhdx_edit_table(&change.edit, (const uint8_t(*)[32])table->entries, table->count - 1,
                                    table->count);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_change_commit(&change);
    vd_vhdx_change_end(&change);
    return status;
}
