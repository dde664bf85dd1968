"""Type stubs of the _virtdisk extension (the Windows Virtual Disk API)."""

import enum
import os
import uuid

from _typeshed import structseq
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, final, overload

from typing_extensions import Buffer, Self, disjoint_base

_Path = str | os.PathLike[str]
_Guid = uuid.UUID | bytes | bytearray | memoryview | None
_Handle = VirtualDiskHandle | int

PLATFORM: Final[str]
VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN: Final[uuid.UUID]
VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT: Final[uuid.UUID]

# Format facts from the engine's format headers.
VHD_FOOTER_COOKIE: Final[bytes]
VHD_FOOTER_SIZE: Final[int]
VHD_MAXIMUM_SIZE: Final[int]
VHDX_FILE_SIGNATURE: Final[bytes]
VHDX_MAXIMUM_SIZE: Final[int]
VHDX_MINIMUM_BLOCK_SIZE: Final[int]
VHDX_MAXIMUM_BLOCK_SIZE: Final[int]
VHDX_MAXIMUM_METADATA_ITEM_SIZE: Final[int]
VHDX_SYSTEM_METADATA_ITEMS: Final[tuple[uuid.UUID, ...]]

# The answers are structseq types (tuples with named fields, as os.stat_result
# is), typed the way typeshed types those; unlike a structseq they are made
# by fields, positional or named, as a named tuple is.

