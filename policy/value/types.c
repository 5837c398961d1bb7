/*
 * value/types.c — construction, destruction, ordering and arithmetic of Rego values
 * (the text side — JSON and Rego printing/parsing — lives in value_text.c).
 *
 * Invariant: numbers are normalised after every operation (int64 if it fits,
 * else mpz for integers, else a canonical mpq with den > 1), so two equal
 * numbers always have the same kind and compare cheaply.
 * Thread safety: see xv_value.h (non-atomic counts, frozen values shared).
 */
#include "value/buf.h"
#include "value/pool.h"
#include "value/types.h"
#include "value/xv_value.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct xv_value g_null = {XV_REF_FROZEN, XV_T_NULL, 0, 0, 0, {0}};
static struct xv_value g_false = {XV_REF_FROZEN, XV_T_BOOL, 0, 0, 0, {.b = 0}};
static struct xv_value g_true = {XV_REF_FROZEN, XV_T_BOOL, 0, 0, 0, {.b = 1}};

struct xv_value *xv_val_null(void) { return &g_null; }
struct xv_value *xv_val_bool(int b) { return b ? &g_true : &g_false; }

/* Every value starts here: refcount 1, the type, zeroed payload (and
 * `extra` bytes after the struct for inline string data). */
struct xv_value *xv_val_alloc(enum xv_type t, size_t extra)
{
    /* From the thread's pool and a zeroed header, not calloc (issue 9: see
     * value/pool.h); the caller writes the extra bytes. */
    if (extra > SIZE_MAX - sizeof(struct xv_value))
        return NULL;
    struct xv_value *v = xv_pool_alloc(sizeof *v + extra);
    if (!v)
        return NULL;
    memset(v, 0, sizeof *v);
    v->refcnt = 1;
    v->type = (uint8_t)t;
    return v;
}

/* The bytes xv_val_alloc took for v (strings carry their text after it). */
static size_t val_bytes(const struct xv_value *v)
{
    return sizeof *v + (v->type == XV_T_STRING ? v->u.str.len + 1 : 0);
}

/* Release a value's own block (not its payload). */
void xv_val_release(struct xv_value *v)
{
    if (v)
        xv_pool_free(v, val_bytes(v));
}

/* Called by xv_val_decref when the count reaches zero: releases the payload
 * and drops one reference to each child (never called on frozen values,
 * whose count never moves). */
void xv_val_free_(struct xv_value *v)
{
    size_t i;
    switch (v->type) {
    case XV_T_NUMBER:
        if (v->sub == XV_NUM_BIG && v->u.num.z) {
            mpz_clear(*v->u.num.z);
            free(v->u.num.z);
        } else if (v->sub == XV_NUM_RAT && v->u.num.q) {
            mpq_clear(*v->u.num.q);
            free(v->u.num.q);
        }
        free(v->u.num.text);
        break;
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            xv_val_decref(v->u.arr.items[i]);
        xv_pool_free(v->u.arr.items, v->u.arr.cap * sizeof *v->u.arr.items);
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++) {
            xv_val_decref(v->u.obj.keys[i]);
            xv_val_decref(v->u.obj.vals[i]);
        }
        /* and vals, in the same block (obj_reserve) */
        xv_pool_free(v->u.obj.keys, 2 * v->u.obj.cap * sizeof *v->u.obj.keys);
        break;
    default:
        break;
    }
    xv_val_release(v);
}

/* ---- freezing ---- */

static int frozen_push(struct xv_frozen_list *l, struct xv_value *v)
{
    if (l->len == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct xv_value **p = realloc(l->v, nc * sizeof *p);
        if (!p)
            return XV_E_NOMEM;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->len++] = v;
    return 0;
}

/* Freeze v and everything under it: the count becomes XV_REF_FROZEN, so
 * threads may share it without atomics. The string caches (hash, code-point
 * count) are filled first because nothing may write to a value once it is
 * shared. Each node goes into list, which owns it from then on. */
int xv_val_freeze(struct xv_value *v, struct xv_frozen_list *list)
{
    if (!v || v->refcnt == XV_REF_FROZEN)
        return 0;
    if (v->type == XV_T_STRING)
        xv_val_hash(v), xv_val_string_cp_count(v); /* fill caches: no writes after sharing */
    v->refcnt = XV_REF_FROZEN;
    if (list && frozen_push(list, v))
        return XV_E_NOMEM;
    size_t i;
    switch (v->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            if (xv_val_freeze(v->u.arr.items[i], list))
                return XV_E_NOMEM;
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++)
            if (xv_val_freeze(v->u.obj.keys[i], list) || xv_val_freeze(v->u.obj.vals[i], list))
                return XV_E_NOMEM;
        break;
    default:
        break;
    }
    return 0;
}

