/* Test and benchmark program for the engine's C API (virtdisk_api.h), used
 * only through its public functions, as a caller of VirtDisk.dll would.
 *
 *   api_main [OPEN OPTIONS] PATH     opens PATH, prints every
 *                                    GetVirtualDiskInformation version as
 *                                    one JSON object, closes
 *   api_main --loop N [OPEN OPTIONS] PATH
 *                                    N x (open + info SIZE + close); prints
 *                                    the nanoseconds per iteration
 *   api_main --loop-info N [OPEN OPTIONS] PATH
 *                                    one open, N x info SIZE on that handle
 *                                    (the cost of a handle lookup + query)
 *   api_main --loop-invalid N        N x OpenVirtualDisk with a NULL path
 *   api_main --arg-cases PATH        OpenVirtualDisk argument cases
 *   api_main --handle-cases PATH     handle validation cases
 *   api_main --buffer-cases PATH     GetVirtualDiskInformation buffer cases
 *   api_main --argument-cases PATH   every function besides Open, GetInformation
 *                                    and Create, with good arguments, a NULL
 *                                    handle and one bad argument
 *   api_main --stress THREADS N [OPEN OPTIONS] PATH
 *                                    open/info/close from THREADS threads,
 *                                    N rounds each, racing on shared handles
 *   api_main --hold [OPEN OPTIONS] PATH
 *                                    opens, prints the code, keeps the
 *                                    handle until stdin closes (for another
 *                                    process to collide with)
 *
 * OPEN OPTIONS: --device N, --vendor unknown|microsoft|other, --mask HEX,
 * --flags HEX, --params none|1|2|3, --rw-depth N, --read-only, --info-only.
 * Defaults: unknown type, VIRTUAL_DISK_ACCESS_READ, no flags, NULL
 * parameters (version 1, default RWDepth).  The case modes print the codes
 * the engine returned under named cases; the tests hold the expected
 * values.  Codes are printed in decimal. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virtdisk_api.h"
#include "json_print.h"
#include "wide_path.h"
#include "base/utf16.h"
#include "vdengine.h"

#define INVALID_HANDLE ((HANDLE)(intptr_t)-1)

static const GUID vendor_microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;
static const GUID vendor_other = { 0x12345678, 0x9abc, 0xdef0,
                                   { 1, 2, 3, 4, 5, 6, 7, 8 } };

typedef struct open_request {
    VIRTUAL_STORAGE_TYPE type;
    VIRTUAL_DISK_ACCESS_MASK mask;
    OPEN_VIRTUAL_DISK_FLAG flags;
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    int use_parameters;
    WCHAR *path;
} open_request;

static void fail(const char *message)
{
    fprintf(stderr, "api_main: %s\n", message);
    exit(2);
}

static WCHAR *wide(const char *text)
{
    WCHAR *out = wide_path(text);
    if (out == NULL)
        fail("path is not UTF-8, or out of memory");
    return out;
}

static void request_defaults(open_request *request)
{
    memset(request, 0, sizeof *request);
    request->mask = VIRTUAL_DISK_ACCESS_READ;
}

static DWORD request_open(const open_request *request, HANDLE *handle)
{
    OPEN_VIRTUAL_DISK_PARAMETERS parameters = request->parameters;
    return OpenVirtualDisk((PVIRTUAL_STORAGE_TYPE)&request->type, request->path, request->mask,
                           request->flags, request->use_parameters ? &parameters : NULL,
                           handle);
}

/* Parses OPEN OPTIONS from argv[*index...]; returns when an argument is not
 * one of them. */
static void parse_open_options(int argc, char **argv, int *index, open_request *request)
{
    while (*index + 1 < argc) {
        const char *option = argv[*index];
        const char *value = argv[*index + 1];
        if (strcmp(option, "--device") == 0) {
            request->type.DeviceId = (ULONG)strtoul(value, NULL, 0);
        } else if (strcmp(option, "--vendor") == 0) {
            if (strcmp(value, "microsoft") == 0)
                request->type.VendorId = vendor_microsoft;
            else if (strcmp(value, "other") == 0)
                request->type.VendorId = vendor_other;
            else
                memset(&request->type.VendorId, 0, sizeof request->type.VendorId);
        } else if (strcmp(option, "--mask") == 0) {
            request->mask = (VIRTUAL_DISK_ACCESS_MASK)strtoul(value, NULL, 0);
        } else if (strcmp(option, "--flags") == 0) {
            request->flags = (OPEN_VIRTUAL_DISK_FLAG)strtoul(value, NULL, 0);
        } else if (strcmp(option, "--params") == 0) {
            request->use_parameters = strcmp(value, "none") != 0;
            if (request->use_parameters)
                request->parameters.Version = (OPEN_VIRTUAL_DISK_VERSION)strtoul(value, NULL, 0);
        } else if (strcmp(option, "--rw-depth") == 0) {
            request->parameters.Version1.RWDepth = (ULONG)strtoul(value, NULL, 0);
        } else if (strcmp(option, "--read-only") == 0) {
            request->parameters.Version2.ReadOnly = TRUE;
            *index += 1;
            continue;
        } else if (strcmp(option, "--info-only") == 0) {
            request->parameters.Version2.GetInfoOnly = TRUE;
            *index += 1;
            continue;
        } else {
            return;
        }
        *index += 2;
    }
}

/* ---- JSON output -------------------------------------------------------- */

static void print_wide(const WCHAR *text, size_t units)
{
    char *utf8 = vd_utf16_to_utf8(text, units);
    if (utf8 == NULL) {
        fputs("null", stdout);
        return;
    }
    print_json_string(utf8);
    free(utf8);
}

