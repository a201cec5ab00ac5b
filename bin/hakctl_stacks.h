/*
 * Heap profiles as hakctl reads them: one list of stacks with estimated
 * bytes, whatever file they came from, and the views drawn from it.
 * Prototypes grouped by the file that defines them.
 */
#ifndef HAKCTL_STACKS_H
#define HAKCTL_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum cli_prof_kind {
    CLI_PROF_FOLDED, /* "frame;frame;... BYTES" lines (estimated bytes, names) */
    CLI_PROF_HEAP    /* gperftools' or jemalloc's heap_v2 text: raw counts, addresses */
};

typedef struct cli_stack {
    char *frames;  /* folded: outermost first, ';' between frames */
    double bytes;  /* estimated */
    double blocks; /* estimated; < 0: unknown (folded files have no counts) */
} cli_stack;

typedef struct cli_profile {
    enum cli_prof_kind kind;
    unsigned long long period; /* heap: the sampling period; 0: unsampled or folded */
    cli_stack *rows;           /* one row a distinct stack, bytes > 0 */
    size_t n, cap;
    double total;              /* bytes of every row */
} cli_profile;

/* ---- hakctl_stacks.c ---- */

/* Reads a folded or heap profile (told apart by the first line; heap
 * addresses named through hakctl_symbols.h), the live view or with alloc
 * the allocation view (heap files hold both; a folded file is one), rows
 * of the same stack merged.  false, with the reason in err, for a file
 * that is missing, unreadable, binary, corrupt or truncated, or empty
 * (unless empty_ok: a dump of a process with nothing sampled).  Never
 * trusts the file. */
bool cli_profile_read(const char *path, bool alloc, bool empty_ok, cli_profile *p, char *err, size_t cap);
void cli_profile_sort(cli_profile *p); /* heaviest first */
void cli_profile_free(cli_profile *p);
/* The innermost frame of a folded stack: after its last ';'. */
const char *cli_stack_leaf(const char *frames);

/* ---- hakctl_proftext.c ---- */

/* profile top's table: the n heaviest stacks, their share, the innermost
 * frame and its callers. */
void cli_top_write(FILE *out, const cli_profile *p, long n, bool alloc);
/* dump --format text: the n heaviest stacks (n <= 0: all) with estimated
 * bytes and blocks, share, the innermost frame, then the stack a frame a
 * line. */
void cli_text_write(FILE *out, const cli_profile *p, long n, bool alloc);

/* ---- hakctl_flame.c ---- */

/* dump --format svg: a flame graph of p (widths proportional to bytes) as
 * a standalone SVG document; title heads it. */
void cli_flame_write(FILE *out, const cli_profile *p, const char *title);

#endif
