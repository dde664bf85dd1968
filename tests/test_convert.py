"""`virtdisk.convert` on real images through the engine, every result checked
by tools nobody here wrote: `qemu-img compare` against the source's bytes,
`qemu-img check` (VHDX), `vhdiinfo` (libvhdi), `qemu-img map` (which VHD
blocks hold data) and the VHDX block allocation table read back from
[MS-VHDX] (tests/vhdx_layout.py).

Sources: raw files (sparse and not), loop devices, VHD and VHDX images made
by `qemu-img convert`, and differencing children.  Failures: a source that
ends part way, a full file system (a small tmpfs), a progress callback that
raises; the destination must then be gone.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conversion_sources import QEMU_FORMAT, qemu_made, written_child  # noqa: E402
from loop_devices import attached  # noqa: E402
from vhdx_layout import layout  # noqa: E402

MIB = 1 << 20
SIZE = 72 * MIB
# Data at the start, across VHD block boundaries (2 MiB) inside the first
# VHDX block (32 MiB), across a VHD boundary in the third VHDX block, and
# in the last sector; the second VHDX block and most VHD blocks are zeros.
DATA = [(0, 64 * 1024), (5 * MIB + 512, MIB), (66 * MIB - 4096, 8192), (SIZE - 512, 512)]

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="content I/O (RawSCSIVirtualDisk) is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img checks the results"),
]


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True)


def raw_source(path: Path, size: int = SIZE, data: list[tuple[int, int]] | None = None,
               seed: str = "raw") -> Path:
    """A sparse raw file of `size` bytes with random data in `data`."""
    chooser = random.Random(seed)
    with open(path, "wb") as file:
        file.truncate(size)
        for offset, length in DATA if data is None else data:
            file.seek(offset)
            file.write(chooser.randbytes(length))
    return path


def same_content(reference: Path, image: Path, fmt: str | None = None) -> None:
    """qemu-img compare: `image` reads exactly the bytes of raw `reference`."""
    fmt = fmt or QEMU_FORMAT[image.suffix[1:]]
    result = run("qemu-img", "compare", "-f", "raw", "-F", fmt, reference, image)
    assert result.returncode == 0, result.stdout + result.stderr


def checked(image: Path) -> None:
    """The image passes the checkers that read its format."""
    if image.suffix == ".vhdx":
        result = run("qemu-img", "check", "-f", "vhdx", image)
        assert result.returncode == 0, result.stdout + result.stderr
        layout(image)
    if shutil.which("vhdiinfo") is not None and image.suffix in (".vhd", ".vhdx"):
        result = run("vhdiinfo", image)
        assert result.returncode == 0, result.stdout + result.stderr


def data_blocks(reference: Path, block: int) -> set[int]:
    """The indices of `block`-sized pieces of `reference` that are not all
    zeros."""
    found: set[int] = set()
    with open(reference, "rb") as file:
        index = 0
        while piece := file.read(block):
            if piece.count(0) != len(piece):
                found.add(index)
            index += 1
    return found


def vhd_allocated_blocks(image: Path, block: int) -> set[int]:
    """The VHD blocks qemu-img map says hold data."""
    result = run("qemu-img", "map", "--output=json", "-f", "vpc", image)
    assert result.returncode == 0, result.stderr
    found: set[int] = set()
    for extent in json.loads(result.stdout):
        if extent["data"]:
            assert extent["start"] % block == 0 and extent["length"] % block == 0, extent
            found.update(range(extent["start"] // block,
                               (extent["start"] + extent["length"]) // block))
    return found


def allocation_matches(reference: Path, image: Path) -> None:
    """A dynamic image holds exactly the blocks where `reference` has data."""
    with virtdisk.open(image) as disk:
        block = disk.block_size
    expected = data_blocks(reference, block)
    if image.suffix == ".vhd":
        assert vhd_allocated_blocks(image, block) == expected
    else:
        states = layout(image)
        assert states["fully present"] == len(expected), states
    # The file holds the data blocks and the structures, no more.
    assert os.path.getsize(image) <= len(expected) * (block + 512) + 8 * MIB


class Progress:
    """Records progress calls and checks them: monotone, ending at total."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        assert self.calls, "progress was never called"
        assert self.calls[0] == (0, total)
        assert self.calls[-1] == (total, total)
        dones = [done for done, _ in self.calls]
        assert dones == sorted(dones)
        assert all(seen == total for _, seen in self.calls)


