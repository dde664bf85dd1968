"""Creating a virtual disk: fixed, dynamic or differencing, VHD or VHDX,
empty or copied from another image.

:func:`create` checks its arguments against the rules CreateVirtualDisk
documents before it calls it, so that a mistake is a ValueError naming the
value and what is allowed instead of a bare ERROR_INVALID_PARAMETER:

* ``MaximumSize`` a multiple of 512 and of the logical sector size, at most
  2040 GiB for VHD and 64 TiB for VHDX, and 0 (the parent's size) for a
  differencing disk; with a source, 0 means the source's size;
* ``BlockSizeInBytes`` 0 for a fixed disk; 512 KiB or 2 MiB for a dynamic or
  differencing VHD; a power of two from 1 MiB to 256 MiB for VHDX;
* ``SectorSizeInBytes`` 512 for VHD, 512 or 4096 for VHDX, and the same for
  ``PhysicalSectorSizeInBytes``;
* ``ParentPath`` and ``SourcePath`` exclusive.

Fields left unset are 0, which lets the API apply Windows' defaults (a
dynamic VHDX has 32 MiB blocks, a differencing disk takes its parent's
block and sector sizes).  The call uses version 2 parameters with
``VirtualDiskAccessMask.NONE``, the only mask version 2 accepts, and a
specific storage type with the Microsoft vendor, so the format never depends
on how the API reads the extension.
"""

from __future__ import annotations

import os
import uuid
from typing import Final, Literal

from _virtdisk import (
    VHD_MAXIMUM_SIZE,
    VHDX_MAXIMUM_BLOCK_SIZE,
    VHDX_MAXIMUM_SIZE,
    VHDX_MINIMUM_BLOCK_SIZE,
    VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT,
    CreateVirtualDisk,
    CreateVirtualDiskFlag,
    VirtualDiskAccessMask,
    VirtualStorageType,
    VirtualStorageTypeDevice,
)

from .detect import parse_storage_type, storage_type_from_extension
from .disk import VirtualDisk
from .sizes import format_size, parse_size

__all__ = ["create", "DISK_TYPES", "MAXIMUM_SIZES"]

DiskType = Literal["fixed", "dynamic", "differencing"]

DISK_TYPES: Final = ("dynamic", "fixed", "differencing")
"""The values ``type=`` accepts."""

_VHD: Final = VirtualStorageTypeDevice.VHD
_VHDX: Final = VirtualStorageTypeDevice.VHDX
_FORMAT_NAMES: Final = {_VHD: "vhd", _VHDX: "vhdx"}

_KIB: Final = 1 << 10
_MIB: Final = 1 << 20

MAXIMUM_SIZES: Final = {_VHD: VHD_MAXIMUM_SIZE, _VHDX: VHDX_MAXIMUM_SIZE}
"""The largest virtual size of each format, in bytes (the engine's format
headers, exported by the extension)."""

_VHD_BLOCK_SIZES: Final = (512 * _KIB, 2 * _MIB)
_VHDX_BLOCK_SIZE_RANGE: Final = (VHDX_MINIMUM_BLOCK_SIZE, VHDX_MAXIMUM_BLOCK_SIZE)
_SECTOR_SIZES: Final = {_VHD: (512,), _VHDX: (512, 4096)}
_SIZE_UNIT: Final = 512

