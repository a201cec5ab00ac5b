/*
 * Reading heap profiles (hakctl_stacks.h).  Three layouts:
 *
 *   folded (hakmem's prof.dump_folded*, flamegraph.pl's input):
 *     main;build_index;xmalloc 67108864
 *   gperftools' heap profile (hakmem's prof.dump):
 *     heap profile: 137: 1301504 [7173: 54140928] @ heap_v2/524288
 *     119: 121856 [5200: 5324800] @ 0x56211787f1ad 0x56211787f2bd ...
 *     MAPPED_LIBRARIES:
 *     <the process's /proc/PID/maps>
 *   jemalloc's heap_v2 (what hakmem wrote before):
 *     heap_v2/524288
 *       t*: 137: 1301504 [7173: 54140928]
 *     @ 0x56211787f1ad 0x56211787f2bd ...
 *       t*: 119: 121856 [5200: 5324800]
 *       t0: ...                        (per-thread lines: not used)
 *     MAPPED_LIBRARIES: ...
 *
 * Heap counts are raw samples (live blocks: bytes [allocated blocks:
 * bytes]); with heap_v2 sampling a stack of n blocks and b bytes stands for
 * n / (1 - exp(-(b/n)/S)) blocks and as many times b/n bytes, as jeprof and
 * pprof scale them.  A stack's addresses are innermost first.
 *
 * The whole file is read into memory (at most MAX_FILE bytes) and checked
 * as text before any line is parsed.
 */
#include "hakctl_stacks.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hakctl_symbols.h"

#define MAX_FILE ((size_t)256 << 20)
#define MAX_FRAMES 1024 /* addresses kept per heap stack */

/* The state of one read: the text, the line being parsed, the error. */
typedef struct reader {
    const char *path;
    char *text, *pos, *end;
    size_t lineno;
    char *err;
    size_t errcap;
    bool alloc;
    size_t *index; /* open addressing over the rows by their frames: row + 1, 0 empty */
    size_t nindex; /* a power of two, at least twice the rows */
} reader;

static bool fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(reader *r, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->lineno > 0) snprintf(r->err, r->errcap, "%s: line %zu: %s", r->path, r->lineno, msg);
    else snprintf(r->err, r->errcap, "%s: %s", r->path, msg);
    return false;
}

/* The next line, NUL-terminated in place (its '\n' or '\r\n' cut); NULL at
 * the end. */
static char *next_line(reader *r) {
    if (r->pos >= r->end) return NULL;
    char *line = r->pos, *nl = memchr(line, '\n', (size_t)(r->end - line));
    char *stop = nl != NULL ? nl : r->end;
    r->pos = nl != NULL ? nl + 1 : r->end;
    *stop = '\0';
    if (stop > line && stop[-1] == '\r') stop[-1] = '\0';
    r->lineno++;
    return line;
}

/* ---- the file ---- */

static bool slurp(reader *r, bool empty_ok) {
    int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0) return fail(r, "cannot open: %s", strerror(errno));
    bool ok = fstat(fd, &st) == 0;
    if (!ok || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(r, "%s", ok ? "not a regular file" : strerror(errno));
    }
    if ((uint64_t)st.st_size > MAX_FILE) {
        close(fd);
        return fail(r, "larger than %zu MiB: not a profile hakctl reads", MAX_FILE >> 20);
    }
    size_t cap = (size_t)st.st_size + 1, len = 0; /* one more: a file that grows shows */
    r->text = malloc(cap + 1);
    ssize_t n = 0;
    while (r->text != NULL && len < cap && (n = read(fd, r->text + len, cap - len)) > 0) len += (size_t)n;
    close(fd);
    if (r->text == NULL) return fail(r, "out of memory");
    if (n < 0) return fail(r, "read: %s", strerror(errno));
    if (len == cap) return fail(r, "the file grew while it was read");
    if (len == 0 && !empty_ok) return fail(r, "empty file (no profile in it)");
    r->text[len] = '\0';
    r->pos = r->text;
    r->end = r->text + len;
    return true;
}

/* Text: no NUL and no control byte but tab, CR and LF, and whole lines (a
 * dump ends with a newline: one cut short, in a number maybe, does not). */
