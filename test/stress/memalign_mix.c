/*
 * Aligned allocation mixed with everything else: posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc at alignments from 8 bytes to
 * 2 MiB and sizes over every tier, interleaved with malloc, resized with
 * realloc and freed by whichever thread comes across them.
 */
#include "harness.h"
#include "stress_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

enum { VIA_MALLOC, VIA_POSIX_MEMALIGN, VIA_ALIGNED_ALLOC, VIA_MEMALIGN,
       VIA_VALLOC, VIA_PVALLOC, VIA_N };
static const char *const via_name[VIA_N] = {
    "malloc", "posix_memalign", "aligned_alloc", "memalign", "valloc",
    "pvalloc" };

struct ablock {
    unsigned char *p;
    size_t n;     /* bytes the pattern covers */
    size_t align;
    int via;
    uint64_t tag;
};

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Alignment: mostly 16..4096, sometimes up to 64 KiB, rarely 1-2 MiB. */
static size_t rand_align(hk_rng *r) {
    size_t k = hk_below(r, 100);
    if (k < 70) return (size_t)8 << hk_below(r, 10);   /* 8 .. 4096 */
    if (k < 97) return (size_t)8192 << hk_below(r, 4); /* 8K .. 64K */
    return (size_t)1 << (20 + hk_below(r, 2));         /* 1M, 2M */
}

/* Allocates through one of the six entry points; checks alignment, usable
 * size and the per-function guarantees.  Returns NULL (after recording why)
 * on any failure. */
static unsigned char *aligned_new(hk_errs *e, hk_rng *r, size_t *np,
                                  size_t *alignp, int *viap) {
    int via = (int)hk_below(r, VIA_N + 2);
    if (via >= VIA_N) via = VIA_POSIX_MEMALIGN; /* the most used one */
    size_t align = rand_align(r), n = *np, need = n;
    void *p = NULL;
    switch (via) {
    case VIA_MALLOC:
        align = n >= 16 ? 16 : 8;
        p = hak_malloc(n);
        break;
    case VIA_POSIX_MEMALIGN: {
        if (align < sizeof(void *)) align = sizeof(void *);
        int rc = hak_posix_memalign(&p, align, n);
        if (rc != 0) {
            HK_ERR(e, "posix_memalign(%zu, %zu) = %d", align, n, rc);
            return NULL;
        }
        break;
    }
    case VIA_ALIGNED_ALLOC:
        p = hak_aligned_alloc(align, n);
        break;
    case VIA_MEMALIGN:
        p = hak_memalign(align, n);
        break;
    case VIA_VALLOC:
        align = page_size();
        p = hak_valloc(n);
        break;
    case VIA_PVALLOC:
        align = page_size();
        /* pvalloc rounds the size up to a page (glibc: 0 stays 0) */
        need = (n + align - 1) & ~(align - 1);
        p = hak_pvalloc(n);
        break;
    }
    if (p == NULL) {
        HK_ERR(e, "%s(align %zu, %zu) returned NULL (errno %d)", via_name[via],
               align, n, errno);
        return NULL;
    }
    if ((uintptr_t)p & (align - 1)) {
        HK_ERR(e, "%s(align %zu, %zu) = %p misaligned", via_name[via], align,
               n, p);
        hak_free(p);
        return NULL;
    }
    size_t u = hak_malloc_usable_size(p);
    if (u < need) {
        HK_ERR(e, "%s(align %zu, %zu) = %p: usable size %zu < %zu",
               via_name[via], align, n, p, u, need);
        hak_free(p);
        return NULL;
    }
    *np = need;
    *alignp = align;
    *viap = via;
    return p;
}

/* ---- memalign_mixture_threads: a shared table of slots, striped locks;
 * each operation frees (after checking) or fills a slot, so blocks are
 * freed by whatever thread comes next, not the one that allocated them ---- */

#define AM_SLOTS 512
#define AM_STRIPES 64

struct am_shared {
    struct ablock slots[AM_SLOTS];
    pthread_mutex_t mu[AM_STRIPES];
    hk_errs errs;
    atomic_ullong allocs, frees, by_via[VIA_N];
};

