"""The engine's VHDX parser (src/vdengine/vhdx.c, vhdx_log.c, crc32c.c),
checked through a small C harness against images and answers from tools
nobody here wrote: qemu-img and qemu-io make fixed and dynamic images and
read them back (and replay logs: `qemu-img check -r all`), vhdiinfo
(libvhdi) and 7-Zip read them independently.  What no tool makes
(differencing disks, 4 KiB logical sectors, a log still to replay, damaged
structures) comes from tests/vhdx_builder.py, written from [MS-VHDX]; the
independent readers confirm those images first wherever they can read them.

Runs without the Python extension: the harness is compiled here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import pytest

if TYPE_CHECKING:
    from typing_extensions import Unpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vhdx_builder as vb  # noqa: E402
from c_harness import compile_harness  # noqa: E402

ENGINE_SOURCES = ["vhdx.c", "vhdx_log.c", "vhdx_log_write.c", "vhdx_write.c", "crc32c.c", "guid.c", "image.c", "io.c", "utf16.c"]

# Win32 codes (winerror.h; the virtual disk family is FACILITY_USERMODE_VHD).
ERROR_INVALID_PARAMETER = 87
ERROR_FILE_CORRUPT = 1392
VHD_FORMAT_UNSUPPORTED_VERSION = 0xC03A0005
VHD_BLOCK_ALLOCATION_TABLE_CORRUPT = 0xC03A000A
VHD_INVALID_BLOCK_SIZE = 0xC03A000B
VHD_INVALID_SIZE = 0xC03A0012
VIRTDISK_NOT_VIRTUAL_DISK = 0xC03A0015
UNSUPPORTED = VHD_FORMAT_UNSUPPORTED_VERSION

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="qemu-img/qemu-io not installed")
needs_vhdiinfo = pytest.mark.skipif(shutil.which("vhdiinfo") is None,
                                    reason="vhdiinfo not installed")
needs_7zz = pytest.mark.skipif(shutil.which("7zz") is None, reason="7zz not installed")


# --------------------------------------------------------------------------- tools

class Probe(Protocol):
    """The `probe` fixture: runs the harness, returns its JSON answer."""

    def __call__(self, *args: str | Path) -> dict[str, Any]: ...


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness under AddressSanitizer and UBSan (where the compiler has
    them): every test below also checks the parser for memory errors."""
    return compile_harness(tmp_path_factory.mktemp("vhdx_harness"), "vhdx_probe_main",
                           ENGINE_SOURCES, sanitize=True)


