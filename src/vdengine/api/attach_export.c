/* The export behind an attach the loop cannot map onto the image file
 * (attach_export.h).  Each export gets a private directory under the run
 * directory (/run/virtdisk/export.XXXXXX, a tmpfs gone at reboot like the
 * records), mounts its FUSE file there as `disk` and binds a loop device
 * with direct I/O to that file, with the view's offset, size limit, sector
 * size and read-only flag.  The device is therefore exactly what a loop
 * straight on a fixed image would be; only the bytes come from the
 * engine's data path. */
#define _GNU_SOURCE
#include "api/attach_export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/attach_server.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "host/fuse_export.h"
#include "host/loop.h"

/* Makes the export's private directory in `directory` (size bytes). */
static uint32_t vd_export_directory(char *directory, size_t size)
{
    int length = snprintf(directory, size, "%s/export.XXXXXX", vd_attach_run_dir());
    if (length < 0 || (size_t)length >= size)
        return vd_fail(VD_ERROR_FILENAME_EXCED_RANGE, "the run directory's path is too long");
    if (mkdtemp(directory) == NULL)
        return vd_fail(vd_error_from_errno(errno), "cannot make the export's directory %s: %s",
                       directory, strerror(errno));
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_export_start_failed(uint32_t status)
{
    switch (status) {
    case VD_ERROR_PRIVILEGE_NOT_HELD:
        return vd_fail(status, "serving the image to a loop device mounts a FUSE file system, "
                               "which needs CAP_SYS_ADMIN (run as root)");
    case VD_ERROR_NOT_SUPPORTED:
        return vd_fail(status, "the image is not one run of its file, so the engine serves it "
                               "through FUSE, and this host has no usable /dev/fuse");
    default:
        return vd_fail(status, "cannot start the FUSE export of the image");
    }
}

uint32_t vd_attach_export_serve(vd_disk *disk, const vd_attach_view *view, int autoclear,
                                   vd_fuse_export **out, vd_attach_binding *binding)
{
    char directory[VD_ATTACH_RECORD_PATH_MAX];
    uint32_t status = vd_export_directory(directory, sizeof directory);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_fuse_export *export_ = NULL;
    status = vd_fuse_export_start(disk, directory, view->read_only, &export_);
    if (status != VD_ERROR_SUCCESS) {
        (void)rmdir(directory);
        return vd_export_start_failed(status);
    }
    const char *file = vd_fuse_export_file_path(export_);
    vd_loop_request request = {
        .backing_path = file,
        .offset = view->offset,
        .size_limit = view->length,
        .block_size = view->block_size,
        .read_only = view->read_only,
        .autoclear = autoclear,
        .name = view->image_path,
    };
    status = vd_loop_attach(&request, &binding->number, &binding->device_fd);
    if (status != VD_ERROR_SUCCESS) {
        (void)vd_fuse_export_stop(export_);
        (void)rmdir(directory);
        return vd_fail(status, "cannot bind a loop device to the image's FUSE export");
    }
    snprintf(binding->backing_path, sizeof binding->backing_path, "%s", file);
    *out = export_;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_attach_export(vd_disk *disk, const vd_attach_view *view, vd_attach_binding *binding)
{
    if (view->permanent)
        return vd_attach_server_start(disk, view, binding);
    vd_fuse_export *export_ = NULL;
    uint32_t status = vd_attach_export_serve(disk, view, 1, &export_, binding);
    if (status == VD_ERROR_SUCCESS)
        disk->export_ = export_;
    return status;
}

void vd_attach_export_end(vd_disk *disk, vd_fuse_export *export_, int flush)
{
    char *file = strdup(vd_fuse_export_file_path(export_));
    (void)vd_fuse_export_stop(export_);
    if (flush)
        (void)vd_content_flush(disk);
    char *slash = file != NULL ? strrchr(file, '/') : NULL;
    if (slash != NULL) {
        *slash = '\0';
        (void)rmdir(file);
    }
    free(file);
}

void vd_attach_export_release(vd_disk *disk)
{
    vd_fuse_export *export_ = disk->export_;
    if (export_ == NULL)
        return;                   /* a loop straight on the image */
    disk->export_ = NULL;
    vd_attach_export_end(disk, export_, disk->image.file.writable);
}
