"""Tests of virtdisk.errors: the code table, the classes and their behaviour.

The expected numbers are transcribed from the SDK's winerror.h as listed by
golang/sys ``windows/zerrors_windows.go`` (the project's research notes,
virtdisk-api.md section 3), not from the module under test.
"""

from __future__ import annotations

import copy
import errno
import importlib.util
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import virtdisk.errors as errors
from virtdisk.errors import (
    AccessDeniedError,
    CallNotImplementedError,
    ChangeTrackingError,
    CorruptImageError,
    DifferencingChainError,
    DiskFullError,
    DiskInUseError,
    ElementNotFoundError,
    HostFileLimitationError,
    ImageExistsError,
    ImageIOError,
    ImageNotFoundError,
    InsufficientBufferError,
    InvalidHandleError,
    InvalidParameterError,
    InvalidStateError,
    NotAttachedError,
    NotAVirtualDiskError,
    OperationAbortedError,
    ParentAccessDeniedError,
    ParentMismatchError,
    ParentNotFoundError,
    ResizeError,
    SharingViolationError,
    UnsupportedFormatError,
    UnsupportedOperationError,
    VirtualDiskError,
)

REPO = Path(__file__).resolve().parents[1]

# FACILITY_USERMODE_VHD, from the SDK's winerror.h.
VHD_FACILITY_CODES = {
    "ERROR_QUERY_STORAGE_ERROR": 0x803A0001,
    "ERROR_VHD_DRIVE_FOOTER_MISSING": 0xC03A0001,
    "ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH": 0xC03A0002,
    "ERROR_VHD_DRIVE_FOOTER_CORRUPT": 0xC03A0003,
    "ERROR_VHD_FORMAT_UNKNOWN": 0xC03A0004,
    "ERROR_VHD_FORMAT_UNSUPPORTED_VERSION": 0xC03A0005,
    "ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH": 0xC03A0006,
    "ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION": 0xC03A0007,
    "ERROR_VHD_SPARSE_HEADER_CORRUPT": 0xC03A0008,
    "ERROR_VHD_BLOCK_ALLOCATION_FAILURE": 0xC03A0009,
    "ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT": 0xC03A000A,
    "ERROR_VHD_INVALID_BLOCK_SIZE": 0xC03A000B,
    "ERROR_VHD_BITMAP_MISMATCH": 0xC03A000C,
    "ERROR_VHD_PARENT_VHD_NOT_FOUND": 0xC03A000D,
    "ERROR_VHD_CHILD_PARENT_ID_MISMATCH": 0xC03A000E,
    "ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH": 0xC03A000F,
    "ERROR_VHD_METADATA_READ_FAILURE": 0xC03A0010,
    "ERROR_VHD_METADATA_WRITE_FAILURE": 0xC03A0011,
    "ERROR_VHD_INVALID_SIZE": 0xC03A0012,
    "ERROR_VHD_INVALID_FILE_SIZE": 0xC03A0013,
    "ERROR_VIRTDISK_PROVIDER_NOT_FOUND": 0xC03A0014,
    "ERROR_VIRTDISK_NOT_VIRTUAL_DISK": 0xC03A0015,
    "ERROR_VHD_PARENT_VHD_ACCESS_DENIED": 0xC03A0016,
    "ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH": 0xC03A0017,
    "ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED": 0xC03A0018,
    "ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT": 0xC03A0019,
    "ERROR_VIRTUAL_DISK_LIMITATION": 0xC03A001A,
    "ERROR_VHD_INVALID_TYPE": 0xC03A001B,
    "ERROR_VHD_INVALID_STATE": 0xC03A001C,
    "ERROR_VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE": 0xC03A001D,
    "ERROR_VIRTDISK_DISK_ALREADY_OWNED": 0xC03A001E,
    "ERROR_VIRTDISK_DISK_ONLINE_AND_WRITABLE": 0xC03A001F,
    "ERROR_CTLOG_TRACKING_NOT_INITIALIZED": 0xC03A0020,
    "ERROR_CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE": 0xC03A0021,
    "ERROR_CTLOG_VHD_CHANGED_OFFLINE": 0xC03A0022,
    "ERROR_CTLOG_INVALID_TRACKING_STATE": 0xC03A0023,
    "ERROR_CTLOG_INCONSISTENT_TRACKING_FILE": 0xC03A0024,
    "ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA": 0xC03A0025,
    "ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE": 0xC03A0026,
    "ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE": 0xC03A0027,
    "ERROR_VHD_METADATA_FULL": 0xC03A0028,
    "ERROR_VHD_INVALID_CHANGE_TRACKING_ID": 0xC03A0029,
    "ERROR_VHD_CHANGE_TRACKING_DISABLED": 0xC03A002A,
    "ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION": 0xC03A0030,
}

