/* libFuzzer target for the ISO parser (iso.c) through the host file layer
 * (io.c), the way OpenVirtualDisk reaches it.
 *
 *   fuzz/build.sh            (builds every target against the whole engine)
 *   ./fuzz_iso -max_len=70000 -max_total_time=30 CORPUS_DIR
 *
 * The first input byte chooses the layout, the rest is data: with bit 0 set
 * the data is placed after a zeroed 32 KiB system area, so short inputs
 * reach the volume descriptor; otherwise the data is the whole file.  Every
 * input is written to one memfd, opened by its /proc/self/fd path (so no
 * file in a shared temporary directory can be removed under the run),
 * probed and opened as an ISO; an accepted image is read back through its read op and must equal
 * what was written. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/image.h"
#include "base/vd_errors.h"

#define SYSTEM_AREA 32768u

static char image_path[32];
static int image_fd = -1;

static int write_image(const uint8_t *data, size_t size, size_t prefix)
{
    if (ftruncate(image_fd, 0) != 0)
        return -1;
    if (size > 0 && pwrite(image_fd, data, size, (off_t)prefix) != (ssize_t)size)
        return -1;
    if (size == 0 && prefix > 0 && ftruncate(image_fd, (off_t)prefix) != 0)
        return -1;
    return 0;
}

/* Reads the accepted image back in uneven pieces and compares it with the
 * bytes that were written. */
static void check_content(vd_image *image, const uint8_t *data, size_t size, size_t prefix)
{
    static uint8_t buffer[4096 + 7];
    uint64_t offset = 0;
    while (offset < image->virtual_size) {
        uint64_t length = image->virtual_size - offset;
        if (length > sizeof buffer)
            length = sizeof buffer;
        if (image->ops->read(image, NULL, offset, buffer, length) != VD_ERROR_SUCCESS)
            abort();
        for (uint64_t i = 0; i < length; i++) {
            uint64_t position = offset + i;
            uint8_t expected = position < prefix ? 0 : data[position - prefix];
            if (buffer[i] != expected)
                abort();
        }
        offset += length;
    }
    if (image->ops->read(image, NULL, image->virtual_size, buffer, 1) == VD_ERROR_SUCCESS)
        abort();   /* past the end must be refused */
    (void)size;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t input_size)
{
    if (image_fd < 0) {
        image_fd = memfd_create("fuzz_iso", MFD_CLOEXEC);
        if (image_fd < 0)
            abort();
        snprintf(image_path, sizeof image_path, "/proc/self/fd/%d", image_fd);
    }
    if (input_size == 0)
        return 0;
    size_t prefix = (input[0] & 1) ? SYSTEM_AREA : 0;
    const uint8_t *data = input + 1;
    size_t size = input_size - 1;
    if (write_image(data, size, prefix) != 0)
        abort();

    vd_file file;
    if (vd_file_open(&file, image_path, 0) != VD_ERROR_SUCCESS)
        abort();
    if (file.size != size + prefix)
        abort();
    int probed = vd_iso_probe(&file);
    vd_image image;
    uint32_t status = vd_iso_open(&file, &image);
    if ((status == VD_ERROR_SUCCESS) != (probed != 0))
        abort();   /* probe and open must agree */
    if (status == VD_ERROR_SUCCESS) {
        if (image.virtual_size != size + prefix || image.virtual_size % 2048 != 0)
            abort();
        check_content(&image, data, size, prefix);
        image.ops->release(&image);
        vd_file_close(&image.file);
    } else {
        if (status != VD_ERROR_FILE_CORRUPT)
            abort();
        vd_file_close(&file);
    }
    return 0;
}
