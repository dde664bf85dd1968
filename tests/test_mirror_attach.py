"""A mirror of a disk attached as a device: the device's writes, served by
the FUSE export through the handle's data path, reach the mirror, and
after the break they reach the mirror alone.  A disk whose loop device
maps its file directly (a fixed image) cannot be mirrored: its writes
never pass the engine.  Needs root, loop devices and /dev/fuse."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_attach import MiB, _loop_capable, _tool, run, run_dir
from test_attach_export import qemu_image, raw_of, scatter, write_through

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402

__all__ = ["run_dir"]    # a fixture, used by name

pytestmark = pytest.mark.skipif(_loop_capable() is not None, reason=str(_loop_capable()))

ERROR_VHD_INVALID_STATE = 0xC03A001C
SIZE = 40 * MiB


def test_device_writes_during_and_after_the_mirror(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "source.vhdx", SIZE)
    copy = tmp_path / "copy.vhdx"
    content = bytearray(raw_of(image, tmp_path / "before.raw"))
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        mirror = disk.mirror(copy)
        write_through(device.path, scatter(SIZE, 512, 11), content)   # while copying, or after
        assert mirror.wait_mirrored(timeout=120)
        write_through(device.path, scatter(SIZE, 512, 12), content)   # mirrored: to both
        at_break = bytes(content)
        mirror.break_()
        write_through(device.path, scatter(SIZE, 512, 13), content)   # the copy alone
        with open(device.path, "rb") as block_device:
            assert block_device.read() == content
    expected_copy, expected_source = tmp_path / "copy.raw", tmp_path / "source.raw"
    expected_copy.write_bytes(content)
    expected_source.write_bytes(at_break)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", copy, expected_copy)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, expected_source)
    run(_tool("qemu-img"), "check", "-f", "vhdx", copy)


def test_a_disk_its_loop_maps_directly_is_refused(tmp_path: Path, run_dir: Path) -> None:
    image = tmp_path / "fixed.vhd"
    virtdisk.create(image, SIZE, format="vhd", type="fixed").close()
    copy = tmp_path / "copy.vhd"
    with virtdisk.open(image, read_only=False) as disk, disk.attach():
        with pytest.raises(virtdisk.InvalidStateError):
            disk.mirror(copy)
    assert not copy.exists()
