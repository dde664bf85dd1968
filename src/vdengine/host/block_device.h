/* Block devices as read-only sources of content (CreateVirtualDisk's
 * SourcePath, which Windows lets name a physical disk, \\.\PhysicalDriveN).
 *
 * A block device is not an image: it has no format, no parent and no
 * identifiers, only a size and sector sizes, which the kernel reports. */
#ifndef VDENGINE_BLOCK_DEVICE_H
#define VDENGINE_BLOCK_DEVICE_H

#include <stdint.h>

#include "host/io.h"

typedef struct vd_block_device_geometry {
    uint64_t size;                   /* bytes */
    uint32_t logical_sector_size;
    uint32_t physical_sector_size;
} vd_block_device_geometry;

/* Whether `path` (UTF-8) names a block device (following symbolic links,
 * so /dev/disk/by-id/... names count). */
int vd_block_device_is(const char *path);

/* Opens the block device at `path` for reading and asks the kernel for its
 * geometry.  `file->size` is the device's size, so vd_file_read's range
 * checks apply.  ACCESS_DENIED when `path` is not a block device (or the
 * caller may not read it), NOT_SUPPORTED on a host where the engine cannot
 * ask a device for its size. */
uint32_t vd_block_device_open(vd_file *file, const char *path, vd_block_device_geometry *geometry);

#endif
