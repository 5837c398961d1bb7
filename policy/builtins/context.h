/*
 * builtins/context.h — declarations shared only by the evaluator's own files
 * (lexer, parser, compiler, evaluator, core builtins). Not for the
 * builtins helper's files, which use xv_builtins.h alone.
 * Thread safety: see each file.
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
