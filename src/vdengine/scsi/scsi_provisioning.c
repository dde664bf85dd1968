/* Logical block provisioning in the SCSI target (SBC-4 4.7): UNMAP, WRITE
 * SAME (16), and the Block Limits (0xB0) and Logical Block Provisioning
 * (0xB2) VPD pages that announce them.
 *
 * Which disks are thin (LBPME): dynamic and differencing VHD and VHDX,
 * whose format has an unmap op.  Fixed images are fully provisioned: every
 * block keeps its space, and an unmap could only write zeros, which is a
 * write the initiator can ask for itself (WRITE SAME); they report LBPME 0,
 * so UNMAP is an unknown command there, as for ISO images.  LBPRZ follows
 * the format's unmap_reads_zeros: every format here reads zeros after an
 * unmap, a differencing child included (it never shows the parent again).
 *
 * Every descriptor and limit is checked before anything is unmapped, so a
 * refused command changes nothing.  A host out of space answers SPACE
 * ALLOCATION FAILED WRITE PROTECT (SBC-4 4.7.3.6), which a thin disk
 * reports when it cannot allocate. */
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "disk/image.h"
#include "scsi/scsi_internal.h"

#define UNMAP_HEADER_LENGTH 8u
#define UNMAP_DESCRIPTOR_LENGTH 16u
/* The largest buffer a WRITE SAME fills with its block at once. */
#define WRITE_SAME_CHUNK_BYTES (1024u * 1024u)

int vd_scsi_provisioning_enabled(const vd_disk *d)
{
    uint32_t subtype = d->image.subtype;
    return vd_content_can_unmap(d)
        && (subtype == VD_SUBTYPE_DYNAMIC || subtype == VD_SUBTYPE_DIFFERENCING);
}

static int unmap_reads_zeros(const vd_disk *d)
{
    return vd_scsi_provisioning_enabled(d) && d->image.ops->unmap_reads_zeros;
}

uint8_t vd_scsi_capacity_provisioning_bits(const vd_disk *d)
{
    uint8_t bits = 0;
    if (vd_scsi_provisioning_enabled(d))
        bits |= 0x80u;              /* LBPME */
    if (unmap_reads_zeros(d))
        bits |= 0x40u;              /* LBPRZ */
    return bits;
}

uint32_t vd_scsi_block_limits_page(const vd_disk *d, uint8_t page[64])
{
    uint32_t size = vd_scsi_block_size(d);
    memset(page, 0, 64);
    page[1] = 0xB0;
    page[3] = 0x3C;
    page[4] = 0x01;                 /* WSNZ: WRITE SAME needs a block count */
    vd_store_be32(page + 8, VD_SCSI_MAX_TRANSFER_BYTES / size);
    vd_store_be32(page + 12, 1);
    if (vd_scsi_provisioning_enabled(d)) {
        vd_store_be32(page + 20, VD_SCSI_MAX_UNMAP_BYTES / size);
        vd_store_be32(page + 24, VD_SCSI_MAX_UNMAP_DESCRIPTORS);
        /* A payload block is what leaves the file whole; blocks start at
         * LBA 0, so the alignment is 0 and valid (UGAVALID). */
        vd_store_be32(page + 28, d->image.block_size / size);
        page[32] = 0x80;
    }
    vd_store_be64(page + 36, VD_SCSI_MAX_WRITE_SAME_BYTES / size);
    return 4 + 0x3C;
}

uint32_t vd_scsi_provisioning_page(const vd_disk *d, uint8_t page[64])
{
    memset(page, 0, 64);
    page[1] = 0xB2;
    page[3] = 0x04;
    if (vd_scsi_provisioning_enabled(d)) {
        page[5] = 0x80u | 0x40u;    /* LBPU, LBPWS; no LBPWS10, no anchors */
        page[6] = 0x02;             /* provisioning type: thin */
    }
    if (unmap_reads_zeros(d))
        page[5] |= 0x04u;           /* LBPRZ 001b: unmapped blocks read zeros */
    return 8;
}

