/* Paths a differencing child stores for its parent (see parent_paths.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* strtok_r */
#endif

#include "disk/parent_paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/utf16.h"
#include "base/vd_errors.h"

/* The '/'-separated components of an absolute path, "." and ".." resolved
 * lexically (as Win32 normalises paths).  `components` points into `copy`,
 * a malloc'd copy of `path` the caller frees. */
typedef struct vd_path_parts {
    char *copy;
    char **components;
    size_t count;
} vd_path_parts;

static uint32_t vd_path_split(const char *path, vd_path_parts *parts)
{
    size_t length = strlen(path);
    parts->count = 0;
    parts->copy = malloc(length + 1);
    parts->components = malloc((length / 2 + 1) * sizeof *parts->components);
    if (parts->copy == NULL || parts->components == NULL) {
        free(parts->copy);
        free(parts->components);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    memcpy(parts->copy, path, length + 1);
    char *save = NULL;
    for (char *token = strtok_r(parts->copy, "/", &save); token != NULL;
         token = strtok_r(NULL, "/", &save)) {
        if (strcmp(token, ".") == 0)
            continue;
        if (strcmp(token, "..") == 0) {
            if (parts->count > 0)
                parts->count--;
            continue;
        }
        parts->components[parts->count++] = token;
    }
    return VD_ERROR_SUCCESS;
}

static void vd_path_parts_free(vd_path_parts *parts)
{
    free(parts->copy);
    free(parts->components);
}

/* `parts` joined by `separator`, after `prefix`; NULL when out of memory. */
static char *vd_path_join(const char *prefix, char *const *components, size_t count,
                          char separator)
{
    size_t length = strlen(prefix) + 1;
    for (size_t i = 0; i < count; i++)
        length += strlen(components[i]) + 1;
    char *out = malloc(length);
    if (out == NULL)
        return NULL;
    char *cursor = out;
    size_t prefix_length = strlen(prefix);
    memcpy(cursor, prefix, prefix_length);
    cursor += prefix_length;
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            *cursor++ = separator;
        size_t part = strlen(components[i]);
        memcpy(cursor, components[i], part);
        cursor += part;
    }
    *cursor = '\0';
    return out;
}

char *vd_windows_relative_path(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return NULL;
    int dotted = path[0] == '.' && (path[1] == '/' || path[1] == '\\'
                                    || (path[1] == '.' && (path[2] == '/' || path[2] == '\\')));
    size_t length = strlen(path);
    char *out = malloc(length + 3);
    if (out == NULL)
        return NULL;
    size_t at = 0;
    if (!dotted) {
        out[at++] = '.';
        out[at++] = '\\';
    }
    for (size_t i = 0; i <= length; i++)
        out[at++] = path[i] == '/' ? '\\' : path[i];
    return out;
}

uint32_t vd_parent_paths(const char *child_path, const char *parent_path,
                                char **absolute, char **relative)
{
    *absolute = NULL;
    *relative = NULL;
    vd_path_parts child;
    vd_path_parts parent;
    uint32_t status = vd_path_split(child_path, &child);
    if (status != VD_ERROR_SUCCESS)
        return status;
    status = vd_path_split(parent_path, &parent);
    if (status != VD_ERROR_SUCCESS) {
        vd_path_parts_free(&child);
        return status;
    }
    size_t child_directories = child.count > 0 ? child.count - 1 : 0;
    size_t common = 0;
    while (common < child_directories && common + 1 < parent.count
           && strcmp(child.components[common], parent.components[common]) == 0)
        common++;

    size_t ups = child_directories - common;
    char *prefix = malloc(ups * 3 + 1);
    if (prefix != NULL) {
        for (size_t i = 0; i < ups; i++)
            memcpy(prefix + 3 * i, "../", 3);
        prefix[ups * 3] = '\0';
        char *slashed = vd_path_join(prefix, parent.components + common, parent.count - common, '/');
        *relative = vd_windows_relative_path(slashed);
        free(slashed);
        *absolute = vd_path_join("/", parent.components, parent.count, '/');
        free(prefix);
    }
    if (*relative == NULL || *absolute == NULL) {
        free(*relative);
        free(*absolute);
        *relative = NULL;
        *absolute = NULL;
        status = VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    vd_path_parts_free(&child);
    vd_path_parts_free(&parent);
    return status;
}

uint32_t vd_parent_path_from_api(const uint16_t *wide_path, char **path)
{
    char *given;
    uint32_t status = vd_utf16_path_to_host(wide_path, &given);
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (given[0] == '/') {
        *path = given;
        return VD_ERROR_SUCCESS;
    }
    char *directory = getcwd(NULL, 0);
    size_t length = directory != NULL ? strlen(directory) + strlen(given) + 2 : 0;
    *path = directory != NULL ? malloc(length) : NULL;
    if (*path != NULL)
        snprintf(*path, length, "%s/%s", directory, given);
    free(directory);
    free(given);
    return *path != NULL ? VD_ERROR_SUCCESS : VD_ERROR_NOT_ENOUGH_MEMORY;
}
