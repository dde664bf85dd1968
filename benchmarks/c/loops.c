/* The limit for bench_overhead.py: the same engine calls in a plain C loop,
 * built into one shared library with the engine so that Python can time
 * them in-process (ctypes calls these loops once, and the engine's own
 * entry points many times). */
#include <stdint.h>

#include "virtdisk_api.h"
#include "vdengine.h"

static VIRTUAL_STORAGE_TYPE unknown_type(void)
{
    VIRTUAL_STORAGE_TYPE type = { VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, VIRTDISK_API_VENDOR_UNKNOWN_INIT };
    return type;
}

/* OpenVirtualDisk rejecting an access mask outside VIRTUAL_DISK_ACCESS_ALL. */
uint32_t bench_invalid_parameter_loop(const WCHAR *path, uint64_t iterations)
{
    VIRTUAL_STORAGE_TYPE type = unknown_type();
    uint32_t failures = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        HANDLE handle = NULL;
        failures += OpenVirtualDisk(&type, path, (VIRTUAL_DISK_ACCESS_MASK)0x80000000u,
                                    OPEN_VIRTUAL_DISK_FLAG_NONE, NULL, &handle) != 0;
    }
    return failures;
}

/* GetVirtualDiskInformation(SIZE) on an open handle: a call with no I/O. */
uint64_t bench_size_loop(HANDLE handle, uint64_t iterations)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        GET_VIRTUAL_DISK_INFO info;
        ULONG size = sizeof(info);
        info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
        if (GetVirtualDiskInformation(handle, &size, &info, NULL) == ERROR_SUCCESS) {
            total += info.Size.VirtualSize;
        }
    }
    return total;
}

/* Open (version 2, read-only) + GetVirtualDiskInformation(SIZE) + close. */
uint64_t bench_open_info_close_loop(const WCHAR *path, uint64_t iterations)
{
    VIRTUAL_STORAGE_TYPE type = unknown_type();
    uint64_t total = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        OPEN_VIRTUAL_DISK_PARAMETERS parameters = { OPEN_VIRTUAL_DISK_VERSION_2, { { 0 } } };
        GET_VIRTUAL_DISK_INFO info;
        ULONG size = sizeof(info);
        HANDLE handle = NULL;
        parameters.Version2.ReadOnly = TRUE;
        if (OpenVirtualDisk(&type, path, VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE,
                            &parameters, &handle) != ERROR_SUCCESS) {
            return 0;
        }
        info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
        if (GetVirtualDiskInformation(handle, &size, &info, NULL) == ERROR_SUCCESS) {
            total += info.Size.VirtualSize;
        }
        vd_engine_close_handle(handle);
    }
    return total;
}
