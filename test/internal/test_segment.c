/*
 * White-box: a segment's slice spans (core/segment.c).  free_mask has bit i
 * set while slice i is in no page (slice 0, the header, never is);
 * dirty_mask marks the free slices freed since the last purge, purged_mask
 * those purged since; span_alloc is first fit; the arena's ndirty is the
 * sum of |dirty_mask|.  Segments here belong to a zeroed arena of the
 * test's own, linked into no list, so nothing else touches them.  The
 * arena's page allocation takes a span that is still resident before a
 * first fit that is not (arena_takes_a_resident_span_first).
 */
#include "core/core_internal.h"
#include "harness.h"

#define ALL_BUT_HEADER 0xfffffffeu

static hk_arena arena; /* counters only: segments here are in no list */

static hk_segment *new_segment(void) {
    hk_ensure_init();
    return hk_segment_alloc(&arena);
}

static uint32_t bits(unsigned idx, unsigned n) {
    uint32_t m = 0;
    for (unsigned i = idx; i < idx + n; i++) m |= (uint32_t)1 << i;
    return m;
}

TEST(segment_fresh_is_empty_and_clean) {
    size_t mapped = hk_load_relaxed(&arena.mapped);
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    EXPECT_EQ_U((uintptr_t)seg & HK_SEG_MASK, 0, "2 MiB aligned");
    EXPECT_EQ_U(seg->magic, HK_SEG_MAGIC, "magic");
    EXPECT_EQ_U(seg->kind, HK_SEG_SMALL, "kind");
    EXPECT_EQ_PTR(seg->arena, &arena, "arena");
    EXPECT_EQ_U(seg->free_mask, ALL_BUT_HEADER, "every slice but the header free");
    EXPECT_EQ_U(seg->dirty_mask, 0, "nothing dirty");
    EXPECT_EQ_U(seg->purged_mask, 0, "nothing purged");
    EXPECT_TRUE(hk_segment_is_empty(seg), "fresh segment is empty");
    EXPECT_TRUE(hk_segmap_has(seg), "in the segment map");
    EXPECT_TRUE(hk_segmap_has((uint8_t *)seg + HK_SEG_SIZE - 1), "its last byte too");
    EXPECT_EQ_U(hk_load_relaxed(&arena.mapped), mapped + HK_SEG_SIZE, "arena.mapped");
    hk_segment_free(seg);
    EXPECT_EQ_U(hk_load_relaxed(&arena.mapped), mapped, "arena.mapped back");
}

TEST(segment_span_alloc_first_fit) {
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z = false;
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, false, &z), 1, "first slice after the header");
    EXPECT_TRUE(z, "never used: zero");
    EXPECT_TRUE(!hk_segment_is_empty(seg), "a page taken: not empty");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 4, false, &z), 2, "next fit");
    EXPECT_EQ_U(seg->free_mask, ALL_BUT_HEADER & ~bits(1, 5), "slices 1..5 taken");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 3, false, &z), 6, "after the 4");
    /* A hole of one slice at 1: a span of 2 goes past it. */
    hk_segment_span_free(seg, 1, 1, 100);
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 2, false, &z), 9, "a 2-span skips a 1-slice hole");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, false, &z), 1, "a 1-span fills the hole");
    EXPECT_TRUE(!z, "the hole was dirty: not known zero");
    /* A hole of 4 at 2..5: a 3-span takes its start, a 1-span the rest. */
    hk_segment_span_free(seg, 2, 4, 100);
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 3, false, &z), 2, "3 in the 4-hole");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, false, &z), 5, "its last slice");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 21, false, &z), 11, "21 from 11 to 31");
    EXPECT_EQ_U(seg->free_mask, 0, "full");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, false, &z), -1, "full: no span");
    hk_segment_free(seg);
}

