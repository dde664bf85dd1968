/* READ and WRITE (10/16) (SBC-4 5.15, 5.16, 5.41, 5.42): the commands
 * nearly every call of RawSCSIVirtualDisk carries, so vd_scsi_execute
 * hands them here before its dispatch of the others.
 *
 * A GOOD completion touches nothing of the response but its transfer
 * count (vd_scsi_execute set the status and an empty sense); sense is
 * built only for a CHECK CONDITION.  The range check here is the one the
 * content call would repeat: an LBA range inside the disk, in whole
 * blocks, is whole sectors inside it, so the content is read and written
 * through the calls that skip that check (disk/content.h). */
#include "base/endian.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "scsi/scsi.h"
#include "scsi/scsi_internal.h"

void vd_scsi_read_write(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r)
{
    const uint8_t *c = q->cdb;
    int write = (c[0] & 0x02u) != 0;      /* 0x28/0x88 read, 0x2A/0x8A write */
    int sixteen = c[0] >= VD_SCSI_OP_READ_16;
    uint64_t lba = sixteen ? vd_load_be64(c + 2) : vd_load_be32(c + 2);
    uint64_t blocks = sixteen ? vd_load_be32(c + 10) : vd_load_be16(c + 7);
    uint32_t size = vd_scsi_block_size(d);
    uint64_t count = vd_scsi_block_count(d);
    if (lba > count || blocks > count - lba)
        { vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_LBA_OUT_OF_RANGE, 0, 0, 0); return; }
    uint64_t bytes = blocks * size;
    if (bytes > VD_SCSI_MAX_TRANSFER_BYTES)
        { vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_INVALID_FIELD_IN_CDB, 0, 0, 0); return; }
    if (write && vd_scsi_write_protected(d, q))
        { vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED, 0, 0, 0); return; }
    if (blocks == 0)
        return;
    enum vd_scsi_direction want = write ? VD_SCSI_DATA_OUT : VD_SCSI_DATA_IN;
    if (q->direction != want || q->data == NULL || q->data_length < bytes)
        { vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_INVALID_FIELD_IN_CDB, 0, 0, 0); return; }
    uint64_t offset = lba * size;
    uint32_t error = write ? vd_content_write_sectors(d, offset, q->data, bytes)
                           : vd_content_read_sectors(d, offset, q->data, bytes);
    if (error == VD_ERROR_SUCCESS) {
        r->transferred = (uint32_t)bytes;
        return;
    }
    /* A write the format cannot do (NOT_SUPPORTED) is write protection;
     * a full host is SPACE ALLOCATION FAILED (scsi_provisioning.c). */
    if (write)
        vd_scsi_fail_write(r, error, lba);
    else if (error == VD_ERROR_ACCESS_DENIED)
        vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED, 0, 0, 0);
    else if (error == VD_ERROR_NOT_READY)     /* detached under the handle */
        vd_scsi_fail(r, VD_SK_NOT_READY, VD_ASC_MEDIUM_NOT_PRESENT, 0, 0, 0);
    else
        vd_scsi_fail(r, VD_SK_MEDIUM_ERROR, VD_ASC_READ_ERROR, 0, 1, lba);
}
