/*
 * Internal API: inline helpers used by the fast paths, then the cross-file
 * prototypes grouped by the file that defines them.  Layering (who calls
 * whom) is in src/README.md.
 */
#ifndef HK_INTERNAL_H
#define HK_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "hk_atomic.h"
#include <hk_config.h>
#include "hk_types.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)

#define hk_likely(x) __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define HK_FAST_PATH static inline __attribute__((always_inline))
#define HK_SLOW_PATH __attribute__((noinline, cold))
#define HK_INTERNAL __attribute__((visibility("hidden")))

#if HK_DEBUG
#define hk_assert(c) ((c) ? (void)0 : hk_assert_fail(#c, __FILE__, __LINE__))
#else
#define hk_assert(c) ((void)0)
#endif

static inline uintptr_t hk_align_up(uintptr_t x, uintptr_t a) {
    return (x + a - 1) & ~(a - 1);
}
/* ---- locks (fork.c keeps them across fork) ----
 * Every allocator lock is taken with hk_lock.  From fork's prepare handler
 * to its parent or child handler the forking thread holds all of them and
 * no other thread can be inside one: that thread's own allocations then
 * (another atfork handler that mallocs) skip them instead of waiting for
 * themselves. */
extern _Thread_local bool hk_tls_holds_all_locks;
static inline void hk_lock(pthread_mutex_t *m) {
    if (hk_likely(!hk_tls_holds_all_locks)) pthread_mutex_lock(m);
}
static inline void hk_unlock(pthread_mutex_t *m) {
    if (hk_likely(!hk_tls_holds_all_locks)) pthread_mutex_unlock(m);
}

static inline bool hk_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* The one bound on what a request may ask for: a size or an alignment
 * beyond 2^56 bytes (the x86-64 user address space, even with 5-level
 * paging) can never be served, so it fails with ENOMEM before any
 * arithmetic; below it, every sum of a size, an alignment and a few 2 MiB
 * headers that the tiers compute fits in a size_t.  Every entry point
 * that can ask for more than HK_LARGE_MAX goes through hk_huge_alloc,
 * which tests it first; the aligned entry points test it before rounding. */
#define HK_REQUEST_MAX ((size_t)1 << 56)
static inline bool hk_request_fits(size_t size, size_t align) {
    return size <= HK_REQUEST_MAX && align <= HK_REQUEST_MAX;
}

static inline hk_segment *hk_segment_of(const void *p) {
    return (hk_segment *)((uintptr_t)p & ~HK_SEG_MASK);
}

/* The page owning p (p inside a small segment). */
static inline hk_page *hk_page_of(hk_segment *seg, const void *p) {
    hk_page *page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> HK_SLICE_SHIFT];
    return page - page->slice_offset;
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
void hk_list_key_init(void);
extern _Atomic uint64_t hk_nreports;
/* debug.c: the recent-events ring */
void hk_debug_event_report(const char *what, const void *p, unsigned cls);
bool hk_debug_free(hk_page *page, void *p); /* true: handled */
void hk_debug_page_fresh(hk_page *page);     /* the debug heap took a page */
void hk_debug_fork_child(void);              /* the events' cached thread id */
void *hk_debug_malloc(size_t size);
void hk_debug_flush_pooled(void);          /* exited threads' debug heaps */
size_t hk_debug_usable(hk_page *page, const void *p);
uint8_t *hk_canary_first_bad(uint8_t *c, uint8_t *end, uint8_t canary);

/* guard.c: debug checks' guarded blocks, their mappings kept for reuse */
void *hk_guard_alloc(size_t size);
bool hk_guard_free(hk_segment *h); /* huge.c's free: true when kept */
#define HK_DEBUG_EVENTS 16
typedef struct hk_debug_event_view {
    const char *what;
    uint64_t ptr, size, tid;
    unsigned cls;
} hk_debug_event_view;
uint64_t hk_debug_nevents(void);
bool hk_debug_event(unsigned i, hk_debug_event_view *out);

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

