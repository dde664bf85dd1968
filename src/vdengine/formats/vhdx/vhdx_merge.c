/* The VHDX merge slot (driver.h): the sectors (disk/merge_copy.c), then the
 * metadata [MS-VHDX] 2.6.1.2 moves: "When merging, an implementation MUST
 * destroy any metadata with [IsVirtualDisk] set in the parent, and copy all
 * metadata with this field set in the child to the parent."
 *
 * The IsVirtualDisk items describe the disk the guest sees, not the file:
 * Virtual Disk Size, which the target takes before this slot runs
 * (api/merge_size.c), Logical Sector Size (a chain has one, the chain
 * checks see to it), Page 83 Data and Physical Sector Size, which a child
 * may have changed; those two are written into the target when they
 * differ.  File Parameters and the Parent Locator are the file's own (not
 * IsVirtualDisk): the target keeps them, so a target that is the base stays
 * without parent and a middle target keeps naming its own parent.  User
 * items are created by this engine with IsUser alone, never IsVirtualDisk,
 * so none of them moves.
 *
 * Identity, in a crash-safe order.  The target must take a new
 * DataWriteGuid G before its first data change (2.2.2), which makes its
 * other children report a parent mismatch; the merged range must still
 * open on it until the merge is done, so that an interrupted merge can run
 * again.  So:
 *   1. the child whose parent the target is records G as parent_linkage2
 *      (vhdx_linkage2.c; a parent matches on either linkage);
 *   2. the target's header takes G (and the open's write path keeps it);
 *   3. the sectors, then the IsVirtualDisk items;
 *   4. the child's parent_linkage2 goes: the merged child no longer
 *      matches, "no longer considered valid", for the caller to delete.
 * After a crash in 1-3 the child opens (by parent_linkage before 2, by
 * parent_linkage2 after it), and a new run finds G in both and keeps it. */
#include <string.h>

#include "base/guid.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/merge_copy.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"

static uint32_t vd_vhdx_merge_items(vd_image *target, const vd_image *source)
{
    const vd_update_ops *ops = vd_update_ops_of(target);
    if (source->device != VD_DEVICE_VHDX || ops == NULL)
        return VD_ERROR_SUCCESS;
    uint32_t status = VD_ERROR_SUCCESS;
    if (memcmp(target->virtual_disk_id.bytes, source->virtual_disk_id.bytes,
               sizeof target->virtual_disk_id.bytes) != 0)
        status = ops->set_virtual_disk_id(target, &source->virtual_disk_id);
    if (status == VD_ERROR_SUCCESS && ops->set_physical_sector_size != NULL
        && target->physical_sector_size != source->physical_sector_size)
        status = ops->set_physical_sector_size(target, source->physical_sector_size);
    return status;
}

/* Step 2: the target's header with DataWriteGuid `guid`, which this open's
 * writes then keep (vhdx_write.c changes it once per open). */
static uint32_t vd_vhdx_merge_take_guid(vd_image *target, const vd_guid *guid)
{
    vd_vhdx_state *state = target->format_state;
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_update_blocked(target);
    if (status == VD_ERROR_SUCCESS
        && !(state->data_write_guid_fresh
             && memcmp(target->identifier.bytes, guid->bytes, sizeof guid->bytes) == 0)) {
        uint8_t log_guid[16];
        memcpy(log_guid, state->header + VD_VHDX_HEADER_LOG_GUID_OFFSET, 16);
        status = vd_vhdx_header_update(target, guid->bytes, log_guid);
        if (status == VD_ERROR_SUCCESS) {
            target->identifier = *guid;
            state->data_write_guid_fresh = 1;
        }
    }
    pthread_mutex_unlock(&state->allocation_lock);
    return status;
}

/* Steps 1 and 2; a child of another format (none can be a VHDX's) or a
 * rerun whose child names the target's DataWriteGuid as parent_linkage2
 * already needs no new one. */
static uint32_t vd_vhdx_merge_begin(vd_image *target, vd_image *child)
{
    if (child->device != VD_DEVICE_VHDX)
        return VD_ERROR_SUCCESS;
    vd_guid guid = target->identifier;
    if (!child->has_parent_identifier2
        || memcmp(child->parent_identifier2.bytes, guid.bytes, sizeof guid.bytes) != 0) {
        uint32_t status = vd_guid_random(guid.bytes);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_set_parent_linkage2(child, &guid);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return vd_vhdx_merge_take_guid(target, &guid);
}

uint32_t vd_vhdx_merge(vd_image *image, const vd_merge_request *request)
{
    uint32_t status = vd_vhdx_merge_begin(image, request->child);
    uint64_t written = 0;
    if (status == VD_ERROR_SUCCESS)
        status = vd_merge_copy(image, request, &written);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_merge_items(image, request->source);
    if (status == VD_ERROR_SUCCESS && request->child->device == VD_DEVICE_VHDX)
        status = vd_vhdx_set_parent_linkage2(request->child, NULL);
    return status;
}
