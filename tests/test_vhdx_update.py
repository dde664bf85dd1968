"""VHDX metadata updates (src/vdengine/vhdx_update.c, vhdx_metadata.c,
vhdx_log_write.c): SetVirtualDiskInformation's identifier, virtual disk id,
physical sector size and parent, and the user metadata items, checked
against tools nobody here wrote.

After each kind of update: `qemu-img check` finds nothing, `qemu-img
compare` finds the content unchanged, 7-Zip reads the new Page 83 id,
physical sector size and DataWriteGuid from the file, vhdiinfo (libvhdi)
reads the new identifier and parent, and the engine reopens the file
(read-only and writable) and answers the new values.

The log format itself is proven by qemu: an update stopped after its log
entry is flushed (the fault hook of io.c) leaves a file that `qemu-img
check -r all` replays, byte for byte into what the engine's own replay
gives.

The ops are driven through tests/c/vhdx_update_main.c, compiled with the
engine sources under ASan/UBSan and with the fault hook, which also counts
the writes and flushes each update costs.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Protocol

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import all_engine_sources, compile_harness  # noqa: E402
from test_create_vhdx import seven_zip_fields  # noqa: E402
from test_engine_vhdx_c import run, seven_zip_info, vhdiinfo, windows_guid  # noqa: E402

UPDATE_SOURCES = ["vhdx.c", "vhdx_log.c", "vhdx_log_write.c", "vhdx_write.c", "vhdx_metadata.c", "vhdx_update.c",
                  "vhdx_create.c", "crc32c.c", "guid.c", "image.c", "io.c", "utf16.c", "parent_paths.c"]
CREATE_SOURCES = all_engine_sources()

ERROR_WRITE_FAULT = 29
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_NOT_FOUND = 1168
ERROR_ACCESS_DENIED = 5
VHD_METADATA_FULL = 0xC03A0028

KiB = 1 << 10
MiB = 1 << 20

# Writes, flushes and size changes: a header update is a write and a flush;
# a logged update is two header updates, the entry and its flush, the
# in-place sectors (one write per run) and their flush.
HEADER_UPDATE_CHANGES = 2
ONE_RUN_LOGGED_CHANGES = 8

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("qemu-img", "vhdiinfo", "7zz")),
    reason="qemu-img, vhdiinfo and 7zz are needed")


class Update(Protocol):
    def __call__(self, image: Path, *ops: str | int | Path) -> dict[str, Any]: ...


@pytest.fixture(scope="module")
def update(tmp_path_factory: pytest.TempPathFactory) -> Update:
    binary = compile_harness(tmp_path_factory.mktemp("vhdx_update"), "vhdx_update_main", UPDATE_SOURCES,
                             defines=["-DVD_FAULT_INJECTION"], sanitize=True)

    def answer(image: Path, *ops: str | int | Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(run(binary, image, *[str(op) for op in ops]).stdout)
        return result
    return answer


@pytest.fixture(scope="module")
def engine_create(tmp_path_factory: pytest.TempPathFactory) -> Any:
    binary = compile_harness(tmp_path_factory.mktemp("vhdx_create"), "vhdx_create_main", CREATE_SOURCES)

    def create(out: Path, kind: str, *options: str | int | Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(
            run(binary, out, "--type", kind, *[str(option) for option in options]).stdout)
        assert result["status"] == 0, result
        return result
    return create


def qemu_image(path: Path, *options: str) -> Path:
    run("qemu-img", "create", "-q", "-f", "vhdx", *options, path, "8M")
    return path


def fill_with_data(path: Path) -> None:
    """Some content, so that an unchanged comparison means something."""
    run("qemu-io", "-f", "vhdx", "-c", "write -P 0xa5 1M 64k", "-c", "write -P 0x3c 5M 8k", path)


@pytest.fixture(params=["qemu-dynamic", "qemu-fixed", "engine-dynamic"])
def base(request: pytest.FixtureRequest, tmp_path: Path, engine_create: Any) -> Path:
    """A VHDX qemu can read, with data in it, and its pristine copy beside."""
    path = tmp_path / "disk.vhdx"
    if request.param == "qemu-dynamic":
        qemu_image(path)
    elif request.param == "qemu-fixed":
        qemu_image(path, "-o", "subformat=fixed")
    else:
        engine_create(path, "dynamic", "--size", 8 * MiB, "--block", MiB, "--physical", 512)
    fill_with_data(path)
    shutil.copy(path, tmp_path / "pristine.vhdx")
    return path


def assert_unchanged_content(path: Path) -> None:
    run("qemu-img", "check", "-f", "vhdx", path)
    result = run("qemu-img", "compare", "-f", "vhdx", "-F", "vhdx", path.parent / "pristine.vhdx", path,
                 check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def reopened(update: Update, path: Path) -> list[dict[str, Any]]:
    """What a read-only and a writable open answer."""
    return [update(path, "--readonly", "show"), update(path, "show")]


def op_status(answer: dict[str, Any], index: int = 0) -> int:
    status: int = answer["ops"][index]["status"]
    return status


def seven_zip_guid(fields: dict[str, str], key: str) -> str:
    return windows_guid(fields[key])


# --------------------------------------------------------------------------- system items and header

def test_physical_sector_size(update: Update, base: Path) -> None:
    before = update(base, "show")
    target = 4096 if before["physical_sector_size"] == 512 else 512
    answer = update(base, "physical", target)
    assert op_status(answer) == 0
    assert answer["physical_sector_size"] == target
    assert answer["changes"] == ONE_RUN_LOGGED_CHANGES
    assert_unchanged_content(base)
    assert seven_zip_info(base)["PhysicalSectorSize"] == str(target)
    assert vhdiinfo(base)["Bytes per sector"] == "512 bytes"
    for view in reopened(update, base):
        assert view["open"] == 0
        assert view["physical_sector_size"] == target
        assert view["content"] == before["content"]
        assert view["identifier"] == before["identifier"]   # metadata only: DataWriteGuid stays


def test_virtual_disk_id(update: Update, base: Path) -> None:
    before = update(base, "show")
    new_id = str(uuid.uuid4())
    answer = update(base, "disk-id", new_id)
    assert op_status(answer) == 0 and answer["virtual_disk_id"] == new_id
    assert answer["changes"] == ONE_RUN_LOGGED_CHANGES
    assert_unchanged_content(base)
    assert seven_zip_guid(seven_zip_info(base), "Id") == new_id
    for view in reopened(update, base):
        assert view["virtual_disk_id"] == new_id
        assert view["identifier"] == before["identifier"]
        assert view["content"] == before["content"]


def test_identifier_is_a_header_update(update: Update, base: Path) -> None:
    before = update(base, "show")
    new_id = str(uuid.uuid4())
    answer = update(base, "identifier", new_id)
    assert op_status(answer) == 0 and answer["identifier"] == new_id
    assert answer["changes"] == HEADER_UPDATE_CHANGES
    assert_unchanged_content(base)
    assert uuid.UUID(vhdiinfo(base)["Identifier"]) == uuid.UUID(new_id)
    assert seven_zip_guid(seven_zip_info(base), "DataWriteGuid") == new_id
    for view in reopened(update, base):
        assert view["identifier"] == new_id
        assert view["virtual_disk_id"] == before["virtual_disk_id"]


def test_several_updates_in_one_open_change_file_write_guid_once(update: Update, base: Path) -> None:
    """FileWriteGuid changes before the first modification after an open
    (2.2.2), not at every update; sequence numbers keep rising."""
    def header_fields(path: Path) -> tuple[int, bytes]:
        data = path.read_bytes()
        headers = [data[offset:offset + 4096] for offset in (64 * KiB, 128 * KiB)]
        current = max(headers, key=lambda header: struct.unpack_from("<Q", header, 8)[0])
        return struct.unpack_from("<Q", current, 8)[0], current[16:32]

    sequence0, file_write0 = header_fields(base)
    answer = update(base, "physical", 4096, "disk-id", str(uuid.uuid4()), "physical", 512)
    assert [op["status"] for op in answer["ops"]] == [0, 0, 0]
    sequence1, file_write1 = header_fields(base)
    assert file_write1 != file_write0
    assert sequence1 == sequence0 + 6     # two header updates per logged update
    assert_unchanged_content(base)


def test_unchanged_value_costs_nothing(update: Update, base: Path) -> None:
    before = update(base, "show")
    answer = update(base, "physical", before["physical_sector_size"], "identifier", before["identifier"],
                    "disk-id", before["virtual_disk_id"])
    assert [op["status"] for op in answer["ops"]] == [0, 0, 0]
    assert answer["changes"] == 0
    assert base.read_bytes() == (base.parent / "pristine.vhdx").read_bytes()


def test_read_only_open_refuses_updates(update: Update, base: Path) -> None:
    answer = update(base, "--readonly", "physical", 4096, "meta-set", str(uuid.uuid4()), "00",
                    "identifier", str(uuid.uuid4()))
    assert [op["status"] for op in answer["ops"]] == [ERROR_ACCESS_DENIED] * 3
    assert base.read_bytes() == (base.parent / "pristine.vhdx").read_bytes()


def test_sequence_number_rises_above_stale_log_entries(update: Update, base: Path) -> None:
    """A new entry's SequenceNumber is above every entry already in the log,
    whatever its LogGuid."""
    assert update(base, "physical", 4096)["ops"][0]["status"] == 0
    data = bytearray(base.read_bytes())
    header = max((data[offset:offset + 4096] for offset in (64 * KiB, 128 * KiB)),
                 key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    log_offset = struct.unpack_from("<Q", header, 72)[0]
    assert data[log_offset:log_offset + 4] == b"loge"
    first = struct.unpack_from("<Q", data, log_offset + 16)[0]
    # A stale entry with a much higher number elsewhere in the log.
    struct.pack_into("<4sIIIQ", data, log_offset + 64 * KiB, b"loge", 0, 4096, 0, first + 1000)
    base.write_bytes(bytes(data))
    assert update(base, "physical", 512)["ops"][0]["status"] == 0
    assert struct.unpack_from("<Q", base.read_bytes(), log_offset + 16)[0] == first + 1001
    assert_unchanged_content(base)


# --------------------------------------------------------------------------- parents

@pytest.fixture
def chain(tmp_path: Path, engine_create: Any) -> dict[str, Path]:
    """An engine-made base with data, a child of it, and the base moved
    (copied) to another directory: the child's locator is stale."""
    base = tmp_path / "base.vhdx"
    engine_create(base, "dynamic", "--size", 8 * MiB, "--block", MiB)
    child = tmp_path / "child.vhdx"
    engine_create(child, "differencing", "--parent", base, "--relative", "base.vhdx", "--block", 2 * MiB)
    moved = tmp_path / "store" / "moved base.vhdx"
    moved.parent.mkdir()
    shutil.copy(base, moved)
    return {"base": base, "child": child, "moved": moved}


