/*
 * value/types.c — construction, destruction, ordering and arithmetic of Rego values
 * (the text side — JSON and Rego printing/parsing — lives in value_text.c).
 *
 * Invariant: numbers are normalised after every operation (int64 if it fits,
 * else mpz for integers, else a canonical mpq with den > 1), so two equal
 * numbers always have the same kind and compare cheaply.
 * Thread safety: see xv_value.h (non-atomic counts, frozen values shared).
 */
#include "value/xv_value.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct xv_value g_null = {XV_REF_FROZEN, XV_T_NULL, 0, 0, 0, {0}};
static struct xv_value g_false = {XV_REF_FROZEN, XV_T_BOOL, 0, 0, 0, {.b = 0}};
static struct xv_value g_true = {XV_REF_FROZEN, XV_T_BOOL, 0, 0, 0, {.b = 1}};

struct xv_value *xv_null(void) { return &g_null; }
struct xv_value *xv_bool(int b) { return b ? &g_true : &g_false; }

static struct xv_value *val_alloc(enum xv_type t, size_t extra)
{
    struct xv_value *v = calloc(1, sizeof *v + extra);
    if (!v)
        return NULL;
    v->refcnt = 1;
    v->type = (uint8_t)t;
    return v;
}

void xv_value_free_(struct xv_value *v)
{
    size_t i;
    switch (v->type) {
    case XV_T_NUMBER:
        if (v->sub == XV_NUM_BIG && v->u.num.z) {
            mpz_clear(*v->u.num.z);
            free(v->u.num.z);
        } else if (v->sub == XV_NUM_RAT && v->u.num.q) {
            mpq_clear(*v->u.num.q);
            free(v->u.num.q);
        }
        free(v->u.num.text);
        break;
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            xv_decref(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++) {
            xv_decref(v->u.obj.keys[i]);
            xv_decref(v->u.obj.vals[i]);
        }
        free(v->u.obj.keys);
        free(v->u.obj.vals);
        break;
    default:
        break;
    }
    free(v);
}

/* ---- freezing ---- */

static int frozen_push(struct xv_frozen_list *l, struct xv_value *v)
{
    if (l->len == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct xv_value **p = realloc(l->v, nc * sizeof *p);
        if (!p)
            return XV_E_NOMEM;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->len++] = v;
    return 0;
}

int xv_value_freeze(struct xv_value *v, struct xv_frozen_list *list)
{
    if (!v || v->refcnt == XV_REF_FROZEN)
        return 0;
    if (v->type == XV_T_STRING)
        xv_hash(v), xv_string_cp_count(v); /* fill caches: no writes after sharing */
    v->refcnt = XV_REF_FROZEN;
    if (list && frozen_push(list, v))
        return XV_E_NOMEM;
    size_t i;
    switch (v->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            if (xv_value_freeze(v->u.arr.items[i], list))
                return XV_E_NOMEM;
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++)
            if (xv_value_freeze(v->u.obj.keys[i], list) || xv_value_freeze(v->u.obj.vals[i], list))
                return XV_E_NOMEM;
        break;
    default:
        break;
    }
    return 0;
}

void xv_value_free_frozen(struct xv_frozen_list *list)
{
    /* Children are in the list too, so free each node shallowly. */
    for (size_t k = 0; k < list->len; k++) {
        struct xv_value *v = list->v[k];
        switch (v->type) {
        case XV_T_ARRAY:
        case XV_T_SET:
            free(v->u.arr.items);
            break;
        case XV_T_OBJECT:
            free(v->u.obj.keys);
            free(v->u.obj.vals);
            break;
        case XV_T_NUMBER:
            if (v->sub == XV_NUM_BIG) {
                mpz_clear(*v->u.num.z);
                free(v->u.num.z);
            } else if (v->sub == XV_NUM_RAT) {
                mpq_clear(*v->u.num.q);
                free(v->u.num.q);
            }
            free(v->u.num.text);
            break;
        default:
            break;
        }
        free(v);
    }
    free(list->v);
    list->v = NULL;
    list->len = list->cap = 0;
}

/* ---- numbers ---- */

/* Small non-negative integers (array indexes, counts) are shared frozen
 * values, built once: iteration over arrays allocates nothing for its keys. */
#define SMALL_INTS 1024
static struct xv_value g_small[SMALL_INTS];
static pthread_once_t g_small_once = PTHREAD_ONCE_INIT;

