/* What the VHD files share among themselves: the state an opened image
 * keeps (vhd.c fills it at open, vhd_write.c changes it as blocks are
 * allocated) and the content ops of the write path.  Nothing outside
 * formats/vhd/ includes this header. */
#ifndef VDENGINE_VHD_INTERNAL_H
#define VDENGINE_VHD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/vd_errors.h"
#include "disk/image.h"
#include "formats/vhd/vhd_format.h"

/* One BAT entry in host order.  Readers load it without a lock while a
 * writer, under the state's lock, stores a new block's sector once the
 * block's bitmap and data are written (the file's BAT follows at the next
 * commit, vhd_commit.c). */
typedef _Atomic(uint32_t) vd_vhd_entry;

/* What an open knows of one allocated block's sector bitmap.  Only this
 * open writes the file (its lock says so), and only `lock`'s holders change
 * a bitmap, so the knowledge stays true until they change it: a write that
 * marks sectors, an allocation, a compact that drops the block (UNKNOWN
 * again).  No path clears a bit of a block that stays allocated: unmap
 * writes zeros (dynamic) or marks sectors (differencing), block moves copy
 * the bitmap, resize reopens the image. */
enum vd_vhd_bits {
    VD_VHD_BITS_UNKNOWN = 0,     /* not read yet, or the block unallocated */
    VD_VHD_BITS_ALL = 1,         /* every sector of the block is present */
    VD_VHD_BITS_SOME = 2         /* some sector is not: reads take the bits from
                                    the block's copy (vhd_bitmaps.c) or the file */
};
typedef _Atomic(uint8_t) vd_vhd_flag;

/* A byte of the copy of a sector bitmap (vhd_bitmaps.c), and a block's
 * place in the table of copies. */
typedef _Atomic(uint8_t) vd_vhd_bitmap_byte;
typedef _Atomic(vd_vhd_bitmap_byte *) vd_vhd_bitmap_slot;

/* Blocks whose BAT entries may wait for one commit.  A sequential run of
 * this many has its entries in 8 BAT sectors, one 4 KiB write; with 2 MiB
 * blocks it is 2 GiB of data per forced data flush, which makes that
 * flush's cost vanish beside the data's, while a crash without a flush
 * leaves at most this many blocks as unused space (a compact gives it
 * back). */
#define VD_VHD_PENDING_MAX 1024u

typedef struct vd_vhd_state {
    vd_vhd_footer footer;
    uint64_t table_offset;
    uint32_t table_entries;      /* entries covering virtual_size (<= Max Table Entries) */
    uint32_t block_size;
    uint32_t bitmap_size;        /* bytes before each block's data, whole sectors */
    /* BAT, loaded by the first read or write; atomic so concurrent first
     * reads need no lock (the loser of the race frees its copy). */
    _Atomic(vd_vhd_entry *) table;
    /* The file's size as blocks may use it: reads refuse a block that ends
     * past it.  Grows (before the new block's entry is stored) as writes
     * append blocks; image->file.size follows it under `lock`. */
    _Atomic(uint64_t) file_end;

    /* Writes (vhd_write.c).  `lock` serialises allocation and every change
     * of a sector bitmap; data I/O into sectors already present takes no
     * lock. */
    pthread_mutex_t lock;
    /* Set once the first write found the BAT sound (every block inside the
     * file, clear of the structures and of each other). */
    _Atomic(int) checked;
    /* What this open knows of each block's sector bitmap (vd_vhd_bits,
     * vhd_present.c): where every sector is marked present, a read or a
     * write of the block is a single pread or pwrite.  Allocated by the
     * first read or write that asks. */
    _Atomic(vd_vhd_flag *) present;
    /* Copies of the bitmaps of blocks whose flag is SOME (vhd_bitmaps.c),
     * so that reads of them read no bitmap either: the table is made by
     * the first copy; `bitmap_bytes`, what table and copies take, changes
     * under `lock`. */
    _Atomic(vd_vhd_bitmap_slot *) bitmaps;
    size_t bitmap_bytes;
    uint8_t *scratch;            /* one sector bitmap, used under `lock` */
    /* Blocks allocated since the last commit (vhd_commit.c), in the order
     * they were: `table` names them, the file's BAT does not yet.  Under
     * `lock`. */
    uint32_t pending_count;
    uint32_t pending[VD_VHD_PENDING_MAX];
} vd_vhd_state;

/* The BAT of a dynamic or differencing image, read on first use (open
 * checked that it lies inside the file) by vd_vhd_table_load; every later
 * use, each read and write, is one atomic load, inline. */
uint32_t vd_vhd_table_load(vd_vhd_state *state, const vd_file *file, vd_vhd_entry **out);
static inline uint32_t vd_vhd_table(vd_vhd_state *state, const vd_file *file, vd_vhd_entry **out)
{
    vd_vhd_entry *table = atomic_load_explicit(&state->table, memory_order_acquire);
    if (table == NULL)
        return vd_vhd_table_load(state, file, out);
    *out = table;
    return VD_ERROR_SUCCESS;
}

