/*
 * builtins/encoding.c — base64*, base64url*, hex.* and urlquery.* builtins
 * (crypto.* is builtins/crypto.c, uuid.* builtins/uuid.c).
 *
 * Invariant: decoders are as strict as Go's (base64.StdEncoding requires
 * padding and rejects stray characters, except CR/LF which Go skips; hex
 * and URL escapes report Go's error texts).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define OOM(ctx) xv_bi_error((ctx), "out of memory")

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64 (standard or URL alphabet), padded or not, appended to b. */
void xv_bi_b64_encode(struct xv_val_buf *b, const unsigned char *s, size_t n, bool url,
                             bool pad)
{
    const char *alpha = url ? b64url : b64std;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        char q[4] = {alpha[v >> 18], alpha[(v >> 12) & 63], alpha[(v >> 6) & 63], alpha[v & 63]};
        xv_val_buf_add(b, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        xv_val_buf_addc(b, alpha[v >> 18]);
        xv_val_buf_addc(b, alpha[(v >> 12) & 63]);
        if (pad)
            xv_val_buf_adds(b, "==");
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        xv_val_buf_addc(b, alpha[v >> 18]);
        xv_val_buf_addc(b, alpha[(v >> 12) & 63]);
        xv_val_buf_addc(b, alpha[(v >> 6) & 63]);
        if (pad)
            xv_val_buf_addc(b, '=');
    }
    if (n == 0)
        xv_val_buf_add(b, "", 0);
}

/* Go's base64 decoder: padding required, CR/LF skipped; -1 on success
 * or the offset of the first illegal byte (Go's error text names it). */
long xv_bi_b64_decode(struct xv_val_buf *b, const char *s, size_t n, bool url)
{
    const char *alpha = url ? b64url : b64std;
    int8_t map[256];
    memset(map, -1, sizeof map);
    for (int i = 0; i < 64; i++)
        map[(unsigned char)alpha[i]] = (int8_t)i;
    unsigned q[4];
    int nq = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            i++;
            continue;
        }
        if (c == '=') {
            /* padding: only valid after 2 or 3 symbols, then the end */
            if (nq < 2)
                return (long)i;
            size_t j = i + 1;
            if (nq == 2) {
                while (j < n && (s[j] == '\r' || s[j] == '\n'))
                    j++;
                if (j >= n || s[j] != '=')
                    return (long)(j >= n ? n : j);
                j++;
            }
            while (j < n && (s[j] == '\r' || s[j] == '\n'))
                j++;
            if (j < n)
                return (long)j;
            unsigned v = q[0] << 18 | q[1] << 12 | (nq > 2 ? q[2] << 6 : 0);
            xv_val_buf_addc(b, (char)(v >> 16));
            if (nq == 3)
                xv_val_buf_addc(b, (char)(v >> 8));
            nq = 0;
            i = n;
            break;
        }
        if (map[c] < 0)
            return (long)i;
        q[nq++] = (unsigned)map[c];
        if (nq == 4) {
            unsigned v = q[0] << 18 | q[1] << 12 | q[2] << 6 | q[3];
            char o[3] = {(char)(v >> 16), (char)(v >> 8), (char)v};
            xv_val_buf_add(b, o, 3);
            nq = 0;
        }
        i++;
    }
    if (nq != 0)
        return (long)n;   /* Go reports the end of input for missing padding */
    xv_val_buf_add(b, "", 0);
    return -1;
}

BI_FN(bi_b64_encode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    xv_bi_b64_encode(&b, (const unsigned char *)S(a[0]), SL(a[0]), false, true);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_b64_decode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    long bad = xv_bi_b64_decode(&b, S(a[0]), SL(a[0]), false);
    if (bad >= 0) {
        xv_val_buf_free(&b);
        return xv_bi_error(ctx, "illegal base64 data at input byte %ld", bad);
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_b64_is_valid)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    long bad = xv_bi_b64_decode(&b, S(a[0]), SL(a[0]), false);
    xv_val_buf_free(&b);
    *out = xv_val_bool(bad < 0);
    return XV_BI_OK;
}

BI_FN(bi_b64url_encode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    xv_bi_b64_encode(&b, (const unsigned char *)S(a[0]), SL(a[0]), true, true);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_b64url_encode_no_pad)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    xv_bi_b64_encode(&b, (const unsigned char *)S(a[0]), SL(a[0]), true, false);
    return xv_bi_ret_buf(ctx, &b, out);
}

/* base64url.decode: padding is optional (restored first, RFC 7515
 * appendix C). */
