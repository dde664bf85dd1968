/* The sectors one VHDX content update changes (vhdx_sectors.h). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_sectors.h"

#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_pending.h"

vd_vhdx_sector *vd_vhdx_sectors_find(const vd_vhdx_sector_set *set, uint64_t offset)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].offset == offset)
            return &set->items[i];
    return NULL;
}

uint32_t vd_vhdx_sectors_get(vd_image *image, vd_vhdx_sector_set *set, uint64_t offset, int fresh,
                             vd_vhdx_sector **sector)
{
    const vd_vhdx_state *state = image->format_state;
    /* Sets stay small (a few BAT sectors, at most a hundred or so bitmap
     * sectors), so a linear search is the cheapest lookup; a resize that
     * fills a whole new table asks for the sector it added last, over and
     * over, which is looked at first. */
    vd_vhdx_sector *found = set->count > 0 && set->items[set->count - 1].offset == offset
                          ? &set->items[set->count - 1]
                          : vd_vhdx_sectors_find(set, offset);
    if (found != NULL) {
        *sector = found;
        return VD_ERROR_SUCCESS;
    }
    if (set->count == set->capacity) {
        size_t capacity = set->capacity ? set->capacity * 2 : 8;
        vd_vhdx_sector *grown = realloc(set->items, capacity * sizeof *grown);
        if (grown == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        set->items = grown;
        set->capacity = capacity;
    }
    uint8_t *data = fresh ? calloc(1, VD_VHDX_LOG_SECTOR_SIZE) : malloc(VD_VHDX_LOG_SECTOR_SIZE);
    if (data == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    /* A live sector with deferred entries is, for every other update, what
     * the file will hold once they are committed (which happens first). */
    const vd_vhdx_sector *deferred = !fresh && set != &state->pending
                                   ? vd_vhdx_sectors_find(&state->pending, offset) : NULL;
    if (deferred != NULL) {
        memcpy(data, deferred->data, VD_VHDX_LOG_SECTOR_SIZE);
    } else if (!fresh) {
        uint32_t status = vd_vhdx_state_read(image, offset, data, VD_VHDX_LOG_SECTOR_SIZE);
        if (status != VD_ERROR_SUCCESS) {
            free(data);
            return status;
        }
    }
    set->items[set->count] = (vd_vhdx_sector){ offset, fresh, 0, data };
    *sector = &set->items[set->count++];
    return VD_ERROR_SUCCESS;
}

size_t vd_vhdx_sectors_dirty(const vd_vhdx_sector_set *set)
{
    size_t dirty = 0;
    for (size_t i = 0; i < set->count; i++)
        dirty += set->items[i].dirty != 0;
    return dirty;
}

static int vd_vhdx_sector_order(const void *left, const void *right)
{
    uint64_t a = ((const vd_vhdx_sector_write *)left)->file_offset;
    uint64_t b = ((const vd_vhdx_sector_write *)right)->file_offset;
    return (a > b) - (a < b);
}


static int vd_vhdx_sector_is_zero(const uint8_t *data)
{
    static const uint8_t zeros[VD_VHDX_LOG_SECTOR_SIZE];
    return memcmp(data, zeros, VD_VHDX_LOG_SECTOR_SIZE) == 0;
}

/* The sorted fresh sectors that are all zeros, as runs of adjacent ones
 * (zero descriptors of the entry); the others stay in `direct`, in order.
 * *zeros is malloc'ed. */
static uint32_t vd_vhdx_sectors_zero_runs(vd_vhdx_sector_write *direct, size_t *direct_count,
                                          vd_vhdx_zero_run **zeros, size_t *zero_count)
{
    *zeros = malloc((*direct_count ? *direct_count : 1) * sizeof **zeros);
    *zero_count = 0;
    if (*zeros == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    size_t kept = 0;
    for (size_t i = 0; i < *direct_count; i++) {
        if (!vd_vhdx_sector_is_zero(direct[i].data)) {
            direct[kept++] = direct[i];
            continue;
        }
        vd_vhdx_zero_run *last = *zero_count > 0 ? &(*zeros)[*zero_count - 1] : NULL;
        if (last != NULL && last->file_offset + last->length == direct[i].file_offset)
            last->length += VD_VHDX_LOG_SECTOR_SIZE;
        else
            (*zeros)[(*zero_count)++] = (vd_vhdx_zero_run){ direct[i].file_offset, VD_VHDX_LOG_SECTOR_SIZE };
    }
    *direct_count = kept;
    return VD_ERROR_SUCCESS;
}

/* vd_vhdx_sectors_log, the entry left live or not (vhdx_log_write.h); a
 * live one takes the zero sectors as zero descriptors. */
static uint32_t vd_vhdx_sectors_log_as(vd_image *image, const vd_vhdx_sector_set *set, int leave_live)
{
    size_t dirty = vd_vhdx_sectors_dirty(set);
    if (dirty == 0)
        return VD_ERROR_SUCCESS;
    vd_vhdx_sector_write *writes = malloc(dirty * sizeof *writes);
    if (writes == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    /* Logged sectors first, direct ones after, each part sorted. */
    size_t logged = 0, direct = dirty;
    for (size_t i = 0; i < set->count; i++) {
        const vd_vhdx_sector *sector = &set->items[i];
        if (!sector->dirty)
            continue;
        vd_vhdx_sector_write write = { sector->offset, sector->data };
        if (sector->fresh)
            writes[--direct] = write;
        else
            writes[logged++] = write;
    }
    qsort(writes, logged, sizeof *writes, vd_vhdx_sector_order);
    qsort(writes + logged, dirty - logged, sizeof *writes, vd_vhdx_sector_order);
    vd_vhdx_log_update update = { .logged = writes, .logged_count = logged, .direct = writes + logged,
                                  .direct_count = dirty - logged, .leave_live = leave_live };
    vd_vhdx_zero_run *zeros = NULL;
    uint32_t status = leave_live ? vd_vhdx_sectors_zero_runs(writes + logged, &update.direct_count, &zeros,
                                                             &update.zero_count)
                                 : VD_ERROR_SUCCESS;
    update.zeros = zeros;
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_log_commit(image, &update);
    free(zeros);
    free(writes);
    return status;
}

uint32_t vd_vhdx_sectors_log(vd_image *image, const vd_vhdx_sector_set *set)
{
    return vd_vhdx_sectors_log_as(image, set, 0);
}

uint32_t vd_vhdx_sectors_commit(vd_image *image, const vd_vhdx_sector_set *set)
{
    uint32_t status = vd_vhdx_pending_commit(image);
    return status == VD_ERROR_SUCCESS ? vd_vhdx_sectors_log_as(image, set, 0) : status;
}

uint32_t vd_vhdx_sectors_commit_live(vd_image *image, const vd_vhdx_sector_set *set)
{
    uint32_t status = vd_vhdx_pending_commit(image);
    return status == VD_ERROR_SUCCESS ? vd_vhdx_sectors_log_as(image, set, 1) : status;
}

void vd_vhdx_sectors_free(vd_vhdx_sector_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free(set->items[i].data);
    free(set->items);
    set->items = NULL;
    set->count = set->capacity = 0;
}

uint32_t vd_vhdx_sectors_set_entry(vd_image *image, vd_vhdx_sector_set *set, uint64_t bat_offset,
                                   uint64_t index, uint64_t entry)
{
    vd_vhdx_sector *sector;
    uint32_t status = vd_vhdx_sectors_get(image, set, vd_vhdx_bat_sector(bat_offset, index), 0, &sector);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_store_le64(sector->data + index * VD_VHDX_BAT_ENTRY_SIZE % VD_VHDX_LOG_SECTOR_SIZE, entry);
    sector->dirty = 1;
    return VD_ERROR_SUCCESS;
}
