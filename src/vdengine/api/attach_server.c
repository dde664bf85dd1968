/* The server process of a permanent exported attach (attach_server.h).
 *
 * Fork, then start the export in the child.  The attaching process may
 * have any number of threads (Python's, other exports' workers, long
 * operations); a forked child has only the thread that forked, and every
 * lock another thread held at that moment stays locked in the child for
 * good.  So the child touches none of the engine's shared state: it never
 * uses the handle's disk (whose format locks another thread of the parent
 * may hold), only reads plain fields of it, and builds a disk of its own
 * on the very same open file description (the descriptor is inherited),
 * with fresh locks and caches, and parses the parents again on the
 * descriptors of the handle's chain, inherited as well.  Its export
 * threads are created after the fork, in the child.  Forking after the
 * export's setup instead would lose the workers (threads do not survive a
 * fork) and share one set of caches between two processes.
 *
 * Double fork: the child makes a new session and forks the server, then
 * exits, so the server is nobody's child (no zombie in the caller, no
 * controlling terminal).  The server closes every descriptor but those
 * of the chain's images and a report pipe (a caller's pipes must see
 * their end of file; the records lock and other exports must not be
 * held), names itself VD_ATTACH_SERVER_NAME, blocks the stop signals in
 * every thread, exports, binds the loop without autoclear and reports the
 * loop, the exported file and its pid through the pipe.  Then it waits for SIGTERM (sent by the
 * detach once the loop is unbound), stops the export, flushes and exits.
 *
 * The images' sharing locks belong to the open file descriptions, which
 * the server shares with the attaching handle: they outlive that handle,
 * and a parent the handle opened for writing (V1 RWDepth above 1), whose
 * writer's lock nobody else could take, is the server's all the same.  The
 * server turns the writers' locks into shared (readers') ones, so that
 * another process can open the chain read-only, as DetachVirtualDisk
 * needs, while a writer is still kept out.  The attaching handle's own
 * content I/O goes through the device from then on
 * (api/attach_redirect.h). */
#define _GNU_SOURCE
#include "api/attach_server.h"

#if defined(__linux__)

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/storage_type.h"
#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/chain.h"
#include "disk/content.h"
#include "host/fuse_export.h"

/* Seconds a detach waits for the server to finish its last flush. */
#define VD_SERVER_END_SECONDS 60

/* What the server tells the attaching process once set up. */
typedef struct vd_server_report {
    uint32_t status;
    int number;
    long pid;
    char backing_path[VD_ATTACH_RECORD_PATH_MAX];
    char detail[VD_DETAIL_CAPACITY];
} vd_server_report;

static void vd_server_send(int fd, const vd_server_report *report)
{
    const char *bytes = (const char *)report;
    size_t left = sizeof *report;
    while (left > 0) {
        ssize_t written = write(fd, bytes, left);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        bytes += written;
        left -= (size_t)written;
    }
}

/* Closes descriptors `first` to `last`. */
static void vd_server_close_range(int first, int last)
{
    if (first > last)
        return;
#if defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)first, (unsigned)last, 0u) == 0)
        return;
#endif
    /* A kernel older than 5.9: one by one, up to the descriptor limit. */
    long limit = sysconf(_SC_OPEN_MAX);
    int end = last < limit ? last : (int)(limit > 0 ? limit - 1 : 1023);
    for (int fd = first; fd <= end; fd++)
        (void)close(fd);
}

static int vd_server_fd_order(const void *a, const void *b)
{
    int left = *(const int *)a, right = *(const int *)b;
    return (left > right) - (left < right);
}

/* Closes every descriptor but the `count` in `keep` (sorted here; all
 * above 2) and 0-2, which point at /dev/null by then. */
static void vd_server_close_others(int *keep, size_t count)
{
    qsort(keep, count, sizeof *keep, vd_server_fd_order);
    int next = 3;
    for (size_t i = 0; i < count; i++) {
        vd_server_close_range(next, keep[i] - 1);
        if (keep[i] + 1 > next)
            next = keep[i] + 1;
    }
    vd_server_close_range(next, INT_MAX);
}

