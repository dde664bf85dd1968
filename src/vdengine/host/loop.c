/* Loop devices through LOOP_CONFIGURE (Linux 5.8): one ioctl binds the
 * file, offset, size limit, block size and flags, so a device is never
 * seen half set up. */
#define _GNU_SOURCE

#include "host/loop.h"

#include <stdio.h>
#include <string.h>

#include "base/vd_errors.h"

#ifdef __linux__

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include "host/io.h"

/* CAP_SYS_ADMIN is bit 21 of the effective set (linux/capability.h). */
#define VD_CAP_SYS_ADMIN 21

int vd_loop_privileged(void)
{
    FILE *status = fopen("/proc/self/status", "re");
    if (status == NULL)
        return geteuid() == 0;
    char line[256];
    unsigned long long effective = 0;
    int found = 0;
    while (fgets(line, sizeof line, status) != NULL) {
        if (sscanf(line, "CapEff: %llx", &effective) == 1) {
            found = 1;
            break;
        }
    }
    fclose(status);
    return found ? (int)((effective >> VD_CAP_SYS_ADMIN) & 1u) : geteuid() == 0;
}

static uint32_t vd_loop_error(int error_number)
{
    if (error_number == EPERM || error_number == EACCES)
        return VD_ERROR_PRIVILEGE_NOT_HELD;
    if (error_number == ENOENT || error_number == ENODEV || error_number == ENXIO)
        return VD_ERROR_NOT_SUPPORTED;
    return vd_error_from_errno(error_number);
}

/* Tries one free device; EBUSY when another program took it first. */
static int vd_loop_configure(int control, const vd_loop_request *request, int backing,
                             int *number, int *device_fd)
{
    int free_number = ioctl(control, LOOP_CTL_GET_FREE);
    if (free_number < 0)
        return errno;
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", free_number);
    int fd = open(device, (request->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (uint32_t)backing;
    config.block_size = request->block_size;
    config.info.lo_offset = request->offset;
    config.info.lo_sizelimit = request->size_limit;
    config.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_PARTSCAN
                           | (request->autoclear ? LO_FLAGS_AUTOCLEAR : 0)
                           | (request->read_only ? LO_FLAGS_READ_ONLY : 0);
    if (request->name != NULL)
        snprintf((char *)config.info.lo_file_name, sizeof config.info.lo_file_name, "%s",
                 request->name);
    if (ioctl(fd, LOOP_CONFIGURE, &config) != 0) {
        int error_number = errno;
        close(fd);
        return error_number;
    }
    *number = free_number;
    *device_fd = fd;
    return 0;
}

uint32_t vd_loop_attach(const vd_loop_request *request, int *number, int *device_fd)
{
    if (!vd_loop_privileged())
        return VD_ERROR_PRIVILEGE_NOT_HELD;
    int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0)
        return vd_loop_error(errno);
    int backing = open(request->backing_path, (request->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (backing < 0) {
        int error_number = errno;
        close(control);
        return vd_error_from_errno(error_number);
    }
    int error_number = EBUSY;
    /* Another program may take the free device between the two ioctls. */
    for (int attempt = 0; attempt < 64 && error_number == EBUSY; attempt++)
        error_number = vd_loop_configure(control, request, backing, number, device_fd);
    /* The loop holds its own reference to the file. */
    close(backing);
    close(control);
    return error_number == 0 ? VD_ERROR_SUCCESS : vd_loop_error(error_number);
}

uint32_t vd_loop_detach(int number)
{
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", number);
    /* An exclusive open fails while a file system is mounted on the
     * device: the in-use check Windows makes before it detaches. */
    int fd = open(device, O_RDONLY | O_EXCL | O_CLOEXEC);
    if (fd < 0)
        return errno == EBUSY ? VD_ERROR_SHARING_VIOLATION : vd_loop_error(errno);
    /* What the device holds reaches the image before it lets go of it. */
    (void)fsync(fd);
    int status = ioctl(fd, LOOP_CLR_FD, 0);
    int error_number = errno;
    close(fd);
    if (status != 0)
        return error_number == ENXIO ? VD_ERROR_NOT_READY : vd_loop_error(error_number);
    return VD_ERROR_SUCCESS;
}

int vd_loop_backing(int number, char *backing, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/sys/block/loop%d/loop/backing_file", number);
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return 0;
    int bound = fgets(backing, (int)size, file) != NULL;
    fclose(file);
    if (bound)
        backing[strcspn(backing, "\n")] = '\0';
    return bound;
}

int vd_loop_find(const char *path)
{
    DIR *block = opendir("/sys/block");
    if (block == NULL)
        return -1;
    int found = -1;
    struct dirent *entry;
    char backing[4096];
    while (found < 0 && (entry = readdir(block)) != NULL) {
        int number;
        char tail;
        if (sscanf(entry->d_name, "loop%d%c", &number, &tail) != 1)
            continue;
        if (vd_loop_backing(number, backing, sizeof backing) && strcmp(backing, path) == 0)
            found = number;
    }
    closedir(block);
    return found;
}

int vd_loop_bound_to(const char *path, int *numbers, int capacity)
{
    DIR *block = opendir("/sys/block");
    if (block == NULL)
        return 0;
    int count = 0;
    struct dirent *entry;
    char backing[4096];
    while (count < capacity && (entry = readdir(block)) != NULL) {
        int number;
        char tail;
        if (sscanf(entry->d_name, "loop%d%c", &number, &tail) != 1)
            continue;
        if (vd_loop_backing(number, backing, sizeof backing) && strcmp(backing, path) == 0)
            numbers[count++] = number;
    }
    closedir(block);
    return count;
}

int vd_loop_number_of(uint64_t device)
{
    /* sysfs names the block device of each major:minor; the minor alone
     * is not N when loop devices are made with partitions (max_part). */
    char path[64];
    char target[256];
    snprintf(path, sizeof path, "/sys/dev/block/%u:%u", major((dev_t)device),
             minor((dev_t)device));
    ssize_t length = readlink(path, target, sizeof target - 1);
    if (length <= 0)
        return -1;
    target[length] = '\0';
    const char *name = strrchr(target, '/');
    name = name != NULL ? name + 1 : target;
    int number;
    char tail;
    if (sscanf(name, "loop%d%c", &number, &tail) != 1 || number < 0)
        return -1;
    return number;
}

#else

int vd_loop_privileged(void)
{
    return 0;
}

uint32_t vd_loop_attach(const vd_loop_request *request, int *number, int *device_fd)
{
    (void)request, (void)number, (void)device_fd;
    return VD_ERROR_NOT_SUPPORTED;
}

uint32_t vd_loop_detach(int number)
{
    (void)number;
    return VD_ERROR_NOT_SUPPORTED;
}

int vd_loop_find(const char *path)
{
    (void)path;
    return -1;
}

int vd_loop_backing(int number, char *backing, size_t size)
{
    (void)number, (void)backing, (void)size;
    return 0;
}

int vd_loop_number_of(uint64_t device)
{
    (void)device;
    return -1;
}

int vd_loop_bound_to(const char *path, int *numbers, int capacity)
{
    (void)path, (void)numbers, (void)capacity;
    return 0;
}

#endif
