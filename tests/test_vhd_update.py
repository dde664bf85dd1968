"""SetVirtualDiskInformation on VHD files, checked by readers nobody here wrote.

The identifier (footer UniqueId) and a differencing disk's parent are
changed through the extension; vhdiinfo (libvhdi), pyvhdi and qemu-img read
the result, and the engine reopens it.  The crash tests drive the format's
update ops (vhd_update.c) through tests/c/vhd_update_main.c built with
-DVD_FAULT_INJECTION: every prefix of an update's writes must reopen as the
old state or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
from c_harness import compile_harness
from test_create_vhd import VHD, compare, create, run, tool, vhdiinfo
from virtdisk.errors import (ERROR_VHD_CHILD_PARENT_ID_MISMATCH, ERROR_VHD_INVALID_TYPE,
                             ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH, VirtualDiskError)

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="compares the portable engine's files with Linux tools")

MiB = 1 << 20
ERROR_WRITE_FAULT = 29   # what the injected stop answers

Info = vd.GetVirtualDiskInfoVersion
Set = vd.SetVirtualDiskInfoVersion
FIXED = vd.CreateVirtualDiskFlag.FULL_PHYSICAL_ALLOCATION

UPDATE_SOURCES = ["vhd_update.c", "vhd_create.c", "vhd.c", "vhd_geometry.c", "image.c", "io.c",
                  "utf16.c", "parent_paths.c"]
PROBE_SOURCES = ["vhd.c", "vhd_geometry.c", "image.c", "io.c", "utf16.c"]


def qemu_size(path: Path) -> int:
    """The virtual size qemu-img info reads.  qemu-img has no check for vpc
    ("does not support checks"); its open validates the footer, the dynamic
    header and that the BAT's blocks lie inside the file."""
    info = json.loads(run(tool("qemu-img"), "info", "-f", "vpc", "--output=json", path))
    size: int = info["virtual-size"]
    return size


def open_rw(path: Path) -> Any:
    return vd.OpenVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.NONE, 0, 2, read_only=False)


def open_ro(path: Path, flags: int = 0) -> Any:
    return vd.OpenVirtualDisk(VHD, path, vd.VirtualDiskAccessMask.NONE, vd.OpenVirtualDiskFlag(flags), 2,
                              read_only=True)


def qemu_parent(path: Path, size: int = 64 * MiB) -> Path:
    """A dynamic VHD with data, written by qemu."""
    run(tool("qemu-img"), "create", "-f", "vpc", path, str(size))
    run(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0xab 1M 3M", "-c",
        "write -P 0x11 40M 512", path)
    return path


# --------------------------------------------------------------------------- identifier

@pytest.mark.parametrize("kind", ["fixed", "dynamic", "differencing"])
@pytest.mark.parametrize("version", [Set.IDENTIFIER, Set.VIRTUAL_DISK_ID])
def test_identifier_change(tmp_path: Path, kind: str, version: int) -> None:
    path = tmp_path / f"{kind}.vhd"
    if kind == "differencing":
        create(path, parent_path=qemu_parent(tmp_path / "base.vhd"))
    else:
        create(path, 32 * MiB, FIXED if kind == "fixed" else 0)
        run(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0x5c 3M 1M", path)
    original = tmp_path / "original.vhd"
    shutil.copy(path, original)
    old = uuid.UUID(vhdiinfo(path)["Identifier"])
    new = uuid.uuid4()

    with open_rw(path) as handle:
        if version == Set.IDENTIFIER:
            vd.SetVirtualDiskInformation(handle, version, unique_identifier=new)
        else:
            vd.SetVirtualDiskInformation(handle, version, virtual_disk_id=new)
        # The handle answers the new value at once.
        assert vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER) == new
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == new

    assert uuid.UUID(vhdiinfo(path)["Identifier"]) == new != old
    with open_ro(path) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER) == new
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == new
    assert path.stat().st_size == original.stat().st_size
    assert qemu_size(path) == qemu_size(original)
    compare(path, "vpc", original, "vpc")
    if kind != "fixed":
        # The copy of the footer at offset 0 (which qemu reads) says the same.
        data = path.read_bytes()
        assert data[:512] == data[-512:]
        assert uuid.UUID(bytes=data[68:84]) == new


