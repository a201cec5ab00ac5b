/*
 * The rows of the control namespace and their handlers.  Add a leaf by
 * adding one row (and a plain handler when none fits).  Names are stable
 * once released; doc strings are printed by `hakctl list`.
 */
#include "ctl/ctl.h"

#define R(fn) fn, NULL, NULL
#define RW(g, s) g, s, NULL
#define ACT(fn) NULL, NULL, fn

/* ---- index bounds ---- */

static const unsigned tier_first[3] = {0, HK_TINY_NCLASSES, HK_TINY_NCLASSES + HK_MID_NCLASSES};
static const unsigned tier_count[3] = {HK_TINY_NCLASSES, HK_MID_NCLASSES, HK_LARGE_NCLASSES};

static size_t lim_class(const size_t *v, size_t pos) { return tier_count[v[0]]; }
static size_t lim_arena(const size_t *v, size_t pos) { return hk_opt.narenas; }

static unsigned class_of(const size_t *v) { return tier_first[v[0]] + (unsigned)v[1]; }

/* ---- general ---- */

static int get_version(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = HAKMEM_VERSION; return 0; }

static _Atomic uint64_t epoch = 1;
static int get_epoch(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_load_relaxed(&epoch); return 0; }
static int set_epoch(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_fetch_add_relaxed(&epoch, 1);
    return 0;
}

static int get_config_debug(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_config_debug; return 0; }
static int get_config_stats(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_config_stats; return 0; }
static int get_config_prefix(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = HK_MALLOC_PREFIX_STR; return 0; }

/* ---- options as parsed at start-up ---- */

static int get_opt_narenas(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.narenas; return 0; }
static int get_opt_feature(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->b = hk_opt.features[row->arg];
    return 0;
}
static int get_opt_mode(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = hk_mode_name(hk_opt.mode); return 0; }
static int get_opt_sp_interval(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.stats_page_interval_ms; return 0; }
static int get_opt_sp_delay(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.stats_page_delay_ms; return 0; }
static int get_opt_bg(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_opt.background_thread; return 0; }
static int get_opt_decay_thread(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_opt.decay_thread; return 0; }
static int get_opt_crash(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_opt.crash_report; return 0; }
static int get_opt_abort(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_opt.abort_on_error; return 0; }
static int get_opt_guard(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.guard_sample; return 0; }
static int get_opt_print_opts(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = hk_opt.stats_print_opts; return 0; }

/* ---- modes and features ---- */

static int get_mode(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->s = hk_mode_name(hk_load_relaxed(&hk_mode_now));
    return 0;
}
static int set_mode(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    if (in->s == NULL) return EINVAL;
    int m = hk_mode_parse(in->s, strnlen(in->s, 32));
    return m < 0 ? EINVAL : hk_mode_set((unsigned)m);
}
static int get_feature(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->b = hk_feature_on((enum hk_feature)row->arg);
    return 0;
}
static int set_feature(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_feature_set((enum hk_feature)row->arg, in->b);
    return 0;
}
static int get_opt_bigcache(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_opt.bigcache_max_mb; return 0; }
static int get_opt_decay(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->i64 = hk_opt.decay_ms; return 0; }
static int get_opt_thp(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.thp; return 0; }
static int get_opt_stats_print(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_opt.stats_print; return 0; }

/* ---- size classes ---- */

static int get_nclasses(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = tier_count[v[0]]; return 0; }
static int get_class_size(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_class_size[class_of(v)]; return 0; }

/* A bulk reader (the stats page refresh) merges once for all leaves. */
static _Thread_local hk_class_totals *bulk_totals;
static _Thread_local hk_class_totals bulk_buf[HK_NCLASSES];

void hk_ctl_bulk_begin(void) {
    hk_stats_class_totals(bulk_buf);
    bulk_totals = bulk_buf;
}

void hk_ctl_bulk_end(void) { bulk_totals = NULL; }

static void class_stats(unsigned c, struct hak_class_stats *s) {
    hk_class_totals own[HK_NCLASSES], *t = bulk_totals;
    if (t == NULL) {
        hk_stats_class_totals(own);
        t = own;
    }
    hk_stats_class_view(c, &t[c], s);
}

static int get_class_stats(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    class_stats(class_of(v), &o->cs);
    return 0;
}

