/* HAKMEM_CONF: bad strings never crash and warn a little; good strings are
 * silent and show up under opt.*; later keys win; a bad value keeps the
 * default; stats_print, bigcache_max_mb and decay_ms change behaviour.
 *
 * Each case re-executes this binary (/proc/self/exe) with HAKMEM_CONF set
 * and argv[1] naming a child role; a constructor runs the role and exits
 * before the tests would start.  The child's stdout and stderr come back
 * through pipes. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---------------- the child side ---------------- */

/* Some allocation in every tier; 0 when all of it worked. */
static int child_basic(void) {
    void *keep[64];
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)1 << (i % 22); /* 1 B .. 2 MiB */
        keep[i] = hak_malloc(n);
        if (keep[i] == NULL) return 2;
        memset(keep[i], i, n < 8192 ? n : 8192);
    }
    for (int i = 0; i < 64; i++) {
        void *q = hak_realloc(keep[i], (size_t)i * 1000 + 1);
        if (q == NULL) return 3;
        keep[i] = q;
    }
    for (int i = 0; i < 64; i++) hak_free(keep[i]);
    void *c = hak_calloc(100, 1000);
    if (c == NULL) return 4;
    hak_free(c);
    return 0;
}

enum value_kind { V_UNSIGNED, V_BOOL, V_I64, V_SIZE };

/* Prints "name=value" (or "name=ERR<rc>") for one ctl value. */
static void print_value(const char *name, enum value_kind k) {
    union {
        unsigned u;
        bool b;
        int64_t i;
        size_t z;
    } v = {0};
    size_t len = k == V_UNSIGNED ? sizeof v.u : k == V_BOOL ? sizeof v.b : k == V_I64 ? sizeof v.i : sizeof v.z;
    char line[128];
    int rc = hak_ctl(name, &v, &len, NULL, 0);
    if (rc) snprintf(line, sizeof line, "%s=ERR%d\n", name, rc);
    else if (k == V_UNSIGNED) snprintf(line, sizeof line, "%s=%u\n", name, v.u);
    else if (k == V_BOOL) snprintf(line, sizeof line, "%s=%d\n", name, v.b ? 1 : 0);
    else if (k == V_I64) snprintf(line, sizeof line, "%s=%lld\n", name, (long long)v.i);
    else snprintf(line, sizeof line, "%s=%zu\n", name, v.z);
    hk_test_out(line);
}

/* Prints each option, the arena count and the profiler's period and
 * switch, one a line. */
static int child_opts(void) {
    if (child_basic() != 0) return 2;
    print_value("opt.narenas", V_UNSIGNED);
    print_value("opt.tcache", V_BOOL);
    print_value("opt.decay_ms", V_I64);
    print_value("opt.bigcache_max_mb", V_SIZE);
    print_value("arenas.narenas", V_UNSIGNED);
    print_value("prof.sample_bytes", V_SIZE);
    print_value("prof.active", V_BOOL);
    return 0;
}

/* 4 MiB, free, 4 MiB again: prints the BigCache hits of the second. */
static int child_bigcache(void) {
    uint64_t h0 = 0, h1 = 0;
    size_t len = sizeof h0;
    void *p = hak_malloc(4 * MiB);
    if (p == NULL) return 2;
    memset(p, 1, 4 * MiB);
    hak_free(p);
    int rc0 = hak_ctl("huge.bigcache.hits", &h0, &len, NULL, 0);
    p = hak_malloc(4 * MiB);
    if (p == NULL) return 3;
    len = sizeof h1;
    int rc1 = hak_ctl("huge.bigcache.hits", &h1, &len, NULL, 0);
    hak_free(p);
    char line[96];
    if (rc0 || rc1) snprintf(line, sizeof line, "hits=ERR%d\n", rc0 ? rc0 : rc1);
    else snprintf(line, sizeof line, "hits=%llu\n", (unsigned long long)(h1 - h0));
    hk_test_out(line);
    return 0;
}