/* ---- sizeclass.c ---- */
extern const uint8_t hk_class_small[129];
extern const uint32_t hk_class_size[HK_NCLASSES];
extern const uint8_t hk_class_slices[HK_NCLASSES];
extern const uint64_t hk_class_divmagic[HK_NCLASSES];
int hk_sizeclass_check(void);
unsigned hk_size_class_slow(size_t size); /* size in (1 KiB, 1 MiB] */

/* Size class of size (<= HK_LARGE_MAX). */
HK_FAST_PATH unsigned hk_size_class(size_t size) {
    if (hk_likely(size <= HK_TINY_MAX)) return hk_class_small[(size + 7) >> 3];
    return hk_size_class_slow(size);
}
static inline const char *hk_class_tier(unsigned cls) {
    return cls < HK_TINY_NCLASSES ? "tiny"
         : cls < HK_TINY_NCLASSES + HK_MID_NCLASSES ? "mid" : "large";
}

/* ---- msg.c: messages that never allocate ---- */
void hk_write_stderr(const char *s);
void hk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hk_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hk_assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));

/* ---- os.c: the OS primitives (see os.c for pre/post-conditions) ---- */
void *hk_os_map(size_t size);
void *hk_os_map_aligned(size_t size, size_t align, void **base, size_t *mapped);
void hk_os_unmap(void *p, size_t size);
void hk_os_purge(void *p, size_t size);
void hk_os_hugepage(void *p, size_t size);
uint64_t hk_os_now_ms(void);
size_t hk_os_resident(void);
unsigned hk_os_ncpus(void);
extern _Atomic uint64_t hk_os_nmmap, hk_os_nmunmap;
void hk_os_note_unmapped(const void *p, size_t size); /* for hk_os_unmapped_find */
bool hk_os_unmapped_find(const void *p, uintptr_t *start, size_t *size);

/* ---- segmap.c: is this 2 MiB chunk ours? ---- */
#define HK_ADDR_BITS 47
#define HK_SEGMAP_WORDS (((size_t)1 << (HK_ADDR_BITS - HK_SEG_SHIFT)) / 64)
extern _Atomic uint64_t hk_segmap_bits[HK_SEGMAP_WORDS];
/* Addresses above 2^47 (never user space) alias lower ones: no range test
 * on the free path. */
static inline bool hk_segmap_has(const void *p) {
    size_t i = ((uintptr_t)p >> HK_SEG_SHIFT) & (HK_SEGMAP_WORDS * 64 - 1);
    return (hk_load_relaxed(&hk_segmap_bits[i / 64]) >> (i % 64)) & 1;
}
void hk_segmap_set(const void *chunk);
void hk_segmap_clear(const void *chunk);
bool hk_segmap_contains(const void *p);

/* ---- conf.c ---- */
extern hk_options hk_opt;
void hk_conf_defaults(hk_options *o);
void hk_conf_parse(hk_options *o, const char *conf);
void hk_conf_mode_env(hk_options *o, const char *mode);
const char *hk_mode_name(unsigned mode);
const char *hk_feature_name(unsigned f);
int hk_mode_parse(const char *s, size_t n);
const bool *hk_mode_preset(unsigned mode);

/* ---- mode.c: the features in force now ---- */
extern _Atomic bool hk_features[HK_FEAT_COUNT];
extern _Atomic unsigned hk_mode_now;
static inline bool hk_feature_on(enum hk_feature f) { return hk_load_relaxed(&hk_features[f]); }
void hk_mode_init(void);
int hk_mode_set(unsigned mode);
void hk_feature_set(enum hk_feature f, bool on);

/* ---- meta.c: internal metadata memory, never freed to the OS ---- */
void *hk_meta_alloc(size_t size);
extern _Atomic size_t hk_meta_bytes;
void hk_meta_lock(void);
void hk_meta_unlock(void);
void hk_meta_reinit_child(void);

/* Bits set in x.  Without -mpopcnt, __builtin_popcount is a call into
 * libgcc; the masks counted here are 32 bits. */
static inline unsigned hk_popcount32(uint32_t x) {
#ifdef __POPCNT__
    return (unsigned)__builtin_popcount(x);
#else
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
#endif
}

