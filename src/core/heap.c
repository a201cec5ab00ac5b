/*
 * Heaps: the malloc slow path (find or make a page with a free block), the
 * local free slow path (page emptied or leaving the full list), remote
 * frees, and what a heap does when its thread exits.
 *
 * Full pages: a page with no free block is detached into heap->full and
 * its thread-free word is set to HK_TF_FULL.  The first remote free after
 * that flips the word to HK_TF_FREEING, pushes its block on the owner's
 * delayed list (so the owner learns the page has room again), and sets
 * HK_TF_NORMAL; later remote frees go to the page's own list (remote.c).
 * The owner waits out HK_TF_FREEING before it abandons a page, so a freer
 * never touches a heap that no longer owns the page.
 */
#include <sched.h>

#include "core/core_internal.h"

#define HK_EMPTY_DIRECT_INIT [0 ... HK_NCLASSES - 1] = &hk_page_empty

hk_heap hk_heap_empty = {.owned_segs = {[0 ... HK_OWNED_SEGS - 1] = HK_NO_SEGMENT},
                         .direct = {HK_EMPTY_DIRECT_INIT}};

/* The heap is about to hand its pages back: their segments may be unmapped. */
void hk_heap_forget_segments(hk_heap *heap) {
    for (unsigned i = 0; i < HK_OWNED_SEGS; i++) heap->owned_segs[i] = HK_NO_SEGMENT;
}

/* The heap is about to hand back a page of seg: seg may be unmapped.  The
 * other segments it names keep the page each was named for. */
static void forget_segment(hk_heap *heap, hk_segment *seg) {
    hk_segment **slot = hk_heap_owned_slot(heap, seg);
    if (*slot == seg) *slot = HK_NO_SEGMENT;
}

static void bcache_caps_update(hk_heap *heap);

void hk_heap_init(hk_heap *heap, hk_arena *arena, bool shared) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        heap->direct[c] = &hk_page_empty;
        heap->queue[c].first = heap->queue[c].last = NULL;
        heap->queue[c].count = 0;
    }
    heap->full.first = heap->full.last = NULL;
    heap->full.count = 0;
    hk_heap_forget_segments(heap);
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        heap->divmagic[c] = hk_class_divmagic[c];
        heap->divlimit[c] = hk_class_divmagic[c] - 1;
    }
    hk_store_relaxed(&heap->delayed, 0);
    hk_assert(heap->run.n == 0); /* flushed when its thread left (hk_heap_abandon) */
    heap->run = (hk_remote_run){0};
    heap->arena = arena;
    /* A heap keeps its kind for life (pooled thread heaps come back as
     * thread heaps): written only when it changes, so a late remote free
     * reading owner->shared (api.c free_other) of a heap being reused for
     * a new thread races with no write. */
    if (heap->shared != shared) heap->shared = shared;
    heap->prof_epoch = 0; /* a new countdown at its first slow path */
    memset(heap->keep_boost, 0, sizeof heap->keep_boost); /* heaps come back from the pool */
    memset(heap->released_at, 0, sizeof heap->released_at);
    heap->boost_bytes = 0;
    memset(heap->bcache_n, 0, sizeof heap->bcache_n);
    bcache_caps_update(heap);
}

static void page_to_full(hk_heap *heap, hk_page *page) {
    uintptr_t expected = HK_TF_NORMAL;
    if (!hk_cas_strong_acq_rel(&page->xthread_free, &expected, HK_TF_FULL))
        return; /* a remote free just arrived: it stays in the queue */
    hk_page_queue_remove(&heap->queue[page->cls], page);
    hk_page_queue_push(&heap->full, page);
    hk_page_set_in_full(page, page->in_full | HK_PAGE_FULL);
    if (heap->direct[page->cls] == page) heap->direct[page->cls] = &hk_page_empty;
}

/* Sets the thread-free state back to NORMAL, waiting out a freer that is
 * handing a block over (HK_TF_FREEING lasts a few instructions). */