/* Fills ~64 MiB of 4..64 KiB blocks, frees them and flushes the thread
 * cache, then (purge) purges every arena: prints the resident size at the
 * three points and the result of the controls. */
static int child_fill_free(bool purge) {
    enum { MAXB = 8192 };
    static void *p[MAXB];
    size_t rss0 = hk_test_rss_bytes(), got = 0;
    int n = 0;
    uint64_t rs = 99;
    while (got < 64 * MiB && n < MAXB) {
        rs = rs * 6364136223846793005ull + 1442695040888963407ull;
        size_t s = 4 * KiB + (size_t)(rs >> 33) % (60 * KiB + 1);
        p[n] = hak_malloc(s);
        if (p[n] == NULL) return 2;
        memset(p[n], 0x6B, s);
        got += s;
        n++;
    }
    size_t rss1 = hk_test_rss_bytes();
    for (int i = 0; i < n; i++) hak_free(p[i]);
    int rc = hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    if (purge && rc == 0) {
        unsigned na = 0;
        size_t len = sizeof na;
        rc = hak_ctl("arenas.narenas", &na, &len, NULL, 0);
        for (unsigned i = 0; rc == 0 && i < na; i++) {
            char name[64];
            snprintf(name, sizeof name, "arena.%u.purge", i);
            rc = hak_ctl(name, NULL, NULL, NULL, 0);
        }
    }
    size_t rss2 = hk_test_rss_bytes();
    char line[160];
    snprintf(line, sizeof line, "rss=%zu,%zu,%zu ctl=%d\n", rss0, rss1, rss2, rc);
    hk_test_out(line);
    return 0;
}

/* Six phases of 48 MiB, each of one size class, each freed before the
 * next: prints the resident size before and at its peak. */
static int child_phases(void) {
    static const size_t phase_size[] = { 48, 2000, 24 * KiB, 100 * KiB, 640, 8000 };
    size_t rss0 = hk_test_rss_bytes(), peak = rss0;
    for (size_t ph = 0; ph < sizeof phase_size / sizeof phase_size[0]; ph++) {
        size_t n = phase_size[ph], count = 48 * MiB / n;
        void **p = hak_malloc(count * sizeof *p);
        if (p == NULL) return 2;
        for (size_t i = 0; i < count; i++) {
            p[i] = hak_malloc(n);
            if (p[i] == NULL) return 3;
            memset(p[i], 1, n);
        }
        size_t r = hk_test_rss_bytes();
        if (r > peak) peak = r;
        for (size_t i = 0; i < count; i++) hak_free(p[i]);
        hak_free(p);
        (void)hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    }
    char line[96];
    snprintf(line, sizeof line, "phases=%zu,%zu\n", rss0, peak);
    hk_test_out(line);
    return 0;
}

__attribute__((constructor)) static void child_dispatch(void) {
    const char *arg1 = hk_test_role();
    if (arg1 == NULL) return;
    int rc;
    if (strcmp(arg1, "--child") == 0) rc = child_basic();
    else if (strcmp(arg1, "--child-opts") == 0) rc = child_opts();
    else if (strcmp(arg1, "--child-bigcache") == 0) rc = child_bigcache();
    else if (strcmp(arg1, "--child-decay") == 0) rc = child_fill_free(false);
    else if (strcmp(arg1, "--child-purge") == 0) rc = child_fill_free(true);
    else if (strcmp(arg1, "--child-phases") == 0) rc = child_phases();
    else return;
    exit(rc);
}

/* ---------------- the parent side ---------------- */

/* Runs this binary as `role` with HAKMEM_CONF = conf (unset when NULL). */
static int run_child(const char *role, const char *conf, struct hk_test_child *c) {
    return hk_test_run_self(c, role, "HAKMEM_MODE", (char *)NULL, "HAKMEM_CONF", conf,
                            (char *)NULL);
}

