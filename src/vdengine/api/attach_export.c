/* The export of an image the loop cannot map directly (attach_export.h).
 * There is no server yet: such attaches are refused with NOT_SUPPORTED
 * and a detail that says which images can be attached today. */
#include "api/attach_export.h"

#include "base/detail.h"
#include "base/vd_errors.h"

uint32_t vd_attach_export(vd_disk *disk, const vd_attach_view *view, int *number,
                          int *device_fd)
{
    (void)view, (void)number, (void)device_fd;
    const char *kind = disk->image.subtype == VD_SUBTYPE_DYNAMIC        ? "a dynamic"
                       : disk->image.subtype == VD_SUBTYPE_DIFFERENCING ? "a differencing"
                                                                        : "this";
    return vd_fail(VD_ERROR_NOT_SUPPORTED,
                   "%s image cannot be attached to the host yet: the engine attaches ISO images, "
                   "fixed VHDs and fixed VHDXs whose blocks lie in order in the file",
                   kind);
}

void vd_attach_export_release(vd_disk *disk)
{
    (void)disk;              /* no export is ever made: nothing serves */
}
