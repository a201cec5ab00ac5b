/*
 * Heap profiling's sampling decisions (the records are the prof layer's,
 * reached through hk_upper.prof_sample / prof_unsample).
 *
 * Every byte a thread allocates is a sample point with probability
 * 1/period, independently (a Poisson process on the byte stream): the
 * distance to the next point is exponential with mean period, and an
 * allocation of b bytes holds at least one point with probability
 * 1 - exp(-b/period) (doc/PROFILING.md).  Each thread heap keeps one such
 * countdown per size class (the union of independent Poisson processes of
 * one rate over disjoint bytes is that process again), and one per thread
 * counts huge blocks.
 *
 * The fast path is not touched.  It pops page->free of the class's current
 * page, so the heap knows how many blocks it can hand out before it comes
 * back here: at most |free|.  When the sample point falls within them, the
 * list is cut after the blocks that fit before it and the rest parked on
 * local_free (both lists stay the page's, every invariant of core_types.h
 * holds); the allocation that reaches the point finds free empty and comes
 * to malloc_slow, which sends it here (hk_sample_state is not 0).  Bytes
 * handed out in between are counted from the heap's nmalloc counter.
 *
 * A sampled block of at most 1 KiB is taken from the arena's shared heap
 * (its free probes the table, as every free into a shared heap's page
 * does); a larger sampled block marks its thread page (hk_page.in_full's
 * sampled bit) so that the page's frees leave the fast path, and on a page
 * of more than one block is counted in the page's counting filter
 * (hk_segment.sample_bloom) so that the frees of the page's other blocks
 * mostly skip the profiler's table; a sampled
 * huge block is marked by its header (hk_segment.sampled).
 */
#include "core/core_internal.h"

_Atomic uint32_t hk_sample_state;                  /* epoch << 1 | active; 0: never on */
_Atomic size_t hk_sample_period = HK_SAMPLE_PERIOD_DEFAULT;
static _Atomic uint32_t epoch_next = 1;

/* A record being taken on this thread: its own allocations (the unwinder's
 * first use) are served unsampled. */
static _Thread_local bool tls_busy;
static _Thread_local uint64_t tls_rng;

static void ln_table_fill(void);

void hk_sample_configure(bool active, size_t period) {
    if (period == 0) period = 1;
    if (active) ln_table_fill(); /* callers take turns (switch_lock, or init) */
    hk_store_relaxed(&hk_sample_period, period);
    uint32_t e = hk_fetch_add_relaxed(&epoch_next, 1);
    hk_store_release(&hk_sample_state, (e << 1) | (active ? 1u : 0u));
}

bool hk_sample_active(void) { return (hk_load_relaxed(&hk_sample_state) & 1) != 0; }
size_t hk_sample_period_get(void) { return hk_load_relaxed(&hk_sample_period); }

/* hk_sample_state stays 0 (the slow paths do not come here). */
void hk_sample_period_init(size_t period) {
    if (period != 0) hk_store_relaxed(&hk_sample_period, period);
}

/* ---- exponential draws (no libm) ---- */

static uint64_t rng_next(uint64_t *s) {
    if (*s == 0) *s = ((uintptr_t)s ^ hk_os_now_ms() * 0x9e3779b97f4a7c15ull) | 1;
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ln(x) for a normal x > 0: x = m * 2^e with m in [1, 2) (read from the
 * double's bits), ln m by the atanh series in s = (m - 1) / (m + 1) <= 1/3
 * (absolute error below 2e-8).  It fills the draw's table. */
static double ln_series(double x) {
    union { double d; uint64_t u; } v = {.d = x};
    int e = (int)(v.u >> 52 & 0x7ff) - 1023;
    v.u = (v.u & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1023) << 52);
    x = v.d;
    double s = (x - 1.0) / (x + 1.0), s2 = s * s;
    double series = s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 * (1.0 / 11 + s2 / 13))))));
    return e * 0.6931471805599453 + 2.0 * series;
}

/* ln(1 + i / LN_STEPS), i = 0 .. LN_STEPS: filled once, before profiling
 * is first switched on (hk_sample_configure publishes the state after it,
 * and every draw follows a load of the state that sees it on). */
#define LN_STEPS 256
#define LN_INDEX_BITS 8
static double ln_table[LN_STEPS + 1];
static _Atomic bool ln_table_ready;