# FACILITY_SHARED_VHDX.  ERROR_VHD_SHARED lives here, not at 0xC03A0014 as
# one hand-typed third-party table has it.
SVHDX_FACILITY_CODES = {
    "ERROR_SVHDX_ERROR_STORED": 0xC05C0000,
    "ERROR_SVHDX_ERROR_NOT_AVAILABLE": 0xC05CFF00,
    "ERROR_SVHDX_UNIT_ATTENTION_AVAILABLE": 0xC05CFF01,
    "ERROR_SVHDX_UNIT_ATTENTION_CAPACITY_DATA_CHANGED": 0xC05CFF02,
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_PREEMPTED": 0xC05CFF03,
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_RELEASED": 0xC05CFF04,
    "ERROR_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED": 0xC05CFF05,
    "ERROR_SVHDX_UNIT_ATTENTION_OPERATING_DEFINITION_CHANGED": 0xC05CFF06,
    "ERROR_SVHDX_RESERVATION_CONFLICT": 0xC05CFF07,
    "ERROR_SVHDX_WRONG_FILE_TYPE": 0xC05CFF08,
    "ERROR_SVHDX_VERSION_MISMATCH": 0xC05CFF09,
    "ERROR_VHD_SHARED": 0xC05CFF0A,
    "ERROR_SVHDX_NO_INITIATOR": 0xC05CFF0B,
    "ERROR_VHDSET_BACKING_STORAGE_NOT_FOUND": 0xC05CFF0C,
}

# System error codes (winerror.h, facility 0) the VirtDisk pages document or
# the project's notes list as met in practice.
SYSTEM_CODES = {
    "ERROR_FILE_NOT_FOUND": 2,
    "ERROR_PATH_NOT_FOUND": 3,
    "ERROR_ACCESS_DENIED": 5,
    "ERROR_INVALID_HANDLE": 6,
    "ERROR_NOT_READY": 21,
    "ERROR_SHARING_VIOLATION": 32,
    "ERROR_NOT_SUPPORTED": 50,
    "ERROR_FILE_EXISTS": 80,
    "ERROR_INVALID_PARAMETER": 87,
    "ERROR_DISK_FULL": 112,
    "ERROR_CALL_NOT_IMPLEMENTED": 120,
    "ERROR_BUSY": 170,
    "ERROR_INSUFFICIENT_BUFFER": 122,
    "ERROR_ALREADY_EXISTS": 183,
    "ERROR_MORE_DATA": 234,
    "ERROR_UNSUPPORTED_COMPRESSION": 618,
    "ERROR_FILE_SYSTEM_LIMITATION": 665,
    "ERROR_OPERATION_ABORTED": 995,
    "ERROR_IO_PENDING": 997,
    "ERROR_NOT_FOUND": 1168,
    "ERROR_PRIVILEGE_NOT_HELD": 1314,
    "ERROR_FILE_CORRUPT": 1392,
    "ERROR_FILE_ENCRYPTED": 6002,
}

EXPECTED_CODES = {**SYSTEM_CODES, **VHD_FACILITY_CODES, **SVHDX_FACILITY_CODES}

