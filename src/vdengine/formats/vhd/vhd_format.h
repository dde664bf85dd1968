/* The VHD on-disk format: constants, field offsets and the parsed forms of
 * the footer and the dynamic disk header, shared by the reader (vhd.c), the
 * geometry calculation (vhd_geometry.c) and whatever writes VHD files.
 *
 * Source: Microsoft "Virtual Hard Disk Image Format Specification" 1.0.
 * Every integer in the file is big-endian (endian.h), except the UTF-16
 * parent locator data, which Windows writes little-endian. */
#ifndef VDENGINE_VHD_FORMAT_H
#define VDENGINE_VHD_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "base/guid.h"
#include "disk/image.h"

#define VD_VHD_SECTOR_SIZE        512u
#define VD_VHD_FOOTER_SIZE        512u
/* Virtual PC releases before 2004 wrote the footer one byte short (the
 * last reserved byte is missing); readers accept both. */
#define VD_VHD_SHORT_FOOTER_SIZE  511u
#define VD_VHD_HEADER_SIZE       1024u

#define VD_VHD_FOOTER_COOKIE "conectix"
#define VD_VHD_HEADER_COOKIE "cxsparse"
#define VD_VHD_COOKIE_SIZE 8u

#define VD_VHD_VERSION_1_0 0x00010000u   /* footer and dynamic header alike */

/* Footer field offsets. */
#define VD_VHD_FOOTER_COOKIE_OFFSET          0u
#define VD_VHD_FOOTER_FEATURES_OFFSET        8u
#define VD_VHD_FOOTER_VERSION_OFFSET        12u
#define VD_VHD_FOOTER_DATA_OFFSET_OFFSET    16u
#define VD_VHD_FOOTER_TIMESTAMP_OFFSET      24u
#define VD_VHD_FOOTER_CREATOR_APP_OFFSET    28u
#define VD_VHD_FOOTER_CREATOR_VER_OFFSET    32u
#define VD_VHD_FOOTER_CREATOR_HOST_OFFSET   36u
#define VD_VHD_FOOTER_ORIGINAL_SIZE_OFFSET  40u
#define VD_VHD_FOOTER_CURRENT_SIZE_OFFSET   48u
#define VD_VHD_FOOTER_GEOMETRY_OFFSET       56u   /* u16 cylinders, u8 heads, u8 sectors */
#define VD_VHD_FOOTER_DISK_TYPE_OFFSET      60u
#define VD_VHD_FOOTER_CHECKSUM_OFFSET       64u
#define VD_VHD_FOOTER_UNIQUE_ID_OFFSET      68u
#define VD_VHD_FOOTER_SAVED_STATE_OFFSET    84u

/* Footer feature bits.  The "reserved" bit must always be set by writers;
 * readers do not insist on it, since nothing depends on it. */
#define VD_VHD_FEATURE_TEMPORARY 0x00000001u
#define VD_VHD_FEATURE_RESERVED  0x00000002u
#define VD_VHD_FEATURES_KNOWN    (VD_VHD_FEATURE_TEMPORARY | VD_VHD_FEATURE_RESERVED)

/* Footer disk types (the provider subtypes of GetVirtualDiskInformation). */
#define VD_VHD_TYPE_FIXED        2u
#define VD_VHD_TYPE_DYNAMIC      3u
#define VD_VHD_TYPE_DIFFERENCING 4u

/* Fixed disks have no dynamic header: the spec's text says 0xFFFFFFFF,
 * Windows and qemu write all 64 bits set. */
#define VD_VHD_NO_DATA_OFFSET UINT64_C(0xFFFFFFFFFFFFFFFF)

/* Creator host OS "Wi2k", the value every Windows-compatible writer uses. */
#define VD_VHD_HOST_WINDOWS 0x5769326Bu

/* Largest virtual size: 2040 GiB (Virtual Server's documented limit; qemu
 * stops at the same 0xFF000000 sectors). */
#define VD_VHD_MAX_SIZE (UINT64_C(2040) << 30)

/* Dynamic disk header field offsets. */
#define VD_VHD_HEADER_COOKIE_OFFSET         0u
#define VD_VHD_HEADER_DATA_OFFSET_OFFSET    8u
#define VD_VHD_HEADER_TABLE_OFFSET_OFFSET  16u
#define VD_VHD_HEADER_VERSION_OFFSET       24u
#define VD_VHD_HEADER_MAX_ENTRIES_OFFSET   28u
#define VD_VHD_HEADER_BLOCK_SIZE_OFFSET    32u
#define VD_VHD_HEADER_CHECKSUM_OFFSET      36u
#define VD_VHD_HEADER_PARENT_ID_OFFSET     40u
#define VD_VHD_HEADER_PARENT_TIME_OFFSET   56u
#define VD_VHD_HEADER_PARENT_NAME_OFFSET   64u   /* UTF-16 big-endian, NUL padded */
#define VD_VHD_HEADER_PARENT_NAME_SIZE    512u
#define VD_VHD_HEADER_LOCATORS_OFFSET     576u

