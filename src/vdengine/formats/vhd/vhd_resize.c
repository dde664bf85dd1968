/* Growing a VHD (driver.h's resize; api/resize.c has the rules): the
 * footer's Current Size and geometry, and for dynamic disks the BAT.
 *
 * VHD has no log, so each step is ordered to leave a file that opens with
 * the old size or the new one, as vhd_update.c's are.  Open trusts the end
 * footer (the copy at 0 only when that one is damaged).
 *
 * Fixed: the content is the file up to the footer.
 *   1. the new footer at the new size: the file grows sparsely around it,
 *      in constant time whatever the size, and opens with the new size;
 *   2. flush; the old footer's sector, now content of the disk, zeroed;
 *      flush.
 *   After 1 alone the disk has its new size and the old footer's 512 bytes
 *   at the old end; every sector of the old content is intact.
 *
 * Dynamic: the BAT needs an entry per block of the new size.
 *   0. when the table's sectors do not hold them, the table grows where it
 *      is if only blocks and free space follow it: the blocks in the way
 *      move to the end of the file, the end footer after them, before any
 *      of the steps below (vhd_bat_grow.c; the old disk at every write).
 *      With no block in the way only the footer's copy moves, flushed
 *      with step 1: a crash that loses it while step 1's table covers the
 *      old end footer leaves the copy at 0, the old footer, which open
 *      takes (the old disk).  So a grow flushes three times: the table,
 *      the header, the footer, each of which the next one needs.
 *   1. when the table's sectors (or the room step 0 made) hold them, the
 *      entries past Max Table Entries are set unallocated, up to the end
 *      of the table's last sector; otherwise (a structure such as a parent
 *      locator follows the table) a new table goes
 *      where blocks are appended: a copy of the (old) footer past the end,
 *      then the old entries and unallocated ones at the old footer's place,
 *      4 KiB aligned so that blocks appended after it stay aligned.  Until
 *      the header points there it is unused space.  Where the last block
 *      is allocated and the old size ends inside it, the data past the old
 *      end is zeroed (the disk did not show it; the grown disk must read
 *      zeros there); flush.
 *   2. the dynamic header (one 1 KiB write, checksum included) with the
 *      table's offset and Max Table Entries; flush.  The disk still has
 *      its old size: a table longer than the disk needs is valid.
 *   3. the end footer with the new size and geometry (one sector: this
 *      switches the size), then its copy at 0; flush.
 * Cancellation is honoured before step 2, where nothing live has changed
 * but the place of blocks step 0 moved.  A new table of step 1 leaves the
 * old one behind as unused space. */
#include "disk/driver.h"

#include <stdlib.h>
#include <string.h>

#include "api/operation.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhd/vhd_internal.h"

#define VD_VHD_RESIZE_ALIGNMENT 4096u

static uint64_t vd_vhd_resize_up(uint64_t value, uint64_t unit)
{
    return (value + unit - 1) / unit * unit;
}

/* `raw` (a footer) with Current Size `size`, its geometry and checksum.
 * Original Size follows: the spec calls it informational, but libvhdi
 * reports it as the disk's size, so a reader of that kind would otherwise
 * see the disk before its resize. */
static void vd_vhd_footer_store_size(uint8_t raw[VD_VHD_FOOTER_SIZE], uint64_t size)
{
    uint16_t cylinders;
    uint8_t heads, sectors;
    vd_vhd_chs(size, &cylinders, &heads, &sectors);
    vd_store_be64(raw + VD_VHD_FOOTER_ORIGINAL_SIZE_OFFSET, size);
    vd_store_be64(raw + VD_VHD_FOOTER_CURRENT_SIZE_OFFSET, size);
    vd_store_be16(raw + VD_VHD_FOOTER_GEOMETRY_OFFSET, cylinders);
    raw[VD_VHD_FOOTER_GEOMETRY_OFFSET + 2] = heads;
    raw[VD_VHD_FOOTER_GEOMETRY_OFFSET + 3] = sectors;
    vd_store_be32(raw + VD_VHD_FOOTER_CHECKSUM_OFFSET,
                  vd_vhd_checksum(raw, VD_VHD_FOOTER_SIZE, VD_VHD_FOOTER_CHECKSUM_OFFSET));
}