/* row->arg: offsetof(struct hak_class_stats, field) */
static int get_class_stat_field(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    struct hak_class_stats s;
    class_stats(class_of(v), &s);
    memcpy(&o->u64, (const char *)&s + row->arg, sizeof(uint64_t));
    return 0;
}

static int get_tcache_max(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u = hk_tcache_max_get(class_of(v));
    return 0;
}
static int set_tcache_max(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_tcache_max_set(class_of(v), in->u);
    return 0;
}

/* ---- huge ---- */

static hk_huge_stats huge_now(void) {
    hk_huge_stats s;
    hk_huge_get_stats(&s);
    return s;
}
static int get_huge_nmalloc(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = huge_now().nmalloc; return 0; }
static int get_huge_ndalloc(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = huge_now().ndalloc; return 0; }
static int get_huge_nmmap(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = huge_now().nmmap; return 0; }
static int get_huge_cur(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = huge_now().cur_bytes; return 0; }
static int get_bc_max(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = huge_now().cache_max; return 0; }
static int set_bc_max(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_bigcache_set_max(in->z);
    hk_bigcache_purge_over();
    return 0;
}
static int get_bc_bytes(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = huge_now().cache_bytes; return 0; }
static int get_bc_hits(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = huge_now().hits; return 0; }
static int get_bc_misses(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = huge_now().misses; return 0; }

static hk_decay_stats decay_now(void) {
    hk_decay_stats s;
    hk_decay_get_stats(&s);
    return s;
}
static int get_dt_running(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = decay_now().running; return 0; }
static int get_dt_wakeups(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = decay_now().nwakeups; return 0; }
static int get_dt_purges(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = decay_now().npurges; return 0; }

/* ---- global statistics ---- */

static int get_st_allocated(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_stats_allocated(); return 0; }
static int get_st_active(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_stats_active(); return 0; }
static int get_st_metadata(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_stats_metadata(); return 0; }
static int get_st_resident(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_os_resident(); return 0; }
static int get_st_mapped(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_stats_mapped(); return 0; }
static int get_st_retained(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = 0; return 0; }

/* ---- arenas ---- */

static int get_narenas(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_opt.narenas; return 0; }
static int act_arena_purge(const hk_ctl_row *row, const size_t *v) {
    hk_arena *a = &hk_arenas[v[0]];
    hk_lock(&a->shared_lock);
    if (a->shared_heap != NULL) hk_heap_flush(a->shared_heap);
    if (a->debug_heap != NULL) hk_heap_flush(a->debug_heap);
    hk_unlock(&a->shared_lock);
    if (v[0] == 0) hk_debug_flush_pooled();
    hk_arena_purge(a, true);
    if (v[0] == 0) hk_bigcache_purge();
    return 0;
}
static int get_arena_decay(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->i64 = hk_load_relaxed(&hk_arenas[v[0]].decay_ms);
    return 0;
}
static int set_arena_decay(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    if (in->i64 < -1) return EINVAL;
    hk_store_relaxed(&hk_arenas[v[0]].decay_ms, in->i64);
    return 0;
}
static int get_arena_nthreads(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u = hk_load_relaxed(&hk_arenas[v[0]].nthreads);
    return 0;
}
static int get_arena_mapped(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->z = hk_load_relaxed(&hk_arenas[v[0]].mapped);
    return 0;
}

/* ---- the stats page (statspage/, through hk_statspage_rows) ---- */

static int get_sp_path(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = hk_statspage_rows.path(); return 0; }
static int get_sp_interval(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = hk_statspage_rows.interval(); return 0; }
static int set_sp_interval(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) { return hk_statspage_rows.set_interval(in->u); }
static int get_sp_refreshes(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_statspage_rows.refreshes(); return 0; }
static int get_sp_commands(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_statspage_rows.commands(); return 0; }
static int get_sp_bg(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_statspage_rows.bg_running(); return 0; }
static int act_sp_refresh(const hk_ctl_row *row, const size_t *v) { return hk_statspage_rows.refresh_now(); }

/* ---- the calling thread ---- */

