/*
 * value/buf.c — the growable byte buffer of value/buf.h, used by the
 * builtins and the Go engines to build their results.
 *
 * Invariant: the data is NUL-terminated once anything was appended; past
 * XV_VAL_BUF_MAX or on a failed allocation the buffer turns oom and ignores
 * further appends, so callers check once, at xv_val_buf_take.
 * Thread safety: reentrant; no global state.
 */
#include "value/buf.h"

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

/* Append n bytes (nothing once oom). */
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

/* printf-append: formats into the spare room, growing once if needed. */
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

/* Hand the bytes to the caller and reset b; NULL if b went oom. */
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
