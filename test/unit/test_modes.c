/* Modes and features: every feature flag is consulted where it matters.
 *
 *   tcache   - HAKMEM_MODE=minimal (or the flag turned off at runtime) sends
 *              every allocation through the arena's shared heap, so
 *              tcache_hits stays 0 while nmalloc grows; with it on (the
 *              default balanced mode) most allocations are fast-path hits.
 *   bigcache - off: a freed 4 MiB block is unmapped and the next one maps
 *              again; on: the next one is a BigCache hit on the same mapping.
 *   decay    - off: freed, flushed pages stay resident however long the
 *              process keeps doing slow-path work; on: they are purged
 *              without an explicit arena purge.
 * config.mode reads back what was written, rejects unknown names and applies
 * the preset table; <tier>.class.<i>.tcache_max reads back and, at 0, makes
 * a heap hand every emptied page but its current one back to the arena.
 *
 * Start-up modes are tested in children: this binary re-executes itself
 * (/proc/self/exe) with HAKMEM_MODE / HAKMEM_CONF set and argv[1] naming a
 * role; a constructor runs the role and exits before the tests start. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static const char *const mode_names[5] = {"minimal", "fast", "balanced", "learning",
                                          "research"};
static const char *const feature_names[4] = {"tcache", "bigcache", "decay", "stats_page"};
/* The preset table of the design: tcache bigcache decay stats_page. */
static const bool presets[5][4] = {
    {false, false, false, false}, /* minimal */
    {true, true, true, false},    /* fast */
    {true, true, true, true},     /* balanced */
    {true, true, true, true},     /* learning */
    {true, true, true, true},     /* research */
};

/* ---------------- small helpers (no allocation) ---------------- */

static int rd(const char *name, void *v, size_t len) {
    size_t l = len;
    int rc = hak_ctl(name, v, &l, NULL, 0);
    if (rc == 0 && l != len) return -1;
    return rc;
}

static int wr(const char *name, const void *v, size_t len) {
    return hak_ctl(name, NULL, NULL, (void *)v, len);
}

static int act(const char *name) { return hak_ctl(name, NULL, NULL, NULL, 0); }

static int rd_mode(const char *name, const char **s) { return rd(name, s, sizeof *s); }

static int wr_mode(const char *m) { return wr("config.mode", &m, sizeof m); }

static int rd_feature(unsigned f, bool *b) {
    char name[64];
    snprintf(name, sizeof name, "config.features.%s", feature_names[f]);
    return rd(name, b, sizeof *b);
}

static int wr_feature(unsigned f, bool b) {
    char name[64];
    snprintf(name, sizeof name, "config.features.%s", feature_names[f]);
    return wr(name, &b, sizeof b);
}

/* tier (0 tiny, 1 mid, 2 large) and index of the class of exactly `size`
 * bytes; false when there is none. */
static const char *const tiers[3] = {"tiny", "mid", "large"};
static bool find_class(size_t size, unsigned *tier, unsigned *idx) {
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = 0;
        char name[64];
        snprintf(name, sizeof name, "%s.nclasses", tiers[t]);
        if (rd(name, &n, sizeof n) != 0) return false;
        for (unsigned i = 0; i < n; i++) {
            size_t s = 0;
            snprintf(name, sizeof name, "%s.class.%u.size", tiers[t], i);
            if (rd(name, &s, sizeof s) != 0) return false;
            if (s == size) {
                *tier = t;
                *idx = i;
                return true;
            }
        }
    }
    return false;
}

static int class_stats(unsigned tier, unsigned idx, struct hak_class_stats *st) {
    char name[64];
    snprintf(name, sizeof name, "%s.class.%u.stats", tiers[tier], idx);
    return rd(name, st, sizeof *st);
}

static unsigned narenas(void) {
    unsigned n = 0;
    if (rd("arenas.narenas", &n, sizeof n) != 0) return 0;
    return n;
}

/* ---------------- the child side ---------------- */

/* Allocates 20 rounds of 1000 48-byte blocks (tiny class 3), freeing each
 * round; prints the class's nmalloc and tcache_hits deltas, tcache_hits
 * summed over every class, the mode and the features. */
static int child_small(void) {
    static void *blk[1000];
    struct hak_class_stats s0, s1;
    char line[256];
    if (class_stats(0, 3, &s0) != 0) return 2;
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < 1000; i++) {
            blk[i] = hak_malloc(48);
            if (blk[i] == NULL) return 3;
            memset(blk[i], r, 48);
        }
        for (int i = 0; i < 1000; i++) hak_free(blk[i]);
    }
    if (class_stats(0, 3, &s1) != 0) return 4;
    uint64_t allhits = 0;
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = 0;
        char name[64];
        snprintf(name, sizeof name, "%s.nclasses", tiers[t]);
        if (rd(name, &n, sizeof n) != 0) return 5;
        for (unsigned i = 0; i < n; i++) {
            struct hak_class_stats st;
            if (class_stats(t, i, &st) != 0) return 6;
            allhits += st.tcache_hits;
        }
    }
    const char *mode = "?", *omode = "?";
    if (rd_mode("config.mode", &mode) != 0 || rd_mode("opt.mode", &omode) != 0) return 7;
    char feat[5] = "????", ofeat[5] = "????";
    for (unsigned f = 0; f < 4; f++) {
        bool b = false, ob = false;
        char name[64];
        if (rd_feature(f, &b) != 0) return 8;
        snprintf(name, sizeof name, "opt.%s", feature_names[f]);
        if (rd(name, &ob, sizeof ob) != 0) return 9;
        feat[f] = b ? '1' : '0';
        ofeat[f] = ob ? '1' : '0';
    }
    snprintf(line, sizeof line,
             "nmalloc=%llu\nhits=%llu\nallhits=%llu\nmode=%s\nopt.mode=%s\nfeatures=%s\n"
             "opt.features=%s\n",
             (unsigned long long)(s1.nmalloc - s0.nmalloc),
             (unsigned long long)(s1.tcache_hits - s0.tcache_hits),
             (unsigned long long)allhits, mode, omode, feat, ofeat);
    hk_test_out(line);
    return 0;
}

