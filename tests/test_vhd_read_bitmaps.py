"""VHD reads and what an open knows of its blocks' sector bitmaps
(formats/vhd/vhd_present.c, and the copies of partly present blocks'
bitmaps, vhd_bitmaps.c), checked by tools nobody here wrote.

A read of a block whose every sector is marked present is one pread: the
bitmap is read once per block and open, not once per request.  strace
counts the preads of random 4 KiB reads of allocated blocks in a child
process, for VHD and for VHDX (whose fully present blocks never needed a
bitmap read).  What an open learned must never outlive the bitmap it
learned from: on one handle, reads that learn, then writes, unmaps, a
compact, partial writes into a differencing child and a merge, each
followed by a read of the whole disk through the same handle, which must
give a raw mirror of the same writes; `qemu-img compare` and pyvhdi
(libvhdi) read the files afterwards.  16 threads writing and reading
blocks the open has not learned yet run under ThreadSanitizer.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import all_engine_sources, compile_harness, skip_without_sanitizer  # noqa: E402
from content_driver import ContentSession, build_content_harness  # noqa: E402
from test_vhd_write import (check_against_mirror, engine_image, qemu_image, run,  # noqa: E402
                            run_stripes, stripe_expectation)
from traced_child import needs_strace, run_traced  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 2 * MiB
SIZE = 16 * MiB
RANDOM_READS = 300

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="drives the portable engine's data path"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img makes and compares images"),
]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhd_read_bitmaps"))


def fill(path: Path, byte: int) -> None:
    """`byte` over the whole disk, in whole blocks: every sector present."""
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(0, bytes([byte]) * SIZE)


def full_image(tmp_path: Path, kind: str) -> Path:
    """An image of SIZE whose every block is allocated and fully present;
    the VHD made and written by qemu, so that its bitmaps are qemu's."""
    if kind == "dynamic VHD":
        image = tmp_path / "disk.vhd"
        qemu_image(image, SIZE)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x5a 0 {SIZE}", image)
        return image
    suffix = ".vhd" if kind.endswith("VHD") else ".vhdx"
    if kind.startswith("dynamic"):
        image = tmp_path / f"disk{suffix}"
        virtdisk.create(image, SIZE, block_size=BLOCK).close()
    else:
        parent, image = tmp_path / f"base{suffix}", tmp_path / f"child{suffix}"
        virtdisk.create(parent, SIZE, block_size=BLOCK).close()
        fill(parent, 0x3C)
        virtdisk.create(image, parent=parent).close()
    fill(image, 0x5A)
    return image


def preads_of_reads(image: Path, trace: Path, count: int) -> int:
    """pread64 calls of a child that opens `image` read-only, reads a sector
    of every block, then `count` random 4 KiB pieces."""
    script = textwrap.dedent(f"""
        import random, virtdisk
        with virtdisk.open({str(image)!r}) as disk:
            buffer = bytearray(4096)
            for block in range({SIZE // BLOCK}):
                disk.readinto(block * {BLOCK}, buffer[:512])
            rng = random.Random(7)
            for _ in range({count}):
                disk.readinto(rng.randrange({SIZE // 4096}) * 4096, buffer)
                assert buffer == bytes([0x5A]) * 4096
    """)
    lines = run_traced(script, trace, "pread64")
    return sum(1 for line in lines if re.search(r"pread64\(", line))


@needs_strace("strace counts the reads")
@pytest.mark.parametrize("kind", ["dynamic VHD", "differencing VHD", "dynamic VHDX",
                                  "differencing VHDX"])
def test_a_random_read_of_a_fully_present_block_is_one_pread(tmp_path: Path, kind: str) -> None:
    image = full_image(tmp_path, kind)
    without = preads_of_reads(image, tmp_path / "none.trace", 0)
    with_reads = preads_of_reads(image, tmp_path / "reads.trace", RANDOM_READS)
    assert with_reads - without == RANDOM_READS


