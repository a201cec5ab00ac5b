/*
 * Options: HAKMEM_CONF="key:value,key:value" read once at start-up.  Parsing
 * never allocates and never fails the process: a bad key or value prints one
 * warning line on stderr and is ignored; later keys win.
 */
#include <stdlib.h>

#include "base/base.h"

hk_options hk_opt;

enum opt_kind { OPT_UNSIGNED, OPT_BOOL, OPT_SIZE, OPT_I64, OPT_MODE, OPT_STRING, OPT_CLASS };

typedef struct opt_row {
    const char *name;
    enum opt_kind kind;
    size_t offset;
    int64_t min, max;
} opt_row;

#define OPT(name, kind, field, lo, hi) \
    { name, kind, offsetof(hk_options, field), lo, hi }

static const opt_row opt_table[] = {
    OPT("mode", OPT_MODE, mode, 0, HK_MODE_COUNT - 1),
    OPT("tcache", OPT_BOOL, features[HK_FEAT_TCACHE], 0, 1),
    OPT("bigcache", OPT_BOOL, features[HK_FEAT_BIGCACHE], 0, 1),
    OPT("decay", OPT_BOOL, features[HK_FEAT_DECAY], 0, 1),
    OPT("stats_page", OPT_BOOL, features[HK_FEAT_STATS_PAGE], 0, 1),
    OPT("narenas", OPT_UNSIGNED, narenas, 1, HK_MAX_ARENAS),
    OPT("bigcache_max_mb", OPT_SIZE, bigcache_max_mb, 0, 1 << 20),
    OPT("decay_ms", OPT_I64, decay_ms, -1, INT64_C(1) << 40),
    OPT("thp", OPT_UNSIGNED, thp, 0, 1),
    OPT("stats_print", OPT_BOOL, stats_print, 0, 1),
    OPT("stats_print_opts", OPT_STRING, stats_print_opts, 0, 15),
    OPT("prof", OPT_BOOL, prof, 0, 1),
    OPT("prof_dump_at_exit", OPT_STRING, prof_dump_at_exit, 0, 255),
    OPT("prof_sample_bytes", OPT_SIZE, prof_sample_bytes, 1, INT64_C(1) << 40),
    OPT("stats_page_interval_ms", OPT_UNSIGNED, stats_page_interval_ms, 1, 3600000),
    OPT("stats_page_delay_ms", OPT_UNSIGNED, stats_page_delay_ms, 0, 3600000),
    OPT("background_thread", OPT_BOOL, background_thread, 0, 1),
    OPT("decay_thread", OPT_BOOL, decay_thread, 0, 1),
    OPT("learner", OPT_BOOL, features[HK_FEAT_LEARNER], 0, 1),
    OPT("debug_checks", OPT_BOOL, features[HK_FEAT_DEBUG_CHECKS], 0, 1),
    OPT("crash_report", OPT_BOOL, crash_report, 0, 1),
    OPT("abort_on_error", OPT_BOOL, abort_on_error, 0, 1),
    OPT("guard_sample", OPT_UNSIGNED, guard_sample, 0, 1000000),
    OPT("fail_mmap_after", OPT_I64, fail_mmap_after, 0, INT64_C(1) << 40),
    OPT("validate", OPT_UNSIGNED, validate, 0, 2),
    OPT("tcache_max", OPT_CLASS, tcache_max, 0, 1 << 20), /* CLASS=N, per class */
};

/* The presets (doc/DESIGN.md section 3.1). */
static const bool mode_features[HK_MODE_COUNT][HK_FEAT_COUNT] = {
    /*                 tcache bigcache decay stats_page learner debug_checks */
    [HK_MODE_MINIMAL] = {false, false, false, false, false, false},
    [HK_MODE_FAST] = {true, true, true, false, false, false},
    [HK_MODE_BALANCED] = {true, true, true, true, false, false},
    [HK_MODE_LEARNING] = {true, true, true, true, true, false},
    [HK_MODE_RESEARCH] = {true, true, true, true, true, true},
};

static const char *const mode_names[HK_MODE_COUNT] = {
    "minimal", "fast", "balanced", "learning", "research"};

static const char *const feature_names[HK_FEAT_COUNT] = {
    "tcache", "bigcache", "decay", "stats_page", "learner", "debug_checks"};

const char *hk_mode_name(unsigned mode) {
    return mode < HK_MODE_COUNT ? mode_names[mode] : "?";
}

const char *hk_feature_name(unsigned f) {
    return f < HK_FEAT_COUNT ? feature_names[f] : "?";
}

int hk_mode_parse(const char *s, size_t n) {
    for (unsigned m = 0; m < HK_MODE_COUNT; m++)
        if (strlen(mode_names[m]) == n && strncmp(mode_names[m], s, n) == 0) return (int)m;
    return -1;
}

const bool *hk_mode_preset(unsigned mode) { return mode_features[mode]; }

/* A preset sets the features and abort_on_error (on in research only, as
 * a sanitizer would: a checker that finds heap corruption stops there).
 * Like any key it takes effect where it appears: an abort_on_error key
 * after it (or HAKMEM_CONF after HAKMEM_MODE) overrides it, one before it
 * is overridden. */
