/* Nothing a page contains crashes the reader or the process.
 *   - crafted page files (a copy of a real page with one field broken:
 *     magic, versions, sizes, offsets, counts, entries, names, value slots,
 *     sequence, checksum; truncated, empty, oversized, symlinked) give a
 *     clear error, and value-level damage shows as "(corrupt value)";
 *   - random bytes flipped anywhere in a copy, thousands of times: any
 *     result but a crash;
 *   - an object truncated under an open reader: an error, not SIGBUS;
 *   - the process's own live page scribbled on (header, table, values,
 *     command ring): the process keeps refreshing and answering hak_ctl. */
#include "harness.h"
#include "hakctl_page.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAKE_PID 2147480001 /* above any real pid_max default */

static unsigned char *base;   /* a copy of this process's page, pid set to FAKE_PID */
static size_t base_size;
static char fake_path[128];

static uint64_t rng = 0x5eed;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool load_base(void) {
    if (base != NULL) return true;
    bool on = true;
    if (hak_ctl("stats_page.enabled", NULL, NULL, &on, sizeof on) != 0 ||
        hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0) != 0)
        return false;
    hkp_page p;
    char err[256];
    if (hkp_open(&p, getpid(), false, err, sizeof err) != HKP_OK) return false;
    base_size = p.size;
    base = malloc(base_size);
    /* A consistent copy: the snapshot's values into the image. */
    bool ok = base != NULL && hkp_snapshot(&p, 1000, err, sizeof err) == HKP_OK;
    if (ok) {
        memcpy(base, p.img, base_size);
        memcpy(base + p.hdr.vals_off, p.vals, p.hdr.vals_size);
        hk_sp_header *h = (hk_sp_header *)(void *)base;
        h->pid = FAKE_PID;
        atomic_store_explicit(&h->seq, 2, memory_order_relaxed);
        uint64_t s = HK_SP_HASH_SEED;
        for (size_t k = 0; k < p.hdr.vals_size / 8; k++) s = hk_sp_hash(s, p.vals[k]);
        atomic_store_explicit(&h->checksum, s, memory_order_relaxed);
    }
    hkp_close(&p);
    snprintf(fake_path, sizeof fake_path, "/dev/shm/hakmem.%u.%d", (unsigned)geteuid(), FAKE_PID);
    return ok;
}

