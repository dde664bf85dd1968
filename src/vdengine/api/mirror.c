/* MirrorVirtualDisk and BreakMirrorVirtualDisk: a live copy of an open
 * disk into another image, then the disk switched over to it.
 *
 * The operation (operation.h), always asynchronous (the SDK marks
 * Overlapped _In_): the mirror is installed on the disk's data path, the
 * content is copied (disk/mirror_copy.h: every write made meanwhile
 * reaches the mirror), and then the operation stays ERROR_IO_PENDING with
 * CurrentValue == CompletionValue, every write going to both, until
 *   - BreakMirrorVirtualDisk: the handle goes on with the mirror alone
 *     (reads, writes, GetVirtualDiskInformation) and the operation ends
 *     with ERROR_SUCCESS; the source file stays as it is ("the old files
 *     are not deleted"); a device attached through the handle (its FUSE
 *     export reads the handle's data path) serves the mirror from then
 *     on, and its attach record names the mirror (attach.h,
 *     vd_attach_host_retarget);
 *   - CancelIoEx, or closing the handle: the operation ends with
 *     ERROR_OPERATION_ABORTED and the handle stays on the source ("leaving
 *     the original file as the current");
 *   - a write the mirror refuses: the operation ends with its code, the
 *     handle stays on the source.
 * A mirror file the engine created is removed again when the operation
 * ends before the copy was complete (a cancel during the copy, a failure,
 * a second operation refused): a partial copy would open as a valid image
 * with the wrong content.  Once mirrored it stays, whatever ends the
 * mirror.  An existing file (EXISTING_FILE) is never removed.
 *
 * Codes (engine README, section 15): flags outside the SDK's, no
 * OVERLAPPED, parameters missing or not version 1, a NULL or empty path:
 * INVALID_PARAMETER; then the handle (6); SKIP_MIRROR_ACTIVATION:
 * NOT_SUPPORTED; a version 1 handle or a GetInfoOnly one: ACCESS_DENIED
 * ("only V2 handles can be used when mirroring"); ISO: NOT_SUPPORTED; a
 * disk attached as a loop device straight on its file, whose writes never
 * pass the engine, or attached permanently by another process:
 * VHD_INVALID_STATE; the mirror file existing without EXISTING_FILE:
 * FILE_EXISTS (mirror_target.h has the checks of an existing one); a long
 * operation already running: BUSY, as for the others.
 * BreakMirrorVirtualDisk before the copy is complete, or without a
 * mirror: VHD_INVALID_STATE. */
#define _POSIX_C_SOURCE 200809L   /* strdup */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/attach.h"
#include "api/flag_masks.h"
#include "api/handle.h"
#include "api/mirror_target.h"
#include "api/operation.h"
#include "base/detail.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "disk/mirror_copy.h"

/* What the operation owns: the mirror, and the file to remove should it
 * end before the copy is complete. */
typedef struct vd_mirror_job {
    vd_mirror *mirror;
    char *remove_path;   /* NULL: keep the file */
} vd_mirror_job;

static void vd_mirror_job_free(void *context)
{
    vd_mirror_job *job = context;
    vd_mirror_free(job->mirror);
    if (job->remove_path != NULL)
        unlink(job->remove_path);
    free(job->remove_path);
    free(job);
}

/* Puts `mirror` on the disk's data path, or takes it off (NULL), with no
 * data path call inside. */
static void vd_mirror_install(vd_disk *disk, vd_mirror *mirror)
{
    pthread_mutex_lock(&disk->lock);
    vd_gate_enter_alone(&disk->content_gate);
    disk->mirror = mirror;
    vd_gate_leave_alone(&disk->content_gate);
    pthread_mutex_unlock(&disk->lock);
}

static uint32_t vd_mirror_body(vd_disk *disk, vd_operation *operation, void *context)
{
    vd_mirror_job *job = context;
    vd_mirror_install(disk, job->mirror);
    uint32_t status = vd_mirror_copy(job->mirror, disk, operation);
    if (status == VD_ERROR_SUCCESS) {
        free(job->remove_path);
        job->remove_path = NULL;
        status = vd_mirror_wait(job->mirror, operation);
    }
    /* A break took the mirror off already and switched the disk. */
    pthread_mutex_lock(&disk->lock);
    int broken = disk->mirror != job->mirror;
    pthread_mutex_unlock(&disk->lock);
    if (broken)
        return VD_ERROR_SUCCESS;
    vd_mirror_install(disk, NULL);
    return status;
}

