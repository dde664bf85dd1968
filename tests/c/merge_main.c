/* Test harness for MergeVirtualDisk under fault injection (built with
 * -DVD_FAULT_INJECTION, host/io.h): the first FAULTS writes, flushes and
 * size changes succeed and every later one fails, as if the machine had
 * stopped there.
 *
 *   merge_main PATH DEPTH FAULTS     V1: the leaf at PATH and the DEPTH - 1
 *                                    images above it into the next one
 * FAULTS -1 lets everything through.  Prints one JSON object: the call's
 * status and whether the injected stop was reached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/io.h"
#include "virtdisk_api.h"
#include "vdengine.h"
#include "wide_path.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: merge_main PATH DEPTH FAULTS\n");
        return 2;
    }
    unsigned long depth = strtoul(argv[2], NULL, 0);
    OPEN_VIRTUAL_DISK_PARAMETERS open;
    memset(&open, 0, sizeof open);
    open.Version = OPEN_VIRTUAL_DISK_VERSION_1;
    open.Version1.RWDepth = (ULONG)depth + 1u;
    HANDLE handle = NULL;
    if (open_path(argv[1], VIRTUAL_DISK_ACCESS_ALL, &open, &handle) != ERROR_SUCCESS) {
        fprintf(stderr, "merge_main: open failed\n");
        return 2;
    }
    MERGE_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MERGE_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.MergeDepth = (ULONG)depth;
    vd_fault_writes_left = strtol(argv[3], NULL, 0);
    DWORD status = MergeVirtualDisk(handle, MERGE_VIRTUAL_DISK_FLAG_NONE, &parameters, NULL);
    int stopped = vd_fault_writes_left == 0;
    vd_fault_writes_left = -1;
    vd_engine_close_handle(handle);
    printf("{\"status\": %lu, \"stopped\": %s}\n", (unsigned long)status, stopped ? "true" : "false");
    return 0;
}
