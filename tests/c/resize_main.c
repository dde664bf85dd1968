/* Test harness for ResizeVirtualDisk and ExpandVirtualDisk under fault
 * injection (built with -DVD_FAULT_INJECTION, host/io.h): the first FAULTS
 * writes, flushes and size changes succeed and every later one fails, as if
 * the machine had stopped there.
 *
 *   resize_main PATH NEW_SIZE FLAGS FAULTS      ResizeVirtualDisk
 *   resize_main PATH NEW_SIZE expand FAULTS     ExpandVirtualDisk
 * FAULTS -1 lets everything through.  Prints one JSON object: the call's
 * status and whether the injected stop was reached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/io.h"
#include "virtdisk_api.h"
#include "vdengine.h"
#include "wide_path.h"

static HANDLE open_disk(const char *path)
{
    HANDLE handle = NULL;
    return open_path(path, VIRTUAL_DISK_ACCESS_ALL, NULL, &handle) == ERROR_SUCCESS ? handle : NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: resize_main PATH NEW_SIZE FLAGS|expand FAULTS\n");
        return 2;
    }
    HANDLE handle = open_disk(argv[1]);
    if (handle == NULL) {
        fprintf(stderr, "resize_main: open failed\n");
        return 2;
    }
    unsigned long long size = strtoull(argv[2], NULL, 0);
    vd_fault_writes_left = strtol(argv[4], NULL, 0);
    DWORD status;
    if (strcmp(argv[3], "expand") == 0) {
        EXPAND_VIRTUAL_DISK_PARAMETERS parameters;
        memset(&parameters, 0, sizeof parameters);
        parameters.Version = EXPAND_VIRTUAL_DISK_VERSION_1;
        parameters.Version1.NewSize = size;
        status = ExpandVirtualDisk(handle, EXPAND_VIRTUAL_DISK_FLAG_NONE, &parameters, NULL);
    } else {
        RESIZE_VIRTUAL_DISK_PARAMETERS parameters;
        memset(&parameters, 0, sizeof parameters);
        parameters.Version = RESIZE_VIRTUAL_DISK_VERSION_1;
        parameters.Version1.NewSize = size;
        status = ResizeVirtualDisk(handle, (RESIZE_VIRTUAL_DISK_FLAG)strtoul(argv[3], NULL, 0), &parameters,
                                   NULL);
    }
    int stopped = vd_fault_writes_left == 0;
    vd_fault_writes_left = -1;
    vd_engine_close_handle(handle);
    printf("{\"status\": %lu, \"stopped\": %s}\n", (unsigned long)status, stopped ? "true" : "false");
    return 0;
}
