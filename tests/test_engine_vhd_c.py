"""The engine's VHD parser (src/vdengine/vhd.c), checked through a small C
harness against images and answers from tools nobody here wrote: qemu-img
and qemu-io make the images and read them back, vhdiinfo (libvhdi) and 7-Zip
read them independently.  Images no tool writes (differencing disks,
512 KiB blocks, partial sector bitmaps) come from tests/vhd_builder.py,
and the independent readers confirm them first.

Runs without the Python extension: the harness is compiled here.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypedDict

import pytest

import vhd_builder as vb
from c_harness import compile_harness

ENGINE_SOURCES = ["vhd.c", "vhd_geometry.c", "image.c", "io.c", "utf16.c"]

# Win32 codes (winerror.h, FACILITY_USERMODE_VHD).
VHD_DRIVE_FOOTER_MISSING = 0xC03A0001
VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH = 0xC03A0002
VHD_DRIVE_FOOTER_CORRUPT = 0xC03A0003
VHD_FORMAT_UNKNOWN = 0xC03A0004
VHD_FORMAT_UNSUPPORTED_VERSION = 0xC03A0005
VHD_SPARSE_HEADER_CHECKSUM_MISMATCH = 0xC03A0006
VHD_SPARSE_HEADER_UNSUPPORTED_VERSION = 0xC03A0007
VHD_SPARSE_HEADER_CORRUPT = 0xC03A0008
VHD_BLOCK_ALLOCATION_TABLE_CORRUPT = 0xC03A000A
VHD_INVALID_BLOCK_SIZE = 0xC03A000B
VHD_INVALID_SIZE = 0xC03A0012
VHD_INVALID_FILE_SIZE = 0xC03A0013

MiB = 1 << 20

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="qemu-img/qemu-io not installed")
needs_vhdiinfo = pytest.mark.skipif(shutil.which("vhdiinfo") is None, reason="vhdiinfo not installed")
needs_7zz = pytest.mark.skipif(shutil.which("7zz") is None, reason="7zz not installed")


# --------------------------------------------------------------------------- tools

def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


class Probe(Protocol):
    def __call__(self, *args: str | Path) -> dict[str, Any]: ...


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    """The compiled harness (sanitized where the compiler can), as a
    function returning its JSON answer."""
    binary = compile_harness(tmp_path_factory.mktemp("vhd_harness"), "vhd_probe_main",
                             ENGINE_SOURCES, sanitize=True)

    def answer(*args: str | Path) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(run(binary, *args).stdout)
        return got

    return answer


def qemu_info(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(
        run("qemu-img", "info", "--output=json", "-f", "vpc", path).stdout)
    return info


def qemu_raw(path: Path, out: Path) -> bytes:
    run("qemu-img", "convert", "-f", "vpc", "-O", "raw", path, out)
    return out.read_bytes()


def vhdiinfo(path: Path) -> dict[str, str]:
    """vhdiinfo's "Name : value" lines as a dict."""
    result = run("vhdiinfo", path, check=False)
    if result.returncode != 0:
        return {}
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"\s+([^:]+?)\s*:\s*(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def vhdiinfo_media_size(fields: dict[str, str]) -> int:
    match = re.search(r"\((\d+) bytes\)", fields["Media size"])
    assert match is not None, fields["Media size"]
    return int(match.group(1))


def seven_zip_extract(path: Path, directory: Path) -> bytes:
    """The raw disk 7-Zip extracts (it finds parents beside the child)."""
    run("7zz", "e", "-y", f"-o{directory}", path)
    (extracted,) = list(directory.iterdir())
    return extracted.read_bytes()


def tail_footer(path: Path) -> bytes:
    with path.open("rb") as image:
        image.seek(-512, 2)
        return image.read(512)


def footer_geometry(footer: bytes) -> tuple[int, int, int]:
    return struct.unpack(">HBB", footer[56:60])


def footer_size(footer: bytes) -> int:
    size: int = struct.unpack(">Q", footer[48:56])[0]
    return size


