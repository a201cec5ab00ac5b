/* The control namespace never crashes on bad input: thousands of random and
 * malformed names (random bytes, very long names, '..', trailing dots, huge
 * and negative indices, partial names, the empty string, NULL) through
 * hak_ctl, hak_ctl_nametomib, hak_ctl_bymib (random MIBs and lengths) and
 * hak_ctl_list return only 0, ENOENT, EINVAL or EPERM, and a name is
 * accepted only when it is a listed leaf.  Specific malformed names get the
 * documented error.  Random HAKMEM_CONF / HAKMEM_MODE strings in re-executed
 * children never crash start-up or the namespace.
 *
 * Writes in the fuzzing use lengths that no leaf type has (or a NULL value),
 * so no random bytes ever reach a leaf: the program's configuration stays
 * as it was. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* ---------------- random numbers ---------------- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) { return n ? (size_t)((rnd() >> 11) % n) : 0; }

/* Random values built from several draws, drawn in a fixed order (the
 * operands of one expression are unsequenced in C). */
static size_t rnd_shifted(void) {
    size_t v = (size_t)rnd();
    return v >> below(64);
}

static size_t real_entry(size_t (*real)[16], size_t rows, size_t cols) {
    size_t r = below(rows);
    size_t c = below(cols);
    return real[r][c];
}

/* ---------------- the listed leaves ---------------- */

struct leaf {
    char *name;
    int type;
    int writable;
};

static struct leaf *leaves;
static size_t nleaves, capleaves;

static size_t type_size(int type) {
    switch (type) {
    case HAK_CTL_BOOL: return sizeof(bool);
    case HAK_CTL_UNSIGNED: return sizeof(unsigned);
    case HAK_CTL_SIZE: return sizeof(size_t);
    case HAK_CTL_U64: return sizeof(uint64_t);
    case HAK_CTL_I64: return sizeof(int64_t);
    case HAK_CTL_STRING: return sizeof(const char *);
    case HAK_CTL_CLASS_STATS: return sizeof(struct hak_class_stats);
    default: return 0;
    }
}

static int collect_leaf(const char *name, int type, int writable, void *arg) {
    (void)arg;
    if (nleaves == capleaves) {
        size_t nc = capleaves ? 2 * capleaves : 1024;
        struct leaf *n = hak_realloc(leaves, nc * sizeof *n);
        if (n == NULL) return 1;
        leaves = n;
        capleaves = nc;
    }
    size_t l = strlen(name);
    char *copy = hak_malloc(l + 1);
    if (copy == NULL) return 1;
    memcpy(copy, name, l + 1);
    leaves[nleaves++] = (struct leaf){copy, type, writable};
    return 0;
}

static int leaf_cmp(const void *a, const void *b) {
    return strcmp(((const struct leaf *)a)->name, ((const struct leaf *)b)->name);
}

static bool load_leaves(void) {
    if (nleaves) return true;
    if (hak_ctl_list("", collect_leaf, NULL) != 0 || nleaves < 100) return false;
    qsort(leaves, nleaves, sizeof *leaves, leaf_cmp);
    return true;
}

static const struct leaf *find_leaf(const char *name) {
    size_t lo = 0, hi = nleaves;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, leaves[mid].name);
        if (c == 0) return &leaves[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* name with leading zeros of numeric components removed, into buf; false
 * when it does not fit. */
static bool canonical(const char *name, char *buf, size_t cap) {
    size_t o = 0;
    const char *s = name;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++)
            if (s[i] < '0' || s[i] > '9') digits = false;
        if (digits)
            while (len > 1 && *s == '0') {
                s++;
                len--;
            }
        if (o + len + 2 >= cap) return false;
        memcpy(buf + o, s, len);
        o += len;
        if (!dot) break;
        buf[o++] = '.';
        s = dot + 1;
    }
    buf[o] = '\0';
    return true;
}

/* ---------------- checks ---------------- */

static unsigned long nfailures, ncalls;

static bool allowed(int rc) { return rc == 0 || rc == ENOENT || rc == EINVAL || rc == EPERM; }

static void printable(const char *name, char *out, size_t cap) {
    size_t o = 0;
    if (name == NULL) {
        snprintf(out, cap, "(NULL)");
        return;
    }
    const unsigned char *s = (const unsigned char *)name;
    for (; *s && o + 8 < cap; s++) {
        if (*s >= 32 && *s < 127) out[o++] = (char)*s;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *s);
    }
    if (*s) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

