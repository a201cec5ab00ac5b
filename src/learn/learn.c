/*
 * The learner (learning mode): tunes what the static defaults get wrong --
 * the thread-cache capacity of each size class (tcache_max), the BigCache
 * capacity and the decay time -- from counters the allocator keeps anyway.
 *
 * When.  hk_learn_tick() is called from the heap and huge slow paths (never
 * a fast path, never under a lock) while the learner feature is on.  A
 * thread reads the clock every LEARN_EVERY heap slow paths and at every
 * huge allocation; the first one to find a
 * round due (LEARN_PERIOD_MS after the last) and to take the learner's lock
 * runs it, the others go on.  A round merges the per-class counters once
 * (hk_stats_class_totals) and reads a few more; all state is static.
 *
 * What.  Every knob has a ladder of candidates starting at its static
 * default (home); the learner only buys speed with memory above the
 * defaults, never below them.  Each round turns one round's counter deltas
 * into a cost per operation of the setting in force, using the cost model
 * of learn_rule.h, and a pressure; the rule there (a bandit over the ladder:
 * a score per candidate, optimistic probes up bisected after failures,
 * one-step probes down, a 15% margin, exponential back-off) decides:
 *
 *   tcache_max, class c  ops: allocations of c; cost: pages handed back to
 *       the arena (nflushes, each fetched again later) + the bytes the
 *       setting lets every thread keep; pressure +1 when handed-back pages
 *       carry at least 1/32 of the allocations, -1 when none was handed back.
 *       Ladder: the default's pages, then doubling up to 4 MiB.
 *   BigCache capacity    ops: huge allocations; cost: misses a bigger cache
 *       would have served (ghost hits, huge.c: the reuse distance exceeded
 *       the capacity) at an mmap and a fault per page, + the bytes cached;
 *       +1 on such misses, -1 when none and the cache holds more than the
 *       next smaller candidate would.  Ladder: 64 MiB doubling to 1 GiB.
 *   decay_ms, all arenas ops: pages the arenas handed out; cost: purged
 *       slices taken again (faulted back in) + purge calls + dirty bytes
 *       held; +1 when at least 1/16 of the pages land on purged memory, -1
 *       when none does.  Ladder: 100 ms, x4 up to 6.4 s.
 *
 * A knob someone else sets (hak_ctl, hakctl set, a value off the ladder in
 * HAKMEM_CONF) is left alone from then on; when the feature goes off, every
 * knob the learner holds goes back to the value it found; learn.freeze pins
 * the choices while the measuring goes on.
 */
#include <sched.h>
#include <unistd.h>

#include "learn/learn.h"
#include "learn/learn_rule.h"

#define LEARN_EVERY 2             /* periodic ticks of a thread heap between clock reads
                                     (a tick: HK_TICK_EVERY slow paths) */
#define LEARN_PERIOD_MS 50        /* time between rounds, at least */
#define LEARN_TCACHE_MAX_BYTES (4u << 20)    /* a class, a thread */
#define LEARN_PROBE_BYTES ((uint64_t)16 << 20) /* a class, all threads, to try */
#define LEARN_MIN_OPS_TCACHE 256  /* fewer allocations of a class: no judgement */
#define LEARN_MIN_OPS_HUGE 4
#define LEARN_MIN_OPS_PAGES 16

static hk_lr_knob knobs[HK_LEARN_NKNOBS];  /* all under the lock */
static bool owned[HK_LEARN_NKNOBS];        /* the learner holds the knob */
static uint64_t origin[HK_LEARN_NKNOBS];   /* the value it found there */
static uint64_t div_of[HK_LEARN_NKNOBS];   /* unit of the scores text */
static bool ladders_built, running;

/* Counters at the last round. */
static uint64_t prev_ms, prev_nmalloc[HK_NCLASSES], prev_nflushes[HK_NCLASSES];
static uint64_t prev_huge, prev_ghost_hits, prev_ghost_bytes;
static uint64_t prev_pages, prev_refaults, prev_purges;

static _Atomic int lock_owner;             /* pid of the holder's process, 0 free */
static _Atomic uint64_t next_round_ms;
static _Atomic bool frozen;
static _Atomic uint64_t nrounds, nchanges, knob_changes[HK_LEARN_NKNOBS];
static _Thread_local uint32_t tick_count;
static _Thread_local char scores_text[96], conf_text[48];

/* ---- the lock: a pid, so a child of fork() finds its parent's hold stale ---- */

