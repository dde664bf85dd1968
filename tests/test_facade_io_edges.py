"""The edges of the facade's content requests on real images: the end of
the disk, buffers of every kind, and threads reading one disk at once.

The common request (whole sectors, a bytearray or bytes, an int offset)
takes a short path of its own; these tests hold everything around it to
what the general path does: requests that end exactly at the end or run
past it, the last sector read or written in part, memoryviews of other
formats, the buffers refused and the errors' kinds.  Content is checked
against what qemu-img reads from the same image (a tool nobody here
wrote).
"""

from __future__ import annotations

import array
import random
import shutil
import subprocess
import threading
from pathlib import Path

import _virtdisk
import pytest

import virtdisk
from virtdisk.errors import AccessDeniedError, InvalidHandleError

MIB = 1024 * 1024
SIZE = 8 * MIB

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="RawSCSIVirtualDisk is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                       reason="qemu-img and qemu-io make and read the images"),
]


def run(*command: str | Path) -> None:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A dynamic VHDX that qemu made and wrote a pattern into, its first
    and last megabytes included."""
    path = tmp_path / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", path, str(SIZE))
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0x3c 0 1M", "-c", "write -P 0xa5 3M 2M",
        "-c", f"write -P 0x5a {SIZE - MIB} 1M", path)
    return path


def qemu_content(image: Path, tmp_path: Path) -> bytes:
    """The image's content as qemu-img reads it."""
    raw = tmp_path / "content.raw"
    run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", image, raw)
    return raw.read_bytes()


@pytest.mark.parametrize(("back", "length"), [(4096, 4096), (512, 512), (4096, 8192),
                                              (100, 100), (100, 4096), (1, 1), (0, 4096)])
def test_reads_ending_at_or_past_the_end(image: Path, tmp_path: Path, back: int,
                                         length: int) -> None:
    expected = qemu_content(image, tmp_path)
    with virtdisk.open(image) as disk:
        offset = SIZE - back
        buffer = bytearray(b"\xee" * length)
        assert disk.readinto(offset, buffer) == min(back, length)
        assert buffer[:back] == expected[offset:offset + length]
        assert buffer[back:] == b"\xee" * max(0, length - back)   # untouched past the end
        assert disk.read(offset, length) == expected[offset:offset + length]


@pytest.mark.parametrize(("back", "length"), [(4096, 4096), (512, 512), (100, 100),
                                              (4196, 4096), (700, 300)])
def test_writes_in_the_last_sectors(image: Path, tmp_path: Path, back: int,
                                    length: int) -> None:
    mirror = bytearray(qemu_content(image, tmp_path))
    offset = SIZE - back
    data = random.Random(back).randbytes(length)
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.write(offset, data) == length
        assert disk.read(offset, length) == data
    mirror[offset:offset + length] = data
    assert qemu_content(image, tmp_path) == mirror


@pytest.mark.parametrize("data", [bytes(4096), bytearray(512), bytes(1)],
                         ids=["bytes", "bytearray", "one byte"])
def test_a_write_one_byte_past_the_end_writes_nothing(image: Path, tmp_path: Path,
                                                      data: bytes) -> None:
    before = qemu_content(image, tmp_path)
    with virtdisk.open(image, read_only=False) as disk:
        with pytest.raises(ValueError, match=f"past the end of the disk, whose size is {SIZE}"):
            disk.write(SIZE - len(data) + 1, data)
        with pytest.raises(ValueError, match=f"whose size is {SIZE}"):
            disk.write(SIZE + 512, data)
    assert qemu_content(image, tmp_path) == before


