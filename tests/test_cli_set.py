"""``virtdisk set`` and ``virtdisk metadata``: the command line of the
``set_*`` methods and of :attr:`VirtualDisk.metadata`.

Usage errors (exit 2) change nothing; changes are read back with
``virtdisk info`` and ``virtdisk metadata``, and judged by vhdiinfo,
``qemu-img check`` and the VHDX metadata table reader of
test_facade_metadata.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import virtdisk
from test_cli import run_module, table
from test_facade_create import qemu_check, vhdiinfo
from test_facade_metadata import engine_image, qemu_image, vhdx_system_item, vhdx_user_items
from vhdx_builder import PAGE83_DATA
from virtdisk.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from virtdisk.metadata import MAXIMUM_ITEM_SIZE

ITEM = uuid.UUID("6f1d1c5e-3b55-4d8c-9a37-0c4f3a6e9b01")
OTHER = uuid.UUID("0a4b7f2c-91de-4e3a-8b6d-5f7e2c1d9a02")
PAGE83 = "beca12ab-b2e6-4523-93ef-c309e000c746"


def json_output(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    captured = capsys.readouterr()
    assert captured.err == ""
    shown = json.loads(captured.out)
    assert isinstance(shown, dict)
    return shown


# --------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize(("arguments", "message"), [
    ([], "nothing to change: give --parent, --physical-sector-size, --metadata"),
    (["--ignore-id-mismatch", "--identifier", "random"],
     "--ignore-id-mismatch applies to --parent"),
    (["--depth", "2", "--identifier", "random"], "--depth applies to --parent"),
    (["--parent", "p.vhdx", "--depth", "2", "--ignore-id-mismatch"],
     "--ignore-id-mismatch applies to the disk's own parent (--depth 1)"),
    (["--depth", "0", "--parent", "p.vhdx"], "argument --depth: expected a depth of 1 or more, "
                                             "not '0'"),
    (["--depth", "two", "--parent", "p.vhdx"], "argument --depth: expected a depth of 1 or more"),
    (["--identifier", "not-a-uuid"], "argument --identifier: invalid UUID 'not-a-uuid'"),
    (["--virtual-disk-id", "RANDOM"], "argument --virtual-disk-id: invalid UUID 'RANDOM'"),
    (["--physical-sector-size", "1024"], "argument --physical-sector-size: invalid choice: 1024"),
    (["--metadata", str(ITEM)], f"argument --metadata: expected UUID=HEX, not '{ITEM}'"),
    (["--metadata", f"{ITEM}=zz"], f"argument --metadata: invalid hex data 'zz' for item {ITEM}"),
    (["--metadata", "item=00"], "argument --metadata: invalid UUID 'item'"),
    (["--metadata", f"{PAGE83}=00"],
     f"argument --metadata: {PAGE83} is an item the VHDX format defines, not a user metadata "
     f"item"),
    (["--delete-metadata", PAGE83], f"argument --delete-metadata: {PAGE83} is an item the VHDX "
                                    f"format defines"),
    (["--metadata", f"{ITEM}=00", "--delete-metadata", str(ITEM)],
     f"metadata item {ITEM} is named more than once"),
    (["--metadata", f"{ITEM}=00", "--metadata", f"{ITEM}=01"],
     f"metadata item {ITEM} is named more than once"),
    (["--metadata-file", f"{ITEM}"], f"argument --metadata-file: expected UUID=FILE, not '{ITEM}'"),
    (["--metadata-file", f"{ITEM}=/nonexistent/item.bin"],
     "argument --metadata-file: cannot read '/nonexistent/item.bin': No such file or directory"),
])
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      arguments: list[str], message: str) -> None:
    path = qemu_image(tmp_path, "vhdx")
    before = path.read_bytes()
    assert main(["set", str(path), *arguments]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert path.read_bytes() == before


def test_items_larger_than_one_mebibyte_are_usage_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = qemu_image(tmp_path, "vhdx")
    large = tmp_path / "large.bin"
    large.write_bytes(bytes(MAXIMUM_ITEM_SIZE + 1))
    before = path.read_bytes()
    assert main(["set", str(path), "--metadata-file", f"{ITEM}={large}"]) == EXIT_USAGE
    assert (f"argument --metadata-file: {str(large)!r} is larger than a metadata item may be "
            f"(1 MiB, 1048576 bytes)") in capsys.readouterr().err
    assert main(["set", str(path), "--metadata",
                 f"{ITEM}={'00' * (MAXIMUM_ITEM_SIZE + 1)}"]) == EXIT_USAGE
    assert f"the data for item {ITEM} is larger than a metadata item may be" in \
        capsys.readouterr().err
    assert path.read_bytes() == before


def test_an_iso_cannot_be_changed(images: Callable[[str], Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = images("iso9660-xorriso")
    assert main(["set", str(path), "--identifier", "random"]) == EXIT_USAGE
    assert "virtdisk set: error: ISO images can only be opened read-only" in \
        capsys.readouterr().err


def test_help_lists_the_options() -> None:
    result = subprocess.run([sys.executable, "-m", "virtdisk", "set", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == EXIT_OK
    for option in ("--parent", "--ignore-id-mismatch", "--depth", "--identifier",
                   "--virtual-disk-id", "--physical-sector-size", "--metadata",
                   "--metadata-file", "--delete-metadata", "--json"):
        assert option in result.stdout
    result = subprocess.run([sys.executable, "-m", "virtdisk", "metadata", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == EXIT_OK
    for option in ("--get", "--json", "--no-parents"):
        assert option in result.stdout


# --------------------------------------------------------------------------- identifiers and sector size

@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_set_identifiers_then_info(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   fmt: str) -> None:
    path = qemu_image(tmp_path, fmt)
    identifier = uuid.uuid4()
    assert main(["set", str(path), "--identifier", str(identifier), "--json"]) == EXIT_OK
    shown = json_output(capsys)
    assert shown["identifier"] == str(identifier)
    assert main(["info", str(path), "--json"]) == EXIT_OK
    assert json_output(capsys) == shown
    assert uuid.UUID(vhdiinfo(path)["Identifier"]) == identifier

    assert main(["set", str(path), "--virtual-disk-id", "random", "--json"]) == EXIT_OK
    shown = json_output(capsys)
    virtual_disk_id = uuid.UUID(str(shown["virtual_disk_id"]))
    assert virtual_disk_id.version == 4
    if fmt == "vhdx":
        assert shown["identifier"] == str(identifier)
        assert uuid.UUID(bytes_le=vhdx_system_item(path, PAGE83_DATA)) == virtual_disk_id
    qemu_check(path, fmt)


def test_set_physical_sector_size_as_a_subprocess(tmp_path: Path) -> None:
    path = engine_image(tmp_path, "vhdx")
    result = run_module("set", path, "--physical-sector-size", "4096")
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""
    rows = table(result.stdout)
    assert rows["Physical sector size"] == ["4.0 KiB (4096 bytes)"]
    assert rows["Path"] == [str(path)]
    qemu_check(path, "vhdx")


def test_a_vhd_refuses_a_physical_sector_size(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = qemu_image(tmp_path, "vhd")
    before = path.read_bytes()
    assert main(["set", str(path), "--physical-sector-size", "4096",
                 "--identifier", "random"]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("virtdisk: error: SetVirtualDiskInformation failed on ")
    assert "ERROR_VHD_INVALID_TYPE" in captured.err
    # The refused change came first: the identifier was not changed either.
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- metadata

def test_set_and_read_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = qemu_image(tmp_path, "vhdx")
    content = bytes(range(256)) * 40
    source = tmp_path / "item.bin"
    source.write_bytes(content)
    assert main(["set", str(path), "--metadata", f"{ITEM}=68656c6c6f",
                 "--metadata-file", f"{OTHER}={source}"]) == EXIT_OK
    assert "Identifier:" in capsys.readouterr().out
    assert vhdx_user_items(path) == {ITEM: b"hello", OTHER: content}
    qemu_check(path, "vhdx")

    assert main(["metadata", str(path), "--json"]) == EXIT_OK
    assert json_output(capsys) == {str(ITEM): "68656c6c6f", str(OTHER): content.hex()}
    assert main(["metadata", str(path)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted([f"{ITEM}: 5 bytes", f"{OTHER}: 10.0 KiB (10240 bytes)"])
    assert main(["metadata", str(path), "--get", str(ITEM), "--json"]) == EXIT_OK
    assert json_output(capsys) == {str(ITEM): "68656c6c6f"}

    # The raw bytes, as a file would receive them.
    result = subprocess.run([sys.executable, "-m", "virtdisk", "metadata", str(path),
                             "--get", str(OTHER)], capture_output=True)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout == content

    assert main(["set", str(path), "--delete-metadata", str(OTHER),
                 "--metadata", f"{ITEM}="]) == EXIT_OK
    capsys.readouterr()
    assert vhdx_user_items(path) == {ITEM: b""}
    qemu_check(path, "vhdx")


def test_missing_metadata_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = qemu_image(tmp_path, "vhdx")
    before = path.read_bytes()
    assert main(["set", str(path), "--delete-metadata", str(ITEM)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"virtdisk: error: {str(path)!r} has no metadata item {ITEM}\n"
    assert main(["metadata", str(path), "--get", str(ITEM)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"virtdisk: error: {str(path)!r} has no metadata item {ITEM}\n"
    assert main(["metadata", str(path)]) == EXIT_OK
    assert capsys.readouterr().out == ""
    assert path.read_bytes() == before


def test_a_vhd_has_no_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = qemu_image(tmp_path, "vhd")
    assert main(["metadata", str(path)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "virtdisk: error: EnumerateVirtualDiskMetadata failed" in captured.err
    assert "ERROR_VHD_INVALID_TYPE" in captured.err
    assert main(["set", str(path), "--metadata", f"{ITEM}=00"]) == EXIT_FAILURE
    assert "ERROR_VHD_INVALID_TYPE" in capsys.readouterr().err


# --------------------------------------------------------------------------- parent

@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_repair_a_moved_parent_as_a_subprocess(tmp_path: Path, fmt: str) -> None:
    base = engine_image(tmp_path, fmt, "base")
    child = tmp_path / f"child.{fmt}"
    virtdisk.create(child, parent=base).close()
    moved = tmp_path / "moved" / f"base.{fmt}"
    moved.parent.mkdir()
    base.rename(moved)
    result = run_module("set", child, "--parent", moved)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""
    rows = table(result.stdout)
    assert rows["Parent resolved"] == ["yes"]
    assert rows["Parent path"] == [str(moved)]
    assert vhdiinfo(child)["Parent filename"] == str(moved)


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_parent_with_a_changed_identifier(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          fmt: str) -> None:
    base = engine_image(tmp_path, fmt, "base")
    child = tmp_path / f"child.{fmt}"
    virtdisk.create(child, parent=base).close()
    copy = tmp_path / f"copy.{fmt}"
    shutil.copyfile(base, copy)
    assert main(["set", str(copy), "--identifier", "random", "--json"]) == EXIT_OK
    copy_identifier = json_output(capsys)["identifier"]

    before = child.read_bytes()
    assert main(["set", str(child), "--parent", str(copy)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert "ERROR_VHD_CHILD_PARENT_ID_MISMATCH" in captured.err
    assert child.read_bytes() == before

    assert main(["set", str(child), "--parent", str(copy), "--ignore-id-mismatch",
                 "--json"]) == EXIT_OK
    shown = json_output(capsys)
    assert shown["parent_identifier"] == copy_identifier
    assert shown["parent_resolved"] is True
    assert shown["parent_paths"] == [str(copy)]
    assert vhdiinfo(child)["Parent identifier"] == copy_identifier


def test_parent_at_depth_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = engine_image(tmp_path, "vhdx", "base")
    middle = tmp_path / "middle.vhdx"
    leaf = tmp_path / "leaf.vhdx"
    virtdisk.create(middle, parent=base).close()
    virtdisk.create(leaf, parent=middle).close()
    copy = tmp_path / "copies" / "base.vhdx"
    copy.parent.mkdir()
    shutil.copyfile(base, copy)
    assert main(["set", str(leaf), "--parent", str(copy), "--depth", "2"]) == EXIT_OK
    rows = table(capsys.readouterr().out)
    assert rows["Parent path"] == [str(middle)]
    assert vhdiinfo(middle)["Parent filename"] == str(copy)
    assert vhdiinfo(leaf)["Parent filename"] == str(middle)


@pytest.mark.parametrize("command", [["set", "--identifier", "random"], ["metadata"]])
def test_a_missing_image(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         command: list[str]) -> None:
    path = tmp_path / "missing.vhdx"
    assert main([command[0], str(path), *command[1:]]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"virtdisk: error: OpenVirtualDisk failed on {str(path)!r}")
    assert "ERROR_FILE_NOT_FOUND" in captured.err
    assert not path.exists()
