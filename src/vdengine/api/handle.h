/* The engine's virtual disk handles: what a HANDLE refers to, and the table
 * that turns HANDLE values into it.
 *
 * A HANDLE is an opaque number (slot index + generation), never a pointer,
 * and is checked on every use: a value that was never returned, or whose
 * handle was closed, gives ERROR_INVALID_HANDLE instead of touching freed
 * memory.  Calls on one handle may run in several threads at once and race
 * with its close: each call holds a reference for its duration, and the
 * disk is released when the handle is closed and the last call is done. */
#ifndef VDENGINE_HANDLE_H
#define VDENGINE_HANDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "virtdisk_api.h"
#include "base/gate.h"
#include "disk/chain.h"
#include "disk/image.h"
#include "host/file_transfer.h"

/* One opened virtual disk: the image the path names, its ancestors, and the
 * terms it was opened on. */
typedef struct vd_disk {
    vd_image image;
    vd_chain chain;           /* empty: not differencing, or opened without parents */
    uint32_t access_mask;     /* VIRTUAL_DISK_ACCESS_*; V2/V3 opens ask for NONE */
    uint32_t open_flags;      /* OPEN_VIRTUAL_DISK_FLAG_* as given */
    uint32_t open_version;    /* 1, 2 or 3; NULL parameters count as 1 */
    uint32_t writable_depth;  /* images opened read-write, the child first */
    int read_only;            /* the image file is open read-only */
    int get_info_only;        /* V2/V3 GetInfoOnly: queries only */
    /* Windows lets a handle to a disk attached with permanent lifetime be
     * opened only with VIRTUAL_DISK_ACCESS_DETACH in the mask, and refuses
     * write access if the attach was read-only (OpenVirtualDisk, Remarks):
     * vd_attach_check_open (attach_host.c) checks it at open. */
    int may_detach;
    /* The attachment this handle made (api/attach.h, enum vd_attachment),
     * read without the lock by RawSCSIVirtualDisk; `attached_next` links
     * the disks attached now, by attach.c under its own mutex. */
    _Atomic int attachment;
    struct vd_disk *attached_next;
    /* A device attach (attach_host.c): N of /dev/loopN; the descriptor
     * that holds an attach bound to the handle (the loop clears itself
     * when the last opener is gone), -1 for a permanent one. */
    int loop_number;
    int loop_fd;
    /* Descriptors that hold the partition devices made on a handle-bound
     * attach (api/attach_partition.c), which clear with them. */
    int *partition_fds;
    uint32_t partition_count;
    /* The FUSE export the loop of a handle-bound attach reads and writes
     * when the image is not one run of its file (api/attach_export.c). */
    struct vd_fuse_export *export_;
    /* Set once a permanent export's server holds the image (api/
     * attach_redirect.h): the handle's content I/O then goes through the
     * device, never through its own format state.  One atomic load on the
     * content path; NULL for every other disk. */
    _Atomic(struct vd_redirect *) redirect;
    /* Held by every call that reads or changes `image` and `chain` after
     * open: SetVirtualDiskInformation and the metadata changes rewrite
     * fields of `image` and may replace `chain`. */
    pthread_mutex_t lock;
    /* The long operations' state (api/operation.c), made by the first
     * under `lock` and never replaced until the disk is freed: atomic so
     * that progress and cancel find it without `lock`, which a running
     * operation may hold for as long as it changes the image. */
    _Atomic(struct vd_operations *) operations;
    /* Taken shared by every call of the data path (disk/content.c) and
     * exclusively where the data path changes under it: a mirror installed
     * or removed, the disk switched to its mirror (api/mirror.c), the
     * image resized and read again (api/resize.c), always with `lock`
     * held first.  `mirror`, the running mirror of the disk
     * (disk/mirror_copy.h) or NULL, changes only with both held. */
    vd_gate content_gate;
    struct vd_mirror *mirror;
    /* Set for a device handle (vd_engine_open_device, api/device_handle.h):
     * a disk or file system, not an image; the image fields stay empty and
     * vd_handle_acquire refuses it. */
    struct vd_device_target *device_target;
    /* The files the kernel refused to copy from into a given destination
     * (host/file_transfer.h), for the rest of a copy the caller makes in
     * many calls on this handle (vd_engine_copy_to_file). */
    vd_copy_refusals copy_refusals;
} vd_disk;

/* A zeroed disk with its lock ready; NULL when out of memory. */
vd_disk *vd_disk_new(void);

/* Releases everything the disk holds (chain, image, file) and the disk. */
void vd_disk_free(vd_disk *disk);

/* Opens into `chain` the ancestors of the disk's image that its open terms
 * ask for (open_flags, writable_depth; see open.c): an empty chain when the
 * image is no differencing image or the flags keep the child alone. */
uint32_t vd_disk_open_parents(const vd_disk *disk, vd_chain *chain);

/* OpenVirtualDisk on a file that is open already, as CreateVirtualDisk
 * opens the image it has just written through the same descriptor: the
 * same argument rules, parser (`device`), terms, parents and handle.  The
 * file must be open for writing exactly when the terms ask for it
 * (INVALID_PARAMETER otherwise).  It belongs to the handle on success and
 * is closed on failure. */
uint32_t vd_open_disk_on_file(vd_file *file, uint32_t device, VIRTUAL_DISK_ACCESS_MASK mask,
                              OPEN_VIRTUAL_DISK_FLAG flags,
                              const OPEN_VIRTUAL_DISK_PARAMETERS *parameters, HANDLE *handle);

/* Whether the handle's open terms grant `access` (one VIRTUAL_DISK_ACCESS_*
 * right).  V2/V3 handles carry no mask: they hold every right, except that
 * a GetInfoOnly handle holds only GET_INFO. */
int vd_disk_has_access(const vd_disk *disk, uint32_t access);

/* Files `disk` in the table and returns its new HANDLE value.  On success
 * the table owns the disk; on failure (table full, out of memory) the
 * caller still does. */
uint32_t vd_handle_insert(vd_disk *disk, HANDLE *handle);

/* The disk behind `handle`, with a reference that keeps it alive until
 * vd_handle_release(handle); NULL when the value is no open handle. */
vd_disk *vd_handle_acquire(HANDLE handle);
/* The same for the calls that take device handles as well: the disk
 * behind an image handle or a device handle (device_target set). */
vd_disk *vd_handle_acquire_any(HANDLE handle);
void vd_handle_release(HANDLE handle);

#endif
