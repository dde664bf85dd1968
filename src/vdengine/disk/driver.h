/* One table per image format: everything the engine can do with a format,
 * and the one registry the API layer finds formats in.
 *
 * The API files (open.c, create.c, set_info.c, metadata.c, chain.c, ...)
 * never switch on the format: they look the driver up here and call it.  A
 * new operation is one field per driver plus one API file; a new format is
 * one driver plus its entry in the registry (drivers.c).
 *
 * What a driver holds:
 *   - recognising and opening files (probe, open), creating them (create);
 *   - the data ops of an opened image (read, write, unmap, flush, release,
 *     block_layout): these are `vd_format_ops` (image.h), which open puts in
 *     image->ops, because one format has several (VHD fixed and sparse);
 *   - the changes SetVirtualDiskInformation and the metadata functions make
 *     (update, image_update.h);
 *   - slots for the long operations (resize, compact, merge), NULL while a
 *     format does not implement them. */
#ifndef VDENGINE_DRIVER_H
#define VDENGINE_DRIVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api/create.h"
#include "disk/image.h"
#include "disk/image_update.h"
#include "host/io.h"

struct vd_operation;

/* ResizeVirtualDisk / ExpandVirtualDisk after the API layer's checks
 * (api/resize.c): a new virtual size, a multiple of the logical sector
 * size, within the format's limit and different from the current one;
 * a smaller one only where the format allows shrinking.  The operation
 * gives progress and cancellation (api/operation.h); a format stops only
 * where the image is consistent. */
typedef struct vd_resize_request {
    uint64_t new_size;
    struct vd_operation *operation;
} vd_resize_request;

/* CompactVirtualDisk (api/compact.c): COMPACT_VIRTUAL_DISK_FLAG_* bits;
 * `parent` is the opened parent of a differencing image (reads with its
 * own ancestors), NULL when the handle was opened without parents: a
 * differencing compact then drops only what needs no parent to decide. */
typedef struct vd_compact_request {
    uint32_t flags;
    struct vd_operation *operation;
    vd_image *parent;
} vd_compact_request;

/* MergeVirtualDisk (api/merge.c): the merge's target is the image the
 * slot is called on, a writable ancestor of `source`.  `source` is the
 * merged range's image nearest the leaf; read with `source_parent` (NULL
 * when its ops carry their ancestors, chain.h) it reads what the target
 * must hold afterwards: the range's sectors over the target's.  The format
 * writes those sectors into the target through its write op
 * (disk/merge_copy.h) and then carries over what [MS-VHDX] 2.6.1.2 says a
 * merge moves to the parent. */
typedef struct vd_merge_request {
    vd_image *source;
    /* The image whose parent the target is (the range's image nearest
     * the target; `source` itself for a range of one). */
    vd_image *child;
    vd_image *source_parent;
    struct vd_operation *operation;
    /* Bytes of progress done before the copy (the target's change to the
     * source's size, api/merge_size.h); the copy counts on from there. */
    uint64_t progress_base;
    /* The disk's lock, held by the caller; the copy lets it go between
     * steps, at the checkpoints where a cancel may stop it. */
    pthread_mutex_t *lock;
} vd_merge_request;

typedef struct vd_format_driver {
    const char *name;          /* "vhd", "vhdx", "iso": for messages */
    uint32_t device;           /* VIRTUAL_STORAGE_TYPE_DEVICE_* (enum vd_device) */
    /* Cheap signature check on the first or last bytes of the file. */
    int (*probe)(const vd_file *file);
    /* Parses `file` into `image` (image.h has the ownership rules) and sets
     * image->ops to the data ops of the image's subtype. */
    uint32_t (*open)(vd_file *file, vd_image *image);
    /* Reads an opened image `old` again from `file` (a second descriptor
     * of the same open file) into `fresh`, as open does, carrying over
     * what `old`'s open has done to the file and may still owe it (VHDX: a
     * live log entry, already in place); `old` is released afterwards.
     * NULL: open. */
    uint32_t (*reopen)(vd_image *old, vd_file *file, vd_image *fresh);
    /* Writes a complete image into an empty writable file (create.h); NULL
     * for a format that cannot be created (ISO). */
    uint32_t (*create)(vd_file *file, const vd_create_spec *spec);
    /* Changes to an opened image; NULL for a format that changes nothing. */
    const vd_update_ops *update;
    /* Images of this format are never written, created, changed, used as
     * parents or as sources to copy (ISO). */
    int read_only;
    /* Whether an image of this format can be the parent of a differencing
     * image of `child_device`. */
    int (*can_parent)(uint32_t child_device);
    /* Whether the disk's content lies in the file as one run of bytes, in
     * order, so that the host can map a device straight onto the file
     * (attach): *contiguous, and the run's first byte in *offset.  With
     * `for_writing` the format first records what writes it will not see
     * need recorded (VHDX: a new DataWriteGuid).  NULL: never. */
    uint32_t (*direct_extent)(vd_image *image, int for_writing, int *contiguous,
                              uint64_t *offset);
    /* Long operations; NULL until the format implements them. */
    uint32_t (*resize)(vd_image *image, const vd_resize_request *request);
    /* Whether resize may make the disk smaller (VHDX yes, VHD no), and
     * the largest virtual size the format holds. */
    int can_shrink;
    uint64_t max_virtual_size;
    /* Whether resize takes a differencing image of this format, which may
     * then differ in size from its parent: its reads past the parent's end
     * are zeros (VHDX, as Hyper-V resizes a child alone; VHD no). */
    int resizes_children;
    uint32_t (*compact)(vd_image *image, const vd_compact_request *request);
    /* Whether CompactVirtualDisk accepts a fixed image of this format, as
     * a call that changes nothing (VHDX); otherwise it is refused with
     * ERROR_VHD_INVALID_TYPE (VHD). */
    int compacts_fixed;
    uint32_t (*merge)(vd_image *image, const vd_merge_request *request);
} vd_format_driver;

extern const vd_format_driver vd_vhd_driver;
extern const vd_format_driver vd_vhdx_driver;
extern const vd_format_driver vd_iso_driver;

/* The registry, in signature order: the VHDX identifier and the VHD cookie
 * are exact byte strings at fixed places; the ISO test (a descriptor
 * identifier at byte 32,768 of a file sized in whole 2 KiB sectors) comes
 * last because a disk image's payload may itself hold an ISO 9660 volume. */
extern const vd_format_driver *const vd_format_drivers[];
extern const size_t vd_format_driver_count;

/* The driver of a device id; NULL for an unknown one. */
const vd_format_driver *vd_format_driver_of(uint32_t device);

/* The first driver other than `except` whose signature the file carries,
 * among those `accept` allows (NULL: all); NULL when none does. */
const vd_format_driver *vd_format_driver_by_signature(const vd_file *file,
                                                      const vd_format_driver *except,
                                                      int (*accept)(const vd_format_driver *));

/* The driver of an opened image (its device). */
static inline const vd_format_driver *vd_image_driver(const vd_image *image)
{
    return vd_format_driver_of(image->device);
}

/* The update ops of `image`'s format; NULL for a format that changes
 * nothing (ISO). */
static inline const vd_update_ops *vd_update_ops_of(const vd_image *image)
{
    const vd_format_driver *driver = vd_image_driver(image);
    return driver != NULL ? driver->update : NULL;
}

#endif