def snapshot_dump(session: ContentSession, mirror: Path, out: Path,
                  expected: list[tuple[Path, bytes]]) -> None:
    """Queues a read of the whole disk through the session's handle, to be
    compared with the mirror as it stands now."""
    session.dump(out)
    expected.append((out, mirror.read_bytes()))


def check_dumps(expected: list[tuple[Path, bytes]]) -> None:
    for out, content in expected:
        assert out.read_bytes() == content, out.name


def test_a_dynamic_disk_reads_right_after_unmap_compact_and_new_writes(harness: Path,
                                                                       tmp_path: Path) -> None:
    """qemu's blocks, learned by a first read, then changed through the
    same handle."""
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    qemu_image(image, SIZE)
    run("qemu-io", "-f", "vpc", "-c", f"write -P 0x5a 0 {SIZE}", image)
    mirror.write_bytes(b"\x5a" * SIZE)
    session = ContentSession(harness, image, mirror, SIZE, seed=21)
    expected: list[tuple[Path, bytes]] = []
    snapshot_dump(session, mirror, tmp_path / "learned.raw", expected)
    session.unmap(BLOCK + 4 * KiB, 8 * KiB)                 # inside a learned block
    session.unmap(3 * BLOCK, 2 * BLOCK)                     # two whole blocks
    snapshot_dump(session, mirror, tmp_path / "unmapped.raw", expected)
    session.command("c 0")                                  # drops blocks 3 and 4
    snapshot_dump(session, mirror, tmp_path / "compacted.raw", expected)
    session.write(3 * BLOCK + 64 * KiB, 4 * KiB)            # allocates a dropped block again
    session.write(4 * BLOCK, BLOCK)
    session.write(BLOCK + 6 * KiB, 4 * KiB)
    snapshot_dump(session, mirror, tmp_path / "rewritten.raw", expected)
    session.flush()
    session.run()
    check_dumps(expected)
    check_against_mirror(harness, image, mirror, aligned=False)     # qemu packs its blocks


