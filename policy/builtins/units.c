/*
 * builtins/units.c — units.parse (SI and IEC suffixes, milli) and
 * units.parse_bytes (byte sizes), exact over rationals as OPA computes them
 * with big.Rat.
 *
 * Invariant: the amount is a decimal number with an optional exponent
 * ("1e3", "-3.5E2"); an 'e' only belongs to the amount when a digit (after
 * an optional sign) follows it, otherwise it starts the unit (exa).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

/* Split s into amount and unit; returns the amount length. */
static size_t split_amount(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
        i++;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '-' || s[j] == '+'))
            j++;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            while (j < n && s[j] >= '0' && s[j] <= '9')
                j++;
            i = j;
        }
    }
    /* a lone sign is no amount */
    if (i == 1 && (s[0] == '-' || s[0] == '+'))
        return 0;
    return i;
}

/* Multiply q by 10^(3k) or 2^(10k). */
static void scale(mpq_t q, int k, bool binary)
{
    mpz_t f;
    mpz_init(f);
    if (binary)
        mpz_ui_pow_ui(f, 2, (unsigned long)(10 * k));
    else
        mpz_ui_pow_ui(f, 10, (unsigned long)(3 * k));
    mpz_mul(mpq_numref(q), mpq_numref(q), f);
    mpq_canonicalize(q);
    mpz_clear(f);
}

static int units_common(struct xv_bctx *ctx, struct xv_value *const *a, bool bytes,
                        struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    /* quotes are dropped (parity with parse_bytes' historical behaviour) */
    char *s = malloc(SL(a[0]) + 1);
    if (!s)
        return xv_bi_error(ctx, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < SL(a[0]); i++) {
        char c = S(a[0])[i];
        if (c == ' ') {
            free(s);
            return xv_bi_error(ctx, "spaces not allowed in resource strings");
        }
        if (c != '"')
            s[n++] = bytes && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    s[n] = '\0';
    size_t an = split_amount(s, n);
    if (an == 0) {
        free(s);
        return xv_bi_error(ctx, bytes ? "no byte amount provided" : "no amount provided");
    }
    struct xv_value *num = xv_val_number_parse(s, an);
    if (!num) {
        free(s);
        return xv_bi_error(ctx, bytes ? "could not parse byte amount to a number"
                                      : "could not parse amount to a number");
    }
    /* unit: parse keeps the first letter's case (m vs M), lowercases the rest */
    char unit[8] = "";
    size_t ul = n - an;
    if (ul >= sizeof unit) {
        xv_val_decref(num);
        int rc = xv_bi_error(ctx, bytes ? "byte unit %s not recognized" : "unit %s not recognized",
                             s + an);
        free(s);
        return rc;
    }
    memcpy(unit, s + an, ul);
    unit[ul] = '\0';
    for (size_t i = 1; i < ul; i++)
        if (unit[i] >= 'A' && unit[i] <= 'Z')
            unit[i] = (char)(unit[i] + 32);
    static const char prefixes[] = "kmgtpe";
    int k = -1;
    bool binary = false, milli = false;
    if (ul == 0) {
        k = 0;
    } else {
        char c0 = unit[0];
        char lc = (char)(c0 >= 'A' && c0 <= 'Z' ? c0 + 32 : c0);
        const char *p = strchr(prefixes, lc);
        const char *rest = unit + 1;
        if (p && lc) {
            int idx = (int)(p - prefixes) + 1;
            if (bytes) {
                if (*rest == '\0' || strcmp(rest, "b") == 0)
                    k = idx;
                else if (strcmp(rest, "i") == 0 || strcmp(rest, "ib") == 0) {
                    k = idx;
                    binary = true;
                }
            } else if (*rest == '\0') {
                if (c0 == 'm')
                    milli = true, k = 0;
                else
                    k = idx;
            } else if (strcmp(rest, "i") == 0) {
                k = idx;
                binary = true;
            }
        } else if (bytes && strcmp(unit, "b") == 0) {
            k = 0;
        }
    }
    if (k < 0) {
        xv_val_decref(num);
        int rc = xv_bi_error(ctx, bytes ? "byte unit %s not recognized" : "unit %s not recognized",
                             s + an);
        free(s);
        return rc;
    }
    free(s);
    mpq_t q;
    mpq_init(q);
    xv_val_number_get_mpq(num, q);
    xv_val_decref(num);
    if (milli) {
        mpz_mul_ui(mpq_denref(q), mpq_denref(q), 1000);
        mpq_canonicalize(q);
    } else if (k > 0) {
        scale(q, k, binary);
    }
    struct xv_value *r;
    if (bytes) {
        /* whole bytes: truncate toward zero */
        mpz_t z;
        mpz_init(z);
        mpz_tdiv_q(z, mpq_numref(q), mpq_denref(q));
        r = xv_val_number_from_mpz(z);
        mpz_clear(z);
    } else {
        r = xv_val_number_from_mpq(q);
    }
    mpq_clear(q);
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_units_parse) { return units_common(ctx, a, false, out); }
BI_FN(bi_units_parse_bytes) { return units_common(ctx, a, true, out); }

const struct xv_builtin_def xv_bi_units[] = {
    {"units.parse", 1, bi_units_parse, 0},
    {"units.parse_bytes", 1, bi_units_parse_bytes, 0},
    {NULL, 0, NULL, 0},
};