#define CHECK_RC(rc, what, name)                                                 \
    do {                                                                         \
        int rc_ = (rc);                                                          \
        ncalls++;                                                                \
        if (!allowed(rc_) && nfailures++ < 10) {                                 \
            char p_[120];                                                        \
            printable(name, p_, sizeof p_);                                      \
            hk_test_fail(__FILE__, __LINE__, "%s(\"%s\") returned %d", what, p_, rc_); \
        }                                                                        \
    } while (0)

static int count_cb(const char *name, int type, int writable, void *arg) {
    (void)type;
    (void)writable;
    if (name == NULL || strlen(name) == 0) return 1;
    (*(size_t *)arg)++;
    return 0;
}

static const size_t read_lens[] = {0, 1, 2, 4, 7, 8, 16, 72, 73, 128, SIZE_MAX};
/* No leaf type has these sizes: writes with them never store anything. */
static const size_t bad_write_lens[] = {2, 3, 5, 6, 7, 9, 16, 71, 73, 1000, SIZE_MAX};

/* Every entry point with `name`, several argument shapes each. */
static void exercise(const char *name) {
    union {
        unsigned char bytes[128];
        uint64_t align;
    } buf, val;
    memset(&val, 0, sizeof val);
    size_t len;
    int rc;

    /* Read with a random length (the buffer is large enough for any). */
    len = read_lens[below(sizeof read_lens / sizeof read_lens[0])];
    rc = hak_ctl(name, buf.bytes, &len, NULL, 0);
    CHECK_RC(rc, "hak_ctl read", name);

    /* Read with the right length when the name is a listed leaf. */
    const struct leaf *lf = name ? find_leaf(name) : NULL;
    if (lf != NULL) {
        len = type_size(lf->type);
        rc = hak_ctl(name, buf.bytes, &len, NULL, 0);
        int want = lf->type == HAK_CTL_VOID ? EPERM : 0;
        if (rc != want && nfailures++ < 10)
            hk_test_fail(__FILE__, __LINE__, "listed leaf %s: read returned %d, want %d", name,
                         rc, want);
    } else if (rc == 0 && name != NULL) {
        /* Accepted though not listed: only a spelling of a listed name with
         * leading zeros in an index may be.  (Names ending in '.' are the
         * subject of ctl_fuzz_trailing_dot_is_not_a_name.) */
        char canon[256];
        size_t nl = strlen(name);
        bool trailing_dot = nl > 0 && name[nl - 1] == '.';
        if (!trailing_dot && (!canonical(name, canon, sizeof canon) || find_leaf(canon) == NULL) &&
            nfailures++ < 10) {
            char p[120];
            printable(name, p, sizeof p);
            hk_test_fail(__FILE__, __LINE__, "hak_ctl accepted \"%s\", which is not a listed leaf",
                         p);
        }
    }

    /* Only one of oldp / oldlenp. */
    rc = hak_ctl(name, buf.bytes, NULL, NULL, 0);
    CHECK_RC(rc, "hak_ctl oldp only", name);
    len = 8;
    rc = hak_ctl(name, NULL, &len, NULL, 0);
    CHECK_RC(rc, "hak_ctl oldlenp only", name);

    /* Writes that can never store: a length no type has, or no value. */
    rc = hak_ctl(name, NULL, NULL, val.bytes, bad_write_lens[below(sizeof bad_write_lens /
                                                                   sizeof bad_write_lens[0])]);
    CHECK_RC(rc, "hak_ctl bad write", name);
    if (lf != NULL && lf->type != HAK_CTL_VOID && rc == 0 && nfailures++ < 10)
        hk_test_fail(__FILE__, __LINE__, "%s: a write of the wrong length succeeded", name);
    rc = hak_ctl(name, NULL, NULL, NULL, 8);
    CHECK_RC(rc, "hak_ctl NULL newp", name);
    if (lf != NULL && rc == 0 && nfailures++ < 10)
        hk_test_fail(__FILE__, __LINE__, "%s: newp NULL with newlen 8 succeeded", name);

    /* nametomib with random room, sometimes none. */
    size_t mib[16], miblen = below(10);
    for (size_t i = 0; i < 16; i++) mib[i] = (size_t)rnd();
    switch (below(8)) {
    case 0: rc = hak_ctl_nametomib(name, NULL, &miblen); break;
    case 1: rc = hak_ctl_nametomib(name, mib, NULL); break;
    default: rc = hak_ctl_nametomib(name, mib, &miblen); break;
    }
    CHECK_RC(rc, "hak_ctl_nametomib", name);
    if (rc == 0) {
        if (miblen == 0 || miblen > 9) {
            if (nfailures++ < 10)
                hk_test_fail(__FILE__, __LINE__, "nametomib gave miblen %zu", miblen);
            return;
        }
        len = read_lens[below(sizeof read_lens / sizeof read_lens[0])];
        rc = hak_ctl_bymib(mib, miblen, buf.bytes, &len, NULL, 0);
        CHECK_RC(rc, "hak_ctl_bymib", name);
        /* A patched entry, a wrong length. */
        size_t at = below(miblen);
        mib[at] = rnd_shifted();
        rc = hak_ctl_bymib(mib, miblen, buf.bytes, &len, NULL, 0);
        CHECK_RC(rc, "hak_ctl_bymib patched", name);
        rc = hak_ctl_bymib(mib, miblen + 1 + below(3), buf.bytes, &len, NULL, 0);
        CHECK_RC(rc, "hak_ctl_bymib longer", name);
        rc = hak_ctl_bymib(mib, miblen - 1, buf.bytes, &len, NULL, 0);
        CHECK_RC(rc, "hak_ctl_bymib shorter", name);
    }

    /* As a listing prefix. */
    if ((rnd() & 3) == 0) {
        size_t n = 0;
        rc = hak_ctl_list(name, count_cb, &n);
        CHECK_RC(rc, "hak_ctl_list", name);
        if (rc != 0 && nfailures++ < 10)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl_list returned %d", rc);
    }
}

