"""Attaching images to the host as loop devices (engine, Linux, as root).

Everything here touches the kernel: each test skips, with the reason, when
the process is not root or the host has no loop devices.  What the device
holds is checked with tools that know nothing of this project: mkfs.ext4,
mount, e2fsck and debugfs on the image's raw content (qemu-img convert),
qemu-img check, fio with verify=crc32c, isoinfo, losetup and sysfs.  Each
test records attaches in its own directory (VIRTDISK_RUN_DIR), so tests
running in parallel elsewhere on the machine do not see its attaches.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import iso_builder
import vhdx_builder
from c_harness import ROOT, compile_harness

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402

MiB = 1024 * 1024
ERROR_ACCESS_DENIED = 5
ERROR_NOT_READY = 21
ERROR_SHARING_VIOLATION = 32
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_NOT_FOUND = 1168
ERROR_PRIVILEGE_NOT_HELD = 1314
Flag = _virtdisk.AttachVirtualDiskFlag
E = TypeVar("E", bound=virtdisk.VirtualDiskError)
_BAT_REGION = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")


def _loop_capable() -> str | None:
    if _virtdisk.PLATFORM != "engine" or not sys.platform.startswith("linux"):
        return "loop attaches are the engine's, on Linux"
    if os.geteuid() != 0:
        return "attaching needs root (CAP_SYS_ADMIN)"
    if not os.path.exists("/dev/loop-control"):
        return "the host has no loop devices"
    return None


pytestmark = pytest.mark.skipif(_loop_capable() is not None, reason=str(_loop_capable()))


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(*command: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(part) for part in command], check=check,
                          capture_output=True, text=True)


def refusal(error: type[E], code: int, call: Callable[[], object]) -> E:
    """The error `call` raises, checked to be `error` with Win32 `code`."""
    with pytest.raises(error) as refused:
        call()
    assert refused.value.winerror == code
    return refused.value


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "run"
    monkeypatch.setenv("VIRTDISK_RUN_DIR", str(directory))
    return directory


def loop_sysfs(device: str, name: str) -> str:
    return Path(f"/sys/block/{Path(device).name}/loop/{name}").read_text().strip()


def read_only_device(device: str) -> bool:
    return Path(f"/sys/block/{Path(device).name}/ro").read_text().strip() == "1"


def bound(device: str) -> bool:
    return Path(f"/sys/block/{Path(device).name}/loop/backing_file").exists()


def fixed_vhd(path: Path, size: int = 64 * MiB) -> Path:
    run(_tool("qemu-img"), "create", "-q", "-f", "vpc", "-o", "subformat=fixed", path, str(size))
    return path


def fixed_vhdx(path: Path, size: int = 64 * MiB) -> Path:
    # qemu-img marks a fixed VHDX's blocks ZERO unless told otherwise; the
    # loop needs them present, in order.
    run(_tool("qemu-img"), "create", "-q", "-f", "vhdx", "-o",
        "subformat=fixed,block_state_zero=off", path, str(size))
    return path


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "mnt"
    directory.mkdir()
    yield directory
    if os.path.ismount(directory):
        run("umount", directory, check=False)


# ---------------------------------------------------------------- file systems

@pytest.mark.parametrize("suffix", [".vhd", ".vhdx"])
def test_ext4_end_to_end(tmp_path: Path, mount_point: Path, suffix: str) -> None:
    make = fixed_vhd if suffix == ".vhd" else fixed_vhdx
    image = make(tmp_path / f"disk{suffix}")
    payload = os.urandom(3 * MiB + 123)
    with virtdisk.open(image, read_only=False) as disk:
        with disk.attach() as device:
            assert device.path.startswith("/dev/loop")
            assert device.read_only is False and device.permanent is False
            assert loop_sysfs(device.path, "dio") == "1"
            assert loop_sysfs(device.path, "sizelimit") == str(disk.virtual_size)
            assert disk.is_loaded
            run(_tool("mkfs.ext4"), "-q", "-F", device.path)
            run("mount", device.path, mount_point)
            (mount_point / "hello.txt").write_text("hello from a loop device\n")
            (mount_point / "dir").mkdir()
            (mount_point / "dir" / "payload.bin").write_bytes(payload)
            # Mounted: the detach is refused as Windows refuses it for a
            # disk in use, and the disk stays attached.
            with pytest.raises(virtdisk.DiskInUseError) as refused:
                device.detach()
            assert refused.value.winerror == ERROR_SHARING_VIOLATION
            assert device.attached and bound(device.path)
            run("umount", mount_point)
        assert not bound(device.path)
        assert not disk.is_loaded
    if suffix == ".vhdx":              # qemu-img checks no VHD (vpc) image
        run(_tool("qemu-img"), "check", image)
    raw = tmp_path / "content.raw"
    run(_tool("qemu-img"), "convert", "-O", "raw", image, raw)
    run(_tool("e2fsck"), "-n", "-f", raw)
    listed = run(_tool("debugfs"), "-R", "cat /hello.txt", raw).stdout
    assert listed == "hello from a loop device\n"
    dumped = tmp_path / "payload.out"
    run(_tool("debugfs"), "-R", f"dump /dir/payload.bin {dumped}", raw)
    assert dumped.read_bytes() == payload


def test_fio_verify_through_the_device(tmp_path: Path) -> None:
    image = fixed_vhdx(tmp_path / "fio.vhdx")
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        for pattern, block in (("randwrite", "4k"), ("write", "1M")):
            result = run(_tool("fio"), "--name=verify", f"--filename={device.path}",
                         f"--rw={pattern}", f"--bs={block}", "--size=32M", "--direct=1",
                         "--ioengine=psync", "--verify=crc32c", "--do_verify=1",
                         "--verify_state_save=0",
                         "--output-format=json", check=False)
            assert result.returncode == 0, result.stderr
            job = json.loads(result.stdout)["jobs"][0]
            assert job["error"] == 0
            assert job["write"]["io_bytes"] == 32 * MiB
    run(_tool("qemu-img"), "check", image)


def test_engine_reads_what_the_device_wrote(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "data.vhd", 8 * MiB)
    data = os.urandom(MiB)
    with virtdisk.open(image, read_only=False) as disk:
        with disk.attach() as device:
            with open(device.path, "r+b", buffering=0) as block_device:
                block_device.seek(3 * MiB)
                block_device.write(data)
                os.fsync(block_device.fileno())
        assert disk.read(3 * MiB, MiB) == data
    raw = tmp_path / "data.raw"
    run(_tool("qemu-img"), "convert", "-f", "vpc", "-O", "raw", image, raw)
    assert raw.read_bytes()[3 * MiB:4 * MiB] == data


# ---------------------------------------------------------------- ISO

def test_iso_device_is_the_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "readme.txt").write_text("an ISO attached as a loop device\n")
    (tree / "big.bin").write_bytes(os.urandom(MiB))
    image = tmp_path / "tree.iso"
    run(_tool("xorriso"), "-as", "mkisofs", "-quiet", "-o", image, tree)
    with virtdisk.open(image) as disk:
        with pytest.raises(virtdisk.AccessDeniedError) as refused:
            _virtdisk.AttachVirtualDisk(disk.handle, Flag.NONE)
        assert refused.value.winerror == ERROR_ACCESS_DENIED
        with disk.attach() as device:
            assert device.read_only is True
            assert run("blockdev", "--getss", "--getro", device.path).stdout.split() == ["2048",
                                                                                        "1"]
            with open(device.path, "rb") as block_device:
                assert block_device.read() == image.read_bytes()
            listing = run(_tool("isoinfo"), "-R", "-l", "-i", device.path).stdout
            assert "readme.txt" in listing and "big.bin" in listing
            with pytest.raises(OSError):
                with open(device.path, "r+b") as block_device:
                    block_device.write(b"x" * 2048)
                    block_device.flush()


def test_built_iso_attaches_read_only(tmp_path: Path) -> None:
    image = tmp_path / "small.iso"
    image.write_bytes(iso_builder.build())
    with virtdisk.open(image) as disk, disk.attach() as device:
        with open(device.path, "rb") as block_device:
            assert block_device.read() == image.read_bytes()
    with virtdisk.open(image) as disk:
        kept = disk.attach(permanent=True)
    assert [(item.path, item.read_only, item.permanent) for item in virtdisk.attached()] == [
        (kept.path, True, True)]
    virtdisk.detach(image)
    assert not bound(kept.path) and virtdisk.attached() == []


# ---------------------------------------------------------------- parameters and refusals

def test_restricted_range_is_the_loop_offset_and_limit(tmp_path: Path) -> None:
    image = fixed_vhdx(tmp_path / "range.vhdx", 16 * MiB)
    content = os.urandom(16 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        disk.write(0, content)
    with virtdisk.open(image, read_only=False) as disk:
        handle = disk.handle
        with pytest.raises(virtdisk.VirtualDiskError) as refused:
            _virtdisk.AttachVirtualDisk(handle, Flag.RESTRICTED_RANGE | Flag.READ_ONLY)
        assert refused.value.winerror == ERROR_INVALID_PARAMETER
        for offset, length in ((1, MiB), (0, 0), (15 * MiB, 2 * MiB)):
            with pytest.raises(virtdisk.VirtualDiskError) as refused:
                _virtdisk.AttachVirtualDisk(handle, Flag.RESTRICTED_RANGE | Flag.READ_ONLY, 2,
                                            restricted_offset=offset, restricted_length=length)
            assert refused.value.winerror == ERROR_INVALID_PARAMETER, (offset, length)
        _virtdisk.AttachVirtualDisk(handle, Flag.RESTRICTED_RANGE | Flag.READ_ONLY, 2,
                                    restricted_offset=5 * MiB, restricted_length=3 * MiB)
        device = _virtdisk.GetVirtualDiskPhysicalPath(handle)
        assert loop_sysfs(device, "sizelimit") == str(3 * MiB)
        with open(device, "rb") as block_device:
            assert block_device.read() == content[5 * MiB:8 * MiB]
        _virtdisk.DetachVirtualDisk(handle)
        assert not bound(device)


def partition(image: Path, script: str) -> None:
    """Writes a partition table with sfdisk through the whole disk's device."""
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as device:
        run_input(_tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", device.path,
                  stdin=script)


