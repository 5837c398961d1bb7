/*
 * eval/expr.c — the expression kinds of the evaluator (term, unify/assign,
 * not, some, some-in, every, calls with an output argument).
 *
 * Invariant: continuation-passing like the rest of the evaluator: each
 * form calls its continuation once per solution, and every binding it
 * makes is undone before it returns.
 * Thread safety: per-evaluation state only (struct ev).
 */
#include "eval/frame.h"

/* ---- expressions ---- */

struct ksome {
    struct k k;
    V *env;
    struct expr *e;
    struct k *next;
};

struct sctx {
    V *env;
    struct expr *e;
    struct k *next;
};

static int ksome_after_key(struct ev *ev, struct k *self, V unused);

struct ksomekv {
    struct k k;
    V *env;
    struct expr *e;
    V val;
    struct k *next;
};

static int ksome_after_key(struct ev *ev, struct k *self, V unused)
{
    struct ksomekv *kk = (struct ksomekv *)self;
    return xv_eval_match(ev, kk->env, kk->e->a, kk->val, kk->next);
}

static int some_iter(struct ev *ev, void *ctx, V key, V val)
{
    struct sctx *s = ctx;
    if (s->e->key) {
        struct ksomekv kk = {{ksome_after_key}, s->env, s->e, val, s->next};
        return xv_eval_match(ev, s->env, s->e->key, key, &kk.k);
    }
    return xv_eval_match(ev, s->env, s->e->a, val, s->next);
}

static int ksome_coll(struct ev *ev, struct k *self, V coll)
{
    struct ksome *ks = (struct ksome *)self;
    struct sctx s = {ks->env, ks->e, ks->next};
    return xv_eval_iterate(ev, coll, some_iter, &s);
}

/* every: each element must satisfy the body */
struct ectx {
    V *env;
    struct expr *e;
};

static int kevery_body(struct ev *ev, struct k *self, V unused)
{
    struct ksome *ks = (struct ksome *)self;
    struct k found = {xv_eval_k_found};
    return xv_eval_body(ev, ks->env, ks->e->body, 0, &found);
}

/* One element of an `every` domain: bind key/value and run the body; the
 * body's first solution (R_STOP) satisfies this element, none means the
 * whole `every` fails (2 stops the iteration). */
static int every_iter(struct ev *ev, void *ctx, V key, V val)
{
    struct ectx *c = ctx;
    struct ksome kb = {{kevery_body}, c->env, c->e, NULL};
    int rc;
    if (c->e->key) {
        struct ksomekv kk = {{ksome_after_key}, c->env, c->e, val, &kb.k};
        rc = xv_eval_match(ev, c->env, c->e->key, key, &kk.k);
    } else {
        rc = xv_eval_match(ev, c->env, c->e->a, val, &kb.k);
    }
    if (rc == R_STOP)
        return R_OK; /* satisfied: next element */
    if (rc < 0)
        return rc;
    return 2; /* not satisfied */
}

/* The domain of `every` evaluated: every element must satisfy the body;
 * an empty domain is vacuously true. */
static int kevery_coll(struct ev *ev, struct k *self, V coll)
{
    struct ksome *ks = (struct ksome *)self;
    if (coll->type != XV_T_ARRAY && coll->type != XV_T_SET && coll->type != XV_T_OBJECT)
        return R_OK; /* every over a non-collection is undefined */
    struct ectx c = {ks->env, ks->e};
    int rc = xv_eval_iterate(ev, coll, every_iter, &c);
    if (rc < 0)
        return rc;
    if (rc == 2)
        return R_OK;
    return ks->next->fn(ev, ks->next, NULL);
}

/* call expression with an output argument */
struct kout {
    struct k k;
    V *env;
    struct term *t;
    struct k *next;
};
static int kout_fn(struct ev *ev, struct k *self, V v)
{
    struct kout *ko = (struct kout *)self;
    return xv_eval_match(ev, ko->env, ko->t->items[ko->t->n - 1], v, ko->next);
}


/* An expression without `with`: a term (truthy), not, some ... in,
 * every, := / = (unification), or a call with an output argument. */
int xv_eval_expr_nowith(struct ev *ev, V *env, struct expr *e, struct k *k)
{
    switch (e->kind) {
    case E_TERM: {
        struct term *t = e->a;
        if (t->kind == T_CALL && t->outarg) {
            struct kout ko = {{kout_fn}, env, t, k};
            return xv_eval_call(ev, env, t, &ko.k);
        }
        struct kpass kp = {{xv_eval_k_truthy}, k};
        /* a call, most often: straight to it */
        if (t->kind == T_CALL)
            return xv_eval_call(ev, env, t, &kp.k);
        return xv_eval_term(ev, env, t, &kp.k);
    }
    case E_UNIFY:
    case E_ASSIGN:
        return xv_eval_unify(ev, env, e->a, e->b, k);
    case E_NOT: {
        struct k found = {xv_eval_k_found};
        int rc = xv_eval_expr(ev, env, e->inner, &found);
        if (rc < 0)
            return rc;
        if (rc == R_STOP)
            return R_OK;
        return k->fn(ev, k, NULL);
    }
    case E_SOME:
        return k->fn(ev, k, NULL);
    case E_SOMEIN: {
        struct ksome ks = {{ksome_coll}, env, e, k};
        return xv_eval_term(ev, env, e->b, &ks.k);
    }
    case E_EVERY: {
        struct ksome ks = {{kevery_coll}, env, e, k};
        return xv_eval_term(ev, env, e->b, &ks.k);
    }
    }
    return R_OK;
}

