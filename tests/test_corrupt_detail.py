"""A damaged image says which structure failed.

Windows' contract is the Win32 code, and the engine keeps it; on top, the
engine records a per-thread sentence at the failure site, which the
extension attaches to the exception as ``detail`` and puts in its message.
Each case below damages one structure of an image the builders write from
the specs (tests/vhdx_builder.py, tests/vhd_builder.py) or the engine makes,
and checks the code, that the detail names the structure, and that the
detail belongs to the failing call only: a later call, another thread, a
failure of another kind see none of it.

On Windows VirtDisk returns only the code, so ``detail`` is None there.
"""

from __future__ import annotations

import pickle
import re
import struct
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import _virtdisk
import virtdisk
from virtdisk import errors

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vhd_builder as hb  # noqa: E402
import vhdx_builder as vb  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30

ENGINE = _virtdisk.PLATFORM == "engine"
needs_engine_detail = pytest.mark.skipif(
    not ENGINE, reason="only the portable engine records failure details")


# --------------------------------------------------------------------------- helpers

def _failure(call: Callable[[], object]) -> errors.VirtualDiskError:
    """The VirtualDiskError `call` raises (and closes what it returns, if
    it unexpectedly succeeds, before failing the test)."""
    try:
        result = call()
    except errors.VirtualDiskError as error:
        return error
    close = getattr(result, "close", None)
    if close is not None:
        close()
    pytest.fail("the call succeeded")


def _open_failure(path: Path) -> errors.VirtualDiskError:
    return _failure(lambda: virtdisk.open(path, read_only=True))


def _copy_failure(source: Path, tmp_path: Path) -> errors.VirtualDiskError:
    """CreateVirtualDisk from `source`: reads all of its content."""
    return _failure(lambda: virtdisk.create(tmp_path / "copy.vhdx", source=source))


def _vhdx_bytes() -> bytearray:
    image = vb.Image(8 * MiB, block_size=MiB)
    image.write(MiB, b"\xc3" * 8192)
    return image.to_bytes()


def _rewrite_region_tables(raw: bytearray, edit: Callable[[bytearray], None]) -> None:
    table = bytearray(raw[vb.REGION1:vb.REGION1 + 64 * 1024])
    edit(table)
    checked = vb.with_crc(table)
    raw[vb.REGION1:vb.REGION1 + len(checked)] = checked
    raw[vb.REGION2:vb.REGION2 + len(checked)] = checked


def _both_headers_damaged(raw: bytearray) -> None:
    raw[vb.HEADER1 + 200] ^= 1
    raw[vb.HEADER2 + 200] ^= 1


def _equal_sequences(raw: bytearray) -> None:
    raw[vb.HEADER2:vb.HEADER2 + 4096] = raw[vb.HEADER1:vb.HEADER1 + 4096]
    raw[vb.HEADER2 + 16] ^= 1
    raw[vb.HEADER2:vb.HEADER2 + 4096] = vb.with_crc(raw[vb.HEADER2:vb.HEADER2 + 4096])


def _log_misaligned(raw: bytearray) -> None:
    for slot in (vb.HEADER1, vb.HEADER2):
        struct.pack_into("<Q", raw, slot + 72, MiB + 4096)
        raw[slot:slot + 4096] = vb.with_crc(raw[slot:slot + 4096])


def _region_tables_damaged(raw: bytearray) -> None:
    raw[vb.REGION1 + 1000] ^= 1
    raw[vb.REGION2] ^= 1


def _bat_over_metadata(raw: bytearray) -> None:
    metadata_offset = vb.regions(raw)[vb.METADATA_REGION][0]

    def edit(table: bytearray) -> None:
        for i in range(struct.unpack_from("<I", table, 8)[0]):
            at = 16 + 32 * i
            if table[at:at + 16] == vb.BAT_REGION:
                struct.pack_into("<Q", table, at + 16, metadata_offset)
    _rewrite_region_tables(raw, edit)


def _size_item_missing(raw: bytearray) -> None:
    entry = vb.metadata_entry_offset(raw, vb.VIRTUAL_DISK_SIZE)
    raw[entry:entry + 16] = uuid.uuid4().bytes_le
    struct.pack_into("<I", raw, entry + 24, 0)


