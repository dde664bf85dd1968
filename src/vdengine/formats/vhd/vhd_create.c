/* Writing new VHD images: fixed, dynamic and differencing, empty or with
 * the content of a source disk.
 *
 * Layouts (Microsoft "Virtual Hard Disk Image Format Specification" 1.0):
 *
 *   fixed          data area of virtual_size bytes, footer
 *   dynamic        footer copy, dynamic header, BAT (whole sectors),
 *                  [copied blocks: sector bitmap + data, one after another],
 *                  footer
 *   differencing   as dynamic, with the parent locator data (W2ku absolute,
 *                  W2ru relative, UTF-16LE) in their own sectors after the BAT
 *
 * A fixed disk's data area is never written with zeros: the file is sized
 * with ftruncate, which is constant time and leaves a sparse file, and
 * with full allocation the space is reserved by fallocate (also constant
 * time on file systems with extents).  A file system without fallocate
 * keeps the sparse file: it is still a complete fixed disk (every byte of
 * the data area is there and reads as zero), only not reserved.
 *
 * Footer fields.  The creator application is "win ", the one Windows
 * writes: the size of a VHD is its footer's Current Size for Windows, but
 * qemu derives it from the CHS geometry unless the creator is one it knows
 * to keep Current Size ("win ", "qem2", "d2v ", "CTXS", "tap"), and the
 * CHS product is rounded down.  With "win ", Windows, qemu and libvhdi all
 * read exactly the requested size, which Azure requires (a whole number of
 * MiB).  The geometry is the spec's CHS algorithm, as Windows stores it.
 * Creator version 10.0 (Windows 10's), host "Wi2k".
 *
 * Copying takes the source run by run (disk/source_copy.h): runs its
 * files hold are moved from file to file, in the kernel where the host
 * can, the rest is read through its chain.  Blocks the source holds no
 * data in stay unallocated in dynamic targets and holes in fixed ones.
 * Copied blocks get a sector bitmap with every bit set: each of their
 * sectors is present in the file (those no piece reached read zeros), and
 * their data starts on a 4 KiB boundary, as in Windows' files.
 *
 * The footer id, the differencing header's parent fields and the locator
 * data are built by functions vhd_update.c uses too (vhd_format.h), so a
 * changed parent is written exactly as a new child's would be. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* fallocate */
#endif

#include "api/create.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/endian.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "disk/source_copy.h"
#include "formats/vhd/vhd_format.h"

#define VD_VHD_CREATOR_APPLICATION 0x77696E20u   /* "win " */
#define VD_VHD_CREATOR_VERSION     0x000A0000u   /* 10.0 */

/* 2000-01-01 00:00:00 UTC as a Unix time: the VHD epoch. */
#define VD_VHD_EPOCH_UNIX INT64_C(946684800)

/* Where a copied block's data starts in the file: a multiple of this. */
#define VD_VHD_DATA_ALIGNMENT 4096u

/* The front of a dynamic disk (footer copy, header, BAT) is written in
 * pieces of this size: small enough to be reused from the heap without
 * page faults, large enough that a 2040 GiB disk's 4 MiB BAT takes 64
 * writes. */
#define VD_VHD_FRONT_PIECE ((size_t)64 << 10)

static uint64_t vd_round_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

static uint32_t vd_vhd_timestamp_from_unix(int64_t seconds)
{
    if (seconds <= VD_VHD_EPOCH_UNIX)
        return 0;
    int64_t since = seconds - VD_VHD_EPOCH_UNIX;
    return since > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)since;
}

