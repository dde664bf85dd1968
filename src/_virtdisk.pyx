# cython: language_level=3, binding=True, embedsignature=True, autotestdict=False
# cython: freethreading_compatible = True
"""The Windows Virtual Disk API (virtdisk.h), one Python function per C entry point.

Names, arguments and enums follow Microsoft's documentation one to one, so a
reader can hold the two side by side:
https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/

On Windows the calls go to VirtDisk.dll; elsewhere to the portable engine,
which implements the same functions on image files.  Every call releases the
GIL.  Every failure raises the exception class that ``virtdisk.errors`` maps
the returned Win32 code to (never ``GetLastError``).  Parameter structs are
built from keyword arguments named after their fields; handles are
``VirtualDiskHandle`` objects that close themselves.
"""

cimport cython

import atexit
import enum
import errno
import os
import uuid
import warnings

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_SET_ITEM
from cpython.unicode cimport (
    PyUnicode_1BYTE_KIND, PyUnicode_4BYTE_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ,
)
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

cimport virtdisk_api as api
from virtdisk_api cimport (
    BOOL, DWORD, GUID, HANDLE, OVERLAPPED, PCWSTR, PSECURITY_DESCRIPTOR, UCHAR, ULONG, ULONG64,
    VIRTUAL_STORAGE_TYPE, WCHAR,
    ATTACH_VIRTUAL_DISK_FLAG, ATTACH_VIRTUAL_DISK_PARAMETERS, ATTACH_VIRTUAL_DISK_VERSION,
    APPLY_SNAPSHOT_VHDSET_FLAG, APPLY_SNAPSHOT_VHDSET_PARAMETERS, APPLY_SNAPSHOT_VHDSET_VERSION,
    COMPACT_VIRTUAL_DISK_FLAG, COMPACT_VIRTUAL_DISK_PARAMETERS, COMPACT_VIRTUAL_DISK_VERSION,
    CREATE_VIRTUAL_DISK_FLAG, CREATE_VIRTUAL_DISK_PARAMETERS, CREATE_VIRTUAL_DISK_VERSION,
    DELETE_SNAPSHOT_VHDSET_FLAG, DELETE_SNAPSHOT_VHDSET_PARAMETERS, DELETE_SNAPSHOT_VHDSET_VERSION,
    DETACH_VIRTUAL_DISK_FLAG, EXPAND_VIRTUAL_DISK_FLAG, EXPAND_VIRTUAL_DISK_PARAMETERS,
    EXPAND_VIRTUAL_DISK_VERSION, FORK_VIRTUAL_DISK_FLAG, FORK_VIRTUAL_DISK_PARAMETERS,
    FORK_VIRTUAL_DISK_VERSION, GET_STORAGE_DEPENDENCY_FLAG, GET_VIRTUAL_DISK_INFO,
    GET_VIRTUAL_DISK_INFO_VERSION, MERGE_VIRTUAL_DISK_FLAG, MERGE_VIRTUAL_DISK_PARAMETERS,
    MERGE_VIRTUAL_DISK_VERSION, MIRROR_VIRTUAL_DISK_FLAG, MIRROR_VIRTUAL_DISK_PARAMETERS,
    MIRROR_VIRTUAL_DISK_VERSION, MODIFY_VHDSET_FLAG, MODIFY_VHDSET_PARAMETERS,
    MODIFY_VHDSET_VERSION, OPEN_VIRTUAL_DISK_FLAG, OPEN_VIRTUAL_DISK_PARAMETERS,
    OPEN_VIRTUAL_DISK_VERSION, QUERY_CHANGES_VIRTUAL_DISK_FLAG, QUERY_CHANGES_VIRTUAL_DISK_RANGE,
    RAW_SCSI_VIRTUAL_DISK_FLAG, RAW_SCSI_VIRTUAL_DISK_PARAMETERS, RAW_SCSI_VIRTUAL_DISK_RESPONSE,
    RAW_SCSI_VIRTUAL_DISK_VERSION, RESIZE_VIRTUAL_DISK_FLAG, RESIZE_VIRTUAL_DISK_PARAMETERS,
    RESIZE_VIRTUAL_DISK_VERSION, SET_VIRTUAL_DISK_INFO, SET_VIRTUAL_DISK_INFO_VERSION,
    STORAGE_DEPENDENCY_INFO, STORAGE_DEPENDENCY_INFO_TYPE_1, STORAGE_DEPENDENCY_INFO_TYPE_2,
    STORAGE_DEPENDENCY_INFO_VERSION, TAKE_SNAPSHOT_VHDSET_FLAG, TAKE_SNAPSHOT_VHDSET_PARAMETERS,
    TAKE_SNAPSHOT_VHDSET_VERSION, VIRTUAL_DISK_ACCESS_MASK, VIRTUAL_DISK_PROGRESS,
    vd_close_handle, vd_open_device, vd_attach_partition, vd_skip_sync, vd_copy_to_file, vd_copy_from_file, vd_dispatch_implements, vd_dispatch_init, vd_overlapped_init, vd_overlapped_release,
    vd_overlapped_wait, vd_overlapped_fd, vd_overlapped_arm, vd_cancel_io,
    vd_fn_GetAllAttachedVirtualDiskPhysicalPaths, vd_fn_QueryChangesVirtualDisk,
    vd_fn_TakeSnapshotVhdSet, vd_fn_DeleteSnapshotVhdSet, vd_fn_ModifyVhdSet,
    vd_fn_ApplySnapshotVhdSet, vd_fn_RawSCSIVirtualDisk, vd_fn_ForkVirtualDisk,
    vd_fn_CompleteForkVirtualDisk,
)

include "_virtdisk_enums.pxi"

cdef extern from "_virtdisk_support.h":
    object vd_error_new(object type, object errno_value, object message, object path,
                        dict attributes)
    void *vd_slot_take(void **slot) nogil
    void *vd_slot_load(void **slot) nogil
    long vd_count_add(long *count, long delta) nogil

cdef extern from "Python.h":
    object PyOS_FSPath(object path)
    ctypedef struct PyObject:
        pass
    # A NULL `exc`: an int too large is clipped rather than refused.
    Py_ssize_t PyNumber_AsSsize_t(object number, PyObject *exc) except? -1
    bint PyLong_CheckExact(object number)
    long PyLong_AsLongAndOverflow(object number, int *overflow) except? -1

cdef extern from "_virtdisk_raw_scsi_entry.h":
    ctypedef object (*vd_raw_scsi_call)(object handle, object cdb, object data_in, object data,
                                        object data_transfer_length, object sense_info_length,
                                        object srb_flags, object rsvd_handle, object flags,
                                        object version)
    object vd_raw_scsi_entry_new(object general, tuple names, tuple defaults,
                                 vd_raw_scsi_call convert)

# Where a STORAGE_DEPENDENCY_INFO's entries start: its buffer is this plus the
# entries.  Its sizeof differs between compilers (virtdisk_api.h).
cdef extern from *:
    """
    #define VD_STORAGE_DEPENDENCY_ENTRIES offsetof(STORAGE_DEPENDENCY_INFO, Version1Entries)
    """
    const size_t VD_STORAGE_DEPENDENCY_ENTRIES


# ---------------------------------------------------------------------------
# Result types: PyStructSequence types described in _virtdisk_answers.h, so
# that an answer is built in C (allocated, then its items set) and is still a
# tuple with names: indexing, unpacking, ==/hash with a plain tuple.

cdef extern from "_virtdisk_answers.h":
    ctypedef struct PyStructSequence_Desc:
        pass
    PyStructSequence_Desc vd_virtual_storage_type, vd_virtual_disk_size, vd_parent_location
    PyStructSequence_Desc vd_physical_disk, vd_change_tracking_state
    PyStructSequence_Desc vd_storage_dependency_info, vd_virtual_disk_progress
    PyStructSequence_Desc vd_changed_ranges, vd_raw_scsi_response
    object vd_answer_type_new(PyStructSequence_Desc *description)
    void vd_answer_set_constructor(object constructor)
    int vd_answer_type_seal(object type) except -1
    object vd_answer_alloc(object type, Py_ssize_t size)
    void vd_answer_track(object answer)
    object vd_answer_of_ints(object type, Py_ssize_t size, const unsigned long long *values)
    object vd_raw_scsi_answer(object type, UCHAR status, const UCHAR *sense,
                              Py_ssize_t sense_length, unsigned long long moved)
    void PyStructSequence_SET_ITEM(object answer, Py_ssize_t index, object value)
    void vd_kept_answers_start()
    void vd_kept_answers_empty()
    Py_ssize_t vd_kept_answer_total()
    int vd_answer_ints_start() except -1
    void vd_answer_ints_empty()


def _answer_new(cls, *values, **fields):
    """`Type(*values, **fields)`: the fields by position or by name, as a
    named tuple takes them (a structseq's own constructor takes one
    sequence)."""
    if cls not in _ANSWER_TYPES:
        raise TypeError(f"{cls!r} is not one of _virtdisk's answer types")
    cdef tuple names = cls._fields
    cdef Py_ssize_t given = len(values)
    if given > len(names):
        raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments "
                        f"but {given} were given")
    if fields:
        for name in names[:given]:
            if name in fields:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        missing = [name for name in names[given:] if name not in fields]
        if missing:
            raise TypeError(f"{cls.__name__}() missing required arguments: {missing}")
        values += tuple([fields.pop(name) for name in names[given:]])
        if fields:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments: "
                            f"{sorted(fields)}")
    elif given < len(names):
        raise TypeError(f"{cls.__name__}() missing required arguments: {list(names[given:])}")
    return _result(cls, values)


vd_answer_set_constructor(_answer_new)


def _answer_reduce(self):
    """Pickles as the type called with the fields (the structseq default
    passes one sequence, which _answer_new would take as the first field)."""
    return type(self), tuple(self)


def _answer_replace(self, /, **fields):
    """`copy.replace(answer, **fields)` (Python 3.13): the type called with
    the fields, so that the copy is tracked by what it holds.  structseq's
    own leaves every copy untracked, and an untracked answer is freed
    without the trashcan (_virtdisk_answers.h): a chain of copies nested a
    million deep would overflow the C stack, and a cycle through a copy
    would never be collected."""
    return _answer_new(type(self), *[fields.pop(name, value)
                                     for name, value in zip(self._fields, self)], **fields)


cdef object _answer_type(PyStructSequence_Desc *description):
    """A new answer type: a structseq that is also made the way a named
    tuple is, by fields, and that names its fields in `_fields`."""
    answer_type = vd_answer_type_new(description)
    answer_type._fields = answer_type.__match_args__
    answer_type.__reduce__ = _answer_reduce
    answer_type.__replace__ = _answer_replace
    vd_answer_type_seal(answer_type)
    return answer_type


VirtualStorageType = _answer_type(&vd_virtual_storage_type)
VirtualDiskSize = _answer_type(&vd_virtual_disk_size)
ParentLocation = _answer_type(&vd_parent_location)
PhysicalDisk = _answer_type(&vd_physical_disk)
ChangeTrackingState = _answer_type(&vd_change_tracking_state)
StorageDependencyInfo = _answer_type(&vd_storage_dependency_info)
VirtualDiskProgress = _answer_type(&vd_virtual_disk_progress)
ChangedRanges = _answer_type(&vd_changed_ranges)
RawScsiResponse = _answer_type(&vd_raw_scsi_response)
cdef frozenset _ANSWER_TYPES = frozenset({
    VirtualStorageType, VirtualDiskSize, ParentLocation, PhysicalDisk, ChangeTrackingState,
    StorageDependencyInfo, VirtualDiskProgress, ChangedRanges, RawScsiResponse})


# From here until the interpreter exits, freed answers are kept for the next
# ones (_virtdisk_kept_answers.h) and powers of two are answered with ints
# made once (_virtdisk_answer_ints.h).  The atexit hook lets go of both while
# the module is still whole; an answer made or freed later does without.
vd_answer_ints_start()
vd_kept_answers_start()


def _empty_kept_answers() -> None:
    """Frees the kept answers and the ints made once, and keeps no more (run
    at exit)."""
    vd_kept_answers_empty()
    vd_answer_ints_empty()


