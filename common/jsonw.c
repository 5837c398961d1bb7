/*
 * jsonw.c — the JSON text writer of xv_jsonw.h: records written as text in
 * one pass, byte for byte what cJSON printed for the same tree after the
 * exporter's UTF-8 repair.
 *
 * Invariant: while !oom the text is NUL-terminated and, once every
 * begin has its end, one valid JSON value in valid UTF-8.
 *
 * Thread safety: a writer belongs to one thread; no global state.
 */
#include "xv_jsonw.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "xv_common.h"
#include "xv_word.h"

void xv_jw_init(struct xv_jw *w, size_t hint)
{
    w->p = NULL;
    w->len = 0;
    w->cap = hint;
    w->oom = 0;
    w->comma = 0;
}

void xv_jw_reset(struct xv_jw *w, size_t keep_max)
{
    if (w->oom || w->cap > keep_max) {
        free(w->p);
        w->p = NULL;
        w->cap = 0;
    }
    w->len = 0;
    w->oom = 0;
    w->comma = 0;
    if (w->p)
        w->p[0] = '\0';
}

void xv_jw_free(struct xv_jw *w)
{
    free(w->p);
    xv_jw_init(w, 0);
}

char *xv_jw_steal(struct xv_jw *w, size_t *len)
{
    char *p = w->oom ? NULL : w->p;
    if (w->oom)
        free(w->p);
    else if (!p && (p = malloc(1)) != NULL)
        p[0] = '\0';
    if (len)
        *len = p ? w->len : 0;
    xv_jw_init(w, 0);
    return p;
}

/* Growing: room for n more bytes and the NUL; -1 (oom set) when it
 * cannot be had. */
static int grow(struct xv_jw *w, size_t n)
{
    if (w->oom)
        return -1;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            w->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(w->p, cap);
    if (!p) {
        w->oom = 1;
        return -1;
    }
    w->p = p;
    w->cap = cap;
    return 0;
}

/* Room for n more bytes and the NUL (the common case inline). */
static inline int reserve(struct xv_jw *w, size_t n)
{
    if (w->p && !w->oom && w->len + n + 1 <= w->cap)
        return 0;
    return grow(w, n);
}

static void put(struct xv_jw *w, const char *s, size_t n)
{
    if (reserve(w, n) == 0) {
        memcpy(w->p + w->len, s, n);
        w->len += n;
        w->p[w->len] = '\0';
    }
}

static void put_ch(struct xv_jw *w, char ch)
{
    if (reserve(w, 1) == 0) {
        w->p[w->len++] = ch;
        w->p[w->len] = '\0';
    }
}

/* The separator before a value at the current level. */
static void sep(struct xv_jw *w)
{
    if (w->comma)
        put_ch(w, ',');
    w->comma = 1;
}

void xv_jw_escaped(struct xv_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char *end = s + n;
    put_ch(w, '"');
    while (s < end) {
        const char *run = s;
        while (s < end && (unsigned char)*s >= 0x20 && *s != '"' && *s != '\\')
            s++;
        if (s > run)
            put(w, run, (size_t)(s - run));
        if (s == end)
            break;
        char e[6] = { '\\', 0 };
        size_t k = 2;
        switch (*s) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[((unsigned char)*s >> 4) & 0xF];
            e[5] = hex[(unsigned char)*s & 0xF];
            k = 6;
        }
        put(w, e, k);
        s++;
    }
    put_ch(w, '"');
}

/* 1 for a byte written as it is in a JSON string (printable ASCII other
 * than '"' and '\\'): one load per byte in the short-string loops. */
#define XV_PLAIN16(b) (b) >= 0x20 && (b) < 0x80 && (b) != '"' && (b) != '\\'
static const unsigned char g_plain[256] = {
#define P1(b) [b] = (XV_PLAIN16(b)),
#define P4(b) P1(b) P1(b + 1) P1(b + 2) P1(b + 3)
#define P16(b) P4(b) P4(b + 4) P4(b + 8) P4(b + 12)
    P16(0x20) P16(0x30) P16(0x40) P16(0x50) P16(0x60) P16(0x70)
#undef P16
#undef P4
#undef P1
};
#undef XV_PLAIN16