static void page_clear_full_state(hk_page *page) {
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    for (;;) {
        uintptr_t state = tf & HK_TF_MASK;
        if (state == HK_TF_NORMAL) return;
        if (state == HK_TF_FREEING) {
            sched_yield();
            tf = hk_load_relaxed(&page->xthread_free);
            continue;
        }
        if (hk_cas_strong_acq_rel(&page->xthread_free, &tf,
                                  (tf & ~HK_TF_MASK) | HK_TF_NORMAL))
            return;
    }
}

/* Back into the queue, last: the refill after the current page runs dry
 * takes the page that has been collecting frees longest (first, it would
 * take the one that just got its first; test_page_order). */
static void page_unfull(hk_heap *heap, hk_page *page) {
    page_clear_full_state(page);
    hk_page_queue_remove(&heap->full, page);
    hk_page_queue_append(&heap->queue[page->cls], page);
    hk_page_set_in_full(page, page->in_full & ~HK_PAGE_FULL);
}

static void page_release(hk_heap *heap, hk_page *page) {
    heap->released_at[page->cls] = heap->slow_count + 1;
    hk_page_queue_remove(&heap->queue[page->cls], page);
    if (heap->direct[page->cls] == page) heap->direct[page->cls] = &hk_page_empty;
    if (hk_config_stats) hk_counter_add(&heap->counters.nflushes[page->cls], 1);
    forget_segment(heap, hk_segment_of(page));
    hk_arena_page_free(hk_segment_of(page)->arena, page);
}

/* tcache_max[c]: free blocks a heap keeps in empty pages of class c before
 * it hands further empty pages back to the arena (the current page is kept
 * regardless).  0 stored means "default": one page of at most 64 KiB,
 * enough to absorb a working set swinging across a page boundary without
 * holding megabytes per thread in the large classes (or HAKMEM_CONF's
 * tcache_max:CLASS=N; the learner moves it in learning mode). */
static _Atomic uint64_t tcache_max[HK_NCLASSES]; /* value + 1; 0: default */

#define HK_KEEP_EMPTY_BYTES (64u << 10)

static unsigned blocks_per_page(unsigned cls) {
    return (unsigned)(hk_class_slices[cls] * HK_SLICE_SIZE / hk_class_size[cls]);
}

unsigned hk_tcache_max_default(unsigned cls) {
    size_t page_bytes = hk_class_slices[cls] * HK_SLICE_SIZE;
    size_t pages = HK_KEEP_EMPTY_BYTES / page_bytes;
    return blocks_per_page(cls) * (unsigned)(pages > 2 ? 2 : pages);
}

/* tcache_max[c] into *out when it was set (ctl, HAKMEM_CONF, the learner). */
static bool tcache_max_set_value(unsigned cls, unsigned *out) {
    uint64_t m = hk_load_relaxed(&tcache_max[cls]);
    if (m != 0) *out = (unsigned)(m - 1);
    else if (hk_opt.tcache_max[cls] != 0) *out = hk_opt.tcache_max[cls] - 1; /* HAKMEM_CONF */
    return m != 0 || hk_opt.tcache_max[cls] != 0;
}

unsigned hk_tcache_max_get(unsigned cls) {
    unsigned m;
    return tcache_max_set_value(cls, &m) ? m : hk_tcache_max_default(cls);
}

/* ---- the adaptive keep ----
 * A heap that hands a page of class c back and fetches one again within
 * HK_KEEP_CHURN_WINDOW slow paths is churning pages through the arena (a
 * burst of one size larger than what it keeps: each page a lock, a span
 * search and a re-carve).  It then keeps more of that class, doubling
 * keep_boost[c] (at most HK_KEEP_BOOST_CLASS_BYTES of the class, at most
 * HK_KEEP_BOOST_BYTES in all); every trim halves the boosts, so a class
 * that stopped churning goes back to the default.  Only where tcache_max
 * is the default and the learner is off: a value set by hand or by the
 * learner is kept to, and the learner sees the churn it acts on. */
#define HK_KEEP_CHURN_WINDOW 64
#define HK_KEEP_BOOST_CLASS_BYTES ((size_t)2 << 20)
#define HK_KEEP_BOOST_BYTES ((size_t)4 << 20)

static unsigned keep_max(hk_heap *heap, unsigned cls);

