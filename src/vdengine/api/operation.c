/* The long operations' threads, progress records and cancellation
 * (operation.h).
 *
 * Each disk has, once it ran a long operation, a `vd_operations` block:
 * the running operation (at most one), the thread of the last one until
 * it is joined (by the next start, by close, or when the disk is freed, so
 * that no thread outlives its handle), and the results of finished
 * operations by OVERLAPPED address (the most recent VD_OPERATION_RECORDS;
 * an address used again replaces its record).
 *
 * Completion order, under the block's lock: OVERLAPPED.Internal and
 * InternalHigh written, the record published, the event set, the running
 * slot cleared.  Whoever sees the final status (progress, the event, a
 * close waiting) can free the OVERLAPPED and its event at once: the engine
 * touches neither afterwards. */
#define _POSIX_C_SOURCE 200809L   /* nanosleep */

#include "api/operation.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "vdengine.h"

#define VD_OPERATION_RECORDS 32u
/* OVERLAPPED.Internal while the operation runs (STATUS_PENDING, which is
 * what Windows leaves there); the final Win32 code afterwards. */
#define VD_STATUS_PENDING 0x103u

struct vd_operation {
    struct vd_operations *owner;
    OVERLAPPED *overlapped;          /* NULL: synchronous */
    HANDLE handle;
    vd_disk *disk;
    vd_operation_body body;
    void *context;
    void (*free_context)(void *);
    _Atomic(uint64_t) done, total;
    atomic_int cancel;
    /* Called, under the block's lock, after each cancel request: a body
     * that sleeps between steps is woken by it (vd_operation_on_cancel). */
    void (*wake)(void *);
    void *wake_argument;
};

typedef struct vd_operation_record {
    const OVERLAPPED *overlapped;
    uint32_t status;
    uint64_t done, total;
} vd_operation_record;

struct vd_operations {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    vd_operation *running;
    int has_thread;                  /* `thread` ended or ending, not joined */
    pthread_t thread;
    vd_operation_record records[VD_OPERATION_RECORDS];
    unsigned record_count, record_next;
};

static struct vd_operations *vd_operations_of(vd_disk *disk)
{
    struct vd_operations *operations = atomic_load(&disk->operations);
    if (operations != NULL)
        return operations;
    pthread_mutex_lock(&disk->lock);
    operations = atomic_load(&disk->operations);
    if (operations == NULL) {
        operations = calloc(1, sizeof *operations);
        if (operations != NULL) {
            if (pthread_mutex_init(&operations->lock, NULL) != 0) {
                free(operations);
                operations = NULL;
            } else if (pthread_cond_init(&operations->changed, NULL) != 0) {
                pthread_mutex_destroy(&operations->lock);
                free(operations);
                operations = NULL;
            }
        }
        atomic_store(&disk->operations, operations);
    }
    pthread_mutex_unlock(&disk->lock);
    return operations;
}

void vd_operation_set_total(vd_operation *operation, uint64_t total)
{
    atomic_store(&operation->total, total);
    if (atomic_load(&operation->done) > total)
        atomic_store(&operation->done, total);
}

void vd_operation_set_done(vd_operation *operation, uint64_t done)
{
    uint64_t total = atomic_load(&operation->total);
    atomic_store(&operation->done, done < total ? done : total);
}

int vd_operation_cancelled(const vd_operation *operation)
{
    return atomic_load(&((vd_operation *)operation)->cancel) != 0;
}

/* The hold file's number: the progress (bytes done) below which the
 * checkpoints pass; 0 for an empty file or one that holds no number. */
static uint64_t vd_operation_hold_from(const char *hold)
{
    FILE *file = fopen(hold, "r");
    unsigned long long from = 0;
    if (file == NULL)
        return 0;
    if (fscanf(file, "%llu", &from) != 1)
        from = 0;
    fclose(file);
    return (uint64_t)from;
}

