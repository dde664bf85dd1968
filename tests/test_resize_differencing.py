"""ResizeVirtualDisk of a differencing VHDX: the child alone changes size
(as Hyper-V's ResizeVirtualHardDisk does), its parent stays byte for byte
what it was, the grown part reads zeros (past the parent's end, and where a
shrink cut the child short of a parent that has data there), the shrink
rules take the partition table the chain reads, and a stop at every file
change of a grow leaves the old size or the new one.  Read back through the
engine and through libvhdi (pyvhdi, with the parent set; libvhdi cannot
read a parent past its end, so it is asked only for what the child holds
and what lies inside the parent)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
import virtdisk
from test_create_vhd import run, tool
from test_resize import (
    call,
    code_of,
    engine_size,
    harness,  # noqa: F401 - the module's fixture
    libvhdi_size,
    resize,
    shrinks_refused_without_a_partition_table,
    stop_after_every_step,
    write_mbr,
)
from test_vhdx_write import have_pyvhdi
from virtdisk.cli import main
from virtdisk.errors import (
    ERROR_VHD_INVALID_TYPE,
    ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA,
    VirtualDiskError,
)

MiB = 1 << 20
GiB = 1 << 30
Resize = vd.ResizeVirtualDiskFlag
PARENT_SIZE = 64 * MiB

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the portable engine's files")


def make_parent(path: Path, maker: str) -> bytearray:
    """A dynamic VHDX parent, made by qemu-img or the engine, with data
    written by qemu-io at its start, its middle and its last MiB; returns
    its content."""
    fmt = {".vhd": "vpc", ".vhdx": "vhdx"}[path.suffix]
    if maker == "qemu":
        run(tool("qemu-img"), "create", "-q", "-f", fmt, "-o", "subformat=dynamic", path, str(PARENT_SIZE))
    else:
        with virtdisk.create(path, PARENT_SIZE, type="dynamic"):
            pass
    content = bytearray(PARENT_SIZE)
    args: list[str] = []
    for offset, length, byte in ((0, MiB, 0x5A), (PARENT_SIZE // 2, 64 * 1024, 0xA5),
                                 (PARENT_SIZE - MiB, MiB, 0x3C)):
        args += ["-c", f"write -P {byte:#x} {offset} {length}"]
        content[offset:offset + length] = bytes([byte]) * length
    run(tool("qemu-io"), "-f", fmt, *args, path)
    return content


def make_child(directory: Path, maker: str = "engine", suffix: str = ".vhdx") -> tuple[Path, Path, bytearray]:
    """A parent (see make_parent) and an empty engine-made child beside it."""
    parent, child = directory / f"base{suffix}", directory / f"child{suffix}"
    content = make_parent(parent, maker)
    with virtdisk.create(child, parent=parent):
        pass
    return parent, child, content


def engine_bytes(path: Path) -> bytes:
    with virtdisk.open(path) as disk:
        return disk.read(0, engine_size(path))


def pyvhdi_ranges(child: Path, parent: Path, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The child's bytes in `ranges` as libvhdi reads them with the parent set."""
    code = ("import pyvhdi,sys; c=pyvhdi.file(); p=pyvhdi.file(); c.open(sys.argv[1]); "
            "p.open(sys.argv[2]); c.set_parent(p); "
            "[sys.stdout.buffer.write(c.read_buffer_at_offset(int(n), int(o))) "
            "for o, n in (r.split(':') for r in sys.argv[3:])]")
    out = subprocess.run(["/usr/bin/python3", "-c", code, str(child), str(parent),
                          *(f"{offset}:{length}" for offset, length in ranges)],
                         check=True, capture_output=True).stdout
    pieces, at = [], 0
    for _, length in ranges:
        pieces.append(out[at:at + length])
        at += length
    return pieces


# --------------------------------------------------------------------------- grow

@pytest.mark.parametrize("maker", ["qemu", "engine"])
def test_grown_child_reads_its_writes_and_zeros_past_the_parent(tmp_path: Path, maker: str) -> None:
    parent, child, expected = make_child(tmp_path, maker)
    parent_before = parent.read_bytes()
    new_size = 96 * MiB + 3 * 512
    expected[0:4096] = b"\x11" * 4096
    with virtdisk.open(child, read_only=False) as disk:
        disk.write(0, b"\x11" * 4096)
        disk.resize(new_size)
        # Past the old end: a partial write into a new block, and the last
        # sectors, which end inside a block.
        disk.write(PARENT_SIZE + 8192, b"\x22" * 4096)
        disk.write(new_size - 1536, b"\x33" * 1536)
    expected.extend(bytes(new_size - PARENT_SIZE))
    expected[PARENT_SIZE + 8192:PARENT_SIZE + 12288] = b"\x22" * 4096
    expected[new_size - 1536:] = b"\x33" * 1536

    assert parent.read_bytes() == parent_before
    assert engine_size(child) == new_size
    assert engine_bytes(child) == bytes(expected)
    assert libvhdi_size(child) == new_size
    if have_pyvhdi():
        ranges = [(0, PARENT_SIZE), (PARENT_SIZE, 2 * MiB), (new_size - 1536, 1536)]
        for (offset, length), got in zip(ranges, pyvhdi_ranges(child, parent, ranges)):
            assert got == bytes(expected[offset:offset + length]), offset