__attribute__((constructor)) static void child_dispatch(void) {
    const char *role = hk_test_role();
    if (role && strcmp(role, "--child-small") == 0) exit(child_small());
}

/* ---------------- the parent side ---------------- */

/* Runs this binary as `role` with HAKMEM_MODE and HAKMEM_CONF set (unset
 * when NULL). */
static int run_child(const char *role, const char *mode, const char *conf, struct hk_test_child *c) {
    return hk_test_run_self(c, role, "HAKMEM_MODE", mode, "HAKMEM_CONF", conf, (char *)NULL);
}

static unsigned long long get_ull(const struct hk_test_child *c, const char *name) {
    char v[64];
    if (!hk_test_child_value(c, name, v, sizeof v)) return ~0ull;
    return strtoull(v, NULL, 10);
}

/* Runs the small-block child; on success *c holds its report. */
static bool run_small(const char *mode, const char *conf, struct hk_test_child *c) {
    if (run_child("--child-small", mode, conf, c) != 0) {
        hk_test_fail(__FILE__, __LINE__, "could not run the child");
        return false;
    }
    if (!hk_test_exited_ok(c)) {
        hk_test_fail(__FILE__, __LINE__,
                     "HAKMEM_MODE=%s HAKMEM_CONF=%s: child status %#x; stderr: %.300s",
                     mode ? mode : "(unset)", conf ? conf : "(unset)", (unsigned)c->status,
                     c->err);
        return false;
    }
    return true;
}

static void expect_child_value(const struct hk_test_child *c, const char *what, const char *name,
                               const char *want) {
    char v[64];
    if (!hk_test_child_value(c, name, v, sizeof v))
        hk_test_fail(__FILE__, __LINE__, "%s: child printed no %s: %.200s", what, name, c->out);
    else if (strcmp(v, want) != 0)
        hk_test_fail(__FILE__, __LINE__, "%s: %s is %s, want %s", what, name, v, want);
}

static void preset_string(unsigned m, char out4[5]) {
    for (unsigned f = 0; f < 4; f++) out4[f] = presets[m][f] ? '1' : '0';
    out4[4] = '\0';
}

TEST(modes_minimal_at_startup_never_hits_tcache) {
    static struct hk_test_child c;
    if (!run_small("minimal", NULL, &c)) return;
    unsigned long long nm = get_ull(&c, "nmalloc"), hits = get_ull(&c, "hits"),
                       all = get_ull(&c, "allhits");
    hk_test_log("minimal: nmalloc +%llu, tcache_hits +%llu, all classes %llu", nm, hits, all);
    EXPECT_GE_U(nm, 20000, "tiny.class.3 nmalloc grew by the 20000 allocations");
    EXPECT_NE_U(nm, ~0ull, "nmalloc printed");
    EXPECT_EQ_U(hits, 0, "minimal: tiny.class.3 tcache_hits stays 0");
    EXPECT_EQ_U(all, 0, "minimal: no class has a tcache hit");
    expect_child_value(&c, "HAKMEM_MODE=minimal", "mode", "minimal");
    expect_child_value(&c, "HAKMEM_MODE=minimal", "opt.mode", "minimal");
    expect_child_value(&c, "HAKMEM_MODE=minimal", "features", "0000");
    expect_child_value(&c, "HAKMEM_MODE=minimal", "opt.features", "0000");
    EXPECT_EQ_U(c.err_bytes, 0, "HAKMEM_MODE=minimal prints no warning");
}

TEST(modes_default_balanced_hits_tcache) {
    static struct hk_test_child c;
    if (!run_small(NULL, NULL, &c)) return;
    unsigned long long nm = get_ull(&c, "nmalloc"), hits = get_ull(&c, "hits");
    hk_test_log("default: nmalloc +%llu, tcache_hits +%llu", nm, hits);
    EXPECT_GE_U(nm, 20000, "tiny.class.3 nmalloc grew by the 20000 allocations");
    EXPECT_TRUE(nm != ~0ull && hits != ~0ull, "values printed");
    EXPECT_TRUE(hits > 0 && hits != ~0ull, "balanced: tcache_hits grows");
    /* Refills happen at most once per carved run of blocks: the vast
     * majority of 20000 allocations of a recycled working set are hits. */
    EXPECT_GE_U(hits, nm / 2, "balanced: most allocations are fast-path hits");
    expect_child_value(&c, "HAKMEM_MODE unset", "mode", "balanced");
    expect_child_value(&c, "HAKMEM_MODE unset", "opt.mode", "balanced");
    expect_child_value(&c, "HAKMEM_MODE unset", "features", "1111");
}

