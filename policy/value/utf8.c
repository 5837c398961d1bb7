/*
 * value/utf8.c — UTF-8 code points for the policy engine (value/buf.h):
 * decode, encode, count, offset, validity. What is valid is decided by
 * common/utf8.c (xv_utf8_seq_len, RFC 3629), the project's one validator.
 *
 * Invariant: decoding follows Go's unicode/utf8 exactly — an invalid,
 * truncated, overlong or surrogate sequence yields U+FFFD and consumes one
 * byte — because OPA counts and slices strings through Go's []rune
 * conversion, and the conformance suite checks those counts.
 * Thread safety: reentrant; no global state.
 */
#include "value/buf.h"
#include "xv_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One code point at s[0..n) (n > 0) into *cp; returns the bytes used. */
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

/* Cursor form of xv_val_utf8_decode. */
uint32_t xv_val_utf8_next(const char *s, size_t n, size_t *i)
{
    uint32_t cp;
    *i += xv_val_utf8_decode(s + *i, n - *i, &cp);
    return cp;
}

/* Encode cp (surrogates and values past U+10FFFF as U+FFFD). */
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

/* Code points in s[0..n), invalid bytes counting one each (Go's
 * len([]rune(s))). */
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

/* Byte offset of code point idx (n when past the end). */
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

/* Valid UTF-8, by common/utf8.c's rule. */
bool xv_val_utf8_valid(const char *s, size_t n)
{
    return xv_utf8_valid(s, n) != 0;
}
