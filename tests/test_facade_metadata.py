"""``VirtualDisk.metadata``: a VHDX's user metadata items as a mutable
mapping of uuid.UUID to bytes.

What the mapping shows is compared with the file itself, read by a reader
of the VHDX metadata table written here from [MS-VHDX] 2.2-2.6 (region
table, metadata table, IsUser entries), and ``qemu-img check`` must still
pass after items are added, replaced and deleted.  Images come both from
qemu-img and from :func:`virtdisk.create`.
"""

from __future__ import annotations

import collections.abc
import struct
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import virtdisk
from conftest import require_tool
from test_facade_create import QEMU_FORMAT, qemu_check
from vhdx_builder import (
    IS_USER,
    METADATA_REGION,
    PAGE83_DATA,
    REGION1,
    current_header,
)
from virtdisk import (
    AccessDeniedError,
    DiskFullError,
    InvalidHandleError,
    UnsupportedOperationError,
    VirtualDiskMetadata,
)
from virtdisk.errors import ERROR_ACCESS_DENIED, ERROR_VHD_INVALID_TYPE, ERROR_VHD_METADATA_FULL
from virtdisk.metadata import MAXIMUM_ITEM_SIZE, SYSTEM_ITEMS

KIB = 1 << 10
MIB = 1 << 20
FIRST = uuid.UUID("6f1d1c5e-3b55-4d8c-9a37-0c4f3a6e9b01")
SECOND = uuid.UUID("0a4b7f2c-91de-4e3a-8b6d-5f7e2c1d9a02")
THIRD = uuid.UUID("d3c2b1a0-7e6f-4a5b-9c8d-1e2f3a4b5c03")


# --------------------------------------------------------------------------- an independent reader

def vhdx_metadata_entries(path: Path) -> dict[uuid.UUID, tuple[int, bytes]]:
    """Every entry of the VHDX metadata table at `path`: item id ->
    (flags, data), read from the bytes of the file ([MS-VHDX] 2.2.3 region
    table, 2.6.1 metadata table).  Asserts that no log entry waits to be
    replayed, so that the file's bytes are the disk's state."""
    raw = path.read_bytes()
    _, header = current_header(raw)
    assert header[48:64] == bytes(16), "the log is not empty (LogGuid is set)"
    assert raw[REGION1:REGION1 + 4] == b"regi"
    (region_count,) = struct.unpack_from("<I", raw, REGION1 + 8)
    region = None
    for index in range(region_count):
        entry = REGION1 + 16 + 32 * index
        if raw[entry:entry + 16] == METADATA_REGION:
            region = struct.unpack_from("<Q", raw, entry + 16)[0]
    assert region is not None, "no metadata region"
    assert raw[region:region + 8] == b"metadata"
    (count,) = struct.unpack_from("<H", raw, region + 10)
    entries = {}
    for index in range(count):
        entry = region + 32 + 32 * index
        item = uuid.UUID(bytes_le=raw[entry:entry + 16])
        offset, length, flags = struct.unpack_from("<III", raw, entry + 16)
        entries[item] = (flags, raw[region + offset:region + offset + length])
    return entries


def vhdx_user_items(path: Path) -> dict[uuid.UUID, bytes]:
    return {item: data for item, (flags, data) in vhdx_metadata_entries(path).items()
            if flags & IS_USER}


def vhdx_system_item(path: Path, item: bytes) -> bytes:
    """The data of a system item, `item` in the file's GUID layout (the
    constants of vhdx_builder)."""
    flags, data = vhdx_metadata_entries(path)[uuid.UUID(bytes_le=item)]
    assert not flags & IS_USER
    return data


# --------------------------------------------------------------------------- images

def qemu_image(directory: Path, fmt: str, name: str = "disk") -> Path:
    """A 64 MiB dynamic image made by qemu-img (VHD: qemu's "vpc")."""
    path = directory / f"{name}.{fmt}"
    subprocess.run([require_tool("qemu-img"), "create", "-q", "-f", QEMU_FORMAT[fmt],
                    "-o", "subformat=dynamic", str(path), "64M"], check=True)
    return path


def engine_image(directory: Path, fmt: str, name: str = "disk") -> Path:
    """A 64 MiB dynamic image made by :func:`virtdisk.create`."""
    path = directory / f"{name}.{fmt}"
    virtdisk.create(path, 64 * MIB).close()
    return path


MAKERS: dict[str, Callable[[Path, str, str], Path]] = {"qemu": qemu_image,
                                                       "engine": engine_image}


def make(directory: Path, maker: str, fmt: str, name: str = "disk") -> Path:
    return MAKERS[maker](directory, fmt, name)


