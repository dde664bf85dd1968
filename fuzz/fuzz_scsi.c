/* libFuzzer target for the SCSI path: RawSCSIVirtualDisk (raw_scsi.c,
 * scsi.c) on a NO_LOCAL_HOST attach of a VHD, VHDX or ISO image, and the
 * formats' write paths behind it (vhd_write.c, vhd_commit.c, vhdx_write.c, content.c).
 *
 *   fuzz/build.sh scsi
 *   build/fuzz/fuzz_scsi -max_len=65536 -max_total_time=60 CORPUS_DIR
 *
 * An input is:
 *   byte 0     bits 0-1: the image's form: 0 or 3 a VHD file as it is
 *              (fuzz_vhd.c), 1 a VHDX in fuzz_vhdx.c's sparse form
 *              (sparse_file.h), 2 an ISO file as it is; bit 2: make the
 *              checksums right first (checksums.h); bit 3: attach
 *              read-only;
 *   bytes 1-2  u16 LE: the length P of the command program;
 *   P bytes    the program (below);
 *   the rest   the image.
 * The program is a list of commands, each a kind byte (kind % 6) and its
 * fields, until the program ends or COMMANDS_MAX ran:
 *   0 raw      u8 CDB length (1-16), the CDB, u8 direction (0 out, 1 in,
 *              2 none), u16 LE transfer length; an out transfer takes its
 *              bytes from the program (zeros past its end);
 *   1 write    u32 LE LBA, u8 blocks, u8 seed, u8 form (bit 0: WRITE(16),
 *              else WRITE(10)): a pattern write, then a READ(16) of the same
 *              blocks;
 *   2 read     u32 LE LBA, u8 blocks: READ(16);
 *   3 unmap    u32 LE LBA, u8 blocks: UNMAP with one descriptor;
 *   4 sync     SYNCHRONIZE CACHE(10);
 *   5 reopen   detach, close, check (below), open and attach again.
 * LBAs are taken modulo the disk's block count and block counts cut at its
 * end, so the commands land inside the disk.
 *
 * The image is written to a memfd and opened by its /proc/self/fd path
 * (nothing is left behind, even by a crash) with OpenVirtualDisk version 2
 * and NO_PARENTS, writable unless bit 3 asks for a read-only attach (ISO:
 * version 1, VIRTUAL_DISK_ACCESS_READ, read-only).  It is opened once and
 * closed before anything is measured, so a VHDX log is replayed first.
 *
 * What must hold beyond memory safety:
 *   - RawSCSIVirtualDisk returns ERROR_SUCCESS for every command (their
 *     parameters are valid), with a transfer no longer than asked and
 *     sense no longer than its buffer;
 *   - a WRITE that answered GOOD reads back, at once and after every
 *     reopen, exactly what was written, until a later command may have
 *     changed those blocks (a write over them, an UNMAP, a raw command
 *     that is not a read);
 *   - the file's structures keep their bytes (structure_bytes.h): no write
 *     lands outside the data blocks;
 *   - the image opens again after the run, with the same virtual size,
 *     block and sector sizes, provider subtype and virtual disk id;
 *   - no handle stays open. */
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
#include "structure_bytes.h"

#define FORM_MASK 0x3u
#define FORM_VHDX 1u
#define FORM_ISO 2u
#define REPAIR_CHECKSUMS 0x4u
#define ATTACH_READ_ONLY 0x8u
#define HEADER_BYTES 3u
#define COMMANDS_MAX 32u
#define BLOCKS_MAX 32u
#define SECTOR_MAX 4096u
#define TRANSFER_MAX (BLOCKS_MAX * SECTOR_MAX)
#define WRITES_MAX 64u

/* A pattern write that answered GOOD, as long as nothing may have changed
 * its blocks since. */
typedef struct written {
    uint64_t lba;
    uint32_t blocks;
    uint8_t seed;
} written;

