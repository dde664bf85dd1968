/* ISO images (ISO 9660 / High Sierra / UDF): recognition and direct reads.
 *
 * OpenVirtualDisk's rule for ISO files (its Remarks) is the whole parser:
 * ERROR_FILE_CORRUPT when the size is not a multiple of 2048, when the file
 * is shorter than 34,816 bytes (the 16-sector system area plus the first
 * volume descriptor), or when the descriptor at byte 32,768 carries no
 * identifier a CD-ROM (CDFS) or UDF file system would recognise.  Only that
 * descriptor is read; walking the rest of the volume is the file system's
 * business once the image is attached, not the opener's.
 *
 * Known identifiers, at the place each standard puts them:
 *   bytes 1-5:  "CD001" (ECMA-119 / ISO 9660 volume descriptor) and the
 *               volume structure descriptors ECMA-167 2/9.1 lists for a
 *               volume recognition sequence: "BEA01", "BOOT2", "CDW02",
 *               "NSR02", "NSR03", "TEA01";
 *   bytes 9-13: "CDROM" (High Sierra, the pre-ISO format Windows' CDFS
 *               still mounts; its descriptor starts with an 8-byte block
 *               number).
 * The type and version bytes are not checked: the documented rule names only
 * the identifier.
 *
 * What the image reports: device ISO, provider subtype NONE (0; the
 * subtypes Windows documents are VHD disk types), virtual size = file size,
 * 2048-byte logical and physical sectors, block size 0, and an all-zero
 * identifier, because no ISO or UDF structure holds a GUID. */
#include <stdint.h>
#include <string.h>

#include "base/detail.h"
#include "disk/image.h"
#include "base/vd_errors.h"

#define VD_ISO_SECTOR_SIZE 2048u
#define VD_ISO_DESCRIPTOR_OFFSET (16u * VD_ISO_SECTOR_SIZE)
#define VD_ISO_MINIMUM_SIZE (VD_ISO_DESCRIPTOR_OFFSET + VD_ISO_SECTOR_SIZE)   /* 34,816 */

/* Enough of the descriptor to see both identifier positions. */
#define VD_ISO_IDENTIFIER_BYTES 14u
#define VD_ISO_STANDARD_ID_OFFSET 1u
#define VD_ISO_HIGH_SIERRA_ID_OFFSET 9u
#define VD_ISO_ID_LENGTH 5u

static const char vd_iso_standard_identifiers[][VD_ISO_ID_LENGTH + 1] = {
    "CD001", "BEA01", "BOOT2", "CDW02", "NSR02", "NSR03", "TEA01",
};

static int vd_iso_identifier_known(const uint8_t descriptor[VD_ISO_IDENTIFIER_BYTES])
{
    size_t count = sizeof vd_iso_standard_identifiers / sizeof vd_iso_standard_identifiers[0];
    for (size_t i = 0; i < count; i++) {
        if (memcmp(descriptor + VD_ISO_STANDARD_ID_OFFSET, vd_iso_standard_identifiers[i],
                   VD_ISO_ID_LENGTH) == 0)
            return 1;
    }
    return memcmp(descriptor + VD_ISO_HIGH_SIERRA_ID_OFFSET, "CDROM", VD_ISO_ID_LENGTH) == 0;
}

/* Applies the three documented checks; VD_ERROR_FILE_CORRUPT for each,
 * with *fault saying which (probing records no detail, opening does). */
static uint32_t vd_iso_check(const vd_file *file, const char **fault)
{
    *fault = NULL;
    if (file->size % VD_ISO_SECTOR_SIZE != 0 || file->size < VD_ISO_MINIMUM_SIZE) {
        *fault = "the ISO file's size is not whole 2048-byte sectors, or shorter than 34,816 bytes";
        return VD_ERROR_FILE_CORRUPT;
    }
    uint8_t descriptor[VD_ISO_IDENTIFIER_BYTES];
    uint32_t status = vd_file_read(file, VD_ISO_DESCRIPTOR_OFFSET, descriptor, sizeof descriptor);
    if (status == VD_ERROR_HANDLE_EOF) {
        *fault = "the file ends inside the first volume descriptor";   /* truncated since the size was taken */
        return VD_ERROR_FILE_CORRUPT;
    }
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!vd_iso_identifier_known(descriptor)) {
        *fault = "the volume descriptor at byte 32,768 has no ISO 9660, UDF or High Sierra identifier";
        return VD_ERROR_FILE_CORRUPT;
    }
    return VD_ERROR_SUCCESS;
}

int vd_iso_probe(const vd_file *file)
{
    const char *fault;
    return file != NULL && vd_iso_check(file, &fault) == VD_ERROR_SUCCESS;
}

/* Content is the file itself, one 2048-byte sector per logical block. */
static uint32_t vd_iso_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                            uint64_t length)
{
    (void)parent;
    if (offset > image->virtual_size || length > image->virtual_size - offset
        || length > SIZE_MAX)
        return VD_ERROR_INVALID_PARAMETER;
    return vd_file_read(&image->file, offset, buffer, (size_t)length);
}

static void vd_iso_release(vd_image *image)
{
    image->format_state = NULL;   /* the file is all an ISO image holds */
}

static const vd_format_ops vd_iso_ops = {
    .read = vd_iso_read,
    .release = vd_iso_release,
};

uint32_t vd_iso_open(vd_file *file, vd_image *image)
{
    if (file == NULL || image == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    const char *fault;
    uint32_t status = vd_iso_check(file, &fault);
    if (status != VD_ERROR_SUCCESS)
        return fault != NULL ? vd_fail(status, "%s", fault) : status;

    /* Built aside, so `file` may be &image->file. */
    vd_image result;
    memset(&result, 0, sizeof result);
    result.file = *file;
    result.device = VD_DEVICE_ISO;
    result.subtype = VD_SUBTYPE_NONE;
    result.virtual_size = file->size;
    result.block_size = 0;
    result.logical_sector_size = VD_ISO_SECTOR_SIZE;
    result.physical_sector_size = VD_ISO_SECTOR_SIZE;
    result.ops = &vd_iso_ops;

    *image = result;
    if (file != &image->file) {
        file->fd = -1;
        file->path = NULL;
        file->size = 0;
    }
    return VD_ERROR_SUCCESS;
}
