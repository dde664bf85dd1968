/* Attaches the host sees: a loop block device (/dev/loopN) on the image,
 * the Linux counterpart of the \\.\PhysicalDriveN Windows makes.
 *
 * Exposure.  Where the disk's content is one run of the image file's bytes
 * (ISO, fixed VHD, fixed VHDX with its blocks in order: the driver's
 * direct_extent), the loop maps it straight onto the file with an offset
 * and a size limit, direct I/O (no second copy in the page cache) and the
 * image's logical sector size; the engine is then out of the data path.
 * Every other image goes to vd_attach_export (attach_export.h).
 *
 * Lifetime.  Without PERMANENT_LIFETIME the loop is set up with autoclear
 * and the handle keeps a descriptor of it: closing the handle (or the
 * process dying) lets the kernel unbind it once nothing else holds it, as a
 * mount may.  With PERMANENT_LIFETIME there is no autoclear and nothing to
 * hold: the loop device itself is the attach, until a DetachVirtualDisk
 * from any handle of the image, in any process, or a reboot.  Both kinds
 * are recorded in /run/virtdisk/ (host/attach_record.h), which is how other
 * processes find them.
 *
 * Codes.  AT_BOOT: NOT_SUPPORTED.  RESTRICTED_RANGE without version 2
 * parameters, or with a range that is empty, not in whole sectors or past
 * the end, or together with SINGLE_PARTITION: INVALID_PARAMETER.
 * SINGLE_PARTITION on a disk without exactly one data partition: NOT_FOUND
 * (disk/partition_table.h).  No CAP_SYS_ADMIN:
 * PRIVILEGE_NOT_HELD (1314), Windows' answer without
 * SE_MANAGE_VOLUME_PRIVILEGE.  An image attached already, here or by any
 * process (or bound to a loop device by other means): SHARING_VIOLATION.
 * Detaching while a file system is mounted on the device: SHARING_VIOLATION
 * (the in-use refusal), and the disk stays attached. */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/attach.h"
#include "api/attach_export.h"
#include "api/attach_partition.h"
#include "api/attach_redirect.h"
#include "api/attach_server.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/partition_table.h"
#include "host/attach_record.h"
#include "host/loop.h"

/* Bytes [*start, *start + *length) of the disk the device shows. */
static uint32_t vd_attach_range(vd_disk *disk, uint32_t flags,
                                const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters,
                                uint64_t *start, uint64_t *length)
{
    uint64_t size = disk->image.virtual_size;
    *start = 0;
    *length = size;
    uint32_t restrict_flags = flags & (ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE
                                       | ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION);
    if (restrict_flags == ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION)
        return vd_single_data_partition(disk, start, length);
    if (restrict_flags != ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE)
        return restrict_flags == 0
                   ? VD_ERROR_SUCCESS
                   : vd_fail(VD_ERROR_INVALID_PARAMETER,
                             "RESTRICTED_RANGE and SINGLE_PARTITION each choose the range");
    if (parameters == NULL || (uint32_t)parameters->Version != ATTACH_VIRTUAL_DISK_VERSION_2)
        return vd_fail(VD_ERROR_INVALID_PARAMETER,
                       "RESTRICTED_RANGE takes its range from version 2 parameters");
    uint64_t offset = parameters->Version2.RestrictedOffset;
    uint64_t bytes = parameters->Version2.RestrictedLength;
    uint32_t sector = disk->image.logical_sector_size;
    if (bytes == 0 || offset % sector != 0 || bytes % sector != 0 || offset > size
        || bytes > size - offset)
        return vd_fail(VD_ERROR_INVALID_PARAMETER,
                       "the restricted range must be whole %u-byte sectors inside the disk's "
                       "%llu bytes, and not empty",
                       sector, (unsigned long long)size);
    *start = offset;
    *length = bytes;
    return VD_ERROR_SUCCESS;
}

/* The path of the image open as `fd` as the kernel names the open file
 * (what the loop's backing_file will say). */
static uint32_t vd_attach_image_path(int fd, char *path, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, size - 1);
    if (length < 0 || (size_t)length >= size - 1)
        return vd_fail(VD_ERROR_FILENAME_EXCED_RANGE, "cannot name the image file for its device");
    path[length] = '\0';
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_attach_flags_supported(uint32_t flags)
{
    if (flags & ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT)
        return vd_fail(VD_ERROR_NOT_SUPPORTED,
                       "AT_BOOT: the engine does not attach disks when the host boots");
    if (flags & ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST)
        return vd_fail(VD_ERROR_NOT_SUPPORTED,
                       "NO_LOCAL_HOST with PERMANENT_LIFETIME, RESTRICTED_RANGE or "
                       "SINGLE_PARTITION needs a server process outside the caller's");
    return VD_ERROR_SUCCESS;
}

