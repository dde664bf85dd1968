/* Making room for a VHDX BAT region to grow where it is (vhdx_resize.c's
 * grow, when the new entries do not fit the region).
 *
 * The region keeps its offset and grows to `new_length` (whole MiB,
 * [MS-VHDX] 2.2.3.2) over the file space that follows it.  Only payload
 * and sector bitmap blocks may lie there: when the log, the metadata or
 * any other region does, nothing is written, *room is 0, and the caller
 * writes a new region past the end of the file instead.
 *
 * The blocks in the way move past the end of the file and past the grown
 * region: their bytes are copied and flushed first, then their BAT entries
 * name the new places through the log (vhdx_sectors.h), at most 64 entries
 * a transaction.  After each transaction the image is the old disk with
 * some blocks elsewhere: the same size, the same content, so a crash or a
 * failure anywhere leaves the old disk.  When no block remains in the way
 * the space is unused, and the file reaches at least the region's new end:
 * the caller's transaction writes the new entries there directly, or as
 * zero descriptors of its log entry where they are zeros (free space until
 * the region tables, in the same transaction, name the longer region) and
 * so switches the size.  The caller holds the allocation lock. */
#ifndef VDENGINE_VHDX_BAT_GROW_H
#define VDENGINE_VHDX_BAT_GROW_H

#include <stdint.h>

#include "disk/image.h"

struct vd_operation;

/* A cancel of `operation` is honoured before each block's copy
 * (OPERATION_ABORTED, the old disk with the blocks copied so far moved);
 * its progress counts the bytes moved, and its checkpoint before each copy
 * is where the engine's test hold stops a resize after a number of them. */
uint32_t vd_vhdx_bat_make_room(vd_image *image, uint64_t new_length, struct vd_operation *operation,
                               int *room);

#endif
