"""One description per item of information (virtdisk.items): the
VirtualDisk properties, VirtualDisk.info() and the CLI's rows all come from
it, and mypy still types each property."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import virtdisk
from mypy_snippet import run_mypy
from virtdisk import items
from virtdisk.cli import format_info

ITEM_PROPERTIES = {name: value for name, value in vars(virtdisk.VirtualDisk).items()
                   if isinstance(value, items.InfoItem)}


def test_every_info_field_but_path_is_one_item_in_order() -> None:
    fields = [field.name for field in dataclasses.fields(virtdisk.VirtualDiskInfo)]
    assert fields[0] == "path"
    assert [item.name for item in items.ITEMS] == fields[1:]


def test_the_properties_are_the_items_and_carry_their_description() -> None:
    assert len(ITEM_PROPERTIES) == 19
    for name, item in ITEM_PROPERTIES.items():
        assert item.name == name
        assert item.__doc__ and len(item.__doc__) > 20, name
        assert getattr(items, name) is item


def test_the_items_are_read_only_properties() -> None:
    # What inspect, help() and documentation tools see: a property without
    # a setter, whose getter is called as any property's is.
    for name, item in ITEM_PROPERTIES.items():
        assert isinstance(item, property), name
        assert item.fget is not None and item.fset is None and item.fdel is None, name
        assert inspect.getattr_static(virtdisk.VirtualDisk, name) is item


def test_the_properties_can_be_neither_set_nor_deleted(tmp_path: Path) -> None:
    path = tmp_path / "plain.vhdx"
    virtdisk.create(path, 32 << 20).close()
    with virtdisk.open(path) as disk:
        for name in ITEM_PROPERTIES:
            with pytest.raises(AttributeError):
                setattr(disk, name, 1)
            with pytest.raises(AttributeError):
                delattr(disk, name)
        assert disk.virtual_size == 32 << 20


def test_reading_a_closed_disk_names_the_property(tmp_path: Path) -> None:
    path = tmp_path / "plain.vhdx"
    virtdisk.create(path, 32 << 20).close()
    disk = virtdisk.open(path)
    disk.close()
    for name in ITEM_PROPERTIES:
        with pytest.raises(virtdisk.InvalidHandleError, match=f"VirtualDisk.{name}"):
            getattr(disk, name)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("items")
    parent = directory / "parent.vhd"
    virtdisk.create(parent, 16 << 20).close()
    child = directory / "child.vhd"
    virtdisk.create(child, parent=parent).close()
    vhdx = directory / "plain.vhdx"
    virtdisk.create(vhdx, 32 << 20).close()
    return [parent, child, vhdx]


def test_info_equals_the_properties(images: list[Path]) -> None:
    for path in images:
        with virtdisk.open(path) as disk:
            information = disk.info()
            for name in ITEM_PROPERTIES:
                if name != "physical_disk":
                    assert getattr(information, name) == getattr(disk, name), (path, name)
            host = disk.physical_disk
            assert (information.host_logical_sector_size, information.host_physical_sector_size,
                    information.is_remote) == tuple(host)
            assert information.path == str(path)


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_the_size_items_agree_with_qemu_img(images: list[Path]) -> None:
    for path in images:
        report = json.loads(subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", "vpc" if path.suffix == ".vhd" else "vhdx",
             str(path)], capture_output=True, text=True, check=True).stdout)
        with virtdisk.open(path) as disk:
            assert disk.virtual_size == report["virtual-size"]
            assert disk.physical_size == path.stat().st_size


def test_each_labelled_item_is_one_cli_row(images: list[Path]) -> None:
    with virtdisk.open(images[1]) as disk:
        information = disk.info()
    lines = format_info(information).splitlines()
    labels = [line.split(":", 1)[0] for line in lines]
    expected = ["Path"] + [item.label for item in items.ITEMS if item.label is not None]
    assert labels == expected  # one parent path: the child's resolved parent
    assert "Parent path:" in lines[labels.index("Parent path")]
    assert str(images[0]) in lines[labels.index("Parent path")]
    assert lines[labels.index("Provider subtype")].endswith(" differencing")
    assert lines[labels.index("Virtual size")].endswith("(16777216 bytes)")


def test_items_that_do_not_apply_show_not_applicable(images: list[Path]) -> None:
    with virtdisk.open(images[2]) as disk:
        rows = dict(items.info_rows(disk.info()))
    assert rows["Parent path"] == items.NOT_APPLICABLE
    assert rows["Parent timestamp"] == items.NOT_APPLICABLE


def test_mypy_types_each_property(tmp_path: Path) -> None:
    result = run_mypy(tmp_path, "\n".join([
        "import virtdisk",
        "disk = virtdisk.open('x.vhdx')",
        "reveal_type(disk.virtual_size)",
        "reveal_type(disk.parent_paths)",
        "reveal_type(disk.physical_disk)",
        "size: str = disk.block_size",
    ]) + "\n")
    assert 'snippet.py:3: note: Revealed type is "int"' in result.stdout, result.stdout
    assert 'snippet.py:4: note: Revealed type is "tuple[str, ...] | None"' in result.stdout
    assert "fallback=_virtdisk.PhysicalDisk]" in result.stdout
    assert "snippet.py:6: error: Incompatible types in assignment" in result.stdout