static char *repeat(const char *unit, size_t total) {
    size_t ul = strlen(unit);
    char *s = hak_malloc(total + 1);
    if (s == NULL) return NULL;
    for (size_t i = 0; i < total; i++) s[i] = unit[i % ul];
    s[total] = '\0';
    return s;
}

static size_t count_keys(const char *s) {
    size_t k = 1;
    for (; *s; s++) k += *s == ',';
    return k;
}

static void check_bad(const char *conf, const char *label) {
    struct hk_test_child c;
    char st[64];
    if (run_child("--child", conf, &c) != 0) {
        hk_test_fail(__FILE__, __LINE__, "could not run the child for %s", label);
        return;
    }
    if (!hk_test_exited_ok(&c)) {
        hk_test_describe_status(&c, st, sizeof st);
        hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=%s: child %s; stderr: %.300s", label,
                     st, c.err);
    }
    size_t bound = 3 * count_keys(conf);
    if (c.err_lines > bound)
        hk_test_fail(__FILE__, __LINE__,
                     "HAKMEM_CONF=%s: %zu lines on stderr (at most %zu): %.300s", label,
                     c.err_lines, bound, c.err);
}

TEST(conf_bad_strings_do_not_crash) {
    static const char *bad[] = {
        "", ",", ",,,", ":", ":1", "::::", "=", "narenas", "narenas:", "narenas:abc",
        "narenas:-1", "narenas:99999999999999999999", "narenas:4294967296",
        "narenas:18446744073709551616", "narenas=2", "narenas: 2", " narenas:2",
        "NARENAS:2", "narenas:2,", ",narenas:2", "narenas:2,,tcache:0", "narenas:2:3",
        "narenas:1.5", "tcache:maybe", "tcache:", "tcache:2", "tcache:-1",
        "unknown_key:1", "unknown_key", "unknown_key:1,unknown_key:2",
        "decay_ms:1e9", "decay_ms:-2", "decay_ms:", "decay_ms:99999999999999999999999",
        "decay_ms:-99999999999999999999999", "decay_ms:abc",
        "bigcache_max_mb:-5", "bigcache_max_mb:18446744073709551616",
        "bigcache_max_mb:", "bigcache_max_mb:1x", "thp:2", "thp:", "thp:-1",
        "stats_print:", "stats_print:-", "\xff\xfe:1", "narenas:\x01",
        "narenas:2\n", "a:b:c:d,e:f:g,h", "narenas:abc,tcache:maybe,thp:7,decay_ms:x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char label[80];
        snprintf(label, sizeof label, "\"%.60s\"", bad[i]);
        for (char *s = label; *s; s++)
            if ((unsigned char)*s < 32 || (unsigned char)*s > 126) *s = '?';
        check_bad(bad[i], label);
    }
}

TEST(conf_long_strings_do_not_crash) {
    struct { const char *unit; size_t len; const char *prefix; } longs[] = {
        { "a", 10000, "" },          /* one long key without a value */
        { "9", 10000, "narenas:" },  /* a long number */
        { ",", 10000, "" },          /* nothing but separators */
        { ":", 10000, "" },
        { "x", 10000, "unknown_key:" },
        { "narenas:1,", 10000, "" }, /* a thousand good keys */
        { "bogus:1,", 10000, "" },   /* a thousand bad keys */
        { "y", 5000, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:" },
    };
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        char *body = repeat(longs[i].unit, longs[i].len);
        REQUIRE_NOT_NULL(body, "string");
        size_t pl = strlen(longs[i].prefix);
        char *s = hak_malloc(pl + longs[i].len + 1);
        REQUIRE_NOT_NULL(s, "string");
        memcpy(s, longs[i].prefix, pl);
        memcpy(s + pl, body, longs[i].len + 1);
        char label[80];
        snprintf(label, sizeof label, "%s(\"%s\" x %zu)", longs[i].prefix, longs[i].unit,
                 longs[i].len);
        check_bad(s, label);
        hak_free(s);
        hak_free(body);
    }
}