/* Free every node of list. Children are nodes of the list too, so each
 * node's payload is freed without touching its children (no double free). */
void xv_val_free_frozen(struct xv_frozen_list *list)
{
    /* Children are in the list too, so free each node shallowly. */
    for (size_t k = 0; k < list->len; k++) {
        struct xv_value *v = list->v[k];
        switch (v->type) {
        case XV_T_ARRAY:
        case XV_T_SET:
            free(v->u.arr.items);
            break;
        case XV_T_OBJECT:
            free(v->u.obj.keys); /* and vals (obj_reserve) */
            break;
        case XV_T_NUMBER:
            if (v->sub == XV_NUM_BIG) {
                mpz_clear(*v->u.num.z);
                free(v->u.num.z);
            } else if (v->sub == XV_NUM_RAT) {
                mpq_clear(*v->u.num.q);
                free(v->u.num.q);
            }
            free(v->u.num.text);
            break;
        default:
            break;
        }
        free(v);
    }
    free(list->v);
    list->v = NULL;
    list->len = list->cap = 0;
}

/* ---- strings ---- */

struct xv_value *xv_val_string(const char *s, size_t len)
{
    struct xv_value *v = xv_val_alloc(XV_T_STRING, len + 1);
    if (!v)
        return NULL;
    v->u.str.s = (char *)(v + 1);
    if (len)
        memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = 0;
    v->u.str.len = len;
    v->u.str.ncp = -1;
    return v;
}

struct xv_value *xv_val_cstring(const char *s) { return xv_val_string(s, strlen(s)); }

/* printf into a new string: a stack buffer first, the heap only for a
 * longer result. */
struct xv_value *xv_val_string_fmt(const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < sizeof small)
        return xv_val_string(small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    struct xv_value *v = xv_val_string(big, (size_t)n);
    free(big);
    return v;
}

/* Code points, cached on a mutable string (ncp < 0 means not counted yet);
 * frozen strings had theirs filled at freeze time. */
size_t xv_val_string_cp_count(struct xv_value *v)
{
    if (v->u.str.ncp >= 0)
        return (size_t)v->u.str.ncp;
    size_t n = xv_val_utf8_count(v->u.str.s, v->u.str.len);
    if (v->refcnt != XV_REF_FROZEN)
        v->u.str.ncp = (int64_t)n;
    return n;
}

/* ---- containers ---- */

/* Capacity for `need` entries: doubling from cap (4 at first). */
static size_t grow_cap(size_t cap, size_t need)
{
    size_t nc = cap ? cap * 2 : 4;
    while (nc < need)
        nc *= 2;
    return nc;
}

/* Room for `need` items (doubling), so pushes are amortised O(1). */
static int arr_reserve(struct xv_value *a, size_t need)
{
    if (need <= a->u.arr.cap)
        return 0;
    size_t nc = grow_cap(a->u.arr.cap, need);
    if (nc > SIZE_MAX / sizeof(struct xv_value *))
        return XV_E_NOMEM;
    struct xv_value **p = xv_pool_alloc(nc * sizeof *p);
    if (!p)
        return XV_E_NOMEM;
    if (a->u.arr.len)
        memcpy(p, a->u.arr.items, a->u.arr.len * sizeof *p);
    xv_pool_free(a->u.arr.items, a->u.arr.cap * sizeof *p);
    a->u.arr.items = p;
    a->u.arr.cap = nc;
    return 0;
}

/* An empty array with room for cap items. */
struct xv_value *xv_val_array_new(size_t cap)
{
    struct xv_value *v = xv_val_alloc(XV_T_ARRAY, 0);
    if (v && cap && arr_reserve(v, cap)) {
        xv_val_release(v);
        return NULL;
    }
    return v;
}

/* Append a new reference to item; the cached hash is stale from now on. */
int xv_val_array_push(struct xv_value *a, struct xv_value *item)
{
    if (arr_reserve(a, a->u.arr.len + 1))
        return XV_E_NOMEM;
    a->u.arr.items[a->u.arr.len++] = xv_val_incref(item);
    a->hash = 0;
    return 0;
}

/* A set is an array kept sorted and duplicate-free (OPA's order). */
struct xv_value *xv_val_set_new(size_t cap)
{
    struct xv_value *v = xv_val_array_new(cap);
    if (v)
        v->type = XV_T_SET;
    return v;
}

/* Where a string is among sorted values (an object's keys, a set's items)
 * without building a value: the order of xv_val_compare (type first, then
 * bytes, then length), probed in place, the first byte deciding most
 * probes without a call. Its index, or -(the index it would be inserted
 * at) - 1. */
