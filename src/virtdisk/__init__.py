"""Python bindings for the Windows Virtual Disk API (VHD, VHDX and ISO).

::

    import hashlib
    import uuid
    import virtdisk

    with virtdisk.open("disk.vhdx") as disk:
        print(disk.virtual_size, disk.identifier)
        info = disk.info()

    with virtdisk.create("new.vhdx", "10GiB") as disk:
        print(disk.block_size)
        disk.set_physical_sector_size(4096)
        disk.metadata[uuid.uuid4()] = b"made by ..."

    with virtdisk.open("disk.vhdx") as disk:
        boot_sector = disk.read(0, 512)
        digest = hashlib.file_digest(disk.content(), "sha256")

    virtdisk.convert("disk.img", "disk.vhdx")
    virtdisk.merge("checkpoint.avhdx", delete=True)   # into its parent

:func:`open` and :func:`create` return a :class:`VirtualDisk`; failures
raise subclasses of :class:`VirtualDiskError` (an OSError carrying the Win32
code as ``winerror``), all importable from here and from :mod:`virtdisk.errors`.
The functions of the C API itself, named as Microsoft documents them, are in
the ``_virtdisk`` extension module.  :func:`features` tells which of them
this system provides.
"""

from __future__ import annotations

from _virtdisk import (
    ChangeTrackingState,
    OpenVirtualDiskFlag,
    PhysicalDisk,
    ProviderSubtype,
    VirtualDiskAccessMask,
    VirtualStorageTypeDevice,
    features,
)

from . import errors
from .attach import Attachment, attached, detach
from .checkpoint import merge
from .content import DiskContent
from .convert import convert
from .create import create
from .dependency import StorageDependency, hosted_virtual_disks, storage_dependencies
from .detect import detect_storage_type
from .disk import VirtualDisk, open
from .errors import (
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
    MediumError,
    NotAttachedError,
    NotAVirtualDiskError,
    OperationAbortedError,
    OutOfRangeError,
    ParentAccessDeniedError,
    ParentMismatchError,
    ParentNotFoundError,
    ResizeError,
    SharingViolationError,
    UnsupportedFormatError,
    UnsupportedOperationError,
    VirtualDiskError,
)
from .info import VirtualDiskInfo
from .metadata import VirtualDiskMetadata
from .sizes import format_size, parse_size


TYPE_CHECKING = False
if TYPE_CHECKING:
    __version__: str
else:
    def __getattr__(name: str) -> str:
        # importlib.metadata takes longer to import than this whole package,
        # which the extension imports on its first error: read the version
        # only when asked.
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("virtdisk")
        except PackageNotFoundError:
            # A source tree that was never installed.
            value = "0+unknown"
        globals()["__version__"] = value
        return value

__all__ = [
    "__version__",
    # opening and reading
    "open",
    "VirtualDisk",
    "VirtualDiskMetadata",
    "DiskContent",
    # attaching
    "Attachment",
    "attached",
    "detach",
    # storage dependencies
    "StorageDependency",
    "storage_dependencies",
    "hosted_virtual_disks",
    # creating and converting
    "create",
    "convert",
    # long operations by path
    "merge",
    "VirtualDiskInfo",
    "features",
    "detect_storage_type",
    "parse_size",
    "format_size",
    # enumerations and result types of the API
    "VirtualStorageTypeDevice",
    "ProviderSubtype",
    "VirtualDiskAccessMask",
    "OpenVirtualDiskFlag",
    "ChangeTrackingState",
    "PhysicalDisk",
    # errors
    "errors",
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
    "InsufficientBufferError",
    "InvalidHandleError",
    "InvalidParameterError",
    "InvalidStateError",
    "MediumError",
    "NotAttachedError",
    "NotAVirtualDiskError",
    "OperationAbortedError",
    "OutOfRangeError",
    "ParentAccessDeniedError",
    "ParentMismatchError",
    "ParentNotFoundError",
    "ResizeError",
    "SharingViolationError",
    "UnsupportedFormatError",
    "UnsupportedOperationError",
]
