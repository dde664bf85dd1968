/* RawSCSIVirtualDisk: one SCSI command to the block target of scsi.c.
 *
 * The return value says whether the request was received, nothing more
 * ("A return of ERROR_SUCCESS only means the request was received by the
 * virtual disk"): every SCSI outcome, good or CHECK CONDITION, is in the
 * response (ScsiStatus, sense copied to SenseInfo, DataTransferLength).
 *
 * Return codes, checked in this order:
 *  - ERROR_INVALID_PARAMETER: Flags not NONE; Parameters or Response NULL;
 *    Version not 1; RSVDHandle set (no engine handle is a Remote Shared
 *    Virtual Disk handle); DataIn not SCSI_IOCTL_DATA_OUT / _IN /
 *    _UNSPECIFIED; no CDB (CdbLength 0 or Cdb NULL) or one longer than
 *    16 bytes; a length with a NULL buffer (SenseInfo, DataBuffer).
 *    The 16-byte limit is the engine's reading, not a documented code:
 *    DataIn takes SCSI_PASS_THROUGH's values, whose Cdb holds 16 bytes,
 *    and 16 is the longest fixed-length CDB of SPC-5; a CDB shorter than
 *    its opcode needs is received and refused by the target (ILLEGAL
 *    REQUEST), since only the target knows the opcode.
 *  - ERROR_INVALID_HANDLE: a value that is no open handle.
 *  - ERROR_NOT_READY: the handle holds no attach (a device attach made
 *    through it counts: after a permanent export its commands reach the
 *    device, api/attach_redirect.h; once that attach is detached, by this
 *    handle or another, they still reach the target, whose content calls
 *    answer NOT READY and whose flush succeeds, as for a detach from
 *    another process).  On
 *    Windows the command reaches a disk only once it is attached that way
 *    ("ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST is required for RawIO", the
 *    SDK's raw I/O sample); a disk that is not attached is a device that is
 *    not ready, which is also what DetachVirtualDisk answers for it.
 *
 * SrbFlags are accepted as given: the direction comes from DataIn, and the
 * other SRB flags (queue actions, caching hints) change nothing for a
 * target that executes each command at once.  The data buffer is the
 * caller's: the target reads and writes it in place, no copy. */
#include <string.h>

#include "api/attach.h"
#include "api/attach_redirect.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "scsi/scsi.h"

/* ntddscsi.h: SCSI_PASS_THROUGH.DataIn */
#define VD_SCSI_IOCTL_DATA_OUT 0u
#define VD_SCSI_IOCTL_DATA_IN 1u
#define VD_SCSI_IOCTL_DATA_UNSPECIFIED 2u
/* SCSI_PASS_THROUGH.Cdb[16] */
#define VD_RAW_SCSI_MAX_CDB_LENGTH 16u

static int vd_raw_scsi_arguments_valid(const RAW_SCSI_VIRTUAL_DISK_PARAMETERS *parameters,
                                       RAW_SCSI_VIRTUAL_DISK_FLAG flags,
                                       const RAW_SCSI_VIRTUAL_DISK_RESPONSE *response)
{
    if (flags != RAW_SCSI_VIRTUAL_DISK_FLAG_NONE || parameters == NULL || response == NULL)
        return 0;
    if ((uint32_t)parameters->Version != RAW_SCSI_VIRTUAL_DISK_VERSION_1)
        return 0;
    if (parameters->Version1.RSVDHandle
        || parameters->Version1.DataIn > VD_SCSI_IOCTL_DATA_UNSPECIFIED)
        return 0;
    if (parameters->Version1.CdbLength == 0 || parameters->Version1.Cdb == NULL
        || parameters->Version1.CdbLength > VD_RAW_SCSI_MAX_CDB_LENGTH)
        return 0;
    if ((parameters->Version1.SenseInfoLength != 0 && parameters->Version1.SenseInfo == NULL)
        || (parameters->Version1.DataTransferLength != 0
            && parameters->Version1.DataBuffer == NULL))
        return 0;
    return 1;
}

static enum vd_scsi_direction vd_raw_scsi_direction(UCHAR data_in, ULONG length)
{
    if (length == 0 || data_in == VD_SCSI_IOCTL_DATA_UNSPECIFIED)
        return VD_SCSI_DATA_NONE;
    return data_in == VD_SCSI_IOCTL_DATA_IN ? VD_SCSI_DATA_IN : VD_SCSI_DATA_OUT;
}

DWORD WINAPI RawSCSIVirtualDisk(HANDLE VirtualDiskHandle,
                                const PRAW_SCSI_VIRTUAL_DISK_PARAMETERS Parameters,
                                RAW_SCSI_VIRTUAL_DISK_FLAG Flags,
                                PRAW_SCSI_VIRTUAL_DISK_RESPONSE Response)
{
    vd_detail_clear();
    if (!vd_raw_scsi_arguments_valid(Parameters, Flags, Response))
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    int attachment = vd_attachment_of(disk);
    vd_redirect *redirect = vd_redirect_of(disk);
    if (attachment == VD_ATTACHMENT_NONE && redirect == NULL) {
        vd_handle_release(VirtualDiskHandle);
        return VD_ERROR_NOT_READY;
    }
    int read_only = attachment != VD_ATTACHMENT_NONE ? vd_attachment_read_only(attachment)
                                                     : vd_redirect_read_only(redirect);
    /* The SDK declares the parameters const through a typedef'd pointer,
     * which makes the pointer const, not the structure; nothing here
     * writes to them. */
    const RAW_SCSI_VIRTUAL_DISK_PARAMETERS *in = Parameters;
    vd_scsi_request request = {
        .cdb = in->Version1.Cdb,
        .cdb_length = in->Version1.CdbLength,
        .data = in->Version1.DataBuffer,
        .data_length = in->Version1.DataTransferLength,
        .direction = vd_raw_scsi_direction(in->Version1.DataIn,
                                           in->Version1.DataTransferLength),
        .read_only = read_only,
    };
    vd_scsi_response answer;
    vd_scsi_execute(disk, &request, &answer);
    vd_handle_release(VirtualDiskHandle);

    uint32_t room = in->Version1.SenseInfoLength;
    uint32_t sense = answer.sense_length < room ? answer.sense_length : room;
    if (sense > 0)
        memcpy(in->Version1.SenseInfo, answer.sense, sense);
    memset(Response, 0, sizeof *Response);
    Response->Version = RAW_SCSI_VIRTUAL_DISK_VERSION_1;
    Response->Version1.ScsiStatus = answer.status;
    Response->Version1.SenseInfoLength = (UCHAR)sense;
    Response->Version1.DataTransferLength = answer.transferred;
    return VD_ERROR_SUCCESS;
}
