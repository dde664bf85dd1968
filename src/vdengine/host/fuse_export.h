/* A single-file FUSE export of an opened disk's virtual content: the file
 * reads and writes as the raw disk, served by the engine's data path
 * (disk/content.h), so a loop device on it makes any image a block device.
 *
 * The export speaks the kernel's FUSE protocol on /dev/fuse itself (why:
 * README, "FUSE export").  It mounts a FUSE file system whose root is one
 * regular file, `<directory>/disk`, with mount(2): file system type
 * "fuse.virtdisk", mount source the image's absolute path (so
 * /proc/self/mountinfo names the image behind each export).  Several worker
 * threads serve it, each on its own clone of the /dev/fuse descriptor with
 * buffers allocated at start; they mark themselves PR_SET_IO_FLUSHER, as a
 * server in the block I/O path must, so that memory reclaim never waits on
 * the I/O they are serving.  The file is opened with FOPEN_DIRECT_IO: the
 * kernel keeps no page cache of it (a loop device with direct I/O on top
 * then caches nothing twice).  FLUSH and FSYNC make every write so far
 * durable (vd_content_flush); a hole punched into the file (FALLOCATE
 * PUNCH_HOLE, what a loop device sends for a discard) unmaps the sectors
 * when the format reads zeros there afterwards.
 *
 * Linux only, and needs CAP_SYS_ADMIN (mount); other hosts answer
 * ERROR_NOT_SUPPORTED. */
#ifndef VDENGINE_FUSE_EXPORT_H
#define VDENGINE_FUSE_EXPORT_H

#include "api/handle.h"

typedef struct vd_fuse_export vd_fuse_export;

/* Worker threads of one export: the kernel queues requests to all of them. */
#define VD_FUSE_EXPORT_WORKERS 4

/* Largest read or write one request carries (the kernel splits larger I/O). */
#define VD_FUSE_EXPORT_MAX_IO (1u << 20)

/* Exports `disk` as `<directory>/disk` (the directory must exist; the file
 * is created when missing, and removed again by the stop when it was).  With
 * `read_only` the mount is read-only and writes answer EROFS; an export that
 * writes needs a disk open for writing (ACCESS_DENIED otherwise).  Returns
 * once the kernel has finished its handshake, so the file can be opened
 * right away.  The disk must stay open (a handle reference held) until
 * vd_fuse_export_stop returns.  Win32 codes: PRIVILEGE_NOT_HELD without
 * CAP_SYS_ADMIN, NOT_SUPPORTED without /dev/fuse, off Linux or on a
 * kernel whose FUSE protocol is older than 7.28, PATH_NOT_FOUND for a
 * missing directory, INVALID_PARAMETER when `<directory>/disk` exists and
 * is no regular file. */
uint32_t vd_fuse_export_start(vd_disk *disk, const char *directory, int read_only,
                              vd_fuse_export **out);

/* The exported file's path (owned by the export, valid until the stop). */
const char *vd_fuse_export_file_path(const vd_fuse_export *export_);

/* Unmounts the file (lazily, MNT_DETACH), stops the workers and frees the
 * export.  Whoever still has the file open (a loop device not yet
 * detached) gets ENOTCONN from then on: detach the loop device first.
 * Writes acknowledged before are in the image; the caller flushes the disk
 * if it needs them durable.  Returns the unmount's answer (SUCCESS when the
 * file was already unmounted by someone else); the export is freed in
 * every case.  NULL is a no-op. */
uint32_t vd_fuse_export_stop(vd_fuse_export *export_);

/* Clears what an export whose server died left at `file_path` (its
 * exported file): unmounts it lazily, then removes the file and its
 * directory when they are empty.  Whatever is already gone is skipped. */
void vd_fuse_export_abandon(const char *file_path);

#endif
