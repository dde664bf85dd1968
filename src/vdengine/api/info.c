/* GetVirtualDiskInformation on image files.
 *
 * Buffer protocol (as Windows): *VirtualDiskInfoSize is the size of the
 * caller's buffer in bytes.  Too small for the answer: ERROR_INSUFFICIENT_BUFFER
 * (122) with *VirtualDiskInfoSize set to the size needed.  Fixed-size
 * answers need sizeof(GET_VIRTUAL_DISK_INFO) (32); PARENT_LOCATION and
 * CHANGE_TRACKING_STATE need the offset of their string plus its bytes.  On
 * success *SizeUsed (optional) receives the bytes written and
 * *VirtualDiskInfoSize is left as it was.  A buffer too small to hold even
 * the Version member is answered with the smallest size any version needs.
 *
 * Errors, in the order they are checked:
 *   87   VirtualDiskInfoSize or VirtualDiskInfo NULL;
 *   6    the handle is not an open engine handle;
 *   87   Version 0 (GET_VIRTUAL_DISK_INFO_UNSPECIFIED, "should not be used")
 *        or above 15;
 *   5    a version 1 handle opened without VIRTUAL_DISK_ACCESS_GET_INFO (the
 *        function "can be called on any valid handle, provided the handle
 *        was opened using the VIRTUAL_DISK_ACCESS_GET_INFO flag");
 *   ERROR_VHD_INVALID_TYPE  the version does not apply to this disk ("the
 *        requested operation cannot be performed on a virtual disk of this
 *        type"), see the table below;
 *   122  buffer too small.
 *
 * Which version applies to what:
 *   SIZE, VIRTUAL_STORAGE_TYPE, PHYSICAL_DISK, IS_LOADED   every disk
 *   IDENTIFIER, PROVIDER_SUBTYPE, IS_4K_ALIGNED, VHD_PHYSICAL_SECTOR_SIZE,
 *   SMALLEST_SAFE_VIRTUAL_SIZE, FRAGMENTATION, VIRTUAL_DISK_ID,
 *   CHANGE_TRACKING_STATE                           VHD and VHDX, not ISO:
 *        an ISO image has no identifier, no VHD disk type, no blocks and
 *        no change tracking, so these are questions about a kind of disk
 *        it is not;
 *   PARENT_LOCATION, PARENT_IDENTIFIER      differencing VHD and VHDX only
 *        ("valid only for differencing virtual disks");
 *   PARENT_TIMESTAMP                        differencing VHD only: the VHD
 *        header stores the parent's modification time, a VHDX has no such
 *        field (its link to the parent is parent_linkage alone).
 *
 * What each answer holds, per format:
 *   SIZE          VirtualSize: the size the guest sees.  PhysicalSize: the
 *                 image file's size (its end-of-file), which is what Windows
 *                 reports (Get-VHD FileSize): on NTFS an image file is not
 *                 sparse, so size and allocation agree there, while on a
 *                 host file system with holes the allocation would depend
 *                 on the host, not on the image.  For a differencing disk,
 *                 the child's file alone.  BlockSize: the payload block
 *                 size, 0 for fixed disks and ISO.  SectorSize: the logical
 *                 sector size (VHD 512, VHDX 512 or 4096, ISO 2048).
 *   IDENTIFIER    VHD: the footer's UniqueId.  VHDX: the current header's
 *                 DataWriteGuid.  Both are what a differencing child records
 *                 as its parent (VHD header ParentUniqueId, VHDX
 *                 parent_linkage), so a child's PARENT_IDENTIFIER equals its
 *                 parent's IDENTIFIER for either format, which is the
 *                 relation Windows checks when it opens a chain.
 *   VIRTUAL_DISK_ID  VHDX: the Page 83 Data metadata item, the identity
 *                 the disk shows to its guest and keeps across writes.
 *                 VHD: the UniqueId, VHD having no other identity.
 *   PARENT_IDENTIFIER  VHD: header ParentUniqueId.  VHDX: parent_linkage.
 *   PARENT_TIMESTAMP   VHD header ParentTimeStamp (seconds since
 *                 2000-01-01 UTC), as stored.
 *   PARENT_LOCATION  ParentResolved TRUE (the parent is open): its path, one
 *                 NUL-terminated string.  FALSE (opened without parents):
 *                 the locations stored in the child, as stored, in search
 *                 order, as a MULTI_SZ (each string NUL-terminated, one more
 *                 NUL at the end).
 *   VIRTUAL_STORAGE_TYPE  the format found and VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT.
 *   PROVIDER_SUBTYPE  2 fixed, 3 dynamic, 4 differencing.
 *   IS_4K_ALIGNED, VHD_PHYSICAL_SECTOR_SIZE, SMALLEST_SAFE_VIRTUAL_SIZE,
 *   FRAGMENTATION  as the format parser computed them.
 *   PHYSICAL_DISK  the disk the image file lives on (not the virtual disk):
 *                 its logical and physical sector sizes from the host block
 *                 device, 512 when the file system has none to ask (tmpfs,
 *                 overlay, network), and IsRemote for network file systems.
 *   IS_LOADED     TRUE while the image is attached: by this handle (a
 *                 NO_LOCAL_HOST attach too), or to the host by any handle
 *                 or process (attach_host.c).
 *   CHANGE_TRACKING_STATE  Enabled FALSE, NewerChanges FALSE, MostRecentId
 *                 "": the engine keeps no resilient change tracking. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* major(), minor(), fstatfs() */
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__)
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#endif

