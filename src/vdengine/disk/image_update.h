/* Changing an opened image: what SetVirtualDiskInformation and the
 * *VirtualDiskMetadata functions (set_info.c, metadata.c) ask of a format.
 *
 * The API layer checks the arguments, the handle's rights and that the
 * image file is open for writing, resolves a new parent and checks its
 * identity; a format's update op only changes its own structures, crash
 * safely, and then the vd_image fields that describe them, so that
 * GetVirtualDiskInformation answers the new values at once.
 *
 * Crash safety: after any prefix of an update's writes reaches the disk,
 * the next open sees either the old or the new value, or refuses the file
 * with a code; it never reads a mix.  VHDX puts every metadata region
 * change through the log ([MS-VHDX] 2.3) and changes headers by the
 * two-copy sequence-number scheme (2.2.2); VHD, which has no log, orders
 * its writes so that each single sector write switches from old to new.
 *
 * GUIDs are in vd_image layout (image.h). */
#ifndef VDENGINE_IMAGE_UPDATE_H
#define VDENGINE_IMAGE_UPDATE_H

#include <stdint.h>

#include "disk/image.h"

/* A differencing image's new parent, already opened and checked. */
typedef struct vd_parent_link {
    const vd_image *parent;      /* the new parent image (read-only is fine) */
    /* What the child records as its parent's identity: VHD header
     * ParentUniqueId, VHDX parent_linkage.  Normally parent->identifier;
     * SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR gives it explicitly. */
    vd_guid linkage;
    const char *absolute_path;   /* UTF-8 host path of the parent, normalised */
    /* Relative to the child's directory, in the Windows spelling create
     * stores (".\base.vhd", "..\dir\base.vhdx"; parent_paths.h). */
    const char *relative_path;
} vd_parent_link;

typedef struct vd_update_ops {
    /* SET_VIRTUAL_DISK_INFO_IDENTIFIER: the GUID GET_VIRTUAL_DISK_INFO_IDENTIFIER
     * answers (VHD footer UniqueId; VHDX header DataWriteGuid). */
    uint32_t (*set_identifier)(vd_image *image, const vd_guid *identifier);
    /* SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID: VHDX Page 83 item; VHD the
     * footer UniqueId, which is what VIRTUAL_DISK_ID answers for VHD. */
    uint32_t (*set_virtual_disk_id)(vd_image *image, const vd_guid *virtual_disk_id);
    /* SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE, 512 or 4096 (checked by
     * the caller).  NULL: the format stores none (VHD). */
    uint32_t (*set_physical_sector_size)(vd_image *image, uint32_t bytes);
    /* Rewrites the parent locator (both paths), the recorded parent
     * identity, and for VHD the parent's name and time stamp.  Called only
     * on differencing images. */
    uint32_t (*set_parent)(vd_image *image, const vd_parent_link *link);

    /* User metadata items (VHDX metadata table entries with IsUser set).
     * NULL for formats without them.
     *   list:   *count in: room in `items`; out: items held.  Room too small
     *           -> VD_ERROR_INSUFFICIENT_BUFFER with *count the number needed.
     *   get:    *size in: room in `buffer`; out: the item's length.  Room too
     *           small -> VD_ERROR_INSUFFICIENT_BUFFER, *size the length.
     *           No such item -> VD_ERROR_NOT_FOUND.
     *   set:    creates or replaces; no room in the metadata region or table
     *           -> VD_ERROR_VHD_METADATA_FULL.
     *   remove: no such item -> VD_ERROR_NOT_FOUND. */
    uint32_t (*metadata_list)(vd_image *image, vd_guid *items, uint32_t *count);
    uint32_t (*metadata_get)(vd_image *image, const vd_guid *item, void *buffer,
                             uint32_t *size);
    uint32_t (*metadata_set)(vd_image *image, const vd_guid *item, const void *data,
                             uint32_t size);
    uint32_t (*metadata_remove)(vd_image *image, const vd_guid *item);
} vd_update_ops;

/* The update ops of each format (vhd_update.c, vhdx_update.c); the API
 * layer reaches them through the format's driver (driver.h). */
extern const vd_update_ops vd_vhd_update_ops;
extern const vd_update_ops vd_vhdx_update_ops;

#endif