TEST(segment_exhaust_then_empty_again) {
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z;
    for (unsigned i = 1; i < HK_SLICES; i++) {
        int idx = hk_segment_span_alloc(seg, 1, false, &z);
        REQUIRE_EQ_I(idx, (int)i, "slices in order");
    }
    EXPECT_EQ_U(seg->free_mask, 0, "all taken");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, false, &z), -1, "exhausted");
    for (unsigned i = 1; i < HK_SLICES; i++) hk_segment_span_free(seg, i, 1, 5);
    EXPECT_TRUE(hk_segment_is_empty(seg), "every slice back");
    EXPECT_EQ_U(seg->dirty_mask, ALL_BUT_HEADER, "all dirty");
    /* The widest span: 31 slices, once. */
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 31, false, &z), 1, "31 slices from 1");
    EXPECT_EQ_U(seg->free_mask, 0, "all taken by one span");
    EXPECT_EQ_U(seg->dirty_mask, 0, "taken slices are not dirty");
    hk_segment_span_free(seg, 1, 31, 6);
    EXPECT_TRUE(hk_segment_is_empty(seg), "the span back");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 32, false, &z), -1, "32 slices never fit (header)");
    EXPECT_EQ_U(seg->free_mask, ALL_BUT_HEADER, "a failed span takes nothing");
    hk_segment_free(seg);
}

/* Every span size at every possible start of a fresh segment: the span
 * taken is exactly the first n free slices. */
TEST(segment_every_span_size) {
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z;
    for (unsigned n = 1; n < HK_SLICES; n++) {
        for (unsigned start = 1; start + n <= HK_SLICES; start++) {
            /* slices 1..start-1 taken, the rest free */
            seg->free_mask = ALL_BUT_HEADER & ~bits(1, start - 1);
            int idx = hk_segment_span_alloc(seg, n, false, &z);
            REQUIRE_EQ_I(idx, (int)start, "first fit");
            REQUIRE_EQ_U(seg->free_mask, ALL_BUT_HEADER & ~bits(1, start - 1 + n),
                         "exactly n slices taken");
        }
        seg->free_mask = ALL_BUT_HEADER & ~bits(1, HK_SLICES - n); /* n - 1 free at the end */
        REQUIRE_EQ_I(hk_segment_span_alloc(seg, n, false, &z), -1, "one slice short");
    }
    seg->free_mask = ALL_BUT_HEADER;
    hk_segment_free(seg);
}

