/* The VHDX driver (driver.h): vhdx.c opens and reads, vhdx_create.c
 * creates, vhdx_update.c and vhdx_metadata.c change (serialised with
 * content writes by vhdx_update_serial.c), vhdx_resize.c resizes. */
#include "disk/driver.h"
#include "formats/vhdx/vhdx_internal.h"

/* A VHDX can be the parent of a VHDX differencing image only: a VHD child
 * has no way to name it. */
static int vd_vhdx_can_parent(uint32_t child_device)
{
    return child_device == VD_DEVICE_VHDX;
}

const vd_format_driver vd_vhdx_driver = {
    .name = "vhdx",
    .device = VD_DEVICE_VHDX,
    .probe = vd_vhdx_probe,
    .open = vd_vhdx_open,
    .reopen = vd_vhdx_reopen,
    .create = vd_vhdx_create,
    .update = &vd_vhdx_serial_update_ops,
    .can_parent = vd_vhdx_can_parent,
    .direct_extent = vd_vhdx_direct_extent,
    .resize = vd_vhdx_resize,
    .merge = vd_vhdx_merge,
    .can_shrink = 1,
    .max_virtual_size = VD_VHDX_MAX_VIRTUAL_SIZE,
    .resizes_children = 1,
    .compact = vd_vhdx_compact,
    .compacts_fixed = 1,
};
