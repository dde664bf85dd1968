/* /proc/self/mountinfo, read line by line.  Each line is
 *   ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS ... - TYPE SOURCE ...
 * and the kernel writes a space, tab, newline or backslash in a path as a
 * three-digit octal escape (\040), which is undone here.  Other systems
 * have no such file: every lookup answers "not found". */
#define _GNU_SOURCE

#include "host/mount_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/sysmacros.h>
#include <sys/types.h>
#endif

/* One mount: its device and its mount point, unescaped in place. */
typedef struct vd_mount {
    unsigned major, minor;
    char *point;
} vd_mount;

static void vd_mount_unescape(char *text)
{
    char *out = text;
    for (const char *in = text; *in != '\0'; out++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7'
            && in[3] >= '0' && in[3] <= '7') {
            *out = (char)((in[1] - '0') << 6 | (in[2] - '0') << 3 | (in[3] - '0'));
            in += 4;
        } else {
            *out = *in++;
        }
    }
    *out = '\0';
}

/* Splits one line; 0 when it is not a mount line. */
static int vd_mount_parse(char *line, vd_mount *mount)
{
    char *fields[5];
    char *rest = line;
    for (int i = 0; i < 5; i++) {
        fields[i] = strsep(&rest, " ");
        if (fields[i] == NULL)
            return 0;
    }
    if (sscanf(fields[2], "%u:%u", &mount->major, &mount->minor) != 2)
        return 0;
    fields[4][strcspn(fields[4], "\n")] = '\0';
    vd_mount_unescape(fields[4]);
    mount->point = fields[4];
    return 1;
}

/* Whether `point` is `path` or one of the directories above it. */
static int vd_mount_holds(const char *point, const char *path)
{
    size_t length = strlen(point);
    if (strcmp(point, "/") == 0)
        return path[0] == '/';
    return strncmp(point, path, length) == 0 && (path[length] == '/' || path[length] == '\0');
}

static int vd_copy(const char *text, char *out, size_t size)
{
    size_t length = strlen(text);
    if (length + 1 > size)
        return 0;
    memcpy(out, text, length + 1);
    return 1;
}

int vd_mount_point_of(const char *path, char *out, size_t size)
{
    FILE *table = fopen("/proc/self/mountinfo", "re");
    if (table == NULL || path == NULL || path[0] != '/') {
        if (table != NULL)
            fclose(table);
        return 0;
    }
    char *line = NULL;
    size_t capacity = 0;
    size_t best = 0;
    int found = 0;
    while (getline(&line, &capacity, table) > 0) {
        vd_mount mount;
        if (!vd_mount_parse(line, &mount) || !vd_mount_holds(mount.point, path))
            continue;
        /* ">=": a later mount on the same point hides the earlier one. */
        size_t length = strlen(mount.point);
        if (length >= best && vd_copy(mount.point, out, size)) {
            best = length;
            found = 1;
        }
    }
    free(line);
    fclose(table);
    return found;
}

int vd_mount_point_of_device(uint64_t device, char *out, size_t size)
{
#ifdef __linux__
    FILE *table = fopen("/proc/self/mountinfo", "re");
    if (table == NULL)
        return 0;
    char *line = NULL;
    size_t capacity = 0;
    int found = 0;
    while (!found && getline(&line, &capacity, table) > 0) {
        vd_mount mount;
        if (vd_mount_parse(line, &mount) && mount.major == major((dev_t)device)
            && mount.minor == minor((dev_t)device))
            found = vd_copy(mount.point, out, size);
    }
    free(line);
    fclose(table);
    return found;
#else
    (void)device, (void)out, (void)size;
    return 0;
#endif
}