def _kept_answer_count() -> int:
    """How many freed answers are kept for reuse now (for tests)."""
    return vd_kept_answer_total()


atexit.register(_empty_kept_answers)


cdef inline void _put(object answer, Py_ssize_t index, object value) noexcept:
    Py_INCREF(value)  # PyStructSequence_SET_ITEM takes the reference over
    PyStructSequence_SET_ITEM(answer, index, value)


cdef object _result(object cls, tuple values):
    """An answer with the items of `values` (as many as `cls` has fields)."""
    cdef object answer = vd_answer_alloc(cls, PyTuple_GET_SIZE(values))
    cdef Py_ssize_t index
    for index in range(PyTuple_GET_SIZE(values)):
        _put(answer, index, values[index])
    vd_answer_track(answer)
    return answer


cdef inline object _result2(object cls, object first, object second):
    cdef object answer = vd_answer_alloc(cls, 2)
    _put(answer, 0, first)
    _put(answer, 1, second)
    vd_answer_track(answer)
    return answer


cdef inline object _result3(object cls, object first, object second, object third):
    cdef object answer = vd_answer_alloc(cls, 3)
    _put(answer, 0, first)
    _put(answer, 1, second)
    _put(answer, 2, third)
    vd_answer_track(answer)
    return answer


cdef inline object _result4(object cls, object first, object second, object third,
                            object fourth):
    cdef object answer = vd_answer_alloc(cls, 4)
    _put(answer, 0, first)
    _put(answer, 1, second)
    _put(answer, 2, third)
    _put(answer, 3, fourth)
    vd_answer_track(answer)
    return answer


cdef inline object _kept_or_new(object last, Py_ssize_t index, ULONG64 last_value,
                                ULONG64 value):
    """Item `index` of the previous answer `last` when it was answered for
    `value` (that int is reused, not built again), else a new int."""
    if last is not None and last_value == value:
        return (<tuple>last)[index]
    return value


VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN = uuid.UUID(int=0)
VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT = uuid.UUID("ec984aec-a0f9-47e9-901f-71415a66345b")

PLATFORM = api.VIRTDISK_PLATFORM_NAME.decode("ascii")

# ---------------------------------------------------------------------------
# Format facts, from the engine's format headers (plain C constants, built on
# Windows too), so that the facade never types a signature, a limit or a
# metadata item GUID of its own.

cdef extern from *:
    """
    #include "vdengine/formats/vhd/vhd_format.h"
    #include "vdengine/formats/vhdx/vhdx_format.h"
    /* [MS-VHDX] 2.6.2, in the specification's order. */
    static const uint8_t vd_py_vhdx_system_items[][16] = {
        VD_VHDX_GUID_FILE_PARAMETERS, VD_VHDX_GUID_VIRTUAL_DISK_SIZE, VD_VHDX_GUID_PAGE83_DATA,
        VD_VHDX_GUID_LOGICAL_SECTOR_SIZE, VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE,
        VD_VHDX_GUID_PARENT_LOCATOR,
    };
    #define VD_PY_VHDX_SYSTEM_ITEM_COUNT \\
        (sizeof vd_py_vhdx_system_items / sizeof vd_py_vhdx_system_items[0])
    """
    const char *VD_VHD_FOOTER_COOKIE
    const unsigned int VD_VHD_COOKIE_SIZE
    const unsigned int VD_VHD_FOOTER_SIZE
    const unsigned long long VD_VHD_MAX_SIZE
    const char *VD_VHDX_SIGNATURE
    const unsigned int VD_VHDX_SIGNATURE_SIZE
    const unsigned long long VD_VHDX_MAX_VIRTUAL_SIZE
    const unsigned long long VD_VHDX_MIN_BLOCK_SIZE
    const unsigned long long VD_VHDX_MAX_BLOCK_SIZE
    const unsigned long long VD_VHDX_METADATA_MAX_ITEM_LENGTH
    const unsigned char vd_py_vhdx_system_items[][16]
    const size_t VD_PY_VHDX_SYSTEM_ITEM_COUNT

VHD_FOOTER_COOKIE = (<bytes>VD_VHD_FOOTER_COOKIE)[:VD_VHD_COOKIE_SIZE]
VHD_FOOTER_SIZE = VD_VHD_FOOTER_SIZE
VHD_MAXIMUM_SIZE = VD_VHD_MAX_SIZE
VHDX_FILE_SIGNATURE = (<bytes>VD_VHDX_SIGNATURE)[:VD_VHDX_SIGNATURE_SIZE]
VHDX_MAXIMUM_SIZE = VD_VHDX_MAX_VIRTUAL_SIZE
VHDX_MINIMUM_BLOCK_SIZE = VD_VHDX_MIN_BLOCK_SIZE
VHDX_MAXIMUM_BLOCK_SIZE = VD_VHDX_MAX_BLOCK_SIZE
VHDX_MAXIMUM_METADATA_ITEM_SIZE = VD_VHDX_METADATA_MAX_ITEM_LENGTH
VHDX_SYSTEM_METADATA_ITEMS = tuple(
    uuid.UUID(bytes_le=(<char *>vd_py_vhdx_system_items[index])[:16])
    for index in range(VD_PY_VHDX_SYSTEM_ITEM_COUNT))

# ---------------------------------------------------------------------------
# Errors: one helper on the failure path, the table lives in virtdisk.errors.

cdef object _error_from_code = None
# Win32 code -> (class, errno, message, attributes), from virtdisk.errors'
# table, for the codes that have failed in this process.  `attributes` is
# the instance dict with the per-call items (function, detail) still None:
# a failing call copies it and fills those two in place, which costs less
# than building a four-item dict from nothing.
cdef dict _error_entries = {}
cdef cython.pymutex _error_lock


cdef object _error_entry(object code):
    """The entry of `code` in virtdisk.errors' table, or None for a code it
    does not know (then error_from_code makes the exception)."""
    global _error_from_code
    if _error_from_code is None:
        # Imported on first failure: virtdisk imports this module, so an
        # import at load time would be circular.  Threads failing at once
        # all import the same function; the lock keeps the store whole.
        from virtdisk.errors import error_from_code
        with _error_lock:
            _error_from_code = error_from_code
    from virtdisk.errors import _NAMES, _TABLE
    known = _TABLE.get(code)
    if known is None:
        return None
    if _WINERROR_IS_SLOT:
        # Windows' OSError keeps winerror in its struct, not in __dict__.
        attributes = {"function": None, "code_name": _NAMES.get(code), "detail": None}
    else:
        # The order error_from_code sets them in, so that vars() agree too.
        attributes = {"winerror": code, "function": None, "code_name": _NAMES.get(code),
                      "detail": None}
    entry = (known[0], known[1], known[2], attributes)
    _error_entries[code] = entry
    return entry


cdef object _error(DWORD code, str function, object path):
    """The exception virtdisk.errors maps `code` to, equal to what its
    error_from_code returns, built here without a Python-level call for
    the codes seen before.  Callers raise it themselves: an exception
    raised in a helper collects one traceback entry per Cython function it
    passes through, which costs more than the call."""
    cdef object number = code
    cdef object detail = _last_detail()
    entry = _error_entries.get(number)
    if entry is None:
        entry = _error_entry(number)
        if entry is None:
            return _error_from_code(number, function, path, detail)
    cdef dict attributes = (<dict>(<tuple>entry)[3]).copy()
    attributes["function"] = function
    attributes["detail"] = detail
    error = vd_error_new((<tuple>entry)[0], (<tuple>entry)[1], (<tuple>entry)[2], path,
                         attributes)
    if _WINERROR_IS_SLOT:
        error.winerror = number
    return error


cdef bint _WINERROR_IS_SLOT = hasattr(OSError, "winerror")


cdef object _last_detail():
    cdef const char *text = api.vd_dispatch_last_detail()
    return None if text == NULL else text.decode("utf-8", "replace")


def last_error_detail() -> str | None:
    """Why this thread's last VirtDisk call failed, in words, where the
    Win32 code alone does not say: the portable engine names the structure
    of the image it rejected ("VHDX header 2 checksum mismatch").  None when
    that call recorded nothing, and always on Windows, whose VirtDisk
    returns only the code.  Each call clears it as it starts; calls in
    other threads never change it.  Failures raised here carry it as the
    exception's ``detail``."""
    return _last_detail()


# ---------------------------------------------------------------------------
# Conversions

cdef bytes _wide(object path, str argument):
    """A str or os.PathLike as a NUL-terminated WCHAR string (UTF-16 in host
    order), for PCWSTR arguments.  Copied straight from the str's storage:
    this runs on every open.  Lone surrogates pass through unchanged, as
    Windows file names may hold them."""
    cdef object text = path if type(path) is str else PyOS_FSPath(path)
    cdef Py_ssize_t length, units, index
    cdef int kind
    cdef const void *data
    cdef unsigned int character  # a code point (Cython's Py_UCS4 acts as a 1-char str)
    cdef WCHAR *out
    cdef bytes result
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be str or os.PathLike[str], not {type(text).__name__}")
    length = PyUnicode_GET_LENGTH(text)
    kind = PyUnicode_KIND(text)
    data = PyUnicode_DATA(text)
    if kind == PyUnicode_1BYTE_KIND:
        # The common case (ASCII and Latin-1 names): one unit per character.
        if memchr(data, 0, length) != NULL:
            raise ValueError(f"{argument} must not contain NUL characters")
        result = PyBytes_FromStringAndSize(NULL, (length + 1) * 2)
        out = <WCHAR *>PyBytes_AS_STRING(result)
        for index in range(length):
            out[index] = (<const unsigned char *>data)[index]
        out[length] = 0
        return result
    units = length
    if kind == PyUnicode_4BYTE_KIND:
        for index in range(length):
            if (<const Py_UCS4 *>data)[index] > 0xFFFF:
                units += 1
    result = PyBytes_FromStringAndSize(NULL, (units + 1) * 2)
    out = <WCHAR *>PyBytes_AS_STRING(result)
    units = 0
    for index in range(length):
        character = <unsigned int>PyUnicode_READ(kind, data, index)
        if character == 0:
            raise ValueError(f"{argument} must not contain NUL characters")
        if character > 0xFFFF:
            character -= 0x10000
            out[units] = <WCHAR>(0xD800 + (character >> 10))
            out[units + 1] = <WCHAR>(0xDC00 + (character & 0x3FF))
            units += 2
        else:
            out[units] = <WCHAR>character
            units += 1
    out[units] = 0
    return result


cdef bytes _optional_wide(object path, str argument):
    return None if path is None else _wide(path, argument)


cdef inline PCWSTR _as_pcwstr(bytes data):
    if data is None:
        return NULL
    return <PCWSTR>PyBytes_AS_STRING(data)


cdef size_t _wide_length(const WCHAR *text, size_t limit) noexcept nogil:
    cdef size_t length = 0
    while length < limit and text[length] != 0:
        length += 1
    return length


cdef str _from_wide(const WCHAR *text, size_t units):
    return (<char *>text)[:units * 2].decode("utf-16-le", "surrogatepass")


cdef list _from_multi_sz(const WCHAR *text, size_t units):
    """Splits a MULTI_SZ (strings each NUL-terminated, an empty one ends it)."""
    cdef list result = []
    cdef size_t start = 0
    cdef size_t length
    while start < units:
        length = _wide_length(text + start, units - start)
        if length == 0:
            break
        result.append(_from_wide(text + start, length))
        start += length + 1
    return result


cdef bytes _guid_bytes(const GUID *guid):
    """The 16 bytes of a GUID in Windows memory order (uuid.UUID.bytes_le)."""
    cdef unsigned char raw[16]
    cdef unsigned long data1 = guid.Data1
    raw[0] = data1 & 0xFF
    raw[1] = (data1 >> 8) & 0xFF
    raw[2] = (data1 >> 16) & 0xFF
    raw[3] = (data1 >> 24) & 0xFF
    raw[4] = guid.Data2 & 0xFF
    raw[5] = guid.Data2 >> 8
    raw[6] = guid.Data3 & 0xFF
    raw[7] = guid.Data3 >> 8
    memcpy(&raw[8], guid.Data4, 8)
    return PyBytes_FromStringAndSize(<char *>raw, 16)


