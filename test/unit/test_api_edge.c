/* Edge cases of the standard API, held to glibc's behaviour (doc/DESIGN.md
 * section 1.2; hakmem(3), STANDARD BEHAVIOUR): malloc(0), free(NULL), errno across free, sizes
 * near SIZE_MAX, calloc overflow, posix_memalign / aligned_alloc argument
 * errors, memalign / valloc / pvalloc. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Sizes no allocator can serve; each must fail cleanly, without an
 * overflow turning it into a small request. */
static const size_t impossible[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX - 15, SIZE_MAX - 16,
    SIZE_MAX - 4095, SIZE_MAX - 4096, SIZE_MAX - 2 * MiB, SIZE_MAX - 2 * MiB - 1,
    SIZE_MAX - 64 * MiB, SIZE_MAX / 2 + 1, SIZE_MAX / 2, SIZE_MAX / 2 - 4096,
    (size_t)1 << 62, (size_t)1 << 56, (size_t)1 << 48,
};
#define NIMPOSSIBLE (sizeof impossible / sizeof impossible[0])

/* Checks that n pointers are non-NULL and pairwise distinct. */
static void expect_unique(void **p, size_t n, const char *what) {
    uintptr_t *s = hak_malloc(n * sizeof *s);
    if (s == NULL) { hk_test_fail(__FILE__, __LINE__, "bookkeeping"); return; }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == NULL) {
            hk_test_fail(__FILE__, __LINE__, "%s: call %zu returned NULL", what, i);
            hak_free(s);
            return;
        }
        s[i] = (uintptr_t)p[i];
    }
    qsort(s, n, sizeof *s, hk_test_uptr_cmp);
    for (size_t i = 1; i < n; i++) {
        if (s[i] == s[i - 1]) {
            hk_test_fail(__FILE__, __LINE__, "%s: pointer %#lx returned twice",
                         what, (unsigned long)s[i]);
            break;
        }
    }
    hak_free(s);
}

