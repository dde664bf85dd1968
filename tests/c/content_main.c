/* Drives an image's content through the public API and the engine's data
 * path (content.h), one command per line on standard input:
 *
 *   content_main IMAGE DATA [ro|v2]
 *
 *   w OFFSET LENGTH AT    write LENGTH bytes taken from DATA at AT
 *   u OFFSET LENGTH       unmap
 *   f                     flush
 *   r OFFSET LENGTH OUT   read and append the bytes to file OUT
 *   d OUT                 write the whole virtual content to file OUT
 *   c FLAGS               CompactVirtualDisk V1 with FLAGS (decimal), no
 *                         OVERLAPPED
 *   m TARGET              MirrorVirtualDisk into the new file TARGET, then
 *                         wait until it is mirrored: "ok" then, or the
 *                         operation's code if it ended first
 *   b                     BreakMirrorVirtualDisk, then wait for the
 *                         operation's end: its code
 *   e                     close the handle now (no command may follow but
 *                         `s`): the close's code
 *   x                     end the process at once (SIGKILL), as a crash of
 *                         the engine would: nothing is closed or flushed
 *   i GUID                SetVirtualDiskInformation IDENTIFIER (GUID as
 *                         xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)
 *   k N                   (VD_FAULT_INJECTION builds) let N more file
 *                         changes succeed, fail every one after them
 *   s                     (VD_FAULT_INJECTION builds) "ok" while the
 *                         injected stop has not come: a change is still
 *                         allowed (or none is counted)
 *   t THREADS ROUNDS      THREADS threads each writing then reading back
 *                         ROUNDS 4 KiB pieces of a stripe of its own
 *
 * Each command prints "ok" or "error CODE" (decimal Win32 code), so a test
 * sees the engine's answer for every step.  The image is opened with
 * OpenVirtualDisk version 1, VIRTUAL_DISK_ACCESS_ALL (or READ with "ro"),
 * RWDepth 1: its parents are opened read-only, as a writer of a
 * differencing disk opens them.  With "v2" it is opened version 2,
 * read-write, the handle a mirror needs. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "virtdisk_api.h"
#include "disk/content.h"
#include "api/handle.h"
#include "host/io.h"
#include "base/vd_errors.h"
#include "vdengine.h"
#include "wide_path.h"

static FILE *data_file;

static uint32_t read_data(uint64_t at, void *buffer, uint64_t length)
{
    if (fseeko(data_file, (off_t)at, SEEK_SET) != 0
        || fread(buffer, 1, (size_t)length, data_file) != length)
        return VD_ERROR_HANDLE_EOF;
    return VD_ERROR_SUCCESS;
}

static uint32_t append_to(const char *path, const void *bytes, uint64_t length, const char *mode)
{
    FILE *out = fopen(path, mode);
    if (out == NULL)
        return VD_ERROR_PATH_NOT_FOUND;
    size_t written = fwrite(bytes, 1, (size_t)length, out);
    fclose(out);
    return written == length ? VD_ERROR_SUCCESS : VD_ERROR_WRITE_FAULT;
}

static uint32_t dump(vd_disk *disk, const char *path)
{
    const uint64_t piece = 1u << 20;
    uint8_t *buffer = malloc(piece);
    if (buffer == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = append_to(path, "", 0, "wb");
    for (uint64_t at = 0; status == VD_ERROR_SUCCESS && at < disk->image.virtual_size; at += piece) {
        uint64_t length = disk->image.virtual_size - at < piece ? disk->image.virtual_size - at : piece;
        status = vd_content_read(disk, at, buffer, length);
        if (status == VD_ERROR_SUCCESS)
            status = append_to(path, buffer, length, "ab");
    }
    free(buffer);
    return status;
}

typedef struct stripe_job {
    vd_disk *disk;
    unsigned index, threads, rounds;
    uint32_t status;
} stripe_job;

/* Thread `index` owns every `threads`-th 4 KiB piece; it writes each with a
 * pattern naming the piece and reads it back. */
