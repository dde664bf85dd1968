/* CreateVirtualDisk on image files.
 *
 * Argument rules.  ERROR_INVALID_PARAMETER (87), before any file is touched
 * (CreateVirtualDisk and CREATE_VIRTUAL_DISK_PARAMETERS pages, the SDK
 * samples' comments, New-VHD):
 *   - VirtualStorageType, Path, Parameters or Handle is NULL;
 *   - the access mask has bits outside VIRTUAL_DISK_ACCESS_ALL;
 *   - Flags has bits the SDK does not define;
 *   - Parameters->Version is not 1 to 4;
 *   - version 2 or later with an access mask other than NONE;
 *   - version 1 for anything but a VHD ("V1 supports VHD only");
 *   - ParentPath and SourcePath both given;
 *   - MaximumSize not 0 with a ParentPath (a child has its parent's size),
 *     0 without ParentPath or SourcePath, not a multiple of 512 or of the
 *     logical sector size;
 *   - FULL_PHYSICAL_ALLOCATION (a fixed disk) with a ParentPath;
 *   - BlockSizeInBytes: fixed disks 0 only; VHD 512 KiB or 2 MiB; VHDX a
 *     power of two from 1 MiB to 256 MiB;
 *   - SectorSizeInBytes: VHD 512; VHDX 512 or 4096, and for a differencing
 *     VHDX the parent's;
 *   - PhysicalSectorSizeInBytes: VHD 512; VHDX 512 or 4096.
 * Defaults for 0: block size 2 MiB for dynamic VHD, the parent's (if it is
 * 512 KiB or 2 MiB, else 2 MiB) for differencing VHD, 32 MiB for dynamic
 * VHDX, 2 MiB for differencing VHDX; logical sector 512 (differencing
 * VHDX: the parent's); physical sector 512 for VHD, 4096 for VHDX; with a
 * SourcePath the size is the source's.  A zero UniqueId gets a random
 * version-4 GUID.
 *
 * Other codes:
 *   size above the format's limit (VHD 2040 GiB,   VHD_INVALID_SIZE: the size
 *     VHDX 64 TiB), also when taken from a source   is valid input, just more
 *                                                   than the format holds
 *   MaximumSize below the source's size           87
 *   storage type ISO (images are made by          NOT_SUPPORTED (50)
 *     authoring tools, not by this API)
 *   storage type VHD Set, another vendor, or an   VIRTDISK_PROVIDER_NOT_FOUND,
 *     unknown type with a path whose extension      as OpenVirtualDisk
 *     names no format (nothing to sniff yet)
 *   a parent or source that is an ISO, a VHD      NOT_SUPPORTED (50)
 *     child of a VHDX parent
 *   flags that need VHD Sets, resilient change    NOT_SUPPORTED (50)
 *     tracking or persistent memory
 *     (CREATE_BACKING_STORAGE, USE_CHANGE_TRACKING_SOURCE_LIMIT,
 *     PRESERVE_PARENT_CHANGE_TRACKING_STATE, VHD_SET_USE_ORIGINAL_BACKING_
 *     STORAGE, PMEM_COMPATIBLE), and version 3/4 fields for the same
 *     (SourceLimitPath, BackingStorageType, PmemAddressAbstractionType,
 *     DataAlignment)
 *   the path exists                               FILE_EXISTS (80)
 *   a directory on the way does not exist         PATH_NOT_FOUND (3)
 *   parent or source cannot be opened             what OpenVirtualDisk says
 *   writing fails                                 the host error (DISK_FULL, ...)
 *
 * Sources.  SourcePath names an image (opened as OpenVirtualDisk opens it,
 * read-only with its chain) or, when SourceVirtualStorageType leaves the
 * device unknown, a block device (/dev/sdb, /dev/loop0, a /dev/disk/by-id
 * link), the counterpart of Windows' \\.\PhysicalDriveN: its whole content
 * is copied and its size is the default size.
 *
 * Fixed or dynamic.  FULL_PHYSICAL_ALLOCATION makes a fixed disk, without
 * it the disk is dynamic (differencing with a parent).  A fixed disk's space
 * is reserved with fallocate (constant time, no zeros written); with
 * SPARSE_FILE as well ("create the virtual disk as a sparse file") the file
 * is only sized, so a fixed disk of any size costs no space until written.
 *
 * Flags with no effect here: PREVENT_WRITES_TO_SOURCE_DISK (the source is
 * opened read-only, and its shared lock keeps writers out for the copy's
 * duration anyway), SUPPORT_COMPRESSED_VOLUMES,
 * SUPPORT_SPARSE_FILES_ANY_FS.  A VHDX child created without a UniqueId
 * takes its VHDX parent's virtual disk id (Page 83), as IsVirtualDisk items
 * are copied ([MS-VHDX] 2.6.1.2); DO_NOT_COPY_METADATA_FROM_PARENT gives it
 * a new one instead.  User metadata is never copied.  SecurityDescriptor
 * and ProviderSpecificFlags are ignored (the file gets 0666 minus the
 * umask, as files here do).
 * ResiliencyGuid is accepted and not stored.
 *
 * Overlapped: the engine creates synchronously; with an OVERLAPPED the call
 * returns ERROR_SUCCESS having done all the work.
 *
 * The file's life.  The path is created with O_CREAT | O_EXCL, so an
 * existing file is never touched, and that one descriptor, holding the
 * writer's lock from the start, is what the format's creator writes
 * through.  Then the image is opened exactly as OpenVirtualDisk opens it
 * (version 1: the given mask, RWDepth 1; later versions: V2 parameters,
 * mask NONE, read-write, with the given OpenFlags) and that handle is
 * returned: a writable handle on the same descriptor (parsed from the file
 * like any image), a read-only one by opening the path again.  Nothing is
 * flushed to stable storage: the image is complete in the page cache, and
 * a caller that needs it to survive a crash flushes, as for any file it
 * writes.  If anything after the file's creation fails, the file is
 * removed and the code returned, so a failed create leaves nothing behind.
 *
 * Parent locations stored in a differencing child: the parent's absolute
 * host path, and its path relative to the child's directory in Windows
 * spelling (".\base.vhd", "..\dir\base.vhdx"), both found again by the
 * chain resolver (chain.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* fstat under -std=c11 */