struct am_arg {
    unsigned id, iters;
    struct am_shared *sh;
};

static void *am_worker(void *v) {
    struct am_arg *a = v;
    struct am_shared *sh = a->sh;
    hk_rng r;
    hk_rng_seed(&r, 0xA000 + a->id);
    for (unsigned it = 0; it < a->iters; it++) {
        unsigned k = (unsigned)hk_below(&r, AM_SLOTS);
        struct ablock *b = &sh->slots[k];
        pthread_mutex_lock(&sh->mu[k % AM_STRIPES]);
        if (b->p) {
            int ok = hk_verify(&sh->errs, "aligned block", b->p, b->n, b->tag);
            if (ok && hk_below(&r, 4) == 0) {
                /* realloc an aligned block: contents must survive (the
                 * alignment need not) */
                size_t m = hk_random_size(&r, 0);
                if (m == 0) m = 1;
                errno = 0;
                unsigned char *q = hak_realloc(b->p, m);
                if (q == NULL) {
                    HK_ERR(&sh->errs, "realloc(%p, %zu) of a block from "
                           "%s(align %zu, %zu) returned NULL (errno %d)",
                           (void *)b->p, m, via_name[b->via], b->align, b->n,
                           errno);
                    hak_free(b->p); /* a failed realloc leaves it intact */
                    atomic_fetch_add(&sh->frees, 1);
                    b->p = NULL;
                    pthread_mutex_unlock(&sh->mu[k % AM_STRIPES]);
                    continue;
                }
                if (hk_check_new(&sh->errs, "realloc of aligned", q, m)) {
                    size_t keep = hk_min(b->n, m);
                    if (hk_check_prefix(q, b->n, keep, b->tag) != keep)
                        HK_ERR(&sh->errs, "realloc of a %zu-aligned block "
                               "%zu -> %zu lost contents", b->align, b->n, m);
                    b->p = q;
                    b->n = m;
                    b->align = 16;
                    b->via = VIA_MALLOC;
                    hk_fill(q, m, b->tag);
                    pthread_mutex_unlock(&sh->mu[k % AM_STRIPES]);
                    continue;
                }
                if (q == NULL) hak_free(b->p);
                b->p = NULL;
                pthread_mutex_unlock(&sh->mu[k % AM_STRIPES]);
                continue;
            }
            if (ok) {
                hak_free(b->p);
                atomic_fetch_add(&sh->frees, 1);
            }
            b->p = NULL;
        } else {
            size_t n = hk_random_size(&r, hk_below(&r, 4) == 0), align;
            int via;
            unsigned char *p = aligned_new(&sh->errs, &r, &n, &align, &via);
            if (p) {
                b->p = p;
                b->n = n;
                b->align = align;
                b->via = via;
                b->tag = hk_mix64(((uint64_t)a->id << 40) | it);
                hk_fill(p, n, b->tag);
                atomic_fetch_add(&sh->allocs, 1);
                atomic_fetch_add(&sh->by_via[via], 1);
            }
        }
        pthread_mutex_unlock(&sh->mu[k % AM_STRIPES]);
    }
    return NULL;
}

TEST(memalign_mixture_threads) {
    unsigned nt = hk_test_threads();
    unsigned iters = hk_iters(8000);
    struct am_shared *sh = calloc(1, sizeof *sh);
    REQUIRE_NOT_NULL(sh, "shared table");
    hk_errs_init(&sh->errs);
    for (unsigned i = 0; i < AM_STRIPES; i++) pthread_mutex_init(&sh->mu[i], NULL);
    pthread_t th[nt];
    struct am_arg args[nt];
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct am_arg){ .id = i, .iters = iters, .sh = sh };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, am_worker, &args[i]), 0,
                     "pthread_create");
    }
    for (unsigned i = 0; i < nt; i++) pthread_join(th[i], NULL);
    for (unsigned k = 0; k < AM_SLOTS; k++) {
        struct ablock *b = &sh->slots[k];
        if (b->p == NULL) continue;
        if (hk_verify(&sh->errs, "aligned final", b->p, b->n, b->tag))
            atomic_fetch_add(&sh->frees, 1);
        hak_free(b->p);
    }
    HK_ERRS_REPORT(&sh->errs);
    EXPECT_EQ_U(atomic_load(&sh->allocs), atomic_load(&sh->frees),
                "every aligned block verified and freed");
    for (int v = 0; v < VIA_N; v++)
        EXPECT_GE_U(atomic_load(&sh->by_via[v]), 1, via_name[v]);
    for (unsigned i = 0; i < AM_STRIPES; i++) pthread_mutex_destroy(&sh->mu[i]);
    free(sh);
}

