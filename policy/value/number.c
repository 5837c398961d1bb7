/*
 * value/number.c — Rego numbers: exact integers and rationals on GMP (int64
 * while they fit), parsing and printing OPA's way, comparison and the
 * arithmetic the operators and numbers builtins use.
 *
 * Invariant: numbers are normalised after every operation (int64 if it fits,
 * else mpz for integers, else a canonical mpq with den > 1), so two equal
 * numbers always have the same kind and compare cheaply.
 * Thread safety: see xv_value.h (non-atomic counts, frozen values shared);
 * the small-integer cache is built once.
 */
#include "value/types.h"
#include "value/xv_value.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ---- */

/* Small non-negative integers (array indexes, counts) are shared frozen
 * values, built once: iteration over arrays allocates nothing for its keys. */
#define SMALL_INTS 1024
static struct xv_value g_small[SMALL_INTS];
static pthread_once_t g_small_once = PTHREAD_ONCE_INIT;
/* Set (release) once g_small is built: the check xv_val_int makes for every
 * array element iterated, cheaper than the call into pthread_once. */
static _Atomic int g_small_ready;

static void small_init(void)
{
    for (int k = 0; k < SMALL_INTS; k++) {
        g_small[k].refcnt = XV_REF_FROZEN;
        g_small[k].type = XV_T_NUMBER;
        g_small[k].sub = XV_NUM_INT;
        g_small[k].u.num.i = k;
    }
    atomic_store_explicit(&g_small_ready, 1, memory_order_release);
}

/* An int64 number; small non-negative ones come from a shared frozen
 * cache (indexes and counts are everywhere). */
struct xv_value *xv_val_int(int64_t i)
{
    if (i >= 0 && i < SMALL_INTS) {
        if (!atomic_load_explicit(&g_small_ready, memory_order_acquire))
            pthread_once(&g_small_once, small_init);
        return &g_small[i];
    }
    struct xv_value *v = xv_val_alloc(XV_T_NUMBER, 0);
    if (v)
        v->u.num.i = i;
    return v;
}

/* Normalised number from an mpz (consumes nothing). */
struct xv_value *xv_val_number_from_mpz(const mpz_t z)
{
    if (mpz_fits_slong_p(z))
        return xv_val_int((int64_t)mpz_get_si(z));
    struct xv_value *v = xv_val_alloc(XV_T_NUMBER, 0);
    if (!v)
        return NULL;
    v->sub = XV_NUM_BIG;
    v->u.num.z = malloc(sizeof(mpz_t));
    if (!v->u.num.z) {
        xv_val_release(v);
        return NULL;
    }
    mpz_init_set(*v->u.num.z, z);
    return v;
}

/* Does the canonical rational q have a terminating decimal expansion? */
static int mpq_terminates(const mpq_t q)
{
    mpz_t d;
    mpz_init_set(d, mpq_denref(q));
    while (mpz_divisible_ui_p(d, 2))
        mpz_divexact_ui(d, d, 2);
    while (mpz_divisible_ui_p(d, 5))
        mpz_divexact_ui(d, d, 5);
    int ok = mpz_cmp_ui(d, 1) == 0;
    mpz_clear(d);
    return ok;
}

/* A rational, normalised: an integer when the denominator is 1 (int64 if
 * it fits); a quotient without a finite decimal expansion (1/3) rounds to
 * the nearest double, as OPA's float path does. */
struct xv_value *xv_val_number_from_mpq(const mpq_t qin)
{
    if (mpz_cmp_ui(mpq_denref(qin), 1) == 0)
        return xv_val_number_from_mpz(mpq_numref(qin));
    if (!mpq_terminates(qin)) {
        /* Inexact quotient: round to the nearest double, as OPA's float path does. */
        return xv_val_number_from_double(mpq_get_d(qin));
    }
    struct xv_value *v = xv_val_alloc(XV_T_NUMBER, 0);
    if (!v)
        return NULL;
    v->sub = XV_NUM_RAT;
    v->u.num.q = malloc(sizeof(mpq_t));
    if (!v->u.num.q) {
        xv_val_release(v);
        return NULL;
    }
    mpq_init(*v->u.num.q);
    mpq_set(*v->u.num.q, qin);
    return v;
}

/* A double as OPA sees it: integral values as integers, others through
 * their shortest round-trip decimal text, so 0.1 is exactly 1/10. */
struct xv_value *xv_val_number_from_double(double d)
{
    if (isnan(d) || isinf(d))
        return NULL;
    if (d == floor(d) && fabs(d) < 9.0e15)
        return xv_val_int((int64_t)d);
    /* Shortest text that round-trips, then exact decimal from that text. */
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    struct xv_value *v = xv_val_number_parse(buf, strlen(buf));
    if (v && v->u.num.text) {
        free(v->u.num.text); /* computed numbers print from the value */
        v->u.num.text = NULL;
    }
    return v;
}

/* JSON/Rego number text to an exact number: digits, fraction and exponent
 * become an integer or a rational, never a double; the text is kept for
 * printing it back unchanged. */
