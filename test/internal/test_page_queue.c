/*
 * White-box: page queues (core/page.c): push puts a page first, append
 * last, remove
 * unlinks it from anywhere, first/last/count and the prev/next links stay
 * consistent.  The pages are plain structs: a queue never looks inside
 * them beyond the links.
 */
#include "core/core_internal.h"
#include "harness.h"

#define NPAGES 8

static hk_page pages[NPAGES];

/* The queue walked both ways equals want[0..n-1] (first to last). */
static bool queue_is(const hk_page_queue *q, hk_page *const *want, size_t n) {
    if (q->count != n) return false;
    if (n == 0) return q->first == NULL && q->last == NULL;
    if (q->first != want[0] || q->last != want[n - 1]) return false;
    if (q->first->prev != NULL || q->last->next != NULL) return false;
    hk_page *p = q->first;
    for (size_t i = 0; i < n; i++, p = p->next)
        if (p != want[i]) return false;
    if (p != NULL) return false;
    p = q->last;
    for (size_t i = n; i-- > 0; p = p->prev)
        if (p != want[i]) return false;
    return p == NULL;
}

TEST(page_queue_push_puts_first) {
    hk_page_queue q = {0};
    memset(pages, 0x5a, sizeof pages); /* stale links must be overwritten */
    hk_page_queue_push(&q, &pages[0]);
    EXPECT_EQ_PTR(q.first, &pages[0], "first");
    EXPECT_EQ_PTR(q.last, &pages[0], "last");
    EXPECT_NULL(pages[0].next, "next");
    EXPECT_NULL(pages[0].prev, "prev");
    hk_page_queue_push(&q, &pages[1]);
    hk_page_queue_push(&q, &pages[2]);
    hk_page *want[] = {&pages[2], &pages[1], &pages[0]};
    EXPECT_TRUE(queue_is(&q, want, 3), "2 1 0, linked both ways");
    EXPECT_EQ_U(q.count, 3, "count");
}

TEST(page_queue_remove_anywhere) {
    hk_page_queue q = {0};
    for (unsigned i = 0; i < 5; i++) hk_page_queue_push(&q, &pages[i]); /* 4 3 2 1 0 */
    hk_page_queue_remove(&q, &pages[2]); /* middle */
    EXPECT_NULL(pages[2].next, "removed page unlinked (next)");
    EXPECT_NULL(pages[2].prev, "removed page unlinked (prev)");
    hk_page *w1[] = {&pages[4], &pages[3], &pages[1], &pages[0]};
    EXPECT_TRUE(queue_is(&q, w1, 4), "middle removed");
    hk_page_queue_remove(&q, &pages[4]); /* first */
    hk_page *w2[] = {&pages[3], &pages[1], &pages[0]};
    EXPECT_TRUE(queue_is(&q, w2, 3), "first removed");
    hk_page_queue_remove(&q, &pages[0]); /* last */
    hk_page *w3[] = {&pages[3], &pages[1]};
    EXPECT_TRUE(queue_is(&q, w3, 2), "last removed");
    EXPECT_EQ_U(q.count, 2, "count");
    hk_page_queue_remove(&q, &pages[3]);
    hk_page_queue_remove(&q, &pages[1]);
    EXPECT_TRUE(queue_is(&q, NULL, 0), "empty");
    EXPECT_EQ_U(q.count, 0, "count 0");
    EXPECT_NULL(q.first, "first NULL");
    EXPECT_NULL(q.last, "last NULL");
    /* Usable again after emptying. */
    hk_page_queue_push(&q, &pages[7]);
    hk_page *w4[] = {&pages[7]};
    EXPECT_TRUE(queue_is(&q, w4, 1), "one page after emptying");
}

TEST(page_queue_append_puts_last) {
    hk_page_queue q = {0};
    memset(pages, 0x5a, sizeof pages);
    hk_page_queue_append(&q, &pages[0]);
    hk_page *w1[] = {&pages[0]};
    EXPECT_TRUE(queue_is(&q, w1, 1), "one page, linked both ways");
    hk_page_queue_append(&q, &pages[1]);
    hk_page_queue_push(&q, &pages[2]);
    hk_page_queue_append(&q, &pages[3]);
    hk_page *w2[] = {&pages[2], &pages[0], &pages[1], &pages[3]};
    EXPECT_TRUE(queue_is(&q, w2, 4), "2 0 1 3: appended last, pushed first");
    hk_page_queue_remove(&q, &pages[3]);
    hk_page_queue_remove(&q, &pages[2]);
    hk_page *w3[] = {&pages[0], &pages[1]};
    EXPECT_TRUE(queue_is(&q, w3, 2), "ends removed");
}

/* A page moves between two queues (queue <-> full, as heap.c does). */
TEST(page_queue_move_between_queues) {
    hk_page_queue a = {0}, b = {0};
    for (unsigned i = 0; i < NPAGES; i++) hk_page_queue_push(&a, &pages[i]);
    for (unsigned i = 0; i < NPAGES; i += 2) {
        hk_page_queue_remove(&a, &pages[i]);
        hk_page_queue_push(&b, &pages[i]);
    }
    hk_page *wa[] = {&pages[7], &pages[5], &pages[3], &pages[1]};
    hk_page *wb[] = {&pages[6], &pages[4], &pages[2], &pages[0]};
    EXPECT_TRUE(queue_is(&a, wa, 4), "odd pages stay");
    EXPECT_TRUE(queue_is(&b, wb, 4), "even pages moved, newest first");
    EXPECT_EQ_U(a.count + b.count, NPAGES, "no page lost");
}

TEST_MAIN()