@pytest.fixture(scope="session")
def plain_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness without sanitizers, for timing."""
    return compile_harness(tmp_path_factory.mktemp("vhdx_plain"), "vhdx_probe_main", ENGINE_SOURCES)


@pytest.fixture(scope="session")
def probe(harness: Path) -> Probe:
    """The compiled harness, as a function returning its JSON answer."""
    def answer(*args: str | Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(run(harness, *args).stdout)
        return result
    return answer


def qemu_info(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(run("qemu-img", "info", "--output=json", "-f", "vhdx",
                                          path).stdout)
    return info


def qemu_raw(path: Path, out: Path) -> bytes:
    run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, out)
    return out.read_bytes()


def vhdiinfo(path: Path) -> dict[str, str]:
    """vhdiinfo's "Name : value" lines as a dict."""
    result = run("vhdiinfo", path, check=False)
    if result.returncode != 0:
        return {}
    fields = {}
    for line in result.stdout.splitlines():
        match = re.match(r"\s+([^:]+?)\s*:\s*(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def vhdiinfo_media_size(fields: dict[str, str]) -> int:
    match = re.search(r"\((\d+) bytes\)", fields["Media size"])
    assert match is not None, fields["Media size"]
    return int(match.group(1))


def seven_zip_info(path: Path) -> dict[str, str]:
    """The "Key: value" lines 7-Zip prints about the newest image level."""
    fields: dict[str, str] = {}
    for line in run("7zz", "l", "-slt", path).stdout.splitlines():
        match = re.match(r"\s*([A-Za-z_0-9 ]+?)\s*[:=]\s*(.*)$", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def seven_zip_extract(path: Path, directory: Path) -> bytes:
    """The raw disk 7-Zip extracts (it finds parents beside the child)."""
    run("7zz", "e", "-y", f"-o{directory}", path)
    (extracted,) = list(directory.iterdir())
    return extracted.read_bytes()


def windows_guid(raw_hex: str) -> str:
    """7-Zip prints a GUID's 16 stored bytes as hex; this is its text form."""
    return str(uuid.UUID(bytes_le=bytes.fromhex(raw_hex)))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- file surgery

regions = vb.regions
metadata_entry_offset = vb.metadata_entry_offset
metadata_item_offset = vb.metadata_item_offset


def bat_offset(raw: bytes | bytearray) -> int:
    return regions(raw)[vb.BAT_REGION][0]


def refresh_crc(raw: bytearray, offset: int, size: int) -> None:
    raw[offset:offset + size] = vb.with_crc(raw[offset:offset + size])


# --------------------------------------------------------------------------- CRC-32C

def test_crc32c_check_value(probe: Probe, tmp_path: Path) -> None:
    """The CRC-32C check value (RFC 3720 B.4; [MS-VHDX] uses this CRC)."""
    sample = tmp_path / "sample"
    sample.write_bytes(b"123456789")
    assert probe("--crc32c", sample)["crc32c"] == 0xE3069283
    assert vb.crc32c(b"123456789") == 0xE3069283


def test_crc32c_hardware_and_portable_paths_agree(probe: Probe, tmp_path: Path) -> None:
    """Every length class of the three-way SSE4.2 loop (long rounds, short
    rounds, 8-byte tail, byte tail) against the portable slicing-by-8 build
    and against the bytewise Python reference."""
    portable = compile_harness(tmp_path, "vhdx_probe_main", ENGINE_SOURCES,
                               defines=["-DVD_CRC32C_PORTABLE_ONLY"])
    data = os.urandom(70000)
    lengths = [0, 1, 7, 8, 9, 255, 767, 768, 769, 4096, 12287, 12288, 12289, 24575, 24576, 65536,
               70000]
    for start in (0, 3):
        for length in lengths:
            if start + length > len(data):
                continue
            sample = tmp_path / "sample"
            sample.write_bytes(data[start:start + length])
            expected = vb.crc32c(data[start:start + length])
            assert probe("--crc32c", sample)["crc32c"] == expected, length
            assert json.loads(run(portable, "--crc32c", sample).stdout)["crc32c"] == expected


# --------------------------------------------------------------------------- qemu images

QEMU_SIZES = {"3M": 3 * MiB, "10M": 10 * MiB, "1G": GiB, "100G": 100 * GiB, "4T": 4 * TiB,
              "64T": 64 * TiB}


@needs_qemu
@needs_vhdiinfo
@needs_7zz
@pytest.mark.parametrize("subformat,size,block_size", [
    ("fixed", "3M", "1M"), ("fixed", "10M", "8M"), ("fixed", "10M", "32M"),
    ("dynamic", "3M", "1M"), ("dynamic", "10M", "8M"), ("dynamic", "1G", "32M"),
    ("dynamic", "1G", "256M"), ("dynamic", "100G", "1M"), ("dynamic", "4T", "32M"),
    ("dynamic", "64T", "256M"), ("dynamic", "10M", "0"),
])
def test_open_matches_qemu_vhdiinfo_and_7zip(probe: Probe, tmp_path: Path, subformat: str,
                                             size: str, block_size: str) -> None:
    image = tmp_path / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o",
        f"subformat={subformat},block_size={block_size}", image, size)
    got = probe(image)
    info = qemu_info(image)
    libvhdi = vhdiinfo(image)
    seven = seven_zip_info(image)

    assert got["probe"] == 1
    assert got["status"] == 0
    assert got["device"] == 3
    assert got["subtype"] == {"fixed": 2, "dynamic": 3}[subformat]
    assert libvhdi["Disk type"] == {"fixed": "Fixed", "dynamic": "Dynamic"}[subformat]
    assert seven["Fixed"] == {"fixed": "+", "dynamic": "-"}[subformat]
    assert got["virtual_size"] == info["virtual-size"] == vhdiinfo_media_size(libvhdi)
    assert got["virtual_size"] == QEMU_SIZES[size]
    assert got["block_size"] == (info["cluster-size"] if subformat == "dynamic" else 0)
    assert int(seven["BlockSize"]) == info["cluster-size"]
    assert got["logical_sector_size"] == int(libvhdi["Bytes per sector"].split()[0]) == 512
    assert got["physical_sector_size"] == int(seven["PhysicalSectorSize"])
    # vhdiinfo's Identifier is the current header's DataWriteGuid.
    assert got["identifier"] == libvhdi["Identifier"] == windows_guid(seven["DataWriteGuid"])
    assert got["virtual_disk_id"] == windows_guid(seven["Id"])
    assert got["has_parent"] == 0
    assert got["is_4k_aligned"] == 1
    assert got["smallest_safe_virtual_size"] == got["virtual_size"]
    assert got["fragmentation_percent"] == 0


@needs_qemu
@pytest.mark.parametrize("subformat,block_size", [("dynamic", "1M"), ("dynamic", "32M"),
                                                  ("fixed", "2M"), ("dynamic", "256M")])
def test_content_matches_qemu(probe: Probe, tmp_path: Path, subformat: str,
                              block_size: str) -> None:
    image = tmp_path / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o",
        f"subformat={subformat},block_size={block_size}", image, "70M")
    writes = [("0x5a", 0, 4096), ("0xa5", 512 * 7, 1536), ("0x11", 2 * MiB - 512, 1024),
              ("0x22", 5 * MiB, MiB), ("0x33", 33 * MiB - 512, 512), ("0xab", 64 * MiB, 3 * MiB),
              ("0x44", 70 * MiB - 512, 512)]
    args = []
    for pattern, offset, length in writes:
        args += ["-c", f"write -P {pattern} {offset} {length}"]
    run("qemu-io", "-f", "vhdx", *args, image)

    dump = tmp_path / "dump.raw"
    got = probe(image, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert dump.read_bytes() == qemu_raw(image, tmp_path / "qemu.raw")


@needs_qemu
def test_ranges_across_blocks_match_qemu(probe: Probe, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", image, "8M")
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0x7e 1023k 2050k", image)
    whole = qemu_raw(image, tmp_path / "qemu.raw")
    for offset, length in [(0, 1), (MiB - 1, 2), (MiB - 513, 2 * MiB + 1030), (8 * MiB - 1, 1)]:
        out = tmp_path / "range.raw"
        assert probe(image, "--read", str(offset), str(length), out)["range_status"] == 0
        assert out.read_bytes() == whole[offset:offset + length]
    beyond = probe(image, "--read", str(8 * MiB - 1), "2", out)
    assert beyond["range_status"] == ERROR_INVALID_PARAMETER


@needs_qemu
def test_open_does_not_read_the_bat(plain_harness: Path, tmp_path: Path) -> None:
    """A 4 TiB disk with 1 MiB blocks has a 32 MiB BAT.  Open + size +
    close must not touch it: reading it would cost milliseconds, the open
    costs microseconds (the goal is 20 us on an idle machine)."""
    image = tmp_path / "big.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", image, "4T")
    assert regions(image.read_bytes()[:320 * 1024])[vb.BAT_REGION][1] >= 32 * MiB
    timing = json.loads(run(plain_harness, "--bench", "2000", image).stdout)
    print(f"open+size+close: {timing['ns_per_open'] / 1000:.1f} us")
    assert timing["ns_per_open"] < 500_000


# --------------------------------------------------------------------------- builder images

@needs_qemu
@needs_7zz
def test_builder_block_states_match_qemu_and_7zip(probe: Probe, tmp_path: Path) -> None:
    """Every payload state of a dynamic file; qemu and 7-Zip read the same."""
    image = vb.Image(12 * MiB, block_size=MiB, default_state=vb.NOT_PRESENT)
    image.write(0, b"\x01" * 4096)
    image.write(3 * MiB + 512, b"\x02" * 512)
    image.write(11 * MiB, b"\x03" * MiB)
    image.set_state(5, vb.ZERO)
    image.set_state(6, vb.UNMAPPED)
    image.set_state(7, vb.UNDEFINED)
    path = tmp_path / "states.vhdx"
    image.save(path)
    dump = tmp_path / "dump.raw"
    got = probe(path, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert dump.read_bytes() == image.expected()
    assert dump.read_bytes() == qemu_raw(path, tmp_path / "qemu.raw")
    assert dump.read_bytes() == seven_zip_extract(path, tmp_path / "7z")


@needs_vhdiinfo
@needs_7zz
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
@pytest.mark.parametrize("block_size", [MiB, 32 * MiB])
def test_4k_logical_sectors(probe: Probe, tmp_path: Path, kind: str, block_size: int) -> None:
    """qemu-img cannot make 4 KiB-sector VHDX (no such option; its driver
    refuses them), so the builder does; vhdiinfo and 7-Zip read them."""
    image = vb.Image(40 * MiB, kind=kind, block_size=block_size, logical_sector_size=4096,
                     physical_sector_size=4096)
    image.write(4096, b"\x4b" * 8192)
    image.write(33 * MiB, os.urandom(3 * MiB))
    path = tmp_path / "4k.vhdx"
    image.save(path)
    dump = tmp_path / "dump.raw"
    got = probe(path, "--dump", dump)
    libvhdi = vhdiinfo(path)
    assert got["status"] == 0 and got["read_status"] == 0
    assert got["logical_sector_size"] == 4096 == int(libvhdi["Bytes per sector"].split()[0])
    assert got["physical_sector_size"] == 4096
    assert got["subtype"] == {"dynamic": 3, "fixed": 2}[kind]
    assert got["identifier"] == libvhdi["Identifier"]
    assert dump.read_bytes() == image.expected() == seven_zip_extract(path, tmp_path / "7z")


def _differencing_pair(tmp_path: Path, *, logical_sector_size: int = 512, block_size: int = 2 * MiB
                       ) -> tuple[Path, Path, vb.Image, bytes]:
    """A qemu-made (or, for 4 KiB sectors, builder-made) parent full of data
    and a builder-made child of it."""
    parent = tmp_path / "parent.vhdx"
    if logical_sector_size == 512:
        run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", parent, "12M")
        run("qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 12M", parent)
        parent_raw = qemu_raw(parent, tmp_path / "parent.raw")
    else:
        base = vb.Image(12 * MiB, block_size=MiB, logical_sector_size=4096)
        base.write(0, os.urandom(12 * MiB))
        base.save(parent)
        parent_raw = base.expected()
    volume = "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}"
    locator = vb.Locator(vb.guid_text(vb.data_write_guid(parent)), relative_path=".\\parent.vhdx",
                         volume_path=volume + "\\vms\\parent.vhdx",
                         absolute_win32_path="C:\\vms\\parent.vhdx",
                         parent_linkage2="{00000000-0000-0000-0000-000000000000}")
    child = vb.Image(12 * MiB, kind="differencing", block_size=block_size, locator=locator,
                     logical_sector_size=logical_sector_size)
    sector = logical_sector_size
    child.write(sector, b"\x22" * 2 * sector)                 # partial, first block
    child.write(3 * MiB - sector, b"\x33" * 8 * sector)        # crosses a block boundary
    child.write(4 * MiB, b"\x44" * block_size)                 # a whole block: FULLY_PRESENT
    child.write(12 * MiB - sector, b"\x55" * sector)           # last sector of the disk
    child.set_state(4 * MiB // block_size + 1, vb.ZERO)        # zeros, not the parent's data
    path = tmp_path / "child.vhdx"
    child.save(path)
    return parent, path, child, parent_raw


@needs_qemu
@needs_vhdiinfo
@needs_7zz
@pytest.mark.parametrize("logical_sector_size", [512, 4096])
def test_differencing_matches_vhdiinfo_and_7zip(probe: Probe, tmp_path: Path,
                                                logical_sector_size: int) -> None:
    parent, child_path, child, parent_raw = _differencing_pair(
        tmp_path, logical_sector_size=logical_sector_size)
    dump = tmp_path / "dump.raw"
    got = probe(child_path, "--parent", parent, "--dump", dump)
    libvhdi = vhdiinfo(child_path)
    seven = seven_zip_info(child_path)

    assert got["status"] == 0 and got["parent_status_0"] == 0 and got["read_status"] == 0
    assert got["subtype"] == 4 and got["has_parent"] == 1
    assert libvhdi["Disk type"] == "Differential"
    assert got["identifier"] == libvhdi["Identifier"]
    assert got["parent_identifier"] == libvhdi["Parent identifier"]
    assert got["parent_identifier"] == probe(parent)["identifier"]
    assert got["parent_absolute_path"] == libvhdi["Parent filename"] == "C:\\vms\\parent.vhdx"
    assert got["parent_relative_path"] == seven["relative_path"] == ".\\parent.vhdx"
    assert got["parent_volume_path"] == seven["volume_path"]
    assert got["block_size"] == 2 * MiB
    assert got["logical_sector_size"] == logical_sector_size
    # The bitmap's clear bits give the parent's data, set ones the child's.
    expected = child.expected(parent_raw)
    assert dump.read_bytes() == expected
    assert expected[:logical_sector_size] == parent_raw[:logical_sector_size]
    assert dump.read_bytes() == seven_zip_extract(child_path, tmp_path / "7z")


@needs_qemu
@needs_7zz
def test_differencing_block_states_match_7zip(probe: Probe, tmp_path: Path) -> None:
    """NOT_PRESENT reads the parent; UNDEFINED, UNMAPPED and ZERO read zeros
    (7-Zip agrees); PARTIALLY_PRESENT mixes by the sector bitmap."""
    parent = tmp_path / "parent.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", parent, "8M")
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 8M", parent)
    locator = vb.Locator(vb.guid_text(vb.data_write_guid(parent)), relative_path="parent.vhdx")
    child = vb.Image(8 * MiB, kind="differencing", block_size=MiB, locator=locator)
    child.set_state(1, vb.UNDEFINED)
    child.set_state(2, vb.UNMAPPED)
    child.set_state(3, vb.ZERO)
    child.write(5 * MiB + 512, b"\x55" * 512)
    path = tmp_path / "child.vhdx"
    child.save(path)
    dump = tmp_path / "dump.raw"
    assert probe(path, "--parent", parent, "--dump", dump)["read_status"] == 0
    content = dump.read_bytes()
    assert content == seven_zip_extract(path, tmp_path / "7z")
    assert content == child.expected(qemu_raw(parent, tmp_path / "parent.raw"))
    assert content[:MiB] == b"\x11" * MiB and content[MiB:4 * MiB] == bytes(3 * MiB)


@needs_qemu
def test_differencing_without_parent_reads_zeros_where_absent(probe: Probe, tmp_path: Path) -> None:
    _, child_path, child, _ = _differencing_pair(tmp_path)
    dump = tmp_path / "dump.raw"
    got = probe(child_path, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert dump.read_bytes() == child.expected(None)


@needs_qemu
@needs_7zz
def test_two_level_chain_matches_7zip(probe: Probe, tmp_path: Path) -> None:
    parent, child_path, child, parent_raw = _differencing_pair(tmp_path)
    locator = vb.Locator(vb.guid_text(vb.data_write_guid(child_path)), relative_path="child.vhdx")
    grandchild = vb.Image(12 * MiB, kind="differencing", block_size=MiB, locator=locator)
    grandchild.write(MiB, b"\x66" * 4096)
    grandchild.write(2 * MiB + 512, b"\x77" * 512)
    path = tmp_path / "grandchild.vhdx"
    grandchild.save(path)
    dump = tmp_path / "dump.raw"
    got = probe(path, "--parent", child_path, "--parent", parent, "--dump", dump)
    assert got["read_status"] == 0
    assert dump.read_bytes() == grandchild.expected(child.expected(parent_raw))
    assert dump.read_bytes() == seven_zip_extract(path, tmp_path / "7z")


# --------------------------------------------------------------------------- the log

def _qemu_before_after(tmp_path: Path, log_size: str = "1M") -> tuple[bytes, bytes, bytes]:
    """A qemu-made dynamic image before and after qemu-io writes (which
    allocate blocks and so change the BAT), and the content qemu reads
    from the second."""
    before = tmp_path / "before.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o", f"block_size=1M,log_size={log_size}",
        before, "64M")
    after = tmp_path / "after.vhdx"
    shutil.copy(before, after)
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 3M 64k", "-c", "write -P 0x6b 40M 8k",
        "-c", "write -P 0x7c 63M 1M", after)
    return before.read_bytes(), after.read_bytes(), qemu_raw(after, tmp_path / "after.raw")


class DirtyOptions(TypedDict, total=False):
    """Keyword options of vb.make_dirty that the log tests vary."""
    entries: int
    position: int
    stale_entries: int
    stale_target: int
    torn_entry: bool
    flushed_file_offset: int


def _dirty_from_qemu(before: bytes, after: bytes, **options: Unpack[DirtyOptions]) -> bytearray:
    """`after` with its BAT changes still in the log: the state a crash
    leaves between the log write and the in-place BAT update."""
    bat, length = regions(after)[vb.BAT_REGION]
    reverted = bytearray(after)
    reverted[bat:bat + length] = before[bat:bat + length]
    dirty, _ = vb.make_dirty(reverted, after, **options)
    return dirty


LOG_LAYOUTS: dict[str, DirtyOptions] = {
    "one entry": DirtyOptions(entries=1),
    "three entries": DirtyOptions(entries=3),
    "stale and torn entries around": DirtyOptions(entries=2, stale_entries=2, torn_entry=True),
    "wrapping the log's end": DirtyOptions(entries=3, position=MiB - 8192),
}


@needs_qemu
@pytest.mark.parametrize("layout", list(LOG_LAYOUTS))
def test_dirty_log_read_only_sees_replay_and_leaves_file_alone(probe: Probe, tmp_path: Path,
                                                               layout: str) -> None:
    before, after, after_raw = _qemu_before_after(tmp_path)
    dirty = tmp_path / "dirty.vhdx"
    dirty.write_bytes(_dirty_from_qemu(before, after, **LOG_LAYOUTS[layout]))

    # The file as it stands (no replay) does not read as `after`.
    stale = tmp_path / "stale.vhdx"
    stale_bytes = bytearray(dirty.read_bytes())
    header_at, current = vb.current_header(stale_bytes)
    stale_bytes[header_at + 48:header_at + 64] = bytes(16)
    refresh_crc(stale_bytes, header_at, 4096)
    stale.write_bytes(stale_bytes)
    assert qemu_raw(stale, tmp_path / "stale.raw") != after_raw

    digest = sha256(dirty)
    dump = tmp_path / "dump.raw"
    got = probe(dirty, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert sha256(dirty) == digest
    assert dump.read_bytes() == after_raw

    # qemu replays the same log (it refuses a read-only open of it).
    replayed = tmp_path / "qemu.vhdx"
    shutil.copy(dirty, replayed)
    assert run("qemu-img", "info", "-f", "vhdx", replayed, check=False).returncode != 0
    run("qemu-img", "check", "-q", "-r", "all", "-f", "vhdx", replayed, check=False)
    assert qemu_raw(replayed, tmp_path / "qemu.raw") == dump.read_bytes()


@needs_qemu
def test_log_entries_behind_the_tail_are_not_replayed(probe: Probe, tmp_path: Path) -> None:
    """An older entry of the same log, still valid and in sequence with the
    active ones, but behind the head's Tail: its write was applied long ago
    and the sector has changed since (here: payload data written in place).
    Replaying it would bring old bytes back ([MS-VHDX] 2.3.2: the active
    sequence starts at the Tail)."""
    before, after, after_raw = _qemu_before_after(tmp_path)
    bat = bat_offset(after)
    block3 = (struct.unpack_from("<Q", after, bat + 8 * 3)[0] >> 20) * MiB
    assert block3 >= MiB and after[block3:block3 + 4096] == b"\x5a" * 4096
    dirty = tmp_path / "dirty.vhdx"
    dirty.write_bytes(_dirty_from_qemu(before, after, entries=2, stale_entries=1,
                                       stale_target=block3))
    dump = tmp_path / "dump.raw"
    assert probe(dirty, "--dump", dump)["read_status"] == 0
    assert dump.read_bytes() == after_raw


@needs_qemu
@pytest.mark.parametrize("layout", ["three entries", "wrapping the log's end"])
def test_dirty_log_writable_open_replays_into_file(probe: Probe, tmp_path: Path,
                                                   layout: str) -> None:
    before, after, after_raw = _qemu_before_after(tmp_path)
    image = tmp_path / "dirty.vhdx"
    image.write_bytes(_dirty_from_qemu(before, after, **LOG_LAYOUTS[layout]))
    old_sequence = struct.unpack_from("<Q", vb.current_header(image.read_bytes())[1], 8)[0]

    got = probe("--writable", image)
    assert got["status"] == 0
    raw = image.read_bytes()
    _, current = vb.current_header(raw)
    assert current[48:64] == bytes(16)                      # LogGuid cleared
    assert struct.unpack_from("<Q", current, 8)[0] == old_sequence + 2
    bat, length = regions(after)[vb.BAT_REGION]
    assert raw[bat:bat + length] == after[bat:bat + length]
    # qemu now opens it read-only and finds nothing wrong.
    assert run("qemu-img", "check", "-f", "vhdx", image).returncode == 0
    assert qemu_raw(image, tmp_path / "qemu.raw") == after_raw
    dump = tmp_path / "dump.raw"
    assert probe(image, "--dump", dump)["read_status"] == 0
    assert dump.read_bytes() == after_raw


@needs_qemu
def test_dirty_log_that_extends_the_file(probe: Probe, tmp_path: Path) -> None:
    """The file lost its tail after the log was written: data blocks and BAT
    both come back from the log, and LastFileOffset restores the size.  The
    read-only view and a writable replay agree (qemu's replay does not
    extend the file for a 1 MiB-aligned LastFileOffset, so it is not the
    reference here)."""
    before, after, after_raw = _qemu_before_after(tmp_path, log_size="4M")
    dirty = bytearray(vb.make_dirty(before, after, entries=4)[0])
    assert len(dirty) < len(after)
    image = tmp_path / "dirty.vhdx"
    image.write_bytes(dirty)
    dump = tmp_path / "ro.raw"
    assert probe(image, "--dump", dump)["read_status"] == 0
    assert dump.read_bytes() == after_raw
    assert probe("--writable", image)["status"] == 0
    assert image.stat().st_size == len(after)
    assert probe(image, "--dump", dump)["read_status"] == 0
    assert dump.read_bytes() == after_raw


@needs_qemu
def test_dirty_log_differencing_image(probe: Probe, tmp_path: Path) -> None:
    """A log replayed over a builder-made differencing file: a new block,
    the sector bitmap and the BAT all come from the log."""
    parent, _, child, parent_raw = _differencing_pair(tmp_path)
    child.log_length = 8 * MiB          # room for a new block and the moved bitmap
    old = child.to_bytes()
    child.write(9 * MiB + 4096, b"\x99" * 1024)
    new = child.to_bytes()
    dirty = vb.make_dirty(old, new, entries=2)[0]
    image = tmp_path / "child.vhdx"
    image.write_bytes(dirty)
    dump = tmp_path / "dump.raw"
    got = probe(image, "--parent", parent, "--dump", dump)
    assert got["read_status"] == 0
    assert dump.read_bytes() == child.expected(parent_raw)


@needs_qemu
def test_log_guid_without_entries_means_nothing_to_replay(probe: Probe, tmp_path: Path) -> None:
    """A writer sets LogGuid before its first entry reaches the disk."""
    image = tmp_path / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", image, "16M")
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0x12 1M 4k", image)
    expected = qemu_raw(image, tmp_path / "qemu.raw")
    raw = bytearray(image.read_bytes())
    header_at, _ = vb.current_header(raw)
    raw[header_at + 48:header_at + 64] = uuid.uuid4().bytes_le
    refresh_crc(raw, header_at, 4096)
    image.write_bytes(raw)
    dump = tmp_path / "dump.raw"
    assert probe(image, "--dump", dump)["read_status"] == 0
    assert dump.read_bytes() == expected


@needs_qemu
def test_dirty_log_of_a_truncated_file_is_corrupt(probe: Probe, tmp_path: Path) -> None:
    before, after, _ = _qemu_before_after(tmp_path)
    dirty = _dirty_from_qemu(before, after, entries=1, flushed_file_offset=len(after) + MiB)
    image = tmp_path / "dirty.vhdx"
    image.write_bytes(dirty)
    assert probe(image)["status"] == ERROR_FILE_CORRUPT


# --------------------------------------------------------------------------- damage

@pytest.fixture
def built(tmp_path: Path) -> vb.Image:
    """A small dynamic builder image with data, as bytes to damage."""
    image = vb.Image(8 * MiB, block_size=MiB)
    image.write(MiB, b"\xc3" * 8192)
    return image


def _open_bytes(probe: Probe, tmp_path: Path, raw: bytes | bytearray, *args: str | Path
                ) -> dict[str, Any]:
    path = tmp_path / "damaged.vhdx"
    path.write_bytes(raw)
    return probe(path, *args)


def test_not_a_vhdx(probe: Probe, tmp_path: Path) -> None:
    got = _open_bytes(probe, tmp_path, b"conectix" + bytes(4 * MiB))
    assert got["probe"] == 0 and got["status"] == VIRTDISK_NOT_VIRTUAL_DISK
    got = _open_bytes(probe, tmp_path, b"vhdx")
    assert got["probe"] == 0 and got["status"] == VIRTDISK_NOT_VIRTUAL_DISK


def test_truncated_header_section(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    got = _open_bytes(probe, tmp_path, built.to_bytes()[:300 * 1024])
    assert got["probe"] == 1 and got["status"] == ERROR_FILE_CORRUPT


@needs_qemu
def test_current_header_crc_damaged_other_header_wins(probe: Probe, tmp_path: Path,
                                                      built: vb.Image) -> None:
    raw = built.to_bytes()
    # Header 2 is current (higher sequence); give it its own DataWriteGuid.
    newer = uuid.uuid4().bytes_le
    raw[vb.HEADER2 + 32:vb.HEADER2 + 48] = newer
    refresh_crc(raw, vb.HEADER2, 4096)
    assert _open_bytes(probe, tmp_path, raw)["identifier"] == str(uuid.UUID(bytes_le=newer))
    raw[vb.HEADER2 + 100] ^= 0x40                        # checksum no longer matches
    got = _open_bytes(probe, tmp_path, raw)
    assert got["status"] == 0
    assert got["identifier"] == str(uuid.UUID(bytes_le=built.data_write_guid))
    # qemu, which checks both CRCs, also opens it with header 1.
    assert run("qemu-img", "info", tmp_path / "damaged.vhdx").returncode == 0


@needs_qemu
def test_both_headers_damaged(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    raw = built.to_bytes()
    raw[vb.HEADER1 + 200] ^= 1
    raw[vb.HEADER2 + 200] ^= 1
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT
    assert run("qemu-img", "info", tmp_path / "damaged.vhdx", check=False).returncode != 0


def test_equal_sequence_numbers(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    raw = built.to_bytes()
    raw[vb.HEADER2:vb.HEADER2 + 4096] = raw[vb.HEADER1:vb.HEADER1 + 4096]
    assert _open_bytes(probe, tmp_path, raw)["status"] == 0       # identical copies (Disk2vhd)
    raw[vb.HEADER2 + 16] ^= 1                                     # FileWriteGuid differs
    refresh_crc(raw, vb.HEADER2, 4096)
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


def test_header_versions(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    built.header_version = 2
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == UNSUPPORTED


def test_log_location_checked(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    raw = built.to_bytes()
    for slot in (vb.HEADER1, vb.HEADER2):
        struct.pack_into("<Q", raw, slot + 72, MiB + 4096)
        refresh_crc(raw, slot, 4096)
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


def test_region_table_fallback_and_damage(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    raw = built.to_bytes()
    dump = tmp_path / "dump.raw"
    raw[vb.REGION1 + 1000] ^= 1
    got = _open_bytes(probe, tmp_path, raw, "--dump", dump)
    assert got["status"] == 0 and got["read_status"] == 0
    assert dump.read_bytes() == built.expected()
    raw[vb.REGION2 + 1000] ^= 1
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


def test_region_entries(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    built.extra_regions = [(uuid.uuid4().bytes_le, 0, 0, 0)]      # unknown, optional
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == 0
    built.extra_regions = [(uuid.uuid4().bytes_le, 40 * MiB, MiB, 1)]
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == UNSUPPORTED
    built.extra_regions = [(vb.BAT_REGION, 20 * MiB, MiB, 1)]      # a second BAT
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == ERROR_FILE_CORRUPT
    built.extra_regions = []
    raw = built.to_bytes()
    table = bytearray(raw[vb.REGION1:vb.REGION1 + 64 * 1024])
    struct.pack_into("<Q", table, 16 + 16, len(raw) - MiB // 2)   # BAT not 1 MiB aligned
    checked = vb.with_crc(table)
    raw[vb.REGION1:vb.REGION1 + len(checked)] = checked
    raw[vb.REGION2:vb.REGION2 + len(checked)] = checked
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


@pytest.mark.parametrize("item", ["file parameters", "size", "page 83", "logical", "physical"])
def test_metadata_item_missing(probe: Probe, tmp_path: Path, built: vb.Image, item: str) -> None:
    guid = {"file parameters": vb.FILE_PARAMETERS, "size": vb.VIRTUAL_DISK_SIZE,
            "page 83": vb.PAGE83_DATA, "logical": vb.LOGICAL_SECTOR_SIZE,
            "physical": vb.PHYSICAL_SECTOR_SIZE}[item]
    raw = built.to_bytes()
    entry = metadata_entry_offset(raw, guid)
    raw[entry:entry + 16] = uuid.uuid4().bytes_le              # now an unknown item
    struct.pack_into("<I", raw, entry + 24, 0)                 # ... and not required
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


@pytest.mark.parametrize("kind", ["system items", "user item over a system item",
                                  "user item inside the table", "user item past the region"])
def test_metadata_items_sharing_bytes_or_misplaced(probe: Probe, tmp_path: Path, built: vb.Image,
                                                   kind: str) -> None:
    """An update rewrites one item in place or frees its bytes, so items that
    share bytes (found by fuzzing the update path: a new Page 83 id wrote over
    the file parameters and size) or lie outside the region are refused."""
    if kind != "system items":
        built.extra_metadata = [vb.MetadataItem(uuid.uuid4().bytes_le, b"user data", vb.IS_USER)]
    raw = built.to_bytes()
    size_at = metadata_item_offset(raw, vb.VIRTUAL_DISK_SIZE)
    moved = vb.PAGE83_DATA
    if kind == "system items":
        target = size_at - 4                                   # 4 bytes over the previous item
    else:
        moved = built.extra_metadata[0].guid
        target = {"user item over a system item": size_at, "user item inside the table": 4096,
                  "user item past the region": 1 << 20}[kind]
    struct.pack_into("<I", raw, metadata_entry_offset(raw, moved) + 16, target)
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


def test_metadata_unknown_items(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    built.extra_metadata = [vb.MetadataItem(uuid.uuid4().bytes_le, b"x" * 10, 0),
                            vb.MetadataItem(uuid.uuid4().bytes_le, b"user", vb.IS_USER)]
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == 0
    built.extra_metadata = [vb.MetadataItem(uuid.uuid4().bytes_le, b"x" * 10, vb.IS_REQUIRED)]
    assert _open_bytes(probe, tmp_path, built.to_bytes())["status"] == UNSUPPORTED


@pytest.mark.parametrize("block_size,status", [
    (MiB, 0), (256 * MiB, 0), (3 * MiB, VHD_INVALID_BLOCK_SIZE),
    (512 * 1024, VHD_INVALID_BLOCK_SIZE), (512 * MiB, VHD_INVALID_BLOCK_SIZE)])
def test_block_size_rules(probe: Probe, tmp_path: Path, built: vb.Image, block_size: int,
                          status: int) -> None:
    raw = built.to_bytes()
    struct.pack_into("<I", raw, metadata_item_offset(raw, vb.FILE_PARAMETERS), block_size)
    assert _open_bytes(probe, tmp_path, raw)["status"] == status


@pytest.mark.parametrize("size,status", [
    (0, VHD_INVALID_SIZE), (64 * TiB, 0), (64 * TiB + MiB, VHD_INVALID_SIZE),
    (MiB + 100, VHD_INVALID_SIZE), (MiB + 512, 0)])
def test_virtual_size_rules(probe: Probe, tmp_path: Path, size: int, status: int) -> None:
    image = vb.Image(max(size, 512), block_size=256 * MiB)
    raw = image.to_bytes()
    struct.pack_into("<Q", raw, metadata_item_offset(raw, vb.VIRTUAL_DISK_SIZE), size)
    got = _open_bytes(probe, tmp_path, raw)
    assert got["status"] == status
    if status == 0:
        assert got["virtual_size"] == size


@pytest.mark.parametrize("logical,physical,status", [(512, 512, 0), (4096, 512, 0),
                                                     (1024, 4096, ERROR_FILE_CORRUPT),
                                                     (512, 8192, ERROR_FILE_CORRUPT)])
def test_sector_size_rules(probe: Probe, tmp_path: Path, built: vb.Image, logical: int,
                           physical: int, status: int) -> None:
    raw = built.to_bytes()
    struct.pack_into("<I", raw, metadata_item_offset(raw, vb.LOGICAL_SECTOR_SIZE), logical)
    struct.pack_into("<I", raw, metadata_item_offset(raw, vb.PHYSICAL_SECTOR_SIZE), physical)
    got = _open_bytes(probe, tmp_path, raw)
    assert got["status"] == status


def test_bat_region_too_small(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    """A 1 MiB BAT region holds 128 Ki entries: enough for 127 GiB of 1 MiB
    blocks, not for 256 GiB."""
    raw = built.to_bytes()
    assert regions(raw)[vb.BAT_REGION][1] == MiB
    size_at = metadata_item_offset(raw, vb.VIRTUAL_DISK_SIZE)
    struct.pack_into("<Q", raw, size_at, 127 * GiB)
    assert _open_bytes(probe, tmp_path, raw)["status"] == 0
    struct.pack_into("<Q", raw, size_at, 256 * GiB)
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT


@needs_qemu
def test_bat_beyond_end_of_file(probe: Probe, tmp_path: Path, built: vb.Image) -> None:
    """Reads of a block the file no longer holds fail; other reads work.
    qemu refuses the whole file ("points after end of file")."""
    raw = built.to_bytes()
    raw = raw[:len(raw) - MiB // 2]                       # cuts into block 1's data
    path = tmp_path / "truncated.vhdx"
    path.write_bytes(raw)
    assert run("qemu-img", "info", path, check=False).returncode != 0
    out = tmp_path / "range.raw"
    got = probe(path, "--read", str(MiB), "512", out)
    assert got["status"] == 0 and got["range_status"] == VHD_BLOCK_ALLOCATION_TABLE_CORRUPT
    assert probe(path, "--read", "0", str(MiB), out)["range_status"] == 0


@pytest.mark.parametrize("entry", [4, 5, 7, 6 | (1 << 10), 6 | (0 << 20)])
def test_bad_bat_entries(probe: Probe, tmp_path: Path, built: vb.Image, entry: int) -> None:
    raw = built.to_bytes()
    struct.pack_into("<Q", raw, bat_offset(raw) + 8 * 1, entry)
    out = tmp_path / "range.raw"
    got = _open_bytes(probe, tmp_path, raw, "--read", str(MiB), "4096", str(out))
    assert got["status"] == 0 and got["range_status"] == VHD_BLOCK_ALLOCATION_TABLE_CORRUPT


def test_differencing_locator_rules(probe: Probe, tmp_path: Path) -> None:
    linkage = vb.guid_text(uuid.uuid4().bytes_le)
    cases = [
        (vb.Locator(linkage), 0),
        (vb.Locator(linkage.upper().strip("{}")), 0),
        (vb.Locator("not a guid"), ERROR_FILE_CORRUPT),
        (vb.Locator(linkage, extra=[("parent_linkage", linkage)]), ERROR_FILE_CORRUPT),
        (vb.Locator(linkage, extra=[("some_future_key", "x")]), 0),
        (vb.Locator(linkage, locator_type=uuid.uuid4().bytes_le), VHD_FORMAT_UNSUPPORTED_VERSION),
        (None, ERROR_FILE_CORRUPT),
    ]
    for locator, status in cases:
        image = vb.Image(8 * MiB, kind="differencing", locator=locator)
        got = _open_bytes(probe, tmp_path, image.to_bytes())
        assert got["status"] == status, locator
        if status == 0:
            assert got["parent_identifier"] == linkage.strip("{}").lower()
    image = vb.Image(8 * MiB, kind="differencing", locator=vb.Locator(linkage))
    raw = image.to_bytes()
    locator_at = metadata_item_offset(raw, vb.PARENT_LOCATOR)
    struct.pack_into("<H", raw, locator_at + 18, 5000)      # more entries than the item holds
    assert _open_bytes(probe, tmp_path, raw)["status"] == ERROR_FILE_CORRUPT
