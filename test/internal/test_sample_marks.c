/*
 * White-box: the profiler's page marks (core/sample.c).  A sampled small
 * block marks its page (hk_page.in_full's sampled bit), so the page's
 * frees leave the fast path, and is counted in the page's counting filter.
 * Whoever frees a sampled block counts it down; the owner takes the mark
 * off once the counters are all zero -- also when every sampled block was
 * freed by other threads and the owner never frees into the page itself
 * (a page only other threads free stayed marked for good, and in time
 * every free of a producer/consumer program went the slow way).
 */
#include "core/core_internal.h"
#include "harness.h"

#include <hakmem/hakmem.h>
#include <pthread.h>

#define NBLOCKS 16
#define SIZE 2048 /* above HK_SAMPLE_SHARED_MAX: sampled in the thread's page */
#define SMALL 64

static int set_size(const char *name, size_t v) { return hak_ctl(name, NULL, NULL, &v, sizeof v); }
static int set_bool(const char *name, bool v) { return hak_ctl(name, NULL, NULL, &v, sizeof v); }

static void *blocks[NBLOCKS];

static void *free_all(void *arg) {
    (void)arg;
    for (int i = 0; i < NBLOCKS; i++) hak_free(blocks[i]);
    return NULL;
}

static hk_page *page_of(void *p) { return hk_page_of(hk_segment_of(p), p); }

/* Profiling on at one byte: the heap's countdowns start at its next slow
 * path, so blocks are allocated (into warm) until one is sampled. */
static void *warm[4096];
static int nwarm;

static bool sample_every_block(void) {
    if (set_size("prof.sample_bytes", 1) != 0 || set_bool("prof.active", true) != 0) return false;
    for (nwarm = 0; nwarm < 4096;) {
        void *p = warm[nwarm++] = hak_malloc(SIZE);
        if (hk_page_has_samples(page_of(p))) return true;
    }
    return false;
}

static void stop_sampling(void) {
    set_bool("prof.active", false);
    for (int i = 0; i < nwarm; i++) hak_free(warm[i]);
}

TEST(page_freed_by_others_only_loses_its_mark) {
    hk_ensure_init();
    REQUIRE_TRUE(sample_every_block(), "profiling every block");
    void *last_warm = warm[nwarm - 1];
    hak_free(last_warm); /* the page's only sampled blocks are now blocks[] */
    nwarm--;
    for (int i = 0; i < NBLOCKS; i++) blocks[i] = hak_malloc(SIZE);
    hk_page *page = page_of(blocks[0]);
    REQUIRE_TRUE(page_of(blocks[NBLOCKS - 1]) == page, "one page");
    EXPECT_TRUE(hk_page_has_samples(page), "marked by its sampled blocks");
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no more samples");

    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, free_all, NULL), 0, "pthread_create");
    pthread_join(t, NULL);

    /* The owner allocates on: its slow path passes the page (it collects
     * the blocks the other thread freed) and finds no sampled block left. */
    void *more[4096];
    int n = 0;
    while (n < 4096 && hk_page_has_samples(page)) more[n++] = hak_malloc(SIZE);
    EXPECT_TRUE(!hk_page_has_samples(page), "unmarked after the owner's slow path");
    EXPECT_LT_I(n, 4096, "within a page's worth of allocations");
    for (int i = 0; i < n; i++) hak_free(more[i]);
    stop_sampling();
}

TEST(page_with_a_live_sampled_block_keeps_its_mark) {
    hk_ensure_init();
    REQUIRE_TRUE(sample_every_block(), "profiling every block");
    void *kept = warm[nwarm - 1]; /* sampled */
    nwarm--;
    for (int i = 0; i < NBLOCKS; i++) blocks[i] = hak_malloc(SIZE);
    hk_page *page = page_of(kept);
    REQUIRE_TRUE(page_of(blocks[0]) == page, "the blocks share the kept block's page");
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no more samples");
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, free_all, NULL), 0, "pthread_create");
    pthread_join(t, NULL);
    void *more[2048];
    for (int i = 0; i < 2048; i++) more[i] = hak_malloc(SIZE);
    EXPECT_TRUE(hk_page_has_samples(page), "a sampled block is still live on it");
    for (int i = 0; i < 2048; i++) hak_free(more[i]);
    hak_free(kept);
    stop_sampling();
}

/* Profiling on at one byte until a 64 KiB block (a one-block page) is
 * sampled, then at a rate that samples nothing more: that block, or NULL. */
static void *sample_one_large_block(void) {
    if (set_size("prof.sample_bytes", 1) != 0 || set_bool("prof.active", true) != 0) return NULL;
    void *p = NULL;
    for (int i = 0; i < 64 && p == NULL; i++) {
        void *q = hak_malloc(65536);
        if (hk_page_has_samples(page_of(q))) p = q;
        else hak_free(q);
    }
    if (set_size("prof.sample_bytes", (size_t)1 << 40) != 0) return NULL;
    return p;
}

