/* What the update harnesses (fault_main.c, vhdx_update_main.c) share: the
 * options between the image and the operations (--readonly, and --fault K:
 * stop after K writes, in builds with VD_FAULT_INJECTION), GUIDs and item
 * data given on the command line, and the content hash they print. */
#ifndef VD_TEST_UPDATE_HARNESS_H
#define VD_TEST_UPDATE_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/image.h"

/* Reads the options from argv[2] on; returns the index of the first
 * operation. */
static int parse_update_options(int argc, char **argv, int *read_only, long *fault)
{
    int first = 2;
    *read_only = 0;
    *fault = -1;
    while (first < argc) {
        if (strcmp(argv[first], "--readonly") == 0) {
            *read_only = 1;
            first++;
        } else if (strcmp(argv[first], "--fault") == 0 && first + 1 < argc) {
            *fault = strtol(argv[first + 1], NULL, 0);
            first += 2;
        } else {
            break;
        }
    }
    return first;
}

/* A GUID as text ("{...}" optional) into vd_image layout. */
static int parse_guid_text(const char *text, vd_guid *guid)
{
    static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    uint8_t canonical[16];
    size_t nibble = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '-' || *p == '{' || *p == '}')
            continue;
        int value;
        if (*p >= '0' && *p <= '9')
            value = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            value = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            value = *p - 'A' + 10;
        else
            return 0;
        if (nibble >= 32)
            return 0;
        if (nibble % 2 == 0)
            canonical[nibble / 2] = (uint8_t)(value << 4);
        else
            canonical[nibble / 2] |= (uint8_t)value;
        nibble++;
    }
    if (nibble != 32)
        return 0;
    for (int i = 0; i < 16; i++)
        guid->bytes[i] = canonical[order[i]];
    return 1;
}

static void print_guid_value(const vd_guid *guid)
{
    const uint8_t *b = guid->bytes;
    printf("\"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\"", b[3], b[2], b[1],
           b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

#define FNV_START UINT64_C(0xcbf29ce484222325)

static uint64_t fnv1a(uint64_t hash, const uint8_t *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= UINT64_C(0x100000001b3);
    }
    return hash;
}

/* DATA as bytes: hex pairs, "-" (empty) or fill:LENGTH:BYTE. */
static uint8_t *parse_data(const char *text, uint32_t *length)
{
    if (strncmp(text, "fill:", 5) == 0) {
        char *end;
        unsigned long count = strtoul(text + 5, &end, 0);
        unsigned long byte = *end == ':' ? strtoul(end + 1, NULL, 0) : 0;
        uint8_t *data = malloc(count ? count : 1);
        if (data != NULL)
            memset(data, (int)byte, count);
        *length = (uint32_t)count;
        return data;
    }
    size_t digits = strcmp(text, "-") == 0 ? 0 : strlen(text);
    uint8_t *data = malloc(digits / 2 + 1);
    if (data == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < digits; i += 2) {
        unsigned int value;
        if (sscanf(text + i, "%2x", &value) != 1) {
            free(data);
            return NULL;
        }
        data[i / 2] = (uint8_t)value;
    }
    *length = (uint32_t)(digits / 2);
    return data;
}

#endif
