/*
 * fpcache.c — the conversation so far, hashed once: a thread's last
 * fingerprinted history and its SHA-256 state, so the next request of the
 * same conversation hashes only what it adds (issue 9).
 *
 * SPEC §4's fingerprint is SHA-256 over the canonical messages, which every
 * request of a conversation repeats and lengthens: hashing it whole cost
 * ~0.7 ns a byte on every call (a 40 KiB agent history, ~30 us a call,
 * more than the rest of the agent). Each thread keeps the canonical bytes of
 * its last request's messages and the hash state after them. A request's
 * canonical text is compared with them as it is produced: while it matches,
 * nothing is hashed; where it goes past their end (the conversation went on)
 * hashing resumes from the kept state; where it differs, or a digest is
 * wanted in the middle of them, the kept bytes up to that point are hashed
 * from the start — the work a request without this does, so a miss costs
 * only the comparing. The bytes compared equal are exactly the ones hashed
 * before, so every digest equals the one hashed whole (unit_session_fpcache
 * checks that against hashing from scratch).
 *
 * Invariants:
 *  - A thread's entry holds bytes[0, len) and, when `have`, the state after
 *    exactly those bytes; while a run compares, bytes[0, pos) equal the run's
 *    text so far; once it streams, bytes[0, len) are the run's text so far
 *    (captured while it fits) and *sha the state after them.
 *  - Kept bytes are bounded: XV_FPC_ENTRY_MAX a thread, XV_FPC_BUDGET over
 *    all threads (a capture that would pass either stops: that request is
 *    not kept); a thread's buffer is freed when it exits.
 *  - The bytes are conversation content: kept in memory only, never logged
 *    or exported.
 * Thread safety: each thread uses its own entry; the budget is an atomic.
 */
#include "session_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


struct xv_fpc_entry {
    unsigned char *bytes;
    size_t len, cap;
    int have;                 /* state is the hash of bytes[0, len) */
    struct sha256_ctx state;
};

static __thread struct xv_fpc_entry *t_entry __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_resumed __attribute__((tls_model("initial-exec")));
static _Atomic size_t g_budget_used;
static _Atomic int g_key_state; /* 0 none, 1 making, 2 ready, 3 failed */
static pthread_key_t g_key;

static void entry_free(void *arg)
{
    struct xv_fpc_entry *e = arg;
    if (!e)
        return;
    atomic_fetch_sub(&g_budget_used, e->cap);
    free(e->bytes);
    free(e);
    t_entry = NULL;
}

/* The thread's entry (made at its first use, freed at its exit); NULL when
 * it cannot have one. */
static struct xv_fpc_entry *thread_entry(void)
{
    if (t_entry)
        return t_entry;
    int s = atomic_load(&g_key_state);
    if (s == 0) {
        int want = 0;
        if (atomic_compare_exchange_strong(&g_key_state, &want, 1)) {
            s = pthread_key_create(&g_key, entry_free) == 0 ? 2 : 3;
            atomic_store(&g_key_state, s);
        } else {
            s = want;
        }
    }
    if (s != 2)
        return NULL;
    struct xv_fpc_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (pthread_setspecific(g_key, e) != 0) {
        free(e);
        return NULL;
    }
    return t_entry = e;
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

void xv_fpc_begin(struct xv_fpc_run *r, struct sha256_ctx *sha)
{
    memset(r, 0, sizeof *r);
    r->sha = sha;
    sha256_init(sha);
    r->e = thread_entry();
    if (!r->e) {
        r->mode = XV_FPC_PLAIN;
        return;
    }
    r->mode = r->e->len && r->e->have ? XV_FPC_COMPARE : XV_FPC_STREAM;
    if (r->mode == XV_FPC_STREAM)
        r->e->len = 0;
    r->e->have = 0; /* from here on the entry is this run's */
}

/* Compare mode ends at r->pos: the state there, from the kept state when
 * every kept byte matched, else by hashing the matched bytes; the entry
 * keeps bytes[0, pos) (the run's own) and captures what follows. */
static void to_stream(struct xv_fpc_run *r)
{
    struct xv_fpc_entry *e = r->e;
    if (r->pos == e->len) {
        *r->sha = e->state;
        r->resumed = r->pos;
        t_resumed += r->pos;
    } else {
        sha256_update(r->sha, r->pos, e->bytes);
        e->len = r->pos;
    }
    r->mode = XV_FPC_STREAM;
}

static void stream(struct xv_fpc_run *r, const void *p, size_t n)
{
    sha256_update(r->sha, n, p);
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
        struct xv_fpc_entry *e = r->e;
        size_t left = e->len - r->pos;
        if (n <= left && memcmp(e->bytes + r->pos, p, n) == 0) {
            r->pos += n;
            return;
        }
        /* the longest equal part still counts (the rest is hashed below) */
        size_t same = 0, cmp = n < left ? n : left;
        const unsigned char *a = e->bytes + r->pos, *b = p;
        while (same < cmp && a[same] == b[same])
            same++;
        r->pos += same;
        to_stream(r);
        p = b + same;
        n -= same;
        if (!n)
            return;
    }
    stream(r, p, n);
}

void xv_fpc_state(struct xv_fpc_run *r)
{
    if (r->mode == XV_FPC_COMPARE)
        to_stream(r);
}

void xv_fpc_end(struct xv_fpc_run *r, int keep)
{
    struct xv_fpc_entry *e = r->e;
    if (!e)
        return;
    xv_fpc_state(r);
    if (keep && r->mode == XV_FPC_STREAM) {
        e->state = *r->sha;
        e->have = 1;
    } else {
        e->len = 0;
        e->have = 0;
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
