/* VHDX images ([MS-VHDX]): open, what the API reports about them, reads.
 *
 * What an open reads, and nothing more: the 8-byte file type identifier,
 * both 4 KiB headers, one 64 KiB region table (the second copy only when
 * the first is damaged), the head of the metadata table and the metadata
 * items in one or two reads, and the parent locator of a differencing
 * image.  The BAT is read lazily, a 64 KiB page at a time, by the first
 * reads that need it; sector bitmaps are read per request.  A dirty log is
 * the exception: it is read whole and replayed before anything else
 * (vhdx_log.c) -- into the file for a writable open, into memory for a
 * read-only one, which then reads every structure through that overlay.
 *
 * Which damage returns which code, and why:
 *
 *   VIRTDISK_NOT_VIRTUAL_DISK (0xC03A0015)
 *       The file does not start with "vhdxfile" (or is shorter than that):
 *       it is not a VHDX at all, the case REFERENCE.md §3 gives this code.
 *   FILE_CORRUPT (1392)
 *       The file says it is a VHDX but its structures are damaged: shorter
 *       than the 1 MiB header section; no header with a valid signature and
 *       CRC-32C (or two valid ones with equal sequence numbers and different
 *       contents); a log location not 1 MiB aligned or outside the file; no
 *       region table copy with a valid signature, CRC-32C and entry count;
 *       the BAT or metadata region missing, duplicated, misaligned, outside
 *       the file or overlapping another region or the log; a damaged
 *       metadata table, a required item missing, too short, duplicated or
 *       outside its region; sector sizes other than 512/4096; a BAT region
 *       too small for the disk; a missing or malformed parent locator or
 *       parent_linkage; an unusable log (vhdx_log.h lists the cases).
 *       Windows reports damaged VHDX files with this code (Hyper-V and WSL
 *       show "The file or directory is corrupted and unreadable",
 *       HRESULT 0x80070570) rather than with the VHD-specific footer codes,
 *       which name structures VHDX does not have.
 *   VHD_FORMAT_UNSUPPORTED_VERSION (0xC03A0005)
 *       The current header's Version is not 1 or its LogVersion not 0, or
 *       the file needs something this implementation does not know: a
 *       region or metadata item marked required, or a parent locator type
 *       other than the VHDX one.  The spec requires refusing these files,
 *       which are valid, only newer than this reader.
 *   VHD_INVALID_BLOCK_SIZE (0xC03A000B)
 *       File parameters give a block size that is not a power of two
 *       between 1 MiB and 256 MiB.
 *   VHD_INVALID_SIZE (0xC03A0012)
 *       The virtual disk size is 0, above 64 TiB or not a multiple of the
 *       logical sector size.
 *   VHD_BLOCK_ALLOCATION_TABLE_CORRUPT (0xC03A000A), from reads
 *       A BAT entry the read needs has a reserved state (4, 5), reserved
 *       bits set, PARTIALLY_PRESENT in a non-differencing image, a block
 *       inside the header section or extending past the end of the file, or
 *       its chunk's sector bitmap entry is not SB_BLOCK_PRESENT with a block
 *       inside the file.  Found when the BAT is read, i.e. on the first read
 *       of the affected block, not at open.
 *   NOT_ENOUGH_MEMORY (8), and the host's code for a failed read or write.
 *
 * What the image reports:
 *   subtype      differencing when File Parameters say HasParent; else fixed
 *                when LeaveBlocksAllocated is set (both Windows and qemu set
 *                it on fixed disks and only there); else dynamic.
 *   block_size   the BAT block size, 0 for fixed disks (image.h: as Windows
 *                reports fixed disks).
 *   identifier   the current header's DataWriteGuid: what a child's
 *                parent_linkage names and what vhdiinfo calls Identifier.
 *   virtual_disk_id  the Page 83 data; shared by a parent and its children.
 *   parent_identifier  parent_linkage, "{...}" text parsed into Windows
 *                layout; parent_linkage2 goes to parent_identifier2.
 *   is_4k_aligned  1: every VHDX block is 1 MiB aligned in the file.
 *   smallest_safe_virtual_size  the virtual size: a smaller one is safe only
 *                if no partition reaches past it, which would mean reading
 *                the guest's partition table at open; without that, no
 *                smaller size is known to be safe.
 *   fragmentation_percent  0: computing it means reading the whole BAT,
 *                which an open does not do. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/detail.h"
#include "base/endian.h"
#include "base/guid.h"
#include "disk/image.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"
#include "formats/vhdx/vhdx_internal.h"
#include "formats/vhdx/vhdx_log.h"
#include "formats/vhdx/vhdx_pending.h"

/* BAT pages: 64 KiB of entries, read on first use. */
#define VD_VHDX_BAT_PAGE_ENTRIES 8192u

/* Bytes of sector bitmap fetched at a time (32768 sectors). */
#define VD_VHDX_BITMAP_WINDOW 4096u

/* Metadata bytes read with the table: enough for the whole table of every
 * image seen (Windows and qemu write 5 or 6 entries). */
#define VD_VHDX_METADATA_FIRST_READ 4096u

/* Where file bytes come from: the file, or the file with a replayed log
 * laid over it, whose size may then exceed the file's. */
typedef struct vd_vhdx_source {
    const vd_file *file;
    const vd_vhdx_replay *replay;
    uint64_t size;
} vd_vhdx_source;

/* Metadata items this reader interprets, in table order. */
enum vd_vhdx_item {
    VD_VHDX_ITEM_FILE_PARAMETERS,
    VD_VHDX_ITEM_VIRTUAL_DISK_SIZE,
    VD_VHDX_ITEM_PAGE83_DATA,
    VD_VHDX_ITEM_LOGICAL_SECTOR_SIZE,
    VD_VHDX_ITEM_PHYSICAL_SECTOR_SIZE,
    VD_VHDX_ITEM_PARENT_LOCATOR,
    VD_VHDX_ITEM_COUNT,
    VD_VHDX_FIXED_ITEM_COUNT = VD_VHDX_ITEM_PARENT_LOCATOR   /* those of fixed length */
};

static const struct {
    uint8_t guid[16];
    uint32_t length;              /* bytes used; 0 for the variable locator */
    const char *name;             /* the spec's, for failure details */
} vd_vhdx_items[VD_VHDX_ITEM_COUNT] = {
    { VD_VHDX_GUID_FILE_PARAMETERS, VD_VHDX_FILE_PARAMETERS_SIZE, "File Parameters" },
    { VD_VHDX_GUID_VIRTUAL_DISK_SIZE, VD_VHDX_VIRTUAL_DISK_SIZE_SIZE, "Virtual Disk Size" },
    { VD_VHDX_GUID_PAGE83_DATA, VD_VHDX_PAGE83_SIZE, "Page 83 Data" },
    { VD_VHDX_GUID_LOGICAL_SECTOR_SIZE, VD_VHDX_SECTOR_SIZE_SIZE, "Logical Sector Size" },
    { VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE, VD_VHDX_SECTOR_SIZE_SIZE, "Physical Sector Size" },
    { VD_VHDX_GUID_PARENT_LOCATOR, 0, "Parent Locator" },
};

static const uint8_t vd_vhdx_guid_bat[16] = VD_VHDX_GUID_BAT_REGION;
static const uint8_t vd_vhdx_guid_metadata[16] = VD_VHDX_GUID_METADATA_REGION;
static const uint8_t vd_vhdx_guid_locator_type[16] = VD_VHDX_GUID_VHDX_LOCATOR_TYPE;

/* Everything an open learns before it commits to the image. */
typedef struct vd_vhdx_open_state {
    vd_vhdx_source source;
    vd_vhdx_replay *replay;
    uint8_t header[VD_VHDX_HEADER_SIZE];   /* the current header */
    uint64_t header_slot;                  /* its offset */
    uint64_t log_offset;
    uint32_t log_length;
    uint64_t bat_offset, bat_length;
    uint64_t metadata_offset, metadata_length;
    int item_present[VD_VHDX_ITEM_COUNT];
    uint32_t item_offset[VD_VHDX_ITEM_COUNT];   /* relative to the metadata region */
    uint32_t item_length[VD_VHDX_ITEM_COUNT];
    uint32_t block_size;
    uint32_t file_flags;
    uint64_t virtual_size;
    uint32_t logical_sector_size;
    uint32_t physical_sector_size;
    vd_guid page83;
    vd_guid parent_linkage;
    int has_parent_linkage2;
    vd_guid parent_linkage2;
    vd_parent_locator parent;
    int file_write_guid_fresh;             /* the open replayed the log into the file */
    /* A reopen's: the header of the open before it, whose live log entry
     * is in place already (vd_vhdx_reopen). */
    const uint8_t *applied_header;
} vd_vhdx_open_state;

