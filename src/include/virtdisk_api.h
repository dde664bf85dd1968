/* virtdisk_api.h: the Windows Virtual Disk API (virtdisk.h of the current
 * Windows SDK), declared once for every platform.
 *
 * The toolchain's <virtdisk.h> is never included: MinGW-w64's copy lags the
 * SDK by years and gets CREATE_VIRTUAL_DISK_PARAMETERS.Version2 wrong, and
 * other platforms have none.  Every struct below is pinned to the SDK's size
 * and field offsets by VIRTDISK_API_ASSERT lines at the end of this file, for
 * both 64-bit (x64, ARM64 and any LP64 host running the portable engine) and
 * 32-bit Windows (x86), under MSVC's layout rules and GCC's alike
 * (STORAGE_DEPENDENCY_INFO by its entries' offset: its sizeof is each
 * compiler's own).
 *
 * On Windows the types come from <windows.h>.  Elsewhere this header defines
 * the same types with the same widths: WCHAR is 16-bit, DWORD and ULONG are
 * 32-bit, BOOL is 4 bytes, GUID has the Windows layout.
 *
 * Every function type has a VIRTDISK_FN_<Name> typedef, so that code which
 * resolves an entry point at run time (GetProcAddress) uses the very
 * signature declared here and cannot drift from it. */
#ifndef VIRTDISK_API_H
#define VIRTDISK_API_H

#include <stddef.h>

#ifdef _WIN32
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
/* MinGW-w64's <windows.h> includes its own <virtdisk.h>; claiming that
 * header's include guard keeps its out-of-date declarations away. */
#  ifndef _INC_VIRTDISK
#    define _INC_VIRTDISK
#  endif
#  include <windows.h>
#  define VIRTDISKAPI DECLSPEC_IMPORT
#else
#  include <stdint.h>

typedef uint8_t UCHAR;
typedef uint16_t WCHAR;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef uint64_t ULONGLONG;
typedef uint64_t ULONG64;
typedef int32_t BOOL;
typedef uintptr_t ULONG_PTR;
typedef void *PVOID;
typedef void *HANDLE;
typedef HANDLE *PHANDLE;
typedef ULONG *PULONG;
typedef ULONG64 *PULONG64;
typedef WCHAR *PWSTR;
typedef const WCHAR *PCWSTR;
typedef void *PSECURITY_DESCRIPTOR;

typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID, *LPGUID;

typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    union {
        struct {
            DWORD Offset;
            DWORD OffsetHigh;
        };
        PVOID Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

#  define WINAPI
#  define VIRTDISKAPI
#  define FALSE 0
#  define TRUE 1
#  define ERROR_SUCCESS 0u
#  define ERROR_INVALID_HANDLE 6u
#  define ERROR_INVALID_PARAMETER 87u
#  define ERROR_CALL_NOT_IMPLEMENTED 120u
#  define ERROR_INSUFFICIENT_BUFFER 122u
#  define ERROR_PROC_NOT_FOUND 127u
#  define ERROR_MORE_DATA 234u
#  define ERROR_IO_PENDING 997u
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Storage types                                                       */

typedef struct _VIRTUAL_STORAGE_TYPE {
    ULONG DeviceId;
    GUID VendorId;
} VIRTUAL_STORAGE_TYPE, *PVIRTUAL_STORAGE_TYPE;

#define VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN 0
#define VIRTUAL_STORAGE_TYPE_DEVICE_ISO 1
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHD 2
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHDX 3
#define VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET 4

/* GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE answers with the disk type of the
 * VHD specification; the SDK documents the numbers but names none, so these
 * names are this project's. */
#define VIRTDISK_API_PROVIDER_SUBTYPE_FIXED 2
#define VIRTDISK_API_PROVIDER_SUBTYPE_DYNAMIC 3
#define VIRTDISK_API_PROVIDER_SUBTYPE_DIFFERENCING 4

/* The SDK defines these with DEFINE_GUID, which needs <initguid.h> in
 * exactly one translation unit; initialisers keep them header-only. */
#define VIRTDISK_API_VENDOR_UNKNOWN_INIT \
    { 0x00000000, 0x0000, 0x0000, { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } }
#define VIRTDISK_API_VENDOR_MICROSOFT_INIT \
    { 0xec984aec, 0xa0f9, 0x47e9, { 0x90, 0x1f, 0x71, 0x41, 0x5a, 0x66, 0x34, 0x5b } }

/* ------------------------------------------------------------------ */
/* OpenVirtualDisk                                                     */

#define OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT 1

typedef enum _OPEN_VIRTUAL_DISK_VERSION {
    OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    OPEN_VIRTUAL_DISK_VERSION_1 = 1,
    OPEN_VIRTUAL_DISK_VERSION_2 = 2,
    OPEN_VIRTUAL_DISK_VERSION_3 = 3
} OPEN_VIRTUAL_DISK_VERSION;

typedef struct _OPEN_VIRTUAL_DISK_PARAMETERS {
    OPEN_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONG RWDepth;
        } Version1;
        struct {
            BOOL GetInfoOnly;
            BOOL ReadOnly;
            GUID ResiliencyGuid;
        } Version2;
        struct {
            BOOL GetInfoOnly;
            BOOL ReadOnly;
            GUID ResiliencyGuid;
            GUID SnapshotId;
        } Version3;
    };
} OPEN_VIRTUAL_DISK_PARAMETERS, *POPEN_VIRTUAL_DISK_PARAMETERS;

typedef enum _VIRTUAL_DISK_ACCESS_MASK {
    VIRTUAL_DISK_ACCESS_NONE = 0x00000000,
    VIRTUAL_DISK_ACCESS_ATTACH_RO = 0x00010000,
    VIRTUAL_DISK_ACCESS_ATTACH_RW = 0x00020000,
    VIRTUAL_DISK_ACCESS_DETACH = 0x00040000,
    VIRTUAL_DISK_ACCESS_GET_INFO = 0x00080000,
    VIRTUAL_DISK_ACCESS_CREATE = 0x00100000,
    VIRTUAL_DISK_ACCESS_METAOPS = 0x00200000,
    VIRTUAL_DISK_ACCESS_READ = 0x000d0000,
    VIRTUAL_DISK_ACCESS_ALL = 0x003f0000,
    VIRTUAL_DISK_ACCESS_WRITABLE = 0x00320000
} VIRTUAL_DISK_ACCESS_MASK;

