"""Builds VHDX files byte by byte from [MS-VHDX], for tests.

qemu-img makes fixed and dynamic VHDX with 512-byte sectors and a clean log,
nothing else; no Linux tool writes differencing VHDX, 4 KiB logical sectors
or a log that still needs replaying.  Tests make those here and have
independent readers (vhdiinfo, qemu) confirm what they can.

Layout (Windows' order): file type identifier, two headers, two region
tables, the log at 1 MiB, the metadata region after it, the BAT, then
payload and sector bitmap blocks in the order they are allocated.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import uuid

KiB = 1024
MiB = 1024 * KiB

HEADER1, HEADER2 = 64 * KiB, 128 * KiB
REGION1, REGION2 = 192 * KiB, 256 * KiB
LOG_SECTOR = 4096

# BAT entry states (2.5.1.1, 2.5.1.2).
NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED, FULLY_PRESENT, PARTIALLY_PRESENT = 0, 1, 2, 3, 6, 7
SB_PRESENT = 6


def _guid(text: str) -> bytes:
    """A GUID as the file stores it (Windows layout)."""
    return uuid.UUID(text).bytes_le


BAT_REGION = _guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = _guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = _guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = _guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83_DATA = _guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = _guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = _guid("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = _guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_LOCATOR_TYPE = _guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")

# Metadata entry flags (2.6.1.2).
IS_USER, IS_VIRTUAL_DISK, IS_REQUIRED = 1, 2, 4


# --------------------------------------------------------------------------- CRC-32C

def _crc_table() -> list[int]:
    table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ 0x82F63B78 if value & 1 else value >> 1
        table.append(value)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), reflected, init/final 0xFFFFFFFF."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def with_crc(structure: bytes | bytearray, offset: int = 4) -> bytes:
    """The structure with its CRC-32C (over all of it, field zero) at offset."""
    blank = bytearray(structure)
    blank[offset:offset + 4] = b"\0\0\0\0"
    struct.pack_into("<I", blank, offset, crc32c(bytes(blank)))
    return bytes(blank)


def utf16le(text: str) -> bytes:
    return text.encode("utf-16-le")


def guid_text(raw: bytes) -> str:
    """"{...}" text (lowercase, as Windows writes parent_linkage) of a stored GUID."""
    return "{" + str(uuid.UUID(bytes_le=raw)) + "}"


def _round_up(value: int, unit: int) -> int:
    return (value + unit - 1) // unit * unit


# --------------------------------------------------------------------------- structures

def header(sequence: int, *, file_write_guid: bytes, data_write_guid: bytes,
           log_guid: bytes = bytes(16), log_offset: int = MiB, log_length: int = MiB,
           version: int = 1, log_version: int = 0) -> bytes:
    raw = struct.pack("<4sIQ16s16s16sHHIQ", b"head", 0, sequence, file_write_guid,
                      data_write_guid, log_guid, log_version, version, log_length, log_offset)
    return with_crc(raw.ljust(4096, b"\0"))


def region_table(entries: list[tuple[bytes, int, int, int]]) -> bytes:
    """entries: (guid, file offset, length, required)."""
    raw = bytearray(struct.pack("<4sIII", b"regi", 0, len(entries), 0))
    for guid, offset, length, required in entries:
        raw += struct.pack("<16sQII", guid, offset, length, required)
    return with_crc(raw.ljust(64 * KiB, b"\0"))


@dataclasses.dataclass
class Locator:
    """The VHDX parent locator (2.6.2.6): key/value pairs, stored in order."""
    parent_linkage: str
    relative_path: str | None = None
    volume_path: str | None = None
    absolute_win32_path: str | None = None
    parent_linkage2: str | None = None
    extra: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    locator_type: bytes = VHDX_LOCATOR_TYPE

    def pairs(self) -> list[tuple[str, str]]:
        pairs = [("parent_linkage", self.parent_linkage)]
        for key in ("parent_linkage2", "relative_path", "volume_path", "absolute_win32_path"):
            value = getattr(self, key)
            if value is not None:
                pairs.append((key, value))
        return pairs + self.extra

    def encode(self) -> bytes:
        pairs = self.pairs()
        table = bytearray(struct.pack("<16sHH", self.locator_type, 0, len(pairs)))
        strings = bytearray()
        base = 20 + 12 * len(pairs)
        for key, value in pairs:
            key_bytes, value_bytes = utf16le(key), utf16le(value)
            key_offset = base + len(strings)
            strings += key_bytes
            value_offset = base + len(strings)
            strings += value_bytes
            table += struct.pack("<IIHH", key_offset, value_offset, len(key_bytes),
                                 len(value_bytes))
        return bytes(table + strings)


@dataclasses.dataclass
class MetadataItem:
    guid: bytes
    data: bytes
    flags: int


# --------------------------------------------------------------------------- images

class Image:
    """One VHDX file: its parameters, the writes made to its virtual disk,
    and the block states they lead to.

    kind: "fixed", "dynamic" or "differencing".  Writes to a differencing
    image must be whole logical sectors; the blocks they touch become
    PARTIALLY_PRESENT with their sectors marked in the chunk's bitmap (or
    FULLY_PRESENT when every sector of the block was written).  Unwritten
    sectors of a partially present block hold garbage in the file, so a
    reader that ignores the bitmap shows it."""

    def __init__(self, virtual_size: int, *, kind: str = "dynamic", block_size: int = MiB,
                 logical_sector_size: int = 512, physical_sector_size: int = 4096,
                 locator: Locator | None = None, log_length: int = MiB,
                 default_state: int = NOT_PRESENT, data_write_guid: bytes | None = None,
                 page83: bytes | None = None, sequence: int = 10) -> None:
        self.virtual_size = virtual_size
        self.kind = kind
        self.block_size = block_size
        self.logical_sector_size = logical_sector_size
        self.physical_sector_size = physical_sector_size
        self.locator = locator
        self.log_length = log_length
        self.default_state = default_state
        self.data_write_guid = data_write_guid or uuid.uuid4().bytes_le
        self.file_write_guid = uuid.uuid4().bytes_le
        self.page83 = page83 or uuid.uuid4().bytes_le
        self.sequence = sequence
        self.log_guid = bytes(16)
        self.sectors: dict[int, bytes] = {}        # virtual sector -> content
        self.states: dict[int, int] = {}           # block -> forced state
        self.extra_regions: list[tuple[bytes, int, int, int]] = []
        self.extra_metadata: list[MetadataItem] = []
        self.header_version = 1

    # -- geometry (2.4, 2.5)
    @property
    def chunk_ratio(self) -> int:
        return (1 << 23) * self.logical_sector_size // self.block_size

    @property
    def payload_blocks(self) -> int:
        return -(-self.virtual_size // self.block_size)

    @property
    def bat_entries(self) -> int:
        ratio = self.chunk_ratio
        if self.kind == "differencing":
            return -(-self.payload_blocks // ratio) * (ratio + 1)
        return self.payload_blocks + (self.payload_blocks - 1) // ratio

    def bat_index(self, block: int) -> int:
        return block + block // self.chunk_ratio

    def bitmap_index(self, chunk: int) -> int:
        return chunk * (self.chunk_ratio + 1) + self.chunk_ratio

    # -- content
    def write(self, offset: int, data: bytes) -> None:
        """Writes virtual disk bytes (whole logical sectors)."""
        size = self.logical_sector_size
        if offset % size or len(data) % size or offset + len(data) > self.virtual_size:
            raise ValueError("writes must be whole sectors inside the disk")
        for i in range(0, len(data), size):
            self.sectors[(offset + i) // size] = data[i:i + size]

    def set_state(self, block: int, state: int) -> None:
        self.states[block] = state

    def _block_sectors(self, block: int) -> list[int]:
        per_block = self.block_size // self.logical_sector_size
        return sorted(s for s in self.sectors if s // per_block == block)

    def block_state(self, block: int) -> int:
        forced = self.states.get(block)
        if forced is not None:
            return forced
        written = self._block_sectors(block)
        if self.kind == "fixed":
            return FULLY_PRESENT
        if not written:
            return self.default_state
        per_block = self.block_size // self.logical_sector_size
        if self.kind == "differencing" and len(written) < per_block:
            return PARTIALLY_PRESENT
        return FULLY_PRESENT

    def expected(self, parent: bytes | None = None) -> bytes:
        """The virtual disk a correct reader shows (parent: the parent's)."""
        size = self.logical_sector_size
        if self.kind == "differencing" and parent is not None:
            out = bytearray(parent)
        else:
            out = bytearray(self.virtual_size)
        for block in range(self.payload_blocks):
            state = self.block_state(block)
            start = block * self.block_size
            end = min(start + self.block_size, self.virtual_size)
            inherits = self.kind == "differencing" and state in (NOT_PRESENT, PARTIALLY_PRESENT)
            if not inherits:
                out[start:end] = bytes(end - start)
            if state in (FULLY_PRESENT, PARTIALLY_PRESENT):
                for sector in self._block_sectors(block):
                    out[sector * size:(sector + 1) * size] = self.sectors[sector]
        return bytes(out)

    # -- layout
    def render(self) -> tuple[dict[int, bytes], int]:
        """File pieces {offset: bytes} and the file size."""
        pieces: dict[int, bytes] = {}
        log_offset = MiB
        metadata_offset = log_offset + self.log_length
        metadata_length = MiB
        bat_offset = metadata_offset + metadata_length
        bat_length = _round_up(self.bat_entries * 8, MiB)
        cursor = bat_offset + bat_length

        per_block = self.block_size // self.logical_sector_size
        bat = [0] * self.bat_entries
        bitmaps: dict[int, bytearray] = {}
        for block in range(self.payload_blocks):
            written = self._block_sectors(block)
            state = self.block_state(block)
            offset_mb = 0
            if state in (FULLY_PRESENT, PARTIALLY_PRESENT):
                fill = b"\xEE" if state == PARTIALLY_PRESENT else b"\0"
                content = bytearray(fill * self.block_size)
                for sector in written:
                    local = (sector - block * per_block) * self.logical_sector_size
                    content[local:local + self.logical_sector_size] = self.sectors[sector]
                pieces[cursor] = bytes(content)
                offset_mb = cursor // MiB
                cursor += _round_up(self.block_size, MiB)
            if state == PARTIALLY_PRESENT:
                chunk = block // self.chunk_ratio
                bits = bitmaps.setdefault(chunk, bytearray(MiB))
                first = (block % self.chunk_ratio) * per_block
                for sector in written:
                    bit = first + sector - block * per_block
                    bits[bit // 8] |= 1 << (bit % 8)
            bat[self.bat_index(block)] = state | (offset_mb << 20)
        for chunk, bits in sorted(bitmaps.items()):
            pieces[cursor] = bytes(bits)
            bat[self.bitmap_index(chunk)] = SB_PRESENT | ((cursor // MiB) << 20)
            cursor += MiB
        pieces[bat_offset] = struct.pack(f"<{len(bat)}Q", *bat)

        pieces[metadata_offset] = self._metadata()
        regions = [(BAT_REGION, bat_offset, bat_length, 1),
                   (METADATA_REGION, metadata_offset, metadata_length, 1)] + self.extra_regions
        table = region_table(regions)
        pieces[REGION1] = table
        pieces[REGION2] = table
        creator = utf16le("vhdx_builder.py")
        pieces[0] = b"vhdxfile" + creator
        pieces[HEADER1] = header(self.sequence, file_write_guid=self.file_write_guid,
                                 data_write_guid=self.data_write_guid, log_offset=log_offset,
                                 log_length=self.log_length, version=self.header_version)
        pieces[HEADER2] = header(self.sequence + 1, file_write_guid=self.file_write_guid,
                                 data_write_guid=self.data_write_guid, log_guid=self.log_guid,
                                 log_offset=log_offset, log_length=self.log_length,
                                 version=self.header_version)
        return pieces, max(cursor, metadata_offset + metadata_length)

    def _metadata(self) -> bytes:
        flags = (1 if self.kind == "fixed" else 0) | (2 if self.kind == "differencing" else 0)
        items = [
            MetadataItem(FILE_PARAMETERS, struct.pack("<II", self.block_size, flags), IS_REQUIRED),
            MetadataItem(VIRTUAL_DISK_SIZE, struct.pack("<Q", self.virtual_size),
                         IS_VIRTUAL_DISK | IS_REQUIRED),
            MetadataItem(LOGICAL_SECTOR_SIZE, struct.pack("<I", self.logical_sector_size),
                         IS_VIRTUAL_DISK | IS_REQUIRED),
            MetadataItem(PHYSICAL_SECTOR_SIZE, struct.pack("<I", self.physical_sector_size),
                         IS_VIRTUAL_DISK | IS_REQUIRED),
            MetadataItem(PAGE83_DATA, self.page83, IS_VIRTUAL_DISK | IS_REQUIRED),
        ]
        if self.locator is not None:
            items.append(MetadataItem(PARENT_LOCATOR, self.locator.encode(), IS_REQUIRED))
        items += self.extra_metadata
        table = bytearray(struct.pack("<8sHH20x", b"metadata", 0, len(items)))
        data = bytearray()
        for item in items:
            offset = 64 * KiB + len(data)
            table += struct.pack("<16sIII4x", item.guid, offset if item.data else 0, len(item.data),
                                 item.flags)
            data += item.data
        return bytes(table.ljust(64 * KiB, b"\0") + data)

    def to_bytes(self) -> bytearray:
        pieces, size = self.render()
        out = bytearray(size)
        for offset, data in pieces.items():
            out[offset:offset + len(data)] = data
        return out

    def save(self, path: os.PathLike[str] | str) -> None:
        pieces, size = self.render()
        with open(path, "wb") as out:
            for offset, data in sorted(pieces.items()):
                out.seek(offset)
                out.write(data)
            out.truncate(size)


# --------------------------------------------------------------------------- file surgery

def regions(raw: bytes | bytearray) -> dict[bytes, tuple[int, int]]:
    """Region table 1: {guid: (file offset, length)}."""
    count = struct.unpack_from("<I", raw, REGION1 + 8)[0]
    found = {}
    for i in range(count):
        guid, offset, length, _ = struct.unpack_from("<16sQII", raw, REGION1 + 16 + 32 * i)
        found[guid] = (offset, length)
    return found


def metadata_entry_offset(raw: bytes | bytearray, item: bytes) -> int:
    """File offset of the metadata table entry of `item`."""
    table = regions(raw)[METADATA_REGION][0]
    count = struct.unpack_from("<H", raw, table + 10)[0]
    for i in range(count):
        at = table + 32 + 32 * i
        if raw[at:at + 16] == item:
            return at
    raise KeyError(item)


def metadata_item_offset(raw: bytes | bytearray, item: bytes) -> int:
    """File offset of the data of metadata item `item`."""
    table = regions(raw)[METADATA_REGION][0]
    relative: int = struct.unpack_from("<I", raw, metadata_entry_offset(raw, item) + 16)[0]
    return table + relative


# --------------------------------------------------------------------------- reading headers back

def current_header(raw: bytes | bytearray) -> tuple[int, bytes]:
    """(offset, bytes) of the current header of a VHDX file's bytes."""
    best = None
    for offset in (HEADER1, HEADER2):
        block = bytes(raw[offset:offset + 4096])
        stored = struct.unpack_from("<I", block, 4)[0]
        if block[:4] != b"head" or crc32c(block[:4] + b"\0\0\0\0" + block[8:]) != stored:
            continue
        sequence = struct.unpack_from("<Q", block, 8)[0]
        if best is None or sequence > best[0]:
            best = (sequence, offset, block)
    if best is None:
        raise ValueError("no valid header")
    return best[1], best[2]


def data_write_guid(path: os.PathLike[str] | str) -> bytes:
    with open(path, "rb") as image:
        raw = image.read(192 * KiB)
    return current_header(raw)[1][32:48]


# --------------------------------------------------------------------------- the log (2.3)

@dataclasses.dataclass
class Descriptor:
    file_offset: int
    data: bytes | None = None     # one 4 KiB sector; None for a zero descriptor
    zero_length: int = 0


def log_entry(sequence: int, log_guid: bytes, descriptors: list[Descriptor], *, tail: int,
              flushed_file_offset: int, last_file_offset: int) -> bytes:
    """One log entry: header + descriptors in 4 KiB descriptor sectors, then
    one data sector per data descriptor; CRC-32C over the whole entry."""
    count = len(descriptors)
    descriptor_sectors = -(-(count + 2) // 128)
    data = [d for d in descriptors if d.data is not None]
    length = (descriptor_sectors + len(data)) * LOG_SECTOR
    raw = bytearray(length)
    struct.pack_into("<4sIIIQII16sQQ", raw, 0, b"loge", 0, length, tail, sequence, count, 0,
                     log_guid, flushed_file_offset, last_file_offset)
    data_index = 0
    for i, descriptor in enumerate(descriptors):
        at = (i + 2) * 32
        if descriptor.data is None:
            struct.pack_into("<4sIQQQ", raw, at, b"zero", 0, descriptor.zero_length,
                             descriptor.file_offset, sequence)
            continue
        sector = descriptor.data
        struct.pack_into("<4s4s8sQQ", raw, at, b"desc", sector[4092:4096], sector[:8],
                         descriptor.file_offset, sequence)
        data_at = (descriptor_sectors + data_index) * LOG_SECTOR
        struct.pack_into("<4sI", raw, data_at, b"data", sequence >> 32)
        raw[data_at + 8:data_at + 4092] = sector[8:4092]
        struct.pack_into("<I", raw, data_at + 4092, sequence & 0xFFFFFFFF)
        data_index += 1
    return with_crc(raw)


def place(log: bytearray, position: int, entry: bytes) -> int:
    """Writes an entry into the circular log at position; returns the next."""
    for i in range(0, len(entry), LOG_SECTOR):
        at = (position + i) % len(log)
        log[at:at + LOG_SECTOR] = entry[i:i + LOG_SECTOR]
    return (position + len(entry)) % len(log)


def changed_sectors(before: bytes | bytearray, after: bytes | bytearray, *, skip: tuple[int, int]
                    ) -> list[Descriptor]:
    """Descriptors that turn `before` into `after` from the region tables on,
    leaving out `skip` (the log): data for changed sectors, zero descriptors
    for runs of sectors that became zero."""
    descriptors: list[Descriptor] = []
    size = max(len(before), len(after))
    for offset in range(REGION1, _round_up(size, LOG_SECTOR), LOG_SECTOR):
        if skip[0] <= offset < skip[0] + skip[1]:
            continue
        new = bytes(after[offset:offset + LOG_SECTOR]).ljust(LOG_SECTOR, b"\0")
        old = bytes(before[offset:offset + LOG_SECTOR]).ljust(LOG_SECTOR, b"\0")
        if new == old:
            continue
        if new == bytes(LOG_SECTOR):
            last = descriptors[-1] if descriptors else None
            if last and last.data is None and last.file_offset + last.zero_length == offset:
                last.zero_length += LOG_SECTOR
            else:
                descriptors.append(Descriptor(offset, None, LOG_SECTOR))
        else:
            descriptors.append(Descriptor(offset, new))
    return descriptors


def make_dirty(before: bytes | bytearray, after: bytes | bytearray, *,
               log_guid: bytes | None = None, entries: int = 1, first_sequence: int = 100,
               position: int = 0, stale_entries: int = 0, stale_target: int | None = None,
               torn_entry: bool = False, last_file_offset: int | None = None,
               flushed_file_offset: int | None = None) -> tuple[bytearray, bytes]:
    """A copy of `before` whose log, once replayed, gives `after`'s bytes.

    Both are VHDX files with the same header and log location.  The changes
    are split over `entries` consecutive log entries starting at `position`
    (wrapping around the log's end if they reach it), the head's Tail
    pointing at the first.  Before them go `stale_entries` older entries of
    the same log, valid and in sequence but behind the Tail: by default they
    rewrite `before`'s first changed sector (harmless if replayed, the
    active entries overwrite it); with stale_target they put 0xEE over that
    file offset, which only a replay that ignores the Tail would show.
    After them, with torn_entry, comes an entry whose checksum is wrong.
    The current header gets the log's GUID.  Returns (file bytes, log GUID)."""
    header_offset, current = current_header(after)
    log_length = struct.unpack_from("<I", current, 68)[0]
    log_offset = struct.unpack_from("<Q", current, 72)[0]
    log_guid = log_guid or uuid.uuid4().bytes_le
    descriptors = changed_sectors(before, after, skip=(log_offset, log_length))
    if not descriptors:
        raise ValueError("nothing to log")
    size = len(before)
    dirty = bytearray(before)
    last = _round_up(len(after), MiB) if last_file_offset is None else last_file_offset
    flushed = size if flushed_file_offset is None else flushed_file_offset

    log = bytearray(log_length)
    sequence = first_sequence
    cursor = position
    for _ in range(stale_entries):
        if stale_target is None:
            target = descriptors[0].file_offset
            old = bytes(before[target:target + LOG_SECTOR]).ljust(LOG_SECTOR, b"\0")
        else:
            target, old = stale_target, b"\xEE" * LOG_SECTOR
        entry = log_entry(sequence, log_guid, [Descriptor(target, old)], tail=cursor,
                          flushed_file_offset=flushed, last_file_offset=last)
        cursor = place(log, cursor, entry)
        sequence += 1
    tail = cursor
    per_entry = -(-len(descriptors) // entries)
    for i in range(entries):
        part = descriptors[i * per_entry:(i + 1) * per_entry]
        if not part:
            break
        entry = log_entry(sequence, log_guid, part, tail=tail, flushed_file_offset=flushed,
                          last_file_offset=last)
        cursor = place(log, cursor, entry)
        sequence += 1
    if torn_entry:
        torn = bytearray(log_entry(sequence, log_guid, descriptors[:1], tail=tail,
                                   flushed_file_offset=flushed, last_file_offset=last))
        torn[-1] ^= 0xFF
        place(log, cursor, bytes(torn))
    dirty[log_offset:log_offset + log_length] = log

    new_header = bytearray(current)
    new_header[48:64] = log_guid
    dirty[header_offset:header_offset + 4096] = with_crc(new_header)
    return dirty, log_guid
