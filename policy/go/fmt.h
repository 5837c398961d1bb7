/*
 * go/fmt.h — Go's fmt.Sprintf and strconv float formatting, for sprintf and number
 * printing.
 *
 * Invariant: the output is what Go prints for the same verbs and arguments.
 * Thread safety: all functions are reentrant.
 */
#ifndef XV_POLICY_GO_FMT_H
#define XV_POLICY_GO_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value/buf.h"
/* ---- Go fmt ------------------------------------------------------------------ */

/* One sprintf argument, already converted as OPA converts Rego values before
 * calling Go's fmt.Sprintf. */
enum xv_go_fmt_kind {
    XV_GO_FMT_INT,     /* fits int64: Go `int` */
    XV_GO_FMT_BIGINT,  /* integer outside int64: Go *big.Int; text = decimal digits */
    XV_GO_FMT_FLOAT,   /* Go float64 */
    XV_GO_FMT_STRING,  /* Go string (Rego strings, and every non-number as Rego text) */
};
struct xv_go_fmt_arg {
    enum xv_go_fmt_kind kind;  /* which member below is meaningful */
    int64_t i;                 /* XV_GO_FMT_INT */
    double f;                  /* XV_GO_FMT_FLOAT */
    const char *s;             /* BIGINT (optional '-' then digits) or STRING bytes; borrowed */
    size_t slen;               /* length of s */
};
/* fmt.Sprintf(format, args...). Caller owns the result; NULL on allocation
 * failure. */
char *xv_go_fmt_sprintf(const char *fmt, size_t fn, const struct xv_go_fmt_arg *args,
                               size_t nargs, size_t *outlen);
/* Go's strconv.FormatFloat(f, 'g', -1, 64) (shortest repr, %v style). */
void xv_go_fmt_float_shortest(struct xv_val_buf *b, double f, char verb, int prec);


#endif
