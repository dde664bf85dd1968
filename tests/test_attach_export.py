"""Attaching dynamic and differencing images through the engine's FUSE
export (engine, Linux, as root).

The loop device of such an attach is bound to a file the engine serves
(api/attach_export.c).  What the device shows and what is written through
it are checked with tools that know nothing of this project: qemu-img
convert, compare and check, qemu-io, libvhdi (pyvhdi, for a 4K-sector VHDX,
which qemu cannot open), mkfs.ext4, mount, e2fsck, debugfs and
fio with verify=crc32c; a differencing child (which qemu cannot open for
VHDX) is compared, after the detach, with the engine's own read of the
closed and reopened image.  /proc/self/mountinfo tells whether an export is
left mounted.  Every test records attaches in its own run directory.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from test_attach import (  # the loop attach's helpers and its per-test run directory
    Flag,
    MiB,
    _loop_capable,
    _tool,
    bound,
    loop_sysfs,
    mount_point,
    partition,
    read_only_device,
    run,
    run_dir,
)

from test_vhd_write import has_pyvhdi, pyvhdi_bytes

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402
from c_harness import ROOT, compile_harness  # noqa: E402

__all__ = ["mount_point", "run_dir"]    # fixtures, used by name

pytestmark = pytest.mark.skipif(_loop_capable() is not None, reason=str(_loop_capable()))

VHDX = _virtdisk.VirtualStorageType(_virtdisk.VirtualStorageTypeDevice.VHDX,
                                    _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)


@pytest.fixture(autouse=True)
def leave_nothing(run_dir: Path) -> Iterator[None]:
    """After a failed test, what its attaches left: servers, the loops of
    exports and of permanent attaches (and their partition devices),
    mounts."""
    yield
    for record in run_dir.glob("loop*"):
        fields = dict(line.split(" ", 1) for line in record.read_text().splitlines())
        if "server" in fields:
            try:
                os.kill(int(fields["server"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        device = f"/dev/loop{fields['loop']}"
        if ("backing" in fields or fields.get("permanent") == "1") and bound(device) and (
                loop_sysfs(device, "backing_file") == fields.get("backing", fields["image"])):
            partitions = run("losetup", "-n", "-O", "NAME", "-j", device, check=False).stdout
            for partition in partitions.split():
                run("losetup", "-d", partition, check=False)
            run("losetup", "-d", device, check=False)
    for line in export_mounts():
        mount_path = line.split()[4]
        if mount_path.startswith(f"{run_dir}/"):
            run("umount", "-l", mount_path, check=False)


def qemu_image(path: Path, size: int) -> Path:
    """A dynamic VHDX or VHD made by qemu-img, by the path's suffix."""
    if path.suffix == ".vhd":
        run(_tool("qemu-img"), "create", "-q", "-f", "vpc", "-o",
            "subformat=dynamic,force_size=on", path, str(size))
    else:
        run(_tool("qemu-img"), "create", "-q", "-f", "vhdx", path, str(size))
    return path


def qemu_format(path: Path) -> str:
    return "vpc" if path.suffix == ".vhd" else "vhdx"


def qemu_write(path: Path, pattern: int, offset: int, length: int) -> None:
    run(_tool("qemu-io"), "-f", qemu_format(path), "-c",
        f"write -P {pattern} {offset} {length}", path)


def engine_image(path: Path, size: int, *, sector: int = 0, parent: Path | None = None) -> Path:
    """A dynamic (or, with `parent`, differencing) VHDX the engine makes."""
    _virtdisk.CreateVirtualDisk(VHDX, path, 0, 0, 2, maximum_size=0 if parent else size,
                                sector_size=sector, parent_path=parent).close()
    return path


def qemu_check(image: Path) -> None:
    """qemu-img check, where qemu has one (not for VHD: exit status 63)."""
    if qemu_format(image) == "vhdx":
        run(_tool("qemu-img"), "check", "-f", "vhdx", image)


