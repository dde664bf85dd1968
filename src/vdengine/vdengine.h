/* vdengine.h: what the portable engine offers beyond virtdisk_api.h.
 *
 * The engine implements the functions of virtdisk_api.h on image files.
 * Windows closes a virtual disk handle with kernel32's CloseHandle; the
 * engine's handles are its own, so it provides the closing function too. */
#ifndef VDENGINE_VDENGINE_H
#define VDENGINE_VDENGINE_H

#include "virtdisk_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Closes a handle returned by OpenVirtualDisk or CreateVirtualDisk.
 * ERROR_INVALID_HANDLE for a value that is not an open engine handle
 * (already closed, never opened, NULL): never a crash. */
DWORD vd_engine_close_handle(HANDLE handle);

/* Whether the engine carries out the VirtDisk function `name` (its Win32
 * name), rather than answering ERROR_CALL_NOT_IMPLEMENTED after its
 * argument and handle checks.  The table is implemented.c; features() in
 * the extension reports it. */
int vd_engine_implements(const char *name);

/* Why the calling thread's last VirtDisk call failed, in words, when the
 * Win32 code alone does not say: the structure of the image that was
 * rejected, e.g. "VHDX header 2 checksum mismatch".  NULL when that call
 * recorded nothing.  Each entry point clears it as it starts; other
 * threads' calls never touch it.  The text stays valid until the thread's
 * next call.  Windows has no such text: it is the engine's addition. */
const char *vd_engine_last_detail(void);

/* What CreateFile gives on Windows for GetStorageDependencyInformation:
 * a handle to a disk (a block device node, /dev/loopN) or to a volume (a
 * directory: the file system that holds it, usually its mount point).
 * Closed with vd_engine_close_handle; every VirtDisk function but
 * GetStorageDependencyInformation refuses it with ERROR_INVALID_HANDLE.
 * FILE_NOT_FOUND for a missing path, INVALID_PARAMETER for a path that is
 * neither a block device nor a directory. */
DWORD vd_engine_open_device(PCWSTR path, HANDLE *handle);

/* Makes partition `number` (a GPT entry's slot from 1, or an MBR primary
 * entry 1 to 4) of the disk this handle attached to the host a loop device
 * of its own, bound to the disk's device with the partition's offset and
 * size, and gives its N (/dev/loopN).  It lives as long as the attach and
 * is unbound by its detach (api/attach_partition.c).  NOT_READY when the
 * disk is not attached to the host, NOT_FOUND without such a partition. */
DWORD vd_engine_attach_partition(HANDLE handle, ULONG number, ULONG *device_number);

/* Makes the flushes of the image this handle writes (its own file, not
 * its parents') skip the wait for stable storage: the crash-safe order of
 * every update stays in the page cache, fsync is not called.  For a new
 * image written whole before anyone reads it, such as a conversion's
 * destination, which cp and qemu-img convert do not sync either; a power
 * loss before the system writes it back can lose it.  Windows has no such
 * switch.  INVALID_HANDLE for a value that is no open handle,
 * ACCESS_DENIED for a handle open read-only. */
DWORD vd_engine_skip_sync(HANDLE handle);

/* Writes bytes [offset, offset + length) of the disk's content (through
 * its chain) into the file open for writing at `fd`, at the same offsets,
 * for a conversion to a raw image.  Runs the disk holds nothing in, or
 * that read zeros, are not written, so the file must read zeros there
 * already (a new file sized with ftruncate) and keeps them as holes; runs
 * an image file holds as they are are copied from it in the kernel where
 * the host can (copy_file_range), by pread and pwrite where it cannot.
 * INVALID_PARAMETER for a range that is not whole sectors inside the disk
 * or a negative `fd`, INVALID_HANDLE for a value that is no open handle,
 * then the codes of reads and of the host's writes.  Windows has no such
 * call. */
DWORD vd_engine_copy_to_file(HANDLE handle, ULONGLONG offset, ULONGLONG length, int fd);

/* Writes bytes [offset, offset + length) of the file open for reading at
 * `fd` into the disk at the same offsets, through the data path (as
 * RawSCSIVirtualDisk writes), leaving out the pieces that are all zeros:
 * `piece` bytes each, aligned to multiples of `piece`, a whole number of
 * sectors that divides the disk's block size (at most 64 MiB), so that a
 * block of zeros stays unallocated in a new dynamic disk.  For a
 * conversion from a raw image.  HANDLE_EOF when the file ends before
 * offset + length; INVALID_PARAMETER for a range that is not whole
 * sectors inside the disk, a bad piece or a negative `fd`; INVALID_HANDLE,
 * ACCESS_DENIED for a read-only handle, then the codes of writes.  Windows
 * has no such call. */
DWORD vd_engine_copy_from_file(HANDLE handle, int fd, ULONGLONG offset, ULONGLONG length,
                               ULONG piece);

/* Number of handles currently open, for leak checks in tests. */
ULONG vd_engine_open_handle_count(void);

/* Events for OVERLAPPED.hEvent (host/event.c): what CreateEvent makes on
 * Windows, a manual-reset event, created reset.  A long operation started
 * with an OVERLAPPED resets its event, runs on an engine thread and sets
 * the event when it has ended.  vd_engine_event_fd is a descriptor that
 * polls readable exactly while the event is set (for poll, select or an
 * event loop); it belongs to the event. */
#define VD_ENGINE_INFINITE 0xFFFFFFFFu
#define VD_ENGINE_WAIT_TIMEOUT 258u   /* WAIT_TIMEOUT */
DWORD vd_engine_event_create(HANDLE *event);
DWORD vd_engine_event_set(HANDLE event);
DWORD vd_engine_event_reset(HANDLE event);
/* ERROR_SUCCESS once the event is set, VD_ENGINE_WAIT_TIMEOUT when it is
 * still reset after `milliseconds` (VD_ENGINE_INFINITE: no limit). */
DWORD vd_engine_event_wait(HANDLE event, DWORD milliseconds);
int vd_engine_event_fd(HANDLE event);
void vd_engine_event_close(HANDLE event);

/* CancelIoEx for the long operations of a virtual disk handle: asks the
 * operation started with `overlapped` (NULL: whatever operation the handle
 * runs, synchronous ones too) to stop at its next step; it then ends with
 * ERROR_OPERATION_ABORTED and leaves the image consistent.  Returns at
 * once; ERROR_NOT_FOUND when no such operation runs (kernel32's
 * CancelIoEx answers FALSE with that last error), ERROR_INVALID_HANDLE for
 * a value that is no open handle. */
DWORD vd_engine_cancel_io(HANDLE handle, LPOVERLAPPED overlapped);

#ifdef __cplusplus
}
#endif

#endif
