/*
 * Huge blocks (above HK_SEGMENT_BLOCK_MAX, 896 KiB; alignment beyond what a
 * page of slices gives; aligned or above 1 MiB under the debug checks):
 * each has its own mapping whose 2 MiB-aligned base holds a segment-style
 * header (kind HK_SEG_HUGE), so free() finds it by the same masking as any
 * block.  Blocks aligned to 2 MiB or more have their header one chunk below.
 *
 * The BigCache keeps freed mappings of the plain kind (user pointer at
 * HK_HUGE_OFFSET) for reuse without mmap or page faults: one LRU list, most
 * recent first, bounded by bigcache max bytes as a soft limit (soft_max).
 * Mappings are page-exact (under RLIMIT_AS, address space is what runs
 * out); a malloc takes the most recent entry at least its size and at most
 * its bucket (four per doubling: 25% more), a growing realloc the smallest
 * entry it fits in.  Entries idle for long are unmapped.
 */
#include <sys/mman.h>

#include "core/core_internal.h"

static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static hk_segment *cache_first, *cache_last; /* LRU, most recent first */
static size_t cache_bytes, cache_count;
/* cache_count != 0, for the decay thread's look without the lock. */
static _Atomic bool cache_nonempty;
static size_t cache_peak; /* high-water mark of cache_bytes (the learner resets it) */
static _Atomic size_t cache_max;
static _Atomic bool cache_max_set;
static _Atomic uint64_t st_nmalloc, st_ndalloc, st_hits, st_misses, st_nmmap;
static _Atomic size_t st_cur_bytes;

#define CACHE_IDLE_MS 10000

/* Four buckets per doubling: a cached mapping serves a request whose
 * mapping size it covers and whose bucket it does not exceed (at most 25%
 * more), and ghosts are kept by bucket. */
static size_t bucket_size(size_t need) {
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)need);
    size_t step = (size_t)1 << (b >= 2 ? b - 2 : 0);
    if (step < HK_OS_PAGE) step = HK_OS_PAGE;
    return (need + step - 1) & ~(step - 1);
}

/* Ghosts: the sizes of the last mappings the cache dropped or refused for
 * capacity.  A later miss of a ghost's size is one a bigger cache would
 * have served (a reuse distance beyond the capacity): the learner's signal
 * to grow it.  Under huge_lock; 0 is an empty slot. */
#define GHOSTS 64
static size_t ghosts[GHOSTS];
static unsigned ghost_next;
static _Atomic uint64_t st_ghost_hits, st_ghost_bytes;

static void ghost_add_locked(size_t map_size) {
    ghosts[ghost_next] = bucket_size(map_size);
    ghost_next = (ghost_next + 1) % GHOSTS;
}

static void ghost_check_locked(size_t map_size) {
    map_size = bucket_size(map_size);
    for (unsigned i = 0; i < GHOSTS; i++)
        if (ghosts[i] == map_size) {
            ghosts[i] = 0;
            hk_fetch_add_relaxed(&st_ghost_hits, 1);
            hk_fetch_add_relaxed(&st_ghost_bytes, map_size);
            return;
        }
}

static size_t max_bytes(void) {
    if (!hk_load_relaxed(&cache_max_set)) return hk_opt.bigcache_max_mb << 20;
    return hk_load_relaxed(&cache_max);
}

void hk_bigcache_set_max(size_t bytes) {
    hk_store_relaxed(&cache_max, bytes);
    hk_store_relaxed(&cache_max_set, true);
}

static void cache_unlink(hk_segment *h) {
    if (h->prev) h->prev->next = h->next;
    else cache_first = h->next;
    if (h->next) h->next->prev = h->prev;
    else cache_last = h->prev;
    h->next = h->prev = NULL;
    cache_bytes -= h->map_size;
    cache_count--;
    hk_store_relaxed(&cache_nonempty, cache_count != 0);
}

static void unmap_block(hk_segment *h) {
    hk_segmap_clear(h);
    h->magic = 0;
    hk_os_unmap(h->map_base, h->map_size);
}

/* The capacity is a soft limit.  Beyond it, the cache may hold up to what
 * the program had live in huge blocks lately (so the resident set never
 * passes a peak the program already reached), but only for the decay time:
 * a working set of huge blocks larger than the capacity is reused, round
 * after round, instead of mapped and faulted in again; once its entries go
 * unused for decay_ms they are unmapped.  The live peak steps down to the
 * bytes live now once it is CACHE_IDLE_MS old. */
