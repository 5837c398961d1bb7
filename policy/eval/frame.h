/*
 * eval/frame.h — what the evaluator's files (topdown.c, rules.c, call.c,
 * expr.c, with.c, rego.c) share: the evaluation state, frames and the
 * continuation protocol. Internal to eval/.
 *
 * Invariant: continuations return R_OK for more solutions, R_STOP to end an
 * enumeration, R_ERR once ev->err is set; values handed to a continuation
 * are borrowed for the duration of the call.
 * Thread safety: one struct ev per evaluation, never shared.
 */
#ifndef XV_POLICY_EVAL_INT_H
#define XV_POLICY_EVAL_INT_H

#include "ast/tree.h"
#include "eval/query.h"

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
};

struct k {
    int (*fn)(struct ev *ev, struct k *self, struct xv_value *v);
};

typedef struct xv_value *V;

int xv_eval_raise(struct ev *ev, struct xv_loc loc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int xv_eval_oom(struct ev *ev);
V xv_eval_lookup(V coll, V key);
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
int xv_eval_step(struct ev *ev, struct xv_loc loc);

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