static void small_init(void)
{
    for (int k = 0; k < SMALL_INTS; k++) {
        g_small[k].refcnt = XV_REF_FROZEN;
        g_small[k].type = XV_T_NUMBER;
        g_small[k].sub = XV_NUM_INT;
        g_small[k].u.num.i = k;
    }
}

struct xv_value *xv_int(int64_t i)
{
    if (i >= 0 && i < SMALL_INTS) {
        pthread_once(&g_small_once, small_init);
        return &g_small[i];
    }
    struct xv_value *v = val_alloc(XV_T_NUMBER, 0);
    if (v)
        v->u.num.i = i;
    return v;
}

/* Normalised number from an mpz (consumes nothing). */
struct xv_value *xv_number_from_mpz(const mpz_t z)
{
    if (mpz_fits_slong_p(z))
        return xv_int((int64_t)mpz_get_si(z));
    struct xv_value *v = val_alloc(XV_T_NUMBER, 0);
    if (!v)
        return NULL;
    v->sub = XV_NUM_BIG;
    v->u.num.z = malloc(sizeof(mpz_t));
    if (!v->u.num.z) {
        free(v);
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

struct xv_value *xv_number_from_mpq(const mpq_t qin)
{
    if (mpz_cmp_ui(mpq_denref(qin), 1) == 0)
        return xv_number_from_mpz(mpq_numref(qin));
    if (!mpq_terminates(qin)) {
        /* Inexact quotient: round to the nearest double, as OPA's float path does. */
        return xv_number_from_double(mpq_get_d(qin));
    }
    struct xv_value *v = val_alloc(XV_T_NUMBER, 0);
    if (!v)
        return NULL;
    v->sub = XV_NUM_RAT;
    v->u.num.q = malloc(sizeof(mpq_t));
    if (!v->u.num.q) {
        free(v);
        return NULL;
    }
    mpq_init(*v->u.num.q);
    mpq_set(*v->u.num.q, qin);
    return v;
}

struct xv_value *xv_number_from_double(double d)
{
    if (isnan(d) || isinf(d))
        return NULL;
    if (d == floor(d) && fabs(d) < 9.0e15)
        return xv_int((int64_t)d);
    /* Shortest text that round-trips, then exact decimal from that text. */
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    struct xv_value *v = xv_number_parse(buf, strlen(buf));
    if (v && v->u.num.text) {
        free(v->u.num.text); /* computed numbers print from the value */
        v->u.num.text = NULL;
    }
    return v;
}

struct xv_value *xv_number_parse(const char *text, size_t len)
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
        v = val_alloc(XV_T_NUMBER, 0);
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
        v = xv_number_from_mpq(q);
        mpq_clear(q);
    }
    free(digits);
    if (v && v->refcnt == XV_REF_FROZEN) {
        /* a shared small int (e.g. "1e2"): copy it so the text can be kept */
        int64_t iv = v->u.num.i;
        v = val_alloc(XV_T_NUMBER, 0);
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

int xv_number_is_int(const struct xv_value *v)
{
    return v->sub != XV_NUM_RAT;
}

int xv_number_get_int64(const struct xv_value *v, int64_t *out)
{
    if (v->sub == XV_NUM_INT) {
        *out = v->u.num.i;
        return 0;
    }
    return -1;
}

double xv_number_get_double(const struct xv_value *v)
{
    if (v->sub == XV_NUM_INT)
        return (double)v->u.num.i;
    if (v->u.num.text)
        return strtod(v->u.num.text, NULL);
    if (v->sub == XV_NUM_BIG)
        return mpz_get_d(*v->u.num.z);
    return mpq_get_d(*v->u.num.q);
}

void xv_number_get_mpq(const struct xv_value *v, mpq_t out)
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

void xv_number_get_mpz(const struct xv_value *v, mpz_t out)
{
    if (v->sub == XV_NUM_INT)
        mpz_set_si(out, (long)v->u.num.i);
    else if (v->sub == XV_NUM_BIG)
        mpz_set(out, *v->u.num.z);
    else
        mpz_tdiv_q(out, mpq_numref(*v->u.num.q), mpq_denref(*v->u.num.q));
}

int xv_number_cmp(const struct xv_value *a, const struct xv_value *b)
{
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT)
        return a->u.num.i < b->u.num.i ? -1 : a->u.num.i > b->u.num.i;
    mpq_t x, y;
    mpq_init(x);
    mpq_init(y);
    xv_number_get_mpq(a, x);
    xv_number_get_mpq(b, y);
    int c = mpq_cmp(x, y);
    mpq_clear(x);
    mpq_clear(y);
    return c < 0 ? -1 : c > 0;
}

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

static struct xv_value *num_binop(const struct xv_value *a, const struct xv_value *b, int op)
{
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT) {
        int64_t r, x = a->u.num.i, y = b->u.num.i;
        switch (op) {
        case OP_ADD:
            if (!__builtin_add_overflow(x, y, &r))
                return xv_int(r);
            break;
        case OP_SUB:
            if (!__builtin_sub_overflow(x, y, &r))
                return xv_int(r);
            break;
        case OP_MUL:
            if (!__builtin_mul_overflow(x, y, &r))
                return xv_int(r);
            break;
        case OP_DIV:
            if (y == 0)
                return NULL;
            if (y != -1 && x % y == 0)
                return xv_int(x / y);
            break;
        }
    }
    mpq_t x, y;
    mpq_init(x);
    mpq_init(y);
    xv_number_get_mpq(a, x);
    xv_number_get_mpq(b, y);
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
    res = xv_number_from_mpq(x);
out:
    mpq_clear(x);
    mpq_clear(y);
    return res;
}

