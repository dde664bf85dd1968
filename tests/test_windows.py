"""VirtDisk.dll itself: tests that run only on Windows (the wheel job on
windows-latest, whose runner is an administrator).

They create a disk with VirtDisk, read every information version, attach it
read-only without a drive letter, find its physical path and detach it;
mount and unmount an ISO; attach with permanent lifetime and check the
access rule of the OpenVirtualDisk page for reopening such a disk.  The
shared suites (test_mistakes.py, test_cross_platform.py) compare Windows'
answers with the engine's on the same inputs.
"""

from __future__ import annotations

import ctypes
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import iso_builder
from virtdisk import errors

pytestmark = [
    pytest.mark.windows,
    pytest.mark.skipif(vd.PLATFORM != "windows", reason="needs Windows' VirtDisk.dll"),
]

MiB = 1024 * 1024
VHDX = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX,
                             vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
ISO = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.ISO,
                            vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
Mask = vd.VirtualDiskAccessMask
Attach = vd.AttachVirtualDiskFlag
Info = vd.GetVirtualDiskInfoVersion
ERROR_VHD_INVALID_TYPE = 0xC03A001B


def running_as_administrator() -> bool:
    if sys.platform != "win32":
        return False
    return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined,unused-ignore]


needs_administrator = pytest.mark.skipif(
    not running_as_administrator(),
    reason="attaching needs an administrator (SE_MANAGE_VOLUME_PRIVILEGE)")


@pytest.fixture
def created_vhdx(tmp_path: Path) -> Iterator[tuple[Path, uuid.UUID]]:
    path = tmp_path / "created.vhdx"
    identifier = uuid.uuid4()
    handle = vd.CreateVirtualDisk(VHDX, path, Mask.NONE, vd.CreateVirtualDiskFlag.NONE, 2,
                                  maximum_size=64 * MiB, unique_id=identifier)
    handle.close()
    yield path, identifier


def test_create_then_read_every_information_version(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, identifier = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2, read_only=True) as handle:
        size = vd.GetVirtualDiskInformation(handle, Info.SIZE)
        assert size.virtual_size == 64 * MiB
        assert size.block_size == 32 * MiB       # the documented default, dynamic VHDX
        assert size.sector_size == 512
        assert size.physical_size >= 4 * MiB
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == identifier
        assert isinstance(vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER), uuid.UUID)
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_STORAGE_TYPE) == VHDX
        assert vd.GetVirtualDiskInformation(handle, Info.PROVIDER_SUBTYPE) == vd.ProviderSubtype.DYNAMIC
        assert vd.GetVirtualDiskInformation(handle, Info.IS_LOADED) is False
        assert vd.GetVirtualDiskInformation(handle, Info.IS_4K_ALIGNED) is True
        assert vd.GetVirtualDiskInformation(handle, Info.SMALLEST_SAFE_VIRTUAL_SIZE) <= 64 * MiB
        physical = vd.GetVirtualDiskInformation(handle, Info.PHYSICAL_DISK)
        assert physical.logical_sector_size in (512, 4096)
        assert vd.GetVirtualDiskInformation(handle, Info.VHD_PHYSICAL_SECTOR_SIZE) in (512, 4096)
        assert 0 <= vd.GetVirtualDiskInformation(handle, Info.FRAGMENTATION) <= 100
        tracking = vd.GetVirtualDiskInformation(handle, Info.CHANGE_TRACKING_STATE)
        assert tracking.enabled is False
        # The engine answers ERROR_VHD_INVALID_TYPE, with this class, for a
        # parent query on a disk that has no parent; Windows must agree.
        for version in (Info.PARENT_LOCATION, Info.PARENT_IDENTIFIER, Info.PARENT_TIMESTAMP):
            with pytest.raises(errors.VirtualDiskError) as caught:
                vd.GetVirtualDiskInformation(handle, version)
            assert caught.value.winerror == ERROR_VHD_INVALID_TYPE, version.name


def test_creating_over_an_existing_file_fails(created_vhdx: tuple[Path, uuid.UUID]) -> None:
    path, _ = created_vhdx
    with pytest.raises(FileExistsError):
        vd.CreateVirtualDisk(VHDX, path, Mask.NONE, 0, 2, maximum_size=64 * MiB)


def test_two_writable_opens_are_a_sharing_violation(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, _ = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2):
        with pytest.raises(errors.SharingViolationError):
            vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2)


