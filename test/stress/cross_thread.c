/*
 * Cross-thread frees: blocks allocated and written by one thread, checked and
 * freed by another, through a mutex-protected queue, a lock-free MPMC queue,
 * and per-thread mailboxes where every thread both allocates and frees
 * (remote frees landing on pages whose owner is busy allocating from them).
 */
#include "harness.h"
#include "stress_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct msg {
    unsigned char *p;
    size_t n;
    uint32_t producer;
    uint64_t seq;
};

static uint64_t msg_tag(uint32_t producer, uint64_t seq) {
    return hk_mix64(((uint64_t)producer << 40) ^ seq ^ 0xC0FFEE);
}

/* The producer writes the pattern, then its id and sequence number over the
 * first 16 bytes (when the block has them). */
static void msg_write(struct msg *m) {
    hk_fill(m->p, m->n, msg_tag(m->producer, m->seq));
    if (m->n >= 16) {
        uint64_t id = m->producer;
        memcpy(m->p, &id, 8);
        memcpy(m->p + 8, &m->seq, 8);
    }
}

/* The consumer checks the id and sequence, puts the pattern back over them,
 * and checks the whole block. */
static int msg_check(hk_errs *e, struct msg *m) {
    uint64_t tag = msg_tag(m->producer, m->seq);
    if (m->n >= 16) {
        uint64_t id, seq;
        memcpy(&id, m->p, 8);
        memcpy(&seq, m->p + 8, 8);
        if (id != m->producer || seq != m->seq) {
            HK_ERR(e, "block %p: header says producer %llu seq %llu, queue "
                   "says %u/%llu", (void *)m->p, (unsigned long long)id,
                   (unsigned long long)seq, m->producer,
                   (unsigned long long)m->seq);
            return 0;
        }
        uint64_t w0 = hk_word(tag, 0), w1 = hk_word(tag, 8);
        memcpy(m->p, &w0, 8);
        memcpy(m->p + 8, &w1, 8);
    }
    return hk_verify(e, "cross-thread block", m->p, m->n, tag);
}

/* Per-producer accounting: a bitmap of sequence numbers seen, so a block
 * delivered twice or never is caught. */
struct ledger {
    unsigned nprod;
    uint64_t per_prod;
    _Atomic uint64_t *bits; /* nprod * words */
    size_t words;
    atomic_ullong consumed, dup;
};

static int ledger_init(struct ledger *l, unsigned nprod, uint64_t per_prod) {
    l->nprod = nprod;
    l->per_prod = per_prod;
    l->words = (size_t)(per_prod + 63) / 64;
    l->bits = calloc((size_t)nprod * l->words, sizeof *l->bits);
    atomic_init(&l->consumed, 0);
    atomic_init(&l->dup, 0);
    return l->bits != NULL;
}

static void ledger_mark(struct ledger *l, const struct msg *m) {
    if (m->producer >= l->nprod || m->seq >= l->per_prod) {
        atomic_fetch_add(&l->dup, 1);
        return;
    }
    _Atomic uint64_t *w = &l->bits[m->producer * l->words + m->seq / 64];
    uint64_t bit = (uint64_t)1 << (m->seq % 64);
    if (atomic_fetch_or(w, bit) & bit) atomic_fetch_add(&l->dup, 1);
    atomic_fetch_add(&l->consumed, 1);
}

static uint64_t ledger_missing(struct ledger *l) {
    uint64_t missing = 0;
    for (unsigned p = 0; p < l->nprod; p++)
        for (uint64_t s = 0; s < l->per_prod; s++)
            if (!(atomic_load(&l->bits[p * l->words + s / 64]) &
                  ((uint64_t)1 << (s % 64))))
                missing++;
    return missing;
}

/* Sizes for messages: every tier, huge rarely. */
static size_t msg_size(hk_rng *r) {
    return hk_random_size(r, hk_below(r, 4) == 0);
}

/* ---- a bounded queue under a mutex ---- */

#define MQ_CAP 256

struct mutex_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct msg ring[MQ_CAP];
    size_t head, count;
    unsigned producers_left;
};

struct pc_arg {
    unsigned id;
    uint64_t count;
    void *queue;
    struct ledger *ledger;
    hk_errs *errs;
    uint64_t freed;
};

