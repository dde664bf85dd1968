/* A new image's source copied into it run by run (source_copy.h). */
#include "disk/source_copy.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/vd_errors.h"
#include "disk/content_runs.h"
#include "host/file_holes.h"

/* Runs that must be read go through a buffer this large: a divisor of
 * every block size, and small enough to stay in the CPU's cache between
 * the read and the write. */
#define VD_SOURCE_COPY_PIECE ((uint64_t)1 << 20)

uint32_t vd_source_copy_begin(vd_source_copy *copy, vd_image *source, vd_disk *disk,
                              int destination_fd)
{
    memset(copy, 0, sizeof *copy);
    copy->source = source;
    copy->disk = disk;
    if (vd_copy_refusals_init(&copy->refusals) != 0)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    copy->buffer = malloc((size_t)VD_SOURCE_COPY_PIECE);
    if (copy->buffer == NULL) {
        vd_copy_refusals_destroy(&copy->refusals);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    vd_file_transfer_begin(&copy->transfer, destination_fd, &copy->refusals);
    return VD_ERROR_SUCCESS;
}

void vd_source_copy_end(vd_source_copy *copy)
{
    free(copy->buffer);
    copy->buffer = NULL;
    vd_copy_refusals_destroy(&copy->refusals);
}

/* The run at `offset`, at most `length` bytes: the one kept from the last
 * call if it starts there, else the chain's. */
static uint32_t vd_source_copy_run(vd_source_copy *copy, uint64_t offset, uint64_t length,
                                   vd_run *run, vd_image **owner)
{
    if (copy->has_run && copy->run_offset == offset) {
        copy->has_run = 0;
        *run = copy->run;
        *owner = copy->run_owner;
    } else if (copy->disk != NULL) {
        copy->has_run = 0;
        uint32_t status = vd_content_run(copy->disk, offset, length, run, owner);
        if (status != VD_ERROR_SUCCESS)
            return status;
    } else {
        run->kind = VD_RUN_READ;
        run->length = length;
        *owner = NULL;
    }
    if (run->length == 0 || run->length > length)
        run->length = length;   /* a map that answers nothing usable */
    return VD_ERROR_SUCCESS;
}

/* Where the data of [from, to) of `file` starts and ends: SEEK_DATA and
 * SEEK_HOLE, for a file that may have holes, unless the extent found last
 * in it holds `from`.  *data == to: all a hole.  *limit: where that
 * extent ends (UINT64_MAX in a file without holes), past which no run
 * joins the piece.  What the host said of the file is kept in the
 * transfer's entry for it; without one (fstat failed), the file may have
 * holes and is asked each time. */
static void vd_source_copy_data_extent(vd_source_copy *copy, const vd_file *file, uint64_t from,
                                       uint64_t to, uint64_t *data, uint64_t *data_end,
                                       uint64_t *limit)
{
    *data = from;
    *data_end = to;
    *limit = UINT64_MAX;
    vd_transfer_source unknown = { .file = file, .may_have_holes = 1 };
    vd_transfer_source *holes = vd_file_transfer_source(&copy->transfer, file);
    if (holes == NULL)
        holes = &unknown;
    if (!holes->may_have_holes)
        return;
    if (!(holes->extent_start <= from && from < holes->extent_end)) {
        int found = vd_file_data_extent(file, from, &holes->extent_start, &holes->extent_end);
        if (found == 0)
            *data = to;   /* only a hole up to the file's end */
        if (found <= 0) {
            *limit = holes->extent_end;
            return;       /* else the file system cannot tell: all data */
        }
    }
    *limit = holes->extent_end;
    *data = holes->extent_start > from ? holes->extent_start : from;
    if (*data >= to) {
        *data = to;
        return;
    }
    if (holes->extent_end < to)
        *data_end = holes->extent_end;
}

/* A piece in the file of `owner`, from the run at `*offset`: the run's data
 * up to its first hole, extended over the runs that follow it in the same
 * file without a gap (a VHD block is several runs, one per bitmap window;
 * a fixed source is one). */
static uint32_t vd_source_copy_file_piece(vd_source_copy *copy, uint64_t *offset, uint64_t end,
                                          const vd_run *run, vd_image *owner,
                                          vd_source_piece *piece)
{
    const vd_file *file = &owner->file;
    uint64_t data, data_end, limit, run_end = run->file_offset + run->length;
    vd_source_copy_data_extent(copy, file, run->file_offset, run_end, &data, &data_end, &limit);
    if (data == run_end) {
        *offset += run->length;   /* a hole: reads zeros */
        return VD_ERROR_SUCCESS;
    }
    piece->file = file;
    piece->bytes = NULL;
    piece->file_offset = data;
    piece->offset = *offset + (data - run->file_offset);
    piece->length = data_end - data;
    *offset = piece->offset + piece->length;
    if (data_end != run_end)
        return VD_ERROR_SUCCESS;
    /* In a file with holes, only runs inside the extent of data found. */
    while (*offset < end) {
        vd_run next;
        vd_image *next_owner;
        uint32_t status = vd_source_copy_run(copy, *offset, end - *offset, &next, &next_owner);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (next.kind != VD_RUN_FILE || &next_owner->file != file
            || next.file_offset != piece->file_offset + piece->length
            || next.length > limit - next.file_offset) {
            copy->has_run = 1;
            copy->run_offset = *offset;
            copy->run = next;
            copy->run_owner = next_owner;
            break;
        }
        piece->length += next.length;
        *offset += next.length;
    }
    return VD_ERROR_SUCCESS;
}

/* A piece read into the buffer from the run at `*offset`: at most the
 * buffer's size, left out when it reads all zeros (piece->length 0). */
static uint32_t vd_source_copy_read_piece(vd_source_copy *copy, uint64_t *offset,
                                          const vd_run *run, vd_source_piece *piece)
{
    uint64_t length = run->length < VD_SOURCE_COPY_PIECE ? run->length : VD_SOURCE_COPY_PIECE;
    uint32_t status = copy->disk != NULL
                          ? vd_content_run_read(copy->disk, *offset, copy->buffer, length)
                          : copy->source->ops->read(copy->source, NULL, *offset, copy->buffer,
                                                    length);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (!vd_bytes_zero(copy->buffer, (size_t)length)) {
        piece->file = NULL;
        piece->bytes = copy->buffer;
        piece->offset = *offset;
        piece->length = length;
    }
    *offset += length;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_source_copy_next(vd_source_copy *copy, uint64_t *offset, uint64_t end,
                             vd_source_piece *piece)
{
    memset(piece, 0, sizeof *piece);
    while (*offset < end && piece->length == 0) {
        vd_run run;
        vd_image *owner;
        uint32_t status = vd_source_copy_run(copy, *offset, end - *offset, &run, &owner);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (run.kind == VD_RUN_FILE)
            status = vd_source_copy_file_piece(copy, offset, end, &run, owner, piece);
        else if (run.kind == VD_RUN_READ)
            status = vd_source_copy_read_piece(copy, offset, &run, piece);
        else
            *offset += run.length;   /* zeros: nothing to copy */
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_source_copy_put(vd_source_copy *copy, const vd_source_piece *piece, uint64_t to)
{
    if (piece->file != NULL)
        return vd_file_transfer_copy_data(&copy->transfer, piece->file, piece->file_offset, to,
                                          piece->length);
    return vd_file_transfer_write(&copy->transfer, to, piece->bytes, (size_t)piece->length);
}
