/* CompactVirtualDisk V1, the file-system-agnostic compact: the checks
 * Windows makes, then the format's compact slot (driver.h) run through the
 * long operations' model (operation.h), synchronously or on a worker.
 *
 * Fixed images hold no blocks to give back: Hyper-V lets a compact run on
 * any type "but it will never have any effect on a fixed VHDX", so the call
 * succeeds without touching the file.  An image opened read-only, or a V1
 * handle without VIRTUAL_DISK_ACCESS_METAOPS, gets ACCESS_DENIED. */
#include <stdlib.h>

#include "api/flag_masks.h"
#include "api/handle.h"
#include "api/operation.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "vdengine.h"

/* Parameters may be NULL or name version 1; flags only the known bits. */
static int vd_compact_arguments_valid(uint32_t flags, const COMPACT_VIRTUAL_DISK_PARAMETERS *parameters)
{
    return (flags & ~(uint32_t)VD_COMPACT_FLAGS_KNOWN) == 0
           && (parameters == NULL || parameters->Version == COMPACT_VIRTUAL_DISK_VERSION_1);
}

static uint32_t vd_compact_body(vd_disk *disk, vd_operation *operation, void *context)
{
    uint32_t flags = *(const uint32_t *)context;
    pthread_mutex_lock(&disk->lock);
    vd_image *image = &disk->image;
    const vd_format_driver *driver = vd_image_driver(image);
    uint32_t status = VD_ERROR_SUCCESS;
    if (image->subtype == VD_SUBTYPE_FIXED) {
        vd_operation_set_total(operation, 0);
    } else if (driver == NULL || driver->compact == NULL) {
        status = VD_ERROR_NOT_SUPPORTED;
    } else {
        vd_compact_request request = { flags, operation,
                                       disk->chain.count > 0 ? &disk->chain.images[0] : NULL };
        status = driver->compact(image, &request);
    }
    pthread_mutex_unlock(&disk->lock);
    return status;
}

DWORD WINAPI CompactVirtualDisk(HANDLE VirtualDiskHandle, COMPACT_VIRTUAL_DISK_FLAG Flags,
                                PCOMPACT_VIRTUAL_DISK_PARAMETERS Parameters,
                                LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    if (!vd_compact_arguments_valid((uint32_t)Flags, Parameters))
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = VD_ERROR_SUCCESS;
    if (disk->image.device == VD_DEVICE_ISO)
        status = VD_ERROR_NOT_SUPPORTED;
    else if (disk->read_only || disk->get_info_only
             || !vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_METAOPS))
        status = VD_ERROR_ACCESS_DENIED;
    uint32_t *context = status == VD_ERROR_SUCCESS ? malloc(sizeof *context) : NULL;
    if (status == VD_ERROR_SUCCESS && context == NULL)
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    if (status != VD_ERROR_SUCCESS) {
        vd_handle_release(VirtualDiskHandle);
        return status;
    }
    *context = (uint32_t)Flags;
    return vd_operation_run(VirtualDiskHandle, disk, Overlapped, vd_compact_body, context, free);
}