TEST(modes_every_mode_at_startup_applies_its_preset) {
    static struct hk_test_child c;
    for (unsigned m = 0; m < 5; m++) {
        if (!run_small(mode_names[m], NULL, &c)) continue;
        char want[5], what[64];
        preset_string(m, want);
        snprintf(what, sizeof what, "HAKMEM_MODE=%s", mode_names[m]);
        expect_child_value(&c, what, "mode", mode_names[m]);
        expect_child_value(&c, what, "opt.mode", mode_names[m]);
        expect_child_value(&c, what, "features", want);
        expect_child_value(&c, what, "opt.features", want);
        unsigned long long hits = get_ull(&c, "hits");
        /* research turns the debug checks on: every small block then comes
         * from the arena's checked heap, never from a thread's fast path. */
        bool debug_checks = m == 4;
        if (presets[m][0] && !debug_checks) {
            if (!(hits > 0 && hits != ~0ull))
                hk_test_fail(__FILE__, __LINE__, "%s (tcache on): tcache_hits %llu", what, hits);
        } else {
            EXPECT_EQ_U(hits, 0, what);
        }
    }
}

TEST(modes_env_mode_refined_by_conf) {
    static struct hk_test_child c;
    /* HAKMEM_MODE picks the preset, HAKMEM_CONF refines it. */
    if (run_small("minimal", "tcache:1", &c)) {
        expect_child_value(&c, "minimal + tcache:1", "features", "1000");
        unsigned long long hits = get_ull(&c, "hits");
        EXPECT_TRUE(hits > 0 && hits != ~0ull, "minimal + tcache:1: tcache_hits grows");
    }
    if (run_small("balanced", "bigcache:0,decay:0", &c)) {
        expect_child_value(&c, "balanced + bigcache:0,decay:0", "features", "1001");
        expect_child_value(&c, "balanced + bigcache:0,decay:0", "mode", "balanced");
    }
    /* mode: in HAKMEM_CONF applies the preset where it stands. */
    if (run_small(NULL, "mode:fast", &c)) {
        expect_child_value(&c, "mode:fast", "mode", "fast");
        expect_child_value(&c, "mode:fast", "features", "1110");
    }
    if (run_small(NULL, "mode:minimal,tcache:1", &c))
        expect_child_value(&c, "mode:minimal,tcache:1", "features", "1000");
    if (run_small(NULL, "tcache:0,mode:research", &c))
        expect_child_value(&c, "tcache:0,mode:research", "features", "1111");
    /* An unknown mode is ignored with a warning. */
    if (run_small("turbo", NULL, &c)) {
        expect_child_value(&c, "HAKMEM_MODE=turbo", "mode", "balanced");
        EXPECT_GT_U(c.err_bytes, 0, "HAKMEM_MODE=turbo warns");
    }
}

/* ---------------- runtime: config.mode and presets ---------------- */

static void restore_balanced(void) {
    EXPECT_EQ_U(wr_mode("balanced"), 0, "restore balanced");
}

TEST(modes_config_mode_reads_back_every_mode) {
    const char *start = NULL;
    REQUIRE_EQ_U(rd_mode("opt.mode", &start), 0, "opt.mode");
    for (int round = 0; round < 2; round++) {
        for (unsigned m = 0; m < 5; m++) {
            unsigned mm = round ? 4 - m : m;
            REQUIRE_EQ_U(wr_mode(mode_names[mm]), 0, mode_names[mm]);
            const char *got = NULL;
            REQUIRE_EQ_U(rd_mode("config.mode", &got), 0, "read config.mode");
            REQUIRE_NOT_NULL(got, "config.mode string");
            if (strcmp(got, mode_names[mm]) != 0)
                hk_test_fail(__FILE__, __LINE__, "wrote %s, read back %s", mode_names[mm], got);
            for (unsigned f = 0; f < 4; f++) {
                bool b = !presets[mm][f];
                EXPECT_EQ_U(rd_feature(f, &b), 0, feature_names[f]);
                if (b != presets[mm][f])
                    hk_test_fail(__FILE__, __LINE__, "mode %s: config.features.%s is %d, want %d",
                                 mode_names[mm], feature_names[f], b, presets[mm][f]);
            }
            /* opt.mode is the start-up mode and does not follow. */
            const char *o = NULL;
            EXPECT_EQ_U(rd_mode("opt.mode", &o), 0, "opt.mode");
            if (o != NULL && start != NULL && strcmp(o, start) != 0)
                hk_test_fail(__FILE__, __LINE__, "opt.mode changed from %s to %s", start, o);
        }
    }
    /* A string with the same text at another address works too. */
    char copy[16];
    strcpy(copy, "fast");
    const char *cp = copy;
    EXPECT_EQ_U(wr("config.mode", &cp, sizeof cp), 0, "mode from a stack buffer");
    strcpy(copy, "XXXX");
    const char *got = NULL;
    EXPECT_EQ_U(rd_mode("config.mode", &got), 0, "read config.mode");
    if (got == NULL || strcmp(got, "fast") != 0)
        hk_test_fail(__FILE__, __LINE__, "config.mode after writing a stack copy of fast: %s",
                     got ? got : "(null)");
    restore_balanced();
}

