/*
 * The core's private declarations, shared by its files only (check-layers
 * refuses this header outside src/core/): the data structures' helpers,
 * the encoded free lists, segments, pages, arenas, heaps, huge blocks, the
 * checked heap, bootstrap and fork.  What the core offers the layers above
 * is in core/core.h.
 */
#ifndef HK_CORE_INTERNAL_H
#define HK_CORE_INTERNAL_H

#include "core/core.h"

#pragma GCC visibility push(hidden)
static inline hk_segment *hk_segment_of(const void *p) {
    return (hk_segment *)((uintptr_t)p & ~HK_SEG_MASK);
}

/* The page owning p (p inside a small segment). */
static inline hk_page *hk_page_of(hk_segment *seg, const void *p) {
    hk_page *page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> HK_SLICE_SHIFT];
    return (hk_page *)((uint8_t *)page - page->slice_back);
}

/* ---- encoded free lists (init.c sets the key once, before any page) ----
 *
 * Invariant: a page's free list head (page->free) is the decoded link of
 * the last block popped and is NOT trusted until checked: every pop first
 * tests that the head lies in the page's own segment (NULL fails the same
 * test, so the fast path pays one branch for both).  A forged or corrupted
 * link is reported and the rest of the list dropped; it is never read.
 * local_free and the remote list hold pointers free() checked. */
extern uintptr_t hk_list_key;

static inline hk_block *hk_block_next(const hk_block *b) {
#if HK_CHECK_LIST
    return (hk_block *)(b->enc_next ^ hk_list_key);
#else
    return (hk_block *)b->enc_next;
#endif
}
static inline void hk_block_set_next(hk_block *b, const hk_block *next) {
#if HK_CHECK_LIST
    b->enc_next = (uintptr_t)next ^ hk_list_key;
#else
    b->enc_next = (uintptr_t)next;
#endif
}
/* b may be popped from page's list: it lies in the page's segment. */
static inline bool hk_block_in_page_segment(const hk_page *page, const hk_block *b) {
#if HK_CHECK_LIST
    return (((uintptr_t)b ^ (uintptr_t)page) >> HK_SEG_SHIFT) == 0;
#else
    return b != NULL;
#endif
}
/* A page's blocks all lie in one segment: a link leaving it was corrupted
 * (or forged).  NULL also "leaves": callers test it second, off the hot
 * path. */
static inline bool hk_next_leaves_segment(const hk_block *b, const hk_block *next) {
    return HK_CHECK_LIST && (((uintptr_t)b ^ (uintptr_t)next) >> HK_SEG_SHIFT) != 0;
}
/* report.c: one line on stderr (what, pointer, class, thread); aborts when
 * abort_on_error is set.  page may be NULL. */
void hk_report_corrupt_list(hk_page *page, const hk_block *b, const hk_block *next);
void hk_report_corrupt_head(hk_page *page, const hk_block *head);
void hk_report(const char *what, const void *p, const hk_page *page, const char *detail);
void hk_report_ignored(const char *what, const void *p, const hk_page *page);
void hk_list_key_init(void);
/* checked.c: the debug checks' heap and the recent-events ring */
void hk_debug_event_report(const char *what, const void *p, unsigned cls);
bool hk_debug_free(hk_page *page, void *p); /* true: handled */
void hk_debug_page_fresh(hk_page *page);     /* the debug heap took a page */
void hk_debug_fork_child(void);              /* the events' cached thread id */
void *hk_debug_malloc(size_t size);
size_t hk_debug_usable(hk_page *page, const void *p);
uint8_t *hk_canary_first_bad(uint8_t *c, uint8_t *end, uint8_t canary);

/* guard.c: debug checks' guarded blocks, their mappings kept for reuse */
void *hk_guard_alloc(size_t size);
bool hk_guard_free(hk_segment *h); /* huge.c's free: true when kept */

/* shared.c: the arena's shared heaps (tcache off; debug checks) */
hk_heap *hk_shared_heap_locked(hk_arena *a, bool debug);
void *hk_shared_malloc(unsigned cls, bool debug);
/* Pops a block of class cls from h, which the caller holds alone (its lock,
 * or a thread's own heap); *slow: it took the heap's slow path. */
void *hk_shared_pop_locked(hk_heap *h, unsigned cls, bool *slow);

