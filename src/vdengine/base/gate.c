/* The shared/exclusive gate (gate.h).
 *
 * A shared holder counts itself in, then looks whether the gate is closed;
 * one who wants to be alone closes it, then looks whether anyone is in.
 * Both are sequentially consistent, so at least one of the two sees the
 * other: either the shared holder backs out, or the exclusive one waits
 * for it to leave.  The last shared holder to leave a closed gate wakes
 * the waiter, under the mutex the waiter checks the count under, so the
 * wake-up cannot fall between its check and its wait.  Shared holders
 * that found the gate closed wait on the same condition until it opens;
 * exclusive holders go one at a time (`alone`). */
#include "base/gate.h"

int vd_gate_init(vd_gate *gate)
{
    atomic_init(&gate->shared, 0u);
    atomic_init(&gate->closed, 0);
    gate->alone = 0;
    if (pthread_mutex_init(&gate->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&gate->changed, NULL) != 0) {
        pthread_mutex_destroy(&gate->lock);
        return -1;
    }
    return 0;
}

void vd_gate_destroy(vd_gate *gate)
{
    pthread_cond_destroy(&gate->changed);
    pthread_mutex_destroy(&gate->lock);
}

/* After a shared holder's count went: wakes an exclusive one waiting. */
static void vd_gate_left(vd_gate *gate, unsigned before)
{
    if (before == 1u && atomic_load(&gate->closed)) {
        pthread_mutex_lock(&gate->lock);
        pthread_cond_broadcast(&gate->changed);
        pthread_mutex_unlock(&gate->lock);
    }
}

void vd_gate_enter_shared(vd_gate *gate)
{
    for (;;) {
        atomic_fetch_add(&gate->shared, 1u);
        if (!atomic_load(&gate->closed))
            return;
        vd_gate_left(gate, atomic_fetch_sub(&gate->shared, 1u));
        pthread_mutex_lock(&gate->lock);
        while (atomic_load(&gate->closed))
            pthread_cond_wait(&gate->changed, &gate->lock);
        pthread_mutex_unlock(&gate->lock);
    }
}

void vd_gate_leave_shared(vd_gate *gate)
{
    vd_gate_left(gate, atomic_fetch_sub(&gate->shared, 1u));
}

void vd_gate_enter_alone(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    while (gate->alone)
        pthread_cond_wait(&gate->changed, &gate->lock);
    gate->alone = 1;
    atomic_store(&gate->closed, 1);
    while (atomic_load(&gate->shared) != 0u)
        pthread_cond_wait(&gate->changed, &gate->lock);
    pthread_mutex_unlock(&gate->lock);
}

void vd_gate_leave_alone(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    gate->alone = 0;
    atomic_store(&gate->closed, 0);
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
}