static int vd_vhdx_is_zero_guid(const uint8_t *guid)
{
    static const uint8_t zero[16];
    return memcmp(guid, zero, 16) == 0;
}

static int vd_vhdx_ranges_overlap(uint64_t a_start, uint64_t a_length, uint64_t b_start, uint64_t b_length)
{
    return a_start < b_start + b_length && b_start < a_start + a_length;
}

/* Reads file bytes [offset, offset + length) as the replayed log has them.
 * Ranges past source->size are the caller's error to avoid. */
static uint32_t vd_vhdx_source_read(const vd_vhdx_source *source, uint64_t offset, void *buffer,
                                    size_t length)
{
    if (offset > source->size || length > source->size - offset)
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "%zu bytes at offset %" PRIu64 " reach past the end of the file (%" PRIu64 " bytes)",
                       length, offset, source->size);
    if (source->replay == NULL)
        return vd_file_read(source->file, offset, buffer, length);
    size_t in_file = 0;
    if (offset < source->file->size)
        in_file = source->file->size - offset < length ? (size_t)(source->file->size - offset) : length;
    if (in_file > 0) {
        uint32_t status = vd_file_read(source->file, offset, buffer, in_file);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    memset((uint8_t *)buffer + in_file, 0, length - in_file);
    vd_vhdx_replay_overlay(source->replay, offset, buffer, length);
    return VD_ERROR_SUCCESS;
}

/* Structures the open has checked to lie inside the file can still meet
 * the end of a file shrunk under us: that is damage, not an I/O fault.
 * `what` names the structure for the failure detail. */
static uint32_t vd_vhdx_structure_read(const vd_vhdx_source *source, const char *what, uint64_t offset,
                                       void *buffer, size_t length)
{
    uint32_t status = vd_vhdx_source_read(source, offset, buffer, length);
    if (status == VD_ERROR_HANDLE_EOF || status == VD_ERROR_FILE_CORRUPT)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the %s (%zu bytes at offset %" PRIu64 ") reaches past the end of the file",
                       what, length, offset);
    return status;
}

/* ---- headers (2.2.2) ---------------------------------------------------- */

static uint32_t vd_vhdx_checksum_with_zero_field(uint8_t *bytes, size_t length, size_t field)
{
    uint8_t saved[4];
    memcpy(saved, bytes + field, 4);
    memset(bytes + field, 0, 4);
    uint32_t crc = vd_crc32c(bytes, length);
    memcpy(bytes + field, saved, 4);
    return crc;
}

/* What is wrong with a header, for the failure detail; NULL when valid. */
static const char *vd_vhdx_header_fault(uint8_t *header)
{
    if (memcmp(header, VD_VHDX_HEADER_SIGNATURE, 4) != 0)
        return "signature missing";
    if (vd_vhdx_checksum_with_zero_field(header, VD_VHDX_HEADER_SIZE, VD_VHDX_HEADER_CHECKSUM_OFFSET)
        != vd_load_le32(header + VD_VHDX_HEADER_CHECKSUM_OFFSET))
        return "checksum mismatch";
    return NULL;
}

/* Picks the current header: the only valid one, or the valid one with the
 * higher sequence number.  Equal numbers are accepted only for identical
 * copies (Disk2vhd writes those). */
static uint32_t vd_vhdx_read_headers(vd_vhdx_open_state *open)
{
    uint8_t second[VD_VHDX_HEADER_SIZE];
    uint32_t status = vd_file_read(open->source.file, VD_VHDX_HEADER1_OFFSET, open->header,
                                   VD_VHDX_HEADER_SIZE);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_read(open->source.file, VD_VHDX_HEADER2_OFFSET, second, VD_VHDX_HEADER_SIZE);
    if (status == VD_ERROR_HANDLE_EOF)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the file ends inside the VHDX headers");
    if (status != VD_ERROR_SUCCESS)
        return status;

    const char *first_fault = vd_vhdx_header_fault(open->header);
    const char *second_fault = vd_vhdx_header_fault(second);
    int use_second;
    if (first_fault == NULL && second_fault == NULL) {
        uint64_t first_sequence = vd_load_le64(open->header + VD_VHDX_HEADER_SEQUENCE_OFFSET);
        uint64_t second_sequence = vd_load_le64(second + VD_VHDX_HEADER_SEQUENCE_OFFSET);
        if (first_sequence == second_sequence
            && memcmp(open->header, second, VD_VHDX_HEADER_SIZE) != 0)
            return vd_fail(VD_ERROR_FILE_CORRUPT,
                           "VHDX headers 1 and 2 differ but have the same sequence number %" PRIu64,
                           first_sequence);
        use_second = second_sequence > first_sequence;
    } else if (first_fault == NULL || second_fault == NULL) {
        use_second = second_fault == NULL;
    } else {
        return vd_fail(VD_ERROR_FILE_CORRUPT, "VHDX header 1 %s, VHDX header 2 %s", first_fault,
                       second_fault);
    }
    open->header_slot = VD_VHDX_HEADER1_OFFSET;
    if (use_second) {
        memcpy(open->header, second, VD_VHDX_HEADER_SIZE);
        open->header_slot = VD_VHDX_HEADER2_OFFSET;
    }

    int current = use_second ? 2 : 1;
    unsigned version = vd_load_le16(open->header + VD_VHDX_HEADER_VERSION_OFFSET);
    unsigned log_version = vd_load_le16(open->header + VD_VHDX_HEADER_LOG_VERSION_OFFSET);
    if (version != VD_VHDX_VERSION || log_version != VD_VHDX_LOG_VERSION)
        return vd_fail(VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION,
                       "VHDX header %d has version %u and log version %u (this reader knows %u and %u)",
                       current, version, log_version, VD_VHDX_VERSION, VD_VHDX_LOG_VERSION);
    open->log_length = vd_load_le32(open->header + VD_VHDX_HEADER_LOG_LENGTH_OFFSET);
    open->log_offset = vd_load_le64(open->header + VD_VHDX_HEADER_LOG_OFFSET_OFFSET);
    if (open->log_length % VD_VHDX_ALIGNMENT != 0 || open->log_offset % VD_VHDX_ALIGNMENT != 0)
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "VHDX header %d places the log (%" PRIu32 " bytes at offset %" PRIu64
                       ") off the 1 MiB alignment", current, open->log_length, open->log_offset);
    if (open->log_length != 0
        && (open->log_offset < VD_VHDX_HEADER_SECTION_SIZE || open->log_offset > open->source.size
            || open->log_length > open->source.size - open->log_offset))
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "VHDX header %d places the log (%" PRIu32 " bytes at offset %" PRIu64
                       ") outside the file's data area", current, open->log_length, open->log_offset);
    return VD_ERROR_SUCCESS;
}

/* `header` with its checksum, written to `slot`, not flushed. */
static uint32_t vd_vhdx_put_header(const vd_file *file, uint8_t *header, uint64_t slot)
{
    uint32_t crc = vd_vhdx_checksum_with_zero_field(header, VD_VHDX_HEADER_SIZE,
                                                    VD_VHDX_HEADER_CHECKSUM_OFFSET);
    vd_store_le32(header + VD_VHDX_HEADER_CHECKSUM_OFFSET, crc);
    return vd_file_write(file, slot, header, VD_VHDX_HEADER_SIZE);
}

static uint32_t vd_vhdx_write_header(const vd_file *file, uint8_t *header, uint64_t slot)
{
    uint32_t status = vd_vhdx_put_header(file, header, slot);
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_flush(file);
    return status;
}