/* The registry form of a GUID, which Python's uuid.UUID(bytes_le=...) prints. */
static void print_guid(const GUID *guid)
{
    printf("\"%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x\"", guid->Data1,
           guid->Data2, guid->Data3, guid->Data4[0], guid->Data4[1], guid->Data4[2],
           guid->Data4[3], guid->Data4[4], guid->Data4[5], guid->Data4[6], guid->Data4[7]);
}

static const char *const version_names[] = {
    "UNSPECIFIED", "SIZE", "IDENTIFIER", "PARENT_LOCATION", "PARENT_IDENTIFIER",
    "PARENT_TIMESTAMP", "VIRTUAL_STORAGE_TYPE", "PROVIDER_SUBTYPE", "IS_4K_ALIGNED",
    "PHYSICAL_DISK", "VHD_PHYSICAL_SECTOR_SIZE", "SMALLEST_SAFE_VIRTUAL_SIZE", "FRAGMENTATION",
    "IS_LOADED", "VIRTUAL_DISK_ID", "CHANGE_TRACKING_STATE",
};

#define LAST_VERSION GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE

/* Prints the strings of a PARENT_LOCATION answer of `used` bytes: one when
 * resolved, the MULTI_SZ list otherwise. */
static void print_parent_location(const GET_VIRTUAL_DISK_INFO *info, ULONG used)
{
    size_t offset = offsetof(GET_VIRTUAL_DISK_INFO, ParentLocation.ParentLocationBuffer);
    size_t units = used > offset ? (used - offset) / sizeof(WCHAR) : 0;
    const WCHAR *text = info->ParentLocation.ParentLocationBuffer;
    printf(", \"ParentResolved\": %s, \"ParentLocationBuffer\": [",
           info->ParentLocation.ParentResolved ? "true" : "false");
    size_t start = 0;
    int first = 1;
    while (start < units && text[start] != 0) {
        size_t end = start;
        while (end < units && text[end] != 0)
            end++;
        printf("%s", first ? "" : ", ");
        print_wide(text + start, end - start);
        first = 0;
        if (info->ParentLocation.ParentResolved)
            break;
        start = end + 1;
    }
    printf("], \"units\": %zu", units);
}

/* The versions whose answer is one 32-bit value, all at the same place. */
static const char *const scalar_names[LAST_VERSION + 1] = {
    [GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP] = "ParentTimestamp",
    [GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE] = "ProviderSubtype",
    [GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED] = "Is4kAligned",
    [GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE] = "VhdPhysicalSectorSize",
    [GET_VIRTUAL_DISK_INFO_FRAGMENTATION] = "FragmentationPercentage",
    [GET_VIRTUAL_DISK_INFO_IS_LOADED] = "IsLoaded",
};

static void print_info_fields(const GET_VIRTUAL_DISK_INFO *info, ULONG used)
{
    if (info->Version <= LAST_VERSION && scalar_names[info->Version] != NULL) {
        printf(", \"%s\": %" PRIu32, scalar_names[info->Version], info->ProviderSubtype);
        return;
    }
    switch (info->Version) {
    case GET_VIRTUAL_DISK_INFO_SIZE:
        printf(", \"VirtualSize\": %" PRIu64 ", \"PhysicalSize\": %" PRIu64
               ", \"BlockSize\": %" PRIu32 ", \"SectorSize\": %" PRIu32,
               info->Size.VirtualSize, info->Size.PhysicalSize, info->Size.BlockSize,
               info->Size.SectorSize);
        break;
    case GET_VIRTUAL_DISK_INFO_IDENTIFIER:
    case GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER:
    case GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
        fputs(", \"Guid\": ", stdout);
        print_guid(&info->Identifier);
        break;
    case GET_VIRTUAL_DISK_INFO_PARENT_LOCATION:
        print_parent_location(info, used);
        break;
    case GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE:
        printf(", \"DeviceId\": %" PRIu32 ", \"VendorId\": ", info->VirtualStorageType.DeviceId);
        print_guid(&info->VirtualStorageType.VendorId);
        break;
    case GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK:
        printf(", \"LogicalSectorSize\": %" PRIu32 ", \"PhysicalSectorSize\": %" PRIu32
               ", \"IsRemote\": %d",
               info->PhysicalDisk.LogicalSectorSize, info->PhysicalDisk.PhysicalSectorSize,
               (int)info->PhysicalDisk.IsRemote);
        break;
    case GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE:
        printf(", \"SmallestSafeVirtualSize\": %" PRIu64, info->SmallestSafeVirtualSize);
        break;
    case GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE:
        printf(", \"Enabled\": %d, \"NewerChanges\": %d, \"MostRecentId\": ",
               (int)info->ChangeTrackingState.Enabled,
               (int)info->ChangeTrackingState.NewerChanges);
        print_wide(info->ChangeTrackingState.MostRecentId,
                   (used - offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId))
                           / sizeof(WCHAR) - 1);
        break;
    default:
        break;
    }
}

/* One version, queried the way callers do it: a GET_VIRTUAL_DISK_INFO
 * first, a larger buffer if the engine asks for one. */
static GET_VIRTUAL_DISK_INFO *info_buffer(ULONG size, GET_VIRTUAL_DISK_INFO_VERSION version)
{
    GET_VIRTUAL_DISK_INFO *info = calloc(1, size);
    if (info == NULL)
        fail("out of memory");
    info->Version = version;
    return info;
}

static void print_info(HANDLE handle, GET_VIRTUAL_DISK_INFO_VERSION version)
{
    ULONG size = sizeof(GET_VIRTUAL_DISK_INFO);
    GET_VIRTUAL_DISK_INFO *info = info_buffer(size, version);
    ULONG used = 0;
    DWORD status = GetVirtualDiskInformation(handle, &size, info, &used);
    ULONG asked = 0;
    if (status == ERROR_INSUFFICIENT_BUFFER) {
        asked = size;
        free(info);
        info = info_buffer(size, version);
        status = GetVirtualDiskInformation(handle, &size, info, &used);
    }
    printf("\"%s\": {\"status\": %" PRIu32, version_names[version], status);
    if (asked != 0)
        printf(", \"asked\": %" PRIu32, asked);
    if (status == ERROR_SUCCESS) {
        printf(", \"SizeUsed\": %" PRIu32, used);
        print_info_fields(info, used);
    }
    putchar('}');
    free(info);
}

