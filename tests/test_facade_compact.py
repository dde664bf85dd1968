"""VirtualDisk.compact and start_compact (virtdisk.operation), the
asynchronous model of CompactVirtualDisk (progress in bytes, CancelIoEx),
the attach rules, and the ``virtdisk compact`` command, on qemu-made VHDX
images checked with qemu-img against a raw mirror.

A cancel is observed at the engine's test hold: while
VIRTDISK_TEST_OPERATION_HOLD names a file that exists, the operation waits
before it changes anything (api/operation.h), so nothing here depends on
time."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from virtdisk.cli import main
from virtdisk.errors import (
    ERROR_IO_PENDING,
    ERROR_OPERATION_ABORTED,
    AccessDeniedError,
    InvalidStateError,
    OperationAbortedError,
)
from virtdisk.sizes import format_size_with_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_compact import _clean, _identical, _make  # noqa: E402

MiB = 1 << 20

pytestmark = [
    pytest.mark.skipif(vd.PLATFORM != "engine", reason="the engine's test hold"),
    pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                       reason="needs qemu-img and qemu-io"),
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_compact_reports_progress_in_bytes(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    seen: list[tuple[int, int]] = []
    with virtdisk.open(image, read_only=False) as disk:
        disk.compact(progress=lambda current, total: seen.append((current, total)))
    assert seen, "the callback is called at least once, at the end"
    assert all(0 <= current <= total for current, total in seen)
    current, total = seen[-1]
    # The scan covers the whole virtual size; the moves add to it.
    assert current == total >= 64 * MiB
    assert image.stat().st_size <= before - 40 * MiB
    assert _identical(image, raw)
    assert _clean(image)


def test_cancel_at_the_hold_ends_with_995_and_the_file_untouched(tmp_path: Path,
                                                                 operation_hold: Path) -> None:
    image, raw = _make(tmp_path)
    pristine = digest(image)
    with virtdisk.open(image, read_only=False) as disk:
        operation = disk.start_compact()
        assert operation.progress().status == ERROR_IO_PENDING
        assert operation.cancel()
        with pytest.raises(OperationAbortedError):
            operation.result()
        assert operation.progress().status == ERROR_OPERATION_ABORTED
        assert not operation.cancel()
    assert digest(image) == pristine
    assert _identical(image, raw)
    operation_hold.unlink()
    before = image.stat().st_size
    with virtdisk.open(image, read_only=False) as disk:
        disk.compact()
    assert image.stat().st_size < before
    assert _identical(image, raw)
    assert _clean(image)


def test_cancel_through_the_extension_answers_995(tmp_path: Path, operation_hold: Path) -> None:
    image, raw = _make(tmp_path)
    with virtdisk.open(image, read_only=False) as disk:
        overlapped = vd.Overlapped()
        vd.CompactVirtualDisk(disk.handle, vd.COMPACT_VIRTUAL_DISK_FLAG_NONE, overlapped=overlapped)
        vd.CancelIoEx(disk.handle, overlapped)
        assert overlapped.wait(None)
        progress = vd.GetVirtualDiskOperationProgress(disk.handle, overlapped)
        assert progress.operation_status == ERROR_OPERATION_ABORTED
        assert progress.current_value <= progress.completion_value
    assert _identical(image, raw)


def test_start_compact_can_be_awaited(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size

    async def run() -> None:
        with virtdisk.open(image, read_only=False) as disk:
            await disk.start_compact(move_blocks=False)

    asyncio.run(run())
    after = image.stat()
    assert after.st_size == before
    assert _identical(image, raw)
    assert _clean(image)


def test_read_only_disk_is_refused_by_the_facade(tmp_path: Path) -> None:
    image, _ = _make(tmp_path)
    with virtdisk.open(image) as disk, pytest.raises(AccessDeniedError):
        disk.start_compact()


def test_attached_read_write_is_refused_read_only_is_compacted(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    with virtdisk.open(image, read_only=False) as disk:
        vd.AttachVirtualDisk(disk.handle, vd.AttachVirtualDiskFlag.NO_LOCAL_HOST)
        with pytest.raises(InvalidStateError):
            vd.CompactVirtualDisk(disk.handle, vd.COMPACT_VIRTUAL_DISK_FLAG_NONE)
        vd.DetachVirtualDisk(disk.handle, 0)
        assert image.stat().st_size == before
        vd.AttachVirtualDisk(disk.handle, vd.AttachVirtualDiskFlag.NO_LOCAL_HOST
                             | vd.AttachVirtualDiskFlag.READ_ONLY)
        vd.CompactVirtualDisk(disk.handle, vd.COMPACT_VIRTUAL_DISK_FLAG_NONE)
        vd.DetachVirtualDisk(disk.handle, 0)
    assert image.stat().st_size < before
    assert _identical(image, raw)
    assert _clean(image)


def test_content_access_does_not_block_the_facade(tmp_path: Path) -> None:
    # Content access attaches in process, read-write; compact lets it go.
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.read(0, 4096) == raw.read_bytes()[:4096]
        disk.compact()
        assert disk.read(0, 4096) == raw.read_bytes()[:4096]
    assert image.stat().st_size < before
    assert _identical(image, raw)


def test_cli_compact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    assert main(["compact", str(image), "--no-block-moves"]) == 0
    assert image.stat().st_size == before
    assert main(["compact", str(image)]) == 0
    printed = capsys.readouterr().out.splitlines()
    after = image.stat().st_size
    assert after < before
    # One line per run: the size before, then after.
    assert printed[0].startswith(f"{format_size_with_bytes(before)} -> ")
    assert printed[1] == f"{format_size_with_bytes(before)} -> {format_size_with_bytes(after)}"
    assert _identical(image, raw)
    assert _clean(image)


def test_cli_compact_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixed = tmp_path / "fixed.vhd"
    with virtdisk.create(fixed, 4 * MiB, type="fixed"):
        pass
    assert main(["compact", str(fixed)]) == 1
    assert "ERROR_VHD_INVALID_TYPE" in capsys.readouterr().err
    assert main(["compact", str(tmp_path / "missing.vhdx")]) == 1
    assert "virtdisk compact: error:" in capsys.readouterr().err
    assert main(["compact"]) == 2
