/*
 * builtins/sets.c — union and intersection of a set of sets (the operators
 * | and & are builtins/core.c's).
 *
 * Invariant: results are new sets in canonical order.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdlib.h>
#include <string.h>

#define OOM(ctx) xv_bi_error((ctx), "out of memory")

BI_FN(bi_union)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET))
        return XV_BI_ERROR;
    for (size_t i = 0; i < XV_SET_LEN(a[0]); i++)
        if (!XV_IS(XV_SET_ITEM(a[0], i), XV_T_SET))
            return xv_bi_type_error(ctx, 1, "set", XV_SET_ITEM(a[0], i));
    struct xv_value *r = xv_val_set_new(0);
    if (!r)
        return OOM(ctx);
    for (size_t i = 0; i < XV_SET_LEN(a[0]); i++) {
        const struct xv_value *s = XV_SET_ITEM(a[0], i);
        for (size_t j = 0; j < XV_SET_LEN(s); j++)
            if (xv_val_set_add(r, XV_SET_ITEM(s, j))) {
                xv_val_decref(r);
                return OOM(ctx);
            }
    }
    *out = r;
    return XV_BI_OK;
}

BI_FN(bi_intersection)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET))
        return XV_BI_ERROR;
    size_t n = XV_SET_LEN(a[0]);
    for (size_t i = 0; i < n; i++)
        if (!XV_IS(XV_SET_ITEM(a[0], i), XV_T_SET))
            return xv_bi_type_error(ctx, 1, "set", XV_SET_ITEM(a[0], i));
    struct xv_value *r = xv_val_set_new(0);
    if (!r)
        return OOM(ctx);
    if (n > 0) {
        const struct xv_value *first = XV_SET_ITEM(a[0], 0);
        for (size_t j = 0; j < XV_SET_LEN(first); j++) {
            const struct xv_value *e = XV_SET_ITEM(first, j);
            bool all = true;
            for (size_t i = 1; i < n && all; i++)
                all = xv_val_set_find(XV_SET_ITEM(a[0], i), e) >= 0;
            if (all && xv_val_set_add(r, (struct xv_value *)e)) {
                xv_val_decref(r);
                return OOM(ctx);
            }
        }
    }
    *out = r;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_sets[] = {
    {"union", 1, bi_union, 0},
    {"intersection", 1, bi_intersection, 0},
    {NULL, 0, NULL, 0},
};