/* How many of s's n bytes from the start are printable ASCII other than
 * '"' and '\\' (written as they are): xv_word.h's scan. */
static inline size_t plain_prefix(const char *s, size_t n)
{
    return xv_json_plain_len(s, n, 1);
}

/* A string by the record rules: cut at the first NUL, repaired when it is
 * not UTF-8 (exactly what the exporter did to a cJSON string). Nearly
 * every string is printable ASCII: one scan, one copy. */
static void string_value(struct xv_jw *w, const char *s, size_t n)
{
    if (!s)
        s = "", n = 0;
    size_t i = plain_prefix(s, n);
    if (i == n) {
        if (reserve(w, n + 2) == 0) {
            char *d = w->p + w->len;
            d[0] = '"';
            memcpy(d + 1, s, n);
            d[n + 1] = '"';
            w->len += n + 2;
            w->p[w->len] = '\0';
        }
        return;
    }
    const char *nul = memchr(s + i, '\0', n - i);
    if (nul)
        n = (size_t)(nul - s);
    if (xv_utf8_valid(s + i, n - i)) {
        xv_jw_escaped(w, s, n);
        return;
    }
    char *t = xv_utf8_fix(s, n, 3 * n, NULL);
    if (!t) {
        w->oom = 1;
        return;
    }
    xv_jw_escaped(w, t, strlen(t));
    free(t);
}

void xv_jw_obj_begin(struct xv_jw *w)
{
    sep(w);
    put_ch(w, '{');
    w->comma = 0;
}

void xv_jw_obj_end(struct xv_jw *w)
{
    put_ch(w, '}');
    w->comma = 1;
}

void xv_jw_arr_begin(struct xv_jw *w)
{
    sep(w);
    put_ch(w, '[');
    w->comma = 0;
}

void xv_jw_arr_end(struct xv_jw *w)
{
    put_ch(w, ']');
    w->comma = 1;
}

void xv_jw_key_l(struct xv_jw *w, const char *key, size_t klen)
{
    /* A literal (klen known): plain by the header's rule. Otherwise one
     * pass: its length and that every byte is plain; anything else takes
     * the general path. */
    size_t n = 0;
    if (klen != (size_t)-1 && key)
        n = klen;
    else if (key)
        while (g_plain[(unsigned char)key[n]])
            n++;
    if (key && !key[n] && reserve(w, n + 4) == 0) {
        /* The usual key (plain ASCII): ,"key": in one copy. */
        char *d = w->p + w->len;
        if (w->comma)
            *d++ = ',';
        *d++ = '"';
        memcpy(d, key, n);
        d += n;
        *d++ = '"';
        *d++ = ':';
        *d = '\0';
        w->len = (size_t)(d - w->p);
        w->comma = 0;
        return;
    }
    sep(w);
    string_value(w, key, key ? n + strlen(key + n) : 0);
    put_ch(w, ':');
    w->comma = 0;
}

void xv_jw_strn(struct xv_jw *w, const char *s, size_t n)
{
    sep(w);
    string_value(w, s, n);
}

void xv_jw_str(struct xv_jw *w, const char *s)
{
    xv_jw_strn(w, s, s ? strlen(s) : 0);
}

void xv_jw_strn_max(struct xv_jw *w, const char *s, size_t n, size_t max, int *cut)
{
    if (!s)
        s = "", n = 0;
    /* Bytes past max + 4 cannot change what is written: every input byte
     * becomes at least one output byte, and a sequence that starts before
     * max ends by max + 3. They are not scanned (a long history's older
     * messages, whose budget is 0 or small, cost nothing per byte). */
    size_t look = n > max && n - max > 4 ? max + 4 : n;
    if (xv_utf8_valid(s, look)) {
        size_t k = xv_utf8_cut(s, look, max);
        if (k < n)
            *cut = 1;
        xv_jw_strn(w, s, k);
        return;
    }
    char *t = xv_utf8_fix(s, look, max, cut); /* sets *cut when look < n: it stops by max */
    if (!t) {
        w->oom = 1;
        return;
    }
    xv_jw_str(w, t);
    free(t);
}

