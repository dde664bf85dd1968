/* libFuzzer target for the VHDX parser: headers, region tables, metadata,
 * parent locator, log replay (in memory and into the file) and the read
 * paths through the BAT and sector bitmaps.
 *
 *   fuzz/build.sh            (builds every target against the whole engine)
 *
 * An input is a file, held in a memfd, in one of two forms:
 *   - a VHDX file as it is (it starts with "vhdxfile");
 *   - a sparse description (sparse_file.h, shared with fuzz_update.c),
 *     because VHDX structures sit at 1 MiB-aligned offsets and a real file
 *     is mostly zeros the mutator would waste its time on: u64 file size
 *     (LE, reduced modulo 1 TiB), then records of { u32 offset in 512-byte
 *     units, u16 length, length bytes }, written at their offsets;
 *     everything else reads as zeros.  Seeds come from real images by
 *     keeping their non-zero 4 KiB runs.
 * The file is opened read-only and read (with a second read-only open of
 * the same bytes as the parent, so a differencing input also reads through
 * its parent), then opened writable on a private copy, which replays a
 * dirty log into it. */
#define _GNU_SOURCE

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/image.h"
#include "base/vd_errors.h"

#include "sparse_file.h"

/* Inputs are small; so is what the reads below fetch per call. */
#define READ_SIZE (64 * 1024)

/* The file an input describes (sparse_file.h), in a fresh memfd; its size
 * in *file_size. */
static int memfd_with(const uint8_t *data, size_t size, uint64_t *file_size)
{
    int fd = memfd_create("fuzz_vhdx", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (!sparse_fill(fd, data, size, file_size)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A vd_file over an already open descriptor, as vd_file_open would leave it
 * (minus the lock, which a private memfd does not need). */
static int open_image(int fd, uint64_t size, int writable, vd_image *image)
{
    vd_file file = { dup(fd), writable, size, strdup("/fuzz/input.vhdx") };
    if (file.fd < 0 || file.path == NULL) {
        vd_file_close(&file);
        return 0;
    }
    memset(image, 0, sizeof *image);
    if (vd_vhdx_open(&file, image) != VD_ERROR_SUCCESS) {
        vd_file_close(&file);
        return 0;
    }
    return 1;
}

static void read_some(vd_image *image, vd_image *parent, const uint8_t *data, size_t size)
{
    static uint8_t buffer[READ_SIZE];
    uint64_t end = image->virtual_size;
    uint64_t pick = 0;
    for (size_t i = 0; i < 8 && i < size; i++)
        pick = pick << 8 | data[size - 1 - i];
    uint64_t offsets[] = { 0, end / 2, end > 512 ? end - 512 : 0, end ? pick % end : 0,
                           image->block_size ? image->block_size - 100 : 4096 };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        uint64_t offset = offsets[i] < end ? offsets[i] : 0;
        uint64_t length = end - offset < READ_SIZE ? end - offset : READ_SIZE;
        image->ops->read(image, parent, offset, buffer, length);
    }
    /* Out of range: must be refused, not read. */
    image->ops->read(image, parent, end, buffer, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t file_size;
    int fd = memfd_with(data, size, &file_size);
    if (fd < 0)
        return 0;
    vd_image image, parent;
    if (open_image(fd, file_size, 0, &image)) {
        int have_parent = image.has_parent && open_image(fd, file_size, 0, &parent);
        read_some(&image, have_parent ? &parent : NULL, data, size);
        if (have_parent)
            vd_image_release(&parent);
        vd_image_release(&image);
    }
    close(fd);

    fd = memfd_with(data, size, &file_size);
    if (fd < 0)
        return 0;
    if (open_image(fd, file_size, 1, &image)) {
        read_some(&image, NULL, data, size);
        vd_image_release(&image);
    }
    close(fd);
    return 0;
}
