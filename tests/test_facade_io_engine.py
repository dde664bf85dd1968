"""Content I/O through the facade on real images: `disk.read/write/flush`,
`disk.content()` and `virtdisk.convert`, all through RawSCSIVirtualDisk on a
NO_LOCAL_HOST attach, checked by qemu-img and qemu-io (tools nobody here
wrote) against a raw mirror of every write.

On Windows the same calls need administrator rights (every attach needs
SE_MANAGE_VOLUME_PRIVILEGE); the tests skip by capability, where
features() says RawSCSIVirtualDisk is missing.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

MIB = 1024 * 1024
SIZE = 24 * MIB
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="RawSCSIVirtualDisk is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                       reason="qemu-img and qemu-io check what these tests write"),
]


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True)


def qemu_compare(raw: Path, image: Path, fmt: str) -> None:
    result = run("qemu-img", "compare", "-f", "raw", "-F", QEMU_FORMAT[fmt], raw, image)
    assert result.returncode == 0, result.stdout + result.stderr


def made_by_qemu(path: Path, fmt: str, subformat: str) -> Path:
    options = f"subformat={subformat}" + (",force_size=on" if fmt == "vhd" else "")
    result = run("qemu-img", "create", "-q", "-f", QEMU_FORMAT[fmt], "-o", options, path,
                 str(SIZE))
    assert result.returncode == 0, result.stderr
    return path


CASES = [(fmt, subformat, maker) for fmt in ("vhdx", "vhd")
         for subformat in ("dynamic", "fixed") for maker in ("qemu", "engine")]


@pytest.mark.parametrize(("fmt", "subformat", "maker"), CASES,
                         ids=[f"{f}-{s}-{m}" for f, s, m in CASES])
def test_random_writes_match_a_raw_mirror(tmp_path: Path, fmt: str, subformat: str,
                                          maker: str) -> None:
    """Aligned and unaligned writes, inside and across block boundaries,
    first writes and overwrites: the image reads like the raw file that
    received the same writes, to the engine and to qemu."""
    image = tmp_path / f"disk.{fmt}"
    if maker == "qemu":
        made_by_qemu(image, fmt, subformat)
    else:
        virtdisk.create(image, size=SIZE, type=subformat).close()  # type: ignore[arg-type]
    mirror = tmp_path / "mirror.raw"
    with open(mirror, "wb") as file:
        file.truncate(SIZE)
    chooser = random.Random(f"{fmt}-{subformat}-{maker}")
    with virtdisk.open(image, read_only=False) as disk, open(mirror, "r+b") as raw:
        assert disk.virtual_size == SIZE
        for _ in range(40):
            length = chooser.choice([1, 511, 512, 4096, 65536 + 7, 2 * MIB + 3, 3 * MIB])
            offset = chooser.randrange(0, SIZE - length)
            if chooser.random() < 0.5:
                offset -= offset % 512
            data = chooser.randbytes(length)
            assert disk.write(offset, data) == length
            raw.seek(offset)
            raw.write(data)
        disk.flush()
        raw.flush()
        digest = hashlib.sha256()
        with disk.content() as content:
            while chunk := content.read(MIB):
                digest.update(chunk)
        assert digest.digest() == hashlib.sha256(mirror.read_bytes()).digest()
    qemu_compare(mirror, image, fmt)
    if fmt == "vhdx":
        result = run("qemu-img", "check", "-f", "vhdx", image)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
def test_engine_reads_what_qemu_io_wrote(tmp_path: Path, fmt: str) -> None:
    image = virtdisk.create(tmp_path / f"disk.{fmt}", size=SIZE)
    image.close()
    path = tmp_path / f"disk.{fmt}"
    result = run("qemu-io", "-f", QEMU_FORMAT[fmt], "-c", "write -P 0x5a 1M 3M",
                 "-c", "write -P 0xc3 20M 512", path)
    assert result.returncode == 0, result.stdout + result.stderr
    with virtdisk.open(path) as disk:
        assert disk.read(MIB, 3 * MIB) == b"\x5a" * (3 * MIB)
        assert disk.read(20 * MIB - 512, 1536) == bytes(512) + b"\xc3" * 512 + bytes(512)


@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
def test_a_read_only_disk_refuses_writes(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"disk.{fmt}"
    virtdisk.create(path, size=SIZE).close()
    with virtdisk.open(path) as disk:
        with pytest.raises(virtdisk.AccessDeniedError):
            disk.write(0, b"x" * 512)
    result = run("qemu-img", "compare", "-f", QEMU_FORMAT[fmt], "-F", "raw", path,
                 _zeros(tmp_path))
    assert result.returncode == 0, result.stdout


def _zeros(tmp_path: Path) -> Path:
    zeros = tmp_path / "zeros.raw"
    with open(zeros, "wb") as file:
        file.truncate(SIZE)
    return zeros


def test_an_offset_past_the_end_names_the_size(tmp_path: Path) -> None:
    path = tmp_path / "disk.vhdx"
    virtdisk.create(path, size=SIZE).close()
    with virtdisk.open(path, read_only=False) as disk:
        # A read that starts inside stops at the end, as a file's does.
        assert disk.read(SIZE - 512, 1024) == bytes(512)
        with pytest.raises(ValueError, match=str(SIZE)):
            disk.read(SIZE + 512, 1)
        with pytest.raises(ValueError, match=str(SIZE)):
            disk.write(SIZE - 512, bytes(1024))


def test_convert_raw_to_dynamic_vhdx_and_back(tmp_path: Path) -> None:
    raw = tmp_path / "source.raw"
    with open(raw, "wb") as file:
        file.truncate(SIZE)
        file.seek(3 * MIB)
        file.write(os.urandom(5 * MIB))
    image = tmp_path / "copy.vhdx"
    virtdisk.convert(raw, image)
    qemu_compare(raw, image, "vhdx")
    back = tmp_path / "back.raw"
    virtdisk.convert(image, back)
    assert back.read_bytes() == raw.read_bytes()
