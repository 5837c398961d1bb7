/*
 * eval/topdown.c — top-down evaluation of compiled Rego with backtracking.
 *
 * Evaluation is continuation-passing: every evaluator takes a continuation
 * `k` and calls it once per solution; a binding lives in a frame slot only
 * for the duration of the call to k (it is undone on return), so
 * backtracking needs no trail. Continuations return R_OK to ask for more
 * solutions, R_STOP to end the enumeration (used by `not`, `every`), or
 * R_ERR once ev->err is set.
 *
 * Invariants: values passed to a continuation are borrowed for the duration
 * of the call; frames hold borrowed pointers; everything cached in the
 * evaluation (rule values) holds its own reference. A step budget bounds
 * the work of one evaluation.
 * Thread safety: one struct ev per evaluation; the compiled policy is only
 * read, so evaluations may run concurrently on different threads. The
 * lookup hints an evaluation writes are its thread's (eval/with.c).
 */
#include "eval/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int eval_data(struct ev *ev, V *env, struct node *n, V base, struct term *t, int i,
                     struct k *k);

/* Record the evaluation's first error (later ones are dropped: the first
 * is the one OPA reports) and return R_ERR so callers unwind. */
int xv_eval_raise(struct ev *ev, struct xv_loc loc, const char *code, const char *fmt, ...)
{
    if (ev->failed)
        return R_ERR;
    ev->failed = 1;
    ev->err->loc = loc;
    snprintf(ev->err->code, sizeof ev->err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->err->msg, sizeof ev->err->msg, fmt, ap);
    va_end(ap);
    return R_ERR;
}

int xv_eval_oom(struct ev *ev)
{
    struct xv_loc l = {0};
    return xv_eval_raise(ev, l, "eval_internal_error", "out of memory");
}

/* ---- small helpers ---- */

V xv_eval_lookup(V coll, V key)
{
    if (!coll)
        return NULL;
    switch (coll->type) {
    case XV_T_OBJECT: {
        long i = key->type == XV_T_STRING
                     ? xv_val_object_find_str(coll, XV_STR(key), XV_STRLEN(key))
                     : xv_val_object_find(coll, key);
        return i < 0 ? NULL : XV_OBJ_VAL(coll, i);
    }
    case XV_T_ARRAY: {
        int64_t idx;
        if (key->type != XV_T_NUMBER || xv_val_number_get_int64(key, &idx) || idx < 0 ||
            (size_t)idx >= XV_ARR_LEN(coll))
            return NULL;
        return XV_ARR_ITEM(coll, idx);
    }
    case XV_T_SET: {
        long i = xv_val_set_find(coll, key);
        return i < 0 ? NULL : XV_SET_ITEM(coll, i);
    }
    default:
        return NULL;
    }
}

/* xv_eval_lookup_at's miss: the general lookup, noting where a string key
 * was found for the next time. */
V xv_eval_lookup_slow(struct ev *ev, V coll, const struct term *key)
{
    V kv = key->val;
    if (!coll || coll->type != XV_T_OBJECT || kv->type != XV_T_STRING)
        return xv_eval_lookup(coll, kv);
    long i = xv_val_object_find_str(coll, XV_STR(kv), XV_STRLEN(kv));
    if (i < 0)
        return NULL;
    if (i <= UINT16_MAX)
        ev->hint[key->site % XV_EVAL_HINTS] = (uint16_t)i;
    return XV_OBJ_VAL(coll, i);
}

static V lookup_str(V coll, const char *s, size_t n)
{
    if (!coll || coll->type != XV_T_OBJECT)
        return NULL;
    long i = xv_val_object_find_str(coll, s, n);
    return i < 0 ? NULL : XV_OBJ_VAL(coll, i);
}

/* Whether t still has an unbound variable (in env) anywhere a match could
 * bind it: such a term is matched against a value, not evaluated. */
