/* Changing an opened VHD (image_update.h): the footer's UniqueId, which
 * answers both IDENTIFIER and VIRTUAL_DISK_ID, and a differencing disk's
 * parent.  VHD stores no physical sector size and no metadata items, so
 * those ops are NULL and the API layer answers VHD_INVALID_TYPE.
 *
 * VHD has no log.  Every change is ordered so that each write, and each
 * prefix of the writes, leaves a file that opens with the old value or the
 * new one; a torn multi-sector write leaves a checksum the open rejects.
 * Each first commits the BAT entries content writes left waiting
 * (vhd_commit.c), so that the structures it moves past or rewrites are the
 * ones the file holds.
 *
 * UniqueId.  Open trusts the footer at the end of the file and uses the
 * copy at offset 0 (dynamic and differencing disks) only when the end one
 * is damaged (vhd.c).  So the end footer is rewritten first: that one
 * sector switches the disk to the new id.  The copy follows; until it is
 * written the two differ, which open resolves to the end footer's (new)
 * value, and should the end write tear, the intact copy still gives the
 * old one.  When open trusts the copy (the end footer is damaged) only the
 * copy is rewritten: the bytes at the end may not be a footer at all (a
 * block whose append was cut short), and are left as they are.  A child
 * that recorded the old id no longer matches: changing the identifier
 * breaks the chain, as Windows documents.
 *
 * Parent.  The new parent's locator data never overwrites data the current
 * header points to (rewritten in place, a crash would pair the old header
 * with half of the new paths).  It goes where the footer is, the place
 * where VHD writers append new blocks:
 *
 *   1. a copy of the footer past the end: the file now ends with a valid
 *      footer, and the old one becomes unused space before it;
 *   2. the locator data from the old footer's place on;
 *   3. flush: both on disk before anything points at them;
 *   4. the dynamic header (one write, checksum included) with the new
 *      ParentUniqueId, ParentTimeStamp, Parent Unicode Name and locator
 *      entries: this write switches to the new parent;
 *   5. flush.
 *
 * Until 4 the header names the old parent and its locator data, untouched.
 * The footer is placed a multiple of 4 KiB after the old one, so a block a
 * writer appends at the footer's place is aligned as it would have been;
 * the BAT and every block stay where they are.  The old locator sectors
 * stay behind as unused space (a few KiB per change). */
#define _POSIX_C_SOURCE 200809L   /* strdup */

#include "disk/image_update.h"
#include "disk/parent_paths.h"

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"

/* Step between the old footer's place and the new one (see above). */
#define VD_VHD_APPEND_ALIGNMENT 4096u

static uint64_t vd_vhd_round_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

