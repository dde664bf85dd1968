"""A raw file written into a VHD or VHDX by the engine (``_virtdisk.copy_from_file``,
``vd_engine_copy_from_file``), as ``virtdisk.convert`` does for a raw source.

Each piece's first 4 KiB tell data from zeros: a piece of data is written
through the disk that far (which allocates its block) and the rest of it,
with the pieces of data after it in the block, goes straight into the
image's file, by copy_file_range into a file in memory (tmpfs) and through
a buffer into space reserved with fallocate elsewhere.  Sources of every
shape (data after zeros in a piece, zeros after data, runs broken inside a
block, blocks of zeros, a last sector of data) must read back as they were
in qemu-img (compare, map, check) and libvhdi (pyvhdi); strace shows the
way the data took.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).parent))
from conversion_sources import QEMU_FORMAT  # noqa: E402
from traced_conversions import ENGINE_COPY_MARKS, directory_on_dev_shm, needs_strace  # noqa: E402

pytestmark = ENGINE_COPY_MARKS

MIB = 1 << 20
BLOCK = 2 * MIB
PIECE = 512 * 1024
SIZE = 12 * MIB
ZERO_BLOCK = 3


def shaped_source(path: Path) -> bytes:
    """A raw file of SIZE bytes whose 2 MiB blocks hold: 0, data throughout;
    1, 4 KiB of zeros then data; 2, pieces of zeros and data in turn; 3,
    nothing; 4, data in its first 4 KiB only; 5, data in its last sector."""
    chooser = random.Random(path.name)
    content = bytearray(SIZE)

    def fill(offset: int, length: int) -> None:
        content[offset:offset + length] = chooser.randbytes(length)

    fill(0, BLOCK)
    fill(BLOCK + 4096, BLOCK - 4096)
    for index in (1, 3):
        fill(2 * BLOCK + index * PIECE, PIECE)
    fill(4 * BLOCK, 4096)
    fill(SIZE - 512, 512)
    path.write_bytes(content)
    return bytes(content)


def qemu(*arguments: str | Path) -> str:
    result = subprocess.run(["qemu-img", *map(str, arguments)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


_PYVHDI_READ = """
import sys, pyvhdi
image = pyvhdi.file()
image.open(sys.argv[1])
if len(sys.argv) > 2:
    parent = pyvhdi.file()
    parent.open(sys.argv[2])
    image.set_parent(parent)
