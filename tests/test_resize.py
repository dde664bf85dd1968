"""ResizeVirtualDisk and ExpandVirtualDisk through the extension: sizes as
qemu-img and libvhdi read them, qemu-img check, content kept (qemu-img
compare against a raw mirror cut or extended the same way), the grown tail
reading zeros, Windows' codes for what is refused, and fault injection at
every write, flush and size change of a resize (tests/c/resize_main.c):
after the stop the image opens with its old or its new size, its content
intact and qemu-img check clean."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
import virtdisk
from c_harness import compile_harness
from test_create_vhd import run, tool
from virtdisk.errors import (
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED,
    ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE,
    ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE,
    ERROR_VHD_INVALID_SIZE,
    ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA,
    VirtualDiskError,
)

MiB = 1 << 20
GiB = 1 << 30
Resize = vd.ResizeVirtualDiskFlag
Info = vd.GetVirtualDiskInfoVersion
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx"}

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the portable engine's files")


def qemu_format(path: Path) -> str:
    return QEMU_FORMAT[path.suffix]


def qemu_size(path: Path) -> int:
    info = json.loads(run(tool("qemu-img"), "info", "-f", qemu_format(path), "--output=json", path))
    return int(info["virtual-size"])


def libvhdi_size(path: Path) -> int:
    """The media size vhdiinfo reports (libvhdi, another reader)."""
    for line in run(tool("vhdiinfo"), path).splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Media size":
            return int(value.split("(")[1].split()[0])
    raise AssertionError("vhdiinfo printed no media size")


def check_clean(path: Path) -> None:
    """qemu-img check, where qemu has one for the format (VHDX)."""
    if path.suffix != ".vhdx":
        return
    result = subprocess.run([tool("qemu-img"), "check", "-f", "vhdx", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def compare(image: Path, mirror: Path) -> None:
    result = subprocess.run([tool("qemu-img"), "compare", "-f", qemu_format(image), "-F", "raw",
                             str(image), str(mirror)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def make_image(path: Path, size: int, kind: str, block_size: int | None = None) -> None:
    """A new image made by the engine, with data written by qemu-io at its
    start, in its middle and in its last MiB."""
    with virtdisk.create(path, size, type=kind, block_size=block_size):  # type: ignore[arg-type]
        pass
    commands = ["write -P 0x5a 0 1M", f"write -P 0xa5 {size // 2} 64k",
                f"write -P 0x3c {size - MiB} 1M"]
    args: list[str] = []
    for command in commands:
        args += ["-c", command]
    run(tool("qemu-io"), "-f", qemu_format(path), *args, path)


def raw_mirror(image: Path, size: int) -> Path:
    """The image's content as a raw file, cut or extended to `size`."""
    mirror = image.with_suffix(".raw")
    run(tool("qemu-img"), "convert", "-f", qemu_format(image), "-O", "raw", image, mirror)
    os.truncate(mirror, size)
    return mirror


def resize(path: Path, size: int, flags: int = 0) -> None:
    with virtdisk.open(path, read_only=False) as disk:
        vd.ResizeVirtualDisk(disk.handle, size, Resize(flags))


def engine_size(path: Path) -> int:
    with virtdisk.open(path) as disk:
        return int(vd.GetVirtualDiskInformation(disk.handle, Info.SIZE).virtual_size)


def code_of(error: pytest.ExceptionInfo[VirtualDiskError]) -> int:
    return int(error.value.winerror)


KINDS = [("x.vhd", "dynamic"), ("x.vhd", "fixed"), ("x.vhdx", "dynamic"), ("x.vhdx", "fixed")]


# --------------------------------------------------------------------------- grow

