/* The mirror's target image (mirror_target.h).
 *
 * A new target is created as CreateVirtualDisk creates an image
 * (create.h): exclusively, written through the one descriptor that holds
 * the writer's lock from the start, and removed if anything fails.  The
 * virtual disk id (VHDX Page 83, the VHD footer UniqueId) is the source's:
 * once the mirror is broken the disk goes on as the same disk, with the
 * identity its guest and its children know; a VHDX target still gets a
 * DataWriteGuid of its own, as every new file does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* fstat under -std=c11 */
#endif

#include "api/mirror_target.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"

static uint32_t vd_mirror_target_parse(const vd_format_driver *driver, vd_file *file,
                                       vd_image *target)
{
    struct stat info;
    if (fstat(file->fd, &info) != 0)
        return vd_error_from_errno(errno);
    file->size = (uint64_t)info.st_size;
    memset(target, 0, sizeof *target);
    return driver->open(file, target);
}

static void vd_mirror_target_spec(const vd_image *source, vd_create_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->device = source->device;
    spec->subtype = source->subtype == VD_SUBTYPE_FIXED ? VD_SUBTYPE_FIXED : VD_SUBTYPE_DYNAMIC;
    spec->virtual_size = source->virtual_size;
    spec->block_size = spec->subtype == VD_SUBTYPE_FIXED ? 0 : source->block_size;
    spec->logical_sector_size = source->logical_sector_size;
    spec->physical_sector_size = source->physical_sector_size;
    spec->unique_id = source->virtual_disk_id;
    spec->full_allocation = spec->subtype == VD_SUBTYPE_FIXED;
}

uint32_t vd_mirror_target_create(const vd_image *source, const char *path, vd_image *target)
{
    const vd_format_driver *driver = vd_image_driver(source);
    if (driver == NULL || driver->create == NULL || driver->read_only)
        return VD_ERROR_NOT_SUPPORTED;
    vd_create_spec spec;
    vd_mirror_target_spec(source, &spec);
    vd_file file;
    uint32_t status = vd_file_create(&file, path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    status = driver->create(&file, &spec);
    if (status == VD_ERROR_SUCCESS)
        status = vd_mirror_target_parse(driver, &file, target);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(&file);
        unlink(path);
    }
    return status;
}

static uint32_t vd_mirror_target_check(const vd_image *source, const vd_image *target)
{
    if (target->has_parent || target->subtype == VD_SUBTYPE_DIFFERENCING)
        return vd_fail(VD_ERROR_VHD_INVALID_TYPE,
                       "the mirror file is a differencing image; a mirror holds the whole content");
    if (target->virtual_size != source->virtual_size
        || target->logical_sector_size != source->logical_sector_size)
        return vd_fail(VD_ERROR_VHD_INVALID_SIZE,
                       "the mirror file holds %llu bytes in %u-byte sectors; the disk %llu in "
                       "%u-byte sectors",
                       (unsigned long long)target->virtual_size, target->logical_sector_size,
                       (unsigned long long)source->virtual_size, source->logical_sector_size);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_mirror_target_open(const vd_image *source, const char *path, vd_image *target)
{
    const vd_format_driver *driver = vd_image_driver(source);
    if (driver == NULL || driver->read_only)
        return VD_ERROR_NOT_SUPPORTED;
    vd_file file;
    uint32_t status = vd_file_open(&file, path, 1);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!driver->probe(&file)) {
        vd_file_close(&file);
        return vd_fail(VD_ERROR_VHD_INVALID_TYPE, "the mirror file is no %s image", driver->name);
    }
    status = vd_mirror_target_parse(driver, &file, target);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(&file);
        return status;
    }
    status = vd_mirror_target_check(source, target);
    if (status != VD_ERROR_SUCCESS)
        vd_image_release(target);
    return status;
}