static int dump(const open_request *request)
{
    HANDLE handle = NULL;
    DWORD status = request_open(request, &handle);
    printf("{\"open\": %" PRIu32 ", \"handles\": %" PRIu32, status,
           vd_engine_open_handle_count());
    if (status == ERROR_SUCCESS) {
        fputs(", \"info\": {", stdout);
        for (int version = GET_VIRTUAL_DISK_INFO_SIZE; version <= LAST_VERSION; version++) {
            if (version != GET_VIRTUAL_DISK_INFO_SIZE)
                fputs(", ", stdout);
            print_info(handle, (GET_VIRTUAL_DISK_INFO_VERSION)version);
        }
        printf("}, \"close\": %" PRIu32, vd_engine_close_handle(handle));
    }
    printf(", \"handles_after\": %" PRIu32 "}\n", vd_engine_open_handle_count());
    return 0;
}

static int hold(const open_request *request)
{
    HANDLE handle = NULL;
    DWORD status = request_open(request, &handle);
    printf("{\"open\": %" PRIu32 "}\n", status);
    fflush(stdout);
    while (getchar() != EOF) {
    }
    if (status == ERROR_SUCCESS)
        vd_engine_close_handle(handle);
    return 0;
}

/* ---- benchmarks --------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec moment;
    clock_gettime(CLOCK_MONOTONIC, &moment);
    return (double)moment.tv_sec * 1e9 + (double)moment.tv_nsec;
}

static int loop(long iterations, const open_request *request)
{
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        HANDLE handle;
        if (request_open(request, &handle) != ERROR_SUCCESS)
            fail("open failed in the loop");
        GET_VIRTUAL_DISK_INFO info;
        ULONG size = sizeof info;
        info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
        if (GetVirtualDiskInformation(handle, &size, &info, NULL) != ERROR_SUCCESS)
            fail("info failed in the loop");
        if (vd_engine_close_handle(handle) != ERROR_SUCCESS)
            fail("close failed in the loop");
    }
    double elapsed = now_ns() - start;
    printf("{\"iterations\": %ld, \"ns_per_iteration\": %.1f}\n", iterations,
           elapsed / (double)iterations);
    return 0;
}

static int loop_info(long iterations, const open_request *request)
{
    HANDLE handle;
    if (request_open(request, &handle) != ERROR_SUCCESS)
        fail("cannot open the image");
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        GET_VIRTUAL_DISK_INFO info;
        ULONG size = sizeof info;
        info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
        if (GetVirtualDiskInformation(handle, &size, &info, NULL) != ERROR_SUCCESS)
            fail("info failed in the loop");
    }
    double elapsed = now_ns() - start;
    vd_engine_close_handle(handle);
    printf("{\"iterations\": %ld, \"ns_per_iteration\": %.1f}\n", iterations,
           elapsed / (double)iterations);
    return 0;
}

static int loop_invalid(long iterations)
{
    VIRTUAL_STORAGE_TYPE type;
    memset(&type, 0, sizeof type);
    HANDLE handle = NULL;
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        if (OpenVirtualDisk(&type, NULL, VIRTUAL_DISK_ACCESS_READ, OPEN_VIRTUAL_DISK_FLAG_NONE,
                            NULL, &handle)
            != ERROR_INVALID_PARAMETER)
            fail("a NULL path was not refused");
    }
    double elapsed = now_ns() - start;
    printf("{\"iterations\": %ld, \"ns_per_iteration\": %.1f}\n", iterations,
           elapsed / (double)iterations);
    return 0;
}

/* ---- case tables -------------------------------------------------------- */

static int case_count;

static void print_case(const char *name, DWORD status)
{
    printf("%s\"%s\": %" PRIu32, case_count++ == 0 ? "" : ",\n ", name, status);
}

/* Opens with the given arguments; prints the code, whether a failed open left
 * the handle untouched, and closes what opened. */
static void open_case(const char *name, PVIRTUAL_STORAGE_TYPE type, const WCHAR *path,
                      ULONG mask, ULONG flags, POPEN_VIRTUAL_DISK_PARAMETERS parameters,
                      int handle_pointer)
{
    HANDLE sentinel = (HANDLE)(uintptr_t)0x1234;
    HANDLE handle = sentinel;
    DWORD status = OpenVirtualDisk(type, path, (VIRTUAL_DISK_ACCESS_MASK)mask,
                                   (OPEN_VIRTUAL_DISK_FLAG)flags, parameters,
                                   handle_pointer ? &handle : NULL);
    print_case(name, status);
    if (status == ERROR_SUCCESS) {
        vd_engine_close_handle(handle);
    } else if (handle != sentinel) {
        char untouched[128];
        snprintf(untouched, sizeof untouched, "%s:handle_written", name);
        print_case(untouched, 1);
    }
}

static OPEN_VIRTUAL_DISK_PARAMETERS parameters_of(OPEN_VIRTUAL_DISK_VERSION version)
{
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = version;
    if (version == OPEN_VIRTUAL_DISK_VERSION_1)
        parameters.Version1.RWDepth = OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT;
    else
        parameters.Version2.ReadOnly = TRUE;
    return parameters;
}