/* ---------------- name generators ---------------- */

static char name_buf[1 << 15];

static void gen_random_bytes(void) {
    size_t n = 1 + below((rnd() & 7) == 0 ? 400 : 48);
    for (size_t i = 0; i < n; i++) name_buf[i] = (char)(1 + below(255));
    name_buf[n] = '\0';
}

static void gen_alphabet(void) {
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz._0123456789<>-+ ";
    size_t n = 1 + below(40);
    for (size_t i = 0; i < n; i++) name_buf[i] = alpha[below(sizeof alpha - 1)];
    name_buf[n] = '\0';
}

static const char *const index_junk[] = {
    "-1", "-0", "+1", " 1", "1 ", "", "0x1", "1e3", "99999999999", "999999999",
    "4294967296", "4294967295", "18446744073709551616", "18446744073709551615",
    "00000000001", "0000000000", "1.5", "9999999999999999999999999999999", "٣",
    "\xff", "21", "20", "64", "63", "1000",
};

/* Replaces component k of the dotted name in name_buf with rep. */
static void replace_component(size_t k, const char *rep) {
    static char tmp[sizeof name_buf];
    const char *s = name_buf;
    for (size_t i = 0; i < k; i++) {
        const char *d = strchr(s, '.');
        if (d == NULL) return;
        s = d + 1;
    }
    const char *e = strchr(s, '.');
    size_t pre = (size_t)(s - name_buf), rl = strlen(rep);
    size_t post = e ? strlen(e) : 0;
    if (pre + rl + post + 1 > sizeof tmp) return;
    memcpy(tmp, name_buf, pre);
    memcpy(tmp + pre, rep, rl);
    if (e) memcpy(tmp + pre + rl, e, post);
    tmp[pre + rl + post] = '\0';
    memcpy(name_buf, tmp, pre + rl + post + 1);
}

static size_t ncomponents(const char *s) {
    size_t n = 1;
    for (; *s; s++) n += *s == '.';
    return n;
}