TEST(malloc_zero_returns_unique_pointers) {
    enum { N = 2000 };
    void **p = hak_malloc(2 * N * sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    for (int i = 0; i < N; i++) {
        p[2 * i] = hak_malloc(0);
        p[2 * i + 1] = hak_malloc(1 + (size_t)i % 32); /* neighbours */
    }
    expect_unique(p, 2 * N, "malloc(0) among small blocks");
    for (int i = 0; i < 2 * N; i++) {
        if (p[i] == NULL) continue;
        size_t u = hak_malloc_usable_size(p[i]);
        memset(p[i], 0x5A, u); /* whatever is usable is ours to write */
    }
    for (int i = 0; i < 2 * N; i++) hak_free(p[i]);
    hak_free(p);
}

TEST(free_null_is_noop_and_keeps_errno) {
    for (int i = 0; i < 1000; i++) {
        errno = EILSEQ;
        hak_free(NULL);
        if (errno != EILSEQ) {
            hk_test_fail(__FILE__, __LINE__, "free(NULL) changed errno to %d", errno);
            return;
        }
    }
}

TEST(free_preserves_errno) {
    static const size_t sizes[] = { 0, 1, 8, 16, 100, 1024, 1025, 4096, 20000,
                                    32768, 32769, 100000, MiB, MiB + 1,
                                    3 * MiB, 16 * MiB };
    int bad = 0;
    for (int round = 0; round < 3 && bad < 5; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && bad < 5; i++) {
            void *p = hak_malloc(sizes[i]);
            REQUIRE_NOT_NULL(p, "hak_malloc");
            memset(p, 1, sizes[i]);
            errno = EILSEQ;
            hak_free(p);
            if (errno != EILSEQ) {
                hk_test_fail(__FILE__, __LINE__,
                             "free of a %zu-byte block set errno to %d",
                             sizes[i], errno);
                bad++;
            }
        }
    }
    /* Free enough blocks to go through the slow paths (cache flushes,
     * returning whole pages), checking errno after every one. */
    enum { N = 20000 };
    void **p = hak_malloc(N * sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    for (int i = 0; i < N; i++) {
        p[i] = hak_malloc(16 + (size_t)(i % 61) * 40);
        REQUIRE_NOT_NULL(p[i], "hak_malloc");
    }
    for (int i = 0; i < N; i++) {
        errno = ERANGE;
        hak_free(p[i]);
        if (errno != ERANGE && bad < 5) {
            hk_test_fail(__FILE__, __LINE__, "free #%d set errno to %d", i, errno);
            bad++;
        }
    }
    hak_free(p);
    /* Aligned blocks too. */
    void *q = hak_memalign(64 * KiB, 200 * KiB);
    REQUIRE_NOT_NULL(q, "memalign");
    errno = EILSEQ;
    hak_free(q);
    EXPECT_EQ_U(errno, EILSEQ, "free of a memalign block");
    q = hak_memalign(4 * MiB, 3 * MiB);
    REQUIRE_NOT_NULL(q, "memalign huge");
    errno = EILSEQ;
    hak_free(q);
    EXPECT_EQ_U(errno, EILSEQ, "free of a huge aligned block");
}

/* errno is ENOMEM right after a failed call (set before, to tell). */
#define EXPECT_ENOMEM_NULL(call, n)                                           \
    do {                                                                      \
        errno = 0;                                                            \
        void *r_ = (call);                                                    \
        int e_ = errno;                                                       \
        if (r_ != NULL) {                                                     \
            hk_test_fail(__FILE__, __LINE__, "%s with size %#zx: got %p",     \
                         #call, (size_t)(n), r_);                             \
            hak_free(r_);                                                     \
        } else if (e_ != ENOMEM) {                                            \
            hk_test_fail(__FILE__, __LINE__, "%s with size %#zx: errno %d",   \
                         #call, (size_t)(n), e_);                             \
        }                                                                     \
    } while (0)

TEST(malloc_near_size_max_fails_enomem) {
    for (size_t i = 0; i < NIMPOSSIBLE; i++) {
        size_t n = impossible[i];
        EXPECT_ENOMEM_NULL(hak_malloc(n), n);
    }
    /* The allocator still works afterwards. */
    void *p = hak_malloc(100);
    REQUIRE_NOT_NULL(p, "malloc after failures");
    hak_free(p);
}

TEST(other_apis_near_size_max_fail_enomem) {
    for (size_t i = 0; i < NIMPOSSIBLE; i++) {
        size_t n = impossible[i];
        EXPECT_ENOMEM_NULL(hak_calloc(1, n), n);
        EXPECT_ENOMEM_NULL(hak_calloc(n, 1), n);
        EXPECT_ENOMEM_NULL(hak_realloc(NULL, n), n);
        EXPECT_ENOMEM_NULL(hak_reallocarray(NULL, 1, n), n);
        EXPECT_ENOMEM_NULL(hak_memalign(16, n), n);
        EXPECT_ENOMEM_NULL(hak_memalign(4096, n), n);
        EXPECT_ENOMEM_NULL(hak_memalign(64 * MiB, n), n);
        EXPECT_ENOMEM_NULL(hak_aligned_alloc(64, n), n);
        EXPECT_ENOMEM_NULL(hak_aligned_alloc(2 * MiB, n), n);
        EXPECT_ENOMEM_NULL(hak_valloc(n), n);
        EXPECT_ENOMEM_NULL(hak_pvalloc(n), n);
        void *out = (void *)(uintptr_t)0x1234;
        int rc = hak_posix_memalign(&out, 256, n);
        if (rc != ENOMEM)
            hk_test_fail(__FILE__, __LINE__, "posix_memalign(256, %#zx) = %d", n, rc);
        if (rc == 0) hak_free(out);
        else if (out != (void *)(uintptr_t)0x1234)
            hk_test_fail(__FILE__, __LINE__,
                         "failed posix_memalign(256, %#zx) changed *out", n);
    }
}

TEST(calloc_overflow_fails_enomem) {
    static const size_t pairs[][2] = {
        { SIZE_MAX, 2 }, { 2, SIZE_MAX }, { SIZE_MAX, SIZE_MAX },
        { SIZE_MAX / 2 + 1, 2 },              /* wraps to 0 */
        { 2, SIZE_MAX / 2 + 1 },
        { (size_t)1 << 32, (size_t)1 << 32 }, /* wraps to 0 */
        { ((size_t)1 << 33) + 1, (size_t)1 << 31 }, /* wraps to 2 GiB */
        { ((size_t)1 << 60) + 1, 16 },        /* wraps to 16 */
        { 65537, SIZE_MAX / 65537 },          /* exactly SIZE_MAX */
        { SIZE_MAX / 16 + 1, 16 },            /* wraps to 0 */
        { SIZE_MAX / 24 + 1, 24 },            /* wraps to 8 */
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        void *p = hak_calloc(pairs[i][0], pairs[i][1]);
        int e = errno;
        if (p != NULL) {
            hk_test_fail(__FILE__, __LINE__, "calloc(%#zx, %#zx) returned %p",
                         pairs[i][0], pairs[i][1], p);
            hak_free(p);
        } else if (e != ENOMEM) {
            hk_test_fail(__FILE__, __LINE__, "calloc(%#zx, %#zx): errno %d",
                         pairs[i][0], pairs[i][1], e);
        }
    }
}

TEST(calloc_zero_returns_unique_pointers) {
    enum { N = 600 };
    void *p[3 * N];
    for (int i = 0; i < N; i++) {
        p[3 * i] = hak_calloc(0, 16);
        p[3 * i + 1] = hak_calloc(16, 0);
        p[3 * i + 2] = hak_calloc(0, SIZE_MAX); /* 0 bytes: no overflow */
    }
    expect_unique(p, 3 * N, "calloc with a zero factor");
    for (int i = 0; i < 3 * N; i++) hak_free(p[i]);
}

/* Power-of-two alignments too big to honour: no overflow in the
 * alignment arithmetic, just NULL + ENOMEM (posix_memalign: ENOMEM). */
TEST(huge_alignment_overflow_fails_enomem) {
    static const size_t al[] = { (size_t)1 << 63, (size_t)1 << 62, (size_t)1 << 56,
                                 (size_t)1 << 48 };
    static const size_t sizes[] = { 0, 1, 4096, 3 * MiB, SIZE_MAX / 4, SIZE_MAX - 4096 };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            size_t a = al[i], n = sizes[j];
            EXPECT_ENOMEM_NULL(hak_aligned_alloc(a, n), n);
            EXPECT_ENOMEM_NULL(hak_memalign(a, n), n);
            void *out = (void *)(uintptr_t)0x4321;
            int rc = hak_posix_memalign(&out, a, n);
            if (rc != ENOMEM)
                hk_test_fail(__FILE__, __LINE__, "posix_memalign(%#zx, %#zx) = %d", a, n, rc);
            if (rc == 0) hak_free(out);
            else if (out != (void *)(uintptr_t)0x4321)
                hk_test_fail(__FILE__, __LINE__, "failed posix_memalign changed *out");
        }
    }
    void *p = hak_malloc(64);
    REQUIRE_NOT_NULL(p, "malloc after failures");
    hak_free(p);
}

TEST(posix_memalign_bad_alignment_einval) {
    static const size_t bad[] = { 0, 1, 2, 4, 3, 5, 12, 24, 48, 96, 100,
                                  4097, 3 * 4096, SIZE_MAX, SIZE_MAX - 7,
                                  SIZE_MAX / 2, SIZE_MAX / 2 + 9,
                                  (size_t)3 << 20 };
    static const size_t sizes[] = { 0, 1, 100, 5000, 2 * MiB };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] == sizeof(void *)) continue; /* 4 on ILP32 is valid */
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            void *out = (void *)(uintptr_t)0xdead0;
            int rc = hak_posix_memalign(&out, bad[i], sizes[j]);
            if (rc != EINVAL)
                hk_test_fail(__FILE__, __LINE__,
                             "posix_memalign(align %#zx, %zu) = %d, not EINVAL",
                             bad[i], sizes[j], rc);
            if (rc == 0) {
                hak_free(out);
            } else if (out != (void *)(uintptr_t)0xdead0) {
                hk_test_fail(__FILE__, __LINE__,
                             "posix_memalign(align %#zx) changed *out on error",
                             bad[i]);
            }
        }
    }
    /* The smallest valid alignment works. */
    void *out = NULL;
    EXPECT_EQ_U(hak_posix_memalign(&out, sizeof(void *), 10), 0,
                "posix_memalign(sizeof(void *), 10)");
    hak_free(out);
}

