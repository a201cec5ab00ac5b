/*
 * Validity checks: the invariants written next to the data in
 * core_types.h, checked.  Debug builds (--enable-debug) assert them where
 * they must hold, through HK_VALIDATE (core_internal.h): level 1 (the
 * default there) checks counts, bounds and ownership in O(1) or O(slices);
 * level 2 (HAKMEM_CONF validate:2) also walks free lists and page queues.
 * Each function reports the first broken invariant on stderr and returns
 * false; release builds never call them.
 */
#include "core/core_internal.h"

_Atomic uint64_t hk_nvalidated[HK_VALID_KINDS];

static bool broken(const char *what, const void *obj, const char *why) {
    char buf[192];
    hk_fmt(buf, sizeof buf, "hakmem: invalid %s %p: %s\n", what, obj, why);
    hk_write_stderr(buf);
    return false;
}

/* b starts one of the page's first nblocks blocks. */
static bool block_of_page(const hk_page *page, const hk_block *b, uint32_t nblocks) {
    uintptr_t start = (uintptr_t)hk_page_start((hk_page *)page), a = (uintptr_t)b;
    return a >= start && a < start + (uintptr_t)nblocks * page->block_size &&
           (a - start) % page->block_size == 0;
}

/* Blocks on the list from head, all at block starts inside the page's
 * carved part; -1 when one is not (or the list loops). */
static long list_length(const hk_page *page, const hk_block *head) {
    long n = 0;
    for (const hk_block *b = head; b != NULL; b = hk_block_next(b)) {
        if (!block_of_page(page, b, page->capacity)) return -1;
        if (++n > page->capacity) return -1;
    }
    return n;
}

/* A page held by its owner (or under its shared heap's lock). */
bool hk_page_is_valid(const hk_page *page, int level) {
    hk_fetch_add_relaxed(&hk_nvalidated[HK_VALID_PAGE], 1);
    if (page == &hk_page_empty) return page->free == NULL && page->capacity == 0;
    if (page->slice_back != 0) return broken("page", page, "not the head of its span");
    if (page->slice_count == 0 || page->slice_count >= HK_SLICES)
        return broken("page", page, "slice_count");
    if (page->cls >= HK_NCLASSES || page->block_size != hk_class_size[page->cls])
        return broken("page", page, "block_size is not its class's size");
    if (page->reserved != page->slice_count * HK_SLICE_SIZE / page->block_size)
        return broken("page", page, "reserved != blocks its span holds");
    if (page->capacity > page->reserved) return broken("page", page, "capacity > reserved");
    if (page->used > page->capacity) return broken("page", page, "used > capacity");
    if (level < 2) return true;
    long nfree = list_length(page, page->free), nlocal = list_length(page, page->local_free);
    if (nfree < 0 || nlocal < 0) return broken("page", page, "a list leaves the carved blocks");
    if (page->used != page->capacity - nfree - nlocal)
        return broken("page", page, "used != capacity - |free| - |local_free|");
    return true;
}

static bool queue_is_valid(const hk_heap *heap, const hk_page_queue *q, unsigned cls, bool full) {
    size_t n = 0;
    const hk_page *prev = NULL;
    for (const hk_page *p = q->first; p != NULL; prev = p, p = p->next) {
        if (p->prev != prev) return broken("heap", heap, "a queue's back link");
        if (hk_load_relaxed(&p->heap) != heap)
            return broken("heap", heap, "a queued page of another heap");
        if ((bool)(p->in_full & HK_PAGE_FULL) != full)
            return broken("heap", heap, "in_full disagrees with the list");
        if (!full && p->cls != cls) return broken("heap", heap, "a page in another class's queue");
        if (!hk_page_is_valid(p, 1)) return false;
        if (++n > q->count) break;
    }
    if (n != q->count || q->last != prev) return broken("heap", heap, "a queue's count or tail");
    return true;
}

/* The one-block cache (core_types.h, hk_heap.bcache). */
static bool bcache_is_valid(const hk_heap *heap) {
    for (unsigned r = 0; r < HK_BCACHE_CLASSES; r++) {
        if (heap->bcache_n[r] > heap->bcache_cap[r] || heap->bcache_cap[r] > HK_BCACHE_MAX)
            return broken("heap", heap, "one-block cache over its bound");
        for (unsigned i = 0; i < heap->bcache_n[r]; i++) {
            const hk_page *p = heap->bcache[r][i];
            if (hk_load_relaxed(&p->heap) != heap || p->cls != HK_BCACHE_FIRST + r || p->reserved != 1)
                return broken("heap", heap, "a cached page of another heap or class");
            if (p->in_full != (HK_PAGE_FULL | HK_PAGE_CACHED) || p->used != 1 || p->free != NULL || p->local_free != NULL)
                return broken("heap", heap, "a cached page's state");
        }
    }
    return true;
}

/* The remote run (core_types.h, hk_remote_run): n blocks of its page,
 * head to tail, tail reached at the n-th and not before (none when n is
 * 0: the page is only noted). */
