/*
 * Debug checks (research mode, config.features.debug_checks): blocks come
 * from the arena's debug heap with this layout
 *
 *   | user bytes (size) | canary 0xCA ... | size (u32) |   = one block
 *
 * so a free can check the canary (an overrun), test the block's live bit
 * (a double free), and junk-fill it (0xDE; allocation
 * fills 0xA5) so a use after free shows.  One small block in guard_sample
 * instead ends right before a PROT_NONE page.  Each check reports what, the
 * pointer, the size class and the thread (report.c), and every allocation,
 * free and report lands in a ring of recent events (debug.events.*).
 */
#include <unistd.h>

#include "hk_internal.h"

#define HK_CANARY 0xCA
#define HK_JUNK_ALLOC 0xA5
#define HK_JUNK_FREE 0xDE
#define HK_TRAILER sizeof(uint32_t)
#define HK_DEBUG_EXTRA 8 /* at least 4 canary bytes and the trailer */

/* ---- the ring of recent events ---- */

typedef struct hk_event {
    _Atomic(const char *) what;
    _Atomic uint64_t ptr, size, tid;
    _Atomic unsigned cls;
} hk_event;

static hk_event ring[HK_DEBUG_EVENTS];
static _Atomic uint64_t nevents;

/* gettid() is a system call: once per thread (and again in a fork child). */
static _Thread_local pid_t tls_tid;

static pid_t thread_id(void) {
    if (tls_tid == 0) tls_tid = gettid();
    return tls_tid;
}

void hk_debug_fork_child(void) { tls_tid = 0; }

static void event(const char *what, const void *p, size_t size, unsigned cls) {
    uint64_t i = hk_fetch_add_relaxed(&nevents, 1) % HK_DEBUG_EVENTS;
    hk_store_relaxed(&ring[i].what, what);
    hk_store_relaxed(&ring[i].ptr, (uint64_t)(uintptr_t)p);
    hk_store_relaxed(&ring[i].size, size);
    hk_store_relaxed(&ring[i].cls, cls);
    hk_store_relaxed(&ring[i].tid, (uint64_t)thread_id());
}

void hk_debug_event_report(const char *what, const void *p, unsigned cls) {
    event(what, p, 0, cls);
}

uint64_t hk_debug_nevents(void) { return hk_load_relaxed(&nevents); }

/* Event i counts back from the newest (0). */
bool hk_debug_event(unsigned i, hk_debug_event_view *out) {
    uint64_t n = hk_load_relaxed(&nevents);
    if (i >= HK_DEBUG_EVENTS || i >= n) {
        memset(out, 0, sizeof *out);
        out->what = "";
        return false;
    }
    hk_event *e = &ring[(n - 1 - i) % HK_DEBUG_EVENTS];
    out->what = hk_load_relaxed(&e->what);
    if (out->what == NULL) out->what = "";
    out->ptr = hk_load_relaxed(&e->ptr);
    out->size = hk_load_relaxed(&e->size);
    out->cls = hk_load_relaxed(&e->cls);
    out->tid = hk_load_relaxed(&e->tid);
    return true;
}

/* ---- live bits: the double-free check ----
 *
 * One bit per block of a debug page, set while the block is allocated, in
 * the segment's header slice past the header: 1 KiB per slice index (a page
 * holds at most 8192 blocks; slice 0 is never purged or handed out).  A
 * free finds its bit clear: a double free, or a block never allocated.
 * Atomic bit operations: mallocs set bits outside the arena's lock. */
#define HK_LIVE_BITS_OFFSET 4096
#define HK_LIVE_BITS_BYTES 1024
_Static_assert(sizeof(hk_segment) <= HK_LIVE_BITS_OFFSET, "live bits overlap the header");
_Static_assert(HK_LIVE_BITS_OFFSET + HK_SLICES * HK_LIVE_BITS_BYTES <= HK_SLICE_SIZE,
               "live bits leave the header slice");

static uint64_t *live_word(hk_page *page, const void *p, uint64_t *mask) {
    hk_segment *seg = hk_segment_of(page);
    size_t idx = (size_t)(page - seg->pages);
    size_t block = (size_t)((const uint8_t *)p - hk_page_start(page)) / page->block_size;
    *mask = (uint64_t)1 << (block % 64);
    return (uint64_t *)((uint8_t *)seg + HK_LIVE_BITS_OFFSET + idx * HK_LIVE_BITS_BYTES) + block / 64;
}

