/* Copying bytes from one place of a file to another (block moves: a
 * compact's, formats/vhd/vhd_compact.c and formats/vhdx/vhdx_compact.c,
 * and the ones that make room for a growing block table,
 * formats/vhd/vhd_bat_grow.c and formats/vhdx/vhdx_bat_grow.c) or into
 * another file (host/file_transfer.c): in the kernel (copy_file_range(2)
 * on Linux) where it can, else through the process in pieces, so that a
 * block of hundreds of MiB needs no buffer of its size. */
#ifndef VDENGINE_FILE_COPY_H
#define VDENGINE_FILE_COPY_H

#include <stdint.h>

#include "host/io.h"

/* Bytes [from, from + length) written at `to`; the two ranges must not
 * overlap.  In the kernel where it copies, the rest through a buffer.
 * Nothing is flushed. */
uint32_t vd_file_copy_range(const vd_file *file, uint64_t from, uint64_t to, uint64_t length);

/* Bytes [from, from + length) of `source` written at `to` in
 * `destination` (the same file too, as vd_file_copy_range), through a
 * buffer.  Nothing is flushed. */
uint32_t vd_file_copy_between(const vd_file *source, uint64_t from, const vd_file *destination,
                              uint64_t to, uint64_t length);
/* The same through the caller's `buffer` of `capacity` bytes, for a copy
 * of many runs that keeps one buffer, still in the CPU's cache. */
uint32_t vd_file_copy_through(const vd_file *source, uint64_t from, const vd_file *destination,
                              uint64_t to, uint64_t length, void *buffer, size_t capacity);

/* As much of that copy as the kernel does (copy_file_range on Linux: the
 * bytes never pass through the process, and a file system that can shares
 * them); *copied says how far it got.  Success with *copied < length: the
 * host refuses such a copy (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP; other
 * systems) or stopped short of it (an answer of 0 bytes, which some file
 * systems give before the source's end), and the caller copies the rest
 * itself, which also finds a real end of the source.  Each call of the
 * kernel is one file change for fault injection, as a write is.  Nothing
 * is flushed. */
uint32_t vd_file_copy_in_kernel(const vd_file *source, uint64_t from, const vd_file *destination,
                                uint64_t to, uint64_t length, uint64_t *copied);

#endif