static int act_tcache_flush(const hk_ctl_row *row, const size_t *v) {
    hk_heap *h = hk_thread_real_heap();
    if (h != NULL) hk_heap_flush(h);
    return 0;
}
static int get_thread_arena(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u = hk_thread_arena()->index;
    return 0;
}
static int set_thread_arena(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    if (in->u >= hk_opt.narenas) return EINVAL;
    hk_thread_set_arena(in->u);
    return 0;
}
static int get_thread_allocated(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u64 = hk_thread_bytes(true);
    return 0;
}
static int get_thread_deallocated(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u64 = hk_thread_bytes(false);
    return 0;
}
static int get_tcache_enabled(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->b = hk_thread_tcache_enabled();
    return 0;
}
static int set_tcache_enabled(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_thread_set_tcache(in->b);
    if (!in->b) hk_thread_detach_heap();
    return 0;
}

/* ---- debug checks ---- */

static size_t lim_event(const size_t *v, size_t pos) { return HK_DEBUG_EVENTS; }
static int get_debug_reports(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u64 = hk_load_relaxed(&hk_nreports);
    return 0;
}
/* row->arg: HK_VALID_PAGE .. HK_VALID_HUGE */
static int get_validated(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u64 = hk_load_relaxed(&hk_nvalidated[row->arg]);
    return 0;
}
static int get_events_count(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    o->u64 = hk_debug_nevents();
    return 0;
}
/* row->arg: 0 what, 1 ptr, 2 size, 3 class, 4 thread */
static int get_event_field(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    hk_debug_event_view e;
    hk_debug_event((unsigned)v[0], &e);
    switch (row->arg) {
    case 0: o->s = e.what; break;
    case 1: o->u64 = e.ptr; break;
    case 2: o->u64 = e.size; break;
    case 3: o->u = e.cls; break;
    default: o->u64 = e.tid; break;
    }
    return 0;
}

/* ---- the learner (learn.c) ---- */

static size_t lim_learn_class(const size_t *v, size_t pos) { return HK_NCLASSES; }
/* row->arg: the knob; HK_LEARN_NKNOBS: the class in the name */
static unsigned knob_of(const hk_ctl_row *row, const size_t *v) {
    return row->arg == HK_LEARN_NKNOBS ? (unsigned)v[0] : (unsigned)row->arg;
}
static int get_learn_freeze(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_learn_frozen(); return 0; }
static int set_learn_freeze(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    hk_learn_set_frozen(in->b);
    return 0;
}
static int get_learn_nrounds(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_learn_rounds(); return 0; }
static int get_learn_nchanges(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_learn_changes(); return 0; }
static int get_learn_tcache(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u = (unsigned)hk_learn_value(knob_of(row, v)); return 0; }
static int get_learn_bigcache(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = (size_t)hk_learn_value(HK_LEARN_BIGCACHE); return 0; }
static int get_learn_decay(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->i64 = (int64_t)hk_learn_value(HK_LEARN_DECAY); return 0; }
static int get_learn_knob_nchanges(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->u64 = hk_learn_knob_changes(knob_of(row, v)); return 0; }
static int get_learn_scores(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = hk_learn_scores(knob_of(row, v)); return 0; }
static int get_learn_conf(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->s = hk_learn_conf(knob_of(row, v)); return 0; }

/* ---- the heap profiler (prof/, core/sample.c) ---- */

static int get_prof_active(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->b = hk_sample_active(); return 0; }
static int set_prof_active(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) { return hk_prof_set_active(in->b); }
static int get_prof_period(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) { o->z = hk_sample_period_get(); return 0; }
static int set_prof_period(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) { return hk_prof_set_period(in->z); }
static int act_prof_reset(const hk_ctl_row *row, const size_t *v) {
    hk_prof_reset();
    return 0;
}
/* row->arg: enum hk_prof_format.  Reads give the last path written, copied
 * into a buffer of the calling thread (another thread may be writing one
 * meanwhile: the stats page reads these leaves); "" writes nothing (so a
 * read value written back is no new dump). */
static _Thread_local char prof_dump_read[256];
static int get_prof_dump(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    hk_prof_last_dump((enum hk_prof_format)row->arg, prof_dump_read, sizeof prof_dump_read);
    o->s = prof_dump_read;
    return 0;
}
static int set_prof_dump(const hk_ctl_row *row, const size_t *v, const hk_ctl_value *in) {
    if (in->s == NULL) return EINVAL;
    if (in->s[0] == '\0') return 0;
    return hk_prof_dump(in->s, (enum hk_prof_format)row->arg);
}
/* row->arg: 0 samples, 1 live samples, 2 stacks, 3 dropped */
static int get_prof_stat(const hk_ctl_row *row, const size_t *v, hk_ctl_value *o) {
    hk_prof_stats st;
    hk_prof_get_stats(&st);
    const uint64_t all[4] = {st.samples, st.live_samples, st.stacks, st.dropped};
    o->u64 = all[row->arg];
    return 0;
}