cdef object _uuid_from_guid(const GUID *guid):
    return uuid.UUID(bytes_le=_guid_bytes(guid))


cdef int _guid_from(object value, GUID *guid, str argument) except -1:
    """Fills `guid` from None (all zero), a uuid.UUID or 16 bytes in Windows
    memory order."""
    cdef const unsigned char *raw
    if value is None:
        memset(guid, 0, sizeof(GUID))
        return 0
    if isinstance(value, uuid.UUID):
        data = (<object>value).bytes_le
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) != 16:
            raise ValueError(f"{argument} must be 16 bytes, not {len(data)}")
    else:
        raise TypeError(
            f"{argument} must be uuid.UUID, 16 bytes or None, not {type(value).__name__}")
    raw = <const unsigned char *>PyBytes_AS_STRING(data)
    guid.Data1 = (<unsigned long>raw[0] | <unsigned long>raw[1] << 8
                  | <unsigned long>raw[2] << 16 | <unsigned long>raw[3] << 24)
    guid.Data2 = <unsigned short>(raw[4] | raw[5] << 8)
    guid.Data3 = <unsigned short>(raw[6] | raw[7] << 8)
    memcpy(guid.Data4, &raw[8], 8)
    return 0


cdef object _VENDOR_UNKNOWN = VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN
cdef object _VENDOR_MICROSOFT = VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
cdef GUID _VENDOR_UNKNOWN_GUID
cdef GUID _VENDOR_MICROSOFT_GUID
_guid_from(VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN, &_VENDOR_UNKNOWN_GUID, "vendor")
_guid_from(VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, &_VENDOR_MICROSOFT_GUID, "vendor")


cdef int _storage_type_from(object value, VIRTUAL_STORAGE_TYPE *out, str argument) except -1:
    """Fills `out` from a VirtualStorageType (or any (device_id, vendor_id)
    pair).  The two vendor constants skip the UUID conversion: opening a disk
    is a hot path."""
    if isinstance(value, tuple) and PyTuple_GET_SIZE(value) == 2:
        device_id = (<tuple>value)[0]
        vendor_id = (<tuple>value)[1]
    else:
        device_id, vendor_id = value
    out.DeviceId = device_id
    if vendor_id is _VENDOR_MICROSOFT:
        out.VendorId = _VENDOR_MICROSOFT_GUID
    elif vendor_id is _VENDOR_UNKNOWN:
        out.VendorId = _VENDOR_UNKNOWN_GUID
    else:
        _guid_from(vendor_id, &out.VendorId, argument + ".vendor_id")
    return 0


# An IntEnum's members by value, looked up instead of calling the enum class
# (whose __call__ is a Python-level search) for every answer.
cdef dict _members_by_value(object enum_class):
    return {int(member): member for member in enum_class}


cdef object _member_or_int(dict members, unsigned long value):
    """The member of `members` for `value`, or the plain int for a value the
    enum does not name."""
    cdef object number = value
    return members.get(number, number)


cdef dict _DEVICES = _members_by_value(VirtualStorageTypeDevice)
cdef dict _PROVIDER_SUBTYPES = _members_by_value(ProviderSubtype)


cdef object _storage_type_to(const VIRTUAL_STORAGE_TYPE *value):
    """The two vendor constants come back as themselves, without building a
    uuid.UUID to compare."""
    if memcmp(&value.VendorId, &_VENDOR_MICROSOFT_GUID, sizeof(GUID)) == 0:
        vendor = _VENDOR_MICROSOFT
    elif memcmp(&value.VendorId, &_VENDOR_UNKNOWN_GUID, sizeof(GUID)) == 0:
        vendor = _VENDOR_UNKNOWN
    else:
        vendor = _uuid_from_guid(&value.VendorId)
    return _result2(VirtualStorageType, _member_or_int(_DEVICES, value.DeviceId), vendor)


cdef class _SecurityDescriptor:
    """Holds the bytes of a self-relative SECURITY_DESCRIPTOR for one call."""
    cdef bytes data

    def __cinit__(self, object value):
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("security_descriptor must be bytes (a self-relative "
                            f"SECURITY_DESCRIPTOR) or None, not {type(value).__name__}")
        self.data = None if value is None else bytes(value)

    cdef PSECURITY_DESCRIPTOR pointer(self) noexcept:
        return NULL if self.data is None else <PSECURITY_DESCRIPTOR>PyBytes_AS_STRING(self.data)


# ---------------------------------------------------------------------------
# Handles

# Changed only through vd_count_add: threads open and close handles at once
# on a free-threaded CPython.
cdef long _live_handles = 0


def live_handle_count() -> int:
    """How many VirtualDiskHandle objects are open in this process (for leak
    checks)."""
    return vd_count_add(&_live_handles, 0)


cdef class VirtualDiskHandle:
    """A virtual disk handle from OpenVirtualDisk or CreateVirtualDisk.

    It is closed by ``close()``, at the end of a ``with`` block, or when it is
    garbage-collected (with a ResourceWarning, as for files).  Using a closed
    handle raises the api.ERROR_INVALID_HANDLE error class, never crashes.

    Threads may share one handle: calls on it run concurrently, and of
    several threads closing it one closes it and the others find it closed.
    A call that races with the close either runs on the handle or raises
    the ERROR_INVALID_HANDLE error class.

    ``path`` names the image the handle is on: the path it was opened or
    created with, and once BreakMirrorVirtualDisk has switched it over to
    its mirror, the mirror's path as MirrorVirtualDisk was given it.
    """
    # NULL once closed or detached (no open handle is NULL); read with
    # vd_slot_load and emptied with vd_slot_take only, so that one thread
    # alone gets to close it.
    cdef HANDLE _handle
    cdef readonly object path
    # The path of the mirror MirrorVirtualDisk last started on this handle,
    # which becomes `path` when BreakMirrorVirtualDisk succeeds; None when
    # no mirror was started.
    cdef object _mirror_path
    # The last SIZE answer on this handle and the sizes it holds.  While the
    # disk's sizes stay the same, GetVirtualDiskInformation(SIZE) returns
    # that answer again instead of building four ints and a tuple: it is
    # immutable, so callers can share it.  None until the first SIZE answer.
    cdef object _last_size
    cdef ULONG64 _last_virtual_size
    cdef ULONG64 _last_physical_size
    cdef ULONG _last_block_size
    cdef ULONG _last_sector_size

    def __cinit__(self):
        self._handle = NULL
        self.path = None
        self._mirror_path = None
        self._last_size = None

    def __init__(self):
        raise TypeError("VirtualDiskHandle objects come from OpenVirtualDisk, CreateVirtualDisk "
                        "or open_device")

    @property
    def closed(self) -> bool:
        """True once the handle has been closed or detached."""
        return vd_slot_load(&self._handle) == NULL

    @property
    def value(self) -> int:
        """The raw HANDLE value, for passing to other Windows APIs."""
        return <uintptr_t>self._require("value")

    cdef HANDLE _require(self, str function) except? NULL:
        cdef HANDLE handle = vd_slot_load(&self._handle)
        if handle == NULL:
            raise _error(api.ERROR_INVALID_HANDLE, function, self.path)
        return handle

    cdef object _size_answer(self, GET_VIRTUAL_DISK_INFO *info):
        """The VirtualDiskSize for `info.Size`: the last one answered on this
        handle when every size is unchanged, else a new one (kept as the
        last) that reuses the last one's ints for the sizes that stayed.
        The critical section keeps the answer and its sizes in step when
        threads share the handle on a free-threaded CPython."""
        with cython.critical_section(self):
            last = self._last_size
            if (last is not None
                    and self._last_virtual_size == info.Size.VirtualSize
                    and self._last_physical_size == info.Size.PhysicalSize
                    and self._last_block_size == info.Size.BlockSize
                    and self._last_sector_size == info.Size.SectorSize):
                return last
            self._last_size = _result4(
                VirtualDiskSize,
                _kept_or_new(last, 0, self._last_virtual_size, info.Size.VirtualSize),
                _kept_or_new(last, 1, self._last_physical_size, info.Size.PhysicalSize),
                _kept_or_new(last, 2, self._last_block_size, info.Size.BlockSize),
                _kept_or_new(last, 3, self._last_sector_size, info.Size.SectorSize))
            self._last_virtual_size = info.Size.VirtualSize
            self._last_physical_size = info.Size.PhysicalSize
            self._last_block_size = info.Size.BlockSize
            self._last_sector_size = info.Size.SectorSize
            return self._last_size

    cdef HANDLE _take(self) noexcept:
        """Empties the slot: the HANDLE for the one caller that gets it,
        NULL for every other."""
        cdef HANDLE handle = vd_slot_take(&self._handle)
        if handle != NULL:
            vd_count_add(&_live_handles, -1)
        return handle

    def close(self) -> None:
        """Closes the handle (CloseHandle).  Closing twice is allowed."""
        cdef HANDLE handle = self._take()
        cdef DWORD code
        if handle == NULL:
            return
        with nogil:
            code = vd_close_handle(handle)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "CloseHandle", self.path)

    def detach_handle(self) -> int:
        """Gives up ownership: returns the raw HANDLE value, which the caller
        must close, and marks this object closed."""
        cdef HANDLE handle = self._take()
        if handle == NULL:
            raise _error(api.ERROR_INVALID_HANDLE, "detach_handle", self.path)
        return <uintptr_t>handle

    def __enter__(self):
        self._require("__enter__")
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        if vd_slot_load(&self._handle) != NULL:
            warnings.warn(f"unclosed virtual disk handle {self!r}", ResourceWarning,
                          stacklevel=2, source=self)
            self.close()

    def __dealloc__(self):
        # Reached without __del__ only when the interpreter is shutting down.
        cdef HANDLE handle = self._take()
        if handle != NULL:
            with nogil:
                vd_close_handle(handle)

    def __repr__(self) -> str:
        cdef HANDLE handle = vd_slot_load(&self._handle)
        state = "closed" if handle == NULL else f"handle={<uintptr_t>handle:#x}"
        return f"<VirtualDiskHandle {state} path={self.path!r}>"

    def __reduce__(self):
        raise TypeError("a virtual disk handle cannot be pickled")


cdef VirtualDiskHandle _new_handle(HANDLE handle, object path):
    cdef VirtualDiskHandle result = VirtualDiskHandle.__new__(VirtualDiskHandle)
    result._handle = handle
    result.path = path
    vd_count_add(&_live_handles, 1)
    return result


def CloseHandle(handle):
    """Closes a raw handle value, such as one given up by
    VirtualDiskHandle.detach_handle() (kernel32's CloseHandle on Windows).

    https://learn.microsoft.com/en-us/windows/win32/api/handleapi/nf-handleapi-closehandle
    """
    cdef HANDLE native
    cdef DWORD code
    if isinstance(handle, VirtualDiskHandle):
        (<VirtualDiskHandle>handle).close()
        return
    native = _handle_of(handle, "CloseHandle")
    with nogil:
        code = vd_close_handle(native)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "CloseHandle", None)


cdef HANDLE _handle_of(object handle, str function) except? NULL:
    """A VirtualDiskHandle's HANDLE, or a raw handle value given as int."""
    if isinstance(handle, VirtualDiskHandle):
        return (<VirtualDiskHandle>handle)._require(function)
    if isinstance(handle, int):
        return <HANDLE><uintptr_t>handle
    raise TypeError(f"handle must be VirtualDiskHandle or int, not {type(handle).__name__}")


cdef object _path_of(object handle):
    return (<VirtualDiskHandle>handle).path if isinstance(handle, VirtualDiskHandle) else None


