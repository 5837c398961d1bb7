/*
 * value/utf8.c — the byte buffer and UTF-8 code-point helpers used by the
 * builtins (see bi_util.h).
 *
 * Invariant: decoding follows Go's unicode/utf8 exactly — an invalid,
 * truncated, overlong or surrogate sequence yields U+FFFD and consumes one
 * byte — because OPA counts and slices strings through Go's []rune
 * conversion, and the conformance suite checks those counts.
 *
 * Thread safety: reentrant; no global state.
 */
#include "value/buf.h"
#include "xv_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Grow so that `extra` more bytes plus the NUL fit; false when over limit. */
static bool buf_reserve(struct xv_val_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > XV_VAL_BUF_MAX || b->len + extra + 1 > XV_VAL_BUF_MAX) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void xv_val_buf_add(struct xv_val_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void xv_val_buf_addc(struct xv_val_buf *b, char c)
{
    xv_val_buf_add(b, &c, 1);
}

void xv_val_buf_adds(struct xv_val_buf *b, const char *s)
{
    xv_val_buf_add(b, s, strlen(s));
}

void xv_val_buf_printf(struct xv_val_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        xv_val_buf_add(b, tmp, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void xv_val_buf_addcp(struct xv_val_buf *b, uint32_t cp)
{
    char tmp[4];
    size_t n = xv_val_utf8_encode(cp, tmp);
    xv_val_buf_add(b, tmp, n);
}

char *xv_val_buf_take(struct xv_val_buf *b, size_t *len)
{
    char *p = NULL;
    if (!b->oom) {
        p = b->p ? b->p : strdup("");
        if (len)
            *len = b->p ? b->len : 0;
    } else {
        free(b->p);
        if (len)
            *len = 0;
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return p;
}

void xv_val_buf_free(struct xv_val_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

size_t xv_val_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    /* common/utf8.c decides what is valid (RFC 3629), for the whole project */
    size_t len = xv_utf8_seq_len(u, n);
    if (len == 0) {
        *cp = XV_VAL_RUNE_ERROR;
        return 1;
    }
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t v = u[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        v = (v << 6) | (u[i] & 0x3F);
    *cp = v;
    return len;
}

uint32_t xv_val_utf8_next(const char *s, size_t n, size_t *i)
{
    uint32_t cp;
    *i += xv_val_utf8_decode(s + *i, n - *i, &cp);
    return cp;
}

size_t xv_val_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = XV_VAL_RUNE_ERROR;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t xv_val_utf8_count(const char *s, size_t n)
{
    size_t i = 0, c = 0;
    uint32_t cp;
    while (i < n) {
        /* ASCII fast path: most policy strings are ASCII. */
        if ((unsigned char)s[i] < 0x80)
            i++;
        else
            i += xv_val_utf8_decode(s + i, n - i, &cp);
        c++;
    }
    return c;
}

size_t xv_val_utf8_offset(const char *s, size_t n, size_t idx)
{
    size_t i = 0;
    uint32_t cp;
    while (i < n && idx > 0) {
        i += xv_val_utf8_decode(s + i, n - i, &cp);
        idx--;
    }
    return i;
}

bool xv_val_utf8_valid(const char *s, size_t n)
{
    return xv_utf8_valid(s, n) != 0;
}
