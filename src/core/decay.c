/*
 * The decay thread: gives back, in a process that has gone quiet, what the
 * decay clock lets go (doc/DESIGN.md section 9.5).
 *
 * Purging otherwise runs only from the allocator's own paths (a page
 * allocated or handed back, a slow path's tick), so a program that frees
 * memory and then makes no call kept it resident for as long as it stayed
 * quiet.  This thread is started by the first tick that finds free memory
 * waiting for the decay time (never at start-up: a process that never hands
 * memory back never gets it); while any arena has dirty slices or the
 * BigCache holds more than its capacity it wakes every decay_ms / 4 (10 ms
 * to 1 s; every second while the cache holds, or held a moment ago, only
 * mappings within its capacity, which go once idle 10 s, and which do not
 * wake it when parked) and purges what has aged, as an
 * allocation would; when nothing is left it
 * sleeps on a futex until memory is handed back again (hk_decay_note_dirty:
 * on that slow path a load, and once the thread exists a fence and a load;
 * a system call only to wake it).
 *
 * Only a process that already has a second thread gets it.  A second
 * thread changes what the C library does for good (__libc_single_threaded
 * turns false: stdio and shared_ptr lock for real, a fork from a signal
 * handler during malloc takes the locks (fork.c, rule 3) and can deadlock,
 * unshare(CLONE_NEWUSER) fails), which a malloc replacement must not do
 * to a single-threaded program behind its back; such a program gives its
 * memory back when it next calls the allocator, as before.
 *
 * It never allocates (nanosleep and futex only), takes the arena and huge
 * locks one at a time like any thread, blocks every signal, and is never
 * started in a fork child.  decay_thread:0 in
 * HAKMEM_CONF keeps a process free of it.
 */
#include "core/core_internal.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STEP_MIN_MS 10
#define STEP_MAX_MS HK_DECAY_SLOW_STEP_MS

/* 0: no thread; 1: being created or running; 2: none, and none to come
 * (its creation failed, or this is a fork child). */
static _Atomic int started;
/* How the thread sleeps: IDLE_ANY with nothing to do (any hand-back clears
 * it and wakes the thread), IDLE_CACHE on its slow cadence while the
 * BigCache holds only mappings within its capacity (only an urgent
 * hand-back does: a program cycling a mapping through the cache woke it at
 * every free), IDLE_NONE otherwise. */
enum { IDLE_NONE, IDLE_ANY, IDLE_CACHE };
static _Atomic uint32_t idle_word;
static _Atomic uint64_t nwakeups, npurges;

static bool decay_wanted(void) {
    return hk_opt.decay_thread && hk_feature_on(HK_FEAT_DECAY);
}

static bool arenas_dirty(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) {
        const hk_arena *a = &hk_arenas[i];
        if (hk_load_relaxed(&a->ndirty) != 0 && hk_load_relaxed(&a->decay_ms) >= 0) return true;
    }
    return false;
}

static unsigned decay_step_ms(void) {
    int64_t d = hk_load_relaxed(&hk_arenas[0].decay_ms) / 4;
    return d < STEP_MIN_MS ? STEP_MIN_MS : d > STEP_MAX_MS ? STEP_MAX_MS : (unsigned)d;
}

/* How long until a purge may give something back: 0 when nothing will
 * (no arena has dirty slices, the BigCache is empty); a decay step when
 * an arena has dirty slices or the BigCache holds more than its capacity;
 * STEP_MAX_MS when it holds only mappings within its capacity (they go
 * once idle 10 s). */
