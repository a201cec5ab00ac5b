/*
 * White-box: the one-block cache (core/bcache.c).  A thread heap keeps the
 * pages of the classes of one block a page (40 KiB to 896 KiB) whose block
 * it freed, whole, for its next malloc of the class, at most the class's
 * keep (tcache_max, the adaptive keep included, at most HK_BCACHE_MAX); a
 * second free of a cached block, by the owner or another thread, is
 * reported and changes nothing; trim, flush and thread exit hand cached
 * pages back; the heap stays valid throughout (hk_heap_is_valid).
 */
#include "core/core_internal.h"
#include "harness.h"

#include <hakmem/hakmem.h>
#include <pthread.h>

#define SIZE (48 * 1024) /* class 42: one block a 64 KiB page */
#define CLS 42
#define ROW (CLS - HK_BCACHE_FIRST)

static hk_page *page_of(void *p) { return hk_page_of(hk_segment_of(p), p); }

/* The calling thread's heap, with the class's keep at n blocks. */
static hk_heap *heap_keeping(unsigned n) {
    void *p = hak_malloc(16); /* the thread has its heap */
    hak_free(p);
    hk_heap *heap = hk_tls_heap;
    hk_tcache_max_set(CLS, n);
    hk_heap_trim(heap); /* the cache's bound follows at a trim */
    return heap;
}

TEST(bcache_class_bounds_hold_one_block_pages) {
    hk_ensure_init();
    EXPECT_EQ_U(hk_class_size[CLS], SIZE, "class 42 is 48 KiB");
    for (unsigned c = HK_BCACHE_FIRST; c <= HK_BCACHE_LAST; c++)
        EXPECT_EQ_U(hk_class_slices[c] * HK_SLICE_SIZE / hk_class_size[c], 1, "one block a page");
    EXPECT_GT_U(hk_class_slices[HK_BCACHE_FIRST - 1] * HK_SLICE_SIZE / hk_class_size[HK_BCACHE_FIRST - 1], 1,
                "the class below holds more");
    EXPECT_TRUE(hk_class_size[HK_BCACHE_LAST] <= HK_SEGMENT_BLOCK_MAX, "the last is a segment class");
    EXPECT_TRUE(hk_class_size[HK_BCACHE_LAST + 1] > HK_SEGMENT_BLOCK_MAX, "the next one is mapped alone");
}

TEST(bcache_free_then_malloc_reuses_the_page) {
    hk_ensure_init();
    hk_heap *heap = heap_keeping(8);
    REQUIRE_EQ_U(heap->bcache_cap[ROW], 8, "bound 8");
    void *a[5]; /* a[4]'s page is the class's current one: a free leaves it there */
    for (int i = 0; i < 5; i++) a[i] = hak_malloc(SIZE);
    for (int i = 0; i < 4; i++) hak_free(a[i]);
    EXPECT_EQ_U(heap->bcache_n[ROW], 4, "four pages cached");
    for (int i = 0; i < 4; i++) EXPECT_TRUE(hk_page_is_cached(page_of(a[i])), "cached");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid with pages cached");
    void *b[4];
    for (int i = 0; i < 4; i++) b[i] = hak_malloc(SIZE);
    for (int i = 0; i < 4; i++) EXPECT_EQ_PTR(b[i], a[3 - i], "the cached blocks, last freed first");
    EXPECT_EQ_U(heap->bcache_n[ROW], 0, "cache empty");
    for (int i = 0; i < 4; i++) EXPECT_TRUE(!hk_page_is_cached(page_of(b[i])), "in use again");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid after");
    for (int i = 0; i < 5; i++) hak_free(i < 4 ? b[i] : a[4]);
    EXPECT_EQ_U(heap->bcache_n[ROW], 4, "cached again");
    hk_heap_flush(heap);
    EXPECT_EQ_U(heap->bcache_n[ROW], 0, "flush empties it");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid after the flush");
}

TEST(bcache_keeps_at_most_its_bound) {
    hk_ensure_init();
    hk_heap *heap = heap_keeping(3);
    void *a[10];
    for (int i = 0; i < 10; i++) a[i] = hak_malloc(SIZE);
    for (int i = 0; i < 10; i++) hak_free(a[i]);
    EXPECT_EQ_U(heap->bcache_n[ROW], 3, "three kept");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid");
    hk_tcache_max_set(CLS, 1);
    hk_heap_trim(heap);
    EXPECT_LE_U(heap->bcache_n[ROW], 1, "a trim gives back beyond the new bound");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid after the trim");
    hk_heap_flush(heap);
}