static void *mq_producer(void *v) {
    struct pc_arg *a = v;
    struct mutex_queue *q = a->queue;
    hk_rng r;
    hk_rng_seed(&r, 0x4000 + a->id);
    for (uint64_t s = 0; s < a->count; s++) {
        struct msg m = { .n = msg_size(&r), .producer = a->id, .seq = s };
        m.p = hak_malloc(m.n);
        if (!hk_check_new(a->errs, "producer", m.p, m.n)) {
            hak_free(m.p);
            continue;
        }
        msg_write(&m);
        pthread_mutex_lock(&q->mu);
        while (q->count == MQ_CAP) pthread_cond_wait(&q->not_full, &q->mu);
        q->ring[(q->head + q->count) % MQ_CAP] = m;
        q->count++;
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->mu);
    }
    pthread_mutex_lock(&q->mu);
    q->producers_left--;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void *mq_consumer(void *v) {
    struct pc_arg *a = v;
    struct mutex_queue *q = a->queue;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && q->producers_left > 0)
            pthread_cond_wait(&q->not_empty, &q->mu);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        struct msg m = q->ring[q->head];
        q->head = (q->head + 1) % MQ_CAP;
        q->count--;
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->mu);
        ledger_mark(a->ledger, &m);
        if (msg_check(a->errs, &m)) {
            hak_free(m.p);
            a->freed++;
        }
    }
    return NULL;
}

static void run_pc(void *(*prod)(void *), void *(*cons)(void *), void *queue,
                   unsigned nprod, unsigned ncons, uint64_t per_prod,
                   struct ledger *l, hk_errs *errs, uint64_t *freed) {
    pthread_t th[nprod + ncons];
    struct pc_arg args[nprod + ncons];
    unsigned started = 0;
    for (unsigned i = 0; i < nprod + ncons; i++) {
        args[i] = (struct pc_arg){ .id = i < nprod ? i : i - nprod,
                                   .count = per_prod, .queue = queue,
                                   .ledger = l, .errs = errs };
        if (pthread_create(&th[i], NULL, i < nprod ? prod : cons, &args[i])) {
            HK_ERR(errs, "pthread_create failed");
            break;
        }
        started++;
    }
    *freed = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (i >= nprod) *freed += args[i].freed;
    }
}

TEST(producer_consumer_mutex_queue) {
    unsigned nt = hk_test_threads();
    unsigned nprod = nt / 2 ? nt / 2 : 1, ncons = nt - nprod ? nt - nprod : 1;
    uint64_t per_prod = (uint64_t)hk_iters(40000) / nprod;
    struct mutex_queue *q = calloc(1, sizeof *q);
    struct ledger l;
    hk_errs errs;
    REQUIRE_NOT_NULL(q, "queue");
    REQUIRE_TRUE(ledger_init(&l, nprod, per_prod), "ledger");
    hk_errs_init(&errs);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->producers_left = nprod;
    uint64_t freed;
    run_pc(mq_producer, mq_consumer, q, nprod, ncons, per_prod, &l, &errs,
           &freed);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(atomic_load(&l.consumed), nprod * per_prod,
                "every message consumed");
    EXPECT_EQ_U(freed, nprod * per_prod, "every block verified and freed");
    EXPECT_EQ_U(atomic_load(&l.dup), 0, "no block delivered twice");
    EXPECT_EQ_U(ledger_missing(&l), 0, "no block lost");
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    free(l.bits);
    free(q);
}

/* ---- a lock-free bounded MPMC queue (Vyukov's) ---- */

#define LQ_CAP 1024 /* power of two */

struct lq_cell {
    atomic_size_t seq;
    struct msg m;
};

struct lf_queue {
    struct lq_cell cells[LQ_CAP];
    _Alignas(64) atomic_size_t enq;
    _Alignas(64) atomic_size_t deq;
    _Alignas(64) atomic_ullong total_consumed;
    uint64_t total;
};

static int lq_push(struct lf_queue *q, const struct msg *m) {
    size_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
    for (;;) {
        struct lq_cell *c = &q->cells[pos & (LQ_CAP - 1)];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1,
                    memory_order_relaxed, memory_order_relaxed)) {
                c->m = *m;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* full */
        } else {
            pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        }
    }
}