static void vd_vhd_build_footer(const vd_create_spec *spec, uint32_t disk_type,
                                uint64_t data_offset, uint8_t footer[VD_VHD_FOOTER_SIZE])
{
    memset(footer, 0, VD_VHD_FOOTER_SIZE);
    memcpy(footer + VD_VHD_FOOTER_COOKIE_OFFSET, VD_VHD_FOOTER_COOKIE, VD_VHD_COOKIE_SIZE);
    vd_store_be32(footer + VD_VHD_FOOTER_FEATURES_OFFSET, VD_VHD_FEATURE_RESERVED);
    vd_store_be32(footer + VD_VHD_FOOTER_VERSION_OFFSET, VD_VHD_VERSION_1_0);
    vd_store_be64(footer + VD_VHD_FOOTER_DATA_OFFSET_OFFSET, data_offset);
    vd_store_be32(footer + VD_VHD_FOOTER_TIMESTAMP_OFFSET,
                  vd_vhd_timestamp_from_unix((int64_t)time(NULL)));
    vd_store_be32(footer + VD_VHD_FOOTER_CREATOR_APP_OFFSET, VD_VHD_CREATOR_APPLICATION);
    vd_store_be32(footer + VD_VHD_FOOTER_CREATOR_VER_OFFSET, VD_VHD_CREATOR_VERSION);
    vd_store_be32(footer + VD_VHD_FOOTER_CREATOR_HOST_OFFSET, VD_VHD_HOST_WINDOWS);
    vd_store_be64(footer + VD_VHD_FOOTER_ORIGINAL_SIZE_OFFSET, spec->virtual_size);
    vd_store_be64(footer + VD_VHD_FOOTER_CURRENT_SIZE_OFFSET, spec->virtual_size);
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    vd_vhd_chs(spec->virtual_size, &cylinders, &heads, &sectors);
    vd_store_be16(footer + VD_VHD_FOOTER_GEOMETRY_OFFSET, cylinders);
    footer[VD_VHD_FOOTER_GEOMETRY_OFFSET + 2] = heads;
    footer[VD_VHD_FOOTER_GEOMETRY_OFFSET + 3] = sectors;
    vd_store_be32(footer + VD_VHD_FOOTER_DISK_TYPE_OFFSET, disk_type);
    vd_vhd_footer_store_unique_id(footer, &spec->unique_id);
}

void vd_vhd_footer_store_unique_id(uint8_t footer[VD_VHD_FOOTER_SIZE], const vd_guid *id)
{
    /* The id is a GUID in Windows layout; the file holds the UUID bytes. */
    vd_guid on_disk = vd_vhd_guid_from_disk(id->bytes);
    memcpy(footer + VD_VHD_FOOTER_UNIQUE_ID_OFFSET, on_disk.bytes, 16);
    vd_store_be32(footer + VD_VHD_FOOTER_CHECKSUM_OFFSET,
                  vd_vhd_checksum(footer, VD_VHD_FOOTER_SIZE, VD_VHD_FOOTER_CHECKSUM_OFFSET));
}

/* Where the source's content ends in the new disk: a larger disk reads
 * zeros after it. */
static uint64_t vd_vhd_copied_end(const vd_create_spec *spec)
{
    return spec->source->virtual_size < spec->virtual_size ? spec->source->virtual_size
                                                           : spec->virtual_size;
}

/* ---- fixed --------------------------------------------------------------- */

static uint32_t vd_vhd_size_file(const vd_file *file, uint64_t size, int full_allocation)
{
    if (size > (uint64_t)INT64_MAX)
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    if (full_allocation && size > 0) {
        int result;
        do {
            result = fallocate(file->fd, 0, 0, (off_t)size);
        } while (result != 0 && errno == EINTR);
        if (result == 0)
            return VD_ERROR_SUCCESS;
        /* Only "this file system cannot reserve" falls back to sparse. */
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
            return vd_error_from_errno(errno);
    }
    if (ftruncate(file->fd, (off_t)size) != 0)
        return vd_error_from_errno(errno);
    return VD_ERROR_SUCCESS;
}

/* The source's data at the same offsets of the data area, which reads
 * zeros wherever nothing is written. */
