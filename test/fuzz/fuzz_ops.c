/*
 * Fuzz target: an interpreter of allocator operation sequences, through the
 * hak_ API (so it runs the same in sanitizer builds, where the standard
 * names are prefixed).  32 slots hold live blocks with a known pattern;
 * every operation checks what the API promises:
 *   - a block is non-NULL (sizes up to a few MiB), aligned to 16 bytes from
 *     16 bytes up (or to the alignment asked), with usable size >= request;
 *   - calloc memory reads zero; realloc keeps the common prefix;
 *   - impossible sizes (near SIZE_MAX) fail with NULL and ENOMEM, bad
 *     alignments with EINVAL, and a failed realloc leaves the block intact;
 *   - free and realloc(p, 0) keep errno; contents survive everything else
 *     (frees of other blocks, a free from another thread, cache flushes,
 *     purges, BigCache and mode switches).
 * Any broken promise aborts.
 *
 * Input: a sequence of 4-byte instructions OP SLOT ARG1 ARG2.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

#define NSLOTS 32
#define CHECK_BYTES 4096 /* head and tail bytes of a block that carry the pattern */

struct slot {
    unsigned char *p;
    size_t n;
    uint8_t tag;
};
static struct slot slots[NSLOTS];

/* Block contents: the head (up to CHECK_BYTES) is pattern[tag ...], the
 * last 64 bytes of a block longer than CHECK_BYTES + 64 (so that the two
 * do not overlap) pattern[tag + 1 ...]; compared with
 * memcmp (byte loops would dominate the fuzzer's time). */
static uint8_t pattern[CHECK_BYTES + 512];
static const uint8_t zeros[65536];

static void init_pattern(void) {
    if (pattern[1] != 0) return;
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(i * 7 + (i >> 8) + 1);
}

static void fill(struct slot *s) {
    size_t head = s->n < CHECK_BYTES ? s->n : CHECK_BYTES;
    memcpy(s->p, pattern + s->tag, head);
    if (s->n >= CHECK_BYTES + 64) memcpy(s->p + s->n - 64, pattern + s->tag + 1, 64);
}

/* Checks the pattern over [0, limit). */
static void verify(const struct slot *s, size_t limit) {
    if (limit > s->n) limit = s->n;
    size_t head = limit < CHECK_BYTES ? limit : CHECK_BYTES;
    if (memcmp(s->p, pattern + s->tag, head) != 0) abort();
    if (s->n >= CHECK_BYTES + 64 && limit == s->n &&
        memcmp(s->p + s->n - 64, pattern + s->tag + 1, 64) != 0)
        abort();
}

static void check_new(void *p, size_t n, size_t align) {
    uintptr_t a = (uintptr_t)p;
    if (p == NULL) abort();
    if (n >= 16 && (a & 15) != 0) abort();
    if ((a & 7) != 0) abort();
    if (align > 1 && (a & (align - 1)) != 0) abort();
    if (hak_malloc_usable_size(p) < n) abort();
}

/* A size from two bytes: every tier, boundaries, and impossible sizes. */
static size_t pick_size(uint8_t a, uint8_t b) {
    static const size_t edges[] = {
        0, 1, 15, 16, 17, 1023, 1024, 1025, 32767, 32768, 32769,
        (1u << 20) - 1, 1u << 20, (1u << 20) + 1, 2u << 20, (2u << 20) + 1,
        SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2, SIZE_MAX / 2 + 1, PTRDIFF_MAX,
        ((size_t)1 << 47) + 1};
    switch (a >> 5) {
    case 0: case 1: case 2: return (size_t)b + (size_t)(a & 3) * 256;       /* tiny */
    case 3: case 4: return 1024 + (((size_t)(a & 31) << 8 | b) % 31744);     /* mid */
    case 5: return 32768 + ((((size_t)(a & 31) << 8 | b) << 5) % (1040384)); /* large */
    case 6: return (1u << 20) + (((size_t)(a & 31) << 8 | b) << 7);         /* huge, <= ~2 MiB */
    default: return edges[b % (sizeof edges / sizeof edges[0])];
    }
}

static bool impossible(size_t n) { return n > ((size_t)1 << 46); }

static void put(unsigned k, void *p, size_t n, uint8_t tag) {
    slots[k].p = p;
    slots[k].n = n;
    slots[k].tag = tag;
    fill(&slots[k]);
}

static void release(unsigned k) {
    if (slots[k].p == NULL) return;
    verify(&slots[k], slots[k].n);
    errno = 1234;
    hak_free(slots[k].p);
    if (errno != 1234) abort(); /* free keeps errno */
    slots[k].p = NULL;
}

static void *free_in_thread(void *p) {
    hak_free(p);
    return NULL;
}

