/* Copying bytes through the process, from one place of a file to another
 * (block moves that make room for a growing block table,
 * formats/vhd/vhd_bat_grow.c and formats/vhdx/vhdx_bat_grow.c) or into
 * another file (host/file_transfer.c, where the kernel cannot copy), in
 * pieces, so that a block of hundreds of MiB needs no buffer of its size. */
#ifndef VDENGINE_FILE_COPY_H
#define VDENGINE_FILE_COPY_H

#include <stdint.h>

#include "host/io.h"

/* Bytes [from, from + length) written at `to`; the two ranges must not
 * overlap.  Nothing is flushed. */
uint32_t vd_file_copy_range(const vd_file *file, uint64_t from, uint64_t to, uint64_t length);

/* Bytes [from, from + length) of `source` written at `to` in
 * `destination` (the same file too, as vd_file_copy_range).  Nothing is
 * flushed. */
uint32_t vd_file_copy_between(const vd_file *source, uint64_t from, const vd_file *destination,
                              uint64_t to, uint64_t length);

#endif
