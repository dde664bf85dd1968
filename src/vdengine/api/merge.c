/* MergeVirtualDisk V1 and V2: the checks Windows makes, the range of the
 * chain to merge, then the target format's merge slot (driver.h) run
 * through the long operations' model (operation.h), synchronously or on a
 * worker.
 *
 * Depths count from the leaf, which is depth 1.  V1 merges the leaf and
 * the MergeDepth - 1 images above it into the image at MergeDepth + 1;
 * "the RWDepth of the virtual disk must be greater than MergeDepth", which
 * is what makes the target writable: the handle opened it read-write
 * (chain.h).  V2 merges MergeSourceDepth .. MergeTargetDepth - 1 into the
 * image at MergeTargetDepth, on a handle whose ancestors were opened
 * read-only (V2 opens take no RWDepth): the merge closes them and opens the
 * chain again read-write down to the target, as Windows opens "READ|WRITE
 * all affected files".  That chain stays with the handle afterwards: the
 * merged-away child no longer matches its changed parent, so the chain the
 * handle was opened with cannot be opened again.
 *
 * The sources stay as they are, for the caller to delete; the handle goes
 * on reading the leaf's content, which the merge did not change.
 *
 * Codes (engine README, section 13): flags other than NONE, no parameters,
 * a version other than 1 and 2, MergeDepth 0, a source depth 0 or a target
 * depth not above the source, or a depth past the chain the
 * handle opened: INVALID_PARAMETER; ISO: NOT_SUPPORTED; a read-only or
 * GetInfoOnly handle, a V1 handle without METAOPS, or a V1 target beyond
 * RWDepth: ACCESS_DENIED; a disk that is not differencing: VHD_INVALID_TYPE;
 * a source of another size than the target (a resized VHDX child) that
 * the target cannot take: VHD_CHILD_PARENT_SIZE_MISMATCH, or
 * VHD_RESIZE_WOULD_TRUNCATE_DATA for a shrink that could cut a partition
 * (api/merge_size.c; otherwise the target takes the source's size first);
 * attached as a device: VHD_INVALID_STATE ("requires that the affected
 * disks be detached"). */
#include <stdlib.h>

#include "api/attach.h"
#include "api/attach_redirect.h"
#include "api/handle.h"
#include "api/merge_size.h"
#include "api/operation.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "vdengine.h"

/* The merged range: sources source .. target - 1 into target. */
typedef struct vd_merge_range {
    uint32_t source;
    uint32_t target;
} vd_merge_range;

static int vd_merge_range_of(MERGE_VIRTUAL_DISK_FLAG flags,
                             const MERGE_VIRTUAL_DISK_PARAMETERS *parameters,
                             vd_merge_range *range)
{
    if ((uint32_t)flags != MERGE_VIRTUAL_DISK_FLAG_NONE || parameters == NULL)
        return 0;
    switch ((uint32_t)parameters->Version) {
    case MERGE_VIRTUAL_DISK_VERSION_1:
        range->source = 1;
        range->target = (uint32_t)parameters->Version1.MergeDepth + 1u;
        return parameters->Version1.MergeDepth >= 1u && range->target > 1u;
    case MERGE_VIRTUAL_DISK_VERSION_2:
        range->source = (uint32_t)parameters->Version2.MergeSourceDepth;
        range->target = (uint32_t)parameters->Version2.MergeTargetDepth;
        return range->source >= 1u && range->target > range->source;
    default:
        return 0;
    }
}

static vd_image *vd_merge_image_at(vd_disk *disk, uint32_t depth)
{
    return depth == 1u ? &disk->image : &disk->chain.images[depth - 2u];
}

/* What the merged range reads through: the source's parent when the
 * source is the handle's own image (its ops do not carry its ancestors). */
static vd_image *vd_merge_source_parent(vd_disk *disk, const vd_merge_range *range)
{
    return range->source == 1u ? disk->chain.images : NULL;
}

/* What the handle allows, before anything runs. */
static uint32_t vd_merge_admissible(vd_disk *disk, const vd_merge_range *range,
                                    uint32_t version)
{
    if (disk->image.device == VD_DEVICE_ISO)
        return VD_ERROR_NOT_SUPPORTED;
    if (disk->read_only || disk->get_info_only
        || !vd_disk_has_access(disk, VIRTUAL_DISK_ACCESS_METAOPS))
        return VD_ERROR_ACCESS_DENIED;
    if (vd_attachment_on_host(vd_attachment_of(disk)))
        return vd_fail(VD_ERROR_VHD_INVALID_STATE, "the disk is attached as a loop device; detach it first");
    uint32_t served = vd_redirect_check_update(disk);
    if (served != VD_ERROR_SUCCESS)
        return served;
    if (!disk->image.has_parent)
        return vd_fail(VD_ERROR_VHD_INVALID_TYPE, "the disk is not a differencing disk");
    if (range->target - 1u > disk->chain.count)
        return vd_fail(VD_ERROR_INVALID_PARAMETER,
                       "merge target depth %u is past the chain (%u images opened)",
                       range->target, disk->chain.count + 1u);
    if (version == MERGE_VIRTUAL_DISK_VERSION_1 && range->target > disk->writable_depth)
        return vd_fail(VD_ERROR_ACCESS_DENIED,
                       "MergeDepth %u needs RWDepth %u or more; the disk was opened with %u",
                       range->target - 1u, range->target, disk->writable_depth);
    return vd_merge_size_check(vd_merge_image_at(disk, range->source), vd_merge_source_parent(disk, range),
                               vd_merge_image_at(disk, range->target),
                               vd_merge_image_at(disk, range->target - 1u));
}