/* The per-block flags (vd_vhd_bits), allocated on first use; NULL when
 * memory runs out (the caller then reads the bitmaps as it goes). */
vd_vhd_flag *vd_vhd_present_flags(vd_vhd_state *state);
/* Whether every sector of allocated block `block`, whose table entry the
 * caller loaded as `entry`, is present (*all).  The first ask of a block
 * reads its bitmap under `lock` and remembers the answer
 * (vd_vhd_block_learn); later ones cost two atomic loads, inline. */
uint32_t vd_vhd_block_learn(vd_image *image, vd_vhd_state *state, uint32_t block,
                            uint32_t entry, int *all);
static inline uint32_t vd_vhd_block_all_present(vd_image *image, vd_vhd_state *state,
                                                uint32_t block, uint32_t entry, int *all)
{
    vd_vhd_flag *flags = atomic_load_explicit(&state->present, memory_order_acquire);
    uint8_t known = flags == NULL ? VD_VHD_BITS_UNKNOWN
                                  : atomic_load_explicit(&flags[block], memory_order_acquire);
    if (known == VD_VHD_BITS_UNKNOWN)
        return vd_vhd_block_learn(image, state, block, entry, all);
    *all = known == VD_VHD_BITS_ALL;
    return VD_ERROR_SUCCESS;
}
/* The flags of the write path, which vd_vhd_ready allocated. */
static inline vd_vhd_flag *vd_vhd_flags_of(vd_vhd_state *state)
{
    return atomic_load_explicit(&state->present, memory_order_acquire);
}

/* The copy of allocated block `block`'s bitmap, bitmap_size bytes, or NULL
 * when the open keeps none (no lock; only while the flag is SOME). */
const vd_vhd_bitmap_byte *vd_vhd_bitmap_copy(const vd_vhd_state *state, uint32_t block);
/* `bitmap` becomes block `block`'s copy, where the bound leaves room; the
 * caller holds `lock` and stores the flag SOME after it. */
void vd_vhd_bitmap_keep(vd_vhd_state *state, uint32_t block, const uint8_t *bitmap);
/* The whole copy into `out` (bitmap_size bytes); 0 when there is none. */
int vd_vhd_bitmap_take(const vd_vhd_state *state, uint32_t block, uint8_t *out);
/* Bytes [first_byte, end_byte) of a copy into `out`. */
void vd_vhd_bitmap_window(const vd_vhd_bitmap_byte *copy, uint32_t first_byte, uint32_t end_byte,
                          uint8_t *out);
void vd_vhd_bitmaps_release(vd_vhd_state *state);
/* The bitmap buffer of `lock`'s holders, made on first use; NULL when
 * memory runs out. */
uint8_t *vd_vhd_scratch(vd_vhd_state *state);

/* Write-side parts of a new state (`file_size`: the file's size at open)
 * and their release (the state itself is vhd.c's to free). */
uint32_t vd_vhd_write_init(vd_vhd_state *state, uint64_t file_size);
void vd_vhd_write_release(vd_vhd_state *state);

/* The content ops (image.h) of VHD images (vhd_write.c). */
uint32_t vd_vhd_write_fixed(vd_image *image, uint64_t offset, const void *buffer, uint64_t length);
uint32_t vd_vhd_unmap_fixed(vd_image *image, uint64_t offset, uint64_t length);
uint32_t vd_vhd_write_sparse(vd_image *image, uint64_t offset, const void *buffer, uint64_t length);
uint32_t vd_vhd_unmap_sparse(vd_image *image, uint64_t offset, uint64_t length);
uint32_t vd_vhd_flush(vd_image *image);

/* Deferred BAT entries (vhd_commit.c).  The commit flushes the file, so
 * that the new blocks' bitmaps and data are durable, then writes the BAT
 * sectors that hold the pending entries and forgets them; a failure keeps
 * them for the next commit.  _locked: the caller holds state->lock.
 * vd_vhd_commit is a no-op for fixed disks and images never written. */
uint32_t vd_vhd_commit_locked(vd_image *image, vd_vhd_state *state);
uint32_t vd_vhd_commit(vd_image *image);
/* Whether block `block`'s allocation waits for the commit (state->lock). */
int vd_vhd_pending_holds(const vd_vhd_state *state, uint32_t block);
/* Room in the record for `count` more blocks: a commit first when the
 * record would pass VD_VHD_PENDING_MAX (state->lock). */
uint32_t vd_vhd_pending_reserve(vd_image *image, vd_vhd_state *state, uint32_t count);
/* Records block `block` (after vd_vhd_pending_reserve; state->lock). */
void vd_vhd_pending_add(vd_vhd_state *state, uint32_t block);

