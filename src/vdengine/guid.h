/* New GUIDs for the identifiers the engine writes (VHD UniqueId, VHDX
 * FileWriteGuid, DataWriteGuid and Page 83 id). */
#ifndef VDENGINE_GUID_H
#define VDENGINE_GUID_H

#include <stdint.h>

/* Fills `bytes` with a random version 4 GUID in Windows layout, as
 * CoCreateGuid makes them.  Returns a Win32 code. */
uint32_t vd_guid_random(uint8_t bytes[16]);

#endif
