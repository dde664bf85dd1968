/* Test harness for the ISO parser: opens an image with vd_iso_open and
 * prints what it found as one JSON object.
 *
 *   iso_probe_main IMAGE [--dump OUT] [--read OFFSET LENGTH]
 *
 * --dump writes the virtual disk content, read through the image's read op
 * in 64 KiB pieces, to OUT; --read makes one read op call and adds its
 * status as "read_status".  A failed open prints the code as "status" (the
 * answer under test) and exits 0. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/image.h"
#include "base/vd_errors.h"

static void release(vd_image *image)
{
    if (image->ops != NULL && image->ops->release != NULL)
        image->ops->release(image);
    vd_file_close(&image->file);
}

static uint32_t dump(vd_image *image, const char *path)
{
    enum { PIECE = 64 * 1024 };
    static uint8_t buffer[PIECE];
    FILE *out = fopen(path, "wb");
    if (out == NULL)
        return VD_ERROR_ACCESS_DENIED;
    uint32_t status = VD_ERROR_SUCCESS;
    for (uint64_t offset = 0; offset < image->virtual_size && status == VD_ERROR_SUCCESS;) {
        uint64_t length = image->virtual_size - offset;
        if (length > PIECE)
            length = PIECE;
        status = image->ops->read(image, NULL, offset, buffer, length);
        if (status == VD_ERROR_SUCCESS && fwrite(buffer, 1, (size_t)length, out) != length)
            status = VD_ERROR_WRITE_FAULT;
        offset += length;
    }
    fclose(out);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: iso_probe_main IMAGE [--dump OUT] [--read OFFSET LENGTH]\n");
        return 2;
    }
    const char *dump_path = NULL;
    int read_requested = 0;
    uint64_t read_offset = 0;
    uint64_t read_length = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
            dump_path = argv[++i];
        } else if (strcmp(argv[i], "--read") == 0 && i + 2 < argc) {
            read_requested = 1;
            read_offset = strtoull(argv[++i], NULL, 0);
            read_length = strtoull(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }

    vd_file file;
    uint32_t status = vd_file_open(&file, argv[1], 0);
    if (status != VD_ERROR_SUCCESS) {
        printf("{\"status\": %" PRIu32 "}\n", status);
        return 0;
    }
    int probe = vd_iso_probe(&file);
    vd_image image;
    status = vd_iso_open(&file, &image);
    if (status != VD_ERROR_SUCCESS) {
        printf("{\"status\": %" PRIu32 ", \"probe\": %d, \"file_still_open\": %s}\n", status,
               probe, file.fd >= 0 ? "true" : "false");
        vd_file_close(&file);
        return 0;
    }

    printf("{\"status\": 0, \"probe\": %d, \"caller_file_moved\": %s", probe,
           file.fd < 0 && file.path == NULL ? "true" : "false");
    printf(", \"device\": %" PRIu32 ", \"subtype\": %" PRIu32, image.device, image.subtype);
    printf(", \"virtual_size\": %" PRIu64 ", \"block_size\": %" PRIu32, image.virtual_size,
           image.block_size);
    printf(", \"logical_sector_size\": %" PRIu32 ", \"physical_sector_size\": %" PRIu32,
           image.logical_sector_size, image.physical_sector_size);
    printf(", \"has_parent\": %d, \"identifier\": \"", image.has_parent);
    for (size_t i = 0; i < sizeof image.identifier.bytes; i++)
        printf("%02x", image.identifier.bytes[i]);
    printf("\", \"virtual_disk_id\": \"");
    for (size_t i = 0; i < sizeof image.virtual_disk_id.bytes; i++)
        printf("%02x", image.virtual_disk_id.bytes[i]);
    printf("\"");
    if (dump_path != NULL)
        printf(", \"dump_status\": %" PRIu32, dump(&image, dump_path));
    if (read_requested) {
        /* Lengths beyond 64 MiB are only asked for to see them refused: they
         * get no buffer, so a read that went ahead would crash the test. */
        uint8_t *buffer = read_length <= (64u << 20) ? malloc(read_length ? read_length : 1)
                                                     : NULL;
        uint32_t read_status = image.ops->read(&image, NULL, read_offset, buffer, read_length);
        free(buffer);
        printf(", \"read_status\": %" PRIu32, read_status);
    }
    printf("}\n");
    release(&image);
    return 0;
}
