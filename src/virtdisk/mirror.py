"""Live copies of a disk (MirrorVirtualDisk, BreakMirrorVirtualDisk).

``mirror = disk.mirror(path)`` starts copying the disk's content into a new
image at `path` (the same format, type and sizes; a differencing disk's
content arrives flattened into a dynamic image) while the disk stays in
use: every write made through the disk meanwhile reaches the copy too.
The returned :class:`Mirror` is an :class:`~virtdisk.operation.Operation`
that never ends by itself:

- :meth:`Mirror.wait_mirrored` waits until the whole content is copied;
  from then on every write goes to both images;
- :meth:`Mirror.break_` then switches the disk over to the copy: reads,
  writes and information come from it, and the original file is left as
  it was at that moment;
- :meth:`~virtdisk.operation.Operation.cancel` ends the mirror and leaves
  the disk on the original.  A copy cancelled before it was complete is
  removed, if the mirror created it.

Mirroring takes a version 2 handle; a disk opened with ``access=`` is
opened again, keeping whether it was read-only.  The disk's
:attr:`~virtdisk.disk.VirtualDisk.path` is the path it was opened with
until the break, and the copy's path after it (as given to
:meth:`~virtdisk.disk.VirtualDisk.mirror`), in the errors of its content
calls too; a cancelled mirror leaves it the original's.  An :class:`~virtdisk.attach.Attachment` made through the
disk's handle names the copy as its ``image_path`` after the break too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from _virtdisk import BreakMirrorVirtualDisk, MirrorVirtualDisk, MirrorVirtualDiskFlag

from .errors import ERROR_IO_PENDING
from .operation import Operation, start

if TYPE_CHECKING:
    from .disk import VirtualDisk

__all__ = ["Mirror", "start_mirror"]

# How often wait_mirrored looks at the progress: the state has no event of
# its own (the OVERLAPPED's is set only when the operation ends).
_POLL_INTERVAL: Final = 0.02


class Mirror(Operation):
    """A running mirror of a disk (see the module)."""

    __slots__ = ()

    def mirrored(self) -> bool:
        """Whether the whole content is copied and every write goes to both
        images; raises the operation's error if it has ended otherwise."""
        status, current, total = self.progress()
        if status != ERROR_IO_PENDING:
            self.result(0)
            return False
        return total > 0 and current == total

    def wait_mirrored(self, timeout: float | None = None) -> bool:
        """Waits until :meth:`mirrored`; False when the copy still runs after
        `timeout` seconds (None: no limit)."""
        waited = 0.0
        while not self.mirrored():
            if timeout is not None and waited >= timeout:
                return False
            step = _POLL_INTERVAL if timeout is None else min(_POLL_INTERVAL, timeout - waited)
            self._overlapped.wait(max(step, 0.0))
            waited += step
        return True

    def break_(self) -> None:
        """Switches the disk to the copy and ends the operation
        (BreakMirrorVirtualDisk): the disk's ``path`` names the copy from
        then on.  Raises :class:`InvalidStateError` before the copy is
        complete (see :meth:`wait_mirrored`)."""
        BreakMirrorVirtualDisk(self._disk.handle)
        self.result()

    def __repr__(self) -> str:
        status, current, total = self.progress()
        if status != ERROR_IO_PENDING:
            state = f"ended with {status}"
        else:
            state = "mirrored" if total > 0 and current == total else "copying"
        return f"<Mirror of {self._disk.path!r} {state} {current}/{total}>"


def _opened_version_1(disk: VirtualDisk) -> bool:
    terms = getattr(disk, "_merge_terms", None)
    if terms is not None:
        return bool(terms[0] == 1)
    return bool(getattr(disk, "_opened_version_1", False))


def _reopen_version_2(disk: VirtualDisk) -> None:
    """Gives `disk` a version 2 handle on the same terms of writing."""
    from .disk import open as open_disk

    read_only = disk.read_only is not False
    path = disk.path
    disk._release_target("MirrorVirtualDisk")
    disk.handle.close()
    fresh = open_disk(path, read_only=read_only)
    disk._handle, disk._read_only = fresh._handle, fresh._read_only
    disk._opened_version_1 = False
    if hasattr(disk, "_merge_terms"):
        del disk._merge_terms


def start_mirror(disk: VirtualDisk, path: str | os.PathLike[str], *,
                 existing: bool = False) -> Mirror:
    """Starts MirrorVirtualDisk into `path` and returns its :class:`Mirror`;
    `existing` copies into the image at `path` (EXISTING_FILE: of the
    disk's format, virtual size and sector size) instead of creating it."""
    if existing is not True and existing is not False:
        raise TypeError(f"existing must be True or False, not {existing!r}")
    target = os.fspath(path)
    if not isinstance(target, str):
        raise TypeError(f"path must be a str or an os.PathLike of str, not {type(target).__name__}")
    if disk.closed:
        raise disk._closed_error("mirror")
    if _opened_version_1(disk):
        _reopen_version_2(disk)
    flags = MirrorVirtualDiskFlag.EXISTING_FILE if existing else MirrorVirtualDiskFlag.NONE
    return start(disk, "MirrorVirtualDisk",
                 lambda overlapped: MirrorVirtualDisk(disk.handle, target, flags,
                                                      overlapped=overlapped),
                 Mirror)
