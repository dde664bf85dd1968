/* A handle's attachment, as AttachVirtualDisk makes it and
 * DetachVirtualDisk, closing the handle or RawSCSIVirtualDisk look at it.
 *
 * An attachment belongs to the handle that made it (the lifetime Windows
 * gives an attach without PERMANENT_LIFETIME): closing the handle detaches.
 * The state is one atomic word in vd_disk, so RawSCSIVirtualDisk reads it
 * without a lock on its hot path. */
#ifndef VDENGINE_ATTACH_H
#define VDENGINE_ATTACH_H

#include "api/handle.h"

/* vd_disk.attachment */
enum vd_attachment {
    VD_ATTACHMENT_NONE = 0,
    VD_ATTACHMENT_NO_HOST_READ_WRITE = 1,   /* NO_LOCAL_HOST */
    VD_ATTACHMENT_NO_HOST_READ_ONLY = 2,    /* NO_LOCAL_HOST | READ_ONLY */
    VD_ATTACHMENT_LOOP_READ_WRITE = 3,      /* a loop device (attach_host.c) */
    VD_ATTACHMENT_LOOP_READ_ONLY = 4
};

/* The disk's attachment now (enum vd_attachment). */
int vd_attachment_of(const vd_disk *disk);

static inline int vd_attachment_read_only(int attachment)
{
    return attachment == VD_ATTACHMENT_NO_HOST_READ_ONLY
           || attachment == VD_ATTACHMENT_LOOP_READ_ONLY;
}

static inline int vd_attachment_on_host(int attachment)
{
    return attachment == VD_ATTACHMENT_LOOP_READ_WRITE
           || attachment == VD_ATTACHMENT_LOOP_READ_ONLY;
}

/* attach_host.c: a device the host sees.  vd_attach_on_host sets it up
 * (the flags and parameters checked as AttachVirtualDisk's own) and says
 * which attachment it made in *kind; the caller files the disk as
 * attached.  vd_detach_on_host ends one this handle made;
 * vd_detach_elsewhere one of the same image file made by another handle,
 * which must be permanent (NOT_READY when there is none).
 * vd_attach_host_release is the handle's close: a handle-bound attach ends
 * (lazily while mounted), a permanent one stays.  vd_attach_host_device is
 * N of the /dev/loopN the image is attached as, by any handle or process,
 * or -1. */
uint32_t vd_attach_on_host(vd_disk *disk, uint32_t flags,
                           const ATTACH_VIRTUAL_DISK_PARAMETERS *parameters, int *kind);
uint32_t vd_detach_on_host(vd_disk *disk);
uint32_t vd_detach_elsewhere(vd_disk *disk);
void vd_attach_host_release(vd_disk *disk);
int vd_attach_host_device(const vd_disk *disk, int attachment);

/* For a disk about to go on with another image file (a mirror's break,
 * mirror.c) while the device of a handle-bound attach serves it through
 * its data path: the attach record names that file, open as `image_fd`
 * (its path as the kernel names it, its device and inode), so that every
 * process sees the image the device now serves.  SUCCESS, nothing done,
 * when the handle holds no device attach; the record write's code, the
 * record unchanged, when it fails. */
uint32_t vd_attach_host_retarget(vd_disk *disk, int image_fd);

/* Whether the permanent attach this handle made (a device attach without
 * a loop descriptor) has been detached since, by another process: no live
 * record of its image names its loop any more, which may already be
 * another image's.  0 for a handle-bound attach, which its handle holds. */
int vd_attach_host_gone(const vd_disk *disk);

/* OpenVirtualDisk's rule for a disk attached with permanent lifetime (its
 * Remarks): the open must ask for VIRTUAL_DISK_ACCESS_DETACH (V2/V3 opens
 * hold it), and must not write when the attach is read-only;
 * ACCESS_DENIED otherwise.  Called once the open's terms are set. */
uint32_t vd_attach_check_open(const vd_disk *disk);

/* SHARING_VIOLATION, naming the device and its holder, when a record says
 * the disk's image file is attached as a device by any handle or process;
 * SUCCESS otherwise.  A NO_LOCAL_HOST attach asks it: the handle's own
 * parse of the image is out of date while the device's server writes. */
uint32_t vd_attach_check_unrecorded(const vd_disk *disk);

/* Ends whatever attachment the disk holds; the handle's close calls it
 * before the disk is freed. */
void vd_attach_release(vd_disk *disk);

#endif
