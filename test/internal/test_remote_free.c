/*
 * White-box: the remote-free protocol (core/heap.c, page.c).  A page's
 * xthread_free is count << 48 | list head | state.  In HK_TF_NORMAL a
 * remote free pushes onto the page's list and bumps the count; the owner
 * takes list and count at once (hk_page_collect).  In HK_TF_FULL (the page
 * detached in its owner's full list) the first remote free flips the state
 * to HK_TF_FREEING, hands its block to the owner heap's delayed list and
 * sets HK_TF_NORMAL; frees racing with it go to the page's list.  The
 * owner here is a heap of the test's own on arena 0, never a thread's.
 */
#include "core/core_internal.h"
#include "harness.h"

#define CLS 3 /* 48-byte blocks, one 64 KiB slice: 1365 of them */
#define NTHREADS 4

static hk_heap owner;
static hk_page *page;
static hk_block **blocks;
static unsigned nblocks;

/* A page of CLS owned by `owner`, every block handed out. */
static bool setup(void) {
    hk_ensure_init();
    hk_heap_init(&owner, &hk_arenas[0], false);
    page = hk_arena_page_alloc(&hk_arenas[0], &owner, CLS);
    if (page == NULL) return false;
    hk_page_queue_push(&owner.queue[CLS], page);
    while (page->capacity < page->reserved) hk_page_extend(page);
    static hk_block *all[8192];
    blocks = all;
    nblocks = 0;
    while (page->free != NULL) blocks[nblocks++] = hk_page_pop_checked(page);
    return nblocks == page->reserved && page->used == nblocks;
}

static void teardown(void) {
    if (page->in_full) hk_page_queue_remove(&owner.full, page);
    else hk_page_queue_remove(&owner.queue[CLS], page);
    hk_arena_page_free(&hk_arenas[0], page);
    page = NULL;
}

/* Index of block b in the page, or -1 if b is not a block start of it. */
static long block_index(const hk_block *b) {
    uintptr_t off = (uintptr_t)b - (uintptr_t)hk_page_start(page);
    if (off % page->block_size != 0 || off / page->block_size >= page->capacity) return -1;
    return (long)(off / page->block_size);
}

/* Walks list, marking seen[]; returns its length, or -1 on a foreign or
 * repeated block. */
static long walk(hk_block *list, unsigned char *seen) {
    long n = 0;
    for (hk_block *b = list; b != NULL; b = hk_block_next(b)) {
        long i = block_index(b);
        if (i < 0 || seen[i]) return -1;
        seen[i] = 1;
        if (++n > 8192) return -1;
    }
    return n;
}

struct freer { unsigned first, step; };

static void *free_share(void *arg) {
    const struct freer *f = arg;
    for (unsigned i = f->first; i < nblocks; i += f->step) hk_free_remote(page, blocks[i]);
    return NULL;
}

/* Frees blocks[0..nblocks) from NTHREADS threads, interleaved. */
static bool free_from_threads(void) {
    pthread_t t[NTHREADS];
    struct freer f[NTHREADS];
    for (unsigned i = 0; i < NTHREADS; i++) {
        f[i] = (struct freer){i, NTHREADS};
        if (pthread_create(&t[i], NULL, free_share, &f[i]) != 0) return false;
    }
    for (unsigned i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    return true;
}

TEST(remote_free_normal_pushes_and_counts) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    EXPECT_EQ_U(hk_load_relaxed(&page->xthread_free), HK_TF_NORMAL, "nothing freed yet");
    hk_free_remote(page, blocks[5]);
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(hk_tf_count(tf), 1, "count 1");
    EXPECT_EQ_PTR((void *)hk_tf_ptr(tf), blocks[5], "head is the block");
    EXPECT_EQ_U(tf & HK_TF_MASK, HK_TF_NORMAL, "state NORMAL");
    EXPECT_NULL(hk_block_next(blocks[5]), "end of list");
    hk_free_remote(page, blocks[9]);
    tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(hk_tf_count(tf), 2, "count 2");
    EXPECT_EQ_PTR((void *)hk_tf_ptr(tf), blocks[9], "newest first");
    EXPECT_EQ_PTR(hk_block_next(blocks[9]), blocks[5], "then the first");
    uint16_t used = page->used;
    hk_page_collect(page);
    EXPECT_EQ_U(hk_load_relaxed(&page->xthread_free), HK_TF_NORMAL, "list taken, state kept");
    EXPECT_EQ_U(page->used, used - 2, "used -= count");
    EXPECT_EQ_PTR(page->free, blocks[9], "free list is the remote list");
    teardown();
}