/* First block of a page: its span starts at its slice. */
static inline uint8_t *hk_page_start(hk_page *page) {
    hk_segment *seg = hk_segment_of(page);
    return (uint8_t *)seg + (size_t)(page - seg->pages) * HK_SLICE_SIZE;
}

/* ---- mode.c: the features in force now ---- */
void hk_mode_init(void);

/* ---- segment.c (callers hold seg->arena->lock) ---- */
hk_segment *hk_segment_alloc(struct hk_arena *arena);
void hk_segment_free(hk_segment *seg);
/* decay.c: the thread that purges what has aged in a quiet process */
void hk_decay_tick(void);       /* from hk_periodic_tick: starts it once needed */
/* Memory handed back: wakes the thread if it sleeps with nothing to do,
 * or, when urgent (slices of an arena, a cache over its capacity), also
 * from its slow wait on mappings within the BigCache's capacity. */
void hk_decay_note_dirty(bool urgent);
/* The decay thread's slow cadence while the BigCache holds only mappings
 * within its capacity; a cache that held one this recently still counts
 * as holding (hk_bigcache_state). */
#define HK_DECAY_SLOW_STEP_MS 1000
void hk_decay_fork_child(void);
/* huge.c, without the lock: the BigCache is empty, holds mappings within its
 * capacity (they go once idle 10 s), or more (the overflow goes after the
 * decay time). */
enum { HK_BC_EMPTY, HK_BC_HOLDS, HK_BC_OVER };
unsigned hk_bigcache_state(void);
void hk_bigcache_trim(void);
int hk_segment_span_alloc(hk_segment *seg, unsigned nslices, bool resident_only, bool *is_zero);
void hk_segment_span_free(hk_segment *seg, unsigned idx, unsigned nslices,
                          uint64_t now);
size_t hk_segment_purge(hk_segment *seg, uint64_t now, int64_t decay_ms);
bool hk_segment_all_aged(const hk_segment *seg, uint64_t now, int64_t decay_ms);
static inline bool hk_segment_is_empty(const hk_segment *seg) {
    return seg->free_mask == (((uint32_t)-1) & ~1u);
}

/* ---- page.c ---- */
extern hk_page hk_page_empty;
void hk_page_init(hk_segment *seg, unsigned idx, unsigned nslices,
                  unsigned cls, bool is_zero);
void hk_page_extend(hk_page *page);
void hk_page_collect(hk_page *page);
void hk_page_drop_bad_head(hk_page *page);
/* Slow paths, before trusting page->free (see "encoded free lists"): a
 * head that fails the check is reported and dropped. */
static inline void hk_page_check_head(hk_page *page) {
    if (hk_unlikely(page->free != NULL && !hk_block_in_page_segment(page, page->free)))
        hk_page_drop_bad_head(page);
}
/* Pops the head of a page whose head was checked (hk_page_check_head, or
 * just set by collect or extend). */
static inline hk_block *hk_page_pop_checked(hk_page *page) {
    hk_block *b = page->free;
    page->free = hk_block_next(b);
    page->used++;
    return b;
}
void hk_page_queue_push(hk_page_queue *q, hk_page *page);
void hk_page_queue_append(hk_page_queue *q, hk_page *page);
void hk_page_queue_remove(hk_page_queue *q, hk_page *page);

/* ---- arena.c ---- */
void hk_arenas_init(unsigned n);
hk_arena *hk_arena_next_for_thread(void);
hk_page *hk_arena_page_alloc(hk_arena *arena, hk_heap *heap, unsigned cls);
void hk_arena_page_free(hk_arena *arena, hk_page *page);
void hk_arena_abandon_page(hk_arena *arena, hk_page *page);
hk_page *hk_arena_adopt_page(hk_arena *arena, hk_heap *heap, unsigned cls);
void hk_arena_maybe_purge_locked(hk_arena *arena, uint64_t now);
void hk_arenas_lock_shared_all(void);
void hk_arenas_unlock_shared_all(void);
void hk_arenas_lock_all(void);
void hk_arenas_unlock_all(void);
void hk_arenas_reinit_child(void);

/* ---- heap.c ---- */
extern hk_heap hk_heap_empty;
void *hk_heap_malloc_slow(hk_heap *heap, unsigned cls);
/* Every slow path of a thread heap counts; the first and one in
 * HK_TICK_EVERY after it run the periodic jobs and, less often, the trim
 * (heap.c).  Inline for malloc_cached_block (api.c). */
