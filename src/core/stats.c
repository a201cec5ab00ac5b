/*
 * Statistics: per-thread counters merged on read.  Heaps of running threads
 * are walked under hk_heaps_lock; an exiting thread folds its counters into
 * hk_dead_counters under the same lock, so nothing is counted twice or lost.
 */
#include <stdio.h>

#include "core/core_internal.h"

static void add_counters(hk_class_totals *t, hk_class_counters *c, unsigned i) {
#define HK_ADD_(name, kind, doc) HK_IF_COUNTER(kind, t->name += hk_load_relaxed(&c->name[i]);)
    HAK_CLASS_STATS_FIELDS(HK_ADD_)
#undef HK_ADD_
    t->nslow += hk_load_relaxed(&c->nslow[i]);
}

void hk_stats_class_totals(hk_class_totals out[HK_NCLASSES]) {
    memset(out, 0, sizeof(hk_class_totals) * HK_NCLASSES);
    hk_lock(&hk_heaps_lock);
    for (unsigned c = 0; c < HK_NCLASSES; c++) add_counters(&out[c], &hk_dead_counters, c);
    for (hk_heap *h = hk_heaps_all; h != NULL; h = h->next_all)
        for (unsigned c = 0; c < HK_NCLASSES; c++) add_counters(&out[c], &h->counters, c);
    hk_unlock(&hk_heaps_lock);
    for (unsigned a = 0; a < hk_opt.narenas; a++)
        for (unsigned c = 0; c < HK_NCLASSES; c++)
            out[c].pages += hk_load_relaxed(&hk_arenas[a].pages[c]);
}

void hk_stats_class_view(unsigned c, const hk_class_totals *t, struct hak_class_stats *out) {
#define HK_COPY_(name, kind, doc) HK_IF_COUNTER(kind, out->name = t->name;)
    HAK_CLASS_STATS_FIELDS(HK_COPY_)
#undef HK_COPY_
    /* the derived fields and the gauges */
    out->size = hk_class_size[c];
    out->curblocks = t->nmalloc >= t->ndalloc ? t->nmalloc - t->ndalloc : 0;
    out->curslabs = t->pages;
    out->tcache_hits = t->nmalloc - t->nslow;
}

static void fold(_Atomic uint64_t *dst, _Atomic uint64_t *src) {
    hk_fetch_add_relaxed(dst, hk_load_relaxed(src));
    hk_store_relaxed(src, 0);
}

/* Caller holds hk_heaps_lock and has unlinked the heap. */
void hk_stats_fold_heap(hk_heap *h) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        hk_class_counters *d = &hk_dead_counters, *s = &h->counters;
#define HK_FOLD_(name, kind, doc) HK_IF_COUNTER(kind, fold(&d->name[c], &s->name[c]);)
        HAK_CLASS_STATS_FIELDS(HK_FOLD_)
#undef HK_FOLD_
        fold(&d->nslow[c], &s->nslow[c]);
    }
    /* Per-thread byte totals start again for the heap's next thread. */
    hk_store_relaxed(&h->allocated_bytes, 0);
    hk_store_relaxed(&h->deallocated_bytes, 0);
}

/* Bytes the calling thread's heap allocated or freed, at class sizes. */
uint64_t hk_thread_bytes(bool allocated) {
    hk_heap *h = hk_thread_real_heap();
    if (h == NULL) return 0;
    uint64_t sum = 0;
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        _Atomic uint64_t *n = allocated ? &h->counters.nmalloc[c] : &h->counters.ndalloc[c];
        sum += hk_load_relaxed(n) * hk_class_size[c];
    }
    return sum + hk_load_relaxed(allocated ? &h->allocated_bytes : &h->deallocated_bytes);
}

size_t hk_stats_mapped(void) {
    size_t m = 0;
    for (unsigned a = 0; a < hk_opt.narenas; a++) m += hk_load_relaxed(&hk_arenas[a].mapped);
    hk_huge_stats hs;
    hk_huge_get_stats(&hs);
    return m + hs.cur_bytes + hs.cache_bytes + hk_load_relaxed(&hk_meta_bytes);
}