/* ---- memalign_small_many: thousands of small blocks at alignments
 * 16..4096 live at once (the case that tempts an allocator to carve aligned
 * blocks out of a slab wrongly), all filled before any is checked, so any
 * overlap shows ---- */

struct sm_arg {
    unsigned id, rounds;
    hk_errs *errs;
    uint64_t verified;
};

#define SM_N 1500

static void *sm_worker(void *v) {
    struct sm_arg *a = v;
    struct ablock *b = calloc(SM_N, sizeof *b);
    hk_rng r;
    if (b == NULL) {
        HK_ERR(a->errs, "calloc for the block table failed");
        return NULL;
    }
    hk_rng_seed(&r, 0xA500 + a->id);
    for (unsigned round = 0; round < a->rounds; round++) {
        for (unsigned i = 0; i < SM_N; i++) {
            size_t align = (size_t)16 << hk_below(&r, 9); /* 16..4096 */
            size_t n = hk_range(&r, 1, hk_below(&r, 4) ? 256 : 2048);
            void *p = NULL;
            int rc = (i & 1) ? hak_posix_memalign(&p, align, n)
                             : ((p = hak_aligned_alloc(align, n)) ? 0 : errno);
            b[i].p = NULL;
            if (rc != 0 || p == NULL) {
                HK_ERR(a->errs, "aligned allocation (%zu, %zu) failed: %d",
                       align, n, rc);
                continue;
            }
            if ((uintptr_t)p & (align - 1)) {
                HK_ERR(a->errs, "(%zu, %zu) = %p misaligned", align, n, p);
                hak_free(p);
                continue;
            }
            if (hak_malloc_usable_size(p) < n) {
                HK_ERR(a->errs, "(%zu, %zu) = %p: usable size %zu", align, n,
                       p, hak_malloc_usable_size(p));
                hak_free(p);
                continue;
            }
            b[i] = (struct ablock){ .p = p, .n = n, .align = align,
                .tag = hk_mix64(((uint64_t)a->id << 40) | (round << 16) | i) };
            hk_fill(p, n, b[i].tag);
        }
        for (unsigned i = 0; i < SM_N; i++) {
            unsigned j = (i * 7919u) % SM_N; /* scattered order */
            if (b[j].p == NULL) continue;
            if (hk_verify(a->errs, "small aligned", b[j].p, b[j].n, b[j].tag))
                a->verified++;
            hak_free(b[j].p);
        }
    }
    free(b);
    return NULL;
}

TEST(memalign_small_many) {
    unsigned nt = hk_test_threads();
    unsigned rounds = hk_iters(20);
    pthread_t th[nt];
    struct sm_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct sm_arg){ .id = i, .rounds = rounds, .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, sm_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t verified = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        verified += args[i].verified;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(verified, (uint64_t)nt * rounds * SM_N,
                "every small aligned block verified");
}

/* ---- memalign_edge_matrix: every entry point x alignments from 8 bytes to
 * 8 MiB x sizes at the tier edges (0 included), each block checked, resized
 * up and down with realloc, and freed; all threads at once ---- */

static const size_t em_aligns[] = {
    8, 16, 32, 64, 256, 4096, 8192, 65536, (size_t)1 << 20, (size_t)2 << 20,
    (size_t)4 << 20, (size_t)8 << 20,
};
static const size_t em_sizes[] = {
    0, 1, 8, 16, 100, 1024, 1025, 4096, 32768, 32769, (size_t)1 << 20,
    ((size_t)1 << 20) + 1, (size_t)3 << 20,
};
static const size_t em_resize[] = { 1, 200, 5000, 100000, (size_t)2 << 20 };

