"""Builds VHD files byte by byte from the VHD specification, for tests.

No tool on Linux writes differencing VHDs, dynamic VHDs with 512 KiB
blocks or partly filled sector bitmaps, so tests make them here and have
independent readers (vhdiinfo, 7-Zip, qemu) confirm the result.  Layout:
footer copy, dynamic header, BAT, parent locator data, blocks, footer.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
import uuid

SECTOR = 512
FOOTER_SIZE = 512
HEADER_SIZE = 1024
UNALLOCATED = 0xFFFFFFFF
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
# Seconds between the Unix epoch and the VHD epoch (2000-01-01 UTC).
VHD_EPOCH = 946684800

W2KU = b"W2ku"
W2RU = b"W2ru"
WI2K = b"Wi2k"


def checksum(structure: bytes, offset: int) -> int:
    """One's complement of the byte sum, the 4-byte field at offset as 0."""
    total = sum(structure[:offset]) + sum(structure[offset + 4:])
    return ~total & 0xFFFFFFFF


def with_checksum(structure: bytes, offset: int) -> bytes:
    blank = structure[:offset] + b"\0\0\0\0" + structure[offset + 4:]
    return blank[:offset] + struct.pack(">I", checksum(blank, offset)) + blank[offset + 4:]


def chs(size: int) -> tuple[int, int, int]:
    """The spec appendix's geometry (only stored, never used for the size)."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def footer(disk_type: int, size: int, unique_id: bytes, *, data_offset: int | None = None,
           features: int = 2, version: int = 0x00010000, timestamp: int = 0,
           creator: bytes = b"win ") -> bytes:
    """A 512-byte footer.  unique_id is stored as given (file byte order)."""
    if data_offset is None:
        data_offset = 0xFFFFFFFFFFFFFFFF if disk_type == FIXED else FOOTER_SIZE
    cylinders, heads, spt = chs(size)
    raw = struct.pack(
        ">8sIIQI4sI4sQQHBBII16sB",
        b"conectix", features, version, data_offset, timestamp, creator, 0x000A0000, b"Wi2k",
        size, size, cylinders, heads, spt, disk_type, 0, unique_id, 0)
    return with_checksum(raw.ljust(FOOTER_SIZE, b"\0"), 64)


@dataclasses.dataclass
class Locator:
    code: bytes
    data: bytes
    space: int = 0          # bytes reserved in the file; 0: the data rounded to a sector


def dynamic_header(table_offset: int, max_entries: int, block_size: int, *,
                   parent_id: bytes = bytes(16), parent_timestamp: int = 0,
                   parent_name: str = "", locators: Sequence[tuple[bytes, int, int, int]] = (),
                   version: int = 0x00010000) -> bytes:
    """A 1024-byte dynamic header; locators are (code, space, length, offset)."""
    name = parent_name.encode("utf-16-be").ljust(512, b"\0")
    raw = struct.pack(">8sQQIIII16sII", b"cxsparse", 0xFFFFFFFFFFFFFFFF, table_offset, version,
                      max_entries, block_size, 0, parent_id, parent_timestamp, 0) + name
    for code, space, length, offset in locators:
        raw += struct.pack(">4sIIIQ", code, space, length, 0, offset)
    raw = raw.ljust(HEADER_SIZE, b"\0")
    return with_checksum(raw, 36)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def build_sparse(size: int, block_size: int, sectors: dict[int, bytes], *,
                 disk_type: int = DYNAMIC, unique_id: bytes | None = None,
                 parent_id: bytes = bytes(16), parent_timestamp: int = 0,
                 parent_name: str = "", locators: Sequence[Locator] = (),
                 align_data_4k: bool = True, block_order: list[int] | None = None,
                 extra_blocks: Sequence[int] = ()) -> bytes:
    """A dynamic or differencing VHD image as bytes.

    sectors maps virtual sector numbers to 512 bytes this file holds; their
    bits are set in the block bitmaps, every other sector of an allocated
    block is zero with a clear bit.  extra_blocks are allocated with an
    all-clear bitmap.  block_order gives the file order of the blocks
    (default: ascending); align_data_4k puts each block's data on a 4 KiB
    boundary, as Windows does.
    """
    unique_id = unique_id if unique_id is not None else uuid.uuid4().bytes
    entries = -(-size // block_size)
    sectors_per_block = block_size // SECTOR
    bitmap_size = _round_up(_round_up(sectors_per_block, 8) // 8, SECTOR)

    table_offset = FOOTER_SIZE + HEADER_SIZE
    position = _round_up(table_offset + 4 * entries, SECTOR)
    placed = []
    for locator in locators:
        space = locator.space or _round_up(max(len(locator.data), 1), SECTOR)
        placed.append((locator.code, space, len(locator.data), position, locator.data))
        position += space

    used = sorted({s // sectors_per_block for s in sectors} | set(extra_blocks))
    order = block_order if block_order is not None else used
    assert sorted(order) == used, "block_order must list exactly the blocks used"
    bat = [UNALLOCATED] * entries
    block_offsets = {}
    for block in order:
        if align_data_4k:
            position = _round_up(position + bitmap_size, 4096) - bitmap_size
        bat[block] = position // SECTOR
        block_offsets[block] = position
        position += bitmap_size + block_size
    end = position

    image = bytearray(end + FOOTER_SIZE)
    foot = footer(disk_type, size, unique_id)
    image[0:FOOTER_SIZE] = foot
    image[end:end + FOOTER_SIZE] = foot
    image[FOOTER_SIZE:FOOTER_SIZE + HEADER_SIZE] = dynamic_header(
        table_offset, entries, block_size, parent_id=parent_id,
        parent_timestamp=parent_timestamp, parent_name=parent_name,
        locators=[(code, space, length, offset) for code, space, length, offset, _ in placed])
    table = struct.pack(f">{entries}I", *bat)
    image[table_offset:table_offset + len(table)] = table
    pad_end = _round_up(table_offset + len(table), SECTOR)
    image[table_offset + len(table):pad_end] = b"\xff" * (pad_end - table_offset - len(table))
    for _, _, length, offset, data in placed:
        image[offset:offset + length] = data
    for sector, content in sectors.items():
        assert len(content) == SECTOR
        block, index = divmod(sector, sectors_per_block)
        base = block_offsets[block]
        image[base + index // 8] |= 0x80 >> (index % 8)   # MSB first
        position = base + bitmap_size + index * SECTOR
        image[position:position + SECTOR] = content
    return bytes(image)


def utf16le(text: str) -> bytes:
    return text.encode("utf-16-le")