static int is_pattern(V *env, struct term *t)
{
    switch (t->kind) {
    case T_VAR:
        return t->slot >= 0 && env[t->slot] == NULL;
    case T_ARRAY:
        for (int i = 0; i < t->n; i++)
            if (is_pattern(env, t->items[i]))
                return 1;
        return 0;
    case T_OBJECT:
        for (int i = 1; i < t->n; i += 2)
            if (is_pattern(env, t->items[i]))
                return 1;
        return 0;
    default:
        return 0;
    }
}

/* Frames: small ones live in the caller's stack buffer (XV_EVAL_FRAME_SMALL slots),
 * bigger ones on the heap; xv_eval_frame_done frees only the latter. */
V *xv_eval_frame_get(V *small, int n)
{
    if (n <= XV_EVAL_FRAME_SMALL) {
        memset(small, 0, sizeof(V) * (size_t)(n > 0 ? n : 1));
        return small;
    }
    return calloc((size_t)n, sizeof(V));
}
void xv_eval_frame_done(V *small, V *env)
{
    if (env != small)
        free(env);
}
V *xv_eval_frame_new(int n)
{
    return calloc((size_t)(n > 0 ? n : 1), sizeof(V));
}

/* ---- bodies and expressions ---- */

struct kbody {
    struct k k;
    V *env;
    struct body *b;
    int i;
    struct k *next;
};

static int kbody_fn(struct ev *ev, struct k *self, V v)
{
    struct kbody *kb = (struct kbody *)self;
    return xv_eval_body(ev, kb->env, kb->b, kb->i, kb->next);
}

int xv_eval_body(struct ev *ev, V *env, struct body *b, int i, struct k *k)
{
    if (i >= b->n)
        return k->fn(ev, k, NULL);
    struct kbody kb = {{kbody_fn}, env, b, i + 1, k};
    return xv_eval_expr(ev, env, b->exprs[i], &kb.k);
}


/* E_TERM: defined and not false */
int xv_eval_k_truthy(struct ev *ev, struct k *self, V v)
{
    struct kpass *kp = (struct kpass *)self;
    if (v->type == XV_T_BOOL && !XV_BOOLV(v))
        return R_OK;
    return kp->next->fn(ev, kp->next, NULL);
}

int xv_eval_k_found(struct ev *ev, struct k *self, V v)
{
    return R_STOP;
}

/* ---- unification ---- */

struct kmatch {
    struct k k;
    V *env;
    struct term *t;
    struct k *next;
};
static int kmatch_fn(struct ev *ev, struct k *self, V v)
{
    struct kmatch *km = (struct kmatch *)self;
    return xv_eval_match(ev, km->env, km->t, v, km->next);
}

struct keq {
    struct k k;
    V target;
    struct k *next;
};
static int keq_fn(struct ev *ev, struct k *self, V v)
{
    struct keq *ke = (struct keq *)self;
    if (!xv_val_equal(v, ke->target))
        return R_OK;
    return ke->next->fn(ev, ke->next, NULL);
}

/* match array elements from index i */
struct karr {
    struct k k;
    V *env;
    struct term *t;
    V v;
    int i;
    struct k *next;
};
static int match_elems(struct ev *ev, V *env, struct term *t, V v, int i, struct k *k);
static int karr_fn(struct ev *ev, struct k *self, V unused)
{
    struct karr *ka = (struct karr *)self;
    return match_elems(ev, ka->env, ka->t, ka->v, ka->i, ka->next);
}
static int match_elems(struct ev *ev, V *env, struct term *t, V v, int i, struct k *k)
{
    if (i >= t->n)
        return k->fn(ev, k, NULL);
    struct karr ka = {{karr_fn}, env, t, v, i + 1, k};
    return xv_eval_match(ev, env, t->items[i], XV_ARR_ITEM(v, i), &ka.k);
}

