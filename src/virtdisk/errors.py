"""Win32 error codes of the Virtual Disk API and the exceptions they become.

Every VirtDisk function returns a Win32 error code as a DWORD.  This module
turns such a code into an exception that a Python programmer can catch by
kind: ``except FileNotFoundError`` sees a missing image, ``except
CorruptImageError`` any damaged structure, ``except SharingViolationError`` a
file another opener holds.  All of them are :class:`VirtualDiskError`, an
:class:`OSError`, and carry the same attributes on every platform:

``winerror``
    the Win32 code, always unsigned (``0xC03A0002``, never ``-1069940734``);
    compare it with the ``ERROR_*`` constants of this module.
``errno``
    a POSIX errno where one means the same thing, otherwise ``None``.
``strerror``
    a short readable message.
``filename``
    the path the failing call was given, or ``None``.
``function``
    the Win32 function that failed, e.g. ``"OpenVirtualDisk"``.
``code_name``
    the code's symbolic name, e.g. ``"ERROR_VHD_PARENT_VHD_NOT_FOUND"``, or
    ``None`` for a code this module does not know.
``detail``
    which structure failed, in words, when the code alone does not say: the
    portable engine records it at the failure site (``"BAT entry 17 points
    past the end of the file"``, ``"VHDX header 2 checksum mismatch"``), and
    the message ends with it.  ``None`` on Windows, whose VirtDisk returns
    only the code, and for failures that need no explanation.

CPython on Windows derives ``OSError.errno`` from ``winerror`` with the C
runtime's table, and Linux has no ``winerror`` at all.  The constructor here
does neither: it takes ``errno`` from this module's table and sets
``winerror`` itself, so both platforms give identical exceptions.  Where the
choice of errno is not obvious:

* ``ERROR_SHARING_VIOLATION`` and ``ERROR_LOCK_VIOLATION`` give ``EBUSY``,
  the POSIX word for "in use by someone else".  The C runtime says
  ``EACCES``, which would tell users to fix permissions when the cure is to
  wait or close the other handle; ``EAGAIN`` would suggest non-blocking I/O.
* ``ERROR_NOT_READY``, what DetachVirtualDisk returns for a disk that is not
  attached, gives ``ENXIO``, what Linux answers for a loop device with no
  backing file.
* ``ERROR_INSUFFICIENT_BUFFER`` and ``ERROR_MORE_DATA`` give ``ERANGE``, the
  errno POSIX uses when a result does not fit the caller's buffer
  (``getcwd``, ``getxattr``).
* Corruption, format and change-tracking codes have no POSIX equivalent and
  give ``None``.

Lookups on the failure path are one dictionary access.  The table below is
the only place a code is written: each line gives the name, the value, the
exception class, the errno and the message.
"""

from __future__ import annotations

import errno as _errno

# typing takes longer to import than this whole module, and is needed only
# by type checkers (annotations here are never evaluated at run time).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final, NoReturn

