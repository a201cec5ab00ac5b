/*
 * The core data structures and the invariants the fast paths rely on.
 *
 *   segment (2 MiB, aligned to 2 MiB)
 *   +--------+---------+---------+-----------------------+---------+
 *   | header | slice 1 | slice 2 |  ...  (64 KiB slices) | slice31 |
 *   +--------+---------+---------+-----------------------+---------+
 *     slice 0 holds the header: struct hk_segment with one hk_page entry
 *     per slice.  A page (slab) is a span of 1..16 slices holding blocks of
 *     one size class; its metadata is the entry of its first slice, and the
 *     other entries of the span point back with slice_back (in bytes).
 *
 *   ptr -> segment:  seg  = ptr & ~(HK_SEG_SIZE - 1)
 *   ptr -> page:     page = &seg->pages[(ptr - seg) >> HK_SLICE_SHIFT];
 *                    page = (char *)page - page->slice_back
 *
 * Huge blocks carry the same header (kind HK_SEG_HUGE, every page entry
 * zero so no heap owns it) at the 2 MiB-aligned base of their mapping, with
 * the user pointer inside the first 2 MiB.  A block aligned to 2 MiB or more
 * starts at offset 0 of its chunk: its header sits one chunk below, and free
 * recognises it by offset 0 (which no other block has).
 */
#ifndef HK_CORE_TYPES_H
#define HK_CORE_TYPES_H

#include "base/base_types.h"

#define HK_SEG_MAGIC 0x68616b6d /* "hakm" */
enum hk_seg_kind { HK_SEG_SMALL = 1, HK_SEG_HUGE = 2 };

/* A free block's link, stored encoded (next ^ hk_list_key) so a stray
 * write or a forged pointer is caught when popped (core/core.h). */
typedef struct hk_block { uintptr_t enc_next; } hk_block;

struct hk_heap;
struct hk_arena;

/* Low bits of hk_page.xthread_free: what a remote free must do. */
enum hk_tf_state {
    HK_TF_NORMAL = 0,  /* push onto the page's list */
    HK_TF_FULL = 1,    /* page detached in its owner's full list: hand the
                          block to the owner heap's delayed list instead */
    HK_TF_FREEING = 2  /* a remote freer is doing that right now */
};
#define HK_TF_MASK ((uintptr_t)3)
/* The top 16 bits of xthread_free count the blocks on the list (a page holds
 * at most 8192; user addresses have 47 bits), so the owner takes the list
 * without walking it. */
#define HK_TF_COUNT_SHIFT 48
#define HK_TF_COUNT_ONE ((uintptr_t)1 << HK_TF_COUNT_SHIFT)
#define HK_TF_PTR_MASK ((HK_TF_COUNT_ONE - 1) & ~HK_TF_MASK)

static inline uintptr_t hk_tf_ptr(uintptr_t tf) { return tf & HK_TF_PTR_MASK; }
static inline uint32_t hk_tf_count(uintptr_t tf) { return (uint32_t)(tf >> HK_TF_COUNT_SHIFT); }

/*
 * A page: a span of slices cut into blocks of one size class, owned by one
 * heap.  Block counts (|x| is a list's length):
 *   used == capacity - |free| - |local_free|
 *   live blocks == used - |thread_free| - (blocks of this page in the owner's
 *                  delayed list and in other threads' runs, hk_remote_run)
 *   capacity <= reserved; blocks past capacity are untouched memory
 * free and local_free are touched only by the owner heap (or, for an
 * abandoned page, by the arena under its lock); thread_free is an
 * MPSC list (any thread pushes with one CAS, the owner takes it whole).
 */