#endif

#include "api/create.h"
#include "base/detail.h"
#include "base/guid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/handle.h"
#include "api/storage_type.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/parent_paths.h"
#include "formats/vhd/vhd_format.h"
#include "formats/vhdx/vhdx_format.h"
#include "host/block_device.h"
#include "vdengine.h"

#define VD_CREATE_FLAGS_KNOWN                                                                 \
    (CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION                                        \
     | CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK                                 \
     | CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT                              \
     | CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE                                        \
     | CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT                              \
     | CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE                         \
     | CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE                          \
     | CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE | CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE         \
     | CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES                                    \
     | CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS)

#define VD_CREATE_FLAGS_UNSUPPORTED                                                           \
    (CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE                                          \
     | CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT                              \
     | CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE                         \
     | CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE                          \
     | CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE)

/* The parameters of every version, in one shape. */
typedef struct vd_create_request {
    uint32_t version;
    uint32_t access_mask;
    uint32_t flags;
    GUID unique_id;
    uint64_t maximum_size;
    uint32_t block_size;
    uint32_t sector_size;
    uint32_t physical_sector_size;
    PCWSTR parent_path;
    PCWSTR source_path;
    uint32_t open_flags;
    VIRTUAL_STORAGE_TYPE parent_type;
    VIRTUAL_STORAGE_TYPE source_type;
    int needs_unsupported_feature;
} vd_create_request;

static int vd_storage_type_is_zero(const VIRTUAL_STORAGE_TYPE *type)
{
    return type->DeviceId == 0 && vd_api_guid_is_zero(&type->VendorId);
}