def file_order_uuid(raw: bytes) -> str:
    """The text of 16 bytes read as an RFC 4122 UUID in file order."""
    return str(uuid.UUID(bytes=raw))


# --------------------------------------------------------------------------- images from qemu

SIZE_BYTES = {"3M": 3 * MiB, "10M": 10 * MiB, "20M": 20 * MiB, "33M": 33 * MiB,
              "64M": 64 * MiB, "100M": 100 * MiB, "500M": 500 * MiB, "1000M": 1000 * MiB,
              "1G": 1 << 30, "4G": 4 << 30, "127G": 127 << 30, "130G": 130 << 30}
SIZES = list(SIZE_BYTES)


@needs_qemu
@needs_vhdiinfo
@pytest.mark.parametrize("subformat", ["fixed", "dynamic"])
@pytest.mark.parametrize("force_size", ["off", "on"])
@pytest.mark.parametrize("size", ["3M", "10M", "1G", "127G", "130G"])
def test_open_matches_qemu_and_vhdiinfo(probe: Probe, tmp_path: Path, subformat: str,
                                        force_size: str, size: str) -> None:
    image = tmp_path / "disk.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", "-o",
        f"subformat={subformat},force_size={force_size}", image, size)
    got = probe(image)
    info = qemu_info(image)
    libvhdi = vhdiinfo(image)

    assert got["probe"] == 1
    assert got["status"] == 0
    assert got["device"] == 2
    assert got["subtype"] == {"fixed": 2, "dynamic": 3}[subformat]
    assert libvhdi["Disk type"] == {"fixed": "Fixed", "dynamic": "Dynamic"}[subformat]
    # qemu derives the size from CHS for its own non-forced images, where
    # it made Current Size equal to the CHS product, so all three agree.
    assert got["virtual_size"] == info["virtual-size"] == vhdiinfo_media_size(libvhdi)
    assert got["virtual_size"] == footer_size(tail_footer(image))
    if force_size == "on":
        assert got["virtual_size"] == SIZE_BYTES[size]
    assert got["block_size"] == (info.get("cluster-size") if subformat == "dynamic" else 0)
    assert got["identifier"] == libvhdi["Identifier"]
    assert got["virtual_disk_id"] == got["identifier"]
    assert got["has_parent"] == 0
    assert got["logical_sector_size"] == got["physical_sector_size"] == 512
    assert got["smallest_safe_virtual_size"] == got["virtual_size"]
    assert got["is_4k_aligned"] == (1 if subformat == "fixed" else 0)


