/* Test harness for the VHDX creator: fills a vd_create_spec and calls
 * vd_vhdx_create on a new, empty file, then prints the status and the
 * unique id it used as one JSON object.
 *
 *   vhdx_create_main OUT --type fixed|dynamic|differencing [--size BYTES]
 *                    [--block BYTES] [--logical BYTES] [--physical BYTES]
 *                    [--full] [--parent PATH [--relative REL] [--absolute ABS]]
 *                    [--source PATH]
 *
 * --parent opens PATH (VHD or VHDX, by signature) as the parent; the stored
 *   locations are --relative (none unless given) and --absolute (default:
 *   the parent's real path); the size is the parent's unless --size is given.
 * --source opens PATH (VHD or VHDX) with its chain, as CreateVirtualDisk
 *   hands a source over: reads through its own ops reach its parents.
 * A failed create removes OUT, as create.c does. */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/chain.h"
#include "api/create.h"
#include "disk/image.h"
#include "base/vd_errors.h"

static uint32_t open_any(const char *path, vd_image *image)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, 0);
    if (status != VD_ERROR_SUCCESS)
        return status;
    memset(image, 0, sizeof *image);
    if (vd_vhdx_probe(&file))
        status = vd_vhdx_open(&file, image);
    else if (vd_vhd_probe(&file))
        status = vd_vhd_open(&file, image);
    else
        status = VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK;
    if (status != VD_ERROR_SUCCESS)
        vd_file_close(&file);
    return status;
}

/* A source's read op that supplies its nearest parent, as chain.c does for
 * the parents it links. */
typedef struct source_link {
    vd_format_ops ops;             /* first: image->ops points here */
    const vd_format_ops *inner;
    vd_image *parent;
} source_link;

static uint32_t source_link_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                                 uint64_t length)
{
    (void)parent;
    const source_link *self = (const source_link *)image->ops;
    return self->inner->read(image, self->parent, offset, buffer, length);
}

static void print_guid(const char *name, const vd_guid *guid)
{
    const uint8_t *b = guid->bytes;
    printf(", \"%s\": \"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
           "%02x%02x%02x%02x%02x%02x\"",
           name, b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
           b[12], b[13], b[14], b[15]);
}

static int random_guid(vd_guid *guid)
{
    FILE *random = fopen("/dev/urandom", "rb");
    if (random == NULL)
        return 0;
    size_t got = fread(guid->bytes, 1, sizeof guid->bytes, random);
    fclose(random);
    return got == sizeof guid->bytes;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT --type fixed|dynamic|differencing [options]\n", argv[0]);
        return 2;
    }
    const char *out = argv[1], *parent_path = NULL, *source_path = NULL;
    const char *relative = NULL, *absolute = NULL;
    vd_create_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.device = VD_DEVICE_VHDX;
    spec.logical_sector_size = 512;
    spec.physical_sector_size = 4096;
    int size_given = 0;
    for (int i = 2; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--full") == 0) {
            spec.full_allocation = 1;
            continue;
        }
        if (value == NULL) {
            fprintf(stderr, "missing value for %s\n", argv[i]);
            return 2;
        }
        i++;
        if (strcmp(argv[i - 1], "--type") == 0)
            spec.subtype = strcmp(value, "fixed") == 0     ? VD_SUBTYPE_FIXED
                           : strcmp(value, "dynamic") == 0 ? VD_SUBTYPE_DYNAMIC
                           : strcmp(value, "differencing") == 0 ? VD_SUBTYPE_DIFFERENCING
                                                                : 0;
        else if (strcmp(argv[i - 1], "--size") == 0) {
            spec.virtual_size = strtoull(value, NULL, 0);
            size_given = 1;
        } else if (strcmp(argv[i - 1], "--block") == 0)
            spec.block_size = (uint32_t)strtoul(value, NULL, 0);
        else if (strcmp(argv[i - 1], "--logical") == 0)
            spec.logical_sector_size = (uint32_t)strtoul(value, NULL, 0);
        else if (strcmp(argv[i - 1], "--physical") == 0)
            spec.physical_sector_size = (uint32_t)strtoul(value, NULL, 0);
        else if (strcmp(argv[i - 1], "--parent") == 0)
            parent_path = value;
        else if (strcmp(argv[i - 1], "--relative") == 0)
            relative = value;
        else if (strcmp(argv[i - 1], "--absolute") == 0)
            absolute = value;
        else if (strcmp(argv[i - 1], "--source") == 0)
            source_path = value;
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i - 1]);
            return 2;
        }
    }
    if (!random_guid(&spec.unique_id))
        return 1;

    vd_image parent, source;
    vd_chain source_chain;
    memset(&source_chain, 0, sizeof source_chain);
    source_link link;
    int have_parent = 0, have_source = 0, linked = 0;
    char *parent_real = NULL;
    uint32_t status = VD_ERROR_SUCCESS;
    if (parent_path != NULL) {
        status = open_any(parent_path, &parent);
        have_parent = status == VD_ERROR_SUCCESS;
        if (have_parent) {
            parent_real = realpath(parent_path, NULL);
            spec.parent = &parent;
            spec.parent_relative_path = relative;
            spec.parent_absolute_path = absolute != NULL ? absolute : parent_real;
            if (!size_given)
                spec.virtual_size = parent.virtual_size;
        }
    }
    if (status == VD_ERROR_SUCCESS && source_path != NULL) {
        status = open_any(source_path, &source);
        have_source = status == VD_ERROR_SUCCESS;
        if (have_source && source.has_parent)
            status = vd_chain_open(&source, 0, &source_chain);
        if (status == VD_ERROR_SUCCESS && source_chain.count > 0) {
            link.inner = source.ops;
            link.ops.read = source_link_read;
            link.ops.release = source.ops->release;
            link.ops.block_layout = NULL;
            link.parent = &source_chain.images[0];
            source.ops = &link.ops;
            linked = 1;
        }
        if (have_source) {
            spec.source = &source;
            if (!size_given)
                spec.virtual_size = source.virtual_size;
        }
    }
    if (status != VD_ERROR_SUCCESS) {
        printf("{\"open_status\": %" PRIu32 "}\n", status);
        return 1;
    }

    int fd = open(out, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(out);
        return 1;
    }
    close(fd);
    vd_file file;
    status = vd_file_open(&file, out, 1);
    if (status == VD_ERROR_SUCCESS) {
        status = vd_vhdx_create(&file, &spec);
        vd_file_close(&file);
    }
    if (status != VD_ERROR_SUCCESS)
        unlink(out);
    printf("{\"status\": %" PRIu32, status);
    print_guid("unique_id", &spec.unique_id);
    printf("}\n");

    if (linked)
        source.ops = link.inner;
    vd_chain_close(&source_chain);
    if (have_source)
        vd_image_release(&source);
    if (have_parent)
        vd_image_release(&parent);
    free(parent_real);
    return 0;
}
