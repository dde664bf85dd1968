"""VHDX unmap through the engine's data path (vhdx_unmap.c), checked by
tools nobody here wrote.

[MS-VHDX] 2.5.1.1 allows a trimmed block to become UNMAPPED (reads zeros
or the old contents) or ZERO (reads MUST return zeros).  The engine reports
LBPRZ, so every unmapped sector must read zeros afterwards: whole blocks of
dynamic images become UNMAPPED with FileOffsetMB 0 (their space punched),
whole blocks of differencing children ZERO (UNMAPPED there could show the
parent again), fixed images and parts of blocks get zeros in place.

Every test mirrors the content into a raw file and compares the image with
it through `qemu-img compare` (512-byte dynamic and fixed images), the
engine's dump, libvhdi (with the parent set for children) and 7-Zip;
`qemu-img check` or vhdx_layout.layout checks the structures.  Fault
injection stops an unmap after each of its file changes.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from content_driver import ContentSession, all_answered_ok, stop_after_each_file_change  # noqa: E402
from test_vhdx_write import (ERROR_ACCESS_DENIED, ERROR_BAT_CORRUPT, MiB, bat_offset,  # noqa: E402
                             check_against_mirror, engine_image, have_pyvhdi, make_child, made_image,
                             pyvhdi_child_bytes, qemu_image, run, seven_zip_bytes)
from test_vhdx_write import creator, fault_harness, harness  # noqa: E402,F401
from vhdx_layout import layout  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img makes and checks the images")

__all__ = ["creator", "fault_harness", "harness"]


def allocated(path: Path) -> int:
    """Bytes the file system holds for `path`."""
    return path.stat().st_blocks * 512


def dump(harness: Path, image: Path, out: Path, read_only: bool = True) -> bytes:
    reader = ContentSession(harness, image, out.with_suffix(".unused"), 0, read_only=read_only)
    reader.dump(out)
    reader.run()
    return out.read_bytes()


def bat_states(image: Path, sector: int, block: int, count: int) -> list[int]:
    """The payload states of blocks 0..count-1 as the file holds them."""
    raw = image.read_bytes()
    bat = bat_offset(raw)
    ratio = (1 << 23) * sector // block
    return [struct.unpack_from("<Q", raw, bat + 8 * (b + b // ratio))[0] & 7 for b in range(count)]


UNMAPPED, ZERO, FULLY_PRESENT, PARTIALLY_PRESENT, NOT_PRESENT = 3, 2, 6, 7, 0


def check_child(harness: Path, parent: Path, child: Path, mirror: Path, parent_bytes: bytes,
                sector: int, block: int) -> None:
    """The child reads the mirror in the engine and 7-Zip, and in libvhdi
    (parent set) outside its ZERO blocks; structures sound, parent intact.

    libvhdi reads a child's ZERO blocks from the parent (or through stale
    bitmap bits), where [MS-VHDX] 2.5.1.1 says reads MUST return zeros, so
    those blocks are compared with 7-Zip and the engine alone."""
    assert parent.read_bytes() == parent_bytes
    layout(child)
    expected = mirror.read_bytes()
    assert dump(harness, child, child.with_suffix(".dump")) == expected
    if shutil.which("7zz") and (len(expected) // 512) % 2 == 0:
        assert seven_zip_bytes(child) == expected
    if have_pyvhdi():
        got = pyvhdi_child_bytes(child, parent)
        states = bat_states(child, sector, block, -(-len(expected) // block))
        for index, state in enumerate(states):
            if state != ZERO:
                piece = slice(index * block, (index + 1) * block)
                assert got[piece] == expected[piece], index


@pytest.mark.parametrize("maker,kind,block,sector", [
    ("qemu", "dynamic", 1 * MiB, 512),
    ("qemu", "dynamic", 4 * MiB, 512),
    ("qemu", "fixed", 1 * MiB, 512),
    ("engine", "dynamic", 2 * MiB, 512),
    ("engine", "fixed", 1 * MiB, 512),
    ("engine", "dynamic", 1 * MiB, 4096),
    ("engine", "fixed", 1 * MiB, 4096),
])
def test_unmapped_sectors_read_zeros_everywhere(harness: Path, creator: Path, tmp_path: Path,
                                                maker: str, kind: str, block: int, sector: int) -> None:
    """Whole blocks, parts of blocks, ranges across boundaries, blocks
    never written and the last sector: every reader sees zeros there and
    the old data everywhere else; whole blocks of a dynamic image leave
    the file (UNMAPPED, their space returned), a fixed image keeps every
    block FULLY_PRESENT."""
    size = 10 * block + 3 * sector
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    made_image(maker, creator, image, size, block, kind, sector)
    session = ContentSession(harness, image, mirror, size, seed=block + sector)
    session.write(0, 8 * block)
    session.write(size - 2 * sector, 2 * sector)
    session.flush()
    session.run()
    before = allocated(image)
    session = ContentSession(harness, image, mirror, size)
    session.unmap(block, 2 * block)                       # blocks 1 and 2, whole
    session.unmap(4 * block - 3 * sector, block + 5 * sector)   # end of 3, all of 4, start of 5
    session.unmap(6 * block + 7 * sector, 9 * sector)     # inside block 6
    session.unmap(8 * block, 2 * block)                   # never written
    session.unmap(size - sector, sector)                  # the last sector
    session.unmap(block, block)                           # again: nothing changes
    session.flush()
    session.run()
    check_against_mirror(harness, image, mirror, sector)
    states = bat_states(image, sector, block, 8)
    if kind == "dynamic":
        assert [states[i] for i in (1, 2, 4)] == [UNMAPPED] * 3, states
        assert [states[i] for i in (0, 3, 5, 6, 7)] == [FULLY_PRESENT] * 5, states
        # Three whole blocks left, and the zeroed parts were punched too.
        assert allocated(image) <= before - 3 * block, (before, allocated(image))
    else:
        assert states == [FULLY_PRESENT] * 8, states
    layout(image)
    # The unmapped blocks take writes again (a new block for UNMAPPED ones).
    session = ContentSession(harness, image, mirror, size, seed=5)
    session.write(block + 4 * sector, 2 * sector)
    session.write(4 * block, block)
    session.run()
    check_against_mirror(harness, image, mirror, sector)


@pytest.mark.parametrize("maker,block,sector", [
    ("qemu", 1 * MiB, 512),
    ("engine", 2 * MiB, 512),
    ("engine", 1 * MiB, 4096),
])
def test_differencing_unmap_hides_the_parent(harness: Path, creator: Path, tmp_path: Path,
                                            maker: str, block: int, sector: int) -> None:
    """In a child every unmapped sector reads zeros, never the parent's
    data: whole blocks become ZERO whatever the child held (FULLY_PRESENT,
    PARTIALLY_PRESENT, NOT_PRESENT), parts of blocks the child does not hold
    whole get zeros written with their bitmap bits set.  The engine, libvhdi
    and 7-Zip with the parent read the mirror; the parent is untouched."""
    size = 10 * block
    parent, child, mirror = make_child(harness, creator, tmp_path, maker, size, block, sector)
    parent_bytes = parent.read_bytes()
    session = ContentSession(harness, child, mirror, size, seed=block)
    session.write(0, block)                               # block 0 fully present
    session.write(block + 4 * sector, 4 * sector)         # block 1 partially present
    session.write(5 * block + 8 * sector, 8 * sector)     # block 5 partially present
    session.write(6 * block, block)                       # block 6 fully present
    session.run()
    session = ContentSession(harness, child, mirror, size)
    session.unmap(0, 3 * block)                           # fully, partially, not present
    session.unmap(3 * block + 2 * sector, 3 * sector)     # part of a block the child lacks
    session.unmap(5 * block + 6 * sector, 4 * sector)     # part of a partial block, across its bits
    session.unmap(6 * block + block // 2, block // 2 + 2 * sector)   # end of 6, start of 7
    session.unmap(9 * block, block)                       # a whole block the child lacks
    session.run()
    states = bat_states(child, sector, block, 10)
    assert [states[i] for i in (0, 1, 2, 9)] == [ZERO] * 4, states
    assert states[3] == PARTIALLY_PRESENT and states[5] == PARTIALLY_PRESENT, states
    assert states[6] == FULLY_PRESENT and states[7] == PARTIALLY_PRESENT, states
    assert states[8] == NOT_PRESENT and states[4] == NOT_PRESENT, states
    check_child(harness, parent, child, mirror, parent_bytes, sector, block)
    # ZERO blocks take partial writes: a whole new block, zeros around.
    session = ContentSession(harness, child, mirror, size, seed=4)
    session.write(block + 16 * sector, 2 * sector)
    session.run()
    assert bat_states(child, sector, block, 2)[1] == FULLY_PRESENT
    check_child(harness, parent, child, mirror, parent_bytes, sector, block)


def written_image(harness: Path, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """An 8 MiB qemu-made image with its first 2 MiB written, its mirror,
    and the file's bytes, which a refused unmap must leave as they are."""
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB, MiB)
    writer = ContentSession(harness, image, mirror, 8 * MiB)
    writer.write(0, 2 * MiB)
    writer.run()
    return image, mirror, image.read_bytes()


