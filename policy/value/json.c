/*
 * value/json.c — JSON parsing and JSON / Rego-term printing of xv_values.
 *
 * Invariant: the parser is bounded (nesting depth XV_JSON_MAX_DEPTH) and
 * never reads past len; printing writes sets as arrays in canonical order.
 * Thread safety: pure functions of their arguments.
 */
#include "value/buf.h"
#include "value/xv_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XV_JSON_MAX_DEPTH 512

struct jp {
    const char *s; /* input */
    size_t len;    /* input length */
    size_t i;      /* cursor */
    char *err;     /* message buffer */
    size_t errlen; /* its size */
    int depth;     /* current nesting */
};

/* Record the first parse error with its byte offset; always -1. */
static int jp_fail(struct jp *p, const char *msg)
{
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s at offset %zu", msg, p->i);
    return XV_E_PARSE;
}

/* Skip JSON whitespace (space, tab, CR, LF only, as RFC 8259). */
static void jp_ws(struct jp *p)
{
    while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                             p->s[p->i] == '\r'))
        p->i++;
}

/* A JSON string at p->i (after the quote): escapes decoded, surrogate
 * pairs joined, raw control characters refused. */
static int jp_string(struct jp *p, struct xv_value **out)
{
    struct xv_buf b;
    xv_buf_init(&b, SIZE_MAX / 2);
    p->i++; /* opening quote */
    for (;;) {
        if (p->i >= p->len) {
            xv_buf_free(&b);
            return jp_fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            xv_buf_free(&b);
            return jp_fail(p, "control character in string");
        }
        if (c != '\\') {
            size_t st = p->i;
            while (p->i < p->len && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
                   (unsigned char)p->s[p->i] >= 0x20)
                p->i++;
            if (xv_buf_append(&b, p->s + st, p->i - st)) {
                xv_buf_free(&b);
                return XV_E_NOMEM;
            }
            continue;
        }
        if (p->i + 1 >= p->len) {
            xv_buf_free(&b);
            return jp_fail(p, "bad escape");
        }
        char e = p->s[p->i + 1];
        char ch;
        p->i += 2;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (p->i + 4 > p->len || xv_hex4(p->s + p->i, &cp)) {
                xv_buf_free(&b);
                return jp_fail(p, "bad \\u escape");
            }
            p->i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p->i + 6 <= p->len && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u') {
                uint32_t lo;
                if (!xv_hex4(p->s + p->i + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->i += 6;
                }
            }
            char enc[4];
            size_t n = xv_val_utf8_encode(cp, enc);
            if (xv_buf_append(&b, enc, n)) {
                xv_buf_free(&b);
                return XV_E_NOMEM;
            }
            continue;
        }
        default:
            xv_buf_free(&b);
            return jp_fail(p, "bad escape");
        }
        if (xv_buf_append(&b, &ch, 1)) {
            xv_buf_free(&b);
            return XV_E_NOMEM;
        }
    }
    *out = xv_val_string(b.data ? b.data : "", b.len);
    xv_buf_free(&b);
    return *out ? 0 : XV_E_NOMEM;
}

/* One JSON value at p->i, depth-bounded (XV_JSON_MAX_DEPTH): objects
 * and arrays recursively, numbers exact (value/number.c), keys sorted as
 * they are set. */
