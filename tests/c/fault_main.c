/* Fault-injection harness: runs updates through the public API on an image
 * while the io.c fault hook stops every file change after the first K, as
 * if the machine had stopped there, and reports what an open of the image
 * answers.  Compiled with -DVD_FAULT_INJECTION and every engine source.
 *
 *   fault_main IMAGE [--readonly] [--fault K] OP...
 *   fault_main OUT --create-child PARENT [--no-copy]
 *   fault_main OUT --create-from SOURCE [--fixed] [--fault K]
 *
 *   show                   nothing; just the report
 *   identifier GUID        SetVirtualDiskInformation IDENTIFIER
 *   disk-id GUID           ... VIRTUAL_DISK_ID
 *   physical BYTES         ... PHYSICAL_SECTOR_SIZE
 *   parent PATH            ... PARENT_PATH
 *   meta-set GUID DATA     SetVirtualDiskMetadata (DATA: hex, "-" or
 *                          fill:LENGTH:BYTE)
 *   meta-delete GUID       DeleteVirtualDiskMetadata
 *   copy-from PATH PIECE   vd_engine_copy_from_file of the whole disk from
 *                          the raw file PATH in PIECE-byte pieces
 *
 * The image is opened with OpenVirtualDisk version 2 (ReadOnly as asked,
 * parents resolved).  The report: the open's code, each op's code, the
 * file changes the ops made ("changes", counted by the hook when no K is
 * given), GetVirtualDiskInformation's IDENTIFIER, VIRTUAL_DISK_ID,
 * VHD_PHYSICAL_SECTOR_SIZE, PARENT_IDENTIFIER and resolved PARENT_LOCATION,
 * the user items (Enumerate / GetVirtualDiskMetadata: GUID, length,
 * FNV-1a of the bytes) and an FNV-1a of the virtual disk content read
 * through the handle's chain. */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtdisk_api.h"
#include "disk/chain.h"
#include "base/guid.h"
#include "api/handle.h"
#include "host/io.h"
#include "json_print.h"
#include "update_harness.h"
#include "wide_path.h"
#include "base/vd_errors.h"
#include "vdengine.h"

#define ITEM_ROOM (1u << 20)

static int parse_guid(const char *text, GUID *guid)
{
    vd_guid value;
    if (!parse_guid_text(text, &value))
        return 0;
    vd_guid_to_api(&value, guid);
    return 1;
}

static void print_guid(const GUID *guid)
{
    vd_guid value = vd_guid_from_api(guid);
    print_guid_value(&value);
}

static DWORD get_info(HANDLE handle, GET_VIRTUAL_DISK_INFO_VERSION version, GET_VIRTUAL_DISK_INFO *info,
                      ULONG size)
{
    memset(info, 0, size);
    info->Version = version;
    return GetVirtualDiskInformation(handle, &size, info, NULL);
}

static void report_items(HANDLE handle)
{
    ULONG count = 0;
    DWORD status = EnumerateVirtualDiskMetadata(handle, &count, NULL);
    printf(",\n  \"list_status\": %" PRIu32 ", \"items\": [", (uint32_t)status);
    GUID *items = malloc((count ? count : 1) * sizeof *items);
    uint8_t *buffer = malloc(ITEM_ROOM);
    if (status != ERROR_INSUFFICIENT_BUFFER || items == NULL || buffer == NULL
        || EnumerateVirtualDiskMetadata(handle, &count, items) != ERROR_SUCCESS)
        count = 0;
    for (ULONG i = 0; i < count; i++) {
        ULONG size = ITEM_ROOM;
        DWORD get = GetVirtualDiskMetadata(handle, &items[i], &size, buffer);
        printf("%s{\"id\": ", i ? ", " : "");
        print_guid(&items[i]);
        printf(", \"status\": %" PRIu32 ", \"length\": %" PRIu32 ", \"hash\": \"%016" PRIx64 "\"}",
               (uint32_t)get, (uint32_t)size, get == ERROR_SUCCESS ? fnv1a(FNV_START, buffer, size) : 0);
    }
    printf("]");
    free(items);
    free(buffer);
}

static void report_content(HANDLE handle)
{
    vd_disk *disk = vd_handle_acquire(handle);
    uint8_t *piece = malloc(1u << 20);
    uint64_t hash = FNV_START;
    uint32_t status = disk == NULL || piece == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    for (uint64_t at = 0; status == VD_ERROR_SUCCESS && at < disk->image.virtual_size; at += 1u << 20) {
        uint64_t left = disk->image.virtual_size - at;
        uint64_t length = left < (1u << 20) ? left : (1u << 20);
        status = vd_chain_read(&disk->image, &disk->chain, at, piece, length);
        if (status == VD_ERROR_SUCCESS)
            hash = fnv1a(hash, piece, (size_t)length);
    }
    if (disk != NULL)
        vd_handle_release(handle);
    free(piece);
    printf(",\n  \"content_status\": %" PRIu32 ", \"content\": \"%016" PRIx64 "\"", status, hash);
}