typedef enum _OPEN_VIRTUAL_DISK_FLAG {
    OPEN_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS = 0x00000001,
    OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE = 0x00000002,
    OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE = 0x00000004,
    OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000008,
    OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN = 0x00000010,
    OPEN_VIRTUAL_DISK_FLAG_PARENT_CACHED_IO = 0x00000020,
    OPEN_VIRTUAL_DISK_FLAG_VHDSET_FILE_ONLY = 0x00000040,
    OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR = 0x00000080,
    OPEN_VIRTUAL_DISK_FLAG_NO_WRITE_HARDENING = 0x00000100,
    OPEN_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x00000200,
    OPEN_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS = 0x00000400,
    OPEN_VIRTUAL_DISK_FLAG_SUPPORT_ENCRYPTED_FILES = 0x00000800
} OPEN_VIRTUAL_DISK_FLAG;

/* ------------------------------------------------------------------ */
/* CreateVirtualDisk                                                   */

#define CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE 0
#define CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_SECTOR_SIZE 0

typedef enum _CREATE_VIRTUAL_DISK_VERSION {
    CREATE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    CREATE_VIRTUAL_DISK_VERSION_1 = 1,
    CREATE_VIRTUAL_DISK_VERSION_2 = 2,
    CREATE_VIRTUAL_DISK_VERSION_3 = 3,
    CREATE_VIRTUAL_DISK_VERSION_4 = 4
} CREATE_VIRTUAL_DISK_VERSION;

typedef struct _CREATE_VIRTUAL_DISK_PARAMETERS {
    CREATE_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            GUID UniqueId;
            ULONGLONG MaximumSize;
            ULONG BlockSizeInBytes;
            ULONG SectorSizeInBytes;
            PCWSTR ParentPath;
            PCWSTR SourcePath;
        } Version1;
        struct {
            GUID UniqueId;
            ULONGLONG MaximumSize;
            ULONG BlockSizeInBytes;
            ULONG SectorSizeInBytes;
            ULONG PhysicalSectorSizeInBytes;
            PCWSTR ParentPath;
            PCWSTR SourcePath;
            OPEN_VIRTUAL_DISK_FLAG OpenFlags;
            VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
            VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
            GUID ResiliencyGuid;
        } Version2;
        struct {
            GUID UniqueId;
            ULONGLONG MaximumSize;
            ULONG BlockSizeInBytes;
            ULONG SectorSizeInBytes;
            ULONG PhysicalSectorSizeInBytes;
            PCWSTR ParentPath;
            PCWSTR SourcePath;
            OPEN_VIRTUAL_DISK_FLAG OpenFlags;
            VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
            VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
            GUID ResiliencyGuid;
            PCWSTR SourceLimitPath;
            VIRTUAL_STORAGE_TYPE BackingStorageType;
        } Version3;
        struct {
            GUID UniqueId;
            ULONGLONG MaximumSize;
            ULONG BlockSizeInBytes;
            ULONG SectorSizeInBytes;
            ULONG PhysicalSectorSizeInBytes;
            PCWSTR ParentPath;
            PCWSTR SourcePath;
            OPEN_VIRTUAL_DISK_FLAG OpenFlags;
            VIRTUAL_STORAGE_TYPE ParentVirtualStorageType;
            VIRTUAL_STORAGE_TYPE SourceVirtualStorageType;
            GUID ResiliencyGuid;
            PCWSTR SourceLimitPath;
            VIRTUAL_STORAGE_TYPE BackingStorageType;
            GUID PmemAddressAbstractionType;
            ULONGLONG DataAlignment;
        } Version4;
    };
} CREATE_VIRTUAL_DISK_PARAMETERS, *PCREATE_VIRTUAL_DISK_PARAMETERS;

typedef enum _CREATE_VIRTUAL_DISK_FLAG {
    CREATE_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION = 0x00000001,
    CREATE_VIRTUAL_DISK_FLAG_PREVENT_WRITES_TO_SOURCE_DISK = 0x00000002,
    CREATE_VIRTUAL_DISK_FLAG_DO_NOT_COPY_METADATA_FROM_PARENT = 0x00000004,
    CREATE_VIRTUAL_DISK_FLAG_CREATE_BACKING_STORAGE = 0x00000008,
    CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT = 0x00000010,
    CREATE_VIRTUAL_DISK_FLAG_PRESERVE_PARENT_CHANGE_TRACKING_STATE = 0x00000020,
    CREATE_VIRTUAL_DISK_FLAG_VHD_SET_USE_ORIGINAL_BACKING_STORAGE = 0x00000040,
    CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE = 0x00000080,
    CREATE_VIRTUAL_DISK_FLAG_PMEM_COMPATIBLE = 0x00000100,
    CREATE_VIRTUAL_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x00000200,
    CREATE_VIRTUAL_DISK_FLAG_SUPPORT_SPARSE_FILES_ANY_FS = 0x00000400
} CREATE_VIRTUAL_DISK_FLAG;

#define CREATE_VIRTUAL_DISK_FLAG_USE_RCT_SOURCE_LIMIT \
    CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT

/* ------------------------------------------------------------------ */
/* AttachVirtualDisk / DetachVirtualDisk                               */

typedef enum _ATTACH_VIRTUAL_DISK_VERSION {
    ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    ATTACH_VIRTUAL_DISK_VERSION_1 = 1,
    ATTACH_VIRTUAL_DISK_VERSION_2 = 2
} ATTACH_VIRTUAL_DISK_VERSION;

typedef struct _ATTACH_VIRTUAL_DISK_PARAMETERS {
    ATTACH_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONG Reserved;
        } Version1;
        struct {
            ULONGLONG RestrictedOffset;
            ULONGLONG RestrictedLength;
        } Version2;
    };
} ATTACH_VIRTUAL_DISK_PARAMETERS, *PATTACH_VIRTUAL_DISK_PARAMETERS;

typedef enum _ATTACH_VIRTUAL_DISK_FLAG {
    ATTACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY = 0x00000001,
    ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER = 0x00000002,
    ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME = 0x00000004,
    ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST = 0x00000008,
    ATTACH_VIRTUAL_DISK_FLAG_NO_SECURITY_DESCRIPTOR = 0x00000010,
    ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY = 0x00000020,
    ATTACH_VIRTUAL_DISK_FLAG_NON_PNP = 0x00000040,
    ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE = 0x00000080,
    ATTACH_VIRTUAL_DISK_FLAG_SINGLE_PARTITION = 0x00000100,
    ATTACH_VIRTUAL_DISK_FLAG_REGISTER_VOLUME = 0x00000200,
    ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT = 0x00000400
} ATTACH_VIRTUAL_DISK_FLAG;

typedef enum _DETACH_VIRTUAL_DISK_FLAG {
    DETACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000
} DETACH_VIRTUAL_DISK_FLAG;

/* ------------------------------------------------------------------ */
/* GetStorageDependencyInformation                                     */

