/* Attaching an image whose content is not one run of bytes of its file
 * (dynamic and differencing VHD and VHDX, a VHDX whose blocks are out of
 * order): the engine serves the content itself, a single-file FUSE export
 * of the raw disk (host/fuse_export.h), with a loop device on that file.
 * attach_host.c calls this for every such image and owns everything around
 * it (checks, state records, lifetime); the export owns only its server. */
#ifndef VDENGINE_ATTACH_EXPORT_H
#define VDENGINE_ATTACH_EXPORT_H

#include <stdint.h>

#include "api/handle.h"
#include "host/attach_record.h"

/* What the device shows: bytes [offset, offset + length) of the disk. */
typedef struct vd_attach_view {
    uint64_t offset;
    uint64_t length;
    uint32_t block_size;        /* the loop's logical sector size */
    int read_only;
    int permanent;              /* the export must outlive the handle */
    const char *image_path;     /* the image's path, for names and records */
} vd_attach_view;

/* The loop device an attach bound, and what the record must say of it. */
typedef struct vd_attach_binding {
    int number;                 /* N of /dev/loopN */
    int device_fd;              /* open descriptor of it (autoclear unless permanent) */
    /* The export's file the loop is bound to; empty for a loop on the image. */
    char backing_path[VD_ATTACH_RECORD_PATH_MAX];
    long server_pid;            /* the process serving a permanent export, else 0 */
} vd_attach_binding;

/* Serves `disk` and binds a loop device to the export.  Handle-bound: the
 * export runs in this process until vd_attach_export_release.  Permanent:
 * a server process of its own holds the image and the export until a
 * DetachVirtualDisk (api/attach_server.h). */
uint32_t vd_attach_export(vd_disk *disk, const vd_attach_view *view, vd_attach_binding *binding);

/* Called once a handle-bound attach of `disk` has let its loop device go
 * (detach, or the handle's close): an export serving it ends its server;
 * for a loop straight on the image there is nothing to end. */
void vd_attach_export_release(vd_disk *disk);

struct vd_fuse_export;

/* Starts the export of `disk` in a new directory under the run directory
 * and binds a loop device to its file (with `autoclear` or without); on
 * failure nothing of it is left.  Used by the two lifetimes alike. */
uint32_t vd_attach_export_serve(vd_disk *disk, const vd_attach_view *view, int autoclear,
                                struct vd_fuse_export **out, vd_attach_binding *binding);

/* Stops `export_` (its loop must be gone) and removes its directory; with
 * `flush`, what it served is made durable afterwards. */
void vd_attach_export_end(vd_disk *disk, struct vd_fuse_export *export_, int flush);

#endif
