"""GetStorageDependencyInformation on the engine: the chain of a disk, from
its image handle and through its device, and the buffer protocol.

The chain is VHDX base <- child <- grandchild, made by the engine.  What
the entries must say comes from how the files were made and from the host
itself: os.stat (the host volume holds the image: same st_dev, and it is a
mount point), /proc/self/mountinfo through os.path.ismount, and sysfs for
the device.  tests/c/dependency_main.c sizes its buffer as a C caller of
VirtDisk.dll does.  The device tests need root and loop devices, and skip
with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from c_harness import compile_harness

_virtdisk = pytest.importorskip("_virtdisk")
import virtdisk  # noqa: E402

if _virtdisk.PLATFORM != "engine":
    pytest.skip("device handles here are the engine's (vd_engine_open_device)",
                allow_module_level=True)

Flag = _virtdisk.DependentDiskFlag
Query = _virtdisk.GetStorageDependencyFlag
VHDX = int(_virtdisk.VirtualStorageTypeDevice.VHDX)
ERROR_FILE_NOT_FOUND = 2
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_INSUFFICIENT_BUFFER = 122
HEADER = 8                    # offsetof(STORAGE_DEPENDENCY_INFO, Version1Entries)
TYPE_1_SIZE = 28
TYPE_2_SIZE = 64 if struct.calcsize("P") == 8 else 48   # four pointers after 32 bytes


@pytest.fixture
def chain(tmp_path: Path) -> list[Path]:
    """grandchild, child, base: the order the entries must come in."""
    base = tmp_path / "base.vhdx"
    child = tmp_path / "child.avhdx"
    grandchild = tmp_path / "grandchild.avhdx"
    virtdisk.create(base, "16MiB").close()
    virtdisk.create(child, parent=base).close()
    virtdisk.create(grandchild, parent=child).close()
    return [grandchild.resolve(), child.resolve(), base.resolve()]


def check_placed(entry: virtdisk.StorageDependency, image: Path) -> None:
    """The host volume is the mount point of the file system holding the
    image, and joined with the relative path names the image."""
    assert entry.host_volume.endswith("/")
    assert os.path.ismount(entry.host_volume)
    assert os.stat(entry.host_volume).st_dev == os.stat(image).st_dev
    assert not entry.relative_path.startswith("/")
    assert entry.image_path == str(image)


def test_chain_through_the_image_handle(chain: list[Path]) -> None:
    with virtdisk.open(chain[0]) as disk:
        entries = disk.storage_dependencies()
    assert [entry.ancestor_level for entry in entries] == [1, 2, 3]
    for entry, image in zip(entries, chain):
        check_placed(entry, image)
        assert entry.storage_type == VHDX
        assert entry.device == ""                     # not attached
        assert entry.flags & Flag.NO_HOST_DISK
        assert entry.flags & Flag.MULT_BACKING_FILES
        assert not entry.flags & Flag.FULLY_ALLOCATED  # dynamic and differencing
    assert not entries[0].is_parent
    assert all(entry.is_parent and entry.read_only for entry in entries[1:])


def test_opened_without_parents_is_the_image_alone(chain: list[Path]) -> None:
    with virtdisk.open(chain[0], no_parents=True) as disk:
        entries = disk.storage_dependencies()
    assert [entry.image_path for entry in entries] == [str(chain[0])]
    assert entries[0].flags & Flag.MULT_BACKING_FILES    # it still has a parent


def test_fixed_image_is_fully_allocated(tmp_path: Path) -> None:
    path = tmp_path / "fixed.vhd"
    virtdisk.create(path, "4MiB", type="fixed").close()
    with virtdisk.open(path) as disk:
        (entry,) = disk.storage_dependencies()
    assert entry.flags & Flag.FULLY_ALLOCATED
    assert not entry.flags & Flag.MULT_BACKING_FILES
    assert entry.storage_type == _virtdisk.VirtualStorageTypeDevice.VHD
    check_placed(entry, path.resolve())


def test_version_1_entries_carry_no_names(chain: list[Path]) -> None:
    with virtdisk.open(chain[0]) as disk:
        two = _virtdisk.GetStorageDependencyInformation(disk.handle, Query.HOST_VOLUMES, 2)
        one = _virtdisk.GetStorageDependencyInformation(disk.handle, Query.HOST_VOLUMES, 1)
    assert [entry.dependency_type_flags for entry in one] == \
        [entry.dependency_type_flags for entry in two]
    assert all(entry.dependency_device_name is None and entry.ancestor_level == 0
               for entry in one)


def test_bad_flags_and_versions_are_invalid_parameter(chain: list[Path]) -> None:
    with virtdisk.open(chain[0]) as disk:
        for flags, version in ((0x4, 2), (Query.HOST_VOLUMES | 0x100, 2),
                               (Query.HOST_VOLUMES, 3), (Query.HOST_VOLUMES, 0)):
            with pytest.raises(virtdisk.InvalidParameterError) as refused:
                _virtdisk.GetStorageDependencyInformation(disk.handle, flags, version)
            assert refused.value.winerror == ERROR_INVALID_PARAMETER


def test_device_handles_are_refused_by_every_other_function(tmp_path: Path) -> None:
    with _virtdisk.open_device(tmp_path) as handle:
        with pytest.raises(virtdisk.InvalidHandleError):
            _virtdisk.GetVirtualDiskInformation(handle, _virtdisk.GetVirtualDiskInfoVersion.SIZE)
        with pytest.raises(virtdisk.InvalidHandleError):
            _virtdisk.GetVirtualDiskPhysicalPath(handle)
    assert _virtdisk.live_handle_count() == 0


def test_device_paths_that_name_no_disk_or_volume(tmp_path: Path) -> None:
    with pytest.raises(virtdisk.ImageNotFoundError) as missing:
        _virtdisk.open_device(tmp_path / "missing")
    assert missing.value.winerror == ERROR_FILE_NOT_FOUND
    regular = tmp_path / "file"
    regular.write_bytes(b"")
    with pytest.raises(virtdisk.InvalidParameterError):
        _virtdisk.open_device(regular)


def test_a_volume_without_attached_disks_hosts_none(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTDISK_RUN_DIR", str(tmp_path / "run"))
    assert virtdisk.hosted_virtual_disks(tmp_path) == []
    # A directory of a file system on no virtual disk depends on none.
    assert virtdisk.storage_dependencies(tmp_path) == []


# ---------------------------------------------------------------- the C caller's view

@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("dependency_harness"), "dependency_main",
                           ["storage_dependency.c", "device_handle.c"], sanitize=True)


def harness_run(binary: Path, kind: str, path: Path | str, flags: int,
                version: int) -> dict[str, Any]:
    result = subprocess.run([str(binary), kind, str(path), str(flags), str(version)],
                            capture_output=True, text=True, check=True)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.mark.parametrize("version", [1, 2])
def test_buffer_size_protocol(harness: Path, chain: list[Path], version: int) -> None:
    answer = harness_run(harness, "image", chain[0], int(Query.HOST_VOLUMES), version)
    assert answer["open"] == 0
    # Below the header the Version cannot be read: the header's size.
    assert answer["below_header"] == [ERROR_INSUFFICIENT_BUFFER, HEADER]
    assert answer["unknown_flags"] == ERROR_INVALID_PARAMETER
    assert answer["version_0"] == ERROR_INVALID_PARAMETER
    status, needed = answer["header_only"]
    assert status == ERROR_INSUFFICIENT_BUFFER
    if version == 1:
        assert needed == HEADER + 3 * TYPE_1_SIZE
    else:
        # Each entry's four names in UTF-16 with their NULs: the host
        # volume and the relative path spell the image's path; the device
        # and the dependent volume are empty for a disk not attached.
        names = sum(2 * (len(str(image)) + 4) for image in chain)
        assert needed == HEADER + 3 * TYPE_2_SIZE + names
    assert answer["one_short"] == [ERROR_INSUFFICIENT_BUFFER, needed]
    assert answer["exact"] == [0, needed]
    assert answer["version"] == version
    entries = answer["entries"]
    assert isinstance(entries, list) and len(entries) == 3
    assert all(entry["device"] == VHDX for entry in entries)
    if version == 2:
        assert [entry["level"] for entry in entries] == [1, 2, 3]
        assert [entry["host_volume"] + entry["relative_path"] for entry in entries] == \
            [str(image) for image in chain]
        assert answer["strings_inside"] == 1
    assert answer["handles_at_end"] == 0


# ---------------------------------------------------------------- through the device (root)

def _device_capable() -> str | None:
    if os.geteuid() != 0:
        return "attaching needs root (CAP_SYS_ADMIN)"
    if not os.path.exists("/dev/loop-control"):
        return "the host has no loop devices"
    if not os.path.exists("/dev/fuse"):
        return "a differencing VHDX attaches through a FUSE export: no /dev/fuse"
    return None


needs_device = pytest.mark.skipif(_device_capable() is not None, reason=str(_device_capable()))


def run(*command: str | os.PathLike[str]) -> None:
    subprocess.run([os.fspath(part) for part in command], check=True, capture_output=True)


@needs_device
def test_chain_through_the_attached_device(tmp_path: Path, chain: list[Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTDISK_RUN_DIR", str(tmp_path / "run"))
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    with virtdisk.open(chain[0], read_only=False) as disk, disk.attach() as device:
        assert Path(f"/sys/block/{Path(device.path).name}/loop/backing_file").exists()
        from_device = device.storage_dependencies()
        assert [entry.ancestor_level for entry in from_device] == [1, 2, 3]
        for entry, image in zip(from_device, chain):
            check_placed(entry, image)
            assert entry.device == device.path
            assert entry.dependent_volume == device.path
            assert not entry.flags & Flag.NO_HOST_DISK
        assert not from_device[0].read_only
        # The image handle now names its device too.
        assert [entry.device for entry in disk.storage_dependencies()] == [device.path] * 3

        run("mkfs.ext4", "-q", device.path)
        run("mount", device.path, mount_point)
        try:
            from_mount = virtdisk.storage_dependencies(mount_point)
            assert [entry.image_path for entry in from_mount] == [str(image) for image in chain]
            assert {entry.dependent_volume for entry in from_mount} == {str(mount_point)}
            (hosted,) = virtdisk.hosted_virtual_disks(tmp_path)
            assert hosted.image_path == str(chain[0])
            assert hosted.device == device.path
            assert hosted.dependent_volume == str(mount_point)   # where its file system is
        finally:
            run("umount", mount_point)
    assert virtdisk.hosted_virtual_disks(tmp_path) == []
