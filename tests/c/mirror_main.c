/* MirrorVirtualDisk under concurrent writers, for the thread and address
 * sanitizers (tests/test_mirror_c.py).
 *
 *   mirror_main SOURCE TARGET THREADS ROUNDS
 *
 * Opens SOURCE (version 2, read-write), starts a mirror into TARGET and,
 * while the copy runs, has THREADS threads each write ROUNDS runs of
 * sectors all over the disk through the data path (disk/content.c), with
 * an unmap now and then.  Once every writer is done and the mirror is
 * mirrored, the content the handle reads is kept, the mirror broken, and
 * the content read again, now from TARGET.  With no writers (THREADS 0)
 * the mirror is broken the moment the progress shows the whole content,
 * and the content is read once, after the break: a break then must not
 * meet the copy still working on TARGET.  Prints one JSON object. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handle.h"
#include "base/vd_errors.h"
#include "disk/content.h"
#include "vdengine.h"
#include "virtdisk_api.h"
#include "wide_path.h"

#define SECTOR 4096u

typedef struct writer {
    vd_disk *disk;
    unsigned index;
    unsigned rounds;
    uint64_t size;
    uint32_t failures;
} writer;

static void *write_all_over(void *argument)
{
    writer *w = argument;
    uint8_t buffer[3 * SECTOR];
    uint64_t sectors = w->size / SECTOR;
    for (unsigned round = 0; round < w->rounds; round++) {
        /* A different stride per thread, so the threads cross each other
         * and the copy's position from both sides. */
        uint64_t sector = ((uint64_t)round * (97u + 2u * w->index) + w->index * 131u) % (sectors - 2u);
        unsigned count = 1u + round % 3u;
        memset(buffer, (int)(1u + (w->index * 37u + round) % 250u), sizeof buffer);
        uint32_t status = round % 17u == 5u
                              ? vd_content_unmap(w->disk, sector * SECTOR, SECTOR)
                              : vd_content_write(w->disk, sector * SECTOR, buffer, count * SECTOR);
        if (status != VD_ERROR_SUCCESS)
            w->failures++;
    }
    return NULL;
}

static int read_whole(vd_disk *disk, uint64_t size, uint8_t *buffer)
{
    return vd_content_read(disk, 0, buffer, size) == VD_ERROR_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    unsigned threads = (unsigned)strtoul(argv[3], NULL, 10);
    unsigned rounds = (unsigned)strtoul(argv[4], NULL, 10);
    OPEN_VIRTUAL_DISK_PARAMETERS open_parameters;
    memset(&open_parameters, 0, sizeof open_parameters);
    open_parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
    HANDLE handle;
    DWORD opened = open_path(argv[1], VIRTUAL_DISK_ACCESS_NONE, &open_parameters, &handle);
    if (opened != ERROR_SUCCESS) {
        printf("{\"open\": %" PRIu32 "}\n", (uint32_t)opened);
        return 0;
    }
    vd_disk *disk = vd_handle_acquire(handle);
    uint64_t size = disk->image.virtual_size;

    OVERLAPPED overlapped;
    memset(&overlapped, 0, sizeof overlapped);
    vd_engine_event_create(&overlapped.hEvent);
    MIRROR_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MIRROR_VIRTUAL_DISK_VERSION_1;
    WCHAR *target = wide_path(argv[2]);
    parameters.Version1.MirrorVirtualDiskPath = target;
    DWORD started = MirrorVirtualDisk(handle, MIRROR_VIRTUAL_DISK_FLAG_NONE, &parameters,
                                      &overlapped);

    pthread_t *ids = calloc(threads, sizeof *ids);
    writer *writers = calloc(threads, sizeof *writers);
    for (unsigned i = 0; i < threads; i++) {
        writers[i] = (writer){ disk, i, rounds, size, 0 };
        pthread_create(&ids[i], NULL, write_all_over, &writers[i]);
    }
    uint32_t failures = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        failures += writers[i].failures;
    }

    VIRTUAL_DISK_PROGRESS progress;
    do {
        memset(&progress, 0, sizeof progress);
        GetVirtualDiskOperationProgress(handle, &overlapped, &progress);
    } while (progress.OperationStatus == ERROR_IO_PENDING
             && (progress.CompletionValue == 0
                 || progress.CurrentValue != progress.CompletionValue));
    uint32_t mirrored_status = progress.OperationStatus;

    uint8_t *before = malloc(size), *after = malloc(size);
    int read_before = 1;
    if (threads != 0)
        read_before = vd_content_flush(disk) == VD_ERROR_SUCCESS && read_whole(disk, size, before);
    DWORD broken = BreakMirrorVirtualDisk(handle);
    DWORD ended = vd_engine_event_wait(overlapped.hEvent, 60000);
    GetVirtualDiskOperationProgress(handle, &overlapped, &progress);
    int read_after = read_whole(disk, size, after);
    int equal = read_before && read_after
                && (threads == 0 || memcmp(before, after, size) == 0);

    vd_handle_release(handle);
    DWORD closed = vd_engine_close_handle(handle);
    vd_engine_event_close(overlapped.hEvent);
    printf("{\"start\": %" PRIu32 ", \"failures\": %" PRIu32 ", \"mirrored_status\": %" PRIu32
           ", \"break\": %" PRIu32 ", \"ended\": %" PRIu32 ", \"final\": %" PRIu32
           ", \"equal\": %d, \"close\": %" PRIu32 ", \"handles\": %" PRIu32 "}\n",
           (uint32_t)started, failures, mirrored_status, (uint32_t)broken, (uint32_t)ended,
           (uint32_t)progress.OperationStatus, equal, (uint32_t)closed,
           (uint32_t)vd_engine_open_handle_count());
    free(before);
    free(after);
    free(ids);
    free(writers);
    free(target);
    return 0;
}
