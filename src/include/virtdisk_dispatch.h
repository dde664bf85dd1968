/* virtdisk_dispatch.h: where the extension's calls go, per platform.
 *
 * The twenty functions Windows 8.1 exports are called directly: on Windows
 * they come from VirtDisk.lib, elsewhere from the portable engine.  The nine
 * newer ones are reached through vd_fn_<Name> pointers.  On Windows,
 * vd_dispatch_init() fills those from System32's VirtDisk.dll with
 * GetProcAddress, so a Windows without one of them still loads the module
 * and the pointer stays NULL; elsewhere they point at the engine.
 *
 * This is the only file of the extension with a platform #ifdef for calls.
 * Include it from exactly one translation unit (the extension module). */
#ifndef VIRTDISK_DISPATCH_H
#define VIRTDISK_DISPATCH_H

#include "virtdisk_api.h"

#define VIRTDISK_RUNTIME_RESOLVED(X)             \
    X(GetAllAttachedVirtualDiskPhysicalPaths)    \
    X(QueryChangesVirtualDisk)                   \
    X(TakeSnapshotVhdSet)                        \
    X(DeleteSnapshotVhdSet)                      \
    X(ModifyVhdSet)                              \
    X(ApplySnapshotVhdSet)                       \
    X(RawSCSIVirtualDisk)                        \
    X(ForkVirtualDisk)                           \
    X(CompleteForkVirtualDisk)

#ifdef _WIN32

#define VIRTDISK_DECLARE_POINTER(name) static VIRTDISK_FN_##name *vd_fn_##name;
VIRTDISK_RUNTIME_RESOLVED(VIRTDISK_DECLARE_POINTER)
#undef VIRTDISK_DECLARE_POINTER

/* Loads VirtDisk.dll from System32 only (never from the current directory
 * or PATH, which would allow DLL planting) and resolves the newer entry
 * points.  Returns the Win32 error of the load, ERROR_SUCCESS otherwise; a
 * missing entry point is not an error here. */
