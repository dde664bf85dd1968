/* Win32 error codes the engine returns.
 *
 * The engine answers with the code Windows documents for the same situation,
 * so the layers above cannot tell which implementation they run on.  Values
 * are those of the Windows SDK's winerror.h; the virtual disk family lives in
 * FACILITY_USERMODE_VHD (0x3A) with severity "error" (0xC0000000). */
#ifndef VDENGINE_VD_ERRORS_H
#define VDENGINE_VD_ERRORS_H

#define VD_ERROR_SUCCESS                   0u
#define VD_ERROR_FILE_NOT_FOUND            2u
#define VD_ERROR_PATH_NOT_FOUND            3u
#define VD_ERROR_TOO_MANY_OPEN_FILES       4u
#define VD_ERROR_ACCESS_DENIED             5u
#define VD_ERROR_INVALID_HANDLE            6u
#define VD_ERROR_NOT_ENOUGH_MEMORY         8u
#define VD_ERROR_INVALID_DATA             13u
#define VD_ERROR_OUTOFMEMORY              14u
#define VD_ERROR_NOT_READY                21u
#define VD_ERROR_READ_FAULT               30u
#define VD_ERROR_WRITE_FAULT              29u
#define VD_ERROR_GEN_FAILURE              31u
#define VD_ERROR_SHARING_VIOLATION        32u
#define VD_ERROR_LOCK_VIOLATION           33u
#define VD_ERROR_HANDLE_EOF               38u
#define VD_ERROR_NOT_SUPPORTED            50u
#define VD_ERROR_FILE_EXISTS              80u
#define VD_ERROR_INVALID_PARAMETER        87u
#define VD_ERROR_DISK_FULL               112u
#define VD_ERROR_CALL_NOT_IMPLEMENTED    120u
#define VD_ERROR_INSUFFICIENT_BUFFER     122u
#define VD_ERROR_INVALID_NAME            123u
#define VD_ERROR_BUSY                    170u
#define VD_ERROR_ALREADY_EXISTS          183u
#define VD_ERROR_FILENAME_EXCED_RANGE    206u
#define VD_ERROR_MORE_DATA               234u
#define VD_ERROR_UNSUPPORTED_COMPRESSION 618u
#define VD_ERROR_FILE_SYSTEM_LIMITATION  665u
#define VD_ERROR_OPERATION_ABORTED       995u
#define VD_ERROR_NOACCESS                998u
#define VD_ERROR_IO_PENDING              997u
#define VD_ERROR_IO_DEVICE              1117u
#define VD_ERROR_NOT_FOUND              1168u
#define VD_ERROR_DISK_QUOTA_EXCEEDED    1295u
#define VD_ERROR_PRIVILEGE_NOT_HELD     1314u
#define VD_ERROR_FILE_CORRUPT           1392u
#define VD_ERROR_CANT_RESOLVE_FILENAME  1921u
#define VD_ERROR_FILE_ENCRYPTED         6002u

#define VD_VHD_ERROR(n) (0xC03A0000u | (n))
#define VD_ERROR_VHD_DRIVE_FOOTER_MISSING                VD_VHD_ERROR(0x01)
#define VD_ERROR_VHD_DRIVE_FOOTER_CHECKSUM_MISMATCH      VD_VHD_ERROR(0x02)
#define VD_ERROR_VHD_DRIVE_FOOTER_CORRUPT                VD_VHD_ERROR(0x03)
#define VD_ERROR_VHD_FORMAT_UNKNOWN                      VD_VHD_ERROR(0x04)
#define VD_ERROR_VHD_FORMAT_UNSUPPORTED_VERSION          VD_VHD_ERROR(0x05)
#define VD_ERROR_VHD_SPARSE_HEADER_CHECKSUM_MISMATCH     VD_VHD_ERROR(0x06)
#define VD_ERROR_VHD_SPARSE_HEADER_UNSUPPORTED_VERSION   VD_VHD_ERROR(0x07)
#define VD_ERROR_VHD_SPARSE_HEADER_CORRUPT               VD_VHD_ERROR(0x08)
#define VD_ERROR_VHD_BLOCK_ALLOCATION_FAILURE            VD_VHD_ERROR(0x09)
#define VD_ERROR_VHD_BLOCK_ALLOCATION_TABLE_CORRUPT      VD_VHD_ERROR(0x0A)
#define VD_ERROR_VHD_INVALID_BLOCK_SIZE                  VD_VHD_ERROR(0x0B)
#define VD_ERROR_VHD_BITMAP_MISMATCH                     VD_VHD_ERROR(0x0C)
#define VD_ERROR_VHD_PARENT_VHD_NOT_FOUND                VD_VHD_ERROR(0x0D)
#define VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH            VD_VHD_ERROR(0x0E)
#define VD_ERROR_VHD_CHILD_PARENT_TIMESTAMP_MISMATCH     VD_VHD_ERROR(0x0F)
#define VD_ERROR_VHD_METADATA_READ_FAILURE               VD_VHD_ERROR(0x10)
#define VD_ERROR_VHD_METADATA_WRITE_FAILURE              VD_VHD_ERROR(0x11)
#define VD_ERROR_VHD_INVALID_SIZE                        VD_VHD_ERROR(0x12)
#define VD_ERROR_VHD_INVALID_FILE_SIZE                   VD_VHD_ERROR(0x13)
#define VD_ERROR_VIRTDISK_PROVIDER_NOT_FOUND             VD_VHD_ERROR(0x14)
#define VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK               VD_VHD_ERROR(0x15)
#define VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED            VD_VHD_ERROR(0x16)
#define VD_ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH          VD_VHD_ERROR(0x17)
#define VD_ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED   VD_VHD_ERROR(0x18)
#define VD_ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT  VD_VHD_ERROR(0x19)
#define VD_ERROR_VIRTUAL_DISK_LIMITATION                 VD_VHD_ERROR(0x1A)
#define VD_ERROR_VHD_INVALID_TYPE                        VD_VHD_ERROR(0x1B)
#define VD_ERROR_VHD_INVALID_STATE                       VD_VHD_ERROR(0x1C)
#define VD_ERROR_VHD_METADATA_FULL                       VD_VHD_ERROR(0x28)

#endif
