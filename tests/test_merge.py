"""MergeVirtualDisk V1 and V2 on VHD and VHDX chains made by the engine.

The reference content is the chain's, read through the engine before the
merge; after a merge into the base, qemu (which reads no VHDX parents) can
compare the base with a raw dump of it, and check the base's structures."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from virtdisk import VirtualDiskAccessMask as Access

MIB = 1024 * 1024
SIZE = 16 * MIB
ERROR_SUCCESS = 0
ERROR_IO_PENDING = 997
ERROR_OPERATION_ABORTED = 995
FORMATS = ("vhd", "vhdx")

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


# Each level writes runs that overlap the level below, some only in part of a
# sector range, so that sectors of every level survive in the merged view.
WRITES = (
    ((0, b"B", 3 * MIB), (8 * MIB, b"b", MIB)),
    ((MIB, b"M", 2 * MIB), (12 * MIB, b"m", 4096)),
    ((512, b"L", 1024), (2 * MIB + 4096, b"l", 3 * MIB), (15 * MIB, b"e", MIB)),
)


def make_chain(directory: Path, fmt: str, levels: int) -> list[Path]:
    """A dynamic base and `levels - 1` children, base first, each written by
    WRITES."""
    paths = [directory / f"level{i}.{fmt}" for i in range(levels)]
    for i, path in enumerate(paths):
        disk = (virtdisk.create(path, SIZE, format=fmt, type="dynamic") if i == 0
                else virtdisk.create(path, parent=paths[i - 1], format=fmt))
        with disk:
            for offset, byte, length in WRITES[i]:
                disk.write(offset, byte * length)
    return paths


def content(path: Path) -> bytes:
    with virtdisk.open(path) as disk:
        return disk.read(0, SIZE)


def open_v1(path: Path, rw_depth: int) -> virtdisk.VirtualDisk:
    return virtdisk.open(path, access=Access.ALL, rw_depth=rw_depth)


def merge_v1(disk: virtdisk.VirtualDisk, depth: int) -> None:
    vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=depth)


def merge_v2(disk: virtdisk.VirtualDisk, source: int, target: int) -> None:
    vd.MergeVirtualDisk(disk.handle, 0, 2, merge_source_depth=source, merge_target_depth=target)


# ----------------------------------------------------------------------------- content

@pytest.mark.parametrize("fmt", FORMATS)
def test_v1_leaf_into_its_parent(tmp_path: Path, fmt: str) -> None:
    base, leaf = make_chain(tmp_path, fmt, 2)
    expected = content(leaf)
    assert content(base) != expected
    with open_v1(leaf, 2) as disk:
        merge_v1(disk, 1)
        assert disk.read(0, SIZE) == expected
    assert content(base) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_v1_depth_2_merges_two_levels_into_the_base(tmp_path: Path, fmt: str) -> None:
    base, middle, leaf = make_chain(tmp_path, fmt, 3)
    expected = content(leaf)
    with open_v1(leaf, 3) as disk:
        merge_v1(disk, 2)
    assert content(base) == expected
    with virtdisk.open(base) as disk:
        assert disk.parent_paths is None   # the base stays without parent


@pytest.mark.parametrize("fmt", FORMATS)
def test_v1_into_a_middle_target_keeps_its_parent(tmp_path: Path, fmt: str) -> None:
    base, middle, leaf = make_chain(tmp_path, fmt, 3)
    expected, base_before = content(leaf), content(base)
    with open_v1(leaf, 2) as disk:
        merge_v1(disk, 1)
    assert content(middle) == expected      # opens: its own parent is unchanged
    assert content(base) == base_before
    with virtdisk.open(middle) as disk:
        assert disk.parent_paths == (str(base),)


@pytest.mark.parametrize("fmt", FORMATS)
def test_v2_leaf_into_its_parent_on_a_version_2_handle(tmp_path: Path, fmt: str) -> None:
    base, leaf = make_chain(tmp_path, fmt, 2)
    expected = content(leaf)
    with virtdisk.open(leaf, read_only=False) as disk:
        merge_v2(disk, 1, 2)
        assert disk.read(0, SIZE) == expected
    assert content(base) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_v2_merges_the_middle_of_a_chain(tmp_path: Path, fmt: str) -> None:
    base, middle, leaf = make_chain(tmp_path, fmt, 3)
    middle_view, leaf_view = content(middle), content(leaf)
    with virtdisk.open(leaf, read_only=False) as disk:
        merge_v2(disk, 2, 3)
        assert disk.read(0, SIZE) == leaf_view   # the handle reads on as before
    assert content(base) == middle_view


@needs_qemu
def test_vhdx_base_after_merge_matches_a_raw_dump_and_checks_clean(tmp_path: Path) -> None:
    base, middle, leaf = make_chain(tmp_path, "vhdx", 3)
    raw = tmp_path / "chain.raw"
    raw.write_bytes(content(leaf))
    with open_v1(leaf, 3) as disk:
        merge_v1(disk, 2)
    compared = subprocess.run(["qemu-img", "compare", "-f", "vhdx", "-F", "raw", str(base), str(raw)],
                              capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    checked = subprocess.run(["qemu-img", "check", "-f", "vhdx", str(base)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("version", (1, 2))
def test_a_second_run_writes_nothing_more(tmp_path: Path, fmt: str, version: int) -> None:
    base, leaf = make_chain(tmp_path, fmt, 2)
    expected = content(leaf)
    with (open_v1(leaf, 2) if version == 1 else virtdisk.open(leaf, read_only=False)) as disk:
        for run in range(2):
            if version == 1:
                merge_v1(disk, 1)
            else:
                merge_v2(disk, 1, 2)
            if run == 0:
                size = base.stat().st_size
    assert base.stat().st_size == size
    assert content(base) == expected


# ----------------------------------------------------------------------------- identity

@pytest.mark.parametrize("fmt", FORMATS)
def test_other_children_of_the_target_report_a_parent_mismatch(tmp_path: Path, fmt: str) -> None:
    base, first = make_chain(tmp_path, fmt, 2)
    second = tmp_path / f"second.{fmt}"
    with virtdisk.create(second, parent=base, format=fmt):
        pass
    content(second)   # opens before the merge
    with open_v1(first, 2) as disk:
        merge_v1(disk, 1)
    with pytest.raises(virtdisk.ParentMismatchError):
        virtdisk.open(second).close()
    # The merged child stays, and no longer opens either.
    assert first.exists()
    with pytest.raises(virtdisk.ParentMismatchError):
        virtdisk.open(first).close()


def test_vhdx_is_virtual_disk_items_move_to_the_target(tmp_path: Path) -> None:
    base, leaf = make_chain(tmp_path, "vhdx", 2)
    new_id = uuid.uuid4()
    with virtdisk.open(leaf, read_only=False) as disk:
        disk.set_virtual_disk_id(new_id)
        other_size = 512 if disk.physical_sector_size == 4096 else 4096
        disk.set_physical_sector_size(other_size)
    with open_v1(leaf, 2) as disk:
        merge_v1(disk, 1)
    with virtdisk.open(base) as disk:
        assert disk.virtual_disk_id == new_id
        assert disk.physical_sector_size == other_size
        assert disk.parent_paths is None


# ----------------------------------------------------------------------------- codes

@pytest.fixture
def two_level(tmp_path: Path) -> list[Path]:
    return make_chain(tmp_path, "vhdx", 2)


@pytest.mark.parametrize("call", [
    pytest.param(lambda h: vd.MergeVirtualDisk(h, vd.MergeVirtualDiskFlag(1), 1, merge_depth=1),
                 id="flags"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 3), id="version-3"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 0), id="version-0"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 1, merge_depth=0), id="depth-0"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 1, merge_depth=2), id="depth-past-chain"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 2, merge_source_depth=0,
                                               merge_target_depth=2), id="source-0"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 2, merge_source_depth=2,
                                               merge_target_depth=2), id="target-not-above"),
    pytest.param(lambda h: vd.MergeVirtualDisk(h, 0, 2, merge_source_depth=1,
                                               merge_target_depth=3), id="target-past-chain"),
])
def test_bad_parameters_are_87(two_level: list[Path], call) -> None:  # type: ignore[no-untyped-def]
    before = two_level[0].read_bytes()
    with open_v1(two_level[1], 3) as disk, pytest.raises(virtdisk.InvalidParameterError):
        call(disk.handle)
    assert two_level[0].read_bytes() == before


def test_rw_depth_not_above_merge_depth_is_access_denied(two_level: list[Path]) -> None:
    with open_v1(two_level[1], 1) as disk, pytest.raises(virtdisk.AccessDeniedError):
        merge_v1(disk, 1)


@pytest.mark.parametrize("opener", [
    pytest.param(lambda p: virtdisk.open(p), id="v2-read-only"),
    pytest.param(lambda p: virtdisk.open(p, get_info_only=True), id="get-info-only"),
    pytest.param(lambda p: virtdisk.open(p, access=Access.READ | Access.ATTACH_RW, rw_depth=2),
                 id="v1-without-metaops"),
])
def test_handles_that_may_not_merge_get_access_denied(two_level: list[Path], opener) -> None:  # type: ignore[no-untyped-def]
    with opener(two_level[1]) as disk, pytest.raises(virtdisk.AccessDeniedError):
        merge_v2(disk, 1, 2)


def test_a_disk_without_parent_is_the_wrong_type(two_level: list[Path]) -> None:
    with open_v1(two_level[0], 2) as disk, pytest.raises(virtdisk.UnsupportedOperationError) as caught:
        merge_v1(disk, 1)
    assert caught.value.winerror == 0xC03A001B


def test_a_closed_handle_is_invalid(two_level: list[Path]) -> None:
    disk = open_v1(two_level[1], 2)
    disk.close()
    with pytest.raises(virtdisk.InvalidHandleError):
        merge_v1(disk, 1)


# ----------------------------------------------------------------------------- asynchronous

@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """While the file exists, the engine's operations wait at their
    checkpoints (api/operation.h); the merge's come after each step."""
    if vd.PLATFORM != "engine":
        pytest.skip("the engine's test hold")
    path = tmp_path / "hold"
    path.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(path))
    yield path


