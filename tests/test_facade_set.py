"""``VirtualDisk.set_*``: what SetVirtualDiskInformation changes.

Arguments are checked before the call (TypeError, ValueError), a disk open
read-only or closed is refused before it, then each change is read back
through the API after a close and a reopen, and by tools nobody here wrote:
``vhdiinfo`` (identifier, parent identifier and file name), ``qemu-img
check`` (VHDX structure) and a reader of the VHDX metadata table written
from [MS-VHDX] 2.6 (Page 83 id, physical sector size).  Images come both
from qemu-img and from :func:`virtdisk.create`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import _virtdisk
import pytest

import virtdisk
from test_facade_create import qemu_check, vhdiinfo
from test_facade_metadata import MAKERS, engine_image, make, qemu_image, vhdx_system_item
from vhdx_builder import PAGE83_DATA, PHYSICAL_SECTOR_SIZE, data_write_guid
from virtdisk import (
    AccessDeniedError,
    ImageNotFoundError,
    InvalidHandleError,
    ParentMismatchError,
    UnsupportedOperationError,
    VirtualDiskAccessMask,
)
from virtdisk.errors import ERROR_ACCESS_DENIED, ERROR_VHD_INVALID_TYPE

MIB = 1 << 20
FORMATS = ("vhd", "vhdx")


# --------------------------------------------------------------------------- images

IMAGES = [pytest.param(maker, fmt, id=f"{fmt}-{maker}") for fmt in FORMATS for maker in MAKERS]


def chain(directory: Path, fmt: str, depth: int = 2) -> list[Path]:
    """base <- child [<- grandchild]: made by :func:`virtdisk.create`, the
    only tool here that makes differencing disks of both formats."""
    paths = [engine_image(directory, fmt, "base")]
    for level in range(1, depth):
        path = directory / f"level{level}.{fmt}"
        virtdisk.create(path, parent=paths[-1]).close()
        paths.append(path)
    return paths


def vhdi_identifier(path: Path) -> uuid.UUID:
    return uuid.UUID(vhdiinfo(path)["Identifier"])


def independent_identifier(path: Path, fmt: str) -> uuid.UUID:
    """The identifier as the file holds it: vhdiinfo's for VHD; the current
    header's DataWriteGuid for VHDX, read here from the bytes."""
    if fmt == "vhdx":
        return uuid.UUID(bytes_le=data_write_guid(path))
    return vhdi_identifier(path)


def check_structure(path: Path, fmt: str) -> None:
    """qemu-img check for VHDX, and for both that vhdiinfo still reads it
    (qemu opens no differencing VHDX: parent tests rely on vhdiinfo)."""
    qemu_check(path, fmt)
    vhdiinfo(path)


# --------------------------------------------------------------------------- argument checks

@pytest.fixture
def writable(tmp_path: Path) -> virtdisk.VirtualDisk:
    return virtdisk.open(qemu_image(tmp_path, "vhdx"), read_only=False)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda disk: disk.set_identifier("0c7e7a7b-6f5c-4d4e-8f00-000000000001"),
     TypeError, "identifier must be a uuid.UUID, not str"),
    (lambda disk: disk.set_identifier(None), TypeError, "identifier must be a uuid.UUID, not NoneType"),
    (lambda disk: disk.set_virtual_disk_id(uuid.uuid4().bytes), TypeError,
     "virtual_disk_id must be a uuid.UUID, not bytes"),
    (lambda disk: disk.set_physical_sector_size("4096"), TypeError,
     "size must be an int (512 or 4096), not str"),
    (lambda disk: disk.set_physical_sector_size(True), TypeError,
     "size must be an int (512 or 4096), not bool"),
    (lambda disk: disk.set_physical_sector_size(1024), ValueError,
     "the physical sector size must be 512 or 4096, not 1024"),
    (lambda disk: disk.set_physical_sector_size(0), ValueError,
     "the physical sector size must be 512 or 4096, not 0"),
    (lambda disk: disk.set_parent(42), TypeError, "path must be str or os.PathLike[str], not int"),
    (lambda disk: disk.set_parent("p.vhdx", depth=0), ValueError,
     "depth must be 1 (this disk), 2 (its parent) or deeper in the chain, up to 4294967295, "
     "not 0"),
    (lambda disk: disk.set_parent("p.vhdx", depth=1 << 32), ValueError, "not 4294967296"),
    (lambda disk: disk.set_parent("p.vhdx", depth="2"), TypeError, "depth must be an int, not str"),
    (lambda disk: disk.set_parent("p.vhdx", depth=True), TypeError, "depth must be an int, not bool"),
    (lambda disk: disk.set_parent("p.vhdx", ignore_id_mismatch=1), TypeError,
     "ignore_id_mismatch must be True or False, not 1"),
    (lambda disk: disk.set_parent("p.vhdx", depth=2, ignore_id_mismatch=True), ValueError,
     "ignore_id_mismatch=True applies to this disk's own parent (depth=1), not depth=2"),
    (lambda disk: disk.set_parent("p.iso", ignore_id_mismatch=True), ValueError,
     "'p.iso' is an ISO image, which cannot be the parent of a differencing disk"),
    (lambda disk: disk.set_change_tracking(1), TypeError, "enabled must be True or False, not 1"),
])
def test_arguments_are_checked_before_the_call(
        writable: virtdisk.VirtualDisk, call: Callable[[virtdisk.VirtualDisk], None],
        error: type[Exception], message: str) -> None:
    before = Path(writable.path).read_bytes()
    with writable:
        with pytest.raises(error) as caught:
            call(writable)
    assert message in str(caught.value)
    assert not isinstance(caught.value, virtdisk.VirtualDiskError)
    assert Path(writable.path).read_bytes() == before