static int jp_value(struct jp *p, struct xv_value **out)
{
    *out = NULL;
    jp_ws(p);
    if (p->i >= p->len)
        return jp_fail(p, "unexpected end of input");
    char c = p->s[p->i];
    int rc;
    if (c == '"')
        return jp_string(p, out);
    if (c == '{' || c == '[') {
        if (++p->depth > XV_JSON_MAX_DEPTH)
            return jp_fail(p, "nesting too deep");
        int isobj = c == '{';
        struct xv_value *v = isobj ? xv_val_object_new(0) : xv_val_array_new(0);
        if (!v)
            return XV_E_NOMEM;
        p->i++;
        jp_ws(p);
        if (p->i < p->len && p->s[p->i] == (isobj ? '}' : ']')) {
            p->i++;
            p->depth--;
            *out = v;
            return 0;
        }
        for (;;) {
            struct xv_value *k = NULL, *e = NULL;
            if (isobj) {
                jp_ws(p);
                if (p->i >= p->len || p->s[p->i] != '"') {
                    xv_val_decref(v);
                    return jp_fail(p, "expected object key");
                }
                if ((rc = jp_string(p, &k))) {
                    xv_val_decref(v);
                    return rc;
                }
                jp_ws(p);
                if (p->i >= p->len || p->s[p->i] != ':') {
                    xv_val_decref(k);
                    xv_val_decref(v);
                    return jp_fail(p, "expected ':'");
                }
                p->i++;
            }
            if ((rc = jp_value(p, &e))) {
                xv_val_decref(k);
                xv_val_decref(v);
                return rc;
            }
            rc = isobj ? xv_val_object_set(v, k, e) : xv_val_array_push(v, e);
            xv_val_decref(k);
            xv_val_decref(e);
            if (rc) {
                xv_val_decref(v);
                return rc;
            }
            jp_ws(p);
            if (p->i < p->len && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->len && p->s[p->i] == (isobj ? '}' : ']')) {
                p->i++;
                break;
            }
            xv_val_decref(v);
            return jp_fail(p, isobj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        p->depth--;
        *out = v;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t st = p->i;
        if (p->s[p->i] == '-')
            p->i++;
        while (p->i < p->len && strchr("0123456789.eE+-", p->s[p->i]))
            p->i++;
        *out = xv_val_number_parse(p->s + st, p->i - st);
        return *out ? 0 : jp_fail(p, "bad number");
    }
    if (p->len - p->i >= 4 && !memcmp(p->s + p->i, "true", 4)) {
        p->i += 4;
        *out = xv_val_bool(1);
        return 0;
    }
    if (p->len - p->i >= 5 && !memcmp(p->s + p->i, "false", 5)) {
        p->i += 5;
        *out = xv_val_bool(0);
        return 0;
    }
    if (p->len - p->i >= 4 && !memcmp(p->s + p->i, "null", 4)) {
        p->i += 4;
        *out = xv_val_null();
        return 0;
    }
    return jp_fail(p, "unexpected character");
}

/* Parse s[0..len) as one JSON document (trailing whitespace only). */
int xv_val_json_parse(const char *s, size_t len, struct xv_value **out, char *err, size_t errlen)
{
    struct jp p = {s, len, 0, err, errlen, 0};
    int rc = jp_value(&p, out);
    if (rc)
        return rc;
    jp_ws(&p);
    if (p.i != len) {
        xv_val_decref(*out);
        *out = NULL;
        return jp_fail(&p, "trailing characters");
    }
    return 0;
}

/* ---- printing ---- */

int xv_val_json_write_string(struct xv_buf *b, const char *s, size_t len, int flags)
{
    static const char hexd[] = "0123456789abcdef";
    int rc = xv_buf_append(b, "\"", 1);
    size_t st = 0, i = 0;
    while (i < len && !rc) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || ((flags & XV_JSON_HTML_ESCAPE) && (c == '<' || c == '>' || c == '&'))) {
            snprintf(tmp, sizeof tmp, "\\u00%c%c", hexd[c >> 4], hexd[c & 15]);
            esc = tmp;
        } else if (c >= 0x80) {
            size_t j = i;
            uint32_t cp = xv_val_utf8_next(s, len, &j);
            adv = j - i;
            if (cp == 0xFFFD && adv == 1)
                esc = "\\ufffd"; /* invalid byte: Go writes U+FFFD */
            else if (cp == 0x2028 || cp == 0x2029)
                esc = cp == 0x2028 ? "\\u2028" : "\\u2029";
        }
        if (esc) {
            rc = xv_buf_append(b, s + st, i - st);
            if (!rc)
                rc = xv_buf_append(b, esc, strlen(esc));
            i += adv;
            st = i;
        } else {
            i += adv;
        }
    }
    if (!rc)
        rc = xv_buf_append(b, s + st, len - st);
    if (!rc)
        rc = xv_buf_append(b, "\"", 1);
    return rc;
}