struct xv_value *xv_val_number_parse(const char *text, size_t len)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && (text[i] == '-' || text[i] == '+'))
        neg = text[i++] == '-';
    size_t ds = i;
    char *digits = malloc(len + 2);
    if (!digits)
        return NULL;
    size_t nd = 0;
    long frac = 0;
    int seen_digit = 0;
    while (i < len && text[i] >= '0' && text[i] <= '9')
        digits[nd++] = text[i++], seen_digit = 1;
    if (i < len && text[i] == '.') {
        i++;
        while (i < len && text[i] >= '0' && text[i] <= '9')
            digits[nd++] = text[i++], frac++, seen_digit = 1;
    }
    long exp = 0;
    if (seen_digit && i < len && (text[i] == 'e' || text[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (text[i] == '-' || text[i] == '+'))
            eneg = text[i++] == '-';
        if (i >= len || text[i] < '0' || text[i] > '9') {
            free(digits);
            return NULL;
        }
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            if (exp < 1000000)
                exp = exp * 10 + (text[i] - '0');
            i++;
        }
        if (eneg)
            exp = -exp;
    }
    (void)ds;
    if (!seen_digit || i != len) {
        free(digits);
        return NULL;
    }
    exp -= frac;
    if (exp > 100000 || exp < -100000) {
        free(digits);
        return NULL;
    }
    digits[nd] = 0;
    struct xv_value *v = NULL;
    if (exp == 0 && nd <= 18) {
        int64_t x = 0;
        for (size_t k = 0; k < nd; k++)
            x = x * 10 + (digits[k] - '0');
        /* a fresh value, never the shared small ints: the text is attached below */
        v = xv_val_alloc(XV_T_NUMBER, 0);
        if (v)
            v->u.num.i = neg ? -x : x;
    } else {
        mpq_t q;
        mpq_init(q);
        mpz_set_str(mpq_numref(q), digits, 10);
        if (neg)
            mpz_neg(mpq_numref(q), mpq_numref(q));
        mpz_t p;
        mpz_init(p);
        mpz_ui_pow_ui(p, 10, (unsigned long)(exp < 0 ? -exp : exp));
        if (exp >= 0)
            mpz_mul(mpq_numref(q), mpq_numref(q), p);
        else
            mpz_set(mpq_denref(q), p);
        mpz_clear(p);
        mpq_canonicalize(q);
        v = xv_val_number_from_mpq(q);
        mpq_clear(q);
    }
    free(digits);
    if (v && v->refcnt == XV_REF_FROZEN) {
        /* a shared small int (e.g. "1e2"): copy it so the text can be kept */
        int64_t iv = v->u.num.i;
        v = xv_val_alloc(XV_T_NUMBER, 0);
        if (v)
            v->u.num.i = iv;
    }
    if (v) {
        v->u.num.text = malloc(len + 1);
        if (v->u.num.text) {
            memcpy(v->u.num.text, text, len);
            v->u.num.text[len] = 0;
        }
    }
    return v;
}

int xv_val_number_is_int(const struct xv_value *v)
{
    return v->sub != XV_NUM_RAT;
}

int xv_val_number_get_int64(const struct xv_value *v, int64_t *out)
{
    if (v->sub == XV_NUM_INT) {
        *out = v->u.num.i;
        return 0;
    }
    return -1;
}

double xv_val_number_get_double(const struct xv_value *v)
{
    if (v->sub == XV_NUM_INT)
        return (double)v->u.num.i;
    if (v->u.num.text)
        return strtod(v->u.num.text, NULL);
    if (v->sub == XV_NUM_BIG)
        return mpz_get_d(*v->u.num.z);
    return mpq_get_d(*v->u.num.q);
}

void xv_val_number_get_mpq(const struct xv_value *v, mpq_t out)
{
    if (v->sub == XV_NUM_INT) {
        mpz_set_si(mpq_numref(out), (long)v->u.num.i);
        mpz_set_ui(mpq_denref(out), 1);
    } else if (v->sub == XV_NUM_BIG) {
        mpq_set_z(out, *v->u.num.z);
    } else {
        mpq_set(out, *v->u.num.q);
    }
}

void xv_val_number_get_mpz(const struct xv_value *v, mpz_t out)
{
    if (v->sub == XV_NUM_INT)
        mpz_set_si(out, (long)v->u.num.i);
    else if (v->sub == XV_NUM_BIG)
        mpz_set(out, *v->u.num.z);
    else
        mpz_tdiv_q(out, mpq_numref(*v->u.num.q), mpq_denref(*v->u.num.q));
}

/* Exact comparison across int64, big integers and rationals. */
int xv_val_number_cmp(const struct xv_value *a, const struct xv_value *b)
{
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT)
        return a->u.num.i < b->u.num.i ? -1 : a->u.num.i > b->u.num.i;
    mpq_t x, y;
    mpq_init(x);
    mpq_init(y);
    xv_val_number_get_mpq(a, x);
    xv_val_number_get_mpq(b, y);
    int c = mpq_cmp(x, y);
    mpq_clear(x);
    mpq_clear(y);
    return c < 0 ? -1 : c > 0;
}

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