void hk_heap_slow_chores(hk_heap *heap, uint64_t n);
static inline void hk_heap_count_slow_path(hk_heap *heap) {
    uint64_t n = ++heap->slow_count;
    if (hk_unlikely(n % HK_TICK_EVERY == 1)) hk_heap_slow_chores(heap, n);
}
void hk_heap_free_local_slow(hk_heap *heap, hk_page *page);

/* remote.c: frees into pages other threads own.  hk_free_remote_list
 * pushes n blocks linked from head to tail with one CAS (tail's link is
 * set there).  hk_remote_run_add: a free into a page other than the last
 * one goes out at once (and pushes the run); the next ones in a row into
 * that page are chained in the run, pushed when it holds HK_RUN_BYTES and
 * at the heap's trim, flush and abandon; a block over half of
 * HK_RUN_BYTES always goes out alone.  It answers false, and takes
 * nothing, for a block freed twice in a row (a double free). */
#define HK_RUN_BYTES 4096u
void hk_free_remote_list(hk_page *page, hk_block *head, hk_block *tail, uint32_t n);
static inline void hk_free_remote(hk_page *page, hk_block *b) { hk_free_remote_list(page, b, b, 1); }
void hk_remote_run_flush(hk_heap *heap);
bool hk_remote_run_start(hk_heap *heap, hk_page *page, hk_block *b);
static inline bool hk_remote_run_add(hk_heap *heap, hk_page *page, hk_block *b) {
    hk_remote_run *run = &heap->run;
    if (hk_likely(run->page != page)) { /* b goes out alone: its page is noted */
        if (run->n != 0) hk_remote_run_flush(heap);
        run->page = page;
        hk_free_remote(page, b);
        return true;
    }
    if (hk_likely(run->n != 0)) { /* a run's page: blocks up to HK_RUN_BYTES / 2 */
        if (hk_unlikely(b == run->head)) return false;
        hk_block_set_next(b, run->head);
        run->head = b;
        if (++run->n * page->block_size >= HK_RUN_BYTES) hk_remote_run_flush(heap);
        return true;
    }
    return hk_remote_run_start(heap, page, b);
}
void hk_heap_init(hk_heap *heap, hk_arena *arena, bool shared);
void hk_heap_forget_segments(hk_heap *heap);
/* The entry of heap's owned-segment cache that may name the segment of p
 * (a block or the segment itself). */
static inline hk_segment **hk_heap_owned_slot(hk_heap *heap, const void *p) {
    return &heap->owned_segs[((uintptr_t)p >> HK_SEG_SHIFT) % HK_OWNED_SEGS];
}
void hk_heap_abandon(hk_heap *heap);
void hk_heap_trim(hk_heap *heap);
void hk_heap_collect_delayed(hk_heap *heap);

/* heap.c: a page that left the full list or emptied goes back to its
 * queue, and to the arena beyond the class's keep. */
void hk_heap_page_emptied(hk_heap *heap, hk_page *page);

/* ---- bcache.c: the one-block cache (owner only) ---- */
/* cls is one of its classes (one block a page, 40 KiB to 896 KiB). */
static inline bool hk_bcache_class(unsigned cls) { return cls >= HK_BCACHE_FIRST && cls <= HK_BCACHE_LAST; }
bool hk_bcache_put_queued(hk_heap *heap, hk_page *page); /* true: the page is cached */
void hk_bcache_double_free(hk_page *page, void *p, bool pushed);
/* Hands cached pages back beyond each class's bound (all: every one). */
void hk_bcache_give_back(hk_heap *heap, bool all);

/* ---- huge.c ---- */
void *hk_huge_alloc(size_t size, size_t align, bool zero);
void hk_huge_free(hk_segment *hdr);
hk_segment *hk_huge_header_aligned(const void *p); /* p at offset 0, or NULL */
void *hk_huge_realloc(hk_segment *hdr, size_t size);
void *hk_huge_alloc_guarded(size_t size);
void *hk_huge_guarded_reuse(hk_segment *h, uint8_t *user);
void hk_huge_lock(void);
void hk_huge_unlock(void);
void hk_huge_reinit_child(void);

/* ---- init.c ---- */
extern _Thread_local hk_heap *hk_tls_heap;   /* fast path heap */
hk_heap *hk_thread_heap_slow(void);
extern _Thread_local bool hk_tls_tcache_off; /* thread.tcache set to 0 for this thread */
/* The thread allocates from a heap of its own: thread caches on for it and
 * for the process, the debug checks off (inline: every malloc slow path). */
