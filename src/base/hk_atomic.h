/* Atomics whose names carry their memory order. */
#ifndef HK_ATOMIC_H
#define HK_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

#define hk_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define hk_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define hk_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define hk_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define hk_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define hk_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define hk_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define hk_fetch_or_relaxed(p, v) atomic_fetch_or_explicit((p), (v), memory_order_relaxed)
#define hk_fetch_and_relaxed(p, v) atomic_fetch_and_explicit((p), (v), memory_order_relaxed)
/* Weak CAS, release on success (publishes the pushed block), relaxed on
 * failure; *expected is refreshed on failure. */
#define hk_cas_weak_release(p, expected, desired)                            \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired),        \
                                          memory_order_release,              \
                                          memory_order_relaxed)
#define hk_cas_strong_acq_rel(p, expected, desired)                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),      \
                                            memory_order_acq_rel,            \
                                            memory_order_acquire)

/* A counter owned by one thread and read by others: a relaxed load and
 * store (a plain add on x86, no lock prefix), race-free for sanitizers. */
static inline void hk_counter_add(_Atomic uint64_t *c, uint64_t v) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* The fast-path form: one add to memory on x86-64 (an aligned 8-byte store
 * is atomic there, so readers' relaxed loads see whole values). */
static inline void hk_counter_inc(_Atomic uint64_t *c) {
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    __asm__ volatile("incq %0" : "+m"(*(uint64_t *)c));
#else
    hk_counter_add(c, 1);
#endif
}

#endif
