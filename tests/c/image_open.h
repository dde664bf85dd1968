/* Opening an image by path for the C test harnesses: the host file, then
 * the format's parser, which takes the file over on success. */
#ifndef VD_TEST_IMAGE_OPEN_H
#define VD_TEST_IMAGE_OPEN_H

#include <string.h>

#include "disk/image.h"
#include "base/vd_errors.h"

typedef uint32_t (*image_parser)(vd_file *file, vd_image *image);

static uint32_t open_image_with(image_parser parse, const char *path, int writable,
                                vd_image *image)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, writable);
    if (status != VD_ERROR_SUCCESS)
        return status;
    memset(image, 0, sizeof *image);
    status = parse(&file, image);
    if (status != VD_ERROR_SUCCESS)
        vd_file_close(&file);
    return status;
}

#endif