#include "api/attach.h"
#include "base/detail.h"
#include "base/guid.h"
#include "api/handle.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "disk/partition_end.h"

#define VD_INFO_FIXED_SIZE ((ULONG)sizeof(GET_VIRTUAL_DISK_INFO))
#define VD_INFO_UNION_OFFSET offsetof(GET_VIRTUAL_DISK_INFO, Size)
#define VD_INFO_LAST_VERSION GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE
#define VD_HOST_DEFAULT_SECTOR 512u

static const GUID vd_vendor_microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;

/* ---- the disk the image file lives on ---------------------------------- */

typedef struct vd_host_disk {
    ULONG logical_sector_size;
    ULONG physical_sector_size;
    BOOL is_remote;
} vd_host_disk;

#if defined(__linux__)

/* A small decimal number from a sysfs file; 0 if absent or unreadable. */
static ULONG vd_sysfs_number(const char *path)
{
    FILE *stream = fopen(path, "re");
    if (stream == NULL)
        return 0;
    unsigned long value = 0;
    if (fscanf(stream, "%lu", &value) != 1 || value > UINT32_MAX)
        value = 0;
    fclose(stream);
    return (ULONG)value;
}

/* The queue of the block device behind st_dev: a whole disk has it in its
 * own directory, a partition in its parent's. */
static ULONG vd_block_queue_number(dev_t device, const char *attribute)
{
    static const char *const layouts[] = { "/sys/dev/block/%u:%u/queue/%s",
                                           "/sys/dev/block/%u:%u/../queue/%s" };
    char path[96];
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        snprintf(path, sizeof path, layouts[i], major(device), minor(device), attribute);
        ULONG value = vd_sysfs_number(path);
        if (value != 0)
            return value;
    }
    return 0;
}

static int vd_file_system_is_remote(long type)
{
    static const unsigned long remote_types[] = {
        0x6969u,      /* NFS */
        0x517Bu,      /* SMB */
        0xFF534D42u,  /* CIFS */
        0xFE534D42u,  /* SMB2 */
        0x5346414Fu,  /* AFS */
        0x00C36400u,  /* Ceph */
        0x01021997u,  /* 9P */
        0x73757245u,  /* Coda */
        0x564Cu,      /* NCP */
    };
    for (size_t i = 0; i < sizeof remote_types / sizeof remote_types[0]; i++) {
        if ((unsigned long)type == remote_types[i])
            return 1;
    }
    return 0;
}

