"""SetVirtualDiskInformation and the metadata functions through the extension:
the API layer's rules (src/vdengine/set_info.c, metadata.c), each with its
exact code, and the effects a handle sees right after a change.

The format side (what is written where, crash safety) is tested in
test_vhd_update.py, test_vhdx_update.py and test_fault_injection.py.
"""

from __future__ import annotations

import shutil
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import _virtdisk as vd
from virtdisk.errors import VirtualDiskError

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="the portable engine's documented answers")

MiB = 1 << 20
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_CALL_NOT_IMPLEMENTED = 120
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_NOT_FOUND = 1168
ERROR_VHD_CHILD_PARENT_ID_MISMATCH = 0xC03A000E
ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH = 0xC03A0017
ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED = 0xC03A0018
ERROR_VHD_INVALID_TYPE = 0xC03A001B

MICROSOFT = vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
UNKNOWN = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.UNKNOWN,
                                vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
Set = vd.SetVirtualDiskInfoVersion
Info = vd.GetVirtualDiskInfoVersion
Mask = vd.VirtualDiskAccessMask
OpenFlag = vd.OpenVirtualDiskFlag


def code_of(call: Callable[[], Any]) -> int:
    """The Win32 code `call` answers; 0 when it succeeds."""
    try:
        call()
    except VirtualDiskError as error:
        return int(error.winerror)
    return 0


def create(path: Path, size: int = 64 * MiB, parent: Path | None = None) -> Path:
    vd.CreateVirtualDisk(UNKNOWN, path, 0, 0, 2, maximum_size=0 if parent else size,
                         parent_path=parent).close()
    return path


def open_writable(path: Path, **terms: Any) -> vd.VirtualDiskHandle:
    return vd.OpenVirtualDisk(UNKNOWN, path, Mask.NONE, terms.pop("flags", 0), 2,
                              read_only=False, **terms)


def open_read_only(path: Path) -> vd.VirtualDiskHandle:
    return vd.OpenVirtualDisk(UNKNOWN, path, Mask.NONE, 0, 2, read_only=True)


@pytest.fixture(params=["vhd", "vhdx"])
def family(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Path]:
    """A base image, a differencing child of it, and an unrelated image of
    the same size, all of one format."""
    suffix = "." + request.param
    base = create(tmp_path / f"base{suffix}")
    child = create(tmp_path / f"child{suffix}", parent=base)
    other = create(tmp_path / f"other{suffix}")
    return {"base": base, "child": child, "other": other}


# ---------------------------------------------------------------- arguments

BAD_ARGUMENTS = [
    ("version 0", 0, {}),
    ("version 8", 8, {}),
    ("parent path missing", Set.PARENT_PATH, {}),
    ("parent path empty", Set.PARENT_PATH, {"parent_file_path": ""}),
    ("depth 0", Set.PARENT_PATH_WITH_DEPTH, {"parent_file_path": "/x.vhd", "child_depth": 0}),
    ("locator without path", Set.PARENT_LOCATOR, {"linkage_id": uuid.uuid4()}),
    ("zero identifier", Set.IDENTIFIER, {"unique_identifier": uuid.UUID(int=0)}),
    ("zero virtual disk id", Set.VIRTUAL_DISK_ID, {"virtual_disk_id": uuid.UUID(int=0)}),
    ("physical sector 1024", Set.PHYSICAL_SECTOR_SIZE, {"vhd_physical_sector_size": 1024}),
    ("physical sector 0", Set.PHYSICAL_SECTOR_SIZE, {"vhd_physical_sector_size": 0}),
]


@pytest.mark.parametrize("name, version, fields", BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_bad_arguments_are_87_before_the_handle_is_looked_at(family: dict[str, Path], name: str,
                                                              version: int,
                                                              fields: dict[str, Any]) -> None:
    with open_read_only(family["child"]) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(handle, version, **fields)) \
            == ERROR_INVALID_PARAMETER


def test_a_read_only_handle_is_refused_with_access_denied(family: dict[str, Path]) -> None:
    with open_read_only(family["base"]) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.IDENTIFIER, unique_identifier=uuid.uuid4())) == ERROR_ACCESS_DENIED
    # Version 1 without METAOPS in the mask, although the file is writable.
    with vd.OpenVirtualDisk(UNKNOWN, family["base"], Mask.ATTACH_RW | Mask.GET_INFO, 0, 1) \
            as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.IDENTIFIER, unique_identifier=uuid.uuid4())) == ERROR_ACCESS_DENIED


