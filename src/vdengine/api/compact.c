/* CompactVirtualDisk V1, the file-system-agnostic compact: the checks
 * Windows makes, then the format's compact slot (driver.h) run through the
 * long operations' model (operation.h), synchronously or on a worker.
 *
 * Fixed images hold no blocks to give back.  Hyper-V lets a compact run on
 * a fixed VHDX "but it will never have any effect on a fixed VHDX", so the
 * call succeeds without touching the file; a fixed VHD is not among the
 * types Msvm_ImageManagementService.CompactVirtualHardDisk accepts (fixed
 * VHDX, dynamic and differencing VHD and VHDX), and diskpart's compact
 * vdisk wants "a dynamically expanding VHD", so it gets
 * ERROR_VHD_INVALID_TYPE, the code for an operation "that cannot be
 * performed on a virtual disk of this type" (the driver's compacts_fixed).
 * An image opened read-only, or a V1 handle without
 * VIRTUAL_DISK_ACCESS_METAOPS, gets ACCESS_DENIED. */
#include <stdlib.h>

#include "api/attach.h"
#include "api/attach_redirect.h"
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

static int vd_compacts_fixed(const vd_image *image)
{
    const vd_format_driver *driver = vd_image_driver(image);
    return driver != NULL && driver->compacts_fixed;
}

/* "The virtual hard disk must not be attached or must be attached in
 * read-only mode" (Optimize-VHD): a read-write attach gets
 * VHD_INVALID_STATE, as a resize of an attached disk.  Attached read-only,
 * Windows runs a file-system-aware pass where it can read the volume's
 * free space (NTFS); the engine reads no file system, so it runs the
 * file-system-agnostic compact, what Windows does for a volume it cannot
 * compact that way.  Only an attach in this process (NO_LOCAL_HOST) may
 * stay: a host attach of a sparse image is served by a FUSE export that
 * may be another process with its own copy of the block table, which
 * moved blocks would leave pointing at old places. */
static uint32_t vd_compact_attachment_allows(const vd_disk *disk)
{
    int attachment = vd_attachment_of(disk);
    if (attachment == VD_ATTACHMENT_NONE || attachment == VD_ATTACHMENT_NO_HOST_READ_ONLY)
        return vd_redirect_check_update(disk);
    return vd_fail(VD_ERROR_VHD_INVALID_STATE, "%s",
                   vd_attachment_read_only(attachment)
                       ? "the disk is attached on the host; detach it to compact it"
                       : "the disk is attached read-write; detach it or attach it read-only to compact it");
}

static uint32_t vd_compact_body(vd_disk *disk, vd_operation *operation, void *context)
{
    uint32_t flags = *(const uint32_t *)context;
    if (vd_operation_checkpoint(operation))
        return VD_ERROR_OPERATION_ABORTED;
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
    else if (disk->image.subtype == VD_SUBTYPE_FIXED && !vd_compacts_fixed(&disk->image))
        status = VD_ERROR_VHD_INVALID_TYPE;
    else
        status = vd_compact_attachment_allows(disk);
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
