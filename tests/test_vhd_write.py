"""VHD content writes through the engine's data path (vhd_write.c),
checked by tools nobody here wrote.

Random writes -- inside and across block boundaries, aligned and not to
blocks, first writes into unallocated blocks and overwrites -- go into
qemu-made and engine-made dynamic and fixed VHDs and into differencing
children, mirrored into a raw file.  Then `qemu-img compare` (qemu reads
no VHD parents, so not for children), pyvhdi (libvhdi, with the parent set
for children) and the engine's own dump must all give the mirror, and the
file's structure must be sound: the footer at the end equals the copy at 0,
every block lies after the BAT, before the footer and clear of the others,
with its data on a 4 KiB boundary.  (`qemu-img check` has no check for
VHD, so that structural check stands in for it.)  Fault injection stops
allocating writes, differencing partial writes and unmaps after each of
their file changes, the flush after them included; every sector must then
read old or new, and all new once the flush is through.  Allocating writes
leave their BAT entries waiting for a flush (vhd_commit.c): a process that
dies after such writes without one leaves the old content, a flushed write
survives it, a first write of many blocks costs no flush before the
caller's, and a record grown to its bound commits by itself.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import all_engine_sources, compile_harness, skip_without_sanitizer  # noqa: E402
from content_driver import ContentSession, build_content_harness, stop_after_each_file_change  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
SECTOR = 512
ERROR_ACCESS_DENIED = 5
ERROR_BAT_CORRUPT = 0xC03A000A

VHD = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHD,
                            vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="drives the portable engine's data path"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img makes and compares images"),
]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True)


def has_pyvhdi() -> bool:
    return Path("/usr/bin/python3").exists() and subprocess.run(
        ["/usr/bin/python3", "-c", "import pyvhdi"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhd_write"))


@pytest.fixture(scope="module")
def fault_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhd_write_fault"),
                                 defines=("-DVD_FAULT_INJECTION",))


def qemu_image(path: Path, size: int, subformat: str = "dynamic") -> None:
    # force_size keeps Current Size exact (creator "qem2"); qemu's VHD
    # blocks are 2 MiB.
    run("qemu-img", "create", "-q", "-f", "vpc", "-o", f"subformat={subformat},force_size=on",
        path, str(size))


def engine_image(path: Path, size: int, kind: str, block: int = 0, parent: Path | None = None) -> None:
    flags = vd.CreateVirtualDiskFlag.FULL_PHYSICAL_ALLOCATION if kind == "fixed" else 0
    fields: dict[str, Any] = {"maximum_size": size if parent is None else 0}
    if block:
        fields["block_size"] = block
    if parent is not None:
        fields["parent_path"] = parent
    vd.CreateVirtualDisk(VHD, path, 0, vd.CreateVirtualDiskFlag(flags), 2, **fields).close()


def pyvhdi_bytes(path: Path, parent: Path | None = None) -> bytes:
    code = ("import pyvhdi,sys; f=pyvhdi.file(); f.open(sys.argv[1])\n"
            "if len(sys.argv) > 2:\n"
            "    p=pyvhdi.file(); p.open(sys.argv[2]); f.set_parent(p)\n"
            "sys.stdout.buffer.write(f.read_buffer(f.get_media_size()))")
    arguments = ["/usr/bin/python3", "-c", code, str(path)] + ([str(parent)] if parent else [])
    return subprocess.run(arguments, check=True, capture_output=True).stdout


def vhd_layout(path: Path) -> tuple[int, int, int, list[int]]:
    """(block size, bitmap size, BAT offset, BAT entries) of a sparse VHD."""
    data = path.read_bytes()
    header = data[512:1536]
    assert header[:8] == b"cxsparse"
    table_offset, = struct.unpack(">Q", header[16:24])
    entries, block = struct.unpack(">II", header[28:36])
    size, = struct.unpack(">Q", data[-512:][48:56])
    used = (size + block - 1) // block
    table = list(struct.unpack(f">{used}I", data[table_offset:table_offset + 4 * used]))
    bitmap = (block // SECTOR // 8 + SECTOR - 1) // SECTOR * SECTOR
    return block, bitmap, table_offset, table


def check_structure(path: Path, aligned: bool = True) -> None:
    """What `qemu-img check` would check for a VHD if it had a check."""
    data = path.read_bytes()
    assert data[-512:][:8] == b"conectix"
    if data[:8] != b"conectix":
        return    # fixed disk: no copy, no blocks
    assert data[-512:] == data[:512], "the end footer differs from its copy at 0"
    block, bitmap, table_offset, table = vhd_layout(path)
    footer_at = len(data) - 512
    extents = sorted((e * SECTOR, e * SECTOR + bitmap + block) for e in table if e != 0xFFFFFFFF)
    table_end = table_offset + 4 * len(table)
    for start, end in extents:
        assert start >= table_end and end <= footer_at, (start, end, table_end, footer_at)
        if aligned:
            assert (start + bitmap) % 4096 == 0, start
    for (_, end), (start, _) in zip(extents, extents[1:]):
        assert start >= end, "blocks overlap"


def dump(harness: Path, image: Path, out: Path, read_only: bool = True) -> bytes:
    reader = ContentSession(harness, image, out.with_suffix(".unused"), 0, read_only=read_only)
    reader.dump(out)
    reader.run()
    return out.read_bytes()


def check_against_mirror(harness: Path, image: Path, mirror: Path, parent: Path | None = None,
                         aligned: bool = True) -> None:
    expected = mirror.read_bytes()
    assert dump(harness, image, image.with_suffix(".dump")) == expected
    if parent is None:
        run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
    if has_pyvhdi():
        got = pyvhdi_bytes(image, parent)
        if parent is None:
            assert got == expected
        else:
            # libvhdi 20210425 reads zeros, not the parent, for the clear
            # sectors of a child block that holds only some sectors (the
            # engine reads the parent there, as the bitmap says); its
            # answer is compared on the other blocks.
            block, bitmap, _, table = vhd_layout(image)
            data = image.read_bytes()
            for index, entry in enumerate(table):
                start, end = index * block, min((index + 1) * block, len(expected))
                bits = data[entry * SECTOR:entry * SECTOR + bitmap] if entry != 0xFFFFFFFF else b""
                if entry == 0xFFFFFFFF or bits == b"\xff" * bitmap:
                    assert got[start:end] == expected[start:end], index
    check_structure(image, aligned)


def random_writes(session: ContentSession, size: int, block: int, count: int) -> None:
    rng = session.random
    session.write(block - 2 * SECTOR, 4 * SECTOR)           # across a block boundary
    session.write(2 * block, block)                          # a whole block
    session.write(size - SECTOR, SECTOR)                     # the last sector
    session.write(3 * block + 7 * SECTOR, 3 * SECTOR)        # a partial first write
    for _ in range(count):
        length = rng.randrange(1, 3 * block // SECTOR) * SECTOR
        offset = rng.randrange(0, (size - length) // SECTOR + 1) * SECTOR
        session.write(offset, length)
    session.write(block - 2 * SECTOR, 4 * SECTOR)            # an overwrite
    session.flush()


@pytest.mark.parametrize("maker,kind,block", [
    ("qemu", "dynamic", 2 * MiB),
    ("qemu", "fixed", 0),
    ("engine", "dynamic", 2 * MiB),
    ("engine", "dynamic", 512 * KiB),
    ("engine", "fixed", 0),
])
def test_random_writes_read_back_everywhere(harness: Path, tmp_path: Path, maker: str, kind: str,
                                            block: int) -> None:
    unit = block or MiB
    size = 12 * unit + 3 * SECTOR if maker == "qemu" else 12 * unit + MiB
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    if maker == "qemu":
        qemu_image(image, size, kind)
    else:
        engine_image(image, size, kind, block)
    session = ContentSession(harness, image, mirror, size, seed=unit + len(kind))
    random_writes(session, size, unit, 12)
    session.run()
    check_against_mirror(harness, image, mirror)
    # A second open overwrites and allocates on top of the first.
    session = ContentSession(harness, image, mirror, size, seed=7)
    random_writes(session, size, unit, 6)
    session.run()
    check_against_mirror(harness, image, mirror)


def test_first_write_appends_an_aligned_block_and_overwrites_touch_only_data(
        harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    engine_image(image, 16 * MiB, "dynamic", 2 * MiB)
    before = image.read_bytes()
    session = ContentSession(harness, image, mirror, 16 * MiB)
    session.write(5 * MiB + 4096, 4096)
    session.run()
    block, bitmap, table_offset, table = vhd_layout(image)
    allocated = [(i, e) for i, e in enumerate(table) if e != 0xFFFFFFFF]
    assert [i for i, _ in allocated] == [2]
    start = allocated[0][1] * SECTOR
    # Where the footer was, moved on so the data starts on 4 KiB.
    assert start >= len(before) - 512 and start - (len(before) - 512) < 4096
    assert (start + bitmap) % 4096 == 0
    assert image.stat().st_size == start + bitmap + block + 512
    assert image.read_bytes()[start:start + bitmap] == b"\xff" * bitmap   # dynamic: all present
    first = image.read_bytes()
    session = ContentSession(harness, image, mirror, 16 * MiB)
    session.write(5 * MiB + 8192, 4096)
    session.write(4 * MiB + 512, 1024)
    session.run()
    after = image.read_bytes()
    changed = [i for i in range(0, len(after), 512) if after[i:i + 512] != first[i:i + 512]]
    data = start + bitmap
    assert changed and all(data <= i < data + block for i in changed), changed
    check_against_mirror(harness, image, mirror)


def test_read_only_handle_refuses_writes_and_unmaps(harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB)
    original = image.read_bytes()
    session = ContentSession(harness, image, mirror, 8 * MiB, read_only=True)
    session.write(0, 4096)
    session.unmap(0, 4096)
    answers = session.run(check=False)
    assert answers == ["open 0", f"error {ERROR_ACCESS_DENIED}", f"error {ERROR_ACCESS_DENIED}"]
    assert image.read_bytes() == original


@pytest.mark.parametrize("target", ["footer copy", "header", "bat", "another block", "past the end",
                                    "footer"])
def test_bat_entry_pointing_into_structures_is_refused(harness: Path, tmp_path: Path,
                                                       target: str) -> None:
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    engine_image(image, 16 * MiB, "dynamic", 2 * MiB)
    setup = ContentSession(harness, image, mirror, 16 * MiB)
    setup.write(0, 4096)                 # block 0 allocated
    setup.run()
    block, bitmap, table_offset, table = vhd_layout(image)
    data = bytearray(image.read_bytes())
    sector = {"footer copy": 0, "header": 1, "bat": table_offset // SECTOR,
              "another block": table[0] + 1, "past the end": len(data) // SECTOR,
              "footer": (len(data) - 512 - bitmap - block) // SECTOR + 1}[target]
    data[table_offset + 4:table_offset + 8] = struct.pack(">I", sector)    # block 1
    image.write_bytes(bytes(data))
    session = ContentSession(harness, image, mirror, 16 * MiB)
    session.write(6 * MiB, 4096)          # a block elsewhere: refused all the same
    session.write(0, 4096)
    answers = session.run(check=False)
    assert answers[1:] == [f"error {ERROR_BAT_CORRUPT}"] * 2, (target, answers)
    assert image.read_bytes() == bytes(data), target


def test_differencing_child_keeps_sector_bitmaps(harness: Path, tmp_path: Path) -> None:
    """Partial writes into blocks the child does not hold mark only the
    sectors written: the others still read from the parent, for the
    engine and for libvhdi with the parent set.  The parent is never
    written."""
    size, block = 16 * MiB, 2 * MiB
    parent = tmp_path / "base.vhd"
    engine_image(parent, size, "dynamic", block)
    run("qemu-io", "-f", "vpc", "-c", f"write -P 0x3c 0 {size - 3 * MiB}", parent)
    parent_bytes = parent.read_bytes()
    child = tmp_path / "child.vhd"
    engine_image(child, 0, "differencing", parent=parent)
    mirror = tmp_path / "mirror.raw"
    mirror.write_bytes(dump(harness, parent, tmp_path / "parent.dump"))
    session = ContentSession(harness, child, mirror, size, seed=5)
    session.write(5 * block + 3 * SECTOR, 2 * SECTOR)
    session.write(5 * block + 6 * SECTOR, 2 * SECTOR)     # more bits in a partial block
    session.run()
    # The partial block's bitmap holds exactly the sectors written.
    _, bitmap, _, table = vhd_layout(child)
    at = table[5] * SECTOR
    assert child.read_bytes()[at:at + 2] == bytes([0b00011011, 0])
    session = ContentSession(harness, child, mirror, size, seed=6)
    random_writes(session, size, block, 10)
    session.run()
    assert parent.read_bytes() == parent_bytes
    check_against_mirror(harness, child, mirror, parent)
    session = ContentSession(harness, child, mirror, size, seed=9)
    random_writes(session, size, block, 6)
    session.run()
    check_against_mirror(harness, child, mirror, parent)


@pytest.mark.parametrize("kind", ["dynamic", "fixed", "differencing"])
def test_unmapped_sectors_read_zeros(harness: Path, tmp_path: Path, kind: str) -> None:
    size, block = 16 * MiB, 2 * MiB
    parent = tmp_path / "base.vhd"
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    if kind == "differencing":
        engine_image(parent, size, "dynamic", block)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x5a 0 {size}", parent)
        engine_image(image, 0, kind, parent=parent)
        mirror.write_bytes(b"\x5a" * size)
    else:
        engine_image(image, size, kind, block if kind == "dynamic" else 0)
    session = ContentSession(harness, image, mirror, size, seed=2)
    session.write(0, 6 * MiB)
    session.write(9 * MiB, 4096)
    session.unmap(MiB + 512, 3 * MiB)            # inside allocated blocks, across a boundary
    session.unmap(12 * MiB, 4 * MiB)             # blocks never written
    session.unmap(9 * MiB + 1024, 1024)          # a partly present block
    session.run()
    check_against_mirror(harness, image, mirror, parent if kind == "differencing" else None)


def every_sector_old_or_new(got: bytes, old: bytes, new: bytes, label: object) -> None:
    for s in range(0, len(old), SECTOR):
        assert got[s:s + SECTOR] in (old[s:s + SECTOR], new[s:s + SECTOR]), (label, s)


@pytest.mark.parametrize("case", ["allocating write", "differencing partial write", "unmap",
                                  "differencing unmap"])
def test_interrupted_changes_leave_every_sector_old_or_new(fault_harness: Path, harness: Path,
                                                          tmp_path: Path, case: str) -> None:
    size, block = 8 * MiB, 2 * MiB
    differencing = case.startswith("differencing")
    parent = tmp_path / "base.vhd"
    pristine = tmp_path / "pristine.vhd"
    if differencing:
        engine_image(parent, size, "dynamic", block)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x11 0 {size}", parent)
        engine_image(pristine, 0, "differencing", parent=parent)
    else:
        engine_image(pristine, size, "dynamic", block)
    setup = ContentSession(harness, pristine, tmp_path / "setup.raw", size, seed=3)
    setup.write(0, block)                               # block 0 held
    setup.write(block + 4096, 4096)                     # block 1 partly written
    setup.run()
    old = dump(harness, pristine, tmp_path / "old.raw")
    new = bytearray(old)
    if case.endswith("unmap"):
        offset, length = block - 8192, block + 16384    # blocks 0, 1 and into 2
        command, payload = f"u {offset} {length}", bytes(length)
    else:
        offset, length = block - 4096 + 512, block + 8192   # overwrite 0, fill 1, allocate 2
        payload = bytes([0xA7]) * length
        command = ""
    new[offset:offset + length] = payload
    def change(session: ContentSession) -> None:
        if command:
            session.command(command)
        else:
            session.write(offset, length, payload)
        # The flush commits the BAT entries the write left waiting: its
        # file changes are stops too, and only after it must all be new.
        session.flush()

    def every_sector_old_or_new_and_writable(image: Path, stops: int, done: bool) -> None:
        for read_only in (True, False):
            got = dump(harness, image, tmp_path / f"d{stops}{read_only}.raw", read_only)
            every_sector_old_or_new(got, old, bytes(new), (case, stops))
            if done:
                assert got == bytes(new)
        check_structure(image)
        # Still writable: a later write lands and reads back.
        again = ContentSession(harness, image, tmp_path / f"a{stops}.raw", size)
        again.write(6 * MiB, 4096, b"\x99" * 4096)
        again.run()
        assert dump(harness, image, tmp_path / f"e{stops}.raw")[6 * MiB:6 * MiB + 4096] == b"\x99" * 4096
        check_structure(image)

    stops = stop_after_each_file_change(fault_harness, pristine, tmp_path, change,
                                        every_sector_old_or_new_and_writable,
                                        finished=lambda answers: answers == ["ok", "ok"])
    assert stops >= (1 if case == "unmap" else 4), stops


def stripe_expectation(base: bytes, threads: int, rounds: int, repeats: int) -> bytes:
    """What tests/c/content_main.c's `t` command leaves on a disk."""
    out = bytearray(base)
    pieces = len(base) // 4096
    for _ in range(repeats):
        for index in range(threads):
            for round_ in range(rounds):
                piece = (round_ * threads + index) * 7919 % pieces
                piece = piece - piece % threads + index
                if piece >= pieces:
                    continue
                out[piece * 4096:(piece + 1) * 4096] = bytes(
                    (piece * 31 + i + round_) & 0xFF for i in range(4096))
    return bytes(out)