def test_set_parent(update: Update, chain: dict[str, Path]) -> None:
    child, moved = chain["child"], chain["moved"]
    before = update(child, "show")
    linkage = update(moved, "--readonly", "show")["identifier"]
    answer = update(child, "parent", linkage, "store/moved base.vhdx", moved)
    assert op_status(answer) == 0
    expected = {"parent_identifier": linkage, "parent_relative_path": ".\\store\\moved base.vhdx",
                "parent_absolute_path": str(moved), "parent_volume_path": None,
                "has_parent_identifier2": 0}
    for view in [answer, *reopened(update, child)]:
        assert {key: view[key] for key in expected} == expected
        assert view["content"] == before["content"]
        assert view["virtual_disk_id"] == before["virtual_disk_id"]
    # libvhdi reads the new locator: its parent identifier and file name
    # (the absolute_win32_path entry).
    fields = vhdiinfo(child)
    assert uuid.UUID(fields["Parent identifier"]) == uuid.UUID(linkage)
    assert fields["Parent filename"] == str(moved)
    # 7-Zip prints every locator entry as stored.
    locator = seven_zip_fields(child)
    assert locator["parent_linkage"] == "{" + linkage + "}"
    assert locator["relative_path"] == ".\\store\\moved base.vhdx"
    assert locator["absolute_win32_path"] == str(moved)
    assert "parent_linkage2" not in locator and "volume_path" not in locator