/* Opens the handle's chain again with the images down to `target`
 * read-write (a V2 merge).  The old chain's read-only opens are closed
 * first: a writer excludes every other opener, the handle's own too.  On
 * failure the chain is opened again by the handle's terms. */
static int vd_merge_chain_writable(const vd_disk *disk, uint32_t target)
{
    for (uint32_t depth = 2; depth <= target; depth++) {
        if (depth - 2u >= disk->chain.count || !disk->chain.images[depth - 2u].file.writable)
            return 0;
    }
    return 1;
}

/* Opens the chain again with the images down to `target` read-write,
 * out of the way of the data path (an in-process attach reads through the
 * chain); on failure it is opened again by the handle's terms. */
static uint32_t vd_merge_reopen_chain(vd_disk *disk, uint32_t target)
{
    vd_gate_enter_alone(&disk->content_gate);
    vd_chain_close(&disk->chain);
    uint32_t terms = disk->writable_depth;
    disk->writable_depth = target > terms ? target : terms;
    uint32_t status = vd_disk_open_parents(disk, &disk->chain);
    disk->writable_depth = terms;
    if (status != VD_ERROR_SUCCESS)
        (void)vd_disk_open_parents(disk, &disk->chain);
    vd_gate_leave_alone(&disk->content_gate);
    return status;
}

/* A chain open read-write down to the target already (the handle's terms,
 * or an earlier merge on it) is kept: after a merge it could not be opened
 * again. */
static uint32_t vd_merge_open_writable(vd_disk *disk, uint32_t target)
{
    if (target <= disk->writable_depth || vd_merge_chain_writable(disk, target))
        return VD_ERROR_SUCCESS;
    return vd_merge_reopen_chain(disk, target);
}

/* The target made the source's size (api/merge_size.h), counted as the
 * first part of the progress; the chain is opened again so that every
 * image reads its size from the file, the new one or, after a failure or
 * a cancel, the old.  *work: the bytes counted. */
static uint32_t vd_merge_fit_target(vd_disk *disk, const vd_merge_range *range, vd_operation *operation,
                                    uint64_t *work)
{
    vd_image *target = vd_merge_image_at(disk, range->target);
    uint64_t size = vd_merge_image_at(disk, range->source)->virtual_size;
    *work = vd_merge_size_work(target, size);
    if (*work == 0)
        return VD_ERROR_SUCCESS;
    vd_operation_set_total(operation, *work + size);
    uint32_t status = vd_merge_size_apply(target, size, operation);
    uint32_t reopened = vd_merge_reopen_chain(disk, range->target);
    if (status == VD_ERROR_SUCCESS)
        status = reopened;
    if (status == VD_ERROR_SUCCESS)
        vd_operation_set_done(operation, *work);
    return status;
}

static uint32_t vd_merge_body(vd_disk *disk, vd_operation *operation, void *context)
{
    const vd_merge_range *range = context;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_merge_open_writable(disk, range->target);
    vd_image *target = status == VD_ERROR_SUCCESS ? vd_merge_image_at(disk, range->target) : NULL;
    const vd_format_driver *driver = target != NULL ? vd_image_driver(target) : NULL;
    if (status == VD_ERROR_SUCCESS && (driver == NULL || driver->merge == NULL))
        status = VD_ERROR_NOT_SUPPORTED;
    if (status == VD_ERROR_SUCCESS && !target->file.writable)
        status = vd_fail(VD_ERROR_ACCESS_DENIED, "the merge target is open read-only");
    uint64_t fitted = 0;
    if (status == VD_ERROR_SUCCESS)
        status = vd_merge_fit_target(disk, range, operation, &fitted);
    if (status == VD_ERROR_SUCCESS) {
        vd_merge_request request = {
            .source = vd_merge_image_at(disk, range->source),
            .child = vd_merge_image_at(disk, range->target - 1u),
            .source_parent = vd_merge_source_parent(disk, range),
            .operation = operation,
            .progress_base = fitted,
            .lock = &disk->lock,
        };
        status = driver->merge(vd_merge_image_at(disk, range->target), &request);
    }
    pthread_mutex_unlock(&disk->lock);
    return status;
}

DWORD WINAPI MergeVirtualDisk(HANDLE VirtualDiskHandle, MERGE_VIRTUAL_DISK_FLAG Flags,
                              PMERGE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped)
{
    vd_detail_clear();
    vd_merge_range range;
    if (!vd_merge_range_of(Flags, Parameters, &range))
        return VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = vd_handle_acquire(VirtualDiskHandle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&disk->lock);
    uint32_t status = vd_merge_admissible(disk, &range, (uint32_t)Parameters->Version);
    pthread_mutex_unlock(&disk->lock);
    vd_merge_range *context = status == VD_ERROR_SUCCESS ? malloc(sizeof *context) : NULL;
    if (status == VD_ERROR_SUCCESS && context == NULL)
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    if (status != VD_ERROR_SUCCESS) {
        vd_handle_release(VirtualDiskHandle);
        return status;
    }
    *context = range;
    return vd_operation_run(VirtualDiskHandle, disk, Overlapped, vd_merge_body, context, free);
}
