/* MBR and GPT, as far as finding the one data partition or a partition by
 * its number (partition_table.h).  Every field is checked against the disk's size
 * before use; a table that does not hold together counts as no table. */
#include "disk/partition_table.h"

#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "disk/content.h"

#define VD_MBR_ENTRIES 4u
#define VD_MBR_ENTRY_OFFSET 446u
#define VD_MBR_TYPE_GPT_PROTECTIVE 0xEEu
/* Linux numbers the logical partitions of an extended one from 5, in the
 * order of their EBR chain; a chain longer than this is taken as a loop. */
#define VD_MBR_FIRST_LOGICAL 5u
#define VD_MBR_LOGICAL_MAX 256u
/* GPT entries read at most: 128 KiB, four times what the UEFI minimum
 * (128 entries of 128 bytes) takes. */
#define VD_GPT_ENTRIES_MAX_BYTES (128u * 1024u)

/* GPT type GUIDs as stored (mixed endian) of the partitions that hold no
 * data of their own. */
static const uint8_t vd_gpt_not_data[][16] = {
    /* EFI system C12A7328-F81F-11D2-BA4B-00A0C93EC93B */
    { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B },
    /* Microsoft reserved E3C9E316-0B5C-4DB8-817D-F92DF00215AE */
    { 0x16, 0xE3, 0xC9, 0xE3, 0x5C, 0x0B, 0xB8, 0x4D, 0x81, 0x7D, 0xF9, 0x2D, 0xF0, 0x02, 0x15, 0xAE },
    /* BIOS boot 21686148-6449-6E6F-744E-656564454649 */
    { 0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6F, 0x6E, 0x74, 0x4E, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49 },
};

/* What is looked for, and what was found: with `wanted` 0 the data
 * partitions (the first one's range kept), otherwise the entry of slot
 * `wanted`. */
typedef struct vd_partition_count {
    uint32_t wanted;
    unsigned found;
    uint64_t first_sector;
    uint64_t sectors;
} vd_partition_count;

static void vd_partition_seen(vd_partition_count *count, uint32_t slot, int holds_data,
                              uint64_t first, uint64_t sectors)
{
    if (count->wanted == 0 ? !holds_data : slot != count->wanted)
        return;
    if (count->found++ == 0) {
        count->first_sector = first;
        count->sectors = sectors;
    }
}

static int vd_gpt_used(const uint8_t *type)
{
    static const uint8_t unused[16];
    return memcmp(type, unused, 16) != 0;
}

static int vd_gpt_holds_data(const uint8_t *type)
{
    for (size_t i = 0; i < sizeof vd_gpt_not_data / sizeof vd_gpt_not_data[0]; i++) {
        if (memcmp(type, vd_gpt_not_data[i], 16) == 0)
            return 0;
    }
    return 1;
}

/* The GPT whose header is at LBA 1; 0 when there is none that holds
 * together (then the MBR is all there is). */
static int vd_gpt_count(const vd_partition_source *source, uint64_t disk_sectors,
                        vd_partition_count *count)
{
    uint32_t sector = source->sector_size;
    uint8_t *header = malloc(sector);
    if (header == NULL || source->read(source->context, sector, header, sector) != VD_ERROR_SUCCESS
        || memcmp(header, "EFI PART", 8) != 0) {
        free(header);
        return 0;
    }
    uint64_t entries_lba = vd_load_le64(header + 72);
    uint32_t entry_count = vd_load_le32(header + 80);
    uint32_t entry_size = vd_load_le32(header + 84);
    free(header);
    uint64_t bytes = (uint64_t)entry_count * entry_size;
    uint64_t read = (bytes + sector - 1) / sector * sector;
    if (entry_size < 128 || entry_size % 8 != 0 || bytes == 0 || read > VD_GPT_ENTRIES_MAX_BYTES
        || entries_lba < 2 || entries_lba > disk_sectors || read / sector > disk_sectors - entries_lba)
        return 0;
    uint8_t *entries = malloc(read);
    if (entries == NULL
        || source->read(source->context, entries_lba * sector, entries, read)
               != VD_ERROR_SUCCESS) {
        free(entries);
        return 0;
    }
    for (uint32_t i = 0; i < entry_count; i++) {
        const uint8_t *entry = entries + (size_t)i * entry_size;
        uint64_t first = vd_load_le64(entry + 32), last = vd_load_le64(entry + 40);
        if (vd_gpt_used(entry) && first <= last && last < disk_sectors)
            vd_partition_seen(count, i + 1, vd_gpt_holds_data(entry), first, last - first + 1);
    }
    free(entries);
    return 1;
}

static int vd_mbr_extended(uint8_t type)
{
    return type == 0x05 || type == 0x0F || type == 0x85;
}

/* The logical partitions of the extended partition [start, start +
 * sectors): a chain of EBRs, each a boot-sector-shaped record whose first
 * entry is a logical partition (its start relative to the EBR) and whose
 * second entry points to the next EBR (relative to the extended
 * partition's start).  The walk ends at the first record that does not
 * hold together; what it read up to there counts. */
