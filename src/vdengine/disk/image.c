/* Release of a vd_image, whatever its format (see image.h). */
#include "disk/image.h"

#include <stdlib.h>
#include <string.h>

static void release_locator(vd_parent_locator *locator)
{
    free(locator->relative_path);
    free(locator->absolute_path);
    free(locator->volume_path);
    memset(locator, 0, sizeof(*locator));
}

void vd_image_release(vd_image *image)
{
    if (image == NULL) {
        return;
    }
    if (image->ops != NULL && image->ops->release != NULL) {
        image->ops->release(image);
    }
    release_locator(&image->parent);
    vd_file_close(&image->file);
    image->ops = NULL;
    image->format_state = NULL;
}