def converted(source: Path, target: Path, reference: Path, kind: str, size: int = SIZE) -> None:
    """Converts `source` to a `kind` `target`, checking the progress calls,
    the content against raw `reference`, the image checkers and, for a
    dynamic target, that it holds exactly the blocks with data."""
    progress = Progress()
    virtdisk.convert(source, target, type=kind, progress=progress)  # type: ignore[arg-type]
    progress.check(size)
    same_content(reference, target)
    checked(target)
    if kind == "dynamic":
        allocation_matches(reference, target)


# ------------------------------------------------------------------- raw to images

TARGETS = [(fmt, kind) for fmt in ("vhdx", "vhd") for kind in ("dynamic", "fixed")]


@pytest.mark.parametrize(("fmt", "kind"), TARGETS, ids=[f"{f}-{k}" for f, k in TARGETS])
def test_raw_to_image(tmp_path: Path, fmt: str, kind: str) -> None:
    source = raw_source(tmp_path / "source.img")
    target = tmp_path / f"copy.{fmt}"
    converted(source, target, source, kind)
    with virtdisk.open(target) as disk:
        assert disk.virtual_size == SIZE
        assert disk.provider_subtype == (2 if kind == "fixed" else 3)


def test_a_raw_file_without_holes_converts_too(tmp_path: Path) -> None:
    """Data written out in full (no holes for SEEK_DATA to skip), zeros
    included: the zero blocks still stay unallocated."""
    sparse = raw_source(tmp_path / "sparse.img", 16 * MIB,
                        [(0, 4096), (9 * MIB, 3 * MIB)])
    dense = tmp_path / "dense.img"
    dense.write_bytes(sparse.read_bytes())
    target = tmp_path / "copy.vhd"
    virtdisk.convert(dense, target)
    same_content(dense, target)
    allocation_matches(dense, target)


@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_one_sector_of_data_at_a_block_edge_allocates_its_block(tmp_path: Path, fmt: str,
                                                              dense: bool) -> None:
    """Content moves in pieces smaller than a block: data only in the last
    sector of one block and the first of a later one allocates exactly
    those blocks, every other piece of them reads zeros; a VHDX of a size
    that is no whole number of blocks ends in a partial block (qemu-img map,
    which allocation_matches reads for VHD, reports a partial block as
    shorter, so the VHD has whole ones)."""
    block = 32 * MIB if fmt == "vhdx" else 2 * MIB
    size = 3 * block + (3 * MIB if fmt == "vhdx" else block)
    source = raw_source(tmp_path / "source.img", size,
                        [(block - 512, 512), (2 * block, 512), (size - 512, 512)])
    if dense:
        source.write_bytes(source.read_bytes())
    target = tmp_path / f"copy.{fmt}"
    virtdisk.convert(source, target)
    same_content(source, target)
    checked(target)
    allocation_matches(source, target)


@pytest.mark.parametrize(("fmt", "block_size", "sector_size"),
                         [("vhdx", MIB, 4096), ("vhdx", 8 * MIB, 512), ("vhd", 512 * 1024, None)])
def test_block_size_and_sector_size(tmp_path: Path, fmt: str, block_size: int,
                                    sector_size: int | None) -> None:
    source = raw_source(tmp_path / "source.img")
    target = tmp_path / f"copy.{fmt}"
    virtdisk.convert(source, target, block_size=block_size, sector_size=sector_size)
    with virtdisk.open(target) as disk:
        assert disk.block_size == block_size
        assert disk.sector_size == (sector_size or 512)
        assert disk.read(0, SIZE) == source.read_bytes()
    checked(target) if sector_size != 4096 else layout(target)
    allocation_matches(source, target)
    if sector_size == 4096:
        # qemu reads no 4K-sector VHDX; libvhdi does.
        result = run("vhdiinfo", target) if shutil.which("vhdiinfo") else None
        if result is not None:
            assert result.returncode == 0, result.stdout + result.stderr
            assert "4096" in result.stdout
    else:
        same_content(source, target)


