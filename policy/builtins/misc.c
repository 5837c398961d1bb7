/*
 * builtins/misc.c — bits.* (arbitrary-precision integers), semver.compare,
 * semver.is_valid, rand.intn, and the builtins OPA deprecated but still
 * accepts in Rego v0 policies (all, any, set_diff, cast_*).
 *
 * Invariant: bit operations work on GMP integers (two's-complement
 * semantics for negative numbers, as Go's big.Int does), so no width limit
 * applies; rand.intn is memoised per (key, n) within one evaluation.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

/* ---- bits ---- */

static int int_operand(struct xv_bctx *ctx, struct xv_value *const *a, int pos, mpz_t out)
{
    const struct xv_value *v = a[pos - 1];
    if (!XV_IS(v, XV_T_NUMBER))
        return xv_bi_type_error(ctx, pos, "number", v);
    if (!xv_number_is_int(v))
        return xv_bi_operand_err(ctx, pos,
                                        "must be integer number but got floating-point number");
    xv_number_get_mpz(v, out);
    return 0;
}

enum bitop { B_AND, B_OR, B_XOR, B_NEG, B_LSH, B_RSH };

static int bits(struct xv_bctx *ctx, struct xv_value *const *a, enum bitop op,
                struct xv_value **out)
{
    mpz_t x, y, r;
    mpz_inits(x, y, r, NULL);
    int rc = int_operand(ctx, a, 1, x);
    if (rc == 0 && op != B_NEG)
        rc = int_operand(ctx, a, 2, y);
    if (rc == 0 && (op == B_LSH || op == B_RSH) && mpz_sgn(y) < 0)
        rc = xv_bi_operand_err(ctx, 2, "must be an unsigned integer number but got a "
                                              "negative integer");
    if (rc == 0 && (op == B_LSH) && mpz_cmp_ui(y, 1u << 20) > 0)
        rc = xv_bi_error(ctx, "shift too large");
    if (rc == 0) {
        switch (op) {
        case B_AND: mpz_and(r, x, y); break;
        case B_OR: mpz_ior(r, x, y); break;
        case B_XOR: mpz_xor(r, x, y); break;
        case B_NEG: mpz_com(r, x); break;
        case B_LSH: mpz_mul_2exp(r, x, mpz_get_ui(y)); break;
        case B_RSH:
            /* arithmetic shift: floor division, as big.Int.Rsh */
            if (mpz_fits_ulong_p(y))
                mpz_fdiv_q_2exp(r, x, mpz_get_ui(y));
            else
                mpz_set_si(r, mpz_sgn(x) < 0 ? -1 : 0);
            break;
        }
        rc = xv_bi_ret(ctx, xv_number_from_mpz(r), out);
    }
    mpz_clears(x, y, r, NULL);
    return rc;
}

BI_FN(bi_bits_and) { return bits(ctx, a, B_AND, out); }
BI_FN(bi_bits_or) { return bits(ctx, a, B_OR, out); }
BI_FN(bi_bits_xor) { return bits(ctx, a, B_XOR, out); }
BI_FN(bi_bits_negate) { return bits(ctx, a, B_NEG, out); }
BI_FN(bi_bits_lsh) { return bits(ctx, a, B_LSH, out); }
BI_FN(bi_bits_rsh) { return bits(ctx, a, B_RSH, out); }

/* ---- semver (2.0.0) ---- */

struct semver {
    const char *s;         /* the string */
    size_t n;              /* its length */
    size_t core_end;       /* end of MAJOR.MINOR.PATCH */
    size_t pre, pre_end;   /* prerelease span (pre == pre_end: none) */
    uint64_t num[3];       /* major, minor, patch (saturating) */
    size_t numoff[3], numlen[3]; /* digits, for exact comparison of long numbers */
};

static bool ident_ok(const char *p, size_t n, bool numeric_strict)
{
    if (n == 0)
        return false;
    bool all_digits = true;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return false;
        if (c < '0' || c > '9')
            all_digits = false;
    }
    return !(numeric_strict && all_digits && n > 1 && p[0] == '0');
}

