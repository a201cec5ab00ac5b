/*
 * Reading stats pages and posting commands (see hakctl_page.h).
 */
#include "hakctl_page.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hakmem/hakmem.h"

/* The fields of struct hak_class_stats (HAK_CLASS_STATS_FIELDS), and
 * which of them only grow (counters and what is derived from them). */
#define HKP_FIELD_NAME_(name, kind, doc) #name,
const char *const hkp_class_fields[] = {HAK_CLASS_STATS_FIELDS(HKP_FIELD_NAME_)};
#define HKP_GROWS_counter 1
#define HKP_GROWS_derived 1
#define HKP_GROWS_gauge 0
#define HKP_GROWS_constant 0
#define HKP_FIELD_GROWS_(name, kind, doc) HKP_GROWS_##kind,
const bool hkp_class_field_grows[] = {HAK_CLASS_STATS_FIELDS(HKP_FIELD_GROWS_)};
const size_t hkp_nclass_fields = sizeof hkp_class_fields / sizeof hkp_class_fields[0];

#define SNAP_MISMATCHES 3      /* stable copies with a wrong checksum: corrupt */
#define STALE_UNMAPPED_MS 5000 /* a page its live process does not map, this old */

static int fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && cap > 0) vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return code;
}

uint64_t hkp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- the SIGBUS guard: a truncated object must not crash us ---- */

static _Thread_local sigjmp_buf *guard;

