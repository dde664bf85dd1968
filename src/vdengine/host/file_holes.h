/* Holes of a host file (SEEK_DATA): ranges the file system keeps no data
 * for, which read zeros, so that a scan for zeros (disk/compact_space.c)
 * and a copy that leaves holes alone (host/file_transfer.c,
 * disk/source_copy.c) need not read them. */
#ifndef VDENGINE_FILE_HOLES_H
#define VDENGINE_FILE_HOLES_H

#include <stdint.h>

#include "host/io.h"

/* Whether the file may have holes: fewer bytes allocated than its size.
 * A file without any (most images) is read without looking for them, and
 * that matters: SEEK_HOLE walks the file's pages up to the next hole, on
 * tmpfs all the way to the end of a file that has none. */
int vd_file_may_have_holes(const vd_file *file);

/* The same, from what fstat told of the file. */
struct stat;
int vd_file_stat_may_have_holes(const struct stat *info);

/* The first offset in [offset, end) that may hold data: every byte before
 * it reads zeros.  `end` when the range is one hole; `offset` when the
 * host cannot tell.  Bytes past the file's end are no hole: the range is
 * cut there, so that a read of them fails as it would without the search. */
uint64_t vd_file_next_data(const vd_file *file, uint64_t offset, uint64_t end);

/* The extent of data the file holds at or after `offset` (SEEK_DATA, then
 * SEEK_HOLE): 1 with [*start, *end) set (*end UINT64_MAX when the host
 * does not say where it ends); 0 when the file holds no data from `offset`
 * to its end; -1 when the host cannot tell, so that everything may be
 * data.  For copies that leave holes alone (host/file_transfer.c,
 * disk/source_copy.c). */
int vd_file_data_extent(const vd_file *file, uint64_t offset, uint64_t *start, uint64_t *end);

#endif
