/* Changing an opened VHDX image: the update ops of image_update.h.
 *
 *   set_identifier           the header's DataWriteGuid, by a header update
 *                            alone (2.2.2: the non-current slot, sequence
 *                            number + 1, flushed), so a crash leaves the old
 *                            header or the new one.
 *   set_virtual_disk_id      the Page 83 item, in place, through the log.
 *   set_physical_sector_size the Physical Sector Size item, the same way.
 *   set_parent               a new parent locator item (parent_linkage,
 *                            relative_path, absolute_win32_path, built as
 *                            vhdx_create.c builds it) in free space of the
 *                            metadata region, and the table entry naming it,
 *                            in one logged transaction.  parent_linkage2 and
 *                            volume_path are not carried over: they named the
 *                            old parent.
 *   metadata_*               user items: table entries with IsUser set
 *                            (vhdx_metadata.h has the rules).
 *
 * Every change goes through vhdx_metadata.c and vhdx_log_write.c, which
 * write only the 4 KiB sectors that change.  A change that alters nothing
 * writes nothing.  After success the vd_image fields that describe the
 * changed structures are updated, so GetVirtualDiskInformation answers the
 * new values at once; after a failure they keep the old ones.
 *
 * Codes: ACCESS_DENIED on an image opened read-only; VHD_METADATA_FULL when
 * the metadata table (2047 entries, 1024 of them user items) or region has
 * no room, or a user item is longer than the 1 MiB an item may hold;
 * NOT_FOUND for a user item that does not exist; INSUFFICIENT_BUFFER as
 * image_update.h says; FILE_CORRUPT for a damaged metadata table; the
 * host's code when a write fails. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "disk/image_update.h"
#include "disk/parent_paths.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_metadata.h"

static const uint8_t vd_vhdx_guid_page83[16] = VD_VHDX_GUID_PAGE83_DATA;
static const uint8_t vd_vhdx_guid_physical[16] = VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE;
static const uint8_t vd_vhdx_guid_locator[16] = VD_VHDX_GUID_PARENT_LOCATOR;

static uint32_t vd_vhdx_set_identifier(vd_image *image, const vd_guid *identifier)
{
    vd_vhdx_state *state = image->format_state;
    uint32_t status = vd_vhdx_update_blocked(image);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (memcmp(image->identifier.bytes, identifier->bytes, 16) == 0)
        return VD_ERROR_SUCCESS;
    uint8_t log_guid[16];
    memcpy(log_guid, state->header + VD_VHDX_HEADER_LOG_GUID_OFFSET, 16);
    status = vd_vhdx_header_update(image, identifier->bytes, log_guid);
    if (status == VD_ERROR_SUCCESS)
        image->identifier = *identifier;
    return status;
}

static uint32_t vd_vhdx_set_virtual_disk_id(vd_image *image, const vd_guid *virtual_disk_id)
{
    uint32_t status = vd_vhdx_metadata_overwrite(image, vd_vhdx_guid_page83, virtual_disk_id->bytes,
                                                 VD_VHDX_PAGE83_SIZE);
    if (status == VD_ERROR_SUCCESS)
        image->virtual_disk_id = *virtual_disk_id;
    return status;
}

static uint32_t vd_vhdx_set_physical_sector_size(vd_image *image, uint32_t bytes)
{
    if (bytes != 512 && bytes != 4096)
        return VD_ERROR_INVALID_PARAMETER;
    uint8_t value[VD_VHDX_SECTOR_SIZE_SIZE];
    vd_store_le32(value, bytes);
    uint32_t status = vd_vhdx_metadata_overwrite(image, vd_vhdx_guid_physical, value, sizeof value);
    if (status == VD_ERROR_SUCCESS)
        image->physical_sector_size = bytes;
    return status;
}

static char *vd_vhdx_copy_text(const char *text, int *failed)
{
    if (text == NULL || text[0] == '\0')
        return NULL;
    char *copy = strdup(text);
    *failed |= copy == NULL;
    return copy;
}

static uint32_t vd_vhdx_set_parent(vd_image *image, const vd_parent_link *link)
{
    vd_vhdx_state *state = image->format_state;
    if (!state->differencing)
        return VD_ERROR_VHD_INVALID_TYPE;
    uint8_t *locator = NULL;
    uint32_t locator_length = 0;
    uint32_t status = vd_vhdx_locator_build(&link->linkage, link->relative_path, link->absolute_path,
                                            &locator, &locator_length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* The strings the image will report, as a fresh open would read them
     * back, made before anything is written so that no allocation can fail
     * after the change is on disk. */
    int failed = 0;
    char *relative = vd_windows_relative_path(link->relative_path);
    failed |= link->relative_path != NULL && link->relative_path[0] != '\0' && relative == NULL;
    char *absolute = vd_vhdx_copy_text(link->absolute_path, &failed);
    status = failed ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_metadata_put(image, vd_vhdx_guid_locator, 0, VD_VHDX_METADATA_IS_REQUIRED, locator,
                                      locator_length);
    free(locator);
    if (status != VD_ERROR_SUCCESS) {
        free(relative);
        free(absolute);
        return status;
    }
    image->parent_identifier = link->linkage;
    image->has_parent_identifier2 = 0;
    state->has_parent_linkage2 = 0;
    free(image->parent.relative_path);
    free(image->parent.absolute_path);
    free(image->parent.volume_path);
    image->parent.relative_path = relative;
    image->parent.absolute_path = absolute;
    image->parent.volume_path = NULL;
    return VD_ERROR_SUCCESS;
}

