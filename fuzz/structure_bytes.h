/* structure_bytes.h: the bytes of an image file that SCSI content commands
 * must never change, for fuzz_scsi.c, taken before and after a run and
 * compared.
 *
 * A content write may allocate blocks, so the allocation tables change, and
 * a VHDX write logs its BAT entries and renews the header's DataWriteGuid;
 * what must stay is everything a write has no reason to touch:
 *   VHD (dynamic, differencing)  the dynamic header, the footer copy at
 *       offset 0, and every BAT entry of the disk's blocks that was
 *       allocated (an allocated block never moves); only free entries
 *       (0xFFFFFFFF) may change;
 *   VHD fixed                    the footer;
 *   VHDX                         both region tables, the metadata region,
 *       and every BAT entry that was PAYLOAD_BLOCK_FULLY_PRESENT;
 *   ISO                          every byte (the attach is read-only).
 * The structures are found the way the parsers find them (the footer at
 * the end, the dynamic header it points to; the region table at 192 KiB);
 * a structure whose signature is not where it should be is not taken, so a
 * damaged input the engine reads some other way is never compared against
 * a guess.  Regions are bounded (STRUCTURE_MAX_BYTES) so a huge sparse
 * image costs no more than a small one.  Included by one target: the
 * functions are static. */
#ifndef FUZZ_STRUCTURE_BYTES_H
#define FUZZ_STRUCTURE_BYTES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/endian.h"

#define STRUCTURE_MAX_BYTES (1u << 20)
#define STRUCTURE_MAX_REGIONS 6

enum structure_kind {
    STRUCTURE_EXACT,          /* every byte must stay */
    STRUCTURE_VHD_BAT,        /* u32 BE entries: allocated ones must stay */
    STRUCTURE_VHDX_BAT        /* u64 LE entries: fully present ones must stay */
};

typedef struct structure_region {
    enum structure_kind kind;
    uint64_t offset;
    uint32_t length;
    uint8_t *bytes;
} structure_region;

typedef struct structure_bytes {
    structure_region regions[STRUCTURE_MAX_REGIONS];
    int count;
} structure_bytes;

static void structure_release(structure_bytes *s)
{
    for (int i = 0; i < s->count; i++)
        free(s->regions[i].bytes);
    s->count = 0;
}

static int structure_read(int fd, uint64_t offset, uint32_t length, uint8_t *out)
{
    uint32_t done = 0;
    while (done < length) {
        ssize_t got = pread(fd, out + done, length - done, (off_t)(offset + done));
        if (got <= 0)
            return 0;
        done += (uint32_t)got;
    }
    return 1;
}

static uint64_t structure_file_size(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    return end > 0 ? (uint64_t)end : 0;
}

/* Adds the region when it lies inside the file; a shorter read leaves it
 * out. */
static void structure_add(structure_bytes *s, int fd, enum structure_kind kind, uint64_t offset,
                          uint64_t length)
{
    uint64_t size = structure_file_size(fd);
    if (s->count == STRUCTURE_MAX_REGIONS || length == 0 || offset >= size)
        return;
    if (length > STRUCTURE_MAX_BYTES)
        length = STRUCTURE_MAX_BYTES;
    if (length > size - offset)
        length = size - offset;
    structure_region *r = &s->regions[s->count];
    r->bytes = malloc((size_t)length);
    if (r->bytes == NULL)
        return;
    if (!structure_read(fd, offset, (uint32_t)length, r->bytes)) {
        free(r->bytes);
        return;
    }
    r->kind = kind;
    r->offset = offset;
    r->length = (uint32_t)length;
    s->count++;
}

