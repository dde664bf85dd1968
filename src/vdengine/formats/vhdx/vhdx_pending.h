/* Changes of VHDX structures that content writes make, kept in memory
 * until a flush: a write cache for block allocation and sector bitmaps
 * ([MS-VHDX] 2.3 asks only that data be durable before the structures that
 * point at it, and that structures change through the log).
 *
 * A content write that allocates blocks or sets sector bitmap bits writes
 * its data and extends the file, then hands its changed BAT and bitmap
 * sectors to the record here and sets the entries in memory: reads and
 * later writes see the new blocks and bits at once (bitmap readers overlay
 * the record on the file, vd_vhdx_pending_read).  Nothing is flushed and
 * nothing is logged.  The recorded sectors reach the file in one log
 * transaction, after one flush of the data, when:
 *
 *   - the image is flushed (the flush op: SYNCHRONIZE CACHE, an fsync
 *     through an attached device, a merge's or a mirror's flush);
 *   - VD_VHDX_PENDING_SECTORS sectors are recorded, or a write's sectors
 *     would take the record past VD_VHDX_PENDING_LIMIT, which keeps one
 *     transaction inside the smallest log (1 MiB, 256 sectors);
 *   - any other update commits sectors through vhdx_sectors.h (an unmap,
 *     a resize, a compact): the recorded sectors go first, in their own
 *     transaction, and the other update's copies of those sectors start
 *     from the recorded bytes;
 *   - a resize or compact starts, and the image is closed.
 *
 * The space a commit writes (the recorded sectors in place, the log) is
 * allocated when a sector joins the record, so a host that fills up fails
 * that write with DISK_FULL rather than the flush or close after it.
 *
 * A sector of a sector bitmap block that a recorded entry allocates is free
 * space until the transaction: it stays "fresh" and is written directly
 * before the log entry, as vhdx_log_write.h does for such sectors.
 *
 * A crash before the transaction leaves the old entries and bits: new
 * blocks are unreferenced space past the old end of the file, sectors whose
 * bits were clear read from the parent, and every sector reads its old
 * content; the writes were never flushed, so nothing was promised.  A flush
 * that returns success has made every earlier write durable.  Everything
 * here but vd_vhdx_pending_read runs under the state's allocation lock. */
#ifndef VDENGINE_VHDX_PENDING_H
#define VDENGINE_VHDX_PENDING_H

#include <stdint.h>

#include "disk/image.h"
#include "formats/vhdx/vhdx_internal.h"

#define VD_VHDX_PENDING_SECTORS 64u
#define VD_VHDX_PENDING_LIMIT 192u

/* BAT entry `index` becomes `value`: recorded, then set in memory. */
uint32_t vd_vhdx_pending_set(vd_image *image, vd_vhdx_state *state, uint64_t index, uint64_t value);

/* The changed sectors of `sectors` (sector bitmap sectors a write planned,
 * loaded through vd_vhdx_sectors_get, so a copy of a recorded sector holds
 * its recorded bytes) join the record; `sectors` is left empty.  Call it
 * before the entries that make the bits live are set. */
uint32_t vd_vhdx_pending_take(vd_image *image, vd_vhdx_state *state, vd_vhdx_sector_set *sectors);

/* Whether a write that changes `sectors` more sectors must commit the
 * record first to stay inside VD_VHDX_PENDING_LIMIT. */
int vd_vhdx_pending_no_room(const vd_vhdx_state *state, size_t sectors);

/* File bytes [offset, offset + length) of sector bitmaps as the image sees
 * them: the file's (vd_vhdx_state_read), with the recorded sectors over
 * them.  Takes the allocation lock while bitmap sectors are recorded, so
 * the caller must not hold it. */
uint32_t vd_vhdx_pending_read(vd_image *image, uint64_t offset, void *buffer, size_t length);

/* Whether the record reached VD_VHDX_PENDING_SECTORS. */
int vd_vhdx_pending_full(const vd_vhdx_state *state);

/* The recorded sectors into the file: the data flushed, then one log
 * transaction.  Nothing recorded costs nothing.  A failure keeps the
 * record (the log writer then blocks further updates, vhdx_log_write.h). */
uint32_t vd_vhdx_pending_commit(vd_image *image);

/* At close: what is recorded is committed (a failure loses only writes
 * that were never flushed), and the record freed. */
void vd_vhdx_pending_release(vd_image *image);

#endif
