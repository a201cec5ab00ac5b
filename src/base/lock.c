/*
 * The flag behind hk_lock (base.h): set while the forking thread holds
 * every allocator lock (core/fork.c), so that its own allocations in
 * between skip them.  Here, at the bottom, because every layer's locks go
 * through hk_lock.  And the slow halves of hk_word_lock (base.h).
 */
#include "base/base.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

_Thread_local bool hk_tls_holds_all_locks;

/* Spins before sleeping: about as long as a profiler's section (a few
 * hundred instructions), so that two threads sampling at once rarely sleep. */
#define WORD_LOCK_SPINS 64

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The lock was held: spin while it stays held (the holder is likely
 * running), then mark it contended (2) and sleep until a swap from free
 * succeeds.  Whoever takes it this way leaves it at 2, so its release wakes
 * the next sleeper (a spare wake-up at worst). */
void hk_word_lock_wait(hk_word_lock *l) {
    for (int i = 0; i < WORD_LOCK_SPINS; i++) {
        cpu_relax();
        uint32_t free_state = 0;
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&l->state, &free_state, 1, memory_order_acquire,
                                                    memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, &l->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void hk_word_lock_wake(hk_word_lock *l) { syscall(SYS_futex, &l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
