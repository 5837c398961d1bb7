/*
 * eval/frame.h — what the evaluator's files (topdown.c, rules.c, call.c,
 * expr.c, with.c, rego.c) share: the evaluation state, frames and the
 * continuation protocol. Internal to eval/.
 *
 * Invariant: continuations return R_OK for more solutions, R_STOP to end an
 * enumeration, R_ERR once ev->err is set; values handed to a continuation
 * are borrowed for the duration of the call.
 * Thread safety: one struct ev per evaluation, never shared; its lookup
 * hints are its thread's (see XV_EVAL_HINTS).
 */
#ifndef XV_POLICY_EVAL_INT_H
#define XV_POLICY_EVAL_INT_H

#include "ast/tree.h"
#include "eval/query.h"

#include <string.h>

enum { R_OK = 0, R_STOP = 1, R_ERR = -1 };

#define DEFAULT_MAX_STEPS 10000000ull
#define MAX_DEPTH 256 /* rule/function nesting; keeps the C stack bounded */

struct cache_ent {
    struct xv_value *v; /* owned; NULL = undefined */
    uint8_t state;      /* 0 empty, 1 computing, 2 done */
};

struct fov {
    const struct xv_builtin_def *tbi; /* mocked builtin */
    struct node *tnode;               /* mocked function */
    const struct xv_builtin_def *vbi; /* replacement builtin */
    struct node *vnode;               /* replacement function */
    struct xv_value *val;             /* replacement value (owned) */
};

/* Lookup hints: slot (site % XV_EVAL_HINTS) holds the index at which the
 * ref key numbered site (term.site) was last found in an object, by this
 * thread (eval/with.c, ev_init): decisions on one policy see inputs of one
 * shape. Policies share the slots; a hint is only ever a guess, checked. */
#define XV_EVAL_HINTS 256

struct ev {
    struct xv_compiled *c;     /* policy */
    struct xv_value *input;    /* borrowed or owned via input_owned; NULL = undefined */
    struct xv_value *data;     /* base document (borrowed) */
    int strict;                /* strict builtin errors */
    uint64_t steps, max_steps; /* budget */
    uint64_t deadline_ns;      /* monotonic deadline, 0 = none */
    int depth;                 /* rule nesting */
    int64_t now_ns;            /* evaluation start */
    struct xv_value *memo;     /* builtin memo (owned) */
    struct cache_ent *cache;   /* per node id */
    struct fov *fovs;          /* active function mocks */
    int nfov;                  /* count */
    uint8_t *mask;             /* node id -> hidden by `with data...` (NULL if none) */
    struct xv_eval_error *err; /* error out */
    int failed;                /* err is set */
    struct rule *cur_rule;     /* rule whose body is being evaluated (rego.metadata.*) */
    struct xv_eval_reuse *reuse; /* opts->reuse (query.h), or NULL */
    struct cache_ent *top_cache; /* the cache outside every `with` */
    uint16_t *hint;            /* the thread's XV_EVAL_HINTS hints; any value is safe */
};

struct k {
    int (*fn)(struct ev *ev, struct k *self, struct xv_value *v);
};

typedef struct xv_value *V;

int xv_eval_raise(struct ev *ev, struct xv_loc loc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int xv_eval_oom(struct ev *ev);
V xv_eval_lookup(V coll, V key);
V xv_eval_lookup_slow(struct ev *ev, V coll, const struct term *key);

/* Equal bytes, for the short keys of objects: no call, and no byte loop
 * from 4 bytes on (two overlapping words compare the tail). */
static inline int xv_eval_same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, w;
    if (n >= 8) {
        for (; n > 8; a += 8, b += 8, n -= 8) {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&w, b, 4);
        if (u != w)
            return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&w, b + n - 4, 4);
        return u == w;
    }
    for (; n; a++, b++, n--)
        if (*a != *b)
            return 0;
    return 1;
}