static inline bool hk_thread_tcache_wanted(void) {
    return !hk_tls_tcache_off && hk_feature_on(HK_FEAT_TCACHE) && !hk_feature_on(HK_FEAT_DEBUG_CHECKS);
}
extern pthread_mutex_t hk_heaps_lock;
extern hk_heap *hk_heaps_all;
extern hk_class_counters hk_dead_counters;
extern _Atomic uint64_t hk_dead_allocated, hk_dead_deallocated;
void hk_init_lock_for_fork(void);
void hk_init_unlock_for_fork(void);
void hk_init_reinit_child(void);

/* ---- fork.c ---- */
void hk_fork_install(void);

/* ---- api.c ---- */
size_t hk_usable_size_impl(const void *p);
/* What malloc_slow does for a thread heap whose thread cache is wanted. */
void *hk_malloc_thread_slow(hk_heap *heap, unsigned cls, size_t size);

/* ---- sample.c ---- */
extern _Atomic uint32_t hk_sample_state; /* 0: profiling never turned on */
void *hk_sample_malloc(hk_heap *heap, unsigned cls, size_t size);
/* A thread heap handed out p, the block of cls due for a sample, from its
 * one-block cache (counted already): recorded, the next point drawn. */
void *hk_sample_took_due(hk_heap *heap, unsigned cls, size_t size, void *p);
void hk_sample_arm(hk_heap *heap, unsigned cls);
void hk_sample_huge(hk_segment *h, size_t size);
/* A block of a checked or shared heap (no page mark): returns p, sampled or
 * not (_hit: whether it was, for the checked heaps' trailer mark); its free
 * (a slow path) calls hk_sample_unmarked_free: every free of a shared
 * heap's block, a checked block's when its trailer is marked. */
void *hk_sample_unmarked(void *p, size_t size, size_t usable);
bool hk_sample_unmarked_hit(void *p, size_t size, size_t usable); /* true: recorded */
void hk_sample_unmarked_free(void *p);
void hk_sample_local_free(hk_page *page, void *p);
void hk_sample_remote_free(hk_segment *seg, hk_page *page, void *p);
void hk_sample_huge_free(hk_segment *h);
/* -ln(r / 2^64), the draws' exponential (r's low bit ignored); once
 * profiling has been switched on (its table is filled then). */
double hk_sample_neg_ln_unit(uint64_t r);
/* hk_page.in_full: bit 0 the page sits in its heap's full list, bit 1 it
 * may hold sampled blocks (core/sample.c), bit 2 it is a one-block page in
 * its heap's block cache (bcache.c; then bit 0 too, no other).  Owner-written;
 * non-zero sends the owner's frees to hk_heap_free_local_slow. */
#define HK_PAGE_FULL 1
#define HK_PAGE_SAMPLED 2
#define HK_PAGE_CACHED 4
/* in_full as another thread reads it (relaxed: the owner writes it). */
static inline unsigned hk_page_marks(const hk_page *page) {
    return __atomic_load_n(&page->in_full, __ATOMIC_RELAXED);
}
static inline bool hk_page_has_samples(const hk_page *page) { return (hk_page_marks(page) & HK_PAGE_SAMPLED) != 0; }
static inline bool hk_page_is_cached(const hk_page *page) { return (hk_page_marks(page) & HK_PAGE_CACHED) != 0; }
/* The owner's writes of in_full: relaxed atomic stores, since remote frees
 * read it (hk_page_has_samples); the owner's own reads stay plain. */
static inline void hk_page_set_in_full(hk_page *page, unsigned v) {
    __atomic_store_n(&page->in_full, (uint8_t)v, __ATOMIC_RELAXED);
}

/* The blocks of cls the heap hands out before the one due for a sample. */
static inline uint64_t hk_sample_keep(const hk_heap *heap, unsigned cls) {
    uint64_t n = hk_load_relaxed(&heap->counters.nmalloc[cls]), due = heap->prof_due[cls];
    return due > n ? due - n - 1 : 0;
}

/* page's lists may hold the block of cls due for a sample: |free| +
 * |local_free| = capacity - used bounds them, and most end before it. */
static inline bool hk_sample_room_past_due(const hk_heap *heap, const hk_page *page, unsigned cls) {
    return (uint64_t)(page->capacity - page->used) > hk_sample_keep(heap, cls);
}

