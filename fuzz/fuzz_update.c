/* libFuzzer target for the update path: SetVirtualDiskInformation
 * (set_info.c, vhd_update.c, vhdx_update.c, vhdx_metadata.c,
 * vhdx_log_write.c) and the VHDX user metadata functions (metadata.c), on
 * damaged images, through the public API.
 *
 *   fuzz/build.sh update
 *   build/fuzz/fuzz_update -max_len=65536 -max_total_time=60 CORPUS_DIR
 *
 * An input is four control bytes, then the image:
 *   byte 0   bit 0: the image is a VHDX in fuzz_vhdx.c's form (sparse_file.h),
 *            else a VHD file as it is (fuzz_vhd.c's form); bit 1: make the
 *            checksums right first (checksums.h: VHD footers and dynamic
 *            header; VHDX headers and region tables), so mutations reach
 *            the fields behind them;
 *   bytes 1-3 three operations, each byte op = b % 8 with argument b / 8:
 *            0 SetVirtualDiskMetadata, 1 DeleteVirtualDiskMetadata,
 *            2 EnumerateVirtualDiskMetadata + GetVirtualDiskMetadata of each,
 *            3 SetVirtualDiskInformation VIRTUAL_DISK_ID, 4 its
 *            PHYSICAL_SECTOR_SIZE, 5 its IDENTIFIER, 6 GetVirtualDiskInformation
 *            queries on the writable handle, 7 close and open again writable.
 * The image is written to a memfd and opened by its /proc/self/fd path (no
 * file is left behind, even by a crash) with OpenVirtualDisk version 2,
 * ReadOnly FALSE and NO_PARENTS; then closed, opened read-only and queried.
 *
 * Any return code is accepted.  What must hold beyond memory safety:
 *   - once a SetVirtualDiskMetadata succeeded, every later open succeeds
 *     and GetVirtualDiskMetadata returns exactly the bytes last set (or
 *     ERROR_NOT_FOUND after a DeleteVirtualDiskMetadata that succeeded);
 *   - no handle stays open after a run. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "vdengine.h"

#include "image_input.h"

#define CONTROL_BYTES 4
#define FORMAT_VHDX 0x1u
#define REPAIR_CHECKSUMS 0x2u

#define ITEM_COUNT 4
#define ITEM_MAX_SIZE 65536u

/* Three user items and, last, the file parameters item, a system item a
 * user item must not replace ([MS-VHDX] 2.6.2.1). */
static const GUID items[ITEM_COUNT] = {
    { 0x6d1c8c35, 0x2b1f, 0x4c6e, { 0x9a, 0x41, 0x11, 0x22, 0x33, 0x44, 0x55, 0x01 } },
    { 0x6d1c8c35, 0x2b1f, 0x4c6e, { 0x9a, 0x41, 0x11, 0x22, 0x33, 0x44, 0x55, 0x02 } },
    { 0x6d1c8c35, 0x2b1f, 0x4c6e, { 0x9a, 0x41, 0x11, 0x22, 0x33, 0x44, 0x55, 0x03 } },
    { 0xcaa16737, 0xfa36, 0x4d43, { 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b } },
};

/* Item sizes an argument chooses: empty, tiny, around a sector and a log
 * sector, and the largest this target tries. */
static const ULONG item_sizes[8] = { 0, 1, 8, 100, 512, 4096, 4097, ITEM_MAX_SIZE };

/* What the items must read back as, from the calls that succeeded. */
typedef enum item_state { ITEM_UNKNOWN, ITEM_SET, ITEM_DELETED } item_state;

typedef struct expectation {
    item_state state[ITEM_COUNT];
    ULONG size[ITEM_COUNT];
    uint8_t bytes[ITEM_COUNT][ITEM_MAX_SIZE];
    int changed;   /* some SetVirtualDiskMetadata succeeded */
} expectation;

static expectation expected;
static uint8_t scratch[ITEM_MAX_SIZE];

typedef struct run {
    int fd;
    char path[64];
    WCHAR wide_path[64];
    VIRTUAL_STORAGE_TYPE type;
} run;