def test_parent_locator_grows_and_shrinks(update: Update, chain: dict[str, Path]) -> None:
    """The locator moves to free space of the region whenever it changes;
    long paths grow it, and the space it left is used again."""
    child, moved = chain["child"], chain["moved"]
    linkage = update(moved, "--readonly", "show")["identifier"]
    long_path = "/" + "/".join(["a-rather-long-directory-name"] * 300) + "/base.vhdx"   # ~8.7 KiB
    ops: list[str | Path] = []
    for round_number in range(12):
        absolute = long_path if round_number % 2 == 0 else str(moved)
        ops += ["parent", linkage, "store/moved base.vhdx", absolute]
    answer = update(child, *ops)
    assert [op["status"] for op in answer["ops"]] == [0] * 12
    assert answer["parent_absolute_path"] == str(moved)
    for view in reopened(update, child):
        assert view["parent_absolute_path"] == str(moved)
        assert view["parent_relative_path"] == ".\\store\\moved base.vhdx"
    assert vhdiinfo(child)["Parent filename"] == str(moved)
    assert seven_zip_fields(child)["absolute_win32_path"] == str(moved)


def test_set_parent_refused_on_a_disk_without_parent(update: Update, base: Path) -> None:
    answer = update(base, "parent", str(uuid.uuid4()), "x.vhdx", "/x.vhdx")
    assert op_status(answer) == 0xC03A001B
    assert base.read_bytes() == (base.parent / "pristine.vhdx").read_bytes()


