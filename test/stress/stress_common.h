/*
 * Helpers shared by the stress tests (header-only: the Makefile builds each
 * test/stress/NAME.c on its own with the harness).  Everything goes through the
 * hak_ names so the tests also run in sanitizer builds, where the standard
 * names are prefixed.
 *
 * Blocks carry a pattern derived from a 64-bit tag: the 8-byte word at
 * offset o holds tag ^ (o * K), the trailing partial word the low bytes of
 * the same formula.  Blocks up to HK_DENSE_MAX are filled completely; larger
 * ones get their first and last 4 KiB and one word per 4 KiB page in between
 * (enough to catch overlapping or recycled-while-live blocks without paying
 * for megabytes of memset in every iteration).
 */
#ifndef HK_STRESS_COMMON_H
#define HK_STRESS_COMMON_H

#include <hakmem/hakmem.h>

#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HK_TINY_MAX ((size_t)1024)
#define HK_MID_MAX ((size_t)32 << 10)
#define HK_LARGE_MAX ((size_t)1 << 20)
#define HK_HUGE_MAX ((size_t)4 << 20)
#define HK_DENSE_MAX ((size_t)64 << 10)
#define HK_EDGE ((size_t)4096)

/* Iteration counts: base * HAKMEM_TEST_SCALE, divided by 4 under TSan, which
 * runs these 5-10x slower (each binary must stay well under 20 s in
 * `make check` on a 2-core machine, sanitizer builds included). */
#if HK_TSAN
#define HK_SAN_DIV 4u
#else
#define HK_SAN_DIV 1u
#endif

/* Divisor of the storms' work in sanitizer builds (make check must stay
 * well under 20 s a binary): 2 under ASan (or SANITIZER set), 8 under TSan. */
static inline unsigned hk_storm_san_div(void) {
#if defined(__SANITIZE_ADDRESS__)
    unsigned d = 2;
#else
    unsigned d = 1;
#endif
    if (HK_TSAN) d = 8;
    const char *s = getenv("SANITIZER");
    if (d == 1 && s != NULL && *s != '\0' && strcmp(s, "no") != 0) d = 2;
    return d;
}

/* base at scale 1, times HAKMEM_TEST_SCALE, over hk_storm_san_div(); >= 1 */
static inline unsigned hk_storm_scaled(unsigned base) {
    unsigned long long n = (unsigned long long)base * hk_test_scale() / hk_storm_san_div();
    return n ? (unsigned)n : 1;
}

static inline unsigned hk_iters(unsigned base) {
    unsigned long long n = (unsigned long long)base * hk_test_scale() / HK_SAN_DIV;
    return n ? (unsigned)n : 1;
}

/* ---- random numbers: splitmix64 seeding, xorshift64* stream ---- */

typedef struct { uint64_t s; } hk_rng;

static inline uint64_t hk_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static inline void hk_rng_seed(hk_rng *r, uint64_t seed) {
    r->s = hk_mix64(seed) | 1;
}

static inline uint64_t hk_rand(hk_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n); n > 0. */
static inline size_t hk_below(hk_rng *r, size_t n) {
    return (size_t)((hk_rand(r) >> 11) % n);
}

/* Uniform in [lo, hi]. */
static inline size_t hk_range(hk_rng *r, size_t lo, size_t hi) {
    return lo + hk_below(r, hi - lo + 1);
}

/* A size near a tier boundary: the boundary itself or up to 16 bytes off. */
static inline size_t hk_boundary_size(hk_rng *r) {
    static const size_t edges[] = { 0, 8, 16, 1024, 32 << 10, 1 << 20,
                                    2 << 20 };
    size_t e = edges[hk_below(r, sizeof edges / sizeof edges[0])];
    size_t d = hk_below(r, 17);
    if (hk_rand(r) & 1) return e + d;
    return e >= d ? e - d : e;
}

/* Mixed sizes over every tier, per thousand: tiny 700, mid 220, large 70,
 * huge 8, boundary sizes the rest.  huge_ok = 0 keeps it at or below 1 MiB. */