int vd_operation_checkpoint(const vd_operation *operation)
{
    const char *hold = getenv(VD_OPERATION_HOLD_VARIABLE);
    if (hold != NULL && hold[0] != '\0' && access(hold, F_OK) == 0
        && atomic_load(&((vd_operation *)operation)->done) >= vd_operation_hold_from(hold)) {
        /* A poll, not a wait on a condition: the path is the test's, and
         * the test removes it from another process as often as not. */
        const struct timespec pause = { 0, 1000000 };
        while (!vd_operation_cancelled(operation) && access(hold, F_OK) == 0)
            nanosleep(&pause, NULL);
    }
    return vd_operation_cancelled(operation);
}

void vd_operation_on_cancel(vd_operation *operation, void (*wake)(void *), void *argument)
{
    pthread_mutex_lock(&operation->owner->lock);
    operation->wake = wake;
    operation->wake_argument = argument;
    pthread_mutex_unlock(&operation->owner->lock);
}

/* With the block's lock held. */
static void vd_operation_request_cancel(vd_operation *operation)
{
    atomic_store(&operation->cancel, 1);
    if (operation->wake != NULL)
        operation->wake(operation->wake_argument);
}

static void vd_operation_record_put(struct vd_operations *operations, const vd_operation *operation,
                                    uint32_t status)
{
    vd_operation_record record = { operation->overlapped, status,
                                   atomic_load(&((vd_operation *)operation)->done),
                                   atomic_load(&((vd_operation *)operation)->total) };
    for (unsigned i = 0; i < operations->record_count; i++) {
        if (operations->records[i].overlapped == operation->overlapped) {
            operations->records[i] = record;
            return;
        }
    }
    operations->records[operations->record_next] = record;
    operations->record_next = (operations->record_next + 1) % VD_OPERATION_RECORDS;
    if (operations->record_count < VD_OPERATION_RECORDS)
        operations->record_count++;
}

/* The end of an operation, in the order the file comment gives. */
static void vd_operation_finish(vd_operation *operation, uint32_t status)
{
    struct vd_operations *operations = operation->owner;
    if (operation->free_context != NULL)
        operation->free_context(operation->context);
    pthread_mutex_lock(&operations->lock);
    if (operation->overlapped != NULL) {
        operation->overlapped->Internal = status;
        operation->overlapped->InternalHigh = 0;
        vd_operation_record_put(operations, operation, status);
        if (operation->overlapped->hEvent != NULL)
            vd_engine_event_set(operation->overlapped->hEvent);
    }
    operations->running = NULL;
    pthread_cond_broadcast(&operations->changed);
    pthread_mutex_unlock(&operations->lock);
}

static void *vd_operation_thread(void *argument)
{
    vd_operation *operation = argument;
    HANDLE handle = operation->handle;
    uint32_t status = operation->body(operation->disk, operation, operation->context);
    vd_operation_finish(operation, status);
    free(operation);
    /* Last: this may free the disk (its handle was closed meanwhile). */
    vd_handle_release(handle);
    return NULL;
}

/* With the lock held: joins the previous operation's thread. */
static void vd_operations_join(struct vd_operations *operations)
{
    if (operations->has_thread) {
        pthread_t thread = operations->thread;
        operations->has_thread = 0;
        if (pthread_equal(thread, pthread_self()))
            pthread_detach(thread);
        else
            pthread_join(thread, NULL);
    }
}

/* An operation that never started: everything the start took over goes. */
static uint32_t vd_operation_discard(vd_operation *operation, HANDLE handle, void *context,
                                     void (*free_context)(void *), uint32_t status)
{
    free(operation);
    if (free_context != NULL)
        free_context(context);
    vd_handle_release(handle);
    return status;
}

