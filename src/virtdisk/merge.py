"""Merging a differencing disk into its parents (MergeVirtualDisk).

:func:`start_merge` and the blocking :func:`merge` are what
:class:`~virtdisk.disk.VirtualDisk`'s methods of the same names call.

Depths count from the disk itself, which is depth 1; its parent is depth 2.
A merge by `depth` (version 1) writes the disk and the ``depth - 1`` disks
above it into the one at ``depth + 1``; a merge by `source_depth` and
`target_depth` (version 2) writes the disks from `source_depth` to
``target_depth - 1`` into the one at `target_depth`, so it can merge a
range in the middle of a chain while the disk stays.

Each form needs its own open terms: version 1 "an RWDepth greater than
MergeDepth" (the target opened for writing), version 2 a version 2 handle.
So the disk's handle is closed and the disk opened again on those terms
before the merge, and it keeps that handle afterwards; it reads what it
read before.  The merged disks stay on disk, for the caller to delete: they
no longer open (their parent changed), and neither do the target's other
children (:class:`~virtdisk.errors.ParentMismatchError`).

A VHDX child resized alone (``disk.resize`` on a checkpoint) makes the
target take its size first, so that the target shows afterwards exactly
what the chain showed; the progress counts the bytes that size change adds
or takes away before the copy.  A target shrinks only when the merged
content's partition table ends within the child's size
(:class:`~virtdisk.errors.ResizeError` otherwise: shrink the
target with ``allow_unsafe=True`` first), and a VHD target cannot shrink
(:class:`~virtdisk.errors.ParentMismatchError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from _virtdisk import MergeVirtualDisk, VirtualDiskAccessMask

from .operation import Operation, ProgressCallback, finish, start

if TYPE_CHECKING:
    from .disk import VirtualDisk

__all__ = ["merge", "start_merge"]

_DWORD_MAX: Final = 0xFFFFFFFF


def _checked(value: object, name: str, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lowest <= value <= _DWORD_MAX:
        raise ValueError(f"{name} must be between {lowest} and {_DWORD_MAX}, not {value}")
    return value


def _range(depth: int | None, source_depth: int | None,
           target_depth: int | None) -> tuple[int, int, int]:
    """(version, source, target) of the call; no argument at all merges the
    disk into its parent (version 1, MergeDepth 1)."""
    if source_depth is None and target_depth is None:
        merge_depth = 1 if depth is None else _checked(depth, "depth", 1)
        if merge_depth == _DWORD_MAX:
            raise ValueError(f"depth must be below {_DWORD_MAX}")
        return 1, 1, merge_depth + 1
    if depth is not None:
        raise ValueError("depth (a version 1 merge) cannot be combined with source_depth "
                         "or target_depth (version 2)")
    source = 1 if source_depth is None else _checked(source_depth, "source_depth", 1)
    target = source + 1 if target_depth is None else _checked(target_depth, "target_depth", 1)
    if target <= source:
        raise ValueError(f"target_depth ({target}) must be above source_depth ({source}): "
                         f"the target is an ancestor of the disks merged into it")
    return 2, source, target


def _reopen(disk: VirtualDisk, version: int, target: int) -> None:
    """Gives `disk` a handle opened on the terms the merge needs, unless an
    earlier merge gave it one that serves: a merge run again after a cancel
    runs on the handle it started on, whose chain stays open as it was
    (opening it again would find the merged child's parent changed)."""
    from .disk import open as open_disk

    terms = getattr(disk, "_merge_terms", None)
    if terms is not None and terms[0] == version and (version == 2 or terms[1] >= target):
        return

    path = disk.path
    disk._release_target("MergeVirtualDisk")
    previously_read_only = disk.read_only is not False
    disk.handle.close()
    try:
        if version == 1:
            fresh = open_disk(path, access=VirtualDiskAccessMask.ALL, rw_depth=target)
        else:
            fresh = open_disk(path, read_only=False)
    except BaseException:
        # The disk gets a handle as near its old one as there is.
        fresh = open_disk(path, read_only=previously_read_only)
        disk._handle, disk._read_only = fresh._handle, fresh._read_only
        raise
    disk._handle, disk._read_only = fresh._handle, False
    disk._merge_terms = (version, target)


def start_merge(disk: VirtualDisk, depth: int | None = None, *, source_depth: int | None = None,
                target_depth: int | None = None) -> Operation:
    """Starts MergeVirtualDisk and returns its :class:`Operation`."""
    version, source, target = _range(depth, source_depth, target_depth)
    if disk.closed:
        raise disk._closed_error("merge")
    _reopen(disk, version, target)
    if version == 1:
        return start(disk, "MergeVirtualDisk",
                     lambda overlapped: MergeVirtualDisk(disk.handle, 0, 1, merge_depth=target - 1,
                                                         overlapped=overlapped))
    return start(disk, "MergeVirtualDisk",
                 lambda overlapped: MergeVirtualDisk(disk.handle, 0, 2, merge_source_depth=source,
                                                     merge_target_depth=target,
                                                     overlapped=overlapped))


def merge(disk: VirtualDisk, depth: int | None = None, *, source_depth: int | None = None,
          target_depth: int | None = None, progress: ProgressCallback | None = None) -> None:
    """Merges and waits; `progress(current, total)` is called while it runs
    and once at the end."""
    finish(start_merge(disk, depth, source_depth=source_depth, target_depth=target_depth),
           progress)
