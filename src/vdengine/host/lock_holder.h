/* Who holds a file's sharing lock (host/io.c), for the detail of an open
 * refused with ERROR_SHARING_VIOLATION.
 *
 * The sharing locks are open-file-description locks, and the kernel names
 * no process for those (/proc/locks and F_OFD_GETLK say -1).  What it does
 * show is each descriptor's locks, in /proc/PID/fdinfo/FD ("lock:" lines),
 * so the holder is found by walking the descriptors of this process, then
 * of every process whose /proc entries the caller may read, for one open
 * on the same file (device and inode) with a lock the open conflicts
 * with.  A descriptor inherited across fork shares its lock, so a
 * permanent export's server is found alongside the process that attached.
 * Runs only after a refusal: the walk costs a readlink and a stat per
 * descriptor on the host. */
#ifndef VDENGINE_LOCK_HOLDER_H
#define VDENGINE_LOCK_HOLDER_H

#include <stdint.h>

/* Records the detail of an open of the file open as `fd` that its
 * sharing lock refused (`writable`: the open wanted to write), naming
 * what holds the lock where the host shows it: another handle of this
 * process, a permanent attach's server process (VD_ATTACH_SERVER_NAME;
 * its pid, and its /dev/loopN where the attach record, host/attach_record.h,
 * names it), or another process (pid and name).  Leaves the detail unset when no
 * holder can be seen (a process of another user, no /proc). */
void vd_lock_holder_describe(int fd, int writable);

#endif
