/* The VHD driver (driver.h): vhd.c opens and reads, vhd_create.c creates,
 * vhd_update.c changes. */
#include "disk/driver.h"

/* A VHD can be the parent of a VHD or a VHDX differencing image. */
static int vd_vhd_can_parent(uint32_t child_device)
{
    return child_device == VD_DEVICE_VHD || child_device == VD_DEVICE_VHDX;
}

const vd_format_driver vd_vhd_driver = {
    .name = "vhd",
    .device = VD_DEVICE_VHD,
    .probe = vd_vhd_probe,
    .open = vd_vhd_open,
    .create = vd_vhd_create,
    .update = &vd_vhd_update_ops,
    .can_parent = vd_vhd_can_parent,
};