/* Block sizes a reader accepts: powers of two from one sector (the spec's
 * minimum) to 256 MiB, which keeps a block's sector bitmap within 64 KiB.
 * Windows writes 512 KiB or 2 MiB (the spec's default). */
#define VD_VHD_MIN_BLOCK_SIZE      512u
#define VD_VHD_MAX_BLOCK_SIZE      (256u << 20)
#define VD_VHD_DEFAULT_BLOCK_SIZE  (2u << 20)
#define VD_VHD_SMALL_BLOCK_SIZE    (512u << 10)   /* the other size Windows writes */

/* Block allocation table: one u32 sector offset per block. */
#define VD_VHD_BAT_ENTRY_SIZE   4u
#define VD_VHD_BAT_UNALLOCATED  0xFFFFFFFFu

/* Parent locator entries: 8 of 24 bytes each in the dynamic header. */
#define VD_VHD_LOCATOR_COUNT          8u
#define VD_VHD_LOCATOR_ENTRY_SIZE    24u
#define VD_VHD_LOCATOR_CODE_OFFSET    0u
#define VD_VHD_LOCATOR_SPACE_OFFSET   4u
#define VD_VHD_LOCATOR_LENGTH_OFFSET  8u
#define VD_VHD_LOCATOR_DATA_OFFSET   16u

/* Platform codes.  W2ku/W2ru hold UTF-16LE Windows paths (absolute, and
 * relative to the child's directory); Wi2k/Wi2r are their deprecated
 * predecessors, Mac and MacX name the parent in Mac OS terms. */
#define VD_VHD_PLATFORM_NONE 0x00000000u
#define VD_VHD_PLATFORM_WI2R 0x57693272u
#define VD_VHD_PLATFORM_WI2K 0x5769326Bu
#define VD_VHD_PLATFORM_W2RU 0x57327275u
#define VD_VHD_PLATFORM_W2KU 0x57326B75u
#define VD_VHD_PLATFORM_MAC  0x4D616320u
#define VD_VHD_PLATFORM_MACX 0x4D616358u

/* Longest locator path read: a Windows path is at most 32767 UTF-16 units. */
#define VD_VHD_MAX_LOCATOR_BYTES 65534u

/* The footer, decoded.  unique_id keeps the file's byte order (see
 * vd_vhd_guid_from_disk for the Windows layout). */
typedef struct vd_vhd_footer {
    uint32_t features;
    uint32_t version;
    uint64_t data_offset;
    uint32_t timestamp;
    uint32_t creator_application;
    uint32_t creator_version;
    uint32_t creator_host_os;
    uint64_t original_size;
    uint64_t current_size;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors_per_track;
    uint32_t disk_type;
    uint32_t checksum;
    uint8_t unique_id[16];
    uint8_t saved_state;
} vd_vhd_footer;

/* The dynamic disk header, decoded, without the parent name and locators
 * (which only differencing disks use and which are read on demand). */
typedef struct vd_vhd_dynamic_header {
    uint64_t table_offset;
    uint32_t version;
    uint32_t max_table_entries;
    uint32_t block_size;
    uint32_t checksum;
    uint8_t parent_unique_id[16];
    uint32_t parent_timestamp;
} vd_vhd_dynamic_header;

/* One's complement of the byte sum of `structure`, the checksum field
 * (4 bytes at `checksum_offset`) counted as zero.  Footer and dynamic
 * header use the same rule. */
static inline uint32_t vd_vhd_checksum(const uint8_t *structure, size_t length,
                                       size_t checksum_offset)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < length; i++) {
        if (i < checksum_offset || i >= checksum_offset + 4)
            sum += structure[i];
    }
    return ~sum;
}

/* The unique ids of a VHD (the footer's, and the parent's in the dynamic
 * header) are RFC 4122 UUIDs stored, like every VHD field, in network byte
 * order: the text form of the id is the 16 bytes in file order, and a
 * version-4 id shows its version in the high nibble of byte 6.  vd_guid
 * holds a Windows GUID, whose Data1, Data2 and Data3 are little-endian
 * numbers that StringFromGUID2 prints most significant byte first.  The
 * GUID that prints as the same text as the file's UUID is therefore the
 * file's bytes with those three fields reversed; a plain copy would print
 * them scrambled and give an identifier no other reader shows.  The child's
 * parent id goes through the same conversion, so it compares equal to the
 * parent's identifier.  The swap is its own inverse: writers use it too. */
