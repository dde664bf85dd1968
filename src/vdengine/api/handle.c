/* The handle table.
 *
 * Slots live in chunks that are allocated once and never moved or freed, so
 * a lookup needs no lock: it finds the slot from the index in the HANDLE
 * value and checks the slot's generation.  Each slot has one atomic state
 * word:
 *
 *     bits 63..32  generation: changes every time the slot is reused, so a
 *                  stale HANDLE value (closed, or closed and reused) no
 *                  longer matches
 *     bits 31..1   calls currently using the disk
 *     bit  0       open: set from insert until the handle is closed
 *
 * A call takes a reference with one compare-and-swap (open and generation
 * match), and drops it with one atomic subtraction.  Closing clears the open
 * bit; whoever brings the state to "closed, no calls" (the closer, or the
 * last call to finish) frees the disk, and only then is the slot given a
 * new generation and put back on the free list.  The table mutex guards the
 * free list and chunk allocation only, so open and close pay one
 * uncontended lock each and queries none.
 *
 * HANDLE encoding: value = generation << (2 + INDEX_BITS) | index << 2.
 * The two low bits are zero (as in Windows handles), so NULL, small
 * integers, INVALID_HANDLE_VALUE and misaligned values are never valid; the
 * generation starts at 1, so no valid value is below 1 << 22. */
#include "api/handle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "api/attach.h"
#include "api/device_handle.h"
#include "api/operation.h"
#include "base/vd_errors.h"
#include "vdengine.h"

#define VD_HANDLE_INDEX_BITS 20u
#define VD_HANDLE_CHUNK_BITS 10u
#define VD_HANDLE_CHUNK_SLOTS (1u << VD_HANDLE_CHUNK_BITS)
#define VD_HANDLE_CHUNKS (1u << (VD_HANDLE_INDEX_BITS - VD_HANDLE_CHUNK_BITS))
#define VD_HANDLE_MAX_SLOTS (1u << VD_HANDLE_INDEX_BITS)
#define VD_HANDLE_INDEX_SHIFT 2u
#define VD_HANDLE_GENERATION_SHIFT (VD_HANDLE_INDEX_SHIFT + VD_HANDLE_INDEX_BITS)

/* Generation bits that fit above the index in a pointer-sized value: 32 on
 * 64-bit hosts, 10 on 32-bit ones. */
#define VD_HANDLE_POINTER_BITS (sizeof(uintptr_t) * 8u)
#define VD_HANDLE_GENERATION_BITS                                          \
    (VD_HANDLE_POINTER_BITS - VD_HANDLE_GENERATION_SHIFT >= 32u            \
         ? 32u                                                             \
         : VD_HANDLE_POINTER_BITS - VD_HANDLE_GENERATION_SHIFT)
#define VD_HANDLE_GENERATION_MASK \
    ((uint32_t)(((uint64_t)1 << VD_HANDLE_GENERATION_BITS) - 1u))

#define VD_STATE_OPEN ((uint64_t)1)
#define VD_STATE_CALL ((uint64_t)2)
#define VD_STATE_LOW_MASK ((uint64_t)0xffffffffu)
/* Calls on one handle at once; far beyond any thread count, and below the
 * 31 bits the state word has for them. */
#define VD_STATE_MAX_CALLS ((uint64_t)1 << 30)

typedef struct vd_handle_slot {
    _Atomic uint64_t state;
    vd_disk *disk;           /* published by the release store of `state` */
    uint32_t next_free;      /* free-list link (index + 1), under the mutex */
} vd_handle_slot;

static pthread_mutex_t vd_table_mutex = PTHREAD_MUTEX_INITIALIZER;
static vd_handle_slot *_Atomic vd_table_chunks[VD_HANDLE_CHUNKS];
static uint32_t vd_table_used;        /* slots ever handed out, under the mutex */
static uint32_t vd_table_free_head;   /* index + 1 of the first free slot; 0: none */
static atomic_uint_fast32_t vd_table_open_count;

static uint32_t vd_state_generation(uint64_t state)
{
    return (uint32_t)(state >> 32);
}

static uint64_t vd_state_make(uint32_t generation, uint64_t low)
{
    return (uint64_t)generation << 32 | low;
}

static uint32_t vd_generation_next(uint32_t generation)
{
    uint32_t next = (generation + 1u) & VD_HANDLE_GENERATION_MASK;
    return next == 0 ? 1u : next;
}

static HANDLE vd_handle_encode(uint32_t index, uint32_t generation)
{
    uintptr_t value = (uintptr_t)generation << VD_HANDLE_GENERATION_SHIFT
                      | (uintptr_t)index << VD_HANDLE_INDEX_SHIFT;
    return (HANDLE)value;
}