static void gen_mutated(void) {
    const char *base = leaves[below(nleaves)].name;
    strcpy(name_buf, base);
    unsigned muts = 1 + (unsigned)below(3);
    for (unsigned m = 0; m < muts; m++) {
        size_t len = strlen(name_buf);
        switch (below(11)) {
        case 0: /* truncate */
            name_buf[below(len + 1)] = '\0';
            break;
        case 1: { /* append */
            static const char *const tails[] = {".", "..", ".x", ".0", ".stats", ".size",
                                                ".nmalloc", "x", "0", ".<i>"};
            const char *t = tails[below(sizeof tails / sizeof tails[0])];
            if (len + strlen(t) + 1 < 1024) strcat(name_buf, t);
            break;
        }
        case 2: /* insert a dot */
            if (len + 2 < 1024) {
                size_t at = below(len + 1);
                memmove(name_buf + at + 1, name_buf + at, len - at + 1);
                name_buf[at] = '.';
            }
            break;
        case 3: /* delete a character */
            if (len > 0) {
                size_t at = below(len);
                memmove(name_buf + at, name_buf + at + 1, len - at);
            }
            break;
        case 4: /* replace a character */
            if (len > 0) {
                size_t at = below(len);
                name_buf[at] = (char)(1 + below(255));
            }
            break;
        case 5:
        case 6: { /* replace a numeric component */
            size_t nc = ncomponents(name_buf), k = below(nc);
            replace_component(k, index_junk[below(sizeof index_junk / sizeof index_junk[0])]);
            break;
        }
        case 7: { /* a tier that is not one */
            static const char *const tj[] = {"huge", "TINY", "tinyy", "", "mid ", "larg",
                                             "<tier>", "small"};
            replace_component(0, tj[below(sizeof tj / sizeof tj[0])]);
            break;
        }
        case 8: /* a random index */ {
            char num[32];
            snprintf(num, sizeof num, "%llu", (unsigned long long)rnd_shifted());
            replace_component(below(ncomponents(name_buf)), num);
            break;
        }
        case 9: /* double a dot */ {
            char *d = strchr(name_buf, '.');
            if (d && len + 2 < 1024) memmove(d + 1, d, strlen(d) + 1);
            break;
        }
        default: /* prefix */
            if (len + 2 < 1024) {
                memmove(name_buf + 1, name_buf, len + 1);
                name_buf[0] = below(2) ? '.' : ' ';
            }
            break;
        }
    }
}

static void gen_long(void) {
    size_t n = 1000 + below(20000);
    switch (below(5)) {
    case 0:
        memset(name_buf, 'a', n);
        name_buf[n] = '\0';
        break;
    case 1: {
        const char *b = leaves[below(nleaves)].name;
        size_t bl = strlen(b);
        memcpy(name_buf, b, bl);
        memset(name_buf + bl, '.', n);
        name_buf[bl + n] = '\0';
        break;
    }
    case 2:
        strcpy(name_buf, "tiny.class.");
        memset(name_buf + 11, '9', n);
        strcpy(name_buf + 11 + n, ".size");
        break;
    case 3:
        memset(name_buf, '.', n);
        name_buf[n] = '\0';
        break;
    default: {
        size_t o = 0;
        while (o < n) {
            const char *b = leaves[below(nleaves)].name;
            size_t bl = strlen(b);
            if (o + bl + 2 >= sizeof name_buf) break;
            memcpy(name_buf + o, b, bl);
            o += bl;
            name_buf[o++] = '.';
        }
        name_buf[o ? o - 1 : 0] = '\0';
        break;
    }
    }
}

/* ---------------- tests ---------------- */

TEST(ctl_fuzz_random_names) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list collected the leaves");
    nfailures = ncalls = 0;
    static const char *const fixed[] = {
        "", ".", "..", "...", "tiny", "tiny.class", "tiny.class.3", "tiny.class.3.",
        "tiny.class.3.stats.", "tiny..class.3.size", "tiny.class..size", ".tiny.class.3.size",
        "tiny.class.99999999999.size", "tiny.class.999999999.size", "tiny.class.-1.size",
        "tiny.class.-0.size", "mid.class.4294967296.stats", "large.class.18446744073709551616.size",
        "arena.-1.purge", "arena.99999999999.purge", "arena.999999999.decay_ms", "arena",
        "arena.0", "arena..purge", "arenas", "stats", "stats.", "config", "config.features",
        "config.features.", "opt", "huge", "huge.stats", "huge.bigcache", "thread",
        "thread.tcache", "thread.tcache.", "epoch.", "version.", "version..", "version.x",
        "<tier>.nclasses", "<tier>.class.<i>.size", "tiny.class.<i>.size", "%s%s%s%n",
        "tiny.class.3.stats.nmalloc.x", "tiny.class.3.stats.nmalloc.", "TINY.class.3.size",
        "tiny.CLASS.3.size", "tiny.class.3.SIZE", "tiny.class.3.size\n", " tiny.class.3.size",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) exercise(fixed[i]);
    exercise(NULL);
    for (size_t i = 0; i < nleaves; i++) exercise(leaves[i].name);
    unsigned iters = (HK_TSAN ? 1500 : 6000) * hk_test_scale();
    for (unsigned it = 0; it < iters; it++) {
        switch (below(10)) {
        case 0:
        case 1: gen_random_bytes(); break;
        case 2: gen_alphabet(); break;
        case 3: gen_long(); break;
        default: gen_mutated(); break;
        }
        exercise(name_buf);
    }
    hk_test_log("%lu calls, %lu bad results", ncalls, nfailures);
}