# The class each code must become (the module's contract with its users).
EXPECTED_CLASS: dict[str, type[VirtualDiskError]] = {
    "ERROR_FILE_NOT_FOUND": ImageNotFoundError,
    "ERROR_PATH_NOT_FOUND": ImageNotFoundError,
    "ERROR_ACCESS_DENIED": AccessDeniedError,
    "ERROR_INVALID_HANDLE": InvalidHandleError,
    "ERROR_NOT_READY": NotAttachedError,
    "ERROR_SHARING_VIOLATION": SharingViolationError,
    "ERROR_BUSY": DiskInUseError,
    "ERROR_NOT_SUPPORTED": UnsupportedOperationError,
    "ERROR_FILE_EXISTS": ImageExistsError,
    "ERROR_INVALID_PARAMETER": InvalidParameterError,
    "ERROR_DISK_FULL": DiskFullError,
    "ERROR_CALL_NOT_IMPLEMENTED": CallNotImplementedError,
    "ERROR_INSUFFICIENT_BUFFER": InsufficientBufferError,
    "ERROR_ALREADY_EXISTS": ImageExistsError,
    "ERROR_MORE_DATA": InsufficientBufferError,
    "ERROR_UNSUPPORTED_COMPRESSION": HostFileLimitationError,
    "ERROR_FILE_SYSTEM_LIMITATION": HostFileLimitationError,
    "ERROR_OPERATION_ABORTED": OperationAbortedError,
    "ERROR_IO_PENDING": VirtualDiskError,
    "ERROR_NOT_FOUND": ElementNotFoundError,
    "ERROR_PRIVILEGE_NOT_HELD": AccessDeniedError,
    "ERROR_FILE_CORRUPT": CorruptImageError,
    "ERROR_FILE_ENCRYPTED": HostFileLimitationError,
    "ERROR_QUERY_STORAGE_ERROR": VirtualDiskError,
    "ERROR_VHD_DRIVE_FOOTER_MISSING": CorruptImageError,
    "ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH": CorruptImageError,
    "ERROR_VHD_DRIVE_FOOTER_CORRUPT": CorruptImageError,
    "ERROR_VHD_FORMAT_UNKNOWN": UnsupportedFormatError,
    "ERROR_VHD_FORMAT_UNSUPPORTED_VERSION": UnsupportedFormatError,
    "ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH": CorruptImageError,
    "ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION": UnsupportedFormatError,
    "ERROR_VHD_SPARSE_HEADER_CORRUPT": CorruptImageError,
    "ERROR_VHD_BLOCK_ALLOCATION_FAILURE": ImageIOError,
    "ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT": CorruptImageError,
    "ERROR_VHD_INVALID_BLOCK_SIZE": CorruptImageError,
    "ERROR_VHD_BITMAP_MISMATCH": CorruptImageError,
    "ERROR_VHD_PARENT_VHD_NOT_FOUND": ParentNotFoundError,
    "ERROR_VHD_CHILD_PARENT_ID_MISMATCH": ParentMismatchError,
    "ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH": ParentMismatchError,
    "ERROR_VHD_METADATA_READ_FAILURE": ImageIOError,
    "ERROR_VHD_METADATA_WRITE_FAILURE": ImageIOError,
    "ERROR_VHD_INVALID_SIZE": CorruptImageError,
    "ERROR_VHD_INVALID_FILE_SIZE": CorruptImageError,
    "ERROR_VIRTDISK_PROVIDER_NOT_FOUND": UnsupportedFormatError,
    "ERROR_VIRTDISK_NOT_VIRTUAL_DISK": NotAVirtualDiskError,
    "ERROR_VHD_PARENT_VHD_ACCESS_DENIED": ParentAccessDeniedError,
    "ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH": ParentMismatchError,
    "ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED": DifferencingChainError,
    "ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT": DifferencingChainError,
    "ERROR_VIRTUAL_DISK_LIMITATION": HostFileLimitationError,
    "ERROR_VHD_INVALID_TYPE": UnsupportedOperationError,
    "ERROR_VHD_INVALID_STATE": InvalidStateError,
    "ERROR_VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE": HostFileLimitationError,
    "ERROR_VIRTDISK_DISK_ALREADY_OWNED": DiskInUseError,
    "ERROR_VIRTDISK_DISK_ONLINE_AND_WRITABLE": InvalidStateError,
    "ERROR_CTLOG_TRACKING_NOT_INITIALIZED": ChangeTrackingError,
    "ERROR_CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE": ChangeTrackingError,
    "ERROR_CTLOG_VHD_CHANGED_OFFLINE": ChangeTrackingError,
    "ERROR_CTLOG_INVALID_TRACKING_STATE": ChangeTrackingError,
    "ERROR_CTLOG_INCONSISTENT_TRACKING_FILE": ChangeTrackingError,
    "ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA": ResizeError,
    "ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE": ResizeError,
    "ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE": ResizeError,
    "ERROR_VHD_METADATA_FULL": DiskFullError,
    "ERROR_VHD_INVALID_CHANGE_TRACKING_ID": ChangeTrackingError,
    "ERROR_VHD_CHANGE_TRACKING_DISABLED": ChangeTrackingError,
    "ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION": ChangeTrackingError,
    "ERROR_SVHDX_ERROR_STORED": VirtualDiskError,
    "ERROR_SVHDX_ERROR_NOT_AVAILABLE": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_AVAILABLE": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_CAPACITY_DATA_CHANGED": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_PREEMPTED": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_RELEASED": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED": VirtualDiskError,
    "ERROR_SVHDX_UNIT_ATTENTION_OPERATING_DEFINITION_CHANGED": VirtualDiskError,
    "ERROR_SVHDX_RESERVATION_CONFLICT": DiskInUseError,
    "ERROR_SVHDX_WRONG_FILE_TYPE": UnsupportedFormatError,
    "ERROR_SVHDX_VERSION_MISMATCH": VirtualDiskError,
    "ERROR_VHD_SHARED": DiskInUseError,
    "ERROR_SVHDX_NO_INITIATOR": VirtualDiskError,
    "ERROR_VHDSET_BACKING_STORAGE_NOT_FOUND": ImageNotFoundError,
    # Codes the portable engine returns for host failures.
    "ERROR_TOO_MANY_OPEN_FILES": VirtualDiskError,
    "ERROR_NOT_ENOUGH_MEMORY": VirtualDiskError,
    "ERROR_INVALID_DATA": CorruptImageError,
    "ERROR_OUTOFMEMORY": VirtualDiskError,
    "ERROR_WRITE_FAULT": ImageIOError,
    "ERROR_READ_FAULT": ImageIOError,
    "ERROR_GEN_FAILURE": VirtualDiskError,
    "ERROR_LOCK_VIOLATION": DiskInUseError,
    "ERROR_HANDLE_EOF": ImageIOError,
    "ERROR_INVALID_NAME": InvalidParameterError,
    "ERROR_MOD_NOT_FOUND": CallNotImplementedError,
    "ERROR_PROC_NOT_FOUND": CallNotImplementedError,
    "ERROR_FILENAME_EXCED_RANGE": InvalidParameterError,
    "ERROR_NOACCESS": VirtualDiskError,
    "ERROR_IO_DEVICE": ImageIOError,
    "ERROR_DISK_QUOTA_EXCEEDED": DiskFullError,
    "ERROR_CANT_RESOLVE_FILENAME": VirtualDiskError,
}