static uint32_t vd_create_request_parse(VIRTUAL_DISK_ACCESS_MASK mask, CREATE_VIRTUAL_DISK_FLAG flags,
                                        const CREATE_VIRTUAL_DISK_PARAMETERS *parameters,
                                        vd_create_request *request)
{
    memset(request, 0, sizeof *request);
    request->access_mask = (uint32_t)mask;
    request->flags = (uint32_t)flags;
    request->version = (uint32_t)parameters->Version;
    if ((request->access_mask & ~(uint32_t)VIRTUAL_DISK_ACCESS_ALL) != 0
        || (request->flags & ~(uint32_t)VD_CREATE_FLAGS_KNOWN) != 0)
        return VD_ERROR_INVALID_PARAMETER;

    if (request->version == CREATE_VIRTUAL_DISK_VERSION_1) {
        request->unique_id = parameters->Version1.UniqueId;
        request->maximum_size = parameters->Version1.MaximumSize;
        request->block_size = parameters->Version1.BlockSizeInBytes;
        request->sector_size = parameters->Version1.SectorSizeInBytes;
        request->parent_path = parameters->Version1.ParentPath;
        request->source_path = parameters->Version1.SourcePath;
        return VD_ERROR_SUCCESS;
    }
    if (request->version < CREATE_VIRTUAL_DISK_VERSION_2
        || request->version > CREATE_VIRTUAL_DISK_VERSION_4)
        return VD_ERROR_INVALID_PARAMETER;
    if (request->access_mask != VIRTUAL_DISK_ACCESS_NONE)
        return VD_ERROR_INVALID_PARAMETER;

    /* Versions 3 and 4 begin with the version 2 fields, at the same offsets. */
    request->unique_id = parameters->Version2.UniqueId;
    request->maximum_size = parameters->Version2.MaximumSize;
    request->block_size = parameters->Version2.BlockSizeInBytes;
    request->sector_size = parameters->Version2.SectorSizeInBytes;
    request->physical_sector_size = parameters->Version2.PhysicalSectorSizeInBytes;
    request->parent_path = parameters->Version2.ParentPath;
    request->source_path = parameters->Version2.SourcePath;
    request->open_flags = (uint32_t)parameters->Version2.OpenFlags;
    request->parent_type = parameters->Version2.ParentVirtualStorageType;
    request->source_type = parameters->Version2.SourceVirtualStorageType;
    if (request->version >= CREATE_VIRTUAL_DISK_VERSION_3)
        request->needs_unsupported_feature
            = parameters->Version3.SourceLimitPath != NULL
              || !vd_storage_type_is_zero(&parameters->Version3.BackingStorageType);
    if (request->version >= CREATE_VIRTUAL_DISK_VERSION_4)
        request->needs_unsupported_feature
            |= !vd_api_guid_is_zero(&parameters->Version4.PmemAddressAbstractionType)
               || parameters->Version4.DataAlignment != 0;
    return VD_ERROR_SUCCESS;
}

