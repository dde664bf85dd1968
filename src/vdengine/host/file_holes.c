/* Holes of a host file (file_holes.h). */
#define _GNU_SOURCE   /* SEEK_DATA / SEEK_HOLE */

#include "host/file_holes.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int vd_file_stat_may_have_holes(const struct stat *info)
{
    return (uint64_t)info->st_blocks * 512u < (uint64_t)info->st_size;
}

int vd_file_may_have_holes(const vd_file *file)
{
    struct stat info;
    if (fstat(file->fd, &info) != 0)
        return 1;
    return vd_file_stat_may_have_holes(&info);
}

uint64_t vd_file_next_data(const vd_file *file, uint64_t offset, uint64_t end)
{
#if defined(SEEK_DATA)
    if (offset >= end || offset > (uint64_t)INT64_MAX)
        return offset;
    off_t found = lseek(file->fd, (off_t)offset, SEEK_DATA);
    if (found >= 0)
        return (uint64_t)found < end ? (uint64_t)found : end;
    if (errno != ENXIO)
        return offset;   /* a file system that cannot tell: all data */
    /* No data from `offset` to the file's end (ENXIO: or past it). */
    struct stat info;
    if (fstat(file->fd, &info) != 0 || (uint64_t)info.st_size <= offset)
        return offset;
    return (uint64_t)info.st_size < end ? (uint64_t)info.st_size : end;
#else
    (void)file, (void)end;
    return offset;
#endif
}

int vd_file_data_extent(const vd_file *file, uint64_t offset, uint64_t *start, uint64_t *end)
{
#if defined(SEEK_DATA) && defined(SEEK_HOLE)
    if (offset > (uint64_t)INT64_MAX)
        return -1;
    off_t found = lseek(file->fd, (off_t)offset, SEEK_DATA);
    if (found < 0)
        return errno == ENXIO ? 0 : -1;
    off_t hole = lseek(file->fd, found, SEEK_HOLE);
    *start = (uint64_t)found;
    *end = hole > found ? (uint64_t)hole : UINT64_MAX;
    return 1;
#else
    (void)file, (void)offset, (void)start, (void)end;
    return -1;
#endif
}