static int arg_cases(const char *path_text)
{
    WCHAR *path = wide(path_text);
    VIRTUAL_STORAGE_TYPE unknown;
    memset(&unknown, 0, sizeof unknown);
    VIRTUAL_STORAGE_TYPE type = unknown;
    const ULONG read = VIRTUAL_DISK_ACCESS_READ;
    OPEN_VIRTUAL_DISK_PARAMETERS v1 = parameters_of(OPEN_VIRTUAL_DISK_VERSION_1);
    OPEN_VIRTUAL_DISK_PARAMETERS v2 = parameters_of(OPEN_VIRTUAL_DISK_VERSION_2);
    OPEN_VIRTUAL_DISK_PARAMETERS v3 = parameters_of(OPEN_VIRTUAL_DISK_VERSION_3);
    OPEN_VIRTUAL_DISK_PARAMETERS p;

    putchar('{');
    open_case("good_null_parameters", &type, path, read, 0, NULL, 1);
    open_case("good_v1", &type, path, read, 0, &v1, 1);
    open_case("good_v2", &type, path, VIRTUAL_DISK_ACCESS_NONE, 0, &v2, 1);
    open_case("good_v3", &type, path, VIRTUAL_DISK_ACCESS_NONE, 0, &v3, 1);
    open_case("good_mask_none_v1", &type, path, VIRTUAL_DISK_ACCESS_NONE, 0, &v1, 1);
    p = v1;
    p.Version1.RWDepth = 0;
    open_case("good_rw_depth_0", &type, path, read, 0, &p, 1);
    open_case("good_all_accepted_flags", &type, path, read,
              0xFFFu & ~(ULONG)OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE, NULL, 1);
    open_case("type_null", NULL, path, read, 0, NULL, 1);
    open_case("path_null", &type, NULL, read, 0, NULL, 1);
    const WCHAR empty[] = { 0 };
    open_case("path_empty", &type, empty, read, 0, NULL, 1);
    const WCHAR unpaired[] = { 'x', 0xD800, '.', 'v', 'h', 'd', 0 };
    open_case("path_unpaired_surrogate", &type, unpaired, read, 0, NULL, 1);
    open_case("handle_null", &type, path, read, 0, NULL, 0);
    open_case("mask_above_all", &type, path, VIRTUAL_DISK_ACCESS_ALL | 0x00400000u, 0, NULL, 1);
    open_case("mask_below_all", &type, path, read | 0x1u, 0, NULL, 1);
    open_case("flags_boot_drive", &type, path, read, OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE, NULL, 1);
    open_case("flags_unknown_bit", &type, path, read, 0x1000u, NULL, 1);
    open_case("flags_high_bit", &type, path, read, 0x80000000u, NULL, 1);
    p = v1;
    p.Version = OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED;
    open_case("version_0", &type, path, read, 0, &p, 1);
    p.Version = (OPEN_VIRTUAL_DISK_VERSION)4;
    open_case("version_4", &type, path, read, 0, &p, 1);
    open_case("v2_mask_read", &type, path, read, 0, &v2, 1);
    open_case("v2_mask_get_info", &type, path, VIRTUAL_DISK_ACCESS_GET_INFO, 0, &v2, 1);
    open_case("v3_mask_all", &type, path, VIRTUAL_DISK_ACCESS_ALL, 0, &v3, 1);
    p = v3;
    p.Version3.SnapshotId.Data1 = 1;
    open_case("v3_snapshot_id", &type, path, VIRTUAL_DISK_ACCESS_NONE, 0, &p, 1);

    VIRTUAL_STORAGE_TYPE typed = unknown;
    typed.VendorId = vendor_other;
    open_case("vendor_other", &typed, path, read, 0, NULL, 1);
    typed.VendorId = vendor_microsoft;
    open_case("device_unknown_vendor_microsoft", &typed, path, read, 0, NULL, 1);
    typed.DeviceId = VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET;
    open_case("device_vhdset", &typed, path, read, 0, NULL, 1);
    typed.DeviceId = 99;
    open_case("device_99", &typed, path, read, 0, NULL, 1);
    typed = unknown;
    typed.DeviceId = VIRTUAL_STORAGE_TYPE_DEVICE_VHDX;
    open_case("device_vhdx_vendor_unknown", &typed, path, read, 0, NULL, 1);
    puts("}");
    free(path);
    return 0;
}

/* A handle to PATH opened with the default request; exits if it fails. */
static HANDLE open_default(const char *path_text)
{
    open_request request;
    request_defaults(&request);
    request.path = wide(path_text);
    HANDLE handle = NULL;
    if (request_open(&request, &handle) != ERROR_SUCCESS)
        fail("cannot open the image");
    free(request.path);
    return handle;
}

static DWORD info_size_query(HANDLE handle)
{
    GET_VIRTUAL_DISK_INFO info;
    ULONG size = sizeof info;
    memset(&info, 0, sizeof info);
    info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
    return GetVirtualDiskInformation(handle, &size, &info, NULL);
}

