/* interp: the allocation pattern of a bytecode interpreter.
 *
 * Every thread runs its own "interpreter": a stack of temporaries (16-128 B,
 * smaller sizes more likely) that grows and shrinks at random around a
 * depth of a few dozen; most temporaries die young and in LIFO order (the
 * top of the stack), one pop in 8 frees one of the top 8 instead.  One
 * allocation in 64 is long-lived: it goes into a table of 20000 globals,
 * replacing (and freeing) a random older one, so a scattered long-lived set
 * sits among the churn.  Threads share nothing.
 *
 * Total allocations are fixed and split among the threads.  Every object is
 * tagged at both ends (1 in 16 entirely) and checked before it is freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: interp [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  30M allocations of 16-128 B at scale 1, split among the threads;\n"
    "  temporaries on a LIFO stack, 1 in 64 kept in a table of 20000\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define STACK_MAX 256
#define TABLE 20000
#define LONG_EVERY 64
#define LOOSE_EVERY 8           /* pops that free one of the top 8 */

/* 16-128 B in steps of 8, the small end likelier (min of two draws) */
static uint32_t obj_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    uint32_t a = (uint32_t)(r & 15), b = (uint32_t)((r >> 4) & 15);
    return 16 + 8 * (a < b ? a : b) + (uint32_t)((r >> 8) & 7);
}

static void new_item(struct item *it, uint64_t *rng)
{
    item_alloc(it, obj_size(rng), rng);
}

static void *worker(void *arg)
{
    struct bench_share *t = arg;
    uint64_t rng = 0x1e7e7ull * (uint64_t)(t->id + 1);
    struct item *stack = xmalloc(sizeof(struct item) * STACK_MAX);
    struct item *table = xmalloc(sizeof(struct item) * TABLE);
    int depth = 0;

    for (int i = 0; i < TABLE; i++)
        new_item(&table[i], &rng);
    bench_start();                      /* the table fill is not timed */

    for (long op = 1; op <= t->ops; op++) {
        uint64_t r = rng_next(&rng);
        if (op % LONG_EVERY == 0) {
            struct item *g = &table[r % TABLE];
            item_free(g);
            new_item(g, &rng);
            continue;
        }
        /* push, then pop until the stack is no deeper than a random
         * target: bursts of temporaries that die together */
        new_item(&stack[depth++], &rng);
        int target = (int)(r % 48);
        if (depth == STACK_MAX)
            target = 0;
        while (depth > target && (depth == STACK_MAX || ((r >> 16) & 3) != 0)) {
            int k = depth - 1;
            if ((r >> 20) % LOOSE_EVERY == 0 && depth >= 8)
                k = depth - 1 - (int)((r >> 24) & 7);
            item_free(&stack[k]);
            stack[k] = stack[depth - 1];
            depth--;
            r = rng_next(&rng);
        }
    }
    while (depth > 0)
        item_free(&stack[--depth]);
    for (int i = 0; i < TABLE; i++)
        item_free(&table[i]);
    bench_stop();
    free(stack);
    free(table);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(30e6 * scale);

    long ops;
    double secs = bench_run_shares(nthreads, worker, total, &ops);
    printf("interp threads=%d ops=%ld secs=%.4f mops_per_s=%.2f",
           nthreads, ops, secs, (double)ops / secs / 1e6);
    return bench_report();
}
