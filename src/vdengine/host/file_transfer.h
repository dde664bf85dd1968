/* Copying bytes from an image's file into another file (a conversion's raw
 * destination, disk/content_copy.h) without passing them through the
 * process where the host can: copy_file_range(2) on Linux, which copies in
 * the kernel (or shares the blocks, on file systems that can), and pread +
 * pwrite where it cannot (another file system: EXDEV; a file system or
 * kernel without it: EINVAL, ENOSYS, EOPNOTSUPP; other systems). */
#ifndef VDENGINE_FILE_TRANSFER_H
#define VDENGINE_FILE_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "host/io.h"

/* One transfer's state: the destination, and whether the kernel still
 * copies (once it refused, the pread + pwrite way is used from then on). */
typedef struct vd_file_transfer {
    vd_file destination;   /* fd and writable set; never closed here */
    int kernel_copy;       /* 0 once copy_file_range was refused */
} vd_file_transfer;

/* A transfer into the descriptor `fd`, open for writing (the caller keeps
 * it); it holds nothing to release. */
void vd_file_transfer_begin(vd_file_transfer *transfer, int fd);

/* Bytes [from, from + length) of `source` written at `to` in the
 * destination, except the holes of `source` (SEEK_HOLE), which are left
 * alone: the destination must read zeros there already (a new file, sized
 * with ftruncate).  HANDLE_EOF when `source` ends first. */
uint32_t vd_file_transfer_copy(vd_file_transfer *transfer, const vd_file *source, uint64_t from,
                               uint64_t to, uint64_t length);

/* `length` bytes of `buffer` written at `to` in the destination. */
uint32_t vd_file_transfer_write(vd_file_transfer *transfer, uint64_t to, const void *buffer,
                                size_t length);

#endif
