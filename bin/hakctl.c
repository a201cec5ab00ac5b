/*
 * hakctl: look into running hakmem processes through their stats pages
 * (doc/DESIGN.md sections 10.3-10.4, hakctl(1)).  This file: option parsing, the
 * dispatch, and ps, get, dump, list, set, watch.
 */
#include "hakctl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hakmem/hakmem.h"

#define HINT "start it with HAKMEM_CONF=stats_page:1, or the default mode's page delay has not passed"

/* ---- shared helpers ---- */

void cli_error(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hakctl: %s\n", buf);
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = 1; }
bool cli_interrupted(void) { return interrupted != 0; }

void cli_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_open(const hk_cli *c, hkp_page *p, bool writable) {
    char err[512];
    int rc = hkp_open(p, c->pid, writable, err, sizeof err);
    if (rc == HKP_OK && (rc = hkp_snapshot(p, SNAP_TIMEOUT_MS, err, sizeof err)) != HKP_OK) hkp_close(p);
    if (rc == HKP_OK) return EXIT_OK;
    if (rc == HKP_ENOPROC || rc == HKP_ENOPAGE) cli_error("%s (" HINT ")", err);
    else cli_error("%s", err);
    return EXIT_NOPAGE;
}

void cli_msleep(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !cli_interrupted()) {}
}

static void name_of(const hkp_entry *e, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*s", (int)e->name_len, e->name);
}

/* Under prefix: the name itself or a descendant. */
static bool under(const hkp_entry *e, const char *prefix) {
    size_t pl = strlen(prefix);
    if (pl == 0) return true;
    if (e->name_len < pl || memcmp(e->name, prefix, pl) != 0) return false;
    return e->name_len == pl || e->name[pl] == '.';
}

/* ---- ps ---- */

typedef struct ps_row { int pid; char text[640]; char json[1200]; } ps_row;
typedef struct ps_state { ps_row *rows; int n, cap; bool json; } ps_state;

static void ps_describe(hkp_page *p, ps_row *r, bool json) {
    char full[256], cmd[256], mode[32], alloc[32], res[32], jc[600];
    uint64_t a = 0, rs = 0;
    hkp_command(p, full, sizeof full);
    /* The program's base name and its arguments. */
    const char *sp = strchr(full, ' '), *s0 = full;
    for (const char *s = full; *s && (sp == NULL || s < sp); s++)
        if (*s == '/') s0 = s + 1;
    snprintf(cmd, sizeof cmd, "%s", s0);
    hkp_get_str(p, "config.mode", mode, sizeof mode);
    hkp_get_u64(p, "stats.allocated", &a);
    hkp_get_u64(p, "stats.resident", &rs);
    uint64_t now = hkp_now_ms();
    double age = now > p->updated_ms ? (double)(now - p->updated_ms) / 1000.0 : 0.0;
    hkp_format_bytes(a, alloc, sizeof alloc);
    hkp_format_bytes(rs, res, sizeof res);
    snprintf(r->text, sizeof r->text, "%7d  %-28.28s %-9s %11s %11s %7.1fs", p->pid, cmd,
             mode[0] ? mode : "?", alloc, res, age);
    hkp_json_string(full, strlen(full), jc, sizeof jc);
    snprintf(r->json, sizeof r->json,
             "{\"pid\": %d, \"command\": %s, \"mode\": \"%s\", \"allocated\": %" PRIu64
             ", \"resident\": %" PRIu64 ", \"age_ms\": %" PRIu64 "}",
             p->pid, jc, mode, a, rs, now > p->updated_ms ? now - p->updated_ms : 0);
}

