/* The C paths of bench_io.py, built with the engine into one shared library
 * that Python times in-process (one ctypes call per timed loop):
 *
 *   bench_raw_loop      pread/pwrite on a plain file: the limit any image
 *                       path is measured against;
 *   bench_open_attached OpenVirtualDisk + a NO_LOCAL_HOST AttachVirtualDisk,
 *                       what a C program does before its first command;
 *   bench_scsi_loop     READ(16)/WRITE(16) through RawSCSIVirtualDisk, the
 *                       engine's C API for content, without the bindings.
 *
 * Every loop moves `length` bytes at each of `count` byte offsets, from or
 * into the same buffer, and stops at the first failure.
 *
 * The library is built as the extension builds its engine, with hidden
 * visibility (setup.py), so that the engine's calls among its own files
 * are direct ones, as they are in the extension; the loops alone are
 * exported. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "virtdisk_api.h"
#include "vdengine.h"

#define BENCH_EXPORT __attribute__((visibility("default")))

/* 0, or the errno of the first failed (or short) transfer. */
BENCH_EXPORT
int bench_raw_loop(int fd, int write, const uint64_t *offsets, uint64_t count, uint8_t *buffer,
                   uint64_t length)
{
    for (uint64_t i = 0; i < count; i++) {
        ssize_t done = write ? pwrite(fd, buffer, (size_t)length, (off_t)offsets[i])
                             : pread(fd, buffer, (size_t)length, (off_t)offsets[i]);
        if (done != (ssize_t)length)
            return done < 0 ? errno : EIO;
    }
    return 0;
}

/* Opens `path` (version 2, read-write unless `read_only`) and attaches it
 * for SCSI commands.  Returns the Win32 code; *handle is open only on
 * success. */
BENCH_EXPORT
uint32_t bench_open_attached(const WCHAR *path, int read_only, HANDLE *handle)
{
    VIRTUAL_STORAGE_TYPE type = { VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN,
                                  VIRTDISK_API_VENDOR_UNKNOWN_INIT };
    OPEN_VIRTUAL_DISK_PARAMETERS open_parameters;
    memset(&open_parameters, 0, sizeof open_parameters);
    open_parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    open_parameters.Version2.ReadOnly = read_only ? TRUE : FALSE;
    *handle = NULL;
    DWORD code = OpenVirtualDisk(&type, path, VIRTUAL_DISK_ACCESS_NONE,
                                 OPEN_VIRTUAL_DISK_FLAG_NONE, &open_parameters, handle);
    if (code != ERROR_SUCCESS)
        return code;
    ATTACH_VIRTUAL_DISK_PARAMETERS attach;
    memset(&attach, 0, sizeof attach);
    attach.Version = ATTACH_VIRTUAL_DISK_VERSION_1;
    ATTACH_VIRTUAL_DISK_FLAG flags = ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST;
    if (read_only)
        flags |= ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY;
    code = AttachVirtualDisk(*handle, NULL, flags, 0, &attach, NULL);
    if (code != ERROR_SUCCESS) {
        vd_engine_close_handle(*handle);
        *handle = NULL;
    }
    return code;
}

static void bench_store_be64(uint8_t *p, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        p[i] = (uint8_t)value;
}

static void bench_store_be32(uint8_t *p, uint32_t value)
{
    for (int i = 3; i >= 0; i--, value >>= 8)
        p[i] = (uint8_t)value;
}

/* READ(16) or WRITE(16) of `length` bytes (whole blocks of `block_size`)
 * at each offset.  Returns 0; the Win32 code of a refused call; or
 * 0x10000 | SCSI status for a command that did not end GOOD or moved less
 * than asked. */
BENCH_EXPORT
uint32_t bench_scsi_loop(HANDLE handle, int write, const uint64_t *offsets, uint64_t count,
                         uint8_t *buffer, uint32_t length, uint32_t block_size)
{
    uint8_t cdb[16], sense[18];
    RAW_SCSI_VIRTUAL_DISK_PARAMETERS parameters;
    RAW_SCSI_VIRTUAL_DISK_RESPONSE response;
    memset(cdb, 0, sizeof cdb);
    memset(&parameters, 0, sizeof parameters);
    cdb[0] = write ? 0x8A : 0x88;
    bench_store_be32(cdb + 10, length / block_size);
    parameters.Version = RAW_SCSI_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.DataIn = write ? 0 : 1;
    parameters.Version1.CdbLength = sizeof cdb;
    parameters.Version1.SenseInfoLength = sizeof sense;
    parameters.Version1.DataTransferLength = length;
    parameters.Version1.DataBuffer = buffer;
    parameters.Version1.SenseInfo = sense;
    parameters.Version1.Cdb = cdb;
    for (uint64_t i = 0; i < count; i++) {
        bench_store_be64(cdb + 2, offsets[i] / block_size);
        DWORD code = RawSCSIVirtualDisk(handle, &parameters, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE,
                                        &response);
        if (code != ERROR_SUCCESS)
            return code;
        if (response.Version1.ScsiStatus != 0 || response.Version1.DataTransferLength != length)
            return 0x10000u | response.Version1.ScsiStatus;
    }
    return 0;
}

BENCH_EXPORT
DWORD bench_close(HANDLE handle)
{
    return vd_engine_close_handle(handle);
}