@needs_administrator
def test_attach_read_only_without_drive_letter_then_detach(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, _ = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        vd.AttachVirtualDisk(handle, Attach.READ_ONLY | Attach.NO_DRIVE_LETTER)
        try:
            physical_path = vd.GetVirtualDiskPhysicalPath(handle)
            assert physical_path.startswith("\\\\.\\PhysicalDrive"), physical_path
            assert vd.GetVirtualDiskInformation(handle, Info.IS_LOADED) is True
            if vd.features()["GetAllAttachedVirtualDiskPhysicalPaths"]:
                assert physical_path in vd.GetAllAttachedVirtualDiskPhysicalPaths()
        finally:
            vd.DetachVirtualDisk(handle)
        assert vd.GetVirtualDiskInformation(handle, Info.IS_LOADED) is False


@needs_administrator
def test_mount_and_unmount_an_iso(tmp_path: Path) -> None:
    image = tmp_path / "minimal.iso"
    image.write_bytes(iso_builder.build())
    # ISO images open with version 1 and a read access mask, and attach
    # read-only (research/virtdisk-api.md §5 item 3).
    with vd.OpenVirtualDisk(ISO, image, Mask.READ, 0, 1) as handle:
        vd.AttachVirtualDisk(handle, Attach.READ_ONLY | Attach.NO_DRIVE_LETTER)
        try:
            physical_path = vd.GetVirtualDiskPhysicalPath(handle)
            assert physical_path.startswith("\\\\.\\CdRom"), physical_path
        finally:
            vd.DetachVirtualDisk(handle)


@needs_administrator
def test_permanent_lifetime_and_the_detach_access_rule(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, _ = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        vd.AttachVirtualDisk(handle, Attach.READ_ONLY | Attach.NO_DRIVE_LETTER
                             | Attach.PERMANENT_LIFETIME)
    # The attachment outlived its handle.
    try:
        with vd.OpenVirtualDisk(VHDX, path, Mask.GET_INFO, 0, 1) as info_handle:
            assert vd.GetVirtualDiskInformation(info_handle, Info.IS_LOADED) is True
            # Without VIRTUAL_DISK_ACCESS_DETACH in the mask, a handle cannot
            # detach a permanently attached disk (the OpenVirtualDisk page).
            with pytest.raises(errors.VirtualDiskError):
                vd.DetachVirtualDisk(info_handle)
    finally:
        with vd.OpenVirtualDisk(VHDX, path, Mask.DETACH | Mask.GET_INFO, 0, 1) as detacher:
            vd.DetachVirtualDisk(detacher)
    with vd.OpenVirtualDisk(VHDX, path, Mask.GET_INFO, 0, 1) as info_handle:
        assert vd.GetVirtualDiskInformation(info_handle, Info.IS_LOADED) is False


def test_newer_entry_points_are_resolved_by_name() -> None:
    features = vd.features()
    # Windows 10 and Server 2016 and later, which windows-latest runs, have
    # all nine of the functions resolved at import.
    assert all(features.values()), [name for name, present in features.items() if not present]


# ------------------------------------------------------- changing a disk

Set = vd.SetVirtualDiskInfoVersion
ERROR_ACCESS_DENIED = 5
ERROR_NOT_FOUND = 1168


def test_set_virtual_disk_id_and_physical_sector_size(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, _ = created_vhdx
    new_id = uuid.uuid4()
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        vd.SetVirtualDiskInformation(handle, Set.VIRTUAL_DISK_ID, virtual_disk_id=new_id)
        vd.SetVirtualDiskInformation(handle, Set.PHYSICAL_SECTOR_SIZE,
                                     vhd_physical_sector_size=512)
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2, read_only=True) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == new_id
        assert vd.GetVirtualDiskInformation(handle, Info.VHD_PHYSICAL_SECTOR_SIZE) == 512


def test_a_read_only_handle_cannot_change_the_disk(
    created_vhdx: tuple[Path, uuid.UUID]
) -> None:
    path, _ = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2, read_only=True) as handle:
        with pytest.raises(errors.VirtualDiskError) as raised:
            vd.SetVirtualDiskInformation(handle, Set.VIRTUAL_DISK_ID,
                                         virtual_disk_id=uuid.uuid4())
        assert raised.value.winerror == ERROR_ACCESS_DENIED


def test_user_metadata_items_round_trip(created_vhdx: tuple[Path, uuid.UUID]) -> None:
    path, _ = created_vhdx
    item, other = uuid.uuid4(), uuid.uuid4()
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        vd.SetVirtualDiskMetadata(handle, item, b"first value")
        vd.SetVirtualDiskMetadata(handle, other, bytes(range(256)) * 40)
        vd.SetVirtualDiskMetadata(handle, item, b"replaced")
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        assert sorted(vd.EnumerateVirtualDiskMetadata(handle)) == sorted([item, other])
        assert vd.GetVirtualDiskMetadata(handle, item) == b"replaced"
        assert vd.GetVirtualDiskMetadata(handle, other) == bytes(range(256)) * 40
        vd.DeleteVirtualDiskMetadata(handle, other)
        assert vd.EnumerateVirtualDiskMetadata(handle) == [item]
        with pytest.raises(errors.VirtualDiskError) as raised:
            vd.GetVirtualDiskMetadata(handle, other)
        assert raised.value.winerror == ERROR_NOT_FOUND


def test_pointing_a_child_at_its_moved_parent(tmp_path: Path) -> None:
    base = tmp_path / "base.vhdx"
    vd.CreateVirtualDisk(VHDX, base, Mask.NONE, 0, 2, maximum_size=64 * MiB).close()
    child = tmp_path / "child.avhdx"
    vd.CreateVirtualDisk(VHDX, child, Mask.NONE, 0, 2, parent_path=base).close()
    moved = tmp_path / "elsewhere" / "base.vhdx"
    moved.parent.mkdir()
    base.rename(moved)
    with vd.OpenVirtualDisk(VHDX, child, Mask.NONE, vd.OpenVirtualDiskFlag.NO_PARENTS, 2) \
            as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=str(moved))
    with vd.OpenVirtualDisk(VHDX, child, Mask.NONE, 0, 2, read_only=True) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved
        assert Path(location.paths[0]).resolve() == moved.resolve()
