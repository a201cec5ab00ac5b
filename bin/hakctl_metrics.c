/*
 * hakctl metrics and serve: the Prometheus text exposition (format 0.0.4)
 * of stats pages, without knowing the namespace.  A leaf's name becomes the
 * metric name; a numeric component becomes a label named after the component
 * before it, which stays in the name ("arena.0.decay_ms" ->
 * hakmem_arena_decay_ms{arena="0"}), and the component before ".class.<i>"
 * becomes the label tier ("tiny.class.3.stats.nmalloc" ->
 * hakmem_class_stats_nmalloc_total{tier="tiny",class="3"}).  Counters end
 * in _total; strings become hakmem_<name>_info{value="..."} 1; the doc
 * strings are the HELP text.  Samples are grouped by family across
 * processes, each family's HELP and TYPE once, before its samples.
 */
#include "hakctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hakmem/hakmem.h"

#define NAME_MAX_LEN 160
#define LABELS_MAX 384

typedef struct family {
    char name[NAME_MAX_LEN];
    const char *type;   /* "counter" or "gauge" */
    char help[256];
} family;

typedef struct sample {
    int fam;
    char labels[LABELS_MAX];  /* without braces; may be empty */
    char value[32];
} sample;

typedef struct exposition {
    family *fams;
    int nfams, capfams;
    sample **samples;  /* per page */
    int *nsamples;
} exposition;

/* ---- building ---- */

static void escape_label(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < cap; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '"') out[o++] = '\\', out[o++] = ch;
        else if (ch == '\n') out[o++] = '\\', out[o++] = 'n';
        else out[o++] = (ch >= 32 && ch < 127) ? ch : '?';
    }
    out[o] = '\0';
}

static void escape_help(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < cap; i++) {
        char ch = s[i];
        if (ch == '\\') out[o++] = '\\', out[o++] = '\\';
        else if (ch == '\n') out[o++] = '\\', out[o++] = 'n';
        else out[o++] = (ch >= 32 && ch < 127) ? ch : '?';
    }
    out[o] = '\0';
}

static bool all_digits(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static void append(char *buf, size_t cap, const char *s, size_t n) {
    size_t l = strlen(buf);
    for (size_t i = 0; i < n && l + 1 < cap; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        buf[l++] = ok ? ch : '_';
    }
    buf[l] = '\0';
}

static void add_label(char *labels, size_t cap, const char *name, size_t nl, const char *val, size_t vl) {
    char n[64] = "", v[160];
    append(n, sizeof n, name, nl);
    escape_label(val, vl, v, sizeof v);
    size_t l = strlen(labels);
    snprintf(labels + l, cap - l, "%s%s=\"%s\"", l ? "," : "", n, v);
}

/* Metric name and labels of a leaf name (see the file comment). */
static void metric_of(const hkp_entry *e, char *name, char *labels) {
    const char *comp[16];
    size_t len[16], n = 0;
    const char *s = e->name, *end = e->name + e->name_len;
    while (s < end && n < 16) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        comp[n] = s;
        len[n++] = (size_t)((dot ? dot : end) - s);
        s = dot ? dot + 1 : end;
    }
    snprintf(name, NAME_MAX_LEN, "hakmem");
    for (size_t i = 0; i < n; i++) {
        bool tier = i + 2 < n && len[i + 1] == 5 && !memcmp(comp[i + 1], "class", 5) && all_digits(comp[i + 2], len[i + 2]);
        if (tier) {
            add_label(labels, LABELS_MAX, "tier", 4, comp[i], len[i]);
            continue;
        }
        if (all_digits(comp[i], len[i])) continue; /* a label of the component before */
        append(name, NAME_MAX_LEN, "_", 1);
        append(name, NAME_MAX_LEN, comp[i], len[i]);
        if (i + 1 < n && all_digits(comp[i + 1], len[i + 1]))
            add_label(labels, LABELS_MAX, comp[i], len[i], comp[i + 1], len[i + 1]);
    }
}

static int family_index(exposition *x, const char *name, const char *type, const hkp_entry *e) {
    for (int i = 0; i < x->nfams; i++)
        if (!strcmp(x->fams[i].name, name)) return i;
    if (x->nfams == x->capfams) {
        int cap = x->capfams ? 2 * x->capfams : 64;
        family *f = realloc(x->fams, (size_t)cap * sizeof *f);
        if (f == NULL) return -1;
        x->fams = f;
        x->capfams = cap;
    }
    family *f = &x->fams[x->nfams];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->type = type;
    if (e->doc_len) escape_help(e->doc, e->doc_len, f->help, sizeof f->help);
    else snprintf(f->help, sizeof f->help, "hakmem leaf %.*s", (int)e->name_len, e->name);
    return x->nfams++;
}