static uint32_t vd_vhd_copy_fixed(const vd_file *file, const vd_create_spec *spec)
{
    vd_source_copy copy;
    uint32_t status = vd_source_copy_begin(&copy, spec->source, spec->source_disk, file->fd);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t end = vd_vhd_copied_end(spec);
    for (uint64_t offset = 0; offset < end && status == VD_ERROR_SUCCESS;) {
        vd_source_piece piece;
        status = vd_source_copy_next(&copy, &offset, end, &piece);
        if (status != VD_ERROR_SUCCESS || piece.length == 0)
            break;
        status = vd_source_copy_put(&copy, &piece, piece.offset);
    }
    vd_source_copy_end(&copy);
    return status;
}

static uint32_t vd_vhd_create_fixed(vd_file *file, const vd_create_spec *spec)
{
    uint32_t status = vd_vhd_size_file(file, spec->virtual_size, spec->full_allocation);
    if (status == VD_ERROR_SUCCESS && spec->source != NULL)
        status = vd_vhd_copy_fixed(file, spec);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint8_t footer[VD_VHD_FOOTER_SIZE];
    vd_vhd_build_footer(spec, VD_VHD_TYPE_FIXED, VD_VHD_NO_DATA_OFFSET, footer);
    return vd_file_write(file, spec->virtual_size, footer, sizeof footer);
}

/* ---- dynamic and differencing ------------------------------------------- */