# The built-in exception a Python programmer would catch for each code.
BUILTIN_KIND: dict[str, type[Exception]] = {
    "ERROR_FILE_NOT_FOUND": FileNotFoundError,
    "ERROR_PATH_NOT_FOUND": FileNotFoundError,
    "ERROR_VHD_PARENT_VHD_NOT_FOUND": FileNotFoundError,
    "ERROR_VHDSET_BACKING_STORAGE_NOT_FOUND": FileNotFoundError,
    "ERROR_ACCESS_DENIED": PermissionError,
    "ERROR_PRIVILEGE_NOT_HELD": PermissionError,
    "ERROR_VHD_PARENT_VHD_ACCESS_DENIED": PermissionError,
    "ERROR_FILE_EXISTS": FileExistsError,
    "ERROR_ALREADY_EXISTS": FileExistsError,
    "ERROR_INVALID_PARAMETER": ValueError,
    "ERROR_INVALID_NAME": ValueError,
    "ERROR_FILENAME_EXCED_RANGE": ValueError,
    "ERROR_CALL_NOT_IMPLEMENTED": NotImplementedError,
    "ERROR_PROC_NOT_FOUND": NotImplementedError,
    "ERROR_INSUFFICIENT_BUFFER": BufferError,
    "ERROR_MORE_DATA": BufferError,
    "ERROR_NOT_FOUND": LookupError,
}

