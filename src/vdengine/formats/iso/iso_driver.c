/* The ISO driver (driver.h): iso.c opens and reads.  ISO images are
 * read-only to this API: nothing creates, changes or writes them. */
#include "base/vd_errors.h"
#include "disk/driver.h"

static int vd_iso_can_parent(uint32_t child_device)
{
    (void)child_device;
    return 0;
}

/* An ISO image is its content, sector for sector. */
static uint32_t vd_iso_direct_extent(vd_image *image, int for_writing, int *contiguous,
                                     uint64_t *offset)
{
    (void)image, (void)for_writing;
    *contiguous = 1;
    *offset = 0;
    return VD_ERROR_SUCCESS;
}

const vd_format_driver vd_iso_driver = {
    .name = "iso",
    .device = VD_DEVICE_ISO,
    .probe = vd_iso_probe,
    .open = vd_iso_open,
    .read_only = 1,
    .can_parent = vd_iso_can_parent,
    .direct_extent = vd_iso_direct_extent,
};