static inline size_t hk_random_size(hk_rng *r, int huge_ok) {
    size_t k = hk_below(r, 1000);
    if (k < 700) {
        /* favour the small end the way real programs do */
        return (k & 1) ? hk_range(r, 1, 128) : hk_range(r, 0, HK_TINY_MAX);
    }
    if (k < 920) return hk_range(r, HK_TINY_MAX + 1, HK_MID_MAX);
    if (k < 990) return hk_range(r, HK_MID_MAX + 1, HK_LARGE_MAX);
    if (k < 998) {
        if (huge_ok) return hk_range(r, HK_LARGE_MAX + 1, HK_HUGE_MAX);
        return hk_range(r, HK_MID_MAX + 1, HK_LARGE_MAX);
    }
    size_t s = hk_boundary_size(r);
    if (!huge_ok && s > HK_LARGE_MAX) s = HK_LARGE_MAX;
    return s;
}

/* ---- patterns ---- */

static inline uint64_t hk_word(uint64_t tag, size_t off) {
    return tag ^ ((uint64_t)off * 0x9E3779B97F4A7C15ULL);
}

static inline void hk_fill_range(unsigned char *p, size_t from, size_t to,
                                 uint64_t tag) {
    size_t o = from;
    for (; o + 8 <= to; o += 8) {
        uint64_t w = hk_word(tag, o);
        memcpy(p + o, &w, 8);
    }
    if (o < to) {
        uint64_t w = hk_word(tag, o);
        memcpy(p + o, &w, to - o);
    }
}

/* Returns the first offset in [from, to) that differs, or to. */
static inline size_t hk_check_range(const unsigned char *p, size_t from,
                                    size_t to, uint64_t tag) {
    size_t o = from;
    for (; o + 8 <= to; o += 8) {
        uint64_t w = hk_word(tag, o), got;
        memcpy(&got, p + o, 8);
        if (got != w) {
            for (size_t i = 0; i < 8; i++)
                if (((const unsigned char *)&w)[i] != p[o + i]) return o + i;
        }
    }
    if (o < to) {
        uint64_t w = hk_word(tag, o);
        for (size_t i = 0; o + i < to; i++)
            if (((const unsigned char *)&w)[i] != p[o + i]) return o + i;
    }
    return to;
}

/* Writes the pattern of an n-byte block (see the top of this file). */
static inline void hk_fill(void *ptr, size_t n, uint64_t tag) {
    unsigned char *p = ptr;
    if (n <= HK_DENSE_MAX) {
        hk_fill_range(p, 0, n, tag);
        return;
    }
    size_t tail = (n - HK_EDGE) & ~(size_t)7;
    hk_fill_range(p, 0, HK_EDGE, tag);
    for (size_t o = HK_EDGE; o < tail; o += 4096) hk_fill_range(p, o, o + 8, tag);
    hk_fill_range(p, tail, n, tag);
}

static inline size_t hk_min(size_t a, size_t b) { return a < b ? a : b; }

/* Checks what hk_fill(p, n, tag) wrote, restricted to [0, limit) (a block
 * that realloc shrank keeps only a prefix); returns the first bad offset, or
 * limit when all is well. */
static inline size_t hk_check_prefix(const void *ptr, size_t n, size_t limit,
                                     uint64_t tag) {
    const unsigned char *p = ptr;
    size_t bad, e;
    if (limit > n) limit = n;
    if (n <= HK_DENSE_MAX) return hk_check_range(p, 0, limit, tag);
    size_t tail = (n - HK_EDGE) & ~(size_t)7;
    e = hk_min(HK_EDGE, limit);
    if ((bad = hk_check_range(p, 0, e, tag)) != e) return bad;
    for (size_t o = HK_EDGE; o < tail && o < limit; o += 4096) {
        e = hk_min(o + 8, limit);
        if ((bad = hk_check_range(p, o, e, tag)) != e) return bad;
    }
    if (tail < limit && (bad = hk_check_range(p, tail, limit, tag)) != limit)
        return bad;
    return limit;
}