def run_input(*command: str, stdin: str) -> None:
    subprocess.run(command, input=stdin, check=True, capture_output=True, text=True)


@pytest.mark.parametrize("label", ["dos", "gpt"])
def test_single_partition_is_the_data_partition(tmp_path: Path, mount_point: Path,
                                                label: str) -> None:
    image = fixed_vhdx(tmp_path / f"{label}.vhdx", 64 * MiB)
    if label == "gpt":            # an EFI system partition first, then the data
        script = ("label: gpt\nstart=2048, size=8192, type=U\n"
                  "start=10240, size=81920, type=L\n")
        start, sectors = 10240, 81920
    else:
        script = "label: dos\nstart=4096, size=61440, type=83\n"
        start, sectors = 4096, 61440
    partition(image, script)
    with virtdisk.open(image, read_only=False) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.SINGLE_PARTITION)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        payload = int(loop_sysfs(device, "offset")) - start * 512
        assert loop_sysfs(device, "sizelimit") == str(sectors * 512)
        run(_tool("mkfs.ext4"), "-q", "-F", device)
        run("mount", device, mount_point)
        (mount_point / "in-the-partition.txt").write_text("partition data\n")
        run("umount", mount_point)
        _virtdisk.DetachVirtualDisk(disk.handle)
    raw = tmp_path / "whole.raw"
    run(_tool("qemu-img"), "convert", "-O", "raw", image, raw)
    content = raw.read_bytes()
    assert payload > 0 and payload % MiB == 0     # the VHDX's first payload block
    part = tmp_path / "partition.raw"
    part.write_bytes(content[start * 512:(start + sectors) * 512])
    run(_tool("e2fsck"), "-n", "-f", part)
    assert run(_tool("debugfs"), "-R", "cat /in-the-partition.txt", part).stdout == (
        "partition data\n")


