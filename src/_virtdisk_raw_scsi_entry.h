/* _virtdisk_raw_scsi_entry.h: RawSCSIVirtualDisk's entry point.
 *
 * A SCSI command is the call made per block read or written, and parsing
 * its ten arguments the general way (a value slot per parameter, defaults
 * set one by one, each keyword looked up in a list of names) cost as much
 * as the engine's whole READ.  The entry takes the form every caller here
 * uses, handle and cdb by position and the rest by keyword, matching each
 * keyword by the identity of its interned name (a call's keyword names
 * are interned by the compiler); any other form (handle or cdb by
 * keyword, a name not interned, a keyword given twice, too many
 * positional arguments, data_in missing) goes to the Cython function
 * itself, whose errors are the function's errors.  Both ends call the same
 * conversion (_virtdisk.pyx, _raw_scsi), so the two cannot differ in what
 * they accept. */
#ifndef VIRTDISK_RAW_SCSI_ENTRY_H
#define VIRTDISK_RAW_SCSI_ENTRY_H

#include <Python.h>
#include <string.h>

/* The keywords, in the order of the stub's signature. */
#define VD_RAW_SCSI_KEYWORDS 8

/* The conversion and call, with every argument (borrowed). */
typedef PyObject *(*vd_raw_scsi_call)(PyObject *handle, PyObject *cdb, PyObject *data_in,
                                      PyObject *data, PyObject *data_transfer_length,
                                      PyObject *sense_info_length, PyObject *srb_flags,
                                      PyObject *rsvd_handle, PyObject *flags, PyObject *version);

static vd_raw_scsi_call vd_raw_scsi_convert;
static PyObject *vd_raw_scsi_general;                    /* the Cython function */
static PyObject *vd_raw_scsi_names[VD_RAW_SCSI_KEYWORDS];  /* interned */
/* The keywords' defaults; NULL for data_in, which has none. */
static PyObject *vd_raw_scsi_defaults[VD_RAW_SCSI_KEYWORDS];

static PyObject *vd_raw_scsi_enter(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    PyObject *given[VD_RAW_SCSI_KEYWORDS];
    unsigned seen = 0;
    Py_ssize_t count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    Py_ssize_t index, name;
    (void)module;
    if (nargs != 2 || count == 0) {
        goto general;
    }
    memcpy(given, vd_raw_scsi_defaults, sizeof given);
    for (index = 0; index < count; index++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, index);
        for (name = 0; name < VD_RAW_SCSI_KEYWORDS && vd_raw_scsi_names[name] != key; name++) {
        }
        if (name == VD_RAW_SCSI_KEYWORDS || (seen & (1u << name)) != 0) {
            goto general;
        }
        seen |= 1u << name;
        given[name] = args[nargs + index];
    }
    if ((seen & 1u) == 0) {            /* no data_in */
        goto general;
    }
    return vd_raw_scsi_convert(args[0], args[1], given[0], given[1], given[2], given[3],
                               given[4], given[5], given[6], given[7]);
general:
    return PyObject_Vectorcall(vd_raw_scsi_general, args, (size_t)nargs, kwnames);
}

static PyMethodDef vd_raw_scsi_entry_method = {
    "RawSCSIVirtualDisk", (PyCFunction)(void (*)(void))vd_raw_scsi_enter,
    METH_FASTCALL | METH_KEYWORDS, NULL
};

/* The entry, with the docstring and signature of `general` (a builtin the
 * module made, whose keyword-only parameters are `names`, in order, with
 * `defaults` but for the first), which it calls for every form it does not
 * take itself. */
static PyObject *vd_raw_scsi_entry_new(PyObject *general, PyObject *names, PyObject *defaults,
                                       vd_raw_scsi_call convert)
{
    Py_ssize_t index;
    if (!PyCFunction_Check(general) || !PyTuple_Check(names) || !PyTuple_Check(defaults)
            || PyTuple_GET_SIZE(names) != VD_RAW_SCSI_KEYWORDS
            || PyTuple_GET_SIZE(defaults) != VD_RAW_SCSI_KEYWORDS - 1) {
        PyErr_SetString(PyExc_TypeError,
                        "RawSCSIVirtualDisk's entry needs its builtin, names and defaults");
        return NULL;
    }
    for (index = 0; index < VD_RAW_SCSI_KEYWORDS; index++) {
        PyObject *name = PyTuple_GET_ITEM(names, index);
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        Py_XSETREF(vd_raw_scsi_names[index], name);
        if (index > 0) {
            PyObject *value = PyTuple_GET_ITEM(defaults, index - 1);
            Py_INCREF(value);
            Py_XSETREF(vd_raw_scsi_defaults[index], value);
        }
    }
    Py_INCREF(general);
    Py_XSETREF(vd_raw_scsi_general, general);
    vd_raw_scsi_convert = convert;
    vd_raw_scsi_entry_method.ml_doc = ((PyCFunctionObject *)general)->m_ml->ml_doc;
    return PyCFunction_NewEx(&vd_raw_scsi_entry_method, PyCFunction_GET_SELF(general),
                             ((PyCFunctionObject *)general)->m_module);
}

#endif