static uint32_t vd_vhd_write_zeros(const vd_file *file, uint64_t offset, uint64_t length)
{
    uint8_t *zeros = calloc(1, length > 0 ? (size_t)length : 1);
    if (zeros == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_file_write(file, offset, zeros, (size_t)length);
    free(zeros);
    return status;
}

static uint32_t vd_vhd_resize_fixed(vd_image *image, uint64_t tail_length, uint8_t raw[VD_VHD_FOOTER_SIZE],
                                    uint64_t new_size)
{
    vd_file *file = &image->file;
    uint64_t old_end = file->size - tail_length;
    vd_vhd_footer_store_size(raw, new_size);
    uint32_t status = vd_file_write(file, new_size, raw, VD_VHD_FOOTER_SIZE);
    if (status != VD_ERROR_SUCCESS)
        return status;
    file->size = new_size + VD_VHD_FOOTER_SIZE;
    status = vd_file_flush(file);
    if (status == VD_ERROR_SUCCESS && tail_length > 0)
        status = vd_vhd_write_zeros(file, old_end, tail_length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    return status;
}

/* What step 1 of a dynamic grow writes, built after step 0. */
typedef struct vd_vhd_grow {
    uint8_t header[VD_VHD_HEADER_SIZE];
    uint64_t header_offset;
    uint8_t *table;               /* the kept entries, first at table_offset */
    uint64_t kept_bytes;          /* their bytes; unallocated ones follow */
    uint64_t table_offset, table_bytes;
    int moves;                    /* a new table at the footer's place */
    uint64_t footer_offset;       /* where the end footer moves (moves) */
    uint64_t tail_offset, tail_bytes;   /* stale data past the old end */
} vd_vhd_grow;

static uint32_t vd_vhd_grow_plan(vd_image *image, const vd_vhd_footer *footer, uint64_t tail_length,
                                 const uint8_t raw[VD_VHD_FOOTER_SIZE], uint64_t new_size,
                                 struct vd_operation *operation, vd_vhd_grow *grow)
{
    vd_file *file = &image->file;
    memset(grow, 0, sizeof *grow);
    grow->header_offset = footer->data_offset;
    uint32_t status = vd_vhd_read_header(file, grow->header_offset, grow->header);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t old_offset = vd_load_be64(grow->header + VD_VHD_HEADER_TABLE_OFFSET_OFFSET);
    uint32_t old_entries = vd_load_be32(grow->header + VD_VHD_HEADER_MAX_ENTRIES_OFFSET);
    uint32_t block_size = vd_load_be32(grow->header + VD_VHD_HEADER_BLOCK_SIZE_OFFSET);
    uint64_t needed = (new_size + block_size - 1) / block_size;
    if (needed > UINT32_MAX / VD_VHD_BAT_ENTRY_SIZE)
        return vd_fail(VD_ERROR_VHD_INVALID_SIZE, "%" PRIu64 " blocks of %" PRIu32 " bytes are more than a VHD BAT holds",
                       needed, block_size);
    uint64_t room = vd_vhd_resize_up((uint64_t)old_entries * VD_VHD_BAT_ENTRY_SIZE, VD_VHD_SECTOR_SIZE)
                    / VD_VHD_BAT_ENTRY_SIZE;
    uint64_t entries = needed > old_entries ? needed : old_entries;
    if (needed > room) {
        int made = 0;
        uint64_t to = old_offset + vd_vhd_resize_up(needed * VD_VHD_BAT_ENTRY_SIZE, VD_VHD_SECTOR_SIZE);
        status = vd_vhd_bat_make_room(image, old_offset + room * VD_VHD_BAT_ENTRY_SIZE, to,
                                      file->size - tail_length, raw, operation, &made);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (made)
            room = needed;
    }
    grow->moves = needed > room;
    /* A new table holds every entry, in whole sectors; in place only the
     * new entries are written, into the old table's padding. */
    uint64_t kept = grow->moves ? old_entries : 0;
    uint64_t first_new = grow->moves ? 0 : old_entries;
    grow->table_bytes = vd_vhd_resize_up(entries * VD_VHD_BAT_ENTRY_SIZE, VD_VHD_SECTOR_SIZE)
                        - first_new * VD_VHD_BAT_ENTRY_SIZE;
    grow->kept_bytes = kept * VD_VHD_BAT_ENTRY_SIZE;
    grow->table = malloc(grow->kept_bytes > 0 ? (size_t)grow->kept_bytes : 1);
    if (grow->table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    if (kept > 0) {
        status = vd_file_read(file, old_offset, grow->table, (size_t)grow->kept_bytes);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    uint64_t data_end = file->size - tail_length;
    if (grow->moves) {
        grow->table_offset = vd_vhd_resize_up(data_end, VD_VHD_SECTOR_SIZE);
        grow->footer_offset = grow->table_offset + vd_vhd_resize_up(grow->table_bytes, VD_VHD_RESIZE_ALIGNMENT);
        vd_store_be64(grow->header + VD_VHD_HEADER_TABLE_OFFSET_OFFSET, grow->table_offset);
    } else {
        grow->table_offset = old_offset + first_new * VD_VHD_BAT_ENTRY_SIZE;
    }
    vd_store_be32(grow->header + VD_VHD_HEADER_MAX_ENTRIES_OFFSET, (uint32_t)entries);
    vd_vhd_header_seal(grow->header);

    /* The old last block, where the old size ends inside it. */
    uint64_t within = footer->current_size % block_size;
    if (within != 0) {
        uint64_t last = footer->current_size / block_size;
        uint8_t raw[VD_VHD_BAT_ENTRY_SIZE];
        status = vd_file_read(file, old_offset + last * VD_VHD_BAT_ENTRY_SIZE, raw, sizeof raw);
        if (status != VD_ERROR_SUCCESS)
            return status;
        uint32_t sector = vd_load_be32(raw);
        if (sector != VD_VHD_BAT_UNALLOCATED) {
            uint64_t bitmap = vd_vhd_resize_up(block_size / VD_VHD_SECTOR_SIZE / 8, VD_VHD_SECTOR_SIZE);
            grow->tail_offset = (uint64_t)sector * VD_VHD_SECTOR_SIZE + bitmap + within;
            grow->tail_bytes = block_size - within;
            if (grow->tail_offset + grow->tail_bytes > data_end)
                return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                               "VHD block %" PRIu64 " ends past the end of the file", last);
        }
    }
    return VD_ERROR_SUCCESS;
}

/* Bytes of unallocated entries one write takes: a buffer this long is
 * filled once, rather than one as long as the table (4 MiB at 2040 GiB),
 * whose pages would each fault in and be given back. */
#define VD_VHD_UNALLOCATED_PIECE (256u * 1024u)

/* `length` bytes of unallocated entries (VD_VHD_BAT_UNALLOCATED) at `offset`. */
static uint32_t vd_vhd_write_unallocated(const vd_file *file, uint64_t offset, uint64_t length)
{
    size_t size = length < VD_VHD_UNALLOCATED_PIECE ? (size_t)length : VD_VHD_UNALLOCATED_PIECE;
    uint8_t *piece = malloc(size > 0 ? size : 1);
    if (piece == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memset(piece, 0xFF, size);
    uint32_t status = vd_file_write_repeated(file, offset, piece, size, length);
    free(piece);
    return status;
}

/* Step 1 of the file comment. */
static uint32_t vd_vhd_grow_prepare(vd_file *file, const vd_vhd_grow *grow, const uint8_t old_footer[VD_VHD_FOOTER_SIZE])
{
    uint32_t status = VD_ERROR_SUCCESS;
    if (grow->moves) {
        status = vd_file_write(file, grow->footer_offset, old_footer, VD_VHD_FOOTER_SIZE);
        if (status != VD_ERROR_SUCCESS)
            return status;
        file->size = grow->footer_offset + VD_VHD_FOOTER_SIZE;
    }
    if (grow->kept_bytes > 0)
        status = vd_file_write(file, grow->table_offset, grow->table, (size_t)grow->kept_bytes);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_write_unallocated(file, grow->table_offset + grow->kept_bytes,
                                          grow->table_bytes - grow->kept_bytes);
    if (status == VD_ERROR_SUCCESS && grow->tail_bytes > 0)
        status = vd_vhd_write_zeros(file, grow->tail_offset, grow->tail_bytes);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    return status;
}

static uint32_t vd_vhd_resize_dynamic(vd_image *image, const vd_vhd_footer *footer, uint64_t tail_length,
                                      uint8_t raw[VD_VHD_FOOTER_SIZE], const vd_resize_request *request)
{
    vd_file *file = &image->file;
    if (tail_length == 0)
        return vd_fail(VD_ERROR_VHD_DRIVE_FOOTER_CORRUPT,
                       "the VHD's end footer is damaged; the disk is not resized until it is repaired");
    vd_vhd_grow grow;
    uint32_t status = vd_vhd_grow_plan(image, footer, tail_length, raw, request->new_size, request->operation,
                                       &grow);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_grow_prepare(file, &grow, raw);
    if (status == VD_ERROR_SUCCESS && vd_operation_cancelled(request->operation))
        status = VD_ERROR_OPERATION_ABORTED;
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(file, grow.header_offset, grow.header, VD_VHD_HEADER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    free(grow.table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhd_footer_store_size(raw, request->new_size);
    status = vd_file_write(file, file->size - VD_VHD_FOOTER_SIZE, raw, VD_VHD_FOOTER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(file, 0, raw, VD_VHD_FOOTER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    return status;
}

uint32_t vd_vhd_resize(vd_image *image, const vd_resize_request *request)
{
    vd_vhd_footer footer;
    uint8_t raw[VD_VHD_FOOTER_SIZE];
    uint64_t tail_length;
    /* The plan reads the BAT from the file: every entry written first. */
    uint32_t status = vd_vhd_commit(image);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhd_find_footer(&image->file, &footer, raw, &tail_length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (request->new_size < footer.current_size)
        return VD_ERROR_NOT_SUPPORTED;
    if (footer.disk_type == VD_VHD_TYPE_FIXED)
        return vd_vhd_resize_fixed(image, tail_length, raw, request->new_size);
    return vd_vhd_resize_dynamic(image, &footer, tail_length, raw, request);
}