/* ---- segment.c (callers hold seg->arena->lock) ---- */
hk_segment *hk_segment_alloc(struct hk_arena *arena);
void hk_segment_free(hk_segment *seg);
int hk_segment_span_alloc(hk_segment *seg, unsigned nslices, bool *is_zero);
void hk_segment_span_free(hk_segment *seg, unsigned idx, unsigned nslices,
                          uint64_t now);
size_t hk_segment_purge(hk_segment *seg, uint64_t now, int64_t decay_ms);
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
void hk_page_queue_remove(hk_page_queue *q, hk_page *page);
static inline bool hk_page_has_thread_free(hk_page *page) {
    return hk_tf_ptr(hk_load_relaxed(&page->xthread_free)) != 0;
}

/* ---- arena.c ---- */
extern hk_arena hk_arenas[HK_MAX_ARENAS];
void hk_arenas_init(unsigned n);
hk_arena *hk_arena_next_for_thread(void);
hk_page *hk_arena_page_alloc(hk_arena *arena, hk_heap *heap, unsigned cls);
void hk_arena_page_free(hk_arena *arena, hk_page *page);
void hk_arena_abandon_page(hk_arena *arena, hk_page *page);
hk_page *hk_arena_adopt_page(hk_arena *arena, hk_heap *heap, unsigned cls);
void hk_arena_purge(hk_arena *arena, bool all);
void hk_arena_maybe_purge_locked(hk_arena *arena, uint64_t now);
void hk_arenas_lock_shared_all(void);
void hk_arenas_unlock_shared_all(void);
void hk_arenas_lock_all(void);
void hk_arenas_unlock_all(void);
void hk_arenas_reinit_child(void);

/* ---- heap.c ---- */
extern hk_heap hk_heap_empty;
void *hk_heap_malloc_slow(hk_heap *heap, unsigned cls);
void hk_heap_free_local_slow(hk_heap *heap, hk_page *page);
void hk_free_remote(hk_page *page, hk_block *b);
void hk_heap_init(hk_heap *heap, hk_arena *arena, bool shared);
void hk_heap_forget_segments(hk_heap *heap);
/* The entry of heap's owned-segment cache that may name seg. */
static inline hk_segment **hk_heap_owned_slot(hk_heap *heap, const hk_segment *seg) {
    return &heap->owned_segs[((uintptr_t)seg >> HK_SEG_SHIFT) % HK_OWNED_SEGS];
}
void hk_heap_abandon(hk_heap *heap);
void hk_heap_flush(hk_heap *heap);
void hk_heap_trim(hk_heap *heap);
void hk_heap_collect_delayed(hk_heap *heap);
unsigned hk_tcache_max_get(unsigned cls);
void hk_tcache_max_set(unsigned cls, unsigned blocks);
unsigned hk_tcache_max_default(unsigned cls); /* built in, before conf */

/* ---- huge.c ---- */
void *hk_huge_alloc(size_t size, size_t align, bool zero);
void hk_huge_free(hk_segment *hdr);
hk_segment *hk_huge_header_aligned(const void *p); /* p at offset 0, or NULL */
void *hk_huge_realloc(hk_segment *hdr, size_t size);
void *hk_huge_alloc_guarded(size_t size);
void *hk_huge_guarded_reuse(hk_segment *h, uint8_t *user);
void hk_bigcache_purge(void);
void hk_bigcache_purge_over(void);
void hk_huge_lock(void);
void hk_huge_unlock(void);
void hk_huge_reinit_child(void);
typedef struct hk_huge_stats {
    uint64_t nmalloc, ndalloc, hits, misses, nmmap;
    uint64_t ghost_hits, ghost_bytes; /* misses a bigger cache would have served */
    size_t cur_bytes, cache_bytes, cache_max;
    size_t ncached;
} hk_huge_stats;
void hk_huge_get_stats(hk_huge_stats *out);
void hk_huge_get_stats_lockless(hk_huge_stats *out); /* atomics only (crash.c) */
void hk_bigcache_set_max(size_t bytes);
size_t hk_bigcache_peak_reset(void); /* the learner: most bytes cached since last call */