/* The checks that need nothing but the request and the target format. */
static uint32_t vd_create_request_check(const vd_create_request *request, uint32_t device)
{
    int is_vhd = device == VD_DEVICE_VHD;
    int fixed = (request->flags & CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION) != 0;
    int has_parent = request->parent_path != NULL;
    int has_source = request->source_path != NULL;

    if (request->version == CREATE_VIRTUAL_DISK_VERSION_1 && !is_vhd)
        return VD_ERROR_INVALID_PARAMETER;
    if (has_parent && has_source)
        return VD_ERROR_INVALID_PARAMETER;
    if (has_parent && (fixed || request->maximum_size != 0))
        return VD_ERROR_INVALID_PARAMETER;
    if (!has_parent && !has_source && request->maximum_size == 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (request->maximum_size % VD_VHD_SECTOR_SIZE != 0)
        return VD_ERROR_INVALID_PARAMETER;

    uint32_t sector = request->sector_size;
    uint32_t physical = request->physical_sector_size;
    if (is_vhd) {
        if ((sector != 0 && sector != 512) || (physical != 0 && physical != 512))
            return VD_ERROR_INVALID_PARAMETER;
    } else {
        if ((sector != 0 && sector != 512 && sector != 4096)
            || (physical != 0 && physical != 512 && physical != 4096))
            return VD_ERROR_INVALID_PARAMETER;
    }
    if (sector != 0 && request->maximum_size % sector != 0)
        return VD_ERROR_INVALID_PARAMETER;

    uint32_t block = request->block_size;
    if (fixed) {
        if (block != 0)
            return VD_ERROR_INVALID_PARAMETER;
    } else if (block != 0) {
        if (is_vhd && block != VD_VHD_SMALL_BLOCK_SIZE && block != VD_VHD_DEFAULT_BLOCK_SIZE)
            return VD_ERROR_INVALID_PARAMETER;
        if (!is_vhd && (block < VD_VHDX_MIN_BLOCK_SIZE || block > VD_VHDX_MAX_BLOCK_SIZE
                        || (block & (block - 1)) != 0))
            return VD_ERROR_INVALID_PARAMETER;
    }

    if ((request->flags & VD_CREATE_FLAGS_UNSUPPORTED) != 0 || request->needs_unsupported_feature)
        return VD_ERROR_NOT_SUPPORTED;
    return VD_ERROR_SUCCESS;
}

/* ---- parents and sources ------------------------------------------------- */

/* A parent or source disk opened the way OpenVirtualDisk opens it
 * (read-only, with its chain), held for the duration of the create. */
typedef struct vd_create_input {
    HANDLE handle;
    vd_disk *disk;
    /* A block device source has no handle and no disk, only this file. */
    vd_file device;
    /* The source as the creators read it: the image with read ops that go
     * through its chain (creators call source->ops->read(source, NULL, ...)). */
    vd_format_ops view_ops;
    vd_image view;
} vd_create_input;

static uint32_t vd_create_input_read(vd_image *image, vd_image *parent, uint64_t offset,
                                     void *buffer, uint64_t length)
{
    (void)parent;
    /* view_ops is a member of the input; image->ops points at it. */
    const vd_create_input *input = (const vd_create_input *)((const char *)image->ops
                                                             - offsetof(vd_create_input, view_ops));
    return vd_chain_read(&input->disk->image, &input->disk->chain, offset, buffer, length);
}

static uint32_t vd_create_input_open(PCWSTR path, const VIRTUAL_STORAGE_TYPE *type,
                                     vd_create_input *input)
{
    memset(input, 0, sizeof *input);
    VIRTUAL_STORAGE_TYPE storage_type = *type;
    uint32_t status = OpenVirtualDisk(&storage_type, path, VIRTUAL_DISK_ACCESS_READ,
                                      OPEN_VIRTUAL_DISK_FLAG_NONE, NULL, &input->handle);
    if (status != VD_ERROR_SUCCESS)
        return status;
    input->disk = vd_handle_acquire(input->handle);
    if (input->disk == NULL) {
        vd_engine_close_handle(input->handle);
        input->handle = NULL;
        return VD_ERROR_INVALID_HANDLE;
    }
    input->view = input->disk->image;
    input->view_ops.read = vd_create_input_read;
    input->view.ops = &input->view_ops;
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_create_device_read(vd_image *image, vd_image *parent, uint64_t offset,
                                      void *buffer, uint64_t length)
{
    (void)parent;
    return vd_file_read(&image->file, offset, buffer, (size_t)length);
}

/* A block device named as SourcePath, as Windows takes \\.\PhysicalDriveN:
 * its whole content, read as it is.  `path` is the host path. */
static uint32_t vd_create_device_input_open(const char *path, vd_create_input *input)
{
    memset(input, 0, sizeof *input);
    vd_block_device_geometry geometry;
    uint32_t status = vd_block_device_open(&input->device, path, &geometry);
    if (status != VD_ERROR_SUCCESS)
        return status;
    input->view.file = input->device;
    input->view.virtual_size = geometry.size;
    input->view.logical_sector_size = geometry.logical_sector_size;
    input->view.physical_sector_size = geometry.physical_sector_size;
    input->view_ops.read = vd_create_device_read;
    input->view.ops = &input->view_ops;
    return VD_ERROR_SUCCESS;
}

/* The source: a block device when the type leaves the device open and the
 * path names one, otherwise an image opened as OpenVirtualDisk opens it. */
static uint32_t vd_create_source_open(PCWSTR path, const VIRTUAL_STORAGE_TYPE *type,
                                      vd_create_input *input)
{
    if (type->DeviceId == VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN) {
        char *host_path;
        uint32_t status = vd_utf16_path_to_host(path, &host_path);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (vd_block_device_is(host_path))
            status = vd_create_device_input_open(host_path, input);
        else
            status = VD_ERROR_FILE_NOT_FOUND;   /* not a device: open it as an image */
        free(host_path);
        if (status != VD_ERROR_FILE_NOT_FOUND)
            return status;
    }
    return vd_create_input_open(path, type, input);
}

static void vd_create_input_close(vd_create_input *input)
{
    vd_file_close(&input->device);
    if (input->disk == NULL)
        return;
    vd_handle_release(input->handle);
    vd_engine_close_handle(input->handle);
    input->disk = NULL;
    input->handle = NULL;
}

/* ---- the spec ----------------------------------------------------------- */

/* Fills the format, sizes and defaults of `spec` from the request and the
 * opened parent or source. */
static uint32_t vd_create_spec_fill(const vd_create_request *request, uint32_t device,
                                    const vd_image *parent, const vd_image *source,
                                    vd_create_spec *spec)
{
    int is_vhd = device == VD_DEVICE_VHD;
    spec->device = device;
    if (parent != NULL)
        spec->subtype = VD_SUBTYPE_DIFFERENCING;
    else if ((request->flags & CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION) != 0)
        spec->subtype = VD_SUBTYPE_FIXED;
    else
        spec->subtype = VD_SUBTYPE_DYNAMIC;
    spec->full_allocation = spec->subtype == VD_SUBTYPE_FIXED
                            && (request->flags & CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE) == 0;

    /* A block device source has no driver: it is content, never read-only. */
    if (source != NULL && vd_image_driver(source) != NULL
        && vd_image_driver(source)->read_only)
        return VD_ERROR_NOT_SUPPORTED;
    if (parent != NULL && !vd_image_driver(parent)->can_parent(device))
        return VD_ERROR_NOT_SUPPORTED;

    spec->logical_sector_size = request->sector_size != 0 ? request->sector_size : 512;
    if (parent != NULL && !is_vhd) {
        uint32_t inherited = parent->logical_sector_size;
        if (request->sector_size == 0)
            spec->logical_sector_size = inherited;
        else if (request->sector_size != inherited)
            return VD_ERROR_INVALID_PARAMETER;
    }
    spec->physical_sector_size = request->physical_sector_size != 0
                                     ? request->physical_sector_size
                                     : (is_vhd ? 512u : 4096u);

    spec->virtual_size = request->maximum_size;
    if (parent != NULL)
        spec->virtual_size = parent->virtual_size;
    if (source != NULL) {
        if (request->maximum_size == 0)
            spec->virtual_size = source->virtual_size;
        else if (request->maximum_size < source->virtual_size)
            return VD_ERROR_INVALID_PARAMETER;
    }
    if (spec->virtual_size > (is_vhd ? VD_VHD_MAX_SIZE : VD_VHDX_MAX_VIRTUAL_SIZE))
        return VD_ERROR_VHD_INVALID_SIZE;
    if (spec->virtual_size == 0 || spec->virtual_size % spec->logical_sector_size != 0)
        return VD_ERROR_INVALID_PARAMETER;

    spec->block_size = request->block_size;
    if (spec->subtype == VD_SUBTYPE_FIXED) {
        spec->block_size = 0;
    } else if (spec->block_size == 0) {
        if (is_vhd && parent != NULL
            && (parent->block_size == VD_VHD_SMALL_BLOCK_SIZE
                || parent->block_size == VD_VHD_DEFAULT_BLOCK_SIZE))
            spec->block_size = parent->block_size;
        else if (is_vhd)
            spec->block_size = VD_VHD_DEFAULT_BLOCK_SIZE;
        else if (parent != NULL)
            spec->block_size = VD_VHDX_DEFAULT_DIFFERENCING_BLOCK_SIZE;
        else
            spec->block_size = VD_VHDX_DEFAULT_BLOCK_SIZE;
    }

    /* [MS-VHDX] 2.6.1.2: IsVirtualDisk items, Page 83 among them, pass to a
     * child, so a VHDX child shows its VHDX parent's virtual disk id unless
     * the caller names one or asks for nothing to be copied. */
    int inherits_id = parent != NULL && !is_vhd && parent->device == VD_DEVICE_VHDX
                      && (request->flags & CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT) == 0;
    if (vd_api_guid_is_zero(&request->unique_id) && inherits_id) {
        spec->unique_id = parent->virtual_disk_id;
        return VD_ERROR_SUCCESS;
    }
    if (vd_api_guid_is_zero(&request->unique_id))
        return vd_guid_random(spec->unique_id.bytes);
    spec->unique_id = vd_guid_from_api(&request->unique_id);
    return VD_ERROR_SUCCESS;
}

/* ---- the file ------------------------------------------------------------ */

/* The new file's size once the creator is done: the parser checks every
 * structure against it. */
static uint32_t vd_create_measure(vd_file *file)
{
    struct stat info;
    if (fstat(file->fd, &info) != 0)
        return vd_error_from_errno(errno);
    file->size = (uint64_t)info.st_size;
    return VD_ERROR_SUCCESS;
}

/* Creates `path` (exclusively, writable and locked from the first moment)
 * and writes the image into it.  On success `file` stays open for the
 * handle; on failure the file is closed and removed. */
static uint32_t vd_create_write(const char *path, vd_create_spec *spec, const vd_image *parent,
                                vd_file *file)
{
    uint32_t status = vd_file_create(file, path);
    if (status != VD_ERROR_SUCCESS)
        return status;

    char *absolute = NULL;
    char *relative = NULL;
    if (parent != NULL) {
        status = vd_parent_paths(file->path, parent->file.path, &absolute, &relative);
        spec->parent_absolute_path = absolute;
        spec->parent_relative_path = relative;
    }
    if (status == VD_ERROR_SUCCESS) {
        const vd_format_driver *driver = vd_format_driver_of(spec->device);
        status = driver != NULL && driver->create != NULL ? driver->create(file, spec)
                                                          : VD_ERROR_NOT_SUPPORTED;
    }
    free(absolute);
    free(relative);
    spec->parent_absolute_path = NULL;
    spec->parent_relative_path = NULL;
    if (status == VD_ERROR_SUCCESS)
        status = vd_create_measure(file);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(file);
        unlink(path);
    }
    return status;
}

/* Opens the new image as OpenVirtualDisk would for this request (version 1:
 * the given mask, RWDepth 1; later versions: V2 parameters, read-write,
 * the given OpenFlags), and closes `file` one way or the other.  A writable
 * handle takes over the descriptor that wrote the image, so the path is not
 * opened again and the writer's lock is never let go; the image is still
 * parsed from the file like any other.  A read-only handle (version 1 with
 * a mask that grants no writing) must hold a reader's lock on a read-only
 * descriptor, so the path is opened again for it. */
static uint32_t vd_create_open_result(const vd_create_request *request, uint32_t device,
                                      PCWSTR path, vd_file *file, HANDLE *handle)
{
    static const GUID microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    if (request->version == CREATE_VIRTUAL_DISK_VERSION_1) {
        parameters.Version = OPEN_VIRTUAL_DISK_VERSION_1;
        parameters.Version1.RWDepth = 1;
        VIRTUAL_DISK_ACCESS_MASK mask = (VIRTUAL_DISK_ACCESS_MASK)request->access_mask;
        if ((request->access_mask & VIRTUAL_DISK_ACCESS_WRITABLE) != 0)
            return vd_open_disk_on_file(file, device, mask, OPEN_VIRTUAL_DISK_FLAG_NONE,
                                        &parameters, handle);
        vd_file_close(file);
        VIRTUAL_STORAGE_TYPE type;
        type.DeviceId = device;
        type.VendorId = microsoft;
        return OpenVirtualDisk(&type, path, mask, OPEN_VIRTUAL_DISK_FLAG_NONE, &parameters,
                               handle);
    }
    parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    return vd_open_disk_on_file(file, device, VIRTUAL_DISK_ACCESS_NONE,
                                (OPEN_VIRTUAL_DISK_FLAG)request->open_flags, &parameters, handle);
}

static uint32_t vd_create_disk(const VIRTUAL_STORAGE_TYPE *type, PCWSTR wide_path,
                               const char *path, const vd_create_request *request,
                               HANDLE *handle)
{
    uint32_t device;
    uint32_t status = vd_storage_type_device(type, path, &device);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (device == VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN)
        return VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND;
    if (device == VIRTUAL_STORAGE_TYPE_DEVICE_ISO)
        return VD_ERROR_NOT_SUPPORTED;
    status = vd_create_request_check(request, device);
    if (status != VD_ERROR_SUCCESS)
        return status;

    vd_create_input input;
    memset(&input, 0, sizeof input);
    const vd_image *parent = NULL;
    vd_image *source = NULL;
    if (request->parent_path != NULL) {
        status = vd_create_input_open(request->parent_path, &request->parent_type, &input);
        parent = status == VD_ERROR_SUCCESS ? &input.disk->image : NULL;
    } else if (request->source_path != NULL) {
        status = vd_create_source_open(request->source_path, &request->source_type, &input);
        source = status == VD_ERROR_SUCCESS ? &input.view : NULL;
    }
    vd_create_spec spec;
    memset(&spec, 0, sizeof spec);
    vd_file file;
    if (status == VD_ERROR_SUCCESS)
        status = vd_create_spec_fill(request, device, parent, source, &spec);
    if (status == VD_ERROR_SUCCESS) {
        spec.parent = parent;
        spec.source = source;
        spec.source_disk = source != NULL ? input.disk : NULL;
        status = vd_create_write(path, &spec, parent, &file);
    }
    vd_create_input_close(&input);
    if (status != VD_ERROR_SUCCESS)
        return status;

    status = vd_create_open_result(request, device, wide_path, &file, handle);
    if (status != VD_ERROR_SUCCESS)
        unlink(path);
    return status;
}

DWORD WINAPI CreateVirtualDisk(PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
                               VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask,
                               PSECURITY_DESCRIPTOR SecurityDescriptor,
                               CREATE_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
                               PCREATE_VIRTUAL_DISK_PARAMETERS Parameters,
                               LPOVERLAPPED Overlapped, PHANDLE Handle)
{
    vd_detail_clear();
    (void)SecurityDescriptor, (void)ProviderSpecificFlags, (void)Overlapped;
    if (VirtualStorageType == NULL || Path == NULL || Parameters == NULL || Handle == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_create_request request;
    uint32_t status = vd_create_request_parse(VirtualDiskAccessMask, Flags, Parameters, &request);
    if (status != VD_ERROR_SUCCESS)
        return status;

    char *host_path;
    status = vd_utf16_path_to_host(Path, &host_path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    HANDLE created;
    status = vd_create_disk(VirtualStorageType, Path, host_path, &request, &created);
    free(host_path);
    if (status == VD_ERROR_SUCCESS)
        *Handle = created;
    return status;
}