EXPECTED_ERRNO: dict[str, int | None] = {
    "ERROR_FILE_NOT_FOUND": errno.ENOENT,
    "ERROR_PATH_NOT_FOUND": errno.ENOENT,
    "ERROR_VHD_PARENT_VHD_NOT_FOUND": errno.ENOENT,
    "ERROR_ACCESS_DENIED": errno.EACCES,
    "ERROR_PRIVILEGE_NOT_HELD": errno.EACCES,
    "ERROR_VHD_PARENT_VHD_ACCESS_DENIED": errno.EACCES,
    "ERROR_INVALID_HANDLE": errno.EBADF,
    "ERROR_NOT_READY": errno.ENXIO,
    "ERROR_SHARING_VIOLATION": errno.EBUSY,
    "ERROR_BUSY": errno.EBUSY,
    "ERROR_NOT_SUPPORTED": errno.EOPNOTSUPP,
    "ERROR_FILE_EXISTS": errno.EEXIST,
    "ERROR_ALREADY_EXISTS": errno.EEXIST,
    "ERROR_INVALID_PARAMETER": errno.EINVAL,
    "ERROR_DISK_FULL": errno.ENOSPC,
    "ERROR_CALL_NOT_IMPLEMENTED": errno.ENOSYS,
    "ERROR_INSUFFICIENT_BUFFER": errno.ERANGE,
    "ERROR_MORE_DATA": errno.ERANGE,
    "ERROR_OPERATION_ABORTED": errno.ECANCELED,
    "ERROR_FILE_CORRUPT": None,
    "ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH": None,
    "ERROR_VIRTDISK_NOT_VIRTUAL_DISK": None,
    "ERROR_CTLOG_VHD_CHANGED_OFFLINE": None,
}

PUBLIC_CLASSES = [
    obj for obj in vars(errors).values()
    if isinstance(obj, type) and issubclass(obj, VirtualDiskError)
]


def all_codes() -> dict[str, int]:
    return {name: value for name, value in vars(errors).items()
            if name.startswith("ERROR_") and isinstance(value, int)}


# ---------------------------------------------------------------- the table

@pytest.mark.parametrize("name, value", sorted(EXPECTED_CODES.items()))
def test_constant_has_the_sdk_value(name: str, value: int) -> None:
    assert getattr(errors, name) == value
    assert errors.code_name(value) == name


def test_the_vhd_facility_is_complete() -> None:
    family = {name for name, value in all_codes().items()
              if (value >> 16) & 0x7FF == 0x3A}
    assert family == set(VHD_FACILITY_CODES)


def test_the_shared_vhdx_facility_is_complete() -> None:
    family = {name for name, value in all_codes().items()
              if (value >> 16) & 0x7FF == 0x5C}
    assert family == set(SVHDX_FACILITY_CODES)


@pytest.mark.parametrize("name", sorted(VHD_FACILITY_CODES))
def test_vhd_codes_have_facility_and_severity(name: str) -> None:
    value = getattr(errors, name)
    severity, customer, reserved = value >> 30, (value >> 29) & 1, (value >> 28) & 1
    assert (value >> 16) & 0xFFF == 0x3A          # FACILITY_USERMODE_VHD
    assert (customer, reserved) == (0, 0)
    if name == "ERROR_QUERY_STORAGE_ERROR":
        assert severity == 2 and value & 0xFFFF == 1   # warning
    else:
        assert severity == 3                            # error
        assert value & 0xFFFF0000 == 0xC03A0000
        assert 0x01 <= value & 0xFFFF <= 0x30


def test_vhd_codes_leave_the_documented_gap() -> None:
    low_words = {value & 0xFFFF for value in VHD_FACILITY_CODES.values()
                 if value >> 30 == 3}
    assert low_words == set(range(0x01, 0x2B)) | {0x30}


@pytest.mark.parametrize("name", sorted(SVHDX_FACILITY_CODES))
def test_shared_vhdx_codes_have_facility_and_severity(name: str) -> None:
    value = getattr(errors, name)
    assert value >> 30 == 3
    assert (value >> 16) & 0xFFF == 0x5C          # FACILITY_SHARED_VHDX


