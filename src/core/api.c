/*
 * The public allocation API and the size-tier dispatch.  malloc and free of
 * a small block are the fast paths: a pop from / push onto the current
 * page's list, no atomics, no locks, no syscalls.  Everything rare goes to
 * one noinline function.  The standard names are aliases of the hak_ ones
 * (prefixed when configured --with-malloc-prefix).
 */
#include <unistd.h>

#include "core/core_internal.h"

#define HK_CAT2(a, b) a##b
#define HK_CAT(a, b) HK_CAT2(a, b)
#define HK_STD(name) HK_CAT(HK_MALLOC_PREFIX, name)

/* ---- malloc ---- */

/* The current page ran out but its owner freed blocks into it: take them
 * without the full slow path (pages of one large block live here). */
static void *malloc_from_local_free(hk_heap *heap, unsigned cls) {
    hk_page *page = heap->direct[cls];
    hk_block *b = page->local_free;
    if (b == NULL) return NULL;
    page->local_free = NULL;
    page->free = hk_block_next(b); /* checked when popped */
    page->used++;
    if (hk_config_stats) {
        hk_counter_add(&heap->counters.nmalloc[cls], 1);
        hk_counter_add(&heap->counters.nslow[cls], 1);
    }
    return b;
}

static void *malloc_any_out_of_line(size_t size);

/* No thread heap ever has a page of a class beyond HK_SEGMENT_BLOCK_MAX
 * (checked heaps do, for their own blocks): its
 * requests all reach malloc_slow (the fast path pays nothing for them)
 * and get a mapping of their own. */
static inline bool wants_own_mapping(unsigned cls) {
    return hk_class_size[cls] > HK_SEGMENT_BLOCK_MAX;
}

void *hk_malloc_thread_slow(hk_heap *heap, unsigned cls, size_t size) {
    void *p = malloc_from_local_free(heap, cls);
    if (p != NULL) return p;
    if (hk_unlikely(wants_own_mapping(cls))) return hk_huge_alloc(size, 0, false);
    return hk_heap_malloc_slow(heap, cls);
}

/* The current page's head was NULL or failed its check (then it is reported
 * and dropped, and the page looks exhausted).  While heap profiling has
 * ever been on, a thread heap's slow path goes through sample.c. */
static HK_SLOW_PATH void *malloc_slow_layers(hk_heap *heap, unsigned cls, size_t size) {
    if (hk_likely(heap != &hk_heap_empty)) {
        hk_page_check_head(heap->direct[cls]);
        if (hk_likely(hk_thread_tcache_wanted())) {
            if (hk_unlikely(hk_load_relaxed(&hk_sample_state) != 0)) return hk_sample_malloc(heap, cls, size);
            return hk_malloc_thread_slow(heap, cls, size);
        }
        hk_thread_detach_heap();
    } else {
        hk_ensure_init();
    }
    if (hk_unlikely(hk_feature_on(HK_FEAT_DEBUG_CHECKS))) return hk_debug_malloc(size);
    if (hk_unlikely(wants_own_mapping(cls))) return hk_huge_alloc(size, 0, false);
    heap = hk_thread_heap_slow();
    if (heap == NULL) return hk_sample_unmarked(hk_shared_malloc(cls, false), size, hk_class_size[cls]);
    return malloc_any_out_of_line(hk_class_size[cls]);
}

/* The block of the one-block cache (malloc_slow saw it non-empty; popped
 * before the chores: a trim may empty it), counted. */
static inline __attribute__((always_inline)) void *cached_block_pop(hk_heap *heap, unsigned cls) {
    void *b = hk_bcache_pop(heap, cls);
    hk_heap_count_slow_path(heap);
    return hk_bcache_counted(heap, cls, b);
}

/* The cached block due for a sample: taken, then recorded by sample.c (the
 * slow layers would take a fresh page for it and leave the cache to
 * overflow at the next free).  Apart, so that malloc_cached_block keeps no
 * frame. */
static __attribute__((noinline)) void *malloc_cached_due(hk_heap *heap, unsigned cls, size_t size) {
    if (hk_unlikely(!hk_thread_tcache_wanted())) return malloc_slow_layers(heap, cls, size);
    return hk_sample_took_due(heap, cls, size, cached_block_pop(heap, cls));
}