cdef class Overlapped:
    """An OVERLAPPED for the long operations (compact, merge, expand, resize,
    mirror, fork).  Pass it as ``overlapped=`` to start the operation without
    waiting; poll GetVirtualDiskOperationProgress, call ``wait()`` (from
    any number of threads), or watch ``fileno()`` in an event loop; stop it
    with CancelIoEx.  Its event is set while no operation runs with it.
    Keep it until the operation has finished: one collected while its
    operation still runs gives up its memory to the operation (a small
    leak) rather than free what the operation writes."""
    cdef OVERLAPPED *_overlapped

    def __cinit__(self):
        self._overlapped = <OVERLAPPED *>malloc(sizeof(OVERLAPPED))
        if self._overlapped == NULL:
            raise MemoryError()
        cdef DWORD code = vd_overlapped_init(self._overlapped)
        if code != api.ERROR_SUCCESS:
            free(self._overlapped)
            self._overlapped = NULL
            raise _error(code, "CreateEventW", None)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits for the operation; False if it is still running after
        `timeout` seconds (None waits for ever)."""
        cdef DWORD milliseconds = 0xFFFFFFFF if timeout is None else <DWORD>max(0, timeout * 1000)
        cdef DWORD code
        with nogil:
            code = vd_overlapped_wait(self._overlapped, milliseconds)
        if code == _WAIT_TIMEOUT:
            return False
        if code != api.ERROR_SUCCESS:
            raise _error(code, "WaitForSingleObject", None)
        return True

    def fileno(self) -> int:
        """A descriptor that polls readable exactly while the event is set
        (for ``loop.add_reader``); it stays this object's.  OSError
        (EOPNOTSUPP) on Windows, whose events have no descriptor."""
        cdef int fd = vd_overlapped_fd(self._overlapped)
        if fd < 0:
            raise OSError(errno.EOPNOTSUPP, "Windows events have no file descriptor")
        return fd

    def __dealloc__(self):
        # No other thread holds this object here, but an operation may still
        # hold its OVERLAPPED (the event is reset until it ends): then the
        # memory stays theirs.
        if self._overlapped == NULL:
            return
        if vd_overlapped_wait(self._overlapped, 0) == _WAIT_TIMEOUT:
            return
        vd_overlapped_release(self._overlapped)
        free(self._overlapped)


cdef DWORD _WAIT_TIMEOUT = 258
# OVERLAPPED.Internal while an operation runs with it.
cdef size_t _STATUS_PENDING = 0x103


cdef OVERLAPPED *_overlapped_of(object overlapped) except? NULL:
    if overlapped is None:
        return NULL
    if not isinstance(overlapped, Overlapped):
        raise TypeError(f"overlapped must be Overlapped or None, not {type(overlapped).__name__}")
    return (<Overlapped>overlapped)._overlapped


cdef OVERLAPPED *_overlapped_start(object overlapped) except? NULL:
    """The OVERLAPPED for a call that may start an operation: its event is
    reset, so that a wait lasts until the operation ends."""
    cdef OVERLAPPED *pointer = _overlapped_of(overlapped)
    if pointer != NULL:
        vd_overlapped_arm(pointer, 1)
    return pointer


cdef void _overlapped_end(OVERLAPPED *pointer, DWORD code) noexcept:
    """After the call: unless an operation runs with the OVERLAPPED (the call
    answered ERROR_IO_PENDING, or another operation still runs with it), the
    event is set again, as nothing will set it."""
    if pointer != NULL and code != api.ERROR_IO_PENDING and pointer.Internal != _STATUS_PENDING:
        vd_overlapped_arm(pointer, 0)


# ---------------------------------------------------------------------------
# Feature detection

_LINKED_FUNCTIONS = (
    "OpenVirtualDisk", "CreateVirtualDisk", "AttachVirtualDisk", "DetachVirtualDisk",
    "GetVirtualDiskPhysicalPath", "GetStorageDependencyInformation",
    "GetVirtualDiskInformation", "SetVirtualDiskInformation",
    "GetVirtualDiskOperationProgress", "CompactVirtualDisk", "MergeVirtualDisk",
    "ExpandVirtualDisk", "EnumerateVirtualDiskMetadata", "GetVirtualDiskMetadata",
    "SetVirtualDiskMetadata", "DeleteVirtualDiskMetadata", "ResizeVirtualDisk",
    "MirrorVirtualDisk", "BreakMirrorVirtualDisk", "AddVirtualDiskParent",
)

_code = vd_dispatch_init()
if _code != api.ERROR_SUCCESS:
    raise ImportError(f"VirtDisk.dll could not be loaded from System32 (Win32 error {_code})")


def features() -> dict:
    """Which of the 29 VirtDisk entry points this system carries out, by
    Win32 name.

    On Windows the twenty of Windows 8.1 are linked and always present; the
    nine newer ones are looked up in System32's VirtDisk.dll when the module
    loads.  On the portable engine a function is False while it refuses
    every call, with ERROR_CALL_NOT_IMPLEMENTED or a decided code such as
    ERROR_NOT_SUPPORTED (the engine's own table says which).
    """
    result = dict.fromkeys(_LINKED_FUNCTIONS, True)
    result.update({
        "GetAllAttachedVirtualDiskPhysicalPaths": vd_fn_GetAllAttachedVirtualDiskPhysicalPaths != NULL,
        "QueryChangesVirtualDisk": vd_fn_QueryChangesVirtualDisk != NULL,
        "TakeSnapshotVhdSet": vd_fn_TakeSnapshotVhdSet != NULL,
        "DeleteSnapshotVhdSet": vd_fn_DeleteSnapshotVhdSet != NULL,
        "ModifyVhdSet": vd_fn_ModifyVhdSet != NULL,
        "ApplySnapshotVhdSet": vd_fn_ApplySnapshotVhdSet != NULL,
        "RawSCSIVirtualDisk": vd_fn_RawSCSIVirtualDisk != NULL,
        "ForkVirtualDisk": vd_fn_ForkVirtualDisk != NULL,
        "CompleteForkVirtualDisk": vd_fn_CompleteForkVirtualDisk != NULL,
    })
    for name in result:
        result[name] = result[name] and vd_dispatch_implements(name.encode("ascii")) != 0
    return result


cdef int _require_function(void *pointer, str function) except -1:
    if pointer == NULL:
        raise _error(api.ERROR_PROC_NOT_FOUND, function, None)
    return 0


# ---------------------------------------------------------------------------
# Open, create, attach, detach

def OpenVirtualDisk(virtual_storage_type, path, access_mask, flags, version=1, *,
                    rw_depth=api.OPEN_VIRTUAL_DISK_RW_DEPTH_DEFAULT, get_info_only=False,
                    read_only=False, resiliency_guid=None, snapshot_id=None):
    """Opens a VHD, VHDX or ISO image and returns its handle.

    `version` selects OPEN_VIRTUAL_DISK_PARAMETERS: 1 uses `rw_depth`; 2 and 3
    use `get_info_only`, `read_only`, `resiliency_guid` (3 adds
    `snapshot_id`) and require ``access_mask == VirtualDiskAccessMask.NONE``.
    ``version=None`` passes no parameters at all.  `virtual_storage_type`
    None passes NULL (Windows answers api.ERROR_INVALID_PARAMETER).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-openvirtualdisk
    """
    cdef VIRTUAL_STORAGE_TYPE storage_type
    cdef VIRTUAL_STORAGE_TYPE *storage_type_pointer = NULL
    cdef OPEN_VIRTUAL_DISK_PARAMETERS parameters
    cdef OPEN_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD mask = access_mask
    cdef DWORD open_flags = flags
    cdef HANDLE handle = NULL
    cdef DWORD code
    cdef bytes wide_path = _optional_wide(path, "path")
    cdef PCWSTR path_pointer = _as_pcwstr(wide_path)
    if virtual_storage_type is not None:
        _storage_type_from(virtual_storage_type, &storage_type, "virtual_storage_type")
        storage_type_pointer = &storage_type
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <OPEN_VIRTUAL_DISK_VERSION><DWORD>version
        if parameters.Version == api.OPEN_VIRTUAL_DISK_VERSION_1:
            parameters.Version1.RWDepth = rw_depth
        else:
            parameters.Version3.GetInfoOnly = bool(get_info_only)
            parameters.Version3.ReadOnly = bool(read_only)
            _guid_from(resiliency_guid, &parameters.Version3.ResiliencyGuid, "resiliency_guid")
            _guid_from(snapshot_id, &parameters.Version3.SnapshotId, "snapshot_id")
        parameters_pointer = &parameters
    with nogil:
        code = api.OpenVirtualDisk(storage_type_pointer, path_pointer,
                               <VIRTUAL_DISK_ACCESS_MASK>mask,
                               <OPEN_VIRTUAL_DISK_FLAG>open_flags, parameters_pointer, &handle)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "OpenVirtualDisk", path)
    return _new_handle(handle, path)


def CreateVirtualDisk(virtual_storage_type, path, access_mask, flags, version=2, *,
                      unique_id=None, maximum_size=0, block_size=0, sector_size=0,
                      physical_sector_size=0, parent_path=None, source_path=None,
                      open_flags=0, parent_virtual_storage_type=None,
                      source_virtual_storage_type=None, resiliency_guid=None,
                      source_limit_path=None, backing_storage_type=None,
                      pmem_address_abstraction_type=None, data_alignment=0,
                      security_descriptor=None, provider_specific_flags=0,
                      overlapped=None):
    """Creates a VHD or VHDX and returns its handle.

    `version` selects CREATE_VIRTUAL_DISK_PARAMETERS 1 to 4; each keyword is
    the field of the same name (block_size is BlockSizeInBytes, and so on)
    and is ignored by versions that lack it.  Version 1 knows only
    unique_id, maximum_size, block_size, sector_size, parent_path and
    source_path.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-createvirtualdisk
    """
    cdef VIRTUAL_STORAGE_TYPE storage_type
    cdef VIRTUAL_STORAGE_TYPE *storage_type_pointer = NULL
    cdef CREATE_VIRTUAL_DISK_PARAMETERS parameters
    cdef CREATE_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD mask = access_mask
    cdef DWORD create_flags = flags
    cdef ULONG provider_flags = provider_specific_flags
    cdef HANDLE handle = NULL
    cdef DWORD code
    cdef _SecurityDescriptor descriptor = _SecurityDescriptor(security_descriptor)
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef bytes wide_path = _optional_wide(path, "path")
    cdef bytes wide_parent = _optional_wide(parent_path, "parent_path")
    cdef bytes wide_source = _optional_wide(source_path, "source_path")
    cdef bytes wide_limit = _optional_wide(source_limit_path, "source_limit_path")
    cdef PCWSTR path_pointer = _as_pcwstr(wide_path)
    cdef PSECURITY_DESCRIPTOR descriptor_pointer = descriptor.pointer()
    if virtual_storage_type is not None:
        _storage_type_from(virtual_storage_type, &storage_type, "virtual_storage_type")
        storage_type_pointer = &storage_type
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <CREATE_VIRTUAL_DISK_VERSION><DWORD>version
        if parameters.Version == api.CREATE_VIRTUAL_DISK_VERSION_1:
            _guid_from(unique_id, &parameters.Version1.UniqueId, "unique_id")
            parameters.Version1.MaximumSize = maximum_size
            parameters.Version1.BlockSizeInBytes = block_size
            parameters.Version1.SectorSizeInBytes = sector_size
            parameters.Version1.ParentPath = _as_pcwstr(wide_parent)
            parameters.Version1.SourcePath = _as_pcwstr(wide_source)
        else:
            _guid_from(unique_id, &parameters.Version4.UniqueId, "unique_id")
            parameters.Version4.MaximumSize = maximum_size
            parameters.Version4.BlockSizeInBytes = block_size
            parameters.Version4.SectorSizeInBytes = sector_size
            parameters.Version4.PhysicalSectorSizeInBytes = physical_sector_size
            parameters.Version4.ParentPath = _as_pcwstr(wide_parent)
            parameters.Version4.SourcePath = _as_pcwstr(wide_source)
            parameters.Version4.OpenFlags = <OPEN_VIRTUAL_DISK_FLAG><DWORD>open_flags
            if parent_virtual_storage_type is not None:
                _storage_type_from(parent_virtual_storage_type,
                                   &parameters.Version4.ParentVirtualStorageType,
                                   "parent_virtual_storage_type")
            if source_virtual_storage_type is not None:
                _storage_type_from(source_virtual_storage_type,
                                   &parameters.Version4.SourceVirtualStorageType,
                                   "source_virtual_storage_type")
            _guid_from(resiliency_guid, &parameters.Version4.ResiliencyGuid, "resiliency_guid")
            if parameters.Version >= api.CREATE_VIRTUAL_DISK_VERSION_3:
                parameters.Version4.SourceLimitPath = _as_pcwstr(wide_limit)
                if backing_storage_type is not None:
                    _storage_type_from(backing_storage_type,
                                       &parameters.Version4.BackingStorageType,
                                       "backing_storage_type")
            if parameters.Version >= api.CREATE_VIRTUAL_DISK_VERSION_4:
                _guid_from(pmem_address_abstraction_type,
                           &parameters.Version4.PmemAddressAbstractionType,
                           "pmem_address_abstraction_type")
                parameters.Version4.DataAlignment = data_alignment
        parameters_pointer = &parameters
    with nogil:
        code = api.CreateVirtualDisk(storage_type_pointer, path_pointer,
                                 <VIRTUAL_DISK_ACCESS_MASK>mask, descriptor_pointer,
                                 <CREATE_VIRTUAL_DISK_FLAG>create_flags, provider_flags,
                                 parameters_pointer, overlapped_pointer, &handle)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "CreateVirtualDisk", path)
    return _new_handle(handle, path)


def AttachVirtualDisk(handle, flags, version=1, *, restricted_offset=0, restricted_length=0,
                      security_descriptor=None, provider_specific_flags=0, overlapped=None):
    """Attaches (surfaces) the disk as a device.  Without
    AttachVirtualDiskFlag.PERMANENT_LIFETIME the disk is detached again when
    the last handle to it closes.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-attachvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "AttachVirtualDisk")
    cdef ATTACH_VIRTUAL_DISK_PARAMETERS parameters
    cdef ATTACH_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD attach_flags = flags
    cdef ULONG provider_flags = provider_specific_flags
    cdef _SecurityDescriptor descriptor = _SecurityDescriptor(security_descriptor)
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef DWORD code
    cdef PSECURITY_DESCRIPTOR descriptor_pointer = descriptor.pointer()
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <ATTACH_VIRTUAL_DISK_VERSION><DWORD>version
        if parameters.Version == api.ATTACH_VIRTUAL_DISK_VERSION_2:
            parameters.Version2.RestrictedOffset = restricted_offset
            parameters.Version2.RestrictedLength = restricted_length
        parameters_pointer = &parameters
    with nogil:
        code = api.AttachVirtualDisk(native, descriptor_pointer,
                                 <ATTACH_VIRTUAL_DISK_FLAG>attach_flags, provider_flags,
                                 parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "AttachVirtualDisk", _path_of(handle))


