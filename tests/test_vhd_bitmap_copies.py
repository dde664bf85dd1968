"""VHD blocks that are only partly present and the copies of their sector
bitmaps an open keeps (formats/vhd/vhd_bitmaps.c), checked by tools nobody
here wrote.

A read of such a block (a differencing child's block that leaves sectors
to its parent, a dynamic block whose bitmap marks some sectors only) takes
the bits from the copy after the block's first read: one pread for the
data, none for the bitmap, and a write into it reads no bitmap either;
strace counts the preads in a child process.  A copy must never outlive
the bitmap it copies: reads that make the copies of a dynamic disk's
partly marked blocks, writes into their absent sectors and a resize, each
followed by a read through the same handle that must give what the
writes made; `qemu-img compare` and pyvhdi (libvhdi) read the file
afterwards, as they do for a disk with more partly present blocks than
the copies' bound holds.  Children's copies after writes, unmap, compact and merge:
tests/test_vhd_read_bitmaps.py, whose reads through one handle meet them.
"""

from __future__ import annotations

import random
import re
import struct
import sys
import textwrap
from pathlib import Path

import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_vhd_read_bitmaps import BLOCK, RANDOM_READS, SIZE, KiB, MiB, pytestmark  # noqa: E402,F401
from test_vhd_write import SECTOR, has_pyvhdi, pyvhdi_bytes, qemu_image, run, vhd_layout  # noqa: E402
from traced_child import needs_strace, run_traced  # noqa: E402
from vhd_builder import build_sparse  # noqa: E402

BLOCKS = SIZE // BLOCK
HALF = BLOCK // 2


def half_written_child(tmp_path: Path) -> tuple[Path, Path]:
    """A parent holding 0x3C in every sector and a child holding 0x5A in
    the first half of every block: each child block is partly present."""
    parent, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    virtdisk.create(parent, SIZE, block_size=BLOCK).close()
    with virtdisk.open(parent, read_only=False) as disk:
        disk.write(0, b"\x3c" * SIZE)
    virtdisk.create(child, parent=parent).close()
    with virtdisk.open(child, read_only=False) as disk:
        for block in range(BLOCKS):
            disk.write(block * BLOCK, b"\x5a" * HALF)
    return parent, child


def half_marked_dynamic(path: Path) -> None:
    """A dynamic VHD by qemu with 0x5A in the first half of every block and
    zeros in the second, whose bitmaps then mark the first halves only: the
    blocks are partly present, and every reader reads the same bytes."""
    qemu_image(path, SIZE)
    for block in range(BLOCKS):
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x5a {block * BLOCK} {HALF}", path)
    _, bitmap, _, table = vhd_layout(path)
    marked = HALF // SECTOR // 8
    with open(path, "r+b") as raw:
        for entry in table:
            raw.seek(entry * SECTOR)
            raw.write(b"\xff" * marked + bytes(bitmap - marked))