typedef enum _DEPENDENT_DISK_FLAG {
    DEPENDENT_DISK_FLAG_NONE = 0x00000000,
    DEPENDENT_DISK_FLAG_MULT_BACKING_FILES = 0x00000001,
    DEPENDENT_DISK_FLAG_FULLY_ALLOCATED = 0x00000002,
    DEPENDENT_DISK_FLAG_READ_ONLY = 0x00000004,
    DEPENDENT_DISK_FLAG_REMOTE = 0x00000008,
    DEPENDENT_DISK_FLAG_SYSTEM_VOLUME = 0x00000010,
    DEPENDENT_DISK_FLAG_SYSTEM_VOLUME_PARENT = 0x00000020,
    DEPENDENT_DISK_FLAG_REMOVABLE = 0x00000040,
    DEPENDENT_DISK_FLAG_NO_DRIVE_LETTER = 0x00000080,
    DEPENDENT_DISK_FLAG_PARENT = 0x00000100,
    DEPENDENT_DISK_FLAG_NO_HOST_DISK = 0x00000200,
    DEPENDENT_DISK_FLAG_PERMANENT_LIFETIME = 0x00000400,
    DEPENDENT_DISK_FLAG_SUPPORT_COMPRESSED_VOLUMES = 0x00000800,
    DEPENDENT_DISK_FLAG_ALWAYS_ALLOW_SPARSE = 0x00001000,
    DEPENDENT_DISK_FLAG_SUPPORT_ENCRYPTED_FILES = 0x00002000
} DEPENDENT_DISK_FLAG;

typedef enum _STORAGE_DEPENDENCY_INFO_VERSION {
    STORAGE_DEPENDENCY_INFO_VERSION_UNSPECIFIED = 0,
    STORAGE_DEPENDENCY_INFO_VERSION_1 = 1,
    STORAGE_DEPENDENCY_INFO_VERSION_2 = 2
} STORAGE_DEPENDENCY_INFO_VERSION;

typedef struct _STORAGE_DEPENDENCY_INFO_TYPE_1 {
    DEPENDENT_DISK_FLAG DependencyTypeFlags;
    ULONG ProviderSpecificFlags;
    VIRTUAL_STORAGE_TYPE VirtualStorageType;
} STORAGE_DEPENDENCY_INFO_TYPE_1, *PSTORAGE_DEPENDENCY_INFO_TYPE_1;

typedef struct _STORAGE_DEPENDENCY_INFO_TYPE_2 {
    DEPENDENT_DISK_FLAG DependencyTypeFlags;
    ULONG ProviderSpecificFlags;
    VIRTUAL_STORAGE_TYPE VirtualStorageType;
    ULONG AncestorLevel;
    PWSTR DependencyDeviceName;
    PWSTR HostVolumeName;
    PWSTR DependentVolumeName;
    PWSTR DependentVolumeRelativePath;
} STORAGE_DEPENDENCY_INFO_TYPE_2, *PSTORAGE_DEPENDENCY_INFO_TYPE_2;

/* The SDK ends this struct with flexible arrays inside a union: the entries
 * start at offset 8, right after the two header fields.  Standard C has no
 * flexible array in a union: zero-length arrays (a GNU and MSVC extension)
 * give the same offset.  The struct's sizeof is no part of the ABI and
 * differs between compilers (8 under GCC's rules; 16 on x64 and 12 on x86
 * under MSVC's, which give the empty union a size), so a buffer for it is
 * offsetof(STORAGE_DEPENDENCY_INFO, Version1Entries) plus the entries, never
 * sizeof(STORAGE_DEPENDENCY_INFO). */
#if defined(_MSC_VER) && !defined(__clang__)
#  define VIRTDISK_API_FLEXIBLE_ARRAY
#  pragma warning(push)
#  pragma warning(disable : 4200)
#else
#  define VIRTDISK_API_FLEXIBLE_ARRAY 0
#endif
/* Clang in C++ warns that the empty union's size differs from C's; it does,
 * and that is why nothing here depends on the struct's size. */
#if defined(__clang__) && defined(__cplusplus)
#  pragma clang diagnostic push
#  pragma clang diagnostic ignored "-Wextern-c-compat"
#endif

typedef struct _STORAGE_DEPENDENCY_INFO {
    STORAGE_DEPENDENCY_INFO_VERSION Version;
    ULONG NumberEntries;
    union {
        STORAGE_DEPENDENCY_INFO_TYPE_1 Version1Entries[VIRTDISK_API_FLEXIBLE_ARRAY];
        STORAGE_DEPENDENCY_INFO_TYPE_2 Version2Entries[VIRTDISK_API_FLEXIBLE_ARRAY];
    };
} STORAGE_DEPENDENCY_INFO, *PSTORAGE_DEPENDENCY_INFO;

#if defined(__clang__) && defined(__cplusplus)
#  pragma clang diagnostic pop
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#  pragma warning(pop)
#endif

typedef enum _GET_STORAGE_DEPENDENCY_FLAG {
    GET_STORAGE_DEPENDENCY_FLAG_NONE = 0x00000000,
    GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES = 0x00000001,
    GET_STORAGE_DEPENDENCY_FLAG_DISK_HANDLE = 0x00000002
} GET_STORAGE_DEPENDENCY_FLAG;

#define GET_STORAGE_DEPENDENCY_FLAG_PARENTS GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES

/* ------------------------------------------------------------------ */
/* GetVirtualDiskInformation                                           */

#define VIRTUAL_DISK_MAXIMUM_CHANGE_TRACKING_ID_LENGTH 256

typedef enum _GET_VIRTUAL_DISK_INFO_VERSION {
    GET_VIRTUAL_DISK_INFO_UNSPECIFIED = 0,
    GET_VIRTUAL_DISK_INFO_SIZE = 1,
    GET_VIRTUAL_DISK_INFO_IDENTIFIER = 2,
    GET_VIRTUAL_DISK_INFO_PARENT_LOCATION = 3,
    GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER = 4,
    GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP = 5,
    GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE = 6,
    GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE = 7,
    GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED = 8,
    GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK = 9,
    GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE = 10,
    GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE = 11,
    GET_VIRTUAL_DISK_INFO_FRAGMENTATION = 12,
    GET_VIRTUAL_DISK_INFO_IS_LOADED = 13,
    GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID = 14,
    GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 15
} GET_VIRTUAL_DISK_INFO_VERSION;

