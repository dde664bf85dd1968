"""The ``virtdisk`` command (``python -m virtdisk``) and the size helpers it
prints with.

Expected values come from qemu-img and vhdiinfo reading the same images,
and, for sizes, from the unit definitions (IEC 80000-13 binary prefixes,
SI decimal ones).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

import virtdisk
from conftest import require_tool
from virtdisk.cli import main
from virtdisk.sizes import format_size, format_size_with_bytes, parse_size

Images = Callable[[str], Path]


def run_module(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "virtdisk", *map(str, arguments)],
                          capture_output=True, text=True)


def qemu_virtual_size(path: Path, fmt: str) -> int:
    output = subprocess.run([require_tool("qemu-img"), "info", "-U", "--output=json", "-f", fmt,
                             str(path)], capture_output=True, text=True, check=True).stdout
    size = json.loads(output)["virtual-size"]
    assert isinstance(size, int)
    return size


def vhdi_identifier(path: Path) -> str:
    output = subprocess.run([require_tool("vhdiinfo"), str(path)], capture_output=True,
                            text=True, check=True).stdout
    match = re.search(r"^\tIdentifier\s*:\s*(\S+)$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


def table(text: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        label, _, value = line.partition(":")
        rows.setdefault(label, []).append(value.strip())
    return rows


# --------------------------------------------------------------------------- info as a table

def test_info_table_as_a_subprocess(images: Images) -> None:
    path = images("vhdx-dynamic-1G-block-32M")
    result = run_module("info", path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = table(result.stdout)
    size = qemu_virtual_size(path, "vhdx")
    assert rows["Virtual size"] == [f"{format_size(size)} ({size} bytes)"]
    assert rows["Virtual size"] == ["1.0 GiB (1073741824 bytes)"]
    assert rows["Block size"] == ["32.0 MiB (33554432 bytes)"]
    assert rows["Storage type"] == ["vhdx"]
    assert rows["Provider subtype"] == ["dynamic"]
    assert rows["Identifier"] == [vhdi_identifier(path)]
    assert rows["Parent path"] == ["n/a"]
    assert rows["Path"] == [str(path)]


def test_info_table_in_process(images: Images, capsys: pytest.CaptureFixture[str]) -> None:
    path = images("vhd-fixed-10M-exact")
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    rows = table(captured.out)
    assert rows["Virtual size"] == [f"10.0 MiB ({qemu_virtual_size(path, 'vpc')} bytes)"]
    assert rows["Block size"] == ["none"]
    assert rows["Provider subtype"] == ["fixed"]
    assert rows["Sector size"] == ["512 bytes"]
    assert captured.err == ""


def test_info_table_of_an_iso(images: Images, capsys: pytest.CaptureFixture[str]) -> None:
    path = images("iso9660-xorriso")
    assert main(["info", str(path)]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["Storage type"] == ["iso"]
    assert rows["Identifier"] == ["n/a"]
    assert rows["Provider subtype"] == ["n/a"]
    assert rows["Sector size"] == ["2.0 KiB (2048 bytes)"]


# --------------------------------------------------------------------------- info as JSON

@pytest.mark.parametrize(("name", "fmt"), [("vhd-dynamic-64M", "vpc"),
                                           ("vhdx-dynamic-100M-block-1M", "vhdx")])
def test_info_json_as_a_subprocess(images: Images, name: str, fmt: str) -> None:
    path = images(name)
    result = run_module("info", "--json", path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["virtual_size"] == qemu_virtual_size(path, fmt)
    assert isinstance(data["virtual_size"], int)
    assert data["identifier"] == vhdi_identifier(path)
    assert data["storage_type"] == ("vhd" if fmt == "vpc" else "vhdx")
    assert data["provider_subtype"] == "dynamic"
    assert data["parent_paths"] is None
    assert data["parent_timestamp"] is None
    assert data["path"] == str(path)


def test_info_json_in_process_matches_the_facade(images: Images,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = images("udf-mkudffs")
    assert main(["info", "--json", "--storage-type", "iso", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    with virtdisk.open(path) as disk:
        expected = disk.info().to_json_dict()
    assert data == expected
    assert data["identifier"] is None
    assert data["sector_size"] == 2048


# --------------------------------------------------------------------------- failures and usage

def test_api_failure_exits_1_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.vhdx"
    result = run_module("info", missing)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("virtdisk: error: OpenVirtualDisk failed on ")
    assert str(missing) in result.stderr
    assert "ERROR_FILE_NOT_FOUND" in result.stderr


def test_corrupt_image_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.vhd"
    broken.write_bytes(b"\0" * 4096)
    assert main(["info", str(broken)]) == 1
    captured = capsys.readouterr()
    assert "ERROR_VHD_DRIVE_FOOTER_MISSING" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("arguments", [
    [], ["frobnicate"], ["info"], ["info", "--storage-type", "qcow2", "x.vhd"],
    ["info", "a.vhd", "b.vhd"], ["--no-such-option"],
])
def test_usage_errors_exit_2(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(arguments) == 2
    captured = capsys.readouterr()
    assert "usage: virtdisk" in captured.err
    assert captured.out == ""


def test_usage_error_as_a_subprocess() -> None:
    result = run_module("info")
    assert result.returncode == 2
    assert "the following arguments are required: PATH" in result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"virtdisk {virtdisk.__version__}\n"
    result = run_module("--version")
    assert (result.returncode, result.stdout) == (0, f"virtdisk {virtdisk.__version__}\n")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "info" in capsys.readouterr().out


def test_console_script(images: Images) -> None:
    # The script installed with the interpreter running the tests, not
    # whichever one PATH finds first (another environment's may be stale).
    script = shutil.which("virtdisk", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("the virtdisk console script is not installed beside this interpreter")
    result = subprocess.run([script, "info", "--json", str(images("vhd-dynamic-64M"))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["storage_type"] == "vhd"


def test_importing_the_cli_has_no_side_effects() -> None:
    code = ("import sys; had = 'importlib.metadata' in sys.modules; import virtdisk.cli; "
            "assert had or 'importlib.metadata' not in sys.modules, 'version read at import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


# --------------------------------------------------------------------------- sizes

@pytest.mark.parametrize(("text", "expected"), [
    ("4096", 4096), ("0", 0), ("512B", 512), ("512 b", 512),
    ("1K", 1 << 10), ("1k", 1 << 10), ("1KiB", 1 << 10), ("512M", 512 << 20),
    ("512 MiB", 512 << 20), ("10G", 10 << 30), ("10GiB", 10 << 30), ("10gib", 10 << 30),
    ("2T", 2 << 40), ("1P", 1 << 50), ("1E", 1 << 60),
    ("1kB", 1000), ("1KB", 1000), ("10MB", 10 * 10**6), ("10GB", 10 * 10**9),
    ("1TB", 10**12), ("1.5GiB", 3 << 29), (".5K", 512), ("2.", 2), (" 7 M ", 7 << 20),
    (123, 123),
])
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "size must be a number with an optional unit"),
    ("GiB", "size must be a number with an optional unit"),
    ("-1G", "size must be a number with an optional unit"),
    ("1.2.3M", "size must be a number with an optional unit"),
    ("10 qb", "unknown size unit 'qb' in '10 qb'"),
    ("10Gi", "unknown size unit 'Gi'"),
    ("0.3K", "'0.3K' is not a whole number of bytes (307.2 bytes)"),
    ("0.5", "'0.5' is not a whole number of bytes"),
    (-1, "size must not be negative, not -1"),
])
def test_parse_size_rejects(text: str | int, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("value", [1.5, None, True, b"1G"])
def test_parse_size_rejects_types(value: object) -> None:
    with pytest.raises(TypeError, match="size must be str or int"):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "expected"), [
    (0, "0 bytes"), (1, "1 byte"), (512, "512 bytes"), (1023, "1023 bytes"),
    (1024, "1.0 KiB"), (1536, "1.5 KiB"), (10 << 30, "10.0 GiB"), (67125248, "64.0 MiB"),
    ((1 << 20) - 1, "1.0 MiB"), (1 << 60, "1.0 EiB"), (5 << 70, "5120.0 EiB"),
])
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_format_size_with_bytes_round_trips() -> None:
    assert format_size_with_bytes(10 << 30) == "10.0 GiB (10737418240 bytes)"
    assert format_size_with_bytes(512) == "512 bytes"
    assert format_size(3 << 29, precision=2) == "1.50 GiB"
    for size in (1, 4096, 10 << 30, 123456789):
        text = format_size_with_bytes(size)
        exact = re.search(r"\((\d+) bytes\)", text)
        assert parse_size(exact.group(1) if exact else text.split()[0]) == size
    with pytest.raises(ValueError, match="must not be negative"):
        format_size(-1)
