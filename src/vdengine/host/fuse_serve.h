/* The FUSE requests of a single-file export (fuse_export.c): one request
 * in, one reply out, on the /dev/fuse descriptor the request came from.
 * Kept apart from the mount and the threads so that the protocol is one
 * concern and the export's lifetime another. */
#ifndef VDENGINE_FUSE_SERVE_H
#define VDENGINE_FUSE_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api/handle.h"

typedef struct vd_fuse_server {
    vd_disk *disk;
    int read_only;
    uint32_t max_io;              /* max_read and max_write, bytes */
    uint32_t uid, gid;            /* the file's owner: who mounted it */
    uint64_t start_time;          /* seconds: the file's times */
    /* Writes that cover part of a sector read the sector, change it and
     * write it back; two of them on one sector must not interleave. */
    pthread_mutex_t partial_lock;
    /* INIT: 0 until the kernel's handshake is answered, then 1 (accepted)
     * or -1 (refused), with `init_changed` signalled. */
    pthread_mutex_t init_lock;
    pthread_cond_t init_changed;
    int init_state;
} vd_fuse_server;

/* One worker's buffers, allocated once: `request` holds a request with the
 * largest write, `data` the sectors around the largest unaligned read or
 * write. */
typedef struct vd_fuse_buffers {
    uint8_t *request;
    size_t request_size;
    uint8_t *data;
    size_t data_size;
} vd_fuse_buffers;

/* Sizes the two buffers need for `server` (max_io, the disk's sector). */
size_t vd_fuse_request_buffer_size(const vd_fuse_server *server);
size_t vd_fuse_data_buffer_size(const vd_fuse_server *server);

/* Answers the request of `length` bytes in buffers->request, writing the
 * reply (if the request has one) to `fd`. */
void vd_fuse_serve(vd_fuse_server *server, int fd, vd_fuse_buffers *buffers, size_t length);

#endif
