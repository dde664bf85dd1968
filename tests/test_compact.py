"""CompactVirtualDisk V1 on qemu-made dynamic VHDX images: after a compact
the content equals a raw mirror (qemu-img compare), qemu-img check is clean
and the file shrinks by the zero blocks it held."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import _virtdisk
import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="needs qemu-img and qemu-io")

MIB = 1024 * 1024


def _make(tmp_path: Path) -> tuple[Path, Path]:
    """A 64 MiB VHDX with 1 MiB blocks and its raw mirror, written alike:
    data, zeros written as zeros, and explicit zero writes, in turn."""
    image, raw = tmp_path / "a.vhdx", tmp_path / "a.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=1M",
                    str(image), "64M"], check=True)
    raw.write_bytes(b"")
    os.truncate(raw, 64 * MIB)
    commands: list[str] = []
    for i in range(32):
        kind = ("-P %d" % (i + 1), "-z", "-P 0")[i % 3]
        commands += ["-c", f"write {kind} {i * 2 * MIB} 2M"]
    for fmt, path in (("vhdx", image), ("raw", raw)):
        subprocess.run(["qemu-io", "-f", fmt, *commands, str(path)], check=True,
                       stdout=subprocess.DEVNULL)
    return image, raw


def _compact(image: Path, flags: _virtdisk.CompactVirtualDiskFlag | int) -> None:
    with virtdisk.open(image, read_only=False) as disk:
        _virtdisk.CompactVirtualDisk(disk.handle, _virtdisk.CompactVirtualDiskFlag(flags))


def _identical(image: Path, raw: Path) -> bool:
    done = subprocess.run(["qemu-img", "compare", "-f", "vhdx", "-F", "raw", str(image), str(raw)],
                          capture_output=True, text=True)
    return done.returncode == 0


def _clean(image: Path) -> bool:
    return subprocess.run(["qemu-img", "check", "-f", "vhdx", str(image)],
                          capture_output=True).returncode == 0


def test_compact_moves_blocks_and_cuts_the_file(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    _compact(image, 0)
    after = image.stat().st_size
    # 11 of 32 2 MiB runs hold data: 22 blocks of 1 MiB stay, the other
    # 42 MiB of blocks qemu wrote leave the file.
    assert after <= before - 40 * MIB
    assert _identical(image, raw)
    assert _clean(image)


def test_no_block_moves_punches_holes_and_keeps_the_size(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat()
    _compact(image, _virtdisk.COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES)
    after = image.stat()
    assert after.st_size == before.st_size
    assert after.st_blocks * 512 <= before.st_blocks * 512 - 40 * MIB
    assert _identical(image, raw)
    assert _clean(image)


def test_no_zero_scan_keeps_zero_blocks(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat()
    _compact(image, _virtdisk.COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN
             | _virtdisk.COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES)
    assert image.stat().st_blocks == before.st_blocks
    assert _identical(image, raw)
    assert _clean(image)


def test_read_only_handle_is_refused(tmp_path: Path) -> None:
    image, _ = _make(tmp_path)
    with virtdisk.open(image) as disk, pytest.raises(virtdisk.AccessDeniedError):
        _virtdisk.CompactVirtualDisk(disk.handle, _virtdisk.COMPACT_VIRTUAL_DISK_FLAG_NONE)


def test_facade_compact_matches_the_mirror(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    with virtdisk.open(image, read_only=False) as disk:
        disk.compact()
    assert image.stat().st_size <= before - 40 * MIB
    assert _identical(image, raw)
    assert _clean(image)


def test_differencing_child_keeps_what_hides_its_parent(tmp_path: Path) -> None:
    """Zeros written over parent data must keep reading zeros; zeros over
    parent zeros and data stay what they were; the file gives back the
    space of every all-zero block (ZERO needs none, whatever the parent)."""
    parent, child = tmp_path / "parent.vhdx", tmp_path / "child.vhdx"
    block = 2 * MIB
    with virtdisk.create(parent, 16 * MIB, block_size=block) as disk:
        disk.write(0, b"\x5a" * block)
    with virtdisk.create(child, parent=parent) as disk:
        assert disk.block_size == block
        disk.write(0, bytes(block))                 # zeros over parent data
        disk.write(2 * block, bytes(block))         # zeros over parent zeros
        disk.write(3 * block, b"\xa5" * block)      # data
        expected = disk.read(0, 16 * MIB)
    before = child.stat().st_size
    with virtdisk.open(child, read_only=False) as disk:
        disk.compact()
        assert disk.read(0, 16 * MIB) == expected
    assert expected[:block] == bytes(block)
    assert child.stat().st_size <= before - 2 * block
    with virtdisk.open(child) as disk:
        assert disk.read(0, 16 * MIB) == expected


@pytest.fixture(scope="module")
def fault_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from content_driver import build_content_harness

    return build_content_harness(tmp_path_factory.mktemp("compact_vhdx_fault"),
                                 defines=("-DVD_FAULT_INJECTION",))


@pytest.fixture(scope="module")
def plain_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from content_driver import build_content_harness

    return build_content_harness(tmp_path_factory.mktemp("compact_vhdx_plain"))


@pytest.mark.parametrize("flags", [0, int(_virtdisk.COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES)])
def test_a_stop_after_any_file_change_leaves_the_old_content(fault_harness: Path, plain_harness: Path,
                                                             tmp_path: Path, flags: int) -> None:
    """The compact stopped after each of its writes, flushes and size
    changes (the log's entries, the block copies, the BAT, the cut): a
    writable reopen (which replays a pending log) gives an image that reads
    the old content and that qemu-img check finds clean."""
    from content_driver import ContentSession, stop_after_each_file_change

    pristine, raw = _make(tmp_path)

    def reopens_with_the_old_content(image: Path, changes: int, done: bool) -> None:
        reopened = ContentSession(plain_harness, image, image.with_suffix(".unused"), 0)
        reopened.flush()
        reopened.run()
        assert _identical(image, raw), changes
        assert _clean(image), changes

    changes = stop_after_each_file_change(
        fault_harness, pristine, tmp_path, lambda session: session.command(f"c {flags}"),
        reopens_with_the_old_content)
    # Every log transaction writes and flushes several times; the moves
    # add copies, more transactions and the cut.
    assert changes > (10 if flags == 0 else 4)


@pytest.mark.parametrize("fmt, suffix, options", [("vhdx", ".vhdx", "subformat=dynamic,block_size=8M"),
                                                  ("vpc", ".vhd", "subformat=dynamic")])
def test_data_past_the_first_scan_piece_keeps_its_block(tmp_path: Path, fmt: str, suffix: str,
                                                        options: str) -> None:
    # The zero scan reads a block 1 MiB at a time and stops at the first
    # piece that holds data: blocks whose only data lies in a later piece,
    # or in their last sector, must stay, and only the all-zero one go.
    image, raw = tmp_path / f"a{suffix}", tmp_path / "a.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, "-o", options, str(image), "32M"],
                   check=True)
    raw.write_bytes(b"")
    os.truncate(raw, 32 * MIB)
    block = 8 * MIB if fmt == "vhdx" else 2 * MIB
    commands = ["-c", f"write -P 0 0 {3 * block}",                       # three blocks allocated
                "-c", f"write -P 0x5a {block - 512} 512",                # the first: its last sector
                "-c", f"write -P 0xa5 {2 * block + MIB + 4096} 4096"]    # the third: its second MiB
    for image_format, path in ((fmt, image), ("raw", raw)):
        subprocess.run(["qemu-io", "-f", image_format, *commands, str(path)], check=True,
                       stdout=subprocess.DEVNULL)
    before = image.stat().st_size
    with virtdisk.open(image, read_only=False) as disk:
        disk.compact()
    if fmt == "vhdx":
        # qemu's VHDX driver maps every block as data; the last block moves
        # into the freed one and the file is cut by one block, no more.
        assert before - 2 * block < image.stat().st_size <= before - block
    else:
        # qemu's VHD blocks leave no 4 KiB-aligned gap to move into: the
        # file keeps its size, and qemu-img map shows which blocks remain.
        mapped = json.loads(subprocess.run(["qemu-img", "map", "-f", fmt, "--output=json",
                                            str(image)], capture_output=True, text=True,
                                           check=True).stdout)
        held = {index for extent in mapped if extent["data"]
                for index in range(extent["start"] // block,
                                   (extent["start"] + extent["length"] - 1) // block + 1)}
        assert held == {0, 2}, mapped
    compared = subprocess.run(["qemu-img", "compare", "-f", fmt, "-F", "raw", str(image), str(raw)],
                              capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
