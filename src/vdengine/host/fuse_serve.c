/* FUSE requests of the single-file export: the root inode is the file, and
 * only the operations a regular file sees are answered (fuse_serve.h).
 *
 * The kernel passes offsets and lengths of any alignment (a program may
 * pread 100 bytes at offset 7); the engine's data path takes whole sectors.
 * Reads read the enclosing sectors and reply from the middle of them;
 * writes that cover part of a sector read it, merge and write it back. */
#if defined(__linux__)
#define _GNU_SOURCE
#include "host/fuse_serve.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "base/vd_errors.h"
#include "disk/content.h"

/* Kernels older than this lack max_pages (1 MiB requests) and parallel
 * direct writes; no kernel the engine supports is. */
#define VD_FUSE_MINIMUM_MINOR 28

/* Requests the kernel may queue in the background (a loop device's direct
 * I/O is all background): enough for a queue depth of 64. */
#define VD_FUSE_MAX_BACKGROUND 64

/* Seconds the kernel may keep the file's attributes: short, so that a size
 * changed by a resize is seen soon without a notification. */
#define VD_FUSE_ATTRIBUTE_SECONDS 1

static uint32_t sector_of(const vd_fuse_server *server)
{
    return server->disk->image.logical_sector_size;
}

size_t vd_fuse_request_buffer_size(const vd_fuse_server *server)
{
    /* The kernel refuses reads of /dev/fuse into a buffer that cannot take
     * a header, a write header and max_write bytes; a page is room for
     * both headers. */
    return (size_t)server->max_io + 4096;
}

size_t vd_fuse_data_buffer_size(const vd_fuse_server *server)
{
    return (size_t)server->max_io + 2 * (size_t)sector_of(server);
}

/* errno for an engine answer. */
static int errno_for(uint32_t status)
{
    switch (status) {
    case VD_ERROR_SUCCESS:
        return 0;
    case VD_ERROR_INVALID_PARAMETER:
        return EINVAL;
    case VD_ERROR_ACCESS_DENIED:
        return EACCES;
    case VD_ERROR_DISK_FULL:
        return ENOSPC;
    case VD_ERROR_DISK_QUOTA_EXCEEDED:
        return EDQUOT;
    case VD_ERROR_NOT_ENOUGH_MEMORY:
    case VD_ERROR_OUTOFMEMORY:
        return ENOMEM;
    case VD_ERROR_NOT_SUPPORTED:
        return EOPNOTSUPP;
    default:
        return EIO;
    }
}

/* Writes a reply: the header, then `body` and `data` unless `error` (an
 * errno) is set.  A reply the kernel no longer wants (the request was
 * interrupted, ENOENT) or cannot take (the connection is gone) is dropped:
 * there is nobody left to tell. */
static void reply(int fd, uint64_t unique, int error, const void *body, size_t body_length,
                  const void *data, size_t data_length)
{
    struct fuse_out_header header;
    memset(&header, 0, sizeof header);
    header.unique = unique;
    header.error = -error;
    struct iovec pieces[3] = {
        { &header, sizeof header },
        { (void *)body, body_length },
        { (void *)data, data_length },
    };
    int count = error != 0 ? 1 : data_length != 0 ? 3 : body_length != 0 ? 2 : 1;
    header.len = (uint32_t)(sizeof header + (count > 1 ? body_length : 0)
                            + (count > 2 ? data_length : 0));
    ssize_t written;
    do
        written = writev(fd, pieces, count);
    while (written < 0 && errno == EINTR);
}

static void reply_error(int fd, uint64_t unique, int error)
{
    reply(fd, unique, error, NULL, 0, NULL, 0);
}