static void report(HANDLE handle)
{
    union {
        GET_VIRTUAL_DISK_INFO info;
        uint8_t room[4096];
    } answer;
    GET_VIRTUAL_DISK_INFO *info = &answer.info;
    DWORD status = get_info(handle, GET_VIRTUAL_DISK_INFO_IDENTIFIER, info, sizeof answer);
    printf(",\n  \"identifier\": ");
    if (status == ERROR_SUCCESS)
        print_guid(&info->Identifier);
    else
        printf("null");
    status = get_info(handle, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, info, sizeof answer);
    printf(", \"virtual_disk_id\": ");
    if (status == ERROR_SUCCESS)
        print_guid(&info->VirtualDiskId);
    else
        printf("null");
    status = get_info(handle, GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE, info, sizeof answer);
    printf(",\n  \"physical_sector_size\": %" PRIu32, status == ERROR_SUCCESS ? (uint32_t)info->VhdPhysicalSectorSize : 0);
    status = get_info(handle, GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER, info, sizeof answer);
    printf(", \"parent_identifier\": ");
    if (status == ERROR_SUCCESS)
        print_guid(&info->ParentIdentifier);
    else
        printf("null");
    status = get_info(handle, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, info, sizeof answer);
    printf(", \"parent_location\": ");
    if (status == ERROR_SUCCESS) {
        size_t units = 0;
        const WCHAR *location = info->ParentLocation.ParentLocationBuffer;
        while (units < 1000 && location[units] != 0)
            units++;
        char *text = vd_utf16_to_utf8(location, units);
        print_json_string(text);
        free(text);
    } else {
        printf("null");
    }
    report_items(handle);
    report_content(handle);
}

/* The raw file at `path` written into the whole disk by the engine's copy
 * (a conversion from a raw image does this into a new disk). */
static DWORD copy_from(HANDLE handle, const char *path, ULONG piece)
{
    GET_VIRTUAL_DISK_INFO info;
    ULONG size = sizeof info;
    memset(&info, 0, sizeof info);
    info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
    DWORD status = GetVirtualDiskInformation(handle, &size, &info, NULL);
    if (status != ERROR_SUCCESS)
        return status;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return VD_ERROR_FILE_NOT_FOUND;
    status = vd_engine_copy_from_file(handle, fd, 0, info.Size.VirtualSize, piece);
    close(fd);
    return status;
}

static int run_op(HANDLE handle, int argc, char **argv, int *i)
{
    const char *op = argv[*i];
    int left = argc - *i - 1;
    char **arg = argv + *i + 1;
    SET_VIRTUAL_DISK_INFO set;
    memset(&set, 0, sizeof set);
    GUID guid;
    DWORD status;
    printf("{\"op\": ");
    print_json_string(op);
    if (strcmp(op, "show") == 0) {
        status = ERROR_SUCCESS;
    } else if ((strcmp(op, "identifier") == 0 || strcmp(op, "disk-id") == 0) && left >= 1
               && parse_guid(arg[0], &guid)) {
        if (strcmp(op, "identifier") == 0) {
            set.Version = SET_VIRTUAL_DISK_INFO_IDENTIFIER;
            set.UniqueIdentifier = guid;
        } else {
            set.Version = SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID;
            set.VirtualDiskId = guid;
        }
        status = SetVirtualDiskInformation(handle, &set);
        *i += 1;
    } else if (strcmp(op, "physical") == 0 && left >= 1) {
        set.Version = SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE;
        set.VhdPhysicalSectorSize = (ULONG)strtoul(arg[0], NULL, 0);
        status = SetVirtualDiskInformation(handle, &set);
        *i += 1;
    } else if (strcmp(op, "parent") == 0 && left >= 1) {
        WCHAR *path = wide_path(arg[0]);
        set.Version = SET_VIRTUAL_DISK_INFO_PARENT_PATH;
        set.ParentFilePath = path;
        status = path == NULL ? ERROR_INVALID_PARAMETER : SetVirtualDiskInformation(handle, &set);
        free(path);
        *i += 1;
    } else if (strcmp(op, "meta-set") == 0 && left >= 2 && parse_guid(arg[0], &guid)) {
        ULONG length = 0;
        uint8_t *data = parse_data(arg[1], &length);
        status = data == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : SetVirtualDiskMetadata(handle, &guid, length, data);
        free(data);
        *i += 2;
    } else if (strcmp(op, "copy-from") == 0 && left >= 2) {
        status = copy_from(handle, arg[0], (ULONG)strtoul(arg[1], NULL, 0));
        *i += 2;
    } else if (strcmp(op, "meta-delete") == 0 && left >= 1 && parse_guid(arg[0], &guid)) {
        status = DeleteVirtualDiskMetadata(handle, &guid);
        *i += 1;
    } else {
        printf("}");
        return 0;
    }
    printf(", \"status\": %" PRIu32 "}", (uint32_t)status);
    return 1;
}

