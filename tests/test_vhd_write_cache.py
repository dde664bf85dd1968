"""VHD allocations as a disk with a write cache (vhd_commit.c).

An allocating write of a dynamic or differencing VHD puts its blocks'
bitmaps and data in the file but leaves their BAT entries waiting for the
next flush (or the close, or a record grown to VD_VHD_PENDING_MAX blocks).
Checked here against readers nobody here wrote (qemu-img, pyvhdi,
vhdiinfo) after the harness process is killed, as a crash of the engine
would end it: without a flush the old content and a sound image, with one
the new content; a first write of many blocks makes no fsync until the
flush (strace); a failed commit answers the flush and is done again by the
next one; a resize, and an identifier change (stopped after each of its
file changes too), write the waiting entries before they touch the BAT or
the footers.
"""

from __future__ import annotations

import re
import shutil
import struct
import sys
import uuid
from pathlib import Path

import pytest

import _virtdisk as vd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from content_driver import ContentSession, killed, stop_after_each_file_change  # noqa: E402
from traced_child import needs_strace  # noqa: E402
# The harnesses are test_vhd_write's fixtures: the same builds serve both.
from test_vhd_write import (check_against_mirror, check_structure, dump, engine_image,  # noqa: E402
                            every_sector_old_or_new, fault_harness, harness, has_pyvhdi,
                            pyvhdi_bytes, run, vhd_layout)
from vhd_builder import UNALLOCATED, W2KU, Locator, build_sparse  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 2 * MiB
SIZE = 16 * MiB
ERROR_WRITE_FAULT = 29
READ_16, WRITE_16 = 0x88, 0x8A
# Blocks the record holds before an allocation commits it (vhd_internal.h).
PENDING_MAX = 1024

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="drives the portable engine's data path"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img makes and compares images"),
]


def image_with_data(harness: Path, tmp_path: Path, kind: str) -> tuple[Path, Path | None, bytes]:
    """A dynamic VHD, or a differencing child of one full of 0x5a, with
    block 0 written and block 1 partly (flushed and closed): the image, its
    parent and its content."""
    image, parent = tmp_path / "disk.vhd", None
    if kind == "differencing":
        parent = tmp_path / "base.vhd"
        engine_image(parent, SIZE, "dynamic", BLOCK)
        run("qemu-io", "-f", "vpc", "-c", f"write -P 0x5a 0 {SIZE}", parent)
        engine_image(image, 0, kind, parent=parent)
    else:
        engine_image(image, SIZE, kind, BLOCK)
    setup = ContentSession(harness, image, tmp_path / "setup.raw", SIZE, seed=4)
    setup.write(0, BLOCK)
    setup.write(BLOCK + 4 * KiB, 4 * KiB)
    setup.flush()
    setup.run()
    return image, parent, dump(harness, image, tmp_path / "old.raw")


@pytest.mark.parametrize("flushed", [False, True], ids=["no flush", "flushed"])
@pytest.mark.parametrize("kind", ["dynamic", "differencing"])
def test_a_killed_writer_leaves_old_content_unless_it_flushed(harness: Path, tmp_path: Path,
                                                              kind: str, flushed: bool) -> None:
    image, parent, old = image_with_data(harness, tmp_path, kind)
    mirror = tmp_path / "mirror.raw"
    mirror.write_bytes(old)
    size_before = image.stat().st_size
    session = ContentSession(harness, image, mirror, SIZE, seed=5)
    session.write(4 * BLOCK + 512, 3 * BLOCK)       # allocates blocks 4-7, partly the first
    session.write(4 * BLOCK, 512)                   # the first sector of block 4: its bits
    if flushed:
        session.flush()
    answers = killed(session)
    assert answers == ["ok"] * (2 + flushed), answers

    # The blocks are in the file either way; only a flush lets the BAT name them.
    assert image.stat().st_size > size_before + 3 * BLOCK
    allocated = [i for i, entry in enumerate(vhd_layout(image)[3]) if entry != UNALLOCATED]
    assert allocated == ([0, 1, 4, 5, 6, 7] if flushed else [0, 1])
    expected = tmp_path / "expected.raw"
    expected.write_bytes(mirror.read_bytes() if flushed else old)
    check_against_mirror(harness, image, expected, parent)
    run("vhdiinfo", image)

    # Still an image to write: a later flushed write lands and reads back,
    # its block appended after the ones the kill left unused.
    again = ContentSession(harness, image, expected, SIZE, seed=6)
    again.write(3 * BLOCK, 4 * KiB)
    again.flush()
    again.run()
    check_against_mirror(harness, image, expected, parent)


def traced(session: ContentSession, trace: Path) -> list[str]:
    """Runs the session under strace, the fsync, fdatasync and pwrite64
    calls of its process written to `trace`; the answers."""
    answers = session.run(check=False, prefix=["strace", "-f", "-qq", "-o", str(trace),
                                               "-e", "trace=fsync,fdatasync,pwrite64"])
    assert answers[:1] == ["open 0"], answers
    return answers[1:]


