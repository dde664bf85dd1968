"""VirtualDisk.resize, resize_to_smallest, expand and start_resize
(virtdisk.operation), and the ``virtdisk resize`` command; sizes as qemu-img
reads them."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_resize import qemu_size
from virtdisk.cli import main
from virtdisk.errors import (
    ERROR_IO_PENDING,
    ERROR_OPERATION_ABORTED,
    InvalidParameterError,
    InvalidStateError,
    OperationAbortedError,
    ResizeError,
    UnsupportedOperationError,
)
from virtdisk.operation import Progress

MiB = 1 << 20

pytestmark = pytest.mark.skipif(vd.PLATFORM != "engine", reason="content access and the test hold")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.vhdx"
    with virtdisk.create(path, 64 * MiB) as disk:
        disk.write(0, b"\x11" * 4096)
        disk.write(64 * MiB - 4096, b"\x22" * 4096)
    return path


@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "hold"
    path.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(path))
    yield path


def test_resize_grows_and_content_access_sees_the_new_size(image: Path) -> None:
    calls: list[tuple[int, int]] = []
    with virtdisk.open(image, read_only=False) as disk:
        assert disk.read(0, 4096) == b"\x11" * 4096      # attaches for content access
        disk.resize("100MiB", progress=lambda current, total: calls.append((current, total)))
        assert disk.virtual_size == 100 * MiB
        assert disk.read(64 * MiB - 4096, 4096) == b"\x22" * 4096
        assert disk.read(100 * MiB - 4096, 4096) == bytes(4096)
        disk.write(100 * MiB - 512, b"\x33" * 512)
    assert calls[-1] == (100 * MiB, 100 * MiB)
    assert all(current <= total for current, total in calls)
    assert qemu_size(image) == 100 * MiB
    with virtdisk.open(image) as disk:
        assert disk.read(100 * MiB - 512, 512) == b"\x33" * 512


def test_shrink_needs_allow_unsafe_and_expand_only_grows(image: Path) -> None:
    with virtdisk.open(image, read_only=False) as disk:
        with pytest.raises(ResizeError):
            disk.resize(32 * MiB)
        disk.resize(32 * MiB, allow_unsafe=True)
        assert disk.virtual_size == 32 * MiB
        with pytest.raises(InvalidParameterError):
            disk.expand(16 * MiB)
        disk.expand("48MiB")
        assert disk.virtual_size == 48 * MiB
        with pytest.raises(TypeError):
            disk.resize(1.5)  # type: ignore[arg-type]
    assert qemu_size(image) == 48 * MiB


def test_resize_to_smallest_follows_the_partition_table(image: Path) -> None:
    sector = bytearray(512)
    sector[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 20 * 2048)
    sector[510:512] = b"\x55\xaa"
    with virtdisk.open(image, read_only=False) as disk:
        disk.write(0, bytes(sector))
        disk.resize_to_smallest()
        assert disk.virtual_size == 21 * MiB
    assert qemu_size(image) == 21 * MiB


def test_vhd_does_not_shrink(tmp_path: Path) -> None:
    path = tmp_path / "disk.vhd"
    with virtdisk.create(path, 64 * MiB) as disk:
        with pytest.raises(UnsupportedOperationError):
            disk.resize(32 * MiB, allow_unsafe=True)
        disk.resize(65 * MiB)
        assert disk.virtual_size == 65 * MiB


def test_operation_cancel_and_result(image: Path, hold: Path) -> None:
    with virtdisk.open(image, read_only=False) as disk:
        operation = disk.start_resize(128 * MiB)
        while operation.progress().total != 128 * MiB:
            pass   # the worker checks the size first, then waits at the hold
        assert operation.progress() == Progress(ERROR_IO_PENDING, 0, 128 * MiB)
        assert not operation.done()
        assert operation.cancel()
        assert operation.wait()
        assert operation.done()
        with pytest.raises(OperationAbortedError):
            operation.result()
        assert operation.progress().status == ERROR_OPERATION_ABORTED
        assert not operation.cancel()
        assert disk.virtual_size == 64 * MiB


def test_operation_awaited(image: Path, hold: Path) -> None:
    async def main_coroutine() -> int:
        with virtdisk.open(image, read_only=False) as disk:
            operation = disk.start_resize("96MiB")
            asyncio.get_running_loop().call_soon(hold.unlink)
            await operation
            return disk.virtual_size

    assert asyncio.run(main_coroutine()) == 96 * MiB


def test_cli_resize(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resize", str(image), "--size", "80MiB"]) == 0
    assert str(80 * MiB) in capsys.readouterr().out
    assert qemu_size(image) == 80 * MiB
    assert main(["resize", str(image), "--size", "40MiB"]) == 1
    assert "ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA" in capsys.readouterr().err
    assert main(["resize", str(image), "--size", "40MiB", "--allow-unsafe"]) == 0
    assert main(["resize", str(image), "--to-smallest"]) == 1
    assert main(["resize", str(image), "--size", "lots"]) == 2
    assert main(["resize", str(image)]) == 2
    capsys.readouterr()
    assert qemu_size(image) == 40 * MiB


def test_disk_attached_as_a_loop_device_is_refused(tmp_path: Path) -> None:
    """ExpandVirtualDisk "requires that the virtual disk be detached": a
    loop device maps the file at its old size."""
    from test_attach import _loop_capable

    reason = _loop_capable()
    if reason is not None:
        pytest.skip(reason)
    path = tmp_path / "fixed.vhd"
    with virtdisk.create(path, 16 * MiB, type="fixed"):
        pass
    with virtdisk.open(path, read_only=False) as disk:
        with disk.attach():
            with pytest.raises(InvalidStateError):
                disk.resize(32 * MiB)
        disk.resize(32 * MiB)
        assert disk.virtual_size == 32 * MiB