/* A number as OPA prints it: the text it was read from when it has one,
 * else integers in full and rationals as their exact decimal expansion. */
int xv_val_number_write(struct xv_buf *b, const struct xv_value *v)
{
    if (v->u.num.text)
        return xv_buf_append(b, v->u.num.text, strlen(v->u.num.text));
    if (v->sub == XV_NUM_INT)
        return xv_buf_appendf(b, "%lld", (long long)v->u.num.i);
    if (v->sub == XV_NUM_BIG) {
        char *t = mpz_get_str(NULL, 10, *v->u.num.z);
        int rc = t ? xv_buf_append(b, t, strlen(t)) : XV_E_NOMEM;
        free(t);
        return rc;
    }
    /* Exact decimal: num * 10^k / den for the smallest k making it integral. */
    const mpq_t *q = (const mpq_t *)v->u.num.q;
    mpz_t n, d;
    mpz_init_set(n, mpq_numref(*q));
    mpz_init_set(d, mpq_denref(*q));
    int neg = mpz_sgn(n) < 0;
    mpz_abs(n, n);
    size_t k = 0;
    while (!mpz_divisible_p(n, d) && k < 100000) {
        mpz_mul_ui(n, n, 10);
        k++;
    }
    mpz_divexact(n, n, d);
    char *t = mpz_get_str(NULL, 10, n);
    mpz_clear(n);
    mpz_clear(d);
    if (!t)
        return XV_E_NOMEM;
    size_t tl = strlen(t);
    int rc = 0;
    if (neg)
        rc = xv_buf_append(b, "-", 1);
    if (tl <= k) {
        rc = rc ? rc : xv_buf_append(b, "0.", 2);
        for (size_t z = tl; z < k && !rc; z++)
            rc = xv_buf_append(b, "0", 1);
        rc = rc ? rc : xv_buf_append(b, t, tl);
    } else {
        rc = rc ? rc : xv_buf_append(b, t, tl - k);
        rc = rc ? rc : xv_buf_append(b, ".", 1);
        rc = rc ? rc : xv_buf_append(b, t + tl - k, k);
    }
    free(t);
    return rc;
}

/* Newline and indentation for pretty output (XV_JSON_PRETTY). */
static int indent(struct xv_buf *b, int flags, int depth)
{
    if (!(flags & XV_JSON_PRETTY))
        return 0;
    int rc = xv_buf_append(b, "\n", 1);
    for (int i = 0; i < depth && !rc; i++)
        rc = xv_buf_append(b, "  ", 2);
    return rc;
}

/* v as JSON into b: sets become arrays in canonical order, object keys
 * that are not strings are written as their JSON text (as OPA does). */
