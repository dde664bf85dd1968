/* Creating VHDX images ([MS-VHDX]): fixed, dynamic and differencing, empty
 * or with the content of a source disk.
 *
 * The layout is the one Windows writes:
 *
 *   0        file type identifier ("vhdxfile", creator "virtdisk")
 *   64 KiB   header 1 (sequence 1)   128 KiB  header 2 (sequence 2)
 *   192 KiB  region table 1          256 KiB  region table 2 (identical)
 *   1 MiB    log, 1 MiB, empty (LogGuid zero)
 *   2 MiB    metadata region, 1 MiB
 *   3 MiB    BAT, rounded up to whole MiB
 *   then     payload blocks, 1 MiB aligned since every block size is a
 *            multiple of 1 MiB
 *
 * Only the structures are written.  Everything else the file must read as
 * zeros (the log, the rest of the metadata region, the BAT of a dynamic or
 * differencing disk, the blocks of a fixed one) comes from extending the
 * file with ftruncate, so a create costs a few small writes whatever the
 * size; with full allocation, posix_fallocate reserves the space instead.
 * The only structure whose size grows with the disk is a fixed disk's BAT
 * (8 bytes per block), written a page at a time.
 *
 * Choices where the spec leaves room:
 *   - both headers carry the same random FileWriteGuid and DataWriteGuid and
 *     sequence numbers 1 and 2, so header 2 is current, as after Windows'
 *     own header updates (pairs like 6/7 in its files);
 *   - region entries and metadata items are marked required, as Windows
 *     marks them (qemu writes region entries not required);
 *   - a fixed disk created without a block size gets 2 MiB blocks, the size
 *     Windows gave the fixed VHDX files seen; every payload block, the
 *     partial last one included, is FULLY_PRESENT and laid out in order;
 *   - dynamic and differencing disks start with every BAT entry
 *     NOT_PRESENT (0); blocks the source holds no data in stay so;
 *   - the parent locator holds parent_linkage (the parent's DataWriteGuid
 *     as "{lowercase}" text), relative_path in Windows form
 *     (".\base.vhdx", '\' separators) and absolute_win32_path.  This host
 *     has no Win32 paths, so the absolute entry is the parent's POSIX path
 *     as it is ("/srv/base.vhdx"): chain.c accepts that rooted form, and a
 *     Windows reader finds the parent through the relative path.  No
 *     volume_path: volume GUID paths do not exist here.
 *
 * Codes:
 *   INVALID_PARAMETER (87)     the spec breaks a format rule: not a VHDX
 *       spec, an unknown subtype, a block size that is not a power of two
 *       from 1 MiB to 256 MiB, sector sizes other than 512/4096, a virtual
 *       size of 0, above 64 TiB or not a multiple of the logical sector
 *       size, a differencing spec without parent (or whose size differs
 *       from the parent's), a source larger than the new disk, a source
 *       together with a parent, parent paths that are not UTF-8;
 *   FILENAME_EXCED_RANGE (206) a parent path longer than the 32767 UTF-16
 *       units a locator value can hold;
 *   the host's code for a failed write, truncate or allocation (DISK_FULL,
 *       FILE_SYSTEM_LIMITATION for a file larger than the file system
 *       allows, ...), and the source's code for a failed read. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "api/create.h"
#include "base/endian.h"
#include "base/guid.h"
#include "disk/parent_paths.h"
#include "disk/source_copy.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"

#define VD_VHDX_CREATOR "virtdisk"
#define VD_VHDX_CREATOR_SIZE 512u

/* Header bytes before the reserved area, which stays zero (2.2.2). */
#define VD_VHDX_HEADER_USED (VD_VHDX_HEADER_LOG_OFFSET_OFFSET + 8u)

#define VD_VHDX_LOG_OFFSET       VD_VHDX_MIB
#define VD_VHDX_LOG_LENGTH       VD_VHDX_MIB
#define VD_VHDX_METADATA_OFFSET  (2 * VD_VHDX_MIB)
#define VD_VHDX_METADATA_LENGTH  VD_VHDX_MIB
#define VD_VHDX_BAT_OFFSET       (3 * VD_VHDX_MIB)

#define VD_VHDX_FIXED_DEFAULT_BLOCK_SIZE (UINT32_C(2) << 20)