/* match object entries from pair index i (items[2i], items[2i+1]) */
struct kobjkey {
    struct k k;
    V *env;
    struct term *t;
    V v;
    int i;
    struct k *next;
};
static int match_entries(struct ev *ev, V *env, struct term *t, V v, int i, struct k *k);
static int kobjnext_fn(struct ev *ev, struct k *self, V unused)
{
    struct kobjkey *ko = (struct kobjkey *)self;
    return match_entries(ev, ko->env, ko->t, ko->v, ko->i + 1, ko->next);
}
static int kobjkey_fn(struct ev *ev, struct k *self, V key)
{
    struct kobjkey *ko = (struct kobjkey *)self;
    V val = xv_eval_lookup(ko->v, key);
    if (!val)
        return R_OK;
    struct kobjkey nk = *ko;
    nk.k.fn = kobjnext_fn;
    return xv_eval_match(ev, ko->env, ko->t->items[2 * ko->i + 1], val, &nk.k);
}
static int match_entries(struct ev *ev, V *env, struct term *t, V v, int i, struct k *k)
{
    if (2 * i >= t->n)
        return k->fn(ev, k, NULL);
    struct kobjkey ko = {{kobjkey_fn}, env, t, v, i, k};
    return xv_eval_term(ev, env, t->items[2 * i], &ko.k);
}

/* Match pattern t against value v: an unbound variable is bound for the
 * call to k and unbound after it (no trail needed), a bound one or a
 * constant must be equal, arrays and objects match element-wise. */
int xv_eval_match(struct ev *ev, V *env, struct term *t, V v, struct k *k)
{
    switch (t->kind) {
    case T_VAR:
        if (t->slot >= 0) {
            if (env[t->slot])
                return xv_val_equal(env[t->slot], v) ? k->fn(ev, k, NULL) : R_OK;
            env[t->slot] = v;
            int rc = k->fn(ev, k, NULL);
            env[t->slot] = NULL;
            return rc;
        }
        break;
    case T_VALUE:
        return xv_val_equal(t->val, v) ? k->fn(ev, k, NULL) : R_OK;
    case T_ARRAY:
        if (!is_pattern(env, t))
            break;
        if (v->type != XV_T_ARRAY || XV_ARR_LEN(v) != (size_t)t->n)
            return R_OK;
        return match_elems(ev, env, t, v, 0, k);
    case T_OBJECT:
        if (!is_pattern(env, t))
            break;
        if (v->type != XV_T_OBJECT || XV_OBJ_LEN(v) != (size_t)t->n / 2)
            return R_OK;
        return match_entries(ev, env, t, v, 0, k);
    default:
        break;
    }
    struct keq ke = {{keq_fn}, v, k};
    return xv_eval_term(ev, env, t, &ke.k);
}

/* unify two terms pairwise (both patterns) */
struct kpair {
    struct k k;
    V *env;
    struct term *a, *b;
    int i;
    struct k *next;
};
int xv_eval_unify(struct ev *ev, V *env, struct term *a, struct term *b, struct k *k);
static int unify_pairs(struct ev *ev, V *env, struct term *a, struct term *b, int i, struct k *k);
static int kpair_fn(struct ev *ev, struct k *self, V unused)
{
    struct kpair *kp = (struct kpair *)self;
    return unify_pairs(ev, kp->env, kp->a, kp->b, kp->i, kp->next);
}
/* Unify the i-th and later elements (object values) of two composite
 * terms of the same shape, one continuation per element. */
static int unify_pairs(struct ev *ev, V *env, struct term *a, struct term *b, int i, struct k *k)
{
    int step = a->kind == T_OBJECT ? 2 : 1;
    int start = a->kind == T_OBJECT ? 1 : 0;
    int idx = start + i * step;
    if (idx >= a->n)
        return k->fn(ev, k, NULL);
    struct kpair kp = {{kpair_fn}, env, a, b, i + 1, k};
    return xv_eval_unify(ev, env, a->items[idx], b->items[idx], &kp.k);
}

/* a = b: evaluate the side that is not a pattern and match the other
 * against it; two patterns of the same shape unify element by element;
 * two values compare. */