const hk_ctl_row hk_ctl_rows[] = {
    {"version", HAK_CTL_STRING, R(get_version), NULL, "library version"},
    {"epoch", HAK_CTL_U64, RW(get_epoch, set_epoch), NULL, "write to refresh the statistics snapshot"},
    {"config.debug", HAK_CTL_BOOL, R(get_config_debug), NULL, "built with --enable-debug"},
    {"config.stats", HAK_CTL_BOOL, R(get_config_stats), NULL, "statistics compiled in"},
    {"config.malloc_prefix", HAK_CTL_STRING, R(get_config_prefix), NULL, "prefix of the standard names"},
    {"config.mode", HAK_CTL_STRING, RW(get_mode, set_mode), NULL, "minimal|fast|balanced|learning|research"},
    {"config.features.tcache", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "per-thread heaps (off: arena's locked heap)", HK_FEAT_TCACHE},
    {"config.features.bigcache", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "reuse freed huge mappings", HK_FEAT_BIGCACHE},
    {"config.features.decay", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "purge free pages after decay_ms (off: never)", HK_FEAT_DECAY},
    {"config.features.stats_page", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "publish the shared-memory stats page", HK_FEAT_STATS_PAGE},
    {"config.features.learner", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "adaptive tuning of tcache_max, BigCache size and decay (learn.*)", HK_FEAT_LEARNER},
    {"config.features.debug_checks", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "double-free detection, junk fill, canaries, sampled guard pages", HK_FEAT_DEBUG_CHECKS},
    {"opt.mode", HAK_CTL_STRING, R(get_opt_mode), NULL, "mode at start-up"},
    {"opt.narenas", HAK_CTL_UNSIGNED, R(get_opt_narenas), NULL, "arenas"},
    {"opt.tcache", HAK_CTL_BOOL, R(get_opt_feature), NULL, "per-thread heaps at start-up", HK_FEAT_TCACHE},
    {"opt.bigcache", HAK_CTL_BOOL, R(get_opt_feature), NULL, "BigCache at start-up", HK_FEAT_BIGCACHE},
    {"opt.decay", HAK_CTL_BOOL, R(get_opt_feature), NULL, "decay purging at start-up", HK_FEAT_DECAY},
    {"opt.stats_page", HAK_CTL_BOOL, R(get_opt_feature), NULL, "stats page at start-up", HK_FEAT_STATS_PAGE},
    {"opt.learner", HAK_CTL_BOOL, R(get_opt_feature), NULL, "learner at start-up", HK_FEAT_LEARNER},
    {"opt.debug_checks", HAK_CTL_BOOL, R(get_opt_feature), NULL, "debug checks at start-up", HK_FEAT_DEBUG_CHECKS},
    {"opt.crash_report", HAK_CTL_BOOL, R(get_opt_crash), NULL, "crash report on SIGSEGV/SIGBUS/SIGABRT"},
    {"opt.abort_on_error", HAK_CTL_BOOL, R(get_opt_abort), NULL, "abort on a detected misuse"},
    {"opt.guard_sample", HAK_CTL_UNSIGNED, R(get_opt_guard), NULL, "debug checks: 1 in N small blocks gets a guard page (0 none)"},
    {"opt.stats_page_interval_ms", HAK_CTL_UNSIGNED, R(get_opt_sp_interval), NULL, "stats page refresh interval at start-up"},
    {"opt.stats_page_delay_ms", HAK_CTL_UNSIGNED, R(get_opt_sp_delay), NULL, "age before the stats page is created"},
    {"opt.background_thread", HAK_CTL_BOOL, R(get_opt_bg), NULL, "a thread keeps the stats page fresh"},
    {"opt.decay_thread", HAK_CTL_BOOL, R(get_opt_decay_thread), NULL, "a thread purges aged memory in a quiet process"},
    {"opt.stats_print_opts", HAK_CTL_STRING, R(get_opt_print_opts), NULL, "options of the exit report"},
    {"opt.bigcache_max_mb", HAK_CTL_SIZE, R(get_opt_bigcache), NULL, "BigCache capacity at start-up (MiB)"},
    {"opt.decay_ms", HAK_CTL_I64, R(get_opt_decay), NULL, "purge delay of free pages (-1 never)"},
    {"opt.thp", HAK_CTL_UNSIGNED, R(get_opt_thp), NULL, "1: MADV_HUGEPAGE on huge blocks"},
    {"opt.stats_print", HAK_CTL_BOOL, R(get_opt_stats_print), NULL, "print statistics at exit"},
    {"<tier>.nclasses", HAK_CTL_UNSIGNED, R(get_nclasses), NULL, "size classes of the tier"},
    {"<tier>.class.<i>.size", HAK_CTL_SIZE, R(get_class_size), lim_class, "block size"},
    {"<tier>.class.<i>.tcache_max", HAK_CTL_UNSIGNED, RW(get_tcache_max, set_tcache_max), lim_class, "free blocks a thread keeps in empty pages of the class"},
    {"<tier>.class.<i>.stats", HAK_CTL_CLASS_STATS, R(get_class_stats), lim_class, "struct hak_class_stats"},
#define HK_STATS_LEAF_constant(...)
#define HK_STATS_LEAF_counter(...) __VA_ARGS__
#define HK_STATS_LEAF_derived(...) __VA_ARGS__
#define HK_STATS_LEAF_gauge(...) __VA_ARGS__
#define HK_STATS_ROW_(name, kind, doc) HK_STATS_LEAF_##kind( \
    {"<tier>.class.<i>.stats." #name, HAK_CTL_U64, R(get_class_stat_field), lim_class, doc, \
     offsetof(struct hak_class_stats, name)},)
    HAK_CLASS_STATS_FIELDS(HK_STATS_ROW_)
