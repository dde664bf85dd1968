/* Content I/O of a handle whose image a permanent export's server holds
 * (api/attach_server.h).
 *
 * On Windows an attached disk is one disk in the kernel: I/O through the
 * handle that attached it and I/O through \\.\PhysicalDriveN reach the
 * same state.  Here a permanent export is served by a process of its own,
 * which parsed the image again and keeps its own block table, log and
 * allocation; the attaching handle still has the image open, with the
 * format state it had before.  Two writers with separate caches would
 * corrupt a sparse image, so once the server holds the image the handle's
 * content reads, writes, unmaps and flushes go through the device
 * (/dev/loopN, opened for each request with direct I/O and checked to be
 * still bound to the export's file), and the calls that rewrite the
 * image's structures (SetVirtualDiskInformation, metadata changes,
 * resize, compact, merge, AddVirtualDiskParent) are refused with
 * ERROR_VHD_INVALID_STATE.  Bytes outside a RESTRICTED_RANGE or
 * SINGLE_PARTITION view, which the device does not show, go through the
 * exported file itself.
 *
 * Once the attach is detached (from this handle or from any process) the
 * handle's format state no longer describes the file: content I/O then
 * answers ERROR_NOT_READY for good (a flush succeeds: the detach flushed
 * what was written), and the handle must be closed and the image opened
 * again. */
#ifndef VDENGINE_ATTACH_REDIRECT_H
#define VDENGINE_ATTACH_REDIRECT_H

#include <stdint.h>

#include "api/attach_export.h"
#include "api/handle.h"

typedef struct vd_redirect vd_redirect;

/* The disk's redirect, or NULL (the common case): one atomic load. */
static inline vd_redirect *vd_redirect_of(const vd_disk *disk)
{
    return atomic_load_explicit(&disk->redirect, memory_order_acquire);
}

/* Sends the content I/O of `disk` to the device `binding` describes,
 * whose server has just started; NOT_ENOUGH_MEMORY or the stat's code of
 * the exported file on failure, and nothing changed. */
uint32_t vd_redirect_begin(vd_disk *disk, const vd_attach_view *view,
                           const vd_attach_binding *binding);

/* The handle's own detach of the attach: the redirect stays, gone. */
void vd_redirect_detached(vd_disk *disk);

/* Whether the redirected attach was read-only: a handle whose attach has
 * been detached keeps its redirect, and its SCSI commands still reach the
 * target, which answers from it (NOT READY, a flush GOOD). */
int vd_redirect_read_only(const vd_redirect *redirect);

/* The handle's close: frees the redirect, if any.  No call uses the disk
 * any more. */
void vd_redirect_end(vd_disk *disk);

/* The content calls of disk/content.h, for a redirected disk; the caller
 * has checked alignment, range and writability. */
uint32_t vd_redirect_read(vd_redirect *redirect, uint64_t offset, void *buffer, uint64_t length);
uint32_t vd_redirect_write(vd_redirect *redirect, uint64_t offset, const void *buffer,
                           uint64_t length);
uint32_t vd_redirect_unmap(vd_redirect *redirect, uint64_t offset, uint64_t length);
uint32_t vd_redirect_flush(vd_redirect *redirect);

/* ERROR_VHD_INVALID_STATE (with a detail) when a server holds or held the
 * disk's image, so the handle must not rewrite its structures; SUCCESS
 * otherwise. */
uint32_t vd_redirect_check_update(const vd_disk *disk);

#endif
