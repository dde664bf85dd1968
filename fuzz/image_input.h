/* image_input.h: the image part of an input written to a file, in the form
 * the targets share: a VHDX in sparse_file.h's description, anything else
 * as it is, with the checksums made right first when asked (checksums.h).
 * Used by fuzz_update.c and fuzz_scsi.c; included by one target each: the
 * function is static. */
#ifndef FUZZ_IMAGE_INPUT_H
#define FUZZ_IMAGE_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checksums.h"
#include "sparse_file.h"

/* Writes the image into `fd`, which must be empty.  `sparse_vhdx`: the
 * bytes are a sparse VHDX description, else a VHD (or any file) as it is;
 * `repair`: VHDX headers and region tables, or VHD footers and dynamic
 * header, get right checksums.  0 when the host refuses. */
static int image_input_write(int fd, const uint8_t *data, size_t size, int sparse_vhdx,
                             int repair)
{
    if (sparse_vhdx) {
        uint64_t file_size;
        if (!sparse_fill(fd, data, size, &file_size))
            return 0;
        if (repair)
            repair_vhdx_checksums(fd, file_size);
        return 1;
    }
    uint8_t *image = malloc(size > 0 ? size : 1);
    if (image == NULL)
        return 0;
    if (size > 0)
        memcpy(image, data, size);
    if (repair)
        repair_vhd_checksums(image, size);
    int ok = size == 0 || sparse_write_all(fd, image, size, 0);
    free(image);
    return ok;
}

#endif
