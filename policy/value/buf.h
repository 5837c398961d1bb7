/*
 * value/buf.h — a growable, bounded byte buffer and the UTF-8 code-point helpers every
 * part of the policy engine shares (plain bytes, no Rego values).
 *
 * Invariant: every function takes (pointer, length) byte strings that need not be
 * NUL-terminated; every string returned is heap-allocated, NUL-terminated and
 * owned by the caller (free with free()).
 * Thread safety: all functions are reentrant.
 */
#ifndef XV_POLICY_VALUE_BUF_H
#define XV_POLICY_VALUE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffer ------------------------------------------------ */

/* A byte buffer that is always NUL-terminated once anything was appended.
 * Hard limit XV_VAL_BUF_MAX: past it `oom` is set and appends are dropped, so a
 * hostile pattern cannot make a builtin allocate without bound. */
#define XV_VAL_BUF_MAX ((size_t)256 << 20)
struct xv_val_buf {
    char *p;     /* data, NUL-terminated; NULL until the first append */
    size_t len;  /* bytes used, not counting the NUL */
    size_t cap;  /* bytes allocated */
    bool oom;    /* an allocation failed or the limit was hit */
};

void xv_val_buf_add(struct xv_val_buf *b, const void *p, size_t n);
void xv_val_buf_addc(struct xv_val_buf *b, char c);
void xv_val_buf_adds(struct xv_val_buf *b, const char *s);
void xv_val_buf_printf(struct xv_val_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append code point `cp` encoded as UTF-8 (invalid code points as U+FFFD). */
void xv_val_buf_addcp(struct xv_val_buf *b, uint32_t cp);
/* Hand the data to the caller (never NULL unless oom: "" for an empty buffer)
 * and reset the buffer. Caller owns the result; free with free(). */
char *xv_val_buf_take(struct xv_val_buf *b, size_t *len);
void xv_val_buf_free(struct xv_val_buf *b);

/* ---- UTF-8 --------------------------------------------------------------- */

#define XV_VAL_RUNE_ERROR 0xFFFDu

/* Decode one code point at s[0..n) (n > 0). Stores the code point in *cp and
 * returns the number of bytes used (1..4). Invalid or truncated sequences,
 * surrogates and overlong forms decode as U+FFFD consuming one byte, as Go's
 * utf8.DecodeRuneInString does. */
size_t xv_val_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Decode the code point at s[*i] and advance *i past it (one byte for an
 * invalid sequence, which yields XV_VAL_RUNE_ERROR, as Go does). *i < n. */
uint32_t xv_val_utf8_next(const char *s, size_t n, size_t *i);
/* Encode cp into out (>= 4 bytes); returns the length. */
size_t xv_val_utf8_encode(uint32_t cp, char *out);
/* Number of code points in s[0..n). */
size_t xv_val_utf8_count(const char *s, size_t n);
/* Byte offset of code point index `idx` (clamped to n). */
size_t xv_val_utf8_offset(const char *s, size_t n, size_t idx);
/* True if s[0..n) is valid UTF-8. */
bool xv_val_utf8_valid(const char *s, size_t n);


#endif
