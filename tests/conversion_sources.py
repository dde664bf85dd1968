"""Sources for conversion tests: images qemu-img makes of a raw file, and
differencing children written through the facade with the content they
then read as (child over parent)."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Sequence
from pathlib import Path

import virtdisk

QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx", "img": "raw"}
"""qemu-img's format names, by file extension."""


def qemu_made(source: Path, path: Path, fmt: str, kind: str) -> Path:
    """A `fmt` image of `kind` ("dynamic" or "fixed") at `path`, made by
    qemu-img from the raw file `source`."""
    options = f"subformat={kind}" + (",force_size=on" if fmt == "vhd" else "")
    result = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", QEMU_FORMAT[fmt], "-o",
                             options, str(source), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return path


def written_child(parent: Path, child: Path, writes: Sequence[tuple[int, int]],
                  parent_content: bytes, merged: Path, seed: str = "child") -> bytes:
    """Creates `child` over `parent` and writes random bytes at each
    (offset, length) of `writes`; returns what the chain then reads,
    `parent_content` with those writes over it, also written to the raw
    file `merged`."""
    chooser = random.Random(seed)
    expected = bytearray(parent_content)
    with virtdisk.create(child, parent=parent) as disk:
        for offset, length in writes:
            data = chooser.randbytes(length)
            disk.write(offset, data)
            expected[offset:offset + length] = data
    merged.write_bytes(expected)
    return bytes(expected)
