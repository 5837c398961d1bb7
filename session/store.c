/*
 * store.c — the session store: a fixed pool of sessions in LRU order with a
 * sliding expiry, an index from digests (session id, `user`, response id,
 * next-turn fingerprint) to sessions, and a fixed pool of outstanding tool
 * calls. Also the resolution chain and the after-response learning (the
 * reply it learns is built in reply.c).
 *
 * Invariants (all under s->mu):
 *   - slots at or past the bump index (sess_used / t_used) were never handed
 *     out and their pages never touched (calloc'd: the kernel maps them on
 *     first write); below it a session slot is either live (in the LRU
 *     list, most recent at the head) or on the free list of released slots;
 *     at most max_sessions are live;
 *   - a session owns NKEYS key nodes at fixed slots (0: its id, 1: its user,
 *     2..: a ring of the last XV_SESSION_LINKS response ids/fingerprints);
 *     chain links (bucket heads, key next) hold node index + 1, 0 ending the
 *     chain, so the zeroed bucket array needs no initialising write;
 *     a node is in exactly one bucket chain iff its kind is not K_FREE, and a
 *     digest (with its kind) is in the index at most once: binding it to a
 *     session takes it from whichever session held it;
 *   - the index uses the first mask + 1 buckets of its array: 1024 (one
 *     page) at first, doubled, its chains rebuilt from the key nodes, when
 *     the keys outnumber the buckets, up to the array's size (twice
 *     max_sessions); so a first call writes one page of buckets, not one
 *     per key;
 *   - a tool slot below t_used is either free or on both the global age list (oldest at
 *     the head) and its session's list; a session holds at most
 *     XV_SESSION_TOOLS_PER_SESSION of them;
 *   - all memory is allocated by xv_session_store_new; nothing is allocated
 *     later under the lock.
 *
 * Thread safety: one mutex per store around every access to its state;
 * digests (SHA-256 of canonical JSON) and new UUIDs are made with it
 * released — resolution drops it between strategies 1-3 and 4-5.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_int.h"

#define NKEYS (2 + XV_SESSION_LINKS)
#define SLOT_ID 0
#define SLOT_USER 1
#define POOL_MAX (1u << 24)
#define BUCKET_PAGE 4096 /* bytes of `buckets` per bit of bucket_pages */
#define BUCKETS_FIRST (BUCKET_PAGE / sizeof(int32_t)) /* the index's first size */

/* Kind of a key node; also the domain tag hashed in front of the text. */
enum key_kind { K_FREE = 0, K_ID = 'i', K_USER = 'u', K_RESP = 'r', K_FP = 'f' };

/* A key keeps 16 bytes of its digest (a false match among a full store's
 * 10^5 keys: ~10^-29); a slot is a third smaller (issue 9, docs/session.md). */
#define KEY_DIGEST_LEN 16

struct key {
    uint8_t digest[KEY_DIGEST_LEN];        /* SHA-256(tag ‖ text), or a fingerprint: its head */
    int32_t next;                          /* next node + 1 in the bucket chain; 0 ends */
    uint8_t kind;                          /* enum key_kind; K_FREE: not indexed */
};

struct sess {
    char id[XV_SESSION_ID_LEN + 1]; /* session id text as first seen */
    uint8_t live;                   /* 1: in the LRU list; 0: free */
    uint8_t link_next;              /* ring slot (0..LINKS-1) the next link key takes */
    uint8_t ntools;                 /* outstanding tool calls held */
    int32_t prev, next;             /* LRU neighbours (free list: next only) */
    int32_t tools;                  /* oldest outstanding tool call; -1 none */
    uint64_t turn;                  /* requests resolved to this session */
    uint64_t last_used;             /* store clock at the last hit (sliding expiry) */
    struct key keys[NKEYS];         /* slot layout: see the file comment */
};

struct tool {
    uint8_t call[XV_SESSION_DIGEST_LEN]; /* SHA-256('c' ‖ call id) */
    char name[XV_SESSION_TOOL_NAME_MAX + 1];
    char args[XV_SESSION_TOOL_ARGS_MAX]; /* not NUL-terminated */
    uint16_t args_len;
    uint64_t issued;                     /* store clock when the response was recorded */
    int32_t sess;                        /* owner; -1 when free */
    int32_t snext;                       /* next (younger) in the owner's list */
    int32_t gprev, gnext;                /* global age list (free list: gnext only) */
};

