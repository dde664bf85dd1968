/* The engine's events: what OVERLAPPED.hEvent holds off Windows.
 *
 * Windows signals a long operation's end through a manual-reset event the
 * caller made with CreateEvent.  The engine has no kernel objects, so it
 * defines its own (vdengine.h): an event is a descriptor that polls
 * readable while the event is set and not readable while it is reset, so
 * that a caller can wait with poll/select or an event loop's reader
 * (asyncio's add_reader) as well as with vd_engine_event_wait.  Setting it
 * twice is setting it once; waiting never consumes it (manual reset).
 *
 * Linux has eventfd, one descriptor for both ends; elsewhere a pipe, whose
 * read end is the one to poll.  The HANDLE value is a pointer to this
 * structure, as a Windows event HANDLE is an opaque value of its kind.
 *
 * A wait on a Windows event orders what the setter wrote before SetEvent
 * (OVERLAPPED.Internal) before what the waiter reads after.  A descriptor
 * states no such order in C's memory model, so `state` carries it: set
 * stores it with release after its write, the setter's last touch of the
 * event, and a wait returns only once it loaded it set with acquire.  A
 * waiter may then close the event at once.  A descriptor readable before
 * the store is the setter between its two steps: the wait polls again. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "host/io.h"
#include "vdengine.h"

#ifdef __linux__
#include <sys/eventfd.h>
#endif

typedef struct vd_event {
    int read_fd;    /* polls readable while set */
    int write_fd;   /* the same descriptor with eventfd */
    atomic_int state;   /* 1 while set */
} vd_event;

static vd_event *vd_event_of(HANDLE event)
{
    return (vd_event *)event;
}

DWORD vd_engine_event_create(HANDLE *event)
{
    if (event == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    vd_event *created = malloc(sizeof *created);
    if (created == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    atomic_init(&created->state, 0);
#ifdef __linux__
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        uint32_t status = vd_error_from_errno(errno);
        free(created);
        return status;
    }
    created->read_fd = created->write_fd = fd;
#else
    int fds[2];
    if (pipe(fds) != 0) {
        uint32_t status = vd_error_from_errno(errno);
        free(created);
        return status;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    created->read_fd = fds[0];
    created->write_fd = fds[1];
#endif
    *event = (HANDLE)created;
    return VD_ERROR_SUCCESS;
}

DWORD vd_engine_event_set(HANDLE event)
{
    vd_event *target = vd_event_of(event);
    if (target == NULL)
        return VD_ERROR_INVALID_HANDLE;
#ifdef __linux__
    uint64_t one = 1;
    ssize_t written = write(target->write_fd, &one, sizeof one);
#else
    char one = 1;
    ssize_t written = write(target->write_fd, &one, sizeof one);
#endif
    /* EAGAIN: the counter or the pipe is full, so the event is set. */
    if (written < 0 && errno != EAGAIN)
        return vd_error_from_errno(errno);
    atomic_store_explicit(&target->state, 1, memory_order_release);
    return VD_ERROR_SUCCESS;
}

DWORD vd_engine_event_reset(HANDLE event)
{
    vd_event *target = vd_event_of(event);
    if (target == NULL)
        return VD_ERROR_INVALID_HANDLE;
    atomic_store_explicit(&target->state, 0, memory_order_relaxed);
    char drain[64];
    while (read(target->read_fd, drain, sizeof drain) > 0) {
    }
    return VD_ERROR_SUCCESS;
}

DWORD vd_engine_event_wait(HANDLE event, DWORD milliseconds)
{
    vd_event *target = vd_event_of(event);
    if (target == NULL)
        return VD_ERROR_INVALID_HANDLE;
    struct pollfd poller = { .fd = target->read_fd, .events = POLLIN, .revents = 0 };
    int timeout = milliseconds == VD_ENGINE_INFINITE || milliseconds > INT32_MAX ? -1
                                                                                 : (int)milliseconds;
    for (;;) {
        if (atomic_load_explicit(&target->state, memory_order_acquire))
            return VD_ERROR_SUCCESS;
        int ready = poll(&poller, 1, timeout);
        if (ready > 0) {
            sched_yield();
            continue;
        }
        if (ready == 0)
            return VD_ENGINE_WAIT_TIMEOUT;
        if (errno != EINTR)
            return vd_error_from_errno(errno);
    }
}

int vd_engine_event_fd(HANDLE event)
{
    vd_event *target = vd_event_of(event);
    return target != NULL ? target->read_fd : -1;
}

void vd_engine_event_close(HANDLE event)
{
    vd_event *target = vd_event_of(event);
    if (target == NULL)
        return;
    close(target->read_fd);
    if (target->write_fd != target->read_fd)
        close(target->write_fd);
    free(target);
}