def test_get_info_only_handles_cannot_change_anything(family: dict[str, Path]) -> None:
    with vd.OpenVirtualDisk(UNKNOWN, family["base"], Mask.NONE, 0, 2, get_info_only=True) \
            as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.VIRTUAL_DISK_ID, virtual_disk_id=uuid.uuid4())) == ERROR_ACCESS_DENIED


def test_versions_that_do_not_apply_to_the_image_are_invalid_type(
        family: dict[str, Path]) -> None:
    with open_writable(family["base"]) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH, parent_file_path=str(family["other"]))) \
            == ERROR_VHD_INVALID_TYPE
        sector = code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PHYSICAL_SECTOR_SIZE, vhd_physical_sector_size=512))
        assert sector == (ERROR_VHD_INVALID_TYPE if family["base"].suffix == ".vhd" else 0)


def test_change_tracking_cannot_be_enabled_and_disabling_it_changes_nothing(
        family: dict[str, Path]) -> None:
    before = family["base"].read_bytes()
    with open_writable(family["base"]) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.CHANGE_TRACKING_STATE, change_tracking_enabled=True)) \
            == ERROR_NOT_SUPPORTED
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.CHANGE_TRACKING_STATE, change_tracking_enabled=False)) == 0
        state = vd.GetVirtualDiskInformation(handle, Info.CHANGE_TRACKING_STATE)
    assert state.enabled is False
    assert family["base"].read_bytes() == before


# ---------------------------------------------------------------- new parents

def test_a_parent_that_does_not_exist_gives_the_open_code(family: dict[str, Path]) -> None:
    with open_writable(family["child"]) as handle:
        missing = family["base"].with_name("missing" + family["base"].suffix)
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH, parent_file_path=str(missing))) == ERROR_FILE_NOT_FOUND


def test_another_disk_is_not_the_parent_unless_the_linkage_is_given(
        family: dict[str, Path]) -> None:
    child, other = family["child"], family["other"]
    with open_writable(child, flags=OpenFlag.NO_PARENTS) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH, parent_file_path=str(other))) \
            == ERROR_VHD_CHILD_PARENT_ID_MISMATCH
    with open_read_only(other) as parent:
        other_id = vd.GetVirtualDiskInformation(parent, Info.IDENTIFIER)
    with open_writable(child, flags=OpenFlag.NO_PARENTS) as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_LOCATOR, linkage_id=other_id,
                                     parent_file_path=str(other))
        assert vd.GetVirtualDiskInformation(handle, Info.PARENT_IDENTIFIER) == other_id
    # The child now opens with `other` as its parent.
    with open_read_only(child) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved
        assert location.paths == [str(other)]


def test_a_parent_of_another_size_is_refused_for_a_vhd(family: dict[str, Path], tmp_path: Path) -> None:
    """A VHD child must have its parent's size; a VHDX child may differ,
    since ResizeVirtualDisk resizes a VHDX child alone."""
    bigger = create(tmp_path / ("bigger" + family["base"].suffix), size=128 * MiB)
    with open_read_only(bigger) as parent:
        bigger_id = vd.GetVirtualDiskInformation(parent, Info.IDENTIFIER)
    with open_writable(family["child"], flags=OpenFlag.NO_PARENTS) as handle:
        def set_bigger() -> None:
            vd.SetVirtualDiskInformation(handle, Set.PARENT_LOCATOR, linkage_id=bigger_id,
                                         parent_file_path=str(bigger))
        if family["child"].suffix == ".vhd":
            assert code_of(set_bigger) == ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH
            return
        set_bigger()
    with open_read_only(family["child"]) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION).paths == [str(bigger)]
        assert vd.GetVirtualDiskInformation(handle, Info.SIZE).virtual_size < 128 * MiB