TEST(modes_unknown_mode_is_einval_and_changes_nothing) {
    REQUIRE_EQ_U(wr_mode("fast"), 0, "fast");
    static const char *bad[] = {"", "Minimal", "FAST", "fastest", "fas", "balanced ",
                                " balanced", "research\n", "learn", "minimal,fast", "debug",
                                "balancedbalancedbalancedbalancedbalanced"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = wr_mode(bad[i]);
        if (rc != EINVAL)
            hk_test_fail(__FILE__, __LINE__, "config.mode = \"%s\": %d, want EINVAL", bad[i], rc);
    }
    const char *null_mode = NULL;
    EXPECT_EQ_U(wr("config.mode", &null_mode, sizeof null_mode), EINVAL, "NULL mode string");
    const char *m = "minimal";
    EXPECT_EQ_U(wr("config.mode", &m, sizeof m - 1), EINVAL, "short newlen");
    EXPECT_EQ_U(wr("config.mode", &m, sizeof m + 1), EINVAL, "long newlen");
    EXPECT_EQ_U(wr("config.mode", NULL, sizeof m), EINVAL, "NULL newp");
    const char *got = NULL;
    EXPECT_EQ_U(rd_mode("config.mode", &got), 0, "read config.mode");
    if (got == NULL || strcmp(got, "fast") != 0)
        hk_test_fail(__FILE__, __LINE__, "a rejected write changed config.mode to %s",
                     got ? got : "(null)");
    for (unsigned f = 0; f < 4; f++) {
        bool b = false;
        EXPECT_EQ_U(rd_feature(f, &b), 0, feature_names[f]);
        if (b != presets[1][f])
            hk_test_fail(__FILE__, __LINE__, "a rejected write changed config.features.%s",
                         feature_names[f]);
    }
    /* Read and write in one call: the old value comes back, the new one holds. */
    const char *old = NULL, *nw = "research";
    size_t len = sizeof old;
    EXPECT_EQ_U(hak_ctl("config.mode", &old, &len, &nw, sizeof nw), 0, "read+write");
    if (old == NULL || strcmp(old, "fast") != 0)
        hk_test_fail(__FILE__, __LINE__, "read+write returned old mode %s", old ? old : "(null)");
    EXPECT_EQ_U(rd_mode("config.mode", &got), 0, "read config.mode");
    if (got == NULL || strcmp(got, "research") != 0)
        hk_test_fail(__FILE__, __LINE__, "after read+write mode is %s", got ? got : "(null)");
    restore_balanced();
}

TEST(modes_feature_override_then_mode_write_resets_it) {
    REQUIRE_EQ_U(wr_mode("fast"), 0, "fast");
    EXPECT_EQ_U(wr_feature(3, true), 0, "stats_page on");
    EXPECT_EQ_U(wr_feature(1, false), 0, "bigcache off");
    bool b = false;
    EXPECT_EQ_U(rd_feature(3, &b), 0, "stats_page");
    EXPECT_TRUE(b, "config.features.stats_page reads back 1");
    EXPECT_EQ_U(rd_feature(1, &b), 0, "bigcache");
    EXPECT_TRUE(!b, "config.features.bigcache reads back 0");
    const char *got = NULL;
    EXPECT_EQ_U(rd_mode("config.mode", &got), 0, "config.mode");
    if (got == NULL || strcmp(got, "fast") != 0)
        hk_test_fail(__FILE__, __LINE__, "a feature write changed config.mode to %s",
                     got ? got : "(null)");
    EXPECT_EQ_U(wr_mode("fast"), 0, "fast again");
    for (unsigned f = 0; f < 4; f++) {
        EXPECT_EQ_U(rd_feature(f, &b), 0, feature_names[f]);
        if (b != presets[1][f])
            hk_test_fail(__FILE__, __LINE__, "rewriting fast left config.features.%s at %d",
                         feature_names[f], b);
    }
    /* Feature leaves are plain bools: wrong sizes fail. */
    uint64_t wide = 1;
    EXPECT_EQ_U(wr("config.features.tcache", &wide, sizeof wide), EINVAL, "8-byte bool");
    restore_balanced();
}

/* ---------------- runtime: tcache ---------------- */

struct tc_arg {
    unsigned tier, idx;
    size_t size;
    int n;
    int warmup;        /* allocations before the switch (thread gets a heap) */
    bool switch_off;   /* turn config.features.tcache off after the warm-up */
    struct hak_class_stats before, after;
    int rc;
};

static void *tc_thread(void *p) {
    struct tc_arg *a = p;
    static void *blk[4096];
    void *warm[64];
    a->rc = 0;
    for (int i = 0; i < a->warmup && i < 64; i++) warm[i] = hak_malloc(a->size);
    if (a->switch_off && wr_feature(0, false) != 0) a->rc = 1;
    if (class_stats(a->tier, a->idx, &a->before) != 0) a->rc = 2;
    for (int i = 0; i < a->n && i < 4096; i++) {
        blk[i] = hak_malloc(a->size);
        if (blk[i] == NULL) a->rc = 3;
        else memset(blk[i], 0x5A, a->size);
    }
    for (int i = 0; i < a->n && i < 4096; i++) hak_free(blk[i]);
    if (class_stats(a->tier, a->idx, &a->after) != 0) a->rc = 4;
    for (int i = 0; i < a->warmup && i < 64; i++) hak_free(warm[i]);
    return NULL;
}