static inline long str_pos(struct xv_value *const *items, size_t n, const char *key, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct xv_value *k = items[mid];
        int c;
        if (k->type != XV_T_STRING) {
            c = k->type < XV_T_STRING ? -1 : 1;
        } else if (len && k->u.str.len && k->u.str.s[0] != key[0]) {
            c = (unsigned char)k->u.str.s[0] < (unsigned char)key[0] ? -1 : 1;
        } else {
            size_t m = k->u.str.len < len ? k->u.str.len : len;
            c = memcmp(k->u.str.s, key, m);
            if (c == 0)
                c = k->u.str.len < len ? -1 : k->u.str.len > len;
        }
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Binary search in a sorted vector; returns index if found, else -(ins+1). */
static long bsearch_vals(struct xv_value *const *items, size_t n, const struct xv_value *x)
{
    if (x->type == XV_T_STRING)
        return str_pos(items, n, x->u.str.s, x->u.str.len);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = xv_val_compare(items[mid], x);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Insert item in order unless present (binary search; O(n) move). */
int xv_val_set_add(struct xv_value *s, struct xv_value *item)
{
    size_t n = s->u.arr.len;
    long pos;
    /* Appending in order is the common case (building from sorted input). */
    if (n == 0 || xv_val_compare(s->u.arr.items[n - 1], item) < 0)
        pos = -(long)n - 1;
    else
        pos = bsearch_vals(s->u.arr.items, n, item);
    if (pos >= 0)
        return 0;
    size_t at = (size_t)(-pos - 1);
    if (arr_reserve(s, n + 1))
        return XV_E_NOMEM;
    memmove(s->u.arr.items + at + 1, s->u.arr.items + at, (n - at) * sizeof(struct xv_value *));
    s->u.arr.items[at] = xv_val_incref(item);
    s->u.arr.len++;
    s->hash = 0;
    return 0;
}

long xv_val_set_find(const struct xv_value *s, const struct xv_value *item)
{
    long p = bsearch_vals(s->u.arr.items, s->u.arr.len, item);
    return p >= 0 ? p : -1;
}

int xv_val_set_contains(const struct xv_value *s, const struct xv_value *item)
{
    return xv_val_set_find(s, item) >= 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    return xv_val_compare(*(struct xv_value *const *)a, *(struct xv_value *const *)b);
}

/* Sort a copy of arr's items and drop duplicates: O(n log n) instead of n
 * insertions. */
struct xv_value *xv_val_set_from_array(const struct xv_value *arr)
{
    size_t n = arr->u.arr.len;
    struct xv_value *s = xv_val_set_new(n);
    if (!s)
        return NULL;
    if (n == 0)
        return s;
    memcpy(s->u.arr.items, arr->u.arr.items, n * sizeof(struct xv_value *));
    qsort(s->u.arr.items, n, sizeof(struct xv_value *), cmp_ptr);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && xv_val_compare(s->u.arr.items[w - 1], s->u.arr.items[i]) == 0)
            continue;
        s->u.arr.items[w++] = xv_val_incref(s->u.arr.items[i]);
    }
    s->u.arr.len = w;
    return s;
}

/* Room for `need` key/value pairs in both parallel vectors. They share one
 * block, keys first and the values cap slots further (one allocation and
 * one free per object instead of two); u.obj.keys owns it. */
static int obj_reserve(struct xv_value *o, size_t need)
{
    if (need <= o->u.obj.cap)
        return 0;
    size_t nc = grow_cap(o->u.obj.cap, need);
    if (nc > SIZE_MAX / (2 * sizeof(struct xv_value *)))
        return XV_E_NOMEM;
    struct xv_value **blk = xv_pool_alloc(2 * nc * sizeof *blk);
    if (!blk)
        return XV_E_NOMEM;
    if (o->u.obj.len) {
        memcpy(blk, o->u.obj.keys, o->u.obj.len * sizeof *blk);
        memcpy(blk + nc, o->u.obj.vals, o->u.obj.len * sizeof *blk);
    }
    xv_pool_free(o->u.obj.keys, 2 * o->u.obj.cap * sizeof *blk);
    o->u.obj.keys = blk;
    o->u.obj.vals = blk + nc;
    o->u.obj.cap = nc;
    return 0;
}

/* An empty object with room for cap pairs. */
struct xv_value *xv_val_object_new(size_t cap)
{
    struct xv_value *v = xv_val_alloc(XV_T_OBJECT, 0);
    if (v && cap && obj_reserve(v, cap)) {
        xv_val_free_(v);
        return NULL;
    }
    return v;
}

