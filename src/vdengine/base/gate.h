/* A shared/exclusive gate: many holders at once, or one alone.  A holder
 * that asks for it alone is let in before any new shared holder, so a
 * busy stream of shared holders cannot keep it out.  (POSIX read-write
 * locks are outside the C11 and base POSIX profile the engine builds with,
 * and their writer preference is a glibc extension.) */
#ifndef VDENGINE_GATE_H
#define VDENGINE_GATE_H

#include <pthread.h>

typedef struct vd_gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned shared;            /* holders in */
    unsigned exclusive_waiting; /* asking to be alone */
    int exclusive;              /* one holder alone is in */
} vd_gate;

/* 0 on success. */
int vd_gate_init(vd_gate *gate);
void vd_gate_destroy(vd_gate *gate);

void vd_gate_enter_shared(vd_gate *gate);
void vd_gate_leave_shared(vd_gate *gate);
void vd_gate_enter_alone(vd_gate *gate);
void vd_gate_leave_alone(vd_gate *gate);

#endif
