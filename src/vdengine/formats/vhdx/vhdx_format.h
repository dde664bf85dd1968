/* The VHDX on-disk format: sizes, offsets, signatures, the GUIDs of the
 * known regions and metadata items, shared by the reader (vhdx.c), the log
 * (vhdx_log.c) and whatever writes VHDX files.
 *
 * Source: [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format", cited by
 * section.  Every integer is little-endian (endian.h); GUIDs are stored in
 * Windows layout (Data1..Data3 little-endian, Data4 as bytes); strings are
 * UTF-16LE. */
#ifndef VDENGINE_VHDX_FORMAT_H
#define VDENGINE_VHDX_FORMAT_H

#include <stdint.h>

#define VD_VHDX_KIB UINT64_C(1024)
#define VD_VHDX_MIB (UINT64_C(1024) * 1024)

/* 2.1 Layout: everything after the header section is 1 MiB aligned. */
#define VD_VHDX_ALIGNMENT            VD_VHDX_MIB
#define VD_VHDX_HEADER_SECTION_SIZE  VD_VHDX_MIB

/* 2.2.1 File type identifier, at offset 0. */
#define VD_VHDX_SIGNATURE       "vhdxfile"
#define VD_VHDX_SIGNATURE_SIZE  8u

/* 2.2.2 Headers: two copies, 4 KiB each, at 64 KiB and 128 KiB. */
#define VD_VHDX_HEADER1_OFFSET   (64 * VD_VHDX_KIB)
#define VD_VHDX_HEADER2_OFFSET   (128 * VD_VHDX_KIB)
#define VD_VHDX_HEADER_SIZE      4096u
#define VD_VHDX_HEADER_SIGNATURE "head"
#define VD_VHDX_HEADER_CHECKSUM_OFFSET        4u
#define VD_VHDX_HEADER_SEQUENCE_OFFSET        8u
#define VD_VHDX_HEADER_FILE_WRITE_GUID_OFFSET 16u
#define VD_VHDX_HEADER_DATA_WRITE_GUID_OFFSET 32u
#define VD_VHDX_HEADER_LOG_GUID_OFFSET        48u
#define VD_VHDX_HEADER_LOG_VERSION_OFFSET     64u
#define VD_VHDX_HEADER_VERSION_OFFSET         66u
#define VD_VHDX_HEADER_LOG_LENGTH_OFFSET      68u
#define VD_VHDX_HEADER_LOG_OFFSET_OFFSET      72u
#define VD_VHDX_VERSION      1u
#define VD_VHDX_LOG_VERSION  0u

/* 2.2.3 Region table: two copies, 64 KiB each, at 192 KiB and 256 KiB. */
#define VD_VHDX_REGION_TABLE1_OFFSET  (192 * VD_VHDX_KIB)
#define VD_VHDX_REGION_TABLE2_OFFSET  (256 * VD_VHDX_KIB)
#define VD_VHDX_REGION_TABLE_SIZE     (64u * 1024u)
#define VD_VHDX_REGION_SIGNATURE      "regi"
#define VD_VHDX_REGION_CHECKSUM_OFFSET     4u
#define VD_VHDX_REGION_ENTRY_COUNT_OFFSET  8u
#define VD_VHDX_REGION_HEADER_SIZE        16u
#define VD_VHDX_REGION_ENTRY_SIZE         32u
#define VD_VHDX_REGION_MAX_ENTRIES      2047u
#define VD_VHDX_REGION_ENTRY_GUID_OFFSET       0u
#define VD_VHDX_REGION_ENTRY_FILE_OFFSET_OFFSET 16u
#define VD_VHDX_REGION_ENTRY_LENGTH_OFFSET     24u
#define VD_VHDX_REGION_ENTRY_FLAGS_OFFSET      28u
#define VD_VHDX_REGION_REQUIRED                0x1u

/* 2.3 Log: a circular buffer of 4 KiB sectors. */
#define VD_VHDX_LOG_SECTOR_SIZE     4096u
#define VD_VHDX_LOG_ENTRY_SIGNATURE "loge"
#define VD_VHDX_LOG_ENTRY_HEADER_SIZE 64u
#define VD_VHDX_LOG_ENTRY_CHECKSUM_OFFSET      4u
#define VD_VHDX_LOG_ENTRY_LENGTH_OFFSET        8u
#define VD_VHDX_LOG_ENTRY_TAIL_OFFSET         12u
#define VD_VHDX_LOG_ENTRY_SEQUENCE_OFFSET     16u
#define VD_VHDX_LOG_ENTRY_DESC_COUNT_OFFSET   24u
#define VD_VHDX_LOG_ENTRY_LOG_GUID_OFFSET     32u
#define VD_VHDX_LOG_ENTRY_FLUSHED_OFFSET      48u
#define VD_VHDX_LOG_ENTRY_LAST_OFFSET         56u
/* Descriptors are 32 bytes; the entry header takes the first two slots of
 * the first descriptor sector, so it holds 126 and later ones 128. */
