/* Attach records in /run/virtdisk/ (attach_record.h).  One small text file
 * per loop device, "loopN", written to a temporary name and renamed, so a
 * reader never sees half a record:
 *
 *     loop 3
 *     permanent 0
 *     read_only 1
 *     pid 4242
 *     device 2049
 *     inode 1311
 *     image /srv/images/disk.vhdx
 *     backing /run/virtdisk/export.Ab12Cd/disk
 *     server 4243
 *
 * The last two only for an export (its file; its server when permanent),
 * and a record without them is a loop straight on the image.
 * The image path is the rest of its line: an image whose path holds a
 * newline is never attached (vd_attach_record_write refuses it). */
#define _GNU_SOURCE

#include "host/attach_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/detail.h"
#include "base/vd_errors.h"
#include "host/fuse_export.h"
#include "host/io.h"
#include "host/loop.h"

const char *vd_attach_run_dir(void)
{
    const char *dir = getenv("VIRTDISK_RUN_DIR");
    return dir != NULL && dir[0] != '\0' ? dir : "/run/virtdisk";
}

static void vd_record_name(char *name, size_t size, int loop_number)
{
    snprintf(name, size, "%s/loop%d", vd_attach_run_dir(), loop_number);
}

int vd_attach_records_lock(uint32_t *status)
{
    const char *dir = vd_attach_run_dir();
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        *status = vd_fail(vd_error_from_errno(errno), "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    char name[VD_ATTACH_RECORD_PATH_MAX];
    snprintf(name, sizeof name, "%s/.lock", dir);
    int lock = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) {
        *status = vd_fail(vd_error_from_errno(errno), "cannot open %s: %s", name, strerror(errno));
        return -1;
    }
    while (flock(lock, LOCK_EX) != 0) {
        if (errno != EINTR) {
            *status = vd_error_from_errno(errno);
            close(lock);
            return -1;
        }
    }
    *status = VD_ERROR_SUCCESS;
    return lock;
}

void vd_attach_records_unlock(int lock)
{
    if (lock >= 0)
        close(lock);   /* closing the only descriptor drops the flock */
}

uint32_t vd_attach_record_write(const vd_attach_record *record)
{
    if (strchr(record->image_path, '\n') != NULL)
        return vd_fail(VD_ERROR_INVALID_NAME, "an image whose path holds a newline cannot be attached");
    char name[VD_ATTACH_RECORD_PATH_MAX], temporary[VD_ATTACH_RECORD_PATH_MAX + 16];
    vd_record_name(name, sizeof name, record->loop_number);
    snprintf(temporary, sizeof temporary, "%s.%ld", name, (long)getpid());
    FILE *file = fopen(temporary, "we");
    if (file == NULL)
        return vd_fail(vd_error_from_errno(errno), "cannot write %s: %s", temporary, strerror(errno));
    fprintf(file, "loop %d\npermanent %d\nread_only %d\npid %ld\ndevice %" PRIu64 "\ninode %" PRIu64
            "\nimage %s\n",
            record->loop_number, record->permanent, record->read_only, record->pid, record->device,
            record->inode, record->image_path);
    if (record->backing_path[0] != '\0')
        fprintf(file, "backing %s\n", record->backing_path);
    if (record->server_pid > 0)
        fprintf(file, "server %ld\n", record->server_pid);
    int failed = fflush(file) != 0 || fsync(fileno(file)) != 0;
    int error_number = errno;
    failed |= fclose(file) != 0;
    if (failed || rename(temporary, name) != 0) {
        error_number = failed ? error_number : errno;
        unlink(temporary);
        return vd_fail(vd_error_from_errno(error_number), "cannot write %s: %s", name,
                       strerror(error_number));
    }
    return VD_ERROR_SUCCESS;
}

void vd_attach_record_remove(int loop_number)
{
    char name[VD_ATTACH_RECORD_PATH_MAX];
    vd_record_name(name, sizeof name, loop_number);
    (void)unlink(name);
}

/* Parses one record file; 0 when it is not a whole record. */
static int vd_record_read(const char *name, vd_attach_record *record)
{
    FILE *file = fopen(name, "re");
    if (file == NULL)
        return 0;
    memset(record, 0, sizeof *record);
    char line[VD_ATTACH_RECORD_PATH_MAX + 16];
    int fields = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "loop %d", &record->loop_number) == 1
            || sscanf(line, "permanent %d", &record->permanent) == 1
            || sscanf(line, "read_only %d", &record->read_only) == 1
            || sscanf(line, "pid %ld", &record->pid) == 1
            || sscanf(line, "device %" SCNu64, &record->device) == 1
            || sscanf(line, "inode %" SCNu64, &record->inode) == 1)
            fields++;
        else if (sscanf(line, "server %ld", &record->server_pid) == 1)
            continue;                         /* optional: exports only */
        else if (strncmp(line, "backing ", 8) == 0) {
            size_t length = strlen(line + 8);
            if (length < sizeof record->backing_path)
                memcpy(record->backing_path, line + 8, length + 1);
        } else if (strncmp(line, "image ", 6) == 0) {
            size_t length = strlen(line + 6);
            if (length >= sizeof record->image_path)
                break;
            memcpy(record->image_path, line + 6, length + 1);
            fields++;
        }
    }
    fclose(file);
    return fields == 7;
}

