/*
 * The core layer offers the allocator itself: the malloc family, thread
 * heaps, arenas, huge blocks, the checked heap of the debug checks, the
 * statistics the layers above read and the knobs they set, and the hooks
 * through which those layers run work from the core's slow paths without
 * the core naming them (core/hooks.c; src/hakmem.c fills the tables).
 */
#ifndef HK_CORE_H
#define HK_CORE_H

#include "base/base.h"
#include "core/core_types.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)

/* ---- mode.c: the features in force now ----
 * Each flag is read at one place on a slow path (never a fast path): a
 * thread notices a change at its next slow-path event. */
extern _Atomic bool hk_features[HK_FEAT_COUNT];
extern _Atomic unsigned hk_mode_now;
static inline bool hk_feature_on(enum hk_feature f) { return hk_load_relaxed(&hk_features[f]); }
int hk_mode_set(unsigned mode);
void hk_feature_set(enum hk_feature f, bool on);

/* ---- init.c: start-up and the calling thread ---- */
extern _Atomic int hk_initialized;
void hk_init_slow(void);
static inline void hk_ensure_init(void) {
    if (hk_unlikely(!hk_load_acquire(&hk_initialized))) hk_init_slow();
}
hk_heap *hk_thread_real_heap(void);   /* thread's own heap or NULL */
hk_arena *hk_thread_arena(void);
void hk_thread_set_tcache(bool on);
bool hk_thread_tcache_enabled(void);
void hk_thread_detach_heap(void);
void hk_thread_set_arena(unsigned i);
uint64_t hk_thread_bytes(bool allocated);

/* ---- knobs: arenas, thread caches, the BigCache ---- */
extern hk_arena hk_arenas[HK_MAX_ARENAS];
void hk_arena_purge(hk_arena *arena, bool all);
void hk_heap_flush(hk_heap *heap);
unsigned hk_tcache_max_get(unsigned cls);
void hk_tcache_max_set(unsigned cls, unsigned blocks);
unsigned hk_tcache_max_default(unsigned cls); /* built in, before conf */
void hk_bigcache_purge(void);
void hk_bigcache_purge_over(void);
void hk_bigcache_tick(void);
void hk_bigcache_set_max(size_t bytes);
size_t hk_bigcache_peak_reset(void); /* the learner: most bytes cached since last call */
/* The decay thread (decay.c): whether it runs, its wake-ups from idle and
 * its purge passes. */
typedef struct hk_decay_stats {
    bool running;
    uint64_t nwakeups, npurges;
} hk_decay_stats;
void hk_decay_get_stats(hk_decay_stats *out);

/* ---- statistics (stats.c, huge.c) ---- */
/* A class's counters summed over every heap, and its pages. */
typedef struct hk_class_totals {
#define HK_TOTAL_FIELD_(name, kind, doc) HK_IF_COUNTER(kind, uint64_t name;)
    HAK_CLASS_STATS_FIELDS(HK_TOTAL_FIELD_)
#undef HK_TOTAL_FIELD_
    uint64_t nslow;
    uint64_t pages;
} hk_class_totals;
void hk_stats_class_totals(hk_class_totals out[HK_NCLASSES]);
/* The public view of class c from its totals. */
void hk_stats_class_view(unsigned c, const hk_class_totals *t, struct hak_class_stats *out);
size_t hk_stats_mapped(void);
size_t hk_stats_allocated(void);
size_t hk_stats_active(void);
size_t hk_stats_metadata(void);
void hk_stats_print_at_exit(void);
typedef struct hk_huge_stats {
    uint64_t nmalloc, ndalloc, hits, misses, nmmap;
    uint64_t ghost_hits, ghost_bytes; /* misses a bigger cache would have served */
    size_t cur_bytes, cache_bytes, cache_max;
    size_t ncached;
} hk_huge_stats;
void hk_huge_get_stats(hk_huge_stats *out);
void hk_huge_get_stats_lockless(hk_huge_stats *out); /* atomics only (crash reports) */

/* ---- validity checks (valid.c, debug builds): how many ran, by kind ---- */
enum { HK_VALID_PAGE, HK_VALID_HEAP, HK_VALID_SEGMENT, HK_VALID_HUGE, HK_VALID_KINDS };
extern _Atomic uint64_t hk_nvalidated[HK_VALID_KINDS];

/* ---- the debug checks (checked.c): reports and the recent-events ring ---- */
extern _Atomic uint64_t hk_nreports;
void hk_debug_flush_pooled(void); /* exited threads' debug heaps */
typedef struct hk_debug_event_view {
    const char *what;
    uint64_t ptr, size, tid;
    unsigned cls;
} hk_debug_event_view;
uint64_t hk_debug_nevents(void);
bool hk_debug_event(unsigned i, hk_debug_event_view *out);

/* ---- sample.c: heap profiling's sampling (the records: prof layer) ---- */
#define HK_SAMPLE_PERIOD_DEFAULT ((size_t)512 << 10)
void hk_sample_configure(bool active, size_t period); /* threads follow at their next slow path */
bool hk_sample_active(void);
size_t hk_sample_period_get(void);
void hk_sample_period_init(size_t period); /* before profiling was ever on: the period alone */

/* ---- hooks.c: the layers above, run from the core without naming them ----
 * src/hakmem.c fills both tables; every entry is set. */
typedef struct hk_hooks {
    void (*at_init)(void);                  /* once, the allocator usable: crash handlers */
    void (*thread_start)(void **altstack);  /* a thread got its heap; *altstack is the heap's */
    void (*thread_exit)(void);              /* before the thread's heap is pooled */
    void (*fork_child)(void);               /* in fork's child, after the core's repair */
    void (*feature_off)(enum hk_feature f); /* f was on and is now off */
    /* Heap profiling (core/sample.c): p of size bytes (usable: what its
     * sampling counted) was sampled at period; true when recorded (then
     * its free calls prof_unsample).  Called on the allocating thread, no
     * allocator lock held, its own allocations unsampled. */
    bool (*prof_sample)(void *p, size_t size, size_t usable, size_t period);
    /* true: p had a record, now dropped.  marked: the caller's mark says
     * p was sampled (a huge block's header, a one-block page), so most
     * calls find a record; else most find none, and a lock-free probe
     * spares them the profiler's lock. */
    bool (*prof_unsample)(void *p, bool marked);
} hk_hooks;
extern const hk_hooks hk_upper;

/* Periodic work on slow paths: the stats page refresh, the learner's
 * rounds.  run() gets the calling thread's heap, or NULL from a path
 * without one (huge blocks, shared heaps). */
typedef struct hk_periodic {
    enum hk_feature gate;        /* runs while it is on; HK_FEAT_COUNT: always */
    void (*run)(hk_heap *heap);  /* cheap when nothing is due */
} hk_periodic;
extern const hk_periodic hk_periodic_work[];
extern const unsigned hk_periodic_count;
void hk_periodic_tick(hk_heap *heap);

/* Slow paths of a thread heap between two periodic ticks (its first slow
 * path ticks, then one in HK_TICK_EVERY): the jobs read
 * the clock at each (their own intervals are in milliseconds), and a slow
 * path that ran them all each time spent ~50 instructions on it. */
#define HK_TICK_EVERY 16

/* Slow paths of a heap between two trims (its empty pages back to the
 * arena): the one trim interval, thread and shared heaps alike. */
#define HK_TRIM_EVERY 1024

#pragma GCC visibility pop

#endif
