"""The extension's RawSCSIVirtualDisk answer: a RawScsiResponse whose
sense bytes are exactly those the target returned, no more than the caller
asked for, and empty for a command that ended GOOD (the answer is built in
place, and the sense bytes come off the stack, so these pin what that must
keep)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

pytestmark = pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                                reason="RawSCSIVirtualDisk is not available here")

GOOD, CHECK_CONDITION = 0x00, 0x02
ILLEGAL_REQUEST = 0x5
INVALID_COMMAND_OPERATION_CODE = 0x20
READ_16 = 0x88
FIXED_SENSE_LENGTH = 18
NO_OPCODE = bytes([0xFF] + [0] * 9)   # no SBC-4 command has this operation code


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[_virtdisk.VirtualDiskHandle]:
    path = tmp_path / "disk.vhdx"
    virtdisk.create(path, 8 << 20).close()
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(0, bytes(range(256)) * 16)
    with virtdisk.open(path, read_only=False) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
        yield disk.handle
        _virtdisk.DetachVirtualDisk(disk.handle, 0, 0)


def read_16(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBQIBB", READ_16, 0, lba, blocks, 0, 0)


def test_a_good_command_answers_with_no_sense_and_the_length_moved(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(4096)
    answer = _virtdisk.RawSCSIVirtualDisk(handle, read_16(0, 8), data_in=True, data=buffer)
    assert type(answer) is _virtdisk.RawScsiResponse
    assert answer == (GOOD, b"", 4096)
    assert (answer.scsi_status, answer.sense_info, answer.data_transfer_length) == answer
    assert buffer == bytes(range(256)) * 16


@pytest.mark.parametrize("room", [FIXED_SENSE_LENGTH, 255, 32])
def test_a_check_condition_answers_with_the_fixed_format_sense(handle: _virtdisk.VirtualDiskHandle, room: int) -> None:
    answer = _virtdisk.RawSCSIVirtualDisk(handle, NO_OPCODE, data_in=False,
                                          sense_info_length=room)
    assert answer.scsi_status == CHECK_CONDITION
    sense = answer.sense_info
    assert type(sense) is bytes and len(sense) == FIXED_SENSE_LENGTH
    assert sense[0] & 0x7F == 0x70
    assert (sense[2] & 0x0F, sense[12], sense[13]) == (ILLEGAL_REQUEST,
                                                      INVALID_COMMAND_OPERATION_CODE, 0)


@pytest.mark.parametrize("room", [0, 1, 14])
def test_the_sense_is_cut_to_the_room_the_caller_gave(handle: _virtdisk.VirtualDiskHandle, room: int) -> None:
    whole = _virtdisk.RawSCSIVirtualDisk(handle, NO_OPCODE, data_in=False).sense_info
    answer = _virtdisk.RawSCSIVirtualDisk(handle, NO_OPCODE, data_in=False,
                                          sense_info_length=room)
    assert answer.scsi_status == CHECK_CONDITION
    assert answer.sense_info == whole[:room]


def test_a_cdb_of_any_buffer_type_is_sent(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(512)
    for cdb in (read_16(1, 1), bytearray(read_16(1, 1)), memoryview(read_16(1, 1))):
        assert _virtdisk.RawSCSIVirtualDisk(handle, cdb, data_in=True, data=buffer) == (
            GOOD, b"", 512)
        assert buffer == (bytes(range(256)) * 2)
