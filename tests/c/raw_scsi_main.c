/* Return codes of RawSCSIVirtualDisk and of the NO_LOCAL_HOST kind of
 * AttachVirtualDisk / DetachVirtualDisk, through the public C API only, as
 * a caller of VirtDisk.dll would use them.
 *
 *   raw_scsi_main PATH
 *
 * PATH is a 512-byte-sector image whose bytes 1 MiB .. 1 MiB + 4 KiB hold
 * 0xAB (the test writes them with qemu-io).  Runs every case in order and
 * prints one JSON object: each case's name, then its return code, or for a
 * command that was received, {"code", "status", "key", "asc", "ascq",
 * "sense_length", "transferred"}.  The expected values are the test's.
 * The command "write_rw" leaves 4 KiB of 0x5A at LBA 100 for the test to
 * read with qemu-io. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtdisk_api.h"
#include "vdengine.h"
#include "wide_path.h"

/* Windows closes the handle with kernel32's CloseHandle; the engine with its own. */
#define CloseHandle(handle) ((void)vd_engine_close_handle(handle))

#define INVALID_HANDLE ((HANDLE)(intptr_t)-1)
#define SECTOR 512u
#define BLOCKS 8u
#define PATTERN_OFFSET_LBA 2048u    /* 1 MiB */
#define WRITE_LBA 100u

static int first = 1;

static void name(const char *label)
{
    printf("%s\n  \"%s\": ", first ? "{" : ",", label);
    first = 0;
}

static void code(const char *label, DWORD value)
{
    name(label);
    printf("%lu", (unsigned long)value);
}

/* One command's parameters: CDB, direction, data and a sense buffer. */
typedef struct command {
    UCHAR cdb[16];
    UCHAR sense[32];
    RAW_SCSI_VIRTUAL_DISK_PARAMETERS parameters;
    RAW_SCSI_VIRTUAL_DISK_RESPONSE response;
} command;

static void prepare(command *c, const UCHAR *cdb, UCHAR cdb_length, UCHAR data_in,
                    void *data, ULONG length)
{
    memset(c, 0, sizeof *c);
    memcpy(c->cdb, cdb, cdb_length);
    memset(c->sense, 0xEE, sizeof c->sense);
    c->parameters.Version = RAW_SCSI_VIRTUAL_DISK_VERSION_1;
    c->parameters.Version1.DataIn = data_in;
    c->parameters.Version1.CdbLength = cdb_length;
    c->parameters.Version1.Cdb = c->cdb;
    c->parameters.Version1.SenseInfoLength = (UCHAR)sizeof c->sense;
    c->parameters.Version1.SenseInfo = c->sense;
    c->parameters.Version1.DataTransferLength = length;
    c->parameters.Version1.DataBuffer = data;
}

static DWORD send(HANDLE handle, command *c)
{
    return RawSCSIVirtualDisk(handle, &c->parameters, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE,
                              &c->response);
}

/* Sends `c` and prints its code and, when received, the SCSI outcome. */
static void outcome(const char *label, HANDLE handle, command *c)
{
    DWORD result = send(handle, c);
    name(label);
    if (result != 0) {
        printf("%lu", (unsigned long)result);
        return;
    }
    const RAW_SCSI_VIRTUAL_DISK_RESPONSE *r = &c->response;
    /* Fixed-format sense: the key in byte 2, ASC/ASCQ in bytes 12 and 13. */
    int keyed = r->Version1.SenseInfoLength >= 3, sensed = r->Version1.SenseInfoLength >= 14;
    printf("{\"code\": 0, \"version\": %d, \"status\": %u, \"key\": %d, \"asc\": %d, "
           "\"ascq\": %d, \"sense_length\": %u, \"transferred\": %lu}",
           (int)r->Version, r->Version1.ScsiStatus, keyed ? c->sense[2] & 0x0F : -1,
           sensed ? c->sense[12] : -1, sensed ? c->sense[13] : -1,
           r->Version1.SenseInfoLength, (unsigned long)r->Version1.DataTransferLength);
}

static void rw10(UCHAR *cdb, UCHAR opcode, uint32_t lba, uint16_t blocks)
{
    memset(cdb, 0, 10);
    cdb[0] = opcode;
    cdb[2] = (UCHAR)(lba >> 24), cdb[3] = (UCHAR)(lba >> 16);
    cdb[4] = (UCHAR)(lba >> 8), cdb[5] = (UCHAR)lba;
    cdb[7] = (UCHAR)(blocks >> 8), cdb[8] = (UCHAR)blocks;
}

static HANDLE open_disk(const WCHAR *path, VIRTUAL_DISK_ACCESS_MASK mask, DWORD *result)
{
    VIRTUAL_STORAGE_TYPE type;
    memset(&type, 0, sizeof type);
    HANDLE handle = NULL;
    *result = OpenVirtualDisk(&type, path, mask, OPEN_VIRTUAL_DISK_FLAG_NONE, NULL, &handle);
    return handle;
}