typedef struct run {
    int fd;
    int iso;
    int read_only;
    WCHAR path[64];
    VIRTUAL_STORAGE_TYPE type;
    HANDLE handle;
    int open;
    uint64_t blocks;         /* the disk's size in logical blocks */
    uint32_t sector;         /* its logical block size */
    written writes[WRITES_MAX];
    uint32_t write_count;
    GET_VIRTUAL_DISK_INFO facts[4];
    structure_bytes structure;
} run;

static uint8_t transfer[TRANSFER_MAX];
static uint8_t expected[TRANSFER_MAX];

/* ---- the image ------------------------------------------------------------ */

static int write_image(run *r, const uint8_t *data, size_t size, unsigned control)
{
    r->fd = memfd_create("fuzz_scsi", MFD_CLOEXEC);
    if (r->fd < 0)
        return 0;
    unsigned form = control & FORM_MASK;
    return image_input_write(r->fd, data, size, form == FORM_VHDX,
                             form != FORM_ISO && (control & REPAIR_CHECKSUMS) != 0);
}

static void name_image(run *r, unsigned control)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r->fd);
    size_t i = 0;
    for (; path[i] != '\0'; i++)
        r->path[i] = (WCHAR)path[i];
    r->path[i] = 0;
    static const GUID microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;
    unsigned form = control & FORM_MASK;
    r->iso = form == FORM_ISO;
    r->read_only = r->iso || (control & ATTACH_READ_ONLY) != 0;
    r->type.DeviceId = r->iso ? VIRTUAL_STORAGE_TYPE_DEVICE_ISO
                       : form == FORM_VHDX ? VIRTUAL_STORAGE_TYPE_DEVICE_VHDX
                                           : VIRTUAL_STORAGE_TYPE_DEVICE_VHD;
    r->type.VendorId = microsoft;
}

static DWORD open_image(run *r, int writable)
{
    if (r->iso)
        return OpenVirtualDisk(&r->type, r->path, VIRTUAL_DISK_ACCESS_READ,
                               OPEN_VIRTUAL_DISK_FLAG_NONE, NULL, &r->handle);
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    parameters.Version2.ReadOnly = writable ? FALSE : TRUE;
    return OpenVirtualDisk(&r->type, r->path, VIRTUAL_DISK_ACCESS_NONE,
                           OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS, &parameters, &r->handle);
}

static void close_image(run *r)
{
    if (r->open && vd_engine_close_handle(r->handle) != VD_ERROR_SUCCESS)
        abort();
    r->open = 0;
}

/* The facts a content write must not change. */
static const GET_VIRTUAL_DISK_INFO_VERSION fact_versions[4] = {
    GET_VIRTUAL_DISK_INFO_SIZE, GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE,
    GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE,
};

static void query_facts(HANDLE handle, GET_VIRTUAL_DISK_INFO facts[4])
{
    for (int i = 0; i < 4; i++) {
        memset(&facts[i], 0, sizeof facts[i]);
        facts[i].Version = fact_versions[i];
        ULONG size = sizeof facts[i];
        if (GetVirtualDiskInformation(handle, &size, &facts[i], NULL) != VD_ERROR_SUCCESS)
            facts[i].Version = 0;   /* not answered: compared as such */
    }
}

/* The facts agree; PhysicalSize, the file's size, grows with allocation. */
static int same_facts(const GET_VIRTUAL_DISK_INFO *now, const GET_VIRTUAL_DISK_INFO *before)
{
    if (now[0].Version != before[0].Version
        || now[0].Size.VirtualSize != before[0].Size.VirtualSize
        || now[0].Size.BlockSize != before[0].Size.BlockSize
        || now[0].Size.SectorSize != before[0].Size.SectorSize)
        return 0;
    return memcmp(&now[1], &before[1], 3 * sizeof *now) == 0;
}

/* ---- commands --------------------------------------------------------------- */

typedef struct command {
    uint8_t cdb[16];
    uint8_t cdb_length;
    uint8_t direction;          /* SCSI_IOCTL_DATA_OUT 0, _IN 1, _UNSPECIFIED 2 */
    uint32_t length;
    uint8_t *data;
} command;

