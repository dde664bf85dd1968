"""Creating VHDX images (src/vdengine/vhdx_create.c), checked against tools
nobody here wrote: `qemu-img info/check/compare` (qemu reads 512-byte
logical sectors only, and no parents), vhdiinfo and pyvhdi (libvhdi: every
type, 4 KiB sectors, children read through their parents), 7-Zip (every
field of the headers and metadata, parents beside the child), and the
engine's own parser and chain (tests/c/vhdx_probe_main.c, chain_main.c),
which must report what the create was asked for.

The creator is driven through tests/c/vhdx_create_main.c, which fills a
vd_create_spec and calls vd_vhdx_create on a new file the way
CreateVirtualDisk does.
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
from typing import Any, Protocol

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import all_engine_sources, compile_harness  # noqa: E402
from test_engine_vhdx_c import (  # noqa: E402
    qemu_info,
    run,
    seven_zip_info,
    vhdiinfo,
    vhdiinfo_media_size,
)

ENGINE_SOURCES = all_engine_sources()
PROBE_SOURCES = ["vhdx.c", "vhdx_log.c", "vhdx_log_write.c", "vhdx_write.c", "crc32c.c", "guid.c",
                 "image.c", "io.c", "utf16.c"]

ERROR_INVALID_PARAMETER = 87
ERROR_FILE_SYSTEM_LIMITATION = 665
ERROR_DISK_FULL = 112

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
VHDIINFO_TYPE = {FIXED: "Fixed", DYNAMIC: "Dynamic", DIFFERENCING: "Differential"}

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("qemu-img", "qemu-io", "vhdiinfo", "7zz")),
    reason="qemu-img, qemu-io, vhdiinfo and 7zz are needed")


class Create(Protocol):
    def __call__(self, out: Path, kind: str, *options: str | int | Path) -> dict[str, Any]: ...


class Probe(Protocol):
    def __call__(self, *args: str | Path) -> dict[str, Any]: ...


@pytest.fixture(scope="module")
def create(tmp_path_factory: pytest.TempPathFactory) -> Create:
    """The creator harness, under AddressSanitizer and UBSan where the
    compiler has them."""
    binary = compile_harness(tmp_path_factory.mktemp("vhdx_create"), "vhdx_create_main",
                             ENGINE_SOURCES, sanitize=True)

    def answer(out: Path, kind: str, *options: str | int | Path) -> dict[str, Any]:
        arguments = [str(option) for option in options]
        result: dict[str, Any] = json.loads(run(binary, out, "--type", kind, *arguments).stdout)
        return result
    return answer


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    binary = compile_harness(tmp_path_factory.mktemp("vhdx_create_probe"), "vhdx_probe_main",
                             PROBE_SOURCES)

    def answer(*args: str | Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(run(binary, *args).stdout)
        return result
    return answer


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("vhdx_create_chain"), "chain_main",
                           ENGINE_SOURCES)


def stored_guid(text: str) -> str:
    """The 16 bytes of a GUID as stored (Windows layout), in hex, the way
    7-Zip prints them."""
    return uuid.UUID(text).bytes_le.hex()


def zero_raw(directory: Path, size: int) -> Path:
    raw = directory / f"zeros-{size}.raw"
    with raw.open("wb") as out:
        out.truncate(size)
    return raw


def qemu_check(path: Path) -> None:
    result = run("qemu-img", "check", "-f", "vhdx", path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors were found on the image." in result.stdout


def qemu_raw(path: Path, fmt: str, out: Path) -> bytes:
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", path, out)
    return out.read_bytes()


def check_image(probe: Probe, path: Path, made: dict[str, Any], *, subtype: int, size: int,
                block_size: int, logical: int = 512, physical: int = 4096,
                zero_content: bool = True) -> dict[str, Any]:
    """What every reader says of a created image equals what was asked.

    `block_size` is the block size the BAT uses (7-Zip reports it for every
    type); the engine reports 0 for fixed disks, as Windows does."""
    assert made["status"] == 0, made
    ours = probe(path)
    assert ours["status"] == 0, ours
    assert ours["device"] == 3
    assert ours["subtype"] == subtype
    assert ours["virtual_size"] == size
    assert ours["block_size"] == (0 if subtype == FIXED else block_size)
    assert ours["logical_sector_size"] == logical
    assert ours["physical_sector_size"] == physical
    assert ours["virtual_disk_id"] == made["unique_id"]
    assert ours["has_parent"] == (subtype == DIFFERENCING)

    libvhdi = vhdiinfo(path)
    assert libvhdi["Format"] == "VHDX (version 2)"
    assert libvhdi["Disk type"] == VHDIINFO_TYPE[subtype]
    assert vhdiinfo_media_size(libvhdi) == size
    assert libvhdi["Bytes per sector"] == f"{logical} bytes"
    assert libvhdi["Identifier"] == ours["identifier"]

    if seven_zip_reads(size, logical):
        check_seven_zip(path, made, ours, subtype=subtype, size=size, block_size=block_size,
                        logical=logical, physical=physical)

    if logical == 512 and subtype != DIFFERENCING:
        info = qemu_info(path)
        assert info["virtual-size"] == size
        assert info["cluster-size"] == block_size
        assert info.get("dirty-flag") is False
        qemu_check(path)
        # qemu-img compare reads every byte of both sides: small disks only.
        if zero_content and size <= 2 * GiB:
            compare = run("qemu-img", "compare", "-f", "vhdx", "-F", "raw", path,
                          zero_raw(path.parent, size), check=False)
            assert compare.returncode == 0, compare.stdout + compare.stderr
    return ours


def seven_zip_fields(path: Path) -> dict[str, str]:
    """seven_zip_info's fields, also when 7-Zip reports an error (its
    exit status is then 2)."""
    result = run("7zz", "l", "-slt", path, check=False)
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"\s*([A-Za-z_0-9 ]+?)\s*[:=]\s*(.*)$", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def seven_zip_reads(size: int, logical: int) -> bool:
    """7-Zip refuses VHDX disks of an odd number of logical sectors,
    qemu-img's own (1 GiB + 512 bytes) included; the other readers check
    those."""
    return (size // logical) % 2 == 0


def check_seven_zip(path: Path, made: dict[str, Any], ours: dict[str, Any], *, subtype: int,
                    size: int, block_size: int, logical: int, physical: int) -> None:
    """7-Zip reads every header and metadata field."""
    seven = seven_zip_fields(path)
    assert "Warning" not in seven, seven
    if "ERROR" in seven:
        # 7-Zip on a POSIX host takes '\' literally, so it finds a parent
        # only beside the child (relative_path ".\name"); it still lists
        # the child's own fields.
        assert subtype == DIFFERENCING and seven["ERROR"].startswith(
            "Missing parent VHDX file : ..\\"), seven
    assert seven["Creator Application"] == "virtdisk"
    assert int(seven["VirtualDiskSize"]) == size
    assert int(seven["BlockSize"]) == block_size
    assert int(seven["LogicalSectorSize"]) == logical
    assert int(seven["PhysicalSectorSize"]) == physical
    assert seven["Id"] == stored_guid(made["unique_id"])
    assert seven["DataWriteGuid"] == stored_guid(ours["identifier"])
    assert seven["Fixed"] == ("+" if subtype == FIXED else "-")
    assert seven["HasParent"] == ("+" if subtype == DIFFERENCING else "-")


# ---------------------------------------------------------------- dynamic

@pytest.mark.parametrize(("size", "block_size", "physical"), [
    (3 * MiB, 1 * MiB, 512),
    (3 * MiB, 256 * MiB, 4096),
    (1 * GiB, 32 * MiB, 4096),
    (1 * GiB + 512, 2 * MiB, 512),
    (100 * GiB + 7 * 512, 64 * MiB, 4096),
    (2 * TiB, 128 * MiB, 512),
])
def test_dynamic_matches_qemu_vhdiinfo_and_7zip(create: Create, probe: Probe, tmp_path: Path,
                                                size: int, block_size: int,
                                                physical: int) -> None:
    image = tmp_path / "dynamic.vhdx"
    made = create(image, "dynamic", "--size", size, "--block", block_size,
                  "--physical", physical)
    check_image(probe, image, made, subtype=DYNAMIC, size=size, block_size=block_size,
                physical=physical)
    # Nothing but structures: no block is allocated.
    if seven_zip_reads(size, 512):
        assert int(seven_zip_info(image)["PackSize"].split()[0]) == 0


@pytest.mark.parametrize("block_size", [1 * MiB, 32 * MiB, 256 * MiB])
def test_dynamic_64_tib(create: Create, probe: Probe, tmp_path: Path, block_size: int) -> None:
    """The largest size the format allows; with 1 MiB blocks the BAT alone
    is over 512 MiB, which stays sparse."""
    image = tmp_path / "largest.vhdx"
    started = time.monotonic()
    made = create(image, "dynamic", "--size", 64 * TiB, "--block", block_size)
    assert time.monotonic() - started < 5
    check_image(probe, image, made, subtype=DYNAMIC, size=64 * TiB, block_size=block_size,
                zero_content=False)
    assert image.stat().st_blocks * 512 < 4 * MiB


@pytest.mark.parametrize(("kind", "size", "block_size", "physical"), [
    ("dynamic", 3 * MiB, 1 * MiB, 4096),
    ("dynamic", 64 * TiB, 1 * MiB, 512),
    ("dynamic", 5 * GiB + 4096, 256 * MiB, 512),
    ("dynamic", 5 * GiB + 8192, 32 * MiB, 4096),
    ("fixed", 12 * MiB + 4096, 4 * MiB, 4096),
])
def test_4k_logical_sectors_match_vhdiinfo_and_7zip(create: Create, probe: Probe, tmp_path: Path,
                                                    kind: str, size: int, block_size: int,
                                                    physical: int) -> None:
    """qemu refuses 4 KiB logical sectors; libvhdi and 7-Zip read them."""
    image = tmp_path / "4k.vhdx"
    made = create(image, kind, "--size", size, "--block", block_size, "--logical", 4096,
                  "--physical", physical)
    check_image(probe, image, made, subtype=FIXED if kind == "fixed" else DYNAMIC, size=size,
                block_size=block_size, logical=4096, physical=physical)
    if size <= GiB:
        pyvhdi = pytest.importorskip("pyvhdi")
        disk = pyvhdi.file()
        disk.open(str(image))
        try:
            assert disk.read_buffer(size) == bytes(size)
        finally:
            disk.close()


# ------------------------------------------------------------------ fixed

@pytest.mark.parametrize(("size", "block_option", "block_size"), [
    (3 * MiB, None, 2 * MiB),
    (10 * MiB, None, 2 * MiB),
    (64 * MiB + 512, 32 * MiB, 32 * MiB),
    (1 * GiB, 1 * MiB, 1 * MiB),
])
def test_fixed_matches_qemu_vhdiinfo_and_7zip(create: Create, probe: Probe, tmp_path: Path,
                                              size: int, block_option: int | None,
                                              block_size: int) -> None:
    """Without a block size a fixed disk gets 2 MiB blocks (what Windows
    wrote in the fixed VHDX files seen); every block is allocated and reads
    as zeros without a byte of it having been written."""
    image = tmp_path / "fixed.vhdx"
    options: list[str | int] = ["--size", size]
    if block_option is not None:
        options += ["--block", block_option]
    made = create(image, "fixed", *options)
    check_image(probe, image, made, subtype=FIXED, size=size, block_size=block_size)
    blocks = -(-size // block_size)
    if seven_zip_reads(size, 512):
        assert int(seven_zip_info(image)["PackSize"].split()[0]) == blocks * block_size
    assert image.stat().st_size >= blocks * block_size
    assert image.stat().st_blocks * 512 < 4 * MiB


def test_fixed_full_allocation_reserves_the_space(create: Create, probe: Probe,
                                                  tmp_path: Path) -> None:
    image = tmp_path / "full.vhdx"
    made = create(image, "fixed", "--size", 48 * MiB, "--full")
    check_image(probe, image, made, subtype=FIXED, size=48 * MiB, block_size=2 * MiB)
    assert image.stat().st_blocks * 512 >= image.stat().st_size


def test_fixed_1_tib_is_sparse_and_fast(create: Create, probe: Probe, tmp_path: Path) -> None:
    image = tmp_path / "tera.vhdx"
    started = time.monotonic()
    made = create(image, "fixed", "--size", 1 * TiB)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    check_image(probe, image, made, subtype=FIXED, size=1 * TiB, block_size=2 * MiB,
                zero_content=False)
    assert image.stat().st_size > 1 * TiB
    # The 4 MiB BAT and the few structures; no block was written.
    assert image.stat().st_blocks * 512 < 16 * MiB


def test_fixed_larger_than_the_file_system_allows(create: Create, tmp_path: Path) -> None:
    """64 TiB of blocks exceeds ext4's 16 TiB file limit: the host's answer,
    and nothing left behind.  File systems that allow it make the image."""
    image = tmp_path / "huge.vhdx"
    made = create(image, "fixed", "--size", 64 * TiB)
    if made["status"] == 0:
        assert image.stat().st_size > 64 * TiB
    else:
        assert made["status"] in (ERROR_FILE_SYSTEM_LIMITATION, ERROR_DISK_FULL)
        assert not image.exists()


# ----------------------------------------------------------- differencing

def qemu_parent(path: Path, size: int = 64 * MiB) -> bytes:
    """A VHDX parent made and written by qemu; returns its content."""
    run("qemu-img", "create", "-q", "-f", "vhdx", path, str(size))
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0xab 1M 3M",
        "-c", f"write -P 0x11 {size // 2 + 512} 1536k",
        "-c", f"write -P 0x5c {size - 4096} 4096", path)
    return qemu_raw(path, "vhdx", path.with_suffix(".raw"))


def read_with_pyvhdi(child: Path, parent: Path) -> bytes:
    pyvhdi = pytest.importorskip("pyvhdi")
    child_file, parent_file = pyvhdi.file(), pyvhdi.file()
    child_file.open(str(child))
    parent_file.open(str(parent))
    try:
        child_file.set_parent(parent_file)
        data: bytes = child_file.read_buffer(child_file.get_media_size())
        return data
    finally:
        child_file.close()
        parent_file.close()


@pytest.mark.parametrize("block_size", [1 * MiB, 2 * MiB, 256 * MiB])
def test_differencing_reads_its_parent(create: Create, probe: Probe, tmp_path: Path,
                                       block_size: int) -> None:
    parent = tmp_path / "base.vhdx"
    content = qemu_parent(parent)
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.vhdx"
    made = create(child, "differencing", "--parent", parent, "--relative", "../base.vhdx",
                  "--block", block_size)
    ours = check_image(probe, child, made, subtype=DIFFERENCING, size=64 * MiB,
                       block_size=block_size)
    parent_fields = vhdiinfo(parent)
    child_fields = vhdiinfo(child)
    assert child_fields["Parent identifier"] == parent_fields["Identifier"]
    assert ours["parent_identifier"] == parent_fields["Identifier"]
    assert child_fields["Parent filename"] == str(parent.resolve())
    # Windows' forms: '\' separators; the absolute entry is the host path.
    assert ours["parent_relative_path"] == "..\\base.vhdx"
    assert ours["parent_absolute_path"] == str(parent.resolve())
    assert ours["parent_volume_path"] is None
    assert seven_zip_fields(child)["parent_linkage"] == "{" + parent_fields["Identifier"] + "}"
    assert read_with_pyvhdi(child, parent) == content


def test_differencing_beside_its_parent_reads_through_7zip(create: Create, tmp_path: Path) -> None:
    """7-Zip follows relative_path ".\\base.vhdx" to the parent beside the
    child and checks parent_linkage against its DataWriteGuid."""
    parent = tmp_path / "base.vhdx"
    content = qemu_parent(parent, 16 * MiB)
    child = tmp_path / "child.vhdx"
    assert create(child, "differencing", "--parent", parent, "--relative", "base.vhdx",
                  "--block", 2 * MiB)["status"] == 0
    seven = seven_zip_info(child)
    assert "ERROR" not in seven, seven
    assert seven["Parent"] == "base.vhdx"
    out = tmp_path / "extracted"
    run("7zz", "x", "-y", f"-o{out}", child)
    (extracted,) = list(out.iterdir())
    assert extracted.read_bytes() == content


def test_engine_chain_tries_the_relative_path_first(create: Create, chain: Path,
                                                    tmp_path: Path) -> None:
    """Both moved to another directory: the stored absolute path names the
    old place (now gone), the relative one still finds the parent."""
    old = tmp_path / "old"
    (old / "sub").mkdir(parents=True)
    content = qemu_parent(old / "base.vhdx")
    assert create(old / "sub" / "child.vhdx", "differencing", "--parent", old / "base.vhdx",
                  "--relative", "../base.vhdx", "--block", 2 * MiB)["status"] == 0
    new = tmp_path / "new"
    shutil.move(old, new)
    dump = tmp_path / "dump.raw"
    answer = json.loads(run(chain, new / "sub" / "child.vhdx", "--dump", dump,
                            str(64 * MiB)).stdout)
    assert answer["status"] == 0, answer
    assert [link["path"] for link in answer["chain"]] == [str((new / "base.vhdx").resolve())]
    assert answer["candidates"][1] == str((old / "base.vhdx").resolve())
    assert dump.read_bytes() == content
    # Only the absolute path left: the chain follows it.
    (tmp_path / "elsewhere").mkdir()
    child = tmp_path / "elsewhere" / "child.vhdx"
    assert create(child, "differencing", "--parent", new / "base.vhdx",
                  "--block", 2 * MiB)["status"] == 0
    answer = json.loads(run(chain, child, "--dump", dump, str(64 * MiB)).stdout)
    assert answer["status"] == 0, answer
    assert dump.read_bytes() == content


def test_differencing_with_4k_sectors(create: Create, probe: Probe, tmp_path: Path) -> None:
    parent = tmp_path / "base.vhdx"
    parent_made = create(parent, "dynamic", "--size", 40 * MiB, "--block", 1 * MiB,
                         "--logical", 4096)
    assert parent_made["status"] == 0
    child = tmp_path / "child.vhdx"
    made = create(child, "differencing", "--parent", parent, "--relative", "base.vhdx",
                  "--block", 4 * MiB, "--logical", 4096, "--physical", 512)
    ours = check_image(probe, child, made, subtype=DIFFERENCING, size=40 * MiB,
                       block_size=4 * MiB, logical=4096, physical=512)
    assert ours["parent_identifier"] == vhdiinfo(parent)["Identifier"]
    assert read_with_pyvhdi(child, parent) == bytes(40 * MiB)


# ---------------------------------------------------------------- copying

def qemu_source(path: Path, fmt: str, size: int) -> None:
    run("qemu-img", "create", "-q", "-f", fmt, path, str(size))
    run("qemu-io", "-f", fmt, "-c", "write -P 0x42 0 4096", "-c", "write -P 0x99 3M 2M",
        "-c", "write -P 0x07 9437184 512", "-c", f"write -P 0xee {size - 1 * MiB} 1M", path)


@pytest.mark.parametrize("source_format", ["vpc", "vhdx"])
@pytest.mark.parametrize(("kind", "block_size"), [("dynamic", 1 * MiB), ("dynamic", 2 * MiB),
                                                  ("fixed", 2 * MiB)])
def test_copy_from_source_equals_it(create: Create, probe: Probe, tmp_path: Path,
                                    source_format: str, kind: str, block_size: int) -> None:
    source = tmp_path / f"source.{'vhd' if source_format == 'vpc' else 'vhdx'}"
    qemu_source(source, source_format, 32 * MiB)
    size = qemu_info_any(source)["virtual-size"]
    target = tmp_path / "copy.vhdx"
    made = create(target, kind, "--source", source, "--block", block_size)
    check_image(probe, target, made, subtype=FIXED if kind == "fixed" else DYNAMIC, size=size,
                block_size=block_size, zero_content=False)
    compare = run("qemu-img", "compare", "-f", "vhdx", "-F", source_format, target, source,
                  check=False)
    assert compare.returncode == 0, compare.stdout + compare.stderr
    if kind == "dynamic":
        # Blocks that hold data are allocated, the others stay NOT_PRESENT.
        content = qemu_raw(source, source_format, tmp_path / "source.raw")
        holding = sum(1 for at in range(0, size, block_size)
                      if content[at:at + block_size].strip(b"\0"))
        assert int(seven_zip_info(target)["PackSize"].split()[0]) == holding * block_size


def qemu_info_any(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    return info


def test_copy_into_a_larger_disk(create: Create, probe: Probe, tmp_path: Path) -> None:
    """The source's content first, zeros after it."""
    source = tmp_path / "source.vhdx"
    qemu_source(source, "vhdx", 24 * MiB)
    target = tmp_path / "wider.vhdx"
    made = create(target, "dynamic", "--source", source, "--size", 40 * MiB, "--block", 4 * MiB)
    check_image(probe, target, made, subtype=DYNAMIC, size=40 * MiB, block_size=4 * MiB,
                zero_content=False)
    content = qemu_raw(source, "vhdx", tmp_path / "source.raw")
    assert qemu_raw(target, "vhdx", tmp_path / "wider.raw") == content + bytes(16 * MiB)