def random_pieces(count: int) -> list[int]:
    """The pieces preads_of_random_reads reads."""
    rng = random.Random(7)
    return [rng.randrange(SIZE // 4096) for _ in range(count)]


def preads_of(script: str, trace: Path) -> int:
    lines = run_traced(script, trace, "pread64")
    return sum(1 for line in lines if re.search(r"pread64\(", line))


def preads_of_random_reads(image: Path, trace: Path, count: int) -> int:
    """pread64 calls of a child that opens `image` read-only, reads a
    sector of each half of every block (which learns every block of the
    chain), then `count` random 4 KiB pieces."""
    script = textwrap.dedent(f"""
        import random, virtdisk
        with virtdisk.open({str(image)!r}) as disk:
            buffer = bytearray(4096)
            for start in range(0, {SIZE}, {HALF}):
                disk.readinto(start, buffer[:512])
            rng = random.Random(7)
            for _ in range({count}):
                disk.readinto(rng.randrange({SIZE // 4096}) * 4096, buffer)
    """)
    return preads_of(script, trace)


@needs_strace("strace counts the reads")
def test_a_read_of_a_partly_present_child_block_is_one_pread(tmp_path: Path) -> None:
    """Each random read lies in one half of a block: the child's data or
    the parent's, one pread, and no read of the child's bitmap."""
    _, child = half_written_child(tmp_path)
    without = preads_of_random_reads(child, tmp_path / "none.trace", 0)
    with_reads = preads_of_random_reads(child, tmp_path / "reads.trace", RANDOM_READS)
    assert with_reads - without == RANDOM_READS


@needs_strace("strace counts the reads")
def test_a_read_of_a_partly_present_dynamic_block_reads_only_its_data(tmp_path: Path) -> None:
    """The halves the bitmap leaves out read zeros without a pread; the
    others are one pread each."""
    image = tmp_path / "disk.vhd"
    half_marked_dynamic(image)
    present = sum(1 for piece in random_pieces(RANDOM_READS) if piece * 4096 % BLOCK < HALF)
    without = preads_of_random_reads(image, tmp_path / "none.trace", 0)
    with_reads = preads_of_random_reads(image, tmp_path / "reads.trace", RANDOM_READS)
    assert 0 < present < RANDOM_READS
    assert with_reads - without == present


@needs_strace("strace counts the reads")
def test_writes_into_a_partly_present_block_read_no_bitmap(tmp_path: Path) -> None:
    """After a read of each block and a first write, 4 KiB writes into the halves the child
    leaves to its parent mark the bitmap from the copy: no pread at all."""
    _, child = half_written_child(tmp_path)
    count = 64
    script = textwrap.dedent(f"""
        import random, virtdisk
        with virtdisk.open({str(child)!r}, read_only=False) as disk:
            buffer = bytearray(512)
            for block in range({BLOCKS}):
                disk.readinto(block * {BLOCK}, buffer)
            disk.write(0, b"\x5a" * 4096)    # the first write's checks
            rng = random.Random(9)
            for _ in range({{count}}):
                block = rng.randrange({BLOCKS})
                piece = rng.randrange({HALF // 4096})
                disk.write(block * {BLOCK} + {HALF} + piece * 4096, b"\\x11" * 4096)
    """)
    without = preads_of(script.replace("{count}", "0"), tmp_path / "none.trace")
    with_writes = preads_of(script.replace("{count}", str(count)), tmp_path / "writes.trace")
    assert with_writes - without == 0


def test_a_dynamic_disk_reads_right_after_resize_and_writes_into_copied_blocks(
        tmp_path: Path) -> None:
    """Partly marked dynamic blocks copied by a read, then a grow and
    writes into the sectors the bitmaps leave out, through one handle."""
    image = tmp_path / "disk.vhd"
    half_marked_dynamic(image)
    grown = SIZE + 3 * BLOCK
    expected = bytearray((b"\x5a" * HALF + bytes(HALF)) * BLOCKS + bytes(grown - SIZE))
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.read(0, SIZE) == expected[:SIZE]
        disk.write(BLOCK + HALF, b"\x21" * 8 * KiB)
        expected[BLOCK + HALF:BLOCK + HALF + 8 * KiB] = b"\x21" * 8 * KiB
        assert disk.read(0, SIZE) == expected[:SIZE]
        disk.resize(grown)
        assert disk.read(0, grown) == expected
        for offset in (HALF + 4 * KiB, BLOCK + HALF + 8 * KiB, SIZE - 4 * KiB, SIZE + 4 * KiB):
            disk.write(offset, b"\x42" * 4 * KiB)
            expected[offset:offset + 4 * KiB] = b"\x42" * 4 * KiB
        assert disk.read(0, grown) == expected
    mirror = tmp_path / "mirror.raw"
    mirror.write_bytes(expected)
    run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
    if has_pyvhdi():
        assert pyvhdi_bytes(image) == bytes(expected)
    _, bitmap, _, table = vhd_layout(image)
    data = image.read_bytes()
    assert struct.unpack(">Q", data[-512:][48:56])[0] == grown
    assert data[table[1] * SECTOR + HALF // SECTOR // 8] == 0xFF   # the written run is marked


def test_blocks_past_the_bound_of_the_copies_read_right(tmp_path: Path) -> None:
    """More partly present blocks than the copies' bound holds (70 000
    bitmaps of 512 bytes; 4 KiB blocks, the smallest qemu reads, each with
    one sector marked): the blocks past it read their bitmaps from the file,
    and every read, the first and the ones after, gives the sectors the
    bitmaps mark and zeros elsewhere."""
    blocks, block_size = 70_000, 4 * KiB
    size = blocks * block_size
    rng = random.Random(13)
    sectors = {block * 8 + rng.randrange(8): rng.randbytes(SECTOR) for block in range(blocks)}
    image, mirror = tmp_path / "small-blocks.vhd", tmp_path / "mirror.raw"
    image.write_bytes(build_sparse(size, block_size, sectors, align_data_4k=False))
    with open(mirror, "wb") as raw:
        raw.truncate(size)
        for sector, content in sectors.items():
            raw.seek(sector * SECTOR)
            raw.write(content)
    piece = 8 * MiB
    with virtdisk.open(image) as disk, open(mirror, "rb") as raw:
        for _ in range(2):                   # the first read makes the copies
            for offset in range(0, size, piece):
                raw.seek(offset)
                assert disk.read(offset, min(piece, size - offset)) == raw.read(piece), offset
    run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