static void fill_attributes(const vd_fuse_server *server, struct fuse_attr *attributes)
{
    memset(attributes, 0, sizeof *attributes);
    uint64_t size = server->disk->image.virtual_size;
    attributes->ino = FUSE_ROOT_ID;
    attributes->size = size;
    attributes->blocks = size / 512;
    attributes->atime = attributes->mtime = attributes->ctime = server->start_time;
    attributes->mode = S_IFREG | (server->read_only ? 0400u : 0600u);
    attributes->nlink = 1;
    attributes->uid = server->uid;
    attributes->gid = server->gid;
    attributes->blksize = 4096;
}

static void serve_init(vd_fuse_server *server, int fd, uint64_t unique,
                       const struct fuse_init_in *in)
{
    struct fuse_init_out out;
    memset(&out, 0, sizeof out);
    out.major = FUSE_KERNEL_VERSION;
    out.minor = FUSE_KERNEL_MINOR_VERSION;
    if (in->major > FUSE_KERNEL_VERSION) {
        /* The kernel offers a newer major version: name ours, it asks again. */
        reply(fd, unique, 0, &out, sizeof out, NULL, 0);
        return;
    }
    int accepted = in->major == FUSE_KERNEL_VERSION && in->minor >= VD_FUSE_MINIMUM_MINOR;
    if (accepted) {
        /* FUSE_ASYNC_DIO: without it the kernel answers an asynchronous
         * direct I/O (every request of a loop device with direct I/O) by
         * waiting for it in the submitter, so a loop device reaches the
         * export one request at a time whatever its queue depth. */
        uint32_t wanted = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_ASYNC_DIO;
        out.max_readahead = in->max_readahead;
        out.flags = in->flags & wanted;
        out.max_background = VD_FUSE_MAX_BACKGROUND;
        out.congestion_threshold = VD_FUSE_MAX_BACKGROUND * 3 / 4;
        out.max_write = server->max_io;
        out.time_gran = 1000000000u;   /* whole seconds: the times never change */
        out.max_pages = (uint16_t)(server->max_io / 4096);
        reply(fd, unique, 0, &out, sizeof out, NULL, 0);
    } else {
        reply_error(fd, unique, EPROTO);
    }
    pthread_mutex_lock(&server->init_lock);
    server->init_state = accepted ? 1 : -1;
    pthread_cond_broadcast(&server->init_changed);
    pthread_mutex_unlock(&server->init_lock);
}

static void serve_getattr(vd_fuse_server *server, int fd, uint64_t unique)
{
    struct fuse_attr_out out;
    memset(&out, 0, sizeof out);
    out.attr_valid = VD_FUSE_ATTRIBUTE_SECONDS;
    fill_attributes(server, &out.attr);
    reply(fd, unique, 0, &out, sizeof out, NULL, 0);
}

/* The size is the disk's: a truncate to any other size is refused (the
 * O_TRUNC of `dd of=FILE` without conv=notrunc lands here).  Mode, owner
 * and time changes are accepted and forgotten: the file reports the
 * export's own. */
static void serve_setattr(vd_fuse_server *server, int fd, uint64_t unique,
                          const struct fuse_setattr_in *in)
{
    if ((in->valid & FATTR_SIZE) && in->size != server->disk->image.virtual_size) {
        reply_error(fd, unique, EPERM);
        return;
    }
    serve_getattr(server, fd, unique);
}

static void serve_open(vd_fuse_server *server, int fd, uint64_t unique,
                       const struct fuse_open_in *in)
{
    if (server->read_only && (in->flags & O_ACCMODE) != O_RDONLY) {
        reply_error(fd, unique, EROFS);
        return;
    }
    struct fuse_open_out out;
    memset(&out, 0, sizeof out);
    /* No page cache for this file; and direct writes of one file may run
     * in parallel (the kernel serialises them on the inode otherwise). */
    out.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
    reply(fd, unique, 0, &out, sizeof out, NULL, 0);
}

/* [*start, *end): the sectors that hold [offset, offset + length). */
static void enclosing_sectors(const vd_fuse_server *server, uint64_t offset, uint64_t length,
                              uint64_t *start, uint64_t *end)
{
    uint64_t sector = sector_of(server);
    *start = offset - offset % sector;
    *end = (offset + length + sector - 1) / sector * sector;
}

