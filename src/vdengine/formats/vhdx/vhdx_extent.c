/* Whether a VHDX's content is one run of file bytes (driver.h,
 * direct_extent), as in a fixed VHDX laid out by its creator block after
 * block: then a loop device maps the disk onto the file with an offset and
 * a size limit, and no engine code is in the data path.
 *
 * Not for differencing images (sectors come from the parent too), nor for a
 * read-only open of an image whose log is not replayed into the file (the
 * file's bytes are not yet the disk's): Windows refuses to attach such an
 * image read-only with ACCESS_DENIED, and so does this. */

#include "base/detail.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_write_plan.h"

/* Walks the payload entries of the BAT; *contiguous stays 0 at the first
 * block that is absent or out of place. */
static uint32_t vd_vhdx_payload_run(vd_image *image, vd_vhdx_state *state, int *contiguous,
                                    uint64_t *offset)
{
    uint64_t blocks = (state->virtual_size + state->block_size - 1) / state->block_size;
    uint64_t first = 0;
    for (uint64_t block = 0; block < blocks; block++) {
        uint64_t entry, place;
        uint32_t status = vd_vhdx_bat_get(image, vd_vhdx_payload_index(state, block), &entry);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if ((entry & VD_VHDX_BAT_STATE_MASK) != VD_VHDX_PAYLOAD_FULLY_PRESENT)
            return VD_ERROR_SUCCESS;
        status = vd_vhdx_payload_place(state, entry, vd_vhdx_block_bytes(state, block), &place);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (block == 0)
            first = place;
        else if (place != first + block * (uint64_t)state->block_size)
            return VD_ERROR_SUCCESS;
    }
    *contiguous = blocks > 0;
    *offset = first;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_direct_extent(vd_image *image, int for_writing, int *contiguous,
                               uint64_t *offset)
{
    vd_vhdx_state *state = image->format_state;
    *contiguous = 0;
    *offset = 0;
    if (state->replay != NULL)
        return vd_fail(VD_ERROR_ACCESS_DENIED,
                       "the VHDX log holds updates not yet written into the file; open the image "
                       "read-write once (that replays the log), then attach it read-only");
    if (state->differencing)
        return VD_ERROR_SUCCESS;
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_payload_run(image, state, contiguous, offset);
    /* Writes through the device change user-visible data without the
     * engine seeing them: DataWriteGuid changes before they can (2.2.2). */
    if (status == VD_ERROR_SUCCESS && *contiguous && for_writing)
        status = vd_vhdx_data_write_guid(image, state);
    pthread_mutex_unlock(&state->allocation_lock);
    if (status != VD_ERROR_SUCCESS)
        *contiguous = 0;
    return status;
}
