/*
 * eval/call.c — calls: user-defined functions (argument matching, one body
 * after another, the conflict rule for functions with several outputs),
 * builtins (argument checks, the strict/undefined error rule, the memo and
 * clock of the evaluation), and the function mocks of `with`.
 *
 * Invariant: a call's arguments are borrowed for the call; its result is
 * handed to the continuation as a borrowed value and dropped afterwards.
 * Thread safety: per-evaluation state only (struct ev).
 */
#include "eval/frame.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- function calls ---- */

struct kargs {
    struct k k;
    V *env;
    struct rule *r;
    int i;
    V *args;
    struct k *next;
};
static int match_args(struct ev *ev, V *env, struct rule *r, V *args, int i, struct k *k);
static int kargs_fn(struct ev *ev, struct k *self, V unused)
{
    struct kargs *ka = (struct kargs *)self;
    return match_args(ev, ka->env, ka->r, ka->args, ka->i + 1, ka->next);
}
static int match_args(struct ev *ev, V *env, struct rule *r, V *args, int i, struct k *k)
{
    if (i >= r->nargs)
        return k->fn(ev, k, NULL);
    struct kargs ka = {{kargs_fn}, env, r, i, args, k};
    return xv_eval_match(ev, env, r->args[i], args[i], &ka.k);
}

struct kfbody {
    struct k k;
    V *env;
    struct rule *r;
    struct kcollect *kc;
};
static int kfbody_fn(struct ev *ev, struct k *self, V unused)
{
    struct kfbody *kf = (struct kfbody *)self;
    return xv_eval_body(ev, kf->env, kf->r->body, 0, &kf->kc->k);
}

/* A user function applied to argument values: its rules and else chains
 * in order, each matching the arguments against its parameters; two
 * different results are OPA's conflict error. *out is NULL when undefined. */
__attribute__((noinline)) /* its frames stay out of apply_call's */
static int call_function(struct ev *ev, struct node *fn, V *args, struct xv_loc loc, V *out)
{
    *out = NULL;
    if (++ev->depth > MAX_DEPTH) {
        ev->depth--;
        return xv_eval_raise(ev, loc, "eval_internal_error", "function calls nested too deeply");
    }
    V acc = NULL;
    int rc = R_OK;
    for (struct rule *r = fn->rules; r && rc >= 0; r = r->next) {
        for (struct rule *e = r; e && rc >= 0; e = e->els) {
            if ((rc = xv_eval_step(ev, e->loc)) < 0)
                break;
            V fsmall[XV_EVAL_FRAME_SMALL];
                V *env = xv_eval_frame_get(fsmall, e->nslots);
            if (!env) {
                rc = xv_eval_oom(ev);
                break;
            }
            struct kcollect kc = {{xv_eval_k_complete_body}, env, e, &acc, 0, 1};
            struct kfbody kf = {{kfbody_fn}, env, e, &kc};
            struct rule *saved_rule = ev->cur_rule;
            ev->cur_rule = e;
            rc = match_args(ev, env, e, args, 0, &kf.k);
            ev->cur_rule = saved_rule;
            xv_eval_frame_done(fsmall, env);
            if (kc.found)
                break;
        }
    }
    if (rc >= 0 && !acc && fn->dflt) {
        V fsmall[XV_EVAL_FRAME_SMALL];
                V *env = xv_eval_frame_get(fsmall, fn->dflt->nslots);
        struct kcollect kc = {{xv_eval_k_complete_body}, env, fn->dflt, &acc, 0, 1};
        struct kfbody kf = {{kfbody_fn}, env, fn->dflt, &kc};
        rc = env ? match_args(ev, env, fn->dflt, args, 0, &kf.k) : xv_eval_oom(ev);
        xv_eval_frame_done(fsmall, env);
    }
    ev->depth--;
    if (rc < 0) {
        xv_val_decref(acc);
        return R_ERR;
    }
    *out = acc;
    return R_OK;
}

/* Run a builtin (or its mock) on evaluated args and pass results to k. */
static int call_builtin(struct ev *ev, const struct xv_builtin_def *bi, struct term *t, V *args,
                        int nargs, struct k *k)
{
    struct xv_bctx ctx;
    ctx.ev = (struct xv_eval *)ev;
    ctx.name = bi->name;
    ctx.strict = ev->strict;
    ctx.now_ns = &ev->now_ns;
    ctx.memo = &ev->memo;
    ctx.errcode = 0;
    ctx.errmsg[0] = 0;
    V out = NULL;
    int st = bi->fn(&ctx, args, nargs, &out);
    if (st == XV_BI_UNDEFINED)
        return R_OK;
    if (st != XV_BI_OK || !out) {
        if (!ctx.errcode && !ctx.errmsg[0])
            return xv_eval_oom(ev);
        if (!ev->strict)
            return R_OK;
        return xv_eval_raise(ev, t->loc, ctx.errcode == XV_ERR_TYPE ? "eval_type_error" : "eval_builtin_error",
                     "%s: %s", bi->name, ctx.errmsg);
    }
    int rc;
    if ((bi->flags & XV_BIF_RELATION) && out->type == XV_T_ARRAY) {
        rc = R_OK;
        for (size_t i = 0; i < XV_ARR_LEN(out) && rc == R_OK; i++)
            rc = k->fn(ev, k, XV_ARR_ITEM(out, i));
    } else {
        rc = k->fn(ev, k, out);
    }
    xv_val_decref(out);
    return rc;
}

struct kcallargs {
    struct k k;
    V *env;
    struct term *t;
    int i, n;
    V *vals;
    const int *order; /* evaluation order of the arguments */
    struct k *next;
};

