/* Random GUIDs from the system's entropy source (getentropy: Linux and
 * macOS alike, never blocking once the system is up). */
#include "base/guid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "host/io.h"
#include "base/vd_errors.h"

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

vd_guid vd_guid_from_api(const GUID *guid)
{
    vd_guid out;
    out.bytes[0] = (uint8_t)guid->Data1;
    out.bytes[1] = (uint8_t)(guid->Data1 >> 8);
    out.bytes[2] = (uint8_t)(guid->Data1 >> 16);
    out.bytes[3] = (uint8_t)(guid->Data1 >> 24);
    out.bytes[4] = (uint8_t)guid->Data2;
    out.bytes[5] = (uint8_t)(guid->Data2 >> 8);
    out.bytes[6] = (uint8_t)guid->Data3;
    out.bytes[7] = (uint8_t)(guid->Data3 >> 8);
    memcpy(out.bytes + 8, guid->Data4, 8);
    return out;
}

void vd_guid_to_api(const vd_guid *in, GUID *out)
{
    const uint8_t *b = in->bytes;
    out->Data1 = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16
                 | (uint32_t)b[3] << 24;
    out->Data2 = (uint16_t)(b[4] | b[5] << 8);
    out->Data3 = (uint16_t)(b[6] | b[7] << 8);
    memcpy(out->Data4, b + 8, 8);
}

int vd_api_guid_is_zero(const GUID *guid)
{
    static const GUID zero;
    return memcmp(guid, &zero, sizeof zero) == 0;
}
