/* hakctl's command-line side: options, exit codes, and the commands split
 * across hakctl.c (ps, get, dump, list, set, watch), hakctl_top.c (top),
 * hakctl_profile.c (profile), hakctl_diff.c (profile diff) and
 * hakctl_metrics.c (metrics, serve).  Heap profiles as files:
 * hakctl_stacks.h. */
#ifndef HAKCTL_H
#define HAKCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "hakctl_page.h"

enum {
    EXIT_OK = 0,
    EXIT_KEY = 1,     /* key or value error */
    EXIT_USAGE = 2,
    EXIT_NOPAGE = 3   /* no such process, no page, or a page we cannot use */
};

typedef struct hk_cli {
    const char *cmd;
    int pid;               /* -p; 0: none given */
    bool json, human, all, help;
    bool conf;             /* dump --conf: the *.conf leaves as one HAKMEM_CONF */
    unsigned timeout_ms;   /* --timeout (set) */
    unsigned interval_ms;  /* -i (watch, top, profile top) */
    bool interval_given;   /* -i was given (profile top refreshes) */
    long count;            /* -n (watch, top; rows of profile top, dump, diff); -1: until stopped */
    long frames;           /* -c (profile top): tables before it exits; -1: until stopped */
    const char *listen;    /* --listen (serve) */
    long max_requests;     /* --max-requests (serve); -1: no limit */
    unsigned long long rate; /* --rate (profile start); 0: unchanged */
    const char *output;    /* -o (profile dump); NULL: stdout */
    const char *format;    /* --format (profile dump) */
    bool alloc;            /* --alloc (profile dump, top, diff): the allocation view */
    char **args;           /* positional arguments after the command */
    int nargs;
} hk_cli;

#define SNAP_TIMEOUT_MS 1000

/* Opens and snapshots c->pid's page; on failure prints the error (with the
 * hint) and returns the exit code. */
int cli_open(const hk_cli *c, hkp_page *p, bool writable);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool cli_interrupted(void);          /* SIGINT or SIGTERM arrived */
void cli_catch_signals(void);
void cli_msleep(unsigned ms);        /* returns early when interrupted */

int cmd_top(const hk_cli *c);
int cmd_profile(const hk_cli *c);
int cmd_profile_diff(const hk_cli *c); /* args: "diff" OLD NEW */
int cmd_metrics(const hk_cli *c);
int cmd_serve(const hk_cli *c);

/* Writes the Prometheus exposition of the given open, snapshotted pages
 * (labelled by pid and command when labelled) through out. */
typedef void (*emit_fn)(void *arg, const char *text);
void metrics_write(hkp_page *pages, int npages, bool labelled, emit_fn out, void *arg);

#endif