static void ln_table_fill(void) {
    if (hk_load_acquire(&ln_table_ready)) return;
    for (unsigned i = 0; i <= LN_STEPS; i++) ln_table[i] = ln_series(1.0 + (double)i / LN_STEPS);
    hk_store_release(&ln_table_ready, true);
}

/* -ln(u) for u = r / 2^64, r odd (so 0 < u < 1): u = 2^-(z+1) * m with z
 * r's leading zeros and m in [1, 2), so -ln u = (z + 1) ln 2 - ln m; ln m
 * by the chord between the table's two neighbours (8 bits of m pick them,
 * the next 32 place m between them).  The chord lies below ln, by at most
 * (1/256)^2 / 8 = 1.9e-6 (at m near 1): a draw of -ln(u) * period bytes is
 * longer by at most 1 byte at 512 KiB.  A table load and a multiply-add
 * where the series took a division and seven: draw() was 2.5% of hotclass
 * with profiling on (perf, cpu-clock), most of it waiting on the chain. */
double hk_sample_neg_ln_unit(uint64_t r) {
    r |= 1;
    unsigned z = (unsigned)__builtin_clzll(r);
    uint64_t m = r << z; /* bit 63 set */
    unsigned i = (unsigned)(m >> (63 - LN_INDEX_BITS)) & (LN_STEPS - 1);
    double f = (double)(m << (LN_INDEX_BITS + 1) >> 32) * 0x1p-32;
    double ln_m = ln_table[i] + (ln_table[i + 1] - ln_table[i]) * f;
    return (double)(z + 1) * 0.6931471805599453 - ln_m;
}

/* Bytes to the next sample point: exponential with mean period, >= 1. */
static int64_t draw(uint64_t *rng) {
    double d = hk_sample_neg_ln_unit(rng_next(rng)) * (double)hk_load_relaxed(&hk_sample_period);
    if (d > 4e18) d = 4e18;
    return d < 1.0 ? 1 : (int64_t)d;
}

/* ---- small blocks: a thread heap's classes ---- */

/* The blocks of class cls (bs bytes each) up to the one holding a point
 * `bytes` away: ceil(bytes / bs), at least 1. */
static uint64_t blocks_to_point(int64_t bytes, size_t bs) {
    return ((uint64_t)bytes + bs - 1) / bs;
}

/* The state changed since the heap last looked (or the heap is new):
 * every class starts a fresh countdown from what it has counted so far;
 * with profiling off, in a checked heap and for classes of their own
 * mappings (hk_sample_huge counts those) none is due. */
static HK_SLOW_PATH void heap_resync(hk_heap *heap, uint32_t state) {
    heap->prof_epoch = state;
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        bool counts = (state & 1) && !heap->debug && hk_class_size[c] <= HK_SEGMENT_BLOCK_MAX;
        heap->prof_due[c] = counts ? hk_load_relaxed(&heap->counters.nmalloc[c]) +
                                         blocks_to_point(draw(&heap->prof_rng), hk_class_size[c])
                                   : UINT64_MAX;
    }
}

/* Parks the blocks of page->free after the first keep on local_free, so
 * the fast path hands out keep blocks and then comes to the slow path.
 * Links are checked as they are walked (encoded free lists); a bad one
 * leaves the list uncut (the pop that reaches it reports it). */
static void cut_free_list(hk_page *page, uint64_t keep) {
    hk_block *prev = NULL, *rest = page->free;
    for (uint64_t i = 0; i < keep; i++) {
        if (rest == NULL) return;
        hk_block *next = hk_block_next(rest);
        if (next != NULL && hk_next_leaves_segment(rest, next)) return;
        prev = rest;
        rest = next;
    }
    if (rest == NULL) return;
    if (page->local_free != NULL) { /* rare: its tail joins the old list */
        hk_block *tail = rest, *next;
        while ((next = hk_block_next(tail)) != NULL) {
            if (hk_next_leaves_segment(tail, next)) return;
            tail = next;
        }
        hk_block_set_next(tail, page->local_free);
    }
    if (prev != NULL) hk_block_set_next(prev, NULL);
    else page->free = NULL;
    page->local_free = rest;
}

/* On the way out of the slow path: when the current page could hand out
 * the block due for a sample, cut its list before it.  |free| +
 * |local_free| = capacity - used bounds what the list holds (0 for
 * hk_page_empty, whose fields are all zero). */