/* The one-block cache's bound for cls follows the class's keep. */
static void bcache_cap_update(hk_heap *heap, unsigned cls) {
    if (!hk_bcache_class(cls)) return;
    unsigned keep = keep_max(heap, cls);
    heap->bcache_cap[cls - HK_BCACHE_FIRST] = (uint8_t)(keep < HK_BCACHE_MAX ? keep : HK_BCACHE_MAX);
}

static void bcache_caps_update(hk_heap *heap) {
    for (unsigned c = HK_BCACHE_FIRST; c <= HK_BCACHE_LAST; c++) bcache_cap_update(heap, c);
}

static void keep_boost_set(hk_heap *heap, unsigned cls, uint32_t blocks) {
    size_t bs = hk_class_size[cls];
    heap->boost_bytes = heap->boost_bytes - heap->keep_boost[cls] * bs + blocks * bs;
    heap->keep_boost[cls] = blocks;
    bcache_cap_update(heap, cls);
}

/* find_page is about to fetch a page of cls from the arena. */
static void note_refetch(hk_heap *heap, unsigned cls) {
    uint64_t at = heap->released_at[cls];
    if (at == 0 || heap->slow_count + 1 - at > HK_KEEP_CHURN_WINDOW) return;
    if (hk_feature_on(HK_FEAT_LEARNER)) return; /* the learner sets tcache_max itself */
    size_t bs = hk_class_size[cls];
    uint64_t want = heap->keep_boost[cls] != 0 ? 2 * (uint64_t)heap->keep_boost[cls] : blocks_per_page(cls);
    uint64_t room = (HK_KEEP_BOOST_BYTES - heap->boost_bytes) / bs + heap->keep_boost[cls];
    if (want > HK_KEEP_BOOST_CLASS_BYTES / bs) want = HK_KEEP_BOOST_CLASS_BYTES / bs;
    if (want > room) want = room;
    if (want > heap->keep_boost[cls]) keep_boost_set(heap, cls, (uint32_t)want);
}

static void keep_boost_halve(hk_heap *heap) {
    if (heap->boost_bytes == 0) return;
    for (unsigned c = 0; c < HK_NCLASSES; c++)
        if (heap->keep_boost[c] != 0) keep_boost_set(heap, c, heap->keep_boost[c] / 2);
}

/* Free blocks the heap keeps in empty pages of cls. */
static unsigned keep_max(hk_heap *heap, unsigned cls) {
    unsigned m;
    return tcache_max_set_value(cls, &m) ? m : hk_tcache_max_default(cls) + heap->keep_boost[cls];
}

void hk_tcache_max_set(unsigned cls, unsigned blocks) {
    hk_store_relaxed(&tcache_max[cls], (uint64_t)blocks + 1);
}

/* Blocks of cls in the one-block cache: they count in the class's keep. */
static unsigned cached_blocks(const hk_heap *heap, unsigned cls) {
    return hk_bcache_class(cls) ? heap->bcache_n[cls - HK_BCACHE_FIRST] : 0;
}

static bool keeps_enough_empty(hk_heap *heap, hk_page *page) {
    unsigned kept = cached_blocks(heap, page->cls), max = keep_max(heap, page->cls);
    /* Even if every page of the queue were empty it would not be too many:
     * no walk (a large tcache_max, as the learner sets, keeps many). */
    if (heap->queue[page->cls].count * page->reserved + kept <= max) return false;
    for (hk_page *p = heap->queue[page->cls].first; p != NULL; p = p->next) {
        if (p == page || p->used != 0) continue;
        kept += p->reserved;
        if (kept + page->reserved > max) return true;
    }
    return kept + page->reserved > max;
}

void hk_heap_page_emptied(hk_heap *heap, hk_page *page) {
    if (page->in_full & HK_PAGE_FULL) page_unfull(heap, page);
    if (page->used == 0 && heap->direct[page->cls] != page && keeps_enough_empty(heap, page)) {
        page_release(heap, page);
        if (!heap->shared) hk_decay_tick(); /* no lock held: may start the decay thread */
    }
}

/* hk_heap_free_local_slow for the other cases: a page of the queue, a
 * page still holding blocks, a marked or cached page. */