static void vd_mbr_logical_count(const vd_partition_source *source, uint64_t disk_sectors,
                                 uint64_t start, uint64_t sectors, vd_partition_count *count)
{
    uint32_t sector = source->sector_size;
    uint8_t *ebr = malloc(sector);
    if (ebr == NULL)
        return;
    uint64_t record = start, end = start + sectors;
    for (uint32_t index = 0; index < VD_MBR_LOGICAL_MAX && record < end; index++) {
        if (source->read(source->context, record * sector, ebr, sector) != VD_ERROR_SUCCESS
            || ebr[510] != 0x55 || ebr[511] != 0xAA)
            break;
        const uint8_t *logical = ebr + VD_MBR_ENTRY_OFFSET;
        const uint8_t *next = logical + 16;
        uint64_t first = record + vd_load_le32(logical + 8);
        uint64_t length = vd_load_le32(logical + 12);
        if (logical[4] != 0 && length > 0 && first < end && length <= end - first
            && first < disk_sectors && length <= disk_sectors - first)
            vd_partition_seen(count, VD_MBR_FIRST_LOGICAL + index, 1, first, length);
        uint64_t following = start + vd_load_le32(next + 8);
        /* Each EBR must lie past the one before, or the chain could loop. */
        if (!vd_mbr_extended(next[4]) || following <= record)
            break;
        record = following;
    }
    free(ebr);
}

/* Reads the table into `count`; *table names it.  0 when the disk has no
 * MBR signature, and then no table at all. */
static uint32_t vd_partition_scan(const vd_partition_source *source, vd_partition_count *count,
                                  const char **table, int *has_table)
{
    uint32_t sector = source->sector_size;
    uint64_t disk_sectors = source->size / sector;
    uint8_t *mbr = sector >= 512 ? malloc(sector) : NULL;
    if (mbr == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = source->read(source->context, 0, mbr, sector);
    if (status != VD_ERROR_SUCCESS) {
        free(mbr);
        return status;
    }
    *table = "MBR";
    *has_table = mbr[510] == 0x55 && mbr[511] == 0xAA;
    int protective = 0;
    for (unsigned i = 0; *has_table && i < VD_MBR_ENTRIES; i++)
        protective |= mbr[VD_MBR_ENTRY_OFFSET + 16 * i + 4] == VD_MBR_TYPE_GPT_PROTECTIVE;
    if (protective && vd_gpt_count(source, disk_sectors, count)) {
        *table = "GPT";
    } else {
        int logical_read = 0;
        for (unsigned i = 0; *has_table && i < VD_MBR_ENTRIES; i++) {
            const uint8_t *entry = mbr + VD_MBR_ENTRY_OFFSET + 16 * i;
            uint8_t type = entry[4];
            uint64_t first = vd_load_le32(entry + 8), sectors = vd_load_le32(entry + 12);
            if (type == 0 || sectors == 0 || first >= disk_sectors
                || sectors > disk_sectors - first)
                continue;
            if (!vd_mbr_extended(type))
                vd_partition_seen(count, i + 1, 1, first, sectors);
            else if (!logical_read++)   /* one extended partition, as Linux and Windows read */
                vd_mbr_logical_count(source, disk_sectors, first, sectors, count);
        }
    }
    free(mbr);
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_partition_read_content(void *context, uint64_t offset, void *buffer,
                                          uint64_t length)
{
    return vd_content_read(context, offset, buffer, length);
}

uint32_t vd_single_data_partition(vd_disk *disk, uint64_t *offset, uint64_t *length)
{
    vd_partition_source source = { vd_partition_read_content, disk,
                                   disk->image.logical_sector_size, disk->image.virtual_size };
    vd_partition_count count = { 0, 0, 0, 0 };
    const char *table;
    int has_table;
    uint32_t status = vd_partition_scan(&source, &count, &table, &has_table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!has_table)
        return vd_fail(VD_ERROR_NOT_FOUND, "SINGLE_PARTITION: the disk has no partition table");
    if (count.found != 1)
        return vd_fail(VD_ERROR_NOT_FOUND,
                       "SINGLE_PARTITION: the disk's %s has %u data partitions, not one", table,
                       count.found);
    *offset = count.first_sector * source.sector_size;
    *length = count.sectors * source.sector_size;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_partition_by_number(const vd_partition_source *source, uint32_t number,
                                uint64_t *offset, uint64_t *length)
{
    vd_partition_count count = { number, 0, 0, 0 };
    const char *table;
    int has_table;
    uint32_t status = vd_partition_scan(source, &count, &table, &has_table);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!has_table)
        return vd_fail(VD_ERROR_NOT_FOUND, "the disk has no partition table");
    if (count.found == 0)
        return vd_fail(VD_ERROR_NOT_FOUND, "the disk's %s has no partition %u", table, number);
    *offset = count.first_sector * source->sector_size;
    *length = count.sectors * source->sector_size;
    return VD_ERROR_SUCCESS;
}
