/* CRC-32C (Castagnoli), the checksum of VHDX headers, region tables and log
 * entries ([MS-VHDX] 2.2.2, 2.2.3, 2.3.1.1).
 *
 * Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF:
 * vd_crc32c("123456789", 9) == 0xE3069283. */
#ifndef VDENGINE_CRC32C_H
#define VDENGINE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Checksum of `length` bytes. */
uint32_t vd_crc32c(const void *data, size_t length);

/* Checksum of the concatenation A || data, given crc = vd_crc32c(A): lets a
 * caller checksum a structure in pieces (a field taken as zero, a log entry
 * that wraps around the end of the log). */
uint32_t vd_crc32c_extend(uint32_t crc, const void *data, size_t length);

#endif
