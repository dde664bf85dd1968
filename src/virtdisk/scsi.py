"""The disk's content as a SCSI block device: the commands the facade sends
through RawSCSIVirtualDisk and what their answers mean.

Windows has no read or write call for a virtual disk's content.  A disk
attached with ``ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST`` is not surfaced to
the host; instead its handle takes SCSI commands (``RawSCSIVirtualDisk``)
that the VHD miniport executes on the image, which is how Hyper-V serves a
guest's disk.  :class:`BlockTarget` is that conversation, the same on every
platform (on Linux the portable engine implements the same SBC-4 subset):

* the attach is made on first use and released by :meth:`BlockTarget.close`
  (on Windows, attaching needs an elevated process: administrator rights);
* READ CAPACITY(16) gives the logical block size and count, INQUIRY's
  Block Limits page (VPD 0xB0) the largest transfer and unmap; both are
  asked once and cached;
* READ(16), WRITE(16), UNMAP and SYNCHRONIZE CACHE(10) move whole logical
  blocks, split to those limits, straight between the caller's buffer and
  the target;
* a CHECK CONDITION's sense data becomes the exception of its kind
  (:func:`sense_error`): an LBA out of range an :class:`OutOfRangeError`
  (a ValueError), a write-protected disk an :class:`AccessDeniedError`, a
  thin disk out of space (SPACE ALLOCATION FAILED) a :class:`DiskFullError`,
  a medium error a :class:`MediumError` naming the byte offset.

Byte offsets, unaligned requests and file objects are built on this in
:mod:`virtdisk.content`.
"""

from __future__ import annotations

import dataclasses
import struct
import threading
import time
from collections.abc import Callable
from typing import Final, TypeAlias

from _virtdisk import (
    AttachVirtualDisk,
    AttachVirtualDiskFlag,
    DetachVirtualDisk,
    RawScsiResponse,
    RawSCSIVirtualDisk,
    VirtualDiskHandle,
)

from .errors import (
    ERROR_ACCESS_DENIED,
    ERROR_DISK_FULL,
    ERROR_INVALID_PARAMETER,
    ERROR_IO_DEVICE,
    ERROR_NOT_READY,
    ERROR_NOT_SUPPORTED,
    ERROR_READ_FAULT,
    ERROR_SVHDX_RESERVATION_CONFLICT,
    ERROR_WRITE_FAULT,
    AccessDeniedError,
    DiskFullError,
    DiskInUseError,
    ImageIOError,
    InvalidHandleError,
    MediumError,
    NotAttachedError,
    OutOfRangeError,
    UnsupportedOperationError,
    VirtualDiskError,
)
from .handle_path import handle_path

__all__ = ["BlockTarget", "Sense", "parse_sense", "sense_error"]

# Operation codes (SBC-4, SPC-5).
READ_16: Final = 0x88
WRITE_16: Final = 0x8A
UNMAP: Final = 0x42
SYNCHRONIZE_CACHE_10: Final = 0x35
SERVICE_ACTION_IN_16: Final = 0x9E
READ_CAPACITY_16: Final = 0x10          # its service action
INQUIRY: Final = 0x12
BLOCK_LIMITS_PAGE: Final = 0xB0

_COMMAND_NAMES: Final = {
    READ_16: "READ(16)", WRITE_16: "WRITE(16)", UNMAP: "UNMAP",
    SYNCHRONIZE_CACHE_10: "SYNCHRONIZE CACHE(10)", SERVICE_ACTION_IN_16: "READ CAPACITY(16)",
    INQUIRY: "INQUIRY",
}

# SCSI status bytes (SAM-5).
GOOD: Final = 0x00
CHECK_CONDITION: Final = 0x02
BUSY: Final = 0x08
RESERVATION_CONFLICT: Final = 0x18
TASK_SET_FULL: Final = 0x28

# Sense keys (SPC-5 table 49).
NO_SENSE: Final = 0x0
RECOVERED_ERROR: Final = 0x1
NOT_READY: Final = 0x2
MEDIUM_ERROR: Final = 0x3
HARDWARE_ERROR: Final = 0x4
ILLEGAL_REQUEST: Final = 0x5
UNIT_ATTENTION: Final = 0x6
DATA_PROTECT: Final = 0x7
ABORTED_COMMAND: Final = 0xB

