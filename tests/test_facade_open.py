"""virtdisk.open and VirtualDisk on images made by qemu-img, xorriso,
genisoimage and mkudffs, compared with what independent readers say of the
same files: ``qemu-img info``, ``vhdiinfo`` (libvhdi) and ``7zz`` (7-Zip).

GUID byte order (the trap REFERENCE.md section 5 describes): vhdiinfo
prints a VHD's unique id as the footer's bytes in file order and a VHDX's
DataWriteGuid in Windows GUID order, so both equal ``str(identifier)``;
7-Zip prints the raw bytes of either format in file order, so a VHD id is
``identifier.bytes`` and a VHDX id is ``identifier.bytes_le``.
Differencing images, which no installed tool writes, come from
tests/vhd_builder.py and tests/vhdx_builder.py, read back by vhdiinfo.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import _virtdisk
import virtdisk
from conftest import IMAGE_SPECS, ISO_IMAGES, QEMU_IMAGES, require_tool
from virtdisk import (
    OpenVirtualDiskFlag,
    ProviderSubtype,
    VirtualDiskAccessMask,
    VirtualStorageTypeDevice,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vhd_builder  # noqa: E402
import vhdx_builder  # noqa: E402

Images = Callable[[str], Path]

DEVICES = {"vhd": VirtualStorageTypeDevice.VHD, "vhdx": VirtualStorageTypeDevice.VHDX,
           "iso": VirtualStorageTypeDevice.ISO}
# vhdiinfo's "Disk type" names.
VHDI_DISK_TYPES = {"Fixed": ProviderSubtype.FIXED, "Dynamic": ProviderSubtype.DYNAMIC,
                   "Differential": ProviderSubtype.DIFFERENCING}
MiB = 1 << 20


# --------------------------------------------------------------------------- independent readers

def qemu_info(path: Path, kind: str) -> dict[str, object]:
    """``qemu-img info`` as JSON.  The format is given, since qemu probes a
    fixed VHD as raw; -U lets it read an image a test holds open (qemu reads
    the lock of a read-only open, which denies writers, as a conflict)."""
    tool = require_tool("qemu-img")
    output = subprocess.run(
        [tool, "info", "-U", "--output=json", "-f", "vpc" if kind == "vhd" else kind, str(path)],
        capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(output)
    return result


def vhdiinfo(path: Path) -> dict[str, str]:
    """vhdiinfo's "Name : value" lines."""
    tool = require_tool("vhdiinfo")
    output = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    fields = {}
    for line in output.splitlines():
        match = re.match(r"^\t([^\t:][^:]*?)\s*:\s(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def sevenzip(path: Path) -> dict[str, str]:
    """7-Zip's technical listing: "Name = value" and "Name: value" lines."""
    tool = require_tool("7zz")
    output = subprocess.run([tool, "l", "-slt", str(path)], capture_output=True, text=True,
                            check=True).stdout
    fields = {}
    for line in output.splitlines():
        match = re.match(r"^(\w[\w ]*?)(?: = |: )(.*)$", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def vhdi_bytes(text: str) -> int:
    """The exact count from a vhdiinfo size such as "64 MiB (67125248 bytes)"."""
    match = re.search(r"\((\d+) bytes\)", text) or re.fullmatch(r"(\d+) bytes", text)
    assert match is not None, text
    return int(match.group(1))


# --------------------------------------------------------------------------- qemu-img images

@pytest.mark.parametrize("name", QEMU_IMAGES)
def test_qemu_image_matches_qemu_img_and_vhdiinfo(images: Images, name: str) -> None:
    spec = IMAGE_SPECS[name]
    path = images(name)
    qemu = qemu_info(path, spec.kind)
    vhdi = vhdiinfo(path)
    with virtdisk.open(path) as disk:
        assert disk.storage_type == DEVICES[spec.kind]
        assert disk.virtual_size == qemu["virtual-size"]
        assert disk.virtual_size == vhdi_bytes(vhdi["Media size"])
        assert disk.physical_size == path.stat().st_size
        assert disk.sector_size == vhdi_bytes(vhdi["Bytes per sector"])
        assert disk.provider_subtype == VHDI_DISK_TYPES[vhdi["Disk type"]]
        assert disk.provider_subtype == (ProviderSubtype.FIXED if spec.subformat == "fixed"
                                         else ProviderSubtype.DYNAMIC)
        if spec.subformat == "dynamic":
            assert disk.block_size == qemu["cluster-size"]
        else:
            # Fixed disks allocate no blocks: the API reports 0 (a fixed
            # VHDX still records a block size in its metadata).
            assert disk.block_size == 0
        assert str(disk.identifier) == vhdi["Identifier"]
        assert disk.parent_resolved is None
        assert disk.parent_paths is None
        assert disk.parent_identifier is None
        assert disk.parent_timestamp is None
        assert disk.is_loaded is False


@pytest.mark.parametrize("name", [n for n in QEMU_IMAGES if IMAGE_SPECS[n].kind == "vhd"])
def test_vhd_identifier_is_the_footer_unique_id(images: Images, name: str) -> None:
    path = images(name)
    footer = path.read_bytes()[-512:]
    assert footer[:8] == b"conectix"
    seven = sevenzip(path)
    with virtdisk.open(path) as disk:
        identifier = disk.identifier
        assert identifier is not None
        # The VHD specification stores the UUID in network byte order.
        assert identifier.bytes == footer[68:84]
        assert identifier.hex.upper() == seven["ID"]
        # A VHD has no identity besides its unique id.
        assert disk.virtual_disk_id == identifier
        assert disk.physical_sector_size == 512


@pytest.mark.parametrize("name", [n for n in QEMU_IMAGES if IMAGE_SPECS[n].kind == "vhdx"])
def test_vhdx_identifiers_and_sectors_match_7zip(images: Images, name: str) -> None:
    path = images(name)
    seven = sevenzip(path)
    with virtdisk.open(path) as disk:
        identifier, disk_id = disk.identifier, disk.virtual_disk_id
        assert identifier is not None and disk_id is not None
        # VHDX GUIDs are stored in Windows layout.
        assert identifier.bytes_le.hex() == seven["DataWriteGuid"]
        assert disk_id.bytes_le.hex() == seven["Id"]
        assert disk.sector_size == int(seven["LogicalSectorSize"])
        assert disk.physical_sector_size == int(seven["PhysicalSectorSize"])
        if IMAGE_SPECS[name].subformat == "dynamic":
            assert disk.block_size == int(seven["BlockSize"])
        assert disk.virtual_size == int(seven["VirtualDiskSize"])


@pytest.mark.parametrize("name", QEMU_IMAGES)
def test_info_snapshot_equals_the_properties(images: Images, name: str) -> None:
    path = images(name)
    with virtdisk.open(path) as disk:
        info = disk.info()
        assert info == disk.info()
        assert hash(info) == hash(disk.info())
        host = disk.physical_disk
        assert info.path == str(path)
        assert (info.storage_type, info.provider_subtype) == (disk.storage_type,
                                                              disk.provider_subtype)
        assert info.vendor_id == _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
        assert (info.virtual_size, info.physical_size, info.block_size, info.sector_size) == (
            disk.virtual_size, disk.physical_size, disk.block_size, disk.sector_size)
        assert info.physical_sector_size == disk.physical_sector_size
        assert (info.identifier, info.virtual_disk_id) == (disk.identifier, disk.virtual_disk_id)
        assert info.is_4k_aligned == disk.is_4k_aligned
        assert info.smallest_safe_virtual_size == disk.smallest_safe_virtual_size
        assert info.fragmentation == disk.fragmentation
        assert info.is_loaded == disk.is_loaded
        assert info.change_tracking == disk.change_tracking
        assert (info.host_logical_sector_size, info.host_physical_sector_size,
                info.is_remote) == tuple(host)
        assert not info.is_differencing
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.virtual_size = 0  # type: ignore[misc]


@pytest.mark.parametrize("name", QEMU_IMAGES[:1] + ISO_IMAGES[:1])
def test_info_converts_to_json(images: Images, name: str) -> None:
    with virtdisk.open(images(name)) as disk:
        info = disk.info()
    data = json.loads(json.dumps(info.to_json_dict()))
    assert data["virtual_size"] == info.virtual_size
    assert data["storage_type"] == IMAGE_SPECS[name].kind
    assert data["identifier"] == (None if info.identifier is None else str(info.identifier))
    assert set(data) == set(info.__dataclass_fields__)


# --------------------------------------------------------------------------- ISO and UDF

@pytest.mark.parametrize("name", ISO_IMAGES)
def test_iso_images_open_read_only_with_version_1(images: Images, name: str) -> None:
    path = images(name)
    with virtdisk.open(path) as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.ISO
        assert disk.read_only is True
        # An ISO image is its own disk: 2048-byte sectors (ECMA-119 6.1.2,
        # ECMA-167 for UDF on this media), as many as the file holds.
        assert disk.virtual_size == path.stat().st_size
        assert disk.physical_size == path.stat().st_size
        assert disk.sector_size == 2048
        assert disk.block_size == 0
        # Questions about VHD/VHDX traits do not apply: None, not an error.
        assert disk.provider_subtype is None
        assert disk.identifier is None
        assert disk.virtual_disk_id is None
        assert disk.physical_sector_size is None
        assert disk.is_4k_aligned is None
        assert disk.change_tracking is None
        assert disk.parent_paths is None
        info = disk.info()
    assert info.storage_type == VirtualStorageTypeDevice.ISO
    assert info.identifier is None and info.parent_identifier is None


def test_iso_volume_size_fits_the_file(images: Images) -> None:
    """isoinfo (genisoimage's reader) reports the volume's block count; the
    image file, which is the disk, holds at least that many sectors."""
    path = images("iso9660-xorriso")
    tool = require_tool("isoinfo")
    output = subprocess.run([tool, "-d", "-i", str(path)], capture_output=True, text=True,
                            check=True).stdout
    blocks = re.search(r"Volume size is: (\d+)", output)
    block_size = re.search(r"Logical block size is: (\d+)", output)
    assert blocks is not None and block_size is not None, output
    with virtdisk.open(path) as disk:
        assert disk.sector_size == int(block_size.group(1))
        assert disk.virtual_size >= int(blocks.group(1)) * int(block_size.group(1))


def test_iso_read_write_is_refused_before_the_call(images: Images) -> None:
    path = images("iso9660-xorriso")
    with pytest.raises(ValueError, match=r"ISO images can only be opened read-only.*"
                                         r"VirtualDiskAccessMask\.READ"):
        virtdisk.open(path, read_only=False)
    with pytest.raises(ValueError, match="not supported for ISO images"):
        virtdisk.open(path, access=VirtualDiskAccessMask.ATTACH_RW)
    with pytest.raises(ValueError, match="NO_PARENTS"):
        virtdisk.open(path, no_parents=True)
    with pytest.raises(ValueError, match="get_info_only"):
        virtdisk.open(path, get_info_only=True)


def test_iso_accepts_read_access_bits(images: Images) -> None:
    path = images("udf-mkudffs")
    with virtdisk.open(path, access=VirtualDiskAccessMask.GET_INFO, read_only=True) as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.ISO


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize(("name", "link_name"), [
    ("vhdx-dynamic-100M-block-1M", "UPPER.VHDX"),
    ("vhdx-dynamic-100M-block-1M", "checkpoint.AvHdX"),
    ("vhd-dynamic-64M", "Mixed.Vhd"),
    ("vhd-fixed-10M-exact", "checkpoint.AVHD"),
    ("iso9660-xorriso", "DISC.ISO"),
])
def test_extension_decides_ignoring_case(images: Images, tmp_path: Path, name: str,
                                         link_name: str) -> None:
    link = tmp_path / link_name
    link.symlink_to(images(name))
    expected = DEVICES[IMAGE_SPECS[name].kind]
    assert virtdisk.detect_storage_type(link) == expected
    with virtdisk.open(link) as disk:
        assert disk.storage_type == expected
        assert disk.path == str(link)


@pytest.mark.parametrize(("name", "link_name"), [
    ("vhdx-dynamic-100M-block-1M", "renamed.img"),
    ("vhd-dynamic-64M", "renamed.bin"),          # "conectix" at byte 0
    ("vhd-fixed-10M-exact", "renamed"),          # the footer alone
    ("iso9660-xorriso", "renamed.img"),
    ("udf-hybrid-genisoimage", "renamed.dat"),
    ("udf-mkudffs", "renamed.udf"),              # BEA01 at 32769
])
def test_signature_decides_without_a_known_extension(images: Images, tmp_path: Path,
                                                     name: str, link_name: str) -> None:
    link = tmp_path / link_name
    link.symlink_to(images(name))
    expected = DEVICES[IMAGE_SPECS[name].kind]
    assert virtdisk.detect.storage_type_from_extension(link) is None
    assert virtdisk.detect.storage_type_from_signature(link) == expected
    with virtdisk.open(link) as disk:
        assert disk.storage_type == expected
        assert disk.virtual_size == qemu_or_file_size(images(name), IMAGE_SPECS[name].kind)


def qemu_or_file_size(path: Path, kind: str) -> int:
    if kind == "iso":
        return path.stat().st_size
    size = qemu_info(path, kind)["virtual-size"]
    assert isinstance(size, int)
    return size


def test_extension_wins_over_signature_as_on_windows(images: Images, tmp_path: Path) -> None:
    """A VHDX named .vhd goes to the VHD provider, which finds no footer."""
    link = tmp_path / "misnamed.vhd"
    link.symlink_to(images("vhdx-dynamic-100M-block-1M"))
    with pytest.raises(virtdisk.CorruptImageError) as caught:
        virtdisk.open(link)
    assert caught.value.winerror == virtdisk.errors.ERROR_VHD_DRIVE_FOOTER_MISSING
    with virtdisk.open(link, storage_type="vhdx") as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.VHDX
    with virtdisk.open(link, storage_type=VirtualStorageTypeDevice.VHDX) as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.VHDX


def test_no_signature_leaves_the_verdict_to_the_api(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a disk\n" * 10000)
    assert virtdisk.detect_storage_type(text) is None
    with pytest.raises(virtdisk.UnsupportedFormatError) as caught:
        virtdisk.open(text)
    assert caught.value.winerror == virtdisk.errors.ERROR_VIRTDISK_PROVIDER_NOT_FOUND
    assert caught.value.filename == str(text)


def test_detection_by_extension_reads_nothing(tmp_path: Path) -> None:
    assert virtdisk.detect_storage_type(tmp_path / "absent.VHDX") == VirtualStorageTypeDevice.VHDX
    assert virtdisk.detect_storage_type(tmp_path / "absent.img") is None
    assert virtdisk.detect.storage_type_from_extension(tmp_path / "dir.vhdx" / "file") is None
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(b"vhdx")
    assert virtdisk.detect.storage_type_from_signature(tiny) is None


def test_missing_file_is_reported_by_the_api(tmp_path: Path) -> None:
    for name in ("missing.vhdx", "missing.iso", "missing.img"):
        with pytest.raises(virtdisk.ImageNotFoundError) as caught:
            virtdisk.open(tmp_path / name)
        assert isinstance(caught.value, FileNotFoundError)
        assert caught.value.winerror == virtdisk.errors.ERROR_FILE_NOT_FOUND
        assert caught.value.filename == str(tmp_path / name)


# --------------------------------------------------------------------------- argument checks

@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"storage_type": "qcow2"}, ValueError,
     "storage_type must be one of 'iso', 'vhd', 'vhdx' or a VirtualStorageTypeDevice, "
     "not 'qcow2'"),
    ({"storage_type": 3}, TypeError,
     "storage_type must be one of 'iso', 'vhd', 'vhdx' or a VirtualStorageTypeDevice, not 3"),
    ({"read_only": "yes"}, TypeError, "read_only must be True, False or None, not 'yes'"),
    ({"access": 1 << 30}, ValueError,
     "access must be a combination of VirtualDiskAccessMask flags (within "
     "VirtualDiskAccessMask.ALL = 0x3f0000), not 0x40000000"),
    ({"access": "read"}, TypeError, "access must be a VirtualDiskAccessMask, not 'read'"),
    ({"rw_depth": 2}, ValueError, "rw_depth applies to version 1 opens, which access= selects"),
    ({"access": VirtualDiskAccessMask.ALL, "rw_depth": -1}, ValueError,
     "rw_depth must be between 0 and 4294967295, not -1"),
    ({"access": VirtualDiskAccessMask.ALL, "read_only": True}, ValueError,
     "read_only applies to version 2 opens; with access=<VirtualDiskAccessMask.ALL"),
    ({"access": VirtualDiskAccessMask.ALL, "get_info_only": True}, ValueError,
     "get_info_only applies to version 2 opens"),
    ({"flags": 1 << 20}, ValueError, "flags must be a combination of OpenVirtualDiskFlag flags"),
    ({"flags": "none"}, TypeError, "flags must be an OpenVirtualDiskFlag, not 'none'"),
])
def test_arguments_are_checked_before_the_file_is_touched(
        tmp_path: Path, arguments: dict[str, object], error: type[Exception],
        message: str) -> None:
    # The file does not exist: a check that came after the call would raise
    # ImageNotFoundError instead.
    with pytest.raises(error) as caught:
        virtdisk.open(tmp_path / "absent.vhdx", **arguments)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert not isinstance(caught.value, virtdisk.VirtualDiskError)


