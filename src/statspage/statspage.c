/*
 * The shared-memory stats page (doc/DESIGN.md section 10.3; layout and protocol in
 * hk_statspage.h).
 *
 * Life cycle.  The first slow-path tick after start-up (or after fork, or
 * after the feature is turned on) starts a clock; the page is created at the
 * first tick stats_page_delay_ms later, so a short-lived process creates
 * none.  From then on a tick refreshes it at most every interval_ms: apply
 * the posted commands, read every leaf through its MIB into a private staging
 * area (statistics merged once: hk_ctl_bulk_begin), then copy the staging
 * area into the page under the sequence lock, so the lock is odd only for a
 * copy.  The page is unlinked at exit (hk_fini) and when the feature is turned
 * off; a fork child forgets its parent's (unmaps it, does not unlink it) and
 * makes its own after the delay.  opt.background_thread adds one thread that
 * keeps the page fresh and answers commands in an idle process.
 *
 * Never malloc here: the tick runs inside malloc's slow path.  Memory is the
 * page and one private anonymous mapping (hk_os_map); names are formatted in
 * stack buffers.  A thread-local flag stops recursion (shm_open or
 * pthread_create may call malloc), and one atomic flag (busy) lets one thread
 * at a time do the work while the others return at once.  The tick is never
 * called with an allocator lock held (heap.c skips it under an arena's shared
 * heap lock; shared.c ticks after dropping it).
 *
 * The process trusts nothing it reads back from the page: it keeps the
 * layout privately, and copies, terminates and checks (existence, write
 * access, whitelist, type, range) a command's key and value before hak_ctl
 * sees them.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "statspage/statspage.h"
#include "statspage/hk_statspage.h"

#define SP_STRING_MAX 128 /* payload bytes of a string leaf's slot (longer: cut) */
#define SP_NCMDS 8        /* command ring slots */
#define SP_RETRY_MS 5000  /* after a failed creation */
#define SP_BG_STEP_MS 20  /* the background thread's polling step */

/* What the process keeps of each entry, privately: its row and wildcard
 * values, so a refresh calls the row's get without matching names. */
typedef struct sp_leaf {
    const hk_ctl_row *row; /* NULL: the name did not resolve (reads as ENOENT) */
    size_t vals[HK_CTL_MAXVALS];
    uint8_t type;
    uint32_t val_off;   /* of the slot, from the start of the value area */
    uint32_t val_size;
} sp_leaf;

/* The page's layout, computed before creation and kept privately. */
typedef struct sp_layout {
    size_t n, name_bytes, doc_bytes, val_bytes;
    uint32_t entry_off, names_off, names_size, vals_off, vals_size, cmd_off;
    size_t total, priv;
} sp_layout;

static struct {
    _Atomic uint64_t due_ms;     /* ticks before this (coarse monotonic) return */
    _Atomic bool live;           /* a page is mapped and published */
    _Atomic bool busy;           /* one worker at a time */
    _Atomic bool closed;         /* the process is exiting */
    _Atomic bool bg_running;
    _Atomic bool ctor_ran;       /* library constructors ran: threads may start */
    _Atomic unsigned interval_ms;
    _Atomic uint64_t nrefresh, ncommands;
    /* The rest under busy. */
    bool started;                /* the creation delay is running */
    uint64_t t0_ms;              /* since when */
    hk_sp_header *hdr;           /* the mapped page */
    size_t size;
    int fd;
    dev_t dev;
    ino_t ino;
    char name[48];               /* shm_open name */
    sp_layout lay;
    void *priv;                  /* leaves, then the staging area */
    size_t priv_size;
    sp_leaf *leaves;
    uint64_t *stage;
} sp = {.fd = -1};

static char sp_path[64];             /* stats_page.path while live */
static _Thread_local bool sp_in_work;

/* ---- small helpers ---- */

static uint64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Reads up to cap - 1 bytes of a /proc file into buf (NUL-terminated). */
static size_t read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    if (fd >= 0) {
        ssize_t r;
        while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
        close(fd);
    }
    buf[n] = '\0';
    return n;
}

