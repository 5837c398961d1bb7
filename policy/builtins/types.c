/*
 * builtins/types.c — the type predicates is_string, is_number, is_boolean,
 * is_array, is_object, is_set, is_null, and type_name.
 *
 * Invariant: a predicate answers true or false for any value; never an error.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdlib.h>
#include <string.h>

#define OOM(ctx) xv_bi_error((ctx), "out of memory")

#define IS_FN(fname, t)                 \
    BI_FN(fname)                        \
    {                                   \
        (void)ctx;                      \
        *out = xv_val_bool(XV_IS(a[0], t)); \
        return XV_BI_OK;                \
    }
IS_FN(bi_is_string, XV_T_STRING)
IS_FN(bi_is_number, XV_T_NUMBER)
IS_FN(bi_is_boolean, XV_T_BOOL)
IS_FN(bi_is_array, XV_T_ARRAY)
IS_FN(bi_is_object, XV_T_OBJECT)
IS_FN(bi_is_set, XV_T_SET)
IS_FN(bi_is_null, XV_T_NULL)

BI_FN(bi_type_name)
{
    return xv_bi_ret(ctx, xv_val_cstring(xv_val_type_name(a[0])), out);
}

const struct xv_builtin_def xv_bi_types[] = {
    {"is_string", 1, bi_is_string, 0},
    {"is_number", 1, bi_is_number, 0},
    {"is_boolean", 1, bi_is_boolean, 0},
    {"is_array", 1, bi_is_array, 0},
    {"is_object", 1, bi_is_object, 0},
    {"is_set", 1, bi_is_set, 0},
    {"is_null", 1, bi_is_null, 0},
    {"type_name", 1, bi_type_name, 0},
    {NULL, 0, NULL, 0},
};