/* Replays into the file in the order that survives a crash at any point
 * (2.2.2, 2.3.3): a header with a new FileWriteGuid goes to the
 * non-current slot before the file is first modified; then the log is
 * applied and flushed; only then does a header with LogGuid zero, in the
 * other slot, retire the log.  Until that last write, the log replays
 * again, and replaying is idempotent. */
static uint32_t vd_vhdx_replay_into_file(vd_vhdx_open_state *open, vd_file *file)
{
    uint64_t sequence = vd_load_le64(open->header + VD_VHDX_HEADER_SEQUENCE_OFFSET);
    if (sequence > UINT64_MAX - 2)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the VHDX header sequence number %" PRIu64 " cannot advance",
                       sequence);
    uint64_t other_slot = open->header_slot == VD_VHDX_HEADER1_OFFSET ? VD_VHDX_HEADER2_OFFSET
                                                                      : VD_VHDX_HEADER1_OFFSET;
    uint8_t *header = open->header;
    uint32_t status = vd_guid_random(header + VD_VHDX_HEADER_FILE_WRITE_GUID_OFFSET);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_store_le64(header + VD_VHDX_HEADER_SEQUENCE_OFFSET, sequence + 1);
    status = vd_vhdx_write_header(file, header, other_slot);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_replay_apply(open->replay, file);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_store_le64(header + VD_VHDX_HEADER_SEQUENCE_OFFSET, sequence + 2);
    memset(header + VD_VHDX_HEADER_LOG_GUID_OFFSET, 0, 16);
    return vd_vhdx_write_header(file, header, open->header_slot);
}

static uint32_t vd_vhdx_handle_log(vd_vhdx_open_state *open, vd_file *file)
{
    const uint8_t *log_guid = open->header + VD_VHDX_HEADER_LOG_GUID_OFFSET;
    if (vd_vhdx_is_zero_guid(log_guid))
        return VD_ERROR_SUCCESS;
    /* The entry this process applied through the same open file: its
     * sectors are in place (the replay would write them again). */
    if (open->applied_header != NULL && memcmp(open->header, open->applied_header, VD_VHDX_HEADER_SIZE) == 0)
        return VD_ERROR_SUCCESS;
    uint32_t status = vd_vhdx_log_load(file, open->log_offset, open->log_length, log_guid, &open->replay);
    if (status != VD_ERROR_SUCCESS || open->replay == NULL)
        return status;
    if (file->writable) {
        status = vd_vhdx_replay_into_file(open, file);
        vd_vhdx_replay_free(open->replay);
        open->replay = NULL;
        open->source.size = file->size;
        open->file_write_guid_fresh = 1;
        return status;
    }
    open->source.replay = open->replay;
    open->source.size = vd_vhdx_replay_file_size(open->replay);
    return VD_ERROR_SUCCESS;
}

/* ---- region table (2.2.3) ----------------------------------------------- */

/* What is wrong with a region table copy, for the failure detail; NULL
 * when valid. */
static const char *vd_vhdx_region_table_fault(uint8_t *table)
{
    if (memcmp(table, VD_VHDX_REGION_SIGNATURE, 4) != 0)
        return "signature missing";
    if (vd_load_le32(table + VD_VHDX_REGION_ENTRY_COUNT_OFFSET) > VD_VHDX_REGION_MAX_ENTRIES)
        return "entry count too large";
    if (vd_vhdx_checksum_with_zero_field(table, VD_VHDX_REGION_TABLE_SIZE, VD_VHDX_REGION_CHECKSUM_OFFSET)
        != vd_load_le32(table + VD_VHDX_REGION_CHECKSUM_OFFSET))
        return "checksum mismatch";
    return NULL;
}

static int vd_vhdx_region_placed_well(const vd_vhdx_open_state *open, uint64_t offset, uint64_t length)
{
    return offset % VD_VHDX_ALIGNMENT == 0 && length % VD_VHDX_ALIGNMENT == 0 && length != 0
        && offset >= VD_VHDX_HEADER_SECTION_SIZE && offset <= open->source.size
        && length <= open->source.size - offset;
}