/* `text` (UTF-8) as UTF-16 code units in host order, malloc'd. */
static uint32_t vd_utf16_units(const char *text, uint16_t **units, size_t *count)
{
    size_t needed = vd_utf8_to_utf16(text, NULL, 0);
    if (needed == 0 || needed - 1 > VD_VHD_MAX_LOCATOR_BYTES / 2)
        return VD_ERROR_INVALID_PARAMETER;
    *units = malloc(needed * sizeof **units);
    if (*units == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_utf8_to_utf16(text, *units, needed);
    *count = needed - 1;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhd_locator_make(uint32_t code, const char *path, vd_vhd_locator *locator)
{
    memset(locator, 0, sizeof *locator);
    if (path == NULL || path[0] == '\0')
        return VD_ERROR_SUCCESS;
    uint16_t *units;
    size_t count;
    uint32_t status = vd_utf16_units(path, &units, &count);
    if (status != VD_ERROR_SUCCESS)
        return status;
    locator->data = malloc(count * 2 + 1);
    if (locator->data == NULL) {
        free(units);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    for (size_t i = 0; i < count; i++)
        vd_store_le16(locator->data + 2 * i, units[i]);
    free(units);
    locator->code = code;
    locator->length = (uint32_t)(count * 2);
    /* Windows and Virtual PC store the reserved space in bytes, not in
     * sectors as the spec's text says; readers use the length anyway. */
    locator->space = (uint32_t)vd_round_up(locator->length, VD_VHD_SECTOR_SIZE);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhd_parent_locators(const char *absolute_path, const char *relative_path,
                                uint64_t start, vd_vhd_locator locators[VD_VHD_PARENT_LOCATORS],
                                uint8_t **data, uint64_t *bytes)
{
    *data = NULL;
    *bytes = 0;
    memset(locators, 0, VD_VHD_PARENT_LOCATORS * sizeof *locators);
    uint32_t status = vd_vhd_locator_make(VD_VHD_PLATFORM_W2KU, absolute_path, &locators[0]);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_locator_make(VD_VHD_PLATFORM_W2RU, relative_path, &locators[1]);
    uint64_t span = 0;
    for (size_t i = 0; i < VD_VHD_PARENT_LOCATORS; i++) {
        locators[i].offset = locators[i].length > 0 ? start + span : 0;
        span += locators[i].space;
    }
    /* The padding after each path is part of its reserved space. */
    if (status == VD_ERROR_SUCCESS && span > 0) {
        *data = calloc(1, (size_t)span);
        if (*data == NULL)
            status = VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    if (status != VD_ERROR_SUCCESS) {
        vd_vhd_locators_free(locators, VD_VHD_PARENT_LOCATORS);
        return status;
    }
    for (size_t i = 0; i < VD_VHD_PARENT_LOCATORS; i++) {
        if (locators[i].length > 0)
            memcpy(*data + (locators[i].offset - start), locators[i].data, locators[i].length);
    }
    *bytes = span;
    return VD_ERROR_SUCCESS;
}

void vd_vhd_locators_free(vd_vhd_locator *locators, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(locators[i].data);
        locators[i].data = NULL;
    }
}

/* The Parent Unicode Name: UTF-16 big-endian, NUL padded.  Windows stores
 * the parent's absolute path; a path too long for the 256 units keeps
 * only the file name. */
static void vd_vhd_store_parent_name(const char *absolute_path, uint8_t *field)
{
    const char *candidates[2] = { absolute_path, strrchr(absolute_path, '/') };
    if (candidates[1] != NULL)
        candidates[1]++;
    for (size_t c = 0; c < 2; c++) {
        if (candidates[c] == NULL)
            continue;
        uint16_t *units;
        size_t count;
        if (vd_utf16_units(candidates[c], &units, &count) != VD_ERROR_SUCCESS)
            continue;
        if (count * 2 <= VD_VHD_HEADER_PARENT_NAME_SIZE) {
            for (size_t i = 0; i < count; i++)
                vd_store_be16(field + 2 * i, units[i]);
            free(units);
            return;
        }
        free(units);
    }
}

uint32_t vd_vhd_parent_timestamp(const vd_image *parent)
{
    struct stat info;
    if (parent->file.fd < 0 || fstat(parent->file.fd, &info) != 0)
        return 0;
    return vd_vhd_timestamp_from_unix((int64_t)info.st_mtime);
}

static void vd_vhd_build_header(const vd_create_spec *spec, uint64_t table_offset,
                                uint32_t table_entries, const vd_vhd_locator *locators,
                                size_t locator_count, uint8_t header[VD_VHD_HEADER_SIZE])
{
    memset(header, 0, VD_VHD_HEADER_SIZE);
    memcpy(header + VD_VHD_HEADER_COOKIE_OFFSET, VD_VHD_HEADER_COOKIE, VD_VHD_COOKIE_SIZE);
    vd_store_be64(header + VD_VHD_HEADER_DATA_OFFSET_OFFSET, VD_VHD_NO_DATA_OFFSET);
    vd_store_be64(header + VD_VHD_HEADER_TABLE_OFFSET_OFFSET, table_offset);
    vd_store_be32(header + VD_VHD_HEADER_VERSION_OFFSET, VD_VHD_VERSION_1_0);
    vd_store_be32(header + VD_VHD_HEADER_MAX_ENTRIES_OFFSET, table_entries);
    vd_store_be32(header + VD_VHD_HEADER_BLOCK_SIZE_OFFSET, spec->block_size);
    if (spec->parent != NULL)
        vd_vhd_header_store_parent(header, &spec->parent->identifier,
                                   vd_vhd_parent_timestamp(spec->parent),
                                   spec->parent_absolute_path, locators, locator_count);
    vd_vhd_header_seal(header);
}

void vd_vhd_header_store_parent(uint8_t header[VD_VHD_HEADER_SIZE], const vd_guid *parent_id,
                                uint32_t parent_timestamp, const char *absolute_path,
                                const vd_vhd_locator *locators, size_t locator_count)
{
    vd_guid on_disk = vd_vhd_guid_from_disk(parent_id->bytes);
    memcpy(header + VD_VHD_HEADER_PARENT_ID_OFFSET, on_disk.bytes, 16);
    vd_store_be32(header + VD_VHD_HEADER_PARENT_TIME_OFFSET, parent_timestamp);
    /* A new parent replaces every trace of the old one: a stale name or a
     * locator of another platform would name a file that is no longer the
     * parent. */
    memset(header + VD_VHD_HEADER_PARENT_NAME_OFFSET, 0, VD_VHD_HEADER_PARENT_NAME_SIZE);
    memset(header + VD_VHD_HEADER_LOCATORS_OFFSET, 0,
           VD_VHD_LOCATOR_COUNT * VD_VHD_LOCATOR_ENTRY_SIZE);
    if (absolute_path != NULL)
        vd_vhd_store_parent_name(absolute_path, header + VD_VHD_HEADER_PARENT_NAME_OFFSET);
    size_t slot = 0;
    for (size_t i = 0; i < locator_count && slot < VD_VHD_LOCATOR_COUNT; i++) {
        if (locators[i].length == 0)
            continue;
        uint8_t *entry = header + VD_VHD_HEADER_LOCATORS_OFFSET
                         + slot++ * VD_VHD_LOCATOR_ENTRY_SIZE;
        vd_store_be32(entry + VD_VHD_LOCATOR_CODE_OFFSET, locators[i].code);
        vd_store_be32(entry + VD_VHD_LOCATOR_SPACE_OFFSET, locators[i].space);
        vd_store_be32(entry + VD_VHD_LOCATOR_LENGTH_OFFSET, locators[i].length);
        vd_store_be64(entry + VD_VHD_LOCATOR_DATA_OFFSET, locators[i].offset);
    }
}

void vd_vhd_header_seal(uint8_t header[VD_VHD_HEADER_SIZE])
{
    vd_store_be32(header + VD_VHD_HEADER_CHECKSUM_OFFSET,
                  vd_vhd_checksum(header, VD_VHD_HEADER_SIZE, VD_VHD_HEADER_CHECKSUM_OFFSET));
}

/* Copies the source into blocks appended from `*next` on; fills `table`
 * (host order) and advances `*next` past the last block allocated.  A
 * block is allocated, its sector bitmap written, when its first piece of
 * data comes; its data area reads zeros where no piece is written (the
 * closing footer, written after it, extends the file past it). */
static uint32_t vd_vhd_copy_blocks(const vd_file *file, const vd_create_spec *spec,
                                   uint32_t *table, uint32_t table_entries, uint64_t *next)
{
    uint32_t bitmap_size = (uint32_t)vd_round_up((spec->block_size / VD_VHD_SECTOR_SIZE + 7) / 8,
                                                 VD_VHD_SECTOR_SIZE);
    uint8_t *bitmap = malloc(bitmap_size);
    if (bitmap == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memset(bitmap, 0xFF, bitmap_size);
    vd_source_copy copy;
    uint32_t status = vd_source_copy_begin(&copy, spec->source, spec->source_disk, file->fd);
    if (status != VD_ERROR_SUCCESS) {
        free(bitmap);
        return status;
    }
    uint64_t copied_end = vd_vhd_copied_end(spec);
    for (uint32_t block = 0; block < table_entries && status == VD_ERROR_SUCCESS; block++) {
        uint64_t start = (uint64_t)block * spec->block_size;
        if (start >= copied_end)
            break;
        uint64_t end = copied_end - start < spec->block_size ? copied_end
                                                             : start + spec->block_size;
        uint64_t data = 0;   /* the block's data area in the file; 0: not allocated */
        for (uint64_t offset = start; offset < end && status == VD_ERROR_SUCCESS;) {
            vd_source_piece piece;
            status = vd_source_copy_next(&copy, &offset, end, &piece);
            if (status != VD_ERROR_SUCCESS || piece.length == 0)
                break;
            if (data == 0) {
                /* As Windows lays out blocks (and vhd_write.c): the data,
                 * after its sector bitmap, starts on a 4 KiB boundary,
                 * which page-sized copies into the file need to run
                 * whole; the padding before the bitmap reads zeros. */
                *next = vd_round_up(*next + bitmap_size, VD_VHD_DATA_ALIGNMENT) - bitmap_size;
                /* BAT entries are 32-bit sector numbers. */
                if (*next / VD_VHD_SECTOR_SIZE >= VD_VHD_BAT_UNALLOCATED) {
                    status = VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE;
                    break;
                }
                status = vd_file_write(file, *next, bitmap, bitmap_size);
                if (status != VD_ERROR_SUCCESS)
                    break;
                table[block] = (uint32_t)(*next / VD_VHD_SECTOR_SIZE);
                data = *next + bitmap_size;
                *next += (uint64_t)bitmap_size + spec->block_size;
            }
            status = vd_source_copy_put(&copy, &piece, data + (piece.offset - start));
        }
    }
    vd_source_copy_end(&copy);
    free(bitmap);
    return status;
}

/* The front of a dynamic or differencing file: the footer copy, the header
 * and the BAT lie one after another from offset 0, and with nothing after
 * the BAT (an empty dynamic disk) the closing footer follows at once. */
typedef struct vd_vhd_front {
    const uint8_t *footer;
    const uint8_t *header;
    const uint32_t *table;   /* host order; NULL: every entry unallocated */
    uint32_t entries;
    uint64_t table_offset;
    uint64_t table_end;      /* the BAT's whole sectors end here */
    int closing;             /* the closing footer follows at table_end */
} vd_vhd_front;

/* Bytes [at, at + length) of the front.  Every piece but the last is a
 * multiple of 512 bytes long, so the closing footer is never split. */
static void vd_vhd_fill_front(const vd_vhd_front *front, uint64_t at, uint8_t *piece,
                              size_t length)
{
    uint64_t end = at + length;
    /* Unallocated entries and the padding of the BAT's last sector are
     * all ones. */
    memset(piece, 0xFF, length);
    if (at == 0) {
        memcpy(piece, front->footer, VD_VHD_FOOTER_SIZE);
        memcpy(piece + VD_VHD_FOOTER_SIZE, front->header, VD_VHD_HEADER_SIZE);
    }
    if (front->table != NULL) {
        uint64_t first = at > front->table_offset
                             ? (at - front->table_offset) / VD_VHD_BAT_ENTRY_SIZE : 0;
        for (uint64_t i = first; i < front->entries; i++) {
            uint64_t offset = front->table_offset + i * VD_VHD_BAT_ENTRY_SIZE;
            if (offset >= end)
                break;
            vd_store_be32(piece + (offset - at), front->table[i]);
        }
    }
    if (front->closing && end == front->table_end + VD_VHD_FOOTER_SIZE)
        memcpy(piece + length - VD_VHD_FOOTER_SIZE, front->footer, VD_VHD_FOOTER_SIZE);
}

/* Writes the front from one buffer of at most VD_VHD_FRONT_PIECE bytes: a
 * single write for disks up to 32 GiB with 2 MiB blocks, and no buffer as
 * large as a big disk's BAT (4 MiB at 2040 GiB) to allocate and fault in. */
static uint32_t vd_vhd_write_front(const vd_file *file, const vd_vhd_front *front)
{
    uint64_t end = front->table_end + (front->closing ? VD_VHD_FOOTER_SIZE : 0);
    size_t size = end < VD_VHD_FRONT_PIECE ? (size_t)end : VD_VHD_FRONT_PIECE;
    uint8_t *piece = malloc(size);
    if (piece == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t at = 0; at < end && status == VD_ERROR_SUCCESS; at += size) {
        size_t length = end - at < size ? (size_t)(end - at) : size;
        vd_vhd_fill_front(front, at, piece, length);
        status = vd_file_write(file, at, piece, length);
    }
    free(piece);
    return status;
}

static uint32_t vd_vhd_create_sparse(vd_file *file, const vd_create_spec *spec)
{
    if (spec->block_size < VD_VHD_MIN_BLOCK_SIZE || spec->block_size > VD_VHD_MAX_BLOCK_SIZE
        || (spec->block_size & (spec->block_size - 1)) != 0)
        return VD_ERROR_VHD_INVALID_BLOCK_SIZE;
    uint32_t disk_type = spec->parent != NULL ? VD_VHD_TYPE_DIFFERENCING : VD_VHD_TYPE_DYNAMIC;
    uint64_t entries64 = (spec->virtual_size + spec->block_size - 1) / spec->block_size;
    if (entries64 == 0 || entries64 >= VD_VHD_BAT_UNALLOCATED)
        return VD_ERROR_VHD_INVALID_SIZE;
    uint32_t entries = (uint32_t)entries64;
    uint64_t table_offset = VD_VHD_FOOTER_SIZE + VD_VHD_HEADER_SIZE;
    uint64_t table_bytes = vd_round_up(entries64 * VD_VHD_BAT_ENTRY_SIZE, VD_VHD_SECTOR_SIZE);
    uint64_t next = table_offset + table_bytes;

    vd_vhd_locator locators[VD_VHD_PARENT_LOCATORS];
    memset(locators, 0, sizeof locators);
    uint32_t status = VD_ERROR_SUCCESS;
    if (spec->parent != NULL) {
        uint8_t *data = NULL;
        uint64_t bytes = 0;
        status = vd_vhd_parent_locators(spec->parent_absolute_path, spec->parent_relative_path,
                                        next, locators, &data, &bytes);
        if (status == VD_ERROR_SUCCESS && bytes > 0)
            status = vd_file_write(file, next, data, (size_t)bytes);
        next += bytes;
        free(data);
    }

    /* Only a copy allocates blocks, so only a copy needs the table in memory. */
    uint32_t *table = NULL;
    if (status == VD_ERROR_SUCCESS && spec->source != NULL) {
        table = malloc((size_t)entries * sizeof *table);
        if (table == NULL)
            status = VD_ERROR_NOT_ENOUGH_MEMORY;
        for (uint32_t i = 0; table != NULL && i < entries; i++)
            table[i] = VD_VHD_BAT_UNALLOCATED;
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhd_copy_blocks(file, spec, table, entries, &next);
    }

    if (status == VD_ERROR_SUCCESS) {
        uint8_t header[VD_VHD_HEADER_SIZE];
        uint8_t footer[VD_VHD_FOOTER_SIZE];
        vd_vhd_build_header(spec, table_offset, entries, locators, VD_VHD_PARENT_LOCATORS,
                            header);
        vd_vhd_build_footer(spec, disk_type, VD_VHD_FOOTER_SIZE, footer);
        vd_vhd_front front = { footer, header, table, entries, table_offset,
                               table_offset + table_bytes, next == table_offset + table_bytes };
        status = vd_vhd_write_front(file, &front);
        if (status == VD_ERROR_SUCCESS && !front.closing)
            status = vd_file_write(file, next, footer, sizeof footer);
    }
    free(table);
    vd_vhd_locators_free(locators, VD_VHD_PARENT_LOCATORS);
    return status;
}

uint32_t vd_vhd_create(vd_file *file, const vd_create_spec *spec)
{
    if (file == NULL || spec == NULL || spec->device != VD_DEVICE_VHD)
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->virtual_size == 0 || spec->virtual_size % VD_VHD_SECTOR_SIZE != 0
        || spec->virtual_size > VD_VHD_MAX_SIZE)
        return VD_ERROR_VHD_INVALID_SIZE;
    if ((spec->subtype == VD_SUBTYPE_DIFFERENCING) != (spec->parent != NULL))
        return VD_ERROR_INVALID_PARAMETER;
    if (spec->source != NULL && (spec->source->ops == NULL || spec->source->ops->read == NULL))
        return VD_ERROR_INVALID_PARAMETER;
    switch (spec->subtype) {
    case VD_SUBTYPE_FIXED:
        return vd_vhd_create_fixed(file, spec);
    case VD_SUBTYPE_DYNAMIC:
    case VD_SUBTYPE_DIFFERENCING:
        return vd_vhd_create_sparse(file, spec);
    default:
        return VD_ERROR_INVALID_PARAMETER;
    }
}
