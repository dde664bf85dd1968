/* Copies from an image's file into another file (file_transfer.h). */
#include "host/file_transfer.h"

#include <string.h>
#include <sys/stat.h>

#include "base/vd_errors.h"
#include "host/file_copy.h"
#include "host/file_holes.h"

/* The page size the kernel's copies step by (every host here: 4 KiB). */
#define VD_FILE_TRANSFER_PAGE 4096u

/* Whether the host copies between files in the kernel: copy_file_range(2),
 * Linux's (host/file_copy.h); elsewhere every copy goes through a buffer. */
#if defined(__linux__)
#define VD_FILE_TRANSFER_IN_KERNEL 1
#else
#define VD_FILE_TRANSFER_IN_KERNEL 0
#endif

int vd_copy_refusals_init(vd_copy_refusals *refusals)
{
    memset(refusals, 0, sizeof *refusals);
    return pthread_mutex_init(&refusals->lock, NULL);
}

void vd_copy_refusals_destroy(vd_copy_refusals *refusals)
{
    pthread_mutex_destroy(&refusals->lock);
}

static int vd_copy_refusals_holds(vd_copy_refusals *refusals, const vd_copy_pair *pair)
{
    int found = 0;
    pthread_mutex_lock(&refusals->lock);
    uint32_t kept = refusals->count < VD_COPY_REFUSALS_MAX ? refusals->count
                                                           : VD_COPY_REFUSALS_MAX;
    for (uint32_t i = 0; i < kept && !found; i++)
        found = memcmp(&refusals->pairs[i], pair, sizeof *pair) == 0;
    pthread_mutex_unlock(&refusals->lock);
    return found;
}

static void vd_copy_refusals_add(vd_copy_refusals *refusals, const vd_copy_pair *pair)
{
    pthread_mutex_lock(&refusals->lock);
    refusals->pairs[refusals->count % VD_COPY_REFUSALS_MAX] = *pair;
    refusals->count++;
    pthread_mutex_unlock(&refusals->lock);
}

void vd_file_transfer_begin(vd_file_transfer *transfer, int fd, vd_copy_refusals *refusals)
{
    memset(transfer, 0, sizeof *transfer);
    transfer->destination.fd = fd;
    transfer->destination.writable = 1;
    transfer->refusals = refusals;
#if defined(__linux__)
    struct stat info;
    if (fstat(fd, &info) == 0) {
        transfer->destination_known = 1;
        transfer->destination_device = (uint64_t)info.st_dev;
        transfer->destination_inode = (uint64_t)info.st_ino;
    }
#endif
}

/* The pair of the current source and the destination; 0 when either is
 * unknown (fstat failed: nothing is remembered for it). */
static int vd_file_transfer_pair(const vd_file_transfer *transfer, vd_copy_pair *pair)
{
    memset(pair, 0, sizeof *pair);
    if (!transfer->destination_known || transfer->source == NULL)
        return 0;
    pair->source_device = transfer->source->device;
    pair->source_inode = transfer->source->inode;
    pair->destination_device = transfer->destination_device;
    pair->destination_inode = transfer->destination_inode;
    return 1;
}

vd_transfer_source *vd_file_transfer_source(vd_file_transfer *transfer, const vd_file *source)
{
    for (unsigned i = 0; i < VD_FILE_TRANSFER_SOURCES; i++)
        if (transfer->sources[i].file == source)
            return transfer->source = &transfer->sources[i];
    transfer->source = NULL;
    struct stat info;
    if (fstat(source->fd, &info) != 0)
        return NULL;   /* unknown: copied through a buffer, asked about again next time */
    vd_transfer_source *entry = &transfer->sources[transfer->next_source];
    transfer->next_source = (transfer->next_source + 1u) % VD_FILE_TRANSFER_SOURCES;
    entry->file = source;
    entry->device = (uint64_t)info.st_dev;
    entry->inode = (uint64_t)info.st_ino;
    entry->refused = 0;
    entry->may_have_holes = vd_file_stat_may_have_holes(&info);
    entry->extent_start = entry->extent_end = 0;
    transfer->source = entry;
    vd_copy_pair pair;
    if (transfer->refusals != NULL && vd_file_transfer_pair(transfer, &pair))
        entry->refused = vd_copy_refusals_holds(transfer->refusals, &pair);
    return entry;
}

