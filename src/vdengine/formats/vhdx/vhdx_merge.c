/* The VHDX merge slot (driver.h): the sectors (disk/merge_copy.c), then the
 * metadata [MS-VHDX] 2.6.1.2 moves: "When merging, an implementation MUST
 * destroy any metadata with [IsVirtualDisk] set in the parent, and copy all
 * metadata with this field set in the child to the parent."
 *
 * The IsVirtualDisk items describe the disk the guest sees, not the file:
 * Virtual Disk Size and Logical Sector Size (a chain has one of each, the
 * chain checks see to it), Page 83 Data and Physical Sector Size, which a
 * child may have changed; those two are written into the target when they
 * differ.  File Parameters and the Parent Locator are the file's own (not
 * IsVirtualDisk): the target keeps them, so a target that is the base stays
 * without parent and a middle target keeps naming its own parent.  User
 * items are created by this engine with IsUser alone, never IsVirtualDisk,
 * so none of them moves.
 *
 * The target's DataWriteGuid changes at its first write, as every write of
 * an open changes it (vhdx_write.c): the target's other children, whose
 * parent_linkage names the old one, report a parent mismatch afterwards,
 * and so does the merged-away child, which the caller deletes. */
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/merge_copy.h"
#include "formats/vhdx/vhdx_internal.h"

#include <string.h>

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

uint32_t vd_vhdx_merge(vd_image *image, const vd_merge_request *request)
{
    uint64_t written = 0;
    uint32_t status = vd_merge_copy(image, request, &written);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_merge_items(image, request->source);
    return status;
}