def test_a_child_cannot_become_its_own_ancestor(family: dict[str, Path], tmp_path: Path) -> None:
    child = family["child"]
    grandchild = create(tmp_path / ("grandchild" + child.suffix), parent=child)
    for target in (child, grandchild):
        with open_read_only(target) as handle:
            target_id = vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER)
        with open_writable(child, flags=OpenFlag.NO_PARENTS) as handle:
            # The linkage matches the target, so only the cycle stops it.
            assert code_of(lambda: vd.SetVirtualDiskInformation(
                handle, Set.PARENT_LOCATOR, linkage_id=target_id,
                parent_file_path=str(target))) == ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED


def test_a_vhd_child_takes_only_a_vhd_parent(tmp_path: Path) -> None:
    base = create(tmp_path / "base.vhd")
    child = create(tmp_path / "child.vhd", parent=base)
    vhdx = create(tmp_path / "other.vhdx")
    with open_read_only(vhdx) as handle:
        vhdx_id = vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER)
    with open_writable(child, flags=OpenFlag.NO_PARENTS) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_LOCATOR, linkage_id=vhdx_id,
            parent_file_path=str(vhdx))) == ERROR_NOT_SUPPORTED


def test_moving_the_parent_and_pointing_the_child_at_it(family: dict[str, Path],
                                                        tmp_path: Path) -> None:
    base, child = family["base"], family["child"]
    moved = tmp_path / "a" / "much" / "longer" / "directory" / "name" / ("moved" + base.suffix)
    moved.parent.mkdir(parents=True)
    shutil.move(base, moved)
    with open_writable(child, flags=OpenFlag.NO_PARENTS) as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=str(moved))
    with open_read_only(child) as handle:
        location = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert location.parent_resolved and location.paths == [str(moved)]


def test_the_handle_follows_the_new_parent_at_once(family: dict[str, Path],
                                                   tmp_path: Path) -> None:
    base, child = family["base"], family["child"]
    copy = tmp_path / "copies" / ("copy" + base.suffix)
    copy.parent.mkdir()
    shutil.copyfile(base, copy)
    with open_writable(child) as handle:
        before = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert before.paths == [str(base)]
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH, parent_file_path=str(copy))
        after = vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION)
        assert after.parent_resolved and after.paths == [str(copy)]


def test_child_depth_names_an_image_up_the_chain(family: dict[str, Path],
                                                 tmp_path: Path) -> None:
    base, child = family["base"], family["child"]
    grandchild = create(tmp_path / ("grandchild" + child.suffix), parent=child)
    copy = tmp_path / "copies" / ("copy" + base.suffix)
    copy.parent.mkdir()
    shutil.copyfile(base, copy)
    with vd.OpenVirtualDisk(UNKNOWN, grandchild, Mask.ALL, 0, 1, rw_depth=1) as handle:
        # The child (depth 2) was opened read-only.
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH_WITH_DEPTH, child_depth=2,
            parent_file_path=str(copy))) == ERROR_ACCESS_DENIED
        # Depth 3 is the base, which has no parent; depth 4 is past the chain.
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH_WITH_DEPTH, child_depth=4,
            parent_file_path=str(copy))) == ERROR_INVALID_PARAMETER
    with vd.OpenVirtualDisk(UNKNOWN, grandchild, Mask.ALL, 0, 1, rw_depth=2) as handle:
        vd.SetVirtualDiskInformation(handle, Set.PARENT_PATH_WITH_DEPTH, child_depth=2,
                                     parent_file_path=str(copy))
    with open_read_only(child) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.PARENT_LOCATION).paths == [str(copy)]
    with open_writable(grandchild, flags=OpenFlag.NO_PARENTS) as handle:
        assert code_of(lambda: vd.SetVirtualDiskInformation(
            handle, Set.PARENT_PATH_WITH_DEPTH, child_depth=2,
            parent_file_path=str(copy))) == ERROR_INVALID_PARAMETER


# ---------------------------------------------------------------- identifiers

def test_identifiers_change_and_read_back(family: dict[str, Path]) -> None:
    base = family["base"]
    identifier, disk_id = uuid.uuid4(), uuid.uuid4()
    with open_writable(base) as handle:
        vd.SetVirtualDiskInformation(handle, Set.IDENTIFIER, unique_identifier=identifier)
        assert vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER) == identifier
        vd.SetVirtualDiskInformation(handle, Set.VIRTUAL_DISK_ID, virtual_disk_id=disk_id)
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == disk_id
    with open_read_only(base) as handle:
        assert vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID) == disk_id
        expected = disk_id if base.suffix == ".vhd" else identifier   # VHD: one GUID for both
        assert vd.GetVirtualDiskInformation(handle, Info.IDENTIFIER) == expected