struct xv_value *xv_num_add(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_ADD); }
struct xv_value *xv_num_sub(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_SUB); }
struct xv_value *xv_num_mul(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_MUL); }
struct xv_value *xv_num_div(const struct xv_value *a, const struct xv_value *b) { return num_binop(a, b, OP_DIV); }

struct xv_value *xv_num_rem(const struct xv_value *a, const struct xv_value *b)
{
    if (!xv_number_is_int(a) || !xv_number_is_int(b))
        return NULL;
    if (a->sub == XV_NUM_INT && b->sub == XV_NUM_INT) {
        if (b->u.num.i == 0)
            return NULL;
        if (b->u.num.i == -1)
            return xv_int(0);
        return xv_int(a->u.num.i % b->u.num.i);
    }
    mpz_t x, y;
    mpz_init(x);
    mpz_init(y);
    xv_number_get_mpz(a, x);
    xv_number_get_mpz(b, y);
    struct xv_value *r = NULL;
    if (mpz_sgn(y) != 0) {
        mpz_tdiv_r(x, x, y);
        r = xv_number_from_mpz(x);
    }
    mpz_clear(x);
    mpz_clear(y);
    return r;
}

struct xv_value *xv_num_neg(const struct xv_value *a)
{
    struct xv_value *zero = xv_int(0);
    if (!zero)
        return NULL;
    struct xv_value *r = xv_num_sub(zero, a);
    xv_decref(zero);
    return r;
}

struct xv_value *xv_num_abs(const struct xv_value *a)
{
    struct xv_value *zero = xv_int(0);
    if (!zero)
        return NULL;
    struct xv_value *r = xv_number_cmp(a, zero) < 0 ? xv_num_sub(zero, a) : xv_num_add(zero, a);
    xv_decref(zero);
    return r;
}