static bool semver_parse(const char *s, size_t n, struct semver *v)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->n = n;
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        size_t st = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v->num[k] = v->num[k] * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        if (i == st || (i - st > 1 && s[st] == '0'))
            return false;
        v->numoff[k] = st;
        v->numlen[k] = i - st;
        if (k < 2) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    v->core_end = i;
    v->pre = v->pre_end = i;
    if (i < n && s[i] == '-') {
        v->pre = ++i;
        while (i < n && s[i] != '+')
            i++;
        v->pre_end = i;
        /* dot-separated identifiers, numeric ones without leading zeros */
        size_t p = v->pre;
        while (p <= v->pre_end) {
            const char *dot = memchr(s + p, '.', v->pre_end - p);
            size_t e = dot ? (size_t)(dot - s) : v->pre_end;
            if (!ident_ok(s + p, e - p, true))
                return false;
            p = e + 1;
        }
    }
    if (i < n && s[i] == '+') {
        size_t p = ++i;
        while (p <= n) {
            const char *dot = memchr(s + p, '.', n - p);
            size_t e = dot ? (size_t)(dot - s) : n;
            if (!ident_ok(s + p, e - p, false))
                return false;
            p = e + 1;
        }
        i = n;
    }
    return i == n;
}

static int cmp_digits(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    int c = memcmp(a, b, an);
    return c < 0 ? -1 : c > 0;
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return n > 0;
}

static int semver_cmp(const struct semver *x, const struct semver *y)
{
    for (int k = 0; k < 3; k++) {
        int c = cmp_digits(x->s + x->numoff[k], x->numlen[k], y->s + y->numoff[k], y->numlen[k]);
        if (c)
            return c;
    }
    bool xp = x->pre_end > x->pre, yp = y->pre_end > y->pre;
    if (!xp || !yp)
        return xp == yp ? 0 : (xp ? -1 : 1);
    size_t i = x->pre, j = y->pre;
    for (;;) {
        bool xe = i > x->pre_end, ye = j > y->pre_end;
        if (xe || ye)
            return xe == ye ? 0 : (xe ? -1 : 1);
        const char *xd = memchr(x->s + i, '.', x->pre_end - i);
        const char *yd = memchr(y->s + j, '.', y->pre_end - j);
        size_t xe2 = xd ? (size_t)(xd - x->s) : x->pre_end;
        size_t ye2 = yd ? (size_t)(yd - y->s) : y->pre_end;
        const char *ap = x->s + i, *bp = y->s + j;
        size_t an = xe2 - i, bn = ye2 - j;
        bool ad = all_digits(ap, an), bd = all_digits(bp, bn);
        int c;
        if (ad && bd)
            c = cmp_digits(ap, an, bp, bn);
        else if (ad || bd)
            c = ad ? -1 : 1;
        else {
            size_t m = an < bn ? an : bn;
            c = memcmp(ap, bp, m);
            c = c < 0 ? -1 : c > 0 ? 1 : (an == bn ? 0 : (an < bn ? -1 : 1));
        }
        if (c)
            return c;
        i = xe2 + 1;
        j = ye2 + 1;
    }
}

BI_FN(bi_semver_compare)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    struct semver x, y;
    if (!semver_parse(S(a[0]), SL(a[0]), &x))
        return xv_bi_error(ctx, "operand 1: string \"%.*s\" is not a valid SemVer",
                           (int)(SL(a[0]) > 100 ? 100 : SL(a[0])), S(a[0]));
    if (!semver_parse(S(a[1]), SL(a[1]), &y))
        return xv_bi_error(ctx, "operand 2: string \"%.*s\" is not a valid SemVer",
                           (int)(SL(a[1]) > 100 ? 100 : SL(a[1])), S(a[1]));
    return xv_bi_ret(ctx, xv_int(semver_cmp(&x, &y)), out);
}

BI_FN(bi_semver_is_valid)
{
    struct semver x;
    *out = xv_bool(XV_IS(a[0], XV_T_STRING) && semver_parse(S(a[0]), SL(a[0]), &x));
    return XV_BI_OK;
}

/* ---- rand.intn ---- */

