/* The end of the last partition (partition_end.h).
 *
 * MBR: the four primary entries (an extended partition's entry spans its
 * logical ones); LBAs count logical sectors.  A protective MBR (type 0xEE)
 * means GPT (UEFI 2.10 5.3): the header at LBA 1 names the entry array;
 * every entry with a type GUID other than zero is a partition, whose
 * EndingLBA is inclusive.  A GPT disk also keeps a backup copy of the
 * entries and header in its last sectors; the safe size leaves room for
 * them after the last partition, so that a tool can write the backup back
 * where it belongs on the smaller disk.  The content is only read. */
#include "disk/partition_end.h"

#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "base/vd_errors.h"
#include "disk/content.h"

#define VD_MBR_SIGNATURE_OFFSET 510u
#define VD_MBR_ENTRIES_OFFSET 446u
#define VD_MBR_ENTRY_SIZE 16u
#define VD_MBR_TYPE_GPT_PROTECTIVE 0xEEu
#define VD_GPT_SIGNATURE "EFI PART"
#define VD_GPT_ENTRIES_LBA_OFFSET 72u
#define VD_GPT_ENTRY_COUNT_OFFSET 80u
#define VD_GPT_ENTRY_SIZE_OFFSET 84u
#define VD_GPT_ENTRY_END_OFFSET 40u
/* Entries the engine reads at most: 128 is what every tool writes. */
#define VD_GPT_MAX_ENTRIES 1024u

static uint32_t vd_gpt_end(const vd_partition_view *view, uint64_t *end)
{
    uint32_t sector = view->sector;
    uint8_t *header = malloc(sector);
    if (header == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = view->read(view->context, sector, header, sector);
    uint64_t entries_lba = 0;
    uint32_t count = 0, size = 0;
    if (status == VD_ERROR_SUCCESS) {
        if (memcmp(header, VD_GPT_SIGNATURE, 8) != 0) {
            status = VD_ERROR_NOT_FOUND;
        } else {
            entries_lba = vd_load_le64(header + VD_GPT_ENTRIES_LBA_OFFSET);
            count = vd_load_le32(header + VD_GPT_ENTRY_COUNT_OFFSET);
            size = vd_load_le32(header + VD_GPT_ENTRY_SIZE_OFFSET);
        }
    }
    free(header);
    if (status != VD_ERROR_SUCCESS)
        return status;
    uint64_t capacity = view->size / sector;
    if (count == 0 || count > VD_GPT_MAX_ENTRIES || size < 128 || size > 4096 || size % 8 != 0
        || entries_lba < 2 || entries_lba >= capacity)
        return VD_ERROR_NOT_FOUND;
    uint64_t array_bytes = (uint64_t)count * size;
    uint64_t array_sectors = (array_bytes + sector - 1) / sector;
    if (array_sectors > capacity - entries_lba)
        return VD_ERROR_NOT_FOUND;
    uint8_t *entries = malloc((size_t)(array_sectors * sector));
    if (entries == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    status = view->read(view->context, entries_lba * sector, entries, array_sectors * sector);
    uint64_t last = entries_lba + array_sectors;   /* first sector after the array */
    for (uint32_t i = 0; i < count && status == VD_ERROR_SUCCESS; i++) {
        const uint8_t *entry = entries + (size_t)i * size;
        static const uint8_t unused[16];
        if (memcmp(entry, unused, 16) == 0)
            continue;
        uint64_t ending = vd_load_le64(entry + VD_GPT_ENTRY_END_OFFSET);
        if (ending >= capacity)
            status = VD_ERROR_NOT_FOUND;
        else if (ending + 1 > last)
            last = ending + 1;
    }
    free(entries);
    if (status != VD_ERROR_SUCCESS)
        return status;
    /* The backup: the entry array and one header sector. */
    uint64_t with_backup = last + array_sectors + 1;
    *end = (with_backup < capacity ? with_backup : capacity) * sector;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_partition_view_end(const vd_partition_view *view, uint64_t *end)
{
    uint32_t sector = view->sector;
    if (sector < 512 || view->size < sector)
        return VD_ERROR_NOT_FOUND;
    uint8_t *mbr = malloc(sector);
    if (mbr == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = view->read(view->context, 0, mbr, sector);
    if (status == VD_ERROR_SUCCESS
        && (mbr[VD_MBR_SIGNATURE_OFFSET] != 0x55 || mbr[VD_MBR_SIGNATURE_OFFSET + 1] != 0xAA))
        status = VD_ERROR_NOT_FOUND;
    uint64_t last = 1;   /* the MBR itself */
    int gpt = 0;
    uint64_t capacity = view->size / sector;
    for (unsigned i = 0; i < 4 && status == VD_ERROR_SUCCESS; i++) {
        const uint8_t *entry = mbr + VD_MBR_ENTRIES_OFFSET + i * VD_MBR_ENTRY_SIZE;
        uint8_t type = entry[4];
        uint64_t start = vd_load_le32(entry + 8), length = vd_load_le32(entry + 12);
        if (type == 0 || length == 0)
            continue;
        if (type == VD_MBR_TYPE_GPT_PROTECTIVE) {
            gpt = 1;
            continue;
        }
        if (start + length > capacity)
            status = VD_ERROR_NOT_FOUND;
        else if (start + length > last)
            last = start + length;
    }
    free(mbr);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (gpt)
        return vd_gpt_end(view, end);
    *end = last * sector;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_partition_read_disk(void *context, uint64_t offset, void *buffer, uint64_t length)
{
    return vd_content_read(context, offset, buffer, length);
}

uint32_t vd_partition_table_end(vd_disk *disk, uint64_t *end)
{
    vd_partition_view view = { vd_partition_read_disk, disk, disk->image.logical_sector_size,
                               disk->image.virtual_size };
    return vd_partition_view_end(&view, end);
}

uint64_t vd_smallest_safe_size(vd_disk *disk)
{
    uint64_t end;
    if (vd_partition_table_end(disk, &end) != VD_ERROR_SUCCESS || end > disk->image.virtual_size)
        return disk->image.virtual_size;
    return end;
}