struct xv_session_store {
    pthread_mutex_t mu;            /* guards everything below */
    struct xv_session_config cfg;  /* with defaults filled in */
    struct sess *sess;             /* cfg.max_sessions slots */
    int32_t lru_head, lru_tail;    /* most / least recently used live session */
    int32_t sess_free;             /* released session slots; -1 none */
    int32_t sess_used;             /* bump index: slots [0, sess_used) were handed out */
    int32_t *buckets;              /* nbuckets chain heads (node index + 1; 0 empty) */
    uint32_t mask;                 /* buckets in use - 1 (see the invariants) */
    uint32_t mask_max;             /* the array's buckets - 1 */
    uint64_t *bucket_pages;        /* a bit per page of `buckets`, set once written: an
                                      unwritten one is not read (docs/architecture.md) */
    struct tool *tools;            /* cfg.tool_max slots */
    int32_t t_head, t_tail;        /* oldest / youngest outstanding tool call */
    int32_t t_free;                /* released tool slots; -1 none */
    int32_t t_used;                /* bump index: slots [0, t_used) were handed out */
    struct xv_ready sess_ready;    /* `sess` made resident ahead of use, in steps
                                      doubling up to READY_MAX (issue 9) */
    struct xv_session_stats st;    /* counters; sessions/keys/tools are current */
};

/* ------------------------------------------------------------ sizes */

static size_t n_buckets(size_t max)
{
    size_t n = 16;
    while (n < max * 2)
        n <<= 1;
    return n;
}

/* The store's header: the struct and its bucket_pages bitmap, 64-aligned. */
static size_t head_bytes(size_t nb)
{
    size_t page_words = (nb * sizeof(int32_t) / BUCKET_PAGE + 63) / 64 + 1;
    return (sizeof(struct xv_session_store) + page_words * sizeof(uint64_t) + 63) & ~(size_t)63;
}

static void fill_defaults(struct xv_session_config *c)
{
    if (!c->max_sessions)
        c->max_sessions = XV_SESSION_DEFAULT_MAX;
    if (!c->ttl_ns)
        c->ttl_ns = XV_SESSION_DEFAULT_TTL_NS;
    if (!c->tool_max)
        c->tool_max = XV_SESSION_DEFAULT_TOOL_MAX;
}

size_t xv_session_store_bytes_bound(size_t max_sessions, size_t tool_max)
{
    struct xv_session_config c = { .max_sessions = max_sessions, .tool_max = tool_max };
    fill_defaults(&c);
    return head_bytes(n_buckets(c.max_sessions)) + c.max_sessions * sizeof(struct sess) + n_buckets(c.max_sessions) * sizeof(int32_t) +
           c.tool_max * sizeof(struct tool);
}

static uint64_t now_ns(struct xv_session_store *s)
{
    return s->cfg.clock ? s->cfg.clock(s->cfg.clock_arg) : xv_now_mono_ns();
}

/* ------------------------------------------------------------ lifecycle */

struct xv_session_store *xv_session_store_new(const struct xv_session_config *cfg)
{
    struct xv_session_config c = { 0 };
    if (cfg)
        c = *cfg;
    fill_defaults(&c);
    if (c.max_sessions > POOL_MAX || c.tool_max > POOL_MAX)
        return NULL;
    size_t nb = n_buckets(c.max_sessions);
    /* One zeroed block: the store, the sessions, the tool slots, the
     * buckets. A calloc of this size maps fresh zero pages (glibc mmap
     * threshold) and nothing below writes them but the first, so a page is
     * faulted in only when a slot or bucket on it is first used (issue 9:
     * building free lists here touched all ~6 MB, 1,584 faults, at the
     * first API call; three blocks cost two more mmaps and faults). */
    /* the sessions, then the tool slots, then the buckets, each aligned */
    _Static_assert(sizeof(struct sess) % _Alignof(struct tool) == 0 &&
                   sizeof(struct tool) % _Alignof(int32_t) == 0, "store block layout");
    struct xv_session_store *s;
    size_t head = head_bytes(nb);
    size_t sess_bytes = c.max_sessions * sizeof *s->sess;
    size_t tool_bytes = c.tool_max * sizeof *s->tools;
    s = calloc(1, head + sess_bytes + tool_bytes + nb * sizeof *s->buckets);
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->cfg = c;
    s->sess = (struct sess *)(void *)((char *)s + head);
    s->tools = (struct tool *)(void *)((char *)s->sess + sess_bytes);
    s->buckets = (int32_t *)(void *)((char *)s->tools + tool_bytes);
    s->mask_max = (uint32_t)(nb - 1);
    s->mask = (uint32_t)((nb < BUCKETS_FIRST ? nb : BUCKETS_FIRST) - 1);
    s->bucket_pages = (uint64_t *)(void *)(s + 1);
    /* Slots are handed out by the bump index first; the free lists hold
     * only released slots, so no slot is written before it is used. */
    s->sess_free = -1;
    s->sess_used = 0;
    s->lru_head = s->lru_tail = -1;
    s->t_free = -1;
    s->t_used = 0;
    s->t_head = s->t_tail = -1;
    return s;
}

