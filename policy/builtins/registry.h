/*
 * builtins/registry.h — how Rego builtin functions plug into the evaluator.
 *
 * WHERE BUILTINS LIVE
 *   - policy/builtins/<namespace>.c: one file per Rego namespace, each with
 *     a NULL-name-terminated `struct xv_builtin_def` array listed in
 *     builtins/table.c (`xv_bi_families`). Adding a family = adding the file
 *     and its line in table.c; policy/CMakeLists.txt globs every .c below
 *     policy/, and the evaluator needs no edit.
 *   - builtins/core.c: operators, comparisons, count/sum/product/max/min/
 *     sort/walk/print; builtins/registry.c: the error helpers, the ctx
 *     accessors and the name index (xv_bi_lookup).
 *   - eval/rego.c: rego.metadata.*, rego.parse_module (they read the policy
 *     itself); the compiler finds them through xv_eval_builtin_lookup.
 *
 * CALLING CONVENTION
 *   int fn(struct xv_bctx *ctx, struct xv_value *const *args, int nargs,
 *          struct xv_value **out);
 *   - args are borrowed (see xv_value.h's ownership rule); nargs == arity
 *     (for variadic builtins, arity -1, any count).
 *   - Return XV_BI_OK with *out set to a new reference; XV_BI_UNDEFINED
 *     for "no result" (e.g. object.get never does, but to_number on
 *     a bad value errors instead); XV_BI_ERROR after calling one of the
 *     xv_bi_*error functions below.
 *   - Errors: the evaluator turns a builtin error into "undefined" unless
 *     the evaluation is strict, in which case it raises it as
 *     `<file>:<row>: <code>: <builtin name>: <message>` — so messages carry
 *     neither the location nor the builtin's name: just
 *     "operand 1 must be string but got number".
 *   - Builtins must not keep pointers to args after returning, must be
 *     reentrant (evaluations run on many threads at once), and must not
 *     print. Non-deterministic ones (time.now_ns, rand.*, uuid.rfc4122)
 *     read per-evaluation state through the ctx accessors so repeated
 *     calls within one evaluation agree, as in OPA.
 */
#ifndef XV_BUILTINS_H
#define XV_BUILTINS_H

#include <stdarg.h>

#include "value/xv_value.h"

/* Status of a builtin call. */
enum xv_bi_status {
    XV_BI_OK = 0,        /* *out holds the result */
    XV_BI_UNDEFINED = 1, /* no result: the expression is undefined */
    XV_BI_ERROR = -1,    /* an error was recorded on ctx */
};

/* Error codes as OPA names them. */
enum xv_bi_errcode {
    XV_ERR_TYPE = 1,    /* "eval_type_error" */
    XV_ERR_BUILTIN = 2, /* "eval_builtin_error" */
};

struct xv_bctx; /* per-call context, owned by the evaluator */

typedef int (*xv_builtin_fn)(struct xv_bctx *ctx, struct xv_value *const *args, int nargs,
                             struct xv_value **out);

/* One builtin. Tables are arrays ending with an entry whose name is NULL. */
struct xv_builtin_def {
    const char *name; /* full dotted name, e.g. "strings.replace_n" */
    int arity;        /* number of operands; -1 for variadic */
    xv_builtin_fn fn; /* implementation */
    unsigned flags;   /* XV_BIF_* */
};

enum {
    XV_BIF_NONDET = 1,   /* non-deterministic (time, rand, uuid, http) */
    XV_BIF_RELATION = 2, /* may yield several results: not used yet */
};

/* Defined in builtins_table.c (builtins helper): NULL-terminated list of
 * builtin tables, one per family. */
extern const struct xv_builtin_def *const xv_bi_families[];

/* Defined in core_builtins.c (evaluator): operators and aggregates. */
extern const struct xv_builtin_def xv_bi_core[];

/* Find a builtin by name among all tables (core first). NULL if unknown.
 * Thread-safe; builds its index once. */
const struct xv_builtin_def *xv_bi_lookup(const char *name, size_t len);

/* ---- errors (each returns XV_BI_ERROR so `return xv_bi_...(...)` works) ---- */

/* eval_type_error "operand <pos> must be <want> but got <type of got>".
 * pos is 1-based; want is OPA's wording: "string", "number",
 * "one of {array, set}", "object[string: any]"... */
int xv_bi_type_error(struct xv_bctx *ctx, int pos, const char *want, const struct xv_value *got);
/* eval_builtin_error with a printf-style message, e.g. "divide by zero". */
int xv_bi_error(struct xv_bctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with an explicit code. */
int xv_bi_error_code(struct xv_bctx *ctx, enum xv_bi_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check that args[pos-1] has type t; on mismatch records the type error and
 * returns XV_BI_ERROR, else 0. Typical use:
 *   if (xv_bi_want(ctx, args, 1, XV_T_STRING)) return XV_BI_ERROR;       */
int xv_bi_want_fail(struct xv_bctx *ctx, struct xv_value *const *args, int pos, enum xv_type t);
static inline int xv_bi_want(struct xv_bctx *ctx, struct xv_value *const *args, int pos,
                             enum xv_type t)
{
    /* inline: every builtin checks its operands, nearly always of the right type */
    return args[pos - 1]->type == t ? 0 : xv_bi_want_fail(ctx, args, pos, t);
}

/* ---- context accessors ---- */

/* Non-zero when builtin errors are raised (strict mode). Builtins rarely
 * need this: the evaluator applies strictness to the returned status. */
int xv_bi_ctx_strict(const struct xv_bctx *ctx);
/* Wall-clock time of the evaluation's start in ns (stable within one
 * evaluation, as time.now_ns must be). */
int64_t xv_bi_ctx_now_ns(struct xv_bctx *ctx);
/* Name of the builtin being called (for messages that need it). */
const char *xv_bi_ctx_builtin_name(const struct xv_bctx *ctx);
/* Per-evaluation memo for non-deterministic builtins: returns (a new
 * reference to) the value stored under key by an earlier xv_bi_ctx_memo_put
 * in the same evaluation, or NULL. put borrows both arguments. */
struct xv_value *xv_bi_ctx_memo_get(struct xv_bctx *ctx, const struct xv_value *key);
int xv_bi_ctx_memo_put(struct xv_bctx *ctx, struct xv_value *key, struct xv_value *val);

#endif