static void *stripe_run(void *argument)
{
    stripe_job *job = argument;
    uint8_t out[4096], in[4096];
    uint64_t pieces = job->disk->image.virtual_size / sizeof out;
    for (unsigned round = 0; round < job->rounds && job->status == VD_ERROR_SUCCESS; round++) {
        uint64_t piece = ((uint64_t)round * job->threads + job->index) * 7919u % pieces;
        piece -= piece % job->threads;
        piece += job->index;
        if (piece >= pieces)
            continue;
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = (uint8_t)(piece * 31u + i + round);
        job->status = vd_content_write(job->disk, piece * sizeof out, out, sizeof out);
        if (job->status == VD_ERROR_SUCCESS)
            job->status = vd_content_read(job->disk, piece * sizeof out, in, sizeof in);
        if (job->status == VD_ERROR_SUCCESS && memcmp(in, out, sizeof in) != 0)
            job->status = VD_ERROR_FILE_CORRUPT;
    }
    return NULL;
}

static uint32_t stripes(vd_disk *disk, unsigned threads, unsigned rounds)
{
    pthread_t ids[64];
    stripe_job jobs[64];
    if (threads == 0 || threads > 64)
        return VD_ERROR_INVALID_PARAMETER;
    for (unsigned i = 0; i < threads; i++) {
        jobs[i] = (stripe_job){ disk, i, threads, rounds, VD_ERROR_SUCCESS };
        pthread_create(&ids[i], NULL, stripe_run, &jobs[i]);
    }
    uint32_t status = VD_ERROR_SUCCESS;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        if (status == VD_ERROR_SUCCESS)
            status = jobs[i].status;
    }
    return status;
}

/* The opened handle, for the commands that go through the public API. */
static HANDLE opened;

/* The mirror started by `m`, whose OVERLAPPED must outlive the command. */
static OVERLAPPED mirror_overlapped;

static uint32_t mirror_status(uint64_t *current, uint64_t *completion)
{
    VIRTUAL_DISK_PROGRESS progress;
    memset(&progress, 0, sizeof progress);
    DWORD asked = GetVirtualDiskOperationProgress(opened, &mirror_overlapped, &progress);
    *current = progress.CurrentValue;
    *completion = progress.CompletionValue;
    return asked != ERROR_SUCCESS ? asked : progress.OperationStatus;
}