static int handle_cases(const char *path_text)
{
    open_request request;
    request_defaults(&request);
    request.path = wide(path_text);

    putchar('{');
    print_case("close_null", vd_engine_close_handle(NULL));
    print_case("close_invalid_handle_value", vd_engine_close_handle(INVALID_HANDLE));
    print_case("close_small_integer", vd_engine_close_handle((HANDLE)(uintptr_t)4));
    print_case("close_garbage", vd_engine_close_handle((HANDLE)(uintptr_t)0xdeadbeef0ULL));
    print_case("info_null", info_size_query(NULL));
    print_case("info_invalid_handle_value", info_size_query(INVALID_HANDLE));
    print_case("info_garbage", info_size_query((HANDLE)(uintptr_t)0x7fff12345670ULL));
    print_case("handles_at_start", vd_engine_open_handle_count());

    HANDLE first = NULL;
    print_case("open_first", request_open(&request, &first));
    print_case("handles_after_open", vd_engine_open_handle_count());
    print_case("info_first", info_size_query(first));
    uintptr_t value = (uintptr_t)first;
    print_case("info_misaligned", info_size_query((HANDLE)(value + 1)));
    print_case("info_other_index", info_size_query((HANDLE)(value + 4)));
    print_case("info_other_generation", info_size_query((HANDLE)(value + ((uintptr_t)1 << 22))));
    print_case("close_first", vd_engine_close_handle(first));
    print_case("handles_after_close", vd_engine_open_handle_count());
    print_case("close_first_again", vd_engine_close_handle(first));
    print_case("info_after_close", info_size_query(first));

    /* The freed slot is reused at once: the old value must not reach the
     * new disk. */
    HANDLE second = NULL;
    print_case("open_second", request_open(&request, &second));
    print_case("second_differs", second != first);
    print_case("info_stale_first", info_size_query(first));
    print_case("close_stale_first", vd_engine_close_handle(first));
    print_case("info_second", info_size_query(second));
    print_case("close_second", vd_engine_close_handle(second));

    HANDLE many[64];
    DWORD worst = ERROR_SUCCESS;
    for (int i = 0; i < 64; i++) {
        DWORD status = request_open(&request, &many[i]);
        if (status != ERROR_SUCCESS)
            worst = status;
    }
    print_case("open_64", worst);
    print_case("handles_with_64", vd_engine_open_handle_count());
    int distinct = 1;
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++)
            distinct &= many[i] != many[j];
    print_case("distinct_64", distinct);
    worst = ERROR_SUCCESS;
    for (int i = 0; i < 64; i++) {
        DWORD status = vd_engine_close_handle(many[i]);
        if (status != ERROR_SUCCESS)
            worst = status;
    }
    print_case("close_64", worst);
    print_case("handles_at_end", vd_engine_open_handle_count());
    puts("}");
    free(request.path);
    return 0;
}

static DWORD info_query(HANDLE handle, ULONG version, ULONG *size, ULONG *used, int null_info)
{
    static union {
        GET_VIRTUAL_DISK_INFO info;
        unsigned char bytes[4096];
    } buffer;
    memset(&buffer, 0, sizeof buffer);
    buffer.info.Version = (GET_VIRTUAL_DISK_INFO_VERSION)version;
    return GetVirtualDiskInformation(handle, size, null_info ? NULL : &buffer.info, used);
}

static void buffer_case(const char *name, HANDLE handle, ULONG version, ULONG size_in,
                        int null_size, int null_info)
{
    ULONG size = size_in;
    ULONG used = 0xFFFFFFFFu;
    DWORD status = info_query(handle, version, null_size ? NULL : &size, &used, null_info);
    printf("%s\"%s\": {\"status\": %" PRIu32 ", \"size\": %" PRIu32 ", \"used\": %" PRIu32 "}",
           case_count++ == 0 ? "" : ",\n ", name, status, size, used);
}

static int buffer_cases(const char *path_text)
{
    HANDLE handle = open_default(path_text);
    const ULONG full = sizeof(GET_VIRTUAL_DISK_INFO);

    putchar('{');
    buffer_case("size_0", handle, GET_VIRTUAL_DISK_INFO_SIZE, 0, 0, 0);
    buffer_case("size_2", handle, GET_VIRTUAL_DISK_INFO_SIZE, 2, 0, 0);
    buffer_case("size_31", handle, GET_VIRTUAL_DISK_INFO_SIZE, full - 1, 0, 0);
    buffer_case("size_32", handle, GET_VIRTUAL_DISK_INFO_SIZE, full, 0, 0);
    buffer_case("size_4096", handle, GET_VIRTUAL_DISK_INFO_SIZE, 4096, 0, 0);
    buffer_case("identifier_31", handle, GET_VIRTUAL_DISK_INFO_IDENTIFIER, full - 1, 0, 0);
    buffer_case("change_tracking_0", handle, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, 0, 0, 0);
    buffer_case("change_tracking_17", handle, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, 17,
                0, 0);
    buffer_case("change_tracking_18", handle, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, 18,
                0, 0);
    buffer_case("parent_location_0", handle, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, 0, 0, 0);
    buffer_case("parent_location_4096", handle, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, 4096, 0,
                0);
    buffer_case("version_0", handle, GET_VIRTUAL_DISK_INFO_UNSPECIFIED, full, 0, 0);
    buffer_case("version_16", handle, LAST_VERSION + 1, full, 0, 0);
    buffer_case("version_huge", handle, 0x80000001u, full, 0, 0);
    buffer_case("null_size", handle, GET_VIRTUAL_DISK_INFO_SIZE, full, 1, 0);
    buffer_case("null_info", handle, GET_VIRTUAL_DISK_INFO_SIZE, full, 0, 1);
    buffer_case("null_size_bad_handle", NULL, GET_VIRTUAL_DISK_INFO_SIZE, full, 1, 0);
    ULONG size = full;
    GET_VIRTUAL_DISK_INFO info;
    memset(&info, 0, sizeof info);
    info.Version = GET_VIRTUAL_DISK_INFO_SIZE;
    print_case("null_size_used", GetVirtualDiskInformation(handle, &size, &info, NULL));
    puts("}");
    vd_engine_close_handle(handle);
    return 0;
}

/* ---- functions that are not implemented --------------------------------- */

/* One call of one function: `handle` is the handle to pass, `bad` selects
 * the variant with one invalid argument. */
typedef DWORD (*unimplemented_call)(HANDLE handle, int bad);

static WCHAR sample_path[] = { 'x', '.', 'v', 'h', 'd', 'x', 0 };
static const GUID sample_guid = { 0x1, 0x2, 0x3, { 4, 5, 6, 7, 8, 9, 10, 11 } };
static OVERLAPPED sample_overlapped;