#define VD_VHDX_LOG_DESCRIPTOR_SIZE          32u
#define VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR  128u
#define VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS   2u
#define VD_VHDX_LOG_ZERO_SIGNATURE "zero"
#define VD_VHDX_LOG_DATA_DESC_SIGNATURE "desc"
#define VD_VHDX_LOG_ZERO_LENGTH_OFFSET        8u   /* zero descriptor */
#define VD_VHDX_LOG_DESC_TRAILING_OFFSET      4u   /* data descriptor */
#define VD_VHDX_LOG_DESC_LEADING_OFFSET       8u   /* data descriptor */
#define VD_VHDX_LOG_DESC_FILE_OFFSET_OFFSET  16u   /* both kinds */
#define VD_VHDX_LOG_DESC_SEQUENCE_OFFSET     24u   /* both kinds */
#define VD_VHDX_LOG_LEADING_BYTES   8u
#define VD_VHDX_LOG_TRAILING_BYTES  4u
#define VD_VHDX_LOG_DATA_SIGNATURE  "data"
#define VD_VHDX_LOG_DATA_SEQUENCE_HIGH_OFFSET    4u
#define VD_VHDX_LOG_DATA_SEQUENCE_LOW_OFFSET  4092u

/* 2.5 BAT: 64-bit entries, state in bits 0-2, offset in MiB in bits 20-63. */
#define VD_VHDX_BAT_ENTRY_SIZE       8u
#define VD_VHDX_BAT_STATE_MASK       UINT64_C(0x7)
#define VD_VHDX_BAT_RESERVED_MASK    UINT64_C(0xFFFF8)
#define VD_VHDX_BAT_OFFSET_SHIFT     20u
/* 2.5.1.1 Payload block states (4 and 5 reserved; 5 was UNMAPPED in the
 * v0.95 draft). */
#define VD_VHDX_PAYLOAD_NOT_PRESENT        0u
#define VD_VHDX_PAYLOAD_UNDEFINED          1u
#define VD_VHDX_PAYLOAD_ZERO               2u
#define VD_VHDX_PAYLOAD_UNMAPPED           3u
#define VD_VHDX_PAYLOAD_FULLY_PRESENT      6u
#define VD_VHDX_PAYLOAD_PARTIALLY_PRESENT  7u
/* 2.5.1.2 Sector bitmap block states. */
#define VD_VHDX_SB_NOT_PRESENT  0u
#define VD_VHDX_SB_PRESENT      6u
/* 2.4: a sector bitmap block is 1 MiB and has one bit per sector of a
 * chunk, so a chunk is 2^23 sectors. */
#define VD_VHDX_SECTOR_BITMAP_BLOCK_SIZE VD_VHDX_MIB
#define VD_VHDX_SECTORS_PER_CHUNK        (UINT64_C(1) << 23)

/* 2.6.1 Metadata region: a 64 KiB table at its start. */
#define VD_VHDX_METADATA_TABLE_SIZE       (64u * 1024u)
#define VD_VHDX_METADATA_SIGNATURE        "metadata"
#define VD_VHDX_METADATA_ENTRY_COUNT_OFFSET 10u
#define VD_VHDX_METADATA_HEADER_SIZE      32u
#define VD_VHDX_METADATA_ENTRY_SIZE       32u
#define VD_VHDX_METADATA_MAX_ENTRIES    2047u
#define VD_VHDX_METADATA_ENTRY_OFFSET_OFFSET 16u
#define VD_VHDX_METADATA_ENTRY_LENGTH_OFFSET 20u
#define VD_VHDX_METADATA_ENTRY_FLAGS_OFFSET  24u
#define VD_VHDX_METADATA_IS_USER          0x1u
#define VD_VHDX_METADATA_IS_VIRTUAL_DISK  0x2u
#define VD_VHDX_METADATA_IS_REQUIRED      0x4u
#define VD_VHDX_METADATA_MAX_ITEM_LENGTH  VD_VHDX_MIB

