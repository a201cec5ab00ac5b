/*
 * hakctl top: a live per-class table (size, live blocks, allocations and
 * frees per second, thread-cache hit rate, pages), redrawn every interval in
 * a terminal until q; COUNT plain tables when standard output is not one.
 * The classes are the page's struct hak_class_stats leaves, whatever their
 * names: "tiny.class.3.stats" shows as tiny.3.
 */
#include "hakctl.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hakmem/hakmem.h"

enum { F_SIZE, F_NMALLOC, F_NDALLOC, F_CURBLOCKS, F_CURSLABS, F_NREFILLS, F_NFLUSHES, F_NREMOTE, F_HITS, F_N };

typedef struct top_class {
    hkp_entry e;
    char label[48];
    uint64_t cur[F_N], prev[F_N];
} top_class;

typedef struct top_state {
    top_class *cls;
    size_t n;
    uint64_t prev_ms, cur_ms;
    bool tty;
    struct termios saved;
    bool raw;
} top_state;

/* "tiny.class.3.stats" -> "tiny.3"; other names as they are. */
static void label_of(const hkp_entry *e, char *out, size_t cap) {
    const char *cls = memmem(e->name, e->name_len, ".class.", 7);
    const char *end = e->name + e->name_len;
    if (cls != NULL && end - cls > 7) {
        const char *idx = cls + 7, *dot = memchr(idx, '.', (size_t)(end - idx));
        snprintf(out, cap, "%.*s.%.*s", (int)(cls - e->name), e->name,
                 (int)((dot ? dot : end) - idx), idx);
    } else {
        snprintf(out, cap, "%.*s", (int)e->name_len, e->name);
    }
}

static bool collect(top_state *t, const hkp_page *p) {
    size_t n = 0;
    hkp_entry e;
    for (size_t i = 0; i < p->nent; i++)
        if (hkp_entry_at(p, i, &e) && e.type == HAK_CTL_CLASS_STATS) n++;
    t->cls = calloc(n ? n : 1, sizeof *t->cls);
    if (t->cls == NULL) return false;
    for (size_t i = 0; i < p->nent; i++)
        if (hkp_entry_at(p, i, &e) && e.type == HAK_CTL_CLASS_STATS) {
            t->cls[t->n].e = e;
            label_of(&e, t->cls[t->n].label, sizeof t->cls[t->n].label);
            t->n++;
        }
    return true;
}

static void sample(top_state *t, const hkp_page *p) {
    t->prev_ms = t->cur_ms;
    t->cur_ms = p->updated_ms;
    for (size_t i = 0; i < t->n; i++) {
        top_class *c = &t->cls[i];
        hkp_value v;
        memcpy(c->prev, c->cur, sizeof c->prev);
        hkp_value_of(p, &c->e, &v);
        memset(c->cur, 0, sizeof c->cur);
        if (v.rc == 0) memcpy(c->cur, v.words, (v.nwords < F_N ? v.nwords : F_N) * 8);
    }
}

static void per_sec(uint64_t now, uint64_t then, double dt, char *out, size_t cap) {
    if (dt <= 0) snprintf(out, cap, "-");
    else snprintf(out, cap, "%.0f", now >= then ? (double)(now - then) / dt : 0.0);
}

static void hit_rate(const top_class *c, char *out, size_t cap) {
    uint64_t dm = c->cur[F_NMALLOC] - c->prev[F_NMALLOC], dh = c->cur[F_HITS] - c->prev[F_HITS];
    if (c->cur[F_NMALLOC] >= c->prev[F_NMALLOC] && dm > 0 && dh <= dm)
        snprintf(out, cap, "%.1f", 100.0 * (double)dh / (double)dm);
    else if (c->cur[F_NMALLOC] > 0)
        snprintf(out, cap, "%.1f", 100.0 * (double)c->cur[F_HITS] / (double)c->cur[F_NMALLOC]);
    else
        snprintf(out, cap, "-");
}

