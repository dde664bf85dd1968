"""Conversions watched with strace, for the tests of the engine's copies
(copy_file_range, and pread + pwrite where the kernel refuses), and the
sparse raw source they convert."""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import _virtdisk
import pytest
import traced_child
import vhdx_builder
from conversion_sources import QEMU_FORMAT, qemu_made

import virtdisk

ENGINE_COPY_MARKS = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="content I/O (RawSCSIVirtualDisk) is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img checks the results"),
    pytest.mark.skipif(sys.platform != "linux", reason="copy_file_range is Linux's"),
]
"""What the tests of the engine's copies need: the engine's content path,
qemu-img to check the results, Linux."""

needs_strace = traced_child.needs_strace("strace shows which calls copy")

MIB = 1 << 20
SIZE = 72 * MIB
# Data in the first VHDX block (32 MiB) across VHD blocks (2 MiB), none in
# the second VHDX block, a little in the third; most VHD blocks hold none.
DATA = [(0, 3 * MIB + 512), (9 * MIB, 4096), (70 * MIB - 4096, 2 * MIB + 4096)]
DATA_BYTES = sum(min(length, SIZE - offset) for offset, length in DATA)


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True)


def raw_source(path: Path, size: int = SIZE) -> Path:
    """A sparse raw file of `size` bytes with random bytes in DATA."""
    chooser = random.Random(path.name)
    with open(path, "wb") as file:
        file.truncate(size)
        for offset, length in DATA:
            if offset < size:
                file.seek(offset)
                file.write(chooser.randbytes(min(length, size - offset)))
    return path


def source_image(reference: Path, path: Path, fmt: str, kind: str) -> Path:
    """An image of raw `reference` whose data lies at the offsets of its
    content within 4 KiB pages, where the kernel's copy takes it: qemu-img's
    VHDX (blocks on 1 MiB boundaries) and fixed VHD (data from offset 0),
    and for a dynamic VHD the engine's (data on 4 KiB boundaries, as
    Windows lays it out; qemu's follows each 512-byte bitmap on none)."""
    if fmt == "vhd" and kind == "dynamic":
        virtdisk.convert(reference, path)
        return path
    return qemu_made(reference, path, fmt, kind)


def first_vhd_block_data(path: Path) -> int:
    """Where the data of a dynamic VHD's first allocated block starts in
    its file (after the block's 512-byte sector bitmap, 2 MiB blocks)."""
    raw = path.read_bytes()
    table = struct.unpack_from(">Q", raw, 512 + 16)[0]
    entries = struct.unpack_from(">I", raw, 512 + 28)[0]
    for index in range(entries):
        sector = struct.unpack_from(">I", raw, table + 4 * index)[0]
        if sector != 0xFFFFFFFF:
            return int(sector) * 512 + 512
    raise AssertionError("no block allocated")


def copies_in_step(lines: list[str]) -> bool:
    """Whether every copy_file_range call's source and destination offsets
    lie at the same place within their 4 KiB pages."""
    for line in lines:
        found = re.search(r"copy_file_range\(\d+, \[(\d+)\], \d+, \[(\d+)\]", line)
        assert found, line
        if int(found.group(1)) % 4096 != int(found.group(2)) % 4096:
            return False
    return True


def same_content(reference: Path, image: Path) -> None:
    """qemu-img compare: `image` reads exactly the bytes of raw `reference`."""
    result = run("qemu-img", "compare", "-f", "raw", "-F",
                 QEMU_FORMAT[image.suffix.lstrip(".")], reference, image)
    assert result.returncode == 0, result.stdout + result.stderr


def traced_conversion(source: Path, target: Path, trace: Path, **options: object
                      ) -> dict[str, list[str]]:
    """Converts in a child process under strace; its copy_file_range,
    pwrite64 and fsync (fdatasync too) lines, by call."""
    script = (f"import virtdisk; virtdisk.convert({str(source)!r}, {str(target)!r}, "
              f"**{options!r})")
    result = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e",
                             "trace=copy_file_range,pwrite64,fsync,fdatasync", sys.executable,
                             "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls: dict[str, list[str]] = {"copy_file_range": [], "pwrite64": [], "fsync": []}
    for line in trace.read_text().splitlines():
        for name in calls:
            if re.search(rf"\b{name}\(", line):
                calls[name].append(line)
        if re.search(r"\bfdatasync\(", line):
            calls["fsync"].append(line)
    return calls


def copied_bytes(lines: list[str]) -> int:
    """What successful calls returned, summed."""
    total = 0
    for line in lines:
        found = re.search(r"= (-?\d+)", line)
        if found and int(found.group(1)) > 0:
            total += int(found.group(1))
    return total


@contextmanager
def directory_on_dev_shm(prefix: str) -> Iterator[Path | None]:
    """A new directory on /dev/shm (None without one), removed afterwards:
    another file system than the tests' own, most often, where
    copy_file_range from one to the other is refused (EXDEV)."""
    if not os.path.isdir("/dev/shm"):
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def dirty_vhdx(directory: Path) -> tuple[Path, bytes, bytes]:
    """A fixed VHDX of a raw source whose log still holds a change of a
    payload sector (its file's bytes there are stale: a read-only open
    reads through the log replayed in memory).  Returns its path, its
    bytes and the content it reads as."""
    reference = raw_source(directory / "reference.img")
    clean = qemu_made(reference, directory / "clean.vhdx", "vhdx", "fixed").read_bytes()
    after = bytearray(clean)
    bat_offset, _ = vhdx_builder.regions(clean)[vhdx_builder.BAT_REGION]
    payload = (struct.unpack_from("<Q", clean, bat_offset)[0] >> 20) * MIB
    after[payload + 4096:payload + 4608] = b"\x5a" * 512
    dirty, _ = vhdx_builder.make_dirty(clean, after)
    image = directory / "dirty.vhdx"
    image.write_bytes(dirty)
    expected = bytearray(reference.read_bytes())
    expected[4096:4608] = b"\x5a" * 512
    return image, bytes(dirty), bytes(expected)