static int ps_cb(const char *path, unsigned uid, int pid, void *arg) {
    ps_state *st = arg;
    char why[256], err[512];
    if (hkp_is_stale(path, pid, why, sizeof why)) {
        if (unlink(path) == 0) cli_error("removed stale page %s: %s", path, why);
        else cli_error("stale page %s (%s) not removed: %s", path, why, strerror(errno));
        return 0;
    }
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 16;
        ps_row *r = realloc(st->rows, (size_t)cap * sizeof *r);
        if (r == NULL) return 1;
        st->rows = r;
        st->cap = cap;
    }
    ps_row *r = &st->rows[st->n++];
    r->pid = pid;
    hkp_page p;
    int rc = hkp_open_path(&p, path, false, err, sizeof err);
    if (rc == HKP_OK) rc = hkp_snapshot(&p, SNAP_TIMEOUT_MS, err, sizeof err);
    if (rc == HKP_OK) {
        ps_describe(&p, r, st->json);
        hkp_close(&p);
    } else {
        char je[600];
        snprintf(r->text, sizeof r->text, "%7d  (%s)", pid, err);
        hkp_json_string(err, strlen(err), je, sizeof je);
        snprintf(r->json, sizeof r->json, "{\"pid\": %d, \"error\": %s}", pid, je);
    }
    return 0;
}

static int by_pid(const void *a, const void *b) {
    return ((const ps_row *)a)->pid - ((const ps_row *)b)->pid;
}

static int cmd_ps(const hk_cli *c) {
    ps_state st = {.json = c->json};
    hkp_list(c->all ? -1 : (long)geteuid(), ps_cb, &st);
    qsort(st.rows, (size_t)st.n, sizeof *st.rows, by_pid);
    if (c->json) {
        printf("[");
        for (int i = 0; i < st.n; i++) printf("%s\n %s", i ? "," : "", st.rows[i].json);
        printf("%s]\n", st.n ? "\n" : "");
    } else {
        printf("%7s  %-28s %-9s %11s %11s %8s\n", "PID", "COMMAND", "MODE", "ALLOCATED", "RESIDENT", "AGE");
        for (int i = 0; i < st.n; i++) printf("%s\n", st.rows[i].text);
    }
    free(st.rows);
    return EXIT_OK;
}

/* ---- get, dump, list ---- */

static enum hkp_style style_of(const hk_cli *c) {
    return c->json ? HKP_JSON : c->human ? HKP_HUMAN : HKP_PLAIN;
}

static int cmd_get(const hk_cli *c) {
    hkp_page p;
    int rc = cli_open(c, &p, false);
    if (rc != EXIT_OK) return rc;
    int status = EXIT_OK, shown = 0;
    char out[2048], jname[300];
    if (c->json) printf("{");
    for (int i = 0; i < c->nargs; i++) {
        hkp_entry e;
        hkp_value v;
        if (!hkp_find(&p, c->args[i], &e)) {
            bool subtree = false;
            for (size_t k = 0; k < p.nent && !subtree; k++)
                subtree = hkp_entry_at(&p, k, &e) && under(&e, c->args[i]);
            if (subtree) cli_error("%s is not a leaf (hakctl -p %d dump %s shows its subtree)", c->args[i],
                                   c->pid, c->args[i]);
            else cli_error("no such key: %s", c->args[i]);
            status = EXIT_KEY;
            continue;
        }
        hkp_value_of(&p, &e, &v);
        hkp_format(&v, style_of(c), out, sizeof out);
        if (c->json) {
            hkp_json_string(c->args[i], strlen(c->args[i]), jname, sizeof jname);
            printf("%s%s: %s", shown++ ? ", " : "", jname, out);
        } else {
            printf("%s\n", out);
        }
    }
    if (c->json) printf("}\n");
    hkp_close(&p);
    return status;
}

/* dump --conf: the non-empty string leaves named *.conf under the prefix
 * (learn.*.conf: the learner's settings), joined into one HAKMEM_CONF. */