CHANGES: list[tuple[str, Callable[[virtdisk.VirtualDisk], object]]] = [
    ("set_identifier", lambda disk: disk.set_identifier(uuid.uuid4())),
    ("set_virtual_disk_id", lambda disk: disk.set_virtual_disk_id(uuid.uuid4())),
    ("reset_virtual_disk_id", lambda disk: disk.reset_virtual_disk_id()),
    ("set_physical_sector_size", lambda disk: disk.set_physical_sector_size(4096)),
    ("set_parent", lambda disk: disk.set_parent("elsewhere.vhdx")),
    ("set_parent", lambda disk: disk.set_parent("elsewhere.vhdx", ignore_id_mismatch=True)),
    ("set_change_tracking", lambda disk: disk.set_change_tracking(True)),
]


@pytest.mark.parametrize(("name", "change"), CHANGES, ids=[f"{name}-{index}" for index, (name, _)
                                                          in enumerate(CHANGES)])
def test_a_read_only_disk_is_refused_before_the_call(
        tmp_path: Path, name: str, change: Callable[[virtdisk.VirtualDisk], object]) -> None:
    path = qemu_image(tmp_path, "vhdx")
    before = path.read_bytes()
    with virtdisk.open(path) as disk:
        with pytest.raises(AccessDeniedError) as caught:
            change(disk)
    error = caught.value
    assert isinstance(error, PermissionError)
    assert error.winerror == ERROR_ACCESS_DENIED
    assert error.function == f"VirtualDisk.{name}"
    assert error.filename == str(path)
    assert "open it with virtdisk.open(path, read_only=False)" in str(error)
    assert path.read_bytes() == before


def test_an_iso_is_refused_as_read_only(images: Callable[[str], Path]) -> None:
    with virtdisk.open(images("iso9660-xorriso")) as disk:
        with pytest.raises(AccessDeniedError, match="ISO images are always read-only"):
            disk.set_identifier(uuid.uuid4())


@pytest.mark.parametrize(("name", "change"), CHANGES[:5],
                         ids=[f"{name}-{index}" for index, (name, _) in enumerate(CHANGES[:5])])
def test_a_closed_disk_says_so(tmp_path: Path, name: str,
                               change: Callable[[virtdisk.VirtualDisk], object]) -> None:
    disk = virtdisk.open(qemu_image(tmp_path, "vhdx"), read_only=False)
    disk.close()
    with pytest.raises(InvalidHandleError, match="the virtual disk is closed") as caught:
        change(disk)
    assert caught.value.function == f"VirtualDisk.{name}"


# --------------------------------------------------------------------------- identifiers