def test_read_only_handle_refuses_unmaps(harness: Path, tmp_path: Path) -> None:
    image, mirror, original = written_image(harness, tmp_path)
    session = ContentSession(harness, image, mirror, 8 * MiB, read_only=True)
    session.unmap(0, MiB, reads_as_zero=False)
    answers = session.run(check=False)
    assert answers == ["open 0", f"error {ERROR_ACCESS_DENIED}"]
    assert image.read_bytes() == original


@pytest.mark.parametrize("offset,length", [(512, MiB), (0, 8 * MiB + 512), (100, 512), (0, 100)])
def test_misaligned_or_out_of_range_unmaps_are_refused(harness: Path, tmp_path: Path,
                                                      offset: int, length: int) -> None:
    image, mirror, original = written_image(harness, tmp_path)
    session = ContentSession(harness, image, mirror, 8 * MiB)
    session.unmap(offset, length, reads_as_zero=False)
    answers = session.run(check=False)
    expected = "ok" if (offset, length) == (512, MiB) else "error 87"
    assert answers == ["open 0", expected]
    if expected != "ok":
        assert image.read_bytes() == original


def test_bat_entry_pointing_into_structures_is_refused(harness: Path, tmp_path: Path) -> None:
    """An unmap of a block whose entry points into the headers, the log,
    the BAT or the metadata zeroes nothing and punches nothing."""
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB, MiB)
    bat = 2 * MiB    # where qemu puts the BAT
    for target_mb in (0, 1, 2, 3):
        for length in (MiB, 4096):                       # a whole block, a part
            data = bytearray(image.read_bytes())
            data[bat:bat + 8] = ((target_mb << 20) | FULLY_PRESENT).to_bytes(8, "little")
            image.write_bytes(bytes(data))
            session = ContentSession(harness, image, mirror, 8 * MiB)
            session.unmap(0, length, reads_as_zero=False)
            answers = session.run(check=False)
            assert answers[1] == f"error {ERROR_BAT_CORRUPT}", (target_mb, length, answers)
            assert image.read_bytes() == bytes(data), (target_mb, length)