/* A fixed disk's BAT is written through a buffer of this size. */
#define VD_VHDX_BAT_WRITE_PIECE ((size_t)VD_VHDX_MIB)

/* A locator value's length is a 16-bit byte count. */
#define VD_VHDX_LOCATOR_MAX_UNITS 32767u

/* Metadata item flags as Windows sets them (2.6.1.2). */
#define VD_VHDX_ITEM_REQUIRED      VD_VHDX_METADATA_IS_REQUIRED
#define VD_VHDX_ITEM_DISK_REQUIRED (VD_VHDX_METADATA_IS_VIRTUAL_DISK | VD_VHDX_METADATA_IS_REQUIRED)

typedef struct vd_vhdx_plan {
    uint64_t virtual_size;
    uint32_t block_size;
    uint32_t logical_sector_size;
    uint32_t physical_sector_size;
    uint64_t chunk_ratio;        /* payload blocks per sector bitmap block */
    uint64_t payload_blocks;
    uint64_t bat_entries;
    uint64_t bat_length;         /* bytes, whole MiB */
    uint64_t data_offset;        /* where payload blocks start */
    uint64_t file_size;          /* before any block of a source is added */
} vd_vhdx_plan;

static int vd_vhdx_block_size_valid(uint32_t block)
{
    return block >= VD_VHDX_MIN_BLOCK_SIZE && block <= VD_VHDX_MAX_BLOCK_SIZE
        && (block & (block - 1)) == 0;
}

static int vd_vhdx_sector_size_valid(uint32_t size)
{
    return size == 512 || size == 4096;
}

static uint32_t vd_vhdx_check_spec(const vd_create_spec *spec)
{
    if (spec->device != VD_DEVICE_VHDX)
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->subtype != VD_SUBTYPE_FIXED && spec->subtype != VD_SUBTYPE_DYNAMIC
        && spec->subtype != VD_SUBTYPE_DIFFERENCING)
        return VD_ERROR_INVALID_PARAMETER;
    if (!(spec->subtype == VD_SUBTYPE_FIXED && spec->block_size == 0)
        && !vd_vhdx_block_size_valid(spec->block_size))
        return VD_ERROR_INVALID_PARAMETER;
    if (!vd_vhdx_sector_size_valid(spec->logical_sector_size)
        || !vd_vhdx_sector_size_valid(spec->physical_sector_size))
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->virtual_size == 0 || spec->virtual_size > VD_VHDX_MAX_VIRTUAL_SIZE
        || spec->virtual_size % spec->logical_sector_size != 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->subtype == VD_SUBTYPE_DIFFERENCING
        && (spec->parent == NULL || spec->parent->virtual_size != spec->virtual_size
            || spec->source != NULL))
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->source != NULL
        && (spec->source->ops == NULL || spec->source->ops->read == NULL
            || spec->source->virtual_size > spec->virtual_size))
        return VD_ERROR_INVALID_PARAMETER;
    return VD_ERROR_SUCCESS;
}

static uint64_t vd_vhdx_round_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

/* 2.4, 2.5: the BAT interleaves one sector bitmap entry after every
 * chunk_ratio payload entries.  Fixed and dynamic disks need entries up to
 * the last payload block; a differencing disk needs whole chunks, its last
 * chunk's bitmap entry included. */
static void vd_vhdx_make_plan(const vd_create_spec *spec, vd_vhdx_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->virtual_size = spec->virtual_size;
    plan->block_size = spec->block_size != 0 ? spec->block_size : VD_VHDX_FIXED_DEFAULT_BLOCK_SIZE;
    plan->logical_sector_size = spec->logical_sector_size;
    plan->physical_sector_size = spec->physical_sector_size;
    plan->chunk_ratio = VD_VHDX_SECTORS_PER_CHUNK * plan->logical_sector_size / plan->block_size;
    plan->payload_blocks = (plan->virtual_size + plan->block_size - 1) / plan->block_size;
    if (spec->subtype == VD_SUBTYPE_DIFFERENCING) {
        uint64_t chunks = (plan->payload_blocks + plan->chunk_ratio - 1) / plan->chunk_ratio;
        plan->bat_entries = chunks * (plan->chunk_ratio + 1);
    } else {
        plan->bat_entries = plan->payload_blocks + (plan->payload_blocks - 1) / plan->chunk_ratio;
    }
    plan->bat_length = vd_vhdx_round_up(plan->bat_entries * VD_VHDX_BAT_ENTRY_SIZE, VD_VHDX_MIB);
    plan->data_offset = VD_VHDX_BAT_OFFSET + plan->bat_length;
    plan->file_size = plan->data_offset;
    if (spec->subtype == VD_SUBTYPE_FIXED)
        plan->file_size += plan->payload_blocks * plan->block_size;
}