static _Atomic size_t live_peak;
static _Atomic uint64_t live_peak_at_ms;

static void note_live(size_t live) {
    if (live > hk_load_relaxed(&live_peak)) {
        hk_store_relaxed(&live_peak, live);
        hk_store_relaxed(&live_peak_at_ms, hk_os_now_ms());
    }
}

static size_t soft_max(uint64_t now, size_t cap) {
    if (cap == 0) return 0; /* a cache of capacity 0 keeps nothing */
    if (now - hk_load_relaxed(&live_peak_at_ms) > CACHE_IDLE_MS) {
        hk_store_relaxed(&live_peak, hk_load_relaxed(&st_cur_bytes));
        hk_store_relaxed(&live_peak_at_ms, now);
    }
    size_t peak = hk_load_relaxed(&live_peak);
    return peak > cap ? peak : cap;
}

static uint64_t overflow_ttl_ms(void) {
    int64_t d = hk_load_relaxed(&hk_arenas[0].decay_ms);
    return d < 0 || d > CACHE_IDLE_MS ? CACHE_IDLE_MS : (uint64_t)d;
}

/* Since when the cache holds more than its capacity (0: it does not), so
 * that hk_bigcache_tick gives the overflow back in an otherwise idle
 * process, within the decay time plus one slow path. */
static _Atomic uint64_t over_cap_since_ms;
static _Atomic uint64_t last_park_ms; /* when a mapping was last parked */

static void note_over_cap_locked(uint64_t now, size_t cap) {
    uint64_t since = hk_load_relaxed(&over_cap_since_ms);
    if (cache_bytes <= cap) hk_store_relaxed(&over_cap_since_ms, 0);
    else if (since == 0) hk_store_relaxed(&over_cap_since_ms, now);
}

/* Under huge_lock: whether the least recently used entry goes now. */
static bool trim_lru_now(uint64_t now, size_t cap, size_t soft) {
    uint64_t idle = now - cache_last->cached_at_ms;
    return cache_bytes > soft || idle > CACHE_IDLE_MS || (cache_bytes > cap && idle > overflow_ttl_ms());
}

/* Under huge_lock: returns the entries to unmap (linked by next): beyond
 * the soft limit, idle too long, or beyond the capacity for longer than
 * the decay time. */
static hk_segment *cache_trim_locked(uint64_t now, size_t cap) {
    hk_segment *out = NULL;
    size_t soft = soft_max(now, cap);
    while (cache_last != NULL && trim_lru_now(now, cap, soft)) {
        hk_segment *h = cache_last;
        if (cache_bytes > soft) ghost_add_locked(h->map_size);
        cache_unlink(h);
        h->next = out;
        out = h;
    }
    return out;
}

static void unmap_list(hk_segment *h) {
    while (h != NULL) {
        hk_segment *next = h->next;
        unmap_block(h);
        h = next;
    }
}

/* A cached mapping of at least map_size bytes and at most most: the most
 * recently parked one (LRU order), or with best_fit the smallest.  Entries
 * due for unmapping go first (cache_trim_locked). */
static hk_segment *cache_take(size_t map_size, size_t most, bool best_fit) {
    if (!hk_feature_on(HK_FEAT_BIGCACHE)) return NULL;
    if (hk_load_relaxed(&cache_max_set) && hk_load_relaxed(&cache_max) == 0) return NULL;
    hk_lock(&huge_lock);
    uint64_t now = hk_os_now_ms();
    hk_segment *evict = cache_trim_locked(now, max_bytes());
    hk_segment *h = NULL;
    for (hk_segment *c = cache_first; c != NULL; c = c->next) {
        if (c->map_size < map_size || c->map_size > most) continue;
        if (h == NULL || c->map_size < h->map_size) h = c;
        if (!best_fit) break;
    }
    if (h != NULL) {
        cache_unlink(h);
        h->cached = 0;
    } else {
        ghost_check_locked(map_size);
    }
    note_over_cap_locked(now, max_bytes());
    hk_unlock(&huge_lock);
    unmap_list(evict);
    return h;
}

static void *finish(hk_segment *h, size_t size, uint8_t *user) {
    h->user = user;
    h->requested = size;
    h->sampled = 0;
    h->usable = (size_t)((uint8_t *)h->map_base + h->map_size - user);
    hk_heap *me = hk_thread_real_heap();
    if (me != NULL) hk_counter_add(&me->allocated_bytes, h->usable);
    hk_fetch_add_relaxed(&st_nmalloc, 1);
    note_live(hk_fetch_add_relaxed(&st_cur_bytes, h->map_size) + h->map_size);
    HK_VALIDATE(1, hk_huge_is_valid(h));
    return user;
}

