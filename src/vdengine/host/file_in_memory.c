/* Whether a host file lives in memory (file_in_memory.h). */
#include "host/file_in_memory.h"

#if defined(__linux__)
#include <sys/vfs.h>

/* The f_type values of statfs(2) (linux/magic.h). */
#define VD_TMPFS_MAGIC 0x01021994L
#define VD_RAMFS_MAGIC 0x858458F6L
#endif

int vd_file_in_memory(const vd_file *file)
{
#if defined(__linux__)
    struct statfs info;
    if (file == NULL || fstatfs(file->fd, &info) != 0)
        return 0;
    return info.f_type == VD_TMPFS_MAGIC || info.f_type == VD_RAMFS_MAGIC;
#else
    (void)file;
    return 0;
#endif
}