def DetachVirtualDisk(handle, flags=0, provider_specific_flags=0):
    """Detaches a disk attached through this handle (or with permanent
    lifetime, when the handle was opened with VirtualDiskAccessMask.DETACH).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-detachvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "DetachVirtualDisk")
    cdef DWORD detach_flags = flags
    cdef ULONG provider_flags = provider_specific_flags
    cdef DWORD code
    with nogil:
        code = api.DetachVirtualDisk(native, <DETACH_VIRTUAL_DISK_FLAG>detach_flags, provider_flags)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "DetachVirtualDisk", _path_of(handle))


def GetVirtualDiskPhysicalPath(handle):
    """The device path of an attached disk, e.g. ``\\\\.\\PhysicalDrive3``.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-getvirtualdiskphysicalpath
    """
    cdef HANDLE native = _handle_of(handle, "GetVirtualDiskPhysicalPath")
    cdef ULONG size = 1024
    cdef WCHAR *buffer = NULL
    cdef DWORD code = api.ERROR_INSUFFICIENT_BUFFER
    try:
        while code == api.ERROR_INSUFFICIENT_BUFFER:
            buffer = <WCHAR *>_grow(buffer, size)
            with nogil:
                code = api.GetVirtualDiskPhysicalPath(native, &size, buffer)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "GetVirtualDiskPhysicalPath", _path_of(handle))
        return _from_wide(buffer, _wide_length(buffer, size // 2))
    finally:
        free(buffer)


cdef void *_grow(void *buffer, size_t size) except NULL:
    cdef void *grown = realloc(buffer, size if size > 0 else 1)
    if grown == NULL:
        free(buffer)
        raise MemoryError()
    return grown


def GetAllAttachedVirtualDiskPhysicalPaths():
    """The device paths of every attached virtual disk on the system.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/
    """
    _require_function(<void *>vd_fn_GetAllAttachedVirtualDiskPhysicalPaths,
                      "GetAllAttachedVirtualDiskPhysicalPaths")
    cdef ULONG size = 1024
    cdef WCHAR *buffer = NULL
    cdef DWORD code = api.ERROR_INSUFFICIENT_BUFFER
    try:
        while code == api.ERROR_INSUFFICIENT_BUFFER:
            buffer = <WCHAR *>_grow(buffer, size)
            with nogil:
                code = vd_fn_GetAllAttachedVirtualDiskPhysicalPaths(&size, buffer)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "GetAllAttachedVirtualDiskPhysicalPaths", None)
        return _from_multi_sz(buffer, size // 2)
    finally:
        free(buffer)


def open_device(path):
    """A handle to a disk or a volume, the handle GetStorageDependencyInformation
    takes besides a virtual disk's: on Windows CreateFile of ``\\\\.\\PhysicalDriveN``
    or of a volume's root directory; elsewhere a block device node
    (``/dev/loopN``) or a directory, which stands for the file system that
    holds it (a mount point, usually).  Every other function refuses it with
    the api.ERROR_INVALID_HANDLE error class.

    https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew
    """
    cdef bytes wide_path = _wide(path, "path")
    cdef PCWSTR path_pointer = _as_pcwstr(wide_path)
    cdef HANDLE handle = NULL
    cdef DWORD code
    with nogil:
        code = vd_open_device(path_pointer, &handle)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "open_device", path)
    return _new_handle(handle, path)


def attach_partition(handle, number):
    """Makes partition `number` (a GPT entry's slot from 1, or an MBR
    primary entry 1 to 4) of the disk `handle` attached to the host a block
    device of its own and returns its path (``/dev/loopN``).  It lives as
    long as the attach.  The engine's: Linux makes no partition devices on
    a loop device by itself.  Windows gives each partition its own device
    and answers the api.ERROR_NOT_SUPPORTED error class.
    """
    cdef HANDLE native = _handle_of(handle, "attach_partition")
    cdef ULONG partition = number
    cdef ULONG device = 0
    cdef DWORD code
    with nogil:
        code = vd_attach_partition(native, partition, &device)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "attach_partition", _path_of(handle))
    return f"/dev/loop{device}"


def skip_sync(handle):
    """Makes the flushes of the image `handle` writes (not its parents)
    stop waiting for stable storage: the writes and their crash-safe order
    stay, fsync goes, so a killed process leaves what it would and only a
    power loss before the system writes the file back can lose it.  For a
    new image written whole before it is read (a conversion's destination,
    which cp and qemu-img convert do not sync either).  The engine's:
    Windows has no such switch and answers the api.ERROR_NOT_SUPPORTED
    error class; a handle open read-only answers api.ERROR_ACCESS_DENIED's.
    """
    cdef HANDLE native = _handle_of(handle, "skip_sync")
    cdef DWORD code
    with nogil:
        code = vd_skip_sync(native)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "skip_sync", _path_of(handle))


def copy_to_file(handle, offset, length, fd):
    """Writes bytes [`offset`, `offset` + `length`) of the disk's content
    into the file open for writing at descriptor `fd`, at the same
    offsets: for a conversion to a raw image.  Runs that read zeros are not
    written (a new file sized beforehand keeps them as holes); runs an
    image file holds as they are go from file to file in the kernel
    (copy_file_range) where the host can.  The range must be whole sectors
    inside the disk (the api.ERROR_INVALID_PARAMETER error class
    otherwise).  The engine's: Windows has no such call and answers the
    api.ERROR_NOT_SUPPORTED error class.  The GIL is released while it
    runs.
    """
    cdef HANDLE native = _handle_of(handle, "copy_to_file")
    cdef unsigned long long start = offset
    cdef unsigned long long count = length
    cdef int descriptor = fd
    cdef DWORD code
    with nogil:
        code = vd_copy_to_file(native, start, count, descriptor)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "copy_to_file", _path_of(handle))


def copy_from_file(handle, fd, offset, length, piece):
    """Writes bytes [`offset`, `offset` + `length`) of the file open for
    reading at descriptor `fd` into the disk at the same offsets, through
    its data path, except the pieces that are all zeros: `piece` bytes
    each, aligned to multiples of `piece`, a whole number of sectors that
    divides the disk's block size (at most 64 MiB), so a block of zeros
    stays unallocated in a new dynamic disk.  For a conversion from a raw
    image.  The api.ERROR_HANDLE_EOF error class when the file ends first,
    api.ERROR_INVALID_PARAMETER's for a bad range or piece.  The engine's:
    Windows has no such call and answers the api.ERROR_NOT_SUPPORTED error
    class.  The GIL is released while it runs.
    """
    cdef HANDLE native = _handle_of(handle, "copy_from_file")
    cdef int descriptor = fd
    cdef unsigned long long start = offset
    cdef unsigned long long count = length
    cdef unsigned long size = piece
    cdef DWORD code
    with nogil:
        code = vd_copy_from_file(native, descriptor, start, count, size)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "copy_from_file", _path_of(handle))


def GetStorageDependencyInformation(handle, flags, version=2):
    """The virtual disks a volume or disk depends on (or, with
    GetStorageDependencyFlag.HOST_VOLUMES on a disk handle, its parents).
    `handle` may be a raw handle value from CreateFile.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-getstoragedependencyinformation
    """
    cdef HANDLE native = _handle_of(handle, "GetStorageDependencyInformation")
    cdef DWORD dependency_flags = flags
    cdef ULONG size = 4096
    cdef ULONG used = 0
    cdef STORAGE_DEPENDENCY_INFO *info = NULL
    cdef DWORD code = api.ERROR_INSUFFICIENT_BUFFER
    cdef ULONG index
    cdef STORAGE_DEPENDENCY_INFO_TYPE_2 *entry2
    cdef STORAGE_DEPENDENCY_INFO_TYPE_1 *entry1
    try:
        while code == api.ERROR_INSUFFICIENT_BUFFER:
            info = <STORAGE_DEPENDENCY_INFO *>_grow(info, size)
            memset(info, 0, VD_STORAGE_DEPENDENCY_ENTRIES)
            info.Version = <STORAGE_DEPENDENCY_INFO_VERSION><DWORD>version
            with nogil:
                code = api.GetStorageDependencyInformation(
                    native, <GET_STORAGE_DEPENDENCY_FLAG>dependency_flags, size, info, &used)
            if code == api.ERROR_INSUFFICIENT_BUFFER:
                if used <= size:
                    break
                size = used
        if code != api.ERROR_SUCCESS:
            raise _error(code, "GetStorageDependencyInformation", _path_of(handle))
        result = []
        for index in range(info.NumberEntries):
            if info.Version == api.STORAGE_DEPENDENCY_INFO_VERSION_2:
                entry2 = &info.Version2Entries[index]
                result.append(_result(StorageDependencyInfo, (
                    DependentDiskFlag(entry2.DependencyTypeFlags), entry2.ProviderSpecificFlags,
                    _storage_type_to(&entry2.VirtualStorageType), entry2.AncestorLevel,
                    _optional_from_wide(entry2.DependencyDeviceName),
                    _optional_from_wide(entry2.HostVolumeName),
                    _optional_from_wide(entry2.DependentVolumeName),
                    _optional_from_wide(entry2.DependentVolumeRelativePath))))
            else:
                entry1 = &info.Version1Entries[index]
                result.append(_result(StorageDependencyInfo, (
                    DependentDiskFlag(entry1.DependencyTypeFlags), entry1.ProviderSpecificFlags,
                    _storage_type_to(&entry1.VirtualStorageType), 0, None, None, None, None)))
        return result
    finally:
        free(info)


cdef object _optional_from_wide(const WCHAR *text):
    if text == NULL:
        return None
    return _from_wide(text, _wide_length(text, 32768))


# ---------------------------------------------------------------------------
# Information

# The type of the answer built most often, kept at C level: the call that
# builds it skips the module-dict look-up of the name.
cdef object _VIRTUAL_DISK_SIZE = VirtualDiskSize


cdef inline object _size_value(const GET_VIRTUAL_DISK_INFO *info):
    """A new VirtualDiskSize for `info.Size`, made in C (an answer of ints)."""
    cdef unsigned long long[4] sizes = [info.Size.VirtualSize, info.Size.PhysicalSize,
                                        info.Size.BlockSize, info.Size.SectorSize]
    return vd_answer_of_ints(_VIRTUAL_DISK_SIZE, 4, sizes)


cdef object _info_value(GET_VIRTUAL_DISK_INFO *info, ULONG size):
    """Converts the union arm `info.Version` selects."""
    cdef GET_VIRTUAL_DISK_INFO_VERSION version = info.Version
    cdef size_t units
    cdef char *base = <char *>info
    if version == api.GET_VIRTUAL_DISK_INFO_SIZE:
        return _size_value(info)
    if version == api.GET_VIRTUAL_DISK_INFO_IDENTIFIER:
        return _uuid_from_guid(&info.Identifier)
    if version == api.GET_VIRTUAL_DISK_INFO_PARENT_LOCATION:
        units = (size - (<char *>&info.ParentLocation.ParentLocationBuffer[0] - base)) // 2
        if info.ParentLocation.ParentResolved:
            return _result2(ParentLocation, True, [_from_wide(
                &info.ParentLocation.ParentLocationBuffer[0],
                _wide_length(&info.ParentLocation.ParentLocationBuffer[0], units))])
        return _result2(ParentLocation, False, _from_multi_sz(
            &info.ParentLocation.ParentLocationBuffer[0], units))
    if version == api.GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER:
        return _uuid_from_guid(&info.ParentIdentifier)
    if version == api.GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP:
        return info.ParentTimestamp
    if version == api.GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE:
        return _storage_type_to(&info.VirtualStorageType)
    if version == api.GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE:
        return _member_or_int(_PROVIDER_SUBTYPES, info.ProviderSubtype)
    if version == api.GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED:
        return bool(info.Is4kAligned)
    if version == api.GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK:
        return _result3(PhysicalDisk, info.PhysicalDisk.LogicalSectorSize,
                        info.PhysicalDisk.PhysicalSectorSize, bool(info.PhysicalDisk.IsRemote))
    if version == api.GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE:
        return info.VhdPhysicalSectorSize
    if version == api.GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE:
        return info.SmallestSafeVirtualSize
    if version == api.GET_VIRTUAL_DISK_INFO_FRAGMENTATION:
        return info.FragmentationPercentage
    if version == api.GET_VIRTUAL_DISK_INFO_IS_LOADED:
        return bool(info.IsLoaded)
    if version == api.GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
        return _uuid_from_guid(&info.VirtualDiskId)
    if version == api.GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE:
        units = (size - (<char *>&info.ChangeTrackingState.MostRecentId[0] - base)) // 2
        return _result3(
            ChangeTrackingState,
            bool(info.ChangeTrackingState.Enabled), bool(info.ChangeTrackingState.NewerChanges),
            _from_wide(&info.ChangeTrackingState.MostRecentId[0],
                       _wide_length(&info.ChangeTrackingState.MostRecentId[0], units)))
    raise ValueError(f"GetVirtualDiskInformation returned unknown version {<int>version}")


# A plain builtin rather than a Cython function object: the interpreter's
# call of a builtin is the shorter path, and this is the call made in loops.
# The clinic-format signature keeps it introspectable (inspect, stubtest).
@cython.binding(False)
@cython.embedsignature.format("clinic")
def GetVirtualDiskInformation(handle, version):
    """One GET_VIRTUAL_DISK_INFO item, converted to a Python value: a
    VirtualDiskSize, uuid.UUID, ParentLocation, int, bool, VirtualStorageType,
    PhysicalDisk or ChangeTrackingState according to `version`.  Variable-size
    answers are fetched with the api.ERROR_INSUFFICIENT_BUFFER protocol.
    Asked of a VirtualDiskHandle, SIZE answers with the same VirtualDiskSize
    object as last time while none of its sizes has changed.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-getvirtualdiskinformation
    """
    cdef HANDLE native = _handle_of(handle, "GetVirtualDiskInformation")
    cdef GET_VIRTUAL_DISK_INFO fixed
    cdef GET_VIRTUAL_DISK_INFO *info = &fixed
    cdef ULONG size = sizeof(GET_VIRTUAL_DISK_INFO)
    cdef ULONG used = 0
    cdef DWORD requested = version
    cdef DWORD code
    cdef int attempt
    fixed.Version = <GET_VIRTUAL_DISK_INFO_VERSION>requested
    with nogil:
        code = api.GetVirtualDiskInformation(native, &size, info, &used)
    if code == api.ERROR_SUCCESS:
        if requested == api.GET_VIRTUAL_DISK_INFO_SIZE:
            if isinstance(handle, VirtualDiskHandle):
                return (<VirtualDiskHandle>handle)._size_answer(info)
            return _size_value(info)
        return _info_value(info, used if used else size)
    info = NULL
    try:
        # Variable-size answers: grow to the size asked for.  The needed size
        # can change between calls (a parent path set meanwhile), so retry a
        # few times rather than once.
        for attempt in range(8):
            if code != api.ERROR_INSUFFICIENT_BUFFER:
                break
            info = <GET_VIRTUAL_DISK_INFO *>_grow(info, size)
            memset(info, 0, size)
            info.Version = <GET_VIRTUAL_DISK_INFO_VERSION>requested
            with nogil:
                code = api.GetVirtualDiskInformation(native, &size, info, &used)
            if code == api.ERROR_SUCCESS:
                return _info_value(info, used if used else size)
        raise _error(code, "GetVirtualDiskInformation", _path_of(handle))
    finally:
        free(info)


def SetVirtualDiskInformation(handle, version, *, parent_file_path=None,
                              unique_identifier=None, child_depth=0,
                              vhd_physical_sector_size=0, virtual_disk_id=None,
                              change_tracking_enabled=False, linkage_id=None):
    """Changes one SET_VIRTUAL_DISK_INFO item selected by `version`:
    PARENT_PATH (parent_file_path), IDENTIFIER (unique_identifier),
    PARENT_PATH_WITH_DEPTH (child_depth, parent_file_path),
    PHYSICAL_SECTOR_SIZE (vhd_physical_sector_size), VIRTUAL_DISK_ID
    (virtual_disk_id), CHANGE_TRACKING_STATE (change_tracking_enabled) or
    PARENT_LOCATOR (linkage_id, parent_file_path).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-setvirtualdiskinformation
    """
    cdef HANDLE native = _handle_of(handle, "SetVirtualDiskInformation")
    cdef SET_VIRTUAL_DISK_INFO info
    cdef DWORD code
    cdef bytes wide_parent = _optional_wide(parent_file_path, "parent_file_path")
    memset(&info, 0, sizeof(info))
    info.Version = <SET_VIRTUAL_DISK_INFO_VERSION><DWORD>version
    if info.Version == api.SET_VIRTUAL_DISK_INFO_PARENT_PATH:
        info.ParentFilePath = _as_pcwstr(wide_parent)
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_IDENTIFIER:
        _guid_from(unique_identifier, &info.UniqueIdentifier, "unique_identifier")
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_PARENT_PATH_WITH_DEPTH:
        info.ParentPathWithDepthInfo.ChildDepth = child_depth
        info.ParentPathWithDepthInfo.ParentFilePath = _as_pcwstr(wide_parent)
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_PHYSICAL_SECTOR_SIZE:
        info.VhdPhysicalSectorSize = vhd_physical_sector_size
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
        _guid_from(virtual_disk_id, &info.VirtualDiskId, "virtual_disk_id")
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE:
        info.ChangeTrackingEnabled = bool(change_tracking_enabled)
    elif info.Version == api.SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR:
        _guid_from(linkage_id, &info.ParentLocator.LinkageId, "linkage_id")
        info.ParentLocator.ParentFilePath = _as_pcwstr(wide_parent)
    with nogil:
        code = api.SetVirtualDiskInformation(native, &info)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "SetVirtualDiskInformation", _path_of(handle))


# ---------------------------------------------------------------------------
# Metadata (VHDX user and system items)

def EnumerateVirtualDiskMetadata(handle):
    """The GUIDs of the disk's metadata items.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-enumeratevirtualdiskmetadata
    """
    cdef HANDLE native = _handle_of(handle, "EnumerateVirtualDiskMetadata")
    cdef ULONG count = 16
    cdef GUID *items = NULL
    cdef DWORD code = api.ERROR_MORE_DATA
    cdef ULONG index
    try:
        while code == api.ERROR_MORE_DATA or code == api.ERROR_INSUFFICIENT_BUFFER:
            items = <GUID *>_grow(items, count * sizeof(GUID))
            with nogil:
                code = api.EnumerateVirtualDiskMetadata(native, &count, items)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "EnumerateVirtualDiskMetadata", _path_of(handle))
        return [_uuid_from_guid(&items[index]) for index in range(count)]
    finally:
        free(items)


def GetVirtualDiskMetadata(handle, item):
    """The bytes of one metadata item.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-getvirtualdiskmetadata
    """
    cdef HANDLE native = _handle_of(handle, "GetVirtualDiskMetadata")
    cdef GUID guid
    cdef ULONG size = 256
    cdef void *data = NULL
    cdef DWORD code = api.ERROR_INSUFFICIENT_BUFFER
    _guid_from(item, &guid, "item")
    try:
        while code == api.ERROR_INSUFFICIENT_BUFFER or code == api.ERROR_MORE_DATA:
            data = _grow(data, size)
            with nogil:
                code = api.GetVirtualDiskMetadata(native, &guid, &size, data)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "GetVirtualDiskMetadata", _path_of(handle))
        return PyBytes_FromStringAndSize(<char *>data, size)
    finally:
        free(data)


def SetVirtualDiskMetadata(handle, item, data):
    """Creates or replaces one metadata item.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-setvirtualdiskmetadata
    """
    cdef HANDLE native = _handle_of(handle, "SetVirtualDiskMetadata")
    cdef GUID guid
    cdef bytes payload = bytes(data)
    cdef const void *pointer = PyBytes_AS_STRING(payload)
    cdef ULONG size = PyBytes_GET_SIZE(payload)
    cdef DWORD code
    _guid_from(item, &guid, "item")
    with nogil:
        code = api.SetVirtualDiskMetadata(native, &guid, size, pointer)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "SetVirtualDiskMetadata", _path_of(handle))


def DeleteVirtualDiskMetadata(handle, item):
    """Deletes one metadata item.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-deletevirtualdiskmetadata
    """
    cdef HANDLE native = _handle_of(handle, "DeleteVirtualDiskMetadata")
    cdef GUID guid
    cdef DWORD code
    _guid_from(item, &guid, "item")
    with nogil:
        code = api.DeleteVirtualDiskMetadata(native, &guid)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "DeleteVirtualDiskMetadata", _path_of(handle))


# ---------------------------------------------------------------------------
# Long operations

def GetVirtualDiskOperationProgress(handle, overlapped):
    """Progress of the overlapped operation started with `overlapped`.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-getvirtualdiskoperationprogress
    """
    cdef HANDLE native = _handle_of(handle, "GetVirtualDiskOperationProgress")
    cdef OVERLAPPED *overlapped_pointer = _overlapped_of(overlapped)
    cdef VIRTUAL_DISK_PROGRESS progress
    cdef DWORD code
    memset(&progress, 0, sizeof(progress))
    with nogil:
        code = api.GetVirtualDiskOperationProgress(native, overlapped_pointer, &progress)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "GetVirtualDiskOperationProgress", _path_of(handle))
    return _result3(VirtualDiskProgress, progress.OperationStatus, progress.CurrentValue,
                    progress.CompletionValue)


def CancelIoEx(handle, overlapped=None):
    """Asks the long operation started on `handle` with `overlapped` (None:
    any operation of the handle) to stop; it then ends with
    ERROR_OPERATION_ABORTED (995) and its event is set.  Returns at once.
    ElementNotFoundError (ERROR_NOT_FOUND) when no such operation runs.

    https://learn.microsoft.com/en-us/windows/win32/fileio/cancelioex-func
    """
    cdef HANDLE native = _handle_of(handle, "CancelIoEx")
    cdef OVERLAPPED *overlapped_pointer = _overlapped_of(overlapped)
    cdef DWORD code
    with nogil:
        code = vd_cancel_io(native, overlapped_pointer)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "CancelIoEx", _path_of(handle))


def CompactVirtualDisk(handle, flags=0, version=1, *, overlapped=None):
    """Reclaims unused blocks of a dynamic or differencing disk.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-compactvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "CompactVirtualDisk")
    cdef COMPACT_VIRTUAL_DISK_PARAMETERS parameters
    cdef COMPACT_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD compact_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef DWORD code
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <COMPACT_VIRTUAL_DISK_VERSION><DWORD>version
        parameters_pointer = &parameters
    with nogil:
        code = api.CompactVirtualDisk(native, <COMPACT_VIRTUAL_DISK_FLAG>compact_flags,
                                  parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "CompactVirtualDisk", _path_of(handle))