static void arm_class(hk_heap *heap, hk_page *page, unsigned cls) {
    uint64_t keep = hk_sample_keep(heap, cls);
    if ((uint64_t)(page->capacity - page->used) <= keep || page->free == NULL) return;
    cut_free_list(page, keep);
}

/* ---- the marks: a counting filter per page ----
 *
 * hk_segment.sample_bloom[page] holds 16 counters of 4 bits: counter
 * bucket(p) counts the page's live sampled blocks whose address hashes
 * there.  A zero counter proves p was not sampled, so the frees of a
 * marked page's other blocks skip the profiler's table.  The owner adds
 * (at a sample); whoever frees a sampled block subtracts, the owner or
 * another thread (after the record is gone, before the block is pushed),
 * so both are atomic read-modify-writes, at samples and sampled frees
 * only.  A counter at 15 sticks (never moves again) until the page
 * empties.  A shared heap's frees probe the table for every block and move
 * no counter (the pages it adopts may hold marked blocks of an exited
 * thread): a counter may over-count, which costs probes, never under-count,
 * which would lose a free.  When the owner sees every counter at zero it unmarks the page
 * (in_full back to its full bit): its frees take the fast path again. */

#define NIBBLE_STUCK 15u

/* A page of one block (40 KiB and up) moves no counter: its mark says
 * that its block may be sampled, which is as much as a counter would say,
 * so its frees probe the table as a zero counter's would not, and its
 * samples and sampled frees save the filter's two atomic read-modify-
 * writes.  Its mark goes when the page is empty. */
static bool counted(const hk_page *page) { return page->reserved != 1; }

static unsigned bucket_shift(const void *p) {
    return (unsigned)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> 60) * 4;
}

static _Atomic uint64_t *counters_of(hk_segment *seg, hk_page *page) {
    return &seg->sample_bloom[page - seg->pages];
}

/* p may be sampled: its counter is not zero. */
static bool maybe_sampled(hk_segment *seg, hk_page *page, const void *p) {
    return ((hk_load_relaxed(counters_of(seg, page)) >> bucket_shift(p)) & 15u) != 0;
}