static int dump_conf(const hk_cli *c, hkp_page *p, const char *prefix) {
    char conf[4096] = "";
    size_t used = 0, found = 0;
    for (size_t i = 0; i < p->nent; i++) {
        hkp_entry e;
        hkp_value v;
        if (!hkp_entry_at(p, i, &e) || !under(&e, prefix) || e.type != HAK_CTL_STRING ||
            e.name_len < 5 || memcmp(e.name + e.name_len - 5, ".conf", 5) != 0)
            continue;
        found++;
        hkp_value_of(p, &e, &v);
        if (v.rc != 0 || v.s == NULL || v.len == 0) continue;
        int n = snprintf(conf + used, sizeof conf - used, "%s%.*s", used ? "," : "", (int)v.len, v.s);
        if (n > 0 && (size_t)n < sizeof conf - used) used += (size_t)n;
    }
    hkp_close(p);
    if (found == 0) {
        cli_error("no *.conf key under '%s' (try: dump learn --conf)", prefix);
        return EXIT_KEY;
    }
    printf(c->json ? "{\"HAKMEM_CONF\": \"%s\"}\n" : "HAKMEM_CONF=%s\n", conf);
    return EXIT_OK;
}

static int cmd_dump(const hk_cli *c, bool list) {
    const char *prefix = c->nargs > 0 ? c->args[0] : "";
    hkp_page p;
    int rc = cli_open(c, &p, false);
    if (rc != EXIT_OK) return rc;
    if (c->conf && !list) return dump_conf(c, &p, prefix);
    char name[300], out[2048], jn[320], doc[600];
    size_t shown = 0;
    if (c->json) printf("{");
    for (size_t i = 0; i < p.nent; i++) {
        hkp_entry e;
        hkp_value v;
        if (!hkp_entry_at(&p, i, &e) || !under(&e, prefix) || (!list && e.type == HAK_CTL_VOID)) continue;
        name_of(&e, name, sizeof name);
        if (list) {
            const char *access = e.type == HAK_CTL_VOID ? "action" : (e.flags & HK_SP_E_WRITABLE) ? "rw" : "r";
            hkp_printable(e.doc, e.doc_len, doc, sizeof doc);
            if (c->json) {
                hkp_json_string(name, strlen(name), jn, sizeof jn);
                hkp_json_string(doc, strlen(doc), out, sizeof out);
                printf("%s\n %s: {\"type\": \"%s\", \"access\": \"%s\", \"settable\": %s, \"doc\": %s}",
                       shown ? "," : "", jn, hkp_type_name(e.type), access,
                       (e.flags & HK_SP_E_SETTABLE) ? "true" : "false", out);
            } else {
                printf("%-40s %-22s %-6s%s %s\n", name, hkp_type_name(e.type), access,
                       (e.flags & HK_SP_E_SETTABLE) ? " set" : "    ", doc);
            }
            shown++;
            continue;
        }
        hkp_value_of(&p, &e, &v);
        hkp_format(&v, style_of(c), out, sizeof out);
        if (c->json) {
            hkp_json_string(name, strlen(name), jn, sizeof jn);
            printf("%s\n %s: %s", shown ? "," : "", jn, out);
        } else {
            printf("%s = %s\n", name, out);
        }
        shown++;
    }
    if (c->json) printf("%s}\n", shown ? "\n" : "");
    hkp_close(&p);
    if (shown == 0) {
        cli_error("no key under '%s'", prefix);
        return EXIT_KEY;
    }
    return EXIT_OK;
}

/* ---- set ---- */

/* Sizes and counts accept K, M, G, T (powers of 1024, optional "iB"). */
static bool convert_number(const char *in, char *out, size_t cap) {
    char *end;
    errno = 0;
    if (*in < '0' || *in > '9') return false;
    unsigned long long x = strtoull(in, &end, 10);
    if (errno != 0) return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    case '\0': break;
    default: return false;
    }
    if (shift) {
        end++;
        if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0) return false;
        if (x > (~0ULL >> shift)) return false;
        x <<= shift;
    }
    snprintf(out, cap, "%llu", x);
    return true;
}

