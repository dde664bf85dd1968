"""Converting between raw disk images (or block devices), VHD and VHDX.

:func:`convert` copies a disk's content into a new file of another format
or type:

* VHD or VHDX to VHD or VHDX (either way, fixed or dynamic): the engine's
  own copy, CreateVirtualDisk with a ``SourcePath``, which on the portable
  engine moves each run of data the source's files hold into the new
  image's blocks in the kernel (copy_file_range) and leaves the blocks the
  source holds nothing in unallocated;
* a raw image or block device to VHD or VHDX: an empty disk of the raw
  source's size is created and the source written into it, in large
  aligned chunks, with all-zero pieces skipped, so they stay unallocated in
  a dynamic disk (a new disk reads as zeros, fixed or dynamic).  On the
  portable engine the engine writes a raw file in
  (``_virtdisk.copy_from_file``): the data of a dynamic disk's block past
  its first 4 KiB goes straight to the block's place in the new file,
  through a buffer into space reserved beforehand, and on tmpfs (either
  type) with copy_file_range; a block device is CreateVirtualDisk's
  ``SourcePath``; on Windows the content path (:meth:`VirtualDisk.write`)
  writes it;
* any image (ISO too) to a raw file: on the portable engine, the engine
  writes it (``_virtdisk.copy_to_file``), copying each run of data an
  image file holds straight from that file in the kernel (copy_file_range,
  as ``cp`` does) and leaving runs the disk does not hold as holes, or for
  ``type="fixed"`` as space reserved beforehand (posix_fallocate);
  elsewhere (Windows) the content is read through
  :meth:`VirtualDisk.readinto`, all-zero pieces becoming holes unless
  ``type="fixed"``.

A raw source must fit the target's rules, checked before anything is
created: a size that is a whole number of 512-byte sectors (and of
`sector_size`), at most 2040 GiB for VHD and 64 TiB for VHDX, and for a
fixed VHD a whole number of MiB (what Azure requires of an uploaded VHD).

The destination is never overwritten, and a conversion that fails or is
interrupted (KeyboardInterrupt included) removes what it wrote.

Like ``cp`` and ``qemu-img convert``, a conversion leaves its destination
in the system's page cache for the kernel to write back, unless asked to be
`durable`: a new file is written whole before anyone reads it, so the
engine's flushes keep their order but do not wait for the disk (on the
portable engine; Windows keeps its own behaviour).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Final, Literal

from _virtdisk import VirtualStorageTypeDevice, copy_from_file, copy_to_file, skip_sync

from .create import MAXIMUM_SIZES, _path_text, create
from .detect import detect_storage_type, parse_storage_type
from .disk import VirtualDisk
from .disk import open as open_disk
from .errors import (
    ERROR_FILE_EXISTS, ERROR_HANDLE_EOF, ImageExistsError, UnsupportedOperationError,
    VirtualDiskError)
from .sizes import format_size

__all__ = ["convert", "CONVERT_FORMATS", "Progress"]

Progress = Callable[[int, int], object]
"""``progress(done_bytes, total_bytes)``, called as a conversion advances."""

CONVERT_FORMATS: Final = ("vhd", "vhdx", "raw")
"""The values ``format=`` accepts."""

_VHD: Final = VirtualStorageTypeDevice.VHD
_VHDX: Final = VirtualStorageTypeDevice.VHDX
_ISO: Final = VirtualStorageTypeDevice.ISO
_RAW_EXTENSIONS: Final = frozenset({".img", ".raw", ".bin", ".dd"})
_FORMAT_NAMES: Final = {_VHD: "vhd", _VHDX: "vhdx"}

_MIB: Final = 1 << 20
_SECTOR: Final = 512
# Into an image, content moves in pieces this large (or the disk's block,
# when smaller): a piece read from the source is still in the CPU's cache
# when it is written, where a whole 32 MiB VHDX block went out to memory
# between the two copies (256 MiB raw -> dynamic VHDX, ext4: 113 ms in
# block-sized chunks, 89 ms in 512 KiB pieces).  Allocation stays by
# block: a block is written, and so allocated, when any of its pieces holds
# data, and a new block reads zeros where no piece was written.
_PIECE: Final = 512 * 1024
# A raw destination's holes need not match any block size: 1 MiB pieces
# keep small runs of data from filling large holes, and fit the cache too.
_RAW_PIECE: Final = _MIB
# Copies the engine makes take this much per call: progress, Ctrl-C and a
# source that ends early are seen between calls.  Into a raw file
# (copy_to_file) 64 MiB, about 25 ms at page-cache speed: each call looks
# for the holes of the image file from where it starts, which on tmpfs
# walks the file's pages up to the next hole (256 MiB VHDX -> raw on tmpfs:
# 92 ms in 64 MiB calls, 114 ms in 8 MiB ones).  From a raw file
# (copy_from_file) 8 MiB, a few ms: its calls cost nothing of the kind.
_TO_FILE_CHUNK: Final = 64 * _MIB
_FROM_FILE_CHUNK: Final = 8 * _MIB

_Format = Literal["vhd", "vhdx", "raw"]


def convert(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    format: str | VirtualStorageTypeDevice | None = None,  # noqa: A002 - like create()
    type: Literal["dynamic", "fixed"] = "dynamic",  # noqa: A002 - like create()
    block_size: int | str | None = None,
    sector_size: int | None = None,
    progress: Progress | None = None,
    durable: bool = False,
) -> None:
    """Copies the content of `source` into a new image at `destination`.

    `source` is a VHD, VHDX or ISO image (told by extension, else by
    signature) or anything else readable: a raw image file or a block
    device, whose bytes are the disk's content.  `destination` must not
    exist; it is never overwritten.

    `format` is ``"vhd"``, ``"vhdx"`` or ``"raw"``; None takes it from the
    destination's extension (``.vhd``, ``.avhd``, ``.vhdx``, ``.avhdx``;
    ``.img``, ``.raw``, ``.bin``, ``.dd`` for raw).  `type` is
    ``"dynamic"`` (the default: unallocated blocks for runs of zeros; for a
    raw destination, a sparse file) or ``"fixed"``.  `block_size` and
    `sector_size` apply to a VHD or VHDX destination as in
    :func:`virtdisk.create`.  `progress`, if given, is called with
    ``(done_bytes, total_bytes)`` at the start, after each chunk, and at
    the end.  `durable` True makes the destination reach stable storage
    before the call returns (fsync), as a flush of an open disk does; by
    default it is left to the system's write-back, as ``cp`` leaves it,
    whatever the source.

    Writing a VHD or VHDX from a raw source or an ISO image goes through
    the content path, which on Windows attaches the new disk and needs
    administrator rights.

    Raises TypeError or ValueError for bad arguments and for a raw source
    that breaks the destination format's rules, naming the rule, before
    anything is created; :class:`ImageExistsError` (a FileExistsError) when
    `destination` exists; FileNotFoundError when `source` does not; then
    the errors of :func:`virtdisk.open`, :func:`virtdisk.create` and the
    content methods.  On any failure, and on KeyboardInterrupt, the
    destination is removed.
    """
    source_name = _path_text(source, "source")
    destination_name = _path_text(destination, "destination")
    target = _target_format(destination_name, format)
    if type not in ("dynamic", "fixed"):
        raise ValueError(f"type must be 'dynamic' or 'fixed', not {type!r}")
    if target == "raw" and (block_size is not None or sector_size is not None):
        raise ValueError("block_size and sector_size apply to a VHD or VHDX destination, not "
                         "to a raw image")
    if not isinstance(durable, bool):
        raise TypeError(f"durable must be a bool, not {durable.__class__.__name__}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {progress.__class__.__name__}")
    if os.path.lexists(destination_name):
        error = ImageExistsError(ERROR_FILE_EXISTS, "convert", destination_name)
        error.strerror = "the destination exists; convert never overwrites a file"
        raise error
    kind = _source_kind(source_name)

    if target == "raw":
        if kind is None:
            _raw_to_raw(source_name, destination_name, type == "dynamic", durable, progress)
        else:
            with open_disk(source_name) as disk:
                _image_to_raw(disk, destination_name, type == "dynamic", durable, progress)
        return
    device = _VHD if target == "vhd" else _VHDX
    if kind in (_VHD, _VHDX):
        _image_to_image(source_name, destination_name, device, type, block_size, sector_size,
                        durable, progress)
    elif kind is _ISO:
        with open_disk(source_name) as disk:
            size = disk.virtual_size
            _check_size(size, device, type, sector_size, source_name, raw=False)
            _content_to_image(disk.readinto, size, destination_name, device, type, block_size,
                              sector_size, durable, progress)
    else:
        with _RawSource(source_name) as raw:
            _check_size(raw.size, device, type, sector_size, source_name, raw=True)
            if raw.is_device:
                # CreateVirtualDisk takes a block device as SourcePath (as
                # Windows takes \\.\PhysicalDriveN) and copies it in the
                # provider, skipping zeros itself.
                raw.close()
                _provider_copy(source_name, raw.size, destination_name, device, type,
                               block_size, sector_size, durable, progress)
            else:
                _content_to_image(raw.readinto, raw.size, destination_name, device, type,
                                  block_size, sector_size, durable, progress,
                                  raw.data_ranges(), raw.fileno())


# --------------------------------------------------------------------------- checks

def _target_format(destination: str, value: object) -> _Format:
    """The destination's format: `value` if given, else its extension's."""
    if value is None:
        extension = os.path.splitext(destination)[1].lower()
        if extension in _RAW_EXTENSIONS:
            return "raw"
        if extension in (".vhd", ".avhd"):
            return "vhd"
        if extension in (".vhdx", ".avhdx"):
            return "vhdx"
        shown = repr(extension) if extension else "no extension"
        raise ValueError(
            f"cannot tell the destination format from {shown} in {destination!r}: name it "
            f".vhd, .vhdx or .img (raw), or pass format='vhd', 'vhdx' or 'raw'")
    if value == "raw":
        return "raw"
    try:
        device = parse_storage_type(value)
    except (TypeError, ValueError):
        device = None
    if device not in _FORMAT_NAMES:
        raise ValueError(f"format must be 'vhd', 'vhdx' or 'raw', not {value!r}")
    return "vhd" if device is _VHD else "vhdx"


def _source_kind(source: str) -> VirtualStorageTypeDevice | None:
    """The source's image format, or None for raw content.  A missing
    source raises FileNotFoundError here, before anything is created."""
    os.stat(source)
    return detect_storage_type(source)


def _check_size(size: int, device: VirtualStorageTypeDevice, disk_type: str,
                sector_size: int | None, source: str, *, raw: bool) -> None:
    """Raises ValueError when content of `size` bytes cannot become a disk
    of `device` and `disk_type`."""
    shown = f"{size} bytes ({format_size(size)})"
    what = "the raw image" if raw else "the source"
    if size == 0:
        raise ValueError(f"{what} {source!r} is empty: a disk needs at least one sector")
    unit = max(_SECTOR, sector_size or 0)
    if size % unit:
        padded = size + unit - size % unit
        raise ValueError(
            f"{what} {source!r} has {shown}, not a whole number of {unit}-byte sectors; "
            f"pad it to {padded} bytes (e.g. truncate -s {padded})")
    limit = MAXIMUM_SIZES[device]
    name = _FORMAT_NAMES[device].upper()
    if size > limit:
        raise ValueError(f"{what} {source!r} has {shown}, more than the {name} limit of "
                         f"{format_size(limit)} ({limit} bytes)")
    if raw and device is _VHD and disk_type == "fixed" and size % _MIB:
        padded = size + _MIB - size % _MIB
        raise ValueError(
            f"a fixed VHD made from a raw image must have a whole number of MiB (what Azure "
            f"requires of an uploaded VHD), and {source!r} has {shown}; pad it to {padded} "
            f"bytes (e.g. truncate -s {padded}) first")


# --------------------------------------------------------------------------- copies

def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _image_to_image(source: str, destination: str, device: VirtualStorageTypeDevice,
                    disk_type: str, block_size: int | str | None, sector_size: int | None,
                    durable: bool, progress: Progress | None) -> None:
    """A VHD or VHDX (its whole chain's content) into a new image."""
    with open_disk(source) as disk:
        size = disk.virtual_size
    _check_size(size, device, disk_type, sector_size, source, raw=False)
    _provider_copy(source, size, destination, device, disk_type, block_size, sector_size,
                   durable, progress)


def _provider_copy(source: str, size: int, destination: str, device: VirtualStorageTypeDevice,
                   disk_type: str, block_size: int | str | None, sector_size: int | None,
                   durable: bool, progress: Progress | None) -> None:
    """The provider's copy: CreateVirtualDisk with a SourcePath, which copies
    the source in one call and writes only the blocks that hold data.  It
    leaves the new file to the system's write-back (the engine's creators
    never wait for the disk); `durable` syncs it once it is closed."""
    _report(progress, 0, size)
    made = False
    try:
        with create(destination, format=device, type="fixed" if disk_type == "fixed"
                    else "dynamic", source=source, block_size=block_size,
                    sector_size=sector_size):
            made = True
        if durable:
            _sync_file(destination)
        _report(progress, size, size)
    except BaseException:
        if made:
            _remove(destination)
        raise


def _content_to_image(read: Callable[[int, memoryview], int], size: int, destination: str,
                      device: VirtualStorageTypeDevice, disk_type: str,
                      block_size: int | str | None, sector_size: int | None, durable: bool,
                      progress: Progress | None,
                      ranges: list[tuple[int, int]] | None = None,
                      source_fd: int | None = None) -> None:
    """Creates an empty disk of `size` bytes and writes into it what `read`
    (``read(offset, view) -> count``) gives, skipping all-zero pieces and,
    when `ranges` is given, everything outside those (start, end) ranges.
    With `source_fd`, the file those bytes are read from, the engine moves
    them itself where it can (``copy_from_file``)."""
    _report(progress, 0, size)
    disk = create(destination, size, format=device, type="fixed" if disk_type == "fixed"
                  else "dynamic", block_size=block_size, sector_size=sector_size)
    try:
        with disk:
            if not durable:
                _leave_to_write_back(disk)
            # A new disk reads as zeros, so a piece of zeros is left out; a
            # piece lies within one block, so a block of zeros stays
            # unallocated in a dynamic disk.
            piece = min(_PIECE, disk.block_size or _PIECE)
            spans = [(0, size)] if ranges is None else _widened(ranges, piece, size)
            if source_fd is None or not _engine_fill(disk, source_fd, size, spans, piece,
                                                     progress):
                _copy(read, size, disk.write, piece, piece, progress, ranges=ranges)
        if durable:
            # The engine's writes leave no flush to the facade's close, and
            # a fixed disk's close has nothing of its own to commit.
            _sync_file(destination)
    except BaseException:
        _remove(destination)
        raise


def _engine_fill(disk: VirtualDisk, source_fd: int, size: int, spans: list[tuple[int, int]],
                 piece: int, progress: Progress | None) -> bool:
    """Writes the `spans` of the file at `source_fd` into the new `disk`
    in the engine, all-zero pieces left out, in steps of _FROM_FILE_CHUNK (a
    multiple of `piece`, which the spans start at) for progress and
    Ctrl-C.  False, with nothing written, where the platform has no such
    copy (Windows)."""
    def step(offset: int, length: int) -> None:
        try:
            copy_from_file(disk.handle, source_fd, offset, length, piece)
        except VirtualDiskError as error:
            if error.winerror != ERROR_HANDLE_EOF:
                raise
            ended = os.fstat(source_fd).st_size
            raise EOFError(f"the source ended at {ended} bytes, before its size of "
                           f"{size}") from None

    if not _engine_steps(spans, _FROM_FILE_CHUNK, step, size, progress):
        return False
    _report(progress, size, size)
    return True


def _engine_steps(spans: list[tuple[int, int]], chunk: int, step: Callable[[int, int], None],
                  size: int, progress: Progress | None) -> bool:
    """Calls ``step(offset, length)`` over the `spans` in pieces of at most
    `chunk` bytes, reporting progress after each, so that Ctrl-C and
    progress are seen between the engine's calls.  False, with nothing
    done, when the first call answers that the platform has no such copy
    (Windows); the same answer later is raised."""
    first = True
    for span_start, span_end in spans:
        offset = span_start
        while offset < span_end:
            length = min(chunk, span_end - offset)
            try:
                step(offset, length)
            except UnsupportedOperationError:
                if first:
                    return False
                raise
            first = False
            offset += length
            _report(progress, offset, size)
    return True


def _sync_file(path: str) -> None:
    """Waits until the file at `path` is on stable storage."""
    with open(path, "rb+", buffering=0) as file:
        os.fsync(file.fileno())


def _leave_to_write_back(disk: VirtualDisk) -> None:
    """Makes the new `disk`'s flushes (the one at its close, and those the
    engine runs when its write caches fill) keep their order but skip the
    wait for the disk.  Windows has no such switch and keeps its own."""
    try:
        skip_sync(disk.handle)
    except UnsupportedOperationError:
        pass


def _image_to_raw(disk: VirtualDisk, destination: str, sparse: bool, durable: bool,
                  progress: Progress | None) -> None:
    size = disk.virtual_size
    _report(progress, 0, size)
    with _RawDestination(destination, size, sparse, durable) as raw:
        if not _engine_copy(disk, raw, size, progress):
            _copy(disk.readinto, size, raw.write, _RAW_PIECE, _RAW_PIECE, progress,
                  skip_zeros=sparse)


def _engine_copy(disk: VirtualDisk, raw: _RawDestination, size: int,
                 progress: Progress | None) -> bool:
    """Copies the content of `disk` into the `raw` destination in the
    engine: runs the image files hold go from file to file in the kernel,
    runs the disk holds nothing in are not written (holes of a sparse
    destination; a fixed one has all its space reserved first, reading
    zeros).  False, with nothing written, where the platform has no such
    copy (Windows) or cannot reserve the space."""
    raw.size_now()
    if not raw.sparse and not raw.reserve():
        return False
    return _engine_steps([(0, size)], _TO_FILE_CHUNK,
                         lambda offset, length: copy_to_file(disk.handle, offset, length,
                                                             raw.fileno()),
                         size, progress)


def _raw_to_raw(source: str, destination: str, sparse: bool, durable: bool,
                progress: Progress | None) -> None:
    with _RawSource(source) as raw_source:
        size = raw_source.size
        _report(progress, 0, size)
        with _RawDestination(destination, size, sparse, durable) as raw:
            _copy(raw_source.readinto, size, raw.write, _RAW_PIECE, _RAW_PIECE, progress,
                  skip_zeros=sparse, ranges=raw_source.data_ranges() if sparse else None)


def _copy(read: Callable[[int, memoryview], int], size: int,
          write: Callable[[int, memoryview], int], piece: int, chunk: int,
          progress: Progress | None, *, skip_zeros: bool = True,
          ranges: list[tuple[int, int]] | None = None) -> None:
    """Copies `size` bytes from `read` to `write`, `chunk` bytes at a time
    through one buffer; with `skip_zeros`, runs of all-zero `piece`-sized
    pieces (aligned to `piece`) are not written.  `ranges`, sorted (start,
    end) pairs, limits the copy to them (with `skip_zeros` only: the rest
    reads as zeros); they are widened to whole pieces."""
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    zeros = bytes(piece)
    spans = [(0, size)] if ranges is None or not skip_zeros else _widened(ranges, piece, size)
    for span_start, span_end in spans:
        offset = span_start
        while offset < span_end:
            length = min(chunk, span_end - offset)
            _fill(read, offset, view[:length], size)
            if not skip_zeros:
                write(offset, view[:length])
            else:
                _write_data(buffer, view, length, offset, write, piece, zeros)
            offset += length
            _report(progress, offset, size)
    if not spans or spans[-1][1] != size:
        _report(progress, size, size)


def _widened(ranges: list[tuple[int, int]], piece: int, size: int) -> list[tuple[int, int]]:
    """`ranges` widened to whole `piece`s (pieces stay aligned to the
    disk's blocks) and merged where they then touch."""
    spans: list[tuple[int, int]] = []
    for start, end in ranges:
        start -= start % piece
        end = min(size, end + (-end) % piece)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        elif start < end:
            spans.append((start, end))
    return spans


def _fill(read: Callable[[int, memoryview], int], offset: int, view: memoryview,
          size: int) -> None:
    """Reads exactly ``len(view)`` bytes at `offset`, or raises EOFError."""
    filled = 0
    while filled < len(view):
        count = read(offset + filled, view[filled:])
        if count <= 0:
            raise EOFError(f"the source ended at {offset + filled} bytes, before its size of "
                           f"{size}")
        filled += count


def _write_data(buffer: bytearray, view: memoryview, length: int, offset: int,
                write: Callable[[int, memoryview], int], piece: int, zeros: bytes) -> None:
    """Writes the first `length` bytes of `buffer` (read from `offset`) but
    its all-zero pieces, each run of data pieces in one call."""
    run_start = -1
    for start in range(0, length, piece):
        end = min(start + piece, length)
        # bytearray.startswith compares in place (memcmp), no copy; a full
        # slice of bytes is the object itself.
        zero = buffer.startswith(zeros if end - start == piece else zeros[:end - start],
                                 start, end)
        if zero and run_start >= 0:
            write(offset + run_start, view[run_start:start])
            run_start = -1
        elif not zero and run_start < 0:
            run_start = start
    if run_start >= 0:
        write(offset + run_start, view[run_start:length])


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class _RawSource:
    """A raw image file or block device, read with ``readinto(offset,
    view)``."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by __exit__
        try:
            mode = os.fstat(self._file.fileno()).st_mode
            self.is_device = stat.S_ISBLK(mode)
            if stat.S_ISREG(mode):
                self.size = os.fstat(self._file.fileno()).st_size
            else:
                # A block device: its size is where its end is.
                self.size = self._file.seek(0, os.SEEK_END)
        except BaseException:
            self._file.close()
            raise

    def data_ranges(self) -> list[tuple[int, int]] | None:
        """The (start, end) ranges of a sparse file that may hold data, from
        SEEK_DATA / SEEK_HOLE (the holes between them read as zeros); None
        where the system cannot tell (no SEEK_DATA, a device, a pipe)."""
        seek_data = getattr(os, "SEEK_DATA", None)
        seek_hole = getattr(os, "SEEK_HOLE", None)
        if seek_data is None or seek_hole is None or self.is_device:
            return None
        descriptor = self._file.fileno()
        ranges: list[tuple[int, int]] = []
        position = 0
        try:
            while position < self.size:
                try:
                    start = os.lseek(descriptor, position, seek_data)
                except OSError as error:
                    if error.errno == errno.ENXIO:      # no data after `position`
                        break
                    raise
                end = min(self.size, os.lseek(descriptor, start, seek_hole))
                if start >= end:
                    break
                ranges.append((start, end))
                position = end
        except OSError:
            return None
        return ranges

    def close(self) -> None:
        self._file.close()

    def fileno(self) -> int:
        return self._file.fileno()

    def readinto(self, offset: int, view: memoryview) -> int:
        # seek + readinto rather than os.preadv, which Windows lacks; the
        # chunks are large enough that the extra call does not show.
        self._file.seek(offset)
        return self._file.readinto(view) or 0

    def __enter__(self) -> _RawSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


class _RawDestination:
    """A new raw file (never an existing one) of `size` bytes, removed
    again when the block it is used in raises; with `durable`, on stable
    storage when the block ends."""

    def __init__(self, path: str, size: int, sparse: bool, durable: bool) -> None:
        self._path = path
        self._size = size
        self._sparse = sparse
        self._durable = durable
        self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - closed by __exit__

    def fileno(self) -> int:
        return self._file.fileno()

    @property
    def sparse(self) -> bool:
        return self._sparse

    def size_now(self) -> None:
        """Gives the file its final size before it is written (it reads
        zeros where nothing is written then)."""
        self._file.truncate(self._size)

    def reserve(self) -> bool:
        """Allocates the whole file's space now (it still reads zeros), as
        a fixed destination needs; False where the system cannot."""
        allocate = getattr(os, "posix_fallocate", None)
        if allocate is None:
            return False
        try:
            allocate(self._file.fileno(), 0, self._size)
        except OSError as error:
            if error.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                return False
            raise
        return True

    def write(self, offset: int, view: memoryview) -> int:
        self._file.seek(offset)
        done = 0
        while done < len(view):
            done += self._file.write(view[done:]) or 0
        return done

    def __enter__(self) -> _RawDestination:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                # Holes at the end: the file's length is the disk's size.
                self._file.truncate(self._size)
                if self._durable:
                    os.fsync(self._file.fileno())
        finally:
            self._file.close()
            if exc_type is not None:
                _remove(self._path)
