/* SetVirtualDiskInformation: what each SET_VIRTUAL_DISK_INFO version
 * changes, who may change it, and how a new parent is checked.
 *
 * Order of checks, as for the other functions: the arguments (87), then the
 * handle (6), then the handle's rights: VIRTUAL_DISK_ACCESS_METAOPS (V1
 * masks; V2/V3 handles hold it unless GetInfoOnly) and an image file open
 * for writing, else ERROR_ACCESS_DENIED (5), the answer Windows gives a
 * write through a read-only handle.  Then the image type (VHD_INVALID_TYPE
 * when the version does not apply to it), then the change itself.
 *
 * What the versions change (image_update.h has the format side):
 *   PARENT_PATH (1)             a differencing image's parent locations.
 *                               The new parent must open ("the function
 *                               fails if the system cannot resolve the
 *                               supplied path") and be the parent the child
 *                               records: same identifier, else
 *                               VHD_CHILD_PARENT_ID_MISMATCH, same virtual
 *                               size (a VHDX child may differ, chain.c),
 *                               else VHD_CHILD_PARENT_SIZE_MISMATCH.
 *                               The child's parent GUID and time stamp are
 *                               rewritten from the new parent (Remarks).
 *   IDENTIFIER (2)              VHD UniqueId / VHDX DataWriteGuid: the GUID
 *                               children link to, so changing it breaks
 *                               existing chains, as the SDK page warns.
 *   PARENT_PATH_WITH_DEPTH (3)  as 1, for the image ChildDepth levels up the
 *                               chain (1 = the opened image); that image
 *                               must have been opened read-write (RWDepth).
 *   PHYSICAL_SECTOR_SIZE (4)    VHDX only, 512 or 4096 (Set-VHD documents the
 *                               parameter for VHDX only); VHD stores none.
 *   VIRTUAL_DISK_ID (5)         VHDX Page 83 id; VHD its UniqueId, the GUID
 *                               GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID answers.
 *   CHANGE_TRACKING_STATE (6)   the engine keeps no resilient change
 *                               tracking: enabling it is ERROR_NOT_SUPPORTED,
 *                               disabling it succeeds and writes nothing
 *                               (it is off on every disk the engine opens).
 *   PARENT_LOCATOR (7)          as 1, but LinkageId is recorded as the
 *                               parent's identity and not compared (Set-VHD
 *                               -IgnoreIdMismatch); the parent must still
 *                               open and have the child's size.
 * A zero GUID for IDENTIFIER or VIRTUAL_DISK_ID is refused with 87: an
 * identifier that identifies nothing would make every zero-linked child
 * match.
 *
 * A new parent is checked by opening it as the child will find it from now
 * on (vd_new_chain_open), before anything is written.  After the change
 * the handle holds that chain, so reads and PARENT_LOCATION through it
 * follow the new parent at once.  Where the chain has to be opened again
 * (a change up the chain, or writable ancestors) and that fails, the old
 * chain stays: the change on disk is complete either way. */
#define _POSIX_C_SOURCE 200809L   /* stat */

#include "virtdisk_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/chain.h"
#include "base/detail.h"
#include "base/guid.h"
#include "api/handle.h"
#include "api/attach_redirect.h"
#include "disk/driver.h"
#include "disk/parent_paths.h"
#include "base/utf16.h"
#include "base/vd_errors.h"

/* ---- arguments ------------------------------------------------------------ */

static PCWSTR vd_set_info_parent_path(const SET_VIRTUAL_DISK_INFO *info)
{
    switch (info->Version) {
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH:
        return info->ParentFilePath;
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH:
        return info->ParentPathWithDepthInfo.ParentFilePath;
    case SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR:
        return info->ParentLocator.ParentFilePath;
    default:
        return NULL;
    }
}