typedef struct _GET_VIRTUAL_DISK_INFO {
    GET_VIRTUAL_DISK_INFO_VERSION Version;
    union {
        struct {
            ULONGLONG VirtualSize;
            ULONGLONG PhysicalSize;
            ULONG BlockSize;
            ULONG SectorSize;
        } Size;
        GUID Identifier;
        struct {
            BOOL ParentResolved;
            WCHAR ParentLocationBuffer[1];
        } ParentLocation;
        GUID ParentIdentifier;
        ULONG ParentTimestamp;
        VIRTUAL_STORAGE_TYPE VirtualStorageType;
        ULONG ProviderSubtype;
        BOOL Is4kAligned;
        BOOL IsLoaded;
        struct {
            ULONG LogicalSectorSize;
            ULONG PhysicalSectorSize;
            BOOL IsRemote;
        } PhysicalDisk;
        ULONG VhdPhysicalSectorSize;
        ULONGLONG SmallestSafeVirtualSize;
        ULONG FragmentationPercentage;
        GUID VirtualDiskId;
        struct {
            BOOL Enabled;
            BOOL NewerChanges;
            WCHAR MostRecentId[1];
        } ChangeTrackingState;
    };
} GET_VIRTUAL_DISK_INFO, *PGET_VIRTUAL_DISK_INFO;

/* ------------------------------------------------------------------ */
/* SetVirtualDiskInformation                                           */

typedef enum _SET_VIRTUAL_DISK_INFO_VERSION {
    SET_VIRTUAL_DISK_INFO_UNSPECIFIED = 0,
    SET_VIRTUAL_DISK_INFO_PARENT_PATH = 1,
    SET_VIRTUAL_DISK_INFO_IDENTIFIER = 2,
    SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH = 3,
    SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE = 4,
    SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID = 5,
    SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE = 6,
    SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR = 7
} SET_VIRTUAL_DISK_INFO_VERSION;

typedef struct _SET_VIRTUAL_DISK_INFO {
    SET_VIRTUAL_DISK_INFO_VERSION Version;
    union {
        PCWSTR ParentFilePath;
        GUID UniqueIdentifier;
        struct {
            ULONG ChildDepth;
            PCWSTR ParentFilePath;
        } ParentPathWithDepthInfo;
        ULONG VhdPhysicalSectorSize;
        GUID VirtualDiskId;
        BOOL ChangeTrackingEnabled;
        struct {
            GUID LinkageId;
            PCWSTR ParentFilePath;
        } ParentLocator;
    };
} SET_VIRTUAL_DISK_INFO, *PSET_VIRTUAL_DISK_INFO;

/* ------------------------------------------------------------------ */
/* Long operations: progress, compact, merge, expand, resize, mirror   */

typedef struct _VIRTUAL_DISK_PROGRESS {
    DWORD OperationStatus;
    ULONGLONG CurrentValue;
    ULONGLONG CompletionValue;
} VIRTUAL_DISK_PROGRESS, *PVIRTUAL_DISK_PROGRESS;

typedef enum _COMPACT_VIRTUAL_DISK_VERSION {
    COMPACT_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    COMPACT_VIRTUAL_DISK_VERSION_1 = 1
} COMPACT_VIRTUAL_DISK_VERSION;

typedef struct _COMPACT_VIRTUAL_DISK_PARAMETERS {
    COMPACT_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONG Reserved;
        } Version1;
    };
} COMPACT_VIRTUAL_DISK_PARAMETERS, *PCOMPACT_VIRTUAL_DISK_PARAMETERS;

typedef enum _COMPACT_VIRTUAL_DISK_FLAG {
    COMPACT_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    COMPACT_VIRTUAL_DISK_FLAG_NO_ZERO_SCAN = 0x00000001,
    COMPACT_VIRTUAL_DISK_FLAG_NO_BLOCK_MOVES = 0x00000002
} COMPACT_VIRTUAL_DISK_FLAG;

#define MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH 1

typedef enum _MERGE_VIRTUAL_DISK_VERSION {
    MERGE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    MERGE_VIRTUAL_DISK_VERSION_1 = 1,
    MERGE_VIRTUAL_DISK_VERSION_2 = 2
} MERGE_VIRTUAL_DISK_VERSION;

typedef struct _MERGE_VIRTUAL_DISK_PARAMETERS {
    MERGE_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONG MergeDepth;
        } Version1;
        struct {
            ULONG MergeSourceDepth;
            ULONG MergeTargetDepth;
        } Version2;
    };
} MERGE_VIRTUAL_DISK_PARAMETERS, *PMERGE_VIRTUAL_DISK_PARAMETERS;

typedef enum _MERGE_VIRTUAL_DISK_FLAG {
    MERGE_VIRTUAL_DISK_FLAG_NONE = 0x00000000
} MERGE_VIRTUAL_DISK_FLAG;

typedef enum _EXPAND_VIRTUAL_DISK_VERSION {
    EXPAND_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    EXPAND_VIRTUAL_DISK_VERSION_1 = 1
} EXPAND_VIRTUAL_DISK_VERSION;

typedef struct _EXPAND_VIRTUAL_DISK_PARAMETERS {
    EXPAND_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONGLONG NewSize;
        } Version1;
    };
} EXPAND_VIRTUAL_DISK_PARAMETERS, *PEXPAND_VIRTUAL_DISK_PARAMETERS;

typedef enum _EXPAND_VIRTUAL_DISK_FLAG {
    EXPAND_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    EXPAND_VIRTUAL_DISK_FLAG_NOTIFY_CHANGE = 0x00000001
} EXPAND_VIRTUAL_DISK_FLAG;

typedef enum _RESIZE_VIRTUAL_DISK_VERSION {
    RESIZE_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    RESIZE_VIRTUAL_DISK_VERSION_1 = 1
} RESIZE_VIRTUAL_DISK_VERSION;

typedef struct _RESIZE_VIRTUAL_DISK_PARAMETERS {
    RESIZE_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            ULONGLONG NewSize;
        } Version1;
    };
} RESIZE_VIRTUAL_DISK_PARAMETERS, *PRESIZE_VIRTUAL_DISK_PARAMETERS;

typedef enum _RESIZE_VIRTUAL_DISK_FLAG {
    RESIZE_VIRTUAL_DISK_FLAG_NONE = 0x0,
    RESIZE_VIRTUAL_DISK_FLAG_ALLOW_UNSAFE_VIRTUAL_SIZE = 0x1,
    RESIZE_VIRTUAL_DISK_FLAG_RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE = 0x2
} RESIZE_VIRTUAL_DISK_FLAG;

typedef enum _MIRROR_VIRTUAL_DISK_VERSION {
    MIRROR_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    MIRROR_VIRTUAL_DISK_VERSION_1 = 1
} MIRROR_VIRTUAL_DISK_VERSION;

typedef struct _MIRROR_VIRTUAL_DISK_PARAMETERS {
    MIRROR_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            PCWSTR MirrorVirtualDiskPath;
        } Version1;
    };
} MIRROR_VIRTUAL_DISK_PARAMETERS, *PMIRROR_VIRTUAL_DISK_PARAMETERS;