static uint64_t vd_vhdx_bat_index(const vd_vhdx_plan *plan, uint64_t block)
{
    return block + block / plan->chunk_ratio;
}

static uint64_t vd_vhdx_payload_entry(uint64_t file_offset)
{
    return (file_offset / VD_VHDX_MIB) << VD_VHDX_BAT_OFFSET_SHIFT | VD_VHDX_PAYLOAD_FULLY_PRESENT;
}

/* Sizes the file: sparse, or reserved on disk.  Everything the creator
 * does not write must read as zeros, which an emptied file guarantees.  A
 * file that is empty already (the new file CreateVirtualDisk hands over)
 * is not truncated again: on ext4 a truncate to zero marks the file for a
 * flush of its delayed allocations at close (auto_da_alloc), which costs
 * more than the rest of the create. */
static uint32_t vd_vhdx_size_file(vd_file *file, uint64_t size, int reserve, int empty_first)
{
    if (size > (uint64_t)INT64_MAX)
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    if (empty_first && file->size != 0 && ftruncate(file->fd, 0) != 0)
        return vd_error_from_errno(errno);
    if (reserve) {
        int error = posix_fallocate(file->fd, 0, (off_t)size);
        if (error != 0)
            return vd_error_from_errno(error);
    } else if (ftruncate(file->fd, (off_t)size) != 0) {
        return vd_error_from_errno(errno);
    }
    file->size = size;
    return VD_ERROR_SUCCESS;
}

/* ---- header section ----------------------------------------------------- */

static uint32_t vd_vhdx_write_identifier(const vd_file *file)
{
    uint8_t identifier[VD_VHDX_SIGNATURE_SIZE + VD_VHDX_CREATOR_SIZE];
    memset(identifier, 0, sizeof identifier);
    memcpy(identifier, VD_VHDX_SIGNATURE, VD_VHDX_SIGNATURE_SIZE);
    const char *creator = VD_VHDX_CREATOR;
    size_t used = VD_VHDX_SIGNATURE_SIZE;
    for (size_t i = 0; creator[i] != '\0'; i++, used += 2)
        vd_store_le16(identifier + used, (uint8_t)creator[i]);
    return vd_file_write(file, 0, identifier, used);
}

static uint32_t vd_vhdx_write_headers(const vd_file *file)
{
    uint8_t header[VD_VHDX_HEADER_SIZE];
    memset(header, 0, sizeof header);
    memcpy(header, VD_VHDX_HEADER_SIGNATURE, 4);
    uint32_t status = vd_guid_random(header + VD_VHDX_HEADER_FILE_WRITE_GUID_OFFSET);
    if (status == VD_ERROR_SUCCESS)
        status = vd_guid_random(header + VD_VHDX_HEADER_DATA_WRITE_GUID_OFFSET);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_store_le16(header + VD_VHDX_HEADER_LOG_VERSION_OFFSET, VD_VHDX_LOG_VERSION);
    vd_store_le16(header + VD_VHDX_HEADER_VERSION_OFFSET, VD_VHDX_VERSION);
    vd_store_le32(header + VD_VHDX_HEADER_LOG_LENGTH_OFFSET, (uint32_t)VD_VHDX_LOG_LENGTH);
    vd_store_le64(header + VD_VHDX_HEADER_LOG_OFFSET_OFFSET, VD_VHDX_LOG_OFFSET);

    static const uint64_t slots[2] = { VD_VHDX_HEADER1_OFFSET, VD_VHDX_HEADER2_OFFSET };
    for (uint64_t i = 0; i < 2 && status == VD_ERROR_SUCCESS; i++) {
        vd_store_le64(header + VD_VHDX_HEADER_SEQUENCE_OFFSET, i + 1);
        vd_store_le32(header + VD_VHDX_HEADER_CHECKSUM_OFFSET, 0);
        vd_store_le32(header + VD_VHDX_HEADER_CHECKSUM_OFFSET, vd_crc32c(header, sizeof header));
        status = vd_file_write(file, slots[i], header, VD_VHDX_HEADER_USED);
    }
    return status;
}

