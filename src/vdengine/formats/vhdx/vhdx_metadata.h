/* The VHDX metadata region ([MS-VHDX] 2.6) as updates see it: the table,
 * reading items, and changing them in one logged transaction.
 *
 * Rules kept (2.6.1): items lie at or after 64 KiB inside the region and
 * never overlap; Length is at most 1 MiB, and a Length 0 item has Offset 0;
 * (ItemId, IsUser) is unique, so a user item whose GUID equals a system
 * item's is another item; at most 1024 entries have IsUser and 2047 in all.
 *
 * A changed or new item's bytes go to free space of the region (the first
 * gap that holds them), never over the live item they replace, so those
 * bytes can be written before the log entry that makes them live
 * (vhdx_log_write.h); only the 4 KiB sectors of the table and sectors
 * shared with live items go through the log, and only when they change.
 * The region is never grown.  Items of fixed length (Page 83, the sector
 * sizes) are changed in place, through the log. */
#ifndef VDENGINE_VHDX_METADATA_H
#define VDENGINE_VHDX_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "disk/image.h"

/* 2.6.1.1: at most this many entries may have IsUser set. */
#define VD_VHDX_METADATA_MAX_USER_ENTRIES 1024u

typedef struct vd_vhdx_metadata {
    uint32_t count;
    uint8_t (*entries)[32];        /* the table entries as stored */
} vd_vhdx_metadata;

/* Reads and checks the table (through a pending log's overlay on a
 * read-only open).  FILE_CORRUPT for an entry outside the region, longer
 * than 1 MiB or starting inside the table; the failed update's code after
 * an update failed (vhdx_log_write.h). */
uint32_t vd_vhdx_metadata_load(const vd_image *image, vd_vhdx_metadata *table);
void vd_vhdx_metadata_free(vd_vhdx_metadata *table);

/* Index of the entry (item, is_user), or SIZE_MAX. */
size_t vd_vhdx_metadata_find(const vd_vhdx_metadata *table, const uint8_t item[16], int is_user);

uint32_t vd_vhdx_metadata_entry_length(const vd_vhdx_metadata *table, size_t index);
int vd_vhdx_metadata_entry_is_user(const vd_vhdx_metadata *table, size_t index);

/* Reads the whole item of entry `index` into `buffer` (its length). */
uint32_t vd_vhdx_metadata_read_item(const vd_image *image, const vd_vhdx_metadata *table, size_t index,
                                    void *buffer);

/* Creates the item (item, is_user) with `flags` or, when it exists,
 * replaces its bytes (its flags kept).  VHD_METADATA_FULL when the table
 * or the region has no room, or `length` is above 1 MiB. */
uint32_t vd_vhdx_metadata_put(vd_image *image, const uint8_t item[16], int is_user, uint32_t flags,
                              const void *data, uint32_t length);

/* Overwrites the first `length` bytes of the existing system item `item`
 * in place.  FILE_CORRUPT when it is missing or shorter. */
uint32_t vd_vhdx_metadata_overwrite(vd_image *image, const uint8_t item[16], const void *data,
                                    uint32_t length);

/* Removes the entry (item, is_user); NOT_FOUND when there is none. */
uint32_t vd_vhdx_metadata_remove(vd_image *image, const uint8_t item[16], int is_user);

#endif
