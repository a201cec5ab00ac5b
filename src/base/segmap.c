/*
 * The segment map: one bit per 2 MiB of the 47-bit user address space
 * (8 MiB of bitmap in .bss: the kernel maps zero pages until a bit is first
 * written, so it costs memory only where hakmem has segments).  A bit is set
 * while a small segment or the header chunk of a huge block is mapped
 * there.  free() consults it (hk_segmap_has, inline) before it touches any
 * header, so a foreign pointer is reported instead of followed.
 */
#include "base/base.h"

_Atomic uint64_t hk_segmap_bits[HK_SEGMAP_WORDS];

static void chunk_bit(const void *p, size_t *word, uint64_t *bit) {
    size_t i = (uintptr_t)p >> HK_SEG_SHIFT;
    *word = i / 64;
    *bit = (uint64_t)1 << (i % 64);
}

void hk_segmap_set(const void *chunk) {
    size_t w;
    uint64_t b;
    if (((uintptr_t)chunk >> HK_ADDR_BITS) != 0) return;
    chunk_bit(chunk, &w, &b);
    hk_fetch_or_relaxed(&hk_segmap_bits[w], b);
}

void hk_segmap_clear(const void *chunk) {
    size_t w;
    uint64_t b;
    if (((uintptr_t)chunk >> HK_ADDR_BITS) != 0) return;
    chunk_bit(chunk, &w, &b);
    hk_fetch_and_relaxed(&hk_segmap_bits[w], ~b);
}

bool hk_segmap_contains(const void *p) {
    return ((uintptr_t)p >> HK_ADDR_BITS) == 0 && hk_segmap_has(p);
}