/* The descriptors the server keeps, in `keep` (room for the deepest
 * chain and the pipe): the report pipe, the image's and those of the
 * chain the handle opened (each image of it inherited, so its lock stays
 * with the open file description).  Returns how many. */
static size_t vd_server_kept(const vd_disk *original, int report_fd,
                             int keep[VD_CHAIN_MAX_DEPTH + 1])
{
    size_t count = 0;
    keep[count++] = report_fd;
    keep[count++] = original->image.file.fd;
    for (uint32_t i = 0; i < original->chain.count && count < VD_CHAIN_MAX_DEPTH + 1; i++)
        keep[count++] = original->chain.images[i].file.fd;
    return count;
}

static void vd_server_quiet_standard_streams(void)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return;
    for (int fd = 0; fd < 3; fd++)
        (void)dup2(null, fd);
    if (null > 2)
        close(null);
}

/* A shared lock in place of the writer's (see the top of the file). */
static void vd_server_share_lock(int fd)
{
#if defined(F_OFD_SETLK)
    struct flock range;
    memset(&range, 0, sizeof range);
    range.l_type = F_RDLCK;
    range.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &range) == 0)
        return;
#endif
    (void)flock(fd, LOCK_SH | LOCK_NB);
}

/* Shared locks on every image the server holds for writing: the child,
 * and the parents a V1 RWDepth above 1 opened read-write, which the
 * detach's read-only open of the chain must be able to open too. */
static void vd_server_share_locks(const vd_disk *disk)
{
    vd_server_share_lock(disk->image.file.fd);
    for (uint32_t i = 0; i < disk->chain.count; i++) {
        if (disk->chain.images[i].file.writable)
            vd_server_share_lock(disk->chain.images[i].file.fd);
    }
}

/* The server's own disk on the handle's open files: same terms, fresh
 * format state and locks, the parents parsed again on the descriptors of
 * the chain the handle opened (opening them again would fail on the
 * locks of parents the handle opened for writing, and could find other
 * files than the handle did). */