/* ---- init.c ---- */
extern _Thread_local hk_heap *hk_tls_heap;   /* fast path heap */
extern _Atomic int hk_initialized;
void hk_init_slow(void);
hk_heap *hk_thread_heap_slow(void);
hk_heap *hk_thread_real_heap(void);   /* thread's own heap or NULL */
hk_arena *hk_thread_arena(void);
bool hk_thread_tcache_wanted(void);
void hk_thread_set_tcache(bool on);
bool hk_thread_tcache_enabled(void);
void hk_thread_detach_heap(void);
void hk_thread_set_arena(unsigned i);
uint64_t hk_thread_bytes(bool allocated);
extern pthread_mutex_t hk_heaps_lock;
extern hk_heap *hk_heaps_all;
extern hk_class_counters hk_dead_counters;
extern _Atomic uint64_t hk_dead_allocated, hk_dead_deallocated;
static inline void hk_ensure_init(void) {
    if (hk_unlikely(!hk_load_acquire(&hk_initialized))) hk_init_slow();
}
void hk_init_lock_for_fork(void);
void hk_init_unlock_for_fork(void);
void hk_init_reinit_child(void);

/* ---- fork.c ---- */
void hk_fork_install(void);

/* ---- api.c ---- */
void *hk_malloc_impl(size_t size);
void hk_free_impl(void *p);
size_t hk_usable_size_impl(const void *p);

/* ---- learn.c ---- */
/* Called from the heap and huge slow paths, never under a lock, when the
 * learner feature is on (the callers test it): runs a round at a bounded
 * rate.  heap may be NULL. */
void hk_learn_tick(hk_heap *heap);
void hk_learn_stop(void);   /* the feature went off: the knobs go back */
#define HK_LEARN_BIGCACHE HK_NCLASSES       /* knobs: 0..60 tcache_max per class */
#define HK_LEARN_DECAY (HK_NCLASSES + 1)
#define HK_LEARN_NKNOBS (HK_NCLASSES + 2)
uint64_t hk_learn_value(unsigned knob);     /* the setting in force */
uint64_t hk_learn_knob_changes(unsigned knob);
const char *hk_learn_scores(unsigned knob); /* these two: a thread-local buffer */
const char *hk_learn_conf(unsigned knob);   /* "" at the built-in default */
bool hk_learn_frozen(void);
void hk_learn_set_frozen(bool on);
uint64_t hk_learn_rounds(void);
uint64_t hk_learn_changes(void);

/* ---- crash.c ---- */
/* At init when crash_report is on: SIGSEGV, SIGBUS and SIGABRT handlers
 * (where the disposition is still the default) that write a short report
 * and re-raise. */
void hk_crash_install(void);
/* altstack.c: alternate signal stacks for the crash handlers */
void hk_altstack_enable(void);               /* the handlers are installed */
void hk_altstack_thread_start(void **stack); /* *stack: the heap's, mapped if NULL */
void hk_altstack_thread_exit(void);          /* before the thread's heap is pooled */

/* ---- statspage.c ---- */
/* Called from slow paths, never with an allocator lock held: refreshes the
 * stats page when it is due (a cheap check when not). */
void hk_statspage_tick(void);
void hk_statspage_fini(void);          /* at exit: unlink the page */
void hk_statspage_fork_child(void);    /* forget the parent's page */
const char *hk_statspage_path(void);   /* the stats_page.* leaves */
unsigned hk_statspage_interval(void);
int hk_statspage_set_interval(unsigned ms);
uint64_t hk_statspage_refreshes(void);
uint64_t hk_statspage_commands(void);
bool hk_statspage_bg_running(void);
int hk_statspage_refresh_now(void);

/* ---- stats.c ---- */
typedef struct hk_class_totals {
    uint64_t nmalloc, ndalloc, nslow, nrefills, nflushes, nremote_frees;
    uint64_t pages;
} hk_class_totals;
void hk_stats_class_totals(hk_class_totals out[HK_NCLASSES]);
void hk_stats_fold_heap(hk_heap *heap);
size_t hk_stats_mapped(void);
size_t hk_stats_allocated(void);
size_t hk_stats_active(void);
size_t hk_stats_metadata(void);
void hk_stats_print_at_exit(void);

#pragma GCC visibility pop

#endif