/* Component-wise match: "*" is any component, "#" a decimal index. */
static bool glob_match(const char *pat, const char *name) {
    while (*pat && *name) {
        size_t pl = strcspn(pat, "."), nl = strcspn(name, ".");
        if (pl == 1 && *pat == '#') {
            if (nl == 0 || strspn(name, "0123456789") < nl) return false;
        } else if (!(pl == 1 && *pat == '*') && (pl != nl || strncmp(pat, name, nl) != 0)) {
            return false;
        }
        pat += pl;
        name += nl;
        if (*pat != *name) return false;
        if (*pat == '.') pat++, name++;
    }
    return *pat == '\0' && *name == '\0';
}

/* Leaves the command ring accepts: writable and safe to change from outside. */
static const char *const page_settable[] = {
    "config.mode", "config.features.*", "*.class.#.tcache_max",
    "huge.bigcache.max_bytes", "arena.#.decay_ms", "arena.#.purge",
    "stats_page.interval_ms", "stats_page.enabled", "learn.freeze",
    "prof.active", "prof.sample_bytes", "prof.reset", "prof.dump", "prof.dump_folded",
    "prof.dump_folded_alloc",
};

static bool is_settable(const char *name) {
    for (size_t i = 0; i < sizeof page_settable / sizeof page_settable[0]; i++)
        if (glob_match(page_settable[i], name)) return true;
    return false;
}

/* Counters named otherwise: the heap profiler's, which prof.reset zeroes
 * (a counter reset, as a process restart is to a scraper). */
static const char *const counters_by_name[] = {"prof.stats.samples", "prof.stats.dropped"};

/* Monotonic counters (rates make sense): uint64_t leaves named n<what>,
 * or ending in hits, misses, refreshes or commands, and those listed. */
static bool is_counter(const char *name, int type) {
    if (type != HAK_CTL_U64) return false;
    for (size_t i = 0; i < sizeof counters_by_name / sizeof counters_by_name[0]; i++)
        if (!strcmp(name, counters_by_name[i])) return true;
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    static const char *const suffixes[] = {"hits", "misses", "refreshes", "commands"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t ll = strlen(last), sl = strlen(suffixes[i]);
        if (ll >= sl && strcmp(last + ll - sl, suffixes[i]) == 0) return true;
    }
    return last[0] == 'n' && strcmp(last, "nthreads") != 0;
}

/* Per-thread leaves describe the calling thread: meaningless on the page. */
static bool is_published(const char *name) { return strncmp(name, "thread.", 7) != 0; }

static uint32_t slot_size(int type) {
    switch (type) {
    case HAK_CTL_BOOL: case HAK_CTL_UNSIGNED: case HAK_CTL_SIZE:
    case HAK_CTL_U64: case HAK_CTL_I64: return 16;
    case HAK_CTL_STRING: return 8 + SP_STRING_MAX;
    case HAK_CTL_CLASS_STATS: return 8 + (uint32_t)round_up(sizeof(struct hak_class_stats), 8);
    case HAK_CTL_VOID: return 8;
    default: return 0;
    }
}

/* ---- building the page ---- */

/* hak_ctl_list callback state: a counting pass, then a filling pass. */
typedef struct sp_build {
    sp_layout *lay;
    const char *last_doc;
    size_t i;
    uint32_t name_pos, val_pos, last_doc_off, last_doc_len;
} sp_build;

static int count_cb(const char *name, int type, int writable, void *arg) {
    sp_layout *lay = arg;
    uint32_t slot = slot_size(type);
    if (!is_published(name) || slot == 0) return 0;
    lay->n++;
    lay->name_bytes += strlen(name);
    lay->val_bytes += slot;
    return 0;
}

/* The row's doc string, once for the run of leaves the row expands to. */
static void put_doc(sp_build *b, const hk_ctl_row *row) {
    const char *doc = row != NULL ? row->doc : NULL;
    if (doc == b->last_doc) return;
    b->last_doc = doc;
    b->last_doc_off = b->name_pos;
    b->last_doc_len = doc != NULL ? (uint32_t)strnlen(doc, 1024) : 0;
    memcpy((uint8_t *)sp.hdr + b->name_pos, doc, b->last_doc_len);
    b->name_pos += b->last_doc_len;
}