/* Sends one command; its SCSI status (0xFF when nothing was sent). */
static uint8_t send(run *r, const command *c)
{
    uint8_t sense[32];
    RAW_SCSI_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = RAW_SCSI_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.DataIn = c->direction;
    parameters.Version1.CdbLength = c->cdb_length;
    parameters.Version1.SenseInfoLength = sizeof sense;
    parameters.Version1.DataTransferLength = c->length;
    parameters.Version1.DataBuffer = c->length ? c->data : NULL;
    parameters.Version1.SenseInfo = sense;
    parameters.Version1.Cdb = (UCHAR *)c->cdb;
    RAW_SCSI_VIRTUAL_DISK_RESPONSE response;
    DWORD status = RawSCSIVirtualDisk(r->handle, &parameters, RAW_SCSI_VIRTUAL_DISK_FLAG_NONE,
                                      &response);
    if (status != VD_ERROR_SUCCESS || response.Version1.DataTransferLength > c->length
        || response.Version1.SenseInfoLength > sizeof sense)
        abort();
    return response.Version1.ScsiStatus;
}

static void store_be(uint8_t *p, uint64_t value, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, value >>= 8)
        p[i] = (uint8_t)value;
}

static command rw_command(uint8_t opcode16, uint8_t opcode10, int sixteen, uint64_t lba,
                          uint32_t blocks, uint8_t direction, uint8_t *data, uint32_t length)
{
    command c;
    memset(&c, 0, sizeof c);
    if (sixteen) {
        c.cdb[0] = opcode16;
        store_be(c.cdb + 2, lba, 8);
        store_be(c.cdb + 10, blocks, 4);
        c.cdb_length = 16;
    } else {
        c.cdb[0] = opcode10;
        store_be(c.cdb + 2, lba, 4);
        store_be(c.cdb + 7, blocks, 2);
        c.cdb_length = 10;
    }
    c.direction = direction;
    c.data = data;
    c.length = length;
    return c;
}

static void fill_pattern(uint8_t *out, uint64_t lba, uint32_t blocks, uint32_t sector,
                         uint8_t seed)
{
    for (uint32_t b = 0; b < blocks; b++) {
        for (uint32_t i = 0; i < sector; i++)
            out[(size_t)b * sector + i] = (uint8_t)((lba + b) * 131u + i * 7u + seed * 29u + (i >> 8));
    }
}

/* Forgets the writes whose blocks [lba, lba + blocks) may have changed. */
static void forget_overlapping(run *r, uint64_t lba, uint32_t blocks)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < r->write_count; i++) {
        const written *w = &r->writes[i];
        if (w->lba + w->blocks <= lba || lba + blocks <= w->lba)
            r->writes[kept++] = *w;
    }
    r->write_count = kept;
}

/* Every remembered write reads back as written. */
static void check_writes(run *r)
{
    for (uint32_t i = 0; i < r->write_count; i++) {
        const written *w = &r->writes[i];
        uint32_t length = w->blocks * r->sector;
        command read = rw_command(0x88, 0x28, 1, w->lba, w->blocks, 1, transfer, length);
        if (send(r, &read) != 0)
            abort();
        fill_pattern(expected, w->lba, w->blocks, r->sector, w->seed);
        if (memcmp(transfer, expected, length) != 0)
            abort();
    }
}

/* The program's bytes, read field by field; zeros past its end. */
typedef struct program {
    const uint8_t *bytes;
    size_t size;
    size_t at;
} program;

static uint64_t take(program *p, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++) {
        uint64_t byte = p->at < p->size ? p->bytes[p->at] : 0;
        p->at++;
        value |= byte << (8 * i);
    }
    return value;
}

/* An LBA and a block count inside the disk. */
static void take_range(run *r, program *p, uint64_t *lba, uint32_t *blocks)
{
    *lba = take(p, 4) % r->blocks;
    *blocks = (uint32_t)take(p, 1) % BLOCKS_MAX + 1;
    if (*blocks > r->blocks - *lba)
        *blocks = (uint32_t)(r->blocks - *lba);
}