typedef enum _MIRROR_VIRTUAL_DISK_FLAG {
    MIRROR_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    MIRROR_VIRTUAL_DISK_FLAG_EXISTING_FILE = 0x00000001,
    MIRROR_VIRTUAL_DISK_FLAG_SKIP_MIRROR_ACTIVATION = 0x00000002,
    MIRROR_VIRTUAL_DISK_FLAG_ENABLE_SMB_COMPRESSION = 0x00000004,
    MIRROR_VIRTUAL_DISK_FLAG_IS_LIVE_MIGRATION = 0x00000008
} MIRROR_VIRTUAL_DISK_FLAG;

/* ------------------------------------------------------------------ */
/* Resilient change tracking                                           */

typedef struct _QUERY_CHANGES_VIRTUAL_DISK_RANGE {
    ULONG64 ByteOffset;
    ULONG64 ByteLength;
    ULONG64 Reserved;
} QUERY_CHANGES_VIRTUAL_DISK_RANGE, *PQUERY_CHANGES_VIRTUAL_DISK_RANGE;

typedef enum _QUERY_CHANGES_VIRTUAL_DISK_FLAG {
    QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE = 0x00000000
} QUERY_CHANGES_VIRTUAL_DISK_FLAG;

/* ------------------------------------------------------------------ */
/* VHD Sets                                                            */

typedef enum _TAKE_SNAPSHOT_VHDSET_FLAG {
    TAKE_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
    TAKE_SNAPSHOT_VHDSET_FLAG_WRITEABLE = 0x00000001
} TAKE_SNAPSHOT_VHDSET_FLAG;

typedef enum _TAKE_SNAPSHOT_VHDSET_VERSION {
    TAKE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
    TAKE_SNAPSHOT_VHDSET_VERSION_1 = 1
} TAKE_SNAPSHOT_VHDSET_VERSION;

typedef struct _TAKE_SNAPSHOT_VHDSET_PARAMETERS {
    TAKE_SNAPSHOT_VHDSET_VERSION Version;
    union {
        struct {
            GUID SnapshotId;
        } Version1;
    };
} TAKE_SNAPSHOT_VHDSET_PARAMETERS, *PTAKE_SNAPSHOT_VHDSET_PARAMETERS;

typedef enum _DELETE_SNAPSHOT_VHDSET_FLAG {
    DELETE_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
    DELETE_SNAPSHOT_VHDSET_FLAG_PERSIST_RCT = 0x00000001
} DELETE_SNAPSHOT_VHDSET_FLAG;

typedef enum _DELETE_SNAPSHOT_VHDSET_VERSION {
    DELETE_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
    DELETE_SNAPSHOT_VHDSET_VERSION_1 = 1
} DELETE_SNAPSHOT_VHDSET_VERSION;

typedef struct _DELETE_SNAPSHOT_VHDSET_PARAMETERS {
    DELETE_SNAPSHOT_VHDSET_VERSION Version;
    union {
        struct {
            GUID SnapshotId;
        } Version1;
    };
} DELETE_SNAPSHOT_VHDSET_PARAMETERS, *PDELETE_SNAPSHOT_VHDSET_PARAMETERS;

typedef enum _MODIFY_VHDSET_VERSION {
    MODIFY_VHDSET_UNSPECIFIED = 0,
    MODIFY_VHDSET_SNAPSHOT_PATH = 1,
    MODIFY_VHDSET_REMOVE_SNAPSHOT = 2,
    MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH = 3
} MODIFY_VHDSET_VERSION;

typedef enum _MODIFY_VHDSET_FLAG {
    MODIFY_VHDSET_FLAG_NONE = 0x00000000,
    MODIFY_VHDSET_FLAG_WRITEABLE_SNAPSHOT = 0x00000001
} MODIFY_VHDSET_FLAG;

typedef struct _MODIFY_VHDSET_PARAMETERS {
    MODIFY_VHDSET_VERSION Version;
    union {
        struct {
            GUID SnapshotId;
            PCWSTR SnapshotFilePath;
        } SnapshotPath;
        GUID SnapshotId;
        PCWSTR DefaultFilePath;
    };
} MODIFY_VHDSET_PARAMETERS, *PMODIFY_VHDSET_PARAMETERS;

typedef enum _APPLY_SNAPSHOT_VHDSET_FLAG {
    APPLY_SNAPSHOT_VHDSET_FLAG_NONE = 0x00000000,
    APPLY_SNAPSHOT_VHDSET_FLAG_WRITEABLE = 0x00000001
} APPLY_SNAPSHOT_VHDSET_FLAG;

typedef enum _APPLY_SNAPSHOT_VHDSET_VERSION {
    APPLY_SNAPSHOT_VHDSET_VERSION_UNSPECIFIED = 0,
    APPLY_SNAPSHOT_VHDSET_VERSION_1 = 1
} APPLY_SNAPSHOT_VHDSET_VERSION;

typedef struct _APPLY_SNAPSHOT_VHDSET_PARAMETERS {
    APPLY_SNAPSHOT_VHDSET_VERSION Version;
    union {
        struct {
            GUID SnapshotId;
            GUID LeafSnapshotId;
        } Version1;
    };
} APPLY_SNAPSHOT_VHDSET_PARAMETERS, *PAPPLY_SNAPSHOT_VHDSET_PARAMETERS;

/* ------------------------------------------------------------------ */
/* Raw SCSI and fork                                                   */

typedef enum _RAW_SCSI_VIRTUAL_DISK_FLAG {
    RAW_SCSI_VIRTUAL_DISK_FLAG_NONE = 0x00000000
} RAW_SCSI_VIRTUAL_DISK_FLAG;

typedef enum _RAW_SCSI_VIRTUAL_DISK_VERSION {
    RAW_SCSI_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    RAW_SCSI_VIRTUAL_DISK_VERSION_1 = 1
} RAW_SCSI_VIRTUAL_DISK_VERSION;

typedef struct _RAW_SCSI_VIRTUAL_DISK_PARAMETERS {
    RAW_SCSI_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            BOOL RSVDHandle;
            UCHAR DataIn;
            UCHAR CdbLength;
            UCHAR SenseInfoLength;
            ULONG SrbFlags;
            ULONG DataTransferLength;
            PVOID DataBuffer;
            UCHAR *SenseInfo;
            UCHAR *Cdb;
        } Version1;
    };
} RAW_SCSI_VIRTUAL_DISK_PARAMETERS, *PRAW_SCSI_VIRTUAL_DISK_PARAMETERS;