__all__ = [
    # functions
    "error_from_code",
    "raise_for_code",
    "code_name",
    # classes
    "VirtualDiskError",
    "AccessDeniedError",
    "CallNotImplementedError",
    "ChangeTrackingError",
    "CorruptImageError",
    "DifferencingChainError",
    "DiskFullError",
    "DiskInUseError",
    "ElementNotFoundError",
    "HostFileLimitationError",
    "ImageExistsError",
    "ImageIOError",
    "ImageNotFoundError",
    "MediumError",
    "InsufficientBufferError",
    "InvalidHandleError",
    "InvalidParameterError",
    "InvalidStateError",
    "NotAVirtualDiskError",
    "NotAttachedError",
    "OperationAbortedError",
    "OutOfRangeError",
    "ParentAccessDeniedError",
    "ParentMismatchError",
    "ParentNotFoundError",
    "ResizeError",
    "SharingViolationError",
    "UnsupportedFormatError",
    "UnsupportedOperationError",
    # system codes
    "ERROR_FILE_NOT_FOUND",
    "ERROR_PATH_NOT_FOUND",
    "ERROR_TOO_MANY_OPEN_FILES",
    "ERROR_ACCESS_DENIED",
    "ERROR_INVALID_HANDLE",
    "ERROR_NOT_ENOUGH_MEMORY",
    "ERROR_INVALID_DATA",
    "ERROR_OUTOFMEMORY",
    "ERROR_NOT_READY",
    "ERROR_WRITE_FAULT",
    "ERROR_READ_FAULT",
    "ERROR_GEN_FAILURE",
    "ERROR_SHARING_VIOLATION",
    "ERROR_LOCK_VIOLATION",
    "ERROR_HANDLE_EOF",
    "ERROR_NOT_SUPPORTED",
    "ERROR_FILE_EXISTS",
    "ERROR_INVALID_PARAMETER",
    "ERROR_DISK_FULL",
    "ERROR_CALL_NOT_IMPLEMENTED",
    "ERROR_INSUFFICIENT_BUFFER",
    "ERROR_INVALID_NAME",
    "ERROR_MOD_NOT_FOUND",
    "ERROR_PROC_NOT_FOUND",
    "ERROR_BUSY",
    "ERROR_ALREADY_EXISTS",
    "ERROR_FILENAME_EXCED_RANGE",
    "ERROR_MORE_DATA",
    "ERROR_UNSUPPORTED_COMPRESSION",
    "ERROR_FILE_SYSTEM_LIMITATION",
    "ERROR_OPERATION_ABORTED",
    "ERROR_IO_PENDING",
    "ERROR_NOACCESS",
    "ERROR_IO_DEVICE",
    "ERROR_NOT_FOUND",
    "ERROR_DISK_QUOTA_EXCEEDED",
    "ERROR_PRIVILEGE_NOT_HELD",
    "ERROR_FILE_CORRUPT",
    "ERROR_CANT_RESOLVE_FILENAME",
    "ERROR_FILE_ENCRYPTED",
    # FACILITY_USERMODE_VHD (0x3A)
    "ERROR_QUERY_STORAGE_ERROR",
    "ERROR_VHD_DRIVE_FOOTER_MISSING",
    "ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH",
    "ERROR_VHD_DRIVE_FOOTER_CORRUPT",
    "ERROR_VHD_FORMAT_UNKNOWN",
    "ERROR_VHD_FORMAT_UNSUPPORTED_VERSION",
    "ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH",
    "ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION",
    "ERROR_VHD_SPARSE_HEADER_CORRUPT",
    "ERROR_VHD_BLOCK_ALLOCATION_FAILURE",
    "ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT",
    "ERROR_VHD_INVALID_BLOCK_SIZE",
    "ERROR_VHD_BITMAP_MISMATCH",
    "ERROR_VHD_PARENT_VHD_NOT_FOUND",
    "ERROR_VHD_CHILD_PARENT_ID_MISMATCH",
    "ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH",
    "ERROR_VHD_METADATA_READ_FAILURE",
    "ERROR_VHD_METADATA_WRITE_FAILURE",
    "ERROR_VHD_INVALID_SIZE",
    "ERROR_VHD_INVALID_FILE_SIZE",
    "ERROR_VIRTDISK_PROVIDER_NOT_FOUND",
    "ERROR_VIRTDISK_NOT_VIRTUAL_DISK",
    "ERROR_VHD_PARENT_VHD_ACCESS_DENIED",
    "ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH",
    "ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED",
    "ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT",
    "ERROR_VIRTUAL_DISK_LIMITATION",
    "ERROR_VHD_INVALID_TYPE",
    "ERROR_VHD_INVALID_STATE",
    "ERROR_VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE",
    "ERROR_VIRTDISK_DISK_ALREADY_OWNED",
    "ERROR_VIRTDISK_DISK_ONLINE_AND_WRITABLE",
    "ERROR_CTLOG_TRACKING_NOT_INITIALIZED",
    "ERROR_CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE",
    "ERROR_CTLOG_VHD_CHANGED_OFFLINE",
    "ERROR_CTLOG_INVALID_TRACKING_STATE",
    "ERROR_CTLOG_INCONSISTENT_TRACKING_FILE",
    "ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA",
    "ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE",
    "ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE",
    "ERROR_VHD_METADATA_FULL",
    "ERROR_VHD_INVALID_CHANGE_TRACKING_ID",
    "ERROR_VHD_CHANGE_TRACKING_DISABLED",
    "ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION",
    # FACILITY_SHARED_VHDX (0x5C)
    "ERROR_SVHDX_ERROR_STORED",
    "ERROR_SVHDX_ERROR_NOT_AVAILABLE",
    "ERROR_SVHDX_UNIT_ATTENTION_AVAILABLE",
    "ERROR_SVHDX_UNIT_ATTENTION_CAPACITY_DATA_CHANGED",
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_PREEMPTED",
    "ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_RELEASED",
    "ERROR_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED",
    "ERROR_SVHDX_UNIT_ATTENTION_OPERATING_DEFINITION_CHANGED",
    "ERROR_SVHDX_RESERVATION_CONFLICT",
    "ERROR_SVHDX_WRONG_FILE_TYPE",
    "ERROR_SVHDX_VERSION_MISMATCH",
    "ERROR_VHD_SHARED",
    "ERROR_SVHDX_NO_INITIATOR",
    "ERROR_VHDSET_BACKING_STORAGE_NOT_FOUND",
]