int xv_eval_unify(struct ev *ev, V *env, struct term *a, struct term *b, struct k *k)
{
    int pa = is_pattern(env, a), pb = is_pattern(env, b);
    if (pa && pb) {
        if (a->kind == T_ARRAY && b->kind == T_ARRAY) {
            if (a->n != b->n)
                return R_OK;
            return unify_pairs(ev, env, a, b, 0, k);
        }
        if (a->kind == T_OBJECT && b->kind == T_OBJECT) {
            if (a->n != b->n)
                return R_OK;
            /* keys must match in order (both literal, sorted by source) */
            for (int i = 0; i < a->n; i += 2)
                if (a->items[i]->kind != T_VALUE || b->items[i]->kind != T_VALUE ||
                    !xv_val_equal(a->items[i]->val, b->items[i]->val))
                    return R_OK;
            return unify_pairs(ev, env, a, b, 0, k);
        }
        if (a->kind == T_VAR && b->kind == T_VAR)
            return R_OK; /* unsafe; rejected at compile */
    }
    struct kmatch km;
    km.k.fn = kmatch_fn;
    km.env = env;
    km.next = k;
    if (pa) {
        km.t = a;
        return xv_eval_term(ev, env, b, &km.k);
    }
    km.t = b;
    return xv_eval_term(ev, env, a, &km.k);
}

/* ---- collections: iterate (key, value) ---- */

typedef xv_eval_iter_fn iter_fn;

/* Call fn for every (key, value) of a collection: array index, object key,
 * or set element as its own key. Stops at the first non-R_OK. */
int xv_eval_iterate(struct ev *ev, V coll, iter_fn fn, void *ctx)
{
    size_t i;
    int rc = R_OK;
    switch (coll->type) {
    case XV_T_ARRAY:
        for (i = 0; i < XV_ARR_LEN(coll) && rc == R_OK; i++) {
            V key = xv_val_int((int64_t)i);
            if (!key)
                return xv_eval_oom(ev);
            rc = fn(ev, ctx, key, XV_ARR_ITEM(coll, i));
            xv_val_decref(key);
        }
        return rc;
    case XV_T_SET:
        for (i = 0; i < XV_SET_LEN(coll) && rc == R_OK; i++)
            rc = fn(ev, ctx, XV_SET_ITEM(coll, i), XV_SET_ITEM(coll, i));
        return rc;
    case XV_T_OBJECT:
        for (i = 0; i < XV_OBJ_LEN(coll) && rc == R_OK; i++)
            rc = fn(ev, ctx, XV_OBJ_KEY(coll, i), XV_OBJ_VAL(coll, i));
        return rc;
    default:
        return R_OK;
    }
}

/* ---- refs ---- */

static int walk_val(struct ev *ev, V *env, V v, struct term *t, int i, struct k *k);

struct kwalk {
    struct k k;
    V *env;
    V v;
    struct term *t;
    int i;
    struct k *next;
};

static int kwalkkey_fn(struct ev *ev, struct k *self, V key)
{
    struct kwalk *kw = (struct kwalk *)self;
    V child = xv_eval_lookup(kw->v, key);
    if (!child)
        return R_OK;
    return walk_val(ev, kw->env, child, kw->t, kw->i + 1, kw->next);
}

struct witer {
    V *env;
    struct term *t;
    int i;
    struct k *next;
};

static int kwalk_after_bind(struct ev *ev, struct k *self, V unused)
{
    struct kwalk *kw = (struct kwalk *)self;
    return walk_val(ev, kw->env, kw->v, kw->t, kw->i + 1, kw->next);
}

static int witer_fn(struct ev *ev, void *ctx, V key, V val)
{
    struct witer *w = ctx;
    struct kwalk kw = {{kwalk_after_bind}, w->env, val, w->t, w->i, w->next};
    return xv_eval_match(ev, w->env, w->t->items[w->i], key, &kw.k);
}

/* Walk ref t from its i-th item into v: a ground item looks up, a variable
 * item iterates every key of the collection (binding it for the rest). */
static int walk_val(struct ev *ev, V *env, V v, struct term *t, int i, struct k *k)
{
    if (i >= t->n)
        return k->fn(ev, k, v);
    struct term *e = t->items[i];
    if (is_pattern(env, e)) {
        struct witer w = {env, t, i, k};
        return xv_eval_iterate(ev, v, witer_fn, &w);
    }
    if (e->kind == T_VALUE) {
        V child = xv_eval_lookup_at(ev, v, e);
        return child ? walk_val(ev, env, child, t, i + 1, k) : R_OK;
    }
    struct kwalk kw = {{kwalkkey_fn}, env, v, t, i, k};
    return xv_eval_term(ev, env, e, &kw.k);
}