def test_identifier_change_breaks_the_chain(tmp_path: Path) -> None:
    """A child records its parent's UniqueId: after the parent's changes,
    the child no longer finds it (Windows: "will break the chain")."""
    base = qemu_parent(tmp_path / "base.vhd")
    child = tmp_path / "child.vhd"
    create(child, parent_path=base)
    open_ro(child).close()
    with open_rw(base) as handle:
        vd.SetVirtualDiskInformation(handle, Set.IDENTIFIER, unique_identifier=uuid.uuid4())
    with pytest.raises(VirtualDiskError) as caught:
        open_ro(child)
    assert caught.value.winerror == ERROR_VHD_CHILD_PARENT_ID_MISMATCH


def test_physical_sector_size_is_not_stored_in_vhd(tmp_path: Path) -> None:
    path = tmp_path / "d.vhd"
    create(path, 8 * MiB)
    before = path.read_bytes()
    with open_rw(path) as handle:
        with pytest.raises(VirtualDiskError) as caught:
            vd.SetVirtualDiskInformation(handle, Set.PHYSICAL_SECTOR_SIZE,
                                         vhd_physical_sector_size=4096)
        assert caught.value.winerror == ERROR_VHD_INVALID_TYPE
        with pytest.raises(VirtualDiskError) as caught:
            vd.EnumerateVirtualDiskMetadata(handle)
        assert caught.value.winerror == ERROR_VHD_INVALID_TYPE
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- parent

def parent_snapshot(path: Path) -> Path:
    flat = path.with_suffix(".raw")
    run(tool("qemu-img"), "convert", "-f", "vpc", "-O", "raw", path, flat)
    return flat