BI_FN(bi_b64url_decode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    const char *s = S(a[0]);
    size_t n = SL(a[0]);
    /* RFC 7515 appendix C: restore omitted padding */
    char *tmp = malloc(n + 3);
    if (!tmp)
        return OOM(ctx);
    memcpy(tmp, s, n);
    size_t tn = n;
    if (!(n > 0 && s[n - 1] == '=')) {
        switch (n % 4) {
        case 0: break;
        case 2: tmp[tn++] = '='; tmp[tn++] = '='; break;
        case 3: tmp[tn++] = '='; break;
        default:
            free(tmp);
            return xv_bi_error(ctx, "illegal base64url string: %.*s", (int)(n > 200 ? 200 : n), s);
        }
    }
    struct xv_val_buf b = {0};
    long bad = xv_bi_b64_decode(&b, tmp, tn, true);
    free(tmp);
    if (bad >= 0) {
        xv_val_buf_free(&b);
        return xv_bi_error(ctx, "illegal base64 data at input byte %ld", bad);
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

/* ---- hex ---- */

void xv_bi_hex_bytes(struct xv_val_buf *b, const unsigned char *s, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        xv_val_buf_addc(b, d[s[i] >> 4]);
        xv_val_buf_addc(b, d[s[i] & 15]);
    }
    if (n == 0)
        xv_val_buf_add(b, "", 0);
}

int xv_bi_hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

BI_FN(bi_hex_encode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    xv_bi_hex_bytes(&b, (const unsigned char *)S(a[0]), SL(a[0]));
    return xv_bi_ret_buf(ctx, &b, out);
}

/* hex.decode: pairs of hex digits; Go's error texts for an odd length or
 * a bad digit. */
BI_FN(bi_hex_decode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    const unsigned char *s = (const unsigned char *)S(a[0]);
    size_t n = SL(a[0]);
    struct xv_val_buf b = {0};
    /* Go checks each pair's bytes before the odd-length rule */
    size_t i;
    for (i = 0; i + 1 < n; i += 2) {
        int hi = xv_bi_hexv(s[i]), lo = xv_bi_hexv(s[i + 1]);
        size_t badat = hi < 0 ? i : (lo < 0 ? i + 1 : n);
        if (badat < n) {
            xv_val_buf_free(&b);
            uint32_t cp;
            xv_val_utf8_decode((const char *)s + badat, n - badat, &cp);
            char ch[5] = {0};
            xv_val_utf8_encode(cp, ch);
            return xv_bi_error(ctx, "encoding/hex: invalid byte: U+%04X '%s'", (unsigned)cp, ch);
        }
        xv_val_buf_addc(&b, (char)(hi << 4 | lo));
    }
    if (n % 2) {
        xv_val_buf_free(&b);
        if (xv_bi_hexv(s[n - 1]) < 0) {
            uint32_t cp;
            xv_val_utf8_decode((const char *)s + n - 1, 1, &cp);
            return xv_bi_error(ctx, "encoding/hex: invalid byte: U+%04X", (unsigned)cp);
        }
        return xv_bi_error(ctx, "encoding/hex: odd length hex string");
    }
    xv_val_buf_add(&b, "", 0);
    return xv_bi_ret_buf(ctx, &b, out);
}

/* ---- urlquery ---- */

static void query_escape(struct xv_val_buf *b, const char *s, size_t n)
{
    static const char d[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            xv_val_buf_addc(b, (char)c);
        } else if (c == ' ') {
            xv_val_buf_addc(b, '+');
        } else {
            char e[3] = {'%', d[c >> 4], d[c & 15]};
            xv_val_buf_add(b, e, 3);
        }
    }
    if (n == 0)
        xv_val_buf_add(b, "", 0);
}

/* url.QueryUnescape; returns 0 or the offset of a bad escape (+1). */
static size_t query_unescape(struct xv_val_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || xv_bi_hexv((unsigned char)s[i + 1]) < 0 ||
                xv_bi_hexv((unsigned char)s[i + 2]) < 0)
                return i + 1;
            xv_val_buf_addc(b, (char)(xv_bi_hexv((unsigned char)s[i + 1]) << 4 |
                                            xv_bi_hexv((unsigned char)s[i + 2])));
            i += 2;
        } else if (s[i] == '+') {
            xv_val_buf_addc(b, ' ');
        } else {
            xv_val_buf_addc(b, s[i]);
        }
    }
    xv_val_buf_add(b, "", 0);
    return 0;
}

static int bad_escape(struct xv_bctx *ctx, const char *s, size_t n, size_t at)
{
    size_t e = at + 2 < n ? at + 3 : n;
    return xv_bi_error(ctx, "invalid URL escape \"%.*s\"", (int)(e - at), s + at);
}

