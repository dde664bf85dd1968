/* Creating images: what CreateVirtualDisk (create.c) hands a format's
 * creator once the parameters are checked and the defaults applied.
 *
 * create.c owns the file's life: it creates the path exclusively (an
 * existing file is ERROR_FILE_EXISTS, never overwritten), calls the format's
 * creator on the empty file, and removes the file again if anything fails,
 * so a failed create leaves nothing behind.  A creator writes the whole
 * image through `file`; it never opens, renames or unlinks paths. */
#ifndef VDENGINE_CREATE_H
#define VDENGINE_CREATE_H

#include <stdint.h>

#include "disk/image.h"
#include "host/io.h"

typedef struct vd_create_spec {
    uint32_t device;                /* VD_DEVICE_VHD or VD_DEVICE_VHDX */
    uint32_t subtype;               /* VD_SUBTYPE_FIXED, _DYNAMIC or _DIFFERENCING */
    uint64_t virtual_size;          /* bytes; for differencing, the parent's */
    uint32_t block_size;            /* bytes; 0 for fixed disks */
    uint32_t logical_sector_size;   /* 512 or 4096 (VHD: 512) */
    uint32_t physical_sector_size;  /* 512 or 4096 (VHD: 512) */
    vd_guid unique_id;              /* VHD footer UniqueId; VHDX Page 83 id */
    int full_allocation;            /* fixed: reserve the space (fallocate) */

    /* Differencing: the opened parent and how to find it again. */
    const vd_image *parent;
    const char *parent_absolute_path;   /* UTF-8 host path of the parent */
    const char *parent_relative_path;   /* relative to the new file's directory */

    /* Copying: the source's content (read through its ops, parents included)
     * becomes the new disk's content, copied run by run (disk/source_copy.h);
     * blocks the source holds no data in stay unallocated in a dynamic
     * target.  `source_disk` is the source's chain, whose maps name the
     * runs its files hold; NULL for a block device, read whole. */
    vd_image *source;
    struct vd_disk *source_disk;
} vd_create_spec;

/* Format creators: write a complete, valid image into the empty, writable
 * `file`.  Return a Win32 code; the caller removes the file on failure. */
uint32_t vd_vhd_create(vd_file *file, const vd_create_spec *spec);
uint32_t vd_vhdx_create(vd_file *file, const vd_create_spec *spec);

#endif
