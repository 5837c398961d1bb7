/*
 * builtins/semver.c — semver.compare and semver.is_valid (Semantic
 * Versioning 2.0.0: precedence with pre-release identifiers, build metadata
 * ignored).
 *
 * Invariant: a version is validated before it is compared; invalid operands
 * are OPA's errors.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

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
    return xv_bi_ret(ctx, xv_val_int(semver_cmp(&x, &y)), out);
}

BI_FN(bi_semver_is_valid)
{
    struct semver x;
    *out = xv_val_bool(XV_IS(a[0], XV_T_STRING) && semver_parse(S(a[0]), SL(a[0]), &x));
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_semver[] = {
    {"semver.compare", 2, bi_semver_compare, 0},
    {"semver.is_valid", 1, bi_semver_is_valid, 0},
    {NULL, 0, NULL, 0},
};
