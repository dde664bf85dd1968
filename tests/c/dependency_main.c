/* GetStorageDependencyInformation through the public API, as a C caller of
 * VirtDisk.dll sizes its buffer.
 *
 *   dependency_main image PATH FLAGS VERSION
 *   dependency_main device PATH FLAGS VERSION
 *
 * opens PATH (OpenVirtualDisk V1 GET_INFO, or vd_engine_open_device) and
 * prints one JSON object: the answers to a buffer below the header, to a
 * buffer one byte short of the size the first full-size call reported, to
 * unknown flags and to Version 0, then the entries of the call that fits
 * and whether every string lies inside the buffer. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf16.h"
#include "json_print.h"
#include "vdengine.h"
#include "virtdisk_api.h"
#include "wide_path.h"

#define HEADER offsetof(STORAGE_DEPENDENCY_INFO, Version1Entries)

static WCHAR *wide(const char *text)
{
    WCHAR *out = wide_path(text);
    if (out == NULL)
        exit(2);
    return out;
}

static DWORD call(HANDLE handle, ULONG flags, ULONG version, ULONG size, unsigned char *buffer,
                  ULONG *used)
{
    memset(buffer, 0xA5, size);
    if (size >= HEADER)
        ((STORAGE_DEPENDENCY_INFO *)(void *)buffer)->Version =
            (STORAGE_DEPENDENCY_INFO_VERSION)version;
    *used = 0;
    return GetStorageDependencyInformation(handle, (GET_STORAGE_DEPENDENCY_FLAG)flags, size,
                                           (STORAGE_DEPENDENCY_INFO *)(void *)buffer, used);
}

static int inside(const void *pointer, const unsigned char *buffer, ULONG size)
{
    const unsigned char *at = pointer;
    return at >= buffer && at < buffer + size;
}

static void print_name(const char *key, const WCHAR *text, const unsigned char *buffer,
                       ULONG size, int *all_inside)
{
    if (!inside(text, buffer, size)) {
        *all_inside = 0;
        printf(", \"%s\": null", key);
        return;
    }
    char *utf8 = vd_utf16_to_utf8(text, vd_utf16_length(text));
    printf(", \"%s\": ", key);
    print_json_string(utf8 != NULL ? utf8 : "?");
    free(utf8);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    WCHAR *path = wide(argv[2]);
    ULONG flags = (ULONG)strtoul(argv[3], NULL, 0);
    ULONG version = (ULONG)strtoul(argv[4], NULL, 0);
    HANDLE handle = NULL;
    DWORD status;
    if (strcmp(argv[1], "device") == 0) {
        status = vd_engine_open_device(path, &handle);
    } else {
        VIRTUAL_STORAGE_TYPE type = { VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, { 0, 0, 0, { 0 } } };
        status = OpenVirtualDisk(&type, path, VIRTUAL_DISK_ACCESS_GET_INFO,
                                 OPEN_VIRTUAL_DISK_FLAG_NONE, NULL, &handle);
    }
    free(path);
    if (status != ERROR_SUCCESS) {
        printf("{\"open\": %" PRIu32 "}\n", status);
        return 0;
    }
    unsigned char *buffer = malloc(65536);
    if (buffer == NULL)
        return 2;
    ULONG used;
    printf("{\"open\": 0");
    status = call(handle, flags, version, 4, buffer, &used);
    printf(", \"below_header\": [%" PRIu32 ", %" PRIu32 "]", status, used);
    printf(", \"unknown_flags\": %" PRIu32, call(handle, flags | 0x4u, version, 4096, buffer, &used));
    printf(", \"version_0\": %" PRIu32, call(handle, flags, 0, 4096, buffer, &used));
    status = call(handle, flags, version, HEADER, buffer, &used);
    ULONG needed = used;
    printf(", \"header_only\": [%" PRIu32 ", %" PRIu32 "]", status, used);
    if (needed > HEADER) {
        status = call(handle, flags, version, needed - 1, buffer, &used);
        printf(", \"one_short\": [%" PRIu32 ", %" PRIu32 "]", status, used);
    }
    status = call(handle, flags, version, needed, buffer, &used);
    printf(", \"exact\": [%" PRIu32 ", %" PRIu32 "]", status, used);
    const STORAGE_DEPENDENCY_INFO *info = (const STORAGE_DEPENDENCY_INFO *)(void *)buffer;
    int all_inside = 1;
    printf(", \"version\": %" PRIu32 ", \"entries\": [", (uint32_t)info->Version);
    for (ULONG i = 0; status == ERROR_SUCCESS && i < info->NumberEntries; i++) {
        const STORAGE_DEPENDENCY_INFO_TYPE_1 *one = &info->Version1Entries[i];
        const STORAGE_DEPENDENCY_INFO_TYPE_2 *two = &info->Version2Entries[i];
        DEPENDENT_DISK_FLAG type_flags = version == 1 ? one->DependencyTypeFlags
                                                      : two->DependencyTypeFlags;
        ULONG device = version == 1 ? one->VirtualStorageType.DeviceId
                                    : two->VirtualStorageType.DeviceId;
        printf("%s{\"flags\": %" PRIu32 ", \"device\": %" PRIu32, i ? ", " : "",
               (uint32_t)type_flags, device);
        if (version == 2) {
            printf(", \"level\": %" PRIu32, two->AncestorLevel);
            print_name("device_name", two->DependencyDeviceName, buffer, needed, &all_inside);
            print_name("host_volume", two->HostVolumeName, buffer, needed, &all_inside);
            print_name("dependent_volume", two->DependentVolumeName, buffer, needed, &all_inside);
            print_name("relative_path", two->DependentVolumeRelativePath, buffer, needed,
                       &all_inside);
        }
        printf("}");
    }
    printf("], \"strings_inside\": %d", all_inside);
    vd_engine_close_handle(handle);
    printf(", \"handles_at_end\": %" PRIu32 "}\n", vd_engine_open_handle_count());
    free(buffer);
    return 0;
}
