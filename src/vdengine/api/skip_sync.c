/* vd_engine_skip_sync (vdengine.h): a handle's image stops waiting for
 * stable storage at its flushes.  The image file's `skip_sync` (host/io.h)
 * turns its fsyncs into nothing; every write, and the order of the steps
 * of each update, stays as it is, so what a process killed at any point
 * leaves is unchanged.  Set under the disk's lock, before the caller's
 * first write; the parents of a differencing disk are not touched. */
#include "vdengine.h"

#include <pthread.h>

#include "api/handle.h"
#include "base/detail.h"
#include "base/vd_errors.h"

DWORD vd_engine_skip_sync(HANDLE VirtualDiskHandle)
{
    vd_detail_clear();
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = VD_ERROR_SUCCESS;
    pthread_mutex_lock(&disk->lock);
    if (disk->read_only)
        status = VD_ERROR_ACCESS_DENIED;
    else
        disk->image.file.skip_sync = 1;
    pthread_mutex_unlock(&disk->lock);
    vd_handle_release(VirtualDiskHandle);
    return status;
}