@pytest.mark.parametrize("version", [Set.PARENT_PATH, Set.PARENT_LOCATOR])
def test_parent_moves_to_a_longer_path(tmp_path: Path, version: int) -> None:
    parent = qemu_parent(tmp_path / "p.vhd")
    child = tmp_path / "c.vhd"
    create(child, parent_path=parent)
    parent_id = uuid.UUID(vhdiinfo(parent)["Identifier"])
    size_before = child.stat().st_size

    # The copy keeps the identity; its content then differs from P's, so
    # reading P2's bytes proves the child follows the new locator.
    directory = tmp_path / "a" / "much" / "longer" / "directory" / "name" / "for" / "the" / "copy"
    directory.mkdir(parents=True)
    moved = directory / "p2-with-a-longer-file-name.vhd"
    shutil.copy(parent, moved)
    run(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0xe7 20M 64k", moved)
    assert uuid.UUID(vhdiinfo(moved)["Identifier"]) == parent_id

    with open_rw(child) as handle:
        if version == Set.PARENT_PATH:
            vd.SetVirtualDiskInformation(handle, version, parent_file_path=moved)
        else:
            vd.SetVirtualDiskInformation(handle, version, parent_file_path=moved,
                                         linkage_id=parent_id)
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved
        assert Path(location.paths[0]) == moved

    # The locator data did not fit the old space: the file grew.
    assert child.stat().st_size > size_before

    # libvhdi reads the new name and identity.
    fields = vhdiinfo(child)
    assert fields["Parent filename"] == str(moved)
    assert uuid.UUID(fields["Parent identifier"]) == parent_id

    # The engine reopens the chain through the new locators: unresolved, it
    # lists them (relative first, in the creator's Windows spelling).
    with open_ro(child, vd.OpenVirtualDiskFlag.NO_PARENTS) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert not location.parent_resolved
        assert location.paths == [".\\a\\much\\longer\\directory\\name\\for\\the\\copy\\"
                                  "p2-with-a-longer-file-name.vhd", str(moved)]
        assert vd.GetVirtualDiskInformation(handle, Info.PARENT_IDENTIFIER) == parent_id
    with open_ro(child) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved and Path(location.paths[0]) == moved

    # The engine reads P2's content through the child (a copy made from the
    # child as source reads through its chain).
    flattened = tmp_path / "flattened.vhd"
    create(flattened, source_path=child)
    compare(flattened, "vpc", moved, "vpc")

    # pyvhdi, given P2 as parent, reads what qemu reads from P2.
    pyvhdi = pytest.importorskip("pyvhdi")
    expected = parent_snapshot(moved).read_bytes()
    image, base = pyvhdi.file(), pyvhdi.file()
    image.open(str(child))
    base.open(str(moved))
    try:
        image.set_parent(base)
        assert image.get_parent_filename() == str(moved)
        assert image.read_buffer_at_offset(len(expected), 0) == expected
    finally:
        image.close()
        base.close()
    assert qemu_size(child) == qemu_size(parent)


def test_parent_change_keeps_room_for_new_blocks(tmp_path: Path) -> None:
    """The footer moves by whole 4 KiB steps, after every structure the
    header points to; the BAT and the copy of the footer at 0 are kept."""
    parent = qemu_parent(tmp_path / "p.vhd")
    child = tmp_path / "c.vhd"
    create(child, parent_path=parent)
    before = child.read_bytes()
    moved = tmp_path / "sub" / "p-moved.vhd"
    moved.parent.mkdir()
    shutil.copy(parent, moved)
    with open_rw(child) as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=moved)
    after = child.read_bytes()
    assert (len(after) - len(before)) % 4096 == 0
    assert after[-512:] == before[-512:] == after[:512]
    header = after[512:1536]
    table_offset = int.from_bytes(header[16:24], "big")
    assert after[table_offset:table_offset + 512] == before[table_offset:table_offset + 512]
    for entry in range(8):
        raw = header[576 + 24 * entry:600 + 24 * entry]
        length = int.from_bytes(raw[8:12], "big")
        offset = int.from_bytes(raw[16:24], "big")
        if length:
            assert len(before) - 512 <= offset and offset + length <= len(after) - 512


def test_repointing_twice(tmp_path: Path) -> None:
    parent = qemu_parent(tmp_path / "p.vhd")
    child = tmp_path / "c.vhd"
    create(child, parent_path=parent)
    first = tmp_path / "one" / "p.vhd"
    second = tmp_path / "two" / "deeper" / "p.vhd"
    for target in (first, second):
        target.parent.mkdir(parents=True)
        shutil.copy(parent, target)
    with open_rw(child) as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=first)
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=second)
    assert vhdiinfo(child)["Parent filename"] == str(second)
    with open_ro(child) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved and Path(location.paths[0]) == second
    assert qemu_size(child) == qemu_size(parent)


# --------------------------------------------------------------------------- crash ordering

Harness = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> tuple[Harness, Harness]:
    directory = tmp_path_factory.mktemp("vhd_update_harness")
    update = compile_harness(directory, "vhd_update_main", UPDATE_SOURCES,
                             defines=["-DVD_FAULT_INJECTION"], sanitize=True)
    probe = compile_harness(directory, "vhd_probe_main", PROBE_SOURCES, sanitize=True)

    def answer(binary: Path) -> Harness:
        def call(*args: str | Path) -> dict[str, Any]:
            got: dict[str, Any] = json.loads(run(binary, *args))
            return got
        return call

    return answer(update), answer(probe)


def guid(hexed: str) -> uuid.UUID:
    """A GUID the update harness prints (Windows layout bytes, in hex)."""
    return uuid.UUID(bytes_le=bytes.fromhex(hexed))


PARENT_FIELDS = ("parent_identifier", "parent_timestamp", "parent_relative_path",
                 "parent_absolute_path")


