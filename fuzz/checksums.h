/* checksums.h: makes an input's checksums right, so that mutations get past
 * the checksum checks to the fields behind them.  Shared by fuzz_vhd.c and
 * fuzz_update.c; included by one target each: the functions are static. */
#ifndef FUZZ_CHECKSUMS_H
#define FUZZ_CHECKSUMS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/endian.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhdx/vhdx_format.h"

/* Recomputes the checksum of the VHD footer at the end and at 0 and of the
 * dynamic header the end footer points to, where they fit in the file. */
static void repair_vhd_checksums(uint8_t *image, size_t size)
{
    if (size < VD_VHD_FOOTER_SIZE)
        return;
    uint8_t *footers[2] = { image + size - VD_VHD_FOOTER_SIZE, image };
    for (int i = 0; i < 2; i++)
        vd_store_be32(footers[i] + VD_VHD_FOOTER_CHECKSUM_OFFSET,
                      vd_vhd_checksum(footers[i], VD_VHD_FOOTER_SIZE,
                                      VD_VHD_FOOTER_CHECKSUM_OFFSET));
    uint64_t header = vd_load_be64(footers[0] + VD_VHD_FOOTER_DATA_OFFSET_OFFSET);
    if (size >= VD_VHD_HEADER_SIZE && header <= size - VD_VHD_HEADER_SIZE)
        vd_store_be32(image + header + VD_VHD_HEADER_CHECKSUM_OFFSET,
                      vd_vhd_checksum(image + header, VD_VHD_HEADER_SIZE,
                                      VD_VHD_HEADER_CHECKSUM_OFFSET));
}

/* Recomputes the CRC-32C of the structure of `length` bytes at `offset` in
 * fd (checksum field zeroed while computing, [MS-VHDX] 2.2.2 and 2.3.1),
 * where it carries `signature`. */
static void repair_vhdx_structure(int fd, uint64_t file_size, uint64_t offset, size_t length,
                                  const char *signature, size_t checksum_offset)
{
    static uint8_t buffer[VD_VHDX_REGION_TABLE_SIZE];
    if (length > sizeof buffer || offset > file_size || length > file_size - offset)
        return;
    if (pread(fd, buffer, length, (off_t)offset) != (ssize_t)length
        || memcmp(buffer, signature, 4) != 0)
        return;
    vd_store_le32(buffer + checksum_offset, 0);
    vd_store_le32(buffer + checksum_offset, vd_crc32c(buffer, length));
    if (pwrite(fd, buffer + checksum_offset, 4, (off_t)(offset + checksum_offset)) != 4)
        return;
}

/* The CRC-32C of both VHDX headers and both region tables in fd. */
static void repair_vhdx_checksums(int fd, uint64_t file_size)
{
    repair_vhdx_structure(fd, file_size, VD_VHDX_HEADER1_OFFSET, VD_VHDX_HEADER_SIZE,
                          VD_VHDX_HEADER_SIGNATURE, VD_VHDX_HEADER_CHECKSUM_OFFSET);
    repair_vhdx_structure(fd, file_size, VD_VHDX_HEADER2_OFFSET, VD_VHDX_HEADER_SIZE,
                          VD_VHDX_HEADER_SIGNATURE, VD_VHDX_HEADER_CHECKSUM_OFFSET);
    repair_vhdx_structure(fd, file_size, VD_VHDX_REGION_TABLE1_OFFSET, VD_VHDX_REGION_TABLE_SIZE,
                          VD_VHDX_REGION_SIGNATURE, VD_VHDX_REGION_CHECKSUM_OFFSET);
    repair_vhdx_structure(fd, file_size, VD_VHDX_REGION_TABLE2_OFFSET, VD_VHDX_REGION_TABLE_SIZE,
                          VD_VHDX_REGION_SIGNATURE, VD_VHDX_REGION_CHECKSUM_OFFSET);
}

#endif
