/* Test harness for io.c.  It includes io.c itself so the tests reach the
 * host-attribute mapping, which only a compressed or encrypted file system
 * could otherwise exercise.
 *
 *   io_main open PATH ro|rw           one open: {"status", "size", "path"}
 *   io_main twice PATH MODE MODE      two opens in this process, both kept
 *   io_main hold PATH ro|rw           opens, prints, keeps the file open
 *                                     until stdin closes (for another
 *                                     process to collide with)
 *   io_main read PATH OFFSET LENGTH OUT   vd_file_read into OUT
 *   io_main write PATH ro|rw OFFSET TEXT  vd_file_write of TEXT
 *   io_main errno N...                vd_error_from_errno for each N
 *   io_main attributes                the attribute mapping, one line per
 *                                     combination: "c e known -> code"
 * Codes are printed in decimal; the tests compare them.
 *
 * Built with -DIO_PORTABLE_PATHS, io.c is compiled as on a system without
 * statx and open file description locks (macOS): fstat and flock instead. */
#ifdef IO_PORTABLE_PATHS
#define _GNU_SOURCE
#include <fcntl.h>
#undef F_OFD_SETLK
#undef __linux__
#endif
#include "host/io.c"

#include <inttypes.h>
#include <stdio.h>

#include "json_print.h"

static int mode_is_writable(const char *mode)
{
    return strcmp(mode, "rw") == 0;
}

static void print_open(const vd_file *file, uint32_t status)
{
    printf("{\"status\": %" PRIu32 ", \"size\": %" PRIu64 ", \"fd_open\": %s, \"path\": ",
           status, file->size, file->fd >= 0 ? "true" : "false");
    print_json_string(file->path);
    puts("}");
    fflush(stdout);
}

static int command_open(const char *path, const char *mode)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, mode_is_writable(mode));
    print_open(&file, status);
    vd_file_close(&file);
    vd_file_close(&file);   /* closing twice must be harmless */
    return 0;
}

static int command_twice(const char *path, const char *first, const char *second)
{
    vd_file one;
    vd_file two;
    uint32_t status_one = vd_file_open(&one, path, mode_is_writable(first));
    uint32_t status_two = vd_file_open(&two, path, mode_is_writable(second));
    printf("{\"first\": %" PRIu32 ", \"second\": %" PRIu32 "}\n", status_one, status_two);
    vd_file_close(&two);
    vd_file_close(&one);
    return 0;
}

static int command_hold(const char *path, const char *mode)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, mode_is_writable(mode));
    print_open(&file, status);
    while (getchar() != EOF) {
    }
    vd_file_close(&file);
    return 0;
}

static int command_read(const char *path, const char *offset_text, const char *length_text,
                        const char *out_path)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, 0);
    if (status == VD_ERROR_SUCCESS) {
        uint64_t offset = strtoull(offset_text, NULL, 0);
        size_t length = (size_t)strtoull(length_text, NULL, 0);
        uint8_t *buffer = malloc(length ? length : 1);
        status = buffer == NULL ? VD_ERROR_NOT_ENOUGH_MEMORY
                                : vd_file_read(&file, offset, buffer, length);
        if (status == VD_ERROR_SUCCESS) {
            FILE *out = fopen(out_path, "wb");
            if (out == NULL || fwrite(buffer, 1, length, out) != length)
                return 2;
            fclose(out);
        }
        free(buffer);
    }
    printf("{\"status\": %" PRIu32 "}\n", status);
    vd_file_close(&file);
    return 0;
}

static int command_write(const char *path, const char *mode, const char *offset_text,
                         const char *text)
{
    vd_file file;
    uint32_t status = vd_file_open(&file, path, mode_is_writable(mode));
    if (status == VD_ERROR_SUCCESS)
        status = vd_file_write(&file, strtoull(offset_text, NULL, 0), text, strlen(text));
    printf("{\"status\": %" PRIu32 "}\n", status);
    vd_file_close(&file);
    return 0;
}

static int command_errno(int count, char **numbers)
{
    for (int i = 0; i < count; i++)
        printf("%s %" PRIu32 "\n", numbers[i], vd_error_from_errno(atoi(numbers[i])));
    return 0;
}

/* Bits chosen apart from any real STATX value, so the test shows the
 * mapping follows its arguments, not a constant. */
static int command_attributes(void)
{
    const uint64_t compressed = 0x10;
    const uint64_t encrypted = 0x800;
    for (int bits = 0; bits < 4; bits++) {
        for (int known = 0; known < 4; known++) {
            uint64_t attributes = ((bits & 1) ? compressed : 0) | ((bits & 2) ? encrypted : 0);
            uint64_t mask = ((known & 1) ? compressed : 0) | ((known & 2) ? encrypted : 0);
            printf("%d %d %d %d %" PRIu32 "\n", bits & 1, (bits >> 1) & 1, known & 1,
                   (known >> 1) & 1,
                   vd_error_from_host_attributes(attributes, mask, compressed, encrypted));
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "open") == 0)
        return command_open(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "twice") == 0)
        return command_twice(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "hold") == 0)
        return command_hold(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "read") == 0)
        return command_read(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 6 && strcmp(argv[1], "write") == 0)
        return command_write(argv[2], argv[3], argv[4], argv[5]);
    if (argc >= 2 && strcmp(argv[1], "errno") == 0)
        return command_errno(argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "attributes") == 0)
        return command_attributes();
    fprintf(stderr, "usage: see the comment at the top of io_main.c\n");
    return 2;
}
