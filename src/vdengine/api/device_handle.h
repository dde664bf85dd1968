/* Device handles: what GetStorageDependencyInformation takes on Windows
 * besides a virtual disk, a handle to a disk (\\.\PhysicalDriveN) or to a
 * volume or its root directory, opened with CreateFile.  The engine has no
 * CreateFile, so vd_engine_open_device (vdengine.h) makes one: a HANDLE of
 * the engine's table for a block device node (/dev/loopN: a disk) or a
 * directory (a mount point or any directory in it: the file system that
 * holds it, a volume).  It is closed with vd_engine_close_handle, and every
 * other function refuses it with ERROR_INVALID_HANDLE. */
#ifndef VDENGINE_DEVICE_HANDLE_H
#define VDENGINE_DEVICE_HANDLE_H

#include <stdint.h>

typedef struct vd_device_target {
    char *path;          /* as opened, made absolute (realpath) */
    int is_disk;         /* a block device node; otherwise a directory */
    uint64_t device;     /* the block device: st_rdev of a node, st_dev of a directory */
    int loop_number;     /* N when `device` is /dev/loopN, -1 otherwise */
} vd_device_target;

/* Frees a target; NULL is allowed. */
void vd_device_target_free(vd_device_target *target);

#endif