void xv_session_store_free(struct xv_session_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);                           /* one block (see xv_session_store_new) */
}

void xv_session_store_atfork_prepare(struct xv_session_store *s)
{
    if (s)
        pthread_mutex_lock(&s->mu);
}

void xv_session_store_atfork_parent(struct xv_session_store *s)
{
    if (s)
        pthread_mutex_unlock(&s->mu);
}

void xv_session_store_atfork_child(struct xv_session_store *s)
{
    /* The prepare handler held the lock across fork(), so the state is
     * consistent; the child's copy of the mutex is simply made fresh. */
    if (s)
        pthread_mutex_init(&s->mu, NULL);
}

void xv_session_store_get_stats(struct xv_session_store *s, struct xv_session_stats *out)
{
    if (!s) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

const char *xv_session_strategy_name(int strategy)
{
    switch (strategy) {
    case XV_SESSION_BY_HEADER: return "header";
    case XV_SESSION_BY_ENV: return "env";
    case XV_SESSION_BY_PREVIOUS_RESPONSE: return "previous_response_id";
    case XV_SESSION_BY_USER: return "user";
    case XV_SESSION_BY_FINGERPRINT: return "fingerprint";
    case XV_SESSION_BY_NEW: return "new";
    }
    return "unknown";
}

/* ------------------------------------------------------------ the index */

static uint32_t bucket_of(const struct xv_session_store *s, const uint8_t *d)
{
    /* SHA-256 output is uniform: its first bytes are a fine bucket hash. */
    uint32_t h = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
                 (uint32_t)d[3] << 24;
    return h & s->mask;
}

static struct key *node(struct xv_session_store *s, int32_t n)
{
    return &s->sess[n / NKEYS].keys[n % NKEYS];
}

/* Bucket b's page in bucket_pages: its word, *bit its bit (set once written). */
static uint64_t *bucket_page(const struct xv_session_store *s, uint32_t b, uint64_t *bit)
{
    size_t p = (size_t)b * sizeof *s->buckets / BUCKET_PAGE;
    *bit = (uint64_t)1 << (p % 64);
    return &s->bucket_pages[p / 64];
}

static int32_t key_find(struct xv_session_store *s, uint8_t kind, const uint8_t *d)
{
    uint32_t b = bucket_of(s, d);
    uint64_t bit;
    if (!(*bucket_page(s, b, &bit) & bit))
        return -1; /* an unwritten page: every bucket on it empty */
    for (int32_t l = s->buckets[b]; l > 0; l = node(s, l - 1)->next) {
        struct key *k = node(s, l - 1);
        if (k->kind == kind && memcmp(k->digest, d, KEY_DIGEST_LEN) == 0)
            return l - 1;
    }
    return -1;
}

static void key_unlink(struct xv_session_store *s, int32_t n)
{
    struct key *k = node(s, n);
    if (k->kind == K_FREE)
        return;
    int32_t *pp = &s->buckets[bucket_of(s, k->digest)];
    while (*pp > 0 && *pp != n + 1)
        pp = &node(s, *pp - 1)->next;
    if (*pp == n + 1)
        *pp = k->next;
    k->kind = K_FREE;
    k->next = 0;
    s->st.keys--;
}

/* Put node n (indexed, its digest set) at the head of its bucket's chain. */
static void key_link(struct xv_session_store *s, int32_t n)
{
    struct key *k = node(s, n);
    uint32_t b = bucket_of(s, k->digest);
    uint64_t bit, *word = bucket_page(s, b, &bit);
    k->next = (*word & bit) ? s->buckets[b] : 0;
    s->buckets[b] = n + 1;
    *word |= bit;
}

/* More keys than buckets: double the buckets in use and rebuild every
 * chain from the key nodes (the new half of the array was never written;
 * the old half is cleared). Amortised over the keys that led here. */
static void index_grow(struct xv_session_store *s)
{
    uint32_t old = s->mask + 1;
    for (uint32_t b = 0; b < old; b += BUCKET_PAGE / sizeof(int32_t)) {
        uint64_t bit, *word = bucket_page(s, b, &bit);
        if (*word & bit)
            memset(&s->buckets[b], 0, BUCKET_PAGE);
    }
    s->mask = 2 * old - 1;
    for (int32_t i = 0; i < s->sess_used; i++)
        for (int slot = 0; slot < NKEYS; slot++)
            if (s->sess[i].keys[slot].kind != K_FREE)
                key_link(s, i * NKEYS + slot);
}

/* Put a digest no session holds into one of session i's key slots. */
static void key_bind_absent(struct xv_session_store *s, int32_t i, uint8_t kind,
                            const uint8_t *d)
{
    struct sess *se = &s->sess[i];
    int slot;
    if (kind == K_ID) {
        slot = SLOT_ID;
    } else if (kind == K_USER) {
        slot = SLOT_USER;
    } else {
        slot = 2 + se->link_next;
        se->link_next = (uint8_t)((se->link_next + 1) % XV_SESSION_LINKS);
    }
    int32_t n = i * NKEYS + slot;
    key_unlink(s, n);
    struct key *k = &se->keys[slot];
    memcpy(k->digest, d, KEY_DIGEST_LEN);
    k->kind = kind;
    key_link(s, n);
    s->st.keys++;
    if (s->st.keys > (size_t)s->mask + 1 && s->mask < s->mask_max)
        index_grow(s);
}

/* Bind a digest to session i (see the invariants). */
static void key_bind(struct xv_session_store *s, int32_t i, uint8_t kind, const uint8_t *d)
{
    int32_t old = key_find(s, kind, d);
    if (old >= 0) {
        if (old / NKEYS == i)
            return;
        key_unlink(s, old);
    }
    key_bind_absent(s, i, kind, d);
}

/* ------------------------------------------------------------ tool slots */

static void tool_release(struct xv_session_store *s, int32_t t)
{
    struct tool *tl = &s->tools[t];
    struct sess *se = &s->sess[tl->sess];
    int32_t *pp = &se->tools;
    while (*pp >= 0 && *pp != t)
        pp = &s->tools[*pp].snext;
    if (*pp == t)
        *pp = tl->snext;
    se->ntools--;
    if (tl->gprev >= 0)
        s->tools[tl->gprev].gnext = tl->gnext;
    else
        s->t_head = tl->gnext;
    if (tl->gnext >= 0)
        s->tools[tl->gnext].gprev = tl->gprev;
    else
        s->t_tail = tl->gprev;
    tl->sess = -1;
    tl->gnext = s->t_free;
    s->t_free = t;
    s->st.tools--;
}

static void tool_add(struct xv_session_store *s, int32_t i, const uint8_t *call,
                     const char *name, const char *args, size_t args_len, uint64_t now)
{
    struct sess *se = &s->sess[i];
    int32_t t;
    /* The same call recorded twice (a retried response) replaces itself. */
    for (t = se->tools; t >= 0; t = s->tools[t].snext)
        if (memcmp(s->tools[t].call, call, XV_SESSION_DIGEST_LEN) == 0) {
            tool_release(s, t);
            break;
        }
    if (se->ntools >= XV_SESSION_TOOLS_PER_SESSION) {
        tool_release(s, se->tools);
        s->st.tools_evicted++;
    }
    if (s->t_free < 0 && (size_t)s->t_used >= s->cfg.tool_max) {
        tool_release(s, s->t_head);
        s->st.tools_evicted++;
    }
    if (s->t_free >= 0) {
        t = s->t_free;
        s->t_free = s->tools[t].gnext;
    } else {
        t = s->t_used++; /* a never-used slot: its page is touched now */
    }
    struct tool *tl = &s->tools[t];
    memcpy(tl->call, call, XV_SESSION_DIGEST_LEN);
    xv_utf8_snprintf(tl->name, sizeof tl->name, "%s", name ? name : "");
    size_t n = 0;
    if (s->cfg.keep_tool_args && args) {
        n = args_len < XV_SESSION_TOOL_ARGS_MAX ? args_len : XV_SESSION_TOOL_ARGS_MAX;
        /* Cut at a UTF-8 boundary, never inside a sequence. */
        if (n < args_len)
            while (n > 0 && ((unsigned char)args[n] & 0xC0) == 0x80)
                n--;
        memcpy(tl->args, args, n);
    }
    tl->args_len = (uint16_t)n;
    tl->issued = now;
    tl->sess = i;
    tl->snext = -1;
    int32_t *pp = &se->tools;
    while (*pp >= 0)
        pp = &s->tools[*pp].snext;
    *pp = t;
    se->ntools++;
    tl->gnext = -1;
    tl->gprev = s->t_tail;
    if (s->t_tail >= 0)
        s->tools[s->t_tail].gnext = t;
    else
        s->t_head = t;
    s->t_tail = t;
    s->st.tools++;
}

/* ------------------------------------------------------------ sessions */

static void lru_unlink(struct xv_session_store *s, int32_t i)
{
    struct sess *se = &s->sess[i];
    if (se->prev >= 0)
        s->sess[se->prev].next = se->next;
    else
        s->lru_head = se->next;
    if (se->next >= 0)
        s->sess[se->next].prev = se->prev;
    else
        s->lru_tail = se->prev;
}

static void lru_push_head(struct xv_session_store *s, int32_t i)
{
    struct sess *se = &s->sess[i];
    se->prev = -1;
    se->next = s->lru_head;
    if (s->lru_head >= 0)
        s->sess[s->lru_head].prev = i;
    else
        s->lru_tail = i;
    s->lru_head = i;
}

static void sess_drop(struct xv_session_store *s, int32_t i)
{
    struct sess *se = &s->sess[i];
    for (int k = 0; k < NKEYS; k++)
        key_unlink(s, i * NKEYS + k);
    while (se->tools >= 0)
        tool_release(s, se->tools);
    lru_unlink(s, i);
    se->live = 0;
    se->next = s->sess_free;
    s->sess_free = i;
    s->st.sessions--;
}

static int is_expired(struct xv_session_store *s, int32_t i, uint64_t now)
{
    uint64_t last = s->sess[i].last_used;
    return now > last && now - last > s->cfg.ttl_ns;
}

static void touch(struct xv_session_store *s, int32_t i, uint64_t now)
{
    s->sess[i].last_used = now;
    if (s->lru_head != i) {
        lru_unlink(s, i);
        lru_push_head(s, i);
    }
}

/* Never-used slots are made resident ahead of use (xv_ready_ahead), a
 * page at first, the step doubling up to this: half the cost of faults
 * here (issue 9). */
#define READY_MAX ((size_t)64 << 10)

/* A fresh session slot: expired sessions at the cold end go first, then
 * the least recently used one. */
static int32_t sess_alloc(struct xv_session_store *s, const char *id, uint64_t now)
{
    while (s->lru_tail >= 0 && is_expired(s, s->lru_tail, now)) {
        sess_drop(s, s->lru_tail);
        s->st.expired++;
    }
    if (s->sess_free < 0 && (size_t)s->sess_used >= s->cfg.max_sessions) {
        sess_drop(s, s->lru_tail);
        s->st.evicted++;
    }
    int32_t i;
    if (s->sess_free >= 0) {
        i = s->sess_free;
        s->sess_free = s->sess[i].next;
    } else {
        i = s->sess_used++; /* a never-used slot: its page is touched now */
        xv_ready_ahead(s->sess, s->cfg.max_sessions * sizeof *s->sess,
                       (size_t)(i + 1) * sizeof *s->sess, READY_MAX, &s->sess_ready);
    }
    struct sess *se = &s->sess[i];
    /* Everything but the key nodes: those of a never-used slot are zero,
     * and sess_drop left a released slot's all K_FREE and unchained, so
     * the slot's last lines are not written here (issue 9). */
    memset(se, 0, offsetof(struct sess, keys));
    se->tools = -1;
    se->live = 1;
    se->last_used = now;
    memcpy(se->id, id, XV_SESSION_ID_LEN);
    lru_push_head(s, i);
    s->st.sessions++;
    s->st.created++;
    return i;
}

/* The live, unexpired session a key leads to; an expired one is dropped. */
static int32_t sess_lookup(struct xv_session_store *s, uint8_t kind, const uint8_t *d,
                           uint64_t now)
{
    int32_t n = key_find(s, kind, d);
    if (n < 0)
        return -1;
    int32_t i = n / NKEYS;
    if (is_expired(s, i, now)) {
        sess_drop(s, i);
        s->st.expired++;
        return -1;
    }
    return i;
}

/* ------------------------------------------------------------ resolution */

/* Digest of a session id: case-insensitive (hex digits lower-cased). */
static void id_digest_of(const char *id, uint8_t d[XV_SESSION_DIGEST_LEN])
{
    char low[XV_SESSION_ID_LEN];
    for (int i = 0; i < XV_SESSION_ID_LEN; i++)
        low[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] + 32) : id[i];
    xv_session_digest_str(K_ID, low, XV_SESSION_ID_LEN, d);
}