static int is_disk_full(uint32_t error)
{
    return error == VD_ERROR_DISK_FULL || error == VD_ERROR_DISK_QUOTA_EXCEEDED;
}

void vd_scsi_fail_write(vd_scsi_response *r, uint32_t error, uint64_t lba)
{
    if (error == VD_ERROR_ACCESS_DENIED || error == VD_ERROR_NOT_SUPPORTED)
        vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED, 0, 0, 0);
    else if (error == VD_ERROR_NOT_READY)
        vd_scsi_fail(r, VD_SK_NOT_READY, VD_ASC_MEDIUM_NOT_PRESENT, 0, 0, 0);
    else if (is_disk_full(error))
        vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED,
                     VD_ASCQ_SPACE_ALLOCATION_FAILED, 1, lba);
    else
        vd_scsi_fail(r, VD_SK_MEDIUM_ERROR, VD_ASC_WRITE_ERROR, 0, 1, lba);
}

static void invalid_parameters(vd_scsi_response *r)
{
    vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_INVALID_FIELD_IN_PARAMETERS, 0, 0, 0);
}

static void lba_out_of_range(vd_scsi_response *r)
{
    vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_LBA_OUT_OF_RANGE, 0, 0, 0);
}

static void invalid_cdb(vd_scsi_response *r)
{
    vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_INVALID_FIELD_IN_CDB, 0, 0, 0);
}

/* Checks every descriptor of an UNMAP parameter list (SBC-4 5.31.2):
 * each range inside the disk, their count and total within VPD 0xB0.
 * Returns 0 after answering the failure. */
static int unmap_descriptors_valid(const vd_disk *d, const uint8_t *list, uint32_t count,
                                   vd_scsi_response *r)
{
    uint64_t capacity = vd_scsi_block_count(d), total = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *descriptor = list + UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH;
        uint64_t lba = vd_load_be64(descriptor);
        uint64_t blocks = vd_load_be32(descriptor + 8);
        if (lba > capacity || blocks > capacity - lba)
            { lba_out_of_range(r); return 0; }
        total += blocks;
    }
    if (count > VD_SCSI_MAX_UNMAP_DESCRIPTORS
        || total > VD_SCSI_MAX_UNMAP_BYTES / vd_scsi_block_size(d))
        { invalid_parameters(r); return 0; }
    return 1;
}

void vd_scsi_unmap(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r)
{
    const uint8_t *c = q->cdb;
    uint32_t length = vd_load_be16(c + 7);
    if (!vd_scsi_provisioning_enabled(d))
        { vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_INVALID_OPCODE, 0, 0, 0); return; }
    if (c[1] & 0x01u)               /* ANCHOR, and ANC_SUP is 0 */
        { invalid_cdb(r); return; }
    if (vd_scsi_write_protected(d, q))
        { vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED, 0, 0, 0); return; }
    if (length == 0)                /* nothing to unmap, not an error */
        return;
    if (length < UNMAP_HEADER_LENGTH) {
        vd_scsi_fail(r, VD_SK_ILLEGAL_REQUEST, VD_ASC_PARAMETER_LIST_LENGTH, 0, 0, 0);
        return;
    }
    if (q->direction != VD_SCSI_DATA_OUT || q->data == NULL || q->data_length < length)
        { invalid_cdb(r); return; }
    const uint8_t *list = q->data;
    /* The descriptors the list holds: the smaller of what its header says
     * and what the parameter list length carried; an incomplete last one
     * is ignored. */
    uint32_t described = vd_load_be16(list + 2);
    if (described > length - UNMAP_HEADER_LENGTH)
        described = length - UNMAP_HEADER_LENGTH;
    uint32_t count = described / UNMAP_DESCRIPTOR_LENGTH;
    if (!unmap_descriptors_valid(d, list, count, r))
        return;
    uint64_t size = vd_scsi_block_size(d);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *descriptor = list + UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH;
        uint64_t lba = vd_load_be64(descriptor);
        uint64_t blocks = vd_load_be32(descriptor + 8);
        uint32_t error = vd_content_unmap(d, lba * size, blocks * size);
        if (error != VD_ERROR_SUCCESS)
            { vd_scsi_fail_write(r, error, lba); return; }
    }
    r->transferred = length;
}

