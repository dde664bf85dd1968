"""Image to image conversions (CreateVirtualDisk with a SourcePath) copied
run by run: the data a source's files hold goes into the new image's blocks
with copy_file_range(2), the rest is read through the source's chain, and
blocks the source holds no data in stay unallocated.

strace shows the path taken (copy_file_range calls, and how few bytes go
through pwrite64: the new image's structures only); `qemu-img compare`
against the source's bytes, `qemu-img check` (VHDX) and `vhdiinfo`
(libvhdi), tools nobody here wrote, check every result.  A copy the kernel
refuses (between two file systems) is asked for once per pair of files for
the whole conversion, then taken through pread + pwrite.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).parent))
from conversion_sources import written_child  # noqa: E402
from traced_conversions import (  # noqa: E402
    DATA_BYTES, ENGINE_COPY_MARKS, MIB, SIZE, copied_bytes, copies_in_step, directory_on_dev_shm,
    dirty_vhdx, needs_strace, raw_source, run, same_content, source_image, traced_conversion)

pytestmark = ENGINE_COPY_MARKS

# What a new image's structures take through pwrite64: headers, region
# tables, metadata, BAT entries, sector bitmaps, footers.
STRUCTURE_BYTES = 512 * 1024


def checked(image: Path, *, by_qemu: bool = True) -> None:
    """qemu-img check reads VHDX (but those with 4096-byte logical
    sectors); vhdiinfo (libvhdi) both formats."""
    if image.suffix == ".vhdx" and by_qemu:
        result = run("qemu-img", "check", "-f", "vhdx", image)
        assert result.returncode == 0, result.stdout + result.stderr
    if shutil.which("vhdiinfo") is not None:
        result = run("vhdiinfo", image)
        assert result.returncode == 0, result.stdout + result.stderr


def read_with_pyvhdi(image: Path) -> bytes:
    pyvhdi = pytest.importorskip("pyvhdi")
    file = pyvhdi.file()
    file.open(str(image))
    try:
        data: bytes = file.read_buffer(file.get_media_size())
        return data
    finally:
        file.close()


def refusals(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"= -1 (EXDEV|EINVAL|EOPNOTSUPP|ENOSYS)", line)]


PAIRS = [(source_fmt, fmt, kind) for source_fmt in ("vhd", "vhdx") for fmt in ("vhd", "vhdx")
         for kind in ("dynamic", "fixed")]


@needs_strace
@pytest.mark.parametrize(("source_fmt", "fmt", "kind"), PAIRS,
                         ids=["-".join(pair) for pair in PAIRS])
def test_an_image_is_copied_into_an_image_with_copy_file_range(
        tmp_path: Path, source_fmt: str, fmt: str, kind: str) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = source_image(reference, tmp_path / f"source.{source_fmt}", source_fmt, "dynamic")
    target = tmp_path / f"copy.{fmt}"
    calls = traced_conversion(source, target, tmp_path / "trace", type=kind)
    same_content(reference, target)
    checked(target)
    assert copied_bytes(calls["copy_file_range"]) >= DATA_BYTES, calls["copy_file_range"][:5]
    assert copies_in_step(calls["copy_file_range"])
    assert copied_bytes(calls["pwrite64"]) < STRUCTURE_BYTES, calls["pwrite64"][:5]


@needs_strace
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
@pytest.mark.parametrize("parent_fmt", ["vhd", "vhdx"])
def test_a_differencing_source_is_flattened_run_by_run(tmp_path: Path, parent_fmt: str,
                                                       fmt: str, kind: str) -> None:
    """Runs the child holds come from the child's file, the others from the
    parent's; the copy reads like the chain."""
    reference = raw_source(tmp_path / "reference.img")
    parent = source_image(reference, tmp_path / f"parent.{parent_fmt}", parent_fmt, "dynamic")
    child, merged = tmp_path / f"child.{parent_fmt}", tmp_path / "expected.img"
    writes = [(512, 1024), (3 * MIB - 4096, 8192), (40 * MIB, 2 * MIB), (SIZE - 4096, 4096)]
    written_child(parent, child, writes, reference.read_bytes(), merged)
    target = tmp_path / f"flat.{fmt}"
    calls = traced_conversion(child, target, tmp_path / "trace", type=kind)
    same_content(merged, target)
    checked(target)
    with virtdisk.open(target) as disk:
        assert disk.provider_subtype == (2 if kind == "fixed" else 3)   # no parent
    assert calls["copy_file_range"], "no copy_file_range call"
    if parent_fmt == "vhd":
        # Every sector a VHD holds is a run of its file, the child's over
        # the parent's; a VHDX child's partly written blocks are read
        # through the chain instead (the reads merge it with the parent).
        assert copied_bytes(calls["copy_file_range"]) >= DATA_BYTES
        assert copied_bytes(calls["pwrite64"]) < STRUCTURE_BYTES


@pytest.mark.parametrize(("source_sector", "fmt", "sector"),
                         [(4096, "vhdx", None), (4096, "vhd", None), (512, "vhdx", 4096),
                          (4096, "vhdx", 512)])
def test_logical_sector_sizes(tmp_path: Path, source_sector: int, fmt: str,
                              sector: int | None) -> None:
    reference = raw_source(tmp_path / "reference.img")
    source = tmp_path / "source.vhdx"
    virtdisk.convert(reference, source, sector_size=source_sector)
    target = tmp_path / f"copy.{fmt}"
    virtdisk.convert(source, target, sector_size=sector)
    if sector == 4096:
        # qemu opens no VHDX with 4096-byte logical sectors; libvhdi does.
        assert read_with_pyvhdi(target) == reference.read_bytes()
    else:
        same_content(reference, target)
    checked(target, by_qemu=sector != 4096)
    with virtdisk.open(target) as disk:
        # A new image's logical sector is 512 unless asked for.
        assert disk.sector_size == (sector or 512)


