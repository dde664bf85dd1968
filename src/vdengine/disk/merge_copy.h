/* The sector copy every format's merge slot makes (driver.h,
 * vd_merge_request): the target ends up reading what the merged range read
 * over it, written through the target's own write op. */
#ifndef VDENGINE_MERGE_COPY_H
#define VDENGINE_MERGE_COPY_H

#include <stdint.h>

#include "disk/driver.h"

/* Copies into `target` every sector whose content, read through
 * request->source, differs from the target's, and flushes.  Progress is
 * the bytes of virtual disk compared so far, counted on from
 * request->progress_base.  Between steps it lets request->lock go and
 * stops with ERROR_OPERATION_ABORTED on a cancel:
 * what was written is the merged content already, so a later run finishes
 * the work (it finds those sectors equal and skips them).  *written: the
 * bytes written, 0 when the target read the merged content already. */
uint32_t vd_merge_copy(vd_image *target, const vd_merge_request *request, uint64_t *written);

#endif