size_t xv_jw_format_number(double d, char buf[40])
{
    if (isnan(d) || isinf(d)) {
        memcpy(buf, "null", 4);
        return 4;
    }
    if (fabs(d) < 1e15 && (double)(long long)d == d && !(d == 0 && signbit(d))) {
        /* What "%1.15g" prints for an integer below 10^15: its digits. */
        long long v = (long long)d;
        char tmp[24], *e = tmp + sizeof tmp, *p = e;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        memcpy(buf, p, (size_t)(e - p));
        return (size_t)(e - p);
    }
    /* A decimal with at most six places (0.2, 0.7, 1.25 — sampling
     * parameters, prices): when d is the double nearest to n / 10^k it is
     * what "%1.15g" prints (see xv_jw_format_scaled), without printf and
     * strtod. From 1e-4 up, where %g prints no exponent. */
    double a = fabs(d);
    if (a >= 1e-4 && a < 1e9) {
        static const double p10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
        for (int k = 1; k <= 6; k++) {
            double x = a * p10[k];
            uint64_t m = (uint64_t)x;
            if ((double)m == x && (double)m / p10[k] == a) {
                size_t off = d < 0;
                if (off)
                    buf[0] = '-';
                return off + xv_jw_format_scaled(m, k, buf + off);
            }
        }
    }
    /* Read back in the same locale it was printed in, as cJSON does. */
    int n = snprintf(buf, 40, "%1.15g", d);
    double back = strtod(buf, NULL);
    double max = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= max * DBL_EPSILON))
        n = snprintf(buf, 40, "%1.17g", d);
    if (n < 0)
        n = 0;
    if (n > 39)
        n = 39;
    for (int i = 0; i < n; i++) /* a locale's decimal comma */
        if (buf[i] == ',')
            buf[i] = '.';
    return (size_t)n;
}

