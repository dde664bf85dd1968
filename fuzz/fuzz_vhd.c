/* libFuzzer target for the VHD parser (vhd.c): open, read, layout, release.
 *
 *   fuzz/build.sh            (builds every target against the whole engine)
 *   ./fuzz_vhd -max_len=65536 -max_total_time=60 CORPUS_DIR
 *
 * Each input is the whole image file, held in a memfd.  Beyond memory
 * safety the target checks the parser's promises: a failed open returns
 * one of the codes vhd.c documents, an accepted image has a sane size and
 * was recognised by the probe, reads inside the disk succeed or report a
 * corrupt BAT, and reads outside it are refused.  A differencing image is
 * read with itself as its parent, which exercises the parent path without
 * a second file.  Each input runs twice: as given, and with the checksums
 * of both footers and of the dynamic header made right, so mutations get
 * past the checksum checks to the fields behind them (checksums.h, shared
 * with fuzz_update.c). */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/image.h"
#include "base/vd_errors.h"
#include "formats/vhd/vhd_format.h"

#include "checksums.h"

static int memory_fd = -1;

static int is_documented_open_error(uint32_t status)
{
    switch (status) {
    case VD_ERROR_VHD_INVALID_FILE_SIZE:
    case VD_ERROR_VHD_DRIVE_FOOTER_MISSING:
    case VD_ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH:
    case VD_ERROR_VHD_DRIVE_FOOTER_CORRUPT:
    case VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION:
    case VD_ERROR_VHD_FORMAT_UNKNOWN:
    case VD_ERROR_VHD_INVALID_SIZE:
    case VD_ERROR_VHD_SPARSE_HEADER_CORRUPT:
    case VD_ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH:
    case VD_ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION:
    case VD_ERROR_VHD_INVALID_BLOCK_SIZE:
    case VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT:
    case VD_ERROR_NOT_ENOUGH_MEMORY:
        return 1;
    default:
        return 0;
    }
}

static void check_read(vd_image *image, uint64_t offset, uint64_t length)
{
    static uint8_t buffer[8192];
    if (length > sizeof buffer)
        length = sizeof buffer;
    vd_image *parent = image->has_parent ? image : NULL;
    int inside = offset <= image->virtual_size && length <= image->virtual_size - offset;
    uint32_t status = image->ops->read(image, parent, offset, buffer, length);
    if (!inside) {
        if (status != VD_ERROR_INVALID_PARAMETER)
            abort();
        return;
    }
    if (status != VD_ERROR_SUCCESS && status != VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT)
        abort();
}

static void exercise(vd_image *image, const uint8_t *input, size_t size)
{
    uint64_t disk = image->virtual_size;
    if (disk == 0 || disk % VD_VHD_SECTOR_SIZE != 0 || disk > VD_VHD_MAX_SIZE)
        abort();
    check_read(image, 0, 512);
    check_read(image, disk - 512, 512);
    check_read(image, disk - 100, 100);
    check_read(image, disk, 1);                  /* past the end */
    check_read(image, disk - 511, 1024);         /* straddles the end */
    if (image->block_size != 0 && disk > image->block_size) {
        /* Across a block boundary, unaligned on both sides. */
        check_read(image, image->block_size - 700, 1400);
    }
    if (size >= 16) {
        /* An offset and length the input chooses, inside the disk. */
        uint64_t offset, length;
        memcpy(&offset, input + size - 16, 8);
        memcpy(&length, input + size - 8, 8);
        offset %= disk;
        length = length % 8192 % (disk - offset + 1);
        check_read(image, offset, length);
    }
    int aligned;
    uint32_t fragmentation;
    uint32_t status = vd_vhd_block_layout(image, &aligned, &fragmentation);
    if (status == VD_ERROR_SUCCESS && fragmentation > 100)
        abort();
}

static void run_one(const uint8_t *input, size_t size)
{
    if (ftruncate(memory_fd, 0) != 0)
        abort();
    if (size > 0 && pwrite(memory_fd, input, size, 0) != (ssize_t)size)
        abort();

    vd_file file = { .fd = dup(memory_fd), .writable = 0, .size = size,
                     .path = strdup("/fuzz/input.vhd") };
    if (file.fd < 0 || file.path == NULL)
        abort();
    int probed = vd_vhd_probe(&file);
    vd_image image;
    uint32_t status = vd_vhd_open(&file, &image);
    if (status != VD_ERROR_SUCCESS) {
        if (!is_documented_open_error(status))
            abort();
        vd_file_close(&file);
        return;
    }
    if (!probed || image.device != VD_DEVICE_VHD || file.path != NULL)
        abort();   /* accepted without a cookie, or the file was not moved */
    exercise(&image, input, size);
    vd_image_release(&image);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (memory_fd < 0) {
        memory_fd = memfd_create("fuzz-vhd", MFD_CLOEXEC);
        if (memory_fd < 0)
            abort();
    }
    run_one(input, size);

    uint8_t *repaired = malloc(size > 0 ? size : 1);
    if (repaired == NULL)
        abort();
    if (size > 0)
        memcpy(repaired, input, size);
    repair_vhd_checksums(repaired, size);
    run_one(repaired, size);
    free(repaired);
    return 0;
}
