"""A VHDX parent matches its child through parent_linkage or, when the child
has one, parent_linkage2 ([MS-VHDX] 2.6.2.6: the second linkage is written
while a parent is being updated, so either identifier is valid)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import vhdx_builder
import virtdisk
from virtdisk import errors

MiB = 1024 * 1024


def make_chain(directory: Path, *, linkage: uuid.UUID, linkage2: uuid.UUID | None) -> Path:
    parent_guid = uuid.UUID("a1111111-2222-4333-8444-555555555555")
    parent = vhdx_builder.Image(8 * MiB, data_write_guid=parent_guid.bytes_le)
    parent.write(0, b"\x5a" * 512)
    parent.save(directory / "parent.vhdx")
    locator = vhdx_builder.Locator(
        "{" + str(linkage) + "}", relative_path=".\\parent.vhdx",
        parent_linkage2=None if linkage2 is None else "{" + str(linkage2) + "}")
    child = vhdx_builder.Image(8 * MiB, kind="differencing", locator=locator)
    child.save(directory / "child.vhdx")
    return directory / "child.vhdx"


PARENT = uuid.UUID("a1111111-2222-4333-8444-555555555555")
OTHER = uuid.UUID("b1111111-2222-4333-8444-555555555555")


def test_parent_found_through_parent_linkage(tmp_path: Path) -> None:
    with virtdisk.open(make_chain(tmp_path, linkage=PARENT, linkage2=None)) as disk:
        assert disk.parent_resolved
        assert disk.parent_identifier == PARENT


def test_parent_found_through_parent_linkage2(tmp_path: Path) -> None:
    with virtdisk.open(make_chain(tmp_path, linkage=OTHER, linkage2=PARENT)) as disk:
        assert disk.parent_resolved
        assert disk.parent_paths == (str(tmp_path / "parent.vhdx"),)


def test_neither_linkage_matches(tmp_path: Path) -> None:
    with pytest.raises(errors.ParentMismatchError) as caught:
        virtdisk.open(make_chain(tmp_path, linkage=OTHER, linkage2=uuid.uuid4()))
    assert caught.value.winerror == 0xC03A000E   # ERROR_VHD_CHILD_PARENT_ID_MISMATCH