/* The owner's free of a sampled block of a one-block page (64 KiB), the
 * class's current page: unmarked, the page stays current with its block on
 * local_free, as a free with profiling off leaves it.  It went to the
 * one-block cache, and every later pair of the class took the cache's
 * slower path (micro 64 KiB with prof:1: +125 instructions a pair). */
TEST(sampled_current_page_stays_current_after_its_free) {
    hk_ensure_init();
    void *p = sample_one_large_block();
    REQUIRE_TRUE(p != NULL, "a 64 KiB block sampled, then no more samples");
    hk_page *page = page_of(p);
    hk_heap *heap = hk_tls_heap;
    REQUIRE_EQ_I(page->reserved, 1, "a one-block page");
    REQUIRE_TRUE(heap->direct[page->cls] == page, "the class's current page");
    hak_free(p);
    EXPECT_EQ_I(page->in_full, 0, "unmarked, in no list and not cached");
    EXPECT_TRUE(heap->direct[page->cls] == page, "still the current page");
    EXPECT_TRUE(page->local_free == p, "its block on local_free");
    void *again = hak_malloc(65536);
    EXPECT_TRUE(again == p, "the next malloc takes it back");
    hak_free(again);
    set_bool("prof.active", false);
}

static uint64_t live_samples(void) {
    uint64_t v = 0;
    size_t len = sizeof v;
    hak_ctl("prof.stats.live_samples", &v, &len, NULL, 0);
    return v;
}

/* A sampled block of 1 KiB or less comes from the arena's shared heap:
 * the thread's pages stay unmarked, and its free (by any thread) drops
 * its record. */
static void *small_blocks[64];

static void *free_small(void *arg) {
    (void)arg;
    for (int i = 0; i < 64; i++) hak_free(small_blocks[i]);
    return NULL;
}

TEST(small_sampled_blocks_live_in_the_shared_heap) {
    hk_ensure_init();
    hak_ctl("prof.reset", NULL, NULL, NULL, 0);
    REQUIRE_EQ_I(set_size("prof.sample_bytes", 1), 0, "prof.sample_bytes 1");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    void *warm_small[4096];
    int nw = 0;
    while (nw < 4096 && live_samples() == 0) warm_small[nw++] = hak_malloc(SMALL);
    REQUIRE_LT_I(nw, 4096, "a block was sampled");
    uint64_t base = live_samples();
    for (int i = 0; i < 64; i++) small_blocks[i] = hak_malloc(SMALL);
    EXPECT_EQ_U(live_samples(), base + 64, "every block sampled");
    int shared = 0, marked = 0;
    for (int i = 0; i < 64; i++) {
        hk_page *page = page_of(small_blocks[i]);
        hk_heap *owner = hk_load_relaxed(&page->heap);
        shared += owner != NULL && owner->shared;
        marked += hk_page_has_samples(page);
    }
    EXPECT_EQ_I(shared, 64, "on pages of the shared heap");
    EXPECT_EQ_I(marked, 0, "no page marked");
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no more samples");
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, free_small, NULL), 0, "pthread_create");
    pthread_join(t, NULL);
    EXPECT_EQ_U(live_samples(), base, "their records went with them");
    set_bool("prof.active", false);
    for (int i = 0; i < nw; i++) hak_free(warm_small[i]);
}

/* With profiling on, a burst of a one-block class (48 KiB) takes its blocks
 * from the thread's one-block cache without sample.c while none is due
 * (hk_sample_not_due), and the block due is still the one sampled: its
 * page is marked, the blocks before it come from the cache unmarked. */
