/* Where a VHDX's content lies in its file (the map op, image.h), one
 * payload block at a time, read the way vhdx.c reads it:
 *   FULLY_PRESENT                 the block's bytes in the file;
 *   NOT_PRESENT                   the parent's in a differencing image,
 *                                 zeros otherwise (2.5.1.1);
 *   UNDEFINED, UNMAPPED, ZERO     zeros, the parent not consulted;
 *   PARTIALLY_PRESENT             VD_RUN_READ: the read merges child and
 *                                 parent sector by sector from the bitmap.
 * A read-only open of a dirty image reads through the log replayed in
 * memory, so the file's bytes are not its content: all VD_RUN_READ.  A
 * block the read would refuse fails here with the read's code and detail,
 * or is VD_RUN_READ so that the read reports it. */
#include "disk/image.h"
#include "formats/vhdx/vhdx_internal.h"

#include "base/vd_errors.h"

uint32_t vd_vhdx_map(vd_image *image, uint64_t offset, uint64_t length, vd_run *run)
{
    vd_vhdx_state *state = image->format_state;
    uint64_t block = offset / state->block_size;
    uint64_t within = offset % state->block_size;
    run->length = state->block_size - within < length ? state->block_size - within : length;
    run->kind = VD_RUN_READ;
    if (state->replay != NULL)
        return VD_ERROR_SUCCESS;

    uint64_t entry, index = vd_vhdx_payload_index(state, block);
    uint32_t status = vd_vhdx_bat_get(image, index, &entry);
    if (status != VD_ERROR_SUCCESS || (entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        return status;
    switch (entry & VD_VHDX_BAT_STATE_MASK) {
    case VD_VHDX_PAYLOAD_FULLY_PRESENT: {
        uint64_t block_start = block * state->block_size;
        uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                             ? state->virtual_size - block_start : state->block_size;
        uint64_t payload_offset;
        status = vd_vhdx_block_offset(state, index, entry, block_bytes, &payload_offset);
        if (status != VD_ERROR_SUCCESS)
            return status;
        run->kind = VD_RUN_FILE;
        run->file_offset = payload_offset + within;
        break;
    }
    case VD_VHDX_PAYLOAD_NOT_PRESENT:
        run->kind = state->differencing ? VD_RUN_PARENT : VD_RUN_ZERO;
        break;
    case VD_VHDX_PAYLOAD_UNDEFINED:
    case VD_VHDX_PAYLOAD_UNMAPPED:
    case VD_VHDX_PAYLOAD_ZERO:
        run->kind = VD_RUN_ZERO;
        break;
    default:   /* PARTIALLY_PRESENT, and reserved states the read refuses */
        break;
    }
    return VD_ERROR_SUCCESS;
}