static int fill_cb(const char *name, int type, int writable, void *arg) {
    sp_build *b = arg;
    uint32_t slot = slot_size(type);
    if (!is_published(name) || slot == 0) return 0;
    if (b->i >= b->lay->n) return 1; /* the tree changed under us: stop */
    sp_leaf *l = &sp.leaves[b->i];
    if (hk_ctl_resolve(name, &l->row, l->vals) != 0) l->row = NULL;
    l->type = (uint8_t)type;
    l->val_off = b->val_pos;
    l->val_size = slot;
    put_doc(b, l->row);
    size_t nl = strlen(name);
    hk_sp_entry *e = (hk_sp_entry *)((uint8_t *)sp.hdr + b->lay->entry_off) + b->i;
    e->name_off = b->name_pos;
    e->name_len = (uint16_t)nl;
    memcpy((uint8_t *)sp.hdr + b->name_pos, name, nl);
    b->name_pos += (uint32_t)nl;
    e->type = (uint8_t)type;
    e->flags = (writable ? HK_SP_E_WRITABLE : 0) |
               (writable && is_settable(name) ? HK_SP_E_SETTABLE : 0) |
               (is_counter(name, type) ? HK_SP_E_COUNTER : 0);
    e->doc_off = b->last_doc_off;
    e->doc_len = (uint16_t)b->last_doc_len;
    e->val_off = b->lay->vals_off + b->val_pos;
    e->val_size = slot;
    b->val_pos += slot;
    b->i++;
    return 0;
}

static void plan_layout(sp_layout *lay) {
    memset(lay, 0, sizeof *lay);
    hak_ctl_list("", count_cb, lay);
    /* Each row's doc is written once at most: their sum bounds the docs. */
    for (size_t r = 0; r < hk_ctl_nrows; r++)
        lay->doc_bytes += hk_ctl_rows[r].doc != NULL ? strnlen(hk_ctl_rows[r].doc, 1024) : 0;
    lay->entry_off = (uint32_t)round_up(sizeof(hk_sp_header), 64);
    lay->names_off = (uint32_t)round_up(lay->entry_off + lay->n * sizeof(hk_sp_entry), 8);
    lay->names_size = (uint32_t)round_up(lay->name_bytes + lay->doc_bytes, 8);
    lay->vals_off = (uint32_t)round_up(lay->names_off + lay->names_size, 64);
    lay->vals_size = (uint32_t)lay->val_bytes;
    lay->cmd_off = (uint32_t)round_up(lay->vals_off + lay->vals_size, 64);
    lay->total = round_up(lay->cmd_off + SP_NCMDS * sizeof(hk_sp_cmd), HK_OS_PAGE);
    lay->priv = round_up(lay->n * sizeof(sp_leaf) + lay->vals_size, HK_OS_PAGE);
}

/* Process identity: start time (ms since the Epoch and in clock ticks since
 * boot, which tells a reused pid), comm and command line. */
static void fill_identity(hk_sp_header *h) {
    char buf[4096];
    read_small_file("/proc/self/stat", buf, sizeof buf);
    const char *s = strrchr(buf, ')');
    uint64_t ticks = 0;
    for (int field = 2; s != NULL && *s && field < 22; s++)
        if (*s == ' ') field++;
    while (s != NULL && *s >= '0' && *s <= '9') ticks = ticks * 10 + (uint64_t)(*s++ - '0');
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t up_ms = clock_ms(CLOCK_BOOTTIME), real_ms = clock_ms(CLOCK_REALTIME);
    uint64_t since_boot = hz > 0 ? ticks * 1000u / (uint64_t)hz : 0;
    h->proc_start_ticks = ticks;
    h->start_ms = real_ms - (up_ms > since_boot ? up_ms - since_boot : 0);
    h->created_ms = real_ms;
    size_t n = read_small_file("/proc/self/comm", buf, sizeof h->comm);
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    memcpy(h->comm, buf, n + 1);
    n = read_small_file("/proc/self/cmdline", buf, sizeof h->cmdline);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0') buf[i] = ' ';
    while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
    memcpy(h->cmdline, buf, n + 1);
    hk_fmt(h->lib_version, sizeof h->lib_version, "%s", HAKMEM_VERSION);
}

static void fill_header(hk_sp_header *h, const sp_layout *lay) {
    h->version = HK_SP_VERSION;
    h->compat = 1;
    h->header_size = sizeof(hk_sp_header);
    h->entry_size = sizeof(hk_sp_entry);
    h->cmd_size = sizeof(hk_sp_cmd);
    h->ncmds = SP_NCMDS;
    h->total_size = lay->total;
    h->pid = getpid();
    h->uid = geteuid();
    h->entry_off = lay->entry_off;
    h->nentries = (uint32_t)lay->n;
    h->names_off = lay->names_off;
    h->names_size = lay->names_size;
    h->vals_off = lay->vals_off;
    h->vals_size = lay->vals_size;
    h->cmd_off = lay->cmd_off;
    fill_identity(h);
}

