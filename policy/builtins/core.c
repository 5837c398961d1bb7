/*
 * builtins/core.c — the builtins without a namespace, which Rego's
 * operators compile to: arithmetic and comparison operators, set operators,
 * aggregates (count, sum, product, max, min, sort), walk, print, membership
 * (internal.member_2/3), opa.runtime and test.sleep.
 *
 * Invariant: operands are borrowed; numbers stay exact (value/number.c).
 * Thread safety: all functions are reentrant.
 */
#include "builtins/context.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arithmetic ---- */

static int want_num2(struct xv_bctx *ctx, struct xv_value *const *a)
{
    if (xv_bi_want(ctx, a, 1, XV_T_NUMBER) || xv_bi_want(ctx, a, 2, XV_T_NUMBER))
        return XV_BI_ERROR;
    return 0;
}

static int bi_plus(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (want_num2(ctx, a))
        return XV_BI_ERROR;
    *out = xv_val_num_add(a[0], a[1]);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

static int bi_mul(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (want_num2(ctx, a))
        return XV_BI_ERROR;
    *out = xv_val_num_mul(a[0], a[1]);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

static int bi_div(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (want_num2(ctx, a))
        return XV_BI_ERROR;
    *out = xv_val_num_div(a[0], a[1]);
    return *out ? XV_BI_OK : xv_bi_error(ctx, "divide by zero");
}

static int bi_rem(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (want_num2(ctx, a))
        return XV_BI_ERROR;
    if (!xv_val_number_is_int(a[0]) || !xv_val_number_is_int(a[1]))
        return xv_bi_error(ctx, "modulo on floating-point number");
    *out = xv_val_num_rem(a[0], a[1]);
    return *out ? XV_BI_OK : xv_bi_error(ctx, "modulo by zero");
}

/* Set difference, intersection and union share this loop. op: 0 minus, 1 and, 2 or */
static struct xv_value *set_op(const struct xv_value *x, const struct xv_value *y, int op)
{
    struct xv_value *r = op == 2 ? xv_val_copy(x) : xv_val_set_new(0);
    if (!r)
        return NULL;
    if (op == 2) {
        for (size_t i = 0; i < XV_SET_LEN(y); i++)
            xv_val_set_add(r, XV_SET_ITEM(y, i));
        return r;
    }
    for (size_t i = 0; i < XV_SET_LEN(x); i++) {
        int in = xv_val_set_contains(y, XV_SET_ITEM(x, i));
        if ((op == 0 && !in) || (op == 1 && in))
            xv_val_set_add(r, XV_SET_ITEM(x, i));
    }
    return r;
}

static int bi_minus(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (a[0]->type == XV_T_NUMBER) {
        if (xv_bi_want(ctx, a, 2, XV_T_NUMBER))
            return XV_BI_ERROR;
        *out = xv_val_num_sub(a[0], a[1]);
        return *out ? XV_BI_OK : XV_BI_ERROR;
    }
    if (a[0]->type == XV_T_SET) {
        if (xv_bi_want(ctx, a, 2, XV_T_SET))
            return XV_BI_ERROR;
        *out = set_op(a[0], a[1], 0);
        return *out ? XV_BI_OK : XV_BI_ERROR;
    }
    return xv_bi_type_error(ctx, 1, "one of {number, set}", a[0]);
}

static int bi_and(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET) || xv_bi_want(ctx, a, 2, XV_T_SET))
        return XV_BI_ERROR;
    *out = set_op(a[0], a[1], 1);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

static int bi_or(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET) || xv_bi_want(ctx, a, 2, XV_T_SET))
        return XV_BI_ERROR;
    *out = set_op(a[0], a[1], 2);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

/* ---- comparisons (any types, canonical order) ---- */

#define CMP_BI(fname, expr)                                                                    \
    static int fname(struct xv_bctx *ctx, struct xv_value *const *a, int n,                    \
                     struct xv_value **out)                                                    \
    {                                                                                          \
        int c = xv_val_compare(a[0], a[1]);                                                        \
        *out = xv_val_bool(expr);                                                                  \
        return XV_BI_OK;                                                                       \
    }
/* == and != need no order: xv_val_equal answers most unequal strings from
 * their lengths alone. */
static int bi_equal(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    *out = xv_val_bool(xv_val_equal(a[0], a[1]));
    return XV_BI_OK;
}
static int bi_neq(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    *out = xv_val_bool(!xv_val_equal(a[0], a[1]));
    return XV_BI_OK;
}
CMP_BI(bi_lt, c < 0)
CMP_BI(bi_lte, c <= 0)
CMP_BI(bi_gt, c > 0)
CMP_BI(bi_gte, c >= 0)

/* ---- aggregates ---- */