def MergeVirtualDisk(handle, flags=0, version=1, *,
                     merge_depth=api.MERGE_VIRTUAL_DISK_DEFAULT_MERGE_DEPTH,
                     merge_source_depth=0, merge_target_depth=0, overlapped=None):
    """Merges a differencing disk into its parents: version 1 uses
    `merge_depth`, version 2 `merge_source_depth` and `merge_target_depth`.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-mergevirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "MergeVirtualDisk")
    cdef MERGE_VIRTUAL_DISK_PARAMETERS parameters
    cdef MERGE_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD merge_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef DWORD code
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <MERGE_VIRTUAL_DISK_VERSION><DWORD>version
        if parameters.Version == api.MERGE_VIRTUAL_DISK_VERSION_1:
            parameters.Version1.MergeDepth = merge_depth
        else:
            parameters.Version2.MergeSourceDepth = merge_source_depth
            parameters.Version2.MergeTargetDepth = merge_target_depth
        parameters_pointer = &parameters
    with nogil:
        code = api.MergeVirtualDisk(native, <MERGE_VIRTUAL_DISK_FLAG>merge_flags,
                                parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "MergeVirtualDisk", _path_of(handle))


def ExpandVirtualDisk(handle, new_size, flags=0, version=1, *, overlapped=None):
    """Grows a VHD to `new_size` bytes (the older form of ResizeVirtualDisk).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-expandvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "ExpandVirtualDisk")
    cdef EXPAND_VIRTUAL_DISK_PARAMETERS parameters
    cdef EXPAND_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD expand_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef DWORD code
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <EXPAND_VIRTUAL_DISK_VERSION><DWORD>version
        parameters.Version1.NewSize = new_size
        parameters_pointer = &parameters
    with nogil:
        code = api.ExpandVirtualDisk(native, <EXPAND_VIRTUAL_DISK_FLAG>expand_flags,
                                 parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "ExpandVirtualDisk", _path_of(handle))


