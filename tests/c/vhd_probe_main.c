/* Test harness for the VHD parser: opens an image with vd_vhd_open and
 * prints what it found as one JSON object, for tests that compare it with
 * independent tools.
 *
 *   vhd_probe_main IMAGE [--parent PARENT] [--dump OUT] [--layout]
 *   vhd_probe_main --chs SIZE
 *   vhd_probe_main --bench COUNT IMAGE
 *
 * --parent opens PARENT (a VHD) as the parent of a differencing IMAGE;
 * --dump writes the virtual disk content read through the read op to OUT;
 * --layout adds the BAT-derived alignment and fragmentation;
 * --chs prints the spec geometry of a SIZE-byte disk;
 * --bench times COUNT rounds of open + size query + close (ns per round).
 * "probe" is vd_vhd_probe's answer.  A failed open prints the status code
 * and exits 0: the code is the answer under test. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk/image.h"
#include "json_print.h"
#include "base/vd_errors.h"
#include "formats/vhd/vhd_format.h"
#include "image_open.h"

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

static uint32_t dump(vd_image *image, vd_image *parent, const char *path)
{
    FILE *out = fopen(path, "wb");
    if (out == NULL)
        return VD_ERROR_ACCESS_DENIED;
    enum { CHUNK = 1 << 20 };
    uint8_t *buffer = malloc(CHUNK);
    uint32_t status = buffer == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_SUCCESS;
    /* Odd-sized, unaligned steps exercise the partial-sector paths too. */
    uint64_t step = CHUNK - 1536 - 7;
    for (uint64_t offset = 0; status == VD_ERROR_SUCCESS && offset < image->virtual_size;
         offset += step) {
        uint64_t length = image->virtual_size - offset < step ? image->virtual_size - offset
                                                              : step;
        status = image->ops->read(image, parent, offset, buffer, length);
        if (status == VD_ERROR_SUCCESS && fwrite(buffer, 1, length, out) != length)
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
        if (open_image_with(vd_vhd_open, path, 0, &image) != VD_ERROR_SUCCESS)
            return 1;
        total += image.virtual_size;
        vd_image_release(&image);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
    printf("{\"ns_per_open\": %.1f, \"checksum\": %" PRIu64 "}\n", ns / (double)count, total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--chs") == 0) {
        uint16_t cylinders;
        uint8_t heads, sectors;
        vd_vhd_chs(strtoull(argv[2], NULL, 10), &cylinders, &heads, &sectors);
        printf("{\"cylinders\": %u, \"heads\": %u, \"sectors\": %u}\n", cylinders, heads, sectors);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--bench") == 0)
        return bench(argv[3], strtol(argv[2], NULL, 10));

    const char *path = NULL, *parent_path = NULL, *dump_path = NULL;
    int layout = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc)
            parent_path = argv[++i];
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump_path = argv[++i];
        else if (strcmp(argv[i], "--layout") == 0)
            layout = 1;
        else
            path = argv[i];
    }
    if (path == NULL) {
        fprintf(stderr, "usage: %s IMAGE [--parent PARENT] [--dump OUT] [--layout]\n", argv[0]);
        return 2;
    }

    /* The signature check first, on its own descriptor, as a caller
     * detecting the format would run it. */
    int probe = -1;
    vd_file probe_file;
    if (vd_file_open(&probe_file, path, 0) == VD_ERROR_SUCCESS) {
        probe = vd_vhd_probe(&probe_file);
        vd_file_close(&probe_file);
    }

    vd_image image;
    uint32_t status = open_image_with(vd_vhd_open, path, 0, &image);
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
    printf(",\n  \"is_4k_aligned\": %d", image.is_4k_aligned);
    printf(",\n  \"smallest_safe_virtual_size\": %" PRIu64, image.smallest_safe_virtual_size);
    printf(",\n  \"fragmentation_percent\": %" PRIu32, image.fragmentation_percent);
    if (layout) {
        int aligned = 0;
        uint32_t fragmentation = 0;
        uint32_t layout_status = vd_vhd_block_layout(&image, &aligned, &fragmentation);
        printf(",\n  \"layout_status\": %" PRIu32 ",\n  \"layout_4k_aligned\": %d", layout_status,
               aligned);
        printf(",\n  \"layout_fragmentation_percent\": %" PRIu32, fragmentation);
    }

    vd_image parent;
    int have_parent = 0;
    if (parent_path != NULL) {
        uint32_t parent_status = open_image_with(vd_vhd_open, parent_path, 0, &parent);
        printf(",\n  \"parent_status\": %" PRIu32, parent_status);
        have_parent = parent_status == VD_ERROR_SUCCESS;
    }
    if (dump_path != NULL) {
        uint32_t dump_status = dump(&image, have_parent ? &parent : NULL, dump_path);
        printf(",\n  \"read_status\": %" PRIu32, dump_status);
    }
    printf("\n}\n");
    if (have_parent)
        vd_image_release(&parent);
    vd_image_release(&image);
    return 0;
}
