/* What the VHDX files share among themselves: the state an opened image
 * keeps (vhdx.c fills it), the header update and the structure reads that
 * the update code (vhdx_update.c, vhdx_metadata.c, vhdx_log_write.c) builds
 * on, and the parent locator builder that creating and re-parenting share
 * (vhdx_create.c).  Nothing outside vhdx*.c includes this header. */
#ifndef VDENGINE_VHDX_INTERNAL_H
#define VDENGINE_VHDX_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "disk/image.h"
#include "disk/image_update.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_log.h"
#include "formats/vhdx/vhdx_sectors.h"

typedef _Atomic(uint64_t) vd_vhdx_bat_value;
typedef _Atomic(vd_vhdx_bat_value *) vd_vhdx_bat_page;

typedef struct vd_vhdx_state {
    vd_vhdx_replay *replay;       /* read-only open of a dirty image, else NULL */
    /* File size as the replayed log has it; grows under allocation_lock
     * while readers check block offsets against it. */
    _Atomic(uint64_t) data_size;
    uint64_t virtual_size;
    uint64_t bat_offset;
    uint64_t bat_entries;
    uint64_t bat_length;          /* bytes of the BAT region */
    uint32_t block_size;
    uint32_t chunk_ratio;         /* payload blocks per sector bitmap block */
    uint32_t logical_sector_size;
    int differencing;
    int has_parent_linkage2;
    vd_guid parent_linkage2;
    size_t bat_page_count;
    _Atomic(vd_vhdx_bat_page *) bat_pages;   /* allocated by the first read */

    /* What updates need (image_update.h).  `header` is the current header
     * as it is on disk and `header_slot` its offset; an update writes the
     * other slot (2.2.2). */
    uint8_t header[VD_VHDX_HEADER_SIZE];
    uint64_t header_slot;
    uint64_t log_offset;
    uint32_t log_length;
    uint64_t metadata_offset;
    uint32_t metadata_length;
    /* FileWriteGuid changes once per open, before the first modification
     * (2.2.2); set when that header has been written (a replay at open
     * writes one too). */
    int file_write_guid_fresh;
    /* The last log SequenceNumber used or found in the log; 0 until the
     * first logged update reads the log to find it. */
    uint64_t log_sequence;
    /* The current header names the LogGuid of this open's last log entry,
     * which is durable and applied in place (vhdx_log_write.h): a crash
     * replays it.  A header with LogGuid zero retires it, at the latest
     * when the image is released. */
    int log_live;
    /* That entry's sectors were written in place since the last flush:
     * the next header (which would let the entry go) waits for a flush. */
    int log_applied_unflushed;
    /* Not success once an update failed with its log entry possibly
     * durable: the log must replay (at the next open) before anything
     * else changes the file, so later updates return this code. */
    uint32_t update_failure;
    /* Content writes (vhdx_write.c): allocation of blocks is serialised by
     * this lock; data I/O into present blocks takes no lock.  DataWriteGuid
     * changes once per open, before the first user-visible data change
     * (2.2.2); set when that header is on disk. */
    pthread_mutex_t allocation_lock;
    _Atomic(int) data_write_guid_fresh;
    /* BAT and sector bitmap sectors whose changes are in memory but not
     * yet in the file (vhdx_pending.h); under allocation_lock.  Readers of
     * sector bitmaps look at `pending_bitmaps` (how many of them are bitmap
     * sectors) to know whether they must look at the record too. */
    vd_vhdx_sector_set pending;
    _Atomic(size_t) pending_bitmaps;
    int log_reserved;             /* the log's space is allocated (vhdx_pending.c) */
} vd_vhdx_state;

/* The BAT index of payload block `block` (2.5): a sector bitmap entry
 * follows every chunk_ratio payload entries. */
static inline uint64_t vd_vhdx_payload_index(const vd_vhdx_state *state, uint64_t block)
{
    return block + block / state->chunk_ratio;
}

/* BAT entry `index` as the image sees it (read through the page cache).
 * vd_vhdx_bat_set replaces the cached value after the entry's new value is
 * durable; the caller holds allocation_lock and has read the entry with
 * vd_vhdx_bat_get first (so its page is loaded). */
uint32_t vd_vhdx_bat_get(vd_image *image, uint64_t index, uint64_t *entry);
void vd_vhdx_bat_set(vd_image *image, uint64_t index, uint64_t entry);

/* File offset of the block BAT entry `index` (value `entry`) points to,
 * checked to hold `bytes` inside the file and outside the header section
 * (VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, with the detail, otherwise). */
uint32_t vd_vhdx_block_offset(const vd_vhdx_state *state, uint64_t index, uint64_t entry,
                              uint64_t bytes, uint64_t *offset);

/* The map op (image.h; vhdx_map.c). */
uint32_t vd_vhdx_map(vd_image *image, uint64_t offset, uint64_t length, vd_run *run);

/* The update ops the driver hands out (vhdx_update_serial.c): those of
 * vhdx_update.c, each under the allocation lock. */
extern const vd_update_ops vd_vhdx_serial_update_ops;