static int vd_set_info_arguments_valid(const SET_VIRTUAL_DISK_INFO *info)
{
    if (info == NULL)
        return 0;
    switch (info->Version) {
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH:
    case SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR: {
        PCWSTR path = vd_set_info_parent_path(info);
        return path != NULL && path[0] != 0;
    }
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH: {
        PCWSTR path = vd_set_info_parent_path(info);
        return path != NULL && path[0] != 0 && info->ParentPathWithDepthInfo.ChildDepth >= 1;
    }
    case SET_VIRTUAL_DISK_INFO_IDENTIFIER:
        return !vd_api_guid_is_zero(&info->UniqueIdentifier);
    case SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
        return !vd_api_guid_is_zero(&info->VirtualDiskId);
    case SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE:
        return info->VhdPhysicalSectorSize == 512 || info->VhdPhysicalSectorSize == 4096;
    case SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE:
        return 1;
    default:
        return 0;
    }
}

/* ---- the new parent ------------------------------------------------------- */

/* The new parent is opened the way the child will find it from now on: a
 * copy of the child that stores the new locations (and, for
 * PARENT_LOCATOR, the given linkage) goes through the chain resolver, which
 * checks the parent's identity and size and finds cycles by file identity
 * before it opens anything twice (chain.c). */
static uint32_t vd_new_chain_open(const vd_image *child, const char *parent_path,
                                  const vd_guid *linkage, vd_chain *chain, char **absolute,
                                  char **relative)
{
    /* A path that names nothing fails with its own code, as the SDK page
     * asks, not the chain's PARENT_VHD_NOT_FOUND. */
    struct stat parent_info;
    if (stat(parent_path, &parent_info) != 0)
        return vd_error_from_errno(errno);
    uint32_t status = vd_parent_paths(child->file.path, parent_path, absolute, relative);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_image relocated = *child;
    memset(&relocated.parent, 0, sizeof relocated.parent);
    relocated.parent.relative_path = *relative;
    relocated.parent.absolute_path = *absolute;
    if (linkage != NULL) {
        relocated.parent_identifier = *linkage;
        relocated.has_parent_identifier2 = 0;
    }
    status = vd_chain_open(&relocated, 0, chain);
    if (status != VD_ERROR_SUCCESS)
        return status;
    const vd_image *parent = &chain->images[0];
    if (!vd_image_driver(parent)->can_parent(child->device)) {
        vd_chain_close(chain);
        return VD_ERROR_NOT_SUPPORTED;   /* as CreateVirtualDisk answers such a parent */
    }
    return VD_ERROR_SUCCESS;
}

/* The image ChildDepth levels up from the opened one (1: the opened one). */
static uint32_t vd_image_at_depth(vd_disk *disk, ULONG depth, vd_image **image)
{
    if (depth == 1) {
        *image = &disk->image;
        return VD_ERROR_SUCCESS;
    }
    if (depth - 2 >= disk->chain.count)
        return VD_ERROR_INVALID_PARAMETER;   /* no such image in the opened chain */
    *image = &disk->chain.images[depth - 2];
    return (*image)->file.writable ? VD_ERROR_SUCCESS : VD_ERROR_ACCESS_DENIED;
}

/* Gives the handle the chain its changed locations lead to.  `fresh` is
 * the new parent's chain as validated, opened read-only: it is adopted
 * when the child itself changed and the handle keeps its ancestors
 * read-only; otherwise the handle's chain is opened again by its terms. */
static void vd_disk_replace_chain(vd_disk *disk, ULONG depth, vd_chain *fresh)
{
    if (disk->chain.count == 0) {
        vd_chain_close(fresh);   /* opened without parents: nothing follows them */
        return;
    }
    if (depth == 1 && disk->writable_depth <= 1) {
        vd_chain_close(&disk->chain);
        disk->chain = *fresh;
        memset(fresh, 0, sizeof *fresh);
        return;
    }
    vd_chain_close(fresh);
    vd_chain reopened;
    memset(&reopened, 0, sizeof reopened);
    if (vd_disk_open_parents(disk, &reopened) != VD_ERROR_SUCCESS)
        return;   /* the old chain stays; see the top of this file */
    vd_chain_close(&disk->chain);
    disk->chain = reopened;
}