static bool run_is_valid(const hk_heap *heap) {
    const hk_remote_run *run = &heap->run;
    const hk_page *page = run->page;
    if (run->n == 0) return true; /* page: only noted */
    if (page == NULL || page->block_size > HK_RUN_BYTES / 2 ||
        (uint64_t)run->n * page->block_size >= HK_RUN_BYTES)
        return broken("heap", heap, "remote run over its bound");
    const hk_block *b = run->head;
    for (uint32_t i = 0; i < run->n; i++) {
        /* reserved, not capacity: the owner writes capacity, this thread reads */
        if (!block_of_page(page, b, page->reserved))
            return broken("heap", heap, "remote run holds a block not of its page");
        if ((b == run->tail) != (i == run->n - 1))
            return broken("heap", heap, "remote run's count and tail disagree");
        if (b != run->tail) b = hk_block_next(b);
    }
    return true;
}

/* A heap held by its owner. */
bool hk_heap_is_valid(const hk_heap *heap, int level) {
    hk_fetch_add_relaxed(&hk_nvalidated[HK_VALID_HEAP], 1);
    if (heap->arena == NULL) return broken("heap", heap, "no arena");
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        const hk_page *d = heap->direct[c];
        if (d == NULL) return broken("heap", heap, "direct[c] is NULL");
        if (d != &hk_page_empty && (d->cls != c || hk_load_relaxed(&d->heap) != heap))
            return broken("heap", heap, "direct[c] is not a page of class c of this heap");
        if (!hk_page_is_valid(d, 1)) return false;
        if (heap->divmagic[c] != hk_class_divmagic[c] ||
            heap->divlimit[c] != hk_class_divmagic[c] - 1)
            return broken("heap", heap, "block-boundary tables");
    }
    if (!bcache_is_valid(heap) || !run_is_valid(heap)) return false;
    if (level < 2) return true;
    for (unsigned c = 0; c < HK_NCLASSES; c++)
        if (!queue_is_valid(heap, &heap->queue[c], c, false)) return false;
    return queue_is_valid(heap, &heap->full, 0, true);
}

/* A small segment, under its arena's lock. */
bool hk_segment_is_valid(const hk_segment *seg) {
    hk_fetch_add_relaxed(&hk_nvalidated[HK_VALID_SEGMENT], 1);
    if (seg->magic != HK_SEG_MAGIC || seg->kind != HK_SEG_SMALL)
        return broken("segment", seg, "magic or kind");
    if (((uintptr_t)seg & HK_SEG_MASK) != 0) return broken("segment", seg, "not 2 MiB aligned");
    if (!hk_segmap_has(seg)) return broken("segment", seg, "not in the segment map");
    if (seg->free_mask & 1u) return broken("segment", seg, "the header slice is free");
    if ((seg->dirty_mask & ~seg->free_mask) != 0)
        return broken("segment", seg, "a dirty slice in a page");
    if ((seg->purged_mask & ~seg->free_mask) != 0)
        return broken("segment", seg, "a purged slice in a page");
    for (uint32_t d = seg->dirty_mask; d != 0; d &= d - 1)
        if (seg->dirty_at_ms[__builtin_ctz(d)] < seg->dirty_since_ms)
            return broken("segment", seg, "a dirty slice older than dirty_since_ms");
    for (unsigned i = 1; i < HK_SLICES;) {
        if (seg->free_mask & (1u << i)) {
            i++;
            continue;
        }
        const hk_page *head = &seg->pages[i];
        unsigned n = head->slice_count;
        if (head->slice_back != 0 || n == 0 || i + n > HK_SLICES)
            return broken("segment", seg, "a used slice that starts no span");
        for (unsigned k = 1; k < n; k++) {
            if (seg->free_mask & (1u << (i + k)))
                return broken("segment", seg, "a free slice inside a span");
            if (seg->pages[i + k].slice_back != k * sizeof(hk_page))
                return broken("segment", seg, "slice_back of a span entry");
        }
        i += n;
    }
    return true;
}

/* A huge block's header, live or cached. */
bool hk_huge_is_valid(const hk_segment *h) {
    hk_fetch_add_relaxed(&hk_nvalidated[HK_VALID_HUGE], 1);
    if (h->magic != HK_SEG_MAGIC || h->kind != HK_SEG_HUGE)
        return broken("huge block", h, "magic or kind");
    if (((uintptr_t)h & HK_SEG_MASK) != 0 || !hk_segmap_has(h))
        return broken("huge block", h, "header not a mapped chunk of ours");
    uint8_t *base = h->map_base, *end = base + h->map_size;
    if (h->map_size == 0 || h->map_size % HK_OS_PAGE != 0)
        return broken("huge block", h, "map_size");
    if (h->user < base || h->user >= end || h->usable > (size_t)(end - h->user))
        return broken("huge block", h, "user pointer or usable size");
    if (!h->guarded && h->usable != (size_t)(end - h->user))
        return broken("huge block", h, "usable size is not the rest of the mapping");
    if (((uintptr_t)h->user & 15) != 0)
        return broken("huge block", h, "user pointer not 16-byte aligned");
    if (h->cached > 1 || h->guarded > 1) return broken("huge block", h, "flags");
    return true;
}