static void set_mode(hk_options *o, unsigned mode) {
    o->mode = mode;
    memcpy(o->features, mode_features[mode], sizeof o->features);
    o->abort_on_error = mode == HK_MODE_RESEARCH;
}

void hk_conf_defaults(hk_options *o) {
    memset(o, 0, sizeof *o);
    set_mode(o, HK_MODE_BALANCED);
    o->narenas = 0; /* chosen at init from the CPU count */
    o->bigcache_max_mb = 64;
    o->decay_ms = 100;
    o->thp = 0;
    o->stats_print = false;
    o->stats_page_interval_ms = 100;
    o->stats_page_delay_ms = 1000;
    o->background_thread = false;
    o->decay_thread = true;
    o->crash_report = true;
    o->guard_sample = 64;
    o->fail_mmap_after = 0;
    o->validate = 1;
}

static bool parse_bool(const char *v, size_t n, int64_t *out) {
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (unsigned i = 0; i < 4; i++) {
        if (strlen(yes[i]) == n && strncmp(v, yes[i], n) == 0) {
            *out = 1;
            return true;
        }
        if (strlen(no[i]) == n && strncmp(v, no[i], n) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *v, size_t n, int64_t *out) {
    bool neg = false;
    size_t i = 0;
    int64_t x = 0;
    if (n > 0 && v[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n - i > 15) return false; /* keeps x far from overflow */
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = neg ? -x : x;
    return true;
}

static void store(hk_options *o, const opt_row *row, int64_t x) {
    char *field = (char *)o + row->offset;
    switch (row->kind) {
    case OPT_UNSIGNED: *(unsigned *)field = (unsigned)x; break;
    case OPT_BOOL: *(bool *)field = x != 0; break;
    case OPT_SIZE: *(size_t *)field = (size_t)x; break;
    case OPT_I64: *(int64_t *)field = x; break;
    case OPT_MODE: set_mode(o, (unsigned)x); break;
    case OPT_STRING: break;
    case OPT_CLASS: break;
    }
}

static void apply(hk_options *o, const char *key, size_t klen,
                  const char *val, size_t vlen) {
    for (size_t i = 0; i < sizeof opt_table / sizeof opt_table[0]; i++) {
        const opt_row *row = &opt_table[i];
        if (strlen(row->name) != klen || strncmp(row->name, key, klen) != 0)
            continue;
        int64_t x = 0, cls = 0;
        bool ok;
        if (row->kind == OPT_STRING) {
            ok = vlen <= (size_t)row->max;
            if (ok) {
                char *dst = (char *)o + row->offset;
                memcpy(dst, val, vlen);
                dst[vlen] = '\0';
            }
        } else if (row->kind == OPT_MODE) {
            x = hk_mode_parse(val, vlen);
            ok = x >= 0;
        } else if (row->kind == OPT_CLASS) { /* CLASS=N, CLASS the global class index */
            const char *eq = memchr(val, '=', vlen);
            ok = eq != NULL && parse_int(val, (size_t)(eq - val), &cls) && cls >= 0 &&
                 cls < HK_NCLASSES && parse_int(eq + 1, vlen - (size_t)(eq - val) - 1, &x);
        } else {
            ok = row->kind == OPT_BOOL ? parse_bool(val, vlen, &x) : parse_int(val, vlen, &x);
        }
        if (!ok || x < row->min || x > row->max) {
            hk_warn("HAKMEM_CONF: bad value '%.*s' for %s (ignored)",
                    (int)(vlen > 64 ? 64 : vlen), val, row->name);
            return;
        }
        if (row->kind == OPT_CLASS)
            ((uint32_t *)(void *)((char *)o + row->offset))[cls] = (uint32_t)x + 1;
        else
            store(o, row, x);
        return;
    }
    hk_warn("HAKMEM_CONF: unknown option '%.*s' (ignored)",
            (int)(klen > 64 ? 64 : klen), key);
}

/* HAKMEM_MODE=name picks the preset that HAKMEM_CONF then refines. */
void hk_conf_mode_env(hk_options *o, const char *mode) {
    if (mode == NULL || *mode == '\0') return;
    int m = hk_mode_parse(mode, strlen(mode));
    if (m < 0) hk_warn("HAKMEM_MODE: unknown mode '%.32s' (ignored)", mode);
    else set_mode(o, (unsigned)m);
}

void hk_conf_parse(hk_options *o, const char *conf) {
    if (conf == NULL) return;
    const char *s = conf;
    while (*s) {
        const char *end = strchr(s, ',');
        if (end == NULL) end = s + strlen(s);
        const char *colon = memchr(s, ':', (size_t)(end - s));
        if (end == s) {
            /* empty item: skip silently */
        } else if (colon == NULL) {
            hk_warn("HAKMEM_CONF: '%.*s' is not key:value (ignored)",
                    (int)((end - s) > 64 ? 64 : (end - s)), s);
        } else {
            apply(o, s, (size_t)(colon - s), colon + 1,
                  (size_t)(end - colon - 1));
        }
        s = *end ? end + 1 : end;
    }
}
