"""MirrorVirtualDisk and BreakMirrorVirtualDisk through _virtdisk.

The reference content is what the source disk reads through the engine;
qemu-img (which nobody here wrote) compares the mirror with the source, or
with a raw dump of a differencing chain it cannot read, and checks the
mirror's VHDX structures.  The engine's test hold (api/operation.h) stops a
copy after its first step, so that writes can be made while part of the
disk is copied and part is not."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

import _virtdisk as vd
import virtdisk
from virtdisk import VirtualDiskAccessMask as Access

MIB = 1024 * 1024
SIZE = 16 * MIB
STEP = MIB   # the copy's step (disk/mirror_copy.c)
ERROR_SUCCESS = 0
ERROR_ACCESS_DENIED = 5
ERROR_FILE_EXISTS = 80
ERROR_INVALID_PARAMETER = 87
ERROR_NOT_SUPPORTED = 50
ERROR_BUSY = 170
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997
ERROR_VHD_INVALID_SIZE = 0xC03A0012
ERROR_VHD_INVALID_TYPE = 0xC03A001B
ERROR_VHD_INVALID_STATE = 0xC03A001C
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}
FORMATS = ("vhd", "vhdx")
HOLD_VARIABLE = "VIRTDISK_TEST_OPERATION_HOLD"

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

# Runs in the first step, in the middle and at the end, some of them
# shorter than a sector run, so that the copy meets data everywhere.
WRITES = ((0, b"A", 3 * 4096), (5 * MIB + 512, b"B", 2 * MIB), (SIZE - 4096, b"C", 4096))
CHILD_WRITES = ((MIB, b"c", MIB), (9 * MIB, b"d", 4096))


def make_disk(path: Path, fmt: str, kind: Literal["fixed", "dynamic"] = "dynamic") -> Path:
    with virtdisk.create(path, SIZE, format=fmt, type=kind) as disk:
        for offset, byte, length in WRITES:
            disk.write(offset, byte * length)
    return path


def make_child(directory: Path, fmt: str) -> tuple[Path, Path]:
    base = make_disk(directory / f"base.{fmt}", fmt)
    child = directory / f"child.{fmt}"
    with virtdisk.create(child, parent=base, format=fmt) as disk:
        for offset, byte, length in CHILD_WRITES:
            disk.write(offset, byte * length)
    return base, child


def content(path: Path) -> bytes:
    with virtdisk.open(path) as disk:
        return disk.read(0, SIZE)


def qemu_compare(first: Path, first_format: str, second: Path, second_format: str) -> None:
    result = subprocess.run(["qemu-img", "compare", "-f", first_format, "-F", second_format,
                             str(first), str(second)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def qemu_check(path: Path) -> None:
    result = subprocess.run(["qemu-img", "check", "-f", "vhdx", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def start(disk: virtdisk.VirtualDisk, target: Path,
          flags: vd.MirrorVirtualDiskFlag = vd.MirrorVirtualDiskFlag.NONE) -> vd.Overlapped:
    overlapped = vd.Overlapped()
    vd.MirrorVirtualDisk(disk.handle, str(target), flags, overlapped=overlapped)
    return overlapped


def progress(disk: virtdisk.VirtualDisk, overlapped: vd.Overlapped) -> tuple[int, int, int]:
    status, current, total = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
    return int(status), int(current), int(total)


# How long a wait for the engine to come somewhere may last before the test
# fails instead of hanging: a guard against a stuck copy, not a measure of
# speed (every wait here ends within milliseconds when the code is right).
STUCK_AFTER = 120.0


def until_progress(disk: virtdisk.VirtualDisk, overlapped: vd.Overlapped,
                   reached: Callable[[int, int], bool], what: str) -> None:
    """Polls the progress until `reached(current, total)` holds while the
    operation is pending; fails, rather than hangs, if it never does."""
    deadline = time.monotonic() + STUCK_AFTER
    while True:
        status, current, total = progress(disk, overlapped)
        assert status == ERROR_IO_PENDING, (what, status, current, total)
        if reached(current, total):
            return
        assert time.monotonic() < deadline, f"the copy never came to {what}: at {current} of {total}"
        overlapped.wait(0.001)


def wait_mirrored(disk: virtdisk.VirtualDisk, overlapped: vd.Overlapped) -> None:
    """Until CurrentValue reaches CompletionValue while still pending (the
    mirrored state: the copy never ends by itself)."""
    until_progress(disk, overlapped, lambda current, total: total != 0 and current == total,
                   "the mirrored state")


def break_mirror(disk: virtdisk.VirtualDisk, overlapped: vd.Overlapped) -> None:
    vd.BreakMirrorVirtualDisk(disk.handle)
    assert overlapped.wait(60)
    assert progress(disk, overlapped) == (ERROR_SUCCESS, SIZE, SIZE)


def winerror_of(call: object, *arguments: object, **keywords: object) -> int:
    with pytest.raises(OSError) as raised:
        call(*arguments, **keywords)  # type: ignore[operator]
    return int(raised.value.winerror)  # type: ignore[attr-defined]


@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """While the file exists the copy waits after each step."""
    if vd.PLATFORM != "engine":
        pytest.skip("the engine's test hold")
    path = tmp_path / "hold"
    path.touch()
    monkeypatch.setenv(HOLD_VARIABLE, str(path))
    yield path


def start_held(disk: virtdisk.VirtualDisk, target: Path) -> vd.Overlapped:
    """A mirror come as far as the hold: its first step copied."""
    overlapped = start(disk, target)
    until_progress(disk, overlapped, lambda current, total: current != 0, "its first step")
    return overlapped


# ----------------------------------------------------------------------------- content

@needs_qemu
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_mirror_holds_the_source_content(tmp_path: Path, fmt: str,
                                         kind: Literal["fixed", "dynamic"]) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt, kind)
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target)
        wait_mirrored(disk, overlapped)
        break_mirror(disk, overlapped)
    qemu_compare(target, QEMU_FORMAT[fmt], source, QEMU_FORMAT[fmt])
    if fmt == "vhdx":
        qemu_check(target)
    with virtdisk.open(target) as mirror, virtdisk.open(source) as original:
        assert mirror.provider_subtype == original.provider_subtype
        assert mirror.virtual_size == original.virtual_size
        assert mirror.block_size == original.block_size
        assert mirror.virtual_disk_id == original.virtual_disk_id
        assert mirror.read(0, SIZE) == original.read(0, SIZE)


@needs_qemu
@pytest.mark.parametrize("fmt", FORMATS)
def test_differencing_disk_is_mirrored_flattened_into_a_dynamic_image(tmp_path: Path,
                                                                       fmt: str) -> None:
    _, child = make_child(tmp_path, fmt)
    chain = tmp_path / "chain.raw"
    chain.write_bytes(content(child))
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(child, read_only=False) as disk:
        overlapped = start(disk, target)
        wait_mirrored(disk, overlapped)
        break_mirror(disk, overlapped)
        assert disk.parent_paths is None     # the handle is on the flat copy now
    qemu_compare(target, QEMU_FORMAT[fmt], chain, "raw")
    if fmt == "vhdx":
        qemu_check(target)
    with virtdisk.open(target) as mirror:
        assert mirror.provider_subtype == 3   # dynamic
        assert mirror.parent_paths is None


# ----------------------------------------------------------------------------- writes

@needs_qemu
@pytest.mark.parametrize("fmt", FORMATS)
def test_writes_during_the_copy_reach_the_mirror(tmp_path: Path, fmt: str, hold: Path) -> None:
    """One write into the step already copied (goes to both), one past it
    (copied later), one across the copy's position."""
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start_held(disk, target)
        status, current, total = progress(disk, overlapped)
        assert status == ERROR_IO_PENDING and current == STEP < total == SIZE
        disk.write(4096, b"1" * 8192)
        disk.write(12 * MIB, b"2" * MIB)
        disk.write(STEP - 4096, b"3" * 8192)
        disk.flush()
        hold.unlink()
        wait_mirrored(disk, overlapped)
        disk.write(7 * MIB, b"4" * 4096)       # mirrored: to both
        disk.flush()
        expected = disk.read(0, SIZE)
        vd.CancelIoEx(disk.handle, overlapped)  # keeps the mirror file as it is
        assert overlapped.wait(60)
        assert progress(disk, overlapped)[0] == ERROR_OPERATION_ABORTED
    qemu_compare(target, QEMU_FORMAT[fmt], source, QEMU_FORMAT[fmt])
    assert content(target) == expected


