/* The holder of a refused sharing lock, named in the open's detail
 * (lock_holder.h).  Elsewhere than on Linux there is no /proc to read and
 * the detail stays unset. */
#define _GNU_SOURCE

#include "host/lock_holder.h"

#if defined(__linux__)

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/detail.h"
#include "host/attach_record.h"

/* The strongest lock /proc/PID/fdinfo/FD shows on its open file. */
enum vd_lock_kind { VD_LOCK_NONE = 0, VD_LOCK_READ = 1, VD_LOCK_WRITE = 2 };

/* A process holding a conflicting lock, and the lock it holds. */
typedef struct vd_holder {
    long pid;
    enum vd_lock_kind kind;
} vd_holder;

/* What a request for `writable` conflicts with: any lock for a writer, a
 * writer's lock for a reader. */
static int vd_lock_conflicts(enum vd_lock_kind kind, int writable)
{
    return kind == VD_LOCK_WRITE || (writable && kind == VD_LOCK_READ);
}

/* The locks held through descriptor `fd` of process `pid`.  Lines with
 * "->" are requests waiting for a lock, not locks held. */
static enum vd_lock_kind vd_fd_lock_kind(long pid, long fd)
{
    char name[96], line[256];
    snprintf(name, sizeof name, "/proc/%ld/fdinfo/%ld", pid, fd);
    FILE *file = fopen(name, "re");
    if (file == NULL)
        return VD_LOCK_NONE;
    enum vd_lock_kind kind = VD_LOCK_NONE;
    while (fgets(line, sizeof line, file) != NULL) {
        if (strncmp(line, "lock:", 5) != 0 || strstr(line, "->") != NULL)
            continue;
        if (strstr(line, " WRITE ") != NULL)
            kind = VD_LOCK_WRITE;
        else if (strstr(line, " READ ") != NULL && kind == VD_LOCK_NONE)
            kind = VD_LOCK_READ;
    }
    fclose(file);
    return kind;
}

/* The number a /proc directory entry names (a pid, a descriptor); -1
 * for any other entry. */
static long vd_proc_number(const char *name)
{
    char *end;
    long number = strtol(name, &end, 10);
    return name[0] >= '0' && name[0] <= '9' && *end == '\0' ? number : -1;
}

/* The strongest lock process `pid` holds on the file (device, inode)
 * through any of its descriptors. */
static enum vd_lock_kind vd_process_lock_kind(long pid, dev_t device, ino_t inode)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%ld/fd", pid);
    DIR *dir = opendir(name);
    if (dir == NULL)
        return VD_LOCK_NONE;     /* gone, or another user's */
    enum vd_lock_kind kind = VD_LOCK_NONE;
    struct dirent *entry;
    while (kind != VD_LOCK_WRITE && (entry = readdir(dir)) != NULL) {
        long fd = vd_proc_number(entry->d_name);
        if (fd < 0)
            continue;
        char link[96];
        struct stat target;
        snprintf(link, sizeof link, "/proc/%ld/fd/%ld", pid, fd);
        if (stat(link, &target) != 0 || target.st_dev != device || target.st_ino != inode)
            continue;
        enum vd_lock_kind found = vd_fd_lock_kind(pid, fd);
        if (found > kind)
            kind = found;
    }
    closedir(dir);
    return kind;
}

/* The name (comm) of process `pid` into `comm`; empty when unknown. */
static void vd_process_name(long pid, char *comm, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%ld/comm", pid);
    comm[0] = '\0';
    FILE *file = fopen(name, "re");
    if (file == NULL)
        return;
    if (fgets(comm, (int)size, file) == NULL)
        comm[0] = '\0';
    fclose(file);
    comm[strcspn(comm, "\n")] = '\0';
}

static int vd_is_attach_server(long pid)
{
    char comm[32];
    vd_process_name(pid, comm, sizeof comm);
    return strcmp(comm, VD_ATTACH_SERVER_NAME) == 0;
}

/* Another process holding a lock the request conflicts with: a
 * permanent export's server if one does, else the first found. */
static int vd_other_holder(dev_t device, ino_t inode, int writable, vd_holder *holder)
{
    DIR *dir = opendir("/proc");
    if (dir == NULL)
        return 0;
    long self = (long)getpid();
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        long pid = vd_proc_number(entry->d_name);
        if (pid <= 0 || pid == self)
            continue;
        enum vd_lock_kind kind = vd_process_lock_kind(pid, device, inode);
        if (!vd_lock_conflicts(kind, writable))
            continue;
        if (vd_is_attach_server(pid)) {
            *holder = (vd_holder){ pid, kind };
            found = 1;
            break;
        }
        if (!found)
            *holder = (vd_holder){ pid, kind };
        found = 1;
    }
    closedir(dir);
    return found;
}

/* What the holder's lock means for the open refused. */
static const char *vd_holder_lock_words(enum vd_lock_kind kind)
{
    return kind == VD_LOCK_WRITE ? "holds the file for writing"
                                 : "has the file open to read, and a writer needs it alone";
}

/* The loop device of the permanent attach of the file (device, inode)
 * that process `server` serves, as its attach record has it; -1 when no
 * live record says so.  The records are read, not pruned: that needs the
 * records' lock, which an open does not take. */
static int vd_served_loop(long server, dev_t device, ino_t inode)
{
    vd_attach_record record;
    if (!vd_attach_record_find(0, (uint64_t)device, (uint64_t)inode, &record)
        || !record.permanent || record.server_pid != server)
        return -1;
    return record.loop_number;
}

static void vd_describe_process(const vd_holder *holder, dev_t device, ino_t inode)
{
    char comm[32];
    vd_process_name(holder->pid, comm, sizeof comm);
    int server = strcmp(comm, VD_ATTACH_SERVER_NAME) == 0;
    int loop = server ? vd_served_loop(holder->pid, device, inode) : -1;
    if (loop >= 0)
        vd_detail_set("process %ld (%s), the server of a permanent attach of the file as "
                      "/dev/loop%d, holds it until the disk is detached", holder->pid, comm, loop);
    else if (server)
        vd_detail_set("process %ld (%s), the server of a permanent attach of the file, holds it "
                      "until the disk is detached", holder->pid, comm);
    else if (comm[0] != '\0')
        vd_detail_set("process %ld (%s) %s", holder->pid, comm,
                      vd_holder_lock_words(holder->kind));
    else
        vd_detail_set("process %ld %s", holder->pid, vd_holder_lock_words(holder->kind));
}

void vd_lock_holder_describe(int fd, int writable)
{
    struct stat file;
    if (fstat(fd, &file) != 0)
        return;
    enum vd_lock_kind own = vd_process_lock_kind((long)getpid(), file.st_dev, file.st_ino);
    if (vd_lock_conflicts(own, writable)) {
        vd_detail_set("another handle of this process %s", vd_holder_lock_words(own));
        return;
    }
    vd_holder holder = { 0, VD_LOCK_NONE };
    if (vd_other_holder(file.st_dev, file.st_ino, writable, &holder))
        vd_describe_process(&holder, file.st_dev, file.st_ino);
}

#else

void vd_lock_holder_describe(int fd, int writable)
{
    (void)fd, (void)writable;
}

#endif