/* Bind a derived key (user, response id, fingerprint) to the request's
 * credential scope: XOR with the scope digest (both uniform 256-bit
 * values, so keys of different scopes never meet). */
static void scoped(uint8_t d[XV_SESSION_DIGEST_LEN], const uint8_t *scope)
{
    for (int i = 0; scope && i < XV_SESSION_DIGEST_LEN; i++)
        d[i] ^= scope[i];
}

static const char *body_str(const cJSON *body, const char *name)
{
    const cJSON *v = xv_json_get(body, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

int xv_session_store_resolve(struct xv_session_store *s, const struct xv_session_request *req,
                             struct xv_session_resolved *out)
{
    memset(out, 0, sizeof *out);
    if (req->convo)
        req->convo->valid = 0;
    const char *given = NULL;
    int strategy = 0;
    if (req->header_id) {
        const char *h = req->header_id;
        size_t n = req->header_id_len;
        while (n && (*h == ' ' || *h == '\t'))
            h++, n--;
        while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
            n--;
        if (!xv_session_uuid_valid(h, n))
            return XV_SESSION_E_BAD_ID;
        given = h;
        strategy = XV_SESSION_BY_HEADER;
    } else if (req->env_id && xv_session_uuid_valid(req->env_id, strlen(req->env_id))) {
        given = req->env_id;
        strategy = XV_SESSION_BY_ENV;
    }

    if (!s) {
        /* No store (its creation failed): stateless, every call a first turn. */
        if (given) {
            memcpy(out->id, given, XV_SESSION_ID_LEN);
        } else {
            xv_uuid_v4(out->id);
            strategy = XV_SESSION_BY_NEW;
        }
        out->turn = 1;
        out->strategy = strategy;
        return 0;
    }

    /* Cheap digests before the lock; the conversation fingerprint (a hash
     * of the whole history) only once strategies 1-3 have missed. */
    uint8_t d_id[XV_SESSION_DIGEST_LEN], d_prev[XV_SESSION_DIGEST_LEN],
        d_user[XV_SESSION_DIGEST_LEN];
    const char *prev = NULL, *user = NULL;
    if (given)
        id_digest_of(given, d_id);
    else if (req->type == XV_SESSION_REQ_RESPONSES)
        prev = body_str(req->body, "previous_response_id");
    if (prev)
        xv_session_digest_str(K_RESP, prev, strlen(prev), d_prev);
    if (req->type == XV_SESSION_REQ_CHAT)
        user = body_str(req->body, "user");
    if (user)
        xv_session_digest_str(K_USER, user, strlen(user), d_user);
    if (prev)
        scoped(d_prev, req->scope);
    if (user)
        scoped(d_user, req->scope);

    pthread_mutex_lock(&s->mu);
    uint64_t now = now_ns(s);
    int32_t i = -1;
    int id_known = 0; /* d_id is the digest of the id this request gets */
    if (given) {
        i = sess_lookup(s, K_ID, d_id, now);
        if (i < 0) {
            i = sess_alloc(s, given, now);
            key_bind(s, i, K_ID, d_id);
        }
        id_known = 1;
    } else if (prev && (i = sess_lookup(s, K_RESP, d_prev, now)) >= 0) {
        strategy = XV_SESSION_BY_PREVIOUS_RESPONSE;
    } else if (user && (i = sess_lookup(s, K_USER, d_user, now)) >= 0) {
        strategy = XV_SESSION_BY_USER;
    } else {
        /* Strategies 4 and 5: hash and draw the new id with the lock
         * released; the store may change meanwhile, which only means this
         * request is resolved against the state after the gap. */
        pthread_mutex_unlock(&s->mu);
        struct xv_session_fps fps;
        xv_session_request_fps(req->type, req->body, &fps, req->convo);
        scoped(fps.last, req->scope);
        scoped(fps.asst, req->scope);
        char text[XV_SESSION_ID_LEN + 1];
        xv_uuid_v4(text);
        id_digest_of(text, d_id);
        pthread_mutex_lock(&s->mu);
        now = now_ns(s);
        if ((fps.has_last && (i = sess_lookup(s, K_FP, fps.last, now)) >= 0) ||
            (fps.has_asst && (i = sess_lookup(s, K_FP, fps.asst, now)) >= 0)) {
            strategy = XV_SESSION_BY_FINGERPRINT;
        } else {
            i = sess_alloc(s, text, now);
            /* The id was just drawn (122 random bits): no key holds its
             * digest, so the index is not searched for it (a cache miss a
             * new session, issue 9). */
            key_bind_absent(s, i, K_ID, d_id);
            strategy = XV_SESSION_BY_NEW;
            id_known = 1;
        }
    }
    if (id_known) {
        memcpy(out->id_digest, d_id, sizeof out->id_digest);
        out->has_id_digest = 1;
    }
    if (user)
        key_bind(s, i, K_USER, d_user);
    struct sess *se = &s->sess[i];
    out->turn = ++se->turn;
    touch(s, i, now);
    memcpy(out->id, given ? given : se->id, XV_SESSION_ID_LEN);
    out->id[XV_SESSION_ID_LEN] = '\0';
    out->strategy = strategy;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ------------------------------------------------------------ learning */

int xv_session_store_record_response(struct xv_session_store *s,
                                     const struct xv_session_response *resp)
{
    if (!resp->session_id ||
        (!resp->id_digest && !xv_session_uuid_valid(resp->session_id, strlen(resp->session_id))))
        return XV_E_PARSE;
    if (!s)
        return 0;
    uint8_t d_id[XV_SESSION_DIGEST_LEN], d_resp[XV_SESSION_DIGEST_LEN],
        d_fp[XV_SESSION_DIGEST_LEN];
    if (resp->id_digest)
        memcpy(d_id, resp->id_digest, sizeof d_id); /* resolve's: no second digest */
    else
        id_digest_of(resp->session_id, d_id);
    /* Only a Responses request can name an earlier response (its
     * previous_response_id, SPEC §4 strategy 2), and only a Responses id: a
     * Chat Completions id is never looked up, so it costs no digest and no
     * key (a key a call is a third of what a new chat session binds). */
    int has_resp = resp->type == XV_SESSION_REQ_RESPONSES && resp->response_id &&
                   resp->response_id[0];
    if (has_resp)
        xv_session_digest_str(K_RESP, resp->response_id, strlen(resp->response_id), d_resp);
    int fp_rc = resp->reply ? xv_session_next_fp(resp->type, resp->request, resp->reply,
                                                 resp->convo, d_fp)
                            : XV_E_PARSE;
    if (has_resp)
        scoped(d_resp, resp->scope);
    if (fp_rc == 0)
        scoped(d_fp, resp->scope);

    pthread_mutex_lock(&s->mu);
    uint64_t now = now_ns(s);
    int32_t i = sess_lookup(s, K_ID, d_id, now);
    if (i < 0) {
        /* Dropped since resolve (LRU or expiry): bring it back with its turn. */
        i = sess_alloc(s, resp->session_id, now);
        key_bind(s, i, K_ID, d_id);
        s->sess[i].turn = resp->turn;
    }
    if (has_resp)
        key_bind(s, i, K_RESP, d_resp);
    if (fp_rc == 0)
        key_bind(s, i, K_FP, d_fp);
    const cJSON *calls = xv_json_get(resp->reply, "tool_calls"), *c;
    if (!cJSON_IsArray(calls))
        calls = NULL;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *id = xv_json_get(c, "id");
        const cJSON *fn = xv_json_get(c, "function");
        const cJSON *name = xv_json_get(fn, "name");
        const cJSON *args = xv_json_get(fn, "arguments");
        if (!cJSON_IsString(id) || !id->valuestring[0])
            continue;
        uint8_t d_call[XV_SESSION_DIGEST_LEN];
        xv_session_digest_str('c', id->valuestring, strlen(id->valuestring), d_call);
        const char *a = cJSON_IsString(args) ? args->valuestring : NULL;
        tool_add(s, i, d_call, cJSON_IsString(name) ? name->valuestring : NULL, a,
                 a ? strlen(a) : 0, now);
    }
    touch(s, i, now);
    pthread_mutex_unlock(&s->mu);
    return fp_rc == XV_E_LIMIT || fp_rc == XV_E_NOMEM ? fp_rc : 0;
}

/* ------------------------------------------------------------ tool steps */

/* A tool result message of the request: its call id and content, or 0. */
static int tool_result_of(int type, const cJSON *item, const char **call_id,
                          const cJSON **content)
{
    if (!cJSON_IsObject(item))
        return 0;
    const char *role = body_str(item, "role"), *t = body_str(item, "type");
    if (type == XV_SESSION_REQ_CHAT && role && !strcmp(role, "tool")) {
        *call_id = body_str(item, "tool_call_id");
        *content = xv_json_get(item, "content");
    } else if (type == XV_SESSION_REQ_RESPONSES && t &&
               (!strcmp(t, "function_call_output") || !strcmp(t, "custom_tool_call_output"))) {
        *call_id = body_str(item, "call_id");
        *content = xv_json_get(item, "output");
    } else {
        return 0;
    }
    return *call_id != NULL;
}

/* The name and arguments the request history gives for a call id. */
static void history_call(int type, const cJSON *list, const char *call_id, const char **name,
                         const char **args)
{
    const cJSON *item, *c;
    cJSON_ArrayForEach(item, list) {
        if (type == XV_SESSION_REQ_CHAT) {
            cJSON_ArrayForEach(c, xv_json_get(item, "tool_calls")) {
                const char *id = body_str(c, "id");
                if (id && !strcmp(id, call_id)) {
                    const cJSON *fn = xv_json_get(c, "function");
                    *name = body_str(fn, "name");
                    *args = body_str(fn, "arguments");
                    return;
                }
            }
        } else {
            const char *t = body_str(item, "type"), *id = body_str(item, "call_id");
            if (t && id && !strcmp(id, call_id) &&
                (!strcmp(t, "function_call") || !strcmp(t, "custom_tool_call"))) {
                *name = body_str(item, "name");
                *args = body_str(item, t[0] == 'f' ? "arguments" : "input");
                return;
            }
        }
    }
}

struct matched {
    const char *call_id;       /* borrowed from the request */
    const cJSON *content;      /* borrowed from the request */
    char name[XV_SESSION_TOOL_NAME_MAX + 1];
    char args[XV_SESSION_TOOL_ARGS_MAX];
    size_t args_len;
    uint64_t latency;
};

void xv_session_tool_steps_free(struct xv_session_tool_step *steps, size_t n)
{
    if (!steps)
        return;
    for (size_t i = 0; i < n; i++) {
        free(steps[i].call_id);
        free(steps[i].tool_name);
        free(steps[i].tool_args);
        free(steps[i].tool_result);
    }
    free(steps);
}

static char *dup_n(const char *p, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, p, n);
        r[n] = '\0';
    }
    return r;
}

