/*
 * White-box: the ctl name matcher (ctl/ctl.c, hk_ctl_resolve): concrete
 * names find their row and wildcard values; "<tier>" matches tiny, mid or
 * large; "<i>" a decimal of at most 9 digits below the row's bound
 * (EINVAL above it); anything else is ENOENT (hakmem(3), "Errors").
 */
#include "core/core.h"
#include "ctl/ctl.h"
#include "harness.h"

#include <errno.h>
#include <stdio.h>

static int resolve(const char *name, const char **row_name, size_t vals[HK_CTL_MAXVALS]) {
    const hk_ctl_row *row = NULL;
    int rc = hk_ctl_resolve(name, &row, vals);
    *row_name = rc == 0 && row != NULL ? row->name : NULL;
    return rc;
}

TEST(ctl_resolve_plain_names) {
    const char *rn;
    size_t v[HK_CTL_MAXVALS];
    hk_ensure_init();
    EXPECT_EQ_I(resolve("version", &rn, v), 0, "version");
    EXPECT_STREQ(rn, "version", "its row");
    EXPECT_EQ_I(resolve("opt.narenas", &rn, v), 0, "opt.narenas");
    EXPECT_STREQ(rn, "opt.narenas", "its row");
    EXPECT_EQ_I(resolve("thread.tcache.flush", &rn, v), 0, "an action");
    EXPECT_STREQ(rn, "thread.tcache.flush", "its row");
}

TEST(ctl_resolve_wildcards) {
    const char *rn;
    size_t v[HK_CTL_MAXVALS] = {99, 99};
    EXPECT_EQ_I(resolve("tiny.class.3.size", &rn, v), 0, "tiny.class.3.size");
    EXPECT_STREQ(rn, "<tier>.class.<i>.size", "its row");
    EXPECT_EQ_U(v[0], 0, "tier tiny = 0");
    EXPECT_EQ_U(v[1], 3, "index 3");
    EXPECT_EQ_I(resolve("mid.class.19.stats", &rn, v), 0, "last mid class");
    EXPECT_STREQ(rn, "<tier>.class.<i>.stats", "the stats row, not a longer one");
    EXPECT_EQ_U(v[0], 1, "tier mid = 1");
    EXPECT_EQ_U(v[1], 19, "index 19");
    EXPECT_EQ_I(resolve("large.class.0.stats.nmalloc", &rn, v), 0, "a stats field");
    EXPECT_STREQ(rn, "<tier>.class.<i>.stats.nmalloc", "its row");
    EXPECT_EQ_U(v[0], 2, "tier large = 2");
    EXPECT_EQ_U(v[1], 0, "index 0");
    EXPECT_EQ_I(resolve("large.nclasses", &rn, v), 0, "<tier> alone");
    EXPECT_EQ_U(v[0], 2, "large");
    EXPECT_EQ_I(resolve("arena.0.decay_ms", &rn, v), 0, "arena 0");
    EXPECT_STREQ(rn, "arena.<i>.decay_ms", "its row");
    char name[64];
    snprintf(name, sizeof name, "arena.%u.nthreads", hk_opt.narenas - 1);
    EXPECT_EQ_I(resolve(name, &rn, v), 0, "last arena");
    EXPECT_EQ_U(v[0], hk_opt.narenas - 1, "its index");
    EXPECT_EQ_I(resolve("learn.tcache.60.value", &rn, v), 0, "learn class 60");
    EXPECT_EQ_U(v[0], 60, "index 60");
}

TEST(ctl_resolve_out_of_range_is_einval) {
    const char *rn;
    size_t v[HK_CTL_MAXVALS];
    char name[64];
    EXPECT_EQ_I(resolve("tiny.class.21.size", &rn, v), EINVAL, "tiny has 21 classes");
    EXPECT_EQ_I(resolve("mid.class.20.size", &rn, v), EINVAL, "mid has 20");
    EXPECT_EQ_I(resolve("large.class.20.stats.nmalloc", &rn, v), EINVAL, "large has 20");
    EXPECT_EQ_I(resolve("tiny.class.999999999.size", &rn, v), EINVAL, "9 digits, out of range");
    snprintf(name, sizeof name, "arena.%u.purge", hk_opt.narenas);
    EXPECT_EQ_I(resolve(name, &rn, v), EINVAL, "arena past narenas");
    EXPECT_EQ_I(resolve("debug.events.16.what", &rn, v), EINVAL, "16 events kept");
    EXPECT_EQ_I(resolve("learn.tcache.61.value", &rn, v), EINVAL, "61 classes");
}

