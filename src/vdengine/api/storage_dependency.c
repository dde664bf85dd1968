/* GetStorageDependencyInformation: which image files a disk stands on, and
 * which virtual disks a volume holds.
 *
 * The handle is an engine virtual disk handle (OpenVirtualDisk) or a device
 * handle (vd_engine_open_device, api/device_handle.h) to /dev/loopN or to a
 * directory, which stands for the file system that holds it.
 *
 * With GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES, on a disk (an image
 * handle, /dev/loopN of an attached image, or a directory of a file system
 * on such a device): one entry per image of its chain, the image itself
 * first with AncestorLevel 1, its parent 2, and so on.  A loop device bound
 * to another loop device (a partition device) answers for the disk below.
 * A device that is no attached virtual disk depends on none: no entries.
 *
 * Without it, on a volume (a directory, or a device a file system may sit
 * on): the attached virtual disks whose image file lies on that file
 * system, one entry each (AncestorLevel 1).  An image handle answers for
 * its loop device, none when it is not attached to the host.
 *
 * The names of a version 2 entry, on Linux:
 *   DependencyDeviceName        /dev/loopN of the attached disk, "" if none;
 *   HostVolumeName              the mount point of the file system that
 *                               holds the image file, ending in "/", so
 *                               that HostVolumeName + DependentVolumeRelativePath
 *                               is the image's path, as Windows callers
 *                               join them;
 *   DependentVolumeName         the volume that depends on the image: the
 *                               path the device handle names, or the mount
 *                               point of the disk's file system (its device
 *                               when none is mounted), "" for an image
 *                               handle not attached to the host;
 *   DependentVolumeRelativePath the image path below HostVolumeName.
 * The strings follow the entries in the caller's buffer.
 *
 * Buffer: the size covers the 8-byte header, the entries and (version 2)
 * the strings.  Too small gives ERROR_INSUFFICIENT_BUFFER with the size
 * needed in *SizeUsed; a size below the header (the Version cannot be read)
 * gives the same with the header's size.  On success *SizeUsed is the size
 * written.  Argument checks come first (87: flags outside the SDK's, NULL
 * buffer or size 0, a Version other than 1 or 2), then the handle (6).
 * DISK_HANDLE is accepted with either kind of handle: the handle itself
 * says whether it is a disk. */
#define _GNU_SOURCE

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/attach.h"
#include "api/device_handle.h"
#include "api/flag_masks.h"
#include "api/handle.h"
#include "api/storage_type.h"
#include "base/detail.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "disk/chain.h"
#include "host/attach_record.h"
#include "host/loop.h"
#include "host/mount_table.h"

#define VD_DEPENDENCY_HEADER offsetof(STORAGE_DEPENDENCY_INFO, Version1Entries)
#define VD_DEPENDENCY_NAMES 4u
/* Loop devices bound one on another (partition devices) followed at most. */
#define VD_DEPENDENCY_LOOP_HOPS 8

enum { VD_NAME_DEVICE, VD_NAME_HOST_VOLUME, VD_NAME_DEPENDENT_VOLUME, VD_NAME_RELATIVE };

/* One entry, its names in UTF-8 (malloc'd). */
typedef struct vd_dependency {
    uint32_t flags;
    uint32_t device;
    uint32_t level;
    char *names[VD_DEPENDENCY_NAMES];
} vd_dependency;

typedef struct vd_dependency_list {
    vd_dependency *items;
    uint32_t count;
    uint32_t capacity;
    uint32_t status;    /* the first failure while building, SUCCESS otherwise */
} vd_dependency_list;

/* How the disk whose chain is listed is attached. */
typedef struct vd_disk_state {
    int loop_number;              /* -1: not attached to the host */
    int read_only;
    int permanent;
    const char *dependent_volume; /* NULL: the device's mount point or the device */
} vd_disk_state;

static void vd_dependency_list_free(vd_dependency_list *list)
{
    for (uint32_t i = 0; i < list->count; i++) {
        for (uint32_t n = 0; n < VD_DEPENDENCY_NAMES; n++)
            free(list->items[i].names[n]);
    }
    free(list->items);
}

