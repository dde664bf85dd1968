/* GetVirtualDiskPhysicalPath and GetAllAttachedVirtualDiskPhysicalPaths:
 * the names of attached disks.
 *
 * GetVirtualDiskPhysicalPath answers the device an image is attached as,
 * "/dev/loopN" (Windows: \\.\PhysicalDriveN), whichever handle or process
 * attached it; ERROR_NOT_READY when it is not attached to the host (also
 * for a NO_LOCAL_HOST attach, which has no device).  A V1 handle needs
 * GET_INFO in its mask (ACCESS_DENIED otherwise).
 *
 * GetAllAttachedVirtualDiskPhysicalPaths answers, despite its name, the
 * image file paths of every disk attached to the host (what Windows
 * returns), from the attach records every process shares, as a MULTI_SZ:
 * each path NUL-terminated, then one more NUL (two for none).
 *
 * Both take a size in bytes: too small gives ERROR_INSUFFICIENT_BUFFER with
 * the size needed; NULL size, or a NULL buffer with a nonzero size, gives
 * ERROR_INVALID_PARAMETER. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/attach.h"
#include "base/detail.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "host/attach_record.h"

static int vd_buffer_valid(const void *buffer, const ULONG *size)
{
    return size != NULL && (buffer != NULL || *size == 0);
}

DWORD WINAPI GetVirtualDiskPhysicalPath(HANDLE VirtualDiskHandle, PULONG DiskPathSizeInBytes,
                                        PWSTR DiskPath)
{
    vd_detail_clear();
    if (!vd_buffer_valid(DiskPath, DiskPathSizeInBytes))
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = VD_ERROR_SUCCESS;
    int number = -1;
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_GET_INFO))
        status = VD_ERROR_ACCESS_DENIED;
    else if ((number = vd_attach_host_device(disk, vd_attachment_of(disk))) < 0)
        status = VD_ERROR_NOT_READY;
    vd_handle_release(VirtualDiskHandle);
    if (status != VD_ERROR_SUCCESS)
        return status;
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", number);
    size_t units = vd_utf8_to_utf16(device, NULL, 0);
    ULONG needed = (ULONG)(units * sizeof(WCHAR));
    ULONG capacity = *DiskPathSizeInBytes;
    *DiskPathSizeInBytes = needed;
    if (capacity < needed)
        return VD_ERROR_INSUFFICIENT_BUFFER;
    vd_utf8_to_utf16(device, DiskPath, units);
    return VD_ERROR_SUCCESS;
}

/* The MULTI_SZ being built: UTF-16 units, grown as paths come. */
typedef struct vd_path_list {
    WCHAR *units;
    size_t count;
    size_t capacity;
    int failed;
} vd_path_list;

static int vd_path_list_add(const vd_attach_record *record, void *context)
{
    vd_path_list *list = context;
    size_t units = vd_utf8_to_utf16(record->image_path, NULL, 0);
    if (units == 0)
        return 0;                 /* not UTF-8: no name to give it */
    if (list->count + units + 1 > list->capacity) {
        size_t capacity = (list->count + units + 1) * 2;
        WCHAR *grown = realloc(list->units, capacity * sizeof(WCHAR));
        if (grown == NULL) {
            list->failed = 1;
            return 1;
        }
        list->units = grown;
        list->capacity = capacity;
    }
    vd_utf8_to_utf16(record->image_path, list->units + list->count, units);
    list->count += units;
    return 0;
}

DWORD WINAPI GetAllAttachedVirtualDiskPhysicalPaths(PULONG PathsBufferSizeInBytes,
                                                    PWSTR PathsBuffer)
{
    vd_detail_clear();
    if (!vd_buffer_valid(PathsBuffer, PathsBufferSizeInBytes))
        return VD_ERROR_INVALID_PARAMETER;
    vd_path_list list = { NULL, 0, 0, 0 };
    (void)vd_attach_records_walk(0, vd_path_list_add, &list);
    if (list.failed) {
        free(list.units);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    size_t units = list.count + (list.count == 0 ? 2 : 1);
    ULONG needed = (ULONG)(units * sizeof(WCHAR));
    ULONG capacity = *PathsBufferSizeInBytes;
    *PathsBufferSizeInBytes = needed;
    uint32_t status = VD_ERROR_INSUFFICIENT_BUFFER;
    if (capacity >= needed) {
        if (list.count > 0)
            memcpy(PathsBuffer, list.units, list.count * sizeof(WCHAR));
        memset(PathsBuffer + list.count, 0, (units - list.count) * sizeof(WCHAR));
        status = VD_ERROR_SUCCESS;
    }
    free(list.units);
    return status;
}
