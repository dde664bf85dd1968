/* The 4 KiB sectors of VHDX structures one content update changes: BAT
 * sectors and sector bitmap sectors, gathered in memory while the update
 * is planned and handed to the log writer in one transaction
 * (vhdx_log_write.h) once the data they describe is durable.
 *
 * A sector of a live structure (the BAT, a sector bitmap block the BAT
 * already points to) is read from the file on first use and goes through
 * the log.  A sector of a block the same update allocates is free space
 * until the logged BAT entries make it live: it starts as zeros (the file
 * extension) and is written directly, before the log entry (the log
 * writer's "direct" sectors).  Only sectors whose bytes changed are
 * written.  The caller holds the allocation lock for the whole life of a
 * set: the bytes read are the bytes on disk only while no one else
 * changes them.
 *
 * The image's deferred BAT sectors (vhdx_pending.h) are part of what every
 * other set sees: a live sector they hold is loaded from their bytes, and
 * committing any other set commits them first. */
#ifndef VDENGINE_VHDX_SECTORS_H
#define VDENGINE_VHDX_SECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "disk/image.h"
#include "formats/vhdx/vhdx_format.h"

typedef struct vd_vhdx_sector {
    uint64_t offset;              /* file offset, 4 KiB aligned */
    int fresh;                    /* in a block this update allocates */
    int dirty;                    /* bytes changed since loaded */
    uint8_t *data;                /* VD_VHDX_LOG_SECTOR_SIZE bytes */
} vd_vhdx_sector;

typedef struct vd_vhdx_sector_set {
    vd_vhdx_sector *items;
    size_t count, capacity;
} vd_vhdx_sector_set;

/* The sector at `offset` (4 KiB aligned), loaded on first use: read
 * through the image's view of the file, or zeros when `fresh`. */
uint32_t vd_vhdx_sectors_get(vd_image *image, vd_vhdx_sector_set *set, uint64_t offset, int fresh,
                             vd_vhdx_sector **sector);

/* The set's copy of the sector at `offset`, NULL when it has none. */
vd_vhdx_sector *vd_vhdx_sectors_find(const vd_vhdx_sector_set *set, uint64_t offset);

/* The file offset of the 4 KiB BAT sector that holds entry `index`. */
static inline uint64_t vd_vhdx_bat_sector(uint64_t bat_offset, uint64_t index)
{
    return bat_offset + index * VD_VHDX_BAT_ENTRY_SIZE / VD_VHDX_LOG_SECTOR_SIZE * VD_VHDX_LOG_SECTOR_SIZE;
}

/* Sectors changed so far. */
size_t vd_vhdx_sectors_dirty(const vd_vhdx_sector_set *set);

/* The image's deferred BAT sectors first (vhdx_pending.h), then the
 * changed sectors of `set` as vd_vhdx_sectors_log writes them. */
uint32_t vd_vhdx_sectors_commit(vd_image *image, const vd_vhdx_sector_set *set);

/* The same, the log entry left live (vhdx_log_write.h: one flush), and
 * fresh sectors that are all zeros taken as zero descriptors of the entry
 * rather than written directly, so that they need no flush before it. */
uint32_t vd_vhdx_sectors_commit_live(vd_image *image, const vd_vhdx_sector_set *set);

/* The changed sectors in one log transaction: live ones logged, fresh
 * ones direct.  Nothing changed costs nothing. */
uint32_t vd_vhdx_sectors_log(vd_image *image, const vd_vhdx_sector_set *set);

void vd_vhdx_sectors_free(vd_vhdx_sector_set *set);

/* BAT entry `index` set to `entry` in the set's copy of its BAT sector. */
uint32_t vd_vhdx_sectors_set_entry(vd_image *image, vd_vhdx_sector_set *set, uint64_t bat_offset,
                                   uint64_t index, uint64_t entry);

#endif
