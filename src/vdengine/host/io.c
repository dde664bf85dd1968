/* Host files behind images: open with Windows sharing rules, size, positioned
 * reads and writes, and the errno -> Win32 translation.
 *
 * Opening is on the hot path of OpenVirtualDisk, so the success path costs
 * open + statx + fcntl (+ getcwd for a relative path) and nothing else; the
 * extra work needed to tell FILE_NOT_FOUND from PATH_NOT_FOUND happens only
 * after a failure. */
#define _GNU_SOURCE

#include "host/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/vd_errors.h"
#include "host/lock_holder.h"

/* Largest single pread/pwrite: Linux transfers at most 0x7ffff000 bytes per
 * call anyway, and a bound below SSIZE_MAX keeps the result representable. */
#define VD_IO_CHUNK ((size_t)1 << 30)

uint32_t vd_error_from_errno(int error_number)
{
    switch (error_number) {
    case 0:
        return VD_ERROR_SUCCESS;
    case ENOENT:
        return VD_ERROR_FILE_NOT_FOUND;
    case ENOTDIR:
        /* A path component that is a file, not a directory: Windows fails
         * the lookup of the remaining components the same way. */
        return VD_ERROR_PATH_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
    case EISDIR:   /* Windows answers ACCESS_DENIED when a directory is opened as a file */
        return VD_ERROR_ACCESS_DENIED;
    case EMFILE:
    case ENFILE:
        return VD_ERROR_TOO_MANY_OPEN_FILES;
    case ENOMEM:
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    case ENAMETOOLONG:
        return VD_ERROR_FILENAME_EXCED_RANGE;
    case ELOOP:
        /* Too many symbolic links: the name cannot be resolved to a file. */
        return VD_ERROR_CANT_RESOLVE_FILENAME;
    case ENOSPC:
        return VD_ERROR_DISK_FULL;
#ifdef EDQUOT
    case EDQUOT:
        return VD_ERROR_DISK_QUOTA_EXCEEDED;
#endif
    case EEXIST:
        return VD_ERROR_FILE_EXISTS;
    case EIO:
        return VD_ERROR_IO_DEVICE;
    case EAGAIN:
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ETXTBSY:  /* the file is an executable being run: in use */
        return VD_ERROR_SHARING_VIOLATION;
    case EBADF:
        return VD_ERROR_INVALID_HANDLE;
    case EINVAL:
        return VD_ERROR_INVALID_PARAMETER;
    case EFAULT:
        return VD_ERROR_NOACCESS;
    case EFBIG:
    case EOVERFLOW:
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    case ENODEV:
    case ENXIO:
        return VD_ERROR_NOT_READY;
    case ENOSYS:
        return VD_ERROR_CALL_NOT_IMPLEMENTED;
#ifdef ENOTSUP
    case ENOTSUP:
#endif
#if defined(EOPNOTSUPP) && (!defined(ENOTSUP) || EOPNOTSUPP != ENOTSUP)
    case EOPNOTSUPP:
#endif
        return VD_ERROR_NOT_SUPPORTED;
#ifdef ECANCELED
    case ECANCELED:
        return VD_ERROR_OPERATION_ABORTED;
#endif
    default:
        /* Anything else is a host failure Windows has no closer word for. */
        return VD_ERROR_GEN_FAILURE;
    }
}

/* ENOENT means FILE_NOT_FOUND on Windows only when the directory exists;
 * a missing directory on the way is PATH_NOT_FOUND.  Runs on failure only. */
