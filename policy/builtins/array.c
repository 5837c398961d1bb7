/*
 * builtins/array.c — array.concat, array.slice, array.reverse and
 * array.flatten.
 *
 * Invariant: results are new arrays; operands are borrowed, and slice
 * bounds are clamped as OPA clamps them.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdlib.h>
#include <string.h>

#define OOM(ctx) xv_bi_error((ctx), "out of memory")

static int push_all(struct xv_value *dst, const struct xv_value *src)
{
    for (size_t i = 0; i < XV_ARR_LEN(src); i++)
        if (xv_val_array_push(dst, XV_ARR_ITEM(src, i)))
            return -1;
    return 0;
}

BI_FN(bi_array_concat)
{
    if (xv_bi_want(ctx, a, 1, XV_T_ARRAY) || xv_bi_want(ctx, a, 2, XV_T_ARRAY))
        return XV_BI_ERROR;
    struct xv_value *r = xv_val_array_new(XV_ARR_LEN(a[0]) + XV_ARR_LEN(a[1]));
    if (!r || push_all(r, a[0]) || push_all(r, a[1])) {
        xv_val_decref(r);
        return OOM(ctx);
    }
    *out = r;
    return XV_BI_OK;
}

BI_FN(bi_array_slice)
{
    int64_t st, en;
    if (xv_bi_want(ctx, a, 1, XV_T_ARRAY) || xv_bi_int_arg(ctx, a, 2, &st) ||
        xv_bi_int_arg(ctx, a, 3, &en))
        return XV_BI_ERROR;
    int64_t len = (int64_t)XV_ARR_LEN(a[0]);
    if (en < 0)
        en = 0;
    else if (en > len)
        en = len;
    if (st < 0)
        st = 0;
    else if (st > en)
        st = en;
    struct xv_value *r = xv_val_array_new((size_t)(en - st));
    if (!r)
        return OOM(ctx);
    for (int64_t i = st; i < en; i++)
        if (xv_val_array_push(r, XV_ARR_ITEM(a[0], i))) {
            xv_val_decref(r);
            return OOM(ctx);
        }
    *out = r;
    return XV_BI_OK;
}

BI_FN(bi_array_reverse)
{
    if (xv_bi_want(ctx, a, 1, XV_T_ARRAY))
        return XV_BI_ERROR;
    size_t len = XV_ARR_LEN(a[0]);
    struct xv_value *r = xv_val_array_new(len);
    if (!r)
        return OOM(ctx);
    for (size_t i = len; i > 0; i--)
        if (xv_val_array_push(r, XV_ARR_ITEM(a[0], i - 1))) {
            xv_val_decref(r);
            return OOM(ctx);
        }
    *out = r;
    return XV_BI_OK;
}

/* One level: elements that are arrays are spliced in, others kept. */
static int flatten_into(struct xv_value *r, const struct xv_value *arr)
{
    for (size_t i = 0; i < XV_ARR_LEN(arr); i++) {
        const struct xv_value *e = XV_ARR_ITEM(arr, i);
        int rc = XV_IS(e, XV_T_ARRAY) ? push_all(r, e) : xv_val_array_push(r, (struct xv_value *)e);
        if (rc)
            return rc;
    }
    return 0;
}

BI_FN(bi_array_flatten)
{
    if (xv_bi_want(ctx, a, 1, XV_T_ARRAY))
        return XV_BI_ERROR;
    struct xv_value *r = xv_val_array_new(XV_ARR_LEN(a[0]));
    if (!r || flatten_into(r, a[0])) {
        xv_val_decref(r);
        return OOM(ctx);
    }
    *out = r;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_array[] = {
    {"array.concat", 2, bi_array_concat, 0},
    {"array.slice", 3, bi_array_slice, 0},
    {"array.reverse", 1, bi_array_reverse, 0},
    {"array.flatten", 1, bi_array_flatten, 0},
    {NULL, 0, NULL, 0},
};