static int lq_pop(struct lf_queue *q, struct msg *m) {
    size_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    for (;;) {
        struct lq_cell *c = &q->cells[pos & (LQ_CAP - 1)];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1,
                    memory_order_relaxed, memory_order_relaxed)) {
                *m = c->m;
                atomic_store_explicit(&c->seq, pos + LQ_CAP,
                                      memory_order_release);
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* empty */
        } else {
            pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
        }
    }
}

static void *lq_producer(void *v) {
    struct pc_arg *a = v;
    struct lf_queue *q = a->queue;
    hk_rng r;
    hk_rng_seed(&r, 0x5000 + a->id);
    for (uint64_t s = 0; s < a->count; s++) {
        struct msg m = { .n = msg_size(&r), .producer = a->id, .seq = s };
        m.p = hak_malloc(m.n);
        if (!hk_check_new(a->errs, "producer", m.p, m.n)) {
            hak_free(m.p);
            /* keep the consumers' count right */
            atomic_fetch_add(&q->total_consumed, 1);
            continue;
        }
        msg_write(&m);
        while (!lq_push(q, &m)) sched_yield();
    }
    return NULL;
}

static void *lq_consumer(void *v) {
    struct pc_arg *a = v;
    struct lf_queue *q = a->queue;
    struct msg m;
    for (;;) {
        if (!lq_pop(q, &m)) {
            if (atomic_load(&q->total_consumed) >= q->total) break;
            sched_yield();
            continue;
        }
        ledger_mark(a->ledger, &m);
        if (msg_check(a->errs, &m)) {
            hak_free(m.p);
            a->freed++;
        }
        atomic_fetch_add(&q->total_consumed, 1);
    }
    return NULL;
}

TEST(producer_consumer_lockfree_queue) {
    unsigned nt = hk_test_threads();
    unsigned nprod = nt / 2 ? nt / 2 : 1, ncons = nt - nprod ? nt - nprod : 1;
    uint64_t per_prod = (uint64_t)hk_iters(40000) / nprod;
    struct lf_queue *q = calloc(1, sizeof *q);
    struct ledger l;
    hk_errs errs;
    REQUIRE_NOT_NULL(q, "queue");
    REQUIRE_TRUE(ledger_init(&l, nprod, per_prod), "ledger");
    hk_errs_init(&errs);
    for (size_t i = 0; i < LQ_CAP; i++) atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->enq, 0);
    atomic_init(&q->deq, 0);
    atomic_init(&q->total_consumed, 0);
    q->total = nprod * per_prod;
    uint64_t freed;
    run_pc(lq_producer, lq_consumer, q, nprod, ncons, per_prod, &l, &errs,
           &freed);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(atomic_load(&l.consumed), nprod * per_prod,
                "every message consumed");
    EXPECT_EQ_U(freed, nprod * per_prod, "every block verified and freed");
    EXPECT_EQ_U(atomic_load(&l.dup), 0, "no block delivered twice");
    EXPECT_EQ_U(ledger_missing(&l), 0, "no block lost");
    free(l.bits);
    free(q);
}

/* ---- mailboxes: every thread allocates batches, posts each batch to
 * another thread, and frees whatever lands in its own mailbox, so remote
 * frees hit pages whose owner is allocating from them at the same time. ---- */

#define MB_BATCH 32

struct batch {
    struct batch *next;
    unsigned n;
    struct msg m[MB_BATCH];
};

struct mailbox {
    pthread_mutex_t mu;
    struct batch *head;
    unsigned pending; /* batches in head */
    char pad[64];
};

/* A sender waits (draining its own mailbox) while the receiver has this
 * many batches pending, so memory stays bounded at any scale. */
#define MB_MAX_PENDING 16

struct mb_shared {
    unsigned nt, rounds;
    struct mailbox *boxes;
    struct ledger *ledger;
    hk_errs *errs;
    atomic_ullong freed;
    uint64_t total;
};

struct mb_arg {
    unsigned id;
    struct mb_shared *sh;
};