@pytest.fixture(params=list(MAKERS))
def vhdx(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return make(tmp_path, request.param, "vhdx")


# --------------------------------------------------------------------------- the mapping

def test_the_mapping_is_a_mutable_mapping(vhdx: Path) -> None:
    with virtdisk.open(vhdx) as disk:
        metadata = disk.metadata
        assert isinstance(metadata, VirtualDiskMetadata)
        assert isinstance(metadata, collections.abc.MutableMapping)
        assert repr(metadata) == f"<VirtualDiskMetadata of {str(vhdx)!r}>"


def test_a_new_disk_has_no_user_items(vhdx: Path) -> None:
    with virtdisk.open(vhdx) as disk:
        assert len(disk.metadata) == 0
        assert list(disk.metadata) == []
        assert dict(disk.metadata) == {}
    assert vhdx_user_items(vhdx) == {}


def test_set_get_replace_delete_round_trip(vhdx: Path) -> None:
    values = {FIRST: b"built by pipeline 42", SECOND: bytes(range(256)) * 64, THIRD: b"\0"}
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
        metadata[FIRST] = values[FIRST]
        metadata[SECOND] = bytearray(values[SECOND])
        metadata[THIRD] = memoryview(values[THIRD])
        assert len(metadata) == 3
        assert set(metadata) == set(values)
        assert FIRST in metadata and SECOND in metadata and THIRD in metadata
        assert metadata[SECOND] == values[SECOND]
        assert type(metadata[SECOND]) is bytes
        assert dict(metadata) == values
    assert vhdx_user_items(vhdx) == values
    qemu_check(vhdx, "vhdx")

    with virtdisk.open(vhdx) as disk:
        assert dict(disk.metadata) == values
        assert disk.metadata == values

    values[FIRST] = b"a longer value than before, " * 100
    values[SECOND] = b"shorter"
    del values[THIRD]
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
        metadata[FIRST] = values[FIRST]
        metadata[SECOND] = values[SECOND]
        del metadata[THIRD]
        assert THIRD not in metadata
        assert len(metadata) == 2
    with virtdisk.open(vhdx) as disk:
        assert dict(disk.metadata) == values
    assert vhdx_user_items(vhdx) == values
    qemu_check(vhdx, "vhdx")

    with virtdisk.open(vhdx, read_only=False) as disk:
        disk.metadata.clear()
        assert len(disk.metadata) == 0
    assert vhdx_user_items(vhdx) == {}
    qemu_check(vhdx, "vhdx")


def test_user_items_leave_the_system_items_alone(vhdx: Path) -> None:
    system = {item: entry for item, entry in vhdx_metadata_entries(vhdx).items()}
    with virtdisk.open(vhdx) as disk:
        info = disk.info()
    with virtdisk.open(vhdx, read_only=False) as disk:
        disk.metadata.update({FIRST: b"one", SECOND: b"two" * 1000})
    after = vhdx_metadata_entries(vhdx)
    assert {item: entry for item, entry in after.items() if item in system} == system
    with virtdisk.open(vhdx) as disk:
        assert disk.info() == info
    assert uuid.UUID(bytes_le=vhdx_system_item(vhdx, PAGE83_DATA)) == info.virtual_disk_id


def test_many_items(vhdx: Path) -> None:
    values = {uuid.UUID(int=index + 1): index.to_bytes(4, "little") * (index + 1)
              for index in range(100)}
    with virtdisk.open(vhdx, read_only=False) as disk:
        disk.metadata.update(values)
        assert len(disk.metadata) == 100
    with virtdisk.open(vhdx) as disk:
        assert dict(disk.metadata) == values
    assert vhdx_user_items(vhdx) == values
    qemu_check(vhdx, "vhdx")


# --------------------------------------------------------------------------- missing items

def test_a_missing_item_is_a_key_error(vhdx: Path) -> None:
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
        metadata[FIRST] = b"present"
        with pytest.raises(KeyError) as caught:
            metadata[SECOND]
        assert caught.value.args == (SECOND,)
        assert not isinstance(caught.value, virtdisk.VirtualDiskError)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert metadata.get(SECOND) is None
        assert metadata.get(SECOND, b"default") == b"default"
        assert SECOND not in metadata
        with pytest.raises(KeyError) as caught:
            del metadata[SECOND]
        assert caught.value.args == (SECOND,)
        assert metadata.pop(SECOND, None) is None
        assert metadata.pop(FIRST) == b"present"
        with pytest.raises(KeyError):
            metadata.pop(FIRST)
        assert len(metadata) == 0


def test_system_items_are_not_in_the_mapping(vhdx: Path) -> None:
    present = set(vhdx_metadata_entries(vhdx))
    assert present >= {uuid.UUID(bytes_le=PAGE83_DATA)}
    before = vhdx.read_bytes()
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
        for item in SYSTEM_ITEMS:
            assert item not in metadata
            with pytest.raises(KeyError):
                metadata[item]
            with pytest.raises(KeyError):
                del metadata[item]
            with pytest.raises(ValueError, match="an item the VHDX format defines and manages"):
                metadata[item] = b"\0" * 8
        assert list(metadata) == []
    assert vhdx.read_bytes() == before


# --------------------------------------------------------------------------- argument checks

@pytest.mark.parametrize("key", ["6f1d1c5e-3b55-4d8c-9a37-0c4f3a6e9b01", FIRST.bytes, 7, None])
def test_keys_must_be_uuids(vhdx: Path, key: object) -> None:
    message = f"metadata keys must be uuid.UUID, not {type(key).__name__}"
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
        with pytest.raises(TypeError, match=message):
            metadata[key] = b"x"  # type: ignore[index]
        with pytest.raises(TypeError, match=message):
            metadata[key]  # type: ignore[index]
        with pytest.raises(TypeError, match=message):
            del metadata[key]  # type: ignore[arg-type]
        assert key not in metadata
        assert len(metadata) == 0


@pytest.mark.parametrize("value", ["text", 42, None, [1, 2]])
def test_values_must_be_bytes_like(vhdx: Path, value: object) -> None:
    with virtdisk.open(vhdx, read_only=False) as disk:
        with pytest.raises(TypeError, match=f"metadata values must be bytes-like "
                                            rf"\(bytes, bytearray, memoryview\), "
                                            f"not {type(value).__name__}"):
            disk.metadata[FIRST] = value  # type: ignore[assignment]
        assert len(disk.metadata) == 0


def test_an_item_holds_at_most_one_mebibyte(vhdx: Path) -> None:
    before = vhdx.read_bytes()
    with virtdisk.open(vhdx, read_only=False) as disk:
        with pytest.raises(ValueError, match=r"a metadata item holds at most 1 MiB \(1048576 "
                                             r"bytes\), not 1048577 bytes"):
            disk.metadata[FIRST] = bytes(MAXIMUM_ITEM_SIZE + 1)
    assert vhdx.read_bytes() == before


def test_a_full_metadata_region(vhdx: Path) -> None:
    """The metadata region both tools make is 1 MiB, which also holds the
    table and the system items: an item of 1 MiB cannot fit."""
    with virtdisk.open(vhdx, read_only=False) as disk:
        disk.metadata[FIRST] = b"kept"
        with pytest.raises(DiskFullError) as caught:
            disk.metadata[SECOND] = bytes(MAXIMUM_ITEM_SIZE)
        assert caught.value.winerror == ERROR_VHD_METADATA_FULL
        assert dict(disk.metadata) == {FIRST: b"kept"}
    assert vhdx_user_items(vhdx) == {FIRST: b"kept"}
    qemu_check(vhdx, "vhdx")


# --------------------------------------------------------------------------- refusals

def test_changes_to_a_read_only_disk_are_refused_before_the_call(vhdx: Path) -> None:
    with virtdisk.open(vhdx, read_only=False) as disk:
        disk.metadata[FIRST] = b"kept"
    before = vhdx.read_bytes()
    with virtdisk.open(vhdx) as disk:
        metadata = disk.metadata
        assert metadata[FIRST] == b"kept"
        changes: list[Callable[[], object]] = [lambda: metadata.__setitem__(SECOND, b"new"),
                                                lambda: metadata.__delitem__(FIRST)]
        for change in changes:
            with pytest.raises(AccessDeniedError) as caught:
                change()
            assert isinstance(caught.value, PermissionError)
            assert caught.value.winerror == ERROR_ACCESS_DENIED
            assert caught.value.function == "VirtualDisk.metadata"
            assert "read_only=False" in str(caught.value)
    assert vhdx.read_bytes() == before


def test_a_closed_disk_says_so(vhdx: Path) -> None:
    with virtdisk.open(vhdx, read_only=False) as disk:
        metadata = disk.metadata
    for operation in (lambda: len(metadata), lambda: list(metadata),
                      lambda: FIRST in metadata, lambda: metadata[FIRST],
                      lambda: metadata.__setitem__(FIRST, b"x"),
                      lambda: metadata.__delitem__(FIRST)):
        with pytest.raises(InvalidHandleError, match="the virtual disk is closed") as caught:
            operation()
        assert caught.value.function == "VirtualDisk.metadata"


@pytest.mark.parametrize("maker", MAKERS)
def test_a_vhd_has_no_metadata_items(tmp_path: Path, maker: str) -> None:
    path = make(tmp_path, maker, "vhd")
    before = path.read_bytes()
    with virtdisk.open(path, read_only=False) as disk:
        metadata = disk.metadata
        for operation in (lambda: len(metadata), lambda: list(metadata),
                          lambda: FIRST in metadata, lambda: metadata[FIRST],
                          lambda: metadata.__setitem__(FIRST, b"x"),
                          lambda: metadata.__delitem__(FIRST)):
            with pytest.raises(UnsupportedOperationError) as caught:
                operation()
            assert caught.value.winerror == ERROR_VHD_INVALID_TYPE
    assert path.read_bytes() == before