static bool check_text(reader *r) {
    for (const unsigned char *s = (const unsigned char *)r->text; s < (const unsigned char *)r->end; s++)
        if ((*s < 32 && *s != '\t' && *s != '\n' && *s != '\r') || *s == 127)
            return fail(r, "binary data at byte %zu: not a heap profile or folded stacks",
                        (size_t)((const char *)s - r->text));
    if (r->end > r->text && r->end[-1] != '\n') return fail(r, "the last line has no end: truncated");
    return true;
}

/* ---- rows ---- */

static size_t hash_of(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The index's slot for frames: its row's, or the empty one to take. */
static size_t *index_slot(const reader *r, const cli_profile *p, const char *frames, size_t len) {
    for (size_t i = hash_of(frames, len) & (r->nindex - 1);; i = (i + 1) & (r->nindex - 1)) {
        size_t row = r->index[i];
        if (row == 0) return &r->index[i];
        const char *f = p->rows[row - 1].frames;
        if (strncmp(f, frames, len) == 0 && f[len] == '\0') return &r->index[i];
    }
}

static bool index_grow(reader *r, cli_profile *p) {
    size_t n = r->nindex ? 2 * r->nindex : 1024;
    size_t *old = r->index, nold = r->nindex;
    if ((r->index = calloc(n, sizeof *r->index)) == NULL) {
        r->index = old;
        return false;
    }
    r->nindex = n;
    for (size_t i = 0; i < nold; i++)
        if (old[i] != 0) {
            const char *f = p->rows[old[i] - 1].frames;
            *index_slot(r, p, f, strlen(f)) = old[i];
        }
    free(old);
    return true;
}

/* Adds a stack's bytes to its row, made if new. */
static bool add_row(reader *r, cli_profile *p, const char *frames, size_t len, double bytes, double blocks) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        cli_stack *rows = realloc(p->rows, cap * sizeof *rows);
        if (rows == NULL) return false;
        p->rows = rows;
        p->cap = cap;
    }
    if (2 * (p->n + 1) > r->nindex && !index_grow(r, p)) return false;
    size_t *slot = index_slot(r, p, frames, len);
    p->total += bytes;
    if (*slot != 0) {
        cli_stack *row = &p->rows[*slot - 1];
        row->bytes += bytes;
        if (row->blocks >= 0) row->blocks += blocks;
        return true;
    }
    char *copy = strndup(frames, len);
    if (copy == NULL) return false;
    p->rows[p->n++] = (cli_stack){copy, bytes, blocks};
    *slot = p->n;
    return true;
}

/* ---- folded ---- */

static bool parse_number(const char *s, double *out) {
    char *end;
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && *end == '\0' && *out < 1e30;
}

static bool read_folded(reader *r, cli_profile *p) {
    p->kind = CLI_PROF_FOLDED;
    for (char *line; (line = next_line(r)) != NULL;) {
        if (line[0] == '\0') continue;
        char *sp = strrchr(line, ' ');
        double bytes;
        if (sp == NULL || sp == line || !parse_number(sp + 1, &bytes))
            return fail(r, "not 'frame;frame;... BYTES' (a folded stack line), nor a heap profile header: "
                           "corrupt or truncated");
        if (bytes > 0 && !add_row(r, p, line, (size_t)(sp - line), bytes, -1)) return fail(r, "out of memory");
    }
    return true;
}

/* ---- heap profiles ---- */

/* A stack of return addresses waiting for the maps section. */
typedef struct raw_stack {
    uint64_t *addr;
    size_t n;
    double bytes, blocks;
} raw_stack;

typedef struct raw_list {
    raw_stack *s;
    size_t n, cap;
} raw_list;

/* "N: B [N: B]" at s, in the view asked for; *rest after the ']'. */
static bool parse_counts(const char *s, bool alloc, uint64_t *n, uint64_t *b, const char **rest) {
    uint64_t v[4];
    int used = 0;
    if (sscanf(s, " %" SCNu64 ": %" SCNu64 " [ %" SCNu64 ": %" SCNu64 " ]%n", &v[0], &v[1], &v[2], &v[3], &used) !=
            4 || used == 0 || memchr(s, '-', (size_t)used) != NULL)
        return false;
    *n = alloc ? v[2] : v[0];
    *b = alloc ? v[3] : v[1];
    if (rest != NULL) *rest = s + used;
    return true;
}

/* 1 - exp(-x) for x >= 0, without libm: the series x - x^2/2! + ... for
 * x / 2^k < 1/8, then squared back k times, as 1 - e^2 = m (2 - m) for
 * m = 1 - e. */