def _item_value(item: bytes, layout: str, value: int) -> Callable[[bytearray], None]:
    """Damage that stores `value` at the start of metadata item `item`."""
    def damage(raw: bytearray) -> None:
        struct.pack_into(layout, raw, vb.metadata_item_offset(raw, item), value)
    return damage


def _metadata_signature(raw: bytearray) -> None:
    raw[vb.regions(raw)[vb.METADATA_REGION][0]] ^= 1


# (id, damage, Win32 code, a pattern the detail must match)
VHDX_OPEN_CASES: list[tuple[str, Callable[[bytearray], None], int, str]] = [
    ("both headers", _both_headers_damaged, errors.ERROR_FILE_CORRUPT,
     r"VHDX header 1 checksum mismatch, VHDX header 2 checksum mismatch"),
    ("equal sequence numbers", _equal_sequences, errors.ERROR_FILE_CORRUPT,
     r"VHDX headers 1 and 2 differ but have the same sequence number"),
    ("log location", _log_misaligned, errors.ERROR_FILE_CORRUPT,
     r"VHDX header \d places the log .* off the 1 MiB alignment"),
    ("region tables", _region_tables_damaged, errors.ERROR_FILE_CORRUPT,
     r"region table 1 checksum mismatch, region table 2 signature missing"),
    ("regions overlap", _bat_over_metadata, errors.ERROR_FILE_CORRUPT,
     r"region table entry for the BAT overlaps the metadata region"),
    ("metadata signature", _metadata_signature, errors.ERROR_FILE_CORRUPT,
     r"metadata table's signature is missing"),
    ("metadata item missing", _size_item_missing, errors.ERROR_FILE_CORRUPT,
     r"required Virtual Disk Size metadata item is missing"),
    ("block size", _item_value(vb.FILE_PARAMETERS, "<I", 3 * MiB),
     errors.ERROR_VHD_INVALID_BLOCK_SIZE,
     r"block size of 3145728 bytes"),
    ("sector size", _item_value(vb.LOGICAL_SECTOR_SIZE, "<I", 1024), errors.ERROR_FILE_CORRUPT,
     r"sector sizes 1024 \(logical\)"),
    ("virtual size", _item_value(vb.VIRTUAL_DISK_SIZE, "<Q", 0), errors.ERROR_VHD_INVALID_SIZE,
     r"Virtual Disk Size 0 is 0"),
    ("BAT region", _item_value(vb.VIRTUAL_DISK_SIZE, "<Q", 256 * GiB), errors.ERROR_FILE_CORRUPT,
     r"the BAT region \(1048576 bytes\) is too small"),
]


def _check(error: errors.VirtualDiskError, code: int, pattern: str) -> None:
    assert error.winerror == code
    assert error.detail is not None and re.search(pattern, error.detail), error.detail
    assert error.detail in str(error)
    assert _virtdisk.last_error_detail() == error.detail


# --------------------------------------------------------------------------- VHDX

@needs_engine_detail
@pytest.mark.parametrize("damage,code,pattern",
                         [case[1:] for case in VHDX_OPEN_CASES],
                         ids=[case[0] for case in VHDX_OPEN_CASES])
def test_vhdx_open_names_the_structure(tmp_path: Path, damage: Callable[[bytearray], None],
                                       code: int, pattern: str) -> None:
    raw = _vhdx_bytes()
    damage(raw)
    path = tmp_path / "damaged.vhdx"
    path.write_bytes(raw)
    _check(_open_failure(path), code, pattern)


@needs_engine_detail
def test_vhdx_short_file(tmp_path: Path) -> None:
    path = tmp_path / "short.vhdx"
    path.write_bytes(_vhdx_bytes()[:300 * 1024])
    _check(_open_failure(path), errors.ERROR_FILE_CORRUPT,
           r"the file \(307200 bytes\) is shorter than the VHDX header section")


@needs_engine_detail
@pytest.mark.parametrize("locator,pattern", [
    (vb.Locator("not a guid"), r"parent_linkage is repeated or not a GUID"),
    (None, r"without the Parent Locator metadata item"),
], ids=["linkage", "no locator"])
def test_vhdx_parent_locator(tmp_path: Path, locator: vb.Locator | None, pattern: str) -> None:
    path = tmp_path / "child.vhdx"
    vb.Image(8 * MiB, kind="differencing", locator=locator).save(path)
    error = _failure(lambda: virtdisk.open(path, read_only=True, no_parents=True))
    _check(error, errors.ERROR_FILE_CORRUPT, pattern)