/* The kernel refused the current pair: the rest of the copy takes the
 * pread + pwrite way for it. */
static void vd_file_transfer_refused(vd_file_transfer *transfer)
{
    transfer->source->refused = 1;
    vd_copy_pair pair;
    if (transfer->refusals != NULL && vd_file_transfer_pair(transfer, &pair))
        vd_copy_refusals_add(transfer->refusals, &pair);
}

uint32_t vd_file_transfer_write(vd_file_transfer *transfer, uint64_t to, const void *buffer,
                                size_t length)
{
    return vd_file_write(&transfer->destination, to, buffer, length);
}

/* copy_file_range until `length` bytes are copied, or until the kernel
 * refuses the copy as such (*copied then says how far it got, and the
 * pair is marked refused). */
static uint32_t vd_file_transfer_in_kernel(vd_file_transfer *transfer, const vd_file *source,
                                           uint64_t from, uint64_t to, uint64_t length,
                                           uint64_t *copied)
{
    uint32_t status = vd_file_copy_in_kernel(source, from, &transfer->destination, to, length,
                                             copied);
    if (status == VD_ERROR_SUCCESS && *copied < length)
        vd_file_transfer_refused(transfer);
    return status;
}

/* Whether a run at `from` in its source and `to` in the destination lies
 * at the same offset within their pages.  Where the kernel cannot share
 * blocks (ext4, tmpfs) it copies page by page; a run out of step moves
 * every page in two pieces, which costs more than the copy through a
 * buffer (ext4, 512 MiB in 2 MiB runs: 236 to 293 ms of CPU against 177
 * to 206 through pread + pwrite, and 166 to 198 for runs in step), and no
 * file system can share its blocks.  Such runs (a VHD's blocks whose data
 * follows the 512-byte bitmap on no 4 KiB boundary, as qemu lays them
 * out) go through the buffer. */
static int vd_file_transfer_in_step(uint64_t from, uint64_t to)
{
    return from % VD_FILE_TRANSFER_PAGE == to % VD_FILE_TRANSFER_PAGE;
}

uint32_t vd_file_transfer_copy_data(vd_file_transfer *transfer, const vd_file *source,
                                    uint64_t from, uint64_t to, uint64_t length)
{
    uint64_t copied = 0;
    vd_file_transfer_source(transfer, source);
    if (VD_FILE_TRANSFER_IN_KERNEL && transfer->source != NULL && !transfer->source->refused
        && vd_file_transfer_in_step(from, to)) {
        uint32_t status = vd_file_transfer_in_kernel(transfer, source, from, to, length, &copied);
        if (status != VD_ERROR_SUCCESS || copied == length)
            return status;
    }
    /* The pread + pwrite way. */
    return vd_file_copy_between(source, from + copied, &transfer->destination, to + copied,
                                length - copied);
}

uint32_t vd_file_transfer_copy(vd_file_transfer *transfer, const vd_file *source, uint64_t from,
                               uint64_t to, uint64_t length)
{
    const vd_transfer_source *known = vd_file_transfer_source(transfer, source);
    if (known != NULL && !known->may_have_holes)
        return vd_file_transfer_copy_data(transfer, source, from, to, length);
    uint64_t end = from + length;
    uint64_t position = from;
    while (position < end) {
        uint64_t data = position, hole = end;
        /* Holes of the source are skipped as cp skips them; a file system
         * that cannot tell has none (all data). */
        uint64_t extent_start, extent_end;
        int found = vd_file_data_extent(source, position, &extent_start, &extent_end);
        if (found == 0)
            return VD_ERROR_SUCCESS;   /* only a hole up to the file's end */
        if (found > 0) {
            data = extent_start;
            if (data >= end)
                return VD_ERROR_SUCCESS;
            if (extent_end < end)
                hole = extent_end;
        }
        uint32_t status = vd_file_transfer_copy_data(transfer, source, data, to + (data - from),
                                                hole - data);
        if (status != VD_ERROR_SUCCESS)
            return status;
        position = hole;
    }
    return VD_ERROR_SUCCESS;
}
