"""VHDX content writes through the engine's data path (vhdx_write.c),
checked by tools nobody here wrote.

Random writes -- inside and across block boundaries, aligned and not to
blocks, first writes into blocks that are not present and overwrites of
present ones -- go into qemu-made and engine-made dynamic and fixed VHDX
with 512 and 4096-byte logical sectors, mirrored into a raw file.  Then
`qemu-img compare` (512-byte images: qemu reads no 4K VHDX), `qemu-img
check`, pyvhdi (libvhdi) and the engine's own dump must all give the
mirror.  Fault injection stops an allocating write after each of its file
changes; every sector must then read old or new and the image check clean.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import compile_harness, skip_without_sanitizer  # noqa: E402
from c_harness import all_engine_sources as engine_sources  # noqa: E402
from content_driver import (ContentSession, all_answered_ok, build_content_harness,  # noqa: E402
                            stop_after_each_file_change)
from vhdx_builder import BAT_REGION  # noqa: E402
from vhdx_layout import layout  # noqa: E402

MiB = 1 << 20
ERROR_ACCESS_DENIED = 5
ERROR_BAT_CORRUPT = 0xC03A000A

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img makes and checks the images")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhdx_write"))


@pytest.fixture(scope="module")
def fault_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhdx_write_fault"),
                                 defines=("-DVD_FAULT_INJECTION",))


@pytest.fixture(scope="module")
def creator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("vhdx_write_create"), "vhdx_create_main",
                           engine_sources(), sanitize=True)


def qemu_image(path: Path, size: int, block: int, subformat: str = "dynamic") -> None:
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o",
        f"subformat={subformat},block_size={block},log_size={MiB}", path, str(size))


def engine_image(creator: Path, path: Path, size: int, block: int, kind: str, logical: int) -> None:
    made = json.loads(run(creator, path, "--type", kind, "--size", str(size), "--block", str(block),
                          "--logical", str(logical)).stdout)
    assert made.get("create", made.get("status", 0)) == 0, made


def made_image(maker: str, creator: Path, path: Path, size: int, block: int, kind: str,
               sector: int) -> None:
    """A VHDX made by qemu-img (512-byte sectors only) or by the engine."""
    if maker == "qemu":
        qemu_image(path, size, block, kind)
    else:
        engine_image(creator, path, size, block, kind, sector)


def random_writes(session: ContentSession, size: int, block: int, sector: int, count: int) -> None:
    rng = session.random
    # Across a block boundary, a whole block, the last sector, then random ones.
    session.write(block - 2 * sector, 4 * sector)
    session.write(2 * block, block)
    session.write(size - sector, sector)
    for _ in range(count):
        length = rng.randrange(1, 3 * block // sector) * sector
        offset = rng.randrange(0, (size - length) // sector + 1) * sector
        session.write(offset, length)
    session.write(block - 2 * sector, 4 * sector)          # an overwrite
    session.flush()


def pyvhdi_bytes(path: Path) -> bytes:
    code = ("import pyvhdi,sys; f=pyvhdi.file(); f.open(sys.argv[1]); "
            "sys.stdout.buffer.write(f.read_buffer(f.get_media_size()))")
    return subprocess.run(["/usr/bin/python3", "-c", code, str(path)], check=True,
                          capture_output=True).stdout


def check_against_mirror(harness: Path, image: Path, mirror: Path, sector: int) -> None:
    dump = image.with_suffix(".dump")
    reader = ContentSession(harness, image, mirror, 0, read_only=True)
    reader.dump(dump)
    reader.run()
    assert dump.read_bytes() == mirror.read_bytes()
    if sector == 512:
        run("qemu-img", "compare", "-q", "-f", "vhdx", "-F", "raw", image, mirror)
        run("qemu-img", "check", "-q", "-f", "vhdx", image)
    if Path("/usr/bin/python3").exists() and subprocess.run(
            ["/usr/bin/python3", "-c", "import pyvhdi"]).returncode == 0:
        assert pyvhdi_bytes(image) == mirror.read_bytes()


@pytest.mark.parametrize("maker,kind,block,sector", [
    ("qemu", "dynamic", 1 * MiB, 512),
    ("qemu", "dynamic", 8 * MiB, 512),
    ("qemu", "fixed", 1 * MiB, 512),
    ("engine", "dynamic", 2 * MiB, 512),
    ("engine", "fixed", 1 * MiB, 512),
    ("engine", "dynamic", 1 * MiB, 4096),
])
def test_random_writes_read_back_everywhere(harness: Path, creator: Path, tmp_path: Path,
                                            maker: str, kind: str, block: int, sector: int) -> None:
    size = 12 * block + 3 * sector
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    made_image(maker, creator, image, size, block, kind, sector)
    session = ContentSession(harness, image, mirror, size, seed=block + sector)
    random_writes(session, size, block, sector, 12)
    session.run()
    check_against_mirror(harness, image, mirror, sector)
    # A second open overwrites and allocates more on top of the first.
    session = ContentSession(harness, image, mirror, size, seed=7)
    random_writes(session, size, block, sector, 6)
    session.run()
    check_against_mirror(harness, image, mirror, sector)


def test_new_blocks_are_appended_1_mib_aligned_and_overwrites_cost_no_metadata(
        harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 16 * MiB, MiB)
    before = image.stat().st_size
    session = ContentSession(harness, image, mirror, 16 * MiB)
    session.write(5 * MiB + 4096, 4096)
    session.run()
    assert image.stat().st_size == (before + MiB - 1) // MiB * MiB + MiB
    header_bytes = image.read_bytes()[:4 * MiB]
    session = ContentSession(harness, image, mirror, 16 * MiB)
    session.write(5 * MiB + 8192, 4096)
    session.run()
    # Only the header (a new DataWriteGuid, once per open) changed in the
    # structures: no log entry, no BAT write.
    after = image.read_bytes()
    changed = [i for i in range(0, 4 * MiB, 4096)
               if after[i:i + 4096] != header_bytes[i:i + 4096]]
    assert changed and all(64 * 1024 <= i < 192 * 1024 for i in changed), changed
    check_against_mirror(harness, image, mirror, 512)


def test_data_write_guid_changes_once_per_open(harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB, MiB)
    ids = [run("vhdiinfo", image).stdout] if shutil.which("vhdiinfo") else []
    session = ContentSession(harness, image, mirror, 8 * MiB)
    session.write(0, 4096)
    session.write(3 * MiB, 4096)
    session.run()
    if ids:
        after = run("vhdiinfo", image).stdout
        identifier = [line for line in after.splitlines() if "Identifier" in line]
        assert identifier and identifier != [line for line in ids[0].splitlines() if "Identifier" in line]


def test_read_only_handle_refuses_writes(harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB, MiB)
    original = image.read_bytes()
    session = ContentSession(harness, image, mirror, 8 * MiB, read_only=True)
    session.write(0, 4096)
    answers = session.run(check=False)
    assert answers == ["open 0", f"error {ERROR_ACCESS_DENIED}"]
    assert image.read_bytes() == original


def test_bat_entry_pointing_into_structures_is_refused(harness: Path, tmp_path: Path) -> None:
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 8 * MiB, MiB)
    bat = 2 * MiB    # where qemu puts the BAT
    for target_mb in (0, 1, 2, 3):   # headers, log, BAT, metadata
        data = bytearray(image.read_bytes())
        entry = (target_mb << 20) | 6
        data[bat:bat + 8] = entry.to_bytes(8, "little")
        image.write_bytes(bytes(data))
        session = ContentSession(harness, image, mirror, 8 * MiB)
        session.write(0, 4096)
        answers = session.run(check=False)
        assert answers[1] == f"error {ERROR_BAT_CORRUPT}", (target_mb, answers)
        assert image.read_bytes() == bytes(data), target_mb    # not even a header


def test_allocating_write_survives_a_stop_after_every_file_change(fault_harness: Path, harness: Path,
                                                                 tmp_path: Path) -> None:
    pristine = tmp_path / "pristine.vhdx"
    qemu_image(pristine, 8 * MiB, MiB)
    old_mirror = tmp_path / "old.raw"
    setup = ContentSession(harness, pristine, old_mirror, 8 * MiB, seed=3)
    setup.write(0, MiB)                       # block 0 present
    setup.run()
    new_payload = bytes([0xA7]) * (MiB + 8192)
    offset = MiB - 4096                       # overwrites block 0, allocates blocks 1 and 2
    new = bytearray(old_mirror.read_bytes())
    new[offset:offset + len(new_payload)] = new_payload
    old = old_mirror.read_bytes()

    def every_sector_old_or_new(image: Path, stops: int, done: bool) -> None:
        for read_only in (True, False):
            dump = tmp_path / f"d{stops}{read_only}.raw"
            reader = ContentSession(harness, image, tmp_path / "unused.raw", 8 * MiB, read_only=read_only)
            reader.dump(dump)
            reader.run()
            got = dump.read_bytes()
            for s in range(0, 8 * MiB, 512):
                assert got[s:s + 512] in (old[s:s + 512], bytes(new[s:s + 512])), (stops, s)
            if done:
                assert got == bytes(new)
        run("qemu-img", "check", "-q", "-f", "vhdx", image)

    def write_and_flush(session: ContentSession) -> None:
        session.write(offset, len(new_payload), new_payload)
        session.flush()    # new blocks' entries reach the file at the flush

    stops = stop_after_each_file_change(
        fault_harness, pristine, tmp_path, write_and_flush, every_sector_old_or_new,
        finished=all_answered_ok(2))
    assert stops > 5    # data, flush, log entry, BAT, headers were all interrupted


@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_threaded_stripes_allocate_and_overwrite_in_parallel(tmp_path: Path, sanitizer: str) -> None:
    """16 threads write and read back 4 KiB pieces of stripes of their own,
    allocating blocks and overwriting present ones at once; under TSan a
    race between the allocation path, the BAT page cache and the plain
    writes fails the run."""
    flags = ["-fsanitize=thread"] if sanitizer == "thread" else ["-fsanitize=address,undefined"]
    skip_without_sanitizer(flags[0])
    binary = compile_harness(tmp_path, "content_main", engine_sources(), defines=flags)
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, 32 * MiB, MiB)
    session = ContentSession(binary, image, mirror, 32 * MiB)
    session.command("t 16 200")
    session.command("t 16 200")
    result = subprocess.run([str(binary), str(image), str(session.data)],
                            input="".join(c + "\n" for c in session.commands),
                            capture_output=True, text=True,
                            env={"TSAN_OPTIONS": "halt_on_error=1 exitcode=66", "PATH": "/usr/bin:/bin"},
                            ) if session.data.write_bytes(b"") == 0 else None
    assert result is not None
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["open 0", "ok", "ok"], result.stderr[-3000:]
    assert "WARNING: ThreadSanitizer" not in result.stderr
    run("qemu-img", "check", "-q", "-f", "vhdx", image)


def have_pyvhdi() -> bool:
    return Path("/usr/bin/python3").exists() and subprocess.run(
        ["/usr/bin/python3", "-c", "import pyvhdi"], capture_output=True).returncode == 0


def pyvhdi_child_bytes(child: Path, parent: Path) -> bytes:
    """The child's content as libvhdi reads it with the parent set."""
    code = ("import pyvhdi,sys; c=pyvhdi.file(); p=pyvhdi.file(); c.open(sys.argv[1]); "
            "p.open(sys.argv[2]); c.set_parent(p); "
            "sys.stdout.buffer.write(c.read_buffer(c.get_media_size()))")
    return subprocess.run(["/usr/bin/python3", "-c", code, str(child), str(parent)],
                          check=True, capture_output=True).stdout


