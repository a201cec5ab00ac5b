/*
 * The one-block cache: a thread heap's pages of the classes that hold one
 * block a page (40 KiB to 896 KiB, HK_BCACHE_FIRST..HK_BCACHE_LAST) whose
 * block the owner freed, kept whole for its next malloc of the class.
 *
 * Without it each such free moved the page from the full list to the class
 * queue and counted the queue's empty pages, and each malloc walked the
 * queue, moved the page back to the full list and carved it again: a burst
 * of 48 KiB blocks (hotclass) paid four list moves and two CASes a pair.
 * Now a free is a mark and a push, a malloc a pop and a mark: the page
 * stays in the full list all along (it was taken out and put back at every
 * free and malloc: 296 instructions a pair in a burst of 32, now 223 with
 * the take and the put of a full-list page inline, core_internal.h).
 *
 * A cached page sits in its heap's full list with in_full == HK_PAGE_FULL |
 * HK_PAGE_CACHED, used == 1 (its block is the heap's, not the program's),
 * both lists empty, and its thread-free state HK_TF_FULL, so that a second
 * free of the block is caught: by the owner it leaves the fast path
 * (in_full is not zero), by another thread it reaches the owner's delayed
 * list; both report it (hk_bcache_double_free) and drop it.  At most
 * bcache_cap pages a class: min(HK_BCACHE_MAX, tcache_max of the class,
 * the adaptive keep included); trim, flush and thread exit hand the others
 * back as the emptied pages they are (hk_bcache_give_back, through
 * hk_heap_page_emptied).
 */
#include "core/core_internal.h"

/* The owner freed the block of page (pushed on local_free, used 0); the page
 * sits in its class queue (in_full 0), and is not the current one: it moves
 * to the full list (hk_bcache_put_full, core_internal.h, has the page
 * already there). */
bool hk_bcache_put_queued(hk_heap *heap, hk_page *page) {
    unsigned cls = page->cls, r = cls - HK_BCACHE_FIRST;
    if (page->in_full != 0 || !hk_bcache_class(cls) || page->reserved != 1 || heap->shared || heap->debug)
        return false;
    if (heap->bcache_n[r] >= heap->bcache_cap[r]) return false;
    uintptr_t normal = HK_TF_NORMAL; /* remote frees of the block now reach the delayed list */
    if (!hk_cas_strong_acq_rel(&page->xthread_free, &normal, HK_TF_FULL)) return false;
    hk_page_queue_remove(&heap->queue[cls], page);
    hk_page_queue_push(&heap->full, page);
    hk_bcache_keep(heap, page, r);
    return true;
}

/* A free of the block of a cached page: the owner's (already pushed on
 * local_free, used 0) or another thread's (from the delayed list, not
 * pushed).  The page stays cached as it was. */
void hk_bcache_double_free(hk_page *page, void *p, bool pushed) {
    if (pushed) {
        page->local_free = NULL;
        page->used = 1;
    } else { /* the freer set the state back to NORMAL: FULL again */
        uintptr_t normal = HK_TF_NORMAL;
        hk_cas_strong_acq_rel(&page->xthread_free, &normal, HK_TF_FULL);
    }
    hk_report_ignored("double free (block in its owner's cache)", p, page);
}

/* Each page handed back becomes what a free of its block would have left:
 * an emptied page in the full list (where it already sits), which the
 * heap's empty-page path moves to the queue or back to the arena. */
void hk_bcache_give_back(hk_heap *heap, bool all) {
    for (unsigned r = 0; r < HK_BCACHE_CLASSES; r++) {
        unsigned keep = all ? 0 : heap->bcache_cap[r];
        while (heap->bcache_n[r] > keep) {
            hk_page *page = heap->bcache[r][--heap->bcache_n[r]];
            hk_block *b = (hk_block *)hk_page_start(page);
            hk_block_set_next(b, NULL);
            page->local_free = b;
            page->used = 0;
            hk_page_set_in_full(page, HK_PAGE_FULL);
            hk_heap_page_emptied(heap, page);
        }
    }
}