def start_held(disk: virtdisk.VirtualDisk, depth: int) -> vd.Overlapped:
    """A V1 merge started with an OVERLAPPED and come as far as the hold
    after its first step (CurrentValue is 0 until then)."""
    overlapped = vd.Overlapped()
    vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=depth, overlapped=overlapped)
    while vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).current_value == 0:
        pass
    return overlapped


def cancel(disk: virtdisk.VirtualDisk, overlapped: vd.Overlapped) -> tuple[int, int, int]:
    """CancelIoEx, the end awaited; the final progress."""
    vd.CancelIoEx(disk.handle, overlapped)
    assert overlapped.wait()
    status, current, total = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
    return int(status), int(current), int(total)


@pytest.mark.parametrize("fmt", FORMATS)
def test_async_merge_reports_progress_and_completes(tmp_path: Path, fmt: str, hold: Path) -> None:
    base, leaf = make_chain(tmp_path, fmt, 2)
    expected = content(leaf)
    with open_v1(leaf, 2) as disk:
        overlapped = start_held(disk, 1)
        status, current, total = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
        assert status == ERROR_IO_PENDING
        assert 0 < current < total == SIZE
        hold.unlink()
        assert overlapped.wait()
        assert tuple(vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)) == (
            ERROR_SUCCESS, SIZE, SIZE)
    assert content(base) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_cancelled_merge_ends_with_995_and_a_rerun_completes(tmp_path: Path, fmt: str,
                                                             hold: Path) -> None:
    base, leaf = make_chain(tmp_path, fmt, 2)
    expected, base_before = content(leaf), content(base)
    with open_v1(leaf, 2) as disk:
        status, current, total = cancel(disk, start_held(disk, 1))
        assert status == ERROR_OPERATION_ABORTED
        assert current < total
        assert disk.read(0, SIZE) == expected   # the leaf's view is unchanged
        hold.unlink()
        merge_v1(disk, 1)
    merged = content(base)
    assert merged == expected != base_before


@pytest.mark.parametrize("fmt", FORMATS)
def test_interrupted_merge_runs_again_on_a_new_open(tmp_path: Path, fmt: str, hold: Path) -> None:
    """A merge stopped after its first step, its handle closed: the chain
    still opens (VHDX: the child names the target's new DataWriteGuid as
    parent_linkage2), and a merge on a new handle finishes the work."""
    base, middle, leaf = make_chain(tmp_path, fmt, 3)
    expected = content(leaf)
    with open_v1(leaf, 3) as disk:
        assert cancel(disk, start_held(disk, 2))[0] == ERROR_OPERATION_ABORTED
    assert content(leaf) == expected
    hold.unlink()
    with open_v1(leaf, 3) as disk:
        merge_v1(disk, 2)
    assert content(base) == expected
    with pytest.raises(virtdisk.ParentMismatchError):
        virtdisk.open(leaf).close()