static bool run_tc_thread(struct tc_arg *a) {
    pthread_t t;
    if (pthread_create(&t, NULL, tc_thread, a) != 0) return false;
    pthread_join(t, NULL);
    return a->rc == 0;
}

TEST(modes_runtime_tcache_off_routes_new_threads_to_shared_heap) {
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(3072, &tier, &idx), "a 3072-byte class");
    struct tc_arg a = {.tier = tier, .idx = idx, .size = 3072, .n = 3000};
    REQUIRE_EQ_U(wr_feature(0, false), 0, "tcache off");
    bool ok = run_tc_thread(&a);
    EXPECT_EQ_U(wr_feature(0, true), 0, "tcache on");
    REQUIRE_TRUE(ok, "worker thread");
    EXPECT_EQ_U(a.after.nmalloc - a.before.nmalloc, 3000, "tcache off: nmalloc counts every block");
    EXPECT_EQ_U(a.after.tcache_hits - a.before.tcache_hits, 0, "tcache off: no fast-path hit");
    EXPECT_EQ_U(a.after.ndalloc - a.before.ndalloc, 3000, "tcache off: ndalloc counts every free");

    struct tc_arg b = {.tier = tier, .idx = idx, .size = 3072, .n = 3000};
    REQUIRE_TRUE(run_tc_thread(&b), "worker thread");
    EXPECT_EQ_U(b.after.nmalloc - b.before.nmalloc, 3000, "tcache on: nmalloc");
    EXPECT_GE_U(b.after.tcache_hits - b.before.tcache_hits, 1500,
                "tcache on: most allocations are fast-path hits");
}

TEST(modes_runtime_tcache_off_reaches_a_running_thread) {
    /* A thread that already has a heap notices at its next slow path: at
     * most the blocks carved on its current page still come from the fast
     * path (one page of 3584-byte blocks holds 18). */
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(3584, &tier, &idx), "a 3584-byte class");
    struct tc_arg a = {.tier = tier, .idx = idx, .size = 3584, .n = 2000, .warmup = 4,
                       .switch_off = true};
    bool ok = run_tc_thread(&a);
    EXPECT_EQ_U(wr_feature(0, true), 0, "tcache on");
    REQUIRE_TRUE(ok, "worker thread");
    EXPECT_EQ_U(a.after.nmalloc - a.before.nmalloc, 2000, "nmalloc counts every block");
    EXPECT_LE_U(a.after.tcache_hits - a.before.tcache_hits, 65536 / 3584,
                "after tcache off: at most one page of fast-path hits");
}

/* ---------------- runtime: bigcache ---------------- */

/* Is the page holding p mapped?  (mincore fails with ENOMEM on a hole.) */
static bool page_mapped(const void *p) {
    uintptr_t pg = (uintptr_t)p & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    unsigned char vec[1];
    if (mincore((void *)pg, 1, vec) == 0) return true;
    return errno != ENOMEM;
}