static bool lock_try(void) {
    int me = (int)getpid(), seen = 0;
    if (hk_cas_strong_acq_rel(&lock_owner, &seen, me)) return true;
    return seen != me && hk_cas_strong_acq_rel(&lock_owner, &seen, me);
}

static void lock_wait(void) {
    while (!lock_try()) sched_yield();
}

static void unlock(void) { hk_store_release(&lock_owner, 0); }

/* ---- the knobs' settings ---- */

static hk_options defaults(void) {
    hk_options d;
    hk_conf_defaults(&d);
    return d;
}

static unsigned blocks_per_page(unsigned c) {
    return (unsigned)(hk_class_slices[c] * HK_SLICE_SIZE / hk_class_size[c]);
}

static int64_t decay_now(void) {
    return hk_opt.narenas ? hk_load_relaxed(&hk_arenas[0].decay_ms) : hk_opt.decay_ms;
}

static bool decay_uniform(void) {
    for (unsigned a = 1; a < hk_opt.narenas; a++)
        if (hk_load_relaxed(&hk_arenas[a].decay_ms) != decay_now()) return false;
    return true;
}

uint64_t hk_learn_value(unsigned knob) {
    if (knob < HK_NCLASSES) return hk_tcache_max_get(knob);
    if (knob == HK_LEARN_BIGCACHE) {
        hk_huge_stats hs;
        hk_huge_get_stats(&hs);
        return hs.cache_max;
    }
    return (uint64_t)decay_now();
}

static void apply(unsigned knob, uint64_t v) {
    if (knob < HK_NCLASSES) {
        hk_tcache_max_set(knob, (unsigned)v);
    } else if (knob == HK_LEARN_BIGCACHE) {
        hk_bigcache_set_max((size_t)v);
        hk_bigcache_purge_over();
    } else {
        for (unsigned a = 0; a < hk_opt.narenas; a++)
            hk_store_relaxed(&hk_arenas[a].decay_ms, (int64_t)v);
    }
}

/* The ladders: every candidate from the built-in default up. */
static void build_ladders(void) {
    uint64_t v[HK_LR_MAXCAND];
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        unsigned bpp = blocks_per_page(c), n = 0;
        size_t page_bytes = hk_class_slices[c] * HK_SLICE_SIZE;
        unsigned pages = hk_tcache_max_default(c) / bpp;
        while (n < HK_LR_MAXCAND && pages * page_bytes <= LEARN_TCACHE_MAX_BYTES) {
            v[n++] = (uint64_t)pages * bpp;
            pages = pages ? pages * 2 : 1;
        }
        hk_lr_init(&knobs[c], v, n, 0, 0);
        div_of[c] = bpp;
    }
    hk_options d = defaults();
    for (unsigned i = 0; i < 5; i++) v[i] = (uint64_t)(d.bigcache_max_mb << 20) << i;
    hk_lr_init(&knobs[HK_LEARN_BIGCACHE], v, d.bigcache_max_mb ? 5 : 1, 0, 0);
    div_of[HK_LEARN_BIGCACHE] = 1u << 20;
    for (unsigned i = 0; i < 4; i++) v[i] = (uint64_t)d.decay_ms << (2 * i);
    hk_lr_init(&knobs[HK_LEARN_DECAY], v, d.decay_ms > 0 ? 4 : 1, 0, 0);
    div_of[HK_LEARN_DECAY] = 1;
    ladders_built = true;
}

/* Takes every knob whose value is on its ladder (others were set by hand). */
static void take_over(void) {
    for (unsigned k = 0; k < HK_LEARN_NKNOBS; k++) {
        hk_lr_knob *kb = &knobs[k];
        uint64_t v = hk_learn_value(k);
        int i = hk_lr_find(kb, v);
        owned[k] = i >= 0 && kb->ncand > 1;
        if (k == HK_LEARN_DECAY) owned[k] = owned[k] && decay_uniform();
        origin[k] = v;
        /* A fresh start: scores of an earlier run are forgotten. */
        uint64_t vals[HK_LR_MAXCAND];
        memcpy(vals, kb->value, sizeof vals);
        hk_lr_init(kb, vals, kb->ncand, 0, 0);
        if (i >= 0) kb->cur = (uint8_t)i;
    }
}

/* ---- a round ---- */

typedef struct round_counters {
    hk_class_totals cls[HK_NCLASSES];
    hk_huge_stats huge;
    uint64_t pages, refaults, purges, dirty_bytes, cached_bytes;
    unsigned nthreads;
} round_counters;