/* CreateVirtualDisk version 2 of OUT (the format from its extension) with
 * `parameters`, whose Version2 fields the caller has set; the handle in
 * *handle on success, for the caller to close. */
static DWORD create_version2(const char *out, CREATE_VIRTUAL_DISK_PARAMETERS *parameters,
                             CREATE_VIRTUAL_DISK_FLAG flags, HANDLE *handle)
{
    VIRTUAL_STORAGE_TYPE type;
    memset(&type, 0, sizeof type);
    parameters->Version = CREATE_VIRTUAL_DISK_VERSION_2;
    WCHAR *path = wide_path(out);
    *handle = NULL;
    DWORD status = CreateVirtualDisk(&type, path, VIRTUAL_DISK_ACCESS_NONE, NULL, flags, 0, parameters,
                                     NULL, handle);
    free(path);
    return status;
}

/* fault_main OUT --create-child PARENT [--no-copy]: CreateVirtualDisk
 * version 2 with ParentPath, without faults; prints the code. */
static int create_child(const char *out, const char *parent, int no_copy)
{
    CREATE_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    WCHAR *parent_path = wide_path(parent);
    parameters.Version2.ParentPath = parent_path;
    HANDLE handle;
    DWORD status = create_version2(out, &parameters,
                                   no_copy ? CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT
                                           : CREATE_VIRTUAL_DISK_FLAG_NONE, &handle);
    if (status == ERROR_SUCCESS)
        vd_engine_close_handle(handle);
    free(parent_path);
    printf("{\"create\": %" PRIu32 "}\n", (uint32_t)status);
    return 0;
}

/* fault_main OUT --create-from SOURCE [--fixed] [--fault K]:
 * CreateVirtualDisk version 2 with SourcePath (the format from OUT's
 * extension; dynamic, or fully allocated with --fixed), every file change
 * after the first K failing.  Prints the code, the changes the create made
 * (counted when no K is given, else -1) and whether OUT exists afterwards:
 * a failed create must leave nothing behind. */
static int create_from(const char *out, const char *source, int argc, char **argv)
{
    int fixed = 0;
    long fault = -1;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--fixed") == 0)
            fixed = 1;
        else if (strcmp(argv[i], "--fault") == 0 && i + 1 < argc)
            fault = strtol(argv[++i], NULL, 0);
    }
    CREATE_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    WCHAR *source_path = wide_path(source);
    parameters.Version2.SourcePath = source_path;
    HANDLE handle;
    vd_fault_writes_left = fault >= 0 ? fault : LONG_MAX;
    DWORD status = create_version2(out, &parameters,
                                   fixed ? CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION
                                         : CREATE_VIRTUAL_DISK_FLAG_NONE, &handle);
    long left = vd_fault_writes_left;
    vd_fault_writes_left = -1;
    if (status == ERROR_SUCCESS)
        vd_engine_close_handle(handle);    /* after the count: a close's flush is not the create's */
    free(source_path);
    printf("{\"create\": %" PRIu32 ", \"changes\": %ld, \"exists\": %s}\n", (uint32_t)status,
           fault < 0 ? LONG_MAX - left : -1L, access(out, F_OK) == 0 ? "true" : "false");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[2], "--create-child") == 0)
        return create_child(argv[1], argv[3], argc >= 5 && strcmp(argv[4], "--no-copy") == 0);
    if (argc >= 4 && strcmp(argv[2], "--create-from") == 0)
        return create_from(argv[1], argv[3], argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s IMAGE [--readonly] [--fault K] OP...\n", argv[0]);
        return 2;
    }
    int read_only;
    long fault;
    int first = parse_update_options(argc, argv, &read_only, &fault);
    VIRTUAL_STORAGE_TYPE type;
    memset(&type, 0, sizeof type);
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    parameters.Version2.ReadOnly = read_only;
    WCHAR *path = wide_path(argv[1]);
    HANDLE handle = NULL;
    DWORD status = OpenVirtualDisk(&type, path, VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE,
                                   &parameters, &handle);
    free(path);
    printf("{\n  \"open\": %" PRIu32, (uint32_t)status);
    if (status != ERROR_SUCCESS) {
        printf("\n}\n");
        return 0;
    }
    vd_fault_writes_left = fault >= 0 ? fault : LONG_MAX;
    printf(",\n  \"ops\": [");
    int ok = 1;
    for (int i = first; i < argc && ok; i++) {
        printf("%s\n    ", i > first ? "," : "");
        ok = run_op(handle, argc, argv, &i);
    }
    printf("]");
    long left = vd_fault_writes_left;
    vd_fault_writes_left = -1;
    printf(",\n  \"changes\": %ld", fault < 0 ? LONG_MAX - left : -1L);
    report(handle);
    printf("\n}\n");
    vd_engine_close_handle(handle);
    return ok ? 0 : 2;
}