static void vd_host_disk_describe(const vd_file *file, vd_host_disk *host)
{
    struct stat info;
    if (fstat(file->fd, &info) == 0 && major(info.st_dev) != 0) {
        ULONG logical = vd_block_queue_number(info.st_dev, "logical_block_size");
        ULONG physical = vd_block_queue_number(info.st_dev, "physical_block_size");
        if (logical != 0)
            host->logical_sector_size = logical;
        if (physical != 0)
            host->physical_sector_size = physical;
    }
    struct statfs file_system;
    if (fstatfs(file->fd, &file_system) == 0)
        host->is_remote = vd_file_system_is_remote((long)file_system.f_type) ? TRUE : FALSE;
}

#else

static void vd_host_disk_describe(const vd_file *file, vd_host_disk *host)
{
    (void)file;
    (void)host;
}

#endif

/* ---- fixed-size answers ------------------------------------------------- */

static void vd_fill_size(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    info->Size.VirtualSize = disk->image.virtual_size;
    info->Size.PhysicalSize = disk->image.file.size;
    info->Size.BlockSize = disk->image.block_size;
    info->Size.SectorSize = disk->image.logical_sector_size;
}

static void vd_fill_identifier(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    vd_guid_to_api(&disk->image.identifier, &info->Identifier);
}

static void vd_fill_parent_identifier(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    vd_guid_to_api(&disk->image.parent_identifier, &info->ParentIdentifier);
}

static void vd_fill_parent_timestamp(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    info->ParentTimestamp = disk->image.parent_timestamp;
}

static void vd_fill_storage_type(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    info->VirtualStorageType.DeviceId = disk->image.device;
    info->VirtualStorageType.VendorId = vd_vendor_microsoft;
}

static void vd_fill_provider_subtype(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    info->ProviderSubtype = disk->image.subtype;
}

/* The format's block_layout hook, when it has one, answers from the block
 * table (loading it is a cache fill, hence the cast: the disk's answers do
 * not change).  Otherwise the values the parser set at open stand. */
static uint32_t vd_block_layout(const vd_disk *disk, int *is_4k_aligned, uint32_t *fragmentation)
{
    const vd_format_ops *ops = disk->image.ops;
    *is_4k_aligned = disk->image.is_4k_aligned;
    *fragmentation = disk->image.fragmentation_percent;
    if (ops == NULL || ops->block_layout == NULL)
        return VD_ERROR_SUCCESS;
    return ops->block_layout((vd_image *)&disk->image, is_4k_aligned, fragmentation);
}

/* IS_4K_ALIGNED and FRAGMENTATION: both come from one look at the layout. */
static uint32_t vd_answer_block_layout(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info,
                                       ULONG capacity, ULONG *needed)
{
    int aligned;
    uint32_t fragmentation;
    *needed = VD_INFO_FIXED_SIZE;
    if (capacity < *needed)
        return VD_ERROR_INSUFFICIENT_BUFFER;
    uint32_t status = vd_block_layout(disk, &aligned, &fragmentation);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (info->Version == GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED)
        info->Is4kAligned = aligned ? TRUE : FALSE;
    else
        info->FragmentationPercentage = fragmentation;
    return VD_ERROR_SUCCESS;
}

static void vd_fill_physical_disk(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    vd_host_disk host = { VD_HOST_DEFAULT_SECTOR, VD_HOST_DEFAULT_SECTOR, FALSE };
    vd_host_disk_describe(&disk->image.file, &host);
    info->PhysicalDisk.LogicalSectorSize = host.logical_sector_size;
    info->PhysicalDisk.PhysicalSectorSize = host.physical_sector_size;
    info->PhysicalDisk.IsRemote = host.is_remote;
}

static void vd_fill_physical_sector_size(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    info->VhdPhysicalSectorSize = disk->image.physical_sector_size;
}

static void vd_fill_smallest_safe_size(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    /* Reading the partition table reads content, which the const view of
     * the disk here does not change. */
    info->SmallestSafeVirtualSize = vd_smallest_safe_size((vd_disk *)disk);
}