def test_every_value_is_an_unsigned_dword_with_one_name() -> None:
    codes = all_codes()
    for name, value in codes.items():
        assert type(value) is int, name
        assert 0 < value <= 0xFFFFFFFF, name
    assert len(set(codes.values())) == len(codes)


def test_every_code_has_a_message_and_a_class() -> None:
    for name, value in all_codes().items():
        exc = errors.error_from_code(value, "F")
        assert exc.code_name == name
        assert isinstance(exc.strerror, str) and exc.strerror
        assert not exc.strerror.startswith("Win32 error"), name
        assert exc.strerror == exc.strerror.strip()


def test_messages_are_distinct() -> None:
    messages = [errors.error_from_code(value, "F").strerror
                for value in all_codes().values()]
    assert len(set(messages)) == len(messages)


def _engine_defines() -> dict[str, int]:
    """VD_ERROR_* and ERROR_* values the C sources define, by Win32 name."""
    found: dict[str, int] = {}
    plain = re.compile(r"#\s*define\s+(?:VD_)?(ERROR_\w+)\s+(\d+)u?\b")
    facility = re.compile(r"#\s*define\s+VD_(ERROR_\w+)\s+VD_VHD_ERROR\((0x[0-9A-Fa-f]+)\)")
    sources = [*sorted((REPO / "src" / "vdengine").rglob("*.[ch]")),
               *sorted((REPO / "src" / "include").glob("*.h"))]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in plain.finditer(text):
            found[match[1]] = int(match[2])
        for match in facility.finditer(text):
            found[match[1]] = 0xC03A0000 | int(match[2], 16)
    found.pop("ERROR_SUCCESS", None)
    return found


def test_every_code_the_c_sources_define_is_known() -> None:
    defines = _engine_defines()
    if not defines:
        pytest.skip("C sources not present (testing an installed package)")
    codes = all_codes()
    missing = sorted(set(defines) - set(codes))
    assert missing == [], "codes the engine can return but the table lacks"
    for name, value in defines.items():
        assert codes[name] == value, name


# ---------------------------------------------------------------- classes

def test_every_code_has_an_expected_class() -> None:
    assert set(EXPECTED_CLASS) == set(all_codes())


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS))
def test_code_maps_to_its_class(name: str) -> None:
    exc = errors.error_from_code(getattr(errors, name), "OpenVirtualDisk")
    assert type(exc) is EXPECTED_CLASS[name]


@pytest.mark.parametrize("name", sorted(BUILTIN_KIND))
def test_code_is_caught_by_its_builtin(name: str) -> None:
    with pytest.raises(BUILTIN_KIND[name]):
        errors.raise_for_code(getattr(errors, name), "OpenVirtualDisk", "x.vhdx")


def test_classes_that_must_not_look_like_other_builtins() -> None:
    sharing = errors.error_from_code(errors.ERROR_SHARING_VIOLATION, "F")
    assert not isinstance(sharing, PermissionError)
    assert not isinstance(sharing, BlockingIOError)
    corrupt = errors.error_from_code(errors.ERROR_FILE_CORRUPT, "F")
    assert not isinstance(corrupt, ValueError)
    assert not isinstance(corrupt, FileNotFoundError)
    pending = errors.error_from_code(errors.ERROR_IO_PENDING, "F")
    assert not isinstance(pending, BlockingIOError)


def test_kind_hierarchy() -> None:
    assert issubclass(SharingViolationError, DiskInUseError)
    assert issubclass(NotAttachedError, InvalidStateError)
    assert issubclass(NotAVirtualDiskError, UnsupportedFormatError)
    for cls in (ParentNotFoundError, ParentAccessDeniedError, ParentMismatchError):
        assert issubclass(cls, DifferencingChainError)


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_is_an_oserror_with_a_valid_mro(cls: type[VirtualDiskError]) -> None:
    assert issubclass(cls, OSError)
    assert cls.mro()[-2:] == [BaseException, object]
    assert cls.mro().index(VirtualDiskError) < cls.mro().index(OSError)
    exc = cls(errors.ERROR_FILE_CORRUPT, "F", "p")
    assert isinstance(exc, OSError)
    assert exc.winerror == errors.ERROR_FILE_CORRUPT


