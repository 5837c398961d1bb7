/*
 * eval/with.c — the `with` modifier (input, data and function replacement
 * for one expression, with a fresh rule cache) and the evaluation entry
 * points (queries, single documents).
 *
 * Invariant: every `with` restores the evaluation state it changed before
 * the rest of the body runs, and again before it returns.
 * Thread safety: per-evaluation state only, but for the lookup hints, which
 * are per thread (t_hint below).
 */
#include "eval/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- with ---- */

/* Copy of root with the value at path (string keys) replaced. */
static V set_path(V root, struct term *t, int from, V val)
{
    if (from >= t->n)
        return xv_val_incref(val);
    V obj = root && root->type == XV_T_OBJECT ? xv_val_copy(root) : xv_val_object_new(1);
    if (!obj)
        return NULL;
    V key = t->items[from]->val;
    V child = xv_eval_lookup(obj, key);
    V nv = set_path(child, t, from + 1, val);
    if (!nv) {
        xv_val_decref(obj);
        return NULL;
    }
    xv_val_object_set(obj, key, nv);
    xv_val_decref(nv);
    return obj;
}

struct wstate {
    V input;
    V data;
    struct cache_ent *cache;
    struct fov *fovs;
    int nfov;
    uint8_t *mask;
};

/* What a `with` changes (input, data mask, mocks, the rule cache) saved
 * before it... */
static void wstate_save(struct ev *ev, struct wstate *s)
{
    s->input = ev->input;
    s->data = ev->data;
    s->cache = ev->cache;
    s->fovs = ev->fovs;
    s->nfov = ev->nfov;
    s->mask = ev->mask;
}

/* ...and put back after it, on every path out. */
static void wstate_load(struct ev *ev, const struct wstate *s)
{
    ev->input = s->input;
    ev->data = s->data;
    ev->cache = s->cache;
    ev->fovs = s->fovs;
    ev->nfov = s->nfov;
    ev->mask = s->mask;
}

struct kwith {
    struct k k;
    struct wstate outer, inner;
    struct k *next;
};

/* The expression under `with` produced a solution: restore the outer
 * state while the rest of the body runs, then re-apply it. */
static int kwith_fn(struct ev *ev, struct k *self, V v)
{
    struct kwith *kw = (struct kwith *)self;
    wstate_load(ev, &kw->outer);
    int rc = kw->next->fn(ev, kw->next, NULL);
    wstate_load(ev, &kw->inner);
    return rc;
}

struct kwval {
    struct k k;
    V *val;
};
static int kwval_fn(struct ev *ev, struct k *self, V v)
{
    struct kwval *kv = (struct kwval *)self;
    *kv->val = xv_val_incref(v);
    return R_STOP;
}

static void mask_subtree(struct ev *ev, struct node *n)
{
    ev->mask[n->id] = 1;
    for (int i = 0; i < n->nkids; i++)
        mask_subtree(ev, n->kids[i]);
}

/* An expression with `with` modifiers: replace input, data paths or
 * functions for this one expression, evaluate it with a fresh rule cache
 * (cached values may depend on what was replaced), then restore. */
