/* Writing the VHDX log ([MS-VHDX] 2.3): how an update of VHDX structures
 * reaches the file crash safely.
 *
 * An update names the 4 KiB sectors it changes, whole.  Sectors that hold
 * live structures go through the log; sectors of free space that only the
 * update will make live (a new metadata item's bytes) may be written
 * straight away, before the log entry that makes them live, and runs of
 * such sectors that become zeros (the new entries of a longer BAT) may go
 * into the entry as zero descriptors (2.3.1.2), which cost no data sector
 * and need no flush before the entry.  The order:
 *
 *   1. direct sectors written: they are free space until an entry makes
 *      them live, and must be durable before it is.
 *   2. a header with a new LogGuid (and, first after the open, a new
 *      FileWriteGuid) written to the non-current slot; flush (which makes
 *      the direct sectors durable too).  Until a valid entry with that
 *      LogGuid exists there is nothing to replay.
 *   3. one log entry at the start of the log (a data descriptor and a
 *      data sector per logged sector, a zero descriptor per zero run,
 *      SequenceNumber above every entry already in the log, Tail naming
 *      itself); flush.  From here on, every open replays the entry
 *      (vhdx_log.c), read-only ones in memory.
 *   4. the logged sectors written in place, the zero runs zeroed; flush.
 *   5. a header with LogGuid zero to the other slot; flush.
 *
 * An update that leaves its entry live (`leave_live`: a resize, whose
 * every millisecond shows) flushes once instead of four times: its direct
 * sectors are flushed on their own (only when there are any), then the
 * header of step 2 and the entry of step 3 share one flush: before it
 * completes a crash finds no valid entry carrying the LogGuid of the
 * current header (the header without its entry, or the entry under a
 * header that names another LogGuid), so the old structures; after it,
 * the new ones.  Step 4 is not flushed and step 5 waits: the entry stays
 * live until a later header lets it go (the next update's, or one with
 * LogGuid zero when the image is released), and that header is written
 * only after a flush has made the sectors in place durable ([MS-VHDX]
 * 2.3: a log entry may be overwritten once the writes it describes are
 * flushed; vd_vhdx_header_stage).  A crash before then replays the entry,
 * which writes the same sectors again.
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

/* Bytes [file_offset, file_offset + length) of the file as zeros, both
 * 4 KiB aligned: a zero descriptor. */
typedef struct vd_vhdx_zero_run {
    uint64_t file_offset;
    uint64_t length;
} vd_vhdx_zero_run;

/* What one update changes: `logged` and `direct` sorted by file offset,
 * all three disjoint. */
typedef struct vd_vhdx_log_update {
    const vd_vhdx_sector_write *logged;
    size_t logged_count;
    const vd_vhdx_zero_run *zeros;
    size_t zero_count;
    const vd_vhdx_sector_write *direct;
    size_t direct_count;
    int leave_live;               /* the entry stays live (see above) */
} vd_vhdx_log_update;

/* Builds one log entry carrying the update's logged sectors and zero runs
 * (its direct sectors are not part of it): EntryLength bytes at *entry
 * (malloc'ed), CRC-32C set.  `tail` is the entry's own offset in the log
 * (a sequence of one), `file_size` both FlushedFileOffset and
 * LastFileOffset (a metadata update never grows the file). */
uint32_t vd_vhdx_log_entry_build(const uint8_t log_guid[16], uint64_t sequence, uint32_t tail,
                                 uint64_t file_size, const vd_vhdx_log_update *update,
                                 uint8_t **entry, size_t *length);

/* The highest SequenceNumber of any entry header in the log, valid or not
 * (0 for an empty log): a new entry must rise above all of them. */
uint32_t vd_vhdx_log_highest_sequence(const vd_file *file, uint64_t log_offset,
                                      uint32_t log_length, uint64_t *highest);

/* The whole update of an opened, writable VHDX image, in the order above.
 * Nothing to write costs nothing.  VHD_METADATA_FULL when the entry does
 * not fit in the log; the host's code when a write or flush fails, after
 * which every later update or metadata table read of this image returns
 * that code too (the log it left replays at the next open). */
uint32_t vd_vhdx_log_commit(vd_image *image, const vd_vhdx_log_update *update);

/* The code an earlier failed update left (see above), or success. */
uint32_t vd_vhdx_update_blocked(const vd_image *image);

#endif