/* +, -, *, / exactly: int64 while no overflow, then GMP integers or
 * rationals; division by zero is NULL (the caller's error). */
static struct xv_value *num_binop(const struct xv_value *a, const struct xv_value *b, int op)
{
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT) {
        int64_t r, x = a->u.num.i, y = b->u.num.i;
        switch (op) {
        case OP_ADD:
            if (!__builtin_add_overflow(x, y, &r))
                return xv_val_int(r);
            break;
        case OP_SUB:
            if (!__builtin_sub_overflow(x, y, &r))
                return xv_val_int(r);
            break;
        case OP_MUL:
            if (!__builtin_mul_overflow(x, y, &r))
                return xv_val_int(r);
            break;
        case OP_DIV:
            if (y == 0)
                return NULL;
            if (y != -1 && x % y == 0)
                return xv_val_int(x / y);
            break;
        }
    }
    mpq_t x, y;
    mpq_init(x);
    mpq_init(y);
    xv_val_number_get_mpq(a, x);
    xv_val_number_get_mpq(b, y);
    struct xv_value *res = NULL;
    switch (op) {
    case OP_ADD: mpq_add(x, x, y); break;
    case OP_SUB: mpq_sub(x, x, y); break;
    case OP_MUL: mpq_mul(x, x, y); break;
    case OP_DIV:
        if (mpq_sgn(y) == 0)
            goto out;
        mpq_div(x, x, y);
        break;
    }
    res = xv_val_number_from_mpq(x);
out:
    mpq_clear(x);
    mpq_clear(y);
    return res;
}

struct xv_value *xv_val_num_add(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_ADD); }
struct xv_value *xv_val_num_sub(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_SUB); }
struct xv_value *xv_val_num_mul(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_MUL); }
struct xv_value *xv_val_num_div(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_DIV); }

/* % on integers only, truncated as Go's (sign of the dividend); NULL for
 * non-integers or a zero divisor. */
struct xv_value *xv_val_num_rem(const struct xv_value *a, const struct xv_value *b)
{
    if (!xv_val_number_is_int(a) || !xv_val_number_is_int(b))
        return NULL;
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT) {
        if (b->u.num.i == 0)
            return NULL;
        if (b->u.num.i == -1)
            return xv_val_int(0);
        return xv_val_int(a->u.num.i % b->u.num.i);
    }
    mpz_t x, y;
    mpz_init(x);
    mpz_init(y);
    xv_val_number_get_mpz(a, x);
    xv_val_number_get_mpz(b, y);
    struct xv_value *r = NULL;
    if (mpz_sgn(y) != 0) {
        mpz_tdiv_r(x, x, y);
        r = xv_val_number_from_mpz(x);
    }
    mpz_clear(x);
    mpz_clear(y);
    return r;
}

struct xv_value *xv_val_num_neg(const struct xv_value *a)
{
    struct xv_value *zero = xv_val_int(0);
    if (!zero)
        return NULL;
    struct xv_value *r = xv_val_num_sub(zero, a);
    xv_val_decref(zero);
    return r;
}

struct xv_value *xv_val_num_abs(const struct xv_value *a)
{
    struct xv_value *zero = xv_val_int(0);
    if (!zero)
        return NULL;
    struct xv_value *r = xv_val_number_cmp(a, zero) < 0 ? xv_val_num_sub(zero, a) : xv_val_num_add(zero, a);
    xv_val_decref(zero);
    return r;
}

/* mode: 0 floor, 1 ceil, 2 round half away from zero */
static struct xv_value *num_round(const struct xv_value *a, int mode)
{
    if (a->sub != XV_NUM_RAT) {
        struct xv_value *zero = xv_val_int(0);
        struct xv_value *r = zero ? xv_val_num_add(zero, a) : NULL;
        xv_val_decref(zero);
        return r;
    }
    mpz_t r;
    mpz_init(r);
    const mpq_t *q = (const mpq_t *)a->u.num.q;
    if (mode == 0) {
        mpz_fdiv_q(r, mpq_numref(*q), mpq_denref(*q));
    } else if (mode == 1) {
        mpz_cdiv_q(r, mpq_numref(*q), mpq_denref(*q));
    } else {
        /* round(|q| + 1/2) with the sign restored */
        mpq_t t, h;
        mpq_init(t);
        mpq_init(h);
        mpq_abs(t, *q);
        mpq_set_ui(h, 1, 2);
        mpq_add(t, t, h);
        mpz_fdiv_q(r, mpq_numref(t), mpq_denref(t));
        if (mpq_sgn(*q) < 0)
            mpz_neg(r, r);
        mpq_clear(t);
        mpq_clear(h);
    }
    struct xv_value *v = xv_val_number_from_mpz(r);
    mpz_clear(r);
    return v;
}

struct xv_value *xv_val_num_floor(const struct xv_value *a) { return num_round(a, 0); }
struct xv_value *xv_val_num_ceil(const struct xv_value *a) { return num_round(a, 1); }
struct xv_value *xv_val_num_round(const struct xv_value *a) { return num_round(a, 2); }