int xv_eval_with(struct ev *ev, V *env, struct expr *e, struct k *k)
{
    struct wstate outer;
    wstate_save(ev, &outer);
    V *owned = calloc((size_t)e->nwith * 2 + 2, sizeof(V));
    struct fov *fovs = calloc((size_t)(ev->nfov + e->nwith + 1), sizeof *fovs);
    struct cache_ent *cache = calloc((size_t)ev->c->nnodes + 1, sizeof *cache);
    uint8_t *mask = NULL;
    int nown = 0, rc = R_OK;
    if (!owned || !fovs || !cache) {
        free(owned);
        free(fovs);
        free(cache);
        return xv_eval_oom(ev);
    }
    if (ev->nfov)
        memcpy(fovs, ev->fovs, (size_t)ev->nfov * sizeof *fovs);
    int nfov = ev->nfov;
    V input = ev->input, data = ev->data;
    for (int i = 0; i < e->nwith && rc >= 0; i++) {
        struct with *w = &e->withs[i];
        V val = NULL;
        if (!w->vbi && !w->vnode) {
            struct kwval kv = {{kwval_fn}, &val};
            rc = xv_eval_term(ev, env, w->value, &kv.k);
            if (rc < 0)
                break;
            rc = R_OK;
            if (!val)
                goto undefined;
            owned[nown++] = val;
        }
        struct term *tg = w->target;
        struct term *h = tg->kind == T_REF ? tg->items[0] : tg;
        if (h->kind == T_VAR && (h->vflags & VF_INPUT)) {
            V ni = tg->kind == T_REF ? set_path(input, tg, 1, val) : xv_val_incref(val);
            if (!ni) {
                rc = xv_eval_oom(ev);
                break;
            }
            owned[nown++] = ni;
            input = ni;
        } else if (h->kind == T_VAR && (h->vflags & VF_DATA)) {
            V nd = tg->kind == T_REF ? set_path(data, tg, 1, val) : xv_val_incref(val);
            if (!nd) {
                rc = xv_eval_oom(ev);
                break;
            }
            owned[nown++] = nd;
            data = nd;
            if (!mask && !(mask = calloc((size_t)ev->c->nnodes + 1, 1))) {
                rc = xv_eval_oom(ev);
                break;
            }
            if (ev->mask)
                memcpy(mask, ev->mask, (size_t)ev->c->nnodes);
            /* hide rules at or below the target path */
            struct node *n = ev->c->root;
            int j = 1;
            for (; tg->kind == T_REF && j < tg->n && n; j++) {
                V key = tg->items[j]->val;
                n = xv_ast_node_child(n, XV_STR(key), XV_STRLEN(key));
                if (n && (n->nrules || n->dflt))
                    break;
            }
            uint8_t *saved = ev->mask;
            ev->mask = mask;
            if (n)
                mask_subtree(ev, n);
            ev->mask = saved;
        } else {
            struct fov *f = &fovs[nfov++];
            f->tbi = w->tbi;
            f->tnode = w->tnode;
            f->vbi = w->vbi;
            f->vnode = w->vnode;
            f->val = (w->vbi || w->vnode) ? NULL : val;
        }
    }
    if (rc >= 0) {
        struct kwith kw;
        kw.k.fn = kwith_fn;
        kw.outer = outer;
        kw.next = k;
        ev->input = input;
        ev->data = data;
        ev->cache = cache;
        ev->fovs = fovs;
        ev->nfov = nfov;
        ev->mask = mask ? mask : outer.mask;
        wstate_save(ev, &kw.inner);
        rc = xv_eval_expr_nowith(ev, env, e, &kw.k);
        wstate_load(ev, &outer);
    }
undefined:
    wstate_load(ev, &outer);
    for (int i = 0; i < ev->c->nnodes; i++)
        xv_val_decref(cache[i].v);
    free(cache);
    free(fovs);
    free(mask);
    for (int i = 0; i < nown; i++)
        xv_val_decref(owned[i]);
    free(owned);
    return rc;
}

/* ---- entry points ---- */

/* The thread's lookup hints (frame.h, XV_EVAL_HINTS): 512 bytes a thread.
 * The default TLS model: in the engine object (dlopen'ed by
 * preload/policy_shim.c) the block is the thread's dynamic TLS, made at
 * first use and freed by libc when the thread exits, and it takes none of
 * the static TLS left for dlopen'ed objects; its address is taken once per
 * evaluation. */
static __thread uint16_t t_hint[XV_EVAL_HINTS];

static int ev_init(struct ev *ev, struct xv_compiled *c, V input, V data,
                   const struct xv_eval_opts *opts, struct xv_eval_error *err)
{
    memset(ev, 0, sizeof *ev);
    memset(err, 0, sizeof *err);
    ev->c = c;
    ev->input = input;
    ev->data = data;
    ev->strict = opts ? opts->strict : 0;
    ev->max_steps = opts && opts->max_steps ? opts->max_steps : DEFAULT_MAX_STEPS;
    ev->deadline_ns = opts && opts->timeout_ns ? xv_now_mono_ns() + opts->timeout_ns : 0;
    ev->err = err;
    ev->now_ns = 0; /* read lazily by xv_bi_ctx_now_ns */
    ev->cache = calloc((size_t)c->nnodes + 1, sizeof *ev->cache);
    ev->top_cache = ev->cache;
    ev->reuse = opts ? opts->reuse : NULL;
    ev->hint = t_hint;
    if (!ev->cache) {
        snprintf(err->code, sizeof err->code, "eval_internal_error");
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -1;
    }
    return 0;
}

