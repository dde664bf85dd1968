"""The extension's RawSCSIVirtualDisk arguments and the answer's objects:
every form the stub declares is taken, each wrong value is refused with
the same error as before, the answer (built in C) holds ints and bytes and
no reference cycle can pass through it, and many calls keep no reference
to the caller's objects."""

from __future__ import annotations

import gc
import struct
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import _virtdisk
import pytest

import virtdisk

pytestmark = pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                                reason="RawSCSIVirtualDisk is not available here")

GOOD, CHECK_CONDITION = 0x00, 0x02
READ_10, READ_16 = 0x28, 0x88
NO_OPCODE = bytes([0xFF] + [0] * 9)   # no SBC-4 command has this operation code
PATTERN = bytes(range(256)) * 16


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[_virtdisk.VirtualDiskHandle]:
    path = tmp_path / "disk.vhd"
    virtdisk.create(path, 8 << 20).close()
    with virtdisk.open(path, read_only=False) as disk:
        disk.write(0, PATTERN)
    with virtdisk.open(path, read_only=False) as disk:
        _virtdisk.AttachVirtualDisk(disk.handle, _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
        yield disk.handle
        _virtdisk.DetachVirtualDisk(disk.handle, 0, 0)


def read_10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", READ_10, 0, lba, 0, blocks, 0)


def read_16(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBQIBB", READ_16, 0, lba, blocks, 0, 0)


def test_every_keyword_of_the_stub_is_taken(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(4096)
    answer = _virtdisk.RawSCSIVirtualDisk(
        handle=handle, cdb=read_16(0, 8), data_in=True, data=buffer, data_transfer_length=4096,
        sense_info_length=18, srb_flags=0, rsvd_handle=False, flags=0, version=1)
    assert answer == (GOOD, b"", 4096) and buffer == PATTERN


def test_the_raw_handle_value_and_a_shorter_transfer_are_taken(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(4096)
    answer = _virtdisk.RawSCSIVirtualDisk(handle.value, read_10(0, 1), data_in=True,
                                          data=memoryview(buffer), data_transfer_length=512)
    assert answer == (GOOD, b"", 512)
    assert buffer[:512] == PATTERN[:512] and buffer[512:] == bytes(4096 - 512)


def test_a_good_answer_is_untracked_and_holds_the_empty_bytes(handle: _virtdisk.VirtualDiskHandle) -> None:
    answer = _virtdisk.RawSCSIVirtualDisk(handle, read_16(0, 8), data_in=True,
                                          data=bytearray(4096))
    assert type(answer.sense_info) is bytes and answer.sense_info == b""
    assert type(answer.scsi_status) is int and type(answer.data_transfer_length) is int
    # Ints and bytes refer to nothing, so the collector need not visit it.
    assert not gc.is_tracked(answer)
    assert gc.get_referents(answer)[-3:] == [GOOD, b"", 4096]   # after its type


def test_a_check_condition_answer_is_untracked_and_holds_its_sense(handle: _virtdisk.VirtualDiskHandle) -> None:
    answer = _virtdisk.RawSCSIVirtualDisk(handle, NO_OPCODE, data_in=False)
    assert answer.scsi_status == CHECK_CONDITION and len(answer.sense_info) == 18
    assert not gc.is_tracked(answer)


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"cdb": b""}, ValueError, "cdb must be 1 to 255 bytes, not 0"),
    ({"cdb": bytes(256)}, ValueError, "cdb must be 1 to 255 bytes, not 256"),
    ({"sense_info_length": 256}, ValueError, "sense_info_length must be 0 to 255"),
    ({"sense_info_length": -1}, ValueError, "sense_info_length must be 0 to 255"),
    ({"sense_info_length": 1 << 70}, ValueError, "sense_info_length must be 0 to 255"),
    ({"data_transfer_length": 4097}, ValueError,
     "data_transfer_length 4097 is more than the 4096 bytes of data"),
    ({"data_transfer_length": -1}, OverflowError, None),
    ({"data": b"read-only"}, BufferError, None),
    ({"data": 7}, TypeError, None),
    ({"cdb": None}, TypeError, None),
    ({"cdb": 16}, TypeError, None),                  # not 16 zero bytes
    ({"cdb": "\x28"}, TypeError, None),
    ({"sense_info_length": 18.0}, TypeError, None),
])
def test_wrong_arguments_are_refused(handle: _virtdisk.VirtualDiskHandle, arguments: dict[str, object],
                                     error: type[Exception], message: str | None) -> None:
    given: dict[str, object] = {"cdb": read_16(0, 8), "data_in": True, "data": bytearray(4096)}
    given.update(arguments)
    with pytest.raises(error) as raised:
        _virtdisk.RawSCSIVirtualDisk(handle, **given)  # type: ignore[arg-type]
    if message is not None:
        assert str(raised.value) == message


def test_a_missing_data_in_is_refused(handle: _virtdisk.VirtualDiskHandle) -> None:
    with pytest.raises(TypeError, match="data_in"):
        _virtdisk.RawSCSIVirtualDisk(handle, read_16(0, 8))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _virtdisk.RawSCSIVirtualDisk(handle, read_16(0, 8), True)  # type: ignore[call-arg]


def test_many_calls_keep_no_reference_and_no_memory(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(4096)
    cdb = read_16(0, 8)
    call = _virtdisk.RawSCSIVirtualDisk
    for _ in range(1000):   # fills the kept answers
        call(handle, cdb, data_in=True, data=buffer)
        call(handle, NO_OPCODE, data_in=False)
    before = (sys.getrefcount(buffer), sys.getrefcount(cdb), sys.getrefcount(handle))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            call(handle, cdb, data_in=True, data=buffer)
            call(handle, NO_OPCODE, data_in=False)
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert (sys.getrefcount(buffer), sys.getrefcount(cdb), sys.getrefcount(handle)) == before
    assert grown < 4096
    # The buffer was let go of: it can be resized again.
    buffer.append(0)
