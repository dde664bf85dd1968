/* The host's record of device attaches, shared by every process: one file
 * per loop device in /run/virtdisk/ (VIRTDISK_RUN_DIR overrides it), which
 * is a tmpfs and so forgets every attach at reboot, as Windows forgets an
 * attach made without AT_BOOT.
 *
 * A record names the image (path, device and inode), the loop device, the
 * process whose handle holds the attach (none for a permanent one) and
 * whether it is read-only.  A record outlives what it describes when a
 * process dies holding a handle-bound attach (its loop clears itself): a
 * record whose loop is no longer bound to its image is stale, and the
 * walk below deletes it.  So is the record of an export whose server
 * process is gone: its loop is bound to a file nobody serves, and the walk
 * unbinds the loop and unmounts the export as it deletes the record. */
#ifndef VDENGINE_ATTACH_RECORD_H
#define VDENGINE_ATTACH_RECORD_H

#include <stdint.h>

#define VD_ATTACH_RECORD_PATH_MAX 4096

typedef struct vd_attach_record {
    int loop_number;            /* N of /dev/loopN */
    int permanent;              /* PERMANENT_LIFETIME: no process holds it */
    int read_only;
    long pid;                   /* the holder; 0 when permanent */
    uint64_t device;            /* st_dev and st_ino of the image file */
    uint64_t inode;
    char image_path[VD_ATTACH_RECORD_PATH_MAX];   /* as the loop names its file */
    /* The file the loop is bound to, when it is not the image: an export's
     * file (api/attach_export.h); empty for a loop straight on the image. */
    char backing_path[VD_ATTACH_RECORD_PATH_MAX];
    /* The process that serves the export of a permanent attach; 0 when no
     * process outside the holder serves it. */
    long server_pid;
} vd_attach_record;

/* The name (comm) an export's server process gives itself. */
#define VD_ATTACH_SERVER_NAME "virtdisk-serve"

/* Whether process `pid` is alive and an export server (a pid reused by
 * another program is not). */
int vd_attach_server_alive(long pid);

/* The directory of the records (and of the exports' mount points). */
const char *vd_attach_run_dir(void);

/* Serialises attach and detach between processes (an exclusive flock on
 * the directory's lock file, made with the directory when missing).
 * Returns the lock's descriptor, or -1 with *status set. */
int vd_attach_records_lock(uint32_t *status);
void vd_attach_records_unlock(int lock);

/* Writes (or replaces) the record of record->loop_number, atomically. */
uint32_t vd_attach_record_write(const vd_attach_record *record);

/* Deletes the record of /dev/loopN, if any. */
void vd_attach_record_remove(int loop_number);

/* Calls `visit` with each record whose loop is still bound to its image;
 * stops early when `visit` returns nonzero and returns that value.  With
 * `prune` (only while holding the lock) stale records are deleted. */
typedef int (*vd_attach_record_visit)(const vd_attach_record *record, void *context);
int vd_attach_records_walk(int prune, vd_attach_record_visit visit, void *context);

/* The live record of the image file (device, inode), in *found; 0 when
 * there is none. */
int vd_attach_record_find(int prune, uint64_t device, uint64_t inode, vd_attach_record *found);

#endif