static void release_page(bool unlink_it) {
    if (unlink_it && sp.name[0] != '\0') {
        /* Unlink only the object we made (someone may have replaced it). */
        char path[80];
        struct stat st;
        hk_fmt(path, sizeof path, "%s%s", HK_SP_DIR, sp.name);
        if (stat(path, &st) == 0 && st.st_dev == sp.dev && st.st_ino == sp.ino)
            shm_unlink(sp.name);
    }
    sp_path[0] = '\0';
    if (sp.hdr != NULL) munmap(sp.hdr, sp.size);
    if (sp.fd >= 0) close(sp.fd);
    sp.hdr = NULL;
    sp.fd = -1;
    sp.size = 0;
}

/* Maps the private area (leaves + staging) for the layout. */
static bool map_private(const sp_layout *lay) {
    if (sp.priv != NULL && sp.priv_size >= lay->priv) {
        memset(sp.priv, 0, sp.priv_size);
    } else {
        if (sp.priv != NULL) hk_os_unmap(sp.priv, sp.priv_size);
        sp.priv = hk_os_map(lay->priv);
        sp.priv_size = sp.priv != NULL ? lay->priv : 0;
        if (sp.priv == NULL) return false;
    }
    sp.leaves = sp.priv;
    sp.stage = (uint64_t *)((uint8_t *)sp.priv + round_up(lay->n * sizeof(sp_leaf), 8));
    return true;
}

static bool open_object(size_t size) {
    hk_fmt(sp.name, sizeof sp.name, HK_SP_NAME_FMT, (unsigned)geteuid(), (int)getpid());
    int fd = shm_open(sp.name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* Left by a dead process whose pid we now have: never a live one. */
        shm_unlink(sp.name);
        fd = shm_open(sp.name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) return false;
    struct stat st;
    void *p = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)size) == 0 && fstat(fd, &st) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        shm_unlink(sp.name);
        close(fd);
        return false;
    }
    sp.hdr = p;
    sp.size = size;
    sp.fd = fd;
    sp.dev = st.st_dev;
    sp.ino = st.st_ino;
    return true;
}

static void refresh(void);

static bool create_page(void) {
    sp_layout lay;
    plan_layout(&lay);
    if (lay.n == 0 || lay.total > HK_SP_MAX_SIZE || !map_private(&lay)) return false;
    if (!open_object(lay.total)) return false;
    sp.lay = lay;
    fill_header(sp.hdr, &lay);
    sp_build b = {.lay = &sp.lay, .name_pos = lay.names_off};
    hak_ctl_list("", fill_cb, &b);
    sp.lay.n = b.i;
    sp.hdr->nentries = (uint32_t)b.i; /* the same count unless the tree changed */
    refresh();
    hk_store_release(&sp.hdr->magic, HK_SP_MAGIC);
    hk_fmt(sp_path, sizeof sp_path, "%s%s", HK_SP_DIR, sp.name);
    hk_store_release(&sp.live, true);
    return true;
}

static void teardown(void) {
    hk_store_relaxed(&sp.live, false);
    release_page(true);
    sp.started = false;
}

/* ---- refreshing ---- */

/* One leaf's value into its staging slot: a status word, then the payload. */
static void read_leaf(const sp_leaf *l, uint64_t *slot) {
    size_t words = l->val_size / 8 - 1;
    memset(slot + 1, 0, words * 8);
    if (l->type == HAK_CTL_VOID) {
        slot[0] = 0;
        return;
    }
    hk_ctl_value v;
    memset(&v, 0, sizeof v);
    int rc = l->row == NULL ? ENOENT : l->row->get == NULL ? EPERM : l->row->get(l->row, l->vals, &v);
    uint64_t plen = 0;
    if (rc == 0) {
        plen = 8;
        switch (l->type) {
        case HAK_CTL_BOOL: slot[1] = v.b; break;
        case HAK_CTL_UNSIGNED: slot[1] = v.u; break;
        case HAK_CTL_SIZE: slot[1] = v.z; break;
        case HAK_CTL_U64: slot[1] = v.u64; break;
        case HAK_CTL_I64: slot[1] = (uint64_t)v.i64; break;
        case HAK_CTL_STRING:
            plen = v.s != NULL ? strnlen(v.s, words * 8) : 0;
            memcpy(slot + 1, v.s != NULL ? v.s : "", plen);
            break;
        case HAK_CTL_CLASS_STATS:
            plen = sizeof v.cs;
            memcpy(slot + 1, &v.cs, sizeof v.cs);
            break;
        }
    }
    slot[0] = plen | ((uint64_t)(uint32_t)rc << 32);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out) {
    uint64_t x = 0;
    if (*s == '\0') return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10) return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