def test_copy_from_a_differencing_source_reads_through_its_parent(
        create: Create, probe: Probe, tmp_path: Path) -> None:
    parent = tmp_path / "base.vhdx"
    content = qemu_parent(parent)
    child = tmp_path / "child.vhdx"
    assert create(child, "differencing", "--parent", parent, "--relative", "base.vhdx",
                  "--block", 2 * MiB)["status"] == 0
    target = tmp_path / "flat.vhdx"
    made = create(target, "dynamic", "--source", child, "--block", 1 * MiB)
    check_image(probe, target, made, subtype=DYNAMIC, size=64 * MiB, block_size=1 * MiB,
                zero_content=False)
    assert qemu_raw(target, "vhdx", tmp_path / "flat.raw") == content


# ----------------------------------------------------------------- errors

@pytest.mark.parametrize("options", [
    ("dynamic", "--size", 64 * MiB, "--block", 3 * MiB),
    ("dynamic", "--size", 64 * MiB, "--block", 512 * KiB),
    ("dynamic", "--size", 64 * MiB, "--block", 512 * MiB),
    ("dynamic", "--size", 64 * MiB + 512, "--block", 1 * MiB, "--logical", 4096),
    ("dynamic", "--size", 64 * MiB + 100, "--block", 1 * MiB),
    ("dynamic", "--size", 64 * TiB + 1 * MiB, "--block", 1 * MiB),
    ("dynamic", "--size", 0, "--block", 1 * MiB),
    ("dynamic", "--size", 64 * MiB, "--block", 1 * MiB, "--logical", 1024),
    ("dynamic", "--size", 64 * MiB, "--block", 1 * MiB, "--physical", 2048),
    ("differencing", "--size", 64 * MiB, "--block", 1 * MiB),
])
def test_rule_breaking_specs_are_refused(create: Create, tmp_path: Path,
                                         options: tuple[str | int, ...]) -> None:
    image = tmp_path / "refused.vhdx"
    made = create(image, str(options[0]), *options[1:])
    assert made["status"] == ERROR_INVALID_PARAMETER
    assert not image.exists()