/* Does a line of /proc/self/maps cover address p? */
static int maps_cover(const void *p) {
    static char buf[1 << 20];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    uintptr_t a = (uintptr_t)p;
    for (char *s = buf; s && *s;) {
        unsigned long lo, hi;
        if (sscanf(s, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) return 1;
        s = strchr(s, '\n');
        if (s) s++;
    }
    return 0;
}

struct huge_st {
    uint64_t nmmap, hits, misses, nmalloc;
    size_t bytes;
};

static int huge_read(struct huge_st *h) {
    int rc = rd("huge.stats.nmmap", &h->nmmap, sizeof h->nmmap);
    rc |= rd("huge.bigcache.hits", &h->hits, sizeof h->hits);
    rc |= rd("huge.bigcache.misses", &h->misses, sizeof h->misses);
    rc |= rd("huge.stats.nmalloc", &h->nmalloc, sizeof h->nmalloc);
    rc |= rd("huge.bigcache.bytes", &h->bytes, sizeof h->bytes);
    return rc;
}

TEST(modes_bigcache_off_unmaps_freed_huge_blocks) {
    REQUIRE_EQ_U(wr_feature(1, false), 0, "config.features.bigcache = 0");
    bool b = true;
    EXPECT_EQ_U(rd_feature(1, &b), 0, "read bigcache");
    EXPECT_TRUE(!b, "bigcache reads back 0");
    struct huge_st h0, h1, h2, h3;
    REQUIRE_EQ_U(huge_read(&h0), 0, "huge stats");
    EXPECT_EQ_U(h0.bytes, 0, "turning the BigCache off empties it");

    void *p = hak_malloc(4 * MiB);
    REQUIRE_NOT_NULL(p, "4 MiB");
    memset(p, 0x11, 4 * MiB);
    REQUIRE_EQ_U(huge_read(&h1), 0, "huge stats");
    EXPECT_EQ_U(h1.nmmap - h0.nmmap, 1, "a new 4 MiB block maps");
    EXPECT_EQ_U(maps_cover(p), 1, "/proc/self/maps covers the live block");
    hak_free(p);
    REQUIRE_EQ_U(huge_read(&h2), 0, "huge stats");
    EXPECT_EQ_U(h2.bytes, 0, "bigcache off: nothing parked");
    EXPECT_TRUE(!page_mapped(p), "bigcache off: the freed block's first page is unmapped");
    EXPECT_EQ_U(maps_cover(p), 0, "bigcache off: /proc/self/maps no longer covers the block");

    void *q = hak_malloc(4 * MiB);
    REQUIRE_NOT_NULL(q, "4 MiB again");
    REQUIRE_EQ_U(huge_read(&h3), 0, "huge stats");
    EXPECT_EQ_U(h3.nmmap - h2.nmmap, 1, "bigcache off: the next 4 MiB block maps again");
    EXPECT_EQ_U(h3.hits - h2.hits, 0, "bigcache off: no BigCache hit");
    hak_free(q);
    EXPECT_EQ_U(wr_feature(1, true), 0, "bigcache back on");
}

TEST(modes_bigcache_on_reuses_freed_huge_blocks) {
    REQUIRE_EQ_U(wr_feature(1, true), 0, "config.features.bigcache = 1");
    struct huge_st h1, h2, h3;
    void *p = hak_malloc(4 * MiB);
    REQUIRE_NOT_NULL(p, "4 MiB");
    memset(p, 0x22, 4 * MiB);
    hak_free(p);
    REQUIRE_EQ_U(huge_read(&h1), 0, "huge stats");
    EXPECT_GE_U(h1.bytes, 4 * MiB, "bigcache on: the freed block is parked");
    EXPECT_TRUE(page_mapped(p), "bigcache on: the parked block stays mapped");
    void *q = hak_malloc(4 * MiB);
    REQUIRE_NOT_NULL(q, "4 MiB again");
    REQUIRE_EQ_U(huge_read(&h2), 0, "huge stats");
    EXPECT_EQ_U(h2.hits - h1.hits, 1, "bigcache on: the second 4 MiB block is a hit");
    EXPECT_EQ_U(h2.nmmap - h1.nmmap, 0, "bigcache on: no new mapping");
    EXPECT_EQ_PTR(q, p, "the most recently parked mapping of the size is reused");
    /* Turning the feature off at runtime empties the cache at once. */
    hak_free(q);
    REQUIRE_EQ_U(huge_read(&h2), 0, "huge stats");
    EXPECT_GE_U(h2.bytes, 4 * MiB, "parked again");
    EXPECT_EQ_U(wr_feature(1, false), 0, "bigcache off");
    REQUIRE_EQ_U(huge_read(&h3), 0, "huge stats");
    EXPECT_EQ_U(h3.bytes, 0, "turning bigcache off empties the cache");
    EXPECT_TRUE(!page_mapped(q), "the emptied cache's mapping is unmapped");
    EXPECT_EQ_U(wr_feature(1, true), 0, "bigcache back on");
    /* minimal mode turns the BigCache off too. */
    EXPECT_EQ_U(wr_mode("minimal"), 0, "minimal");
    p = hak_malloc(4 * MiB);
    if (p != NULL) {
        hak_free(p);
        REQUIRE_EQ_U(huge_read(&h3), 0, "huge stats");
        EXPECT_EQ_U(h3.bytes, 0, "minimal: freed huge blocks are not parked");
    }
    restore_balanced();
}

/* ---------------- runtime: decay ---------------- */

enum { DECAY_MAXB = 8192 };
static void *decay_blk[DECAY_MAXB];

struct decay_run {
    size_t base, peak, flushed, end;
    uint64_t waited_ms;
};

/* Fills ~32 MiB of 4..32 KiB blocks, frees them, flushes the thread cache,
 * then keeps doing slow-path work (one page of 5120-byte blocks allocated,
 * freed and flushed back to the arena every 2 ms) for at least `min_ms`,
 * up to `max_ms` or until `stop_below` is reached (0: never). */
static bool decay_fill_and_wait(struct decay_run *r, unsigned min_ms, unsigned max_ms,
                                size_t stop_below) {
    memset(r, 0, sizeof *r);
    r->base = hk_test_rss_bytes();
    size_t got = 0;
    int n = 0;
    uint64_t rs = 4242;
    while (got < 32 * MiB && n < DECAY_MAXB) {
        rs = rs * 6364136223846793005ull + 1442695040888963407ull;
        size_t s = 4 * KiB + (size_t)(rs >> 33) % (28 * KiB + 1);
        decay_blk[n] = hak_malloc(s);
        if (decay_blk[n] == NULL) return false;
        memset(decay_blk[n], 0x6B, s);
        got += s;
        n++;
    }
    r->peak = hk_test_rss_bytes();
    for (int i = 0; i < n; i++) hak_free(decay_blk[i]);
    if (act("thread.tcache.flush") != 0) return false;
    r->flushed = hk_test_rss_bytes();
    uint64_t t0 = hk_test_now_ms();
    void *page[12];
    for (;;) {
        uint64_t el = hk_test_now_ms() - t0;
        if (el >= min_ms && (el >= max_ms || (stop_below && hk_test_rss_bytes() < stop_below))) break;
        for (int i = 0; i < 12; i++) page[i] = hak_malloc(5120);
        for (int i = 0; i < 12; i++) hak_free(page[i]);
        if (act("thread.tcache.flush") != 0) return false;
        hk_test_sleep_ms(2);
    }
    r->waited_ms = hk_test_now_ms() - t0;
    r->end = hk_test_rss_bytes();
    return true;
}

/* Sets every arena's decay_ms to ms; saves the old values in old[]. */
static bool set_all_decay(int64_t ms, int64_t *old, unsigned na) {
    for (unsigned i = 0; i < na; i++) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.decay_ms", i);
        size_t l = sizeof old[i];
        if (hak_ctl(name, old ? &old[i] : NULL, old ? &l : NULL, &ms, sizeof ms) != 0)
            return false;
    }
    return true;
}