TEST(conf_good_strings_are_silent) {
    static const char *good[] = {
        "narenas:2,tcache:0,bigcache_max_mb:8,decay_ms:0,thp:1",
        "narenas:1", "tcache:1", "tcache:0", "decay_ms:-1", "decay_ms:10000",
        "bigcache_max_mb:0", "bigcache_max_mb:256", "thp:0", "thp:1", "stats_print:0",
        "narenas:2,narenas:3",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct hk_test_child c;
        char st[64];
        if (run_child("--child", good[i], &c) != 0) {
            hk_test_fail(__FILE__, __LINE__, "could not run the child");
            continue;
        }
        if (!hk_test_exited_ok(&c)) {
            hk_test_describe_status(&c, st, sizeof st);
            hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=\"%s\": child %s", good[i], st);
        }
        if (c.err_bytes != 0)
            hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=\"%s\" printed: %.300s", good[i],
                         c.err);
    }
    struct hk_test_child c;
    REQUIRE_EQ_U(run_child("--child", NULL, &c), 0, "run child");
    EXPECT_TRUE(hk_test_exited_ok(&c), "child without HAKMEM_CONF exits 0");
    EXPECT_EQ_U(c.err_bytes, 0, "no HAKMEM_CONF: nothing on stderr");
}

static void expect_opt(const struct hk_test_child *c, const char *conf, const char *name,
                       const char *want) {
    char v[64];
    if (!hk_test_child_value(c, name, v, sizeof v))
        hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=\"%s\": child printed no %s: %.200s",
                     conf ? conf : "(unset)", name, c->out);
    else if (strcmp(v, want) != 0)
        hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=\"%s\": %s is %s, want %s",
                     conf ? conf : "(unset)", name, v, want);
}

static bool run_opts(const char *conf, struct hk_test_child *c) {
    char st[64];
    if (run_child("--child-opts", conf, c) != 0) {
        hk_test_fail(__FILE__, __LINE__, "could not run the child");
        return false;
    }
    if (!hk_test_exited_ok(c)) {
        hk_test_describe_status(c, st, sizeof st);
        hk_test_fail(__FILE__, __LINE__, "HAKMEM_CONF=\"%s\": child %s; stderr %.200s",
                     conf ? conf : "(unset)", st, c->err);
        return false;
    }
    return true;
}

TEST(conf_options_visible_under_opt) {
    static struct hk_test_child c;
    const char *conf = "narenas:3,tcache:0,bigcache_max_mb:8,decay_ms:0";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "opt.narenas", "3");
        expect_opt(&c, conf, "opt.tcache", "0");
        expect_opt(&c, conf, "opt.bigcache_max_mb", "8");
        expect_opt(&c, conf, "opt.decay_ms", "0");
        expect_opt(&c, conf, "arenas.narenas", "3");
        EXPECT_EQ_U(c.err_bytes, 0, "no warnings for a good string");
    }
    conf = "narenas:5,tcache:1,bigcache_max_mb:100,decay_ms:-1";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "opt.narenas", "5");
        expect_opt(&c, conf, "opt.tcache", "1");
        expect_opt(&c, conf, "opt.bigcache_max_mb", "100");
        expect_opt(&c, conf, "opt.decay_ms", "-1");
        expect_opt(&c, conf, "arenas.narenas", "5");
    }
    conf = "decay_ms:12345,narenas:1";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "opt.decay_ms", "12345");
        expect_opt(&c, conf, "opt.narenas", "1");
        expect_opt(&c, conf, "arenas.narenas", "1");
    }
}

/* prof_sample_bytes sets the period from the start, with profiling on or
 * for a later prof.active; out of range (0, over 2^40) keeps the default. */
