/*
 * Remote frees: a block freed by a thread that does not own its page goes
 * on the page's thread-free list (one CAS), or, while the page sits in its
 * owner's full list, on the owner's delayed list (heap.c says how the
 * states go).
 *
 * A thread's frees into one page in a row are chained in its heap's run
 * and pushed together: a consumer freeing a batch of blocks another thread
 * allocated pays one CAS per run instead of one per block, and the owner
 * takes the blocks back in runs rather than a few at a time while it
 * allocates (prodcons_batch: doc/DESIGN.md, remote frees).  The first free
 * into a page goes out at once and notes the page; the second in a row
 * starts the run, so frees in random order (one a page) cost little more
 * than the push.  A run holds under HK_RUN_BYTES of one page, so what a
 * thread that stops freeing keeps back is at most that.
 */
#include "core/core_internal.h"

static void delayed_push(hk_heap *owner, hk_block *head, hk_block *tail) {
    uintptr_t old = hk_load_relaxed(&owner->delayed);
    do {
        hk_block_set_next(tail, (hk_block *)old);
    } while (!hk_cas_weak_release(&owner->delayed, &old, (uintptr_t)head));
}

void hk_free_remote_list(hk_page *page, hk_block *head, hk_block *tail, uint32_t n) {
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    for (;;) {
        uintptr_t state = tf & HK_TF_MASK;
        if (state != HK_TF_FULL) {
            hk_block_set_next(tail, (hk_block *)hk_tf_ptr(tf));
            uintptr_t count = (tf & ~(HK_TF_COUNT_ONE - 1)) + HK_TF_COUNT_ONE * n;
            if (hk_cas_weak_release(&page->xthread_free, &tf, count | (uintptr_t)head | state))
                return;
            continue;
        }
        uintptr_t freeing = (tf & ~HK_TF_MASK) | HK_TF_FREEING;
        if (!hk_cas_strong_acq_rel(&page->xthread_free, &tf, freeing)) continue;
        delayed_push(hk_load_acquire(&page->heap), head, tail);
        tf = freeing;
        while (!hk_cas_strong_acq_rel(&page->xthread_free, &tf,
                                      (tf & ~HK_TF_MASK) | HK_TF_NORMAL)) {
        }
        return;
    }
}

/* The run goes out; its page stays noted, so the next free into it in a
 * row starts the next run. */
void hk_remote_run_flush(hk_heap *heap) {
    hk_remote_run *run = &heap->run;
    if (run->n == 0) return;
    hk_free_remote_list(run->page, run->head, run->tail, run->n);
    run->n = 0;
}

/* b is free now, on top of its page's list or of its owner's delayed
 * list (where a block of a full page goes): a block that went out alone
 * and is freed again in a row.  Once its owner has taken it back and
 * handed it out again it is on neither, so a block freed, reused and freed
 * again is never taken for a double free. */
static bool on_top_of_a_free_list(hk_page *page, hk_block *b) {
    if (hk_tf_ptr(hk_load_relaxed(&page->xthread_free)) == (uintptr_t)b) return true;
    hk_heap *owner = hk_load_acquire(&page->heap);
    return owner != NULL && hk_load_relaxed(&owner->delayed) == (uintptr_t)b;
}

/* A second free in a row into the noted page starts the run, unless its
 * block is over half of HK_RUN_BYTES (that goes out alone) or is free
 * already (answers false). */
bool hk_remote_run_start(hk_heap *heap, hk_page *page, hk_block *b) {
    if (hk_unlikely(on_top_of_a_free_list(page, b))) return false;
    if (page->block_size > HK_RUN_BYTES / 2) {
        hk_free_remote(page, b);
        return true;
    }
    hk_remote_run *run = &heap->run;
    *run = (hk_remote_run){page, b, b, 1};
    return true;
}
