/* Copies between a disk's content and a file at the same offsets, for
 * conversions to and from a raw image (vd_engine_copy_to_file and
 * vd_engine_copy_from_file, vdengine.h).
 *
 * Into a file:  *
 * the chain is walked run by run with the formats' map ops (image.h): a run
 * a file holds byte for byte is copied from that file (the child's or the
 * ancestor's whose content shows there), in the kernel where the host can
 * (host/file_transfer.h); a run that reads zeros is not written; any other
 * run is read through the chain, which merges child and parent sector by
 * sector, and written but its all-zero pieces.  So the destination, a new
 * file that reads zeros until written, ends up with the disk's content,
 * with holes where the disk holds nothing. */
#ifndef VDENGINE_CONTENT_COPY_H
#define VDENGINE_CONTENT_COPY_H

#include <stdint.h>

#include "api/handle.h"

/* [offset, offset + length) of `disk` (whole sectors, inside the disk:
 * INVALID_PARAMETER otherwise) into the descriptor `fd`, open for writing,
 * at the same offsets.  Holds the content gate shared, as reads do. */
uint32_t vd_content_copy_to_file(vd_disk *disk, uint64_t offset, uint64_t length, int fd);

/* Bytes [offset, offset + length) of the file open for reading at `fd`
 * written into `disk` at the same offsets (vd_content_write), but for the
 * all-zero ones among its pieces: `piece` bytes each, aligned to multiples
 * of `piece` (a whole number of sectors dividing the disk's block, so a
 * piece lies in one block and a block of zeros stays unallocated in a new
 * dynamic disk).  A piece of data is written through the disk only as far
 * as its first 4 KiB, which allocates its block in a new disk; the rest of
 * it and the pieces of data after it in the block go into the disk's file
 * where the block lies (in the kernel for a file in memory, through a
 * buffer into space reserved first elsewhere), unless a mirror or an
 * attachment's redirect must see the writes or the disk's own file does not
 * hold the place (a differencing child's unmarked sectors): those go
 * through the disk.  The disk's metadata stays the disk's: its flush or
 * close commits the blocks allocated (their data written before).
 * HANDLE_EOF when the file ends first; INVALID_PARAMETER for a bad range,
 * piece or `fd`. */
uint32_t vd_content_copy_from_file(vd_disk *disk, int fd, uint64_t offset, uint64_t length,
                                   uint32_t piece);

#endif
