"""The exceptions the extension raises are the ones virtdisk.errors makes.

The extension builds a failing call's exception itself (through OSError's
slots, with the attributes set as one dict) instead of calling
error_from_code; these tests hold the two to the same object, field by
field, for the first failure of a code and for the later ones."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import _virtdisk
from virtdisk import errors

UNKNOWN = _virtdisk.VirtualStorageType(
    _virtdisk.VirtualStorageTypeDevice.UNKNOWN, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
INVALID_MASK = 0x80000000


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a dynamic VHDX made by qemu-img and a file that is
    no image at all."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    directory = tmp_path_factory.mktemp("errors")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(directory / "small.vhdx"),
                    "64M"], check=True)
    (directory / "text.vhdx").write_bytes(b"not a disk\n" * 100)
    return directory


def raised(call: Callable[[], object]) -> errors.VirtualDiskError:
    with pytest.raises(errors.VirtualDiskError) as caught:
        call()
    return caught.value


def assert_same(error: errors.VirtualDiskError, expected: errors.VirtualDiskError) -> None:
    assert type(error) is type(expected)
    assert error.args == expected.args
    assert list(vars(error).items()) == list(vars(expected).items())
    assert (error.errno, error.strerror, error.filename, error.winerror) == (
        expected.errno, expected.strerror, expected.filename, expected.winerror)
    assert (error.function, error.code_name, error.detail) == (
        expected.function, expected.code_name, expected.detail)
    assert str(error) == str(expected)
    assert repr(error) == repr(expected)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert list(vars(copy).items()) == list(vars(error).items())


def failures(images: Path) -> list[tuple[Callable[[], object], int, str, str | None]]:
    """Calls that fail in the engine at once: (call, code, function, path)."""
    small = str(images / "small.vhdx")
    missing = str(images / "missing.vhdx")
    text = str(images / "text.vhdx")
    closed = _virtdisk.OpenVirtualDisk(UNKNOWN, small, 0, 0, 2, read_only=True)
    closed.close()
    return [
        (lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, small, INVALID_MASK, 0, None),
         errors.ERROR_INVALID_PARAMETER, "OpenVirtualDisk", small),
        (lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, missing, 0, 0, 2),
         errors.ERROR_FILE_NOT_FOUND, "OpenVirtualDisk", missing),
        (lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, text, 0, 0, 2),
         errors.ERROR_VIRTDISK_NOT_VIRTUAL_DISK, "OpenVirtualDisk", text),
        (lambda: _virtdisk.GetVirtualDiskInformation(
            closed, _virtdisk.GetVirtualDiskInfoVersion.SIZE),
         errors.ERROR_INVALID_HANDLE, "GetVirtualDiskInformation", small),
    ]


def test_failures_raise_what_error_from_code_makes(images: Path) -> None:
    for call, code, function, path in failures(images):
        for _ in range(3):  # the first failure of a code, then the later ones
            error = raised(call)
            assert error.winerror == code, (function, path, error)
            assert_same(error, errors.error_from_code(code, function, path, error.detail))


def test_a_detail_recorded_by_the_engine_is_carried(images: Path) -> None:
    text = str(images / "text.vhdx")
    error = raised(lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, text, 0, 0, 2))
    assert error.detail == _virtdisk.last_error_detail()
    assert_same(error, errors.error_from_code(error.winerror, "OpenVirtualDisk", text,
                                              error.detail))


def test_errors_stay_independent_objects(images: Path) -> None:
    """Two failures never share an exception or its attribute dict."""
    small = str(images / "small.vhdx")
    first = raised(lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, small, INVALID_MASK, 0, None))
    second = raised(lambda: _virtdisk.OpenVirtualDisk(UNKNOWN, small, INVALID_MASK, 0, None))
    assert first is not second
    first.detail = "changed"
    assert second.detail is None
