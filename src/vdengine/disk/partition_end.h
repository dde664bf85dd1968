/* Where the guest's partitions end: what "safe" means for a shrink
 * (ResizeVirtualDisk's RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE
 * "skip checking the virtual disk's partition table") and what
 * GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE answers. */
#ifndef VDENGINE_PARTITION_END_H
#define VDENGINE_PARTITION_END_H

#include <stdint.h>

#include "api/handle.h"

/* The smallest virtual size that keeps every partition of the disk's MBR
 * or GPT (and a GPT's room for its backup header and entries at the end):
 * bytes, a multiple of the logical sector size.  ERROR_NOT_FOUND when the
 * content has no partition table this reads (no 0x55AA signature), or one
 * that points outside the disk; the host's code when reading fails. */
uint32_t vd_partition_table_end(vd_disk *disk, uint64_t *end);

/* The same end for content read another way (a merge reads the merged
 * range's view, api/merge_size.c): `read` gives `size` bytes of content
 * in sectors of `sector` bytes. */
typedef struct vd_partition_view {
    uint32_t (*read)(void *context, uint64_t offset, void *buffer, uint64_t length);
    void *context;
    uint32_t sector;
    uint64_t size;
} vd_partition_view;

uint32_t vd_partition_view_end(const vd_partition_view *view, uint64_t *end);

/* What SMALLEST_SAFE_VIRTUAL_SIZE answers: the end above when it is known,
 * else the virtual size (no smaller size is known to be safe). */
uint64_t vd_smallest_safe_size(vd_disk *disk);

#endif
