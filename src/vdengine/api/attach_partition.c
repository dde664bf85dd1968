/* Partition devices: one partition of a disk attached to the host, as a
 * loop device of its own.  Windows gives each partition of an attached
 * disk a device and a volume; Linux would make /dev/loopNpM from the
 * table, but only where the kernel parses partition tables, which not
 * every kernel does (LO_FLAGS_PARTSCAN then makes nothing).  So the engine
 * reads the table itself (disk/partition_table.c) from the disk's device,
 * which is what the host sees now, and binds a loop to /dev/loopN with the
 * partition's offset and size limit: the same bytes a kernel partition
 * device would show, whatever serves the disk below (a loop straight on
 * the image, or on a FUSE export).
 *
 * A partition device lives as long as the attach.  For a handle-bound
 * attach it is set up with autoclear and the handle keeps a descriptor of
 * it, so it goes when the handle closes or the process dies; for a
 * permanent attach it outlives the process, as the disk does.  A detach
 * of the disk first unbinds every loop bound to its device: a partition
 * with a mounted file system makes the detach answer SHARING_VIOLATION,
 * as the disk's own mount does, and the disk stays attached.
 *
 * The codes: number 0 or no output: INVALID_PARAMETER; a disk this handle
 * has not attached to the host (no permanent attach of its image either):
 * NOT_READY; an attach bound to another handle: SHARING_VIOLATION (the
 * partition's life would belong to a handle that does not hold the disk);
 * no table or no such partition: NOT_FOUND; no CAP_SYS_ADMIN:
 * PRIVILEGE_NOT_HELD. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/attach.h"
#include "api/attach_partition.h"
#include "api/handle.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/partition_table.h"
#include "host/attach_record.h"
#include "host/io.h"
#include "host/loop.h"
#include "vdengine.h"

/* GPT's usual table holds 128 entries: that many partitions at most. */
#define VD_PARTITION_DEVICES_MAX 128

/* The disk's device as a vd_file without sharing lock or path: only read. */
static uint32_t vd_device_read(void *context, uint64_t offset, void *buffer, uint64_t length)
{
    return vd_file_read(context, offset, buffer, (size_t)length);
}

/* The byte range of partition `number` of the disk /dev/loopN, as the
 * device shows it. */
static uint32_t vd_partition_range(const char *device, uint32_t sector_size, uint32_t number,
                                   uint64_t *offset, uint64_t *length)
{
    int fd = open(device, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vd_error_from_errno(errno);
    off_t size = lseek(fd, 0, SEEK_END);
    uint32_t status = VD_ERROR_NOT_READY;
    if (size > 0) {
        vd_file file = { .fd = fd, .writable = 0, .size = (uint64_t)size, .path = NULL };
        vd_partition_source source = { vd_device_read, &file, sector_size, (uint64_t)size };
        status = vd_partition_by_number(&source, number, offset, length);
    }
    close(fd);
    return status;
}

/* How the disk is attached: its device, whether the attach is permanent
 * and read-only; NOT_READY or SHARING_VIOLATION when this handle may not
 * give it partition devices. */
static uint32_t vd_partition_base(vd_disk *disk, int *base, int *permanent, int *read_only)
{
    int attachment = vd_attachment_of(disk);
    struct stat image;
    vd_attach_record record;
    int recorded = fstat(disk->image.file.fd, &image) == 0
                   && vd_attach_record_find(0, (uint64_t)image.st_dev, (uint64_t)image.st_ino,
                                            &record);
    if (vd_attachment_on_host(attachment)) {
        *base = disk->loop_number;
        *permanent = disk->loop_fd < 0;
        *read_only = vd_attachment_read_only(attachment);
        return VD_ERROR_SUCCESS;
    }
    if (!recorded)
        return vd_fail(VD_ERROR_NOT_READY, "the disk is not attached to the host");
    if (!record.permanent)
        return vd_fail(VD_ERROR_SHARING_VIOLATION,
                       "/dev/loop%d belongs to a handle of process %ld: partition devices are "
                       "made through the handle that attached it", record.loop_number,
                       record.pid);
    *base = record.loop_number;
    *permanent = 1;
    *read_only = record.read_only;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_partition_attach_locked(vd_disk *disk, uint32_t number, int *made)
{
    int base, permanent, read_only;
    uint32_t status = vd_partition_base(disk, &base, &permanent, &read_only);
    if (status != VD_ERROR_SUCCESS)
        return status;
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", base);
    uint32_t sector = disk->image.logical_sector_size;
    uint64_t offset, length;
    status = vd_partition_range(device, sector, number, &offset, &length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!permanent) {
        if (disk->partition_count >= VD_PARTITION_DEVICES_MAX)
            return vd_fail(VD_ERROR_TOO_MANY_OPEN_FILES, "%d partition devices at most",
                           VD_PARTITION_DEVICES_MAX);
        int *grown = realloc(disk->partition_fds, (disk->partition_count + 1) * sizeof *grown);
        if (grown == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        disk->partition_fds = grown;
    }
    vd_loop_request request = {
        .backing_path = device,
        .offset = offset,
        .size_limit = length,
        .block_size = sector,
        .read_only = read_only,
        .autoclear = !permanent,
        .name = device,
    };
    int fd = -1;
    status = vd_loop_attach(&request, made, &fd);
    if (status == VD_ERROR_PRIVILEGE_NOT_HELD)
        return vd_fail(status, "setting up a loop device needs CAP_SYS_ADMIN (run as root)");
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (permanent)
        close(fd);
    else
        disk->partition_fds[disk->partition_count++] = fd;
    return VD_ERROR_SUCCESS;
}

DWORD vd_engine_attach_partition(HANDLE VirtualDiskHandle, ULONG PartitionNumber,
                                 ULONG *DeviceNumber)
{
    vd_detail_clear();
    if (PartitionNumber == 0 || DeviceNumber == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    int made = -1;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_partition_attach_locked(disk, PartitionNumber, &made);
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    if (status == VD_ERROR_SUCCESS)
        *DeviceNumber = (ULONG)made;
    return status;
}

uint32_t vd_partition_devices_detach(vd_disk *disk, int base)
{
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", base);
    int numbers[VD_PARTITION_DEVICES_MAX];
    int count = vd_loop_bound_to(device, numbers, VD_PARTITION_DEVICES_MAX);
    uint32_t status = VD_ERROR_SUCCESS;
    for (int i = 0; i < count; i++) {
        uint32_t unbound = vd_loop_detach(numbers[i]);
        if (unbound == VD_ERROR_SHARING_VIOLATION && status == VD_ERROR_SUCCESS)
            status = vd_fail(unbound, "partition device /dev/loop%d of %s is in use (a file "
                                      "system is mounted on it)", numbers[i], device);
        else if (unbound != VD_ERROR_SUCCESS && unbound != VD_ERROR_NOT_READY
                 && status == VD_ERROR_SUCCESS)
            status = unbound;
    }
    /* The unbinds waited for these last openers: closing them completes
     * them (a mounted one goes at its last umount, by autoclear). */
    if (disk != NULL) {
        for (uint32_t i = 0; i < disk->partition_count; i++)
            close(disk->partition_fds[i]);
        disk->partition_count = 0;
    }
    return status;
}