typedef struct hk_page {
    /* First cache line: what every free reads (any thread) and the remote
     * frees' list, written when the page changes hands or state.  Apart
     * from the second, so a thread freeing into a page another thread
     * allocates from does not take the owner's line away from it on every
     * block (prodcons_batch x0.7: doc/DESIGN.md, memory layout). */
    _Alignas(64) _Atomic(struct hk_heap *) heap; /* owner; NULL when free or abandoned */
    _Atomic uintptr_t xthread_free;  /* count << 48 | remote frees | state */
    uint16_t reserved;               /* blocks the span holds (<= 8192) */
    uint16_t cls;                    /* size class */
    uint8_t in_full;                 /* owner: bit 0 sits in heap->full; bit 1
                                        may hold sampled blocks (core/sample.c) */
    uint8_t slice_count;             /* slices in the span (head entry) */
    uint16_t slice_back;             /* bytes back to the span's head entry:
                                        entries back * sizeof(hk_page), so
                                        that free subtracts it as it is */
    uint32_t block_size;
    /* Second cache line: the owner's, written by every malloc and local
     * free.  Other threads never touch it. */
    _Alignas(64) hk_block *free;     /* owner: ready to hand out */
    hk_block *local_free;            /* owner: freed since the last collect */
    struct hk_page *next, *prev;     /* heap queue / full / abandoned list */
    uint16_t used;                   /* see above */
    uint16_t capacity;               /* blocks carved so far */
    uint8_t is_zero;                 /* uncarved memory is known zero */
} hk_page;                           /* 128 bytes: indexing is a shift */

typedef struct hk_page_queue {
    hk_page *first, *last;
    size_t count;                    /* pages in the queue */
} hk_page_queue;

/* Segment header; also the header of a huge block (kind HK_SEG_HUGE). */
typedef struct hk_segment {
    uint32_t magic;
    uint32_t kind;
    struct hk_arena *arena;
    struct hk_segment *next, *prev; /* arena's segment list / BigCache LRU */
    /* small segments, under arena->lock: bit i set = slice i not in a page */
    uint32_t free_mask;
    uint32_t dirty_mask;            /* free slices that may be resident */
    uint32_t purged_mask;           /* free slices purged since last used (learner) */
    uint64_t dirty_since_ms;        /* when the oldest dirty slice was freed */
    uint64_t dirty_at_ms[HK_SLICES]; /* when each dirty slice was freed: a slice
                                        is purged once it has waited decay_ms;
                                        none older than dirty_since_ms (valid.c) */
    /* huge blocks */
    void *map_base;                 /* mapping start (the header's own address) */
    size_t map_size;
    size_t usable;                  /* bytes usable from user */
    size_t requested;               /* the last size asked for (malloc or realloc) */
    uint8_t *user;
    uint64_t cached_at_ms;          /* BigCache: when it was parked */
    uint8_t cached;                 /* BigCache: parked (a free now is a double free) */
    uint8_t guarded;                /* debug: ends right before a PROT_NONE page */
    uint8_t sampled;                /* the heap profiler holds a record of it */
    /* small segments: per page (by its head slice), 16 counters of 4 bits
     * of its live sampled blocks by address hash (core/sample.c): a block
     * whose counter is zero was not sampled, so its free skips the
     * profiler's table; zero when the page is not marked sampled */
    _Atomic uint64_t sample_bloom[HK_SLICES];
    hk_page pages[HK_SLICES];
} hk_segment;

/* HK_IF_COUNTER(kind, ...): its arguments for the "counter" fields of
 * HAK_CLASS_STATS_FIELDS (hakmem.h), nothing for the others.  Every list
 * of the per-class counters (this struct, the totals, their sums and
 * folds, the stats leaves and printers) is made from that one list. */
#define HK_IF_COUNTER(kind, ...) HK_IF_COUNTER_##kind(__VA_ARGS__)
#define HK_IF_COUNTER_counter(...) __VA_ARGS__
#define HK_IF_COUNTER_derived(...)
#define HK_IF_COUNTER_gauge(...)
#define HK_IF_COUNTER_constant(...)

/* Per-class counters of one heap, one array per counter so the fast paths
 * index them directly: written only by the owner thread (hk_counter_inc;
 * a shared heap's by the thread holding its arena's shared_lock), read by
 * anyone.  The public counters, then nslow (tcache_hits = nmalloc - nslow). */