sys.stdout.buffer.write(image.read_buffer(image.get_media_size()))
"""


def read_with_pyvhdi(path: Path, parent: Path | None = None) -> bytes:
    """The content libvhdi reads (pyvhdi of the system's Python), through
    `parent` when given."""
    if subprocess.run(["/usr/bin/python3", "-c", "import pyvhdi"],
                      capture_output=True).returncode != 0:
        pytest.skip("pyvhdi is not installed for /usr/bin/python3")
    extra = [] if parent is None else [str(parent)]
    return subprocess.run(["/usr/bin/python3", "-c", _PYVHDI_READ, str(path), *extra],
                          capture_output=True, check=True).stdout


def data_blocks(image: Path, fmt: str) -> set[int]:
    """The 2 MiB blocks qemu-img map finds data in."""
    found: set[int] = set()
    for entry in json.loads(qemu("map", "-f", QEMU_FORMAT[fmt], "--output=json", image)):
        if entry["data"]:
            start, end = entry["start"], entry["start"] + entry["length"]
            found.update(range(start // BLOCK, (end - 1) // BLOCK + 1))
    return found


@pytest.fixture(params=["disk", "memory"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The tests' directory, and one on /dev/shm (tmpfs: the kernel's copy)."""
    if request.param == "disk":
        yield tmp_path
        return
    with directory_on_dev_shm("vd-raw-into-") as shm:
        if shm is None:
            pytest.skip("no /dev/shm")
        yield shm


CASES = [("vhd", "dynamic"), ("vhdx", "dynamic"), ("vhd", "fixed"), ("vhdx", "fixed")]


@pytest.mark.parametrize(("fmt", "kind"), CASES, ids=[f"{k}-{f}" for f, k in CASES])
def test_sources_of_every_shape_read_back_as_they_were(directory: Path, fmt: str,
                                                       kind: str) -> None:
    source = directory / "source.img"
    content = shaped_source(source)
    target = directory / f"copy.{fmt}"
    virtdisk.convert(source, target, type=kind,  # type: ignore[arg-type]
                     block_size=BLOCK if kind == "dynamic" else None)
    qemu("compare", "-f", "raw", "-F", QEMU_FORMAT[fmt], source, target)
    if fmt == "vhd":
        assert read_with_pyvhdi(target) == content
    else:
        qemu("check", "-f", "vhdx", target)
    if kind == "dynamic" and fmt == "vhd":
        assert data_blocks(target, fmt) == {0, 1, 2, 4, 5}
    elif kind == "dynamic":
        # qemu-img maps a VHDX as all data: the file holds five blocks
        # more than an empty image of the same size.
        empty = directory / "empty.vhdx"
        virtdisk.create(empty, SIZE, block_size=BLOCK).close()
        assert os.path.getsize(target) - os.path.getsize(empty) == 5 * BLOCK


def traced(source: Path, target: Path, calls: str, **options: object) -> list[str]:
    """Converts in a child process under strace; the lines of `calls`."""
    trace = target.with_suffix(".trace")
    script = (f"import virtdisk; virtdisk.convert({str(source)!r}, {str(target)!r}, "
              f"**{options!r})")
    result = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", f"trace={calls}",
                             sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return trace.read_text().splitlines()


def traced_shaped_conversion(directory: Path, fmt: str, calls: str) -> list[str]:
    """The shaped source converted in `directory` under strace, checked
    against the source by qemu-img; the lines of `calls`."""
    source = directory / "source.img"
    shaped_source(source)
    target = directory / f"copy.{fmt}"
    lines = traced(source, target, calls, block_size=BLOCK)
    qemu("compare", "-f", "raw", "-F", QEMU_FORMAT[fmt], source, target)
    return lines


def on_tmpfs(path: Path) -> bool:
    result = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                            text=True)
    return result.stdout.strip() in ("tmpfs", "ramfs")


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_data_reaches_an_image_in_memory_by_copy_file_range(fmt: str) -> None:
    """On tmpfs, all the data but each block's first 4 KiB moves in the
    kernel, from the source straight into the image's file."""
    with directory_on_dev_shm("vd-raw-into-") as shm:
        if shm is None:
            pytest.skip("no /dev/shm")
        lines = traced_shaped_conversion(shm, fmt, "copy_file_range")
    copied = 0
    for line in lines:
        found = re.search(r"copy_file_range\(\d+, \[\d+\], \d+, \[\d+\], \d+, 0\) = (\d+)", line)
        if found:
            copied += int(found.group(1))
    # Blocks 0 and 1 give their first 4 KiB of data, and block 2's two runs
    # theirs, to the writes through the disk; block 4's data and block 5's
    # are no more than that.
    assert copied == (BLOCK - 4096) + (BLOCK - 8192) + 2 * (PIECE - 4096)


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_dynamic_images_runs_are_reserved_on_disk(tmp_path: Path, fmt: str) -> None:
    """Off tmpfs, each run of data is written into space reserved with
    fallocate (keeping the file's size) just before."""
    if on_tmpfs(tmp_path):
        pytest.skip("the tests' directory is on tmpfs")
    lines = traced_shaped_conversion(tmp_path, fmt, "fallocate")
    reserved = [line for line in lines if "FALLOC_FL_KEEP_SIZE" in line and "= 0" in line]
    # Blocks 0 and 1 are a run each, block 2 two; block 5's last sector
    # and block 4's first 4 KiB are written through the disk alone.
    assert len(reserved) >= 4, lines


@pytest.mark.parametrize("memory", [False, True], ids=["disk", "memory"])
def test_a_source_that_ends_inside_a_run_fails(tmp_path: Path, memory: bool) -> None:
    """The engine's read past the source's end answers HANDLE_EOF, whichever
    way the run goes."""
    with directory_on_dev_shm("vd-raw-into-") as shm:
        directory = shm if memory and shm is not None else tmp_path
        if memory and shm is None:
            pytest.skip("no /dev/shm")
        short = directory / "short.img"
        short.write_bytes(random.Random(1).randbytes(MIB + 4096))
        image = directory / "disk.vhdx"
        with open(short, "rb") as raw, virtdisk.create(image, 8 * MIB) as disk, \
                pytest.raises(virtdisk.VirtualDiskError) as caught:
            _virtdisk.copy_from_file(disk.handle, raw.fileno(), 0, 2 * MIB, PIECE)
        assert caught.value.winerror == 38   # ERROR_HANDLE_EOF


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_differencing_child_takes_the_pieces_of_data_only(tmp_path: Path, fmt: str) -> None:
    """Into a child, the new blocks mark only what is written: the sectors
    past each piece's first 4 KiB are the parent's until the rest of the
    piece is written through the disk, and pieces of zeros leave the
    parent's content showing."""
    chooser = random.Random(fmt)
    parent = tmp_path / f"parent.{fmt}"
    base = chooser.randbytes(SIZE)
    with virtdisk.create(parent, SIZE, block_size=BLOCK) as disk:
        disk.write(0, base)
    child = tmp_path / f"child.{fmt}"
    virtdisk.create(child, parent=parent).close()
    source = tmp_path / "source.img"
    content = shaped_source(source)
    with open(source, "rb") as raw, virtdisk.open(child, read_only=False) as disk:
        _virtdisk.copy_from_file(disk.handle, raw.fileno(), 0, SIZE, PIECE)
    expected = bytearray(base)
    for offset in range(0, SIZE, PIECE):
        piece = content[offset:offset + PIECE]
        if piece.count(0) != len(piece):
            expected[offset:offset + PIECE] = piece
    # libvhdi, not qemu-img: qemu reads a VHD child's blocks without
    # their bitmaps, and opens no VHDX child.
    assert read_with_pyvhdi(child, parent) == expected
