"""Resize growth whose block table outgrows its space: the table grows where
it is, and the blocks in its way move to the end of the file.

An 8 MiB VHDX with 1 MiB blocks has a 1 MiB BAT region followed by its data
blocks; grown to 2 TiB it needs a 17 MiB region.  An 8 MiB dynamic VHD has a
one-sector BAT followed by its blocks; grown to 2000 GiB it needs 4 MiB.
Random bytes are written at several offsets first (through the engine, and
into a raw mirror), and every check after the grow comes from readers
nobody here wrote: qemu-img check, vhdiinfo's media size, qemu's view of the
disk's first 64 MiB (qemu-img dd) against the mirror, qemu-io reading zeros
in the grown part and a write into it back.  (qemu-img compare reads every
byte of a VHDX, since qemu's VHDX driver reports no allocation: terabytes
of zeros.)
The table's offset is read from the file: it stays where it was.

Fault injection (tests/c/resize_main.c, -DVD_FAULT_INJECTION) stops the
grow after every write, flush and size change in turn: each stopped file
opens with the old size and content or the new ones, checks clean, and a
VHD's footer copy at offset 0 stays a valid footer of one of the two sizes.
"""

from __future__ import annotations

import os
import random
import struct
import uuid
from pathlib import Path
from typing import Any, Literal

import pytest

import _virtdisk as vd
import virtdisk
from test_create_vhd import run, tool
from test_resize import (MiB, GiB, check_clean, engine_size, harness, libvhdi_size, qemu_format, qemu_size,
                         resize, stop_after_every_step)
from vhd_builder import W2KU, Locator, build_sparse
from vhdx_layout import layout
from virtdisk.errors import ERROR_OPERATION_ABORTED, ERROR_VHD_INVALID_TYPE, VirtualDiskError

__all__ = ["harness"]   # the fault-injection harness fixture, shared with test_resize

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the portable engine's files")

BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
OLD_SIZE = 8 * MiB