typedef struct hk_class_counters {
#define HK_COUNTER_ARRAY_(name, kind, doc) HK_IF_COUNTER(kind, _Atomic uint64_t name[HK_NCLASSES];)
    HAK_CLASS_STATS_FIELDS(HK_COUNTER_ARRAY_)
#undef HK_COUNTER_ARRAY_
    _Atomic uint64_t nslow[HK_NCLASSES]; /* took the slow path */
} hk_class_counters;

/*
 * A heap: one per thread (or one per arena, shared under the arena lock,
 * when thread caches are off).  direct[c] is never NULL: it points to
 * hk_page_empty until the heap has a page of class c.  Every page with
 * heap == this sits in exactly one of queue[cls], full, or the one-block
 * cache bcache.
 */
/* An entry of hk_heap's owned-segment cache that names no segment (never
 * 2 MiB aligned, so no pointer's segment equals it). */
#define HK_NO_SEGMENT ((struct hk_segment *)1)
/* The one-block cache's classes (40 KiB to 896 KiB: a page holds one
 * block; test_sizeclass_tables checks the bounds) and pages per class. */
#define HK_BCACHE_FIRST 41
#define HK_BCACHE_LAST 59
#define HK_BCACHE_CLASSES (HK_BCACHE_LAST - HK_BCACHE_FIRST + 1)
#define HK_BCACHE_MAX 32
#define HK_OWNED_SEGS 32 /* the owned-segment cache, by segment address: 64 MiB */

/* The debug checks' recent events (checked.c): a ring per checked heap,
 * written by its thread alone (relaxed stores, no read-modify-write, so
 * threads never share a cache line for it), read by anyone; stamp orders
 * the events of all rings. */
#define HK_DEBUG_EVENTS 16
typedef struct hk_event {
    _Atomic(const char *) what;
    _Atomic uint64_t ptr, size, tid, stamp;
    _Atomic unsigned cls;
} hk_event;
typedef struct hk_event_ring {
    hk_event ev[HK_DEBUG_EVENTS];
    _Atomic uint64_t n; /* events recorded; ev[(n - 1) % HK_DEBUG_EVENTS] is the newest */
} hk_event_ring;

/* A thread's remote frees into one page, chained and not yet pushed
 * (core/remote.c).  page: the page of the thread's last remote free (NULL
 * at first), only compared while n == 0.  Invariants when n != 0:
 * head..tail are n distinct blocks of page, linked from head (the newest)
 * to tail (the oldest, whose link is set at the push), still counted in
 * page->used, so the page stays its owner's or the arena's and is never
 * handed back; n * page->block_size < HK_RUN_BYTES, and
 * page->block_size <= HK_RUN_BYTES / 2. */
typedef struct hk_remote_run {
    hk_page *page;
    hk_block *head, *tail;
    uint32_t n;
} hk_remote_run;

