/*
 * jsonr.c — the arena JSON reader of xv_jsonr.h.
 *
 * One pass, no recursion: an explicit stack of the open containers (at most
 * XV_JR_DEPTH). Anything outside the strict grammar makes the pass give up
 * and cJSON parse the whole text instead, so on every text the caller gets
 * cJSON's answer; the pass only ever has to agree with cJSON on strict JSON.
 *
 * Invariant: never reads outside [text, text + len); every node and string
 * lives in t->blocks (or, after a fallback, in cJSON's tree).
 *
 * Thread safety: no shared state but the C locale object, made once.
 */
#include "xv_jsonr.h"
#include "xv_word.h"

#include "xv_common.h"

#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct xv_jr_block {
    struct xv_jr_block *next; /* older block */
    size_t cap, used;         /* bytes of data[] */
    unsigned char data[];     /* 8-aligned: the header is three words */
};

/* A block kept for the next parse of the same tree (SSE events) is no
 * bigger than this; larger ones go back to malloc. */
#define KEEP_MAX ((size_t)64 << 10)
/* A thread's spare blocks (below) are each at most this big, and all
 * threads' together at most SPARE_BUDGET bytes. */
#define SPARE_MAX ((size_t)1 << 20)
#define SPARE_BUDGET ((size_t)16 << 20)
/* Blocks grow by doubling up to this (a larger request gets its own). */
#define BLOCK_MAX ((size_t)1 << 20)

struct ps {
    struct xv_jr_tree *t;
    const unsigned char *p, *e;
    size_t next_cap; /* size of the next block */
};

/* ------------------------------------------------------------ arena */

static void free_list(struct xv_jr_block *b)
{
    while (b) {
        struct xv_jr_block *n = b->next;
        free(b);
        b = n;
    }
}

/* Each thread keeps up to SPARES blocks (each at most SPARE_MAX bytes) from
 * the trees it freed, for the next trees it parses: a call parses its
 * request and its response and holds both trees, and without spares each
 * parse was a malloc and a free (issue 9). A long conversation's request
 * takes a block of four times its size: from malloc each time, that was
 * fresh pages (mmap) faulted in on every call, ~10 us each on a VM —
 * a fifth of the agent's cost for an 80 KiB request. Kept as a list
 * through ->next; freed with the thread (pthread key destructor). */
#define SPARES 2
static _Atomic size_t g_spare_bytes; /* kept by every thread, under SPARE_BUDGET */
static _Atomic uint64_t g_blocks_malloced; /* blocks not taken from a spare (tests) */

uint64_t xv_jr_blocks_malloced(void)
{
    return atomic_load_explicit(&g_blocks_malloced, memory_order_relaxed);
}

static struct {
    pthread_once_t once;
    pthread_key_t key;
    int ok; /* the key exists (else every block goes back to malloc) */
} g_spare XV_CALL_DATA = { .once = PTHREAD_ONCE_INIT };

/* A thread's spares: a list of at most SPARES blocks through ->next. */
struct spares {
    struct xv_jr_block *head;
};

static void spare_destroy(void *p)
{
    struct spares *sp = p;
    for (struct xv_jr_block *b = sp->head; b; b = b->next)
        atomic_fetch_sub(&g_spare_bytes, b->cap);
    free_list(sp->head);
    free(sp);
}

static void spare_key(void)
{
    g_spare.ok = pthread_key_create(&g_spare.key, spare_destroy) == 0;
}

/* The calling thread's spares, made at its first use (create) or NULL. */
static struct spares *my_spares(int create)
{
    pthread_once(&g_spare.once, spare_key);
    if (!g_spare.ok)
        return NULL;
    struct spares *sp = pthread_getspecific(g_spare.key);
    if (!sp && create && (sp = calloc(1, sizeof *sp)) != NULL &&
        pthread_setspecific(g_spare.key, sp) != 0) {
        free(sp);
        sp = NULL;
    }
    return sp;
}

/* A spare block of the calling thread holding at least `cap` bytes. */
static struct xv_jr_block *spare_take(size_t cap)
{
    struct spares *sp = my_spares(0);
    if (!sp)
        return NULL;
    struct xv_jr_block **pp = &sp->head, *b;
    while ((b = *pp) != NULL && b->cap < cap)
        pp = &b->next;
    if (!b)
        return NULL;
    *pp = b->next;
    b->next = NULL;
    atomic_fetch_sub(&g_spare_bytes, b->cap);
    return b;
}

/* Keep b as a spare of sp, or free it: kept while the thread has fewer
 * than SPARES, within the budget; else it takes the place of a smaller
 * spare (a conversation's large request block outlives the small ones). */