int vd_attach_server_alive(long pid)
{
    char name[64], comm[32] = "", stat_line[256] = "";
    snprintf(name, sizeof name, "/proc/%ld/comm", pid);
    FILE *file = fopen(name, "re");
    if (file == NULL)
        return 0;
    int read_ok = fgets(comm, sizeof comm, file) != NULL;
    fclose(file);
    comm[strcspn(comm, "\n")] = '\0';
    if (!read_ok || strcmp(comm, VD_ATTACH_SERVER_NAME) != 0)
        return 0;
    /* A server that exited but is not reaped yet (state Z) serves nothing. */
    snprintf(name, sizeof name, "/proc/%ld/stat", pid);
    file = fopen(name, "re");
    if (file == NULL)
        return 0;
    read_ok = fgets(stat_line, sizeof stat_line, file) != NULL;
    fclose(file);
    const char *after_name = strrchr(stat_line, ')');
    return read_ok && after_name != NULL && after_name[1] == ' ' && after_name[2] != 'Z'
           && after_name[2] != 'X';
}

/* The file the record's loop should be bound to. */
static const char *vd_record_backing(const vd_attach_record *record)
{
    return record->backing_path[0] != '\0' ? record->backing_path : record->image_path;
}

/* Whether the record still describes its loop: bound, to the same file,
 * and, for an export with a server, served. */
static int vd_record_live(const vd_attach_record *record)
{
    char backing[VD_ATTACH_RECORD_PATH_MAX];
    if (!vd_loop_backing(record->loop_number, backing, sizeof backing)
        || strcmp(backing, vd_record_backing(record)) != 0)
        return 0;
    if (record->server_pid > 0 && !vd_attach_server_alive(record->server_pid))
        return 0;
    struct stat image;
    /* A file renamed since keeps its loop; one replaced by another of the
     * same name is not the attached image. */
    if (stat(record->image_path, &image) == 0
        && ((uint64_t)image.st_dev != record->device || (uint64_t)image.st_ino != record->inode))
        return 0;
    return 1;
}

/* What a dead export server leaves: a loop bound to its file (unbound
 * here, if nothing mounted holds it) and its FUSE mount, whose connection
 * died with the server (unmounted lazily, then its directory removed). */
static void vd_record_abandon(const vd_attach_record *record)
{
    if (record->backing_path[0] == '\0')
        return;                   /* a loop on the image clears itself */
    char backing[VD_ATTACH_RECORD_PATH_MAX];
    if (vd_loop_backing(record->loop_number, backing, sizeof backing)
        && strcmp(backing, record->backing_path) == 0)
        (void)vd_loop_detach(record->loop_number);
    vd_fuse_export_abandon(record->backing_path);
}

int vd_attach_records_walk(int prune, vd_attach_record_visit visit, void *context)
{
    DIR *dir = opendir(vd_attach_run_dir());
    if (dir == NULL)
        return 0;
    int result = 0;
    struct dirent *entry;
    while (result == 0 && (entry = readdir(dir)) != NULL) {
        int number;
        char tail;
        if (sscanf(entry->d_name, "loop%d%c", &number, &tail) != 1)
            continue;
        char name[VD_ATTACH_RECORD_PATH_MAX];
        vd_record_name(name, sizeof name, number);
        vd_attach_record record;
        if (!vd_record_read(name, &record) || record.loop_number != number)
            continue;
        if (!vd_record_live(&record)) {
            /* Only under the lock: without it the file may be a new
             * record, renamed in since it was read. */
            if (prune) {
                vd_record_abandon(&record);
                (void)unlink(name);
            }
            continue;
        }
        result = visit(&record, context);
    }
    closedir(dir);
    return result;
}

typedef struct vd_record_query {
    uint64_t device;
    uint64_t inode;
    vd_attach_record *found;
} vd_record_query;

static int vd_record_matches(const vd_attach_record *record, void *context)
{
    vd_record_query *query = context;
    if (record->device != query->device || record->inode != query->inode)
        return 0;
    *query->found = *record;
    return 1;
}

int vd_attach_record_find(int prune, uint64_t device, uint64_t inode, vd_attach_record *found)
{
    vd_record_query query = { device, inode, found };
    return vd_attach_records_walk(prune, vd_record_matches, &query);
}
