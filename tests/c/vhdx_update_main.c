/* Test harness for the VHDX update ops (src/vdengine/vhdx_update.c): opens
 * an image with vd_vhdx_open, runs the ops named on the command line in
 * order through vd_vhdx_update_ops, and prints one JSON object: each op's
 * status and answer, then what the image reports afterwards.
 *
 *   vhdx_update_main IMAGE [--readonly] [--fault K] OP...
 *
 *   show                       nothing; just the report
 *   identifier GUID            set_identifier
 *   disk-id GUID               set_virtual_disk_id
 *   physical BYTES             set_physical_sector_size
 *   parent LINKAGE REL ABS     set_parent ("-" for an empty path)
 *   meta-set GUID DATA         metadata_set; DATA is hex, "-" for empty, or
 *                              fill:LENGTH:BYTE
 *   meta-get GUID [ROOM]       metadata_get into ROOM bytes (default 1 MiB)
 *   meta-list [ROOM]           metadata_list with room for ROOM items
 *   meta-delete GUID           metadata_remove
 *
 * GUIDs are written xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.  The report holds
 * the image fields, every user item (GUID, length, FNV-1a of the bytes) and
 * an FNV-1a of the whole virtual disk content (this file alone, parent
 * sectors read as zeros).  With --fault K (a build with
 * -DVD_FAULT_INJECTION), the K+1st file change and all after it fail; every
 * build reports "changes", the writes, flushes and size changes the ops
 * made (counted through the same hook, so only with the define). */
#define _XOPEN_SOURCE 700

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/image.h"
#include "image_open.h"
#include "disk/image_update.h"
#include "host/io.h"
#include "json_print.h"
#include "update_harness.h"
#include "base/vd_errors.h"

static long changes_left(void)
{
#ifdef VD_FAULT_INJECTION
    return vd_fault_writes_left;
#else
    return -1;
#endif
}

static void report_items(vd_image *image)
{
    const vd_update_ops *ops = &vd_vhdx_update_ops;
    uint32_t count = 0;
    uint32_t status = ops->metadata_list(image, NULL, &count);
    printf(",\n  \"list_status\": %" PRIu32 ", \"items\": [", status);
    if (status != VD_ERROR_SUCCESS && status != VD_ERROR_INSUFFICIENT_BUFFER) {
        printf("]");
        return;
    }
    vd_guid *items = malloc((count ? count : 1) * sizeof *items);
    uint8_t *buffer = malloc(1u << 20);
    if (items == NULL || buffer == NULL || ops->metadata_list(image, items, &count) != VD_ERROR_SUCCESS)
        count = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size = 1u << 20;
        uint32_t get = ops->metadata_get(image, &items[i], buffer, &size);
        printf("%s\n    {\"id\": ", i ? "," : "");
        print_guid_value(&items[i]);
        printf(", \"status\": %" PRIu32 ", \"length\": %" PRIu32 ", \"hash\": \"%016" PRIx64 "\"}", get, size,
               get == VD_ERROR_SUCCESS ? fnv1a(FNV_START, buffer, size) : 0);
    }
    printf("]");
    free(items);
    free(buffer);
}

static void report_content(vd_image *image)
{
    uint8_t *piece = malloc(1u << 20);
    uint64_t hash = FNV_START;
    uint32_t status = piece == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    for (uint64_t at = 0; at < image->virtual_size && status == VD_ERROR_SUCCESS; at += 1u << 20) {
        uint64_t length = image->virtual_size - at < (1u << 20) ? image->virtual_size - at : (1u << 20);
        status = image->ops->read(image, NULL, at, piece, length);
        if (status == VD_ERROR_SUCCESS)
            hash = fnv1a(hash, piece, (size_t)length);
    }
    printf(",\n  \"content_status\": %" PRIu32 ", \"content\": \"%016" PRIx64 "\"", status, hash);
    free(piece);
}

static void report(vd_image *image)
{
    printf(",\n  \"physical_sector_size\": %" PRIu32 ", \"logical_sector_size\": %" PRIu32,
           image->physical_sector_size, image->logical_sector_size);
    printf(",\n  \"identifier\": ");
    print_guid_value(&image->identifier);
    printf(", \"virtual_disk_id\": ");
    print_guid_value(&image->virtual_disk_id);
    printf(",\n  \"has_parent\": %d, \"parent_identifier\": ", image->has_parent);
    print_guid_value(&image->parent_identifier);
    printf(", \"has_parent_identifier2\": %d", image->has_parent_identifier2);
    printf(",\n  \"parent_relative_path\": ");
    print_json_string(image->parent.relative_path);
    printf(", \"parent_absolute_path\": ");
    print_json_string(image->parent.absolute_path);
    printf(", \"parent_volume_path\": ");
    print_json_string(image->parent.volume_path);
    report_items(image);
    report_content(image);
}

static const char *arg_or_null(const char *text)
{
    return strcmp(text, "-") == 0 ? NULL : text;
}

/* Runs the op at argv[*i], advancing *i past its arguments.  Prints its
 * JSON object.  Returns 0 for a malformed command line. */