def test_the_class_list_is_what_the_module_exports() -> None:
    exported = {name for name in errors.__all__
                if isinstance(getattr(errors, name), type)}
    assert exported == {cls.__name__ for cls in PUBLIC_CLASSES}
    assert len(PUBLIC_CLASSES) >= 25


def test_a_builtin_with_a_conflicting_layout_is_refused() -> None:
    # The check that keeps the mix-ins honest: CPython refuses to combine
    # OSError with a built-in that has its own instance layout.
    with pytest.raises(TypeError, match="lay-out conflict"):
        type("Broken", (VirtualDiskError, SyntaxError), {})


# ---------------------------------------------------------------- attributes

@pytest.mark.parametrize("name", sorted(EXPECTED_ERRNO))
def test_errno(name: str) -> None:
    exc = errors.error_from_code(getattr(errors, name), "F")
    assert exc.errno == EXPECTED_ERRNO[name]


def test_attributes() -> None:
    exc = errors.error_from_code(0xC03A000D, "OpenVirtualDisk", "/vm/child.avhdx")
    assert exc.winerror == 0xC03A000D
    assert exc.errno == errno.ENOENT
    assert exc.filename == "/vm/child.avhdx"
    assert exc.filename2 is None
    assert exc.function == "OpenVirtualDisk"
    assert exc.code_name == "ERROR_VHD_PARENT_VHD_NOT_FOUND"
    assert exc.strerror == "a parent of the differencing disk was not found"


def test_winerror_is_an_attribute_on_every_platform() -> None:
    exc = errors.error_from_code(5, "AttachVirtualDisk")
    assert exc.winerror == 5
    assert exc.errno == errno.EACCES
    if sys.platform != "win32":
        assert "winerror" not in dir(OSError)


def test_errno_does_not_follow_the_c_runtime_translation() -> None:
    # The C runtime maps ERROR_SHARING_VIOLATION to EACCES; this module says
    # EBUSY, on every platform.
    exc = errors.error_from_code(32, "OpenVirtualDisk", "a.vhdx")
    assert exc.errno == errno.EBUSY
    assert exc.winerror == 32


def test_signed_codes_are_made_unsigned() -> None:
    signed = 0xC03A0002 - (1 << 32)
    assert signed == -1069940734
    exc = errors.error_from_code(signed, "OpenVirtualDisk")
    assert exc.winerror == 0xC03A0002
    assert type(exc) is CorruptImageError
    assert errors.code_name(signed) == "ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH"
    direct = CorruptImageError(signed, "OpenVirtualDisk")
    assert direct.winerror == 0xC03A0002


@pytest.mark.parametrize("bad", [0, 1 << 32, -(1 << 31) - 1, 1 << 40])
def test_success_and_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        errors.error_from_code(bad, "F")
    with pytest.raises(ValueError):
        VirtualDiskError(bad, "F")


def test_code_name_of_unknown_or_impossible_codes() -> None:
    assert errors.code_name(0x0000ABCD) is None
    assert errors.code_name(0) is None
    assert errors.code_name(1 << 32) is None
    assert errors.code_name(-(1 << 31) - 1) is None


# ---------------------------------------------------------------- str, repr

def test_str_with_path() -> None:
    exc = errors.error_from_code(0xC03A0002, "OpenVirtualDisk", "/x/a.vhdx")
    assert str(exc) == (
        "OpenVirtualDisk failed on '/x/a.vhdx': the virtual disk is corrupt: "
        "drive footer checksum mismatch "
        "[ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH 0xC03A0002]")


def test_str_without_path_shows_system_codes_in_decimal() -> None:
    exc = errors.error_from_code(32, "AttachVirtualDisk")
    assert str(exc) == ("AttachVirtualDisk failed: the file is in use by another "
                        "handle or process [ERROR_SHARING_VIOLATION 32]")


def test_str_quotes_paths_like_oserror() -> None:
    path = "C:\\vm\\it's.vhdx"
    exc = errors.error_from_code(2, "OpenVirtualDisk", path)
    assert f"on {path!r}:" in str(exc)


