"""READ and WRITE (10/16) as the target answers them ahead of its other
commands (src/vdengine/scsi/scsi_read_write.c): the data against qemu-io
and qemu-img compare, and every CHECK CONDITION those commands can end in
with its fixed-format sense (SBC-4 / SPC-5): LBA out of range, a transfer
above the cap, a direction or buffer that does not fit, write protection,
a medium error naming the LBA, and a CDB shorter than its opcode needs,
which the general dispatch refuses."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import _virtdisk
import pytest

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="RawSCSIVirtualDisk is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                       reason="qemu-img and qemu-io make and check the images"),
]

Command = Callable[[int, int], bytes]
MiB = 1 << 20
SIZE = 16 * MiB     # qemu-img rounds a VHD's up to its geometry: READ CAPACITY says
GOOD, CHECK_CONDITION = 0x00, 0x02
NO_LOCAL_HOST = _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST
READ_ONLY = _virtdisk.AttachVirtualDiskFlag.READ_ONLY
UNKNOWN = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)


def read_10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def write_10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def read_16(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBQIBB", 0x88, 0, lba, blocks, 0, 0)


def write_16(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBQIBB", 0x8A, 0, lba, blocks, 0, 0)


def sense_of(answer: _virtdisk.RawScsiResponse) -> tuple[int, int, int, int | None]:
    """(key, ASC, ASCQ, INFORMATION when VALID) of fixed-format sense."""
    sense = answer.sense_info
    assert answer.scsi_status == CHECK_CONDITION and answer.data_transfer_length == 0
    assert len(sense) == 18 and sense[0] & 0x7F == 0x70 and sense[7] == 10
    assert sense[1] == 0 and sense[8:12] == bytes(4) and sense[14:] == bytes(4)
    information = int.from_bytes(sense[3:7], "big") if sense[0] & 0x80 else None
    if information is None:
        assert sense[3:7] == bytes(4)
    return sense[2] & 0x0F, sense[12], sense[13], information


def sectors_of(handle: _virtdisk.VirtualDiskHandle) -> int:
    """The disk's blocks, from READ CAPACITY (16)."""
    capacity = bytearray(32)
    answer = _virtdisk.RawSCSIVirtualDisk(handle, bytes([0x9E, 0x10]) + bytes(8)
                                          + (32).to_bytes(4, "big") + bytes(2),
                                          data_in=True, data=capacity)
    assert answer.scsi_status == GOOD
    return int.from_bytes(capacity[:8], "big") + 1