static inline vd_guid vd_vhd_guid_from_disk(const uint8_t disk[16])
{
    return vd_guid_from_rfc4122(disk);
}

/* Finds the footer an opened VHD trusts (vhd.c's recovery rules): decoded in
 * *footer, as 512 bytes in `raw` (a 511-byte footer completed with its zero
 * last byte), and *tail_length, the bytes it occupies at the end of the
 * file (512 or 511; 0 when the end footer is damaged and the copy at offset
 * 0 is used).  Returns the code open would. */
uint32_t vd_vhd_find_footer(const vd_file *file, vd_vhd_footer *footer,
                            uint8_t raw[VD_VHD_FOOTER_SIZE], uint64_t *tail_length);

/* ---- building structures: the creator (vhd_create.c) and the updates
 * (vhd_update.c) write the same fields the same way; defined in
 * vhd_create.c. */

/* One parent locator to write: its platform code and UTF-16LE bytes. */
typedef struct vd_vhd_locator {
    uint32_t code;
    uint8_t *data;        /* malloc'd; NULL for an empty locator */
    uint32_t length;      /* bytes, without terminator */
    uint64_t offset;      /* where its sectors start */
    uint32_t space;       /* bytes reserved: whole sectors */
} vd_vhd_locator;

/* A differencing disk's locators: W2ku (absolute) and W2ru (relative). */
#define VD_VHD_PARENT_LOCATORS 2u

/* Makes the W2ku locator of `absolute_path` and the W2ru locator of
 * `relative_path` (UTF-8; either may be NULL, leaving its locator empty),
 * places their data one after another from `start` (whole sectors each)
 * and returns it as one zero-padded block: *data (malloc'd, NULL when both
 * are empty) of *bytes bytes, to be written at `start`.  Free the
 * locators with vd_vhd_locators_free, *data with free. */
uint32_t vd_vhd_parent_locators(const char *absolute_path, const char *relative_path,
                                uint64_t start, vd_vhd_locator locators[VD_VHD_PARENT_LOCATORS],
                                uint8_t **data, uint64_t *bytes);
void vd_vhd_locators_free(vd_vhd_locator *locators, size_t count);

/* Stores `id` (Windows layout) as the footer's UniqueId and seals the
 * footer with its checksum. */
void vd_vhd_footer_store_unique_id(uint8_t footer[VD_VHD_FOOTER_SIZE], const vd_guid *id);

/* Writes a differencing header's parent fields: ParentUniqueId (`parent_id`
 * in Windows layout), ParentTimeStamp, Parent Unicode Name (from
 * `absolute_path`) and the locator table, whose entries are replaced by the
 * non-empty `locators`.  The checksum is left to vd_vhd_header_seal. */
void vd_vhd_header_store_parent(uint8_t header[VD_VHD_HEADER_SIZE], const vd_guid *parent_id,
                                uint32_t parent_timestamp, const char *absolute_path,
                                const vd_vhd_locator *locators, size_t locator_count);

/* Stores the dynamic header's checksum. */
void vd_vhd_header_seal(uint8_t header[VD_VHD_HEADER_SIZE]);

/* Reads the dynamic header at `offset` and checks its cookie and checksum
 * (vhd_update.c). */
uint32_t vd_vhd_read_header(const vd_file *file, uint64_t offset, uint8_t header[VD_VHD_HEADER_SIZE]);

/* The ParentTimeStamp a child records for `parent`: its file's
 * modification time, in seconds since 2000-01-01 UTC. */
uint32_t vd_vhd_parent_timestamp(const vd_image *parent);

/* CHS geometry of a disk of `size` bytes by the spec's appendix algorithm.
 * The product C*H*S*512 rounds down and can be smaller than `size`; the
 * footer's Current Size, not the geometry, is the disk's size. */
void vd_vhd_chs(uint64_t size, uint16_t *cylinders, uint8_t *heads, uint8_t *sectors);

/* Walks the block allocation table of an opened dynamic or differencing VHD
 * and reports whether every allocated block's data starts on a 4 KiB
 * boundary, and a fragmentation percentage (see vhd.c).  Fixed disks answer
 * aligned, 0 %.  Reads the table if no read has loaded it yet. */
uint32_t vd_vhd_block_layout(vd_image *image, int *is_4k_aligned,
                             uint32_t *fragmentation_percent);

#endif
