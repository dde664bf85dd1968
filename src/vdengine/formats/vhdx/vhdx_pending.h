/* BAT entries of new blocks that are in memory but not yet in the file: a
 * write cache for block allocation ([MS-VHDX] 2.3 asks only that data be
 * durable before the structures that point at it).
 *
 * A content write that allocates blocks and changes nothing but BAT entries
 * (a fixed or dynamic image, or whole blocks of a differencing one) writes
 * its data and extends the file, sets the entries in memory -- reads and
 * later writes see the new blocks at once -- and records the entries' BAT
 * sectors here.  Nothing is flushed and nothing is logged.  The recorded
 * sectors reach the file in one log transaction, after one flush of the
 * data, when:
 *
 *   - the image is flushed (the flush op: SYNCHRONIZE CACHE, an fsync
 *     through an attached device, a merge's or a mirror's flush);
 *   - VD_VHDX_PENDING_SECTORS sectors are recorded, which keeps one
 *     transaction well inside the smallest log (1 MiB, 256 sectors);
 *   - any other update commits sectors through vhdx_sectors.h (an unmap,
 *     a write that changes sector bitmaps, a resize, a compact): the
 *     recorded sectors go first, in their own transaction, and the other
 *     update's copies of those sectors start from the recorded bytes;
 *   - a resize or compact starts, and the image is closed.
 *
 * A crash before the transaction leaves the old entries: the new blocks are
 * unreferenced space past the old end of the file and every sector reads
 * its old content; the writes were never flushed, so nothing was promised.
 * A flush that returns success has made every earlier write durable.
 * Everything here runs under the state's allocation lock. */
#ifndef VDENGINE_VHDX_PENDING_H
#define VDENGINE_VHDX_PENDING_H

#include <stdint.h>

#include "disk/image.h"
#include "formats/vhdx/vhdx_internal.h"

#define VD_VHDX_PENDING_SECTORS 64u

/* BAT entry `index` becomes `value`: recorded, then set in memory. */
uint32_t vd_vhdx_pending_set(vd_image *image, vd_vhdx_state *state, uint64_t index, uint64_t value);

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
