"""Long operations in progress: resizing and compacting a disk.

:class:`Operation` is one call of a long VirtDisk operation started with an
OVERLAPPED (ResizeVirtualDisk, ExpandVirtualDisk, ...): ask it for its
:meth:`~Operation.progress`, :meth:`~Operation.wait` for it, stop it with
:meth:`~Operation.cancel` (CancelIoEx; the operation then ends with
ERROR_OPERATION_ABORTED and leaves the disk consistent), get its outcome
with :meth:`~Operation.result` or ``await`` it in an asyncio loop (the
event's descriptor is watched with ``loop.add_reader``; on Windows, whose
events have none, a worker thread waits).

:func:`start_resize`, :func:`start_compact` and the blocking :func:`resize`,
:func:`resize_to_smallest`, :func:`expand` and :func:`compact` are what
:class:`~virtdisk.disk.VirtualDisk`'s methods of the same names call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, overload

from _virtdisk import (
    CancelIoEx,
    CompactVirtualDisk,
    CompactVirtualDiskFlag,
    ExpandVirtualDisk,
    GetVirtualDiskOperationProgress,
    Overlapped,
    ResizeVirtualDisk,
    ResizeVirtualDiskFlag,
)

from .errors import ERROR_IO_PENDING, ElementNotFoundError, error_from_code
from .sizes import parse_size

if TYPE_CHECKING:
    from .disk import VirtualDisk

__all__ = ["Operation", "Progress", "compact", "expand", "resize", "resize_to_smallest",
           "start_compact", "start_resize"]

_SUCCESS: Final = 0
# How often the blocking forms report progress to their callback and look
# for a Ctrl-C.
_PROGRESS_INTERVAL: Final = 0.1


class Progress(NamedTuple):
    """Where an operation stands: `status` is ERROR_IO_PENDING (997) while it
    runs and its final Win32 code afterwards; `current` and `total` are
    bytes, `current` never above `total`."""

    status: int
    current: int
    total: int


class Operation:
    """A long operation running on a disk's handle (see the module)."""

    __slots__ = ("_disk", "_overlapped", "_function")

    def __init__(self, disk: VirtualDisk, overlapped: Overlapped, function: str) -> None:
        self._disk = disk
        self._overlapped = overlapped
        self._function = function

    def progress(self) -> Progress:
        """GetVirtualDiskOperationProgress: answers while the operation runs
        and after it ended, until the disk is closed."""
        status, current, total = GetVirtualDiskOperationProgress(self._disk.handle, self._overlapped)
        return Progress(int(status), int(current), int(total))

    def done(self) -> bool:
        """Whether the operation has ended (successfully or not)."""
        return self._overlapped.wait(0)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the operation ends; False when it still runs after
        `timeout` seconds (None: no limit)."""
        return self._overlapped.wait(timeout)

    def cancel(self) -> bool:
        """Asks the operation to stop (CancelIoEx) and returns at once: True
        when it was running, False when it had ended already."""
        try:
            CancelIoEx(self._disk.handle, self._overlapped)
        except ElementNotFoundError:
            return False
        return True

    def result(self, timeout: float | None = None) -> None:
        """Waits for the end and raises the :class:`VirtualDiskError` of a
        failure (:class:`OperationAbortedError` after a cancel);
        TimeoutError when the operation still runs after `timeout`."""
        if not self.wait(timeout):
            raise TimeoutError(f"{self._function} still running after {timeout} s")
        status = self.progress().status
        if status != _SUCCESS:
            raise error_from_code(status, self._function, self._disk.path)

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            descriptor = self._overlapped.fileno()
        except OSError:
            await loop.run_in_executor(None, self._overlapped.wait)
        else:
            ended: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(descriptor, readable)
            try:
                if not self.done():
                    await ended
            finally:
                loop.remove_reader(descriptor)
        self.result(0)

    def __repr__(self) -> str:
        status, current, total = self.progress()
        state = "running" if status == ERROR_IO_PENDING else f"ended with {status}"
        return f"<Operation {self._function} on {self._disk.path!r} {state} {current}/{total}>"


ProgressCallback = Callable[[int, int], object]


def _size(size: int | str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"size must be an int or a size string, not {type(size).__name__}")
    return parse_size(size)


_Kind = TypeVar("_Kind", bound="Operation")


@overload
def start(disk: VirtualDisk, function: str, call: Callable[[Overlapped], None]) -> Operation: ...
@overload
def start(disk: VirtualDisk, function: str, call: Callable[[Overlapped], None],
          kind: type[_Kind]) -> _Kind: ...
def start(disk: VirtualDisk, function: str, call: Callable[[Overlapped], None],
          kind: type[Operation] = Operation) -> Operation:
    """Runs `call` with a new OVERLAPPED and returns its operation, an
    instance of `kind` (for the modules of the other long operations)."""
    # Content access holds a SCSI target that knows the old capacity: it
    # is flushed and let go, and attaches again when next used.
    disk._release_target(function)
    overlapped = Overlapped()
    call(overlapped)
    return kind(disk, overlapped, function)


def start_resize(disk: VirtualDisk, size: int | str, *, allow_unsafe: bool = False,
                 to_smallest: bool = False) -> Operation:
    """Starts ResizeVirtualDisk and returns its :class:`Operation`."""
    flags = ResizeVirtualDiskFlag.NONE
    if to_smallest:
        flags |= ResizeVirtualDiskFlag.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE
        new_size = 0
    else:
        new_size = _size(size)
    if allow_unsafe:
        flags |= ResizeVirtualDiskFlag.ALLOW_UNSAFE_VIRTUAL_SIZE
    return start(disk, "ResizeVirtualDisk",
                  lambda overlapped: ResizeVirtualDisk(disk.handle, new_size, flags,
                                                       overlapped=overlapped))


def finish(operation: Operation, progress: ProgressCallback | None) -> None:
    """Waits for `operation`, reporting progress; Ctrl-C (or any exception
    from `progress`) cancels it and waits for its end before going on, so
    that the disk is left as the cancel leaves it."""
    try:
        # Waiting in short steps lets the interpreter see a Ctrl-C, which a
        # wait for ever in the extension would hold until the end.
        while not operation.wait(_PROGRESS_INTERVAL):
            if progress is not None:
                _, current, total = operation.progress()
                progress(current, total)
        if progress is not None:
            _, current, total = operation.progress()
            progress(current, total)
    except BaseException:
        operation.cancel()
        operation.wait()
        raise
    operation.result()


def resize(disk: VirtualDisk, size: int | str, *, allow_unsafe: bool = False,
           progress: ProgressCallback | None = None) -> None:
    """Resizes and waits; `progress(current, total)` is called while it runs
    and once at the end."""
    finish(start_resize(disk, size, allow_unsafe=allow_unsafe), progress)


def resize_to_smallest(disk: VirtualDisk, *, progress: ProgressCallback | None = None) -> None:
    """Shrinks to the end of the last partition and waits."""
    finish(start_resize(disk, 0, to_smallest=True), progress)


def expand(disk: VirtualDisk, size: int | str, *, progress: ProgressCallback | None = None) -> None:
    """ExpandVirtualDisk (grow only) and waits."""
    new_size = _size(size)
    operation = start(disk, "ExpandVirtualDisk",
                       lambda overlapped: ExpandVirtualDisk(disk.handle, new_size,
                                                            overlapped=overlapped))
    finish(operation, progress)


def start_compact(disk: VirtualDisk, *, zero_scan: bool = True, move_blocks: bool = True) -> Operation:
    """Starts CompactVirtualDisk (V1) and returns its :class:`Operation`;
    `zero_scan` False is NO_ZERO_SCAN, `move_blocks` False NO_BLOCK_MOVES."""
    flags = CompactVirtualDiskFlag.NONE
    if not zero_scan:
        flags |= CompactVirtualDiskFlag.NO_ZERO_SCAN
    if not move_blocks:
        flags |= CompactVirtualDiskFlag.NO_BLOCK_MOVES
    return start(disk, "CompactVirtualDisk",
                  lambda overlapped: CompactVirtualDisk(disk.handle, flags, overlapped=overlapped))


def compact(disk: VirtualDisk, *, zero_scan: bool = True, move_blocks: bool = True,
            progress: ProgressCallback | None = None) -> None:
    """Compacts and waits; `progress(current, total)` is called while it
    runs and once at the end."""
    finish(start_compact(disk, zero_scan=zero_scan, move_blocks=move_blocks), progress)