def syncs_and_bat_writes(trace: Path, image: Path) -> tuple[int, int]:
    _, _, table_offset, table = vhd_layout(image)
    table_end = table_offset + 4 * len(table)
    syncs = bat_writes = 0
    for line in trace.read_text().splitlines():
        if re.search(r"\b(fsync|fdatasync)\(", line):
            syncs += 1
        written = re.search(r"pwrite64\(.*, (\d+), (\d+)\) += \d+", line)
        if written and table_offset <= int(written.group(2)) < table_end:
            bat_writes += 1
    return syncs, bat_writes


@needs_strace("strace counts the flushes")
@pytest.mark.parametrize("ending,syncs,bat_writes", [
    ("x", 0, 0),          # killed: nothing flushed, the BAT untouched
    ("e", 1, 1),          # closed: the close commits (data flushed, then the BAT)
    ("f e", 2, 1),        # flushed: the commit, then the BAT flushed too
], ids=["killed", "closed", "flushed"])
def test_first_writes_of_many_blocks_flush_only_at_the_flush(harness: Path, tmp_path: Path,
                                                             ending: str, syncs: int,
                                                             bat_writes: int) -> None:
    blocks = 16
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    engine_image(image, 2 * blocks * BLOCK, "dynamic", BLOCK)
    session = ContentSession(harness, image, mirror, 2 * blocks * BLOCK, seed=7)
    for block in range(blocks):                     # one request per block
        session.write(block * BLOCK, BLOCK)
    for command in ending.split():
        session.command(command)
    trace = tmp_path / "trace.txt"
    answers = traced(session, trace)
    assert answers[:blocks] == ["ok"] * blocks, answers
    assert syncs_and_bat_writes(trace, image) == (syncs, bat_writes)
    allocated = [i for i, entry in enumerate(vhd_layout(image)[3]) if entry != UNALLOCATED]
    assert allocated == ([] if ending == "x" else list(range(blocks)))
    if ending != "x":
        run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
    check_structure(image)


