"""What a grow of a dynamic image asks of the host file, counted by strace
in a child process, and what a crash right after it leaves.

A VHDX grow is one log transaction: its header and entry reach the disk
with one flush; the new BAT entries, zeros, are a zero descriptor of the
entry, so they need no flush of their own; the entry's sectors in place
wait for the next flush (here the close's), since until a header lets the
entry go a crash replays it.  A VHD grow has no log: its new table, its
header and its footer each need their own flush, in that order, and the
copy of the footer moved past the new table waits for the table's.

The crash cases stop the child right after the grow, without a close: the
file then holds a live log entry (VHDX), which the next open replays, and
qemu's replay (``qemu-img check -r all``) agrees; with the entry's sectors
in place lost as well (put back to their old bytes, as a power loss that
kept only what was flushed would), the replay still gives the new size,
and zeros the new entries' space even where it held other bytes.  A VHD
grow that lost the footer copy it moved past the new table opens with the
copy at offset 0: the old disk, for the engine and qemu alike.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import _virtdisk as vd
from test_create_vhd import run, tool
from test_resize import libvhdi_size, qemu_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traced_child import needs_strace, run_traced  # noqa: E402

pytestmark = [
    pytest.mark.skipif(vd.PLATFORM != "engine", reason="the portable engine's files"),
    needs_strace("strace counts the calls"),
]

MiB, GiB = 1 << 20, 1 << 30
OLD_SIZE = 1 * GiB
GROWN = {".vhdx": 2048 * GiB, ".vhd": 2040 * GiB}
CALLS = "pwrite64,fsync,fdatasync,ftruncate,fallocate,write"
START, END = "grow starts", "grow ended"
# Flushes a grow needs (module docstring); the code before counted 4
# (VHDX: header, entry, sectors in place, header again) and 5 (VHD).
FLUSHES = {".vhdx": 1, ".vhd": 3}
# A VHD's new entries: 4 bytes a 2 MiB block.
TABLE_GROWTH = 4 * (GROWN[".vhd"] - OLD_SIZE) // (2 * MiB)


def grow_in_child(image: Path, trace: Path | None, *, close: bool) -> list[str]:
    """Creates `image` (32 MiB VHDX blocks, as the benchmark), grows it in
    a child under strace and returns the trace lines of the grow alone;
    the image before the grow is kept beside it (before.*).  Without
    `close` the child ends right after the grow, as a crash would."""
    options = "block_size=32 << 20" if image.suffix == ".vhdx" else ""
    end = "disk.close()" if close else "os._exit(0)"
    lines = run_traced(textwrap.dedent(f"""
        import os, shutil, _virtdisk, virtdisk
        virtdisk.create({str(image)!r}, {OLD_SIZE}, {options}).close()
        shutil.copy({str(image)!r}, {str(image.with_stem("before"))!r})
        disk = virtdisk.open({str(image)!r}, read_only=False)
        os.write(2, b{START!r})
        _virtdisk.ResizeVirtualDisk(disk.handle, {GROWN[image.suffix]})
        os.write(2, b{END!r})
        {end}
    """), trace, CALLS)
    marks = [i for i, line in enumerate(lines) if START in line or END in line]
    assert len(marks) == 2, lines
    return lines[marks[0] + 1:marks[1]]


def pwrites(lines: list[str]) -> list[tuple[int, int]]:
    """(offset, length) of the pwrite64 calls among `lines`."""
    return [(int(found.group(2)), int(found.group(1))) for line in lines
            if (found := re.search(r"pwrite64\(\d+, .*, (\d+), (\d+)\)\s+=", line))]


def count(lines: list[str], call: str) -> int:
    return sum(1 for line in lines if re.search(rf"\b{call}\(", line))


def engine_size(image: Path) -> int:
    import virtdisk
    with virtdisk.open(image) as disk:
        return disk.virtual_size


def qemu_check(image: Path, *repair: str) -> None:
    if image.suffix == ".vhdx":   # qemu-img checks VHDX only
        run(tool("qemu-img"), "check", "-q", *repair, "-f", "vhdx", image)


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_a_grow_flushes_only_what_its_crash_order_needs(tmp_path: Path, suffix: str) -> None:
    image = tmp_path / f"disk{suffix}"
    lines = grow_in_child(image, tmp_path / "grow.trace", close=True)
    flushes = count(lines, "fsync") + count(lines, "fdatasync")
    assert flushes == FLUSHES[suffix], "\n".join(lines)
    # Nothing but the header, the entry and the size's sector, the new
    # entries zeroed in one call (VHDX); the new table, the header and
    # the footers (VHD).
    written = sum(length for _, length in pwrites(lines))
    if suffix == ".vhdx":
        assert count(lines, "pwrite64") == 3 and count(lines, "fallocate") == 1, "\n".join(lines)
        assert written <= 4 * 4096, "\n".join(lines)
    else:
        assert written <= TABLE_GROWTH + 4096, "\n".join(lines)
    size = GROWN[suffix]
    assert engine_size(image) == size
    assert qemu_size(image) == size
    assert libvhdi_size(image) == size
    qemu_check(image)


def in_place_writes(lines: list[str]) -> list[tuple[int, int]]:
    """(offset, length) of what the trace wrote or zeroed after its last
    flush: a VHDX grow's log entry sectors in place."""
    last = max(i for i, line in enumerate(lines) if re.search(r"\bf(data)?sync\(", line))
    ranges = []
    for line in lines[last + 1:]:
        if (found := re.search(r"pwrite64\(\d+, .*, (\d+), (\d+)\)\s+=", line)):
            ranges.append((int(found.group(2)), int(found.group(1))))
        elif (found := re.search(r"fallocate\(\d+, [A-Z_|]+, (\d+), (\d+)\)", line)):
            ranges.append((int(found.group(1)), int(found.group(2))))
    return ranges