/* coll[key] for key, a ref's constant item (T_VALUE): a string key is
 * first tried at the index where this ref last found it on this thread
 * (the same ref looks into objects of one shape: every message has its
 * "role" at the same place, every decision's input its "messages"), the
 * general lookup when that misses. Borrowed from coll; NULL when absent. */
static inline V xv_eval_lookup_at(struct ev *ev, V coll, const struct term *key)
{
    V kv = key->val;
    if (coll && coll->type == XV_T_OBJECT && kv->type == XV_T_STRING) {
        size_t i = ev->hint[key->site % XV_EVAL_HINTS];
        if (i < XV_OBJ_LEN(coll)) {
            V have = XV_OBJ_KEY(coll, i);
            if (have == kv ||
                (have->type == XV_T_STRING && have->u.str.len == kv->u.str.len &&
                 xv_eval_same_bytes(have->u.str.s, kv->u.str.s, kv->u.str.len)))
                return XV_OBJ_VAL(coll, i);
        }
    }
    return xv_eval_lookup_slow(ev, coll, key);
}
V *xv_eval_frame_new(int n);
int xv_eval_body(struct ev *ev, V *env, struct body *b, int i, struct k *k);
int xv_eval_term(struct ev *ev, V *env, struct term *t, struct k *k);
int xv_eval_expr_nowith(struct ev *ev, V *env, struct expr *e, struct k *k);
int xv_eval_with(struct ev *ev, V *env, struct expr *e, struct k *k);

/* Shared by eval.c and eval_expr.c. */
typedef int (*xv_eval_iter_fn)(struct ev *ev, void *ctx, V key, V val);
/* continuation that ignores the value and goes on */
struct kpass {
    struct k k;
    struct k *next;
};
int xv_eval_match(struct ev *ev, V *env, struct term *t, V v, struct k *k);
int xv_eval_unify(struct ev *ev, V *env, struct term *a, struct term *b, struct k *k);
int xv_eval_iterate(struct ev *ev, V coll, xv_eval_iter_fn fn, void *ctx);
int xv_eval_call(struct ev *ev, V *env, struct term *t, struct k *k);
int xv_eval_expr(struct ev *ev, V *env, struct expr *e, struct k *k);
int xv_eval_k_truthy(struct ev *ev, struct k *self, V v); /* defined and not false */
int xv_eval_k_found(struct ev *ev, struct k *self, V v);  /* stop at the first solution */
/* Value of the document at node n merged with base; *out is a new reference
 * or NULL (undefined). 0 or -1 (error set). */
int xv_eval_node_value(struct ev *ev, struct node *n, V base, V *out);

/* Frames of up to XV_EVAL_FRAME_SMALL slots live in the caller's stack
 * buffer, bigger ones on the heap; xv_eval_frame_done frees only those. */
#define XV_EVAL_FRAME_SMALL 48
V *xv_eval_frame_get(V *small, int n);
void xv_eval_frame_done(V *small, V *env);
/* Count one step against the budgets (steps, deadline): R_OK or R_ERR. */
int xv_eval_step_check(struct ev *ev, struct xv_loc loc);
/* inline: once per expression and rule; the clock and the errors are
 * xv_eval_step_check's (rules.c) */
static inline int xv_eval_step(struct ev *ev, struct xv_loc loc)
{
    if (++ev->steps <= ev->max_steps && (!ev->deadline_ns || (ev->steps & 1023) != 0))
        return R_OK;
    return xv_eval_step_check(ev, loc);
}

/* Continuation collecting a rule's solutions (complete rules, functions,
 * partial sets and objects). */
struct kcollect {
    struct k k;
    V *env;        /* the rule body's frame */
    struct rule *r;/* the rule */
    V *acc;        /* complete: the value so far; set/object: the container */
    int found;     /* solutions seen */
    int func;      /* function rule (message differs) */
};
/* Body solved: evaluate the rule's value into kc->acc (conflict check). */
int xv_eval_k_complete_body(struct ev *ev, struct k *self, V unused);

#endif