/* mode: 0 floor, 1 ceil, 2 round half away from zero */
static struct xv_value *num_round(const struct xv_value *a, int mode)
{
    if (a->sub != XV_NUM_RAT) {
        struct xv_value *zero = xv_int(0);
        struct xv_value *r = zero ? xv_num_add(zero, a) : NULL;
        xv_decref(zero);
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
    struct xv_value *v = xv_number_from_mpz(r);
    mpz_clear(r);
    return v;
}

struct xv_value *xv_num_floor(const struct xv_value *a) { return num_round(a, 0); }
struct xv_value *xv_num_ceil(const struct xv_value *a) { return num_round(a, 1); }
struct xv_value *xv_num_round(const struct xv_value *a) { return num_round(a, 2); }

/* ---- strings ---- */

struct xv_value *xv_string(const char *s, size_t len)
{
    struct xv_value *v = val_alloc(XV_T_STRING, len + 1);
    if (!v)
        return NULL;
    v->u.str.s = (char *)(v + 1);
    if (len)
        memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = 0;
    v->u.str.len = len;
    v->u.str.ncp = -1;
    return v;
}

struct xv_value *xv_cstring(const char *s) { return xv_string(s, strlen(s)); }

struct xv_value *xv_string_fmt(const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < sizeof small)
        return xv_string(small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    struct xv_value *v = xv_string(big, (size_t)n);
    free(big);
    return v;
}

uint32_t xv_utf8_decode(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    unsigned c = p[0];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    int n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0)
        n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        goto bad;
    if ((size_t)n > left)
        goto bad;
    for (int k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            goto bad;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        goto bad;
    *i += (size_t)n;
    return cp;
bad:
    (*i)++;
    return 0xFFFD;
}

size_t xv_utf8_encode(uint32_t cp, char out[4])
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t xv_utf8_offset(const char *s, size_t len, size_t cp)
{
    size_t i = 0;
    while (cp > 0 && i < len) {
        xv_utf8_decode(s, len, &i);
        cp--;
    }
    return i;
}

size_t xv_string_cp_count(struct xv_value *v)
{
    if (v->u.str.ncp >= 0)
        return (size_t)v->u.str.ncp;
    size_t n = 0, i = 0, len = v->u.str.len;
    while (i < len) {
        xv_utf8_decode(v->u.str.s, len, &i);
        n++;
    }
    if (v->refcnt != XV_REF_FROZEN)
        v->u.str.ncp = (int64_t)n;
    return n;
}

/* ---- containers ---- */

/* Capacity for `need` entries: doubling from cap (4 at first). */
static size_t grow_cap(size_t cap, size_t need)
{
    size_t nc = cap ? cap * 2 : 4;
    while (nc < need)
        nc *= 2;
    return nc;
}

static int arr_reserve(struct xv_value *a, size_t need)
{
    if (need <= a->u.arr.cap)
        return 0;
    size_t nc = grow_cap(a->u.arr.cap, need);
    struct xv_value **p = realloc(a->u.arr.items, nc * sizeof *p);
    if (!p)
        return XV_E_NOMEM;
    a->u.arr.items = p;
    a->u.arr.cap = nc;
    return 0;
}

struct xv_value *xv_array_new(size_t cap)
{
    struct xv_value *v = val_alloc(XV_T_ARRAY, 0);
    if (v && cap && arr_reserve(v, cap)) {
        free(v);
        return NULL;
    }
    return v;
}

int xv_array_push(struct xv_value *a, struct xv_value *item)
{
    if (arr_reserve(a, a->u.arr.len + 1))
        return XV_E_NOMEM;
    a->u.arr.items[a->u.arr.len++] = xv_incref(item);
    a->hash = 0;
    return 0;
}

struct xv_value *xv_set_new(size_t cap)
{
    struct xv_value *v = xv_array_new(cap);
    if (v)
        v->type = XV_T_SET;
    return v;
}

/* Binary search in a sorted vector; returns index if found, else -(ins+1). */
static long bsearch_vals(struct xv_value *const *items, size_t n, const struct xv_value *x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = xv_compare(items[mid], x);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

int xv_set_add(struct xv_value *s, struct xv_value *item)
{
    size_t n = s->u.arr.len;
    long pos;
    /* Appending in order is the common case (building from sorted input). */
    if (n == 0 || xv_compare(s->u.arr.items[n - 1], item) < 0)
        pos = -(long)n - 1;
    else
        pos = bsearch_vals(s->u.arr.items, n, item);
    if (pos >= 0)
        return 0;
    size_t at = (size_t)(-pos - 1);
    if (arr_reserve(s, n + 1))
        return XV_E_NOMEM;
    memmove(s->u.arr.items + at + 1, s->u.arr.items + at, (n - at) * sizeof(struct xv_value *));
    s->u.arr.items[at] = xv_incref(item);
    s->u.arr.len++;
    s->hash = 0;
    return 0;
}

long xv_set_find(const struct xv_value *s, const struct xv_value *item)
{
    long p = bsearch_vals(s->u.arr.items, s->u.arr.len, item);
    return p >= 0 ? p : -1;
}

int xv_set_contains(const struct xv_value *s, const struct xv_value *item)
{
    return xv_set_find(s, item) >= 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    return xv_compare(*(struct xv_value *const *)a, *(struct xv_value *const *)b);
}

struct xv_value *xv_set_from_array(const struct xv_value *arr)
{
    size_t n = arr->u.arr.len;
    struct xv_value *s = xv_set_new(n);
    if (!s)
        return NULL;
    if (n == 0)
        return s;
    memcpy(s->u.arr.items, arr->u.arr.items, n * sizeof(struct xv_value *));
    qsort(s->u.arr.items, n, sizeof(struct xv_value *), cmp_ptr);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && xv_compare(s->u.arr.items[w - 1], s->u.arr.items[i]) == 0)
            continue;
        s->u.arr.items[w++] = xv_incref(s->u.arr.items[i]);
    }
    s->u.arr.len = w;
    return s;
}

