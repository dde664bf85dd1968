"""MergeVirtualDisk of a resized VHDX child: the target takes the merged
disk's size first ([MS-VHDX] 2.6.1.2 moves Virtual Disk Size, an
IsVirtualDisk item, from the child to the parent), so that afterwards it
reads byte for byte what the chain read.

The bases are made by qemu-img and written by qemu-io; what the chain shows
is mirrored in a raw file built without the engine (qemu-img convert of the
base, cut or extended to the child's size, the child's writes applied), and
the merged base is checked against it with qemu-img compare, its size with
qemu-img info and vhdiinfo, its structures with qemu-img check.  Before the
merge libvhdi reads the chain where it can (it reads no parent past its
end).  Fault injection stops a merge after every file change of its size
change and its copy (tests/c/merge_main.c): the chain still opens and reads
what it read, and a merge run again finishes the job."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
import virtdisk
from c_harness import compile_harness
from test_create_vhd import run, tool
from test_resize import code_of, engine_size, libvhdi_size, qemu_size, write_mbr
from test_resize_differencing import pyvhdi_ranges
from test_vhdx_write import have_pyvhdi
from virtdisk import VirtualDiskAccessMask as Access
from virtdisk.errors import (
    ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH,
    ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA,
    VirtualDiskError,
)

MiB = 1 << 20
Resize = vd.ResizeVirtualDiskFlag
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx"}
ERROR_SUCCESS = 0
ERROR_IO_PENDING = 997

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the portable engine's files")

Writes = list[tuple[int, bytes]]


def qemu_base(path: Path, size: int, subformat: str = "dynamic") -> None:
    """A base made by qemu-img (a VHD at exactly `size`), data written by
    qemu-io at its start, its middle and its last MiB."""
    fmt = QEMU_FORMAT[path.suffix]
    options = f"subformat={subformat}" + (",force_size=on" if fmt == "vpc" else "")
    run(tool("qemu-img"), "create", "-q", "-f", fmt, "-o", options, path, str(size))
    run(tool("qemu-io"), "-f", fmt, "-c", "write -P 0x5a 0 1M", "-c", f"write -P 0xa5 {size // 2} 64k",
        "-c", f"write -P 0x3c {size - MiB} 1M", path)


def raw_of(image: Path, size: int, mirror: Path) -> None:
    """`image`'s own content (no parent) as a raw file, cut or extended to
    `size`, made by qemu-img."""
    run(tool("qemu-img"), "convert", "-f", QEMU_FORMAT[image.suffix], "-O", "raw", image, mirror)
    os.truncate(mirror, size)


def apply(mirror: Path, writes: Writes) -> None:
    with open(mirror, "r+b") as raw:
        for offset, data in writes:
            raw.seek(offset)
            raw.write(data)


def child_of(parent: Path, child: Path, new_size: int, writes: Writes, flags: int = 0) -> None:
    """An engine-made child of `parent`, resized to `new_size`, then given
    `writes`."""
    with virtdisk.create(child, parent=parent):
        pass
    with virtdisk.open(child, read_only=False) as disk:
        vd.ResizeVirtualDisk(disk.handle, new_size, Resize(flags))
        for offset, data in writes:
            disk.write(offset, data)


def compare(image: Path, mirror: Path) -> None:
    result = subprocess.run([tool("qemu-img"), "compare", "-f", QEMU_FORMAT[image.suffix], "-F", "raw",
                             str(image), str(mirror)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def check_clean(image: Path) -> None:
    if image.suffix == ".vhdx":
        run(tool("qemu-img"), "check", "-q", "-f", "vhdx", image)


def merged_base_is(base: Path, mirror: Path) -> None:
    """The merged base: the mirror's size for qemu and libvhdi, its content
    for qemu-img compare, clean structures, no parent."""
    size = mirror.stat().st_size
    assert qemu_size(base) == size
    assert libvhdi_size(base) == size
    check_clean(base)
    compare(base, mirror)
    with virtdisk.open(base) as disk:
        assert disk.parent_paths is None


def chain_reads(leaf: Path, mirror: Path) -> None:
    with virtdisk.open(leaf) as disk:
        assert disk.read(0, engine_size(leaf)) == mirror.read_bytes()


OLD = 64 * MiB
NEW = 96 * MiB
# Before the old end, across it, inside the grown part, its last sector.
PAST_THE_END: Writes = [(4096, b"\x11" * 8192), (OLD - 4096, b"\x22" * 8192),
                        (OLD + 3 * MiB + 512, b"\x33" * 4096), (NEW - 512, b"\x44" * 512)]


def grown_pair(directory: Path, base_suffix: str = ".vhdx", subformat: str = "dynamic",
               writes: Writes = PAST_THE_END) -> tuple[Path, Path, Path]:
    """A qemu-made base of OLD bytes and an engine-made VHDX child grown to
    NEW and written past the old end; the mirror of what the chain shows."""
    base, child, mirror = directory / f"base{base_suffix}", directory / "child.avhdx", directory / "chain.raw"
    qemu_base(base, OLD, subformat)
    child_of(base, child, NEW, writes)
    raw_of(base, NEW, mirror)
    apply(mirror, writes)
    chain_reads(child, mirror)
    if have_pyvhdi():
        (inside,) = pyvhdi_ranges(child, base, [(0, OLD)])
        assert inside == mirror.read_bytes()[:OLD]
    return base, child, mirror


def open_v1(path: Path, rw_depth: int) -> virtdisk.VirtualDisk:
    return virtdisk.open(path, access=Access.ALL, rw_depth=rw_depth)


# --------------------------------------------------------------------------- grow

@pytest.mark.parametrize("base_suffix, subformat", [(".vhdx", "dynamic"), (".vhdx", "fixed"),
                                                    (".vhd", "dynamic"), (".vhd", "fixed")])
def test_v1_merge_of_a_grown_child_grows_the_parent(tmp_path: Path, base_suffix: str,
                                                    subformat: str) -> None:
    base, child, mirror = grown_pair(tmp_path, base_suffix, subformat)
    with open_v1(child, 2) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
        assert disk.read(0, NEW) == mirror.read_bytes()   # the handle reads on
    merged_base_is(base, mirror)


def test_v2_merge_of_a_grown_child_grows_the_parent(tmp_path: Path) -> None:
    base, child, mirror = grown_pair(tmp_path)
    with virtdisk.open(child, read_only=False) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 2, merge_source_depth=1, merge_target_depth=2)
    merged_base_is(base, mirror)


def grown_chain(directory: Path) -> tuple[list[Path], Path, Path]:
    """base (OLD, qemu) <- middle (grown to 80 MiB, written past OLD) <-
    leaf (grown to NEW, written past 80 MiB); the mirrors of what the
    middle and the leaf show."""
    base, middle, leaf = directory / "base.vhdx", directory / "middle.avhdx", directory / "leaf.avhdx"
    middle_size = 80 * MiB
    middle_writes: Writes = [(OLD + MiB, b"\x55" * 3 * MiB), (middle_size - 4096, b"\x66" * 4096)]
    leaf_writes: Writes = [(OLD + 2 * MiB, b"\x77" * 4096), (middle_size + 512, b"\x88" * 1024),
                           (NEW - 4096, b"\x99" * 4096)]
    qemu_base(base, OLD)
    child_of(base, middle, middle_size, middle_writes)
    child_of(middle, leaf, NEW, leaf_writes)
    middle_view, leaf_view = directory / "middle.raw", directory / "leaf.raw"
    raw_of(base, middle_size, middle_view)
    apply(middle_view, middle_writes)
    shutil.copy(middle_view, leaf_view)
    os.truncate(leaf_view, NEW)
    apply(leaf_view, leaf_writes)
    chain_reads(middle, middle_view)
    chain_reads(leaf, leaf_view)
    return [base, middle, leaf], middle_view, leaf_view


def test_v1_depth_2_merges_a_grown_chain_into_the_base(tmp_path: Path) -> None:
    (base, _, leaf), _, leaf_view = grown_chain(tmp_path)
    with open_v1(leaf, 3) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=2)
    merged_base_is(base, leaf_view)


def test_v2_merges_a_grown_middle_into_the_base_and_the_leaf_reads_on(tmp_path: Path) -> None:
    (base, _, leaf), middle_view, leaf_view = grown_chain(tmp_path)
    with virtdisk.open(leaf, read_only=False) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 2, merge_source_depth=2, merge_target_depth=3)
        assert disk.read(0, NEW) == leaf_view.read_bytes()
    merged_base_is(base, middle_view)


def test_v1_into_a_middle_target_grows_it_and_keeps_its_parent(tmp_path: Path) -> None:
    (base, middle, leaf), _, leaf_view = grown_chain(tmp_path)
    base_before = base.read_bytes()
    with open_v1(leaf, 2) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    assert engine_size(middle) == NEW
    chain_reads(middle, leaf_view)
    assert base.read_bytes() == base_before
    with virtdisk.open(middle) as disk:
        assert disk.parent_paths == (str(base),)


def test_facade_merge_by_path_with_delete(tmp_path: Path) -> None:
    base, child, mirror = grown_pair(tmp_path)
    seen: list[tuple[int, int]] = []
    assert virtdisk.merge(child, delete=True, progress=lambda done, total: seen.append((done, total))) \
        == str(base)
    assert not child.exists()
    merged_base_is(base, mirror)
    # The progress counts the bytes the grow adds, then the copy.
    assert seen and seen[-1] == (NEW - OLD + NEW, NEW - OLD + NEW)


# --------------------------------------------------------------------------- progress

def test_progress_counts_the_grow_then_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, child, mirror = grown_pair(tmp_path)
    # While the file exists the merge waits at its checkpoints (api/operation.h).
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))
    total = (NEW - OLD) + NEW
    with open_v1(child, 2) as disk:
        overlapped = vd.Overlapped()
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1, overlapped=overlapped)
        # The grow is counted whole, then the copy's steps; the merge holds
        # after the first of them.
        seen = set()
        while (current := vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).current_value) \
                <= NEW - OLD:
            seen.add(current)
        assert seen <= {0, NEW - OLD}
        status, current, completion = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
        assert status == ERROR_IO_PENDING
        assert completion == total
        assert current == NEW - OLD + MiB
        hold.unlink()
        assert overlapped.wait()
        assert tuple(vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)) == (
            ERROR_SUCCESS, total, total)
    merged_base_is(base, mirror)


def test_a_merge_cancelled_after_the_grow_runs_again_to_the_end(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    base, child, mirror = grown_pair(tmp_path)
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))
    with open_v1(child, 2) as disk:
        overlapped = vd.Overlapped()
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1, overlapped=overlapped)
        while vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).current_value <= NEW - OLD:
            pass
        vd.CancelIoEx(disk.handle, overlapped)
        assert overlapped.wait()
        assert vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).operation_status == 995
    hold.unlink()
    # The grow is done, the copy is not: the chain reads what it read.
    assert engine_size(base) == NEW
    chain_reads(child, mirror)
    with open_v1(child, 2) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    merged_base_is(base, mirror)


# --------------------------------------------------------------------------- shrink

def test_a_shrunk_child_shrinks_the_parent_when_its_partitions_end_within(tmp_path: Path) -> None:
    """The guest's MBR, which the child holds, ends at 33 MiB: the base's
    last 31 MiB, past the child's end, belong to no partition of the merged
    disk and go."""
    base, child, mirror = tmp_path / "base.vhdx", tmp_path / "child.avhdx", tmp_path / "chain.raw"
    qemu_base(base, OLD)
    small = 40 * MiB
    with virtdisk.create(child, parent=base):
        pass
    write_mbr(child, 2048, 32 * 2048)
    writes: Writes = [(small - 4096, b"\x12" * 4096)]
    with virtdisk.open(child, read_only=False) as disk:
        mbr = disk.read(0, 512)
        vd.ResizeVirtualDisk(disk.handle, small, Resize(0))
        for offset, data in writes:
            disk.write(offset, data)
    raw_of(base, small, mirror)
    apply(mirror, [(0, mbr), *writes])
    chain_reads(child, mirror)
    with open_v1(child, 2) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    merged_base_is(base, mirror)


def test_a_shrink_no_partition_table_shows_safe_is_refused_until_the_target_is_shrunk(
        tmp_path: Path) -> None:
    """No partition table: the child's shrink needed ALLOW_UNSAFE, and the
    merge, which has no such flag, refuses to drop the base's tail; with
    the base shrunk by hand first (ALLOW_UNSAFE) it merges."""
    base, child, mirror = tmp_path / "base.vhdx", tmp_path / "child.avhdx", tmp_path / "chain.raw"
    qemu_base(base, OLD)
    small = 24 * MiB + 512
    writes: Writes = [(MiB, b"\x13" * 4096)]
    child_of(base, child, small, writes, int(Resize.ALLOW_UNSAFE_VIRTUAL_SIZE))
    raw_of(base, small, mirror)
    apply(mirror, writes)
    base_before, child_before = base.read_bytes(), child.read_bytes()
    with open_v1(child, 2) as disk, pytest.raises(VirtualDiskError) as error:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    assert code_of(error) == ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA
    assert base.read_bytes() == base_before and child.read_bytes() == child_before

    with virtdisk.open(base, read_only=False) as disk:
        vd.ResizeVirtualDisk(disk.handle, small, Resize.ALLOW_UNSAFE_VIRTUAL_SIZE)
    chain_reads(child, mirror)
    with open_v1(child, 2) as disk:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    merged_base_is(base, mirror)


def test_a_vhd_target_that_cannot_shrink_is_a_size_mismatch(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.avhdx"
    qemu_base(base, OLD)
    with virtdisk.create(child, parent=base):
        pass
    write_mbr(child, 2048, 8 * 2048)
    with virtdisk.open(child, read_only=False) as disk:
        vd.ResizeVirtualDisk(disk.handle, 16 * MiB, Resize(0))
    base_before, child_before = base.read_bytes(), child.read_bytes()
    with open_v1(child, 2) as disk, pytest.raises(VirtualDiskError) as error:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=1)
    assert code_of(error) == ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH
    assert base.read_bytes() == base_before and child.read_bytes() == child_before


def test_a_vhd_image_between_source_and_target_refuses_a_size_change(tmp_path: Path) -> None:
    """base.vhd <- middle.vhd <- leaf.avhdx grown: the base cannot grow
    under the VHD middle, which could then no longer open on it."""
    base, middle, leaf = tmp_path / "base.vhd", tmp_path / "middle.vhd", tmp_path / "leaf.avhdx"
    qemu_base(base, OLD)
    with virtdisk.create(middle, parent=base):
        pass
    child_of(middle, leaf, NEW, [(OLD, b"\x14" * 4096)])
    before = [path.read_bytes() for path in (base, middle, leaf)]
    with open_v1(leaf, 3) as disk, pytest.raises(VirtualDiskError) as error:
        vd.MergeVirtualDisk(disk.handle, 0, 1, merge_depth=2)
    assert code_of(error) == ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH
    assert [path.read_bytes() for path in (base, middle, leaf)] == before


# --------------------------------------------------------------------------- fault injection

@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("merge_harness")
    yield compile_harness(directory, "merge_main", [], defines=["-DVD_FAULT_INJECTION"], sanitize=True)


def merge_stopped(harness: Path, leaf: Path, depth: int, faults: int) -> dict[str, Any]:
    import json
    answer: dict[str, Any] = json.loads(run(harness, leaf, str(depth), str(faults)))
    return answer


def qemu_reads_size(base: Path, scratch: Path) -> int:
    """The size qemu reads from a copy of `base`, after qemu's own log
    replay (which also gives a VHDX a new DataWriteGuid, so it never runs
    on the chain itself)."""
    shutil.copy(base, scratch)
    if scratch.suffix == ".vhdx":
        run(tool("qemu-img"), "check", "-q", "-r", "all", "-f", "vhdx", scratch)
    size = qemu_size(scratch)
    scratch.unlink()
    return size


def child_opens(leaf: Path) -> bool:
    try:
        virtdisk.open(leaf).close()
    except virtdisk.ParentMismatchError:
        return False
    return True


def stop_after_every_step(harness: Path, chain: Path, leaf_name: str, base_name: str,
                          mirror: Path, old_size: int) -> int:
    """Merges copies of the chain in `chain`, stopped after 0, 1, 2, ...
    file changes, until one completes.  Each copy is put where the chain was
    made, so that the child's absolute parent locator names the copy too.
    After each stop the base shows its old or its new size (the engine, and
    qemu on a copy) and the chain opens and reads the mirror; a merge run
    again then leaves the base equal to the mirror, clean, with its new
    size.  Returns how many runs were stopped; both sizes must be seen."""
    pristine = chain.with_name("pristine")
    chain.rename(pristine)
    new_size = mirror.stat().st_size
    sizes = set()
    for faults in range(400):
        shutil.copytree(pristine, chain)
        leaf, base = chain / leaf_name, chain / base_name
        answer = merge_stopped(harness, leaf, 1, faults)
        try:
            size = engine_size(base)
            assert size in (old_size, new_size), size
            # A VHD's two footers change one after the other: qemu (which
            # reads the copy at 0) may see the other size in between.
            seen_by_qemu = qemu_reads_size(base, chain.with_name(f"qemu{base.suffix}"))
            assert seen_by_qemu == size or (base.suffix == ".vhd" and seen_by_qemu in (old_size, new_size))
            sizes.add(size)
            if answer["stopped"] and child_opens(leaf):
                chain_reads(leaf, mirror)
                assert merge_stopped(harness, leaf, 1, -1) == {"status": 0, "stopped": False}
            else:
                # Done, or stopped in its last step, after the copy: the
                # target's new identity (a VHDX's DataWriteGuid once the
                # child gives up parent_linkage2, a VHD's UniqueId) no
                # longer matches the child (vhdx_merge.c, vhd_merge.c).
                assert answer["status"] == 0 or answer["stopped"]
            merged_base_is(base, mirror)
        except AssertionError as error:
            raise AssertionError(f"stopped after {faults} file changes: {error}") from error
        shutil.rmtree(chain)
        if not answer["stopped"]:
            assert sizes == {old_size, new_size}
            return faults
    pytest.fail("the merge never completed")


SMALL_OLD = 8 * MiB
SMALL_NEW = 12 * MiB + 1536


@pytest.mark.parametrize("base_suffix", [".vhdx", ".vhd"])
def test_stop_at_every_step_of_a_grown_child_s_merge(tmp_path: Path, harness: Path,
                                                     base_suffix: str) -> None:
    chain = tmp_path / "chain"
    chain.mkdir()
    base, child, mirror = chain / f"base{base_suffix}", chain / "child.avhdx", tmp_path / "chain.raw"
    qemu_base(base, SMALL_OLD)
    writes: Writes = [(512, b"\x21" * 1024), (SMALL_OLD - 512, b"\x22" * 2048),
                      (SMALL_NEW - 1536, b"\x23" * 1536)]
    child_of(base, child, SMALL_NEW, writes)
    raw_of(base, SMALL_NEW, mirror)
    apply(mirror, writes)
    chain_reads(child, mirror)
    assert stop_after_every_step(harness, chain, child.name, base.name, mirror, SMALL_OLD) > 0