def ResizeVirtualDisk(handle, new_size, flags=0, version=1, *, overlapped=None):
    """Grows or shrinks the virtual size; with
    ResizeVirtualDiskFlag.RESIZE_TO_SMALLEST_SAFE_VIRTUAL_SIZE pass 0.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-resizevirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "ResizeVirtualDisk")
    cdef RESIZE_VIRTUAL_DISK_PARAMETERS parameters
    cdef RESIZE_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD resize_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef DWORD code
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <RESIZE_VIRTUAL_DISK_VERSION><DWORD>version
        parameters.Version1.NewSize = new_size
        parameters_pointer = &parameters
    with nogil:
        code = api.ResizeVirtualDisk(native, <RESIZE_VIRTUAL_DISK_FLAG>resize_flags,
                                 parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "ResizeVirtualDisk", _path_of(handle))


def MirrorVirtualDisk(handle, mirror_virtual_disk_path, flags=0, version=1, *, overlapped=None):
    """Starts mirroring the disk to `mirror_virtual_disk_path`; Windows
    requires `overlapped`.  Break the mirror with BreakMirrorVirtualDisk.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-mirrorvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "MirrorVirtualDisk")
    cdef MIRROR_VIRTUAL_DISK_PARAMETERS parameters
    cdef MIRROR_VIRTUAL_DISK_PARAMETERS *parameters_pointer = NULL
    cdef DWORD mirror_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef bytes wide_mirror = _optional_wide(mirror_virtual_disk_path, "mirror_virtual_disk_path")
    cdef DWORD code
    if version is not None:
        memset(&parameters, 0, sizeof(parameters))
        parameters.Version = <MIRROR_VIRTUAL_DISK_VERSION><DWORD>version
        parameters.Version1.MirrorVirtualDiskPath = _as_pcwstr(wide_mirror)
        parameters_pointer = &parameters
    with nogil:
        code = api.MirrorVirtualDisk(native, <MIRROR_VIRTUAL_DISK_FLAG>mirror_flags,
                                 parameters_pointer, overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "MirrorVirtualDisk", _path_of(handle))
    if isinstance(handle, VirtualDiskHandle):
        (<VirtualDiskHandle>handle)._mirror_path = mirror_virtual_disk_path


def BreakMirrorVirtualDisk(handle):
    """Ends a mirror started by MirrorVirtualDisk, switching the handle to
    the mirror: a VirtualDiskHandle's ``path`` names the mirror from then on.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-breakmirrorvirtualdisk
    """
    cdef HANDLE native = _handle_of(handle, "BreakMirrorVirtualDisk")
    cdef DWORD code
    cdef VirtualDiskHandle switched
    with nogil:
        code = api.BreakMirrorVirtualDisk(native)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "BreakMirrorVirtualDisk", _path_of(handle))
    if isinstance(handle, VirtualDiskHandle):
        switched = <VirtualDiskHandle>handle
        if switched._mirror_path is not None:
            switched.path, switched._mirror_path = switched._mirror_path, None


def AddVirtualDiskParent(handle, parent_path):
    """Adds a parent to a handle opened with
    OpenVirtualDiskFlag.CUSTOM_DIFF_CHAIN.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-addvirtualdiskparent
    """
    cdef HANDLE native = _handle_of(handle, "AddVirtualDiskParent")
    cdef bytes wide_parent = _optional_wide(parent_path, "parent_path")
    cdef PCWSTR parent_pointer = _as_pcwstr(wide_parent)
    cdef DWORD code
    with nogil:
        code = api.AddVirtualDiskParent(native, parent_pointer)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "AddVirtualDiskParent", parent_path)


# ---------------------------------------------------------------------------
# Resilient change tracking, VHD Sets, raw SCSI, fork (newer entry points)

def QueryChangesVirtualDisk(handle, change_tracking_id, byte_offset, byte_length, flags=0, *,
                            max_ranges=256):
    """The ranges changed since `change_tracking_id` within the asked range,
    at most `max_ranges` per call; call again from the offset after
    ``processed_length`` for more.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-querychangesvirtualdisk
    """
    _require_function(<void *>vd_fn_QueryChangesVirtualDisk, "QueryChangesVirtualDisk")
    cdef HANDLE native = _handle_of(handle, "QueryChangesVirtualDisk")
    cdef bytes wide_id = _optional_wide(change_tracking_id, "change_tracking_id")
    cdef PCWSTR id_pointer = _as_pcwstr(wide_id)
    cdef ULONG64 offset = byte_offset
    cdef ULONG64 length = byte_length
    cdef DWORD query_flags = flags
    cdef ULONG count = max_ranges
    cdef ULONG64 processed = 0
    cdef QUERY_CHANGES_VIRTUAL_DISK_RANGE *ranges
    cdef DWORD code
    cdef ULONG index
    if count == 0:
        raise ValueError("max_ranges must be at least 1")
    ranges = <QUERY_CHANGES_VIRTUAL_DISK_RANGE *>_grow(
        NULL, count * sizeof(QUERY_CHANGES_VIRTUAL_DISK_RANGE))
    try:
        with nogil:
            code = vd_fn_QueryChangesVirtualDisk(
                native, id_pointer, offset, length,
                <QUERY_CHANGES_VIRTUAL_DISK_FLAG>query_flags, ranges, &count, &processed)
        if code != api.ERROR_SUCCESS:
            raise _error(code, "QueryChangesVirtualDisk", _path_of(handle))
        return _result2(ChangedRanges, [(ranges[index].ByteOffset, ranges[index].ByteLength)
                                        for index in range(count)], processed)
    finally:
        free(ranges)


def TakeSnapshotVhdSet(handle, snapshot_id, flags=0, version=1):
    """Takes a snapshot of a VHD Set (.vhds).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-takesnapshotvhdset
    """
    _require_function(<void *>vd_fn_TakeSnapshotVhdSet, "TakeSnapshotVhdSet")
    cdef HANDLE native = _handle_of(handle, "TakeSnapshotVhdSet")
    cdef TAKE_SNAPSHOT_VHDSET_PARAMETERS parameters
    cdef DWORD take_flags = flags
    cdef DWORD code
    memset(&parameters, 0, sizeof(parameters))
    parameters.Version = <TAKE_SNAPSHOT_VHDSET_VERSION><DWORD>version
    _guid_from(snapshot_id, &parameters.Version1.SnapshotId, "snapshot_id")
    with nogil:
        code = vd_fn_TakeSnapshotVhdSet(native, &parameters,
                                        <TAKE_SNAPSHOT_VHDSET_FLAG>take_flags)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "TakeSnapshotVhdSet", _path_of(handle))


def DeleteSnapshotVhdSet(handle, snapshot_id, flags=0, version=1):
    """Deletes a snapshot of a VHD Set.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-deletesnapshotvhdset
    """
    _require_function(<void *>vd_fn_DeleteSnapshotVhdSet, "DeleteSnapshotVhdSet")
    cdef HANDLE native = _handle_of(handle, "DeleteSnapshotVhdSet")
    cdef DELETE_SNAPSHOT_VHDSET_PARAMETERS parameters
    cdef DWORD delete_flags = flags
    cdef DWORD code
    memset(&parameters, 0, sizeof(parameters))
    parameters.Version = <DELETE_SNAPSHOT_VHDSET_VERSION><DWORD>version
    _guid_from(snapshot_id, &parameters.Version1.SnapshotId, "snapshot_id")
    with nogil:
        code = vd_fn_DeleteSnapshotVhdSet(native, &parameters,
                                          <DELETE_SNAPSHOT_VHDSET_FLAG>delete_flags)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "DeleteSnapshotVhdSet", _path_of(handle))


def ModifyVhdSet(handle, version, flags=0, *, snapshot_id=None, snapshot_file_path=None,
                 default_file_path=None):
    """Changes a VHD Set: SNAPSHOT_PATH (snapshot_id, snapshot_file_path),
    REMOVE_SNAPSHOT (snapshot_id) or DEFAULT_SNAPSHOT_PATH (default_file_path).

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-modifyvhdset
    """
    _require_function(<void *>vd_fn_ModifyVhdSet, "ModifyVhdSet")
    cdef HANDLE native = _handle_of(handle, "ModifyVhdSet")
    cdef MODIFY_VHDSET_PARAMETERS parameters
    cdef DWORD modify_flags = flags
    cdef bytes wide_snapshot = _optional_wide(snapshot_file_path, "snapshot_file_path")
    cdef bytes wide_default = _optional_wide(default_file_path, "default_file_path")
    cdef DWORD code
    memset(&parameters, 0, sizeof(parameters))
    parameters.Version = <MODIFY_VHDSET_VERSION><DWORD>version
    if parameters.Version == api.MODIFY_VHDSET_SNAPSHOT_PATH:
        _guid_from(snapshot_id, &parameters.SnapshotPath.SnapshotId, "snapshot_id")
        parameters.SnapshotPath.SnapshotFilePath = _as_pcwstr(wide_snapshot)
    elif parameters.Version == api.MODIFY_VHDSET_REMOVE_SNAPSHOT:
        _guid_from(snapshot_id, &parameters.SnapshotId, "snapshot_id")
    elif parameters.Version == api.MODIFY_VHDSET_DEFAULT_SNAPSHOT_PATH:
        parameters.DefaultFilePath = _as_pcwstr(wide_default)
    with nogil:
        code = vd_fn_ModifyVhdSet(native, &parameters, <MODIFY_VHDSET_FLAG>modify_flags)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "ModifyVhdSet", _path_of(handle))