def test_fixed_vhd_of_a_raw_image_needs_whole_mib(tmp_path: Path) -> None:
    """Azure's rule for an uploaded VHD: a clear message, nothing created;
    dynamic VHD and fixed VHDX take the same size."""
    size = 5 * MIB + 512
    source = raw_source(tmp_path / "odd.img", size, [(0, 512), (size - 512, 512)])
    target = tmp_path / "fixed.vhd"
    with pytest.raises(ValueError, match=r"whole number of MiB.*Azure.*truncate -s 6291456"):
        virtdisk.convert(source, target, type="fixed")
    assert not target.exists()
    for name, kind in (("dynamic.vhd", "dynamic"), ("fixed.vhdx", "fixed")):
        virtdisk.convert(source, tmp_path / name, type=kind)  # type: ignore[arg-type]
        same_content(source, tmp_path / name)


def test_a_raw_size_that_is_not_whole_sectors_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "short.img"
    source.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="pad it to 1024"):
        virtdisk.convert(source, tmp_path / "copy.vhdx")
    with pytest.raises(ValueError, match="4096-byte sectors"):
        virtdisk.convert(raw_source(tmp_path / "a.img", MIB + 512, []), tmp_path / "b.vhdx",
                         sector_size=4096)
    assert not (tmp_path / "copy.vhdx").exists() and not (tmp_path / "b.vhdx").exists()


# ------------------------------------------------------------------ images to images

IMAGE_CASES = [(source_fmt, source_kind, fmt, kind)
               for source_fmt in ("vhd", "vhdx") for source_kind in ("dynamic", "fixed")
               for fmt in ("vhd", "vhdx") for kind in ("dynamic", "fixed")]


@pytest.mark.parametrize(("source_fmt", "source_kind", "fmt", "kind"), IMAGE_CASES,
                         ids=["-".join(case) for case in IMAGE_CASES])
def test_image_to_image(tmp_path: Path, source_fmt: str, source_kind: str, fmt: str,
                        kind: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / f"source.{source_fmt}", source_fmt, source_kind)
    converted(source, tmp_path / f"copy.{fmt}", reference, kind)


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_image_to_raw(tmp_path: Path, fmt: str, kind: str) -> None:
    """A raw destination is sparse where the content is zeros (dynamic, the
    default) or fully written (fixed)."""
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / f"source.{fmt}", fmt, "dynamic")
    target = tmp_path / "copy.img"
    progress = Progress()
    virtdisk.convert(source, target, type=kind, progress=progress)  # type: ignore[arg-type]
    progress.check(SIZE)
    assert target.read_bytes() == reference.read_bytes()
    used = os.stat(target).st_blocks * 512
    if kind == "dynamic":
        assert used <= 8 * MIB, used
    else:
        assert used >= SIZE, used


def test_raw_to_raw_keeps_the_holes(tmp_path: Path) -> None:
    reference = raw_source(tmp_path / "reference.img")
    target = tmp_path / "copy.raw"
    progress = Progress()
    virtdisk.convert(reference, target, progress=progress)
    progress.check(SIZE)
    assert target.read_bytes() == reference.read_bytes()
    assert os.stat(target).st_blocks * 512 <= 8 * MIB


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_differencing_source_gives_its_full_content(tmp_path: Path, fmt: str) -> None:
    """A child and its parent read as one disk: the copy holds both."""
    reference = raw_source(tmp_path / "reference.img")
    parent = qemu_made(reference, tmp_path / f"parent.{fmt}", fmt, "dynamic")
    child, merged = tmp_path / f"child.{fmt}", tmp_path / "expected.img"
    written_child(parent, child, [(512, 1000), (3 * MIB - 100, 300), (40 * MIB, 2 * MIB),
                                  (SIZE - 4096, 4096)], reference.read_bytes(), merged)
    for name in ("copy.vhd", "copy.vhdx", "copy.img"):
        virtdisk.convert(child, tmp_path / name)
        same_content(merged, tmp_path / name)
        checked(tmp_path / name)
    allocation_matches(merged, tmp_path / "copy.vhdx")


# -------------------------------------------------------------------- block devices

