/*
 * The readable views of a heap profile (hakctl_stacks.h): profile top's
 * one-line-a-stack table and profile dump --format text's table with the
 * stacks written out.  The profile comes sorted, heaviest first.
 */
#include "hakctl_stacks.h"

#include <string.h>

static double share(const cli_profile *p, double bytes) { return p->total > 0 ? 100.0 * bytes / p->total : 0.0; }

void cli_top_write(FILE *out, const cli_profile *p, long n, bool alloc) {
    fprintf(out, "%12s %6s  %-32s %s\n", alloc ? "ALLOC_BYTES" : "LIVE_BYTES", "SHARE", "FUNCTION", "CALLERS");
    for (size_t i = 0; i < p->n && (long)i < n; i++) {
        const cli_stack *s = &p->rows[i];
        const char *leaf = cli_stack_leaf(s->frames);
        int callers = leaf > s->frames ? (int)(leaf - 1 - s->frames) : 0;
        fprintf(out, "%12.0f %5.1f%%  %-32s %.*s\n", s->bytes, share(p, s->bytes), leaf, callers, s->frames);
    }
    fprintf(out, "%12.0f 100.0%%  (total, %zu stacks)\n", p->total, p->n);
}

/* The frames of a folded stack, innermost first, one a line. */
static void write_frames(FILE *out, const char *frames) {
    const char *end = frames + strlen(frames);
    for (int depth = 0; end > frames; depth++) {
        const char *start = end;
        while (start > frames && start[-1] != ';') start--;
        fprintf(out, "%38s#%-2d %.*s\n", "", depth, (int)(end - start), start);
        end = start > frames ? start - 1 : frames;
    }
}

void cli_text_write(FILE *out, const cli_profile *p, long n, bool alloc) {
    double blocks = 0;
    bool have_blocks = true;
    for (size_t i = 0; i < p->n; i++) {
        have_blocks = have_blocks && p->rows[i].blocks >= 0;
        blocks += p->rows[i].blocks;
    }
    fprintf(out, "# %s heap, estimated from samples%s; %zu stacks\n", alloc ? "allocated" : "live",
            p->period ? "" : " (unsampled counts)", p->n);
    fprintf(out, "%14s %12s %6s  %s\n", alloc ? "ALLOC_BYTES" : "LIVE_BYTES", "BLOCKS", "SHARE", "FUNCTION / STACK");
    for (size_t i = 0; i < p->n && (n <= 0 || (long)i < n); i++) {
        const cli_stack *s = &p->rows[i];
        char nblocks[32] = "-";
        if (s->blocks >= 0) snprintf(nblocks, sizeof nblocks, "%.0f", s->blocks);
        fprintf(out, "\n%14.0f %12s %5.1f%%  %s\n", s->bytes, nblocks, share(p, s->bytes), cli_stack_leaf(s->frames));
        write_frames(out, s->frames);
    }
    char nblocks[32] = "-";
    if (have_blocks) snprintf(nblocks, sizeof nblocks, "%.0f", blocks);
    fprintf(out, "\n%14.0f %12s 100.0%%  (total)\n", p->total, nblocks);
}