TEST(ctl_resolve_unknown_is_enoent) {
    const char *rn;
    size_t v[HK_CTL_MAXVALS];
    static const char *const bad[] = {
        "", "nosuch", "versio", "versionx", "version.x", "tiny.class.3",
        "tiny.class", "stats", "huge.class.0.size", "Tiny.class.3.size",
        "<tier>.nclasses", "tiny.class.<i>.size", "tiny..class.3.size",
        ".version", "version.", "tiny.class.3.size.", "tiny.class.3.stats.nmalloc.x",
        "tiny.class.3.sizes", "tiny.class..size",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_EQ_I(resolve(bad[i], &rn, v), ENOENT, bad[i]);
    EXPECT_EQ_I(resolve(NULL, &rn, v), ENOENT, "NULL name");
}

TEST(ctl_resolve_junk_indices_and_names) {
    const char *rn;
    size_t v[HK_CTL_MAXVALS];
    static const char *const bad[] = {
        "tiny.class.+3.size", "tiny.class.-3.size", "tiny.class. 3.size",
        "tiny.class.3 .size", "tiny.class.3a.size", "tiny.class.0x3.size",
        "tiny.class.1234567890.size", /* 10 digits */
        "tiny.class.00000000003.size", " version", "version ", "ver sion",
        "tiny .class.3.size", "tiny.class.3.size\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_EQ_I(resolve(bad[i], &rn, v), ENOENT, bad[i]);
    /* Leading zeros are decimal digits (hakmem(3): "a decimal index, at
     * most 9 digits"): 03 is 3. */
    EXPECT_EQ_I(resolve("tiny.class.03.size", &rn, v), 0, "03");
    EXPECT_EQ_U(v[1], 3, "03 is 3");
    EXPECT_EQ_I(resolve("tiny.class.000000003.size", &rn, v), 0, "9 digits");
    EXPECT_EQ_U(v[1], 3, "000000003 is 3");
    /* Overlong: a valid prefix padded past HK_CTL_NAME_MAX. */
    char name[HK_CTL_NAME_MAX + 16];
    memset(name, 'a', sizeof name);
    name[sizeof name - 1] = '\0';
    EXPECT_EQ_I(resolve(name, &rn, v), ENOENT, "overlong name");
    snprintf(name, sizeof name, "tiny.class.3.size");
    size_t n = strlen(name);
    for (; n < HK_CTL_NAME_MAX; n++) name[n] = 'x';
    name[n] = '\0';
    EXPECT_EQ_I(resolve(name, &rn, v), ENOENT, "HK_CTL_NAME_MAX characters");
}

/* Every row, its wildcards filled with tiny and 0, resolves to itself: no
 * row shadows another. */
TEST(ctl_resolve_every_row_reaches_itself) {
    for (size_t r = 0; r < hk_ctl_nrows; r++) {
        char name[HK_CTL_NAME_MAX], *o = name;
        for (const char *p = hk_ctl_rows[r].name; *p; ) {
            if (strncmp(p, "<tier>", 6) == 0) { o += sprintf(o, "tiny"); p += 6; }
            else if (strncmp(p, "<i>", 3) == 0) { *o++ = '0'; p += 3; }
            else *o++ = *p++;
        }
        *o = '\0';
        const hk_ctl_row *row = NULL;
        size_t v[HK_CTL_MAXVALS];
        int rc = hk_ctl_resolve(name, &row, v);
        EXPECT_EQ_I(rc, 0, name);
        if (rc == 0) EXPECT_EQ_PTR(row, &hk_ctl_rows[r], name);
    }
}

TEST_MAIN()