static void mb_drain(struct mb_shared *sh, unsigned id) {
    struct mailbox *box = &sh->boxes[id];
    pthread_mutex_lock(&box->mu);
    struct batch *b = box->head;
    box->head = NULL;
    box->pending = 0;
    pthread_mutex_unlock(&box->mu);
    while (b) {
        struct batch *next = b->next;
        for (unsigned i = 0; i < b->n; i++) {
            ledger_mark(sh->ledger, &b->m[i]);
            if (msg_check(sh->errs, &b->m[i])) hak_free(b->m[i].p);
        }
        atomic_fetch_add(&sh->freed, b->n);
        hak_free(b); /* the batch itself is a remote free too */
        b = next;
    }
}

static void *mb_worker(void *v) {
    struct mb_arg *a = v;
    struct mb_shared *sh = a->sh;
    hk_rng r;
    uint64_t seq = 0;
    hk_rng_seed(&r, 0x6000 + a->id);
    for (unsigned round = 0; round < sh->rounds; round++) {
        struct batch *b = hak_malloc(sizeof *b);
        if (!hk_check_new(sh->errs, "batch", b, sizeof *b)) {
            atomic_fetch_add(&sh->freed, MB_BATCH);
            seq += MB_BATCH;
            continue;
        }
        b->n = 0;
        for (unsigned i = 0; i < MB_BATCH; i++) {
            /* mostly tiny and mid: the pages remote frees land on */
            struct msg m = { .producer = a->id, .seq = seq++ };
            m.n = hk_below(&r, 8) ? hk_range(&r, 1, HK_TINY_MAX)
                                  : hk_random_size(&r, 0);
            m.p = hak_malloc(m.n);
            if (!hk_check_new(sh->errs, "mailbox block", m.p, m.n)) {
                hak_free(m.p);
                atomic_fetch_add(&sh->freed, 1);
                continue;
            }
            msg_write(&m);
            b->m[b->n++] = m;
        }
        unsigned to = (a->id + 1 + (unsigned)hk_below(&r, sh->nt - 1 ? sh->nt - 1 : 1)) % sh->nt;
        struct mailbox *box = &sh->boxes[to];
        for (;;) {
            pthread_mutex_lock(&box->mu);
            if (box->pending < MB_MAX_PENDING) break;
            pthread_mutex_unlock(&box->mu);
            mb_drain(sh, a->id);
            sched_yield();
        }
        b->next = box->head;
        box->head = b;
        box->pending++;
        pthread_mutex_unlock(&box->mu);
        mb_drain(sh, a->id);
    }
    /* keep draining until everything sent by everyone was freed */
    while (atomic_load(&sh->freed) < sh->total) {
        mb_drain(sh, a->id);
        sched_yield();
    }
    return NULL;
}

TEST(mailbox_remote_frees) {
    unsigned nt = hk_test_threads();
    struct mb_shared sh;
    struct ledger l;
    hk_errs errs;
    sh.nt = nt;
    sh.rounds = hk_iters(400);
    sh.total = (uint64_t)nt * sh.rounds * MB_BATCH;
    sh.boxes = calloc(nt, sizeof *sh.boxes);
    REQUIRE_NOT_NULL(sh.boxes, "mailboxes");
    REQUIRE_TRUE(ledger_init(&l, nt, (uint64_t)sh.rounds * MB_BATCH), "ledger");
    hk_errs_init(&errs);
    sh.ledger = &l;
    sh.errs = &errs;
    atomic_init(&sh.freed, 0);
    for (unsigned i = 0; i < nt; i++) pthread_mutex_init(&sh.boxes[i].mu, NULL);
    pthread_t th[nt];
    struct mb_arg args[nt];
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct mb_arg){ .id = i, .sh = &sh };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, mb_worker, &args[i]), 0,
                     "pthread_create");
    }
    for (unsigned i = 0; i < nt; i++) pthread_join(th[i], NULL);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(atomic_load(&l.consumed), sh.total, "every block received");
    EXPECT_EQ_U(atomic_load(&l.dup), 0, "no block delivered twice");
    EXPECT_EQ_U(ledger_missing(&l), 0, "no block lost");
    for (unsigned i = 0; i < nt; i++) pthread_mutex_destroy(&sh.boxes[i].mu);
    free(l.bits);
    free(sh.boxes);
}

TEST_MAIN()
