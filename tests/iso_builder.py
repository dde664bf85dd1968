"""The smallest ISO 9660 image a reader accepts, built from ECMA-119.

Twenty-two 2048-byte sectors: the 16-sector system area, the primary volume
descriptor (sector 16), the set terminator (17), the little- and big-endian
path tables (18, 19), the root directory (20) and one file's data (21).
Deterministic, so that two platforms can open the very same bytes.
"""

from __future__ import annotations

import struct

SECTOR = 2048
PVD_SECTOR, TERMINATOR_SECTOR, PATH_L_SECTOR, PATH_M_SECTOR, ROOT_SECTOR, FILE_SECTOR = range(16, 22)
SECTORS = 22
DATE_ZERO = b"0" * 16 + b"\0"          # "not specified" (ECMA-119 8.4.26.1)
RECORD_DATE = bytes([126, 11, 24, 0, 0, 0, 0])  # 2026-11-24 00:00 UTC


def both_endian_32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def both_endian_16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def directory_record(extent: int, size: int, name: bytes, *, directory: bool) -> bytes:
    length = 33 + len(name)
    length += length % 2                      # records have even length
    record = (bytes([length, 0]) + both_endian_32(extent) + both_endian_32(size) + RECORD_DATE
              + bytes([2 if directory else 0, 0, 0]) + both_endian_16(1) + bytes([len(name)])
              + name)
    return record.ljust(length, b"\0")


def path_table(big_endian: bool) -> bytes:
    location = struct.pack(">I" if big_endian else "<I", ROOT_SECTOR)
    parent = struct.pack(">H" if big_endian else "<H", 1)
    return bytes([1, 0]) + location + parent + b"\0\0"   # root: id length 1, id 0x00, pad


def build(volume_id: str = "VIRTDISK", content: bytes = b"virtdisk test image\n") -> bytes:
    """An ISO 9660 image with one file, README.TXT;1, holding `content`."""
    if len(content) > SECTOR:
        raise ValueError("content must fit one sector")
    image = bytearray(SECTORS * SECTOR)
    table = path_table(False)

    root = (directory_record(ROOT_SECTOR, SECTOR, b"\0", directory=True)
            + directory_record(ROOT_SECTOR, SECTOR, b"\1", directory=True)
            + directory_record(FILE_SECTOR, len(content), b"README.TXT;1", directory=False))
    image[ROOT_SECTOR * SECTOR:ROOT_SECTOR * SECTOR + len(root)] = root
    image[FILE_SECTOR * SECTOR:FILE_SECTOR * SECTOR + len(content)] = content
    image[PATH_L_SECTOR * SECTOR:PATH_L_SECTOR * SECTOR + len(table)] = table
    image[PATH_M_SECTOR * SECTOR:PATH_M_SECTOR * SECTOR + len(table)] = path_table(True)

    pvd = bytearray(SECTOR)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[8:40] = b"LINUX".ljust(32)
    pvd[40:72] = volume_id.encode("ascii").ljust(32)
    pvd[80:88] = both_endian_32(SECTORS)
    pvd[120:124] = both_endian_16(1)          # volume set size
    pvd[124:128] = both_endian_16(1)          # volume sequence number
    pvd[128:132] = both_endian_16(SECTOR)     # logical block size
    pvd[132:140] = both_endian_32(len(table))
    pvd[140:144] = struct.pack("<I", PATH_L_SECTOR)
    pvd[148:152] = struct.pack(">I", PATH_M_SECTOR)
    pvd[156:190] = directory_record(ROOT_SECTOR, SECTOR, b"\0", directory=True)
    pvd[190:813] = b" " * 623                 # set, publisher, preparer, application ids, files
    for offset in (813, 830, 847, 864):       # creation, modification, expiration, effective
        pvd[offset:offset + 17] = DATE_ZERO
    pvd[881] = 1                              # file structure version
    image[PVD_SECTOR * SECTOR:(PVD_SECTOR + 1) * SECTOR] = pvd

    image[TERMINATOR_SECTOR * SECTOR:TERMINATOR_SECTOR * SECTOR + 7] = b"\xffCD001\x01"
    return bytes(image)
