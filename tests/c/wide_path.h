/* Command-line paths as the API takes them, for the C harnesses.
 *
 * Every harness gets its image path as UTF-8 in argv and hands it to
 * OpenVirtualDisk as UTF-16; the conversion and the common opens live here
 * once.  Header-only (static functions) because each harness is one
 * translation unit linked against the engine library. */
#ifndef VD_TESTS_WIDE_PATH_H
#define VD_TESTS_WIDE_PATH_H

#include <stdlib.h>
#include <string.h>

#include "virtdisk_api.h"
#include "base/utf16.h"

/* A malloc'd UTF-16 copy of `utf8`, or NULL when it is not UTF-8 or memory
 * ran out.  The caller frees it. */
static inline WCHAR *wide_path(const char *utf8)
{
    size_t units = vd_utf8_to_utf16(utf8, NULL, 0);
    WCHAR *wide = units != 0 ? malloc(units * sizeof *wide) : NULL;
    if (wide != NULL)
        vd_utf8_to_utf16(utf8, wide, units);
    return wide;
}

/* OpenVirtualDisk of a UTF-8 path with any storage type, no flags and the
 * given parameters (NULL for none).  A path that is not UTF-8 answers
 * ERROR_INVALID_PARAMETER, as the API does for a bad path argument. */
static inline DWORD open_path(const char *utf8, VIRTUAL_DISK_ACCESS_MASK access,
                              OPEN_VIRTUAL_DISK_PARAMETERS *parameters, HANDLE *handle)
{
    WCHAR *wide = wide_path(utf8);
    if (wide == NULL)
        return ERROR_INVALID_PARAMETER;
    VIRTUAL_STORAGE_TYPE any;
    memset(&any, 0, sizeof any);
    DWORD status = OpenVirtualDisk(&any, wide, access, OPEN_VIRTUAL_DISK_FLAG_NONE, parameters,
                                   handle);
    free(wide);
    return status;
}

#endif
