"""Threads sharing the extension: opening, querying and closing one handle at
once, and closing it while others query it.  On the GIL build the calls
interleave where they release the GIL; on a free-threaded build (the 3.14t
and 3.15t wheels) they run truly in parallel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

import _virtdisk
from virtdisk import errors

THREADS = 8
ROUNDS = 200
SIZE: Final = _virtdisk.GetVirtualDiskInfoVersion.SIZE
UNKNOWN = _virtdisk.VirtualStorageType(
    _virtdisk.VirtualStorageTypeDevice.UNKNOWN, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 MiB dynamic VHDX made by qemu-img."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    path = tmp_path_factory.mktemp("threads") / "shared.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "64M"], check=True)
    return path


@pytest.fixture(autouse=True)
def fast_switching() -> object:
    """Makes the GIL build switch threads as often as it can, so that the
    interleavings the test is after happen within its few rounds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_together(work: Callable[[int], None], count: int = THREADS) -> None:
    """Runs work(index) in `count` threads released at once; re-raises the
    first failure."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def body(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as failure:  # noqa: BLE001 - handed to the main thread
            failures.append(failure)

    threads = [threading.Thread(target=body, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def open_shared(image: Path) -> _virtdisk.VirtualDiskHandle:
    return _virtdisk.OpenVirtualDisk(UNKNOWN, image, 0, 0, 2, read_only=True)


def test_threads_open_query_and_close_their_own_handles(image: Path) -> None:
    before = _virtdisk.live_handle_count()

    def work(_: int) -> None:
        for _ in range(ROUNDS):
            with open_shared(image) as handle:
                assert _virtdisk.GetVirtualDiskInformation(handle, SIZE).virtual_size == 64 << 20

    run_together(work)
    assert _virtdisk.live_handle_count() == before


def test_threads_query_one_handle_at_once(image: Path) -> None:
    with open_shared(image) as handle:
        def work(_: int) -> None:
            for _ in range(ROUNDS):
                size = _virtdisk.GetVirtualDiskInformation(handle, SIZE)
                assert size.virtual_size == 64 << 20 and size.sector_size == 512

        run_together(work)


def test_many_threads_close_one_handle_once(image: Path) -> None:
    """Every thread closes the same handles: each handle is closed exactly
    once (the counter falls by one per handle, never more)."""
    before = _virtdisk.live_handle_count()
    for _ in range(ROUNDS // 4):
        handle = open_shared(image)
        assert _virtdisk.live_handle_count() == before + 1
        run_together(lambda _: handle.close())
        assert handle.closed
        assert _virtdisk.live_handle_count() == before
        with pytest.raises(errors.InvalidHandleError):
            handle.detach_handle()


def test_close_while_other_threads_query(image: Path) -> None:
    """Queries racing with the close answer or raise InvalidHandleError;
    none crashes, none gets a wrong answer, and once the close is seen every
    later query fails."""
    before = _virtdisk.live_handle_count()
    for _ in range(ROUNDS // 10):
        handle = open_shared(image)

        def work(index: int) -> None:
            if index == 0:
                handle.close()
                return
            closed_seen = False
            for _ in range(ROUNDS):
                try:
                    size = _virtdisk.GetVirtualDiskInformation(handle, SIZE)
                except errors.InvalidHandleError as error:
                    assert error.winerror == errors.ERROR_INVALID_HANDLE
                    closed_seen = True
                else:
                    assert not closed_seen, "a query succeeded after one saw the handle closed"
                    assert size.virtual_size == 64 << 20

        run_together(work)
        assert handle.closed
    assert _virtdisk.live_handle_count() == before


def test_detach_and_close_race_for_one_owner(image: Path) -> None:
    """Of threads detaching and closing one handle, exactly one detach can
    win, and only when no close came first; the raw value it returns is then
    the caller's to close."""
    before = _virtdisk.live_handle_count()
    for _ in range(ROUNDS // 10):
        handle = open_shared(image)
        raw: list[int] = []

        def work(index: int) -> None:
            if index % 2:
                handle.close()
                return
            try:
                raw.append(handle.detach_handle())
            except errors.InvalidHandleError:
                pass

        run_together(work)
        assert len(raw) <= 1
        for value in raw:
            _virtdisk.CloseHandle(value)
        assert _virtdisk.live_handle_count() == before


def test_overlapped_objects_shared_and_dropped(image: Path) -> None:
    """Overlapped objects made, waited on by several threads and dropped
    while other threads do the same."""
    def work(_: int) -> None:
        for _ in range(ROUNDS):
            overlapped = _virtdisk.Overlapped()
            assert overlapped.wait(0)
            del overlapped

    run_together(work)
    shared = _virtdisk.Overlapped()

    def wait_on_shared(_: int) -> None:
        for _ in range(ROUNDS):
            assert shared.wait(0)

    run_together(wait_on_shared)


def test_module_declares_free_threading_support() -> None:
    """On a free-threaded build importing the module left the GIL off: the
    module says it is safe without it."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is None or "t" not in sys.abiflags:
        pytest.skip("not a free-threaded CPython")
    assert not is_gil_enabled()