static uint32_t vd_server_disk(const vd_disk *original, vd_disk **out)
{
    vd_disk *disk = vd_disk_new();
    if (disk == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    struct stat info;
    vd_file file = {
        .fd = original->image.file.fd,
        .writable = original->image.file.writable,
        .size = fstat(original->image.file.fd, &info) == 0 ? (uint64_t)info.st_size
                                                           : original->image.file.size,
        .path = strdup(original->image.file.path),
    };
    if (file.path == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = vd_storage_open_image(&file, original->image.device, 0, &disk->image);
    if (status != VD_ERROR_SUCCESS)
        return status;
    disk->access_mask = original->access_mask;
    disk->open_flags = original->open_flags;
    disk->open_version = original->open_version;
    disk->writable_depth = original->writable_depth;
    disk->read_only = original->read_only;
    disk->may_detach = original->may_detach;
    disk->loop_fd = -1;
    status = vd_chain_open_again(&original->chain, &disk->chain);
    if (status == VD_ERROR_SUCCESS)
        *out = disk;
    return status;
}

/* The server: never returns. */
static void vd_server_run(vd_disk *original, const vd_attach_view *view, int report_fd)
{
    vd_server_quiet_standard_streams();
    int kept[VD_CHAIN_MAX_DEPTH + 1];
    vd_server_close_others(kept, vd_server_kept(original, report_fd, kept));
    (void)prctl(PR_SET_NAME, VD_ATTACH_SERVER_NAME, 0, 0, 0);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    vd_detail_clear();

    vd_server_report report;
    memset(&report, 0, sizeof report);
    report.number = -1;
    report.pid = (long)getpid();
    vd_disk *disk = NULL;
    vd_fuse_export *export_ = NULL;
    vd_attach_binding binding = { .number = -1, .device_fd = -1 };
    report.status = vd_server_disk(original, &disk);
    if (report.status == VD_ERROR_SUCCESS) {
        if (!view->read_only)
            vd_server_share_locks(disk);
        report.status = vd_attach_export_serve(disk, view, 0, &export_, &binding);
    }
    if (report.status == VD_ERROR_SUCCESS) {
        close(binding.device_fd);       /* without autoclear the loop stays bound */
        report.number = binding.number;
        memcpy(report.backing_path, binding.backing_path, sizeof report.backing_path);
    } else {
        snprintf(report.detail, sizeof report.detail, "%s", vd_detail_get());
    }
    vd_server_send(report_fd, &report);
    close(report_fd);
    if (report.status != VD_ERROR_SUCCESS)
        _exit(1);
    int signal_number = 0;
    while (sigwait(&stop, &signal_number) != 0) {
    }
    /* The disk is never freed: the process ends, and freeing would take
     * locks (the attached list) a thread of the parent may have held. */
    vd_attach_export_end(disk, export_, disk->image.file.writable);
    _exit(0);
}

static uint32_t vd_server_receive(int fd, vd_server_report *report)
{
    char *bytes = (char *)report;
    size_t got = 0;
    while (got < sizeof *report) {
        ssize_t length = read(fd, bytes + got, sizeof *report - got);
        if (length < 0 && errno == EINTR)
            continue;
        if (length <= 0)
            return vd_fail(VD_ERROR_GEN_FAILURE, "the export's server process ended before it "
                                                 "was set up");
        got += (size_t)length;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_attach_server_start(vd_disk *disk, const vd_attach_view *view,
                                vd_attach_binding *binding)
{
    /* The server parses the image from the file: what the handle wrote
     * and still caches must be there first. */
    uint32_t flushed = vd_content_flush(disk);
    if (flushed != VD_ERROR_SUCCESS)
        return vd_fail(flushed, "cannot flush the image before its server takes it over");
    int report_pipe[2];
    if (pipe2(report_pipe, O_CLOEXEC) != 0)
        return vd_fail(vd_error_from_errno(errno), "cannot make a pipe for the export's server");
    pid_t session = fork();
    if (session < 0) {
        close(report_pipe[0]);
        close(report_pipe[1]);
        return vd_fail(vd_error_from_errno(errno), "cannot start the export's server process");
    }
    if (session == 0) {
        close(report_pipe[0]);
        (void)setsid();
        pid_t server = fork();
        if (server == 0)
            vd_server_run(disk, view, report_pipe[1]);
        _exit(server < 0 ? 1 : 0);
    }
    close(report_pipe[1]);
    int exit_status;
    while (waitpid(session, &exit_status, 0) < 0 && errno == EINTR) {
    }
    vd_server_report report;
    uint32_t status = vd_server_receive(report_pipe[0], &report);
    close(report_pipe[0]);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (report.status != VD_ERROR_SUCCESS)
        return vd_fail(report.status, "%s", report.detail[0] != '\0'
                                                ? report.detail
                                                : "the export's server could not start");
    binding->number = report.number;
    binding->device_fd = -1;
    binding->server_pid = report.pid;
    memcpy(binding->backing_path, report.backing_path, sizeof binding->backing_path);
    return VD_ERROR_SUCCESS;
}

void vd_attach_server_end(long pid)
{
    if (pid <= 0 || !vd_attach_server_alive(pid))
        return;
#if defined(SYS_pidfd_open)
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
#else
    int pidfd = -1;
#endif
    if (kill((pid_t)pid, SIGTERM) != 0) {
        if (pidfd >= 0)
            close(pidfd);
        return;
    }
    if (pidfd >= 0) {
        /* Readable once the process has exited. */
        struct pollfd wait_for = { .fd = pidfd, .events = POLLIN };
        while (poll(&wait_for, 1, VD_SERVER_END_SECONDS * 1000) < 0 && errno == EINTR) {
        }
        close(pidfd);
        return;
    }
    struct timespec pause = { 0, 10 * 1000 * 1000 };
    for (int i = 0; i < VD_SERVER_END_SECONDS * 100 && kill((pid_t)pid, 0) == 0; i++)
        nanosleep(&pause, NULL);
}

#else
#include "base/vd_errors.h"

/* No FUSE export off Linux (host/fuse_export.c), so no server either. */
uint32_t vd_attach_server_start(vd_disk *disk, const vd_attach_view *view,
                                vd_attach_binding *binding)
{
    (void)disk, (void)view, (void)binding;
    return VD_ERROR_NOT_SUPPORTED;
}

void vd_attach_server_end(long pid)
{
    (void)pid;
}
#endif