static const char *result_text(int r) {
    switch (r) {
    case ENOENT: return "no such key in the process";
    case EPERM: return "not writable from outside the process (read-only, or not page-settable)";
    case EINVAL: return "invalid value";
    default: return strerror(r);
    }
}

/* After an applied command, the value written by the refresh that applied it. */
static void show_new_value(hkp_page *p, const hkp_entry *e, uint64_t applied_in, unsigned timeout_ms) {
    char err[256], out[1024];
    for (unsigned waited = 0; waited < timeout_ms; waited += 5) {
        if (hkp_snapshot(p, SNAP_TIMEOUT_MS, err, sizeof err) != HKP_OK) return;
        if (p->nrefresh >= applied_in) break;
        cli_msleep(5);
    }
    hkp_value v;
    hkp_value_of(p, e, &v);
    hkp_format(&v, HKP_PLAIN, out, sizeof out);
    printf("%.*s = %s\n", (int)e->name_len, e->name, out);
}

static int cmd_set(const hk_cli *c) {
    const char *key = c->args[0], *value = c->nargs > 1 ? c->args[1] : "";
    hkp_page p;
    int rc = cli_open(c, &p, true);
    if (rc != EXIT_OK) return rc;
    hkp_entry e;
    char num[64], err[512], old[1024];
    int status = EXIT_KEY;
    if (!hkp_find(&p, key, &e)) {
        cli_error("set %s: no such key", key);
    } else if (!(e.flags & HK_SP_E_WRITABLE)) {
        cli_error("set %s: %s is read-only", key, key);
    } else if (!(e.flags & HK_SP_E_SETTABLE)) {
        cli_error("set %s: writable only from inside the process (not page-settable; see hakctl(1))", key);
    } else if (c->nargs < 2 && e.type != HAK_CTL_VOID) {
        cli_error("set %s: a value is needed", key);
        status = EXIT_USAGE;
    } else {
        if ((e.type == HAK_CTL_SIZE || e.type == HAK_CTL_U64 || e.type == HAK_CTL_UNSIGNED) &&
            convert_number(value, num, sizeof num))
            value = num;
        hkp_value v;
        hkp_value_of(&p, &e, &v);
        hkp_format(&v, HKP_PLAIN, old, sizeof old);
        uint64_t applied_in = 0;
        int result = 0;
        rc = hkp_post(&p, key, value, c->timeout_ms, &result, &applied_in, err, sizeof err);
        if (rc != HKP_OK) {
            cli_error("set %s: %s", key, err);
            status = EXIT_NOPAGE;
        } else if (result != 0) {
            cli_error("set %s %s: %s", key, value, result_text(result));
        } else {
            if (e.type == HAK_CTL_VOID) printf("%s: done\n", key);
            else show_new_value(&p, &e, applied_in, c->timeout_ms);
            status = EXIT_OK;
        }
    }
    hkp_close(&p);
    return status;
}

/* ---- watch ---- */

typedef struct watch_key { hkp_entry e; hkp_value prev; uint64_t prev_ms; bool have_prev; } watch_key;

/* Class-stats fields that count events (rates make sense). */
static bool counting_field(size_t i) {
    return i < hkp_nclass_fields && hkp_class_field_grows[i];
}

static void rate_text(uint64_t now, uint64_t then, double dt, char *out, size_t cap) {
    if (dt <= 0) snprintf(out, cap, " (+?/s)");
    else snprintf(out, cap, " (%+.0f/s)", ((double)now - (double)then) / dt);
}