/* One step's owned strings. Returns 0 or XV_E_NOMEM. */
static int fill_step(struct xv_session_tool_step *st, const struct matched *m, int type,
                     const cJSON *list, size_t result_max)
{
    const char *hname = NULL, *hargs = NULL;
    history_call(type, list, m->call_id, &hname, &hargs);
    st->latency_ns = m->latency;
    st->call_id = strdup(m->call_id);
    st->tool_name = strdup(hname ? hname : m->name);
    if (hargs) {
        st->tool_args_len = strlen(hargs);
        st->tool_args = dup_n(hargs, st->tool_args_len);
    } else {
        st->tool_args_len = m->args_len;
        st->tool_args = dup_n(m->args, m->args_len);
    }
    struct xv_buf b;
    xv_buf_init(&b, SIZE_MAX / 2);
    int rc = result_max ? xv_session_content_text(m->content, &b) : 0;
    size_t n = b.len;
    if (n > result_max) {
        n = result_max;
        while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
            n--;
        st->result_truncated = 1;
    }
    st->tool_result = dup_n(b.data ? b.data : "", n);
    st->tool_result_len = n;
    xv_buf_free(&b);
    if (rc || !st->call_id || !st->tool_name || !st->tool_args || !st->tool_result)
        return XV_E_NOMEM;
    return 0;
}

