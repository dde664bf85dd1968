"""Content I/O through the handle that made a permanent export (engine,
Linux, as root).

The export's server is a process of its own with its own copy of the
image's format state; the handle that attached keeps the image open.  Its
content reads, writes and unmaps must reach the same state as the device's
users, and nothing it does may rewrite the image behind the server.  What
both sides wrote is checked against a raw mirror of every write with tools
that know nothing of this project (qemu-img check and compare; pyvhdi with
the parent set for a differencing child, which qemu cannot open as VHDX).
"""

from __future__ import annotations

import os
import random
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from test_attach import MiB, _loop_capable, _tool, bound, fixed_vhd, run, run_dir, run_input
from test_attach_export import (
    assert_export_gone,
    engine_image,
    leave_nothing,
    qemu_image,
    qemu_write,
    raw_of,
    scatter,
    server_of,
    wait_for_exit,
    write_through,
)
from test_vhd_write import has_pyvhdi, pyvhdi_bytes

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402

__all__ = ["leave_nothing", "run_dir"]    # fixtures, used by name

pytestmark = pytest.mark.skipif(_loop_capable() is not None, reason=str(_loop_capable()))

ERROR_NOT_READY = 21
ERROR_VHD_INVALID_STATE = 0xC03A001C


def read_device(descriptor: int, offset: int, length: int) -> bytes:
    data = os.pread(descriptor, length, offset)
    assert len(data) == length
    return data


def test_handle_and_device_writes_interleave(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "shared.vhdx", 32 * MiB)
    qemu_write(image, 0x21, 0, 2 * MiB)
    mirror = bytearray(raw_of(image, tmp_path / "before.raw"))
    chooser = random.Random(23)
    with virtdisk.open(image, read_only=False) as disk:
        attachment = disk.attach(permanent=True)
        pidfd = os.pidfd_open(server_of(run_dir))
        # A buffered opener held for the whole test: its page cache must
        # never show what the handle has overwritten, and what it wrote
        # (dirty, not yet flushed) must be what the handle reads.
        device = os.open(attachment.path, os.O_RDWR)
        try:
            for round_number in range(48):
                length = chooser.randrange(1, 300_000)
                offset = chooser.randrange(0, len(mirror) - length)
                data = chooser.randbytes(length)
                if round_number % 2:
                    assert disk.write(offset, data) == length       # any alignment
                else:
                    assert os.pwrite(device, data, offset) == length
                mirror[offset:offset + length] = data
                start = max(0, offset - 4096)
                end = min(len(mirror), offset + length + 4096)
                assert disk.read(start, end - start) == mirror[start:end]
                assert read_device(device, start, end - start) == mirror[start:end]
            disk.unmap(4 * MiB, 2 * MiB)
            mirror[4 * MiB:6 * MiB] = bytes(2 * MiB)
            assert read_device(device, 4 * MiB, 2 * MiB) == bytes(2 * MiB)
            disk.flush()
            assert disk.read(0, len(mirror)) == mirror
            assert read_device(device, 0, len(mirror)) == mirror
            # Nothing else the handle does may write the image's structures
            # behind the server (Windows: the disk must be detached).
            changes: tuple[Callable[[], object], ...] = (
                lambda: disk.set_identifier(uuid.uuid4()),
                lambda: disk.metadata.__setitem__(uuid.uuid4(), b"item"),
                lambda: disk.resize(64 * MiB),
                lambda: disk.compact())
            for change in changes:
                with pytest.raises(virtdisk.VirtualDiskError) as refused:
                    change()
                assert refused.value.winerror == ERROR_VHD_INVALID_STATE
        finally:
            os.close(device)
        # A detach from another process: the handle's view of the image is
        # out of date from then on, and no byte goes to it.
        run(sys.executable, "-m", "virtdisk", "detach", image)
        assert not bound(attachment.path)
        assert wait_for_exit(pidfd)
        for content in (lambda: disk.write(0, b"late"), lambda: disk.read(0, 512)):
            with pytest.raises(virtdisk.NotAttachedError) as refused:
                content()
            assert refused.value.winerror == ERROR_NOT_READY
        with pytest.raises(virtdisk.VirtualDiskError) as refused:
            disk.set_identifier(uuid.uuid4())
        assert refused.value.winerror == ERROR_VHD_INVALID_STATE
    assert_export_gone(image, run_dir)
    raw = tmp_path / "mirror.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)