static hk_segment *init_header(void *hdr, void *base, size_t mapped) {
    hk_segment *h = hdr;
    h->magic = HK_SEG_MAGIC;
    h->kind = HK_SEG_HUGE;
    h->map_base = base;
    h->map_size = mapped;
    hk_segmap_set(h);
    if (hk_opt.thp) hk_os_hugepage(base, mapped);
    hk_fetch_add_relaxed(&st_nmmap, 1);
    return h;
}

/* Alignment 2 MiB or more: [header chunk][block aligned to align]. */
static void *alloc_over_aligned(size_t size, size_t align) {
    size_t body = hk_align_up(size, HK_OS_PAGE); /* hk_request_fits: no wrap below */
    size_t over = HK_SEG_SIZE + body + align;
    uint8_t *raw = hk_os_map(over);
    if (raw == NULL) return NULL;
    uint8_t *user = (uint8_t *)hk_align_up((uintptr_t)raw + HK_SEG_SIZE, align);
    uint8_t *hdr = user - HK_SEG_SIZE;
    size_t mapped = HK_SEG_SIZE + body;
    if (hdr > raw) hk_os_unmap(raw, (size_t)(hdr - raw));
    size_t tail = (size_t)(raw + over - (hdr + mapped));
    if (tail) hk_os_unmap(hdr + mapped, tail);
    hk_segment *h = init_header(hdr, hdr, mapped);
    return finish(h, size, user);
}

/* A new 2 MiB-aligned mapping.  When the address space runs short
 * (RLIMIT_AS, mmap failing), what is retained goes back first: os.c
 * releases the BigCache's mappings; here, with no lock held, the arenas'
 * empty segments go too, then one more try. */
static uint8_t *map_block(size_t size, void **base, size_t *mapped) {
    uint8_t *p = hk_os_map_aligned(size, HK_SEG_SIZE, base, mapped);
    if (hk_likely(p != NULL)) return p;
    for (unsigned i = 0; i < hk_opt.narenas; i++) hk_arena_purge(&hk_arenas[i], true);
    return hk_os_map_aligned(size, HK_SEG_SIZE, base, mapped);
}

static void *huge_alloc(size_t size, size_t align, bool zero);
static hk_segment *map_over_cached(size_t map_size);

/* Every huge allocation is on a slow path: its bytes count towards the
 * thread's next heap-profile sample here (core/sample.c). */
void *hk_huge_alloc(size_t size, size_t align, bool zero) {
    void *p = huge_alloc(size, align, zero);
    if (hk_unlikely(hk_load_relaxed(&hk_sample_state) != 0) && p != NULL)
        hk_sample_huge(((uintptr_t)p & HK_SEG_MASK) == 0 ? hk_huge_header_aligned(p) : hk_segment_of(p), size);
    return p;
}

static void *huge_alloc(size_t size, size_t align, bool zero) {
    hk_ensure_init();
    if (hk_unlikely(!hk_request_fits(size, align))) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == 0) size = 1; /* a block has at least one usable byte */
    hk_periodic_tick(NULL);
    if (align >= HK_SEG_SIZE) return alloc_over_aligned(size, align);
    size_t offset = align > HK_HUGE_OFFSET ? align : HK_HUGE_OFFSET;
    /* Mapped exactly (page-rounded): under RLIMIT_AS, address space is
     * what runs out; the cache reuses a mapping up to a bucket larger. */
    size_t map_size = hk_align_up(offset + size, HK_OS_PAGE);
    if (offset == HK_HUGE_OFFSET) {
        hk_segment *h = cache_take(map_size, bucket_size(map_size), false);
        if (h != NULL) {
            hk_fetch_add_relaxed(&st_hits, 1);
            if (zero) memset((uint8_t *)h + offset, 0, size);
            return finish(h, size, (uint8_t *)h + offset);
        }
        hk_fetch_add_relaxed(&st_misses, 1);
        /* (calloc: a fresh mapping is zero without a write) */
        h = zero ? NULL : map_over_cached(map_size);
        if (h != NULL) return finish(h, size, (uint8_t *)h + offset);
    }
    void *base;
    size_t mapped;
    uint8_t *p = map_block(map_size, &base, &mapped);
    if (p == NULL) return NULL;
    hk_segment *h = init_header(p, base, mapped);
    return finish(h, size, p + offset);
}