static int run_op(vd_image *image, int argc, char **argv, int *i)
{
    const vd_update_ops *ops = &vd_vhdx_update_ops;
    const char *op = argv[*i];
    int left = argc - *i - 1;
    char **arg = argv + *i + 1;
    vd_guid guid;
    uint32_t status;
    printf("{\"op\": ");
    print_json_string(op);
    if (strcmp(op, "show") == 0) {
        status = VD_ERROR_SUCCESS;
    } else if (strcmp(op, "identifier") == 0 && left >= 1 && parse_guid_text(arg[0], &guid)) {
        status = ops->set_identifier(image, &guid);
        *i += 1;
    } else if (strcmp(op, "disk-id") == 0 && left >= 1 && parse_guid_text(arg[0], &guid)) {
        status = ops->set_virtual_disk_id(image, &guid);
        *i += 1;
    } else if (strcmp(op, "physical") == 0 && left >= 1) {
        status = ops->set_physical_sector_size(image, (uint32_t)strtoul(arg[0], NULL, 0));
        *i += 1;
    } else if (strcmp(op, "parent") == 0 && left >= 3 && parse_guid_text(arg[0], &guid)) {
        vd_parent_link link;
        memset(&link, 0, sizeof link);
        link.linkage = guid;
        link.relative_path = arg_or_null(arg[1]);
        link.absolute_path = arg_or_null(arg[2]);
        status = ops->set_parent(image, &link);
        *i += 3;
    } else if (strcmp(op, "meta-set") == 0 && left >= 2 && parse_guid_text(arg[0], &guid)) {
        uint32_t length = 0;
        uint8_t *data = parse_data(arg[1], &length);
        status = data == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : ops->metadata_set(image, &guid, data, length);
        free(data);
        *i += 2;
    } else if (strcmp(op, "meta-get") == 0 && left >= 1 && parse_guid_text(arg[0], &guid)) {
        uint32_t room = 1u << 20;
        if (left >= 2 && arg[1][0] >= '0' && arg[1][0] <= '9') {
            room = (uint32_t)strtoul(arg[1], NULL, 0);
            *i += 1;
        }
        uint8_t *buffer = malloc(room ? room : 1);
        uint32_t size = room;
        status = ops->metadata_get(image, &guid, room ? buffer : NULL, &size);
        printf(", \"size\": %" PRIu32, size);
        if (status == VD_ERROR_SUCCESS) {
            printf(", \"data\": \"");
            for (uint32_t b = 0; b < size && b < 64; b++)
                printf("%02x", buffer[b]);
            printf("\", \"hash\": \"%016" PRIx64 "\"", fnv1a(FNV_START, buffer, size));
        }
        free(buffer);
        *i += 1;
    } else if (strcmp(op, "meta-list") == 0) {
        uint32_t room = 4096;
        if (left >= 1 && arg[0][0] >= '0' && arg[0][0] <= '9') {
            room = (uint32_t)strtoul(arg[0], NULL, 0);
            *i += 1;
        }
        vd_guid *items = malloc((room ? room : 1) * sizeof *items);
        uint32_t count = room;
        status = ops->metadata_list(image, room ? items : NULL, &count);
        printf(", \"count\": %" PRIu32 ", \"items\": [", count);
        for (uint32_t n = 0; status == VD_ERROR_SUCCESS && n < count; n++) {
            printf("%s", n ? ", " : "");
            print_guid_value(&items[n]);
        }
        printf("]");
        free(items);
    } else if (strcmp(op, "meta-delete") == 0 && left >= 1 && parse_guid_text(arg[0], &guid)) {
        status = ops->metadata_remove(image, &guid);
        *i += 1;
    } else {
        printf("}");
        return 0;
    }
    printf(", \"status\": %" PRIu32 "}", status);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s IMAGE [--readonly] [--fault K] OP...\n", argv[0]);
        return 2;
    }
    int read_only;
    long fault;
    int first = parse_update_options(argc, argv, &read_only, &fault);
    int writable = !read_only;
    vd_image image;
    uint32_t status = open_image_with(vd_vhdx_open, argv[1], writable, &image);
    printf("{\n  \"open\": %" PRIu32, status);
    if (status != VD_ERROR_SUCCESS) {
        printf("\n}\n");
        return 0;
    }
#ifdef VD_FAULT_INJECTION
    vd_fault_writes_left = fault >= 0 ? fault : LONG_MAX;
#else
    (void)fault;
#endif
    long before = changes_left();
    printf(",\n  \"ops\": [");
    int ok = 1;
    for (int i = first; i < argc && ok; i++) {
        printf("%s\n    ", i > first ? "," : "");
        ok = run_op(&image, argc, argv, &i);
    }
    printf("]");
    long after = changes_left();
#ifdef VD_FAULT_INJECTION
    vd_fault_writes_left = -1;
#endif
    printf(",\n  \"changes\": %ld", fault < 0 && before >= 0 ? before - after : -1L);
    report(&image);
    printf("\n}\n");
    vd_image_release(&image);
    return ok ? 0 : 2;
}
