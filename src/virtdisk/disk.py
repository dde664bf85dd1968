"""Opening a virtual disk and reading what the Virtual Disk API knows of it.

:func:`open` chooses OpenVirtualDisk's parameters the way the API demands,
so that callers never meet the combinations Windows refuses:

* ISO images open with version 1 parameters and
  ``VirtualDiskAccessMask.READ``, read-only ("ISO files can only be
  mounted read-only and using the V1 API", Microsoft's samples);
* VHD and VHDX images open with version 2 parameters, whose only accepted
  access mask is ``VirtualDiskAccessMask.NONE``, and ``read_only`` says
  whether the handle may write;
* an explicit ``access=`` mask selects version 1 instead, with that mask and
  ``rw_depth``, for the operations that still need one.

:class:`VirtualDisk` wraps the handle: a context manager whose properties
each ask GetVirtualDiskInformation one question, and whose :meth:`info`
asks them all; its ``set_*`` methods change what SetVirtualDiskInformation
changes, and its :attr:`~VirtualDisk.metadata` is the disk's user metadata
as a mapping.  Its :meth:`~VirtualDisk.read`, :meth:`~VirtualDisk.write`,
:meth:`~VirtualDisk.unmap` and :meth:`~VirtualDisk.content` reach the
disk's content at byte offsets (:mod:`virtdisk.content`), through SCSI
commands on an attach made on first use (:mod:`virtdisk.scsi`).
"""

from __future__ import annotations

import itertools
import os
import uuid
from types import TracebackType
import threading
from typing import TYPE_CHECKING, Final, NoReturn

from _virtdisk import (
    GetStorageDependencyFlag,
    VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT,
    AddVirtualDiskParent,
    VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN,
    GetVirtualDiskInfoVersion,
    GetVirtualDiskInformation,
    OpenVirtualDisk,
    OpenVirtualDiskFlag,
    SetVirtualDiskInformation,
    SetVirtualDiskInfoVersion,
    VirtualDiskAccessMask,
    VirtualDiskHandle,
    VirtualStorageType,
    VirtualStorageTypeDevice,
)

from . import dependency as _dependency
from .dependency import StorageDependency
from .detect import EXTENSIONS as _EXTENSIONS
from .detect import parse_storage_type, storage_type_from_signature
from .handle_path import handle_path
from .errors import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED,
    ERROR_VHD_INVALID_TYPE,
    AccessDeniedError,
    InvalidHandleError,
    NotAttachedError,
    UnsupportedOperationError,
    VirtualDiskError,
)
from . import items as _items
from .info import VirtualDiskInfo
from .content import byte_view, checked_offset, read_into, unmap_range, write_from
from .metadata import VirtualDiskMetadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Buffer, Self

    from .attach import Attachment
    from .content import DiskContent
    from .mirror import Mirror
    from .operation import Operation
    from .scsi import BlockTarget

__all__ = ["VirtualDisk", "open"]

_ISO: Final = VirtualStorageTypeDevice.ISO