struct kheadv {
    struct k k;
    V *env;
    struct term *t;
    struct k *next;
};
static int kheadv_fn(struct ev *ev, struct k *self, V v)
{
    struct kheadv *kh = (struct kheadv *)self;
    return walk_val(ev, kh->env, v, kh->t, 1, kh->next);
}

/* The base document (data given with the policy) under the first upto-1
 * items of a data ref, which are constant strings by the compiler's
 * linking. Borrowed; NULL if absent. */
static V base_at(struct ev *ev, struct term *t, int upto)
{
    V b = ev->data;
    for (int i = 1; i < upto && b; i++) {
        struct term *k = t->items[i];
        b = lookup_str(b, XV_STR(k->val), XV_STRLEN(k->val));
    }
    return b;
}

/* A reference: data refs go through the rule tree (eval_data), input refs
 * walk the input, local refs walk the variable's value. */
__attribute__((noinline)) static int eval_ref(struct ev *ev, V *env, struct term *t,
                                              struct k *k)
{
    struct term *h = t->items[0];
    if (h->kind == T_VAR) {
        if (h->vflags & VF_DATA) {
            struct node *n = t->rnode ? t->rnode : ev->c->root;
            int consumed = t->rnode ? t->rconsumed : 1;
            if (ev->mask) {
                n = ev->c->root;
                consumed = 1;
            }
            return eval_data(ev, env, n, base_at(ev, t, consumed), t, consumed, k);
        }
        if (h->vflags & VF_INPUT)
            return ev->input ? walk_val(ev, env, ev->input, t, 1, k) : R_OK;
        if (h->slot >= 0)
            return env[h->slot] ? walk_val(ev, env, env[h->slot], t, 1, k) : R_OK;
        return R_OK;
    }
    struct kheadv kh = {{kheadv_fn}, env, t, k};
    return xv_eval_term(ev, env, h, &kh.k);
}

/* Data namespace walk: node n corresponds to path t->items[1..i-1]. */
struct kdata {
    struct k k;
    V *env;
    struct node *n;
    V base;
    struct term *t;
    int i;
    struct k *next;
};

/* One step down a data ref from node n at key: the rules of the child node
 * merged with the base data under the same key. */
static int data_child(struct ev *ev, V *env, struct node *n, V base, V key, struct term *t, int i,
                      struct k *k)
{
    V cb = xv_eval_lookup(base, key);
    if (!cb && base && base->type == XV_T_OBJECT && key->type == XV_T_NUMBER) {
        /* the store keys everything by string: data[2] reads "2" */
        struct xv_buf b;
        xv_buf_init(&b, 256);
        xv_val_number_write(&b, key);
        cb = lookup_str(base, b.data ? b.data : "", b.len);
        xv_buf_free(&b);
    }
    struct node *c = NULL;
    if (key->type == XV_T_STRING)
        c = xv_ast_node_child(n, XV_STR(key), XV_STRLEN(key));
    if (c && ev->mask && ev->mask[c->id])
        c = NULL;
    if (c)
        return eval_data(ev, env, c, cb, t, i + 1, k);
    if (!cb)
        return R_OK;
    /* Base documents are keyed by strings in OPA's store, so a constant
     * number indexes an object by its text (data.nested[2] reads "2"). */
    int j = i + 1;
    while (j < t->n && t->items[j]->kind == T_VALUE && cb) {
        V kv = t->items[j]->val;
        V nx = xv_eval_lookup(cb, kv);
        if (!nx && kv->type == XV_T_NUMBER && cb->type == XV_T_OBJECT) {
            struct xv_buf b;
            xv_buf_init(&b, 256);
            xv_val_number_write(&b, kv);
            nx = lookup_str(cb, b.data ? b.data : "", b.len);
            xv_buf_free(&b);
        }
        cb = nx;
        j++;
    }
    return cb ? walk_val(ev, env, cb, t, j, k) : R_OK;
}

