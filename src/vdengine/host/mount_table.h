/* The host's mounted file systems, from /proc/self/mountinfo: which mount
 * holds a file, and where a block device is mounted.  These are the Linux
 * spellings of what Windows names volumes (\\?\Volume{GUID}\): a mount
 * point, or the device when nothing is mounted. */
#ifndef VDENGINE_MOUNT_TABLE_H
#define VDENGINE_MOUNT_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* The mount point of the file system that holds the absolute path `path`
 * (the longest mount point that is a leading part of it, the latest mount
 * winning, as the kernel resolves paths), into `out`.  Returns 0 when the
 * table cannot be read or `out` is too small. */
int vd_mount_point_of(const char *path, char *out, size_t size);

/* The first mount point of the block device `device` (st_rdev), into
 * `out`; 0 when it is not mounted. */
int vd_mount_point_of_device(uint64_t device, char *out, size_t size);

#endif