static DWORD call_attach(HANDLE handle, int bad)
{
    ATTACH_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = bad ? (ATTACH_VIRTUAL_DISK_VERSION)3 : ATTACH_VIRTUAL_DISK_VERSION_1;
    return AttachVirtualDisk(handle, NULL,
                             ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST
                                 | ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY,
                             0, &parameters, NULL);
}

static DWORD call_detach(HANDLE handle, int bad)
{
    return DetachVirtualDisk(handle, (DETACH_VIRTUAL_DISK_FLAG)(bad ? 1 : 0), 0);
}

static DWORD call_physical_path(HANDLE handle, int bad)
{
    WCHAR path[260];
    ULONG size = sizeof path;
    return GetVirtualDiskPhysicalPath(handle, bad ? NULL : &size, path);
}

static DWORD call_all_attached(HANDLE handle, int bad)
{
    (void)handle;
    WCHAR paths[260];
    ULONG size = sizeof paths;
    return GetAllAttachedVirtualDiskPhysicalPaths(&size, bad ? NULL : paths);
}

static DWORD call_dependency(HANDLE handle, int bad)
{
    union {
        STORAGE_DEPENDENCY_INFO info;
        unsigned char bytes[512];
    } buffer;
    memset(&buffer, 0, sizeof buffer);
    buffer.info.Version = bad ? STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED
                              : STORAGE_DEPENDENCY_INFO_VERSION_2;
    ULONG used = 0;
    return GetStorageDependencyInformation(handle, GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE,
                                           sizeof buffer, &buffer.info, &used);
}

static DWORD call_set_info(HANDLE handle, int bad)
{
    SET_VIRTUAL_DISK_INFO info;
    memset(&info, 0, sizeof info);
    info.Version = bad ? (SET_VIRTUAL_DISK_INFO_VERSION)8 : SET_VIRTUAL_DISK_INFO_IDENTIFIER;
    info.UniqueIdentifier = sample_guid;
    return SetVirtualDiskInformation(handle, &info);
}

static DWORD call_enumerate_metadata(HANDLE handle, int bad)
{
    GUID items[4];
    ULONG count = 4;
    return EnumerateVirtualDiskMetadata(handle, bad ? NULL : &count, items);
}

static DWORD call_get_metadata(HANDLE handle, int bad)
{
    unsigned char data[64];
    ULONG size = sizeof data;
    return GetVirtualDiskMetadata(handle, bad ? NULL : &sample_guid, &size, data);
}

static DWORD call_set_metadata(HANDLE handle, int bad)
{
    unsigned char data[16] = { 0 };
    return SetVirtualDiskMetadata(handle, &sample_guid, sizeof data, bad ? NULL : data);
}

static DWORD call_delete_metadata(HANDLE handle, int bad)
{
    return DeleteVirtualDiskMetadata(handle, bad ? NULL : &sample_guid);
}

static DWORD call_progress(HANDLE handle, int bad)
{
    VIRTUAL_DISK_PROGRESS progress;
    return GetVirtualDiskOperationProgress(handle, &sample_overlapped, bad ? NULL : &progress);
}

static DWORD call_compact(HANDLE handle, int bad)
{
    return CompactVirtualDisk(handle, (COMPACT_VIRTUAL_DISK_FLAG)(bad ? 4 : 0), NULL, NULL);
}

static DWORD call_merge(HANDLE handle, int bad)
{
    MERGE_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MERGE_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.MergeDepth = MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH;
    return MergeVirtualDisk(handle, MERGE_VIRTUAL_DISK_FLAG_NONE, bad ? NULL : &parameters, NULL);
}

static DWORD call_expand(HANDLE handle, int bad)
{
    EXPAND_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = bad ? EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED
                             : EXPAND_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.NewSize = 128u << 20;
    return ExpandVirtualDisk(handle, EXPAND_VIRTUAL_DISK_FLAG_NONE, &parameters, NULL);
}

static DWORD call_resize(HANDLE handle, int bad)
{
    RESIZE_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = RESIZE_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.NewSize = bad ? 128u << 20 : 0;
    return ResizeVirtualDisk(handle, RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE,
                             &parameters, NULL);
}

static DWORD call_mirror(HANDLE handle, int bad)
{
    MIRROR_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MIRROR_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.MirrorVirtualDiskPath = sample_path;
    return MirrorVirtualDisk(handle, MIRROR_VIRTUAL_DISK_FLAG_NONE, &parameters,
                             bad ? NULL : &sample_overlapped);
}

static DWORD call_break_mirror(HANDLE handle, int bad)
{
    (void)bad;
    return BreakMirrorVirtualDisk(handle);
}

static DWORD call_add_parent(HANDLE handle, int bad)
{
    return AddVirtualDiskParent(handle, bad ? NULL : sample_path);
}

static DWORD call_query_changes(HANDLE handle, int bad)
{
    WCHAR id[] = { 'r', 'c', 't', 0 };
    QUERY_CHANGES_VIRTUAL_DISK_RANGE ranges[4];
    ULONG count = 4;
    ULONG64 processed = 0;
    return QueryChangesVirtualDisk(handle, bad ? NULL : id, 0, 1u << 20,
                                   QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, ranges, &count,
                                   &processed);
}

static DWORD call_take_snapshot(HANDLE handle, int bad)
{
    TAKE_SNAPSHOT_VHDSET_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = TAKE_SNAPSHOT_VHDSET_VERSION_1;
    return TakeSnapshotVhdSet(handle, &parameters, (TAKE_SNAPSHOT_VHDSET_FLAG)(bad ? 2 : 0));
}

static DWORD call_delete_snapshot(HANDLE handle, int bad)
{
    DELETE_SNAPSHOT_VHDSET_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = DELETE_SNAPSHOT_VHDSET_VERSION_1;
    return DeleteSnapshotVhdSet(handle, bad ? NULL : &parameters, DELETE_SNAPSHOT_VHDSET_FLAG_NONE);
}

