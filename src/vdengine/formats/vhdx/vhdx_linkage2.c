/* parent_linkage2 in a child's parent locator ([MS-VHDX] 2.6.2.6.3): the
 * second DataWriteGuid a parent may have and still match the child.  A
 * merge records there the DataWriteGuid its target is about to take, so
 * that the child still opens on the target while the merge is unfinished
 * (and the merge can run again after an interruption); vhdx_merge.c has
 * the order.
 *
 * The locator is written again from its own entries: the keys and values
 * it holds (paths, parent_linkage, any key this engine does not know) are
 * copied as they are, an old parent_linkage2 is left out, and the new one
 * comes last.  The item goes through vd_vhdx_metadata_put, one logged
 * transaction, so a crash leaves the old locator or the new one. */
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log_write.h"
#include "formats/vhdx/vhdx_metadata.h"

static const uint8_t vd_vhdx_guid_locator_item[16] = VD_VHDX_GUID_PARENT_LOCATOR;
static const char vd_vhdx_linkage2_key[] = "parent_linkage2";

typedef struct vd_vhdx_span {
    uint32_t offset;
    uint32_t length;
} vd_vhdx_span;

static int vd_vhdx_span_inside(vd_vhdx_span span, uint32_t length)
{
    return span.offset <= length && span.length <= length - span.offset && span.length % 2 == 0;
}

static int vd_vhdx_is_linkage2(const uint8_t *item, vd_vhdx_span key)
{
    const size_t units = sizeof vd_vhdx_linkage2_key - 1;
    if (key.length != 2 * units)
        return 0;
    for (size_t i = 0; i < units; i++) {
        if (vd_load_le16(item + key.offset + 2 * i) != (uint8_t)vd_vhdx_linkage2_key[i])
            return 0;
    }
    return 1;
}

/* Appends `length` bytes at *end of `out`, returning where they went. */
static uint32_t vd_vhdx_put_bytes(uint8_t *out, uint32_t *end, const void *bytes, uint32_t length)
{
    uint32_t at = *end;
    memcpy(out + at, bytes, length);
    *end += length;
    return at;
}

static void vd_vhdx_put_entry(uint8_t *entry, uint32_t key_at, uint32_t key_length,
                              uint32_t value_at, uint32_t value_length)
{
    vd_store_le32(entry + VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET, key_at);
    vd_store_le32(entry + VD_VHDX_LOCATOR_VALUE_OFFSET_OFFSET, value_at);
    vd_store_le16(entry + VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET, (uint16_t)key_length);
    vd_store_le16(entry + VD_VHDX_LOCATOR_VALUE_LENGTH_OFFSET, (uint16_t)value_length);
}