static uint32_t vd_set_parent(vd_disk *disk, const SET_VIRTUAL_DISK_INFO *info)
{
    ULONG depth = info->Version == SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH
                      ? info->ParentPathWithDepthInfo.ChildDepth
                      : 1;
    vd_image *child;
    uint32_t status = vd_image_at_depth(disk, depth, &child);
    if (status != VD_ERROR_SUCCESS)
        return status;
    const vd_update_ops *ops = vd_update_ops_of(child);
    if (!child->has_parent || ops == NULL || ops->set_parent == NULL)
        return VD_ERROR_VHD_INVALID_TYPE;

    char *parent_path = NULL;
    status = vd_parent_path_from_api(vd_set_info_parent_path(info), &parent_path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    int by_locator = info->Version == SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR;
    vd_guid given_linkage = vd_guid_from_api(&info->ParentLocator.LinkageId);
    vd_chain chain;
    memset(&chain, 0, sizeof chain);
    char *absolute = NULL, *relative = NULL;
    status = vd_new_chain_open(child, parent_path, by_locator ? &given_linkage : NULL, &chain,
                               &absolute, &relative);
    free(parent_path);
    if (status == VD_ERROR_SUCCESS) {
        /* The child records the parent it now has (Remarks: the parent
         * GUID and time stamp are updated). */
        vd_parent_link link = { &chain.images[0],
                                by_locator ? given_linkage : chain.images[0].identifier,
                                absolute, relative };
        status = ops->set_parent(child, &link);
    }
    free(absolute);
    free(relative);
    if (status == VD_ERROR_SUCCESS)
        vd_disk_replace_chain(disk, depth, &chain);
    else
        vd_chain_close(&chain);
    return status;
}

/* ---- the other versions --------------------------------------------------- */

static uint32_t vd_set_on_image(vd_image *image, const SET_VIRTUAL_DISK_INFO *info)
{
    const vd_update_ops *ops = vd_update_ops_of(image);
    if (ops == NULL)
        return VD_ERROR_VHD_INVALID_TYPE;
    switch (info->Version) {
    case SET_VIRTUAL_DISK_INFO_IDENTIFIER: {
        if (ops->set_identifier == NULL)
            return VD_ERROR_VHD_INVALID_TYPE;
        vd_guid identifier = vd_guid_from_api(&info->UniqueIdentifier);
        return ops->set_identifier(image, &identifier);
    }
    case SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID: {
        if (ops->set_virtual_disk_id == NULL)
            return VD_ERROR_VHD_INVALID_TYPE;
        vd_guid id = vd_guid_from_api(&info->VirtualDiskId);
        return ops->set_virtual_disk_id(image, &id);
    }
    case SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE:
        if (ops->set_physical_sector_size == NULL)
            return VD_ERROR_VHD_INVALID_TYPE;
        return ops->set_physical_sector_size(image, info->VhdPhysicalSectorSize);
    default:   /* CHANGE_TRACKING_STATE */
        if (!info->ChangeTrackingEnabled)
            return VD_ERROR_SUCCESS;   /* off already: nothing to write */
        return vd_fail(VD_ERROR_NOT_SUPPORTED,
                       "the engine keeps no resilient change tracking and cannot enable it");
    }
}

static uint32_t vd_set_info_on_disk(vd_disk *disk, const SET_VIRTUAL_DISK_INFO *info)
{
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_METAOPS) || !disk->image.file.writable)
        return VD_ERROR_ACCESS_DENIED;
    uint32_t served = vd_redirect_check_update(disk);
    if (served != VD_ERROR_SUCCESS)
        return served;
    switch (info->Version) {
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH:
    case SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH:
    case SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR:
        return vd_set_parent(disk, info);
    default:
        return vd_set_on_image(&disk->image, info);
    }
}

DWORD WINAPI SetVirtualDiskInformation(HANDLE VirtualDiskHandle,
                                       PSET_VIRTUAL_DISK_INFO VirtualDiskInfo)
{
    vd_detail_clear();
    if (!vd_set_info_arguments_valid(VirtualDiskInfo))
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_set_info_on_disk(disk, VirtualDiskInfo);
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
