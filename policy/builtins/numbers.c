/*
 * builtins/numbers.c — the number builtins outside the evaluator's
 * arithmetic: abs, round, ceil, floor, format_int, to_number,
 * numbers.range and numbers.range_step.
 *
 * Invariant: numbers stay exact (value/number.c); a range is bounded before
 * it is built, so a policy cannot ask for an unbounded array.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int num_unary(struct xv_bctx *ctx, struct xv_value *const *a,
                     struct xv_value *(*f)(const struct xv_value *), struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_NUMBER))
        return XV_BI_ERROR;
    return xv_bi_ret(ctx, f(a[0]), out);
}

BI_FN(bi_abs) { return num_unary(ctx, a, xv_val_num_abs, out); }
BI_FN(bi_round) { return num_unary(ctx, a, xv_val_num_round, out); }
BI_FN(bi_ceil) { return num_unary(ctx, a, xv_val_num_ceil, out); }
BI_FN(bi_floor) { return num_unary(ctx, a, xv_val_num_floor, out); }

BI_FN(bi_format_int)
{
    int64_t base;
    if (xv_bi_want(ctx, a, 1, XV_T_NUMBER) || xv_bi_int_arg(ctx, a, 2, &base))
        return XV_BI_ERROR;
    if (base != 2 && base != 8 && base != 10 && base != 16)
        return xv_bi_operand_err(ctx, 2, "must be one of {2, 8, 10, 16}");
    mpz_t z;
    mpz_init(z);
    xv_val_number_get_mpz(a[0], z);   /* truncates toward zero, like big.Float.Int */
    char *s = mpz_get_str(NULL, (int)base, z);
    mpz_clear(z);
    return xv_bi_ret_owned(ctx, s, s ? strlen(s) : 0, out);
}

BI_FN(bi_to_number)
{
    const struct xv_value *v = a[0];
    switch (XV_TYPE(v)) {
    case XV_T_NULL:
        return xv_bi_ret(ctx, xv_val_int(0), out);
    case XV_T_BOOL:
        return xv_bi_ret(ctx, xv_val_int(XV_BOOLV(v) ? 1 : 0), out);
    case XV_T_NUMBER:
        *out = xv_val_incref((struct xv_value *)v);
        return XV_BI_OK;
    case XV_T_STRING: {
        const char *s = S(v);
        size_t n = SL(v);
        /* Go's ParseFloat accepts inf/infinity/nan; OPA rejects them as a
         * type error. */
        size_t k = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
        if ((n - k == 3 && (strncasecmp(s + k, "inf", 3) == 0 || strncasecmp(s + k, "nan", 3) == 0)) ||
            (n - k == 8 && strncasecmp(s + k, "infinity", 8) == 0))
            return xv_bi_type_error(ctx, 1, "valid number string", v);
        struct xv_value *num = NULL;
        bool ok = n > 0 && n < 4096;
        for (size_t i = 0; ok && i < n; i++)
            ok = strchr("0123456789+-.eE", s[i]) != NULL && s[i] != '\0';
        if (ok)
            num = xv_val_number_parse(s, n);
        if (!num)
            return xv_bi_error(ctx, "strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                               (int)(n > 200 ? 200 : n), s);
        *out = num;
        return XV_BI_OK;
    }
    default:
        return xv_bi_type_error(ctx, 1, "one of {null, boolean, number, string}", v);
    }
}

static int range_common(struct xv_bctx *ctx, int64_t lo, int64_t hi, int64_t step,
                        struct xv_value **out)
{
    uint64_t span = lo <= hi ? (uint64_t)(hi - lo) : (uint64_t)(lo - hi);
    /* At most 2^20 elements, as net.cidr_expand: the step budget does not
     * see a builtin's own work, and the old bound (10^8 elements, ~5 GB)
     * let numbers.range(1, 77777777) take the host's memory (fuzz_rego,
     * corpus/rego/oom-numbers-range). OPA has no bound. */
    if (span / (uint64_t)step >= (1u << 20))
        return xv_bi_error(ctx, "range too large");
    struct xv_value *arr = xv_val_array_new((size_t)(span / (uint64_t)step) + 1);
    if (!arr)
        return xv_bi_error(ctx, "out of memory");
    for (uint64_t k = 0;; k += (uint64_t)step) {
        int64_t v = lo <= hi ? lo + (int64_t)k : lo - (int64_t)k;
        struct xv_value *e = xv_val_int(v);
        if (!e || xv_val_array_push(arr, e)) {
            xv_val_decref(e);
            xv_val_decref(arr);
            return xv_bi_error(ctx, "out of memory");
        }
        xv_val_decref(e);
        if (span - k < (uint64_t)step)
            break;   /* the next step would pass hi (or wrap) */
    }
    *out = arr;
    return XV_BI_OK;
}

BI_FN(bi_numbers_range)
{
    int64_t lo, hi;
    if (xv_bi_int_arg(ctx, a, 1, &lo) || xv_bi_int_arg(ctx, a, 2, &hi))
        return XV_BI_ERROR;
    return range_common(ctx, lo, hi, 1, out);
}

BI_FN(bi_numbers_range_step)
{
    int64_t lo, hi, step;
    if (xv_bi_int_arg(ctx, a, 1, &lo) || xv_bi_int_arg(ctx, a, 2, &hi))
        return XV_BI_ERROR;
    /* a step beyond int64 is legal (OPA uses big integers): one element */
    if (XV_IS(a[2], XV_T_NUMBER) && xv_val_number_is_int(a[2]) &&
        xv_val_number_get_int64(a[2], &step) != 0) {
        mpz_t z;
        mpz_init(z);
        xv_val_number_get_mpz(a[2], z);
        int sign = mpz_sgn(z);
        mpz_clear(z);
        if (sign <= 0)
            return xv_bi_error(ctx, "step must be a positive integer");
        step = INT64_MAX;
    } else if (xv_bi_int_arg(ctx, a, 3, &step)) {
        return XV_BI_ERROR;
    }
    if (step <= 0)
        return xv_bi_error(ctx, "step must be a positive integer");
    return range_common(ctx, lo, hi, step, out);
}

const struct xv_builtin_def xv_bi_numbers[] = {
    {"abs", 1, bi_abs, 0},
    {"round", 1, bi_round, 0},
    {"ceil", 1, bi_ceil, 0},
    {"floor", 1, bi_floor, 0},
    {"format_int", 2, bi_format_int, 0},
    {"to_number", 1, bi_to_number, 0},
    {"numbers.range", 2, bi_numbers_range, 0},
    {"numbers.range_step", 3, bi_numbers_range_step, 0},
    {NULL, 0, NULL, 0},
};