/* Writes `block` (one logical block) over `blocks` blocks from `lba`, a
 * chunk of copies at a time. */
static void write_repeated(vd_disk *d, const uint8_t *block, uint64_t lba, uint64_t blocks,
                           vd_scsi_response *r)
{
    uint32_t size = vd_scsi_block_size(d);
    uint64_t per_chunk = WRITE_SAME_CHUNK_BYTES / size;
    if (per_chunk > blocks)
        per_chunk = blocks;
    uint8_t *chunk = malloc(per_chunk * size);
    if (chunk == NULL)
        { vd_scsi_fail(r, VD_SK_MEDIUM_ERROR, VD_ASC_WRITE_ERROR, 0, 1, lba); return; }
    for (uint64_t i = 0; i < per_chunk; i++)
        memcpy(chunk + i * size, block, size);
    for (uint64_t done = 0; done < blocks; done += per_chunk) {
        uint64_t now = blocks - done < per_chunk ? blocks - done : per_chunk;
        uint32_t error = vd_content_write(d, (lba + done) * size, chunk, now * size);
        if (error != VD_ERROR_SUCCESS) {
            vd_scsi_fail_write(r, error, lba + done);
            break;
        }
    }
    free(chunk);
}

/* WRITE SAME (16) (SBC-4 5.49): the block from the data-out buffer (zeros
 * with NDOB) over the range; with UNMAP on a thin disk and a zero block
 * (the block LBPRZ promises), the range is unmapped instead. */
void vd_scsi_write_same(vd_disk *d, const vd_scsi_request *q, vd_scsi_response *r)
{
    const uint8_t *c = q->cdb;
    int unmap = (c[1] & 0x08u) != 0, no_data = (c[1] & 0x01u) != 0;
    uint64_t lba = vd_load_be64(c + 2), blocks = vd_load_be32(c + 10);
    uint32_t size = vd_scsi_block_size(d);
    /* WRPROTECT needs protection information, which no image has; ANCHOR
     * needs ANC_SUP; a zero count is refused (WSNZ). */
    if ((c[1] & 0xE0u) || (c[1] & 0x10u) || blocks == 0
        || blocks > VD_SCSI_MAX_WRITE_SAME_BYTES / size)
        { invalid_cdb(r); return; }
    uint64_t capacity = vd_scsi_block_count(d);
    if (lba > capacity || blocks > capacity - lba)
        { lba_out_of_range(r); return; }
    if (vd_scsi_write_protected(d, q))
        { vd_scsi_fail(r, VD_SK_DATA_PROTECT, VD_ASC_WRITE_PROTECTED, 0, 0, 0); return; }
    const uint8_t *block = q->data;
    uint8_t *zeros = NULL;
    if (no_data) {
        zeros = calloc(1, size);
        if (zeros == NULL)
            { vd_scsi_fail(r, VD_SK_MEDIUM_ERROR, VD_ASC_WRITE_ERROR, 0, 1, lba); return; }
        block = zeros;
    } else if (q->direction != VD_SCSI_DATA_OUT || q->data == NULL || q->data_length < size) {
        invalid_cdb(r);
        return;
    }
    if (unmap && unmap_reads_zeros(d) && vd_bytes_zero(block, size)) {
        uint32_t error = vd_content_unmap(d, lba * (uint64_t)size, blocks * size);
        if (error != VD_ERROR_SUCCESS)
            vd_scsi_fail_write(r, error, lba);
    } else {
        write_repeated(d, block, lba, blocks, r);
    }
    if (!no_data && r->status == VD_SCSI_STATUS_GOOD)
        r->transferred = size;
    free(zeros);
}
