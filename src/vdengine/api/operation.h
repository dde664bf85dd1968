/* The long operations' common model (Windows' VirtDisk semantics):
 * synchronous without an OVERLAPPED; with one, the call
 * answers ERROR_IO_PENDING, the work runs on an engine thread and the
 * OVERLAPPED's event (vdengine.h) is set at the end.
 * GetVirtualDiskOperationProgress finds an operation by the OVERLAPPED's
 * address, as Windows demands "the same structure"; it answers
 * ERROR_IO_PENDING with byte counts while the operation runs and its final
 * code afterwards, for as long as the handle is open.
 *
 * One long operation at a time per handle: a second one, synchronous or
 * not, gets ERROR_BUSY while the first runs.  Cancellation (CancelIoEx,
 * vd_engine_cancel_io) sets a flag the operation reads between its steps;
 * closing the handle cancels the running operation and waits for it. */
#ifndef VDENGINE_OPERATION_H
#define VDENGINE_OPERATION_H

#include <stdint.h>

#include "api/handle.h"

typedef struct vd_operation vd_operation;

/* The work of one operation, called with a reference on the handle and
 * without disk->lock; it takes the lock itself for as long as it changes
 * the image.  Returns the operation's Win32 code. */
typedef uint32_t (*vd_operation_body)(vd_disk *disk, vd_operation *operation, void *context);

/* Runs `body` on `disk` (acquired from `handle` by the caller, whose
 * reference this call takes over and releases): on the calling thread
 * without `overlapped`, returning the body's code; otherwise on a new
 * thread, returning ERROR_IO_PENDING (or the code of a failure to start).
 * `context` is freed with free_context (may be NULL) when the body is done.
 * ERROR_BUSY when the handle runs an operation already. */
uint32_t vd_operation_run(HANDLE handle, vd_disk *disk, OVERLAPPED *overlapped,
                          vd_operation_body body, void *context, void (*free_context)(void *));

/* For bodies: the amount of work in bytes (may change while running), the
 * bytes done so far (clamped to the total), and whether a cancel came. */
void vd_operation_set_total(vd_operation *operation, uint64_t total);
void vd_operation_set_done(vd_operation *operation, uint64_t done);
int vd_operation_cancelled(const vd_operation *operation);

/* For bodies that sleep instead of working in steps (a mirror, waiting to
 * be broken): `wake(argument)` is called after every cancel request, under
 * the operations' lock, so it must only signal (take no lock a cancel
 * caller may hold).  A cancel that came before the call is seen through
 * vd_operation_cancelled. */
void vd_operation_on_cancel(vd_operation *operation, void (*wake)(void *), void *argument);

/* For bodies, at a point where stopping leaves the image as it was, called
 * without disk->lock: whether a cancel came.  Tests only: while the
 * environment variable VIRTDISK_TEST_OPERATION_HOLD names a path that
 * exists, it first waits there (until the path is gone or a cancel comes),
 * so that a test observes a running operation at a known point, without
 * timing.  A file that holds a decimal number N holds only the checkpoints
 * reached with N bytes or more done, so that a test stops an operation
 * after any of its steps.  Unset, it costs one getenv. */
#define VD_OPERATION_HOLD_VARIABLE "VIRTDISK_TEST_OPERATION_HOLD"
int vd_operation_checkpoint(const vd_operation *operation);

/* GetVirtualDiskOperationProgress's answer for `overlapped`: *status
 * ERROR_IO_PENDING and the counts while running, the final code after.
 * ERROR_NOT_FOUND when the handle never ran an operation with it. */
uint32_t vd_operation_progress(vd_disk *disk, const OVERLAPPED *overlapped, uint32_t *status,
                               uint64_t *current, uint64_t *completion);

/* Cancels the running operation (with `overlapped`, or any when NULL);
 * ERROR_NOT_FOUND when there is none. */
uint32_t vd_operation_cancel(vd_disk *disk, const OVERLAPPED *overlapped);

/* For close: cancels the running operation and waits until it is done. */
void vd_operations_end(vd_disk *disk);

/* For vd_disk_free: joins the last thread and frees the records. */
void vd_operations_free(struct vd_operations *operations);

#endif
