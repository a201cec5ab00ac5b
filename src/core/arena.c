/*
 * Arenas own segments, hand out pages (spans of slices) to heaps, take them
 * back, keep the pages of exited threads (abandoned) for adoption, and give
 * free memory back to the OS after the decay time.  One mutex per arena,
 * taken only on slow paths: a page allocation serves many blocks.
 *
 * Segment list order: every segment with a free slice precedes every full
 * one, so the first-fit scan stops at the first full segment.
 */
#include "core/core_internal.h"

hk_arena hk_arenas[HK_MAX_ARENAS];
static _Atomic unsigned next_arena;

void hk_arenas_init(unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        hk_arena *a = &hk_arenas[i];
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->shared_lock, NULL);
        a->index = i;
        hk_store_relaxed(&a->decay_ms, hk_opt.decay_ms);
    }
}

/* How much a new thread would find ready in a: free slices that are still
 * resident, and pages of exited threads to adopt. */
static size_t arena_ready(hk_arena *a) {
    return hk_load_relaxed(&a->ndirty) + hk_load_relaxed(&a->nabandoned);
}

/* A new thread's arena: the one with the fewest threads, and among those
 * the one with the most memory ready (an exited thread's, still resident,
 * is reused instead of faulted in anew elsewhere); the scan starts
 * round-robin so that ties spread. */
hk_arena *hk_arena_next_for_thread(void) {
    unsigned n = hk_opt.narenas, start = hk_fetch_add_relaxed(&next_arena, 1) % n;
    hk_arena *best = &hk_arenas[start];
    for (unsigned k = 1; k < n; k++) {
        hk_arena *a = &hk_arenas[(start + k) % n];
        unsigned t = hk_load_relaxed(&a->nthreads), bt = hk_load_relaxed(&best->nthreads);
        if (t < bt || (t == bt && arena_ready(a) > arena_ready(best))) best = a;
    }
    hk_fetch_add_relaxed(&best->nthreads, 1);
    return best;
}

static void seg_unlink(hk_arena *a, hk_segment *seg) {
    if (seg->prev) seg->prev->next = seg->next;
    else a->segs = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    else a->segs_tail = seg->prev;
    seg->next = seg->prev = NULL;
}

static void seg_push_front(hk_arena *a, hk_segment *seg) {
    seg->prev = NULL;
    seg->next = a->segs;
    if (a->segs) a->segs->prev = seg;
    else a->segs_tail = seg;
    a->segs = seg;
}

static void seg_push_back(hk_arena *a, hk_segment *seg) {
    seg->next = NULL;
    seg->prev = a->segs_tail;
    if (a->segs_tail) a->segs_tail->next = seg;
    else a->segs = seg;
    a->segs_tail = seg;
}

/* A span of n slices from the arena's segments (those with free slices
 * come first): the first that is still resident if the arena holds enough
 * dirty slices for one, else the first that fits.  Resident memory taken
 * first is memory not faulted in again (mixed, 2 threads: 9% fewer page
 * faults, 5% less peak RSS), and the clean slices it leaves are the ones
 * the decay has already given back or that were never touched.  NULL
 * when none fits. */
static hk_segment *take_span(hk_arena *a, unsigned n, int *idx, bool *is_zero) {
    for (int resident = hk_load_relaxed(&a->ndirty) >= n; resident >= 0; resident--)
        for (hk_segment *seg = a->segs; seg != NULL && seg->free_mask != 0; seg = seg->next)
            if ((*idx = hk_segment_span_alloc(seg, n, resident, is_zero)) >= 0) return seg;
    return NULL;
}

hk_page *hk_arena_page_alloc(hk_arena *a, hk_heap *heap, unsigned cls) {
    unsigned n = hk_class_slices[cls];
    bool is_zero = false;
    int idx = -1;
    uint64_t now = hk_os_now_ms();
    hk_lock(&a->lock);
    hk_arena_maybe_purge_locked(a, now);
    hk_segment *seg = take_span(a, n, &idx, &is_zero);
    if (seg == NULL) {
        seg = hk_segment_alloc(a); /* a failing mapping releases the BigCache first (os.c) */
        if (seg == NULL) {
            hk_unlock(&a->lock);
            return NULL;
        }
        seg_push_front(a, seg);
        a->nsegs++;
        idx = hk_segment_span_alloc(seg, n, false, &is_zero);
    }
    if (seg->free_mask == 0 && seg != a->segs_tail) {
        seg_unlink(a, seg);
        seg_push_back(a, seg);
    }
    hk_page_init(seg, (unsigned)idx, n, cls, is_zero);
    HK_VALIDATE(1, hk_segment_is_valid(seg));
    hk_fetch_add_relaxed(&a->pages[cls], 1);
    hk_fetch_add_relaxed(&a->npage_allocs, 1);
    hk_unlock(&a->lock);
    hk_page *page = &seg->pages[idx];
    hk_store_release(&page->heap, heap);
    return page;
}

