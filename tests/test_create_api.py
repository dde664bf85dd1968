"""CreateVirtualDisk's argument rules, each with its exact code.

The rules are those of the CreateVirtualDisk and CREATE_VIRTUAL_DISK_PARAMETERS
pages and the SDK samples (research/virtdisk-api.md §5 item 9); the codes for
what those pages leave open are the engine's documented choices
(src/vdengine/create.c).  Every refused request leaves no file behind.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
from virtdisk.errors import VirtualDiskError

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="the portable engine's documented answers")

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_VHD_INVALID_SIZE = 0xC03A0012
ERROR_VIRTDISK_PROVIDER_NOT_FOUND = 0xC03A0014

MICROSOFT = vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
VHD = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHD, MICROSOFT)
VHDX = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX, MICROSOFT)
ISO = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.ISO, MICROSOFT)
VHDSET = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDSET, MICROSOFT)
UNKNOWN = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.UNKNOWN,
                                vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
Flag = vd.CreateVirtualDiskFlag
Mask = vd.VirtualDiskAccessMask
Info = vd.GetVirtualDiskInfoVersion
FIXED = Flag.FULL_PHYSICAL_ALLOCATION


def attempt(path: Path, storage_type: Any = "auto", mask: int = 0, flags: int = 0,
            version: int | None = 2, **fields: Any) -> int:
    """The Win32 code CreateVirtualDisk answers (0 on success, handle closed)."""
    if storage_type == "auto":
        storage_type = VHDX if path.suffix == ".vhdx" else VHD
    try:
        vd.CreateVirtualDisk(storage_type, path, mask, vd.CreateVirtualDiskFlag(flags), version, **fields).close()
    except VirtualDiskError as error:
        return error.winerror
    return 0


@pytest.fixture
def vhdx_parent(tmp_path: Path) -> Path:
    path = tmp_path / "parent.vhdx"
    assert attempt(path, maximum_size=64 * MiB) == 0
    return path


@pytest.fixture
def vhd_parent(tmp_path: Path) -> Path:
    path = tmp_path / "parent.vhd"
    assert attempt(path, maximum_size=64 * MiB) == 0
    return path


INVALID = [
    # (name, target file name, arguments)
    ("null storage type", "a.vhd", {"storage_type": None, "maximum_size": MiB}),
    ("null path", None, {"maximum_size": MiB}),
    ("null parameters", "a.vhd", {"version": None}),
    ("mask bits outside ALL", "a.vhd", {"version": 1, "mask": 0x1, "maximum_size": MiB}),
    ("unknown flag", "a.vhd", {"flags": 0x800, "maximum_size": MiB}),
    ("version 0", "a.vhd", {"version": 0, "maximum_size": MiB}),
    ("version 5", "a.vhd", {"version": 5, "maximum_size": MiB}),
    ("version 2 with a mask", "a.vhd", {"mask": Mask.ATTACH_RO, "maximum_size": MiB}),
    ("version 3 with a mask", "a.vhdx", {"version": 3, "mask": Mask.ALL, "maximum_size": MiB}),
    ("version 1 for VHDX", "a.vhdx", {"version": 1, "maximum_size": MiB}),
    ("size 0 without parent or source", "a.vhd", {}),
    ("size 0 without parent or source, VHDX", "a.vhdx", {}),
    ("size not a multiple of 512", "a.vhd", {"maximum_size": MiB + 100}),
    ("size not a multiple of 512, VHDX", "a.vhdx", {"maximum_size": MiB - 1}),
    ("size not a multiple of the 4096 sector", "a.vhdx",
     {"maximum_size": MiB + 512, "sector_size": 4096}),
    ("fixed VHD with a block size", "a.vhd",
     {"flags": FIXED, "maximum_size": 8 * MiB, "block_size": 2 * MiB}),
    ("fixed VHDX with a block size", "a.vhdx",
     {"flags": FIXED, "maximum_size": 8 * MiB, "block_size": 32 * MiB}),
    ("VHD block 1 MiB", "a.vhd", {"maximum_size": 8 * MiB, "block_size": MiB}),
    ("VHD block 4 MiB", "a.vhd", {"maximum_size": 8 * MiB, "block_size": 4 * MiB}),
    ("VHD block 4 KiB", "a.vhd", {"maximum_size": 8 * MiB, "block_size": 4096}),
    ("VHDX block 512 KiB", "a.vhdx", {"maximum_size": 8 * MiB, "block_size": 512 * 1024}),
    ("VHDX block 3 MiB", "a.vhdx", {"maximum_size": 8 * MiB, "block_size": 3 * MiB}),
    ("VHDX block 512 MiB", "a.vhdx", {"maximum_size": 8 * MiB, "block_size": 512 * MiB}),
    ("VHD sector 4096", "a.vhd", {"maximum_size": 8 * MiB, "sector_size": 4096}),
    ("VHD version 1 sector 4096", "a.vhd",
     {"version": 1, "maximum_size": 8 * MiB, "sector_size": 4096}),
    ("VHD physical sector 4096", "a.vhd", {"maximum_size": 8 * MiB, "physical_sector_size": 4096}),
    ("VHDX sector 1024", "a.vhdx", {"maximum_size": 8 * MiB, "sector_size": 1024}),
    ("VHDX physical sector 2048", "a.vhdx",
     {"maximum_size": 8 * MiB, "physical_sector_size": 2048}),
]


@pytest.mark.parametrize("name, target, fields", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_parameter(tmp_path: Path, name: str, target: str | None,
                           fields: dict[str, Any]) -> None:
    path = tmp_path / (target or "a.vhd")
    arguments = dict(fields)
    storage_type = arguments.pop("storage_type", "auto")
    if target is None:
        code = attempt_null_path(storage_type, **arguments)
    else:
        code = attempt(path, storage_type, **arguments)
    assert code == ERROR_INVALID_PARAMETER, name
    assert list(tmp_path.iterdir()) == []


def attempt_null_path(storage_type: Any, **fields: Any) -> int:
    try:
        vd.CreateVirtualDisk(VHD if storage_type == "auto" else storage_type, None,
                             fields.pop("mask", 0), fields.pop("flags", 0),
                             fields.pop("version", 2), **fields).close()
    except VirtualDiskError as error:
        return error.winerror
    return 0


@pytest.mark.parametrize("suffix", [".vhd", ".vhdx"])
def test_parent_rules(tmp_path: Path, suffix: str, vhdx_parent: Path, vhd_parent: Path) -> None:
    parent = vhd_parent if suffix == ".vhd" else vhdx_parent
    before = set(tmp_path.iterdir())
    child = tmp_path / f"child{suffix}"
    # A child has its parent's size: MaximumSize must be 0.
    assert attempt(child, parent_path=parent, maximum_size=64 * MiB) == ERROR_INVALID_PARAMETER
    # A differencing disk cannot be fixed.
    assert attempt(child, flags=FIXED, parent_path=parent) == ERROR_INVALID_PARAMETER
    # ParentPath and SourcePath exclude each other.
    assert attempt(child, parent_path=parent, source_path=parent) == ERROR_INVALID_PARAMETER
    assert set(tmp_path.iterdir()) == before
    assert attempt(child, parent_path=parent) == 0


def test_vhdx_child_keeps_the_parents_logical_sector(tmp_path: Path) -> None:
    parent = tmp_path / "parent.vhdx"
    assert attempt(parent, maximum_size=64 * MiB, sector_size=4096) == 0
    child = tmp_path / "child.vhdx"
    assert attempt(child, parent_path=parent, sector_size=512) == ERROR_INVALID_PARAMETER
    assert not child.exists()
    assert attempt(child, parent_path=parent) == 0
    with vd.OpenVirtualDisk(VHDX, child, Mask.NONE, 0, 2, read_only=True) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.SIZE).sector_size == 4096


def test_source_larger_than_maximum_size(tmp_path: Path, vhd_parent: Path) -> None:
    target = tmp_path / "copy.vhd"
    assert attempt(target, source_path=vhd_parent, maximum_size=32 * MiB) == ERROR_INVALID_PARAMETER
    assert not target.exists()


@pytest.mark.parametrize("target, size", [("a.vhd", 2041 * GiB), ("a.vhdx", 64 * TiB + MiB)])
def test_size_limits(tmp_path: Path, target: str, size: int) -> None:
    assert attempt(tmp_path / target, maximum_size=size) == ERROR_VHD_INVALID_SIZE
    assert list(tmp_path.iterdir()) == []


def test_vhdx_size_limit_is_inclusive(tmp_path: Path) -> None:
    assert attempt(tmp_path / "a.vhdx", maximum_size=64 * TiB) == 0


@pytest.mark.parametrize("storage_type, target, code", [
    (ISO, "a.iso", ERROR_NOT_SUPPORTED),
    (UNKNOWN, "a.iso", ERROR_NOT_SUPPORTED),
    (VHDSET, "a.vhds", ERROR_VIRTDISK_PROVIDER_NOT_FOUND),
    (UNKNOWN, "a.img", ERROR_VIRTDISK_PROVIDER_NOT_FOUND),
    (UNKNOWN, "noextension", ERROR_VIRTDISK_PROVIDER_NOT_FOUND),
    (vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHD, uuid.uuid4()), "a.vhd",
     ERROR_VIRTDISK_PROVIDER_NOT_FOUND),
])
def test_storage_types(tmp_path: Path, storage_type: Any, target: str, code: int) -> None:
    assert attempt(tmp_path / target, storage_type, maximum_size=8 * MiB) == code
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", [Flag.CREATE_BACKING_STORAGE,
                                  Flag.USE_CHANGE_TRACKING_SOURCE_LIMIT,
                                  Flag.PRESERVE_PARENT_CHANGE_TRACKING_STATE,
                                  Flag.VHD_SET_USE_ORIGINAL_BACKING_STORAGE,
                                  Flag.PMEM_COMPATIBLE])
def test_flags_for_features_the_engine_lacks(tmp_path: Path, flag: int) -> None:
    assert attempt(tmp_path / "a.vhdx", flags=flag, maximum_size=8 * MiB) == ERROR_NOT_SUPPORTED
    assert list(tmp_path.iterdir()) == []


def test_version_3_and_4_fields_for_features_the_engine_lacks(tmp_path: Path) -> None:
    path = tmp_path / "a.vhdx"
    assert attempt(path, version=3, maximum_size=8 * MiB,
                   source_limit_path=tmp_path / "x.vhdx") == ERROR_NOT_SUPPORTED
    assert attempt(path, version=4, maximum_size=8 * MiB, data_alignment=MiB) == ERROR_NOT_SUPPORTED
    assert list(tmp_path.iterdir()) == []
    assert attempt(path, version=4, maximum_size=8 * MiB) == 0


def test_flags_without_effect_are_accepted(tmp_path: Path, vhd_parent: Path) -> None:
    flags = (Flag.PREVENT_WRITES_TO_SOURCE_DISK | Flag.DO_NOT_COPY_METADATA_FROM_PARENT
             | Flag.SUPPORT_COMPRESSED_VOLUMES | Flag.SUPPORT_SPARSE_FILES_ANY_FS)
    assert attempt(tmp_path / "copy.vhd", flags=flags, source_path=vhd_parent) == 0


@pytest.mark.parametrize("target, flags, parent, block", [
    ("d.vhd", 0, None, 2 * MiB),
    ("f.vhd", FIXED, None, 0),
    ("d.vhdx", 0, None, 32 * MiB),
    ("f.vhdx", FIXED, None, 0),
    ("c.vhdx", 0, "parent.vhdx", 2 * MiB),
])
def test_block_size_defaults(tmp_path: Path, vhdx_parent: Path, target: str, flags: int,
                             parent: str | None, block: int) -> None:
    path = tmp_path / target
    fields: dict[str, Any] = {"parent_path": vhdx_parent} if parent else {"maximum_size": 64 * MiB}
    assert attempt(path, flags=flags, **fields) == 0
    storage_type = VHDX if target.endswith(".vhdx") else VHD
    with vd.OpenVirtualDisk(storage_type, path, Mask.NONE, 0, 2, read_only=True) as handle:
        size = vd.GetVirtualDiskInformation(handle, Info.SIZE)
    assert size.block_size == block
    assert size.sector_size == 512


def test_vhd_child_of_a_vhdx_parent_is_not_supported(tmp_path: Path, vhdx_parent: Path) -> None:
    child = tmp_path / "child.vhd"
    assert attempt(child, parent_path=vhdx_parent) == ERROR_NOT_SUPPORTED
    assert not child.exists()
    # The other way round is a chain Windows builds too.
    vhd_base = tmp_path / "base.vhd"
    assert attempt(vhd_base, maximum_size=64 * MiB) == 0
    assert attempt(tmp_path / "child.vhdx", parent_path=vhd_base) == 0