static uint32_t vd_vhdx_parse_regions(vd_vhdx_open_state *open, const uint8_t *table)
{
    uint32_t count = vd_load_le32(table + VD_VHDX_REGION_ENTRY_COUNT_OFFSET);
    int have_bat = 0, have_metadata = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = table + VD_VHDX_REGION_HEADER_SIZE + (size_t)i * VD_VHDX_REGION_ENTRY_SIZE;
        uint64_t offset = vd_load_le64(entry + VD_VHDX_REGION_ENTRY_FILE_OFFSET_OFFSET);
        uint64_t length = vd_load_le32(entry + VD_VHDX_REGION_ENTRY_LENGTH_OFFSET);
        uint32_t flags = vd_load_le32(entry + VD_VHDX_REGION_ENTRY_FLAGS_OFFSET);
        int *seen;
        const char *name;
        if (memcmp(entry, vd_vhdx_guid_bat, 16) == 0) {
            seen = &have_bat;
            name = "BAT";
            open->bat_offset = offset;
            open->bat_length = length;
        } else if (memcmp(entry, vd_vhdx_guid_metadata, 16) == 0) {
            seen = &have_metadata;
            name = "metadata region";
            open->metadata_offset = offset;
            open->metadata_length = length;
        } else if (flags & VD_VHDX_REGION_REQUIRED) {
            return vd_fail(VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION,
                           "region table entry %" PRIu32 " is an unknown region marked required", i);
        } else {
            continue;
        }
        if (*seen)
            return vd_fail(VD_ERROR_FILE_CORRUPT, "the region table lists the %s twice", name);
        if (!vd_vhdx_region_placed_well(open, offset, length))
            return vd_fail(VD_ERROR_FILE_CORRUPT,
                           "region table entry for the %s (%" PRIu64 " bytes at offset %" PRIu64
                           ") is empty, off the 1 MiB alignment or outside the file", name, length, offset);
        *seen = 1;
    }
    if (!have_bat || !have_metadata)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the region table has no entry for the %s",
                       have_bat ? "metadata region" : "BAT");
    if (vd_vhdx_ranges_overlap(open->bat_offset, open->bat_length, open->metadata_offset,
                               open->metadata_length))
        return vd_fail(VD_ERROR_FILE_CORRUPT, "region table entry for the BAT overlaps the metadata region");
    if (vd_vhdx_ranges_overlap(open->bat_offset, open->bat_length, open->log_offset, open->log_length))
        return vd_fail(VD_ERROR_FILE_CORRUPT, "region table entry for the BAT overlaps the log");
    if (vd_vhdx_ranges_overlap(open->metadata_offset, open->metadata_length, open->log_offset,
                               open->log_length))
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "region table entry for the metadata region overlaps the log");
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_read_regions(vd_vhdx_open_state *open)
{
    uint8_t *table = malloc(VD_VHDX_REGION_TABLE_SIZE);
    if (table == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_structure_read(&open->source, "region table", VD_VHDX_REGION_TABLE1_OFFSET,
                                             table, VD_VHDX_REGION_TABLE_SIZE);
    const char *first_fault = status == VD_ERROR_SUCCESS ? vd_vhdx_region_table_fault(table) : NULL;
    if (first_fault != NULL) {
        status = vd_vhdx_structure_read(&open->source, "region table", VD_VHDX_REGION_TABLE2_OFFSET,
                                        table, VD_VHDX_REGION_TABLE_SIZE);
        const char *second_fault = status == VD_ERROR_SUCCESS ? vd_vhdx_region_table_fault(table) : NULL;
        if (second_fault != NULL)
            status = vd_fail(VD_ERROR_FILE_CORRUPT, "region table 1 %s, region table 2 %s", first_fault,
                             second_fault);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_parse_regions(open, table);
    free(table);
    return status;
}

/* ---- metadata (2.6) ----------------------------------------------------- */

static int vd_vhdx_range_order(const void *left, const void *right)
{
    uint32_t a = ((const vd_vhdx_range *)left)->offset, b = ((const vd_vhdx_range *)right)->offset;
    return (a > b) - (a < b);
}

vd_vhdx_range *vd_vhdx_item_ranges(const uint8_t (*entries)[VD_VHDX_METADATA_ENTRY_SIZE],
                                   size_t entry_count, size_t *count)
{
    vd_vhdx_range *ranges = malloc((entry_count + 1) * sizeof *ranges);
    if (ranges == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < entry_count; i++) {
        uint32_t length = vd_load_le32(entries[i] + VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET);
        if (length == 0)
            continue;   /* present but empty */
        ranges[used].offset = vd_load_le32(entries[i] + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET);
        ranges[used].length = length;
        used++;
    }
    qsort(ranges, used, sizeof *ranges, vd_vhdx_range_order);
    *count = used;
    return ranges;
}

uint32_t vd_vhdx_item_ranges_check(const uint8_t (*entries)[VD_VHDX_METADATA_ENTRY_SIZE],
                                   size_t entry_count, uint32_t region_length)
{
    size_t count;
    vd_vhdx_range *ranges = vd_vhdx_item_ranges(entries, entry_count, &count);
    if (ranges == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        uint32_t offset = ranges[i].offset, length = ranges[i].length;
        if (offset < VD_VHDX_METADATA_TABLE_SIZE || offset > region_length
            || length > region_length - offset)
            status = vd_fail(VD_ERROR_FILE_CORRUPT,
                             "a metadata item (%" PRIu32 " bytes at offset %" PRIu32
                             ") lies outside the metadata region's item area", length, offset);
        else if (i > 0 && (uint64_t)ranges[i - 1].offset + ranges[i - 1].length > offset)
            status = vd_fail(VD_ERROR_FILE_CORRUPT,
                             "metadata items at offsets %" PRIu32 " and %" PRIu32 " share bytes",
                             ranges[i - 1].offset, offset);
    }
    free(ranges);
    return status;
}

static uint32_t vd_vhdx_parse_metadata_table(vd_vhdx_open_state *open, const uint8_t *table, uint32_t count)
{
    uint32_t spans_status = vd_vhdx_item_ranges_check(
        (const uint8_t(*)[VD_VHDX_METADATA_ENTRY_SIZE])(table + VD_VHDX_METADATA_HEADER_SIZE), count,
        open->metadata_length);
    if (spans_status != VD_ERROR_SUCCESS)
        return spans_status;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = table + VD_VHDX_METADATA_HEADER_SIZE + (size_t)i * VD_VHDX_METADATA_ENTRY_SIZE;
        uint32_t offset = vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET);
        uint32_t length = vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET);
        uint32_t flags = vd_load_le32(entry + VD_VHDX_METADATA_ENTRY_FLAGS_OFFSET);
        int item = VD_VHDX_ITEM_COUNT;
        if (!(flags & VD_VHDX_METADATA_IS_USER)) {
            for (item = 0; item < VD_VHDX_ITEM_COUNT; item++) {
                if (memcmp(entry, vd_vhdx_items[item].guid, 16) == 0)
                    break;
            }
        }
        if (item == VD_VHDX_ITEM_COUNT) {
            if (flags & VD_VHDX_METADATA_IS_REQUIRED)
                return vd_fail(VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION,
                               "metadata table entry %" PRIu32 " is an unknown item marked required", i);
            continue;
        }
        const char *name = vd_vhdx_items[item].name;
        if (open->item_present[item])
            return vd_fail(VD_ERROR_FILE_CORRUPT, "the metadata table lists the %s item twice", name);
        if (length < vd_vhdx_items[item].length || length > VD_VHDX_METADATA_MAX_ITEM_LENGTH)
            return vd_fail(VD_ERROR_FILE_CORRUPT, "the %s metadata item is %" PRIu32 " bytes long", name,
                           length);
        if (offset < VD_VHDX_METADATA_TABLE_SIZE || offset > open->metadata_length
            || length > open->metadata_length - offset)
            return vd_fail(VD_ERROR_FILE_CORRUPT,
                           "the %s metadata item (%" PRIu32 " bytes at offset %" PRIu32
                           ") lies outside the metadata region", name, length, offset);
        open->item_present[item] = 1;
        open->item_offset[item] = offset;
        open->item_length[item] = length;
    }
    for (int item = 0; item < VD_VHDX_FIXED_ITEM_COUNT; item++) {
        if (!open->item_present[item])
            return vd_fail(VD_ERROR_FILE_CORRUPT, "the required %s metadata item is missing",
                           vd_vhdx_items[item].name);
    }
    return VD_ERROR_SUCCESS;
}

/* The fixed-size items, in one read when they sit close together (they
 * always do: writers pack them right after the table). */
static uint32_t vd_vhdx_read_fixed_items(vd_vhdx_open_state *open,
                                         uint8_t values[VD_VHDX_FIXED_ITEM_COUNT][16])
{
    uint32_t low = UINT32_MAX, high = 0;
    for (int item = 0; item < VD_VHDX_FIXED_ITEM_COUNT; item++) {
        uint32_t end = open->item_offset[item] + vd_vhdx_items[item].length;
        low = open->item_offset[item] < low ? open->item_offset[item] : low;
        high = end > high ? end : high;
    }
    uint8_t span[VD_VHDX_METADATA_FIRST_READ];
    if (high - low <= sizeof span) {
        uint32_t status = vd_vhdx_structure_read(&open->source, "metadata items", open->metadata_offset + low,
                                                 span, high - low);
        if (status != VD_ERROR_SUCCESS)
            return status;
        for (int item = 0; item < VD_VHDX_FIXED_ITEM_COUNT; item++)
            memcpy(values[item], span + (open->item_offset[item] - low), vd_vhdx_items[item].length);
        return VD_ERROR_SUCCESS;
    }
    for (int item = 0; item < VD_VHDX_FIXED_ITEM_COUNT; item++) {
        uint32_t status = vd_vhdx_structure_read(&open->source, vd_vhdx_items[item].name,
                                                 open->metadata_offset + open->item_offset[item],
                                                 values[item], vd_vhdx_items[item].length);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_check_parameters(vd_vhdx_open_state *open, uint8_t values[VD_VHDX_FIXED_ITEM_COUNT][16])
{
    open->block_size = vd_load_le32(values[VD_VHDX_ITEM_FILE_PARAMETERS]);
    open->file_flags = vd_load_le32(values[VD_VHDX_ITEM_FILE_PARAMETERS] + VD_VHDX_FILE_PARAMETERS_FLAGS_OFFSET);
    open->virtual_size = vd_load_le64(values[VD_VHDX_ITEM_VIRTUAL_DISK_SIZE]);
    open->logical_sector_size = vd_load_le32(values[VD_VHDX_ITEM_LOGICAL_SECTOR_SIZE]);
    open->physical_sector_size = vd_load_le32(values[VD_VHDX_ITEM_PHYSICAL_SECTOR_SIZE]);
    memcpy(open->page83.bytes, values[VD_VHDX_ITEM_PAGE83_DATA], 16);

    uint32_t block = open->block_size;
    if (block < VD_VHDX_MIN_BLOCK_SIZE || block > VD_VHDX_MAX_BLOCK_SIZE || (block & (block - 1)) != 0)
        return vd_fail(VD_ERROR_VHD_INVALID_BLOCK_SIZE,
                       "File Parameters give a block size of %" PRIu32 " bytes, not a power of two"
                       " from 1 MiB to 256 MiB", block);
    if ((open->logical_sector_size != 512 && open->logical_sector_size != 4096)
        || (open->physical_sector_size != 512 && open->physical_sector_size != 4096))
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "sector sizes %" PRIu32 " (logical) and %" PRIu32 " (physical): each must be 512 or 4096",
                       open->logical_sector_size, open->physical_sector_size);
    if (open->virtual_size == 0 || open->virtual_size > VD_VHDX_MAX_VIRTUAL_SIZE
        || open->virtual_size % open->logical_sector_size != 0)
        return vd_fail(VD_ERROR_VHD_INVALID_SIZE,
                       "Virtual Disk Size %" PRIu64 " is 0, above 64 TiB or not a multiple of the %" PRIu32
                       "-byte logical sector", open->virtual_size, open->logical_sector_size);
    return VD_ERROR_SUCCESS;
}

/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (braces optional) in UTF-16LE,
 * into Windows layout. */
static int vd_vhdx_parse_guid_text(const uint8_t *utf16, size_t units, vd_guid *guid)
{
    char text[36];
    if (units == 38) {
        if (vd_load_le16(utf16) != '{' || vd_load_le16(utf16 + 2 * 37) != '}')
            return 0;
        utf16 += 2;
        units = 36;
    }
    if (units != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        uint16_t unit = vd_load_le16(utf16 + 2 * i);
        if (unit >= 0x80)
            return 0;
        text[i] = (char)unit;
    }
    uint8_t canonical[16];
    size_t nibble = 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return 0;
            continue;
        }
        int value;
        char c = text[i];
        if (c >= '0' && c <= '9')
            value = c - '0';
        else if (c >= 'a' && c <= 'f')
            value = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            value = c - 'A' + 10;
        else
            return 0;
        if (nibble % 2 == 0)
            canonical[nibble / 2] = (uint8_t)(value << 4);
        else
            canonical[nibble / 2] |= (uint8_t)value;
        nibble++;
    }
    *guid = vd_guid_from_rfc4122(canonical);
    return 1;
}