static __attribute__((noinline)) void free_local_slow_rest(hk_heap *heap, hk_page *page) {
    if (hk_unlikely(page->in_full & (HK_PAGE_CACHED | HK_PAGE_SAMPLED))) {
        if (page->in_full & HK_PAGE_CACHED) {
            hk_bcache_double_free(page, page->local_free, true);
            return;
        }
        hk_sample_local_free(page, page->local_free); /* may unmark the page */
        /* Unmarked, the page is left as the fast path leaves it (the
         * class's current page keeps its emptied block on local_free). */
        if (page->in_full == 0 && (page->used != 0 || heap->direct[page->cls] == page)) return;
    }
    if (page->used == 0 && (page->in_full == HK_PAGE_FULL ? hk_bcache_put_full(heap, page)
                                                          : hk_bcache_put_queued(heap, page)))
        return;
    hk_heap_page_emptied(heap, page);
}

/* A local free left the page empty or found it in the full list (or in
 * the one-block cache: a double free).  The emptied page of the full list
 * first, with no frame: a burst of large blocks frees them all this way
 * into the one-block cache. */
void hk_heap_free_local_slow(hk_heap *heap, hk_page *page) {
    if (page->in_full == HK_PAGE_FULL && page->used == 0) {
        if (hk_bcache_put_full(heap, page)) return;
        hk_heap_page_emptied(heap, page);
        return;
    }
    free_local_slow_rest(heap, page);
}

static void local_free_block(hk_heap *heap, hk_page *page, hk_block *b) {
    hk_block_set_next(b, page->local_free);
    page->local_free = b;
    page->used--;
    if (page->in_full & HK_PAGE_FULL) page_unfull(heap, page);
}

/* Takes the blocks that remote frees handed over for full pages. */
void hk_heap_collect_delayed(hk_heap *heap) {
    uintptr_t list = hk_exchange_acq_rel(&heap->delayed, 0);
    hk_block *b = (hk_block *)list;
    while (b != NULL) {
        hk_block *next = hk_block_next(b); /* blocks of many pages */
        if (hk_unlikely(next != NULL && !hk_segmap_has(next))) {
            hk_report_corrupt_list(NULL, b, next);
            next = NULL;
        }
        hk_segment *seg = hk_segment_of(b);
        hk_page *page = hk_page_of(seg, b);
        hk_assert(hk_load_relaxed(&page->heap) == heap);
        if (hk_unlikely(page->in_full & HK_PAGE_CACHED)) hk_bcache_double_free(page, b, false);
        else local_free_block(heap, page, b);
        b = next;
    }
}

static hk_page *page_ready(hk_heap *heap, hk_page *page) {
    hk_page_check_head(page);
    if (page->free == NULL) hk_page_collect(page);
    if (page->free == NULL) hk_page_extend(page);
    return page->free != NULL ? page : NULL;
}

/* Walks the class queue for a page with a free block, detaching full ones. */
static hk_page *find_in_queue(hk_heap *heap, unsigned cls) {
    hk_page *page = heap->queue[cls].first;
    while (page != NULL) {
        hk_page *next = page->next;
        if (page_ready(heap, page) != NULL) return page;
        page_to_full(heap, page);
        if (!(page->in_full & HK_PAGE_FULL) && page_ready(heap, page) != NULL) return page;
        page = next;
    }
    return NULL;
}

static hk_page *find_page(hk_heap *heap, unsigned cls) {
    hk_page *page = heap->direct[cls];
    if (page != &hk_page_empty && page_ready(heap, page) != NULL) return page;
    if (hk_load_relaxed(&heap->delayed) != 0) hk_heap_collect_delayed(heap);
    page = find_in_queue(heap, cls);
    if (page != NULL) return page;
    note_refetch(heap, cls);
    /* The debug heap adopts nothing: its pages hold checked blocks only. */
    while (!heap->debug && (page = hk_arena_adopt_page(heap->arena, heap, cls)) != NULL) {
        hk_page_queue_push(&heap->queue[cls], page);
        if (page_ready(heap, page) != NULL) return page;
        page_to_full(heap, page);
    }
    page = hk_arena_page_alloc(heap->arena, heap, cls);
    if (page == NULL) return NULL;
    if (heap->debug) hk_debug_page_fresh(page);
    hk_page_queue_push(&heap->queue[cls], page);
    hk_page_extend(page);
    HK_VALIDATE(1, hk_page_is_valid(page, (int)hk_opt.validate));
    return page;
}