void hk_huge_free(hk_segment *h) {
    if (hk_unlikely(h->cached)) {
        hk_report_ignored("double free of a huge block", h->user, NULL);
        return;
    }
    HK_VALIDATE(1, hk_huge_is_valid(h));
    if (hk_unlikely(h->sampled)) hk_sample_huge_free(h);
    hk_fetch_add_relaxed(&st_ndalloc, 1);
    hk_heap *me = hk_thread_real_heap();
    if (me != NULL) hk_counter_add(&me->deallocated_bytes, h->usable);
    hk_fetch_sub_relaxed(&st_cur_bytes, h->map_size);
    if (h->guarded && hk_guard_free(h)) return; /* kept for reuse (guard.c) */
    uint64_t now = hk_os_now_ms();
    size_t max = max_bytes();
    /* One mapping beyond the capacity is kept only within the soft limit
     * (what the program had live lately), for the decay time (decay_ms 0:
     * not at all). */
    size_t soft = overflow_ttl_ms() == 0 ? max : soft_max(now, max);
    bool cacheable = !h->guarded && h->user == (uint8_t *)h + HK_HUGE_OFFSET && h->map_base == h &&
                     h->map_size <= soft && hk_feature_on(HK_FEAT_BIGCACHE);
    if (!cacheable) {
        if (h->map_size > soft && max > 0 && h->map_base == h && !h->guarded &&
            h->user == (uint8_t *)h + HK_HUGE_OFFSET && hk_feature_on(HK_FEAT_BIGCACHE)) {
            hk_lock(&huge_lock);
            ghost_add_locked(h->map_size); /* too big for the cache as it is */
            hk_unlock(&huge_lock);
        }
        unmap_block(h);
        return;
    }
    h->cached_at_ms = now;
    hk_lock(&huge_lock);
    h->cached = 1;
    h->prev = NULL;
    h->next = cache_first;
    if (cache_first) cache_first->prev = h;
    else cache_last = h;
    cache_first = h;
    cache_bytes += h->map_size;
    cache_count++;
    hk_store_relaxed(&cache_nonempty, true);
    hk_segment *evict = cache_trim_locked(now, max);
    if (cache_bytes > cache_peak) cache_peak = cache_bytes;
    note_over_cap_locked(now, max);
    bool over = cache_bytes > max;
    hk_unlock(&huge_lock);
    hk_store_relaxed(&last_park_ms, now);
    unmap_list(evict);
    hk_decay_note_dirty(over);
    hk_decay_tick(); /* no lock held: may start the decay thread */
}

/* Debug checks' sampled guard: a small block that ends right before a
 * PROT_NONE page, in a mapping of its own (never cached). */
void *hk_huge_alloc_guarded(size_t size) {
    size_t body = hk_align_up(size == 0 ? 1 : size, 16);
    size_t map_size = HK_HUGE_OFFSET + hk_align_up(body, HK_OS_PAGE) + HK_OS_PAGE;
    void *base;
    size_t mapped;
    uint8_t *p = hk_os_map_aligned(map_size, HK_SEG_SIZE, &base, &mapped);
    if (p == NULL) return NULL;
    uint8_t *guard = p + map_size - HK_OS_PAGE;
    int saved = errno;
    mprotect(guard, HK_OS_PAGE, PROT_NONE);
    errno = saved;
    hk_segment *h = init_header(p, base, mapped);
    h->guarded = 1;
    void *user = finish(h, size, guard - body);
    h->usable = body;
    return user;
}

/* A guarded block's mapping that guard.c kept after its free, handed out
 * again with the block starting at user (its guard page unchanged). */
void *hk_huge_guarded_reuse(hk_segment *h, uint8_t *user) {
    h->cached = 0;
    return finish(h, 0, user);
}

/* The header of a block at offset 0 of its chunk (aligned to 2 MiB or more),
 * or NULL when p is not such a block of ours. */
hk_segment *hk_huge_header_aligned(const void *p) {
    if (p == NULL) return NULL;
    hk_segment *h = (hk_segment *)((uintptr_t)p - HK_SEG_SIZE);
    if ((uintptr_t)p < HK_SEG_SIZE || !hk_segmap_contains(h)) return NULL;
    if (h->magic != HK_SEG_MAGIC || h->kind != HK_SEG_HUGE || h->user != p) return NULL;
    return h;
}

