/* The SCSI block target behind RawSCSIVirtualDisk: SBC-4 / SPC-5 facts,
 * fixed-format sense (SPC-5 4.4.3), allocation length truncation (SPC-5
 * 4.2.5.6: the target returns min(allocation length, data available)).
 * Logical block provisioning (UNMAP, WRITE SAME, VPD 0xB0 / 0xB2, LBPME)
 * lives in scsi_provisioning.c. */
#include <string.h>

#include "disk/content.h"
#include "base/endian.h"
#include "scsi/scsi.h"
#include "scsi/scsi_internal.h"
#include "base/vd_errors.h"

enum {
    SK_NO_SENSE = VD_SK_NO_SENSE, SK_MEDIUM_ERROR = VD_SK_MEDIUM_ERROR,
    SK_ILLEGAL_REQUEST = VD_SK_ILLEGAL_REQUEST, SK_DATA_PROTECT = VD_SK_DATA_PROTECT
};

enum {
    OP_TEST_UNIT_READY = 0x00, OP_REQUEST_SENSE = 0x03, OP_INQUIRY = 0x12,
    OP_MODE_SENSE_6 = 0x1A, OP_READ_CAPACITY_10 = 0x25, OP_SYNCHRONIZE_CACHE_10 = 0x35,
    OP_UNMAP = 0x42, OP_MODE_SENSE_10 = 0x5A, OP_SYNCHRONIZE_CACHE_16 = 0x91,
    OP_WRITE_SAME_16 = 0x93, OP_SERVICE_ACTION_IN_16 = 0x9E, OP_REPORT_LUNS = 0xA0
};

#define SA_READ_CAPACITY_16 0x10u

/* SPC-5 4.2.2: the CDB length follows from the opcode's group code. */
static uint32_t cdb_length_of(uint8_t opcode)
{
    switch (opcode >> 5) {
    case 0: return 6;
    case 1: case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;              /* reserved / vendor groups */
    }
}

void vd_scsi_fail(vd_scsi_response *r, uint8_t key, uint8_t asc, uint8_t ascq,
                  int has_information, uint64_t information)
{
    memset(r->sense, 0, sizeof r->sense);
    r->sense[0] = 0x70;             /* current error, fixed format */
    r->sense[2] = key;
    r->sense[7] = VD_SCSI_SENSE_LENGTH - 8u;
    r->sense[12] = asc;
    r->sense[13] = ascq;
    /* INFORMATION holds 4 bytes in fixed format; an LBA that does not fit
     * leaves VALID clear rather than reporting a truncated one. */
    if (has_information && information <= UINT32_MAX) {
        r->sense[0] |= 0x80;
        vd_store_be32(r->sense + 3, (uint32_t)information);
    }
    r->status = VD_SCSI_STATUS_CHECK_CONDITION;
    r->sense_length = VD_SCSI_SENSE_LENGTH;
    r->transferred = 0;
}

static void invalid_cdb(vd_scsi_response *r)
{
    vd_scsi_fail(r, SK_ILLEGAL_REQUEST, 0x24, 0x00, 0, 0);
}

/* Copies `length` bytes of prepared data-in, truncated to the allocation
 * length and the caller's buffer. */
static void data_in(const vd_scsi_request *q, vd_scsi_response *r, const uint8_t *src,
                    uint32_t length, uint32_t allocation)
{
    uint32_t n = length < allocation ? length : allocation;
    if (q->direction != VD_SCSI_DATA_IN || q->data == NULL)
        n = 0;
    if (n > q->data_length)
        n = q->data_length;
    if (n > 0)
        memcpy(q->data, src, n);
    r->transferred = n;
}

static uint32_t block_size(const vd_disk *d) { return vd_scsi_block_size(d); }
static uint64_t block_count(const vd_disk *d) { return vd_scsi_block_count(d); }