size_t hk_stats_allocated(void) {
    hk_class_totals t[HK_NCLASSES];
    hk_stats_class_totals(t);
    size_t sum = 0;
    for (unsigned c = 0; c < HK_NCLASSES; c++)
        if (t[c].nmalloc > t[c].ndalloc) sum += (size_t)(t[c].nmalloc - t[c].ndalloc) * hk_class_size[c];
    hk_huge_stats hs;
    hk_huge_get_stats(&hs);
    return sum + hs.cur_bytes;
}

size_t hk_stats_active(void) {
    size_t sum = 0;
    for (unsigned a = 0; a < hk_opt.narenas; a++)
        for (unsigned c = 0; c < HK_NCLASSES; c++)
            sum += (size_t)hk_load_relaxed(&hk_arenas[a].pages[c]) * hk_class_slices[c] * HK_SLICE_SIZE;
    hk_huge_stats hs;
    hk_huge_get_stats(&hs);
    return sum + hs.cur_bytes;
}

/* Heaps and other metadata, plus the header slice of every segment. */
size_t hk_stats_metadata(void) {
    size_t segs = 0;
    for (unsigned a = 0; a < hk_opt.narenas; a++) segs += hk_load_relaxed(&hk_arenas[a].mapped) / HK_SEG_SIZE;
    return hk_load_relaxed(&hk_meta_bytes) + segs * hk_align_up(sizeof(hk_segment), HK_OS_PAGE);
}

/* ---- printing (never allocates) ---- */

typedef struct printer {
    void (*write)(void *, const char *);
    void *opaque;
} printer;

static void default_write(void *opaque, const char *s) { hk_write_stderr(s); }

