/* The sector copy of a merge.
 *
 * Which sectors a merge writes.  Windows' merge "is essentially a copy":
 * every sector the source range holds is written into the target.  The
 * engine does not ask the formats which sectors each source holds; it
 * compares, sector by sector, the source range's view (the leaf-most source
 * read with its ancestors, the target included) with the target's own view,
 * and writes the sectors that differ.  Afterwards the target reads exactly
 * what the range read, which is all a merge promises, and:
 *   - a sector a source holds with the content the target reads already is
 *     not written, so the target gains no block it does not need;
 *   - a rerun after an interruption finds the sectors copied so far equal
 *     and writes only the rest, which makes the merge restartable without
 *     a record of where it stopped.
 *
 * A step that no image of the source range holds any sector of (each
 * one's map op says VD_RUN_PARENT all through it) reads the target's own
 * content through the range, so it is skipped unread: a checkpoint's child
 * holding a few blocks of a large disk costs those blocks, not two reads of
 * the whole disk.
 *
 * The work goes in steps of VD_MERGE_STEP bytes; each step holds the disk's
 * lock, and between steps a checkpoint (operation.h) may stop the merge. */
#include "disk/merge_copy.h"

#include <stdlib.h>

#include "api/operation.h"
#include "base/vd_errors.h"
#include "disk/write_differences.h"
#include "host/io.h"

/* 1 MiB: a multiple of every logical sector size, small enough to keep two
 * buffers cheap, large enough that the per-step lock and checkpoint cost
 * nothing next to the reads. */
#define VD_MERGE_STEP ((uint64_t)1 << 20)

typedef struct vd_merge_step {
    vd_image *target;
    const vd_merge_request *request;
    uint8_t *merged;   /* what the range reads */
    uint8_t *current;  /* what the target reads */
    uint64_t written;
    uint64_t unstarted;  /* written since the target's writeback last started */
} vd_merge_step;

/* Whether `image` holds none of [offset, offset + length): every sector
 * reads its parent's.  A format without a map op is taken to hold it. */
static uint32_t vd_merge_image_passes(vd_image *image, uint64_t offset, uint64_t length,
                                      int *passes)
{
    *passes = 0;
    if (image->ops->map == NULL)
        return VD_ERROR_SUCCESS;
    for (uint64_t end = offset + length; offset < end;) {
        vd_run run;
        uint32_t status = image->ops->map(image, offset, end - offset, &run);
        if (status != VD_ERROR_SUCCESS || run.kind != VD_RUN_PARENT)
            return status;
        offset += run.length;
    }
    *passes = 1;
    return VD_ERROR_SUCCESS;
}

/* Whether every image of the range, from the source to the target's child,
 * holds none of the step (the chain's images follow one another, the
 * handle's own image first). */
static uint32_t vd_merge_range_passes(const vd_merge_request *request, uint64_t offset,
                                      uint64_t length, int *passes)
{
    vd_image *image = request->source;
    for (;;) {
        uint32_t status = vd_merge_image_passes(image, offset, length, passes);
        if (status != VD_ERROR_SUCCESS || !*passes || image == request->child)
            return status;
        image = image == request->source && request->source_parent != NULL
              ? request->source_parent : image + 1;
    }
}

static uint32_t vd_merge_one_step(vd_merge_step *step, uint64_t offset, uint64_t length)
{
    vd_image *source = step->request->source;
    int passes = 0;
    uint32_t checked = vd_merge_range_passes(step->request, offset, length, &passes);
    if (checked != VD_ERROR_SUCCESS || passes)
        return checked;
    uint32_t status = source->ops->read(source, step->request->source_parent, offset,
                                        step->merged, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_write_differences(step->target, offset, step->merged, step->current, length,
                                      &step->written);
    return status;
}

uint32_t vd_merge_copy(vd_image *target, const vd_merge_request *request, uint64_t *written)
{
    *written = 0;
    if (target->ops == NULL || target->ops->write == NULL || target->ops->read == NULL)
        return VD_ERROR_NOT_SUPPORTED;
    vd_merge_step step = { target, request, malloc(VD_MERGE_STEP), malloc(VD_MERGE_STEP), 0, 0 };
    uint32_t status = step.merged != NULL && step.current != NULL ? VD_ERROR_SUCCESS
                                                                 : VD_ERROR_NOT_ENOUGH_MEMORY;
    const uint64_t size = target->virtual_size;
    const uint64_t base = request->progress_base;
    vd_operation_set_total(request->operation, base + size);
    for (uint64_t offset = 0; status == VD_ERROR_SUCCESS && offset < size; offset += VD_MERGE_STEP) {
        uint64_t length = size - offset < VD_MERGE_STEP ? size - offset : VD_MERGE_STEP;
        uint64_t written_before = step.written;
        status = vd_merge_one_step(&step, offset, length);
        if (status != VD_ERROR_SUCCESS)
            break;
        vd_operation_set_done(request->operation, base + offset + length);
        /* The disk writes while the merge goes on: the closing flush waits
         * for the last steps only. */
        vd_file_pace_writeback(&target->file, &step.unstarted, step.written - written_before);
        /* Progress and cancel take the lock; the handle runs one long
         * operation at a time, so nothing else changes the chain meanwhile. */
        pthread_mutex_unlock(request->lock);
        int cancelled = vd_operation_checkpoint(request->operation);
        pthread_mutex_lock(request->lock);
        if (cancelled && offset + length < size)
            status = VD_ERROR_OPERATION_ABORTED;
    }
    free(step.merged);
    free(step.current);
    *written = step.written;
    if (target->ops->flush != NULL) {
        uint32_t flushed = target->ops->flush(target);
        if (status == VD_ERROR_SUCCESS)
            status = flushed;
    }
    return status;
}