TEST(posix_memalign_does_not_touch_errno_on_success) {
    void *out = NULL;
    errno = EILSEQ;
    int rc = hak_posix_memalign(&out, 64, 100);
    EXPECT_EQ_U(rc, 0, "posix_memalign(64, 100)");
    EXPECT_TRUE(out != NULL && (uintptr_t)out % 64 == 0, "aligned result");
    EXPECT_EQ_U(errno, EILSEQ, "errno untouched");
    hak_free(out);
}

TEST(aligned_alloc_bad_alignment_einval) {
    static const size_t bad[] = { 0, 3, 5, 6, 12, 24, 48, 100, 4095, 4097,
                                  (size_t)3 << 20, SIZE_MAX, SIZE_MAX / 2 };
    static const size_t sizes[] = { 0, 1, 16, 100, 4096, 3 * MiB };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            errno = 0;
            void *p = hak_aligned_alloc(bad[i], sizes[j]);
            int e = errno;
            if (p != NULL) {
                hk_test_fail(__FILE__, __LINE__, "aligned_alloc(%#zx, %zu) = %p",
                             bad[i], sizes[j], p);
                hak_free(p);
            } else if (e != EINVAL) {
                hk_test_fail(__FILE__, __LINE__,
                             "aligned_alloc(%#zx, %zu): errno %d, not EINVAL",
                             bad[i], sizes[j], e);
            }
        }
    }
}