static void watch_value(watch_key *k, const hkp_value *v, uint64_t ms, const hk_cli *c, char *out, size_t cap) {
    double dt = k->have_prev && ms > k->prev_ms ? (double)(ms - k->prev_ms) / 1000.0 : 0;
    char rate[64];
    size_t o = 0;
    if (v->rc == 0 && v->type == HAK_CTL_CLASS_STATS) {
        for (size_t i = 0; i < v->nwords && i < hkp_nclass_fields && o < cap; i++) {
            rate[0] = '\0';
            if (counting_field(i) && k->have_prev) rate_text(v->words[i], k->prev.words[i], dt, rate, sizeof rate);
            o += (size_t)snprintf(out + o, cap - o, "%s%s=%" PRIu64 "%s", i ? " " : "", hkp_class_fields[i],
                                  v->words[i], rate);
        }
        return;
    }
    hkp_format(v, style_of(c), out, cap);
    if ((k->e.flags & HK_SP_E_COUNTER) && k->have_prev && v->rc == 0) {
        o = strlen(out);
        rate_text(v->u, k->prev.u, dt, rate, sizeof rate);
        snprintf(out + o, cap - o, "%s", rate);
    }
}

static int cmd_watch(const hk_cli *c) {
    hkp_page p;
    int rc = cli_open(c, &p, false);
    if (rc != EXIT_OK) return rc;
    watch_key *keys = calloc((size_t)c->nargs, sizeof *keys);
    for (int i = 0; keys != NULL && i < c->nargs; i++)
        if (!hkp_find(&p, c->args[i], &keys[i].e)) {
            cli_error("no such key: %s", c->args[i]);
            free(keys);
            hkp_close(&p);
            return EXIT_KEY;
        }
    cli_catch_signals();
    char err[512], out[2048], tbuf[32];
    int status = EXIT_OK;
    for (long n = 0; (c->count < 0 || n < c->count) && !cli_interrupted(); n++) {
        if (n > 0) cli_msleep(c->interval_ms);
        if (cli_interrupted()) break;
        if (kill(c->pid, 0) != 0 && errno == ESRCH) {
            cli_error("process %d exited", c->pid);
            status = EXIT_NOPAGE;
            break;
        }
        if (hkp_snapshot(&p, SNAP_TIMEOUT_MS, err, sizeof err) != HKP_OK) {
            cli_error("%s", err);
            status = EXIT_NOPAGE;
            break;
        }
        time_t t = (time_t)(p.updated_ms / 1000);
        strftime(tbuf, sizeof tbuf, "%H:%M:%S", localtime(&t));
        if (c->json) printf("{\"time_ms\": %" PRIu64, p.updated_ms);
        else printf("%s.%03u", tbuf, (unsigned)(p.updated_ms % 1000));
        for (int i = 0; i < c->nargs; i++) {
            hkp_value v;
            hkp_value_of(&p, &keys[i].e, &v);
            if (c->json) {
                hkp_format(&v, HKP_JSON, out, sizeof out);
                printf(", \"%s\": %s", c->args[i], out);
            } else {
                watch_value(&keys[i], &v, p.updated_ms, c, out, sizeof out);
                printf("  %s %s", c->args[i], out);
            }
            if (!keys[i].have_prev || p.updated_ms != keys[i].prev_ms) {
                keys[i].prev = v;
                keys[i].prev_ms = p.updated_ms;
                keys[i].have_prev = true;
            }
        }
        printf(c->json ? "}\n" : "\n");
        fflush(stdout);
    }
    free(keys);
    hkp_close(&p);
    return status;
}

/* ---- usage and dispatch ---- */

typedef struct command {
    const char *name;
    bool needs_pid;
    int min_args, max_args;  /* positional; -1: no limit */
    const char *usage;
} command;