static int kdatakey_fn(struct ev *ev, struct k *self, V key)
{
    struct kdata *kd = (struct kdata *)self;
    return data_child(ev, kd->env, kd->n, kd->base, key, kd->t, kd->i, kd->next);
}

static int kdata_bound_fn(struct ev *ev, struct k *self, V unused)
{
    struct kdata *kd = (struct kdata *)self;
    struct term *e = kd->t->items[kd->i];
    return data_child(ev, kd->env, kd->n, kd->base, kd->env[e->slot], kd->t, kd->i, kd->next);
}

/* The rest of data ref t from item i, standing at node n (base data
 * beside it): constant keys descend the tree, a variable key iterates
 * every child (rules and base data alike); past the rule tree the ref
 * walks the computed value. */
static int eval_data(struct ev *ev, V *env, struct node *n, V base, struct term *t, int i,
                     struct k *k)
{
    if ((n->nrules || n->dflt) && base)
        return walk_val(ev, env, base, t, i, k); /* base documents win */
    if (n->nrules || n->dflt || i >= t->n) {
        V v = NULL;
        if (xv_eval_node_value(ev, n, base, &v))
            return R_ERR;
        if (!v)
            return R_OK;
        int rc = walk_val(ev, env, v, t, i, k);
        xv_val_decref(v);
        return rc;
    }
    struct term *e = t->items[i];
    if (e->kind == T_VAR && e->slot >= 0 && !env[e->slot]) {
        /* enumerate children: the merged, sorted key set */
        V keys = xv_val_set_new(0);
        if (!keys)
            return xv_eval_oom(ev);
        for (int c = 0; c < n->nkids; c++)
            if (!(ev->mask && ev->mask[n->kids[c]->id]))
                xv_val_set_add(keys, n->kids[c]->key);
        if (base && base->type == XV_T_OBJECT)
            for (size_t j = 0; j < XV_OBJ_LEN(base); j++)
                xv_val_set_add(keys, XV_OBJ_KEY(base, j));
        int rc = R_OK;
        for (size_t j = 0; j < XV_SET_LEN(keys) && rc == R_OK; j++) {
            V key = XV_SET_ITEM(keys, j);
            env[e->slot] = key;
            struct kdata kd = {{kdata_bound_fn}, env, n, base, t, i, k};
            rc = kdata_bound_fn(ev, &kd.k, NULL);
            env[e->slot] = NULL;
        }
        xv_val_decref(keys);
        return rc;
    }
    if (e->kind == T_VALUE)
        return data_child(ev, env, n, base, e->val, t, i, k);
    struct kdata kd = {{kdatakey_fn}, env, n, base, t, i, k};
    return xv_eval_term(ev, env, e, &kd.k);
}

/* ---- composite terms ---- */

struct kelems {
    struct k k;
    V *env;
    struct term *t;
    int i;
    V *vals;
    struct k *next;
};

/* An array, set or object literal from its evaluated elements; an object
 * with two equal keys of different values is a conflict. */
static int build_composite(struct ev *ev, struct term *t, V *vals, struct k *k)
{
    V r;
    int i;
    if (t->kind == T_ARRAY) {
        r = xv_val_array_new((size_t)t->n);
        for (i = 0; r && i < t->n; i++)
            xv_val_array_push(r, vals[i]);
    } else if (t->kind == T_SET) {
        r = xv_val_set_new((size_t)t->n);
        for (i = 0; r && i < t->n; i++)
            xv_val_set_add(r, vals[i]);
    } else if (t->kind == T_OBJECT) {
        r = xv_val_object_new((size_t)t->n / 2);
        for (i = 0; r && i + 1 < t->n; i += 2)
            xv_val_object_set(r, vals[i], vals[i + 1]);
    } else {
        /* template string */
        struct xv_buf b;
        xv_buf_init(&b, (size_t)1 << 30);
        for (i = 0; i < t->n; i++) {
            V v = vals[i];
            if (v->type == XV_T_STRING)
                xv_buf_append(&b, XV_STR(v), XV_STRLEN(v));
            else if (v->type == XV_T_SET || v->type == XV_T_ARRAY || v->type == XV_T_OBJECT)
                xv_val_rego_write(&b, v);
            else
                xv_val_json_write(&b, v, 0);
        }
        r = xv_val_string(b.data ? b.data : "", b.len);
        xv_buf_free(&b);
    }
    if (!r)
        return xv_eval_oom(ev);
    int rc = k->fn(ev, k, r);
    xv_val_decref(r);
    return rc;
}