static void vd_vhdx_region_entry(uint8_t *entry, const uint8_t guid[16], uint64_t offset,
                                 uint64_t length)
{
    memcpy(entry + VD_VHDX_REGION_ENTRY_GUID_OFFSET, guid, 16);
    vd_store_le64(entry + VD_VHDX_REGION_ENTRY_FILE_OFFSET_OFFSET, offset);
    vd_store_le32(entry + VD_VHDX_REGION_ENTRY_LENGTH_OFFSET, (uint32_t)length);
    vd_store_le32(entry + VD_VHDX_REGION_ENTRY_FLAGS_OFFSET, VD_VHDX_REGION_REQUIRED);
}

/* The checksum covers the whole 64 KiB table, so the table is built whole;
 * only its used start is written, the rest of the file reads as zeros. */
static uint32_t vd_vhdx_write_region_tables(const vd_file *file, const vd_vhdx_plan *plan)
{
    static const uint8_t bat_guid[16] = VD_VHDX_GUID_BAT_REGION;
    static const uint8_t metadata_guid[16] = VD_VHDX_GUID_METADATA_REGION;
    uint8_t *table = calloc(1, VD_VHDX_REGION_TABLE_SIZE);
    if (table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(table, VD_VHDX_REGION_SIGNATURE, 4);
    vd_store_le32(table + VD_VHDX_REGION_ENTRY_COUNT_OFFSET, 2);
    uint8_t *entry = table + VD_VHDX_REGION_HEADER_SIZE;
    vd_vhdx_region_entry(entry, bat_guid, VD_VHDX_BAT_OFFSET, plan->bat_length);
    vd_vhdx_region_entry(entry + VD_VHDX_REGION_ENTRY_SIZE, metadata_guid,
                         VD_VHDX_METADATA_OFFSET, VD_VHDX_METADATA_LENGTH);
    vd_store_le32(table + VD_VHDX_REGION_CHECKSUM_OFFSET,
                  vd_crc32c(table, VD_VHDX_REGION_TABLE_SIZE));
    size_t used = VD_VHDX_REGION_HEADER_SIZE + 2 * VD_VHDX_REGION_ENTRY_SIZE;
    uint32_t status = vd_file_write(file, VD_VHDX_REGION_TABLE1_OFFSET, table, used);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(file, VD_VHDX_REGION_TABLE2_OFFSET, table, used);
    free(table);
    return status;
}

/* ---- parent locator (2.6.2.6) ------------------------------------------- */

typedef struct vd_vhdx_locator {
    uint8_t *bytes;
    size_t length;       /* bytes used */
    size_t capacity;
    uint16_t count;      /* key/value entries written */
    uint16_t slots;      /* entries the header has room for */
} vd_vhdx_locator;

/* Appends `units` UTF-16 units from `text` (host order) as UTF-16LE and
 * returns their offset in the item. */
static size_t vd_vhdx_locator_append(vd_vhdx_locator *locator, const uint16_t *text, size_t units)
{
    size_t offset = locator->length;
    for (size_t i = 0; i < units; i++)
        vd_store_le16(locator->bytes + offset + 2 * i, text[i]);
    locator->length += 2 * units;
    return offset;
}

/* Adds key = value; both UTF-8.  An empty value adds nothing. */
static uint32_t vd_vhdx_locator_add(vd_vhdx_locator *locator, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return VD_ERROR_SUCCESS;
    uint16_t key_units[32], value_units[VD_VHDX_LOCATOR_MAX_UNITS + 1];
    size_t key_needed = vd_utf8_to_utf16(key, key_units, 32);
    size_t value_needed = vd_utf8_to_utf16(value, value_units, VD_VHDX_LOCATOR_MAX_UNITS + 1);
    if (key_needed == 0 || value_needed == 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (value_needed > VD_VHDX_LOCATOR_MAX_UNITS + 1)
        return VD_ERROR_FILENAME_EXCED_RANGE;
    size_t key_count = key_needed - 1, value_count = value_needed - 1;   /* no terminators */
    if (locator->count >= locator->slots
        || 2 * (key_count + value_count) > locator->capacity - locator->length)
        return VD_ERROR_INVALID_PARAMETER;
    size_t key_offset = vd_vhdx_locator_append(locator, key_units, key_count);
    size_t value_offset = vd_vhdx_locator_append(locator, value_units, value_count);
    uint8_t *entry = locator->bytes + VD_VHDX_LOCATOR_HEADER_SIZE
                     + (size_t)locator->count * VD_VHDX_LOCATOR_ENTRY_SIZE;
    vd_store_le32(entry + VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET, (uint32_t)key_offset);
    vd_store_le32(entry + VD_VHDX_LOCATOR_VALUE_OFFSET_OFFSET, (uint32_t)value_offset);
    vd_store_le16(entry + VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET, (uint16_t)(2 * key_count));
    vd_store_le16(entry + VD_VHDX_LOCATOR_VALUE_LENGTH_OFFSET, (uint16_t)(2 * value_count));
    locator->count++;
    return VD_ERROR_SUCCESS;
}

void vd_vhdx_guid_text(const vd_guid *guid, char text[39])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t canonical[16];
    vd_guid_to_rfc4122(guid, canonical);
    size_t at = 0;
    text[at++] = '{';
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[at++] = '-';
        uint8_t byte = canonical[i];
        text[at++] = digits[byte >> 4];
        text[at++] = digits[byte & 0x0F];
    }
    text[at++] = '}';
    text[at] = '\0';
}

