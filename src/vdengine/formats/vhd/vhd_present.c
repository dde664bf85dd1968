/* What an open knows of its blocks' sector bitmaps (enum vd_vhd_bits):
 * a read of a block whose every sector is present is one pread, with no
 * bitmap read, as a write into it is one pwrite.
 *
 * A block's flag is learned by the first read or write that needs it:
 * under the state's lock, which every change of a bitmap holds, the entry
 * is loaded again (a compact may have dropped the block meanwhile), the
 * block's bitmap read and the answer stored, and where the answer is SOME
 * the bitmap kept (vhd_bitmaps.c).  A block the write path
 * allocates or marks gets its flag there, under the same lock.  Flags are
 * loaded without the lock, after the block's table entry: an allocation
 * stores the flag before the entry, a compact that drops a block stores
 * the entry before clearing the flag, so a reader that sees an entry sees
 * at least the flag that goes with it. */
#include "formats/vhd/vhd_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "base/vd_errors.h"

int vd_vhd_bits_set(const uint8_t *bitmap, uint32_t first, uint32_t end)
{
    uint32_t sector = first;
    for (; sector < end && sector % 8 != 0; sector++)
        if (!vd_vhd_bitmap_bit(bitmap, sector))
            return 0;
    for (; sector + 8 <= end; sector += 8)
        if (bitmap[sector / 8] != 0xFF)
            return 0;
    for (; sector < end; sector++)
        if (!vd_vhd_bitmap_bit(bitmap, sector))
            return 0;
    return 1;
}

vd_vhd_flag *vd_vhd_present_flags(vd_vhd_state *state)
{
    vd_vhd_flag *flags = atomic_load_explicit(&state->present, memory_order_acquire);
    if (flags != NULL)
        return flags;
    flags = calloc((size_t)state->table_entries + 1, sizeof *flags);
    if (flags == NULL)
        return NULL;
    vd_vhd_flag *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&state->present, &expected, flags,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        free(flags);
        flags = expected;
    }
    return flags;
}

/* Whether allocated block `block`, whose bitmap is at sector `entry`, has
 * every sector present (*learned 0 when memory for the bitmap ran out: the
 * read goes on through the bitmap's windows); a block that has not keeps a
 * copy of its bitmap (vhd_bitmaps.c).  The bitmap is read whole, in one
 * read (the caller holds the lock, whose holders share the scratch). */
static uint32_t vd_vhd_learn(vd_image *image, vd_vhd_state *state, uint32_t block, uint32_t entry,
                             int *all, int *learned)
{
    uint8_t *bitmap = vd_vhd_scratch(state);
    *learned = bitmap != NULL;
    if (bitmap == NULL)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_file_read(&image->file, (uint64_t)entry * VD_VHD_SECTOR_SIZE, bitmap,
                                   state->bitmap_size);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint32_t sectors = (uint32_t)(vd_vhd_block_bytes(image, state, block) / VD_VHD_SECTOR_SIZE);
    *all = vd_vhd_bits_set(bitmap, 0, sectors);
    if (!*all)
        vd_vhd_bitmap_keep(state, block, bitmap);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_block_learn(vd_image *image, vd_vhd_state *state, uint32_t block,
                            uint32_t entry, int *all)
{
    *all = 0;
    vd_vhd_flag *flags = vd_vhd_present_flags(state);
    if (flags == NULL)
        return VD_ERROR_SUCCESS;
    uint8_t known = atomic_load_explicit(&flags[block], memory_order_acquire);
    if (known != VD_VHD_BITS_UNKNOWN) {
        *all = known == VD_VHD_BITS_ALL;
        return VD_ERROR_SUCCESS;
    }
    vd_vhd_entry *table = atomic_load_explicit(&state->table, memory_order_acquire);
    uint32_t status = VD_ERROR_SUCCESS;
    pthread_mutex_lock(&state->lock);
    known = atomic_load_explicit(&flags[block], memory_order_relaxed);
    if (atomic_load_explicit(&table[block], memory_order_relaxed) != entry) {
        /* Moved or dropped since the caller looked: no lesson about it. */
    } else if (known != VD_VHD_BITS_UNKNOWN) {
        *all = known == VD_VHD_BITS_ALL;
    } else {
        int learned;
        status = vd_vhd_learn(image, state, block, entry, all, &learned);
        if (status == VD_ERROR_SUCCESS && learned)
            atomic_store_explicit(&flags[block], *all ? VD_VHD_BITS_ALL : VD_VHD_BITS_SOME,
                                  memory_order_release);
    }
    pthread_mutex_unlock(&state->lock);
    return status;
}