typedef struct hk_heap {
    hk_page *direct[HK_NCLASSES];      /* current page per class */
    hk_page_queue queue[HK_NCLASSES];  /* pages that may have free blocks */
    hk_page_queue full;                /* pages detached with no free block */
    _Atomic uintptr_t delayed;         /* blocks remotely freed to full pages */
    hk_remote_run run;                 /* this thread's frees into another's page */
    struct hk_arena *arena;
    /* Segments this heap owned a page of at a local free, so free skips
     * the segment-map lookup for them: owned_segs[(seg >> HK_SEG_SHIFT) %
     * HK_OWNED_SEGS], direct-mapped, so that the test is one compare
     * whichever of the heap's segments the block is in (a "last segment"
     * compared first mispredicted on a heap of several: 26% of random-order
     * frees over 5 MB); unused entries hold HK_NO_SEGMENT.  Invariant: a
     * segment named here stays mapped, because this heap has owned a page
     * of it since it was named (a segment is unmapped only once every page
     * is back in the arena) and forgets it before handing back any of its
     * pages (page_release; hk_heap_abandon forgets them all). */
    struct hk_segment *owned_segs[HK_OWNED_SEGS];
    hk_class_counters counters;
    /* The owner's block-boundary test, in_page * divmagic[c] <= divlimit[c]
     * (hk_class_divmagic and it minus one): copied into the heap it already
     * holds, two tables so that each is read straight into an instruction. */
    uint64_t divmagic[HK_NCLASSES];
    uint64_t divlimit[HK_NCLASSES];
    _Atomic uint64_t allocated_bytes, deallocated_bytes;
    struct hk_heap *next_all;          /* global heap list (hk_heaps_lock) */
    struct hk_heap *next_free;         /* heap pool */
    uint64_t slow_count;               /* slow paths taken (owner) */
    /* Adaptive keep (heap.c), owner only: for a class whose pages this heap
     * handed back and soon fetched again, extra free blocks it keeps in
     * empty pages beyond the default tcache_max (keep_boost[c], doubling at
     * each such refetch, halved at each trim); boost_bytes their sum in
     * bytes, at most HK_KEEP_BOOST_BYTES; released_at[c]: slow_count + 1 at
     * the last hand-back of a page of c (0: never). */
    uint32_t keep_boost[HK_NCLASSES];
    uint64_t released_at[HK_NCLASSES];
    size_t boost_bytes;
    /* The one-block cache (bcache.c), owner only: pages of the classes that
     * hold one block a page (HK_BCACHE_FIRST..HK_BCACHE_LAST) whose block
     * the owner freed, kept whole for its next malloc of the class.
     * Invariant: bcache[r][0..bcache_n[r]) are this heap's pages of class
     * HK_BCACHE_FIRST + r, in the full list, with in_full ==
     * HK_PAGE_FULL | HK_PAGE_CACHED,
     * used == 1, free == local_free == NULL, thread-free state HK_TF_FULL
     * (remote frees go to the delayed list, which reports them). */
    hk_page *bcache[HK_BCACHE_CLASSES][HK_BCACHE_MAX];
    uint8_t bcache_n[HK_BCACHE_CLASSES];
    uint8_t bcache_cap[HK_BCACHE_CLASSES]; /* min(HK_BCACHE_MAX, the class's keep), kept
                                              current by heap.c where the keep moves */
    void *altstack;                    /* signal stack of its thread (altstack.c);
                                          kept across reuse from the pool */
    bool shared;                       /* an arena's heap, used under its lock; set at
                                          creation, never changed (free_other reads it
                                          unlocked) */
    hk_event_ring events;              /* a checked heap's recent events (checked.c) */
    bool debug;                        /* a checked heap (checked.c): a thread's, or the
                                          arena's fallback */
    /* Heap profiling (sample.c), owner only: the hk_sample_state seen
     * last, and per class the value of counters.nmalloc[c] once the block
     * holding the next sample point is handed out (UINT64_MAX: none). */
    uint32_t prof_epoch;
    uint64_t prof_rng;
    uint64_t prof_due[HK_NCLASSES];
} hk_heap;

/* An arena: segments, the page allocator, abandoned pages, one lock. */
typedef struct hk_arena {
    pthread_mutex_t lock;
    pthread_mutex_t shared_lock;      /* guards shared_heap; taken before lock */
    unsigned index;
    hk_segment *segs, *segs_tail;     /* small segments (lock) */
    unsigned nsegs;
    hk_page_queue abandoned[HK_NCLASSES]; /* pages of exited threads (lock) */
    _Atomic unsigned nabandoned;
    uint64_t next_purge_ms;           /* (lock) */
    _Atomic int64_t decay_ms;
    hk_heap *shared_heap;             /* tcache off: the arena's heap */
    hk_heap *debug_heap;              /* debug checks: the arena's checked heap */
    _Atomic unsigned nthreads;
    _Atomic size_t mapped;            /* bytes of small segments mapped */
    _Atomic size_t npurged;           /* segment purges made (each one or more madvise) */
    _Atomic uint64_t npage_allocs;    /* pages handed to heaps */
    _Atomic uint64_t nrefaults;       /* slices of them that had been purged */
    _Atomic size_t ndirty;            /* free slices that may be resident (|dirty_mask| summed) */
    _Atomic size_t ndirty_peak;       /* its high-water mark since the learner last looked */
    _Atomic uint64_t pages[HK_NCLASSES]; /* pages in use per class */
} hk_arena;


_Static_assert(sizeof(hk_page) == 128, "hk_page is two cache lines");


#endif
