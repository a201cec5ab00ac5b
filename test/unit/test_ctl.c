/* The control namespace, mallctl semantics: the documented leaves read
 * with their exact size, a wrong size is EINVAL, an unknown name ENOENT,
 * writing a read-only leaf or reading a write-only action EPERM; stats
 * follow the allocations; mib lookups, listing and stats printing work. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

struct leaf { const char *name; size_t size; };

static const struct leaf readable[] = {
    { "arenas.narenas", sizeof(unsigned) },
    { "huge.bigcache.hits", sizeof(uint64_t) },
    { "huge.bigcache.misses", sizeof(uint64_t) },
    { "huge.bigcache.bytes", sizeof(size_t) },
    { "stats.mapped", sizeof(size_t) },
    { "opt.narenas", sizeof(unsigned) },
    { "opt.tcache", sizeof(bool) },
    { "opt.decay_ms", sizeof(int64_t) },
    { "opt.bigcache_max_mb", sizeof(size_t) },
};
#define NREADABLE (sizeof readable / sizeof readable[0])

TEST(ctl_documented_leaves_read) {
    for (size_t i = 0; i < NREADABLE; i++) {
        unsigned char buf[16];
        memset(buf, 0xEE, sizeof buf);
        size_t len = readable[i].size;
        int rc = hak_ctl(readable[i].name, buf, &len, NULL, 0);
        if (rc != 0) {
            hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d", readable[i].name, rc);
            continue;
        }
        EXPECT_EQ_U(len, readable[i].size, readable[i].name);
        /* Nothing written past the leaf's size. */
        for (size_t k = readable[i].size; k < sizeof buf; k++)
            if (buf[k] != 0xEE) {
                hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") wrote past %zu bytes",
                             readable[i].name, readable[i].size);
                break;
            }
    }
}

TEST(ctl_values_are_sane) {
    unsigned na = 0, ona = 0;
    size_t len = sizeof na;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &na, &len, NULL, 0), 0, "arenas.narenas");
    EXPECT_TRUE(na >= 1 && na <= 4096, "arenas.narenas in 1..4096");
    len = sizeof ona;
    REQUIRE_EQ_U(hak_ctl("opt.narenas", &ona, &len, NULL, 0), 0, "opt.narenas");
    if (ona != 0) EXPECT_EQ_U(na, ona, "arenas.narenas follows opt.narenas");
    int64_t decay = 0;
    len = sizeof decay;
    REQUIRE_EQ_U(hak_ctl("opt.decay_ms", &decay, &len, NULL, 0), 0, "opt.decay_ms");
    EXPECT_GE_I(decay, -1, "opt.decay_ms >= -1");
    bool tc = false;
    len = sizeof tc;
    REQUIRE_EQ_U(hak_ctl("opt.tcache", &tc, &len, NULL, 0), 0, "opt.tcache");
    size_t mapped = 0;
    len = sizeof mapped;
    void *p = hak_malloc(100); /* something is mapped */
    REQUIRE_EQ_U(hak_ctl("stats.mapped", &mapped, &len, NULL, 0), 0, "stats.mapped");
    EXPECT_GT_U(mapped, 0, "stats.mapped > 0 with a live block");
    hak_free(p);
}

TEST(ctl_wrong_length_is_einval) {
    for (size_t i = 0; i < NREADABLE; i++) {
        uint64_t buf[4] = { 0 };
        size_t sizes[3] = { readable[i].size + 1, readable[i].size * 2, 0 };
        if (readable[i].size > 1) sizes[2] = readable[i].size - 1;
        for (int k = 0; k < 3; k++) {
            if (sizes[k] == 0 || sizes[k] == readable[i].size) continue;
            size_t len = sizes[k];
            int rc = hak_ctl(readable[i].name, buf, &len, NULL, 0);
            if (rc != EINVAL)
                hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") with length %zu = %d",
                             readable[i].name, sizes[k], rc);
        }
        /* oldp without oldlenp */
        int rc = hak_ctl(readable[i].name, buf, NULL, NULL, 0);
        if (rc != EINVAL)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\", oldp, NULL) = %d",
                         readable[i].name, rc);
    }
}