@needs_strace("strace counts the flushes")
def test_a_record_at_its_bound_commits_by_itself(harness: Path, tmp_path: Path) -> None:
    """4 KiB blocks (the builder's: the engine creates none so small), one
    write over 1100 of them, in allocations of 64 blocks: the 17th finds
    the record full and commits the 1024 before it."""
    block, blocks = 4 * KiB, PENDING_MAX + 76
    size = blocks * block
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    image.write_bytes(build_sparse(size, block, {}))
    session = ContentSession(harness, image, mirror, size, seed=8)
    session.write(0, size)
    session.command("x")
    trace = tmp_path / "trace.txt"
    assert traced(session, trace) == ["ok"]
    assert syncs_and_bat_writes(trace, image) == (1, PENDING_MAX * 4 // 4096)
    allocated = [i for i, entry in enumerate(vhd_layout(image)[3]) if entry != UNALLOCATED]
    assert allocated == list(range(PENDING_MAX))
    expected = tmp_path / "expected.raw"
    written = mirror.read_bytes()
    expected.write_bytes(written[:PENDING_MAX * block] + bytes(size - PENDING_MAX * block))
    check_against_mirror(harness, image, expected)


def test_a_failed_commit_answers_the_flush_and_the_next_flush_does_it(fault_harness: Path,
                                                                        harness: Path,
                                                                        tmp_path: Path) -> None:
    image, _, old = image_with_data(harness, tmp_path, "dynamic")
    mirror = tmp_path / "mirror.raw"
    mirror.write_bytes(old)
    session = ContentSession(fault_harness, image, mirror, SIZE, seed=9)
    session.write(4 * BLOCK, 2 * BLOCK)
    session.command("k 0")          # the commit's data flush fails
    session.flush()
    session.command("k 1")          # its data flush passes, its BAT write fails
    session.flush()
    session.command("k -1")         # the disk works again
    session.flush()
    answers = killed(session)
    assert answers == ["ok", "ok", f"error {ERROR_WRITE_FAULT}", "ok", f"error {ERROR_WRITE_FAULT}",
                       "ok", "ok"], answers
    check_against_mirror(harness, image, mirror)


def scsi_transfer(handle: vd.VirtualDiskHandle, opcode: int, offset: int, data: bytearray) -> None:
    """One READ (16) or WRITE (16) of `data` at byte `offset`, GOOD."""
    cdb = struct.pack(">BBQIBB", opcode, 0, offset // 512, len(data) // 512, 0, 0)
    answer = vd.RawSCSIVirtualDisk(handle, cdb, data_in=opcode == READ_16, data=memoryview(data))
    assert answer.scsi_status == 0, answer


@pytest.mark.parametrize("new_size,locator", [(64 * MiB, False), (512 * MiB, False), (512 * MiB, True)],
                         ids=["table in place", "table grows", "table moves"])
def test_a_resize_after_unflushed_writes_keeps_them(tmp_path: Path, new_size: int,
                                                    locator: bool) -> None:
    """Through the extension, with no flush between the write and the
    resize (the facade would flush first).  The resize reads the BAT from
    the file (a new table, where locator data behind the old one keeps it
    from growing, starts as a copy of it) and the handle reloads the image
    after it: the entries the write left waiting are committed first, so
    the same handle reads the write back, and so do qemu and libvhdi."""
    image, mirror = tmp_path / "disk.vhd", tmp_path / "mirror.raw"
    if locator:
        image.write_bytes(build_sparse(SIZE, BLOCK, {}, locators=[Locator(W2KU, b"x" * 600)]))
    else:
        engine_image(image, SIZE, "dynamic", BLOCK)
    data = bytearray(range(256)) * (3 * BLOCK // 256)
    back = bytearray(len(data))
    unknown = vd.VirtualStorageType(0, vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
    with vd.OpenVirtualDisk(unknown, str(image), 0, 0, 2) as handle:
        vd.AttachVirtualDisk(handle, vd.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
        scsi_transfer(handle, WRITE_16, 4 * BLOCK, data)
        # Still attached: a detach would flush.
        vd.ResizeVirtualDisk(handle, new_size)
        scsi_transfer(handle, READ_16, 4 * BLOCK, back)
    assert back == data
    with open(mirror, "wb") as raw:
        raw.truncate(new_size)
        raw.seek(4 * BLOCK)
        raw.write(data)
    run("qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, mirror)
    run("vhdiinfo", image)
    if has_pyvhdi():
        assert pyvhdi_bytes(image) == mirror.read_bytes()


def footer_identifier(image: Path) -> uuid.UUID:
    """The end footer's UniqueId (bytes 68-83, RFC 4122 order)."""
    with open(image, "rb") as handle:
        handle.seek(-512 + 68, 2)
        return uuid.UUID(bytes=handle.read(16))


def test_an_identifier_change_after_unflushed_writes_keeps_them(harness: Path,
                                                                tmp_path: Path) -> None:
    """SetVirtualDiskInformation rewrites the footers: the entries the
    writes left waiting are committed first, so a writer killed right
    after it keeps both the writes and the new identifier."""
    image, _, old = image_with_data(harness, tmp_path, "dynamic")
    mirror = tmp_path / "mirror.raw"
    mirror.write_bytes(old)
    identifier = uuid.UUID("6a1c0e2d-93b4-4f57-8d21-c0ffee000009")
    session = ContentSession(harness, image, mirror, SIZE, seed=12)
    session.write(4 * BLOCK, 2 * BLOCK)
    session.command(f"i {identifier}")
    assert killed(session) == ["ok", "ok"]
    assert footer_identifier(image) == identifier
    check_against_mirror(harness, image, mirror)


def test_a_stop_in_an_identifier_change_after_unflushed_writes_leaves_old_or_new(
        fault_harness: Path, harness: Path, tmp_path: Path) -> None:
    """The commit the update starts with and the update's own writes, each
    a stopping point: every sector old or new, the identifier old or new,
    the image sound; all new once it ran through."""
    pristine, _, old = image_with_data(harness, tmp_path, "dynamic")
    before = footer_identifier(pristine)
    identifier = uuid.UUID("6a1c0e2d-93b4-4f57-8d21-c0ffee00000a")
    payload = bytes([0x3e]) * (2 * BLOCK)
    new = bytearray(old)
    new[4 * BLOCK:6 * BLOCK] = payload

    def write_then_update(session: ContentSession) -> None:
        session.write(4 * BLOCK, len(payload), payload)
        session.command(f"i {identifier}")

    def old_or_new(image: Path, stops: int, done: bool) -> None:
        got = dump(harness, image, tmp_path / f"got{stops}.raw")
        every_sector_old_or_new(got, old, bytes(new), stops)
        assert footer_identifier(image) in (before, identifier), stops
        if done:
            assert got == bytes(new) and footer_identifier(image) == identifier
        # Between the update's two footer writes the copy at 0 still has
        # the old id (open trusts the end footer): they may differ there
        # and in the checksum, and the blocks are checked as if equal.
        data = bytearray(image.read_bytes())
        assert data[:64] == data[-512:-448] and data[84:512] == data[-428:], stops
        data[:512] = data[-512:]
        shape = tmp_path / f"shape{stops}.vhd"
        shape.write_bytes(data)
        check_structure(shape)

    stops = stop_after_each_file_change(fault_harness, pristine, tmp_path, write_then_update,
                                        old_or_new, finished=lambda answers: answers == ["ok", "ok"])
    # The write's footer, bitmaps and data, the commit's flush and BAT
    # write, the two footers and the flush of the update.
    assert stops >= 8, stops
