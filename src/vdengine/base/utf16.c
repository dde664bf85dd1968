/* Strict UTF-16 <-> UTF-8 conversion.
 *
 * Strict because the strings are file names: a lone surrogate, an overlong
 * or otherwise invalid UTF-8 sequence could make two spellings name one file
 * (or none), so such input is refused rather than repaired.  Output buffers
 * are sized by a first pass over the input, never by a stored length. */
#include "base/utf16.h"

#include <stdlib.h>

#include "base/endian.h"
#include "base/vd_errors.h"

/* Where the units come from: host-order array or little-endian bytes. */
typedef struct vd_utf16_source {
    const uint16_t *units;
    const uint8_t *bytes;
} vd_utf16_source;

static uint16_t vd_utf16_unit(const vd_utf16_source *source, size_t index)
{
    if (source->units != NULL)
        return source->units[index];
    return vd_load_le16(source->bytes + 2 * index);
}

static int vd_is_high_surrogate(uint32_t unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
static int vd_is_low_surrogate(uint32_t unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

/* Decodes the code point at `*index` (advancing it), or returns UINT32_MAX
 * for an unpaired surrogate. */
static uint32_t vd_utf16_next(const vd_utf16_source *source, size_t units, size_t *index)
{
    uint32_t unit = vd_utf16_unit(source, *index);
    *index += 1;
    if (vd_is_low_surrogate(unit))
        return UINT32_MAX;
    if (!vd_is_high_surrogate(unit))
        return unit;
    if (*index >= units)
        return UINT32_MAX;
    uint32_t low = vd_utf16_unit(source, *index);
    if (!vd_is_low_surrogate(low))
        return UINT32_MAX;
    *index += 1;
    return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
}

static size_t vd_utf8_encoded_length(uint32_t code_point)
{
    if (code_point < 0x80)
        return 1;
    if (code_point < 0x800)
        return 2;
    if (code_point < 0x10000)
        return 3;
    return 4;
}

static char *vd_utf8_put(char *out, uint32_t code_point)
{
    switch (vd_utf8_encoded_length(code_point)) {
    case 1:
        *out++ = (char)code_point;
        break;
    case 2:
        *out++ = (char)(0xC0 | code_point >> 6);
        *out++ = (char)(0x80 | (code_point & 0x3F));
        break;
    case 3:
        *out++ = (char)(0xE0 | code_point >> 12);
        *out++ = (char)(0x80 | (code_point >> 6 & 0x3F));
        *out++ = (char)(0x80 | (code_point & 0x3F));
        break;
    default:
        *out++ = (char)(0xF0 | code_point >> 18);
        *out++ = (char)(0x80 | (code_point >> 12 & 0x3F));
        *out++ = (char)(0x80 | (code_point >> 6 & 0x3F));
        *out++ = (char)(0x80 | (code_point & 0x3F));
        break;
    }
    return out;
}

/* Both entry points stop at the first NUL unit: a C string cannot carry an
 * embedded NUL, and cutting there is what a Windows API reading a
 * NUL-terminated WCHAR string would see. */
static char *vd_utf16_source_to_utf8(const vd_utf16_source *source, size_t units)
{
    size_t bytes = 0;
    size_t index = 0;
    while (index < units && vd_utf16_unit(source, index) != 0) {
        uint32_t code_point = vd_utf16_next(source, units, &index);
        if (code_point == UINT32_MAX)
            return NULL;
        bytes += vd_utf8_encoded_length(code_point);   /* <= 3 bytes per unit: no overflow */
    }
    size_t end = index;

    char *text = malloc(bytes + 1);
    if (text == NULL)
        return NULL;
    char *out = text;
    index = 0;
    while (index < end)
        out = vd_utf8_put(out, vd_utf16_next(source, end, &index));
    *out = '\0';
    return text;
}

char *vd_utf16_to_utf8(const uint16_t *text, size_t units)
{
    if (text == NULL && units > 0)
        return NULL;
    vd_utf16_source source = { text, NULL };
    static const uint16_t empty = 0;
    if (text == NULL)
        source.units = &empty;
    return vd_utf16_source_to_utf8(&source, units);
}

char *vd_utf16le_bytes_to_utf8(const uint8_t *bytes, size_t units)
{
    if (bytes == NULL && units > 0)
        return NULL;
    static const uint8_t empty[2] = { 0, 0 };
    vd_utf16_source source = { NULL, bytes != NULL ? bytes : empty };
    return vd_utf16_source_to_utf8(&source, units);
}

size_t vd_utf16_length(const uint16_t *text)
{
    size_t units = 0;
    if (text == NULL)
        return 0;
    while (text[units] != 0)
        units++;
    return units;
}

/* Decodes one UTF-8 sequence at `*cursor` (advancing it) following RFC 3629:
 * no overlong forms, no encoded surrogates, nothing above U+10FFFF.
 * Returns UINT32_MAX for invalid input. */
static uint32_t vd_utf8_next(const unsigned char **cursor)
{
    const unsigned char *p = *cursor;
    uint32_t lead = p[0];
    size_t continuation;
    uint32_t code_point;
    uint32_t minimum;

    if (lead < 0x80) {
        *cursor = p + 1;
        return lead;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
        continuation = 1;
        code_point = lead & 0x1F;
        minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        continuation = 2;
        code_point = lead & 0x0F;
        minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        continuation = 3;
        code_point = lead & 0x07;
        minimum = 0x10000;
    } else {
        return UINT32_MAX;   /* stray continuation byte, 0xC0/0xC1, or 0xF5.. */
    }

    for (size_t i = 1; i <= continuation; i++) {
        /* A NUL terminator fails this test, so no read passes the string. */
        if ((p[i] & 0xC0) != 0x80)
            return UINT32_MAX;
        code_point = code_point << 6 | (p[i] & 0x3F);
    }
    if (code_point < minimum || code_point > 0x10FFFF || vd_is_high_surrogate(code_point)
        || vd_is_low_surrogate(code_point))
        return UINT32_MAX;
    *cursor = p + 1 + continuation;
    return code_point;
}

size_t vd_utf8_to_utf16(const char *text, uint16_t *out, size_t capacity)
{
    if (text == NULL)
        return 0;
    if (out == NULL)
        capacity = 0;
    const unsigned char *cursor = (const unsigned char *)text;
    size_t needed = 0;
    while (*cursor != '\0') {
        uint32_t code_point = vd_utf8_next(&cursor);
        if (code_point == UINT32_MAX)
            return 0;
        if (code_point < 0x10000) {
            if (needed < capacity)
                out[needed] = (uint16_t)code_point;
            needed += 1;
        } else {
            uint32_t offset = code_point - 0x10000;
            if (needed + 1 < capacity) {
                out[needed] = (uint16_t)(0xD800 + (offset >> 10));
                out[needed + 1] = (uint16_t)(0xDC00 + (offset & 0x3FF));
            }
            needed += 2;
        }
    }
    if (needed < capacity)
        out[needed] = 0;
    return needed + 1;
}

/* Whether `units` code units hold no unpaired surrogate. */
static int vd_utf16_well_formed(const uint16_t *text, size_t units)
{
    for (size_t i = 0; i < units; i++) {
        uint16_t unit = text[i];
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            if (i + 1 >= units || text[i + 1] < 0xDC00 || text[i + 1] > 0xDFFF)
                return 0;
            i++;
        } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
            return 0;
        }
    }
    return 1;
}

uint32_t vd_utf16_path_to_host(const uint16_t *path, char **host_path)
{
    size_t units = vd_utf16_length(path);
    *host_path = vd_utf16_to_utf8(path, units);
    if (*host_path != NULL)
        return VD_ERROR_SUCCESS;
    return vd_utf16_well_formed(path, units) ? VD_ERROR_NOT_ENOUGH_MEMORY : VD_ERROR_INVALID_NAME;
}