def test_single_partition_refusals(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "parts.vhd", 32 * MiB)
    def single(disk: virtdisk.VirtualDisk) -> Callable[[], None]:
        return lambda: _virtdisk.AttachVirtualDisk(disk.handle,
                                                   Flag.SINGLE_PARTITION | Flag.READ_ONLY)

    with virtdisk.open(image) as disk:
        error = refusal(virtdisk.VirtualDiskError, ERROR_NOT_FOUND, single(disk))
        assert "no partition table" in str(error.detail)
    partition(image, "label: dos\nstart=2048, size=8192, type=83\n"
                     "start=10240, size=8192, type=7\n")
    with virtdisk.open(image) as disk:
        error = refusal(virtdisk.VirtualDiskError, ERROR_NOT_FOUND, single(disk))
        assert "2 data partitions" in str(error.detail)
        refusal(virtdisk.VirtualDiskError, ERROR_INVALID_PARAMETER,
                lambda: _virtdisk.AttachVirtualDisk(
                    disk.handle, Flag.SINGLE_PARTITION | Flag.RESTRICTED_RANGE | Flag.READ_ONLY,
                    2, restricted_offset=0, restricted_length=MiB))
        assert not disk.is_loaded


@pytest.mark.parametrize("flag", [Flag.AT_BOOT, Flag.NO_LOCAL_HOST | Flag.PERMANENT_LIFETIME])
def test_flags_the_host_does_not_support(tmp_path: Path, flag: int) -> None:
    image = fixed_vhd(tmp_path / "flags.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        with pytest.raises(virtdisk.VirtualDiskError) as refused:
            _virtdisk.AttachVirtualDisk(disk.handle, flag | Flag.READ_ONLY)
        assert refused.value.winerror == ERROR_NOT_SUPPORTED
        assert refused.value.detail
        assert not disk.is_loaded


def test_accepted_flags_change_nothing(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "accepted.vhd", 4 * MiB)
    accepted = (Flag.NO_DRIVE_LETTER | Flag.REGISTER_VOLUME | Flag.NON_PNP
                | Flag.BYPASS_DEFAULT_ENCRYPTION_POLICY | Flag.NO_SECURITY_DESCRIPTOR)
    with virtdisk.open(image) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, accepted | Flag.READ_ONLY)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        assert read_only_device(device)
        _virtdisk.DetachVirtualDisk(disk.handle)


