"""CompactVirtualDisk V1 on VHD (vhd_compact.c), checked by readers nobody
here wrote.

Engine-made dynamic VHDs get data, zeros written as zeros and short zero
writes in turn, mirrored into a raw file; after a compact `qemu-img compare`
and pyvhdi give the mirror, the structure is sound (footer equals its copy
at 0, blocks clear of each other and of the footer) and the file is
smaller.  A differencing child keeps a zero block that hides parent data
and gives back one over parent zeros; pyvhdi reads it with the parent set.
Fault injection stops the compact after each of its file changes: the
image must then open, read the old content and be sound.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from content_driver import ContentSession, build_content_harness, stop_after_each_file_change  # noqa: E402
from test_vhd_write import (check_structure, dump, engine_image, every_sector_old_or_new,  # noqa: E402
                            has_pyvhdi, pyvhdi_bytes, vhd_layout)

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 512 * KiB
SIZE = 32 * BLOCK
UNALLOCATED = 0xFFFFFFFF
NO_ZERO_SCAN = int(vd.COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN)
NO_BLOCK_MOVES = int(vd.COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES)

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="drives the portable engine's data path"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img compares the images"),
]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("compact_vhd"))


@pytest.fixture(scope="module")
def fault_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("compact_vhd_fault"),
                                 defines=("-DVD_FAULT_INJECTION",))


def data_blocks() -> list[int]:
    """The blocks `make` fills with data (the others hold zeros)."""
    return [i for i in range(SIZE // BLOCK) if i % 3 == 0]


def make(harness: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A dynamic VHD of 32 blocks and its mirror: a block of data, a block
    of written zeros and a block with 4 KiB of written zeros, in turn."""
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    engine_image(image, SIZE, "dynamic", BLOCK)
    session = ContentSession(harness, image, mirror, SIZE, seed=3)
    for i in range(SIZE // BLOCK):
        if i % 3 == 0:
            session.write(i * BLOCK, BLOCK)
        elif i % 3 == 1:
            session.write(i * BLOCK, BLOCK, bytes(BLOCK))
        else:
            session.write(i * BLOCK + 64 * KiB, 4 * KiB, bytes(4 * KiB))
    session.flush()
    session.run()
    return image, mirror


def compact(harness: Path, image: Path, flags: int) -> None:
    session = ContentSession(harness, image, image.with_suffix(".unused"), 0)
    session.command(f"c {flags}")
    session.run()


def same_as_mirror(harness: Path, image: Path, mirror: Path) -> None:
    expected = mirror.read_bytes()
    subprocess.run(["qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", str(image), str(mirror)],
                   check=True)
    assert dump(harness, image, image.with_suffix(".dump")) == expected
    if has_pyvhdi():
        assert pyvhdi_bytes(image) == expected


def allocated(image: Path) -> list[int]:
    return [i for i, entry in enumerate(vhd_layout(image)[3]) if entry != UNALLOCATED]


def test_compact_moves_blocks_and_cuts_the_file(harness: Path, tmp_path: Path) -> None:
    image, mirror = make(harness, tmp_path)
    before = image.stat().st_size
    assert len(allocated(image)) == SIZE // BLOCK
    compact(harness, image, 0)
    assert allocated(image) == data_blocks()
    # 21 of the 32 blocks held zeros: their space left the file.
    assert image.stat().st_size <= before - 21 * BLOCK
    same_as_mirror(harness, image, mirror)
    check_structure(image)


def test_no_block_moves_punches_holes_and_keeps_the_size(harness: Path, tmp_path: Path) -> None:
    image, mirror = make(harness, tmp_path)
    before = image.stat()
    compact(harness, image, NO_BLOCK_MOVES)
    after = image.stat()
    assert allocated(image) == data_blocks()
    assert after.st_size == before.st_size
    # The 11 blocks of written zeros held their whole space (the short
    # zero writes left most of theirs sparse already).
    assert after.st_blocks * 512 <= before.st_blocks * 512 - 11 * BLOCK
    same_as_mirror(harness, image, mirror)
    check_structure(image)


def test_no_zero_scan_keeps_blocks_whose_sectors_are_marked(harness: Path, tmp_path: Path) -> None:
    # The engine marks every sector of a dynamic block it allocates, so
    # without the scan no block leaves.
    image, mirror = make(harness, tmp_path)
    before = image.stat()
    compact(harness, image, NO_ZERO_SCAN | NO_BLOCK_MOVES)
    assert len(allocated(image)) == SIZE // BLOCK
    assert image.stat().st_blocks == before.st_blocks
    same_as_mirror(harness, image, mirror)


def test_no_zero_scan_still_cuts_space_no_block_uses(harness: Path, tmp_path: Path) -> None:
    # Space after the last block (what a crash between an allocation's
    # footer move and its BAT entry leaves) goes without reading any data.
    image, mirror = make(harness, tmp_path)
    data = image.read_bytes()
    footer = data[-512:]
    image.write_bytes(data[:-512] + bytes(4 * BLOCK) + footer)
    grown = image.stat().st_size
    compact(harness, image, NO_ZERO_SCAN)
    assert image.stat().st_size <= grown - 4 * BLOCK
    same_as_mirror(harness, image, mirror)
    check_structure(image)


def test_differencing_child_keeps_zeros_that_hide_its_parent(harness: Path, tmp_path: Path) -> None:
    parent, child = tmp_path / "parent.vhd", tmp_path / "child.vhd"
    mirror = tmp_path / "mirror.raw"
    engine_image(parent, SIZE, "dynamic", BLOCK)
    session = ContentSession(harness, parent, mirror, SIZE, seed=5)
    session.write(0, 2 * BLOCK)                  # parent data in blocks 0 and 1
    session.run()
    engine_image(child, 0, "differencing", parent=parent)
    session = ContentSession(harness, child, mirror, SIZE, seed=6)
    session.write(0, BLOCK, bytes(BLOCK))        # zeros over parent data: must stay
    session.write(BLOCK + 8 * KiB, 4 * KiB, bytes(4 * KiB))   # some zero sectors over data: stay
    session.write(4 * BLOCK, BLOCK, bytes(BLOCK))             # zeros over parent zeros: leave
    session.write(5 * BLOCK + 4 * KiB, 4 * KiB, bytes(4 * KiB))  # part of a block, parent zeros: leave
    session.write(6 * BLOCK, BLOCK)              # data: stays
    session.run()
    before = child.stat().st_size
    compact(harness, child, 0)
    assert allocated(child) == [0, 1, 6]
    assert child.stat().st_size <= before - 2 * BLOCK
    expected = mirror.read_bytes()
    assert dump(harness, child, child.with_suffix(".dump")) == expected
    if has_pyvhdi():
        # libvhdi reads zeros, not the parent, for the clear sectors of a
        # child block holding only some sectors (block 1): compared elsewhere.
        got = pyvhdi_bytes(child, parent)
        assert got[:BLOCK] == expected[:BLOCK]
        assert got[2 * BLOCK:] == expected[2 * BLOCK:]
    check_structure(child)


def test_differencing_child_without_its_parent_drops_only_empty_blocks(harness: Path,
                                                                       tmp_path: Path) -> None:
    parent, child = tmp_path / "parent.vhd", tmp_path / "child.vhd"
    engine_image(parent, SIZE, "dynamic", BLOCK)
    engine_image(child, 0, "differencing", parent=parent)
    mirror = tmp_path / "mirror.raw"
    session = ContentSession(harness, child, mirror, SIZE, seed=6)
    session.write(4 * BLOCK, BLOCK, bytes(BLOCK))
    session.run()
    with virtdisk.open(child, read_only=False, no_parents=True) as disk:
        vd.CompactVirtualDisk(disk.handle, vd.COMPACT_VIRTUAL_DISK_FLAG_NONE)
    assert allocated(child) == [4]


def test_fixed_vhd_is_refused_as_the_wrong_type(tmp_path: Path) -> None:
    image = tmp_path / "fixed.vhd"
    engine_image(image, 4 * MiB, "fixed")
    before = image.read_bytes()
    with virtdisk.open(image, read_only=False) as disk, \
            pytest.raises(virtdisk.UnsupportedOperationError) as caught:
        vd.CompactVirtualDisk(disk.handle, vd.COMPACT_VIRTUAL_DISK_FLAG_NONE)
    assert caught.value.winerror == 0xC03A001B
    assert image.read_bytes() == before


@pytest.mark.parametrize("flags", [0, NO_BLOCK_MOVES])
def test_a_stop_after_any_file_change_leaves_the_old_content(harness: Path, fault_harness: Path,
                                                             tmp_path: Path, flags: int) -> None:
    pristine, mirror = make(harness, tmp_path)

    def reads_the_old_content(image: Path, changes: int, done: bool) -> None:
        same_as_mirror(harness, image, mirror)
        check_structure(image)

    changes = stop_after_each_file_change(
        fault_harness, pristine, tmp_path, lambda session: session.command(f"c {flags}"),
        reads_the_old_content)
    # Entries, flushes, copies and the cut: every one was a stopping point.
    assert changes > 10


def test_compact_after_unflushed_writes_commits_them_first(harness: Path, tmp_path: Path) -> None:
    """Writes that allocate leave their BAT entries waiting for a flush;
    a compact in the same open writes them before it moves blocks, so the
    process killed right after it (no flush, no close) keeps them."""
    image, mirror = make(harness, tmp_path)
    compact(harness, image, 0)
    session = ContentSession(harness, image, mirror, SIZE, seed=11)
    session.write(1 * BLOCK, BLOCK)                  # a block the compact gave back
    session.write(3 * BLOCK + 4 * KiB, 8 * KiB)      # one it kept
    # Nothing to drop or move: only the commit can write block 1's entry.
    session.command(f"c {NO_ZERO_SCAN | NO_BLOCK_MOVES}")
    session.command("x")
    answers = session.run(check=False)
    assert answers == ["open 0", "ok", "ok", "ok"], answers
    assert allocated(image) == sorted(data_blocks() + [1])
    same_as_mirror(harness, image, mirror)
    check_structure(image)


def test_a_stop_in_a_compact_after_unflushed_writes_leaves_old_or_new(harness: Path, fault_harness: Path,
                                                                     tmp_path: Path) -> None:
    """The commit the compact starts with (data flushed, then the entries)
    and the compact's own steps, each a stopping point: every sector reads
    what it read before the write or what the write put there."""
    pristine, mirror = make(harness, tmp_path)
    compact(harness, pristine, 0)
    old = mirror.read_bytes()
    payload = bytes([0xC5]) * BLOCK
    new = bytearray(old)
    new[BLOCK:2 * BLOCK] = payload

    def write_then_compact(session: ContentSession) -> None:
        session.write(BLOCK, BLOCK, payload)
        session.command(f"c {NO_ZERO_SCAN | NO_BLOCK_MOVES}")

    def old_or_new(image: Path, changes: int, done: bool) -> None:
        got = dump(harness, image, tmp_path / f"got{changes}.raw")
        every_sector_old_or_new(got, old, bytes(new), changes)
        if done:
            assert got == bytes(new)
        check_structure(image)

    changes = stop_after_each_file_change(fault_harness, pristine, tmp_path, write_then_compact,
                                          old_or_new, finished=lambda answers: answers == ["ok", "ok"])
    # The write's footer, bitmap and data, the commit's flush and BAT write.
    assert changes >= 5, changes
