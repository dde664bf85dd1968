/* Choosing the format parser for OpenVirtualDisk.
 *
 * The request.  VendorId must be VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT or
 * VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN: providers are looked up by
 * (DeviceId, VendorId), and every provider is Microsoft's, so any other
 * vendor finds none: ERROR_VIRTDISK_PROVIDER_NOT_FOUND ("a virtual disk
 * support provider for the specified file was not found").  A specific
 * DeviceId names a provider only together with the Microsoft vendor, so
 * DeviceId ISO/VHD/VHDX with the unknown vendor finds none either.
 * DeviceId VHDSET (4) and ids above it have no provider in this engine
 * (VHD Sets are not implemented): PROVIDER_NOT_FOUND as well, and so does a
 * ".vhds" path opened with an unknown type.
 *
 * Unknown device.  Windows picks the provider from the extension
 * (case-insensitive): .iso is ISO, .vhd and .avhd are VHD, .vhdx and .avhdx
 * are VHDX (Windows-classic-samples, Hyper-V/Storage: "Specify UNKNOWN for
 * both device and vendor so the system will use the file extension").  The
 * engine goes one step further where Windows would only fail: a file whose
 * extension names no format is recognised by its signature, and a file whose
 * extension names one format while its signature is another's (a VHDX
 * renamed .vhd) is opened as what it is.  A file with neither a known
 * extension nor a known signature gets PROVIDER_NOT_FOUND, as on Windows.
 * When the extension's parser rejects a file that no other signature
 * claims, its verdict stands (a damaged .vhd reports its VHD damage).
 *
 * Explicit device.  With DeviceId ISO, VHD or VHDX the caller states the
 * format, and that provider alone judges the file, as on Windows: an ISO
 * opened as ISO that is no ISO gets ERROR_FILE_CORRUPT (the code
 * OpenVirtualDisk documents for that provider), a VHDX opened as VHD gets
 * what the VHD parser says of a file without a VHD footer
 * (VHD_DRIVE_FOOTER_MISSING), a VHD opened as VHDX what the VHDX parser
 * says of a file without its identifier.  Nothing is guessed behind the
 * caller's back. */
#include "api/storage_type.h"

#include "disk/driver.h"

#include <string.h>

#include "base/detail.h"
#include "base/vd_errors.h"

static const GUID vd_vendor_unknown = VIRTDISK_API_VENDOR_UNKNOWN_INIT;
static const GUID vd_vendor_microsoft = VIRTDISK_API_VENDOR_MICROSOFT_INIT;

static int vd_guid_equal(const GUID *a, const GUID *b)
{
    return a->Data1 == b->Data1 && a->Data2 == b->Data2 && a->Data3 == b->Data3
           && memcmp(a->Data4, b->Data4, sizeof a->Data4) == 0;
}

static int vd_ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int vd_ascii_equal_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (vd_ascii_lower((unsigned char)*a) != vd_ascii_lower((unsigned char)*b))
            return 0;
    }
    return *a == *b;
}

static const struct {
    const char *extension;
    uint32_t device;
} vd_known_extensions[] = {
    { ".iso", VIRTUAL_STORAGE_TYPE_DEVICE_ISO },
    { ".vhd", VIRTUAL_STORAGE_TYPE_DEVICE_VHD },
    { ".avhd", VIRTUAL_STORAGE_TYPE_DEVICE_VHD },
    { ".vhdx", VIRTUAL_STORAGE_TYPE_DEVICE_VHDX },
    { ".avhdx", VIRTUAL_STORAGE_TYPE_DEVICE_VHDX },
    { ".vhds", VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET },
};

/* The device the extension of the last path component names, UNKNOWN for
 * none. */
static uint32_t vd_device_from_extension(const char *path)
{
    const char *name = strrchr(path, '/');
    name = name == NULL ? path : name + 1;
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN;
    size_t count = sizeof vd_known_extensions / sizeof vd_known_extensions[0];
    for (size_t i = 0; i < count; i++) {
        if (vd_ascii_equal_nocase(dot, vd_known_extensions[i].extension))
            return vd_known_extensions[i].device;
    }
    return VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN;
}

uint32_t vd_storage_type_device(const VIRTUAL_STORAGE_TYPE *type, const char *path,
                                uint32_t *device)
{
    int vendor_unknown = vd_guid_equal(&type->VendorId, &vd_vendor_unknown);
    if (!vendor_unknown && !vd_guid_equal(&type->VendorId, &vd_vendor_microsoft))
        return VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND;

    uint32_t requested = type->DeviceId;
    if (requested == VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN)
        requested = vd_device_from_extension(path);
    else if (vendor_unknown)
        return VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND;

    switch (requested) {
    case VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN:
    case VIRTUAL_STORAGE_TYPE_DEVICE_ISO:
    case VIRTUAL_STORAGE_TYPE_DEVICE_VHD:
    case VIRTUAL_STORAGE_TYPE_DEVICE_VHDX:
        *device = requested;
        return VD_ERROR_SUCCESS;
    default:
        return VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND;
    }
}

uint32_t vd_storage_open_image(vd_file *file, uint32_t device, int device_from_extension,
                               vd_image *image)
{
    const vd_format_driver *format = vd_format_driver_of(device);
    if (format == NULL) {
        format = vd_format_driver_by_signature(file, NULL, NULL);
        if (format == NULL)
            return vd_fail(VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND,
                           "the file has the signature of no format served here (VHD, VHDX, ISO)");
        return format->open(file, image);
    }

    /* The extension's parser goes first: it is right for nearly every file,
     * and a signature check would cost a read on every open. */
    uint32_t status = format->open(file, image);
    if (status == VD_ERROR_SUCCESS || !device_from_extension)
        return status;
    if (status == VD_ERROR_NOT_ENOUGH_MEMORY || status == VD_ERROR_OUTOFMEMORY)
        return status;
    const vd_format_driver *actual = vd_format_driver_by_signature(file, format, NULL);
    if (actual == NULL)
        return status;
    status = actual->open(file, image);
    if (status == VD_ERROR_SUCCESS)
        vd_detail_clear();   /* what the extension's parser met was no damage */
    return status;
}