TEST(segment_dirty_and_purged_masks) {
    size_t nd0 = hk_load_relaxed(&arena.ndirty);
    uint64_t nref0 = hk_load_relaxed(&arena.nrefaults);
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z;
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 8, false, &z), 1, "8 from 1");
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 4, false, &z), 9, "4 from 9");
    hk_segment_span_free(seg, 1, 8, 1000);
    EXPECT_EQ_U(seg->dirty_mask, bits(1, 8), "freed span dirty");
    EXPECT_EQ_U(seg->dirty_since_ms, 1000, "oldest dirty time set");
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0 + 8, "arena ndirty += 8");
    hk_segment_span_free(seg, 9, 4, 2000);
    EXPECT_EQ_U(seg->dirty_mask, bits(1, 12), "both dirty");
    EXPECT_EQ_U(seg->dirty_since_ms, 1000, "the oldest time kept");
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0 + 12, "arena ndirty += 4");
    EXPECT_GE_U(hk_load_relaxed(&arena.ndirty_peak), nd0 + 12, "peak");
    /* Taking 2 dirty slices back: not zero, no longer dirty. */
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 2, false, &z), 1, "reuse from 1");
    EXPECT_TRUE(!z, "dirty memory is not known zero");
    EXPECT_EQ_U(seg->dirty_mask, bits(3, 10), "slices 1, 2 no longer dirty");
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0 + 10, "arena ndirty -= 2");
    /* Not aged yet: nothing purged. */
    EXPECT_EQ_U(hk_segment_purge(seg, 1500, 1000), 0, "younger than decay");
    EXPECT_EQ_U(hk_segment_purge(seg, 5000, -1), 0, "decay -1: never");
    EXPECT_EQ_U(seg->dirty_mask, bits(3, 10), "still dirty");
    /* At 2000 only the slices freed at 1000 have waited 1000 ms: 3..8 go
     * back, 9..12 (freed at 2000) wait; an empty segment of them may not
     * go yet either. */
    EXPECT_EQ_U(hk_segment_purge(seg, 2000, 1000), 6 * HK_SLICE_SIZE, "slices 3..8 purged");
    EXPECT_EQ_U(seg->dirty_mask, bits(9, 4), "9..12 still dirty");
    EXPECT_EQ_U(seg->dirty_since_ms, 2000, "the oldest left");
    EXPECT_TRUE(!hk_segment_all_aged(seg, 2999, 1000), "9..12 younger than the decay time");
    EXPECT_EQ_U(hk_segment_purge(seg, 2999, 1000), 0, "nothing aged at 2999");
    EXPECT_TRUE(hk_segment_all_aged(seg, 3000, 1000), "9..12 aged at 3000");
    EXPECT_EQ_U(hk_segment_purge(seg, 3000, 1000), 4 * HK_SLICE_SIZE, "slices 9..12 purged");
    EXPECT_EQ_U(seg->dirty_mask, 0, "none dirty");
    EXPECT_EQ_U(seg->purged_mask, bits(3, 10), "purged remembered");
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0, "arena ndirty back");
    EXPECT_EQ_U(hk_segment_purge(seg, 9000, 0), 0, "nothing left to purge");
    /* A purged span taken again reads as zero and counts its refaults. */
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 3, false, &z), 3, "3 from 3");
    EXPECT_TRUE(z, "purged memory is zero");
    EXPECT_EQ_U(hk_load_relaxed(&arena.nrefaults), nref0 + 3, "3 refaults");
    EXPECT_EQ_U(seg->purged_mask, bits(6, 7), "taken slices leave purged_mask");
    /* Two dirty runs purge as two: bytes are their sum. */
    hk_segment_span_free(seg, 1, 2, 3000);
    hk_segment_span_free(seg, 4, 1, 3000);
    EXPECT_EQ_U(hk_segment_purge(seg, 3000, 0), 3 * HK_SLICE_SIZE, "runs 1-2 and 4");
    EXPECT_EQ_U(seg->purged_mask, bits(1, 2) | bits(4, 1) | bits(6, 7),
                "purged: 1, 2, 4, 6..12 (3 and 5 in use)");
    hk_segment_span_free(seg, 3, 3, 4000);
    EXPECT_TRUE(hk_segment_is_empty(seg), "all back");
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0 + 3, "three dirty slices");
    hk_segment_free(seg);
    EXPECT_EQ_U(hk_load_relaxed(&arena.ndirty), nd0, "segment_free uncounts its dirty slices");
}

/* A dirty run that reaches the top slice (31) is purged whole. */
TEST(segment_purge_run_to_the_top) {
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z;
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 31, false, &z), 1, "the whole segment");
    hk_segment_span_free(seg, 1, 31, 0);
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 12, false, &z), 1, "1..12 again");
    EXPECT_EQ_U(seg->dirty_mask, bits(13, 19), "13..31 dirty");
    EXPECT_EQ_U(hk_segment_purge(seg, 10, 0), 19 * HK_SLICE_SIZE, "19 slices");
    EXPECT_EQ_U(seg->purged_mask, bits(13, 19), "13..31 purged");
    hk_segment_span_free(seg, 1, 31 - 19, 10);
    /* The slices 1..31 all dirty: one run of 31. */
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 31, false, &z), 1, "all");
    hk_segment_span_free(seg, 1, 31, 20);
    EXPECT_EQ_U(hk_segment_purge(seg, 20, 0), 31 * HK_SLICE_SIZE, "31 slices, one run");
    EXPECT_EQ_U(seg->purged_mask, ALL_BUT_HEADER, "all purged");
    hk_segment_free(seg);
}

