/* The image a mirror copies into (MirrorVirtualDisk, api/mirror.c): made
 * for it, or an existing one checked for it, opened read-write as a
 * vd_image the mirror then owns. */
#ifndef VDENGINE_MIRROR_TARGET_H
#define VDENGINE_MIRROR_TARGET_H

#include <stdint.h>

#include "disk/image.h"

/* Creates `path` (UTF-8) exclusively as a new image like `source`: the
 * same format and sizes (virtual, block, logical and physical sector),
 * fixed for a fixed source and dynamic otherwise (a differencing source's
 * content is copied flattened), with the source's virtual disk id.
 * FILE_EXISTS when the path exists; on any failure nothing is left. */
uint32_t vd_mirror_target_create(const vd_image *source, const char *path, vd_image *target);

/* Opens the existing image at `path` read-write and checks that it can
 * take the source's content: VHD_INVALID_TYPE when it is not an image of
 * the source's format or is a differencing image, VHD_INVALID_SIZE when
 * its virtual size or logical sector size differs; the open's code (2,
 * 32, ...) when it cannot be opened. */
uint32_t vd_mirror_target_open(const vd_image *source, const char *path, vd_image *target);

#endif