static void spare_put(struct spares *sp, struct xv_jr_block *b)
{
    if (sp && b->cap <= SPARE_MAX) {
        int n = 0;
        struct xv_jr_block **small = NULL;
        for (struct xv_jr_block **pp = &sp->head; *pp; pp = &(*pp)->next, n++)
            if (!small || (*pp)->cap < (*small)->cap)
                small = pp;
        if (n >= SPARES && small && (*small)->cap < b->cap) {
            struct xv_jr_block *out = *small;
            *small = out->next;
            atomic_fetch_sub(&g_spare_bytes, out->cap);
            free(out);
            n--;
        }
        if (n < SPARES) {
            if (atomic_fetch_add(&g_spare_bytes, b->cap) + b->cap <= SPARE_BUDGET) {
                b->next = sp->head;
                sp->head = b;
                return;
            }
            atomic_fetch_sub(&g_spare_bytes, b->cap); /* over the budget */
        }
    }
    free(b);
}

/* Free a chain of blocks, keeping what the thread's spares take. */
static void free_blocks(struct xv_jr_block *b)
{
    if (!b)
        return;
    struct spares *sp = my_spares(1);
    while (b) {
        struct xv_jr_block *next = b->next;
        spare_put(sp, b);
        b = next;
    }
}

static void *arena_grow(struct ps *ps, size_t n)
{
    struct xv_jr_block *b = ps->t->blocks;
    size_t cap = ps->next_cap > n ? ps->next_cap : n;
    struct xv_jr_block *nb = b ? NULL : spare_take(cap);
    if (!nb) {
        if (!(nb = malloc(sizeof *nb + cap)))
            return NULL;
        nb->cap = cap;
        atomic_fetch_add_explicit(&g_blocks_malloced, 1, memory_order_relaxed);
    }
    nb->next = b;
    nb->used = n;
    ps->t->blocks = nb;
    if (ps->next_cap < BLOCK_MAX)
        ps->next_cap *= 2;
    return nb->data;
}

