/*
 * fpcache.c — the conversation so far, hashed once: a thread's last
 * fingerprinted histories (XV_FPC_WAYS of them) and their SHA-256 states,
 * so the next request of the same conversation hashes only what it adds
 * (issue 9).
 *
 * SPEC §4's fingerprint is SHA-256 over the canonical messages, which every
 * request of a conversation repeats and lengthens: hashing it whole cost
 * ~0.7 ns a byte on every call (a 40 KiB agent history, ~30 us a call,
 * more than the rest of the agent). Each thread keeps the canonical bytes of
 * the messages of its last XV_FPC_WAYS requests of different conversations
 * (an async server serves several on one thread) and the hash state after
 * each. A request's canonical text is compared with all of them as it is
 * produced: while one matches, nothing is hashed; where the text goes past
 * the end of one it matched (the conversation went on), hashing resumes
 * from that one's state and the run takes its place; where every one
 * differs, or a digest is wanted in the middle of them where no state was
 * kept, the bytes that matched are hashed from the start — the work a
 * request without this does, so a miss costs only the comparing — and kept
 * in the least recently used place, so another conversation that shares a
 * prefix (a system prompt) keeps its history. The prefix digests a request
 * wants (messages[:-1], and up to its last assistant message) are kept with
 * its history as marks, so the same history sent again (a retry, an eval
 * or a CI suite sending one prompt many times) takes them too and hashes
 * nothing. The bytes compared equal are exactly the ones hashed before, so
 * every digest equals the one hashed whole (unit_session_fpcache checks
 * that against hashing from scratch).
 *
 * Invariants:
 *  - An entry holds bytes[0, len) and, when `have`, the state after exactly
 *    those bytes and its marks, each the state after bytes[0, mark_pos);
 *    a comparing run's *sha is the state after its first `hashed` bytes;
 *    while a run compares, every entry in its `cands` has
 *    bytes[0, pos) equal to the run's text so far; once it streams, its
 *    entry (have = 0 meanwhile) holds the run's text so far (captured while
 *    it fits) and *sha is the state after it.
 *  - Kept bytes are bounded: XV_FPC_ENTRY_MAX an entry, XV_FPC_BUDGET over
 *    all threads (a capture that would pass either stops: that request is
 *    not kept); a thread's buffers are freed when it exits.
 *  - The bytes are conversation content: kept in memory only, never logged
 *    or exported.
 * Thread safety: each thread uses its own entry; the budget is an atomic.
 */
#include "session_int.h"
#include "xv_tkey.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


struct xv_fpc_entry {
    unsigned char *bytes;
    size_t len, cap;
    int have;                 /* state is the hash of bytes[0, len) */
    uint64_t used;            /* the thread's tick when last kept (LRU) */
    struct sha256_ctx state;
    int nmarks;               /* when have: states after bytes[0, mark_pos[i]) */
    size_t mark_pos[XV_FPC_MARKS];
    struct sha256_ctx mark[XV_FPC_MARKS];
};

struct xv_fpc_thread {
    struct xv_fpc_entry e[XV_FPC_WAYS];
    uint64_t tick;
};

static __thread struct xv_fpc_thread *t_fpc __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_resumed __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_hashed __attribute__((tls_model("initial-exec")));
static _Atomic size_t g_budget_used;
static struct xv_tkey g_key;

static void thread_free(void *arg)
{
    struct xv_fpc_thread *t = arg;
    if (!t)
        return;
    for (int i = 0; i < XV_FPC_WAYS; i++) {
        atomic_fetch_sub(&g_budget_used, t->e[i].cap);
        free(t->e[i].bytes);
    }
    free(t);
    t_fpc = NULL;
}

/* The thread's entries (made at its first use, freed at its exit); NULL
 * when it cannot have them. */
static struct xv_fpc_thread *thread_entries(void)
{
    if (t_fpc)
        return t_fpc;
    struct xv_fpc_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (xv_tkey_set(&g_key, thread_free, t) != 0) {
        free(t);
        return NULL;
    }
    return t_fpc = t;
}