static inline size_t hk_check(const void *p, size_t n, uint64_t tag) {
    return hk_check_prefix(p, n, n, tag);
}

/* Alignment rule of the design: 16 bytes from 16 bytes up, else 8. */
static inline int hk_aligned_ok(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    return n >= 16 ? (a & 15) == 0 : (a & 7) == 0;
}

/* ---- a reusable start barrier (pthread_barrier_t is optional in POSIX
 * and awkward under some sanitizers; this one is a mutex and a condvar) ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned n, waiting, gen;
} hk_barrier;

static inline void hk_barrier_init(hk_barrier *b, unsigned n) {
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->n = n;
    b->waiting = 0;
    b->gen = 0;
}

static inline void hk_barrier_wait(hk_barrier *b) {
    pthread_mutex_lock(&b->mu);
    unsigned gen = b->gen;
    if (++b->waiting == b->n) {
        b->waiting = 0;
        b->gen++;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (gen == b->gen) pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
}

static inline void hk_barrier_destroy(hk_barrier *b) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

/* ---- failure recording from worker threads ----
 * The harness's EXPECT_* are meant for the test's own thread; workers record
 * the first failure here and the test reports it after join. */

typedef struct {
    atomic_uint nfail;
    pthread_mutex_t mu;
    char first[256];
} hk_errs;

static inline void hk_errs_init(hk_errs *e) {
    atomic_init(&e->nfail, 0);
    pthread_mutex_init(&e->mu, NULL);
    e->first[0] = '\0';
}

#include <stdio.h>
#define HK_ERR(e, ...)                                                    \
    do {                                                                  \
        if (atomic_fetch_add(&(e)->nfail, 1) == 0) {                      \
            pthread_mutex_lock(&(e)->mu);                                 \
            snprintf((e)->first, sizeof (e)->first, __VA_ARGS__);         \
            pthread_mutex_unlock(&(e)->mu);                               \
        }                                                                 \
    } while (0)

/* Reports the recorded failures (if any) as one harness failure. */
#define HK_ERRS_REPORT(e)                                                 \
    do {                                                                  \
        unsigned hk_n_ = atomic_load(&(e)->nfail);                        \
        pthread_mutex_lock(&(e)->mu);                                     \
        if (hk_n_) hk_test_fail(__FILE__, __LINE__, "%u failures, first: %s", \
                                hk_n_, (e)->first);                       \
        pthread_mutex_unlock(&(e)->mu);                                   \
        pthread_mutex_destroy(&(e)->mu);                                  \
    } while (0)

/* Verify block b (size n, tag) and record a failure naming where. */
static inline int hk_verify(hk_errs *e, const char *where, const void *p,
                            size_t n, uint64_t tag) {
    size_t bad = hk_check(p, n, tag);
    if (bad != n) {
        const unsigned char *q = p;
        HK_ERR(e, "%s: block %p size %zu corrupted at offset %zu (byte 0x%02x)",
               where, p, n, bad, q[bad]);
        return 0;
    }
    return 1;
}

/* Allocation-side checks shared by every test: non-NULL, aligned, usable
 * size at least the request. */
static inline int hk_check_new(hk_errs *e, const char *where, const void *p,
                               size_t n) {
    if (p == NULL) {
        HK_ERR(e, "%s: allocation of %zu bytes returned NULL (errno %d)",
               where, n, errno);
        return 0;
    }
    if (!hk_aligned_ok(p, n)) {
        HK_ERR(e, "%s: block %p of %zu bytes misaligned", where, p, n);
        return 0;
    }
    size_t u = hak_malloc_usable_size(p);
    if (u < n) {
        HK_ERR(e, "%s: usable size %zu < requested %zu (%p)", where, u, n, p);
        return 0;
    }
    return 1;
}

#endif
