/* The ISO driver (driver.h): iso.c opens and reads.  ISO images are
 * read-only to this API: nothing creates, changes or writes them. */
#include "disk/driver.h"

static int vd_iso_can_parent(uint32_t child_device)
{
    (void)child_device;
    return 0;
}

const vd_format_driver vd_iso_driver = {
    .name = "iso",
    .device = VD_DEVICE_ISO,
    .probe = vd_iso_probe,
    .open = vd_iso_open,
    .read_only = 1,
    .can_parent = vd_iso_can_parent,
};
