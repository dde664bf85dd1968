/* The single-file FUSE export's lifetime: the file, the mount, the cloned
 * /dev/fuse descriptors and the worker threads (fuse_export.h).  The
 * requests themselves are fuse_serve.c's. */
#if defined(__linux__)
#define _GNU_SOURCE
#include "host/fuse_export.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "host/fuse_serve.h"
#include "host/io.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57    /* Linux 5.6; older C libraries lack the name */
#endif

typedef struct vd_fuse_worker {
    struct vd_fuse_export *export_;
    int fd;
    vd_fuse_buffers buffers;
    pthread_t thread;
    int running;
} vd_fuse_worker;

struct vd_fuse_export {
    vd_fuse_server server;
    char *path;
    int created;                 /* the start made the file: the stop removes it */
    int mounted;
    vd_fuse_worker workers[VD_FUSE_EXPORT_WORKERS];
};

/* Serves requests until the connection ends (ENODEV: unmounted and closed)
 * or the stop cancels the thread.  Cancellation is allowed only while the
 * thread waits for a request, so a request is always answered whole and
 * no engine lock is ever left held. */
static void *worker_run(void *argument)
{
    vd_fuse_worker *worker = argument;
    vd_fuse_server *server = &worker->export_->server;
    int previous;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &previous);
    /* Memory reclaim may wait on a loop device whose I/O this thread
     * serves; the flag keeps this thread's own allocations from waiting on
     * it in turn.  Needs CAP_SYS_RESOURCE: without it the export works and
     * only loses that guarantee. */
    (void)prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
    for (;;) {
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &previous);
        ssize_t length = read(worker->fd, worker->buffers.request, worker->buffers.request_size);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &previous);
        if (length < 0) {
            /* EINTR: a signal; ENOENT: the request was interrupted before
             * it was read; EAGAIN: another worker took it. */
            if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
                continue;
            break;      /* ENODEV: the file system is gone */
        }
        vd_fuse_serve(server, worker->fd, &worker->buffers, (size_t)length);
    }
    /* The handshake may have been pending when the connection ended. */
    pthread_mutex_lock(&server->init_lock);
    if (server->init_state == 0) {
        server->init_state = -1;
        pthread_cond_broadcast(&server->init_changed);
    }
    pthread_mutex_unlock(&server->init_lock);
    return NULL;
}

static uint32_t status_for_errno(int error)
{
    switch (error) {
    case EPERM:
        return VD_ERROR_PRIVILEGE_NOT_HELD;
    case ENODEV:
    case ENXIO:
        return VD_ERROR_NOT_SUPPORTED;
    default:
        return vd_error_from_errno(error);
    }
}

/* Opens /dev/fuse; with `clone_of` >= 0 the new descriptor joins that
 * descriptor's connection, so the kernel queues requests to both and each
 * reply goes back on the descriptor its request was read from. */
static uint32_t open_device(int clone_of, int *fd)
{
    *fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? VD_ERROR_NOT_SUPPORTED : status_for_errno(errno);
    if (clone_of >= 0) {
        uint32_t source = (uint32_t)clone_of;
        if (ioctl(*fd, FUSE_DEV_IOC_CLONE, &source) != 0) {
            uint32_t status = status_for_errno(errno);
            close(*fd);
            *fd = -1;
            return status;
        }
    }
    return VD_ERROR_SUCCESS;
}

/* The file the export is mounted on: created when missing, refused when
 * it is anything but a regular file. */
static uint32_t prepare_file(vd_fuse_export *export_)
{
    int fd = open(export_->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        export_->created = 1;
        return VD_ERROR_SUCCESS;
    }
    if (errno != EEXIST)
        return vd_error_from_errno(errno);
    struct stat info;
    if (lstat(export_->path, &info) != 0)
        return vd_error_from_errno(errno);
    return S_ISREG(info.st_mode) ? VD_ERROR_SUCCESS : VD_ERROR_INVALID_PARAMETER;
}

