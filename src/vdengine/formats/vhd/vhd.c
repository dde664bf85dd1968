/* VHD images (fixed, dynamic, differencing): recognition, open, reads.
 *
 * Opening reads only what an information answer needs: the footer at the
 * end of the file, and for dynamic and differencing disks the dynamic
 * header and, for differencing disks, the parent locator paths.  The block
 * allocation table is read by the first data read (or layout query), so
 * open + size query + close costs two small reads.
 *
 * Which damage gives which code (the codes Windows documents for VHD):
 *
 *   file shorter than a footer (512 bytes)    VHD_INVALID_FILE_SIZE
 *   no "conectix" at the end nor at offset 0  VHD_DRIVE_FOOTER_MISSING
 *   footer checksum wrong                     VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH
 *   feature bits beyond temporary|reserved    VHD_DRIVE_FOOTER_CORRUPT
 *   dynamic header offset below 512 or with  VHD_DRIVE_FOOTER_CORRUPT
 *     no room for the header in the file        (the footer points nowhere)
 *   footer version not 1.0                    VHD_FORMAT_UNSUPPORTED_VERSION
 *   disk type not fixed/dynamic/differencing  VHD_FORMAT_UNKNOWN
 *   Current Size 0, not a multiple of 512,    VHD_INVALID_SIZE
 *     or above 2040 GiB
 *   fixed disk file shorter than size+footer  VHD_INVALID_FILE_SIZE
 *   no "cxsparse" cookie                      VHD_SPARSE_HEADER_CORRUPT
 *   dynamic header checksum wrong             VHD_SPARSE_HEADER_CHECKSUM_MISMATCH
 *   dynamic header version not 1.0            VHD_SPARSE_HEADER_UNSUPPORTED_VERSION
 *   block size not a power of two in          VHD_INVALID_BLOCK_SIZE
 *     512 B .. 256 MiB
 *   Max Table Entries too few for the size    VHD_SPARSE_HEADER_CORRUPT
 *   parent locator data outside the file      VHD_SPARSE_HEADER_CORRUPT
 *   BAT extends past the end of the file      VHD_BLOCK_ALLOCATION_TABLE_CORRUPT
 *   (read) a block that lies past the end     VHD_BLOCK_ALLOCATION_TABLE_CORRUPT
 *
 * Checks run in this order, so a file with several kinds of damage reports
 * the first.  The order follows the footer's layout: recognise (cookie),
 * trust (checksum), understand (features, version, type), then use (size,
 * offsets).
 *
 * Recovery: dynamic and differencing disks keep a copy of the footer at
 * offset 0 (the spec names it as the copy to use when the footer is
 * damaged, and Windows-compatible readers do so).  When the footer at the
 * end fails any footer check and the copy at 0 passes them all, the copy is
 * used; its disk type must then be dynamic or differencing, because a fixed
 * disk has no copy and anything at its offset 0 is guest data.  When both
 * fail, the code is the end footer's, unless the end has no footer at all
 * and offset 0 has a damaged one, whose code is more telling.  When both
 * are valid they are not compared: the end footer is the one writers update.
 *
 * Footer fields not used: the CHS geometry (the size is Current Size, as
 * Windows reads it), Original Size, timestamps, creator fields.  The fixed
 * disk's data offset is not checked (writers disagree on 32 or 64 ones). */
#include "disk/image.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/utf16.h"
#include "base/vd_errors.h"


static int vd_vhd_has_cookie(const uint8_t *bytes, const char *cookie)
{
    return memcmp(bytes, cookie, VD_VHD_COOKIE_SIZE) == 0;
}