TEST(ctl_fuzz_random_mibs) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list collected the leaves");
    nfailures = ncalls = 0;
    /* Real MIBs to mutate. */
    static size_t real[64][16];
    static size_t reallen[64];
    for (size_t k = 0; k < 64; k++) {
        reallen[k] = 16;
        int rc = hak_ctl_nametomib(leaves[below(nleaves)].name, real[k], &reallen[k]);
        REQUIRE_EQ_U(rc, 0, "nametomib of a listed leaf");
    }
    unsigned iters = 20000 * hk_test_scale();
    for (unsigned it = 0; it < iters; it++) {
        size_t mib[16];
        size_t miblen;
        if (below(3) == 0) {
            miblen = below(9);
            for (size_t i = 0; i < 16; i++) {
                switch (below(5)) {
                case 0: mib[i] = below(80); break;
                case 1: mib[i] = SIZE_MAX - below(3); break;
                case 2: mib[i] = (size_t)rnd(); break;
                case 3: mib[i] = real_entry(real, 64, 4); break;
                default: {
                    size_t hi = (size_t)1 << below(64);
                    mib[i] = hi | below(100);
                    break;
                }
                }
            }
        } else {
            size_t k = below(64);
            memcpy(mib, real[k], sizeof mib);
            miblen = reallen[k];
            unsigned muts = (unsigned)below(3);
            for (unsigned m = 0; m < muts; m++) {
                switch (below(4)) {
                case 0: {
                    size_t at = below(miblen);
                    mib[at] = below(100);
                    break;
                }
                case 1: {
                    size_t at = below(miblen);
                    mib[at] = (size_t)rnd();
                    break;
                }
                case 2: {
                    size_t at = below(miblen);
                    mib[at] = real_entry(real, 64, 3);
                    break;
                }
                default: miblen = below(9); break;
                }
            }
        }
        union {
            unsigned char bytes[128];
            uint64_t align;
        } buf;
        size_t len = read_lens[below(sizeof read_lens / sizeof read_lens[0])];
        int rc;
        switch (below(6)) {
        case 0: rc = hak_ctl_bymib(NULL, miblen, buf.bytes, &len, NULL, 0); break;
        case 1: rc = hak_ctl_bymib(mib, miblen, buf.bytes, NULL, NULL, 0); break;
        case 2:
            rc = hak_ctl_bymib(mib, miblen, NULL, NULL, buf.bytes,
                               bad_write_lens[below(sizeof bad_write_lens /
                                                    sizeof bad_write_lens[0])]);
            break;
        default: rc = hak_ctl_bymib(mib, miblen, buf.bytes, &len, NULL, 0); break;
        }
        CHECK_RC(rc, "hak_ctl_bymib", "(random mib)");
    }
    EXPECT_EQ_U(hak_ctl_bymib(NULL, 3, NULL, NULL, NULL, 0), ENOENT, "NULL mib");
    EXPECT_EQ_U(hak_ctl_bymib(real[0], 0, NULL, NULL, NULL, 0), ENOENT, "miblen 0");
    hk_test_log("%lu calls, %lu bad results", ncalls, nfailures);
}

static void expect_rc(const char *name, int want_a, int want_b) {
    unsigned char buf[128];
    size_t len = 8;
    int rc = hak_ctl(name, buf, &len, NULL, 0);
    size_t mib[16], miblen = 16;
    int rc2 = hak_ctl_nametomib(name, mib, &miblen);
    char p[120];
    printable(name, p, sizeof p);
    if (rc != want_a && rc != want_b)
        hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d, want %d", p, rc, want_a);
    if (rc2 != want_a && rc2 != want_b)
        hk_test_fail(__FILE__, __LINE__, "hak_ctl_nametomib(\"%s\") = %d, want %d", p, rc2, want_a);
}