#define CACHED 49152
TEST(cached_blocks_are_sampled_at_their_due_count) {
    hk_ensure_init();
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no sample point near");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    void *a[5];
    a[4] = hak_malloc(CACHED);
    hk_heap *heap = hk_tls_heap;
    unsigned cls = page_of(a[4])->cls, row = cls - HK_BCACHE_FIRST;
    REQUIRE_TRUE(cls >= HK_BCACHE_FIRST && cls <= HK_BCACHE_LAST, "a one-block class");
    hk_tcache_max_set(cls, 8);
    hk_heap_trim(heap); /* the cache's bound follows at a trim */
    for (int i = 0; i < 4; i++) a[i] = hak_malloc(CACHED);
    for (int i = 0; i < 4; i++) hak_free(a[i]);
    unsigned cached = heap->bcache_n[row]; /* a[3]'s page stays current */
    REQUIRE_TRUE(cached >= 3, "pages cached");
    REQUIRE_EQ_U(heap->prof_epoch, hk_load_relaxed(&hk_sample_state), "the heap has synced");
    heap->prof_due[cls] = hk_load_relaxed(&heap->counters.nmalloc[cls]) + 3; /* the third from now */
    void *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = hak_malloc(CACHED);
        if (i < 2) EXPECT_EQ_U(heap->bcache_n[row], cached - 1 - i, "from the cache");
        EXPECT_EQ_I(hk_page_has_samples(page_of(b[i])), i == 2, "sampled only at the due count");
    }
    EXPECT_TRUE(heap->prof_due[cls] > hk_load_relaxed(&heap->counters.nmalloc[cls]), "a next point drawn");
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no more samples");
    for (int i = 0; i < 3; i++) hak_free(b[i]);
    EXPECT_TRUE(!hk_page_has_samples(page_of(b[2])), "unmarked by its free");
    hak_free(a[4]);
    set_bool("prof.active", false);
}

/* The local frees a slow path takes become the page's list: when the
 * block due for a sample lies within them, the list is cut before it, so
 * that the due block comes to the slow path and is sampled at its count
 * (whether they need cutting is decided before the take). */
TEST(local_frees_taken_are_cut_before_the_block_due) {
    hk_ensure_init();
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no sample point near");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    void *b[256];
    int n = 0;
    b[n++] = hak_malloc(SIZE);
    hk_heap *heap = hk_tls_heap;
    unsigned cls = page_of(b[0])->cls;
    while (n < 128 && heap->prof_epoch != hk_load_relaxed(&hk_sample_state)) b[n++] = hak_malloc(SIZE);
    REQUIRE_EQ_U(heap->prof_epoch, hk_load_relaxed(&hk_sample_state), "the heap has synced at a slow path");
    hk_page *page = heap->direct[cls];
    while (n < 256 && heap->direct[cls] == page && page->free != NULL) b[n++] = hak_malloc(SIZE);
    REQUIRE_TRUE(heap->direct[cls] == page && page->free == NULL, "the current page handed out its list");
    REQUIRE_TRUE(!hk_page_has_samples(page), "unmarked");
    int mine = 0;
    for (int i = n - 1; i >= 0 && mine < 8; i--) {
        if (page_of(b[i]) != page) continue;
        hak_free(b[i]); /* onto the current page's local_free */
        b[i] = NULL;
        mine++;
    }
    REQUIRE_EQ_I(mine, 8, "eight of its blocks freed by their owner");
    REQUIRE_TRUE(page->local_free != NULL && page->free == NULL, "on local_free");
    heap->prof_due[cls] = hk_load_relaxed(&heap->counters.nmalloc[cls]) + 5; /* the fifth from now */
    void *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = hak_malloc(SIZE);
        EXPECT_TRUE(page_of(c[i]) == page, "from the local frees");
        EXPECT_EQ_I(hk_page_has_samples(page), i == 4, "sampled only at the due count");
    }
    REQUIRE_EQ_I(set_size("prof.sample_bytes", (size_t)1 << 40), 0, "no more samples");
    for (int i = 0; i < 5; i++) hak_free(c[i]);
    for (int i = 0; i < n; i++) hak_free(b[i]);
    set_bool("prof.active", false);
}

/* A page of one block moves no counter (its mark is as exact as one would
 * be): a sampled 64 KiB block freed by another thread still drops its
 * record, and the segment's counters for the page stay zero. */
static void *remote_block;
static void *free_remote_block(void *arg) {
    (void)arg;
    hak_free(remote_block);
    return NULL;
}

TEST(one_block_page_sampled_block_freed_by_another_thread) {
    hk_ensure_init();
    hak_ctl("prof.reset", NULL, NULL, NULL, 0);
    void *p = sample_one_large_block();
    REQUIRE_TRUE(p != NULL, "a 64 KiB block sampled, then no more samples");
    hk_segment *seg = hk_segment_of(p);
    hk_page *page = page_of(p);
    REQUIRE_EQ_I(page->reserved, 1, "a one-block page");
    EXPECT_EQ_U(hk_load_relaxed(&seg->sample_bloom[page - seg->pages]), 0, "no counter moved");
    uint64_t before = live_samples();
    REQUIRE_TRUE(before >= 1, "its record is live");
    remote_block = p;
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, free_remote_block, NULL), 0, "pthread_create");
    pthread_join(t, NULL);
    EXPECT_EQ_U(live_samples(), before - 1, "the remote free dropped its record");
    EXPECT_EQ_U(hk_load_relaxed(&seg->sample_bloom[page - seg->pages]), 0, "still no counter");
    set_bool("prof.active", false);
}

TEST_MAIN()
