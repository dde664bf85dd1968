/* Tests on runs of bytes, shared by every copy that leaves zeros out
 * (compact's zero scan, conversions, create from a source). */
#ifndef VDENGINE_BYTES_H
#define VDENGINE_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether `length` bytes are all zero (true for none): the first byte,
 * then each byte against the one before it, as memcmp runs fastest. */
static inline int vd_bytes_zero(const uint8_t *bytes, size_t length)
{
    return length == 0 || (bytes[0] == 0 && memcmp(bytes, bytes + 1, length - 1) == 0);
}

#endif