TEST(conf_prof_sample_bytes_sets_the_period) {
    static struct hk_test_child c;
    const char *conf = "prof_sample_bytes:65536";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "prof.sample_bytes", "65536");
        expect_opt(&c, conf, "prof.active", "0");
    }
    conf = "prof:1,prof_sample_bytes:4096";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "prof.sample_bytes", "4096");
        expect_opt(&c, conf, "prof.active", "1");
    }
    conf = "prof:1";
    if (run_opts(conf, &c)) expect_opt(&c, conf, "prof.sample_bytes", "524288");
    conf = "prof_sample_bytes:0";
    if (run_opts(conf, &c)) expect_opt(&c, conf, "prof.sample_bytes", "524288");
    conf = "prof_sample_bytes:2199023255553"; /* 2^41 + 1 */
    if (run_opts(conf, &c)) expect_opt(&c, conf, "prof.sample_bytes", "524288");
}

TEST(conf_later_keys_win) {
    static struct hk_test_child c;
    const char *conf = "narenas:2,tcache:0,narenas:5,decay_ms:7,tcache:1,decay_ms:9";
    if (run_opts(conf, &c)) {
        expect_opt(&c, conf, "opt.narenas", "5");
        expect_opt(&c, conf, "opt.tcache", "1");
        expect_opt(&c, conf, "opt.decay_ms", "9");
    }
}

TEST(conf_bad_value_keeps_default) {
    static struct hk_test_child dflt, c;
    if (!run_opts(NULL, &dflt)) return;
    static const char *names[] = { "opt.narenas", "opt.tcache", "opt.decay_ms",
                                   "opt.bigcache_max_mb" };
    char want[4][64];
    for (int i = 0; i < 4; i++) {
        if (!hk_test_child_value(&dflt, names[i], want[i], sizeof want[i]) ||
            strncmp(want[i], "ERR", 3) == 0) {
            hk_test_fail(__FILE__, __LINE__, "default %s unreadable: %.200s", names[i],
                         dflt.out);
            return;
        }
    }
    static const char *bad[] = {
        "narenas:abc", "narenas:-1", "narenas:99999999999999999999", "narenas:",
        "tcache:maybe", "tcache:", "decay_ms:1e9", "decay_ms:abc",
        "bigcache_max_mb:-5", "bigcache_max_mb:1x", "thp:2", "unknown_key:1",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        if (!run_opts(bad[k], &c)) continue;
        for (int i = 0; i < 4; i++) expect_opt(&c, bad[k], names[i], want[i]);
    }
    /* A bad key does not spoil the good ones around it. */
    const char *mixed = "narenas:abc,tcache:0,bogus:1,decay_ms:4321,thp:9";
    if (run_opts(mixed, &c)) {
        expect_opt(&c, mixed, "opt.narenas", want[0]);
        expect_opt(&c, mixed, "opt.tcache", "0");
        expect_opt(&c, mixed, "opt.decay_ms", "4321");
    }
}

TEST(conf_stats_print_writes_at_exit) {
    static struct hk_test_child c;
    REQUIRE_EQ_U(run_child("--child", "stats_print:1", &c), 0, "run child");
    EXPECT_TRUE(hk_test_exited_ok(&c), "child with stats_print:1 exits 0");
    EXPECT_GT_U(c.out_bytes + c.err_bytes, 0, "stats_print:1 printed nothing at exit");
    REQUIRE_EQ_U(run_child("--child", "stats_print:0", &c), 0, "run child");
    EXPECT_TRUE(hk_test_exited_ok(&c), "child with stats_print:0 exits 0");
    EXPECT_EQ_U(c.out_bytes + c.err_bytes, 0, "stats_print:0 printed something");
}

static long bigcache_hits(const char *conf) {
    static struct hk_test_child c;
    char v[64];
    if (run_child("--child-bigcache", conf, &c) != 0 || !hk_test_exited_ok(&c) ||
        !hk_test_child_value(&c, "hits", v, sizeof v)) {
        hk_test_fail(__FILE__, __LINE__, "bigcache child with \"%s\" failed: %.200s",
                     conf ? conf : "(unset)", c.err);
        return -1;
    }
    if (strncmp(v, "ERR", 3) == 0) {
        hk_test_fail(__FILE__, __LINE__, "huge.bigcache.hits unreadable: %s", v);
        return -1;
    }
    return strtol(v, NULL, 10);
}