static void page_free_locked(hk_arena *a, hk_page *page, uint64_t now) {
    hk_segment *seg = hk_segment_of(page);
    unsigned idx = (unsigned)(page - seg->pages);
    hk_fetch_sub_relaxed(&a->pages[page->cls], 1);
    hk_store_relaxed(&page->heap, NULL);
    page->reserved = 0; /* a free of a block here now reports, not corrupts */
    bool was_full = seg->free_mask == 0;
    hk_segment_span_free(seg, idx, page->slice_count, now);
    HK_VALIDATE(1, hk_segment_is_valid(seg));
    if (was_full && seg != a->segs) {
        seg_unlink(a, seg);
        seg_push_front(a, seg);
    }
}

void hk_arena_page_free(hk_arena *a, hk_page *page) {
    uint64_t now = hk_os_now_ms();
    hk_lock(&a->lock);
    page_free_locked(a, page, now);
    hk_arena_maybe_purge_locked(a, now);
    hk_unlock(&a->lock);
}

void hk_arena_abandon_page(hk_arena *a, hk_page *page) {
    hk_store_release(&page->heap, NULL);
    hk_lock(&a->lock);
    hk_page_queue_push(&a->abandoned[page->cls], page);
    hk_fetch_add_relaxed(&a->nabandoned, 1);
    hk_unlock(&a->lock);
}

/* Takes an abandoned page of class cls for heap, or NULL. */
hk_page *hk_arena_adopt_page(hk_arena *a, hk_heap *heap, unsigned cls) {
    if (hk_load_relaxed(&a->nabandoned) == 0) return NULL;
    hk_lock(&a->lock);
    hk_page *page = a->abandoned[cls].first;
    if (page != NULL) {
        hk_page_queue_remove(&a->abandoned[cls], page);
        hk_fetch_sub_relaxed(&a->nabandoned, 1);
    }
    hk_unlock(&a->lock);
    if (page != NULL) hk_store_release(&page->heap, heap);
    return page;
}

/* Abandoned pages whose blocks have all come back are returned. */
static void release_empty_abandoned_locked(hk_arena *a, uint64_t now) {
    if (hk_load_relaxed(&a->nabandoned) == 0) return;
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        hk_page *page = a->abandoned[c].first;
        while (page != NULL) {
            hk_page *next = page->next;
            hk_page_collect(page);
            if (page->used == 0) {
                hk_page_queue_remove(&a->abandoned[c], page);
                hk_fetch_sub_relaxed(&a->nabandoned, 1);
                page_free_locked(a, page, now);
            }
            page = next;
        }
    }
}

/* Purges what has waited long enough; all: everything now, and unmaps every
 * empty segment.  Otherwise one empty segment is retained. */
static void purge_locked(hk_arena *a, uint64_t now, int64_t decay, bool all) {
    release_empty_abandoned_locked(a, now);
    bool keep_one = !all;
    hk_segment *seg = a->segs;
    while (seg != NULL) {
        hk_segment *next = seg->next;
        bool aged = all || hk_segment_all_aged(seg, now, decay);
        if (hk_segment_is_empty(seg) && aged && !keep_one) {
            seg_unlink(a, seg);
            a->nsegs--;
            hk_segment_free(seg);
        } else {
            if (hk_segment_is_empty(seg)) keep_one = false;
            hk_segment_purge(seg, now, all ? 0 : decay);
        }
        seg = next;
    }
}

void hk_arena_maybe_purge_locked(hk_arena *a, uint64_t now) {
    int64_t decay = hk_load_relaxed(&a->decay_ms);
    if (decay < 0 || now < a->next_purge_ms || !hk_feature_on(HK_FEAT_DECAY)) return;
    a->next_purge_ms = now + (uint64_t)(decay / 4 > 0 ? decay / 4 : 0);
    purge_locked(a, now, decay, false);
}

void hk_arena_purge(hk_arena *a, bool all) {
    uint64_t now = hk_os_now_ms();
    hk_lock(&a->lock);
    purge_locked(a, now, hk_load_relaxed(&a->decay_ms), all);
    hk_unlock(&a->lock);
}

/* For fork.c: the shared locks come before hk_heaps_lock (a shared heap
 * is linked into the heap list under its arena's shared lock), the arena
 * locks after it. */
void hk_arenas_lock_shared_all(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) hk_lock(&hk_arenas[i].shared_lock);
}
void hk_arenas_unlock_shared_all(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) hk_unlock(&hk_arenas[i].shared_lock);
}
void hk_arenas_lock_all(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) hk_lock(&hk_arenas[i].lock);
}
void hk_arenas_unlock_all(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) hk_unlock(&hk_arenas[i].lock);
}

void hk_arenas_reinit_child(void) {
    for (unsigned i = 0; i < hk_opt.narenas; i++) {
        pthread_mutex_init(&hk_arenas[i].lock, NULL);
        pthread_mutex_init(&hk_arenas[i].shared_lock, NULL);
    }
}
