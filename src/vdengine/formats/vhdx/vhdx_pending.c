/* Deferred changes of VHDX structures (vhdx_pending.h). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_pending.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_sectors.h"

/* Before a sector joins the record: the space its commit will write is
 * allocated now -- the sector in place and, once per open, the log (qemu
 * and sparse copies leave both as holes) -- so that a host that fills up
 * fails the write that needs the space with DISK_FULL, not the flush or
 * the close after it. */
static uint32_t vd_vhdx_pending_reserve(vd_image *image, vd_vhdx_state *state, uint64_t offset)
{
    if (!state->log_reserved) {
        uint32_t status = vd_file_reserve(&image->file, state->log_offset, state->log_length);
        if (status != VD_ERROR_SUCCESS)
            return status;
        state->log_reserved = 1;
    }
    return vd_file_reserve(&image->file, offset, VD_VHDX_LOG_SECTOR_SIZE);
}

uint32_t vd_vhdx_pending_set(vd_image *image, vd_vhdx_state *state, uint64_t index, uint64_t value)
{
    uint64_t sector = vd_vhdx_bat_sector(state->bat_offset, index);
    uint32_t status = vd_vhdx_sectors_find(&state->pending, sector) != NULL ? VD_ERROR_SUCCESS
                                                                  : vd_vhdx_pending_reserve(image, state, sector);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_set_entry(image, &state->pending, state->bat_offset, index, value);
    if (status == VD_ERROR_SUCCESS)
        vd_vhdx_bat_set(image, index, value);
    return status;
}

uint32_t vd_vhdx_pending_take(vd_image *image, vd_vhdx_state *state, vd_vhdx_sector_set *sectors)
{
    vd_vhdx_sector_set *record = &state->pending;
    for (size_t i = 0; i < sectors->count; i++) {
        const vd_vhdx_sector *sector = &sectors->items[i];
        if (sector->dirty && vd_vhdx_sectors_find(&state->pending, sector->offset) == NULL) {
            uint32_t status = vd_vhdx_pending_reserve(image, state, sector->offset);
            if (status != VD_ERROR_SUCCESS)
                return status;
        }
    }
    size_t needed = record->count + sectors->count;
    if (needed > record->capacity) {
        vd_vhdx_sector *grown = realloc(record->items, needed * sizeof *grown);
        if (grown == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        record->items = grown;
        record->capacity = needed;
    }
    size_t bitmaps = 0;
    for (size_t i = 0; i < sectors->count; i++) {
        vd_vhdx_sector *sector = &sectors->items[i];
        vd_vhdx_sector *recorded = sector->dirty ? vd_vhdx_sectors_find(&state->pending, sector->offset) : NULL;
        if (!sector->dirty) {
            free(sector->data);
        } else if (recorded != NULL) {
            /* The copy started from the recorded bytes; a fresh sector stays
             * fresh until the entry that allocated its block is in the file. */
            free(recorded->data);
            recorded->data = sector->data;
        } else {
            record->items[record->count++] = *sector;
            bitmaps++;
        }
    }
    free(sectors->items);
    sectors->items = NULL;
    sectors->count = sectors->capacity = 0;
    atomic_fetch_add_explicit(&state->pending_bitmaps, bitmaps, memory_order_release);
    return VD_ERROR_SUCCESS;
}

int vd_vhdx_pending_full(const vd_vhdx_state *state)
{
    return state->pending.count >= VD_VHDX_PENDING_SECTORS;
}

int vd_vhdx_pending_no_room(const vd_vhdx_state *state, size_t sectors)
{
    return state->pending.count + sectors > VD_VHDX_PENDING_LIMIT;
}

uint32_t vd_vhdx_pending_commit(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (state->pending.count == 0)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhdx_file_flush(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_log(image, &state->pending);
    if (status == VD_ERROR_SUCCESS) {
        vd_vhdx_sectors_free(&state->pending);
        atomic_store_explicit(&state->pending_bitmaps, 0, memory_order_release);
    }
    return status;
}

uint32_t vd_vhdx_pending_read(vd_image *image, uint64_t offset, void *buffer, size_t length)
{
    vd_vhdx_state *state = image->format_state;
    if (atomic_load_explicit(&state->pending_bitmaps, memory_order_acquire) == 0)
        return vd_vhdx_state_read(image, offset, buffer, length);
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_state_read(image, offset, buffer, length);
    for (size_t i = 0; i < state->pending.count && status == VD_ERROR_SUCCESS; i++) {
        const vd_vhdx_sector *sector = &state->pending.items[i];
        uint64_t from = sector->offset > offset ? sector->offset : offset;
        uint64_t sector_end = sector->offset + VD_VHDX_LOG_SECTOR_SIZE, end = offset + length;
        uint64_t to = sector_end < end ? sector_end : end;
        if (from < to)
            memcpy((uint8_t *)buffer + (from - offset), sector->data + (from - sector->offset), (size_t)(to - from));
    }
    pthread_mutex_unlock(&state->allocation_lock);
    return status;
}

void vd_vhdx_pending_release(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (state->pending.count > 0 && image->file.writable) {
        pthread_mutex_lock(&state->allocation_lock);
        (void)vd_vhdx_pending_commit(image);
        pthread_mutex_unlock(&state->allocation_lock);
    }
    vd_vhdx_sectors_free(&state->pending);
}
