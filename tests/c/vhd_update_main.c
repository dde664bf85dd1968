/* Test harness for the VHD update ops (vhd_update.c): opens an image for
 * writing with vd_vhd_open, applies one change through vd_vhd_update_ops
 * and prints the status and what the image then answers, as one JSON
 * object.  Reopening and reading is left to vhd_probe_main and to tools
 * nobody here wrote.
 *
 *   vhd_update_main [--faults N] set-id IMAGE GUID
 *   vhd_update_main [--faults N] set-disk-id IMAGE GUID
 *   vhd_update_main [--faults N] set-parent IMAGE PARENT [--posix-relative]
 *
 * GUID is in text form.  set-parent opens PARENT read-only and links to
 * its identifier, with the locations create.c would store;
 * --posix-relative hands the relative path '/'-separated, without ".\".
 * --faults N (builds with -DVD_FAULT_INJECTION) lets N writes, flushes and
 * size changes through and fails every later one, as a power loss would. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/image.h"
#include "disk/image_update.h"
#include "json_print.h"
#include "disk/parent_paths.h"
#include "base/vd_errors.h"
#include "image_open.h"

/* Text form -> Windows layout (Data1..3 little-endian). */
static int parse_guid(const char *text, vd_guid *guid)
{
    unsigned int v[11];
    if (sscanf(text, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]) != 11)
        return 0;
    uint8_t *b = guid->bytes;
    b[0] = (uint8_t)v[0];
    b[1] = (uint8_t)(v[0] >> 8);
    b[2] = (uint8_t)(v[0] >> 16);
    b[3] = (uint8_t)(v[0] >> 24);
    b[4] = (uint8_t)v[1];
    b[5] = (uint8_t)(v[1] >> 8);
    b[6] = (uint8_t)v[2];
    b[7] = (uint8_t)(v[2] >> 8);
    for (int i = 0; i < 8; i++)
        b[8 + i] = (uint8_t)v[3 + i];
    return 1;
}

/* A GUID as the hex of its 16 bytes in Windows layout (Python:
 * uuid.UUID(bytes_le=bytes.fromhex(...))). */
static void print_guid_bytes(const char *name, const vd_guid *guid)
{
    printf(",\n  \"%s\": \"", name);
    for (size_t i = 0; i < sizeof guid->bytes; i++)
        printf("%02x", guid->bytes[i]);
    putchar('"');
}

/* ".\a\b" -> "a/b", "..\a" -> "../a": the '/'-separated spelling. */
static void posix_relative(char *relative)
{
    if (relative[0] == '.' && relative[1] == '\\')
        memmove(relative, relative + 2, strlen(relative + 2) + 1);
    for (char *p = relative; *p != '\0'; p++) {
        if (*p == '\\')
            *p = '/';
    }
}

static uint32_t set_parent(vd_image *image, const char *parent_path, int posix)
{
    vd_image parent;
    uint32_t status = open_image_with(vd_vhd_open, parent_path, 0, &parent);
    if (status != VD_ERROR_SUCCESS)
        return status;
    char *absolute = NULL;
    char *relative = NULL;
    status = vd_parent_paths(image->file.path, parent.file.path, &absolute, &relative);
    if (status == VD_ERROR_SUCCESS) {
        if (posix)
            posix_relative(relative);
        vd_parent_link link = { &parent, parent.identifier, absolute, relative };
        status = vd_vhd_update_ops.set_parent(image, &link);
    }
    free(absolute);
    free(relative);
    vd_image_release(&parent);
    return status;
}

int main(int argc, char **argv)
{
    int arg = 1;
    long faults = -1;
    if (arg + 1 < argc && strcmp(argv[arg], "--faults") == 0) {
        faults = strtol(argv[arg + 1], NULL, 10);
        arg += 2;
    }
    if (argc - arg < 3) {
        fprintf(stderr, "usage: %s [--faults N] set-id|set-disk-id|set-parent IMAGE ARG\n",
                argv[0]);
        return 2;
    }
    const char *command = argv[arg];
    const char *path = argv[arg + 1];
    const char *value = argv[arg + 2];
    int posix = arg + 3 < argc && strcmp(argv[arg + 3], "--posix-relative") == 0;

    vd_image image;
    uint32_t status = open_image_with(vd_vhd_open, path, 1, &image);
    if (status != VD_ERROR_SUCCESS) {
        printf("{\n  \"open_status\": %" PRIu32 "\n}\n", status);
        return 0;
    }
#ifdef VD_FAULT_INJECTION
    vd_fault_writes_left = faults;
#else
    if (faults >= 0) {
        fprintf(stderr, "--faults needs a -DVD_FAULT_INJECTION build\n");
        return 2;
    }
#endif
    vd_guid guid;
    if (strcmp(command, "set-parent") == 0) {
        status = set_parent(&image, value, posix);
    } else if (!parse_guid(value, &guid)) {
        fprintf(stderr, "not a GUID: %s\n", value);
        return 2;
    } else if (strcmp(command, "set-id") == 0) {
        status = vd_vhd_update_ops.set_identifier(&image, &guid);
    } else if (strcmp(command, "set-disk-id") == 0) {
        status = vd_vhd_update_ops.set_virtual_disk_id(&image, &guid);
    } else {
        fprintf(stderr, "unknown command %s\n", command);
        return 2;
    }
#ifdef VD_FAULT_INJECTION
    vd_fault_writes_left = -1;
#endif

    printf("{\n  \"status\": %" PRIu32, status);
    print_guid_bytes("identifier", &image.identifier);
    print_guid_bytes("virtual_disk_id", &image.virtual_disk_id);
    print_guid_bytes("parent_identifier", &image.parent_identifier);
    printf(",\n  \"parent_timestamp\": %" PRIu32 ",\n  \"parent_paths\": [",
           image.parent_timestamp);
    print_json_string(image.parent.relative_path);
    fputs(", ", stdout);
    print_json_string(image.parent.absolute_path);
    putchar(']');
    printf(",\n  \"file_size\": %" PRIu64, image.file.size);
    printf(",\n  \"physical_sector_size_op\": %d",
           vd_vhd_update_ops.set_physical_sector_size != NULL);
    printf(",\n  \"metadata_ops\": %d\n}\n",
           vd_vhd_update_ops.metadata_list != NULL || vd_vhd_update_ops.metadata_get != NULL
               || vd_vhd_update_ops.metadata_set != NULL
               || vd_vhd_update_ops.metadata_remove != NULL);
    vd_image_release(&image);
    return 0;
}
