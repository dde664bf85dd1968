/* sparse_file.h: the sparse description of a file that fuzz_vhdx.c and
 * fuzz_update.c read, shared so both decode it the same way (and fuzz/run
 * writes one form of seed for both).
 *
 * VHDX structures sit at 1 MiB-aligned offsets in files that are otherwise
 * mostly zeros the mutator would waste its time on, so an input describes
 * the file instead of holding it: u64 file size (LE, reduced modulo 1 TiB),
 * then records of { u32 offset in 512-byte units, u16 length, length
 * bytes }, written at their offsets (a record the input cuts short keeps
 * what is there; bytes past the file size are dropped); everything else
 * reads as zeros.  An input that starts with "vhdxfile" is the file as it
 * is.  Included by one target each: the functions are static. */
#ifndef FUZZ_SPARSE_FILE_H
#define FUZZ_SPARSE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SPARSE_MAX_FILE_SIZE ((uint64_t)1 << 40)

static uint64_t sparse_load_le(const uint8_t *p, int bytes)
{
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; i--)
        value = value << 8 | p[i];
    return value;
}

static int sparse_write_all(int fd, const uint8_t *data, size_t size, uint64_t offset)
{
    while (size > 0) {
        ssize_t wrote = pwrite(fd, data, size, (off_t)offset);
        if (wrote <= 0)
            return 0;
        data += wrote;
        size -= (size_t)wrote;
        offset += (uint64_t)wrote;
    }
    return 1;
}

/* Writes the file an input describes into fd, which must be empty; its size
 * in *file_size.  0 when the host refuses a write. */
static int sparse_fill(int fd, const uint8_t *data, size_t size, uint64_t *file_size)
{
    if (size >= 8 && memcmp(data, "vhdxfile", 8) == 0) {
        *file_size = size;
        return sparse_write_all(fd, data, size, 0);
    }
    *file_size = size >= 8 ? sparse_load_le(data, 8) % SPARSE_MAX_FILE_SIZE : 0;
    size_t at = 8;
    while (at + 6 <= size) {
        uint64_t offset = sparse_load_le(data + at, 4) * 512;
        size_t length = (size_t)sparse_load_le(data + at + 4, 2);
        at += 6;
        if (length > size - at)
            length = size - at;
        if (offset < *file_size) {
            size_t inside = *file_size - offset < length ? (size_t)(*file_size - offset) : length;
            if (!sparse_write_all(fd, data + at, inside, offset))
                return 0;
        }
        at += length;
    }
    return ftruncate(fd, (off_t)*file_size) == 0;
}

#endif
