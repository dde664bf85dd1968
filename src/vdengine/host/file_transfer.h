/* Copying bytes from an image's file into another file (a conversion's raw
 * destination, disk/content_copy.h, or a new image made from a source,
 * disk/source_copy.h) without passing them through the
 * process where the host can: copy_file_range(2) on Linux, which copies in
 * the kernel (or shares the blocks, on file systems that can), and pread +
 * pwrite where it cannot (another file system: EXDEV; a file system or
 * kernel without it: EINVAL, ENOSYS, EOPNOTSUPP; other systems) or should
 * not (a run whose source and destination lie at different offsets within
 * their pages, which the kernel would copy slower than a buffer does). */
#ifndef VDENGINE_FILE_TRANSFER_H
#define VDENGINE_FILE_TRANSFER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "host/io.h"

/* The file pairs between which the kernel refused copy_file_range, kept
 * for as long as the copy they belong to: a copy made in many calls (a
 * conversion, 64 MiB a call) asks the kernel once per pair and takes the
 * pread + pwrite way at once from then on.  Shared by the calls of one
 * handle, which may run in parallel, hence the lock. */
#define VD_COPY_REFUSALS_MAX 8u

typedef struct vd_copy_pair {
    uint64_t source_device, source_inode;
    uint64_t destination_device, destination_inode;
} vd_copy_pair;

typedef struct vd_copy_refusals {
    pthread_mutex_t lock;
    uint32_t count;                        /* past MAX, the oldest pair gives way */
    vd_copy_pair pairs[VD_COPY_REFUSALS_MAX];
} vd_copy_refusals;

/* 0 on success, an errno value otherwise. */
int vd_copy_refusals_init(vd_copy_refusals *refusals);
void vd_copy_refusals_destroy(vd_copy_refusals *refusals);

/* The source files a transfer remembers at once (an image's file, or a
 * flattened chain's few): each is asked about once, not at every switch
 * between them; a longer chain asks again, which costs, but is correct. */
#define VD_FILE_TRANSFER_SOURCES 4u

/* A source file, as one fstat described it: its identity for the
 * refusals, whether the kernel refused to copy from it into the
 * destination, whether it may have holes, and the extent of data found in
 * it last (the runs of a block lie in one extent, asked for once). */
typedef struct vd_transfer_source {
    const vd_file *file;       /* NULL: an unused entry */
    uint64_t device, inode;
    int refused;
    int may_have_holes;
    uint64_t extent_start, extent_end;
} vd_transfer_source;

/* One transfer's state: the destination, where refusals are remembered,
 * and the sources it copied from. */
typedef struct vd_file_transfer {
    vd_file destination;   /* fd and writable set; never closed here */
    vd_copy_refusals *refusals;
    int destination_known;
    uint64_t destination_device, destination_inode;
    vd_transfer_source sources[VD_FILE_TRANSFER_SOURCES];
    vd_transfer_source *source;    /* the entry of the current source; NULL before one */
    unsigned next_source;          /* the entry a new source takes */
} vd_file_transfer;

/* A transfer into the descriptor `fd`, open for writing (the caller keeps
 * it), remembering refused pairs in `refusals` (the caller's, initialised;
 * it outlives the transfer); it holds nothing to release. */
void vd_file_transfer_begin(vd_file_transfer *transfer, int fd, vd_copy_refusals *refusals);

/* The entry of `source`, made the transfer's current source: asked of the
 * host when the file is new to the transfer, in the entry used longest
 * ago.  NULL when fstat fails (nothing is known of the file). */
vd_transfer_source *vd_file_transfer_source(vd_file_transfer *transfer, const vd_file *source);

/* Bytes [from, from + length) of `source` written at `to` in the
 * destination, except the holes of `source` (SEEK_HOLE), which are left
 * alone: the destination must read zeros there already (a new file, sized
 * with ftruncate).  HANDLE_EOF when `source` ends first. */
uint32_t vd_file_transfer_copy(vd_file_transfer *transfer, const vd_file *source, uint64_t from,
                               uint64_t to, uint64_t length);

/* Bytes [from, from + length) of `source`, which holds data there (no hole
 * to skip), written at `to` in the destination. */
uint32_t vd_file_transfer_copy_data(vd_file_transfer *transfer, const vd_file *source,
                                    uint64_t from, uint64_t to, uint64_t length);

/* `length` bytes of `buffer` written at `to` in the destination. */
uint32_t vd_file_transfer_write(vd_file_transfer *transfer, uint64_t to, const void *buffer,
                                size_t length);

#endif