def test_a_new_identifier_breaks_the_chain_as_documented(family: dict[str, Path]) -> None:
    with open_writable(family["base"]) as handle:
        vd.SetVirtualDiskInformation(handle, Set.IDENTIFIER, unique_identifier=uuid.uuid4())
    assert code_of(lambda: open_read_only(family["child"]).close()) \
        == ERROR_VHD_CHILD_PARENT_ID_MISMATCH


def test_queries_and_changes_on_one_handle_from_many_threads(tmp_path: Path) -> None:
    path = create(tmp_path / "shared.vhdx")
    errors: list[BaseException] = []
    with open_writable(path) as handle:
        def query() -> None:
            try:
                for _ in range(300):
                    vd.GetVirtualDiskInformation(handle, Info.VIRTUAL_DISK_ID)
            except BaseException as error:   # noqa: BLE001 - reported below
                errors.append(error)

        def change() -> None:
            try:
                for _ in range(30):
                    vd.SetVirtualDiskInformation(handle, Set.VIRTUAL_DISK_ID,
                                                 virtual_disk_id=uuid.uuid4())
            except BaseException as error:   # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=query) for _ in range(3)]
        threads.append(threading.Thread(target=change))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


# ---------------------------------------------------------------- metadata

def test_metadata_functions_refuse_vhd_and_iso_kinds(tmp_path: Path) -> None:
    path = create(tmp_path / "plain.vhd")
    item = uuid.uuid4()
    with open_writable(path) as handle:
        for call in (lambda: vd.EnumerateVirtualDiskMetadata(handle),
                     lambda: vd.GetVirtualDiskMetadata(handle, item),
                     lambda: vd.SetVirtualDiskMetadata(handle, item, b"x"),
                     lambda: vd.DeleteVirtualDiskMetadata(handle, item)):
            assert code_of(call) == ERROR_VHD_INVALID_TYPE


def test_metadata_rights_and_missing_items(tmp_path: Path) -> None:
    path = create(tmp_path / "items.vhdx")
    item = uuid.uuid4()
    with open_read_only(path) as handle:
        assert vd.EnumerateVirtualDiskMetadata(handle) == []
        assert code_of(lambda: vd.GetVirtualDiskMetadata(handle, item)) == ERROR_NOT_FOUND
        assert code_of(lambda: vd.SetVirtualDiskMetadata(handle, item, b"x")) \
            == ERROR_ACCESS_DENIED
        assert code_of(lambda: vd.DeleteVirtualDiskMetadata(handle, item)) \
            == ERROR_ACCESS_DENIED
    with open_writable(path) as handle:
        assert code_of(lambda: vd.DeleteVirtualDiskMetadata(handle, item)) == ERROR_NOT_FOUND
        assert code_of(lambda: vd.SetVirtualDiskMetadata(handle, item, bytes(MiB + 1))) \
            == ERROR_INVALID_PARAMETER


def test_metadata_items_round_trip_through_a_reopen(tmp_path: Path) -> None:
    path = create(tmp_path / "items.vhdx")
    items = {uuid.uuid4(): bytes([n]) * (n * 100) for n in range(1, 12)}
    items[uuid.uuid4()] = b""
    with open_writable(path) as handle:
        for item, data in items.items():
            vd.SetVirtualDiskMetadata(handle, item, data)
    with open_read_only(path) as handle:
        assert sorted(vd.EnumerateVirtualDiskMetadata(handle)) == sorted(items)
        for item, data in items.items():
            assert vd.GetVirtualDiskMetadata(handle, item) == data
    removed = next(iter(items))
    with open_writable(path) as handle:
        vd.DeleteVirtualDiskMetadata(handle, removed)
        vd.SetVirtualDiskMetadata(handle, list(items)[1], b"replaced")
    with open_read_only(path) as handle:
        assert removed not in vd.EnumerateVirtualDiskMetadata(handle)
        assert vd.GetVirtualDiskMetadata(handle, list(items)[1]) == b"replaced"
