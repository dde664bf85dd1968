"""CreateVirtualDisk making VHD files, checked by readers nobody here wrote.

qemu-img (info, compare), vhdiinfo (libvhdi) and 7zz (which follows VHD
parent locators) read every image the engine writes; the expected sizes,
identifiers and contents are the requests themselves or what qemu-io wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
from virtdisk.errors import ImageExistsError, VirtualDiskError

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="compares the portable engine's files with Linux tools")

MiB = 1 << 20
GiB = 1 << 30
ERROR_PATH_NOT_FOUND = 3
ERROR_FILE_EXISTS = 80
ERROR_VHD_INVALID_SIZE = 0xC03A0012

VHD = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHD,
                            vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
UNKNOWN = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.UNKNOWN,
                                vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
Flag = vd.CreateVirtualDiskFlag
Info = vd.GetVirtualDiskInfoVersion
FIXED = Flag.FULL_PHYSICAL_ALLOCATION
FIXED_SPARSE = Flag.FULL_PHYSICAL_ALLOCATION | Flag.SPARSE_FILE


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed")
    return found


def run(*args: str | Path) -> str:
    return subprocess.run([str(arg) for arg in args], check=True, capture_output=True,
                          text=True).stdout


def create(path: Path, size: int = 0, flags: int = 0, **fields: Any) -> None:
    handle = vd.CreateVirtualDisk(fields.pop("storage_type", VHD), path, 0, vd.CreateVirtualDiskFlag(flags),
                                  fields.pop("version", 2), maximum_size=size, **fields)
    handle.close()


def qemu_size(path: Path, fmt: str = "vpc") -> int:
    info = json.loads(run(tool("qemu-img"), "info", "-f", fmt, "--output=json", path))
    return int(info["virtual-size"])


def vhdiinfo(path: Path) -> dict[str, str]:
    fields = {}
    for line in run(tool("vhdiinfo"), path).splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    return fields


def media_size(fields: dict[str, str]) -> int:
    match = re.search(r"\((\d+) bytes\)", fields["Media size"])
    assert match is not None, fields
    return int(match.group(1))


def blank(directory: Path, size: int) -> Path:
    path = directory / f"blank-{size}.raw"
    with open(path, "wb") as raw:
        raw.truncate(size)
    return path


def compare(first: Path, first_fmt: str, second: Path, second_fmt: str) -> None:
    result = subprocess.run([tool("qemu-img"), "compare", "-f", first_fmt, "-F", second_fmt,
                             str(first), str(second)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- fixed and dynamic

@pytest.mark.parametrize("flags, kind", [(0, "Dynamic"), (FIXED, "Fixed"),
                                         (FIXED_SPARSE, "Fixed")])
@pytest.mark.parametrize("size", [10 * MiB, 127 * MiB, 1000 * MiB])
def test_sizes_are_exact_for_qemu_and_libvhdi(tmp_path: Path, flags: int, kind: str,
                                              size: int) -> None:
    """Whole-MiB sizes whose CHS geometry rounds down (10 MiB is 301/4/17,
    10,479,616 bytes): qemu and libvhdi both read the requested size."""
    path = tmp_path / "new.vhd"
    identifier = uuid.uuid4()
    create(path, size, flags, unique_id=identifier)
    assert qemu_size(path) == size
    fields = vhdiinfo(path)
    assert media_size(fields) == size
    assert fields["Disk type"] == kind
    assert uuid.UUID(fields["Identifier"]) == identifier
    compare(path, "vpc", blank(tmp_path, size), "raw")


def test_zero_unique_id_gets_a_random_version_4_id(tmp_path: Path) -> None:
    first, second = tmp_path / "a.vhd", tmp_path / "b.vhd"
    create(first, 8 * MiB)
    create(second, 8 * MiB)
    ids = [uuid.UUID(vhdiinfo(path)["Identifier"]) for path in (first, second)]
    assert ids[0] != ids[1]
    assert all(identifier.version == 4 for identifier in ids)


def test_dynamic_block_sizes(tmp_path: Path) -> None:
    for block in (512 * 1024, 2 * MiB):
        path = tmp_path / f"b{block}.vhd"
        create(path, 64 * MiB, block_size=block)
        with vd.OpenVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.NONE, 0, 2,
                                read_only=True) as handle:
            assert vd.GetVirtualDiskInformation(handle, Info.SIZE).block_size == block
        # qemu-io writes into the new blocks and reads them back: the layout
        # (BAT, bitmaps) is one qemu can extend.
        run(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0x3c 5M 1M", path)
        raw = tmp_path / f"b{block}.raw"
        run(tool("qemu-img"), "convert", "-f", "vpc", "-O", "raw", path, raw)
        with open(raw, "rb") as data:
            data.seek(5 * MiB)
            assert data.read(MiB) == b"\x3c" * MiB


def test_full_allocation_reserves_the_space(tmp_path: Path) -> None:
    path = tmp_path / "fixed.vhd"
    create(path, 64 * MiB, FIXED)
    assert path.stat().st_size == 64 * MiB + 512
    assert path.stat().st_blocks * 512 >= 64 * MiB


def test_fixed_2040_gib_is_instant_and_sparse(tmp_path: Path) -> None:
    path = tmp_path / "big.vhd"
    started = time.perf_counter()
    create(path, 2040 * GiB, FIXED_SPARSE)
    assert time.perf_counter() - started < 0.5
    assert path.stat().st_size == 2040 * GiB + 512
    assert path.stat().st_blocks * 512 <= 1 * MiB
    assert qemu_size(path) == 2040 * GiB
    assert media_size(vhdiinfo(path)) == 2040 * GiB


def test_dynamic_2040_gib(tmp_path: Path) -> None:
    path = tmp_path / "big.vhd"
    create(path, 2040 * GiB)
    assert qemu_size(path) == 2040 * GiB
    assert media_size(vhdiinfo(path)) == 2040 * GiB


@pytest.mark.parametrize("flags", [0, FIXED_SPARSE])
def test_above_2040_gib_is_invalid_size_and_leaves_nothing(tmp_path: Path, flags: int) -> None:
    path = tmp_path / "big.vhd"
    with pytest.raises(VirtualDiskError) as caught:
        create(path, 2041 * GiB, flags)
    assert caught.value.winerror == ERROR_VHD_INVALID_SIZE
    assert not path.exists()


def test_storage_type_unknown_goes_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "by-extension.VHD"
    create(path, 16 * MiB, storage_type=UNKNOWN)
    assert vhdiinfo(path)["Format"].startswith("VHD")


def test_version_1_creates_a_vhd(tmp_path: Path) -> None:
    path = tmp_path / "v1.vhd"
    handle = vd.CreateVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.ALL, 0, 1,
                                  maximum_size=32 * MiB)
    with handle:
        assert vd.GetVirtualDiskInformation(handle, Info.SIZE).virtual_size == 32 * MiB
    assert qemu_size(path) == 32 * MiB


# --------------------------------------------------------------------------- the file's life

def test_existing_file_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "there.vhd"
    path.write_bytes(b"precious" * 100)
    with pytest.raises(ImageExistsError) as caught:
        create(path, 16 * MiB)
    assert isinstance(caught.value, FileExistsError)
    assert caught.value.winerror == ERROR_FILE_EXISTS
    assert path.read_bytes() == b"precious" * 100


def test_missing_directory_is_path_not_found(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "new.vhd"
    with pytest.raises(VirtualDiskError) as caught:
        create(path, 16 * MiB)
    assert caught.value.winerror == ERROR_PATH_NOT_FOUND


def test_missing_parent_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "child.vhd"
    with pytest.raises(VirtualDiskError):
        create(path, parent_path=tmp_path / "absent.vhd")
    assert not path.exists()


def test_invalid_source_leaves_no_file(tmp_path: Path) -> None:
    source = tmp_path / "junk.vhd"
    source.write_bytes(b"not a disk" * 1000)
    path = tmp_path / "copy.vhd"
    with pytest.raises(VirtualDiskError):
        create(path, source_path=source)
    assert not path.exists()


def test_handle_is_open_read_write(tmp_path: Path) -> None:
    """The handle comes from the same open OpenVirtualDisk does: a second
    read-write open of the new file is a sharing violation until it closes."""
    path = tmp_path / "held.vhd"
    handle = vd.CreateVirtualDisk(VHD, path, 0, 0, 2, maximum_size=16 * MiB)
    with handle:
        with pytest.raises(VirtualDiskError) as caught:
            vd.OpenVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.NONE, 0, 2)
        assert caught.value.winerror == 32
    vd.OpenVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.NONE, 0, 2).close()


# --------------------------------------------------------------------------- differencing

@pytest.fixture
def parent(tmp_path: Path) -> tuple[Path, uuid.UUID]:
    path = tmp_path / "base.vhd"
    identifier = uuid.uuid4()
    create(path, 64 * MiB, unique_id=identifier)
    run(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0xab 1M 3M", "-c",
        "write -P 0x11 40M 512", path)
    return path, identifier


@pytest.mark.parametrize("where", [".", "sub"])
def test_differencing_child(tmp_path: Path, parent: tuple[Path, uuid.UUID], where: str) -> None:
    parent_path, parent_id = parent
    directory = tmp_path / where
    directory.mkdir(exist_ok=True)
    child = directory / "child.vhd"
    child_id = uuid.uuid4()
    create(child, parent_path=parent_path, unique_id=child_id)

    fields = vhdiinfo(child)
    assert fields["Disk type"] == "Differential"
    assert media_size(fields) == 64 * MiB
    assert uuid.UUID(fields["Identifier"]) == child_id
    assert uuid.UUID(fields["Parent identifier"]) == parent_id
    assert fields["Parent filename"] == str(parent_path)

    # The engine resolves the parent through the stored locators.
    with vd.OpenVirtualDisk(VHD, child, vd.VirtualDiskAccessMask.NONE, 0, 2,
                            read_only=True) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved
        assert Path(location.paths[0]) == parent_path
        assert vd.GetVirtualDiskInformation(handle, Info.PARENT_IDENTIFIER) == parent_id

    # 7-Zip follows the relative parent locator and reads the parent's data
    # through it; on this host it takes the '\' of "..\base.vhd" for part of
    # a file name, so only the same-directory child (".\base.vhd") is read.
    if where != ".":
        return
    flat = tmp_path / "child.raw"
    with open(flat, "wb") as out:
        subprocess.run([tool("7zz"), "x", "-so", str(child)], stdout=out, check=True,
                       stderr=subprocess.DEVNULL)
    compare(flat, "raw", parent_path, "vpc")


def test_differencing_block_size_defaults_to_the_parents(tmp_path: Path) -> None:
    base = tmp_path / "base.vhd"
    create(base, 32 * MiB, block_size=512 * 1024)
    child = tmp_path / "child.vhd"
    create(child, parent_path=base)
    with vd.OpenVirtualDisk(VHD, child, vd.VirtualDiskAccessMask.NONE, 0, 2,
                            read_only=True) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.SIZE).block_size == 512 * 1024


# --------------------------------------------------------------------------- copies

@pytest.fixture
def vhdx_source(tmp_path: Path) -> Path:
    path = tmp_path / "source.vhdx"
    run(tool("qemu-img"), "create", "-f", "vhdx", path, "48M")
    run(tool("qemu-io"), "-f", "vhdx", "-c", "write -P 0x5a 0 1M", "-c",
        "write -P 0x77 33M 100k", "-c", "write -P 0x01 47M 512", path)
    return path


@pytest.mark.parametrize("flags", [0, FIXED, FIXED_SPARSE])
def test_copy_from_vhdx_source(tmp_path: Path, vhdx_source: Path, flags: int) -> None:
    path = tmp_path / "copy.vhd"
    create(path, 0, flags, source_path=vhdx_source)
    assert qemu_size(path) == 48 * MiB
    compare(path, "vpc", vhdx_source, "vhdx")


def test_copy_skips_zero_blocks(tmp_path: Path, vhdx_source: Path) -> None:
    path = tmp_path / "copy.vhd"
    create(path, 0, source_path=vhdx_source)
    # Three of the 24 blocks of 2 MiB hold data; the others stay unallocated.
    assert path.stat().st_size < 4 * (2 * MiB + 512) + 64 * 1024


def test_copy_into_a_larger_disk(tmp_path: Path, vhdx_source: Path) -> None:
    path = tmp_path / "copy.vhd"
    create(path, 64 * MiB, source_path=vhdx_source)
    assert qemu_size(path) == 64 * MiB
    widened = tmp_path / "widened.raw"
    run(tool("qemu-img"), "convert", "-f", "vhdx", "-O", "raw", vhdx_source, widened)
    os.truncate(widened, 64 * MiB)
    compare(path, "vpc", widened, "raw")


def test_copy_reads_through_the_sources_parent(tmp_path: Path,
                                               parent: tuple[Path, uuid.UUID]) -> None:
    parent_path, _ = parent
    child = tmp_path / "child.vhd"
    create(child, parent_path=parent_path)
    path = tmp_path / "flattened.vhd"
    create(path, 0, source_path=child)
    # The child holds no data of its own: the copy is the parent's content.
    compare(path, "vpc", parent_path, "vpc")