@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A read-only loop device over a raw file; yields (device, backing)."""
    backing = raw_source(tmp_path / "device.img", 40 * MIB,
                         [(0, 4096), (7 * MIB, 3 * MIB), (40 * MIB - 512, 512)])
    with attached(backing) as device:
        yield device, backing


@pytest.mark.parametrize(("fmt", "kind"), TARGETS, ids=[f"{f}-{k}" for f, k in TARGETS])
def test_a_block_device_is_a_source(tmp_path: Path, loop_device: tuple[Path, Path], fmt: str,
                                    kind: str) -> None:
    device, backing = loop_device
    converted(device, tmp_path / f"copy.{fmt}", backing, kind, 40 * MIB)


def test_a_block_device_to_raw(tmp_path: Path, loop_device: tuple[Path, Path]) -> None:
    device, backing = loop_device
    virtdisk.convert(device, tmp_path / "copy.img")
    assert (tmp_path / "copy.img").read_bytes() == backing.read_bytes()


# ----------------------------------------------------------------------- failures

@pytest.mark.parametrize("name", ["copy.vhdx", "copy.vhd", "copy.img"])
def test_the_destination_is_never_overwritten(tmp_path: Path, name: str) -> None:
    source = raw_source(tmp_path / "source.img", 8 * MIB, [(0, 512)])
    target = tmp_path / name
    target.write_bytes(b"precious")
    with pytest.raises(virtdisk.ImageExistsError, match="never overwrites"):
        virtdisk.convert(source, target)
    assert target.read_bytes() == b"precious"


def shrinking(source: Path, after: int) -> Progress:
    """A progress callback that truncates `source` once `after` bytes are
    done: the source then ends part way through the copy."""

    class Shrinking(Progress):
        def __call__(self, done: int, total: int) -> None:
            super().__call__(done, total)
            if done >= after:
                os.truncate(source, after)

    return Shrinking()


@pytest.mark.parametrize("name", ["copy.vhdx", "copy.vhd", "copy.img"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_a_source_that_ends_part_way_leaves_no_destination(tmp_path: Path, name: str,
                                                            kind: str) -> None:
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random("full").randbytes(40 * MIB))
    target = tmp_path / name
    with pytest.raises(EOFError, match="the source ended at"):
        virtdisk.convert(source, target, type=kind,  # type: ignore[arg-type]
                         progress=shrinking(source, 8 * MIB))
    assert not target.exists()


@pytest.mark.parametrize("name", ["copy.vhdx", "copy.img"])
def test_an_interrupt_leaves_no_destination(tmp_path: Path, name: str) -> None:
    source = raw_source(tmp_path / "source.raw", 40 * MIB, [(0, 40 * MIB)])

    def interrupt(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        virtdisk.convert(source, tmp_path / name, progress=interrupt)
    assert not (tmp_path / name).exists()
    image = qemu_made(source, tmp_path / "source.vhdx", "vhdx", "dynamic")
    with pytest.raises(KeyboardInterrupt):
        virtdisk.convert(image, tmp_path / "again.vhd", progress=interrupt)
    assert not (tmp_path / "again.vhd").exists()


@pytest.mark.parametrize(("name", "kind", "from_image"),
                         [("copy.vhdx", "dynamic", False), ("copy.vhd", "dynamic", False),
                          ("copy.vhdx", "fixed", False), ("copy.img", "dynamic", False),
                          ("copy.vhdx", "dynamic", True), ("copy.vhd", "fixed", True),
                          ("copy.img", "fixed", True)])
def test_a_full_file_system_leaves_no_destination(tmp_path: Path, small_file_system: Path,
                                                  name: str, kind: str,
                                                  from_image: bool) -> None:
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random("full").randbytes(24 * MIB))
    if from_image:
        source = qemu_made(source, tmp_path / "source.vhdx", "vhdx", "dynamic")
    target = small_file_system / name
    # What a full host is called depends on the path: the provider's copy
    # and a write through the SCSI target (SPACE ALLOCATION FAILED) say
    # DiskFullError, a raw file ENOSPC.
    with pytest.raises(OSError) as raised:
        virtdisk.convert(source, target, type=kind)  # type: ignore[arg-type]
    error = raised.value
    assert isinstance(error, virtdisk.DiskFullError) or error.errno == errno.ENOSPC, error
    assert not target.exists()
    assert os.listdir(small_file_system) == []


def test_a_full_host_through_scsi_is_disk_full(tmp_path: Path, small_file_system: Path) -> None:
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random("full").randbytes(24 * MIB))
    with pytest.raises(virtdisk.DiskFullError):
        virtdisk.convert(source, small_file_system / "copy.vhdx")


def test_a_missing_source_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        virtdisk.convert(tmp_path / "absent.img", tmp_path / "copy.vhdx")
    assert not (tmp_path / "copy.vhdx").exists()
