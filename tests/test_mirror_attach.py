"""A mirror of a disk attached as a device: the device's writes, served by
the FUSE export through the handle's data path, reach the mirror, and
after the break they reach the mirror alone.  A disk whose loop device
maps its file directly (a fixed image) cannot be mirrored: its writes
never pass the engine.  Needs root, loop devices and /dev/fuse."""
from __future__ import annotations

import json
import sys
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


def test_after_the_break_the_attach_names_the_copy(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "source.vhdx", SIZE)
    copy = tmp_path / "copy.vhdx"
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        assert _virtdisk.GetAllAttachedVirtualDiskPhysicalPaths() == [str(image.resolve())]
        mirror = disk.mirror(copy)
        assert mirror.wait_mirrored(timeout=120)
        mirror.break_()
        # Every view of the attach: the record other processes read, the
        # facade's objects, and the dependencies through either handle.
        # The record names the file as the kernel does (links resolved).
        recorded = str(copy.resolve())
        assert _virtdisk.GetAllAttachedVirtualDiskPhysicalPaths() == [recorded]
        assert [(found.path, found.image_path) for found in virtdisk.attached()] == [
            (device.path, recorded)]
        assert device.image_path == str(copy)
        assert str(copy) in repr(device)
        through_device = virtdisk.storage_dependencies(device.path)
        assert [entry.image_path for entry in through_device] == [recorded]
        through_disk = disk.storage_dependencies()
        assert [(entry.image_path, entry.device) for entry in through_disk] == [
            (str(copy), device.path)]
        assert not through_disk[0].read_only
        listed = run(sys.executable, "-m", "virtdisk", "list", "--json").stdout
        assert [entry["image_path"] for entry in json.loads(listed)] == [recorded]
        # The source is no attached image any more: another handle attaches it.
        with virtdisk.open(image, read_only=False) as source, source.attach() as again:
            assert sorted(_virtdisk.GetAllAttachedVirtualDiskPhysicalPaths()) == sorted(
                [recorded, str(image.resolve())])
            assert again.image_path == str(image)
    assert _virtdisk.GetAllAttachedVirtualDiskPhysicalPaths() == []
    assert not list(run_dir.glob("loop*"))
