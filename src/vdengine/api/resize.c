/* ResizeVirtualDisk (V1) and the work ExpandVirtualDisk shares with it.
 *
 * Order of checks, as for the other functions: the arguments (87), then the
 * handle (6), then its rights: VIRTUAL_DISK_ACCESS_METAOPS (what Expand
 * documents; V2/V3 handles hold it unless GetInfoOnly) on an image file
 * open for writing, else ERROR_ACCESS_DENIED.  A disk attached as a device
 * of the host (a loop device, which maps the file at the old size) gives
 * VHD_INVALID_STATE: "expanding a virtual disk requires that the virtual
 * disk be detached" (ExpandVirtualDisk); the in-process NO_LOCAL_HOST
 * attach reads the size anew at every command and is allowed.  The rest is
 * decided on the
 * image, inside the operation (so an OVERLAPPED caller gets it as the
 * operation's status):
 *
 *   - a differencing image through ExpandVirtualDisk, or a differencing
 *     VHD: VHD_INVALID_TYPE, nothing written.  Expand "is valid only for
 *     fixed and expandable virtual disks"; Hyper-V resizes no differencing
 *     VHD.  A differencing VHDX is resized alone, as Hyper-V does (the
 *     WMI ResizeVirtualHardDisk page): the parent is not touched, the
 *     child's sectors past the parent's end read zeros, and the chain
 *     accepts a VHDX child of another size than its parent (chain.c).
 *     "Safe" for a child is what the chain reads: the partition table its
 *     content shows, the parent's where the child holds no sectors of it;
 *   - NewSize not a multiple of the logical sector size (512 for VHD): 87;
 *     above the format's limit (2040 GiB VHD, 64 TiB VHDX): VHD_INVALID_SIZE,
 *     what CreateVirtualDisk answers for the same size;
 *   - the current size: success, nothing written;
 *   - smaller, on a format that cannot shrink (VHD, as Resize-VHD
 *     documents): ERROR_NOT_SUPPORTED; through ExpandVirtualDisk: 87;
 *   - smaller than SMALLEST_SAFE_VIRTUAL_SIZE (the end of the last MBR or
 *     GPT partition, disk/partition_end.c; the virtual size when the disk
 *     has no partition table the engine reads) without
 *     ALLOW_UNSAFE_VIRTUAL_SIZE: VHD_RESIZE_WOULD_TRUNCATE_DATA;
 *   - RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE (NewSize 0): the partition end;
 *     VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE without a partition table,
 *     VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE when the disk is no
 *     larger than that end.
 *
 * The guest's content is not touched: a resize is an operation on the
 * format, as on Windows.  On a grow the new sectors read zeros and a GPT's
 * backup header stays where it was, short of the new end; the guest's
 * partition tools move it to the new last sector when they extend a
 * partition (sgdisk -e, parted, Disk Management).  A shrink below a GPT's
 * backup header is "unsafe" for exactly that reason: the safe end includes
 * the backup.
 *
 * Progress counts virtual bytes: CompletionValue is the new size, and
 * CurrentValue reaches it when the resize is done.  The format writes the
 * change crash safely (driver.h); afterwards the image is read again from
 * the file, so every answer through the handle is the new one. */
#define _POSIX_C_SOURCE 200809L   /* strdup, F_DUPFD_CLOEXEC */

#include "api/resize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/attach.h"
#include "api/attach_redirect.h"
#include "api/flag_masks.h"
#include "api/handle.h"
#include "api/operation.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/partition_end.h"

/* The size the terms ask for, or the code that refuses them. */
static uint32_t vd_resize_target(vd_disk *disk, const vd_format_driver *driver,
                                 const vd_resize_terms *terms, uint64_t *target)
{
    const vd_image *image = &disk->image;
    uint64_t current = image->virtual_size;
    if (terms->to_smallest) {
        uint64_t end = 0;
        uint32_t status = vd_partition_table_end(disk, &end);
        if (status == VD_ERROR_NOT_FOUND)
            return vd_fail(VD_ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE,
                           "the disk has no partition table to take the smallest safe size from");
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (end >= current)
            return VD_ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE;
        if (!driver->can_shrink)
            return VD_ERROR_NOT_SUPPORTED;
        *target = end;
        return VD_ERROR_SUCCESS;
    }
    uint64_t size = terms->new_size;
    if (size == 0 || size % image->logical_sector_size != 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (size > driver->max_virtual_size)
        return VD_ERROR_VHD_INVALID_SIZE;
    if (size < current) {
        if (terms->grow_only)
            return VD_ERROR_INVALID_PARAMETER;
        if (!driver->can_shrink)
            return VD_ERROR_NOT_SUPPORTED;
        if (!terms->allow_unsafe && size < vd_smallest_safe_size(disk))
            return VD_ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA;
    }
    *target = size;
    return VD_ERROR_SUCCESS;
}

/* Reads the image again from its file, through a second descriptor of the
 * same open file (which shares the file's lock), and only then lets the old
 * state go: a failure leaves the handle with what it had. */
static uint32_t vd_resize_reload(vd_image *image, const vd_format_driver *driver)
{
    struct stat info;
    if (fstat(image->file.fd, &info) != 0)
        return vd_error_from_errno(errno);
    vd_file file = { .fd = fcntl(image->file.fd, F_DUPFD_CLOEXEC, 0), .writable = image->file.writable,
                     .size = (uint64_t)info.st_size, .path = NULL };
    if (file.fd < 0)
        return vd_error_from_errno(errno);
    if (image->file.path != NULL) {
        file.path = strdup(image->file.path);
        if (file.path == NULL) {
            vd_file_close(&file);
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        }
    }
    vd_image fresh;
    memset(&fresh, 0, sizeof fresh);
    uint32_t status = driver->reopen != NULL ? driver->reopen(image, &file, &fresh)
                                             : driver->open(&file, &fresh);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(&file);
        return status;
    }
    vd_image_release(image);
    *image = fresh;
    return VD_ERROR_SUCCESS;
}