static DWORD attach(HANDLE handle, ATTACH_VIRTUAL_DISK_FLAG extra)
{
    return AttachVirtualDisk(handle, NULL,
                             (ATTACH_VIRTUAL_DISK_FLAG)(ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST
                                                        | extra),
                             0, NULL, NULL);
}

/* The 87 cases: each breaks one rule of an otherwise good INQUIRY on an
 * attached handle, so that nothing but the broken rule can refuse it. */
static void parameter_cases(HANDLE handle)
{
    static const UCHAR inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
    UCHAR data[36];
    command c;

    prepare(&c, inquiry, 6, 1, data, sizeof data);
    code("raw_null_parameters",
         RawSCSIVirtualDisk(handle, NULL, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE, &c.response));
    code("raw_null_response",
         RawSCSIVirtualDisk(handle, &c.parameters, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE, NULL));
    code("raw_flags_1",
         RawSCSIVirtualDisk(handle, &c.parameters, (RAW_SCSI_VIRTUAL_DISK_FLAG)1, &c.response));
    c.parameters.Version = RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED;
    code("raw_version_0", send(handle, &c));
    c.parameters.Version = (RAW_SCSI_VIRTUAL_DISK_VERSION)2;
    code("raw_version_2", send(handle, &c));

    prepare(&c, inquiry, 6, 1, data, sizeof data);
    c.parameters.Version1.RSVDHandle = TRUE;
    code("raw_rsvd_handle", send(handle, &c));
    prepare(&c, inquiry, 6, 3, data, sizeof data);
    code("raw_data_in_3", send(handle, &c));
    prepare(&c, inquiry, 0, 1, data, sizeof data);
    code("raw_cdb_length_0", send(handle, &c));
    prepare(&c, inquiry, 6, 1, data, sizeof data);
    c.parameters.Version1.Cdb = NULL;
    code("raw_cdb_null", send(handle, &c));
    prepare(&c, inquiry, 6, 1, data, sizeof data);
    c.parameters.Version1.CdbLength = 17;
    code("raw_cdb_length_17", send(handle, &c));
    prepare(&c, inquiry, 6, 1, data, sizeof data);
    c.parameters.Version1.SenseInfo = NULL;
    code("raw_sense_length_without_buffer", send(handle, &c));
    prepare(&c, inquiry, 6, 1, NULL, sizeof data);
    code("raw_data_length_without_buffer", send(handle, &c));

    /* Allowed: no sense buffer at all, and no data buffer for no data. */
    prepare(&c, inquiry, 6, 1, data, sizeof data);
    c.parameters.Version1.SenseInfoLength = 0;
    c.parameters.Version1.SenseInfo = NULL;
    outcome("raw_no_sense_buffer", handle, &c);
    static const UCHAR test_unit_ready[6] = { 0 };
    prepare(&c, test_unit_ready, 6, 2, NULL, 0);
    outcome("raw_test_unit_ready", handle, &c);
}

