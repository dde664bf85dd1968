"""Long copies start the target's writeback as they go (``vd_file_pace_writeback``).

A merge, a mirror's copy and a compact's block moves end in a flush.  Left
alone, the page cache would hold every byte they wrote until that fsync,
which then waits for all of it at once.  Every 32 MiB they ask the kernel to
start writing (``sync_file_range(..., SYNC_FILE_RANGE_WRITE)``), so the disk
works while the copy goes on.  strace counts those calls in a child process
doing each operation, and ``qemu-img compare`` checks the result, since the
hint must change nothing a reader sees.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import _virtdisk
import pytest
from traced_child import needs_strace, run_traced

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="sync_file_range is Linux's; elsewhere the hint does nothing"),
    pytest.mark.skipif(not _virtdisk.features().get("MergeVirtualDisk", False),
                       reason="the long operations are not available here"),
    needs_strace("strace counts the calls"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img checks the results"),
]

MIB = 1 << 20
DATA = 96 * MIB            # three times the pace: at least two hints before the end

WRITE_DATA = """
import os, virtdisk
def fill(path, start, length, twin=None):
    # Random data into the image, and the same bytes into a raw twin file.
    with virtdisk.open(path, read_only=False) as disk:
        for offset in range(start, start + length, 1 << 20):
            data = os.urandom(1 << 20)
            disk.write(offset, data)
            if twin is not None:
                with open(twin, "r+b" if os.path.exists(twin) else "wb") as raw:
                    raw.truncate(disk.virtual_size)
                    raw.seek(offset)
                    raw.write(data)
"""


def in_child(script: str, trace: Path | None = None) -> int:
    """Runs `script` in a Python child, under strace when `trace` is given;
    the number of sync_file_range calls that start a writeback."""
    lines = run_traced(textwrap.dedent(WRITE_DATA) + textwrap.dedent(script), trace,
                       "sync_file_range")
    return sum(1 for line in lines
               if re.search(r"\bsync_file_range\(.*SYNC_FILE_RANGE_WRITE", line))


def same_content(first: Path, first_format: str, second: Path, second_format: str) -> None:
    result = subprocess.run(["qemu-img", "compare", "-f", first_format, "-F", second_format,
                             str(first), str(second)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_merge_starts_the_parents_writeback_as_it_copies(tmp_path: Path) -> None:
    parent, child = tmp_path / "parent.vhdx", tmp_path / "child.vhdx"
    reference = tmp_path / "child.raw"      # qemu-img reads no VHDX parents
    in_child(f"""
        virtdisk.create({str(parent)!r}, {DATA}).close()
        virtdisk.create({str(child)!r}, parent={str(parent)!r}).close()
        fill({str(child)!r}, 0, {DATA}, twin={str(reference)!r})
    """)
    hints = in_child(f"virtdisk.merge({str(child)!r})", tmp_path / "merge.trace")
    assert hints >= 2, f"{hints} writeback starts for a merge of {DATA // MIB} MiB"
    same_content(reference, "raw", parent, "vhdx")


def test_a_mirror_starts_the_copys_writeback_as_it_copies(tmp_path: Path) -> None:
    source, mirror = tmp_path / "source.vhdx", tmp_path / "mirror.vhdx"
    in_child(f"""
        virtdisk.create({str(source)!r}, {DATA}).close()
        fill({str(source)!r}, 0, {DATA})
    """)
    hints = in_child(f"""
        with virtdisk.open({str(source)!r}, read_only=False) as disk:
            copy = disk.mirror({str(mirror)!r})
            copy.wait_mirrored()
            copy.break_()
    """, tmp_path / "mirror.trace")
    assert hints >= 2, f"{hints} writeback starts for a mirror of {DATA // MIB} MiB"
    same_content(source, "vhdx", mirror, "vhdx")


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_compact_block_moves_start_the_writeback(tmp_path: Path, suffix: str) -> None:
    # The first half written and then zeroed, the second half data: the
    # compact frees the first half's blocks and moves the second half down.
    image, reference = tmp_path / f"disk{suffix}", tmp_path / "disk.raw"
    qemu_format = "vhdx" if suffix == ".vhdx" else "vpc"
    in_child(f"""
        virtdisk.create({str(image)!r}, {2 * DATA}, block_size="2M").close()
        fill({str(image)!r}, 0, {2 * DATA})
        with virtdisk.open({str(image)!r}, read_only=False) as disk:
            for offset in range(0, {DATA}, 1 << 20):
                disk.write(offset, bytes(1 << 20))
    """)
    subprocess.run(["qemu-img", "convert", "-f", qemu_format, "-O", "raw", str(image),
                    str(reference)], check=True)
    size_before = image.stat().st_size
    hints = in_child(f"""
        with virtdisk.open({str(image)!r}, read_only=False) as disk:
            disk.compact()
    """, tmp_path / "compact.trace")
    assert image.stat().st_size < size_before - DATA // 2, "the compact moved no blocks"
    assert hints >= 2, f"{hints} writeback starts for {DATA // MIB} MiB of block moves"
    same_content(reference, "raw", image, qemu_format)