@pytest.mark.parametrize(("maker", "fmt"), IMAGES)
def test_set_identifier_round_trip(tmp_path: Path, maker: str, fmt: str) -> None:
    path = make(tmp_path, maker, fmt)
    new = uuid.uuid4()
    with virtdisk.open(path, read_only=False) as disk:
        old = disk.identifier
        virtual_disk_id = disk.virtual_disk_id
        disk.set_identifier(new)
        # The same handle answers the new value at once.
        assert disk.identifier == new
        assert disk.info().identifier == new
    assert old != new
    with virtdisk.open(path) as disk:
        assert disk.identifier == new
        if fmt == "vhdx":
            # Page 83 is another item; VHD has one GUID for both.
            assert disk.virtual_disk_id == virtual_disk_id
    assert independent_identifier(path, fmt) == new
    check_structure(path, fmt)


@pytest.mark.parametrize(("maker", "fmt"), IMAGES)
def test_set_virtual_disk_id_round_trip(tmp_path: Path, maker: str, fmt: str) -> None:
    path = make(tmp_path, maker, fmt)
    new = uuid.uuid4()
    with virtdisk.open(path, read_only=False) as disk:
        identifier = disk.identifier
        disk.set_virtual_disk_id(new)
        assert disk.virtual_disk_id == new
    with virtdisk.open(path) as disk:
        info = disk.info()
    assert info.virtual_disk_id == new
    if fmt == "vhdx":
        assert info.identifier == identifier
        assert uuid.UUID(bytes_le=vhdx_system_item(path, PAGE83_DATA)) == new
    else:
        # A VHD's footer UniqueId is both.
        assert info.identifier == new
        assert vhdi_identifier(path) == new
    check_structure(path, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_reset_virtual_disk_id_returns_the_new_random_id(tmp_path: Path, fmt: str) -> None:
    path = qemu_image(tmp_path, fmt)
    with virtdisk.open(path, read_only=False) as disk:
        old = disk.virtual_disk_id
        first = disk.reset_virtual_disk_id()
        second = disk.reset_virtual_disk_id()
    assert len({old, first, second}) == 3
    assert first.version == second.version == 4
    with virtdisk.open(path) as disk:
        assert disk.virtual_disk_id == second


# --------------------------------------------------------------------------- physical sector size

@pytest.mark.parametrize("maker", MAKERS)
def test_set_physical_sector_size_round_trip(tmp_path: Path, maker: str) -> None:
    path = make(tmp_path, maker, "vhdx")
    with virtdisk.open(path, read_only=False) as disk:
        sector_size = disk.sector_size
        disk.set_physical_sector_size(4096)
        assert disk.physical_sector_size == 4096
    with virtdisk.open(path) as disk:
        assert disk.physical_sector_size == 4096
        assert disk.sector_size == sector_size
    assert int.from_bytes(vhdx_system_item(path, PHYSICAL_SECTOR_SIZE), "little") == 4096
    check_structure(path, "vhdx")
    with virtdisk.open(path, read_only=False) as disk:
        disk.set_physical_sector_size(512)
    with virtdisk.open(path) as disk:
        assert disk.physical_sector_size == 512
    assert int.from_bytes(vhdx_system_item(path, PHYSICAL_SECTOR_SIZE), "little") == 512
    check_structure(path, "vhdx")


@pytest.mark.parametrize("maker", MAKERS)
def test_a_vhd_has_no_physical_sector_size_to_set(tmp_path: Path, maker: str) -> None:
    path = make(tmp_path, maker, "vhd")
    before = path.read_bytes()
    with virtdisk.open(path, read_only=False) as disk:
        with pytest.raises(UnsupportedOperationError) as caught:
            disk.set_physical_sector_size(4096)
        assert disk.physical_sector_size == 512
    assert caught.value.winerror == ERROR_VHD_INVALID_TYPE
    assert caught.value.function == "SetVirtualDiskInformation"
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- change tracking

@pytest.mark.skipif(_virtdisk.PLATFORM != "engine",
                    reason="resilient change tracking is Windows' own (VHDX on Hyper-V hosts)")
def test_the_engine_does_not_track_changes(tmp_path: Path) -> None:
    path = qemu_image(tmp_path, "vhdx")
    before = path.read_bytes()
    with virtdisk.open(path, read_only=False) as disk:
        with pytest.raises(UnsupportedOperationError) as caught:
            disk.set_change_tracking(True)
        disk.set_change_tracking(False)
    assert caught.value.winerror == 50
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- parent

@pytest.mark.parametrize("fmt", FORMATS)
def test_set_parent_after_the_parent_moved(tmp_path: Path, fmt: str) -> None:
    base, child = chain(tmp_path, fmt)
    moved = tmp_path / "moved" / f"renamed.{fmt}"
    moved.parent.mkdir()
    base.rename(moved)
    with pytest.raises(virtdisk.VirtualDiskError):
        virtdisk.open(child).close()
    # As Microsoft's sample does: the child alone, for writing.
    with virtdisk.open(child, read_only=False, no_parents=True) as disk:
        disk.set_parent(moved)
    with virtdisk.open(child) as disk:
        info = disk.info()
    assert info.parent_resolved is True
    assert info.parent_paths == (str(moved),)
    rows = vhdiinfo(child)
    assert rows["Parent filename"] == str(moved)
    with virtdisk.open(moved) as parent:
        assert uuid.UUID(rows["Parent identifier"]) == parent.identifier == info.parent_identifier


@pytest.mark.parametrize("fmt", FORMATS)
def test_set_parent_refuses_a_stranger(tmp_path: Path, fmt: str) -> None:
    _, child = chain(tmp_path, fmt)
    stranger = engine_image(tmp_path, fmt, "stranger")
    before = child.read_bytes()
    with virtdisk.open(child, read_only=False, no_parents=True) as disk:
        with pytest.raises(ParentMismatchError):
            disk.set_parent(stranger)
        with pytest.raises(ImageNotFoundError) as caught:
            disk.set_parent(tmp_path / f"missing.{fmt}")
    assert isinstance(caught.value, FileNotFoundError)
    assert child.read_bytes() == before


@pytest.mark.parametrize("maker", MAKERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_set_parent_of_a_disk_without_one(tmp_path: Path, fmt: str, maker: str) -> None:
    path = make(tmp_path, maker, fmt)
    other = engine_image(tmp_path, fmt, "other")
    before = path.read_bytes()
    with virtdisk.open(path, read_only=False) as disk:
        with pytest.raises(UnsupportedOperationError) as caught:
            disk.set_parent(other)
    assert caught.value.winerror == ERROR_VHD_INVALID_TYPE
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_set_parent_ignoring_the_id_mismatch(tmp_path: Path, fmt: str) -> None:
    """Set-VHD -IgnoreIdMismatch: a copy of the parent whose identifier was
    changed becomes the parent, and the child records its identifier."""
    base, child = chain(tmp_path, fmt)
    copy = tmp_path / f"copy.{fmt}"
    shutil.copyfile(base, copy)
    with virtdisk.open(copy, read_only=False) as disk:
        disk.set_identifier(uuid.uuid4())
        copy_identifier = disk.identifier
    with virtdisk.open(child, read_only=False, no_parents=True) as disk:
        with pytest.raises(ParentMismatchError):
            disk.set_parent(copy)
        disk.set_parent(copy, ignore_id_mismatch=True)
        assert disk.parent_identifier == copy_identifier
    with virtdisk.open(child) as disk:
        info = disk.info()
    assert info.parent_resolved is True
    assert info.parent_paths == (str(copy),)
    assert info.parent_identifier == copy_identifier
    rows = vhdiinfo(child)
    assert uuid.UUID(rows["Parent identifier"]) == copy_identifier
    assert rows["Parent filename"] == str(copy)


@pytest.mark.parametrize("fmt", FORMATS)
def test_set_parent_at_depth_two(tmp_path: Path, fmt: str) -> None:
    """From the leaf, re-point its parent at an identical copy of the base."""
    base, middle, leaf = chain(tmp_path, fmt, depth=3)
    copy = tmp_path / "copies" / f"base.{fmt}"
    copy.parent.mkdir()
    shutil.copyfile(base, copy)
    # A version 2 writable open writes to the leaf alone.
    with virtdisk.open(leaf, read_only=False) as disk:
        with pytest.raises(AccessDeniedError):
            disk.set_parent(copy, depth=2)
    assert vhdiinfo(middle)["Parent filename"] == str(base)
    with virtdisk.open(leaf, access=VirtualDiskAccessMask.METAOPS, rw_depth=2) as disk:
        disk.set_parent(copy, depth=2)
    with virtdisk.open(middle, no_parents=True) as disk:
        assert str(copy) in (disk.parent_paths or ())
    assert vhdiinfo(middle)["Parent filename"] == str(copy)
    base.unlink()
    with virtdisk.open(leaf) as disk:
        assert disk.parent_resolved is True
    # The leaf's own link was not the one to change.
    assert vhdiinfo(leaf)["Parent filename"] == str(middle)
