"""Which kind of image a file is: ISO, VHD or VHDX.

OpenVirtualDisk needs the answer before it is called, both in
VIRTUAL_STORAGE_TYPE and in the choice of parameters (an ISO opens only with
version 1 and read access, a VHD or VHDX best with version 2).  Windows,
given ``VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN`` with the unknown vendor,
decides by the file name's extension, ignoring case: ``.iso``; ``.vhd`` and
``.avhd`` (a Hyper-V checkpoint); ``.vhdx`` and ``.avhdx``.  This module
does the same and, where the extension names no format, reads the file's
signature, which is what a file renamed to ``.img`` or ``.bin`` still
carries:

* ``vhdxfile`` at byte 0 (the VHDX file type identifier, [MS-VHDX] 2.2.1);
* ``conectix`` at byte 0 (the footer copy of a dynamic or differencing VHD)
  or in the footer at the end of the file (every VHD; 512 bytes from the
  end, or 511 for images made before Virtual PC 2004);
* an ISO 9660 or UDF volume descriptor identifier at byte 32,769
  (``CD001``, ``BEA01``, ``NSR02``, ``NSR03``, ``BOOT2``, ``CDW02``,
  ``TEA01``) or High Sierra's ``CDROM`` at byte 32,777.

At most three small reads are made, and none when the extension decides.
"""

from __future__ import annotations

import builtins
import os

from _virtdisk import (
    VHD_FOOTER_COOKIE,
    VHD_FOOTER_SIZE,
    VHDX_FILE_SIGNATURE,
    VirtualStorageTypeDevice,
)

__all__ = [
    "EXTENSIONS",
    "STORAGE_TYPE_NAMES",
    "detect_storage_type",
    "parse_storage_type",
    "storage_type_from_extension",
    "storage_type_from_signature",
]

EXTENSIONS: dict[str, VirtualStorageTypeDevice] = {
    ".iso": VirtualStorageTypeDevice.ISO,
    ".vhd": VirtualStorageTypeDevice.VHD,
    ".avhd": VirtualStorageTypeDevice.VHD,
    ".vhdx": VirtualStorageTypeDevice.VHDX,
    ".avhdx": VirtualStorageTypeDevice.VHDX,
}
"""Extensions Windows maps to a storage type, in lower case."""

STORAGE_TYPE_NAMES: dict[str, VirtualStorageTypeDevice] = {
    "iso": VirtualStorageTypeDevice.ISO,
    "vhd": VirtualStorageTypeDevice.VHD,
    "vhdx": VirtualStorageTypeDevice.VHDX,
}
"""The names ``storage_type=`` accepts, in lower case."""

_VHDX_SIGNATURE = VHDX_FILE_SIGNATURE
_VHD_COOKIE = VHD_FOOTER_COOKIE
_VHD_FOOTER_SIZE = VHD_FOOTER_SIZE
_ISO_DESCRIPTOR_OFFSET = 16 * 2048
_ISO_IDENTIFIERS = frozenset({b"CD001", b"BEA01", b"BOOT2", b"CDW02", b"NSR02", b"NSR03",
                              b"TEA01"})
_HIGH_SIERRA_IDENTIFIER = b"CDROM"


def storage_type_from_extension(path: str | os.PathLike[str]) -> VirtualStorageTypeDevice | None:
    """The storage type the file name's extension names (case-insensitive),
    or None; the file is not touched."""
    name = os.fspath(path)
    dot = name.rfind(".")
    if dot < 0:
        return None
    # A dot in a directory name leaves a separator in the "extension", which
    # then matches nothing.
    return EXTENSIONS.get(name[dot:].lower())


def storage_type_from_signature(path: str | os.PathLike[str]) -> VirtualStorageTypeDevice | None:
    """The storage type the file's content shows, or None when it carries no
    VHDX, VHD, ISO 9660 or UDF signature.  Raises OSError when the file
    cannot be read."""
    with builtins.open(path, "rb", buffering=0) as file:
        head = file.read(len(_VHDX_SIGNATURE))
        if head == _VHDX_SIGNATURE:
            return VirtualStorageTypeDevice.VHDX
        if head == _VHD_COOKIE:
            return VirtualStorageTypeDevice.VHD
        size = file.seek(0, os.SEEK_END)
        if size >= _VHD_FOOTER_SIZE:
            file.seek(size - _VHD_FOOTER_SIZE)
            tail = file.read(len(_VHD_COOKIE) + 1)
            if tail.startswith(_VHD_COOKIE) or tail[1:] == _VHD_COOKIE:
                return VirtualStorageTypeDevice.VHD
        if size >= _ISO_DESCRIPTOR_OFFSET + 14:
            file.seek(_ISO_DESCRIPTOR_OFFSET)
            descriptor = file.read(14)
            if descriptor[1:6] in _ISO_IDENTIFIERS or descriptor[9:14] == _HIGH_SIERRA_IDENTIFIER:
                return VirtualStorageTypeDevice.ISO
    return None


def detect_storage_type(path: str | os.PathLike[str]) -> VirtualStorageTypeDevice | None:
    """The storage type of the image at `path`: by extension as Windows
    decides, else by signature; None when neither tells (or the file cannot
    be read, which the open that follows will report)."""
    device = storage_type_from_extension(path)
    if device is not None:
        return device
    try:
        return storage_type_from_signature(path)
    except OSError:
        return None


def parse_storage_type(value: object) -> VirtualStorageTypeDevice | None:
    """Validates a ``storage_type=`` argument: ``"iso"``, ``"vhd"``,
    ``"vhdx"`` (any case), a :class:`VirtualStorageTypeDevice`, or None.
    ``VirtualStorageTypeDevice.UNKNOWN`` means the same as None: detect."""
    if value is None or value is VirtualStorageTypeDevice.UNKNOWN:
        return None
    if isinstance(value, VirtualStorageTypeDevice):
        return value
    if isinstance(value, str):
        device = STORAGE_TYPE_NAMES.get(value.lower())
        if device is not None:
            return device
        raise ValueError(_storage_type_message(value))
    raise TypeError(_storage_type_message(value))


def _storage_type_message(value: object) -> str:
    names = ", ".join(repr(name) for name in STORAGE_TYPE_NAMES)
    return f"storage_type must be one of {names} or a VirtualStorageTypeDevice, not {value!r}"