def seven_zip_bytes(image: Path) -> bytes:
    """The content as 7-Zip extracts it (it finds a parent beside the child)."""
    return subprocess.run(["7zz", "e", "-so", str(image)], check=True, capture_output=True).stdout


def make_child(harness: Path, creator: Path, directory: Path, maker: str, size: int, block: int,
               sector: int) -> tuple[Path, Path, Path]:
    """A parent full of random data (qemu-made or engine-made) and an empty
    engine-made child of it beside it; the mirror holds the parent's
    content, which the child reads until it is written."""
    parent, child, mirror = directory / "base.vhdx", directory / "child.vhdx", directory / "mirror.raw"
    made_image(maker, creator, parent, size, block, "dynamic", sector)
    fill = ContentSession(harness, parent, mirror, size, seed=size + block)
    for start in range(0, size, block):
        fill.write(start, min(block, size - start))
    fill.run()
    made = json.loads(run(creator, child, "--type", "differencing", "--parent", parent,
                          "--relative", "base.vhdx", "--block", str(block), "--logical", str(sector)).stdout)
    assert made["status"] == 0, made
    return parent, child, mirror


def check_child(harness: Path, parent: Path, child: Path, mirror: Path, parent_bytes: bytes) -> None:
    """The child reads the mirror in the engine, in 7-Zip and in libvhdi;
    its structures are sound; the parent is untouched."""
    assert parent.read_bytes() == parent_bytes
    layout(child)
    dump = child.with_suffix(".dump")
    reader = ContentSession(harness, child, mirror, 0, read_only=True)
    reader.dump(dump)
    reader.run()
    expected = mirror.read_bytes()
    assert dump.read_bytes() == expected
    if shutil.which("7zz") and (len(expected) // 512) % 2 == 0:
        assert seven_zip_bytes(child) == expected
    if have_pyvhdi():
        # libvhdi takes the sector bitmap of a chunk without one from
        # FileOffsetMB 0 (the file type identifier); every chunk here has
        # one once a partial write went into it.
        assert pyvhdi_child_bytes(child, parent) == expected


@pytest.mark.parametrize("maker,block,sector", [
    ("qemu", 1 * MiB, 512),
    ("qemu", 2 * MiB, 512),
    ("engine", 1 * MiB, 512),
    ("engine", 2 * MiB, 4096),
])
def test_differencing_partial_writes_merge_child_and_parent_per_sector(
        harness: Path, creator: Path, tmp_path: Path, maker: str, block: int, sector: int) -> None:
    """Partial first writes into blocks the child does not hold mark only
    the sectors written (PARTIALLY_PRESENT, a sector bitmap block for the
    chunk); later writes set more bits, whole-block writes and blocks whose
    every sector got written are FULLY_PRESENT.  The engine, 7-Zip and
    libvhdi (with the parent set) all read the mirror: child sectors where
    written, the parent's everywhere else."""
    size = 12 * block
    parent, child, mirror = make_child(harness, creator, tmp_path, maker, size, block, sector)
    parent_bytes = parent.read_bytes()
    session = ContentSession(harness, child, mirror, size, seed=block + sector)
    session.write(sector, sector)                       # one sector of block 0
    session.write(block - 2 * sector, 4 * sector)       # across blocks 0 and 1
    session.write(3 * block, block)                     # a whole block
    session.write(5 * block + 7 * sector, 3 * sector)
    session.write(5 * block + 8 * sector, 9 * sector)   # more bits in a partial block
    for piece in range(0, block, 4 * sector):           # every sector of block 7, in pieces
        session.write(7 * block + piece, 4 * sector)
    random_writes(session, size, block, sector, 10)
    session.run()
    states = layout(child)
    assert states["partially present"] >= 2 and states["fully present"] >= 2, states
    assert states["bitmap present"] == 1, states
    check_child(harness, parent, child, mirror, parent_bytes)
    # A second open writes more on top, sharing the bitmap block.
    session = ContentSession(harness, child, mirror, size, seed=9)
    random_writes(session, size, block, sector, 6)
    session.run()
    check_child(harness, parent, child, mirror, parent_bytes)


def test_partial_write_sets_only_its_bits_and_promotes_a_full_block(
        harness: Path, creator: Path, tmp_path: Path) -> None:
    """The BAT and the bitmap as the file holds them: a one-sector write
    sets exactly one bit; writing the rest of the block makes it
    FULLY_PRESENT; a stale bit left in the bitmap for a block that is not
    present is cleared when that block is first written."""
    block, size, sector = MiB, 8 * MiB, 512
    parent, child, mirror = make_child(harness, creator, tmp_path, "qemu", size, block, sector)
    parent_bytes = parent.read_bytes()
    session = ContentSession(harness, child, mirror, size, seed=2)
    session.write(3 * sector, sector)
    session.run()
    raw = child.read_bytes()
    bat = bat_offset(raw)
    ratio = (1 << 23) * sector // block
    payload, bitmap = (struct.unpack_from("<Q", raw, bat + 8 * i)[0] for i in (0, ratio))
    assert payload & 7 == 7 and bitmap & 7 == 6
    bits = raw[(bitmap >> 20) * MiB:(bitmap >> 20) * MiB + block // sector // 8]
    assert bits == bytes([0x08]) + bytes(len(bits) - 1)
    # A stray bit for block 1 (not present): it must not show after block 1
    # is first written.
    stray = (bitmap >> 20) * MiB + block // sector // 8 + 5
    data = bytearray(raw)
    data[stray] = 0xFF
    child.write_bytes(bytes(data))
    session = ContentSession(harness, child, mirror, size, seed=3)
    session.write(block + 100 * sector, sector)
    session.write(0, 3 * sector)
    session.write(4 * sector, block - 4 * sector)       # block 0 now whole
    session.run()
    raw = child.read_bytes()
    assert struct.unpack_from("<Q", raw, bat)[0] & 7 == 6    # FULLY_PRESENT
    check_child(harness, parent, child, mirror, parent_bytes)


def bat_offset(raw: bytes) -> int:
    """Where the BAT region starts (region table 1)."""
    count = struct.unpack_from("<I", raw, 192 * 1024 + 8)[0]
    for i in range(count):
        entry = raw[192 * 1024 + 16 + 32 * i:192 * 1024 + 48 + 32 * i]
        if entry[:16] == BAT_REGION:
            return int(struct.unpack_from("<Q", entry, 16)[0])
    raise AssertionError("no BAT region")


def test_qemu_writes_into_an_engine_written_image_read_back_by_the_engine(
        harness: Path, tmp_path: Path) -> None:
    """The blocks the engine appended and logged are ones qemu takes up
    and extends: qemu-io writes over them and past them, and the engine's
    dump equals the mirror of both writers."""
    size, block = 16 * MiB, MiB
    image, mirror = tmp_path / "disk.vhdx", tmp_path / "mirror.raw"
    qemu_image(image, size, block)
    session = ContentSession(harness, image, mirror, size, seed=11)
    session.write(MiB + 512, 3 * MiB)
    session.write(9 * MiB, 4096)
    session.run()
    run("qemu-io", "-f", "vhdx", "-c", f"write -P 0x6d {2 * MiB + 4096} 8192",
        "-c", f"write -P 0x2e {12 * MiB} {MiB}", image)
    with open(mirror, "r+b") as raw:
        raw.seek(2 * MiB + 4096)
        raw.write(bytes([0x6D]) * 8192)
        raw.seek(12 * MiB)
        raw.write(bytes([0x2E]) * MiB)
    check_against_mirror(harness, image, mirror, 512)