TEST(remote_free_from_threads_then_collect) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    REQUIRE_TRUE(free_from_threads(), "threads");
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(tf & HK_TF_MASK, HK_TF_NORMAL, "state NORMAL");
    EXPECT_EQ_U(hk_tf_count(tf), nblocks, "count is every free");
    static unsigned char seen[8192];
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk((hk_block *)hk_tf_ptr(tf), seen), (long long)nblocks,
                "the list holds each block once");
    EXPECT_EQ_U(page->used, nblocks, "used unchanged until collected");
    hk_page_collect(page);
    EXPECT_EQ_U(hk_load_relaxed(&page->xthread_free), 0, "empty list, NORMAL");
    EXPECT_EQ_U(page->used, 0, "every block back");
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk(page->free, seen), (long long)nblocks, "free list holds them all");
    teardown();
}

/* As the owner does when the page has no free block left (heap.c
 * page_to_full). */
static void page_to_owners_full_list(void) {
    hk_page_queue_remove(&owner.queue[CLS], page);
    hk_page_queue_push(&owner.full, page);
    page->in_full = 1;
    hk_store_relaxed(&page->xthread_free, HK_TF_FULL);
}

/* The page in its owner's full list: the first remote free goes to the
 * owner's delayed list, later ones to the page. */
TEST(remote_free_full_page_goes_to_delayed) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    page_to_owners_full_list();
    hk_free_remote(page, blocks[7]);
    EXPECT_EQ_PTR((void *)hk_load_relaxed(&owner.delayed), blocks[7], "delayed list");
    EXPECT_EQ_U(hk_load_relaxed(&page->xthread_free), HK_TF_NORMAL, "FULL -> NORMAL, no count");
    hk_free_remote(page, blocks[8]);
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_PTR((void *)hk_tf_ptr(tf), blocks[8], "the second goes to the page");
    EXPECT_EQ_U(hk_tf_count(tf), 1, "counted");
    EXPECT_EQ_PTR((void *)hk_load_relaxed(&owner.delayed), blocks[7], "delayed unchanged");
    /* The owner takes the delayed block: the page leaves the full list. */
    uint16_t used = page->used;
    hk_heap_collect_delayed(&owner);
    EXPECT_EQ_U(hk_load_relaxed(&owner.delayed), 0, "delayed taken");
    EXPECT_EQ_U(page->in_full, 0, "page out of the full list");
    EXPECT_EQ_U(owner.full.count, 0, "full list empty");
    EXPECT_EQ_U(owner.queue[CLS].count, 1, "back in its class queue");
    EXPECT_EQ_PTR(page->local_free, blocks[7], "block on the local list");
    EXPECT_EQ_U(page->used, used - 1, "used -= 1");
    hk_page_collect(page);
    EXPECT_EQ_U(page->used, used - 2, "the page's remote free collected too");
    teardown();
}

/* Many threads free into a FULL page at once: exactly one block reaches
 * the delayed list, the rest the page's list, none lost or doubled. */
TEST(remote_free_full_page_from_threads) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    page_to_owners_full_list();
    REQUIRE_TRUE(free_from_threads(), "threads");
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(tf & HK_TF_MASK, HK_TF_NORMAL, "state back to NORMAL");
    static unsigned char seen[8192];
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk((hk_block *)hk_load_relaxed(&owner.delayed), seen), 1,
                "one block on the delayed list");
    EXPECT_EQ_U(hk_tf_count(tf), nblocks - 1, "the rest counted on the page");
    EXPECT_EQ_I(walk((hk_block *)hk_tf_ptr(tf), seen), (long long)nblocks - 1,
                "the rest on the page's list, none twice");
    hk_heap_collect_delayed(&owner);
    hk_page_collect(page);
    EXPECT_EQ_U(page->in_full, 0, "out of the full list");
    EXPECT_EQ_U(page->used, 0, "every block back");
    teardown();
}

/* ---- runs: a freeing heap's frees into one page, pushed together ---- */

static hk_heap freer[NTHREADS];

