"""What a compact asks of the host file, counted by strace in a child
process: the block moves copy in the kernel (``copy_file_range``), so the
moved bytes never pass through the process, with one data flush and one
set of BAT writes for a whole batch of blocks; the zero scan skips the
file's holes (``SEEK_DATA``) instead of reading them.  ``qemu-img compare``
against the content taken before the compact, and ``qemu-img check`` for
VHDX, show that the content stays what it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import _virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_vhd_write import check_structure  # noqa: E402
from traced_child import needs_strace, run_traced  # noqa: E402
from vhdx_layout import layout  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux")
                       or not _virtdisk.features().get("CompactVirtualDisk", False),
                       reason="the engine's compact, on copy_file_range and SEEK_DATA as Linux has them"),
    pytest.mark.skipif(any(shutil.which(tool) is None for tool in ("qemu-img", "fallocate")),
                       reason="qemu-img checks the content, fallocate punches"),
    needs_strace("strace counts the calls"),
]

MIB = 1 << 20
BLOCK = 2 * MIB
BLOCKS = 32
QEMU_FORMAT = {".vhdx": "vhdx", ".vhd": "vpc"}


def in_child(script: str, trace: Path | None = None, calls: str = "") -> list[str]:
    """Runs `script` in a Python child, under strace of `calls` when `trace`
    is given; the trace's lines."""
    return run_traced("import virtdisk\n" + textwrap.dedent(script), trace, calls)


def make_image(path: Path, zero_blocks: list[int]) -> None:
    """A dynamic image of BLOCKS blocks of 2 MiB, every one written: block
    i holds the byte i + 1 (so that it can be found in the file), the
    `zero_blocks` zeros written as zeros."""
    in_child(f"""
        with virtdisk.create({str(path)!r}, {BLOCKS * BLOCK}, block_size={BLOCK}) as disk:
            for block in range({BLOCKS}):
                zero = block in {zero_blocks!r}
                disk.write(block * {BLOCK}, bytes({BLOCK}) if zero else bytes([block + 1]) * {BLOCK})
    """)


def compact(path: Path, trace: Path, calls: str, *, move_blocks: bool = True) -> list[str]:
    return in_child(f"""
        with virtdisk.open({str(path)!r}, read_only=False) as disk:
            disk.compact(move_blocks={move_blocks})
    """, trace, calls)


def as_raw(image: Path) -> Path:
    raw = image.with_suffix(".raw")
    subprocess.run(["qemu-img", "convert", "-f", QEMU_FORMAT[image.suffix], "-O", "raw",
                    str(image), str(raw)], check=True)
    return raw


def same_content(image: Path, raw: Path) -> None:
    fmt = QEMU_FORMAT[image.suffix]
    compared = subprocess.run(["qemu-img", "compare", "-f", fmt, "-F", "raw", str(image), str(raw)],
                              capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    if fmt == "vhdx":    # qemu-img checks VHDX only
        checked = subprocess.run(["qemu-img", "check", "-f", fmt, str(image)], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def returned_bytes(lines: list[str], call: str) -> int:
    """The sum of what the `call` lines of a trace returned (bytes moved)."""
    return sum(int(found.group(1)) for line in lines
               if (found := re.search(rf"\b{call}\(.*\)\s+=\s+(\d+)", line)))


def count(lines: list[str], call: str) -> int:
    return sum(1 for line in lines if re.search(rf"\b{call}\(", line))


def kernel_copies_within_a_file(directory: Path) -> bool:
    """Whether the file system under `directory` takes copy_file_range
    within one file (a refusal makes the engine copy through a buffer)."""
    probe = directory / "probe"
    probe.write_bytes(os.urandom(8192))
    descriptor = os.open(probe, os.O_RDWR)
    try:
        return os.copy_file_range(descriptor, descriptor, 4096, 0, 4096) == 4096
    except OSError:
        return False
    finally:
        os.close(descriptor)
        probe.unlink()


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_block_moves_copy_in_the_kernel_and_flush_once_per_batch(tmp_path: Path, suffix: str) -> None:
    if not kernel_copies_within_a_file(tmp_path):
        pytest.skip("the file system refuses copy_file_range within a file")
    # Every other block zero: the scan frees 16 blocks, and the data blocks
    # at the end of the file move down into their places.
    image = tmp_path / f"disk{suffix}"
    make_image(image, list(range(0, BLOCKS, 2)))
    raw = as_raw(image)
    size_before = image.stat().st_size
    lines = compact(image, tmp_path / "compact.trace", "copy_file_range,pwrite64,fsync,fdatasync")
    moved = returned_bytes(lines, "copy_file_range")
    # Half the data blocks move, each in one call: 8 of 2 MiB.
    assert moved >= 6 * BLOCK, lines
    assert count(lines, "copy_file_range") <= moved // BLOCK + 1, lines
    # What is written through the process is metadata only: the BAT, the
    # VHDX log, the VHD footer, never the blocks.
    assert returned_bytes(lines, "pwrite64") < BLOCK, lines
    # One batch: the scan's entries, the moves' data flush and entries, the
    # cut; a VHDX log transaction flushes a few times.  Not one per block.
    assert count(lines, "fsync") + count(lines, "fdatasync") <= 12, lines
    assert image.stat().st_size <= size_before - moved
    same_content(image, raw)


def punch_blocks(image: Path, every: int) -> int:
    """Punches a hole over the file bytes of every `every`-th block (found
    by its byte), which then reads zeros while the BAT still names it; the
    bytes punched."""
    data = image.read_bytes()
    punched = 0
    for block in range(0, BLOCKS, every):
        offset = data.find(bytes([block + 1]) * 4096)
        assert offset > 0, block
        subprocess.run(["fallocate", "-p", "-o", str(offset), "-l", str(BLOCK), str(image)],
                       check=True)
        punched += BLOCK
    return punched


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_the_zero_scan_does_not_read_the_files_holes(tmp_path: Path, suffix: str) -> None:
    # All data, then a hole over every other block's bytes in the file: the
    # scan finds those blocks zero by SEEK_DATA and reads only the data
    # blocks' first pieces.
    image = tmp_path / f"disk{suffix}"
    make_image(image, [])
    punched = punch_blocks(image, 2)
    assert punched == BLOCKS // 2 * BLOCK
    raw = as_raw(image)
    allocated_before = image.stat().st_blocks
    lines = compact(image, tmp_path / "compact.trace", "pread64,lseek", move_blocks=False)
    read = returned_bytes(lines, "pread64")
    # The 16 data blocks' first MiB each, and the headers: not the 32 MiB
    # of holes.
    assert read < BLOCKS // 2 * MIB + punched // 8, f"{read} bytes read, {punched} bytes of holes"
    assert any("SEEK_DATA" in line for line in lines), lines
    # The punched blocks left the BAT (qemu-img map shows a VHDX's blocks
    # all as data, so its BAT is read here).
    if suffix == ".vhdx":
        assert layout(image)["fully present"] == BLOCKS // 2
    else:
        mapped = json.loads(subprocess.run(
            ["qemu-img", "map", "-f", "vpc", "--output=json", str(image)],
            capture_output=True, text=True, check=True).stdout)
        assert sum(extent["length"] for extent in mapped if extent["data"]) == BLOCKS // 2 * BLOCK
        check_structure(image)
    assert image.stat().st_blocks <= allocated_before
    same_content(image, raw)
