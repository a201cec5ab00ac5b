/*
 * Bootstrap and thread life cycle.
 *
 * Initialization runs on the first slow-path call from any thread.  The
 * allocator is usable (hk_initialized = 1) before init calls anything in
 * libc that may itself allocate (pthread_key_create, pthread_atfork); a
 * nested call from there finds tls_in_init set and is served by the arena's
 * shared heap, so init never recurses into itself.
 *
 * A thread gets its heap on its first allocation; a pthread key destructor
 * returns the heap's pages when the thread exits, and the heap itself goes
 * to a pool for the next thread.  fork.c keeps the locks across fork().
 */
#include <stdlib.h>

#include "core/core_internal.h"

_Thread_local hk_heap *hk_tls_heap = &hk_heap_empty;
static _Thread_local bool tls_in_init, tls_exiting;
_Thread_local bool hk_tls_tcache_off;
static _Thread_local hk_heap *tls_parked; /* this thread's heap while detached */
static _Thread_local hk_arena *tls_arena;

_Atomic int hk_initialized;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t heap_key;
static _Atomic bool heap_key_ok;

pthread_mutex_t hk_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
hk_heap *hk_heaps_all;          /* every heap with counters: threads', parked, shared,
                                   checked (hk_heaps_lock) */
static hk_heap *heap_pool;      /* heaps of exited threads (hk_heaps_lock) */
hk_class_counters hk_dead_counters;

static void thread_exit(void *arg);

static unsigned default_narenas(void) {
    unsigned n = 4 * hk_os_ncpus();
    return n > HK_MAX_ARENAS ? HK_MAX_ARENAS : n;
}

void hk_init_slow(void) {
    if (tls_in_init) return;
    hk_lock(&init_lock);
    if (!hk_load_relaxed(&hk_initialized)) {
        tls_in_init = true;
        hk_assert(hk_sizeclass_check() < 0);
        hk_conf_defaults(&hk_opt);
        hk_conf_mode_env(&hk_opt, getenv("HAKMEM_MODE"));
        hk_conf_parse(&hk_opt, getenv("HAKMEM_CONF"));
        hk_mode_init();
        if (hk_opt.narenas == 0) hk_opt.narenas = default_narenas();
        hk_list_key_init();
        hk_arenas_init(hk_opt.narenas);
        hk_os_set_pressure_release(hk_bigcache_purge); /* a failing mapping: the cache goes */
        hk_store_release(&hk_initialized, 1);
        /* From here on a nested malloc (from libc, the dynamic linker...)
         * is served by the arena's shared heap. */
        hk_upper.at_init();
        if (pthread_key_create(&heap_key, thread_exit) == 0)
            hk_store_release(&heap_key_ok, true);
        hk_fork_install();
        tls_in_init = false;
    }
    hk_unlock(&init_lock);
}

static hk_heap *heap_from_pool(void) {
    hk_lock(&hk_heaps_lock);
    hk_heap *h = heap_pool;
    if (h != NULL) heap_pool = h->next_free;
    hk_unlock(&hk_heaps_lock);
    return h != NULL ? h : hk_meta_alloc(sizeof(hk_heap));
}

/* The calling thread's heap, created on first use; NULL when this thread
 * must use its arena's shared heap (thread caches off, inside init, or
 * after its heap was returned at thread exit). */
hk_heap *hk_thread_heap_slow(void) {
    if (hk_tls_heap != &hk_heap_empty) return hk_tls_heap;
    if (!hk_thread_tcache_wanted() || tls_in_init || tls_exiting || !hk_load_acquire(&heap_key_ok))
        return NULL;
    if (tls_parked != NULL) {
        hk_heap_init(tls_parked, tls_parked->arena, false);
        hk_tls_heap = tls_parked;
        tls_parked = NULL;
        return hk_tls_heap;
    }
    hk_heap *h = heap_from_pool();
    if (h == NULL) return NULL;
    hk_heap_init(h, tls_arena != NULL ? tls_arena : hk_arena_next_for_thread(), false);
    hk_lock(&hk_heaps_lock);
    h->next_all = hk_heaps_all;
    hk_heaps_all = h;
    hk_unlock(&hk_heaps_lock);
    hk_tls_heap = h;
    pthread_setspecific(heap_key, h);
    hk_upper.thread_start(&h->altstack);
    return h;
}

hk_heap *hk_thread_real_heap(void) {
    return hk_tls_heap != &hk_heap_empty ? hk_tls_heap : NULL;
}

void hk_thread_set_tcache(bool on) { hk_tls_tcache_off = !on; }
bool hk_thread_tcache_enabled(void) { return !hk_tls_tcache_off; }

/* Thread caches were turned off: the heap's pages go back to the arena
 * and the thread allocates from its arena's shared heap until they are
 * turned on again.  The heap (and its counters) stays with the thread. */
void hk_thread_detach_heap(void) {
    hk_heap *h = hk_tls_heap;
    if (h == &hk_heap_empty) return;
    hk_tls_heap = &hk_heap_empty;
    hk_heap_abandon(h);
    tls_parked = h;
    tls_arena = h->arena;
}

/* Moves the calling thread to arena i (thread.arena). */
void hk_thread_set_arena(unsigned i) {
    hk_arena *to = &hk_arenas[i], *from = hk_thread_arena();
    if (to == from) return;
    hk_fetch_sub_relaxed(&from->nthreads, 1);
    hk_fetch_add_relaxed(&to->nthreads, 1);
    tls_arena = to;
    if (hk_tls_heap != &hk_heap_empty) hk_tls_heap->arena = to;
    if (tls_parked != NULL) tls_parked->arena = to;
}

hk_arena *hk_thread_arena(void) {
    if (hk_tls_heap != &hk_heap_empty) return hk_tls_heap->arena;
    if (tls_arena == NULL) {
        tls_arena = hk_arena_next_for_thread();
        /* Counted in the arena's nthreads now: the exit hook must run to
         * uncount it even if this thread never gets a heap of its own
         * (thread cache off from the start). */
        if (hk_load_acquire(&heap_key_ok) && pthread_getspecific(heap_key) == NULL)
            pthread_setspecific(heap_key, &hk_heap_empty);
    }
    return tls_arena;
}

static void thread_exit(void *arg) {
    hk_heap *h = arg;
    tls_exiting = true;
    hk_upper.thread_exit(); /* before the heap (and its stack) is pooled */
    hk_tls_heap = &hk_heap_empty;
    tls_parked = NULL;
    if (h == NULL) return;
    if (h == &hk_heap_empty) { /* bound to an arena, never had a heap */
        if (tls_arena != NULL) hk_fetch_sub_relaxed(&tls_arena->nthreads, 1);
        return;
    }
    hk_heap_abandon(h);
    hk_fetch_sub_relaxed(&h->arena->nthreads, 1);
    hk_lock(&hk_heaps_lock);
    hk_heap **pp = &hk_heaps_all;
    while (*pp != NULL && *pp != h) pp = &(*pp)->next_all;
    if (*pp == h) *pp = h->next_all;
    hk_stats_fold_heap(h);
    h->next_free = heap_pool;
    heap_pool = h;
    hk_unlock(&hk_heaps_lock);
}

/* fork.c's protocol: init_lock comes first in the lock order. */
void hk_init_lock_for_fork(void) { hk_lock(&init_lock); }
void hk_init_unlock_for_fork(void) { hk_unlock(&init_lock); }
void hk_init_reinit_child(void) { pthread_mutex_init(&init_lock, NULL); }
