/* AddVirtualDiskParent: a parent given by hand to a disk opened with
 * OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN.
 *
 * That flag opens "the backing store without opening any differencing
 * chain parents", so that a caller can "fixup broken parent links
 * temporarily without updating the parent locator" (SDK header); each call
 * adds one parent at the end of the handle's chain and may be "called
 * repeatedly to add additional parents" (the function's page).  The change
 * lives in the handle only: nothing is written to any file, and the next
 * open finds the parents the child records, as before.
 *
 * Order of checks: ParentPath NULL or empty (87), the handle (6), then
 * (engine README, section 11):
 *   a handle opened without CUSTOM_DIFF_CHAIN   VHD_INVALID_STATE: its chain
 *                                               is the one the child records;
 *   a disk attached now                         VHD_INVALID_STATE: its
 *                                               content must not change under
 *                                               the attachment;
 *   then what vd_chain_add (disk/chain.h) answers for the parent itself.
 * The parent is opened read-only whatever the handle's terms: the chain
 * only reads through it. */
#include <stdlib.h>

#include "api/attach.h"
#include "api/attach_redirect.h"
#include "api/handle.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/chain.h"
#include "disk/driver.h"
#include "disk/parent_paths.h"

/* A format that cannot parent the image (a VHDX under a VHD): 50, as
 * CreateVirtualDisk answers such a parent. */
static uint32_t vd_format_can_parent(const vd_image *parent, const vd_image *child)
{
    if (vd_image_driver(parent)->can_parent(child->device))
        return VD_ERROR_SUCCESS;
    return vd_fail(VD_ERROR_NOT_SUPPORTED, "a disk of this format cannot be the parent of a %s",
                   child->device == VD_DEVICE_VHD ? "VHD" : "VHDX");
}

static uint32_t vd_add_parent_to(vd_disk *disk, PCWSTR parent_path)
{
    if ((disk->open_flags & OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN) == 0)
        return vd_fail(VD_ERROR_VHD_INVALID_STATE,
                       "the disk was not opened with OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN");
    if (vd_attachment_of(disk) != VD_ATTACHMENT_NONE)
        return vd_fail(VD_ERROR_VHD_INVALID_STATE, "the disk is attached: detach it first");
    uint32_t served = vd_redirect_check_update(disk);
    if (served != VD_ERROR_SUCCESS)
        return served;
    char *path = NULL;
    uint32_t status = vd_parent_path_from_api(parent_path, &path);
    if (status == VD_ERROR_SUCCESS)
        status = vd_chain_add(&disk->image, &disk->chain, path, vd_format_can_parent);
    free(path);
    return status;
}

DWORD WINAPI AddVirtualDiskParent(HANDLE VirtualDiskHandle, PCWSTR ParentPath)
{
    vd_detail_clear();
    if (ParentPath == NULL || ParentPath[0] == 0)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_add_parent_to(disk, ParentPath);
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