/* Sectors whose bitmap bits are examined per step of a read or a map: one
 * sector of bitmap, so the bitmap buffer stays on the stack whatever the
 * block size. */
#define VD_VHD_BITMAP_WINDOW_BYTES VD_VHD_SECTOR_SIZE
#define VD_VHD_WINDOW_SECTORS (VD_VHD_BITMAP_WINDOW_BYTES * 8u)

/* Bit `index` of a sector bitmap: set when the sector is in this file. */
static inline int vd_vhd_bitmap_bit(const uint8_t *bitmap, uint32_t index)
{
    return bitmap[index / 8] >> (7 - index % 8) & 1;   /* MSB first */
}

/* Whether the bits of sectors [first, end) of `bitmap` are all set
 * (vhd_present.c). */
int vd_vhd_bits_set(const uint8_t *bitmap, uint32_t first, uint32_t end);

/* The bitmap bits of the sectors [in_block, in_block + length) of an
 * allocated block, all within one window (vhd.c): loaded once, then read
 * run by run. */
typedef struct vd_vhd_window {
    uint32_t first_byte;         /* of the block's bitmap, in bits[0] */
    uint32_t end_sector;         /* past the last sector of the range */
    uint8_t bits[VD_VHD_BITMAP_WINDOW_BYTES];
} vd_vhd_window;

/* Taken from the block's copy where the open keeps one, else read from the
 * bitmap at `entry`. */
uint32_t vd_vhd_window_load(const vd_image *image, uint32_t block, uint32_t entry, uint32_t in_block,
                            uint32_t length, vd_vhd_window *window);
/* The end of the run of sectors from `sector` (of the block) whose bits
 * equal its own, *present; at most the window's end_sector. */
uint32_t vd_vhd_window_run(const vd_vhd_window *window, uint32_t sector, int *present);

/* The map ops (image.h) of fixed and of dynamic or differencing images
 * (vhd_map.c). */
uint32_t vd_vhd_map_fixed(vd_image *image, uint64_t offset, uint64_t length, vd_run *run);
uint32_t vd_vhd_map_sparse(vd_image *image, uint64_t offset, uint64_t length, vd_run *run);

/* Bytes of block `block` inside the disk: the last block may be cut short. */
static inline uint64_t vd_vhd_block_bytes(const vd_image *image, const vd_vhd_state *state,
                                          uint64_t block)
{
    uint64_t left = image->virtual_size - block * state->block_size;
    return left < state->block_size ? left : state->block_size;
}

/* A byte range of the file, [start, end). */
typedef struct vd_vhd_extent {
    uint64_t start, end;
} vd_vhd_extent;

/* The structures no block may meet: the footer copy, the dynamic header,
 * the BAT and the parent locators' data (vhd_write.c). */
#define VD_VHD_STRUCTURE_MAX (3 + VD_VHD_LOCATOR_COUNT)
uint32_t vd_vhd_structures(const vd_image *image, const vd_vhd_state *state,
                           vd_vhd_extent out[VD_VHD_STRUCTURE_MAX], size_t *count);

/* Where block data may end (before the end footer, or the file's end when
 * open trusted the copy at 0), and the trusted footer's 512 bytes. */
uint32_t vd_vhd_data_end(const vd_image *image, uint8_t footer[VD_VHD_FOOTER_SIZE],
                         uint64_t *data_end);

/* The once-per-open BAT check of the write path (every block inside the
 * data, clear of the structures and of each other); takes state->lock. */
uint32_t vd_vhd_ready(vd_image *image, vd_vhd_state *state);

/* The driver's merge slot (vhd_merge.c). */
struct vd_merge_request;
uint32_t vd_vhd_merge(vd_image *image, const struct vd_merge_request *request);

/* Resize (driver.h), grow only (vhd_resize.c). */
struct vd_resize_request;
uint32_t vd_vhd_resize(vd_image *image, const struct vd_resize_request *request);

/* Room for a dynamic VHD's BAT to grow in place over [from, to), the
 * blocks there moved past `data_end` and `to`, the end footer (`footer`,
 * the old one) after them; *room 0 when a structure lies there and nothing
 * was written (vhd_bat_grow.c).  `operation` gets progress
 * and is cancelled between block moves (OPERATION_ABORTED, the old disk). */
struct vd_operation;
uint32_t vd_vhd_bat_make_room(vd_image *image, uint64_t from, uint64_t to, uint64_t data_end,
                              const uint8_t footer[VD_VHD_FOOTER_SIZE], struct vd_operation *operation,
                              int *room);

/* Compact (driver.h) of a dynamic or differencing VHD (vhd_compact.c). */
struct vd_compact_request;
uint32_t vd_vhd_compact(vd_image *image, const struct vd_compact_request *request);

#endif