TEST(ctl_unknown_names_are_enoent) {
    static const char *names[] = {
        "nope", "arenas.nope", "arenas.narenas.x", "opt.nope", "huge.bigcache.nope",
        "arena.x.purge", "arena.0.nope", "arena..purge", "thread.tcache.nope",
        "stats.nope", "ARENAS.NARENAS", "arenas.narenas ", " arenas.narenas",
        "arena.99999999999999999999999.purge", "arena.-1.purge",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        uint64_t v = 0;
        size_t len = sizeof(unsigned);
        int rc = hak_ctl(names[i], &v, &len, NULL, 0);
        if (rc != ENOENT)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d, not ENOENT", names[i], rc);
    }
    /* Empty and interior names are not leaves either. */
    static const char *odd[] = { "", ".", "arenas", "opt", "huge.bigcache", "arena.0" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        uint64_t v = 0;
        size_t len = sizeof v;
        int rc = hak_ctl(odd[i], &v, &len, NULL, 0);
        if (rc != ENOENT && rc != EINVAL)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d", odd[i], rc);
    }
}

TEST(ctl_arena_index_out_of_range) {
    unsigned na = 0;
    size_t len = sizeof na;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &na, &len, NULL, 0), 0, "arenas.narenas");
    char name[64];
    snprintf(name, sizeof name, "arena.%u.purge", na + 5);
    int rc = hak_ctl(name, NULL, NULL, NULL, 0);
    EXPECT_TRUE(rc == ENOENT || rc == EINVAL, "purge of an arena past narenas fails");
    snprintf(name, sizeof name, "arena.%u.purge", na - 1);
    EXPECT_EQ_U(hak_ctl(name, NULL, NULL, NULL, 0), 0, "purge of the last arena");
}

TEST(ctl_read_only_leaves_refuse_writes) {
    for (size_t i = 0; i < NREADABLE; i++) {
        uint64_t v[2] = { 1, 1 };
        int rc = hak_ctl(readable[i].name, NULL, NULL, v, readable[i].size);
        if (rc != EPERM)
            hk_test_fail(__FILE__, __LINE__, "writing \"%s\" = %d, not EPERM",
                         readable[i].name, rc);
    }
    unsigned na = 0;
    size_t len = sizeof na;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &na, &len, NULL, 0), 0, "arenas.narenas");
    EXPECT_GE_U(na, 1, "arenas.narenas unchanged by the refused write");
}

TEST(ctl_actions_are_write_only) {
    EXPECT_EQ_U(hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0, "tcache flush");
    EXPECT_EQ_U(hak_ctl("arena.0.purge", NULL, NULL, NULL, 0), 0, "arena.0.purge");
    uint64_t v = 0;
    size_t len = sizeof v;
    EXPECT_EQ_U(hak_ctl("thread.tcache.flush", &v, &len, NULL, 0), EPERM,
                "reading an action");
    len = sizeof v;
    EXPECT_EQ_U(hak_ctl("arena.0.purge", &v, &len, NULL, 0), EPERM, "reading an action");
    int rc = hak_ctl("thread.tcache.flush", NULL, NULL, &v, sizeof v);
    EXPECT_TRUE(rc == EINVAL || rc == EPERM, "an action takes no value");
}

static void refresh(void) {
    uint64_t e = 1;
    (void)hak_ctl("epoch", NULL, NULL, &e, sizeof e); /* where stats need it */
}

