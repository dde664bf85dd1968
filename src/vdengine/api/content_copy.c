/* vd_engine_copy_to_file and vd_engine_copy_from_file (vdengine.h): a
 * disk's content written into a file the caller opened, or a file's bytes
 * written into the disk, for conversions to and from a raw image.  The
 * engine's: Windows has no such calls (the extension answers NOT_SUPPORTED
 * there, and the facade moves the content itself).  The copies are
 * disk/content_copy.c. */
#include "vdengine.h"

#include "api/handle.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/content_copy.h"

DWORD vd_engine_copy_to_file(HANDLE VirtualDiskHandle, ULONGLONG Offset, ULONGLONG Length,
                             int FileDescriptor)
{
    vd_detail_clear();
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = vd_content_copy_to_file(disk, Offset, Length, FileDescriptor);
    vd_handle_release(VirtualDiskHandle);
    return status;
}

DWORD vd_engine_copy_from_file(HANDLE VirtualDiskHandle, int FileDescriptor, ULONGLONG Offset,
                               ULONGLONG Length, ULONG Piece)
{
    vd_detail_clear();
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = vd_content_copy_from_file(disk, FileDescriptor, Offset, Length, Piece);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