TEST(aligned_alloc_size_not_multiple_is_accepted) {
    /* C17 allows it (DR 460); glibc accepts it. */
    static const size_t al[] = { 1, 2, 8, 16, 64, 4096, 65536 };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        void *p = hak_aligned_alloc(al[i], al[i] + 1);
        if (p == NULL) {
            hk_test_fail(__FILE__, __LINE__, "aligned_alloc(%zu, %zu) failed",
                         al[i], al[i] + 1);
            continue;
        }
        EXPECT_EQ_U((uintptr_t)p % al[i], 0, "alignment");
        EXPECT_GE_U(hak_malloc_usable_size(p), al[i] + 1, "usable size");
        memset(p, 7, al[i] + 1);
        hak_free(p);
    }
}

TEST(memalign_basic) {
    for (size_t a = 1; a <= 1 * MiB; a *= 2) {
        for (size_t n = 0; n <= 3000; n += 1000) {
            void *p = hak_memalign(a, n);
            if (p == NULL) {
                hk_test_fail(__FILE__, __LINE__, "memalign(%zu, %zu) failed", a, n);
                continue;
            }
            EXPECT_EQ_U((uintptr_t)p % a, 0, "memalign alignment");
            EXPECT_GE_U(hak_malloc_usable_size(p), n, "usable");
            memset(p, 3, n);
            hak_free(p);
        }
    }
}

/* glibc's memalign rounds an alignment that is not a power of two up to
 * the next one (and 0 means the default), instead of failing. */
TEST(memalign_non_power_of_two_rounds_up) {
    static const size_t al[][2] = { { 0, 1 }, { 3, 4 }, { 24, 32 }, { 48, 64 },
                                    { 100, 128 }, { 3000, 4096 },
                                    { 5000, 8192 }, { (size_t)3 << 20, (size_t)4 << 20 } };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        void *p = hak_memalign(al[i][0], 100);
        if (p == NULL) {
            hk_test_fail(__FILE__, __LINE__, "memalign(%zu, 100) failed (errno %d)",
                         al[i][0], errno);
            continue;
        }
        if ((uintptr_t)p % al[i][1] != 0)
            hk_test_fail(__FILE__, __LINE__, "memalign(%zu, 100) = %p, not %zu-aligned",
                         al[i][0], p, al[i][1]);
        memset(p, 1, 100);
        hak_free(p);
    }
    /* An alignment above SIZE_MAX/2+1 cannot be rounded: NULL. */
    errno = 0;
    void *p = hak_memalign(SIZE_MAX / 2 + 2, 100);
    EXPECT_NULL(p, "memalign(SIZE_MAX/2+2, 100)");
    EXPECT_TRUE(errno == EINVAL || errno == ENOMEM, "errno EINVAL (glibc) or ENOMEM");
    if (p) hak_free(p);
}

TEST(valloc_is_page_aligned) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 40000, MiB,
                                    3 * MiB + 5 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_valloc(sizes[i]);
        if (p == NULL) {
            hk_test_fail(__FILE__, __LINE__, "valloc(%zu) failed", sizes[i]);
            continue;
        }
        EXPECT_EQ_U((uintptr_t)p % pg, 0, "valloc page alignment");
        EXPECT_GE_U(hak_malloc_usable_size(p), sizes[i], "valloc usable");
        memset(p, 9, sizes[i]);
        hak_free(p);
    }
}