@needs_qemu
def test_identifier_is_footer_uuid_in_file_order(probe: Probe, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", image, "10M")
    raw_id = tail_footer(image)[68:84]
    # qemu writes version-4 UUIDs in network order: the version nibble is
    # the high nibble of file byte 6, which the text shows at position 14.
    assert raw_id[6] >> 4 == 4
    assert probe(image)["identifier"] == file_order_uuid(raw_id)
    assert probe(image)["identifier"][14] == "4"


@needs_qemu
@pytest.mark.parametrize("size", SIZES)
def test_chs_matches_qemu(probe: Probe, tmp_path: Path, size: str) -> None:
    """qemu rounds a request up to the first sector count whose spec CHS
    covers it, and stores that CHS; above the CHS range it stores the maximum."""
    image = tmp_path / "disk.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", image, size)
    stored = footer_geometry(tail_footer(image))
    requested = SIZE_BYTES[size] // 512

    def geometry(sectors: int) -> tuple[int, int, int]:
        g = probe("--chs", str(sectors * 512))
        return g["cylinders"], g["heads"], g["sectors"]

    if requested > 65535 * 16 * 255:
        assert geometry(requested) == stored == (65535, 16, 255)
        return
    extra = 0
    found = geometry(requested)
    while found[0] * found[1] * found[2] < requested:
        extra += 1
        assert extra < 100000
        found = geometry(requested + extra)
    assert found == stored
    # Current Size is the product, and the algorithm maps it to itself.
    assert geometry(footer_size(tail_footer(image)) // 512) == stored


@needs_qemu
@pytest.mark.parametrize("subformat", ["fixed", "dynamic"])
def test_content_matches_qemu(probe: Probe, tmp_path: Path, subformat: str) -> None:
    raw = tmp_path / "src.raw"
    run("qemu-img", "create", "-q", "-f", "raw", raw, "9M")
    writes = [("0x5a", 0, 4096), ("0xa5", 512 * 7, 1536), ("0x11", 2 * MiB - 512, 1024),
              ("0x22", 5 * MiB, MiB), ("0x33", 9 * MiB - 512, 512)]
    args = []
    for pattern, offset, length in writes:
        args += ["-c", f"write -P {pattern} {offset} {length}"]
    run("qemu-io", "-f", "raw", *args, raw)
    image = tmp_path / "disk.vhd"
    run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
        f"subformat={subformat},force_size=on", raw, image)
    # And more writes through qemu's own VHD driver, allocating new blocks.
    run("qemu-io", "-f", "vpc", "-c", "write -P 0x77 7M 4096", "-c", "write -P 0x66 4095k 2k",
        image)

    dump = tmp_path / "dump.raw"
    got = probe(image, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert dump.read_bytes() == qemu_raw(image, tmp_path / "qemu.raw")


@needs_qemu
def test_empty_dynamic_reads_zeros(probe: Probe, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", image, "5M")
    dump = tmp_path / "dump.raw"
    got = probe(image, "--dump", dump, "--layout")
    assert got["read_status"] == 0
    assert dump.read_bytes() == qemu_raw(image, tmp_path / "qemu.raw")
    assert dump.read_bytes() == bytes(got["virtual_size"])
    assert got["layout_fragmentation_percent"] == 0


@needs_qemu
def test_qemu_layout_is_not_4k_aligned(probe: Probe, tmp_path: Path) -> None:
    """qemu puts block 0's 512-byte bitmap right after the sector-padded BAT."""
    image = tmp_path / "disk.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", "-o", "force_size=on", image, "10M")
    run("qemu-io", "-f", "vpc", "-c", "write -P 1 0 512", image)
    data = image.read_bytes()
    table_offset = struct.unpack(">Q", data[512 + 16:512 + 24])[0]
    entry = struct.unpack(">I", data[table_offset:table_offset + 4])[0]
    assert (entry * 512 + 512) % 4096 != 0
    got = probe(image, "--layout")
    assert got["layout_status"] == 0
    assert got["layout_4k_aligned"] == 0


# --------------------------------------------------------------------------- built images

def _sector(fill: int) -> bytes:
    return bytes([fill]) * 512


@needs_qemu
@needs_vhdiinfo
@needs_7zz
@pytest.mark.parametrize("block_size", [512 * 1024, 2 * MiB, 4096])
def test_built_dynamic_matches_independent_readers(probe: Probe, tmp_path: Path,
                                                   block_size: int) -> None:
    size = 5 * MiB
    sectors = {0: _sector(1), 9: _sector(2), 1023: _sector(3), 1024: _sector(4),
               5000: _sector(5), size // 512 - 1: _sector(6)}
    image = tmp_path / "disk.vhd"
    image.write_bytes(vb.build_sparse(size, block_size, sectors))
    got = probe(image, "--dump", tmp_path / "dump.raw", "--layout")
    libvhdi = vhdiinfo(image)
    assert got["status"] == 0 and got["read_status"] == 0
    assert got["subtype"] == 3 and libvhdi["Disk type"] == "Dynamic"
    assert got["block_size"] == block_size
    assert got["virtual_size"] == vhdiinfo_media_size(libvhdi) == qemu_info(image)["virtual-size"]
    assert got["identifier"] == libvhdi["Identifier"]
    content = (tmp_path / "dump.raw").read_bytes()
    assert content == seven_zip_extract(image, tmp_path / "x7")
    assert content == qemu_raw(image, tmp_path / "qemu.raw")
    assert got["layout_4k_aligned"] == 1
    assert got["layout_fragmentation_percent"] == 0


def _with_stray_bytes(image_bytes: bytes, sectors_in_block_0: list[int]) -> bytes:
    """Fills sectors of block 0 (whose bitmap bits stay clear) with 0xEE."""
    out = bytearray(image_bytes)
    table_offset = 512 + 1024
    entry = struct.unpack(">I", out[table_offset:table_offset + 4])[0]
    data_start = entry * 512 + 512
    for sector in sectors_in_block_0:
        out[data_start + sector * 512:data_start + (sector + 1) * 512] = _sector(0xEE)
    return bytes(out)


@needs_7zz
def test_dynamic_clear_bitmap_bits_read_as_zeros(probe: Probe, tmp_path: Path) -> None:
    """In a dynamic disk a clear bit means the sector was never written: it
    reads as zeros whatever the block holds there.  qemu ignores the bitmap;
    7-Zip holds the same rule and reports such bytes as a data error."""
    built = vb.build_sparse(2 * MiB, 512 * 1024, {1: _sector(0xAB)})
    entry = struct.unpack(">I", built[1536:1540])[0]
    assert built[entry * 512] == 0x40     # sector 1 only: MSB first
    image = tmp_path / "disk.vhd"
    image.write_bytes(_with_stray_bytes(built, [0, 5]))
    got = probe(image, "--dump", tmp_path / "dump.raw")
    content = (tmp_path / "dump.raw").read_bytes()
    assert got["read_status"] == 0
    assert content[:512] == bytes(512)
    assert content[512:1024] == _sector(0xAB)
    assert content[1024:] == bytes(len(content) - 1024)
    seven = run("7zz", "t", image, check=False)
    assert seven.returncode != 0 and "Data Error" in seven.stdout + seven.stderr


@needs_7zz
def test_block_layout_fragmentation(probe: Probe, tmp_path: Path) -> None:
    sectors = {b * 1024: _sector(b + 1) for b in range(4)}
    image = tmp_path / "disk.vhd"
    image.write_bytes(vb.build_sparse(2 * MiB, 512 * 1024, sectors, block_order=[3, 2, 1, 0],
                                      align_data_4k=False))
    got = probe(image, "--layout", "--dump", tmp_path / "dump.raw")
    assert got["layout_fragmentation_percent"] == 100
    assert got["layout_4k_aligned"] == 0
    assert (tmp_path / "dump.raw").read_bytes() == seven_zip_extract(image, tmp_path / "x7")


# --------------------------------------------------------------------------- differencing

class VhdChain(TypedDict):
    parent: Path
    child: Path
    parent_id: bytes
    raw: Path


@pytest.fixture
def chain(tmp_path: Path) -> VhdChain:
    """A qemu-made dynamic parent with data and a differencing child built
    from the spec, with Windows-style W2ku and W2ru locators."""
    if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
        pytest.skip("qemu-img/qemu-io not installed")
    raw = tmp_path / "parent.raw"
    run("qemu-img", "create", "-q", "-f", "raw", raw, "6M")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 3M 1M",
        "-c", "write -P 0x33 5M 512k", raw)
    parent = tmp_path / "parent.vhd"
    run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
        "subformat=dynamic,force_size=on", raw, parent)
    parent_id = tail_footer(parent)[68:84]
    sectors = {1: _sector(0xAA), 2: _sector(0xBB), 4095: _sector(0xCC), 4096: _sector(0xDD),
               11000: _sector(0xEE), 12287: _sector(0xFF)}
    child = tmp_path / "child.vhd"
    child.write_bytes(vb.build_sparse(
        6 * MiB, 512 * 1024, sectors, disk_type=vb.DIFFERENCING, parent_id=parent_id,
        parent_timestamp=0x2A2B2C2D, parent_name="parent.vhd",
        locators=[vb.Locator(vb.W2KU, vb.utf16le("C:\\vd\\dir \u00e9\\parent.vhd")),
                  vb.Locator(vb.W2RU, vb.utf16le(".\\parent.vhd"), space=65536)],
        extra_blocks=[7]))
    return {"parent": parent, "child": child, "parent_id": parent_id, "raw": raw}