uint32_t vd_vhdx_locator_build(const vd_guid *linkage, const char *relative_path,
                               const char *absolute_path, uint8_t **bytes, uint32_t *length)
{
    static const uint8_t type_guid[16] = VD_VHDX_GUID_VHDX_LOCATOR_TYPE;
    vd_vhdx_locator locator;
    memset(&locator, 0, sizeof locator);
    int has_relative = relative_path != NULL && relative_path[0] != '\0';
    int has_absolute = absolute_path != NULL && absolute_path[0] != '\0';
    locator.slots = (uint16_t)(1 + has_relative + has_absolute);
    size_t header = VD_VHDX_LOCATOR_HEADER_SIZE + (size_t)locator.slots * VD_VHDX_LOCATOR_ENTRY_SIZE;
    /* Keys are short; each value holds at most VD_VHDX_LOCATOR_MAX_UNITS. */
    locator.capacity = header + (size_t)locator.slots * 2 * (VD_VHDX_LOCATOR_MAX_UNITS + 32);
    locator.bytes = calloc(1, locator.capacity);
    if (locator.bytes == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(locator.bytes, type_guid, 16);
    locator.length = header;

    char linkage_text[39];
    vd_vhdx_guid_text(linkage, linkage_text);
    char *relative = vd_windows_relative_path(relative_path);
    uint32_t status = has_relative && relative == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_locator_add(&locator, "parent_linkage", linkage_text);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_locator_add(&locator, "relative_path", relative);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_locator_add(&locator, "absolute_win32_path", absolute_path);
    free(relative);
    if (status != VD_ERROR_SUCCESS) {
        free(locator.bytes);
        return status;
    }
    vd_store_le16(locator.bytes + VD_VHDX_LOCATOR_COUNT_OFFSET, locator.count);
    *bytes = locator.bytes;
    *length = (uint32_t)locator.length;
    return VD_ERROR_SUCCESS;
}

/* ---- metadata region (2.6) ---------------------------------------------- */

typedef struct vd_vhdx_item {
    uint8_t guid[16];
    uint32_t flags;
    const uint8_t *data;
    uint32_t length;
} vd_vhdx_item;

/* Items are packed from 64 KiB in the order Windows writes them. */
static uint32_t vd_vhdx_write_metadata(const vd_file *file, const vd_create_spec *spec,
                                       const vd_vhdx_plan *plan)
{
    uint8_t file_parameters[VD_VHDX_FILE_PARAMETERS_SIZE] = { 0 };
    uint8_t disk_size[VD_VHDX_VIRTUAL_DISK_SIZE_SIZE];
    uint8_t logical[VD_VHDX_SECTOR_SIZE_SIZE], physical[VD_VHDX_SECTOR_SIZE_SIZE];
    uint32_t flags = 0;
    if (spec->subtype == VD_SUBTYPE_FIXED)
        flags |= VD_VHDX_LEAVE_BLOCKS_ALLOCATED;
    if (spec->subtype == VD_SUBTYPE_DIFFERENCING)
        flags |= VD_VHDX_HAS_PARENT;
    vd_store_le32(file_parameters, plan->block_size);
    vd_store_le32(file_parameters + VD_VHDX_FILE_PARAMETERS_FLAGS_OFFSET, flags);
    vd_store_le64(disk_size, plan->virtual_size);
    vd_store_le32(logical, plan->logical_sector_size);
    vd_store_le32(physical, plan->physical_sector_size);

    uint8_t *locator = NULL;
    uint32_t locator_length = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    if (spec->subtype == VD_SUBTYPE_DIFFERENCING)
        status = vd_vhdx_locator_build(&spec->parent->identifier, spec->parent_relative_path,
                                       spec->parent_absolute_path, &locator, &locator_length);
    if (status != VD_ERROR_SUCCESS)
        return status;

    vd_vhdx_item items[6] = {
        { VD_VHDX_GUID_FILE_PARAMETERS, VD_VHDX_ITEM_REQUIRED, file_parameters,
          sizeof file_parameters },
        { VD_VHDX_GUID_VIRTUAL_DISK_SIZE, VD_VHDX_ITEM_DISK_REQUIRED, disk_size, sizeof disk_size },
        { VD_VHDX_GUID_LOGICAL_SECTOR_SIZE, VD_VHDX_ITEM_DISK_REQUIRED, logical, sizeof logical },
        { VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE, VD_VHDX_ITEM_DISK_REQUIRED, physical,
          sizeof physical },
        { VD_VHDX_GUID_PAGE83_DATA, VD_VHDX_ITEM_DISK_REQUIRED, spec->unique_id.bytes,
          VD_VHDX_PAGE83_SIZE },
        { VD_VHDX_GUID_PARENT_LOCATOR, VD_VHDX_ITEM_REQUIRED, locator, locator_length },
    };
    uint16_t count = locator != NULL ? 6 : 5;

    /* The table's used start, then the items packed from 64 KiB. */
    uint8_t table[VD_VHDX_METADATA_HEADER_SIZE + 6 * VD_VHDX_METADATA_ENTRY_SIZE];
    memset(table, 0, sizeof table);
    uint32_t items_length = 0;
    for (uint16_t i = 0; i < count; i++)
        items_length += items[i].length;
    uint8_t *packed = malloc(items_length);
    if (packed == NULL) {
        free(locator);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    memcpy(table, VD_VHDX_METADATA_SIGNATURE, 8);
    vd_store_le16(table + VD_VHDX_METADATA_ENTRY_COUNT_OFFSET, count);
    uint32_t item_offset = 0;
    for (uint16_t i = 0; i < count; i++) {
        uint8_t *entry = table + VD_VHDX_METADATA_HEADER_SIZE
                         + (size_t)i * VD_VHDX_METADATA_ENTRY_SIZE;
        memcpy(entry, items[i].guid, 16);
        vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET,
                      VD_VHDX_METADATA_TABLE_SIZE + item_offset);
        vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET, items[i].length);
        vd_store_le32(entry + VD_VHDX_METADATA_ENTRY_FLAGS_OFFSET, items[i].flags);
        memcpy(packed + item_offset, items[i].data, items[i].length);
        item_offset += items[i].length;
    }
    size_t table_used = VD_VHDX_METADATA_HEADER_SIZE + (size_t)count * VD_VHDX_METADATA_ENTRY_SIZE;
    status = vd_file_write(file, VD_VHDX_METADATA_OFFSET, table, table_used);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(file, VD_VHDX_METADATA_OFFSET + VD_VHDX_METADATA_TABLE_SIZE,
                               packed, items_length);
    free(packed);
    free(locator);
    return status;
}

