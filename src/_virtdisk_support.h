/* _virtdisk_support.h: the few CPython-level helpers the extension needs
 * that Cython does not express directly.
 *
 * vd_tuple_alloc makes an empty instance of a tuple subclass (the answer
 * types are collections.namedtuple classes, whose __slots__ is empty), the
 * way tuple's own __new__ does for subclasses, but without calling the
 * Python-level __new__ namedtuple generates or building an argument tuple
 * first: for an answer without I/O that construction was most of the cost
 * of the call.  The caller fills every item before the object escapes. */
#ifndef VIRTDISK_SUPPORT_H
#define VIRTDISK_SUPPORT_H

#include <Python.h>

static PyObject *vd_tuple_alloc(PyObject *type, Py_ssize_t size)
{
    PyTypeObject *tuple_type = (PyTypeObject *)type;
    return tuple_type->tp_alloc(tuple_type, size);
}

#endif