static uint32_t mount_file(vd_fuse_export *export_, int fd)
{
    vd_fuse_server *server = &export_->server;
    /* rootmode: the root is a regular file; allow_other: the loop driver
     * and every other user reach it, default_permissions: the kernel checks
     * the mode (0600, the mounter's) so the server need not. */
    char options[256];
    snprintf(options, sizeof options,
             "fd=%d,rootmode=%o,user_id=%u,group_id=%u,allow_other,default_permissions,max_read=%u",
             fd, (unsigned)S_IFREG, server->uid, server->gid, server->max_io);
    unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (server->read_only ? MS_RDONLY : 0);
    const char *source = server->disk->image.file.path;
    if (mount(source != NULL ? source : "virtdisk", export_->path, "fuse.virtdisk", flags,
              options) != 0)
        return status_for_errno(errno);
    export_->mounted = 1;
    return VD_ERROR_SUCCESS;
}

static uint32_t allocate_buffers(vd_fuse_export *export_, vd_fuse_worker *worker)
{
    vd_fuse_buffers *buffers = &worker->buffers;
    buffers->request_size = vd_fuse_request_buffer_size(&export_->server);
    buffers->data_size = vd_fuse_data_buffer_size(&export_->server);
    void *request = NULL, *data = NULL;
    /* Page-aligned, so that the data path may hand them to O_DIRECT. */
    if (posix_memalign(&request, 4096, buffers->request_size) != 0
        || posix_memalign(&data, 4096, buffers->data_size) != 0) {
        free(request);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    buffers->request = request;
    buffers->data = data;
    return VD_ERROR_SUCCESS;
}

/* Starts the workers with every signal blocked: signals are the process's
 * business (Python's handlers among them), never a server thread's. */
static uint32_t start_workers(vd_fuse_export *export_)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t i = 0; i < VD_FUSE_EXPORT_WORKERS && status == VD_ERROR_SUCCESS; i++) {
        vd_fuse_worker *worker = &export_->workers[i];
        if (pthread_create(&worker->thread, NULL, worker_run, worker) != 0)
            status = VD_ERROR_NOT_ENOUGH_MEMORY;
        else
            worker->running = 1;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return status;
}

static uint32_t wait_for_init(vd_fuse_server *server)
{
    pthread_mutex_lock(&server->init_lock);
    while (server->init_state == 0)
        pthread_cond_wait(&server->init_changed, &server->init_lock);
    int state = server->init_state;
    pthread_mutex_unlock(&server->init_lock);
    return state > 0 ? VD_ERROR_SUCCESS : VD_ERROR_NOT_SUPPORTED;
}

