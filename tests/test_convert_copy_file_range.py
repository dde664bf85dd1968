"""Conversions to a raw file copied in the engine (``_virtdisk.copy_to_file``,
``vd_engine_copy_to_file``): runs of data an image file holds go from file
to file with copy_file_range(2), runs the disk does not hold stay holes.

strace shows the path taken (copy_file_range calls, and the pwrite64 calls
of the fallback when the kernel refuses a copy between two file systems);
``qemu-img compare`` and ``qemu-img map`` (tools nobody here wrote) check
the content and that the destination's data lies only where the source
image holds data.  Differencing sources merge child and parent run by run.
Also: ``durable`` of a conversion the engine copies image to image syncs
(strace counts fsync), the default does not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).parent))
from conversion_sources import QEMU_FORMAT, qemu_made, written_child  # noqa: E402
from traced_conversions import (  # noqa: E402
    DATA, DATA_BYTES, ENGINE_COPY_MARKS, MIB, SIZE, copied_bytes, copies_in_step,
    directory_on_dev_shm, dirty_vhdx, first_vhd_block_data, needs_strace, raw_source, run,
    same_content, source_image, traced_conversion)

pytestmark = ENGINE_COPY_MARKS


def data_ranges(path: Path, fmt: str) -> list[tuple[int, int]]:
    """qemu-img map: the (start, end) ranges that hold data."""
    result = run("qemu-img", "map", "-f", fmt, "--output=json", path)
    assert result.returncode == 0, result.stderr
    ranges: list[tuple[int, int]] = []
    for entry in json.loads(result.stdout):
        if not entry["data"]:
            continue
        start, end = entry["start"], entry["start"] + entry["length"]
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)   # qemu-img splits runs at its blocks
        else:
            ranges.append((start, end))
    return ranges


def inside(ranges: list[tuple[int, int]], within: list[tuple[int, int]]) -> bool:
    return all(any(low <= start and end <= high for low, high in within)
               for start, end in ranges)


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_an_image_to_raw_goes_through_copy_file_range(tmp_path: Path, fmt: str,
                                                      kind: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = source_image(reference, tmp_path / f"source.{fmt}", fmt, kind)
    target = tmp_path / "copy.img"
    calls = traced_conversion(source, target, tmp_path / "trace")
    same_content(reference, target)
    assert calls["copy_file_range"], "no copy_file_range call"
    assert copied_bytes(calls["pwrite64"]) == 0, calls["pwrite64"][:5]
    # Nothing is written where the source image holds no data.
    assert inside(data_ranges(target, "raw"), data_ranges(source, QEMU_FORMAT[fmt]))
    assert calls["fsync"] == []


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_fixed_raw_destination_is_reserved_then_copied(tmp_path: Path, fmt: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = source_image(reference, tmp_path / f"source.{fmt}", fmt, "dynamic")
    target = tmp_path / "copy.img"
    calls = traced_conversion(source, target, tmp_path / "trace", type="fixed")
    assert target.read_bytes() == reference.read_bytes()
    assert calls["copy_file_range"], "no copy_file_range call"
    assert copied_bytes(calls["pwrite64"]) == 0, calls["pwrite64"][:5]
    assert os.stat(target).st_blocks * 512 >= SIZE


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_differencing_source_merges_run_by_run(tmp_path: Path, fmt: str) -> None:
    """Sectors the child holds come from the child's file, the rest from the
    parent's; the copy reads like the disk."""
    reference = raw_source(tmp_path / "reference.img")
    parent = qemu_made(reference, tmp_path / f"parent.{fmt}", fmt, "dynamic")
    child, merged = tmp_path / f"child.{fmt}", tmp_path / "expected.img"
    writes = [(512, 1024), (3 * MIB - 4096, 8192), (40 * MIB, 2 * MIB), (SIZE - 4096, 4096)]
    expected = written_child(parent, child, writes, reference.read_bytes(), merged)
    target = tmp_path / "copy.img"
    calls = traced_conversion(child, target, tmp_path / "trace")
    same_content(merged, target)
    assert target.read_bytes() == expected
    assert calls["copy_file_range"], "no copy_file_range call"
    allowed = data_ranges(parent, QEMU_FORMAT[fmt]) + [(0, 4 * MIB), (40 * MIB, 42 * MIB),
                                                       (SIZE - 2 * MIB, SIZE)]
    assert inside(data_ranges(target, "raw"), allowed)