static void vd_vhd_decode_footer(const uint8_t *raw, vd_vhd_footer *footer)
{
    footer->features = vd_load_be32(raw + VD_VHD_FOOTER_FEATURES_OFFSET);
    footer->version = vd_load_be32(raw + VD_VHD_FOOTER_VERSION_OFFSET);
    footer->data_offset = vd_load_be64(raw + VD_VHD_FOOTER_DATA_OFFSET_OFFSET);
    footer->timestamp = vd_load_be32(raw + VD_VHD_FOOTER_TIMESTAMP_OFFSET);
    footer->creator_application = vd_load_be32(raw + VD_VHD_FOOTER_CREATOR_APP_OFFSET);
    footer->creator_version = vd_load_be32(raw + VD_VHD_FOOTER_CREATOR_VER_OFFSET);
    footer->creator_host_os = vd_load_be32(raw + VD_VHD_FOOTER_CREATOR_HOST_OFFSET);
    footer->original_size = vd_load_be64(raw + VD_VHD_FOOTER_ORIGINAL_SIZE_OFFSET);
    footer->current_size = vd_load_be64(raw + VD_VHD_FOOTER_CURRENT_SIZE_OFFSET);
    footer->cylinders = vd_load_be16(raw + VD_VHD_FOOTER_GEOMETRY_OFFSET);
    footer->heads = raw[VD_VHD_FOOTER_GEOMETRY_OFFSET + 2];
    footer->sectors_per_track = raw[VD_VHD_FOOTER_GEOMETRY_OFFSET + 3];
    footer->disk_type = vd_load_be32(raw + VD_VHD_FOOTER_DISK_TYPE_OFFSET);
    footer->checksum = vd_load_be32(raw + VD_VHD_FOOTER_CHECKSUM_OFFSET);
    memcpy(footer->unique_id, raw + VD_VHD_FOOTER_UNIQUE_ID_OFFSET, 16);
    footer->saved_state = raw[VD_VHD_FOOTER_SAVED_STATE_OFFSET];
}

/* Decodes and checks one 512-byte footer candidate; *fault says what is
 * wrong, for the failure detail (the caller knows which copy failed). */
static uint32_t vd_vhd_parse_footer(const uint8_t *raw, uint64_t file_size,
                                    vd_vhd_footer *footer, const char **fault)
{
    *fault = NULL;
    if (!vd_vhd_has_cookie(raw, VD_VHD_FOOTER_COOKIE)) {
        *fault = "missing (no \"conectix\" cookie)";
        return VD_ERROR_VHD_DRIVE_FOOTER_MISSING;
    }
    vd_vhd_decode_footer(raw, footer);
    if (vd_vhd_checksum(raw, VD_VHD_FOOTER_SIZE, VD_VHD_FOOTER_CHECKSUM_OFFSET)
        != footer->checksum) {
        *fault = "checksum mismatch";
        return VD_ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH;
    }
    if (footer->features & ~VD_VHD_FEATURES_KNOWN) {
        *fault = "has unknown feature bits";
        return VD_ERROR_VHD_DRIVE_FOOTER_CORRUPT;
    }
    if (footer->version != VD_VHD_VERSION_1_0) {
        *fault = "format version is not 1.0";
        return VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION;
    }
    if (footer->disk_type != VD_VHD_TYPE_FIXED && footer->disk_type != VD_VHD_TYPE_DYNAMIC
        && footer->disk_type != VD_VHD_TYPE_DIFFERENCING) {
        *fault = "disk type is not fixed, dynamic or differencing";
        return VD_ERROR_VHD_FORMAT_UNKNOWN;
    }
    if (footer->current_size == 0 || footer->current_size % VD_VHD_SECTOR_SIZE != 0
        || footer->current_size > VD_VHD_MAX_SIZE) {
        *fault = "current size is 0, not whole sectors or above 2040 GiB";
        return VD_ERROR_VHD_INVALID_SIZE;
    }
    if (footer->disk_type != VD_VHD_TYPE_FIXED) {
        /* The header follows the copy of the footer at 0 and must fit. */
        if (footer->data_offset < VD_VHD_FOOTER_SIZE || file_size < VD_VHD_HEADER_SIZE
            || footer->data_offset > file_size - VD_VHD_HEADER_SIZE) {
            *fault = "points at a dynamic header outside the file";
            return VD_ERROR_VHD_DRIVE_FOOTER_CORRUPT;
        }
    }
    return VD_ERROR_SUCCESS;
}