@needs_qemu
def test_concurrent_writes_while_copying_are_all_mirrored(tmp_path: Path) -> None:
    """Writes from another thread all over the disk while the copy runs:
    whichever side of the copy each lands on, the mirror ends equal."""
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "mirror.vhdx"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target)

        def writer() -> None:
            for round_ in range(64):
                offset = (round_ * 7 % 16) * MIB + (round_ % 4) * 4096
                disk.write(offset, bytes([round_ + 1]) * 8192)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        wait_mirrored(disk, overlapped)
        disk.flush()
        break_mirror(disk, overlapped)
    qemu_compare(target, "vhdx", source, "vhdx")
    qemu_check(target)


@pytest.mark.parametrize("fmt", ["vhdx"])
def test_unmap_while_mirrored_reaches_the_mirror(tmp_path: Path, fmt: str) -> None:
    """A base's unmapped sectors read zeros in both; a differencing child's
    read its parent's again, which the flat mirror receives as data."""
    (tmp_path / "lone").mkdir()
    (tmp_path / "chain").mkdir()
    base = make_disk(tmp_path / "lone" / f"base.{fmt}", fmt)
    parent, child = make_child(tmp_path / "chain", fmt)
    parent_view = content(parent)
    for name, path in (("base-mirror", base), ("child-mirror", child)):
        target = tmp_path / f"{name}.{fmt}"
        with virtdisk.open(path, read_only=False) as disk:
            overlapped = start(disk, target)
            wait_mirrored(disk, overlapped)
            disk.unmap(MIB, MIB)
            disk.flush()
            expected = disk.read(0, SIZE)
            break_mirror(disk, overlapped)
        mirrored = content(target)
        assert mirrored == expected
        region = mirrored[MIB:2 * MIB]
        assert region == (bytes(MIB) if path == base else parent_view[MIB:2 * MIB])