static uint32_t vd_missing_file_error(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (path[0] == '\0')
        return VD_ERROR_PATH_NOT_FOUND;   /* CreateFile("") says so too */
    if (slash == NULL || slash == path)
        return VD_ERROR_FILE_NOT_FOUND;   /* the directory is the cwd or "/" */

    size_t length = (size_t)(slash - path);
    char *parent = malloc(length + 1);
    if (parent == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(parent, path, length);
    parent[length] = '\0';

    struct stat info;
    int parent_is_directory = stat(parent, &info) == 0 && S_ISDIR(info.st_mode);
    free(parent);
    return parent_is_directory ? VD_ERROR_FILE_NOT_FOUND : VD_ERROR_PATH_NOT_FOUND;
}

/* A host file compressed or encrypted by its file system after the image was
 * made is refused with the codes Windows gives for NTFS compression and EFS.
 * Bits count only where the file system says it reports them (`known`).
 * Inline: builds that cannot see such attributes leave it unused. */
static inline uint32_t vd_error_from_host_attributes(uint64_t attributes, uint64_t known,
                                              uint64_t compressed_bit, uint64_t encrypted_bit)
{
    uint64_t reported = attributes & known;
    if (reported & compressed_bit)
        return VD_ERROR_UNSUPPORTED_COMPRESSION;
    if (reported & encrypted_bit)
        return VD_ERROR_FILE_ENCRYPTED;
    return VD_ERROR_SUCCESS;
}

/* Size and kind of the open file.  Anything but a regular file is refused
 * with ACCESS_DENIED, which is what Windows answers for a directory. */
static uint32_t vd_file_inspect(vd_file *file)
{
#if defined(__linux__) && defined(STATX_TYPE) && defined(AT_EMPTY_PATH)
    struct statx extended;
    if (statx(file->fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &extended) == 0) {
        if ((extended.stx_mask & (STATX_TYPE | STATX_SIZE)) != (STATX_TYPE | STATX_SIZE))
            return VD_ERROR_GEN_FAILURE;
        if (!S_ISREG(extended.stx_mode))
            return VD_ERROR_ACCESS_DENIED;
        uint32_t status = vd_error_from_host_attributes(
            extended.stx_attributes, extended.stx_attributes_mask,
            STATX_ATTR_COMPRESSED, STATX_ATTR_ENCRYPTED);
        if (status != VD_ERROR_SUCCESS)
            return status;
        file->size = extended.stx_size;
        return VD_ERROR_SUCCESS;
    }
    /* Kernels before 4.11 and some sandboxes lack statx: fall through. */
    if (errno != ENOSYS && errno != EPERM)
        return vd_error_from_errno(errno);
#endif
    struct stat info;
    if (fstat(file->fd, &info) != 0)
        return vd_error_from_errno(errno);
    if (!S_ISREG(info.st_mode))
        return VD_ERROR_ACCESS_DENIED;
#if defined(UF_COMPRESSED)
    /* macOS (and the BSDs that have the flag): a transparently compressed
     * file; st_flags carries no encryption bit. */
    uint32_t status = vd_error_from_host_attributes(info.st_flags, UF_COMPRESSED,
                                                    UF_COMPRESSED, 0);
    if (status != VD_ERROR_SUCCESS)
        return status;
#endif
    if (info.st_size < 0)
        return VD_ERROR_GEN_FAILURE;
    file->size = (uint64_t)info.st_size;
    return VD_ERROR_SUCCESS;
}

/* Windows sharing: a writer excludes every other opener, readers share.
 * The lock belongs to the open file description, so it holds against other
 * processes and against a second open in this process alike, and it goes
 * away with the descriptor. */
static uint32_t vd_file_lock(const vd_file *file)
{
#if defined(F_OFD_SETLK)
    struct flock range;
    memset(&range, 0, sizeof range);
    range.l_type = file->writable ? F_WRLCK : F_RDLCK;
    range.l_whence = SEEK_SET;
    range.l_start = 0;
    range.l_len = 0;   /* the whole file, however far it grows */
    if (fcntl(file->fd, F_OFD_SETLK, &range) == 0)
        return VD_ERROR_SUCCESS;
    if (errno == EAGAIN || errno == EACCES)
        return VD_ERROR_SHARING_VIOLATION;
    if (errno != EINVAL)
        return vd_error_from_errno(errno);
    /* EINVAL: a kernel without OFD locks; flock gives the same semantics. */
#endif
    int operation = (file->writable ? LOCK_EX : LOCK_SH) | LOCK_NB;
    int result;
    do {
        result = flock(file->fd, operation);
    } while (result != 0 && errno == EINTR);
    if (result == 0)
        return VD_ERROR_SUCCESS;
    if (errno == EWOULDBLOCK || errno == EAGAIN)
        return VD_ERROR_SHARING_VIOLATION;
    if (errno == ENOTSUP || errno == EOPNOTSUPP || errno == ENOLCK)
        return VD_ERROR_SUCCESS;   /* file systems without locks: open unshared */
    return vd_error_from_errno(errno);
}

/* An absolute spelling of `path` without resolving links: a differencing
 * parent is found relative to the directory the child was named in. */
static uint32_t vd_file_absolute_path(const char *path, char **out)
{
    size_t length = strlen(path);
    if (path[0] == '/') {
        *out = malloc(length + 1);
        if (*out == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        memcpy(*out, path, length + 1);
        return VD_ERROR_SUCCESS;
    }

    char directory[PATH_MAX];
    if (getcwd(directory, sizeof directory) == NULL)
        return errno == ERANGE ? VD_ERROR_FILENAME_EXCED_RANGE : vd_error_from_errno(errno);
    size_t directory_length = strlen(directory);
    int needs_separator = directory_length > 0 && directory[directory_length - 1] != '/';
    *out = malloc(directory_length + (size_t)needs_separator + length + 1);
    if (*out == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    memcpy(*out, directory, directory_length);
    if (needs_separator)
        (*out)[directory_length] = '/';
    memcpy(*out + directory_length + needs_separator, path, length + 1);
    return VD_ERROR_SUCCESS;
}

/* Makes the open descriptor `fd` of `path` the file's: checks what it is,
 * takes the sharing lock (unless `lock` is 0) and records the absolute
 * path.  On failure the descriptor is closed. */
static uint32_t vd_file_take(vd_file *file, int fd, const char *path, int lock)
{
    file->fd = fd;
    uint32_t status = vd_file_inspect(file);
    if (status == VD_ERROR_SUCCESS && lock) {
        status = vd_file_lock(file);
        if (status == VD_ERROR_SHARING_VIOLATION)
            vd_lock_holder_describe(fd, file->writable);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_absolute_path(path, &file->path);
    if (status != VD_ERROR_SUCCESS) {
        close(fd);
        file->fd = -1;
        file->size = 0;
        return status;
    }
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_file_open_locking(vd_file *file, const char *path, int writable, int lock)
{
    if (file == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    file->fd = -1;
    file->writable = writable != 0;
    file->size = 0;
    file->path = NULL;
    file->skip_sync = 0;
    if (path == NULL)
        return VD_ERROR_INVALID_PARAMETER;

    /* O_NONBLOCK keeps a FIFO from blocking the open; it is refused right
     * after, and regular files ignore the flag. */
    int flags = (file->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd;
    do {
        fd = open(path, flags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT)
            return vd_missing_file_error(path);
        return vd_error_from_errno(errno);
    }
    return vd_file_take(file, fd, path, lock);
}

uint32_t vd_file_open(vd_file *file, const char *path, int writable)
{
    return vd_file_open_locking(file, path, writable, 1);
}

uint32_t vd_file_open_unshared_read(vd_file *file, const char *path)
{
    return vd_file_open_locking(file, path, 0, 0);
}

uint32_t vd_file_create(vd_file *file, const char *path)
{
    if (file == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    file->fd = -1;
    file->writable = 1;
    file->size = 0;
    file->path = NULL;
    file->skip_sync = 0;
    if (path == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    int fd;
    do {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT)
            return VD_ERROR_PATH_NOT_FOUND;   /* a directory on the way is missing */
        return vd_error_from_errno(errno);
    }
    uint32_t status = vd_file_take(file, fd, path, 1);
    if (status != VD_ERROR_SUCCESS)
        unlink(path);
    return status;
}

/* Offsets beyond what off_t holds lie past any file's end. */
static int vd_range_fits_off_t(uint64_t offset, size_t length)
{
    const uint64_t limit = (uint64_t)INT64_MAX;
    return offset <= limit && (uint64_t)length <= limit - offset;
}

uint32_t vd_file_read(const vd_file *file, uint64_t offset, void *buffer, size_t length)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!vd_range_fits_off_t(offset, length))
        return VD_ERROR_HANDLE_EOF;
    uint8_t *cursor = buffer;
    while (length > 0) {
        size_t chunk = length < VD_IO_CHUNK ? length : VD_IO_CHUNK;
        ssize_t done = pread(file->fd, cursor, chunk, (off_t)offset);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return vd_error_from_errno(errno);
        }
        if (done == 0)
            return VD_ERROR_HANDLE_EOF;
        cursor += done;
        offset += (uint64_t)done;
        length -= (size_t)done;
    }
    return VD_ERROR_SUCCESS;
}

#ifdef VD_FAULT_INJECTION
long vd_fault_writes_left = -1;

int vd_fault_stops_here(void)
{
    if (vd_fault_writes_left < 0)
        return 0;
    if (vd_fault_writes_left == 0)
        return 1;
    vd_fault_writes_left--;
    return 0;
}
#define VD_FAULT_CHECK()                 \
    do {                                 \
        if (vd_fault_stops_here())       \
            return VD_ERROR_WRITE_FAULT; \
    } while (0)
#else
#define VD_FAULT_CHECK() ((void)0)
#endif

uint32_t vd_file_write(const vd_file *file, uint64_t offset, const void *buffer, size_t length)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!file->writable)
        return VD_ERROR_ACCESS_DENIED;   /* WriteFile on a read-only handle */
    VD_FAULT_CHECK();
    if (!vd_range_fits_off_t(offset, length))
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    const uint8_t *cursor = buffer;
    while (length > 0) {
        size_t chunk = length < VD_IO_CHUNK ? length : VD_IO_CHUNK;
        ssize_t done = pwrite(file->fd, cursor, chunk, (off_t)offset);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return vd_error_from_errno(errno);
        }
        if (done == 0)
            return VD_ERROR_WRITE_FAULT;   /* no progress and no errno to report */
        cursor += done;
        offset += (uint64_t)done;
        length -= (size_t)done;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_file_flush(const vd_file *file)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    VD_FAULT_CHECK();
    if (file->skip_sync)
        return VD_ERROR_SUCCESS;
    while (fsync(file->fd) != 0) {
        if (errno != EINTR)
            return vd_error_from_errno(errno);
    }
    return VD_ERROR_SUCCESS;
}

void vd_file_start_writeback(const vd_file *file)
{
    if (file == NULL || file->fd < 0 || file->skip_sync)
        return;
#ifdef __linux__
    (void)sync_file_range(file->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

void vd_file_pace_writeback(const vd_file *file, uint64_t *unstarted, uint64_t written)
{
    *unstarted += written;
    if (*unstarted >= VD_FILE_WRITEBACK_PACE) {
        vd_file_start_writeback(file);
        *unstarted = 0;
    }
}

uint32_t vd_file_set_size(vd_file *file, uint64_t size)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!file->writable)
        return VD_ERROR_ACCESS_DENIED;
    if (!vd_range_fits_off_t(size, 0))
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    VD_FAULT_CHECK();
    while (ftruncate(file->fd, (off_t)size) != 0) {
        if (errno != EINTR)
            return vd_error_from_errno(errno);
    }
    file->size = size;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_file_write_repeated(const vd_file *file, uint64_t offset, const void *piece, size_t piece_length,
                                uint64_t length)
{
    uint32_t status = VD_ERROR_SUCCESS;
    while (length > 0 && status == VD_ERROR_SUCCESS) {
        size_t bytes = length < piece_length ? (size_t)length : piece_length;
        status = vd_file_write(file, offset, piece, bytes);
        offset += bytes;
        length -= bytes;
    }
    return status;
}

/* Zeros by writing them, for file systems without the fallocate mode. */
static uint32_t vd_file_write_zeros(const vd_file *file, uint64_t offset, uint64_t length)
{
    static const uint8_t zeros[64 * 1024];
    while (length > 0) {
        size_t piece = length < sizeof zeros ? (size_t)length : sizeof zeros;
        ssize_t done = pwrite(file->fd, zeros, piece, (off_t)offset);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return vd_error_from_errno(errno);
        }
        if (done == 0)
            return VD_ERROR_WRITE_FAULT;
        offset += (uint64_t)done;
        length -= (uint64_t)done;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_file_zero_range(const vd_file *file, uint64_t offset, uint64_t length, int release)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!file->writable)
        return VD_ERROR_ACCESS_DENIED;
    if (!vd_range_fits_off_t(offset, length))
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    VD_FAULT_CHECK();
    if (length == 0)
        return VD_ERROR_SUCCESS;
    int mode = FALLOC_FL_KEEP_SIZE | (release ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    while (fallocate(file->fd, mode, (off_t)offset, (off_t)length) != 0) {
        if (errno == EINTR)
            continue;
        /* A file system without the mode (tmpfs has no ZERO_RANGE before
         * Linux 6.x, NFS may have neither) still gets its zeros. */
        if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
            return vd_file_write_zeros(file, offset, length);
        return vd_error_from_errno(errno);
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_file_reserve(const vd_file *file, uint64_t offset, uint64_t length)
{
    if (file == NULL || file->fd < 0)
        return VD_ERROR_INVALID_HANDLE;
    if (!vd_range_fits_off_t(offset, length))
        return VD_ERROR_FILE_SYSTEM_LIMITATION;
    if (length == 0)
        return VD_ERROR_SUCCESS;
    while (fallocate(file->fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            return VD_ERROR_SUCCESS;
        return vd_error_from_errno(errno);
    }
    return VD_ERROR_SUCCESS;
}

void vd_file_close(vd_file *file)
{
    if (file == NULL)
        return;
    /* Only a successful open sets `path`, so a zeroed vd_file (fd 0) is
     * never mistaken for an open one. */
    if (file->path != NULL && file->fd >= 0)
        close(file->fd);   /* also drops the sharing lock */
    free(file->path);
    file->path = NULL;
    file->fd = -1;
    file->size = 0;
}
