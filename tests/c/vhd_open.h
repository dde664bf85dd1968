/* Opening a VHD by path for the C test harnesses: the host file, then the
 * parser, which takes the file over on success. */
#ifndef VD_TEST_VHD_OPEN_H
#define VD_TEST_VHD_OPEN_H

#include "image.h"
#include "vd_errors.h"

static uint32_t open_vhd(const char *path, int writable, vd_image *image)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, writable);
    if (status != VD_ERROR_SUCCESS)
        return status;
    status = vd_vhd_open(&file, image);
    if (status != VD_ERROR_SUCCESS)
        vd_file_close(&file);
    return status;
}

#endif