def zeroed_ranges(lines: list[str]) -> list[tuple[int, int]]:
    """(offset, length) of the trace's fallocate calls: the zero runs."""
    return [(int(found.group(1)), int(found.group(2))) for line in lines
            if (found := re.search(r"fallocate\(\d+, [A-Z_|]+, (\d+), (\d+)\)", line))]


@pytest.mark.parametrize("crash", ["kept", "lost", "stale"])
def test_a_crash_after_a_vhdx_grow_replays_its_entry(tmp_path: Path, crash: str) -> None:
    # kept: the child ends after the grow, the page cache keeps its writes.
    # lost: the entry's sectors in place go back to their old bytes.
    # stale: and the space of the new entries holds old bytes that are not
    # zeros (as the places of blocks moved for the BAT, or a shrink's
    # leftovers, would): the entry's zero descriptors must zero them.
    image = tmp_path / "disk.vhdx"
    lines = grow_in_child(image, tmp_path / "grow.trace", close=False)
    zeroed = zeroed_ranges(lines)
    assert zeroed, "\n".join(lines)
    if crash != "kept":
        old = image.with_stem("before").read_bytes()
        ranges = in_place_writes(lines)
        assert ranges, "\n".join(lines)
        with open(image, "r+b") as file:
            for offset, length in ranges:
                file.seek(offset)
                stale = crash == "stale" and (offset, length) in zeroed
                file.write(b"\xa5" * length if stale else old[offset:offset + length].ljust(length, b"\0"))
    engine_copy = image.with_stem("engine")
    shutil.copy(image, engine_copy)
    # Read-only opens replay in memory; qemu replays into the file, and a
    # writable open of the engine too.
    assert engine_size(image) == GROWN[".vhdx"]
    qemu_check(image, "-r", "all")
    assert qemu_size(image) == GROWN[".vhdx"]
    qemu_check(image)
    run_traced(f"import virtdisk\nvirtdisk.open({str(engine_copy)!r}, read_only=False).close()", None, "")
    for replayed in (image, engine_copy):
        data = replayed.read_bytes()
        for offset, length in zeroed:
            assert data[offset:offset + length] == bytes(length), (replayed.name, offset)
    assert engine_size(engine_copy) == GROWN[".vhdx"]
    qemu_check(engine_copy)


def writes_before_the_first_flush(lines: list[str]) -> list[tuple[int, int]]:
    """(offset, length) of the trace's pwrite64 calls before its first flush."""
    first = min(i for i, line in enumerate(lines) if re.search(r"\bf(data)?sync\(", line))
    return pwrites(lines[:first])


@pytest.mark.parametrize("extended", [False, True], ids=["cut", "extended"])
def test_a_crash_that_loses_the_moved_vhd_footer_leaves_the_old_disk(tmp_path: Path, extended: bool) -> None:
    # The grow's first flush covers the copy of the end footer at the new
    # end and the new table over the old end footer: a crash that keeps the
    # table but not the copy leaves no end footer; the copy at 0 is the old
    # footer, and the old header and table name nothing new.
    image = tmp_path / "disk.vhd"
    lines = grow_in_child(image, tmp_path / "grow.trace", close=True)
    grown = image.read_bytes()
    footer, *table = writes_before_the_first_flush(lines)
    assert footer[1] == 512 and table and all(offset < footer[0] for offset, _ in table), lines
    crashed = bytearray(image.with_stem("before").read_bytes())
    for offset, length in table:
        crashed.extend(bytes(max(0, offset - len(crashed))))
        crashed[offset:offset + length] = grown[offset:offset + length].ljust(length, b"\0")
    if extended:   # the file's new length kept, the footer's bytes lost
        crashed.extend(bytes(footer[0] + footer[1] - len(crashed)))
    image.write_bytes(bytes(crashed))
    assert engine_size(image) == OLD_SIZE
    assert qemu_size(image) == OLD_SIZE
    compared = subprocess.run([tool("qemu-img"), "compare", "-f", "vpc", "-F", "vpc", str(image),
                               str(image.with_stem("before"))], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