uint32_t vd_operation_run(HANDLE handle, vd_disk *disk, OVERLAPPED *overlapped,
                          vd_operation_body body, void *context, void (*free_context)(void *))
{
    struct vd_operations *operations = vd_operations_of(disk);
    vd_operation *operation = operations != NULL ? calloc(1, sizeof *operation) : NULL;
    if (operation == NULL)
        return vd_operation_discard(NULL, handle, context, free_context, VD_ERROR_NOT_ENOUGH_MEMORY);
    *operation = (vd_operation){ .owner = operations, .overlapped = overlapped, .handle = handle,
                                 .disk = disk, .body = body, .context = context,
                                 .free_context = free_context };
    pthread_mutex_lock(&operations->lock);
    if (operations->running != NULL) {
        pthread_mutex_unlock(&operations->lock);
        return vd_operation_discard(operation, handle, context, free_context, VD_ERROR_BUSY);
    }
    /* The previous thread has published its end; it may still be on its
     * way out.  Joining here keeps at most one per handle. */
    vd_operations_join(operations);
    operations->running = operation;
    if (overlapped != NULL) {
        overlapped->Internal = VD_STATUS_PENDING;
        overlapped->InternalHigh = 0;
        if (overlapped->hEvent != NULL)
            vd_engine_event_reset(overlapped->hEvent);
    }
    if (overlapped == NULL) {
        pthread_mutex_unlock(&operations->lock);
        uint32_t status = body(disk, operation, context);
        vd_operation_finish(operation, status);
        free(operation);
        vd_handle_release(handle);
        return status;
    }
    int failed = pthread_create(&operations->thread, NULL, vd_operation_thread, operation);
    if (failed) {
        operations->running = NULL;
        overlapped->Internal = VD_ERROR_NOT_ENOUGH_MEMORY;
        pthread_mutex_unlock(&operations->lock);
        return vd_operation_discard(operation, handle, context, free_context,
                                    VD_ERROR_NOT_ENOUGH_MEMORY);
    }
    operations->has_thread = 1;
    pthread_mutex_unlock(&operations->lock);
    return VD_ERROR_IO_PENDING;
}

uint32_t vd_operation_progress(vd_disk *disk, const OVERLAPPED *overlapped, uint32_t *status,
                               uint64_t *current, uint64_t *completion)
{
    struct vd_operations *operations = vd_operations_of(disk);
    if (operations == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t found = VD_ERROR_NOT_FOUND;
    pthread_mutex_lock(&operations->lock);
    vd_operation *running = operations->running;
    if (running != NULL && running->overlapped == overlapped) {
        /* Total first: done is clamped to it, so done <= total holds for
         * the pair even while the body moves both. */
        uint64_t total = atomic_load(&running->total);
        uint64_t done = atomic_load(&running->done);
        *status = VD_ERROR_IO_PENDING;
        *current = done < total ? done : total;
        *completion = total;
        found = VD_ERROR_SUCCESS;
    } else {
        for (unsigned i = 0; i < operations->record_count; i++) {
            const vd_operation_record *record = &operations->records[i];
            if (record->overlapped == overlapped) {
                *status = record->status;
                *current = record->done < record->total ? record->done : record->total;
                *completion = record->total;
                found = VD_ERROR_SUCCESS;
                break;
            }
        }
    }
    pthread_mutex_unlock(&operations->lock);
    return found;
}

uint32_t vd_operation_cancel(vd_disk *disk, const OVERLAPPED *overlapped)
{
    struct vd_operations *operations = vd_operations_of(disk);
    if (operations == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t found = VD_ERROR_NOT_FOUND;
    pthread_mutex_lock(&operations->lock);
    vd_operation *running = operations->running;
    if (running != NULL && (overlapped == NULL || running->overlapped == overlapped)) {
        vd_operation_request_cancel(running);
        found = VD_ERROR_SUCCESS;
    }
    pthread_mutex_unlock(&operations->lock);
    return found;
}

void vd_operations_end(vd_disk *disk)
{
    struct vd_operations *operations = atomic_load(&disk->operations);
    if (operations == NULL)
        return;
    pthread_mutex_lock(&operations->lock);
    while (operations->running != NULL) {
        vd_operation_request_cancel(operations->running);
        pthread_cond_wait(&operations->changed, &operations->lock);
    }
    vd_operations_join(operations);
    pthread_mutex_unlock(&operations->lock);
}

void vd_operations_free(struct vd_operations *operations)
{
    if (operations == NULL)
        return;
    vd_operations_join(operations);
    pthread_cond_destroy(&operations->changed);
    pthread_mutex_destroy(&operations->lock);
    free(operations);
}

DWORD vd_engine_cancel_io(HANDLE handle, LPOVERLAPPED overlapped)
{
    vd_disk *disk = vd_handle_acquire(handle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = vd_operation_cancel(disk, overlapped);
    vd_handle_release(handle);
    return status;
}