static void inquiry(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r)
{
    const uint8_t *c = q->cdb;
    uint32_t allocation = vd_load_be16(c + 3);
    uint8_t page[64];
    uint32_t n;
    memset(page, 0, sizeof page);
    if ((c[1] & 0x01u) == 0) {
        if (c[2] != 0)              /* PAGE CODE without EVPD */
            { invalid_cdb(r); return; }
        page[0] = 0x00;             /* direct access block device, connected */
        page[2] = 0x06;             /* SPC-4 version: what SPC-5 targets report */
        page[3] = 0x02;             /* response data format 2 */
        page[4] = 36 - 5;
        memcpy(page + 8, "Msft    ", 8);
        memcpy(page + 16, "Virtual Disk    ", 16);
        memcpy(page + 32, "1.0 ", 4);
        { data_in(q, r, page, 36, allocation); return; }
    }
    page[0] = 0x00;
    page[1] = c[2];
    switch (c[2]) {
    case 0x00:
        page[4] = 0x00; page[5] = 0x80; page[6] = 0x83;
        page[7] = 0xB0; page[8] = 0xB1; page[9] = 0xB2;
        n = 6;
        break;
    case 0x80: {
        /* The serial number: the Page 83 id in hex, which stays with the disk. */
        static const char hex[] = "0123456789ABCDEF";
        for (uint32_t i = 0; i < 16; i++) {
            page[4 + 2 * i] = (uint8_t)hex[d->image.virtual_disk_id.bytes[i] >> 4];
            page[5 + 2 * i] = (uint8_t)hex[d->image.virtual_disk_id.bytes[i] & 0xF];
        }
        n = 32;
        break;
    }
    case 0x83:
        /* One T10 vendor ID designator (SPC-5 7.7.6.4): ASCII, LU association,
         * vendor "Msft    " then the 16-byte Page 83 id as binary would not be
         * ASCII, so it follows in hex. */
        page[4] = 0x02;             /* code set ASCII */
        page[5] = 0x01;             /* association LU, type T10 vendor ID */
        page[7] = 8 + 32;
        memcpy(page + 8, "Msft    ", 8);
        {
            static const char hex[] = "0123456789ABCDEF";
            for (uint32_t i = 0; i < 16; i++) {
                page[16 + 2 * i] = (uint8_t)hex[d->image.virtual_disk_id.bytes[i] >> 4];
                page[17 + 2 * i] = (uint8_t)hex[d->image.virtual_disk_id.bytes[i] & 0xF];
            }
        }
        n = 4 + 8 + 32;
        break;
    case 0xB0:
        { data_in(q, r, page, vd_scsi_block_limits_page(d, page), allocation); return; }
    case 0xB1:
        vd_store_be16(page + 4, 1); /* MEDIUM ROTATION RATE 1: non-rotating */
        page[3] = 0x3C;
        { data_in(q, r, page, 4 + 0x3C, allocation); return; }
    case 0xB2:
        { data_in(q, r, page, vd_scsi_provisioning_page(d, page), allocation); return; }
    default:
        { invalid_cdb(r); return; }
    }
    vd_store_be16(page + 2, (uint16_t)n);
    data_in(q, r, page, 4 + n, allocation);
}