@needs_vhdiinfo
@needs_7zz
def test_differencing_matches_independent_readers(probe: Probe, tmp_path: Path,
                                                  chain: VhdChain) -> None:
    child, parent = chain["child"], chain["parent"]
    dump = tmp_path / "dump.raw"
    got = probe(child, "--parent", parent, "--dump", dump)
    libvhdi = vhdiinfo(child)
    assert got["status"] == 0 and got["parent_status"] == 0 and got["read_status"] == 0
    assert got["subtype"] == 4 and libvhdi["Disk type"] == "Differential"
    assert got["has_parent"] == 1
    assert got["virtual_size"] == vhdiinfo_media_size(libvhdi)
    assert got["identifier"] == libvhdi["Identifier"]
    assert got["parent_identifier"] == libvhdi["Parent identifier"]
    assert got["parent_identifier"] == probe(parent)["identifier"]
    assert got["parent_identifier"] == file_order_uuid(chain["parent_id"])
    assert got["parent_timestamp"] == 0x2A2B2C2D
    assert got["parent_absolute_path"] == "C:\\vd\\dir \u00e9\\parent.vhd"
    assert got["parent_relative_path"] == ".\\parent.vhd"
    assert got["block_size"] == 512 * 1024
    # 7-Zip resolves the parent itself (beside the child) and must agree.
    assert dump.read_bytes() == seven_zip_extract(child, tmp_path / "x7")


