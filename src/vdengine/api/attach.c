/* AttachVirtualDisk and DetachVirtualDisk.
 *
 * Two kinds of attach, kept apart:
 *
 *  - ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST: the disk is attached but shown
 *    to nothing on the host; its handle then takes SCSI commands
 *    (RawSCSIVirtualDisk, raw_scsi.c).  This is what Windows' raw I/O
 *    sample does ("NO_LOCAL_HOST is required for RawIO").  Nothing reaches
 *    the host's kernel, so the engine carries it out in the process, with
 *    no device and no privilege (Windows asks SE_MANAGE_VOLUME_PRIVILEGE for
 *    every attach; README.md, "Privileges").
 *  - every other attach makes a disk the host sees (a device), which is
 *    vd_attach_on_host's job alone.
 *
 * Order of checks, as in the rest of the API: arguments (87), handle (6),
 * access (5), then state.
 *
 * Access (OpenVirtualDisk's VIRTUAL_DISK_ACCESS_* pages): a version 1
 * handle attaches read-only with ATTACH_RO or ATTACH_RW in its mask, and
 * read-write with ATTACH_RW only; a V2/V3 handle holds every right except
 * when opened GetInfoOnly.  A read-write attach of an image whose file is
 * open read-only (a V2 ReadOnly open, an ISO) is refused with ACCESS_DENIED
 * too: there is nothing to write through.
 *
 * State.  A disk attached already (by this handle, or by another handle of
 * the same image file) is refused with ERROR_SHARING_VIOLATION, the code
 * behind the message Windows gives for attaching an attached image ("The
 * process cannot access the file because it is being used by another
 * process", Mount-DiskImage), with a detail naming the device and its
 * holder.  So is a NO_LOCAL_HOST attach of an image another process (or a
 * permanent attach) has made a device of: the handle's parse of the image
 * would answer from a state the device's writer has moved past, and
 * Windows, with one disk per image, refuses any second attach alike.  A
 * handle a permanent export's server took over attaches nothing more
 * (ERROR_VHD_INVALID_STATE, attach_redirect.h).  DetachVirtualDisk of a
 * handle that holds no attachment detaches a permanent attach of the same
 * image made by another handle or process (attach_host.c), and otherwise
 * answers ERROR_NOT_READY, Windows' answer for a disk that is not
 * attached; the handle of this process that made the permanent attach, if
 * it is still open, is detached with it.
 *
 * Lifetime.  An attach belongs to the handle: closing the handle detaches
 * (vd_attach_release, from the handle's close).  PERMANENT_LIFETIME asks
 * the attach to outlive the handle and the process until a
 * DetachVirtualDisk from any handle; with NO_LOCAL_HOST that needs the
 * disk to be served by something that outlives the process, the same
 * server a device attach needs, so such a request goes to the host path
 * too, as do the flags that shape a host's view of the disk
 * (RESTRICTED_RANGE, SINGLE_PARTITION) or its boot (AT_BOOT).  The flags
 * that only matter to a host's volumes (NO_DRIVE_LETTER, REGISTER_VOLUME,
 * NON_PNP, NO_SECURITY_DESCRIPTOR, BYPASS_DEFAULT_ENCRYPTION_POLICY) change
 * nothing for a disk no host sees, and are accepted.
 *
 * Overlapped: every attach completes at once; with an OVERLAPPED
 * the call returns ERROR_SUCCESS having done all the work (as create.c). */
#include "api/attach.h"
#include "api/attach_redirect.h"

#include <sys/stat.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/content.h"

/* Every attach flag the SDK defines. */
#define VD_ATTACH_FLAGS_KNOWN                                                              \
    ((uint32_t)(ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY | ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER \
                | ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME                               \
                | ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST                                    \
                | ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR                           \
                | ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY                 \
                | ATTACH_VIRTUAL_DISK_FLAG_NON_PNP | ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE \
                | ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION                                 \
                | ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME | ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT))

/* The flags a NO_LOCAL_HOST attach cannot honour inside one handle's life
 * (see the lifetime paragraph above). */
#define VD_ATTACH_FLAGS_NEED_SERVER                                                  \
    ((uint32_t)(ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME                          \
                | ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE                          \
                | ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION                          \
                | ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT))

/* The disks attached now, linked through vd_disk.attached_next. */
static pthread_mutex_t vd_attached_mutex = PTHREAD_MUTEX_INITIALIZER;
static vd_disk *vd_attached_head;

int vd_attachment_of(const vd_disk *disk)
{
    return atomic_load_explicit(&disk->attachment, memory_order_acquire);
}