/* The image the input describes, in a fresh memfd; 0 on a host failure. */
static int write_image(run *run, const uint8_t *data, size_t size, unsigned control)
{
    run->fd = memfd_create("fuzz_update", MFD_CLOEXEC);
    if (run->fd < 0)
        return 0;
    return image_input_write(run->fd, data, size, (control & FORMAT_VHDX) != 0,
                             (control & REPAIR_CHECKSUMS) != 0);
}

static void name_image(run *run, unsigned control)
{
    snprintf(run->path, sizeof run->path, "/proc/self/fd/%d", run->fd);
    size_t i = 0;
    for (; run->path[i] != '\0'; i++)
        run->wide_path[i] = (WCHAR)run->path[i];
    run->wide_path[i] = 0;
    static const GUID microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;
    run->type.DeviceId = control & FORMAT_VHDX ? VIRTUAL_STORAGE_TYPE_DEVICE_VHDX
                                               : VIRTUAL_STORAGE_TYPE_DEVICE_VHD;
    run->type.VendorId = microsoft;
}

static DWORD open_image(run *run, int writable, HANDLE *handle)
{
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    parameters.Version2.ReadOnly = writable ? FALSE : TRUE;
    return OpenVirtualDisk(&run->type, run->wide_path, VIRTUAL_DISK_ACCESS_NONE,
                           OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS, &parameters, handle);
}

static void close_image(HANDLE handle)
{
    if (vd_engine_close_handle(handle) != VD_ERROR_SUCCESS)
        abort();
}

static GUID guid_from(unsigned argument, unsigned salt)
{
    GUID guid;
    memset(&guid, 0, sizeof guid);
    if (argument != 0) {   /* argument 0: the zero GUID, which is refused */
        guid.Data1 = 0x5eed0000u | argument << 8 | salt;
        guid.Data4[7] = (uint8_t)argument;
    }
    return guid;
}

static void set_item(HANDLE handle, unsigned argument, unsigned salt)
{
    unsigned item = argument % ITEM_COUNT;
    ULONG size = item_sizes[argument / ITEM_COUNT % 8];
    for (ULONG i = 0; i < size; i++)
        scratch[i] = (uint8_t)(i * 31 + salt);
    DWORD status = SetVirtualDiskMetadata(handle, &items[item], size, size ? scratch : NULL);
    if (status == VD_ERROR_SUCCESS) {
        expected.state[item] = ITEM_SET;
        expected.size[item] = size;
        memcpy(expected.bytes[item], scratch, size);
        expected.changed = 1;
    } else {
        /* Only what succeeded is promised to last. */
        expected.state[item] = ITEM_UNKNOWN;
    }
}

static void delete_item(HANDLE handle, unsigned argument)
{
    unsigned item = argument % ITEM_COUNT;
    DWORD status = DeleteVirtualDiskMetadata(handle, &items[item]);
    if (status == VD_ERROR_SUCCESS)
        expected.state[item] = ITEM_DELETED;
    else if (status != VD_ERROR_NOT_FOUND)
        expected.state[item] = ITEM_UNKNOWN;
}

static void list_items(HANDLE handle)
{
    static GUID listed[1024];
    ULONG count = 0;
    DWORD status = EnumerateVirtualDiskMetadata(handle, &count, NULL);
    if (status != VD_ERROR_SUCCESS && status != VD_ERROR_INSUFFICIENT_BUFFER)
        return;
    if (count > 1024)
        abort();   /* a VHDX holds at most 1024 user items */
    status = EnumerateVirtualDiskMetadata(handle, &count, count ? listed : NULL);
    if (status != VD_ERROR_SUCCESS)
        return;
    for (ULONG i = 0; i < count; i++) {
        ULONG size = 0;
        status = GetVirtualDiskMetadata(handle, &listed[i], &size, NULL);
        if (status == VD_ERROR_INSUFFICIENT_BUFFER && size <= 1024 * 1024) {
            uint8_t *buffer = malloc(size);
            if (buffer == NULL)
                abort();
            GetVirtualDiskMetadata(handle, &listed[i], &size, buffer);
            free(buffer);
        }
    }
}