static void render(const top_state *t, const hkp_page *p, const hk_cli *c, int max_rows) {
    char cmd[64], mode[32], alloc[32], res[32], a[32], f[32], hit[16];
    uint64_t al = 0, rs = 0;
    hkp_command(p, cmd, sizeof cmd);
    hkp_get_str(p, "config.mode", mode, sizeof mode);
    hkp_get_u64(p, "stats.allocated", &al);
    hkp_get_u64(p, "stats.resident", &rs);
    hkp_format_bytes(al, alloc, sizeof alloc);
    hkp_format_bytes(rs, res, sizeof res);
    uint64_t now = hkp_now_ms();
    double age = now > p->updated_ms ? (double)(now - p->updated_ms) / 1000.0 : 0;
    if (t->tty) printf("\033[H\033[2J");
    printf("pid %d  %s  mode %s  allocated %s  resident %s  page %.1fs old%s\n", p->pid, cmd,
           mode, alloc, res, age, t->tty ? "  (q quits)" : "");
    printf("%-10s %9s %12s %11s %11s %6s %7s\n", "CLASS", "SIZE", "LIVE", "ALLOC/s", "FREE/s", "HIT%", "PAGES");
    double dt = t->cur_ms > t->prev_ms && t->prev_ms ? (double)(t->cur_ms - t->prev_ms) / 1000.0 : 0;
    int rows = 0;
    for (size_t i = 0; i < t->n && (max_rows <= 0 || rows < max_rows); i++) {
        const top_class *k = &t->cls[i];
        if (!c->all && k->cur[F_NMALLOC] == 0 && k->cur[F_CURSLABS] == 0) continue;
        per_sec(k->cur[F_NMALLOC], k->prev[F_NMALLOC], dt, a, sizeof a);
        per_sec(k->cur[F_NDALLOC], k->prev[F_NDALLOC], dt, f, sizeof f);
        hit_rate(k, hit, sizeof hit);
        printf("%-10s %9" PRIu64 " %12" PRIu64 " %11s %11s %6s %7" PRIu64 "\n", k->label, k->cur[F_SIZE],
               k->cur[F_CURBLOCKS], a, f, hit, k->cur[F_CURSLABS]);
        rows++;
    }
    fflush(stdout);
}

static void raw_mode(top_state *t, bool on) {
    if (on) {
        if (isatty(0) && tcgetattr(0, &t->saved) == 0) {
            struct termios r = t->saved;
            r.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
            r.c_cc[VMIN] = 0;
            r.c_cc[VTIME] = 0;
            t->raw = tcsetattr(0, TCSANOW, &r) == 0;
        }
        printf("\033[?1049h\033[?25l"); /* alternate screen, no cursor */
    } else {
        if (t->raw) tcsetattr(0, TCSANOW, &t->saved);
        printf("\033[?25h\033[?1049l");
        fflush(stdout);
    }
}

/* Waits ms, or until q; true when the user quit. */
static bool wait_or_quit(const top_state *t, unsigned ms) {
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    uint64_t end = hkp_now_ms() + ms;
    while (!cli_interrupted()) {
        uint64_t now = hkp_now_ms();
        if (now >= end) return false;
        if (!t->raw) {
            struct timespec ts = {0, (long)((end - now) % 1000) * 1000000L};
            ts.tv_sec = (time_t)((end - now) / 1000);
            nanosleep(&ts, NULL);
            continue;
        }
        if (poll(&pfd, 1, (int)(end - now)) > 0) {
            char ch;
            if (read(0, &ch, 1) == 1 && (ch == 'q' || ch == 'Q')) return true;
        }
    }
    return true;
}

int cmd_top(const hk_cli *c) {
    hkp_page p;
    int rc = cli_open(c, &p, false);
    if (rc != EXIT_OK) return rc;
    top_state t;
    memset(&t, 0, sizeof t);
    t.tty = isatty(1);
    if (!collect(&t, &p)) {
        hkp_close(&p);
        return EXIT_NOPAGE;
    }
    long count = c->count >= 0 ? c->count : t.tty ? -1 : 1;
    cli_catch_signals();
    if (t.tty) raw_mode(&t, true);
    sample(&t, &p);
    if (t.tty) render(&t, &p, c, 0); /* at once; rates from the next frame */
    char err[512];
    int status = EXIT_OK;
    for (long n = 0; count < 0 || n < count; n++) {
        if (wait_or_quit(&t, c->interval_ms)) break;
        if (kill(c->pid, 0) != 0 && errno == ESRCH) {
            snprintf(err, sizeof err, "process %d exited", c->pid);
            status = EXIT_NOPAGE;
            break;
        }
        if (hkp_snapshot(&p, SNAP_TIMEOUT_MS, err, sizeof err) != HKP_OK) {
            status = EXIT_NOPAGE;
            break;
        }
        sample(&t, &p);
        struct winsize ws;
        int rows = t.tty && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 3 ? ws.ws_row - 3 : 0;
        render(&t, &p, c, rows);
        if (!t.tty && (count < 0 || n + 1 < count)) printf("\n");
    }
    if (t.tty) raw_mode(&t, false);
    if (status != EXIT_OK) cli_error("%s", err);
    free(t.cls);
    hkp_close(&p);
    return status;
}