@final
class VirtualStorageType(structseq[int | uuid.UUID], tuple[int, uuid.UUID]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("device_id", "vendor_id")
    def __new__(cls, device_id: int, vendor_id: uuid.UUID) -> Self: ...
    @property
    def device_id(self) -> int: ...
    @property
    def vendor_id(self) -> uuid.UUID: ...

@final
class VirtualDiskSize(structseq[int], tuple[int, int, int, int]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("virtual_size", "physical_size", "block_size", "sector_size")
    def __new__(
        cls,
        virtual_size: int,
        physical_size: int,
        block_size: int,
        sector_size: int,
    ) -> Self: ...
    @property
    def virtual_size(self) -> int: ...
    @property
    def physical_size(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def sector_size(self) -> int: ...

@final
class ParentLocation(structseq[bool | list[str]], tuple[bool, list[str]]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("parent_resolved", "paths")
    def __new__(cls, parent_resolved: bool, paths: list[str]) -> Self: ...
    @property
    def parent_resolved(self) -> bool: ...
    @property
    def paths(self) -> list[str]: ...

@final
class PhysicalDisk(structseq[int | bool], tuple[int, int, bool]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("logical_sector_size", "physical_sector_size", "is_remote")
    def __new__(
        cls,
        logical_sector_size: int,
        physical_sector_size: int,
        is_remote: bool,
    ) -> Self: ...
    @property
    def logical_sector_size(self) -> int: ...
    @property
    def physical_sector_size(self) -> int: ...
    @property
    def is_remote(self) -> bool: ...

@final
class ChangeTrackingState(structseq[bool | str], tuple[bool, bool, str]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("enabled", "newer_changes", "most_recent_id")
    def __new__(cls, enabled: bool, newer_changes: bool, most_recent_id: str) -> Self: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def newer_changes(self) -> bool: ...
    @property
    def most_recent_id(self) -> str: ...

@final
class StorageDependencyInfo(
    structseq[DependentDiskFlag | int | VirtualStorageType | str | None],
    tuple[
        DependentDiskFlag,
        int,
        VirtualStorageType,
        int,
        str | None,
        str | None,
        str | None,
        str | None,
    ],
):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = (
        "dependency_type_flags",
        "provider_specific_flags",
        "virtual_storage_type",
        "ancestor_level",
        "dependency_device_name",
        "host_volume_name",
        "dependent_volume_name",
        "dependent_volume_relative_path",
    )
    def __new__(
        cls,
        dependency_type_flags: DependentDiskFlag,
        provider_specific_flags: int,
        virtual_storage_type: VirtualStorageType,
        ancestor_level: int,
        dependency_device_name: str | None,
        host_volume_name: str | None,
        dependent_volume_name: str | None,
        dependent_volume_relative_path: str | None,
    ) -> Self: ...
    @property
    def dependency_type_flags(self) -> DependentDiskFlag: ...
    @property
    def provider_specific_flags(self) -> int: ...
    @property
    def virtual_storage_type(self) -> VirtualStorageType: ...
    @property
    def ancestor_level(self) -> int: ...
    @property
    def dependency_device_name(self) -> str | None: ...
    @property
    def host_volume_name(self) -> str | None: ...
    @property
    def dependent_volume_name(self) -> str | None: ...
    @property
    def dependent_volume_relative_path(self) -> str | None: ...

@final
class VirtualDiskProgress(structseq[int], tuple[int, int, int]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("operation_status", "current_value", "completion_value")
    def __new__(cls, operation_status: int, current_value: int, completion_value: int) -> Self: ...
    @property
    def operation_status(self) -> int: ...
    @property
    def current_value(self) -> int: ...
    @property
    def completion_value(self) -> int: ...

@final
class ChangedRanges(structseq[list[tuple[int, int]] | int], tuple[list[tuple[int, int]], int]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("ranges", "processed_length")
    def __new__(cls, ranges: list[tuple[int, int]], processed_length: int) -> Self: ...
    @property
    def ranges(self) -> list[tuple[int, int]]: ...
    @property
    def processed_length(self) -> int: ...

@final
class RawScsiResponse(structseq[int | bytes], tuple[int, bytes, int]):
    _fields: ClassVar[tuple[str, ...]]
    def __replace__(self, **fields: Any) -> Self: ...
    __match_args__: Final = ("scsi_status", "sense_info", "data_transfer_length")
    def __new__(cls, scsi_status: int, sense_info: bytes, data_transfer_length: int) -> Self: ...
    @property
    def scsi_status(self) -> int: ...
    @property
    def sense_info(self) -> bytes: ...
    @property
    def data_transfer_length(self) -> int: ...

@disjoint_base
class VirtualDiskHandle:
    def __init__(self, *args: object, **kwargs: object) -> None: ...
    @property
    def path(self) -> str | os.PathLike[str] | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def value(self) -> int: ...
    def close(self) -> None: ...
    def detach_handle(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *exc_info: type[BaseException] | BaseException | TracebackType | None,
    ) -> None: ...
    def __del__(self) -> None: ...

@disjoint_base
class Overlapped:
    def wait(self, timeout: float | None = None) -> bool: ...
    def fileno(self) -> int: ...

def live_handle_count() -> int: ...
def CloseHandle(handle: _Handle) -> None: ...
def open_device(path: str | os.PathLike[str]) -> VirtualDiskHandle: ...
def attach_partition(handle: _Handle, number: int) -> str: ...
def skip_sync(handle: _Handle) -> None: ...
def copy_to_file(handle: _Handle, offset: int, length: int, fd: int) -> None: ...
def copy_from_file(handle: _Handle, fd: int, offset: int, length: int, piece: int) -> None: ...
def features() -> dict[str, bool]: ...
def last_error_detail() -> str | None: ...

def OpenVirtualDisk(
    virtual_storage_type: VirtualStorageType | tuple[int, uuid.UUID] | None,
    path: _Path | None,
    access_mask: int,
    flags: OpenVirtualDiskFlag | Literal[0],
    version: int | None = 1,
    *,
    rw_depth: int = 1,
    get_info_only: bool = False,
    read_only: bool = False,
    resiliency_guid: _Guid = None,
    snapshot_id: _Guid = None,
) -> VirtualDiskHandle: ...
def CreateVirtualDisk(
    virtual_storage_type: VirtualStorageType | tuple[int, uuid.UUID] | None,
    path: _Path | None,
    access_mask: int,
    flags: CreateVirtualDiskFlag | Literal[0],
    version: int | None = 2,
    *,
    unique_id: _Guid = None,
    maximum_size: int = 0,
    block_size: int = 0,
    sector_size: int = 0,
    physical_sector_size: int = 0,
    parent_path: _Path | None = None,
    source_path: _Path | None = None,
    open_flags: OpenVirtualDiskFlag | Literal[0] = 0,
    parent_virtual_storage_type: VirtualStorageType | tuple[int, uuid.UUID] | None = None,
    source_virtual_storage_type: VirtualStorageType | tuple[int, uuid.UUID] | None = None,
    resiliency_guid: _Guid = None,
    source_limit_path: _Path | None = None,
    backing_storage_type: VirtualStorageType | tuple[int, uuid.UUID] | None = None,
    pmem_address_abstraction_type: _Guid = None,
    data_alignment: int = 0,
    security_descriptor: Buffer | None = None,
    provider_specific_flags: int = 0,
    overlapped: Overlapped | None = None,
) -> VirtualDiskHandle: ...
def AttachVirtualDisk(
    handle: _Handle,
    flags: AttachVirtualDiskFlag | Literal[0],
    version: int | None = 1,
    *,
    restricted_offset: int = 0,
    restricted_length: int = 0,
    security_descriptor: Buffer | None = None,
    provider_specific_flags: int = 0,
    overlapped: Overlapped | None = None,
) -> None: ...
def DetachVirtualDisk(handle: _Handle, flags: DetachVirtualDiskFlag | Literal[0] = 0, provider_specific_flags: int = 0) -> None: ...
def GetVirtualDiskPhysicalPath(handle: _Handle) -> str: ...
def GetAllAttachedVirtualDiskPhysicalPaths() -> list[str]: ...
def GetStorageDependencyInformation(
    handle: _Handle, flags: GetStorageDependencyFlag | Literal[0], version: int = 2
) -> list[StorageDependencyInfo]: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.SIZE]
) -> VirtualDiskSize: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle,
    version: Literal[
        GetVirtualDiskInfoVersion.IDENTIFIER,
        GetVirtualDiskInfoVersion.PARENT_IDENTIFIER,
        GetVirtualDiskInfoVersion.VIRTUAL_DISK_ID,
    ],
) -> uuid.UUID: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.PARENT_LOCATION]
) -> ParentLocation: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.VIRTUAL_STORAGE_TYPE]
) -> VirtualStorageType: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.PROVIDER_SUBTYPE]
) -> ProviderSubtype | int: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle,
    version: Literal[GetVirtualDiskInfoVersion.IS_4K_ALIGNED, GetVirtualDiskInfoVersion.IS_LOADED],
) -> bool: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.PHYSICAL_DISK]
) -> PhysicalDisk: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle,
    version: Literal[
        GetVirtualDiskInfoVersion.PARENT_TIMESTAMP,
        GetVirtualDiskInfoVersion.VHD_PHYSICAL_SECTOR_SIZE,
        GetVirtualDiskInfoVersion.SMALLEST_SAFE_VIRTUAL_SIZE,
        GetVirtualDiskInfoVersion.FRAGMENTATION,
    ],
) -> int: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: Literal[GetVirtualDiskInfoVersion.CHANGE_TRACKING_STATE]
) -> ChangeTrackingState: ...
@overload
def GetVirtualDiskInformation(
    handle: _Handle, version: int
) -> (
    VirtualDiskSize
    | uuid.UUID
    | ParentLocation
    | VirtualStorageType
    | PhysicalDisk
    | ChangeTrackingState
    | int
    | bool
): ...
def SetVirtualDiskInformation(
    handle: _Handle,
    version: int,
    *,
    parent_file_path: _Path | None = None,
    unique_identifier: _Guid = None,
    child_depth: int = 0,
    vhd_physical_sector_size: int = 0,
    virtual_disk_id: _Guid = None,
    change_tracking_enabled: bool = False,
    linkage_id: _Guid = None,
) -> None: ...
def EnumerateVirtualDiskMetadata(handle: _Handle) -> list[uuid.UUID]: ...
def GetVirtualDiskMetadata(handle: _Handle, item: _Guid) -> bytes: ...
def SetVirtualDiskMetadata(handle: _Handle, item: _Guid, data: Buffer) -> None: ...
def DeleteVirtualDiskMetadata(handle: _Handle, item: _Guid) -> None: ...
def GetVirtualDiskOperationProgress(
    handle: _Handle, overlapped: Overlapped | None
) -> VirtualDiskProgress: ...
def CancelIoEx(handle: _Handle, overlapped: Overlapped | None = None) -> None: ...
def CompactVirtualDisk(
    handle: _Handle, flags: CompactVirtualDiskFlag | Literal[0] = 0, version: int | None = 1, *, overlapped: Overlapped | None = None
) -> None: ...
def MergeVirtualDisk(
    handle: _Handle,
    flags: MergeVirtualDiskFlag | Literal[0] = 0,
    version: int | None = 1,
    *,
    merge_depth: int = 1,
    merge_source_depth: int = 0,
    merge_target_depth: int = 0,
    overlapped: Overlapped | None = None,
) -> None: ...
def ExpandVirtualDisk(
    handle: _Handle,
    new_size: int,
    flags: ExpandVirtualDiskFlag | Literal[0] = 0,
    version: int | None = 1,
    *,
    overlapped: Overlapped | None = None,
) -> None: ...
def ResizeVirtualDisk(
    handle: _Handle,
    new_size: int,
    flags: ResizeVirtualDiskFlag | Literal[0] = 0,
    version: int | None = 1,
    *,
    overlapped: Overlapped | None = None,
) -> None: ...
def MirrorVirtualDisk(
    handle: _Handle,
    mirror_virtual_disk_path: _Path | None,
    flags: MirrorVirtualDiskFlag | Literal[0] = 0,
    version: int | None = 1,
    *,
    overlapped: Overlapped | None = None,
) -> None: ...
def BreakMirrorVirtualDisk(handle: _Handle) -> None: ...
def AddVirtualDiskParent(handle: _Handle, parent_path: _Path | None) -> None: ...
def QueryChangesVirtualDisk(
    handle: _Handle,
    change_tracking_id: _Path | None,
    byte_offset: int,
    byte_length: int,
    flags: QueryChangesVirtualDiskFlag | Literal[0] = 0,
    *,
    max_ranges: int = 256,
) -> ChangedRanges: ...
def TakeSnapshotVhdSet(handle: _Handle, snapshot_id: _Guid, flags: TakeSnapshotVhdSetFlag | Literal[0] = 0, version: int = 1) -> None: ...
def DeleteSnapshotVhdSet(handle: _Handle, snapshot_id: _Guid, flags: DeleteSnapshotVhdSetFlag | Literal[0] = 0, version: int = 1) -> None: ...
def ModifyVhdSet(
    handle: _Handle,
    version: int,
    flags: ModifyVhdSetFlag | Literal[0] = 0,
    *,
    snapshot_id: _Guid = None,
    snapshot_file_path: _Path | None = None,
    default_file_path: _Path | None = None,
) -> None: ...
def ApplySnapshotVhdSet(
    handle: _Handle, snapshot_id: _Guid, leaf_snapshot_id: _Guid, flags: ApplySnapshotVhdSetFlag | Literal[0] = 0, version: int = 1
) -> None: ...
def RawSCSIVirtualDisk(
    handle: _Handle,
    cdb: Buffer,
    *,
    data_in: bool,
    data: Buffer | None = None,
    data_transfer_length: int | None = None,
    sense_info_length: int = 18,
    srb_flags: int = 0,
    rsvd_handle: bool = False,
    flags: RawScsiVirtualDiskFlag | Literal[0] = 0,
    version: int = 1,
) -> RawScsiResponse: ...
def ForkVirtualDisk(
    handle: _Handle,
    forked_virtual_disk_path: _Path | None,
    flags: ForkVirtualDiskFlag | Literal[0] = 0,
    version: int = 1,
    *,
    overlapped: Overlapped | None = None,
) -> None: ...
def CompleteForkVirtualDisk(handle: _Handle) -> None: ...