BI_FN(bi_url_encode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    query_escape(&b, S(a[0]), SL(a[0]));
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_url_decode)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    size_t bad = query_unescape(&b, S(a[0]), SL(a[0]));
    if (bad) {
        xv_val_buf_free(&b);
        return bad_escape(ctx, S(a[0]), SL(a[0]), bad - 1);
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

/* urlquery.encode_object: key=value pairs joined by &, values a string
 * or a list of strings, in key order (url.Values.Encode sorts). */
BI_FN(bi_url_encode_object)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    const struct xv_value *o = a[0];
    struct xv_val_buf b = {0};
    bool first = true;
    /* object keys are already sorted, as url.Values.Encode sorts them */
    for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
        const struct xv_value *k = XV_OBJ_KEY(o, i), *v = XV_OBJ_VAL(o, i);
        if (!XV_IS(k, XV_T_STRING)) {
            xv_val_buf_free(&b);
            return xv_bi_type_error(ctx, 1, "object[string: string|array[string]|set[string]]", o);
        }
        const struct xv_value *const *items;
        size_t cnt;
        const struct xv_value *one = v;
        if (XV_IS(v, XV_T_STRING)) {
            items = &one;
            cnt = 1;
        } else if (XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET)) {
            items = (const struct xv_value *const *)v->u.arr.items;
            cnt = v->u.arr.len;
        } else {
            xv_val_buf_free(&b);
            return xv_bi_operand_err(ctx, 1, "must be string, array[string] or set[string] "
                                                    "but got %s", xv_val_type_name(v));
        }
        for (size_t j = 0; j < cnt; j++) {
            if (!XV_IS(items[j], XV_T_STRING)) {
                xv_val_buf_free(&b);
                return xv_bi_elem_err(ctx, 1, v, items[j], "string");
            }
            if (!first)
                xv_val_buf_addc(&b, '&');
            first = false;
            query_escape(&b, S(k), SL(k));
            xv_val_buf_addc(&b, '=');
            query_escape(&b, S(items[j]), SL(items[j]));
        }
    }
    xv_val_buf_add(&b, "", 0);
    return xv_bi_ret_buf(ctx, &b, out);
}

/* urlquery.decode_object: a query string to {key: [values…]}. */
BI_FN(bi_url_decode_object)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    const char *s = S(a[0]);
    size_t n = SL(a[0]), i = 0;
    struct xv_value *obj = xv_val_object_new(4);
    if (!obj)
        return OOM(ctx);
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t e = amp ? (size_t)(amp - s) : n;
        if (e > i) {
            const char *eq = memchr(s + i, '=', e - i);
            size_t ke = eq ? (size_t)(eq - s) : e;
            struct xv_val_buf kb = {0}, vb = {0};
            size_t bk = query_unescape(&kb, s + i, ke - i);
            size_t bv = eq ? query_unescape(&vb, s + ke + 1, e - ke - 1) : 0;
            if (!eq)
                xv_val_buf_add(&vb, "", 0);
            if (bk || bv) {
                xv_val_buf_free(&kb);
                xv_val_buf_free(&vb);
                xv_val_decref(obj);
                return bk ? bad_escape(ctx, s + i, ke - i, bk - 1)
                          : bad_escape(ctx, s + ke + 1, e - ke - 1, bv - 1);
            }
            struct xv_value *k = xv_val_string(kb.p, kb.len), *v = xv_val_string(vb.p, vb.len);
            xv_val_buf_free(&kb);
            xv_val_buf_free(&vb);
            long at = k ? xv_val_object_find(obj, k) : -1;
            struct xv_value *arr = at >= 0 ? xv_val_copy(XV_OBJ_VAL(obj, at)) : xv_val_array_new(1);
            int rc = (!k || !v || !arr || xv_val_array_push(arr, v) || xv_val_object_set(obj, k, arr));
            xv_val_decref(k);
            xv_val_decref(v);
            xv_val_decref(arr);
            if (rc) {
                xv_val_decref(obj);
                return OOM(ctx);
            }
        }
        i = e + 1;
    }
    *out = obj;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_encoding[] = {
    {"base64.encode", 1, bi_b64_encode, 0},
    {"base64.decode", 1, bi_b64_decode, 0},
    {"base64.is_valid", 1, bi_b64_is_valid, 0},
    {"base64url.encode", 1, bi_b64url_encode, 0},
    {"base64url.encode_no_pad", 1, bi_b64url_encode_no_pad, 0},
    {"base64url.decode", 1, bi_b64url_decode, 0},
    {"hex.encode", 1, bi_hex_encode, 0},
    {"hex.decode", 1, bi_hex_decode, 0},
    {"urlquery.encode", 1, bi_url_encode, 0},
    {"urlquery.decode", 1, bi_url_decode, 0},
    {"urlquery.encode_object", 1, bi_url_encode_object, 0},
    {"urlquery.decode_object", 1, bi_url_decode_object, 0},
    {NULL, 0, NULL, 0},
};
