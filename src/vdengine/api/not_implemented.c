/* The functions of virtdisk_api.h the engine does not implement yet.
 *
 * Each checks its arguments as Windows documents them (the function's page,
 * its Remarks list of ERROR_INVALID_PARAMETER causes, and the SDK header's
 * _In_ / _In_opt_ annotations for which pointers may be NULL), then its
 * handle, and only then answers ERROR_CALL_NOT_IMPLEMENTED (120).  So a
 * caller sees the same 87 and 6 it will see once the function exists, and
 * 120 only for a call that Windows would have carried out.
 *
 * Order: argument checks (87) come before the handle check (6), as in
 * VirtDisk.dll, which validates its arguments before it passes the handle
 * to the driver.  Flags are checked against every bit the SDK defines
 * today; the Windows 7 pages give older, smaller limits (AttachVirtualDisk:
 * "Flags ... larger than 0x020").
 */
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


static DWORD vd_not_implemented(int arguments_valid, HANDLE handle)
{
    vd_detail_clear();
    if (!arguments_valid)
        return VD_ERROR_INVALID_PARAMETER;
    if (vd_handle_acquire(handle) == NULL)
        return VD_ERROR_INVALID_HANDLE;
    vd_handle_release(handle);
    return VD_ERROR_CALL_NOT_IMPLEMENTED;
}

/* The whole rule of several functions: flags within `known`, parameters
 * present and of version 1. */
static DWORD vd_not_implemented_version_1(HANDLE handle, uint32_t flags, uint32_t known,
                                          uint32_t version)
{
    return vd_not_implemented(VD_ALL_BITS_IN(flags, known) && version == 1u, handle);
}

/* A buffer the caller sizes: NULL is allowed only with a size of zero. */
static int vd_buffer_valid(const void *buffer, const ULONG *size)
{
    return size != NULL && (buffer != NULL || *size == 0);
}

DWORD WINAPI MergeVirtualDisk(HANDLE VirtualDiskHandle, MERGE_VIRTUAL_DISK_FLAG Flags,
                              PMERGE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    (void)Overlapped;
    return vd_not_implemented(Flags == MERGE_VIRTUAL_DISK_FLAG_NONE
                                  && VD_VERSION_IN(Parameters, MERGE_VIRTUAL_DISK_VERSION_1,
                                                   MERGE_VIRTUAL_DISK_VERSION_2),
                              VirtualDiskHandle);
}

/* The SDK marks Overlapped _In_ here: a mirror is always asynchronous. */
DWORD WINAPI MirrorVirtualDisk(HANDLE VirtualDiskHandle, MIRROR_VIRTUAL_DISK_FLAG Flags,
                               PMIRROR_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    return vd_not_implemented(
        VD_ALL_BITS_IN(Flags, VD_MIRROR_FLAGS_KNOWN) && Overlapped != NULL
            && VD_VERSION_IN(Parameters, MIRROR_VIRTUAL_DISK_VERSION_1,
                             MIRROR_VIRTUAL_DISK_VERSION_1)
            && Parameters->Version1.MirrorVirtualDiskPath != NULL,
        VirtualDiskHandle);
}

DWORD WINAPI BreakMirrorVirtualDisk(HANDLE VirtualDiskHandle)
{
    return vd_not_implemented(1, VirtualDiskHandle);
}

DWORD WINAPI AddVirtualDiskParent(HANDLE VirtualDiskHandle, PCWSTR ParentPath)
{
    return vd_not_implemented(ParentPath != NULL, VirtualDiskHandle);
}

DWORD WINAPI QueryChangesVirtualDisk(HANDLE VirtualDiskHandle, PCWSTR ChangeTrackingId,
                                     ULONG64 ByteOffset, ULONG64 ByteLength,
                                     QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags,
                                     PQUERY_CHANGES_VIRTUAL_DISK_RANGE Ranges, PULONG RangeCount,
                                     PULONG64 ProcessedLength)
{
    (void)ByteOffset, (void)ByteLength;
    return vd_not_implemented(ChangeTrackingId != NULL && ProcessedLength != NULL
                                  && Flags == QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE
                                  && vd_buffer_valid(Ranges, RangeCount),
                              VirtualDiskHandle);
}

DWORD WINAPI TakeSnapshotVhdSet(HANDLE VirtualDiskHandle,
                                const PTAKE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                TAKE_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_implemented_version_1(VirtualDiskHandle, Flags, VD_TAKE_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

DWORD WINAPI DeleteSnapshotVhdSet(HANDLE VirtualDiskHandle,
                                  const PDELETE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                  DELETE_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_implemented_version_1(VirtualDiskHandle, Flags, VD_DELETE_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

/* SNAPSHOT_PATH and DEFAULT_SNAPSHOT_PATH carry a path that must be there. */
DWORD WINAPI ModifyVhdSet(HANDLE VirtualDiskHandle, const PMODIFY_VHDSET_PARAMETERS Parameters,
                          MODIFY_VHDSET_FLAG Flags)
{
    return vd_not_implemented(
        VD_ALL_BITS_IN(Flags, VD_MODIFY_VHDSET_FLAGS_KNOWN)
            && VD_VERSION_IN(Parameters, MODIFY_VHDSET_SNAPSHOT_PATH,
                             MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH)
            && (Parameters->Version != MODIFY_VHDSET_SNAPSHOT_PATH
                || Parameters->SnapshotPath.SnapshotFilePath != NULL)
            && (Parameters->Version != MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH
                || Parameters->DefaultFilePath != NULL),
        VirtualDiskHandle);
}

DWORD WINAPI ApplySnapshotVhdSet(HANDLE VirtualDiskHandle,
                                 const PAPPLY_SNAPSHOT_VHDSET_PARAMETERS Parameters,
                                 APPLY_SNAPSHOT_VHDSET_FLAG Flags)
{
    return vd_not_implemented_version_1(VirtualDiskHandle, Flags, VD_APPLY_SNAPSHOT_FLAGS_KNOWN,
                                        VD_VERSION_OF(Parameters));
}

/* The SDK marks Overlapped _Inout_ here: a fork is always asynchronous. */
DWORD WINAPI ForkVirtualDisk(HANDLE VirtualDiskHandle, FORK_VIRTUAL_DISK_FLAG Flags,
                             const FORK_VIRTUAL_DISK_PARAMETERS *Parameters,
                             LPOVERLAPPED Overlapped)
{
    return vd_not_implemented(
        VD_ALL_BITS_IN(Flags, VD_FORK_FLAGS_KNOWN) && Overlapped != NULL
            && VD_VERSION_IN(Parameters, FORK_VIRTUAL_DISK_VERSION_1, FORK_VIRTUAL_DISK_VERSION_1)
            && Parameters->Version1.ForkedVirtualDiskPath != NULL,
        VirtualDiskHandle);
}

DWORD WINAPI CompleteForkVirtualDisk(HANDLE VirtualDiskHandle)
{
    return vd_not_implemented(1, VirtualDiskHandle);
}
