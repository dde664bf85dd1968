/* The host file behind an image: open, size, positioned reads, locking.
 *
 * All reads are positioned (pread) so one vd_file can be shared by threads
 * and no call depends on a file offset left behind by another. */
#ifndef VDENGINE_IO_H
#define VDENGINE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_file {
    int fd;
    int writable;
    uint64_t size;        /* bytes, as the file system reported at open */
    char *path;           /* absolute host path, UTF-8, owned */
    /* Nonzero: vd_file_flush returns without fsync.  For a file being built
     * whose whole content is written before anyone reads it (a conversion's
     * destination): the writes keep their order in the page cache, so a
     * killed process leaves what it would, and only the wait for the disk
     * goes, as with cp. */
    int skip_sync;
} vd_file;

/* Opens `path` (UTF-8) read-only or read-write and takes the sharing lock
 * Windows would: a writer excludes every other opener, readers share.
 * Returns a Win32 code: FILE_NOT_FOUND, PATH_NOT_FOUND, ACCESS_DENIED,
 * SHARING_VIOLATION, UNSUPPORTED_COMPRESSION, FILE_ENCRYPTED, ... */
uint32_t vd_file_open(vd_file *file, const char *path, int writable);

/* Opens `path` for reading without taking any sharing lock: for looking at
 * the headers of an image another opener holds, even a writer (the attach
 * that serves it), as Windows answers questions about an attached disk
 * whose file its driver holds.  Nothing read this way may be written back. */
uint32_t vd_file_open_unshared_read(vd_file *file, const char *path);

/* Creates `path` (UTF-8) exclusively, O_CREAT | O_EXCL with mode 0666 minus
 * the umask, and opens it read-write with the writer's lock, as
 * vd_file_open would open it: one descriptor from creation on, so no other
 * opener can come between.  FILE_EXISTS when the path exists (it is never
 * touched), PATH_NOT_FOUND when a directory on the way is missing; a file
 * created and then refused (a file system that compresses new files, ...)
 * is removed again. */
uint32_t vd_file_create(vd_file *file, const char *path);

/* Reads exactly `length` bytes at `offset`.  A read past the end of the
 * file is an error (VD_ERROR_HANDLE_EOF), never a short read: callers check
 * lengths against file->size first and turn that into a format error. */
uint32_t vd_file_read(const vd_file *file, uint64_t offset, void *buffer, size_t length);

uint32_t vd_file_write(const vd_file *file, uint64_t offset, const void *buffer, size_t length);

/* `length` bytes at `offset`, made of copies of the `piece_length` bytes
 * of `piece` (the last one cut short): a long run of one pattern (zeros,
 * a table's unallocated entries) written from a short buffer.  Each copy
 * is one vd_file_write, and so one change for fault injection. */
uint32_t vd_file_write_repeated(const vd_file *file, uint64_t offset, const void *piece, size_t piece_length,
                                uint64_t length);

/* Waits until every write so far is on stable storage (fsync).  Updates that
 * must survive a crash in a known order put one between their steps.
 * Succeeds at once for a file with `skip_sync` set. */
uint32_t vd_file_flush(const vd_file *file);

/* Asks the host to start writing the file's dirty pages to storage now,
 * without waiting for them (sync_file_range SYNC_FILE_RANGE_WRITE on Linux;
 * nothing elsewhere).  A long copy that ends in a flush calls it as it goes,
 * so the disk writes while the copy runs and the final fsync waits only for
 * the tail.  Durability still comes from vd_file_flush alone.  Does nothing
 * for a file with `skip_sync` set; changes nothing a read sees, so fault
 * injection does not count it; errors are ignored (it is a hint). */
void vd_file_start_writeback(const vd_file *file);

/* For a long copy: counts `written` more bytes into *unstarted and, once it
 * reaches VD_FILE_WRITEBACK_PACE, starts the file's writeback and sets it
 * back to 0. */
#define VD_FILE_WRITEBACK_PACE ((uint64_t)32 << 20)
void vd_file_pace_writeback(const vd_file *file, uint64_t *unstarted, uint64_t written);

/* Grows or shrinks the file to `size` bytes (ftruncate) and records it in
 * file->size. */
uint32_t vd_file_set_size(vd_file *file, uint64_t size);

/* Makes bytes [offset, offset + length) of the file read zeros without
 * changing its size: `release` gives their space back to the host file
 * system (a hole, for blocks a thin image no longer uses), otherwise the
 * space stays allocated (a fixed image keeps every block provisioned).
 * Falls back to writing zeros where the file system has no such mode.
 * One change, as a write is, for fault injection. */
uint32_t vd_file_zero_range(const vd_file *file, uint64_t offset, uint64_t length, int release);

/* Makes the host allocate the space of bytes [offset, offset + length)
 * now, without changing their content or the file's size, so that a later
 * write there cannot fail for want of space (DISK_FULL here instead).  A
 * file system that cannot reserve space succeeds without doing anything.
 * Changes nothing a read sees, so fault injection does not count it. */
uint32_t vd_file_reserve(const vd_file *file, uint64_t offset, uint64_t length);

#ifdef VD_FAULT_INJECTION
/* Test builds only (the fault-injection harness): when this is >= 0, that
 * many more writes, flushes and size changes succeed, and every one after
 * them fails with ERROR_WRITE_FAULT and changes nothing, as if the machine
 * had stopped at that point.  -1 (the initial value) never fails. */
extern long vd_fault_writes_left;

/* Whether the next change to a file is past the injected stop (if not, it
 * is counted): for the changes made outside this file's calls
 * (host/file_copy.c's copies in the kernel). */
int vd_fault_stops_here(void);
#endif

/* Releases the lock and the descriptor; safe on a zeroed or closed file. */
void vd_file_close(vd_file *file);

/* Win32 code for the current errno. */
uint32_t vd_error_from_errno(int error_number);

#endif