static int vd_vhdx_key_is(const uint8_t *key, size_t units, const char *name)
{
    if (strlen(name) != units)
        return 0;
    for (size_t i = 0; i < units; i++) {
        if (vd_load_le16(key + 2 * i) != (uint8_t)name[i])
            return 0;
    }
    return 1;
}

static uint32_t vd_vhdx_locator_path(char **slot, const char *key, const uint8_t *value, size_t units)
{
    if (*slot != NULL)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator has two %s entries", key);
    if (units == 0)
        return VD_ERROR_SUCCESS;
    *slot = vd_utf16le_bytes_to_utf8(value, units);
    return *slot != NULL ? VD_ERROR_SUCCESS
                         : vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator's %s is not valid UTF-16", key);
}

/* 2.6.2.6: locator header, then key/value entries pointing into the item. */
static uint32_t vd_vhdx_parse_locator(vd_vhdx_open_state *open, const uint8_t *item, uint32_t length)
{
    if (length < VD_VHDX_LOCATOR_HEADER_SIZE)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator (%" PRIu32 " bytes) is shorter than its header",
                       length);
    if (memcmp(item, vd_vhdx_guid_locator_type, 16) != 0)
        return vd_fail(VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION,
                       "the parent locator's type is not the VHDX locator type");
    uint32_t count = vd_load_le16(item + VD_VHDX_LOCATOR_COUNT_OFFSET);
    if (VD_VHDX_LOCATOR_HEADER_SIZE + (uint64_t)count * VD_VHDX_LOCATOR_ENTRY_SIZE > length)
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "the parent locator's %" PRIu32 " entries do not fit its %" PRIu32 " bytes", count, length);
    int have_linkage = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = item + VD_VHDX_LOCATOR_HEADER_SIZE + (size_t)i * VD_VHDX_LOCATOR_ENTRY_SIZE;
        uint32_t key_offset = vd_load_le32(entry + VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET);
        uint32_t value_offset = vd_load_le32(entry + VD_VHDX_LOCATOR_VALUE_OFFSET_OFFSET);
        uint32_t key_length = vd_load_le16(entry + VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET);
        uint32_t value_length = vd_load_le16(entry + VD_VHDX_LOCATOR_VALUE_LENGTH_OFFSET);
        if (key_length == 0 || key_length % 2 != 0 || value_length % 2 != 0
            || key_offset > length || key_length > length - key_offset
            || value_offset > length || value_length > length - value_offset)
            return vd_fail(VD_ERROR_FILE_CORRUPT,
                           "parent locator entry %" PRIu32 " has an odd length or lies outside the locator", i);
        const uint8_t *key = item + key_offset, *value = item + value_offset;
        size_t key_units = key_length / 2, value_units = value_length / 2;
        uint32_t status = VD_ERROR_SUCCESS;
        if (vd_vhdx_key_is(key, key_units, "parent_linkage")) {
            if (have_linkage || !vd_vhdx_parse_guid_text(value, value_units, &open->parent_linkage))
                return vd_fail(VD_ERROR_FILE_CORRUPT,
                               "the parent locator's parent_linkage is repeated or not a GUID");
            have_linkage = 1;
        } else if (vd_vhdx_key_is(key, key_units, "parent_linkage2")) {
            if (open->has_parent_linkage2
                || !vd_vhdx_parse_guid_text(value, value_units, &open->parent_linkage2))
                return vd_fail(VD_ERROR_FILE_CORRUPT,
                               "the parent locator's parent_linkage2 is repeated or not a GUID");
            open->has_parent_linkage2 = 1;
        } else if (vd_vhdx_key_is(key, key_units, "relative_path")) {
            status = vd_vhdx_locator_path(&open->parent.relative_path, "relative_path", value, value_units);
        } else if (vd_vhdx_key_is(key, key_units, "volume_path")) {
            status = vd_vhdx_locator_path(&open->parent.volume_path, "volume_path", value, value_units);
        } else if (vd_vhdx_key_is(key, key_units, "absolute_win32_path")) {
            status = vd_vhdx_locator_path(&open->parent.absolute_path, "absolute_win32_path", value,
                                          value_units);
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return have_linkage ? VD_ERROR_SUCCESS
                        : vd_fail(VD_ERROR_FILE_CORRUPT, "the parent locator has no parent_linkage");
}