TEST(ctl_fuzz_malformed_names_get_documented_errors) {
    /* Unknown or partial names, unknown tiers, non-numeric indices: ENOENT. */
    static const char *const enoent[] = {
        "", ".", "..", "tiny", "tiny.class", "tiny.class.3", "tiny.class.3.stats.bogus",
        "stats", "config", "config.features", "huge", "huge.stats", "arena", "arena.0",
        "arena.0.stats", "thread", "thread.tcache", "opt", "arenas", "huge.class.0.size",
        "TINY.class.0.size", "tiny.class.-1.size", "tiny.class.+1.size", "tiny.class. 1.size",
        "tiny.class.1a.size", "tiny.class.0x1.size", "tiny.class..size", "tiny..class.1.size",
        ".version", "version..", "..version", "config..mode", "version.x", "versio",
        "versionx", "tiny.class.3.stats.nmalloc.x", "arena.-1.purge", "<tier>.nclasses",
        "tiny.class.<i>.size", "tiny.nclasses.0", "tiny.class.1.size.size",
    };
    for (size_t i = 0; i < sizeof enoent / sizeof enoent[0]; i++) expect_rc(enoent[i], ENOENT, ENOENT);
    expect_rc(NULL, ENOENT, ENOENT);
    /* Indices out of range: EINVAL.  More than 9 digits is documented as
     * not an index at all, so ENOENT is accepted there too. */
    static const char *const einval[] = {
        "tiny.class.21.size", "mid.class.20.size", "large.class.20.stats",
        "tiny.class.999999999.size", "mid.class.100.tcache_max", "large.class.20.stats.nmalloc",
    };
    for (size_t i = 0; i < sizeof einval / sizeof einval[0]; i++) expect_rc(einval[i], EINVAL, EINVAL);
    expect_rc("tiny.class.99999999999.size", EINVAL, ENOENT);
    expect_rc("tiny.class.4294967296.size", EINVAL, ENOENT);
    unsigned na = 0;
    size_t len = sizeof na;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &na, &len, NULL, 0), 0, "arenas.narenas");
    char name[64];
    snprintf(name, sizeof name, "arena.%u.decay_ms", na);
    expect_rc(name, EINVAL, EINVAL);
    snprintf(name, sizeof name, "arena.%u.purge", na);
    EXPECT_EQ_U(hak_ctl(name, NULL, NULL, NULL, 0), EINVAL, "purge of a missing arena");
    /* Valid edges. */
    size_t sz = 0;
    len = sizeof sz;
    EXPECT_EQ_U(hak_ctl("tiny.class.20.size", &sz, &len, NULL, 0), 0, "last tiny class");
    EXPECT_EQ_U(sz, 1024, "tiny.class.20 is 1 KiB");
    len = sizeof sz;
    EXPECT_EQ_U(hak_ctl("large.class.19.size", &sz, &len, NULL, 0), 0, "last large class");
    EXPECT_EQ_U(sz, 1 << 20, "large.class.19 is 1 MiB");
    /* Errors do not change *oldlenp. */
    len = 3;
    EXPECT_EQ_U(hak_ctl("tiny.class.0.size", &sz, &len, NULL, 0), EINVAL, "length 3");
    EXPECT_EQ_U(len, 3, "*oldlenp unchanged on EINVAL");
    /* nametomib argument errors. */
    size_t mib[8], miblen = 8;
    EXPECT_EQ_U(hak_ctl_nametomib("tiny.class.3.size", NULL, &miblen), EINVAL, "NULL mibp");
    EXPECT_EQ_U(hak_ctl_nametomib("tiny.class.3.size", mib, NULL), EINVAL, "NULL miblenp");
    miblen = 3;
    EXPECT_EQ_U(hak_ctl_nametomib("tiny.class.3.size", mib, &miblen), EINVAL, "room for 3 of 4");
    miblen = 8;
    REQUIRE_EQ_U(hak_ctl_nametomib("tiny.class.3.size", mib, &miblen), 0, "nametomib");
    EXPECT_EQ_U(miblen, 4, "four components");
    EXPECT_EQ_U(mib[0], 0, "tiny is 0");
    EXPECT_EQ_U(mib[2], 3, "index entry");
    size_t m2[8];
    memcpy(m2, mib, sizeof m2);
    m2[2] = 21;
    len = sizeof sz;
    EXPECT_EQ_U(hak_ctl_bymib(m2, 4, &sz, &len, NULL, 0), EINVAL, "patched index out of range");
    m2[2] = 20;
    EXPECT_EQ_U(hak_ctl_bymib(m2, 4, &sz, &len, NULL, 0), 0, "patched index in range");
    EXPECT_EQ_U(sz, 1024, "tiny class 20 through a MIB");
    m2[0] = 3;
    EXPECT_EQ_U(hak_ctl_bymib(m2, 4, &sz, &len, NULL, 0), EINVAL, "tier 3");
    memcpy(m2, mib, sizeof m2);
    m2[1] = m2[1] + 1;
    EXPECT_EQ_U(hak_ctl_bymib(m2, 4, &sz, &len, NULL, 0), ENOENT, "altered literal");
    EXPECT_EQ_U(hak_ctl_bymib(mib, 3, &sz, &len, NULL, 0), ENOENT, "miblen 3 of 4");
    EXPECT_EQ_U(hak_ctl_bymib(mib, 5, &sz, &len, NULL, 0), ENOENT, "miblen 5 of 4");
    /* Listing: a prefix matches whole components only. */
    size_t n = 0;
    EXPECT_EQ_U(hak_ctl_list("tiny.", count_cb, &n), 0, "list tiny.");
    EXPECT_EQ_U(n, 0, "a prefix ending in a dot lists nothing");
    n = 0;
    EXPECT_EQ_U(hak_ctl_list("tiny.class.1", count_cb, &n), 0, "list tiny.class.1");
    EXPECT_EQ_U(n, 11, "tiny.class.1 lists the 11 leaves of class 1, not class 10..19");
    EXPECT_EQ_U(hak_ctl_list("", NULL, NULL), EINVAL, "NULL callback");
}

