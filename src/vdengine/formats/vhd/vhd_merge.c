/* The VHD merge slot (driver.h): the sectors (disk/merge_copy.c), then a
 * new footer UniqueId for the target when the merge changed its content.
 *
 * A VHD child knows its parent by the parent's UniqueId alone, and a VHD
 * write changes no identifier, so a merge that left the UniqueId alone
 * would let the target's other children open on content that changed
 * under them.  Decision: the target takes a new UniqueId after a merge
 * that wrote anything, so that those children report a parent mismatch, as
 * a VHDX target's children do through its DataWriteGuid.  The target
 * keeps its own parent fields (a middle target still names its parent). */
#include "base/guid.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/merge_copy.h"
#include "formats/vhd/vhd_internal.h"

uint32_t vd_vhd_merge(vd_image *image, const vd_merge_request *request)
{
    uint64_t written = 0;
    /* The target's own waiting entries first (merge_copy's flush commits
     * what the merge writes). */
    uint32_t status = vd_vhd_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_merge_copy(image, request, &written);
    const vd_update_ops *ops = vd_update_ops_of(image);
    if (status != VD_ERROR_SUCCESS || written == 0 || ops == NULL || ops->set_identifier == NULL)
        return status;
    vd_guid identifier;
    status = vd_guid_random(identifier.bytes);
    if (status == VD_ERROR_SUCCESS)
        status = ops->set_identifier(image, &identifier);
    return status;
}