static int vd_same_file(const vd_disk *a, const vd_disk *b)
{
    struct stat sa, sb;
    if (fstat(a->image.file.fd, &sa) != 0 || fstat(b->image.file.fd, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Unlinks the disk at *link from the attached list (held locked): it is
 * attached no more, and content I/O sent to a device answers NOT_READY. */
static void vd_attached_unlink_locked(vd_disk **link)
{
    vd_disk *disk = *link;
    *link = disk->attached_next;
    disk->attached_next = NULL;
    vd_redirect_detached(disk);
    atomic_store_explicit(&disk->attachment, VD_ATTACHMENT_NONE, memory_order_release);
}

/* Whether `disk`, on the list, holds a permanent device attach that
 * another process has detached since. */
static int vd_attached_gone(const vd_disk *disk)
{
    return vd_attachment_on_host(vd_attachment_of(disk)) && vd_attach_host_gone(disk);
}

/* SHARING_VIOLATION for an attach of `disk` while `holder`, on the list,
 * holds its image, naming the device and the handle. */
static uint32_t vd_attached_refuse(const vd_disk *disk, const vd_disk *holder)
{
    const char *who = holder == disk ? "this handle" : "another handle of this process";
    if (!vd_attachment_on_host(vd_attachment_of(holder)))
        return vd_fail(VD_ERROR_SHARING_VIOLATION,
                       "%s holds an attach of the image without a device (NO_LOCAL_HOST)", who);
    return vd_fail(VD_ERROR_SHARING_VIOLATION, "%s has attached the image already, as /dev/loop%d",
                   who, holder->loop_number);
}

/* Makes an attachment of `disk` and says which in *kind. */
typedef uint32_t (*vd_attach_maker)(vd_disk *disk, uint32_t flags,
                                    const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters, int *kind);

/* Files `disk` as attached, with the attachment `make` makes, unless it or
 * its image file is attached already.  The list stays locked while `make`
 * works, so two handles of one image never both attach it. */
static uint32_t vd_attached_add(vd_disk *disk, vd_attach_maker make, uint32_t flags,
                                const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters)
{
    uint32_t status = VD_ERROR_SUCCESS;
    pthread_mutex_lock(&vd_attached_mutex);
    vd_disk **link = &vd_attached_head;
    while (*link != NULL) {
        vd_disk *other = *link;
        if (other != disk && !vd_same_file(other, disk)) {
            link = &other->attached_next;
        } else if (vd_attached_gone(other)) {
            vd_attached_unlink_locked(link);      /* detached by another process */
        } else {
            status = vd_attached_refuse(disk, other);
            break;
        }
    }
    /* A handle a permanent export's server took over keeps an out-of-date
     * parse of the image, which no attach may be made from. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_redirect_check_update(disk);
    int kind = VD_ATTACHMENT_NONE;
    if (status == VD_ERROR_SUCCESS)
        status = make(disk, flags, parameters, &kind);
    if (status == VD_ERROR_SUCCESS) {
        disk->attached_next = vd_attached_head;
        vd_attached_head = disk;
        atomic_store_explicit(&disk->attachment, kind, memory_order_release);
    }
    pthread_mutex_unlock(&vd_attached_mutex);
    return status;
}

/* After a detach, through `disk`, of a permanent attach of its image: the
 * handle of this process that made that attach is attached no more, so
 * it leaves the list (its IS_LOADED, its physical path, an attach of the
 * image from this process then see the disk detached) and its content
 * I/O, which went to the device, answers NOT_READY from now on.  Its loop
 * descriptor is -1: a permanent attach holds none. */
static void vd_attached_forget_image(const vd_disk *disk)
{
    pthread_mutex_lock(&vd_attached_mutex);
    vd_disk **link = &vd_attached_head;
    while (*link != NULL) {
        vd_disk *other = *link;
        if (other != disk && vd_attachment_on_host(vd_attachment_of(other))
            && vd_same_file(other, disk)) {
            vd_attached_unlink_locked(link);
            continue;
        }
        link = &other->attached_next;
    }
    pthread_mutex_unlock(&vd_attached_mutex);
}

/* Takes `disk` off the attached list, as detached elsewhere. */
static void vd_attached_forget(vd_disk *disk)
{
    pthread_mutex_lock(&vd_attached_mutex);
    for (vd_disk **link = &vd_attached_head; *link != NULL; link = &(*link)->attached_next) {
        if (*link == disk) {
            vd_attached_unlink_locked(link);
            break;
        }
    }
    pthread_mutex_unlock(&vd_attached_mutex);
}

/* Takes `disk` off the attached list; 0 if it was not on it. */
static int vd_attached_remove(vd_disk *disk)
{
    int found = 0;
    pthread_mutex_lock(&vd_attached_mutex);
    for (vd_disk **link = &vd_attached_head; *link != NULL; link = &(*link)->attached_next) {
        if (*link == disk) {
            *link = disk->attached_next;
            disk->attached_next = NULL;
            atomic_store_explicit(&disk->attachment, VD_ATTACHMENT_NONE, memory_order_release);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&vd_attached_mutex);
    return found;
}

void vd_attach_release(vd_disk *disk)
{
    int attachment = vd_attachment_of(disk);
    int attached = vd_attached_remove(disk);
    vd_redirect_end(disk);         /* also after a detach: the handle's last use */
    if (!attached)
        return;
    /* nobody is left to hear a failure */
    if (vd_attachment_on_host(attachment))
        vd_attach_host_release(disk);
    else if (disk->image.file.writable)
        (void)vd_content_flush(disk);
}

static uint32_t vd_attach_check_access(const vd_disk *disk, uint32_t flags)
{
    int read_only = (flags & ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY) != 0;
    if (read_only) {
        if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_ATTACH_RO)
            && !vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_ATTACH_RW))
            return VD_ERROR_ACCESS_DENIED;
        return VD_ERROR_SUCCESS;
    }
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_ATTACH_RW) || disk->read_only
        || !disk->image.file.writable)
        return VD_ERROR_ACCESS_DENIED;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_attach_without_host(vd_disk *disk, uint32_t flags,
                                       const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters, int *kind)
{
    (void)parameters;
    uint32_t status = vd_attach_check_unrecorded(disk);
    if (status != VD_ERROR_SUCCESS)
        return status;
    *kind = (flags & ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY) ? VD_ATTACHMENT_NO_HOST_READ_ONLY
                                                         : VD_ATTACHMENT_NO_HOST_READ_WRITE;
    return VD_ERROR_SUCCESS;
}

DWORD WINAPI AttachVirtualDisk(HANDLE VirtualDiskHandle, PSECURITY_DESCRIPTOR SecurityDescriptor,
                               ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
                               PATTACH_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    /* The security descriptor shapes a Windows disk object's access, which
     * a loop device node does not take; no provider flag is defined. */
    (void)SecurityDescriptor, (void)ProviderSpecificFlags, (void)Overlapped;
    uint32_t flags = (uint32_t)Flags;
    if ((flags & ~VD_ATTACH_FLAGS_KNOWN) != 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (Parameters != NULL && (uint32_t)Parameters->Version != ATTACH_VIRTUAL_DISK_VERSION_1
        && (uint32_t)Parameters->Version != ATTACH_VIRTUAL_DISK_VERSION_2)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = vd_attach_check_access(disk, flags);
    if (status == VD_ERROR_SUCCESS) {
        int local = (flags & ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST) != 0
                    && (flags & VD_ATTACH_FLAGS_NEED_SERVER) == 0;
        status = vd_attached_add(disk, local ? vd_attach_without_host : vd_attach_on_host, flags,
                                 Parameters);
    }
    vd_handle_release(VirtualDiskHandle);
    return status;
}

DWORD WINAPI DetachVirtualDisk(HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags,
                               ULONG ProviderSpecificFlags)
{
    vd_detail_clear();
    (void)ProviderSpecificFlags;
    if (Flags != DETACH_VIRTUAL_DISK_FLAG_NONE)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = VD_ERROR_SUCCESS;
    int attachment = vd_attachment_of(disk);
    if (!vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_DETACH))
        status = VD_ERROR_ACCESS_DENIED;
    else if (attachment == VD_ATTACHMENT_NONE || vd_attached_gone(disk)) {
        /* A permanent attach this handle made and another process detached
         * (its loop may be another image's now), or whose server died,
         * leaves the handle holding no attach: the detach is then that of
         * a handle without one, which also clears what a dead server
         * left. */
        vd_attached_forget(disk);
        status = vd_detach_elsewhere(disk);   /* a permanent attach, or NOT_READY */
        if (status == VD_ERROR_SUCCESS)
            vd_attached_forget_image(disk);
    } else if (vd_attachment_on_host(attachment)) {
        /* The handle's own content writes (a loop straight on the image
         * leaves them to the handle's descriptor) reach the file as the
         * device's do; a failed flush leaves the disk attached. */
        int writable = attachment == VD_ATTACHMENT_LOOP_READ_WRITE && disk->image.file.writable;
        status = writable ? vd_content_flush(disk) : VD_ERROR_SUCCESS;
        if (status == VD_ERROR_SUCCESS)
            status = vd_detach_on_host(disk);
        if (status == VD_ERROR_SUCCESS && !vd_attached_remove(disk))
            status = VD_ERROR_NOT_READY;     /* a concurrent detach won */
    } else {
        /* What the attach wrote reaches the file before it is detached.
         * A failed flush leaves the disk attached, so the caller may retry. */
        int writable = vd_attachment_of(disk) == VD_ATTACHMENT_NO_HOST_READ_WRITE;
        status = writable ? vd_content_flush(disk) : VD_ERROR_SUCCESS;
        if (status == VD_ERROR_SUCCESS && !vd_attached_remove(disk))
            status = VD_ERROR_NOT_READY;     /* a concurrent detach won */
    }
    vd_handle_release(VirtualDiskHandle);
    return status;
}
