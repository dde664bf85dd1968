/* A mirror's data side: the copy of a disk's content into the mirror image
 * and the fan-out of every write made meanwhile (MirrorVirtualDisk,
 * api/mirror.c).
 *
 * The copy goes front to back in steps.  `copied` is the end of what the
 * mirror holds; the step under way is the busy range.  Every write and
 * unmap of the data path (disk/content.c) comes here while the mirror is
 * installed on its disk:
 *   - one that overlaps the busy range waits until the step is done;
 *   - one that starts below `copied` goes to the disk and then to the
 *     mirror;
 *   - one past `copied` goes to the disk alone, and is in flight until it
 *     is written; a step waits for the writes in flight over its range
 *     before it reads, so it copies them;
 *   - one over the sectors of another write in flight waits for it, so
 *     that both images see overlapping writes in the same order.
 * So no write is lost, whichever of the two comes first, and a write
 * waits at most for one step and for the writes to the same sectors.  Once everything is copied, every write goes to
 * both: the mirrored state.
 *
 * A write the mirror refuses (a full host, an I/O error) does not fail the
 * write, which the disk took: it ends the mirror with that code, and the
 * disk goes on alone. */
#ifndef VDENGINE_MIRROR_COPY_H
#define VDENGINE_MIRROR_COPY_H

#include <stdint.h>

#include "api/handle.h"
#include "disk/image.h"

struct vd_operation;
typedef struct vd_mirror vd_mirror;

/* A mirror into `target` (opened read-write, the disk's virtual size and
 * logical sector size), which it takes over; NULL when out of memory (the
 * target is then the caller's still). */
vd_mirror *vd_mirror_new(vd_image *target);

/* Releases the target, unless vd_mirror_take_target took it, and the
 * mirror. */
void vd_mirror_free(vd_mirror *mirror);

/* Copies the content of `disk` (its image read through its chain) into
 * the target, in steps that hold disk->lock, with progress on
 * `operation` (total: the virtual size).  Stops with OPERATION_ABORTED at
 * a cancel, or with the code of a failed read or write.  The progress
 * reaches the total only once the target is flushed and the copy is done
 * with it, so that a break may take it from then on.  The mirror must be
 * installed on the disk (vd_disk.mirror) before the call, so that no
 * write misses it. */
uint32_t vd_mirror_copy(vd_mirror *mirror, vd_disk *disk, struct vd_operation *operation);

/* Whether the whole content is in the target, flushed, and every write
 * goes to both. */
int vd_mirror_is_mirrored(vd_mirror *mirror);

/* Sleeps in the mirrored state until the mirror is broken (SUCCESS), the
 * operation is cancelled (OPERATION_ABORTED) or a write to the target
 * failed (its code). */
uint32_t vd_mirror_wait(vd_mirror *mirror, struct vd_operation *operation);

/* The descriptor of the target's image file, until vd_mirror_take_target
 * hands it over. */
int vd_mirror_target_fd(const vd_mirror *mirror);

/* BreakMirrorVirtualDisk's part: the target, flushed, handed over to the
 * caller (who puts it in the disk's place), and the sleeping operation
 * woken to end with SUCCESS. */
uint32_t vd_mirror_take_target(vd_mirror *mirror, vd_image *target);

/* The data path's calls while the mirror is installed (content.c), with
 * the arguments checked already. */
uint32_t vd_mirror_write(vd_mirror *mirror, vd_disk *disk, uint64_t offset, const void *buffer,
                         uint64_t length);
uint32_t vd_mirror_unmap(vd_mirror *mirror, vd_disk *disk, uint64_t offset, uint64_t length);
uint32_t vd_mirror_flush(vd_mirror *mirror);

#endif
