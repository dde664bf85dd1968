"""Each format fact the facade uses is written once, in the engine's format
headers, and reaches the facade through the extension.

Three checks: the facade's values equal the engine's (a program compiled
from the engine's headers prints them; the extension exports them); files
that qemu-img makes carry the same signatures, metadata items and limits;
and no module of the facade types one of these values itself.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

import _virtdisk
from c_harness import ENGINE, ROOT, compile_harness
from conftest import require_tool
from virtdisk import detect, metadata

# The package's convert and create are the functions; these are their modules.
convert = importlib.import_module("virtdisk.convert")
create = importlib.import_module("virtdisk.create")

FACADE = ROOT / "src" / "virtdisk"
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
VHD = _virtdisk.VirtualStorageTypeDevice.VHD
VHDX = _virtdisk.VirtualStorageTypeDevice.VHDX


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The facts as the engine's headers define them."""
    binary = compile_harness(tmp_path_factory.mktemp("format_facts"), "format_facts_main", [])
    facts: dict[str, Any] = json.loads(subprocess.run([str(binary)], capture_output=True,
                                                      text=True, check=True).stdout)
    return facts


def test_the_extension_exports_the_engine_facts(engine: dict[str, Any]) -> None:
    assert _virtdisk.VHD_FOOTER_COOKIE == engine["vhd_footer_cookie"].encode()
    assert _virtdisk.VHD_FOOTER_SIZE == engine["vhd_footer_size"]
    assert _virtdisk.VHD_MAXIMUM_SIZE == engine["vhd_maximum_size"]
    assert _virtdisk.VHDX_FILE_SIGNATURE == engine["vhdx_file_signature"].encode()
    assert _virtdisk.VHDX_MAXIMUM_SIZE == engine["vhdx_maximum_size"]
    assert _virtdisk.VHDX_MINIMUM_BLOCK_SIZE == engine["vhdx_minimum_block_size"]
    assert _virtdisk.VHDX_MAXIMUM_BLOCK_SIZE == engine["vhdx_maximum_block_size"]
    assert (_virtdisk.VHDX_MAXIMUM_METADATA_ITEM_SIZE
            == engine["vhdx_maximum_metadata_item_size"])
    assert _virtdisk.VHDX_SYSTEM_METADATA_ITEMS == tuple(
        uuid.UUID(text) for text in engine["vhdx_system_metadata_items"])


def test_the_facade_uses_the_engine_facts(engine: dict[str, Any]) -> None:
    assert detect._VHD_COOKIE == engine["vhd_footer_cookie"].encode()
    assert detect._VHD_FOOTER_SIZE == engine["vhd_footer_size"]
    assert detect._VHDX_SIGNATURE == engine["vhdx_file_signature"].encode()
    assert create.MAXIMUM_SIZES == {VHD: engine["vhd_maximum_size"],
                                    VHDX: engine["vhdx_maximum_size"]}
    assert create._VHDX_BLOCK_SIZE_RANGE == (engine["vhdx_minimum_block_size"],
                                             engine["vhdx_maximum_block_size"])
    assert metadata.MAXIMUM_ITEM_SIZE == engine["vhdx_maximum_metadata_item_size"]
    assert metadata.SYSTEM_ITEMS == frozenset(
        uuid.UUID(text) for text in engine["vhdx_system_metadata_items"])
    # convert checks raw sources against the same table.
    assert convert.MAXIMUM_SIZES is create.MAXIMUM_SIZES


def test_the_facts_are_the_specifications(engine: dict[str, Any]) -> None:
    # VHD specification 1.0 (footer cookie, 512-byte footer; 2040 GiB, the
    # documented Virtual Server limit); [MS-VHDX] 2.2.1, 2.6.1.2, 2.6.2.1,
    # 1.5, 2.6.2.
    assert engine["vhd_footer_cookie"] == "conectix"
    assert engine["vhd_footer_size"] == 512
    assert engine["vhd_maximum_size"] == 2040 * GIB
    assert engine["vhdx_file_signature"] == "vhdxfile"
    assert engine["vhdx_maximum_metadata_item_size"] == MIB
    assert (engine["vhdx_minimum_block_size"], engine["vhdx_maximum_block_size"]) == (
        MIB, 256 * MIB)
    assert engine["vhdx_maximum_size"] == 64 * TIB
    assert engine["vhdx_system_metadata_items"] == [
        "caa16737-fa36-4d43-b3b6-33f0aa44e76b", "2fa54224-cd1b-4876-b211-5dbed83bf4b8",
        "beca12ab-b2e6-4523-93ef-c309e000c746", "8141bf1d-a96f-4709-ba47-f233a8faab5f",
        "cda348c7-445d-4471-9cc9-e9885251c556", "a8d35f2d-b30b-454d-abf7-d3d84834ab0c"]