def test_repr() -> None:
    exc = errors.error_from_code(0xC03A0015, "OpenVirtualDisk", "a.iso")
    assert repr(exc) == "NotAVirtualDiskError(0xC03A0015, 'OpenVirtualDisk', 'a.iso')"
    assert repr(errors.error_from_code(87, "F")) == "InvalidParameterError(87, 'F', None)"


# ---------------------------------------------------------------- unknown codes

def test_unknown_facility_code() -> None:
    exc = errors.error_from_code(0xC03A00FF, "MergeVirtualDisk", "d.vhdx")
    assert type(exc) is VirtualDiskError
    assert exc.winerror == 0xC03A00FF
    assert exc.code_name is None
    assert exc.errno is None
    assert exc.strerror == "Win32 error 0xC03A00FF"
    assert str(exc) == "MergeVirtualDisk failed on 'd.vhdx': Win32 error 0xC03A00FF"


def test_unknown_system_code() -> None:
    exc = errors.error_from_code(1234, "F")
    assert type(exc) is VirtualDiskError
    assert exc.strerror == "Win32 error 1234 (0x000004D2)"
    assert str(exc) == "F failed: Win32 error 1234 (0x000004D2)"


def test_raise_for_code_raises_the_same_exception() -> None:
    with pytest.raises(ParentMismatchError) as caught:
        errors.raise_for_code(errors.ERROR_VHD_CHILD_PARENT_ID_MISMATCH,
                              "OpenVirtualDisk", "c.vhdx")
    assert caught.value.winerror == 0xC03A000E
    assert caught.value.filename == "c.vhdx"


# ---------------------------------------------------------------- pickling

def _same(a: VirtualDiskError, b: VirtualDiskError) -> None:
    assert type(a) is type(b)
    for attribute in ("winerror", "errno", "strerror", "filename", "function",
                      "code_name", "args"):
        assert getattr(a, attribute) == getattr(b, attribute), attribute
    assert str(a) == str(b)
    assert repr(a) == repr(b)


@pytest.mark.parametrize("value", sorted(set(all_codes().values()) | {0xC03A00FF, 1234}))
def test_pickle_round_trip(value: int) -> None:
    exc = errors.error_from_code(value, "OpenVirtualDisk", "/vm/disk.vhdx")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        _same(exc, pickle.loads(pickle.dumps(exc, protocol)))


def test_pickle_keeps_added_state_and_no_path() -> None:
    exc = errors.error_from_code(32, "AttachVirtualDisk")
    setattr(exc, "attempts", 3)
    clone = pickle.loads(pickle.dumps(exc))
    _same(exc, clone)
    assert clone.filename is None
    assert getattr(clone, "attempts") == 3


def test_copy() -> None:
    exc = errors.error_from_code(0xC03A0016, "OpenVirtualDisk", "p")
    _same(exc, copy.copy(exc))
    _same(exc, copy.deepcopy(exc))


# ---------------------------------------------------------------- the module

def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(errors) if not name.startswith("_")}
    imported_or_helper = {"annotations", "TYPE_CHECKING"}
    assert set(errors.__all__) == public - imported_or_helper
    assert len(errors.__all__) == len(set(errors.__all__))
    for name in all_codes():
        assert name in errors.__all__


SOURCE_FILE = REPO / "src" / "virtdisk" / "errors.py"


@pytest.mark.skipif(not SOURCE_FILE.is_file(), reason="source tree not present")
def test_loads_standalone_from_the_source_file() -> None:
    spec = importlib.util.spec_from_file_location("standalone_errors", SOURCE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exc = module.error_from_code(2, "OpenVirtualDisk", "a.vhdx")
    assert exc.winerror == 2
    assert isinstance(exc, FileNotFoundError)
    assert not isinstance(exc, errors.VirtualDiskError)   # a separate copy


@pytest.mark.skipif(not SOURCE_FILE.is_file(), reason="source tree not present")
def test_import_pulls_in_nothing_heavy() -> None:
    # Run in a fresh interpreter without site, so only this module's own
    # imports can appear.
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('e', {str(SOURCE_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "before = set(sys.modules)\n"
        "spec.loader.exec_module(module)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": ""})
    loaded = set(result.stdout.split())
    assert loaded <= {"errno", "__future__"}, loaded
