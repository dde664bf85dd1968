"""Conversions on a file system that shares blocks (XFS with reflink).

Where a conversion moves a run of data from the source's file into the
destination's with copy_file_range, XFS shares the run's blocks instead of
copying them: converting a full image then costs almost no space and no
time, as ``cp`` does on XFS.  Each test makes a small XFS file system on a
loop device, fills an image with random data, converts it and checks that
the file system's used space grew by far less than the data (a copy
through a buffer grows it by all of it), and that the copy reads what the
source reads (qemu-img compare, nobody's code here).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtdisk

MiB = 1 << 20
DATA = 64 * MiB
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx", ".img": "raw"}

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="mounting a file system on a loop device needs root"),
    pytest.mark.skipif(shutil.which("mkfs.xfs") is None, reason="needs mkfs.xfs (xfsprogs)"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img compares the images"),
]


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mounted XFS with reflink (mkfs.xfs's default since xfsprogs 5.1)."""
    place = tmp_path_factory.mktemp("xfs")
    backing, mountpoint = place / "fs.img", place / "mnt"
    mountpoint.mkdir()
    with open(backing, "wb") as file:
        file.truncate(768 * MiB)      # mkfs.xfs wants 300 MiB at least
    made = subprocess.run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(backing)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this mkfs.xfs makes no XFS with reflink: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(backing), str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)   # still busy


def used_bytes(path: Path) -> int:
    os.sync()
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def filled_source(directory: Path, suffix: str) -> Path:
    """An image of DATA bytes of random data: a VHDX made by qemu, a VHD
    by the engine (qemu puts a VHD block's data off a 4 KiB
    boundary, where no file system can share it)."""
    source = directory / f"source{suffix}"
    data = os.urandom(DATA)
    if suffix == ".vhdx":
        raw = directory / "fill.raw"
        raw.write_bytes(data)
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vhdx", str(raw),
                        str(source)], check=True)
        raw.unlink()
    else:
        with virtdisk.create(source, DATA) as disk:
            disk.write(0, data)
    return source


@pytest.mark.parametrize(("source_suffix", "destination_suffix"),
                         [(".vhdx", ".vhd"), (".vhdx", ".vhdx"), (".vhd", ".vhdx"),
                          (".vhdx", ".img")])
def test_a_conversion_shares_the_sources_blocks(xfs: Path, source_suffix: str,
                                                destination_suffix: str) -> None:
    directory = xfs / f"{source_suffix[1:]}-to-{destination_suffix[1:]}"
    directory.mkdir()
    source = filled_source(directory, source_suffix)
    destination = directory / f"copy{destination_suffix}"
    before = used_bytes(xfs)
    virtdisk.convert(source, destination)
    grown = used_bytes(xfs) - before
    assert grown < DATA // 4, f"the copy took {grown // MiB} MiB of {DATA // MiB} MiB of data"
    compared = subprocess.run(["qemu-img", "compare", "-f", QEMU_FORMAT[source_suffix],
                               "-F", QEMU_FORMAT[destination_suffix], str(source),
                               str(destination)], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    shutil.rmtree(directory)
