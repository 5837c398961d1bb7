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

#endif