/* The new locator from `item` (checked as it is copied). */
static uint32_t vd_vhdx_locator_with_linkage2(const uint8_t *item, uint32_t length,
                                              const vd_guid *linkage2, uint8_t **bytes,
                                              uint32_t *new_length)
{
    if (length < VD_VHDX_LOCATOR_HEADER_SIZE)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator is shorter than its header");
    uint32_t count = vd_load_le16(item + VD_VHDX_LOCATOR_COUNT_OFFSET);
    if ((uint64_t)VD_VHDX_LOCATOR_HEADER_SIZE + (uint64_t)count * VD_VHDX_LOCATOR_ENTRY_SIZE > length)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator's entries do not fit it");
    /* 15 key units and 38 value units ("{...}") for the new pair. */
    uint64_t room = (uint64_t)length + VD_VHDX_LOCATOR_ENTRY_SIZE + 2 * (15 + 38);
    uint8_t *out = calloc(1, (size_t)room);
    if (out == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(out, item, VD_VHDX_LOCATOR_HEADER_SIZE);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = item + VD_VHDX_LOCATOR_HEADER_SIZE + i * VD_VHDX_LOCATOR_ENTRY_SIZE;
        vd_vhdx_span key = { vd_load_le32(entry + VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET),
                             vd_load_le16(entry + VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET) };
        if (!vd_vhdx_span_inside(key, length)) {
            free(out);
            return vd_fail(VD_ERROR_FILE_CORRUPT, "parent locator entry %u lies outside it", i);
        }
        if (!vd_vhdx_is_linkage2(item, key))
            kept++;
    }
    uint32_t total = kept + (linkage2 != NULL ? 1u : 0u);
    uint32_t end = VD_VHDX_LOCATOR_HEADER_SIZE + total * VD_VHDX_LOCATOR_ENTRY_SIZE;
    uint32_t slot = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = item + VD_VHDX_LOCATOR_HEADER_SIZE + i * VD_VHDX_LOCATOR_ENTRY_SIZE;
        vd_vhdx_span key = { vd_load_le32(entry + VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET),
                             vd_load_le16(entry + VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET) };
        vd_vhdx_span value = { vd_load_le32(entry + VD_VHDX_LOCATOR_VALUE_OFFSET_OFFSET),
                               vd_load_le16(entry + VD_VHDX_LOCATOR_VALUE_LENGTH_OFFSET) };
        if (vd_vhdx_is_linkage2(item, key))
            continue;
        if (!vd_vhdx_span_inside(value, length)) {
            free(out);
            return vd_fail(VD_ERROR_FILE_CORRUPT, "parent locator entry %u lies outside it", i);
        }
        uint32_t key_at = vd_vhdx_put_bytes(out, &end, item + key.offset, key.length);
        uint32_t value_at = vd_vhdx_put_bytes(out, &end, item + value.offset, value.length);
        vd_vhdx_put_entry(out + VD_VHDX_LOCATOR_HEADER_SIZE + slot++ * VD_VHDX_LOCATOR_ENTRY_SIZE,
                          key_at, key.length, value_at, value.length);
    }
    if (linkage2 != NULL) {
        uint8_t key[2 * 15], value[2 * 38];
        char text[39];
        vd_vhdx_guid_text(linkage2, text);
        for (size_t i = 0; i < 15; i++)
            vd_store_le16(key + 2 * i, (uint8_t)vd_vhdx_linkage2_key[i]);
        for (size_t i = 0; i < 38; i++)
            vd_store_le16(value + 2 * i, (uint8_t)text[i]);
        uint32_t key_at = vd_vhdx_put_bytes(out, &end, key, sizeof key);
        uint32_t value_at = vd_vhdx_put_bytes(out, &end, value, sizeof value);
        vd_vhdx_put_entry(out + VD_VHDX_LOCATOR_HEADER_SIZE + slot * VD_VHDX_LOCATOR_ENTRY_SIZE,
                          key_at, sizeof key, value_at, sizeof value);
    }
    vd_store_le16(out + VD_VHDX_LOCATOR_COUNT_OFFSET, (uint16_t)total);
    *bytes = out;
    *new_length = end;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_set_parent_linkage2(vd_image *image, const vd_guid *linkage2)
{
    vd_vhdx_state *state = image->format_state;
    if (!state->differencing)
        return VD_ERROR_VHD_INVALID_TYPE;
    pthread_mutex_lock(&state->allocation_lock);
    uint32_t status = vd_vhdx_update_blocked(image);
    vd_vhdx_metadata table;
    int loaded = 0;
    if (status == VD_ERROR_SUCCESS) {
        status = vd_vhdx_metadata_load(image, &table);
        loaded = status == VD_ERROR_SUCCESS;
    }
    size_t index = loaded ? vd_vhdx_metadata_find(&table, vd_vhdx_guid_locator_item, 0) : SIZE_MAX;
    if (status == VD_ERROR_SUCCESS && index == SIZE_MAX)
        status = vd_fail(VD_ERROR_FILE_CORRUPT, "the differencing image has no parent locator");
    uint8_t *item = NULL, *locator = NULL;
    uint32_t length = 0, locator_length = 0;
    if (status == VD_ERROR_SUCCESS) {
        length = vd_vhdx_metadata_entry_length(&table, index);
        item = malloc(length > 0 ? length : 1);
        status = item != NULL ? vd_vhdx_metadata_read_item(image, &table, index, item)
                              : VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    if (loaded)
        vd_vhdx_metadata_free(&table);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_locator_with_linkage2(item, length, linkage2, &locator, &locator_length);
    free(item);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_metadata_put(image, vd_vhdx_guid_locator_item, 0, VD_VHDX_METADATA_IS_REQUIRED,
                                      locator, locator_length);
    free(locator);
    if (status == VD_ERROR_SUCCESS) {
        image->has_parent_identifier2 = linkage2 != NULL;
        state->has_parent_linkage2 = linkage2 != NULL;
        if (linkage2 != NULL) {
            image->parent_identifier2 = *linkage2;
            state->parent_linkage2 = *linkage2;
        }
    }
    pthread_mutex_unlock(&state->allocation_lock);
    return status;
}