static int obj_reserve(struct xv_value *o, size_t need)
{
    if (need <= o->u.obj.cap)
        return 0;
    size_t nc = grow_cap(o->u.obj.cap, need);
    struct xv_value **k = realloc(o->u.obj.keys, nc * sizeof *k);
    if (!k)
        return XV_E_NOMEM;
    o->u.obj.keys = k;
    struct xv_value **v = realloc(o->u.obj.vals, nc * sizeof *v);
    if (!v)
        return XV_E_NOMEM;
    o->u.obj.vals = v;
    o->u.obj.cap = nc;
    return 0;
}

struct xv_value *xv_object_new(size_t cap)
{
    struct xv_value *v = val_alloc(XV_T_OBJECT, 0);
    if (v && cap && obj_reserve(v, cap)) {
        xv_value_free_(v);
        return NULL;
    }
    return v;
}

int xv_object_set(struct xv_value *o, struct xv_value *key, struct xv_value *val)
{
    size_t n = o->u.obj.len;
    long pos;
    if (n == 0 || xv_compare(o->u.obj.keys[n - 1], key) < 0)
        pos = -(long)n - 1;
    else
        pos = bsearch_vals(o->u.obj.keys, n, key);
    o->hash = 0;
    if (pos >= 0) {
        xv_incref(val);
        xv_decref(o->u.obj.vals[pos]);
        o->u.obj.vals[pos] = val;
        return 0;
    }
    size_t at = (size_t)(-pos - 1);
    if (obj_reserve(o, n + 1))
        return XV_E_NOMEM;
    memmove(o->u.obj.keys + at + 1, o->u.obj.keys + at, (n - at) * sizeof(struct xv_value *));
    memmove(o->u.obj.vals + at + 1, o->u.obj.vals + at, (n - at) * sizeof(struct xv_value *));
    o->u.obj.keys[at] = xv_incref(key);
    o->u.obj.vals[at] = xv_incref(val);
    o->u.obj.len++;
    return 0;
}

int xv_object_set_str(struct xv_value *o, const char *key, struct xv_value *val)
{
    struct xv_value *k = xv_cstring(key);
    if (!k)
        return XV_E_NOMEM;
    int rc = xv_object_set(o, k, val);
    xv_decref(k);
    return rc;
}

long xv_object_find(const struct xv_value *o, const struct xv_value *key)
{
    long p = bsearch_vals(o->u.obj.keys, o->u.obj.len, key);
    return p >= 0 ? p : -1;
}