static void on_sigbus(int sig) {
    if (guard != NULL) siglongjmp(*guard, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_guard(void) {
    static _Atomic int done;
    if (atomic_exchange(&done, 1)) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

static const _Atomic uint64_t *word_at(const hkp_page *p, size_t off) {
    return (const _Atomic uint64_t *)(const void *)(p->map + off);
}

/* Copies n words of the mapping from off (relaxed atomic loads). */
static void copy_words(const hkp_page *p, size_t off, uint64_t *dst, size_t n) {
    const _Atomic uint64_t *src = word_at(p, off);
    for (size_t i = 0; i < n; i++) dst[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
}

/* The whole object into p->img, under the guard; false on SIGBUS. */
static bool copy_image(hkp_page *p) {
    sigjmp_buf jb;
    install_guard();
    if (sigsetjmp(jb, 1) != 0) {
        guard = NULL;
        return false;
    }
    guard = &jb;
    copy_words(p, 0, (uint64_t *)p->img, p->size / 8);
    memcpy(p->img + p->size / 8 * 8, p->map + p->size / 8 * 8, p->size % 8);
    guard = NULL;
    return true;
}

/* ---- opening and validating ---- */

static bool parse_name(const char *base, unsigned *uid, int *pid) {
    unsigned long u = 0, q = 0;
    const char *s = base;
    if (strncmp(s, HK_SP_PREFIX, strlen(HK_SP_PREFIX)) != 0) return false;
    s += strlen(HK_SP_PREFIX);
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9' && u < 0xffffffffUL) u = u * 10 + (unsigned long)(*s++ - '0');
    if (*s++ != '.' || *s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9' && q < 0x7fffffffUL) q = q * 10 + (unsigned long)(*s++ - '0');
    if (*s != '\0' || u > 0xffffffffUL || q == 0 || q > 0x7fffffffUL) return false;
    *uid = (unsigned)u;
    *pid = (int)q;
    return true;
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

static bool in_region(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi) {
    return off >= lo && off <= hi && len <= hi - off;
}

static const char *check_entries(hkp_page *p) {
    const hk_sp_header *h = &p->hdr;
    uint64_t nlo = h->names_off, nhi = nlo + h->names_size;
    uint64_t vlo = h->vals_off, vhi = vlo + h->vals_size;
    for (size_t i = 0; i < p->nent; i++) {
        hk_sp_entry e;
        memcpy(&e, p->img + h->entry_off + i * (size_t)h->entry_size, sizeof e);
        if (e.name_len == 0 || !in_region(e.name_off, e.name_len, nlo, nhi))
            return "an entry's name lies outside the name area";
        const char *n = (const char *)p->img + e.name_off;
        if (strspn(n, NAME_CHARS) < e.name_len) return "an entry's name has characters no name has";
        if (!in_region(e.doc_off, e.doc_len, nlo, nhi)) return "an entry's doc lies outside the name area";
        if (e.val_off % 8 || e.val_size < 8 || e.val_size % 8 || !in_region(e.val_off, e.val_size, vlo, vhi))
            return "an entry's value slot lies outside the value area";
    }
    return NULL;
}

static const char *check_header(hkp_page *p) {
    hk_sp_header *h = &p->hdr;
    uint64_t size = p->size;
    memcpy(h, p->img, sizeof *h);
    if (h->magic != HK_SP_MAGIC) return "bad magic number";
    if (h->version < 1 || h->compat < 1) return "bad layout version";
    if (h->compat > HK_SP_VERSION) return "its layout needs a newer hakctl";
    if (h->header_size < sizeof(hk_sp_header) || h->header_size > size) return "bad header size";
    if (h->entry_size < sizeof(hk_sp_entry) || h->entry_size > 4096) return "bad entry size";
    if (h->total_size != size) return "its size disagrees with its header";
    if (p->pid != 0 && h->pid != p->pid) return "it names another process";
    if (!in_region(h->entry_off, (uint64_t)h->nentries * h->entry_size, h->header_size, size))
        return "the entry table lies outside the object";
    if (!in_region(h->names_off, h->names_size, 0, size)) return "the name area lies outside the object";
    if (h->vals_off % 8 || h->vals_size % 8 || h->vals_size == 0 ||
        !in_region(h->vals_off, h->vals_size, h->header_size, size))
        return "the value area lies outside the object";
    if (h->ncmds > 1024) return "too many command slots";
    if (h->ncmds > 0 && (h->cmd_size < sizeof(hk_sp_cmd) || h->cmd_size > 65536 || h->cmd_size % 8 ||
                         h->cmd_off % 8 ||
                         !in_region(h->cmd_off, (uint64_t)h->ncmds * h->cmd_size, h->header_size, size)))
        return "the command ring lies outside the object";
    p->nent = h->nentries;
    return check_entries(p);
}

void hkp_close(hkp_page *p) {
    if (p->map != NULL) munmap(p->map, p->size);
    if (p->fd >= 0) close(p->fd);
    free(p->img);
    free(p->vals);
    p->map = NULL;
    p->img = NULL;
    p->vals = NULL;
    p->fd = -1;
}

static int open_fd(hkp_page *p, const char *path, bool writable, char *err, size_t cap) {
    p->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (p->fd < 0) {
        int e = errno;
        if (e == ENOENT) return fail(err, cap, HKP_ENOPAGE, "%s: no such page", path);
        if (e == EACCES || e == EPERM)
            return fail(err, cap, HKP_EACCES, "%s: %s (a page is readable by its owner only)", path, strerror(e));
        if (e == ELOOP) return fail(err, cap, HKP_ECORRUPT, "%s: a symbolic link, not a page", path);
        return fail(err, cap, HKP_EIO, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(p->fd, &st) != 0) return fail(err, cap, HKP_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail(err, cap, HKP_ECORRUPT, "%s: not a regular file", path);
    if (p->pid != 0 && st.st_uid != p->uid)
        return fail(err, cap, HKP_ECORRUPT, "%s: owned by uid %u, not the uid %u it is named for", path,
                    (unsigned)st.st_uid, p->uid);
    if ((uint64_t)st.st_size < sizeof(hk_sp_header) || (uint64_t)st.st_size > HK_SP_MAX_SIZE)
        return fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: size %lld is not plausible", path,
                    (long long)st.st_size);
    p->size = (size_t)st.st_size;
    return HKP_OK;
}

int hkp_open_path(hkp_page *p, const char *path, bool writable, char *err, size_t cap) {
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->writable = writable;
    snprintf(p->path, sizeof p->path, "%s", path);
    const char *base = strrchr(path, '/');
    if (!parse_name(base ? base + 1 : path, &p->uid, &p->pid)) p->pid = 0;
    int rc = open_fd(p, path, writable, err, cap);
    if (rc != HKP_OK) goto out;
    p->map = mmap(NULL, p->size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, p->fd, 0);
    p->img = malloc(p->size + 8);
    if (p->map == MAP_FAILED || p->img == NULL) {
        if (p->map == MAP_FAILED) p->map = NULL;
        rc = fail(err, cap, HKP_EIO, "%s: %s", path, strerror(errno ? errno : ENOMEM));
        goto out;
    }
    /* A page being created has no magic yet: give its writer a moment. */
    for (int tries = 0;; tries++) {
        if (!copy_image(p)) {
            rc = fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: truncated while reading", path);
            goto out;
        }
        uint64_t magic;
        memcpy(&magic, p->img, sizeof magic);
        if (magic != 0 || tries >= 20) break;
        sleep_us(10000);
    }
    const char *why = check_header(p);
    if (why != NULL) {
        rc = fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: %s", path, why);
        goto out;
    }
    p->vals = calloc(1, p->hdr.vals_size);
    if (p->vals == NULL) rc = fail(err, cap, HKP_EIO, "out of memory");
out:
    if (rc != HKP_OK) hkp_close(p);
    return rc;
}

static bool process_exists(int pid) { return kill(pid, 0) == 0 || errno == EPERM; }

typedef struct find_pid { int pid; char path[128]; } find_pid;

static int find_pid_cb(const char *path, unsigned uid, int pid, void *arg) {
    find_pid *f = arg;
    if (pid != f->pid) return 0;
    snprintf(f->path, sizeof f->path, "%s", path);
    return 1;
}

int hkp_open(hkp_page *p, int pid, bool writable, char *err, size_t cap) {
    char path[128];
    memset(p, 0, sizeof *p);
    p->fd = -1;
    snprintf(path, sizeof path, "%s" HK_SP_NAME_FMT, HK_SP_DIR, (unsigned)geteuid(), pid);
    if (access(path, F_OK) != 0) {
        find_pid f = {.pid = pid};
        hkp_list(-1, find_pid_cb, &f);
        if (f.path[0] != '\0') snprintf(path, sizeof path, "%s", f.path);
        else if (!process_exists(pid)) return fail(err, cap, HKP_ENOPROC, "no such process: %d", pid);
        else return fail(err, cap, HKP_ENOPAGE, "process %d has no stats page", pid);
    }
    int rc = hkp_open_path(p, path, writable, err, cap);
    if (rc == HKP_ENOPAGE && !process_exists(pid))
        return fail(err, cap, HKP_ENOPROC, "no such process: %d", pid);
    return rc;
}

/* ---- snapshots ---- */

static uint64_t load_dyn(const hkp_page *p, size_t off) {
    return atomic_load_explicit(word_at(p, off), memory_order_relaxed);
}

/* One attempt: 1 consistent, 0 retry; under the guard. */
static int snapshot_once(hkp_page *p, uint64_t *sum_out) {
    const _Atomic uint64_t *seq = word_at(p, offsetof(hk_sp_header, seq));
    uint64_t s1 = atomic_load_explicit(seq, memory_order_acquire);
    if (s1 & 1) return 0;
    copy_words(p, p->hdr.vals_off, p->vals, p->hdr.vals_size / 8);
    uint64_t upd = load_dyn(p, offsetof(hk_sp_header, updated_ms));
    uint64_t nref = load_dyn(p, offsetof(hk_sp_header, nrefresh));
    uint64_t iv = load_dyn(p, offsetof(hk_sp_header, interval_ms));
    uint64_t fl = load_dyn(p, offsetof(hk_sp_header, flags));
    uint64_t sum = load_dyn(p, offsetof(hk_sp_header, checksum));
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(seq, memory_order_relaxed) != s1) return 0;
    p->seq = s1;
    p->updated_ms = upd;
    p->nrefresh = nref;
    p->interval_ms = iv;
    p->flags = fl;
    *sum_out = sum;
    return 1;
}

int hkp_snapshot(hkp_page *p, unsigned timeout_ms, char *err, size_t cap) {
    sigjmp_buf jb;
    install_guard();
    if (sigsetjmp(jb, 1) != 0) {
        guard = NULL;
        return fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: truncated while reading", p->path);
    }
    guard = &jb;
    uint64_t deadline = mono_ms() + timeout_ms;
    unsigned mismatches = 0, spins = 0;
    for (;;) {
        uint64_t sum;
        if (snapshot_once(p, &sum)) {
            uint64_t h = HK_SP_HASH_SEED;
            for (size_t w = 0; w < p->hdr.vals_size / 8; w++) h = hk_sp_hash(h, p->vals[w]);
            if (h == sum) break;
            if (++mismatches >= SNAP_MISMATCHES) {
                guard = NULL;
                return fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: checksum mismatch", p->path);
            }
        }
        p->retries++;
        if (++spins > 64) {
            if (mono_ms() > deadline) {
                guard = NULL;
                return fail(err, cap, HKP_EBUSY,
                            "%s: the page stayed locked for %u ms (its writer is stuck or died mid-update)",
                            p->path, timeout_ms);
            }
            sleep_us(50);
        }
    }
    guard = NULL;
    return HKP_OK;
}

/* ---- entries and values ---- */

bool hkp_entry_at(const hkp_page *p, size_t i, hkp_entry *out) {
    if (i >= p->nent) return false;
    hk_sp_entry e;
    memcpy(&e, p->img + p->hdr.entry_off + i * (size_t)p->hdr.entry_size, sizeof e);
    out->name = (const char *)p->img + e.name_off;
    out->name_len = e.name_len;
    out->doc = (const char *)p->img + e.doc_off;
    out->doc_len = e.doc_len;
    out->type = e.type;
    out->flags = e.flags;
    out->slot = (e.val_off - p->hdr.vals_off) / 8;
    out->slot_words = e.val_size / 8;
    return true;
}

bool hkp_name_is(const hkp_entry *e, const char *name) {
    return strlen(name) == e->name_len && memcmp(e->name, name, e->name_len) == 0;
}

bool hkp_find(const hkp_page *p, const char *name, hkp_entry *e) {
    for (size_t i = 0; i < p->nent; i++)
        if (hkp_entry_at(p, i, e) && hkp_name_is(e, name)) return true;
    return false;
}

void hkp_value_of(const hkp_page *p, const hkp_entry *e, hkp_value *v) {
    memset(v, 0, sizeof *v);
    v->type = e->type;
    const uint64_t *slot = p->vals + e->slot;
    size_t payload = (e->slot_words - 1) * 8;
    uint64_t plen = slot[0] & 0xffffffffu;
    v->rc = (int)(slot[0] >> 32);
    if (v->rc != 0) return;
    if (plen > payload) {
        v->rc = -1; /* corrupt slot */
        return;
    }
    switch (e->type) {
    case HAK_CTL_BOOL: case HAK_CTL_UNSIGNED: case HAK_CTL_SIZE:
    case HAK_CTL_U64: case HAK_CTL_I64:
        if (plen < 8) v->rc = -1;
        else v->u = slot[1];
        return;
    case HAK_CTL_STRING:
        v->s = (const char *)(slot + 1);
        v->len = plen;
        return;
    case HAK_CTL_VOID:
        return;
    default:
        v->nwords = plen / 8 < HKP_MAX_WORDS ? plen / 8 : HKP_MAX_WORDS;
        memcpy(v->words, slot + 1, v->nwords * 8);
        return;
    }
}

bool hkp_get_u64(const hkp_page *p, const char *name, uint64_t *out) {
    hkp_entry e;
    hkp_value v;
    if (!hkp_find(p, name, &e)) return false;
    hkp_value_of(p, &e, &v);
    if (v.rc != 0 || v.type < HAK_CTL_BOOL || v.type > HAK_CTL_I64) return false;
    *out = v.u;
    return true;
}

const char *hkp_get_str(const hkp_page *p, const char *name, char *buf, size_t cap) {
    hkp_entry e;
    hkp_value v;
    buf[0] = '\0';
    if (!hkp_find(p, name, &e)) return buf;
    hkp_value_of(p, &e, &v);
    if (v.rc == 0 && v.type == HAK_CTL_STRING)
        snprintf(buf, cap, "%.*s", (int)(v.len < cap ? v.len : cap - 1), v.s);
    return buf;
}

const char *hkp_command(const hkp_page *p, char *buf, size_t cap) {
    const char *s = p->hdr.cmdline[0] ? p->hdr.cmdline : p->hdr.comm;
    size_t max = p->hdr.cmdline[0] ? sizeof p->hdr.cmdline : sizeof p->hdr.comm;
    size_t n = strnlen(s, max);
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) buf[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    buf[n] = '\0';
    return buf;
}

/* ---- commands ---- */

static hk_sp_cmd *cmd_slot(hkp_page *p, unsigned i) {
    return (hk_sp_cmd *)(void *)(p->map + p->hdr.cmd_off + (size_t)i * p->hdr.cmd_size);
}

/* Claims a slot: free, or claimed/done long ago by a client that died. */
static hk_sp_cmd *claim(hkp_page *p) {
    uint64_t now = hkp_now_ms();
    for (unsigned i = 0; i < p->hdr.ncmds; i++) {
        hk_sp_cmd *c = cmd_slot(p, i);
        uint32_t st = atomic_load(&c->state);
        bool old = now - atomic_load(&c->claimed_ms) > HK_SP_CMD_STALE_MS;
        if (st == HK_SP_CMD_FREE || ((st == HK_SP_CMD_CLAIMED || st == HK_SP_CMD_DONE) && old))
            if (atomic_compare_exchange_strong(&c->state, &st, HK_SP_CMD_CLAIMED)) {
                atomic_store(&c->claimed_ms, now);
                return c;
            }
    }
    return NULL;
}

static int post_guarded(hkp_page *p, const char *key, const char *value, unsigned timeout_ms,
                        int *result, uint64_t *applied_in, char *err, size_t cap) {
    uint64_t deadline = mono_ms() + timeout_ms;
    hk_sp_cmd *c;
    while ((c = claim(p)) == NULL) {
        if (mono_ms() > deadline)
            return fail(err, cap, HKP_ETIMEOUT, "every command slot of the page stayed busy");
        sleep_us(5000);
    }
    uint64_t ticket = ((uint64_t)getpid() << 32) ^ (uint64_t)mono_ms() ^ (uint64_t)(uintptr_t)c;
    memset(c->key, 0, sizeof c->key);
    memset(c->value, 0, sizeof c->value);
    memcpy(c->key, key, strlen(key));
    memcpy(c->value, value, strlen(value));
    atomic_store_explicit(&c->ticket, ticket, memory_order_relaxed);
    atomic_store_explicit(&c->state, HK_SP_CMD_POSTED, memory_order_release);
    for (;;) {
        uint32_t st = atomic_load_explicit(&c->state, memory_order_acquire);
        if (st == HK_SP_CMD_DONE && atomic_load(&c->ticket) == ticket) {
            *result = atomic_load(&c->result);
            if (applied_in != NULL) *applied_in = atomic_load(&c->applied_in);
            atomic_store(&c->state, HK_SP_CMD_FREE);
            return HKP_OK;
        }
        if (st != HK_SP_CMD_POSTED && st != HK_SP_CMD_BUSY && st != HK_SP_CMD_DONE)
            return fail(err, cap, HKP_ECORRUPT, "the command slot was overwritten");
        if (mono_ms() > deadline) {
            uint32_t posted = HK_SP_CMD_POSTED;
            if (atomic_compare_exchange_strong(&c->state, &posted, HK_SP_CMD_FREE))
                return fail(err, cap, HKP_ETIMEOUT,
                            "no answer within %u ms: the process has not refreshed its page "
                            "(idle? start it with HAKMEM_CONF=background_thread:1)", timeout_ms);
            if (mono_ms() > deadline + 2000)
                return fail(err, cap, HKP_ETIMEOUT, "the process took the command but did not answer");
        }
        sleep_us(1000);
    }
}

int hkp_post(hkp_page *p, const char *key, const char *value, unsigned timeout_ms, int *result,
             uint64_t *applied_in, char *err, size_t cap) {
    if (!p->writable || p->hdr.ncmds == 0)
        return fail(err, cap, HKP_EIO, "%s: the page takes no commands", p->path);
    if (strlen(key) >= HK_SP_KEY_MAX || strlen(value) >= HK_SP_VALUE_MAX)
        return fail(err, cap, HKP_EIO, "key or value too long");
    sigjmp_buf jb;
    install_guard();
    if (sigsetjmp(jb, 1) != 0) {
        guard = NULL;
        return fail(err, cap, HKP_ECORRUPT, "%s: corrupt page: truncated while posting", p->path);
    }
    guard = &jb;
    int rc = post_guarded(p, key, value, timeout_ms, result, applied_in, err, cap);
    guard = NULL;
    return rc;
}

/* ---- listing and stale pages ---- */

void hkp_list(long uid, int (*cb)(const char *path, unsigned uid, int pid, void *arg), void *arg) {
    DIR *d = opendir(HK_SP_DIR);
    if (d == NULL) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned u;
        int pid;
        if (!parse_name(de->d_name, &u, &pid) || (uid >= 0 && (unsigned long)uid != u)) continue;
        char path[128];
        if (strlen(de->d_name) > 64) continue;
        snprintf(path, sizeof path, "%s/%.64s", HK_SP_DIR, de->d_name);
        if (cb(path, u, pid, arg) != 0) break;
    }
    closedir(d);
}

static bool proc_start_ticks(int pid, uint64_t *out) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char *s = strrchr(buf, ')');
    for (int field = 2; s != NULL && *s && field < 22; s++)
        if (*s == ' ') field++;
    if (s == NULL || *s < '0' || *s > '9') return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

/* Does pid map a file whose name ends in base?  -1: cannot tell. */
static int maps_file(int pid, const char *base) {
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, base) != NULL;
    fclose(f);
    return found;
}

bool hkp_is_stale(const char *path, int pid, char *why, size_t cap) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
        snprintf(why, cap, "process %d is gone", pid);
        return true;
    }
    hk_sp_header h;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h;
    close(fd);
    if (!ok || h.magic != HK_SP_MAGIC || h.pid != pid) return false;
    uint64_t ticks;
    if (proc_start_ticks(pid, &ticks) && h.proc_start_ticks != 0 && ticks != h.proc_start_ticks) {
        snprintf(why, cap, "pid %d now belongs to another process", pid);
        return true;
    }
    const char *base = strrchr(path, '/');
    if (maps_file(pid, base ? base + 1 : path) == 0 && hkp_now_ms() - h.updated_ms > STALE_UNMAPPED_MS) {
        snprintf(why, cap, "process %d no longer maps it (it exec'd another program)", pid);
        return true;
    }
    return false;
}

/* ---- formatting ---- */

const char *hkp_type_name(int type) {
    switch (type) {
    case HAK_CTL_BOOL: return "bool";
    case HAK_CTL_UNSIGNED: return "unsigned";
    case HAK_CTL_SIZE: return "size_t";
    case HAK_CTL_U64: return "uint64_t";
    case HAK_CTL_I64: return "int64_t";
    case HAK_CTL_STRING: return "string";
    case HAK_CTL_CLASS_STATS: return "struct hak_class_stats";
    case HAK_CTL_VOID: return "action";
    default: return "unknown";
    }
}

void hkp_format_bytes(uint64_t b, char *out, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (b < 1024) {
        snprintf(out, cap, "%" PRIu64 " B", b);
        return;
    }
    double x = (double)b;
    unsigned u = 0;
    while (x >= 1024 && u < 5) x /= 1024, u++;
    snprintf(out, cap, "%.1f %s", x, units[u]);
}

void hkp_printable(const char *s, size_t len, char *out, size_t cap) {
    size_t n = len < cap ? len : cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    out[n] = '\0';
}

void hkp_json_string(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0;
    if (cap < 3) {
        if (cap) out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 32 || c >= 127) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void format_words(const hkp_value *v, enum hkp_style style, char *out, size_t cap) {
    size_t o = 0;
    bool cs = v->type == HAK_CTL_CLASS_STATS, json = style == HKP_JSON;
    if (json) o += (size_t)snprintf(out + o, cap - o, cs ? "{" : "[");
    for (size_t i = 0; i < v->nwords && o < cap; i++) {
        char name[32];
        if (i < hkp_nclass_fields) snprintf(name, sizeof name, "%s", hkp_class_fields[i]);
        else snprintf(name, sizeof name, "field%zu", i);
        const char *sep = i ? (json ? ", " : " ") : "";
        if (!cs) o += (size_t)snprintf(out + o, cap - o, json ? "%s%" PRIu64 : "%s0x%" PRIx64, sep, v->words[i]);
        else if (json) o += (size_t)snprintf(out + o, cap - o, "%s\"%s\": %" PRIu64, sep, name, v->words[i]);
        else o += (size_t)snprintf(out + o, cap - o, "%s%s=%" PRIu64, sep, name, v->words[i]);
    }
    if (json && o < cap) snprintf(out + o, cap - o, cs ? "}" : "]");
}

void hkp_format(const hkp_value *v, enum hkp_style style, char *out, size_t cap) {
    bool json = style == HKP_JSON;
    if (v->rc != 0) {
        if (json) snprintf(out, cap, "null");
        else if (v->rc < 0) snprintf(out, cap, "(corrupt value)");
        else snprintf(out, cap, "(error: %s)", strerror(v->rc));
        return;
    }
    switch (v->type) {
    case HAK_CTL_BOOL: snprintf(out, cap, "%s", v->u ? "true" : "false"); return;
    case HAK_CTL_UNSIGNED: case HAK_CTL_U64: snprintf(out, cap, "%" PRIu64, v->u); return;
    case HAK_CTL_SIZE:
        if (style == HKP_HUMAN) hkp_format_bytes(v->u, out, cap);
        else snprintf(out, cap, "%" PRIu64, v->u);
        return;
    case HAK_CTL_I64: snprintf(out, cap, "%" PRId64, (int64_t)v->u); return;
    case HAK_CTL_STRING:
        if (json) hkp_json_string(v->s, v->len, out, cap);
        else hkp_printable(v->s, v->len, out, cap);
        return;
    case HAK_CTL_VOID: snprintf(out, cap, json ? "null" : "(action)"); return;
    default: format_words(v, style, out, cap); return;
    }
}