def test_refusals_with_windows_codes(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "twice.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.DetachVirtualDisk(disk.handle))
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.GetVirtualDiskPhysicalPath(disk.handle))
        with disk.attach() as device:
            refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION, disk.attach)
            # Another process: the records and the loop say it is attached.
            other = run(sys.executable, "-c", (
                "import sys, virtdisk\n"
                "try:\n"
                f"    virtdisk.open({str(image)!r}).attach()\n"
                "except virtdisk.VirtualDiskError as error:\n"
                "    print(error.winerror)\n"), check=False)
            assert other.stdout.strip() == str(ERROR_SHARING_VIOLATION), other.stderr
            assert device.path in run("losetup", "-j", image).stdout


def test_second_attach_names_the_device_and_its_holder(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "held.vhd", 4 * MiB)
    with virtdisk.open(image, read_only=False) as disk:
        with disk.attach() as device:
            by_itself = refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION, disk.attach)
            assert by_itself.detail == f"this handle has attached the image already, as {device.path}"
            assert str(by_itself).endswith(f": {by_itself.detail} [ERROR_SHARING_VIOLATION 32]")
    with virtdisk.open(image) as disk, disk.attach() as device:
        # Readers share the image; each attach opens a handle of its own.
        with virtdisk.open(image) as second:
            other = refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION, second.attach)
        assert other.detail == ("another handle of this process has attached the image "
                                f"already, as {device.path}")
        assert other.detail in str(other)
    with virtdisk.open(image) as disk:
        attachment = disk.attach(permanent=True)
    try:
        with virtdisk.open(image) as disk:
            error = refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION, disk.attach)
        assert error.detail == (f"the image is attached already, as {attachment.path}, "
                                "with permanent lifetime")
        assert "(null)" not in str(error)
    finally:
        attachment.detach()


def test_detach_by_path_detaches_the_handle_that_attached(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "by_path.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.READ_ONLY | Flag.PERMANENT_LIFETIME)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        assert disk.is_loaded and bound(device)
        virtdisk.detach(image)
        assert not bound(device)
        assert not disk.is_loaded
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.GetVirtualDiskPhysicalPath(disk.handle))
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.DetachVirtualDisk(disk.handle))
        # The image attaches again in this process, through another handle
        # and through this one.
        with virtdisk.open(image) as second, second.attach() as again:
            assert bound(again.path)
            assert disk.is_loaded          # the image is attached, by another handle
        assert virtdisk.attached() == []
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.READ_ONLY)
        assert read_only_device(_virtdisk.GetVirtualDiskPhysicalPath(disk.handle))
        _virtdisk.DetachVirtualDisk(disk.handle)
    assert virtdisk.attached() == []


