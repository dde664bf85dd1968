/* Test harness for the VHDX parser: opens an image with vd_vhdx_open and
 * prints what it found as one JSON object, for tests that compare it with
 * independent tools.
 *
 *   vhdx_probe_main IMAGE [--writable] [--parent PARENT]... [--dump OUT]
 *                   [--read OFFSET LENGTH OUT]
 *   vhdx_probe_main --bench COUNT IMAGE
 *   vhdx_probe_main --crc32c FILE
 *
 * --writable opens IMAGE read-write (a dirty log is then replayed into it);
 * --parent opens PARENT as the parent of IMAGE, a second --parent as the
 *   parent of the first, and so on, reading through them as a chain does;
 * --dump writes the whole virtual disk, read through the read op, to OUT;
 * --read writes LENGTH bytes at OFFSET to OUT;
 * --bench times COUNT rounds of open + size query + close (ns per round);
 * --crc32c prints the CRC-32C of a file's bytes.
 * "probe" is vd_vhdx_probe's answer.  A failed open prints the status code
 * and exits 0: the code is the answer under test. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crc32c.h"
#include "disk/image.h"
#include "image_open.h"
#include "json_print.h"
#include "base/vd_errors.h"

#define MAX_PARENTS 8

/* A parent's read op that hands the parser its own parent, the way the
 * engine's chain layer does: parsers read a parent with (parent, NULL). */
typedef struct link {
    vd_format_ops ops;             /* first: image->ops points here */
    const vd_format_ops *inner;
    vd_image *parent;
} link;

static uint32_t link_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                          uint64_t length)
{
    (void)parent;
    const link *self = (const link *)image->ops;
    return self->inner->read(image, self->parent, offset, buffer, length);
}

/* The Windows text form of a GUID kept in Windows layout. */
static void print_guid(const char *name, const vd_guid *guid)
{
    const uint8_t *b = guid->bytes;
    printf(",\n  \"%s\": \"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
           "%02x%02x%02x%02x%02x%02x\"",
           name, b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
           b[12], b[13], b[14], b[15]);
}

static void print_string(const char *name, const char *value)
{
    printf(",\n  \"%s\": ", name);
    print_json_string(value);
}

static uint32_t dump_range(vd_image *image, vd_image *parent, uint64_t offset, uint64_t length,
                           const char *path)
{
    FILE *out = fopen(path, "wb");
    if (out == NULL)
        return VD_ERROR_ACCESS_DENIED;
    enum { CHUNK = 1 << 20 };
    uint8_t *buffer = malloc(CHUNK);
    uint32_t status = buffer == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    /* Odd-sized, unaligned steps cross block and sector boundaries. */
    uint64_t step = CHUNK - 1536 - 7;
    uint64_t end = offset + length;
    for (uint64_t at = offset; status == VD_ERROR_SUCCESS && at < end; at += step) {
        uint64_t count = end - at < step ? end - at : step;
        status = image->ops->read(image, parent, at, buffer, count);
        if (status == VD_ERROR_SUCCESS && fwrite(buffer, 1, count, out) != count)
            status = VD_ERROR_WRITE_FAULT;
    }
    free(buffer);
    if (fclose(out) != 0 && status == VD_ERROR_SUCCESS)
        status = VD_ERROR_WRITE_FAULT;
    return status;
}

static int bench(const char *path, long count)
{
    struct timespec start, end;
    uint64_t total = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < count; i++) {
        vd_image image;
        if (open_image_with(vd_vhdx_open, path, 0, &image) != VD_ERROR_SUCCESS)
            return 1;
        total += image.virtual_size;
        vd_image_release(&image);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
    printf("{\"ns_per_open\": %.1f, \"checksum\": %" PRIu64 "}\n", ns / (double)count, total);
    return 0;
}

