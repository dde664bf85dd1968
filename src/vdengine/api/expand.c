/* ExpandVirtualDisk (Windows 7's form of a grow; api/resize.c does the
 * work).  Flags: NONE or NOTIFY_CHANGE, which the SDK defines without a
 * word and which changes nothing here.  Parameters are required and of
 * version 1; NewSize must be larger than the current size: a smaller one
 * is ERROR_INVALID_PARAMETER (expanding never shrinks), the same one
 * changes nothing. */
#include "api/flag_masks.h"
#include "api/resize.h"
#include "base/detail.h"
#include "base/vd_errors.h"

DWORD WINAPI ExpandVirtualDisk(HANDLE VirtualDiskHandle, EXPAND_VIRTUAL_DISK_FLAG Flags,
                               PEXPAND_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    if (((uint32_t)Flags & ~(uint32_t)VD_EXPAND_FLAGS_KNOWN) != 0 || Parameters == NULL
        || Parameters->Version != EXPAND_VIRTUAL_DISK_VERSION_1 || Parameters->Version1.NewSize == 0)
        return VD_ERROR_INVALID_PARAMETER;
    vd_resize_terms terms = { .new_size = Parameters->Version1.NewSize, .grow_only = 1 };
    return vd_resize_start(VirtualDiskHandle, &terms, Overlapped);
}