/* A class of one block a page (40 KiB and up): its every malloc is a slow
 * path, and in a burst its blocks come from the thread's one-block cache.
 * That is taken here, without the layers of malloc_slow_layers, when the
 * heap has synced with the sampling state (sample.c counts bytes by
 * nmalloc; a one-block page has no list to arm) and the thread's caches
 * are wanted (a thread whose caches were turned off detaches its heap
 * there).  hot: called only from the cold malloc_slow, gcc would compile
 * it for size (a 48 KiB pair: 199 -> 210 instructions). */
static __attribute__((noinline, hot)) void *malloc_cached_block(hk_heap *heap, unsigned cls, size_t size) {
    uint32_t state = hk_load_acquire(&hk_sample_state);
    if (hk_unlikely(state != 0)) {
        if (heap->prof_epoch != state) return malloc_slow_layers(heap, cls, size);
        if (hk_sample_due(heap, cls)) return malloc_cached_due(heap, cls, size);
    }
    if (hk_unlikely(!hk_thread_tcache_wanted())) return malloc_slow_layers(heap, cls, size);
    return cached_block_pop(heap, cls);
}

/* The fast path found the current page's list empty (or its head bad): a
 * cached block of a one-block class, else the layers.  (The empty heap's
 * cache is empty.)  Cold, so that the fast paths' tail jump to it costs
 * them no register move. */
static HK_SLOW_PATH void *malloc_slow(hk_heap *heap, unsigned cls, size_t size) {
    if (hk_bcache_class(cls) && heap->bcache_n[cls - HK_BCACHE_FIRST] != 0)
        return malloc_cached_block(heap, cls, size);
    return malloc_slow_layers(heap, cls, size);
}

/* One test covers both an exhausted page (NULL) and a corrupted link: the
 * head is in the page's segment or it goes to malloc_slow. */
HK_FAST_PATH void *malloc_class(size_t size, size_t cls) {
    hk_heap *heap = hk_tls_heap;
    hk_page *page = heap->direct[cls];
    hk_block *b = page->free;
    if (hk_unlikely(!hk_block_in_page_segment(page, b))) return malloc_slow(heap, cls, size);
    hk_block *next = hk_block_next(b);
    page->free = next;
    __builtin_prefetch(next); /* the next pop reads next->next; cannot fault */
    page->used++;
    if (hk_config_stats) hk_counter_inc(&heap->counters.nmalloc[cls]);
    return b;
}

/* Out of line so that the tiny path makes no call (only tail jumps) and
 * saves no register. */
static __attribute__((noinline)) void *malloc_mid_large(size_t size) {
    return malloc_class(size, hk_size_class_mid(size));
}

/* size <= HK_LARGE_MAX */
HK_FAST_PATH void *malloc_small(size_t size) {
    if (hk_likely(size <= HK_TINY_MAX)) return malloc_class(size, hk_class_small[(size + 7) >> 3]);
    return malloc_mid_large(size);
}

HK_FAST_PATH void *malloc_any(size_t size) {
    if (hk_likely(size <= HK_LARGE_MAX)) return malloc_small(size);
    return hk_huge_alloc(size, 0, false);
}

HAK_EXPORT void *hak_malloc(size_t size) { return malloc_any(size); }

/* For the slow paths: a call, so that they keep their own code small. */
static __attribute__((noinline)) void *malloc_any_out_of_line(size_t size) { return malloc_any(size); }

/* ---- free ---- */

static void report_bad_free(const void *p, const char *why) {
    hk_report_ignored(why, p, NULL);
}

/* p lies at offset 0 of a 2 MiB chunk: NULL, or a block aligned to 2 MiB
 * or more whose header is one chunk below. */
static HK_SLOW_PATH void free_chunk_start(void *p) {
    if (p == NULL) return;
    hk_segment *h = hk_huge_header_aligned(p);
    if (h != NULL) hk_huge_free(h);
    else report_bad_free(p, "free of a pointer not from hakmem");
}

/* p is at a block boundary of its page: one multiplication instead of a
 * division (hk_class_divmagic). */
