/* New GUIDs for the identifiers the engine writes (VHD UniqueId, VHDX
 * FileWriteGuid, DataWriteGuid and Page 83 id). */
#ifndef VDENGINE_GUID_H
#define VDENGINE_GUID_H

#include <stdint.h>

#include "virtdisk_api.h"
#include "disk/image.h"

/* Fills `bytes` with a random version 4 GUID in Windows layout, as
 * CoCreateGuid makes them.  Returns a Win32 code. */
uint32_t vd_guid_random(uint8_t bytes[16]);

/* A GUID struct of the API and the engine's vd_guid (Windows layout: Data1,
 * Data2 and Data3 little-endian), whatever the host's byte order. */
vd_guid vd_guid_from_api(const GUID *guid);
void vd_guid_to_api(const vd_guid *in, GUID *out);

int vd_api_guid_is_zero(const GUID *guid);

/* The one statement of GUID byte order.  RFC 4122 order is the GUID's text
 * form read as bytes ("00112233-4455-..." is 00 11 22 33 44 55 ...), the
 * order VHD stores its UUIDs in and the {...} text of VHDX locators shows;
 * Windows layout stores Data1, Data2 and Data3 little-endian.  Converting
 * reverses those three fields, so each function is the other's inverse. */
static inline vd_guid vd_guid_from_rfc4122(const uint8_t bytes[16])
{
    static const uint8_t swap[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    vd_guid guid;
    for (unsigned i = 0; i < 16; i++)
        guid.bytes[i] = bytes[swap[i]];
    return guid;
}

static inline void vd_guid_to_rfc4122(const vd_guid *guid, uint8_t bytes[16])
{
    vd_guid swapped = vd_guid_from_rfc4122(guid->bytes);
    for (unsigned i = 0; i < 16; i++)
        bytes[i] = swapped.bytes[i];
}

#endif