static void read_capacity(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r, int sixteen)
{
    uint8_t p[32];
    uint64_t last = block_count(d) - 1;
    memset(p, 0, sizeof p);
    if (!sixteen) {
        /* SBC-4 5.20.2: 0xFFFFFFFF tells the initiator to use READ CAPACITY (16). */
        vd_store_be32(p, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
        vd_store_be32(p + 4, block_size(d));
        { data_in(q, r, p, 8, 8); return; }
    }
    vd_store_be64(p, last);
    vd_store_be32(p + 8, block_size(d));
    uint32_t ratio = d->image.physical_sector_size / block_size(d);
    uint8_t exponent = 0;
    while (ratio > 1) { ratio >>= 1; exponent++; }
    p[13] = exponent & 0x0F;
    p[14] = vd_scsi_capacity_provisioning_bits(d);
    data_in(q, r, p, 32, vd_load_be32(q->cdb + 10));
}

/* MODE SENSE (6/10) with the caching page (SBC-4 7.5.5) alone, for page
 * 0x08 and 0x3F; no block descriptors.  WP in the device-specific parameter
 * (SBC-4 6.5.1) when the attach or the file is read-only. */
static void mode_sense(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r, int ten)
{
    const uint8_t *c = q->cdb;
    uint8_t control = c[2] >> 6, code = c[2] & 0x3Fu;
    uint8_t p[8 + 20];
    uint32_t header = ten ? 8u : 4u;
    if (control == 3) {             /* saved values: no parameters are saved */
        vd_scsi_fail(r, SK_ILLEGAL_REQUEST, 0x39, 0x00, 0, 0);
        return;
    }
    if (code != 0x08 && code != 0x3F) {
        invalid_cdb(r);
        return;
    }
    memset(p, 0, sizeof p);
    uint8_t *page = p + header;
    page[0] = 0x08;
    page[1] = 0x12;
    /* Writes reach the file without a flush each: write cache enabled, and
     * SYNCHRONIZE CACHE flushes.  Changeable values (control 1) are none. */
    if (control != 1)
        page[2] = 0x04;
    uint32_t total = header + 20;
    uint8_t device = vd_scsi_write_protected(d, q) ? 0x80 : 0x00;
    if (ten) {
        vd_store_be16(p, (uint16_t)(total - 2));
        p[3] = device;
        data_in(q, r, p, total, vd_load_be16(c + 7));
    } else {
        p[0] = (uint8_t)(total - 1);
        p[2] = device;
        data_in(q, r, p, total, c[4]);
    }
}

static void report_luns(const vd_scsi_request *q, vd_scsi_response *r)
{
    uint8_t p[16];
    memset(p, 0, sizeof p);
    vd_store_be32(p, 8);            /* one LUN, LUN 0 */
    data_in(q, r, p, 16, vd_load_be32(q->cdb + 6));
}

void vd_scsi_execute(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r)
{
    /* GOOD with no sense and nothing moved; the sense bytes are written
     * only by a CHECK CONDITION. */
    r->status = VD_SCSI_STATUS_GOOD;
    r->sense_length = 0;
    r->transferred = 0;
    if (vd_scsi_is_read_write(q->cdb, q->cdb_length))
        { vd_scsi_read_write(d, q, r); return; }
    uint32_t need = cdb_length_of(q->cdb[0]);
    if (need == 0 || q->cdb_length < need)
        { vd_scsi_fail(r, SK_ILLEGAL_REQUEST, 0x20, 0x00, 0, 0); return; }
    switch (q->cdb[0]) {
    case OP_TEST_UNIT_READY: return;
    case OP_REQUEST_SENSE: {
        /* No deferred errors are kept: NO SENSE (SPC-5 6.39). */
        uint8_t s[VD_SCSI_SENSE_LENGTH];
        memset(s, 0, sizeof s);
        s[0] = 0x70; s[2] = SK_NO_SENSE; s[7] = VD_SCSI_SENSE_LENGTH - 8u;
        { data_in(q, r, s, sizeof s, q->cdb[4]); return; }
    }
    case OP_INQUIRY: { inquiry(d, q, r); return; }
    case OP_READ_CAPACITY_10: { read_capacity(d, q, r, 0); return; }
    case OP_SERVICE_ACTION_IN_16:
        if ((q->cdb[1] & 0x1Fu) != SA_READ_CAPACITY_16)
            { invalid_cdb(r); return; }
        { read_capacity(d, q, r, 1); return; }
    case OP_SYNCHRONIZE_CACHE_10: case OP_SYNCHRONIZE_CACHE_16:
        if (!d->read_only && vd_content_can_write(d) && vd_content_flush(d) != VD_ERROR_SUCCESS)
            { vd_scsi_fail(r, SK_MEDIUM_ERROR, 0x0C, 0x00, 0, 0); return; }
        return;
    case OP_UNMAP: { vd_scsi_unmap(d, q, r); return; }
    case OP_WRITE_SAME_16: { vd_scsi_write_same(d, q, r); return; }
    case OP_MODE_SENSE_6: { mode_sense(d, q, r, 0); return; }
    case OP_MODE_SENSE_10: { mode_sense(d, q, r, 1); return; }
    case OP_REPORT_LUNS: { report_luns(q, r); return; }
    default: { vd_scsi_fail(r, SK_ILLEGAL_REQUEST, 0x20, 0x00, 0, 0); return; }
    }
}