/* ---- BAT and content ---------------------------------------------------- */

/* A fixed disk's blocks lie in order after the BAT; every payload entry
 * points at its block, every sector bitmap entry stays 0. */
static uint32_t vd_vhdx_write_fixed_bat(const vd_file *file, const vd_vhdx_plan *plan)
{
    uint8_t *page = malloc(VD_VHDX_BAT_WRITE_PIECE);
    if (page == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    const uint64_t per_page = VD_VHDX_BAT_WRITE_PIECE / VD_VHDX_BAT_ENTRY_SIZE;
    uint32_t status = VD_ERROR_SUCCESS;
    uint64_t block = 0;
    for (uint64_t first = 0; first < plan->bat_entries && status == VD_ERROR_SUCCESS;
         first += per_page) {
        uint64_t left = plan->bat_entries - first;
        uint64_t count = left < per_page ? left : per_page;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t value = 0;
            if ((first + i + 1) % (plan->chunk_ratio + 1) != 0) {
                value = vd_vhdx_payload_entry(plan->data_offset + block * plan->block_size);
                block++;
            }
            vd_store_le64(page + i * VD_VHDX_BAT_ENTRY_SIZE, value);
        }
        status = vd_file_write(file, VD_VHDX_BAT_OFFSET + first * VD_VHDX_BAT_ENTRY_SIZE, page,
                               (size_t)(count * VD_VHDX_BAT_ENTRY_SIZE));
    }
    free(page);
    return status;
}

