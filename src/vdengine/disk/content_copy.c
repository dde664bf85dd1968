/* A disk's content copied into a file (content_copy.h). */
#include "disk/content_copy.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "disk/content_runs.h"
#include "host/file_transfer.h"

/* Runs that must be read go through a buffer this large; a piece of it
 * that reads all zeros is not written. */
#define VD_CONTENT_COPY_PIECE ((uint64_t)1 << 20)
/* The largest piece a copy from a file takes (its buffer's size). */
#define VD_CONTENT_COPY_MAX_PIECE ((uint64_t)64 << 20)

/* A run read through the chain (or the redirect) and written but its
 * all-zero pieces. */
static uint32_t vd_content_copy_read(vd_disk *disk, vd_file_transfer *transfer,
                                     uint8_t **buffer, uint64_t offset, uint64_t length)
{
    if (*buffer == NULL) {
        *buffer = malloc((size_t)VD_CONTENT_COPY_PIECE);
        if (*buffer == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t done = 0; done < length && status == VD_ERROR_SUCCESS;) {
        size_t piece = (size_t)(length - done < VD_CONTENT_COPY_PIECE ? length - done
                                                                      : VD_CONTENT_COPY_PIECE);
        status = vd_content_run_read(disk, offset + done, *buffer, piece);
        if (status == VD_ERROR_SUCCESS && !vd_bytes_zero(*buffer, piece))
            status = vd_file_transfer_write(transfer, offset + done, *buffer, piece);
        done += piece;
    }
    return status;
}

/* File runs that follow each other in the same file, gathered into one
 * copy. */
typedef struct vd_content_copy_pending {
    const vd_file *file;
    uint64_t from, to, length;
} vd_content_copy_pending;

static uint32_t vd_content_copy_flush(vd_file_transfer *transfer, vd_content_copy_pending *pending)
{
    uint32_t status = VD_ERROR_SUCCESS;
    if (pending->length > 0)
        status = vd_file_transfer_copy(transfer, pending->file, pending->from, pending->to,
                                       pending->length);
    pending->length = 0;
    return status;
}

static uint32_t vd_content_copy_walk(vd_disk *disk, vd_file_transfer *transfer, uint64_t offset,
                                     uint64_t length)
{
    vd_content_copy_pending pending = { NULL, 0, 0, 0 };
    uint8_t *buffer = NULL;
    uint32_t status = VD_ERROR_SUCCESS;
    while (length > 0 && status == VD_ERROR_SUCCESS) {
        vd_run run;
        vd_image *owner;
        status = vd_content_run(disk, offset, length, &run, &owner);
        if (status != VD_ERROR_SUCCESS)
            break;
        if (run.length == 0 || run.length > length)
            run.length = length;   /* a map that answers nothing usable */
        if (run.kind == VD_RUN_FILE) {
            if (pending.length > 0 && pending.file == &owner->file
                && pending.from + pending.length == run.file_offset
                && pending.to + pending.length == offset) {
                pending.length += run.length;
            } else {
                status = vd_content_copy_flush(transfer, &pending);
                pending.file = &owner->file;
                pending.from = run.file_offset;
                pending.to = offset;
                pending.length = run.length;
            }
        } else {
            status = vd_content_copy_flush(transfer, &pending);
            if (status == VD_ERROR_SUCCESS && run.kind == VD_RUN_READ)
                status = vd_content_copy_read(disk, transfer, &buffer, offset, run.length);
        }
        offset += run.length;
        length -= run.length;
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_content_copy_flush(transfer, &pending);
    free(buffer);
    return status;
}

uint32_t vd_content_copy_to_file(vd_disk *disk, uint64_t offset, uint64_t length, int fd)
{
    if (fd < 0)
        return VD_ERROR_INVALID_PARAMETER;
    vd_gate_enter_shared(&disk->content_gate);
    uint32_t status = vd_content_check(disk, offset, length);
    if (status == VD_ERROR_SUCCESS) {
        vd_file_transfer transfer;
        vd_file_transfer_begin(&transfer, fd, &disk->copy_refusals);
        status = vd_content_copy_walk(disk, &transfer, offset, length);
    }
    vd_gate_leave_shared(&disk->content_gate);
    return status;
}

uint32_t vd_content_copy_from_file(vd_disk *disk, int fd, uint64_t offset, uint64_t length,
                                   uint32_t piece)
{
    uint64_t sector = disk->image.logical_sector_size;
    if (fd < 0 || piece == 0 || sector == 0 || piece % sector != 0
        || piece > VD_CONTENT_COPY_MAX_PIECE
        || (disk->image.block_size != 0 && disk->image.block_size % piece != 0))
        return VD_ERROR_INVALID_PARAMETER;
    uint32_t status = vd_content_check(disk, offset, length);
    if (status != VD_ERROR_SUCCESS || length == 0)
        return status;
    uint8_t *buffer = malloc(piece);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_file source = { .fd = fd };
    uint64_t end = offset + length;
    while (offset < end && status == VD_ERROR_SUCCESS) {
        uint64_t piece_end = (offset / piece + 1) * piece;
        size_t count = (size_t)((piece_end < end ? piece_end : end) - offset);
        status = vd_file_read(&source, offset, buffer, count);
        if (status == VD_ERROR_SUCCESS && !vd_bytes_zero(buffer, count))
            status = vd_content_write(disk, offset, buffer, count);
        offset += count;
    }
    free(buffer);
    return status;
}