static DWORD call_modify(HANDLE handle, int bad)
{
    MODIFY_VHDSET_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH;
    parameters.DefaultFilePath = bad ? NULL : sample_path;
    return ModifyVhdSet(handle, &parameters, MODIFY_VHDSET_FLAG_NONE);
}

static DWORD call_apply_snapshot(HANDLE handle, int bad)
{
    APPLY_SNAPSHOT_VHDSET_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = bad ? APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED
                             : APPLY_SNAPSHOT_VHDSET_VERSION_1;
    return ApplySnapshotVhdSet(handle, &parameters, APPLY_SNAPSHOT_VHDSET_FLAG_NONE);
}

static DWORD call_raw_scsi(HANDLE handle, int bad)
{
    RAW_SCSI_VIRTUAL_DISK_PARAMETERS parameters;
    UCHAR test_unit_ready[6] = { 0 };
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = RAW_SCSI_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.CdbLength = sizeof test_unit_ready;
    parameters.Version1.Cdb = test_unit_ready;
    RAW_SCSI_VIRTUAL_DISK_RESPONSE response;
    return RawSCSIVirtualDisk(handle, &parameters, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE,
                              bad ? NULL : &response);
}

static DWORD call_fork(HANDLE handle, int bad)
{
    FORK_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = FORK_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.ForkedVirtualDiskPath = bad ? NULL : sample_path;
    return ForkVirtualDisk(handle, FORK_VIRTUAL_DISK_FLAG_NONE, &parameters, &sample_overlapped);
}

static DWORD call_complete_fork(HANDLE handle, int bad)
{
    (void)bad;
    return CompleteForkVirtualDisk(handle);
}

/* Every function besides Open, GetInformation and Create, with whether the
 * engine carries it out (1) or refuses every call after the argument and
 * handle checks (0): ERROR_CALL_NOT_IMPLEMENTED or a decided code
 * (not_implemented.c). */
static const struct {
    const char *name;
    unimplemented_call call;
    int takes_handle;
    int has_bad_variant;
    int implemented;
} checked_calls[] = {
    { "AttachVirtualDisk", call_attach, 1, 1, 1 },
    { "DetachVirtualDisk", call_detach, 1, 1, 1 },
    { "GetVirtualDiskPhysicalPath", call_physical_path, 1, 1, 1 },
    { "GetAllAttachedVirtualDiskPhysicalPaths", call_all_attached, 0, 1, 1 },
    { "GetStorageDependencyInformation", call_dependency, 1, 1, 1 },
    { "SetVirtualDiskInformation", call_set_info, 1, 1, 1 },
    { "EnumerateVirtualDiskMetadata", call_enumerate_metadata, 1, 1, 1 },
    { "GetVirtualDiskMetadata", call_get_metadata, 1, 1, 1 },
    { "SetVirtualDiskMetadata", call_set_metadata, 1, 1, 1 },
    { "DeleteVirtualDiskMetadata", call_delete_metadata, 1, 1, 1 },
    { "GetVirtualDiskOperationProgress", call_progress, 1, 1, 1 },
    { "CompactVirtualDisk", call_compact, 1, 1, 1 },
    { "MergeVirtualDisk", call_merge, 1, 1, 1 },
    { "ExpandVirtualDisk", call_expand, 1, 1, 1 },
    { "ResizeVirtualDisk", call_resize, 1, 1, 1 },
    { "MirrorVirtualDisk", call_mirror, 1, 1, 1 },
    { "BreakMirrorVirtualDisk", call_break_mirror, 1, 0, 1 },
    { "AddVirtualDiskParent", call_add_parent, 1, 1, 1 },
    { "QueryChangesVirtualDisk", call_query_changes, 1, 1, 0 },
    { "TakeSnapshotVhdSet", call_take_snapshot, 1, 1, 0 },
    { "DeleteSnapshotVhdSet", call_delete_snapshot, 1, 1, 0 },
    { "ModifyVhdSet", call_modify, 1, 1, 0 },
    { "ApplySnapshotVhdSet", call_apply_snapshot, 1, 1, 0 },
    { "RawSCSIVirtualDisk", call_raw_scsi, 1, 1, 1 },
    { "ForkVirtualDisk", call_fork, 1, 1, 0 },
    { "CompleteForkVirtualDisk", call_complete_fork, 1, 0, 0 },
};

static int argument_cases(const char *path_text)
{
    HANDLE handle = open_default(path_text);
    puts("{");
    size_t count = sizeof checked_calls / sizeof checked_calls[0];
    for (size_t i = 0; i < count; i++) {
        printf(" \"%s\": {\"implemented\": %d, \"valid\": %" PRIu32, checked_calls[i].name,
               checked_calls[i].implemented, checked_calls[i].call(handle, 0));
        if (checked_calls[i].takes_handle) {
            printf(", \"null_handle\": %" PRIu32 ", \"garbage_handle\": %" PRIu32,
                   checked_calls[i].call(NULL, 0), checked_calls[i].call(INVALID_HANDLE, 0));
        }
        if (checked_calls[i].has_bad_variant) {
            printf(", \"bad_argument\": %" PRIu32, checked_calls[i].call(handle, 1));
            if (checked_calls[i].takes_handle)
                printf(", \"bad_argument_null_handle\": %" PRIu32,
                       checked_calls[i].call(NULL, 1));
        }
        printf("}%s\n", i + 1 < count ? "," : "");
    }
    puts("}");
    vd_engine_close_handle(handle);
    printf("{\"handles_at_end\": %" PRIu32 "}\n", vd_engine_open_handle_count());
    return 0;
}

/* ---- threads ------------------------------------------------------------ */

#define STRESS_SHARED 8

typedef struct stress_shared {
    const open_request *request;
    long rounds;
    HANDLE shared[STRESS_SHARED];
    pthread_barrier_t start;
} stress_shared;

