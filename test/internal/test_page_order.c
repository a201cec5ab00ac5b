/*
 * White-box: which page a refill takes (core/heap.c).  A page that leaves
 * its heap's full list because a local free gave it room goes to the *back*
 * of its class queue, so the refill after the current page runs dry takes
 * the page that has been collecting frees longest, not the one that just
 * got its first.  Pushed to the front (as before), a class whose live
 * blocks spread over many pages refilled from a page holding one or two
 * free blocks at a time: larson_live's 640-1024 B classes took the slow
 * path on 38-50% of their mallocs, mixed's on 20-36%.
 */
#include "core/core_internal.h"
#include "harness.h"

#include <hakmem/hakmem.h>
#include <stdlib.h>

#define SIZE 1024 /* class 20: 64 blocks in a 64 KiB page */
#define CLS 20
#define NPAGES 4

static hk_page *page_of(void *p) { return hk_page_of(hk_segment_of(p), p); }

/* Blocks of CLS until NPAGES pages of it are in use, the last one (the
 * current page) partly, the others exhausted and in the full list; *n
 * blocks in all. */
static void **fill_pages(hk_page **pages, size_t *n) {
    size_t cap = NPAGES * 64, k = 0;
    void **b = calloc(cap, sizeof *b);
    if (b == NULL) return NULL;
    unsigned seen = 0, on_last = 0;
    while (k < cap && on_last < 8) {
        b[k] = hak_malloc(SIZE);
        hk_page *pg = page_of(b[k++]);
        if (seen == 0 || pages[seen - 1] != pg) pages[seen++] = pg;
        if (seen == NPAGES) on_last++;
    }
    *n = k;
    return b;
}

static size_t first_block_of(void **b, size_t n, hk_page *pg) {
    for (size_t i = 0; i < n; i++)
        if (b[i] != NULL && page_of(b[i]) == pg) return i;
    return n;
}

TEST(refill_takes_the_page_that_left_full_first) {
    hk_ensure_init();
    hak_free(hak_malloc(16)); /* the thread has its heap */
    hk_heap *heap = hk_tls_heap;
    hk_heap_flush(heap); /* no page of the class left over */
    hk_page *pages[NPAGES] = {0};
    size_t n = 0;
    void **b = fill_pages(pages, &n);
    REQUIRE_TRUE(b != NULL && pages[NPAGES - 1] != NULL, "fill");
    for (unsigned i = 0; i + 1 < NPAGES; i++) {
        REQUIRE_TRUE(pages[i] != NULL && (pages[i]->in_full & HK_PAGE_FULL), "exhausted pages are in full");
        REQUIRE_EQ_U(pages[i]->used, pages[i]->reserved, "every block in use");
    }
    /* Page 0 gets two blocks back, then page 1 one: both leave full. */
    size_t i0 = first_block_of(b, n, pages[0]), i1 = first_block_of(b, n, pages[1]);
    REQUIRE_TRUE(i0 + 1 < n && i1 < n, "blocks of pages 0 and 1");
    hak_free(b[i0]);
    hak_free(b[i0 + 1]);
    b[i0] = b[i0 + 1] = NULL;
    hak_free(b[i1]);
    b[i1] = NULL;
    EXPECT_TRUE(!(pages[0]->in_full & HK_PAGE_FULL), "page 0 left full");
    EXPECT_TRUE(!(pages[1]->in_full & HK_PAGE_FULL), "page 1 left full");
    EXPECT_EQ_PTR(heap->queue[CLS].last, pages[1], "the last to leave full is last in the queue");
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid");
    /* The current page runs dry: the refill takes page 0 (two free blocks,
     * waiting longest), not page 1 (one, the latest). */
    hk_page *cur = pages[NPAGES - 1];
    size_t extra_cap = 64, extra_n = 0;
    void *extra[64];
    while (extra_n < extra_cap) {
        extra[extra_n] = hak_malloc(SIZE);
        if (page_of(extra[extra_n]) != cur) break;
        extra_n++;
    }
    REQUIRE_TRUE(extra_n < extra_cap, "the current page ran dry");
    EXPECT_EQ_PTR(page_of(extra[extra_n]), pages[0], "refilled from the page that left full first");
    extra_n++;
    for (size_t i = 0; i < extra_n; i++) hak_free(extra[i]);
    for (size_t i = 0; i < n; i++)
        if (b[i] != NULL) hak_free(b[i]);
    free(b);
    EXPECT_TRUE(hk_heap_is_valid(heap, 2), "valid after");
}

TEST_MAIN()