/* 2.6.2.1 File parameters. */
#define VD_VHDX_FILE_PARAMETERS_SIZE            8u
#define VD_VHDX_FILE_PARAMETERS_FLAGS_OFFSET    4u
#define VD_VHDX_LEAVE_BLOCKS_ALLOCATED        0x1u
#define VD_VHDX_HAS_PARENT                    0x2u
#define VD_VHDX_MIN_BLOCK_SIZE   (UINT32_C(1) << 20)
#define VD_VHDX_MAX_BLOCK_SIZE   (UINT32_C(1) << 28)
/* What Windows picks when the caller leaves the block size to it. */
#define VD_VHDX_DEFAULT_BLOCK_SIZE               (UINT32_C(32) << 20)
#define VD_VHDX_DEFAULT_DIFFERENCING_BLOCK_SIZE  (UINT32_C(2) << 20)
/* 2.6.2.2 Virtual disk size; 1.5 Applicability: at most 64 TiB. */
#define VD_VHDX_VIRTUAL_DISK_SIZE_SIZE  8u
#define VD_VHDX_MAX_VIRTUAL_SIZE        (UINT64_C(64) << 40)
/* 2.6.2.3 Page 83 data (the virtual disk id), 2.6.2.4/5 sector sizes. */
#define VD_VHDX_PAGE83_SIZE        16u
#define VD_VHDX_SECTOR_SIZE_SIZE    4u
/* 2.6.2.6 Parent locator: a 20-byte header then 12-byte key/value entries
 * whose offsets count from the start of the item. */
#define VD_VHDX_LOCATOR_HEADER_SIZE          20u
#define VD_VHDX_LOCATOR_COUNT_OFFSET         18u
#define VD_VHDX_LOCATOR_ENTRY_SIZE           12u
#define VD_VHDX_LOCATOR_KEY_OFFSET_OFFSET     0u
#define VD_VHDX_LOCATOR_VALUE_OFFSET_OFFSET   4u
#define VD_VHDX_LOCATOR_KEY_LENGTH_OFFSET     8u
#define VD_VHDX_LOCATOR_VALUE_LENGTH_OFFSET  10u

/* The 16 stored bytes of a GUID written {d1-d2-d3-d4[0..1]-d4[2..7]}. */
#define VD_VHDX_GUID_BYTES(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                  \
    { (uint8_t)(d1), (uint8_t)((d1) >> 8), (uint8_t)((d1) >> 16), (uint8_t)((d1) >> 24), \
      (uint8_t)(d2), (uint8_t)((d2) >> 8), (uint8_t)(d3), (uint8_t)((d3) >> 8),          \
      b0, b1, b2, b3, b4, b5, b6, b7 }

/* 2.2.3.2 Known regions. */
#define VD_VHDX_GUID_BAT_REGION       VD_VHDX_GUID_BYTES(0x2DC27766u, 0xF623u, 0x4200u, \
    0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08)
#define VD_VHDX_GUID_METADATA_REGION  VD_VHDX_GUID_BYTES(0x8B7CA206u, 0x4790u, 0x4B9Au, \
    0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E)
/* 2.6.2 Known metadata items. */
#define VD_VHDX_GUID_FILE_PARAMETERS  VD_VHDX_GUID_BYTES(0xCAA16737u, 0xFA36u, 0x4D43u, \
    0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B)
#define VD_VHDX_GUID_VIRTUAL_DISK_SIZE VD_VHDX_GUID_BYTES(0x2FA54224u, 0xCD1Bu, 0x4876u, \
    0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8)
#define VD_VHDX_GUID_PAGE83_DATA      VD_VHDX_GUID_BYTES(0xBECA12ABu, 0xB2E6u, 0x4523u, \
    0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46)
#define VD_VHDX_GUID_LOGICAL_SECTOR_SIZE VD_VHDX_GUID_BYTES(0x8141BF1Du, 0xA96Fu, 0x4709u, \
    0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F)
#define VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE VD_VHDX_GUID_BYTES(0xCDA348C7u, 0x445Du, 0x4471u, \
    0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56)
#define VD_VHDX_GUID_PARENT_LOCATOR   VD_VHDX_GUID_BYTES(0xA8D35F2Du, 0xB30Bu, 0x454Du, \
    0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C)
/* 2.6.2.6.3 The one locator type defined: the VHDX parent locator. */
#define VD_VHDX_GUID_VHDX_LOCATOR_TYPE VD_VHDX_GUID_BYTES(0xB04AEFB7u, 0xD19Eu, 0x4A81u, \
    0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13)

#endif
