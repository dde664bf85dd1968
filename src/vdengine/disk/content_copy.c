/* A disk's content copied into a file (content_copy.h). */
#include "disk/content_copy.h"

#include <stdlib.h>
#include <string.h>

#include "api/attach_redirect.h"
#include "base/bytes.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "disk/content_runs.h"
#include "host/file_copy.h"
#include "host/file_in_memory.h"
#include "host/file_transfer.h"

/* Runs that must be read go through a buffer this large; a piece of it
 * that reads all zeros is not written. */
#define VD_CONTENT_COPY_PIECE ((uint64_t)1 << 20)
/* The largest piece a copy from a file takes (its buffer's size). */
#define VD_CONTENT_COPY_MAX_PIECE ((uint64_t)64 << 20)
/* A copy from a file reads this much of each piece first (a whole number
 * of sectors of any size): a piece whose first 4 KiB hold data is data,
 * written through the disk only that far, which allocates its block, and
 * the rest moved into the disk's file directly, joined with the pieces
 * that follow it in the block; only a piece that starts with zeros is read
 * whole at once, to tell whether it is all zeros. */
#define VD_CONTENT_COPY_PROBE ((size_t)4096)

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

/* A run of data pieces of the source file, waiting to be moved into the
 * disk where it lies in the disk's own file: [start, end) of the content,
 * within one block (the block allocated already). */
typedef struct vd_content_copy_run {
    uint64_t start, end;
} vd_content_copy_run;

/* Where a run goes and how: the disk's file (the transfer's destination),
 * whether that file lives in memory, and the buffer a run goes through
 * when it is not copied in the kernel. */
typedef struct vd_content_copy_into {
    vd_file_transfer transfer;
    int in_memory;
    int reserve;   /* a dynamic disk's: a fixed one's creator reserved its data area */
    uint8_t *buffer;
    size_t capacity;
} vd_content_copy_into;

/* How much of [offset, offset + length) lies byte for byte in the disk's
 * own file, from `offset` on, and where (run->kind VD_RUN_FILE); any other
 * answer means the bytes go through the disk's write.  The caller holds
 * the content gate shared. */
static uint32_t vd_content_copy_place(vd_disk *disk, uint64_t offset, uint64_t length,
                                      vd_run *run)
{
    run->kind = VD_RUN_READ;
    run->length = length;
    vd_image *image = &disk->image;
    /* A mirror or an attachment's redirect must see every write. */
    if (disk->mirror != NULL || vd_redirect_of(disk) != NULL || image->ops->map == NULL)
        return VD_ERROR_SUCCESS;
    uint32_t status = image->ops->map(image, offset, length, run);
    if (status == VD_ERROR_SUCCESS && (run->length == 0 || run->length > length))
        run->length = length;   /* a map that answers nothing usable */
    return status;
}

/* Bytes [from, from + length) of the source written at `to` in the disk's
 * file.  Measured with 256 MiB of random data, raw -> dynamic VHD, in ms
 * of CPU: on ext4, through the disk's write 77, in the kernel 94 (as the
 * engine's other copies find there: it copies page by page), in the
 * kernel into reserved space 77, through the buffer into reserved space
 * 50; on tmpfs 137, 125, 128 and 136.  So a file in memory gets the
 * kernel's copy, and reserving nothing (tmpfs reserves by filling pages
 * with zeros); any other gets the bytes through the buffer, still in the
 * CPU's cache between the read and the write, and in a dynamic disk the
 * run's space reserved first, which spares a file system that allocates
 * late (ext4, XFS) a reservation per page (a fixed disk's data area was
 * reserved whole when it was made).  The reservation is only a hint: the
 * write meets any real lack of space itself. */
static uint32_t vd_content_copy_into_file(vd_content_copy_into *into, const vd_file *source,
                                          uint64_t from, uint64_t to, uint64_t length)
{
    if (into->in_memory)
        return vd_file_transfer_copy_data(&into->transfer, source, from, to, length);
    if (into->reserve)
        (void)vd_file_reserve(&into->transfer.destination, to, length);
    return vd_file_copy_through(source, from, &into->transfer.destination, to, length,
                                into->buffer, into->capacity);
}

/* Moves `run` from the source file into the disk's file; what does not
 * lie in the disk's file as it stands (a differencing child's unmarked
 * sectors) is written through the disk. */
