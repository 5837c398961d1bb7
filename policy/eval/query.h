/*
 * eval/query.h — the evaluator's entry points: a compiled query, one
 * document, or several documents in one evaluation; and the builtin lookup
 * the engine hands the compiler (builtins/'s table plus the rego.*
 * builtins that look at the policy itself, eval/rego.c).
 *
 * Invariant: an evaluation never changes the compiled policy; results are
 * owned by the caller.
 * Thread safety: any number of evaluations may run at once on one
 * xv_compiled; each keeps its state on its own stack and heap.
 */
#ifndef XV_POLICY_EVAL_QUERY_H
#define XV_POLICY_EVAL_QUERY_H

#include "ast/tree.h"

/* Reuse of partial-set rules between two evaluations whose inputs differ
 * only in the keys of `changed` (the engine's decision memo, engine.c).
 * At the top level (not under a `with`), the rules of nodes[j] whose deps
 * (tree.h) meet neither `changed` nor XV_DEP_INPUT / XV_DEP_OTHER are
 * "stable": filling (use 0), their elements are also collected in kept[j]
 * (a new reference, filled[j] set); using (use 1, kept[j] from a fill of an
 * equal-but-`changed` input, borrowed), they are not evaluated and kept[j]'s
 * elements are added instead. */
struct xv_eval_reuse {
    struct node *nodes[2];   /* partial-set documents reused (NULL: none) */
    uint64_t changed;        /* dependency bits that may differ */
    int use;                 /* 0 fill, 1 use */
    struct xv_value *kept[2];/* see above */
    int filled[2];           /* fill: nodes[j] was evaluated at the top level */
};

struct xv_eval_opts {
    int strict;            /* strict builtin errors */
    uint64_t max_steps;    /* 0 = default budget */
    uint64_t timeout_ns;   /* 0 = no time limit */
    struct xv_eval_reuse *reuse; /* NULL, or see struct xv_eval_reuse */
};

struct xv_eval_error {
    struct xv_loc loc;  /* where (file, line) */
    char code[40];      /* eval_conflict_error, eval_type_error, ... */
    char msg[600];      /* message (builtin name prefixed for builtin errors) */
};

/* Run a compiled query; *rows receives an array of objects (var -> value).
 * input may be NULL (undefined). data is the base document (object) or NULL.
 * Returns 0, or -1 with err filled. */
int xv_eval_query(struct xv_compiled *c, struct body *q, int nslots, const char **names,
                  struct xv_value *input, struct xv_value *data,
                  const struct xv_eval_opts *opts, struct xv_value **rows,
                  struct xv_eval_error *err);
/* Evaluate the document at node (rules merged with base data); *out is
 * NULL when undefined. */
int xv_eval_node(struct xv_compiled *c, struct node *n, struct xv_value *input,
                 struct xv_value *data, const struct xv_eval_opts *opts,
                 struct xv_value **out, struct xv_eval_error *err);

/* Evaluate several documents in one evaluation (shared rule cache);
 * NULL nodes give NULL values. */
int xv_eval_nodes(struct xv_compiled *c, struct node *const *nodes, int count,
                  struct xv_value *input, struct xv_value *data,
                  const struct xv_eval_opts *opts, struct xv_value **out,
                  struct xv_eval_error *err);

/* The builtin named name[0..len): rego.metadata.rule, rego.metadata.chain,
 * rego.parse_module, else builtins/'s table (xv_bi_lookup). NULL if none. */
const struct xv_builtin_def *xv_eval_builtin_lookup(const char *name, size_t len);

#endif
