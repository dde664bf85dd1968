/* Deferred BAT entries of new blocks (vhdx_pending.h). */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_pending.h"

#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_sectors.h"

uint32_t vd_vhdx_pending_set(vd_image *image, vd_vhdx_state *state, uint64_t index, uint64_t value)
{
    uint32_t status = vd_vhdx_sectors_set_entry(image, &state->pending, state->bat_offset, index, value);
    if (status == VD_ERROR_SUCCESS)
        vd_vhdx_bat_set(image, index, value);
    return status;
}

int vd_vhdx_pending_full(const vd_vhdx_state *state)
{
    return state->pending.count >= VD_VHDX_PENDING_SECTORS;
}

uint32_t vd_vhdx_pending_commit(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (state->pending.count == 0)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_file_flush(&image->file);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_sectors_log(image, &state->pending);
    if (status == VD_ERROR_SUCCESS)
        vd_vhdx_sectors_free(&state->pending);
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