# --------------------------------------------------------------------------- user items

def test_user_items_create_replace_delete(update: Update, base: Path) -> None:
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    answer = update(base, "meta-set", first, "0102030405",
                    "meta-set", second, "fill:70000:0x5a",
                    "meta-set", third, "-",
                    "meta-list",
                    "meta-get", first,
                    "meta-get", third,
                    "meta-set", first, "fill:5000:0x11",
                    "meta-get", first, 4999,
                    "meta-list", 2,
                    "meta-delete", second,
                    "meta-delete", second,
                    "meta-get", second,
                    "meta-list")
    ops = answer["ops"]
    assert [op["status"] for op in ops] == [0, 0, 0, 0, 0, 0, 0, ERROR_INSUFFICIENT_BUFFER,
                                            ERROR_INSUFFICIENT_BUFFER, 0, ERROR_NOT_FOUND, ERROR_NOT_FOUND, 0]
    assert ops[3]["items"] == [first, second, third]
    assert ops[4]["data"] == "0102030405" and ops[4]["size"] == 5
    assert ops[5]["size"] == 0
    assert ops[7]["size"] == 5000            # the size needed
    assert ops[8]["count"] == 3              # the count needed
    assert ops[12]["items"] == [first, third]
    assert_unchanged_content(base)
    for view in reopened(update, base):
        assert [(item["id"], item["length"]) for item in view["items"]] == [(first, 5000), (third, 0)]
    assert seven_zip_info(base)["PhysicalSectorSize"] in ("512", "4096")


def test_user_item_bytes_survive_reopen(update: Update, base: Path) -> None:
    item = str(uuid.uuid4())
    written = update(base, "meta-set", item, "fill:300000:0xc3", "meta-get", item)
    expected_hash = written["ops"][1]["hash"]
    for view in reopened(update, base):
        assert view["items"] == [{"id": item, "status": 0, "length": 300000, "hash": expected_hash}]
    assert_unchanged_content(base)


def test_user_item_with_a_system_items_guid_is_another_item(update: Update, base: Path) -> None:
    """(ItemId, IsUser) is the key (2.6.1.2): a user item named like Page 83
    neither hides nor replaces the system item."""
    before = update(base, "show")
    page83 = "beca12ab-b2e6-4523-93ef-c309e000c746"
    answer = update(base, "meta-set", page83, "ffff", "meta-get", page83, "disk-id", str(uuid.uuid4()),
                    "meta-get", page83)
    assert [op["status"] for op in answer["ops"]] == [0, 0, 0, 0]
    assert answer["ops"][3]["data"] == "ffff"
    for view in reopened(update, base):
        assert view["items"][0]["id"] == page83 and view["items"][0]["length"] == 2
        assert view["virtual_disk_id"] == answer["virtual_disk_id"] != before["virtual_disk_id"]


def test_item_too_large_or_region_full(update: Update, base: Path) -> None:
    big, other = str(uuid.uuid4()), str(uuid.uuid4())
    answer = update(base, "meta-set", big, f"fill:{MiB + 1}:1",
                    "meta-set", big, f"fill:{MiB}:1",
                    "meta-set", big, f"fill:{600 * KiB}:1",
                    "meta-set", other, f"fill:{600 * KiB}:2",
                    "meta-set", big, f"fill:{300 * KiB}:3",   # the replacement needs free room beside it
                    "meta-set", other, f"fill:{300 * KiB}:4")
    assert [op["status"] for op in answer["ops"]] == [VHD_METADATA_FULL, VHD_METADATA_FULL, 0,
                                                      VHD_METADATA_FULL, 0, 0]
    assert_unchanged_content(base)
    for view in reopened(update, base):
        assert [(item["id"], item["length"]) for item in view["items"]] == [(big, 300 * KiB),
                                                                            (other, 300 * KiB)]