static void out(printer *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(printer *pr, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pr->write(pr->opaque, buf);
}

static double pct(uint64_t part, uint64_t whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static uint64_t live_blocks(const hk_class_totals *t) {
    return t->nmalloc > t->ndalloc ? t->nmalloc - t->ndalloc : 0;
}

static uint64_t page_blocks(unsigned c, uint64_t pages) {
    return pages * (hk_class_slices[c] * HK_SLICE_SIZE / hk_class_size[c]);
}

static void print_tier_text(printer *pr, hk_class_totals *t, unsigned first, unsigned n,
                            const char *tier) {
    out(pr, "%s classes:\n%5s %8s %12s %12s %10s %7s %6s %7s\n", tier, "class", "size",
        "nmalloc", "ndalloc", "live", "pages", "util%", "tcache%");
    for (unsigned c = first; c < first + n; c++) {
        if (t[c].nmalloc == 0 && t[c].pages == 0) continue;
        uint64_t live = live_blocks(&t[c]);
        out(pr, "%5u %8u %12llu %12llu %10llu %7llu %5.1f%% %6.1f%%\n", c, hk_class_size[c],
            (unsigned long long)t[c].nmalloc, (unsigned long long)t[c].ndalloc,
            (unsigned long long)live, (unsigned long long)t[c].pages,
            pct(live, page_blocks(c, t[c].pages)), pct(t[c].nmalloc - t[c].nslow, t[c].nmalloc));
    }
}

static bool omitted(const char *opts, char section) {
    return opts != NULL && strchr(opts, section) != NULL;
}

static void print_text(printer *pr, hk_class_totals *t, hk_huge_stats *hs, const char *opts) {
    if (!omitted(opts, 'g')) {
        out(pr, "___ hakmem %s statistics ___\n", HAKMEM_VERSION);
        out(pr, "mode: %s  arenas: %u  tcache: %s  bigcache: %s  decay: %s (%lld ms)\n",
            hk_mode_name(hk_load_relaxed(&hk_mode_now)), hk_opt.narenas,
            hk_feature_on(HK_FEAT_TCACHE) ? "on" : "off",
            hk_feature_on(HK_FEAT_BIGCACHE) ? "on" : "off",
            hk_feature_on(HK_FEAT_DECAY) ? "on" : "off", (long long)hk_opt.decay_ms);
        out(pr, "allocated: %zu KiB  active: %zu KiB  mapped: %zu KiB  resident: %zu KiB"
            "  metadata: %zu KiB\n", hk_stats_allocated() >> 10, hk_stats_active() >> 10,
            hk_stats_mapped() >> 10, hk_os_resident() >> 10, hk_stats_metadata() >> 10);
    }
    if (!omitted(opts, 't')) print_tier_text(pr, t, 0, HK_TINY_NCLASSES, "tiny");
    if (!omitted(opts, 'm')) print_tier_text(pr, t, HK_TINY_NCLASSES, HK_MID_NCLASSES, "mid");
    if (!omitted(opts, 'l'))
        print_tier_text(pr, t, HK_TINY_NCLASSES + HK_MID_NCLASSES, HK_LARGE_NCLASSES, "large");
    if (!omitted(opts, 'h'))
        out(pr, "huge: nmalloc %llu  ndalloc %llu  mmaps %llu  bigcache hits %llu misses %llu"
            "  cached %zu KiB in %zu (max %zu KiB)\n",
            (unsigned long long)hs->nmalloc, (unsigned long long)hs->ndalloc,
            (unsigned long long)hs->nmmap, (unsigned long long)hs->hits,
            (unsigned long long)hs->misses, hs->cache_bytes >> 10, hs->ncached,
            hs->cache_max >> 10);
}

/* Each class as {"class":c, then every field of HAK_CLASS_STATS_FIELDS}. */
static void print_tier_json(printer *pr, hk_class_totals *t, unsigned first, unsigned n,
                            const char *tier) {
    out(pr, ",\"%s\":[", tier);
    bool sep = false;
    for (unsigned c = first; c < first + n; c++) {
        if (t[c].nmalloc == 0 && t[c].pages == 0) continue;
        struct hak_class_stats v;
        hk_stats_class_view(c, &t[c], &v);
        out(pr, "%s{\"class\":%u", sep ? "," : "", c);
#define HK_JSON_FIELD_(name, kind, doc) out(pr, ",\"" #name "\":%llu", (unsigned long long)v.name);
        HAK_CLASS_STATS_FIELDS(HK_JSON_FIELD_)
#undef HK_JSON_FIELD_
        out(pr, "}");
        sep = true;
    }
    out(pr, "]");
}

static void print_json(printer *pr, hk_class_totals *t, hk_huge_stats *hs, const char *opts) {
    out(pr, "{\"schema\":2,\"version\":\"%s\"", HAKMEM_VERSION);
    if (!omitted(opts, 'g'))
        out(pr, ",\"mode\":\"%s\",\"narenas\":%u,\"allocated\":%zu,\"active\":%zu,"
            "\"mapped\":%zu,\"resident\":%zu,\"metadata\":%zu",
            hk_mode_name(hk_load_relaxed(&hk_mode_now)), hk_opt.narenas, hk_stats_allocated(),
            hk_stats_active(), hk_stats_mapped(), hk_os_resident(), hk_stats_metadata());
    if (!omitted(opts, 't')) print_tier_json(pr, t, 0, HK_TINY_NCLASSES, "tiny");
    if (!omitted(opts, 'm')) print_tier_json(pr, t, HK_TINY_NCLASSES, HK_MID_NCLASSES, "mid");
    if (!omitted(opts, 'l'))
        print_tier_json(pr, t, HK_TINY_NCLASSES + HK_MID_NCLASSES, HK_LARGE_NCLASSES, "large");
    if (!omitted(opts, 'h'))
        out(pr, ",\"huge\":{\"nmalloc\":%llu,\"ndalloc\":%llu,\"nmmap\":%llu,\"hits\":%llu,"
            "\"misses\":%llu,\"cache_bytes\":%zu,\"cache_max\":%zu}",
            (unsigned long long)hs->nmalloc, (unsigned long long)hs->ndalloc,
            (unsigned long long)hs->nmmap, (unsigned long long)hs->hits,
            (unsigned long long)hs->misses, hs->cache_bytes, hs->cache_max);
    out(pr, "}\n");
}

/* opts: "J" JSON; g t m l h omit the general, tiny, mid, large, huge parts. */
HAK_EXPORT void hak_stats_print(void (*write)(void *, const char *), void *opaque,
                                const char *opts) {
    hk_ensure_init();
    printer pr = {write ? write : default_write, opaque};
    hk_class_totals t[HK_NCLASSES];
    hk_huge_stats hs;
    hk_stats_class_totals(t);
    hk_huge_get_stats(&hs);
    if (omitted(opts, 'J')) print_json(&pr, t, &hs, opts);
    else print_text(&pr, t, &hs, opts);
}

void hk_stats_print_at_exit(void) { hak_stats_print(NULL, NULL, hk_opt.stats_print_opts); }
