/* The content path of a handle whose image a permanent export's server
 * holds (attach_redirect.h).
 *
 * Why the device and not the exported file.  The server's FUSE file has no
 * page cache (FOPEN_DIRECT_IO) and the loop reads it with direct I/O, so
 * below the loop no byte is cached; above it, /dev/loopN has the block
 * device's page cache, which every buffered opener of the device (mkfs,
 * dd, blkid, a file system's metadata) fills and dirties.  A direct write
 * to the device writes back and drops the cached pages it covers, and a
 * direct read writes back dirty ones first, so I/O through the device with
 * O_DIRECT is coherent with every user of it; I/O on the exported file
 * would leave their cached pages stale.
 *
 * Why open the device for each request.  A descriptor held open would keep
 * the loop bound after a DetachVirtualDisk from another process (the
 * kernel defers LOOP_CLR_FD until the last opener closes), while the
 * server it reads from is being ended.  Opened per request, the device is
 * checked before any byte moves: still bound (LOOP_GET_STATUS64) to the
 * export's very file (device and inode, and the backing path, whose
 * directory name is random, since a loop number and a FUSE device number
 * are both reused by the next attach).  While the request holds the
 * descriptor the binding cannot change.  A device that fails the check has
 * been detached: the redirect is gone for good. */
#define _GNU_SOURCE
#include "api/attach_redirect.h"

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/vd_errors.h"

#if defined(__linux__)

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/attach_record.h"
#include "host/io.h"
#include "host/loop.h"

/* Direct I/O wants aligned memory; a caller's buffer that is not goes
 * through a bounce buffer of this many bytes at a time. */
#define VD_REDIRECT_ALIGNMENT 4096u
#define VD_REDIRECT_BOUNCE (1024u * 1024u)

struct vd_redirect {
    int number;                 /* /dev/loopN */
    int read_only;
    uint64_t view_offset;       /* the bytes of the disk the device shows */
    uint64_t view_length;
    long server_pid;
    dev_t backing_device;       /* the exported file's identity */
    ino_t backing_inode;
    char backing_path[VD_ATTACH_RECORD_PATH_MAX];
    _Atomic int gone;
};

enum vd_redirect_op { VD_REDIRECT_READ, VD_REDIRECT_WRITE, VD_REDIRECT_UNMAP };