/* SHARING_VIOLATION for an image `record` says is attached, naming its
 * device and what holds it. */
static uint32_t vd_attach_refuse_recorded(const vd_attach_record *record)
{
    if (!record->permanent)
        return vd_fail(VD_ERROR_SHARING_VIOLATION,
                       "the image is attached already, as /dev/loop%d, by a handle of process %ld",
                       record->loop_number, record->pid);
    if (record->server_pid > 0)
        return vd_fail(VD_ERROR_SHARING_VIOLATION,
                       "the image is attached already, as /dev/loop%d, with permanent lifetime "
                       "(served by process %ld)", record->loop_number, record->server_pid);
    return vd_fail(VD_ERROR_SHARING_VIOLATION,
                   "the image is attached already, as /dev/loop%d, with permanent lifetime",
                   record->loop_number);
}

/* Refuses an image some process has attached, or a loop device holds. */
static uint32_t vd_attach_check_free(const struct stat *image, const char *path)
{
    vd_attach_record record;
    if (vd_attach_record_find(1, (uint64_t)image->st_dev, (uint64_t)image->st_ino, &record))
        return vd_attach_refuse_recorded(&record);
    int bound = vd_loop_find(path);
    if (bound >= 0)
        return vd_fail(VD_ERROR_SHARING_VIOLATION,
                       "the image is bound to /dev/loop%d already (set up outside the engine)",
                       bound);
    return VD_ERROR_SUCCESS;
}

/* The live record of the disk's image file, read without pruning (no
 * lock needed); 0 when there is none. */
static int vd_attach_record_of(const vd_disk *disk, vd_attach_record *record)
{
    struct stat image;
    return fstat(disk->image.file.fd, &image) == 0
           && vd_attach_record_find(0, (uint64_t)image.st_dev, (uint64_t)image.st_ino, record);
}

uint32_t vd_attach_check_unrecorded(const vd_disk *disk)
{
    vd_attach_record record;
    return vd_attach_record_of(disk, &record) ? vd_attach_refuse_recorded(&record)
                                              : VD_ERROR_SUCCESS;
}