static void write_file(const unsigned char *img, size_t n) {
    unlink(fake_path);
    int fd = open(fake_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    if (n > 0 && write(fd, img, n) != (ssize_t)n) hk_test_log("short write");
    close(fd);
}

/* The checksum of img's value area, where the unbroken copy has it. */
static void rehash(unsigned char *img) {
    const hk_sp_header *b = (const hk_sp_header *)(const void *)base;
    uint64_t s = HK_SP_HASH_SEED;
    for (size_t k = 0; k < b->vals_size / 8; k++) {
        uint64_t w;
        memcpy(&w, img + b->vals_off + k * 8, 8);
        s = hk_sp_hash(s, w);
    }
    atomic_store_explicit(&((hk_sp_header *)(void *)img)->checksum, s, memory_order_relaxed);
}

/* Opens, snapshots and reads every entry of the fake page; returns the
 * first error code (HKP_OK when all went through). */
static int read_all(char *err, size_t cap, unsigned *corrupt_values) {
    hkp_page p;
    int rc = hkp_open_path(&p, fake_path, false, err, cap);
    if (rc != HKP_OK) return rc;
    rc = hkp_snapshot(&p, 50, err, cap);
    if (rc == HKP_OK) {
        for (size_t i = 0; i < p.nent; i++) {
            hkp_entry e;
            hkp_value v;
            char out[2048];
            if (!hkp_entry_at(&p, i, &e)) continue;
            hkp_value_of(&p, &e, &v);
            hkp_format(&v, HKP_PLAIN, out, sizeof out);
            hkp_format(&v, HKP_JSON, out, sizeof out);
            if (v.rc < 0 && corrupt_values) ++*corrupt_values;
        }
    }
    hkp_close(&p);
    return rc;
}

static hk_sp_header *H(unsigned char *img) { return (hk_sp_header *)(void *)img; }
static hk_sp_entry *E(unsigned char *img, size_t i) {
    return (hk_sp_entry *)(void *)(img + H(img)->entry_off + i * H(img)->entry_size);
}

typedef void (*mutate_fn)(unsigned char *img);
static void m_magic(unsigned char *b) { atomic_store_explicit(&H(b)->magic, 0x1234, memory_order_relaxed); }
static void m_compat(unsigned char *b) { H(b)->compat = 99; }
static void m_version0(unsigned char *b) { H(b)->version = 0; }
static void m_header_size0(unsigned char *b) { H(b)->header_size = 0; }
static void m_header_big(unsigned char *b) { H(b)->header_size = 0xffffffffu; }
static void m_entry_size0(unsigned char *b) { H(b)->entry_size = 0; }
static void m_entry_size_big(unsigned char *b) { H(b)->entry_size = 100000; }
static void m_total(unsigned char *b) { H(b)->total_size *= 2; }
static void m_pid(unsigned char *b) { H(b)->pid = 1; }
static void m_entry_off(unsigned char *b) { H(b)->entry_off = (uint32_t)base_size - 10; }
static void m_nentries(unsigned char *b) { H(b)->nentries = 0xffffffffu; }
static void m_names_off(unsigned char *b) { H(b)->names_off = 0xfffffff0u; }
static void m_names_size(unsigned char *b) { H(b)->names_size = 0xfffffff0u; }
static void m_vals_misaligned(unsigned char *b) { H(b)->vals_off += 3; }
static void m_vals_size_odd(unsigned char *b) { H(b)->vals_size = 7; }
static void m_vals_size0(unsigned char *b) { H(b)->vals_size = 0; }
static void m_vals_past_end(unsigned char *b) { H(b)->vals_size = (uint32_t)base_size; }
static void m_ncmds(unsigned char *b) { H(b)->ncmds = 5000; }
static void m_cmd_size(unsigned char *b) { H(b)->cmd_size = 8; }
static void m_cmd_off(unsigned char *b) { H(b)->cmd_off = (uint32_t)base_size - 16; }
static void m_name_off(unsigned char *b) { E(b, 0)->name_off = 0xfffffff0u; }
static void m_name_len0(unsigned char *b) { E(b, 3)->name_len = 0; }
static void m_name_long(unsigned char *b) { E(b, 3)->name_len = 0xffff; }
static void m_name_newline(unsigned char *b) { b[E(b, 1)->name_off] = '\n'; }
static void m_doc_off(unsigned char *b) { E(b, 2)->doc_off = 0xfffffff0u; }
static void m_val_misaligned(unsigned char *b) { E(b, 5)->val_off += 4; }
static void m_val_size0(unsigned char *b) { E(b, 5)->val_size = 0; }
static void m_val_size_big(unsigned char *b) { E(b, 5)->val_size = 0xfffffff8u; }
static void m_val_before(unsigned char *b) { E(b, 5)->val_off = 8; }
static void m_checksum(unsigned char *b) { atomic_store_explicit(&H(b)->checksum, 42, memory_order_relaxed); }

static const struct { const char *what; mutate_fn fn; int want; } cases[] = {
    {"magic", m_magic, HKP_ECORRUPT},
    {"compat 99", m_compat, HKP_ECORRUPT},
    {"version 0", m_version0, HKP_ECORRUPT},
    {"header_size 0", m_header_size0, HKP_ECORRUPT},
    {"header_size huge", m_header_big, HKP_ECORRUPT},
    {"entry_size 0", m_entry_size0, HKP_ECORRUPT},
    {"entry_size huge", m_entry_size_big, HKP_ECORRUPT},
    {"total_size", m_total, HKP_ECORRUPT},
    {"pid", m_pid, HKP_ECORRUPT},
    {"entry_off", m_entry_off, HKP_ECORRUPT},
    {"nentries", m_nentries, HKP_ECORRUPT},
    {"names_off", m_names_off, HKP_ECORRUPT},
    {"names_size", m_names_size, HKP_ECORRUPT},
    {"vals_off misaligned", m_vals_misaligned, HKP_ECORRUPT},
    {"vals_size odd", m_vals_size_odd, HKP_ECORRUPT},
    {"vals_size 0", m_vals_size0, HKP_ECORRUPT},
    {"vals past the end", m_vals_past_end, HKP_ECORRUPT},
    {"ncmds", m_ncmds, HKP_ECORRUPT},
    {"cmd_size", m_cmd_size, HKP_ECORRUPT},
    {"cmd_off", m_cmd_off, HKP_ECORRUPT},
    {"entry name_off", m_name_off, HKP_ECORRUPT},
    {"entry name_len 0", m_name_len0, HKP_ECORRUPT},
    {"entry name_len huge", m_name_long, HKP_ECORRUPT},
    {"entry name with a newline", m_name_newline, HKP_ECORRUPT},
    {"entry doc_off", m_doc_off, HKP_ECORRUPT},
    {"entry val_off misaligned", m_val_misaligned, HKP_ECORRUPT},
    {"entry val_size 0", m_val_size0, HKP_ECORRUPT},
    {"entry val_size huge", m_val_size_big, HKP_ECORRUPT},
    {"entry val_off in the header", m_val_before, HKP_ECORRUPT},
    {"checksum", m_checksum, HKP_ECORRUPT},
};

TEST(statspage_crafted_pages_give_clear_errors) {
    REQUIRE_TRUE(load_base(), "a copy of this process's page");
    unsigned char *img = malloc(base_size);
    REQUIRE_NOT_NULL(img, "memory");
    char err[512];
    write_file(base, base_size);
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_OK, "the unbroken copy reads");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(img, base, base_size);
        cases[i].fn(img);
        write_file(img, base_size);
        err[0] = '\0';
        int rc = read_all(err, sizeof err, NULL);
        char what[700];
        snprintf(what, sizeof what, "%s: '%s'", cases[i].what, err);
        EXPECT_EQ_U(rc, cases[i].want, what);
        EXPECT_TRUE(rc == HKP_OK || (strstr(err, fake_path) != NULL && strchr(err, '\n') == NULL),
                    "the error names the page, on one line");
    }
    /* Whole-file cases. */
    write_file(base, 0);
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_ECORRUPT, "empty file");
    write_file(base, 100);
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_ECORRUPT, "shorter than a header");
    write_file(base, base_size / 2);
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_ECORRUPT, "truncated copy");
    write_file(base, base_size);
    EXPECT_EQ_U(truncate(fake_path, (off_t)HK_SP_MAX_SIZE + 4096), 0, "grow to 64 MiB + 4 KiB");
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_ECORRUPT, "larger than any page");
    unlink(fake_path);
    EXPECT_EQ_U(symlink("/etc/hostname", fake_path), 0, "symlink");
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_ECORRUPT, "a symbolic link");
    EXPECT_HAS_STR(err, "symbolic link", err);
    unlink(fake_path);
    /* Sequence left odd: the reader gives up with EBUSY. */
    memcpy(img, base, base_size);
    atomic_store_explicit(&H(img)->seq, 7, memory_order_relaxed);
    write_file(img, base_size);
    EXPECT_EQ_U(read_all(err, sizeof err, NULL), HKP_EBUSY, "odd sequence");
    free(img);
    unlink(fake_path);
}