/* resident_only: only a run of dirty (still resident) free slices. */
TEST(segment_span_alloc_resident_only_takes_a_dirty_run) {
    hk_segment *seg = new_segment();
    REQUIRE_NOT_NULL(seg, "hk_segment_alloc");
    bool z = true;
    REQUIRE_EQ_I(hk_segment_span_alloc(seg, 8, false, &z), 1, "8 from 1");
    hk_segment_span_free(seg, 5, 4, 100); /* 5..8 dirty, 9..31 never used */
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 2, true, &z), 5, "the dirty run");
    EXPECT_TRUE(!z, "dirty memory is not known zero");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 3, true, &z), -1, "no dirty run of 3 (7, 8 only)");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 3, false, &z), 7, "first fit: 7, 8 and a clean 9");
    EXPECT_TRUE(!z, "part dirty is not zero");
    EXPECT_EQ_I(hk_segment_span_alloc(seg, 1, true, &z), -1, "no dirty slice left");
    EXPECT_EQ_U(seg->dirty_mask, 0, "none dirty");
    hk_segment_free(seg);
}

/* The first class whose pages are n slices. */
static int class_of_slices(unsigned n) {
    for (unsigned c = 0; c < HK_NCLASSES; c++)
        if (hk_class_slices[c] == n && hk_class_size[c] <= HK_SEGMENT_BLOCK_MAX) return (int)c;
    return -1;
}

/* Segment B (first in the list) has clean slices; segment A behind it one
 * dirty slice: a one-slice page takes A's (first fit took B's, faulting a
 * slice in while a resident one waited). */
TEST(arena_takes_a_resident_span_first) {
    hk_ensure_init();
    int one = class_of_slices(1), two = class_of_slices(2);
    REQUIRE_TRUE(one >= 0 && two >= 0, "classes of 1 and 2 slices");
    static hk_arena a; /* no purge: decay -1 */
    pthread_mutex_init(&a.lock, NULL);
    pthread_mutex_init(&a.shared_lock, NULL);
    hk_store_relaxed(&a.decay_ms, -1);
    static hk_heap h;
    hk_page *pages[HK_SLICES];
    for (unsigned i = 0; i < HK_SLICES - 1; i++) {
        pages[i] = hk_arena_page_alloc(&a, &h, (unsigned)one);
        REQUIRE_NOT_NULL(pages[i], "page");
    }
    hk_segment *sa = hk_segment_of(pages[0]);
    REQUIRE_EQ_U(sa->free_mask, 0, "segment A full");
    hk_arena_page_free(&a, pages[9]); /* its slice is A's one dirty slice */
    hk_page *big = hk_arena_page_alloc(&a, &h, (unsigned)two);
    REQUIRE_NOT_NULL(big, "two-slice page");
    hk_segment *sb = hk_segment_of(big);
    REQUIRE_TRUE(sb != sa && a.segs == sb, "a new segment B, first in the list");
    hk_page *p = hk_arena_page_alloc(&a, &h, (unsigned)one);
    REQUIRE_NOT_NULL(p, "page");
    EXPECT_EQ_PTR(hk_segment_of(p), sa, "taken from A, where a slice is resident");
    EXPECT_EQ_PTR(p, pages[9], "the freed slice");
    EXPECT_EQ_U(hk_load_relaxed(&a.ndirty), 0, "no dirty slice left");
    pages[9] = p;
    for (unsigned i = 0; i < HK_SLICES - 1; i++) hk_arena_page_free(&a, pages[i]);
    hk_arena_page_free(&a, big);
    hk_arena_purge(&a, true);
    EXPECT_EQ_U(hk_load_relaxed(&a.mapped), 0, "both segments unmapped");
}

TEST_MAIN()
