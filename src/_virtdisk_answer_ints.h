/* _virtdisk_answer_ints.h: the ints that answers are made of.
 *
 * Sector sizes and block sizes are powers of two by every format's rules
 * (and so is many a virtual size), and they are half the ints of a SIZE
 * answer and most of a PHYSICAL_DISK one.  As CPython answers -5 to 256
 * with ints it made once, the extension makes one int per power of two at
 * import and answers with it instead of allocating a new int each call.
 * The ints are immutable, so sharing them is safe on every build. */
#ifndef VIRTDISK_ANSWER_INTS_H
#define VIRTDISK_ANSWER_INTS_H

#include <Python.h>
#include <limits.h>

/* 2**0 to 2**63, each at its remainder modulo 67: 2 has order 66 modulo the
 * prime 67, so the 64 powers leave 64 different remainders.  NULL before
 * the module's start and after exit. */
#define VD_POWER_OF_TWO_SLOTS 67
static PyObject *vd_power_of_two_ints[VD_POWER_OF_TWO_SLOTS];

/* Makes the powers of two (at the module's start); -1 with an exception
 * set when one cannot be made.  A slot already holding its power (kept from
 * an earlier start, see vd_answer_ints_empty) stays; one holding another
 * value would answer one power with another's int, and is refused. */
static int vd_answer_ints_start(void)
{
    int shift;
    for (shift = 0; shift < 64; shift++) {
        unsigned long long power = 1ULL << shift;
        PyObject **slot = &vd_power_of_two_ints[power % VD_POWER_OF_TWO_SLOTS];
        if (*slot != NULL) {
            if (PyLong_AsUnsignedLongLong(*slot) != power) {
                PyErr_SetString(PyExc_SystemError, "two powers of two share a slot");
                return -1;
            }
        } else if ((*slot = PyLong_FromUnsignedLongLong(power)) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* Lets go of the powers of two (at exit, the GIL held): later answers make
 * their own.  A free-threaded build keeps them, as other threads may still
 * be reading the slots then. */
static void vd_answer_ints_empty(void)
{
#ifndef Py_GIL_DISABLED
    int slot;
    for (slot = 0; slot < VD_POWER_OF_TWO_SLOTS; slot++) {
        Py_CLEAR(vd_power_of_two_ints[slot]);
    }
#endif
}

/* An int for `value`: the one made at the start for a power of two, else a
 * new one.  PyLong_FromLongLong makes a one-digit int (below 2**30) on its
 * short path; PyLong_FromUnsignedLongLong has none on CPython 3.11, where it
 * counts digits and allocates for every value past 256. */
static PyObject *vd_int_from_u64(unsigned long long value)
{
    if (value != 0 && (value & (value - 1)) == 0) {
        PyObject *power = vd_power_of_two_ints[value % VD_POWER_OF_TWO_SLOTS];
        if (power != NULL) {
            Py_INCREF(power);
            return power;
        }
    }
    if (value <= (unsigned long long)LLONG_MAX) {
        return PyLong_FromLongLong((long long)value);
    }
    return PyLong_FromUnsignedLongLong(value);
}

#endif
