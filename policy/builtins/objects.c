/*
 * builtins/objects.c — object.* (array.*, union/intersection and the type
 * builtins are builtins/array.c, sets.c and types.c).
 *
 * Invariant: inputs are never modified; results are fresh containers that
 * share unchanged elements by reference (xv_value.h's rule).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdlib.h>
#include <string.h>

#define OOM(ctx) xv_bi_error((ctx), "out of memory")

/* ---- objects ---- */

/* Value at path inside v (OPA's Value.Find): objects by key, arrays by
 * integer index, sets by membership. Borrowed result or NULL. */
static const struct xv_value *find_path(const struct xv_value *v, struct xv_value *const *path,
                                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct xv_value *k = path[i];
        switch (XV_TYPE(v)) {
        case XV_T_OBJECT: {
            long at = xv_val_object_find(v, k);
            if (at < 0)
                return NULL;
            v = XV_OBJ_VAL(v, at);
            break;
        }
        case XV_T_ARRAY: {
            int64_t idx;
            if (!XV_IS(k, XV_T_NUMBER) || xv_val_number_get_int64(k, &idx) != 0 || idx < 0 ||
                (size_t)idx >= XV_ARR_LEN(v))
                return NULL;
            v = XV_ARR_ITEM(v, idx);
            break;
        }
        case XV_T_SET: {
            long at = xv_val_set_find(v, k);
            if (at < 0)
                return NULL;
            v = XV_SET_ITEM(v, at);
            break;
        }
        default:
            return NULL;
        }
    }
    return v;
}

BI_FN(bi_object_get)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    const struct xv_value *r;
    if (XV_IS(a[1], XV_T_ARRAY)) {
        r = find_path(a[0], a[1]->u.arr.items, XV_ARR_LEN(a[1]));
    } else {
        long at = xv_val_object_find(a[0], a[1]);
        r = at < 0 ? NULL : XV_OBJ_VAL(a[0], at);
    }
    *out = xv_val_incref((struct xv_value *)(r ? r : a[2]));
    return XV_BI_OK;
}

BI_FN(bi_object_keys)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct xv_value *s = xv_val_set_new(XV_OBJ_LEN(a[0]));
    if (!s)
        return OOM(ctx);
    for (size_t i = 0; i < XV_OBJ_LEN(a[0]); i++)
        if (xv_val_set_add(s, XV_OBJ_KEY(a[0], i))) {
            xv_val_decref(s);
            return OOM(ctx);
        }
    *out = s;
    return XV_BI_OK;
}

/* Deep merge: b wins, objects on both sides merge recursively. */
static struct xv_value *merge(const struct xv_value *x, const struct xv_value *y)
{
    if (!XV_IS(x, XV_T_OBJECT) || !XV_IS(y, XV_T_OBJECT))
        return xv_val_incref((struct xv_value *)y);
    struct xv_value *r = xv_val_copy(x);
    if (!r)
        return NULL;
    for (size_t i = 0; i < XV_OBJ_LEN(y); i++) {
        struct xv_value *k = XV_OBJ_KEY(y, i), *v = XV_OBJ_VAL(y, i);
        long at = xv_val_object_find(x, k);
        struct xv_value *m = at >= 0 ? merge(XV_OBJ_VAL(x, at), v) : xv_val_incref(v);
        if (!m || xv_val_object_set(r, k, m)) {
            xv_val_decref(m);
            xv_val_decref(r);
            return NULL;
        }
        xv_val_decref(m);
    }
    return r;
}

BI_FN(bi_object_union)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT) || xv_bi_want(ctx, a, 2, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct xv_value *r = merge(a[0], a[1]);
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_object_union_n)
{
    if (xv_bi_want(ctx, a, 1, XV_T_ARRAY))
        return XV_BI_ERROR;
    for (size_t i = 0; i < XV_ARR_LEN(a[0]); i++)
        if (!XV_IS(XV_ARR_ITEM(a[0], i), XV_T_OBJECT))
            return xv_bi_elem_err(ctx, 1, a[0], XV_ARR_ITEM(a[0], i), "object");
    struct xv_value *r = xv_val_object_new(0);
    for (size_t i = 0; r && i < XV_ARR_LEN(a[0]); i++) {
        struct xv_value *m = merge(r, XV_ARR_ITEM(a[0], i));
        xv_val_decref(r);
        r = m;
    }
    return xv_bi_ret(ctx, r, out);
}

/* Keys named by an object (its keys), set or array (its elements). */
static int key_collection(struct xv_bctx *ctx, const struct xv_value *k)
{
    if (XV_IS(k, XV_T_OBJECT) || XV_IS(k, XV_T_SET) || XV_IS(k, XV_T_ARRAY))
        return 0;
    return xv_bi_type_error(ctx, 2, "one of {object, set, array}", k);
}