TEST(pvalloc_rounds_size_to_page) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 8191, 40000,
                                    MiB - 1, MiB + 1, 3 * MiB + 5 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        size_t rounded = (n + pg - 1) / pg * pg;
        void *p = hak_pvalloc(n);
        if (p == NULL) {
            hk_test_fail(__FILE__, __LINE__, "pvalloc(%zu) failed", n);
            continue;
        }
        EXPECT_EQ_U((uintptr_t)p % pg, 0, "pvalloc page alignment");
        size_t u = hak_malloc_usable_size(p);
        if (u < rounded)
            hk_test_fail(__FILE__, __LINE__, "pvalloc(%zu): usable %zu < %zu",
                         n, u, rounded);
        memset(p, 9, u < rounded ? n : rounded);
        hak_free(p);
    }
    void *p = hak_pvalloc(0);
    REQUIRE_NOT_NULL(p, "pvalloc(0)");
    EXPECT_EQ_U((uintptr_t)p % pg, 0, "pvalloc(0) page alignment");
    hak_free(p);
}

/* Only when the library replaces malloc: the standard names are the same
 * allocator as the hak_ names, so blocks may cross between them. */
TEST(standard_names_are_ours) {
    SKIP_IF(HAKMEM_MALLOC_PREFIX[0] != '\0',
            "standard names are prefixed in this build");
    for (size_t n = 1; n <= 3 * MiB; n = n * 3 + 1) {
        char *p = malloc(n);
        REQUIRE_NOT_NULL(p, "malloc");
        size_t u = hak_malloc_usable_size(p);
        if (u < n)
            hk_test_fail(__FILE__, __LINE__,
                         "hak_malloc_usable_size(malloc(%zu)) = %zu: not our block",
                         n, u);
        memset(p, 1, n);
        hak_free(p);
        p = hak_malloc(n);
        REQUIRE_NOT_NULL(p, "hak_malloc");
        memset(p, 2, n);
        p = realloc(p, n + 10);
        REQUIRE_NOT_NULL(p, "realloc of a hak_malloc block");
        EXPECT_TRUE(p[0] == 2 && p[n - 1] == 2, "contents kept");
        free(p);
    }
    char *s = strdup("strdup goes through malloc");
    REQUIRE_NOT_NULL(s, "strdup");
    EXPECT_GE_U(hak_malloc_usable_size(s), strlen(s) + 1, "strdup block is ours");
    hak_free(s);
}

/* malloc_usable_size answers the same for a block whatever thread asks:
 * the owner (whose heap knows the block's segment: the fast case), another
 * thread, and anyone after the owner exited; and 0 for what is not ours. */
#define NUSABLE 40
struct usable_blocks {
    void *p[NUSABLE];
    size_t n[NUSABLE], owner_usable[NUSABLE];
};

static size_t usable_request(unsigned i) { return (size_t)1 + ((size_t)3 << i) / 4 + i * 7; }

static void *usable_owner(void *arg) {
    struct usable_blocks *b = arg;
    for (unsigned i = 0; i < NUSABLE; i++) {
        b->n[i] = usable_request(i % 24);
        void *neighbour = hak_malloc(b->n[i]);
        b->p[i] = hak_malloc(b->n[i]);
        hak_free(neighbour); /* the heap now knows the segment */
        if (b->p[i] == NULL) return NULL;
        b->owner_usable[i] = hak_malloc_usable_size(b->p[i]);
        memset(b->p[i], 0x33, b->owner_usable[i]);
    }
    return b;
}

TEST(usable_size_is_the_same_from_any_thread) {
    static struct usable_blocks b;
    pthread_t t;
    void *ret = NULL;
    REQUIRE_EQ_I(pthread_create(&t, NULL, usable_owner, &b), 0, "pthread_create");
    REQUIRE_EQ_I(pthread_join(t, &ret), 0, "pthread_join");
    REQUIRE_NOT_NULL(ret, "the owner's mallocs");
    for (unsigned i = 0; i < NUSABLE; i++) {
        EXPECT_GE_U(b.owner_usable[i], b.n[i], "the owner's answer covers the request");
        EXPECT_EQ_U(hak_malloc_usable_size(b.p[i]), b.owner_usable[i],
                    "another thread's answer, the owner gone");
        void *mine = hak_malloc(b.n[i]);
        REQUIRE_NOT_NULL(mine, "malloc");
        hak_free(hak_malloc(b.n[i]));
        EXPECT_EQ_U(hak_malloc_usable_size(mine), b.owner_usable[i], "the same size class here");
        hak_free(mine);
        hak_free(b.p[i]);
    }
    static long not_a_block[4];
    long on_stack[4] = {0};
    EXPECT_EQ_U(hak_malloc_usable_size(&not_a_block[1]), 0, "a static object");
    EXPECT_EQ_U(hak_malloc_usable_size(&on_stack[1]), 0, "a stack object");
    EXPECT_EQ_U(hak_malloc_usable_size(NULL), 0, "NULL");
}

TEST_MAIN()