def test_parent_of_another_size_is_refused(create: Create, tmp_path: Path) -> None:
    parent = tmp_path / "base.vhdx"
    assert create(parent, "dynamic", "--size", 8 * MiB, "--block", 1 * MiB)["status"] == 0
    child = tmp_path / "child.vhdx"
    made = create(child, "differencing", "--parent", parent, "--size", 16 * MiB,
                  "--block", 1 * MiB)
    assert made["status"] == ERROR_INVALID_PARAMETER
    assert not child.exists()


def test_each_create_gets_new_identifiers(create: Create, probe: Probe, tmp_path: Path) -> None:
    first, second = tmp_path / "a.vhdx", tmp_path / "b.vhdx"
    for image in (first, second):
        assert create(image, "dynamic", "--size", 8 * MiB, "--block", 1 * MiB)["status"] == 0
    a, b = seven_zip_info(first), seven_zip_info(second)
    assert a["DataWriteGuid"] != b["DataWriteGuid"]
    assert a["FileWriteGuid"] != b["FileWriteGuid"]
    assert uuid.UUID(bytes_le=bytes.fromhex(a["DataWriteGuid"])).version == 4
    assert probe(first)["identifier"] != probe(second)["identifier"]
    os.remove(first)


# ------------------------------------------------- through CreateVirtualDisk