@pytest.mark.parametrize("name, kind", KINDS)
@pytest.mark.parametrize("new_size", [96 * MiB + 512 * 3, 1 * GiB])
def test_grow_keeps_content_and_reads_zeros_past_the_old_end(tmp_path: Path, name: str, kind: str,
                                                             new_size: int) -> None:
    """A grow to a size that is not a whole block, and to one whose VHD BAT
    outgrows its sectors (512 entries of 2 MiB against 32): qemu-img and
    libvhdi read the new size, the old content is where it was, the rest
    reads zeros (the raw mirror's extension)."""
    path = tmp_path / name
    make_image(path, 64 * MiB, kind)
    mirror = raw_mirror(path, new_size)
    resize(path, new_size)
    assert engine_size(path) == new_size
    assert qemu_size(path) == new_size
    if path.suffix == ".vhd":
        assert libvhdi_size(path) == new_size
    check_clean(path)
    compare(path, mirror)


@pytest.mark.parametrize("name, kind", KINDS)
def test_expand_grows_and_refuses_smaller(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    make_image(path, 64 * MiB, kind)
    mirror = raw_mirror(path, 100 * MiB)
    with virtdisk.open(path, read_only=False) as disk:
        vd.ExpandVirtualDisk(disk.handle, 100 * MiB)
        with pytest.raises(VirtualDiskError) as error:
            vd.ExpandVirtualDisk(disk.handle, 80 * MiB)
        assert code_of(error) == ERROR_INVALID_PARAMETER
        vd.ExpandVirtualDisk(disk.handle, 100 * MiB)   # the same size: nothing to do
    assert qemu_size(path) == 100 * MiB
    check_clean(path)
    compare(path, mirror)


def test_vhdx_bat_region_grows_when_it_is_too_small(tmp_path: Path) -> None:
    """1 MiB blocks: the 1 MiB BAT region holds 131,072 entries, about
    128 GiB; a grow past that grows the region over the blocks after it,
    which move (tests/test_resize_bat_growth.py has the details), and
    rewrites both region tables."""
    path = tmp_path / "small-blocks.vhdx"
    make_image(path, 1 * GiB, "dynamic", block_size=MiB)
    new_size = 200 * GiB
    mirror = raw_mirror(path, 1 * GiB)
    resize(path, new_size)
    assert qemu_size(path) == new_size
    check_clean(path)
    # qemu reads every byte of a VHDX (it reports no allocation), so a
    # compare of all 200 GiB would take minutes: the old gigabyte byte for
    # byte as qemu reads it, then zeros where the new entries start, across
    # the old region's end (entry 131,072, about 128 GiB) and at the end.
    old_part = tmp_path / "old-part.raw"
    run(tool("qemu-img"), "dd", "-f", "vhdx", "-O", "raw", "bs=1M", f"count={1 * GiB // MiB}",
        f"if={path}", f"of={old_part}")
    assert old_part.read_bytes() == mirror.read_bytes()
    zeros: list[str] = []
    for offset in (1 * GiB, 128 * GiB - MiB, 128 * GiB, new_size - 2 * MiB):
        zeros += ["-c", f"read -P 0 {offset} 1M"]
    out = run(tool("qemu-io"), "-f", "vhdx", *zeros, path)
    assert "Pattern verification failed" not in out, out
    # Still writable where the new entries are, as qemu-io reads it back.
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(new_size - MiB, b"\x77" * MiB)
    run(tool("qemu-io"), "-f", "vhdx", "-c", f"read -P 0x77 {new_size - MiB} 1M", path)
    check_clean(path)


def test_grow_after_shrink_reads_zeros_where_data_was_cut(tmp_path: Path) -> None:
    """The bytes a shrink cut off inside the last block are not seen again
    when the disk grows back."""
    path = tmp_path / "cut.vhdx"
    make_image(path, 64 * MiB, "dynamic")
    resize(path, 64 * MiB - 768 * 1024, Resize.ALLOW_UNSAFE_VIRTUAL_SIZE)
    assert qemu_size(path) == 64 * MiB - 768 * 1024
    mirror = raw_mirror(path, 64 * MiB)
    resize(path, 64 * MiB)
    compare(path, mirror)
    check_clean(path)


def test_fixed_grow_is_constant_time_in_file_bytes(tmp_path: Path) -> None:
    """A fixed disk grown by 1 TiB: the new space is a file extension, not
    written bytes (the file's allocated blocks barely change)."""
    for name in ("big.vhd", "big.vhdx"):
        path = tmp_path / name
        make_image(path, 64 * MiB, "fixed")
        before = os.stat(path).st_blocks
        resize(path, 1 << 40)
        assert qemu_size(path) == 1 << 40
        assert os.stat(path).st_blocks - before < (64 * MiB) // 512
        check_clean(path)


# --------------------------------------------------------------------------- shrink and the rules

def write_mbr(path: Path, first_lba: int, sectors: int) -> None:
    """One MBR partition (type 0x83) through the engine's write path."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", first_lba, sectors)
    sector = bytearray(512)
    sector[446:462] = entry
    sector[510:512] = b"\x55\xaa"
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(0, bytes(sector))


def shrinks_refused_without_a_partition_table(path: Path, smaller: int) -> None:
    """With no partition table the smallest safe size is the size itself: a
    shrink to `smaller` would truncate data, and the smallest safe size
    cannot be computed."""
    with pytest.raises(VirtualDiskError) as error:
        resize(path, smaller)
    assert code_of(error) == ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA
    with pytest.raises(VirtualDiskError) as error:
        resize(path, 0, Resize.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE)
    assert code_of(error) == ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE


def test_vhdx_shrink_rules(tmp_path: Path) -> None:
    path = tmp_path / "shrink.vhdx"
    make_image(path, 64 * MiB, "dynamic")
    shrinks_refused_without_a_partition_table(path, 32 * MiB)

    write_mbr(path, 2048, 40 * 2048)          # ends at 41 MiB
    end = 41 * MiB
    with pytest.raises(VirtualDiskError) as error:
        resize(path, 40 * MiB)
    assert code_of(error) == ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA
    mirror = raw_mirror(path, end)
    resize(path, 0, Resize.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE)
    assert engine_size(path) == end and qemu_size(path) == end
    check_clean(path)
    compare(path, mirror)
    with pytest.raises(VirtualDiskError) as error:
        resize(path, 0, Resize.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE)
    assert code_of(error) == ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE

    mirror = raw_mirror(path, 8 * MiB)
    resize(path, 8 * MiB, Resize.ALLOW_UNSAFE_VIRTUAL_SIZE)
    assert qemu_size(path) == 8 * MiB
    check_clean(path)
    compare(path, mirror)


@pytest.mark.parametrize("name", ["x.vhd", "x.vhdx"])
def test_refused_sizes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    make_image(path, 64 * MiB, "dynamic")
    limit = 2040 * GiB if name == "x.vhd" else 64 << 40
    sector = 512 if name == "x.vhd" else 512   # the engine makes VHDX with 512-byte logical sectors here
    cases = [(64 * MiB + sector // 2, 0, ERROR_INVALID_PARAMETER),
             (limit + MiB, 0, ERROR_VHD_INVALID_SIZE),
             (0, 0, ERROR_INVALID_PARAMETER),
             (MiB, Resize.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE, ERROR_INVALID_PARAMETER),
             (MiB, 0x80, ERROR_INVALID_PARAMETER)]
    if name == "x.vhd":
        cases.append((32 * MiB, Resize.ALLOW_UNSAFE_VIRTUAL_SIZE, ERROR_NOT_SUPPORTED))
    for size, flags, code in cases:
        with pytest.raises(VirtualDiskError) as error:
            resize(path, size, flags)
        assert code_of(error) == code, (size, flags)
    resize(path, 64 * MiB)   # the same size
    assert qemu_size(path) == 64 * MiB


def test_read_only_handle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ro.vhdx"
    make_image(path, 64 * MiB, "dynamic")
    with virtdisk.open(path) as disk, pytest.raises(PermissionError):
        vd.ResizeVirtualDisk(disk.handle, 128 * MiB)
    assert qemu_size(path) == 64 * MiB


# --------------------------------------------------------------------------- fault injection

@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("resize_harness")
    yield compile_harness(directory, "resize_main", [], defines=["-DVD_FAULT_INJECTION"],
                          sanitize=True)


def call(harness: Path, *args: str | Path) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(run(harness, *args))
    return got


def stop_after_every_step(harness: Path, image: Path, arguments: list[str],
                          check: Callable[[Path, dict[str, Any]], None], *, limit: int) -> int:
    """Runs the harness on a copy of `image` stopped after 0, 1, 2, ...
    file changes until a run completes, calls check(copy, answer) on each
    copy, and returns how many runs were stopped."""
    for faults in range(limit):
        copy = image.with_name(f"{faults}{image.suffix}")
        shutil.copy(image, copy)
        answer = call(harness, copy, *arguments, str(faults))
        try:
            check(copy, answer)
        except AssertionError as error:
            raise AssertionError(f"stopped after {faults} file changes: {error}") from error
        copy.unlink()
        if not answer["stopped"]:
            assert answer["status"] == 0
            return faults
    pytest.fail("the resize never completed")


FAULT_CASES = [
    ("x.vhd", "dynamic", 96 * MiB + 1536, 0),   # BAT in its padding
    ("x.vhd", "dynamic", 1 * GiB, 0),           # the BAT grows over moved blocks
    ("x.vhd", "fixed", 96 * MiB, 0),
    ("x.vhdx", "dynamic", 96 * MiB + 1536, 0),
    ("x.vhdx", "fixed", 96 * MiB, 0),
    ("x.vhdx", "dynamic", 40 * MiB, int(Resize.ALLOW_UNSAFE_VIRTUAL_SIZE)),
]


@pytest.mark.parametrize("name, kind, new_size, flags", FAULT_CASES)
def test_stop_at_every_step_leaves_old_or_new_size(tmp_path: Path, harness: Path, name: str, kind: str,
                                                   new_size: int, flags: int) -> None:
    image = tmp_path / name
    old_size = 64 * MiB
    make_image(image, old_size, kind)
    old_mirror = raw_mirror(image, old_size)
    new_mirror = image.with_name("new.raw")
    shutil.copy(old_mirror, new_mirror)
    os.truncate(new_mirror, new_size)
    seen = set()

    def check(copy: Path, answer: dict[str, Any]) -> None:
        if copy.suffix == ".vhdx":
            # A stop after the log entry was durable leaves it to replay:
            # qemu's own replay, which qemu's read-only opens demand.
            run(tool("qemu-img"), "check", "-q", "-r", "all", "-f", "vhdx", copy)
        size = engine_size(copy)
        assert size in (old_size, new_size), size
        # A VHD's two footers change one after the other: between the two
        # writes qemu (which reads the copy at 0) and the engine (the end
        # one) may each see one of the sizes.
        assert qemu_size(copy) == size or (name == "x.vhd" and qemu_size(copy) in (old_size, new_size))
        check_clean(copy)
        if size == new_size and new_size > old_size and not answer["stopped"]:
            compare(copy, new_mirror)
        else:
            # Old content intact: the part both sizes share.
            cut = copy.with_suffix(".cut.raw")
            run(tool("qemu-img"), "convert", "-f", qemu_format(copy), "-O", "raw", copy, cut)
            os.truncate(cut, min(old_size, new_size))
            shared = old_mirror.with_name("shared.raw")
            shutil.copy(old_mirror, shared)
            os.truncate(shared, min(old_size, new_size))
            assert run("cmp", cut, shared) == ""
        seen.add(size)

    stop_after_every_step(harness, image, [str(new_size), str(flags)], check, limit=64)
    assert seen == {old_size, new_size}
