/* The VHDX update ops as the driver hands them out: each one of
 * vhdx_update.c under the image's allocation lock.
 *
 * SetVirtualDiskInformation and the metadata calls hold the handle's lock,
 * content writes hold only the allocation lock, and both write the header
 * and the log: two log transactions at once would overwrite each other's
 * entry at the start of the log, and two header updates would both take
 * the same slot.  Taking the allocation lock here makes every change of a
 * VHDX structure exclusive, whichever path it comes from.  (The order is
 * always handle lock, then allocation lock.) */
#include <pthread.h>

#include "disk/image_update.h"
#include "formats/vhdx/vhdx_internal.h"

static pthread_mutex_t *vd_vhdx_lock_of(vd_image *image)
{
    vd_vhdx_state *state = image->format_state;
    pthread_mutex_lock(&state->allocation_lock);
    return &state->allocation_lock;
}

static uint32_t vd_vhdx_serial_set_identifier(vd_image *image, const vd_guid *identifier)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.set_identifier(image, identifier);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_set_virtual_disk_id(vd_image *image, const vd_guid *virtual_disk_id)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.set_virtual_disk_id(image, virtual_disk_id);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_set_physical_sector_size(vd_image *image, uint32_t bytes)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.set_physical_sector_size(image, bytes);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_set_parent(vd_image *image, const vd_parent_link *link)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.set_parent(image, link);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_metadata_list(vd_image *image, vd_guid *items, uint32_t *count)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.metadata_list(image, items, count);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_metadata_get(vd_image *image, const vd_guid *item, void *buffer, uint32_t *size)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.metadata_get(image, item, buffer, size);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_metadata_set(vd_image *image, const vd_guid *item, const void *data,
                                            uint32_t size)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.metadata_set(image, item, data, size);
    pthread_mutex_unlock(lock);
    return status;
}

static uint32_t vd_vhdx_serial_metadata_remove(vd_image *image, const vd_guid *item)
{
    pthread_mutex_t *lock = vd_vhdx_lock_of(image);
    uint32_t status = vd_vhdx_update_ops.metadata_remove(image, item);
    pthread_mutex_unlock(lock);
    return status;
}

const vd_update_ops vd_vhdx_serial_update_ops = {
    vd_vhdx_serial_set_identifier,
    vd_vhdx_serial_set_virtual_disk_id,
    vd_vhdx_serial_set_physical_sector_size,
    vd_vhdx_serial_set_parent,
    vd_vhdx_serial_metadata_list,
    vd_vhdx_serial_metadata_get,
    vd_vhdx_serial_metadata_set,
    vd_vhdx_serial_metadata_remove,
};
