"""The same mistakes raise the same exception classes with the same Win32
codes on every implementation: the engine here, VirtDisk.dll in the Windows
wheel job.  Each case is a rule Microsoft documents for OpenVirtualDisk (the
seed page, REFERENCE.md §1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
import iso_builder
from virtdisk import errors

# Not an OpenVirtualDiskFlag, so the stubs reject it; the call must still fail cleanly.
UNKNOWN_FLAG: Any = 0x80000000

UNKNOWN = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.UNKNOWN,
                                vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
ISO = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.ISO, vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
NONE = vd.VirtualDiskAccessMask.NONE
READ = vd.VirtualDiskAccessMask.READ
ERROR_FILE_CORRUPT = 1392


def open_iso(path: Path) -> None:
    vd.OpenVirtualDisk(ISO, path, READ, 0, 1).close()


def iso_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "image.iso"
    path.write_bytes(data)
    return path


VALID_ISO = iso_builder.build()
VHDX = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX, vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
SET = vd.SetVirtualDiskInfoVersion


def set_on_new_disk(directory: Path, read_only: bool, version: int, sector_size: int) -> None:
    """Creates a small VHDX, opens it and sets its physical sector size."""
    path = directory / "set.vhdx"
    vd.CreateVirtualDisk(VHDX, path, NONE, 0, 2, maximum_size=8 << 20).close()
    with vd.OpenVirtualDisk(VHDX, path, NONE, 0, 2, read_only=read_only) as handle:
        vd.SetVirtualDiskInformation(handle, version, vhd_physical_sector_size=sector_size)

# (id, call given a scratch directory, exception class, Win32 code)
CASES: list[tuple[str, Callable[[Path], object], type[BaseException], int]] = [
    ("null storage type", lambda d: vd.OpenVirtualDisk(None, d / "x.vhdx", NONE, 0, 2),
     errors.InvalidParameterError, 87),
    ("null path", lambda d: vd.OpenVirtualDisk(UNKNOWN, None, NONE, 0, 2),
     errors.InvalidParameterError, 87),
    ("access bits outside ALL", lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "x.vhdx", 0x80000000, 0, 1),
     errors.InvalidParameterError, 87),
    ("unknown flag bit", lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "x.vhdx", NONE, UNKNOWN_FLAG, 2),
     errors.InvalidParameterError, 87),
    ("unknown parameters version", lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "x.vhdx", NONE, 0, 99),
     errors.InvalidParameterError, 87),
    ("version 2 with an access mask",
     lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "x.vhdx", vd.VirtualDiskAccessMask.ATTACH_RO, 0, 2),
     errors.InvalidParameterError, 87),
    ("missing file", lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "missing.vhdx", NONE, 0, 2),
     errors.ImageNotFoundError, 2),
    ("missing directory",
     lambda d: vd.OpenVirtualDisk(UNKNOWN, d / "no-such-dir" / "x.vhdx", NONE, 0, 2),
     errors.ImageNotFoundError, 3),
    ("ISO under 34816 bytes", lambda d: open_iso(iso_file(d, VALID_ISO[:34816 - 2048])),
     errors.CorruptImageError, ERROR_FILE_CORRUPT),
    ("ISO size not a multiple of 2048", lambda d: open_iso(iso_file(d, VALID_ISO + b"\0")),
     errors.CorruptImageError, ERROR_FILE_CORRUPT),
    # SetVirtualDiskInformation: a handle opened read-only may not change
    # the disk; the physical sector size is 512 or 4096 (Set-VHD).
    ("set on a read-only handle",
     lambda d: set_on_new_disk(d, True, SET.PHYSICAL_SECTOR_SIZE, 512),
     errors.AccessDeniedError, 5),
    ("physical sector size 1024",
     lambda d: set_on_new_disk(d, False, SET.PHYSICAL_SECTOR_SIZE, 1024),
     errors.InvalidParameterError, 87),
    ("ISO without a volume descriptor", lambda d: open_iso(iso_file(d, bytes(len(VALID_ISO)))),
     errors.CorruptImageError, ERROR_FILE_CORRUPT),
]


@pytest.mark.parametrize(("call", "expected_class", "code"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_mistake_raises_the_documented_class(
    tmp_path: Path, call: Callable[[Path], object], expected_class: type[BaseException], code: int
) -> None:
    with pytest.raises(expected_class) as caught:
        call(tmp_path)
    assert isinstance(caught.value, errors.VirtualDiskError)
    assert caught.value.winerror == code


def test_a_valid_iso_opens(tmp_path: Path) -> None:
    open_iso(iso_file(tmp_path, VALID_ISO))
    # The seed's size rule is "at least 17 sectors": exactly 34816 bytes with
    # a valid descriptor at sector 16 opens.
    open_iso(iso_file(tmp_path, VALID_ISO[:34816]))