static bool key_named(const struct xv_value *keys, const struct xv_value *k)
{
    switch (XV_TYPE(keys)) {
    case XV_T_OBJECT:
        return xv_val_object_find(keys, k) >= 0;
    case XV_T_SET:
        return xv_val_set_find(keys, k) >= 0;
    default:
        for (size_t i = 0; i < XV_ARR_LEN(keys); i++)
            if (xv_val_equal(XV_ARR_ITEM(keys, i), k))
                return true;
        return false;
    }
}

static int filter_keys(struct xv_bctx *ctx, struct xv_value *const *a, bool keep,
                       struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT) || key_collection(ctx, a[1]))
        return XV_BI_ERROR;
    struct xv_value *r = xv_val_object_new(XV_OBJ_LEN(a[0]));
    if (!r)
        return OOM(ctx);
    for (size_t i = 0; i < XV_OBJ_LEN(a[0]); i++) {
        struct xv_value *k = XV_OBJ_KEY(a[0], i);
        if (key_named(a[1], k) == keep && xv_val_object_set(r, k, XV_OBJ_VAL(a[0], i))) {
            xv_val_decref(r);
            return OOM(ctx);
        }
    }
    *out = r;
    return XV_BI_OK;
}

BI_FN(bi_object_filter) { return filter_keys(ctx, a, true, out); }
BI_FN(bi_object_remove) { return filter_keys(ctx, a, false, out); }

static bool is_subset(const struct xv_value *sup, const struct xv_value *sub)
{
    switch (XV_TYPE(sup)) {
    case XV_T_OBJECT:
        if (!XV_IS(sub, XV_T_OBJECT))
            return false;
        for (size_t i = 0; i < XV_OBJ_LEN(sub); i++) {
            long at = xv_val_object_find(sup, XV_OBJ_KEY(sub, i));
            if (at < 0 || !is_subset(XV_OBJ_VAL(sup, at), XV_OBJ_VAL(sub, i)))
                return false;
        }
        return true;
    case XV_T_SET:
        if (!XV_IS(sub, XV_T_SET))
            return false;
        for (size_t i = 0; i < XV_SET_LEN(sub); i++)
            if (xv_val_set_find(sup, XV_SET_ITEM(sub, i)) < 0)
                return false;
        return true;
    case XV_T_ARRAY:
        if (XV_IS(sub, XV_T_SET)) {
            for (size_t i = 0; i < XV_SET_LEN(sub); i++) {
                bool found = false;
                for (size_t j = 0; j < XV_ARR_LEN(sup) && !found; j++)
                    found = xv_val_equal(XV_ARR_ITEM(sup, j), XV_SET_ITEM(sub, i));
                if (!found)
                    return false;
            }
            return true;
        }
        if (!XV_IS(sub, XV_T_ARRAY))
            return false;
        /* a contiguous run of sup */
        if (XV_ARR_LEN(sub) == 0)
            return true;
        for (size_t st = 0; st + XV_ARR_LEN(sub) <= XV_ARR_LEN(sup); st++) {
            size_t k = 0;
            while (k < XV_ARR_LEN(sub) && xv_val_equal(XV_ARR_ITEM(sup, st + k), XV_ARR_ITEM(sub, k)))
                k++;
            if (k == XV_ARR_LEN(sub))
                return true;
        }
        return false;
    default:
        return xv_val_equal(sup, sub);
    }
}

BI_FN(bi_object_subset)
{
    for (int i = 0; i < 2; i++)
        if (!XV_IS(a[i], XV_T_OBJECT) && !XV_IS(a[i], XV_T_SET) && !XV_IS(a[i], XV_T_ARRAY))
            return xv_bi_type_error(ctx, i + 1, "one of {object, set, array}", a[i]);
    if (XV_IS(a[0], XV_T_OBJECT) && !XV_IS(a[1], XV_T_OBJECT))
        return xv_bi_type_error(ctx, 2, "object", a[1]);
    if (XV_IS(a[0], XV_T_SET) && !XV_IS(a[1], XV_T_SET))
        return xv_bi_type_error(ctx, 2, "set", a[1]);
    if (XV_IS(a[0], XV_T_ARRAY) && XV_IS(a[1], XV_T_OBJECT))
        return xv_bi_type_error(ctx, 2, "one of {array, set}", a[1]);
    *out = xv_val_bool(is_subset(a[0], a[1]));
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_objects[] = {
    {"object.get", 3, bi_object_get, 0},
    {"object.keys", 1, bi_object_keys, 0},
    {"object.union", 2, bi_object_union, 0},
    {"object.union_n", 1, bi_object_union_n, 0},
    {"object.filter", 2, bi_object_filter, 0},
    {"object.remove", 2, bi_object_remove, 0},
    {"object.subset", 2, bi_object_subset, 0},
    {NULL, 0, NULL, 0},
};
