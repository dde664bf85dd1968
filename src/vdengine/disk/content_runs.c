/* A disk's content as runs through its chain (content_runs.h). */
#include "disk/content_runs.h"

#include "api/attach_redirect.h"
#include "base/vd_errors.h"

uint32_t vd_content_run(vd_disk *disk, uint64_t offset, uint64_t length, vd_run *run,
                        vd_image **owner)
{
    vd_image *image = &disk->image;
    for (uint32_t depth = 0;; depth++) {
        if (vd_redirect_of(disk) != NULL || image->ops->map == NULL) {
            run->kind = VD_RUN_READ;
            run->length = length;
        } else {
            uint32_t status = image->ops->map(image, offset, length, run);
            if (status != VD_ERROR_SUCCESS)
                return status;
        }
        *owner = image;
        if (run->kind != VD_RUN_PARENT)
            return VD_ERROR_SUCCESS;
        /* The parent's content, or zeros where there is none to read: a
         * disk opened without parents reads zeros there too. */
        length = run->length;
        image = depth < disk->chain.count ? &disk->chain.images[depth] : NULL;
        if (image == NULL || offset >= image->virtual_size) {
            run->kind = VD_RUN_ZERO;
            return VD_ERROR_SUCCESS;
        }
        if (length > image->virtual_size - offset)
            length = image->virtual_size - offset;
    }
}

uint32_t vd_content_run_read(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length)
{
    vd_redirect *redirect = vd_redirect_of(disk);
    return redirect != NULL ? vd_redirect_read(redirect, offset, buffer, length)
                            : vd_chain_read(&disk->image, &disk->chain, offset, buffer, length);
}