/* The target size, checked; the operation's total set to it. */
static uint32_t vd_resize_plan(vd_disk *disk, vd_operation *operation, const vd_resize_terms *terms,
                               uint64_t *target)
{
    const vd_format_driver *driver = vd_image_driver(&disk->image);
    if (driver == NULL || driver->resize == NULL)
        return VD_ERROR_VHD_INVALID_TYPE;
    if (disk->image.subtype == VD_SUBTYPE_DIFFERENCING && (terms->grow_only || !driver->resizes_children))
        return VD_ERROR_VHD_INVALID_TYPE;
    uint32_t status = vd_resize_target(disk, driver, terms, target);
    if (status == VD_ERROR_SUCCESS)
        vd_operation_set_total(operation, *target);
    return status;
}

/* Out of the way of the data path, as a mirror's switch is: an in-process
 * attach keeps reading and writing through the image, whose blocks a grow
 * may move and whose state the reload frees. */
static uint32_t vd_resize_apply(vd_disk *disk, vd_operation *operation, uint64_t target)
{
    vd_image *image = &disk->image;
    const vd_format_driver *driver = vd_image_driver(image);
    uint32_t status = VD_ERROR_SUCCESS;
    if (target != image->virtual_size) {
        vd_resize_request request = { .new_size = target, .operation = operation };
        vd_gate_enter_alone(&disk->content_gate);
        status = driver->resize(image, &request);
        if (status == VD_ERROR_SUCCESS)
            status = vd_resize_reload(image, driver);
        vd_gate_leave_alone(&disk->content_gate);
    }
    if (status == VD_ERROR_SUCCESS)
        vd_operation_set_done(operation, target);
    return status;
}

/* Planned under the lock, then a checkpoint without it (progress takes
 * the lock too), then applied under it.  The size cannot change between:
 * the handle runs one long operation at a time, and nothing else resizes. */
static uint32_t vd_resize_body(vd_disk *disk, vd_operation *operation, void *context)
{
    const vd_resize_terms *terms = context;
    uint64_t target = 0;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_resize_plan(disk, operation, terms, &target);
    pthread_mutex_unlock(&disk->lock);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (vd_operation_checkpoint(operation))
        return VD_ERROR_OPERATION_ABORTED;
    pthread_mutex_lock(&disk->lock);
    status = vd_resize_apply(disk, operation, target);
    pthread_mutex_unlock(&disk->lock);
    return status;
}

DWORD vd_resize_start(HANDLE handle, const vd_resize_terms *terms, OVERLAPPED *overlapped)
{
    vd_disk *disk = vd_handle_acquire(handle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_METAOPS) || disk->read_only) {
        vd_handle_release(handle);
        return VD_ERROR_ACCESS_DENIED;
    }
    int attachment = vd_attachment_of(disk);
    if (attachment == VD_ATTACHMENT_LOOP_READ_WRITE || attachment == VD_ATTACHMENT_LOOP_READ_ONLY) {
        vd_handle_release(handle);
        return vd_fail(VD_ERROR_VHD_INVALID_STATE, "the disk is attached as a loop device; detach it first");
    }
    uint32_t served = vd_redirect_check_update(disk);
    if (served != VD_ERROR_SUCCESS) {
        vd_handle_release(handle);
        return served;
    }
    vd_resize_terms *context = malloc(sizeof *context);
    if (context == NULL) {
        vd_handle_release(handle);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    *context = *terms;
    return vd_operation_run(handle, disk, overlapped, vd_resize_body, context, free);
}

/* RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE: "NewSize ... must be zero" (SDK);
 * without it, NewSize 0 asks for no size at all. */
DWORD WINAPI ResizeVirtualDisk(HANDLE VirtualDiskHandle, RESIZE_VIRTUAL_DISK_FLAG Flags,
                               PRESIZE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    uint32_t flags = (uint32_t)Flags;
    int to_smallest = (flags & RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE) != 0;
    if ((flags & ~(uint32_t)VD_RESIZE_FLAGS_KNOWN) != 0 || Parameters == NULL
        || Parameters->Version != RESIZE_VIRTUAL_DISK_VERSION_1
        || (to_smallest ? Parameters->Version1.NewSize != 0 : Parameters->Version1.NewSize == 0))
        return VD_ERROR_INVALID_PARAMETER;
    vd_resize_terms terms = {
        .new_size = Parameters->Version1.NewSize,
        .allow_unsafe = (flags & RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE) != 0,
        .to_smallest = to_smallest,
    };
    return vd_resize_start(VirtualDiskHandle, &terms, Overlapped);
}
