/*
 * Writing a heap profile, with no malloc: a stack buffer and write(2).
 *
 * pprof: gperftools' text heap profile with heap_v2 sampling, which jeprof
 * and go tool pprof both read (they scale the raw counts themselves,
 * knowing the sample period from the header; go's pprof does not read
 * jemalloc's own "heap_v2/<period>" + "t*:" layout):
 *
 *   heap profile: <live blocks>: <live bytes> [<blocks allocated>: <bytes allocated>] @ heap_v2/<period>
 *   <live blocks>: <live bytes> [<blocks allocated>: <bytes allocated>] @ 0x<return address> 0x...
 *   ...                                     (one line a stack, innermost first)
 *
 *   MAPPED_LIBRARIES:
 *   <the text of /proc/self/maps>
 *
 * folded: one line per stack, outermost frame first, then the estimated
 * bytes (live, or allocated for the allocation view):
 *   main;build_index;xmalloc 67108864
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prof/prof.h"

typedef struct writer {
    int fd, err;
    size_t len;
    char buf[8192];
} writer;

static void flush(writer *w) {
    size_t off = 0;
    while (off < w->len && w->err == 0) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) w->err = n < 0 ? errno : EIO;
        else off += (size_t)n;
    }
    w->len = 0;
}

static void put_n(writer *w, const char *s, size_t n) {
    while (n > 0) {
        if (w->len == sizeof w->buf) flush(w);
        size_t k = sizeof w->buf - w->len;
        if (k > n) k = n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }
}
static void put(writer *w, const char *s) { put_n(w, s, strlen(s)); }

static void put_u(writer *w, uint64_t v) {
    char b[24];
    int i = sizeof b;
    do b[--i] = (char)('0' + v % 10); while ((v /= 10) != 0);
    put_n(w, b + i, sizeof b - (size_t)i);
}

static void put_x(writer *w, uint64_t v) {
    char b[24];
    int i = sizeof b;
    do b[--i] = "0123456789abcdef"[v & 15]; while ((v >>= 4) != 0);
    put(w, "0x");
    put_n(w, b + i, sizeof b - (size_t)i);
}

/* "<blocks>: <bytes> [<blocks>: <bytes>] @": a heap profile line's counts. */
static void put_counts(writer *w, uint64_t n1, uint64_t b1, uint64_t n2, uint64_t b2) {
    put_u(w, n1);
    put(w, ": ");
    put_u(w, b1);
    put(w, " [");
    put_u(w, n2);
    put(w, ": ");
    put_u(w, b2);
    put(w, "] @");
}

static void put_maps(writer *w) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char b[4096];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0) put_n(w, b, (size_t)n);
    close(fd);
}

static void write_pprof(writer *w, const hk_prof_site *s, size_t n, size_t period) {
    uint64_t t[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        t[0] += s[i].live_n;
        t[1] += s[i].live_bytes;
        t[2] += s[i].alloc_n;
        t[3] += s[i].alloc_bytes;
    }
    put(w, "heap profile: ");
    put_counts(w, t[0], t[1], t[2], t[3]);
    put(w, " heap_v2/");
    put_u(w, period);
    put(w, "\n");
    for (size_t i = 0; i < n; i++) {
        put_counts(w, s[i].live_n, s[i].live_bytes, s[i].alloc_n, s[i].alloc_bytes);
        for (unsigned f = 0; f < s[i].nframes; f++) {
            put(w, " ");
            put_x(w, (uintptr_t)s[i].frames[f]);
        }
        put(w, "\n");
    }
    put(w, "\nMAPPED_LIBRARIES:\n");
    put_maps(w);
}

/* A frame's name: its symbol, else module+offset, else the address. */
static void put_frame(writer *w, void *addr) {
    Dl_info info;
    /* A return address points after the call: look up the call itself. */
    void *at = (void *)((uintptr_t)addr - 1);
    if (dladdr(at, &info) != 0) {
        if (info.dli_sname != NULL) {
            put(w, info.dli_sname);
            return;
        }
        if (info.dli_fname != NULL && info.dli_fname[0] != '\0') {
            const char *base = strrchr(info.dli_fname, '/');
            put(w, base != NULL ? base + 1 : info.dli_fname);
            put(w, "+");
            put_x(w, (uintptr_t)addr - (uintptr_t)info.dli_fbase);
            return;
        }
    }
    put_x(w, (uintptr_t)addr);
}

static void write_folded(writer *w, const hk_prof_site *s, size_t n, bool alloc) {
    for (size_t i = 0; i < n; i++) {
        double est = alloc ? s[i].alloc_est : s[i].live_est;
        if (est < 0.5) continue;
        if (s[i].nframes == 0) put(w, "[unknown]");
        for (unsigned f = s[i].nframes; f-- > 0;) {
            put_frame(w, s[i].frames[f]);
            if (f > 0) put(w, ";");
        }
        put(w, " ");
        put_u(w, (uint64_t)(est + 0.5));
        put(w, "\n");
    }
}

/* A path that is there must be a regular file: opening a FIFO for writing
 * waits for a reader (the calling thread would hang: O_NONBLOCK makes that
 * ENXIO instead), and a device would be written to and have its mode
 * changed by the fchmod. */
static int open_dump(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISFIFO(st.st_mode)) return -EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    fchmod(fd, 0600); /* an existing file keeps no wider mode */
    return fd;
}

int hk_prof_dump(const char *path, enum hk_prof_format format) {
    if (path == NULL || path[0] == '\0') return EINVAL;
    size_t n, period;
    hk_prof_site *s = hk_prof_snapshot(&n, &period);
    if (s == NULL) return ENOMEM;
    int fd = open_dump(path);
    if (fd < 0) {
        hk_prof_snapshot_free(s);
        return -fd;
    }
    writer w = {.fd = fd};
    if (format == HK_PROF_PPROF) write_pprof(&w, s, n, period);
    else write_folded(&w, s, n, format == HK_PROF_FOLDED_ALLOC);
    flush(&w);
    if (close(fd) != 0 && w.err == 0) w.err = errno;
    hk_prof_snapshot_free(s);
    if (w.err == 0) hk_prof_note_dump(format, path);
    return w.err;
}
