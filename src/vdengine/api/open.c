/* OpenVirtualDisk on image files.
 *
 * Argument rules (each gives ERROR_INVALID_PARAMETER, 87, before the file is
 * touched).  OpenVirtualDisk's Remarks (seeds/000) list NULL
 * VirtualStorageType, NULL Path, mask bits outside ALL, unknown flags and an
 * unknown version; the others follow from the SDK:
 *   - VirtualStorageType, Path or Handle is NULL;
 *   - the access mask has bits outside VIRTUAL_DISK_ACCESS_ALL;
 *   - Flags has bits outside the accepted set below;
 *   - Parameters->Version is not 1, 2 or 3 (Windows 7 knew 1, Windows 8
 *     added 2, Windows 10 added 3; the SDK header declares all three);
 *   - Version 2 or 3 with an access mask other than VIRTUAL_DISK_ACCESS_NONE
 *     ("the only acceptable access mask for V2 handle opens", the SDK
 *     samples; CreateVirtualDisk documents the same rule);
 *   - Version 3 with a SnapshotId: it selects a snapshot of a VHD Set, and
 *     no image this engine opens has snapshots to select.
 * Parameters NULL means version 1 with RWDepth OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT.
 *
 * Flags.  The Windows 7 text allows NO_PARENTS | BLANK_FILE only; the SDK
 * has defined ten more bits since, and current Windows accepts them, so
 * the engine accepts every flag the SDK defines except BOOT_DRIVE ("only
 * specified at boot time ... must be kernel mode", SDK header), which a
 * caller of this API can never be.  What they do here:
 *   NO_PARENTS, CUSTOM_DIFF_CHAIN   open the child alone (AddVirtualDiskParent,
 *                                   which would add parents by hand, is not
 *                                   implemented); parent information is
 *                                   still reported from the child's records;
 *   IGNORE_RELATIVE_PARENT_LOCATOR  the child's relative locator is not
 *                                   searched (its ancestors' locators are
 *                                   searched as stored);
 *   BLANK_FILE                      "do not perform virtual disk
 *                                   verification" of an empty file: the
 *                                   engine cannot answer for a file it has
 *                                   not parsed, so it verifies regardless;
 *   CACHED_IO, PARENT_CACHED_IO, NO_WRITE_HARDENING, VHDSET_FILE_ONLY,
 *   SUPPORT_COMPRESSED_VOLUMES, SUPPORT_SPARSE_FILES_ANY_FS,
 *   SUPPORT_ENCRYPTED_FILES          no effect (host caching is the page
 *                                   cache's; a compressed or encrypted host
 *                                   file is still refused with 618 / 6002).
 *
 * Read-only or writable.  Version 1: the access mask asks for writing when
 * it holds VIRTUAL_DISK_ACCESS_WRITABLE bits (ATTACH_RW, CREATE, METAOPS),
 * and RWDepth says how many images, the child first, are opened read-write;
 * RWDepth 0 is documented as "do not open for read/write at any depth", so
 * it makes the whole open read-only whatever the mask says (an attach or
 * edit through that handle is then refused by the file's access).  Version 2
 * and 3: ReadOnly or GetInfoOnly opens read-only, otherwise the child is
 * opened read-write.  A read-write open takes the exclusive lock on the
 * file (io.c), so a second writer, in this process or another, gets
 * ERROR_SHARING_VIOLATION (32).
 *
 * ISO images.  Windows opens them read-only and "using the V1 API"
 * (SDK samples), ATTACH_RW, CREATE, METAOPS (hence ALL) "are not supported
 * for ISO virtual disks" (VIRTUAL_DISK_ACCESS_MASK), nor are NO_PARENTS and
 * BLANK_FILE (OPEN_VIRTUAL_DISK_FLAG).  Each of these gives
 * ERROR_NOT_SUPPORTED (50), the code the SDK samples return for a
 * read-write ISO request.
 *
 * The storage type, the extension and the signature choose the parser
 * (storage_type.c).  On any failure *Handle is left as it was. */
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/guid.h"
#include "api/attach.h"
#include "api/handle.h"
#include "api/storage_type.h"
#include "base/utf16.h"
#include "base/vd_errors.h"
#include "vdengine.h"