static void vd_fill_is_loaded(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    int attachment = vd_attachment_of(disk);
    /* A device attach counts while its device is this image's (a permanent
     * one may have been detached by another process). */
    int without_device = attachment != VD_ATTACHMENT_NONE && !vd_attachment_on_host(attachment);
    info->IsLoaded = without_device || vd_attach_host_device(disk, attachment) >= 0 ? TRUE : FALSE;
}

static void vd_fill_virtual_disk_id(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info)
{
    vd_guid_to_api(&disk->image.virtual_disk_id, &info->VirtualDiskId);
}

/* ---- answers that end in strings ---------------------------------------- */

static uint32_t vd_answer_parent_location(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info,
                                          ULONG capacity, ULONG *needed)
{
    vd_parent_location location;
    uint32_t status = vd_parent_location_get(&disk->image, &disk->chain, &location);
    if (status != VD_ERROR_SUCCESS)
        return status;

    const size_t header = offsetof(GET_VIRTUAL_DISK_INFO, ParentLocation.ParentLocationBuffer);
    size_t units[VD_PARENT_CANDIDATES_MAX];
    uint64_t total_units = location.resolved ? 0 : 1;   /* a MULTI_SZ ends in one more NUL */
    for (size_t i = 0; i < location.count; i++) {
        units[i] = vd_utf8_to_utf16(location.paths[i], NULL, 0);
        if (units[i] == 0)
            return VD_ERROR_INVALID_DATA;
        total_units += units[i];
    }
    uint64_t bytes = header + total_units * sizeof(WCHAR);
    if (bytes > UINT32_MAX)
        return VD_ERROR_INVALID_DATA;
    *needed = (ULONG)bytes;
    if (capacity < *needed)
        return VD_ERROR_INSUFFICIENT_BUFFER;

    info->ParentLocation.ParentResolved = location.resolved ? TRUE : FALSE;
    WCHAR *out = info->ParentLocation.ParentLocationBuffer;
    for (size_t i = 0; i < location.count; i++) {
        vd_utf8_to_utf16(location.paths[i], out, units[i]);
        out += units[i];
    }
    if (!location.resolved)
        *out = 0;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_answer_change_tracking(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info,
                                          ULONG capacity, ULONG *needed)
{
    (void)disk;
    *needed = (ULONG)(offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId)
                      + sizeof(WCHAR));
    if (capacity < *needed)
        return VD_ERROR_INSUFFICIENT_BUFFER;
    info->ChangeTrackingState.Enabled = FALSE;
    info->ChangeTrackingState.NewerChanges = FALSE;
    info->ChangeTrackingState.MostRecentId[0] = 0;
    return VD_ERROR_SUCCESS;
}

/* ---- the version table -------------------------------------------------- */

enum {
    VD_FOR_ISO = 1u << VD_DEVICE_ISO,
    VD_FOR_VHD = 1u << VD_DEVICE_VHD,
    VD_FOR_VHDX = 1u << VD_DEVICE_VHDX,
    VD_FOR_DISKS = VD_FOR_VHD | VD_FOR_VHDX,
    VD_FOR_ALL = VD_FOR_ISO | VD_FOR_DISKS,
};

typedef struct vd_info_rule {
    uint8_t devices;            /* VD_FOR_* */
    uint8_t differencing_only;
    /* Exactly one of the two: */
    void (*fill)(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info);
    uint32_t (*answer)(const vd_disk *disk, GET_VIRTUAL_DISK_INFO *info, ULONG capacity,
                       ULONG *needed);
} vd_info_rule;

