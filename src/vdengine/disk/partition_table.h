/* The partition table of a disk's content (MBR or GPT), read only as far
 * as ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION needs: "restrict the disk's
 * view to the unique data partition". */
#ifndef VDENGINE_PARTITION_TABLE_H
#define VDENGINE_PARTITION_TABLE_H

#include <stdint.h>

#include "api/handle.h"

/* The byte range of the disk's one data partition: with a GPT, the one
 * entry that is not an EFI system, Microsoft reserved or BIOS boot
 * partition; with an MBR, the one primary entry that is neither empty nor
 * extended.  ERROR_NOT_FOUND, with a detail, when the disk has no
 * partition table, or no data partition, or several. */
uint32_t vd_single_data_partition(vd_disk *disk, uint64_t *offset, uint64_t *length);

#endif
