/*
 * The segment map: one bit per 2 MiB of the 47-bit user address space
 * (8 MiB of bitmap, reserved up front and committed lazily by the kernel as
 * bits are first written).  A bit is set while a small segment or the header
 * chunk of a huge block is mapped there.  It answers "is this pointer ours?"
 * for foreign-pointer checks; the fast paths never consult it.
 */
#include "hk_internal.h"

#define HK_ADDR_BITS 47
#define HK_SEGMAP_BITS ((size_t)1 << (HK_ADDR_BITS - HK_SEG_SHIFT))
#define HK_SEGMAP_WORDS (HK_SEGMAP_BITS / 64)

static _Atomic uint64_t *segmap;

bool hk_segmap_init(void) {
    if (segmap != NULL) return true;
    segmap = hk_os_map(HK_SEGMAP_WORDS * sizeof(uint64_t));
    return segmap != NULL;
}

static bool chunk_index(const void *p, size_t *word, uint64_t *bit) {
    uintptr_t a = (uintptr_t)p;
    if (segmap == NULL || (a >> HK_ADDR_BITS) != 0) return false;
    size_t i = a >> HK_SEG_SHIFT;
    *word = i / 64;
    *bit = (uint64_t)1 << (i % 64);
    return true;
}

void hk_segmap_set(const void *chunk) {
    size_t w;
    uint64_t b;
    if (chunk_index(chunk, &w, &b)) hk_fetch_or_relaxed(&segmap[w], b);
}

void hk_segmap_clear(const void *chunk) {
    size_t w;
    uint64_t b;
    if (chunk_index(chunk, &w, &b)) hk_fetch_and_relaxed(&segmap[w], ~b);
}

bool hk_segmap_contains(const void *p) {
    size_t w;
    uint64_t b;
    if (!chunk_index(p, &w, &b)) return false;
    return (hk_load_relaxed(&segmap[w]) & b) != 0;
}