/* The content ops (vhdx_write.c, vhdx_unmap.c). */
uint32_t vd_vhdx_write(vd_image *image, uint64_t offset, const void *buffer, uint64_t length);
uint32_t vd_vhdx_unmap(vd_image *image, uint64_t offset, uint64_t length);
uint32_t vd_vhdx_flush(vd_image *image);

/* Resize (driver.h; vhdx_resize.c). */
struct vd_resize_request;
uint32_t vd_vhdx_resize(vd_image *image, const struct vd_resize_request *request);

/* The driver's compact slot (vhdx_compact.c). */
struct vd_compact_request;
uint32_t vd_vhdx_compact(vd_image *image, const struct vd_compact_request *request);

/* The driver's merge slot (vhdx_merge.c). */
struct vd_merge_request;
uint32_t vd_vhdx_merge(vd_image *image, const struct vd_merge_request *request);

/* A VHDX child's parent_linkage2 (vhdx_linkage2.c): its parent locator
 * written again with every entry it holds but parent_linkage2, and with
 * `linkage2` as parent_linkage2 when not NULL; one logged transaction. */
uint32_t vd_vhdx_set_parent_linkage2(vd_image *image, const vd_guid *linkage2);

/* The driver's direct_extent (vhdx_extent.c): every payload block fully
 * present, each right after the one before. */
uint32_t vd_vhdx_direct_extent(vd_image *image, int for_writing, int *contiguous,
                               uint64_t *offset);

/* Reads file bytes [offset, offset + length) as the image sees them: through
 * the replayed log of a read-only open of a dirty image, straight from the
 * file otherwise.  A range past the end is FILE_CORRUPT. */
uint32_t vd_vhdx_state_read(const vd_image *image, uint64_t offset, void *buffer, size_t length);

/* Makes a new current header: the current one with SequenceNumber + 1, a
 * new FileWriteGuid on the first update since the open, `log_guid` as
 * LogGuid and, when not NULL, `data_write_guid` as DataWriteGuid; written
 * to the non-current slot and flushed, then adopted in memory.  The old
 * header stays valid in its slot, so a crash leaves one or the other. */
uint32_t vd_vhdx_header_update(vd_image *image, const uint8_t *data_write_guid,
                               const uint8_t log_guid[16]);

/* The same header written, adopted in memory, and not flushed: the log
 * writer flushes it with its entry (vhdx_log_write.h).  Both this and
 * vd_vhdx_header_update first flush the file when the live entry's sectors
 * are not yet durable in place and `log_guid` is another, since the new
 * header then lets that entry go. */
uint32_t vd_vhdx_header_stage(vd_image *image, const uint8_t *data_write_guid, const uint8_t log_guid[16]);

/* vd_file_flush of the image's file, which also makes the live log
 * entry's sectors durable in place (log_applied_unflushed cleared). */
uint32_t vd_vhdx_file_flush(vd_image *image);

/* The driver's reopen (driver.h): the image read again from `file`, with
 * what `old`'s open did to the file carried over (its live log entry,
 * already in place, is not replayed again; the FileWriteGuid it wrote
 * stands).  `old` then leaves the log to the new image. */
uint32_t vd_vhdx_reopen(vd_image *old, vd_file *file, vd_image *fresh);

/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}", the locator's text of a GUID
 * kept in Windows layout (vhdx_create.c). */
void vd_vhdx_guid_text(const vd_guid *guid, char text[39]);

/* The parent locator item (2.6.2.6) as vhdx_create.c writes it:
 * parent_linkage ("{lowercase}" text of `linkage`), relative_path (from a
 * '/'-separated path relative to the child's directory, turned into the
 * Windows form ".\base.vhdx") and absolute_win32_path, each only when not
 * empty.  *bytes is malloc'ed.  INVALID_PARAMETER for paths that are not
 * UTF-8, FILENAME_EXCED_RANGE for a value longer than 32767 UTF-16 units. */
uint32_t vd_vhdx_locator_build(const vd_guid *linkage, const char *relative_path,
                               const char *absolute_path, uint8_t **bytes, uint32_t *length);

/* Byte ranges of metadata items in their region (2.6.1.2). */
typedef struct vd_vhdx_range {
    uint32_t offset;
    uint32_t length;
} vd_vhdx_range;

/* The ranges of the `entry_count` table entries that have bytes, sorted by
 * offset (malloc'd; *count of them); NULL when out of memory. */
vd_vhdx_range *vd_vhdx_item_ranges(const uint8_t (*entries)[VD_VHDX_METADATA_ENTRY_SIZE],
                                   size_t entry_count, size_t *count);

/* Whether every table entry with bytes lies after the table inside a
 * region of `region_length` bytes and shares no byte with another: an
 * update rewrites one item in place or frees its bytes, which must not
 * touch any other.  FILE_CORRUPT otherwise; open refuses such a table. */
uint32_t vd_vhdx_item_ranges_check(const uint8_t (*entries)[VD_VHDX_METADATA_ENTRY_SIZE],
                                   size_t entry_count, uint32_t region_length);

#endif
