/*
 * Debug checks (research mode, config.features.debug_checks): blocks come
 * from a debug heap with this layout
 *
 *   | user bytes (size) | canary 0xCA ... | (unfilled) | trailer (u32) |   = one block
 *                        <- HK_CANARY_MAX ->
 *
 *   trailer = size | HK_TRAILER_SAMPLED when the heap profiler sampled the
 *   block (so only those frees look the block up in its table)
 *
 * so a free can check the canary (an overrun), test the block's live bit
 * (a double free), and junk-fill the user bytes (0xDE; allocation fills
 * 0xA5; both the first HK_JUNK_MAX bytes) so a use after free shows.  The canary is the first HK_CANARY_MAX
 * bytes past the requested size (all of them up to the trailer in a block
 * with less slack), so a large class does not pay a fill of its whole
 * slack.  One small block in guard_sample instead ends right before a
 * PROT_NONE page (guard.c).  Each check reports what, the pointer, the
 * size class and the thread (report.c), and every allocation, free and
 * report lands in a ring of recent events (debug.events.*).
 *
 * Every thread has a debug heap of its own (below): malloc and the owner's
 * free take no lock; another thread's free runs the same checks and hands
 * the block over through the page's lock-free thread-free list.
 */
#include <unistd.h>

#include "core/core_internal.h"

#define HK_CANARY 0xCA
#define HK_JUNK_ALLOC 0xA5
#define HK_JUNK_FREE 0xDE
#define HK_TRAILER sizeof(uint32_t)
#define HK_TRAILER_SAMPLED 0x80000000u /* above any size: sizes stay below HK_LARGE_MAX */
#define HK_DEBUG_EXTRA 8 /* at least 4 canary bytes and the trailer */
#define HK_CANARY_MAX 256 /* canary bytes filled and checked past the size */
/* Junk fills cover the first HK_JUNK_MAX bytes of a block, as ASan's
 * max_malloc_fill_size (4 KiB) does: an uninitialized or stale pointer or
 * length, the usual victim, sits in a block's first bytes, and a 64 KiB
 * block no longer pays two 64 KiB memsets a malloc/free pair. */
#define HK_JUNK_MAX 4096

/* memset through libc's: a memset whose length the compiler can bound
 * (the junk's 4 KiB cap, the canary's 256 bytes) is inlined as `rep stos`,
 * whose start-up cost was most of a small block's fills (a fifth of
 * research mode's time on larson and micro). */
static __attribute__((noinline)) void fill_bytes(void *p, int c, size_t n) { memset(p, c, n); }

/* ---- the rings of recent events ----
 *
 * A checked heap records its thread's allocations, frees and reports in its
 * own ring (hk_heap.events); a report from a thread without one goes to the
 * shared ring below, under an atomic counter (reports are rare).  Readers
 * merge the rings by stamp: the newest events of the whole process. */

static hk_event_ring shared_ring;
static _Atomic uint64_t shared_next; /* slots taken in shared_ring */

/* gettid() is a system call: once per thread (and again in a fork child). */
static _Thread_local pid_t tls_tid;

static pid_t thread_id(void) {
    if (tls_tid == 0) tls_tid = gettid();
    return tls_tid;
}

void hk_debug_fork_child(void) { tls_tid = 0; }

/* An order of events across threads: the time stamp counter where there is
 * one (invariant on current x86), else the monotonic clock. */
