"""Partition devices of an attached disk (Attachment.partition, engine,
Linux, as root): one partition as a loop device of its own over the disk's
device, since the kernel here makes no /dev/loopNpM.

The table is written by sfdisk through the disk's device; what lands in
the partition is checked with tools that know nothing of this project:
sysfs (the loop's backing file, offset and size limit), mkfs.ext4, mount,
and e2fsck and debugfs on that partition's byte range cut out of the
image's raw conversion (qemu-img convert).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import test_attach as attach
from test_attach import mount_point, run_dir  # fixtures, used by name

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402

__all__ = ["mount_point", "run_dir"]

pytestmark = pytest.mark.skipif(attach._loop_capable() is not None,
                                reason=str(attach._loop_capable()))
run = attach.run
tool = attach._tool
bound = attach.bound
loop_sysfs = attach.loop_sysfs

SECTOR = 512
# An EFI system partition, then a Linux one: partition 2 is the data.
GPT_SCRIPT = ("label: gpt\nstart=2048, size=8192, type=U\n"
              "start=10240, size=81920, type=L\n")
PARTITIONS = {1: (2048, 8192), 2: (10240, 81920)}


def dynamic_vhdx(path: Path) -> Path:
    run(tool("qemu-img"), "create", "-q", "-f", "vhdx", path, str(64 * attach.MiB))
    return path


def write_table(device: str) -> None:
    attach.run_input(tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", device,
                     stdin=GPT_SCRIPT)


def check_partition_device(part: str, device: str, number: int) -> None:
    start, sectors = PARTITIONS[number]
    assert loop_sysfs(part, "backing_file") == device
    assert loop_sysfs(part, "offset") == str(start * SECTOR)
    assert loop_sysfs(part, "sizelimit") == str(sectors * SECTOR)


def partition_bytes(image: Path, tmp_path: Path, number: int) -> Path:
    """Partition `number`'s range of the image's raw content, as a file."""
    raw = tmp_path / "whole.raw"
    run(tool("qemu-img"), "convert", "-O", "raw", image, raw)
    start, sectors = PARTITIONS[number]
    part = tmp_path / f"partition{number}.raw"
    with raw.open("rb") as whole:
        whole.seek(start * SECTOR)
        part.write_bytes(whole.read(sectors * SECTOR))
    return part


def test_ext4_in_partition_2_of_a_dynamic_vhdx(tmp_path: Path, mount_point: Path) -> None:
    image = dynamic_vhdx(tmp_path / "gpt.vhdx")
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        write_table(device.path)
        first = device.partition(1)
        second = device.partition(2)
        assert first != second
        check_partition_device(first, device.path, 1)
        check_partition_device(second, device.path, 2)
        # The partition device stands on the disk: the disk's image.
        (entry,) = virtdisk.storage_dependencies(second)
        assert (entry.image_path, entry.device) == (str(image.resolve()), device.path)
        run(tool("mkfs.ext4"), "-q", "-F", second)
        run("mount", second, mount_point)
        (mount_point / "in-partition-2.txt").write_text("second partition\n")
        run("umount", mount_point)
    assert not bound(first) and not bound(second) and not bound(device.path)
    part = partition_bytes(image, tmp_path, 2)
    run(tool("e2fsck"), "-n", "-f", part)
    assert run(tool("debugfs"), "-R", "cat /in-partition-2.txt", part).stdout == (
        "second partition\n")


def test_detach_waits_for_a_mounted_partition(tmp_path: Path, mount_point: Path) -> None:
    image = dynamic_vhdx(tmp_path / "busy.vhdx")
    with virtdisk.open(image, read_only=False) as disk:
        device = disk.attach()
        write_table(device.path)
        part = device.partition(2)
        run(tool("mkfs.ext4"), "-q", "-F", part)
        run("mount", part, mount_point)
        try:
            with pytest.raises(virtdisk.DiskInUseError) as refused:
                device.detach()
            assert refused.value.winerror == 32
            assert bound(device.path)                  # the disk stays attached
        finally:
            run("umount", mount_point)
        device.detach()
        assert not bound(part) and not bound(device.path)


def test_partition_device_goes_with_the_handle(tmp_path: Path) -> None:
    image = dynamic_vhdx(tmp_path / "closed.vhdx")
    disk = virtdisk.open(image, read_only=False)
    device = disk.attach()
    write_table(device.path)
    part = device.partition(2)
    assert bound(part)
    disk.close()
    assert not bound(part)


def test_read_only_attach_gives_a_read_only_partition(tmp_path: Path) -> None:
    image = dynamic_vhdx(tmp_path / "ro.vhdx")
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        write_table(device.path)
    with virtdisk.open(image) as disk, disk.attach(read_only=True) as device:
        part = device.partition(2)
        assert Path(f"/sys/block/{Path(part).name}/ro").read_text().strip() == "1"
        check_partition_device(part, device.path, 2)


def test_partition_refusals(tmp_path: Path) -> None:
    image = dynamic_vhdx(tmp_path / "plain.vhdx")
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        with pytest.raises(virtdisk.ElementNotFoundError) as no_table:
            device.partition(1)
        assert no_table.value.winerror == 1168
        write_table(device.path)
        with pytest.raises(virtdisk.ElementNotFoundError):
            device.partition(3)
        with pytest.raises(ValueError):
            device.partition(0)
    with virtdisk.open(image) as disk:
        with pytest.raises(virtdisk.NotAttachedError) as not_attached:
            _virtdisk.attach_partition(disk.handle, 1)
        assert not_attached.value.winerror == 21


def test_permanent_attach_keeps_its_partition_until_detach(tmp_path: Path) -> None:
    image = dynamic_vhdx(tmp_path / "permanent.vhdx")
    with virtdisk.open(image, read_only=False) as disk:
        device = disk.attach(permanent=True)
        write_table(device.path)
        first = device.partition(1)
    try:
        second = device.partition(2)           # through a handle of its own
        assert bound(first)                    # the attaching handle is closed
        check_partition_device(first, device.path, 1)
        check_partition_device(second, device.path, 2)
    finally:
        virtdisk.detach(image)
    assert not bound(first) and not bound(second) and not bound(device.path)


# A primary partition, then an extended one holding two logical ones, which
# sfdisk numbers 5 and 6 as Linux does (each behind an EBR of its own).
MBR_SCRIPT = ("label: dos\nstart=2048, size=8192, type=83\n"
              "start=10240, size=100000, type=5\n"
              "start=12288, size=16384, type=83\nstart=30720, size=20480, type=83\n")
MBR_PARTITIONS = {1: (2048, 8192), 5: (12288, 16384), 6: (30720, 20480)}


def test_logical_partitions_of_an_mbr_are_5_and_on(tmp_path: Path, mount_point: Path) -> None:
    """sfdisk's table as it lists it (`sfdisk -d`): each partition device
    sits at the range sfdisk gives, a file system made on logical partition
    6 is found there in the image's raw content, and the extended container
    itself is no partition device."""
    image = dynamic_vhdx(tmp_path / "mbr.vhdx")
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        attach.run_input(tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", device.path,
                         stdin=MBR_SCRIPT)
        listed = run(tool("sfdisk"), "-d", device.path).stdout
        for number, (start, sectors) in MBR_PARTITIONS.items():
            assert f"start={start:>12}, size={sectors:>12}" in listed
            part = device.partition(number)
            assert loop_sysfs(part, "backing_file") == device.path
            assert loop_sysfs(part, "offset") == str(start * SECTOR)
            assert loop_sysfs(part, "sizelimit") == str(sectors * SECTOR)
        with pytest.raises(virtdisk.ElementNotFoundError):
            device.partition(2)
        with pytest.raises(virtdisk.ElementNotFoundError):
            device.partition(7)
        run(tool("mkfs.ext4"), "-q", "-F", "-L", "logical6", device.partition(6))
    raw = tmp_path / "whole.raw"
    run(tool("qemu-img"), "convert", "-O", "raw", image, raw)
    start, sectors = MBR_PARTITIONS[6]
    cut = tmp_path / "partition6.raw"
    with raw.open("rb") as whole:
        whole.seek(start * SECTOR)
        cut.write_bytes(whole.read(sectors * SECTOR))
    run(tool("e2fsck"), "-f", "-n", cut)
    assert "logical6" in run(tool("e2label"), cut).stdout


def test_single_partition_finds_a_lone_logical_partition(tmp_path: Path) -> None:
    """An extended partition holding one logical partition: that is the
    disk's one data partition, and SINGLE_PARTITION shows exactly it."""
    image = dynamic_vhdx(tmp_path / "lone.vhdx")
    payload = bytes(range(256)) * 64
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        attach.run_input(tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", device.path,
                         stdin="label: dos\nstart=2048, size=100000, type=5\n"
                               "start=4096, size=32768, type=83\n")
        with open(device.path, "r+b") as whole:
            whole.seek(4096 * SECTOR)
            whole.write(payload)
    with virtdisk.open(image) as disk:
        _virtdisk.AttachVirtualDisk(
            disk.handle, _virtdisk.AttachVirtualDiskFlag.SINGLE_PARTITION
            | _virtdisk.AttachVirtualDiskFlag.READ_ONLY)
        device_path = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        assert loop_sysfs(device_path, "offset") == str(4096 * SECTOR)
        assert loop_sysfs(device_path, "sizelimit") == str(32768 * SECTOR)
        with open(device_path, "rb") as view:
            assert view.read(len(payload)) == payload
        _virtdisk.DetachVirtualDisk(disk.handle, 0, 0)