/* Finds the footer to trust (see "Recovery" above), its bytes, and how many
 * bytes it occupies at the end of the file (0 when the copy at offset 0 is
 * used).  Updates (vhd_update.c) rewrite the footer found here. */
uint32_t vd_vhd_find_footer(const vd_file *file, vd_vhd_footer *footer,
                            uint8_t raw[VD_VHD_FOOTER_SIZE], uint64_t *tail_length)
{
    if (file->size < VD_VHD_FOOTER_SIZE)
        return vd_fail(VD_ERROR_VHD_INVALID_FILE_SIZE, "the file (%" PRIu64 " bytes) is shorter than a VHD footer",
                       file->size);

    uint32_t status = vd_file_read(file, file->size - VD_VHD_FOOTER_SIZE, raw,
                                   VD_VHD_FOOTER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    *tail_length = VD_VHD_FOOTER_SIZE;
    if (!vd_vhd_has_cookie(raw, VD_VHD_FOOTER_COOKIE)
        && vd_vhd_has_cookie(raw + 1, VD_VHD_FOOTER_COOKIE)) {
        /* A 511-byte footer: its missing last byte is reserved, i.e. zero. */
        memmove(raw, raw + 1, VD_VHD_SHORT_FOOTER_SIZE);
        raw[VD_VHD_FOOTER_SIZE - 1] = 0;
        *tail_length = VD_VHD_SHORT_FOOTER_SIZE;
    }
    const char *end_fault, *copy_fault;
    uint32_t end_status = vd_vhd_parse_footer(raw, file->size, footer, &end_fault);
    if (end_status == VD_ERROR_SUCCESS)
        return VD_ERROR_SUCCESS;

    /* The copy at 0 needs its own sector in front of the end footer. */
    if (file->size < 2u * VD_VHD_FOOTER_SIZE)
        return vd_fail(end_status, "VHD footer %s", end_fault);
    status = vd_file_read(file, 0, raw, VD_VHD_FOOTER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhd_footer copy;
    uint32_t copy_status = vd_vhd_parse_footer(raw, file->size, &copy, &copy_fault);
    if (copy_status == VD_ERROR_SUCCESS && copy.disk_type != VD_VHD_TYPE_FIXED) {
        *footer = copy;
        *tail_length = 0;
        return VD_ERROR_SUCCESS;
    }
    if (end_status == VD_ERROR_VHD_DRIVE_FOOTER_MISSING
        && copy_status != VD_ERROR_VHD_DRIVE_FOOTER_MISSING
        && copy_status != VD_ERROR_SUCCESS)
        return vd_fail(copy_status, "VHD footer missing at the end; its copy at offset 0: %s", copy_fault);
    return vd_fail(end_status, "VHD footer %s", end_fault);
}

static int vd_vhd_is_power_of_two(uint32_t value)
{
    return value != 0 && (value & (value - 1)) == 0;
}

/* Reads and checks the dynamic header; fills the BAT geometry of `state`. */
static uint32_t vd_vhd_read_dynamic_header(const vd_file *file, vd_vhd_state *state,
                                           uint8_t raw[VD_VHD_HEADER_SIZE],
                                           vd_vhd_dynamic_header *header)
{
    uint32_t status = vd_file_read(file, state->footer.data_offset, raw, VD_VHD_HEADER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!vd_vhd_has_cookie(raw, VD_VHD_HEADER_COOKIE))
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CORRUPT,
                       "VHD dynamic header missing (no \"cxsparse\" cookie at offset %" PRIu64 ")",
                       state->footer.data_offset);
    header->table_offset = vd_load_be64(raw + VD_VHD_HEADER_TABLE_OFFSET_OFFSET);
    header->version = vd_load_be32(raw + VD_VHD_HEADER_VERSION_OFFSET);
    header->max_table_entries = vd_load_be32(raw + VD_VHD_HEADER_MAX_ENTRIES_OFFSET);
    header->block_size = vd_load_be32(raw + VD_VHD_HEADER_BLOCK_SIZE_OFFSET);
    header->checksum = vd_load_be32(raw + VD_VHD_HEADER_CHECKSUM_OFFSET);
    memcpy(header->parent_unique_id, raw + VD_VHD_HEADER_PARENT_ID_OFFSET, 16);
    header->parent_timestamp = vd_load_be32(raw + VD_VHD_HEADER_PARENT_TIME_OFFSET);

    if (vd_vhd_checksum(raw, VD_VHD_HEADER_SIZE, VD_VHD_HEADER_CHECKSUM_OFFSET)
        != header->checksum)
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH, "VHD dynamic header checksum mismatch");
    if (header->version != VD_VHD_VERSION_1_0)
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION,
                       "VHD dynamic header version 0x%08" PRIx32 " is not 1.0", header->version);
    if (!vd_vhd_is_power_of_two(header->block_size)
        || header->block_size < VD_VHD_MIN_BLOCK_SIZE
        || header->block_size > VD_VHD_MAX_BLOCK_SIZE)
        return vd_fail(VD_ERROR_VHD_INVALID_BLOCK_SIZE,
                       "VHD dynamic header block size %" PRIu32 " is not a power of two in the range VHD allows",
                       header->block_size);

    /* Current Size <= 2040 GiB and blocks >= 512 B keep this below 2^32. */
    uint64_t needed = (state->footer.current_size + header->block_size - 1) / header->block_size;
    if (needed > header->max_table_entries)
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CORRUPT,
                       "VHD dynamic header allows %" PRIu32 " BAT entries, the disk needs %" PRIu64,
                       header->max_table_entries, needed);
    uint64_t table_bytes = needed * VD_VHD_BAT_ENTRY_SIZE;
    if (header->table_offset > file->size || table_bytes > file->size - header->table_offset)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                       "the BAT (%" PRIu64 " bytes at offset %" PRIu64 ") reaches past the end of the file",
                       table_bytes, header->table_offset);

    state->table_offset = header->table_offset;
    state->table_entries = (uint32_t)needed;
    state->block_size = header->block_size;
    uint32_t bitmap_bits_bytes = (header->block_size / VD_VHD_SECTOR_SIZE + 7) / 8;
    state->bitmap_size = (bitmap_bits_bytes + VD_VHD_SECTOR_SIZE - 1)
                         / VD_VHD_SECTOR_SIZE * VD_VHD_SECTOR_SIZE;
    return VD_ERROR_SUCCESS;
}