def raw_of(image: Path, out: Path) -> bytes:
    run(_tool("qemu-img"), "convert", "-f", qemu_format(image), "-O", "raw", image, out)
    return out.read_bytes()


def export_mounts() -> list[str]:
    """This mount namespace's FUSE exports (mount source: the image)."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if " - fuse.virtdisk " in line]


def mounts_of(image: Path) -> list[str]:
    return [line for line in export_mounts() if f" - fuse.virtdisk {image} " in line]


def assert_export_gone(image: Path, run_directory: Path) -> None:
    assert mounts_of(image) == []
    assert [entry.name for entry in run_directory.iterdir()
            if entry.name.startswith("export.")] == []


def scatter(size: int, sector: int, seed: int) -> list[tuple[int, bytes]]:
    """Writes at sector-aligned places, some across block boundaries."""
    chooser = random.Random(seed)
    writes = []
    for _ in range(24):
        length = chooser.randrange(1, 64) * sector
        offset = chooser.randrange(0, (size - length) // sector) * sector
        writes.append((offset, chooser.randbytes(length)))
    return writes


def write_through(device: str, writes: list[tuple[int, bytes]], mirror: bytearray) -> None:
    descriptor = os.open(device, os.O_WRONLY)
    try:
        for offset, data in writes:
            assert os.pwrite(descriptor, data, offset) == len(data)
            mirror[offset:offset + len(data)] = data
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------- what the device shows

@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_device_reads_what_qemu_reads(tmp_path: Path, run_dir: Path, suffix: str) -> None:
    image = qemu_image(tmp_path / f"dynamic{suffix}", 48 * MiB)
    qemu_write(image, 0x5A, 0, 512)
    qemu_write(image, 0x33, 3 * MiB - 4096, 3 * MiB)
    qemu_write(image, 0x7E, 48 * MiB - 512, 512)
    expected = raw_of(image, tmp_path / "expected.raw")
    with virtdisk.open(image) as disk, disk.attach() as device:
        assert read_only_device(device.path)
        backing = loop_sysfs(device.path, "backing_file")
        assert backing.startswith(f"{run_dir}/export.") and backing.endswith("/disk")
        assert loop_sysfs(device.path, "dio") == "1"         # direct I/O onto the export
        assert len(mounts_of(image)) == 1
        with open(device.path, "rb") as block_device:
            assert block_device.read() == expected
    assert not bound(device.path)
    assert_export_gone(image, run_dir)


def test_4k_sector_vhdx_is_a_4k_device(tmp_path: Path, run_dir: Path) -> None:
    image = engine_image(tmp_path / "4k.vhdx", 32 * MiB, sector=4096)
    content = bytearray(32 * MiB)
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        queue = Path(f"/sys/block/{Path(device.path).name}/queue/logical_block_size")
        assert queue.read_text().strip() == "4096"
        write_through(device.path, scatter(len(content), 4096, 4), content)
        with open(device.path, "rb") as block_device:
            assert block_device.read() == content
    # qemu has no 4K-sector VHDX: libvhdi reads it, where it is installed.
    if has_pyvhdi():
        assert pyvhdi_bytes(image) == content
    with virtdisk.open(image) as disk:
        assert disk.read(0, len(content)) == content
    assert_export_gone(image, run_dir)


# ---------------------------------------------------------------- writes, checked after the detach

@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_writes_match_a_raw_mirror(tmp_path: Path, run_dir: Path, suffix: str) -> None:
    image = qemu_image(tmp_path / f"mirror{suffix}", 40 * MiB)
    qemu_write(image, 0x11, 5 * MiB, 2 * MiB)
    mirror = bytearray(raw_of(image, tmp_path / "before.raw"))
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        assert not read_only_device(device.path)
        write_through(device.path, scatter(len(mirror), 512, 1), mirror)
    raw = tmp_path / "mirror.raw"
    raw.write_bytes(mirror)
    qemu_check(image)
    run(_tool("qemu-img"), "compare", "-f", qemu_format(image), "-F", "raw", image, raw)
    assert_export_gone(image, run_dir)


def test_differencing_child_takes_the_writes(tmp_path: Path, run_dir: Path) -> None:
    base = qemu_image(tmp_path / "base.vhdx", 32 * MiB)
    qemu_write(base, 0x42, 0, 8 * MiB)
    qemu_write(base, 0x24, 20 * MiB, MiB)
    base_raw = raw_of(base, tmp_path / "base.raw")
    child = engine_image(tmp_path / "child.vhdx", 0, parent=base)
    mirror = bytearray(base_raw)
    with virtdisk.open(child, read_only=False) as disk, disk.attach() as device:
        with open(device.path, "rb") as block_device:
            assert block_device.read() == base_raw            # the parent shows through
        write_through(device.path, scatter(len(mirror), 512, 2), mirror)
    with virtdisk.open(child) as disk:
        assert disk.read(0, len(mirror)) == mirror
    assert raw_of(base, tmp_path / "base-after.raw") == base_raw  # the parent is untouched
    run(_tool("qemu-img"), "check", "-f", "vhdx", base)
    assert_export_gone(child, run_dir)


def put_files(device: str, mount_point: Path, files: dict[str, bytes], *, make: bool = False,
              remove: tuple[str, ...] = ()) -> None:
    """Mounts the ext4 on `device` (made first with `make`), writes
    `files` into its root, removes `remove` and unmounts."""
    if make:
        run(_tool("mkfs.ext4"), "-q", "-F", device)
    run("mount", device, mount_point)
    for name, data in files.items():
        (mount_point / name).write_bytes(data)
    for name in remove:
        (mount_point / name).unlink()
    run("umount", mount_point)


def test_ext4_on_a_dynamic_vhdx(tmp_path: Path, run_dir: Path, mount_point: Path) -> None:
    image = qemu_image(tmp_path / "ext4.vhdx", 96 * MiB)
    files = {f"file{index}.bin": os.urandom(index * 100_000 + 1) for index in range(6)}
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        put_files(device.path, mount_point, files, make=True)
        run(_tool("e2fsck"), "-f", "-n", device.path)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    raw = tmp_path / "ext4.raw"
    raw_of(image, raw)
    run(_tool("e2fsck"), "-f", "-n", raw)
    for name, data in files.items():
        dumped = tmp_path / f"dumped-{name}"
        run(_tool("debugfs"), "-R", f"dump /{name} {dumped}", raw)
        assert dumped.read_bytes() == data
    assert_export_gone(image, run_dir)


def fio_image(tmp_path: Path, kind: str) -> Path:
    """A 64 MiB image of `kind`: qemu's dynamic VHD or VHDX, or an engine
    differencing VHDX over a qemu parent whose first half holds data."""
    if kind == "differencing VHDX":
        parent = qemu_image(tmp_path / "fio-parent.vhdx", 64 * MiB)
        qemu_write(parent, 0x5C, 0, 32 * MiB)
        return engine_image(tmp_path / "fio-child.vhdx", 0, parent=parent)
    return qemu_image(tmp_path / ("fio.vhd" if kind == "dynamic VHD" else "fio.vhdx"), 64 * MiB)


@pytest.mark.parametrize("kind", ["dynamic VHD", "dynamic VHDX", "differencing VHDX"])
@pytest.mark.parametrize("pattern", [("randwrite", "4k"), ("write", "1M")],
                         ids=["random-4k", "sequential-1m"])
def test_fio_verify_through_the_export(tmp_path: Path, run_dir: Path, kind: str,
                                       pattern: tuple[str, str]) -> None:
    """fio writes through the device and verifies what it reads back
    (crc32c); the image checks clean afterwards, and a differencing child
    leaves its parent as it was."""
    fio = _tool("fio")
    image = fio_image(tmp_path, kind)
    parent = tmp_path / "fio-parent.vhdx"
    parent_before = parent.read_bytes() if parent.exists() else None
    rw, block = pattern
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        result = run(fio, "--name=verify", f"--filename={device.path}", f"--rw={rw}",
                     f"--bs={block}", "--size=32M", "--offset=16M", "--direct=1",
                     "--ioengine=libaio", "--iodepth=32", "--verify=crc32c",
                     "--verify_fatal=1", "--verify_state_save=0",
                     "--output-format=terse", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    if parent_before is None:
        qemu_check(image)
    else:
        # qemu opens no differencing VHDX: libvhdi reads the chain instead,
        # and must see what the engine sees, the parent's data where fio
        # wrote nothing.
        assert parent.read_bytes() == parent_before
        with virtdisk.open(image) as disk:
            content = disk.read(0, 64 * MiB)
        assert content[:16 * MiB] == b"\x5c" * (16 * MiB)
        if has_pyvhdi():
            assert pyvhdi_bytes(image, parent) == content
    assert_export_gone(image, run_dir)


@pytest.mark.skipif(not has_pyvhdi(), reason="libvhdi (python3-libvhdi) reads the child")
def test_ext4_on_a_differencing_child_over_a_populated_parent(tmp_path: Path, run_dir: Path,
                                                             mount_point: Path) -> None:
    """A file system made on the parent, files added through a child: the
    parent keeps its bytes, and libvhdi reading the child with its parent
    set gives a file system that e2fsck finds clean, holding every file."""
    parent = qemu_image(tmp_path / "parent.vhdx", 96 * MiB)
    old_files = {f"old{index}.bin": os.urandom(index * 70_000 + 1) for index in range(4)}
    new_files = {f"new{index}.bin": os.urandom(index * 90_000 + 3) for index in range(4)}
    with virtdisk.open(parent, read_only=False) as disk, disk.attach() as device:
        put_files(device.path, mount_point, old_files, make=True)
    parent_before = parent.read_bytes()
    child = engine_image(tmp_path / "child.vhdx", 0, parent=parent)
    with virtdisk.open(child, read_only=False) as disk, disk.attach() as device:
        put_files(device.path, mount_point, new_files, remove=("old0.bin",))
    assert parent.read_bytes() == parent_before
    raw = tmp_path / "child.raw"
    raw.write_bytes(pyvhdi_bytes(child, parent))
    run(_tool("e2fsck"), "-f", "-n", raw)
    expected = {**{name: data for name, data in old_files.items() if name != "old0.bin"},
                **new_files}
    for name, data in expected.items():
        dumped = tmp_path / f"dumped-{name}"
        run(_tool("debugfs"), "-R", f"dump /{name} {dumped}", raw)
        assert dumped.read_bytes() == data, name
    listing = run(_tool("debugfs"), "-R", "ls -l /", raw).stdout
    assert "old0.bin" not in listing
    assert_export_gone(child, run_dir)


# ---------------------------------------------------------------- flags, ranges, lifetimes

def test_read_only_attach_refuses_writes(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "ro.vhdx", 16 * MiB)
    before = image.read_bytes()
    with virtdisk.open(image, read_only=False) as disk:
        with disk.attach(read_only=True) as device:
            assert read_only_device(device.path)
            with pytest.raises(OSError):
                with open(device.path, "r+b", buffering=0) as block_device:
                    block_device.write(b"\xff" * 4096)
            backing = loop_sysfs(device.path, "backing_file")
            with pytest.raises(OSError):                 # nor through the export itself
                os.open(backing, os.O_WRONLY)
    assert image.read_bytes() == before
    assert_export_gone(image, run_dir)


def test_restricted_range_of_a_dynamic_image(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "range.vhdx", 16 * MiB)
    qemu_write(image, 0x61, 4 * MiB, 4 * MiB)
    content = raw_of(image, tmp_path / "range.raw")
    with virtdisk.open(image) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.RESTRICTED_RANGE | Flag.READ_ONLY, 2,
                                    restricted_offset=5 * MiB, restricted_length=3 * MiB)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        assert loop_sysfs(device, "offset") == str(5 * MiB)
        assert loop_sysfs(device, "sizelimit") == str(3 * MiB)
        with open(device, "rb") as block_device:
            assert block_device.read() == content[5 * MiB:8 * MiB]
        _virtdisk.DetachVirtualDisk(disk.handle)
    assert not bound(device)
    assert_export_gone(image, run_dir)


def test_single_partition_of_a_dynamic_image(tmp_path: Path, run_dir: Path,
                                             mount_point: Path) -> None:
    image = qemu_image(tmp_path / "parts.vhdx", 64 * MiB)
    start, sectors = 4096, 61440
    partition(image, f"label: dos\nstart={start}, size={sectors}, type=83\n")
    with virtdisk.open(image, read_only=False) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.SINGLE_PARTITION)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        assert loop_sysfs(device, "offset") == str(start * 512)
        assert loop_sysfs(device, "sizelimit") == str(sectors * 512)
        run(_tool("mkfs.ext4"), "-q", "-F", device)
        run("mount", device, mount_point)
        (mount_point / "inside.txt").write_text("partition data\n")
        run("umount", mount_point)
        _virtdisk.DetachVirtualDisk(disk.handle)
    content = raw_of(image, tmp_path / "whole.raw")
    part = tmp_path / "part.raw"
    part.write_bytes(content[start * 512:(start + sectors) * 512])
    run(_tool("e2fsck"), "-n", "-f", part)
    assert run(_tool("debugfs"), "-R", "cat /inside.txt", part).stdout == "partition data\n"
    assert_export_gone(image, run_dir)


def test_closing_the_disk_detaches_and_unmounts(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "close.vhdx", 16 * MiB)
    mirror = bytearray(16 * MiB)
    disk = virtdisk.open(image, read_only=False)
    attachment = disk.attach()
    write_through(attachment.path, scatter(len(mirror), 512, 3), mirror)
    disk.close()
    assert not bound(attachment.path)
    assert_export_gone(image, run_dir)
    raw = tmp_path / "close.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)


def wait_for(condition: Callable[[], bool]) -> bool:
    """Polls `condition` for a while (the kernel tears devices down asynchronously)."""
    for _ in range(200):
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_killed_holder_leaves_nothing_after_the_next_call(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "killed.vhdx", 16 * MiB)
    with subprocess.Popen([sys.executable, "-m", "virtdisk", "attach", str(image),
                           "--read-only"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        device = holder.stdout.readline().strip()
        assert bound(device) and len(mounts_of(image)) == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert wait_for(lambda: not bound(device))
    assert virtdisk.attached() == []
    assert len(mounts_of(image)) == 1        # its server died with it: nothing answers there
    # The dead export's mount is cleared by the next attach or detach.
    with virtdisk.open(image) as disk, disk.attach() as again:
        assert len(mounts_of(image)) == 1
        assert bound(again.path)
    assert_export_gone(image, run_dir)


# ---------------------------------------------------------------- permanent lifetime: the server process

def server_of(run_directory: Path) -> int:
    """The pid of the one export server the run directory records."""
    records = [path.read_text() for path in run_directory.glob("loop*")]
    assert len(records) == 1, records
    servers = [int(line.split()[1]) for line in records[0].splitlines()
               if line.startswith("server ")]
    assert len(servers) == 1, records[0]
    return servers[0]


def wait_for_exit(pidfd: int) -> bool:
    """Whether the process of `pidfd` (not our child) has ended, every thread
    of it, within a generous while: a pidfd reads as ready only then."""
    ready, _, _ = select.select([pidfd], [], [], 60)
    os.close(pidfd)
    return bool(ready)


def test_permanent_export_outlives_its_process(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "permanent.vhdx", 32 * MiB)
    qemu_write(image, 0x19, 0, 4 * MiB)
    mirror = bytearray(raw_of(image, tmp_path / "before.raw"))
    made = run(sys.executable, "-m", "virtdisk", "attach", image, "--permanent", "--json")
    device = json.loads(made.stdout)["path"]
    server = server_of(run_dir)
    pidfd = os.pidfd_open(server)
    try:
        assert Path(f"/proc/{server}/comm").read_text().strip() == "virtdisk-serve"
        assert bound(device) and loop_sysfs(device, "autoclear") == "0"
        assert [item.path for item in virtdisk.attached()] == [device]
        write_through(device, scatter(len(mirror), 512, 5), mirror)
        # The server keeps writers out while it holds the image.
        with pytest.raises(virtdisk.VirtualDiskError):
            virtdisk.open(image, read_only=False)
    finally:
        run(sys.executable, "-m", "virtdisk", "detach", image, check=False)
    assert not bound(device)
    assert wait_for_exit(pidfd)
    assert_export_gone(image, run_dir)
    raw = tmp_path / "permanent.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)


def test_killed_server_is_cleaned_up_and_keeps_flushed_data(tmp_path: Path, run_dir: Path) -> None:
    image = qemu_image(tmp_path / "killed-server.vhdx", 32 * MiB)
    mirror = bytearray(32 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        attachment = disk.attach(permanent=True)
    server = server_of(run_dir)
    write_through(attachment.path, scatter(len(mirror), 512, 6), mirror)   # ends with fsync
    pidfd = os.pidfd_open(server)
    os.kill(server, signal.SIGKILL)
    assert wait_for_exit(pidfd)
    assert virtdisk.attached() == []                 # a record without its server is stale
    with virtdisk.open(image, read_only=False):      # the image is free again
        pass
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    raw = tmp_path / "flushed.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)
    # The next detach finds nothing attached, and clears what the server left.
    with pytest.raises(virtdisk.VirtualDiskError) as refused:
        virtdisk.detach(image)
    assert refused.value.winerror == 21                # ERROR_NOT_READY
    assert not bound(attachment.path)
    assert_export_gone(image, run_dir)
    assert list(run_dir.glob("loop*")) == []


# ---------------------------------------------------------------- the export alone, in C, under ASan and UBSan

@pytest.fixture(scope="module")
def fuse_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("fuse_harness"), "fuse_main",
                           ["host/fuse_export.c", "host/fuse_serve.c"],
                           defines=[f"-I{ROOT / 'src' / 'include'}", "-pthread"], sanitize=True)


def test_export_file_takes_unaligned_io_under_sanitizers(fuse_harness: Path,
                                                         tmp_path: Path) -> None:
    image = qemu_image(tmp_path / "harness.vhdx", 8 * MiB)
    qemu_write(image, 0x3C, MiB, MiB)
    mirror = bytearray(raw_of(image, tmp_path / "harness-before.raw"))
    directory = tmp_path / "export"
    directory.mkdir()
    with subprocess.Popen([fuse_harness, image, directory], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        assert server.stdin is not None and server.stdout is not None
        assert server.stdout.readline().strip() == "open 0"
        assert server.stdout.readline().strip() == "export 0"
        exported = Path(server.stdout.readline().split(" ", 1)[1].strip())
        assert exported.stat().st_size == len(mirror)
        chooser = random.Random(7)
        with open(exported, "r+b", buffering=0) as file:
            assert file.read() == mirror
            for _ in range(40):   # any offset and length: the export merges sectors
                offset = chooser.randrange(0, len(mirror) - 70_000)
                data = chooser.randbytes(chooser.randrange(1, 70_000))
                file.seek(offset)
                assert file.write(data) == len(data)
                mirror[offset:offset + len(data)] = data
            file.seek(12_345)
            assert file.read(54_321) == mirror[12_345:12_345 + 54_321]
            os.fsync(file.fileno())
        server.stdin.write("q\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "stop 0"
        _, errors = server.communicate()
        assert server.returncode == 0, errors
        assert "ERROR: AddressSanitizer" not in errors and "runtime error" not in errors, errors
    assert mounts_of(image) == []
    raw = tmp_path / "harness.raw"
    raw.write_bytes(mirror)
    run(_tool("qemu-img"), "check", "-f", "vhdx", image)
    run(_tool("qemu-img"), "compare", "-f", "vhdx", "-F", "raw", image, raw)