/* Room for `need` bytes in e, within both bounds; 0 or -1 (not kept). */
static int reserve(struct xv_fpc_entry *e, size_t need)
{
    if (need <= e->cap)
        return 0;
    if (need > XV_FPC_ENTRY_MAX)
        return -1;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > XV_FPC_ENTRY_MAX)
        cap = XV_FPC_ENTRY_MAX;
    size_t add = cap - e->cap;
    if (atomic_fetch_add(&g_budget_used, add) + add > XV_FPC_BUDGET) {
        atomic_fetch_sub(&g_budget_used, add);
        return -1;
    }
    unsigned char *b = realloc(e->bytes, cap);
    if (!b) {
        atomic_fetch_sub(&g_budget_used, add);
        return -1;
    }
    e->bytes = b;
    e->cap = cap;
    return 0;
}

/* The entry a new history takes: an empty one, else the least recently
 * kept. */
static struct xv_fpc_entry *victim(struct xv_fpc_thread *t)
{
    struct xv_fpc_entry *v = &t->e[0];
    for (int i = 0; i < XV_FPC_WAYS; i++) {
        struct xv_fpc_entry *e = &t->e[i];
        if (!e->have)
            return e;
        if (e->used < v->used)
            v = e;
    }
    return v;
}

void xv_fpc_begin(struct xv_fpc_run *r, struct sha256_ctx *sha)
{
    memset(r, 0, sizeof *r);
    r->sha = sha;
    sha256_init(sha);
    r->t = thread_entries();
    if (!r->t) {
        r->mode = XV_FPC_PLAIN;
        return;
    }
    for (int i = 0; i < XV_FPC_WAYS; i++)
        if (r->t->e[i].have && r->t->e[i].len)
            r->cands |= 1u << i;
    if (r->cands) {
        r->mode = XV_FPC_COMPARE;
        return;
    }
    r->e = victim(r->t);
    r->e->len = 0;
    r->e->have = 0; /* from here on the entry is this run's */
    r->mode = XV_FPC_STREAM;
}

/* Compare mode ends at r->pos, the run's text so far being entry i's
 * bytes[0, pos): the state there, from i's kept state when every byte of i
 * matched (the run takes i's place: the same conversation, gone on), else
 * by hashing the matched bytes, which the least recently kept entry takes
 * (i itself, or a copy: i may be another conversation's history). */
static void to_stream(struct xv_fpc_run *r, int i)
{
    struct xv_fpc_entry *e = &r->t->e[i];
    r->mode = XV_FPC_STREAM;
    if (r->pos == e->len) {
        *r->sha = e->state;
        t_resumed += r->pos - r->hashed;
        r->e = e;
        e->have = 0;
        return;
    }
    /* *r->sha holds bytes[0, hashed) already (a mark's state, or none) */
    sha256_update(r->sha, r->pos - r->hashed, e->bytes + r->hashed);
    t_hashed += r->pos - r->hashed;
    struct xv_fpc_entry *v = victim(r->t);
    r->e = v;
    v->have = 0;
    if (v != e) {
        v->len = 0;
        if (reserve(v, r->pos) != 0) {
            r->mode = XV_FPC_PLAIN; /* too big to keep: hashed only */
            return;
        }
        memcpy(v->bytes, e->bytes, r->pos);
    }
    v->len = r->pos;
}

static void stream(struct xv_fpc_run *r, const void *p, size_t n)
{
    sha256_update(r->sha, n, p);
    t_hashed += n;
    if (r->mode != XV_FPC_STREAM)
        return;
    struct xv_fpc_entry *e = r->e;
    if (reserve(e, e->len + n) != 0) {
        e->len = 0;
        r->mode = XV_FPC_PLAIN; /* too big to keep: hashed only */
        return;
    }
    memcpy(e->bytes + e->len, p, n);
    e->len += n;
}