def api_create(path: Path, size: int = 0, flags: int = 0, **fields: Any) -> Any:
    vd = pytest.importorskip("_virtdisk")
    storage_type = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX,
                                         vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    return vd.CreateVirtualDisk(storage_type, path, 0, flags, 2, maximum_size=size, **fields)


def api_answers(handle: Any) -> dict[str, Any]:
    """What GetVirtualDiskInformation says of the disk behind `handle`."""
    vd = pytest.importorskip("_virtdisk")
    info = vd.GetVirtualDiskInfoVersion
    size = vd.GetVirtualDiskInformation(handle, info.SIZE)
    return {
        "device": vd.GetVirtualDiskInformation(handle, info.VIRTUAL_STORAGE_TYPE).device_id,
        "subtype": int(vd.GetVirtualDiskInformation(handle, info.PROVIDER_SUBTYPE)),
        "virtual_size": size.virtual_size,
        "block_size": size.block_size,
        "sector_size": size.sector_size,
        "physical_sector_size": vd.GetVirtualDiskInformation(handle,
                                                             info.VHD_PHYSICAL_SECTOR_SIZE),
        "identifier": str(vd.GetVirtualDiskInformation(handle, info.IDENTIFIER)),
        "virtual_disk_id": str(vd.GetVirtualDiskInformation(handle, info.VIRTUAL_DISK_ID)),
    }