@pytest.mark.parametrize("path", [b"disk.vhdx", 42, None])
def test_path_type_is_checked(path: object) -> None:
    with pytest.raises(TypeError, match=r"path must be str or os\.PathLike\[str\], not "):
        virtdisk.open(path)  # type: ignore[arg-type]


def test_storage_type_names_ignore_case(images: Images) -> None:
    path = images("vhd-dynamic-64M")
    for name in ("vhd", "VHD", "Vhd"):
        with virtdisk.open(path, storage_type=name) as disk:
            assert disk.storage_type == VirtualStorageTypeDevice.VHD
    with virtdisk.open(path, storage_type=VirtualStorageTypeDevice.UNKNOWN) as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.VHD


def test_paths_accept_os_pathlike(images: Images) -> None:
    path = images("vhdx-fixed-8M")

    class Custom:
        def __fspath__(self) -> str:
            return str(path)

    for value in (path, str(path), Custom()):
        with virtdisk.open(value) as disk:
            assert disk.path == str(path)
            assert disk.handle.path == str(path)


# --------------------------------------------------------------------------- open modes

def test_default_open_is_read_only_and_shares_the_file(images: Images) -> None:
    path = images("vhdx-dynamic-1G-block-32M")
    with virtdisk.open(path) as first, virtdisk.open(path) as second:
        assert first.read_only and second.read_only
        assert "read-only" in repr(first)