_STORAGE_TYPES: Final = {
    device: VirtualStorageType(device, VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    for device in (_VHD, _VHDX)
}
_ACCESS_NONE: Final = VirtualDiskAccessMask.NONE
_FLAGS_NONE: Final = CreateVirtualDiskFlag.NONE
_FLAGS_FIXED: Final = CreateVirtualDiskFlag.FULL_PHYSICAL_ALLOCATION
_VERSION: Final = 2


def create(
    path: str | os.PathLike[str],
    size: int | str | None = None,
    *,
    format: str | VirtualStorageTypeDevice | None = None,  # noqa: A002 - CreateVirtualDisk's terms
    type: DiskType | None = None,  # noqa: A002 - CreateVirtualDisk's terms
    parent: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    block_size: int | str | None = None,
    sector_size: int | None = None,
    physical_sector_size: int | None = None,
    identifier: uuid.UUID | None = None,
) -> VirtualDisk:
    """Creates a VHD or VHDX image at `path` and returns it open for
    reading and writing (close it, or use it in a ``with`` block).

    `size` is the virtual size: bytes as an int or a string with a unit
    (``"10GiB"``, ``"512M"``; see :func:`virtdisk.parse_size`).  It is
    required for a new empty disk, must be None for a differencing disk
    (which has its parent's size) and, with `source`, defaults to the
    source's size.

    `format` is ``"vhd"``, ``"vhdx"`` or a :class:`VirtualStorageTypeDevice`;
    None takes it from the extension (``.vhd``, ``.avhd``, ``.vhdx``,
    ``.avhdx``, any case).  `type` is ``"dynamic"`` (the default: the file
    grows as blocks are written), ``"fixed"`` (every block reserved up
    front) or ``"differencing"`` (a child of `parent`, which also implies
    it).  `source` copies the content of an existing image (of either
    format) into the new disk.

    `block_size` (int or human string), `sector_size` and
    `physical_sector_size` (bytes) default to what Windows chooses; they are
    checked against what the format allows.  `identifier` (a
    :class:`uuid.UUID`) is the UniqueId the disk is created with, what its
    :attr:`VirtualDisk.virtual_disk_id` reports (a VHD's footer id, a VHDX's
    Page 83 id); None lets the API pick a random one.

    Raises TypeError or ValueError, naming the value and what is allowed,
    before anything is created; then the :class:`VirtualDiskError` subclass
    for the code the API returns, e.g. :class:`ImageExistsError` (a
    FileExistsError) when `path` exists, which is never overwritten.  A
    create that fails leaves no file behind.
    """
    name = _path_text(path, "path")
    parent_name = None if parent is None else _path_text(parent, "parent")
    source_name = None if source is None else _path_text(source, "source")
    if parent_name is not None and source_name is not None:
        raise ValueError("parent and source are exclusive: a differencing disk reads its "
                         "parent's data, a copy holds its own")
    device = _device(name, format)
    disk_type = _disk_type(type, parent_name)
    logical = _sector_size(sector_size, device, "sector_size")
    physical = _sector_size(physical_sector_size, device, "physical_sector_size")
    maximum_size = _maximum_size(size, device, disk_type, source_name, logical)
    block = _block_size(block_size, device, disk_type)
    if identifier is not None and not isinstance(identifier, uuid.UUID):
        raise TypeError(f"identifier must be a uuid.UUID or None, "
                        f"not {_type_name(identifier)}")

    handle = CreateVirtualDisk(
        _STORAGE_TYPES[device], name, _ACCESS_NONE,
        _FLAGS_FIXED if disk_type == "fixed" else _FLAGS_NONE, _VERSION,
        unique_id=identifier, maximum_size=maximum_size, block_size=block,
        sector_size=logical, physical_sector_size=physical,
        parent_path=parent_name, source_path=source_name)
    disk = VirtualDisk(handle)
    disk._read_only = False  # CreateVirtualDisk's handle is open for writing
    return disk


def _type_name(value: object) -> str:
    """The name of `value`'s class, for messages (``type`` is a parameter
    of :func:`create`)."""
    return value.__class__.__name__


def _path_text(value: object, name: str) -> str:
    try:
        text = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str or os.PathLike[str], not {_type_name(value)}")
    return text


def _device(path: str, value: object) -> VirtualStorageTypeDevice:
    """The format to create: `value` if given, else the extension's."""
    allowed = "'vhd' or 'vhdx'"
    extension_device = storage_type_from_extension(path)
    if value is None:
        if extension_device is not None and extension_device in _FORMAT_NAMES:
            return extension_device
        extension = os.path.splitext(path)[1]
        shown = repr(extension) if extension else "no extension"
        raise ValueError(
            f"cannot tell the format from {shown} in {path!r}: name the file .vhd, .avhd, "
            f".vhdx or .avhdx, or pass format={allowed}")
    try:
        device = parse_storage_type(value)
    except (TypeError, ValueError):
        device = None
    if device is None or device not in _FORMAT_NAMES:
        raise ValueError(f"format must be {allowed} (or VirtualStorageTypeDevice.VHD, "
                         f".VHDX), not {value!r}: only VHD and VHDX images can be created")
    if extension_device is not None and extension_device is not device:
        # open() decides by the extension first: a mismatch would make the
        # new disk unopenable by name.
        raise ValueError(
            f"format={_FORMAT_NAMES[device]!r} contradicts the extension of {path!r}, "
            f"which names {extension_device.name.lower()}")
    return device


def _disk_type(value: object, parent: str | None) -> DiskType:
    if value is None:
        return "differencing" if parent is not None else "dynamic"
    if value not in DISK_TYPES:
        allowed = ", ".join(repr(name) for name in DISK_TYPES)
        raise ValueError(f"type must be one of {allowed}, not {value!r}")
    if value == "differencing":
        if parent is None:
            raise ValueError("type='differencing' needs parent= (the disk it records changes "
                             "to)")
        return "differencing"
    if parent is not None:
        raise ValueError(f"type={value!r} cannot have a parent: a disk with parent= is "
                         f"differencing (leave type= out or pass type='differencing')")
    return "fixed" if value == "fixed" else "dynamic"


def _maximum_size(value: int | str | None, device: VirtualStorageTypeDevice,
                  disk_type: DiskType, source: str | None, sector_size: int) -> int:
    """MaximumSize: the checked virtual size, 0 for "the parent's" or "the
    source's"."""
    if disk_type == "differencing":
        if value is not None:
            raise ValueError(f"size must be None for a differencing disk, which has its "
                             f"parent's size, not {value!r}")
        return 0
    if value is None:
        if source is not None:
            return 0
        raise ValueError("size is required for a new disk (e.g. size='10GiB'); only a "
                         "differencing disk (parent=) or a copy (source=) can leave it out")
    size = parse_size(value)
    shown = _shown_size(value, size)
    if size == 0:
        raise ValueError(f"size must be greater than 0, not {shown}")
    unit = max(_SIZE_UNIT, sector_size)
    if size % unit:
        lower = size - size % unit
        nearest = f"{lower} or {lower + unit}" if lower else str(unit)
        raise ValueError(
            f"size must be a multiple of {unit} bytes (the sector size), not {shown}; "
            f"{nearest} would do")
    limit = MAXIMUM_SIZES[device]
    if size > limit:
        raise ValueError(f"size {shown} exceeds the {_FORMAT_NAMES[device].upper()} limit "
                         f"of {_exact_size_name(limit)} ({limit} bytes)")
    return size


def _exact_size_name(size: int) -> str:
    """`size` in the largest binary unit that divides it: "2040 GiB"."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def _shown_size(value: int | str, size: int) -> str:
    """A size for a message: as the caller wrote it, and in bytes or units."""
    if isinstance(value, str):
        return f"{value!r} ({size} bytes)"
    return str(size) if size < _KIB else f"{size} ({format_size(size)})"


def _block_size(value: int | str | None, device: VirtualStorageTypeDevice,
                disk_type: DiskType) -> int:
    """BlockSizeInBytes: 0 for the default, else a size the format allows."""
    if value is None:
        return 0
    size = parse_size(value)
    if size == 0:
        return 0
    shown = _shown_size(value, size)
    if disk_type == "fixed":
        raise ValueError(f"a fixed disk has no blocks: block_size must be None, not {shown}")
    if device is _VHD:
        if size not in _VHD_BLOCK_SIZES:
            raise ValueError(f"block_size of a VHD must be 512 KiB ({512 * _KIB}) or 2 MiB "
                             f"({2 * _MIB}), not {shown}")
        return size
    low, high = _VHDX_BLOCK_SIZE_RANGE
    if not low <= size <= high or size & (size - 1):
        raise ValueError(f"block_size of a VHDX must be a power of two from 1 MiB ({low}) to "
                         f"256 MiB ({high}), not {shown}")
    return size


def _sector_size(value: object, device: VirtualStorageTypeDevice, name: str) -> int:
    """SectorSizeInBytes or PhysicalSectorSizeInBytes: 0 for the default."""
    if value is None:
        return 0
    allowed = _SECTOR_SIZES[device]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {_type_name(value)}")
    if value not in allowed:
        choices = " or ".join(str(size) for size in allowed)
        raise ValueError(f"{name} of a {_FORMAT_NAMES[device].upper()} must be {choices}, "
                         f"not {value}")
    return value