TEST(ctl_stats_mapped_follows_huge_blocks) {
    size_t m0 = 0, m1 = 0, len = sizeof m0;
    refresh();
    REQUIRE_EQ_U(hak_ctl("stats.mapped", &m0, &len, NULL, 0), 0, "stats.mapped");
    unsigned char *p = hak_malloc(64 * MiB + 1);
    REQUIRE_NOT_NULL(p, "malloc 64 MiB");
    p[0] = p[64 * MiB] = 1;
    refresh();
    len = sizeof m1;
    REQUIRE_EQ_U(hak_ctl("stats.mapped", &m1, &len, NULL, 0), 0, "stats.mapped");
    hak_free(p);
    EXPECT_GE_U(m1, m0 + 64 * MiB, "stats.mapped grew by the 64 MiB block");
}

TEST(ctl_bigcache_bytes_counts_a_freed_block) {
    size_t cap = 0, b0 = 0, b1 = 0, len = sizeof cap;
    REQUIRE_EQ_U(hak_ctl("opt.bigcache_max_mb", &cap, &len, NULL, 0), 0, "cap");
    SKIP_IF(cap < 8, "BigCache too small in this configuration");
    bool on = true;
    len = sizeof on;
    SKIP_IF(hak_ctl("config.features.bigcache", &on, &len, NULL, 0) == 0 && !on,
            "BigCache off in this configuration");
    len = sizeof b0;
    REQUIRE_EQ_U(hak_ctl("huge.bigcache.bytes", &b0, &len, NULL, 0), 0, "bytes");
    void *p = hak_malloc(3 * MiB + 5);
    REQUIRE_NOT_NULL(p, "malloc 3 MiB");
    hak_free(p);
    len = sizeof b1;
    REQUIRE_EQ_U(hak_ctl("huge.bigcache.bytes", &b1, &len, NULL, 0), 0, "bytes");
    /* b0 may include entries beyond the capacity that this free trimmed
     * (their decay time was over): the block itself is what is counted. */
    hk_test_log("BigCache bytes: %zu before the free, %zu after", b0, b1);
    EXPECT_GE_U(b1, 3 * MiB, "a freed 3 MiB block is in the BigCache");
    p = hak_malloc(3 * MiB + 5);
    REQUIRE_NOT_NULL(p, "malloc 3 MiB again");
    size_t b2 = 0;
    len = sizeof b2;
    REQUIRE_EQ_U(hak_ctl("huge.bigcache.bytes", &b2, &len, NULL, 0), 0, "bytes");
    EXPECT_LE_U(b2 + 3 * MiB, b1, "reusing it takes it out of the BigCache");
    hak_free(p);
}

static void *ctl_reader(void *arg) {
    int *bad = arg;
    for (int i = 0; i < 2000; i++) {
        void *p = hak_malloc((size_t)(i % 97) * 40 + 1);
        for (size_t k = 0; k < NREADABLE; k++) {
            uint64_t v[2];
            size_t len = readable[k].size;
            if (hak_ctl(readable[k].name, v, &len, NULL, 0) != 0) (*bad)++;
        }
        if (i % 100 == 0 && hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0) != 0)
            (*bad)++;
        if (i % 500 == 0 && hak_ctl("arena.0.purge", NULL, NULL, NULL, 0) != 0) (*bad)++;
        hak_free(p);
    }
    return NULL;
}

TEST(ctl_callable_from_many_threads) {
    enum { T = 4 };
    pthread_t t[T];
    int bad[T] = { 0 };
    for (int i = 0; i < T; i++)
        REQUIRE_EQ_U(pthread_create(&t[i], NULL, ctl_reader, &bad[i]), 0, "pthread_create");
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < T; i++) EXPECT_EQ_U(bad[i], 0, "failed ctl calls in a thread");
}

