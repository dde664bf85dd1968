"""A thousand short long operations leave nothing behind: no thread
(threading.active_count and the kernel's /proc/self/task), no file
descriptor (/proc/self/fd: an OVERLAPPED's event is one on Linux) and no
handle (the extension's live-handle counter).

Each operation is one that ends at once: a resize to the size the disk has
("the current size: success, nothing written") and a compact of an empty
dynamic VHDX, through the facade (which opens, starts with an OVERLAPPED,
waits and closes) and through the extension on one handle, with a new
Overlapped each time and without one."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

import _virtdisk as vd
import virtdisk

COUNT = 1000
SIZE = 16 << 20

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="counts threads and descriptors through /proc")


class Resources(NamedTuple):
    python_threads: int
    tasks: int
    descriptors: frozenset[str]
    handles: int


def resources() -> Resources:
    return Resources(threading.active_count(), len(os.listdir("/proc/self/task")),
                     frozenset(os.listdir("/proc/self/fd")), vd.live_handle_count())


def assert_nothing_left(run: Callable[[], None]) -> None:
    """Runs `run` once to warm up (imports, lazily made objects), then
    COUNT times, and compares what the process holds before and after."""
    run()
    before = resources()
    for _ in range(COUNT):
        run()
    after = resources()
    assert after.python_threads == before.python_threads
    assert after.tasks == before.tasks
    assert after.descriptors == before.descriptors, (
        f"descriptors left: {sorted(after.descriptors - before.descriptors)}")
    assert after.handles == before.handles


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "small.vhdx"
    virtdisk.create(path, SIZE).close()
    return path


def test_facade_start_resize_to_the_same_size(image: Path) -> None:
    def run() -> None:
        with virtdisk.open(image, read_only=False) as disk:
            operation = disk.start_resize(SIZE)
            operation.result()
            assert operation.progress().status == 0

    assert_nothing_left(run)


def test_facade_compact_of_an_empty_disk(image: Path) -> None:
    def run() -> None:
        with virtdisk.open(image, read_only=False) as disk:
            disk.compact(progress=lambda done, total: None)

    assert_nothing_left(run)


def test_extension_operations_on_one_handle(image: Path) -> None:
    unknown = vd.VirtualStorageType(0, vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
    handle = vd.OpenVirtualDisk(unknown, str(image), 0, 0, 2)
    try:
        def run() -> None:
            overlapped = vd.Overlapped()
            vd.ResizeVirtualDisk(handle, SIZE, overlapped=overlapped)
            assert overlapped.wait(30)
            status, _, _ = vd.GetVirtualDiskOperationProgress(handle, overlapped)
            assert status == 0
            compacting = vd.Overlapped()
            vd.CompactVirtualDisk(handle, overlapped=compacting)
            assert compacting.wait(30)
            vd.CompactVirtualDisk(handle)
            vd.ResizeVirtualDisk(handle, SIZE)

        run()
        # The engine may keep the last operation's thread until the next
        # operation or the close joins it: one at most, never one per call.
        before = resources()
        for _ in range(COUNT):
            run()
        during = resources()
        assert during.tasks <= before.tasks + 1
        assert during.python_threads == before.python_threads
        assert during.descriptors == before.descriptors
        assert during.handles == before.handles
    finally:
        handle.close()
    closed = resources()
    assert closed.python_threads == before.python_threads
    assert closed.tasks <= before.tasks
    assert closed.handles == before.handles - 1