void xv_fpc_put(struct xv_fpc_run *r, const void *p, size_t n)
{
    if (r->mode == XV_FPC_COMPARE) {
        const unsigned char *b = p;
        unsigned still = 0;
        int best = -1;
        size_t best_same = 0;
        for (int i = 0; i < XV_FPC_WAYS; i++) {
            if (!(r->cands & (1u << i)))
                continue;
            const struct xv_fpc_entry *e = &r->t->e[i];
            size_t left = e->len - r->pos;
            if (n <= left && memcmp(e->bytes + r->pos, b, n) == 0) {
                still |= 1u << i;
                continue;
            }
            /* the longest equal part still counts (the rest is hashed below) */
            size_t same = 0, cmp = n < left ? n : left;
            const unsigned char *a = e->bytes + r->pos;
            while (same < cmp && a[same] == b[same])
                same++;
            if (best < 0 || same > best_same) {
                best = i;
                best_same = same;
            }
        }
        if (still) {
            r->cands = still;
            r->pos += n;
            return;
        }
        r->pos += best_same;
        to_stream(r, best);
        p = b + best_same;
        n -= best_same;
        if (!n)
            return;
    }
    stream(r, p, n);
}

/* A comparing run streams from here on: *sha is the state after its text. */
static void settle(struct xv_fpc_run *r)
{
    if (r->mode == XV_FPC_COMPARE)
        to_stream(r, __builtin_ctz(r->cands));
}

void xv_fpc_mark(struct xv_fpc_run *r)
{
    if (r->mode == XV_FPC_COMPARE) {
        /* Every candidate's bytes[0, pos) are the run's text so far: a
         * mark of any of them at pos is the state the run needs. */
        int found = 0;
        for (int i = 0; i < XV_FPC_WAYS && !found; i++) {
            const struct xv_fpc_entry *e = &r->t->e[i];
            if (!(r->cands & (1u << i)))
                continue;
            for (int j = 0; j < e->nmarks && !found; j++)
                if (e->mark_pos[j] == r->pos && r->pos > r->hashed) {
                    *r->sha = e->mark[j];
                    t_resumed += r->pos - r->hashed;
                    r->hashed = r->pos;
                    found = 1;
                }
        }
        if (!found && r->pos > r->hashed)
            to_stream(r, __builtin_ctz(r->cands));
    }
    size_t at;
    if (r->mode == XV_FPC_COMPARE)
        at = r->pos;
    else if (r->mode == XV_FPC_STREAM)
        at = r->e->len; /* the entry holds the run's text so far */
    else
        return;
    if (r->nmarks < XV_FPC_MARKS) {
        r->mark_pos[r->nmarks] = at;
        r->mark[r->nmarks++] = *r->sha;
    }
}

void xv_fpc_end(struct xv_fpc_run *r, int keep)
{
    if (!r->t)
        return;
    settle(r);
    struct xv_fpc_entry *e = r->e;
    if (!e)
        return;
    if (keep && r->mode == XV_FPC_STREAM) {
        e->state = *r->sha;
        e->have = 1;
        e->used = ++r->t->tick;
        e->nmarks = r->nmarks; /* each over the run's text: these bytes */
        for (int j = 0; j < r->nmarks; j++) {
            e->mark_pos[j] = r->mark_pos[j];
            e->mark[j] = r->mark[j];
        }
    } else {
        e->len = 0;
        e->have = 0;
        e->nmarks = 0;
    }
    if (e->cap > XV_FPC_KEEP && !e->have) {
        /* a big buffer not kept for a next request: back to malloc */
        atomic_fetch_sub(&g_budget_used, e->cap);
        free(e->bytes);
        e->bytes = NULL;
        e->cap = 0;
    }
}

size_t xv_fpc_budget_used(void)
{
    return atomic_load(&g_budget_used);
}

uint64_t xv_fpc_resumed_total(void)
{
    return t_resumed;
}

uint64_t xv_fpc_hashed_total(void)
{
    return t_hashed;
}
