"""``virtdisk create``: the command line of :func:`virtdisk.create`.

Usage errors (exit 2) need no engine; the images the command makes are
read back with ``virtdisk info`` and judged by qemu-img and vhdiinfo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from test_cli import table
from test_facade_create import (
    GIB,
    MIB,
    QEMU_FORMAT,
    VHDI_TYPE,
    needs_engine,
    qemu_check,
    qemu_info,
    vhdi_media_size,
    vhdiinfo,
)
from virtdisk.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main


# --------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize(("arguments", "message"), [
    (["--size", "10x"], "argument --size: unknown size unit 'x' in '10x'"),
    (["--size", "1GiB", "--type", "sparse"], "argument --type: invalid choice: 'sparse'"),
    (["--size", "1GiB", "--format", "qcow2"], "argument --format: invalid choice: 'qcow2'"),
    (["--size", "1GiB", "--sector-size", "1024"], "argument --sector-size: invalid choice: 1024"),
    (["--size", "1GiB", "--identifier", "not-a-uuid"], "argument --identifier: invalid UUID"),
    (["--parent", "p.vhdx", "--source", "s.vhdx"],
     "argument --source: not allowed with argument --parent"),
])
def test_usage_errors_from_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      arguments: list[str], message: str) -> None:
    path = tmp_path / "disk.vhdx"
    assert main(["create", str(path), *arguments]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert not path.exists()


@pytest.mark.parametrize(("name", "arguments", "message"), [
    ("disk.img", ["--size", "1GiB"], "cannot tell the format from '.img'"),
    ("disk.vhdx", [], "size is required"),
    ("disk.vhdx", ["--size", "1000"], "size must be a multiple of 512 bytes"),
    ("disk.vhd", ["--size", "2041GiB"], "exceeds the VHD limit of 2040 GiB"),
    ("disk.vhd", ["--size", "1GiB", "--block-size", "1MiB"],
     "block_size of a VHD must be 512 KiB (524288) or 2 MiB (2097152), not 1048576"),
    ("disk.vhd", ["--size", "1GiB", "--sector-size", "4096"],
     "sector_size of a VHD must be 512, not 4096"),
    ("disk.vhdx", ["--size", "1GiB", "--type", "fixed", "--block-size", "32MiB"],
     "a fixed disk has no blocks"),
    ("disk.vhdx", ["--type", "differencing"], "type='differencing' needs parent="),
    ("disk.vhdx", ["--size", "1GiB", "--parent", "p.vhdx"], "size must be None"),
])
def test_usage_errors_from_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     name: str, arguments: list[str], message: str) -> None:
    path = tmp_path / name
    assert main(["create", str(path), *arguments]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("virtdisk create: error: ")
    assert message in captured.err
    assert not path.exists()


def test_help_lists_the_options() -> None:
    result = subprocess.run([sys.executable, "-m", "virtdisk", "create", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == EXIT_OK
    for option in ("--size", "--type", "--format", "--parent", "--source", "--block-size",
                   "--sector-size", "--physical-sector-size", "--identifier", "--json"):
        assert option in result.stdout


# --------------------------------------------------------------------------- creating

@pytest.mark.parametrize(("fmt", "disk_type"), [
    pytest.param(fmt, disk_type, marks=needs_engine(fmt, disk_type), id=f"{fmt}-{disk_type}")
    for fmt in ("vhd", "vhdx") for disk_type in ("fixed", "dynamic")
])
def test_create_then_info_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     fmt: str, disk_type: str) -> None:
    path = tmp_path / f"disk.{fmt}"
    identifier = uuid.uuid4()
    assert main(["create", str(path), "--size", "96MiB", "--type", disk_type,
                 "--identifier", str(identifier), "--json"]) == EXIT_OK
    created = json.loads(capsys.readouterr().out)
    assert main(["info", str(path), "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert created == shown
    assert created["virtual_size"] == 96 * MIB == qemu_info(path, fmt)["virtual-size"]
    assert created["virtual_disk_id"] == str(identifier)
    rows = vhdiinfo(path)
    assert rows["Disk type"] == VHDI_TYPE[disk_type]
    assert vhdi_media_size(rows) == 96 * MIB
    assert created["identifier"] == str(uuid.UUID(rows["Identifier"]))
    qemu_check(path, fmt)


@needs_engine("vhdx", "dynamic")
def test_create_table_as_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "disk.vhdx"
    result = subprocess.run([sys.executable, "-m", "virtdisk", "create", str(path),
                             "--size", "2GiB", "--block-size", "8MiB"],
                            capture_output=True, text=True)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""
    rows = table(result.stdout)
    assert rows["Path"] == [str(path)]
    assert rows["Storage type"] == ["vhdx"]
    assert rows["Provider subtype"] == ["dynamic"]
    assert rows["Virtual size"] == [f"2.0 GiB ({2 * GIB} bytes)"]
    assert rows["Block size"] == [f"8.0 MiB ({8 * MIB} bytes)"]
    info = qemu_info(path, "vhdx")
    assert (info["virtual-size"], info["cluster-size"]) == (2 * GIB, 8 * MIB)


@needs_engine("vhdx", "dynamic")
def test_create_with_4096_byte_sectors(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "disk.vhdx"
    assert main(["create", str(path), "--size", "64MiB", "--sector-size", "4096",
                 "--physical-sector-size", "4096"]) == EXIT_OK
    rows = table(capsys.readouterr().out)
    assert rows["Sector size"] == ["4.0 KiB (4096 bytes)"]
    assert rows["Physical sector size"] == ["4.0 KiB (4096 bytes)"]
    # qemu reads only 512-byte logical sectors in VHDX: libvhdi judges.
    assert vhdiinfo(path)["Bytes per sector"] == "4096 bytes"


@needs_engine("vhdx", "dynamic")
def test_existing_file_fails_with_exit_1(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "disk.vhdx"
    path.write_bytes(b"keep me")
    assert main(["create", str(path), "--size", "1GiB"]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("virtdisk: error: ")
    assert "ERROR_FILE_EXISTS 80" in captured.err
    assert path.read_bytes() == b"keep me"


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "differencing"))
                                 for fmt in ("vhd", "vhdx")])
def test_create_differencing_child(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   fmt: str) -> None:
    parent = tmp_path / f"parent.{fmt}"
    child = tmp_path / f"child.{fmt}"
    assert main(["create", str(parent), "--size", "32MiB", "--json"]) == EXIT_OK
    parent_info = json.loads(capsys.readouterr().out)
    assert main(["create", str(child), "--parent", str(parent), "--json"]) == EXIT_OK
    child_info = json.loads(capsys.readouterr().out)
    assert child_info["provider_subtype"] == "differencing"
    assert child_info["virtual_size"] == 32 * MIB
    assert child_info["parent_identifier"] == parent_info["identifier"]
    rows = vhdiinfo(child)
    assert rows["Disk type"] == VHDI_TYPE["differencing"]
    assert str(uuid.UUID(rows["Parent identifier"])) == parent_info["identifier"]


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "differencing"))
                                 for fmt in ("vhd", "vhdx")])
def test_missing_parent_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          fmt: str) -> None:
    child = tmp_path / f"child.{fmt}"
    assert main(["create", str(child), "--parent", str(tmp_path / f"none.{fmt}")]) \
        == EXIT_FAILURE
    assert capsys.readouterr().err.startswith("virtdisk: error: ")
    assert not child.exists()


@pytest.mark.parametrize("fmt", [pytest.param(fmt, marks=needs_engine(fmt, "source"))
                                 for fmt in ("vhd", "vhdx")])
def test_create_from_source(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            fmt: str) -> None:
    other = "vhdx" if fmt == "vhd" else "vhd"
    source = tmp_path / f"source.{other}"
    options = "subformat=dynamic" + (",force_size=on" if other == "vhd" else "")
    subprocess.run(["qemu-img", "create", "-q", "-f", QEMU_FORMAT[other], "-o", options,
                    str(source), "8M"], check=True)
    subprocess.run(["qemu-io", "-f", QEMU_FORMAT[other], "-c", "write -P 0x42 1M 1M",
                    str(source)], check=True, capture_output=True)
    target = tmp_path / f"copy.{fmt}"
    assert main(["create", str(target), "--source", str(source), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["virtual_size"] == 8 * MIB
    result = subprocess.run(["qemu-img", "compare", "-f", QEMU_FORMAT[other], "-F",
                             QEMU_FORMAT[fmt], str(source), str(target)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
