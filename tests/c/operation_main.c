/* Test harness for the long operations' model (api/operation.c) and the
 * engine's events (host/event.c).  It runs a body of its own through
 * vd_operation_run: the body moves in steps that the harness releases one
 * at a time, so every observation is made at a known point of the
 * operation, not after some time.
 *
 *   operation_main sync PATH               no OVERLAPPED: the call returns the body's code
 *   operation_main async PATH STEPS        progress at every step, the event, the answers after
 *   operation_main cancel PATH STEPS K     CancelIoEx after K steps
 *   operation_main busy PATH OTHER         a second operation while one runs
 *   operation_main close PATH K            CloseHandle while the body waits at step K
 *   operation_main leak PATH N             N short operations; threads and fds before/after
 *   operation_main codes PATH              answers without an operation, bad arguments
 *   operation_main events                  set/reset/wait and poll on the descriptor
 * Each prints one JSON object; the tests compare its values. */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/handle.h"
#include "api/operation.h"
#include "base/vd_errors.h"
#include "virtdisk_api.h"
#include "vdengine.h"
#include "wide_path.h"

#define STEP_BYTES 4096u
#define BODY_CODE 0u

static void fail(const char *message)
{
    fprintf(stderr, "operation_main: %s\n", message);
    exit(2);
}

static HANDLE open_disk(const char *path)
{
    HANDLE handle = NULL;
    if (open_path(path, VIRTUAL_DISK_ACCESS_ALL, NULL, &handle) != ERROR_SUCCESS)
        fail("open failed");
    return handle;
}

/* The body's steps: it waits before step i until the harness released
 * more than i steps, or until a cancel came. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned steps, released, reached;
    int finished;
    vd_operation *operation;
} gate;

static void gate_init(gate *g, unsigned steps)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->changed, NULL);
    g->steps = steps;
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->changed);
    pthread_mutex_destroy(&g->lock);
}

static void sleep_a_little(void)
{
    struct timespec pause = { 0, 200000 };
    nanosleep(&pause, NULL);
}

static uint32_t gated_body(vd_disk *disk, vd_operation *operation, void *context)
{
    (void)disk;
    gate *g = context;
    vd_operation_set_total(operation, (uint64_t)g->steps * STEP_BYTES);
    pthread_mutex_lock(&g->lock);
    g->operation = operation;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    uint32_t status = BODY_CODE;
    for (unsigned i = 0; i < g->steps && status == BODY_CODE; i++) {
        for (;;) {
            /* The cancel flag has no wake-up of its own: poll it. */
            if (vd_operation_cancelled(operation)) {
                status = VD_ERROR_OPERATION_ABORTED;
                break;
            }
            pthread_mutex_lock(&g->lock);
            int go = g->released > i;
            pthread_mutex_unlock(&g->lock);
            if (go)
                break;
            sleep_a_little();
        }
        if (status != BODY_CODE)
            break;
        vd_operation_set_done(operation, (uint64_t)(i + 1) * STEP_BYTES);
        pthread_mutex_lock(&g->lock);
        g->reached = i + 1;
        pthread_cond_broadcast(&g->changed);
        pthread_mutex_unlock(&g->lock);
    }
    pthread_mutex_lock(&g->lock);
    g->finished = 1;
    g->operation = NULL;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    return status;
}

static void gate_release(gate *g, unsigned steps)
{
    pthread_mutex_lock(&g->lock);
    g->released = steps;
    pthread_mutex_unlock(&g->lock);
}

