"""The image path a handle names, as text: the path it was opened with, and
the copy's once BreakMirrorVirtualDisk has switched it over (the
extension's ``handle.path`` follows the break).  Whatever names the disk in
a message asks here when it speaks, so that nothing keeps the old name."""

from __future__ import annotations

import os

from _virtdisk import VirtualDiskHandle

__all__ = ["handle_path"]


def handle_path(handle: VirtualDiskHandle) -> str:
    """`handle`'s image path; "" for a handle that knows none (one made
    from a raw handle value)."""
    path = handle.path
    if type(path) is str:
        return path
    return "" if path is None else os.fspath(path)