def run_stripes(binary: Path, image: Path, tmp_path: Path, repeats: int) -> list[str]:
    """`repeats` times tests/c/content_main.c's `t 16 200` on `image` by a
    sanitizer build `binary`, which must end cleanly; its answers."""
    data = tmp_path / "empty.data"
    data.write_bytes(b"")
    result = subprocess.run([str(binary), str(image), str(data)], input="t 16 200\n" * repeats,
                            capture_output=True, text=True,
                            env={"TSAN_OPTIONS": "halt_on_error=1 exitcode=66", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING: ThreadSanitizer" not in result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("sanitizer", ["thread", "address"])
@pytest.mark.parametrize("kind", ["dynamic", "differencing"])
def test_threaded_stripes_allocate_and_mark_in_parallel(harness: Path, tmp_path: Path,
                                                        sanitizer: str, kind: str) -> None:
    """16 threads write 4 KiB pieces of stripes of their own, many in the
    same blocks: allocations, bitmap updates of one block from several
    threads and plain overwrites at once.  TSan fails on a race; a bit lost
    between threads shows in the final dump."""
    flags = ["-fsanitize=thread"] if sanitizer == "thread" else ["-fsanitize=address,undefined"]
    skip_without_sanitizer(flags[0])
    binary = compile_harness(tmp_path, "content_main", all_engine_sources(),
                             defines=[*flags, "-pthread"])
    size = 32 * MiB
    image, parent = tmp_path / "disk.vhd", tmp_path / "base.vhd"
    if kind == "differencing":
        engine_image(parent, size, "dynamic", 2 * MiB)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x3c 0 {size}", parent)
        engine_image(image, 0, kind, parent=parent)
        base = b"\x3c" * size
    else:
        qemu_image(image, size)
        base = bytes(size)
    assert run_stripes(binary, image, tmp_path, 2) == ["open 0", "ok", "ok"]
    assert dump(harness, image, tmp_path / "stripes.raw") == stripe_expectation(base, 16, 200, 2)
    check_structure(image)


def test_qemu_writes_into_engine_written_images_and_the_engine_reads_them(
        harness: Path, tmp_path: Path) -> None:
    """qemu-io takes up the blocks the engine appended and appends its own
    after them; the engine then reads both writers' bytes and appends more."""
    size = 16 * MiB
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    engine_image(image, size, "dynamic", 2 * MiB)
    session = ContentSession(harness, image, mirror, size, seed=11)
    session.write(MiB + 512, 3 * MiB)
    session.write(9 * MiB, 4096)
    session.run()
    run("qemu-io", "-f", "vpc", "-c", f"write -P 0x6d {2 * MiB + 4096} 8192",
        "-c", f"write -P 0x2e {12 * MiB} {MiB}", image)
    with open(mirror, "r+b") as raw:
        raw.seek(2 * MiB + 4096)
        raw.write(b"\x6d" * 8192)
        raw.seek(12 * MiB)
        raw.write(b"\x2e" * MiB)
    assert dump(harness, image, tmp_path / "d.raw") == mirror.read_bytes()
    session = ContentSession(harness, image, mirror, size, seed=12)
    session.write(12 * MiB + 4096, 4096)      # into qemu's block
    session.write(14 * MiB, 8192)             # a new one after qemu's
    session.run()
    run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
    if has_pyvhdi():
        assert pyvhdi_bytes(image) == mirror.read_bytes()
    check_structure(image, aligned=False)     # qemu packs its blocks