/* What the handle allows, under disk->lock. */
static uint32_t vd_mirror_admissible(const vd_disk *disk, uint32_t flags)
{
    if ((flags & MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION) != 0)
        return vd_fail(VD_ERROR_NOT_SUPPORTED,
                       "SKIP_MIRROR_ACTIVATION has no documented meaning the engine could follow");
    if (disk->open_version < OPEN_VIRTUAL_DISK_VERSION_2 || disk->get_info_only)
        return vd_fail(VD_ERROR_ACCESS_DENIED,
                       "a mirror needs a version 2 handle that is not GetInfoOnly");
    if (disk->image.device == VD_DEVICE_ISO)
        return VD_ERROR_NOT_SUPPORTED;
    if (vd_attachment_on_host(vd_attachment_of(disk)) && disk->export_ == NULL)
        return vd_fail(VD_ERROR_VHD_INVALID_STATE,
                       "the disk is attached as a loop device on its file, whose writes the "
                       "mirror would not see; detach it first");
    if (disk->mirror != NULL)
        return VD_ERROR_BUSY;
    return VD_ERROR_SUCCESS;
}

/* The target, made or opened, in a job for the operation. */
static uint32_t vd_mirror_job_new(vd_disk *disk, uint32_t flags, const char *path,
                                  vd_mirror_job **job)
{
    vd_image target;
    int existing = (flags & MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE) != 0;
    uint32_t status = existing ? vd_mirror_target_open(&disk->image, path, &target)
                               : vd_mirror_target_create(&disk->image, path, &target);
    if (status != VD_ERROR_SUCCESS)
        return status;
    *job = calloc(1, sizeof **job);
    char *remove_path = existing ? NULL : strdup(path);
    vd_mirror *mirror = *job != NULL && (existing || remove_path != NULL) ? vd_mirror_new(&target)
                                                                          : NULL;
    if (mirror == NULL) {
        vd_image_release(&target);
        if (!existing)
            unlink(path);
        free(remove_path);
        free(*job);
        *job = NULL;
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    (*job)->mirror = mirror;
    (*job)->remove_path = remove_path;
    return VD_ERROR_SUCCESS;
}

DWORD WINAPI MirrorVirtualDisk(HANDLE VirtualDiskHandle, MIRROR_VIRTUAL_DISK_FLAG Flags,
                               PMIRROR_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    uint32_t flags = (uint32_t)Flags;
    if ((flags & ~(uint32_t)VD_MIRROR_FLAGS_KNOWN) != 0 || Overlapped == NULL
        || Parameters == NULL || Parameters->Version != MIRROR_VIRTUAL_DISK_VERSION_1
        || Parameters->Version1.MirrorVirtualDiskPath == NULL
        || Parameters->Version1.MirrorVirtualDiskPath[0] == 0)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    char *path = NULL;
    vd_mirror_job *job = NULL;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_mirror_admissible(disk, flags);
    if (status == VD_ERROR_SUCCESS)
        status = vd_utf16_path_to_host(Parameters->Version1.MirrorVirtualDiskPath, &path);
    if (status == VD_ERROR_SUCCESS)
        status = vd_mirror_job_new(disk, flags, path, &job);
    pthread_mutex_unlock(&disk->lock);
    free(path);
    if (status != VD_ERROR_SUCCESS) {
        vd_handle_release(VirtualDiskHandle);
        return status;
    }
    return vd_operation_run(VirtualDiskHandle, disk, Overlapped, vd_mirror_body, job,
                            vd_mirror_job_free);
}

/* Whether the disk's mirror may be broken now, under disk->lock. */
static uint32_t vd_mirror_breakable(const vd_disk *disk)
{
    if (disk->mirror == NULL)
        return vd_fail(VD_ERROR_VHD_INVALID_STATE, "no mirror runs on this handle");
    if (!vd_mirror_is_mirrored(disk->mirror))
        return vd_fail(VD_ERROR_VHD_INVALID_STATE,
                       "the mirror is still copying; break it once CurrentValue reaches "
                       "CompletionValue");
    return VD_ERROR_SUCCESS;
}

/* The disk goes on with the mirror's image alone; the source's image and
 * chain are closed (their files stay). */
static uint32_t vd_mirror_switch(vd_disk *disk)
{
    vd_mirror *mirror = disk->mirror;
    vd_gate_enter_alone(&disk->content_gate);
    uint32_t status = VD_ERROR_SUCCESS;
    if (disk->image.ops != NULL && disk->image.ops->flush != NULL && disk->image.file.writable)
        status = disk->image.ops->flush(&disk->image);
    vd_image target;
    if (status == VD_ERROR_SUCCESS)
        status = vd_mirror_take_target(mirror, &target);
    if (status == VD_ERROR_SUCCESS) {
        vd_chain_close(&disk->chain);
        vd_image_release(&disk->image);
        disk->image = target;
        disk->mirror = NULL;
    }
    vd_gate_leave_alone(&disk->content_gate);
    return status;
}

DWORD WINAPI BreakMirrorVirtualDisk(HANDLE VirtualDiskHandle)
{
    vd_detail_clear();
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_mirror_breakable(disk);
    /* A device attached through this handle serves the mirror from now
     * on: its record says so before the switch, and again names the
     * source should the switch fail. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_attach_host_retarget(disk, vd_mirror_target_fd(disk->mirror));
    if (status == VD_ERROR_SUCCESS) {
        status = vd_mirror_switch(disk);
        if (status != VD_ERROR_SUCCESS)
            (void)vd_attach_host_retarget(disk, disk->image.file.fd);
    }
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