/* n bytes, 8-aligned, from the tree's newest block (a new one when full). */
static inline void *arena_alloc(struct ps *ps, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct xv_jr_block *b = ps->t->blocks;
    if (!b || b->cap - b->used < n)
        return arena_grow(ps, n);
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static cJSON *new_node(struct ps *ps)
{
    cJSON *n = arena_alloc(ps, sizeof *n);
    if (n)
        memset(n, 0, sizeof *n);
    return n;
}

void xv_jr_free(struct xv_jr_tree *t)
{
    if (!t)
        return;
    if (t->by_cjson)
        cJSON_Delete(t->root);
    free_blocks(t->blocks);
    t->root = NULL;
    t->blocks = NULL;
    t->by_cjson = 0;
}

void xv_jr_move(struct xv_jr_tree *to, struct xv_jr_tree *from)
{
    if (to == from)
        return;
    xv_jr_free(to);
    *to = *from;
    from->root = NULL;
    from->blocks = NULL;
    from->by_cjson = 0;
}

/* Empty t for a new parse, keeping one small block to parse into. */
static void reuse(struct xv_jr_tree *t)
{
    if (t->by_cjson)
        cJSON_Delete(t->root);
    t->root = NULL;
    t->by_cjson = 0;
    struct xv_jr_block *keep = t->blocks;
    if (keep && keep->cap <= KEEP_MAX) {
        free_blocks(keep->next);
        keep->next = NULL;
        keep->used = 0;
    } else {
        free_blocks(keep);
        keep = NULL;
    }
    t->blocks = keep;
}

/* ------------------------------------------------------------ scalars */

static const unsigned char *ws(const unsigned char *p, const unsigned char *e)
{
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Exact powers of ten as doubles (10^22 is the last one). */
static const double p10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A strict JSON number at ps->p into n; -1 to give up. */
static int number(struct ps *ps, cJSON *n)
{
    const unsigned char *s = ps->p, *p = s, *e = ps->e;
    int neg = 0;
    uint64_t m = 0;   /* the significant digits, while at most 19 */
    int nd = 0;       /* how many (leading zeros not counted) */
    long scale = 0;   /* m * 10^scale is the number */
    if (*p == '-')
        neg = 1, p++;
    if (p >= e || *p < '0' || *p > '9')
        return -1;
    if (*p == '0') {
        p++;
    } else {
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if (nd < 19)
                m = m * 10 + (uint64_t)(*p - '0'), nd++;
            else
                scale++, nd++;
    }
    if (p < e && *p == '.') {
        if (++p >= e || *p < '0' || *p > '9')
            return -1;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            if (m == 0 && *p == '0') {
                scale--; /* a leading zero of the fraction */
            } else if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0'), nd++;
                scale--;
            } else {
                nd++;
            }
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        long ev = 0;
        if (++p < e && (*p == '+' || *p == '-'))
            eneg = *p == '-', p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
        scale += eneg ? -ev : ev;
    }
    size_t len = (size_t)(p - s);
    /* cJSON hands strtod every byte of [0-9+-eE.] (at most 63): when one
     * follows, its number is not this one ("08" at the top level is 8). */
    if (len > 63 || (p < e && *p && strchr("0123456789+-eE.", *p) != NULL))
        return -1;
    double d;
    if (nd <= 15 && scale >= -22 && scale <= 22) {
        /* m < 2^53 and 10^|scale| are exact doubles, so one correctly
         * rounded multiply or divide is the correctly rounded value —
         * strtod's (glibc rounds correctly). */
        d = scale < 0 ? (double)m / p10[-scale] : (double)m * p10[scale];
        if (neg)
            d = -d;
    } else {
        pthread_once(&c_locale_once, make_c_locale);
        if (c_locale == (locale_t)0)
            return -1;
        char buf[64], *after;
        memcpy(buf, s, len);
        buf[len] = '\0';
        d = strtod_l(buf, &after, c_locale);
        if (after != buf + len)
            return -1;
    }
    n->type = cJSON_Number;
    n->valuedouble = d;
    if (d >= INT_MAX)
        n->valueint = INT_MAX;
    else if (d <= (double)INT_MIN)
        n->valueint = INT_MIN;
    else
        n->valueint = (int)d;
    ps->p = p;
    return 0;
}

/* \uXXXX (a surrogate pair: two) at p, before q, as UTF-8 at *o, the way
 * cJSON decodes it; the bytes consumed, 0 when cJSON would fail. */
static size_t utf16_escape(const unsigned char *p, const unsigned char *q, unsigned char **o)
{
    uint32_t cp, lo;
    if (q - p < 6 || xv_hex4((const char *)p + 2, &cp) != 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return 0;
    size_t used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (q - p < 12 || p[6] != '\\' || p[7] != 'u' || xv_hex4((const char *)p + 8, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        used = 12;
    }
    unsigned char *d = *o;
    if (cp < 0x80) {
        *d++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *d++ = (unsigned char)(0xC0 | (cp >> 6));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (unsigned char)(0xE0 | (cp >> 12));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (unsigned char)(0xF0 | (cp >> 18));
        *d++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *o = d;
    return used;
}

/* A string at ps->p (the opening quote), decoded into the arena; NULL to
 * give up (a raw control byte, a bad escape, no closing quote, OOM). */
static char *string(struct ps *ps)
{
    const unsigned char *p = ps->p + 1, *q = p, *e = ps->e;
    int esc = 0;
    /* Straight past plain bytes (none of '"', '\\' or below 0x20) to the
     * first other one, which the byte loop below looks at. */
    q += xv_json_plain_len((const char *)q, (size_t)(e - q), 0);
    while (q < e && *q != '"') {
        if (*q == '\\') {
            esc = 1;
            if (++q >= e)
                return NULL;
        } else if (*q < 0x20) {
            return NULL;
        }
        q++;
    }
    if (q >= e)
        return NULL;
    unsigned char *out = arena_alloc(ps, (size_t)(q - p) + 1), *d = out;
    if (!out)
        return NULL;
    if (!esc) {
        memcpy(d, p, (size_t)(q - p));
        d += q - p;
    } else {
        while (p < q) {
            if (*p != '\\') {
                *d++ = *p++;
                continue;
            }
            size_t used = 2;
            switch (p[1]) {
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case '"': case '\\': case '/': *d++ = p[1]; break;
            case 'u':
                if ((used = utf16_escape(p, q, &d)) == 0)
                    return NULL;
                break;
            default: return NULL;
            }
            p += used;
        }
    }
    *d = '\0';
    ps->p = q + 1;
    return (char *)out;
}

/* ------------------------------------------------------------ structure */

/* A member name and its colon at ps->p (after '{' or ','); -1 to give up. */
static int member_name(struct ps *ps, char **key)
{
    ps->p = ws(ps->p, ps->e);
    if (ps->p >= ps->e || *ps->p != '"' || !(*key = string(ps)))
        return -1;
    ps->p = ws(ps->p, ps->e);
    if (ps->p >= ps->e || *ps->p != ':')
        return -1;
    ps->p++;
    return 0;
}

/* A scalar at ps->p into n; -1 to give up. */
static int scalar(struct ps *ps, cJSON *n)
{
    const unsigned char *p = ps->p;
    size_t left = (size_t)(ps->e - p);
    switch (*p) {
    case '"':
        n->type = cJSON_String;
        return (n->valuestring = string(ps)) ? 0 : -1;
    case 'n':
        if (left < 4 || memcmp(p, "null", 4) != 0)
            return -1;
        n->type = cJSON_NULL;
        ps->p += 4;
        return 0;
    case 'f':
        if (left < 5 || memcmp(p, "false", 5) != 0)
            return -1;
        n->type = cJSON_False;
        ps->p += 5;
        return 0;
    case 't':
        if (left < 4 || memcmp(p, "true", 4) != 0)
            return -1;
        n->type = cJSON_True;
        n->valueint = 1;
        ps->p += 4;
        return 0;
    default:
        return number(ps, n);
    }
}

/* The whole value; NULL to give up. */
static cJSON *value(struct ps *ps)
{
    cJSON *open[XV_JR_DEPTH], *last[XV_JR_DEPTH];
    int d = -1;
    cJSON *root = NULL;
    char *key = NULL;
    for (;;) {
        /* A value is due: the root, an element, or a member's value. */
        ps->p = ws(ps->p, ps->e);
        if (ps->p >= ps->e)
            return NULL;
        cJSON *n = new_node(ps);
        if (!n)
            return NULL;
        n->string = key;
        key = NULL;
        if (d < 0) {
            root = n;
        } else {
            if (last[d]) {
                last[d]->next = n;
                n->prev = last[d];
            } else {
                open[d]->child = n;
            }
            last[d] = n;
            open[d]->child->prev = n; /* cJSON: the head's prev is the tail */
        }
        unsigned char ch = *ps->p;
        if (ch == '{' || ch == '[') {
            if (d + 1 >= XV_JR_DEPTH)
                return NULL;
            n->type = ch == '{' ? cJSON_Object : cJSON_Array;
            open[++d] = n;
            last[d] = NULL;
            ps->p = ws(ps->p + 1, ps->e);
            if (ps->p >= ps->e)
                return NULL;
            if (*ps->p != (ch == '{' ? '}' : ']')) {
                if (ch == '{' && member_name(ps, &key) != 0)
                    return NULL;
                continue;
            }
            ps->p++;
            d--; /* empty */
        } else if (scalar(ps, n) != 0) {
            return NULL;
        }
        /* A value is complete: close containers until one takes more. */
        for (;;) {
            if (d < 0)
                return root;
            ps->p = ws(ps->p, ps->e);
            if (ps->p >= ps->e)
                return NULL;
            int obj = open[d]->type == cJSON_Object;
            if (*ps->p == ',') {
                ps->p++;
                if (obj && member_name(ps, &key) != 0)
                    return NULL;
                break;
            }
            if (*ps->p != (obj ? '}' : ']'))
                return NULL;
            ps->p++;
            d--;
        }
    }
}

cJSON *xv_jr_parse(struct xv_jr_tree *t, const char *text, size_t len, const char **end)
{
    reuse(t);
    if (text && len > 0) {
        struct ps ps = { t, (const unsigned char *)text, (const unsigned char *)text + len, 0 };
        size_t first = len < (BLOCK_MAX - 512) / 4 ? 4 * len + 512 : BLOCK_MAX;
        /* a power of two: the spare a conversation's last request left
         * also holds its next, a little longer, one */
        if (first > KEEP_MAX && first < BLOCK_MAX) {
            size_t p2 = KEEP_MAX;
            while (p2 < first)
                p2 *= 2;
            first = p2;
        }
        ps.next_cap = t->blocks ? (t->blocks->cap < first ? first : t->blocks->cap) : first;
        if (t->blocks && t->blocks->cap < first) {
            /* too small for this text: start from a right-sized block */
            free_blocks(t->blocks);
            t->blocks = NULL;
        }
        cJSON *root = value(&ps);
        if (root)
            return t->root = root;
        reuse(t); /* not ours: keep nothing of it */
    }
    const char *e = NULL;
    t->root = cJSON_ParseWithLengthOpts(text, len, &e, 0);
    t->by_cjson = t->root != NULL;
    if (end)
        *end = e;
    return t->root;
}

/* Member name a equals name b: the first two bytes here (names that share
 * a first byte are common: model, messages, max_tokens), the rest by
 * strcmp. */
static inline int name_eq(const char *a, const char *b)
{
    return a[0] == b[0] && (!b[0] || (a[1] == b[1] && (!b[1] || strcmp(a + 2, b + 2) == 0)));
}

cJSON *xv_json_get(const cJSON *o, const char *name)
{
    if (!o || !name)
        return NULL;
    for (cJSON *c = o->child; c && c->string; c = c->next)
        if (name_eq(c->string, name))
            return c;
    return NULL;
}

void xv_json_pick(const cJSON *o, const char *const *names, size_t n, const cJSON **out)
{
    size_t left = n;
    for (size_t j = 0; j < n; j++)
        out[j] = NULL;
    if (!o)
        return;
    for (const cJSON *c = o->child; c && c->string && left; c = c->next)
        for (size_t j = 0; j < n; j++)
            if (!out[j] && name_eq(c->string, names[j])) {
                out[j] = c;
                left--;
                break;
            }
}
