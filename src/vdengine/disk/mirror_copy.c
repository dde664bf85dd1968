/* The copy and the write fan-out of a mirror (mirror_copy.h).
 *
 * One mutex guards the copy's position, the busy range, the list of writes
 * in flight past the copy, and the end states; one condition tells every
 * change of them.  The I/O itself runs outside the mutex: a write in
 * flight is announced in the list (a node on its caller's stack) and the
 * step that would read its range waits for it, so writes to different
 * places of the disk still run in parallel with each other and with the
 * copy. */
#include "disk/mirror_copy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/chain.h"
#include "disk/write_differences.h"
#include "host/io.h"

/* 1 MiB, as a merge's step: a multiple of every logical sector size, the
 * longest a write that meets the copy waits for. */
#define VD_MIRROR_STEP ((uint64_t)1 << 20)

typedef struct vd_mirror_io {
    uint64_t start, end;
    struct vd_mirror_io *next;
} vd_mirror_io;

struct vd_mirror {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    vd_image target;
    int target_taken;
    uint64_t copied;               /* [0, copied) is in the target */
    uint64_t busy_start, busy_end; /* the step under way; empty when equal */
    vd_mirror_io *in_flight;       /* writes past `copied`, to the disk only */
    uint32_t failure;              /* the first write the target refused */
    int complete;                  /* copied and flushed: the copy is done with the target */
    int broken;
};

vd_mirror *vd_mirror_new(vd_image *target)
{
    vd_mirror *mirror = calloc(1, sizeof *mirror);
    if (mirror == NULL)
        return NULL;
    if (pthread_mutex_init(&mirror->lock, NULL) != 0) {
        free(mirror);
        return NULL;
    }
    if (pthread_cond_init(&mirror->changed, NULL) != 0) {
        pthread_mutex_destroy(&mirror->lock);
        free(mirror);
        return NULL;
    }
    mirror->target = *target;
    memset(target, 0, sizeof *target);
    return mirror;
}

void vd_mirror_free(vd_mirror *mirror)
{
    if (mirror == NULL)
        return;
    if (!mirror->target_taken)
        vd_image_release(&mirror->target);
    pthread_cond_destroy(&mirror->changed);
    pthread_mutex_destroy(&mirror->lock);
    free(mirror);
}

static int vd_ranges_overlap(uint64_t start, uint64_t end, uint64_t other_start, uint64_t other_end)
{
    return start < other_end && other_start < end;
}

static int vd_mirror_in_flight_over(const vd_mirror *mirror, uint64_t start, uint64_t end)
{
    for (const vd_mirror_io *io = mirror->in_flight; io != NULL; io = io->next) {
        if (vd_ranges_overlap(io->start, io->end, start, end))
            return 1;
    }
    return 0;
}

/* With the lock held. */
static void vd_mirror_record_failure(vd_mirror *mirror, uint32_t status)
{
    if (mirror->failure == VD_ERROR_SUCCESS)
        mirror->failure = status;
    pthread_cond_broadcast(&mirror->changed);
}

/* ---- the copy ------------------------------------------------------------ */

typedef struct vd_mirror_buffers {
    uint8_t *wanted;    /* what the disk reads */
    uint8_t *scratch;   /* what the target reads */
} vd_mirror_buffers;

static uint32_t vd_mirror_buffers_new(vd_mirror_buffers *buffers)
{
    buffers->wanted = malloc(VD_MIRROR_STEP);
    buffers->scratch = malloc(VD_MIRROR_STEP);
    return buffers->wanted != NULL && buffers->scratch != NULL ? VD_ERROR_SUCCESS
                                                               : VD_ERROR_NOT_ENOUGH_MEMORY;
}

static void vd_mirror_buffers_free(vd_mirror_buffers *buffers)
{
    free(buffers->wanted);
    free(buffers->scratch);
}

/* Makes [offset, offset + length) of the target read what the disk reads,
 * in steps of the buffers' size. */
static uint32_t vd_mirror_sync_range(vd_mirror *mirror, vd_disk *disk, vd_mirror_buffers *buffers,
                                     uint64_t offset, uint64_t length)
{
    uint64_t written = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t at = 0; status == VD_ERROR_SUCCESS && at < length; at += VD_MIRROR_STEP) {
        uint64_t piece = length - at < VD_MIRROR_STEP ? length - at : VD_MIRROR_STEP;
        status = vd_chain_read(&disk->image, &disk->chain, offset + at, buffers->wanted, piece);
        if (status == VD_ERROR_SUCCESS)
            status = vd_write_differences(&mirror->target, offset + at, buffers->wanted,
                                          buffers->scratch, piece, &written);
    }
    return status;
}

/* One step: claims [offset, offset + length), waits for the writes in
 * flight over it, copies it, and moves `copied` past it. */