static void restore_all_decay(const int64_t *old, unsigned na) {
    for (unsigned i = 0; i < na; i++) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.decay_ms", i);
        EXPECT_EQ_U(wr(name, &old[i], sizeof old[i]), 0, "restore decay_ms");
    }
}

static void purge_everything(unsigned na) {
    EXPECT_EQ_U(act("thread.tcache.flush"), 0, "flush");
    for (unsigned i = 0; i < na; i++) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.purge", i);
        EXPECT_EQ_U(act(name), 0, "purge");
    }
}

#define DECAY_TEST_MS 50

TEST(modes_decay_off_keeps_freed_pages_resident) {
    int64_t opt_decay = 0;
    REQUIRE_EQ_U(rd("opt.decay_ms", &opt_decay, sizeof opt_decay), 0, "opt.decay_ms");
    unsigned na = narenas();
    REQUIRE_TRUE(na >= 1 && na <= 64, "arenas.narenas");
    int64_t old[64];
    purge_everything(na);
    REQUIRE_TRUE(set_all_decay(DECAY_TEST_MS, old, na), "arena.<i>.decay_ms = 50");
    EXPECT_EQ_U(wr_feature(2, false), 0, "config.features.decay = 0");
    /* Wait several decay periods (and at least opt.decay_ms when short). */
    unsigned wait = 8 * DECAY_TEST_MS;
    if (opt_decay > 0 && opt_decay < 1000 && (unsigned)opt_decay > wait) wait = (unsigned)opt_decay;
    struct decay_run r;
    bool ok = decay_fill_and_wait(&r, wait, wait, 0);
    EXPECT_EQ_U(wr_feature(2, true), 0, "decay back on");
    purge_everything(na);
    restore_all_decay(old, na);
    REQUIRE_TRUE(ok, "fill, free and wait");
    hk_test_log("decay off: resident %zu -> peak %zu -> flushed %zu -> %zu KiB after %llu ms",
                r.base >> 10, r.peak >> 10, r.flushed >> 10, r.end >> 10,
                (unsigned long long)r.waited_ms);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    REQUIRE_GT_U(r.peak, r.base + 24 * MiB, "the 32 MiB raised the resident size");
    EXPECT_GE_U(r.end + 4 * MiB, r.peak,
                "decay off: freed pages stay resident without an explicit purge");
}

TEST(modes_decay_on_purges_freed_pages_by_itself) {
    unsigned na = narenas();
    REQUIRE_TRUE(na >= 1 && na <= 64, "arenas.narenas");
    int64_t old[64];
    purge_everything(na);
    REQUIRE_TRUE(set_all_decay(DECAY_TEST_MS, old, na), "arena.<i>.decay_ms = 50");
    EXPECT_EQ_U(wr_feature(2, true), 0, "config.features.decay = 1");
    bool b = false;
    EXPECT_EQ_U(rd_feature(2, &b), 0, "read decay");
    EXPECT_TRUE(b, "decay reads back 1");
    struct decay_run r;
    /* Stop as soon as half of the 32 MiB is gone; give up after 3 s. */
    size_t base = hk_test_rss_bytes();
    bool ok = decay_fill_and_wait(&r, 4 * DECAY_TEST_MS, 3000, base + 16 * MiB);
    purge_everything(na);
    restore_all_decay(old, na);
    REQUIRE_TRUE(ok, "fill, free and wait");
    hk_test_log("decay on: resident %zu -> peak %zu -> flushed %zu -> %zu KiB after %llu ms",
                r.base >> 10, r.peak >> 10, r.flushed >> 10, r.end >> 10,
                (unsigned long long)r.waited_ms);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    REQUIRE_GT_U(r.peak, r.base + 24 * MiB, "the 32 MiB raised the resident size");
    EXPECT_LE_U(r.end, r.peak - 16 * MiB,
                "decay on: at least half of the freed 32 MiB went back without a purge");
}

/* ---------------- tcache_max ---------------- */

TEST(modes_tcache_max_reads_back) {
    static const unsigned vals[] = {0, 1, 7, 12, 100, 4096, 65535, 1000000};
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = 0;
        char name[64];
        snprintf(name, sizeof name, "%s.nclasses", tiers[t]);
        REQUIRE_EQ_U(rd(name, &n, sizeof n), 0, "nclasses");
        for (unsigned i = 0; i < n; i += (i < 2 ? 1 : 3)) {
            snprintf(name, sizeof name, "%s.class.%u.tcache_max", tiers[t], i);
            unsigned orig = 0;
            REQUIRE_EQ_U(rd(name, &orig, sizeof orig), 0, name);
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                unsigned v = vals[k], got = ~vals[k];
                EXPECT_EQ_U(wr(name, &v, sizeof v), 0, name);
                EXPECT_EQ_U(rd(name, &got, sizeof got), 0, name);
                if (got != v)
                    hk_test_fail(__FILE__, __LINE__, "%s: wrote %u, read back %u", name, v, got);
            }
            EXPECT_EQ_U(wr(name, &orig, sizeof orig), 0, "restore");
            unsigned again = 0;
            EXPECT_EQ_U(rd(name, &again, sizeof again), 0, name);
            EXPECT_EQ_U(again, orig, "restored value reads back");
            uint64_t wide = 5;
            EXPECT_EQ_U(wr(name, &wide, sizeof wide), EINVAL, "8-byte write to an unsigned");
        }
    }
}

