/* Loop block devices (/dev/loopN): the Linux device an attached virtual
 * disk becomes, as \\.\PhysicalDriveN is on Windows.
 *
 * Every loop the engine sets up uses direct I/O on its backing file (no
 * second copy of the data in the page cache) and the image's logical
 * sector size as its block size.  Elsewhere than on Linux these answer
 * ERROR_NOT_SUPPORTED. */
#ifndef VDENGINE_LOOP_H
#define VDENGINE_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_loop_request {
    const char *backing_path;   /* the file the device reads and writes */
    uint64_t offset;            /* first byte of the device in that file */
    uint64_t size_limit;        /* bytes of the device; 0: to the end of the file */
    uint32_t block_size;        /* logical sector size: 512, 2048 or 4096 */
    int read_only;
    int autoclear;              /* unbind when the last opener closes the device */
    const char *name;           /* recorded as the loop's file name (lo_file_name) */
} vd_loop_request;

/* Binds a free loop device to the request's file.  On success *number is N
 * of /dev/loopN and *device_fd an open descriptor of it.  With `autoclear`
 * the device goes away once that descriptor and every other opener (a
 * mount, ...) are gone, so a process that dies leaves no device behind.
 * PRIVILEGE_NOT_HELD without CAP_SYS_ADMIN, NOT_SUPPORTED where the host
 * has no loop devices. */
uint32_t vd_loop_attach(const vd_loop_request *request, int *number, int *device_fd);

/* Unbinds /dev/loopN (LOOP_CLR_FD).  SHARING_VIOLATION (Windows' answer
 * for a disk in use) when a file system is mounted on it or another
 * program holds it open exclusively; NOT_READY when nothing is bound. */
uint32_t vd_loop_detach(int number);

/* The first loop device bound to `path` (compared as sysfs spells the
 * backing file), or -1. */
int vd_loop_find(const char *path);

/* Every loop device bound to `path` (at most `capacity`, into `numbers`);
 * returns how many. */
int vd_loop_bound_to(const char *path, int *numbers, int capacity);

/* The file behind /dev/loopN as sysfs names it (the path the file had
 * when it was bound); 0 when nothing is bound. */
int vd_loop_backing(int number, char *backing, size_t size);

/* N of /dev/loopN for the block device number `device` (st_rdev of the
 * node, st_dev of a file on a file system it holds); -1 when it is no
 * loop device. */
int vd_loop_number_of(uint64_t device);

/* Whether the caller may set up loop devices and mount file systems. */
int vd_loop_privileged(void);

#endif