static const command commands[] = {
    {"ps", false, 0, 0,
     "usage: hakctl ps [-a] [--json]\n"
     "  Lists the processes of this user that publish a stats page: pid, command,\n"
     "  mode, allocated and resident bytes, and the page's age.  Pages left by\n"
     "  processes that are gone are removed.  -a: every user's pages.\n"},
    {"get", true, 1, -1,
     "usage: hakctl -p PID get KEY... [--json] [--human]\n"
     "  Prints the value of each KEY, one per line (exact; --human: KiB/MiB for\n"
     "  byte counts; --json: one object).  Exit status 1 when a key is unknown.\n"},
    {"dump", true, 0, 1,
     "usage: hakctl -p PID dump [PREFIX] [--json] [--human] [--conf]\n"
     "  Prints every leaf (or those under PREFIX) as 'name = value'.  --conf:\n"
     "  one HAKMEM_CONF=... line from the *.conf leaves instead (dump learn\n"
     "  --conf: the learner's settings, to start a program with them).\n"},
    {"list", true, 0, 1,
     "usage: hakctl -p PID list [PREFIX] [--json]\n"
     "  Prints every leaf's name, type, access ('set': settable through the page)\n"
     "  and documentation.\n"},
    {"set", true, 1, 2,
     "usage: hakctl -p PID set KEY VALUE [--timeout MS]\n"
     "  Asks the process to write KEY through its command ring; it applies it at\n"
     "  its next refresh.  Prints the new value.  Only page-settable keys are\n"
     "  accepted (see hakctl list).  Sizes take K, M, G suffixes.  Waits up to\n"
     "  --timeout ms (default 3000).\n"},
    {"watch", true, 1, -1,
     "usage: hakctl -p PID watch KEY... [-i MS] [-n COUNT] [--json]\n"
     "  Prints the keys every MS ms (default 1000), COUNT times (default: until\n"
     "  interrupted), with rates per second for counters.\n"},
    {"top", true, 0, 0,
     "usage: hakctl -p PID top [-i MS] [-n COUNT] [-a]\n"
     "  A live per-class table: size, live blocks, allocations and frees per\n"
     "  second, thread-cache hit rate, pages.  q quits.  When standard output is\n"
     "  not a terminal, prints COUNT plain tables (default 1).  -a: every class.\n"},
    {"profile", false, 1, 3,
     "usage: hakctl -p PID profile start [--rate BYTES] | stop | reset\n"
     "       hakctl -p PID profile dump [-o FILE] [--format pprof|folded|text|svg] [--alloc] [-n N]\n"
     "       hakctl -p PID profile top [-n N] [--alloc] [-i MS] [-c COUNT]\n"
     "       hakctl profile diff OLD NEW [-n N] [--alloc]\n"
     "  The heap profiler of a running process (prof.* leaves): start samples\n"
     "  one allocation per BYTES allocated on average (default 524288); dump has\n"
     "  the process write its profile and prints it or writes it to FILE (pprof:\n"
     "  the heap_v2 text jeprof and go tool pprof read; folded: one line per\n"
     "  stack with estimated bytes; text: a table of the N heaviest stacks, all\n"
     "  by default, with bytes, blocks, share and frames; svg: a flame graph;\n"
     "  --alloc: all allocations since start instead of live ones); top prints\n"
     "  the N stacks (default 10) holding the most estimated live bytes, with -i\n"
     "  every MS ms (default 1000) until ^C, the process exits, or COUNT tables.\n"
     "  diff (no process): the stacks that grew most from OLD to NEW, two dumps\n"
     "  in the pprof or folded format, N rows (default 20).\n"},
    {"metrics", false, 0, 0,
     "usage: hakctl -p PID metrics | hakctl metrics --all\n"
     "  Prometheus text exposition of one process, or (--all) of every live\n"
     "  process of this user, labelled by pid and command.\n"},
    {"serve", false, 0, 0,
     "usage: hakctl serve --listen 127.0.0.1:PORT [--max-requests N]\n"
     "  Serves GET /metrics (every live process of this user) over HTTP on a\n"
     "  loopback address, one request at a time.\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: hakctl [-p PID] COMMAND [ARGS] [OPTIONS]\n"
               "commands:\n"
               "  ps                         processes with a stats page\n"
               "  -p PID get KEY...          values, one per line\n"
               "  -p PID dump [PREFIX]       the whole tree or a subtree\n"
               "  -p PID list [PREFIX]       names, types, access and docs\n"
               "  -p PID set KEY VALUE       write through the command ring\n"
               "  -p PID watch KEY...        values over time (-i MS, -n COUNT)\n"
               "  -p PID top                 live per-class table\n"
               "  -p PID profile SUB         heap profiler: start, stop, reset, dump, top\n"
               "  profile diff OLD NEW       growth between two heap profile dumps\n"
               "  -p PID metrics             Prometheus text exposition (--all: every process)\n"
               "  serve --listen ADDR:PORT   HTTP /metrics endpoint (loopback only)\n"
               "options: --json, --human, --timeout MS, -i MS, -n COUNT, -c COUNT, -a, -h (also after a\n"
               "command: its own help), -V.\n"
               "exit status: 0 ok, 1 key or value error, 2 usage, 3 no such process or no page.\n");
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || x < lo || x > hi) return false;
    *out = x;
    return true;
}

