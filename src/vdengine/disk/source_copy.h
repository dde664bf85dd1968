/* A new image's source copied into it run by run (api/create.h: a creator
 * with a source).
 *
 * The creator asks for the source's data one range at a time (one of its
 * blocks, for a dynamic image) and gets it as pieces: a piece an image
 * file of the source's chain holds byte for byte (the child's, or the
 * ancestor's whose content shows there: disk/content_runs.h) is named by
 * its file and offset, and moved from that file into the new one in the
 * kernel where the host can (host/file_transfer.h); any other piece is read
 * through the chain into a buffer.  What holds no data is never a piece:
 * runs the source does not hold (its unallocated blocks), holes of its
 * files, and read pieces that are all zeros.  So the creator allocates a
 * block when the block's first piece comes, and a block the source holds
 * nothing of stays unallocated.  The new file reads zeros wherever nothing
 * is written (it is new, and sized or extended past what is written). */
#ifndef VDENGINE_SOURCE_COPY_H
#define VDENGINE_SOURCE_COPY_H

#include <stdint.h>

#include "api/handle.h"
#include "host/file_transfer.h"

typedef struct vd_source_piece {
    uint64_t offset;          /* where the piece starts in the source's content */
    uint64_t length;          /* bytes, at least one */
    const vd_file *file;      /* the bytes lie in this file, from file_offset on; */
    uint64_t file_offset;     /* NULL: they are in `bytes` */
    const uint8_t *bytes;
} vd_source_piece;

typedef struct vd_source_copy {
    vd_image *source;          /* read op for what no file holds as it stands */
    vd_disk *disk;             /* the source's chain; NULL: all read through `source` */
    vd_copy_refusals refusals;
    uint8_t *buffer;
    vd_file_transfer transfer; /* into the new image's file; what the host
                                * said of each source file is kept there */
    /* A run found while looking for the end of a piece, for the next call. */
    int has_run;
    uint64_t run_offset;
    vd_run run;
    vd_image *run_owner;
} vd_source_copy;

/* A copy from `source` (its read op takes no parent: it reaches the chain
 * itself) into the new file open for writing at `destination_fd`; with
 * `disk`, the source's runs are taken from its chain's maps.  Release it
 * with vd_source_copy_end. */
uint32_t vd_source_copy_begin(vd_source_copy *copy, vd_image *source, vd_disk *disk,
                              int destination_fd);

/* The first piece of data at or after `*offset` and before `end` (both
 * sector aligned, inside the source), in `*piece`; `*offset` moves past
 * it.  piece->length 0: no data is left before `end`.  A piece in the
 * buffer stays valid until the next call. */
uint32_t vd_source_copy_next(vd_source_copy *copy, uint64_t *offset, uint64_t end,
                             vd_source_piece *piece);

/* `piece` written at `to` in the new file. */
uint32_t vd_source_copy_put(vd_source_copy *copy, const vd_source_piece *piece, uint64_t to);

void vd_source_copy_end(vd_source_copy *copy);

#endif