typedef struct _RAW_SCSI_VIRTUAL_DISK_RESPONSE {
    RAW_SCSI_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            UCHAR ScsiStatus;
            UCHAR SenseInfoLength;
            ULONG DataTransferLength;
        } Version1;
    };
} RAW_SCSI_VIRTUAL_DISK_RESPONSE, *PRAW_SCSI_VIRTUAL_DISK_RESPONSE;

typedef enum _FORK_VIRTUAL_DISK_VERSION {
    FORK_VIRTUAL_DISK_VERSION_UNSPECIFIED = 0,
    FORK_VIRTUAL_DISK_VERSION_1 = 1
} FORK_VIRTUAL_DISK_VERSION;

typedef struct _FORK_VIRTUAL_DISK_PARAMETERS {
    FORK_VIRTUAL_DISK_VERSION Version;
    union {
        struct {
            PCWSTR ForkedVirtualDiskPath;
        } Version1;
    };
} FORK_VIRTUAL_DISK_PARAMETERS, *PFORK_VIRTUAL_DISK_PARAMETERS;

typedef enum _FORK_VIRTUAL_DISK_FLAG {
    FORK_VIRTUAL_DISK_FLAG_NONE = 0x00000000,
    FORK_VIRTUAL_DISK_FLAG_EXISTING_FILE = 0x00000001
} FORK_VIRTUAL_DISK_FLAG;

/* ------------------------------------------------------------------ */
/* The 29 functions.  Each returns a Win32 error code (ERROR_SUCCESS on
 * success); none reports through GetLastError.                        */

typedef DWORD(WINAPI VIRTDISK_FN_OpenVirtualDisk)(
    PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
    VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask, OPEN_VIRTUAL_DISK_FLAG Flags,
    POPEN_VIRTUAL_DISK_PARAMETERS Parameters, PHANDLE Handle);
typedef DWORD(WINAPI VIRTDISK_FN_CreateVirtualDisk)(
    PVIRTUAL_STORAGE_TYPE VirtualStorageType, PCWSTR Path,
    VIRTUAL_DISK_ACCESS_MASK VirtualDiskAccessMask, PSECURITY_DESCRIPTOR SecurityDescriptor,
    CREATE_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
    PCREATE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped, PHANDLE Handle);
typedef DWORD(WINAPI VIRTDISK_FN_AttachVirtualDisk)(
    HANDLE VirtualDiskHandle, PSECURITY_DESCRIPTOR SecurityDescriptor,
    ATTACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags,
    PATTACH_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_DetachVirtualDisk)(
    HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags);
typedef DWORD(WINAPI VIRTDISK_FN_GetVirtualDiskPhysicalPath)(
    HANDLE VirtualDiskHandle, PULONG DiskPathSizeInBytes, PWSTR DiskPath);
typedef DWORD(WINAPI VIRTDISK_FN_GetAllAttachedVirtualDiskPhysicalPaths)(
    PULONG PathsBufferSizeInBytes, PWSTR PathsBuffer);
typedef DWORD(WINAPI VIRTDISK_FN_GetStorageDependencyInformation)(
    HANDLE ObjectHandle, GET_STORAGE_DEPENDENCY_FLAG Flags, ULONG StorageDependencyInfoSize,
    PSTORAGE_DEPENDENCY_INFO StorageDependencyInfo, PULONG SizeUsed);
typedef DWORD(WINAPI VIRTDISK_FN_GetVirtualDiskInformation)(
    HANDLE VirtualDiskHandle, PULONG VirtualDiskInfoSize, PGET_VIRTUAL_DISK_INFO VirtualDiskInfo,
    PULONG SizeUsed);
typedef DWORD(WINAPI VIRTDISK_FN_SetVirtualDiskInformation)(
    HANDLE VirtualDiskHandle, PSET_VIRTUAL_DISK_INFO VirtualDiskInfo);
typedef DWORD(WINAPI VIRTDISK_FN_EnumerateVirtualDiskMetadata)(
    HANDLE VirtualDiskHandle, PULONG NumberOfItems, GUID *Items);
typedef DWORD(WINAPI VIRTDISK_FN_GetVirtualDiskMetadata)(
    HANDLE VirtualDiskHandle, const GUID *Item, PULONG MetaDataSize, PVOID MetaData);
typedef DWORD(WINAPI VIRTDISK_FN_SetVirtualDiskMetadata)(
    HANDLE VirtualDiskHandle, const GUID *Item, ULONG MetaDataSize, const void *MetaData);
typedef DWORD(WINAPI VIRTDISK_FN_DeleteVirtualDiskMetadata)(
    HANDLE VirtualDiskHandle, const GUID *Item);
typedef DWORD(WINAPI VIRTDISK_FN_GetVirtualDiskOperationProgress)(
    HANDLE VirtualDiskHandle, LPOVERLAPPED Overlapped, PVIRTUAL_DISK_PROGRESS Progress);
typedef DWORD(WINAPI VIRTDISK_FN_CompactVirtualDisk)(
    HANDLE VirtualDiskHandle, COMPACT_VIRTUAL_DISK_FLAG Flags,
    PCOMPACT_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_MergeVirtualDisk)(
    HANDLE VirtualDiskHandle, MERGE_VIRTUAL_DISK_FLAG Flags,
    PMERGE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_ExpandVirtualDisk)(
    HANDLE VirtualDiskHandle, EXPAND_VIRTUAL_DISK_FLAG Flags,
    PEXPAND_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_ResizeVirtualDisk)(
    HANDLE VirtualDiskHandle, RESIZE_VIRTUAL_DISK_FLAG Flags,
    PRESIZE_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_MirrorVirtualDisk)(
    HANDLE VirtualDiskHandle, MIRROR_VIRTUAL_DISK_FLAG Flags,
    PMIRROR_VIRTUAL_DISK_PARAMETERS Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_BreakMirrorVirtualDisk)(HANDLE VirtualDiskHandle);
typedef DWORD(WINAPI VIRTDISK_FN_AddVirtualDiskParent)(
    HANDLE VirtualDiskHandle, PCWSTR ParentPath);
typedef DWORD(WINAPI VIRTDISK_FN_QueryChangesVirtualDisk)(
    HANDLE VirtualDiskHandle, PCWSTR ChangeTrackingId, ULONG64 ByteOffset, ULONG64 ByteLength,
    QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags, PQUERY_CHANGES_VIRTUAL_DISK_RANGE Ranges,
    PULONG RangeCount, PULONG64 ProcessedLength);
typedef DWORD(WINAPI VIRTDISK_FN_TakeSnapshotVhdSet)(
    HANDLE VirtualDiskHandle, const PTAKE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
    TAKE_SNAPSHOT_VHDSET_FLAG Flags);