static uint32_t vd_content_copy_run_flush(vd_disk *disk, vd_content_copy_into *into,
                                          const vd_file *source, vd_content_copy_run *run)
{
    uint32_t status = VD_ERROR_SUCCESS;
    while (run->start < run->end && status == VD_ERROR_SUCCESS) {
        vd_run place;
        vd_gate_enter_shared(&disk->content_gate);
        /* A resize or a mirror's switch between two runs left the disk
         * another descriptor of its file (the one the copy began with is
         * closed): the run goes to the disk's file as it is now. */
        if (into->transfer.destination.fd != disk->image.file.fd)
            vd_file_transfer_begin(&into->transfer, disk->image.file.fd, &disk->copy_refusals);
        status = vd_content_copy_place(disk, run->start, run->end - run->start, &place);
        if (status == VD_ERROR_SUCCESS && place.kind == VD_RUN_FILE)
            status = vd_content_copy_into_file(into, source, run->start, place.file_offset,
                                               place.length);
        vd_gate_leave_shared(&disk->content_gate);
        if (status == VD_ERROR_SUCCESS && place.kind != VD_RUN_FILE) {
            place.length = place.length < into->capacity ? place.length : into->capacity;
            status = vd_file_read(source, run->start, into->buffer, (size_t)place.length);
            if (status == VD_ERROR_SUCCESS)
                status = vd_content_write(disk, run->start, into->buffer, place.length);
        }
        run->start += place.length;
    }
    run->start = run->end = 0;
    return status;
}

/* Whether the piece at `offset` continues `run`: it starts where the run
 * ends, in the same block (every block of a fixed disk is one). */
static int vd_content_copy_run_continues(const vd_disk *disk, const vd_content_copy_run *run,
                                         uint64_t offset)
{
    uint64_t block = disk->image.block_size;
    return run->end > run->start && run->end == offset
           && (block == 0 || run->start / block == offset / block);
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
    /* The probe: a whole number of sectors (at most 4 KiB, the largest). */
    size_t probe = piece < VD_CONTENT_COPY_PROBE ? piece : VD_CONTENT_COPY_PROBE;
    /* A piece read whole starts with its probe; a run's flush reads what
     * it must write through the disk past the probe, which it keeps. */
    uint8_t *buffer = malloc(probe + piece);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_file source = { .fd = fd };
    vd_content_copy_into into = { .buffer = buffer + probe, .capacity = piece };
    vd_file_transfer_begin(&into.transfer, disk->image.file.fd, &disk->copy_refusals);
    into.in_memory = vd_file_in_memory(&disk->image.file);
    into.reserve = disk->image.block_size != 0;
    /* Runs pay where the kernel copies or space is reserved; a fixed
     * disk's file on a disk gains neither, and takes each piece through
     * the disk's write (ext4, 256 MiB raw -> fixed VHD: 47 ms of CPU so,
     * 56 in runs through the buffer). */
    int runs = into.in_memory || into.reserve;
    vd_content_copy_run run = { 0, 0 };
    uint64_t end = offset + length;
    while (offset < end && status == VD_ERROR_SUCCESS) {
        uint64_t piece_end = (offset / piece + 1) * piece;
        size_t count = (size_t)((piece_end < end ? piece_end : end) - offset);
        size_t told = count < probe ? count : probe;
        status = vd_file_read(&source, offset, buffer, told);
        if (status != VD_ERROR_SUCCESS)
            break;
        if (!runs || vd_bytes_zero(buffer, told)) {
            /* Read whole, and left out if all zeros. */
            status = vd_content_copy_run_flush(disk, &into, &source, &run);
            if (status == VD_ERROR_SUCCESS && count > told)
                status = vd_file_read(&source, offset + told, buffer + told, count - told);
            if (status == VD_ERROR_SUCCESS && !vd_bytes_zero(buffer, count))
                status = vd_content_write(disk, offset, buffer, count);
        } else if (vd_content_copy_run_continues(disk, &run, offset)) {
            run.end = offset + count;
        } else {
            /* Data in a block the run does not reach: its first bytes go
             * through the disk, which allocates the block if it is new,
             * and the rest joins a new run. */
            status = vd_content_copy_run_flush(disk, &into, &source, &run);
            if (status == VD_ERROR_SUCCESS)
                status = vd_content_write(disk, offset, buffer, told);
            run.start = offset + told;
            run.end = offset + count;
        }
        offset += count;
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_content_copy_run_flush(disk, &into, &source, &run);
    free(buffer);
    return status;
}