# Built once: OpenVirtualDisk converts these tuples without allocating, and
# recognises the vendor constant by identity.
_STORAGE_TYPES: Final[dict[VirtualStorageTypeDevice | None, VirtualStorageType]] = {
    device: VirtualStorageType(device, VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    for device in VirtualStorageTypeDevice
    if device is not VirtualStorageTypeDevice.UNKNOWN
}
# No type known: let the API decide, as Windows does, from the extension.
_STORAGE_TYPES[None] = VirtualStorageType(VirtualStorageTypeDevice.UNKNOWN,
                                          VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
_ISO_STORAGE_TYPE: Final = _STORAGE_TYPES[_ISO]

# Every spelling of each extension (".vhdx", ".VHDX", ".vHdX", ...), so that
# the lookup on each open needs no lowering: 80 keys.
_EXTENSION_SPELLINGS: Final[dict[str, VirtualStorageTypeDevice]] = {
    "".join(spelling): device
    for extension, device in _EXTENSIONS.items()
    for spelling in itertools.product(*({letter, letter.upper()} for letter in extension))
}
# The endings those keys are looked up by, made once: `name[-5:]` would
# build its slice object on every open.
_LAST_4: Final = slice(-4, None)
_LAST_5: Final = slice(-5, None)
_LAST_6: Final = slice(-6, None)
# The same spellings, each to the storage type OpenVirtualDisk is passed:
# the open of a named format then makes one lookup, not two.
_EXTENSION_STORAGE_TYPES: Final[dict[str, VirtualStorageType]] = {
    spelling: _STORAGE_TYPES[device] for spelling, device in _EXTENSION_SPELLINGS.items()
}

_ACCESS_NONE: Final = VirtualDiskAccessMask.NONE
_ACCESS_READ: Final = VirtualDiskAccessMask.READ
_ACCESS_ALL: Final = int(VirtualDiskAccessMask.ALL)
_ACCESS_WRITABLE: Final = int(VirtualDiskAccessMask.WRITABLE)
_FLAGS_NONE: Final = OpenVirtualDiskFlag.NONE
_FLAGS_ALL: Final = sum(int(flag) for flag in OpenVirtualDiskFlag)
_FLAGS_NOT_FOR_ISO: Final = OpenVirtualDiskFlag.NO_PARENTS | OpenVirtualDiskFlag.BLANK_FILE
_DWORD_MAX: Final = 0xFFFFFFFF
_RW_DEPTH_DEFAULT: Final = 1

_IDENTIFIER: Final = GetVirtualDiskInfoVersion.IDENTIFIER
_VIRTUAL_STORAGE_TYPE: Final = GetVirtualDiskInfoVersion.VIRTUAL_STORAGE_TYPE
_VIRTUAL_DISK_ID: Final = GetVirtualDiskInfoVersion.VIRTUAL_DISK_ID
_CHANGE_TRACKING_STATE: Final = GetVirtualDiskInfoVersion.CHANGE_TRACKING_STATE

_SET_PARENT_PATH: Final = SetVirtualDiskInfoVersion.PARENT_PATH
_SET_IDENTIFIER: Final = SetVirtualDiskInfoVersion.IDENTIFIER
_SET_PARENT_PATH_WITH_DEPTH: Final = SetVirtualDiskInfoVersion.PARENT_PATH_WITH_DEPTH
_SET_PHYSICAL_SECTOR_SIZE: Final = SetVirtualDiskInfoVersion.PHYSICAL_SECTOR_SIZE
_SET_VIRTUAL_DISK_ID: Final = SetVirtualDiskInfoVersion.VIRTUAL_DISK_ID
_SET_CHANGE_TRACKING_STATE: Final = SetVirtualDiskInfoVersion.CHANGE_TRACKING_STATE
_SET_PARENT_LOCATOR: Final = SetVirtualDiskInfoVersion.PARENT_LOCATOR
# What VHDX stores and SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE accepts.
_PHYSICAL_SECTOR_SIZES: Final = (512, 4096)

# The answers that mean "this question does not apply to this disk", not a
# failure: ERROR_VHD_INVALID_TYPE is what GetVirtualDiskInformation returns
# for a parent question to a disk without a parent, and for a question about
# a kind of disk the image is not (an ISO's identifier); ERROR_NOT_SUPPORTED
# is the general "this provider does not do that".
_NOT_APPLICABLE: Final = frozenset({ERROR_VHD_INVALID_TYPE, ERROR_NOT_SUPPORTED})
# Items added in Windows 10: older systems answer ERROR_INVALID_PARAMETER
# for a version they do not know, which for these means "not available".
_NEWER_ITEMS: Final = frozenset({_VIRTUAL_DISK_ID, _CHANGE_TRACKING_STATE})


def open(  # noqa: A001 - the module's purpose, like io.open
    path: str | os.PathLike[str],
    *,
    storage_type: str | VirtualStorageTypeDevice | None = None,
    read_only: bool | None = None,
    access: VirtualDiskAccessMask | int | None = None,
    rw_depth: int | None = None,
    no_parents: bool = False,
    get_info_only: bool = False,
    flags: OpenVirtualDiskFlag | int = _FLAGS_NONE,
) -> VirtualDisk:
    """Opens the VHD, VHDX or ISO image at `path` and returns a
    :class:`VirtualDisk` (close it, or use it in a ``with`` block).

    `storage_type` is ``"iso"``, ``"vhd"``, ``"vhdx"`` or a
    :class:`VirtualStorageTypeDevice`; None detects it as Windows does, by
    the extension (``.iso``, ``.vhd``, ``.avhd``, ``.vhdx``, ``.avhdx``,
    any case), and where the extension names no format, by the file's
    signature (:mod:`virtdisk.detect`).

    `read_only` defaults to True: most opens inspect, and a writable open
    takes the file exclusively, so it fails while a virtual machine, a
    mount or another writer holds the image, and keeps them out while it
    lasts.  Pass ``read_only=False`` to modify the disk.  ISO images are
    always read-only; ``read_only=False`` for one is a ValueError.

    `no_parents` opens a differencing disk without its parents (the parent
    information is still read from the child).  `get_info_only` asks for a
    handle that can only query (version 2 opens).  `flags` adds other
    :class:`OpenVirtualDiskFlag` bits.

    `access` selects a version 1 open with that
    :class:`VirtualDiskAccessMask` and `rw_depth` (how many disks of the
    chain, from the child, open for writing; 0 for none) instead of
    `read_only`: the form attach, detach and merge by depth require.  ISO
    images accept only the bits of ``VirtualDiskAccessMask.READ``.

    Arguments are checked before OpenVirtualDisk is called (TypeError or
    ValueError naming the value and what is allowed; the rules that depend
    on the format are checked once it is known); the API's refusals
    raise the :class:`VirtualDiskError` subclass for the code it returned,
    e.g. :class:`ImageNotFoundError` (a FileNotFoundError) or
    :class:`CorruptImageError`.
    """
    name = path if type(path) is str else _path_text(path)
    if read_only is not None and read_only is not True and read_only is not False:
        raise TypeError(f"read_only must be True, False or None, not {read_only!r}")
    if storage_type is None:
        # By extension, inline: this runs on every open.  Every key starts
        # with its only dot, so a key the name ends with is its extension;
        # the slices, longest common one first, cost less than rfind.
        storage = (_EXTENSION_STORAGE_TYPES.get(name[_LAST_5])
                   or _EXTENSION_STORAGE_TYPES.get(name[_LAST_4])
                   or _EXTENSION_STORAGE_TYPES.get(name[_LAST_6]))
        if storage is None:
            storage = _STORAGE_TYPES[_device_from_signature(name)]
    else:
        storage = _STORAGE_TYPES[_given_or_detected(storage_type, name)]
    open_flags = _FLAGS_NONE
    if flags is not _FLAGS_NONE or no_parents:
        open_flags = _checked_flags(flags, no_parents)

    if storage is _ISO_STORAGE_TYPE:
        if (read_only is None and access is None and rw_depth is None and not get_info_only
                and open_flags is _FLAGS_NONE):
            handle = OpenVirtualDisk(_ISO_STORAGE_TYPE, name, _ACCESS_READ, open_flags, 1)
        else:
            handle = _open_iso(name, read_only, access, rw_depth, get_info_only, open_flags)
        read_only = True
    elif access is None:
        # The common case, kept to a few tests: version 2, access NONE.
        if read_only is None:
            read_only = True
        if rw_depth is not None:
            raise ValueError("rw_depth applies to version 1 opens, which access= selects; "
                             "without access=, use read_only=")
        if get_info_only:
            handle = OpenVirtualDisk(storage, name, _ACCESS_NONE, open_flags, 2,
                                     get_info_only=True, read_only=True)
            read_only = True
        else:
            handle = OpenVirtualDisk(storage, name, _ACCESS_NONE, open_flags, 2,
                                     read_only=read_only)
    else:
        handle, read_only = _open_version_1(name, storage, read_only, access, rw_depth,
                                            get_info_only, open_flags)
        disk = _new_disk(VirtualDisk)
        disk._handle = handle
        disk._read_only = read_only
        disk._target = None
        disk._opened_version_1 = True
        return disk

    disk = _new_disk(VirtualDisk)
    disk._handle = handle
    disk._read_only = read_only
    disk._target = None
    return disk


def _detected(path: str) -> VirtualStorageTypeDevice | None:
    """The storage type by extension, else by signature, else None."""
    device = (_EXTENSION_SPELLINGS.get(path[-5:]) or _EXTENSION_SPELLINGS.get(path[-4:])
              or _EXTENSION_SPELLINGS.get(path[-6:]))
    return _device_from_signature(path) if device is None else device


def _given_or_detected(storage_type: object, path: str) -> VirtualStorageTypeDevice | None:
    device = parse_storage_type(storage_type)
    return _detected(path) if device is None else device


def _open_version_1(path: str, storage: VirtualStorageType, read_only: object,
                    access: object, rw_depth: object, get_info_only: object,
                    flags: OpenVirtualDiskFlag) -> tuple[VirtualDiskHandle, bool]:
    """Opens a VHD or VHDX with an explicit access mask: version 1
    parameters, the mask and rw_depth."""
    if read_only is not None:
        raise ValueError(
            f"read_only applies to version 2 opens; with access={access!r} the mask "
            f"decides (VirtualDiskAccessMask.WRITABLE bits ask for writing) and "
            f"rw_depth=0 opens nothing for writing")
    if get_info_only:
        raise ValueError("get_info_only applies to version 2 opens; it cannot be "
                         "combined with access=")
    mask = _checked_access(access)
    depth = _checked_rw_depth(rw_depth)
    handle = OpenVirtualDisk(storage, path, mask, flags, 1, rw_depth=depth)
    return handle, depth == 0 or mask & _ACCESS_WRITABLE == 0


def _path_text(path: object) -> str:
    try:
        name = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        name = None
    if type(name) is not str:
        raise TypeError(f"path must be str or os.PathLike[str], not {type(path).__name__}")
    return name


def _device_from_signature(path: str) -> VirtualStorageTypeDevice | None:
    try:
        return storage_type_from_signature(path)
    except OSError:
        # Unreadable here means unopenable there: OpenVirtualDisk reports it
        # with the Win32 code of the actual cause.
        return None


def _open_iso(path: str, read_only: bool | None, access: VirtualDiskAccessMask | int | None,
              rw_depth: int | None, get_info_only: bool,
              open_flags: OpenVirtualDiskFlag) -> VirtualDiskHandle:
    """Opens an ISO image the only way Windows supports: version 1
    parameters and read access."""
    if read_only is False:
        raise ValueError(
            f"ISO images can only be opened read-only (Windows requires version 1 "
            f"parameters with VirtualDiskAccessMask.READ for them), so read_only={read_only!r} "
            f"is not possible for {path!r}")
    if get_info_only:
        raise ValueError("get_info_only applies to version 2 opens, which ISO images do not "
                         "support")
    if open_flags & _FLAGS_NOT_FOR_ISO:
        raise ValueError(
            f"{OpenVirtualDiskFlag(open_flags & _FLAGS_NOT_FOR_ISO)!r} is not supported for "
            f"ISO images: NO_PARENTS (which no_parents=True sets) and BLANK_FILE apply to VHD "
            f"and VHDX")
    if access is None:
        mask: VirtualDiskAccessMask | int = _ACCESS_READ
    else:
        mask = _checked_access(access)
        if mask & ~int(_ACCESS_READ):
            raise ValueError(
                f"access={VirtualDiskAccessMask(mask)!r} is not supported for ISO images, "
                f"which allow only the bits of VirtualDiskAccessMask.READ "
                f"(ATTACH_RO, DETACH, GET_INFO)")
    return OpenVirtualDisk(_ISO_STORAGE_TYPE, path, mask, open_flags, 1,
                           rw_depth=_checked_rw_depth(rw_depth))


def _checked_access(access: object) -> VirtualDiskAccessMask | int:
    if isinstance(access, bool) or not isinstance(access, int):
        raise TypeError(f"access must be a VirtualDiskAccessMask, not {access!r}")
    if access & ~_ACCESS_ALL or access < 0:
        raise ValueError(
            f"access must be a combination of VirtualDiskAccessMask flags "
            f"(within VirtualDiskAccessMask.ALL = {_ACCESS_ALL:#x}), not {access:#x}")
    return access


def _checked_flags(flags: object, no_parents: object) -> OpenVirtualDiskFlag:
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"flags must be an OpenVirtualDiskFlag, not {flags!r}")
    if flags & ~_FLAGS_ALL or flags < 0:
        raise ValueError(f"flags must be a combination of OpenVirtualDiskFlag flags "
                         f"(bits {_FLAGS_ALL:#x}), not {flags:#x}")
    if no_parents:
        return OpenVirtualDiskFlag(flags | OpenVirtualDiskFlag.NO_PARENTS)
    return OpenVirtualDiskFlag(flags)


def _checked_rw_depth(rw_depth: object) -> int:
    if rw_depth is None:
        return _RW_DEPTH_DEFAULT
    if isinstance(rw_depth, bool) or not isinstance(rw_depth, int):
        raise TypeError(f"rw_depth must be an int, not {rw_depth!r}")
    if not 0 <= rw_depth <= _DWORD_MAX:
        raise ValueError(f"rw_depth must be between 0 and {_DWORD_MAX}, not {rw_depth}")
    return rw_depth


class VirtualDisk:
    """An open virtual disk (VHD, VHDX or ISO image).

    Get one from :func:`virtdisk.open`, or wrap a handle from
    ``_virtdisk.OpenVirtualDisk`` with ``VirtualDisk(handle)`` (the disk
    then owns it).  Close it with :meth:`close` or a ``with`` block; a disk
    left open is closed when it is garbage-collected, with a
    ResourceWarning.

    Each property asks GetVirtualDiskInformation afresh, so it reflects
    changes made meanwhile; :meth:`info` takes a snapshot of them all.  A
    property whose question does not apply to the disk is None (parent
    properties of a disk that is not differencing, identifiers of an ISO
    image).  Reading a property of a closed disk raises
    :class:`InvalidHandleError`.
    """

    __slots__ = ("_handle", "_read_only", "_target", "_merge_terms", "_opened_version_1",
                 "_on_device")

    _handle: VirtualDiskHandle
    _read_only: bool | None
    _target: BlockTarget | None
    # (version, depth) of the handle virtdisk.merge opened, unset otherwise.
    _merge_terms: tuple[int, int]
    # True for a handle open() opened with access= (version 1), which a
    # mirror cannot run on; unset otherwise.
    _opened_version_1: bool
    # True once a permanent attach was made through this handle, whose
    # device then takes its content commands; unset otherwise.
    _on_device: bool

    def __init__(self, handle: VirtualDiskHandle) -> None:
        if not isinstance(handle, VirtualDiskHandle):
            raise TypeError(f"handle must be a VirtualDiskHandle, not {type(handle).__name__}")
        self._handle = handle
        self._read_only = None
        self._target = None

    # -- life cycle -------------------------------------------------------

    def attach(self, *, read_only: bool | None = None, permanent: bool = False) -> Attachment:
        """Attaches the disk to this system and returns the
        :class:`~virtdisk.attach.Attachment` (a context manager whose
        ``path`` is the device, ``/dev/loopN`` on Linux).

        `read_only` None follows the disk: a disk opened read-only attaches
        read-only (on a handle of its own), a read-write one read-write (on
        the disk's handle, so closing the disk detaches).  `permanent`
        keeps the attach after the disk and the process are gone, until
        :func:`virtdisk.detach`.  Needs root on Linux (CAP_SYS_ADMIN) and
        an elevated process on Windows (:class:`PrivilegeNotHeldError`);
        an image attached already raises :class:`DiskInUseError`.  The
        attach content access (:meth:`read`, :meth:`write`) made is
        flushed and ended first; while the device is attached, content
        access on the disk raises :class:`DiskInUseError`, except after a
        permanent attach of a disk opened with ``read_only=False``: its
        content access then goes through the device, as every other user
        of the device sees it, and once the attach is detached raises
        :class:`NotAttachedError` (close the disk and open it again)."""
        from .attach import attach

        if self._handle.closed:
            raise self._closed_error("attach")
        self._release_target("attach")
        attachment = attach(self, read_only=read_only, permanent=permanent)
        # The engine sends this handle's content I/O to the device of a
        # permanent attach made on it; no attach of its own is needed.
        self._on_device = permanent and self.read_only is False
        return attachment

    def close(self) -> None:
        """Closes the disk's handle, first flushing and detaching the
        attach that content access made, if any.  Closing a closed disk
        does nothing."""
        try:
            self._release_target("close")
        finally:
            self._handle.close()

    def _release_target(self, name: str) -> None:
        """Flushes and detaches the attach content access made, if any:
        the disk is then free for another attach, and content access
        attaches again when next used."""
        target = self._target
        if target is None:
            return
        self._target = None
        try:
            if not self._handle.closed and not target.read_only:
                try:
                    target.synchronize(name)
                except NotAttachedError:
                    # The permanent attach the commands went to has been
                    # detached (a detach through this handle flushed what
                    # they wrote): there is nothing left to flush through.
                    if not getattr(self, "_on_device", False):
                        raise
        finally:
            target.close()

    @property
    def closed(self) -> bool:
        """True once the disk is closed."""
        return self._handle.closed

    def __enter__(self) -> Self:
        if self._handle.closed:
            raise self._closed_error("__enter__")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # close() inline for a disk without content access: every `with`
        # block ends here.
        if self._target is None:
            self._handle.close()
        else:
            self.close()

    def __repr__(self) -> str:
        if self._handle.closed:
            state = "closed"
        else:
            state = {True: "read-only", False: "read-write", None: "open"}[self._read_only]
            try:
                device = GetVirtualDiskInformation(self._handle, _VIRTUAL_STORAGE_TYPE).device_id
            except VirtualDiskError:
                pass  # a version 1 handle without GET_INFO access
            else:
                name = getattr(device, "name", str(device))
                state = f"{name.lower()} {state}"
        return f"<VirtualDisk {self.path!r} {state}>"

    @property
    def handle(self) -> VirtualDiskHandle:
        """The low-level handle, for the ``_virtdisk`` functions."""
        return self._handle

    @property
    def path(self) -> str:
        """The path of the image the disk is on: the one it was opened
        with, and the copy's once :meth:`Mirror.break_
        <virtdisk.mirror.Mirror.break_>` has switched it over."""
        return handle_path(self._handle)

    @property
    def read_only(self) -> bool | None:
        """Whether the handle was opened without write access; None for a
        disk made from a handle opened elsewhere."""
        return self._read_only

    # -- information --------------------------------------------------------

    # Each a read-only property described once in virtdisk.items.
    storage_type = _items.storage_type
    provider_subtype = _items.provider_subtype
    virtual_size = _items.virtual_size
    physical_size = _items.physical_size
    block_size = _items.block_size
    sector_size = _items.sector_size
    physical_sector_size = _items.physical_sector_size
    physical_disk = _items.physical_disk
    identifier = _items.identifier
    virtual_disk_id = _items.virtual_disk_id
    is_4k_aligned = _items.is_4k_aligned
    smallest_safe_virtual_size = _items.smallest_safe_virtual_size
    fragmentation = _items.fragmentation
    is_loaded = _items.is_loaded
    change_tracking = _items.change_tracking
    parent_resolved = _items.parent_resolved
    parent_paths = _items.parent_paths
    parent_identifier = _items.parent_identifier
    parent_timestamp = _items.parent_timestamp

    def info(self) -> VirtualDiskInfo:
        """Every item of information at once, as a frozen
        :class:`VirtualDiskInfo`."""
        return VirtualDiskInfo(path=self.path, **_items.info_values(self))

    def storage_dependencies(self) -> list[StorageDependency]:
        """The image files this disk is made of, the image itself first
        (``ancestor_level`` 1), then each parent of its differencing chain
        as it was opened (GetStorageDependencyInformation with
        HOST_VOLUMES)."""
        return _dependency.query(self._handle, GetStorageDependencyFlag.HOST_VOLUMES)

    # -- content ------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """The `length` bytes of content from byte `offset` on; fewer when
        the disk ends first (none at its end).

        Any offset and length work: the sectors an unaligned request only
        partly covers are read whole and cut.  The first content access
        attaches the disk for SCSI commands (``RawSCSIVirtualDisk`` on an
        ``ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST`` attach, read-only for a
        disk opened read-only), which lasts until :meth:`close`; on Windows
        that attach needs administrator rights.

        Raises TypeError for a non-int argument; ValueError for a negative
        length or an offset past the end (the message names the size),
        before anything is sent; :class:`InvalidHandleError` when the disk
        is closed; :class:`DiskInUseError` while the image is attached
        otherwise (a device of any process, a permanent attach, another
        handle of this process: read the device then), with a ``detail``
        naming the device; :class:`MediumError` (an :class:`ImageIOError`)
        naming the offset of data the image cannot deliver.
        """
        if isinstance(length, bool) or not isinstance(length, int):
            raise TypeError(f"length must be an int, not {type(length).__name__}")
        if length < 0:
            raise ValueError(f"length must not be negative, not {length}")
        target = self._target
        if target is None or self._handle.closed:
            target = self._block_target("read")
        capacity = target.capacity
        if type(offset) is not int or not 0 <= offset <= capacity:
            offset = checked_offset(offset, capacity)
        buffer = bytearray(min(length, capacity - offset))
        read_into(target, offset, buffer, "read")
        return bytes(buffer)

    def readinto(self, offset: int, buffer: Buffer) -> int:
        """Fills `buffer` (any writable buffer: bytearray, memoryview,
        array, mmap) with the content from byte `offset` on and returns how
        many bytes it read: ``len(buffer)``, or fewer when the disk ends
        first.  The aligned part of the request goes straight into
        `buffer`, without a copy.  Attaches and raises as :meth:`read`;
        TypeError for a read-only buffer."""
        if type(buffer) is bytearray:
            # Valid as it is, and passed down as it is: no view to make.
            return self._readinto(offset, buffer)
        with byte_view(buffer, True, "buffer") as view:
            return self._readinto(offset, view)

    def _readinto(self, offset: int, buffer: memoryview | bytearray) -> int:
        """:meth:`readinto` once `buffer` is known good; the common case
        (an int offset in range, a disk attached already) checked inline."""
        target = self._target
        if target is None or self._handle.closed:
            target = self._block_target("readinto")
        if type(offset) is not int or not 0 <= offset <= target.capacity:
            offset = checked_offset(offset, target.capacity)
        return read_into(target, offset, buffer, "readinto")

    def write(self, offset: int, data: Buffer) -> int:
        """Writes `data` (any buffer) at byte `offset` and returns
        ``len(data)``.

        Any offset and length work: the sectors an unaligned write only
        partly covers are read, patched and rewritten.  The aligned part
        goes straight from `data` to the disk, without a copy.  The disk
        must be open with ``read_only=False``.  Writes may stay in the
        image's caches until :meth:`flush` or :meth:`close`.  Attaches as
        :meth:`read` does (administrator rights on Windows).

        Raises TypeError for a bad argument; ValueError when the write
        would reach past the end of the disk (the message names the size),
        before anything is written; :class:`AccessDeniedError` (a
        PermissionError) for a disk open read-only or a write-protected
        one; :class:`UnsupportedOperationError` for a format this system
        cannot write; :class:`MediumError` naming the offset of data the
        image cannot store; :class:`DiskFullError` when the host is full.
        """
        if type(data) is bytes or type(data) is bytearray:
            return self._write(offset, data)
        with byte_view(data, False, "data") as view:
            return self._write(offset, view)

    def _write(self, offset: int, data: memoryview | bytes | bytearray) -> int:
        """:meth:`write` once `data` is known good, checked as
        :meth:`_readinto` checks."""
        if self._read_only or self._handle.closed:
            self._check_writable("write")
        target = self._target
        if target is None:
            target = self._block_target("write")
        if type(offset) is not int or not 0 <= offset <= target.capacity:
            offset = checked_offset(offset, target.capacity)
        if len(data) > target.capacity - offset:
            raise ValueError(
                f"writing {len(data)} bytes at offset {offset} would reach past the end "
                f"of the disk, whose size is {target.capacity} bytes")
        return write_from(target, offset, data, "write")

    def unmap(self, offset: int, length: int) -> None:
        """Tells the disk that `length` bytes from `offset` on are no longer
        needed (TRIM): a dynamic disk may release the blocks they fill.

        Whole sectors are unmapped with SCSI UNMAP; the partial sectors at
        an unaligned edge are overwritten with zeros rather than refused, as
        a hole punched in a file zeroes its partial pages (those zeros are
        a write, which may allocate a block of a dynamic disk).  What
        unmapped sectors read afterwards is the format's choice: zeros for
        a disk whose :meth:`unmap_reads_zeros` is True (every dynamic and
        differencing VHD and VHDX on the portable engine).  The disk must
        be open with ``read_only=False``.  Raises as :meth:`write` does;
        :class:`UnsupportedOperationError` for a disk that cannot unmap
        (fixed disks and ISO images keep every block).
        """
        if isinstance(length, bool) or not isinstance(length, int):
            raise TypeError(f"length must be an int, not {type(length).__name__}")
        if length < 0:
            raise ValueError(f"length must not be negative, not {length}")
        self._check_writable("unmap")
        target = self._block_target("unmap")
        start = checked_offset(offset, target.capacity)
        if length > target.capacity - start:
            raise ValueError(f"unmapping {length} bytes at offset {start} would reach past the "
                             f"end of the disk, whose size is {target.capacity} bytes")
        if not target.thin:
            error = UnsupportedOperationError(ERROR_NOT_SUPPORTED, "VirtualDisk.unmap", self.path)
            error.strerror = ("the disk does not support unmapping (it reports no logical "
                              "block provisioning: fixed disks and ISO images keep every block)")
            raise error
        if length:
            unmap_range(target, start, length, "unmap")

    def compact(self, *, zero_scan: bool = True, move_blocks: bool = True,
                progress: Callable[[int, int], object] | None = None) -> None:
        """Gives back the space of blocks that hold nothing (CompactVirtualDisk
        V1, file-system agnostic) and waits; the content reads the same
        afterwards.

        `zero_scan` False reads no data (NO_ZERO_SCAN): only blocks already
        unmapped (VHDX) or whose sector bitmap marks nothing (VHD) leave;
        `move_blocks` False frees blocks as holes in the file and keeps its
        size (NO_BLOCK_MOVES), otherwise the last blocks move into the freed
        space and the file is cut.  In a differencing disk a block leaves
        only where the content stays the same.  `progress(current, total)`
        is called, in bytes, while it runs.  A fixed VHDX is left as it is;
        a fixed VHD raises :class:`UnsupportedOperationError`.  The disk must
        be open with ``read_only=False``; content written through it is
        flushed first.  Raises :class:`AccessDeniedError` for a read-only
        disk.
        """
        from .operation import compact

        self._check_writable("compact")
        compact(self, zero_scan=zero_scan, move_blocks=move_blocks, progress=progress)

    def start_compact(self, *, zero_scan: bool = True, move_blocks: bool = True) -> Operation:
        """Starts the compact of :meth:`compact` without waiting and returns
        its :class:`~virtdisk.operation.Operation` (progress, wait, cancel,
        result, ``await``); a cancel leaves the disk reading as before."""
        from .operation import start_compact

        self._check_writable("compact")
        return start_compact(self, zero_scan=zero_scan, move_blocks=move_blocks)

    def unmap_reads_zeros(self) -> bool:
        """Whether unmapped sectors read as zeros (READ CAPACITY(16)'s
        LBPRZ); attaches as :meth:`read` does."""
        return self._block_target("unmap_reads_zeros").zeroes_after_unmap

    def flush(self) -> None:
        """Makes the content written so far reach the image file
        (SYNCHRONIZE CACHE), durably: a crash may lose writes that no flush
        followed (a dynamic VHD's new blocks, say, wait for it to enter the
        block table), never flushed ones.  Does nothing for a disk whose
        content was not accessed or that is open read-only; :meth:`close`
        flushes too."""
        if self._handle.closed:
            raise self._closed_error("flush")
        target = self._target
        if target is not None and not target.read_only:
            target.synchronize("flush")

    def content(self) -> DiskContent:
        """The disk's content as a seekable raw binary file
        (:class:`io.RawIOBase`), writable when the disk is open with
        ``read_only=False``: hand it to :func:`shutil.copyfileobj`,
        :func:`hashlib.file_digest`, :func:`tarfile.open` (``fileobj=``) or
        :class:`io.BufferedReader`.  Closing it leaves the disk open.
        Attaches as :meth:`read` does."""
        from .content import DiskContent

        return DiskContent(self)

    def _block_target(self, name: str) -> BlockTarget:
        """The disk's SCSI target, attached on first use."""
        target = self._target
        if target is not None:
            if self._handle.closed:
                raise self._closed_error(name)
            return target
        if self._handle.closed:
            raise self._closed_error(name)
        with _ATTACH_LOCK:
            target = self._target
            if target is None:
                from .scsi import BlockTarget

                target = BlockTarget(self._handle, self._read_only,
                                     on_device=getattr(self, "_on_device", False))
                self._target = target
        return target

    # -- resizing -----------------------------------------------------------

    def resize(self, size: int | str, *, allow_unsafe: bool = False,
               progress: Callable[[int, int], object] | None = None) -> None:
        """Changes the virtual size to `size` (bytes, or a string such as
        ``"20GiB"``) and waits (ResizeVirtualDisk).  VHD and VHDX grow;
        only VHDX shrink, and not past the end of the last partition
        without `allow_unsafe` (:class:`ResizeError`).  `progress(current,
        total)` is called, in bytes, while it runs.  Needs
        ``read_only=False``.  The grown part reads zeros; the partition
        table is left as it is (the guest extends its partitions)."""
        from .operation import resize

        resize(self, size, allow_unsafe=allow_unsafe, progress=progress)

    def resize_to_smallest(self, *, progress: Callable[[int, int], object] | None = None) -> None:
        """Shrinks a VHDX to the end of its last partition (the
        :attr:`smallest_safe_virtual_size`) and waits."""
        from .operation import resize_to_smallest

        resize_to_smallest(self, progress=progress)

    def expand(self, size: int | str, *, progress: Callable[[int, int], object] | None = None) -> None:
        """Grows the disk to `size` and waits (ExpandVirtualDisk, the
        Windows 7 form: a smaller size is an :class:`InvalidParameterError`)."""
        from .operation import expand

        expand(self, size, progress=progress)

    def start_resize(self, size: int | str, *, allow_unsafe: bool = False,
                     to_smallest: bool = False) -> Operation:
        """Starts the resize of :meth:`resize` without waiting and returns
        its :class:`~virtdisk.operation.Operation` (progress, wait, cancel,
        result, ``await``).  `to_smallest` ignores `size`."""
        from .operation import start_resize

        return start_resize(self, size, allow_unsafe=allow_unsafe, to_smallest=to_smallest)

    # -- merging ------------------------------------------------------------

    def merge(self, depth: int | None = None, *, source_depth: int | None = None,
              target_depth: int | None = None,
              progress: Callable[[int, int], object] | None = None) -> None:
        """Merges this differencing disk into its parent and waits
        (MergeVirtualDisk, ``Merge-VHD``); the parent then reads what this
        disk read.  `depth` N merges this disk and the N - 1 disks above it
        into the disk at depth N + 1 (this disk is depth 1);
        `source_depth` and `target_depth` merge the disks from
        `source_depth` to ``target_depth - 1`` into the one at
        `target_depth`, e.g. ``source_depth=2, target_depth=3`` merges the
        parent into the grandparent and leaves this disk alone.
        `progress(current, total)` is called, in bytes, while it runs.

        A disk resized alone (a checkpoint grown with :meth:`resize`) gives
        the target its size first, so that the target then reads exactly
        what this disk read; the progress counts that size change too.  A
        smaller disk shrinks the target only where its partition table
        ends within it (:class:`ResizeError` otherwise, nothing written).

        The disk is opened again on the terms the merge needs (see
        :mod:`virtdisk.merge`) and stays open on them.  The merged disks
        stay for the caller to delete; they, and the target's other
        children, no longer open (:class:`ParentMismatchError`).  Raises
        :class:`UnsupportedOperationError` for a disk that is not
        differencing and :class:`InvalidParameterError` for a depth past
        its chain."""
        from .merge import merge

        merge(self, depth, source_depth=source_depth, target_depth=target_depth,
              progress=progress)

    def start_merge(self, depth: int | None = None, *, source_depth: int | None = None,
                    target_depth: int | None = None) -> Operation:
        """Starts the merge of :meth:`merge` without waiting and returns its
        :class:`~virtdisk.operation.Operation`; a cancelled merge leaves
        the target partly merged, and running it again finishes it."""
        from .merge import start_merge

        return start_merge(self, depth, source_depth=source_depth, target_depth=target_depth)

    # -- mirroring ----------------------------------------------------------

    def mirror(self, path: str | os.PathLike[str], *, existing: bool = False) -> Mirror:
        """Starts a live copy of this disk into a new image at `path`
        (MirrorVirtualDisk) and returns its :class:`~virtdisk.mirror.Mirror`:
        wait with ``wait_mirrored()``, then ``break_()`` switches this disk
        to the copy, or ``cancel()`` keeps it on the original.  Writes
        through this disk reach the copy meanwhile.  `existing` copies into
        the image already at `path` (same format, virtual size and sector
        size).  A disk opened with ``access=`` is opened again as version
        2, which mirroring needs; see :mod:`virtdisk.mirror`."""
        from .mirror import start_mirror

        return start_mirror(self, path, existing=existing)

    # -- changes ------------------------------------------------------------

    @property
    def metadata(self) -> VirtualDiskMetadata:
        """The disk's user metadata items as a mutable mapping of
        :class:`uuid.UUID` to bytes (VHDX only): ``disk.metadata[item] =
        b"..."``, ``del disk.metadata[item]``.  Reading needs any handle;
        changing needs one opened with ``read_only=False``.  See
        :class:`~virtdisk.metadata.VirtualDiskMetadata`."""
        return VirtualDiskMetadata(self)

    def set_parent(self, path: str | os.PathLike[str], *, depth: int = 1,
                   ignore_id_mismatch: bool = False) -> None:
        """Records `path` as the parent of this differencing disk, e.g. after
        the parent moved (what ``Set-VHD -ParentPath`` does).

        The API opens the new parent and checks that its identifier is the
        one the child records for its parent, so that a child is never put
        on a disk it was not made from.  `depth` changes a disk further up
        the chain instead: 1 (the default) is this disk, 2 its parent, and
        so on (SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH).

        `ignore_id_mismatch=True` skips that check (``Set-VHD
        -IgnoreIdMismatch``): the new parent's :attr:`identifier` is read
        here and recorded as the one this disk expects
        (SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR).  Use it only for a parent
        holding the data the child was made from, e.g. a copy whose
        identifier was changed; on any other parent the child reads as
        garbage.  It applies to this disk's own parent (depth 1).

        The disk must be open with ``read_only=False``; a child whose parent
        is missing opens for this with ``no_parents=True`` as well.  A
        change at depth N writes to the disk N - 1 levels up the chain,
        which must be open for writing too: open the leaf with
        ``access=VirtualDiskAccessMask.METAOPS, rw_depth=N``.

        Raises TypeError or ValueError for a bad argument, before the call;
        :class:`AccessDeniedError` (a PermissionError) when the disk is open
        read-only; :class:`InvalidHandleError` when it is closed; then what
        the API answers: :class:`AccessDeniedError` when the disk at `depth`
        is not open for writing, :class:`UnsupportedOperationError` for a
        disk that is not differencing, :class:`ImageNotFoundError` (a
        FileNotFoundError) for a parent that does not exist,
        :class:`ParentMismatchError` for a parent whose identifier differs.
        """
        name = _path_text(path)
        if ignore_id_mismatch is not True and ignore_id_mismatch is not False:
            raise TypeError(f"ignore_id_mismatch must be True or False, "
                            f"not {ignore_id_mismatch!r}")
        child_depth = _checked_depth(depth)
        if ignore_id_mismatch and child_depth != 1:
            raise ValueError(
                f"ignore_id_mismatch=True applies to this disk's own parent (depth=1), not "
                f"depth={child_depth}: open the disk at that depth and set its parent")
        self._check_writable("set_parent")
        if ignore_id_mismatch:
            SetVirtualDiskInformation(self._handle, _SET_PARENT_LOCATOR, parent_file_path=name,
                                      linkage_id=_identifier_of(name))
        elif child_depth == 1:
            SetVirtualDiskInformation(self._handle, _SET_PARENT_PATH, parent_file_path=name)
        else:
            SetVirtualDiskInformation(self._handle, _SET_PARENT_PATH_WITH_DEPTH,
                                      parent_file_path=name, child_depth=child_depth)

    def add_parent(self, path: str | os.PathLike[str]) -> None:
        """Puts the disk at `path` at the end of this disk's chain, in this
        handle only (AddVirtualDiskParent): nothing is written, and the next
        open finds the parents the child records.  Open the child with
        ``flags=OpenVirtualDiskFlag.CUSTOM_DIFF_CHAIN`` (its parents are then
        not opened), then add its parent, the parent's parent, and so on:
        content reads go through the chain built so.

        Raises TypeError for a path that is not a str or os.PathLike;
        :class:`InvalidHandleError` when the disk is closed; then what the
        API answers: :class:`InvalidStateError` for a disk opened without
        CUSTOM_DIFF_CHAIN or already attached (read content after the
        parents are added), :class:`UnsupportedOperationError` when the end
        of the chain is no differencing disk, :class:`ImageNotFoundError`
        for a path that names nothing, :class:`ParentMismatchError` for a
        disk that is not the parent the chain's last disk was made from.
        """
        name = _path_text(path)
        if self._handle.closed:
            raise self._closed_error("add_parent")
        AddVirtualDiskParent(self._handle, name)

    def set_identifier(self, identifier: uuid.UUID) -> None:
        """Changes the disk's :attr:`identifier` (a VHD's footer UniqueId, a
        VHDX's DataWriteGuid).

        Differencing children record their parent's identifier and refuse a
        parent whose identifier differs, so after this change the disk's
        children no longer open (:class:`ParentMismatchError`) until each is
        re-linked with ``set_parent(path, ignore_id_mismatch=True)``.

        Raises TypeError unless `identifier` is a :class:`uuid.UUID`;
        :class:`AccessDeniedError` when the disk is open read-only;
        :class:`InvalidHandleError` when it is closed; then what the API
        answers.
        """
        value = _checked_uuid(identifier, "identifier")
        self._check_writable("set_identifier")
        SetVirtualDiskInformation(self._handle, _SET_IDENTIFIER, unique_identifier=value)

    def set_virtual_disk_id(self, virtual_disk_id: uuid.UUID) -> None:
        """Changes the :attr:`virtual_disk_id`, the identity the disk shows
        its guest (a VHDX's Page 83 data; a VHD's footer UniqueId, which is
        also its :attr:`identifier`).

        Raises TypeError unless `virtual_disk_id` is a :class:`uuid.UUID`;
        :class:`AccessDeniedError` when the disk is open read-only;
        :class:`InvalidHandleError` when it is closed; then what the API
        answers.
        """
        value = _checked_uuid(virtual_disk_id, "virtual_disk_id")
        self._check_writable("set_virtual_disk_id")
        SetVirtualDiskInformation(self._handle, _SET_VIRTUAL_DISK_ID, virtual_disk_id=value)

    def reset_virtual_disk_id(self) -> uuid.UUID:
        """Gives the disk a new random :attr:`virtual_disk_id` and returns
        it (what ``Set-VHD -ResetDiskIdentifier`` does), so that a copy of a
        disk and its original can be attached to one machine.

        Raises as :meth:`set_virtual_disk_id` does.
        """
        self._check_writable("reset_virtual_disk_id")
        value = uuid.uuid4()
        SetVirtualDiskInformation(self._handle, _SET_VIRTUAL_DISK_ID, virtual_disk_id=value)
        return value

    def set_physical_sector_size(self, size: int) -> None:
        """Changes the :attr:`physical_sector_size` the disk reports to its
        user to `size` bytes, 512 or 4096 (VHDX only: a VHD stores none and
        always reports 512).

        Raises TypeError unless `size` is an int, ValueError unless it is
        512 or 4096; :class:`AccessDeniedError` when the disk is open
        read-only; :class:`InvalidHandleError` when it is closed; then what
        the API answers: :class:`UnsupportedOperationError` for a VHD.
        """
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int (512 or 4096), not {type(size).__name__}")
        if size not in _PHYSICAL_SECTOR_SIZES:
            raise ValueError(f"the physical sector size must be 512 or 4096, not {size}")
        self._check_writable("set_physical_sector_size")
        SetVirtualDiskInformation(self._handle, _SET_PHYSICAL_SECTOR_SIZE,
                                  vhd_physical_sector_size=size)

    def set_change_tracking(self, enabled: bool) -> None:
        """Turns resilient change tracking on or off (VHDX on Windows;
        :attr:`change_tracking` shows the state).

        Raises TypeError unless `enabled` is True or False;
        :class:`AccessDeniedError` when the disk is open read-only;
        :class:`InvalidHandleError` when it is closed; then what the API
        answers: the portable engine does not track changes, so enabling
        raises :class:`UnsupportedOperationError` there and disabling does nothing.
        """
        if enabled is not True and enabled is not False:
            raise TypeError(f"enabled must be True or False, not {enabled!r}")
        self._check_writable("set_change_tracking")
        SetVirtualDiskInformation(self._handle, _SET_CHANGE_TRACKING_STATE,
                                  change_tracking_enabled=enabled)

    # -- helpers ------------------------------------------------------------

    def _check_writable(self, name: str) -> None:
        """Raises, before any call, the error a change to a closed or
        read-only disk would meet, with a message that says what to do.
        (Once this passes, the handle is open, so the API's answers need
        no translation.)"""
        if self._handle.closed:
            raise self._closed_error(name)
        if self._read_only:
            error = AccessDeniedError(ERROR_ACCESS_DENIED, f"VirtualDisk.{name}", self.path)
            error.strerror = ("the virtual disk is open read-only; to change it, open it with "
                              "virtdisk.open(path, read_only=False) (ISO images are always "
                              "read-only)")
            raise error

    def _raise_unless_not_applicable(self, error: VirtualDiskError,
                                     version: GetVirtualDiskInfoVersion, name: str) -> None:
        """Returns when `error` means the question does not apply to this
        disk; otherwise re-raises it (or the closed-disk error when that is
        the cause)."""
        code = error.winerror
        if code in _NOT_APPLICABLE or (code == ERROR_INVALID_PARAMETER
                                       and version in _NEWER_ITEMS):
            return
        self._reraise(name)

    def _reraise(self, name: str) -> NoReturn:
        """Re-raises the exception being handled, or, when the disk is
        closed, an error that says so."""
        if self._handle.closed:
            raise self._closed_error(name) from None
        raise  # noqa: PLE0704 - called only from except blocks

    def _closed_error(self, name: str) -> InvalidHandleError:
        error = InvalidHandleError(ERROR_INVALID_HANDLE, f"VirtualDisk.{name}", self.path)
        error.strerror = "the virtual disk is closed"
        return error


def _checked_uuid(value: object, name: str) -> uuid.UUID:
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"{name} must be a uuid.UUID, not {type(value).__name__}")
    return value


def _checked_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be an int, not {type(depth).__name__}")
    if not 1 <= depth <= _DWORD_MAX:
        raise ValueError(f"depth must be 1 (this disk), 2 (its parent) or deeper in the "
                         f"chain, up to {_DWORD_MAX}, not {depth}")
    return depth


def _identifier_of(path: str) -> uuid.UUID:
    """The identifier of the VHD or VHDX at `path`, read without opening
    its own parents, as Microsoft's sample for SetVirtualDiskInformation
    does: a parent whose chain is broken still has an identity."""
    if _detected(path) is _ISO:
        raise ValueError(f"{path!r} is an ISO image, which cannot be the parent of a "
                         f"differencing disk")
    with open(path, get_info_only=True, no_parents=True) as parent:
        identifier: uuid.UUID = GetVirtualDiskInformation(parent.handle, _IDENTIFIER)
    return identifier


_new_disk = object.__new__
# Serialises the first content access of disks, so that two threads never
# attach one disk twice; held only while a disk attaches.
_ATTACH_LOCK: Final = threading.Lock()