TEST(statspage_bad_value_slots_read_as_corrupt) {
    REQUIRE_TRUE(load_base(), "base");
    unsigned char *img = malloc(base_size);
    REQUIRE_NOT_NULL(img, "memory");
    memcpy(img, base, base_size);
    hkp_page p;
    char err[512];
    /* Find a string leaf and a scalar one in the copy. */
    write_file(img, base_size);
    REQUIRE_EQ_U(hkp_open_path(&p, fake_path, false, err, sizeof err), HKP_OK, err);
    hkp_entry ver, narenas;
    REQUIRE_TRUE(hkp_find(&p, "version", &ver) && hkp_find(&p, "opt.narenas", &narenas), "leaves");
    hkp_close(&p);
    size_t voff = H(img)->vals_off + ver.slot * 8, noff = H(img)->vals_off + narenas.slot * 8;
    uint64_t status = 4096;                 /* payload longer than the slot */
    memcpy(img + noff, &status, 8);
    status = 5;                             /* "\x1b[2J\n" */
    memcpy(img + voff, &status, 8);
    memcpy(img + voff + 8, "\033[2J\n", 5);
    rehash(img);
    write_file(img, base_size);
    REQUIRE_EQ_U(hkp_open_path(&p, fake_path, false, err, sizeof err), HKP_OK, err);
    REQUIRE_EQ_U(hkp_snapshot(&p, 100, err, sizeof err), HKP_OK, err);
    hkp_value v;
    char out[256];
    hkp_value_of(&p, &narenas, &v);
    hkp_format(&v, HKP_PLAIN, out, sizeof out);
    EXPECT_TRUE(v.rc < 0 && strcmp(out, "(corrupt value)") == 0, out);
    hkp_value_of(&p, &ver, &v);
    hkp_format(&v, HKP_PLAIN, out, sizeof out);
    EXPECT_TRUE(strchr(out, '\033') == NULL && strchr(out, '\n') == NULL, "control bytes never printed");
    hkp_format(&v, HKP_JSON, out, sizeof out);
    EXPECT_HAS_STR(out, "\\u001b", "escaped in JSON");
    hkp_close(&p);
    free(img);
    unlink(fake_path);
}