def qemu_img(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("qemu-img"), *arguments], capture_output=True,
                          text=True)


def vhdx_metadata_items(path: Path) -> set[uuid.UUID]:
    """The item GUIDs of a VHDX's metadata table ([MS-VHDX] 2.2.3, 2.6.1),
    read from the file."""
    data = path.read_bytes()
    region = data[192 * 1024:192 * 1024 + 64 * 1024]     # region table 1
    assert region[:4] == b"regi"
    count = int.from_bytes(region[8:12], "little")
    metadata_region = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e")
    for index in range(count):
        entry = region[16 + 32 * index:48 + 32 * index]
        if uuid.UUID(bytes_le=entry[:16]) == metadata_region:
            start = int.from_bytes(entry[16:24], "little")
            break
    else:
        pytest.fail("no metadata region")
    table = data[start:start + 64 * 1024]
    assert table[:8] == b"metadata"
    entries = int.from_bytes(table[10:12], "little")
    return {uuid.UUID(bytes_le=table[32 + 32 * i:48 + 32 * i]) for i in range(entries)}


def test_qemu_images_carry_the_facts(tmp_path: Path) -> None:
    vhdx = tmp_path / "disk.vhdx"
    assert qemu_img("create", "-q", "-f", "vhdx", str(vhdx), "64M").returncode == 0
    assert vhdx.read_bytes()[:8] == _virtdisk.VHDX_FILE_SIGNATURE
    # qemu writes every system item but the parent locator (it makes no
    # differencing VHDX), and no user item.
    parent_locator = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c")
    assert vhdx_metadata_items(vhdx) == metadata.SYSTEM_ITEMS - {parent_locator}
    vhd = tmp_path / "disk.vhd"
    assert qemu_img("create", "-q", "-f", "vpc", str(vhd), "64M").returncode == 0
    data = vhd.read_bytes()
    assert data[-_virtdisk.VHD_FOOTER_SIZE:][:8] == _virtdisk.VHD_FOOTER_COOKIE
    assert data[:8] == _virtdisk.VHD_FOOTER_COOKIE       # a dynamic VHD's copy


def test_qemu_stops_at_the_same_size_limits(tmp_path: Path) -> None:
    # Dynamic images: the files stay small.
    limit = _virtdisk.VHD_MAXIMUM_SIZE
    assert qemu_img("create", "-q", "-f", "vpc", "-o", "force_size=on", str(tmp_path / "a.vhd"),
                    str(limit)).returncode == 0
    assert qemu_img("create", "-q", "-f", "vpc", "-o", "force_size=on", str(tmp_path / "b.vhd"),
                    str(limit + MIB)).returncode != 0
    limit = _virtdisk.VHDX_MAXIMUM_SIZE
    assert qemu_img("create", "-q", "-f", "vhdx", str(tmp_path / "a.vhdx"),
                    str(limit)).returncode == 0
    assert qemu_img("create", "-q", "-f", "vhdx", str(tmp_path / "b.vhdx"),
                    str(limit + MIB)).returncode != 0


def test_the_iso_identifiers_match_the_engine() -> None:
    # The engine keeps them in iso.c, where its prober uses them.
    source = (ENGINE / "formats" / "iso" / "iso.c").read_text()
    match = re.search(r"vd_iso_standard_identifiers\[\]\[[^]]*\] = \{([^}]*)\}", source)
    assert match is not None
    assert frozenset(text.encode() for text in re.findall(r'"(\w+)"', match.group(1))) == \
        detect._ISO_IDENTIFIERS


# Every fact the extension exports, as a facade module would spell it.
RETYPED = [
    r"b[\"']conectix[\"']", r"b[\"']vhdxfile[\"']", r"2040\s*\*\s*_?GIB",
    r"64\s*\*\s*_?TIB", r"\b2040\s*<<\s*30", r"\b64\s*<<\s*40",
    *(str(item) for item in _virtdisk.VHDX_SYSTEM_METADATA_ITEMS),
]


@pytest.mark.parametrize("module", sorted(path.name for path in FACADE.glob("*.py")))
def test_no_facade_module_types_a_fact(module: str) -> None:
    text = (FACADE / module).read_text()
    for pattern in RETYPED:
        assert re.search(pattern, text, re.IGNORECASE) is None, (module, pattern)