TEST(ctl_fuzz_trailing_dot_is_not_a_name) {
    /* "Only complete leaf names are accepted": a name with a dot after the
     * last component names nothing. */
    static const char *const names[] = {"version.", "epoch.", "config.mode.",
                                        "tiny.class.3.stats.", "tiny.class.3.size.",
                                        "arena.0.decay_ms.", "thread.tcache.flush."};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        unsigned char buf[128];
        size_t len = 8;
        int rc = hak_ctl(names[i], buf, &len, NULL, 0);
        if (rc != ENOENT)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d, want ENOENT", names[i], rc);
        size_t mib[8], miblen = 8;
        rc = hak_ctl_nametomib(names[i], mib, &miblen);
        if (rc != ENOENT)
            hk_test_fail(__FILE__, __LINE__, "hak_ctl_nametomib(\"%s\") = %d, want ENOENT",
                         names[i], rc);
    }
}

/* ---------------- HAKMEM_CONF fuzzing in children ---------------- */

static int child_leaf_read(const char *name, int type, int writable, void *arg) {
    (void)writable;
    int *bad = arg;
    if (type == HAK_CTL_VOID) return 0;
    union {
        unsigned char bytes[128];
        uint64_t align;
    } buf;
    size_t len = type_size(type);
    int rc = hak_ctl(name, buf.bytes, &len, NULL, 0);
    if (rc != 0) *bad = 1;
    if (type == HAK_CTL_STRING && rc == 0) {
        const char *s;
        memcpy(&s, buf.bytes, sizeof s);
        if (s == NULL || strlen(s) > 4096) *bad = 1;
    }
    return 0;
}

/* Allocates in every tier, checks the mode and reads every leaf. */
static int child_fuzz(void) {
    void *keep[40];
    for (int i = 0; i < 40; i++) {
        size_t n = (size_t)1 << (i % 23);
        keep[i] = hak_malloc(n);
        if (keep[i] == NULL) return 2;
        memset(keep[i], i, n < 65536 ? n : 65536);
    }
    for (int i = 0; i < 40; i++) hak_free(keep[i]);
    const char *mode = NULL;
    size_t len = sizeof mode;
    if (hak_ctl("config.mode", &mode, &len, NULL, 0) != 0 || mode == NULL) return 3;
    static const char *const modes[] = {"minimal", "fast", "balanced", "learning", "research"};
    bool known = false;
    for (int i = 0; i < 5; i++) known |= strcmp(mode, modes[i]) == 0;
    if (!known) return 4;
    int bad = 0;
    if (hak_ctl_list(NULL, child_leaf_read, &bad) != 0 || bad) return 5;
    if (hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0) != 0) return 6;
    return 0;
}

