# Cython declarations of src/include/virtdisk_api.h, one line per C item.
#
# Struct layouts are the C header's business (it pins them to the SDK); these
# declarations only name the fields the extension reads or writes.  Unions of
# the SDK are anonymous, so their arms appear here as direct members, which is
# how C code spells them too (params.Version2.ReadOnly).  The nested arm types
# are never instantiated by name.

# --- BEGIN GENERATED ENUMS (scripts/generate_enums.py) ---
cdef extern from "virtdisk_api.h" nogil:
    ctypedef enum OPEN_VIRTUAL_DISK_VERSION:
        OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED
        OPEN_VIRTUAL_DISK_VERSION_1
        OPEN_VIRTUAL_DISK_VERSION_2
        OPEN_VIRTUAL_DISK_VERSION_3

    ctypedef enum VIRTUAL_DISK_ACCESS_MASK:
        VIRTUAL_DISK_ACCESS_NONE
        VIRTUAL_DISK_ACCESS_ATTACH_RO
        VIRTUAL_DISK_ACCESS_ATTACH_RW
        VIRTUAL_DISK_ACCESS_DETACH
        VIRTUAL_DISK_ACCESS_GET_INFO
        VIRTUAL_DISK_ACCESS_CREATE
        VIRTUAL_DISK_ACCESS_METAOPS
        VIRTUAL_DISK_ACCESS_READ
        VIRTUAL_DISK_ACCESS_ALL
        VIRTUAL_DISK_ACCESS_WRITABLE

    ctypedef enum OPEN_VIRTUAL_DISK_FLAG:
        OPEN_VIRTUAL_DISK_FLAG_NONE
        OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS
        OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE
        OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE
        OPEN_VIRTUAL_DISK_FLAG_CACHED_IO
        OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN
        OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO
        OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY
        OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR
        OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING
        OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES
        OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS
        OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES

    ctypedef enum CREATE_VIRTUAL_DISK_VERSION:
        CREATE_VIRTUAL_DISK_VERSION_UNSPECIFIED
        CREATE_VIRTUAL_DISK_VERSION_1
        CREATE_VIRTUAL_DISK_VERSION_2
        CREATE_VIRTUAL_DISK_VERSION_3
        CREATE_VIRTUAL_DISK_VERSION_4

    ctypedef enum CREATE_VIRTUAL_DISK_FLAG:
        CREATE_VIRTUAL_DISK_FLAG_NONE
        CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION
        CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK
        CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT
        CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE
        CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT
        CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE
        CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE
        CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE
        CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE
        CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES
        CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS

    ctypedef enum ATTACH_VIRTUAL_DISK_VERSION:
        ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED
        ATTACH_VIRTUAL_DISK_VERSION_1
        ATTACH_VIRTUAL_DISK_VERSION_2

    ctypedef enum ATTACH_VIRTUAL_DISK_FLAG:
        ATTACH_VIRTUAL_DISK_FLAG_NONE
        ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY
        ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER
        ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME
        ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST
        ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR
        ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY
        ATTACH_VIRTUAL_DISK_FLAG_NON_PNP
        ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE
        ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION
        ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME
        ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT

    ctypedef enum DETACH_VIRTUAL_DISK_FLAG:
        DETACH_VIRTUAL_DISK_FLAG_NONE

    ctypedef enum DEPENDENT_DISK_FLAG:
        DEPENDENT_DISK_FLAG_NONE
        DEPENDENT_DISK_FLAG_MULT_BACKING_FILES
        DEPENDENT_DISK_FLAG_FULLY_ALLOCATED
        DEPENDENT_DISK_FLAG_READ_ONLY
        DEPENDENT_DISK_FLAG_REMOTE
        DEPENDENT_DISK_FLAG_SYSTEM_VOLUME
        DEPENDENT_DISK_FLAG_SYSTEM_VOLUME_PARENT
        DEPENDENT_DISK_FLAG_REMOVABLE
        DEPENDENT_DISK_FLAG_NO_DRIVE_LETTER
        DEPENDENT_DISK_FLAG_PARENT
        DEPENDENT_DISK_FLAG_NO_HOST_DISK
        DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME
        DEPENDENT_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES
        DEPENDENT_DISK_FLAG_ALWAYS_ALLOW_SPARSE
        DEPENDENT_DISK_FLAG_SUPPORT_ENCRYPTED_FILES

    ctypedef enum STORAGE_DEPENDENCY_INFO_VERSION:
        STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED
        STORAGE_DEPENDENCY_INFO_VERSION_1
        STORAGE_DEPENDENCY_INFO_VERSION_2

    ctypedef enum GET_STORAGE_DEPENDENCY_FLAG:
        GET_STORAGE_DEPENDENCY_FLAG_NONE
        GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES
        GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE

    ctypedef enum GET_VIRTUAL_DISK_INFO_VERSION:
        GET_VIRTUAL_DISK_INFO_UNSPECIFIED
        GET_VIRTUAL_DISK_INFO_SIZE
        GET_VIRTUAL_DISK_INFO_IDENTIFIER
        GET_VIRTUAL_DISK_INFO_PARENT_LOCATION
        GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER
        GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP
        GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE
        GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE
        GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED
        GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK
        GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE
        GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE
        GET_VIRTUAL_DISK_INFO_FRAGMENTATION
        GET_VIRTUAL_DISK_INFO_IS_LOADED
        GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID
        GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE

    ctypedef enum SET_VIRTUAL_DISK_INFO_VERSION:
        SET_VIRTUAL_DISK_INFO_UNSPECIFIED
        SET_VIRTUAL_DISK_INFO_PARENT_PATH
        SET_VIRTUAL_DISK_INFO_IDENTIFIER
        SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH
        SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE
        SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID
        SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE
        SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR

    ctypedef enum COMPACT_VIRTUAL_DISK_VERSION:
        COMPACT_VIRTUAL_DISK_VERSION_UNSPECIFIED
        COMPACT_VIRTUAL_DISK_VERSION_1

    ctypedef enum COMPACT_VIRTUAL_DISK_FLAG:
        COMPACT_VIRTUAL_DISK_FLAG_NONE
        COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN
        COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES

    ctypedef enum MERGE_VIRTUAL_DISK_VERSION:
        MERGE_VIRTUAL_DISK_VERSION_UNSPECIFIED
        MERGE_VIRTUAL_DISK_VERSION_1
        MERGE_VIRTUAL_DISK_VERSION_2

    ctypedef enum MERGE_VIRTUAL_DISK_FLAG:
        MERGE_VIRTUAL_DISK_FLAG_NONE

    ctypedef enum EXPAND_VIRTUAL_DISK_VERSION:
        EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED
        EXPAND_VIRTUAL_DISK_VERSION_1

    ctypedef enum EXPAND_VIRTUAL_DISK_FLAG:
        EXPAND_VIRTUAL_DISK_FLAG_NONE
        EXPAND_VIRTUAL_DISK_FLAG_NOTIFY_CHANGE

    ctypedef enum RESIZE_VIRTUAL_DISK_VERSION:
        RESIZE_VIRTUAL_DISK_VERSION_UNSPECIFIED
        RESIZE_VIRTUAL_DISK_VERSION_1

    ctypedef enum RESIZE_VIRTUAL_DISK_FLAG:
        RESIZE_VIRTUAL_DISK_FLAG_NONE
        RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE
        RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE

    ctypedef enum MIRROR_VIRTUAL_DISK_VERSION:
        MIRROR_VIRTUAL_DISK_VERSION_UNSPECIFIED
        MIRROR_VIRTUAL_DISK_VERSION_1

    ctypedef enum MIRROR_VIRTUAL_DISK_FLAG:
        MIRROR_VIRTUAL_DISK_FLAG_NONE
        MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE
        MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION
        MIRROR_VIRTUAL_DISK_FLAG_ENABLE_SMB_COMPRESSION
        MIRROR_VIRTUAL_DISK_FLAG_IS_LIVE_MIGRATION

    ctypedef enum QUERY_CHANGES_VIRTUAL_DISK_FLAG:
        QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE

    ctypedef enum TAKE_SNAPSHOT_VHDSET_FLAG:
        TAKE_SNAPSHOT_VHDSET_FLAG_NONE
        TAKE_SNAPSHOT_VHDSET_FLAG_WRITEABLE

    ctypedef enum TAKE_SNAPSHOT_VHDSET_VERSION:
        TAKE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED
        TAKE_SNAPSHOT_VHDSET_VERSION_1

    ctypedef enum DELETE_SNAPSHOT_VHDSET_FLAG:
        DELETE_SNAPSHOT_VHDSET_FLAG_NONE
        DELETE_SNAPSHOT_VHDSET_FLAG_PERSIST_RCT

    ctypedef enum DELETE_SNAPSHOT_VHDSET_VERSION:
        DELETE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED
        DELETE_SNAPSHOT_VHDSET_VERSION_1

    ctypedef enum MODIFY_VHDSET_VERSION:
        MODIFY_VHDSET_UNSPECIFIED
        MODIFY_VHDSET_SNAPSHOT_PATH
        MODIFY_VHDSET_REMOVE_SNAPSHOT
        MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH

    ctypedef enum MODIFY_VHDSET_FLAG:
        MODIFY_VHDSET_FLAG_NONE
        MODIFY_VHDSET_FLAG_WRITEABLE_SNAPSHOT

    ctypedef enum APPLY_SNAPSHOT_VHDSET_FLAG:
        APPLY_SNAPSHOT_VHDSET_FLAG_NONE
        APPLY_SNAPSHOT_VHDSET_FLAG_WRITEABLE

    ctypedef enum APPLY_SNAPSHOT_VHDSET_VERSION:
        APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED
        APPLY_SNAPSHOT_VHDSET_VERSION_1

    ctypedef enum RAW_SCSI_VIRTUAL_DISK_FLAG:
        RAW_SCSI_VIRTUAL_DISK_FLAG_NONE

    ctypedef enum RAW_SCSI_VIRTUAL_DISK_VERSION:
        RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED
        RAW_SCSI_VIRTUAL_DISK_VERSION_1

    ctypedef enum FORK_VIRTUAL_DISK_VERSION:
        FORK_VIRTUAL_DISK_VERSION_UNSPECIFIED
        FORK_VIRTUAL_DISK_VERSION_1

    ctypedef enum FORK_VIRTUAL_DISK_FLAG:
        FORK_VIRTUAL_DISK_FLAG_NONE
        FORK_VIRTUAL_DISK_FLAG_EXISTING_FILE

    enum:
        VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN
        VIRTUAL_STORAGE_TYPE_DEVICE_ISO
        VIRTUAL_STORAGE_TYPE_DEVICE_VHD
        VIRTUAL_STORAGE_TYPE_DEVICE_VHDX
        VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET

    enum:
        VIRTDISK_API_PROVIDER_SUBTYPE_FIXED
        VIRTDISK_API_PROVIDER_SUBTYPE_DYNAMIC
        VIRTDISK_API_PROVIDER_SUBTYPE_DIFFERENCING
