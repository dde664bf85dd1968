/* The shared/exclusive gate (gate.h). */
#include "base/gate.h"

int vd_gate_init(vd_gate *gate)
{
    gate->shared = gate->exclusive_waiting = 0;
    gate->exclusive = 0;
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

void vd_gate_enter_shared(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    while (gate->exclusive || gate->exclusive_waiting != 0)
        pthread_cond_wait(&gate->changed, &gate->lock);
    gate->shared++;
    pthread_mutex_unlock(&gate->lock);
}

void vd_gate_leave_shared(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    if (--gate->shared == 0)
        pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
}

void vd_gate_enter_alone(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    gate->exclusive_waiting++;
    while (gate->exclusive || gate->shared != 0)
        pthread_cond_wait(&gate->changed, &gate->lock);
    gate->exclusive_waiting--;
    gate->exclusive = 1;
    pthread_mutex_unlock(&gate->lock);
}

void vd_gate_leave_alone(vd_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    gate->exclusive = 0;
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
}