static int kelems_fn(struct ev *ev, struct k *self, V v)
{
    struct kelems *ke = (struct kelems *)self;
    ke->vals[ke->i] = v;
    if (ke->i + 1 >= ke->t->n)
        return build_composite(ev, ke->t, ke->vals, ke->next);
    struct kelems k2 = *ke;
    k2.i = ke->i + 1;
    return xv_eval_term(ev, ke->env, ke->t->items[k2.i], &k2.k);
}

/* Template strings: an undefined part makes the whole string "<undefined>" */
struct ktmpl {
    struct k k;
    V *val;
};
static int ktmpl_fn(struct ev *ev, struct k *self, V v)
{
    struct ktmpl *kt = (struct ktmpl *)self;
    if (!*kt->val)
        *kt->val = xv_val_incref(v);
    return R_STOP;
}

/* Evaluate a composite literal's elements one by one, each with its own
 * solutions (a generator element yields several composites). */
__attribute__((noinline)) static int eval_template(struct ev *ev, V *env, struct term *t,
                                                   struct k *k)
{
    V small[16];
    V *vals = t->n <= 16 ? small : malloc((size_t)t->n * sizeof(V));
    if (!vals)
        return xv_eval_oom(ev);
    int i, rc = R_OK;
    for (i = 0; i < t->n; i++)
        vals[i] = NULL;
    for (i = 0; i < t->n && rc >= 0; i++) {
        struct ktmpl kt = {{ktmpl_fn}, &vals[i]};
        rc = xv_eval_term(ev, env, t->items[i], &kt.k);
        if (rc == R_STOP)
            rc = R_OK;
        if (vals[i] && t->items[i]->kind == T_ACOMP && t->items[i]->outarg) {
            /* `{expr with …}` parts: the first (only) value, if any */
            V arr = vals[i];
            vals[i] = XV_ARR_LEN(arr) ? xv_val_incref(XV_ARR_ITEM(arr, 0)) : NULL;
            xv_val_decref(arr);
        }
        if (!vals[i])
            vals[i] = xv_val_cstring("<undefined>");
    }
    if (rc >= 0)
        rc = build_composite(ev, t, vals, k);
    for (i = 0; i < t->n; i++)
        xv_val_decref(vals[i]);
    if (vals != small)
        free(vals);
    return rc;
}

struct kcomp {
    struct k k;
    V *env;
    struct term *t;
    V acc;
    struct term *keyt;
    V key;
};
/* A comprehension's body produced a value: add it to the accumulator
 * (for an object comprehension, a second different value under one key is
 * OPA's conflict error). */
static int kcomp_val(struct ev *ev, struct k *self, V v)
{
    struct kcomp *kc = (struct kcomp *)self;
    int r;
    if (kc->t->kind == T_ACOMP)
        r = xv_val_array_push(kc->acc, v);
    else if (kc->t->kind == T_SCOMP)
        r = xv_val_set_add(kc->acc, v);
    else {
        long idx = xv_val_object_find(kc->acc, kc->key);
        if (idx >= 0 && !xv_val_equal(XV_OBJ_VAL(kc->acc, idx), v))
            return xv_eval_raise(ev, kc->t->loc, "eval_conflict_error", "object keys must be unique");
        r = xv_val_object_set(kc->acc, kc->key, v);
    }
    return r ? xv_eval_oom(ev) : R_OK;
}
static int kcomp_key(struct ev *ev, struct k *self, V v)
{
    struct kcomp *kc = (struct kcomp *)self;
    struct kcomp k2 = *kc;
    k2.k.fn = kcomp_val;
    k2.key = v;
    return xv_eval_term(ev, kc->env, kc->t->head, &k2.k);
}
static int kcomp_body(struct ev *ev, struct k *self, V unused)
{
    struct kcomp *kc = (struct kcomp *)self;
    struct kcomp k2 = *kc;
    if (kc->t->kind == T_OCOMP) {
        k2.k.fn = kcomp_key;
        return xv_eval_term(ev, kc->env, kc->t->key, &k2.k);
    }
    k2.k.fn = kcomp_val;
    return xv_eval_term(ev, kc->env, kc->t->head, &k2.k);
}

