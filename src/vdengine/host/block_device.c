/* Block devices as read-only content sources: see block_device.h. */
#define _GNU_SOURCE
#include "host/block_device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/fs.h>
#elif defined(__APPLE__)
#include <sys/disk.h>
#endif

#include "base/vd_errors.h"

int vd_block_device_is(const char *path)
{
    struct stat info;
    return path != NULL && stat(path, &info) == 0 && S_ISBLK(info.st_mode);
}

/* The kernel's answer for an open device; NOT_SUPPORTED where there is no
 * ioctl to ask. */
static uint32_t vd_block_device_query(int fd, vd_block_device_geometry *geometry)
{
#if defined(__linux__)
    uint64_t size = 0;
    int logical = 0;
    unsigned int physical = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0 || ioctl(fd, BLKSSZGET, &logical) != 0
        || ioctl(fd, BLKPBSZGET, &physical) != 0)
        return vd_error_from_errno(errno);
    geometry->size = size;
    geometry->logical_sector_size = (uint32_t)logical;
    geometry->physical_sector_size = physical;
    return VD_ERROR_SUCCESS;
#elif defined(__APPLE__)
    uint32_t block_size = 0;
    uint64_t block_count = 0;
    uint32_t physical = 0;
    if (ioctl(fd, DKIOCGETBLOCKSIZE, &block_size) != 0
        || ioctl(fd, DKIOCGETBLOCKCOUNT, &block_count) != 0)
        return vd_error_from_errno(errno);
    if (ioctl(fd, DKIOCGETPHYSICALBLOCKSIZE, &physical) != 0)
        physical = block_size;
    geometry->size = block_count * block_size;
    geometry->logical_sector_size = block_size;
    geometry->physical_sector_size = physical;
    return VD_ERROR_SUCCESS;
#else
    (void)fd, (void)geometry;
    return VD_ERROR_NOT_SUPPORTED;
#endif
}

uint32_t vd_block_device_open(vd_file *file, const char *path, vd_block_device_geometry *geometry)
{
    memset(file, 0, sizeof *file);
    file->fd = -1;
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return vd_error_from_errno(errno);
    struct stat info;
    uint32_t status = fstat(fd, &info) != 0 ? vd_error_from_errno(errno)
                      : !S_ISBLK(info.st_mode) ? VD_ERROR_ACCESS_DENIED
                      : vd_block_device_query(fd, geometry);
    if (status == VD_ERROR_SUCCESS && (geometry->logical_sector_size == 0
                                       || geometry->size % geometry->logical_sector_size != 0))
        status = VD_ERROR_NOT_SUPPORTED;
    if (status == VD_ERROR_SUCCESS) {
        file->path = strdup(path);
        if (file->path == NULL)
            status = VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    if (status != VD_ERROR_SUCCESS) {
        close(fd);
        return status;
    }
    file->fd = fd;
    file->size = geometry->size;
    return VD_ERROR_SUCCESS;
}
