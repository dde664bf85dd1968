/* The functions of virtdisk_api.h the engine does not carry out: each
 * answers a decided refusal.
 *
 * Each checks its arguments as Windows documents them (the function's page,
 * its Remarks list of ERROR_INVALID_PARAMETER causes, and the SDK header's
 * _In_ / _In_opt_ annotations for which pointers may be NULL), then its
 * handle, and only then gives its answer.  So a caller sees the same 87 and
 * 6 it will see once the function exists.
 *
 * The answers (engine README, section 11):
 *   ERROR_VHD_INVALID_TYPE  the four VHD Set functions: their handle "must
 *       be a VHD Set file", and no handle the engine opens is one (the .vhds
 *       format has no public description; OpenVirtualDisk refuses the VHDSET
 *       storage type with ERROR_VIRTDISK_PROVIDER_NOT_FOUND), so every call
 *       meets a disk of the wrong type;
 *   ERROR_VHD_CHANGE_TRACKING_DISABLED  QueryChangesVirtualDisk: the engine
 *       keeps no change tracking and SetVirtualDiskInformation cannot enable
 *       it, so on every disk it opens tracking is off;
 *   ERROR_NOT_SUPPORTED (50)  ForkVirtualDisk and CompleteForkVirtualDisk,
 *       which have no documentation page and no public caller to follow.
 *
 * Order: argument checks (87) come before the handle check (6), as in
 * VirtDisk.dll, which validates its arguments before it passes the handle
 * to the driver.  Flags are checked against every bit the SDK defines
 * today; the Windows 7 pages give older, smaller limits (AttachVirtualDisk:
 * "Flags ... larger than 0x020"). */
#include "api/flag_masks.h"
#include "api/handle.h"
#include "base/detail.h"
#include "base/vd_errors.h"

#define VD_ALL_BITS_IN(flags, known) (((uint32_t)(flags) & ~(uint32_t)(known)) == 0)
#define VD_VERSION_IN(parameters, lowest, highest)                                            \
    ((parameters) != NULL && (uint32_t)(parameters)->Version >= (lowest)                     \
     && (uint32_t)(parameters)->Version <= (highest))
#define VD_NULL_OR_VERSION_IN(parameters, lowest, highest) \
    ((parameters) == NULL || VD_VERSION_IN(parameters, lowest, highest))
#define VD_VERSION_OF(parameters) ((parameters) != NULL ? (uint32_t)(parameters)->Version : 0u)


/* The arguments, then the handle, then `answer` with its detail. */
static DWORD vd_refuse(int arguments_valid, HANDLE handle, uint32_t answer, const char *why)
{
    vd_detail_clear();
    if (!arguments_valid)
        return VD_ERROR_INVALID_PARAMETER;
    if (vd_handle_acquire(handle) == NULL)
        return VD_ERROR_INVALID_HANDLE;
    vd_handle_release(handle);
    return why != NULL ? vd_fail(answer, "%s", why) : answer;
}

#define VD_NO_FORK "the engine does not fork virtual disks"
#define VD_NOT_A_VHD_SET "the handle is not a VHD Set: the engine opens no .vhds file"

/* The whole argument rule of three VHD Set functions: flags within
 * `known`, parameters present and of version 1. */
static DWORD vd_not_a_vhd_set_version_1(HANDLE handle, uint32_t flags, uint32_t known,
                                        uint32_t version)
{
    return vd_refuse(VD_ALL_BITS_IN(flags, known) && version == 1u, handle,
                     VD_ERROR_VHD_INVALID_TYPE, VD_NOT_A_VHD_SET);
}

/* A buffer the caller sizes: NULL is allowed only with a size of zero. */
static int vd_buffer_valid(const void *buffer, const ULONG *size)
{
    return size != NULL && (buffer != NULL || *size == 0);
}

DWORD WINAPI QueryChangesVirtualDisk(HANDLE VirtualDiskHandle, PCWSTR ChangeTrackingId,
                                     ULONG64 ByteOffset, ULONG64 ByteLength,
                                     QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags,
                                     PQUERY_CHANGES_VIRTUAL_DISK_RANGE Ranges, PULONG RangeCount,
                                     PULONG64 ProcessedLength)
{
    (void)ByteOffset, (void)ByteLength;
    return vd_refuse(ChangeTrackingId != NULL && ProcessedLength != NULL
                         && Flags == QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE
                         && vd_buffer_valid(Ranges, RangeCount),
                     VirtualDiskHandle, VD_ERROR_VHD_CHANGE_TRACKING_DISABLED,
                     "change tracking is off: the engine keeps no change tracking");
}

DWORD WINAPI TakeSnapshotVhdSet(HANDLE VirtualDiskHandle,
                                const PTAKE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                TAKE_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_a_vhd_set_version_1(VirtualDiskHandle, Flags, VD_TAKE_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

DWORD WINAPI DeleteSnapshotVhdSet(HANDLE VirtualDiskHandle,
                                  const PDELETE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                  DELETE_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_a_vhd_set_version_1(VirtualDiskHandle, Flags, VD_DELETE_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

/* SNAPSHOT_PATH and DEFAULT_SNAPSHOT_PATH carry a path that must be there. */
DWORD WINAPI ModifyVhdSet(HANDLE VirtualDiskHandle, const PMODIFY_VHDSET_PARAMETERS Parameters,
                          MODIFY_VHDSET_FLAG Flags)
{
    return vd_refuse(
        VD_ALL_BITS_IN(Flags, VD_MODIFY_VHDSET_FLAGS_KNOWN)
            && VD_VERSION_IN(Parameters, MODIFY_VHDSET_SNAPSHOT_PATH,
                             MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH)
            && (Parameters->Version != MODIFY_VHDSET_SNAPSHOT_PATH
                || Parameters->SnapshotPath.SnapshotFilePath != NULL)
            && (Parameters->Version != MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH
                || Parameters->DefaultFilePath != NULL),
        VirtualDiskHandle, VD_ERROR_VHD_INVALID_TYPE, VD_NOT_A_VHD_SET);
}

DWORD WINAPI ApplySnapshotVhdSet(HANDLE VirtualDiskHandle,
                                 const PAPPLY_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                 APPLY_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_a_vhd_set_version_1(VirtualDiskHandle, Flags, VD_APPLY_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

/* The SDK marks Overlapped _Inout_ here: a fork is always asynchronous. */
DWORD WINAPI ForkVirtualDisk(HANDLE VirtualDiskHandle, FORK_VIRTUAL_DISK_FLAG Flags,
                             const FORK_VIRTUAL_DISK_PARAMETERS *Parameters,
                             LPOVERLAPPED Overlapped)
{
    return vd_refuse(
        VD_ALL_BITS_IN(Flags, VD_FORK_FLAGS_KNOWN) && Overlapped != NULL
            && VD_VERSION_IN(Parameters, FORK_VIRTUAL_DISK_VERSION_1, FORK_VIRTUAL_DISK_VERSION_1)
            && Parameters->Version1.ForkedVirtualDiskPath != NULL,
        VirtualDiskHandle, VD_ERROR_NOT_SUPPORTED, VD_NO_FORK);
}

DWORD WINAPI CompleteForkVirtualDisk(HANDLE VirtualDiskHandle)
{
    return vd_refuse(1, VirtualDiskHandle, VD_ERROR_NOT_SUPPORTED, VD_NO_FORK);
}
