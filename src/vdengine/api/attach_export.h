/* Attaching an image whose content is not one run of bytes of its file
 * (dynamic and differencing VHD and VHDX, a VHDX whose blocks are out of
 * order): the engine must serve the content itself, a single-file export
 * of the raw disk with a loop device on that file.  attach_host.c calls
 * this for every such image and owns everything around it (checks, state
 * records, lifetime); the export owns only its server. */
#ifndef VDENGINE_ATTACH_EXPORT_H
#define VDENGINE_ATTACH_EXPORT_H

#include <stdint.h>

#include "api/handle.h"

/* What the device shows: bytes [offset, offset + length) of the disk. */
typedef struct vd_attach_view {
    uint64_t offset;
    uint64_t length;
    uint32_t block_size;        /* the loop's logical sector size */
    int read_only;
    int permanent;              /* the export must outlive the handle */
    const char *image_path;     /* the image's path, for names and records */
} vd_attach_view;

/* Serves `disk` and binds a loop device to the export: *number is N of
 * /dev/loopN, *device_fd an open descriptor of it (with autoclear unless
 * permanent), as vd_loop_attach gives them. */
uint32_t vd_attach_export(vd_disk *disk, const vd_attach_view *view, int *number,
                          int *device_fd);

/* Called once a handle-bound attach of `disk` has let its loop device go
 * (detach, or the handle's close): an export serving it ends its server;
 * for a loop straight on the image there is nothing to end. */
void vd_attach_export_release(vd_disk *disk);

#endif