def test_memoryviews_of_other_formats(image: Path, tmp_path: Path) -> None:
    expected = qemu_content(image, tmp_path)
    with virtdisk.open(image, read_only=False) as disk:
        words = array.array("I", bytes(4096))
        assert disk.readinto(MIB - 2048, words) == 4096
        assert words.tobytes() == expected[MIB - 2048:MIB + 2048]
        doubles = memoryview(bytearray(8192)).cast("d")
        assert disk.readinto(3 * MIB, doubles) == 8192
        assert doubles.tobytes() == expected[3 * MIB:3 * MIB + 8192]
        grid = memoryview(bytearray(4096)).cast("B", (8, 512))
        assert disk.readinto(SIZE - 4096, grid) == 4096
        assert grid.tobytes() == expected[SIZE - 4096:]
        pattern = array.array("I", range(1024))
        assert disk.write(512, pattern) == 4096
        assert disk.write(6 * MIB + 3, memoryview(pattern).cast("B").cast("H")) == 4096
        assert disk.read(512, 4096) == pattern.tobytes()
        assert disk.read(6 * MIB + 3, 4096) == pattern.tobytes()


def test_buffers_refused_before_anything_is_sent(image: Path, tmp_path: Path) -> None:
    before = qemu_content(image, tmp_path)
    with virtdisk.open(image, read_only=False) as disk:
        disk.read(0, 1)                                 # attached: the short path is open
        strided = memoryview(bytearray(8192))[::2]
        with pytest.raises(BufferError, match="C-contiguous"):
            disk.readinto(0, strided)
        with pytest.raises(BufferError, match="C-contiguous"):
            disk.write(0, strided)
        for read_only in (bytes(4096), memoryview(bytearray(4096)).toreadonly()):
            with pytest.raises(TypeError, match="must be writable"):
                disk.readinto(0, read_only)
        with pytest.raises(TypeError, match="buffer protocol"):
            disk.write(0, "text")  # type: ignore[arg-type]
        for offset in (True, 512.0, "0"):
            with pytest.raises(TypeError, match="offset must be an int"):
                disk.readinto(offset, bytearray(512))  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="offset must be an int"):
                disk.write(offset, bytes(512))  # type: ignore[arg-type]
        for offset in (-512, -1):
            with pytest.raises(ValueError, match="must not be negative"):
                disk.readinto(offset, bytearray(512))
            with pytest.raises(ValueError, match="must not be negative"):
                disk.write(offset, bytes(512))
    assert qemu_content(image, tmp_path) == before


def test_a_buffer_is_free_again_after_a_refused_request(image: Path) -> None:
    with virtdisk.open(image) as disk:
        buffer = bytearray(4096)
        with pytest.raises(ValueError):
            disk.readinto(SIZE + 512, buffer)
        buffer.extend(b"more")                          # no view of it is left behind
        assert disk.readinto(0, buffer) == 4100


def test_closed_and_read_only_disks_refuse_the_short_path(image: Path) -> None:
    with virtdisk.open(image) as disk:
        disk.read(0, 1)
        with pytest.raises(AccessDeniedError, match="read-only"):
            disk.write(0, bytes(4096))
    with pytest.raises(InvalidHandleError, match="closed"):
        disk.readinto(0, bytearray(4096))
    with pytest.raises(InvalidHandleError, match="closed"):
        disk.read(0, 4096)
    writable = virtdisk.open(image, read_only=False)
    writable.write(0, bytes(4096))
    writable.handle.close()                             # the handle, under the disk
    with pytest.raises(InvalidHandleError, match="closed"):
        writable.write(0, bytes(4096))
    with pytest.raises(InvalidHandleError, match="closed"):
        writable.readinto(0, bytearray(4096))
    writable.close()


def test_threads_reading_one_disk_read_its_content(image: Path, tmp_path: Path) -> None:
    expected = qemu_content(image, tmp_path)
    failures: list[str] = []
    with virtdisk.open(image) as disk:
        def reader(seed: int) -> None:
            generator = random.Random(seed)
            buffer = bytearray(4096)
            for _ in range(400):
                if generator.random() < 0.5:
                    offset = generator.randrange(SIZE // 4096) * 4096
                    disk.readinto(offset, buffer)
                    got, want = bytes(buffer), expected[offset:offset + 4096]
                else:
                    offset = generator.randrange(SIZE)
                    length = generator.randrange(1, 9000)
                    got, want = disk.read(offset, length), expected[offset:offset + length]
                if got != want:
                    failures.append(f"thread {seed}: {len(got)} bytes at {offset} differ")
                    return

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