static void ev_free(struct ev *ev)
{
    for (int i = 0; i < ev->c->nnodes; i++)
        xv_val_decref(ev->cache[i].v);
    free(ev->cache);
    xv_val_decref(ev->memo);
}

struct krow {
    struct k k;
    V *env;
    int nslots;
    const char **names;
    V rows;
};

/* A query solution: one row object of the query's named variables. */
static int krow_fn(struct ev *ev, struct k *self, V unused)
{
    struct krow *kr = (struct krow *)self;
    V row = xv_val_object_new(4);
    if (!row)
        return xv_eval_oom(ev);
    for (int i = 0; i < kr->nslots; i++) {
        const char *nm = kr->names[i];
        if (!kr->env[i] || nm[0] == '$' || !strncmp(nm, "__local", 7))
            continue;
        xv_val_object_set_str(row, nm, kr->env[i]);
    }
    /* rows form a set: drop duplicates */
    int dup = 0;
    for (size_t j = 0; j < XV_ARR_LEN(kr->rows) && !dup; j++)
        dup = xv_val_equal(XV_ARR_ITEM(kr->rows, j), row);
    if (!dup)
        xv_val_array_push(kr->rows, row);
    xv_val_decref(row);
    return R_OK;
}

/* Entry point: run query q over input and data, collecting every solution
 * as a row; budgets from opts. */
int xv_eval_query(struct xv_compiled *c, struct body *q, int nslots, const char **names,
                  struct xv_value *input, struct xv_value *data,
                  const struct xv_eval_opts *opts, struct xv_value **rows,
                  struct xv_eval_error *err)
{
    struct ev ev;
    *rows = NULL;
    if (ev_init(&ev, c, input, data, opts, err))
        return -1;
    V *env = xv_eval_frame_new(nslots);
    V acc = xv_val_array_new(1);
    if (!env || !acc) {
        free(env);
        xv_val_decref(acc);
        ev_free(&ev);
        snprintf(err->code, sizeof err->code, "eval_internal_error");
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -1;
    }
    struct krow kr = {{krow_fn}, env, nslots, names, acc};
    int rc = xv_eval_body(&ev, env, q, 0, &kr.k);
    free(env);
    ev_free(&ev);
    if (rc < 0 || ev.failed) {
        xv_val_decref(acc);
        return -1;
    }
    *rows = acc;
    return 0;
}

/* Entry point: the documents at several nodes in one evaluation, so rules
 * they share are computed once (a decision reads several). */
int xv_eval_nodes(struct xv_compiled *c, struct node *const *nodes, int count,
                  struct xv_value *input, struct xv_value *data,
                  const struct xv_eval_opts *opts, struct xv_value **out,
                  struct xv_eval_error *err)
{
    struct ev ev;
    for (int j = 0; j < count; j++)
        out[j] = NULL;
    if (ev_init(&ev, c, input, data, opts, err))
        return -1;
    int rc = 0;
    for (int j = 0; j < count && rc == 0; j++) {
        struct node *n = nodes[j];
        if (!n)
            continue;
        /* base data at the node's path */
        V base = data;
        const struct node *chain[256];
        int depth = 0;
        for (const struct node *p = n; p && p->parent && depth < 256; p = p->parent)
            chain[depth++] = p;
        for (int i = depth - 1; i >= 0 && base; i--)
            base = xv_eval_lookup(base, chain[i]->key);
        rc = xv_eval_node_value(&ev, n, base, &out[j]);
        if (ev.failed)
            rc = -1;
    }
    ev_free(&ev);
    if (rc < 0) {
        for (int j = 0; j < count; j++) {
            xv_val_decref(out[j]);
            out[j] = NULL;
        }
        return -1;
    }
    return 0;
}

int xv_eval_node(struct xv_compiled *c, struct node *n, struct xv_value *input,
                 struct xv_value *data, const struct xv_eval_opts *opts,
                 struct xv_value **out, struct xv_eval_error *err)
{
    return xv_eval_nodes(c, &n, 1, input, data, opts, out, err);
}