@needs_engine_detail
@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "writable"])
def test_a_dirty_vhdx_log_too_large_to_replay_is_refused(tmp_path: Path, read_only: bool) -> None:
    """A dirty log is replayed from memory: one longer than the engine's
    bound (here 512 MiB, in a sparse file) is refused with a detail, not
    read whole into a buffer of its length."""
    image = vb.Image(8 * MiB, block_size=MiB, log_length=512 * MiB)
    image.log_guid = uuid.uuid4().bytes_le
    path = tmp_path / "dirty.vhdx"
    image.save(path)
    error = _failure(lambda: virtdisk.open(path, read_only=read_only))
    _check(error, errors.ERROR_NOT_SUPPORTED,
           r"the log to replay is 536870912 bytes; the engine replays logs of up to 268435456")


@needs_engine_detail
def test_vhdx_bat_entry_past_the_end(tmp_path: Path) -> None:
    """The BAT is read by the first read of a block, here the copy of the
    content that CreateVirtualDisk makes from a source."""
    raw = _vhdx_bytes()
    path = tmp_path / "truncated.vhdx"
    path.write_bytes(raw[:len(raw) - MiB // 2])   # cuts into block 1's data
    _check(_copy_failure(path, tmp_path), errors.ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
           r"^BAT entry 1 points past the end of the file")


@needs_engine_detail
@pytest.mark.parametrize("entry,pattern", [
    (4, r"BAT entry 1 has the reserved state 4"),
    (7, r"BAT entry 1 is PARTIALLY_PRESENT in an image without a parent"),
    (6 | (1 << 10), r"BAT entry 1 has reserved bits set"),
    (6, r"BAT entry 1 points into the header section"),
])
def test_vhdx_bad_bat_entries(tmp_path: Path, entry: int, pattern: str) -> None:
    raw = _vhdx_bytes()
    struct.pack_into("<Q", raw, vb.regions(raw)[vb.BAT_REGION][0] + 8, entry)
    path = tmp_path / "damaged.vhdx"
    path.write_bytes(raw)
    _check(_copy_failure(path, tmp_path), errors.ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT, pattern)


# --------------------------------------------------------------------------- VHD

def _fixed_vhd(size: int = 4 * MiB) -> bytearray:
    return bytearray(bytes(size) + hb.footer(hb.FIXED, size, uuid.uuid4().bytes))


@needs_engine_detail
def test_vhd_footer_checksum(tmp_path: Path) -> None:
    raw = _fixed_vhd()
    raw[-512 + 100] ^= 1
    path = tmp_path / "damaged.vhd"
    path.write_bytes(raw)
    _check(_open_failure(path), errors.ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH,
           r"^VHD footer checksum mismatch$")


@needs_engine_detail
def test_vhd_footer_missing(tmp_path: Path) -> None:
    path = tmp_path / "damaged.vhd"
    path.write_bytes(bytes(4 * MiB))
    _check(_open_failure(path), errors.ERROR_VHD_DRIVE_FOOTER_MISSING,
           r"VHD footer missing \(no \"conectix\" cookie\)")


@needs_engine_detail
def test_vhd_fixed_file_too_short(tmp_path: Path) -> None:
    raw = _fixed_vhd()
    path = tmp_path / "damaged.vhd"
    path.write_bytes(raw[MiB:])   # the footer still says 4 MiB
    _check(_open_failure(path), errors.ERROR_VHD_INVALID_FILE_SIZE,
           r"fixed VHD file \(3146240 bytes\) is shorter than its disk")


def _dynamic_vhd() -> bytearray:
    return bytearray(hb.build_sparse(8 * MiB, 2 * MiB, {4096: b"\x5a" * 512}))


@needs_engine_detail
def test_vhd_dynamic_header_checksum(tmp_path: Path) -> None:
    raw = _dynamic_vhd()
    raw[512 + 100] ^= 1
    path = tmp_path / "damaged.vhd"
    path.write_bytes(raw)
    _check(_open_failure(path), errors.ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH,
           r"^VHD dynamic header checksum mismatch$")


@needs_engine_detail
def test_vhd_bat_entry_past_the_end(tmp_path: Path) -> None:
    raw = _dynamic_vhd()
    path = tmp_path / "truncated.vhd"
    path.write_bytes(raw[:len(raw) - 4096])   # the end footer and part of block 1 go
    _check(_copy_failure(path, tmp_path), errors.ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT,
           r"^BAT entry 1 points past the end of the file")


# --------------------------------------------------------------------------- ISO

@needs_engine_detail
@pytest.mark.parametrize("size,pattern", [
    (40000, r"not whole 2048-byte sectors"),
    (18 * 2048, r"volume descriptor at byte 32,768 has no ISO 9660, UDF or High Sierra identifier"),
], ids=["size", "identifier"])
def test_iso(tmp_path: Path, size: int, pattern: str) -> None:
    path = tmp_path / "damaged.iso"
    path.write_bytes(bytes(size))
    _check(_open_failure(path), errors.ERROR_FILE_CORRUPT, pattern)


# --------------------------------------------------------------------------- chains

@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path]:
    parent, child = tmp_path / "parent.vhdx", tmp_path / "child.vhdx"
    virtdisk.create(parent, 8 * MiB).close()
    virtdisk.create(child, parent=parent).close()
    return parent, child


@needs_engine_detail
def test_chain_names_the_parent_and_its_structure(chain: tuple[Path, Path]) -> None:
    parent, child = chain
    raw = bytearray(parent.read_bytes())
    _both_headers_damaged(raw)
    parent.write_bytes(raw)
    error = _open_failure(child)
    _check(error, errors.ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT,
           r"^parent .*parent\.vhdx: VHDX header 1 checksum mismatch")


@needs_engine_detail
def test_chain_parent_missing(chain: tuple[Path, Path]) -> None:
    parent, child = chain
    parent.unlink()
    _check(_open_failure(child), errors.ERROR_VHD_PARENT_VHD_NOT_FOUND,
           r"the parent is at none of the \d+ locations the child records")


# --------------------------------------------------------------------------- scope

@needs_engine_detail
def test_a_later_successful_call_has_no_detail(tmp_path: Path) -> None:
    damaged, good = tmp_path / "damaged.vhd", tmp_path / "good.vhd"
    raw = _fixed_vhd()
    good.write_bytes(raw)
    raw[-512 + 100] ^= 1
    damaged.write_bytes(raw)
    assert _open_failure(damaged).detail is not None
    with virtdisk.open(good, read_only=True):
        assert _virtdisk.last_error_detail() is None


@needs_engine_detail
def test_a_recovered_structure_leaves_no_detail(tmp_path: Path) -> None:
    """One damaged header or region table copy is what the second copy is
    for: the open succeeds and says nothing about the first."""
    raw = _vhdx_bytes()
    raw[vb.HEADER2 + 100] ^= 0x40
    raw[vb.REGION1 + 1000] ^= 1
    path = tmp_path / "recovered.vhdx"
    path.write_bytes(raw)
    with virtdisk.open(path, read_only=True):
        assert _virtdisk.last_error_detail() is None


@needs_engine_detail
def test_a_failure_of_another_kind_carries_no_stale_detail(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.vhd"
    raw = _fixed_vhd()
    raw[-512 + 100] ^= 1
    damaged.write_bytes(raw)
    assert _open_failure(damaged).detail is not None
    missing = _open_failure(tmp_path / "missing.vhd")
    assert isinstance(missing, FileNotFoundError)
    assert missing.detail is None and _virtdisk.last_error_detail() is None


@needs_engine_detail
def test_details_are_per_thread(tmp_path: Path) -> None:
    footer_damaged, header_damaged = tmp_path / "footer.vhd", tmp_path / "header.vhd"
    raw = _fixed_vhd()
    raw[-512 + 100] ^= 1
    footer_damaged.write_bytes(raw)
    raw = _dynamic_vhd()
    raw[512 + 100] ^= 1
    header_damaged.write_bytes(raw)

    mine = _open_failure(footer_damaged).detail
    seen: dict[str, str | None] = {}

    def other_thread() -> None:
        seen["before"] = _virtdisk.last_error_detail()
        seen["own"] = _open_failure(header_damaged).detail
        seen["after"] = _virtdisk.last_error_detail()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen["before"] is None
    assert seen["own"] == seen["after"] == "VHD dynamic header checksum mismatch"
    assert _virtdisk.last_error_detail() == mine == "VHD footer checksum mismatch"


@pytest.mark.skipif(ENGINE, reason="VirtDisk on Windows returns the code only")
def test_windows_gives_no_detail(tmp_path: Path) -> None:
    path = tmp_path / "damaged.vhd"
    raw = _fixed_vhd()
    raw[-512 + 100] ^= 1
    path.write_bytes(raw)
    assert _open_failure(path).detail is None
    assert _virtdisk.last_error_detail() is None


# --------------------------------------------------------------------------- the exception

def test_detail_on_the_exception_and_in_its_message() -> None:
    error = errors.error_from_code(errors.ERROR_FILE_CORRUPT, "OpenVirtualDisk", "d.vhdx",
                                   "VHDX header 2 checksum mismatch")
    assert isinstance(error, errors.CorruptImageError)
    assert error.detail == "VHDX header 2 checksum mismatch"
    assert str(error) == (f"OpenVirtualDisk failed on 'd.vhdx': {error.strerror}"
                          ": VHDX header 2 checksum mismatch [ERROR_FILE_CORRUPT 1392]")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(error, protocol)).detail == error.detail
    plain = errors.error_from_code(errors.ERROR_FILE_CORRUPT, "OpenVirtualDisk")
    assert plain.detail is None and ": [" not in str(plain)
    unknown = errors.error_from_code(0xC03A00FF, "OpenVirtualDisk", None, "why")
    assert unknown.detail == "why" and "why" in str(unknown)
    assert errors.VirtualDiskError(5, "OpenVirtualDisk").detail is None


# --------------------------------------------------------------------------- every site

ENGINE_SOURCES = Path(__file__).resolve().parent.parent / "src" / "vdengine"

# The codes that say an image's structure is damaged or unreadable here.
CORRUPT_CODES = (
    "FILE_CORRUPT", "VHD_DRIVE_FOOTER_MISSING", "VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH",
    "VHD_DRIVE_FOOTER_CORRUPT", "VHD_FORMAT_UNKNOWN", "VHD_FORMAT_UNSUPPORTED_VERSION",
    "VHD_SPARSE_HEADER_CHECKSUM_MISMATCH", "VHD_SPARSE_HEADER_UNSUPPORTED_VERSION",
    "VHD_SPARSE_HEADER_CORRUPT", "VHD_BLOCK_ALLOCATION_TABLE_CORRUPT", "VHD_INVALID_BLOCK_SIZE",
    "VHD_BITMAP_MISMATCH", "VHD_INVALID_SIZE", "VHD_INVALID_FILE_SIZE",
    "VIRTDISK_NOT_VIRTUAL_DISK",
)
_CODE = re.compile(r"VD_ERROR_(" + "|".join(CORRUPT_CODES) + r")\b")


def corrupt_sites() -> list[tuple[str, int, bool]]:
    """Every place a reader of images returns a corrupt code: (file, line,
    whether a detail is recorded there).  A site records one when the
    statement passes the code to vd_fail, or, in a checker whose caller
    knows which copy failed, sets the *fault text beside it.  Comparisons
    and comments are no sites; creating an image validates parameters, not
    structures, so *_create.c is left out."""
    files = [path for path in sorted((ENGINE_SOURCES / "formats").rglob("*.c"))
             if not path.name.endswith("_create.c")]
    files.append(ENGINE_SOURCES / "disk" / "chain.c")
    sites = []
    for path in files:
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), path.read_text(),
                      flags=re.S)
        for match in _CODE.finditer(text):
            before = text[:match.start()]
            if re.search(r"[=!]=\s*$", before):
                continue
            statement = before[max(before.rfind(";"), before.rfind("{"), before.rfind("}")) + 1:]
            recent = "\n".join(before.splitlines()[-3:])
            recorded = "vd_fail(" in statement or "*fault =" in recent
            sites.append((str(path.relative_to(ENGINE_SOURCES)), before.count("\n") + 1, recorded))
    return sites


def test_every_corrupt_site_records_a_detail() -> None:
    sites = corrupt_sites()
    assert len(sites) > 80, "the scan no longer finds the sites"
    bare = [f"{name}:{line}" for name, line, recorded in sites if not recorded]
    assert bare == []
