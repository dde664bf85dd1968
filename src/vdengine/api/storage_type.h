/* Which format parser opens a file: the VIRTUAL_STORAGE_TYPE the caller
 * gave, the path's extension, and the file's own signature. */
#ifndef VDENGINE_STORAGE_TYPE_H
#define VDENGINE_STORAGE_TYPE_H

#include <stdint.h>

#include "virtdisk_api.h"
#include "disk/image.h"

/* The device a VIRTUAL_STORAGE_TYPE asks for, before the file is looked at:
 * VIRTUAL_STORAGE_TYPE_DEVICE_ISO, _VHD or _VHDX, or
 * VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN when the caller leaves the choice to
 * the engine (both ids unknown, or the Microsoft vendor with an unknown
 * device), in which case the extension of `path` (UTF-8) decides if it is
 * one Windows knows.  VIRTDISK_PROVIDER_NOT_FOUND when no provider here
 * serves the request (see storage_type.c). */
uint32_t vd_storage_type_device(const VIRTUAL_STORAGE_TYPE *type, const char *path,
                                uint32_t *device);

/* Parses the open `file` into `image` as `device`; with
 * VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, or with a device that came from the
 * extension (`device_from_extension`) while the signature names another
 * format, the signature decides.  Same ownership rules as the parsers: on
 * success the file is moved into the image. */
uint32_t vd_storage_open_image(vd_file *file, uint32_t device, int device_from_extension,
                               vd_image *image);

#endif