static uint64_t stamp(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static void fill(hk_event *e, const char *what, const void *p, size_t size, unsigned cls) {
    hk_store_relaxed(&e->what, what);
    hk_store_relaxed(&e->ptr, (uint64_t)(uintptr_t)p);
    hk_store_relaxed(&e->size, size);
    hk_store_relaxed(&e->cls, cls);
    hk_store_relaxed(&e->tid, (uint64_t)thread_id());
    hk_store_relaxed(&e->stamp, stamp());
}

static _Thread_local hk_heap *tls_debug_heap;

static void event(const char *what, const void *p, size_t size, unsigned cls) {
    hk_heap *h = tls_debug_heap;
    if (hk_likely(h != NULL)) { /* the thread's own ring: no shared write */
        uint64_t n = hk_load_relaxed(&h->events.n);
        fill(&h->events.ev[n % HK_DEBUG_EVENTS], what, p, size, cls);
        hk_store_release(&h->events.n, n + 1);
        return;
    }
    uint64_t i = hk_fetch_add_relaxed(&shared_next, 1);
    fill(&shared_ring.ev[i % HK_DEBUG_EVENTS], what, p, size, cls);
    hk_fetch_add_relaxed(&shared_ring.n, 1);
}

void hk_debug_event_report(const char *what, const void *p, unsigned cls) {
    event(what, p, 0, cls);
}

uint64_t hk_debug_nevents(void) {
    uint64_t n = hk_load_relaxed(&shared_ring.n);
    hk_lock(&hk_heaps_lock);
    for (hk_heap *h = hk_heaps_all; h != NULL; h = h->next_all) n += hk_load_acquire(&h->events.n);
    hk_unlock(&hk_heaps_lock);
    return n;
}

/* The newest events of one ring not yet in out[0..*nout) (kept sorted,
 * newest first, at most HK_DEBUG_EVENTS). */
static void merge_ring(hk_event_ring *r, hk_debug_event_view *out, uint64_t *stamps, unsigned *nout) {
    uint64_t n = hk_load_acquire(&r->n);
    for (uint64_t k = 0; k < n && k < HK_DEBUG_EVENTS; k++) {
        hk_event *e = &r->ev[(n - 1 - k) % HK_DEBUG_EVENTS];
        uint64_t s = hk_load_relaxed(&e->stamp);
        unsigned at = *nout;
        while (at > 0 && stamps[at - 1] < s) at--;
        if (at >= HK_DEBUG_EVENTS) break; /* older than all kept: so are the rest */
        unsigned last = *nout < HK_DEBUG_EVENTS ? *nout : HK_DEBUG_EVENTS - 1;
        memmove(&out[at + 1], &out[at], (last - at) * sizeof out[0]);
        memmove(&stamps[at + 1], &stamps[at], (last - at) * sizeof stamps[0]);
        const char *what = hk_load_relaxed(&e->what);
        out[at] = (hk_debug_event_view){what != NULL ? what : "", hk_load_relaxed(&e->ptr),
                                        hk_load_relaxed(&e->size), hk_load_relaxed(&e->tid),
                                        hk_load_relaxed(&e->cls)};
        stamps[at] = s;
        if (*nout < HK_DEBUG_EVENTS) (*nout)++;
    }
}

/* Event i counts back from the newest (0), over every ring. */
bool hk_debug_event(unsigned i, hk_debug_event_view *out) {
    hk_debug_event_view all[HK_DEBUG_EVENTS];
    uint64_t stamps[HK_DEBUG_EVENTS];
    unsigned n = 0;
    merge_ring(&shared_ring, all, stamps, &n);
    hk_lock(&hk_heaps_lock);
    for (hk_heap *h = hk_heaps_all; h != NULL; h = h->next_all) merge_ring(&h->events, all, stamps, &n);
    hk_unlock(&hk_heaps_lock);
    if (i >= n) {
        memset(out, 0, sizeof *out);
        out->what = "";
        return false;
    }
    *out = all[i];
    return true;
}

/* ---- live bits: the double-free check ----
 *
 * One bit per block of a debug page, set while the block is allocated, in
 * the segment's header slice past the header: 1 KiB per slice index (a page
 * holds at most 8192 blocks; slice 0 is never purged or handed out).  A
 * free finds its bit clear: a double free, or a block never allocated.
 * Atomic bit operations: mallocs set bits outside the arena's lock. */
#define HK_LIVE_BITS_OFFSET 8192
#define HK_LIVE_BITS_BYTES 1024
_Static_assert(sizeof(hk_segment) <= HK_LIVE_BITS_OFFSET, "live bits overlap the header");
_Static_assert(HK_LIVE_BITS_OFFSET + HK_SLICES * HK_LIVE_BITS_BYTES <= HK_SLICE_SIZE,
               "live bits leave the header slice");

static uint64_t *live_word(hk_page *page, const void *p, uint64_t *mask) {
    hk_segment *seg = hk_segment_of(page);
    size_t idx = (size_t)(page - seg->pages);
    size_t block = (size_t)((const uint8_t *)p - hk_page_start(page)) / page->block_size;
    *mask = (uint64_t)1 << (block % 64);
    return (uint64_t *)((uint8_t *)seg + HK_LIVE_BITS_OFFSET + idx * HK_LIVE_BITS_BYTES) + block / 64;
}

/* A page the debug heap just took from the arena: no block is live. */
void hk_debug_page_fresh(hk_page *page) {
    hk_segment *seg = hk_segment_of(page);
    size_t idx = (size_t)(page - seg->pages);
    memset((uint8_t *)seg + HK_LIVE_BITS_OFFSET + idx * HK_LIVE_BITS_BYTES, 0, HK_LIVE_BITS_BYTES);
}

static void mark_live(hk_page *page, const void *p) {
    uint64_t mask, *w = live_word(page, p, &mask);
    __atomic_fetch_or(w, mask, __ATOMIC_RELAXED);
}

/* Clears p's bit; false when it was already clear. */
static bool take_live(hk_page *page, const void *p) {
    uint64_t mask, *w = live_word(page, p, &mask);
    return (__atomic_fetch_and(w, ~mask, __ATOMIC_RELAXED) & mask) != 0;
}

/* ---- per-thread debug heaps ----
 *
 * A thread's debug heap is used by that thread alone (no lock).  It
 * outlives the thread: at exit it goes to a pool with its pages, where
 * remote frees keep landing (thread-free lists, the delayed list), for the
 * next thread to take as it is.  Debug heaps stay on hk_heaps_all for good,
 * so their counters keep counting.  The arena's shared debug heap (under
 * shared_lock) serves a thread that has none: while its heap is being made
 * (pthread_setspecific may allocate), after its exit hook ran, or when
 * metadata runs out. */
static _Thread_local bool tls_debug_busy, tls_debug_exited;
static hk_heap *debug_pool; /* heaps of exited threads (hk_heaps_lock) */
static pthread_key_t debug_key;
static pthread_once_t debug_key_once = PTHREAD_ONCE_INIT;
static bool debug_key_ok;

static void debug_pool_push(hk_heap *h) {
    hk_lock(&hk_heaps_lock);
    h->next_free = debug_pool;
    debug_pool = h;
    hk_unlock(&hk_heaps_lock);
}

static void debug_heap_exit(void *arg) {
    tls_debug_heap = NULL;
    tls_debug_exited = true;
    hk_heap_flush(arg); /* its empty pages back to the arena */
    debug_pool_push(arg);
}

/* Hands the empty pages of the pooled heaps back (arena.0.purge): the
 * blocks their threads left behind may have been freed since.  Each heap is
 * taken out of the pool meanwhile, so it has one user. */
void hk_debug_flush_pooled(void) {
    hk_lock(&hk_heaps_lock);
    hk_heap *list = debug_pool;
    debug_pool = NULL;
    hk_unlock(&hk_heaps_lock);
    while (list != NULL) {
        hk_heap *h = list;
        list = h->next_free;
        hk_heap_flush(h);
        debug_pool_push(h);
    }
}

static void debug_key_create(void) {
    debug_key_ok = pthread_key_create(&debug_key, debug_heap_exit) == 0;
}

static hk_heap *debug_heap_new(void) {
    hk_lock(&hk_heaps_lock);
    hk_heap *h = debug_pool;
    if (h != NULL) debug_pool = h->next_free;
    hk_unlock(&hk_heaps_lock);
    if (h != NULL) return h;
    h = hk_meta_alloc(sizeof(hk_heap));
    if (h == NULL) return NULL;
    hk_heap_init(h, hk_thread_arena(), false);
    h->debug = true;
    hk_lock(&hk_heaps_lock);
    h->next_all = hk_heaps_all;
    hk_heaps_all = h;
    hk_unlock(&hk_heaps_lock);
    return h;
}

/* The calling thread's debug heap, made on first use; NULL: use the
 * arena's shared one. */
static hk_heap *thread_debug_heap(void) {
    if (hk_likely(tls_debug_heap != NULL)) return tls_debug_heap;
    if (tls_debug_busy || tls_debug_exited) return NULL;
    tls_debug_busy = true;
    pthread_once(&debug_key_once, debug_key_create);
    hk_heap *h = debug_key_ok ? debug_heap_new() : NULL;
    if (h != NULL && pthread_setspecific(debug_key, h) != 0) {
        debug_pool_push(h);
        h = NULL;
    }
    tls_debug_heap = h;
    tls_debug_busy = false;
    return h;
}

/* ---- checked allocation ---- */

static _Thread_local unsigned guard_countdown;

static uint32_t *trailer_of(hk_page *page, void *p) {
    return (uint32_t *)((uint8_t *)p + page->block_size - HK_TRAILER);
}

/* The requested size kept in p's trailer. */
static uint32_t size_of(hk_page *page, void *p) { return *trailer_of(page, p) & ~HK_TRAILER_SAMPLED; }

/* The canary's end: HK_CANARY_MAX bytes past the size, or the trailer. */
static uint8_t *canary_end(hk_page *page, uint8_t *p, size_t size) {
    size_t end = page->block_size - HK_TRAILER;
    return p + (end - size > HK_CANARY_MAX ? size + HK_CANARY_MAX : end);
}

static void *pop_checked_block(unsigned cls) {
    hk_heap *h = thread_debug_heap();
    if (h == NULL) return hk_shared_malloc(cls, true);
    bool slow = false;
    return hk_shared_pop_locked(h, cls, &slow); /* h is this thread's alone */
}

void *hk_debug_malloc(size_t size) {
    unsigned every = hk_opt.guard_sample;
    if (every != 0 && size <= HK_MID_MAX && ++guard_countdown >= every) {
        guard_countdown = 0;
        void *g = hk_guard_alloc(size);
        if (g != NULL) {
            event("alloc (guarded)", g, size, 0);
            return g;
        }
    }
    if (size > HK_LARGE_MAX - HK_DEBUG_EXTRA) return hk_huge_alloc(size, 0, false);
    unsigned cls = hk_size_class(size + HK_DEBUG_EXTRA);
    uint8_t *p = pop_checked_block(cls);
    if (p == NULL) return NULL;
    hk_page *page = hk_page_of(hk_segment_of(p), p);
    fill_bytes(p, HK_JUNK_ALLOC, size < HK_JUNK_MAX ? size : HK_JUNK_MAX);
    uint8_t *end = canary_end(page, p, size);
    fill_bytes(p + size, HK_CANARY, (size_t)(end - (p + size)));
    mark_live(page, p);
    event("alloc", p, size, cls);
    bool sampled = hk_sample_unmarked_hit(p, size, page->block_size);
    *trailer_of(page, p) = (uint32_t)size | (sampled ? HK_TRAILER_SAMPLED : 0);
    return p;
}

size_t hk_debug_usable(hk_page *page, const void *p) {
    uint32_t size = size_of(page, (void *)p);
    return size <= page->block_size - HK_DEBUG_EXTRA ? size : 0;
}

/* The first byte of [c, end) that is not `canary`, or end. */
uint8_t *hk_canary_first_bad(uint8_t *c, uint8_t *end, uint8_t canary) {
    uint64_t canary8 = UINT64_C(0x0101010101010101) * canary, w;
    for (; c + 8 <= end; c += 8) { /* the common case: all intact, by words */
        memcpy(&w, c, 8);
        if (w != canary8) break;
    }
    while (c < end && *c == canary) c++;
    return c;
}

static void check_canary(hk_page *page, uint8_t *p) {
    uint32_t size = size_of(page, p);
    char detail[128];
    if (size > page->block_size - HK_DEBUG_EXTRA) {
        hk_report("buffer overrun (size trailer overwritten)", p, page, NULL);
        return;
    }
    uint8_t *end = canary_end(page, p, size);
    uint8_t *c = hk_canary_first_bad(p + size, end, HK_CANARY);
    if (c < end) {
        hk_fmt(detail, sizeof detail, "requested %u bytes, first bad byte at +%u (0x%02x)",
               size, (unsigned)(c - p), *c);
        hk_report("buffer overrun", p, page, detail);
    }
}

/* The checks of every free of a debug block, then the junk fill; false: a
 * double free (reported), the block must be left alone.  *size is the
 * requested size. */
static bool check_and_junk(hk_page *page, uint8_t *p, uint32_t *size) {
    if (!take_live(page, p)) {
        hk_report_ignored("double free", p, page);
        return false;
    }
    check_canary(page, p);
    *size = size_of(page, p);
    if (*size > page->block_size - HK_DEBUG_EXTRA) *size = page->block_size - HK_TRAILER;
    /* the canary past the size stays: 0xCA */
    fill_bytes(p, HK_JUNK_FREE, *size < HK_JUNK_MAX ? *size : HK_JUNK_MAX);
    return true;
}

/* The owner's free: a local free, no lock (the heap is the caller's). */
static void free_local(hk_heap *heap, hk_page *page, hk_block *b) {
    unsigned cls = page->cls;
    hk_block_set_next(b, page->local_free);
    page->local_free = b;
    page->used--;
    if (hk_config_stats) hk_counter_add(&heap->counters.ndalloc[cls], 1);
    if (page->used == 0 || page->in_full) hk_heap_free_local_slow(heap, page);
}

/* Another thread's block: through the page's thread-free list. */
static void free_remote(hk_page *page, hk_block *b) {
    unsigned cls = page->cls; /* before the push: the page may go after */
    hk_free_remote(page, b);
    if (!hk_config_stats) return;
    hk_heap *me = tls_debug_heap;
    hk_class_counters *c = me != NULL ? &me->counters : &hk_dead_counters;
    hk_fetch_add_relaxed(&c->ndalloc[cls], 1);
    hk_fetch_add_relaxed(&c->nremote_frees[cls], 1);
}

/* A free into an arena's shared debug heap: under its lock. */
static void free_shared(hk_heap *heap, hk_page *page, uint8_t *p) {
    hk_arena *a = heap->arena;
    uint32_t size;
    hk_lock(&a->shared_lock);
    bool ok = check_and_junk(page, p, &size); /* page stays valid under the lock */
    unsigned cls = page->cls;                 /* the page may be handed back below */
    if (ok) free_local(heap, page, (hk_block *)p);
    hk_unlock(&a->shared_lock);
    if (ok) event("free", p, size, cls);
}

/* A free into a debug heap's page: checks, junk, then the block goes back
 * to its heap.  Always handles the block (or refuses it). */
bool hk_debug_free(hk_page *page, void *p) {
    hk_heap *heap = hk_load_acquire(&page->heap);
    /* before the block can be handed out again */
    if (*trailer_of(page, p) & HK_TRAILER_SAMPLED) hk_sample_unmarked_free(p);
    if (heap->shared) {
        free_shared(heap, page, p);
        return true;
    }
    uint32_t size;
    unsigned cls = page->cls;
    if (!check_and_junk(page, p, &size)) return true;
    if (heap == tls_debug_heap) free_local(heap, page, p);
    else free_remote(page, p);
    event("free", p, size, cls);
    return true;
}
