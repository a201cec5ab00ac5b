/* hakctl profile: the heap profiler of a live process (prof.* leaves).
 *
 *   profile start [--rate BYTES] | stop | reset
 *   profile dump [-o FILE] [--format pprof|folded|text|svg] [--alloc] [-n N]
 *   profile top [-n N] [--alloc] [-i MS] [-c COUNT]
 *   profile diff OLD NEW (hakctl_diff.c; no process)
 *
 * The target writes a dump itself (it has the stacks and symbolizes the
 * folded format with dladdr) through prof.dump / prof.dump_folded*, posted
 * on its stats page's command ring, into a directory this command creates
 * 0700 for the purpose; the file (0600, the target's uid, which is ours:
 * the page of another user cannot be written) is then copied, or read
 * (hakctl_stacks.h) and drawn as a table or a flame graph, and removed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hakctl.h"
#include "hakctl_stacks.h"

/* What each --format asks the target for, and what hakctl makes of it. */
typedef enum { OUT_COPY, OUT_TEXT, OUT_SVG } out_kind;

typedef struct dump_format {
    const char *name;
    const char *key, *alloc_key; /* the prof.* leaf to post */
    out_kind out;
} dump_format;

static const dump_format formats[] = {
    {"pprof", "prof.dump", "prof.dump", OUT_COPY},
    {"folded", "prof.dump_folded", "prof.dump_folded_alloc", OUT_COPY},
    {"text", "prof.dump", "prof.dump", OUT_TEXT}, /* the heap file has blocks and both views */
    {"svg", "prof.dump_folded", "prof.dump_folded_alloc", OUT_SVG},
};

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

/* -o FILE (created 0600) or standard output; NULL after a message. */
static FILE *open_output(const char *to) {
    if (to == NULL) return stdout;
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        cli_error("profile dump: %s: %s", to, strerror(errno));
        if (fd >= 0) close(fd);
    }
    return f;
}

static int close_output(FILE *f, const char *to) {
    bool ok = !ferror(f) && fflush(f) == 0;
    if (f != stdout && fclose(f) != 0) ok = false;
    if (ok) return EXIT_OK;
    cli_error("profile dump: write %s: %s", to ? to : "stdout", strerror(errno));
    return EXIT_KEY;
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        cli_error("profile dump: the process wrote no file (%s)", strerror(errno));
        return EXIT_KEY;
    }
    FILE *out = open_output(to);
    if (out == NULL) {
        close(in);
        return EXIT_KEY;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0 && fwrite(buf, 1, (size_t)n, out) == (size_t)n) {}
    close(in);
    return close_output(out, to);
}

/* The target's dump, read; false after a message. */
static bool read_dump(const char *path, const hk_cli *c, cli_profile *prof) {
    char err[600];
    if (cli_profile_read(path, c->alloc, true, prof, err, sizeof err)) {
        cli_profile_sort(prof);
        return true;
    }
    cli_error("profile: the process's dump: %s", err);
    return false;
}

static int render(hkp_page *p, const hk_cli *c, const dump_format *fmt, const char *path) {
    cli_profile prof;
    if (!read_dump(path, c, &prof)) return EXIT_KEY;
    FILE *out = open_output(c->output);
    if (out == NULL) {
        cli_profile_free(&prof);
        return EXIT_KEY;
    }
    if (fmt->out == OUT_TEXT) {
        cli_text_write(out, &prof, c->count, c->alloc);
    } else {
        char cmd[128], title[256];
        hkp_command(p, cmd, sizeof cmd);
        snprintf(title, sizeof title, "%s heap of %d (%s), estimated from samples", c->alloc ? "Allocated" : "Live",
                 c->pid, cmd);
        cli_flame_write(out, &prof, title);
    }
    cli_profile_free(&prof);
    return close_output(out, c->output);
}

static int profile_dump(hkp_page *p, const hk_cli *c) {
    const char *name = c->format != NULL ? c->format : "pprof";
    const dump_format *fmt = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcmp(name, formats[i].name)) fmt = &formats[i];
    if (fmt == NULL) {
        cli_error("profile dump: unknown format %s (pprof, folded, text or svg)", name);
        return EXIT_USAGE;
    }
    char dir[64], path[128];
    int rc = target_dump(p, c, c->alloc ? fmt->alloc_key : fmt->key, dir, path, sizeof path);
    if (rc != EXIT_OK) return rc;
    rc = fmt->out == OUT_COPY ? copy_file(path, c->output) : render(p, c, fmt, path);
    target_dump_done(dir, path);
    return rc;
}

