/* The content of an opened disk, over the format's read/write/unmap/flush
 * (see content.h).
 *
 * Every call holds the disk's content gate shared (handle.h): while a
 * mirror runs, writes and unmaps go through it (disk/mirror_copy.h), and
 * the switch to the mirror happens with no call inside.  After a permanent
 * export the handle's content goes through the device instead
 * (api/attach_redirect.h). */
#include "disk/content.h"

#include "api/attach_redirect.h"
#include "base/vd_errors.h"
#include "disk/mirror_copy.h"

uint32_t vd_content_check(const vd_disk *disk, uint64_t offset, uint64_t length)
{
    const vd_image *image = &disk->image;
    uint64_t sector = image->logical_sector_size;
    if (sector == 0 || offset % sector != 0 || length % sector != 0)
        return VD_ERROR_INVALID_PARAMETER;
    if (offset > image->virtual_size || length > image->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    return VD_ERROR_SUCCESS;
}

/* The read of checked sectors, `length` not 0, with the gate held. */
static uint32_t vd_content_read_inside(vd_disk *disk, uint64_t offset, void *buffer,
                                       uint64_t length)
{
    vd_redirect *redirect = vd_redirect_of(disk);
    return redirect != NULL ? vd_redirect_read(redirect, offset, buffer, length)
                            : vd_chain_read(&disk->image, &disk->chain, offset, buffer, length);
}

uint32_t vd_content_read(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_check(disk, offset, length);
    if (status == VD_ERROR_SUCCESS && length != 0)
        status = vd_content_read_inside(disk, offset, buffer, length);
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

uint32_t vd_content_read_sectors(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_read_inside(disk, offset, buffer, length);
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

static uint32_t vd_content_check_writable(const vd_disk *disk)
{
    if (disk->read_only || !disk->image.file.writable)
        return VD_ERROR_ACCESS_DENIED;
    if (!vd_content_can_write(disk))
        return VD_ERROR_NOT_SUPPORTED;
    return VD_ERROR_SUCCESS;
}

/* The write of checked sectors, `length` not 0, with the gate held. */
static uint32_t vd_content_write_inside(vd_disk *disk, uint64_t offset, const void *buffer,
                                        uint64_t length)
{
    uint32_t status = vd_content_check_writable(disk);
    if (status != VD_ERROR_SUCCESS)
        return status;
    vd_redirect *redirect = vd_redirect_of(disk);
    if (redirect != NULL)
        return vd_redirect_write(redirect, offset, buffer, length);
    if (disk->mirror != NULL)
        return vd_mirror_write(disk->mirror, disk, offset, buffer, length);
    return disk->image.ops->write(&disk->image, offset, buffer, length);
}

uint32_t vd_content_write(vd_disk *disk, uint64_t offset, const void *buffer, uint64_t length)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_check(disk, offset, length);
    if (status == VD_ERROR_SUCCESS)
        status = length != 0 ? vd_content_write_inside(disk, offset, buffer, length)
                             : vd_content_check_writable(disk);
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

uint32_t vd_content_write_sectors(vd_disk *disk, uint64_t offset, const void *buffer,
                                  uint64_t length)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_write_inside(disk, offset, buffer, length);
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

uint32_t vd_content_unmap(vd_disk *disk, uint64_t offset, uint64_t length)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_check(disk, offset, length);
    if (status == VD_ERROR_SUCCESS)
        status = vd_content_check_writable(disk);
    if (status == VD_ERROR_SUCCESS && length != 0 && vd_content_can_unmap(disk)) {
        vd_redirect *redirect = vd_redirect_of(disk);
        if (redirect != NULL)
            status = vd_redirect_unmap(redirect, offset, length);
        else if (disk->mirror != NULL)
            status = vd_mirror_unmap(disk->mirror, disk, offset, length);
        else
            status = disk->image.ops->unmap(&disk->image, offset, length);
    }
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

uint32_t vd_content_flush(vd_disk *disk)
{
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = VD_ERROR_SUCCESS;
    vd_redirect *redirect = vd_redirect_of(disk);
    if (redirect != NULL)
        status = vd_redirect_flush(redirect);
    else if (disk->image.ops != NULL && disk->image.ops->flush != NULL && disk->image.file.writable)
        status = disk->image.ops->flush(&disk->image);
    if (disk->mirror != NULL)
        (void)vd_mirror_flush(disk->mirror);
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

int vd_content_can_unmap(const vd_disk *disk)
{
    return disk->image.ops != NULL && disk->image.ops->unmap != NULL;
}

int vd_content_can_write(const vd_disk *disk)
{
    return disk->image.ops != NULL && disk->image.ops->write != NULL;
}