/* A page the debug heap just took from the arena: no block is live. */
void hk_debug_page_fresh(hk_page *page) {
    hk_segment *seg = hk_segment_of(page);
    size_t idx = (size_t)(page - seg->pages);
    memset((uint8_t *)seg + HK_LIVE_BITS_OFFSET + idx * HK_LIVE_BITS_BYTES, 0, HK_LIVE_BITS_BYTES);
}

static void mark_live(hk_page *page, const void *p) {
    uint64_t mask, *w = live_word(page, p, &mask);
    __atomic_fetch_or(w, mask, __ATOMIC_RELAXED);
}

/* Clears p's bit; false when it was already clear. */
static bool take_live(hk_page *page, const void *p) {
    uint64_t mask, *w = live_word(page, p, &mask);
    return (__atomic_fetch_and(w, ~mask, __ATOMIC_RELAXED) & mask) != 0;
}

/* ---- checked allocation ---- */

static _Thread_local unsigned guard_countdown;

static uint32_t *trailer_of(hk_page *page, void *p) {
    return (uint32_t *)((uint8_t *)p + page->block_size - HK_TRAILER);
}

void *hk_debug_malloc(size_t size) {
    unsigned every = hk_opt.guard_sample;
    if (every != 0 && size <= HK_MID_MAX && ++guard_countdown >= every) {
        guard_countdown = 0;
        void *g = hk_huge_alloc_guarded(size);
        if (g != NULL) {
            memset(g, HK_JUNK_ALLOC, size);
            event("alloc (guarded)", g, size, 0);
            return g;
        }
    }
    if (size > HK_LARGE_MAX - HK_DEBUG_EXTRA) return hk_huge_alloc(size, 0, false);
    unsigned cls = hk_size_class(size + HK_DEBUG_EXTRA);
    uint8_t *p = hk_shared_malloc(cls, true);
    if (p == NULL) return NULL;
    hk_page *page = hk_page_of(hk_segment_of(p), p);
    memset(p, HK_JUNK_ALLOC, size);
    memset(p + size, HK_CANARY, page->block_size - HK_TRAILER - size);
    *trailer_of(page, p) = (uint32_t)size;
    mark_live(page, p);
    event("alloc", p, size, cls);
    return p;
}

size_t hk_debug_usable(hk_page *page, const void *p) {
    uint32_t size = *trailer_of(page, (void *)p);
    return size <= page->block_size - HK_DEBUG_EXTRA ? size : 0;
}

static void check_canary(hk_page *page, uint8_t *p) {
    uint32_t size = *trailer_of(page, p);
    char detail[128];
    if (size > page->block_size - HK_DEBUG_EXTRA) {
        hk_report("buffer overrun (size trailer overwritten)", p, page, NULL);
        return;
    }
    uint8_t *end = p + page->block_size - HK_TRAILER;
    uint8_t *c = p + size;
    uint64_t canary8 = UINT64_C(0x0101010101010101) * HK_CANARY, w;
    for (; c + 8 <= end; c += 8) { /* the common case: all intact, by words */
        memcpy(&w, c, 8);
        if (w != canary8) break;
    }
    for (; c < end; c++) {
        if (*c != HK_CANARY) {
            hk_fmt(detail, sizeof detail, "requested %u bytes, first bad byte at +%u (0x%02x)",
                   size, (unsigned)(c - p), *c);
            hk_report("buffer overrun", p, page, detail);
            return;
        }
    }
}

/* A free into a debug heap's page: checks, junk, then a local free under
 * the heap's lock.  Always handles the block (or refuses it). */
bool hk_debug_free(hk_page *page, void *p) {
    hk_heap *heap = hk_load_acquire(&page->heap);
    hk_arena *a = heap->arena;
    hk_lock(&a->shared_lock);
    hk_block *b = p;
    if (!take_live(page, b)) {
        hk_report("double free", p, page, "ignored"); /* page stays valid under the lock */
        hk_unlock(&a->shared_lock);
        return true;
    }
    check_canary(page, p);
    uint32_t size = *trailer_of(page, p);
    unsigned cls = page->cls; /* the page may be handed back below */
    memset(p, HK_JUNK_FREE, page->block_size);
    hk_block_set_next(b, page->local_free);
    page->local_free = b;
    page->used--;
    if (hk_config_stats) hk_counter_add(&heap->counters.ndalloc[page->cls], 1);
    if (page->used == 0 || page->in_full) hk_heap_free_local_slow(heap, page);
    hk_unlock(&a->shared_lock);
    event("free", p, size, cls);
    return true;
}