typedef struct stress_result {
    long opened, queried, closed;
    long shared_ok, shared_invalid, shared_other;
    long unexpected;
} stress_result;

typedef struct stress_worker {
    stress_shared *shared;
    int index;
    stress_result result;
} stress_worker;

/* Each worker opens, queries and closes its own handles, queries the shared
 * handles, and closes one shared handle part-way through, so closes race
 * with queries of the same handle.  A shared query may only succeed or find
 * the handle closed. */
static void *stress_run(void *argument)
{
    stress_worker *worker = argument;
    stress_shared *shared = worker->shared;
    stress_result *result = &worker->result;
    pthread_barrier_wait(&shared->start);
    for (long round = 0; round < shared->rounds; round++) {
        HANDLE own;
        if (request_open(shared->request, &own) == ERROR_SUCCESS) {
            result->opened++;
            if (info_size_query(own) == ERROR_SUCCESS)
                result->queried++;
            else
                result->unexpected++;
            if (vd_engine_close_handle(own) == ERROR_SUCCESS)
                result->closed++;
            else
                result->unexpected++;
            if (info_size_query(own) != ERROR_INVALID_HANDLE)
                result->unexpected++;
        } else {
            result->unexpected++;
        }
        HANDLE target = shared->shared[(round + worker->index) % STRESS_SHARED];
        DWORD status = info_size_query(target);
        if (status == ERROR_SUCCESS)
            result->shared_ok++;
        else if (status == ERROR_INVALID_HANDLE)
            result->shared_invalid++;
        else
            result->shared_other++;
        if (round == shared->rounds / 2) {
            /* Several workers may close the same one: exactly one wins. */
            DWORD closed = vd_engine_close_handle(shared->shared[worker->index % STRESS_SHARED]);
            if (closed != ERROR_SUCCESS && closed != ERROR_INVALID_HANDLE)
                result->unexpected++;
        }
    }
    return NULL;
}

static int stress(int threads, long rounds, const open_request *request)
{
    if (threads < 1 || threads > 64)
        fail("thread count out of range");
    stress_shared shared;
    shared.request = request;
    shared.rounds = rounds;
    for (int i = 0; i < STRESS_SHARED; i++) {
        if (request_open(request, &shared.shared[i]) != ERROR_SUCCESS)
            fail("cannot open the image");
    }
    pthread_barrier_init(&shared.start, NULL, (unsigned)threads);
    stress_worker workers[64];
    pthread_t ids[64];
    for (int i = 0; i < threads; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].shared = &shared;
        workers[i].index = i;
        if (pthread_create(&ids[i], NULL, stress_run, &workers[i]) != 0)
            fail("pthread_create");
    }
    stress_result total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        stress_result *result = &workers[i].result;
        total.opened += result->opened;
        total.queried += result->queried;
        total.closed += result->closed;
        total.shared_ok += result->shared_ok;
        total.shared_invalid += result->shared_invalid;
        total.shared_other += result->shared_other;
        total.unexpected += result->unexpected;
    }
    pthread_barrier_destroy(&shared.start);
    /* Shared handles no worker closed (fewer workers than shared handles). */
    long leftover_closed = 0;
    for (int i = 0; i < STRESS_SHARED; i++) {
        if (vd_engine_close_handle(shared.shared[i]) == ERROR_SUCCESS)
            leftover_closed++;
    }
    printf("{\"threads\": %d, \"rounds\": %ld, \"opened\": %ld, \"queried\": %ld, "
           "\"closed\": %ld, \"shared_ok\": %ld, \"shared_invalid\": %ld, "
           "\"shared_other\": %ld, \"unexpected\": %ld, \"leftover_closed\": %ld, "
           "\"handles_at_end\": %" PRIu32 "}\n",
           threads, rounds, total.opened, total.queried, total.closed, total.shared_ok,
           total.shared_invalid, total.shared_other, total.unexpected, leftover_closed,
           vd_engine_open_handle_count());
    return 0;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2)
        fail("usage: see the comment at the top of api_main.c");
    const char *mode = argv[1];
    if (strcmp(mode, "--loop-invalid") == 0 && argc == 3)
        return loop_invalid(strtol(argv[2], NULL, 10));
    if (strcmp(mode, "--arg-cases") == 0 && argc == 3)
        return arg_cases(argv[2]);
    if (strcmp(mode, "--handle-cases") == 0 && argc == 3)
        return handle_cases(argv[2]);
    if (strcmp(mode, "--buffer-cases") == 0 && argc == 3)
        return buffer_cases(argv[2]);
    if (strcmp(mode, "--argument-cases") == 0 && argc == 3)
        return argument_cases(argv[2]);

    open_request request;
    request_defaults(&request);
    int index = 1;
    long count = 0;
    int threads = 0;
    if ((strcmp(mode, "--loop") == 0 || strcmp(mode, "--loop-info") == 0) && argc >= 4) {
        count = strtol(argv[2], NULL, 10);
        index = 3;
    } else if (strcmp(mode, "--stress") == 0 && argc >= 5) {
        threads = atoi(argv[2]);
        count = strtol(argv[3], NULL, 10);
        index = 4;
    } else if (strcmp(mode, "--hold") == 0) {
        index = 2;
    }
    parse_open_options(argc, argv, &index, &request);
    if (index != argc - 1)
        fail("expected one PATH after the options");
    request.path = wide(argv[index]);
    int status;
    if (strcmp(mode, "--loop") == 0)
        status = loop(count, &request);
    else if (strcmp(mode, "--loop-info") == 0)
        status = loop_info(count, &request);
    else if (strcmp(mode, "--stress") == 0)
        status = stress(threads, count, &request);
    else if (strcmp(mode, "--hold") == 0)
        status = hold(&request);
    else
        status = dump(&request);
    free(request.path);
    return status;
}