static uint32_t vd_vhdx_read_locator(vd_vhdx_open_state *open)
{
    if (!open->item_present[VD_VHDX_ITEM_PARENT_LOCATOR])
        return vd_fail(VD_ERROR_FILE_CORRUPT, "a differencing image without the Parent Locator metadata item");
    uint32_t length = open->item_length[VD_VHDX_ITEM_PARENT_LOCATOR];
    uint8_t *item = malloc(length ? length : 1);
    if (item == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_vhdx_structure_read(
        &open->source, "parent locator", open->metadata_offset + open->item_offset[VD_VHDX_ITEM_PARENT_LOCATOR],
        item, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_parse_locator(open, item, length);
    free(item);
    return status;
}

static uint32_t vd_vhdx_read_metadata(vd_vhdx_open_state *open)
{
    uint8_t first[VD_VHDX_METADATA_FIRST_READ];
    uint32_t status = vd_vhdx_structure_read(&open->source, "metadata table", open->metadata_offset, first,
                                             sizeof first);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (memcmp(first, VD_VHDX_METADATA_SIGNATURE, 8) != 0)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the metadata table's signature is missing");
    uint32_t count = vd_load_le16(first + VD_VHDX_METADATA_ENTRY_COUNT_OFFSET);
    if (count > VD_VHDX_METADATA_MAX_ENTRIES)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the metadata table claims %" PRIu32 " entries (at most %u)",
                       count, VD_VHDX_METADATA_MAX_ENTRIES);
    size_t table_length = VD_VHDX_METADATA_HEADER_SIZE + (size_t)count * VD_VHDX_METADATA_ENTRY_SIZE;
    if (table_length <= sizeof first) {
        status = vd_vhdx_parse_metadata_table(open, first, count);
    } else {
        uint8_t *table = malloc(table_length);
        if (table == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        status = vd_vhdx_structure_read(&open->source, "metadata table", open->metadata_offset, table,
                                        table_length);
        if (status == VD_ERROR_SUCCESS)
            status = vd_vhdx_parse_metadata_table(open, table, count);
        free(table);
    }
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint8_t values[VD_VHDX_FIXED_ITEM_COUNT][16];
    status = vd_vhdx_read_fixed_items(open, values);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_check_parameters(open, values);
    if (status == VD_ERROR_SUCCESS && (open->file_flags & VD_VHDX_HAS_PARENT))
        status = vd_vhdx_read_locator(open);
    return status;
}

/* ---- reads (2.4, 2.5) --------------------------------------------------- */

static uint32_t vd_vhdx_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                             uint64_t length);
static void vd_vhdx_release(vd_image *image);

static const vd_format_ops vd_vhdx_ops = {
    .read = vd_vhdx_read,
    .write = vd_vhdx_write,
    .unmap = vd_vhdx_unmap,
    .unmap_reads_zeros = 1,
    .flush = vd_vhdx_flush,
    .release = vd_vhdx_release,
    .map = vd_vhdx_map,
};

static vd_vhdx_source vd_vhdx_state_source(const vd_image *image, const vd_vhdx_state *state)
{
    vd_vhdx_source source = { &image->file, state->replay, state->data_size };
    return source;
}

/* ---- what updates build on (vhdx_internal.h) ----------------------------- */

uint32_t vd_vhdx_state_read(const vd_image *image, uint64_t offset, void *buffer, size_t length)
{
    vd_vhdx_source source = vd_vhdx_state_source(image, image->format_state);
    return vd_vhdx_structure_read(&source, "structure", offset, buffer, length);
}

uint32_t vd_vhdx_file_flush(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    uint32_t status = vd_file_flush(&image->file);
    if (status == VD_ERROR_SUCCESS)
        state->log_applied_unflushed = 0;
    return status;
}

uint32_t vd_vhdx_header_update(vd_image *image, const uint8_t *data_write_guid, const uint8_t log_guid[16])
{
    uint32_t status = vd_vhdx_header_stage(image, data_write_guid, log_guid);
    return status == VD_ERROR_SUCCESS ? vd_file_flush(&image->file) : status;
}

uint32_t vd_vhdx_header_stage(vd_image *image, const uint8_t *data_write_guid, const uint8_t log_guid[16])
{
    vd_vhdx_state *state = image->format_state;
    /* A header that no longer names the live entry must not reach the disk
     * before the entry's sectors in place. */
    if (state->log_applied_unflushed
        && memcmp(log_guid, state->header + VD_VHDX_HEADER_LOG_GUID_OFFSET, 16) != 0) {
        uint32_t flushed = vd_vhdx_file_flush(image);
        if (flushed != VD_ERROR_SUCCESS)
            return flushed;
    }
    uint64_t sequence = vd_load_le64(state->header + VD_VHDX_HEADER_SEQUENCE_OFFSET);
    if (sequence == UINT64_MAX)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the VHDX header sequence number %" PRIu64 " cannot advance",
                       sequence);
    uint8_t header[VD_VHDX_HEADER_SIZE];
    memcpy(header, state->header, sizeof header);
    vd_store_le64(header + VD_VHDX_HEADER_SEQUENCE_OFFSET, sequence + 1);
    if (!state->file_write_guid_fresh) {
        uint32_t status = vd_guid_random(header + VD_VHDX_HEADER_FILE_WRITE_GUID_OFFSET);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    if (data_write_guid != NULL)
        memcpy(header + VD_VHDX_HEADER_DATA_WRITE_GUID_OFFSET, data_write_guid, 16);
    memcpy(header + VD_VHDX_HEADER_LOG_GUID_OFFSET, log_guid, 16);
    uint64_t slot = state->header_slot == VD_VHDX_HEADER1_OFFSET ? VD_VHDX_HEADER2_OFFSET
                                                                 : VD_VHDX_HEADER1_OFFSET;
    uint32_t status = vd_vhdx_put_header(&image->file, header, slot);
    if (status != VD_ERROR_SUCCESS)
        return status;
    memcpy(state->header, header, sizeof header);
    state->header_slot = slot;
    state->file_write_guid_fresh = 1;
    state->log_live = !vd_vhdx_is_zero_guid(log_guid);
    return VD_ERROR_SUCCESS;
}

static vd_vhdx_bat_page *vd_vhdx_bat_directory(vd_vhdx_state *state)
{
    vd_vhdx_bat_page *pages = atomic_load_explicit(&state->bat_pages, memory_order_acquire);
    if (pages != NULL)
        return pages;
    vd_vhdx_bat_page *fresh = malloc(state->bat_page_count * sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    for (size_t i = 0; i < state->bat_page_count; i++)
        atomic_init(&fresh[i], NULL);
    if (atomic_compare_exchange_strong_explicit(&state->bat_pages, &pages, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);   /* another reader got there first; `pages` is theirs */
    return pages;
}

/* BAT entry `index`, reading its page on first use.  Concurrent readers may
 * both read a page; one copy is published, the other dropped. */
static uint32_t vd_vhdx_bat_entry_load(const vd_image *image, vd_vhdx_state *state,
                                       uint64_t index, uint64_t *entry)
{
    vd_vhdx_bat_page *pages = vd_vhdx_bat_directory(state);
    if (pages == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    size_t page_index = (size_t)(index / VD_VHDX_BAT_PAGE_ENTRIES);
    vd_vhdx_bat_value *page = atomic_load_explicit(&pages[page_index], memory_order_acquire);
    if (page == NULL) {
        uint64_t first = (uint64_t)page_index * VD_VHDX_BAT_PAGE_ENTRIES;
        size_t count = state->bat_entries - first < VD_VHDX_BAT_PAGE_ENTRIES
                     ? (size_t)(state->bat_entries - first) : VD_VHDX_BAT_PAGE_ENTRIES;
        uint8_t *raw = malloc(count * VD_VHDX_BAT_ENTRY_SIZE);
        vd_vhdx_bat_value *fresh = malloc(count * sizeof *fresh);
        if (raw == NULL || fresh == NULL) {
            free(raw);
            free(fresh);
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        }
        vd_vhdx_source source = vd_vhdx_state_source(image, state);
        uint32_t status = vd_vhdx_structure_read(&source, "BAT", state->bat_offset + first * VD_VHDX_BAT_ENTRY_SIZE,
                                                 raw, count * VD_VHDX_BAT_ENTRY_SIZE);
        if (status != VD_ERROR_SUCCESS) {
            free(raw);
            free(fresh);
            return status;
        }
        /* Entries are atomic: writers (vhdx_write.c) replace one while
         * readers of other blocks of the page read theirs. */
        for (size_t i = 0; i < count; i++)
            atomic_init(&fresh[i], vd_load_le64(raw + i * VD_VHDX_BAT_ENTRY_SIZE));
        free(raw);
        if (atomic_compare_exchange_strong_explicit(&pages[page_index], &page, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            page = fresh;
        else
            free(fresh);
    }
    *entry = atomic_load_explicit(&page[index % VD_VHDX_BAT_PAGE_ENTRIES], memory_order_acquire);
    return VD_ERROR_SUCCESS;
}

/* The same; a page read already, as for every read and write but a block's
 * first, costs three atomic loads, inline. */
static inline uint32_t vd_vhdx_bat_entry(const vd_image *image, vd_vhdx_state *state,
                                         uint64_t index, uint64_t *entry)
{
    vd_vhdx_bat_page *pages = atomic_load_explicit(&state->bat_pages, memory_order_acquire);
    vd_vhdx_bat_value *page = pages == NULL ? NULL
        : atomic_load_explicit(&pages[index / VD_VHDX_BAT_PAGE_ENTRIES], memory_order_acquire);
    if (page == NULL)
        return vd_vhdx_bat_entry_load(image, state, index, entry);
    *entry = atomic_load_explicit(&page[index % VD_VHDX_BAT_PAGE_ENTRIES], memory_order_acquire);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_bat_get(vd_image *image, uint64_t index, uint64_t *entry)
{
    vd_vhdx_state *state = image->format_state;
    if (index >= state->bat_entries)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                       "BAT entry %" PRIu64 " is past the BAT's %" PRIu64 " entries", index, state->bat_entries);
    return vd_vhdx_bat_entry(image, state, index, entry);
}

void vd_vhdx_bat_set(vd_image *image, uint64_t index, uint64_t entry)
{
    vd_vhdx_state *state = image->format_state;
    vd_vhdx_bat_page *pages = atomic_load_explicit(&state->bat_pages, memory_order_acquire);
    vd_vhdx_bat_value *page = atomic_load_explicit(&pages[index / VD_VHDX_BAT_PAGE_ENTRIES],
                                                   memory_order_acquire);
    atomic_store_explicit(&page[index % VD_VHDX_BAT_PAGE_ENTRIES], entry, memory_order_release);
}

uint32_t vd_vhdx_block_offset(const vd_vhdx_state *state, uint64_t index, uint64_t entry,
                                     uint64_t bytes, uint64_t *offset)
{
    uint64_t start = (entry >> VD_VHDX_BAT_OFFSET_SHIFT) * VD_VHDX_MIB;
    if (start < VD_VHDX_HEADER_SECTION_SIZE)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                       "BAT entry %" PRIu64 " points into the header section (offset %" PRIu64 ")", index, start);
    if (start > state->data_size || bytes > state->data_size - start)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                       "BAT entry %" PRIu64 " points past the end of the file (offset %" PRIu64 ")", index, start);
    *offset = start;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_read_parent(vd_image *parent, uint64_t offset, uint8_t *buffer, uint64_t length)
{
    uint64_t available = 0;
    if (parent != NULL && offset < parent->virtual_size)
        available = parent->virtual_size - offset < length ? parent->virtual_size - offset : length;
    if (available > 0) {
        /* A parent that is itself differencing is an image whose read op
         * reaches its own ancestors (the chain layer builds it so). */
        uint32_t status = parent->ops->read(parent, NULL, offset, buffer, available);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    memset(buffer + available, 0, (size_t)(length - available));
    return VD_ERROR_SUCCESS;
}

typedef struct vd_vhdx_bitmap_window {
    vd_image *image;
    uint64_t file_offset;         /* of the sector bitmap block */
    uint64_t first_byte;          /* bitmap bytes [first_byte, first_byte + count) are loaded */
    size_t count;
    uint8_t bytes[VD_VHDX_BITMAP_WINDOW];
} vd_vhdx_bitmap_window;

/* Bit of chunk sector `sector` (LSB first: bit 0 of byte 0 is sector 0;
 * set = in this file, clear = in the parent), loading bitmap bytes as the
 * scan moves forward. */
static uint32_t vd_vhdx_bitmap_bit(vd_vhdx_bitmap_window *window, uint64_t sector, int *bit)
{
    uint64_t byte = sector / 8;
    if (window->count == 0 || byte < window->first_byte || byte >= window->first_byte + window->count) {
        uint64_t remaining = VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE - byte;
        window->first_byte = byte;
        window->count = remaining < sizeof window->bytes ? (size_t)remaining : sizeof window->bytes;
        /* With the bits that writes since the last flush set (vhdx_pending.h). */
        uint32_t status = vd_vhdx_pending_read(window->image, window->file_offset + byte, window->bytes,
                                               window->count);
        if (status != VD_ERROR_SUCCESS) {
            window->count = 0;
            return status;
        }
    }
    *bit = (window->bytes[byte - window->first_byte] >> (sector % 8)) & 1;
    return VD_ERROR_SUCCESS;
}

/* A PARTIALLY_PRESENT block of a differencing image: runs of sectors come
 * from this file or from the parent as the chunk's sector bitmap says. */
static uint32_t vd_vhdx_read_partial(vd_image *image, vd_vhdx_state *state, vd_image *parent,
                                     uint64_t block, uint64_t payload_offset, uint64_t within,
                                     uint8_t *buffer, uint64_t length)
{
    uint64_t chunk = block / state->chunk_ratio;
    uint64_t bitmap_index = chunk * (state->chunk_ratio + 1) + state->chunk_ratio;
    uint64_t bitmap_entry;
    uint32_t status = vd_vhdx_bat_entry(image, state, bitmap_index, &bitmap_entry);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if ((bitmap_entry & VD_VHDX_BAT_STATE_MASK) != VD_VHDX_SB_PRESENT
        || (bitmap_entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
        return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                       "BAT entry %" PRIu64 " (the sector bitmap of a partially present block) is not"
                       " SB_BLOCK_PRESENT or has reserved bits set", bitmap_index);
    vd_vhdx_bitmap_window *window = malloc(sizeof *window);
    if (window == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    window->image = image;
    window->count = 0;
    status = vd_vhdx_block_offset(state, bitmap_index, bitmap_entry, VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE,
                                  &window->file_offset);

    vd_vhdx_source source = vd_vhdx_state_source(image, state);
    uint32_t sector_size = state->logical_sector_size;
    uint64_t chunk_first_sector = (block % state->chunk_ratio) * (state->block_size / sector_size);
    uint64_t position = within, end = within + length;
    while (status == VD_ERROR_SUCCESS && position < end) {
        uint64_t sector = position / sector_size;
        int present, next_present;
        status = vd_vhdx_bitmap_bit(window, chunk_first_sector + sector, &present);
        uint64_t run_end_sector = sector + 1;
        while (status == VD_ERROR_SUCCESS && run_end_sector * sector_size < end) {
            status = vd_vhdx_bitmap_bit(window, chunk_first_sector + run_end_sector, &next_present);
            if (status != VD_ERROR_SUCCESS || next_present != present)
                break;
            run_end_sector++;
        }
        if (status != VD_ERROR_SUCCESS)
            break;
        uint64_t run_end = run_end_sector * sector_size < end ? run_end_sector * sector_size : end;
        uint8_t *target = buffer + (position - within);
        if (present)
            status = vd_vhdx_source_read(&source, payload_offset + position, target, (size_t)(run_end - position));
        else
            status = vd_vhdx_read_parent(parent, block * state->block_size + position, target, run_end - position);
        position = run_end;
    }
    free(window);
    return status;
}

static uint32_t vd_vhdx_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                             uint64_t length)
{
    vd_vhdx_state *state = image->format_state;
    if (offset > state->virtual_size || length > state->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    uint8_t *out = buffer;
    while (length > 0) {
        uint64_t block = offset / state->block_size;
        uint64_t within = offset % state->block_size;
        uint64_t count = state->block_size - within < length ? state->block_size - within : length;
        uint64_t entry, index = vd_vhdx_payload_index(state, block);
        uint32_t status = vd_vhdx_bat_entry(image, state, index, &entry);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if ((entry & VD_VHDX_BAT_RESERVED_MASK) != 0)
            return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has reserved bits set",
                           index);
        uint64_t block_start = block * state->block_size;
        uint64_t block_bytes = state->virtual_size - block_start < state->block_size
                             ? state->virtual_size - block_start : state->block_size;
        uint64_t payload_offset = 0;
        switch (entry & VD_VHDX_BAT_STATE_MASK) {
        case VD_VHDX_PAYLOAD_FULLY_PRESENT: {
            status = vd_vhdx_block_offset(state, index, entry, block_bytes, &payload_offset);
            if (status == VD_ERROR_SUCCESS) {
                vd_vhdx_source source = vd_vhdx_state_source(image, state);
                status = vd_vhdx_source_read(&source, payload_offset + within, out, (size_t)count);
            }
            break;
        }
        case VD_VHDX_PAYLOAD_PARTIALLY_PRESENT:
            if (!state->differencing)
                return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
                               "BAT entry %" PRIu64 " is PARTIALLY_PRESENT in an image without a parent", index);
            status = vd_vhdx_block_offset(state, index, entry, block_bytes, &payload_offset);
            if (status == VD_ERROR_SUCCESS)
                status = vd_vhdx_read_partial(image, state, parent, block, payload_offset, within, out, count);
            break;
        case VD_VHDX_PAYLOAD_NOT_PRESENT:
            /* 2.5.1.1: a differencing file's parent holds these blocks; in
             * a dynamic or fixed file their content is undefined, and zeros
             * are one of the answers the spec allows (qemu gives them too). */
            if (state->differencing)
                status = vd_vhdx_read_parent(parent, offset, out, count);
            else
                memset(out, 0, (size_t)count);
            break;
        case VD_VHDX_PAYLOAD_UNDEFINED:
        case VD_VHDX_PAYLOAD_UNMAPPED:
            /* Undefined content in every file type, the parent not
             * consulted: zeros, which leak nothing a block held before. */
        case VD_VHDX_PAYLOAD_ZERO:
            memset(out, 0, (size_t)count);
            break;
        default:
            return vd_fail(VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, "BAT entry %" PRIu64 " has the reserved state %u",
                           index, (unsigned)(entry & VD_VHDX_BAT_STATE_MASK));
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
        out += count;
        offset += count;
        length -= count;
    }
    return VD_ERROR_SUCCESS;
}

/* At release: a live log entry retired by a header with LogGuid zero, so
 * that the file needs no replay (other readers refuse a read-only open of
 * one that does).  Only while that header is still the file's current
 * one: a reopen of the file may have taken the log over.  A failure leaves
 * the entry to replay at the next open. */
static void vd_vhdx_retire_log(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (!state->log_live || !image->file.writable || state->update_failure != VD_ERROR_SUCCESS)
        return;
    uint8_t on_disk[VD_VHDX_HEADER_SIZE];
    if (vd_file_read(&image->file, state->header_slot, on_disk, sizeof on_disk) != VD_ERROR_SUCCESS
        || memcmp(on_disk, state->header, sizeof on_disk) != 0)
        return;
    static const uint8_t no_log[16];
    (void)vd_vhdx_header_update(image, NULL, no_log);
}

static void vd_vhdx_release(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    if (state == NULL)
        return;
    vd_vhdx_pending_release(image);
    vd_vhdx_retire_log(image);
    vd_vhdx_bat_page *pages = atomic_load_explicit(&state->bat_pages, memory_order_acquire);
    if (pages != NULL) {
        for (size_t i = 0; i < state->bat_page_count; i++)
            free(atomic_load_explicit(&pages[i], memory_order_acquire));
        free(pages);
    }
    vd_vhdx_replay_free(state->replay);
    pthread_mutex_destroy(&state->allocation_lock);
    free(state);
    image->format_state = NULL;
}

/* ---- open --------------------------------------------------------------- */

int vd_vhdx_probe(const vd_file *file)
{
    uint8_t signature[VD_VHDX_SIGNATURE_SIZE];
    return file->size >= sizeof signature
        && vd_file_read(file, 0, signature, sizeof signature) == VD_ERROR_SUCCESS
        && memcmp(signature, VD_VHDX_SIGNATURE, sizeof signature) == 0;
}

/* The BAT layout of 2.5: one sector bitmap entry after every chunk_ratio
 * payload entries; a differencing file also needs the bitmap entry of its
 * last chunk. */
static uint32_t vd_vhdx_make_state(const vd_vhdx_open_state *open, vd_vhdx_state **state_out)
{
    uint64_t payload_blocks = (open->virtual_size + open->block_size - 1) / open->block_size;
    uint32_t chunk_ratio = (uint32_t)((VD_VHDX_SECTORS_PER_CHUNK * open->logical_sector_size) / open->block_size);
    uint64_t bitmap_blocks = (payload_blocks + chunk_ratio - 1) / chunk_ratio;
    int differencing = (open->file_flags & VD_VHDX_HAS_PARENT) != 0;
    uint64_t entries = differencing ? bitmap_blocks * (chunk_ratio + 1)
                                    : payload_blocks + (payload_blocks - 1) / chunk_ratio;
    if (entries > open->bat_length / VD_VHDX_BAT_ENTRY_SIZE)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the BAT region (%" PRIu64 " bytes) is too small for the disk's %" PRIu64
                       " entries", open->bat_length, entries);

    vd_vhdx_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    state->replay = open->replay;
    state->data_size = open->source.size;
    state->virtual_size = open->virtual_size;
    state->bat_offset = open->bat_offset;
    state->bat_entries = entries;
    state->bat_length = open->bat_length;
    state->block_size = open->block_size;
    state->chunk_ratio = chunk_ratio;
    state->logical_sector_size = open->logical_sector_size;
    state->differencing = differencing;
    state->has_parent_linkage2 = open->has_parent_linkage2;
    state->parent_linkage2 = open->parent_linkage2;
    state->bat_page_count = (size_t)((entries + VD_VHDX_BAT_PAGE_ENTRIES - 1) / VD_VHDX_BAT_PAGE_ENTRIES);
    atomic_init(&state->bat_pages, NULL);
    memcpy(state->header, open->header, VD_VHDX_HEADER_SIZE);
    state->header_slot = open->header_slot;
    state->log_offset = open->log_offset;
    state->log_length = open->log_length;
    state->metadata_offset = open->metadata_offset;
    state->metadata_length = (uint32_t)open->metadata_length;
    state->file_write_guid_fresh = open->file_write_guid_fresh;
    if (pthread_mutex_init(&state->allocation_lock, NULL) != 0) {
        free(state);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    *state_out = state;
    return VD_ERROR_SUCCESS;
}

static void vd_vhdx_fill_image(vd_image *image, vd_vhdx_open_state *open, vd_vhdx_state *state)
{
    int differencing = state->differencing;
    int fixed = !differencing && (open->file_flags & VD_VHDX_LEAVE_BLOCKS_ALLOCATED);
    image->device = VD_DEVICE_VHDX;
    image->subtype = differencing ? VD_SUBTYPE_DIFFERENCING : fixed ? VD_SUBTYPE_FIXED : VD_SUBTYPE_DYNAMIC;
    image->virtual_size = open->virtual_size;
    image->block_size = fixed ? 0 : open->block_size;
    image->logical_sector_size = open->logical_sector_size;
    image->physical_sector_size = open->physical_sector_size;
    memcpy(image->identifier.bytes, open->header + VD_VHDX_HEADER_DATA_WRITE_GUID_OFFSET, 16);
    image->virtual_disk_id = open->page83;
    image->has_parent = differencing;
    memset(&image->parent_identifier, 0, sizeof image->parent_identifier);
    image->has_parent_identifier2 = 0;
    if (differencing) {
        image->parent_identifier = open->parent_linkage;
        image->has_parent_identifier2 = open->has_parent_linkage2;
        image->parent_identifier2 = open->parent_linkage2;
    }
    image->parent_timestamp = 0;
    image->parent = open->parent;
    image->is_4k_aligned = 1;
    image->smallest_safe_virtual_size = open->virtual_size;
    image->fragmentation_percent = 0;
    image->ops = &vd_vhdx_ops;
    image->format_state = state;
}

static void vd_vhdx_open_cleanup(vd_vhdx_open_state *open)
{
    vd_vhdx_replay_free(open->replay);
    free(open->parent.relative_path);
    free(open->parent.absolute_path);
    free(open->parent.volume_path);
}

/* Opens `file` into `image`; `applied_header` as in vd_vhdx_open_state. */
static uint32_t vd_vhdx_open_after(vd_file *file, vd_image *image, const uint8_t *applied_header)
{
    if (file == NULL || image == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    if (!vd_vhdx_probe(file))
        return vd_fail(VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK, "the file does not start with the VHDX signature");
    if (file->size < VD_VHDX_HEADER_SECTION_SIZE)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "the file (%" PRIu64 " bytes) is shorter than the VHDX header section",
                       file->size);

    vd_vhdx_open_state *open = calloc(1, sizeof *open);
    if (open == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    open->source.file = file;
    open->source.size = file->size;
    open->applied_header = applied_header;
    vd_vhdx_state *state = NULL;
    uint32_t status = vd_vhdx_read_headers(open);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_handle_log(open, file);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_read_regions(open);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_read_metadata(open);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_make_state(open, &state);
    if (status != VD_ERROR_SUCCESS) {
        vd_vhdx_open_cleanup(open);
        free(open);
        return status;
    }

    vd_vhdx_fill_image(image, open, state);
    free(open);   /* its replay and strings now belong to the image */
    if (file != &image->file) {
        image->file = *file;
        file->fd = -1;
        file->path = NULL;
        file->size = 0;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_open(vd_file *file, vd_image *image)
{
    return vd_vhdx_open_after(file, image, NULL);
}

uint32_t vd_vhdx_reopen(vd_image *old, vd_file *file, vd_image *fresh)
{
    vd_vhdx_state *was = old->format_state;
    uint32_t status = vd_vhdx_open_after(file, fresh, was->log_live ? was->header : NULL);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_vhdx_state *state = fresh->format_state;
    state->log_sequence = was->log_sequence;
    state->log_reserved = was->log_reserved;
    state->file_write_guid_fresh |= was->file_write_guid_fresh;
    if (memcmp(state->header, was->header, VD_VHDX_HEADER_SIZE) == 0) {
        state->log_live = was->log_live;
        state->log_applied_unflushed = was->log_applied_unflushed;
        was->log_live = was->log_applied_unflushed = 0;
    }
    return VD_ERROR_SUCCESS;
}
