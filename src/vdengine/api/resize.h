/* What ResizeVirtualDisk and ExpandVirtualDisk share (api/resize.c): the
 * checks Windows makes, the long operation that runs the format's resize,
 * and the image read again afterwards. */
#ifndef VDENGINE_RESIZE_H
#define VDENGINE_RESIZE_H

#include <stdint.h>

#include "virtdisk_api.h"

/* How the caller asked for the new size. */
typedef struct vd_resize_terms {
    uint64_t new_size;        /* 0 with to_smallest */
    int allow_unsafe;         /* RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE */
    int to_smallest;          /* RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE */
    int grow_only;            /* ExpandVirtualDisk: a smaller size is ERROR_INVALID_PARAMETER */
} vd_resize_terms;

/* Checks the handle and starts the resize (api/operation.h: synchronous
 * without `overlapped`).  The arguments were checked by the caller. */
DWORD vd_resize_start(HANDLE handle, const vd_resize_terms *terms, OVERLAPPED *overlapped);

#endif