def write_random(path: Path, mirror: Path, size: int, seed: int) -> None:
    """Random bytes at offsets spread over every block of the disk, through
    the engine, and the same bytes into a raw mirror of `size` bytes."""
    rng = random.Random(seed)
    pieces = [(0, 4096), (MiB + 512 * 7, 300 * 1024), (3 * MiB - 4096, 8192),
              (5 * MiB + 512, 512 * 9), (6 * MiB, MiB), (size - MiB, MiB)]
    pieces += [(block * MiB + rng.randrange(0, MiB - 4096) // 512 * 512, 4096) for block in range(8)]
    with open(mirror, "wb") as raw:
        raw.truncate(size)
    with virtdisk.open(path, read_only=False) as disk, open(mirror, "r+b") as raw:
        for offset, length in pieces:
            data = rng.randbytes(length)
            disk.write(offset, data)
            raw.seek(offset)
            raw.write(data)


def make(tmp_path: Path, name: str, kind: Literal["dynamic", "fixed"] = "dynamic") -> tuple[Path, Path]:
    path = tmp_path / name
    dynamic_vhdx = name.endswith(".vhdx") and kind == "dynamic"
    with virtdisk.create(path, OLD_SIZE, type=kind, block_size=MiB if dynamic_vhdx else None):
        pass
    mirror = path.with_suffix(".raw")
    write_random(path, mirror, OLD_SIZE, seed=len(name))
    return path, mirror


def bat_region(path: Path) -> tuple[int, int]:
    with open(path, "rb") as image:
        image.seek(192 * 1024)
        table = image.read(64 * 1024)
    for i in range(struct.unpack_from("<I", table, 8)[0]):
        entry = table[16 + 32 * i:48 + 32 * i]
        if entry[:16] == BAT_REGION:
            offset, length = struct.unpack_from("<QI", entry, 16)
            return offset, length
    raise AssertionError("no BAT region")


def vhd_table(path: Path) -> tuple[int, int]:
    """(Table Offset, Max Table Entries) of a dynamic VHD's header."""
    with open(path, "rb") as image:
        image.seek(512)
        header = image.read(1024)
    assert header[:8] == b"cxsparse"
    return struct.unpack_from(">Q", header, 16)[0], struct.unpack_from(">I", header, 28)[0]


def vhd_footer_size(raw: bytes) -> int | None:
    """The Current Size of a valid VHD footer, None for anything else."""
    if raw[:8] != b"conectix":
        return None
    stored = struct.unpack_from(">I", raw, 64)[0]
    total = sum(raw[:64]) + sum(raw[68:512])
    if (~total & 0xFFFFFFFF) != stored:
        return None
    return int(struct.unpack_from(">Q", raw, 48)[0])


def same_content(image: Path, mirror: Path) -> None:
    """The image reads the mirror (the old content) grown with zeros to its
    size, as qemu sees it (its first 64 MiB byte for byte through qemu-img
    dd, then zeros at the old end, in the middle and at the new end of the
    size qemu reads) and as the engine does (the first 64 MiB).  A VHD's
    two footers change one after the other, so qemu (which takes the size
    from the copy at 0) and the engine (the end one) may see different
    sizes, each the old or the new."""
    size = qemu_size(image)
    expected = mirror.read_bytes()
    expected += bytes(min(64 * MiB, size) - len(expected))
    prefix = image.with_name("prefix.raw")
    prefix.unlink(missing_ok=True)
    run(tool("qemu-img"), "dd", "-f", qemu_format(image), "-O", "raw", "bs=1M", "count=64",
        f"if={image}", f"of={prefix}")
    assert prefix.read_bytes() == expected
    prefix.unlink()
    args: list[str] = []
    for offset in ([OLD_SIZE, size // 2, size - MiB] if size > OLD_SIZE else []):
        args += ["-c", f"read -P 0 {offset} 1M"]
    if args:
        out = run(tool("qemu-io"), "-f", qemu_format(image), *args, image)
        assert "Pattern verification failed" not in out, out
    length = min(64 * MiB, engine_size(image))
    with virtdisk.open(image) as disk:
        assert disk.read(0, length) == (expected + bytes(length))[:length]


# --------------------------------------------------------------------------- the grow

def test_vhdx_bat_region_grows_in_place_over_moved_blocks(tmp_path: Path) -> None:
    path, mirror = make(tmp_path, "small.vhdx")
    offset, length = bat_region(path)
    assert length == MiB
    new_size = 2 << 40
    resize(path, new_size)
    # 2 Mi payload entries and 512 sector bitmap entries: 17 MiB of region.
    assert bat_region(path) == (offset, 17 * MiB)
    assert qemu_size(path) == new_size == libvhdi_size(path)
    check_clean(path)
    same_content(path, mirror)
    assert layout(path)["fully present"] == 8
    # The grown part takes writes, as qemu-io reads them back.
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(new_size - MiB, b"\x77" * MiB)
        disk.write(20 * GiB, b"\x55" * 4096)
    run(tool("qemu-io"), "-f", "vhdx", "-c", f"read -P 0x77 {new_size - MiB} 1M",
        "-c", f"read -P 0x55 {20 * GiB} 4k", "-c", "read -P 0 0x1000000000 1M", path)
    check_clean(path)
    assert layout(path)["fully present"] == 10


def test_fixed_vhdx_bat_region_grows_over_moved_blocks(tmp_path: Path) -> None:
    """A fixed image's blocks (2 MiB) follow its BAT region too: the first
    two move, and the new blocks are a file extension named by
    FULLY_PRESENT entries (512 Ki payload and 256 bitmap entries: 5 MiB)."""
    path, mirror = make(tmp_path, "fixed.vhdx", "fixed")
    offset, _ = bat_region(path)
    resize(path, 1 << 40)
    assert bat_region(path) == (offset, 5 * MiB)
    assert qemu_size(path) == 1 << 40 == libvhdi_size(path)
    check_clean(path)
    same_content(path, mirror)
    # Every payload entry FULLY_PRESENT, at distinct places past the region
    # (the file is 1 TiB: vhdx_layout would read all of it).
    with open(path, "rb") as image:
        image.seek(offset)
        table = image.read(5 * MiB)
    ratio = (1 << 23) * 512 // (2 * MiB)
    count = (1 << 40) // (2 * MiB) * (ratio + 1) // ratio
    entries = [struct.unpack_from("<Q", table, 8 * i)[0] for i in range(count)]
    payload = [entry for i, entry in enumerate(entries) if i % (ratio + 1) != ratio]
    assert len(payload) == (1 << 40) // (2 * MiB) and all(entry & 7 == 6 for entry in payload)
    places = sorted(entry >> 20 for entry in payload)
    assert places[0] >= (offset + 5 * MiB) // MiB and all(b - a >= 2 for a, b in zip(places, places[1:]))
    assert os.stat(path).st_blocks * 512 < 64 * MiB


def test_vhdx_grow_in_place_twice_keeps_one_region(tmp_path: Path) -> None:
    """A second grow finds the blocks the first one moved in its way in turn."""
    path, mirror = make(tmp_path, "twice.vhdx")
    resize(path, 200 * GiB)
    first = bat_region(path)
    resize(path, 2 << 40)
    offset, length = bat_region(path)
    assert offset == first[0] and length > first[1]
    assert qemu_size(path) == 2 << 40
    check_clean(path)
    same_content(path, mirror)
    layout(path)


def test_vhdx_region_followed_by_metadata_moves_past_the_end(tmp_path: Path) -> None:
    """qemu puts the metadata region right after a 1 MiB BAT region: the
    region cannot grow there, so a new one is written past the end of the
    file and the region tables point at it; the blocks stay."""
    path = tmp_path / "qemu.vhdx"
    run(tool("qemu-img"), "create", "-q", "-f", "vhdx", "-o", "block_size=1M", path, str(OLD_SIZE))
    mirror = path.with_suffix(".raw")
    write_random(path, mirror, OLD_SIZE, seed=5)
    before = os.path.getsize(path)
    offset, _ = bat_region(path)
    resize(path, 1 << 40)
    moved_offset, length = bat_region(path)
    assert moved_offset >= before > offset and length == 9 * MiB
    assert qemu_size(path) == 1 << 40 == libvhdi_size(path)
    check_clean(path)
    same_content(path, mirror)
    layout(path)


def test_vhd_table_grows_in_place_over_moved_blocks(tmp_path: Path) -> None:
    path, mirror = make(tmp_path, "small.vhd")
    offset, entries = vhd_table(path)
    assert entries == 4
    new_size = 2000 * GiB
    resize(path, new_size)
    assert vhd_table(path) == (offset, new_size // (2 * MiB))
    assert qemu_size(path) == new_size == libvhdi_size(path)
    with open(path, "rb") as image:
        head = image.read(512)
        image.seek(-512, os.SEEK_END)
        tail = image.read(512)
    assert head == tail and vhd_footer_size(tail) == new_size
    same_content(path, mirror)
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(new_size - MiB, b"\x77" * MiB)
    run(tool("qemu-io"), "-f", "vpc", "-c", f"read -P 0x77 {new_size - MiB} 1M", path)


def test_vhd_table_followed_by_a_locator_moves_past_the_data(tmp_path: Path) -> None:
    """Locator data right after the table (tests/vhd_builder.py's layout):
    the table cannot grow there, so a new one goes where blocks are
    appended and the header points at it; blocks and locator stay."""
    rng = random.Random(7)
    sectors = {sector: rng.randbytes(512) for sector in (0, 1, 4095, 4096, 9000, 16383)}
    path = tmp_path / "locator.vhd"
    path.write_bytes(build_sparse(OLD_SIZE, 2 * MiB, sectors, locators=[Locator(W2KU, b"x" * 600)]))
    mirror = path.with_suffix(".raw")
    content = bytearray(OLD_SIZE)
    for sector, data in sectors.items():
        content[sector * 512:sector * 512 + 512] = data
    mirror.write_bytes(bytes(content))
    offset, _ = vhd_table(path)
    before = os.path.getsize(path)
    resize(path, 1 << 40)
    moved, entries = vhd_table(path)
    assert moved >= before - 512 > offset and entries == (1 << 40) // (2 * MiB)
    assert qemu_size(path) == 1 << 40 == libvhdi_size(path)
    same_content(path, mirror)


def test_empty_vhd_table_grows_in_place_and_the_footer_moves(tmp_path: Path) -> None:
    """No block in the way: the table grows into the space after it and the
    end footer moves past it."""
    path = tmp_path / "empty.vhd"
    with virtdisk.create(path, OLD_SIZE, type="dynamic"):
        pass
    offset, _ = vhd_table(path)
    resize(path, 1 << 40)
    assert vhd_table(path) == (offset, (1 << 40) // (2 * MiB))
    assert os.path.getsize(path) < offset + 4 * (1 << 40) // (2 * MiB) + 8192
    assert qemu_size(path) == 1 << 40 == engine_size(path)
    run(tool("qemu-io"), "-f", "vpc", "-c", "read -P 0 0 1M", "-c", f"read -P 0 {(1 << 40) - MiB} 1M", path)


# --------------------------------------------------------------------------- differencing disks

@pytest.mark.parametrize("suffix", [".vhd", ".vhdx"])
def test_differencing_disks_are_refused_and_left_alone(tmp_path: Path, suffix: str) -> None:
    """ExpandVirtualDisk "is valid only for fixed and expandable virtual
    disks", and Hyper-V resizes no differencing VHD: VHD_INVALID_TYPE,
    nothing written to the child or its parent.  (A differencing VHDX is
    resized alone: tests/test_resize_differencing.py.)"""
    parent, _ = make(tmp_path, "base" + suffix)
    child = tmp_path / ("child" + suffix)
    with virtdisk.create(child, parent=parent):
        pass
    before = child.read_bytes(), parent.read_bytes()
    codes = []
    with virtdisk.open(child, read_only=False) as disk:
        if suffix == ".vhd":
            with pytest.raises(VirtualDiskError) as resized:
                vd.ResizeVirtualDisk(disk.handle, 16 * MiB)
            codes.append(int(resized.value.winerror))
        with pytest.raises(VirtualDiskError) as expanded:
            vd.ExpandVirtualDisk(disk.handle, 16 * MiB)
        codes.append(int(expanded.value.winerror))
    assert set(codes) == {ERROR_VHD_INVALID_TYPE}
    assert (child.read_bytes(), parent.read_bytes()) == before
    assert engine_size(child) == OLD_SIZE


# --------------------------------------------------------------------------- cancellation

def vhd_entries(path: Path) -> list[int]:
    """The BAT entries (sectors) of a dynamic VHD, Max Table Entries of them."""
    offset, entries = vhd_table(path)
    with open(path, "rb") as image:
        image.seek(offset)
        return list(struct.unpack(f">{entries}I", image.read(4 * entries)))


def cancel_at_the_hold(disk: virtdisk.VirtualDisk, new_size: int, held: int) -> None:
    """Starts a resize of `disk` to `new_size`, waits until it stands at
    the test hold (set to `held` bytes) during its block moves, cancels it
    there and checks that it ended with 995 after exactly `held` bytes."""
    overlapped = vd.Overlapped()
    vd.ResizeVirtualDisk(disk.handle, new_size, overlapped=overlapped)
    while vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).current_value < held:
        if overlapped.wait(0):
            break
    assert not overlapped.wait(0), "the resize did not stop at the hold during its block moves"
    vd.CancelIoEx(disk.handle, overlapped)
    assert overlapped.wait(10)
    progress = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
    assert progress.operation_status == ERROR_OPERATION_ABORTED
    assert progress.current_value == held


def test_vhd_cancel_during_the_block_moves_ends_within_one_move(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """512 KiB blocks grown to 2000 GiB need a 16 MiB table: every block
    of the 8 MiB disk is in its way.  The test hold, given the bytes of two
    moves, stops the resize before the third block's copy; a cancel there
    ends it with 995 at once, after two copies (the progress), with no
    entry changed and the old disk's footer at the file's end; the handle
    reads the old disk, and then grows it to the end."""
    path = tmp_path / "small-blocks.vhd"
    with virtdisk.create(path, OLD_SIZE, type="dynamic", block_size=512 * 1024):
        pass
    mirror = path.with_suffix(".raw")
    write_random(path, mirror, OLD_SIZE, seed=7)
    before = vhd_entries(path)
    allocated = [sector for sector in before if sector != 0xFFFFFFFF]
    assert len(allocated) > 3
    span = 512 + 512 * 1024                       # sector bitmap + data
    hold = tmp_path / "hold"
    hold.write_text(str(2 * span))
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))
    new_size = 2000 * GiB
    with virtdisk.open(path, read_only=False) as disk:
        cancel_at_the_hold(disk, new_size, 2 * span)
        assert disk.read(0, OLD_SIZE) == mirror.read_bytes()
        # The copies go first and the entries only once every block is
        # copied: after two copies no entry has changed.
        assert vhd_entries(path) == before
        assert vd_size_of(disk) == OLD_SIZE
        with open(path, "rb") as image:
            image.seek(-512, os.SEEK_END)
            assert vhd_footer_size(image.read(512)) == OLD_SIZE
        hold.unlink()
        vd.ResizeVirtualDisk(disk.handle, new_size)
    assert engine_size(path) == new_size == qemu_size(path) == libvhdi_size(path)
    same_content(path, mirror)


def test_vhdx_cancel_during_the_block_moves_ends_within_one_move(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The 8 blocks of 1 MiB after an engine-made VHDX's 1 MiB BAT region
    are in the way of its growth to 2 TiB (17 MiB of region).  The test
    hold, given two blocks' bytes, stops the resize before the third
    block's copy; a cancel there ends it with 995, after two copies (the
    progress), which have moved (their entries committed); the region has
    its old length, the content is the old disk, the image checks clean,
    and a second resize grows it to the end."""
    path, mirror = make(tmp_path, "cancel.vhdx")
    offset, length = bat_region(path)
    before = layout(path)
    hold = tmp_path / "hold"
    hold.write_text(str(2 * MiB))
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))
    new_size = 2 << 40
    with virtdisk.open(path, read_only=False) as disk:
        cancel_at_the_hold(disk, new_size, 2 * MiB)
        assert disk.read(0, OLD_SIZE) == mirror.read_bytes()
        assert vd_size_of(disk) == OLD_SIZE
        assert bat_region(path) == (offset, length)
    check_clean(path)
    assert layout(path)["fully present"] == before["fully present"]
    hold.unlink()
    resize(path, new_size)
    assert bat_region(path) == (offset, 17 * MiB)
    assert qemu_size(path) == new_size == libvhdi_size(path)
    check_clean(path)
    same_content(path, mirror)


def vd_size_of(disk: virtdisk.VirtualDisk) -> int:
    return int(vd.GetVirtualDiskInformation(disk.handle, vd.GetVirtualDiskInfoVersion.SIZE).virtual_size)


# --------------------------------------------------------------------------- fault injection

FAULT_CASES = [("x.vhdx", 1 << 40), ("x.vhd", 1 << 40)]


@pytest.mark.parametrize("name, new_size", FAULT_CASES)
def test_stop_at_every_write_of_the_growth(tmp_path: Path, harness: Path, name: str, new_size: int) -> None:
    image, mirror = make(tmp_path, name)
    seen = set()

    def check(copy: Path, answer: dict[str, Any]) -> None:
        if copy.suffix == ".vhdx":
            run(tool("qemu-img"), "check", "-q", "-r", "all", "-f", "vhdx", copy)
        size = engine_size(copy)
        assert size in (OLD_SIZE, new_size), size
        if copy.suffix == ".vhd":
            with open(copy, "rb") as raw:
                assert vhd_footer_size(raw.read(512)) in (OLD_SIZE, new_size)
        else:
            assert qemu_size(copy) == size
            layout(copy, log_checked=True)
        check_clean(copy)
        same_content(copy, mirror)
        seen.add(size)

    stops = stop_after_every_step(harness, image, [str(new_size), "0"], check, limit=200)
    assert seen == {OLD_SIZE, new_size}
    assert stops > 12   # the moves are among the steps stopped after
