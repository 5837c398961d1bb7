/*
 * utf8.c — the project's one set of UTF-8 helpers: validation (RFC 3629:
 * no overlong forms, surrogates or values past U+10FFFF), cutting text on
 * code-point boundaries, replacing invalid bytes with U+FFFD, and a
 * snprintf that never leaves half a character at the end.
 *
 * Invariant: whatever goes in, what xv_utf8_fix returns is valid UTF-8 and
 * what the cut functions return never ends inside a sequence that was
 * whole in the input. Records are JSON and OTLP, both of which require
 * valid UTF-8 (issue 7 class 7).
 *
 * Thread safety: pure functions; no state. Only xv_utf8_fix allocates.
 */
#include "xv_common.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t xv_utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char b = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Length of the run of ASCII bytes at s (at most len), eight at a time:
 * record strings are mostly ASCII, and checking them a sequence at a time
 * was ~5 % of a call's CPU (issue 9). */
static size_t ascii_run(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    return i;
}

int xv_utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        i += ascii_run(s + i, len - i);
        if (i == len)
            break;
        size_t n = xv_utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

size_t xv_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    /* Step back over continuation bytes to the start of the sequence the
     * cut falls into; at most 3 of them belong to one character. */
    for (int i = 0; i < 4 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80; i++)
        cut--;
    return cut;
}

size_t xv_utf8_tail(const char *s, size_t len)
{
    size_t i = len, k = 0;
    while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        k++;
    }
    if (i == 0)
        return len;
    unsigned char b = (unsigned char)s[i - 1];
    if (b < 0xC0)
        return len; /* ends in ASCII (or stray continuations: not ours to judge) */
    size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    return k + 1 < need ? i - 1 : len;
}

char *xv_utf8_fix(const char *s, size_t len, size_t max, int *cut)
{
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
    if (!s)
        s = "", len = 0;
    /* Each input byte yields at most 3 output bytes (one U+FFFD). */
    size_t cap = len > max / 3 ? max : 3 * len;
    char *t = malloc(cap + 1);
    if (!t)
        return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t run = ascii_run(s + i, len - i);
        if (run) {
            size_t k = o + run > max ? max - o : run;
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
            if (k < run)
                break;
            continue;
        }
        size_t n = xv_utf8_seq_len((const unsigned char *)s + i, len - i);
        const char *src = n ? s + i : repl;
        size_t outn = n ? n : 3;
        if (o + outn > max)
            break;
        memcpy(t + o, src, outn);
        o += outn;
        i += n ? n : 1;
    }
    if (i < len && cut)
        *cut = 1;
    t[o] = '\0';
    return t;
}

int xv_utf8_snprintf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && cap > 0 && (size_t)n >= cap)
        dst[xv_utf8_tail(dst, cap - 1)] = '\0';
    return n;
}
