/* GetVirtualDiskOperationProgress (operation.h has the model).
 *
 * Arguments before the handle, as everywhere: Overlapped and Progress are
 * _In_ / _Out_ in the SDK, so NULL is ERROR_INVALID_PARAMETER.  An
 * OVERLAPPED the handle never ran an operation with answers
 * ERROR_NOT_FOUND (what CancelIoEx answers for the same situation). */
#include "api/operation.h"
#include "base/vd_errors.h"

DWORD WINAPI GetVirtualDiskOperationProgress(HANDLE VirtualDiskHandle, LPOVERLAPPED Overlapped,
                                             PVIRTUAL_DISK_PROGRESS Progress)
{
    if (Overlapped == NULL || Progress == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    uint32_t status = 0;
    uint64_t current = 0, completion = 0;
    uint32_t found = vd_operation_progress(disk, Overlapped, &status, &current, &completion);
    vd_handle_release(VirtualDiskHandle);
    if (found != VD_ERROR_SUCCESS)
        return found;
    Progress->OperationStatus = status;
    Progress->CurrentValue = current;
    Progress->CompletionValue = completion;
    return VD_ERROR_SUCCESS;
}