static DWORD vd_dispatch_init(void)
{
    HMODULE module = LoadLibraryExW(L"virtdisk.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
    if (module == NULL) {
        return GetLastError();
    }
    /* GetProcAddress returns FARPROC; the detour through void * states
     * that the real type is the declared VIRTDISK_FN_ one. */
#define VIRTDISK_RESOLVE(name) \
    vd_fn_##name = (VIRTDISK_FN_##name *)(void *)GetProcAddress(module, #name);
    VIRTDISK_RUNTIME_RESOLVED(VIRTDISK_RESOLVE)
#undef VIRTDISK_RESOLVE
    return ERROR_SUCCESS;
}

static DWORD vd_close_handle(HANDLE handle)
{
    return CloseHandle(handle) ? ERROR_SUCCESS : GetLastError();
}

/* A handle to a disk (\\.\PhysicalDriveN) or a volume or directory, for
 * GetStorageDependencyInformation: CreateFile with no access rights, full
 * sharing, and backup semantics, which a directory needs. */
static DWORD vd_open_device(PCWSTR path, HANDLE *handle)
{
    HANDLE opened = CreateFileW(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (opened == INVALID_HANDLE_VALUE) {
        return GetLastError();
    }
    *handle = opened;
    return ERROR_SUCCESS;
}

/* Windows gives every partition of an attached disk its own device and
 * volume: there is nothing to make. */
static DWORD vd_attach_partition(HANDLE handle, ULONG number, ULONG *device_number)
{
    (void)handle;
    (void)number;
    (void)device_number;
    return ERROR_NOT_SUPPORTED;
}

/* VirtDisk has no switch for the durability of a handle's flushes. */
static DWORD vd_skip_sync(HANDLE handle)
{
    (void)handle;
    return ERROR_NOT_SUPPORTED;
}

/* Nor copies between a disk's content and a file: the facade moves it. */
static DWORD vd_copy_to_file(HANDLE handle, ULONGLONG offset, ULONGLONG length, int fd)
{
    (void)handle;
    (void)offset;
    (void)length;
    (void)fd;
    return ERROR_NOT_SUPPORTED;
}

static DWORD vd_copy_from_file(HANDLE handle, int fd, ULONGLONG offset, ULONGLONG length,
                               ULONG piece)
{
    (void)handle;
    (void)fd;
    (void)offset;
    (void)length;
    (void)piece;
    return ERROR_NOT_SUPPORTED;
}

/* An OVERLAPPED for the long operations: Windows signals completion
 * through a manual-reset event.  It starts set, as no operation runs, so
 * that a wait on an unused OVERLAPPED returns; vd_overlapped_arm resets it
 * before a start. */
static DWORD vd_overlapped_init(OVERLAPPED *overlapped)
{
    ZeroMemory(overlapped, sizeof(*overlapped));
    overlapped->hEvent = CreateEventW(NULL, TRUE, TRUE, NULL);
    return overlapped->hEvent != NULL ? ERROR_SUCCESS : GetLastError();
}

static void vd_overlapped_arm(OVERLAPPED *overlapped, int running)
{
    if (running) {
        ResetEvent(overlapped->hEvent);
    } else {
        SetEvent(overlapped->hEvent);
    }
}

static void vd_overlapped_release(OVERLAPPED *overlapped)
{
    if (overlapped->hEvent != NULL) {
        CloseHandle(overlapped->hEvent);
        overlapped->hEvent = NULL;
    }
}

/* ERROR_SUCCESS when the operation has finished, WAIT_TIMEOUT (258) when
 * it is still running after `milliseconds`. */
static DWORD vd_overlapped_wait(OVERLAPPED *overlapped, DWORD milliseconds)
{
    DWORD state = WaitForSingleObject(overlapped->hEvent, milliseconds);
    if (state == WAIT_OBJECT_0) {
        return ERROR_SUCCESS;
    }
    return state == WAIT_TIMEOUT ? WAIT_TIMEOUT : GetLastError();
}

/* The event's descriptor for an event loop: Windows events have none (an
 * asyncio caller there waits in a thread). */
static int vd_overlapped_fd(OVERLAPPED *overlapped)
{
    (void)overlapped;
    return -1;
}

/* kernel32's CancelIoEx, which VirtDisk's long operations honour; FALSE
 * with ERROR_NOT_FOUND when no operation of the handle uses `overlapped`. */
static DWORD vd_cancel_io(HANDLE handle, OVERLAPPED *overlapped)
{
    return CancelIoEx(handle, overlapped) ? ERROR_SUCCESS : GetLastError();
}

/* Windows carries out every function it exports. */
static int vd_dispatch_implements(const char *name)
{
    (void)name;
    return 1;
}

/* VirtDisk returns the Win32 code and nothing more. */
static const char *vd_dispatch_last_detail(void)
{
    return NULL;
}

#define VIRTDISK_PLATFORM_NAME "windows"

#else /* the portable engine */

#include <string.h>

#include "../vdengine/vdengine.h"

#define VIRTDISK_ENGINE_POINTER(name) static VIRTDISK_FN_##name *const vd_fn_##name = &name;
VIRTDISK_RUNTIME_RESOLVED(VIRTDISK_ENGINE_POINTER)
#undef VIRTDISK_ENGINE_POINTER

static DWORD vd_dispatch_init(void)
{
    return ERROR_SUCCESS;
}

static DWORD vd_close_handle(HANDLE handle)
{
    return vd_engine_close_handle(handle);
}

static DWORD vd_open_device(PCWSTR path, HANDLE *handle)
{
    return vd_engine_open_device(path, handle);
}

static DWORD vd_attach_partition(HANDLE handle, ULONG number, ULONG *device_number)
{
    return vd_engine_attach_partition(handle, number, device_number);
}

static DWORD vd_skip_sync(HANDLE handle)
{
    return vd_engine_skip_sync(handle);
}

static DWORD vd_copy_to_file(HANDLE handle, ULONGLONG offset, ULONGLONG length, int fd)
{
    return vd_engine_copy_to_file(handle, offset, length, fd);
}

static DWORD vd_copy_from_file(HANDLE handle, int fd, ULONGLONG offset, ULONGLONG length,
                               ULONG piece)
{
    return vd_engine_copy_from_file(handle, fd, offset, length, piece);
}

/* An OVERLAPPED for the long operations: the engine's manual-reset event
 * (vdengine.h), which an operation resets when it starts and sets when it
 * has ended; created set, as on Windows above. */
static DWORD vd_overlapped_init(OVERLAPPED *overlapped)
{
    memset(overlapped, 0, sizeof(*overlapped));
    DWORD status = vd_engine_event_create(&overlapped->hEvent);
    if (status == ERROR_SUCCESS) {
        vd_engine_event_set(overlapped->hEvent);
    }
    return status;
}

/* Reset before a start (`running`), set again when the call did not leave
 * an operation running with it (vd_overlapped_init says why). */
static void vd_overlapped_arm(OVERLAPPED *overlapped, int running)
{
    if (running) {
        vd_engine_event_reset(overlapped->hEvent);
    } else {
        vd_engine_event_set(overlapped->hEvent);
    }
}

static void vd_overlapped_release(OVERLAPPED *overlapped)
{
    if (overlapped->hEvent != NULL) {
        vd_engine_event_close(overlapped->hEvent);
        overlapped->hEvent = NULL;
    }
}

static DWORD vd_overlapped_wait(OVERLAPPED *overlapped, DWORD milliseconds)
{
    return vd_engine_event_wait(overlapped->hEvent, milliseconds);
}

/* Readable exactly while the event is set: for loop.add_reader. */
static int vd_overlapped_fd(OVERLAPPED *overlapped)
{
    return vd_engine_event_fd(overlapped->hEvent);
}

static DWORD vd_cancel_io(HANDLE handle, OVERLAPPED *overlapped)
{
    return vd_engine_cancel_io(handle, overlapped);
}

static int vd_dispatch_implements(const char *name)
{
    return vd_engine_implements(name);
}

static const char *vd_dispatch_last_detail(void)
{
    return vd_engine_last_detail();
}

#define VIRTDISK_PLATFORM_NAME "engine"

#endif

#endif /* VIRTDISK_DISPATCH_H */