#define VD_OPEN_FLAGS_ACCEPTED                                                              \
    (OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS | OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE                  \
     | OPEN_VIRTUAL_DISK_FLAG_CACHED_IO | OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN          \
     | OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO | OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY    \
     | OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR                                \
     | OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING                                            \
     | OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES                                    \
     | OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS                                   \
     | OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES)

#define VD_OPEN_FLAGS_CHILD_ONLY \
    (OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS | OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN)

#define VD_OPEN_FLAGS_NOT_FOR_ISO \
    (OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS | OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE)

/* The open request once its arguments have been checked. */
typedef struct vd_open_terms {
    uint32_t version;
    uint32_t access_mask;
    uint32_t flags;
    uint32_t writable_depth;   /* 0: everything read-only */
    int get_info_only;
    int has_snapshot_id;
} vd_open_terms;

static uint32_t vd_open_terms_parse(VIRTUAL_DISK_ACCESS_MASK mask, OPEN_VIRTUAL_DISK_FLAG flags,
                                    const OPEN_VIRTUAL_DISK_PARAMETERS *parameters,
                                    vd_open_terms *terms)
{
    if (((uint32_t)mask & ~(uint32_t)VIRTUAL_DISK_ACCESS_ALL) != 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (((uint32_t)flags & ~(uint32_t)VD_OPEN_FLAGS_ACCEPTED) != 0)
        return VD_ERROR_INVALID_PARAMETER;

    memset(terms, 0, sizeof *terms);
    terms->access_mask = (uint32_t)mask;
    terms->flags = (uint32_t)flags;
    terms->version = parameters == NULL ? OPEN_VIRTUAL_DISK_VERSION_1 : (uint32_t)parameters->Version;

    switch (terms->version) {
    case OPEN_VIRTUAL_DISK_VERSION_1: {
        uint32_t depth = parameters == NULL ? OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT
                                            : parameters->Version1.RWDepth;
        if ((terms->access_mask & VIRTUAL_DISK_ACCESS_WRITABLE) != 0)
            terms->writable_depth = depth;
        return VD_ERROR_SUCCESS;
    }
    case OPEN_VIRTUAL_DISK_VERSION_2:
    case OPEN_VIRTUAL_DISK_VERSION_3:
        if (terms->access_mask != VIRTUAL_DISK_ACCESS_NONE)
            return VD_ERROR_INVALID_PARAMETER;
        /* Version3 begins with the Version2 fields, at the same offsets. */
        terms->get_info_only = parameters->Version2.GetInfoOnly != FALSE;
        if (!terms->get_info_only && parameters->Version2.ReadOnly == FALSE)
            terms->writable_depth = 1;
        terms->has_snapshot_id = terms->version == OPEN_VIRTUAL_DISK_VERSION_3
                                 && !vd_api_guid_is_zero(&parameters->Version3.SnapshotId);
        return VD_ERROR_SUCCESS;
    default:
        return VD_ERROR_INVALID_PARAMETER;
    }
}

static uint32_t vd_open_terms_check_iso(const vd_open_terms *terms)
{
    if (terms->version != OPEN_VIRTUAL_DISK_VERSION_1
        || (terms->access_mask & VIRTUAL_DISK_ACCESS_WRITABLE) != 0
        || (terms->flags & VD_OPEN_FLAGS_NOT_FOR_ISO) != 0)
        return VD_ERROR_NOT_SUPPORTED;
    return VD_ERROR_SUCCESS;
}

/* Opens the ancestors of a differencing image, unless the flags keep the
 * child alone. */
uint32_t vd_disk_open_parents(const vd_disk *disk, vd_chain *chain)
{
    if ((disk->open_flags & VD_OPEN_FLAGS_CHILD_ONLY) != 0 || !disk->image.has_parent)
        return VD_ERROR_SUCCESS;
    if ((disk->open_flags & OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR) == 0)
        return vd_chain_open(&disk->image, disk->writable_depth, chain);
    /* The chain reads the child's locators from the image it is given; a
     * copy without the relative one keeps it out of the search. */
    vd_image child = disk->image;
    child.parent.relative_path = NULL;
    return vd_chain_open(&child, disk->writable_depth, chain);
}

static void vd_disk_set_terms(vd_disk *disk, const vd_open_terms *terms)
{
    disk->access_mask = terms->access_mask;
    disk->open_flags = terms->flags;
    disk->open_version = terms->version;
    disk->writable_depth = terms->writable_depth;
    disk->read_only = terms->writable_depth == 0;
    disk->get_info_only = terms->get_info_only;
    disk->may_detach = terms->version != OPEN_VIRTUAL_DISK_VERSION_1
                       || (terms->access_mask & VIRTUAL_DISK_ACCESS_DETACH) != 0;
}

/* The rest of an open once the image is parsed into `disk`: the terms,
 * the parents and the handle.  Frees the disk on failure. */
static uint32_t vd_open_disk_finish(vd_disk *disk, const vd_open_terms *terms, HANDLE *handle)
{
    uint32_t status = VD_ERROR_SUCCESS;
    /* The signature may have found an ISO the request did not name. */
    if (disk->image.device == VD_DEVICE_ISO)
        status = vd_open_terms_check_iso(terms);
    if (status == VD_ERROR_SUCCESS) {
        vd_disk_set_terms(disk, terms);
        status = vd_attach_check_open(disk);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_disk_open_parents(disk, &disk->chain);
    if (status == VD_ERROR_SUCCESS)
        status = vd_handle_insert(disk, handle);
    if (status != VD_ERROR_SUCCESS)
        vd_disk_free(disk);
    return status;
}

static uint32_t vd_open_disk(const VIRTUAL_STORAGE_TYPE *type, const char *path,
                             const vd_open_terms *terms, HANDLE *handle)
{
    uint32_t device;
    uint32_t status = vd_storage_type_device(type, path, &device);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (terms->has_snapshot_id)
        return VD_ERROR_INVALID_PARAMETER;
    if (device == VIRTUAL_STORAGE_TYPE_DEVICE_ISO) {
        status = vd_open_terms_check_iso(terms);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }

    vd_disk *disk = vd_disk_new();
    if (disk == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_file file;
    status = vd_file_open(&file, path, terms->writable_depth > 0);
    if (status == VD_ERROR_SUCCESS) {
        int from_extension = type->DeviceId == VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN;
        status = vd_storage_open_image(&file, device, from_extension, &disk->image);
        if (status != VD_ERROR_SUCCESS)
            vd_file_close(&file);
    }
    if (status != VD_ERROR_SUCCESS) {
        vd_disk_free(disk);
        return status;
    }
    return vd_open_disk_finish(disk, terms, handle);
}

uint32_t vd_open_disk_on_file(vd_file *file, uint32_t device, VIRTUAL_DISK_ACCESS_MASK mask,
                              OPEN_VIRTUAL_DISK_FLAG flags,
                              const OPEN_VIRTUAL_DISK_PARAMETERS *parameters, HANDLE *handle)
{
    vd_open_terms terms;
    uint32_t status = vd_open_terms_parse(mask, flags, parameters, &terms);
    if (status == VD_ERROR_SUCCESS
        && (terms.has_snapshot_id || (terms.writable_depth > 0) != (file->writable != 0)))
        status = VD_ERROR_INVALID_PARAMETER;
    vd_disk *disk = NULL;
    if (status == VD_ERROR_SUCCESS) {
        disk = vd_disk_new();
        if (disk == NULL)
            status = VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_storage_open_image(file, device, 0, &disk->image);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(file);
        vd_disk_free(disk);
        return status;
    }
    return vd_open_disk_finish(disk, &terms, handle);
}

DWORD WINAPI OpenVirtualDisk(PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
                             VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask,
                             OPEN_VIRTUAL_DISK_FLAG Flags,
                             POPEN_VIRTUAL_DISK_PARAMETERS Parameters, PHANDLE Handle)
{
    vd_detail_clear();
    if (VirtualStorageType == NULL || Path == NULL || Handle == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_open_terms terms;
    uint32_t status = vd_open_terms_parse(VirtualDiskAccessMask, Flags, Parameters, &terms);
    if (status != VD_ERROR_SUCCESS)
        return status;

    char *host_path;
    status = vd_utf16_path_to_host(Path, &host_path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    HANDLE opened;
    status = vd_open_disk(VirtualStorageType, host_path, &terms, &opened);
    free(host_path);
    if (status == VD_ERROR_SUCCESS)
        *Handle = opened;
    return status;
}