__all__ = [
    "OpenVirtualDisk", "CreateVirtualDisk", "AttachVirtualDisk", "DetachVirtualDisk",
    "GetVirtualDiskPhysicalPath", "GetAllAttachedVirtualDiskPhysicalPaths",
    "GetStorageDependencyInformation", "GetVirtualDiskInformation",
    "SetVirtualDiskInformation", "EnumerateVirtualDiskMetadata", "GetVirtualDiskMetadata",
    "SetVirtualDiskMetadata", "DeleteVirtualDiskMetadata", "GetVirtualDiskOperationProgress",
    "CompactVirtualDisk", "MergeVirtualDisk", "ExpandVirtualDisk", "ResizeVirtualDisk",
    "MirrorVirtualDisk", "BreakMirrorVirtualDisk", "AddVirtualDiskParent",
    "QueryChangesVirtualDisk", "TakeSnapshotVhdSet", "DeleteSnapshotVhdSet", "ModifyVhdSet",
    "ApplySnapshotVhdSet", "RawSCSIVirtualDisk", "ForkVirtualDisk", "CompleteForkVirtualDisk",
    "VirtualDiskHandle", "Overlapped", "CancelIoEx", "VirtualStorageType", "VirtualDiskSize",
    "ParentLocation", "PhysicalDisk", "ChangeTrackingState", "StorageDependencyInfo",
    "VirtualDiskProgress", "ChangedRanges", "RawScsiResponse",
    "VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN", "VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT",
    "CloseHandle", "open_device", "attach_partition", "skip_sync", "copy_to_file", "copy_from_file", "features", "live_handle_count",
    "last_error_detail", "PLATFORM",
    "VHD_FOOTER_COOKIE", "VHD_FOOTER_SIZE", "VHD_MAXIMUM_SIZE", "VHDX_FILE_SIGNATURE",
    "VHDX_MAXIMUM_SIZE", "VHDX_MINIMUM_BLOCK_SIZE", "VHDX_MAXIMUM_BLOCK_SIZE",
    "VHDX_MAXIMUM_METADATA_ITEM_SIZE", "VHDX_SYSTEM_METADATA_ITEMS",
    "ENUM_CLASSES", "ENUM_ALIASES",
]

# --- BEGIN GENERATED ENUMS (scripts/generate_enums.py) ---
class OpenVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1
    VERSION_2 = 2
    VERSION_3 = 3

class VirtualDiskAccessMask(enum.IntFlag):
    NONE = 0x0
    ATTACH_RO = 0x10000
    ATTACH_RW = 0x20000
    DETACH = 0x40000
    GET_INFO = 0x80000
    CREATE = 0x100000
    METAOPS = 0x200000
    READ = 0xd0000
    ALL = 0x3f0000
    WRITABLE = 0x320000

class OpenVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    NO_PARENTS = 0x1
    BLANK_FILE = 0x2
    BOOT_DRIVE = 0x4
    CACHED_IO = 0x8
    CUSTOM_DIFF_CHAIN = 0x10
    PARENT_CACHED_IO = 0x20
    VHDSET_FILE_ONLY = 0x40
    IGNORE_RELATIVE_PARENT_LOCATOR = 0x80
    NO_WRITE_HARDENING = 0x100
    SUPPORT_COMPRESSED_VOLUMES = 0x200
    SUPPORT_SPARSE_FILES_ANY_FS = 0x400
    SUPPORT_ENCRYPTED_FILES = 0x800

class CreateVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1
    VERSION_2 = 2
    VERSION_3 = 3
    VERSION_4 = 4

class CreateVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    FULL_PHYSICAL_ALLOCATION = 0x1
    PREVENT_WRITES_TO_SOURCE_DISK = 0x2
    DO_NOT_COPY_METADATA_FROM_PARENT = 0x4
    CREATE_BACKING_STORAGE = 0x8
    USE_CHANGE_TRACKING_SOURCE_LIMIT = 0x10
    PRESERVE_PARENT_CHANGE_TRACKING_STATE = 0x20
    VHD_SET_USE_ORIGINAL_BACKING_STORAGE = 0x40
    SPARSE_FILE = 0x80
    PMEM_COMPATIBLE = 0x100
    SUPPORT_COMPRESSED_VOLUMES = 0x200
    SUPPORT_SPARSE_FILES_ANY_FS = 0x400

class AttachVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1
    VERSION_2 = 2

class AttachVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    READ_ONLY = 0x1
    NO_DRIVE_LETTER = 0x2
    PERMANENT_LIFETIME = 0x4
    NO_LOCAL_HOST = 0x8
    NO_SECURITY_DESCRIPTOR = 0x10
    BYPASS_DEFAULT_ENCRYPTION_POLICY = 0x20
    NON_PNP = 0x40
    RESTRICTED_RANGE = 0x80
    SINGLE_PARTITION = 0x100
    REGISTER_VOLUME = 0x200
    AT_BOOT = 0x400

class DetachVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0

class DependentDiskFlag(enum.IntFlag):
    NONE = 0x0
    MULT_BACKING_FILES = 0x1
    FULLY_ALLOCATED = 0x2
    READ_ONLY = 0x4
    REMOTE = 0x8
    SYSTEM_VOLUME = 0x10
    SYSTEM_VOLUME_PARENT = 0x20
    REMOVABLE = 0x40
    NO_DRIVE_LETTER = 0x80
    PARENT = 0x100
    NO_HOST_DISK = 0x200
    PERMANENT_LIFETIME = 0x400
    SUPPORT_COMPRESSED_VOLUMES = 0x800
    ALWAYS_ALLOW_SPARSE = 0x1000
    SUPPORT_ENCRYPTED_FILES = 0x2000

class StorageDependencyInfoVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1
    VERSION_2 = 2

class GetStorageDependencyFlag(enum.IntFlag):
    NONE = 0x0
    HOST_VOLUMES = 0x1
    DISK_HANDLE = 0x2

class GetVirtualDiskInfoVersion(enum.IntEnum):
    UNSPECIFIED = 0
    SIZE = 1
    IDENTIFIER = 2
    PARENT_LOCATION = 3
    PARENT_IDENTIFIER = 4
    PARENT_TIMESTAMP = 5
    VIRTUAL_STORAGE_TYPE = 6
    PROVIDER_SUBTYPE = 7
    IS_4K_ALIGNED = 8
    PHYSICAL_DISK = 9
    VHD_PHYSICAL_SECTOR_SIZE = 10
    SMALLEST_SAFE_VIRTUAL_SIZE = 11
    FRAGMENTATION = 12
    IS_LOADED = 13
    VIRTUAL_DISK_ID = 14
    CHANGE_TRACKING_STATE = 15

class SetVirtualDiskInfoVersion(enum.IntEnum):
    UNSPECIFIED = 0
    PARENT_PATH = 1
    IDENTIFIER = 2
    PARENT_PATH_WITH_DEPTH = 3
    PHYSICAL_SECTOR_SIZE = 4
    VIRTUAL_DISK_ID = 5
    CHANGE_TRACKING_STATE = 6
    PARENT_LOCATOR = 7

class CompactVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class CompactVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    NO_ZERO_SCAN = 0x1
    NO_BLOCK_MOVES = 0x2

class MergeVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1
    VERSION_2 = 2

class MergeVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0

class ExpandVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class ExpandVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    NOTIFY_CHANGE = 0x1

class ResizeVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class ResizeVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    ALLOW_UNSAFE_VIRTUAL_SIZE = 0x1
    RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE = 0x2

class MirrorVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class MirrorVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    EXISTING_FILE = 0x1
    SKIP_MIRROR_ACTIVATION = 0x2
    ENABLE_SMB_COMPRESSION = 0x4
    IS_LIVE_MIGRATION = 0x8

class QueryChangesVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0

class TakeSnapshotVhdSetFlag(enum.IntFlag):
    NONE = 0x0
    WRITEABLE = 0x1

class TakeSnapshotVhdSetVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class DeleteSnapshotVhdSetFlag(enum.IntFlag):
    NONE = 0x0
    PERSIST_RCT = 0x1

class DeleteSnapshotVhdSetVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class ModifyVhdSetVersion(enum.IntEnum):
    UNSPECIFIED = 0
    SNAPSHOT_PATH = 1
    REMOVE_SNAPSHOT = 2
    DEFAULT_SNAPSHOT_PATH = 3

class ModifyVhdSetFlag(enum.IntFlag):
    NONE = 0x0
    WRITEABLE_SNAPSHOT = 0x1

class ApplySnapshotVhdSetFlag(enum.IntFlag):
    NONE = 0x0
    WRITEABLE = 0x1

class ApplySnapshotVhdSetVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class RawScsiVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0

class RawScsiVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class ForkVirtualDiskVersion(enum.IntEnum):
    UNSPECIFIED = 0
    VERSION_1 = 1

class ForkVirtualDiskFlag(enum.IntFlag):
    NONE = 0x0
    EXISTING_FILE = 0x1

class VirtualStorageTypeDevice(enum.IntEnum):
    UNKNOWN = 0
    ISO = 1
    VHD = 2
    VHDX = 3
    VHDSET = 4

class ProviderSubtype(enum.IntEnum):
    FIXED = 2
    DYNAMIC = 3
    DIFFERENCING = 4

ENUM_CLASSES: tuple[str, ...]
ENUM_ALIASES: tuple[str, ...]

OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = OpenVirtualDiskVersion.UNSPECIFIED
OPEN_VIRTUAL_DISK_VERSION_1: Final = OpenVirtualDiskVersion.VERSION_1
OPEN_VIRTUAL_DISK_VERSION_2: Final = OpenVirtualDiskVersion.VERSION_2
OPEN_VIRTUAL_DISK_VERSION_3: Final = OpenVirtualDiskVersion.VERSION_3
VIRTUAL_DISK_ACCESS_NONE: Final = VirtualDiskAccessMask.NONE
VIRTUAL_DISK_ACCESS_ATTACH_RO: Final = VirtualDiskAccessMask.ATTACH_RO
VIRTUAL_DISK_ACCESS_ATTACH_RW: Final = VirtualDiskAccessMask.ATTACH_RW
VIRTUAL_DISK_ACCESS_DETACH: Final = VirtualDiskAccessMask.DETACH
VIRTUAL_DISK_ACCESS_GET_INFO: Final = VirtualDiskAccessMask.GET_INFO
VIRTUAL_DISK_ACCESS_CREATE: Final = VirtualDiskAccessMask.CREATE
VIRTUAL_DISK_ACCESS_METAOPS: Final = VirtualDiskAccessMask.METAOPS
VIRTUAL_DISK_ACCESS_READ: Final = VirtualDiskAccessMask.READ
VIRTUAL_DISK_ACCESS_ALL: Final = VirtualDiskAccessMask.ALL
VIRTUAL_DISK_ACCESS_WRITABLE: Final = VirtualDiskAccessMask.WRITABLE
OPEN_VIRTUAL_DISK_FLAG_NONE: Final = OpenVirtualDiskFlag.NONE
OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS: Final = OpenVirtualDiskFlag.NO_PARENTS
OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE: Final = OpenVirtualDiskFlag.BLANK_FILE
OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE: Final = OpenVirtualDiskFlag.BOOT_DRIVE
OPEN_VIRTUAL_DISK_FLAG_CACHED_IO: Final = OpenVirtualDiskFlag.CACHED_IO
OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN: Final = OpenVirtualDiskFlag.CUSTOM_DIFF_CHAIN
OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO: Final = OpenVirtualDiskFlag.PARENT_CACHED_IO
OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY: Final = OpenVirtualDiskFlag.VHDSET_FILE_ONLY
OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR: Final = OpenVirtualDiskFlag.IGNORE_RELATIVE_PARENT_LOCATOR
OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING: Final = OpenVirtualDiskFlag.NO_WRITE_HARDENING
OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES: Final = OpenVirtualDiskFlag.SUPPORT_COMPRESSED_VOLUMES
OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS: Final = OpenVirtualDiskFlag.SUPPORT_SPARSE_FILES_ANY_FS
OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES: Final = OpenVirtualDiskFlag.SUPPORT_ENCRYPTED_FILES
CREATE_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = CreateVirtualDiskVersion.UNSPECIFIED
CREATE_VIRTUAL_DISK_VERSION_1: Final = CreateVirtualDiskVersion.VERSION_1
CREATE_VIRTUAL_DISK_VERSION_2: Final = CreateVirtualDiskVersion.VERSION_2
CREATE_VIRTUAL_DISK_VERSION_3: Final = CreateVirtualDiskVersion.VERSION_3
CREATE_VIRTUAL_DISK_VERSION_4: Final = CreateVirtualDiskVersion.VERSION_4
CREATE_VIRTUAL_DISK_FLAG_NONE: Final = CreateVirtualDiskFlag.NONE
CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION: Final = CreateVirtualDiskFlag.FULL_PHYSICAL_ALLOCATION
CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK: Final = CreateVirtualDiskFlag.PREVENT_WRITES_TO_SOURCE_DISK
CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT: Final = CreateVirtualDiskFlag.DO_NOT_COPY_METADATA_FROM_PARENT
CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE: Final = CreateVirtualDiskFlag.CREATE_BACKING_STORAGE
CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT: Final = CreateVirtualDiskFlag.USE_CHANGE_TRACKING_SOURCE_LIMIT
CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE: Final = CreateVirtualDiskFlag.PRESERVE_PARENT_CHANGE_TRACKING_STATE
CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE: Final = CreateVirtualDiskFlag.VHD_SET_USE_ORIGINAL_BACKING_STORAGE
CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE: Final = CreateVirtualDiskFlag.SPARSE_FILE
CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE: Final = CreateVirtualDiskFlag.PMEM_COMPATIBLE
CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES: Final = CreateVirtualDiskFlag.SUPPORT_COMPRESSED_VOLUMES
CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS: Final = CreateVirtualDiskFlag.SUPPORT_SPARSE_FILES_ANY_FS
ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = AttachVirtualDiskVersion.UNSPECIFIED
ATTACH_VIRTUAL_DISK_VERSION_1: Final = AttachVirtualDiskVersion.VERSION_1
ATTACH_VIRTUAL_DISK_VERSION_2: Final = AttachVirtualDiskVersion.VERSION_2
ATTACH_VIRTUAL_DISK_FLAG_NONE: Final = AttachVirtualDiskFlag.NONE
ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY: Final = AttachVirtualDiskFlag.READ_ONLY
ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER: Final = AttachVirtualDiskFlag.NO_DRIVE_LETTER
ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME: Final = AttachVirtualDiskFlag.PERMANENT_LIFETIME
ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST: Final = AttachVirtualDiskFlag.NO_LOCAL_HOST
ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR: Final = AttachVirtualDiskFlag.NO_SECURITY_DESCRIPTOR
ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY: Final = AttachVirtualDiskFlag.BYPASS_DEFAULT_ENCRYPTION_POLICY
ATTACH_VIRTUAL_DISK_FLAG_NON_PNP: Final = AttachVirtualDiskFlag.NON_PNP
ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE: Final = AttachVirtualDiskFlag.RESTRICTED_RANGE
ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION: Final = AttachVirtualDiskFlag.SINGLE_PARTITION
ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME: Final = AttachVirtualDiskFlag.REGISTER_VOLUME
ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT: Final = AttachVirtualDiskFlag.AT_BOOT
DETACH_VIRTUAL_DISK_FLAG_NONE: Final = DetachVirtualDiskFlag.NONE
DEPENDENT_DISK_FLAG_NONE: Final = DependentDiskFlag.NONE
DEPENDENT_DISK_FLAG_MULT_BACKING_FILES: Final = DependentDiskFlag.MULT_BACKING_FILES
DEPENDENT_DISK_FLAG_FULLY_ALLOCATED: Final = DependentDiskFlag.FULLY_ALLOCATED
DEPENDENT_DISK_FLAG_READ_ONLY: Final = DependentDiskFlag.READ_ONLY
DEPENDENT_DISK_FLAG_REMOTE: Final = DependentDiskFlag.REMOTE
DEPENDENT_DISK_FLAG_SYSTEM_VOLUME: Final = DependentDiskFlag.SYSTEM_VOLUME
DEPENDENT_DISK_FLAG_SYSTEM_VOLUME_PARENT: Final = DependentDiskFlag.SYSTEM_VOLUME_PARENT
DEPENDENT_DISK_FLAG_REMOVABLE: Final = DependentDiskFlag.REMOVABLE
DEPENDENT_DISK_FLAG_NO_DRIVE_LETTER: Final = DependentDiskFlag.NO_DRIVE_LETTER
DEPENDENT_DISK_FLAG_PARENT: Final = DependentDiskFlag.PARENT
DEPENDENT_DISK_FLAG_NO_HOST_DISK: Final = DependentDiskFlag.NO_HOST_DISK
DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME: Final = DependentDiskFlag.PERMANENT_LIFETIME
DEPENDENT_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES: Final = DependentDiskFlag.SUPPORT_COMPRESSED_VOLUMES
DEPENDENT_DISK_FLAG_ALWAYS_ALLOW_SPARSE: Final = DependentDiskFlag.ALWAYS_ALLOW_SPARSE
DEPENDENT_DISK_FLAG_SUPPORT_ENCRYPTED_FILES: Final = DependentDiskFlag.SUPPORT_ENCRYPTED_FILES
STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED: Final = StorageDependencyInfoVersion.UNSPECIFIED
STORAGE_DEPENDENCY_INFO_VERSION_1: Final = StorageDependencyInfoVersion.VERSION_1
STORAGE_DEPENDENCY_INFO_VERSION_2: Final = StorageDependencyInfoVersion.VERSION_2
GET_STORAGE_DEPENDENCY_FLAG_NONE: Final = GetStorageDependencyFlag.NONE
GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES: Final = GetStorageDependencyFlag.HOST_VOLUMES
GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE: Final = GetStorageDependencyFlag.DISK_HANDLE
GET_VIRTUAL_DISK_INFO_UNSPECIFIED: Final = GetVirtualDiskInfoVersion.UNSPECIFIED
GET_VIRTUAL_DISK_INFO_SIZE: Final = GetVirtualDiskInfoVersion.SIZE
GET_VIRTUAL_DISK_INFO_IDENTIFIER: Final = GetVirtualDiskInfoVersion.IDENTIFIER
GET_VIRTUAL_DISK_INFO_PARENT_LOCATION: Final = GetVirtualDiskInfoVersion.PARENT_LOCATION
GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER: Final = GetVirtualDiskInfoVersion.PARENT_IDENTIFIER
GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP: Final = GetVirtualDiskInfoVersion.PARENT_TIMESTAMP
GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE: Final = GetVirtualDiskInfoVersion.VIRTUAL_STORAGE_TYPE
GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE: Final = GetVirtualDiskInfoVersion.PROVIDER_SUBTYPE
GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED: Final = GetVirtualDiskInfoVersion.IS_4K_ALIGNED
GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK: Final = GetVirtualDiskInfoVersion.PHYSICAL_DISK
GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE: Final = GetVirtualDiskInfoVersion.VHD_PHYSICAL_SECTOR_SIZE
GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE: Final = GetVirtualDiskInfoVersion.SMALLEST_SAFE_VIRTUAL_SIZE
GET_VIRTUAL_DISK_INFO_FRAGMENTATION: Final = GetVirtualDiskInfoVersion.FRAGMENTATION
GET_VIRTUAL_DISK_INFO_IS_LOADED: Final = GetVirtualDiskInfoVersion.IS_LOADED
GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID: Final = GetVirtualDiskInfoVersion.VIRTUAL_DISK_ID
GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE: Final = GetVirtualDiskInfoVersion.CHANGE_TRACKING_STATE
SET_VIRTUAL_DISK_INFO_UNSPECIFIED: Final = SetVirtualDiskInfoVersion.UNSPECIFIED
SET_VIRTUAL_DISK_INFO_PARENT_PATH: Final = SetVirtualDiskInfoVersion.PARENT_PATH
SET_VIRTUAL_DISK_INFO_IDENTIFIER: Final = SetVirtualDiskInfoVersion.IDENTIFIER
SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH: Final = SetVirtualDiskInfoVersion.PARENT_PATH_WITH_DEPTH
SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE: Final = SetVirtualDiskInfoVersion.PHYSICAL_SECTOR_SIZE
SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID: Final = SetVirtualDiskInfoVersion.VIRTUAL_DISK_ID
SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE: Final = SetVirtualDiskInfoVersion.CHANGE_TRACKING_STATE
SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR: Final = SetVirtualDiskInfoVersion.PARENT_LOCATOR
COMPACT_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = CompactVirtualDiskVersion.UNSPECIFIED
COMPACT_VIRTUAL_DISK_VERSION_1: Final = CompactVirtualDiskVersion.VERSION_1
COMPACT_VIRTUAL_DISK_FLAG_NONE: Final = CompactVirtualDiskFlag.NONE
COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN: Final = CompactVirtualDiskFlag.NO_ZERO_SCAN
COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES: Final = CompactVirtualDiskFlag.NO_BLOCK_MOVES
MERGE_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = MergeVirtualDiskVersion.UNSPECIFIED
MERGE_VIRTUAL_DISK_VERSION_1: Final = MergeVirtualDiskVersion.VERSION_1
MERGE_VIRTUAL_DISK_VERSION_2: Final = MergeVirtualDiskVersion.VERSION_2
MERGE_VIRTUAL_DISK_FLAG_NONE: Final = MergeVirtualDiskFlag.NONE
EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = ExpandVirtualDiskVersion.UNSPECIFIED
EXPAND_VIRTUAL_DISK_VERSION_1: Final = ExpandVirtualDiskVersion.VERSION_1
EXPAND_VIRTUAL_DISK_FLAG_NONE: Final = ExpandVirtualDiskFlag.NONE
EXPAND_VIRTUAL_DISK_FLAG_NOTIFY_CHANGE: Final = ExpandVirtualDiskFlag.NOTIFY_CHANGE
RESIZE_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = ResizeVirtualDiskVersion.UNSPECIFIED
RESIZE_VIRTUAL_DISK_VERSION_1: Final = ResizeVirtualDiskVersion.VERSION_1
RESIZE_VIRTUAL_DISK_FLAG_NONE: Final = ResizeVirtualDiskFlag.NONE
RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE: Final = ResizeVirtualDiskFlag.ALLOW_UNSAFE_VIRTUAL_SIZE
RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE: Final = ResizeVirtualDiskFlag.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE
MIRROR_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = MirrorVirtualDiskVersion.UNSPECIFIED
MIRROR_VIRTUAL_DISK_VERSION_1: Final = MirrorVirtualDiskVersion.VERSION_1
MIRROR_VIRTUAL_DISK_FLAG_NONE: Final = MirrorVirtualDiskFlag.NONE
MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE: Final = MirrorVirtualDiskFlag.EXISTING_FILE
MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION: Final = MirrorVirtualDiskFlag.SKIP_MIRROR_ACTIVATION
MIRROR_VIRTUAL_DISK_FLAG_ENABLE_SMB_COMPRESSION: Final = MirrorVirtualDiskFlag.ENABLE_SMB_COMPRESSION
MIRROR_VIRTUAL_DISK_FLAG_IS_LIVE_MIGRATION: Final = MirrorVirtualDiskFlag.IS_LIVE_MIGRATION
QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE: Final = QueryChangesVirtualDiskFlag.NONE
TAKE_SNAPSHOT_VHDSET_FLAG_NONE: Final = TakeSnapshotVhdSetFlag.NONE
TAKE_SNAPSHOT_VHDSET_FLAG_WRITEABLE: Final = TakeSnapshotVhdSetFlag.WRITEABLE
TAKE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED: Final = TakeSnapshotVhdSetVersion.UNSPECIFIED
TAKE_SNAPSHOT_VHDSET_VERSION_1: Final = TakeSnapshotVhdSetVersion.VERSION_1
DELETE_SNAPSHOT_VHDSET_FLAG_NONE: Final = DeleteSnapshotVhdSetFlag.NONE
DELETE_SNAPSHOT_VHDSET_FLAG_PERSIST_RCT: Final = DeleteSnapshotVhdSetFlag.PERSIST_RCT
DELETE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED: Final = DeleteSnapshotVhdSetVersion.UNSPECIFIED
DELETE_SNAPSHOT_VHDSET_VERSION_1: Final = DeleteSnapshotVhdSetVersion.VERSION_1
MODIFY_VHDSET_UNSPECIFIED: Final = ModifyVhdSetVersion.UNSPECIFIED
MODIFY_VHDSET_SNAPSHOT_PATH: Final = ModifyVhdSetVersion.SNAPSHOT_PATH
MODIFY_VHDSET_REMOVE_SNAPSHOT: Final = ModifyVhdSetVersion.REMOVE_SNAPSHOT
MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH: Final = ModifyVhdSetVersion.DEFAULT_SNAPSHOT_PATH
MODIFY_VHDSET_FLAG_NONE: Final = ModifyVhdSetFlag.NONE
MODIFY_VHDSET_FLAG_WRITEABLE_SNAPSHOT: Final = ModifyVhdSetFlag.WRITEABLE_SNAPSHOT
APPLY_SNAPSHOT_VHDSET_FLAG_NONE: Final = ApplySnapshotVhdSetFlag.NONE
APPLY_SNAPSHOT_VHDSET_FLAG_WRITEABLE: Final = ApplySnapshotVhdSetFlag.WRITEABLE
APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED: Final = ApplySnapshotVhdSetVersion.UNSPECIFIED
APPLY_SNAPSHOT_VHDSET_VERSION_1: Final = ApplySnapshotVhdSetVersion.VERSION_1
RAW_SCSI_VIRTUAL_DISK_FLAG_NONE: Final = RawScsiVirtualDiskFlag.NONE
RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = RawScsiVirtualDiskVersion.UNSPECIFIED
RAW_SCSI_VIRTUAL_DISK_VERSION_1: Final = RawScsiVirtualDiskVersion.VERSION_1
FORK_VIRTUAL_DISK_VERSION_UNSPECIFIED: Final = ForkVirtualDiskVersion.UNSPECIFIED
FORK_VIRTUAL_DISK_VERSION_1: Final = ForkVirtualDiskVersion.VERSION_1
FORK_VIRTUAL_DISK_FLAG_NONE: Final = ForkVirtualDiskFlag.NONE
FORK_VIRTUAL_DISK_FLAG_EXISTING_FILE: Final = ForkVirtualDiskFlag.EXISTING_FILE
VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN: Final = VirtualStorageTypeDevice.UNKNOWN
VIRTUAL_STORAGE_TYPE_DEVICE_ISO: Final = VirtualStorageTypeDevice.ISO
VIRTUAL_STORAGE_TYPE_DEVICE_VHD: Final = VirtualStorageTypeDevice.VHD
VIRTUAL_STORAGE_TYPE_DEVICE_VHDX: Final = VirtualStorageTypeDevice.VHDX
VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET: Final = VirtualStorageTypeDevice.VHDSET
VIRTDISK_API_PROVIDER_SUBTYPE_FIXED: Final = ProviderSubtype.FIXED
VIRTDISK_API_PROVIDER_SUBTYPE_DYNAMIC: Final = ProviderSubtype.DYNAMIC
VIRTDISK_API_PROVIDER_SUBTYPE_DIFFERENCING: Final = ProviderSubtype.DIFFERENCING