def differencing_pair(harness: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A dynamic parent with data in its first half, zeros in the rest, an
    empty child and the mirror (the parent's content)."""
    parent, child, mirror = tmp_path / "parent.vhd", tmp_path / "child.vhd", tmp_path / "mirror.raw"
    engine_image(parent, SIZE, "dynamic", BLOCK)
    session = ContentSession(harness, parent, mirror, SIZE, seed=31)
    session.write(0, SIZE // 2)
    session.flush()
    session.run()
    engine_image(child, 0, "differencing", parent=parent)
    return parent, child, mirror


def test_a_differencing_child_reads_right_after_partial_writes_unmap_and_compact(
        harness: Path, tmp_path: Path) -> None:
    """Blocks holding only some sectors, learned by reads of a new handle,
    then marked further, unmapped, dropped by a compact and allocated again,
    each change read back through the same handle."""
    parent, child, mirror = differencing_pair(harness, tmp_path)
    first = ContentSession(harness, child, mirror, SIZE, seed=32)
    first.write(0, 64 * KiB)                                # some sectors of block 0
    first.write(BLOCK + 512, 3 * 512)                       # a few of block 1
    first.write(5 * BLOCK, 4 * KiB, bytes(4 * KiB))         # zeros over parent zeros
    first.write(6 * BLOCK, BLOCK, bytes(BLOCK))             # a whole block of them
    expected: list[tuple[Path, bytes]] = []
    snapshot_dump(first, mirror, tmp_path / "first.raw", expected)
    first.flush()
    first.run()

    second = ContentSession(harness, child, mirror, SIZE, seed=33)
    snapshot_dump(second, mirror, tmp_path / "learned.raw", expected)
    second.write(64 * KiB, BLOCK - 64 * KiB)                # block 0 complete now
    second.write(BLOCK + 8 * KiB, 4 * KiB)                  # block 1 still partial
    snapshot_dump(second, mirror, tmp_path / "marked.raw", expected)
    second.unmap(16 * KiB, 8 * KiB)                         # zeros that hide the parent
    second.unmap(2 * BLOCK + 4 * KiB, 4 * KiB)              # in a block not allocated
    second.unmap(BLOCK + 64 * KiB, 8 * KiB)                 # block 1, over the parent's data
    snapshot_dump(second, mirror, tmp_path / "unmapped.raw", expected)
    second.command("c 0")                                   # drops blocks 5 and 6
    snapshot_dump(second, mirror, tmp_path / "compacted.raw", expected)
    second.write(5 * BLOCK + 12 * KiB, 4 * KiB)             # partial again: the rest is the parent's
    second.write(6 * BLOCK + BLOCK - 4 * KiB, 4 * KiB)
    snapshot_dump(second, mirror, tmp_path / "reallocated.raw", expected)
    second.write(5 * BLOCK + 32 * KiB, 4 * KiB)             # marked from the new block's bits
    snapshot_dump(second, mirror, tmp_path / "remarked.raw", expected)
    second.flush()
    second.run()
    check_dumps(expected)
    check_against_mirror(harness, child, mirror, parent)


def test_a_merge_into_a_learned_parent_reads_right_through_the_same_handle(
        harness: Path, tmp_path: Path) -> None:
    """The middle of a chain, its partial blocks learned by reads through the
    leaf, takes the leaf's sectors; the handle goes on reading the leaf, and
    the merged middle reads as the leaf did."""
    base, middle, mirror = differencing_pair(harness, tmp_path)
    session = ContentSession(harness, middle, mirror, SIZE, seed=41)
    session.write(BLOCK + 4 * KiB, 8 * KiB)
    session.write(4 * BLOCK, BLOCK)
    session.flush()
    session.run()
    leaf = tmp_path / "leaf.vhd"
    engine_image(leaf, 0, "differencing", parent=middle)
    session = ContentSession(harness, leaf, mirror, SIZE, seed=42)
    session.write(BLOCK + 16 * KiB, 4 * KiB)
    session.write(4 * BLOCK + 512, 512)
    session.write(7 * BLOCK, 8 * KiB)
    session.flush()
    session.run()
    expected = mirror.read_bytes()
    with virtdisk.open(leaf, access=virtdisk.VirtualDiskAccessMask.ALL, rw_depth=2) as disk:
        assert disk.read(0, SIZE) == expected              # learns the middle's blocks
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
        assert disk.read(0, SIZE) == expected
    check_against_mirror(harness, middle, mirror, base)


@pytest.mark.parametrize("kind", ["dynamic", "differencing"])
def test_threads_learn_blocks_while_others_write_them(harness: Path, tmp_path: Path,
                                                     kind: str) -> None:
    """16 threads write and read back pieces of blocks that are allocated in
    the file but not yet known to the open: learning, marking and plain
    reads at once.  TSan fails on a race; a stale answer shows in the dump."""
    skip_without_sanitizer("-fsanitize=thread")
    binary = compile_harness(tmp_path, "content_main", all_engine_sources(),
                             defines=["-fsanitize=thread", "-pthread"])
    parent: Path | None = None
    image = tmp_path / "disk.vhd"
    if kind == "differencing":
        parent = tmp_path / "base.vhd"
        engine_image(parent, 2 * SIZE, "dynamic", BLOCK)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x3c 0 {2 * SIZE}", parent)
        engine_image(image, 0, kind, parent=parent)
        # Some sectors of every block: each is allocated, none fully present.
        session = ContentSession(harness, image, tmp_path / "unused.raw", 2 * SIZE)
        for block in range(2 * SIZE // BLOCK):
            session.write(block * BLOCK + BLOCK - 512, 512, b"\x3c" * 512)
        session.flush()
        session.run()
    else:
        qemu_image(image, 2 * SIZE)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x3c 0 {2 * SIZE}", image)
    assert run_stripes(binary, image, tmp_path, 1) == ["open 0", "ok"]
    expected = stripe_expectation(b"\x3c" * (2 * SIZE), 16, 200, 1)
    mirror = tmp_path / "expected.raw"
    mirror.write_bytes(expected)
    check_against_mirror(harness, image, mirror, parent, aligned=parent is not None)