/* The current page of cls, its list just taken or installed, has something
 * for hk_sample_arm: a mark it may lose, or a list that may hold the block
 * due.  A one-block page, its block taken, has neither. */
static inline bool hk_sample_arm_wanted(const hk_heap *heap, const hk_page *page, unsigned cls) {
    if (page->in_full & HK_PAGE_SAMPLED) return true;
    return page->free != NULL && hk_sample_room_past_due(heap, page, cls);
}

/* The next block of cls holds the heap's sample point for the class. */
static inline bool hk_sample_due(const hk_heap *heap, unsigned cls) {
    return hk_load_relaxed(&heap->counters.nmalloc[cls]) + 1 >= heap->prof_due[cls];
}

/* hk_heap_malloc_slow installed a page with a list for the fast path
 * (hk_sample_malloc arms the list of local frees it takes). */
static inline void hk_sample_list_installed(hk_heap *heap, unsigned cls) {
    if (hk_unlikely(hk_load_relaxed(&hk_sample_state) & 1) && hk_sample_arm_wanted(heap, heap->direct[cls], cls))
        hk_sample_arm(heap, cls);
}

/* page (of the one-block class HK_BCACHE_FIRST + r, its block freed by its
 * owner) joins the cache; bcache.c has the invariant. */
static inline void hk_bcache_keep(hk_heap *heap, hk_page *page, unsigned r) {
    page->local_free = NULL;
    page->used = 1;
    hk_page_set_in_full(page, HK_PAGE_FULL | HK_PAGE_CACHED);
    heap->bcache[r][heap->bcache_n[r]++] = page;
}

/* The owner freed the block of page, a page of the full list (pushed on
 * local_free, used 0): kept if it is a one-block page and the cache has
 * room; true if it was.  The common case, inline on the owner's free
 * path (a page of its class queue: hk_bcache_put_queued). */
static inline bool hk_bcache_put_full(hk_heap *heap, hk_page *page) {
    unsigned cls = page->cls, r = cls - HK_BCACHE_FIRST;
    if (!hk_bcache_class(cls) || page->reserved != 1 || heap->shared || heap->debug ||
        heap->bcache_n[r] >= heap->bcache_cap[r] ||
        (hk_load_relaxed(&page->xthread_free) & HK_TF_MASK) != HK_TF_FULL)
        return false;
    hk_bcache_keep(heap, page, r);
    return true;
}

/* The cache's last page of class cls (a one-block class whose cache is
 * not empty): its block. */
static inline void *hk_bcache_pop(hk_heap *heap, unsigned cls) {
    unsigned r = cls - HK_BCACHE_FIRST;
    hk_page *page = heap->bcache[r][--heap->bcache_n[r]];
    hk_page_set_in_full(page, HK_PAGE_FULL);
    return hk_page_start(page);
}

/* A block of class cls from the cache, or NULL: its page, in the full list
 * all along, is full again (bcache.c has the invariant). */
static inline void *hk_bcache_take(hk_heap *heap, unsigned cls) {
    if (!hk_bcache_class(cls) || heap->bcache_n[cls - HK_BCACHE_FIRST] == 0) return NULL;
    return hk_bcache_pop(heap, cls);
}

/* A block the cache handed out, counted as a slow path's. */
static inline void *hk_bcache_counted(hk_heap *heap, unsigned cls, void *b) {
    if (hk_config_stats) {
        hk_counter_add(&heap->counters.nmalloc[cls], 1);
        hk_counter_add(&heap->counters.nslow[cls], 1);
    }
    return b;
}

/* ---- valid.c: the invariants of core_types.h, checked ----
 * HK_VALIDATE(level, check) asserts check in debug builds when the
 * validate option is at least level (1 by default there); release builds
 * compile it out.  hk_nvalidated counts the checks run (debug.validated.*). */
bool hk_page_is_valid(const hk_page *page, int level);
bool hk_heap_is_valid(const hk_heap *heap, int level);
bool hk_segment_is_valid(const hk_segment *seg);
bool hk_huge_is_valid(const hk_segment *h);
#if HK_DEBUG
#define HK_VALIDATE(level, check) \
    do { if (hk_opt.validate >= (level)) hk_assert(check); } while (0)
#else
#define HK_VALIDATE(level, check) ((void)0)
#endif

/* ---- stats.c ---- */
void hk_stats_fold_heap(hk_heap *heap);


#pragma GCC visibility pop

#endif
