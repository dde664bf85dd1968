/* A merge's target takes the size of the merged range (api/merge_size.c):
 * a resized VHDX child merged into its parent makes the parent its size
 * first, through the target format's resize slot, so that the parent shows
 * afterwards what the chain showed. */
#ifndef VDENGINE_MERGE_SIZE_H
#define VDENGINE_MERGE_SIZE_H

#include <stdint.h>

#include "disk/image.h"

struct vd_operation;

/* What the merge needs to know before anything is written: `source` (read
 * with `source_parent`, as in vd_merge_request) is the range's image
 * nearest the leaf, `child` the one whose parent `target` is.  Success when
 * the sizes are equal, or when the target's format can take the source's
 * size and the change loses nothing; otherwise, with nothing written:
 *   VHD_CHILD_PARENT_SIZE_MISMATCH   the target's format cannot take that
 *                                    size (a VHD smaller, a differencing
 *                                    VHD, past the format's limit), or a
 *                                    VHD child of the target could no
 *                                    longer open on it;
 *   VHD_RESIZE_WOULD_TRUNCATE_DATA   a smaller source whose content has no
 *                                    partition table that ends within it. */
uint32_t vd_merge_size_check(vd_image *source, vd_image *source_parent, const vd_image *target,
                             const vd_image *child);

/* The bytes of progress the size change counts: the bytes it adds or
 * takes away (0 for equal sizes). */
uint64_t vd_merge_size_work(const vd_image *target, uint64_t size);

/* Resizes `target` to `size` through its format's resize slot, the one
 * ResizeVirtualDisk uses, which writes it crash safely (the old size or the
 * new one).  The image in memory then describes the old file: the caller
 * opens it again.  Nothing to do for equal sizes. */
uint32_t vd_merge_size_apply(vd_image *target, uint64_t size, struct vd_operation *operation);

#endif
