/*
 * builtins/deprecated.c — the builtins OPA deprecated but still accepts in
 * Rego v0 policies: all, any, set_diff, cast_array, cast_set, cast_string,
 * cast_boolean, cast_null, cast_object (bits.*, semver.*, rand.* are
 * builtins/bits.c, semver.c, rand.c).
 *
 * Invariant: each behaves as OPA defines it (topdown/casts.go,
 * aggregates.go).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int all_any(struct xv_bctx *ctx, struct xv_value *const *a, bool all, struct xv_value **out)
{
    const struct xv_value *c = a[0];
    if (!XV_IS(c, XV_T_ARRAY) && !XV_IS(c, XV_T_SET))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", c);
    bool r = all;
    for (size_t i = 0; i < c->u.arr.len; i++) {
        const struct xv_value *e = c->u.arr.items[i];
        bool t = XV_IS(e, XV_T_BOOL) && XV_BOOLV(e);
        if (all && !t) {
            r = false;
            break;
        }
        if (!all && t) {
            r = true;
            break;
        }
    }
    *out = xv_val_bool(r);
    return XV_BI_OK;
}

BI_FN(bi_all) { return all_any(ctx, a, true, out); }
BI_FN(bi_any) { return all_any(ctx, a, false, out); }

BI_FN(bi_set_diff)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET) || xv_bi_want(ctx, a, 2, XV_T_SET))
        return XV_BI_ERROR;
    struct xv_value *r = xv_val_set_new(XV_SET_LEN(a[0]));
    for (size_t i = 0; r && i < XV_SET_LEN(a[0]); i++)
        if (xv_val_set_find(a[1], XV_SET_ITEM(a[0], i)) < 0 && xv_val_set_add(r, XV_SET_ITEM(a[0], i))) {
            xv_val_decref(r);
            r = NULL;
        }
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_cast_array)
{
    if (XV_IS(a[0], XV_T_ARRAY)) {
        *out = xv_val_incref(a[0]);
        return XV_BI_OK;
    }
    if (!XV_IS(a[0], XV_T_SET))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    struct xv_value *r = xv_val_array_new(XV_SET_LEN(a[0]));
    for (size_t i = 0; r && i < XV_SET_LEN(a[0]); i++)
        if (xv_val_array_push(r, XV_SET_ITEM(a[0], i))) {
            xv_val_decref(r);
            r = NULL;
        }
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_cast_set)
{
    if (XV_IS(a[0], XV_T_SET)) {
        *out = xv_val_incref(a[0]);
        return XV_BI_OK;
    }
    if (!XV_IS(a[0], XV_T_ARRAY))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    return xv_bi_ret(ctx, xv_val_set_from_array(a[0]), out);
}

static int cast_same(struct xv_bctx *ctx, struct xv_value *const *a, enum xv_type t,
                     struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, t))
        return XV_BI_ERROR;
    *out = xv_val_incref(a[0]);
    return XV_BI_OK;
}

BI_FN(bi_cast_string) { return cast_same(ctx, a, XV_T_STRING, out); }
BI_FN(bi_cast_boolean) { return cast_same(ctx, a, XV_T_BOOL, out); }
BI_FN(bi_cast_null) { return cast_same(ctx, a, XV_T_NULL, out); }
BI_FN(bi_cast_object) { return cast_same(ctx, a, XV_T_OBJECT, out); }

const struct xv_builtin_def xv_bi_deprecated[] = {
    {"all", 1, bi_all, 0},
    {"any", 1, bi_any, 0},
    {"set_diff", 2, bi_set_diff, 0},
    {"cast_array", 1, bi_cast_array, 0},
    {"cast_set", 1, bi_cast_set, 0},
    {"cast_string", 1, bi_cast_string, 0},
    {"cast_boolean", 1, bi_cast_boolean, 0},
    {"cast_null", 1, bi_cast_null, 0},
    {"cast_object", 1, bi_cast_object, 0},
    {NULL, 0, NULL, 0},
};