int xv_session_store_match_tools(struct xv_session_store *s, const char *session_id, int type,
                                 const cJSON *request, size_t result_max,
                                 struct xv_session_tool_step **out, size_t *nout)
{
    return xv_session_store_match_tools_d(s, session_id, NULL, type, request, result_max, out,
                                          nout);
}

int xv_session_store_match_tools_d(struct xv_session_store *s, const char *session_id,
                                   const uint8_t *id_digest, int type, const cJSON *request,
                                   size_t result_max, struct xv_session_tool_step **out,
                                   size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!s || !session_id ||
        (!id_digest && !xv_session_uuid_valid(session_id, strlen(session_id))))
        return 0;
    const char *str;
    const cJSON *list = xv_session_messages_of(type, request, &str), *item, *content;
    const char *call_id;
    size_t m = 0;
    cJSON_ArrayForEach(item, list)
        m += tool_result_of(type, item, &call_id, &content);
    if (m == 0)
        return 0;
    /* At most one match per outstanding call of the session. */
    if (m > XV_SESSION_TOOLS_PER_SESSION)
        m = XV_SESSION_TOOLS_PER_SESSION;
    struct matched *mt = malloc(m * sizeof *mt);
    if (!mt)
        return XV_E_NOMEM;
    uint8_t d_id[XV_SESSION_DIGEST_LEN];
    if (id_digest)
        memcpy(d_id, id_digest, sizeof d_id);
    else
        id_digest_of(session_id, d_id);
    size_t k = 0;

    pthread_mutex_lock(&s->mu);
    uint64_t now = now_ns(s);
    int32_t i = sess_lookup(s, K_ID, d_id, now);
    if (i >= 0 && s->sess[i].ntools) {
        cJSON_ArrayForEach(item, list) {
            if (k == m)
                break;
            if (!tool_result_of(type, item, &call_id, &content))
                continue;
            uint8_t d_call[XV_SESSION_DIGEST_LEN];
            xv_session_digest_str('c', call_id, strlen(call_id), d_call);
            int32_t t;
            for (t = s->sess[i].tools; t >= 0; t = s->tools[t].snext)
                if (memcmp(s->tools[t].call, d_call, XV_SESSION_DIGEST_LEN) == 0)
                    break;
            if (t < 0)
                continue;
            struct tool *tl = &s->tools[t];
            mt[k].call_id = call_id;
            mt[k].content = content;
            memcpy(mt[k].name, tl->name, sizeof mt[k].name);
            memcpy(mt[k].args, tl->args, tl->args_len);
            mt[k].args_len = tl->args_len;
            mt[k].latency = now > tl->issued ? now - tl->issued : 0;
            k++;
            tool_release(s, t);
        }
    }
    pthread_mutex_unlock(&s->mu);

    int rc = 0;
    struct xv_session_tool_step *steps = NULL;
    if (k) {
        steps = calloc(k, sizeof *steps);
        for (size_t j = 0; steps && j < k && rc == 0; j++)
            rc = fill_step(&steps[j], &mt[j], type, list, result_max);
        if (!steps || rc) {
            xv_session_tool_steps_free(steps, k);
            steps = NULL;
            k = 0;
            rc = XV_E_NOMEM;
        }
    }
    free(mt);
    *out = steps;
    *nout = k;
    return rc;
}