static uint32_t mirror_start(const char *target)
{
    WCHAR *path = wide_path(target);
    if (path == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    if (mirror_overlapped.hEvent == NULL)
        vd_engine_event_create(&mirror_overlapped.hEvent);
    MIRROR_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.Version = MIRROR_VIRTUAL_DISK_VERSION_1;
    parameters.Version1.MirrorVirtualDiskPath = path;
    DWORD status = MirrorVirtualDisk(opened, MIRROR_VIRTUAL_DISK_FLAG_NONE, &parameters,
                                     &mirror_overlapped);
    free(path);
    if (status != ERROR_IO_PENDING)
        return status;
    /* The mirrored state: still pending, everything copied. */
    uint64_t current, completion;
    while ((status = mirror_status(&current, &completion)) == ERROR_IO_PENDING
           && (completion == 0 || current != completion))
        vd_engine_event_wait(mirror_overlapped.hEvent, 1);
    return status == ERROR_IO_PENDING ? VD_ERROR_SUCCESS : status;
}

static uint32_t mirror_break(void)
{
    DWORD status = BreakMirrorVirtualDisk(opened);
    if (status != ERROR_SUCCESS)
        return status;
    vd_engine_event_wait(mirror_overlapped.hEvent, 60000);
    uint64_t current, completion;
    return mirror_status(&current, &completion);
}

/* `i`: the text's GUID as the disk's identifier. */
static uint32_t set_identifier(const char *text)
{
    unsigned data1, data2, data3, tail[8];
    if (sscanf(text, " %8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &data1, &data2, &data3, &tail[0],
               &tail[1], &tail[2], &tail[3], &tail[4], &tail[5], &tail[6], &tail[7]) != 11)
        return VD_ERROR_INVALID_PARAMETER;
    SET_VIRTUAL_DISK_INFO set;
    memset(&set, 0, sizeof set);
    set.Version = SET_VIRTUAL_DISK_INFO_IDENTIFIER;
    set.UniqueIdentifier.Data1 = data1;
    set.UniqueIdentifier.Data2 = (unsigned short)data2;
    set.UniqueIdentifier.Data3 = (unsigned short)data3;
    for (int i = 0; i < 8; i++)
        set.UniqueIdentifier.Data4[i] = (unsigned char)tail[i];
    return SetVirtualDiskInformation(opened, &set);
}

static uint32_t run(vd_disk *disk, const char *line)
{
    unsigned long long offset, length, at;
    unsigned threads, rounds, flags;
    char path[4096];
    if (sscanf(line, "w %llu %llu %llu", &offset, &length, &at) == 3) {
        uint8_t *buffer = malloc(length ? length : 1);
        if (buffer == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        uint32_t status = read_data(at, buffer, length);
        if (status == VD_ERROR_SUCCESS)
            status = vd_content_write(disk, offset, buffer, length);
        free(buffer);
        return status;
    }
    if (sscanf(line, "u %llu %llu", &offset, &length) == 2)
        return vd_content_unmap(disk, offset, length);
    if (sscanf(line, "r %llu %llu %4095s", &offset, &length, path) == 3) {
        uint8_t *buffer = malloc(length ? length : 1);
        if (buffer == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        uint32_t status = vd_content_read(disk, offset, buffer, length);
        if (status == VD_ERROR_SUCCESS)
            status = append_to(path, buffer, length, "ab");
        free(buffer);
        return status;
    }
    if (sscanf(line, "d %4095s", path) == 1)
        return dump(disk, path);
    if (sscanf(line, "t %u %u", &threads, &rounds) == 2)
        return stripes(disk, threads, rounds);
    if (sscanf(line, "c %u", &flags) == 1)
        return CompactVirtualDisk(opened, (COMPACT_VIRTUAL_DISK_FLAG)flags, NULL, NULL);
    if (sscanf(line, "m %4095s", path) == 1)
        return mirror_start(path);
    if (line[0] == 'b')
        return mirror_break();
    if (line[0] == 'f')
        return vd_content_flush(disk);
    if (line[0] == 'x')
        raise(SIGKILL);
    if (line[0] == 'i')
        return set_identifier(line + 1);
#ifdef VD_FAULT_INJECTION
    long left;
    if (sscanf(line, "k %ld", &left) == 1) {
        vd_fault_writes_left = left;
        return VD_ERROR_SUCCESS;
    }
    if (line[0] == 's')
        return vd_fault_writes_left != 0 ? VD_ERROR_SUCCESS : VD_ERROR_WRITE_FAULT;
#endif
    return VD_ERROR_INVALID_PARAMETER;
}

static int open_disk(const char *path, const char *mode, HANDLE *handle)
{
    OPEN_VIRTUAL_DISK_PARAMETERS parameters;
    memset(&parameters, 0, sizeof parameters);
    VIRTUAL_DISK_ACCESS_MASK access = VIRTUAL_DISK_ACCESS_ALL;
    if (strcmp(mode, "v2") == 0) {
        parameters.Version = OPEN_VIRTUAL_DISK_VERSION_2;
        access = VIRTUAL_DISK_ACCESS_NONE;
    } else {
        parameters.Version = OPEN_VIRTUAL_DISK_VERSION_1;
        parameters.Version1.RWDepth = 1;
        if (strcmp(mode, "ro") == 0)
            access = VIRTUAL_DISK_ACCESS_READ;
    }
    DWORD status = open_path(path, access, &parameters, handle);
    printf("open %lu\n", (unsigned long)status);
    return status == VD_ERROR_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: content_main IMAGE DATA [ro]\n");
        return 2;
    }
    data_file = fopen(argv[2], "rb");
    if (data_file == NULL) {
        perror(argv[2]);
        return 2;
    }
    HANDLE handle;
    if (!open_disk(argv[1], argc > 3 ? argv[3] : "", &handle))
        return 1;
    opened = handle;
    vd_disk *disk = vd_handle_acquire(handle);
    uint32_t closed = VD_ERROR_SUCCESS;
    char line[8192];
    while (fgets(line, sizeof line, stdin) != NULL) {
        uint32_t status;
        if (line[0] == 'e' && disk != NULL) {
            vd_handle_release(handle);
            disk = NULL;
            status = closed = vd_engine_close_handle(handle);
        } else if (disk == NULL && line[0] != 's') {
            status = VD_ERROR_INVALID_HANDLE;
        } else {
            status = run(disk, line);
        }
        if (status == VD_ERROR_SUCCESS)
            printf("ok\n");
        else
            printf("error %lu\n", (unsigned long)status);
        fflush(stdout);
    }
    if (disk != NULL) {
        vd_handle_release(handle);
        closed = vd_engine_close_handle(handle);
    }
    if (mirror_overlapped.hEvent != NULL)
        vd_engine_event_close(mirror_overlapped.hEvent);
    fclose(data_file);
    return closed == VD_ERROR_SUCCESS ? 0 : 1;
}
