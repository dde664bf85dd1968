/* Writing the VHDX log ([MS-VHDX] 2.3): how an update of VHDX structures
 * reaches the file crash safely.
 *
 * An update names the 4 KiB sectors it changes, whole.  Sectors that hold
 * live structures go through the log; sectors of free space that only the
 * update will make live (a new metadata item's bytes) may be written
 * straight away, before the log entry that makes them live.  The order:
 *
 *   1. direct sectors written; a header with a new LogGuid (and, first
 *      after the open, a new FileWriteGuid) written to the non-current
 *      slot; flush.  Until a valid entry with that LogGuid exists there is
 *      nothing to replay, and the direct sectors are free space.
 *   2. one log entry at the start of the log: a data descriptor and a data
 *      sector per logged sector, SequenceNumber above every entry already
 *      in the log, Tail naming itself; flush.  From here on, every open
 *      replays the entry (vhdx_log.c), read-only ones in memory.
 *   3. the logged sectors written in place; flush.
 *   4. a header with LogGuid zero to the other slot; flush.
 *
 * So a crash at any point leaves either the old structures (before the
 * entry is durable) or the new ones (replayed, or already in place); a
 * partial write of the entry fails its CRC-32C and counts as absent.
 * DataWriteGuid is left alone: these are metadata changes, not data
 * changes a child would need to know about (2.2.2). */
#ifndef VDENGINE_VHDX_LOG_WRITE_H
#define VDENGINE_VHDX_LOG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "disk/image.h"

/* One 4 KiB sector of the file as the update leaves it. */
typedef struct vd_vhdx_sector_write {
    uint64_t file_offset;          /* 4 KiB aligned */
    const uint8_t *data;           /* VD_VHDX_LOG_SECTOR_SIZE bytes */
} vd_vhdx_sector_write;

/* Builds one log entry carrying `count` sector writes: EntryLength bytes
 * at *entry (malloc'ed), CRC-32C set.  `tail` is the entry's own offset in
 * the log (a sequence of one), `file_size` both FlushedFileOffset and
 * LastFileOffset (a metadata update never grows the file). */
uint32_t vd_vhdx_log_entry_build(const uint8_t log_guid[16], uint64_t sequence, uint32_t tail,
                                 uint64_t file_size, const vd_vhdx_sector_write *writes,
                                 size_t count, uint8_t **entry, size_t *length);

/* The highest SequenceNumber of any entry header in the log, valid or not
 * (0 for an empty log): a new entry must rise above all of them. */
uint32_t vd_vhdx_log_highest_sequence(const vd_file *file, uint64_t log_offset,
                                      uint32_t log_length, uint64_t *highest);

/* The whole update of an opened, writable VHDX image, in the order above.
 * `logged` and `direct` are sorted by file offset and disjoint.  Nothing
 * to write costs nothing.  VHD_METADATA_FULL when the logged sectors do
 * not fit in the log; the host's code when a write or flush fails, after
 * which every later update or metadata table read of this image returns
 * that code too (the log it left replays at the next open). */
uint32_t vd_vhdx_log_commit(vd_image *image, const vd_vhdx_sector_write *logged, size_t logged_count,
                            const vd_vhdx_sector_write *direct, size_t direct_count);

/* The code an earlier failed update left (see above), or success. */
uint32_t vd_vhdx_update_blocked(const vd_image *image);

#endif
