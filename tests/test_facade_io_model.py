"""The facade's content logic against a model SCSI block target.

The real target (the engine's scsi.c, VirtDisk's miniport on Windows) is
tested in test_facade_io.py against images qemu made.  This module drives
the same facade code against a small SBC-4 model whose limits the tests
choose: a maximum transfer of a few blocks, 4096-byte sectors, a few
descriptors per UNMAP, medium errors at chosen blocks, a write-protected
medium.  It checks what no real target here can be asked to do: that every
command stays within the limits the target states, that aligned transfers
use slices of the caller's buffer, and that each sense maps to its
exception.  The model replaces only the transport (the RawSCSIVirtualDisk,
AttachVirtualDisk and DetachVirtualDisk ``virtdisk.scsi`` calls); the
disks are real images.
"""

from __future__ import annotations

import array
import hashlib
import io
import random
import shutil
import struct
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import virtdisk
from _virtdisk import AttachVirtualDiskFlag, RawScsiResponse
from virtdisk import scsi
from virtdisk.errors import (
    AccessDeniedError,
    DiskFullError,
    ImageIOError,
    InvalidHandleError,
    MediumError,
    OutOfRangeError,
    UnsupportedOperationError,
)

MIB = 1 << 20


def fixed_sense(key: int, asc: int, ascq: int, information: int | None = None) -> bytes:
    sense = bytearray(18)
    sense[0] = 0x70 | (0x80 if information is not None else 0)
    sense[2] = key
    if information is not None:
        sense[3:7] = information.to_bytes(4, "big")
    sense[7] = 10
    sense[12], sense[13] = asc, ascq
    return bytes(sense)