/* Blocks on pg's thread-free list, by its count. */
static unsigned pushed(hk_page *pg) { return hk_tf_count(hk_load_relaxed(&pg->xthread_free)); }

/* The first free into a page goes out at once and notes the page; the
 * next ones in a row wait in the run, newest first, until another page's
 * block comes; then they are pushed at once, counted, each once. */
TEST(remote_run_is_pushed_when_the_page_changes) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    hk_heap_init(&freer[0], &hk_arenas[0], false);
    EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[0]), "taken");
    EXPECT_EQ_U(pushed(page), 1, "the first goes out alone");
    EXPECT_EQ_PTR(freer[0].run.page, page, "its page noted");
    for (unsigned i = 1; i < 10; i++)
        EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[i]), "taken");
    EXPECT_EQ_U(pushed(page), 1, "the nine are held");
    EXPECT_EQ_U(freer[0].run.n, 9, "nine in the run");
    EXPECT_TRUE(hk_heap_is_valid(&freer[0], 1), "the run's invariants hold");
    /* Two pages of the test's own, standing for pages of other threads:
     * one of small blocks, one of blocks over half HK_RUN_BYTES. */
    static hk_page small, large;
    static union { hk_block b; char bytes[8192]; } small_block, large_block[2];
    small.block_size = 48;
    large.block_size = sizeof large_block[0];
    EXPECT_TRUE(hk_remote_run_add(&freer[0], &small, &small_block.b), "taken");
    EXPECT_EQ_PTR(freer[0].run.page, &small, "another page's block is noted");
    EXPECT_EQ_U(freer[0].run.n, 0, "and went out alone");
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(hk_tf_count(tf), 10, "the run pushed when the page changed");
    EXPECT_EQ_PTR((void *)hk_tf_ptr(tf), blocks[9], "newest first");
    static unsigned char seen[8192];
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk((hk_block *)hk_tf_ptr(tf), seen), 10, "each block once");
    hk_page_collect(page);
    EXPECT_EQ_U(page->used, nblocks - 10, "collected as ten remote frees");
    EXPECT_EQ_U(pushed(&small), 1, "the small block out");
    for (unsigned i = 0; i < 2; i++) hk_remote_run_add(&freer[0], &large, &large_block[i].b);
    EXPECT_EQ_U(pushed(&large), 2,
                "blocks over half HK_RUN_BYTES go out alone, even in a row");
    EXPECT_EQ_U(freer[0].run.n, 0, "no run of them");
    teardown();
}

/* A run holds under HK_RUN_BYTES: the block that reaches it pushes them
 * all; the abandon of the freeing heap (its thread's exit) pushes the rest. */
TEST(remote_run_is_pushed_when_full_and_at_abandon) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    hk_heap_init(&freer[0], &hk_arenas[0], false);
    unsigned per_run = (HK_RUN_BYTES + page->block_size - 1) / page->block_size;
    /* blocks[0] goes out alone; the run starts at blocks[1] */
    for (unsigned i = 0; i < per_run; i++) hk_remote_run_add(&freer[0], page, blocks[i]);
    EXPECT_EQ_U(pushed(page), 1, "one short: held");
    hk_remote_run_add(&freer[0], page, blocks[per_run]);
    EXPECT_EQ_U(pushed(page), per_run + 1, "full: pushed");
    EXPECT_EQ_U(freer[0].run.n, 0, "the run is empty");
    for (unsigned i = per_run + 1; i < per_run + 4; i++) hk_remote_run_add(&freer[0], page, blocks[i]);
    EXPECT_EQ_U(pushed(page), per_run + 1, "three held");
    hk_heap_abandon(&freer[0]);
    EXPECT_EQ_U(pushed(page), per_run + 4,
                "abandon pushed the last three");
    EXPECT_EQ_U(freer[0].run.n, 0, "nothing left behind");
    teardown();
}

/* A block freed twice in a row is refused the second time (a double free),
 * whether it went out alone or waits in the run; the page never gets it
 * twice and it is never linked to itself. */
