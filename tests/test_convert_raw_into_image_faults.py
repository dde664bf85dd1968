"""Crash safety of a raw file written into an image by the engine
(vd_engine_copy_from_file, what a conversion from a raw image runs), by
fault injection.

tests/c/fault_main.c, built with -DVD_FAULT_INJECTION, copies a raw file
into an empty dynamic VHD or VHDX (qemu-img made) while every file change
after the first K fails; copy_file_range counts as a change, as a write
does.  For every K below the N changes of the whole copy the copy must
fail with WRITE_FAULT, and the image must still open, pass qemu-img check
(VHDX) and read, sector by sector, either zeros (what it held) or the
source's bytes: never anything else.  The whole copy must read as the
source (qemu-img compare).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from test_fault_injection import Harness, harness  # noqa: F401 - the module's harness fixture

ERROR_WRITE_FAULT = 29
MiB = 1 << 20
PIECE = 512 * 1024
SIZE = 8 * MiB
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img makes the images and reads the results")


def qemu(*arguments: str | Path) -> None:
    result = subprocess.run(["qemu-img", *map(str, arguments)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def raw_source(path: Path) -> bytes:
    """Data across the first two 2 MiB blocks (the second starting with 4
    KiB of zeros), one piece of data in the fourth block, the rest zeros."""
    chooser = random.Random(7)
    content = bytearray(SIZE)
    content[0:4 * MiB] = chooser.randbytes(4 * MiB)
    content[2 * MiB:2 * MiB + 4096] = bytes(4096)
    content[6 * MiB + PIECE:6 * MiB + 2 * PIECE] = chooser.randbytes(PIECE)
    path.write_bytes(content)
    return bytes(content)


def empty_image(path: Path, fmt: str) -> Path:
    options = ["-o", "force_size=on"] if fmt == "vhd" else ["-o", "block_size=2M"]
    qemu("create", "-q", "-f", QEMU_FORMAT[fmt], *options, path, str(SIZE))
    return path


def content_of(image: Path, fmt: str) -> bytes:
    raw = image.with_suffix(".read")
    qemu("convert", "-f", QEMU_FORMAT[fmt], "-O", "raw", image, raw)
    data = raw.read_bytes()
    raw.unlink()
    return data


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_copy_stopped_after_any_change_leaves_a_readable_image(
        harness: Harness, tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "source.img"
    expected = raw_source(source)
    whole = empty_image(tmp_path / f"whole.{fmt}", fmt)
    answer = harness(whole, "copy-from", source, PIECE)
    assert answer["ops"][0]["status"] == 0, answer
    changes = answer["changes"]
    qemu("compare", "-f", "raw", "-F", QEMU_FORMAT[fmt], source, whole)
    assert 4 <= changes <= 200, changes

    zeros = bytes(512)
    for stop in range(changes):
        image = empty_image(tmp_path / f"stop{stop}.{fmt}", fmt)
        stopped = harness(image, "--fault", stop, "copy-from", source, PIECE)
        assert stopped["ops"][0]["status"] == ERROR_WRITE_FAULT, (stop, stopped)
        assert harness(image, "--readonly", "show")["open"] == 0, stop
        if fmt == "vhdx":
            qemu("check", "-f", "vhdx", image)
        content = content_of(image, fmt)
        assert len(content) == SIZE
        for offset in range(0, SIZE, 512):
            sector = content[offset:offset + 512]
            assert sector in (zeros, expected[offset:offset + 512]), (stop, offset)
        image.unlink()