def ApplySnapshotVhdSet(handle, snapshot_id, leaf_snapshot_id, flags=0, version=1):
    """Applies a snapshot of a VHD Set.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-applysnapshotvhdset
    """
    _require_function(<void *>vd_fn_ApplySnapshotVhdSet, "ApplySnapshotVhdSet")
    cdef HANDLE native = _handle_of(handle, "ApplySnapshotVhdSet")
    cdef APPLY_SNAPSHOT_VHDSET_PARAMETERS parameters
    cdef DWORD apply_flags = flags
    cdef DWORD code
    memset(&parameters, 0, sizeof(parameters))
    parameters.Version = <APPLY_SNAPSHOT_VHDSET_VERSION><DWORD>version
    _guid_from(snapshot_id, &parameters.Version1.SnapshotId, "snapshot_id")
    _guid_from(leaf_snapshot_id, &parameters.Version1.LeafSnapshotId, "leaf_snapshot_id")
    with nogil:
        code = vd_fn_ApplySnapshotVhdSet(native, &parameters,
                                         <APPLY_SNAPSHOT_VHDSET_FLAG>apply_flags)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "ApplySnapshotVhdSet", _path_of(handle))


# The answer's type, kept at C level as _VIRTUAL_DISK_SIZE is: a SCSI call
# is made per block read or written, and skips the module-dict look-up.
cdef object _RAW_SCSI_RESPONSE = RawScsiResponse


# A plain builtin, as GetVirtualDiskInformation is; the module's name
# RawSCSIVirtualDisk is then the entry of _virtdisk_raw_scsi_entry.h, which
# takes the common form of the call without this function's argument
# parsing and hands every other form to it.
@cython.binding(False)
@cython.embedsignature.format("clinic")
def RawSCSIVirtualDisk(handle, cdb, *, data_in, data=None, data_transfer_length=None,
                       sense_info_length=18, srb_flags=0, rsvd_handle=False, flags=0,
                       version=1):
    """Sends one SCSI command to a disk attached with
    ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST.

    `data` is the command's data buffer, used in place without a copy: for
    a data-in command (`data_in` true) any writable buffer, which the
    command fills; for a data-out command any buffer, which it sends.
    `data_transfer_length` (default: the whole buffer) may ask for less.
    The GIL is released for the call, and the buffer stays locked against
    resizing until it returns.  The answer is a :class:`RawScsiResponse`;
    a SCSI failure is a CHECK CONDITION there, not an exception.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-rawscsivirtualdisk
    """
    return _raw_scsi(handle, cdb, data_in, data, data_transfer_length, sense_info_length,
                     srb_flags, rsvd_handle, flags, version)


# The keyword-only parameters above, in order, and their defaults but
# data_in's, for the entry.
cdef tuple _RAW_SCSI_KEYWORDS = ("data_in", "data", "data_transfer_length", "sense_info_length",
                                 "srb_flags", "rsvd_handle", "flags", "version")
cdef tuple _RAW_SCSI_DEFAULTS = (None, None, 18, 0, False, 0, 1)


cdef object _raw_scsi(object handle, object cdb, object data_in, object data,
                      object data_transfer_length, object sense_info_length, object srb_flags,
                      object rsvd_handle, object flags, object version):
    """RawSCSIVirtualDisk's conversions and call, whichever way it was
    called."""
    _require_function(<void *>vd_fn_RawSCSIVirtualDisk, "RawSCSIVirtualDisk")
    cdef HANDLE native = _handle_of(handle, "RawSCSIVirtualDisk")
    cdef RAW_SCSI_VIRTUAL_DISK_PARAMETERS parameters
    cdef RAW_SCSI_VIRTUAL_DISK_RESPONSE response
    cdef DWORD scsi_flags = flags
    # Through memoryview, not bytes(): bytes(7) would be seven zero bytes.
    cdef bytes command = cdb if type(cdb) is bytes else bytes(memoryview(cdb))
    cdef Py_buffer view
    cdef bint have_view = False
    # The sense bytes land on the stack; a bytes object is made only when
    # the target returned some (a GOOD command returns none).
    cdef UCHAR sense[255]
    cdef UCHAR sense_room = 0
    cdef Py_ssize_t available
    cdef unsigned long long length
    cdef DWORD code
    if not 0 < len(command) <= 255:
        raise ValueError(f"cdb must be 1 to 255 bytes, not {len(command)}")
    # An int is read in C; anything else goes through __index__, with
    # operator.index's TypeError for a float.  An int too large to hold is
    # refused below as any other out of range.
    cdef int overflow = 0
    cdef Py_ssize_t room
    if PyLong_CheckExact(sense_info_length):
        room = PyLong_AsLongAndOverflow(sense_info_length, &overflow)
        if overflow:
            room = -1
    else:
        room = PyNumber_AsSsize_t(sense_info_length, NULL)
    if not 0 <= room <= 255:
        raise ValueError("sense_info_length must be 0 to 255")
    memset(&parameters, 0, sizeof(parameters))
    memset(&response, 0, sizeof(response))
    if data is not None:
        PyObject_GetBuffer(data, &view, PyBUF_WRITABLE if data_in else PyBUF_SIMPLE)
        have_view = True
    try:
        available = view.len if have_view else 0
        length = available if data_transfer_length is None else data_transfer_length
        if length > <unsigned long long>available:
            raise ValueError(f"data_transfer_length {length} is more than the "
                             f"{available} bytes of data")
        if length > <unsigned long long>0xFFFFFFFF:
            raise ValueError("data_transfer_length must fit in 32 bits")
        parameters.Version = <RAW_SCSI_VIRTUAL_DISK_VERSION><DWORD>version
        parameters.Version1.RSVDHandle = 1 if rsvd_handle else 0
        parameters.Version1.DataIn = 1 if data_in else 0
        parameters.Version1.CdbLength = <UCHAR>len(command)
        sense_room = <UCHAR>room
        parameters.Version1.SenseInfoLength = sense_room
        parameters.Version1.SrbFlags = srb_flags
        parameters.Version1.DataTransferLength = <DWORD>length
        parameters.Version1.DataBuffer = view.buf if have_view and length else NULL
        parameters.Version1.SenseInfo = sense if sense_room else NULL
        parameters.Version1.Cdb = <UCHAR *>PyBytes_AS_STRING(command)
        with nogil:
            code = vd_fn_RawSCSIVirtualDisk(native, &parameters,
                                            <RAW_SCSI_VIRTUAL_DISK_FLAG>scsi_flags, &response)
    finally:
        if have_view:
            PyBuffer_Release(&view)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "RawSCSIVirtualDisk", _path_of(handle))
    cdef UCHAR returned = response.Version1.SenseInfoLength
    if returned > sense_room:
        returned = sense_room
    return vd_raw_scsi_answer(_RAW_SCSI_RESPONSE, response.Version1.ScsiStatus, sense, returned,
                              response.Version1.DataTransferLength)


RawSCSIVirtualDisk = vd_raw_scsi_entry_new(RawSCSIVirtualDisk, _RAW_SCSI_KEYWORDS,
                                           _RAW_SCSI_DEFAULTS, _raw_scsi)


def ForkVirtualDisk(handle, forked_virtual_disk_path, flags=0, version=1, *, overlapped=None):
    """Starts forking the disk to `forked_virtual_disk_path`; finish with
    CompleteForkVirtualDisk.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-forkvirtualdisk
    """
    _require_function(<void *>vd_fn_ForkVirtualDisk, "ForkVirtualDisk")
    cdef HANDLE native = _handle_of(handle, "ForkVirtualDisk")
    cdef FORK_VIRTUAL_DISK_PARAMETERS parameters
    cdef DWORD fork_flags = flags
    cdef OVERLAPPED *overlapped_pointer = _overlapped_start(overlapped)
    cdef bytes wide_fork = _optional_wide(forked_virtual_disk_path, "forked_virtual_disk_path")
    cdef DWORD code
    memset(&parameters, 0, sizeof(parameters))
    parameters.Version = <FORK_VIRTUAL_DISK_VERSION><DWORD>version
    parameters.Version1.ForkedVirtualDiskPath = _as_pcwstr(wide_fork)
    with nogil:
        code = vd_fn_ForkVirtualDisk(native, <FORK_VIRTUAL_DISK_FLAG>fork_flags, &parameters,
                                     overlapped_pointer)
    _overlapped_end(overlapped_pointer, code)
    if code != api.ERROR_SUCCESS and code != api.ERROR_IO_PENDING:
        raise _error(code, "ForkVirtualDisk", _path_of(handle))


def CompleteForkVirtualDisk(handle):
    """Completes a fork started by ForkVirtualDisk.

    https://learn.microsoft.com/en-us/windows/win32/api/virtdisk/nf-virtdisk-completeforkvirtualdisk
    """
    _require_function(<void *>vd_fn_CompleteForkVirtualDisk, "CompleteForkVirtualDisk")
    cdef HANDLE native = _handle_of(handle, "CompleteForkVirtualDisk")
    cdef DWORD code
    with nogil:
        code = vd_fn_CompleteForkVirtualDisk(native)
    if code != api.ERROR_SUCCESS:
        raise _error(code, "CompleteForkVirtualDisk", _path_of(handle))


# ---------------------------------------------------------------------------

__all__ = [
    # the 29 entry points
    "OpenVirtualDisk", "CreateVirtualDisk", "AttachVirtualDisk", "DetachVirtualDisk",
    "GetVirtualDiskPhysicalPath", "GetAllAttachedVirtualDiskPhysicalPaths",
    "GetStorageDependencyInformation", "GetVirtualDiskInformation",
    "SetVirtualDiskInformation", "EnumerateVirtualDiskMetadata", "GetVirtualDiskMetadata",
    "SetVirtualDiskMetadata", "DeleteVirtualDiskMetadata", "GetVirtualDiskOperationProgress",
    "CompactVirtualDisk", "MergeVirtualDisk", "ExpandVirtualDisk", "ResizeVirtualDisk",
    "MirrorVirtualDisk", "BreakMirrorVirtualDisk", "AddVirtualDiskParent",
    "QueryChangesVirtualDisk", "TakeSnapshotVhdSet", "DeleteSnapshotVhdSet", "ModifyVhdSet",
    "ApplySnapshotVhdSet", "RawSCSIVirtualDisk", "ForkVirtualDisk", "CompleteForkVirtualDisk",
    # handles, parameters and results
    "VirtualDiskHandle", "Overlapped", "CancelIoEx", "VirtualStorageType", "VirtualDiskSize",
    "ParentLocation", "PhysicalDisk", "ChangeTrackingState", "StorageDependencyInfo",
    "VirtualDiskProgress", "ChangedRanges", "RawScsiResponse",
    "VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN", "VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT",
    "CloseHandle", "open_device", "attach_partition", "skip_sync", "copy_to_file", "copy_from_file", "features", "live_handle_count",
    "last_error_detail", "PLATFORM",
    "VHD_FOOTER_COOKIE", "VHD_FOOTER_SIZE", "VHD_MAXIMUM_SIZE", "VHDX_FILE_SIGNATURE",
    "VHDX_MAXIMUM_SIZE", "VHDX_MINIMUM_BLOCK_SIZE", "VHDX_MAXIMUM_BLOCK_SIZE",
    "VHDX_MAXIMUM_METADATA_ITEM_SIZE", "VHDX_SYSTEM_METADATA_ITEMS",
    "ENUM_CLASSES", "ENUM_ALIASES", *ENUM_CLASSES, *ENUM_ALIASES,
]