static void serve_read(vd_fuse_server *server, int fd, vd_fuse_buffers *buffers, uint64_t unique,
                       const struct fuse_read_in *in)
{
    uint64_t size = server->disk->image.virtual_size;
    if (in->size > server->max_io) {
        reply_error(fd, unique, EINVAL);
        return;
    }
    if (in->offset >= size || in->size == 0) {
        reply(fd, unique, 0, NULL, 0, NULL, 0);      /* end of file */
        return;
    }
    uint64_t length = in->size < size - in->offset ? in->size : size - in->offset;
    uint64_t start, end;
    enclosing_sectors(server, in->offset, length, &start, &end);
    uint32_t status = vd_content_read(server->disk, start, buffers->data, end - start);
    if (status != VD_ERROR_SUCCESS) {
        reply_error(fd, unique, errno_for(status));
        return;
    }
    reply(fd, unique, 0, NULL, 0, buffers->data + (in->offset - start), (size_t)length);
}

/* Writes [offset, offset + length) of `bytes` where the range covers part
 * of its first or last sector: those sectors are read, the bytes merged in
 * and the whole span written, under the lock that keeps two such merges of
 * one sector apart. */
static uint32_t write_partial(vd_fuse_server *server, vd_fuse_buffers *buffers, uint64_t offset,
                              const uint8_t *bytes, uint64_t length)
{
    uint64_t sector = sector_of(server);
    uint64_t start, end;
    enclosing_sectors(server, offset, length, &start, &end);
    pthread_mutex_lock(&server->partial_lock);
    uint32_t status = VD_ERROR_SUCCESS;
    if (offset != start)
        status = vd_content_read(server->disk, start, buffers->data, sector);
    if (status == VD_ERROR_SUCCESS && (offset + length) % sector != 0
        && (end - sector != start || offset == start))
        status = vd_content_read(server->disk, end - sector, buffers->data + (end - sector - start),
                                 sector);
    if (status == VD_ERROR_SUCCESS) {
        memcpy(buffers->data + (offset - start), bytes, (size_t)length);
        status = vd_content_write(server->disk, start, buffers->data, end - start);
    }
    pthread_mutex_unlock(&server->partial_lock);
    return status;
}

static void serve_write(vd_fuse_server *server, int fd, vd_fuse_buffers *buffers, uint64_t unique,
                        const struct fuse_write_in *in, size_t payload_length)
{
    uint64_t size = server->disk->image.virtual_size;
    if (server->read_only) {
        reply_error(fd, unique, EROFS);
        return;
    }
    if (in->size > server->max_io || in->size > payload_length) {
        reply_error(fd, unique, EINVAL);
        return;
    }
    if (in->offset >= size && in->size != 0) {
        reply_error(fd, unique, ENOSPC);
        return;
    }
    /* A write running past the end writes what fits: a short write, as a
     * block device gives at its last sector. */
    uint64_t length = in->offset >= size ? 0
                      : in->size < size - in->offset ? in->size : size - in->offset;
    const uint8_t *bytes = (const uint8_t *)(in + 1);
    uint64_t sector = sector_of(server);
    uint32_t status = VD_ERROR_SUCCESS;
    if (length == 0)
        status = VD_ERROR_SUCCESS;
    else if (in->offset % sector == 0 && length % sector == 0)
        status = vd_content_write(server->disk, in->offset, bytes, length);
    else
        status = write_partial(server, buffers, in->offset, bytes, length);
    if (status != VD_ERROR_SUCCESS) {
        reply_error(fd, unique, errno_for(status));
        return;
    }
    struct fuse_write_out out;
    memset(&out, 0, sizeof out);
    out.size = (uint32_t)length;
    reply(fd, unique, 0, &out, sizeof out, NULL, 0);
}