def every_sector_old_or_new(got: bytes, old: bytes, new: bytes, sector: int, label: object) -> None:
    for s in range(0, len(old), sector):
        assert got[s:s + sector] in (old[s:s + sector], new[s:s + sector]), (label, s)


@pytest.mark.parametrize("kind,sector", [("dynamic", 512), ("dynamic", 4096), ("fixed", 512),
                                         ("differencing", 512)])
def test_interrupted_unmap_leaves_every_sector_old_or_new(fault_harness: Path, harness: Path,
                                                         creator: Path, tmp_path: Path,
                                                         kind: str, sector: int) -> None:
    """The unmap is stopped after each of its file changes (DataWriteGuid,
    zeroing in place, the log entry, the BAT, the holes): after reopening,
    read-only and writable, every sector reads its old content or zeros, the
    structures check clean and the image still takes writes."""
    block = MiB
    size = 8 * block
    if kind == "differencing":
        parent, pristine, _ = make_child(harness, creator, tmp_path, "engine", size, block, sector)
    else:
        pristine = tmp_path / "pristine.vhdx"
        engine_image(creator, pristine, size, block, kind, sector)
    setup = ContentSession(harness, pristine, tmp_path / "setup.raw", size, seed=3)
    setup.write(0, 3 * block)                             # blocks 0-2 present
    setup.write(4 * block + 8 * sector, 8 * sector)       # block 4 partly written
    setup.run()
    old = dump(harness, pristine, tmp_path / "old.raw")
    offset, length = block - 4 * sector, 4 * block + 8 * sector   # end of 0, 1-4, start of 5
    new = bytearray(old)
    new[offset:offset + length] = bytes(length)
    def every_sector_old_or_new_and_writable(image: Path, stops: int, done: bool) -> None:
        for read_only in (True, False):
            got = dump(harness, image, tmp_path / f"d{stops}{read_only}.raw", read_only)
            every_sector_old_or_new(got, old, bytes(new), sector, (kind, stops))
            if done:
                assert got == bytes(new)
        if kind != "differencing" and sector == 512:
            run("qemu-img", "check", "-q", "-f", "vhdx", image)
        again = ContentSession(harness, image, tmp_path / f"a{stops}.raw", size)
        again.write(2 * block, 4096, b"\x99" * 4096)
        again.run()
        assert dump(harness, image, tmp_path / f"e{stops}.raw")[2 * block:2 * block + 4096] == b"\x99" * 4096
        layout(image)      # the write replayed any log the stop left

    def unmap_and_flush(session: ContentSession) -> None:
        session.command(f"u {offset} {length}")
        session.flush()    # zeros a child writes through its bitmap wait for the flush

    stops = stop_after_each_file_change(fault_harness, pristine, tmp_path, unmap_and_flush,
                                        every_sector_old_or_new_and_writable,
                                        finished=all_answered_ok(2))
    # Fixed: the guid and the zeroing; the others also the log entry.
    assert stops >= (2 if kind == "fixed" else 4), stops
