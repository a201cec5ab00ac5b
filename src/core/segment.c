/*
 * Segments: 2 MiB regions aligned to 2 MiB, cut into 32 slices of 64 KiB.
 * Slice 0 holds the header.  free_mask has a bit per slice not in any page;
 * dirty_mask marks the free slices that may still be resident (freed since
 * the last purge), dirty_at_ms[i] when each was freed.  A purge gives back
 * the slices that have waited the decay time, not the ones freed since:
 * purging a segment's every dirty slice once its oldest had waited (until
 * 12/2026) gave back slices freed a moment before, and mixed faulted 31 k
 * pages instead of 22 k.  Every function here runs under seg->arena->lock.
 */
#include "core/core_internal.h"

#define ALL_SLICES_BUT_HEADER (((uint32_t)-1) & ~1u)

hk_segment *hk_segment_alloc(hk_arena *arena) {
    void *base;
    size_t mapped;
    hk_segment *seg = hk_os_map_aligned(HK_SEG_SIZE, HK_SEG_SIZE, &base, &mapped);
    if (seg == NULL) return NULL;
    seg->magic = HK_SEG_MAGIC;
    seg->kind = HK_SEG_SMALL;
    seg->arena = arena;
    seg->free_mask = ALL_SLICES_BUT_HEADER;
    seg->dirty_mask = 0;
    seg->purged_mask = 0;
    hk_segmap_set(seg);
    hk_fetch_add_relaxed(&arena->mapped, HK_SEG_SIZE);
    return seg;
}

void hk_segment_free(hk_segment *seg) {
    hk_fetch_sub_relaxed(&seg->arena->mapped, HK_SEG_SIZE);
    hk_fetch_sub_relaxed(&seg->arena->ndirty, (size_t)hk_popcount32(seg->dirty_mask));
    hk_segmap_clear(seg);
    seg->magic = 0;
    hk_os_unmap(seg, HK_SEG_SIZE);
}

/* Bits i where slices i .. i+n-1 are all free. */
static uint32_t runs_of(uint32_t mask, unsigned n) {
    for (unsigned i = 1; i < n && mask; i++) mask &= mask >> 1;
    return mask;
}

static uint32_t span_bits(unsigned idx, unsigned n) {
    return (n >= 32 ? (uint32_t)-1 : ((uint32_t)1 << n) - 1) << idx;
}

/* Takes a span of n free slices; returns its first slice or -1.  With
 * resident_only, only a span whose slices are all dirty (still resident:
 * nothing to fault in or zero again) will do.  *is_zero tells whether its
 * memory is known to read as zero (never used, or purged).  Purged slices
 * taken again are counted (they fault back in: the learner's signal that
 * the decay time is too short). */
int hk_segment_span_alloc(hk_segment *seg, unsigned n, bool resident_only, bool *is_zero) {
    uint32_t starts = runs_of(resident_only ? seg->free_mask & seg->dirty_mask : seg->free_mask, n);
    if (starts == 0) return -1;
    unsigned idx = (unsigned)__builtin_ctz(starts);
    uint32_t bits = span_bits(idx, n);
    uint32_t dirty = seg->dirty_mask & bits, purged = seg->purged_mask & bits;
    *is_zero = dirty == 0;
    seg->free_mask &= ~bits;
    seg->dirty_mask &= ~bits;
    seg->purged_mask &= ~bits;
    if (dirty) hk_fetch_sub_relaxed(&seg->arena->ndirty, (size_t)hk_popcount32(dirty));
    if (purged) hk_fetch_add_relaxed(&seg->arena->nrefaults, (uint64_t)hk_popcount32(purged));
    return (int)idx;
}

void hk_segment_span_free(hk_segment *seg, unsigned idx, unsigned n, uint64_t now) {
    uint32_t bits = span_bits(idx, n);
    if (seg->dirty_mask == 0 || now < seg->dirty_since_ms) seg->dirty_since_ms = now;
    for (unsigned i = idx; i < idx + n && i < HK_SLICES; i++) seg->dirty_at_ms[i] = now;
    hk_arena *a = seg->arena;
    size_t newly_dirty = hk_popcount32(bits & ~seg->dirty_mask);
    size_t dirty = hk_fetch_add_relaxed(&a->ndirty, newly_dirty) + newly_dirty;
    if (dirty > hk_load_relaxed(&a->ndirty_peak)) hk_store_relaxed(&a->ndirty_peak, dirty);
    seg->free_mask |= bits;
    seg->dirty_mask |= bits;
    hk_decay_note_dirty(true);
}

/* The dirty slices freed decay_ms or more before now (all of them for
 * decay_ms 0); *oldest_left the free time of the oldest dirty slice left
 * (now when none is).  A time after now (another thread's clock read, under
 * the same lock a moment later) counts as not aged. */
static uint32_t aged_slices(const hk_segment *seg, uint64_t now, uint64_t decay_ms,
                            uint64_t *oldest_left) {
    if (decay_ms == 0) {
        *oldest_left = now;
        return seg->dirty_mask;
    }
    uint32_t aged = 0;
    *oldest_left = now;
    for (uint32_t d = seg->dirty_mask; d != 0; d &= d - 1) {
        unsigned i = (unsigned)__builtin_ctz(d);
        if (seg->dirty_at_ms[i] + decay_ms <= now) aged |= (uint32_t)1 << i;
        else if (seg->dirty_at_ms[i] < *oldest_left) *oldest_left = seg->dirty_at_ms[i];
    }
    return aged;
}

/* Whether every dirty slice has waited decay_ms (an empty segment may go). */
bool hk_segment_all_aged(const hk_segment *seg, uint64_t now, int64_t decay_ms) {
    if (decay_ms < 0) return false;
    uint64_t oldest_left;
    return aged_slices(seg, now, (uint64_t)decay_ms, &oldest_left) == seg->dirty_mask;
}

/* Gives back the dirty slices that have waited decay_ms (decay_ms 0: all,
 * at once).  Returns the bytes purged. */
size_t hk_segment_purge(hk_segment *seg, uint64_t now, int64_t decay_ms) {
    if (seg->dirty_mask == 0 || decay_ms < 0) return 0;
    if (decay_ms > 0 && seg->dirty_since_ms + (uint64_t)decay_ms > now) return 0; /* none has */
    uint64_t oldest_left;
    uint32_t dirty = aged_slices(seg, now, (uint64_t)decay_ms, &oldest_left);
    uint32_t purged = dirty;
    seg->dirty_since_ms = oldest_left;
    if (purged == 0) return 0;
    size_t bytes = 0;
    while (dirty) {
        unsigned start = (unsigned)__builtin_ctz(dirty);
        unsigned len = (unsigned)__builtin_ctz(~(dirty >> start));
        if (start + len > 32) len = 32 - start;
        hk_os_purge((uint8_t *)seg + (size_t)start * HK_SLICE_SIZE,
                    (size_t)len * HK_SLICE_SIZE);
        bytes += (size_t)len * HK_SLICE_SIZE;
        dirty &= ~span_bits(start, len);
    }
    hk_fetch_sub_relaxed(&seg->arena->ndirty, (size_t)hk_popcount32(purged));
    seg->purged_mask |= purged;
    seg->dirty_mask &= ~purged;
    hk_fetch_add_relaxed(&seg->arena->npurged, 1);
    return bytes;
}