/* The periodic jobs (not for a shared heap: it ticks after its lock,
 * shared.c) and, one time in HK_TRIM_EVERY / HK_TICK_EVERY, the trim. */
HK_SLOW_PATH void hk_heap_slow_chores(hk_heap *heap, uint64_t n) {
    if (!heap->shared) hk_periodic_tick(heap);
    if (hk_unlikely(n % HK_TRIM_EVERY == 1)) hk_heap_trim(heap);
}

/* A block from a page found or made for cls, which becomes the current one. */
static __attribute__((noinline)) void *malloc_from_page(hk_heap *heap, unsigned cls) {
    hk_page *page = find_page(heap, cls);
    if (page == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    heap->direct[cls] = page;
    hk_block *b = hk_page_pop_checked(page); /* page_ready checked the head */
    if (hk_config_stats) {
        hk_counter_add(&heap->counters.nmalloc[cls], 1);
        hk_counter_add(&heap->counters.nslow[cls], 1);
        hk_counter_add(&heap->counters.nrefills[cls], 1);
    }
    hk_sample_list_installed(heap, cls);
    return b;
}

/* The chores; then the one-block cache (a burst of large blocks lives
 * there), then a page. */
void *hk_heap_malloc_slow(hk_heap *heap, unsigned cls) {
    HK_VALIDATE(1, hk_heap_is_valid(heap, (int)hk_opt.validate));
    hk_heap_count_slow_path(heap);
    hk_block *cached = hk_bcache_take(heap, cls);
    if (cached != NULL) return hk_bcache_counted(heap, cls, cached);
    return malloc_from_page(heap, cls);
}

static void abandon_queue(hk_heap *heap, hk_page_queue *q) {
    hk_page *page;
    while ((page = q->first) != NULL) {
        hk_page_queue_remove(q, page);
        hk_page_set_in_full(page, page->in_full & ~HK_PAGE_FULL);
        hk_page_collect(page);
        if (page->used == 0) {
            if (hk_config_stats) hk_counter_add(&heap->counters.nflushes[page->cls], 1);
            hk_arena_page_free(hk_segment_of(page)->arena, page);
        } else {
            hk_arena_abandon_page(hk_segment_of(page)->arena, page);
        }
    }
}

/* The thread is exiting: empty pages go back to the arena, the others are
 * abandoned to it for adoption.  No remote freer touches this heap after. */
void hk_heap_abandon(hk_heap *heap) {
    hk_remote_run_flush(heap);
    hk_bcache_give_back(heap, true); /* emptied pages: released, or freed below */
    hk_heap_forget_segments(heap);
    for (hk_page *p = heap->full.first; p != NULL; p = p->next) page_clear_full_state(p);
    hk_heap_collect_delayed(heap);
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        abandon_queue(heap, &heap->queue[c]);
        heap->direct[c] = &hk_page_empty;
    }
    abandon_queue(heap, &heap->full);
}

/* Takes in remote frees everywhere and hands empty pages back: all of them
 * (thread.tcache.flush), or those beyond each class's tcache_max (a
 * periodic trim, so classes the program stopped using give their pages
 * back even when no local free ever empties them). */
static void release_empty_pages(hk_heap *heap, bool all) {
    if (hk_load_relaxed(&heap->delayed) != 0) hk_heap_collect_delayed(heap);
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        hk_page *page = heap->queue[c].first;
        while (page != NULL) {
            hk_page *next = page->next;
            hk_page_collect(page);
            if (page->used == 0 && (all || (heap->direct[c] != page && keeps_enough_empty(heap, page))))
                page_release(heap, page);
            page = next;
        }
    }
}

void hk_heap_flush(hk_heap *heap) {
    hk_remote_run_flush(heap);
    hk_bcache_give_back(heap, true);
    release_empty_pages(heap, true);
}

void hk_heap_trim(hk_heap *heap) {
    hk_remote_run_flush(heap);
    keep_boost_halve(heap);
    bcache_caps_update(heap); /* tcache_max may have moved */
    hk_bcache_give_back(heap, false);
    release_empty_pages(heap, false);
}
