/* What the engine knows of one opened image, whatever its format.
 *
 * A format parser (vhd.c, vhdx.c, iso.c) fills a vd_image from a vd_file;
 * OpenVirtualDisk and GetVirtualDiskInformation (open.c, info.c) work only
 * on this structure, so adding a format never touches the API layer.
 * Strings are UTF-8 and owned by the image (free them with
 * vd_image_release); GUIDs are kept in Windows layout (Data1..3 little
 * endian), the way the VHDX spec stores them and GUID structs hold them. */
#ifndef VDENGINE_IMAGE_H
#define VDENGINE_IMAGE_H

#include <stdint.h>

#include "host/io.h"

/* Same numbers as VIRTUAL_STORAGE_TYPE_DEVICE_* and the provider subtypes
 * of GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE. */
enum vd_device { VD_DEVICE_ISO = 1, VD_DEVICE_VHD = 2, VD_DEVICE_VHDX = 3 };
enum vd_subtype { VD_SUBTYPE_NONE = 0, VD_SUBTYPE_FIXED = 2, VD_SUBTYPE_DYNAMIC = 3,
                  VD_SUBTYPE_DIFFERENCING = 4 };

typedef struct vd_guid { uint8_t bytes[16]; } vd_guid;   /* Windows layout */

/* Where a differencing image says its parent is, as stored in the file. */
typedef struct vd_parent_locator {
    char *relative_path;        /* VHD W2ru / VHDX relative_path, NULL if absent */
    char *absolute_path;        /* VHD W2ku / VHDX absolute_win32_path */
    char *volume_path;          /* VHDX volume_path */
} vd_parent_locator;

struct vd_format_ops;

/* What a run of an image's virtual content is, for copies that move bytes
 * from file to file without reading them (disk/content_copy.h). */
enum vd_run_kind {
    VD_RUN_FILE = 1,     /* this image's file holds it, byte for byte */
    VD_RUN_ZERO = 2,     /* reads zeros, whatever any parent holds */
    VD_RUN_PARENT = 3,   /* this image holds none of it: its parent's */
    VD_RUN_READ = 4,     /* none of those: read it through the read op */
};

typedef struct vd_run {
    uint32_t kind;          /* enum vd_run_kind */
    uint64_t length;        /* bytes of the run, at least one sector */
    uint64_t file_offset;   /* VD_RUN_FILE: where the run starts in the file */
} vd_run;

typedef struct vd_image {
    vd_file file;
    uint32_t device;                 /* enum vd_device */
    uint32_t subtype;                /* enum vd_subtype; NONE for ISO */
    uint64_t virtual_size;           /* bytes the guest sees */
    uint32_t block_size;             /* 0 for fixed disks and ISO */
    uint32_t logical_sector_size;    /* 512 or 4096; 2048 for ISO */
    uint32_t physical_sector_size;
    vd_guid identifier;              /* VHD footer UniqueId; VHDX DataWriteGuid */
    vd_guid virtual_disk_id;         /* VHDX Page 83 data; VHD: the UniqueId */
    int has_parent;
    vd_guid parent_identifier;       /* VHD header ParentUniqueId; VHDX parent_linkage */
    int has_parent_identifier2;      /* VHDX parent_linkage2: a parent whose */
    vd_guid parent_identifier2;      /* DataWriteGuid equals it matches too */
    uint32_t parent_timestamp;       /* VHD header, seconds since 2000-01-01 UTC */
    vd_parent_locator parent;
    int is_4k_aligned;               /* data blocks all start on 4 KiB boundaries */
    uint64_t smallest_safe_virtual_size;
    uint32_t fragmentation_percent;
    const struct vd_format_ops *ops; /* how to read and release this format */
    void *format_state;              /* the parser's own data (BAT, ...) */
} vd_image;

/* Per-format behaviour beyond what vd_image holds. */
typedef struct vd_format_ops {
    /* Reads `length` bytes of virtual disk content at `offset` (a range
     * inside virtual_size).  Sectors this image does not hold are read from
     * `parent` for differencing images, zeros otherwise. */
    uint32_t (*read)(vd_image *image, vd_image *parent, uint64_t offset,
                     void *buffer, uint64_t length);
    /* Writes `length` bytes of virtual disk content at `offset` into this
     * image (never into a parent).  The caller (content.c) has checked that
     * offset and length are multiples of logical_sector_size, that the range
     * lies inside virtual_size and that the file is open for writing.
     * Crash safe: data first, flushed, then the block table, so that after
     * any prefix of its writes every sector reads its old or its new
     * content.  Calls on different blocks may run in parallel from several
     * threads; the format serialises only allocation.  NULL: the format
     * cannot be written (ISO). */
    uint32_t (*write)(vd_image *image, uint64_t offset, const void *buffer, uint64_t length);
    /* Tells the format that the sectors of [offset, offset + length) are no
     * longer in use (SCSI UNMAP), same alignment rules as write.  Afterwards
     * they read as zeros, or from the parent where the format says so.
     * NULL: the format has no unmap (the caller answers success without
     * doing anything, as a disk that ignores a hint may). */
    uint32_t (*unmap)(vd_image *image, uint64_t offset, uint64_t length);
    /* Whether every sector unmap reaches reads zeros afterwards, whatever
     * the parent holds: what the SCSI target reports as LBPRZ. */
    int unmap_reads_zeros;
    /* Makes every write so far durable: file data and format metadata. */
    uint32_t (*flush)(vd_image *image);
    void (*release)(vd_image *image);     /* frees format_state only */
    /* Whether every data block starts on a 4 KiB boundary and how
     * fragmented the blocks are, from the block table; reads the table if
     * needed.  NULL when the values set at open are final. */
    uint32_t (*block_layout)(vd_image *image, int *is_4k_aligned,
                             uint32_t *fragmentation_percent);
    /* The run of content starting at `offset` (sector aligned, inside
     * virtual_size), at most `length` bytes: one kind from its first byte
     * to its last, as the read op would read it now.  A format answers
     * VD_RUN_READ wherever the file's bytes are not the content as they
     * stand (a log replayed in memory, sector bitmaps, damage the read op
     * reports), so a run of another kind is always safe to copy.  NULL: the
     * whole disk is VD_RUN_READ. */
    uint32_t (*map)(vd_image *image, uint64_t offset, uint64_t length, vd_run *run);
} vd_format_ops;

/* Parsers.  Each reads only the structures its answer needs, validates every
 * length against file->size before use, and returns a Win32 code.  On failure
 * the image holds nothing that needs releasing.  The file is moved into the
 * image on success (image->file), and left to the caller on failure. */
uint32_t vd_vhd_open(vd_file *file, vd_image *image);
uint32_t vd_vhdx_open(vd_file *file, vd_image *image);
uint32_t vd_iso_open(vd_file *file, vd_image *image);

/* Cheap signature checks on the first/last bytes, for detecting the format
 * of a file whose extension says nothing. */
int vd_vhd_probe(const vd_file *file);
int vd_vhdx_probe(const vd_file *file);
int vd_iso_probe(const vd_file *file);

/* Frees the format state, the strings and closes the file. */
void vd_image_release(vd_image *image);

#endif
