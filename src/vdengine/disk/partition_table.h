/* The partition table of a disk's content (MBR or GPT), read only as far
 * as ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION needs ("restrict the disk's
 * view to the unique data partition") and a partition device needs (one
 * partition by its number). */
#ifndef VDENGINE_PARTITION_TABLE_H
#define VDENGINE_PARTITION_TABLE_H

#include <stdint.h>

#include "api/handle.h"

/* The byte range of the disk's one data partition: with a GPT, the one
 * entry that is not an EFI system, Microsoft reserved or BIOS boot
 * partition; with an MBR, the one primary entry that is neither empty nor
 * extended, or logical partition of the extended one.  ERROR_NOT_FOUND, with a detail, when the disk has no
 * partition table, or no data partition, or several. */
uint32_t vd_single_data_partition(vd_disk *disk, uint64_t *offset, uint64_t *length);

/* Where the table is read from: the disk's content through the engine, or
 * a device the host sees.  `read` reads whole sectors at `offset`. */
typedef struct vd_partition_source {
    uint32_t (*read)(void *context, uint64_t offset, void *buffer, uint64_t length);
    void *context;
    uint32_t sector_size;
    uint64_t size;
} vd_partition_source;

/* The byte range of partition `number` as Linux numbers them: a GPT's
 * entry in slot `number` (1 is the first slot), whatever its type; an
 * MBR's primary entry 1 to 4 that is neither empty nor extended, and from
 * 5 on the logical partitions of its extended partition in the order of
 * their EBR chain.  ERROR_NOT_FOUND, with a detail, when the disk
 * has no partition table or no such partition. */
uint32_t vd_partition_by_number(const vd_partition_source *source, uint32_t number,
                                uint64_t *offset, uint64_t *length);

#endif