static int bi_count(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    switch (a[0]->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
        *out = xv_val_int((int64_t)XV_ARR_LEN(a[0]));
        break;
    case XV_T_OBJECT:
        *out = xv_val_int((int64_t)XV_OBJ_LEN(a[0]));
        break;
    case XV_T_STRING:
        *out = xv_val_int((int64_t)xv_val_string_cp_count(a[0]));
        break;
    default:
        return xv_bi_type_error(ctx, 1, "one of {array, object, set, string}", a[0]);
    }
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

static int sum_prod(struct xv_bctx *ctx, struct xv_value *const *a, struct xv_value **out, int prod)
{
    if (a[0]->type != XV_T_ARRAY && a[0]->type != XV_T_SET)
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    struct xv_value *acc = xv_val_int(prod ? 1 : 0);
    for (size_t i = 0; acc && i < XV_ARR_LEN(a[0]); i++) {
        struct xv_value *e = XV_ARR_ITEM(a[0], i);
        if (e->type != XV_T_NUMBER) {
            xv_val_decref(acc);
            return xv_bi_type_error(ctx, 1, "any<array[number], set[number]>", a[0]);
        }
        struct xv_value *nx = prod ? xv_val_num_mul(acc, e) : xv_val_num_add(acc, e);
        xv_val_decref(acc);
        acc = nx;
    }
    *out = acc;
    return acc ? XV_BI_OK : XV_BI_ERROR;
}

static int bi_sum(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    return sum_prod(ctx, a, out, 0);
}

static int bi_product(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    return sum_prod(ctx, a, out, 1);
}

static int minmax(struct xv_bctx *ctx, struct xv_value *const *a, struct xv_value **out, int mx)
{
    if (a[0]->type != XV_T_ARRAY && a[0]->type != XV_T_SET)
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    if (XV_ARR_LEN(a[0]) == 0)
        return XV_BI_UNDEFINED;
    struct xv_value *best = XV_ARR_ITEM(a[0], 0);
    for (size_t i = 1; i < XV_ARR_LEN(a[0]); i++) {
        int c = xv_val_compare(XV_ARR_ITEM(a[0], i), best);
        if (mx ? c > 0 : c < 0)
            best = XV_ARR_ITEM(a[0], i);
    }
    *out = xv_val_incref(best);
    return XV_BI_OK;
}

static int bi_max(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    return minmax(ctx, a, out, 1);
}

static int bi_min(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    return minmax(ctx, a, out, 0);
}

static int bi_sort(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (a[0]->type != XV_T_ARRAY && a[0]->type != XV_T_SET)
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    struct xv_value *r;
    if (a[0]->type == XV_T_SET) {
        r = xv_val_copy(a[0]);
        if (r)
            r->type = XV_T_ARRAY;
    } else {
        /* Stable insertion into a sorted copy keeps duplicates. */
        r = xv_val_copy(a[0]);
        if (r && XV_ARR_LEN(r) > 1) {
            for (size_t i = 1; i < XV_ARR_LEN(r); i++) {
                struct xv_value *x = XV_ARR_ITEM(r, i);
                size_t j = i;
                while (j > 0 && xv_val_compare(XV_ARR_ITEM(r, j - 1), x) > 0) {
                    XV_ARR_ITEM(r, j) = XV_ARR_ITEM(r, j - 1);
                    j--;
                }
                XV_ARR_ITEM(r, j) = x;
            }
        }
    }
    *out = r;
    return r ? XV_BI_OK : XV_BI_ERROR;
}

/* walk(x) is a relation: it returns every [path, value] pair; the evaluator
 * iterates over the array this returns (XV_BIF_RELATION). */
static int walk_rec(struct xv_value *acc, struct xv_value *path, struct xv_value *v)
{
    struct xv_value *pair = xv_val_array_new(2);
    if (!pair)
        return XV_E_NOMEM;
    struct xv_value *pc = xv_val_copy(path);
    xv_val_array_push(pair, pc);
    xv_val_array_push(pair, v);
    xv_val_array_push(acc, pair);
    xv_val_decref(pair);
    int rc = 0;
    size_t i;
    switch (v->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
    case XV_T_OBJECT: {
        size_t len = v->type == XV_T_OBJECT ? XV_OBJ_LEN(v) : XV_ARR_LEN(v);
        for (i = 0; i < len && !rc; i++) {
            struct xv_value *key, *child;
            if (v->type == XV_T_ARRAY) {
                key = xv_val_int((int64_t)i);
                child = XV_ARR_ITEM(v, i);
            } else if (v->type == XV_T_SET) {
                key = xv_val_incref(XV_SET_ITEM(v, i));
                child = XV_SET_ITEM(v, i);
            } else {
                key = xv_val_incref(XV_OBJ_KEY(v, i));
                child = XV_OBJ_VAL(v, i);
            }
            struct xv_value *np = xv_val_copy(pc);
            xv_val_array_push(np, key);
            rc = walk_rec(acc, np, child);
            xv_val_decref(np);
            xv_val_decref(key);
        }
        break;
    }
    default:
        break;
    }
    xv_val_decref(pc);
    return rc;
}

static int bi_walk(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    struct xv_value *acc = xv_val_array_new(8), *path = xv_val_array_new(0);
    if (!acc || !path || walk_rec(acc, path, a[0])) {
        xv_val_decref(acc);
        xv_val_decref(path);
        return XV_BI_ERROR;
    }
    xv_val_decref(path);
    *out = acc;
    return XV_BI_OK;
}

static int bi_print(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    *out = xv_val_bool(1);
    return XV_BI_OK;
}

/* opa.runtime(): the runtime's configuration; an embedded evaluator has none. */
static int bi_opa_runtime(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    *out = xv_val_object_new(0);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

/* test.sleep("10ms"): OPA's test runner registers it (the conformance case
 * time/time caching needs it); sleeps at most one second. */
static int bi_test_sleep(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char *end = NULL;
    double q = strtod(XV_STR(a[0]), &end);
    static const struct { const char *u; double ns; } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
    };
    double ns = -1;
    for (size_t i = 0; end && i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].u))
            ns = q * units[i].ns;
    if (ns < 0)
        return xv_bi_error(ctx, "time: invalid duration \"%s\"", XV_STR(a[0]));
    if (ns > 1e9)
        ns = 1e9;
    struct timespec ts = {(time_t)(ns / 1e9), (long)((int64_t)ns % 1000000000)};
    nanosleep(&ts, NULL);
    *out = xv_val_null();
    return XV_BI_OK;
}