/* Set key to val, keeping keys sorted: replace in place if present, else
 * insert (appending when the key sorts last, the common case when
 * building from sorted input; a string key, nearly every one, is placed
 * by str_pos's probes, which are cheaper than that one general compare). */
int xv_val_object_set(struct xv_value *o, struct xv_value *key, struct xv_value *val)
{
    size_t n = o->u.obj.len;
    long pos;
    if (n == 0 || (key->type != XV_T_STRING && xv_val_compare(o->u.obj.keys[n - 1], key) < 0))
        pos = -(long)n - 1;
    else
        pos = bsearch_vals(o->u.obj.keys, n, key);
    o->hash = 0;
    if (pos >= 0) {
        xv_val_incref(val);
        xv_val_decref(o->u.obj.vals[pos]);
        o->u.obj.vals[pos] = val;
        return 0;
    }
    size_t at = (size_t)(-pos - 1);
    if (obj_reserve(o, n + 1))
        return XV_E_NOMEM;
    memmove(o->u.obj.keys + at + 1, o->u.obj.keys + at, (n - at) * sizeof(struct xv_value *));
    memmove(o->u.obj.vals + at + 1, o->u.obj.vals + at, (n - at) * sizeof(struct xv_value *));
    o->u.obj.keys[at] = xv_val_incref(key);
    o->u.obj.vals[at] = xv_val_incref(val);
    o->u.obj.len++;
    return 0;
}

/* Interned keys. The agent sets the same short keys on every call ("role",
 * "content", header names, ...): each distinct one is one frozen string,
 * shared by every object that uses it, instead of an allocation per set
 * and a free per object (issue 9). Bounded: KEY_SLOTS slots, keys up to
 * KEY_MAX bytes, KEY_PROBES probes; a key that finds no slot is allocated
 * as before. Lock-free: a slot is published once (CAS, release) with its
 * hash and code-point count filled, and never changes or is freed. */
#define KEY_SLOTS 512
#define KEY_MAX 32
#define KEY_PROBES 4
static _Atomic(struct xv_value *) g_keys[KEY_SLOTS];

/* The interned string for key[0..len), or NULL (not internable, no slot). */
static struct xv_value *interned_key(const char *key, size_t len)
{
    if (len > KEY_MAX)
        return NULL;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    for (unsigned p = 0; p < KEY_PROBES; p++) {
        _Atomic(struct xv_value *) *slot = &g_keys[(h + p) & (KEY_SLOTS - 1)];
        struct xv_value *v = atomic_load_explicit(slot, memory_order_acquire);
        if (!v) {
            struct xv_value *nv = xv_val_string(key, len);
            if (!nv)
                return NULL;
            xv_val_freeze(nv, NULL); /* caches filled before anyone sees it */
            if (atomic_compare_exchange_strong_explicit(slot, &v, nv, memory_order_acq_rel,
                                                        memory_order_acquire))
                return nv;
            nv->refcnt = 1; /* never published: free it as a private value */
            xv_val_decref(nv);
        }
        if (v->u.str.len == len && memcmp(v->u.str.s, key, len) == 0)
            return v;
    }
    return NULL;
}

struct xv_value *xv_val_key(const char *key)
{
    return interned_key(key, strlen(key));
}

/* xv_val_object_set with a C-string key. */
int xv_val_object_set_str(struct xv_value *o, const char *key, struct xv_value *val)
{
    size_t len = strlen(key);
    struct xv_value *k = interned_key(key, len);
    if (k)
        return xv_val_object_set(o, k, val);
    k = xv_val_string(key, len);
    if (!k)
        return XV_E_NOMEM;
    int rc = xv_val_object_set(o, k, val);
    xv_val_decref(k);
    return rc;
}

long xv_val_object_find(const struct xv_value *o, const struct xv_value *key)
{
    long p = bsearch_vals(o->u.obj.keys, o->u.obj.len, key);
    return p >= 0 ? p : -1;
}

long xv_val_object_find_str(const struct xv_value *o, const char *key, size_t len)
{
    long p = str_pos(o->u.obj.keys, o->u.obj.len, key, len);
    return p >= 0 ? p : -1;
}

/* A shallow copy of a container (children shared by reference), so the
 * caller may change the copy's own slots; scalars are immutable and
 * simply shared. */
