/*
 * Metadata memory (heaps and other internal structures): bump-allocated from
 * 1 MiB mappings under one lock, zeroed, never returned to the OS.  Callers
 * recycle what they allocate (the heap pool does).
 */
#include "base/base.h"

#define HK_META_CHUNK ((size_t)1 << 20)

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *meta_cur, *meta_end;
_Atomic size_t hk_meta_bytes;

/* The chunk is mapped outside meta_lock: a mapping that fails may first
 * release the BigCache (os.c), whose lock comes before this one.  Two
 * threads that both ran out map a chunk each; the later one's replaces the
 * other's rest (metadata is never freed: a rare, bounded waste). */
void *hk_meta_alloc(size_t size) {
    size = hk_align_up(size, 64);
    for (;;) {
        hk_lock(&meta_lock);
        if (meta_cur != NULL && (size_t)(meta_end - meta_cur) >= size) {
            void *p = meta_cur;
            meta_cur += size;
            hk_unlock(&meta_lock);
            return p;
        }
        hk_unlock(&meta_lock);
        size_t chunk = size > HK_META_CHUNK ? hk_align_up(size, HK_OS_PAGE) : HK_META_CHUNK;
        uint8_t *m = hk_os_map(chunk);
        if (m == NULL) return NULL;
        hk_fetch_add_relaxed(&hk_meta_bytes, chunk);
        hk_lock(&meta_lock);
        meta_cur = m;
        meta_end = m + chunk;
        hk_unlock(&meta_lock);
    }
}

void hk_meta_lock(void) { hk_lock(&meta_lock); }
void hk_meta_unlock(void) { hk_unlock(&meta_lock); }
void hk_meta_reinit_child(void) { pthread_mutex_init(&meta_lock, NULL); }