size_t xv_jw_format_scaled(uint64_t n, int k, char buf[40])
{
    static const uint64_t p10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    k = k < 0 ? 0 : k > 6 ? 6 : k; /* the contract: 0 <= k <= 6 */
    /* The decimal x = n / 10^k has at most 15 significant digits, and the
     * double n / 10^k is within half an ulp of it, far inside half a unit
     * of the 15th digit: "%1.15g" prints x exactly and reads back to the
     * same double. Below 1e-4 %g turns to an exponent: printf's way. */
    if (n >= 1000000000000000ULL || (n > 0 && k >= 4 && n < p10[k - 4]))
        return xv_jw_format_number((double)n / (double)p10[k], buf);
    uint64_t ip = n / p10[k], fp = n % p10[k];
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    int fd = k;
    while (fd > 0 && fp % 10 == 0) /* trailing zeros of the fraction go */
        fp /= 10, fd--;
    for (int i = 0; i < fd; i++, fp /= 10)
        *--p = (char)('0' + fp % 10);
    if (fd)
        *--p = '.';
    do {
        *--p = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    memcpy(buf, p, (size_t)(e - p));
    return (size_t)(e - p);
}

void xv_jw_kscaled_l(struct xv_jw *w, const char *key, size_t klen, uint64_t n, int k)
{
    char buf[40];
    size_t len = xv_jw_format_scaled(n, k, buf);
    xv_jw_key_l(w, key, klen);
    sep(w);
    put(w, buf, len);
}

void xv_jw_num(struct xv_jw *w, double d)
{
    char buf[40];
    size_t n = xv_jw_format_number(d, buf);
    sep(w);
    put(w, buf, n);
}

void xv_jw_bool(struct xv_jw *w, int b)
{
    sep(w);
    put(w, b ? "true" : "false", b ? 4 : 5);
}

void xv_jw_null(struct xv_jw *w)
{
    sep(w);
    put(w, "null", 4);
}

void xv_jw_raw(struct xv_jw *w, const char *p, size_t n)
{
    sep(w);
    put(w, p, n);
}

struct xv_jw_mark xv_jw_mark(const struct xv_jw *w)
{
    struct xv_jw_mark m = { w->len, w->comma };
    return m;
}

void xv_jw_rewind(struct xv_jw *w, struct xv_jw_mark m)
{
    if (w->oom || m.len > w->len)
        return;
    w->len = m.len;
    w->comma = m.comma;
    if (w->p)
        w->p[w->len] = '\0';
}

void xv_jw_insert(struct xv_jw *w, size_t at, const char *p, size_t n)
{
    if (at > w->len || reserve(w, n) != 0)
        return;
    memmove(w->p + at + n, w->p + at, w->len - at + 1); /* with the NUL */
    memcpy(w->p + at, p, n);
    w->len += n;
}

void xv_jw_kstr_l(struct xv_jw *w, const char *key, size_t klen, const char *s)
{
    xv_jw_key_l(w, key, klen);
    xv_jw_str(w, s);
}

void xv_jw_knum_l(struct xv_jw *w, const char *key, size_t klen, double d)
{
    xv_jw_key_l(w, key, klen);
    xv_jw_num(w, d);
}

void xv_jw_kbool_l(struct xv_jw *w, const char *key, size_t klen, int b)
{
    xv_jw_key_l(w, key, klen);
    xv_jw_bool(w, b);
}

/* depth: cJSON's parser caps nesting at 1000; records are shallow. */
static void tree_value(struct xv_jw *w, const cJSON *item, int repair, int depth)
{
    if (depth > 1000) {
        w->oom = 1; /* refuse, as cJSON would run out of stack first */
        return;
    }
    switch (item->type & 0xFF) {
    case cJSON_NULL: xv_jw_null(w); break;
    case cJSON_False: xv_jw_bool(w, 0); break;
    case cJSON_True: xv_jw_bool(w, 1); break;
    case cJSON_Number: xv_jw_num(w, item->valuedouble); break;
    case cJSON_Raw:
        if (!item->valuestring) {
            w->oom = 1; /* cJSON fails the whole print */
            return;
        }
        xv_jw_raw(w, item->valuestring, strlen(item->valuestring));
        break;
    case cJSON_String:
        if (repair) {
            xv_jw_str(w, item->valuestring);
        } else {
            sep(w);
            xv_jw_escaped(w, item->valuestring ? item->valuestring : "",
                          item->valuestring ? strlen(item->valuestring) : 0);
        }
        break;
    case cJSON_Array:
        xv_jw_arr_begin(w);
        for (const cJSON *c = item->child; c && !w->oom; c = c->next)
            tree_value(w, c, repair, depth + 1);
        xv_jw_arr_end(w);
        break;
    case cJSON_Object:
        xv_jw_obj_begin(w);
        for (const cJSON *c = item->child; c && !w->oom; c = c->next) {
            if (repair) {
                xv_jw_key(w, c->string);
            } else {
                sep(w);
                xv_jw_escaped(w, c->string ? c->string : "", c->string ? strlen(c->string) : 0);
                put_ch(w, ':');
                w->comma = 0;
            }
            tree_value(w, c, repair, depth + 1);
        }
        xv_jw_obj_end(w);
        break;
    default:
        w->oom = 1; /* an invalid item: cJSON prints nothing either */
    }
}

int xv_jw_cjson(struct xv_jw *w, const cJSON *item, int repair)
{
    if (!item) {
        w->oom = 1;
        return -1;
    }
    tree_value(w, item, repair, 0);
    return w->oom ? -1 : 0;
}
