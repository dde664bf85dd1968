/* The VHD driver (driver.h): vhd.c opens and reads, vhd_create.c creates,
 * vhd_update.c changes, vhd_resize.c grows,
 * vhd_compact.c compacts. */
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"

/* A VHD can be the parent of a VHD or a VHDX differencing image. */
static int vd_vhd_can_parent(uint32_t child_device)
{
    return child_device == VD_DEVICE_VHD || child_device == VD_DEVICE_VHDX;
}

/* A fixed VHD is its content followed by the footer; dynamic and
 * differencing ones scatter blocks behind a table. */
static uint32_t vd_vhd_direct_extent(vd_image *image, int for_writing, int *contiguous,
                                     uint64_t *offset)
{
    (void)for_writing;
    *contiguous = image->subtype == VD_SUBTYPE_FIXED;
    *offset = 0;
    return VD_ERROR_SUCCESS;
}

const vd_format_driver vd_vhd_driver = {
    .name = "vhd",
    .device = VD_DEVICE_VHD,
    .probe = vd_vhd_probe,
    .open = vd_vhd_open,
    .create = vd_vhd_create,
    .update = &vd_vhd_update_ops,
    .can_parent = vd_vhd_can_parent,
    .direct_extent = vd_vhd_direct_extent,
    .resize = vd_vhd_resize,
    .merge = vd_vhd_merge,
    .can_shrink = 0,
    .max_virtual_size = VD_VHD_MAX_SIZE,
    .compact = vd_vhd_compact,
    .compacts_fixed = 0,
};