/* Opcodes that only read: a raw command with any other may change blocks. */
static int reads_only(uint8_t opcode)
{
    static const uint8_t readers[] = { 0x00, 0x03, 0x12, 0x1A, 0x25, 0x28, 0x35, 0x5A,
                                       0x88, 0x91, 0x9E, 0xA0 };
    for (size_t i = 0; i < sizeof readers; i++) {
        if (readers[i] == opcode)
            return 1;
    }
    return 0;
}

static void raw(run *r, program *p)
{
    command c;
    memset(&c, 0, sizeof c);
    c.cdb_length = (uint8_t)(take(p, 1) % 16 + 1);
    for (uint8_t i = 0; i < c.cdb_length; i++)
        c.cdb[i] = (uint8_t)take(p, 1);
    c.direction = (uint8_t)(take(p, 1) % 3);
    c.length = (uint32_t)take(p, 2) % (TRANSFER_MAX + 1);
    c.data = transfer;
    if (c.direction == 0) {
        for (uint32_t i = 0; i < c.length; i++)
            transfer[i] = (uint8_t)take(p, 1);
    }
    send(r, &c);
    if (!reads_only(c.cdb[0]))
        r->write_count = 0;
}

static void pattern_write(run *r, program *p)
{
    uint64_t lba;
    uint32_t blocks;
    take_range(r, p, &lba, &blocks);
    uint8_t seed = (uint8_t)take(p, 1);
    int sixteen = (take(p, 1) & 1) != 0 || lba > 0xFFFFFFFFu;
    uint32_t length = blocks * r->sector;
    fill_pattern(transfer, lba, blocks, r->sector, seed);
    command write = rw_command(0x8A, 0x2A, sixteen, lba, blocks, 0, transfer, length);
    uint8_t status = send(r, &write);
    forget_overlapping(r, lba, blocks);
    if (status != 0)
        return;
    if (r->read_only)
        abort();   /* a read-only attach must refuse every write */
    command read = rw_command(0x88, 0x28, 1, lba, blocks, 1, transfer, length);
    if (send(r, &read) != 0)
        abort();
    fill_pattern(expected, lba, blocks, r->sector, seed);
    if (memcmp(transfer, expected, length) != 0)
        abort();
    if (r->write_count < WRITES_MAX)
        r->writes[r->write_count++] = (written){ lba, blocks, seed };
}

static void pattern_read(run *r, program *p)
{
    uint64_t lba;
    uint32_t blocks;
    take_range(r, p, &lba, &blocks);
    command read = rw_command(0x88, 0x28, 1, lba, blocks, 1, transfer, blocks * r->sector);
    send(r, &read);
}

static void unmap(run *r, program *p)
{
    uint64_t lba;
    uint32_t blocks;
    take_range(r, p, &lba, &blocks);
    uint8_t list[24];
    memset(list, 0, sizeof list);
    store_be(list, 22, 2);       /* UNMAP data length */
    store_be(list + 2, 16, 2);   /* block descriptor data length */
    store_be(list + 8, lba, 8);
    store_be(list + 16, blocks, 4);
    command c;
    memset(&c, 0, sizeof c);
    c.cdb[0] = 0x42;
    store_be(c.cdb + 7, sizeof list, 2);
    c.cdb_length = 10;
    c.direction = 0;
    c.data = list;
    c.length = sizeof list;
    send(r, &c);
    forget_overlapping(r, lba, blocks);
}

static void synchronize(run *r)
{
    command c;
    memset(&c, 0, sizeof c);
    c.cdb[0] = 0x35;
    c.cdb_length = 10;
    c.direction = 2;
    send(r, &c);
}

/* ---- sessions -------------------------------------------------------------- */