/* internal.member_2(x, coll): x in coll (values of arrays/sets/objects). */
static int bi_member2(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    const struct xv_value *c = a[1];
    int found = 0;
    size_t i;
    if (c->type == XV_T_SET) {
        found = xv_val_set_contains(c, a[0]);
    } else if (c->type == XV_T_ARRAY) {
        for (i = 0; i < XV_ARR_LEN(c) && !found; i++)
            found = xv_val_equal(XV_ARR_ITEM(c, i), a[0]);
    } else if (c->type == XV_T_OBJECT) {
        for (i = 0; i < XV_OBJ_LEN(c) && !found; i++)
            found = xv_val_equal(XV_OBJ_VAL(c, i), a[0]);
    }
    *out = xv_val_bool(found);
    return XV_BI_OK;
}

/* internal.member_3(k, v, coll): coll[k] == v. */
static int bi_member3(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    const struct xv_value *c = a[2];
    int found = 0;
    if (c->type == XV_T_OBJECT) {
        long i = xv_val_object_find(c, a[0]);
        found = i >= 0 && xv_val_equal(XV_OBJ_VAL(c, i), a[1]);
    } else if (c->type == XV_T_ARRAY && a[0]->type == XV_T_NUMBER) {
        int64_t k;
        if (!xv_val_number_get_int64(a[0], &k) && k >= 0 && (size_t)k < XV_ARR_LEN(c))
            found = xv_val_equal(XV_ARR_ITEM(c, k), a[1]);
    } else if (c->type == XV_T_SET) {
        found = xv_val_equal(a[0], a[1]) && xv_val_set_contains(c, a[0]);
    }
    *out = xv_val_bool(found);
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_core[] = {
    {"plus", 2, bi_plus, 0},
    {"minus", 2, bi_minus, 0},
    {"mul", 2, bi_mul, 0},
    {"div", 2, bi_div, 0},
    {"rem", 2, bi_rem, 0},
    {"and", 2, bi_and, 0},
    {"or", 2, bi_or, 0},
    {"equal", 2, bi_equal, 0},
    {"neq", 2, bi_neq, 0},
    {"lt", 2, bi_lt, 0},
    {"lte", 2, bi_lte, 0},
    {"gt", 2, bi_gt, 0},
    {"gte", 2, bi_gte, 0},
    {"count", 1, bi_count, 0},
    {"sum", 1, bi_sum, 0},
    {"product", 1, bi_product, 0},
    {"max", 1, bi_max, 0},
    {"min", 1, bi_min, 0},
    {"sort", 1, bi_sort, 0},
    {"walk", 1, bi_walk, XV_BIF_RELATION},
    {"print", -1, bi_print, 0},
    {"opa.runtime", 0, bi_opa_runtime, 0},
    {"test.sleep", 1, bi_test_sleep, 0},
    {"internal.print", 1, bi_print, 0},
    {"internal.member_2", 2, bi_member2, 0},
    {"internal.member_3", 3, bi_member3, 0},
    {NULL, 0, NULL, 0},
};