def qemu_image(path: Path, fmt: str) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), str(SIZE)], check=True)
    subprocess.run(["qemu-io", "-f", fmt, "-c", "write -P 0x5a 0 3M", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.fixture(params=["vpc", "vhdx"])
def image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    fmt = request.param
    return qemu_image(tmp_path / f"disk.{'vhd' if fmt == 'vpc' else fmt}", fmt), fmt


def attached(path: Path, read_only: bool = False) -> _virtdisk.VirtualDiskHandle:
    handle = _virtdisk.OpenVirtualDisk(UNKNOWN, str(path), 0, 0, 2, read_only=read_only)
    _virtdisk.AttachVirtualDisk(handle, NO_LOCAL_HOST | (READ_ONLY if read_only else 0), 1)
    return handle


@pytest.fixture
def handle(image: tuple[Path, str]) -> Iterator[_virtdisk.VirtualDiskHandle]:
    with attached(image[0]) as opened:
        yield opened


@pytest.mark.parametrize("command", [read_10, read_16])
def test_reads_return_what_qemu_io_wrote(handle: _virtdisk.VirtualDiskHandle,
                                        command: Command) -> None:
    # Across the end of the written 3 MiB: present sectors, then absent ones.
    buffer = bytearray(8192)
    answer = _virtdisk.RawSCSIVirtualDisk(handle, command(3 * MiB // 512 - 8, 16),
                                          data_in=True, data=buffer)
    assert answer == (GOOD, b"", 8192)
    assert buffer == b"\x5a" * 4096 + bytes(4096)


def test_writes_of_both_lengths_are_what_qemu_reads(image: tuple[Path, str],
                                                    tmp_path: Path) -> None:
    path, fmt = image
    with attached(path) as opened:
        for command, lba, byte in ((write_10, 8, 0x11), (write_16, 5 * MiB // 512, 0x22)):
            answer = _virtdisk.RawSCSIVirtualDisk(opened, command(lba, 8), data_in=False,
                                                  data=bytes([byte]) * 4096)
            assert answer == (GOOD, b"", 4096)
    expected = tmp_path / "expected.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(expected), str(SIZE)], check=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 3M",
                    "-c", "write -P 0x11 4096 4k", "-c", f"write -P 0x22 {5 * MiB} 4k",
                    str(expected)], check=True, capture_output=True)
    subprocess.run(["qemu-img", "compare", "-q", "-f", fmt, "-F", "raw", str(path),
                    str(expected)], check=True)
    if fmt == "vhdx":      # qemu-img checks no VHD
        subprocess.run(["qemu-img", "check", "-q", "-f", fmt, str(path)], check=True)


def test_no_blocks_is_good_and_moves_nothing(handle: _virtdisk.VirtualDiskHandle) -> None:
    for command in (read_10, read_16):
        assert _virtdisk.RawSCSIVirtualDisk(handle, command(0, 0), data_in=True) == (GOOD, b"", 0)
    # Even at the last LBA + 1, which SBC-4 allows for a transfer of none.
    assert _virtdisk.RawSCSIVirtualDisk(handle, read_16(sectors_of(handle), 0), data_in=True) \
        == (GOOD, b"", 0)


@pytest.mark.parametrize("command", [read_10, read_16, write_10, write_16])
@pytest.mark.parametrize("past, blocks", [(0, 1), (-1, 2), (None, 1)])
def test_past_the_end_is_lba_out_of_range(handle: _virtdisk.VirtualDiskHandle, command: Command,
                                          past: int | None, blocks: int) -> None:
    """`past`: the LBA after the end plus this, None for the last 32-bit LBA."""
    lba = 2**32 - 1 if past is None else sectors_of(handle) + past
    data_in = command in (read_10, read_16)
    answer = _virtdisk.RawSCSIVirtualDisk(handle, command(lba, blocks), data_in=data_in,
                                          data=bytearray(blocks * 512))
    assert sense_of(answer) == (0x5, 0x21, 0, None)


def test_above_the_transfer_cap_is_invalid_field(handle: _virtdisk.VirtualDiskHandle) -> None:
    answer = _virtdisk.RawSCSIVirtualDisk(handle, read_16(0, 16384 + 1), data_in=True)
    assert sense_of(answer) == (0x5, 0x24, 0, None)


@pytest.mark.parametrize("cdb, data_in, length", [
    (read_16(0, 8), False, 4096),      # a read sent as data-out
    (write_16(0, 8), True, 4096),      # a write sent as data-in
    (read_16(0, 8), True, 4095),       # a buffer shorter than the transfer
    (read_10(0, 8), True, 0),          # no buffer at all
])
def test_a_direction_or_buffer_that_does_not_fit_is_invalid_field(
        handle: _virtdisk.VirtualDiskHandle, cdb: bytes, data_in: bool, length: int) -> None:
    data = bytearray(length) if length else None
    answer = _virtdisk.RawSCSIVirtualDisk(handle, cdb, data_in=data_in, data=data)
    assert sense_of(answer) == (0x5, 0x24, 0, None)


@pytest.mark.parametrize("command", [write_10, write_16])
def test_a_write_on_a_read_only_attach_is_write_protected(image: tuple[Path, str],
                                                          command: Command) -> None:
    with attached(image[0], read_only=True) as opened:
        answer = _virtdisk.RawSCSIVirtualDisk(opened, command(0, 1), data_in=False,
                                              data=bytes(512))
    assert sense_of(answer) == (0x7, 0x27, 0, None)


@pytest.mark.parametrize("cdb", [read_10(0, 1)[:9], read_16(0, 1)[:15], write_16(0, 1)[:10]])
def test_a_cdb_shorter_than_its_opcode_is_refused(handle: _virtdisk.VirtualDiskHandle,
                                                  cdb: bytes) -> None:
    answer = _virtdisk.RawSCSIVirtualDisk(handle, cdb, data_in=True, data=bytearray(512))
    assert sense_of(answer) == (0x5, 0x20, 0, None)


def vhd_bat_offset(path: Path) -> int:
    """The BAT's file offset, from the footer's data offset and the dynamic
    header's table offset (VHD specification, "Dynamic Disk Header")."""
    data = path.read_bytes()
    header = int.from_bytes(data[-512 + 16:-512 + 24], "big")
    return int.from_bytes(data[header + 16:header + 24], "big")


@pytest.mark.parametrize("command", [read_10, read_16])
def test_a_block_past_the_end_of_the_file_is_a_medium_error_at_its_lba(
        tmp_path: Path, command: Command) -> None:
    path = qemu_image(tmp_path / "disk.vhd", "vpc")
    # Block 1 (2 MiB blocks) is written; its entry now points far past the end.
    with path.open("r+b") as file:
        file.seek(vhd_bat_offset(path) + 4)
        file.write((0x7FFF0000).to_bytes(4, "big"))
    lba = 2 * MiB // 512 + 16
    with attached(path, read_only=True) as opened:
        answer = _virtdisk.RawSCSIVirtualDisk(opened, command(lba, 8), data_in=True,
                                              data=bytearray(4096))
        # The blocks around it still read.
        good = _virtdisk.RawSCSIVirtualDisk(opened, command(0, 8), data_in=True,
                                            data=bytearray(4096))
    assert sense_of(answer) == (0x3, 0x11, 0, lba)
    assert good == (GOOD, b"", 4096)