@pytest.fixture
def other_file_system() -> Iterator[Path]:
    """A directory on /dev/shm, where copy_file_range from the test's own
    file system may answer EXDEV."""
    with directory_on_dev_shm("vd-copy-range-") as directory:
        if directory is None:
            pytest.skip("no /dev/shm")
        yield directory


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_copy_the_kernel_refuses_falls_back_to_pwrite(tmp_path: Path,
                                                        other_file_system: Path,
                                                        fmt: str) -> None:
    if os.stat(tmp_path).st_dev == os.stat(other_file_system).st_dev:
        pytest.skip("the test directory is on /dev/shm's file system")
    reference = raw_source(tmp_path / "reference.img")
    source = source_image(reference, other_file_system / f"source.{fmt}", fmt, "dynamic")
    target = tmp_path / "copy.img"
    calls = traced_conversion(source, target, tmp_path / "trace")
    same_content(reference, target)
    assert calls["copy_file_range"], "no copy_file_range call"
    refused = [line for line in calls["copy_file_range"] if "EXDEV" in line]
    if not refused:
        pytest.skip("this kernel copies between these file systems")
    # Refused once for the whole conversion, though the engine's copy runs
    # in calls of 64 MiB and data lies in more than one; the rest went
    # through pread + pwrite, every data byte.
    assert SIZE > 64 * MIB and DATA[-1][0] > 64 * MIB
    assert len(refused) == 1, calls["copy_file_range"]
    assert len(calls["copy_file_range"]) == len(refused)
    data = sum(min(length, SIZE - offset) for offset, length in DATA)
    assert copied_bytes(calls["pwrite64"]) >= data
    assert inside(data_ranges(target, "raw"), data_ranges(source, QEMU_FORMAT[fmt]))


@needs_strace
@pytest.mark.parametrize("suffix", [".img", ".vhdx"])
def test_runs_out_of_step_within_pages_go_through_a_buffer(tmp_path: Path, suffix: str) -> None:
    """qemu's dynamic VHD holds each block's data right after its 512-byte
    bitmap, on no 4 KiB boundary: the kernel would copy every page of it in
    two pieces, slower than a buffer does, so those runs go through pread +
    pwrite, to a raw file and into an image alike."""
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / "source.vhd", "vhd", "dynamic")
    if first_vhd_block_data(source) % 4096 == 0:
        pytest.skip("this qemu lays a VHD's block data on 4 KiB boundaries")
    target = tmp_path / f"copy{suffix}"
    calls = traced_conversion(source, target, tmp_path / "trace")
    same_content(reference, target)
    assert copies_in_step(calls["copy_file_range"]), calls["copy_file_range"][:5]
    assert copied_bytes(calls["pwrite64"]) >= DATA_BYTES


def test_a_dirty_vhdx_is_copied_as_its_log_says(tmp_path: Path) -> None:
    """A VHDX whose log still holds a change of a payload sector: read-only,
    the engine reads it through the log replayed in memory, so the file's
    bytes there are stale and the copy must not take them from the file."""
    image, dirty, expected = dirty_vhdx(tmp_path)
    target = tmp_path / "copy.img"
    virtdisk.convert(image, target)
    assert target.read_bytes() == expected
    assert image.read_bytes() == dirty


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_an_interrupt_leaves_no_raw_destination(tmp_path: Path, fmt: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / f"source.{fmt}", fmt, "dynamic")
    seen: list[int] = []

    def interrupt(done: int, total: int) -> None:
        seen.append(done)
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        virtdisk.convert(source, tmp_path / "copy.img", progress=interrupt)
    assert not (tmp_path / "copy.img").exists()
    assert seen[0] == 0 and 0 < seen[-1] < SIZE, seen


def test_progress_of_an_engine_copy(tmp_path: Path) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / "source.vhdx", "vhdx", "dynamic")
    seen: list[tuple[int, int]] = []
    virtdisk.convert(source, tmp_path / "copy.img", progress=lambda *step: seen.append(step))
    assert seen[0] == (0, SIZE) and seen[-1] == (SIZE, SIZE)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) > 2


