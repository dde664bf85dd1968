"""``virtdisk.create``: argument checks, then the images it makes.

The checks run before CreateVirtualDisk is called; their limits come from
the rules Microsoft documents for CREATE_VIRTUAL_DISK_PARAMETERS (block
sizes per format and type, 512/4096 sector sizes, MaximumSize a multiple of
512 and 0 with a parent, ParentPath and SourcePath exclusive, 2040 GiB for
VHD, 64 TiB for VHDX).

The images are judged by tools nobody here wrote: ``qemu-img info`` (size,
format, block size), ``qemu-img check`` (VHDX), ``qemu-img compare`` (the
content: zeros, or the source's bytes), ``vhdiinfo`` (type, size, sector
size, identifiers).  Tests that need a part of the engine that does not
create yet are skipped by a probe, which tries it once at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _virtdisk
import pytest

import virtdisk
from conftest import require_tool
from virtdisk.create import create
from virtdisk import (
    CallNotImplementedError,
    ImageExistsError,
    ProviderSubtype,
    VirtualDiskError,
    VirtualStorageTypeDevice,
)

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40

FORMATS = ("vhd", "vhdx")
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}
DEVICE = {"vhd": VirtualStorageTypeDevice.VHD, "vhdx": VirtualStorageTypeDevice.VHDX}
SUBTYPE = {"fixed": ProviderSubtype.FIXED, "dynamic": ProviderSubtype.DYNAMIC,
           "differencing": ProviderSubtype.DIFFERENCING}
# libvhdi's names for the disk types.
VHDI_TYPE = {"fixed": "Fixed", "dynamic": "Dynamic", "differencing": "Differential"}


# --------------------------------------------------------------------------- engine probe

def _creates(fmt: str, kind: str) -> bool:
    """Whether the engine creates a `kind` ("fixed", "dynamic",
    "differencing", "source") disk of `fmt`: False only when it answers
    ERROR_CALL_NOT_IMPLEMENTED, so that any other failure shows in the
    tests instead of skipping them."""
    with tempfile.TemporaryDirectory() as directory:
        target = os.path.join(directory, f"probe.{fmt}")
        try:
            if kind in ("fixed", "dynamic"):
                virtdisk.create(target, 4 * MIB, type=kind).close()  # type: ignore[arg-type]
            elif kind == "differencing":
                parent = os.path.join(directory, f"parent.{fmt}")
                virtdisk.create(parent, 4 * MIB).close()
                virtdisk.create(target, parent=parent).close()
            else:
                qemu = shutil.which("qemu-img")
                if qemu is None:
                    return True  # the tests skip for want of qemu-img
                source = os.path.join(directory, f"source.{fmt}")
                subprocess.run([qemu, "create", "-q", "-f", QEMU_FORMAT[fmt], source, "4M"],
                               check=True)
                virtdisk.create(target, source=source).close()
        except CallNotImplementedError:
            return False
        except VirtualDiskError:
            return True
    return True


ENGINE_CREATES = {(fmt, kind): _creates(fmt, kind)
                  for fmt in FORMATS for kind in ("fixed", "dynamic", "differencing", "source")}


def needs_engine(fmt: str, kind: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not ENGINE_CREATES[(fmt, kind)],
                              reason=f"the engine does not create "
                                     f"{'copied' if kind == 'source' else kind} {fmt} disks yet "
                                     f"(CreateVirtualDisk answers ERROR_CALL_NOT_IMPLEMENTED)")


def engine_param(fmt: str, kind: str, *values: object) -> object:
    return pytest.param(fmt, kind, *values, marks=needs_engine(fmt, kind),
                        id=f"{fmt}-{kind}")


# --------------------------------------------------------------------------- tool helpers

def run(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool(str(arguments[0]))
    return subprocess.run([tool, *map(str, arguments[1:])], capture_output=True, text=True)


def qemu_info(path: Path, fmt: str) -> dict[str, object]:
    result = run("qemu-img", "info", "-U", "--output=json", "-f", QEMU_FORMAT[fmt], path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert isinstance(info, dict)
    return info


def qemu_check(path: Path, fmt: str) -> None:
    """``qemu-img check``, which qemu implements for VHDX (not for VHD)."""
    if fmt == "vhdx":
        result = run("qemu-img", "check", "-f", "vhdx", path)
        assert result.returncode == 0, result.stdout + result.stderr


def qemu_compare(first: Path, first_format: str, second: Path, second_format: str) -> None:
    result = run("qemu-img", "compare", "-f", first_format, "-F", second_format, first, second)
    assert result.returncode == 0, result.stdout + result.stderr


def blank_raw(path: Path, size: int) -> Path:
    with open(path, "xb") as file:
        file.truncate(size)
    return path


def vhdiinfo(path: Path) -> dict[str, str]:
    result = run("vhdiinfo", path)
    assert result.returncode == 0, result.stdout + result.stderr
    return {match[1]: match[2] for match in
            re.finditer(r"^\t([^:\t]+?)\t*:\s*(.*)$", result.stdout, re.MULTILINE)}


def vhdi_media_size(rows: dict[str, str]) -> int:
    match = re.search(r"\((\d+) bytes\)", rows["Media size"])
    assert match is not None, rows
    return int(match[1])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- argument checks

def test_create_is_exported() -> None:
    assert virtdisk.create is create
    assert "create" in virtdisk.__all__


@pytest.mark.parametrize("name", ["disk.img", "disk", "disk.iso", "dir.vhdx/disk.raw"])
def test_unknown_extension_without_format(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError) as caught:
        virtdisk.create(tmp_path / name, "1GiB")
    message = str(caught.value)
    for allowed in (".vhd", ".avhd", ".vhdx", ".avhdx", "format="):
        assert allowed in message
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("fmt", ["iso", "raw", "qcow2", VirtualStorageTypeDevice.ISO,
                                 VirtualStorageTypeDevice.VHDSET, 3])
def test_format_must_be_vhd_or_vhdx(tmp_path: Path, fmt: object) -> None:
    with pytest.raises(ValueError, match=r"format must be 'vhd' or 'vhdx'") as caught:
        virtdisk.create(tmp_path / "disk.img", "1GiB", format=fmt)  # type: ignore[arg-type]
    assert repr(fmt) in str(caught.value)


def test_format_contradicting_the_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"format='vhdx' contradicts .*names vhd$"):
        virtdisk.create(tmp_path / "disk.vhd", "1GiB", format="vhdx")


@pytest.mark.parametrize("disk_type", ["sparse", "Fixed", "diff", ""])
def test_type_must_be_known(tmp_path: Path, disk_type: str) -> None:
    with pytest.raises(ValueError) as caught:
        virtdisk.create(tmp_path / "disk.vhdx", "1GiB", type=disk_type)  # type: ignore[arg-type]
    message = str(caught.value)
    assert repr(disk_type) in message
    assert "'dynamic', 'fixed', 'differencing'" in message


def test_differencing_needs_a_parent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"type='differencing' needs parent="):
        virtdisk.create(tmp_path / "disk.vhdx", type="differencing")


@pytest.mark.parametrize("disk_type", ["fixed", "dynamic"])
def test_a_parent_makes_the_disk_differencing(tmp_path: Path, disk_type: str) -> None:
    with pytest.raises(ValueError, match=rf"type='{disk_type}' cannot have a parent"):
        virtdisk.create(tmp_path / "disk.vhdx", parent=tmp_path / "parent.vhdx",
                        type=disk_type)  # type: ignore[arg-type]


def test_parent_and_source_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parent and source are exclusive"):
        virtdisk.create(tmp_path / "disk.vhdx", parent=tmp_path / "a.vhdx",
                        source=tmp_path / "b.vhdx")


def test_size_is_required_for_an_empty_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"size is required"):
        virtdisk.create(tmp_path / "disk.vhdx")


def test_size_must_be_none_with_a_parent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"size must be None for a differencing disk.*'1GiB'"):
        virtdisk.create(tmp_path / "disk.vhdx", "1GiB", parent=tmp_path / "parent.vhdx")


@pytest.mark.parametrize(("size", "sector_size", "message"), [
    (1000, None, r"multiple of 512 bytes \(the sector size\), not 1000; 512 or 1024 would do"),
    ("100", None, r"multiple of 512 bytes .*not '100' \(100 bytes\); 512 would do"),
    (GIB + 1, None, rf"multiple of 512 bytes .*not {GIB + 1} \(1.0 GiB\); {GIB} or {GIB + 512}"),
    ("1.5K", 4096, r"multiple of 4096 bytes .*not '1.5K' \(1536 bytes\); 4096 would do"),
    (5 * KIB, 4096, r"multiple of 4096 bytes .*not 5120 \(5.0 KiB\); 4096 or 8192 would do"),
])
def test_size_must_be_a_multiple_of_the_sector_size(tmp_path: Path, size: int | str,
                                                     sector_size: int | None,
                                                     message: str) -> None:
    with pytest.raises(ValueError, match=r"^size must be a " + message):
        virtdisk.create(tmp_path / "disk.vhdx", size, sector_size=sector_size)


@pytest.mark.parametrize("size", [0, "0", "0GiB"])
def test_size_must_not_be_zero(tmp_path: Path, size: int | str) -> None:
    with pytest.raises(ValueError, match=r"size must be greater than 0"):
        virtdisk.create(tmp_path / "disk.vhdx", size)


def test_size_text_errors_come_from_parse_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown size unit 'x' in '10x'"):
        virtdisk.create(tmp_path / "disk.vhdx", "10x")
    with pytest.raises(ValueError, match=r"must not be negative"):
        virtdisk.create(tmp_path / "disk.vhdx", -512)
    with pytest.raises(TypeError, match=r"size must be str or int, not float"):
        virtdisk.create(tmp_path / "disk.vhdx", 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "limit", "name"), [
    ("vhd", 2040 * GIB, "VHD limit of 2040 GiB"),
    ("vhdx", 64 * TIB, "VHDX limit of 64 TiB"),
])
def test_size_limits(tmp_path: Path, fmt: str, limit: int, name: str) -> None:
    with pytest.raises(ValueError, match=rf"size {limit + 512} .*exceeds the {name} \({limit} bytes\)"):
        virtdisk.create(tmp_path / f"disk.{fmt}", limit + 512)


VHD_BLOCKS = r"512 KiB \(524288\) or 2 MiB \(2097152\)"
VHDX_BLOCKS = r"a power of two from 1 MiB \(1048576\) to 256 MiB \(268435456\)"


@pytest.mark.parametrize(("fmt", "disk_type", "block_size", "allowed"), [
    ("vhd", "dynamic", "1MiB", VHD_BLOCKS),
    ("vhd", "dynamic", 4 * MIB, VHD_BLOCKS),
    ("vhd", "differencing", "32MiB", VHD_BLOCKS),
    ("vhdx", "dynamic", "512K", VHDX_BLOCKS),
    ("vhdx", "dynamic", "3MiB", VHDX_BLOCKS),
    ("vhdx", "differencing", "512MiB", VHDX_BLOCKS),
], ids=lambda value: str(value) if not str(value).startswith(("512 KiB", "a power")) else "")
def test_block_size_per_format(tmp_path: Path, fmt: str, disk_type: str, block_size: int | str,
                               allowed: str) -> None:
    parent = tmp_path / f"parent.{fmt}" if disk_type == "differencing" else None
    with pytest.raises(ValueError, match=rf"^block_size of a {fmt.upper()} must be {allowed}, "
                                         rf"not ") as caught:
        virtdisk.create(tmp_path / f"disk.{fmt}", None if parent else "1GiB", parent=parent,
                        type=disk_type,  # type: ignore[arg-type]
                        block_size=block_size)
    shown = repr(block_size) if isinstance(block_size, str) else str(block_size)
    assert shown in str(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fixed_disks_have_no_block_size(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(ValueError, match=r"a fixed disk has no blocks: block_size must be None, "
                                         r"not '2MiB'"):
        virtdisk.create(tmp_path / f"disk.{fmt}", "1GiB", type="fixed", block_size="2MiB")


@pytest.mark.parametrize(("fmt", "keyword", "value", "allowed"), [
    ("vhd", "sector_size", 4096, "512"),
    ("vhd", "physical_sector_size", 4096, "512"),
    ("vhdx", "sector_size", 1024, "512 or 4096"),
    ("vhdx", "physical_sector_size", 520, "512 or 4096"),
    ("vhdx", "sector_size", 0, "512 or 4096"),
])
def test_sector_sizes_per_format(tmp_path: Path, fmt: str, keyword: str, value: int,
                                 allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"{keyword} of a {fmt.upper()} must be {allowed}, "
                                         rf"not {value}$"):
        virtdisk.create(tmp_path / f"disk.{fmt}", "1GiB", **{keyword: value})  # type: ignore[arg-type]


def test_argument_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"identifier must be a uuid.UUID or None, not str"):
        virtdisk.create(tmp_path / "disk.vhdx", "1GiB", identifier="0" * 32)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sector_size must be an int or None, not str"):
        virtdisk.create(tmp_path / "disk.vhdx", "1GiB", sector_size="512")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be str or os.PathLike\[str\], not bytes"):
        virtdisk.create(b"disk.vhdx", "1GiB")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"parent must be str or os.PathLike\[str\], not int"):
        virtdisk.create(tmp_path / "disk.vhdx", parent=3)  # type: ignore[arg-type]


def test_failed_checks_create_nothing(tmp_path: Path) -> None:
    for size in (1000, 3 * TIB):
        with pytest.raises(ValueError):
            virtdisk.create(tmp_path / "disk.vhd", size)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- empty disks

EMPTY_CASES = [
    engine_param("vhd", "fixed", 64 * MIB),
    engine_param("vhd", "dynamic", 1 * GIB),
    engine_param("vhdx", "fixed", 64 * MIB),
    engine_param("vhdx", "dynamic", 1 * GIB),
]


@pytest.mark.parametrize(("fmt", "disk_type", "size"), EMPTY_CASES)
def test_create_empty_disk(tmp_path: Path, fmt: str, disk_type: str, size: int) -> None:
    path = tmp_path / f"disk.{fmt}"
    identifier = uuid.uuid4()
    with virtdisk.create(path, size, type=disk_type,  # type: ignore[arg-type]
                         identifier=identifier) as disk:
        assert disk.read_only is False
        assert disk.path == str(path)
        assert disk.virtual_size == size
        assert disk.storage_type == DEVICE[fmt]
        assert disk.provider_subtype == SUBTYPE[disk_type]
        assert disk.virtual_disk_id == identifier
        assert disk.sector_size == 512
        engine_identifier = disk.identifier

    info = qemu_info(path, fmt)
    assert info["format"] == QEMU_FORMAT[fmt]
    assert info["virtual-size"] == size
    qemu_check(path, fmt)
    qemu_compare(blank_raw(tmp_path / "blank.raw", size), "raw", path, QEMU_FORMAT[fmt])

    rows = vhdiinfo(path)
    assert rows["Disk type"] == VHDI_TYPE[disk_type]
    assert vhdi_media_size(rows) == size
    assert rows["Bytes per sector"] == "512 bytes"
    assert uuid.UUID(rows["Identifier"]) == engine_identifier
    if fmt == "vhd":
        assert engine_identifier == identifier

    file_size = path.stat().st_size
    if disk_type == "fixed":
        assert file_size >= size
    else:
        assert file_size < size // 16

    with virtdisk.open(path) as reopened:
        assert reopened.virtual_size == size
        assert reopened.virtual_disk_id == identifier


@pytest.mark.parametrize(("fmt", "disk_type", "size"), EMPTY_CASES)
def test_fixed_and_dynamic_defaults(tmp_path: Path, fmt: str, disk_type: str, size: int) -> None:
    """Windows' default block sizes (CREATE_VIRTUAL_DISK_PARAMETERS): 2 MiB
    for a dynamic VHD, 32 MiB for a dynamic VHDX, none for fixed disks."""
    path = tmp_path / f"disk.{fmt}"
    with virtdisk.create(path, size, type=disk_type) as disk:  # type: ignore[arg-type]
        block_size = disk.block_size
    expected = 0 if disk_type == "fixed" else {"vhd": 2 * MIB, "vhdx": 32 * MIB}[fmt]
    assert block_size == expected
    if disk_type == "dynamic":
        assert qemu_info(path, fmt)["cluster-size"] == expected


@pytest.mark.parametrize("size", [1 * MIB, 3 * MIB + 512 * 3, 127 * MIB + 512])
@needs_engine("vhd", "fixed")
def test_fixed_vhd_has_exactly_the_requested_size(tmp_path: Path, size: int) -> None:
    """What Azure requires: the virtual size is the requested size, not one
    rounded to a CHS geometry, and qemu and libvhdi read it so."""
    path = tmp_path / "disk.vhd"
    virtdisk.create(path, size, type="fixed").close()
    assert qemu_info(path, "vhd")["virtual-size"] == size
    assert vhdi_media_size(vhdiinfo(path)) == size
    assert path.stat().st_size == size + 512


@needs_engine("vhdx", "dynamic")
def test_vhdx_block_size(tmp_path: Path) -> None:
    path = tmp_path / "disk.vhdx"
    with virtdisk.create(path, "256MiB", block_size="1MiB", physical_sector_size=512) as disk:
        assert (disk.block_size, disk.sector_size, disk.physical_sector_size) == (MIB, 512, 512)
    assert qemu_info(path, "vhdx")["cluster-size"] == MIB
    qemu_check(path, "vhdx")
    qemu_compare(blank_raw(tmp_path / "blank.raw", 256 * MIB), "raw", path, "vhdx")


@needs_engine("vhdx", "dynamic")
def test_vhdx_4096_byte_sectors(tmp_path: Path) -> None:
    """Judged by libvhdi alone: qemu opens only VHDX images with 512-byte
    logical sectors (its vhdx driver answers ENOTSUP for 4096)."""
    path = tmp_path / "disk.vhdx"
    with virtdisk.create(path, "256MiB", sector_size=4096, physical_sector_size=4096) as disk:
        assert (disk.sector_size, disk.physical_sector_size) == (4096, 4096)
    rows = vhdiinfo(path)
    assert rows["Bytes per sector"] == "4096 bytes"
    assert vhdi_media_size(rows) == 256 * MIB


@needs_engine("vhd", "dynamic")
def test_vhd_small_block_size(tmp_path: Path) -> None:
    path = tmp_path / "disk.vhd"
    with virtdisk.create(path, "100MiB", block_size=512 * KIB) as disk:
        assert disk.block_size == 512 * KIB
    assert qemu_info(path, "vhd")["cluster-size"] == 512 * KIB
    assert vhdi_media_size(vhdiinfo(path)) == 100 * MIB


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "fixed"))
                                 for fmt in FORMATS])
def test_fixed_disk_is_not_written_out(tmp_path: Path, fmt: str) -> None:
    """A fixed disk is made by extending the file (sparse or reserved),
    not by writing zeros: 4 GiB takes well under the two seconds or more
    that writing it would."""
    path = tmp_path / f"disk.{fmt}"
    try:
        started = time.perf_counter()
        virtdisk.create(path, "4GiB", type="fixed").close()
        elapsed = time.perf_counter() - started
        assert path.stat().st_size >= 4 * GIB
        assert qemu_info(path, fmt)["virtual-size"] == 4 * GIB
        assert elapsed < 0.5
    finally:
        # pytest keeps recent temporary directories: do not leave 4 GiB behind.
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "dynamic"))
                                 for fmt in FORMATS])
def test_existing_file_is_not_overwritten(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"disk.{fmt}"
    virtdisk.create(path, "16MiB").close()
    before = digest(path)
    with pytest.raises(ImageExistsError) as caught:
        virtdisk.create(path, "32MiB")
    assert isinstance(caught.value, FileExistsError)
    assert caught.value.winerror == 80
    assert digest(path) == before

    other = tmp_path / f"notes.{fmt}"
    other.write_text("not an image\n")
    with pytest.raises(FileExistsError):
        virtdisk.create(other, "16MiB", type="fixed")
    assert other.read_text() == "not an image\n"


# --------------------------------------------------------------------------- differencing

@pytest.mark.parametrize(("fmt", "kind"), [engine_param(fmt, "differencing") for fmt in FORMATS])
def test_create_differencing_disk(tmp_path: Path, fmt: str, kind: str) -> None:
    parent = tmp_path / f"parent.{fmt}"
    result = run("qemu-img", "create", "-q", "-f", QEMU_FORMAT[fmt], "-o",
                 "subformat=dynamic" + (",force_size=on" if fmt == "vhd" else ""), parent, "48M")
    assert result.returncode == 0, result.stderr
    parent_rows = vhdiinfo(parent)
    child = tmp_path / f"child.{fmt}"
    with virtdisk.create(child, parent=parent) as disk:
        assert disk.provider_subtype == ProviderSubtype.DIFFERENCING
        assert disk.virtual_size == 48 * MIB
        assert disk.parent_identifier == uuid.UUID(parent_rows["Identifier"])
        assert disk.parent_resolved is True
        assert disk.parent_paths == (str(parent),)

    rows = vhdiinfo(child)
    assert rows["Disk type"] == VHDI_TYPE["differencing"]
    assert vhdi_media_size(rows) == 48 * MIB
    assert uuid.UUID(rows["Parent identifier"]) == uuid.UUID(parent_rows["Identifier"])
    assert rows.get("Parent filename", "").replace("\\", "/").endswith(parent.name), rows
    # qemu opens no differencing VHDX (ENOTSUP) and reads VHD children
    # without their parents: libvhdi is the judge here.

    with virtdisk.open(child) as reopened:
        assert reopened.parent_resolved is True
        assert reopened.virtual_size == 48 * MIB


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "differencing"))
                                 for fmt in FORMATS])
def test_failed_create_leaves_no_file(tmp_path: Path, fmt: str) -> None:
    child = tmp_path / f"child.{fmt}"
    with pytest.raises(VirtualDiskError) as caught:
        virtdisk.create(child, parent=tmp_path / f"missing.{fmt}")
    assert not isinstance(caught.value, CallNotImplementedError)
    assert not child.exists()

    with pytest.raises(VirtualDiskError):
        virtdisk.create(child, source=tmp_path / f"missing.{fmt}")
    assert not child.exists()

    not_an_image = tmp_path / f"junk.{fmt}"
    not_an_image.write_bytes(b"\x01" * 64 * KIB)
    with pytest.raises(VirtualDiskError):
        virtdisk.create(child, parent=not_an_image)
    assert not child.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == [not_an_image.name]


@needs_engine("vhd", "differencing")
@needs_engine("vhdx", "dynamic")
def test_vhd_child_of_a_vhdx_parent_is_refused(tmp_path: Path) -> None:
    """A differencing disk has its parent's format; the refusal removes the
    child it began."""
    parent = tmp_path / "parent.vhdx"
    virtdisk.create(parent, "8MiB").close()
    child = tmp_path / "child.vhd"
    with pytest.raises(VirtualDiskError) as caught:
        virtdisk.create(child, parent=parent)
    assert not isinstance(caught.value, CallNotImplementedError)
    assert not child.exists()


# --------------------------------------------------------------------------- copies

SOURCE_CASES = [
    pytest.param(source_fmt, target_fmt, target_type,
                 marks=needs_engine(target_fmt, "source"),
                 id=f"{source_fmt}-to-{target_fmt}-{target_type}")
    for source_fmt in FORMATS for target_fmt in FORMATS for target_type in ("dynamic", "fixed")
]


@pytest.mark.parametrize(("source_fmt", "target_fmt", "target_type"), SOURCE_CASES)
def test_create_from_source(tmp_path: Path, source_fmt: str, target_fmt: str,
                            target_type: str) -> None:
    source = tmp_path / f"source.{source_fmt}"
    options = "subformat=dynamic" + (",force_size=on" if source_fmt == "vhd" else "")
    result = run("qemu-img", "create", "-q", "-f", QEMU_FORMAT[source_fmt], "-o", options,
                 source, "24M")
    assert result.returncode == 0, result.stderr
    result = run("qemu-io", "-f", QEMU_FORMAT[source_fmt],
                 "-c", "write -P 0x5a 0 64k", "-c", "write -P 0xa5 5M 1M",
                 "-c", "write -P 0x33 24572k 4k", source)
    assert result.returncode == 0, result.stdout + result.stderr

    target = tmp_path / f"copy.{target_fmt}"
    with virtdisk.create(target, source=source, type=target_type) as disk:  # type: ignore[arg-type]
        assert disk.virtual_size == 24 * MIB
        assert disk.provider_subtype == SUBTYPE[target_type]
    assert qemu_info(target, target_fmt)["virtual-size"] == 24 * MIB
    qemu_check(target, target_fmt)
    qemu_compare(source, QEMU_FORMAT[source_fmt], target, QEMU_FORMAT[target_fmt])


# --------------------------------------------------------------------------- the call

class _Called(Exception):
    pass


@pytest.mark.parametrize(("name", "keywords", "flags", "expected"), [
    ("d.vhdx", {"size": "10GiB"}, 0,
     {"maximum_size": 10 * GIB, "block_size": 0, "sector_size": 0, "physical_sector_size": 0}),
    ("d.VHD", {"size": "2040GiB", "type": "fixed"}, 1, {"maximum_size": 2040 * GIB}),
    ("d.avhdx", {"size": 64 * TIB, "block_size": "256MiB", "sector_size": 4096,
                 "physical_sector_size": 512}, 0,
     {"maximum_size": 64 * TIB, "block_size": 256 * MIB, "sector_size": 4096,
      "physical_sector_size": 512}),
    ("d.avhd", {"parent": "p.vhd", "block_size": "512K"}, 0,
     {"maximum_size": 0, "parent_path": "p.vhd", "source_path": None, "block_size": 512 * KIB}),
    ("d.img", {"source": "s.vhdx", "format": "vhdx"}, 0,
     {"maximum_size": 0, "source_path": "s.vhdx", "parent_path": None}),
    ("d.vhd", {"source": "s.vhdx", "size": "1GiB", "type": "fixed"}, 1,
     {"maximum_size": GIB, "source_path": "s.vhdx"}),
])
def test_parameters_reach_create_virtual_disk(monkeypatch: pytest.MonkeyPatch, name: str,
                                              keywords: dict[str, object], flags: int,
                                              expected: dict[str, object]) -> None:
    """Accepted arguments become version 2 parameters with access NONE,
    the Microsoft vendor and FULL_PHYSICAL_ALLOCATION for fixed disks."""
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def record(*arguments: object, **fields: object) -> object:
        calls.append((arguments, fields))
        raise _Called

    monkeypatch.setattr(sys.modules["virtdisk.create"], "CreateVirtualDisk", record)
    identifier = uuid.uuid4()
    with pytest.raises(_Called):
        virtdisk.create(name, identifier=identifier, **keywords)  # type: ignore[arg-type]
    [(arguments, fields)] = calls
    storage_type, path, access, flag_value, version = arguments
    device = VirtualStorageTypeDevice.VHDX if "vhdx" in name.lower() or "format" in keywords \
        else VirtualStorageTypeDevice.VHD
    assert storage_type == (device, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    assert (path, access, flag_value, version) == (name, 0, flags, 2)
    assert fields["unique_id"] == identifier
    for field, value in expected.items():
        assert fields[field] == value, field


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "source"))
                                 for fmt in FORMATS])
def test_size_below_the_source_is_refused(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / f"source.{fmt}"
    result = run("qemu-img", "create", "-q", "-f", QEMU_FORMAT[fmt], "-o",
                 "subformat=dynamic" + (",force_size=on" if fmt == "vhd" else ""), source, "16M")
    assert result.returncode == 0, result.stderr
    target = tmp_path / f"copy.{fmt}"
    with pytest.raises(ValueError) as caught:
        virtdisk.create(target, "8MiB", source=source)
    assert isinstance(caught.value, VirtualDiskError)
    assert caught.value.winerror == 87
    assert not target.exists()