static inline bool divides_offset(unsigned cls, uint64_t in_page) {
    uint64_t magic = hk_class_divmagic[cls];
    return in_page * magic < magic;
}
static inline bool at_block_start(hk_page *page, const void *p) {
    return divides_offset(page->cls, (uint64_t)((const uint8_t *)p - hk_page_start(page)));
}

/* p, a block of class cls (read before p is out: its page may be reused
 * then) of a page that heap me does not own, joins me's run for the page;
 * with no heap (me NULL) it goes out alone, counted in the dead totals. */
static inline __attribute__((always_inline)) void free_into_run(hk_heap *me, hk_page *page, void *p, unsigned cls) {
    if (me == NULL) {
        hk_free_remote(page, (hk_block *)p);
    } else if (hk_unlikely(!hk_remote_run_add(me, page, (hk_block *)p))) {
        report_bad_free(p, "double free (block freed just before by this thread)");
        return;
    }
    if (hk_config_stats) {
        if (me != NULL) {
            hk_counter_add(&me->counters.ndalloc[cls], 1);
            hk_counter_add(&me->counters.nremote_frees[cls], 1);
        } else {
            hk_fetch_add_relaxed(&hk_dead_counters.ndalloc[cls], 1);
            hk_fetch_add_relaxed(&hk_dead_counters.nremote_frees[cls], 1);
        }
    }
}

static HK_SLOW_PATH void free_other(hk_segment *seg, hk_page *page, void *p) {
    if (seg->kind == HK_SEG_HUGE) {
        if (hk_likely(seg->user == p)) hk_huge_free(seg);
        else report_bad_free(p, "free of a pointer inside a huge block");
        return;
    }
    if (hk_unlikely(page->reserved == 0)) {
        report_bad_free(p, "free of a block in a free page (double free?)");
        return;
    }
    if (hk_unlikely(!at_block_start(page, p))) {
        report_bad_free(p, "free of a pointer that is not the start of a block");
        return;
    }
    hk_heap *owner = hk_load_acquire(&page->heap);
    if (hk_unlikely(owner != NULL && owner->debug)) {
        hk_debug_free(page, p);
        return;
    }
    unsigned marks = hk_page_marks(page);
    if (hk_unlikely(marks & HK_PAGE_CACHED)) {
        report_bad_free(p, "double free (block in its owner's cache)");
        return;
    }
    /* Once the block is pushed the page may be emptied and reused by its
     * owner: read what the counters need first. */
    unsigned cls = page->cls;
    /* A shared heap samples with no mark, and the pages it adopted may carry
     * an old owner's marks: its frees probe the table and leave the counters
     * alone (they may over-count, never under-count). */
    if (hk_unlikely(owner != NULL && owner->shared)) hk_sample_unmarked_free(p);
    else if (hk_unlikely(marks & HK_PAGE_SAMPLED)) hk_sample_remote_free(seg, page, p);
    /* A thread that only frees gets its heap here, as one that allocates
     * does on its first malloc: its frees into a page go in runs (remote.c)
     * and its counters are plain adds, not two atomic adds on the shared
     * totals per block (most of a consumer thread's free). */
    free_into_run(hk_tls_heap != &hk_heap_empty ? hk_tls_heap : hk_thread_heap_slow(), page, p, cls);
}

/* A block of another heap's page, the usual case: a thread heap's page in
 * use, nothing to note (no sample, not in a cache), p at a block start,
 * and this thread has a heap: p joins this thread's run for the page.
 * free_other has every other case and the reports.  Not cold: a consumer
 * thread's every free comes here (larson_live -t 2: 46% of its frees). */
static __attribute__((noinline)) void free_to_other_heap(hk_segment *seg, hk_page *page, void *p,
                                                         uint64_t in_page) {
    hk_heap *me = hk_tls_heap;
    hk_heap *owner = hk_load_acquire(&page->heap);
    if (hk_unlikely(seg->kind == HK_SEG_HUGE || owner == NULL || me == &hk_heap_empty ||
                    (hk_page_marks(page) & (HK_PAGE_CACHED | HK_PAGE_SAMPLED)) != 0 ||
                    owner->debug || owner->shared || page->reserved == 0 ||
                    !divides_offset(page->cls, in_page))) {
        free_other(seg, page, p);
        return;
    }
    free_into_run(me, page, p, page->cls);
}