#define NELEM(a) (sizeof (a) / sizeof (a)[0])

struct em_arg {
    unsigned id;
    hk_errs *errs;
    uint64_t checked, attempted;
};

/* One allocation through entry point via; NULL on failure (recorded). */
static void *em_alloc(hk_errs *e, int via, size_t align, size_t n) {
    void *p = NULL;
    int rc = 0;
    errno = 0;
    switch (via) {
    case VIA_POSIX_MEMALIGN:
        rc = hak_posix_memalign(&p, align, n);
        break;
    case VIA_ALIGNED_ALLOC: p = hak_aligned_alloc(align, n); break;
    case VIA_MEMALIGN: p = hak_memalign(align, n); break;
    default: p = hak_malloc(n); break;
    }
    if (rc != 0 || p == NULL) {
        HK_ERR(e, "%s(align %zu, size %zu) failed: rc %d errno %d",
               via_name[via], align, n, rc, errno);
        return NULL;
    }
    return p;
}

static void *em_worker(void *v) {
    struct em_arg *a = v;
    static const int vias[] = { VIA_POSIX_MEMALIGN, VIA_ALIGNED_ALLOC,
                                VIA_MEMALIGN };
    for (size_t vi = 0; vi < NELEM(vias); vi++)
    for (size_t ai = 0; ai < NELEM(em_aligns); ai++)
    for (size_t si = 0; si < NELEM(em_sizes); si++) {
        int via = vias[(vi + a->id) % NELEM(vias)];
        size_t align = em_aligns[ai], n = em_sizes[si];
        if (via == VIA_POSIX_MEMALIGN && align < sizeof(void *)) continue;
        a->attempted++;
        unsigned char *p = em_alloc(a->errs, via, align, n);
        if (p == NULL) continue;
        if ((uintptr_t)p & (align - 1)) {
            HK_ERR(a->errs, "%s(align %zu, size %zu) = %p misaligned",
                   via_name[via], align, n, (void *)p);
            hak_free(p);
            continue;
        }
        size_t u = hak_malloc_usable_size(p);
        if (u < n) {
            HK_ERR(a->errs, "%s(align %zu, size %zu) = %p: usable size %zu",
                   via_name[via], align, n, (void *)p, u);
            hak_free(p);
            continue;
        }
        uint64_t tag = hk_mix64(((uint64_t)a->id << 32) | (vi << 16) |
                                (ai << 8) | si);
        hk_fill(p, n, tag);
        /* resize to a size picked from the table, check, and free */
        size_t m = em_resize[(ai + si + a->id) % NELEM(em_resize)];
        errno = 0;
        unsigned char *q = hak_realloc(p, m);
        if (q == NULL) {
            HK_ERR(a->errs, "realloc(%p, %zu) of a block from %s(align %zu, "
                   "size %zu) returned NULL (errno %d)", (void *)p, m,
                   via_name[via], align, n, errno);
            hak_free(p);
            continue;
        }
        size_t keep = hk_min(n, m);
        if (hk_check_prefix(q, n, keep, tag) != keep)
            HK_ERR(a->errs, "realloc of a block from %s(align %zu, size %zu) "
                   "to %zu lost contents", via_name[via], align, n, m);
        else if (hak_malloc_usable_size(q) < m)
            HK_ERR(a->errs, "realloc to %zu: usable size %zu", m,
                   hak_malloc_usable_size(q));
        else
            a->checked++;
        hak_free(q);
    }
    return NULL;
}

TEST(memalign_edge_matrix) {
    /* the matrix is the point here, not the thread count */
    unsigned nt = hk_test_threads() < 4 ? hk_test_threads() : 4;
    pthread_t th[nt];
    struct em_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct em_arg){ .id = i, .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, em_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t checked = 0, attempted = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        checked += args[i].checked;
        attempted += args[i].attempted;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(checked, attempted, "every combination checked");
    EXPECT_GE_U(attempted, (uint64_t)nt * 400, "the matrix ran");
}

TEST_MAIN()
