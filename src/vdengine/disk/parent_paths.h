/* The locations a differencing child records for its parent, computed from
 * host paths: the parent's normalised absolute path, and its path relative
 * to the child's directory in Windows spelling (".\base.vhd",
 * "..\dir\base.vhdx"), both of which the chain resolver (chain.c) finds
 * again.  Used when a child is created (create.c) and when it is given a
 * new parent (set_info.c, add_parent.c). */
#ifndef VDENGINE_PARENT_PATHS_H
#define VDENGINE_PARENT_PATHS_H

#include <stdint.h>

/* `child_path` and `parent_path` are absolute host paths (UTF-8); "." and
 * ".." are resolved lexically, as Win32 normalises paths.  *absolute and
 * *relative are malloc'd; both NULL on failure (out of memory). */
uint32_t vd_parent_paths(const char *child_path, const char *parent_path, char **absolute,
                         char **relative);

/* The Windows spelling of a relative parent path, the one place it is
 * written: '\' separators, and ".\" in front unless the path starts with
 * "." or ".." (Windows writes ".\base.vhd", never "base.vhd").  `path`
 * may use either separator.  malloc'd; NULL for NULL, "" or no memory. */
char *vd_windows_relative_path(const char *path);

/* A parent path as an API call gives it (UTF-16) as an absolute host path
 * (UTF-8, malloc'd): a relative path is taken from the current directory,
 * as Win32 resolves relative paths.  Used by SetVirtualDiskInformation and
 * AddVirtualDiskParent. */
uint32_t vd_parent_path_from_api(const uint16_t *wide_path, char **path);

#endif
