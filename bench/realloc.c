/* realloc: growing buffers.
 *
 * Doubling: a vector starts at 16 B and is realloc'd to twice its size up to
 * 64 MiB; after every step the old contents (first and last word, one byte
 * per 4 KiB page) are checked and the new half is touched the same way.
 * Increments: four strings, grown in turn by random 1-64 byte appends up to
 * 64 KiB (so neighbours get in the way of growing in place); every appended
 * byte is written, and each string is checked entirely at the end.
 *
 * Rounds of each kind are fixed and split among the threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: realloc [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1: 6 doubling rounds (16 B -> 64 MiB) and 300 increment rounds\n"
    "  (4 strings to 64 KiB each), split among the threads\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define PAGE 4096
#define MAX_VEC (64u << 20)
#define NSTR 4
#define MAX_STR (64u << 10)

struct thread {
    pthread_t tid;
    int id;
    long double_rounds, incr_rounds;
    long nrealloc;
    double double_secs, incr_secs;
    char pad[64];
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "realloc: realloc(%zu) failed\n", n);
        exit(1);
    }
    return q;
}

static void bad(const char *what, const void *p, size_t n)
{
    if (atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "realloc: %s lost in %p (size %zu)\n", what, p, n);
}

static inline unsigned char page_byte(uint64_t tag, size_t off)
{
    return (unsigned char)(tag ^ (off >> 12) ^ (off >> 20));
}

/* Touches bytes [from, to) of a vector: one byte per page and the last word. */
static void vec_touch(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    for (size_t off = (from + PAGE - 1) / PAGE * PAGE; off < to - 8; off += PAGE)
        p[off] = page_byte(tag, off);
    memcpy(p + to - 8, &tag, 8);
}

static void vec_check(const unsigned char *p, size_t n, uint64_t tag)
{
    uint64_t w;
    memcpy(&w, p + n - 8, 8);
    if (w != tag)
        bad("last word", p, n);
    for (size_t off = 0; off < n - 8; off += PAGE)
        if (p[off] != page_byte(tag, off)) {
            bad("page byte", p, n);
            return;
        }
}

static long doubling_round(uint64_t tag)
{
    size_t n = 16;
    unsigned char *p = xmalloc(n);
    long count = 0;
    vec_touch(p, 0, n, tag);
    while (n < MAX_VEC) {
        p = xrealloc(p, n * 2);
        count++;
        vec_check(p, n, tag);
        /* the old last word is now inside the vector: restore its page byte
         * pattern by touching the new half, from the old end */
        vec_touch(p, n - 8, n * 2, tag);
        n *= 2;
    }
    vec_check(p, n, tag);
    free(p);
    return count;
}

static inline unsigned char str_byte(uint64_t seed, size_t i)
{
    return (unsigned char)(seed + i * 7 + (i >> 8));
}

static long increment_round(uint64_t *rng)
{
    unsigned char *s[NSTR] = { NULL };
    size_t len[NSTR] = { 0 };
    uint64_t seed[NSTR];
    long count = 0;
    for (int k = 0; k < NSTR; k++)
        seed[k] = rng_next(rng);
    for (int done = 0; done < NSTR;) {
        done = 0;
        for (int k = 0; k < NSTR; k++) {
            if (len[k] >= MAX_STR) {
                done++;
                continue;
            }
            size_t add = (size_t)rng_range(rng, 1, 64);
            s[k] = xrealloc(s[k], len[k] + add);
            count++;
            for (size_t i = len[k]; i < len[k] + add; i++)
                s[k][i] = str_byte(seed[k], i);
            len[k] += add;
        }
    }
    for (int k = 0; k < NSTR; k++) {
        for (size_t i = 0; i < len[k]; i++)
            if (s[k][i] != str_byte(seed[k], i)) {
                bad("string byte", s[k], len[k]);
                break;
            }
        free(s[k]);
    }
    return count;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x99ull * (uint64_t)(t->id + 1);
    bench_start();
    double t0 = now_sec();
    for (long r = 0; r < t->double_rounds; r++)
        t->nrealloc += doubling_round(rng_next(&rng));
    double t1 = now_sec();
    for (long r = 0; r < t->incr_rounds; r++)
        t->nrealloc += increment_round(&rng);
    t->double_secs = t1 - t0;
    t->incr_secs = now_sec() - t1;
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long dbl = (long)(6 * scale), inc = (long)(300 * scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].double_rounds = dbl / nthreads > 0 ? dbl / nthreads : 1;
        th[i].incr_rounds = inc / nthreads > 0 ? inc / nthreads : 1;
    }
    double secs = bench_run_threads(nthreads, worker, th, sizeof *th);
    long ops = 0;
    double dsecs = 0, isecs = 0;
    for (int i = 0; i < nthreads; i++) {
        ops += th[i].nrealloc;
        if (th[i].double_secs > dsecs)
            dsecs = th[i].double_secs;
        if (th[i].incr_secs > isecs)
            isecs = th[i].incr_secs;
    }
    printf("realloc threads=%d ops=%ld secs=%.4f mops_per_s=%.3f doubling_secs=%.4f "
           "increment_secs=%.4f",
           nthreads, ops, secs, (double)ops / secs / 1e6, dsecs, isecs);
    free(th);
    return bench_report();
}