static int json_write(struct xv_buf *b, const struct xv_value *v, int flags, int depth)
{
    size_t i;
    int rc = 0;
    switch (v->type) {
    case XV_T_NULL:
        return xv_buf_append(b, "null", 4);
    case XV_T_BOOL:
        return v->u.b ? xv_buf_append(b, "true", 4) : xv_buf_append(b, "false", 5);
    case XV_T_NUMBER:
        return xv_val_number_write(b, v);
    case XV_T_STRING:
        return xv_val_json_write_string(b, v->u.str.s, v->u.str.len, flags);
    case XV_T_ARRAY:
    case XV_T_SET:
        rc = xv_buf_append(b, "[", 1);
        for (i = 0; i < v->u.arr.len && !rc; i++) {
            if (i)
                rc = xv_buf_append(b, ",", 1);
            rc = rc ? rc : indent(b, flags, depth + 1);
            rc = rc ? rc : json_write(b, v->u.arr.items[i], flags, depth + 1);
        }
        if (!rc && v->u.arr.len)
            rc = indent(b, flags, depth);
        return rc ? rc : xv_buf_append(b, "]", 1);
    case XV_T_OBJECT:
        rc = xv_buf_append(b, "{", 1);
        for (i = 0; i < v->u.obj.len && !rc; i++) {
            const struct xv_value *k = v->u.obj.keys[i];
            if (i)
                rc = xv_buf_append(b, ",", 1);
            rc = rc ? rc : indent(b, flags, depth + 1);
            if (rc)
                break;
            if (k->type == XV_T_STRING) {
                rc = xv_val_json_write_string(b, k->u.str.s, k->u.str.len, flags);
            } else {
                struct xv_buf kb;
                xv_buf_init(&kb, b->max);
                rc = json_write(&kb, k, 0, 0);
                if (!rc)
                    rc = xv_val_json_write_string(b, kb.data ? kb.data : "", kb.len, flags);
                xv_buf_free(&kb);
            }
            rc = rc ? rc : xv_buf_append(b, (flags & XV_JSON_PRETTY) ? ": " : ":",
                                         (flags & XV_JSON_PRETTY) ? 2 : 1);
            rc = rc ? rc : json_write(b, v->u.obj.vals[i], flags, depth + 1);
        }
        if (!rc && v->u.obj.len)
            rc = indent(b, flags, depth);
        return rc ? rc : xv_buf_append(b, "}", 1);
    }
    return 0;
}

int xv_val_json_write(struct xv_buf *b, const struct xv_value *v, int flags)
{
    return json_write(b, v, flags, 0);
}

/* json_write into a new NUL-terminated string. */
char *xv_val_json_dump(const struct xv_value *v, int flags)
{
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 30);
    if (xv_val_json_write(&b, v, flags) || xv_buf_append(&b, "", 0)) {
        xv_buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return strdup("");
    return xv_buf_steal(&b, NULL);
}

/* v as Rego term text (sets as {…}, the empty set as set()), for error
 * messages and print. */
int xv_val_rego_write(struct xv_buf *b, const struct xv_value *v)
{
    size_t i;
    int rc = 0;
    switch (v->type) {
    case XV_T_ARRAY:
        rc = xv_buf_append(b, "[", 1);
        for (i = 0; i < v->u.arr.len && !rc; i++) {
            if (i)
                rc = xv_buf_append(b, ", ", 2);
            rc = rc ? rc : xv_val_rego_write(b, v->u.arr.items[i]);
        }
        return rc ? rc : xv_buf_append(b, "]", 1);
    case XV_T_SET:
        if (v->u.arr.len == 0)
            return xv_buf_append(b, "set()", 5);
        rc = xv_buf_append(b, "{", 1);
        for (i = 0; i < v->u.arr.len && !rc; i++) {
            if (i)
                rc = xv_buf_append(b, ", ", 2);
            rc = rc ? rc : xv_val_rego_write(b, v->u.arr.items[i]);
        }
        return rc ? rc : xv_buf_append(b, "}", 1);
    case XV_T_OBJECT:
        rc = xv_buf_append(b, "{", 1);
        for (i = 0; i < v->u.obj.len && !rc; i++) {
            if (i)
                rc = xv_buf_append(b, ", ", 2);
            rc = rc ? rc : xv_val_rego_write(b, v->u.obj.keys[i]);
            rc = rc ? rc : xv_buf_append(b, ": ", 2);
            rc = rc ? rc : xv_val_rego_write(b, v->u.obj.vals[i]);
        }
        return rc ? rc : xv_buf_append(b, "}", 1);
    default:
        return json_write(b, v, 0, 0);
    }
}