def test_grow_after_shrink_reads_zeros_not_the_parent(tmp_path: Path) -> None:
    """A child shrunk below its parent's data and grown back reads zeros
    there, as any grown disk does, not the parent's data again."""
    parent, child, expected = make_child(tmp_path)
    with virtdisk.open(child, read_only=False) as disk:
        disk.resize(16 * MiB + 512, allow_unsafe=True)
        disk.resize(PARENT_SIZE)
    expected[16 * MiB + 512:] = bytes(PARENT_SIZE - 16 * MiB - 512)
    assert engine_bytes(child) == bytes(expected)


# A size inside the 2 MiB block [32 MiB, 34 MiB), whose first 64 KiB the
# parent holds: the shrink keeps 8 KiB of them, the rest lies past the end.
INSIDE_A_BLOCK = PARENT_SIZE // 2 + 8192


def shrink_inside_a_block(child: Path, expected: bytearray, child_writes: bool) -> None:
    """The child shrunk to INSIDE_A_BLOCK; with `child_writes`, it holds
    sectors of that block before the new end and past it first (a
    PARTIALLY_PRESENT block), else none (NOT_PRESENT).  `expected` becomes
    what the disk reads grown back to PARENT_SIZE."""
    with virtdisk.open(child, read_only=False) as disk:
        if child_writes:
            disk.write(PARENT_SIZE // 2 + 4096, b"\x66" * 1024)
            disk.write(PARENT_SIZE // 2 + 16384, b"\x77" * 4096)
            expected[PARENT_SIZE // 2 + 4096:PARENT_SIZE // 2 + 5120] = b"\x66" * 1024
        disk.resize(INSIDE_A_BLOCK, allow_unsafe=True)
    expected[INSIDE_A_BLOCK:] = bytes(PARENT_SIZE - INSIDE_A_BLOCK)


@pytest.mark.parametrize("child_writes", [False, True], ids=["not-present", "partially-present"])
def test_grow_after_shrink_inside_a_block_reads_zeros_in_that_block(tmp_path: Path,
                                                                    child_writes: bool) -> None:
    """The block the shrink ended inside reads zeros past the old end after
    a grow, where the parent has data there and the child held none of it
    (or what the shrink cut off), through the engine and libvhdi."""
    parent, child, expected = make_child(tmp_path)
    parent_before = parent.read_bytes()
    shrink_inside_a_block(child, expected, child_writes)
    grandchild = tmp_path / "grandchild.vhdx"
    with virtdisk.create(grandchild, parent=child):
        pass
    resize(child, PARENT_SIZE)
    # The zeros lay past the end: the child's DataWriteGuid, which its own
    # child names, stays.
    with virtdisk.open(grandchild) as disk:
        assert disk.read(0, INSIDE_A_BLOCK) == bytes(expected[:INSIDE_A_BLOCK])
    got = engine_bytes(child)
    tail = slice(INSIDE_A_BLOCK, PARENT_SIZE // 2 + 2 * MiB)
    assert got[tail] == bytes(expected[tail])
    assert got == bytes(expected)
    assert parent.read_bytes() == parent_before
    if have_pyvhdi():
        # Up to that block's end: libvhdi reads a child's ZERO blocks, the
        # grow's entries past it, from the parent.
        (start,) = pyvhdi_ranges(child, parent, [(0, tail.stop)])
        assert start == bytes(expected[:tail.stop])


def test_cli_resizes_a_child(tmp_path: Path) -> None:
    parent, child, expected = make_child(tmp_path)
    before = parent.read_bytes()
    assert main(["resize", str(child), "--size", "80MiB"]) == 0
    assert engine_size(child) == 80 * MiB
    assert engine_bytes(child) == bytes(expected) + bytes(16 * MiB)
    assert parent.read_bytes() == before


# --------------------------------------------------------------------------- refusals, and a merge

def test_child_shrink_rules_take_the_chain_s_partition_table(tmp_path: Path) -> None:
    parent, child, expected = make_child(tmp_path)
    # No partition table in the chain.
    shrinks_refused_without_a_partition_table(child, 32 * MiB)

    # The partition table lies in the parent; the child holds none of it.
    shutil.copy(parent, tmp_path / "parent.keep")
    write_mbr(parent, 2048, 40 * 2048)            # ends at 41 MiB
    child.unlink()
    with virtdisk.create(child, parent=parent):
        pass
    before = parent.read_bytes()
    with virtdisk.open(parent) as disk:
        expected = bytearray(disk.read(0, PARENT_SIZE))
    with pytest.raises(VirtualDiskError) as error:
        resize(child, 40 * MiB)
    assert code_of(error) == ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA
    resize(child, 0, Resize.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE)
    assert engine_size(child) == 41 * MiB
    assert engine_bytes(child) == bytes(expected[:41 * MiB])
    resize(child, 8 * MiB, Resize.ALLOW_UNSAFE_VIRTUAL_SIZE)
    assert engine_bytes(child) == bytes(expected[:8 * MiB])
    assert libvhdi_size(child) == 8 * MiB
    assert parent.read_bytes() == before


def test_expand_of_a_child_and_resize_of_a_vhd_child_stay_refused(tmp_path: Path) -> None:
    _, child, _ = make_child(tmp_path)
    before = child.read_bytes()
    with virtdisk.open(child, read_only=False) as disk, pytest.raises(VirtualDiskError) as error:
        vd.ExpandVirtualDisk(disk.handle, 128 * MiB)
    assert code_of(error) == ERROR_VHD_INVALID_TYPE
    assert child.read_bytes() == before

    vhd_dir = tmp_path / "vhd"
    vhd_dir.mkdir()
    _, vhd_child, _ = make_child(vhd_dir, suffix=".vhd")
    with pytest.raises(VirtualDiskError) as error:
        resize(vhd_child, 128 * MiB)
    assert code_of(error) == ERROR_VHD_INVALID_TYPE


def test_merge_of_a_resized_child_gives_the_parent_its_size(tmp_path: Path) -> None:
    """The parent grows to the child's size and reads what the chain read
    (tests/test_merge_resized.py has the rest)."""
    parent, child, expected = make_child(tmp_path)
    resize(child, 96 * MiB)
    with virtdisk.open(child, read_only=False) as disk:
        disk.write(PARENT_SIZE + MiB, b"\x55" * 4096)
        disk.merge()
    expected.extend(bytes(32 * MiB))
    expected[PARENT_SIZE + MiB:PARENT_SIZE + MiB + 4096] = b"\x55" * 4096
    assert libvhdi_size(parent) == 96 * MiB
    assert engine_bytes(parent) == bytes(expected)


# --------------------------------------------------------------------------- fault injection

def stop_a_child_grow(harness: Path, parent: Path, child: Path, old_size: int, new_size: int,
                      check_content: Callable[[Path, int], None]) -> None:
    """stop_after_every_step on the grow of `child` from `old_size` to
    `new_size`: every stopped copy opens with one of the two sizes and
    check_content(copy, size) holds of it, the parent never changes, and
    both sizes are seen."""
    parent_before = parent.read_bytes()
    seen = set()

    def check(copy: Path, answer: dict[str, Any]) -> None:
        # The copy's relative parent locator names base.vhdx beside it.
        size = engine_size(copy)
        assert size in (old_size, new_size), size
        check_content(copy, size)
        assert parent.read_bytes() == parent_before
        seen.add(size)

    stopped = stop_after_every_step(harness, child, [str(new_size), "0"], check, limit=96)
    assert stopped > 0
    assert seen == {old_size, new_size}


@pytest.mark.parametrize("new_size", [96 * MiB + 1536, 40 * GiB])
def test_stop_at_every_step_of_a_child_grow(tmp_path: Path, harness: Path,  # noqa: F811
                                            new_size: int) -> None:
    """Stopped after every file change (the log entry, its replay, the BAT
    region's growth over moved blocks for 40 GiB of 2 MiB blocks): the
    child opens with its old size or its new one, reads its content, and
    the parent never changes."""
    parent, child, expected = make_child(tmp_path)
    with virtdisk.open(child, read_only=False) as disk:
        disk.write(MiB, b"\x44" * 3 * MiB)
    expected[MiB:4 * MiB] = b"\x44" * 3 * MiB

    def check_content(copy: Path, size: int) -> None:
        with virtdisk.open(copy) as disk:
            assert disk.read(0, PARENT_SIZE) == bytes(expected)
            if size == new_size:
                assert disk.read(new_size - MiB, MiB) == bytes(MiB)

    stop_a_child_grow(harness, parent, child, PARENT_SIZE, new_size, check_content)
    assert call(harness, child, str(new_size), "0", "-1")["status"] == 0
    assert engine_size(child) == new_size


def test_stop_at_every_step_of_a_grow_after_shrink_inside_a_block(tmp_path: Path,
                                                                   harness: Path) -> None:  # noqa: F811
    """The grow's zeros in the block the shrink ended inside, stopped after
    every file change: the child opens with its old size and content or its
    new size reading zeros past the old end, and a grow run to its end on
    the stopped copy reads zeros there too."""
    parent, child, expected = make_child(tmp_path)
    shrink_inside_a_block(child, expected, child_writes=True)

    def check_content(copy: Path, size: int) -> None:
        with virtdisk.open(copy) as disk:
            assert disk.read(0, size) == bytes(expected[:size])
        if size == INSIDE_A_BLOCK:
            resize(copy, PARENT_SIZE)
            assert engine_bytes(copy) == bytes(expected)

    stop_a_child_grow(harness, parent, child, INSIDE_A_BLOCK, PARENT_SIZE, check_content)
