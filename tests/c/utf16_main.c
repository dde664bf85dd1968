/* Test harness for utf16.c: one request per input line, one answer per
 * output line, so a test can send thousands of cases to one process.
 *
 *   to8 HEX           UTF-16 units (4 hex digits each, host order)
 *                     -> "ok HEX-UTF8" | "null"
 *   le8 HEX UNITS     little-endian bytes, `units` of them converted
 *                     -> "ok HEX-UTF8" | "null"
 *   to16 HEX CAP      UTF-8 bytes (no NUL), capacity CAP units
 *                     -> "NEEDED HEX-UNITS CANARY" where HEX-UNITS are the
 *                        units written when they fit (NEEDED <= CAP), "-"
 *                        otherwise, and CANARY says whether the units past
 *                        CAP were left alone ("intact" | "overwritten")
 *   len HEX           -> vd_utf16_length of the units plus a terminator
 * An empty HEX is written as "-". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf16.h"

#define CANARY_UNITS 8u
#define CANARY 0xA5A5u

static size_t hex_to_bytes(const char *hex, uint8_t *out)
{
    size_t count = 0;
    if (strcmp(hex, "-") == 0)
        return 0;
    for (; hex[0] != '\0' && hex[1] != '\0'; hex += 2) {
        unsigned value;
        if (sscanf(hex, "%2x", &value) != 1)
            break;
        out[count++] = (uint8_t)value;
    }
    return count;
}

static size_t hex_to_units(const char *hex, uint16_t *out)
{
    size_t count = 0;
    if (strcmp(hex, "-") == 0)
        return 0;
    for (; strlen(hex) >= 4; hex += 4) {
        unsigned value;
        if (sscanf(hex, "%4x", &value) != 1)
            break;
        out[count++] = (uint16_t)value;
    }
    return count;
}

static void print_utf8(const char *text)
{
    if (text == NULL) {
        puts("null");
        return;
    }
    fputs("ok ", stdout);
    if (text[0] == '\0')
        putchar('-');
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        printf("%02x", *p);
    putchar('\n');
}

int main(void)
{
    static char line[1 << 16];
    static uint8_t bytes[1 << 15];
    static uint16_t units[(1 << 14) + CANARY_UNITS];
    char command[8];
    char hex[sizeof line];
    char extra[64];

    while (fgets(line, sizeof line, stdin) != NULL) {
        extra[0] = '\0';
        if (sscanf(line, "%7s %65535s %63s", command, hex, extra) < 2) {
            puts("bad request");
            continue;
        }
        if (strcmp(command, "to8") == 0) {
            size_t count = hex_to_units(hex, units);
            char *text = vd_utf16_to_utf8(units, count);
            print_utf8(text);
            free(text);
        } else if (strcmp(command, "le8") == 0) {
            hex_to_bytes(hex, bytes);
            char *text = vd_utf16le_bytes_to_utf8(bytes, (size_t)strtoull(extra, NULL, 10));
            print_utf8(text);
            free(text);
        } else if (strcmp(command, "to16") == 0) {
            size_t length = hex_to_bytes(hex, bytes);
            bytes[length] = 0;
            size_t capacity = (size_t)strtoull(extra, NULL, 10);
            for (size_t i = 0; i < capacity + CANARY_UNITS; i++)
                units[i] = CANARY;
            size_t needed = vd_utf8_to_utf16((const char *)bytes, units, capacity);
            printf("%zu ", needed);
            if (needed != 0 && needed <= capacity) {
                for (size_t i = 0; i < needed; i++)
                    printf("%04x", units[i]);
            } else {
                putchar('-');
            }
            int intact = 1;
            for (size_t i = capacity; i < capacity + CANARY_UNITS; i++)
                intact &= units[i] == CANARY;
            printf(" %s\n", intact ? "intact" : "overwritten");
        } else if (strcmp(command, "len") == 0) {
            size_t count = hex_to_units(hex, units);
            units[count] = 0;
            printf("%zu\n", vd_utf16_length(units));
        } else {
            puts("bad request");
        }
    }
    return 0;
}
