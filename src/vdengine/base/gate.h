/* A shared/exclusive gate: many holders at once, or one alone.  A holder
 * that asks to be alone is let in before any new shared holder, so a busy
 * stream of shared holders cannot keep it out.  Entering and leaving
 * shared is one atomic addition each while nobody asks to be alone (the
 * data path's every call pays it); the mutex is only for the rare
 * exclusive holder and those who wait for it.  (POSIX read-write locks are
 * outside the C11 and base POSIX profile the engine builds with, and their
 * writer preference is a glibc extension.) */
#ifndef VDENGINE_GATE_H
#define VDENGINE_GATE_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct vd_gate {
    atomic_uint shared;      /* holders in, and those about to look again */
    atomic_int closed;       /* someone is alone, or waits to be */
    int alone;               /* an exclusive holder is in or draining; under `lock` */
    pthread_mutex_t lock;    /* for the exclusive side and the waiting */
    pthread_cond_t changed;
} vd_gate;

/* 0 on success. */
int vd_gate_init(vd_gate *gate);
void vd_gate_destroy(vd_gate *gate);

void vd_gate_enter_shared(vd_gate *gate);
void vd_gate_leave_shared(vd_gate *gate);
void vd_gate_enter_alone(vd_gate *gate);
void vd_gate_leave_alone(vd_gate *gate);

#endif
