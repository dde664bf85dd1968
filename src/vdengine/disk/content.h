/* The content of an opened disk: what RawSCSIVirtualDisk (scsi.c), attach
 * and the long operations read and write.
 *
 * Offsets and lengths are bytes of virtual disk content.  Every call checks
 * alignment (multiples of the image's logical sector size) and range (inside
 * virtual_size) and answers INVALID_PARAMETER otherwise; writes and unmaps
 * on an image whose file is open read-only answer ACCESS_DENIED (Windows'
 * answer for a write through a read-only handle).  Reads go through the
 * chain the handle opened; writes and unmaps go to the child alone, which is
 * how a differencing disk works.  No lock is taken here: the formats
 * serialise what must be (allocation), and data I/O runs in parallel. */
#ifndef VDENGINE_CONTENT_H
#define VDENGINE_CONTENT_H

#include <stdint.h>

#include "api/handle.h"

/* INVALID_PARAMETER unless [offset, offset + length) is whole sectors of
 * the disk, inside it. */
uint32_t vd_content_check(const vd_disk *disk, uint64_t offset, uint64_t length);

uint32_t vd_content_read(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length);
uint32_t vd_content_write(vd_disk *disk, uint64_t offset, const void *buffer, uint64_t length);
uint32_t vd_content_unmap(vd_disk *disk, uint64_t offset, uint64_t length);

/* vd_content_read and _write for a caller that has checked the range
 * already (the SCSI data commands, whose LBA range inside the disk is
 * whole sectors inside it): the same, but for vd_content_check; `length`
 * is not 0. */
uint32_t vd_content_read_sectors(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length);
uint32_t vd_content_write_sectors(vd_disk *disk, uint64_t offset, const void *buffer,
                                  uint64_t length);
uint32_t vd_content_flush(vd_disk *disk);

/* Whether the format behind `disk` has an unmap op (READ CAPACITY's LBPME,
 * VPD 0xB2), and whether it can be written at all. */
int vd_content_can_unmap(const vd_disk *disk);
int vd_content_can_write(const vd_disk *disk);

#endif
