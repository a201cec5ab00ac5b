/*
 * An arena's shared heaps, used under arena->shared_lock by any thread of
 * the arena: the tcache-off heap (thread caches turned off) and the debug
 * heap (debug checks on: every block it hands out carries a canary).  No
 * thread owns them, so every free into their pages is a remote free, and
 * they are trimmed now and then so emptied pages go back to the arena.
 */
#include "core/core_internal.h"

hk_heap *hk_shared_heap_locked(hk_arena *a, bool debug) {
    hk_heap **slot = debug ? &a->debug_heap : &a->shared_heap;
    if (*slot == NULL) {
        hk_heap *h = hk_meta_alloc(sizeof(hk_heap));
        if (h == NULL) return NULL;
        hk_heap_init(h, a, true);
        h->debug = debug;
        hk_lock(&hk_heaps_lock);
        h->next_all = hk_heaps_all;
        hk_heaps_all = h;
        hk_unlock(&hk_heaps_lock);
        *slot = h;
    }
    return *slot;
}

/* Pops a block of class cls from heap h (locked by the caller). */
void *hk_shared_pop_locked(hk_heap *h, unsigned cls, bool *slow) {
    if (hk_unlikely(++h->slow_count % HK_TRIM_EVERY == 0)) hk_heap_trim(h);
    if (hk_load_relaxed(&h->delayed) != 0) hk_heap_collect_delayed(h);
    hk_page *page = h->direct[cls];
    hk_page_check_head(page);
    if (page->free == NULL) {
        *slow = true;
        return hk_heap_malloc_slow(h, cls);
    }
    hk_block *b = hk_page_pop_checked(page);
    if (hk_config_stats) {
        hk_counter_add(&h->counters.nmalloc[cls], 1);
        hk_counter_add(&h->counters.nslow[cls], 1);
    }
    return b;
}

void *hk_shared_malloc(unsigned cls, bool debug) {
    hk_arena *a = hk_thread_arena();
    bool slow = false;
    void *p = NULL;
    hk_lock(&a->shared_lock);
    hk_heap *h = hk_shared_heap_locked(a, debug);
    if (h != NULL) p = hk_shared_pop_locked(h, cls, &slow);
    else errno = ENOMEM;
    hk_unlock(&a->shared_lock);
    if (slow) hk_periodic_tick(NULL); /* never under the lock */
    return p;
}