/* An option with a value: "-p 12", "-p12", "--pid 12" or "--pid=12". */
static const char *opt_value(int argc, char **argv, int *i, const char *s, const char *l) {
    const char *a = argv[*i];
    size_t ll = strlen(l);
    if (strcmp(a, s) == 0 || strcmp(a, l) == 0) return *i + 1 < argc ? argv[++*i] : NULL;
    if (strncmp(a, l, ll) == 0 && a[ll] == '=') return a + ll + 1;
    if (a[1] == s[1] && a[1] != '-' && a[2] != '\0') return a + 2;
    return NULL;
}

static bool is_opt(const char *a, const char *s, const char *l) {
    size_t sl = strlen(s), ll = strlen(l);
    return strcmp(a, s) == 0 || strcmp(a, l) == 0 || strncmp(a, l, ll) == 0 ||
           (a[0] == '-' && a[1] == s[1] && a[1] != '-' && strncmp(a, s, sl) == 0);
}

static int parse_option(hk_cli *c, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long x;
    if (!strcmp(a, "-j") || !strcmp(a, "--json")) c->json = true;
    else if (!strcmp(a, "-H") || !strcmp(a, "--human")) c->human = true;
    else if (!strcmp(a, "-a") || !strcmp(a, "--all")) c->all = true;
    else if (!strcmp(a, "--conf")) c->conf = true;
    else if (!strcmp(a, "--alloc")) c->alloc = true;
    else if (is_opt(a, "-r", "--rate")) {
        if ((v = opt_value(argc, argv, i, "-r", "--rate")) == NULL || !parse_long(v, 1, 1L << 40, &x)) return -1;
        c->rate = (unsigned long long)x;
    } else if (is_opt(a, "-o", "--output")) {
        if ((c->output = opt_value(argc, argv, i, "-o", "--output")) == NULL) return -1;
    } else if (is_opt(a, "-f", "--format")) {
        if ((c->format = opt_value(argc, argv, i, "-f", "--format")) == NULL) return -1;
    }
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) c->help = true;
    else if (is_opt(a, "-p", "--pid")) {
        if ((v = opt_value(argc, argv, i, "-p", "--pid")) == NULL || !parse_long(v, 1, 0x7fffffff, &x)) return -1;
        c->pid = (int)x;
    } else if (is_opt(a, "-t", "--timeout")) {
        if ((v = opt_value(argc, argv, i, "-t", "--timeout")) == NULL || !parse_long(v, 1, 3600000, &x)) return -1;
        c->timeout_ms = (unsigned)x;
    } else if (is_opt(a, "-i", "--interval")) {
        if ((v = opt_value(argc, argv, i, "-i", "--interval")) == NULL || !parse_long(v, 10, 3600000, &x)) return -1;
        c->interval_ms = (unsigned)x;
        c->interval_given = true;
    } else if (is_opt(a, "-c", "--frames")) {
        if ((v = opt_value(argc, argv, i, "-c", "--frames")) == NULL || !parse_long(v, 1, 1L << 40, &x)) return -1;
        c->frames = x;
    } else if (is_opt(a, "-n", "--count")) {
        if ((v = opt_value(argc, argv, i, "-n", "--count")) == NULL || !parse_long(v, 1, 1L << 40, &x)) return -1;
        c->count = x;
    } else if (is_opt(a, "-l", "--listen")) {
        if ((c->listen = opt_value(argc, argv, i, "-l", "--listen")) == NULL) return -1;
    } else if (is_opt(a, "-m", "--max-requests")) {
        if ((v = opt_value(argc, argv, i, "-m", "--max-requests")) == NULL || !parse_long(v, 1, 1L << 40, &x)) return -1;
        c->max_requests = x;
    } else {
        return 0; /* not an option */
    }
    return 1;
}

