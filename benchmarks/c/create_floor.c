/* The limits for bench_create.py, built with the engine into one shared
 * library that Python times in-process:
 *
 *   bench_write_files    what any create of a given image costs at least on
 *                        this file system: create the file exclusively,
 *                        write the same pages the image holds, give it the
 *                        same size, close it;
 *   bench_create_loop    the engine's CreateVirtualDisk + close in a plain
 *                        C loop, without the bindings.
 *
 * Both make one file per path and remove none: the caller removes them
 * untimed. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "virtdisk_api.h"
#include "vdengine.h"

/* `pieces` ranges (offsets[i], lengths[i]) of `bytes`, laid end to end,
 * written at their offsets into each new file, which then gets `size`
 * bytes.  Returns 0 or the first errno. */
int bench_write_files(const char *const *paths, uint64_t count, const uint64_t *offsets,
                      const uint64_t *lengths, uint64_t pieces, const uint8_t *bytes,
                      uint64_t size)
{
    for (uint64_t i = 0; i < count; i++) {
        int fd = open(paths[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            return errno;
        const uint8_t *cursor = bytes;
        uint64_t end = 0;
        for (uint64_t p = 0; p < pieces; p++) {
            if (pwrite(fd, cursor, (size_t)lengths[p], (off_t)offsets[p]) != (ssize_t)lengths[p]) {
                int error = errno;
                close(fd);
                return error != 0 ? error : EIO;
            }
            cursor += lengths[p];
            if (offsets[p] + lengths[p] > end)
                end = offsets[p] + lengths[p];
        }
        if (size > end && ftruncate(fd, (off_t)size) != 0) {
            int error = errno;
            close(fd);
            return error;
        }
        if (close(fd) != 0)
            return errno;
    }
    return 0;
}

/* CreateVirtualDisk (version 2, mask NONE, Microsoft vendor) + close for
 * every path.  Returns ERROR_SUCCESS or the first failure's code. */
uint32_t bench_create_loop(const WCHAR *const *paths, uint64_t count, uint32_t device,
                           uint64_t size, uint32_t flags)
{
    VIRTUAL_STORAGE_TYPE type = { device, VIRTDISK_API_VENDOR_MICROSOFT_INIT };
    for (uint64_t i = 0; i < count; i++) {
        CREATE_VIRTUAL_DISK_PARAMETERS parameters;
        memset(&parameters, 0, sizeof parameters);
        parameters.Version = CREATE_VIRTUAL_DISK_VERSION_2;
        parameters.Version2.MaximumSize = size;
        HANDLE handle = NULL;
        DWORD code = CreateVirtualDisk(&type, paths[i], VIRTUAL_DISK_ACCESS_NONE, NULL,
                                       (CREATE_VIRTUAL_DISK_FLAG)flags, 0, &parameters, NULL,
                                       &handle);
        if (code != ERROR_SUCCESS)
            return code;
        vd_engine_close_handle(handle);
    }
    return ERROR_SUCCESS;
}
