"""Deferred BAT entries of new VHDX blocks (formats/vhdx/vhdx_pending.h).

A write that allocates blocks puts its data into the file and its BAT
entries into memory; the entries reach the file, in one log transaction
after one flush of the data, at the next flush, when 64 BAT sectors are
waiting, before any other update, or at close.  What is proven here, with
qemu reading what the engine left: allocating writes cost no flush until
the flush; a crash before it leaves the old content and a clean image; a
crash after it loses nothing; the bound commits on its own.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from content_driver import ContentSession, build_content_harness, killed  # noqa: E402
from traced_child import needs_strace  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="qemu-img and qemu-io make and read the images")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("vhdx_write_cache"))


def qemu_vhdx(path: Path, size: int, block: int) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o",
                    f"subformat=dynamic,block_size={block}", str(path), str(size)], check=True)


def qemu_reads(image: Path, offset: int, length: int, pattern: int) -> bool:
    """Whether qemu reads `length` bytes of `pattern` at `offset`."""
    result = subprocess.run(["qemu-io", "-f", "vhdx", "-r", "-c",
                             f"read -P {pattern} {offset} {length}", str(image)],
                            capture_output=True, text=True)
    return result.returncode == 0 and "Pattern verification failed" not in result.stdout


def qemu_check(image: Path) -> None:
    subprocess.run(["qemu-img", "check", "-q", "-f", "vhdx", str(image)], check=True)


def flushes_of(session: ContentSession, directory: Path) -> int:
    """Runs the session under strace, then kills it; the fsync and
    fdatasync calls it made."""
    trace = directory / "trace.txt"
    commands = len(session.commands)
    answers = killed(session, prefix=["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync",
                                      "-o", str(trace)])
    assert answers == ["ok"] * commands, answers
    return sum(1 for line in trace.read_text().splitlines() if "sync(" in line)


@needs_strace("strace counts the flushes")
def test_allocating_writes_cost_no_flush_until_the_flush(harness: Path, tmp_path: Path) -> None:
    blocks = 32
    counts = {}
    for ending in ("x", "f"):
        image = tmp_path / f"{ending}.vhdx"
        qemu_vhdx(image, blocks * MiB, MiB)
        session = ContentSession(harness, image, tmp_path / f"{ending}.raw", blocks * MiB)
        for block in range(blocks):       # one allocation per request
            session.write(block * MiB, MiB, bytes([block + 1]) * MiB)
        if ending == "f":
            session.flush()
        counts[ending] = flushes_of(session, tmp_path)
        qemu_check(image)
    # The first data change of an open writes a header with a new
    # DataWriteGuid and flushes it; nothing else flushes before the flush.
    assert counts["x"] <= 1, counts
    # The flush: the data once, the log transaction's steps, the file once more.
    assert counts["f"] - counts["x"] < blocks // 4, counts


def test_a_crash_before_the_flush_leaves_the_old_content(harness: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    qemu_vhdx(image, 8 * MiB, MiB)
    setup = ContentSession(harness, image, tmp_path / "mirror.raw", 8 * MiB)
    setup.write(0, MiB, bytes([0x11]) * MiB)       # block 0 present, closed: durable
    setup.run()
    session = ContentSession(harness, image, tmp_path / "mirror.raw", 8 * MiB)
    session.write(0, 4096, bytes([0x22]) * 4096)   # a present block: written in place
    session.write(2 * MiB, MiB, bytes([0x33]) * MiB)   # a new block
    assert killed(session) == ["ok", "ok"]
    qemu_check(image)
    assert qemu_reads(image, 0, 4096, 0x22)        # in place, so in the file
    assert qemu_reads(image, 4096, MiB - 4096, 0x11)
    assert qemu_reads(image, 2 * MiB, MiB, 0)      # never flushed: the old zeros


def test_a_crash_after_the_flush_loses_nothing(harness: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    qemu_vhdx(image, 8 * MiB, MiB)
    session = ContentSession(harness, image, tmp_path / "mirror.raw", 8 * MiB)
    for block in (1, 3, 5):
        session.write(block * MiB, MiB, bytes([block]) * MiB)
    session.flush()
    session.write(7 * MiB, MiB, bytes([7]) * MiB)  # after the flush: may be lost
    assert killed(session) == ["ok"] * 5
    qemu_check(image)
    for block in (1, 3, 5):
        assert qemu_reads(image, block * MiB, MiB, block), block
    for block in (0, 2, 4, 6, 7):
        assert qemu_reads(image, block * MiB, MiB, 0), block


def test_a_close_commits_what_waits(harness: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    qemu_vhdx(image, 8 * MiB, MiB)
    session = ContentSession(harness, image, tmp_path / "mirror.raw", 8 * MiB)
    session.write(4 * MiB, MiB, bytes([0x44]) * MiB)
    session.command("e")
    assert session.run() == ["open 0", "ok", "ok"]
    qemu_check(image)
    assert qemu_reads(image, 4 * MiB, MiB, 0x44)


def test_64_waiting_bat_sectors_commit_on_their_own(harness: Path, tmp_path: Path) -> None:
    """One 4 KiB BAT sector holds 512 entries: with 1 MiB blocks, writes
    512 MiB apart each land in a BAT sector of their own.  The 64th such
    write commits all 64; the ones after it wait, and a crash loses them."""
    stride, writes = 512 * MiB, 70
    image = tmp_path / "disk.vhdx"
    qemu_vhdx(image, writes * stride, MiB)
    session = ContentSession(harness, image, tmp_path / "unused.raw", 0)
    session.mirror = tmp_path / "unused.raw"
    for i in range(writes):
        session.commands.append(f"w {i * stride} 4096 {len(session.data_bytes)}")
        session.data_bytes.extend(bytes([i + 1]) * 4096)
    assert killed(session) == ["ok"] * writes
    qemu_check(image)
    committed = [qemu_reads(image, i * stride, 4096, i + 1) for i in range(writes)]
    assert committed == [True] * 64 + [False] * (writes - 64)
    for i in range(64, writes):
        assert qemu_reads(image, i * stride, 4096, 0), i


# -- differencing children: sector bitmap bits wait too ----------------------

@pytest.fixture(scope="module")
def creator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from c_harness import all_engine_sources, compile_harness
    return compile_harness(tmp_path_factory.mktemp("vhdx_write_cache_create"), "vhdx_create_main",
                           all_engine_sources(), sanitize=True)


def partial_writes(session: ContentSession, size: int, block: int) -> None:
    """64 KiB pieces a quarter of a block apart: every write sets bits of
    a block the child holds only in part, many in blocks it did not hold."""
    for offset in range(block // 8, size, block // 4):
        session.write(offset, 64 * 1024)


@needs_strace("strace counts the flushes")
def test_partial_child_writes_cost_no_flush_until_the_flush(harness: Path, creator: Path,
                                                           tmp_path: Path) -> None:
    from test_vhdx_write import make_child
    size, block = 16 * MiB, 2 * MiB
    parent, child, mirror = make_child(harness, creator, tmp_path, "engine", size, block, 512)
    session = ContentSession(harness, child, mirror, size, seed=9)
    partial_writes(session, size, block)
    assert flushes_of(session, tmp_path) <= 1      # the DataWriteGuid header


def test_partial_child_writes_lost_before_the_flush_kept_after_it(harness: Path, creator: Path,
                                                                 tmp_path: Path) -> None:
    from test_vhdx_write import check_child, make_child
    from vhdx_layout import layout
    size, block = 16 * MiB, 2 * MiB
    parent, child, mirror = make_child(harness, creator, tmp_path, "engine", size, block, 512)
    parent_bytes, pristine, old = parent.read_bytes(), child.read_bytes(), mirror.read_bytes()

    session = ContentSession(harness, child, mirror, size, seed=9)
    partial_writes(session, size, block)
    assert set(killed(session)) == {"ok"}
    new = mirror.read_bytes()
    assert new != old
    # A crash before the flush: the child reads its parent everywhere, its
    # structures sound.  (libvhdi is not asked: it misreads chunks that have
    # no sector bitmap block, which is all of them here.)
    assert parent.read_bytes() == parent_bytes
    layout(child)
    dump = tmp_path / "after-crash.raw"
    reader = ContentSession(harness, child, tmp_path / "unused.raw", 0, read_only=True)
    reader.dump(dump)
    reader.run()
    assert dump.read_bytes() == old

    # The same writes, flushed, then a crash: every one of them is there.
    child.write_bytes(pristine)
    session = ContentSession(harness, child, mirror, size, seed=9)
    partial_writes(session, size, block)
    session.flush()
    assert set(killed(session)) == {"ok"}
    assert mirror.read_bytes() == new
    check_child(harness, parent, child, mirror, parent_bytes)


def test_reads_see_bits_that_wait(harness: Path, creator: Path, tmp_path: Path) -> None:
    """Before any flush, the handle that wrote reads child and parent merged
    sector by sector with the bits it set (the record over the file)."""
    size, block = 16 * MiB, 2 * MiB
    from test_vhdx_write import make_child
    parent, child, mirror = make_child(harness, creator, tmp_path, "engine", size, block, 512)
    session = ContentSession(harness, child, mirror, size, seed=11)
    partial_writes(session, size, block)
    dump = tmp_path / "dump.raw"
    session.dump(dump)
    assert set(killed(session)) == {"ok"}
    assert dump.read_bytes() == mirror.read_bytes()
