/* Test harness for the device attach (attach_host.c, attached_paths.c):
 * opens an image through OpenVirtualDisk and runs one attach life cycle.
 *
 *   attach_main PATH ro|rw FLAGSHEX detach|close|detach-only
 *
 * "detach" attaches with FLAGSHEX, asks the device's path (first with a
 * buffer too small), the list of attached images (first with none), the
 * IS_LOADED information, then detaches twice; "close" attaches and closes
 * the handle without detaching; "detach-only" only detaches.  Prints one
 * JSON object of the codes and strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf16.h"
#include "vdengine.h"
#include "wide_path.h"

static void print_utf16(const char *key, const WCHAR *text, size_t units)
{
    printf(", \"%s\": [", key);
    size_t start = 0;
    while (start < units && text[start] != 0) {
        size_t length = vd_utf16_length(text + start);
        char *utf8 = vd_utf16_to_utf8(text + start, length);
        printf("%s\"%s\"", start == 0 ? "" : ", ", utf8 != NULL ? utf8 : "");
        free(utf8);
        start += length + 1;
    }
    printf("]");
}

static void query(HANDLE handle)
{
    WCHAR small[2];
    ULONG size = sizeof small;
    DWORD code = GetVirtualDiskPhysicalPath(handle, &size, small);
    printf(", \"path_small\": %u, \"path_needed\": %u", (unsigned)code, (unsigned)size);
    WCHAR *path = calloc(size / sizeof(WCHAR) + 1, sizeof(WCHAR));
    code = path != NULL ? GetVirtualDiskPhysicalPath(handle, &size, path) : 8;
    printf(", \"path_code\": %u", (unsigned)code);
    if (code == 0)
        print_utf16("path", path, size / sizeof(WCHAR));
    free(path);

    ULONG list_size = 0;
    code = GetAllAttachedVirtualDiskPhysicalPaths(&list_size, NULL);
    printf(", \"list_empty\": %u, \"list_needed\": %u", (unsigned)code, (unsigned)list_size);
    WCHAR *list = calloc(list_size / sizeof(WCHAR) + 1, sizeof(WCHAR));
    code = list != NULL ? GetAllAttachedVirtualDiskPhysicalPaths(&list_size, list) : 8;
    printf(", \"list_code\": %u", (unsigned)code);
    if (code == 0)
        print_utf16("list", list, list_size / sizeof(WCHAR));
    free(list);

    GET_VIRTUAL_DISK_INFO info;
    memset(&info, 0, sizeof info);
    info.Version = GET_VIRTUAL_DISK_INFO_IS_LOADED;
    ULONG info_size = sizeof info;
    code = GetVirtualDiskInformation(handle, &info_size, &info, NULL);
    printf(", \"loaded_code\": %u, \"loaded\": %d", (unsigned)code, info.IsLoaded ? 1 : 0);
}

/* A version 1 open with every right, or the read rights (ATTACH_RO,
 * DETACH, GET_INFO) only. */
static DWORD open_utf8(const char *utf8, int writable, HANDLE *handle)
{
    return open_path(utf8, writable ? VIRTUAL_DISK_ACCESS_ALL : VIRTUAL_DISK_ACCESS_READ, NULL,
                     handle);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    HANDLE handle = NULL;
    DWORD code = open_utf8(argv[1], strcmp(argv[2], "rw") == 0, &handle);
    ATTACH_VIRTUAL_DISK_FLAG flags = (ATTACH_VIRTUAL_DISK_FLAG)strtoul(argv[3], NULL, 16);
    printf("{\"open\": %u", (unsigned)code);
    if (code == 0 && strcmp(argv[4], "detach-only") == 0) {
        printf(", \"detach\": %u", (unsigned)DetachVirtualDisk(handle, 0, 0));
    } else if (code == 0) {
        ATTACH_VIRTUAL_DISK_PARAMETERS parameters;
        memset(&parameters, 0, sizeof parameters);
        parameters.Version = ATTACH_VIRTUAL_DISK_VERSION_1;
        code = AttachVirtualDisk(handle, NULL, flags, 0, &parameters, NULL);
        const char *detail = vd_engine_last_detail();
        printf(", \"attach\": %u, \"detail\": \"%s\"", (unsigned)code, detail != NULL ? detail : "");
        if (code == 0 && strcmp(argv[4], "detach") == 0) {
            query(handle);
            printf(", \"detach\": %u", (unsigned)DetachVirtualDisk(handle, 0, 0));
            printf(", \"detach_again\": %u", (unsigned)DetachVirtualDisk(handle, 0, 0));
        }
    }
    if (handle != NULL)
        printf(", \"close\": %u", (unsigned)vd_engine_close_handle(handle));
    printf("}\n");
    return 0;
}