static uint32_t vd_mirror_copy_step(vd_mirror *mirror, vd_disk *disk, vd_mirror_buffers *buffers,
                                    uint64_t offset, uint64_t length)
{
    pthread_mutex_lock(&mirror->lock);
    uint32_t status = mirror->failure;
    if (status == VD_ERROR_SUCCESS) {
        mirror->busy_start = offset;
        mirror->busy_end = offset + length;
        while (vd_mirror_in_flight_over(mirror, offset, offset + length))
            pthread_cond_wait(&mirror->changed, &mirror->lock);
    }
    pthread_mutex_unlock(&mirror->lock);
    if (status != VD_ERROR_SUCCESS)
        return status;

    pthread_mutex_lock(&disk->lock);
    status = vd_mirror_sync_range(mirror, disk, buffers, offset, length);
    pthread_mutex_unlock(&disk->lock);

    pthread_mutex_lock(&mirror->lock);
    if (status == VD_ERROR_SUCCESS)
        mirror->copied = offset + length;
    mirror->busy_start = mirror->busy_end = 0;
    pthread_cond_broadcast(&mirror->changed);
    pthread_mutex_unlock(&mirror->lock);
    return status;
}

uint32_t vd_mirror_copy(vd_mirror *mirror, vd_disk *disk, vd_operation *operation)
{
    vd_mirror_buffers buffers;
    uint32_t status = vd_mirror_buffers_new(&buffers);
    const uint64_t size = mirror->target.virtual_size;
    uint64_t unstarted = 0;  /* copied since the target's writeback last started */
    vd_operation_set_total(operation, size);
    for (uint64_t offset = 0; status == VD_ERROR_SUCCESS && offset < size; offset += VD_MIRROR_STEP) {
        uint64_t length = size - offset < VD_MIRROR_STEP ? size - offset : VD_MIRROR_STEP;
        status = vd_mirror_copy_step(mirror, disk, &buffers, offset, length);
        if (status != VD_ERROR_SUCCESS)
            break;
        /* The disk writes the copy as it goes: the flush at its end (and a
         * break's) waits for the last steps only. */
        vd_file_pace_writeback(&mirror->target.file, &unstarted, length);
        /* After each step but the last (a cancel then finds the mirrored
         * state): the test hold stops here with part of the disk copied. */
        if (offset + length < size) {
            vd_operation_set_done(operation, offset + length);
            if (vd_operation_checkpoint(operation))
                status = VD_ERROR_OPERATION_ABORTED;
        }
    }
    vd_mirror_buffers_free(&buffers);
    /* Every byte copied, the flush still to come: one byte short of the
     * total, as the copy is not complete before its flush, and a test hold
     * of that count stops exactly here. */
    if (status == VD_ERROR_SUCCESS && size > 0) {
        vd_operation_set_done(operation, size - 1);
        if (vd_operation_checkpoint(operation))
            status = VD_ERROR_OPERATION_ABORTED;
    }
    if (status == VD_ERROR_SUCCESS && mirror->target.ops->flush != NULL)
        status = mirror->target.ops->flush(&mirror->target);
    /* Only now may a break take the target: the progress shows the whole
     * content after the copy's last use of the target, never before. */
    if (status == VD_ERROR_SUCCESS) {
        pthread_mutex_lock(&mirror->lock);
        mirror->complete = 1;
        pthread_mutex_unlock(&mirror->lock);
        vd_operation_set_done(operation, size);
    }
    return status;
}

int vd_mirror_is_mirrored(vd_mirror *mirror)
{
    pthread_mutex_lock(&mirror->lock);
    int mirrored = mirror->complete && mirror->failure == 0 && !mirror->broken;
    pthread_mutex_unlock(&mirror->lock);
    return mirrored;
}

/* ---- the mirrored state and the break ------------------------------------ */

static void vd_mirror_wake(void *argument)
{
    vd_mirror *mirror = argument;
    pthread_mutex_lock(&mirror->lock);
    pthread_cond_broadcast(&mirror->changed);
    pthread_mutex_unlock(&mirror->lock);
}

uint32_t vd_mirror_wait(vd_mirror *mirror, vd_operation *operation)
{
    vd_operation_on_cancel(operation, vd_mirror_wake, mirror);
    pthread_mutex_lock(&mirror->lock);
    while (!mirror->broken && mirror->failure == VD_ERROR_SUCCESS
           && !vd_operation_cancelled(operation))
        pthread_cond_wait(&mirror->changed, &mirror->lock);
    uint32_t status = mirror->broken ? VD_ERROR_SUCCESS
                      : mirror->failure != VD_ERROR_SUCCESS ? mirror->failure
                                                            : VD_ERROR_OPERATION_ABORTED;
    pthread_mutex_unlock(&mirror->lock);
    vd_operation_on_cancel(operation, NULL, NULL);
    return status;
}

int vd_mirror_target_fd(const vd_mirror *mirror)
{
    return mirror->target.file.fd;
}