/* Continuation restoring the caller's mocks around the rest of the query. */
struct knfov {
    struct k k;
    int outer, inner; /* nfov outside / inside the replacement */
    struct k *next;
};
static int knfov_fn(struct ev *ev, struct k *self, V v)
{
    struct knfov *kn = (struct knfov *)self;
    ev->nfov = kn->outer;
    int rc = kn->next->fn(ev, kn->next, v);
    ev->nfov = kn->inner;
    return rc;
}

/* Call t's builtin or function on evaluated arguments, unless a `with`
 * mock replaces it: a value mock answers directly, a function mock runs
 * the replacement with mocks off (it may call the original). */
static int apply_call(struct ev *ev, struct term *t, V *vals, int n, struct k *k)
{
    const struct xv_builtin_def *bi = t->bi;
    struct node *fn = t->fnode;
    for (int i = ev->nfov - 1; i >= 0; i--) {
        struct fov *f = &ev->fovs[i];
        if ((bi && f->tbi == bi && !fn) || (fn && f->tnode == fn)) {
            if (f->val)
                return k->fn(ev, k, f->val);
            /* no mock applies inside a replacement (it may call the original,
             * and never another mock) */
            struct knfov kn = {{knfov_fn}, ev->nfov, 0, k};
            ev->nfov = 0;
            struct term t2 = *t;
            t2.bi = f->vbi;
            t2.fnode = f->vnode;
            int rc = apply_call(ev, &t2, vals, n, &kn.k);
            ev->nfov = kn.outer;
            return rc;
        }
    }
    if (fn) {
        V out = NULL;
        if (call_function(ev, fn, vals, t->loc, &out) < 0)
            return R_ERR;
        if (!out)
            return R_OK;
        int rc = k->fn(ev, k, out);
        xv_val_decref(out);
        return rc;
    }
    return call_builtin(ev, bi, t, vals, n, k);
}

static int kcallargs_fn(struct ev *ev, struct k *self, V v)
{
    struct kcallargs *ka = (struct kcallargs *)self;
    ka->vals[ka->order[ka->i]] = v;
    if (ka->i + 1 >= ka->n)
        return apply_call(ev, ka->t, ka->vals, ka->n, ka->next);
    struct kcallargs k2 = *ka;
    k2.i = ka->i + 1;
    return xv_eval_term(ev, ka->env, ka->t->items[ka->order[k2.i] + 1], &k2.k);
}

/* The value of a term that needs no enumeration: a constant, a bound
 * variable, or a reference with constant keys into input or a bound
 * variable. *simple = 0 when the term needs the general evaluator; a NULL
 * result with *simple = 1 means undefined. */
static V direct_value(struct ev *ev, V *env, struct term *t, int *simple)
{
    *simple = 1;
    switch (t->kind) {
    case T_VALUE:
        return t->val;
    case T_VAR:
        if (t->slot >= 0 && env[t->slot])
            return env[t->slot];
        if (t->vflags & VF_INPUT)
            return ev->input;
        break;
    case T_REF: {
        /* cpath (ast/link.c): a variable head and constant keys; a ref
         * without it (a data ref, a ref not linked) takes the general path */
        struct term *h = t->items[0];
        V v;
        if (!t->cpath)
            break;
        if (h->vflags & VF_INPUT)
            v = ev->input;
        else if (h->slot >= 0 && env[h->slot])
            v = env[h->slot];
        else
            break;
        for (int i = 1; i < t->n && v; i++)
            v = xv_eval_lookup_at(ev, v, t->items[i]);
        return v;
    }
    default:
        break;
    }
    *simple = 0;
    return NULL;
}

/* xv_eval_call when some argument needs the general evaluator: the
 * arguments one after another, each with its own solutions. */
__attribute__((noinline)) static int call_general(struct ev *ev, V *env, struct term *t, int n,
                                                  struct k *k)
{
    V small[8];
    V *vals = n <= 8 ? small : malloc((size_t)n * sizeof(V));
    if (!vals)
        return xv_eval_oom(ev);
    int rc;
    if (n == 0) {
        rc = apply_call(ev, t, vals, 0, k);
    } else {
        /* references first: their enumeration may bind variables that other
         * arguments use (`foo == input.foos[foo]`) */
        int osmall[8];
        int *order = n <= 8 ? osmall : malloc((size_t)n * sizeof(int));
        if (!order) {
            if (vals != small)
                free(vals);
            return xv_eval_oom(ev);
        }
        int w = 0;
        for (int i = 0; i < n; i++)
            if (t->items[i + 1]->kind == T_REF)
                order[w++] = i;
        for (int i = 0; i < n; i++)
            if (t->items[i + 1]->kind != T_REF)
                order[w++] = i;
        struct kcallargs ka = {{kcallargs_fn}, env, t, 0, n, vals, order, k};
        rc = xv_eval_term(ev, env, t->items[order[0] + 1], &ka.k);
        if (order != osmall)
            free(order);
    }
    if (vals != small)
        free(vals);
    return rc;
}

/* Evaluate a call's value (without its output argument). */
int xv_eval_call(struct ev *ev, V *env, struct term *t, struct k *k)
{
    int n = t->n - 1 - t->outarg;
    if (n <= 8) {
        /* fast path: every argument is available without enumeration */
        V small[8];
        int simple = 1, i;
        for (i = 0; i < n && simple; i++) {
            small[i] = direct_value(ev, env, t->items[i + 1], &simple);
            if (simple && !small[i])
                return R_OK; /* an undefined argument: no result */
        }
        if (simple)
            return apply_call(ev, t, small, n, k);
    }
    return call_general(ev, env, t, n, k);
}