__all__ += [
    "OpenVirtualDiskVersion",
    "VirtualDiskAccessMask",
    "OpenVirtualDiskFlag",
    "CreateVirtualDiskVersion",
    "CreateVirtualDiskFlag",
    "AttachVirtualDiskVersion",
    "AttachVirtualDiskFlag",
    "DetachVirtualDiskFlag",
    "DependentDiskFlag",
    "StorageDependencyInfoVersion",
    "GetStorageDependencyFlag",
    "GetVirtualDiskInfoVersion",
    "SetVirtualDiskInfoVersion",
    "CompactVirtualDiskVersion",
    "CompactVirtualDiskFlag",
    "MergeVirtualDiskVersion",
    "MergeVirtualDiskFlag",
    "ExpandVirtualDiskVersion",
    "ExpandVirtualDiskFlag",
    "ResizeVirtualDiskVersion",
    "ResizeVirtualDiskFlag",
    "MirrorVirtualDiskVersion",
    "MirrorVirtualDiskFlag",
    "QueryChangesVirtualDiskFlag",
    "TakeSnapshotVhdSetFlag",
    "TakeSnapshotVhdSetVersion",
    "DeleteSnapshotVhdSetFlag",
    "DeleteSnapshotVhdSetVersion",
    "ModifyVhdSetVersion",
    "ModifyVhdSetFlag",
    "ApplySnapshotVhdSetFlag",
    "ApplySnapshotVhdSetVersion",
    "RawScsiVirtualDiskFlag",
    "RawScsiVirtualDiskVersion",
    "ForkVirtualDiskVersion",
    "ForkVirtualDiskFlag",
    "VirtualStorageTypeDevice",
    "ProviderSubtype",
    "OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "OPEN_VIRTUAL_DISK_VERSION_1",
    "OPEN_VIRTUAL_DISK_VERSION_2",
    "OPEN_VIRTUAL_DISK_VERSION_3",
    "VIRTUAL_DISK_ACCESS_NONE",
    "VIRTUAL_DISK_ACCESS_ATTACH_RO",
    "VIRTUAL_DISK_ACCESS_ATTACH_RW",
    "VIRTUAL_DISK_ACCESS_DETACH",
    "VIRTUAL_DISK_ACCESS_GET_INFO",
    "VIRTUAL_DISK_ACCESS_CREATE",
    "VIRTUAL_DISK_ACCESS_METAOPS",
    "VIRTUAL_DISK_ACCESS_READ",
    "VIRTUAL_DISK_ACCESS_ALL",
    "VIRTUAL_DISK_ACCESS_WRITABLE",
    "OPEN_VIRTUAL_DISK_FLAG_NONE",
    "OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS",
    "OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE",
    "OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE",
    "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO",
    "OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN",
    "OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO",
    "OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY",
    "OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR",
    "OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING",
    "OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES",
    "OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS",
    "OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES",
    "CREATE_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "CREATE_VIRTUAL_DISK_VERSION_1",
    "CREATE_VIRTUAL_DISK_VERSION_2",
    "CREATE_VIRTUAL_DISK_VERSION_3",
    "CREATE_VIRTUAL_DISK_VERSION_4",
    "CREATE_VIRTUAL_DISK_FLAG_NONE",
    "CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION",
    "CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK",
    "CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT",
    "CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE",
    "CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT",
    "CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE",
    "CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE",
    "CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE",
    "CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE",
    "CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES",
    "CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS",
    "ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "ATTACH_VIRTUAL_DISK_VERSION_1",
    "ATTACH_VIRTUAL_DISK_VERSION_2",
    "ATTACH_VIRTUAL_DISK_FLAG_NONE",
    "ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY",
    "ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER",
    "ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME",
    "ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST",
    "ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR",
    "ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY",
    "ATTACH_VIRTUAL_DISK_FLAG_NON_PNP",
    "ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE",
    "ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION",
    "ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME",
    "ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT",
    "DETACH_VIRTUAL_DISK_FLAG_NONE",
    "DEPENDENT_DISK_FLAG_NONE",
    "DEPENDENT_DISK_FLAG_MULT_BACKING_FILES",
    "DEPENDENT_DISK_FLAG_FULLY_ALLOCATED",
    "DEPENDENT_DISK_FLAG_READ_ONLY",
    "DEPENDENT_DISK_FLAG_REMOTE",
    "DEPENDENT_DISK_FLAG_SYSTEM_VOLUME",
    "DEPENDENT_DISK_FLAG_SYSTEM_VOLUME_PARENT",
    "DEPENDENT_DISK_FLAG_REMOVABLE",
    "DEPENDENT_DISK_FLAG_NO_DRIVE_LETTER",
    "DEPENDENT_DISK_FLAG_PARENT",
    "DEPENDENT_DISK_FLAG_NO_HOST_DISK",
    "DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME",
    "DEPENDENT_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES",
    "DEPENDENT_DISK_FLAG_ALWAYS_ALLOW_SPARSE",
    "DEPENDENT_DISK_FLAG_SUPPORT_ENCRYPTED_FILES",
    "STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED",
    "STORAGE_DEPENDENCY_INFO_VERSION_1",
    "STORAGE_DEPENDENCY_INFO_VERSION_2",
    "GET_STORAGE_DEPENDENCY_FLAG_NONE",
    "GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES",
    "GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE",
    "GET_VIRTUAL_DISK_INFO_UNSPECIFIED",
    "GET_VIRTUAL_DISK_INFO_SIZE",
    "GET_VIRTUAL_DISK_INFO_IDENTIFIER",
    "GET_VIRTUAL_DISK_INFO_PARENT_LOCATION",
    "GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER",
    "GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP",
    "GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE",
    "GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE",
    "GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED",
    "GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK",
    "GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE",
    "GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE",
    "GET_VIRTUAL_DISK_INFO_FRAGMENTATION",
    "GET_VIRTUAL_DISK_INFO_IS_LOADED",
    "GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID",
    "GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE",
    "SET_VIRTUAL_DISK_INFO_UNSPECIFIED",
    "SET_VIRTUAL_DISK_INFO_PARENT_PATH",
    "SET_VIRTUAL_DISK_INFO_IDENTIFIER",
    "SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH",
    "SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE",
    "SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID",
    "SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE",
    "SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR",
    "COMPACT_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "COMPACT_VIRTUAL_DISK_VERSION_1",
    "COMPACT_VIRTUAL_DISK_FLAG_NONE",
    "COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN",
    "COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES",
    "MERGE_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "MERGE_VIRTUAL_DISK_VERSION_1",
    "MERGE_VIRTUAL_DISK_VERSION_2",
    "MERGE_VIRTUAL_DISK_FLAG_NONE",
    "EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "EXPAND_VIRTUAL_DISK_VERSION_1",
    "EXPAND_VIRTUAL_DISK_FLAG_NONE",
    "EXPAND_VIRTUAL_DISK_FLAG_NOTIFY_CHANGE",
    "RESIZE_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "RESIZE_VIRTUAL_DISK_VERSION_1",
    "RESIZE_VIRTUAL_DISK_FLAG_NONE",
    "RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE",
    "RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE",
    "MIRROR_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "MIRROR_VIRTUAL_DISK_VERSION_1",
    "MIRROR_VIRTUAL_DISK_FLAG_NONE",
    "MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE",
    "MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION",
    "MIRROR_VIRTUAL_DISK_FLAG_ENABLE_SMB_COMPRESSION",
    "MIRROR_VIRTUAL_DISK_FLAG_IS_LIVE_MIGRATION",
    "QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE",
    "TAKE_SNAPSHOT_VHDSET_FLAG_NONE",
    "TAKE_SNAPSHOT_VHDSET_FLAG_WRITEABLE",
    "TAKE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED",
    "TAKE_SNAPSHOT_VHDSET_VERSION_1",
    "DELETE_SNAPSHOT_VHDSET_FLAG_NONE",
    "DELETE_SNAPSHOT_VHDSET_FLAG_PERSIST_RCT",
    "DELETE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED",
    "DELETE_SNAPSHOT_VHDSET_VERSION_1",
    "MODIFY_VHDSET_UNSPECIFIED",
    "MODIFY_VHDSET_SNAPSHOT_PATH",
    "MODIFY_VHDSET_REMOVE_SNAPSHOT",
    "MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH",
    "MODIFY_VHDSET_FLAG_NONE",
    "MODIFY_VHDSET_FLAG_WRITEABLE_SNAPSHOT",
    "APPLY_SNAPSHOT_VHDSET_FLAG_NONE",
    "APPLY_SNAPSHOT_VHDSET_FLAG_WRITEABLE",
    "APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED",
    "APPLY_SNAPSHOT_VHDSET_VERSION_1",
    "RAW_SCSI_VIRTUAL_DISK_FLAG_NONE",
    "RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "RAW_SCSI_VIRTUAL_DISK_VERSION_1",
    "FORK_VIRTUAL_DISK_VERSION_UNSPECIFIED",
    "FORK_VIRTUAL_DISK_VERSION_1",
    "FORK_VIRTUAL_DISK_FLAG_NONE",
    "FORK_VIRTUAL_DISK_FLAG_EXISTING_FILE",
    "VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN",
    "VIRTUAL_STORAGE_TYPE_DEVICE_ISO",
    "VIRTUAL_STORAGE_TYPE_DEVICE_VHD",
    "VIRTUAL_STORAGE_TYPE_DEVICE_VHDX",
    "VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET",
    "VIRTDISK_API_PROVIDER_SUBTYPE_FIXED",
    "VIRTDISK_API_PROVIDER_SUBTYPE_DYNAMIC",
    "VIRTDISK_API_PROVIDER_SUBTYPE_DIFFERENCING",
]
# --- END GENERATED ENUMS ---