static HK_SLOW_PATH void free_not_ours(void *p) {
    report_bad_free(p, "free of a pointer not from hakmem");
}
static HK_SLOW_PATH void free_not_block_start(void *p) {
    report_bad_free(p, "free of a pointer that is not the start of a block");
}

/* p lies in seg, which is ours: the owner pushes it on its page's local
 * list, anyone else goes to free_other.  slot: NULL, or the entry of the
 * heap's owned-segment cache that names seg from now on if one of the
 * heap's pages holds p. */
static inline void free_in_segment(hk_heap *heap, hk_segment *seg, uintptr_t off,
                                   void *p, hk_segment **slot) {
    /* Byte offsets into seg->pages: the slice's entry, then its span's head
     * entry; an entry per slice, so the page's own offset in the segment is
     * the head's times HK_SLICE_SIZE / sizeof(hk_page). */
    uintptr_t entry = (off >> HK_SLICE_SHIFT) * sizeof(hk_page);
    uintptr_t head = entry - ((hk_page *)((uint8_t *)seg->pages + entry))->slice_back;
    hk_page *page = (hk_page *)((uint8_t *)seg->pages + head);
    __asm__("" : "+r"(page)); /* one register for every field below (gcc rebuilt it thrice) */
    uint64_t in_page = off - head * (HK_SLICE_SIZE / sizeof(hk_page));
    if (hk_unlikely(hk_load_relaxed(&page->heap) != heap)) {
        free_to_other_heap(seg, page, p, in_page);
        return;
    }
    if (slot != NULL) *slot = seg;
    size_t cls = page->cls;
    if (HK_CHECK_BOUNDARY && hk_unlikely(in_page * heap->divmagic[cls] > heap->divlimit[cls])) {
        free_not_block_start(p);
        return;
    }
    hk_block *b = p;
    hk_block_set_next(b, page->local_free);
    page->local_free = b;
    if (hk_config_stats) hk_counter_inc(&heap->counters.ndalloc[cls]);
    /* An emptied page that is the class's current one stays as it is:
     * only another emptied page, or one in the full list, needs work. */
    if (hk_unlikely((--page->used == 0 && heap->direct[cls] != page) || page->in_full))
        hk_heap_free_local_slow(heap, page);
}

/* The owned-segment cache does not name seg: the segment map says whether
 * it is ours. */
static void free_in_unnamed_segment(hk_heap *heap, hk_segment *seg, uintptr_t off, void *p) {
    if (hk_likely(hk_segmap_has(seg))) free_in_segment(heap, seg, off, p, hk_heap_owned_slot(heap, p));
    else free_not_ours(p);
}

/* Checks before anything is written: the chunk is ours (a segment in the
 * heap's owned-segment cache, else the segment map) and p starts a block of
 * its page (free_other checks that for the other paths).  A free into a
 * segment the cache names does neither the map lookup nor a store. */
HK_FAST_PATH void free_block(void *p) {
    uintptr_t off = (uintptr_t)p & HK_SEG_MASK;
    if (hk_unlikely(off == 0)) {
        free_chunk_start(p);
        return;
    }
    hk_segment *seg = (hk_segment *)((uintptr_t)p - off);
    hk_heap *heap = hk_tls_heap;
    if (!HK_CHECK_OWNER || hk_likely(*hk_heap_owned_slot(heap, seg) == seg)) {
        free_in_segment(heap, seg, off, p, NULL);
        return;
    }
    free_in_unnamed_segment(heap, seg, off, p);
}

HAK_EXPORT void hak_free(void *p) { free_block(p); }

/* ---- usable size ---- */