static unsigned work_left(void) {
    if (!decay_wanted()) return 0;
    if (arenas_dirty()) return decay_step_ms();
    unsigned bc = hk_feature_on(HK_FEAT_BIGCACHE) ? hk_bigcache_state() : HK_BC_EMPTY;
    return bc == HK_BC_OVER ? decay_step_ms() : bc == HK_BC_HOLDS ? STEP_MAX_MS : 0;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Sleeps until memory is handed back, or at most ms (0: no limit) while
 * only the BigCache's mappings within its capacity wait.  The store of
 * idle_word and the hand-back's counter update are each followed by a full
 * fence before the other's load, so one of the two sides sees the other:
 * a hand-back never goes unseen by a thread about to sleep. */
static void idle_wait(unsigned ms) {
    uint32_t how = ms == 0 ? IDLE_ANY : IDLE_CACHE;
    hk_store_relaxed(&idle_word, how);
    atomic_thread_fence(memory_order_seq_cst);
    unsigned step = work_left();
    if (step == 0 || step == ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        syscall(SYS_futex, &idle_word, FUTEX_WAIT_PRIVATE, how, ms != 0 ? &ts : NULL, NULL, 0);
    }
    hk_store_relaxed(&idle_word, IDLE_NONE);
}

static void purge_aged(void) {
    uint64_t now = hk_os_now_ms();
    for (unsigned i = 0; i < hk_opt.narenas; i++) {
        hk_arena *a = &hk_arenas[i];
        if (hk_load_relaxed(&a->ndirty) == 0 && hk_load_relaxed(&a->nabandoned) == 0) continue;
        hk_lock(&a->lock);
        hk_arena_maybe_purge_locked(a, now);
        hk_unlock(&a->lock);
    }
    if (hk_feature_on(HK_FEAT_BIGCACHE)) hk_bigcache_trim();
    hk_fetch_add_relaxed(&npurges, 1);
}

static void *decay_main(void *arg) {
    (void)arg;
    for (;;) {
        unsigned step = work_left();
        if (step == 0) {
            idle_wait(0);
            hk_fetch_add_relaxed(&nwakeups, 1);
            continue;
        }
        /* The long wait (only mappings within the BigCache's capacity) is
         * cut short by a hand-back, which may put the cache over it. */
        if (step == STEP_MAX_MS && !arenas_dirty()) idle_wait(STEP_MAX_MS);
        else sleep_ms(step);
        purge_aged();
    }
    return NULL;
}

static void start_thread(void) {
    int no = 0;
    if (!atomic_compare_exchange_strong(&started, &no, 1)) return;
    if (!hk_os_start_thread(decay_main, "hakmem-decay", 64 * 1024)) hk_store_relaxed(&started, 2);
    /* A failed start (thread limit, no memory) is not retried: purging
     * stays with the allocator's own paths, as with decay_thread:0. */
}

/* From hk_periodic_tick and the hand-backs that hold no allocator lock:
 * one relaxed load once the thread runs.  Not while this thread holds
 * every lock for fork (an atfork handler's malloc). */
void hk_decay_tick(void) {
    if (hk_likely(hk_load_relaxed(&started) != 0)) return;
    if (decay_wanted() && !hk_tls_holds_all_locks && !hk_os_single_threaded() && work_left())
        start_thread();
}

/* Memory was handed back: wakes the thread if it sleeps with nothing to
 * do, or (urgent) on its slow cadence.  The caller's counter update comes
 * before; see idle_wait for the fence. */
void hk_decay_note_dirty(bool urgent) {
    if (hk_load_relaxed(&started) != 1) return;
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t how = hk_load_relaxed(&idle_word);
    if (hk_likely(how == IDLE_NONE) || (how == IDLE_CACHE && !urgent)) return;
    if (hk_exchange_acq_rel(&idle_word, IDLE_NONE) != IDLE_NONE)
        syscall(SYS_futex, &idle_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void hk_decay_get_stats(hk_decay_stats *o) {
    o->running = hk_load_relaxed(&started) == 1;
    o->nwakeups = hk_load_relaxed(&nwakeups);
    o->npurges = hk_load_relaxed(&npurges);
}

/* In a fork child: the thread was not copied, and none is started there.
 * A child of a multi-threaded process may call only async-signal-safe
 * functions until it execs (POSIX; glibc's malloc is the usual exception
 * programs lean on); a thread started behind its back is beyond that
 * (ThreadSanitizer refuses it: "starting new threads after multi-threaded
 * fork is not supported"). */
void hk_decay_fork_child(void) {
    hk_store_relaxed(&started, 2);
    hk_store_relaxed(&idle_word, 0);
}
