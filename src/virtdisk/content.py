"""A disk's content at byte offsets, and as a file object.

:class:`~virtdisk.VirtualDisk`'s ``read``, ``readinto``, ``write``,
``unmap`` and ``flush`` come here with byte offsets; this module turns
them into whole logical blocks for :class:`virtdisk.scsi.BlockTarget`:

* the aligned middle of a request moves straight between the caller's
  buffer and the target, one memoryview slice per command, without a copy;
  a request of whole sectors in one command, the common case, hands a
  bytearray or bytes to the target as it is, with no view made of it;
* an unaligned edge is a read-modify-write of the sector it falls in (a
  bounce buffer of one sector, or of the whole request when it is small),
  so any byte range can be read and written;
* requests are checked against the disk's size first, so a request past
  the end is a ValueError that names the size and nothing is sent.

:class:`DiskContent` is the content as an :class:`io.RawIOBase`, so that
:func:`shutil.copyfileobj`, :func:`hashlib.file_digest`, :mod:`tarfile` and
:class:`io.BufferedReader` take a disk like a file.

Unaligned writes read and rewrite their edge sectors: two threads writing
different bytes of one sector at once can lose one of the writes, as with
any block device.  Serialise such writes, or write whole sectors.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Buffer

    from .disk import VirtualDisk
    from .scsi import BlockTarget, _Blocks

__all__ = ["DiskContent", "read_into", "write_from", "unmap_range", "checked_offset"]

# Below this many bytes an unaligned request moves through one bounce
# buffer in one command instead of head, middle and tail commands.
_SMALL: Final = 64 * 1024
_READALL_CHUNK: Final = 8 * 1024 * 1024


def checked_offset(offset: object, size: int, name: str = "offset") -> int:
    """`offset` as an int in 0..`size`, or the TypeError / ValueError that
    says what is wrong."""
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"{name} must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"{name} must not be negative, not {offset}")
    if offset > size:
        raise ValueError(f"{name} {offset} is past the end of the disk, whose size is "
                         f"{size} bytes")
    return offset


def byte_view(buffer: object, writable: bool, name: str) -> memoryview:
    """A one-dimensional unsigned-byte view of `buffer`, without a copy."""
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must support the buffer protocol (bytes, bytearray, "
                        f"memoryview, array, mmap), not {type(buffer).__name__}") from None
    if writable and view.readonly:
        view.release()
        raise TypeError(f"{name} must be writable (a bytearray, memoryview of one, array or "
                        f"mmap), not a read-only {type(buffer).__name__}")
    if not view.c_contiguous:
        view.release()
        raise BufferError(f"{name} must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _read_partly(target: BlockTarget, offset: int, view: memoryview, name: str) -> int:
    """:func:`read_into` of a request that ends past the disk or covers
    part of a sector, into a byte view."""
    size = target.block_size
    length = min(len(view), target.capacity - offset)
    if length <= 0:
        return 0
    end = offset + length
    if offset % size == 0 and end % size == 0:
        target.read_blocks(offset // size, view[:length], name)
        return length
    first = offset // size
    last = -(-end // size)                      # one past the last block touched
    if length <= _SMALL or last - first <= 2:
        bounce = bytearray((last - first) * size)
        target.read_blocks(first, bounce, name)
        skip = offset - first * size
        view[:length] = bounce[skip:skip + length]
        return length
    done = 0
    if offset % size:
        # Head: the tail of the first sector.
        bounce = bytearray(size)
        target.read_blocks(first, bounce, name)
        skip = offset % size
        done = size - skip
        view[:done] = bounce[skip:]
    middle_end = end - end % size
    if middle_end > offset + done:
        target.read_blocks((offset + done) // size, view[done:middle_end - offset], name)
        done = middle_end - offset
    if done < length:
        bounce = bytearray(size)
        target.read_blocks(middle_end // size, bounce, name)
        view[done:length] = bounce[:length - done]
    return length


def _write_partly(target: BlockTarget, offset: int, view: memoryview, name: str) -> int:
    """:func:`write_from` of a request that covers part of a sector, from a
    byte view."""
    size = target.block_size
    length = len(view)
    if length == 0:
        return 0
    end = offset + length
    first = offset // size
    last = -(-end // size)
    if length <= _SMALL or last - first <= 2:
        bounce = bytearray((last - first) * size)
        bounce_view = memoryview(bounce)
        _read_edges(target, first, last, offset, end, bounce_view, name)
        skip = offset - first * size
        bounce_view[skip:skip + length] = view
        target.write_blocks(first, bounce, name)
        return length
    done = 0
    if offset % size:
        bounce = bytearray(size)
        target.read_blocks(first, bounce, name)
        skip = offset % size
        done = size - skip
        bounce[skip:] = view[:done]
        target.write_blocks(first, bounce, name)
    middle_end = end - end % size
    if middle_end > offset + done:
        target.write_blocks((offset + done) // size, view[done:middle_end - offset], name)
        done = middle_end - offset
    if done < length:
        bounce = bytearray(size)
        target.read_blocks(middle_end // size, bounce, name)
        bounce[:length - done] = view[done:]
        target.write_blocks(middle_end // size, bounce, name)
    return length


def _whole_blocks_first(data_in: bool, partly: Callable[[BlockTarget, int, memoryview, str], int],
                        doc: str) -> Callable[[BlockTarget, int, _Blocks, str], int]:
    """:func:`read_into` (`data_in`) or :func:`write_from`: a request of
    whole blocks within the disk, the common case, goes to the target as
    it is, without a view or a slice; any other request goes to `partly`
    with a byte view of the buffer."""

    def move(target: BlockTarget, offset: int, buffer: _Blocks, name: str) -> int:
        size = target.block_size
        length = len(buffer)
        if not offset % size and not length % size and offset + length <= target.capacity:
            if not length:
                return 0
            if data_in:
                target.read_blocks(offset // size, buffer, name)
            else:
                target.write_blocks(offset // size, buffer, name)
            return length
        if type(buffer) is memoryview:
            return partly(target, offset, buffer, name)
        with memoryview(buffer) as view:
            return partly(target, offset, view, name)

    move.__doc__ = doc
    return move


read_into = _whole_blocks_first(True, _read_partly, """Fills `buffer` (a :func:`byte_view`,
    or a bytearray) with the content from byte `offset` on (`offset` was
    checked against the size); stops at the end of the disk and returns
    how many bytes it read.""")
write_from = _whole_blocks_first(False, _write_partly, """Writes `buffer` (a
    :func:`byte_view`, bytes or a bytearray) at byte `offset` (the caller
    checked that it fits), reading and rewriting the sectors an unaligned
    edge falls in; returns ``len(buffer)``.""")


def _read_edges(target: BlockTarget, first: int, last: int, offset: int, end: int,
                bounce: memoryview, name: str) -> None:
    """Reads into `bounce` (blocks `first` to `last`) the edge sectors a
    write from `offset` to `end` only partly covers: the sectors between
    are overwritten whole and need no read."""
    size = target.block_size
    if last - first <= 2:
        if offset % size or end % size:
            target.read_blocks(first, bounce, name)
        return
    if offset % size:
        target.read_blocks(first, bounce[:size], name)
    if end % size:
        target.read_blocks(last - 1, bounce[-size:], name)


def unmap_range(target: BlockTarget, offset: int, length: int, name: str) -> None:
    """Unmaps the whole sectors in `offset`..`offset + length` and writes
    zeros over the partial sectors at its edges (what a hole punched in a
    file does)."""
    size = target.block_size
    end = offset + length
    first = -(-offset // size)
    last = end // size
    if first >= last:
        _zero(target, offset, end, name)
        return
    _zero(target, offset, first * size, name)
    target.unmap_blocks(first, last - first, name)
    _zero(target, last * size, end, name)


def _zero(target: BlockTarget, start: int, end: int, name: str) -> None:
    if end > start:
        write_from(target, start, memoryview(bytes(end - start)), name)


class DiskContent(io.RawIOBase):
    """The content of a :class:`~virtdisk.VirtualDisk` as a raw binary
    file: readable, writable when the disk was opened for writing,
    seekable.  Get one from :meth:`VirtualDisk.content`.

    ``readinto`` hands the caller's buffer to the target without a copy;
    ``write`` writes all it is given or raises (a write past the end of the
    disk is a ValueError and writes nothing), so it never returns a short
    count.  The size is fixed: ``truncate`` raises
    :class:`io.UnsupportedOperation`, as it does ``fileno``.  Closing the
    stream leaves the disk open; closing the disk closes its content
    streams' access (their calls raise InvalidHandleError).
    """

    def __init__(self, disk: VirtualDisk) -> None:
        super().__init__()
        self._disk = disk
        self._position = 0
        self._size = disk._block_target("content").capacity

    @property
    def disk(self) -> VirtualDisk:
        """The disk this stream reads and writes."""
        return self._disk

    @property
    def size(self) -> int:
        """The disk's size in bytes."""
        return self._size

    def readable(self) -> bool:
        self._checkClosed()
        return True

    def writable(self) -> bool:
        self._checkClosed()
        return self._disk.read_only is not True

    def seekable(self) -> bool:
        self._checkClosed()
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._checkClosed()
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"whence must be os.SEEK_SET, SEEK_CUR or SEEK_END, not {whence!r}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def tell(self) -> int:
        self._checkClosed()
        return self._position

    def truncate(self, size: int | None = None, /) -> int:
        raise io.UnsupportedOperation("a virtual disk's size is fixed: use resize, not "
                                      "truncate")

    def readinto(self, buffer: Buffer, /) -> int:
        self._checkClosed()
        if self._position >= self._size:
            return 0
        count = self._disk.readinto(self._position, buffer)
        self._position += count
        return count

    def readall(self) -> bytes:
        """The rest of the content, read in large commands (the default
        reads 8 KiB at a time)."""
        self._checkClosed()
        remaining = max(0, self._size - self._position)
        result = bytearray(remaining)
        view = memoryview(result)
        done = 0
        while done < remaining:
            done += self.readinto(view[done:done + _READALL_CHUNK])
        return bytes(result)

    def write(self, data: Buffer, /) -> int:
        self._checkClosed()
        if self._disk.read_only is True:
            raise io.UnsupportedOperation(
                "the disk is open read-only; open it with read_only=False to write")
        count = self._disk.write(self._position, data)
        self._position += count
        return count

    def flush(self) -> None:
        """Flushes the disk's content to its image file (SYNCHRONIZE
        CACHE), if the stream and the disk are open."""
        if not self.closed and not self._disk.closed and self._disk.read_only is not True:
            self._disk.flush()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"position={self._position}"
        return f"<DiskContent of {self._disk.path!r} size={self._size} {state}>"