struct xv_value *xv_val_copy(const struct xv_value *v)
{
    size_t i;
    struct xv_value *c;
    switch (v->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
        c = xv_val_array_new(v->u.arr.len);
        if (!c)
            return NULL;
        c->type = v->type;
        for (i = 0; i < v->u.arr.len; i++)
            c->u.arr.items[i] = xv_val_incref(v->u.arr.items[i]);
        c->u.arr.len = v->u.arr.len;
        return c;
    case XV_T_OBJECT:
        c = xv_val_object_new(v->u.obj.len);
        if (!c)
            return NULL;
        for (i = 0; i < v->u.obj.len; i++) {
            c->u.obj.keys[i] = xv_val_incref(v->u.obj.keys[i]);
            c->u.obj.vals[i] = xv_val_incref(v->u.obj.vals[i]);
        }
        c->u.obj.len = v->u.obj.len;
        return c;
    default:
        return xv_val_incref((struct xv_value *)v);
    }
}

/* ---- ordering ---- */

int xv_val_compare(const struct xv_value *a, const struct xv_value *b)
{
    if (a == b)
        return 0;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    size_t i, n;
    int c;
    switch (a->type) {
    case XV_T_NULL:
        return 0;
    case XV_T_BOOL:
        return a->u.b - b->u.b;
    case XV_T_NUMBER:
        return xv_val_number_cmp(a, b);
    case XV_T_STRING:
        n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        c = memcmp(a->u.str.s, b->u.str.s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
    case XV_T_ARRAY:
    case XV_T_SET:
        n = a->u.arr.len < b->u.arr.len ? a->u.arr.len : b->u.arr.len;
        for (i = 0; i < n; i++)
            if ((c = xv_val_compare(a->u.arr.items[i], b->u.arr.items[i])) != 0)
                return c;
        return a->u.arr.len < b->u.arr.len ? -1 : a->u.arr.len > b->u.arr.len;
    case XV_T_OBJECT:
        n = a->u.obj.len < b->u.obj.len ? a->u.obj.len : b->u.obj.len;
        for (i = 0; i < n; i++) {
            if ((c = xv_val_compare(a->u.obj.keys[i], b->u.obj.keys[i])) != 0)
                return c;
            if ((c = xv_val_compare(a->u.obj.vals[i], b->u.obj.vals[i])) != 0)
                return c;
        }
        return a->u.obj.len < b->u.obj.len ? -1 : a->u.obj.len > b->u.obj.len;
    }
    return 0;
}

/* Equality with two shortcuts before the full comparison: different
 * lengths or different cached hashes of strings. */
int xv_val_equal(const struct xv_value *a, const struct xv_value *b)
{
    if (a == b)
        return 1;
    if (a->type != b->type)
        return 0;
    if (a->type == XV_T_STRING &&
        (a->u.str.len != b->u.str.len || (a->hash && b->hash && a->hash != b->hash)))
        return 0;
    return xv_val_compare(a, b) == 0;
}

/* FNV-1a over n bytes, continuing from h. */
static uint32_t fnv(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* A structural hash, equal for values that compare equal (numbers hash
 * their canonical form); cached on mutable values, computed at freeze time
 * for frozen ones. */
uint32_t xv_val_hash(struct xv_value *v)
{
    if (v->hash)
        return v->hash;
    uint32_t h = 2166136261u ^ v->type;
    size_t i;
    switch (v->type) {
    case XV_T_BOOL:
        h = fnv(&v->u.b, sizeof v->u.b, h);
        break;
    case XV_T_NUMBER: {
        /* Hash the canonical decimal so equal numbers hash alike. */
        if (v->sub == XV_NUM_INT) {
            h = fnv(&v->u.num.i, sizeof v->u.num.i, h);
        } else {
            char *t = v->sub == XV_NUM_BIG ? mpz_get_str(NULL, 10, *v->u.num.z)
                                           : mpq_get_str(NULL, 10, *v->u.num.q);
            if (t) {
                h = fnv(t, strlen(t), h);
                free(t);
            }
        }
        break;
    }
    case XV_T_STRING:
        h = fnv(v->u.str.s, v->u.str.len, h);
        break;
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            h = (h ^ xv_val_hash(v->u.arr.items[i])) * 16777619u;
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++) {
            h = (h ^ xv_val_hash(v->u.obj.keys[i])) * 16777619u;
            h = (h ^ xv_val_hash(v->u.obj.vals[i])) * 16777619u;
        }
        break;
    default:
        break;
    }
    if (h == 0)
        h = 1;
    if (v->refcnt != XV_REF_FROZEN)
        v->hash = h;
    return h;
}

/* OPA's type names (type_name builtin, error texts). */
const char *xv_val_type_name(const struct xv_value *v)
{
    static const char *const names[] = {"null", "boolean", "number", "string",
                                        "array", "object", "set"};
    return v && v->type <= XV_T_SET ? names[v->type] : "undefined";
}