static const vd_info_rule vd_info_rules[VD_INFO_LAST_VERSION + 1] = {
    [GET_VIRTUAL_DISK_INFO_SIZE] = { VD_FOR_ALL, 0, vd_fill_size, NULL },
    [GET_VIRTUAL_DISK_INFO_IDENTIFIER] = { VD_FOR_DISKS, 0, vd_fill_identifier, NULL },
    [GET_VIRTUAL_DISK_INFO_PARENT_LOCATION] = { VD_FOR_DISKS, 1, NULL, vd_answer_parent_location },
    [GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER] = { VD_FOR_DISKS, 1, vd_fill_parent_identifier, NULL },
    [GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP] = { VD_FOR_VHD, 1, vd_fill_parent_timestamp, NULL },
    [GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE] = { VD_FOR_ALL, 0, vd_fill_storage_type, NULL },
    [GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE] = { VD_FOR_DISKS, 0, vd_fill_provider_subtype, NULL },
    [GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED] = { VD_FOR_DISKS, 0, NULL, vd_answer_block_layout },
    [GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK] = { VD_FOR_ALL, 0, vd_fill_physical_disk, NULL },
    [GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE] = { VD_FOR_DISKS, 0,
                                                         vd_fill_physical_sector_size, NULL },
    [GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE] = { VD_FOR_DISKS, 0,
                                                           vd_fill_smallest_safe_size, NULL },
    [GET_VIRTUAL_DISK_INFO_FRAGMENTATION] = { VD_FOR_DISKS, 0, NULL, vd_answer_block_layout },
    [GET_VIRTUAL_DISK_INFO_IS_LOADED] = { VD_FOR_ALL, 0, vd_fill_is_loaded, NULL },
    [GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID] = { VD_FOR_DISKS, 0, vd_fill_virtual_disk_id, NULL },
    [GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE] = { VD_FOR_DISKS, 0, NULL,
                                                      vd_answer_change_tracking },
};

static int vd_info_rule_applies(const vd_info_rule *rule, const vd_image *image)
{
    if (image->device > VD_DEVICE_VHDX || (rule->devices & (1u << image->device)) == 0)
        return 0;
    return !rule->differencing_only || image->has_parent;
}

static uint32_t vd_info_answer(const vd_disk *disk, ULONG *size, GET_VIRTUAL_DISK_INFO *info,
                               ULONG *size_used)
{
    if (*size < sizeof info->Version) {
        *size = VD_INFO_FIXED_SIZE;
        return VD_ERROR_INSUFFICIENT_BUFFER;
    }
    uint32_t version = (uint32_t)info->Version;
    if (version == GET_VIRTUAL_DISK_INFO_UNSPECIFIED || version > VD_INFO_LAST_VERSION)
        return VD_ERROR_INVALID_PARAMETER;
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_GET_INFO))
        return VD_ERROR_ACCESS_DENIED;
    const vd_info_rule *rule = &vd_info_rules[version];
    if (!vd_info_rule_applies(rule, &disk->image))
        return VD_ERROR_VHD_INVALID_TYPE;

    ULONG needed = VD_INFO_FIXED_SIZE;
    uint32_t status = VD_ERROR_SUCCESS;
    if (rule->answer != NULL) {
        status = rule->answer(disk, info, *size, &needed);
    } else if (*size < needed) {
        status = VD_ERROR_INSUFFICIENT_BUFFER;
    } else {
        memset((uint8_t *)info + VD_INFO_UNION_OFFSET, 0, sizeof *info - VD_INFO_UNION_OFFSET);
        rule->fill(disk, info);
    }
    if (status == VD_ERROR_INSUFFICIENT_BUFFER)
        *size = needed;
    else if (status == VD_ERROR_SUCCESS && size_used != NULL)
        *size_used = needed;
    return status;
}

DWORD WINAPI GetVirtualDiskInformation(HANDLE VirtualDiskHandle, PULONG VirtualDiskInfoSize,
                                       PGET_VIRTUAL_DISK_INFO VirtualDiskInfo, PULONG SizeUsed)
{
    vd_detail_clear();
    if (VirtualDiskInfoSize == NULL || VirtualDiskInfo == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_info_answer(disk, VirtualDiskInfoSize, VirtualDiskInfo, SizeUsed);
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