static void structure_take_vhd(structure_bytes *s, int fd)
{
    uint64_t size = structure_file_size(fd);
    uint8_t footer[512], header[1024];
    if (size < 512 || !structure_read(fd, size - 512, 512, footer)
        || memcmp(footer, "conectix", 8) != 0)
        return;
    uint32_t type = vd_load_be32(footer + 60);
    if (type == 2) {   /* fixed: the footer is the whole structure */
        structure_add(s, fd, STRUCTURE_EXACT, size - 512, 512);
        return;
    }
    uint64_t dynamic = vd_load_be64(footer + 16);
    if (dynamic > size || size - dynamic < 1024 || !structure_read(fd, dynamic, 1024, header)
        || memcmp(header, "cxsparse", 8) != 0)
        return;
    structure_add(s, fd, STRUCTURE_EXACT, 0, 512);
    structure_add(s, fd, STRUCTURE_EXACT, dynamic, 1024);
    /* The entries the disk's blocks use: a Max Table Entries above the
     * block count declares entries no reader looks up, and the file may
     * hold other data where they would be. */
    uint64_t table = vd_load_be64(header + 16);
    uint64_t entries = vd_load_be32(header + 28);
    uint64_t block_size = vd_load_be32(header + 32);
    uint64_t virtual_size = vd_load_be64(footer + 48);
    uint64_t blocks = block_size ? virtual_size / block_size + (virtual_size % block_size != 0) : 0;
    structure_add(s, fd, STRUCTURE_VHD_BAT, table, (entries < blocks ? entries : blocks) * 4);
}

static const uint8_t structure_vhdx_bat_guid[16] = {
    0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
    0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
static const uint8_t structure_vhdx_metadata_guid[16] = {
    0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
    0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E };

static void structure_take_vhdx(structure_bytes *s, int fd)
{
    enum { TABLE = 192 * 1024, TABLE_SIZE = 64 * 1024 };
    uint8_t table[TABLE_SIZE];
    if (!structure_read(fd, TABLE, TABLE_SIZE, table) || memcmp(table, "regi", 4) != 0)
        return;
    structure_add(s, fd, STRUCTURE_EXACT, TABLE, TABLE_SIZE);
    structure_add(s, fd, STRUCTURE_EXACT, TABLE + TABLE_SIZE, TABLE_SIZE);
    uint32_t count = vd_load_le32(table + 8);
    for (uint32_t i = 0; i < count && i < (TABLE_SIZE - 16) / 32; i++) {
        const uint8_t *entry = table + 16 + 32 * i;
        uint64_t offset = vd_load_le64(entry + 16);
        uint32_t length = vd_load_le32(entry + 24);
        if (memcmp(entry, structure_vhdx_metadata_guid, 16) == 0)
            structure_add(s, fd, STRUCTURE_EXACT, offset, length);
        else if (memcmp(entry, structure_vhdx_bat_guid, 16) == 0)
            structure_add(s, fd, STRUCTURE_VHDX_BAT, offset, length);
    }
}

/* Whether a region reads now as its rules allow. */
static int structure_region_kept(int fd, const structure_region *r)
{
    uint8_t *now = malloc(r->length);
    if (now == NULL)
        return 1;
    int kept = structure_read(fd, r->offset, r->length, now);
    if (!kept) {
        free(now);
        return 0;   /* the file lost bytes a structure held */
    }
    if (r->kind == STRUCTURE_EXACT) {
        kept = memcmp(now, r->bytes, r->length) == 0;
    } else if (r->kind == STRUCTURE_VHD_BAT) {
        for (uint32_t i = 0; kept && i + 4 <= r->length; i += 4) {
            if (vd_load_be32(r->bytes + i) != 0xFFFFFFFFu)
                kept = memcmp(now + i, r->bytes + i, 4) == 0;
        }
    } else {
        for (uint32_t i = 0; kept && i + 8 <= r->length; i += 8) {
            if ((vd_load_le64(r->bytes + i) & 7u) == 6u)   /* PAYLOAD_BLOCK_FULLY_PRESENT */
                kept = memcmp(now + i, r->bytes + i, 8) == 0;
        }
    }
    free(now);
    return kept;
}

/* The 1-based index of the first region that changed against its rule, 0
 * when none did. */
static int structure_changed(int fd, const structure_bytes *s)
{
    for (int i = 0; i < s->count; i++) {
        if (!structure_region_kept(fd, &s->regions[i]))
            return i + 1;
    }
    return 0;
}

#endif