# --- END GENERATED ENUMS ---

cdef extern from "virtdisk_api.h" nogil:
    ctypedef unsigned char UCHAR
    ctypedef unsigned short WCHAR
    ctypedef unsigned int DWORD
    ctypedef unsigned int ULONG
    ctypedef unsigned long long ULONGLONG
    ctypedef unsigned long long ULONG64
    ctypedef int BOOL
    ctypedef void *HANDLE
    ctypedef void *PSECURITY_DESCRIPTOR
    ctypedef const WCHAR *PCWSTR
    ctypedef WCHAR *PWSTR

    DWORD ERROR_SUCCESS
    DWORD ERROR_INVALID_HANDLE
    DWORD ERROR_INVALID_PARAMETER
    DWORD ERROR_CALL_NOT_IMPLEMENTED
    DWORD ERROR_INSUFFICIENT_BUFFER
    DWORD ERROR_PROC_NOT_FOUND
    DWORD ERROR_MORE_DATA
    DWORD ERROR_IO_PENDING

    enum:
        OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT
        MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH
        VIRTUAL_DISK_MAXIMUM_CHANGE_TRACKING_ID_LENGTH
        CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE
        CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_SECTOR_SIZE

    ctypedef struct GUID:
        unsigned long Data1
        unsigned short Data2
        unsigned short Data3
        unsigned char Data4[8]

    ctypedef struct OVERLAPPED:
        size_t Internal
        HANDLE hEvent

    ctypedef struct VIRTUAL_STORAGE_TYPE:
        ULONG DeviceId
        GUID VendorId

    # OPEN_VIRTUAL_DISK_PARAMETERS
    ctypedef struct _OpenV1:
        ULONG RWDepth
    ctypedef struct _OpenV2:
        BOOL GetInfoOnly
        BOOL ReadOnly
        GUID ResiliencyGuid
    ctypedef struct _OpenV3:
        BOOL GetInfoOnly
        BOOL ReadOnly
        GUID ResiliencyGuid
        GUID SnapshotId
    ctypedef struct OPEN_VIRTUAL_DISK_PARAMETERS:
        OPEN_VIRTUAL_DISK_VERSION Version
        _OpenV1 Version1
        _OpenV2 Version2
        _OpenV3 Version3

    # CREATE_VIRTUAL_DISK_PARAMETERS: Version4 holds every field of the
    # earlier versions at the same offsets, so one arm serves all four.
    ctypedef struct _CreateV1:
        GUID UniqueId
        ULONGLONG MaximumSize
        ULONG BlockSizeInBytes
        ULONG SectorSizeInBytes
        PCWSTR ParentPath
        PCWSTR SourcePath
    ctypedef struct _CreateV4:
        GUID UniqueId
        ULONGLONG MaximumSize
        ULONG BlockSizeInBytes
        ULONG SectorSizeInBytes
        ULONG PhysicalSectorSizeInBytes
        PCWSTR ParentPath
        PCWSTR SourcePath
        OPEN_VIRTUAL_DISK_FLAG OpenFlags
        VIRTUAL_STORAGE_TYPE ParentVirtualStorageType
        VIRTUAL_STORAGE_TYPE SourceVirtualStorageType
        GUID ResiliencyGuid
        PCWSTR SourceLimitPath
        VIRTUAL_STORAGE_TYPE BackingStorageType
        GUID PmemAddressAbstractionType
        ULONGLONG DataAlignment
    ctypedef struct CREATE_VIRTUAL_DISK_PARAMETERS:
        CREATE_VIRTUAL_DISK_VERSION Version
        _CreateV1 Version1
        _CreateV4 Version4

    # ATTACH_VIRTUAL_DISK_PARAMETERS
    ctypedef struct _AttachV1:
        ULONG Reserved
    ctypedef struct _AttachV2:
        ULONGLONG RestrictedOffset
        ULONGLONG RestrictedLength
    ctypedef struct ATTACH_VIRTUAL_DISK_PARAMETERS:
        ATTACH_VIRTUAL_DISK_VERSION Version
        _AttachV1 Version1
        _AttachV2 Version2

    # STORAGE_DEPENDENCY_INFO
    ctypedef struct STORAGE_DEPENDENCY_INFO_TYPE_1:
        DEPENDENT_DISK_FLAG DependencyTypeFlags
        ULONG ProviderSpecificFlags
        VIRTUAL_STORAGE_TYPE VirtualStorageType
    ctypedef struct STORAGE_DEPENDENCY_INFO_TYPE_2:
        DEPENDENT_DISK_FLAG DependencyTypeFlags
        ULONG ProviderSpecificFlags
        VIRTUAL_STORAGE_TYPE VirtualStorageType
        ULONG AncestorLevel
        PWSTR DependencyDeviceName
        PWSTR HostVolumeName
        PWSTR DependentVolumeName
        PWSTR DependentVolumeRelativePath
    ctypedef struct STORAGE_DEPENDENCY_INFO:
        STORAGE_DEPENDENCY_INFO_VERSION Version
        ULONG NumberEntries
        STORAGE_DEPENDENCY_INFO_TYPE_1 *Version1Entries
        STORAGE_DEPENDENCY_INFO_TYPE_2 *Version2Entries

    # GET_VIRTUAL_DISK_INFO
    ctypedef struct _InfoSize:
        ULONGLONG VirtualSize
        ULONGLONG PhysicalSize
        ULONG BlockSize
        ULONG SectorSize
    ctypedef struct _InfoParentLocation:
        BOOL ParentResolved
        WCHAR *ParentLocationBuffer
    ctypedef struct _InfoPhysicalDisk:
        ULONG LogicalSectorSize
        ULONG PhysicalSectorSize
        BOOL IsRemote
    ctypedef struct _InfoChangeTracking:
        BOOL Enabled
        BOOL NewerChanges
        WCHAR *MostRecentId
    ctypedef struct GET_VIRTUAL_DISK_INFO:
        GET_VIRTUAL_DISK_INFO_VERSION Version
        _InfoSize Size
        GUID Identifier
        _InfoParentLocation ParentLocation
        GUID ParentIdentifier
        ULONG ParentTimestamp
        VIRTUAL_STORAGE_TYPE VirtualStorageType
        ULONG ProviderSubtype
        BOOL Is4kAligned
        BOOL IsLoaded
        _InfoPhysicalDisk PhysicalDisk
        ULONG VhdPhysicalSectorSize
        ULONGLONG SmallestSafeVirtualSize
        ULONG FragmentationPercentage
        GUID VirtualDiskId
        _InfoChangeTracking ChangeTrackingState

    # SET_VIRTUAL_DISK_INFO
    ctypedef struct _SetParentWithDepth:
        ULONG ChildDepth
        PCWSTR ParentFilePath
    ctypedef struct _SetParentLocator:
        GUID LinkageId
        PCWSTR ParentFilePath
    ctypedef struct SET_VIRTUAL_DISK_INFO:
        SET_VIRTUAL_DISK_INFO_VERSION Version
        PCWSTR ParentFilePath
        GUID UniqueIdentifier
        _SetParentWithDepth ParentPathWithDepthInfo
        ULONG VhdPhysicalSectorSize
        GUID VirtualDiskId
        BOOL ChangeTrackingEnabled
        _SetParentLocator ParentLocator

    ctypedef struct VIRTUAL_DISK_PROGRESS:
        DWORD OperationStatus
        ULONGLONG CurrentValue
        ULONGLONG CompletionValue

    ctypedef struct _CompactV1:
        ULONG Reserved
    ctypedef struct COMPACT_VIRTUAL_DISK_PARAMETERS:
        COMPACT_VIRTUAL_DISK_VERSION Version
        _CompactV1 Version1

    ctypedef struct _MergeV1:
        ULONG MergeDepth
    ctypedef struct _MergeV2:
        ULONG MergeSourceDepth
        ULONG MergeTargetDepth
    ctypedef struct MERGE_VIRTUAL_DISK_PARAMETERS:
        MERGE_VIRTUAL_DISK_VERSION Version
        _MergeV1 Version1
        _MergeV2 Version2

    ctypedef struct _NewSizeV1:
        ULONGLONG NewSize
    ctypedef struct EXPAND_VIRTUAL_DISK_PARAMETERS:
        EXPAND_VIRTUAL_DISK_VERSION Version
        _NewSizeV1 Version1
    ctypedef struct RESIZE_VIRTUAL_DISK_PARAMETERS:
        RESIZE_VIRTUAL_DISK_VERSION Version
        _NewSizeV1 Version1

    ctypedef struct _MirrorV1:
        PCWSTR MirrorVirtualDiskPath
    ctypedef struct MIRROR_VIRTUAL_DISK_PARAMETERS:
        MIRROR_VIRTUAL_DISK_VERSION Version
        _MirrorV1 Version1

    ctypedef struct QUERY_CHANGES_VIRTUAL_DISK_RANGE:
        ULONG64 ByteOffset
        ULONG64 ByteLength
        ULONG64 Reserved

    ctypedef struct _SnapshotIdV1:
        GUID SnapshotId
    ctypedef struct TAKE_SNAPSHOT_VHDSET_PARAMETERS:
        TAKE_SNAPSHOT_VHDSET_VERSION Version
        _SnapshotIdV1 Version1
    ctypedef struct DELETE_SNAPSHOT_VHDSET_PARAMETERS:
        DELETE_SNAPSHOT_VHDSET_VERSION Version
        _SnapshotIdV1 Version1

    ctypedef struct _ModifySnapshotPath:
        GUID SnapshotId
        PCWSTR SnapshotFilePath
    ctypedef struct MODIFY_VHDSET_PARAMETERS:
        MODIFY_VHDSET_VERSION Version
        _ModifySnapshotPath SnapshotPath
        GUID SnapshotId
        PCWSTR DefaultFilePath

    ctypedef struct _ApplyV1:
        GUID SnapshotId
        GUID LeafSnapshotId
    ctypedef struct APPLY_SNAPSHOT_VHDSET_PARAMETERS:
        APPLY_SNAPSHOT_VHDSET_VERSION Version
        _ApplyV1 Version1

    ctypedef struct _RawScsiV1:
        BOOL RSVDHandle
        UCHAR DataIn
        UCHAR CdbLength
        UCHAR SenseInfoLength
        ULONG SrbFlags
        ULONG DataTransferLength
        void *DataBuffer
        UCHAR *SenseInfo
        UCHAR *Cdb
    ctypedef struct RAW_SCSI_VIRTUAL_DISK_PARAMETERS:
        RAW_SCSI_VIRTUAL_DISK_VERSION Version
        _RawScsiV1 Version1
    ctypedef struct _RawScsiResponseV1:
        UCHAR ScsiStatus
        UCHAR SenseInfoLength
        ULONG DataTransferLength
    ctypedef struct RAW_SCSI_VIRTUAL_DISK_RESPONSE:
        RAW_SCSI_VIRTUAL_DISK_VERSION Version
        _RawScsiResponseV1 Version1

    ctypedef struct _ForkV1:
        PCWSTR ForkedVirtualDiskPath
    ctypedef struct FORK_VIRTUAL_DISK_PARAMETERS:
        FORK_VIRTUAL_DISK_VERSION Version
        _ForkV1 Version1

    # The twenty entry points Windows 8.1 has: linked directly.
    DWORD OpenVirtualDisk(VIRTUAL_STORAGE_TYPE *VirtualStorageType, PCWSTR Path,
                          VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask,
                          OPEN_VIRTUAL_DISK_FLAG Flags,
                          OPEN_VIRTUAL_DISK_PARAMETERS *Parameters, HANDLE *Handle)
    DWORD CreateVirtualDisk(VIRTUAL_STORAGE_TYPE *VirtualStorageType, PCWSTR Path,
                            VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask,
                            PSECURITY_DESCRIPTOR SecurityDescriptor,
                            CREATE_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
                            CREATE_VIRTUAL_DISK_PARAMETERS *Parameters,
                            OVERLAPPED *Overlapped, HANDLE *Handle)
    DWORD AttachVirtualDisk(HANDLE VirtualDiskHandle, PSECURITY_DESCRIPTOR SecurityDescriptor,
                            ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
                            ATTACH_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    DWORD DetachVirtualDisk(HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags,
                            ULONG ProviderSpecificFlags)
    DWORD GetVirtualDiskPhysicalPath(HANDLE VirtualDiskHandle, ULONG *DiskPathSizeInBytes,
                                     PWSTR DiskPath)
    DWORD GetStorageDependencyInformation(HANDLE ObjectHandle,
                                          GET_STORAGE_DEPENDENCY_FLAG Flags,
                                          ULONG StorageDependencyInfoSize,
                                          STORAGE_DEPENDENCY_INFO *StorageDependencyInfo,
                                          ULONG *SizeUsed)
    DWORD GetVirtualDiskInformation(HANDLE VirtualDiskHandle, ULONG *VirtualDiskInfoSize,
                                    GET_VIRTUAL_DISK_INFO *VirtualDiskInfo, ULONG *SizeUsed)
    DWORD SetVirtualDiskInformation(HANDLE VirtualDiskHandle,
                                    SET_VIRTUAL_DISK_INFO *VirtualDiskInfo)
    DWORD EnumerateVirtualDiskMetadata(HANDLE VirtualDiskHandle, ULONG *NumberOfItems,
                                       GUID *Items)
    DWORD GetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item,
                                 ULONG *MetaDataSize, void *MetaData)
    DWORD SetVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item,
                                 ULONG MetaDataSize, const void *MetaData)
    DWORD DeleteVirtualDiskMetadata(HANDLE VirtualDiskHandle, const GUID *Item)
    DWORD GetVirtualDiskOperationProgress(HANDLE VirtualDiskHandle, OVERLAPPED *Overlapped,
                                          VIRTUAL_DISK_PROGRESS *Progress)
    DWORD CompactVirtualDisk(HANDLE VirtualDiskHandle, COMPACT_VIRTUAL_DISK_FLAG Flags,
                             COMPACT_VIRTUAL_DISK_PARAMETERS *Parameters,
                             OVERLAPPED *Overlapped)
    DWORD MergeVirtualDisk(HANDLE VirtualDiskHandle, MERGE_VIRTUAL_DISK_FLAG Flags,
                           MERGE_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    DWORD ExpandVirtualDisk(HANDLE VirtualDiskHandle, EXPAND_VIRTUAL_DISK_FLAG Flags,
                            EXPAND_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    DWORD ResizeVirtualDisk(HANDLE VirtualDiskHandle, RESIZE_VIRTUAL_DISK_FLAG Flags,
                            RESIZE_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    DWORD MirrorVirtualDisk(HANDLE VirtualDiskHandle, MIRROR_VIRTUAL_DISK_FLAG Flags,
                            MIRROR_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    DWORD BreakMirrorVirtualDisk(HANDLE VirtualDiskHandle)
    DWORD AddVirtualDiskParent(HANDLE VirtualDiskHandle, PCWSTR ParentPath)

    # Function types of the nine newer entry points, reached through pointers.
    ctypedef DWORD VIRTDISK_FN_GetAllAttachedVirtualDiskPhysicalPaths(
        ULONG *PathsBufferSizeInBytes, PWSTR PathsBuffer)
    ctypedef DWORD VIRTDISK_FN_QueryChangesVirtualDisk(
        HANDLE VirtualDiskHandle, PCWSTR ChangeTrackingId, ULONG64 ByteOffset,
        ULONG64 ByteLength, QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags,
        QUERY_CHANGES_VIRTUAL_DISK_RANGE *Ranges, ULONG *RangeCount, ULONG64 *ProcessedLength)
    ctypedef DWORD VIRTDISK_FN_TakeSnapshotVhdSet(
        HANDLE VirtualDiskHandle, TAKE_SNAPSHOT_VHDSET_PARAMETERS *Parameters,
        TAKE_SNAPSHOT_VHDSET_FLAG Flags)
    ctypedef DWORD VIRTDISK_FN_DeleteSnapshotVhdSet(
        HANDLE VirtualDiskHandle, DELETE_SNAPSHOT_VHDSET_PARAMETERS *Parameters,
        DELETE_SNAPSHOT_VHDSET_FLAG Flags)
    ctypedef DWORD VIRTDISK_FN_ModifyVhdSet(
        HANDLE VirtualDiskHandle, MODIFY_VHDSET_PARAMETERS *Parameters, MODIFY_VHDSET_FLAG Flags)
    ctypedef DWORD VIRTDISK_FN_ApplySnapshotVhdSet(
        HANDLE VirtualDiskHandle, APPLY_SNAPSHOT_VHDSET_PARAMETERS *Parameters,
        APPLY_SNAPSHOT_VHDSET_FLAG Flags)
    ctypedef DWORD VIRTDISK_FN_RawSCSIVirtualDisk(
        HANDLE VirtualDiskHandle, RAW_SCSI_VIRTUAL_DISK_PARAMETERS *Parameters,
        RAW_SCSI_VIRTUAL_DISK_FLAG Flags, RAW_SCSI_VIRTUAL_DISK_RESPONSE *Response)
    ctypedef DWORD VIRTDISK_FN_ForkVirtualDisk(
        HANDLE VirtualDiskHandle, FORK_VIRTUAL_DISK_FLAG Flags,
        FORK_VIRTUAL_DISK_PARAMETERS *Parameters, OVERLAPPED *Overlapped)
    ctypedef DWORD VIRTDISK_FN_CompleteForkVirtualDisk(HANDLE VirtualDiskHandle)


cdef extern from "virtdisk_dispatch.h" nogil:
    const char *VIRTDISK_PLATFORM_NAME
    DWORD vd_dispatch_init()
    int vd_dispatch_implements(const char *name)
    const char *vd_dispatch_last_detail()
    DWORD vd_close_handle(HANDLE handle)
    DWORD vd_open_device(PCWSTR path, HANDLE *handle)
    DWORD vd_attach_partition(HANDLE handle, ULONG number, ULONG *device_number)
    DWORD vd_skip_sync(HANDLE handle)
    DWORD vd_copy_to_file(HANDLE handle, ULONGLONG offset, ULONGLONG length, int fd)
    DWORD vd_copy_from_file(HANDLE handle, int fd, ULONGLONG offset, ULONGLONG length, ULONG piece)
    VIRTDISK_FN_GetAllAttachedVirtualDiskPhysicalPaths *vd_fn_GetAllAttachedVirtualDiskPhysicalPaths
    VIRTDISK_FN_QueryChangesVirtualDisk *vd_fn_QueryChangesVirtualDisk
    VIRTDISK_FN_TakeSnapshotVhdSet *vd_fn_TakeSnapshotVhdSet
    VIRTDISK_FN_DeleteSnapshotVhdSet *vd_fn_DeleteSnapshotVhdSet
    VIRTDISK_FN_ModifyVhdSet *vd_fn_ModifyVhdSet
    VIRTDISK_FN_ApplySnapshotVhdSet *vd_fn_ApplySnapshotVhdSet
    VIRTDISK_FN_RawSCSIVirtualDisk *vd_fn_RawSCSIVirtualDisk
    VIRTDISK_FN_ForkVirtualDisk *vd_fn_ForkVirtualDisk
    VIRTDISK_FN_CompleteForkVirtualDisk *vd_fn_CompleteForkVirtualDisk
    DWORD vd_overlapped_init(OVERLAPPED *overlapped)
    void vd_overlapped_release(OVERLAPPED *overlapped)
    DWORD vd_overlapped_wait(OVERLAPPED *overlapped, DWORD milliseconds)
    int vd_overlapped_fd(OVERLAPPED *overlapped)
    void vd_overlapped_arm(OVERLAPPED *overlapped, int running)
    DWORD vd_cancel_io(HANDLE handle, OVERLAPPED *overlapped)
