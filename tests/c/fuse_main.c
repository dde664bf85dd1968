/* Serves an image as a FUSE file (host/fuse_export.c) until told to stop:
 *
 *   fuse_main IMAGE DIRECTORY [ro]
 *
 * opens IMAGE with OpenVirtualDisk version 2 (read-only with "ro"; a
 * differencing image's parents are opened read-only either way), exports
 * it as DIRECTORY/disk and prints "export CODE" and "path PATH".  Then one
 * command per line on standard input, each answered "ok" or "error CODE":
 *
 *   f    flush the disk (vd_content_flush)
 *   q    stop the export: prints "stop CODE" and exits
 *
 * End of input stops the export as "q" does.  A test kills the process
 * with SIGKILL to see what an export leaves behind when its server dies. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtdisk_api.h"
#include "api/handle.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "host/fuse_export.h"
#include "vdengine.h"
#include "wide_path.h"

static DWORD open_v2(const char *path, int read_only, HANDLE *handle)
{
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    parameters.Version2.ReadOnly = read_only ? TRUE : FALSE;
    return open_path(path, VIRTUAL_DISK_ACCESS_NONE, &parameters, handle);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuse_main IMAGE DIRECTORY [ro]\n");
        return 2;
    }
    int read_only = argc > 3 && strcmp(argv[3], "ro") == 0;
    HANDLE handle;
    DWORD status = open_v2(argv[1], read_only, &handle);
    printf("open %lu\n", (unsigned long)status);
    if (status != VD_ERROR_SUCCESS)
        return 1;
    vd_disk *disk = vd_handle_acquire(handle);
    vd_fuse_export *export_ = NULL;
    status = vd_fuse_export_start(disk, argv[2], read_only, &export_);
    printf("export %lu\n", (unsigned long)status);
    if (status == VD_ERROR_SUCCESS)
        printf("path %s\n", vd_fuse_export_file_path(export_));
    fflush(stdout);
    char line[256];
    while (status == VD_ERROR_SUCCESS && fgets(line, sizeof line, stdin) != NULL) {
        if (line[0] == 'q')
            break;
        uint32_t answer = line[0] == 'f' ? vd_content_flush(disk) : VD_ERROR_INVALID_PARAMETER;
        if (answer == VD_ERROR_SUCCESS)
            printf("ok\n");
        else
            printf("error %lu\n", (unsigned long)answer);
        fflush(stdout);
    }
    if (export_ != NULL) {
        printf("stop %lu\n", (unsigned long)vd_fuse_export_stop(export_));
        fflush(stdout);
    }
    vd_handle_release(handle);
    return vd_engine_close_handle(handle) == VD_ERROR_SUCCESS && status == VD_ERROR_SUCCESS ? 0 : 1;
}