static void alloc_op(unsigned op, unsigned k, uint8_t a, uint8_t b) {
    size_t n = pick_size(a, b);
    size_t align = (size_t)1 << (b % 23); /* up to 4 MiB */
    void *p = NULL;
    int rc = 0;
    release(k);
    errno = 0;
    switch (op) {
    case 0: p = hak_malloc(n); align = 1; break;
    case 1: p = hak_calloc(1, n); align = 1; break;
    case 2: {
        size_t m = (size_t)(a & 15) + 1, each = n / m; /* calloc(m, each) */
        p = hak_calloc(m, each);
        n = m * each;
        align = 1;
        break;
    }
    case 3:
        n = pick_size((uint8_t)(a & 0x9F), b); /* keep it small-ish */
        if (a & 0x40) align = 3 * align + (align == 1); /* not a power of two */
        rc = hak_posix_memalign(&p, align, n);
        if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0) {
            if (rc != EINVAL || p != NULL) abort();
            return;
        }
        if (rc != 0) {
            if (rc != ENOMEM || !impossible(n)) abort();
            return;
        }
        break;
    case 4: p = hak_aligned_alloc(align, n); break;
    case 5: p = hak_memalign(align, n); break;
    case 6: p = hak_valloc(n); align = 4096; break;
    case 7:
        p = hak_pvalloc(n);
        align = 4096;
        if (p != NULL) n = (n + 4095) & ~(size_t)4095;
        break;
    }
    if (p == NULL) {
        if (!impossible(n)) abort();
        if (errno != ENOMEM) abort();
        return;
    }
    if (impossible(n)) abort(); /* it cannot have succeeded */
    check_new(p, n, align);
    if ((op == 1 || op == 2) && memcmp(p, zeros, n < sizeof zeros ? n : sizeof zeros) != 0)
        abort();
    put(k, p, n, (uint8_t)(a ^ b ^ k));
}

static void realloc_op(unsigned k, uint8_t a, uint8_t b, bool array) {
    struct slot *s = &slots[k];
    size_t n = pick_size(a, b);
    void *q;
    errno = 0;
    if (array) q = hak_reallocarray(s->p, (size_t)(a & 7) + 1, n / ((size_t)(a & 7) + 1));
    else q = hak_realloc(s->p, n);
    if (array) n = ((size_t)(a & 7) + 1) * (n / ((size_t)(a & 7) + 1));
    if (n == 0 && s->p != NULL) {
        /* glibc: realloc(p, 0) (and reallocarray(p, m, 0)) frees p and
         * returns NULL */
        if (q != NULL && !array) abort();
        s->p = NULL;
        if (q != NULL) put(k, q, 0, 0);
        return;
    }
    if (q == NULL) {
        if (!impossible(n) && n != 0) abort();
        if (n != 0 && errno != ENOMEM) abort();
        if (s->p != NULL) verify(s, s->n); /* the old block is intact */
        return;
    }
    if (impossible(n)) abort();
    check_new(q, n, 1);
    if (s->p != NULL) {
        s->p = q;
        size_t keep = s->n < n ? s->n : n;
        verify(s, keep);
        s->n = n;
        fill(s);
    } else {
        put(k, q, n, (uint8_t)(a + k));
    }
}

static void ctl_op(uint8_t a, uint8_t b) {
    static const char *const modes[] = {"minimal", "fast", "balanced", "learning", "research"};
    switch (a % 6) {
    case 0: hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0); break;
    case 1: hak_ctl("arena.0.purge", NULL, NULL, NULL, 0); break;
    case 2: {
        bool on = b & 1;
        hak_ctl("config.features.bigcache", NULL, NULL, &on, sizeof on);
        break;
    }
    case 3: {
        const char *m = modes[b % 5];
        hak_ctl("config.mode", NULL, NULL, &m, sizeof m);
        break;
    }
    case 4: {
        bool on = b & 1;
        hak_ctl("thread.tcache.enabled", NULL, NULL, &on, sizeof on);
        break;
    }
    case 5: {
        size_t cap = (size_t)b << 16, len = sizeof cap;
        hak_ctl("huge.bigcache.max_bytes", NULL, NULL, &cap, len);
        break;
    }
    }
}

static void reset(void) {
    const char *m = "balanced";
    bool on = true;
    hak_ctl("config.mode", NULL, NULL, &m, sizeof m);
    hak_ctl("thread.tcache.enabled", NULL, NULL, &on, sizeof on);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_pattern();
    for (size_t i = 0; i + 4 <= size && i < 4 * 4096; i += 4) {
        unsigned op = data[i] % 16, k = data[i + 1] % NSLOTS;
        uint8_t a = data[i + 2], b = data[i + 3];
        switch (op) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            alloc_op(op, k, a, b);
            break;
        case 8: realloc_op(k, a, b, false); break;
        case 9: realloc_op(k, a, b, true); break;
        case 10: release(k); break;
        case 11: /* free from another thread (a remote free) */
            if (slots[k].p != NULL) {
                pthread_t t;
                verify(&slots[k], slots[k].n);
                if (pthread_create(&t, NULL, free_in_thread, slots[k].p) == 0) {
                    pthread_join(t, NULL);
                    slots[k].p = NULL;
                }
            }
            break;
        case 12: /* everything still intact */
            for (unsigned j = 0; j < NSLOTS; j++)
                if (slots[j].p != NULL) verify(&slots[j], slots[j].n);
            break;
        case 13:
            if (slots[k].p != NULL && hak_malloc_usable_size(slots[k].p) < slots[k].n) abort();
            hak_free(NULL);
            break;
        case 14: ctl_op(a, b); break;
        case 15: { /* move a block between slots */
            unsigned j = b % NSLOTS;
            if (j != k && slots[j].p == NULL) {
                slots[j] = slots[k];
                slots[k].p = NULL;
            }
            break;
        }
        }
    }
    for (unsigned k = 0; k < NSLOTS; k++) release(k);
    reset();
    return 0;
}
