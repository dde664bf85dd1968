"""The asynchronous model through the extension, with a resize as the long
operation: an OVERLAPPED start, GetVirtualDiskOperationProgress while it
runs and after, CancelIoEx (995 at the end, the event set, the image as it
was), close cancelling and waiting, a second operation refused, and the
event's descriptor in an asyncio loop.

A resize takes no time worth observing, so the engine's test hold keeps it
at its first step: while VIRTDISK_TEST_OPERATION_HOLD names a file that
exists, the operation waits there (api/operation.h).  Every observation is
made at that known point or after the end; nothing here depends on time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from virtdisk.errors import (
    ERROR_BUSY,
    ERROR_IO_PENDING,
    ERROR_OPERATION_ABORTED,
    DiskInUseError,
    ElementNotFoundError,
    InvalidHandleError,
    OperationAbortedError,
)

ERROR_SUCCESS = 0
MiB = 1 << 20
OLD, NEW = 64 * MiB, 128 * MiB
Info = vd.GetVirtualDiskInfoVersion

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the engine's test hold")


@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The hold file, present: operations wait at their first step until
    it is removed or they are cancelled."""
    path = tmp_path / "hold"
    path.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(path))
    yield path


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[virtdisk.VirtualDisk]:
    path = tmp_path / "disk.vhdx"
    with virtdisk.create(path, OLD):
        pass
    with virtdisk.open(path, read_only=False) as opened:
        yield opened


def size_of(disk: virtdisk.VirtualDisk) -> int:
    return int(vd.GetVirtualDiskInformation(disk.handle, Info.SIZE).virtual_size)


def start(disk: virtdisk.VirtualDisk) -> vd.Overlapped:
    """A resize to NEW started with an OVERLAPPED and come as far as the
    hold: its worker first checks the size (CompletionValue is 0 until
    then), then waits at the hold for as long as the file exists."""
    overlapped = vd.Overlapped()
    vd.ResizeVirtualDisk(disk.handle, NEW, overlapped=overlapped)
    while vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).completion_value != NEW:
        pass
    return overlapped


def test_cancel_ends_the_operation_with_995(disk: virtdisk.VirtualDisk, hold: Path) -> None:
    overlapped = start(disk)
    assert not overlapped.wait(0)
    assert tuple(vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)) == (ERROR_IO_PENDING, 0, NEW)
    vd.CancelIoEx(disk.handle, overlapped)
    assert overlapped.wait()
    progress = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
    assert progress.operation_status == ERROR_OPERATION_ABORTED
    assert progress.current_value <= progress.completion_value
    assert size_of(disk) == OLD
    with pytest.raises(ElementNotFoundError):
        vd.CancelIoEx(disk.handle, overlapped)


def test_progress_answers_after_completion(disk: virtdisk.VirtualDisk, hold: Path) -> None:
    overlapped = start(disk)
    assert vd.GetVirtualDiskOperationProgress(disk.handle, overlapped).operation_status == ERROR_IO_PENDING
    hold.unlink()
    assert overlapped.wait()
    for _ in range(2):
        assert tuple(vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)) == (ERROR_SUCCESS, NEW, NEW)
    assert size_of(disk) == NEW


def test_close_cancels_and_waits(disk: virtdisk.VirtualDisk, hold: Path) -> None:
    overlapped = start(disk)
    path = disk.path
    disk.close()
    # The event is set by the time close returns: the operation is over.
    assert overlapped.wait(0)
    with virtdisk.open(path) as again:
        assert size_of(again) == OLD


def test_second_operation_is_busy(disk: virtdisk.VirtualDisk, hold: Path) -> None:
    overlapped = start(disk)
    with pytest.raises(DiskInUseError) as error:
        vd.ResizeVirtualDisk(disk.handle, 2 * NEW)
    assert error.value.winerror == ERROR_BUSY
    other = vd.Overlapped()
    with pytest.raises(DiskInUseError):
        vd.ExpandVirtualDisk(disk.handle, 2 * NEW, overlapped=other)
    # The refused start left its OVERLAPPED's event set: nothing runs with it.
    assert other.wait(0)
    vd.CancelIoEx(disk.handle, None)
    assert overlapped.wait()
    assert size_of(disk) == OLD


def test_synchronous_operation_cancelled_from_another_thread(disk: virtdisk.VirtualDisk,
                                                             hold: Path) -> None:
    outcome: list[BaseException | None] = []

    def resize() -> None:
        try:
            vd.ResizeVirtualDisk(disk.handle, NEW)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)
        else:
            outcome.append(None)

    worker = threading.Thread(target=resize)
    worker.start()
    # Until the operation has started there is nothing to cancel.
    while True:
        try:
            vd.CancelIoEx(disk.handle)
        except ElementNotFoundError:
            continue
        break
    worker.join()
    assert isinstance(outcome[0], OperationAbortedError)
    assert outcome[0].winerror == ERROR_OPERATION_ABORTED
    assert size_of(disk) == OLD


def test_event_descriptor_in_an_asyncio_loop(disk: virtdisk.VirtualDisk, hold: Path) -> None:
    async def main() -> tuple[int, ...]:
        loop = asyncio.get_running_loop()
        overlapped = start(disk)
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(overlapped.fileno(), readable)
        try:
            loop.call_soon(hold.unlink)
            await done
        finally:
            loop.remove_reader(overlapped.fileno())
        return tuple(vd.GetVirtualDiskOperationProgress(disk.handle, overlapped))

    assert asyncio.run(main()) == (ERROR_SUCCESS, NEW, NEW)


def test_cancel_without_an_operation_and_on_a_bad_handle(disk: virtdisk.VirtualDisk) -> None:
    with pytest.raises(ElementNotFoundError):
        vd.CancelIoEx(disk.handle, vd.Overlapped())
    with pytest.raises(ElementNotFoundError):
        vd.CancelIoEx(disk.handle)
    with pytest.raises(InvalidHandleError):
        vd.CancelIoEx(0x7FFF0001)
    fresh = vd.Overlapped()
    assert fresh.wait(0) and fresh.fileno() >= 0
