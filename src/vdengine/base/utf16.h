/* UTF-16LE <-> UTF-8, for paths crossing the API (WCHAR) and for strings
 * stored in images (VHD parent locators, VHDX metadata). */
#ifndef VDENGINE_UTF16_H
#define VDENGINE_UTF16_H

#include <stddef.h>
#include <stdint.h>

/* Converts `units` UTF-16 code units (host order) to a NUL-terminated
 * malloc'd UTF-8 string.  Unpaired surrogates are rejected.  Returns NULL on
 * bad input or when out of memory. */
char *vd_utf16_to_utf8(const uint16_t *text, size_t units);

/* Same, from little-endian bytes as stored on disk; `units` excludes any
 * terminator and conversion stops at the first NUL unit. */
char *vd_utf16le_bytes_to_utf8(const uint8_t *bytes, size_t units);

/* A path given to the API (NUL-terminated UTF-16) as a malloc'd host path
 * (UTF-8).  Paths are host paths spelled in UTF-16; no Windows path syntax
 * is translated.  A path UTF-8 cannot spell (an unpaired surrogate, which
 * NTFS allows in names) names no file here: ERROR_INVALID_NAME.  Out of
 * memory: ERROR_NOT_ENOUGH_MEMORY. */
uint32_t vd_utf16_path_to_host(const uint16_t *path, char **host_path);

/* Length of a NUL-terminated UTF-16 string, in code units. */
size_t vd_utf16_length(const uint16_t *text);

/* Converts NUL-terminated UTF-8 to UTF-16 (host order) into `out`, at most
 * `capacity` units including the terminator.  Returns the number of units
 * needed including the terminator (may exceed capacity: nothing is then
 * guaranteed about `out`), or 0 on invalid UTF-8. */
size_t vd_utf8_to_utf16(const char *text, uint16_t *out, size_t capacity);

#endif
