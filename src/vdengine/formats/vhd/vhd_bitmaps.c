/* Copies of the sector bitmaps of blocks that are only partly present
 * (flag VD_VHD_BITS_SOME, vhd_present.c): a read of such a block takes
 * its bits from the copy and reads only the data, a write into it marks
 * the copy instead of reading the bitmap first.
 *
 * A copy is true while its block's flag is SOME.  Only this open writes
 * the file (its lock says so) and every change of a bitmap holds the
 * state's lock, so a copy is made or changed only there, and always
 * before the flag that vouches for it is stored: the first read of a
 * block (the flag's learning reads the whole bitmap), an allocation that
 * leaves sectors to the parent, a write that marks sectors.  A compact
 * that drops a block stores UNKNOWN: the copy is kept but no longer
 * consulted, and the block's next learning or allocation overwrites it.
 * Block moves (compact, a BAT grow) copy the bitmap along with the block,
 * so a copy, which belongs to the block's number, not to its place, stays
 * true; resize and reopen build a new state.
 *
 * Readers take the bits without the lock: the copy's bytes are atomic and
 * change only by gaining bits (no path clears a bit of a block that stays
 * allocated), each gained after the data it vouches for is written, so a
 * reader sees for every sector the old answer or the new one. */
#include "formats/vhd/vhd_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

/* What the copies (and the table that names them) may take per open.  A
 * VHD bitmap is 1/4096 of the data it describes (512 bytes per 2 MiB
 * block), so copying every block's would take up to 510 MiB for a 2040 GiB
 * disk.  32 MiB holds the table of the copies of a 2040 GiB disk (8 MiB)
 * and the bitmaps of 48 Ki partly present 2 MiB blocks (96 GiB of them); a
 * table may take half of it at most.  A block past the bound reads its
 * bitmap from the file as it goes.  Copies
 * are never freed before the release: a reader may hold one at any moment,
 * and giving a copy back would need every reader to say when it is done. */
#define VD_VHD_BITMAP_COPIES_MAX ((size_t)32 << 20)

/* The table of copies, made under `lock` by the first copy. */
static vd_vhd_bitmap_slot *vd_vhd_bitmap_table(vd_vhd_state *state)
{
    vd_vhd_bitmap_slot *slots = atomic_load_explicit(&state->bitmaps, memory_order_relaxed);
    if (slots != NULL)
        return slots;
    size_t bytes = (size_t)state->table_entries * sizeof *slots;
    if (bytes / sizeof *slots != state->table_entries || bytes > VD_VHD_BITMAP_COPIES_MAX / 2)
        return NULL;
    slots = calloc(state->table_entries, sizeof *slots);
    if (slots == NULL)
        return NULL;
    for (uint32_t i = 0; i < state->table_entries; i++)
        atomic_init(&slots[i], NULL);
    state->bitmap_bytes += bytes;
    atomic_store_explicit(&state->bitmaps, slots, memory_order_release);
    return slots;
}

const vd_vhd_bitmap_byte *vd_vhd_bitmap_copy(const vd_vhd_state *state, uint32_t block)
{
    vd_vhd_flag *flags = atomic_load_explicit(&state->present, memory_order_acquire);
    vd_vhd_bitmap_slot *slots = atomic_load_explicit(&state->bitmaps, memory_order_acquire);
    if (flags == NULL || slots == NULL
        || atomic_load_explicit(&flags[block], memory_order_acquire) != VD_VHD_BITS_SOME)
        return NULL;
    return atomic_load_explicit(&slots[block], memory_order_acquire);
}

void vd_vhd_bitmap_keep(vd_vhd_state *state, uint32_t block, const uint8_t *bitmap)
{
    vd_vhd_bitmap_slot *slots = vd_vhd_bitmap_table(state);
    if (slots == NULL)
        return;
    vd_vhd_bitmap_byte *copy = atomic_load_explicit(&slots[block], memory_order_relaxed);
    int made = copy == NULL;
    if (made) {
        if (state->bitmap_bytes + state->bitmap_size > VD_VHD_BITMAP_COPIES_MAX)
            return;
        copy = malloc(state->bitmap_size);
        if (copy == NULL)
            return;
        state->bitmap_bytes += state->bitmap_size;
    }
    /* Release: a reader that sees a bit sees the data written before it. */
    for (uint32_t i = 0; i < state->bitmap_size; i++)
        atomic_store_explicit(&copy[i], bitmap[i], memory_order_release);
    if (made)
        atomic_store_explicit(&slots[block], copy, memory_order_release);
}

int vd_vhd_bitmap_take(const vd_vhd_state *state, uint32_t block, uint8_t *out)
{
    const vd_vhd_bitmap_byte *copy = vd_vhd_bitmap_copy(state, block);
    if (copy == NULL)
        return 0;
    vd_vhd_bitmap_window(copy, 0, state->bitmap_size, out);
    return 1;
}

void vd_vhd_bitmap_window(const vd_vhd_bitmap_byte *copy, uint32_t first_byte, uint32_t end_byte,
                          uint8_t *out)
{
    for (uint32_t i = first_byte; i < end_byte; i++)
        out[i - first_byte] = atomic_load_explicit(&copy[i], memory_order_acquire);
}

void vd_vhd_bitmaps_release(vd_vhd_state *state)
{
    vd_vhd_bitmap_slot *slots = atomic_load_explicit(&state->bitmaps, memory_order_relaxed);
    if (slots != NULL)
        for (uint32_t i = 0; i < state->table_entries; i++)
            free((void *)atomic_load_explicit(&slots[i], memory_order_relaxed));
    free((void *)slots);
    atomic_store_explicit(&state->bitmaps, NULL, memory_order_relaxed);
    state->bitmap_bytes = 0;
}