class Model:
    """An SBC-4 subset over a bytearray, answering as a target would."""

    def __init__(self, size: int, *, block: int = 512, max_transfer: int = 0,
                 max_unmap: int = 0xFFFFFFFF, max_descriptors: int = 16, thin: bool = True,
                 protected: bool = False, bad_blocks: frozenset[int] = frozenset(),
                 seed: int = 1) -> None:
        generator = random.Random(seed)
        self.data = bytearray(generator.randbytes(size))
        self.block = block
        self.max_transfer = max_transfer
        self.max_unmap = max_unmap
        self.max_descriptors = max_descriptors
        self.thin = thin
        self.protected = protected
        self.bad_blocks = bad_blocks
        self.commands: list[tuple[int, int, int]] = []   # opcode, lba, blocks
        self.buffers: list[Any] = []                       # the .obj of each data view
        self.attaches: list[int] = []
        self.detaches = 0
        self.unit_attentions = 0

    @property
    def blocks(self) -> int:
        return len(self.data) // self.block

    def answer(self, status: int = 0, sense: bytes = b"", length: int = 0) -> RawScsiResponse:
        return RawScsiResponse(status, sense, length)

    def check(self, key: int, asc: int, ascq: int = 0,
              information: int | None = None) -> RawScsiResponse:
        return self.answer(scsi.CHECK_CONDITION, fixed_sense(key, asc, ascq, information))

    def transfer(self, handle: object, cdb: bytes, *, data_in: bool,
                 data: Any, sense_info_length: int) -> RawScsiResponse:
        view = data
        if self.unit_attentions:
            self.unit_attentions -= 1
            return self.check(scsi.UNIT_ATTENTION, 0x29, 0)
        opcode = cdb[0]
        if opcode == scsi.SERVICE_ACTION_IN_16:
            assert view is not None
            answer = struct.pack(">QIBBB", self.blocks - 1, self.block, 0, 0,
                                 0xC0 if self.thin else 0)
            view[:len(answer)] = answer
            self.commands.append((opcode, 0, 0))
            return self.answer(length=32)
        if opcode == scsi.INQUIRY:
            assert view is not None and cdb[1] == 1 and cdb[2] == 0xB0
            page = bytearray(64)
            page[1] = 0xB0
            page[3] = 0x3C
            page[8:12] = self.max_transfer.to_bytes(4, "big")
            page[20:24] = self.max_unmap.to_bytes(4, "big")
            page[24:28] = self.max_descriptors.to_bytes(4, "big")
            view[:] = page[:len(view)]
            self.commands.append((opcode, 0, 0))
            return self.answer(length=64)
        if opcode in (scsi.READ_16, scsi.WRITE_16):
            lba, count = struct.unpack_from(">QI", cdb, 2)
            self.commands.append((opcode, lba, count))
            assert view is not None and len(view) == count * self.block
            # The facade hands over a bytearray or bytes as it is, other
            # buffers (and parts of one) as a memoryview.
            self.buffers.append(view.obj if isinstance(view, memoryview) else view)
            if self.max_transfer and count > self.max_transfer:
                return self.check(scsi.ILLEGAL_REQUEST, 0x24)
            if lba + count > self.blocks:
                return self.check(scsi.ILLEGAL_REQUEST, 0x21)
            if opcode == scsi.WRITE_16 and self.protected:
                return self.check(scsi.DATA_PROTECT, 0x27)
            for bad in sorted(self.bad_blocks):
                if lba <= bad < lba + count:
                    return self.check(scsi.MEDIUM_ERROR, 0x11 if data_in else 0x0C, 0, bad)
            start, end = lba * self.block, (lba + count) * self.block
            if data_in:
                view[:] = self.data[start:end]
            else:
                self.data[start:end] = view
            return self.answer(length=len(view))
        if opcode == scsi.UNMAP:
            assert view is not None and not data_in
            parameters = bytes(view)
            body_length = struct.unpack_from(">H", parameters, 2)[0]
            descriptors = [struct.unpack_from(">QI", parameters, 8 + 16 * index)
                           for index in range(body_length // 16)]
            assert 0 < len(descriptors) <= self.max_descriptors
            assert sum(count for _, count in descriptors) <= self.max_unmap
            for lba, count in descriptors:
                self.commands.append((opcode, lba, count))
                self.data[lba * self.block:(lba + count) * self.block] = bytes(count * self.block)
            return self.answer()
        if opcode == scsi.SYNCHRONIZE_CACHE_10:
            self.commands.append((opcode, 0, 0))
            return self.answer()
        return self.check(scsi.ILLEGAL_REQUEST, 0x20)

    def attach(self, handle: object, flags: int, version: int = 1) -> None:
        self.attaches.append(int(flags))

    def detach(self, handle: object, flags: int = 0, provider: int = 0) -> None:
        self.detaches += 1

    def count(self, opcode: int) -> int:
        return sum(1 for command in self.commands if command[0] == opcode)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def put(model: Model) -> Model:
        monkeypatch.setattr(scsi, "RawSCSIVirtualDisk", model.transfer)
        monkeypatch.setattr(scsi, "AttachVirtualDisk", model.attach)
        monkeypatch.setattr(scsi, "DetachVirtualDisk", model.detach)
        return model
    yield put


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.vhdx"
    virtdisk.create(path, "8MiB").close()
    return path


# Offsets and lengths around sector (512, 4096) and transfer (8 blocks) edges.
EDGES = [(0, 1), (1, 1), (511, 1), (511, 2), (512, 512), (1, 4095), (4095, 2), (4096, 4096),
         (100, 70000), (3, 8 * 512 + 5), (4096 * 8 - 1, 3), (0, 1 * MIB + 1), (12345, 200000)]


@pytest.mark.parametrize("block", [512, 4096])
@pytest.mark.parametrize(("offset", "length"), EDGES)
def test_reads_any_range(install: Any, image: Path, block: int, offset: int,
                         length: int) -> None:
    model = install(Model(8 * MIB, block=block, max_transfer=8))
    with virtdisk.open(image) as disk:
        assert disk.read(offset, length) == model.data[offset:offset + length]
    assert all(count <= 8 for opcode, _, count in model.commands if opcode == scsi.READ_16)


@pytest.mark.parametrize("block", [512, 4096])
@pytest.mark.parametrize(("offset", "length"), EDGES)
def test_writes_any_range(install: Any, image: Path, block: int, offset: int,
                          length: int) -> None:
    model = install(Model(8 * MIB, block=block, max_transfer=8))
    mirror = bytearray(model.data)
    data = random.Random(offset).randbytes(length)
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.write(offset, data) == length
        mirror[offset:offset + length] = data
        assert model.data == mirror
        start = max(0, offset - 7)
        assert disk.read(start, offset + length + 7 - start) == \
            mirror[start:offset + length + 7]
    assert all(count <= 8 for opcode, _, count in model.commands
               if opcode in (scsi.READ_16, scsi.WRITE_16))


def test_random_writes_match_a_mirror(install: Any, image: Path) -> None:
    model = install(Model(2 * MIB, block=4096, max_transfer=16))
    mirror = bytearray(model.data)
    generator = random.Random(7)
    with virtdisk.open(image, read_only=False) as disk:
        for _ in range(300):
            offset = generator.randrange(2 * MIB)
            length = generator.randrange(min(3 * 4096 + 17, 2 * MIB - offset) + 1)
            data = generator.randbytes(length)
            disk.write(offset, data)
            mirror[offset:offset + length] = data
        assert disk.read(0, 2 * MIB) == mirror


def test_a_read_stops_at_the_end(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image) as disk:
        assert disk.read(MIB - 3, 100) == model.data[-3:]
        assert disk.read(MIB, 100) == b""
        assert disk.readinto(MIB - 1, bytearray(10)) == 1


def test_aligned_transfers_use_the_callers_buffer(install: Any, image: Path) -> None:
    model = install(Model(4 * MIB, max_transfer=64))
    buffer = bytearray(3 * MIB)
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.readinto(MIB, memoryview(buffer)[512:]) == 3 * MIB - 512
        reads = [obj for (opcode, _, _), obj in zip(model.commands[2:], model.buffers)
                 if opcode == scsi.READ_16]
        assert len(reads) == -(-(3 * MIB - 512) // (64 * 512))
        assert all(obj is buffer for obj in reads)
        assert buffer[512:] == model.data[MIB:4 * MIB - 512]
        model.buffers.clear()
        payload = bytes(2 * MIB)
        disk.write(0, payload)
        assert model.buffers and all(obj is payload for obj in model.buffers)


def test_whole_sectors_hand_the_callers_object_to_the_target(
        install: Any, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bytearray or bytes needs no view made of it: the short path passes
    # the object itself, in one command.
    model = install(Model(1 * MIB, block=4096, max_transfer=4))
    handed: list[object] = []

    def recording(handle: object, cdb: bytes, **arguments: Any) -> RawScsiResponse:
        handed.append(arguments["data"])
        answer: RawScsiResponse = model.transfer(handle, cdb, **arguments)
        return answer

    buffer = bytearray(8192)
    payload = bytes(range(256)) * 32
    with virtdisk.open(image, read_only=False) as disk:
        disk.read(0, 1)
        model.commands.clear()
        monkeypatch.setattr(scsi, "RawSCSIVirtualDisk", recording)
        assert disk.readinto(4096, buffer) == 8192
        assert disk.write(3 * 4096, payload) == 8192
        assert model.commands == [(scsi.READ_16, 1, 2), (scsi.WRITE_16, 3, 2)]
        assert handed[0] is buffer and handed[1] is payload
        assert buffer == model.data[4096:3 * 4096]
        assert model.data[3 * 4096:5 * 4096] == payload
        # Past the target's maximum transfer: split, each command a slice.
        large = bytearray(6 * 4096)
        assert disk.readinto(0, large) == 6 * 4096
        assert [count for opcode, _, count in model.commands[2:]] == [4, 2]
        assert all(isinstance(data, memoryview) and data.obj is large for data in handed[2:])
        assert large == model.data[:6 * 4096]


def test_the_short_path_retries_and_raises_as_the_general_one(install: Any,
                                                              image: Path) -> None:
    model = install(Model(1 * MIB, bad_blocks=frozenset({16})))
    with virtdisk.open(image) as disk:
        disk.read(0, 1)
        model.unit_attentions = 2
        buffer = bytearray(4096)
        assert disk.readinto(4096, buffer) == 4096
        assert buffer == model.data[4096:8192]
        with pytest.raises(MediumError, match="at offset 8192") as caught:
            disk.readinto(8192, bytearray(4096))
        assert caught.value.offset == 8192


def test_a_short_transfer_on_the_short_path_is_an_error(install: Any, image: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = install(Model(1 * MIB))

    def short(handle: object, cdb: bytes, **arguments: Any) -> RawScsiResponse:
        answer: RawScsiResponse = model.transfer(handle, cdb, **arguments)
        if cdb[0] == scsi.READ_16:
            return RawScsiResponse(answer.scsi_status, answer.sense_info,
                                   answer.data_transfer_length - 512)
        return answer

    with virtdisk.open(image) as disk:
        disk.read(0, 1)
        monkeypatch.setattr(scsi, "RawSCSIVirtualDisk", short)
        with pytest.raises(ImageIOError, match="READ\\(16\\) at offset 4096 moved 3584 of "
                                               "4096 bytes"):
            disk.readinto(4096, bytearray(4096))


def test_readinto_takes_any_writable_buffer(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image) as disk:
        words = array.array("H", bytes(1000))
        assert disk.readinto(3, words) == 1000
        assert words.tobytes() == model.data[3:1003]
        with pytest.raises(TypeError, match="writable"):
            disk.readinto(0, b"read-only")
        with pytest.raises(TypeError, match="buffer protocol"):
            disk.readinto(0, "text")  # type: ignore[arg-type]


def test_attached_once_no_local_host_and_detached_at_close(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image) as disk:
        disk.read(0, 10)
        disk.read(5000, 10)
        disk.content().read(7)
    assert model.attaches == [AttachVirtualDiskFlag.NO_LOCAL_HOST
                              | AttachVirtualDiskFlag.READ_ONLY]
    assert model.detaches == 1
    assert model.count(scsi.SERVICE_ACTION_IN_16) == 1
    assert model.count(scsi.INQUIRY) == 1
    assert model.count(scsi.SYNCHRONIZE_CACHE_10) == 0   # read-only: nothing to flush


def test_a_writable_disk_attaches_writable_and_flushes_at_close(install: Any,
                                                                image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image, read_only=False) as disk:
        disk.write(0, b"x")
        disk.flush()
    assert model.attaches == [AttachVirtualDiskFlag.NO_LOCAL_HOST]
    assert model.count(scsi.SYNCHRONIZE_CACHE_10) == 2
    assert model.detaches == 1


def test_no_content_access_no_attach(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image, read_only=False) as disk:
        disk.flush()
        assert disk.virtual_size == 8 * MIB
    assert model.attaches == [] and model.commands == []


def test_offset_past_the_end_is_a_value_error_naming_the_size(install: Any,
                                                              image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image, read_only=False) as disk:
        before = len(model.commands)
        with pytest.raises(ValueError, match=f"size is {MIB} bytes"):
            disk.read(MIB + 1, 1)
        with pytest.raises(ValueError, match=f"size is {MIB} bytes"):
            disk.readinto(MIB + 512, bytearray(1))
        with pytest.raises(ValueError, match=f"past the end of the disk, whose size is {MIB}"):
            disk.write(MIB - 1, b"ab")
        with pytest.raises(ValueError, match="must not be negative"):
            disk.read(-1, 1)
        with pytest.raises(ValueError, match="must not be negative"):
            disk.read(0, -1)
        with pytest.raises(TypeError):
            disk.read(0.5, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="past the end"):
            disk.unmap(0, MIB + 512)
        assert [command for command in model.commands[before:]
                if command[0] in (scsi.READ_16, scsi.WRITE_16, scsi.UNMAP)] == []


def test_write_on_a_read_only_disk_is_access_denied(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image) as disk:
        with pytest.raises(AccessDeniedError, match="read-only") as caught:
            disk.write(0, b"x")
        assert isinstance(caught.value, PermissionError)
        with pytest.raises(AccessDeniedError):
            disk.unmap(0, 512)
        stream = disk.content()
        assert not stream.writable()
        with pytest.raises(io.UnsupportedOperation):
            stream.write(b"x")
    assert model.count(scsi.WRITE_16) == 0


def test_a_write_protected_target_is_access_denied(install: Any, image: Path) -> None:
    install(Model(1 * MIB, protected=True))
    with virtdisk.open(image, read_only=False) as disk:
        with pytest.raises(AccessDeniedError, match="write-protected") as caught:
            disk.write(4096, bytes(4096))
        assert caught.value.filename == str(image)


@pytest.mark.parametrize("block", [512, 4096])
def test_a_medium_error_names_the_failing_offset(install: Any, image: Path,
                                                 block: int) -> None:
    install(Model(1 * MIB, block=block, bad_blocks=frozenset({100})))
    with virtdisk.open(image, read_only=False) as disk:
        assert len(disk.read(0, 100 * block)) == 100 * block
        with pytest.raises(MediumError, match=f"at offset {100 * block}") as caught:
            disk.read(90 * block + 1, 20 * block)
        assert isinstance(caught.value, ImageIOError)
        assert caught.value.offset == 100 * block
        assert caught.value.winerror == virtdisk.errors.ERROR_READ_FAULT
        with pytest.raises(MediumError) as written:
            disk.write(100 * block, bytes(block))
        assert written.value.winerror == virtdisk.errors.ERROR_WRITE_FAULT


def test_unit_attention_is_retried(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image) as disk:
        disk.read(0, 1)
        model.unit_attentions = 2
        assert disk.read(512, 4) == model.data[512:516]


def test_closed_disk(install: Any, image: Path) -> None:
    install(Model(1 * MIB))
    disk = virtdisk.open(image)
    stream = disk.content()
    disk.close()
    for call in (lambda: disk.read(0, 1), lambda: disk.readinto(0, bytearray(1)),
                 lambda: disk.content(), disk.flush, lambda: stream.read(1)):
        with pytest.raises(InvalidHandleError, match="closed"):
            call()


def test_unmap_unmaps_whole_sectors_and_zeroes_the_edges(install: Any, image: Path) -> None:
    model = install(Model(4 * MIB, block=4096, max_unmap=3, max_descriptors=2))
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.unmap_reads_zeros()
        mirror = bytearray(model.data)
        disk.unmap(100, 10 * 4096)
        mirror[100:100 + 10 * 4096] = bytes(10 * 4096)
        assert model.data == mirror
        unmapped = [(lba, count) for opcode, lba, count in model.commands
                    if opcode == scsi.UNMAP]
        assert unmapped == [(1, 3), (4, 3), (7, 3)]
        disk.unmap(5, 10)
        mirror[5:15] = bytes(10)
        assert model.data == mirror
        disk.unmap(0, 0)


def test_unmap_on_a_disk_without_provisioning(install: Any, image: Path) -> None:
    install(Model(1 * MIB, thin=False))
    with virtdisk.open(image, read_only=False) as disk:
        with pytest.raises(UnsupportedOperationError, match="does not support unmapping"):
            disk.unmap(0, 4096)


def test_content_is_a_seekable_raw_file(install: Any, image: Path) -> None:
    model = install(Model(1 * MIB))
    with virtdisk.open(image, read_only=False) as disk:
        stream = disk.content()
        assert isinstance(stream, io.RawIOBase)
        assert stream.readable() and stream.writable() and stream.seekable()
        assert stream.seek(10) == 10
        assert stream.read(5) == model.data[10:15]
        assert stream.tell() == 15
        assert stream.seek(-1, io.SEEK_END) == MIB - 1
        assert stream.read(10) == model.data[-1:]
        assert stream.read(10) == b""
        assert stream.seek(2 * MIB) == 2 * MIB
        assert stream.read(1) == b""
        stream.seek(-4, io.SEEK_CUR)
        with pytest.raises(ValueError, match="negative seek"):
            stream.seek(-1)
        stream.seek(3)
        assert stream.write(b"abc") == 3
        assert model.data[3:6] == b"abc"
        with pytest.raises(io.UnsupportedOperation):
            stream.truncate(0)
        with pytest.raises(io.UnsupportedOperation):
            stream.fileno()
        stream.seek(0)
        assert stream.readall() == model.data
        buffered = io.BufferedReader(stream)
        buffered.seek(1000)
        assert buffered.read(3000) == model.data[1000:4000]
        stream.close()
        assert not disk.closed


def test_copyfileobj_and_file_digest(install: Any, image: Path) -> None:
    model = install(Model(3 * MIB + 512))
    with virtdisk.open(image) as disk:
        copy = io.BytesIO()
        shutil.copyfileobj(disk.content(), copy)
        assert copy.getvalue() == model.data
        if sys.version_info >= (3, 11):
            digest = hashlib.file_digest(disk.content(), "sha256")  # type: ignore[arg-type]
            assert digest.hexdigest() == hashlib.sha256(model.data).hexdigest()


def test_tarfile_writes_and_reads_through_the_content(install: Any, image: Path) -> None:
    model = install(Model(2 * MIB))
    files = {"a.txt": b"alpha\n" * 1000, "dir/b.bin": bytes(range(256)) * 300}
    with virtdisk.open(image, read_only=False) as disk:
        with tarfile.open(fileobj=disk.content(), mode="w") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        with tarfile.open(fileobj=disk.content(), mode="r:") as archive:
            names = [member.name for member in archive.getmembers()]
            assert names == list(files)
            for name, data in files.items():
                extracted = archive.extractfile(name)
                assert extracted is not None and extracted.read() == data
    assert model.data.startswith(b"a.txt")


def test_sense_parsing_both_formats() -> None:
    assert scsi.parse_sense(fixed_sense(3, 0x11, 0, 77)) == scsi.Sense(3, 0x11, 0, 77)
    assert scsi.parse_sense(fixed_sense(5, 0x21, 0)) == scsi.Sense(5, 0x21, 0, None)
    descriptor = bytes((0x72, 3, 0x11, 0, 0, 0, 0, 12, 0, 0x0A, 0x80, 0)) + \
        (1234).to_bytes(8, "big")
    assert scsi.parse_sense(descriptor) == scsi.Sense(3, 0x11, 0, 1234)
    assert scsi.parse_sense(b"") is None
    assert scsi.parse_sense(b"\x00" * 18) is None


@pytest.mark.parametrize(("sense", "cls", "text"), [
    (scsi.Sense(5, 0x21, 0), OutOfRangeError, "past the end of the disk (1048576 bytes)"),
    (scsi.Sense(5, 0x20, 0), UnsupportedOperationError, "does not support READ(16)"),
    (scsi.Sense(7, 0x27, 0), AccessDeniedError, "write-protected"),
    (scsi.Sense(7, 0x27, 7), DiskFullError, "no space"),
    (scsi.Sense(3, 0x11, 0, 8), MediumError, "at offset 4096: medium error, unrecovered"),
    (scsi.Sense(4, 0x44, 0), ImageIOError, "hardware error, internal target failure"),
])
def test_sense_maps_to_its_kind(sense: scsi.Sense, cls: type, text: str) -> None:
    error = scsi.sense_error(sense, scsi.CHECK_CONDITION, command="READ(16)",
                             function="VirtualDisk.read", path="d.vhdx", offset=0, length=512,
                             capacity=MIB, block_size=512)
    assert type(error) is cls
    assert text in str(error)
    if cls is OutOfRangeError:
        assert isinstance(error, OutOfRangeError) and isinstance(error, ValueError)
        assert error.size == MIB