/* Rewrites the footer open trusts, then the copy at offset 0. */
static uint32_t vd_vhd_set_unique_id(vd_image *image, const vd_guid *id)
{
    vd_file *file = &image->file;
    vd_vhd_footer footer;
    uint8_t raw[VD_VHD_FOOTER_SIZE];
    uint64_t tail_length;
    uint32_t status = vd_vhd_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_find_footer(file, &footer, raw, &tail_length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhd_footer_store_unique_id(raw, id);
    /* A 511-byte footer is rewritten as one: its checksum counts the
     * missing last byte as the zero it is. */
    if (tail_length > 0)
        status = vd_file_write(file, file->size - tail_length, raw, (size_t)tail_length);
    if (status == VD_ERROR_SUCCESS && footer.disk_type != VD_VHD_TYPE_FIXED)
        status = vd_file_write(file, 0, raw, VD_VHD_FOOTER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    if (status != VD_ERROR_SUCCESS)
        return status;
    image->identifier = *id;
    image->virtual_disk_id = *id;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhd_set_identifier(vd_image *image, const vd_guid *identifier)
{
    return vd_vhd_set_unique_id(image, identifier);
}

static uint32_t vd_vhd_set_virtual_disk_id(vd_image *image, const vd_guid *virtual_disk_id)
{
    return vd_vhd_set_unique_id(image, virtual_disk_id);
}

uint32_t vd_vhd_read_header(const vd_file *file, uint64_t offset,
                                   uint8_t header[VD_VHD_HEADER_SIZE])
{
    uint32_t status = vd_file_read(file, offset, header, VD_VHD_HEADER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (memcmp(header, VD_VHD_HEADER_COOKIE, VD_VHD_COOKIE_SIZE) != 0)
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CORRUPT, "VHD dynamic header missing (no \"cxsparse\" cookie)");
    if (vd_vhd_checksum(header, VD_VHD_HEADER_SIZE, VD_VHD_HEADER_CHECKSUM_OFFSET)
        != vd_load_be32(header + VD_VHD_HEADER_CHECKSUM_OFFSET))
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH, "VHD dynamic header checksum mismatch");
    return VD_ERROR_SUCCESS;
}

/* Everything a parent change writes, built before the first write so that
 * nothing can fail between the writes but the writes themselves. */
typedef struct vd_vhd_parent_change {
    uint8_t footer[VD_VHD_FOOTER_SIZE];
    uint64_t footer_offset;          /* where the footer moves */
    uint8_t header[VD_VHD_HEADER_SIZE];
    uint64_t header_offset;
    uint8_t *locator_data;
    uint64_t locator_offset;
    uint64_t locator_bytes;
    char *absolute_path;             /* the new vd_image strings */
    char *relative_path;
} vd_vhd_parent_change;

static void vd_vhd_parent_change_free(vd_vhd_parent_change *change)
{
    free(change->locator_data);
    free(change->absolute_path);
    free(change->relative_path);
}

static uint32_t vd_vhd_parent_change_make(const vd_image *image, const vd_parent_link *link,
                                          vd_vhd_parent_change *change)
{
    memset(change, 0, sizeof *change);
    vd_vhd_footer footer;
    uint64_t tail_length;
    uint32_t status = vd_vhd_find_footer(&image->file, &footer, change->footer, &tail_length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    change->header_offset = footer.data_offset;
    status = vd_vhd_read_header(&image->file, change->header_offset, change->header);
    if (status != VD_ERROR_SUCCESS)
        return status;

    if (link->absolute_path != NULL) {
        change->absolute_path = strdup(link->absolute_path);
        if (change->absolute_path == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    if (link->relative_path != NULL && link->relative_path[0] != '\0') {
        change->relative_path = vd_windows_relative_path(link->relative_path);
        if (change->relative_path == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
    }

    /* A damaged end footer (the copy at 0 was trusted) stays where it is,
     * unused; the new data goes after it. */
    uint64_t data_end = image->file.size - tail_length;
    change->locator_offset = vd_vhd_round_up(data_end, VD_VHD_SECTOR_SIZE);
    vd_vhd_locator locators[VD_VHD_PARENT_LOCATORS];
    status = vd_vhd_parent_locators(change->absolute_path, change->relative_path,
                                    change->locator_offset, locators, &change->locator_data,
                                    &change->locator_bytes);
    if (status != VD_ERROR_SUCCESS)
        return status;
    change->footer_offset = change->locator_offset
                            + vd_vhd_round_up(change->locator_bytes, VD_VHD_APPEND_ALIGNMENT);
    uint32_t timestamp = link->parent != NULL ? vd_vhd_parent_timestamp(link->parent) : 0;
    vd_vhd_header_store_parent(change->header, &link->linkage, timestamp,
                               change->absolute_path, locators, VD_VHD_PARENT_LOCATORS);
    vd_vhd_header_seal(change->header);
    vd_vhd_locators_free(locators, VD_VHD_PARENT_LOCATORS);
    return VD_ERROR_SUCCESS;
}

/* Steps 1-5 of the file comment. */
static uint32_t vd_vhd_parent_change_write(vd_file *file, const vd_vhd_parent_change *change)
{
    uint32_t status = vd_file_write(file, change->footer_offset, change->footer,
                                    VD_VHD_FOOTER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* The file has grown: reads and later updates see its real end. */
    file->size = change->footer_offset + VD_VHD_FOOTER_SIZE;
    if (change->locator_bytes > 0)
        status = vd_file_write(file, change->locator_offset, change->locator_data,
                               (size_t)change->locator_bytes);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(file, change->header_offset, change->header,
                               VD_VHD_HEADER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    return status;
}

static uint32_t vd_vhd_set_parent(vd_image *image, const vd_parent_link *link)
{
    if (image->subtype != VD_SUBTYPE_DIFFERENCING)
        return VD_ERROR_VHD_INVALID_TYPE;
    vd_vhd_parent_change change;
    uint32_t status = vd_vhd_parent_change_make(image, link, &change);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_parent_change_write(&image->file, &change);
    if (status == VD_ERROR_SUCCESS) {
        /* What open would now read: the strings as stored (W2ru in Windows
         * spelling), the identity, the time stamp. */
        image->parent_identifier = link->linkage;
        image->parent_timestamp = vd_load_be32(change.header + VD_VHD_HEADER_PARENT_TIME_OFFSET);
        free(image->parent.absolute_path);
        free(image->parent.relative_path);
        free(image->parent.volume_path);
        image->parent.absolute_path = change.absolute_path;
        image->parent.relative_path = change.relative_path;
        image->parent.volume_path = NULL;
        change.absolute_path = NULL;
        change.relative_path = NULL;
    }
    vd_vhd_parent_change_free(&change);
    return status;
}

const vd_update_ops vd_vhd_update_ops = {
    .set_identifier = vd_vhd_set_identifier,
    .set_virtual_disk_id = vd_vhd_set_virtual_disk_id,
    .set_physical_sector_size = NULL,
    .set_parent = vd_vhd_set_parent,
    .metadata_list = NULL,
    .metadata_get = NULL,
    .metadata_set = NULL,
    .metadata_remove = NULL,
};
