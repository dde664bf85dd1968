"""VirtDisk.dll itself: tests that run only on Windows (the wheel job on
windows-latest, whose runner is an administrator).

They create a disk with VirtDisk, read every information version, attach it
read-only without a drive letter, find its physical path and detach it;
mount and unmount an ISO; attach with permanent lifetime and check the
access rule of the OpenVirtualDisk page for reopening such a disk.  Then
content: RawSCSIVirtualDisk on a NO_LOCAL_HOST attach of a VHDX that
CreateVirtualDisk made (INQUIRY, READ CAPACITY, WRITE/READ round trips, a
write on a read-only attach), the facade's read/write/unmap/content() over
it, conversions VHD <-> VHDX <-> raw and ``virtdisk dump``.  The
shared suites (test_mistakes.py, test_cross_platform.py) compare Windows'
answers with the engine's on the same inputs.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import iso_builder
import virtdisk
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


# ------------------------------------------------------- content

GOOD = 0
CHECK_CONDITION = 2
DATA_PROTECT = 7
ERROR_NOT_READY = 21
SECTOR = 512


def scsi(handle: vd.VirtualDiskHandle, cdb: bytes, data: bytearray | bytes | None = None,
         *, data_in: bool = True) -> vd.RawScsiResponse:
    return vd.RawSCSIVirtualDisk(handle, cdb, data_in=data_in, data=data)


def rw10(opcode: int, lba: int, blocks: int) -> bytes:
    """A READ(10) (0x28) or WRITE(10) (0x2A) CDB (SBC-4 5.16, 5.40)."""
    return bytes((opcode, 0)) + lba.to_bytes(4, "big") + b"\0" + blocks.to_bytes(2, "big") + b"\0"


def sense_key(answer: vd.RawScsiResponse) -> int:
    """The sense key of fixed-format sense data (SPC-5 4.4.3)."""
    return answer.sense_info[2] & 0x0F


@needs_administrator
def test_raw_scsi_on_a_no_local_host_attach(created_vhdx: tuple[Path, uuid.UUID]) -> None:
    path, _ = created_vhdx
    data = os.urandom(8 * SECTOR)
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        vd.AttachVirtualDisk(handle, Attach.NO_LOCAL_HOST)
        try:
            inquiry = bytearray(36)
            answer = scsi(handle, bytes((0x12, 0, 0, 0, 36, 0)), inquiry)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert answer.data_transfer_length >= 5
            assert inquiry[0] & 0x1F == 0            # a direct-access block device

            capacity = bytearray(8)
            answer = scsi(handle, bytes((0x25,)) + bytes(9), capacity)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert int.from_bytes(capacity[:4], "big") == 64 * MiB // SECTOR - 1
            assert int.from_bytes(capacity[4:], "big") == SECTOR

            capacity16 = bytearray(32)
            answer = scsi(handle, bytes((0x9E, 0x10)) + bytes(8) + (32).to_bytes(4, "big")
                          + bytes(2), capacity16)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert int.from_bytes(capacity16[:8], "big") == 64 * MiB // SECTOR - 1
            assert int.from_bytes(capacity16[8:12], "big") == SECTOR

            answer = scsi(handle, rw10(0x2A, 100, 8), data, data_in=False)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert answer.data_transfer_length == len(data)
            back = bytearray(len(data))
            answer = scsi(handle, rw10(0x28, 100, 8), back)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert back == data
            # SYNCHRONIZE CACHE (10), no data.
            answer = scsi(handle, bytes((0x35,)) + bytes(9), None, data_in=False)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
        finally:
            vd.DetachVirtualDisk(handle)

    # A read-only attach of the same image: the data is there, and a write
    # is refused by the target (DATA PROTECT), not by the call.
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2, read_only=True) as handle:
        vd.AttachVirtualDisk(handle, Attach.NO_LOCAL_HOST | Attach.READ_ONLY)
        try:
            back = bytearray(len(data))
            answer = scsi(handle, rw10(0x28, 100, 8), back)
            assert answer.scsi_status == GOOD, answer.sense_info.hex()
            assert back == data
            answer = scsi(handle, rw10(0x2A, 100, 8), bytes(len(data)), data_in=False)
            assert answer.scsi_status == CHECK_CONDITION
            assert sense_key(answer) == DATA_PROTECT, answer.sense_info.hex()
        finally:
            vd.DetachVirtualDisk(handle)


@needs_administrator
def test_raw_scsi_and_detach_without_an_attach(created_vhdx: tuple[Path, uuid.UUID]) -> None:
    """The engine answers ERROR_NOT_READY for both; for DetachVirtualDisk
    that is what os-win's detach expects of Windows, for RawSCSIVirtualDisk
    it is the engine's reading of the raw I/O sample ("NO_LOCAL_HOST is
    required for RawIO").  This test is where Windows confirms or refutes
    that reading."""
    path, _ = created_vhdx
    with vd.OpenVirtualDisk(VHDX, path, Mask.NONE, 0, 2) as handle:
        with pytest.raises(errors.VirtualDiskError) as caught:
            vd.DetachVirtualDisk(handle)
        assert caught.value.winerror == ERROR_NOT_READY
        with pytest.raises(errors.VirtualDiskError) as caught:
            scsi(handle, bytes(6), None, data_in=False)      # TEST UNIT READY
        assert caught.value.winerror == ERROR_NOT_READY


@needs_administrator
def test_facade_reads_and_writes_bytes(tmp_path: Path) -> None:
    path = tmp_path / "facade.vhdx"
    payload = os.urandom(3 * MiB + 1234)
    offset = 5 * MiB + 77                 # unaligned at both ends
    with virtdisk.create(path, "64MiB") as disk:
        assert disk.read(0, 4096) == bytes(4096)
        assert disk.write(offset, payload) == len(payload)
        assert disk.read(offset, len(payload)) == payload
        assert disk.read(offset - 77, 77) == bytes(77)
        buffer = bytearray(4096)
        assert disk.readinto(offset + 1, buffer) == 4096
        assert buffer == payload[1:4097]
        assert disk.read(64 * MiB - 10, 100) == bytes(10)      # cut at the end
        with pytest.raises(ValueError, match=str(64 * MiB)):
            disk.read(64 * MiB + 1, 1)
        with pytest.raises(ValueError, match=str(64 * MiB)):
            disk.write(64 * MiB - 1, b"xy")
        disk.flush()
    with virtdisk.open(path) as disk:
        assert disk.read(offset, len(payload)) == payload
        with pytest.raises(errors.AccessDeniedError):
            disk.write(0, b"read-only")


@needs_administrator
def test_facade_unmap(tmp_path: Path) -> None:
    path = tmp_path / "unmap.vhdx"
    block = 32 * MiB                      # the dynamic VHDX default
    with virtdisk.create(path, "64MiB") as disk:
        disk.write(block + MiB, os.urandom(MiB))
        disk.flush()
        disk.unmap(block, block)
        if disk.unmap_reads_zeros():
            assert disk.read(block + MiB, MiB) == bytes(MiB)
    with virtdisk.create(tmp_path / "fixed.vhdx", "8MiB", type="fixed") as fixed:
        with pytest.raises(errors.UnsupportedOperationError):
            fixed.unmap(0, MiB)


@needs_administrator
def test_facade_content_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "content.vhdx"
    payload = os.urandom(2 * MiB)
    with virtdisk.create(path, "16MiB") as disk:
        with disk.content() as content:
            assert content.writable() and content.seekable()
            content.seek(3 * MiB + 5)
            assert content.write(payload) == len(payload)
            assert content.tell() == 3 * MiB + 5 + len(payload)
    with virtdisk.open(path) as disk:
        expected = bytearray(16 * MiB)
        expected[3 * MiB + 5:3 * MiB + 5 + len(payload)] = payload
        digest = hashlib.sha256()
        with disk.content() as content:
            assert not content.writable()
            while chunk := content.read(MiB):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


def test_convert_between_formats_without_content_access(tmp_path: Path) -> None:
    # VHD <-> VHDX is the provider's copy (CreateVirtualDisk with a source):
    # no attach, no administrator.
    vhd = tmp_path / "empty.vhd"
    virtdisk.create(vhd, "64MiB").close()
    vhdx = tmp_path / "empty.vhdx"
    virtdisk.convert(vhd, vhdx)
    with virtdisk.open(vhdx) as disk:
        assert disk.virtual_size == 64 * MiB
        assert disk.info().storage_type == vd.VirtualStorageTypeDevice.VHDX
    with pytest.raises(FileExistsError):
        virtdisk.convert(vhd, vhdx)


@needs_administrator
def test_convert_vhd_vhdx_and_raw_keep_the_content(tmp_path: Path) -> None:
    vhd = tmp_path / "source.vhd"
    pieces = {0: os.urandom(4096), 7 * MiB + 512: os.urandom(MiB), 63 * MiB: os.urandom(MiB)}
    with virtdisk.create(vhd, "64MiB") as disk:
        for offset, data in pieces.items():
            disk.write(offset, data)
    expected = bytearray(64 * MiB)
    for offset, data in pieces.items():
        expected[offset:offset + len(data)] = data

    vhdx = tmp_path / "copy.vhdx"
    virtdisk.convert(vhd, vhdx)
    fixed_vhd = tmp_path / "back.vhd"
    virtdisk.convert(vhdx, fixed_vhd, type="fixed")
    raw = tmp_path / "content.img"
    virtdisk.convert(vhdx, raw)
    from_raw = tmp_path / "from-raw.vhdx"
    virtdisk.convert(raw, from_raw)
    assert raw.read_bytes() == expected
    for image in (vhdx, fixed_vhd, from_raw):
        with virtdisk.open(image) as disk:
            assert disk.read(0, disk.virtual_size) == expected, image.name
    with virtdisk.open(fixed_vhd) as disk:
        assert disk.info().provider_subtype == vd.ProviderSubtype.FIXED

    # virtdisk dump writes the same bytes to a pipe.
    dumped = subprocess.run([sys.executable, "-m", "virtdisk", "dump", str(vhdx)],
                            capture_output=True, check=True).stdout
    assert hashlib.sha256(dumped).digest() == hashlib.sha256(expected).digest()