uint32_t vd_redirect_begin(vd_disk *disk, const vd_attach_view *view,
                           const vd_attach_binding *binding)
{
    struct stat backing;
    if (stat(binding->backing_path, &backing) != 0)
        return vd_fail(vd_error_from_errno(errno), "cannot find the export's file %s",
                       binding->backing_path);
    vd_redirect *redirect = calloc(1, sizeof *redirect);
    if (redirect == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    redirect->number = binding->number;
    redirect->read_only = view->read_only;
    redirect->view_offset = view->offset;
    redirect->view_length = view->length;
    redirect->server_pid = binding->server_pid;
    redirect->backing_device = backing.st_dev;
    redirect->backing_inode = backing.st_ino;
    memcpy(redirect->backing_path, binding->backing_path, sizeof redirect->backing_path);
    atomic_store_explicit(&disk->redirect, redirect, memory_order_release);
    return VD_ERROR_SUCCESS;
}

void vd_redirect_detached(vd_disk *disk)
{
    vd_redirect *redirect = vd_redirect_of(disk);
    if (redirect != NULL)
        atomic_store_explicit(&redirect->gone, 1, memory_order_release);
}

int vd_redirect_read_only(const vd_redirect *redirect)
{
    return redirect->read_only;
}

void vd_redirect_end(vd_disk *disk)
{
    free(atomic_exchange_explicit(&disk->redirect, NULL, memory_order_acq_rel));
}

static uint32_t vd_redirect_gone(vd_redirect *redirect)
{
    atomic_store_explicit(&redirect->gone, 1, memory_order_release);
    return vd_fail(VD_ERROR_NOT_READY,
                   "the disk's permanent attach as /dev/loop%d has been detached; this handle's "
                   "view of the image is out of date: close it and open the image again",
                   redirect->number);
}

/* Whether `fd` (of /dev/loopN) is bound to the export's file still. */
static int vd_redirect_bound(const vd_redirect *redirect, int fd)
{
    struct loop_info64 info;
    if (ioctl(fd, LOOP_GET_STATUS64, &info) != 0)
        return 0;
    if ((dev_t)info.lo_device != redirect->backing_device
        || (ino_t)info.lo_inode != redirect->backing_inode)
        return 0;
    char backing[VD_ATTACH_RECORD_PATH_MAX];
    return vd_loop_backing(redirect->number, backing, sizeof backing)
           && strcmp(backing, redirect->backing_path) == 0;
}

/* The device, or for bytes outside the view the exported file, opened
 * for one request and checked; -1 with *status set otherwise. */
static int vd_redirect_open(vd_redirect *redirect, int device, int writing, uint32_t *status)
{
    if (atomic_load_explicit(&redirect->gone, memory_order_acquire)) {
        *status = vd_redirect_gone(redirect);
        return -1;
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/loop%d", redirect->number);
    int flags = (writing ? O_RDWR : O_RDONLY) | O_CLOEXEC | (device ? O_DIRECT : 0);
    int fd = open(device ? path : redirect->backing_path, flags);
    if (fd < 0) {
        int error_number = errno;
        *status = error_number == ENOENT || error_number == ENXIO || error_number == ENOTCONN
                      ? vd_redirect_gone(redirect)
                      : vd_fail(vd_error_from_errno(error_number), "cannot open %s",
                                device ? path : redirect->backing_path);
        return -1;
    }
    struct stat info;
    int same = device ? vd_redirect_bound(redirect, fd)
                      : fstat(fd, &info) == 0 && info.st_dev == redirect->backing_device
                            && info.st_ino == redirect->backing_inode;
    if (!same) {
        close(fd);
        *status = vd_redirect_gone(redirect);
        return -1;
    }
    return fd;
}

/* A failed transfer's code; a server that has died since makes the
 * redirect gone (what it flushed is in the image, the rest is lost). */
static uint32_t vd_redirect_failed(vd_redirect *redirect, int error_number)
{
    if (!vd_attach_server_alive(redirect->server_pid))
        return vd_redirect_gone(redirect);
    return vd_fail(vd_error_from_errno(error_number), "I/O through /dev/loop%d failed: %s",
                   redirect->number, strerror(error_number));
}

/* Moves `length` bytes between `buffer` and `fd` at `offset`, all of it. */
static int vd_redirect_transfer(int fd, enum vd_redirect_op op, uint64_t offset, uint8_t *buffer,
                                uint64_t length)
{
    while (length > 0) {
        size_t piece = length < VD_REDIRECT_BOUNCE ? (size_t)length : VD_REDIRECT_BOUNCE;
        ssize_t moved = op == VD_REDIRECT_READ ? pread(fd, buffer, piece, (off_t)offset)
                                               : pwrite(fd, buffer, piece, (off_t)offset);
        if (moved < 0 && errno == EINTR)
            continue;
        if (moved <= 0)
            return moved == 0 ? EIO : errno;
        buffer += moved;
        offset += (uint64_t)moved;
        length -= (uint64_t)moved;
    }
    return 0;
}

/* The same through an aligned buffer, for a caller's buffer that is not. */
static int vd_redirect_bounced(int fd, enum vd_redirect_op op, uint64_t offset, uint8_t *buffer,
                               uint64_t length)
{
    void *bounce = NULL;
    if (posix_memalign(&bounce, VD_REDIRECT_ALIGNMENT, VD_REDIRECT_BOUNCE) != 0)
        return ENOMEM;
    int error_number = 0;
    while (error_number == 0 && length > 0) {
        size_t piece = length < VD_REDIRECT_BOUNCE ? (size_t)length : VD_REDIRECT_BOUNCE;
        if (op == VD_REDIRECT_WRITE)
            memcpy(bounce, buffer, piece);
        error_number = vd_redirect_transfer(fd, op, offset, bounce, piece);
        if (error_number == 0 && op == VD_REDIRECT_READ)
            memcpy(buffer, bounce, piece);
        buffer += piece;
        offset += piece;
        length -= piece;
    }
    free(bounce);
    return error_number;
}

/* One op on one stretch: [offset, offset + length) of the device
 * (`device`, offsets relative to the view) or of the exported file. */
static uint32_t vd_redirect_part(vd_redirect *redirect, int device, enum vd_redirect_op op,
                                 uint64_t offset, uint8_t *buffer, uint64_t length)
{
    uint32_t status = VD_ERROR_SUCCESS;
    int fd = vd_redirect_open(redirect, device, op != VD_REDIRECT_READ, &status);
    if (fd < 0)
        return status;
    int error_number = 0;
    if (op == VD_REDIRECT_UNMAP && device) {
        uint64_t range[2] = { offset, length };
        error_number = ioctl(fd, BLKDISCARD, range) == 0 ? 0 : errno;
    } else if (op == VD_REDIRECT_UNMAP) {
        error_number = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                                 (off_t)length) == 0 ? 0 : errno;
    } else if (!device || (uintptr_t)buffer % VD_REDIRECT_ALIGNMENT == 0) {
        error_number = vd_redirect_transfer(fd, op, offset, buffer, length);
    } else {
        error_number = vd_redirect_bounced(fd, op, offset, buffer, length);
    }
    close(fd);
    return error_number == 0 ? VD_ERROR_SUCCESS : vd_redirect_failed(redirect, error_number);
}

/* Splits a request into the stretch the device shows and the stretches
 * before and after it, which only the exported file has. */
static uint32_t vd_redirect_move(vd_redirect *redirect, enum vd_redirect_op op, uint64_t offset,
                                 uint8_t *buffer, uint64_t length)
{
    if (op != VD_REDIRECT_READ && redirect->read_only)
        return vd_fail(VD_ERROR_ACCESS_DENIED, "the disk is attached read-only");
    uint64_t end = offset + length;
    uint64_t view_start = redirect->view_offset;
    uint64_t view_end = view_start + redirect->view_length;
    uint32_t status = VD_ERROR_SUCCESS;
    if (offset < view_start) {
        uint64_t stop = end < view_start ? end : view_start;
        status = vd_redirect_part(redirect, 0, op, offset, buffer, stop - offset);
    }
    uint64_t inner_start = offset > view_start ? offset : view_start;
    uint64_t inner_end = end < view_end ? end : view_end;
    if (status == VD_ERROR_SUCCESS && inner_start < inner_end)
        status = vd_redirect_part(redirect, 1, op, inner_start - view_start,
                                  buffer != NULL ? buffer + (inner_start - offset) : NULL,
                                  inner_end - inner_start);
    if (status == VD_ERROR_SUCCESS && end > view_end) {
        uint64_t start = offset > view_end ? offset : view_end;
        status = vd_redirect_part(redirect, 0, op, start,
                                  buffer != NULL ? buffer + (start - offset) : NULL, end - start);
    }
    return status;
}

uint32_t vd_redirect_read(vd_redirect *redirect, uint64_t offset, void *buffer, uint64_t length)
{
    return vd_redirect_move(redirect, VD_REDIRECT_READ, offset, buffer, length);
}

uint32_t vd_redirect_write(vd_redirect *redirect, uint64_t offset, const void *buffer,
                           uint64_t length)
{
    /* Only read from: pwrite takes the bytes it is given. */
    return vd_redirect_move(redirect, VD_REDIRECT_WRITE, offset, (uint8_t *)(uintptr_t)buffer,
                            length);
}

uint32_t vd_redirect_unmap(vd_redirect *redirect, uint64_t offset, uint64_t length)
{
    return vd_redirect_move(redirect, VD_REDIRECT_UNMAP, offset, NULL, length);
}

uint32_t vd_redirect_flush(vd_redirect *redirect)
{
    /* Detached: the detach flushed everything written through the device. */
    if (redirect->read_only || atomic_load_explicit(&redirect->gone, memory_order_acquire))
        return VD_ERROR_SUCCESS;
    uint32_t status = VD_ERROR_SUCCESS;
    int fd = vd_redirect_open(redirect, 1, 0, &status);
    if (fd < 0)
        return status == VD_ERROR_NOT_READY ? VD_ERROR_SUCCESS : status;
    /* The loop passes it to the exported file, whose server flushes the
     * whole disk: what went to the file outside the view too. */
    int error_number = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return error_number == 0 ? VD_ERROR_SUCCESS : vd_redirect_failed(redirect, error_number);
}

#else

/* No permanent export off Linux (api/attach_server.c): nothing redirects. */
uint32_t vd_redirect_begin(vd_disk *disk, const vd_attach_view *view,
                           const vd_attach_binding *binding)
{
    (void)disk, (void)view, (void)binding;
    return VD_ERROR_NOT_SUPPORTED;
}

void vd_redirect_detached(vd_disk *disk)
{
    (void)disk;
}

int vd_redirect_read_only(const vd_redirect *redirect)
{
    (void)redirect;
    return 1;
}

void vd_redirect_end(vd_disk *disk)
{
    (void)disk;
}

uint32_t vd_redirect_read(vd_redirect *redirect, uint64_t offset, void *buffer, uint64_t length)
{
    (void)redirect, (void)offset, (void)buffer, (void)length;
    return VD_ERROR_NOT_READY;
}

uint32_t vd_redirect_write(vd_redirect *redirect, uint64_t offset, const void *buffer,
                           uint64_t length)
{
    (void)redirect, (void)offset, (void)buffer, (void)length;
    return VD_ERROR_NOT_READY;
}

uint32_t vd_redirect_unmap(vd_redirect *redirect, uint64_t offset, uint64_t length)
{
    (void)redirect, (void)offset, (void)length;
    return VD_ERROR_NOT_READY;
}

uint32_t vd_redirect_flush(vd_redirect *redirect)
{
    (void)redirect;
    return VD_ERROR_SUCCESS;
}
#endif

uint32_t vd_redirect_check_update(const vd_disk *disk)
{
    if (vd_redirect_of(disk) == NULL)
        return VD_ERROR_SUCCESS;
    return vd_fail(VD_ERROR_VHD_INVALID_STATE,
                   "the image is (or was) served by a permanent attach's server process, whose "
                   "state this handle does not share: close the handle and open the image "
                   "again once it is detached");
}