static void read_counters(round_counters *r) {
    hk_stats_class_totals(r->cls);
    hk_huge_get_stats(&r->huge);
    r->cached_bytes = hk_bigcache_peak_reset(); /* charged at its high-water mark */
    r->pages = r->refaults = r->purges = r->dirty_bytes = 0;
    r->nthreads = 0;
    for (unsigned a = 0; a < hk_opt.narenas; a++) {
        hk_arena *ar = &hk_arenas[a];
        r->pages += hk_load_relaxed(&ar->npage_allocs);
        r->refaults += hk_load_relaxed(&ar->nrefaults);
        r->purges += hk_load_relaxed(&ar->npurged);
        /* Dirty memory is charged at its high-water mark over the round
         * (what peak RSS sees), then the mark starts again from now. */
        size_t peak = hk_exchange_acq_rel(&ar->ndirty_peak, hk_load_relaxed(&ar->ndirty));
        r->dirty_bytes += (uint64_t)peak * HK_SLICE_SIZE;
        r->nthreads += hk_load_relaxed(&ar->nthreads);
    }
}

static void remember(const round_counters *r, uint64_t now) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        prev_nmalloc[c] = r->cls[c].nmalloc;
        prev_nflushes[c] = r->cls[c].nflushes;
    }
    prev_huge = r->huge.nmalloc;
    prev_ghost_hits = r->huge.ghost_hits;
    prev_ghost_bytes = r->huge.ghost_bytes;
    prev_pages = r->pages;
    prev_refaults = r->refaults;
    prev_purges = r->purges;
    prev_ms = now;
}

static hk_lr_obs observe_tcache(unsigned c, const round_counters *r, uint64_t dt) {
    hk_lr_obs o = {0};
    uint64_t ops = r->cls[c].nmalloc - prev_nmalloc[c];
    uint64_t flushes = r->cls[c].nflushes - prev_nflushes[c];
    uint64_t per_block = (uint64_t)hk_class_size[c] * (r->nthreads ? r->nthreads : 1);
    uint64_t held = knobs[c].value[knobs[c].cur] * per_block;
    o.active = ops >= LEARN_MIN_OPS_TCACHE;
    /* A probe up may not let all threads together keep more than this. */
    while (o.top + 1u < knobs[c].ncand && knobs[c].value[o.top + 1] * per_block <= LEARN_PROBE_BYTES)
        o.top++;
    if (o.top == 0) o.no_grow = true;
    o.cost = hk_lr_cost_tcache(flushes, held, dt);
    if (flushes > 0 && flushes * blocks_per_page(c) * 32 >= ops) o.pressure = 1;
    else if (flushes == 0) o.pressure = -1;
    return o;
}

static hk_lr_obs observe_bigcache(const round_counters *r, uint64_t dt) {
    hk_lr_obs o = {0};
    uint64_t ops = r->huge.nmalloc - prev_huge, ghosts = r->huge.ghost_hits - prev_ghost_hits;
    o.active = ops >= LEARN_MIN_OPS_HUGE && hk_feature_on(HK_FEAT_BIGCACHE);
    o.cost = hk_lr_cost_bigcache(ghosts, r->huge.ghost_bytes - prev_ghost_bytes,
                                 r->cached_bytes, dt);
    if (ghosts > 0 && ghosts * 32 >= ops) o.pressure = 1;
    else if (ghosts == 0) o.pressure = -1;
    return o;
}

static hk_lr_obs observe_decay(const round_counters *r, uint64_t dt) {
    hk_lr_obs o = {0};
    uint64_t ops = r->pages - prev_pages, refaults = r->refaults - prev_refaults;
    o.active = ops >= LEARN_MIN_OPS_PAGES && hk_feature_on(HK_FEAT_DECAY);
    o.cost = hk_lr_cost_decay(refaults * HK_SLICE_SIZE, r->purges - prev_purges,
                              r->dirty_bytes, dt);
    if (refaults > 0 && refaults * 16 >= ops) o.pressure = 1;
    else if (refaults == 0) o.pressure = -1;
    return o;
}

static bool probing_up(unsigned k) {
    return knobs[k].from != HK_LR_NONE && knobs[k].cur > knobs[k].from;
}

/* The knob trying a setting up, or -1: one at a time, so what exploring
 * costs in memory is one candidate's worth. */
static int growing = -1;