def test_read_write_open_excludes_a_second_writer(images: Images, tmp_path: Path) -> None:
    copy = tmp_path / "copy.vhdx"
    shutil.copyfile(images("vhdx-dynamic-100M-block-1M"), copy)
    with virtdisk.open(copy, read_only=False) as writer:
        assert writer.read_only is False
        assert "read-write" in repr(writer)
        with pytest.raises(virtdisk.SharingViolationError) as caught:
            virtdisk.open(copy, read_only=False)
        assert caught.value.winerror == virtdisk.errors.ERROR_SHARING_VIOLATION
    with virtdisk.open(copy, read_only=False) as again:
        assert again.virtual_size == 100 * MiB


engine_only = pytest.mark.skipif(_virtdisk.PLATFORM != "engine",
                                 reason="the engine's details; Windows gives none")


def sharing_refusal(path: Path, *, read_only: bool = True) -> virtdisk.SharingViolationError:
    """The error of an open of `path` refused by another holder."""
    with pytest.raises(virtdisk.SharingViolationError) as caught:
        virtdisk.open(path, read_only=read_only)
    assert caught.value.winerror == virtdisk.errors.ERROR_SHARING_VIOLATION
    assert caught.value.detail is not None and caught.value.detail in str(caught.value)
    return caught.value