_SENSE_KEY_NAMES: Final = {
    NO_SENSE: "no sense", RECOVERED_ERROR: "recovered error", NOT_READY: "not ready",
    MEDIUM_ERROR: "medium error", HARDWARE_ERROR: "hardware error",
    ILLEGAL_REQUEST: "illegal request", UNIT_ATTENTION: "unit attention",
    DATA_PROTECT: "data protect", 0x8: "blank check", 0x9: "vendor specific",
    0xA: "copy aborted", ABORTED_COMMAND: "aborted command", 0xD: "volume overflow",
    0xE: "miscompare",
}

# The additional sense codes a block target answers most (SPC-5 table F.1).
_ASC_NAMES: Final = {
    (0x04, 0x00): "logical unit not ready",
    (0x0C, 0x00): "write error",
    (0x11, 0x00): "unrecovered read error",
    (0x1A, 0x00): "parameter list length error",
    (0x20, 0x00): "invalid command operation code",
    (0x21, 0x00): "logical block address out of range",
    (0x24, 0x00): "invalid field in CDB",
    (0x26, 0x00): "invalid field in parameter list",
    (0x27, 0x00): "write protected",
    (0x27, 0x07): "space allocation failed write protect",
    (0x29, 0x00): "power on, reset, or bus device reset occurred",
    (0x2A, 0x09): "capacity data has changed",
    (0x3A, 0x00): "medium not present",
    (0x44, 0x00): "internal target failure",
}
_LBA_OUT_OF_RANGE: Final = 0x21
_INVALID_OPCODE: Final = 0x20
_WRITE_PROTECTED: Final = 0x27
_SPACE_ALLOCATION_FAILED: Final = (0x27, 0x07)
_CAPACITY_CHANGED: Final = (0x2A, 0x09)

_SENSE_LENGTH: Final = 32          # fixed format needs 18; room for descriptors
_CAPACITY_LENGTH: Final = 32
_BLOCK_LIMITS_LENGTH: Final = 64
_RETRIES: Final = 3
_BUSY_PAUSE: Final = 0.01
# The largest transfer one command carries when the target sets no limit:
# DataTransferLength is a ULONG, and a gigabyte bounds the time the call
# holds the caller's buffer.
_TRANSFER_CAP: Final = 1 << 30
_UINT32_MAX: Final = 0xFFFFFFFF
_UNMAP_DESCRIPTOR: Final = struct.Struct(">QI4x")
_UNMAP_HEADER: Final = struct.Struct(">HH4x")
# READ(16) and WRITE(16): the operation code, the LBA and the block count
# (flags, group number and control all zero).
_READ_WRITE_16: Final = struct.Struct(">BxQIxx")
# What whole blocks are moved from or into: a byte memoryview, or the
# caller's bytes or bytearray as it is (the extension takes any buffer).
_Blocks: TypeAlias = memoryview | bytes | bytearray


@dataclasses.dataclass(frozen=True)
class Sense:
    """The parts of sense data the facade acts on (fixed or descriptor
    format): the sense key, the additional sense code and qualifier, and
    the INFORMATION field (the failing LBA, for a medium error) if valid."""

    key: int
    asc: int
    ascq: int
    information: int | None = None

    def describe(self) -> str:
        """``"medium error, unrecovered read error (sense 3/11/00)"``."""
        key = _SENSE_KEY_NAMES.get(self.key, f"sense key {self.key:#x}")
        detail = _ASC_NAMES.get((self.asc, self.ascq))
        if detail is None:
            detail = _ASC_NAMES.get((self.asc, 0))
        text = key if detail is None else f"{key}, {detail}"
        return f"{text} (sense {self.key:X}/{self.asc:02X}/{self.ascq:02X})"


