/* Where a VHD's content lies in its file (the map op, image.h), read the
 * way vhd.c reads it:
 *   - fixed: the file from offset 0, byte for byte;
 *   - dynamic and differencing: a block the BAT does not name is absent
 *     (zeros in a dynamic disk, the parent's in a differencing one); in an
 *     allocated block each sector is in the file where its bitmap bit is
 *     set and absent where it is clear, so runs end where the bit changes
 *     (a block whose every bit is set is one run, vhd_present.c).
 * A block the read would refuse (it ends past the file) is VD_RUN_READ,
 * so that the read reports it. */
#include "disk/image.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"

#include <stdatomic.h>

#include "base/vd_errors.h"

uint32_t vd_vhd_map_fixed(vd_image *image, uint64_t offset, uint64_t length, vd_run *run)
{
    (void)image;
    run->kind = VD_RUN_FILE;
    run->length = length;
    run->file_offset = offset;
    return VD_ERROR_SUCCESS;
}

/* The run at `in_block` of allocated block `block` (at sector `entry`),
 * within one bitmap window and at most `length` bytes. */
static uint32_t vd_vhd_map_window(const vd_image *image, const vd_vhd_state *state, uint32_t block,
                                  uint32_t entry, uint32_t in_block, uint32_t length, vd_run *run)
{
    vd_vhd_window window;
    uint32_t status = vd_vhd_window_load(image, block, entry, in_block, length, &window);
    if (status != VD_ERROR_SUCCESS)
        return status;
    int present;
    uint32_t run_end = vd_vhd_window_run(&window, in_block / VD_VHD_SECTOR_SIZE, &present)
                       * VD_VHD_SECTOR_SIZE;
    if (run_end > in_block + length)
        run_end = in_block + length;
    run->length = run_end - in_block;
    if (present) {
        run->kind = VD_RUN_FILE;
        run->file_offset = (uint64_t)entry * VD_VHD_SECTOR_SIZE + state->bitmap_size + in_block;
    } else {
        run->kind = image->subtype == VD_SUBTYPE_DIFFERENCING ? VD_RUN_PARENT : VD_RUN_ZERO;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_map_sparse(vd_image *image, uint64_t offset, uint64_t length, vd_run *run)
{
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table;
    uint32_t status = vd_vhd_table(state, &image->file, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint32_t block = (uint32_t)(offset / state->block_size);
    uint64_t block_start = (uint64_t)block * state->block_size;
    uint32_t in_block = (uint32_t)(offset - block_start);
    uint64_t block_bytes = vd_vhd_block_bytes(image, state, block);
    uint64_t step = block_bytes - in_block;
    if (step > length)
        step = length;

    uint32_t entry = atomic_load_explicit(&table[block], memory_order_acquire);
    if (entry == VD_VHD_BAT_UNALLOCATED) {
        run->kind = image->subtype == VD_SUBTYPE_DIFFERENCING ? VD_RUN_PARENT : VD_RUN_ZERO;
        run->length = step;
        return VD_ERROR_SUCCESS;
    }
    uint64_t bitmap_offset = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
    uint64_t block_end = bitmap_offset + state->bitmap_size + block_bytes;
    if (block_end > atomic_load_explicit(&state->file_end, memory_order_acquire)) {
        run->kind = VD_RUN_READ;
        run->length = step;
        return VD_ERROR_SUCCESS;
    }
    int all;
    uint32_t known = vd_vhd_block_all_present(image, state, block, entry, &all);
    if (known != VD_ERROR_SUCCESS)
        return known;
    if (all) {
        run->kind = VD_RUN_FILE;
        run->length = step;
        run->file_offset = bitmap_offset + state->bitmap_size + in_block;
        return VD_ERROR_SUCCESS;
    }
    uint64_t window_bytes = (uint64_t)VD_VHD_WINDOW_SECTORS * VD_VHD_SECTOR_SIZE;
    uint64_t window_end = (in_block / window_bytes + 1) * window_bytes;
    if (step > window_end - in_block)
        step = window_end - in_block;
    return vd_vhd_map_window(image, state, block, entry, in_block, (uint32_t)step, run);
}