static int crc_of_file(const char *path)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL)
        return 1;
    uint8_t buffer[65536];
    uint32_t crc = 0;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, in)) > 0)
        crc = vd_crc32c_extend(crc, buffer, got);
    fclose(in);
    printf("{\"crc32c\": %" PRIu32 "}\n", crc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--bench") == 0)
        return bench(argv[3], strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "--crc32c") == 0)
        return crc_of_file(argv[2]);

    const char *path = NULL, *dump_path = NULL, *read_path = NULL;
    const char *parent_paths[MAX_PARENTS];
    int parent_count = 0, writable = 0;
    uint64_t read_offset = 0, read_length = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc && parent_count < MAX_PARENTS)
            parent_paths[parent_count++] = argv[++i];
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump_path = argv[++i];
        else if (strcmp(argv[i], "--read") == 0 && i + 3 < argc) {
            read_offset = strtoull(argv[++i], NULL, 0);
            read_length = strtoull(argv[++i], NULL, 0);
            read_path = argv[++i];
        } else if (strcmp(argv[i], "--writable") == 0)
            writable = 1;
        else
            path = argv[i];
    }
    if (path == NULL) {
        fprintf(stderr, "usage: %s IMAGE [--writable] [--parent PARENT]... [--dump OUT]\n", argv[0]);
        return 2;
    }

    int probe = -1;
    vd_file probe_file;
    if (vd_file_open(&probe_file, path, 0) == VD_ERROR_SUCCESS) {
        probe = vd_vhdx_probe(&probe_file);
        vd_file_close(&probe_file);
    }

    vd_image image;
    uint32_t status = open_image_with(vd_vhdx_open, path, writable, &image);
    printf("{\n  \"probe\": %d,\n  \"status\": %" PRIu32, probe, status);
    if (status != VD_ERROR_SUCCESS) {
        printf("\n}\n");
        return 0;
    }
    printf(",\n  \"device\": %" PRIu32 ",\n  \"subtype\": %" PRIu32, image.device, image.subtype);
    printf(",\n  \"virtual_size\": %" PRIu64 ",\n  \"block_size\": %" PRIu32, image.virtual_size,
           image.block_size);
    printf(",\n  \"logical_sector_size\": %" PRIu32 ",\n  \"physical_sector_size\": %" PRIu32,
           image.logical_sector_size, image.physical_sector_size);
    print_guid("identifier", &image.identifier);
    print_guid("virtual_disk_id", &image.virtual_disk_id);
    printf(",\n  \"has_parent\": %d", image.has_parent);
    print_guid("parent_identifier", &image.parent_identifier);
    printf(",\n  \"parent_timestamp\": %" PRIu32, image.parent_timestamp);
    print_string("parent_relative_path", image.parent.relative_path);
    print_string("parent_absolute_path", image.parent.absolute_path);
    print_string("parent_volume_path", image.parent.volume_path);
    printf(",\n  \"is_4k_aligned\": %d", image.is_4k_aligned);
    printf(",\n  \"smallest_safe_virtual_size\": %" PRIu64, image.smallest_safe_virtual_size);
    printf(",\n  \"fragmentation_percent\": %" PRIu32, image.fragmentation_percent);

    vd_image parents[MAX_PARENTS];
    link links[MAX_PARENTS];
    int opened = 0;
    for (; opened < parent_count; opened++) {
        uint32_t parent_status = open_image_with(vd_vhdx_open, parent_paths[opened], 0, &parents[opened]);
        printf(",\n  \"parent_status_%d\": %" PRIu32, opened, parent_status);
        if (parent_status != VD_ERROR_SUCCESS)
            break;
    }
    for (int i = 0; i < opened; i++) {
        links[i].inner = parents[i].ops;
        links[i].ops.read = link_read;
        links[i].ops.release = parents[i].ops->release;
        links[i].parent = i + 1 < opened ? &parents[i + 1] : NULL;
        parents[i].ops = &links[i].ops;
    }
    vd_image *first_parent = opened > 0 ? &parents[0] : NULL;
    if (dump_path != NULL) {
        uint32_t dump_status = dump_range(&image, first_parent, 0, image.virtual_size, dump_path);
        printf(",\n  \"read_status\": %" PRIu32, dump_status);
    }
    if (read_path != NULL) {
        uint32_t read_status = dump_range(&image, first_parent, read_offset, read_length, read_path);
        printf(",\n  \"range_status\": %" PRIu32, read_status);
    }
    printf("\n}\n");
    for (int i = 0; i < opened; i++) {
        parents[i].ops = links[i].inner;
        vd_image_release(&parents[i]);
    }
    vd_image_release(&image);
    return 0;
}