static bool parse_value(int type, const char *s, hk_ctl_value *v) {
    uint64_t x;
    switch (type) {
    case HAK_CTL_BOOL:
        if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) v->b = true;
        else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) v->b = false;
        else return false;
        return true;
    case HAK_CTL_UNSIGNED: if (!parse_u64(s, UINT32_MAX, &x)) return false; v->u = (unsigned)x; return true;
    case HAK_CTL_SIZE: if (!parse_u64(s, SIZE_MAX, &x)) return false; v->z = (size_t)x; return true;
    case HAK_CTL_U64: if (!parse_u64(s, UINT64_MAX, &x)) return false; v->u64 = x; return true;
    case HAK_CTL_I64:
        if (!parse_u64(s + (*s == '-'), (uint64_t)INT64_MAX, &x)) return false;
        v->i64 = *s == '-' ? -(int64_t)x : (int64_t)x;
        return true;
    case HAK_CTL_STRING: v->s = s; return true;
    default: return false;
    }
}

typedef struct sp_find { const char *key; int type, writable; bool found; } sp_find;

static int find_cb(const char *name, int type, int writable, void *arg) {
    sp_find *f = arg;
    if (strcmp(name, f->key) != 0) return 0;
    f->type = type;
    f->writable = writable;
    f->found = true;
    return 1;
}

/* One command: 0, ENOENT (no such leaf), EPERM (read-only, or not
 * page-settable) or EINVAL (bad value); else what hak_ctl returns. */
static int apply_command(const char *key, const char *val) {
    sp_find f = {.key = key};
    if (*key != '\0') hak_ctl_list(key, find_cb, &f);
    if (!f.found) return ENOENT;
    if (!f.writable || !is_settable(key)) return EPERM;
    if (f.type == HAK_CTL_VOID) return hak_ctl(key, NULL, NULL, NULL, 0);
    hk_ctl_value v;
    memset(&v, 0, sizeof v);
    if (!parse_value(f.type, val, &v)) return EINVAL;
    bool page_on = hk_feature_on(HK_FEAT_STATS_PAGE);
    int rc = hak_ctl(key, NULL, NULL, &v, hk_ctl_type_size(f.type));
    /* A mode set from outside keeps the page its operator is looking
     * through; stats_page.enabled 0 removes it. */
    if (rc == 0 && page_on && strcmp(key, "config.mode") == 0)
        hk_feature_set(HK_FEAT_STATS_PAGE, true);
    return rc;
}

static hk_sp_cmd *cmd_ring(void) { return (hk_sp_cmd *)((uint8_t *)sp.hdr + sp.lay.cmd_off); }

static bool commands_pending(void) {
    hk_sp_cmd *ring = cmd_ring();
    for (unsigned i = 0; i < SP_NCMDS; i++)
        if (hk_load_relaxed(&ring[i].state) == HK_SP_CMD_POSTED) return true;
    return false;
}