/* Adds delta (+1 or -1) to p's counter unless it is stuck. */
static void counter_move(_Atomic uint64_t *w, const void *p, int delta) {
    unsigned sh = bucket_shift(p);
    uint64_t old = hk_load_relaxed(w), nw;
    do {
        unsigned n = (unsigned)(old >> sh) & 15u;
        if (n == NIBBLE_STUCK || (delta < 0 && n == 0)) return;
        nw = delta > 0 ? old + ((uint64_t)1 << sh) : old - ((uint64_t)1 << sh);
    } while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* Marks p's page (its frees leave the fast path) and counts p. */
static void mark_block(void *p) {
    hk_segment *seg = hk_segment_of(p);
    hk_page *page = hk_page_of(seg, p);
    if (counted(page)) counter_move(counters_of(seg, page), p, +1);
    if (!(page->in_full & HK_PAGE_SAMPLED)) hk_page_set_in_full(page, page->in_full | HK_PAGE_SAMPLED);
}

/* The page holds no live sampled block. */
static void unmark_page(hk_segment *seg, hk_page *page) {
    hk_page_set_in_full(page, page->in_full & ~HK_PAGE_SAMPLED);
    hk_store_relaxed(counters_of(seg, page), 0);
}

/* The owner's slow path: a marked page whose sampled blocks were all
 * freed by other threads (who move the counters, not the mark) takes the
 * fast paths again.  Without it a page only other threads free stays
 * marked for good, and in time every such free goes the slow way. */
static void unmark_if_clear(hk_page *page) {
    hk_segment *seg = hk_segment_of(page);
    if (counted(page) ? hk_load_relaxed(counters_of(seg, page)) == 0 : page->used == 0) unmark_page(seg, page);
}

/* Frees p's record if it has one; true if it had. */
static bool unsample_block(hk_segment *seg, hk_page *page, void *p) {
    bool counts = counted(page);
    if ((counts && !maybe_sampled(seg, page, p)) || !hk_upper.prof_unsample(p, !counts)) return false;
    if (counts) counter_move(counters_of(seg, page), p, -1);
    return true;
}

/* Inlined: each frame between malloc and the walk costs the walk ~30
 * instructions a sample. */
static inline __attribute__((always_inline)) bool record(void *p, size_t size, size_t usable) {
    tls_busy = true;
    bool kept = hk_upper.prof_sample(p, size, usable, hk_load_relaxed(&hk_sample_period));
    tls_busy = false;
    return kept;
}

/* A sampled block of a class of at most 1 KiB comes from the arena's shared
 * heap: no thread owns its page, so its free is a slow path already, which
 * looks the block up in the profiler's table (hk_sample_unmarked_free), and
 * the thread heap's page of 64 or more blocks carries no mark (its frees
 * stay fast).  Larger blocks stay in the thread's page, marked: a page of
 * few blocks has few frees to slow down, and the shared heap would map and
 * fault in a page of a large class for each sample (mixed: +25% faults). */
#define HK_SAMPLE_SHARED_MAX 1024
static void *sampled_block(unsigned cls, size_t size) {
    void *p = hk_shared_malloc(cls, false);
    if (p != NULL) record(p, size, hk_class_size[cls]);
    return p;
}

/* The slow path that takes the current page's local frees as its list
 * (the one path of hk_malloc_thread_slow that does not install it through
 * hk_heap_malloc_slow, which arms), armed here when the list holds more
 * blocks or the page is marked: a one-block page's every malloc comes this
 * way, and its list is empty again once its block is taken.  Out of line,
 * so that hk_sample_malloc makes only tail calls and keeps no frame. */
static __attribute__((noinline)) void *malloc_local_armed(hk_heap *heap, unsigned cls, size_t size) {
    hk_page *page = heap->direct[cls];
    void *p = hk_malloc_thread_slow(heap, cls, size); /* takes local_free: direct[cls] stays */
    if (hk_unlikely(hk_sample_arm_wanted(heap, page, cls))) hk_sample_arm(heap, cls);
    return p;
}

/* A thread heap's slow path whose new list is armed either way.  Whether
 * the local frees it would take need arming is known before the take:
 * one block more handed out and one fewer left leave the room past the
 * block due as it was; most need none, and the slow path keeps no frame. */
static inline void *malloc_armed(hk_heap *heap, unsigned cls, size_t size) {
    hk_page *page = heap->direct[cls];
    if (page->local_free != NULL &&
        ((page->in_full & HK_PAGE_SAMPLED) || hk_sample_room_past_due(heap, page, cls)))
        return malloc_local_armed(heap, cls, size);
    return hk_malloc_thread_slow(heap, cls, size); /* hk_heap_malloc_slow arms */
}

/* The block due for a sample: taken (from the shared heap up to 1 KiB)
 * and recorded.  The class's next point is drawn first, so that the
 * thread's slow path arms its page for it (it counts its own block).
 * While this thread is taking a record the point waits for its next slow
 * path. */
static __attribute__((noinline)) void *malloc_due(hk_heap *heap, unsigned cls, size_t size) {
    if (tls_busy) return hk_malloc_thread_slow(heap, cls, size);
    size_t bs = hk_class_size[cls];
    bool shared = bs <= HK_SAMPLE_SHARED_MAX;
    uint64_t n = hk_load_relaxed(&heap->counters.nmalloc[cls]), next = blocks_to_point(draw(&heap->prof_rng), bs);
    void *p = shared ? sampled_block(cls, size) : NULL;
    heap->prof_due[cls] = n + (p == NULL) + next;
    if (p == NULL) p = malloc_armed(heap, cls, size);
    if (p != NULL && !shared && record(p, size, bs)) mark_block(p);
    return p;
}

/* The one-block cache's block due (malloc_cached_block): taking it there
 * instead of through malloc_due keeps the cached page in use; the slow
 * layers would take a fresh page and leave the cache to overflow at the
 * next free (hotclass's 48 KiB phase: 141k of its 188k samples).  Classes
 * of the cache are never the shared heap's. */
void *hk_sample_took_due(hk_heap *heap, unsigned cls, size_t size, void *p) {
    if (tls_busy) return p; /* the point waits for the next slow path */
    size_t bs = hk_class_size[cls];
    HK_VALIDATE(1, bs > HK_SAMPLE_SHARED_MAX);
    heap->prof_due[cls] = hk_load_relaxed(&heap->counters.nmalloc[cls]) + blocks_to_point(draw(&heap->prof_rng), bs);
    if (record(p, size, bs)) mark_block(p);
    return p;
}

/* malloc_slow of a thread heap while hk_sample_state != 0: the block due
 * (counters.nmalloc[cls] + 1 reaches prof_due[cls]) or an ordinary slow
 * path, whose new list is armed (hk_sample_arm). */
static __attribute__((noinline)) void *resync_then_malloc(hk_heap *heap, unsigned cls, size_t size,
                                                           uint32_t state) {
    heap_resync(heap, state);
    return hk_sample_malloc(heap, cls, size);
}

/* Only tail calls: no frame on the path every slow path takes. */
void *hk_sample_malloc(hk_heap *heap, unsigned cls, size_t size) {
    uint32_t state = hk_load_acquire(&hk_sample_state);
    if (hk_unlikely(heap->prof_epoch != state)) return resync_then_malloc(heap, cls, size, state);
    if (hk_unlikely(hk_sample_due(heap, cls))) return malloc_due(heap, cls, size);
    return malloc_armed(heap, cls, size);
}

/* The page now current for cls: unmarked if its sampled blocks are gone,
 * and its list cut before the block due.  Only for a heap that has synced
 * with the present state in hk_sample_malloc (a shared heap, a heap that
 * came here another way, never has). */
void hk_sample_arm(hk_heap *heap, unsigned cls) {
    if (heap->prof_epoch != hk_load_relaxed(&hk_sample_state)) return;
    hk_page *page = heap->direct[cls];
    if (hk_unlikely(page->in_full & HK_PAGE_SAMPLED)) unmark_if_clear(page);
    arm_class(heap, page, cls);
}

/* ---- blocks with no page mark: a countdown per thread ----
 * Huge blocks (marked by their header), the blocks of checked heaps
 * (marked in their trailer, checked.c) and of shared heaps (found at free
 * by a probe of the table, hk_sample_unmarked_free: their frees are slow
 * paths already). */

typedef struct countdown {
    uint32_t epoch;
    int64_t left;
} countdown;

static _Thread_local countdown tls_huge, tls_other;

/* Counts bytes down; true when they hold the sample point (and a new
 * countdown starts). */
static bool countdown_hits(countdown *c, size_t bytes) {
    uint32_t state = hk_load_acquire(&hk_sample_state);
    if (!(state & 1) || tls_busy) return false;
    if (c->epoch != state) {
        c->epoch = state;
        c->left = draw(&tls_rng);
    }
    c->left -= (int64_t)bytes;
    if (c->left > 0) return false;
    c->left = draw(&tls_rng);
    return true;
}

void hk_sample_huge(hk_segment *h, size_t size) {
    if (countdown_hits(&tls_huge, h->usable) && record(h->user, size, h->usable)) h->sampled = 1;
}

bool hk_sample_unmarked_hit(void *p, size_t size, size_t usable) {
    return p != NULL && countdown_hits(&tls_other, usable) && record(p, size, usable);
}

void *hk_sample_unmarked(void *p, size_t size, size_t usable) {
    hk_sample_unmarked_hit(p, size, usable);
    return p;
}

void hk_sample_unmarked_free(void *p) {
    if (hk_unlikely(hk_load_relaxed(&hk_sample_state) != 0)) hk_upper.prof_unsample(p, false);
}

/* ---- frees of marked blocks ---- */

/* The owner's local free found its page marked: p was just pushed on
 * page->local_free. */
void hk_sample_local_free(hk_page *page, void *p) {
    hk_segment *seg = hk_segment_of(p);
    unsample_block(seg, page, p);
    /* No live block, or every counter at zero: no sampled block left
     * (another thread's frees of sampled blocks count down too). */
    if (page->used == 0 || (counted(page) && hk_load_relaxed(counters_of(seg, page)) == 0))
        unmark_page(seg, page);
}

/* Any other free of a block of a marked page, before the block is pushed
 * (once pushed, its owner may hand it out and sample it again). */
void hk_sample_remote_free(hk_segment *seg, hk_page *page, void *p) { unsample_block(seg, page, p); }

void hk_sample_huge_free(hk_segment *h) {
    h->sampled = 0;
    hk_upper.prof_unsample(h->user, true);
}