TEST(statspage_random_damage_never_crashes) {
    REQUIRE_TRUE(load_base(), "base");
    unsigned char *img = malloc(base_size);
    REQUIRE_NOT_NULL(img, "memory");
    unsigned n = 1500 * hk_test_scale(), ok = 0, corrupt_values = 0;
    uint32_t table_end = H(base)->names_off;
    for (unsigned i = 0; i < n; i++) {
        memcpy(img, base, base_size);
        unsigned flips = 1 + (unsigned)(next_rand() % 8);
        for (unsigned f = 0; f < flips; f++) {
            /* Half the damage in the header and the table, where it matters. */
            size_t span = (i & 1) ? table_end : base_size;
            img[next_rand() % span] = (unsigned char)next_rand();
        }
        if (i % 3 == 0) rehash(img); /* let value damage past the checksum */
        write_file(img, base_size);
        char err[512];
        ok += read_all(err, sizeof err, &corrupt_values) == HKP_OK;
    }
    hk_test_log("%u damaged copies: %u read through (%u corrupt values flagged), the rest refused", n, ok,
                corrupt_values);
    free(img);
    unlink(fake_path);
}

TEST(statspage_truncated_under_reader) {
    REQUIRE_TRUE(load_base(), "base");
    write_file(base, base_size);
    hkp_page p;
    char err[512];
    REQUIRE_EQ_U(hkp_open_path(&p, fake_path, true, err, sizeof err), HKP_OK, err);
    REQUIRE_EQ_U(truncate(fake_path, 4096), 0, "truncate under the reader");
    EXPECT_EQ_U(hkp_snapshot(&p, 100, err, sizeof err), HKP_ECORRUPT, "snapshot: an error, not SIGBUS");
    EXPECT_HAS_STR(err, "truncated", err);
    int result = 0;
    EXPECT_EQ_U(hkp_post(&p, "config.mode", "fast", 100, &result, NULL, err, sizeof err), HKP_ECORRUPT,
                "post: an error, not SIGBUS");
    hkp_close(&p);
    unlink(fake_path);
}

/* Scribbles on the live page itself: the process only writes values and
 * reads the command ring, with offsets it kept privately. */
TEST(statspage_live_page_scribbles_are_survived) {
    REQUIRE_TRUE(load_base(), "base");
    char path[128], err[512];
    snprintf(path, sizeof path, "/dev/shm/hakmem.%u.%d", (unsigned)geteuid(), (int)getpid());
    unsigned rounds = 40 * hk_test_scale(), reads_ok = 0;
    for (unsigned r = 0; r < rounds; r++) {
        bool off = false, on = true;
        hak_ctl("stats_page.enabled", NULL, NULL, &off, sizeof off);
        void *q = hak_malloc(3u << 20); /* a tick: the page goes */
        hak_free(q);
        hak_ctl("stats_page.enabled", NULL, NULL, &on, sizeof on);
        REQUIRE_EQ_U(hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0), 0, "a fresh page");
        int fd = open(path, O_RDWR | O_CLOEXEC);
        REQUIRE_GE_I(fd, 0, "open the live page");
        struct stat st;
        fstat(fd, &st);
        unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        REQUIRE_NE_PTR(m, MAP_FAILED, "map it");
        for (unsigned k = 0; k < 256; k++) m[next_rand() % (size_t)st.st_size] = (unsigned char)next_rand();
        hk_sp_header *h = (hk_sp_header *)(void *)m;
        if (r % 4 == 0) {
            /* Every slot posted, keys and values of random bytes. */
            size_t cmd_off = H(base)->cmd_off;
            for (unsigned s = 0; s < H(base)->ncmds; s++) {
                hk_sp_cmd *c = (hk_sp_cmd *)(void *)(m + cmd_off + s * sizeof(hk_sp_cmd));
                for (size_t k = 0; k < sizeof c->key; k++) c->key[k] = (char)next_rand();
                for (size_t k = 0; k < sizeof c->value; k++) c->value[k] = (char)next_rand();
                atomic_store(&c->state, HK_SP_CMD_POSTED);
            }
        } else if (r % 4 == 1) {
            h->vals_off = 0xfffffff0u; /* the reader's problem, not the writer's */
            h->nentries = 0xffffffffu;
        }
        for (int k = 0; k < 3; k++)
            EXPECT_EQ_U(hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0), 0, "refresh after the scribble");
        hkp_page p;
        if (hkp_open(&p, getpid(), false, err, sizeof err) == HKP_OK) {
            reads_ok += hkp_snapshot(&p, 50, err, sizeof err) == HKP_OK;
            hkp_close(&p);
        }
        munmap(m, (size_t)st.st_size);
        const char *v = NULL;
        size_t len = sizeof v;
        EXPECT_TRUE(hak_ctl("version", &v, &len, NULL, 0) == 0 && strcmp(v, HAKMEM_VERSION) == 0,
                    "the process is fine");
    }
    hk_test_log("%u scribbled pages, %u still readable", rounds, reads_ok);
    const char *mode = NULL;
    size_t len = sizeof mode;
    EXPECT_TRUE(hak_ctl("config.mode", &mode, &len, NULL, 0) == 0 && strcmp(mode, "balanced") == 0,
                "random commands changed nothing");
}

TEST_MAIN()
