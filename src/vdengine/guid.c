/* Random GUIDs from the system's entropy source (getentropy: Linux and
 * macOS alike, never blocking once the system is up). */
#include "guid.h"

#include <errno.h>
#include <sys/random.h>
#include <unistd.h>

#include "io.h"
#include "vd_errors.h"

uint32_t vd_guid_random(uint8_t bytes[16])
{
    if (getentropy(bytes, 16) != 0)
        return vd_error_from_errno(errno);
    /* Version 4 in the high nibble of Data3 (little-endian: byte 7) and
     * the RFC 4122 variant in Data4[0]. */
    bytes[7] = (uint8_t)((bytes[7] & 0x0F) | 0x40);
    bytes[8] = (uint8_t)((bytes[8] & 0x3F) | 0x80);
    return VD_ERROR_SUCCESS;
}