/* The path of one parent locator entry as UTF-8 in *out (left NULL when the
 * entry is empty or its text is not valid UTF-16, which Windows paths may
 * be: such a locator is unusable here, not damage). */
static uint32_t vd_vhd_read_locator(const vd_file *file, const uint8_t *entry, char **out)
{
    uint32_t length = vd_load_be32(entry + VD_VHD_LOCATOR_LENGTH_OFFSET);
    uint64_t offset = vd_load_be64(entry + VD_VHD_LOCATOR_DATA_OFFSET);
    if (length == 0)
        return VD_ERROR_SUCCESS;
    if (length > VD_VHD_MAX_LOCATOR_BYTES || offset > file->size || length > file->size - offset)
        return vd_fail(VD_ERROR_VHD_SPARSE_HEADER_CORRUPT,
                       "a parent locator (%" PRIu32 " bytes at offset %" PRIu64 ") is too long or outside the file",
                       length, offset);
    uint8_t *data = malloc(length);
    if (data == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_file_read(file, offset, data, length);
    if (status == VD_ERROR_SUCCESS)
        *out = vd_utf16le_bytes_to_utf8(data, length / 2);
    free(data);
    return status;
}

/* Parent locators: the first W2ku entry gives the absolute path, the first
 * W2ru entry the relative one.  The deprecated Wi2k/Wi2r entries (whose
 * encoding the spec leaves open; writers that made them also wrote the
 * UTF-16 pair) and the Mac entries are skipped, as are empty slots. */
static uint32_t vd_vhd_read_locators(const vd_file *file, const uint8_t *header,
                                     vd_parent_locator *parent)
{
    for (unsigned i = 0; i < VD_VHD_LOCATOR_COUNT; i++) {
        const uint8_t *entry = header + VD_VHD_HEADER_LOCATORS_OFFSET
                               + i * VD_VHD_LOCATOR_ENTRY_SIZE;
        uint32_t code = vd_load_be32(entry + VD_VHD_LOCATOR_CODE_OFFSET);
        char **slot = NULL;
        if (code == VD_VHD_PLATFORM_W2KU)
            slot = &parent->absolute_path;
        else if (code == VD_VHD_PLATFORM_W2RU)
            slot = &parent->relative_path;
        if (slot == NULL || *slot != NULL)
            continue;
        uint32_t status = vd_vhd_read_locator(file, entry, slot);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return VD_ERROR_SUCCESS;
}

static void vd_vhd_free_locators(vd_parent_locator *parent)
{
    free(parent->absolute_path);
    free(parent->relative_path);
    free(parent->volume_path);
    memset(parent, 0, sizeof *parent);
}

/* The BAT in host order, read on first use. */
uint32_t vd_vhd_table_load(vd_vhd_state *state, const vd_file *file, vd_vhd_entry **out)
{
    vd_vhd_entry *table = atomic_load_explicit(&state->table, memory_order_acquire);
    if (table != NULL) {
        *out = table;
        return VD_ERROR_SUCCESS;
    }
    /* Open checked that these bytes lie inside the file. */
    size_t bytes = (size_t)state->table_entries * VD_VHD_BAT_ENTRY_SIZE;
    if ((uint64_t)bytes != (uint64_t)state->table_entries * VD_VHD_BAT_ENTRY_SIZE)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    table = malloc(bytes > 0 ? bytes : 1);
    if (table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_file_read(file, state->table_offset, table, bytes);
    if (status != VD_ERROR_SUCCESS) {
        free(table);
        return status;
    }
    /* In place: entry i is loaded before it is stored (same size). */
    const uint8_t *raw = (const uint8_t *)table;
    for (uint32_t i = 0; i < state->table_entries; i++)
        atomic_init(&table[i], vd_load_be32(raw + (size_t)i * VD_VHD_BAT_ENTRY_SIZE));

    vd_vhd_entry *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&state->table, &expected, table,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        free(table);
        table = expected;
    }
    *out = table;
    return VD_ERROR_SUCCESS;
}

/* Virtual bytes this image does not hold: from the parent where there is
 * one, zeros otherwise (and beyond a smaller parent's end). */
static uint32_t vd_vhd_read_absent(const vd_image *image, vd_image *parent, uint64_t offset,
                                   uint8_t *out, uint64_t length)
{
    uint64_t from_parent = 0;
    if (image->subtype == VD_SUBTYPE_DIFFERENCING && parent != NULL
        && offset < parent->virtual_size) {
        from_parent = parent->virtual_size - offset;
        if (from_parent > length)
            from_parent = length;
        /* The parent resolves its own ancestors: a chain hands over a
         * parent whose read op knows them. */
        uint32_t status = parent->ops->read(parent, NULL, offset, out, from_parent);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    memset(out + from_parent, 0, (size_t)(length - from_parent));
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_window_load(const vd_image *image, uint32_t block, uint32_t entry, uint32_t in_block,
                            uint32_t length, vd_vhd_window *window)
{
    uint32_t first_sector = in_block / VD_VHD_SECTOR_SIZE;
    window->end_sector = (in_block + length - 1) / VD_VHD_SECTOR_SIZE + 1;
    window->first_byte = first_sector / 8;
    uint32_t end_byte = (window->end_sector + 7) / 8;
    const vd_vhd_bitmap_byte *copy = vd_vhd_bitmap_copy(image->format_state, block);
    if (copy != NULL) {
        vd_vhd_bitmap_window(copy, window->first_byte, end_byte, window->bits);
        return VD_ERROR_SUCCESS;
    }
    return vd_file_read(&image->file, (uint64_t)entry * VD_VHD_SECTOR_SIZE + window->first_byte,
                        window->bits, end_byte - window->first_byte);
}

uint32_t vd_vhd_window_run(const vd_vhd_window *window, uint32_t sector, int *present)
{
    *present = vd_vhd_bitmap_bit(window->bits, sector - window->first_byte * 8);
    uint32_t run_end_sector = sector + 1;
    while (run_end_sector < window->end_sector
           && vd_vhd_bitmap_bit(window->bits, run_end_sector - window->first_byte * 8) == *present)
        run_end_sector++;
    return run_end_sector;
}

/* Reads `length` bytes at `in_block` of allocated block `block` (at sector
 * `entry`), all within one bitmap window: sectors whose bit is set come
 * from this file, the others are absent. */
static uint32_t vd_vhd_read_window(const vd_image *image, vd_image *parent, uint32_t block,
                                   uint32_t entry, uint32_t in_block, uint8_t *out, uint32_t length)
{
    const vd_vhd_state *state = image->format_state;
    vd_vhd_window window;
    uint32_t status = vd_vhd_window_load(image, block, entry, in_block, length, &window);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint64_t block_start = (uint64_t)block * state->block_size;
    uint64_t data_offset = (uint64_t)entry * VD_VHD_SECTOR_SIZE + state->bitmap_size;
    uint32_t position = in_block;
    uint32_t end = in_block + length;
    while (position < end) {
        int present;
        uint32_t run_end = vd_vhd_window_run(&window, position / VD_VHD_SECTOR_SIZE, &present)
                           * VD_VHD_SECTOR_SIZE;
        if (run_end > end)
            run_end = end;
        uint8_t *target = out + (position - in_block);
        uint32_t count = run_end - position;
        if (present)
            status = vd_file_read(&image->file, data_offset + position, target, count);
        else
            status = vd_vhd_read_absent(image, parent, block_start + position, target, count);
        if (status != VD_ERROR_SUCCESS)
            return status;
        position = run_end;
    }
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhd_check_range(const vd_image *image, uint64_t offset, uint64_t length)
{
    if (offset > image->virtual_size || length > image->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    if ((uint64_t)(size_t)length != length)
        return VD_ERROR_INVALID_PARAMETER;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhd_read_fixed(vd_image *image, vd_image *parent, uint64_t offset,
                                  void *buffer, uint64_t length)
{
    (void)parent;
    uint32_t status = vd_vhd_check_range(image, offset, length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    return vd_file_read(&image->file, offset, buffer, (size_t)length);
}

static uint32_t vd_vhd_read_sparse(vd_image *image, vd_image *parent, uint64_t offset,
                                   void *buffer, uint64_t length)
{
    uint32_t status = vd_vhd_check_range(image, offset, length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table;
    status = vd_vhd_table(state, &image->file, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint8_t *out = buffer;
    uint64_t window_bytes = (uint64_t)VD_VHD_WINDOW_SECTORS * VD_VHD_SECTOR_SIZE;
    while (length > 0) {
        uint32_t block = (uint32_t)(offset / state->block_size);
        uint64_t block_start = (uint64_t)block * state->block_size;
        uint32_t in_block = (uint32_t)(offset - block_start);
        /* A step ends at the block's end; where the bitmap is read, at its
         * window's end when that comes first (block sizes and windows are
         * both powers of two). */
        uint64_t step = state->block_size - in_block;
        if (step > length)
            step = length;

        uint32_t entry = atomic_load_explicit(&table[block], memory_order_acquire);
        if (entry == VD_VHD_BAT_UNALLOCATED) {
            status = vd_vhd_read_absent(image, parent, offset, out, step);
        } else {
            /* The whole block (up to the disk's end) must lie in the file. */
            uint64_t bitmap_offset = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
            uint64_t block_end = bitmap_offset + state->bitmap_size
                                 + vd_vhd_block_bytes(image, state, block);
            if (block_end > atomic_load_explicit(&state->file_end, memory_order_acquire))
                return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                               "BAT entry %" PRIu32 " points past the end of the file (block ends at %" PRIu64 ")",
                               block, block_end);
            int all;
            status = vd_vhd_block_all_present(image, state, block, entry, &all);
            if (status == VD_ERROR_SUCCESS && all) {
                status = vd_file_read(&image->file, bitmap_offset + state->bitmap_size + in_block,
                                      out, (size_t)step);
            } else if (status == VD_ERROR_SUCCESS) {
                uint64_t window_end = (in_block / window_bytes + 1) * window_bytes;
                if (step > window_end - in_block)
                    step = window_end - in_block;
                status = vd_vhd_read_window(image, parent, block, entry, in_block, out,
                                            (uint32_t)step);
            }
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
        offset += step;
        out += step;
        length -= step;
    }
    return VD_ERROR_SUCCESS;
}

static void vd_vhd_release(vd_image *image)
{
    vd_vhd_state *state = image->format_state;
    if (state != NULL) {
        /* What a writer left waiting becomes part of the image at the close;
         * should that fail, the blocks stay unused space and their sectors
         * read what they read before the unflushed writes. */
        if (image->file.writable)
            (void)vd_vhd_commit(image);
        vd_vhd_write_release(state);
        free(atomic_load_explicit(&state->table, memory_order_relaxed));
    }
    free(state);
    image->format_state = NULL;
}

static const vd_format_ops vd_vhd_fixed_ops = {
    .read = vd_vhd_read_fixed,
    .write = vd_vhd_write_fixed,
    .unmap = vd_vhd_unmap_fixed,
    .unmap_reads_zeros = 1,          /* zeros written in place */
    .flush = vd_vhd_flush,
    .release = vd_vhd_release,
    .map = vd_vhd_map_fixed,
};
static const vd_format_ops vd_vhd_sparse_ops = {
    .read = vd_vhd_read_sparse,
    .write = vd_vhd_write_sparse,
    .unmap = vd_vhd_unmap_sparse,
    .unmap_reads_zeros = 1,          /* zeros written, bits set in children */
    .flush = vd_vhd_flush,
    .release = vd_vhd_release,
    .block_layout = vd_vhd_block_layout,
    .map = vd_vhd_map_sparse,
};

int vd_vhd_probe(const vd_file *file)
{
    uint8_t raw[VD_VHD_FOOTER_SIZE];
    if (file->size < VD_VHD_FOOTER_SIZE)
        return 0;
    if (vd_file_read(file, file->size - VD_VHD_FOOTER_SIZE, raw, sizeof raw) == VD_ERROR_SUCCESS
        && (vd_vhd_has_cookie(raw, VD_VHD_FOOTER_COOKIE)
            || vd_vhd_has_cookie(raw + 1, VD_VHD_FOOTER_COOKIE)))
        return 1;
    return vd_file_read(file, 0, raw, VD_VHD_COOKIE_SIZE) == VD_ERROR_SUCCESS
           && vd_vhd_has_cookie(raw, VD_VHD_FOOTER_COOKIE);
}

/* Fills the dynamic/differencing parts of `image`. */
static uint32_t vd_vhd_open_sparse(const vd_file *file, vd_vhd_state *state, vd_image *image)
{
    uint8_t raw[VD_VHD_HEADER_SIZE];
    vd_vhd_dynamic_header header;
    uint32_t status = vd_vhd_read_dynamic_header(file, state, raw, &header);
    if (status != VD_ERROR_SUCCESS)
        return status;
    image->block_size = header.block_size;
    if (state->footer.disk_type != VD_VHD_TYPE_DIFFERENCING)
        return VD_ERROR_SUCCESS;

    image->has_parent = 1;
    image->parent_identifier = vd_vhd_guid_from_disk(header.parent_unique_id);
    image->parent_timestamp = header.parent_timestamp;
    return vd_vhd_read_locators(file, raw, &image->parent);
}

uint32_t vd_vhd_open(vd_file *file, vd_image *image)
{
    /* Built aside, so `file` may even be &image->file. */
    vd_image result;
    memset(&result, 0, sizeof result);
    vd_vhd_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    atomic_init(&state->table, NULL);
    if (vd_vhd_write_init(state, file->size) != VD_ERROR_SUCCESS) {
        free(state);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }

    uint64_t tail_length;
    uint8_t raw[VD_VHD_FOOTER_SIZE];
    uint32_t status = vd_vhd_find_footer(file, &state->footer, raw, &tail_length);
    const vd_vhd_footer *footer = &state->footer;
    if (status == VD_ERROR_SUCCESS && footer->disk_type == VD_VHD_TYPE_FIXED
        && (file->size < tail_length || file->size - tail_length < footer->current_size))
        status = vd_fail(VD_ERROR_VHD_INVALID_FILE_SIZE,
                         "the fixed VHD file (%" PRIu64 " bytes) is shorter than its disk (%" PRIu64 " bytes) and footer",
                         file->size, footer->current_size);
    if (status == VD_ERROR_SUCCESS) {
        result.device = VD_DEVICE_VHD;
        result.subtype = footer->disk_type;   /* same numbers as enum vd_subtype */
        result.virtual_size = footer->current_size;
        result.logical_sector_size = VD_VHD_SECTOR_SIZE;
        result.physical_sector_size = VD_VHD_SECTOR_SIZE;
        result.identifier = vd_vhd_guid_from_disk(footer->unique_id);
        result.virtual_disk_id = result.identifier;
        /* VHD has no shrink: the smallest safe size is the size itself. */
        result.smallest_safe_virtual_size = footer->current_size;
        /* Fixed data starts at offset 0.  For the others the answer needs
         * the BAT, which open does not read: vd_vhd_block_layout gives it. */
        result.is_4k_aligned = footer->disk_type == VD_VHD_TYPE_FIXED;
        result.fragmentation_percent = 0;
        result.ops = &vd_vhd_fixed_ops;
        result.format_state = state;
        if (footer->disk_type != VD_VHD_TYPE_FIXED) {
            result.ops = &vd_vhd_sparse_ops;
            status = vd_vhd_open_sparse(file, state, &result);
        }
    }
    if (status != VD_ERROR_SUCCESS) {
        vd_vhd_free_locators(&result.parent);
        vd_vhd_write_release(state);
        free(state);
        if (file != &image->file)
            memset(image, 0, sizeof *image);
        return status;
    }

    result.file = *file;
    *image = result;
    if (file != &image->file) {
        file->fd = -1;
        file->path = NULL;
        file->size = 0;
    }
    return VD_ERROR_SUCCESS;
}

/* Fragmentation: the share of allocated blocks (after the first, in virtual
 * order) that do not follow the previous allocated block in the file, in
 * percent.  "Follow" allows up to 4 KiB of padding, the room a writer that
 * aligns block data to 4 KiB leaves between blocks.  A disk written front
 * to back is 0 %; one whose blocks were written in reverse is 100 %. */
uint32_t vd_vhd_block_layout(vd_image *image, int *is_4k_aligned,
                             uint32_t *fragmentation_percent)
{
    *is_4k_aligned = 1;
    *fragmentation_percent = 0;
    if (image->subtype == VD_SUBTYPE_FIXED)
        return VD_ERROR_SUCCESS;
    vd_vhd_state *state = image->format_state;
    vd_vhd_entry *table;
    uint32_t status = vd_vhd_table(state, &image->file, &table);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint64_t allocated = 0;
    uint64_t breaks = 0;
    uint64_t expected_next = 0;
    for (uint32_t i = 0; i < state->table_entries; i++) {
        uint32_t entry = atomic_load_explicit(&table[i], memory_order_relaxed);
        if (entry == VD_VHD_BAT_UNALLOCATED)
            continue;
        uint64_t start = (uint64_t)entry * VD_VHD_SECTOR_SIZE;
        if ((start + state->bitmap_size) % 4096 != 0)
            *is_4k_aligned = 0;
        if (allocated > 0 && (start < expected_next || start - expected_next >= 4096))
            breaks++;
        allocated++;
        expected_next = start + state->bitmap_size + state->block_size;
    }
    if (allocated > 1)
        *fragmentation_percent = (uint32_t)(breaks * 100 / (allocated - 1));
    return VD_ERROR_SUCCESS;
}