TEST(conf_bigcache_max_mb_zero_disables_reuse) {
    long on = bigcache_hits(NULL);
    long off = bigcache_hits("bigcache_max_mb:0");
    /* a 4 MiB block does not fit; past the capacity the cache keeps what
     * was live for the decay time only, none with decay_ms:0 */
    long small = bigcache_hits("bigcache_max_mb:2,decay_ms:0");
    if (on >= 0) EXPECT_EQ_U(on, 1, "default: the second 4 MiB block is a BigCache hit");
    if (off >= 0) EXPECT_EQ_U(off, 0, "bigcache_max_mb:0: no BigCache hit");
    if (small >= 0) EXPECT_EQ_U(small, 0, "bigcache_max_mb:2,decay_ms:0: a 4 MiB block is not cached");
}

/* Runs a fill/free child; checks that at least half of what it added to
 * its resident size was gone at the end. */
static void expect_memory_returned(const char *role, const char *conf, const char *what) {
    static struct hk_test_child c;
    REQUIRE_EQ_U(run_child(role, conf, &c), 0, "run child");
    REQUIRE_TRUE(hk_test_exited_ok(&c), "fill/free child exits 0");
    size_t r0 = 0, r1 = 0, r2 = 0;
    int ctl = -1;
    const char *s = strstr(c.out, "rss=");
    REQUIRE_TRUE(s && sscanf(s, "rss=%zu,%zu,%zu ctl=%d", &r0, &r1, &r2, &ctl) == 4,
                 "fill/free child output");
    hk_test_log("%s %s: resident %zu -> %zu -> %zu KiB", role, conf, r0 >> 10, r1 >> 10,
                r2 >> 10);
    EXPECT_EQ_U(ctl, 0, "tcache flush / purge controls in the child");
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    REQUIRE_GT_U(r1, r0 + 48 * MiB, "the child's 64 MiB raised its resident size");
    if ((r1 > r2 ? r1 - r2 : 0) < (r1 - r0) / 2)
        hk_test_fail(__FILE__, __LINE__,
                     "HAKMEM_CONF=%s: %s left %zu of %zu KiB added resident", conf, what,
                     (r2 - r0) >> 10, (r1 - r0) >> 10);
}

TEST(conf_decay_ms_zero_purges_at_once) {
    expect_memory_returned("--child-decay", "decay_ms:0", "free + tcache flush");
}

/* Purging must not depend on the thread cache being on. */
TEST(conf_tcache_off_purge_lowers_rss) {
    expect_memory_returned("--child-purge", "tcache:0", "free + flush + purge");
}

TEST(conf_single_arena_purge_lowers_rss) {
    expect_memory_returned("--child-purge", "narenas:1,decay_ms:-1", "free + flush + purge");
}

/* With the thread cache off, pages a size class emptied still go back to
 * be reused by other classes (test_fragmentation checks the default). */
TEST(conf_tcache_off_pages_move_between_classes) {
    static struct hk_test_child c;
    REQUIRE_EQ_U(run_child("--child-phases", "tcache:0", &c), 0, "run child");
    REQUIRE_TRUE(hk_test_exited_ok(&c), "phases child exits 0");
    size_t r0 = 0, peak = 0;
    const char *s = strstr(c.out, "phases=");
    REQUIRE_TRUE(s && sscanf(s, "phases=%zu,%zu", &r0, &peak) == 2, "phases child output");
    hk_test_log("tcache:0, 6 phases of 48 MiB: resident %zu -> peak %zu KiB", r0 >> 10,
                peak >> 10);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    /* Without reuse across classes the phases add up to ~288 MiB. */
    EXPECT_LE_U(hk_test_growth(peak, r0), 144 * MiB,
                "tcache:0: pages freed by one size class are not reused by another");
}

TEST_MAIN()
