/* The VHDX log ([MS-VHDX] 2.3): finding the active sequence of a dirty
 * image and replaying it, into the file or into memory.
 *
 * A VHDX writer puts every metadata update (BAT, region table, metadata)
 * first in the log, then in place.  A crash in between leaves the header's
 * LogGuid non-zero, and the file's structures are only consistent once the
 * log's active sequence has been applied.  The spec asks for that before any
 * use, read-only opens included; a read-only open must not write, so the
 * replayed sectors can instead be kept in memory and laid over what is read
 * from the file. */
#ifndef VDENGINE_VHDX_LOG_H
#define VDENGINE_VHDX_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "host/io.h"

/* The writes of an active log sequence, in replay order. */
typedef struct vd_vhdx_replay vd_vhdx_replay;

/* The largest dirty log replayed: it is read whole into memory.  Hyper-V
 * and qemu-img make 1 MiB logs; without a bound, a damaged or hostile
 * header (LogLength is 32 bits) would have the engine allocate up to 4 GiB
 * before it finds whether the log holds anything. */
#define VD_VHDX_LOG_REPLAY_MAX ((uint32_t)256 << 20)

/* Reads the log at `log_offset` (`log_length` bytes, already checked to lie
 * inside the file), finds its active sequence for `log_guid` and validates
 * every write it describes against the file.  *replay is NULL when no valid
 * sequence exists: a writer sets LogGuid before its first entry reaches the
 * disk, so an empty log means there is nothing to replay.
 *
 * VD_ERROR_FILE_CORRUPT when the sequence is unusable: the file is shorter
 * than an entry's FlushedFileOffset (it was truncated after the log was
 * written), a write targets the file identifier or the headers (which never
 * go through the log, 2.2.2), the log itself, or lies beyond the file size
 * the entry declares; its zero descriptors cover more than four times the
 * file; or the log is so full of damaged candidates that validating them
 * would cost more than a bounded multiple of its length.
 * VD_ERROR_NOT_SUPPORTED when the log is larger than VD_VHDX_LOG_REPLAY_MAX;
 * VD_ERROR_NOT_ENOUGH_MEMORY when the log cannot be held in memory. */
uint32_t vd_vhdx_log_load(const vd_file *file, uint64_t log_offset, uint32_t log_length,
                          const uint8_t log_guid[16], vd_vhdx_replay **replay);

/* Size of the file after replay: its current size, grown to the largest
 * LastFileOffset of the sequence (rounded up to 1 MiB, the VHDX alignment). */
uint64_t vd_vhdx_replay_file_size(const vd_vhdx_replay *replay);

/* Writes the sequence into the file, extends it to the replayed size and
 * flushes it to stable storage (updating file->size).  The caller updates
 * the headers around it. */
uint32_t vd_vhdx_replay_apply(const vd_vhdx_replay *replay, vd_file *file);

/* Lays the replayed content of file bytes [offset, offset + length) over
 * `buffer`, which holds what the file has there (zeros past its end). */
void vd_vhdx_replay_overlay(const vd_vhdx_replay *replay, uint64_t offset, uint8_t *buffer,
                            size_t length);

void vd_vhdx_replay_free(vd_vhdx_replay *replay);

#endif
