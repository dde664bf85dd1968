/* Writing into an image only the sectors whose content differs from what
 * it should read: the step a merge (disk/merge_copy.c) and a mirror's copy
 * (disk/mirror_copy.c) share.  A sector the target reads already is not
 * written, so the target gains no block it does not need, and a copy run
 * again after an interruption writes only what is still missing. */
#ifndef VDENGINE_WRITE_DIFFERENCES_H
#define VDENGINE_WRITE_DIFFERENCES_H

#include <stdint.h>

#include "disk/image.h"

/* Makes [offset, offset + length) of `target` read `wanted`: reads the
 * target's own view into `scratch` (length bytes; parent sectors as the
 * target's read op gives them without a parent), then writes each run of
 * sectors that differ through the target's write op.  offset and length
 * are multiples of the target's logical sector size.  *written grows by
 * the bytes written. */
uint32_t vd_write_differences(vd_image *target, uint64_t offset, const uint8_t *wanted,
                              uint8_t *scratch, uint64_t length, uint64_t *written);

#endif
