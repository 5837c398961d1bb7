/*
 * builtins/rand.c — rand.intn: a random integer in [0, n), the same for the
 * same (key, n) within one evaluation, as OPA memoises it.
 *
 * Invariant: memoised through the builtin context, so one evaluation sees
 * one value per (key, n).
 * Thread safety: reentrant; reads the kernel's random source.
 */
#include "builtins/helpers.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

BI_FN(bi_rand_intn)
{
    int64_t n;
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_int_arg(ctx, a, 2, &n))
        return XV_BI_ERROR;
    if (n == 0)
        return xv_bi_ret(ctx, xv_val_int(0), out);
    if (n < 0)
        n = n == INT64_MIN ? INT64_MAX : -n;
    struct xv_value *key = xv_val_string_fmt("rand.intn:%lld:%s", (long long)n, S(a[0]));
    if (!key)
        return xv_bi_error(ctx, "out of memory");
    struct xv_value *memo = xv_bi_ctx_memo_get(ctx, key);
    if (memo) {
        xv_val_decref(key);
        *out = memo;
        return XV_BI_OK;
    }
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        xv_val_decref(key);
        return xv_bi_error(ctx, "no random source");
    }
    struct xv_value *v = xv_val_int((int64_t)(r % (uint64_t)n));
    if (v)
        xv_bi_ctx_memo_put(ctx, key, v);
    xv_val_decref(key);
    return xv_bi_ret(ctx, v, out);
}

const struct xv_builtin_def xv_bi_rand[] = {
    {"rand.intn", 2, bi_rand_intn, XV_BIF_NONDET},
    {NULL, 0, NULL, 0},
};
