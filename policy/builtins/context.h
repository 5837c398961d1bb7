/*
 * builtins/context.h — the context of one builtin call (struct xv_bctx),
 * which the evaluator fills and builtins/ reads through registry.h's
 * accessors (xv_bi_ctx_*); the namespace files need only registry.h.
 *
 * Invariant: a context lives on the evaluator's stack for one call; the
 * error it records is turned into undefined or an error by the evaluator.
 * Thread safety: one context per call, never shared.
 */
#ifndef XV_POLICY_INT_H
#define XV_POLICY_INT_H

#include <stdint.h>

#include "builtins/registry.h"
#include "value/xv_value.h"

/* Context handed to one builtin call (lives on the evaluator's stack). */
struct xv_bctx {
    struct xv_eval *ev;       /* the running evaluation */
    const char *name;         /* builtin being called */
    int strict;               /* strict builtin errors */
    int64_t *now_ns;          /* evaluation's clock reading, 0 until first asked */
    struct xv_value **memo;   /* per-evaluation memo object (may be NULL) */
    int errcode;              /* enum xv_bi_errcode once an error is recorded */
    char errmsg[512];         /* the error text */
};

#endif