@needs_7zz
def test_differencing_clear_bits_read_parent_not_stray_bytes(probe: Probe, tmp_path: Path,
                                                             chain: VhdChain) -> None:
    child = chain["child"]
    child.write_bytes(_with_stray_bytes(child.read_bytes(), [0, 5, 1023]))
    dump = tmp_path / "dump.raw"
    got = probe(child, "--parent", chain["parent"], "--dump", dump)
    assert got["read_status"] == 0
    assert dump.read_bytes()[:512] == _sector(0x11)
    assert dump.read_bytes() == seven_zip_extract(child, tmp_path / "x7")


def test_differencing_without_parent_reads_zeros_where_absent(probe: Probe, tmp_path: Path,
                                                              chain: VhdChain) -> None:
    dump = tmp_path / "dump.raw"
    got = probe(chain["child"], "--dump", dump)
    content = dump.read_bytes()
    assert got["read_status"] == 0
    assert content[:512] == bytes(512)
    assert content[512:1536] == _sector(0xAA) + _sector(0xBB)
    assert content[4096 * 512:4097 * 512] == _sector(0xDD)
    assert content.count(0) == len(content) - 6 * 512


def test_differencing_ignores_deprecated_and_unknown_locators(probe: Probe, tmp_path: Path,
                                                              chain: VhdChain) -> None:
    child = tmp_path / "old.vhd"
    child.write_bytes(vb.build_sparse(
        1 * MiB, 512 * 1024, {}, disk_type=vb.DIFFERENCING, parent_id=chain["parent_id"],
        locators=[vb.Locator(vb.WI2K, b"C:\\old\\parent.vhd"), vb.Locator(b"MacX", b"file:///p"),
                  vb.Locator(vb.W2RU, vb.utf16le("rel.vhd"))]))
    got = probe(child)
    assert got["status"] == 0
    assert got["parent_absolute_path"] is None
    assert got["parent_relative_path"] == "rel.vhd"


# --------------------------------------------------------------------------- damage

def _set_field(footer: bytearray, offset: int, value: bytes) -> None:
    footer[offset:offset + len(value)] = value
    footer[:] = vb.with_checksum(bytes(footer), 64)


def damage_footers(data: bytes, offset: int, value: bytes, *, both: bool = True,
                   fix_checksum: bool = True) -> bytes:
    """Writes value at offset of the end footer (and of the copy at 0 when
    both and the image has one), recomputing checksums unless told not to."""
    out = bytearray(data)
    starts = [len(out) - 512]
    if both and out[:8] == b"conectix":
        starts.append(0)
    for start in starts:
        footer = bytearray(out[start:start + 512])
        if fix_checksum:
            _set_field(footer, offset, value)
        else:
            footer[offset:offset + len(value)] = value
        out[start:start + 512] = footer
    return bytes(out)