static void serve_flush(vd_fuse_server *server, int fd, uint64_t unique)
{
    uint32_t status = server->read_only ? VD_ERROR_SUCCESS : vd_content_flush(server->disk);
    reply_error(fd, unique, errno_for(status));
}

/* A punched hole must read zeros afterwards: allowed where the format's
 * unmap gives zeros whatever a parent holds, for whole sectors. */
static void serve_fallocate(vd_fuse_server *server, int fd, uint64_t unique,
                            const struct fuse_fallocate_in *in)
{
    const vd_disk *disk = server->disk;
    uint64_t sector = sector_of(server);
    int punch = in->mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    if (!punch || server->read_only || !vd_content_can_unmap(disk)
        || !disk->image.ops->unmap_reads_zeros) {
        reply_error(fd, unique, server->read_only && punch ? EROFS : EOPNOTSUPP);
        return;
    }
    uint64_t size = disk->image.virtual_size;
    if (in->offset % sector != 0 || in->length % sector != 0 || in->offset > size
        || in->length > size - in->offset) {
        reply_error(fd, unique, EINVAL);
        return;
    }
    reply_error(fd, unique, errno_for(vd_content_unmap(server->disk, in->offset, in->length)));
}

static void serve_statfs(vd_fuse_server *server, int fd, uint64_t unique)
{
    struct fuse_statfs_out out;
    memset(&out, 0, sizeof out);
    out.st.bsize = out.st.frsize = sector_of(server);
    out.st.blocks = server->disk->image.virtual_size / sector_of(server);
    out.st.files = 1;
    out.st.namelen = 255;
    reply(fd, unique, 0, &out, sizeof out, NULL, 0);
}

void vd_fuse_serve(vd_fuse_server *server, int fd, vd_fuse_buffers *buffers, size_t length)
{
    const struct fuse_in_header *header = (const struct fuse_in_header *)buffers->request;
    if (length < sizeof *header || header->len != length)
        return;    /* the kernel never sends these; nothing sensible to answer */
    const void *body = header + 1;
    size_t body_length = length - sizeof *header;
    uint64_t unique = header->unique;
#define NEEDS(type) \
    if (body_length < sizeof(type)) { reply_error(fd, unique, EINVAL); return; }
    switch (header->opcode) {
    case FUSE_INIT:
        NEEDS(uint32_t[4]);
        serve_init(server, fd, unique, body);
        return;
    case FUSE_GETATTR:
        serve_getattr(server, fd, unique);
        return;
    case FUSE_SETATTR:
        NEEDS(struct fuse_setattr_in);
        serve_setattr(server, fd, unique, body);
        return;
    case FUSE_OPEN:
        NEEDS(struct fuse_open_in);
        serve_open(server, fd, unique, body);
        return;
    case FUSE_READ:
        NEEDS(struct fuse_read_in);
        serve_read(server, fd, buffers, unique, body);
        return;
    case FUSE_WRITE:
        NEEDS(struct fuse_write_in);
        serve_write(server, fd, buffers, unique, body, body_length - sizeof(struct fuse_write_in));
        return;
    case FUSE_FLUSH:
    case FUSE_FSYNC:
        serve_flush(server, fd, unique);
        return;
    case FUSE_FALLOCATE:
        NEEDS(struct fuse_fallocate_in);
        serve_fallocate(server, fd, unique, body);
        return;
    case FUSE_STATFS:
        serve_statfs(server, fd, unique);
        return;
    case FUSE_RELEASE:
    case FUSE_DESTROY:
        reply_error(fd, unique, 0);
        return;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
        return;    /* no reply: each request is answered as soon as it is done */
    case FUSE_LOOKUP:
        reply_error(fd, unique, ENOENT);    /* the root is a file: it has no names */
        return;
    default:
        reply_error(fd, unique, ENOSYS);
        return;
    }
#undef NEEDS
}

#else
/* Off Linux there is no FUSE export (fuse_export.c answers NOT_SUPPORTED). */
typedef int vd_fuse_serve_unused;
#endif
