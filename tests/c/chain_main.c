/* Test harness for chain.c: opens a differencing image and its chain and
 * prints what it found as one JSON object.
 *
 *   chain_main CHILD [--rw-depth N] [--no-parents] [--dump OUT LENGTH]
 *
 * --rw-depth is RWDepth (default 1: the child alone is opened read-write);
 * --no-parents opens the child alone, like OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS;
 * --dump reads LENGTH bytes of virtual disk content through the chain.
 *
 * Built with -DCHAIN_FAKE_PARSERS the harness brings its own tiny image
 * format instead of the VHD/VHDX parsers, so the tests can make any chain
 * (cycles, 256 levels, mismatched identities) with a few lines of text:
 *
 *   FAKEDISK
 *   id=<32 hex digits>            the image's identifier
 *   parent=<32 hex digits>        present: a differencing image
 *   relative=<path>  volume=<path>  absolute=<path>   stored locations
 *   size=<bytes>                  virtual size
 *   own=<offset>:<length>:<byte>  content this image holds (repeatable)
 *
 * Built without it, the whole engine is linked. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/chain.h"
#include "disk/driver.h"
#include "json_print.h"
#include "disk/image.h"
#include "base/vd_errors.h"

#ifdef CHAIN_FAKE_PARSERS

#define FAKE_MAGIC "FAKEDISK"
#define FAKE_MAX_FILE 65536u
#define FAKE_MAX_RANGES 16u

typedef struct fake_range {
    uint64_t offset;
    uint64_t length;
    uint8_t value;
} fake_range;

typedef struct fake_state {
    fake_range ranges[FAKE_MAX_RANGES];
    size_t count;
} fake_state;

static int fake_probe(const vd_file *file)
{
    char magic[sizeof FAKE_MAGIC - 1];
    return file->size >= sizeof magic
           && vd_file_read(file, 0, magic, sizeof magic) == VD_ERROR_SUCCESS
           && memcmp(magic, FAKE_MAGIC, sizeof magic) == 0;
}

static int fake_guid(const char *hex, vd_guid *guid)
{
    for (size_t i = 0; i < sizeof guid->bytes; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1)
            return 0;
        guid->bytes[i] = (uint8_t)value;
    }
    return 1;
}

static char *fake_strdup(const char *text)
{
    size_t length = strlen(text);
    char *copy = malloc(length + 1);
    if (copy != NULL)
        memcpy(copy, text, length + 1);
    return copy;
}

static uint32_t fake_read(vd_image *image, vd_image *parent, uint64_t offset, void *buffer,
                          uint64_t length)
{
    const fake_state *state = image->format_state;
    uint8_t *out = buffer;
    if (offset > image->virtual_size || length > image->virtual_size - offset)
        return VD_ERROR_INVALID_PARAMETER;
    for (uint64_t i = 0; i < length; i++) {
        uint64_t position = offset + i;
        int owned = 0;
        for (size_t r = 0; r < state->count; r++) {
            const fake_range *range = &state->ranges[r];
            if (position >= range->offset && position - range->offset < range->length) {
                out[i] = range->value;
                owned = 1;
            }
        }
        if (owned)
            continue;
        out[i] = 0;
        if (parent != NULL) {
            /* Like a real parser: the parent's read op knows its ancestors. */
            uint32_t status = parent->ops->read(parent, NULL, position, &out[i], 1);
            if (status != VD_ERROR_SUCCESS)
                return status;
        }
    }
    return VD_ERROR_SUCCESS;
}

static void fake_release(vd_image *image)
{
    free(image->format_state);
    image->format_state = NULL;
}

static const vd_format_ops fake_ops = { .read = fake_read, .release = fake_release };

static uint32_t fake_open(vd_file *file, vd_image *image)
{
    if (!fake_probe(file) || file->size > FAKE_MAX_FILE)
        return VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK;
    char *text = calloc(1, (size_t)file->size + 1);
    fake_state *state = calloc(1, sizeof *state);
    vd_image result;
    memset(&result, 0, sizeof result);
    uint32_t status = text == NULL || state == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY
                                                    : vd_file_read(file, 0, text, file->size);
    int has_id = 0;
    for (char *line = text; status == VD_ERROR_SUCCESS && line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        unsigned long long a, b;
        unsigned value;
        if (strncmp(line, "id=", 3) == 0) {
            has_id = fake_guid(line + 3, &result.identifier);
        } else if (strncmp(line, "parent=", 7) == 0) {
            result.has_parent = fake_guid(line + 7, &result.parent_identifier);
        } else if (strncmp(line, "relative=", 9) == 0) {
            result.parent.relative_path = fake_strdup(line + 9);
        } else if (strncmp(line, "volume=", 7) == 0) {
            result.parent.volume_path = fake_strdup(line + 7);
        } else if (strncmp(line, "absolute=", 9) == 0) {
            result.parent.absolute_path = fake_strdup(line + 9);
        } else if (strncmp(line, "size=", 5) == 0) {
            result.virtual_size = strtoull(line + 5, NULL, 10);
        } else if (sscanf(line, "own=%llu:%llu:%u", &a, &b, &value) == 3
                   && state->count < FAKE_MAX_RANGES) {
            state->ranges[state->count++] = (fake_range){ a, b, (uint8_t)value };
        }
        line = next;
    }
    free(text);
    if (status == VD_ERROR_SUCCESS && !has_id)
        status = VD_ERROR_FILE_CORRUPT;
    if (status != VD_ERROR_SUCCESS) {
        free(state);
        free(result.parent.relative_path);
        free(result.parent.volume_path);
        free(result.parent.absolute_path);
        return status;
    }
    result.device = VD_DEVICE_VHDX;
    result.subtype = result.has_parent ? VD_SUBTYPE_DIFFERENCING : VD_SUBTYPE_DYNAMIC;
    result.logical_sector_size = 512;
    result.physical_sector_size = 4096;
    result.ops = &fake_ops;
    result.format_state = state;
    result.file = *file;
    *image = result;
    if (file != &image->file) {
        file->fd = -1;
        file->path = NULL;
    }
    return VD_ERROR_SUCCESS;
}

