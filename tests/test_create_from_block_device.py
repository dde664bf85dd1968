"""CreateVirtualDisk with a block device as SourcePath, as Windows takes
\\\\.\\PhysicalDriveN: the new image holds the device's content, checked with
`qemu-img compare` against the file behind a loop device.

A loop device needs root (CAP_SYS_ADMIN) and the loop driver; the tests say
so when they skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_devices import attached  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="Linux block devices (loop devices made with losetup)")

MIB = 1024 * 1024
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True)


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A read-only loop device over a 12 MiB raw file with data at its start,
    in its middle, and in its last sector; yields (device, backing file)."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("a loop device needs root and losetup")
    for tool in ("qemu-img",):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    backing = tmp_path / "device.raw"
    with open(backing, "wb") as file:
        file.truncate(12 * MIB)
        file.write(os.urandom(64 * 1024))
        file.seek(5 * MIB + 512)
        file.write(os.urandom(MIB))
        file.seek(12 * MIB - 512)
        file.write(b"\xa5" * 512)
    with attached(backing) as device:
        yield device, backing


@pytest.mark.parametrize(("fmt", "disk_type"), [("vhdx", "dynamic"), ("vhdx", "fixed"),
                                                ("vhd", "dynamic"), ("vhd", "fixed")])
def test_a_block_device_is_a_source(tmp_path: Path, loop_device: tuple[Path, Path],
                                    fmt: str, disk_type: str) -> None:
    device, backing = loop_device
    target = tmp_path / f"copy.{fmt}"
    with virtdisk.create(target, source=device, type=disk_type) as disk:  # type: ignore[arg-type]
        assert disk.virtual_size == 12 * MIB
    result = run("qemu-img", "compare", "-f", "raw", "-F", QEMU_FORMAT[fmt], backing, target)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_larger_target_reads_zeros_past_the_device(tmp_path: Path,
                                                     loop_device: tuple[Path, Path]) -> None:
    device, backing = loop_device
    target = tmp_path / "larger.vhdx"
    with virtdisk.create(target, source=device, size=16 * MIB) as disk:
        assert disk.virtual_size == 16 * MIB
    grown = tmp_path / "grown.raw"
    shutil.copyfile(backing, grown)
    with open(grown, "r+b") as file:
        file.truncate(16 * MIB)
    result = run("qemu-img", "compare", "-f", "raw", "-F", "vhdx", grown, target)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_character_device_is_not_a_source(tmp_path: Path) -> None:
    """/dev/null is neither an image nor a block device: refused, and no
    file is left behind."""
    target = tmp_path / "never.vhdx"
    with pytest.raises(virtdisk.VirtualDiskError):
        virtdisk.create(target, source="/dev/null")
    assert not target.exists()