static double one_minus_exp_neg(double x) {
    if (x > 50) return 1.0;
    int k = 0;
    while (x > 0.125 && k < 16) {
        x /= 2;
        k++;
    }
    double term = -1.0, m = 0.0;
    for (int i = 1; i < 12; i++) {
        term *= -x / i;
        m += term;
    }
    for (; k > 0; k--) m = m * (2.0 - m);
    return m;
}

static void estimate(const cli_profile *p, uint64_t n, uint64_t b, double *bytes, double *blocks) {
    double scale = 1.0;
    if (p->period > 0 && n > 0) scale = 1.0 / one_minus_exp_neg((double)b / (double)n / (double)p->period);
    *bytes = (double)b * scale;
    *blocks = (double)n * scale;
}

/* The addresses of "0x1 0x2 ..." (tokens separated by blanks), the first
 * MAX_FRAMES kept. */
static bool parse_addresses(const char *s, raw_stack *st) {
    size_t tokens = 1;
    for (const char *c = s; *c; c++) tokens += *c == ' ' || *c == '\t';
    st->addr = calloc(tokens < MAX_FRAMES ? tokens : MAX_FRAMES, sizeof *st->addr);
    if (st->addr == NULL) return false;
    while (*s) {
        char *end;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\0') break;
        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
        errno = 0;
        uint64_t a = strtoull(s, &end, 16);
        if (errno != 0 || end == s + 2 || (*end != '\0' && *end != ' ' && *end != '\t')) return false;
        if (st->n < MAX_FRAMES && st->n < tokens) st->addr[st->n++] = a;
        s = end;
    }
    return true;
}

static bool add_raw(reader *r, raw_list *l, const cli_profile *p, uint64_t n, uint64_t b, const char *addrs) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        raw_stack *s = realloc(l->s, cap * sizeof *s);
        if (s == NULL) return fail(r, "out of memory");
        l->s = s;
        l->cap = cap;
    }
    raw_stack *st = &l->s[l->n];
    memset(st, 0, sizeof *st);
    if (!parse_addresses(addrs, st)) {
        free(st->addr);
        return fail(r, "a stack of return addresses (0x...) expected: corrupt or truncated");
    }
    estimate(p, n, b, &st->bytes, &st->blocks);
    l->n++;
    return true;
}

/* The first line: the period, and which layout follows. */
static bool heap_header(reader *r, cli_profile *p, const char *line, bool *jemalloc) {
    unsigned long long period = 0;
    uint64_t n, b;
    const char *rest;
    int used = 0;
    bool sampled;
    *jemalloc = strncmp(line, "heap_v2/", 8) == 0;
    if (*jemalloc) {
        sampled = sscanf(line + 8, "%llu%n", &period, &used) == 1 && line[8 + used] == '\0';
        if (!sampled) return fail(r, "a heap_v2 header it cannot read: '%.80s'", line);
    } else if (!parse_counts(line + 13, false, &n, &b, &rest)) {
        return fail(r, "a heap profile header it cannot read: '%.80s'", line);
    } else if (!(sampled = sscanf(rest, " @ heap_v2/%llu%n", &period, &used) == 1 && rest[used] == '\0') &&
               strcmp(rest, " @ heapprofile") != 0 && rest[0] != '\0') {
        return fail(r, "a heap profile of a sampling it does not know: '%.80s'", line);
    }
    if (sampled && (period == 0 || period > (1ULL << 40))) return fail(r, "sample period %llu out of range", period);
    p->period = sampled ? period : 0; /* 0: every allocation recorded */
    return true;
}

/* The stack lines up to the maps section; false on a line that is neither. */
static bool heap_stacks(reader *r, cli_profile *p, bool jemalloc, raw_list *l, bool *maps) {
    const char *pending = NULL; /* jemalloc: the "@ ..." line awaiting its t*: line */
    bool seen_stack = false;
    uint64_t n, b;
    const char *rest;
    for (char *line; (line = next_line(r)) != NULL;) {
        const char *s = line + strspn(line, " \t");
        if (!strcmp(s, "MAPPED_LIBRARIES:") || !strncmp(s, "--- Memory map:", 15)) {
            *maps = true;
            break;
        }
        bool totals = jemalloc && pending == NULL && l->n == 0 && !seen_stack; /* the header's t*: line */
        if (*s == '\0' || (jemalloc && s[0] == 't' && (s[1] != '*' || totals))) continue;
        seen_stack = seen_stack || s[0] == '@';
        if (jemalloc && s[0] == '@' && pending == NULL) pending = s + 1;
        else if (jemalloc && pending != NULL && !strncmp(s, "t*:", 3) && parse_counts(s + 3, r->alloc, &n, &b, &rest) &&
                 *rest == '\0') {
            if (!add_raw(r, l, p, n, b, pending)) return false;
            pending = NULL;
        } else if (!jemalloc && parse_counts(s, r->alloc, &n, &b, &rest) && !strncmp(rest, " @", 2)) {
            if (!add_raw(r, l, p, n, b, rest + 2)) return false;
        } else {
            return fail(r, "not a heap profile line: '%.80s': corrupt or truncated", line);
        }
    }
    if (pending != NULL) return fail(r, "a stack without its counts: truncated");
    return true;
}