typedef DWORD(WINAPI VIRTDISK_FN_DeleteSnapshotVhdSet)(
    HANDLE VirtualDiskHandle, const PDELETE_SNAPSHOT_VHDSET_PARAMETERS Parameters,
    DELETE_SNAPSHOT_VHDSET_FLAG Flags);
typedef DWORD(WINAPI VIRTDISK_FN_ModifyVhdSet)(
    HANDLE VirtualDiskHandle, const PMODIFY_VHDSET_PARAMETERS Parameters,
    MODIFY_VHDSET_FLAG Flags);
typedef DWORD(WINAPI VIRTDISK_FN_ApplySnapshotVhdSet)(
    HANDLE VirtualDiskHandle, const PAPPLY_SNAPSHOT_VHDSET_PARAMETERS Parameters,
    APPLY_SNAPSHOT_VHDSET_FLAG Flags);
typedef DWORD(WINAPI VIRTDISK_FN_RawSCSIVirtualDisk)(
    HANDLE VirtualDiskHandle, const PRAW_SCSI_VIRTUAL_DISK_PARAMETERS Parameters,
    RAW_SCSI_VIRTUAL_DISK_FLAG Flags, PRAW_SCSI_VIRTUAL_DISK_RESPONSE Response);
typedef DWORD(WINAPI VIRTDISK_FN_ForkVirtualDisk)(
    HANDLE VirtualDiskHandle, FORK_VIRTUAL_DISK_FLAG Flags,
    const FORK_VIRTUAL_DISK_PARAMETERS *Parameters, LPOVERLAPPED Overlapped);
typedef DWORD(WINAPI VIRTDISK_FN_CompleteForkVirtualDisk)(HANDLE VirtualDiskHandle);

/* Windows 8.1 has the first twenty; the rest arrived later and are resolved
 * at run time on Windows (see virtdisk_dispatch.h), so that the extension
 * loads on every Windows the supported Pythons run on. */
VIRTDISKAPI VIRTDISK_FN_OpenVirtualDisk OpenVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_CreateVirtualDisk CreateVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_AttachVirtualDisk AttachVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_DetachVirtualDisk DetachVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_GetVirtualDiskPhysicalPath GetVirtualDiskPhysicalPath;
VIRTDISKAPI VIRTDISK_FN_GetStorageDependencyInformation GetStorageDependencyInformation;
VIRTDISKAPI VIRTDISK_FN_GetVirtualDiskInformation GetVirtualDiskInformation;
VIRTDISKAPI VIRTDISK_FN_SetVirtualDiskInformation SetVirtualDiskInformation;
VIRTDISKAPI VIRTDISK_FN_GetVirtualDiskOperationProgress GetVirtualDiskOperationProgress;
VIRTDISKAPI VIRTDISK_FN_CompactVirtualDisk CompactVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_MergeVirtualDisk MergeVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_ExpandVirtualDisk ExpandVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_EnumerateVirtualDiskMetadata EnumerateVirtualDiskMetadata;
VIRTDISKAPI VIRTDISK_FN_GetVirtualDiskMetadata GetVirtualDiskMetadata;
VIRTDISKAPI VIRTDISK_FN_SetVirtualDiskMetadata SetVirtualDiskMetadata;
VIRTDISKAPI VIRTDISK_FN_DeleteVirtualDiskMetadata DeleteVirtualDiskMetadata;
VIRTDISKAPI VIRTDISK_FN_ResizeVirtualDisk ResizeVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_MirrorVirtualDisk MirrorVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_BreakMirrorVirtualDisk BreakMirrorVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_AddVirtualDiskParent AddVirtualDiskParent;

VIRTDISKAPI VIRTDISK_FN_GetAllAttachedVirtualDiskPhysicalPaths GetAllAttachedVirtualDiskPhysicalPaths;
VIRTDISKAPI VIRTDISK_FN_QueryChangesVirtualDisk QueryChangesVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_TakeSnapshotVhdSet TakeSnapshotVhdSet;
VIRTDISKAPI VIRTDISK_FN_DeleteSnapshotVhdSet DeleteSnapshotVhdSet;
VIRTDISKAPI VIRTDISK_FN_ModifyVhdSet ModifyVhdSet;
VIRTDISKAPI VIRTDISK_FN_ApplySnapshotVhdSet ApplySnapshotVhdSet;
VIRTDISKAPI VIRTDISK_FN_RawSCSIVirtualDisk RawSCSIVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_ForkVirtualDisk ForkVirtualDisk;
VIRTDISKAPI VIRTDISK_FN_CompleteForkVirtualDisk CompleteForkVirtualDisk;

/* ------------------------------------------------------------------ */
/* Layout pins: the SDK's sizes and offsets (x64 and x86).             */

#if defined(__cplusplus) && __cplusplus >= 201103L
#  define VIRTDISK_API_ASSERT(name, condition) static_assert(condition, #name)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#  define VIRTDISK_API_ASSERT(name, condition) _Static_assert(condition, #name)
#else
/* Compilers in C89 mode (MSVC without /std:c11) still reject a negative
 * array size at compile time. */
#  define VIRTDISK_API_ASSERT(name, condition) \
    typedef char virtdisk_api_assert_##name[(condition) ? 1 : -1]
#endif