static void set_information(HANDLE handle, SET_VIRTUAL_DISK_INFO_VERSION version,
                            unsigned argument)
{
    static const ULONG sector_sizes[4] = { 512, 4096, 0, 1024 };
    SET_VIRTUAL_DISK_INFO info;
    memset(&info, 0, sizeof info);
    info.Version = version;
    if (version == SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID)
        info.VirtualDiskId = guid_from(argument, 0x11);
    else if (version == SET_VIRTUAL_DISK_INFO_IDENTIFIER)
        info.UniqueIdentifier = guid_from(argument, 0x22);
    else
        info.VhdPhysicalSectorSize = sector_sizes[argument % 4];
    SetVirtualDiskInformation(handle, &info);
}

static void query(HANDLE handle, GET_VIRTUAL_DISK_INFO_VERSION version)
{
    static union {
        GET_VIRTUAL_DISK_INFO info;
        uint8_t bytes[4096];
    } answer;
    ULONG size = sizeof answer;
    ULONG used = 0;
    answer.info.Version = version;
    DWORD status = GetVirtualDiskInformation(handle, &size, &answer.info, &used);
    if (status == VD_ERROR_SUCCESS && used > size)
        abort();
}

/* Every item whose last change succeeded reads back as it was left. */
static void check_items(HANDLE handle)
{
    for (unsigned item = 0; item < ITEM_COUNT; item++) {
        if (expected.state[item] == ITEM_UNKNOWN)
            continue;
        ULONG size = ITEM_MAX_SIZE;
        DWORD status = GetVirtualDiskMetadata(handle, &items[item], &size, scratch);
        if (expected.state[item] == ITEM_DELETED) {
            if (status != VD_ERROR_NOT_FOUND)
                abort();
            continue;
        }
        if (status != VD_ERROR_SUCCESS || size != expected.size[item]
            || memcmp(scratch, expected.bytes[item], size) != 0)
            abort();
    }
}

/* Opens again, writable or not; once an item was set the open must work. */
static int reopen(run *run, int writable, HANDLE *handle)
{
    DWORD status = open_image(run, writable, handle);
    if (status != VD_ERROR_SUCCESS) {
        if (expected.changed)
            abort();
        return 0;
    }
    check_items(*handle);
    return 1;
}

static void operate(run *run, const uint8_t *program)
{
    HANDLE handle;
    if (open_image(run, 1, &handle) != VD_ERROR_SUCCESS)
        return;
    int open = 1;
    for (unsigned step = 0; step < CONTROL_BYTES - 1 && open; step++) {
        unsigned argument = program[step] / 8u;
        switch (program[step] % 8u) {
        case 0: set_item(handle, argument, step); break;
        case 1: delete_item(handle, argument); break;
        case 2: list_items(handle); break;
        case 3: set_information(handle, SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, argument); break;
        case 4: set_information(handle, SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE, argument); break;
        case 5: set_information(handle, SET_VIRTUAL_DISK_INFO_IDENTIFIER, argument); break;
        case 6:
            query(handle, GET_VIRTUAL_DISK_INFO_SIZE);
            query(handle, GET_VIRTUAL_DISK_INFO_IDENTIFIER);
            query(handle, GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE);
            query(handle, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID);
            break;
        default:
            close_image(handle);
            open = reopen(run, 1, &handle);
            break;
        }
    }
    if (open)
        close_image(handle);

    if (reopen(run, 0, &handle)) {
        query(handle, GET_VIRTUAL_DISK_INFO_SIZE);
        query(handle, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID);
        close_image(handle);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CONTROL_BYTES)
        return 0;
    memset(expected.state, 0, sizeof expected.state);
    expected.changed = 0;
    run run;
    memset(&run, 0, sizeof run);
    if (write_image(&run, data + CONTROL_BYTES, size - CONTROL_BYTES, data[0])) {
        name_image(&run, data[0]);
        operate(&run, data + 1);
    }
    if (run.fd >= 0)
        close(run.fd);
    if (vd_engine_open_handle_count() != 0)
        abort();
    return 0;
}