uint32_t vd_fuse_export_start(vd_disk *disk, const char *directory, int read_only,
                              vd_fuse_export **out)
{
    if (out != NULL)
        *out = NULL;
    if (disk == NULL || directory == NULL || out == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    if (!read_only && disk->read_only)
        return VD_ERROR_ACCESS_DENIED;
    vd_fuse_export *export_ = calloc(1, sizeof *export_);
    size_t path_length = strlen(directory) + sizeof "/disk";
    char *path = malloc(path_length);
    if (export_ == NULL || path == NULL) {
        free(export_);
        free(path);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    snprintf(path, path_length, "%s/disk", directory);
    export_->path = path;
    vd_fuse_server *server = &export_->server;
    server->disk = disk;
    server->read_only = read_only != 0;
    server->max_io = VD_FUSE_EXPORT_MAX_IO;
    server->uid = (uint32_t)geteuid();
    server->gid = (uint32_t)getegid();
    server->start_time = (uint64_t)time(NULL);
    pthread_mutex_init(&server->partial_lock, NULL);
    pthread_mutex_init(&server->init_lock, NULL);
    pthread_cond_init(&server->init_changed, NULL);
    for (size_t i = 0; i < VD_FUSE_EXPORT_WORKERS; i++) {
        export_->workers[i].export_ = export_;
        export_->workers[i].fd = -1;
    }

    uint32_t status = prepare_file(export_);
    if (status == VD_ERROR_SUCCESS)
        status = open_device(-1, &export_->workers[0].fd);
    if (status == VD_ERROR_SUCCESS)
        status = mount_file(export_, export_->workers[0].fd);
    for (size_t i = 0; i < VD_FUSE_EXPORT_WORKERS && status == VD_ERROR_SUCCESS; i++) {
        if (i > 0)
            status = open_device(export_->workers[0].fd, &export_->workers[i].fd);
        if (status == VD_ERROR_SUCCESS)
            status = allocate_buffers(export_, &export_->workers[i]);
    }
    if (status == VD_ERROR_SUCCESS)
        status = start_workers(export_);
    /* The kernel sent its INIT during mount(2); once it is answered the
     * file opens without waiting. */
    if (status == VD_ERROR_SUCCESS)
        status = wait_for_init(server);
    if (status != VD_ERROR_SUCCESS) {
        vd_fuse_export_stop(export_);
        return status;
    }
    *out = export_;
    return VD_ERROR_SUCCESS;
}

const char *vd_fuse_export_file_path(const vd_fuse_export *export_)
{
    return export_ != NULL ? export_->path : NULL;
}

uint32_t vd_fuse_export_stop(vd_fuse_export *export_)
{
    if (export_ == NULL)
        return VD_ERROR_SUCCESS;
    uint32_t status = VD_ERROR_SUCCESS;
    /* EINVAL: not mounted any more (someone unmounted it already). */
    if (export_->mounted && umount2(export_->path, MNT_DETACH) != 0 && errno != EINVAL)
        status = status_for_errno(errno);
    for (size_t i = 0; i < VD_FUSE_EXPORT_WORKERS; i++) {
        vd_fuse_worker *worker = &export_->workers[i];
        if (worker->running) {
            pthread_cancel(worker->thread);
            pthread_join(worker->thread, NULL);
        }
    }
    /* Closing the last descriptor ends the connection: whoever still has
     * the file open gets ENOTCONN instead of waiting for a server. */
    for (size_t i = 0; i < VD_FUSE_EXPORT_WORKERS; i++) {
        vd_fuse_worker *worker = &export_->workers[i];
        if (worker->fd >= 0)
            close(worker->fd);
        free(worker->buffers.request);
        free(worker->buffers.data);
    }
    if (export_->created)
        (void)unlink(export_->path);
    vd_fuse_server *server = &export_->server;
    pthread_mutex_destroy(&server->partial_lock);
    pthread_mutex_destroy(&server->init_lock);
    pthread_cond_destroy(&server->init_changed);
    free(export_->path);
    free(export_);
    return status;
}

void vd_fuse_export_abandon(const char *file_path)
{
    if (file_path == NULL)
        return;
    (void)umount2(file_path, MNT_DETACH);
    (void)unlink(file_path);
    char *directory = strdup(file_path);
    char *slash = directory != NULL ? strrchr(directory, '/') : NULL;
    if (slash != NULL && slash != directory) {
        *slash = '\0';
        (void)rmdir(directory);
    }
    free(directory);
}

#else
#include <stddef.h>

#include "host/fuse_export.h"
#include "base/vd_errors.h"

/* No FUSE protocol here (macOS would need macFUSE; README). */
uint32_t vd_fuse_export_start(vd_disk *disk, const char *directory, int read_only,
                              vd_fuse_export **out)
{
    (void)disk;
    (void)directory;
    (void)read_only;
    if (out != NULL)
        *out = NULL;
    return VD_ERROR_NOT_SUPPORTED;
}

const char *vd_fuse_export_file_path(const vd_fuse_export *export_)
{
    (void)export_;
    return NULL;
}

uint32_t vd_fuse_export_stop(vd_fuse_export *export_)
{
    (void)export_;
    return VD_ERROR_SUCCESS;
}

void vd_fuse_export_abandon(const char *file_path)
{
    (void)file_path;
}
#endif