static int attach(run *r)
{
    ATTACH_VIRTUAL_DISK_FLAG flags = ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST;
    if (r->read_only)
        flags = (ATTACH_VIRTUAL_DISK_FLAG)(flags | ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY);
    return AttachVirtualDisk(r->handle, NULL, flags, 0, NULL, NULL) == VD_ERROR_SUCCESS;
}

/* Opens and attaches; 0 when the image is refused (any code is allowed the
 * first time; afterwards the image must open as it did). */
static int start(run *r)
{
    if (open_image(r, !r->read_only) != VD_ERROR_SUCCESS)
        return 0;
    r->open = 1;
    if (!attach(r)) {
        close_image(r);
        return 0;
    }
    return 1;
}

/* Detach and close, then what must hold of the file: its structures, the
 * facts, and every remembered write, through a fresh read-only open. */
static void finish_and_check(run *r)
{
    DetachVirtualDisk(r->handle, DETACH_VIRTUAL_DISK_FLAG_NONE, 0);
    close_image(r);
    if (structure_changed(r->fd, &r->structure) != 0)
        abort();
    if (open_image(r, 0) != VD_ERROR_SUCCESS)
        abort();   /* it opened before the commands */
    r->open = 1;
    GET_VIRTUAL_DISK_INFO now[4];
    query_facts(r->handle, now);
    if (!same_facts(now, r->facts))
        abort();
    int read_only = r->read_only;
    r->read_only = 1;
    if (r->write_count > 0 && attach(r))
        check_writes(r);
    r->read_only = read_only;
    close_image(r);
}

/* The first open: replays a VHDX log and gives the facts; 0 when the image
 * is refused. */
static int measure(run *r)
{
    if (open_image(r, !r->read_only) != VD_ERROR_SUCCESS)
        return 0;
    r->open = 1;
    query_facts(r->handle, r->facts);
    const GET_VIRTUAL_DISK_INFO *size = &r->facts[0];
    uint32_t sector = size->Version ? size->Size.SectorSize : 0;
    uint64_t virtual_size = size->Version ? size->Size.VirtualSize : 0;
    close_image(r);
    if (sector == 0 || sector > SECTOR_MAX || virtual_size < sector)
        return 0;
    r->sector = sector;
    r->blocks = virtual_size / sector;
    if (r->iso)
        structure_add(&r->structure, r->fd, STRUCTURE_EXACT, 0, structure_file_size(r->fd));
    else if (r->type.DeviceId == VIRTUAL_STORAGE_TYPE_DEVICE_VHDX)
        structure_take_vhdx(&r->structure, r->fd);
    else
        structure_take_vhd(&r->structure, r->fd);
    return 1;
}

static void execute(run *r, program *p)
{
    for (unsigned n = 0; n < COMMANDS_MAX && p->at < p->size; n++) {
        switch (take(p, 1) % 6) {
        case 0: raw(r, p); break;
        case 1: pattern_write(r, p); break;
        case 2: pattern_read(r, p); break;
        case 3: unmap(r, p); break;
        case 4: synchronize(r); break;
        default:
            check_writes(r);
            finish_and_check(r);
            if (!start(r))
                abort();   /* it opened and attached before */
            break;
        }
    }
    check_writes(r);
    finish_and_check(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES)
        return 0;
    size_t program_size = (size_t)sparse_load_le(data + 1, 2);
    if (program_size > size - HEADER_BYTES)
        program_size = size - HEADER_BYTES;
    const uint8_t *image = data + HEADER_BYTES + program_size;
    size_t image_size = size - HEADER_BYTES - program_size;

    static run r;
    memset(&r, 0, sizeof r);
    program p = { data + HEADER_BYTES, program_size, 0 };
    if (write_image(&r, image, image_size, data[0])) {
        name_image(&r, data[0]);
        if (measure(&r) && start(&r))
            execute(&r, &p);
    }
    close_image(&r);
    structure_release(&r.structure);
    if (r.fd > 0)
        close(r.fd);
    if (vd_engine_open_handle_count() != 0)
        abort();
    return 0;
}