static vd_dependency *vd_dependency_add(vd_dependency_list *list)
{
    if (list->status != VD_ERROR_SUCCESS)
        return NULL;
    if (list->count == list->capacity) {
        uint32_t capacity = list->capacity == 0 ? 4u : list->capacity * 2u;
        vd_dependency *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL) {
            list->status = VD_ERROR_NOT_ENOUGH_MEMORY;
            return NULL;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    vd_dependency *entry = &list->items[list->count++];
    memset(entry, 0, sizeof *entry);
    return entry;
}

static void vd_dependency_name(vd_dependency_list *list, vd_dependency *entry, uint32_t which,
                               const char *text)
{
    entry->names[which] = strdup(text != NULL ? text : "");
    if (entry->names[which] == NULL)
        list->status = VD_ERROR_NOT_ENOUGH_MEMORY;
}

/* The host volume and the relative path of an image file. */
static void vd_dependency_place(vd_dependency_list *list, vd_dependency *entry, const char *path)
{
    char point[VD_ATTACH_RECORD_PATH_MAX];
    if (!vd_mount_point_of(path, point, sizeof point - 1))
        strcpy(point, "/");
    size_t length = strlen(point);
    const char *relative = path + (strcmp(point, "/") == 0 ? 0 : length);
    while (*relative == '/')
        relative++;
    if (point[length - 1] != '/')
        strcat(point, "/");
    vd_dependency_name(list, entry, VD_NAME_HOST_VOLUME, point);
    vd_dependency_name(list, entry, VD_NAME_RELATIVE, relative);
}

/* The volume a disk's state names: the given one, else where the loop's
 * file system is mounted, else the loop device. */
static void vd_dependency_volume(vd_dependency_list *list, vd_dependency *entry,
                                 const vd_disk_state *state)
{
    char device[32] = "";
    if (state->loop_number >= 0)
        snprintf(device, sizeof device, "/dev/loop%d", state->loop_number);
    vd_dependency_name(list, entry, VD_NAME_DEVICE, device);
    if (state->dependent_volume != NULL) {
        vd_dependency_name(list, entry, VD_NAME_DEPENDENT_VOLUME, state->dependent_volume);
        return;
    }
    char point[VD_ATTACH_RECORD_PATH_MAX];
    struct stat status;
    if (state->loop_number >= 0 && stat(device, &status) == 0
        && vd_mount_point_of_device((uint64_t)status.st_rdev, point, sizeof point))
        vd_dependency_name(list, entry, VD_NAME_DEPENDENT_VOLUME, point);
    else
        vd_dependency_name(list, entry, VD_NAME_DEPENDENT_VOLUME, device);
}

static uint32_t vd_dependency_image_flags(const vd_image *image)
{
    int fixed = image->device == VD_DEVICE_ISO || image->subtype == VD_SUBTYPE_FIXED;
    return fixed ? DEPENDENT_DISK_FLAG_FULLY_ALLOCATED : 0u;
}

/* One entry for `image` at `level`, with `flags` and those of its kind. */
static void vd_dependency_add_image(vd_dependency_list *list, const vd_image *image,
                                    uint32_t level, uint32_t flags, const vd_disk_state *state)
{
    vd_dependency *entry = vd_dependency_add(list);
    if (entry == NULL)
        return;
    entry->level = level;
    entry->device = image->device;
    entry->flags = flags | vd_dependency_image_flags(image);
    vd_dependency_volume(list, entry, state);
    vd_dependency_place(list, entry, image->file.path);
}

/* One entry per image: `leaf`, then its ancestors in `chain` (may be
 * empty: opened without parents). */
static void vd_dependencies_of_chain(vd_dependency_list *list, const vd_image *leaf,
                                     const vd_chain *chain, const vd_disk_state *state)
{
    uint32_t images = 1u + chain->count;
    uint32_t common = (images > 1u || leaf->has_parent ? DEPENDENT_DISK_FLAG_MULT_BACKING_FILES : 0u)
                      | (state->loop_number < 0 ? DEPENDENT_DISK_FLAG_NO_HOST_DISK : 0u)
                      | (state->permanent ? DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME : 0u);
    for (uint32_t level = 1; level <= images; level++) {
        const vd_image *image = level == 1 ? leaf : &chain->images[level - 2];
        uint32_t flags = common;
        if (level > 1)
            flags |= DEPENDENT_DISK_FLAG_PARENT | DEPENDENT_DISK_FLAG_READ_ONLY;
        else if (state->read_only)
            flags |= DEPENDENT_DISK_FLAG_READ_ONLY;
        vd_dependency_add_image(list, image, level, flags, state);
    }
}

/* The image a record names, parsed from a descriptor of its own that takes
 * no sharing lock: the attach that serves it may hold it for writing. */
static uint32_t vd_dependency_open_record_image(const vd_attach_record *record, vd_image *image)
{
    vd_file file;
    uint32_t status = vd_file_open_unshared_read(&file, record->image_path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    struct stat opened;
    if (fstat(file.fd, &opened) != 0 || (uint64_t)opened.st_dev != record->device
        || (uint64_t)opened.st_ino != record->inode) {
        vd_file_close(&file);
        return vd_fail(VD_ERROR_FILE_NOT_FOUND, "%s is no longer the attached image",
                       record->image_path);
    }
    status = vd_storage_open_image(&file, VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, 0, image);
    if (status != VD_ERROR_SUCCESS)
        vd_file_close(&file);
    return status;
}

typedef struct vd_record_by_loop {
    int loop_number;
    vd_attach_record *found;
} vd_record_by_loop;

static int vd_record_has_loop(const vd_attach_record *record, void *context)
{
    vd_record_by_loop *query = context;
    if (record->loop_number != query->loop_number)
        return 0;
    *query->found = *record;
    return 1;
}

/* The record of the attach behind /dev/loopN, following loops bound to
 * another loop device; 0 when no attach is there. */
static int vd_record_of_loop(int loop_number, vd_attach_record *found)
{
    char backing[VD_ATTACH_RECORD_PATH_MAX];
    for (int hop = 0; hop < VD_DEPENDENCY_LOOP_HOPS && loop_number >= 0; hop++) {
        vd_record_by_loop query = { loop_number, found };
        if (vd_attach_records_walk(0, vd_record_has_loop, &query))
            return 1;
        int below;
        char tail;
        if (!vd_loop_backing(loop_number, backing, sizeof backing)
            || sscanf(backing, "/dev/loop%d%c", &below, &tail) != 1)
            return 0;
        loop_number = below;
    }
    return 0;
}

/* HOST_VOLUMES on a device handle: the chain of the attached disk. */
static void vd_dependencies_of_device(vd_dependency_list *list, const vd_device_target *target)
{
    vd_attach_record *record = malloc(sizeof *record);
    if (record == NULL) {
        list->status = VD_ERROR_NOT_ENOUGH_MEMORY;
        return;
    }
    if (!vd_record_of_loop(target->loop_number, record)) {
        free(record);
        return;
    }
    vd_image image;
    memset(&image, 0, sizeof image);
    vd_chain chain;
    memset(&chain, 0, sizeof chain);
    uint32_t status = vd_dependency_open_record_image(record, &image);
    if (status == VD_ERROR_SUCCESS && image.has_parent)
        status = vd_chain_open(&image, 1u, &chain);
    if (status == VD_ERROR_SUCCESS) {
        vd_disk_state state = { record->loop_number, record->read_only, record->permanent,
                                target->path };
        vd_dependencies_of_chain(list, &image, &chain, &state);
    } else {
        list->status = status;
    }
    vd_chain_close(&chain);
    vd_image_release(&image);
    free(record);
}

typedef struct vd_hosted_query {
    uint64_t device;
    vd_dependency_list *list;
} vd_hosted_query;

/* One attached disk whose image lies on the volume asked about. */
static int vd_hosted_add(const vd_attach_record *record, void *context)
{
    vd_hosted_query *query = context;
    if (record->device != query->device)
        return 0;
    vd_image image;
    memset(&image, 0, sizeof image);
    if (vd_dependency_open_record_image(record, &image) != VD_ERROR_SUCCESS)
        return 0;   /* gone or replaced since the walk read it */
    vd_disk_state state = { record->loop_number, record->read_only, record->permanent, NULL };
    uint32_t flags = (image.has_parent ? DEPENDENT_DISK_FLAG_MULT_BACKING_FILES : 0u)
                     | (record->read_only ? DEPENDENT_DISK_FLAG_READ_ONLY : 0u)
                     | (record->permanent ? DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME : 0u);
    vd_dependency_add_image(query->list, &image, 1u, flags, &state);
    vd_image_release(&image);
    return query->list->status != VD_ERROR_SUCCESS;
}

static void vd_dependencies_hosted_on(vd_dependency_list *list, uint64_t device)
{
    vd_hosted_query query = { device, list };
    (void)vd_attach_records_walk(0, vd_hosted_add, &query);
}

/* HOST_VOLUMES on an image handle: its own chain, as opened. */
static void vd_dependencies_of_disk(vd_dependency_list *list, vd_disk *disk)
{
    int attachment = vd_attachment_of(disk);
    vd_disk_state state = { vd_attach_host_device(disk, attachment), 0, 0, NULL };
    vd_attach_record record;
    struct stat status;
    if (state.loop_number >= 0 && fstat(disk->image.file.fd, &status) == 0
        && vd_attach_record_find(0, (uint64_t)status.st_dev, (uint64_t)status.st_ino, &record)) {
        state.read_only = record.read_only;
        state.permanent = record.permanent;
    } else {
        state.read_only = vd_attachment_read_only(attachment) || disk->read_only;
    }
    vd_dependencies_of_chain(list, &disk->image, &disk->chain, &state);
}

/* The block device of the loop an image handle is attached as; 0: none. */
static uint64_t vd_disk_loop_device(vd_disk *disk)
{
    int number = vd_attach_host_device(disk, vd_attachment_of(disk));
    char device[32];
    struct stat status;
    snprintf(device, sizeof device, "/dev/loop%d", number);
    if (number < 0 || stat(device, &status) != 0)
        return 0;
    return (uint64_t)status.st_rdev;
}

static void vd_dependencies_collect(vd_dependency_list *list, vd_disk *disk, int host_volumes)
{
    const vd_device_target *target = disk->device_target;
    if (host_volumes) {
        if (target == NULL)
            vd_dependencies_of_disk(list, disk);
        else
            vd_dependencies_of_device(list, target);
        return;
    }
    uint64_t device = target != NULL ? target->device : vd_disk_loop_device(disk);
    if (device != 0)
        vd_dependencies_hosted_on(list, device);
}

/* Bytes the answer needs, or 0 when it exceeds a ULONG. */
static uint64_t vd_dependency_size(const vd_dependency_list *list, uint32_t version)
{
    uint64_t entry = version == STORAGE_DEPENDENCY_INFO_VERSION_1
                         ? sizeof(STORAGE_DEPENDENCY_INFO_TYPE_1)
                         : sizeof(STORAGE_DEPENDENCY_INFO_TYPE_2);
    uint64_t size = VD_DEPENDENCY_HEADER + (uint64_t)list->count * entry;
    if (version == STORAGE_DEPENDENCY_INFO_VERSION_2) {
        for (uint32_t i = 0; i < list->count; i++) {
            for (uint32_t n = 0; n < VD_DEPENDENCY_NAMES; n++)
                size += vd_utf8_to_utf16(list->items[i].names[n], NULL, 0) * sizeof(WCHAR);
        }
    }
    return size > 0xFFFFFFFFu ? 0 : size;
}

/* Writes the answer, which fits, into the caller's buffer. */
static void vd_dependency_write(const vd_dependency_list *list, STORAGE_DEPENDENCY_INFO *info,
                                uint64_t size)
{
    static const GUID microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;
    uint32_t version = (uint32_t)info->Version;
    info->NumberEntries = list->count;
    WCHAR *strings = (WCHAR *)(void *)&info->Version2Entries[list->count];
    WCHAR *end = (WCHAR *)(void *)((unsigned char *)info + size);
    for (uint32_t i = 0; i < list->count; i++) {
        const vd_dependency *item = &list->items[i];
        VIRTUAL_STORAGE_TYPE type = { item->device, microsoft };
        if (version == STORAGE_DEPENDENCY_INFO_VERSION_1) {
            STORAGE_DEPENDENCY_INFO_TYPE_1 *entry = &info->Version1Entries[i];
            entry->DependencyTypeFlags = (DEPENDENT_DISK_FLAG)item->flags;
            entry->ProviderSpecificFlags = 0;
            entry->VirtualStorageType = type;
            continue;
        }
        STORAGE_DEPENDENCY_INFO_TYPE_2 *entry = &info->Version2Entries[i];
        entry->DependencyTypeFlags = (DEPENDENT_DISK_FLAG)item->flags;
        entry->ProviderSpecificFlags = 0;
        entry->VirtualStorageType = type;
        entry->AncestorLevel = item->level;
        PWSTR *fields[VD_DEPENDENCY_NAMES] = {
            &entry->DependencyDeviceName, &entry->HostVolumeName, &entry->DependentVolumeName,
            &entry->DependentVolumeRelativePath
        };
        for (uint32_t n = 0; n < VD_DEPENDENCY_NAMES; n++) {
            size_t units = vd_utf8_to_utf16(item->names[n], strings, (size_t)(end - strings));
            *fields[n] = strings;
            strings += units;
        }
    }
}

DWORD WINAPI GetStorageDependencyInformation(HANDLE ObjectHandle, GET_STORAGE_DEPENDENCY_FLAG Flags,
                                             ULONG StorageDependencyInfoSize,
                                             PSTORAGE_DEPENDENCY_INFO StorageDependencyInfo,
                                             PULONG SizeUsed)
{
    vd_detail_clear();
    if (((uint32_t)Flags & ~(uint32_t)VD_DEPENDENCY_FLAGS_KNOWN) != 0
        || StorageDependencyInfo == NULL || StorageDependencyInfoSize == 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (StorageDependencyInfoSize < VD_DEPENDENCY_HEADER) {
        if (SizeUsed != NULL)
            *SizeUsed = (ULONG)VD_DEPENDENCY_HEADER;
        return VD_ERROR_INSUFFICIENT_BUFFER;
    }
    uint32_t version = (uint32_t)StorageDependencyInfo->Version;
    if (version != STORAGE_DEPENDENCY_INFO_VERSION_1 && version != STORAGE_DEPENDENCY_INFO_VERSION_2)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire_any(ObjectHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    vd_dependency_list list = { NULL, 0, 0, VD_ERROR_SUCCESS };
    int host_volumes = ((uint32_t)Flags & GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES) != 0;
    if (disk->device_target == NULL)
        pthread_mutex_lock(&disk->lock);
    vd_dependencies_collect(&list, disk, host_volumes);
    if (disk->device_target == NULL)
        pthread_mutex_unlock(&disk->lock);
    vd_handle_release(ObjectHandle);

    uint32_t status = list.status;
    uint64_t size = status == VD_ERROR_SUCCESS ? vd_dependency_size(&list, version) : 0;
    if (status == VD_ERROR_SUCCESS && size == 0)
        status = vd_fail(VD_ERROR_INSUFFICIENT_BUFFER, "the answer exceeds 4 GiB");
    if (status == VD_ERROR_SUCCESS) {
        if (SizeUsed != NULL)
            *SizeUsed = (ULONG)size;
        if (size > StorageDependencyInfoSize)
            status = VD_ERROR_INSUFFICIENT_BUFFER;
        else
            vd_dependency_write(&list, StorageDependencyInfo, size);
    }
    vd_dependency_list_free(&list);
    return status;
}
