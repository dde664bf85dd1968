/* Which VirtDisk functions the engine carries out (vdengine.h).  Every
 * other entry point checks its arguments and handle as Windows does and
 * then answers its decided refusal (not_implemented.c).  Keep this
 * list equal to what the engine does: tests/test_engine_api_c.py calls every
 * function and compares. */
#include "vdengine.h"

#include <string.h>

static const char *const vd_implemented[] = {
    "OpenVirtualDisk",
    "CreateVirtualDisk",
    "GetVirtualDiskInformation",
    "SetVirtualDiskInformation",
    "EnumerateVirtualDiskMetadata",
    "GetVirtualDiskMetadata",
    "SetVirtualDiskMetadata",
    "DeleteVirtualDiskMetadata",
    "GetVirtualDiskOperationProgress",
    "ExpandVirtualDisk",          /* VHD and VHDX, fixed and dynamic (resize.c) */
    "ResizeVirtualDisk",
    "AttachVirtualDisk",          /* loop devices: on the image file (attach_host.c) or on a
                                   * FUSE export of it (attach_export.c) */
    "DetachVirtualDisk",
    "GetVirtualDiskPhysicalPath",
    "GetAllAttachedVirtualDiskPhysicalPaths",
    "GetStorageDependencyInformation",   /* image and device handles (storage_dependency.c) */
    "RawSCSIVirtualDisk",
    "AddVirtualDiskParent",       /* the handle's chain only (add_parent.c) */
    "CompactVirtualDisk",         /* dynamic and differencing VHD and VHDX (vhd_compact.c, vhdx_compact.c) */
    "MergeVirtualDisk",           /* V1 and V2, VHD and VHDX chains (merge.c, disk/merge_copy.c) */
    "MirrorVirtualDisk",          /* V2 handles, VHD and VHDX (mirror.c, disk/mirror_copy.c) */
    "BreakMirrorVirtualDisk",
};

int vd_engine_implements(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < sizeof vd_implemented / sizeof vd_implemented[0]; i++) {
        if (strcmp(vd_implemented[i], name) == 0)
            return 1;
    }
    return 0;
}