/* Any pointer: 0 for one that is not ours. */
static HK_SLOW_PATH size_t usable_size_any(const void *p) {
    uintptr_t off = (uintptr_t)p & HK_SEG_MASK;
    if (off == 0) {
        hk_segment *h = hk_huge_header_aligned(p);
        return h != NULL ? h->usable : 0;
    }
    hk_segment *seg = hk_segment_of(p);
    if (!hk_segmap_has(seg)) return 0;
    if (seg->kind == HK_SEG_HUGE) return seg->usable;
    hk_page *page = hk_page_of(seg, p);
    hk_heap *owner = hk_load_relaxed(&page->heap);
    if (hk_unlikely(owner != NULL && owner->debug)) return hk_debug_usable(page, p);
    return page->block_size;
}

/* Fast case first, as free_block's: a block of a page of this thread's
 * heap in a segment its owned-segment cache names (a thread heap is never
 * a debug heap, so the page's block size is the answer).  Programs that
 * ask after every malloc and before every free (redis) call this as often
 * as malloc and free together. */
size_t hk_usable_size_impl(const void *p) {
    uintptr_t off = (uintptr_t)p & HK_SEG_MASK;
    hk_segment *seg = (hk_segment *)((uintptr_t)p - off);
    hk_heap *heap = hk_tls_heap;
    if (hk_likely(off != 0 && *hk_heap_owned_slot(heap, seg) == seg)) {
        hk_page *page = hk_page_of(seg, p);
        if (hk_likely(hk_load_relaxed(&page->heap) == heap)) {
            HK_VALIDATE(1, !heap->debug);
            return page->block_size;
        }
    }
    return usable_size_any(p);
}

HAK_EXPORT size_t hak_malloc_usable_size(const void *p) { return hk_usable_size_impl(p); }

/* ---- calloc, realloc ---- */

/* n * size into *total; false (errno ENOMEM) when the product wraps. */
static bool request_product(size_t n, size_t size, size_t *total) {
    if (hk_likely(!__builtin_mul_overflow(n, size, total))) return true;
    errno = ENOMEM;
    return false;
}

HAK_EXPORT void *hak_calloc(size_t n, size_t size) {
    size_t total;
    if (!request_product(n, size, &total)) return NULL;
    if (total > HK_SEGMENT_BLOCK_MAX) return hk_huge_alloc(total, 0, true);
    void *p = malloc_small(total);
    if (p != NULL) memset(p, 0, total);
    return p;
}

static void *realloc_move(void *p, size_t old_usable, size_t size) {
    if (old_usable > HK_SEGMENT_BLOCK_MAX && size > HK_SEGMENT_BLOCK_MAX && hk_segment_of(p)->kind == HK_SEG_HUGE &&
        ((uintptr_t)p & HK_SEG_MASK) != 0) {
        void *q = hk_huge_realloc(hk_segment_of(p), size);
        if (q != NULL) return q;
    }
    void *q = malloc_any_out_of_line(size);
    if (q == NULL) return NULL; /* errno ENOMEM, p intact */
    memcpy(q, p, old_usable < size ? old_usable : size);
    free_block(p);
    return q;
}

HAK_EXPORT void *hak_realloc(void *p, size_t size) {
    if (p == NULL) return hak_malloc(size);
    if (size == 0) {
        free_block(p);
        return NULL;
    }
    bool ours = ((uintptr_t)p & HK_SEG_MASK) != 0 ? hk_segmap_has(hk_segment_of(p))
                                                   : hk_huge_header_aligned(p) != NULL;
    if (!ours) {
        report_bad_free(p, "realloc of a pointer not from hakmem");
        errno = ENOMEM;
        return NULL;
    }
    size_t usable = hk_usable_size_impl(p);
    /* In place while it fits and does not waste more than half. */
    if (size <= usable && size >= usable / 2) return p;
    if (size <= usable && usable <= 64) return p;
    return realloc_move(p, usable, size);
}

HAK_EXPORT void *hak_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (!request_product(n, size, &total)) return NULL; /* p intact */
    return hak_realloc(p, total);
}

/* ---- aligned allocation ---- */

static void *fail_nomem(void) {
    errno = ENOMEM;
    return NULL;
}

/* A block of class size s, aligned as the class is.  Debug checks turned on
 * after aligned_impl looked (mode flips are not fenced against allocation)
 * send the request to the checked heap, whose blocks sit behind a canary:
 * such a block goes back and the request gets a mapping of its own. */
