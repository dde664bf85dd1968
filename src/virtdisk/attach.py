"""Attaching a virtual disk to the host: the image becomes a block device
(``/dev/loopN`` on Linux, ``\\\\.\\PhysicalDriveN`` on Windows) that the
system partitions, formats and mounts like any disk::

    with virtdisk.open("disk.vhdx", read_only=False) as disk:
        with disk.attach() as device:
            subprocess.run(["mkfs.ext4", device.path], check=True)

An attach belongs to the handle that made it: it ends with
:meth:`Attachment.detach`, the ``with`` block, or when the disk is closed.
``permanent=True`` makes it outlive the disk and the process until
:func:`detach` (from any process) or a reboot.  :func:`attached` lists
every attached image of the system.

Attaching needs root (CAP_SYS_ADMIN) on Linux and an elevated process on
Windows; without it :class:`~virtdisk.errors.PrivilegeNotHeldError` is
raised.
"""

from __future__ import annotations

import os
import warnings
from types import TracebackType
from typing import TYPE_CHECKING, Final

from _virtdisk import (
    PLATFORM,
    AttachVirtualDisk,
    AttachVirtualDiskFlag,
    DetachVirtualDisk,
    GetAllAttachedVirtualDiskPhysicalPaths,
    GetVirtualDiskPhysicalPath,
    VirtualDiskAccessMask,
    VirtualDiskHandle,
    attach_partition,
)

from .dependency import StorageDependency, storage_dependencies
from .errors import ERROR_NOT_READY, error_from_code

if TYPE_CHECKING:
    from typing_extensions import Self

    from .disk import VirtualDisk

__all__ = ["Attachment", "attach", "attached", "detach"]

_READ_ONLY: Final = AttachVirtualDiskFlag.READ_ONLY
_PERMANENT: Final = AttachVirtualDiskFlag.PERMANENT_LIFETIME
# Where the engine records attaches (src/vdengine/host/attach_record.h).
_RUN_DIR_VARIABLE: Final = "VIRTDISK_RUN_DIR"
_RUN_DIR_DEFAULT: Final = "/run/virtdisk"