#define VIRTDISK_API_SIZE(type, x64, x86) \
    VIRTDISK_API_ASSERT(size_##type, sizeof(type) == (sizeof(void *) == 8 ? (x64) : (x86)))
#define VIRTDISK_API_OFFSET(type, tag, member, x64, x86)            \
    VIRTDISK_API_ASSERT(offset_##type##_##tag,                      \
                        offsetof(type, member) == (sizeof(void *) == 8 ? (x64) : (x86)))

/* Windows x86 aligns 8-byte integers inside structs on 8 bytes; the System V
 * i386 ABI does not, so 32-bit pins hold for Windows only.  Every 64-bit
 * target uses the same layout as Windows x64.  A Windows compiler without
 * _WIN32 (clang's Windows targets with -U_WIN32, which take this header's
 * own typedefs) still lays structs out the Windows way: _MSC_VER or
 * __MINGW32__ tells. */
#if defined(_WIN32) || defined(_WIN64) || defined(_MSC_VER) || defined(__MINGW32__) \
    || UINTPTR_MAX > 0xffffffffu || defined(__LP64__)

VIRTDISK_API_ASSERT(size_WCHAR, sizeof(WCHAR) == 2);
VIRTDISK_API_ASSERT(size_DWORD, sizeof(DWORD) == 4);
VIRTDISK_API_ASSERT(size_ULONG, sizeof(ULONG) == 4);
VIRTDISK_API_ASSERT(size_BOOL, sizeof(BOOL) == 4);
VIRTDISK_API_ASSERT(size_GUID, sizeof(GUID) == 16);
VIRTDISK_API_SIZE(VIRTUAL_STORAGE_TYPE, 20, 20);

VIRTDISK_API_SIZE(OPEN_VIRTUAL_DISK_PARAMETERS, 44, 44);
VIRTDISK_API_OFFSET(OPEN_VIRTUAL_DISK_PARAMETERS, rwdepth, Version1.RWDepth, 4, 4);
VIRTDISK_API_OFFSET(OPEN_VIRTUAL_DISK_PARAMETERS, v2_readonly, Version2.ReadOnly, 8, 8);
VIRTDISK_API_OFFSET(OPEN_VIRTUAL_DISK_PARAMETERS, v2_resiliency, Version2.ResiliencyGuid, 12, 12);
VIRTDISK_API_OFFSET(OPEN_VIRTUAL_DISK_PARAMETERS, v3_snapshot, Version3.SnapshotId, 28, 28);

VIRTDISK_API_SIZE(CREATE_VIRTUAL_DISK_PARAMETERS, 184, 160);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v1_unique, Version1.UniqueId, 8, 8);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v1_max, Version1.MaximumSize, 24, 24);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v1_parent, Version1.ParentPath, 40, 40);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v1_source, Version1.SourcePath, 48, 44);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_physical, Version2.PhysicalSectorSizeInBytes, 40, 40);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_parent, Version2.ParentPath, 48, 44);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_source, Version2.SourcePath, 56, 48);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_openflags, Version2.OpenFlags, 64, 52);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_parenttype, Version2.ParentVirtualStorageType, 68, 56);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_sourcetype, Version2.SourceVirtualStorageType, 88, 76);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v2_resiliency, Version2.ResiliencyGuid, 108, 96);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v3_limit, Version3.SourceLimitPath, 128, 112);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v3_backing, Version3.BackingStorageType, 136, 116);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v4_pmem, Version4.PmemAddressAbstractionType, 156, 136);
VIRTDISK_API_OFFSET(CREATE_VIRTUAL_DISK_PARAMETERS, v4_alignment, Version4.DataAlignment, 176, 152);

VIRTDISK_API_SIZE(ATTACH_VIRTUAL_DISK_PARAMETERS, 24, 24);
VIRTDISK_API_OFFSET(ATTACH_VIRTUAL_DISK_PARAMETERS, v1_reserved, Version1.Reserved, 8, 8);
VIRTDISK_API_OFFSET(ATTACH_VIRTUAL_DISK_PARAMETERS, v2_offset, Version2.RestrictedOffset, 8, 8);
VIRTDISK_API_OFFSET(ATTACH_VIRTUAL_DISK_PARAMETERS, v2_length, Version2.RestrictedLength, 16, 16);

VIRTDISK_API_SIZE(STORAGE_DEPENDENCY_INFO_TYPE_1, 28, 28);
VIRTDISK_API_SIZE(STORAGE_DEPENDENCY_INFO_TYPE_2, 64, 48);
VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO_TYPE_2, device, DependencyDeviceName, 32, 32);
VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO_TYPE_2, relative, DependentVolumeRelativePath, 56, 44);
/* No size pin: see the struct. */
VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO, count, NumberEntries, 4, 4);
VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO, entries1, Version1Entries, 8, 8);
VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO, entries2, Version2Entries, 8, 8);

VIRTDISK_API_SIZE(GET_VIRTUAL_DISK_INFO, 32, 32);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, size, Size.VirtualSize, 8, 8);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, sector, Size.SectorSize, 28, 28);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, identifier, Identifier, 8, 8);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, location, ParentLocation.ParentLocationBuffer, 12, 12);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, remote, PhysicalDisk.IsRemote, 16, 16);
VIRTDISK_API_OFFSET(GET_VIRTUAL_DISK_INFO, recent, ChangeTrackingState.MostRecentId, 16, 16);

VIRTDISK_API_SIZE(SET_VIRTUAL_DISK_INFO, 32, 24);
VIRTDISK_API_OFFSET(SET_VIRTUAL_DISK_INFO, parent, ParentFilePath, 8, 4);
VIRTDISK_API_OFFSET(SET_VIRTUAL_DISK_INFO, depth_path, ParentPathWithDepthInfo.ParentFilePath, 16, 8);
VIRTDISK_API_OFFSET(SET_VIRTUAL_DISK_INFO, locator_path, ParentLocator.ParentFilePath, 24, 20);

VIRTDISK_API_SIZE(VIRTUAL_DISK_PROGRESS, 24, 24);
VIRTDISK_API_OFFSET(VIRTUAL_DISK_PROGRESS, current, CurrentValue, 8, 8);
VIRTDISK_API_SIZE(COMPACT_VIRTUAL_DISK_PARAMETERS, 8, 8);
VIRTDISK_API_SIZE(MERGE_VIRTUAL_DISK_PARAMETERS, 12, 12);
VIRTDISK_API_SIZE(EXPAND_VIRTUAL_DISK_PARAMETERS, 16, 16);
VIRTDISK_API_SIZE(RESIZE_VIRTUAL_DISK_PARAMETERS, 16, 16);
VIRTDISK_API_SIZE(MIRROR_VIRTUAL_DISK_PARAMETERS, 16, 8);
VIRTDISK_API_SIZE(QUERY_CHANGES_VIRTUAL_DISK_RANGE, 24, 24);
VIRTDISK_API_SIZE(TAKE_SNAPSHOT_VHDSET_PARAMETERS, 20, 20);
VIRTDISK_API_SIZE(DELETE_SNAPSHOT_VHDSET_PARAMETERS, 20, 20);
VIRTDISK_API_SIZE(APPLY_SNAPSHOT_VHDSET_PARAMETERS, 36, 36);
VIRTDISK_API_SIZE(MODIFY_VHDSET_PARAMETERS, 32, 24);
VIRTDISK_API_OFFSET(MODIFY_VHDSET_PARAMETERS, path, SnapshotPath.SnapshotFilePath, 24, 20);
VIRTDISK_API_SIZE(RAW_SCSI_VIRTUAL_DISK_PARAMETERS, 48, 32);
VIRTDISK_API_OFFSET(RAW_SCSI_VIRTUAL_DISK_PARAMETERS, cdb, Version1.Cdb, 40, 28);
VIRTDISK_API_SIZE(RAW_SCSI_VIRTUAL_DISK_RESPONSE, 12, 12);
VIRTDISK_API_SIZE(FORK_VIRTUAL_DISK_PARAMETERS, 16, 8);

#endif /* layout pins */

#ifdef __cplusplus
}
#endif

#endif /* VIRTDISK_API_H */