/* The registry, as chain.c asks it for a parent's format: the fake format
 * is the only one. */
static const vd_format_driver fake_driver = {
    .name = "fake",
    .device = VD_DEVICE_VHDX,
    .probe = fake_probe,
    .open = fake_open,
};

const vd_format_driver *vd_format_driver_by_signature(const vd_file *file,
                                                      const vd_format_driver *except,
                                                      int (*accept)(const vd_format_driver *))
{
    (void)except;
    (void)accept;
    return fake_probe(file) ? &fake_driver : NULL;
}

/* The fake format resizes no children: its chains keep the size check. */
const vd_format_driver *vd_format_driver_of(uint32_t device)
{
    return device == fake_driver.device ? &fake_driver : NULL;
}

void vd_image_release(vd_image *image)
{
    if (image->ops != NULL && image->ops->release != NULL)
        image->ops->release(image);
    free(image->parent.relative_path);
    free(image->parent.volume_path);
    free(image->parent.absolute_path);
    memset(&image->parent, 0, sizeof image->parent);
    vd_file_close(&image->file);
}
#endif

/* ---- printing ------------------------------------------------------------- */

static void print_location(const vd_image *child, const vd_chain *chain)
{
    vd_parent_location location;
    uint32_t status = vd_parent_location_get(child, chain, &location);
    printf(", \"location_status\": %" PRIu32 ", \"resolved\": %d, \"locations\": [", status,
           location.resolved);
    for (size_t i = 0; i < location.count; i++) {
        if (i > 0)
            fputs(", ", stdout);
        print_json_string(location.paths[i]);
    }
    putchar(']');
}

static void print_candidates(const vd_image *child)
{
    vd_parent_candidates candidates;
    uint32_t status = vd_parent_candidates_get(child, &candidates);
    printf(", \"candidates_status\": %" PRIu32 ", \"candidates\": [", status);
    for (size_t i = 0; i < candidates.count; i++) {
        if (i > 0)
            fputs(", ", stdout);
        print_json_string(candidates.paths[i]);
    }
    putchar(']');
    vd_parent_candidates_release(&candidates);
}

static uint32_t open_child(const char *path, int writable, vd_image *image)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, writable);
    if (status != VD_ERROR_SUCCESS)
        return status;
    const vd_format_driver *driver = vd_format_driver_by_signature(&file, NULL, NULL);
    status = driver != NULL ? driver->open(&file, image) : VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK;
    if (status != VD_ERROR_SUCCESS)
        vd_file_close(&file);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chain_main CHILD [--rw-depth N] [--no-parents] "
                        "[--dump OUT LENGTH]\n");
        return 2;
    }
    uint32_t rw_depth = 1;
    int no_parents = 0;
    const char *dump_path = NULL;
    uint64_t dump_length = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--rw-depth") == 0 && i + 1 < argc) {
            rw_depth = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-parents") == 0) {
            no_parents = 1;
        } else if (strcmp(argv[i], "--dump") == 0 && i + 2 < argc) {
            dump_path = argv[++i];
            dump_length = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }

    vd_image child;
    uint32_t status = open_child(argv[1], rw_depth > 0, &child);
    if (status != VD_ERROR_SUCCESS) {
        printf("{\"child_status\": %" PRIu32 "}\n", status);
        return 0;
    }
    vd_chain chain = { NULL, NULL, 0 };
    status = no_parents ? VD_ERROR_SUCCESS : vd_chain_open(&child, rw_depth, &chain);
    printf("{\"child_status\": 0, \"status\": %" PRIu32 ", \"count\": %" PRIu32, status,
           chain.count);
    fputs(", \"chain\": [", stdout);
    for (uint32_t i = 0; i < chain.count; i++) {
        printf("%s{\"path\": ", i > 0 ? ", " : "");
        print_json_string(chain.images[i].file.path);
        printf(", \"writable\": %d}", chain.images[i].file.writable);
    }
    putchar(']');
    print_location(&child, &chain);
    print_candidates(&child);
    if (dump_path != NULL && status == VD_ERROR_SUCCESS) {
        uint8_t *buffer = malloc(dump_length ? (size_t)dump_length : 1);
        uint32_t read_status = buffer == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY
                               : vd_chain_read(&child, &chain, 0, buffer, dump_length);
        if (read_status == VD_ERROR_SUCCESS) {
            FILE *out = fopen(dump_path, "wb");
            if (out == NULL || fwrite(buffer, 1, (size_t)dump_length, out) != dump_length)
                read_status = VD_ERROR_WRITE_FAULT;
            if (out != NULL)
                fclose(out);
        }
        free(buffer);
        printf(", \"dump_status\": %" PRIu32, read_status);
    }
    puts("}");
    vd_chain_close(&chain);
    vd_chain_close(&chain);   /* closing twice must be harmless */
    vd_image_release(&child);
    return 0;
}