static void step_knob(unsigned k, hk_lr_obs *o, bool pin) {
    hk_lr_knob *kb = &knobs[k];
    if (!owned[k]) return;
    if (growing >= 0 && growing != (int)k) o->no_grow = true;
    if (hk_learn_value(k) != kb->value[kb->cur]) { /* set by someone else: theirs now */
        owned[k] = false;
        return;
    }
    unsigned was = kb->cur, now = hk_lr_step(kb, o, pin);
    if (probing_up(k)) growing = (int)k;
    if (now == was) return;
    apply(k, kb->value[now]);
    hk_fetch_add_relaxed(&knob_changes[k], 1);
    hk_fetch_add_relaxed(&nchanges, 1);
}

/* Under the lock. */
static void round_locked(uint64_t now) {
    if (!hk_feature_on(HK_FEAT_LEARNER)) return; /* went off since the tick */
    static round_counters r; /* under the lock; too big for a slow path's stack */
    read_counters(&r);
    if (!ladders_built) build_ladders();
    if (!running) {
        take_over();
        running = true;
        remember(&r, now);
        return;
    }
    uint64_t dt = now > prev_ms ? now - prev_ms : 1;
    bool pin = hk_load_relaxed(&frozen);
    growing = -1;
    for (unsigned k = 0; k < HK_LEARN_NKNOBS; k++)
        if (owned[k] && probing_up(k)) growing = (int)k;
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        hk_lr_obs o = observe_tcache(c, &r, dt);
        step_knob(c, &o, pin);
    }
    hk_lr_obs o = observe_bigcache(&r, dt);
    step_knob(HK_LEARN_BIGCACHE, &o, pin);
    o = observe_decay(&r, dt);
    step_knob(HK_LEARN_DECAY, &o, pin);
    remember(&r, now);
    hk_fetch_add_relaxed(&nrounds, 1);
}

void hk_learn_tick(hk_heap *heap) {
    /* heap NULL: a huge allocation, costly enough to read the clock each time */
    if (heap != NULL && hk_likely(++tick_count % LEARN_EVERY != 0)) return;
    uint64_t now = hk_os_now_ms();
    if (now < hk_load_relaxed(&next_round_ms) || !lock_try()) return;
    if (now >= hk_load_relaxed(&next_round_ms)) {
        hk_store_relaxed(&next_round_ms, now + LEARN_PERIOD_MS);
        round_locked(now);
    }
    unlock();
}

void hk_learn_stop(void) {
    lock_wait();
    if (running) {
        for (unsigned k = 0; k < HK_LEARN_NKNOBS; k++)
            if (owned[k] && hk_learn_value(k) == knobs[k].value[knobs[k].cur] &&
                origin[k] != knobs[k].value[knobs[k].cur])
                apply(k, origin[k]);
        running = false;
    }
    unlock();
}

/* ---- what the ctl leaves show ---- */

uint64_t hk_learn_knob_changes(unsigned knob) { return hk_load_relaxed(&knob_changes[knob]); }
bool hk_learn_frozen(void) { return hk_load_relaxed(&frozen); }
void hk_learn_set_frozen(bool on) { hk_store_relaxed(&frozen, on); }
uint64_t hk_learn_rounds(void) { return hk_load_relaxed(&nrounds); }
uint64_t hk_learn_changes(void) { return hk_load_relaxed(&nchanges); }

const char *hk_learn_scores(unsigned knob) {
    lock_wait();
    if (!ladders_built) build_ladders();
    hk_lr_format(&knobs[knob], div_of[knob], scores_text, sizeof scores_text);
    unlock();
    return scores_text;
}

/* The HAKMEM_CONF item that sets the knob as it is now, "" at the default. */
const char *hk_learn_conf(unsigned knob) {
    hk_options d = defaults();
    uint64_t v = hk_learn_value(knob);
    conf_text[0] = '\0';
    if (knob < HK_NCLASSES) {
        if (v != hk_tcache_max_default(knob))
            hk_fmt(conf_text, sizeof conf_text, "tcache_max:%u=%llu", knob, (unsigned long long)v);
    } else if (knob == HK_LEARN_BIGCACHE) {
        if (v != (uint64_t)d.bigcache_max_mb << 20)
            hk_fmt(conf_text, sizeof conf_text, "bigcache_max_mb:%llu", (unsigned long long)(v >> 20));
    } else if ((int64_t)v != d.decay_ms) {
        hk_fmt(conf_text, sizeof conf_text, "decay_ms:%lld", (long long)(int64_t)v);
    }
    return conf_text;
}