/* The slot a HANDLE value names, its index and the generation it expects;
 * NULL for a value no insert could have produced. */
static vd_handle_slot *vd_handle_decode(HANDLE handle, uint32_t *index, uint32_t *generation)
{
    uintptr_t value = (uintptr_t)handle;
    if ((value & (((uintptr_t)1 << VD_HANDLE_INDEX_SHIFT) - 1u)) != 0)
        return NULL;
    uintptr_t high = value >> VD_HANDLE_GENERATION_SHIFT;
    if (high == 0 || high > VD_HANDLE_GENERATION_MASK)
        return NULL;
    *index = (uint32_t)(value >> VD_HANDLE_INDEX_SHIFT) & (VD_HANDLE_MAX_SLOTS - 1u);
    vd_handle_slot *chunk = atomic_load_explicit(&vd_table_chunks[*index >> VD_HANDLE_CHUNK_BITS],
                                                 memory_order_acquire);
    if (chunk == NULL)
        return NULL;
    *generation = (uint32_t)high;
    return &chunk[*index & (VD_HANDLE_CHUNK_SLOTS - 1u)];
}

static vd_handle_slot *vd_slot_at(uint32_t index)
{
    vd_handle_slot *chunk = atomic_load_explicit(&vd_table_chunks[index >> VD_HANDLE_CHUNK_BITS],
                                                 memory_order_relaxed);
    return &chunk[index & (VD_HANDLE_CHUNK_SLOTS - 1u)];
}

/* A free slot index, under the mutex: the most recently freed one (its
 * cache lines are warm), else a fresh one, allocating its chunk. */