/* Commands the target receives and answers with a SCSI outcome. */
static void command_cases(HANDLE handle)
{
    static const UCHAR inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
    static const UCHAR capacity[10] = { 0x25 };
    UCHAR data[BLOCKS * SECTOR];
    command c;

    prepare(&c, inquiry, 6, 1, data, 36);
    outcome("inquiry", handle, &c);
    name("inquiry_peripheral_and_version");
    printf("[%d, %d]", data[0], data[2]);

    prepare(&c, capacity, 10, 1, data, 8);
    outcome("read_capacity_10", handle, &c);
    name("read_capacity_10_data");
    printf("[%lu, %lu]",
           (unsigned long)((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16
                           | (uint32_t)data[2] << 8 | data[3]),
           (unsigned long)((uint32_t)data[4] << 24 | (uint32_t)data[5] << 16
                           | (uint32_t)data[6] << 8 | data[7]));

    /* A 6-byte CDB for READ(10), a 10-byte command: received, refused by
     * the target. */
    UCHAR cdb[10];
    rw10(cdb, 0x28, PATTERN_OFFSET_LBA, BLOCKS);
    prepare(&c, cdb, 6, 1, data, sizeof data);
    outcome("read_10_short_cdb", handle, &c);

    memset(data, 0, sizeof data);
    prepare(&c, cdb, 10, 1, data, sizeof data);
    outcome("read_qemu_data", handle, &c);
    int pattern = 1;
    for (size_t i = 0; i < sizeof data; i++)
        pattern &= data[i] == 0xAB;
    name("read_qemu_data_is_0xab");
    printf("%s", pattern ? "true" : "false");

    /* An 8-byte sense buffer: the sense is cut to it. */
    static const UCHAR bad_opcode[6] = { 0x02 };
    prepare(&c, bad_opcode, 6, 2, NULL, 0);
    c.parameters.Version1.SenseInfoLength = 8;
    outcome("unknown_opcode_8_byte_sense", handle, &c);
    name("sense_bytes_past_8_untouched");
    printf("%s", c.sense[8] == 0xEE ? "true" : "false");
}

/* WRITE(10) of 4 KiB of `byte` at WRITE_LBA, then READ(10) back. */
static void round_trip(const char *label, HANDLE handle, UCHAR byte)
{
    UCHAR data[BLOCKS * SECTOR], cdb[10];
    char text[64];
    command c;
    memset(data, byte, sizeof data);
    rw10(cdb, 0x2A, WRITE_LBA, BLOCKS);
    prepare(&c, cdb, 10, 0, data, sizeof data);
    snprintf(text, sizeof text, "write_%s", label);
    outcome(text, handle, &c);
    memset(data, 0, sizeof data);
    rw10(cdb, 0x28, WRITE_LBA, BLOCKS);
    prepare(&c, cdb, 10, 1, data, sizeof data);
    snprintf(text, sizeof text, "read_%s", label);
    outcome(text, handle, &c);
    snprintf(text, sizeof text, "read_%s_first_byte", label);
    name(text);
    printf("%d", data[0]);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    WCHAR *path = wide_path(argv[1]);
    if (path == NULL)
        return 2;
    static const UCHAR test_unit_ready[6] = { 0 };
    command c;
    DWORD result;

    /* Handles that are no disk's. */
    prepare(&c, test_unit_ready, 6, 2, NULL, 0);
    code("raw_null_handle", send(NULL, &c));
    code("raw_invalid_handle_value", send(INVALID_HANDLE, &c));
    code("attach_null_handle", attach(NULL, ATTACH_VIRTUAL_DISK_FLAG_NONE));
    code("detach_null_handle", DetachVirtualDisk(NULL, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));

    HANDLE disk = open_disk(path, VIRTUAL_DISK_ACCESS_ALL, &result);
    code("open", result);
    if (result != 0)
        return 1;

    /* Not attached yet. */
    outcome("raw_unattached", disk, &c);
    code("detach_unattached", DetachVirtualDisk(disk, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));
    code("attach_unknown_flag", attach(disk, (ATTACH_VIRTUAL_DISK_FLAG)0x80000000u));
    ATTACH_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = (ATTACH_VIRTUAL_DISK_VERSION)3;
    code("attach_version_3",
         AttachVirtualDisk(disk, NULL, ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST, 0, &parameters,
                           NULL));
    code("detach_flag_1", DetachVirtualDisk(disk, (DETACH_VIRTUAL_DISK_FLAG)1, 0));

    /* Read-write attach. */
    code("attach_rw", attach(disk, ATTACH_VIRTUAL_DISK_FLAG_NONE));
    code("attach_rw_again", attach(disk, ATTACH_VIRTUAL_DISK_FLAG_NONE));
    code("attach_ro_again", attach(disk, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY));
    parameter_cases(disk);
    command_cases(disk);
    round_trip("rw", disk, 0x5A);
    code("detach_attached", DetachVirtualDisk(disk, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));
    code("detach_twice", DetachVirtualDisk(disk, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));
    outcome("raw_after_detach", disk, &c);

    /* Read-only attach of the same handle: writes meet DATA PROTECT. */
    code("attach_ro", attach(disk, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY));
    round_trip("ro", disk, 0x33);
    code("detach_ro", DetachVirtualDisk(disk, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));

    /* Closing an attached handle detaches: a new handle attaches again. */
    code("attach_before_close", attach(disk, ATTACH_VIRTUAL_DISK_FLAG_NONE));
    CloseHandle(disk);
    prepare(&c, test_unit_ready, 6, 2, NULL, 0);
    code("raw_closed_handle", send(disk, &c));
    code("detach_closed_handle", DetachVirtualDisk(disk, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));

    HANDLE reader = open_disk(path, VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_DETACH,
                              &result);
    code("open_attach_ro_mask", result);
    if (result == 0) {
        code("attach_rw_with_attach_ro_mask", attach(reader, ATTACH_VIRTUAL_DISK_FLAG_NONE));
        code("attach_ro_after_close", attach(reader, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY));
        /* Another handle of the same file, while this one is attached. */
        HANDLE other = open_disk(path, VIRTUAL_DISK_ACCESS_ATTACH_RO
                                           | VIRTUAL_DISK_ACCESS_GET_INFO, &result);
        code("open_second_reader", result);
        if (result == 0) {
            code("attach_second_handle", attach(other, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY));
            CloseHandle(other);
        }
        CloseHandle(reader);
    }
    HANDLE no_detach = open_disk(path, VIRTUAL_DISK_ACCESS_ATTACH_RO
                                           | VIRTUAL_DISK_ACCESS_GET_INFO, &result);
    if (result == 0) {
        code("attach_ro_without_detach_right",
             attach(no_detach, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY));
        code("detach_without_detach_right",
             DetachVirtualDisk(no_detach, DETACH_VIRTUAL_DISK_FLAG_NONE, 0));
        CloseHandle(no_detach);
    }
    printf("\n}\n");
    free(path);
    return 0;
}