__attribute__((constructor)) static void child_dispatch(void) {
    const char *role = hk_test_role();
    if (role && strcmp(role, "--child-fuzz") == 0) exit(child_fuzz());
}

/* Runs the fuzz child; returns its wait status, or -1.  Output is dropped. */
static int run_child(const char *mode, const char *conf) {
    static struct hk_test_child c;
    hk_test_run_self(&c, "--child-fuzz", "HAKMEM_MODE", mode, "HAKMEM_CONF", conf, (char *)NULL);
    return c.status;
}

static const char *const conf_keys[] = {
    "mode", "tcache", "bigcache", "decay", "stats_page", "narenas", "bigcache_max_mb",
    "decay_ms", "thp", "stats_print", "stats_print_opts", "stats_page_interval_ms",
    "stats_page_delay_ms", "background_thread", "bogus", "", "MODE", "narena",
};

static const char *const conf_values[] = {
    "0", "1", "-1", "2", "64", "65", "true", "false", "yes", "no", "on", "off", "minimal",
    "fast", "balanced", "learning", "research", "", "J", "gtmlh", "Jgtmlh", "abc",
    "999999999999999", "9999999999999999", "-999999999999999", "1048576", "1048577",
    "3600000", "3600001", "0000000000001", "-0", "0x10", "1.5", "1e3", " 1", "1 ",
    "JJJJJJJJJJJJJJJJ", "JJJJJJJJJJJJJJJ", ":", "::",
};

/* Appends a random configuration to out (NUL-terminated, no NUL inside). */
static void gen_conf(char *out, size_t cap) {
    size_t o = 0;
    unsigned items = 1 + (unsigned)below(8);
    out[0] = '\0';
    if (below(6) == 0) { /* raw bytes */
        size_t n = 1 + below(200);
        if (n >= cap) n = cap - 1;
        for (size_t i = 0; i < n; i++) out[i] = (char)(1 + below(255));
        out[n] = '\0';
        return;
    }
    for (unsigned it = 0; it < items; it++) {
        char item[96];
        const char *k = conf_keys[below(sizeof conf_keys / sizeof conf_keys[0])];
        const char *v = conf_values[below(sizeof conf_values / sizeof conf_values[0])];
        switch (below(8)) {
        case 0: snprintf(item, sizeof item, "%s", k); break;               /* no colon */
        case 1: snprintf(item, sizeof item, "%s:%s:%s", k, v, v); break;   /* two colons */
        case 2: snprintf(item, sizeof item, "%s:%llu", k, (unsigned long long)rnd()); break;
        case 3: snprintf(item, sizeof item, "%s=%s", k, v); break;
        default: snprintf(item, sizeof item, "%s:%s", k, v); break;
        }
        size_t il = strlen(item);
        if (o + il + 3 >= cap) break;
        if (it > 0) out[o++] = below(10) == 0 ? ';' : ',';
        if (below(10) == 0) out[o++] = ',';
        memcpy(out + o, item, il);
        o += il;
        out[o] = '\0';
    }
}

TEST(ctl_fuzz_random_conf_strings_never_crash) {
    /* Each child is a process start-up: ThreadSanitizer makes that slow. */
    enum { NCHILD = HK_TSAN ? 12 : 48 };
    unsigned crashed = 0;
    for (unsigned c = 0; c < NCHILD; c++) {
        char conf[512];
        gen_conf(conf, sizeof conf);
        const char *mode = NULL;
        char mode_buf[32];
        switch (below(6)) {
        case 0: mode = "minimal"; break;
        case 1: mode = "research"; break;
        case 2:
            for (int i = 0; i < 3; i++) mode_buf[i] = (char)(1 + below(255));
            mode_buf[3] = '\0';
            mode = mode_buf;
            break;
        default: break;
        }
        int st = run_child(mode, conf);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            crashed++;
            char p[200];
            printable(conf, p, sizeof p);
            if (crashed <= 5)
                hk_test_fail(__FILE__, __LINE__,
                             "HAKMEM_CONF=\"%s\" HAKMEM_MODE=%s: child status %#x (%s %d)", p,
                             mode ? "(set)" : "(unset)", (unsigned)st,
                             st >= 0 && WIFSIGNALED(st) ? "signal" : "exit",
                             st < 0 ? -1 : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    hk_test_log("%u children, %u failed", NCHILD, crashed);
}

TEST_MAIN()
