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
    VD_ATTACHMENT_NO_HOST_READ_ONLY = 2     /* NO_LOCAL_HOST | READ_ONLY */
};

/* The disk's attachment now (enum vd_attachment). */
int vd_attachment_of(const vd_disk *disk);

/* Ends whatever attachment the disk holds; the handle's close calls it
 * before the disk is freed. */
void vd_attach_release(vd_disk *disk);

#endif