static void apply_commands(void) {
    hk_sp_cmd *ring = cmd_ring();
    for (unsigned i = 0; i < SP_NCMDS; i++) {
        hk_sp_cmd *c = &ring[i];
        uint32_t st = HK_SP_CMD_POSTED;
        if (!atomic_compare_exchange_strong_explicit(&c->state, &st, HK_SP_CMD_BUSY,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        char key[HK_SP_KEY_MAX], val[HK_SP_VALUE_MAX];
        memcpy(key, c->key, sizeof key);
        memcpy(val, c->value, sizeof val);
        key[sizeof key - 1] = '\0';
        val[sizeof val - 1] = '\0';
        hk_store_relaxed(&c->result, apply_command(key, val));
        hk_store_relaxed(&c->applied_in, hk_load_relaxed(&sp.nrefresh) + 1);
        hk_store_release(&c->state, HK_SP_CMD_DONE);
        hk_fetch_add_relaxed(&sp.ncommands, 1);
    }
}

/* Commands, then every leaf into the staging area, then the page under the
 * sequence lock (odd for the copy only).  A command is applied by the
 * refresh numbered nrefresh + 1, whose values show its effect. */
static void refresh(void) {
    apply_commands();
    uint64_t n = hk_fetch_add_relaxed(&sp.nrefresh, 1) + 1;
    hk_ctl_bulk_begin();
    for (size_t i = 0; i < sp.lay.n; i++)
        read_leaf(&sp.leaves[i], sp.stage + sp.leaves[i].val_off / 8);
    hk_ctl_bulk_end();

    hk_sp_header *h = sp.hdr;
    _Atomic uint64_t *dst = (_Atomic uint64_t *)((uint8_t *)h + sp.lay.vals_off);
    size_t words = sp.lay.vals_size / 8;
    uint64_t seq = hk_load_relaxed(&h->seq), sum = HK_SP_HASH_SEED;
    hk_store_relaxed(&h->seq, seq + 1);
    atomic_thread_fence(memory_order_release);
    for (size_t w = 0; w < words; w++) {
        hk_store_relaxed(&dst[w], sp.stage[w]);
        sum = hk_sp_hash(sum, sp.stage[w]);
    }
    hk_store_relaxed(&h->updated_ms, clock_ms(CLOCK_REALTIME));
    hk_store_relaxed(&h->nrefresh, n);
    hk_store_relaxed(&h->interval_ms, hk_statspage_interval());
    hk_store_relaxed(&h->flags, hk_load_relaxed(&sp.bg_running) ? HK_SP_F_BGTHREAD : 0);
    hk_store_relaxed(&h->checksum, sum);
    hk_store_release(&h->seq, seq + 2);
}

/* ---- the background thread ---- */

enum sp_why { SP_TICK, SP_BG, SP_FORCE };
static void work(uint64_t now, enum sp_why why);
static bool try_work(uint64_t now, enum sp_why why);

static void *bg_main(void *arg) {
    while (!hk_load_relaxed(&sp.closed)) {
        unsigned step = hk_statspage_interval();
        if (step > SP_BG_STEP_MS) step = SP_BG_STEP_MS;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        try_work(hk_os_now_ms(), SP_BG);
    }
    return NULL;
}

static void start_bg_thread(void) {
    bool no = false;
    if (!hk_load_relaxed(&sp.ctor_ran) ||
        !atomic_compare_exchange_strong(&sp.bg_running, &no, true))
        return;
    if (!hk_os_start_thread(bg_main, "hakmem-stats", 0)) hk_store_relaxed(&sp.bg_running, false);
}

/* ---- the tick and the work ---- */

/* Under busy.  now: coarse monotonic ms. */
static void work(uint64_t now, enum sp_why why) {
    if (!hk_feature_on(HK_FEAT_STATS_PAGE)) {
        if (hk_load_relaxed(&sp.live)) teardown();
        sp.started = false;
        return;
    }
    if (hk_opt.background_thread && !hk_load_relaxed(&sp.bg_running)) start_bg_thread();
    unsigned interval = hk_statspage_interval();
    if (!sp.started) {
        sp.started = true;
        sp.t0_ms = now;
    }
    if (!hk_load_relaxed(&sp.live)) {
        uint64_t at = sp.t0_ms + hk_opt.stats_page_delay_ms;
        if (why != SP_FORCE && now < at) {
            hk_store_relaxed(&sp.due_ms, at);
        } else if (create_page()) {
            hk_store_relaxed(&sp.due_ms, now + interval);
        } else {
            hk_store_relaxed(&sp.due_ms, now + SP_RETRY_MS);
        }
        return;
    }
    bool due = now >= hk_load_relaxed(&sp.due_ms);
    if (why != SP_FORCE && !due && !(why == SP_BG && commands_pending())) return;
    /* A page someone truncated would fault on write: make a new one. */
    struct stat st;
    if (fstat(sp.fd, &st) != 0 || (size_t)st.st_size < sp.size) {
        teardown();
        sp.started = true;
        hk_store_relaxed(&sp.due_ms, now);
        return;
    }
    refresh();
    hk_store_relaxed(&sp.due_ms, now + interval);
}

static bool try_work(uint64_t now, enum sp_why why) {
    if (sp_in_work || hk_load_relaxed(&sp.closed) ||
        hk_exchange_acq_rel(&sp.busy, true))
        return false;
    sp_in_work = true;
    int saved = errno;
    work(now, why);
    errno = saved;
    sp_in_work = false;
    hk_store_release(&sp.busy, false);
    return true;
}

/* One relaxed load and a coarse clock read (about 8 ns; a thread heap
 * ticks once in HK_TICK_EVERY slow paths). */
void hk_statspage_tick(void) {
    if (hk_unlikely(!hk_feature_on(HK_FEAT_STATS_PAGE))) {
        if (hk_unlikely(hk_load_relaxed(&sp.live))) try_work(hk_os_now_ms(), SP_TICK);
        return;
    }
    uint64_t now = hk_os_now_ms();
    if (hk_likely(now < hk_load_relaxed(&sp.due_ms))) return;
    try_work(now, SP_TICK);
}

/* ---- life cycle hooks and the stats_page.* leaves ---- */

__attribute__((constructor)) static void sp_ctor(void) {
    hk_store_relaxed(&sp.ctor_ran, true);
    /* Initialized already (malloc was called before us): start the thread
     * now, so an idle process gets its page.  Otherwise the first tick does. */
    if (hk_load_acquire(&hk_initialized) && hk_opt.background_thread &&
        hk_feature_on(HK_FEAT_STATS_PAGE))
        start_bg_thread();
}

/* At exit: no more work, and the page goes. */
void hk_statspage_fini(void) {
    hk_store_relaxed(&sp.closed, true);
    hk_store_relaxed(&sp.due_ms, UINT64_MAX);
    bool mine = false;
    for (int i = 0; i < 2000 && !(mine = !hk_exchange_acq_rel(&sp.busy, true)); i++) sched_yield();
    /* busy stays taken: nothing refreshes after this. */
    if (!hk_load_relaxed(&sp.live)) return;
    hk_store_relaxed(&sp.live, false);
    if (mine) release_page(true);
    else if (sp.name[0] != '\0') shm_unlink(sp.name); /* a writer is stuck in it: leave it mapped */
}

/* In a fork child (one thread): the page is the parent's, not ours to write
 * or unlink; ours comes after the delay. */
void hk_statspage_fork_child(void) {
    if (sp.hdr != NULL) munmap(sp.hdr, sp.size);
    if (sp.fd >= 0) close(sp.fd);
    sp.hdr = NULL;
    sp.fd = -1;
    sp.started = false;
    sp_path[0] = '\0';
    hk_store_relaxed(&sp.live, false);
    hk_store_relaxed(&sp.bg_running, false);
    hk_store_relaxed(&sp.nrefresh, 0);
    hk_store_relaxed(&sp.ncommands, 0);
    hk_store_relaxed(&sp.due_ms, 0);
    hk_store_relaxed(&sp.busy, false);
}

/* A stable pointer (readers compare it): the buffer is "" while there is
 * no page. */
const char *hk_statspage_path(void) { return sp_path; }

unsigned hk_statspage_interval(void) {
    unsigned v = hk_load_relaxed(&sp.interval_ms);
    return v != 0 ? v : hk_opt.stats_page_interval_ms;
}

int hk_statspage_set_interval(unsigned ms) {
    if (ms < 1 || ms > 3600000) return EINVAL;
    hk_store_relaxed(&sp.interval_ms, ms);
    hk_store_relaxed(&sp.due_ms, 0); /* the next tick reschedules */
    return 0;
}

uint64_t hk_statspage_refreshes(void) { return hk_load_relaxed(&sp.nrefresh); }
uint64_t hk_statspage_commands(void) { return hk_load_relaxed(&sp.ncommands); }
bool hk_statspage_bg_running(void) { return hk_load_relaxed(&sp.bg_running); }

/* stats_page.refresh: now, creating the page if its delay has not passed. */
int hk_statspage_refresh_now(void) {
    if (sp_in_work) return EPERM;
    if (!hk_feature_on(HK_FEAT_STATS_PAGE)) return EPERM;
    for (;;) {
        if (hk_load_relaxed(&sp.closed)) return EPERM;
        if (try_work(hk_os_now_ms(), SP_FORCE)) break;
        sched_yield();
    }
    return hk_load_relaxed(&sp.live) ? 0 : EAGAIN;
}