/* Moves the pages of the mapping headed by h (from_size bytes) with mremap
 * onto the head of dst, a 2 MiB-aligned mapping of dst_size bytes (their
 * place taken, the rest of dst kept as it is), and makes dst the header:
 * map fields and segment-map bit.  The old chunk leaves the segment map
 * first: once mremap frees its range, another thread's mmap may get it and
 * set the same bit.  On failure h is intact and dst unmapped. */
static hk_segment *move_pages(hk_segment *h, size_t from_size, uint8_t *dst, size_t dst_size) {
    hk_segmap_clear(h);
    void *moved = mremap(h, from_size, from_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    if (moved == MAP_FAILED) {
        hk_segmap_set(h);
        hk_segmap_clear((hk_segment *)dst); /* a cached dst: its head may be gone already */
        hk_os_unmap(dst, dst_size);
        return NULL;
    }
    hk_os_note_unmapped(h, from_size); /* the old address is gone */
    hk_segment *n = (hk_segment *)dst;
    n->map_base = dst;
    n->map_size = dst_size;
    hk_segmap_set(n);
    return n;
}

/* A miss of the cache for map_size bytes: a cached mapping of at least half
 * that size (the most recently parked) moves its resident pages onto the
 * head of the new mapping, so that only the rest is faulted in (a program
 * whose huge sizes drift, as frag's churn at 1.5x does, reuses what it
 * freed instead of leaving it parked).  NULL: none, or it failed. */
static hk_segment *map_over_cached(size_t map_size) {
    hk_segment *c = cache_take(map_size / 2, map_size - 1, false);
    if (c == NULL) return NULL;
    void *base;
    size_t mapped;
    uint8_t *dst = map_block(map_size, &base, &mapped);
    hk_segment *n = dst != NULL ? move_pages(c, c->map_size, dst, map_size) : NULL;
    if (n == NULL) {
        unmap_block(c);
        return NULL;
    }
    hk_fetch_add_relaxed(&st_nmmap, 1);
    if (hk_opt.thp) hk_os_hugepage(dst, map_size);
    return n;
}

/* A mapping of at least map_size bytes for a growing block: the smallest
 * cached one of any size (the mapping a buffer that grew before left
 * behind, its pages still resident), else a fresh one.  *cached says which. */
static uint8_t *growth_mapping(size_t map_size, size_t *mapped, bool *cached) {
    hk_segment *c = cache_take(map_size, SIZE_MAX, true);
    *cached = c != NULL;
    if (c != NULL) {
        *mapped = c->map_size;
        return (uint8_t *)c;
    }
    void *base;
    return map_block(map_size, &base, mapped);
}

/* Resizes a plain huge block without copying: in place while the size fits
 * its mapping and is at least half the size last asked for (a block that
 * moved into a larger cached mapping grows into it), else by moving its
 * pages with mremap onto the head of a larger mapping (growth_mapping).
 * Returns NULL (block intact) when neither is possible: a shrink to below
 * half, which the caller copies to give the memory back. */
void *hk_huge_realloc(hk_segment *h, size_t size) {
    if (h->map_base != h || h->user != (uint8_t *)h + HK_HUGE_OFFSET) return NULL;
    if (!hk_request_fits(size, 0)) return NULL; /* hk_huge_alloc says ENOMEM */
    if (size <= h->usable) {
        if (size < h->requested / 2) return NULL;
        h->requested = size;
        return h->user;
    }
    size_t map_size = bucket_size(HK_HUGE_OFFSET + size);
    size_t old_size = h->map_size, mapped;
    bool cached;
    uint8_t *dst = growth_mapping(map_size, &mapped, &cached);
    if (dst == NULL) return NULL;
    if (cached) hk_fetch_add_relaxed(&st_hits, 1);
    /* The old pages replace the head of the new mapping; its tail stays as
     * it was (fresh zero memory, or a cached mapping's resident pages).  A
     * sampled block's record goes first, as its address may be reused once
     * mremap frees it (the moved block is not sampled: a small undercount,
     * doc/PROFILING.md). */
    if (hk_unlikely(h->sampled)) hk_sample_huge_free(h);
    hk_segment *n = move_pages(h, old_size, dst, mapped);
    if (n == NULL) return NULL;
    n->user = dst + HK_HUGE_OFFSET;
    n->usable = mapped - HK_HUGE_OFFSET;
    n->requested = size;
    note_live(hk_fetch_add_relaxed(&st_cur_bytes, mapped - old_size) + mapped - old_size);
    return n->user;
}

void hk_bigcache_purge(void) {
    hk_lock(&huge_lock);
    uint64_t now = hk_os_now_ms();
    hk_segment *evict = cache_trim_locked(now, 0);
    note_over_cap_locked(now, max_bytes());
    hk_unlock(&huge_lock);
    unmap_list(evict);
}

void hk_bigcache_purge_over(void) {
    hk_lock(&huge_lock);
    uint64_t now = hk_os_now_ms();
    hk_segment *evict = cache_trim_locked(now, max_bytes());
    hk_store_relaxed(&over_cap_since_ms, 0);
    note_over_cap_locked(now, max_bytes()); /* still over: checked again a decay time on */
    hk_unlock(&huge_lock);
    unmap_list(evict);
}

/* For the decay thread: what the cache's rules let go now (beyond the soft
 * limit, idle 10 s, beyond the capacity and unused for the decay time),
 * leaving the overflow's clock (over_cap_since_ms) as it is, so that the
 * ticks' hk_bigcache_tick keeps its schedule. */
void hk_bigcache_trim(void) {
    hk_lock(&huge_lock);
    uint64_t now = hk_os_now_ms();
    hk_segment *evict = cache_trim_locked(now, max_bytes());
    note_over_cap_locked(now, max_bytes());
    hk_unlock(&huge_lock);
    unmap_list(evict);
}

/* A cache a malloc emptied a moment after a park still holds: a program
 * that cycles mappings through it keeps the decay thread on its slow
 * cadence, where parks within the capacity do not wake it.  Read as empty,
 * the thread slept until the next park woke it: a system call and a purge
 * pass each cycle (huge -t 2: 2 MiB cycles 2.9 -> 5.4 us). */
unsigned hk_bigcache_state(void) {
    if (hk_load_relaxed(&over_cap_since_ms) != 0) return HK_BC_OVER;
    if (hk_load_relaxed(&cache_nonempty)) return HK_BC_HOLDS;
    return hk_os_now_ms() - hk_load_relaxed(&last_park_ms) < HK_DECAY_SLOW_STEP_MS ? HK_BC_HOLDS
                                                                                  : HK_BC_EMPTY;
}

/* From the slow paths: once the cache has held more than its capacity for
 * the decay time, the overflow that has gone unused that long goes. */
void hk_bigcache_tick(void) {
    uint64_t since = hk_load_relaxed(&over_cap_since_ms);
    if (hk_likely(since == 0) || hk_os_now_ms() - since <= overflow_ttl_ms()) return;
    hk_bigcache_purge_over();
}

void hk_huge_get_stats(hk_huge_stats *o) {
    o->nmalloc = hk_load_relaxed(&st_nmalloc);
    o->ndalloc = hk_load_relaxed(&st_ndalloc);
    o->hits = hk_load_relaxed(&st_hits);
    o->misses = hk_load_relaxed(&st_misses);
    o->nmmap = hk_load_relaxed(&st_nmmap);
    o->cur_bytes = hk_load_relaxed(&st_cur_bytes);
    o->ghost_hits = hk_load_relaxed(&st_ghost_hits);
    o->ghost_bytes = hk_load_relaxed(&st_ghost_bytes);
    o->cache_max = max_bytes();
    hk_lock(&huge_lock);
    o->cache_bytes = cache_bytes;
    o->ncached = cache_count;
    hk_unlock(&huge_lock);
}

/* The atomic counters only (no lock, so callable from a signal handler);
 * the BigCache fields are left zero. */
void hk_huge_get_stats_lockless(hk_huge_stats *o) {
    memset(o, 0, sizeof *o);
    o->nmalloc = hk_load_relaxed(&st_nmalloc);
    o->ndalloc = hk_load_relaxed(&st_ndalloc);
    o->hits = hk_load_relaxed(&st_hits);
    o->misses = hk_load_relaxed(&st_misses);
    o->nmmap = hk_load_relaxed(&st_nmmap);
    o->cur_bytes = hk_load_relaxed(&st_cur_bytes);
}

/* The most the cache held since the last call (then it starts from now). */
size_t hk_bigcache_peak_reset(void) {
    hk_lock(&huge_lock);
    size_t peak = cache_peak > cache_bytes ? cache_peak : cache_bytes;
    cache_peak = cache_bytes;
    hk_unlock(&huge_lock);
    return peak;
}

void hk_huge_lock(void) { hk_lock(&huge_lock); }
void hk_huge_unlock(void) { hk_unlock(&huge_lock); }
void hk_huge_reinit_child(void) { pthread_mutex_init(&huge_lock, NULL); }
