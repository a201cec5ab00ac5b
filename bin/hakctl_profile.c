/* hakctl profile: the heap profiler of a live process (prof.* leaves).
 *
 *   profile start [--rate BYTES] | stop | reset
 *   profile dump [-o FILE] [--format pprof|folded] [--alloc]
 *   profile top [-n N] [--alloc]
 *
 * The target writes a dump itself (it has the stacks and symbolizes the
 * folded format with dladdr) through prof.dump / prof.dump_folded*, posted
 * on its stats page's command ring, into a directory this command creates
 * 0700 for the purpose; the file (0600, the target's uid, which is ours:
 * the page of another user cannot be written) is then copied and removed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakctl.h"

static int post(hkp_page *p, const hk_cli *c, const char *key, const char *value) {
    int result = 0;
    uint64_t applied = 0;
    char err[512];
    if (hkp_post(p, key, value, c->timeout_ms, &result, &applied, err, sizeof err) != HKP_OK) {
        cli_error("profile: %s: %s", key, err);
        return EXIT_NOPAGE;
    }
    if (result != 0) {
        cli_error("profile: %s %s: %s", key, value, strerror(result));
        return EXIT_KEY;
    }
    return EXIT_OK;
}

/* Has the target write its dump (key) into a fresh private directory;
 * path receives the file's name. */
static int target_dump(hkp_page *p, const hk_cli *c, const char *key, char *dir, char *path, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, 64, "%s/hakctl-prof.XXXXXX", tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        cli_error("profile: cannot create a directory in %s: %s", tmp ? tmp : "/tmp", strerror(errno));
        return EXIT_KEY;
    }
    snprintf(path, cap, "%s/heap", dir);
    int rc = post(p, c, key, path);
    if (rc != EXIT_OK) rmdir(dir);
    return rc;
}

static void target_dump_done(const char *dir, const char *path) {
    unlink(path);
    rmdir(dir);
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        cli_error("profile dump: the process wrote no file (%s)", strerror(errno));
        return EXIT_KEY;
    }
    int out = to == NULL ? 1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        cli_error("profile dump: %s: %s", to, strerror(errno));
        close(in);
        return EXIT_KEY;
    }
    char buf[65536];
    ssize_t n;
    int rc = EXIT_OK;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w <= 0) {
                cli_error("profile dump: write %s: %s", to ? to : "stdout", strerror(errno));
                rc = EXIT_KEY;
                n = 0;
                break;
            }
            off += w;
        }
    }
    close(in);
    if (to != NULL && close(out) != 0) rc = EXIT_KEY;
    return rc;
}

typedef struct stack_row {
    char *stack;  /* folded: outermost first */
    double bytes;
} stack_row;

static int by_bytes(const void *a, const void *b) {
    double x = ((const stack_row *)a)->bytes, y = ((const stack_row *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Prints the N heaviest stacks of a folded dump: bytes, share, the leaf
 * function (the caller of malloc) and its callers. */
static int print_top(const char *path, long n, bool alloc) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cli_error("profile top: the process wrote no file (%s)", strerror(errno));
        return EXIT_KEY;
    }
    stack_row *rows = NULL;
    size_t nrows = 0, cap = 0;
    double total = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *sp = strrchr(line, ' ');
        if (sp == NULL) continue;
        *sp = '\0';
        if (nrows == cap) {
            cap = cap ? 2 * cap : 256;
            rows = realloc(rows, cap * sizeof *rows);
        }
        rows[nrows].stack = strdup(line);
        rows[nrows].bytes = strtod(sp + 1, NULL);
        total += rows[nrows++].bytes;
    }
    free(line);
    fclose(f);
    qsort(rows, nrows, sizeof *rows, by_bytes);
    printf("%12s %6s  %-32s %s\n", alloc ? "ALLOC_BYTES" : "LIVE_BYTES", "SHARE", "FUNCTION", "CALLERS");
    for (size_t i = 0; i < nrows && (long)i < n; i++) {
        char *leaf = strrchr(rows[i].stack, ';');
        char *callers = rows[i].stack;
        if (leaf != NULL) *leaf++ = '\0';
        else {
            leaf = rows[i].stack;
            callers = "";
        }
        printf("%12.0f %5.1f%%  %-32s %s\n", rows[i].bytes, total > 0 ? 100.0 * rows[i].bytes / total : 0.0,
               leaf, callers);
    }
    printf("%12.0f 100.0%%  (total, %zu stacks)\n", total, nrows);
    for (size_t i = 0; i < nrows; i++) free(rows[i].stack);
    free(rows);
    return EXIT_OK;
}

int cmd_profile(const hk_cli *c) {
    const char *sub = c->args[0];
    hkp_page p;
    int rc = cli_open(c, &p, true);
    if (rc != EXIT_OK) return rc;
    char dir[64], path[128];
    if (!strcmp(sub, "start")) {
        char rate[32];
        if (c->rate != 0) {
            snprintf(rate, sizeof rate, "%llu", (unsigned long long)c->rate);
            rc = post(&p, c, "prof.sample_bytes", rate);
        }
        if (rc == EXIT_OK) rc = post(&p, c, "prof.active", "true");
        if (rc == EXIT_OK) printf("profiling started in %d\n", c->pid);
    } else if (!strcmp(sub, "stop")) {
        rc = post(&p, c, "prof.active", "false");
        if (rc == EXIT_OK) printf("profiling stopped in %d (records kept)\n", c->pid);
    } else if (!strcmp(sub, "reset")) {
        rc = post(&p, c, "prof.reset", "");
        if (rc == EXIT_OK) printf("profile of %d reset\n", c->pid);
    } else if (!strcmp(sub, "dump") || !strcmp(sub, "top")) {
        bool top = !strcmp(sub, "top");
        const char *fmt = c->format != NULL ? c->format : top ? "folded" : "pprof";
        const char *key;
        if (!strcmp(fmt, "pprof") && !top) key = "prof.dump";
        else if (!strcmp(fmt, "folded")) key = c->alloc ? "prof.dump_folded_alloc" : "prof.dump_folded";
        else {
            cli_error("profile %s: unknown format %s (pprof or folded)", sub, fmt);
            hkp_close(&p);
            return EXIT_USAGE;
        }
        rc = target_dump(&p, c, key, dir, path, sizeof path);
        if (rc == EXIT_OK) {
            rc = top ? print_top(path, c->count > 0 ? c->count : 10, c->alloc) : copy_file(path, c->output);
            target_dump_done(dir, path);
        }
    } else {
        cli_error("profile: unknown subcommand %s (start, stop, reset, dump, top)", sub);
        rc = EXIT_USAGE;
    }
    hkp_close(&p);
    return rc;
}