def test_detach_from_another_process_detaches_the_handle_that_attached(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "elsewhere.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, Flag.READ_ONLY | Flag.PERMANENT_LIFETIME)
        device = _virtdisk.GetVirtualDiskPhysicalPath(disk.handle)
        run(sys.executable, "-m", "virtdisk", "detach", image)
        assert not bound(device)
        assert not disk.is_loaded
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.GetVirtualDiskPhysicalPath(disk.handle))
        with virtdisk.open(image) as second, second.attach() as again:
            assert bound(again.path)
            assert disk.is_loaded          # the image is attached, by another handle
            # The handle that attached first holds nothing: its detach
            # reaches no device, the new one least of all.
            refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION,
                    lambda: _virtdisk.DetachVirtualDisk(disk.handle))
            assert bound(again.path)
        refusal(virtdisk.NotAttachedError, ERROR_NOT_READY,
                lambda: _virtdisk.DetachVirtualDisk(disk.handle))


def test_no_local_host_attach_of_a_device_is_refused(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "device.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        attachment = disk.attach(permanent=True)
    try:
        with virtdisk.open(image) as disk:
            error = refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION,
                            lambda: _virtdisk.AttachVirtualDisk(
                                disk.handle, Flag.NO_LOCAL_HOST | Flag.READ_ONLY))
            assert attachment.path in str(error.detail)
            assert bound(attachment.path)
            # Content access rests on that attach, so it is refused too.
            with pytest.raises(virtdisk.DiskInUseError):
                disk.read(0, 512)
    finally:
        attachment.detach()
    with subprocess.Popen([sys.executable, "-m", "virtdisk", "attach", str(image),
                           "--read-only"], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            device = holder.stdout.readline().strip()
            with virtdisk.open(image) as disk:
                error = refusal(virtdisk.DiskInUseError, ERROR_SHARING_VIOLATION,
                                lambda: disk.read(0, 512))
            assert error.detail == (f"the image is attached already, as {device}, by a handle "
                                    f"of process {holder.pid}")
        finally:
            holder.kill()
            holder.wait()
    with virtdisk.open(image) as disk:       # detached: content access is back
        assert disk.read(0, 512) == bytes(512)


def test_image_on_a_loop_made_elsewhere_is_refused(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "losetup.vhd", 4 * MiB)
    device = run("losetup", "-f", "--show", "-r", image).stdout.strip()
    try:
        with virtdisk.open(image) as disk:
            with pytest.raises(virtdisk.DiskInUseError) as refused:
                disk.attach()
            assert device in str(refused.value.detail)
    finally:
        run("losetup", "-d", device)


def test_dirty_vhdx_read_only_is_access_denied(tmp_path: Path) -> None:
    clean = fixed_vhdx(tmp_path / "clean.vhdx", 8 * MiB).read_bytes()
    after = bytearray(clean)
    # A data sector of the first payload block, changed only in the log.
    bat_offset, _ = vhdx_builder.regions(clean)[_BAT_REGION]
    payload = (struct.unpack_from("<Q", clean, bat_offset)[0] >> 20) * MiB
    after[payload:payload + 512] = b"\x5a" * 512
    dirty, _ = vhdx_builder.make_dirty(clean, after)
    image = tmp_path / "dirty.vhdx"
    image.write_bytes(dirty)
    with virtdisk.open(image) as disk:
        error = refusal(virtdisk.AccessDeniedError, ERROR_ACCESS_DENIED, disk.attach)
        assert "log" in str(error.detail)


def test_corrupt_image_is_refused_before_any_device(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "corrupt.vhd", 4 * MiB)
    raw = bytearray(image.read_bytes())
    raw[-512 + 64] ^= 0xFF            # the footer's checksum no longer matches
    image.write_bytes(raw)
    with pytest.raises(virtdisk.CorruptImageError):
        virtdisk.open(image).attach()
    assert run("losetup", "-j", image).stdout == ""


def test_without_cap_sys_admin_is_privilege_not_held(tmp_path: Path) -> None:
    setpriv = _tool("setpriv")
    image = fixed_vhd(tmp_path / "user.vhd", 4 * MiB)
    image.chmod(0o644)
    script = ("import virtdisk\n"
              "try:\n"
              f"    virtdisk.open({str(image)!r}).attach()\n"
              "except virtdisk.VirtualDiskError as error:\n"
              "    print(error.winerror)\n"
              "    print(error.detail)\n")
    # Root without CAP_SYS_ADMIN in its bounding set: what an unprivileged
    # user has of it (the interpreter lives under /root, which other users
    # cannot reach here).
    result = run(setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
                 sys.executable, "-c", script, check=False)
    code, detail = (result.stdout.splitlines() + ["", ""])[:2]
    assert code == str(ERROR_PRIVILEGE_NOT_HELD), result.stderr
    assert "CAP_SYS_ADMIN" in detail
    assert run("losetup", "-j", image).stdout == ""


# ---------------------------------------------------------------- lifetimes

def test_permanent_attach_crosses_processes(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "permanent.vhd", 4 * MiB)
    made = run(sys.executable, "-m", "virtdisk", "attach", image, "--permanent", "--json")
    attachment = json.loads(made.stdout)
    device = attachment["path"]
    try:
        assert attachment["permanent"] is True and attachment["read_only"] is False
        assert bound(device) and loop_sysfs(device, "autoclear") == "0"
        listed = {item.image_path: item for item in virtdisk.attached()}
        assert listed[str(image)].path == device and listed[str(image)].permanent
        assert str(image) in _virtdisk.GetAllAttachedVirtualDiskPhysicalPaths()
        with virtdisk.open(image) as disk:
            assert disk.is_loaded
            assert _virtdisk.GetVirtualDiskPhysicalPath(disk.handle) == device
        cli_list = json.loads(run(sys.executable, "-m", "virtdisk", "list", "--json").stdout)
        assert {"path": device, "image_path": str(image), "read_only": False,
                "permanent": True} in cli_list
    finally:
        run(sys.executable, "-m", "virtdisk", "detach", image, check=False)
    assert not bound(device)
    assert str(image) not in _virtdisk.GetAllAttachedVirtualDiskPhysicalPaths()
    refused = run(sys.executable, "-m", "virtdisk", "detach", image, check=False)
    assert refused.returncode == 1 and "ERROR_NOT_READY 21" in refused.stderr


def test_permanent_attach_outlives_its_disk(tmp_path: Path) -> None:
    image = fixed_vhdx(tmp_path / "outlives.vhdx", 8 * MiB)
    with virtdisk.open(image) as disk:
        attachment = disk.attach(permanent=True)
    try:
        assert bound(attachment.path)
        assert [item.path for item in virtdisk.attached()] == [attachment.path]
    finally:
        attachment.detach()
    assert not bound(attachment.path)
    assert virtdisk.attached() == []


def test_permanent_attach_opens_only_with_detach_access(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "opens.vhd", 4 * MiB)
    Access = virtdisk.VirtualDiskAccessMask
    with virtdisk.open(image) as disk:
        attachment = disk.attach(permanent=True)
    try:
        for access in (Access.GET_INFO, Access.ATTACH_RO | Access.GET_INFO):
            error = refusal(virtdisk.AccessDeniedError, ERROR_ACCESS_DENIED,
                            lambda: virtdisk.open(image, access=access, rw_depth=0))
            assert "VIRTUAL_DISK_ACCESS_DETACH" in str(error.detail)
        # Attached read-only: no open may write.
        refusal(virtdisk.AccessDeniedError, ERROR_ACCESS_DENIED,
                lambda: virtdisk.open(image, read_only=False))
        with virtdisk.open(image, access=Access.DETACH | Access.GET_INFO, rw_depth=0) as disk:
            assert disk.is_loaded
        with virtdisk.open(image) as disk:           # version 2: every right
            assert disk.is_loaded
    finally:
        attachment.detach()
    virtdisk.open(image, access=Access.GET_INFO, rw_depth=0).close()


def test_handle_bound_attach_ends_with_its_process(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "bound.vhd", 4 * MiB)
    with subprocess.Popen([sys.executable, "-m", "virtdisk", "attach", str(image)],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            device = holder.stdout.readline().strip()
            assert bound(device) and loop_sysfs(device, "autoclear") == "1"
            assert [item.path for item in virtdisk.attached()] == [device]
            # A handle-bound attach belongs to its process: not detachable here.
            with pytest.raises(virtdisk.DiskInUseError):
                virtdisk.detach(image)
        finally:
            holder.kill()
            holder.wait()
    assert not bound(device)
    assert virtdisk.attached() == []
    with virtdisk.open(image) as disk:
        assert not disk.is_loaded


def test_cli_attach_holds_until_terminated(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "held.vhd", 4 * MiB)
    with subprocess.Popen([sys.executable, "-m", "virtdisk", "attach", str(image),
                           "--read-only"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        device = holder.stdout.readline().strip()
        assert bound(device) and read_only_device(device)
        holder.send_signal(signal.SIGTERM)
        assert holder.wait() == 0
    assert not bound(device)


def test_collected_attachment_warns(tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "warn.vhd", 4 * MiB)
    with virtdisk.open(image) as disk:
        attachment = disk.attach()
        device = attachment.path
        with pytest.warns(ResourceWarning, match="collected while attached"):
            del attachment
        assert not bound(device)


# ---------------------------------------------------------------- the C API, under ASan and UBSan

@pytest.fixture(scope="module")
def attach_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("attach_harness"), "attach_main",
                           ["api/attach_host.c", "api/attached_paths.c", "host/attach_record.c",
                            "host/loop.c"],
                           defines=[f"-I{ROOT / 'src' / 'include'}", "-pthread"], sanitize=True)


def harness_run(harness: Path, image: Path, mode: str, flags: int, action: str) -> dict[str, object]:
    answer: dict[str, object] = json.loads(
        run(harness, image, mode, format(flags, "x"), action).stdout)
    return answer


def test_c_api_life_cycle(attach_harness: Path, tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "c api.vhd", 4 * MiB)
    got = harness_run(attach_harness, image, "rw", 0, "detach")
    device = got["path"][0]  # type: ignore[index]
    assert got["attach"] == 0 and got["open"] == 0 and got["close"] == 0
    assert device.startswith("/dev/loop")
    assert got["path_small"] == 122 and got["path_needed"] == 2 * (len(device) + 1)
    assert got["list_empty"] == 122 and got["list_needed"] == 2 * (len(str(image)) + 2)
    assert got["list"] == [str(image)]
    assert got["loaded_code"] == 0 and got["loaded"] == 1
    assert got["detach"] == 0 and got["detach_again"] == ERROR_NOT_READY
    assert not bound(device)


def test_c_api_lifetimes(attach_harness: Path, tmp_path: Path) -> None:
    image = fixed_vhdx(tmp_path / "lifetimes.vhdx", 8 * MiB)
    closed = harness_run(attach_harness, image, "ro", Flag.READ_ONLY, "close")
    assert closed["attach"] == 0 and closed["close"] == 0
    assert run("losetup", "-j", image).stdout == ""      # the handle's close detached
    kept = harness_run(attach_harness, image, "ro", Flag.READ_ONLY | Flag.PERMANENT_LIFETIME,
                       "close")
    assert kept["attach"] == 0
    device = run("losetup", "-j", image).stdout.split(":")[0]
    assert bound(device) and read_only_device(device)
    assert harness_run(attach_harness, image, "ro", 0, "detach-only")["detach"] == 0
    assert not bound(device)
    assert harness_run(attach_harness, image, "ro", 0, "detach-only")["detach"] == ERROR_NOT_READY


def test_c_api_refusals(attach_harness: Path, tmp_path: Path) -> None:
    image = fixed_vhd(tmp_path / "refusals.vhd", 4 * MiB)
    # A read-write attach through a read-only handle; AT_BOOT.
    assert harness_run(attach_harness, image, "ro", 0, "close")["attach"] == ERROR_ACCESS_DENIED
    at_boot = harness_run(attach_harness, image, "rw", Flag.AT_BOOT, "close")
    assert at_boot["attach"] == ERROR_NOT_SUPPORTED and "AT_BOOT" in str(at_boot["detail"])


def test_bench_attach_quick_prints_its_tables() -> None:
    _tool("fio")
    script = ROOT / "benchmarks" / "bench_attach.py"
    if not script.is_file():
        pytest.skip(f"{script} is not here (tests run outside the source tree)")
    result = run(sys.executable, script, "--quick")
    for title in ("machine's disk: MiB/s (seq), kIOPS (rand)", "raw file (loop)", "fixed VHD",
                  "fixed VHDX", "x raw loop", "\ntargets\n"):
        assert title in result.stdout
    assert "dynamic VHDX (export)" in result.stdout