def parse_sense(data: bytes) -> Sense | None:
    """The :class:`Sense` in `data` (SPC-5 4.4: response codes 0x70/0x71
    fixed, 0x72/0x73 descriptor format), or None when `data` holds none."""
    if len(data) < 2:
        return None
    response = data[0] & 0x7F
    if response in (0x70, 0x71):
        if len(data) < 3:
            return None
        asc = data[12] if len(data) > 12 else 0
        ascq = data[13] if len(data) > 13 else 0
        information = None
        if data[0] & 0x80 and len(data) >= 7:
            information = int.from_bytes(data[3:7], "big")
        return Sense(data[2] & 0x0F, asc, ascq, information)
    if response in (0x72, 0x73):
        if len(data) < 4:
            return None
        information = None
        # Descriptors follow the 8-byte header; type 0 is INFORMATION.
        position, end = 8, min(len(data), 8 + (data[7] if len(data) > 7 else 0))
        while position + 2 <= end:
            kind, length = data[position], data[position + 1]
            if kind == 0x00 and length >= 0x0A and position + 12 <= end \
                    and data[position + 2] & 0x80:
                information = int.from_bytes(data[position + 4:position + 12], "big")
            position += 2 + length
        return Sense(data[1] & 0x0F, data[2], data[3], information)
    return None


def sense_error(sense: Sense | None, status: int, *, command: str, function: str,
                path: str | None, offset: int | None = None,
                length: int | None = None, capacity: int | None = None,
                block_size: int | None = None, writing: bool = False) -> VirtualDiskError:
    """The exception for a command that ended with SCSI `status` and
    `sense` (None when the target gave none).

    `offset` and `length` are the bytes the command covered, `capacity`
    the disk's size, for the message.  A medium error's INFORMATION field,
    when present, names the failing block, whose byte offset the
    :class:`MediumError` carries instead of the command's start.
    """
    where = "" if offset is None else f" at offset {offset}"
    if length is not None and offset is not None:
        where = f" of {length} bytes{where}"
    if status == RESERVATION_CONFLICT:
        error: VirtualDiskError = DiskInUseError(ERROR_SVHDX_RESERVATION_CONFLICT, function,
                                                 path)
        error.strerror = f"{command}{where}: another initiator holds a reservation on the disk"
        return error
    if sense is None:
        error = ImageIOError(ERROR_IO_DEVICE, function, path)
        error.strerror = f"{command}{where} failed with SCSI status {status:#04x} and no sense data"
        return error
    detail = sense.describe()
    if sense.key == ILLEGAL_REQUEST and sense.asc == _LBA_OUT_OF_RANGE:
        error = OutOfRangeError(ERROR_INVALID_PARAMETER, function, path)
        size = "" if capacity is None else f" ({capacity} bytes)"
        error.strerror = f"{command}{where} reaches past the end of the disk{size}: {detail}"
        error.size = capacity
        error.offset = offset
        return error
    if sense.key == ILLEGAL_REQUEST and sense.asc == _INVALID_OPCODE:
        error = UnsupportedOperationError(ERROR_NOT_SUPPORTED, function, path)
        error.strerror = f"the disk does not support {command}: {detail}"
        return error
    if sense.key == DATA_PROTECT and (sense.asc, sense.ascq) == _SPACE_ALLOCATION_FAILED:
        error = DiskFullError(ERROR_DISK_FULL, function, path)
        error.strerror = f"{command}{where} found no space to allocate: {detail}"
        return error
    if sense.key == DATA_PROTECT:
        error = AccessDeniedError(ERROR_ACCESS_DENIED, function, path)
        error.strerror = f"{command}{where}: the disk is write-protected ({detail})"
        return error
    if sense.key == NOT_READY:
        # The engine's answer once a permanent attach is detached under
        # the handle that made it: its view of the image is out of date.
        error = NotAttachedError(ERROR_NOT_READY, function, path)
        error.strerror = (f"{command}{where}: the disk is no longer attached ({detail}); "
                          "close it and open the image again")
        return error
    if sense.key == MEDIUM_ERROR:
        failing = offset
        if sense.information is not None and block_size:
            failing = sense.information * block_size
        medium = MediumError(ERROR_WRITE_FAULT if writing else ERROR_READ_FAULT, function, path)
        at = "" if failing is None else f" at offset {failing}"
        medium.strerror = (f"{command}{where} hit unreadable or unwritable data{at}: "
                           f"{detail}")
        medium.offset = failing
        medium.sense = sense
        return medium
    if sense.key == ILLEGAL_REQUEST:
        error = UnsupportedOperationError(ERROR_NOT_SUPPORTED, function, path)
        error.strerror = f"the disk refused {command}{where}: {detail}"
        return error
    error = ImageIOError(ERROR_IO_DEVICE, function, path)
    error.strerror = f"{command}{where} failed: {detail}"
    return error