@pytest.fixture
def other_file_system() -> Iterator[Path]:
    with directory_on_dev_shm("vd-image-runs-") as directory:
        if directory is None:
            pytest.skip("no /dev/shm")
        yield directory


def skip_unless_apart(tmp_path: Path, other: Path) -> None:
    if os.stat(tmp_path).st_dev == os.stat(other).st_dev:
        pytest.skip("the test directory is on /dev/shm's file system")


@needs_strace
@pytest.mark.parametrize(("source_fmt", "fmt"), [("vhdx", "vhd"), ("vhd", "vhdx")])
def test_a_refused_image_copy_is_asked_for_once(tmp_path: Path, other_file_system: Path,
                                                source_fmt: str, fmt: str) -> None:
    skip_unless_apart(tmp_path, other_file_system)
    reference = raw_source(tmp_path / "reference.img")
    source = source_image(reference, other_file_system / f"source.{source_fmt}", source_fmt,
                          "dynamic")
    target = tmp_path / f"copy.{fmt}"
    calls = traced_conversion(source, target, tmp_path / "trace")
    same_content(reference, target)
    checked(target)
    assert calls["copy_file_range"], "no copy_file_range call"
    if not refusals(calls["copy_file_range"]):
        pytest.skip("this kernel copies between these file systems")
    assert len(calls["copy_file_range"]) == 1, calls["copy_file_range"]
    assert copied_bytes(calls["pwrite64"]) >= DATA_BYTES


@needs_strace
def test_a_refusal_is_remembered_per_pair_of_files(tmp_path: Path,
                                                   other_file_system: Path) -> None:
    """A child on another file system than its parent and the raw
    destination: the child's runs are refused once for the whole
    conversion (several calls of the engine's copy), the parent's still go
    through copy_file_range."""
    skip_unless_apart(tmp_path, other_file_system)
    reference = raw_source(tmp_path / "reference.img")
    parent = source_image(reference, tmp_path / "parent.vhd", "vhd", "dynamic")
    # A VHD child holds each written sector as a run of its file, one in
    # each of the engine's first two calls (64 MiB each).
    child, merged = other_file_system / "child.vhd", tmp_path / "expected.img"
    written_child(parent, child, [(2 * MIB, 4096), (70 * MIB, 4096)],
                  reference.read_bytes(), merged)
    target = tmp_path / "copy.img"
    calls = traced_conversion(child, target, tmp_path / "trace")
    same_content(merged, target)
    refused = refusals(calls["copy_file_range"])
    if not refused:
        pytest.skip("this kernel copies between these file systems")
    assert len(refused) == 1, refused
    # Everything of the parent's but what the child covers.
    assert copied_bytes(calls["copy_file_range"]) >= DATA_BYTES - 2 * 4096


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_dirty_vhdx_source_is_copied_as_its_log_says(tmp_path: Path, fmt: str) -> None:
    """A VHDX whose log still holds a change of a payload sector is read
    through the log replayed in memory: its file's bytes there are stale,
    so the copy must not take them from the file."""
    source, dirty, expected = dirty_vhdx(tmp_path)
    (tmp_path / "expected.img").write_bytes(expected)
    target = tmp_path / f"copy.{fmt}"
    virtdisk.convert(source, target)
    same_content(tmp_path / "expected.img", target)
    checked(target)
    assert source.read_bytes() == dirty


def image_fstats(trace: Path, *images: Path) -> int:
    """The fstat calls (newfstatat on an fd) a traced child made on the
    files of `images`, read from strace -y's fd paths."""
    names = [str(image.resolve()) for image in images]
    return sum(1 for line in trace.read_text().splitlines()
               if "fstat" in line and any(f"<{name}>" in line for name in names))


def flattened_fstats(directory: Path, switches: int) -> int:
    """Flattens a VHD child holding a sector in every other block of a full
    VHD parent, so that the copy switches files `switches` times; the
    fstat calls made on the chain's files."""
    directory.mkdir()
    reference = directory / "reference.img"
    reference.write_bytes(os.urandom(32 * MIB))
    parent = source_image(reference, directory / "parent.vhd", "vhd", "dynamic")
    child, merged = directory / "child.vhd", directory / "expected.img"
    writes = [(block * 4 * MIB, 4096) for block in range(switches // 2)]
    written_child(parent, child, writes, reference.read_bytes(), merged)
    target, trace = directory / "flat.vhd", directory / "trace"
    script = f"import virtdisk; virtdisk.convert({str(child)!r}, {str(target)!r})"
    result = run("strace", "-f", "-qq", "-y", "-o", trace, "-e", "trace=fstat,newfstatat",
                 sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    same_content(merged, target)
    return image_fstats(trace, parent, child)


@needs_strace
def test_a_flattened_chain_asks_the_host_about_each_file_once(tmp_path: Path) -> None:
    """A file's identity (for the kernel's refusals) and whether it may have
    holes are asked once per file, not again at every switch between a
    child's runs and its parent's."""
    few, many = flattened_fstats(tmp_path / "few", 2), flattened_fstats(tmp_path / "many", 16)
    assert few > 0, "no fstat of the chain's files seen"
    assert many == few, (few, many)