/* Copies the source's content run by run (disk/source_copy.h).  What
 * holds no data is never written: a fixed disk's blocks already read as
 * zeros, and a dynamic disk's block is allocated (at the end of the file,
 * FULLY_PRESENT) only when its first piece of data comes, so the blocks
 * lie in the order of their content and each piece's place in the file is
 * known as it comes. */
static uint32_t vd_vhdx_copy_source(vd_file *file, const vd_create_spec *spec,
                                    const vd_vhdx_plan *plan)
{
    vd_image *source = spec->source;
    int fixed = spec->subtype == VD_SUBTYPE_FIXED;
    vd_source_copy copy;
    uint32_t status = vd_source_copy_begin(&copy, source, spec->source_disk, file->fd);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t next_free = plan->file_size;
    uint64_t source_blocks = (source->virtual_size + plan->block_size - 1) / plan->block_size;
    for (uint64_t block = 0; block < source_blocks && status == VD_ERROR_SUCCESS; block++) {
        uint64_t block_start = block * plan->block_size;
        uint64_t end = source->virtual_size - block_start < plan->block_size
                           ? source->virtual_size
                           : block_start + plan->block_size;
        uint64_t block_offset = fixed ? plan->data_offset + block_start : 0;
        for (uint64_t at = block_start; at < end && status == VD_ERROR_SUCCESS;) {
            vd_source_piece piece;
            status = vd_source_copy_next(&copy, &at, end, &piece);
            if (status != VD_ERROR_SUCCESS || piece.length == 0)
                break;
            if (block_offset == 0) {
                block_offset = next_free;
                next_free += plan->block_size;
                uint8_t entry[VD_VHDX_BAT_ENTRY_SIZE];
                vd_store_le64(entry, vd_vhdx_payload_entry(block_offset));
                uint64_t entry_offset = VD_VHDX_BAT_OFFSET
                                        + vd_vhdx_bat_index(plan, block) * VD_VHDX_BAT_ENTRY_SIZE;
                status = vd_file_write(file, entry_offset, entry, sizeof entry);
                if (status != VD_ERROR_SUCCESS)
                    break;
            }
            status = vd_source_copy_put(&copy, &piece, block_offset + (piece.offset - block_start));
        }
    }
    vd_source_copy_end(&copy);
    /* A block whose last pieces were zeros ends before its end: the file
     * must still hold every allocated block whole. */
    if (status == VD_ERROR_SUCCESS && next_free > file->size)
        status = vd_vhdx_size_file(file, next_free, 0, 0);
    return status;
}

uint32_t vd_vhdx_create(vd_file *file, const vd_create_spec *spec)
{
    if (file == NULL || spec == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    uint32_t status = vd_vhdx_check_spec(spec);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhdx_plan plan;
    vd_vhdx_make_plan(spec, &plan);

    status = vd_vhdx_size_file(file, plan.file_size,
                               spec->subtype == VD_SUBTYPE_FIXED && spec->full_allocation, 1);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_write_identifier(file);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_write_region_tables(file, &plan);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_write_metadata(file, spec, &plan);
    if (status == VD_ERROR_SUCCESS && spec->subtype == VD_SUBTYPE_FIXED)
        status = vd_vhdx_write_fixed_bat(file, &plan);
    if (status == VD_ERROR_SUCCESS && spec->source != NULL)
        status = vd_vhdx_copy_source(file, spec, &plan);
    /* The headers last: until they are written the file is no VHDX. */
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_write_headers(file);
    return status;
}