long xv_object_find_str(const struct xv_value *o, const char *key, size_t len)
{
    size_t lo = 0, hi = o->u.obj.len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct xv_value *k = o->u.obj.keys[mid];
        int c;
        if (k->type != XV_T_STRING) {
            c = k->type < XV_T_STRING ? -1 : 1;
        } else if (len && k->u.str.len && k->u.str.s[0] != key[0]) {
            /* first byte decides most probes without a call */
            c = (unsigned char)k->u.str.s[0] < (unsigned char)key[0] ? -1 : 1;
        } else {
            size_t m = k->u.str.len < len ? k->u.str.len : len;
            c = memcmp(k->u.str.s, key, m);
            if (c == 0)
                c = k->u.str.len < len ? -1 : k->u.str.len > len;
        }
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

struct xv_value *xv_value_copy(const struct xv_value *v)
{
    size_t i;
    struct xv_value *c;
    switch (v->type) {
    case XV_T_ARRAY:
    case XV_T_SET:
        c = xv_array_new(v->u.arr.len);
        if (!c)
            return NULL;
        c->type = v->type;
        for (i = 0; i < v->u.arr.len; i++)
            c->u.arr.items[i] = xv_incref(v->u.arr.items[i]);
        c->u.arr.len = v->u.arr.len;
        return c;
    case XV_T_OBJECT:
        c = xv_object_new(v->u.obj.len);
        if (!c)
            return NULL;
        for (i = 0; i < v->u.obj.len; i++) {
            c->u.obj.keys[i] = xv_incref(v->u.obj.keys[i]);
            c->u.obj.vals[i] = xv_incref(v->u.obj.vals[i]);
        }
        c->u.obj.len = v->u.obj.len;
        return c;
    default:
        return xv_incref((struct xv_value *)v);
    }
}

/* ---- ordering ---- */

int xv_compare(const struct xv_value *a, const struct xv_value *b)
{
    if (a == b)
        return 0;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    size_t i, n;
    int c;
    switch (a->type) {
    case XV_T_NULL:
        return 0;
    case XV_T_BOOL:
        return a->u.b - b->u.b;
    case XV_T_NUMBER:
        return xv_number_cmp(a, b);
    case XV_T_STRING:
        n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        c = memcmp(a->u.str.s, b->u.str.s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
    case XV_T_ARRAY:
    case XV_T_SET:
        n = a->u.arr.len < b->u.arr.len ? a->u.arr.len : b->u.arr.len;
        for (i = 0; i < n; i++)
            if ((c = xv_compare(a->u.arr.items[i], b->u.arr.items[i])) != 0)
                return c;
        return a->u.arr.len < b->u.arr.len ? -1 : a->u.arr.len > b->u.arr.len;
    case XV_T_OBJECT:
        n = a->u.obj.len < b->u.obj.len ? a->u.obj.len : b->u.obj.len;
        for (i = 0; i < n; i++) {
            if ((c = xv_compare(a->u.obj.keys[i], b->u.obj.keys[i])) != 0)
                return c;
            if ((c = xv_compare(a->u.obj.vals[i], b->u.obj.vals[i])) != 0)
                return c;
        }
        return a->u.obj.len < b->u.obj.len ? -1 : a->u.obj.len > b->u.obj.len;
    }
    return 0;
}

int xv_equal(const struct xv_value *a, const struct xv_value *b)
{
    if (a == b)
        return 1;
    if (a->type != b->type)
        return 0;
    if (a->type == XV_T_STRING &&
        (a->u.str.len != b->u.str.len || (a->hash && b->hash && a->hash != b->hash)))
        return 0;
    return xv_compare(a, b) == 0;
}

static uint32_t fnv(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

uint32_t xv_hash(struct xv_value *v)
{
    if (v->hash)
        return v->hash;
    uint32_t h = 2166136261u ^ v->type;
    size_t i;
    switch (v->type) {
    case XV_T_BOOL:
        h = fnv(&v->u.b, sizeof v->u.b, h);
        break;
    case XV_T_NUMBER: {
        /* Hash the canonical decimal so equal numbers hash alike. */
        if (v->sub == XV_NUM_INT) {
            h = fnv(&v->u.num.i, sizeof v->u.num.i, h);
        } else {
            char *t = v->sub == XV_NUM_BIG ? mpz_get_str(NULL, 10, *v->u.num.z)
                                           : mpq_get_str(NULL, 10, *v->u.num.q);
            if (t) {
                h = fnv(t, strlen(t), h);
                free(t);
            }
        }
        break;
    }
    case XV_T_STRING:
        h = fnv(v->u.str.s, v->u.str.len, h);
        break;
    case XV_T_ARRAY:
    case XV_T_SET:
        for (i = 0; i < v->u.arr.len; i++)
            h = (h ^ xv_hash(v->u.arr.items[i])) * 16777619u;
        break;
    case XV_T_OBJECT:
        for (i = 0; i < v->u.obj.len; i++) {
            h = (h ^ xv_hash(v->u.obj.keys[i])) * 16777619u;
            h = (h ^ xv_hash(v->u.obj.vals[i])) * 16777619u;
        }
        break;
    default:
        break;
    }
    if (h == 0)
        h = 1;
    if (v->refcnt != XV_REF_FROZEN)
        v->hash = h;
    return h;
}

const char *xv_type_name(const struct xv_value *v)
{
    static const char *const names[] = {"null", "boolean", "number", "string",
                                        "array", "object", "set"};
    return v && v->type <= XV_T_SET ? names[v->type] : "undefined";
}