TEST(ctl_mib_lookup_matches_names) {
    size_t mib[8], miblen = 8;
    REQUIRE_EQ_U(hak_ctl_nametomib("arenas.narenas", mib, &miblen), 0, "nametomib");
    EXPECT_EQ_U(miblen, 2, "two components");
    unsigned a = 0, b = 0;
    size_t len = sizeof a;
    REQUIRE_EQ_U(hak_ctl_bymib(mib, miblen, &a, &len, NULL, 0), 0, "bymib");
    len = sizeof b;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &b, &len, NULL, 0), 0, "by name");
    EXPECT_EQ_U(a, b, "same value by mib and by name");
    /* Indexed component: arena.<i>.purge for every arena by patching mib[1]. */
    miblen = 8;
    REQUIRE_EQ_U(hak_ctl_nametomib("arena.0.purge", mib, &miblen), 0, "nametomib indexed");
    EXPECT_EQ_U(miblen, 3, "three components");
    for (unsigned i = 0; i < b; i++) {
        mib[1] = i;
        EXPECT_EQ_U(hak_ctl_bymib(mib, miblen, NULL, NULL, NULL, 0), 0, "purge by mib");
    }
    miblen = 8;
    EXPECT_EQ_U(hak_ctl_nametomib("no.such.name", mib, &miblen), ENOENT, "unknown name");
}

struct listing { int total, found_narenas, found_flush, bad_type; };

static int list_cb(const char *name, int type, int writable, void *arg) {
    struct listing *l = arg;
    l->total++;
    if (strcmp(name, "arenas.narenas") == 0) {
        l->found_narenas = 1;
        if (type != HAK_CTL_UNSIGNED || writable) l->bad_type++;
    }
    if (strcmp(name, "thread.tcache.flush") == 0) {
        l->found_flush = 1;
        if (type != HAK_CTL_VOID) l->bad_type++;
    }
    if (type < HAK_CTL_BOOL || type > HAK_CTL_VOID) l->bad_type++;
    return 0;
}

TEST(ctl_list_enumerates_leaves) {
    struct listing l = { 0 };
    REQUIRE_EQ_U(hak_ctl_list("", list_cb, &l), 0, "hak_ctl_list(\"\")");
    EXPECT_GE_I(l.total, (int)NREADABLE, "at least the documented leaves");
    EXPECT_TRUE(l.found_narenas, "arenas.narenas listed");
    EXPECT_TRUE(l.found_flush, "thread.tcache.flush listed");
    EXPECT_EQ_U(l.bad_type, 0, "types and access as documented");
    struct listing o = { 0 };
    REQUIRE_EQ_U(hak_ctl_list("opt", list_cb, &o), 0, "hak_ctl_list(\"opt\")");
    EXPECT_TRUE(o.total >= 4 && o.total < l.total, "prefix narrows the listing");
    EXPECT_TRUE(!o.found_narenas && !o.found_flush, "prefix excludes other subtrees");
}

struct sink { char buf[1 << 16]; size_t len; int calls; };

static void sink_write(void *opaque, const char *text) {
    struct sink *s = opaque;
    size_t n = strlen(text);
    s->calls++;
    if (s->len + n >= sizeof s->buf) n = sizeof s->buf - 1 - s->len;
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

TEST(ctl_stats_print_through_callback) {
    static struct sink s;
    void *p = hak_malloc(1000);
    memset(&s, 0, sizeof s);
    hak_stats_print(sink_write, &s, NULL);
    EXPECT_TRUE(s.len > 0 && s.calls > 0, "text report written through the callback");
    memset(&s, 0, sizeof s);
    hak_stats_print(sink_write, &s, "J");
    size_t i = 0;
    while (i < s.len && (s.buf[i] == ' ' || s.buf[i] == '\n')) i++;
    EXPECT_TRUE(s.len > 0 && s.buf[i] == '{', "JSON report starts with '{'");
    size_t j = s.len;
    while (j > 0 && (s.buf[j - 1] == ' ' || s.buf[j - 1] == '\n')) j--;
    EXPECT_TRUE(j > 0 && s.buf[j - 1] == '}', "JSON report ends with '}'");
    hak_free(p);
}

TEST_MAIN()