def interrupted(update: Harness, image: Path, *args: str | Path) -> list[tuple[int, Path]]:
    """Runs the update on fresh copies of `image`, letting 0, 1, 2, ...
    writes through, until it completes; returns (writes, copy) pairs, the
    complete run last."""
    runs = []
    for writes in range(64):
        copy = image.with_name(f"{image.stem}-{writes}{image.suffix}")
        shutil.copy(image, copy)
        status = update("--faults", str(writes), args[0], copy, *args[1:])["status"]
        runs.append((writes, copy))
        if status == 0:
            return runs
        assert status == ERROR_WRITE_FAULT, status
    raise AssertionError("the update never completed")


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
def test_identifier_crash_at_every_write(tmp_path: Path, harnesses: tuple[Harness, Harness],
                                         kind: str) -> None:
    update, probe = harnesses
    image = tmp_path / "disk.vhd"
    create(image, 16 * MiB, FIXED if kind == "fixed" else 0)
    old = probe(image)["identifier"]
    new = str(uuid.uuid4())
    runs = interrupted(update, image, "set-id", new)
    # Fixed: one footer write and a flush; dynamic: the end footer, the
    # copy at 0, a flush.
    assert len(runs) == (3 if kind == "fixed" else 4)
    seen = []
    for writes, copy in runs:
        answer = probe(copy)
        assert answer["status"] == 0, (writes, answer)
        assert answer["identifier"] in (old, new), writes
        assert answer["virtual_disk_id"] == answer["identifier"]
        seen.append(answer["identifier"])
    # Once the trusted footer is written the new id stays.
    assert seen[0] == old and seen[-1] == new
    assert seen == sorted(seen, key=lambda value: value == new)
    # The op's image answers what a reopen reads.
    done = update("set-id", runs[-1][1], new)
    assert guid(done["identifier"]) == guid(done["virtual_disk_id"]) == uuid.UUID(new)


def test_parent_change_crash_at_every_write(tmp_path: Path,
                                            harnesses: tuple[Harness, Harness]) -> None:
    """Re-pointing to a different parent (other identity, longer paths):
    every prefix opens with the old parent fields or the new ones, all of
    them, and the old state still reads through the old parent."""
    update, probe = harnesses
    parent = qemu_parent(tmp_path / "p.vhd")
    other_directory = tmp_path / "another" / "directory" / "with" / "a" / "long" / "name"
    other_directory.mkdir(parents=True)
    other = other_directory / "another-parent-of-the-same-size.vhd"
    run(tool("qemu-img"), "create", "-f", "vpc", other, str(64 * MiB))
    # ParentTimeStamp is the parent file's modification time, in seconds
    # since 2000-01-01 UTC (2021-01-01 is 662,774,400 of them).
    os.utime(other, (1609459200, 1609459200))
    child = tmp_path / "c.vhd"
    create(child, parent_path=parent)
    flat_parent = parent_snapshot(parent)

    old = probe(child)
    runs = interrupted(update, child, "set-parent", other)
    # Footer past the end, locator data, flush, header, flush.
    assert len(runs) == 6
    final = probe(runs[-1][1])
    assert final["parent_absolute_path"] == str(other)
    assert final["parent_timestamp"] == 662774400
    assert all(final[field] != old[field] for field in PARENT_FIELDS)
    for writes, copy in runs:
        answer = probe(copy)
        assert answer["status"] == 0, (writes, answer)
        state = tuple(answer[field] for field in PARENT_FIELDS)
        expected_old = tuple(old[field] for field in PARENT_FIELDS)
        expected_new = tuple(final[field] for field in PARENT_FIELDS)
        assert state in (expected_old, expected_new), (writes, answer)
        assert (state == expected_new) == (writes >= 4), writes
        assert qemu_size(copy) == qemu_size(child)
        if state == expected_old:
            flat = tmp_path / f"read-{writes}.raw"
            read = probe(copy, "--parent", parent, "--dump", flat)
            assert read["read_status"] == 0
            assert flat.read_bytes() == flat_parent.read_bytes()