/* A composite term ([...], {...}, {k: v}) of terms: evaluate its elements
 * one after another, then build it. Out of line (as eval_comprehension):
 * xv_eval_term, which every term goes through, stays a small dispatcher
 * with a small frame. */
__attribute__((noinline)) static int eval_composite(struct ev *ev, V *env, struct term *t,
                                                    struct k *k)
{
    if (t->n == 0)
        return build_composite(ev, t, NULL, k);
    V small[16];
    V *vals = t->n <= 16 ? small : malloc((size_t)t->n * sizeof(V));
    if (!vals)
        return xv_eval_oom(ev);
    struct kelems ke = {{kelems_fn}, env, t, 0, vals, k};
    int rc = xv_eval_term(ev, env, t->items[0], &ke.k);
    if (vals != small)
        free(vals);
    return rc;
}

/* An array, set or object comprehension. */
__attribute__((noinline)) static int eval_comprehension(struct ev *ev, V *env, struct term *t,
                                                        struct k *k)
{
    V acc = t->kind == T_ACOMP ? xv_val_array_new(0) : t->kind == T_SCOMP ? xv_val_set_new(0)
                                                                    : xv_val_object_new(0);
    if (!acc)
        return xv_eval_oom(ev);
    struct kcomp kc = {{kcomp_body}, env, t, acc, NULL, NULL};
    int rc = xv_eval_body(ev, env, t->body, 0, &kc.k);
    if (rc >= 0)
        rc = k->fn(ev, k, acc);
    xv_val_decref(acc);
    return rc;
}

/* The whole `data` document as a value. */
__attribute__((noinline)) static int eval_data_root(struct ev *ev, struct k *k)
{
    V v = NULL;
    if (xv_eval_node_value(ev, ev->c->root, ev->data, &v))
        return R_ERR;
    int rc = v ? k->fn(ev, k, v) : R_OK;
    xv_val_decref(v);
    return rc;
}

/* Evaluate term t, calling k once per value it has (a ref into a partial
 * set has many, an undefined one none). */
int xv_eval_term(struct ev *ev, V *env, struct term *t, struct k *k)
{
    switch (t->kind) {
    case T_VALUE:
        return k->fn(ev, k, t->val);
    case T_VAR:
        if (t->vflags & VF_DATA)
            return eval_data_root(ev, k);
        if (t->vflags & VF_INPUT)
            return ev->input ? k->fn(ev, k, ev->input) : R_OK;
        if (t->slot >= 0 && env[t->slot])
            return k->fn(ev, k, env[t->slot]);
        return R_OK;
    case T_REF:
        return eval_ref(ev, env, t, k);
    case T_CALL:
        return xv_eval_call(ev, env, t, k);
    case T_ARRAY:
    case T_SET:
    case T_OBJECT:
        return eval_composite(ev, env, t, k);
    case T_TEMPLATE:
        return eval_template(ev, env, t, k);
    case T_ACOMP:
    case T_SCOMP:
    case T_OCOMP:
        return eval_comprehension(ev, env, t, k);
    }
    return R_OK;
}

/* One expression: count a step, then `with` modifiers (eval/with.c) or the
 * expression itself (eval/expr.c). */
int xv_eval_expr(struct ev *ev, V *env, struct expr *e, struct k *k)
{
    if (xv_eval_step(ev, e->loc) < 0)
        return R_ERR;
    if (e->nwith)
        return xv_eval_with(ev, env, e, k);
    return xv_eval_expr_nowith(ev, env, e, k);
}