def test_detach_in_this_process_detaches_the_serving_handle(tmp_path: Path,
                                                          run_dir: Path) -> None:
    image = engine_image(tmp_path / "here.vhdx", 16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        attachment = disk.attach(permanent=True)
        pidfd = os.pidfd_open(server_of(run_dir))
        assert disk.write(0, b"served") == 6
        disk.flush()
        attachment.detach()                 # by the image's path: the attach is permanent
        assert not bound(attachment.path)
        assert wait_for_exit(pidfd)
        assert not disk.is_loaded
        with pytest.raises(virtdisk.NotAttachedError):
            _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        with pytest.raises(virtdisk.NotAttachedError):
            disk.read(0, 512)
        # This handle's parse of the image is the one from before the
        # server: it attaches nothing more.
        with pytest.raises(virtdisk.VirtualDiskError) as refused:
            disk.attach()
        assert refused.value.winerror == ERROR_VHD_INVALID_STATE
        # A handle opened since attaches the image again, in this process.
        with virtdisk.open(image) as fresh:
            with fresh.attach() as again:
                assert bound(again.path)
                with open(again.path, "rb") as device:
                    assert device.read(6) == b"served"
            assert fresh.read(0, 6) == b"served"
    assert_export_gone(image, run_dir)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)


def test_restricted_range_outside_the_device_reaches_the_server(tmp_path: Path,
                                                                run_dir: Path) -> None:
    image = qemu_image(tmp_path / "range.vhdx", 16 * MiB)
    mirror = bytearray(16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        handle = disk._handle
        flags = (_virtdisk.AttachVirtualDiskFlag.PERMANENT_LIFETIME
                 | _virtdisk.AttachVirtualDiskFlag.RESTRICTED_RANGE)
        _virtdisk.AttachVirtualDisk(handle, flags, 2, restricted_offset=4 * MiB,
                                    restricted_length=8 * MiB)
        device = _virtdisk.GetVirtualDiskPhysicalPath(handle)
        # The facade's attach takes no range: tell the disk, as its own
        # permanent attach would, that its handle's device takes the I/O.
        disk._on_device = True
        # Across both edges of the view: bytes the device does not show
        # go through the exported file, to the same server.
        data = random.Random(5).randbytes(12 * MiB)
        disk.write(2 * MiB, data)
        mirror[2 * MiB:14 * MiB] = data
        write_through(device, [(MiB, b"\x77" * 4096)], mirror[4 * MiB:12 * MiB])
        mirror[5 * MiB:5 * MiB + 4096] = b"\x77" * 4096
        assert disk.read(0, len(mirror)) == mirror
        virtdisk.detach(image)
    raw = tmp_path / "range.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)


def test_differencing_child_with_writable_parents(tmp_path: Path, run_dir: Path) -> None:
    base = qemu_image(tmp_path / "base.vhdx", 32 * MiB)
    qemu_write(base, 0x44, 0, 8 * MiB)
    qemu_write(base, 0x45, 20 * MiB, 3 * MiB)
    base_raw = raw_of(base, tmp_path / "base.raw")
    child = engine_image(tmp_path / "child.vhdx", 0, parent=base)
    mirror = bytearray(base_raw)
    # V1 RWDepth 2: the parent opened read-write too, so its lock is a
    # writer's, which the server can only inherit, not take again.
    with virtdisk.open(child, access=virtdisk.VirtualDiskAccessMask.ALL, rw_depth=2) as disk:
        attachment = disk.attach(permanent=True)
        pidfd = os.pidfd_open(server_of(run_dir))
        write_through(attachment.path, scatter(len(mirror), 512, 8), mirror)
        for offset, data in scatter(len(mirror), 512, 9):
            disk.write(offset, data)
            mirror[offset:offset + len(data)] = data
        assert disk.read(0, len(mirror)) == mirror
        descriptor = os.open(attachment.path, os.O_RDONLY)
        try:
            assert read_device(descriptor, 0, len(mirror)) == mirror
        finally:
            os.close(descriptor)
        attachment.detach()                    # another handle, read-only, of the chain
        assert wait_for_exit(pidfd)
        with pytest.raises(virtdisk.NotAttachedError):
            disk.read(0, 512)
    assert_export_gone(child, run_dir)
    assert raw_of(base, tmp_path / "base-after.raw") == base_raw   # the parent is untouched
    with virtdisk.open(child) as reopened:
        assert reopened.read(0, len(mirror)) == mirror
    if has_pyvhdi():
        assert pyvhdi_bytes(child, base) == mirror


@pytest.mark.parametrize("detach", ["attachment", "handle"])
def test_a_fixed_image_detaches_through_its_writable_handle(tmp_path: Path, run_dir: Path,
                                                             detach: str) -> None:
    """A loop straight on the image: the writable handle that attached it
    holds the image's writer lock, so only it can open the way to the
    detach (Windows lets the attaching handle detach)."""
    image = fixed_vhd(tmp_path / "fixed.vhd", 16 * MiB)
    mirror = bytearray(16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        attachment = disk.attach(permanent=True)
        assert disk.write(0, b"handle") == 6
        mirror[0:6] = b"handle"
        write_through(attachment.path, [(MiB, b"\x5a" * 4096)], mirror)
        assert disk.read(0, 2 * MiB) == mirror[:2 * MiB]
        # By the image's path the writer lock refuses, and says whose it is.
        with pytest.raises(virtdisk.SharingViolationError) as refused:
            virtdisk.detach(image)
        assert refused.value.detail == "another handle of this process holds the file for writing"
        elsewhere = run(sys.executable, "-m", "virtdisk", "detach", image, check=False)
        assert elsewhere.returncode != 0
        assert f"process {os.getpid()} (" in elsewhere.stderr
        assert "holds the file for writing [ERROR_SHARING_VIOLATION 32]" in elsewhere.stderr
        assert bound(attachment.path)
        if detach == "attachment":
            attachment.detach()
        else:
            _virtdisk.DetachVirtualDisk(disk.handle)
        assert not bound(attachment.path)
        assert not list(run_dir.glob("loop*"))
        assert not disk.is_loaded
        with pytest.raises(virtdisk.NotAttachedError):
            disk.read(0, 512)
    # The close succeeded, and what both wrote is in the image.
    with virtdisk.open(image) as reopened:
        assert reopened.read(0, len(mirror)) == mirror
    raw = tmp_path / "fixed.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "compare", "-f", "vpc", "-F", "raw", image, raw)


def test_a_fixed_image_makes_partitions_through_its_writable_handle(tmp_path: Path,
                                                                    run_dir: Path) -> None:
    image = fixed_vhd(tmp_path / "parted.vhd", 16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        with disk.attach(permanent=True) as attachment:
            run_input(_tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", attachment.path,
                      stdin="label: gpt\nstart=2048, size=8192\n")
            partition = attachment.partition(1)
            assert bound(partition)
            with open(partition, "rb") as device:
                assert len(device.read()) == 8192 * 512
        assert not bound(attachment.path) and not bound(partition)


def test_a_refused_open_names_the_server_that_holds_the_image(tmp_path: Path,
                                                              run_dir: Path) -> None:
    image = engine_image(tmp_path / "served.vhdx", 16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        attachment = disk.attach(permanent=True)
    server = server_of(run_dir)
    pidfd = os.pidfd_open(server)
    # The server holds the image to read (as a detach's open may): a
    # writer is refused, naming the server and its device.
    with pytest.raises(virtdisk.SharingViolationError) as refused:
        virtdisk.open(image, read_only=False)
    assert refused.value.winerror == 32
    assert refused.value.detail == (
        f"process {server} (virtdisk-serve), the server of a permanent attach of the file as "
        f"{attachment.path}, holds it until the disk is detached")
    assert bound(attachment.path)
    virtdisk.detach(image)
    assert wait_for_exit(pidfd)
    with virtdisk.open(image, read_only=False) as free:
        assert free.read_only is False