@pytest.mark.parametrize("fmt", FORMATS)
def test_after_the_break_writes_go_to_the_mirror_only(tmp_path: Path, fmt: str) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    before = content(source)
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target)
        wait_mirrored(disk, overlapped)
        break_mirror(disk, overlapped)
        disk.write(2 * MIB, b"N" * MIB)
        assert disk.read(2 * MIB, MIB) == b"N" * MIB
        # Information comes from the mirror too: its file is the one the
        # handle holds, so the source opens for writing again.
        with virtdisk.open(source, read_only=False) as original:
            assert original.read(0, SIZE) == before
    assert content(source) == before
    assert content(target)[2 * MIB:3 * MIB] == b"N" * MIB


# ----------------------------------------------------------------------------- cancel, close

@pytest.mark.parametrize("fmt", FORMATS)
def test_cancel_during_the_copy_keeps_the_original_and_removes_the_copy(
        tmp_path: Path, fmt: str, hold: Path) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start_held(disk, target)
        assert target.exists()
        vd.CancelIoEx(disk.handle, overlapped)
        assert overlapped.wait(60)
        status, current, total = progress(disk, overlapped)
        assert status == ERROR_OPERATION_ABORTED and current < total
        assert not target.exists()
        disk.write(0, b"S" * 4096)            # still the original, writable
        hold.unlink()
        vd.ResizeVirtualDisk(disk.handle, SIZE)   # no longer busy
    assert content(source)[:4096] == b"S" * 4096


SMALL = 4 * MIB   # four copy steps: held after the first, second and third