def _blocks_method(opcode: int, doc: str) -> Callable[[BlockTarget, int, _Blocks, str], None]:
    """The BlockTarget method moving whole blocks with `opcode`, READ(16)
    or WRITE(16): one body for both, with nothing looked up per call that
    the opcode decides."""
    data_in = opcode == READ_16

    def move_blocks(self: BlockTarget, lba: int, view: _Blocks, name: str) -> None:
        # One command, the common case, is sent here without a slice, a
        # loop or another frame: a small request costs little more than
        # the extension call.
        count = len(view) // self.block_size
        if 0 < count <= self.max_transfer_blocks:
            response = RawSCSIVirtualDisk(self._handle, _READ_WRITE_16.pack(opcode, lba, count),
                                          data_in=data_in, data=view,
                                          sense_info_length=_SENSE_LENGTH)
            # scsi_status and data_transfer_length, by index: the cheaper read.
            if response[0] != GOOD or response[2] < len(view):
                self._finish(response, opcode, lba, view, name)
        else:
            self._move(opcode, lba, view, name)

    move_blocks.__doc__ = doc
    return move_blocks


class BlockTarget:
    """The disk's content reached with SCSI commands through its handle.

    Made by :class:`~virtdisk.VirtualDisk` on the first content access:
    the constructor attaches the disk with ``NO_LOCAL_HOST`` (plus
    ``READ_ONLY`` for a disk opened read-only) and asks its capacity and
    block limits once.  :meth:`close` detaches it.  With `on_device` the
    handle's own device attach (a permanent one) takes the commands and
    the constructor attaches nothing.  Offsets here are logical blocks;
    buffers are whole blocks.
    """

    __slots__ = ("_handle", "_read_only", "_attached", "_lock", "block_size",
                 "block_count", "capacity", "physical_block_exponent", "thin",
                 "zeroes_after_unmap", "max_transfer_blocks", "max_unmap_blocks",
                 "max_unmap_descriptors", "optimal_transfer_blocks", "__weakref__")

    block_size: int
    block_count: int
    # The disk's size in bytes, as READ CAPACITY(16) reported it: kept, not
    # computed, since every content request checks against it.
    capacity: int
    physical_block_exponent: int
    thin: bool
    zeroes_after_unmap: bool
    max_transfer_blocks: int
    max_unmap_blocks: int
    max_unmap_descriptors: int
    optimal_transfer_blocks: int

    def __init__(self, handle: VirtualDiskHandle, read_only: bool | None, *,
                 on_device: bool = False) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._attached = False
        # on_device: the handle holds a device attach that takes the
        # commands already (a permanent one); this target adds none.
        self._read_only = bool(read_only) if on_device else self._attach(read_only)
        try:
            self._read_capacity()
            self._read_block_limits()
        except BaseException:
            self.close()
            raise

    @property
    def _path(self) -> str:
        """The image its errors name: the handle's, asked anew, so a
        mirror's break that switched the handle to the copy names the copy
        (the target outlives the break)."""
        return handle_path(self._handle)

    @property
    def read_only(self) -> bool:
        """Whether the attach is read-only."""
        return self._read_only

    def _attach(self, read_only: bool | None) -> bool:
        flags = AttachVirtualDiskFlag.NO_LOCAL_HOST
        if read_only:
            flags |= AttachVirtualDiskFlag.READ_ONLY
        try:
            AttachVirtualDisk(self._handle, flags, 1)
        except InvalidHandleError:
            raise
        except VirtualDiskError:
            if read_only is not None:
                raise
            # A handle opened elsewhere, of unknown access: a read-only
            # attach is what such a handle may still allow.
            AttachVirtualDisk(self._handle, flags | AttachVirtualDiskFlag.READ_ONLY, 1)
            read_only = True
        self._attached = True
        return bool(read_only)

    def close(self) -> None:
        """Detaches the disk if this target attached it."""
        if self._attached:
            self._attached = False
            if not self._handle.closed:
                DetachVirtualDisk(self._handle, 0, 0)

    # -- queries -------------------------------------------------------

    def _read_capacity(self) -> None:
        answer = bytearray(_CAPACITY_LENGTH)
        cdb = bytearray(16)
        cdb[0], cdb[1] = SERVICE_ACTION_IN_16, READ_CAPACITY_16
        cdb[10:14] = _CAPACITY_LENGTH.to_bytes(4, "big")
        self._command(bytes(cdb), True, memoryview(answer), "capacity")
        last_lba, block_size = struct.unpack_from(">QI", answer)
        if block_size == 0 or block_size % 512:
            raise ImageIOError(ERROR_IO_DEVICE, "RawSCSIVirtualDisk", self._path)
        self.block_size = block_size
        self.block_count = last_lba + 1
        self.capacity = (last_lba + 1) * block_size
        self.physical_block_exponent = answer[13] & 0x0F
        self.thin = bool(answer[14] & 0x80)
        self.zeroes_after_unmap = bool(answer[14] & 0x40)

    def _read_block_limits(self) -> None:
        answer = bytearray(_BLOCK_LIMITS_LENGTH)
        cdb = bytes((INQUIRY, 0x01, BLOCK_LIMITS_PAGE, 0, _BLOCK_LIMITS_LENGTH, 0))
        try:
            self._command(cdb, True, memoryview(answer), "capacity")
        except UnsupportedOperationError:
            answer[:] = bytes(_BLOCK_LIMITS_LENGTH)  # no page: no limits stated
        cap = max(1, _TRANSFER_CAP // self.block_size)
        maximum = int.from_bytes(answer[8:12], "big") if answer[1] == BLOCK_LIMITS_PAGE else 0
        self.max_transfer_blocks = min(maximum, cap) if maximum else cap
        optimal = int.from_bytes(answer[12:16], "big") if answer[1] == BLOCK_LIMITS_PAGE else 0
        self.optimal_transfer_blocks = min(optimal or self.max_transfer_blocks,
                                           self.max_transfer_blocks)
        self.max_unmap_blocks = int.from_bytes(answer[20:24], "big")
        self.max_unmap_descriptors = int.from_bytes(answer[24:28], "big")

    # -- data ----------------------------------------------------------

    read_blocks = _blocks_method(
        READ_16, """Fills `view` (whole blocks: a byte memoryview or a bytearray)
        from block `lba` on, in commands of at most the target's maximum
        transfer length, each straight into its slice of `view`.""")
    write_blocks = _blocks_method(
        WRITE_16, """Writes `view` (whole blocks: a byte memoryview, bytes or a
        bytearray) at block `lba`, split as :meth:`read_blocks` splits.""")

    def _move(self, opcode: int, lba: int, buffer: _Blocks, name: str) -> None:
        """A transfer of more blocks than one command carries, one command
        per slice of `buffer`'s view."""
        with memoryview(buffer) as view:
            self._move_view(opcode, lba, view, name)

    def _move_view(self, opcode: int, lba: int, view: memoryview, name: str) -> None:
        size = self.block_size
        step = self.max_transfer_blocks * size
        # Each slice is one command: read_blocks' or write_blocks' own.
        move_blocks = self.read_blocks if opcode == READ_16 else self.write_blocks
        for start in range(0, len(view), step):
            move_blocks(lba + start // size, view[start:start + step], name)

    def _finish(self, response: RawScsiResponse, opcode: int, lba: int, view: _Blocks,
                name: str) -> None:
        """What follows a READ(16) or WRITE(16) of `view` at block `lba`
        that did not simply succeed: the retries and errors of
        :meth:`_command`, then the error of a short transfer."""
        data_in = opcode == READ_16
        if response.scsi_status != GOOD:
            response = self._recover(response, _READ_WRITE_16.pack(opcode, lba, len(view) //
                                                                   self.block_size),
                                     data_in, view, name, lba, len(view))
        if response.data_transfer_length < len(view):
            error = ImageIOError(ERROR_WRITE_FAULT if not data_in else ERROR_READ_FAULT,
                                 f"VirtualDisk.{name}", self._path)
            error.strerror = (f"{_COMMAND_NAMES[opcode]} at offset {lba * self.block_size} "
                              f"moved {response.data_transfer_length} of {len(view)} bytes")
            raise error

    def unmap_blocks(self, lba: int, count: int, name: str) -> None:
        """Unmaps `count` blocks from `lba` on, in UNMAP commands within the
        target's maximum unmap count and descriptor count."""
        per_command = self.max_unmap_blocks or _UINT32_MAX
        per_descriptor = min(per_command, _UINT32_MAX)
        descriptors = max(1, self.max_unmap_descriptors or 1)
        end = lba + count
        while lba < end:
            ranges: list[tuple[int, int]] = []
            budget = per_command
            while lba < end and len(ranges) < descriptors and budget:
                blocks = min(end - lba, per_descriptor, budget)
                ranges.append((lba, blocks))
                lba += blocks
                budget -= blocks
            body = b"".join(_UNMAP_DESCRIPTOR.pack(start, blocks) for start, blocks in ranges)
            parameters = _UNMAP_HEADER.pack(len(body) + 6, len(body)) + body
            cdb = bytes((UNMAP, 0, 0, 0, 0, 0, 0)) + len(parameters).to_bytes(2, "big") + b"\0"
            self._command(cdb, False, memoryview(parameters), name, lba=ranges[0][0],
                          length=sum(blocks for _, blocks in ranges) * self.block_size)

    def synchronize(self, name: str) -> None:
        """SYNCHRONIZE CACHE(10) of the whole disk: what the target holds in
        memory reaches the image file."""
        self._command(bytes((SYNCHRONIZE_CACHE_10, 0, 0, 0, 0, 0, 0, 0, 0, 0)), False, None,
                      name)

    def _command(self, cdb: bytes, data_in: bool, view: memoryview | None, name: str, *,
                 lba: int | None = None, length: int | None = None) -> RawScsiResponse:
        """Sends one command, retrying what SAM-5 says to retry (BUSY, TASK
        SET FULL, UNIT ATTENTION), and raises the error its sense means."""
        response = RawSCSIVirtualDisk(self._handle, cdb, data_in=data_in, data=view,
                                      sense_info_length=_SENSE_LENGTH)
        if response.scsi_status == GOOD:
            return response
        return self._recover(response, cdb, data_in, view, name, lba, length)

    def _recover(self, response: RawScsiResponse, cdb: bytes, data_in: bool,
                 view: _Blocks | None, name: str, lba: int | None,
                 length: int | None) -> RawScsiResponse:
        """The rest of :meth:`_command` once `response`, the first answer to
        `cdb`, is not GOOD: sense is read only here."""
        sense: Sense | None = None
        for attempt in range(_RETRIES + 1):
            if attempt:
                response = RawSCSIVirtualDisk(self._handle, cdb, data_in=data_in, data=view,
                                              sense_info_length=_SENSE_LENGTH)
            status = response.scsi_status
            if status == GOOD:
                return response
            sense = parse_sense(response.sense_info)
            if status in (BUSY, TASK_SET_FULL):
                time.sleep(_BUSY_PAUSE * (attempt + 1))
                continue
            if status == CHECK_CONDITION and sense is not None:
                if sense.key == RECOVERED_ERROR or sense.key == NO_SENSE:
                    return response
                if sense.key == UNIT_ATTENTION:
                    if (sense.asc, sense.ascq) == _CAPACITY_CHANGED and cdb[0] != \
                            SERVICE_ACTION_IN_16:
                        self._read_capacity()
                    continue
            break
        size = self.block_size if lba is not None else None
        raise sense_error(
            sense, response.scsi_status, command=_COMMAND_NAMES.get(cdb[0], f"{cdb[0]:#04x}"),
            function=f"VirtualDisk.{name}", path=self._path,
            offset=None if lba is None or size is None else lba * size, length=length,
            capacity=self.capacity if size is not None else None, block_size=size,
            writing=not data_in)