static uint32_t vd_slot_take(uint32_t *index)
{
    if (vd_table_free_head != 0) {
        *index = vd_table_free_head - 1u;
        vd_table_free_head = vd_slot_at(*index)->next_free;
        return VD_ERROR_SUCCESS;
    }
    if (vd_table_used >= VD_HANDLE_MAX_SLOTS)
        return VD_ERROR_TOO_MANY_OPEN_FILES;
    uint32_t chunk_index = vd_table_used >> VD_HANDLE_CHUNK_BITS;
    if (atomic_load_explicit(&vd_table_chunks[chunk_index], memory_order_relaxed) == NULL) {
        vd_handle_slot *chunk = calloc(VD_HANDLE_CHUNK_SLOTS, sizeof *chunk);
        if (chunk == NULL)
            return VD_ERROR_NOT_ENOUGH_MEMORY;
        for (uint32_t i = 0; i < VD_HANDLE_CHUNK_SLOTS; i++)
            atomic_init(&chunk[i].state, vd_state_make(1u, 0));
        atomic_store_explicit(&vd_table_chunks[chunk_index], chunk, memory_order_release);
    }
    *index = vd_table_used++;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_handle_insert(vd_disk *disk, HANDLE *handle)
{
    if (disk == NULL || handle == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    uint32_t index;
    pthread_mutex_lock(&vd_table_mutex);
    uint32_t status = vd_slot_take(&index);
    if (status == VD_ERROR_SUCCESS) {
        vd_handle_slot *slot = vd_slot_at(index);
        uint32_t generation =
            vd_state_generation(atomic_load_explicit(&slot->state, memory_order_relaxed));
        slot->disk = disk;
        atomic_store_explicit(&slot->state, vd_state_make(generation, VD_STATE_OPEN),
                              memory_order_release);
        atomic_fetch_add_explicit(&vd_table_open_count, 1u, memory_order_relaxed);
        *handle = vd_handle_encode(index, generation);
    }
    pthread_mutex_unlock(&vd_table_mutex);
    return status;
}

/* Frees the disk of a slot that is closed with no call running, then gives
 * the slot a new generation and puts it on the free list.  Runs exactly
 * once per insert: only one thread sees the state reach that point. */
static void vd_slot_retire(vd_handle_slot *slot, uint32_t index, uint32_t generation)
{
    vd_disk *disk = slot->disk;
    slot->disk = NULL;
    vd_disk_free(disk);

    pthread_mutex_lock(&vd_table_mutex);
    atomic_store_explicit(&slot->state, vd_state_make(vd_generation_next(generation), 0),
                          memory_order_release);
    slot->next_free = vd_table_free_head;
    vd_table_free_head = index + 1u;
    pthread_mutex_unlock(&vd_table_mutex);
}

/* Changes the state of a slot that is open under `generation` from S to
 * S + add - subtract; 0 (and no change) if the slot is not that open handle,
 * or if a call is to be added to a slot that counts the most it can. */
static int vd_slot_change_while_open(vd_handle_slot *slot, uint32_t generation, uint64_t add,
                                     uint64_t subtract, uint64_t *previous)
{
    uint64_t state = atomic_load_explicit(&slot->state, memory_order_relaxed);
    for (;;) {
        if (vd_state_generation(state) != generation || (state & VD_STATE_OPEN) == 0)
            return 0;
        if (add != 0 && (state & VD_STATE_LOW_MASK) >> 1 >= VD_STATE_MAX_CALLS)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&slot->state, &state, state + add - subtract,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
            *previous = state;
            return 1;
        }
    }
}

vd_disk *vd_handle_acquire_any(HANDLE handle)
{
    uint32_t index, generation;
    uint64_t previous;
    vd_handle_slot *slot = vd_handle_decode(handle, &index, &generation);
    if (slot == NULL || !vd_slot_change_while_open(slot, generation, VD_STATE_CALL, 0, &previous))
        return NULL;
    return slot->disk;
}

/* A device handle is no virtual disk handle: every VirtDisk function but
 * GetStorageDependencyInformation answers it ERROR_INVALID_HANDLE, as
 * VirtDisk does for a volume handle. */
vd_disk *vd_handle_acquire(HANDLE handle)
{
    vd_disk *disk = vd_handle_acquire_any(handle);
    if (disk != NULL && disk->device_target != NULL) {
        vd_handle_release(handle);
        return NULL;
    }
    return disk;
}

void vd_handle_release(HANDLE handle)
{
    uint32_t index, generation;
    vd_handle_slot *slot = vd_handle_decode(handle, &index, &generation);
    if (slot == NULL)
        return;
    uint64_t previous = atomic_fetch_sub_explicit(&slot->state, VD_STATE_CALL,
                                                  memory_order_acq_rel);
    /* The last call on a handle closed meanwhile frees the disk. */
    if ((previous & VD_STATE_LOW_MASK) == VD_STATE_CALL)
        vd_slot_retire(slot, index, generation);
}

DWORD vd_engine_close_handle(HANDLE handle)
{
    uint32_t index, generation;
    uint64_t previous;
    /* A long operation still running is cancelled and waited for: the
     * caller may free its OVERLAPPED once CloseHandle has returned. */
    vd_disk *disk = vd_handle_acquire(handle);
    if (disk != NULL) {
        vd_operations_end(disk);
        vd_handle_release(handle);
    }
    vd_handle_slot *slot = vd_handle_decode(handle, &index, &generation);
    if (slot == NULL || !vd_slot_change_while_open(slot, generation, 0, VD_STATE_OPEN, &previous))
        return VD_ERROR_INVALID_HANDLE;
    atomic_fetch_sub_explicit(&vd_table_open_count, 1u, memory_order_relaxed);
    /* No call running: the closer frees the disk. */
    if ((previous & VD_STATE_LOW_MASK) == VD_STATE_OPEN)
        vd_slot_retire(slot, index, generation);
    return VD_ERROR_SUCCESS;
}

ULONG vd_engine_open_handle_count(void)
{
    return (ULONG)atomic_load_explicit(&vd_table_open_count, memory_order_relaxed);
}

vd_disk *vd_disk_new(void)
{
    vd_disk *disk = calloc(1, sizeof *disk);
    if (disk == NULL)
        return NULL;
    if (pthread_mutex_init(&disk->lock, NULL) != 0) {
        free(disk);
        return NULL;
    }
    if (vd_gate_init(&disk->content_gate) != 0) {
        pthread_mutex_destroy(&disk->lock);
        free(disk);
        return NULL;
    }
    if (vd_copy_refusals_init(&disk->copy_refusals) != 0) {
        vd_gate_destroy(&disk->content_gate);
        pthread_mutex_destroy(&disk->lock);
        free(disk);
        return NULL;
    }
    return disk;
}

void vd_disk_free(vd_disk *disk)
{
    if (disk == NULL)
        return;
    vd_device_target_free(disk->device_target);
    vd_operations_free(disk->operations);
    vd_attach_release(disk);
    free(disk->partition_fds);
    vd_chain_close(&disk->chain);
    vd_image_release(&disk->image);
    vd_copy_refusals_destroy(&disk->copy_refusals);
    vd_gate_destroy(&disk->content_gate);
    pthread_mutex_destroy(&disk->lock);
    free(disk);
}

int vd_disk_has_access(const vd_disk *disk, uint32_t access)
{
    if (disk->open_version >= OPEN_VIRTUAL_DISK_VERSION_2)
        return !disk->get_info_only || access == VIRTUAL_DISK_ACCESS_GET_INFO;
    return (disk->access_mask & access) == access;
}