/* ---- user items ------------------------------------------------------------ */

static uint32_t vd_vhdx_metadata_list(vd_image *image, vd_guid *items, uint32_t *count)
{
    vd_vhdx_metadata table;
    uint32_t status = vd_vhdx_metadata_load(image, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint32_t room = *count, held = 0;
    for (size_t i = 0; i < table.count; i++) {
        if (!vd_vhdx_metadata_entry_is_user(&table, i))
            continue;
        if (held < room && items != NULL)
            memcpy(items[held].bytes, table.entries[i], 16);
        held++;
    }
    vd_vhdx_metadata_free(&table);
    *count = held;
    return held > room ? VD_ERROR_INSUFFICIENT_BUFFER : VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_metadata_get(vd_image *image, const vd_guid *item, void *buffer, uint32_t *size)
{
    vd_vhdx_metadata table;
    uint32_t status = vd_vhdx_metadata_load(image, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    size_t index = vd_vhdx_metadata_find(&table, item->bytes, 1);
    if (index == SIZE_MAX) {
        status = VD_ERROR_NOT_FOUND;
    } else {
        uint32_t length = vd_vhdx_metadata_entry_length(&table, index);
        if (length > *size || (length > 0 && buffer == NULL))
            status = VD_ERROR_INSUFFICIENT_BUFFER;
        else
            status = vd_vhdx_metadata_read_item(image, &table, index, buffer);
        *size = length;
    }
    vd_vhdx_metadata_free(&table);
    return status;
}

static uint32_t vd_vhdx_metadata_set(vd_image *image, const vd_guid *item, const void *data, uint32_t size)
{
    return vd_vhdx_metadata_put(image, item->bytes, 1, 0, data, size);
}

static uint32_t vd_vhdx_metadata_delete(vd_image *image, const vd_guid *item)
{
    return vd_vhdx_metadata_remove(image, item->bytes, 1);
}

const vd_update_ops vd_vhdx_update_ops = {
    vd_vhdx_set_identifier,
    vd_vhdx_set_virtual_disk_id,
    vd_vhdx_set_physical_sector_size,
    vd_vhdx_set_parent,
    vd_vhdx_metadata_list,
    vd_vhdx_metadata_get,
    vd_vhdx_metadata_set,
    vd_vhdx_metadata_delete,
};