/* Names every raw stack (outermost first) into p's rows. */
static bool heap_rows(reader *r, cli_profile *p, raw_list *l, cli_symbols *sy) {
    size_t cap = MAX_FRAMES * 64;
    char *frames = malloc(cap), name[512];
    if (frames == NULL) return fail(r, "out of memory");
    bool ok = true;
    for (size_t i = 0; ok && i < l->n; i++) {
        const raw_stack *st = &l->s[i];
        size_t len = 0;
        for (size_t f = st->n; f-- > 0 && len + 1 < cap;) {
            cli_symbols_name(sy, st->addr[f], name, sizeof name);
            len += (size_t)snprintf(frames + len, cap - len, "%s%s", len ? ";" : "", name);
            if (len >= cap) len = cap - 1;
        }
        if (st->n == 0) len = (size_t)snprintf(frames, cap, "[unknown]");
        if (st->bytes > 0) ok = add_row(r, p, frames, len, st->bytes, st->blocks);
    }
    free(frames);
    return ok ? true : fail(r, "out of memory");
}

static bool read_heap(reader *r, cli_profile *p, const char *header) {
    bool jemalloc, maps = false, ok;
    raw_list l = {0};
    cli_symbols *sy = cli_symbols_new();
    p->kind = CLI_PROF_HEAP;
    ok = sy != NULL && heap_header(r, p, header, &jemalloc) && heap_stacks(r, p, jemalloc, &l, &maps);
    if (ok && !maps) {
        size_t lines = r->lineno;
        r->lineno = 0;
        ok = fail(r, "no MAPPED_LIBRARIES section after its %zu lines: truncated", lines);
    }
    for (char *line; ok && (line = next_line(r)) != NULL;) cli_symbols_add_map(sy, line);
    if (ok) ok = heap_rows(r, p, &l, sy);
    for (size_t i = 0; i < l.n; i++) free(l.s[i].addr);
    free(l.s);
    cli_symbols_free(sy);
    return ok;
}

/* ---- the interface ---- */

bool cli_profile_read(const char *path, bool alloc, bool empty_ok, cli_profile *p, char *err, size_t cap) {
    reader r = {.path = path, .err = err, .errcap = cap, .alloc = alloc};
    memset(p, 0, sizeof *p);
    bool ok = slurp(&r, empty_ok) && check_text(&r);
    if (ok && (!strncmp(r.text, "heap profile:", 13) || !strncmp(r.text, "heap_v2/", 8))) {
        ok = read_heap(&r, p, next_line(&r));
    } else if (ok) {
        ok = read_folded(&r, p);
        if (ok && p->n == 0 && !empty_ok) ok = fail(&r, "no stack in it: not a folded profile");
    }
    free(r.text);
    free(r.index);
    if (!ok) cli_profile_free(p);
    return ok;
}

static int by_bytes(const void *a, const void *b) {
    double x = ((const cli_stack *)a)->bytes, y = ((const cli_stack *)b)->bytes;
    if (x != y) return x < y ? 1 : -1;
    return strcmp(((const cli_stack *)a)->frames, ((const cli_stack *)b)->frames);
}

void cli_profile_sort(cli_profile *p) {
    if (p->n > 1) qsort(p->rows, p->n, sizeof *p->rows, by_bytes);
}

void cli_profile_free(cli_profile *p) {
    for (size_t i = 0; i < p->n; i++) free(p->rows[i].frames);
    free(p->rows);
    memset(p, 0, sizeof *p);
}

const char *cli_stack_leaf(const char *frames) {
    const char *semi = strrchr(frames, ';');
    return semi != NULL ? semi + 1 : frames;
}