#undef HK_STATS_ROW_
    {"huge.stats.nmalloc", HAK_CTL_U64, R(get_huge_nmalloc), NULL, "huge allocations"},
    {"huge.stats.ndalloc", HAK_CTL_U64, R(get_huge_ndalloc), NULL, "huge deallocations"},
    {"huge.stats.nmmap", HAK_CTL_U64, R(get_huge_nmmap), NULL, "mappings made for huge blocks"},
    {"huge.stats.curbytes", HAK_CTL_SIZE, R(get_huge_cur), NULL, "bytes mapped for live huge blocks"},
    {"huge.bigcache.max_bytes", HAK_CTL_SIZE, RW(get_bc_max, set_bc_max), NULL, "BigCache capacity"},
    {"huge.bigcache.bytes", HAK_CTL_SIZE, R(get_bc_bytes), NULL, "bytes parked in the BigCache"},
    {"huge.bigcache.hits", HAK_CTL_U64, R(get_bc_hits), NULL, "huge allocations served from the cache"},
    {"huge.bigcache.misses", HAK_CTL_U64, R(get_bc_misses), NULL, "huge allocations that mapped"},
    {"stats.allocated", HAK_CTL_SIZE, R(get_st_allocated), NULL, "bytes in live blocks (class sizes)"},
    {"stats.active", HAK_CTL_SIZE, R(get_st_active), NULL, "bytes of pages holding live blocks"},
    {"stats.metadata", HAK_CTL_SIZE, R(get_st_metadata), NULL, "bytes of allocator metadata"},
    {"stats.resident", HAK_CTL_SIZE, R(get_st_resident), NULL, "resident bytes of the process (measured)"},
    {"stats.mapped", HAK_CTL_SIZE, R(get_st_mapped), NULL, "bytes mapped by the allocator"},
    {"stats.retained", HAK_CTL_SIZE, R(get_st_retained), NULL, "bytes unmapped-but-reserved (always 0)"},
    {"arenas.narenas", HAK_CTL_UNSIGNED, R(get_narenas), NULL, "arenas"},
    {"arena.<i>.purge", HAK_CTL_VOID, ACT(act_arena_purge), lim_arena, "return all free memory now"},
    {"arena.<i>.decay_ms", HAK_CTL_I64, RW(get_arena_decay, set_arena_decay), lim_arena, "purge delay (-1 never)"},
    {"arena.<i>.nthreads", HAK_CTL_UNSIGNED, R(get_arena_nthreads), lim_arena, "threads bound"},
    {"arena.<i>.stats.mapped", HAK_CTL_SIZE, R(get_arena_mapped), lim_arena, "bytes of segments"},
    {"arenas.decay_thread.running", HAK_CTL_BOOL, R(get_dt_running), NULL, "the decay thread exists (started once free memory waits for the decay time)"},
    {"arenas.decay_thread.wakeups", HAK_CTL_U64, R(get_dt_wakeups), NULL, "times memory handed back woke it from idle"},
    {"arenas.decay_thread.purges", HAK_CTL_U64, R(get_dt_purges), NULL, "its purge passes"},
    {"stats_page.enabled", HAK_CTL_BOOL, RW(get_feature, set_feature), NULL, "publish the shared-memory stats page (= config.features.stats_page)", HK_FEAT_STATS_PAGE},
    {"stats_page.path", HAK_CTL_STRING, R(get_sp_path), NULL, "the page's file, /dev/shm/hakmem.<uid>.<pid> (empty while there is none)"},
    {"stats_page.interval_ms", HAK_CTL_UNSIGNED, RW(get_sp_interval, set_sp_interval), NULL, "refresh the page at most this often (1..3600000)"},
    {"stats_page.refreshes", HAK_CTL_U64, R(get_sp_refreshes), NULL, "page refreshes"},
    {"stats_page.commands", HAK_CTL_U64, R(get_sp_commands), NULL, "commands (hakctl set) applied"},
    {"stats_page.background_thread", HAK_CTL_BOOL, R(get_sp_bg), NULL, "a background thread keeps the page fresh"},
    {"stats_page.refresh", HAK_CTL_VOID, ACT(act_sp_refresh), NULL, "refresh the page now, creating it if its delay has not passed (EPERM when off)"},
    {"debug.reports", HAK_CTL_U64, R(get_debug_reports), NULL, "misuses detected and reported (bad free, double free, overrun, corrupted list)"},
    {"debug.validated.page", HAK_CTL_U64, R(get_validated), NULL, "page validity checks run (debug builds)", HK_VALID_PAGE},
    {"debug.validated.heap", HAK_CTL_U64, R(get_validated), NULL, "heap validity checks run (debug builds)", HK_VALID_HEAP},
    {"debug.validated.segment", HAK_CTL_U64, R(get_validated), NULL, "segment validity checks run (debug builds)", HK_VALID_SEGMENT},
    {"debug.validated.huge", HAK_CTL_U64, R(get_validated), NULL, "huge block header checks run (debug builds)", HK_VALID_HUGE},
    {"debug.events.count", HAK_CTL_U64, R(get_events_count), NULL, "events recorded so far (debug checks: allocations, frees; always: reports)"},
    {"debug.events.<i>.what", HAK_CTL_STRING, R(get_event_field), lim_event, "event i back from the newest: alloc, free or the report", 0},
    {"debug.events.<i>.ptr", HAK_CTL_U64, R(get_event_field), lim_event, "its pointer", 1},
    {"debug.events.<i>.size", HAK_CTL_U64, R(get_event_field), lim_event, "requested size (0 for reports)", 2},
    {"debug.events.<i>.class", HAK_CTL_UNSIGNED, R(get_event_field), lim_event, "size class", 3},
    {"debug.events.<i>.thread", HAK_CTL_U64, R(get_event_field), lim_event, "thread id", 4},
    {"thread.tcache.flush", HAK_CTL_VOID, ACT(act_tcache_flush), NULL, "hand empty pages back"},
    {"thread.arena", HAK_CTL_UNSIGNED, RW(get_thread_arena, set_thread_arena), NULL, "arena of the calling thread (write: move it)"},
    {"thread.allocated", HAK_CTL_U64, R(get_thread_allocated), NULL, "bytes allocated by the calling thread's heap (class sizes)"},
    {"thread.deallocated", HAK_CTL_U64, R(get_thread_deallocated), NULL, "bytes freed by the calling thread (class sizes)"},
    {"thread.tcache.enabled", HAK_CTL_BOOL, RW(get_tcache_enabled, set_tcache_enabled), NULL, "the calling thread's own heap"},
    {"learn.freeze", HAK_CTL_BOOL, RW(get_learn_freeze, set_learn_freeze), NULL, "pin the learner's choices (it keeps measuring)"},
    {"learn.nrounds", HAK_CTL_U64, R(get_learn_nrounds), NULL, "learner rounds run"},
    {"learn.nchanges", HAK_CTL_U64, R(get_learn_nchanges), NULL, "settings changed by the learner, all knobs"},
    {"learn.tcache.<i>.value", HAK_CTL_UNSIGNED, R(get_learn_tcache), lim_learn_class, "tcache_max in force for class i (0..60, all tiers)", HK_LEARN_NKNOBS},
    {"learn.tcache.<i>.nchanges", HAK_CTL_U64, R(get_learn_knob_nchanges), lim_learn_class, "changes the learner made to it", HK_LEARN_NKNOBS},
    {"learn.tcache.<i>.scores", HAK_CTL_STRING, R(get_learn_scores), lim_learn_class, "candidates in pages:cost in ns per allocation ('-' unknown, '*' in force)", HK_LEARN_NKNOBS},
    {"learn.tcache.<i>.conf", HAK_CTL_STRING, R(get_learn_conf), lim_learn_class, "HAKMEM_CONF item for it (empty at the default)", HK_LEARN_NKNOBS},
    {"learn.bigcache.value", HAK_CTL_SIZE, R(get_learn_bigcache), NULL, "BigCache capacity in force (bytes)"},
    {"learn.bigcache.nchanges", HAK_CTL_U64, R(get_learn_knob_nchanges), NULL, "changes the learner made to it", HK_LEARN_BIGCACHE},
    {"learn.bigcache.scores", HAK_CTL_STRING, R(get_learn_scores), NULL, "candidates in MiB:cost in ns per huge allocation", HK_LEARN_BIGCACHE},
    {"learn.bigcache.conf", HAK_CTL_STRING, R(get_learn_conf), NULL, "HAKMEM_CONF item for it (empty at the default)", HK_LEARN_BIGCACHE},
    {"learn.decay.value", HAK_CTL_I64, R(get_learn_decay), NULL, "decay_ms in force (arena 0)"},
    {"learn.decay.nchanges", HAK_CTL_U64, R(get_learn_knob_nchanges), NULL, "changes the learner made to it", HK_LEARN_DECAY},
    {"learn.decay.scores", HAK_CTL_STRING, R(get_learn_scores), NULL, "candidates in ms:cost in ns per page allocation", HK_LEARN_DECAY},
    {"learn.decay.conf", HAK_CTL_STRING, R(get_learn_conf), NULL, "HAKMEM_CONF item for it (empty at the default)", HK_LEARN_DECAY},
    {"prof.active", HAK_CTL_BOOL, RW(get_prof_active, set_prof_active), NULL, "heap profiling: sample allocations and record their stacks"},
    {"prof.sample_bytes", HAK_CTL_SIZE, RW(get_prof_period, set_prof_period), NULL, "mean bytes allocated between two samples (1..2^40)"},
    {"prof.reset", HAK_CTL_VOID, ACT(act_prof_reset), NULL, "drop every record (live and allocation views)"},
    {"prof.dump", HAK_CTL_STRING, RW(get_prof_dump, set_prof_dump), NULL, "write the profile (heap_v2 text, jeprof/pprof) to the path written, mode 0600", HK_PROF_PPROF},
    {"prof.dump_folded", HAK_CTL_STRING, RW(get_prof_dump, set_prof_dump), NULL, "write the live view as folded stacks with estimated bytes to the path written", HK_PROF_FOLDED},
    {"prof.dump_folded_alloc", HAK_CTL_STRING, RW(get_prof_dump, set_prof_dump), NULL, "write the allocation view as folded stacks to the path written", HK_PROF_FOLDED_ALLOC},
    {"prof.stats.samples", HAK_CTL_U64, R(get_prof_stat), NULL, "samples recorded since start or reset", 0},
    {"prof.stats.live_samples", HAK_CTL_U64, R(get_prof_stat), NULL, "sampled blocks still allocated", 1},
    {"prof.stats.stacks", HAK_CTL_U64, R(get_prof_stat), NULL, "distinct stacks recorded", 2},
    {"prof.stats.dropped", HAK_CTL_U64, R(get_prof_stat), NULL, "samples not recorded: a table was full", 3},
};

const size_t hk_ctl_nrows = sizeof hk_ctl_rows / sizeof hk_ctl_rows[0];
