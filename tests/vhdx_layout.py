"""Reads a VHDX file's structures back from [MS-VHDX] and checks the
invariants a writer must keep, for images qemu cannot check (differencing
ones: qemu refuses HasParent).

`layout(path)` returns the BAT states; it asserts that the log is empty,
every present payload and sector bitmap block lies 1 MiB aligned after the
header section, inside the file, clear of the log, the BAT, the metadata
region and every other block, that every PARTIALLY_PRESENT block's chunk has
a present sector bitmap block, and that ZERO / UNMAPPED / NOT_PRESENT
entries written here carry FileOffsetMB 0.
"""

from __future__ import annotations

import collections
import struct
from pathlib import Path

from vhdx_builder import (BAT_REGION, FILE_PARAMETERS, LOGICAL_SECTOR_SIZE, METADATA_REGION, MiB,
                          PARTIALLY_PRESENT, SB_PRESENT, VIRTUAL_DISK_SIZE, current_header)

FULLY_PRESENT = 6


def _regions(raw: bytes) -> dict[bytes, tuple[int, int]]:
    count = struct.unpack_from("<I", raw, 192 * 1024 + 8)[0]
    found = {}
    for i in range(count):
        entry = raw[192 * 1024 + 16 + 32 * i:192 * 1024 + 48 + 32 * i]
        offset, length = struct.unpack_from("<QI", entry, 16)
        found[entry[:16]] = (offset, length)
    return found


def _items(raw: bytes, offset: int) -> dict[bytes, bytes]:
    count = struct.unpack_from("<H", raw, offset + 10)[0]
    items = {}
    for i in range(count):
        entry = raw[offset + 32 + 32 * i:offset + 64 + 32 * i]
        item_offset, length = struct.unpack_from("<II", entry, 16)
        items[entry[:16]] = raw[offset + item_offset:offset + item_offset + length]
    return items


def layout(path: Path, *, log_checked: bool = False) -> collections.Counter[str]:
    """The payload and bitmap states of `path`, after checking them.
    `log_checked`: a reader already replayed whatever the log held, so a
    LogGuid left in the header names no entry (an update stopped before
    its entry was written) and is allowed."""
    raw = path.read_bytes()
    _, header = current_header(raw)
    assert log_checked or header[48:64] == bytes(16), "the log still needs replaying"
    regions = _regions(raw)
    bat_offset, bat_length = regions[BAT_REGION]
    metadata_offset, metadata_length = regions[METADATA_REGION]
    log_offset, log_length = struct.unpack_from("<QI", header, 72)[0], struct.unpack_from("<I", header, 68)[0]
    items = _items(raw, metadata_offset)
    block_size, flags = struct.unpack("<II", items[FILE_PARAMETERS][:8])
    size = struct.unpack("<Q", items[VIRTUAL_DISK_SIZE][:8])[0]
    sector = struct.unpack("<I", items[LOGICAL_SECTOR_SIZE][:4])[0]
    differencing = bool(flags & 2)
    ratio = (1 << 23) * sector // block_size
    payloads = -(-size // block_size)
    entries = (-(-payloads // ratio)) * (ratio + 1) if differencing else payloads + (payloads - 1) // ratio
    used = [(0, MiB, "header"), (log_offset, log_length, "log"), (bat_offset, bat_length, "BAT"),
            (metadata_offset, metadata_length, "metadata")]
    states: collections.Counter[str] = collections.Counter()
    for index in range(entries):
        value = struct.unpack_from("<Q", raw, bat_offset + 8 * index)[0]
        state, reserved, offset = value & 7, (value >> 3) & 0x1FFFF, (value >> 20) * MiB
        assert reserved == 0, index
        is_bitmap = index % (ratio + 1) == ratio
        if is_bitmap:
            assert state in (0, SB_PRESENT), (index, state)
            assert differencing or state == 0, index
            states["bitmap present" if state else "bitmap absent"] += 1
            if state:
                used.append((offset, MiB, f"bitmap {index}"))
            continue
        assert state in (0, 1, 2, 3, FULLY_PRESENT, PARTIALLY_PRESENT), (index, state)
        states[{0: "not present", 1: "undefined", 2: "zero", 3: "unmapped", FULLY_PRESENT: "fully present",
                PARTIALLY_PRESENT: "partially present"}[state]] += 1
        if state in (FULLY_PRESENT, PARTIALLY_PRESENT):
            used.append((offset, block_size, f"block {index}"))
        else:
            assert offset == 0, (index, state, offset)
        if state == PARTIALLY_PRESENT:
            assert differencing, index
            chunk_bitmap = (index // (ratio + 1)) * (ratio + 1) + ratio
            assert struct.unpack_from("<Q", raw, bat_offset + 8 * chunk_bitmap)[0] & 7 == SB_PRESENT, index
    ordered = sorted(used)
    for (a, a_length, a_name), (b, _, b_name) in zip(ordered, ordered[1:]):
        assert a + a_length <= b, (a_name, b_name)
    for offset, length, name in ordered:
        if name.startswith(("block", "bitmap")):
            assert offset >= MiB and offset % MiB == 0 and offset + length <= len(raw), name
    return states