static void *free_it(void *p) {
    hak_free(p);
    return NULL;
}

/* A cached block freed again, by this thread or by another one. */
static void double_free_case(bool remote) {
    hk_ensure_init();
    hk_heap *heap = heap_keeping(8);
    void *p = hak_malloc(SIZE), *current = hak_malloc(SIZE);
    hak_free(p);
    REQUIRE_TRUE(hk_page_is_cached(page_of(p)), "cached");
    uint64_t reports = hk_load_relaxed(&hk_nreports);
    if (remote) {
        pthread_t t;
        REQUIRE_EQ_I(pthread_create(&t, NULL, free_it, p), 0, "pthread_create");
        pthread_join(t, NULL);
        hk_heap_collect_delayed(heap);
    } else {
        hak_free(p);
    }
    EXPECT_EQ_U(hk_load_relaxed(&hk_nreports), reports + 1, "reported");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "the cache is as it was");
    void *q1 = hak_malloc(SIZE), *q2 = hak_malloc(SIZE);
    EXPECT_EQ_PTR(q1, p, "handed out once");
    EXPECT_NE_PTR(q2, p, "not twice");
    hak_free(q1);
    hak_free(q2);
    hak_free(current);
    hk_heap_flush(heap);
}

TEST(bcache_owner_double_free_is_reported_and_ignored) { double_free_case(false); }

TEST(bcache_remote_double_free_is_reported_and_ignored) { double_free_case(true); }

/* A thread that caches pages and exits hands them back: a later thread
 * gets the same memory from the arena. */
static void *cache_and_exit(void *arg) {
    void **out = arg;
    hk_heap *heap = heap_keeping(8);
    for (int i = 0; i < 5; i++) out[i] = hak_malloc(SIZE);
    for (int i = 0; i < 4; i++) hak_free(out[i]);
    return (void *)(uintptr_t)heap->bcache_n[ROW]; /* out[4] is freed by the test */
}

TEST(bcache_thread_exit_hands_pages_back) {
    hk_ensure_init();
    void *blocks[5];
    pthread_t t;
    void *cached;
    REQUIRE_EQ_I(pthread_create(&t, NULL, cache_and_exit, blocks), 0, "pthread_create");
    pthread_join(t, &cached);
    EXPECT_EQ_U((uintptr_t)cached, 4, "four cached before the exit");
    for (int i = 0; i < 4; i++) {
        hk_page *page = page_of(blocks[i]);
        EXPECT_TRUE(!hk_page_is_cached(page), "no longer cached");
        EXPECT_NULL(hk_load_relaxed(&page->heap), "back in the arena");
    }
    hak_free(blocks[4]); /* abandoned with the thread's other pages */
    hk_tcache_max_set(CLS, hk_tcache_max_default(CLS));
}

/* malloc takes a cached block without malloc_slow's layers (api.c,
 * malloc_cached_block), and the slow path it counts may be the one that
 * trims: a trim that finds the class's bound lowered gives the cache's
 * pages back.  The block is taken first; taken after the trim, the cache
 * was empty and malloc returned NULL with errno 0 (make check's
 * fragmentation and signal-storm tests caught it). */
TEST(bcache_take_at_a_trimming_slow_path) {
    hk_ensure_init();
    hk_heap *heap = heap_keeping(8);
    void *a = hak_malloc(SIZE), *b = hak_malloc(SIZE);
    hak_free(a); /* b's page is the current one: a's is cached */
    REQUIRE_EQ_U(heap->bcache_n[ROW], 1, "one page cached");
    hk_tcache_max_set(CLS, 0); /* the bound drops at the next trim */
    heap->slow_count = HK_TRIM_EVERY; /* the next slow path trims */
    void *c = hak_malloc(SIZE);
    EXPECT_EQ_PTR(c, a, "the cached block");
    EXPECT_EQ_U(heap->bcache_n[ROW], 0, "the cache is empty");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid");
    hak_free(c);
    hak_free(b);
    hk_tcache_max_set(CLS, 8);
    hk_heap_trim(heap);
}

TEST_MAIN()
