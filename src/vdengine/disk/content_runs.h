/* A disk's content as runs (image.h, enum vd_run_kind) through its whole
 * chain, for the copies that move bytes from file to file without reading
 * them: into a raw file (content_copy.h) and into a new image created from
 * the disk (source_copy.h). */
#ifndef VDENGINE_CONTENT_RUNS_H
#define VDENGINE_CONTENT_RUNS_H

#include <stdint.h>

#include "api/handle.h"

/* The run of content at `offset` (sector aligned, inside the disk), at
 * most `length` bytes, as the chain has it: the first image whose map
 * answers anything but PARENT, `*owner` that image (a FILE run lies in
 * its file).  Zeros past an ancestor's end or past the last image that was
 * opened; VD_RUN_READ everywhere for a format without a map and for a disk
 * whose content goes through an attachment's redirect. */
uint32_t vd_content_run(vd_disk *disk, uint64_t offset, uint64_t length, vd_run *run,
                        vd_image **owner);

/* Reads `length` bytes of content at `offset` the way the run above was
 * found: through the redirect, or merged through the chain. */
uint32_t vd_content_run_read(vd_disk *disk, uint64_t offset, void *buffer, uint64_t length);

#endif