TEST(remote_run_refuses_a_block_freed_twice_in_a_row) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    hk_heap_init(&freer[0], &hk_arenas[0], false);
    EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[3]), "first free taken, out alone");
    EXPECT_TRUE(!hk_remote_run_add(&freer[0], page, blocks[3]), "second refused");
    EXPECT_EQ_U(freer[0].run.n, 0, "no run started by it");
    EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[4]), "the next block starts the run");
    EXPECT_TRUE(!hk_remote_run_add(&freer[0], page, blocks[4]), "and is refused again");
    EXPECT_EQ_U(freer[0].run.n, 1, "still one in the run");
    hk_remote_run_flush(&freer[0]);
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(hk_tf_count(tf), 2, "each pushed once");
    EXPECT_EQ_PTR((void *)hk_tf_ptr(tf), blocks[4], "the run's block on top");
    EXPECT_EQ_PTR(hk_block_next(blocks[4]), blocks[3], "then the one that went alone");
    EXPECT_NULL(hk_block_next(blocks[3]), "not linked to itself");
    teardown();
}

/* A block freed, taken back and handed out by its owner, then freed again
 * by the same thread in a row is no double free: it is taken (a program's
 * consumer gets the same address back; the ASan build's stats test did). */
TEST(remote_run_takes_a_block_freed_reused_and_freed_again) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    hk_heap_init(&freer[0], &hk_arenas[0], false);
    EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[3]), "freed, out alone");
    hk_page_collect(page);
    REQUIRE_TRUE(hk_page_pop_checked(page) == blocks[3], "the owner hands it out again");
    EXPECT_TRUE(hk_remote_run_add(&freer[0], page, blocks[3]), "freed again: taken");
    EXPECT_EQ_U(freer[0].run.n, 1, "it starts the run");
    hk_remote_run_flush(&freer[0]);
    EXPECT_EQ_U(pushed(page), 1, "pushed");
    teardown();
}

/* A run pushed into a page that went to its owner's full list meanwhile
 * goes whole to the delayed list; the owner takes every block of it. */
TEST(remote_run_into_a_full_page_goes_to_delayed) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    hk_heap_init(&freer[0], &hk_arenas[0], false);
    for (unsigned i = 0; i < 5; i++) hk_remote_run_add(&freer[0], page, blocks[i]);
    hk_page_collect(page); /* the owner takes blocks[0], which went alone */
    REQUIRE_TRUE(hk_load_relaxed(&page->xthread_free) == HK_TF_NORMAL, "nothing on the page's list");
    page_to_owners_full_list();
    hk_remote_run_flush(&freer[0]);
    static unsigned char seen[8192];
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk((hk_block *)hk_load_relaxed(&owner.delayed), seen), 4,
                "the run's four on the delayed list");
    EXPECT_EQ_U(hk_load_relaxed(&page->xthread_free), HK_TF_NORMAL, "FULL -> NORMAL, no count");
    uint16_t used = page->used;
    hk_heap_collect_delayed(&owner);
    EXPECT_EQ_U(page->in_full, 0, "out of the full list");
    EXPECT_EQ_U(page->used, used - 4, "the four taken back");
    teardown();
}

static void *free_share_in_runs(void *arg) {
    const struct freer *f = arg;
    hk_heap *me = &freer[f->first];
    for (unsigned i = f->first; i < nblocks; i += f->step)
        hk_remote_run_add(me, page, blocks[i]);
    hk_remote_run_flush(me);
    return NULL;
}

/* Threads each freeing their share in runs: every block on the page's
 * list once, the count right. */
TEST(remote_runs_from_threads_then_collect) {
    REQUIRE_TRUE(setup(), "a page with every block handed out");
    pthread_t t[NTHREADS];
    struct freer f[NTHREADS];
    for (unsigned i = 0; i < NTHREADS; i++) {
        hk_heap_init(&freer[i], &hk_arenas[0], false);
        f[i] = (struct freer){i, NTHREADS};
        REQUIRE_TRUE(pthread_create(&t[i], NULL, free_share_in_runs, &f[i]) == 0, "thread");
    }
    for (unsigned i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    EXPECT_EQ_U(hk_tf_count(tf), nblocks, "count is every free");
    static unsigned char seen[8192];
    memset(seen, 0, sizeof seen);
    EXPECT_EQ_I(walk((hk_block *)hk_tf_ptr(tf), seen), (long long)nblocks,
                "the list holds each block once");
    hk_page_collect(page);
    EXPECT_EQ_U(page->used, 0, "every block back");
    teardown();
}

TEST_MAIN()
