/*
 * Debug checks' guarded blocks: one small block in guard_sample lies in a
 * mapping of its own (huge.c) and ends right before a PROT_NONE page.
 *
 *   | header | ... | user bytes (size) | slack: canary 0xCA | PROT_NONE page |
 *                  ^ user               ^ user + size        ^ guard
 *
 *   guard == user + align_up(size, 16), guard page-aligned, so user is
 *   16-byte aligned like every block; the slack (0..15 bytes) holds a
 *   canary checked at free, so an overrun that stops short of the guard
 *   page is reported as in any debug block.  usable == size.
 *
 * A freed guarded block keeps its mapping, junk-filled, its guard page
 * still PROT_NONE, in a small lock-free cache by data page count, for the
 * next guarded block of that many pages: no mmap, mprotect or munmap in
 * the steady state (each takes the process's mmap lock for writing, so
 * they were most of research mode's time and its scaling limit).  A kept
 * block is marked cached, so a second free of it is reported.
 */
#include "core/core_internal.h"

#define HK_GUARD_BINS (HK_MID_MAX / HK_OS_PAGE) /* data pages 1..8 */
#define HK_GUARD_KEEP 64 /* kept mappings per bin (a batch of a few thousand frees) */
#define HK_CANARY 0xCA
#define HK_JUNK_ALLOC 0xA5
#define HK_JUNK_FREE 0xDE

static _Atomic(hk_segment *) kept[HK_GUARD_BINS][HK_GUARD_KEEP];

static size_t body_of(size_t size) { return hk_align_up(size == 0 ? 1 : size, 16); }

static unsigned bin_of(size_t body) {
    return (unsigned)(hk_align_up(body, HK_OS_PAGE) / HK_OS_PAGE) - 1;
}

/* The guard page of a guarded block (usable == its requested size). */
static uint8_t *guard_of(const hk_segment *h) {
    return h->user + body_of(h->usable);
}

static hk_segment *take(unsigned bin) {
    for (unsigned i = 0; i < HK_GUARD_KEEP; i++) {
        if (hk_load_relaxed(&kept[bin][i]) == NULL) continue;
        hk_segment *h = hk_exchange_acq_rel(&kept[bin][i], NULL);
        if (h != NULL) return h;
    }
    return NULL;
}

static bool keep(unsigned bin, hk_segment *h) {
    for (unsigned i = 0; i < HK_GUARD_KEEP; i++) {
        hk_segment *expected = NULL;
        if (hk_cas_strong_acq_rel(&kept[bin][i], &expected, h)) return true;
    }
    return false;
}

void *hk_guard_alloc(size_t size) {
    size_t body = body_of(size);
    hk_segment *h = take(bin_of(body));
    uint8_t *user;
    if (h != NULL) user = hk_huge_guarded_reuse(h, guard_of(h) - body);
    else user = hk_huge_alloc_guarded(size);
    if (user == NULL) return NULL;
    hk_segment_of(user)->usable = size;
    memset(user, HK_JUNK_ALLOC, size);
    memset(user + size, HK_CANARY, body - size);
    return user;
}

static void check_slack(const hk_segment *h) {
    uint8_t *end = guard_of(h), *c = hk_canary_first_bad(h->user + h->usable, end, HK_CANARY);
    if (c == end) return;
    char detail[128];
    hk_fmt(detail, sizeof detail, "guarded block of %u bytes, first bad byte at +%u (0x%02x)",
           (unsigned)h->usable, (unsigned)(c - h->user), *c);
    hk_report("buffer overrun", h->user, NULL, detail);
}

/* huge.c's free of a guarded block h: checks its slack, junk-fills it, and
 * keeps its mapping (true) or leaves it to be unmapped (false). */
bool hk_guard_free(hk_segment *h) {
    check_slack(h);
    memset(h->user, HK_JUNK_FREE, h->usable);
    h->cached = 1;
    if (keep(bin_of(body_of(h->usable)), h)) return true;
    h->cached = 0;
    return false;
}
