/*
 * builtins/args.c — the helpers of builtins_int.h: OPA's operand error
 * texts, integer operands, result wrapping, and Rego/JSON text into a
 * bi_util buffer.
 *
 * Invariant: error texts are OPA's (topdown/builtins/builtins.go) word for
 * word, without the builtin name, which the evaluator prefixes.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xv_bi_operand_err(struct xv_bctx *ctx, int pos, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return xv_bi_error_code(ctx, XV_ERR_TYPE, "operand %d %s", pos, msg);
}

int xv_bi_elem_err(struct xv_bctx *ctx, int pos, const struct xv_value *coll,
                          const struct xv_value *elem, const char *want)
{
    const char *ct = xv_val_type_name(coll);
    return xv_bi_operand_err(ctx, pos, "must be %s of %ss but got %s containing %s", ct,
                                    want, ct, xv_val_type_name(elem));
}

int xv_bi_num_is_float_text(const struct xv_value *v)
{
    const char *t = v->u.num.text;
    if (t)
        return strpbrk(t, ".eE") != NULL;
    return !xv_val_number_is_int(v);
}

int xv_bi_int_arg(struct xv_bctx *ctx, struct xv_value *const *a, int pos, int64_t *out)
{
    const struct xv_value *v = a[pos - 1];
    if (!XV_IS(v, XV_T_NUMBER))
        return xv_bi_type_error(ctx, pos, "number", v);
    /* Go's json.Number.Int64 rejects "2.0" and "1e3": so does OPA's IntOperand */
    if (!xv_val_number_is_int(v) || xv_bi_num_is_float_text(v) ||
        xv_val_number_get_int64(v, out) != 0)
        return xv_bi_operand_err(ctx, pos,
                                        "must be integer number but got floating-point number");
    return 0;
}

int xv_bi_ret(struct xv_bctx *ctx, struct xv_value *v, struct xv_value **out)
{
    if (!v)
        return xv_bi_error(ctx, "out of memory");
    *out = v;
    return XV_BI_OK;
}

int xv_bi_ret_owned(struct xv_bctx *ctx, char *s, size_t len, struct xv_value **out)
{
    if (!s)
        return xv_bi_error(ctx, "out of memory");
    struct xv_value *v = xv_val_string(s, len);
    free(s);
    return xv_bi_ret(ctx, v, out);
}

int xv_bi_ret_buf(struct xv_bctx *ctx, struct xv_val_buf *b, struct xv_value **out)
{
    size_t len;
    char *s = xv_val_buf_take(b, &len);
    return xv_bi_ret_owned(ctx, s, len, out);
}

void xv_bi_rego_text(struct xv_val_buf *b, const struct xv_value *v)
{
    struct xv_buf t;
    xv_buf_init(&t, XV_VAL_BUF_MAX);
    if (xv_val_rego_write(&t, v) == 0)
        xv_val_buf_add(b, t.data ? t.data : "", t.len);
    else
        b->oom = true;
    xv_buf_free(&t);
}

int xv_bi_json_text(struct xv_val_buf *b, const struct xv_value *v, int flags)
{
    struct xv_buf t;
    xv_buf_init(&t, XV_VAL_BUF_MAX);
    int rc = xv_val_json_write(&t, v, flags);
    if (rc == 0)
        xv_val_buf_add(b, t.data ? t.data : "", t.len);
    xv_buf_free(&t);
    return rc;
}
