/* A small SCSI block target (an SBC-4 / SPC-5 subset) over a disk's
 * content: what RawSCSIVirtualDisk hands its CDBs to.
 *
 * vd_scsi_execute never fails as a call: every outcome, good or bad, is a
 * SCSI status with fixed-format sense, as a real target answers.  It takes
 * no lock; data I/O goes through content.c, which runs in parallel. */
#ifndef VDENGINE_SCSI_H
#define VDENGINE_SCSI_H

#include <stdint.h>

#include "api/handle.h"

#define VD_SCSI_STATUS_GOOD            0x00u
#define VD_SCSI_STATUS_CHECK_CONDITION 0x02u

#define VD_SCSI_SENSE_LENGTH 18u       /* fixed format, additional length 10 */

/* The largest transfer one command moves, in bytes; VPD 0xB0 reports it in
 * blocks and bigger requests are refused as an invalid CDB field. */
#define VD_SCSI_MAX_TRANSFER_BYTES (8u * 1024u * 1024u)

enum vd_scsi_direction {
    VD_SCSI_DATA_NONE = 0,
    VD_SCSI_DATA_IN = 1,               /* target to initiator (reads) */
    VD_SCSI_DATA_OUT = 2               /* initiator to target (writes) */
};

typedef struct vd_scsi_request {
    const uint8_t *cdb;                /* never NULL */
    uint32_t cdb_length;               /* at least 1 */
    void *data;                        /* DATA_IN: filled; DATA_OUT: read */
    uint32_t data_length;
    enum vd_scsi_direction direction;
    int read_only;                     /* the attach is read-only: DATA PROTECT */
} vd_scsi_request;

typedef struct vd_scsi_response {
    uint8_t status;
    uint8_t sense[VD_SCSI_SENSE_LENGTH]; /* written only when sense_length > 0 */
    uint32_t sense_length;             /* 0 when status is GOOD */
    uint32_t transferred;              /* bytes moved */
} vd_scsi_response;

void vd_scsi_execute(vd_disk *disk, const vd_scsi_request *request, vd_scsi_response *response);

#endif