static int parse_args(hk_cli *c, int argc, char **argv) {
    c->timeout_ms = 3000;
    c->interval_ms = 1000;
    c->count = -1;
    c->frames = -1;
    c->max_requests = -1;
    c->args = calloc((size_t)argc, sizeof *c->args);
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && !strcmp(a, "--")) {
            opts_done = true;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
                printf("hakctl (hakmem) %s, stats page layout %d\n", HAKMEM_VERSION, HK_SP_VERSION);
                exit(EXIT_OK);
            }
            int r = parse_option(c, argc, argv, &i);
            if (r < 0) {
                cli_error("option %s needs a valid value", a);
                return EXIT_USAGE;
            }
            /* A negative VALUE of set, e.g. arena.0.decay_ms -1. */
            bool set_value = c->cmd && !strcmp(c->cmd, "set") && c->nargs == 1;
            if (r == 0 && !set_value) {
                cli_error("unknown option %s (hakctl --help)", a);
                return EXIT_USAGE;
            }
            if (r == 1) continue;
        }
        if (c->cmd == NULL) c->cmd = a;
        else c->args[c->nargs++] = argv[i];
    }
    return EXIT_OK;
}

static int run(const hk_cli *c, const command *cmd) {
    if (c->help) {
        fputs(cmd->usage, stdout);
        return EXIT_OK;
    }
    bool pid_needed = cmd->needs_pid || (!strcmp(cmd->name, "metrics") && !c->all) ||
                      (!strcmp(cmd->name, "profile") && c->nargs > 0 && strcmp(c->args[0], "diff") != 0);
    if (c->nargs < cmd->min_args || (cmd->max_args >= 0 && c->nargs > cmd->max_args) ||
        (pid_needed && c->pid == 0)) {
        if (pid_needed && c->pid == 0) cli_error("%s needs -p PID", cmd->name);
        else cli_error("wrong number of arguments for %s", cmd->name);
        fputs(cmd->usage, stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(cmd->name, "ps")) return cmd_ps(c);
    if (!strcmp(cmd->name, "get")) return cmd_get(c);
    if (!strcmp(cmd->name, "dump")) return cmd_dump(c, false);
    if (!strcmp(cmd->name, "list")) return cmd_dump(c, true);
    if (!strcmp(cmd->name, "set")) return cmd_set(c);
    if (!strcmp(cmd->name, "watch")) return cmd_watch(c);
    if (!strcmp(cmd->name, "top")) return cmd_top(c);
    if (!strcmp(cmd->name, "metrics")) return cmd_metrics(c);
    if (!strcmp(cmd->name, "profile")) return cmd_profile(c);
    return cmd_serve(c);
}

int main(int argc, char **argv) {
    hk_cli c;
    memset(&c, 0, sizeof c);
    int rc = parse_args(&c, argc, argv);
    if (rc != EXIT_OK) return rc;
    if (c.cmd != NULL && !strcmp(c.cmd, "help")) {
        c.cmd = c.nargs > 0 ? c.args[0] : NULL;
        c.help = true;
        c.nargs = 0;
    }
    if (c.cmd == NULL) {
        usage(c.help ? stdout : stderr);
        return c.help ? EXIT_OK : EXIT_USAGE;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(c.cmd, commands[i].name)) return run(&c, &commands[i]);
    cli_error("unknown command '%s' (hakctl --help)", c.cmd);
    return EXIT_USAGE;
}
