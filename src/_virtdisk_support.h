/* _virtdisk_support.h: the few CPython-level and atomic helpers the
 * extension needs that Cython does not express directly (the answer
 * types have their own header, _virtdisk_answers.h). */
#ifndef VIRTDISK_SUPPORT_H
#define VIRTDISK_SUPPORT_H

#include <Python.h>

/* A VirtualDiskError of class `type` for a code virtdisk.errors knows, made
 * as error_from_code makes one (OSError's __new__ with no arguments, then
 * OSError's __init__ with errno, message and path), through the two slots
 * directly: the Python-level calls were most of a failing call's cost.
 * `attributes` becomes the instance __dict__ (one dict built by the caller
 * instead of four generic setattrs, each of which walked the long MRO of
 * an error class). */
static PyObject *vd_error_new(PyObject *type, PyObject *errno_value, PyObject *message,
                              PyObject *path, PyObject *attributes)
{
    PyTypeObject *error_type = (PyTypeObject *)type;
    PyObject *empty = PyTuple_New(0);
    PyObject *error;
    PyObject *arguments;
    int status;
    if (empty == NULL) {
        return NULL;
    }
    error = error_type->tp_new(error_type, empty, NULL);
    Py_DECREF(empty);
    if (error == NULL) {
        return NULL;
    }
    arguments = PyTuple_Pack(3, errno_value, message, path);
    if (arguments == NULL) {
        Py_DECREF(error);
        return NULL;
    }
    status = ((PyTypeObject *)PyExc_OSError)->tp_init(error, arguments, NULL);
    Py_DECREF(arguments);
    if (status < 0 || PyObject_GenericSetDict(error, attributes, NULL) < 0) {
        Py_DECREF(error);
        return NULL;
    }
    return error;
}

/* Atomic access to a handle slot and to the live-handle counter.  On a
 * free-threaded CPython two threads may close one handle at once, or query
 * it while another closes it: exactly one of them takes the HANDLE out of
 * its slot (and closes it); the others then see NULL, never a value closed
 * under them twice.  On the GIL build these cost as much as plain accesses. */
#if defined(_MSC_VER)
#include <intrin.h>
static void *vd_slot_take(void *volatile *slot)
{
    return _InterlockedExchangePointer(slot, NULL);
}

static void *vd_slot_load(void *volatile *slot)
{
    return _InterlockedCompareExchangePointer(slot, NULL, NULL);
}

static long vd_count_add(volatile long *count, long delta)
{
    return _InterlockedExchangeAdd(count, delta) + delta;
}
#else
static void *vd_slot_take(void *volatile *slot)
{
    return __atomic_exchange_n(slot, NULL, __ATOMIC_ACQ_REL);
}

static void *vd_slot_load(void *volatile *slot)
{
    return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

static long vd_count_add(volatile long *count, long delta)
{
    return __atomic_add_fetch(count, delta, __ATOMIC_RELAXED);
}
#endif

#endif
