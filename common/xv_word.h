/*
 * xv_word.h — byte tests eight bytes at a time, for the scans of JSON text,
 * canonical JSON and HTTP header values (issue 9). Each returns flags, 0x80
 * in the bytes that match; a borrow can also flag bytes *above* a real
 * match, never below one, so the lowest flag is exact: it is the first
 * matching byte (xv_word_first, little-endian only; elsewhere callers look
 * at the word byte by byte). Header-only.
 */
#ifndef XV_WORD_H
#define XV_WORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define XV_WORD_ONES 0x0101010101010101ull
#define XV_WORD_HIGH 0x8080808080808080ull

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    (defined(__GNUC__) || defined(__clang__))
#define XV_WORD_FIRST_OK 1
#else
#define XV_WORD_FIRST_OK 0
#endif

static inline uint64_t xv_word_load(const void *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Bytes equal to 0. */
static inline uint64_t xv_word_zero(uint64_t x)
{
    return (x - XV_WORD_ONES) & ~x & XV_WORD_HIGH;
}

/* Bytes equal to c. */
static inline uint64_t xv_word_is(uint64_t x, unsigned char c)
{
    return xv_word_zero(x ^ (XV_WORD_ONES * c));
}

/* Bytes below n (n at most 0x80). */
static inline uint64_t xv_word_below(uint64_t x, unsigned char n)
{
    return (x - XV_WORD_ONES * n) & ~x & XV_WORD_HIGH;
}

/* Bytes a JSON string cannot hold as they are: below 0x20, '"', '\\'. */
static inline uint64_t xv_word_json_special(uint64_t x)
{
    return xv_word_below(x, 0x20) | xv_word_is(x, '"') | xv_word_is(x, '\\');
}

#if XV_WORD_FIRST_OK
/* Index of the first flagged byte of m (m non-zero). */
static inline size_t xv_word_first(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> 3;
}
#endif

/* How many bytes of p[0, n) from the start a JSON string holds as they are:
 * none below 0x20, '"' or '\\' (and, when high is set — a constant at
 * every call — none from 0x80). Sixteen bytes a step where SSE2 is (every
 * x86-64), then eight, then one: the scans of every string parsed,
 * fingerprinted or written (issue 9: at two to three instructions a byte,
 * eight at a time, they were most of the agent's cost per byte of a long
 * conversation). */
static inline size_t xv_json_plain_len(const char *p, size_t n, int high)
{
    size_t i = 0;
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i c1f = _mm_set1_epi8(0x1f), zero = _mm_setzero_si128();
    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmpeq_epi8(_mm_subs_epu8(x, c1f), zero)); /* x <= 0x1f */
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (high)
            bits |= (unsigned)_mm_movemask_epi8(x); /* the bytes' top bits */
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
#if XV_WORD_FIRST_OK
    for (; n - i >= 8; i += 8) {
        uint64_t x = xv_word_load(p + i);
        uint64_t m = xv_word_json_special(x) | (high ? x & XV_WORD_HIGH : 0);
        if (m)
            return i + xv_word_first(m);
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == '"' || c == '\\' || (high && c >= 0x80))
            break;
    }
    return i;
}

#endif
