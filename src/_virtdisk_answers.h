/* _virtdisk_answers.h: the one description of every answer type.
 *
 * The answers are PyStructSequence types, tuples with named fields as
 * os.stat_result is: the extension allocates one (vd_answer_alloc) and fills
 * it with PyStructSequence_SET_ITEM, no Python-level call in between.  Each type's
 * name, documentation and fields are written here once; _virtdisk.pyx makes
 * the types from these descriptions at import.  A name starts with the
 * module's, "_virtdisk.", which is where the type's __module__ comes from
 * (pickle finds the type by it). */
#ifndef VIRTDISK_ANSWERS_H
#define VIRTDISK_ANSWERS_H

#include <Python.h>
#include <string.h>

#include "_virtdisk_answer_ints.h"
#include "_virtdisk_kept_answers.h"

/* A description whose sequence is every field of `fields` (the array ends
 * with its {NULL} sentinel, which is not a field). */
#define VD_ANSWER(name, doc, fields) \
    {"_virtdisk." name, doc, fields, (int)(sizeof fields / sizeof fields[0]) - 1}

static PyStructSequence_Field vd_virtual_storage_type_fields[] = {
    {"device_id", "DeviceId: a VirtualStorageTypeDevice, or an int no member names"},
    {"vendor_id", "VendorId, a uuid.UUID"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_virtual_storage_type = VD_ANSWER(
    "VirtualStorageType", "VIRTUAL_STORAGE_TYPE: a device id and a vendor GUID.",
    vd_virtual_storage_type_fields);

static PyStructSequence_Field vd_virtual_disk_size_fields[] = {
    {"virtual_size", "Size.VirtualSize: the size the disk shows, in bytes"},
    {"physical_size", "Size.PhysicalSize: the size of the image file, in bytes"},
    {"block_size", "Size.BlockSize, in bytes (0 for a fixed disk)"},
    {"sector_size", "Size.SectorSize: the logical sector size, in bytes"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_virtual_disk_size = VD_ANSWER(
    "VirtualDiskSize", "GET_VIRTUAL_DISK_INFO.Size, in bytes.", vd_virtual_disk_size_fields);

static PyStructSequence_Field vd_parent_location_fields[] = {
    {"parent_resolved", "ParentLocation.ParentResolved: whether the parent was found"},
    {"paths", "the resolved parent path alone, or every stored locator path"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_parent_location = VD_ANSWER(
    "ParentLocation",
    "GET_VIRTUAL_DISK_INFO.ParentLocation: the resolved parent path, or every "
    "stored locator path when the parent was not found.",
    vd_parent_location_fields);

static PyStructSequence_Field vd_physical_disk_fields[] = {
    {"logical_sector_size", "PhysicalDisk.LogicalSectorSize, in bytes"},
    {"physical_sector_size", "PhysicalDisk.PhysicalSectorSize, in bytes"},
    {"is_remote", "PhysicalDisk.IsRemote"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_physical_disk = VD_ANSWER(
    "PhysicalDisk", "GET_VIRTUAL_DISK_INFO.PhysicalDisk.", vd_physical_disk_fields);

static PyStructSequence_Field vd_change_tracking_state_fields[] = {
    {"enabled", "ChangeTrackingState.Enabled"},
    {"newer_changes", "ChangeTrackingState.NewerChanges"},
    {"most_recent_id", "ChangeTrackingState.MostRecentId"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_change_tracking_state = VD_ANSWER(
    "ChangeTrackingState", "GET_VIRTUAL_DISK_INFO.ChangeTrackingState.",
    vd_change_tracking_state_fields);

static PyStructSequence_Field vd_storage_dependency_info_fields[] = {
    {"dependency_type_flags", "DependencyTypeFlags, a DependentDiskFlag"},
    {"provider_specific_flags", "ProviderSpecificFlags"},
    {"virtual_storage_type", "VirtualStorageType, a VirtualStorageType"},
    {"ancestor_level", "AncestorLevel (0 for version 1)"},
    {"dependency_device_name", "DependencyDeviceName (None for version 1)"},
    {"host_volume_name", "HostVolumeName (None for version 1)"},
    {"dependent_volume_name", "DependentVolumeName (None for version 1)"},
    {"dependent_volume_relative_path", "DependentVolumeRelativePath (None for version 1)"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_storage_dependency_info = VD_ANSWER(
    "StorageDependencyInfo", "One STORAGE_DEPENDENCY_INFO entry; the names are None for version 1.",
    vd_storage_dependency_info_fields);

static PyStructSequence_Field vd_virtual_disk_progress_fields[] = {
    {"operation_status", "OperationStatus: a Win32 code, ERROR_IO_PENDING while it runs"},
    {"current_value", "CurrentValue"},
    {"completion_value", "CompletionValue"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_virtual_disk_progress = VD_ANSWER(
    "VirtualDiskProgress", "VIRTUAL_DISK_PROGRESS of an overlapped operation.",
    vd_virtual_disk_progress_fields);

static PyStructSequence_Field vd_changed_ranges_fields[] = {
    {"ranges", "the changed (offset, length) pairs, in bytes"},
    {"processed_length", "how many bytes of the asked range were processed"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_changed_ranges = VD_ANSWER(
    "ChangedRanges",
    "QueryChangesVirtualDisk: (offset, length) pairs and how many bytes of the "
    "asked range were processed.",
    vd_changed_ranges_fields);

static PyStructSequence_Field vd_raw_scsi_response_fields[] = {
    {"scsi_status", "ScsiStatus, the SCSI status byte"},
    {"sense_info", "the sense bytes, SenseInfoLength of them"},
    {"data_transfer_length", "DataTransferLength: the bytes the command moved"},
    {NULL, NULL},
};
static PyStructSequence_Desc vd_raw_scsi_response = VD_ANSWER(
    "RawScsiResponse",
    "RAW_SCSI_VIRTUAL_DISK_RESPONSE: the SCSI status, the sense bytes and how many "
    "bytes of the caller's data buffer the command moved.",
    vd_raw_scsi_response_fields);

/* An answer's tp_dealloc: structseq's own, less its look-up of the field
 * count in the type's dict, which cost as much as the rest of freeing a
 * SIZE answer.  An answer's size is its field count (see vd_answer_alloc).
 * The object is kept for a later answer when its list has room
 * (_virtdisk_kept_answers.h).  The trashcan bounds the C stack when answers
 * nest deeply (an answer holding an answer, a million deep); an untracked
 * answer holds ints alone (vd_answer_track; copy.replace builds through
 * the constructor too, _virtdisk.pyx), nests nothing and skips it. */
static void vd_answer_free(PyObject *answer)
{
    Py_ssize_t index;
    for (index = 0; index < Py_SIZE(answer); index++) {
        Py_XDECREF(PyTuple_GET_ITEM(answer, index));
    }
    if (!vd_kept_answer_put(answer)) {
        PyObject_GC_Del(answer);
    }
}

static void vd_answer_dealloc(PyObject *answer)
{
    PyTypeObject *type = Py_TYPE(answer);
    if (!PyObject_GC_IsTracked(answer)) {
        vd_answer_free(answer);
        Py_DECREF(type);
        return;
    }
    PyObject_GC_UnTrack(answer);
    Py_TRASHCAN_BEGIN(answer, vd_answer_dealloc)
    vd_answer_free(answer);
    Py_DECREF(type);
    Py_TRASHCAN_END
}

/* The module's constructor by fields (`_answer_new(cls, *values,
 * **fields)`), which every answer type's tp_new calls: set once at import,
 * before the first type is made. */
static PyObject *vd_answer_constructor;

static void vd_answer_set_constructor(PyObject *constructor)
{
    Py_XINCREF(constructor);
    Py_XSETREF(vd_answer_constructor, constructor);
}

/* `Type(*values, **fields)`.  A tp_new of the type's own, in C: were
 * `__new__` assigned from Python, tp_new would become the generic slot
 * wrapper, and `tuple.__new__(Type, short_sequence)` would then pass
 * CPython's "is not safe" check and make an answer with fewer items than
 * its field descriptors read. */
static PyObject *vd_answer_new(PyTypeObject *type, PyObject *args, PyObject *fields)
{
    Py_ssize_t count = PyTuple_GET_SIZE(args), index;
    PyObject *call_args = PyTuple_New(count + 1), *answer;
    if (call_args == NULL) {
        return NULL;
    }
    Py_INCREF(type);
    PyTuple_SET_ITEM(call_args, 0, (PyObject *)type);
    for (index = 0; index < count; index++) {
        PyObject *value = PyTuple_GET_ITEM(args, index);
        Py_INCREF(value);
        PyTuple_SET_ITEM(call_args, index + 1, value);
    }
    answer = PyObject_Call(vd_answer_constructor, call_args, fields);
    Py_DECREF(call_args);
    return answer;
}

/* A new answer type (returned as an object, as the module keeps it). */
static PyObject *vd_answer_type_new(PyStructSequence_Desc *description)
{
    PyTypeObject *type = PyStructSequence_NewType(description);
    if (type != NULL) {
        type->tp_dealloc = vd_answer_dealloc;
        type->tp_new = vd_answer_new;
        PyType_Modified(type);
    }
    return (PyObject *)type;
}

/* Makes the type's attributes read-only, once the module has set its own
 * (`_fields`, `__reduce__`): `Type.n_fields = 1` would otherwise let the
 * constructor make an answer shorter than its field descriptors read. */
static int vd_answer_type_seal(PyObject *type)
{
    ((PyTypeObject *)type)->tp_flags |= Py_TPFLAGS_IMMUTABLETYPE;
    PyType_Modified((PyTypeObject *)type);
    return 0;
}

/* An answer of `type`, which has `size` fields, with every item still NULL
 * and not yet tracked by the garbage collector: the caller fills each item
 * before the object escapes, then calls vd_answer_track.  Every field of an
 * answer is in its sequence (VD_ANSWER), so the object is a tuple of `size`
 * items: a kept one (_virtdisk_kept_answers.h) when there is one, else a new
 * one of the type's own size.  PyStructSequence_New would first look the
 * sizes up in the type's dict, twice: on CPython 3.11 that made a fresh SIZE
 * answer cost a third more instructions than the whole rest of the call's
 * answer.  From 3.14 a tuple caches its hash, -1 meaning "not computed". */
static PyObject *vd_answer_alloc(PyObject *type, Py_ssize_t size)
{
    PyTypeObject *answer_type = (PyTypeObject *)type;
    PyObject *answer = vd_kept_answer_take(size);
    if (answer != NULL) {
        (void)PyObject_InitVar((PyVarObject *)answer, answer_type, size);
    } else {
        answer = (PyObject *)PyObject_GC_NewVar(PyTupleObject, answer_type, size);
        if (answer == NULL) {
            return NULL;
        }
    }
    memset(((PyTupleObject *)answer)->ob_item, 0, (size_t)size * sizeof(PyObject *));
#if PY_VERSION_HEX >= 0x030E0000
    ((PyTupleObject *)answer)->ob_hash = -1;
#endif
    return answer;
}

/* Hands a filled answer to the garbage collector, unless each item is an int
 * (a bool included): such an answer can be part of no reference cycle, so
 * the collector need not visit it, as CPython leaves tuples of ints alone.
 * An answer that holds anything else (a string, a list, an enum member,
 * another answer) is tracked, as any tuple that may hold a list is.
 * Each item is set. */
static void vd_answer_track(PyObject *answer)
{
    Py_ssize_t index;
    for (index = 0; index < Py_SIZE(answer); index++) {
        PyTypeObject *item_type = Py_TYPE(PyTuple_GET_ITEM(answer, index));
        if (item_type != &PyLong_Type && item_type != &PyBool_Type) {
            PyObject_GC_Track(answer);
            return;
        }
    }
}

/* An answer of `type`, which has `size` fields, whose items are the ints
 * `values` in field order: made in C, each new int handed to its slot, and
 * left untracked, as vd_answer_track leaves an answer of ints. */
static PyObject *vd_answer_of_ints(PyObject *type, Py_ssize_t size,
                                   const unsigned long long *values)
{
    PyObject *answer = vd_answer_alloc(type, size);
    Py_ssize_t index;
    if (answer == NULL) {
        return NULL;
    }
    for (index = 0; index < size; index++) {
        PyObject *item = vd_int_from_u64(values[index]);
        if (item == NULL) {
            Py_DECREF(answer);
            return NULL;
        }
        PyStructSequence_SET_ITEM(answer, index, item);
    }
    return answer;
}


/* A RawScsiResponse (`type`, three fields): the status byte, the first
 * `sense_length` bytes of `sense` and the byte count moved, made in C.
 * A GOOD command returns no sense, and its answer holds the empty bytes
 * CPython keeps one of; the count is the shared int when it is a power of
 * two, as a 4 KiB read's is.  Ints and bytes hold no references, so the
 * answer can be part of no reference cycle and is left untracked, as an
 * answer of ints is. */
static PyObject *vd_raw_scsi_answer(PyObject *type, unsigned char status,
                                    const unsigned char *sense, Py_ssize_t sense_length,
                                    unsigned long long moved)
{
    PyObject *answer = vd_answer_alloc(type, 3), *item;
    if (answer == NULL) {
        return NULL;
    }
    if ((item = PyLong_FromLong(status)) == NULL) {
        goto failed;
    }
    PyStructSequence_SET_ITEM(answer, 0, item);
    if ((item = PyBytes_FromStringAndSize((const char *)sense, sense_length)) == NULL) {
        goto failed;
    }
    PyStructSequence_SET_ITEM(answer, 1, item);
    if ((item = vd_int_from_u64(moved)) == NULL) {
        goto failed;
    }
    PyStructSequence_SET_ITEM(answer, 2, item);
    return answer;
failed:
    Py_DECREF(answer);  /* an item still NULL is skipped (vd_answer_free) */
    return NULL;
}

#endif