@engine_only
def test_a_refused_open_names_a_holder_in_this_process(images: Images, tmp_path: Path) -> None:
    copy = tmp_path / "held.vhdx"
    shutil.copyfile(images("vhdx-dynamic-100M-block-1M"), copy)
    with virtdisk.open(copy, read_only=False):
        for read_only in (True, False):
            assert sharing_refusal(copy, read_only=read_only).detail == (
                "another handle of this process holds the file for writing")
    with virtdisk.open(copy):
        assert sharing_refusal(copy, read_only=False).detail == (
            "another handle of this process has the file open to read, and a writer needs it "
            "alone")
    # Free again: nothing of the refused opens was left holding it.
    with virtdisk.open(copy, read_only=False) as again:
        assert again.read_only is False


@engine_only
def test_a_refused_open_names_the_process_that_holds_it(images: Images, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere.vhd"
    shutil.copyfile(images("vhd-dynamic-64M"), copy)
    script = ("import sys, virtdisk\n"
              "disk = virtdisk.open(sys.argv[1], read_only=False)\n"
              "print('open', flush=True)\n"
              "sys.stdin.read()\n")
    with subprocess.Popen([sys.executable, "-c", script, str(copy)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "open\n"
        try:
            detail = str(sharing_refusal(copy).detail)
            name = Path(f"/proc/{holder.pid}/comm").read_text().strip()
            assert detail == f"process {holder.pid} ({name}) holds the file for writing"
        finally:
            holder.stdin.close()
            holder.wait(30)


@engine_only
def test_a_refused_parent_is_named_with_its_holder(tmp_path: Path) -> None:
    base = tmp_path / "base.vhdx"
    child = tmp_path / "child.vhdx"
    virtdisk.create(base, 4 * MiB, format="vhdx").close()
    virtdisk.create(child, parent=base).close()
    with virtdisk.open(base, read_only=False):
        assert sharing_refusal(child).detail == (
            f"parent {base}: another handle of this process holds the file for writing")


def test_get_info_only_handle_reads_information(images: Images) -> None:
    with virtdisk.open(images("vhd-dynamic-64M"), get_info_only=True) as disk:
        assert disk.read_only is True
        assert disk.virtual_size == qemu_info(images("vhd-dynamic-64M"), "vhd")["virtual-size"]


def test_explicit_access_uses_version_1(images: Images, tmp_path: Path) -> None:
    path = images("vhdx-fixed-8M")
    with virtdisk.open(path, access=VirtualDiskAccessMask.GET_INFO) as disk:
        assert disk.read_only is True
        assert disk.virtual_size == 8 * MiB
    # Without GET_INFO the handle may not query: a real failure, not "n/a".
    with virtdisk.open(path, access=VirtualDiskAccessMask.ATTACH_RO) as disk:
        with pytest.raises(virtdisk.AccessDeniedError):
            disk.virtual_size
        with pytest.raises(virtdisk.AccessDeniedError):
            disk.parent_identifier
        with pytest.raises(virtdisk.AccessDeniedError):
            disk.info()
        assert repr(disk).startswith("<VirtualDisk ")
    copy = tmp_path / "copy.vhdx"
    shutil.copyfile(path, copy)
    with virtdisk.open(copy, access=VirtualDiskAccessMask.ALL, rw_depth=0) as disk:
        assert disk.read_only is True
    with virtdisk.open(copy, access=VirtualDiskAccessMask.ALL) as disk:
        assert disk.read_only is False
        with pytest.raises(virtdisk.SharingViolationError):
            virtdisk.open(copy, read_only=False)


def test_flags_pass_through(images: Images) -> None:
    with virtdisk.open(images("vhdx-fixed-8M"), flags=OpenVirtualDiskFlag.CACHED_IO) as disk:
        assert disk.virtual_size == 8 * MiB


def test_wrapping_a_low_level_handle(images: Images) -> None:
    path = images("vhd-fixed-10M-exact")
    handle = _virtdisk.OpenVirtualDisk(
        _virtdisk.VirtualStorageType(VirtualStorageTypeDevice.VHD,
                                     _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT),
        path, VirtualDiskAccessMask.NONE, OpenVirtualDiskFlag.NONE, 2, read_only=True)
    with virtdisk.VirtualDisk(handle) as disk:
        assert disk.handle is handle
        assert disk.read_only is None
        assert disk.path == str(path)
        assert disk.virtual_size == 10 * MiB
    assert handle.closed
    with pytest.raises(TypeError, match="handle must be a VirtualDiskHandle"):
        virtdisk.VirtualDisk(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- closing

CLOSED_PROPERTIES = [
    "virtual_size", "physical_size", "block_size", "sector_size", "physical_sector_size",
    "physical_disk", "storage_type", "provider_subtype", "identifier", "virtual_disk_id",
    "is_4k_aligned", "smallest_safe_virtual_size", "fragmentation", "is_loaded",
    "change_tracking", "parent_resolved", "parent_paths", "parent_identifier",
    "parent_timestamp",
]


@pytest.mark.parametrize("attribute", CLOSED_PROPERTIES + ["info"])
def test_closed_disk_raises_a_clear_error(images: Images, attribute: str) -> None:
    disk = virtdisk.open(images("vhd-dynamic-64M"))
    disk.close()
    assert disk.closed
    with pytest.raises(virtdisk.InvalidHandleError) as caught:
        value = getattr(disk, attribute)
        if attribute == "info":
            value()
    error = caught.value
    assert error.winerror == virtdisk.errors.ERROR_INVALID_HANDLE
    assert error.function == f"VirtualDisk.{attribute}"
    assert "the virtual disk is closed" in str(error)
    assert str(images("vhd-dynamic-64M")) in str(error)


def test_close_is_idempotent_and_with_closes(images: Images) -> None:
    before = _virtdisk.live_handle_count()
    with virtdisk.open(images("vhd-dynamic-64M")) as disk:
        assert _virtdisk.live_handle_count() == before + 1
        assert not disk.closed
    assert disk.closed
    assert _virtdisk.live_handle_count() == before
    disk.close()
    assert repr(disk) == f"<VirtualDisk {str(images('vhd-dynamic-64M'))!r} closed>"
    with pytest.raises(virtdisk.InvalidHandleError, match="closed"):
        with disk:
            pass


def test_exception_inside_with_still_closes(images: Images) -> None:
    with pytest.raises(RuntimeError):
        with virtdisk.open(images("vhd-dynamic-64M")) as disk:
            raise RuntimeError("boom")
    assert disk.closed


def test_garbage_collected_disk_warns_and_closes(images: Images) -> None:
    before = _virtdisk.live_handle_count()
    disk = virtdisk.open(images("vhd-dynamic-64M"))
    with pytest.warns(ResourceWarning):
        del disk
    assert _virtdisk.live_handle_count() == before


# --------------------------------------------------------------------------- differencing disks

@pytest.fixture
def vhd_chain(tmp_path: Path) -> tuple[Path, Path, int]:
    """A qemu-img base and a differencing child built from the VHD spec,
    with a relative and an absolute locator and a parent time stamp."""
    base = tmp_path / "base.vhd"
    subprocess.run([require_tool("qemu-img"), "create", "-q", "-f", "vpc", "-o",
                    "subformat=dynamic,force_size=on", str(base), "16M"], check=True)
    base_id = base.read_bytes()[-512 + 68:-512 + 84]
    timestamp = int((datetime.datetime(2024, 5, 17, 8, 30, tzinfo=datetime.timezone.utc)
                     - datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc))
                    .total_seconds())
    child = tmp_path / "child.vhd"
    child.write_bytes(vhd_builder.build_sparse(
        16 * MiB, 2 * MiB, {}, disk_type=vhd_builder.DIFFERENCING, parent_id=base_id,
        parent_timestamp=timestamp, parent_name="base.vhd",
        locators=[vhd_builder.Locator(vhd_builder.W2RU, vhd_builder.utf16le(".\\base.vhd")),
                  vhd_builder.Locator(vhd_builder.W2KU,
                                      vhd_builder.utf16le("C:\\images\\base.vhd"))]))
    return base, child, timestamp


def test_differencing_vhd_reports_its_parent(vhd_chain: tuple[Path, Path, int]) -> None:
    base, child, timestamp = vhd_chain
    vhdi = vhdiinfo(child)
    assert vhdi["Disk type"] == "Differential"
    with virtdisk.open(base) as parent:
        base_identifier = parent.identifier
    with virtdisk.open(child) as disk:
        assert disk.provider_subtype == ProviderSubtype.DIFFERENCING
        assert disk.parent_resolved is True
        assert disk.parent_paths == (str(base),)
        assert disk.parent_identifier == base_identifier
        assert str(disk.parent_identifier) == vhdi["Parent identifier"]
        assert str(disk.identifier) == vhdi["Identifier"]
        assert disk.parent_timestamp == datetime.datetime(2024, 5, 17, 8, 30,
                                                          tzinfo=datetime.timezone.utc)
        info = disk.info()
    assert info.is_differencing
    assert info.parent_timestamp_raw == timestamp
    assert info.parent_timestamp == virtdisk.info.VHD_EPOCH + datetime.timedelta(seconds=timestamp)
    assert info.to_json_dict()["parent_timestamp"] == "2024-05-17T08:30:00+00:00"


def test_differencing_vhd_without_parents_lists_the_locators(
        vhd_chain: tuple[Path, Path, int]) -> None:
    base, child, _ = vhd_chain
    with virtdisk.open(child, no_parents=True) as disk:
        assert disk.parent_resolved is False
        assert disk.parent_paths == (".\\base.vhd", "C:\\images\\base.vhd")
        assert str(disk.parent_identifier) == vhdiinfo(child)["Parent identifier"]


def test_differencing_vhd_with_missing_parent(vhd_chain: tuple[Path, Path, int]) -> None:
    base, child, _ = vhd_chain
    base.unlink()
    with pytest.raises(virtdisk.ParentNotFoundError) as caught:
        virtdisk.open(child)
    assert caught.value.winerror == virtdisk.errors.ERROR_VHD_PARENT_VHD_NOT_FOUND
    with virtdisk.open(child, no_parents=True) as disk:
        assert disk.parent_resolved is False


def test_differencing_vhdx_reports_its_parent(tmp_path: Path) -> None:
    base = tmp_path / "base.vhdx"
    vhdx_builder.Image(16 * MiB, logical_sector_size=4096).save(base)
    linkage = uuid.UUID(bytes_le=vhdx_builder.data_write_guid(base))
    child = tmp_path / "child.avhdx"
    vhdx_builder.Image(16 * MiB, kind="differencing", logical_sector_size=4096,
                       locator=vhdx_builder.Locator(parent_linkage=f"{{{linkage}}}",
                                                    relative_path=".\\base.vhdx")).save(child)
    vhdi = vhdiinfo(child)
    with virtdisk.open(child) as disk:
        assert disk.storage_type == VirtualStorageTypeDevice.VHDX
        assert disk.provider_subtype == VHDI_DISK_TYPES[vhdi["Disk type"]]
        assert disk.sector_size == vhdi_bytes(vhdi["Bytes per sector"])
        assert str(disk.parent_identifier) == vhdi["Parent identifier"]
        assert disk.parent_paths == (str(base),)
        # VHDX links a child to its parent by identifier alone.
        assert disk.parent_timestamp is None
        with virtdisk.open(base) as parent:
            assert disk.parent_identifier == parent.identifier


# --------------------------------------------------------------------------- the package

def test_package_exports() -> None:
    for name in virtdisk.__all__:
        assert hasattr(virtdisk, name), name
    for name in virtdisk.errors.__all__:
        if name.endswith("Error"):
            assert getattr(virtdisk, name) is getattr(virtdisk.errors, name)
            assert name in virtdisk.__all__
    assert virtdisk.features is _virtdisk.features
    assert virtdisk.features()["OpenVirtualDisk"] is True
    assert virtdisk.open.__module__ == "virtdisk.disk"


def test_version_comes_from_the_distribution() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        expected = version("virtdisk")
    except PackageNotFoundError:
        expected = "0+unknown"
    assert virtdisk.__version__ == expected
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        virtdisk.missing  # type: ignore[attr-defined]



@pytest.mark.parametrize("name", [
    "a.vhd", "a.vhdx", "a.avhd", "a.avhdx", "a.iso", "A.VhDx", "dir.vhdx/a.iso", "a.vhd.img",
    "a.img.vhd", "a.iso.vhdx", "a.xvhd", "a.vhdxx", ".vhd", "vhd", "a.", "a", "", "x.avhdx.vhd",
    "dir.vhd/file", "a.ISO", "a..vhd", "a.v.hd",
])
def test_extension_lookup_is_the_last_suffix_rule(monkeypatch: pytest.MonkeyPatch,
                                                  name: str) -> None:
    # The open path matches name endings instead of splitting at the last dot;
    # both must give one answer for every name.
    from virtdisk import detect, disk
    monkeypatch.setattr(disk, "_device_from_signature", lambda path: None)
    suffix = name[name.rfind("."):] if "." in name else ""
    assert disk._detected(name) == detect.EXTENSIONS.get(suffix.lower())


@pytest.mark.parametrize("name", [
    "a.vhd", "a.vhdx", "a.avhd", "a.avhdx", "a.iso", "A.VhDx", "dir.vhdx/a.iso", "a.vhd.img",
    "a.img.vhd", "a.iso.vhdx", "a.xvhd", "a.vhdxx", ".vhd", "vhd", "a.", "a", "x.avhdx.vhd",
    "dir.vhd/file", "a.ISO", "a..vhd", "a.v.hd", "a.AVHDX", "a.Iso",
])
def test_open_passes_the_storage_type_of_the_last_suffix(monkeypatch: pytest.MonkeyPatch,
                                                         name: str) -> None:
    # open() looks the name's ending up in its own table of storage types;
    # it must pass OpenVirtualDisk what the last-suffix rule names.
    from virtdisk import detect, disk
    passed: list[object] = []

    def fake_open(storage_type: object, *arguments: object, **keywords: object) -> object:
        passed.append(storage_type)
        return object()

    monkeypatch.setattr(disk, "_device_from_signature", lambda path: None)
    monkeypatch.setattr(disk, "OpenVirtualDisk", fake_open)
    suffix = name[name.rfind("."):] if "." in name else ""
    device = detect.EXTENSIONS.get(suffix.lower())
    disk.open(name)
    expected = _virtdisk.VirtualStorageType(
        _virtdisk.VirtualStorageTypeDevice.UNKNOWN if device is None else device,
        _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN if device is None
        else _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    assert passed == [expected]