/* Binds the device: straight onto the file, or through the export. */
static uint32_t vd_attach_bind(vd_disk *disk, const vd_attach_view *view,
                               vd_attach_binding *binding)
{
    const vd_format_driver *driver = vd_image_driver(&disk->image);
    int contiguous = 0;
    uint64_t payload = 0;
    if (driver != NULL && driver->direct_extent != NULL) {
        uint32_t status = driver->direct_extent(&disk->image, !view->read_only, &contiguous,
                                                &payload);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    if (!contiguous)
        return vd_attach_export(disk, view, binding);
    /* The loop opens the very file the handle has open, whatever has
     * happened to its name since. */
    char backing[64];
    snprintf(backing, sizeof backing, "/proc/self/fd/%d", disk->image.file.fd);
    vd_loop_request request = {
        .backing_path = backing,
        .offset = payload + view->offset,
        .size_limit = view->length,
        .block_size = view->block_size,
        .read_only = view->read_only,
        .autoclear = !view->permanent,
        .name = view->image_path,
    };
    uint32_t status = vd_loop_attach(&request, &binding->number, &binding->device_fd);
    if (status == VD_ERROR_PRIVILEGE_NOT_HELD)
        return vd_fail(status, "setting up a loop device needs CAP_SYS_ADMIN (run as root)");
    return status;
}

static uint32_t vd_attach_host_locked(vd_disk *disk, const vd_attach_view *view,
                                      const struct stat *image)
{
    uint32_t status = vd_attach_check_free(image, view->image_path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_attach_binding binding = { .number = -1, .device_fd = -1 };
    status = vd_attach_bind(disk, view, &binding);
    if (status != VD_ERROR_SUCCESS)
        return status;
    int number = binding.number, device_fd = binding.device_fd;
    vd_attach_record record = {
        .loop_number = number,
        .permanent = view->permanent,
        .read_only = view->read_only,
        .pid = view->permanent ? 0 : (long)getpid(),
        .device = (uint64_t)image->st_dev,
        .inode = (uint64_t)image->st_ino,
    };
    snprintf(record.image_path, sizeof record.image_path, "%s", view->image_path);
    memcpy(record.backing_path, binding.backing_path, sizeof record.backing_path);
    record.server_pid = binding.server_pid;
    /* A server holds the image now: the handle's content goes through the
     * device from here on (attach_redirect.h). */
    if (binding.server_pid > 0)
        status = vd_redirect_begin(disk, view, &binding);
    if (status == VD_ERROR_SUCCESS)
        status = vd_attach_record_write(&record);
    if (status != VD_ERROR_SUCCESS) {
        /* Unrecorded, the attach could never be found again: undo it. */
        vd_redirect_end(disk);
        (void)vd_loop_detach(number);
        if (device_fd >= 0)
            close(device_fd);
        vd_attach_export_release(disk);
        if (binding.server_pid > 0)
            vd_attach_server_end(binding.server_pid);
        return status;
    }
    disk->loop_number = number;
    if (view->permanent && device_fd >= 0) {
        close(device_fd);
        device_fd = -1;
    }
    disk->loop_fd = device_fd;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_attach_on_host(vd_disk *disk, uint32_t flags,
                           const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters, int *kind)
{
#ifndef __linux__
    (void)disk, (void)flags, (void)parameters, (void)kind;
    return vd_fail(VD_ERROR_NOT_SUPPORTED, "attaching a disk to the host needs Linux loop devices");
#endif
    uint32_t status = vd_attach_flags_supported(flags);
    uint64_t start = 0, length = 0;
    if (status == VD_ERROR_SUCCESS)
        status = vd_attach_range(disk, flags, parameters, &start, &length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!vd_loop_privileged())
        return vd_fail(VD_ERROR_PRIVILEGE_NOT_HELD,
                       "attaching a disk to the host sets up a loop device, which needs "
                       "CAP_SYS_ADMIN (run as root); a NO_LOCAL_HOST attach needs no privilege");
    char path[VD_ATTACH_RECORD_PATH_MAX];
    status = vd_attach_image_path(disk->image.file.fd, path, sizeof path);
    struct stat image;
    if (status == VD_ERROR_SUCCESS && fstat(disk->image.file.fd, &image) != 0)
        status = vd_fail(VD_ERROR_GEN_FAILURE, "cannot stat the image file");
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_attach_view view = {
        .offset = start,
        .length = length,
        .block_size = disk->image.logical_sector_size,
        .read_only = (flags & ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY) != 0,
        .permanent = (flags & ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME) != 0,
        .image_path = path,
    };
    int lock = vd_attach_records_lock(&status);
    if (lock < 0)
        return status;
    status = vd_attach_host_locked(disk, &view, &image);
    vd_attach_records_unlock(lock);
    if (status == VD_ERROR_SUCCESS)
        *kind = view.read_only ? VD_ATTACHMENT_LOOP_READ_ONLY : VD_ATTACHMENT_LOOP_READ_WRITE;
    return status;
}

/* Unbinds /dev/loopN and forgets its record, under the lock.  A device
 * something else unbound already counts as detached. */
static uint32_t vd_detach_loop_locked(int number)
{
    uint32_t status = vd_loop_detach(number);
    if (status == VD_ERROR_SHARING_VIOLATION)
        return vd_fail(status, "/dev/loop%d is in use (a file system is mounted on it, or a "
                               "program holds it exclusively)", number);
    if (status == VD_ERROR_PRIVILEGE_NOT_HELD)
        return vd_fail(status, "detaching a loop device needs CAP_SYS_ADMIN (run as root)");
    if (status != VD_ERROR_SUCCESS && status != VD_ERROR_NOT_READY)
        return status;
    vd_attach_record_remove(number);
    return VD_ERROR_SUCCESS;
}

static int vd_record_of_loop(const vd_attach_record *record, void *context)
{
    vd_attach_record *wanted = context;
    if (record->loop_number != wanted->loop_number)
        return 0;
    *wanted = *record;
    return 1;
}

uint32_t vd_detach_on_host(vd_disk *disk)
{
    uint32_t status;
    int lock = vd_attach_records_lock(&status);
    if (lock < 0)
        return status;
    status = vd_partition_devices_detach(disk, disk->loop_number);
    if (status != VD_ERROR_SUCCESS) {
        vd_attach_records_unlock(lock);
        return status;
    }
    /* A permanent export's server, which ends once the loop is unbound. */
    vd_attach_record record = { .loop_number = disk->loop_number };
    long server = vd_attach_records_walk(0, vd_record_of_loop, &record) ? record.server_pid : 0;
    status = vd_detach_loop_locked(disk->loop_number);
    vd_attach_records_unlock(lock);
    if (status == VD_ERROR_SUCCESS && server > 0) {
        vd_redirect_detached(disk);
        vd_attach_server_end(server);
    }
    if (status == VD_ERROR_SUCCESS && disk->loop_fd >= 0) {
        /* The unbind waited for this last opener: closing it completes it. */
        close(disk->loop_fd);
        disk->loop_fd = -1;
        vd_attach_export_release(disk);
    }
    return status;
}

uint32_t vd_attach_host_retarget(vd_disk *disk, int image_fd)
{
    if (!vd_attachment_on_host(vd_attachment_of(disk)) || disk->loop_fd < 0)
        return VD_ERROR_SUCCESS;
    char path[VD_ATTACH_RECORD_PATH_MAX];
    uint32_t status = vd_attach_image_path(image_fd, path, sizeof path);
    struct stat image;
    if (status == VD_ERROR_SUCCESS && fstat(image_fd, &image) != 0)
        status = vd_fail(VD_ERROR_GEN_FAILURE, "cannot stat the image file");
    if (status != VD_ERROR_SUCCESS)
        return status;
    int lock = vd_attach_records_lock(&status);
    if (lock < 0)
        return status;
    vd_attach_record record = { .loop_number = disk->loop_number };
    if (vd_attach_records_walk(0, vd_record_of_loop, &record)) {
        record.device = (uint64_t)image.st_dev;
        record.inode = (uint64_t)image.st_ino;
        snprintf(record.image_path, sizeof record.image_path, "%s", path);
        status = vd_attach_record_write(&record);
    }
    vd_attach_records_unlock(lock);
    return status;
}

uint32_t vd_detach_elsewhere(vd_disk *disk)
{
    struct stat image;
    if (fstat(disk->image.file.fd, &image) != 0)
        return VD_ERROR_NOT_READY;
    uint32_t status;
    int lock = vd_attach_records_lock(&status);
    if (lock < 0)
        return status;
    vd_attach_record record;
    if (!vd_attach_record_find(1, (uint64_t)image.st_dev, (uint64_t)image.st_ino, &record))
        status = VD_ERROR_NOT_READY;
    else if (!record.permanent)
        status = vd_fail(VD_ERROR_SHARING_VIOLATION,
                         "/dev/loop%d belongs to a handle of process %ld, which detaches it "
                         "when it closes the handle", record.loop_number, record.pid);
    else if ((status = vd_partition_devices_detach(NULL, record.loop_number))
             == VD_ERROR_SUCCESS)
        status = vd_detach_loop_locked(record.loop_number);
    vd_attach_records_unlock(lock);
    /* The loop let go of the export's file: its server may end. */
    if (status == VD_ERROR_SUCCESS && record.server_pid > 0)
        vd_attach_server_end(record.server_pid);
    return status;
}

void vd_attach_host_release(vd_disk *disk)
{
    if (disk->loop_fd < 0)
        return;                   /* permanent: the device is the attach */
    uint32_t status;
    int lock = vd_attach_records_lock(&status);
    (void)vd_partition_devices_detach(disk, disk->loop_number);
    vd_attach_record_remove(disk->loop_number);
    /* What was written through the device reaches the image; then the last
     * close lets autoclear unbind it (or the last umount, if mounted). */
    (void)fsync(disk->loop_fd);
    close(disk->loop_fd);
    disk->loop_fd = -1;
    vd_attach_records_unlock(lock);
    vd_attach_export_release(disk);
}

int vd_attach_host_gone(const vd_disk *disk)
{
    if (disk->loop_fd >= 0)
        return 0;                 /* handle-bound: this handle holds the device */
    vd_attach_record record;
    return !vd_attach_record_of(disk, &record) || record.loop_number != disk->loop_number;
}

int vd_attach_host_device(const vd_disk *disk, int attachment)
{
    if (vd_attachment_on_host(attachment) && !vd_attach_host_gone(disk))
        return disk->loop_number;
    vd_attach_record record;
    return vd_attach_record_of(disk, &record) ? record.loop_number : -1;
}

uint32_t vd_attach_check_open(const vd_disk *disk)
{
    vd_attach_record record;
    if (!vd_attach_record_of(disk, &record) || !record.permanent)
        return VD_ERROR_SUCCESS;
    if (!disk->may_detach)
        return vd_fail(VD_ERROR_ACCESS_DENIED,
                       "the disk is attached with permanent lifetime, as /dev/loop%d: open it "
                       "with VIRTUAL_DISK_ACCESS_DETACH in the mask", record.loop_number);
    if (record.read_only && !disk->read_only)
        return vd_fail(VD_ERROR_ACCESS_DENIED,
                       "the disk is attached read-only with permanent lifetime, as /dev/loop%d: "
                       "open it read-only", record.loop_number);
    return VD_ERROR_SUCCESS;
}