static void gate_wait_reached(gate *g, unsigned steps)
{
    pthread_mutex_lock(&g->lock);
    while (g->reached < steps && !g->finished)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_wait_started(gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (g->operation == NULL && !g->finished)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static uint32_t start(HANDLE handle, OVERLAPPED *overlapped, vd_operation_body body, void *context)
{
    vd_disk *disk = vd_handle_acquire(handle);
    if (disk == NULL)
        return VD_ERROR_INVALID_HANDLE;
    return vd_operation_run(handle, disk, overlapped, body, context, NULL);
}

static uint32_t instant_body(vd_disk *disk, vd_operation *operation, void *context)
{
    (void)disk;
    vd_operation_set_total(operation, STEP_BYTES);
    vd_operation_set_done(operation, STEP_BYTES);
    return context != NULL ? *(uint32_t *)context : BODY_CODE;
}

static OVERLAPPED make_overlapped(void)
{
    OVERLAPPED overlapped;
    memset(&overlapped, 0, sizeof overlapped);
    if (vd_engine_event_create(&overlapped.hEvent) != ERROR_SUCCESS)
        fail("event");
    return overlapped;
}

static int is_set(HANDLE event)
{
    return vd_engine_event_wait(event, 0) == ERROR_SUCCESS;
}

static void print_progress(const char *name, HANDLE handle, OVERLAPPED *overlapped)
{
    VIRTUAL_DISK_PROGRESS progress;
    memset(&progress, 0xAB, sizeof progress);
    DWORD code = GetVirtualDiskOperationProgress(handle, overlapped, &progress);
    printf("\"%s\": [%" PRIu32 ", %" PRIu32 ", %" PRIu64 ", %" PRIu64 "]", name, (uint32_t)code,
           (uint32_t)progress.OperationStatus, (uint64_t)progress.CurrentValue,
           (uint64_t)progress.CompletionValue);
}

static int command_sync(const char *path)
{
    HANDLE handle = open_disk(path);
    uint32_t aborted = VD_ERROR_OPERATION_ABORTED;
    uint32_t plain = start(handle, NULL, instant_body, NULL);
    uint32_t failing = start(handle, NULL, instant_body, &aborted);
    uint32_t cancel_after = vd_engine_cancel_io(handle, NULL);
    uint32_t closed = vd_engine_close_handle(handle);
    printf("{\"plain\": %" PRIu32 ", \"failing\": %" PRIu32 ", \"cancel_after\": %" PRIu32
           ", \"close\": %" PRIu32 "}\n", plain, failing, cancel_after, closed);
    return 0;
}

static int command_async(const char *path, unsigned steps)
{
    HANDLE handle = open_disk(path);
    OVERLAPPED overlapped = make_overlapped();
    /* A set event must be reset by the start. */
    vd_engine_event_set(overlapped.hEvent);
    gate g;
    gate_init(&g, steps);
    uint32_t started = start(handle, &overlapped, gated_body, &g);
    gate_wait_started(&g);
    printf("{\"start\": %" PRIu32 ", \"internal_running\": %" PRIu64 ", \"set_running\": %d, "
           "\"steps\": [", started, (uint64_t)overlapped.Internal, is_set(overlapped.hEvent));
    /* Up to the last step, which may end the operation at once. */
    for (unsigned i = 0; i < steps; i++) {
        if (i > 0) {
            gate_release(&g, i);
            gate_wait_reached(&g, i);
        }
        VIRTUAL_DISK_PROGRESS progress;
        DWORD code = GetVirtualDiskOperationProgress(handle, &overlapped, &progress);
        printf("%s[%" PRIu32 ", %" PRIu32 ", %" PRIu64 ", %" PRIu64 ", %d]", i ? ", " : "",
               (uint32_t)code, (uint32_t)progress.OperationStatus,
               (uint64_t)progress.CurrentValue, (uint64_t)progress.CompletionValue,
               is_set(overlapped.hEvent));
    }
    gate_release(&g, steps);
    uint32_t waited = vd_engine_event_wait(overlapped.hEvent, VD_ENGINE_INFINITE);
    printf("], \"wait\": %" PRIu32 ", \"internal\": %" PRIu64 ", ", waited,
           (uint64_t)overlapped.Internal);
    print_progress("after", handle, &overlapped);
    printf(", ");
    print_progress("again", handle, &overlapped);
    printf(", \"cancel_after\": %" PRIu32 ", ", (uint32_t)vd_engine_cancel_io(handle, &overlapped));
    print_progress("other_overlapped", handle, &(OVERLAPPED){ 0 });
    /* A second operation with the same OVERLAPPED replaces the record. */
    uint32_t failing = VD_ERROR_DISK_FULL;
    uint32_t restarted = start(handle, &overlapped, instant_body, &failing);
    vd_engine_event_wait(overlapped.hEvent, VD_ENGINE_INFINITE);
    printf(", \"restart\": %" PRIu32 ", ", restarted);
    print_progress("restarted", handle, &overlapped);
    printf(", \"close\": %" PRIu32 "}\n", (uint32_t)vd_engine_close_handle(handle));
    vd_engine_event_close(overlapped.hEvent);
    gate_destroy(&g);
    return 0;
}

static int command_cancel(const char *path, unsigned steps, unsigned at)
{
    HANDLE handle = open_disk(path);
    OVERLAPPED overlapped = make_overlapped();
    OVERLAPPED other = make_overlapped();
    gate g;
    gate_init(&g, steps);
    uint32_t started = start(handle, &overlapped, gated_body, &g);
    gate_release(&g, at);
    gate_wait_reached(&g, at);
    uint32_t wrong = vd_engine_cancel_io(handle, &other);
    uint32_t cancelled = vd_engine_cancel_io(handle, &overlapped);
    vd_engine_event_wait(overlapped.hEvent, VD_ENGINE_INFINITE);
    pthread_mutex_lock(&g.lock);
    unsigned reached = g.reached;
    pthread_mutex_unlock(&g.lock);
    printf("{\"start\": %" PRIu32 ", \"wrong_overlapped\": %" PRIu32 ", \"cancel\": %" PRIu32
           ", \"internal\": %" PRIu64 ", \"reached\": %u, ", started, wrong, cancelled,
           (uint64_t)overlapped.Internal, reached);
    print_progress("after", handle, &overlapped);
    printf(", \"close\": %" PRIu32 "}\n", (uint32_t)vd_engine_close_handle(handle));
    vd_engine_event_close(overlapped.hEvent);
    vd_engine_event_close(other.hEvent);
    gate_destroy(&g);
    return 0;
}

static int command_busy(const char *path, const char *other_path)
{
    HANDLE handle = open_disk(path);
    HANDLE second_handle = open_disk(other_path);
    OVERLAPPED overlapped = make_overlapped();
    OVERLAPPED second = make_overlapped();
    OVERLAPPED other_handle = make_overlapped();
    gate g;
    gate_init(&g, 2);
    uint32_t started = start(handle, &overlapped, gated_body, &g);
    gate_wait_started(&g);
    uint32_t async_second = start(handle, &second, instant_body, NULL);
    uint32_t sync_second = start(handle, NULL, instant_body, NULL);
    /* The second OVERLAPPED was never used: no record, event untouched. */
    VIRTUAL_DISK_PROGRESS progress;
    uint32_t second_progress = GetVirtualDiskOperationProgress(handle, &second, &progress);
    /* Another handle runs its own operations meanwhile. */
    uint32_t elsewhere = start(second_handle, &other_handle, instant_body, NULL);
    vd_engine_event_wait(other_handle.hEvent, VD_ENGINE_INFINITE);
    gate_release(&g, 2);
    vd_engine_event_wait(overlapped.hEvent, VD_ENGINE_INFINITE);
    uint32_t after = start(handle, NULL, instant_body, NULL);
    printf("{\"start\": %" PRIu32 ", \"async_second\": %" PRIu32 ", \"sync_second\": %" PRIu32
           ", \"second_progress\": %" PRIu32 ", \"second_event_set\": %d, "
           "\"other_handle\": %" PRIu32 ", \"other_internal\": %" PRIu64
           ", \"first\": %" PRIu64 ", \"after\": %" PRIu32 "}\n",
           started, async_second, sync_second, second_progress, is_set(second.hEvent), elsewhere,
           (uint64_t)other_handle.Internal, (uint64_t)overlapped.Internal, after);
    vd_engine_close_handle(handle);
    vd_engine_close_handle(second_handle);
    vd_engine_event_close(overlapped.hEvent);
    vd_engine_event_close(second.hEvent);
    vd_engine_event_close(other_handle.hEvent);
    gate_destroy(&g);
    return 0;
}

typedef struct closer {
    HANDLE handle;
    gate *g;
    uint32_t status;
    int finished_before_return;
} closer;

static void *close_thread(void *argument)
{
    closer *c = argument;
    c->status = vd_engine_close_handle(c->handle);
    pthread_mutex_lock(&c->g->lock);
    c->finished_before_return = c->g->finished;
    pthread_mutex_unlock(&c->g->lock);
    return NULL;
}

static int command_close(const char *path, unsigned at)
{
    HANDLE handle = open_disk(path);
    OVERLAPPED overlapped = make_overlapped();
    gate g;
    gate_init(&g, at + 2);
    uint32_t started = start(handle, &overlapped, gated_body, &g);
    gate_release(&g, at);
    gate_wait_reached(&g, at);
    closer c = { handle, &g, 0, 0 };
    pthread_t thread;
    if (pthread_create(&thread, NULL, close_thread, &c) != 0)
        fail("thread");
    pthread_join(thread, NULL);
    /* The OVERLAPPED is final once close returned: it could be freed now. */
    printf("{\"start\": %" PRIu32 ", \"close\": %" PRIu32 ", \"body_done_first\": %d, "
           "\"internal\": %" PRIu64 ", \"event_set\": %d, \"handles\": %" PRIu32 ", ",
           started, c.status, c.finished_before_return, (uint64_t)overlapped.Internal,
           is_set(overlapped.hEvent), (uint32_t)vd_engine_open_handle_count());
    print_progress("closed_handle", handle, &overlapped);
    printf(", \"cancel_closed\": %" PRIu32 "}\n", (uint32_t)vd_engine_cancel_io(handle, NULL));
    vd_engine_event_close(overlapped.hEvent);
    gate_destroy(&g);
    return 0;
}

static unsigned count_entries(const char *directory)
{
    DIR *listing = opendir(directory);
    if (listing == NULL)
        fail("opendir");
    unsigned count = 0;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;)
        if (entry->d_name[0] != '.')
            count++;
    closedir(listing);
    return count;
}

static int command_leak(const char *path, unsigned rounds)
{
    unsigned threads_before = count_entries("/proc/self/task");
    unsigned fds_before = count_entries("/proc/self/fd");
    unsigned wrong = 0, peak_threads = 0;
    HANDLE handle = open_disk(path);
    for (unsigned i = 0; i < rounds; i++) {
        OVERLAPPED overlapped = make_overlapped();
        uint32_t started = start(handle, &overlapped, instant_body, NULL);
        vd_engine_event_wait(overlapped.hEvent, VD_ENGINE_INFINITE);
        if ((started != VD_ERROR_IO_PENDING && started != VD_ERROR_SUCCESS) ||
            overlapped.Internal != BODY_CODE)
            wrong++;
        vd_engine_event_close(overlapped.hEvent);
        if (i % 50 == 0) {
            unsigned now = count_entries("/proc/self/task");
            peak_threads = now > peak_threads ? now : peak_threads;
        }
    }
    vd_engine_close_handle(handle);
    /* Handles closed while their last thread may still be on its way out. */
    for (unsigned i = 0; i < rounds / 10; i++) {
        HANDLE short_lived = open_disk(path);
        OVERLAPPED overlapped = make_overlapped();
        start(short_lived, &overlapped, instant_body, NULL);
        vd_engine_close_handle(short_lived);
        if (!is_set(overlapped.hEvent))
            wrong++;
        vd_engine_event_close(overlapped.hEvent);
    }
    printf("{\"wrong\": %u, \"threads_before\": %u, \"threads_after\": %u, \"peak_threads\": %u, "
           "\"fds_before\": %u, \"fds_after\": %u, \"handles\": %" PRIu32 "}\n",
           wrong, threads_before, count_entries("/proc/self/task"), peak_threads, fds_before,
           count_entries("/proc/self/fd"), (uint32_t)vd_engine_open_handle_count());
    return 0;
}

static int command_codes(const char *path)
{
    HANDLE handle = open_disk(path);
    OVERLAPPED overlapped = make_overlapped();
    VIRTUAL_DISK_PROGRESS progress;
    printf("{\"progress_unused\": %" PRIu32,
           (uint32_t)GetVirtualDiskOperationProgress(handle, &overlapped, &progress));
    printf(", \"progress_null_overlapped\": %" PRIu32,
           (uint32_t)GetVirtualDiskOperationProgress(handle, NULL, &progress));
    printf(", \"progress_null_progress\": %" PRIu32,
           (uint32_t)GetVirtualDiskOperationProgress(handle, &overlapped, NULL));
    printf(", \"progress_bad_handle\": %" PRIu32,
           (uint32_t)GetVirtualDiskOperationProgress((HANDLE)(uintptr_t)0x777, &overlapped,
                                                     &progress));
    printf(", \"cancel_none\": %" PRIu32, (uint32_t)vd_engine_cancel_io(handle, NULL));
    printf(", \"cancel_unused\": %" PRIu32, (uint32_t)vd_engine_cancel_io(handle, &overlapped));
    printf(", \"cancel_bad_handle\": %" PRIu32,
           (uint32_t)vd_engine_cancel_io((HANDLE)(uintptr_t)0x777, NULL));
    /* An operation without an event still completes into its OVERLAPPED. */
    OVERLAPPED no_event;
    memset(&no_event, 0, sizeof no_event);
    gate g;
    gate_init(&g, 1);
    uint32_t started = start(handle, &no_event, gated_body, &g);
    gate_release(&g, 1);
    VIRTUAL_DISK_PROGRESS seen;
    do {
        GetVirtualDiskOperationProgress(handle, &no_event, &seen);
    } while (seen.OperationStatus == VD_ERROR_IO_PENDING);
    printf(", \"no_event_start\": %" PRIu32 ", \"no_event_status\": %" PRIu32, started,
           (uint32_t)seen.OperationStatus);
    printf(", \"close\": %" PRIu32 "}\n", (uint32_t)vd_engine_close_handle(handle));
    vd_engine_event_close(overlapped.hEvent);
    gate_destroy(&g);
    return 0;
}

static int readable(int fd)
{
    struct pollfd poller = { .fd = fd, .events = POLLIN, .revents = 0 };
    return poll(&poller, 1, 0) == 1 && (poller.revents & POLLIN);
}

static int command_events(void)
{
    HANDLE event = NULL;
    uint32_t created = vd_engine_event_create(&event);
    int fd = vd_engine_event_fd(event);
    printf("{\"create\": %" PRIu32 ", \"fd\": %d, \"created_set\": %d, \"created_readable\": %d",
           created, fd >= 0, is_set(event), readable(fd));
    printf(", \"wait_reset\": %" PRIu32, (uint32_t)vd_engine_event_wait(event, 1));
    vd_engine_event_set(event);
    vd_engine_event_set(event);
    printf(", \"set_twice\": %d, \"readable\": %d", is_set(event), readable(fd));
    printf(", \"wait_set\": %" PRIu32 ", \"still_set\": %d",
           (uint32_t)vd_engine_event_wait(event, VD_ENGINE_INFINITE), is_set(event));
    vd_engine_event_reset(event);
    printf(", \"reset\": %d, \"reset_readable\": %d", is_set(event), readable(fd));
    vd_engine_event_reset(event);
    printf(", \"reset_twice\": %d", is_set(event));
    printf(", \"create_null\": %" PRIu32 ", \"set_null\": %" PRIu32 ", \"fd_null\": %d}\n",
           (uint32_t)vd_engine_event_create(NULL), (uint32_t)vd_engine_event_set(NULL),
           vd_engine_event_fd(NULL));
    vd_engine_event_close(event);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "events") == 0)
        return command_events();
    if (argc < 3)
        fail("usage: operation_main COMMAND PATH ...");
    const char *command = argv[1], *path = argv[2];
    if (strcmp(command, "sync") == 0)
        return command_sync(path);
    if (strcmp(command, "async") == 0 && argc == 4)
        return command_async(path, (unsigned)atoi(argv[3]));
    if (strcmp(command, "cancel") == 0 && argc == 5)
        return command_cancel(path, (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
    if (strcmp(command, "busy") == 0 && argc == 4)
        return command_busy(path, argv[3]);
    if (strcmp(command, "close") == 0 && argc == 4)
        return command_close(path, (unsigned)atoi(argv[3]));
    if (strcmp(command, "leak") == 0 && argc == 4)
        return command_leak(path, (unsigned)atoi(argv[3]));
    if (strcmp(command, "codes") == 0)
        return command_codes(path);
    fail("unknown command");
    return 2;
}
