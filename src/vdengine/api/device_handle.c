/* vd_engine_open_device: a handle to a disk or a volume (device_handle.h).
 *
 * The answers follow CreateFile's for the same path: FILE_NOT_FOUND or
 * PATH_NOT_FOUND for a missing one, ACCESS_DENIED where the caller may not
 * look.  A path that is neither a block device nor a directory (a regular
 * file, a socket) names no disk and no volume: ERROR_INVALID_PARAMETER. */
#define _GNU_SOURCE

#include "api/device_handle.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "api/handle.h"
#include "base/detail.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "host/io.h"
#include "host/loop.h"
#include "vdengine.h"

void vd_device_target_free(vd_device_target *target)
{
    if (target == NULL)
        return;
    free(target->path);
    free(target);
}

static uint32_t vd_device_target_make(const char *path, vd_device_target **made)
{
    struct stat status;
    if (stat(path, &status) != 0)
        return errno == ENOENT ? VD_ERROR_FILE_NOT_FOUND : vd_error_from_errno(errno);
    if (!S_ISBLK(status.st_mode) && !S_ISDIR(status.st_mode))
        return vd_fail(VD_ERROR_INVALID_PARAMETER,
                       "%s is neither a block device nor a directory", path);
    vd_device_target *target = calloc(1, sizeof *target);
    if (target == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    target->path = realpath(path, NULL);
    if (target->path == NULL) {
        uint32_t code = errno == ENOMEM ? VD_ERROR_NOT_ENOUGH_MEMORY : vd_error_from_errno(errno);
        free(target);
        return code;
    }
    target->is_disk = S_ISBLK(status.st_mode);
    target->device = target->is_disk ? (uint64_t)status.st_rdev : (uint64_t)status.st_dev;
    target->loop_number = vd_loop_number_of(target->device);
    *made = target;
    return VD_ERROR_SUCCESS;
}

DWORD vd_engine_open_device(PCWSTR Path, HANDLE *Handle)
{
    vd_detail_clear();
    if (Path == NULL || Handle == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    char *path = NULL;
    uint32_t status = vd_utf16_path_to_host(Path, &path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_device_target *target = NULL;
    status = vd_device_target_make(path, &target);
    free(path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_disk *disk = vd_disk_new();
    if (disk == NULL) {
        vd_device_target_free(target);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    disk->device_target = target;
    disk->loop_fd = -1;
    disk->loop_number = -1;
    status = vd_handle_insert(disk, Handle);
    if (status != VD_ERROR_SUCCESS)
        vd_disk_free(disk);
    return status;
}