def test_copy_to_file_checks_its_arguments(tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    virtdisk.create(image, 8 * MIB).close()
    with virtdisk.open(image, read_only=True) as disk, open(tmp_path / "out", "wb") as out:
        for offset, length, fd in [(1, 512, out.fileno()), (0, 100, out.fileno()),
                                   (0, 16 * MIB, out.fileno()), (0, 512, -1)]:
            with pytest.raises(virtdisk.InvalidParameterError):
                _virtdisk.copy_to_file(disk.handle, offset, length, fd)
        handle = disk.handle
    with open(tmp_path / "out", "wb") as out, pytest.raises(virtdisk.InvalidHandleError):
        _virtdisk.copy_to_file(handle, 0, 512, out.fileno())


def test_copy_to_file_of_a_range_writes_only_that_range(tmp_path: Path) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / "source.vhdx", "vhdx", "dynamic")
    target = tmp_path / "part.img"
    with virtdisk.open(source, read_only=True) as disk, open(target, "wb") as out:
        out.truncate(SIZE)
        _virtdisk.copy_to_file(disk.handle, MIB, 2 * MIB, out.fileno())
    expected = bytearray(SIZE)
    expected[MIB:3 * MIB] = reference.read_bytes()[MIB:3 * MIB]
    assert target.read_bytes() == bytes(expected)


@needs_strace
@pytest.mark.parametrize(("source_fmt", "fmt"), [("vhdx", "vhd"), ("vhd", "vhdx")])
def test_only_a_durable_image_to_image_conversion_syncs(tmp_path: Path, source_fmt: str,
                                                        fmt: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = qemu_made(reference, tmp_path / f"source.{source_fmt}", source_fmt, "dynamic")
    quick, durable = tmp_path / f"quick.{fmt}", tmp_path / f"durable.{fmt}"
    assert traced_conversion(source, quick, tmp_path / "quick.trace")["fsync"] == []
    assert traced_conversion(source, durable, tmp_path / "durable.trace",
                             durable=True)["fsync"]
    for image in (quick, durable):
        same_content(reference, image)


# ------------------------------------------------------------ raw files into images

def source_reads(source: Path, target: Path, trace: Path) -> tuple[int, int]:
    """Converts under strace: the bytes read from `source` by pread64 (the
    engine's copy) and by reads of a sector or more with read (the
    facade's; the format's detection reads a few bytes)."""
    script = (f"import virtdisk; virtdisk.convert({str(source)!r}, {str(target)!r})")
    result = subprocess.run(["strace", "-f", "-qq", "-y", "-o", str(trace), "-e",
                             "trace=pread64,read", sys.executable, "-c", script],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    by_pread = by_read = 0
    for line in trace.read_text().splitlines():
        if f"<{source}>" not in line:
            continue
        found = re.search(r"= (\d+)$", line)
        count = int(found.group(1)) if found else 0
        if re.search(r"\bpread64\(", line):
            by_pread += count
        elif re.search(r"\bread\(", line) and count >= 512:
            by_read += count
    return by_pread, by_read


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_raw_file_is_written_into_an_image_by_the_engine(tmp_path: Path, fmt: str) -> None:
    """The source's data ranges (SEEK_DATA) are read in the engine, once."""
    reference = raw_source(tmp_path / "reference.img")
    target = tmp_path / f"copy.{fmt}"
    by_pread, by_read = source_reads(reference, target, tmp_path / "trace")
    same_content(reference, target)
    assert by_read == 0
    data = sum(min(length, SIZE - offset) for offset, length in DATA)
    assert data <= by_pread <= data + 8 * MIB


def test_copy_from_file_checks_its_arguments(tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    source = raw_source(tmp_path / "source.img", 8 * MIB)
    with open(source, "rb") as raw:
        with virtdisk.create(image, 8 * MIB) as disk:
            for fd, offset, length, piece in [(raw.fileno(), 1, 512, 512),
                                              (raw.fileno(), 0, 16 * MIB, 512),
                                              (raw.fileno(), 0, 512, 1000),
                                              (raw.fileno(), 0, 512, 3 * MIB),
                                              (raw.fileno(), 0, 512, 128 * MIB),
                                              (-1, 0, 512, 512)]:
                with pytest.raises(virtdisk.InvalidParameterError):
                    _virtdisk.copy_from_file(disk.handle, fd, offset, length, piece)
        with virtdisk.open(image, read_only=True) as disk, \
                pytest.raises(virtdisk.AccessDeniedError):
            _virtdisk.copy_from_file(disk.handle, raw.fileno(), 0, MIB, MIB)
        short = tmp_path / "short.img"
        short.write_bytes(bytes(4096))
        with open(short, "rb") as small, virtdisk.open(image) as disk, \
                pytest.raises(virtdisk.ImageIOError):
            _virtdisk.copy_from_file(disk.handle, small.fileno(), 0, MIB, MIB)