BI_FN(bi_rand_intn)
{
    int64_t n;
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_int_arg(ctx, a, 2, &n))
        return XV_BI_ERROR;
    if (n == 0)
        return xv_bi_ret(ctx, xv_int(0), out);
    if (n < 0)
        n = n == INT64_MIN ? INT64_MAX : -n;
    struct xv_value *key = xv_string_fmt("rand.intn:%lld:%s", (long long)n, S(a[0]));
    if (!key)
        return xv_bi_error(ctx, "out of memory");
    struct xv_value *memo = xv_bi_ctx_memo_get(ctx, key);
    if (memo) {
        xv_decref(key);
        *out = memo;
        return XV_BI_OK;
    }
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        xv_decref(key);
        return xv_bi_error(ctx, "no random source");
    }
    struct xv_value *v = xv_int((int64_t)(r % (uint64_t)n));
    if (v)
        xv_bi_ctx_memo_put(ctx, key, v);
    xv_decref(key);
    return xv_bi_ret(ctx, v, out);
}

/* ---- deprecated builtins (still accepted in Rego v0 policies) ---- */

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
    *out = xv_bool(r);
    return XV_BI_OK;
}

BI_FN(bi_all) { return all_any(ctx, a, true, out); }
BI_FN(bi_any) { return all_any(ctx, a, false, out); }

BI_FN(bi_set_diff)
{
    if (xv_bi_want(ctx, a, 1, XV_T_SET) || xv_bi_want(ctx, a, 2, XV_T_SET))
        return XV_BI_ERROR;
    struct xv_value *r = xv_set_new(XV_SET_LEN(a[0]));
    for (size_t i = 0; r && i < XV_SET_LEN(a[0]); i++)
        if (xv_set_find(a[1], XV_SET_ITEM(a[0], i)) < 0 && xv_set_add(r, XV_SET_ITEM(a[0], i))) {
            xv_decref(r);
            r = NULL;
        }
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_cast_array)
{
    if (XV_IS(a[0], XV_T_ARRAY)) {
        *out = xv_incref(a[0]);
        return XV_BI_OK;
    }
    if (!XV_IS(a[0], XV_T_SET))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    struct xv_value *r = xv_array_new(XV_SET_LEN(a[0]));
    for (size_t i = 0; r && i < XV_SET_LEN(a[0]); i++)
        if (xv_array_push(r, XV_SET_ITEM(a[0], i))) {
            xv_decref(r);
            r = NULL;
        }
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_cast_set)
{
    if (XV_IS(a[0], XV_T_SET)) {
        *out = xv_incref(a[0]);
        return XV_BI_OK;
    }
    if (!XV_IS(a[0], XV_T_ARRAY))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", a[0]);
    return xv_bi_ret(ctx, xv_set_from_array(a[0]), out);
}

static int cast_same(struct xv_bctx *ctx, struct xv_value *const *a, enum xv_type t,
                     struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, t))
        return XV_BI_ERROR;
    *out = xv_incref(a[0]);
    return XV_BI_OK;
}

BI_FN(bi_cast_string) { return cast_same(ctx, a, XV_T_STRING, out); }
BI_FN(bi_cast_boolean) { return cast_same(ctx, a, XV_T_BOOL, out); }
BI_FN(bi_cast_null) { return cast_same(ctx, a, XV_T_NULL, out); }
BI_FN(bi_cast_object) { return cast_same(ctx, a, XV_T_OBJECT, out); }

const struct xv_builtin_def xv_bi_misc[] = {
    {"all", 1, bi_all, 0},
    {"any", 1, bi_any, 0},
    {"set_diff", 2, bi_set_diff, 0},
    {"cast_array", 1, bi_cast_array, 0},
    {"cast_set", 1, bi_cast_set, 0},
    {"cast_string", 1, bi_cast_string, 0},
    {"cast_boolean", 1, bi_cast_boolean, 0},
    {"cast_null", 1, bi_cast_null, 0},
    {"cast_object", 1, bi_cast_object, 0},
    {"bits.and", 2, bi_bits_and, 0},
    {"bits.or", 2, bi_bits_or, 0},
    {"bits.xor", 2, bi_bits_xor, 0},
    {"bits.negate", 1, bi_bits_negate, 0},
    {"bits.lsh", 2, bi_bits_lsh, 0},
    {"bits.rsh", 2, bi_bits_rsh, 0},
    {"semver.compare", 2, bi_semver_compare, 0},
    {"semver.is_valid", 1, bi_semver_is_valid, 0},
    {"rand.intn", 2, bi_rand_intn, XV_BIF_NONDET},
    {NULL, 0, NULL, 0},
};
