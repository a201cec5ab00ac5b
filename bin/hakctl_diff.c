/*
 * hakctl profile diff OLD NEW [-n N] [--alloc]: what grew between two heap
 * profiles (folded or heap files, each told apart by its first line; no
 * process needed).  Stacks are matched by their frames' names, so a heap
 * file's addresses are named first (hakctl_symbols.h) and two runs of a
 * program compare even when loaded at other addresses.  Rows: growth, bytes
 * before and after, the innermost frame and its callers, largest growth
 * first; stacks that did not change are left out.
 */
#include "hakctl.h"

#include <stdlib.h>
#include <string.h>

#include "hakctl_stacks.h"

#define DEFAULT_ROWS 20

typedef struct diff_row {
    const char *frames;
    double old, new;
} diff_row;

static int by_frames(const void *a, const void *b) {
    return strcmp(((const cli_stack *)a)->frames, ((const cli_stack *)b)->frames);
}

static int by_growth(const void *a, const void *b) {
    const diff_row *x = a, *y = b;
    double dx = x->new - x->old, dy = y->new - y->old;
    if (dx != dy) return dx < dy ? 1 : -1;
    return strcmp(x->frames, y->frames);
}

/* Both profiles' stacks side by side (a merge of the two sorted by frames);
 * *n gets the rows; NULL when out of memory. */
static diff_row *join(cli_profile *old, cli_profile *new, size_t *n) {
    if (old->n > 1) qsort(old->rows, old->n, sizeof *old->rows, by_frames);
    if (new->n > 1) qsort(new->rows, new->n, sizeof *new->rows, by_frames);
    diff_row *rows = malloc((old->n + new->n + 1) * sizeof *rows);
    size_t i = 0, j = 0;
    *n = 0;
    while (rows != NULL && (i < old->n || j < new->n)) {
        int c = i == old->n ? 1 : j == new->n ? -1 : strcmp(old->rows[i].frames, new->rows[j].frames);
        diff_row *r = &rows[(*n)++];
        r->frames = c <= 0 ? old->rows[i].frames : new->rows[j].frames;
        r->old = c <= 0 ? old->rows[i++].bytes : 0;
        r->new = c >= 0 ? new->rows[j++].bytes : 0;
    }
    return rows;
}

static const char *kind_name(const cli_profile *p) { return p->kind == CLI_PROF_HEAP ? "heap profile" : "folded"; }

static void print_diff(const hk_cli *c, const cli_profile *old, const cli_profile *new, diff_row *rows, size_t n) {
    if (n > 1) qsort(rows, n, sizeof *rows, by_growth);
    long limit = c->count > 0 ? c->count : DEFAULT_ROWS, shown = 0;
    printf("# %s heap: %s (%s, %zu stacks) -> %s (%s, %zu stacks)\n", c->alloc ? "allocated" : "live", c->args[1],
           kind_name(old), old->n, c->args[2], kind_name(new), new->n);
    printf("%14s %14s %14s  %-32s %s\n", "GROWTH", "OLD_BYTES", "NEW_BYTES", "FUNCTION", "CALLERS");
    for (size_t i = 0; i < n && shown < limit; i++) {
        double d = rows[i].new - rows[i].old;
        if (d > -0.5 && d < 0.5) continue;
        const char *leaf = cli_stack_leaf(rows[i].frames);
        int callers = leaf > rows[i].frames ? (int)(leaf - 1 - rows[i].frames) : 0;
        printf("%+14.0f %14.0f %14.0f  %-32s %.*s\n", d, rows[i].old, rows[i].new, leaf, callers, rows[i].frames);
        shown++;
    }
    printf("%+14.0f %14.0f %14.0f  (total)\n", new->total - old->total, old->total, new->total);
}

int cmd_profile_diff(const hk_cli *c) {
    cli_profile old, new;
    char err[600];
    if (!cli_profile_read(c->args[1], c->alloc, false, &old, err, sizeof err)) {
        cli_error("profile diff: %s", err);
        return EXIT_KEY;
    }
    if (!cli_profile_read(c->args[2], c->alloc, false, &new, err, sizeof err)) {
        cli_error("profile diff: %s", err);
        cli_profile_free(&old);
        return EXIT_KEY;
    }
    if (old.kind != new.kind)
        cli_error("profile diff: note: a folded file and a heap file: stacks match only where both name "
                  "their frames alike");
    size_t n;
    diff_row *rows = join(&old, &new, &n);
    int rc = EXIT_OK;
    if (rows != NULL) {
        print_diff(c, &old, &new, rows, n);
    } else {
        cli_error("profile diff: out of memory");
        rc = EXIT_KEY;
    }
    free(rows);
    cli_profile_free(&old);
    cli_profile_free(&new);
    return rc;
}