TEST(modes_tcache_max_default_is_one_small_page) {
    /* Default: one page's worth of blocks where a page is at most 64 KiB
     * (every tiny page is one 64 KiB slice), none for bigger pages. */
    for (unsigned i = 0; i < 21; i += 4) {
        char name[64];
        size_t size = 0;
        unsigned m = 0;
        snprintf(name, sizeof name, "tiny.class.%u.size", i);
        REQUIRE_EQ_U(rd(name, &size, sizeof size), 0, name);
        snprintf(name, sizeof name, "tiny.class.%u.tcache_max", i);
        REQUIRE_EQ_U(rd(name, &m, sizeof m), 0, name);
        EXPECT_EQ_U(m, 65536 / size, name);
    }
    unsigned m = 1;
    REQUIRE_EQ_U(rd("large.class.19.tcache_max", &m, sizeof m), 0, "1 MiB class");
    EXPECT_EQ_U(m, 0, "a 1 MiB page is never kept empty by default");
}

TEST(modes_tcache_max_extreme_value_reads_back) {
    const char *name = "large.class.19.tcache_max";
    unsigned orig = 0, v = 0xFFFFFFFFu, got = 0;
    REQUIRE_EQ_U(rd(name, &orig, sizeof orig), 0, name);
    EXPECT_EQ_U(wr(name, &v, sizeof v), 0, name);
    EXPECT_EQ_U(rd(name, &got, sizeof got), 0, name);
    EXPECT_EQ_U(got, v, "UINT_MAX written to tcache_max reads back as UINT_MAX");
    EXPECT_EQ_U(wr(name, &orig, sizeof orig), 0, "restore");
}

struct slab_arg {
    unsigned tier, idx;
    size_t size;
    bool set_zero;
    uint64_t c0, c1, c2;
    int rc;
};

enum { SLAB_BLOCKS = 600 };

static void *slab_thread(void *p) {
    struct slab_arg *a = p;
    static void *blk[SLAB_BLOCKS];
    struct hak_class_stats st;
    char name[64];
    unsigned orig = 0, zero = 0;
    a->rc = 0;
    snprintf(name, sizeof name, "%s.class.%u.tcache_max", tiers[a->tier], a->idx);
    if (rd(name, &orig, sizeof orig) != 0) a->rc = 1;
    if (a->set_zero && wr(name, &zero, sizeof zero) != 0) a->rc = 2;
    if (class_stats(a->tier, a->idx, &st) != 0) a->rc = 3;
    a->c0 = st.curslabs;
    for (int i = 0; i < SLAB_BLOCKS; i++) {
        blk[i] = hak_malloc(a->size);
        if (blk[i] == NULL) a->rc = 4;
        else memset(blk[i], 0x3C, a->size);
    }
    if (class_stats(a->tier, a->idx, &st) != 0) a->rc = 5;
    a->c1 = st.curslabs;
    for (int i = 0; i < SLAB_BLOCKS; i++) hak_free(blk[i]);
    if (class_stats(a->tier, a->idx, &st) != 0) a->rc = 6;
    a->c2 = st.curslabs;
    if (a->set_zero && wr(name, &orig, sizeof orig) != 0) a->rc = 7;
    return NULL;
}

static bool run_slab_thread(struct slab_arg *a) {
    pthread_t t;
    if (pthread_create(&t, NULL, slab_thread, a) != 0) return false;
    pthread_join(t, NULL);
    return a->rc == 0;
}

TEST(modes_tcache_max_zero_hands_empty_pages_back) {
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(5120, &tier, &idx), "a 5120-byte class");
    struct slab_arg a = {.tier = tier, .idx = idx, .size = 5120, .set_zero = true};
    REQUIRE_TRUE(run_slab_thread(&a), "worker thread");
    hk_test_log("tcache_max 0: curslabs %llu -> %llu -> %llu", (unsigned long long)a.c0,
                (unsigned long long)a.c1, (unsigned long long)a.c2);
    /* 12 blocks of 5120 B per 64 KiB page: 600 blocks take 50 pages. */
    EXPECT_GE_U(a.c1, a.c0 + 50, "600 blocks of 5120 B took at least 50 pages");
    EXPECT_LE_U(a.c2, a.c0 + 1, "tcache_max 0: only the current page is kept");
}

TEST(modes_tcache_max_default_keeps_a_few_pages) {
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(6144, &tier, &idx), "a 6144-byte class");
    struct slab_arg a = {.tier = tier, .idx = idx, .size = 6144, .set_zero = false};
    REQUIRE_TRUE(run_slab_thread(&a), "worker thread");
    hk_test_log("tcache_max default: curslabs %llu -> %llu -> %llu", (unsigned long long)a.c0,
                (unsigned long long)a.c1, (unsigned long long)a.c2);
    EXPECT_GE_U(a.c1, a.c0 + 60, "600 blocks of 6144 B took at least 60 pages");
    /* Two pages' worth plus the current page. */
    EXPECT_LE_U(a.c2, a.c0 + 3, "default tcache_max: at most 3 pages kept");
    EXPECT_GE_U(a.c2, a.c0 + 2, "default tcache_max: the heap keeps two empty pages");
}

TEST_MAIN()