@pytest.mark.parametrize(("flag_names", "size", "block_size", "sector", "physical",
                          "stored_block"), [
    ((), 10 * MiB, 0, 0, 0, 32 * MiB),
    ((), 3 * GiB, 1 * MiB, 512, 512, 1 * MiB),
    ((), 64 * MiB, 256 * MiB, 4096, 4096, 256 * MiB),
    (("FULL_PHYSICAL_ALLOCATION",), 24 * MiB, 0, 0, 0, 2 * MiB),
    (("FULL_PHYSICAL_ALLOCATION", "SPARSE_FILE"), 1 * TiB, 0, 4096, 512, 2 * MiB),
])
def test_create_virtual_disk_answers_what_was_asked(probe: Probe, tmp_path: Path,
                                                    flag_names: tuple[str, ...], size: int,
                                                    block_size: int, sector: int, physical: int,
                                                    stored_block: int) -> None:
    """CreateVirtualDisk's handle, a fresh open by the engine, qemu,
    libvhdi and 7-Zip all describe the disk that was asked for; 0 fields
    get Windows' defaults (32 MiB dynamic blocks, 512-byte logical and
    4096-byte physical sectors)."""
    vd = pytest.importorskip("_virtdisk")
    flags = 0
    for name in flag_names:
        flags |= vd.CreateVirtualDiskFlag[name]
    fixed = bool(flags & vd.CreateVirtualDiskFlag.FULL_PHYSICAL_ALLOCATION)
    path = tmp_path / "api.vhdx"
    unique_id = uuid.uuid4()
    started = time.monotonic()
    handle = api_create(path, size, flags, unique_id=unique_id, block_size=block_size,
                        sector_size=sector, physical_sector_size=physical)
    elapsed = time.monotonic() - started
    with handle:
        answers = api_answers(handle)
    logical = sector or 512
    assert answers["device"] == vd.VirtualStorageTypeDevice.VHDX
    assert answers["subtype"] == (FIXED if fixed else DYNAMIC)
    assert answers["virtual_size"] == size
    assert answers["block_size"] == (0 if fixed else stored_block)
    assert answers["sector_size"] == logical
    assert answers["physical_sector_size"] == (physical or 4096)
    assert answers["virtual_disk_id"] == str(unique_id)
    ours = check_image(probe, path, {"status": 0, "unique_id": str(unique_id)},
                       subtype=FIXED if fixed else DYNAMIC, size=size, block_size=stored_block,
                       logical=logical, physical=physical or 4096)
    assert answers["identifier"] == ours["identifier"]
    if size >= TiB:
        assert elapsed < 1.0, elapsed
        assert path.stat().st_blocks * 512 < 16 * MiB