/* One leaf's sample; false when it has none (actions, structs, errors). */
static bool sample_of(const hkp_page *p, const hkp_entry *e, char *name, char *labels, char *value,
                      const char **type) {
    hkp_value v;
    hkp_value_of(p, e, &v);
    if (v.rc != 0) return false;
    metric_of(e, name, labels);
    *type = "gauge";
    switch (e->type) {
    case HAK_CTL_BOOL: snprintf(value, 32, "%d", v.u ? 1 : 0); return true;
    case HAK_CTL_UNSIGNED: case HAK_CTL_SIZE: snprintf(value, 32, "%" PRIu64, v.u); return true;
    case HAK_CTL_I64: snprintf(value, 32, "%" PRId64, (int64_t)v.u); return true;
    case HAK_CTL_U64:
        snprintf(value, 32, "%" PRIu64, v.u);
        if (e->flags & HK_SP_E_COUNTER) {
            size_t l = strlen(name);
            if (l < 6 || strcmp(name + l - 6, "_total") != 0) append(name, NAME_MAX_LEN, "_total", 6);
            *type = "counter";
        }
        return true;
    case HAK_CTL_STRING:
        append(name, NAME_MAX_LEN, "_info", 5);
        add_label(labels, LABELS_MAX, "value", 5, v.s, v.len);
        snprintf(value, 32, "1");
        return true;
    default:
        return false;
    }
}

static bool page_samples(exposition *x, int k, const hkp_page *p, bool labelled) {
    sample *out = calloc(p->nent + 1, sizeof *out);
    if (out == NULL) return false;
    char base[LABELS_MAX] = "", cmd[128], pid[16];
    if (labelled) {
        snprintf(pid, sizeof pid, "%d", p->pid);
        add_label(base, sizeof base, "pid", 3, pid, strlen(pid));
        hkp_command(p, cmd, sizeof cmd);
        add_label(base, sizeof base, "command", 7, cmd, strlen(cmd));
    }
    int n = 0;
    for (size_t i = 0; i < p->nent; i++) {
        hkp_entry e;
        char name[NAME_MAX_LEN];
        const char *type;
        sample *s = &out[n];
        snprintf(s->labels, sizeof s->labels, "%s", base);
        if (!hkp_entry_at(p, i, &e) || !sample_of(p, &e, name, s->labels, s->value, &type)) continue;
        s->fam = family_index(x, name, type, &e);
        bool dup = s->fam < 0;
        for (int j = 0; j < n && !dup; j++) dup = out[j].fam == s->fam && !strcmp(out[j].labels, s->labels);
        if (!dup) n++;
    }
    /* How old the page is: a scraper can tell a stale process. */
    static const char age_doc[] = "seconds since the process last refreshed its stats page";
    hkp_entry age = {.name = "page.age_seconds", .name_len = 16, .doc = age_doc, .doc_len = sizeof age_doc - 1};
    out[n].fam = family_index(x, "hakmem_page_age_seconds", "gauge", &age);
    snprintf(out[n].labels, sizeof out[n].labels, "%s", base);
    uint64_t now = hkp_now_ms();
    snprintf(out[n].value, sizeof out[n].value, "%.3f",
             now > p->updated_ms ? (double)(now - p->updated_ms) / 1000.0 : 0.0);
    if (out[n].fam >= 0) n++;
    x->samples[k] = out;
    x->nsamples[k] = n;
    return true;
}

void metrics_write(hkp_page *pages, int npages, bool labelled, emit_fn emit, void *arg) {
    exposition x;
    memset(&x, 0, sizeof x);
    x.samples = calloc((size_t)npages + 1, sizeof *x.samples);
    x.nsamples = calloc((size_t)npages + 1, sizeof *x.nsamples);
    for (int k = 0; x.samples && x.nsamples && k < npages; k++) page_samples(&x, k, &pages[k], labelled);
    char line[1024];
    for (int f = 0; f < x.nfams; f++) {
        snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", x.fams[f].name, x.fams[f].help,
                 x.fams[f].name, x.fams[f].type);
        emit(arg, line);
        for (int k = 0; k < npages; k++)
            for (int i = 0; x.samples[k] && i < x.nsamples[k]; i++) {
                const sample *s = &x.samples[k][i];
                if (s->fam != f) continue;
                snprintf(line, sizeof line, "%s%s%s%s %s\n", x.fams[f].name, s->labels[0] ? "{" : "",
                         s->labels, s->labels[0] ? "}" : "", s->value);
                emit(arg, line);
            }
    }
    for (int k = 0; x.samples && k < npages; k++) free(x.samples[k]);
    free(x.samples);
    free(x.nsamples);
    free(x.fams);
}

/* ---- every live process of this user ---- */

typedef struct gather { hkp_page *pages; int n, cap; } gather;