class Attachment:
    """An attached virtual disk: the device the system sees.

    ``path`` is the device, ``image_path`` the image file; ``read_only``
    and ``permanent`` are how it was attached (None where the system does
    not say, for attaches listed by :func:`attached` on Windows).  As a
    context manager it detaches at the end of the block.  A handle-bound
    attachment collected while attached warns with a ResourceWarning (its
    handle detaches when it closes).  A permanent attachment made through
    a disk opened with ``read_only=False`` detaches (and makes partition
    devices) through that disk's handle while it is open, as Windows lets
    the attaching handle do: the disk holds the image for writing, which
    keeps every other opener out.
    """

    __slots__ = ("_path", "_image_path", "_read_only", "_permanent", "_handle", "_owns_handle",
                 "_attached", "_handle_path", "_attaching_handle")

    def __init__(self, path: str, image_path: str, read_only: bool | None,
                 permanent: bool | None, handle: VirtualDiskHandle | None = None,
                 owns_handle: bool = False,
                 attaching_handle: VirtualDiskHandle | None = None) -> None:
        self._path = path
        self._image_path = image_path
        self._read_only = read_only
        self._permanent = permanent
        self._handle = handle
        self._owns_handle = owns_handle
        self._attached = True
        # The attaching handle's path when `image_path` was taken from it:
        # a mirror's break moves the handle, and the device, to the copy.
        self._handle_path = None if handle is None else handle.path
        # The disk's handle that made a permanent attach (not owned): while
        # it is open, nothing else can open the image it holds for writing.
        self._attaching_handle = attaching_handle

    @property
    def path(self) -> str:
        """The device, e.g. ``/dev/loop3``."""
        return self._path

    @property
    def image_path(self) -> str:
        """The image file that is attached: after a mirror of the disk is
        broken (:meth:`~virtdisk.mirror.Mirror.break_`), the copy, which
        the device serves from then on."""
        handle = self._handle
        if handle is not None and handle.path is not self._handle_path:
            self._handle_path = handle.path
            if handle.path is not None:
                self._image_path = os.path.abspath(os.fspath(handle.path))
        return self._image_path

    @property
    def read_only(self) -> bool | None:
        """Whether the device is read-only."""
        return self._read_only

    @property
    def permanent(self) -> bool | None:
        """Whether the attach outlives its handle (PERMANENT_LIFETIME)."""
        return self._permanent

    @property
    def attached(self) -> bool:
        """False once this object has detached the disk."""
        return self._attached

    def detach(self) -> None:
        """Detaches the disk (flushing what was written through the
        device).  Raises :class:`~virtdisk.errors.DiskInUseError` while a
        file system on the device is mounted, and the disk stays attached.
        Detaching a detached attachment does nothing."""
        if not self._attached:
            return
        handle = self._handle
        attaching = self._open_attaching_handle()
        if handle is not None and not handle.closed:
            DetachVirtualDisk(handle)
            if self._owns_handle:
                handle.close()
        elif attaching is not None:
            DetachVirtualDisk(attaching)
        else:
            detach(self._image_path)
        self._handle = None
        self._attaching_handle = None
        self._attached = False

    def _open_attaching_handle(self) -> VirtualDiskHandle | None:
        """The handle that made this permanent attach, if it is open."""
        attaching = self._attaching_handle
        return None if attaching is None or attaching.closed else attaching

    def partition(self, number: int) -> str:
        """Makes partition `number` of the attached disk a block device of
        its own and returns its path (``/dev/loopN``): a GPT entry's slot
        from 1, or an MBR primary entry 1 to 4, as Linux numbers
        partitions.  It reads the same bytes a kernel partition device
        would, lives as long as this attachment and goes with its detach
        (which refuses, with :class:`~virtdisk.errors.DiskInUseError`,
        while a file system on it is mounted).  Raises
        :class:`~virtdisk.errors.ElementNotFoundError` without such a
        partition; Windows gives each partition its own device already and
        raises :class:`~virtdisk.errors.UnsupportedOperationError`."""
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"partition number must be a positive int, not {number!r}")
        handle = self._handle
        if self._attached and handle is not None and not handle.closed:
            return attach_partition(handle, number)
        if not self._attached or not self._permanent:
            raise error_from_code(ERROR_NOT_READY, "partition", self._image_path,
                                  "the disk is not attached through this object's handle")
        attaching = self._open_attaching_handle()
        if attaching is not None:
            return attach_partition(attaching, number)
        from .disk import open as open_disk

        # A permanent attach outlives its handle: any handle of the image
        # reaches it (DETACH, as a permanently attached disk opens only so).
        with open_disk(self._image_path,
                       access=VirtualDiskAccessMask.DETACH | VirtualDiskAccessMask.GET_INFO,
                       rw_depth=0) as disk:
            return attach_partition(disk.handle, number)

    def storage_dependencies(self) -> list[StorageDependency]:
        """The image files behind the device, asked through the device
        itself: the attached image first (``ancestor_level`` 1), then its
        parents."""
        return storage_dependencies(self._path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.detach()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if getattr(self, "_attached", False) and handle is not None and not handle.closed:
            warnings.warn(f"attachment of {self._image_path!r} as {self._path} collected while "
                          "attached; it detaches when its handle closes",
                          ResourceWarning, stacklevel=2)
            if self._owns_handle:
                handle.close()

    def __repr__(self) -> str:
        state = "" if self._attached else " detached"
        return (f"<Attachment {self._path} image={self.image_path!r} "
                f"read_only={self._read_only} permanent={self._permanent}{state}>")


def attach(disk: VirtualDisk, *, read_only: bool | None = None,
           permanent: bool = False) -> Attachment:
    """Attaches `disk` (see :meth:`VirtualDisk.attach`)."""
    from .disk import open as open_disk

    if read_only is not None and read_only is not True and read_only is not False:
        raise TypeError(f"read_only must be True, False or None, not {read_only!r}")
    if permanent is not True and permanent is not False:
        raise TypeError(f"permanent must be True or False, not {permanent!r}")
    disk_read_only = disk.read_only is not False
    if read_only is None:
        read_only = disk_read_only
    if not read_only and disk_read_only:
        raise ValueError("a read-write attach needs a disk opened with read_only=False")
    image_path = os.path.abspath(os.fspath(disk.path))
    flags = (_READ_ONLY if read_only else AttachVirtualDiskFlag.NONE) | (
        _PERMANENT if permanent else AttachVirtualDiskFlag.NONE)
    if disk_read_only:
        # A handle of its own, which readers share: the attach then lives
        # as long as the attachment, whatever the disk's handle can do.
        own = open_disk(image_path)
        handle = own._handle
        owns_handle = True
    else:
        handle = disk._handle
        owns_handle = False
    try:
        AttachVirtualDisk(handle, flags)
        device = GetVirtualDiskPhysicalPath(handle)
    except BaseException:
        if owns_handle:
            handle.close()
        raise
    if permanent and owns_handle:
        handle.close()
    if permanent:
        return Attachment(device, image_path, read_only, permanent,
                          attaching_handle=None if owns_handle else handle)
    return Attachment(device, image_path, read_only, permanent, handle, owns_handle)


def attached() -> list[Attachment]:
    """Every image attached to this system, by any process, as
    :class:`Attachment` objects (detaching one detaches that image)."""
    records = _engine_records()
    result = []
    for image_path in GetAllAttachedVirtualDiskPhysicalPaths():
        record = records.get(image_path)
        if record is not None:
            device, read_only, permanent = record
            result.append(Attachment(device, image_path, read_only, permanent))
            continue
        try:
            device = _device_of(image_path)
        except OSError:
            continue                # detached meanwhile, or held by a writer
        result.append(Attachment(device, image_path, None, None))
    return result


def detach(path: str | os.PathLike[str]) -> None:
    """Detaches the image at `path`, attached with permanent lifetime by
    any process; a disk of this process whose handle made the attach is
    detached with it (its ``is_loaded`` is False, and the image may be
    attached again).  Raises :class:`~virtdisk.errors.NotAttachedError`
    when it is not attached, :class:`~virtdisk.errors.DiskInUseError` when
    its attach belongs to a handle (it ends when that handle closes)."""
    from .disk import open as open_disk

    with open_disk(path, access=VirtualDiskAccessMask.DETACH | VirtualDiskAccessMask.GET_INFO,
                   rw_depth=0) as disk:
        DetachVirtualDisk(disk._handle)


def _device_of(image_path: str) -> str:
    from .disk import open as open_disk

    # DETACH too: a permanently attached disk opens only with it.
    with open_disk(image_path, access=VirtualDiskAccessMask.DETACH | VirtualDiskAccessMask.GET_INFO,
                   rw_depth=0) as disk:
        return GetVirtualDiskPhysicalPath(disk._handle)


def _engine_records() -> dict[str, tuple[str, bool, bool]]:
    """Device, read-only and permanent of each image the engine recorded
    as attached (the list itself comes from the engine, which checks the
    records are live)."""
    if PLATFORM != "engine":
        return {}
    directory = os.environ.get(_RUN_DIR_VARIABLE) or _RUN_DIR_DEFAULT
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    records: dict[str, tuple[str, bool, bool]] = {}
    for name in names:
        if not name.startswith("loop") or not name[4:].isdigit():
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8",
                      errors="surrogateescape") as file:
                fields = dict(line.rstrip("\n").split(" ", 1) for line in file if " " in line)
        except OSError:
            continue
        image = fields.get("image")
        if image is not None:
            records[image] = (f"/dev/loop{fields.get('loop', name[4:])}",
                              fields.get("read_only") == "1", fields.get("permanent") == "1")
    return records
