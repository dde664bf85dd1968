/* Enumerate/Get/Set/DeleteVirtualDiskMetadata: the user metadata items of
 * a VHDX ([MS-VHDX] 2.6.1.2, metadata table entries with IsUser set).
 *
 * Checks, in order: arguments (87: a NULL item or size pointer, a NULL
 * buffer with a non-zero size, an item larger than the 1 MiB a metadata
 * entry can describe), the handle (6), its rights (5: listing and reading
 * need VIRTUAL_DISK_ACCESS_GET_INFO; setting and deleting need METAOPS and
 * an image file open for writing), then the image type: VHD and ISO have no
 * metadata items, ERROR_VHD_INVALID_TYPE.
 *
 * Buffers follow the documented protocol: a buffer too small gives
 * ERROR_INSUFFICIENT_BUFFER with the size needed written back (a count of
 * GUIDs for Enumerate, bytes for Get).  A missing item is ERROR_NOT_FOUND.
 * Only user items are listed and reachable here; the system items (file
 * parameters, sizes, Page 83, parent locator) are what
 * SetVirtualDiskInformation changes. */
#include "virtdisk_api.h"

#include "base/detail.h"
#include "base/guid.h"
#include "api/handle.h"
#include "api/attach_redirect.h"
#include "disk/driver.h"
#include "base/vd_errors.h"

/* Largest item a metadata table entry can describe (2.6.1.2: Length). */
#define VD_METADATA_ITEM_MAX (1024u * 1024u)
/* Most user items one metadata table may hold (2.6.1.2). */
#define VD_METADATA_USER_ITEMS_MAX 1024u

typedef enum vd_metadata_right { VD_METADATA_READ, VD_METADATA_WRITE } vd_metadata_right;

/* One call on a handle's metadata: its disk, locked, and its format's ops. */
typedef struct vd_metadata_call {
    HANDLE handle;
    vd_disk *disk;
    const vd_update_ops *ops;
} vd_metadata_call;

/* Starts a call that does `right` on the metadata items of the handle's
 * image; on failure nothing is held. */
static uint32_t vd_metadata_begin(HANDLE handle, vd_metadata_right right, vd_metadata_call *call)
{
    call->handle = handle;
    call->disk = vd_handle_acquire(handle);
    if (call->disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    const vd_disk *disk = call->disk;
    int allowed = right == VD_METADATA_READ
                      ? vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_GET_INFO)
                      : vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_METAOPS)
                            && disk->image.file.writable;
    call->ops = vd_update_ops_of(&disk->image);
    uint32_t status = VD_ERROR_SUCCESS;
    if (!allowed)
        status = VD_ERROR_ACCESS_DENIED;
    else if (call->ops == NULL || call->ops->metadata_list == NULL)
        status = VD_ERROR_VHD_INVALID_TYPE;
    else if (right == VD_METADATA_WRITE)
        status = vd_redirect_check_update(disk);
    if (status != VD_ERROR_SUCCESS) {
        vd_handle_release(handle);
        return status;
    }
    pthread_mutex_lock(&call->disk->lock);
    return VD_ERROR_SUCCESS;
}

static void vd_metadata_end(const vd_metadata_call *call)
{
    pthread_mutex_unlock(&call->disk->lock);
    vd_handle_release(call->handle);
}

DWORD WINAPI EnumerateVirtualDiskMetadata(HANDLE VirtualDiskHandle, PULONG NumberOfItems,
                                          GUID *Items)
{
    vd_detail_clear();
    if (NumberOfItems == NULL || (Items == NULL && *NumberOfItems != 0))
        return VD_ERROR_INVALID_PARAMETER;
    vd_metadata_call call;
    uint32_t status = vd_metadata_begin(VirtualDiskHandle, VD_METADATA_READ, &call);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* A VHDX holds at most 1024 user items (2.6.1.2), so the list fits a
     * fixed array in the engine's layout before it is converted. */
    vd_guid found[VD_METADATA_USER_ITEMS_MAX];
    uint32_t count = *NumberOfItems < VD_METADATA_USER_ITEMS_MAX ? *NumberOfItems
                                                                 : VD_METADATA_USER_ITEMS_MAX;
    status = call.ops->metadata_list(&call.disk->image, found, &count);
    vd_metadata_end(&call);
    for (uint32_t i = 0; status == VD_ERROR_SUCCESS && i < count; i++)
        vd_guid_to_api(&found[i], &Items[i]);
    if (status == VD_ERROR_SUCCESS || status == VD_ERROR_INSUFFICIENT_BUFFER)
        *NumberOfItems = count;
    return status;
}

DWORD WINAPI GetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item,
                                    PULONG MetaDataSize, PVOID MetaData)
{
    vd_detail_clear();
    if (Item == NULL || MetaDataSize == NULL || (MetaData == NULL && *MetaDataSize != 0))
        return VD_ERROR_INVALID_PARAMETER;
    vd_metadata_call call;
    uint32_t status = vd_metadata_begin(VirtualDiskHandle, VD_METADATA_READ, &call);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_guid item = vd_guid_from_api(Item);
    uint32_t size = *MetaDataSize;
    status = call.ops->metadata_get(&call.disk->image, &item, MetaData, &size);
    vd_metadata_end(&call);
    if (status == VD_ERROR_SUCCESS || status == VD_ERROR_INSUFFICIENT_BUFFER)
        *MetaDataSize = size;
    return status;
}

DWORD WINAPI SetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item,
                                    ULONG MetaDataSize, const void *MetaData)
{
    vd_detail_clear();
    if (Item == NULL || (MetaData == NULL && MetaDataSize != 0)
        || MetaDataSize > VD_METADATA_ITEM_MAX)
        return VD_ERROR_INVALID_PARAMETER;
    vd_metadata_call call;
    uint32_t status = vd_metadata_begin(VirtualDiskHandle, VD_METADATA_WRITE, &call);
    if (status == VD_ERROR_SUCCESS) {
        vd_guid item = vd_guid_from_api(Item);
        status = call.ops->metadata_set(&call.disk->image, &item, MetaData, MetaDataSize);
        vd_metadata_end(&call);
    }
    return status;
}

DWORD WINAPI DeleteVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item)
{
    vd_detail_clear();
    if (Item == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_metadata_call call;
    uint32_t status = vd_metadata_begin(VirtualDiskHandle, VD_METADATA_WRITE, &call);
    if (status == VD_ERROR_SUCCESS) {
        vd_guid item = vd_guid_from_api(Item);
        status = call.ops->metadata_remove(&call.disk->image, &item);
        vd_metadata_end(&call);
    }
    return status;
}