static int gather_cb(const char *path, unsigned uid, int pid, void *arg) {
    gather *g = arg;
    char why[256], err[512];
    if (hkp_is_stale(path, pid, why, sizeof why)) return 0;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 8;
        hkp_page *p = realloc(g->pages, (size_t)cap * sizeof *p);
        if (p == NULL) return 1;
        g->pages = p;
        g->cap = cap;
    }
    hkp_page *p = &g->pages[g->n];
    int rc = hkp_open_path(p, path, false, err, sizeof err);
    if (rc == HKP_OK && (rc = hkp_snapshot(p, SNAP_TIMEOUT_MS, err, sizeof err)) != HKP_OK) hkp_close(p);
    if (rc == HKP_OK) g->n++;
    else cli_error("skipping %s: %s", path, err);
    return 0;
}

static void gather_free(gather *g) {
    for (int i = 0; i < g->n; i++) hkp_close(&g->pages[i]);
    free(g->pages);
}

static void emit_stdout(void *arg, const char *text) { fputs(text, stdout); }

int cmd_metrics(const hk_cli *c) {
    if (!c->all) {
        hkp_page p;
        int rc = cli_open(c, &p, false);
        if (rc != EXIT_OK) return rc;
        metrics_write(&p, 1, false, emit_stdout, NULL);
        hkp_close(&p);
        return EXIT_OK;
    }
    gather g = {0};
    hkp_list((long)geteuid(), gather_cb, &g);
    metrics_write(g.pages, g.n, true, emit_stdout, NULL);
    gather_free(&g);
    return EXIT_OK;
}

/* ---- serve ---- */

typedef struct buf { char *p; size_t len, cap; bool failed; } buf;

static void emit_buf(void *arg, const char *text) {
    buf *b = arg;
    size_t n = strlen(text);
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, text, n + 1);
    b->len += n;
}

static bool is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return false;
}

/* A listening socket on a loopback HOST:PORT ([::1]:PORT for IPv6); -1
 * with a message on failure. */
static int listen_on(const char *spec, char *shown, size_t cap) {
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof host) {
        cli_error("--listen takes HOST:PORT, e.g. 127.0.0.1:9464");
        return -2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        cli_error("--listen %s: %s", spec, gai_strerror(rc));
        return -2;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        if (!is_loopback(a->ai_addr)) {
            cli_error("--listen %s: serve listens on loopback addresses only", spec);
            freeaddrinfo(ai);
            return -2;
        }
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        cli_error("--listen %s: %s", spec, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[64] = "?";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, h, sizeof h);
            port = ntohs(s4->sin_port);
            snprintf(shown, cap, "%s:%u", h, port);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof h);
            port = ntohs(s6->sin6_port);
            snprintf(shown, cap, "[%s]:%u", h, port);
        }
    }
    return fd;
}

/* Reads the request head (at most 8 KiB, 2 s); false on a bad request. */
static bool read_request(int fd, char *req, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, req + n, cap - 1 - n, 0);
        if (r <= 0) return false;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) return true;
    }
    return false;
}

static void respond(int fd, int code, const char *reason, const char *ctype, const char *body, size_t len) {
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      code, reason, ctype, len);
    if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) != hl) return;
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

static void serve_one(int fd) {
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char req[8192], method[16], path[256];
    if (!read_request(fd, req, sizeof req) || sscanf(req, "%15s %255s", method, path) != 2) {
        respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12);
        return;
    }
    bool head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") != 0 && !head) {
        respond(fd, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
        return;
    }
    if (!strcmp(path, "/")) {
        static const char idx[] = "hakctl serve: the metrics of this user's hakmem processes are at /metrics\n";
        respond(fd, 200, "OK", "text/plain; charset=utf-8", idx, head ? 0 : sizeof idx - 1);
        return;
    }
    if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
        respond(fd, 404, "Not Found", "text/plain", "not found\n", 10);
        return;
    }
    gather g = {0};
    buf b = {0};
    hkp_list((long)geteuid(), gather_cb, &g);
    metrics_write(g.pages, g.n, true, emit_buf, &b);
    gather_free(&g);
    if (b.failed) respond(fd, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
    else respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", head ? 0 : b.len);
    free(b.p);
}

int cmd_serve(const hk_cli *c) {
    if (c->listen == NULL) {
        cli_error("serve needs --listen 127.0.0.1:PORT");
        return EXIT_USAGE;
    }
    char shown[128] = "";
    int lfd = listen_on(c->listen, shown, sizeof shown);
    if (lfd < 0) return lfd == -2 ? EXIT_USAGE : EXIT_KEY;
    signal(SIGPIPE, SIG_IGN);
    cli_catch_signals();
    printf("hakctl: serving http://%s/metrics\n", shown);
    fflush(stdout);
    long served = 0;
    while (!cli_interrupted() && (c->max_requests < 0 || served < c->max_requests)) {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 250) <= 0) continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve_one(fd);
        close(fd);
        served++;
    }
    close(lfd);
    return EXIT_OK;
}
