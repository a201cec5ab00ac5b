/*
 * Pages: spans of slices holding blocks of one class.  Blocks are carved
 * lazily (hk_page_extend) so untouched memory stays untouched, and the free
 * lists follow the invariants written next to struct hk_page.
 */
#include "core/core_internal.h"

/* The page of a heap with no page of a class yet: no free block, so malloc
 * falls into the slow path; no owner, so it is never freed into. */
hk_page hk_page_empty;

/* A refill carves 8 KiB of blocks, and at least 16 blocks. */
#define HK_EXTEND_BYTES 8192u
#define HK_EXTEND_MIN_BLOCKS 16u

void hk_page_init(hk_segment *seg, unsigned idx, unsigned nslices,
                  unsigned cls, bool is_zero) {
    hk_page *page = &seg->pages[idx];
    memset(page, 0, sizeof *page);
    hk_store_relaxed(&seg->sample_bloom[idx], 0); /* no sampled block yet */
    page->cls = (uint16_t)cls;
    page->block_size = hk_class_size[cls];
    page->slice_count = (uint8_t)nslices;
    page->reserved = (uint16_t)(nslices * HK_SLICE_SIZE / page->block_size);
    page->is_zero = is_zero;
    for (unsigned i = 1; i < nslices; i++) seg->pages[idx + i].slice_back = (uint16_t)(i * sizeof(hk_page));
}

/* Carves up to HK_EXTEND_BYTES of new blocks onto the free list. */
void hk_page_extend(hk_page *page) {
    uint32_t left = page->reserved - page->capacity;
    if (left == 0) return;
    uint32_t n = HK_EXTEND_BYTES / page->block_size;
    if (n < HK_EXTEND_MIN_BLOCKS) n = HK_EXTEND_MIN_BLOCKS;
    if (n > left) n = left;
    size_t bs = page->block_size;
    uint8_t *first = hk_page_start(page) + (size_t)page->capacity * bs;
    uint8_t *p = first;
    for (uint32_t i = 1; i < n; i++, p += bs) hk_block_set_next((hk_block *)p, (hk_block *)(p + bs));
    hk_block_set_next((hk_block *)p, page->free);
    page->free = (hk_block *)first;
    page->capacity = (uint16_t)(page->capacity + n);
}

/* Owner: takes the remote frees (one exchange, no walk: the word carries
 * their count) and, when the free list is empty, the local frees. */
void hk_page_collect(hk_page *page) {
    uintptr_t tf = hk_load_relaxed(&page->xthread_free);
    while (hk_tf_ptr(tf) != 0) {
        if (hk_cas_strong_acq_rel(&page->xthread_free, &tf, tf & HK_TF_MASK)) break;
    }
    hk_block *list = (hk_block *)hk_tf_ptr(tf);
    if (list != NULL) {
        page->used = (uint16_t)(page->used - hk_tf_count(tf));
        if (page->free == NULL) {
            page->free = list;
        } else if (page->local_free == NULL) {
            page->local_free = list;
        } else {
            hk_block *tail = list, *next;
            while ((next = hk_block_next(tail)) != NULL) {
                if (hk_next_leaves_segment(tail, next)) {
                    hk_report_corrupt_list(page, tail, next);
                    break;
                }
                tail = next;
            }
            hk_block_set_next(tail, page->free);
            page->free = list;
        }
    }
    if (page->free == NULL) {
        page->free = page->local_free;
        page->local_free = NULL;
    }
}

void hk_page_drop_bad_head(hk_page *page) {
    hk_report_corrupt_head(page, page->free);
    page->free = NULL;
}

void hk_page_queue_push(hk_page_queue *q, hk_page *page) {
    page->prev = NULL;
    page->next = q->first;
    if (q->first) q->first->prev = page;
    else q->last = page;
    q->first = page;
    q->count++;
}

void hk_page_queue_append(hk_page_queue *q, hk_page *page) {
    page->next = NULL;
    page->prev = q->last;
    if (q->last) q->last->next = page;
    else q->first = page;
    q->last = page;
    q->count++;
}

void hk_page_queue_remove(hk_page_queue *q, hk_page *page) {
    if (page->prev) page->prev->next = page->next;
    else q->first = page->next;
    if (page->next) page->next->prev = page->prev;
    else q->last = page->prev;
    page->next = page->prev = NULL;
    q->count--;
}