def test_create_virtual_disk_differencing_and_copy(probe: Probe, tmp_path: Path) -> None:
    """A child made through the API resolves its parent on open and reads
    its data (libvhdi); a copy of the child through SourcePath holds the
    same data (qemu-img compare against the parent)."""
    vd = pytest.importorskip("_virtdisk")
    parent = tmp_path / "base.vhdx"
    content = qemu_parent(parent)
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.vhdx"
    api_create(child, parent_path=parent).close()
    info = vd.GetVirtualDiskInfoVersion
    storage_type = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX,
                                         vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    with vd.OpenVirtualDisk(storage_type, child, vd.VirtualDiskAccessMask.NONE, 0, 2,
                            read_only=True) as handle:
        location = vd.GetVirtualDiskInformation(handle, info.PARENT_LOCATION)
        assert location.parent_resolved
        assert Path(location.paths[0]) == parent
        assert str(vd.GetVirtualDiskInformation(handle, info.PARENT_IDENTIFIER)) \
            == vhdiinfo(parent)["Identifier"]
        assert vd.GetVirtualDiskInformation(handle, info.SIZE).block_size == 2 * MiB
    fields = vhdiinfo(child)
    assert fields["Disk type"] == "Differential"
    assert fields["Parent identifier"] == vhdiinfo(parent)["Identifier"]
    assert read_with_pyvhdi(child, parent) == content

    flat = tmp_path / "flat.vhdx"
    api_create(flat, source_path=child, block_size=1 * MiB).close()
    qemu_check(flat)
    compare = run("qemu-img", "compare", "-f", "vhdx", "-F", "vhdx", flat, parent, check=False)
    assert compare.returncode == 0, compare.stdout + compare.stderr
