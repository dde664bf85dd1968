/* What the files of the SCSI target share: sense building, the disk's
 * block geometry, data-in copies, and the commands of the other files that
 * scsi.c dispatches to: READ/WRITE (scsi_read_write.c) and logical block
 * provisioning (scsi_provisioning.c). */
#ifndef VDENGINE_SCSI_INTERNAL_H
#define VDENGINE_SCSI_INTERNAL_H

#include <stdint.h>

#include "scsi/scsi.h"

/* Sense keys (SPC-5 table 49) the target answers. */
enum {
    VD_SK_NO_SENSE = 0x0, VD_SK_NOT_READY = 0x2, VD_SK_MEDIUM_ERROR = 0x3,
    VD_SK_ILLEGAL_REQUEST = 0x5,
    VD_SK_DATA_PROTECT = 0x7
};

/* Additional sense codes (SPC-5 table F.1), qualifier 0 unless named. */
enum {
    VD_ASC_WRITE_ERROR = 0x0C, VD_ASC_READ_ERROR = 0x11,
    VD_ASC_PARAMETER_LIST_LENGTH = 0x1A, VD_ASC_INVALID_OPCODE = 0x20,
    VD_ASC_LBA_OUT_OF_RANGE = 0x21, VD_ASC_INVALID_FIELD_IN_CDB = 0x24,
    VD_ASC_INVALID_FIELD_IN_PARAMETERS = 0x26, VD_ASC_WRITE_PROTECTED = 0x27,
    VD_ASC_MEDIUM_NOT_PRESENT = 0x3A
};
#define VD_ASCQ_SPACE_ALLOCATION_FAILED 0x07u   /* with ASC 0x27 */

/* The data commands' opcodes (SBC-4 table 15). */
enum {
    VD_SCSI_OP_READ_10 = 0x28, VD_SCSI_OP_WRITE_10 = 0x2A,
    VD_SCSI_OP_READ_16 = 0x88, VD_SCSI_OP_WRITE_16 = 0x8A
};

/* Whether the CDB is a READ or WRITE (10/16) as long as its opcode needs
 * (a shorter one is the dispatch's to refuse). */
static inline int vd_scsi_is_read_write(const uint8_t *cdb, uint32_t cdb_length)
{
    switch (cdb[0]) {
    case VD_SCSI_OP_READ_10: case VD_SCSI_OP_WRITE_10: return cdb_length >= 10;
    case VD_SCSI_OP_READ_16: case VD_SCSI_OP_WRITE_16: return cdb_length >= 16;
    default: return 0;
    }
}

/* READ/WRITE (10/16), scsi_read_write.c; the CDB is one of them. */
void vd_scsi_read_write(vd_disk *disk, const vd_scsi_request *request,
                        vd_scsi_response *response);

/* Block Limits (VPD 0xB0) the provisioning commands keep to.  A gigabyte
 * per UNMAP or WRITE SAME bounds the time one command holds the disk (a
 * VHD unmap writes zeros over every allocated sector it covers). */
#define VD_SCSI_MAX_UNMAP_BYTES (1024u * 1024u * 1024u)
#define VD_SCSI_MAX_UNMAP_DESCRIPTORS 256u
#define VD_SCSI_MAX_WRITE_SAME_BYTES VD_SCSI_MAX_UNMAP_BYTES

/* CHECK CONDITION with fixed-format sense; `information` (an LBA) is
 * reported when `has_information` and it fits the 4-byte field. */
void vd_scsi_fail(vd_scsi_response *response, uint8_t key, uint8_t asc, uint8_t ascq,
                  int has_information, uint64_t information);
/* The sense for a content write that failed with Win32 `error` at `lba`:
 * WRITE PROTECTED, SPACE ALLOCATION FAILED for a full host, MEDIUM NOT
 * PRESENT for a disk detached under its handle (ERROR_NOT_READY,
 * api/attach_redirect.h), or a write error naming the LBA. */
void vd_scsi_fail_write(vd_scsi_response *response, uint32_t error, uint64_t lba);

/* Inline: the data commands ask them on every call. */
static inline uint32_t vd_scsi_block_size(const vd_disk *disk)
{
    return disk->image.logical_sector_size;
}
static inline uint64_t vd_scsi_block_count(const vd_disk *disk)
{
    return disk->image.virtual_size / vd_scsi_block_size(disk);
}
/* Whether the attach or the image file refuses writes. */
static inline int vd_scsi_write_protected(const vd_disk *disk, const vd_scsi_request *request)
{
    return request->read_only || disk->read_only;
}

/* Logical block provisioning (SBC-4 4.7) as the target reports it: LBPME
 * in READ CAPACITY (16), LBPU / LBPWS in VPD 0xB2. */
int vd_scsi_provisioning_enabled(const vd_disk *disk);
/* READ CAPACITY (16) byte 14's LBPME and LBPRZ bits. */
uint8_t vd_scsi_capacity_provisioning_bits(const vd_disk *disk);
/* Fills VPD 0xB0 (Block Limits) and 0xB2 (Logical Block Provisioning),
 * header included, into `page` (64 bytes); returns the page's length. */
uint32_t vd_scsi_block_limits_page(const vd_disk *disk, uint8_t page[64]);
uint32_t vd_scsi_provisioning_page(const vd_disk *disk, uint8_t page[64]);

void vd_scsi_unmap(vd_disk *disk, const vd_scsi_request *request, vd_scsi_response *response);
void vd_scsi_write_same(vd_disk *disk, const vd_scsi_request *request,
                        vd_scsi_response *response);

#endif