/* ---- top ---- */

/* One table of the N heaviest stacks; refreshing: a heading first, after
 * clearing a terminal's screen. */
static int top_frame(hkp_page *p, const hk_cli *c, bool refreshing, bool clear, long frame) {
    char dir[64], path[128];
    int rc = target_dump(p, c, c->alloc ? "prof.dump_folded_alloc" : "prof.dump_folded", dir, path, sizeof path);
    if (rc != EXIT_OK) return rc;
    cli_profile prof;
    bool ok = read_dump(path, c, &prof);
    target_dump_done(dir, path);
    if (!ok) return EXIT_KEY;
    if (clear) printf("\033[H\033[2J");
    else if (refreshing && frame > 0) printf("\n");
    if (refreshing) {
        char when[16];
        time_t now = time(NULL);
        strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
        printf("pid %d  %s  %s heap, every %u ms%s\n", c->pid, when, c->alloc ? "allocated" : "live", c->interval_ms,
               clear ? "  (^C quits)" : "");
    }
    cli_top_write(stdout, &prof, c->count > 0 ? c->count : 10, c->alloc);
    fflush(stdout);
    cli_profile_free(&prof);
    return EXIT_OK;
}

/* One table, or with -i / -c one every interval, -c times or until
 * interrupted or the process is gone (exit status 3). */
static int profile_top(hkp_page *p, const hk_cli *c) {
    bool refreshing = c->interval_given || c->frames > 0;
    bool clear = refreshing && isatty(1);
    long frames = !refreshing ? 1 : c->frames > 0 ? c->frames : -1;
    if (refreshing) cli_catch_signals();
    int rc = EXIT_OK;
    for (long i = 0; (frames < 0 || i < frames) && rc == EXIT_OK && !cli_interrupted(); i++) {
        if (i > 0) cli_msleep(c->interval_ms);
        if (cli_interrupted()) break;
        if (kill(c->pid, 0) != 0 && errno == ESRCH) {
            cli_error("profile top: process %d exited", c->pid);
            return EXIT_NOPAGE;
        }
        rc = top_frame(p, c, refreshing, clear, i);
    }
    return rc;
}

/* ---- dispatch ---- */

static int profile_switch(hkp_page *p, const hk_cli *c, const char *sub) {
    int rc = EXIT_OK;
    if (!strcmp(sub, "start")) {
        char rate[32];
        if (c->rate != 0) {
            snprintf(rate, sizeof rate, "%llu", (unsigned long long)c->rate);
            rc = post(p, c, "prof.sample_bytes", rate);
        }
        if (rc == EXIT_OK) rc = post(p, c, "prof.active", "true");
        if (rc == EXIT_OK) printf("profiling started in %d\n", c->pid);
    } else if (!strcmp(sub, "stop")) {
        rc = post(p, c, "prof.active", "false");
        if (rc == EXIT_OK) printf("profiling stopped in %d (records kept)\n", c->pid);
    } else {
        rc = post(p, c, "prof.reset", "");
        if (rc == EXIT_OK) printf("profile of %d reset\n", c->pid);
    }
    return rc;
}

static const char *const subcommands[] = {"start", "stop", "reset", "dump", "top", "diff"};

int cmd_profile(const hk_cli *c) {
    const char *sub = c->args[0];
    bool known = false;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) known = known || !strcmp(sub, subcommands[i]);
    if (!known) {
        cli_error("profile: unknown subcommand %s (start, stop, reset, dump, top, diff)", sub);
        return EXIT_USAGE;
    }
    bool diff = !strcmp(sub, "diff");
    if (c->nargs != (diff ? 3 : 1)) {
        if (diff) cli_error("profile diff takes two files: OLD NEW");
        else cli_error("profile %s takes no argument", sub);
        return EXIT_USAGE;
    }
    if (diff) return cmd_profile_diff(c);
    hkp_page p;
    int rc = cli_open(c, &p, true);
    if (rc != EXIT_OK) return rc;
    if (!strcmp(sub, "dump")) rc = profile_dump(&p, c);
    else if (!strcmp(sub, "top")) rc = profile_top(&p, c);
    else rc = profile_switch(&p, c, sub);
    hkp_close(&p);
    return rc;
}