@needs_qemu
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("steps", range(1, SMALL // STEP))
def test_a_cancel_after_any_step_of_the_copy_keeps_the_source_and_removes_the_copy(
        tmp_path: Path, fmt: str, steps: int, hold: Path) -> None:
    """The hold names the progress to stop at (api/operation.h): the copy
    passes the checkpoints before it and waits at the one after `steps`
    steps, where the cancel comes."""
    source = tmp_path / f"source.{fmt}"
    with virtdisk.create(source, SMALL, format=fmt) as disk:
        for offset, byte, length in ((0, b"a", 8192), (MIB + MIB // 2, b"b", MIB),
                                     (SMALL - 4096, b"c", 4096)):
            disk.write(offset, byte * length)
        before = disk.read(0, SMALL)
    raw = tmp_path / "before.raw"
    raw.write_bytes(before)
    target = tmp_path / f"mirror.{fmt}"
    hold.write_text(str(steps * STEP))
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target)
        until_progress(disk, overlapped, lambda current, total: current >= steps * STEP,
                       f"step {steps}")
        assert progress(disk, overlapped) == (ERROR_IO_PENDING, steps * STEP, SMALL)
        assert target.exists()
        vd.CancelIoEx(disk.handle, overlapped)
        assert overlapped.wait(60)
        assert progress(disk, overlapped) == (ERROR_OPERATION_ABORTED, steps * STEP, SMALL)
        assert not target.exists()
        assert disk.read(0, SMALL) == before
        disk.write(SMALL // 2, b"S" * 4096)   # still the original, writable
    after = bytearray(before)
    after[SMALL // 2:SMALL // 2 + 4096] = b"S" * 4096
    raw.write_bytes(after)
    qemu_compare(source, QEMU_FORMAT[fmt], raw, "raw")
    if fmt == "vhdx":
        qemu_check(source)
    assert not target.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_cancel_when_mirrored_keeps_the_copy(tmp_path: Path, fmt: str) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"mirror.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target)
        wait_mirrored(disk, overlapped)
        vd.CancelIoEx(disk.handle, overlapped)
        assert overlapped.wait(60)
        assert progress(disk, overlapped)[0] == ERROR_OPERATION_ABORTED
        disk.write(0, b"S" * 4096)            # the original only, now
        expected = disk.read(0, SIZE)
    mirrored = content(target)
    assert content(source) == expected
    assert mirrored[4096:] == expected[4096:]
    assert mirrored[:4096] == b"A" * 4096     # as it was at the cancel


def test_closing_the_handle_during_the_copy_cancels_and_waits(tmp_path: Path,
                                                              hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    before = content(source)
    target = tmp_path / "mirror.vhdx"
    disk = virtdisk.open(source, read_only=False)
    overlapped = start_held(disk, target)
    disk.close()
    assert overlapped.wait(0)                 # ended before close returned
    assert not target.exists()
    assert content(source) == before


def test_closing_the_handle_when_mirrored_leaves_both(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "mirror.vhdx"
    disk = virtdisk.open(source, read_only=False)
    overlapped = start(disk, target)
    wait_mirrored(disk, overlapped)
    disk.close()
    assert overlapped.wait(0)
    assert content(target) == content(source)


# ----------------------------------------------------------------------------- codes

def test_an_overlapped_is_required(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    with virtdisk.open(source, read_only=False) as disk:
        assert winerror_of(vd.MirrorVirtualDisk, disk.handle,
                           str(tmp_path / "m.vhdx")) == ERROR_INVALID_PARAMETER
        assert winerror_of(vd.MirrorVirtualDisk, disk.handle, "",
                           overlapped=vd.Overlapped()) == ERROR_INVALID_PARAMETER
        assert winerror_of(vd.MirrorVirtualDisk, disk.handle, str(tmp_path / "m.vhdx"), 0x100,
                           overlapped=vd.Overlapped()) == ERROR_INVALID_PARAMETER
    assert not (tmp_path / "m.vhdx").exists()


@pytest.mark.skipif(vd.PLATFORM != "engine", reason="the engine's decided codes")
def test_version_1_handles_and_skip_activation_are_refused(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "m.vhdx"
    with virtdisk.open(source, access=Access.ALL, rw_depth=1) as disk:
        assert winerror_of(start, disk, target) == ERROR_ACCESS_DENIED
    with virtdisk.open(source, get_info_only=True) as disk:
        assert winerror_of(start, disk, target) == ERROR_ACCESS_DENIED
    with virtdisk.open(source, read_only=False) as disk:
        assert winerror_of(start, disk, target,
                           vd.MirrorVirtualDiskFlag.SKIP_MIRROR_ACTIVATION) == ERROR_NOT_SUPPORTED
    assert not target.exists()


def test_an_existing_file_is_refused_without_existing_file(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "m.vhdx"
    target.write_bytes(b"keep me")
    with virtdisk.open(source, read_only=False) as disk:
        assert winerror_of(start, disk, target) == ERROR_FILE_EXISTS
    assert target.read_bytes() == b"keep me"


@needs_qemu
@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_file_receives_the_content(tmp_path: Path, fmt: str) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"m.{fmt}"
    with virtdisk.create(target, SIZE, format=fmt, type="dynamic") as other:
        other.write(10 * MIB, b"X" * MIB)     # old content the copy must overwrite
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start(disk, target, vd.MirrorVirtualDiskFlag.EXISTING_FILE)
        wait_mirrored(disk, overlapped)
        break_mirror(disk, overlapped)
    qemu_compare(target, QEMU_FORMAT[fmt], source, QEMU_FORMAT[fmt])


@pytest.mark.skipif(vd.PLATFORM != "engine", reason="the engine's decided codes")
def test_existing_file_of_another_size_format_or_type_is_refused(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    smaller = tmp_path / "small.vhdx"
    virtdisk.create(smaller, SIZE // 2, format="vhdx").close()
    other_format = tmp_path / "other.vhd"
    virtdisk.create(other_format, SIZE, format="vhd").close()
    _, child = make_child(tmp_path, "vhdx")
    missing = tmp_path / "missing.vhdx"
    flag = vd.MirrorVirtualDiskFlag.EXISTING_FILE
    with virtdisk.open(source, read_only=False) as disk:
        assert winerror_of(start, disk, smaller, flag) == ERROR_VHD_INVALID_SIZE
        assert winerror_of(start, disk, other_format, flag) == ERROR_VHD_INVALID_TYPE
        assert winerror_of(start, disk, child, flag) == ERROR_VHD_INVALID_TYPE
        assert isinstance(raised_by(start, disk, missing, flag), FileNotFoundError)
    assert not missing.exists()


def raised_by(call: object, *arguments: object) -> BaseException:
    with pytest.raises(OSError) as raised:
        call(*arguments)  # type: ignore[operator]
    return raised.value


def test_break_before_the_mirrored_state_is_refused(tmp_path: Path, hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "m.vhdx"
    with virtdisk.open(source, read_only=False) as disk:
        assert winerror_of(vd.BreakMirrorVirtualDisk, disk.handle) == ERROR_VHD_INVALID_STATE
        overlapped = start_held(disk, target)
        assert winerror_of(vd.BreakMirrorVirtualDisk, disk.handle) == ERROR_VHD_INVALID_STATE
        assert progress(disk, overlapped)[0] == ERROR_IO_PENDING   # still running
        hold.unlink()
        wait_mirrored(disk, overlapped)
        break_mirror(disk, overlapped)
        assert winerror_of(vd.BreakMirrorVirtualDisk, disk.handle) == ERROR_VHD_INVALID_STATE


def test_a_second_long_operation_is_busy(tmp_path: Path, hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "m.vhdx"
    second = tmp_path / "second.vhdx"
    with virtdisk.open(source, read_only=False) as disk:
        overlapped = start_held(disk, target)
        assert winerror_of(start, disk, second) == ERROR_BUSY
        assert not second.exists()
        assert winerror_of(vd.ResizeVirtualDisk, disk.handle, 2 * SIZE) == ERROR_BUSY
        assert winerror_of(vd.CompactVirtualDisk, disk.handle) == ERROR_BUSY
        hold.unlink()
        wait_mirrored(disk, overlapped)
        assert winerror_of(vd.ResizeVirtualDisk, disk.handle, 2 * SIZE) == ERROR_BUSY
        break_mirror(disk, overlapped)
        vd.ResizeVirtualDisk(disk.handle, 2 * SIZE)   # free again, on the mirror
    with virtdisk.open(target) as mirror:
        assert mirror.virtual_size == 2 * SIZE
    with virtdisk.open(source) as original:
        assert original.virtual_size == SIZE


def test_features_report_mirroring() -> None:
    features = vd.features()
    assert features["MirrorVirtualDisk"] is True
    assert features["BreakMirrorVirtualDisk"] is True