static void *class_block_aligned(size_t s, size_t size, size_t align) {
    void *p = malloc_any_out_of_line(s);
    if (hk_likely(((uintptr_t)p & (align - 1)) == 0)) return p;
    hak_free(p);
    return hk_huge_alloc(size, align, false);
}

/* align is a power of two. */
static void *aligned_impl(size_t align, size_t size) {
    if (align <= 16) return malloc_any_out_of_line(size); /* every block is 16-aligned */
    /* Checked blocks carry a canary and come from other classes: under
     * debug checks an aligned block gets a mapping of its own. */
    if (hk_unlikely(hk_feature_on(HK_FEAT_DEBUG_CHECKS))) return hk_huge_alloc(size, align, false);
    if (!hk_request_fits(size, align)) return fail_nomem();
    if (align <= HK_SLICE_SIZE) {
        size_t s = hk_align_up(size == 0 ? 1 : size, align);
        if (s <= HK_SEGMENT_BLOCK_MAX) {
            unsigned cls = hk_size_class(s);
            if (hk_class_size[cls] % align != 0) {
                s = (size_t)1 << (64 - __builtin_clzll((unsigned long long)s - 1));
                cls = s <= HK_SEGMENT_BLOCK_MAX ? hk_size_class(s) : HK_NCLASSES;
            }
            /* Every page starts on a 64 KiB slice and blocks sit at multiples
             * of the class size, so the class size's alignment holds. */
            if (cls < HK_NCLASSES) return class_block_aligned(hk_class_size[cls], size, align);
        }
    }
    return hk_huge_alloc(size, align, false);
}

HAK_EXPORT int hak_posix_memalign(void **out, size_t align, size_t size) {
    if (!hk_is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
    void *p = aligned_impl(align, size);
    if (p == NULL) return ENOMEM; /* errno is ENOMEM too, as glibc leaves it */
    *out = p;
    return 0;
}

HAK_EXPORT void *hak_aligned_alloc(size_t align, size_t size) {
    if (!hk_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned_impl(align, size);
}

HAK_EXPORT void *hak_memalign(size_t align, size_t size) {
    /* glibc: a non-power-of-two alignment is rounded up. */
    if (align > (SIZE_MAX >> 1) + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align < 2) align = 1;
    if (!hk_is_pow2(align)) align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
    return aligned_impl(align, size);
}

HAK_EXPORT void *hak_valloc(size_t size) {
    return aligned_impl((size_t)sysconf(_SC_PAGESIZE), size);
}

HAK_EXPORT void *hak_pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!hk_request_fits(size, page)) return fail_nomem();
    size_t rounded = hk_align_up(size == 0 ? 1 : size, page);
    return aligned_impl(page, rounded);
}

/* ---- the standard names ---- */

#define HK_ALIAS(target) __attribute__((alias(#target), visibility("default")))
#define HK_MALLOC_LIKE __attribute__((malloc, warn_unused_result))
HK_MALLOC_LIKE void *HK_STD(malloc)(size_t) HK_ALIAS(hak_malloc);
void HK_STD(free)(void *) HK_ALIAS(hak_free);
HK_MALLOC_LIKE void *HK_STD(calloc)(size_t, size_t) HK_ALIAS(hak_calloc);
void *HK_STD(realloc)(void *, size_t) HK_ALIAS(hak_realloc);
void *HK_STD(reallocarray)(void *, size_t, size_t) HK_ALIAS(hak_reallocarray);
int HK_STD(posix_memalign)(void **, size_t, size_t) HK_ALIAS(hak_posix_memalign);
HK_MALLOC_LIKE void *HK_STD(aligned_alloc)(size_t, size_t) HK_ALIAS(hak_aligned_alloc);
HK_MALLOC_LIKE void *HK_STD(memalign)(size_t, size_t) HK_ALIAS(hak_memalign);
HK_MALLOC_LIKE void *HK_STD(valloc)(size_t) HK_ALIAS(hak_valloc);
HK_MALLOC_LIKE void *HK_STD(pvalloc)(size_t) HK_ALIAS(hak_pvalloc);
size_t HK_STD(malloc_usable_size)(void *) HK_ALIAS(hak_malloc_usable_size);