def test_torn_header_write_is_refused(tmp_path: Path,
                                      harnesses: tuple[Harness, Harness]) -> None:
    """The header is 1024 bytes: should only its first sector reach the disk,
    the checksum no longer matches and open refuses the file with the
    documented code instead of mixing old locators with a new parent id."""
    update, probe = harnesses
    parent = qemu_parent(tmp_path / "p.vhd")
    other = tmp_path / "elsewhere" / "other.vhd"
    other.parent.mkdir()
    run(tool("qemu-img"), "create", "-f", "vpc", other, str(64 * MiB))
    child = tmp_path / "c.vhd"
    create(child, parent_path=parent)
    runs = interrupted(update, child, "set-parent", other)
    before_header = runs[3][1].read_bytes()   # locators and footer written
    complete = runs[-1][1].read_bytes()
    for torn_sector in (0, 1):
        keep = 512 + 512 * torn_sector
        torn = bytearray(before_header)
        torn[keep:keep + 512] = complete[keep:keep + 512]
        path = tmp_path / f"torn-{torn_sector}.vhd"
        path.write_bytes(bytes(torn))
        assert probe(path)["status"] == ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH


def test_relative_path_spellings_store_the_same(tmp_path: Path,
                                                harnesses: tuple[Harness, Harness]) -> None:
    """The relative location arrives as create.c computes it (".\\sub\\p")
    or '/'-separated; either way W2ru holds the Windows spelling."""
    update, probe = harnesses
    parent = qemu_parent(tmp_path / "p.vhd")
    moved = tmp_path / "sub" / "p.vhd"
    moved.parent.mkdir()
    shutil.copy(parent, moved)
    answers: list[str] = []
    for spelling in ([], ["--posix-relative"]):
        child = tmp_path / f"c{len(answers)}.vhd"
        create(child, parent_path=parent)
        done = update("set-parent", child, moved, *spelling)
        assert done["status"] == 0
        # The op's image answers what a reopen reads.
        reopened = probe(child)
        assert done["parent_paths"] == [reopened["parent_relative_path"],
                                        reopened["parent_absolute_path"]]
        assert guid(done["parent_identifier"]) == uuid.UUID(reopened["parent_identifier"])
        assert done["parent_timestamp"] == reopened["parent_timestamp"]
        assert done["file_size"] == child.stat().st_size
        assert reopened["parent_relative_path"] == ".\\sub\\p.vhd"
        answers.append(reopened["parent_relative_path"])
    assert answers[0] == answers[1]


@pytest.mark.parametrize("damage", ["short footer", "damaged end footer"])
def test_identifier_of_the_footer_open_trusts(tmp_path: Path,
                                              harnesses: tuple[Harness, Harness],
                                              damage: str) -> None:
    """A 511-byte footer (Virtual PC before 2004) is rewritten as one; with
    a damaged end footer the copy at 0, which open then uses, takes the id."""
    update, probe = harnesses
    image = tmp_path / "disk.vhd"
    if damage == "short footer":
        create(image, 8 * MiB, FIXED)
        os.truncate(image, image.stat().st_size - 1)   # the last byte is reserved, zero
    else:
        create(image, 8 * MiB)
        with open(image, "r+b") as raw:
            raw.seek(-512 + 64, os.SEEK_END)   # the checksum
            raw.write(b"\0\0\0\0")
    size = image.stat().st_size
    assert probe(image)["status"] == 0
    new = str(uuid.uuid4())
    assert update("set-id", image, new)["status"] == 0
    answer = probe(image)
    assert answer["status"] == 0 and answer["identifier"] == new
    # Only the engine is asked: libvhdi reads no 511-byte footer, and reads a
    # damaged end footer without checking its checksum.
    assert image.stat().st_size == size