uint32_t vd_mirror_take_target(vd_mirror *mirror, vd_image *target)
{
    uint32_t status = mirror->target.ops->flush != NULL ? mirror->target.ops->flush(&mirror->target)
                                                        : VD_ERROR_SUCCESS;
    if (status != VD_ERROR_SUCCESS)
        return status;
    pthread_mutex_lock(&mirror->lock);
    *target = mirror->target;
    memset(&mirror->target, 0, sizeof mirror->target);
    mirror->target_taken = 1;
    mirror->broken = 1;
    pthread_cond_broadcast(&mirror->changed);
    pthread_mutex_unlock(&mirror->lock);
    return VD_ERROR_SUCCESS;
}

/* ---- the data path ------------------------------------------------------- */

/* Waits until [start, end) is clear of the step under way and of every
 * other write in flight, and announces it; whether the target holds any of
 * it already (write to both).  Two writes over the same sectors must not
 * overlap in time: each image would order them by its own timing, and the
 * two could end up holding different data. */
static int vd_mirror_io_begin(vd_mirror *mirror, vd_mirror_io *io, uint64_t start, uint64_t end)
{
    pthread_mutex_lock(&mirror->lock);
    while (vd_ranges_overlap(start, end, mirror->busy_start, mirror->busy_end)
           || vd_mirror_in_flight_over(mirror, start, end))
        pthread_cond_wait(&mirror->changed, &mirror->lock);
    int both = start < mirror->copied && mirror->failure == VD_ERROR_SUCCESS;
    *io = (vd_mirror_io){ start, end, mirror->in_flight };
    mirror->in_flight = io;
    pthread_mutex_unlock(&mirror->lock);
    return both;
}

static void vd_mirror_io_end(vd_mirror *mirror, vd_mirror_io *io, uint32_t target_status)
{
    pthread_mutex_lock(&mirror->lock);
    for (vd_mirror_io **link = &mirror->in_flight; *link != NULL; link = &(*link)->next) {
        if (*link == io) {
            *link = io->next;
            break;
        }
    }
    if (target_status != VD_ERROR_SUCCESS)
        vd_mirror_record_failure(mirror, target_status);
    pthread_cond_broadcast(&mirror->changed);
    pthread_mutex_unlock(&mirror->lock);
}

uint32_t vd_mirror_write(vd_mirror *mirror, vd_disk *disk, uint64_t offset, const void *buffer,
                         uint64_t length)
{
    vd_mirror_io io;
    int both = vd_mirror_io_begin(mirror, &io, offset, offset + length);
    uint32_t status = disk->image.ops->write(&disk->image, offset, buffer, length);
    uint32_t target_status = VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS && both)
        target_status = mirror->target.ops->write(&mirror->target, offset, buffer, length);
    vd_mirror_io_end(mirror, &io, target_status);
    return status;
}

/* The target's sectors of an unmapped range: unmapped too where both read
 * zeros afterwards, else written with what the disk reads now (a
 * differencing disk's unmapped sectors read its parent's, which the
 * flattened target has no parent to read). */
static uint32_t vd_mirror_unmap_target(vd_mirror *mirror, vd_disk *disk, uint64_t offset,
                                       uint64_t length)
{
    vd_image *target = &mirror->target;
    if (target->ops->unmap != NULL && target->ops->unmap_reads_zeros
        && disk->image.ops->unmap_reads_zeros)
        return target->ops->unmap(target, offset, length);
    vd_mirror_buffers buffers;
    uint32_t status = vd_mirror_buffers_new(&buffers);
    if (status == VD_ERROR_SUCCESS)
        status = vd_mirror_sync_range(mirror, disk, &buffers, offset, length);
    vd_mirror_buffers_free(&buffers);
    return status;
}

uint32_t vd_mirror_unmap(vd_mirror *mirror, vd_disk *disk, uint64_t offset, uint64_t length)
{
    vd_mirror_io io;
    int both = vd_mirror_io_begin(mirror, &io, offset, offset + length);
    uint32_t status = disk->image.ops->unmap(&disk->image, offset, length);
    uint32_t target_status = VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS && both)
        target_status = vd_mirror_unmap_target(mirror, disk, offset, length);
    vd_mirror_io_end(mirror, &io, target_status);
    return status;
}

uint32_t vd_mirror_flush(vd_mirror *mirror)
{
    vd_image *target = &mirror->target;
    uint32_t status = target->ops != NULL && target->ops->flush != NULL ? target->ops->flush(target)
                                                                        : VD_ERROR_SUCCESS;
    if (status != VD_ERROR_SUCCESS) {
        pthread_mutex_lock(&mirror->lock);
        vd_mirror_record_failure(mirror, status);
        pthread_mutex_unlock(&mirror->lock);
    }
    return VD_ERROR_SUCCESS;
}