def test_user_item_count_limit(update: Update, base: Path) -> None:
    """At most 1024 user entries (2.6.1.2)."""
    items = [str(uuid.UUID(int=n + 1)) for n in range(1025)]
    ops: list[str] = []
    for item in items:
        ops += ["meta-set", item, "-"]
    answer = update(base, *ops)
    statuses = [op["status"] for op in answer["ops"]]
    assert statuses == [0] * 1024 + [VHD_METADATA_FULL]
    assert len(answer["items"]) == 1024
    assert update(base, "--readonly", "meta-list", 1024)["ops"][0]["count"] == 1024
    assert_unchanged_content(base)


# --------------------------------------------------------------------------- the log, proven by qemu

def header_log_range(data: bytes) -> tuple[int, int]:
    header = max((data[offset:offset + 4096] for offset in (64 * KiB, 128 * KiB)),
                 key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    length, offset = struct.unpack_from("<IQ", header, 68)
    return offset, length


@pytest.mark.parametrize("ops", [
    ("physical", "4096"),
    ("disk-id", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
    ("meta-set", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e", "fill:20000:0x77"),
], ids=["physical", "disk-id", "user-item"])
def test_interrupted_update_replayed_by_qemu(update: Update, base: Path, ops: tuple[str, ...]) -> None:
    """Stopped after the log entry is flushed (4 changes: header, flush,
    entry, flush), before anything is written in place: qemu refuses the
    file read-only until `qemu-img check -r all` replays it, and the replay
    gives the same bytes as the engine's replay at a writable open."""
    expected = update(base.parent / "pristine.vhdx", "--readonly", "show")
    probe_copy = base.parent / "probe.vhdx"
    shutil.copy(base, probe_copy)
    assert update(probe_copy, *ops)["ops"][0]["status"] == 0
    wanted = update(probe_copy, "--readonly", "show")

    assert update(base, "--fault", 4, *ops)["ops"][0]["status"] == ERROR_WRITE_FAULT
    dirty = base.read_bytes()
    assert dirty[:64 * KiB] == (base.parent / "pristine.vhdx").read_bytes()[:64 * KiB]
    # A read-only open sees the update through the log, without writing.
    overlay = update(base, "--readonly", "show")
    assert base.read_bytes() == dirty
    for key in ("physical_sector_size", "virtual_disk_id", "items"):
        assert overlay[key] == wanted[key]

    by_qemu = base.parent / "by-qemu.vhdx"
    shutil.copy(base, by_qemu)
    refused = run("qemu-img", "check", "-f", "vhdx", by_qemu, check=False)
    assert refused.returncode != 0 and "log that needs to be replayed" in refused.stderr
    run("qemu-img", "check", "-r", "all", "-f", "vhdx", by_qemu)
    run("qemu-img", "check", "-f", "vhdx", by_qemu)

    by_engine = base.parent / "by-engine.vhdx"
    shutil.copy(base, by_engine)
    replayed = update(by_engine, "show")
    for key in ("physical_sector_size", "virtual_disk_id", "items", "content"):
        assert replayed[key] == wanted[key]

    qemu_bytes, engine_bytes = by_qemu.read_bytes(), by_engine.read_bytes()
    log_offset, log_length = header_log_range(engine_bytes)
    assert len(qemu_bytes) == len(engine_bytes)
    # Everything but the header section (each replay writes its own headers)
    # and the log is the same, and differs from before the update.
    assert qemu_bytes[MiB:log_offset] == engine_bytes[MiB:log_offset]
    assert qemu_bytes[log_offset + log_length:] == engine_bytes[log_offset + log_length:]
    assert engine_bytes[log_offset + log_length:] != dirty[log_offset + log_length:]
    assert update(by_qemu, "--readonly", "show")["physical_sector_size"] == wanted["physical_sector_size"]
    assert expected["content"] == replayed["content"]
    for path in (by_qemu, by_engine):
        assert_unchanged_content(path)


def test_qemu_refuses_dirty_file_but_not_after_engine_open(update: Update, base: Path) -> None:
    """The engine's writable open replays and retires the log (LogGuid
    zero), after which qemu opens the file read-only again."""
    update(base, "--fault", 4, "physical", 4096)
    assert run("qemu-img", "info", "-f", "vhdx", base, check=False).returncode != 0
    assert update(base, "show")["physical_sector_size"] == 4096
    result = subprocess.run(["qemu-img", "info", "-f", "vhdx", str(base)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