def damage_header(data: bytes, offset: int, value: bytes, *, fix_checksum: bool = True) -> bytes:
    out = bytearray(data)
    header = bytearray(out[512:1536])
    header[offset:offset + len(value)] = value
    out[512:1536] = vb.with_checksum(bytes(header), 36) if fix_checksum else header
    return bytes(out)


def flip(value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in value)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, bytes]:
    if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
        pytest.skip("qemu-img/qemu-io not installed")
    result = {}
    for subformat in ("fixed", "dynamic"):
        path = tmp_path / f"{subformat}.vhd"
        run("qemu-img", "create", "-q", "-f", "vpc", "-o",
            f"subformat={subformat},force_size=on", path, "4M")
        run("qemu-io", "-f", "vpc", "-c", "write -P 0x42 1M 64k", path)
        result[subformat] = path.read_bytes()
    return result


def _checksum_field(data: bytes) -> bytes:
    return data[-512 + 64:-512 + 68]


DAMAGE: dict[str, tuple[str, Callable[[bytes], bytes], int]] = {
    # name: (base image, mutation, expected code)
    "shorter_than_footer": ("fixed", lambda d: d[:511], VHD_INVALID_FILE_SIZE),
    "empty": ("fixed", lambda d: b"", VHD_INVALID_FILE_SIZE),
    "all_zero": ("fixed", lambda d: bytes(len(d)), VHD_DRIVE_FOOTER_MISSING),
    "fixed_no_cookie": ("fixed", lambda d: damage_footers(d, 0, b"CONECTIX", fix_checksum=False),
                        VHD_DRIVE_FOOTER_MISSING),
    "dynamic_no_cookie_anywhere": ("dynamic", lambda d: damage_footers(d, 0, b"xxxxxxxx"),
                                   VHD_DRIVE_FOOTER_MISSING),
    "fixed_bad_checksum": ("fixed", lambda d: damage_footers(d, 64, flip(_checksum_field(d)),
                                                             fix_checksum=False),
                           VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH),
    "dynamic_bad_checksum_both": ("dynamic", lambda d: damage_footers(
        d, 64, flip(_checksum_field(d)), fix_checksum=False), VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH),
    "dynamic_end_missing_copy_bad": ("dynamic", lambda d: damage_footers(
        damage_footers(d, 64, flip(_checksum_field(d)), fix_checksum=False), 0, b"\0" * 8,
        both=False, fix_checksum=False), VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH),
    "unknown_feature": ("fixed", lambda d: damage_footers(d, 8, struct.pack(">I", 0x102)),
                        VHD_DRIVE_FOOTER_CORRUPT),
    "version_2": ("fixed", lambda d: damage_footers(d, 12, struct.pack(">I", 0x00020000)),
                  VHD_FORMAT_UNSUPPORTED_VERSION),
    "dynamic_version_0": ("dynamic", lambda d: damage_footers(d, 12, struct.pack(">I", 0)),
                          VHD_FORMAT_UNSUPPORTED_VERSION),
    "disk_type_5": ("dynamic", lambda d: damage_footers(d, 60, struct.pack(">I", 5)),
                    VHD_FORMAT_UNKNOWN),
    "size_not_sector_multiple": ("fixed", lambda d: damage_footers(
        d, 48, struct.pack(">Q", 4 * MiB - 100)), VHD_INVALID_SIZE),
    "size_zero": ("dynamic", lambda d: damage_footers(d, 48, struct.pack(">Q", 0)),
                  VHD_INVALID_SIZE),
    "size_above_2040_gib": ("dynamic", lambda d: damage_footers(
        d, 48, struct.pack(">Q", (2040 << 30) + 512)), VHD_INVALID_SIZE),
    "fixed_file_too_short": ("fixed", lambda d: d[:4 * MiB - 512] + d[-512:],
                             VHD_INVALID_FILE_SIZE),
    "fixed_size_beyond_file": ("fixed", lambda d: damage_footers(
        d, 48, struct.pack(">Q", 4 * MiB + 512)), VHD_INVALID_FILE_SIZE),
    "header_offset_beyond_eof": ("dynamic", lambda d: damage_footers(
        d, 16, struct.pack(">Q", len(d))), VHD_DRIVE_FOOTER_CORRUPT),
    "header_offset_zero": ("dynamic", lambda d: damage_footers(d, 16, struct.pack(">Q", 0)),
                           VHD_DRIVE_FOOTER_CORRUPT),
    "header_bad_cookie": ("dynamic", lambda d: damage_header(d, 0, b"cxSPARSE"),
                          VHD_SPARSE_HEADER_CORRUPT),
    "header_bad_checksum": ("dynamic", lambda d: damage_header(
        d, 36, flip(d[512 + 36:512 + 40]), fix_checksum=False),
        VHD_SPARSE_HEADER_CHECKSUM_MISMATCH),
    "header_version_2": ("dynamic", lambda d: damage_header(d, 24, struct.pack(">I", 0x00020000)),
                         VHD_SPARSE_HEADER_UNSUPPORTED_VERSION),
    "block_size_3_mib": ("dynamic", lambda d: damage_header(d, 32, struct.pack(">I", 3 * MiB)),
                         VHD_INVALID_BLOCK_SIZE),
    "block_size_256_bytes": ("dynamic", lambda d: damage_header(d, 32, struct.pack(">I", 256)),
                             VHD_INVALID_BLOCK_SIZE),
    "block_size_512_mib": ("dynamic", lambda d: damage_header(d, 32, struct.pack(">I", 512 * MiB)),
                           VHD_INVALID_BLOCK_SIZE),
    "max_table_entries_too_few": ("dynamic", lambda d: damage_header(d, 28, struct.pack(">I", 1)),
                                  VHD_SPARSE_HEADER_CORRUPT),
    "bat_beyond_eof": ("dynamic", lambda d: damage_header(d, 16, struct.pack(">Q", len(d) - 4)),
                       VHD_BLOCK_ALLOCATION_TABLE_CORRUPT),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damage_gives_documented_code(probe: Probe, tmp_path: Path, images: dict[str, bytes],
                                      name: str) -> None:
    base, mutate, expected = DAMAGE[name]
    image = tmp_path / "damaged.vhd"
    image.write_bytes(mutate(images[base]))
    got = probe(image)
    assert got["status"] == expected, f"{got['status']:#x} != {expected:#x}"


# Where independent tools also refuse the damage, make sure they do: the
# damaged files are damaged in the way the names say.
@needs_qemu
@needs_7zz
@pytest.mark.parametrize("name", ["fixed_bad_checksum", "dynamic_bad_checksum_both"])
def test_checksum_damage_is_refused_by_qemu_and_7zip(tmp_path: Path, images: dict[str, bytes],
                                                     name: str) -> None:
    base, mutate, _ = DAMAGE[name]
    image = tmp_path / "damaged.vhd"
    image.write_bytes(mutate(images[base]))
    assert run("qemu-img", "info", "-f", "vpc", image, check=False).returncode != 0
    assert run("7zz", "t", image, check=False).returncode != 0


@needs_vhdiinfo
@pytest.mark.parametrize("name", ["version_2", "dynamic_version_0", "disk_type_5",
                                  "header_bad_cookie", "header_version_2"])
def test_structural_damage_is_refused_by_vhdiinfo(tmp_path: Path, images: dict[str, bytes],
                                                  name: str) -> None:
    base, mutate, _ = DAMAGE[name]
    image = tmp_path / "damaged.vhd"
    image.write_bytes(mutate(images[base]))
    assert run("vhdiinfo", image, check=False).returncode != 0


@needs_qemu
def test_block_outside_file_fails_on_read(probe: Probe, tmp_path: Path, images: dict[str,
                                          bytes]) -> None:
    data = bytearray(images["dynamic"])
    table_offset = struct.unpack(">Q", data[512 + 16:512 + 24])[0]
    entry = struct.unpack(">I", data[table_offset:table_offset + 4])[0]
    assert entry != 0xFFFFFFFF
    data[table_offset:table_offset + 4] = struct.pack(">I", len(data) // 512)
    image = tmp_path / "damaged.vhd"
    image.write_bytes(bytes(data))
    # qemu refuses such a file at open ("the image has been truncated").
    assert run("qemu-img", "info", "-f", "vpc", image, check=False).returncode != 0
    got = probe(image, "--dump", tmp_path / "dump.raw")
    assert got["status"] == 0   # the BAT is read on first use
    assert got["read_status"] == VHD_BLOCK_ALLOCATION_TABLE_CORRUPT


def test_locator_outside_file_is_header_damage(probe: Probe, tmp_path: Path,
                                               chain: VhdChain) -> None:
    data = bytearray(chain["child"].read_bytes())
    entry = 512 + 576          # locator 0 (W2ku)
    data[entry + 16:entry + 24] = struct.pack(">Q", len(data))
    data[512:1536] = vb.with_checksum(bytes(data[512:1536]), 36)
    image = tmp_path / "damaged.vhd"
    image.write_bytes(bytes(data))
    assert probe(image)["status"] == VHD_SPARSE_HEADER_CORRUPT


# --------------------------------------------------------------------------- recovery and old footers

@needs_qemu
def test_damaged_end_footer_recovers_from_copy(probe: Probe, tmp_path: Path, images: dict[str,
                                               bytes]) -> None:
    data = images["dynamic"]
    for damaged in (damage_footers(data, 64, flip(_checksum_field(data)), both=False,
                                   fix_checksum=False),
                    data[:-512] + bytes(512),
                    data[:-512]):
        image = tmp_path / "recovered.vhd"
        image.write_bytes(damaged)
        dump = tmp_path / "dump.raw"
        got = probe(image, "--dump", dump)
        assert got["status"] == 0 and got["read_status"] == 0
        assert got["identifier"] == file_order_uuid(data[68:84])
        # qemu reads the copy at offset 0 first, so it reads these too.
        assert dump.read_bytes() == qemu_raw(image, tmp_path / "qemu.raw")


@needs_qemu
def test_fixed_footer_at_offset_0_is_guest_data(probe: Probe, tmp_path: Path, images: dict[str,
                                                bytes]) -> None:
    """Only dynamic and differencing disks keep a footer copy at 0: a fixed
    footer there is guest data and does not stand in for a missing one."""
    fixed = images["fixed"]
    image = tmp_path / "fixed.vhd"
    image.write_bytes(fixed[-512:] + fixed[512:-512] + bytes(512))
    assert probe(image)["status"] == VHD_DRIVE_FOOTER_MISSING


@needs_qemu
def test_short_footer_of_old_virtual_pc(probe: Probe, tmp_path: Path, images: dict[str,
                                        bytes]) -> None:
    """Virtual PC before 2004 wrote 511-byte footers (the last, reserved,
    byte missing); the content and size must not change."""
    full = tmp_path / "full.vhd"
    full.write_bytes(images["fixed"])
    short = tmp_path / "short.vhd"
    short.write_bytes(images["fixed"][:-1])
    a = probe(full, "--dump", tmp_path / "a.raw")
    b = probe(short, "--dump", tmp_path / "b.raw")
    assert b["status"] == 0 and b["read_status"] == 0 and b["probe"] == 1
    assert (a["virtual_size"], a["identifier"]) == (b["virtual_size"], b["identifier"])
    assert (tmp_path / "a.raw").read_bytes() == (tmp_path / "b.raw").read_bytes()


def test_probe_refuses_other_files(probe: Probe, tmp_path: Path) -> None:
    other = tmp_path / "other.img"
    other.write_bytes(b"vhdxfile" + bytes(2 * MiB))
    got = probe(other)
    assert got["probe"] == 0
    assert got["status"] == VHD_DRIVE_FOOTER_MISSING
