/* _virtdisk_kept_answers.h: freed answers kept for the next answer.
 *
 * A caller that asks in a loop drops each answer before it asks again.  As
 * CPython keeps freed tuples, the extension keeps a few freed answers, one
 * short list per field count, and makes the next answer of that many fields
 * in one of them: no allocation, no free, no garbage-collector header to
 * link and unlink.  On CPython 3.11 allocating and freeing were a third of
 * what building a fresh SIZE answer cost.
 *
 * Every answer type of one field count shares its list: their objects are
 * alike but for the type pointer, which the next answer sets.  A kept object
 * is untracked, holds no item and no reference to its type; it names
 * PyTuple_Type meanwhile, whose objects have the same header, because
 * PyObject_GC_Del reads the header's size from the type (CPython 3.12 and
 * later) and the answer type may be gone by the time the lists are emptied.
 *
 * The lists are plain globals, guarded by the GIL, and one interpreter per
 * process loads the module.  A free-threaded build keeps none: there, lists
 * shared by every thread would need a lock that costs what they save. */
#ifndef VIRTDISK_KEPT_ANSWERS_H
#define VIRTDISK_KEPT_ANSWERS_H

#include <Python.h>

#ifndef Py_GIL_DISABLED
#define VD_KEEPS_ANSWERS 1
#endif

/* The most fields an answer type has (StorageDependencyInfo's), and how many
 * freed answers of one field count are kept: enough for a loop that holds a
 * few answers at a time, little enough not to keep memory a burst of
 * answers once needed. */
#define VD_KEPT_ANSWER_FIELDS 8
#define VD_KEPT_ANSWERS_PER_COUNT 16

#ifdef VD_KEEPS_ANSWERS

/* Per field count, the kept objects, chained through their first item, and
 * how many there are. */
static PyObject *vd_kept_answers[VD_KEPT_ANSWER_FIELDS + 1];
static int vd_kept_answer_counts[VD_KEPT_ANSWER_FIELDS + 1];

/* Whether freed answers are kept: from the module's start until the lists
 * are emptied at exit, after which every answer is freed for good. */
static int vd_keeping_answers;

#endif

/* A kept object for an answer of `size` fields, or NULL when none is kept.
 * Its header and items are stale: the caller initialises both. */
static PyObject *vd_kept_answer_take(Py_ssize_t size)
{
#ifdef VD_KEEPS_ANSWERS
    PyObject *answer;
    if (size > VD_KEPT_ANSWER_FIELDS || (answer = vd_kept_answers[size]) == NULL) {
        return NULL;
    }
    vd_kept_answers[size] = PyTuple_GET_ITEM(answer, 0);
    vd_kept_answer_counts[size]--;
    return answer;
#else
    (void)size;
    return NULL;
#endif
}

/* Keeps `answer`, untracked, its items and its type's reference already
 * released, for a later answer of as many fields; 0 when it is not kept
 * (the list is full, or keeping has stopped) and the caller frees it. */
static int vd_kept_answer_put(PyObject *answer)
{
#ifdef VD_KEEPS_ANSWERS
    Py_ssize_t size = Py_SIZE(answer);
    if (!vd_keeping_answers || size == 0 || size > VD_KEPT_ANSWER_FIELDS
            || vd_kept_answer_counts[size] >= VD_KEPT_ANSWERS_PER_COUNT) {
        return 0;
    }
    Py_SET_TYPE(answer, &PyTuple_Type);
    ((PyTupleObject *)answer)->ob_item[0] = vd_kept_answers[size];
    vd_kept_answers[size] = answer;
    vd_kept_answer_counts[size]++;
    return 1;
#else
    (void)answer;
    return 0;
#endif
}

/* Starts keeping freed answers (at the module's start). */
static void vd_kept_answers_start(void)
{
#ifdef VD_KEEPS_ANSWERS
    vd_keeping_answers = 1;
#endif
}

/* Frees every kept object and stops keeping (at exit, before the module is
 * torn down): an answer freed later goes straight back to the allocator. */
static void vd_kept_answers_empty(void)
{
#ifdef VD_KEEPS_ANSWERS
    Py_ssize_t size;
    vd_keeping_answers = 0;
    for (size = 1; size <= VD_KEPT_ANSWER_FIELDS; size++) {
        PyObject *answer;
        while ((answer = vd_kept_answer_take(size)) != NULL) {
            PyObject_GC_Del(answer);
        }
    }
#endif
}

/* How many freed answers are kept now, of every field count (for tests). */
static Py_ssize_t vd_kept_answer_total(void)
{
    Py_ssize_t total = 0;
#ifdef VD_KEEPS_ANSWERS
    Py_ssize_t size;
    for (size = 1; size <= VD_KEPT_ANSWER_FIELDS; size++) {
        total += vd_kept_answer_counts[size];
    }
#endif
    return total;
}

#endif