_DWORD_MASK: Final = 0xFFFFFFFF
_SYSTEM_CODE_LIMIT: Final = 0x10000  # below: plain Win32 codes, shown in decimal


# --------------------------------------------------------------------------
# Exception classes, by kind
# --------------------------------------------------------------------------

class VirtualDiskError(OSError):
    """A VirtDisk function (or the portable engine) returned a Win32 error.

    Construct it as ``VirtualDiskError(winerror, function, filename)``; the
    message, errno and code name come from the table of this module.  Use
    :func:`error_from_code` to get the most specific class for a code.
    """

    winerror: int
    function: str
    code_name: str | None
    detail: str | None = None

    def __init__(self, winerror: int, function: str, filename: str | None = None,
                 detail: str | None = None) -> None:
        code = _to_dword(winerror)
        entry = _TABLE.get(code)
        if entry is None:
            errno_value, message = None, _unknown_message(code)
        else:
            errno_value, message = entry[1], entry[2]
        # Three arguments, never the fourth: CPython on Windows would replace
        # errno with its own translation of winerror, and Linux ignores it.
        super().__init__(errno_value, message, filename)
        self.winerror = code
        self.function = function
        self.code_name = _NAMES.get(code)
        self.detail = detail

    def __str__(self) -> str:
        text = f"{self.function} failed"
        if self.filename is not None:
            text += f" on {self.filename!r}"
        text += f": {self.strerror}"
        if self.detail is not None:
            text += f": {self.detail}"
        if self.code_name is not None:
            text += f" [{self.code_name} {_format_code(self.winerror)}]"
        return text

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({_format_code(self.winerror)}, "
                f"{self.function!r}, {self.filename!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError's own reduce rebuilds from (errno, strerror, filename),
        # which is not this constructor's signature and drops winerror.
        return (type(self), (self.winerror, self.function, self.filename),
                self.__dict__)


class ImageNotFoundError(VirtualDiskError, FileNotFoundError):
    """The file, a directory of its path, or a VHD set's backing file does
    not exist."""


class AccessDeniedError(VirtualDiskError, PermissionError):
    """The caller lacks the rights or the privilege the operation needs.

    Attach and detach need ``SeManageVolumePrivilege`` (an elevated process
    on Windows).
    """


class ImageExistsError(VirtualDiskError, FileExistsError):
    """Creation failed because the file already exists."""


class InvalidParameterError(VirtualDiskError, ValueError):
    """An argument was rejected: a bad flag, version, size, name or path."""


class OutOfRangeError(InvalidParameterError):
    """A content request reaches past the end of the disk: the target
    answered LOGICAL BLOCK ADDRESS OUT OF RANGE.  ``size`` is the disk's
    size in bytes and ``offset`` the request's start, where known."""

    size: int | None = None
    offset: int | None = None


class InvalidHandleError(VirtualDiskError):
    """The handle is closed or is not a virtual disk handle."""


class CallNotImplementedError(VirtualDiskError, NotImplementedError):
    """This system does not implement the function (an older Windows, Wine,
    or an operation the portable engine cannot perform)."""


class UnsupportedOperationError(VirtualDiskError):
    """The disk does not support the operation, e.g. writing to an ISO image
    or asking a disk without a parent for its parent."""


class InsufficientBufferError(VirtualDiskError, BufferError):
    """An output buffer was too small for the result."""


class ElementNotFoundError(VirtualDiskError, LookupError):
    """A requested item (metadata entry, snapshot, attached disk) does not
    exist."""


class DiskFullError(VirtualDiskError):
    """The host volume, the user's quota or the image's metadata region is
    out of space."""


class ImageIOError(VirtualDiskError):
    """Reading or writing the image failed below the format level: a device
    error, an unexpected end of file, a block that could not be allocated."""


class MediumError(ImageIOError):
    """The disk reported a medium error: data that cannot be read or
    written at ``offset`` (bytes from the start of the disk, the failing
    block's when the target names it).  ``sense`` is the parsed sense data
    (a :class:`virtdisk.scsi.Sense`).  Retrying does not help; the image's
    file or the device under it is damaged."""

    offset: int | None = None
    sense: Any = None


class OperationAbortedError(VirtualDiskError):
    """The operation was cancelled before it completed."""


class DiskInUseError(VirtualDiskError):
    """Another opener, process or host holds the disk.

    Usually transient: retrying after the other holder lets go succeeds.
    """


class SharingViolationError(DiskInUseError):
    """The file is open elsewhere in a way that excludes this open.

    This is retryable: the image is attached, or another handle (an
    antivirus scan, a backup, a VM) has it open for writing.  Retry with a
    short back-off, or close the other handle.  ``errno`` is ``EBUSY``.
    """


class InvalidStateError(VirtualDiskError):
    """The disk is not in a state that allows the operation, e.g. it is
    attached, online or being mirrored."""


class NotAttachedError(InvalidStateError):
    """The disk is not attached, so it cannot be detached or queried as a
    device."""


class HostFileLimitationError(VirtualDiskError):
    """The host file system cannot serve the image: the file is compressed,
    EFS-encrypted or sparse, lies on a loopback share, or the physical disk
    has an unsupported sector size."""


class CorruptImageError(VirtualDiskError):
    """A structure of the image is damaged: a missing or bad footer or
    header, a checksum mismatch, a bad allocation table or bitmap, an
    impossible size."""


class UnsupportedFormatError(VirtualDiskError):
    """The file's format or format version is not one any provider reads."""


class NotAVirtualDiskError(UnsupportedFormatError):
    """The file is not a virtual disk image at all."""


class DifferencingChainError(VirtualDiskError):
    """The chain of parent disks of a differencing disk is broken."""


class ParentNotFoundError(DifferencingChainError, FileNotFoundError):
    """A parent disk of the differencing chain cannot be found.

    It is a :class:`FileNotFoundError` because a missing file is what it is;
    ``filename`` is still the path the failing call was given (the child).
    """


class ParentAccessDeniedError(DifferencingChainError, PermissionError):
    """A parent disk of the differencing chain cannot be opened for lack of
    rights."""


class ParentMismatchError(DifferencingChainError):
    """A parent is not the disk the child was made from: its identifier,
    timestamp or virtual size differs from what the child records.  The
    parent was usually modified or replaced after the child was created."""


class ChangeTrackingError(VirtualDiskError):
    """Resilient change tracking (RCT) cannot answer the request."""


class ResizeError(VirtualDiskError):
    """The disk cannot be shrunk to the requested size."""


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

_Entry = tuple[type[VirtualDiskError], int | None, str]
_TABLE: Final[dict[int, _Entry]] = {}


def _define(value: int, cls: type[VirtualDiskError], message: str,
            errno: int | None = None) -> int:
    if value in _TABLE:
        raise RuntimeError(f"Win32 code 0x{value:08X} defined twice")
    _TABLE[value] = (cls, errno, message)
    return value


# System codes (winerror.h, facility 0).
ERROR_FILE_NOT_FOUND: Final = _define(
    2, ImageNotFoundError, "the file does not exist", _errno.ENOENT)
ERROR_PATH_NOT_FOUND: Final = _define(
    3, ImageNotFoundError, "a directory of the path does not exist", _errno.ENOENT)
ERROR_TOO_MANY_OPEN_FILES: Final = _define(
    4, VirtualDiskError, "the process has too many files open", _errno.EMFILE)
ERROR_ACCESS_DENIED: Final = _define(
    5, AccessDeniedError, "access is refused", _errno.EACCES)
ERROR_INVALID_HANDLE: Final = _define(
    6, InvalidHandleError, "the handle is closed or not a virtual disk handle",
    _errno.EBADF)
ERROR_NOT_ENOUGH_MEMORY: Final = _define(
    8, VirtualDiskError, "not enough memory to process the request", _errno.ENOMEM)
ERROR_INVALID_DATA: Final = _define(
    13, CorruptImageError, "the image holds data that is not valid")
ERROR_OUTOFMEMORY: Final = _define(
    14, VirtualDiskError, "memory ran out during the operation", _errno.ENOMEM)
ERROR_NOT_READY: Final = _define(
    21, NotAttachedError, "the virtual disk is not attached (device not ready)",
    _errno.ENXIO)
ERROR_WRITE_FAULT: Final = _define(
    29, ImageIOError, "the device failed to write", _errno.EIO)
ERROR_READ_FAULT: Final = _define(
    30, ImageIOError, "the device failed to read", _errno.EIO)
ERROR_GEN_FAILURE: Final = _define(
    31, VirtualDiskError, "the host reported a failure with no closer description")
ERROR_SHARING_VIOLATION: Final = _define(
    32, SharingViolationError, "the file is in use by another handle or process",
    _errno.EBUSY)
ERROR_LOCK_VIOLATION: Final = _define(
    33, DiskInUseError, "another process has locked a region of the file",
    _errno.EBUSY)
ERROR_HANDLE_EOF: Final = _define(
    38, ImageIOError, "the file ended before the data being read")
ERROR_NOT_SUPPORTED: Final = _define(
    50, UnsupportedOperationError, "the operation is not supported for this disk",
    _errno.EOPNOTSUPP)
ERROR_FILE_EXISTS: Final = _define(
    80, ImageExistsError, "the file already exists", _errno.EEXIST)
ERROR_INVALID_PARAMETER: Final = _define(
    87, InvalidParameterError, "a parameter is not valid", _errno.EINVAL)
ERROR_DISK_FULL: Final = _define(
    112, DiskFullError, "the host volume is full", _errno.ENOSPC)
ERROR_CALL_NOT_IMPLEMENTED: Final = _define(
    120, CallNotImplementedError, "this system does not implement the function",
    _errno.ENOSYS)
ERROR_INSUFFICIENT_BUFFER: Final = _define(
    122, InsufficientBufferError, "the output buffer is too small", _errno.ERANGE)
ERROR_INVALID_NAME: Final = _define(
    123, InvalidParameterError, "the path is not a valid file name", _errno.EINVAL)
ERROR_MOD_NOT_FOUND: Final = _define(
    126, CallNotImplementedError, "the system library could not be loaded",
    _errno.ENOSYS)
ERROR_PROC_NOT_FOUND: Final = _define(
    127, CallNotImplementedError, "this version of Windows lacks the function",
    _errno.ENOSYS)
ERROR_BUSY: Final = _define(
    170, DiskInUseError, "the disk is running another long operation", _errno.EBUSY)
ERROR_ALREADY_EXISTS: Final = _define(
    183, ImageExistsError, "the file or object already exists", _errno.EEXIST)
ERROR_FILENAME_EXCED_RANGE: Final = _define(
    206, InvalidParameterError, "the path is too long", _errno.ENAMETOOLONG)
ERROR_MORE_DATA: Final = _define(
    234, InsufficientBufferError, "more data is available than the buffer holds",
    _errno.ERANGE)
ERROR_UNSUPPORTED_COMPRESSION: Final = _define(
    618, HostFileLimitationError,
    "the image file is compressed by the host file system")
ERROR_FILE_SYSTEM_LIMITATION: Final = _define(
    665, HostFileLimitationError,
    "the host file system cannot serve this file (e.g. a loopback share)")
ERROR_OPERATION_ABORTED: Final = _define(
    995, OperationAbortedError, "the operation was cancelled", _errno.ECANCELED)
ERROR_IO_PENDING: Final = _define(
    997, VirtualDiskError, "the operation is still in progress", _errno.EINPROGRESS)
ERROR_NOACCESS: Final = _define(
    998, VirtualDiskError, "a buffer address is not valid", _errno.EFAULT)
ERROR_IO_DEVICE: Final = _define(
    1117, ImageIOError, "the device reported an I/O error", _errno.EIO)
ERROR_NOT_FOUND: Final = _define(
    1168, ElementNotFoundError, "the requested item does not exist")
ERROR_DISK_QUOTA_EXCEEDED: Final = _define(
    1295, DiskFullError, "the user's disk quota is exhausted", _errno.EDQUOT)
ERROR_PRIVILEGE_NOT_HELD: Final = _define(
    1314, AccessDeniedError,
    "a required privilege is not held (attach and detach need "
    "SeManageVolumePrivilege)", _errno.EACCES)
ERROR_FILE_CORRUPT: Final = _define(
    1392, CorruptImageError, "the image file is corrupt")
ERROR_CANT_RESOLVE_FILENAME: Final = _define(
    1921, VirtualDiskError, "the path cannot be resolved (symbolic link loop)",
    _errno.ELOOP)
ERROR_FILE_ENCRYPTED: Final = _define(
    6002, HostFileLimitationError,
    "the image file is encrypted by the host file system")

# FACILITY_USERMODE_VHD (0x3A): 0xC03A0000 | n, except the one warning code.
ERROR_QUERY_STORAGE_ERROR: Final = _define(
    0x803A0001, VirtualDiskError,
    "the virtualization storage subsystem reported an error")
ERROR_VHD_DRIVE_FOOTER_MISSING: Final = _define(
    0xC03A0001, CorruptImageError, "the virtual disk is corrupt: no drive footer found")
ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH: Final = _define(
    0xC03A0002, CorruptImageError,
    "the virtual disk is corrupt: drive footer checksum mismatch")
ERROR_VHD_DRIVE_FOOTER_CORRUPT: Final = _define(
    0xC03A0003, CorruptImageError, "the virtual disk is corrupt: damaged drive footer")
ERROR_VHD_FORMAT_UNKNOWN: Final = _define(
    0xC03A0004, UnsupportedFormatError, "the image format is not recognised")
ERROR_VHD_FORMAT_UNSUPPORTED_VERSION: Final = _define(
    0xC03A0005, UnsupportedFormatError, "the image format version is not supported")
ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH: Final = _define(
    0xC03A0006, CorruptImageError,
    "the virtual disk is corrupt: dynamic header checksum mismatch")
ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION: Final = _define(
    0xC03A0007, UnsupportedFormatError, "the dynamic header version is not supported")
ERROR_VHD_SPARSE_HEADER_CORRUPT: Final = _define(
    0xC03A0008, CorruptImageError, "the virtual disk is corrupt: damaged dynamic header")
ERROR_VHD_BLOCK_ALLOCATION_FAILURE: Final = _define(
    0xC03A0009, ImageIOError, "a write needed a new block and none could be allocated")
ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT: Final = _define(
    0xC03A000A, CorruptImageError,
    "the virtual disk is corrupt: damaged block allocation table")
ERROR_VHD_INVALID_BLOCK_SIZE: Final = _define(
    0xC03A000B, CorruptImageError, "the block size is not valid or not supported")
ERROR_VHD_BITMAP_MISMATCH: Final = _define(
    0xC03A000C, CorruptImageError,
    "the virtual disk is corrupt: a sector bitmap disagrees with its block")
ERROR_VHD_PARENT_VHD_NOT_FOUND: Final = _define(
    0xC03A000D, ParentNotFoundError, "a parent of the differencing disk was not found",
    _errno.ENOENT)
ERROR_VHD_CHILD_PARENT_ID_MISMATCH: Final = _define(
    0xC03A000E, ParentMismatchError,
    "the parent's identifier differs from the one the child records")
ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH: Final = _define(
    0xC03A000F, ParentMismatchError,
    "the parent's timestamp differs from the one the child records")
ERROR_VHD_METADATA_READ_FAILURE: Final = _define(
    0xC03A0010, ImageIOError, "the disk's metadata could not be read", _errno.EIO)
ERROR_VHD_METADATA_WRITE_FAILURE: Final = _define(
    0xC03A0011, ImageIOError, "the disk's metadata could not be written", _errno.EIO)
ERROR_VHD_INVALID_SIZE: Final = _define(
    0xC03A0012, CorruptImageError, "the virtual size is not valid")
ERROR_VHD_INVALID_FILE_SIZE: Final = _define(
    0xC03A0013, CorruptImageError, "the file's size is not valid for its format")
ERROR_VIRTDISK_PROVIDER_NOT_FOUND: Final = _define(
    0xC03A0014, UnsupportedFormatError,
    "no virtual disk provider handles this file or storage type")
ERROR_VIRTDISK_NOT_VIRTUAL_DISK: Final = _define(
    0xC03A0015, NotAVirtualDiskError, "the file is not a virtual disk")
ERROR_VHD_PARENT_VHD_ACCESS_DENIED: Final = _define(
    0xC03A0016, ParentAccessDeniedError,
    "access to a parent of the differencing disk is refused", _errno.EACCES)
ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH: Final = _define(
    0xC03A0017, ParentMismatchError,
    "the parent's virtual size differs from the child's")
ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED: Final = _define(
    0xC03A0018, DifferencingChainError, "the chain of parent disks loops back on itself")
ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT: Final = _define(
    0xC03A0019, DifferencingChainError,
    "a disk further up the differencing chain failed to open")
ERROR_VIRTUAL_DISK_LIMITATION: Final = _define(
    0xC03A001A, HostFileLimitationError,
    "the image file must not be compressed, encrypted or sparse on the host")
ERROR_VHD_INVALID_TYPE: Final = _define(
    0xC03A001B, UnsupportedOperationError,
    "the operation does not apply to this type of virtual disk")
ERROR_VHD_INVALID_STATE: Final = _define(
    0xC03A001C, InvalidStateError,
    "the operation is not allowed in the disk's current state")
ERROR_VIRTDISK_UNSUPPORTED_DISK_SECTOR_SIZE: Final = _define(
    0xC03A001D, HostFileLimitationError,
    "the sector size of the host's physical disk is not supported")
ERROR_VIRTDISK_DISK_ALREADY_OWNED: Final = _define(
    0xC03A001E, DiskInUseError, "another owner already holds the disk")
ERROR_VIRTDISK_DISK_ONLINE_AND_WRITABLE: Final = _define(
    0xC03A001F, InvalidStateError,
    "the source disk is online and writable; take it offline or make it read-only")
ERROR_CTLOG_TRACKING_NOT_INITIALIZED: Final = _define(
    0xC03A0020, ChangeTrackingError, "change tracking is not initialised for this disk")
ERROR_CTLOG_LOGFILE_SIZE_EXCEEDED_MAXSIZE: Final = _define(
    0xC03A0021, ChangeTrackingError, "the change tracking log outgrew its size limit")
ERROR_CTLOG_VHD_CHANGED_OFFLINE: Final = _define(
    0xC03A0022, ChangeTrackingError,
    "the disk was changed while offline (compacted, expanded or edited), "
    "so tracked changes are lost")
ERROR_CTLOG_INVALID_TRACKING_STATE: Final = _define(
    0xC03A0023, ChangeTrackingError, "change tracking is not in a state for this request")
ERROR_CTLOG_INCONSISTENT_TRACKING_FILE: Final = _define(
    0xC03A0024, ChangeTrackingError, "the change tracking file is inconsistent")
ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA: Final = _define(
    0xC03A0025, ResizeError, "shrinking to this size would cut off data")
ERROR_VHD_COULD_NOT_COMPUTE_MINIMUM_VIRTUAL_SIZE: Final = _define(
    0xC03A0026, ResizeError, "the smallest safe virtual size cannot be determined")
ERROR_VHD_ALREADY_AT_OR_BELOW_MINIMUM_VIRTUAL_SIZE: Final = _define(
    0xC03A0027, ResizeError, "the disk is already at or below its smallest safe size")
ERROR_VHD_METADATA_FULL: Final = _define(
    0xC03A0028, DiskFullError, "the metadata region has no room for the item")
ERROR_VHD_INVALID_CHANGE_TRACKING_ID: Final = _define(
    0xC03A0029, ChangeTrackingError, "the change tracking identifier is not valid")
ERROR_VHD_CHANGE_TRACKING_DISABLED: Final = _define(
    0xC03A002A, ChangeTrackingError, "change tracking is disabled for this disk")
ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION: Final = _define(
    0xC03A0030, ChangeTrackingError,
    "no change tracking data exists for the given identifier")

# FACILITY_SHARED_VHDX (0x5C): shared VHDX and VHD set codes.
ERROR_SVHDX_ERROR_STORED: Final = _define(
    0xC05C0000, VirtualDiskError,
    "the shared disk stored the error, with its sense data, on the server")
ERROR_SVHDX_ERROR_NOT_AVAILABLE: Final = _define(
    0xC05CFF00, VirtualDiskError, "the server has no error data to return")
ERROR_SVHDX_UNIT_ATTENTION_AVAILABLE: Final = _define(
    0xC05CFF01, VirtualDiskError, "unit attention data is waiting to be queried")
ERROR_SVHDX_UNIT_ATTENTION_CAPACITY_DATA_CHANGED: Final = _define(
    0xC05CFF02, VirtualDiskError, "unit attention: the shared disk's capacity changed")
ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_PREEMPTED: Final = _define(
    0xC05CFF03, VirtualDiskError,
    "unit attention: this initiator's reservations were preempted")
ERROR_SVHDX_UNIT_ATTENTION_RESERVATIONS_RELEASED: Final = _define(
    0xC05CFF04, VirtualDiskError,
    "unit attention: this initiator's reservations were released")
ERROR_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED: Final = _define(
    0xC05CFF05, VirtualDiskError,
    "unit attention: this initiator's registrations were preempted")
ERROR_SVHDX_UNIT_ATTENTION_OPERATING_DEFINITION_CHANGED: Final = _define(
    0xC05CFF06, VirtualDiskError,
    "unit attention: the shared disk's storage format changed")
ERROR_SVHDX_RESERVATION_CONFLICT: Final = _define(
    0xC05CFF07, DiskInUseError, "another initiator's reservation blocks the command")
ERROR_SVHDX_WRONG_FILE_TYPE: Final = _define(
    0xC05CFF08, UnsupportedFormatError,
    "only fixed or dynamic VHDX files can be shared between machines")
ERROR_SVHDX_VERSION_MISMATCH: Final = _define(
    0xC05CFF09, VirtualDiskError, "the server's protocol version differs from the request")
ERROR_VHD_SHARED: Final = _define(
    0xC05CFF0A, DiskInUseError, "the disk is in shared use, which forbids the operation")
ERROR_SVHDX_NO_INITIATOR: Final = _define(
    0xC05CFF0B, VirtualDiskError, "the shared disk was opened without an initiator id")
ERROR_VHDSET_BACKING_STORAGE_NOT_FOUND: Final = _define(
    0xC05CFF0C, ImageNotFoundError, "a backing file of the VHD set is missing",
    _errno.ENOENT)

# Each constant's own name is its code name, so the names are read back from
# the module rather than written a second time.
_NAMES: Final[dict[int, str]] = {
    value: name for name, value in globals().items()
    if name.startswith("ERROR_") and isinstance(value, int)
}


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------

def _to_dword(code: int) -> int:
    """Returns `code` as an unsigned DWORD, accepting the signed reading that
    ctypes and C#-style bindings produce for codes >= 0x80000000."""
    if not -0x80000000 <= code <= _DWORD_MASK:
        raise ValueError(f"{code} is not a 32-bit Win32 error code")
    code &= _DWORD_MASK
    if code == 0:
        raise ValueError("0 is ERROR_SUCCESS, not an error")
    return code


def _format_code(code: int) -> str:
    return str(code) if code < _SYSTEM_CODE_LIMIT else f"0x{code:08X}"


def _unknown_message(code: int) -> str:
    if code < _SYSTEM_CODE_LIMIT:
        return f"Win32 error {code} (0x{code:08X})"
    return f"Win32 error 0x{code:08X}"


def error_from_code(code: int, function: str, path: str | None = None,
                    detail: str | None = None) -> VirtualDiskError:
    """Returns the exception for Win32 error `code` returned by `function`.

    The class is the most specific one the table gives; a code the table does
    not know gives a plain :class:`VirtualDiskError` whose message is
    ``"Win32 error 0x..."``.  `code` may be given in its signed 32-bit
    reading; the exception always holds it unsigned.  `detail` becomes the
    exception's ``detail`` (the extension passes the engine's account of
    the failure).  Raises ValueError for 0 (success) and for values outside
    32 bits.
    """
    entry = _TABLE.get(code)
    if entry is None:
        dword = _to_dword(code)
        entry = _TABLE.get(dword)
        if entry is None:
            return VirtualDiskError(dword, function, path, detail)
        code = dword
    # The extension calls this on every failure, so the known codes skip the
    # Python-level constructor chain (about 3x slower) and fill the same
    # attributes VirtualDiskError.__init__ does.
    cls = entry[0]
    error = cls.__new__(cls)
    OSError.__init__(error, entry[1], entry[2], path)
    error.winerror = code
    error.function = function
    error.code_name = _NAMES.get(code)
    error.detail = detail
    return error


def raise_for_code(code: int, function: str, path: str | None = None) -> NoReturn:
    """Raises :func:`error_from_code` ``(code, function, path)``."""
    raise error_from_code(code, function, path)


def code_name(code: int) -> str | None:
    """Returns the symbolic name of Win32 error `code` (signed or unsigned),
    e.g. ``"ERROR_FILE_CORRUPT"``, or None if this module does not know it."""
    if not -0x80000000 <= code <= _DWORD_MASK:
        return None
    return _NAMES.get(code & _DWORD_MASK)
