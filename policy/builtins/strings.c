/*
 * builtins/strings.c — string builtins (concat, contains, split, replace,
 * trim*, indexof, substring, sprintf, strings.*, lower/upper); the number
 * builtins are builtins/numbers.c's.
 *
 * Invariant: strings are UTF-8 and every position or length a builtin takes
 * or returns counts code points, invalid bytes counting as one U+FFFD each,
 * as Go's []rune conversion does.
 * Thread safety: reentrant; the case-mapping locale is created once.
 */
#include "builtins/helpers.h"
#include "xv_word.h"

#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <wctype.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int want_str(struct xv_bctx *ctx, struct xv_value *const *a, int pos)
{
    return xv_bi_want(ctx, a, pos, XV_T_STRING);
}

/* The first nd[0..nn) in h[0..hn), or NULL; h for an empty needle. A
 * policy's contains() mostly looks for a short phrase in a message of a
 * few hundred bytes, where glibc's memmem spends more setting up its
 * tables than searching: there, where SSE2 is, sixteen start positions a
 * step are tested on the needle's first and last bytes and only those
 * that pass are compared whole. That compare is what a hostile text can
 * make frequent ("aaaa" for "aXa"), so only while hn * nn stays under
 * FIND_BUDGET bytes, and once a quarter of the positions passed so far
 * (plus FIND_SLACK) passed the test in vain, memmem's linear time takes the
 * rest. */
#define FIND_BUDGET (1u << 18)
#define FIND_SLACK 16
static const char *memmem_s(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (nn == 0)
        return h;
    if (nn > hn)
        return NULL;
    if (nn == 1)
        return memchr(h, (unsigned char)nd[0], hn);
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    if (hn <= FIND_BUDGET / nn) {
        const __m128i first = _mm_set1_epi8(nd[0]), last = _mm_set1_epi8(nd[nn - 1]);
        size_t starts = hn - nn + 1, i = 0; /* start positions 0 .. starts-1 */
        size_t vain = 0;                      /* candidates that did not match */
        for (; starts - i >= 16; i += 16) {
            /* the second load ends at i + nn - 1 + 15 <= hn - 1 */
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + nn - 1));
            unsigned m = (unsigned)_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
            for (; m; m &= m - 1) {
                size_t at = i + (size_t)__builtin_ctz(m);
                if (memcmp(h + at + 1, nd + 1, nn - 2) == 0)
                    return h + at;
                if (++vain > FIND_SLACK + i / 4) /* positions up to at are done */
                    return memmem(h + at + 1, hn - at - 1, nd, nn);
            }
        }
        for (; i < starts; i++)
            if (h[i] == nd[0] && h[i + nn - 1] == nd[nn - 1] &&
                memcmp(h + i + 1, nd + 1, nn - 2) == 0)
                return h + i;
        return NULL;
    }
#endif
    return memmem(h, hn, nd, nn);
}

/* ---- concat / contains / startswith / endswith ---- */

BI_FN(bi_concat)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    const struct xv_value *c = a[1];
    if (!XV_IS(c, XV_T_ARRAY) && !XV_IS(c, XV_T_SET))
        return xv_bi_type_error(ctx, 2, "one of {set, array}", c);
    struct xv_val_buf b = {0};
    for (size_t i = 0; i < c->u.arr.len; i++) {
        const struct xv_value *e = c->u.arr.items[i];
        if (!XV_IS(e, XV_T_STRING)) {
            xv_val_buf_free(&b);
            return xv_bi_elem_err(ctx, 2, c, e, "string");
        }
        if (i > 0)
            xv_val_buf_add(&b, S(a[0]), SL(a[0]));
        xv_val_buf_add(&b, S(e), SL(e));
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_contains)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    *out = xv_val_bool(memmem_s(S(a[0]), SL(a[0]), S(a[1]), SL(a[1])) != NULL);
    return XV_BI_OK;
}

BI_FN(bi_startswith)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    *out = xv_val_bool(SL(a[1]) <= SL(a[0]) && memcmp(S(a[0]), S(a[1]), SL(a[1])) == 0);
    return XV_BI_OK;
}

BI_FN(bi_endswith)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    *out = xv_val_bool(SL(a[1]) <= SL(a[0]) &&
                   memcmp(S(a[0]) + SL(a[0]) - SL(a[1]), S(a[1]), SL(a[1])) == 0);
    return XV_BI_OK;
}

/* ---- lower / upper (Unicode simple case mapping via C.UTF-8) ---- */

static struct {
    pthread_once_t once;   /* guards loc */
    locale_t loc;          /* C.UTF-8 for towlower_l/towupper_l, or 0 */
} g_case = { PTHREAD_ONCE_INIT, (locale_t)0 };

static void case_init(void)
{
    g_case.loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Any text: code point by code point through towlower_l / towupper_l. */
static int map_case_unicode(struct xv_bctx *ctx, const struct xv_value *s, bool up,
                            struct xv_value **out)
{
    pthread_once(&g_case.once, case_init);
    struct xv_val_buf b = {0};
    size_t i = 0, n = SL(s);
    const char *p = S(s);
    while (i < n) {
        uint32_t cp;
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            if (up && c >= 'a' && c <= 'z')
                c -= 32;
            else if (!up && c >= 'A' && c <= 'Z')
                c += 32;
            xv_val_buf_addc(&b, (char)c);
            i++;
            continue;
        }
        size_t k = xv_val_utf8_decode(p + i, n - i, &cp);
        if (g_case.loc)
            cp = (uint32_t)(up ? towupper_l((wint_t)cp, g_case.loc)
                               : towlower_l((wint_t)cp, g_case.loc));
        xv_val_buf_addcp(&b, cp);
        i += k;
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

/* The case-mapped copy of s[0..n) (a new string, filled in by the caller
 * from the first byte that changes on), or NULL when out of memory. */
static unsigned char *case_copy(const struct xv_value *s, struct xv_value **r)
{
    *r = xv_val_string(S(s), SL(s));
    return *r ? (unsigned char *)(*r)->u.str.s : NULL;
}

static int map_case(struct xv_bctx *ctx, const struct xv_value *s, bool up, struct xv_value **out)
{
    /* ASCII fast path (the common case: prompts, tool names) in one pass,
     * sixteen bytes a step where SSE2 is, then eight (a byte b < 0x80 is
     * in [lo, hi] when b + (0x80 - lo) has bit 7 set and b + (0x7f - hi)
     * has not; no carry crosses bytes), then one. The case bit (0x20) of
     * the letters to change is flipped in a copy made at the first one;
     * nothing to change → the input itself. A byte from 0x80 on → the
     * Unicode path. */
    size_t n = SL(s), i = 0;
    const unsigned char *p = (const unsigned char *)S(s);
    struct xv_value *r = NULL;
    unsigned char *q = NULL; /* r's bytes once made */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    /* signed compares: ASCII bytes are positive, the rest already rejected */
    const __m128i lo1 = _mm_set1_epi8((char)((up ? 'a' : 'A') - 1));
    const __m128i hi1 = _mm_set1_epi8((char)((up ? 'z' : 'Z') + 1));
    const __m128i bit = _mm_set1_epi8(0x20);
    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        if (_mm_movemask_epi8(x)) {
            xv_val_decref(r);
            return map_case_unicode(ctx, s, up, out);
        }
        __m128i m = _mm_and_si128(_mm_cmpgt_epi8(x, lo1), _mm_cmpgt_epi8(hi1, x));
        if (!q && !_mm_movemask_epi8(m))
            continue;
        if (!q && !(q = case_copy(s, &r)))
            return xv_bi_error(ctx, "out of memory");
        _mm_storeu_si128((__m128i *)(void *)(q + i), _mm_xor_si128(x, _mm_and_si128(m, bit)));
    }
#endif
    const uint64_t add_lo = XV_WORD_ONES * (uint64_t)(0x80 - (up ? 'a' : 'A'));
    const uint64_t add_hi = XV_WORD_ONES * (uint64_t)(0x7f - (up ? 'z' : 'Z'));
    for (; n - i >= 8; i += 8) {
        uint64_t w = xv_word_load(p + i);
        if (w & XV_WORD_HIGH) {
            xv_val_decref(r);
            return map_case_unicode(ctx, s, up, out);
        }
        uint64_t flip = (((w + add_lo) & ~(w + add_hi)) & XV_WORD_HIGH) >> 2;
        if (!q && !flip)
            continue;
        if (!q && !(q = case_copy(s, &r)))
            return xv_bi_error(ctx, "out of memory");
        w ^= flip;
        memcpy(q + i, &w, 8);
    }
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            xv_val_decref(r);
            return map_case_unicode(ctx, s, up, out);
        }
        if (!(up ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z')))
            continue;
        if (!q && !(q = case_copy(s, &r)))
            return xv_bi_error(ctx, "out of memory");
        q[i] = c ^ 0x20;
    }
    *out = q ? r : xv_val_incref((struct xv_value *)s);
    return XV_BI_OK;
}

BI_FN(bi_lower)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    return map_case(ctx, a[0], false, out);
}

BI_FN(bi_upper)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    return map_case(ctx, a[0], true, out);
}

/* ---- split / replace ---- */

BI_FN(bi_split)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    const char *s = S(a[0]), *d = S(a[1]);
    size_t n = SL(a[0]), dn = SL(a[1]);
    struct xv_value *arr = xv_val_array_new(4);
    if (!arr)
        return xv_bi_error(ctx, "out of memory");
    int rc = 0;
    if (dn == 0) {
        /* Go's explode: one element per code point, bytes kept as they are */
        size_t i = 0;
        uint32_t cp;
        while (i < n && rc == 0) {
            size_t k = xv_val_utf8_decode(s + i, n - i, &cp);
            struct xv_value *e = xv_val_string(s + i, k);
            rc = e ? xv_val_array_push(arr, e) : -1;
            xv_val_decref(e);
            i += k;
        }
    } else {
        size_t i = 0;
        for (;;) {
            const char *hit = memmem(s + i, n - i, d, dn);
            size_t end = hit ? (size_t)(hit - s) : n;
            struct xv_value *e = xv_val_string(s + i, end - i);
            rc = e ? xv_val_array_push(arr, e) : -1;
            xv_val_decref(e);
            if (!hit || rc)
                break;
            i = end + dn;
        }
    }
    if (rc) {
        xv_val_decref(arr);
        return xv_bi_error(ctx, "out of memory");
    }
    *out = arr;
    return XV_BI_OK;
}

/* strings.ReplaceAll; an empty old string inserts new around every rune. */
static void replace_all(struct xv_val_buf *b, const char *s, size_t n, const char *old, size_t on,
                        const char *nw, size_t nn, long max)
{
    size_t i = 0;
    long done = 0;
    if (on == 0) {
        uint32_t cp;
        while (max < 0 || done < max) {
            xv_val_buf_add(b, nw, nn);
            done++;
            if (i >= n)
                break;
            size_t k = xv_val_utf8_decode(s + i, n - i, &cp);
            xv_val_buf_add(b, s + i, k);
            i += k;
        }
        xv_val_buf_add(b, s + i, n - i);
        return;
    }
    while (max < 0 || done < max) {
        const char *hit = memmem(s + i, n - i, old, on);
        if (!hit)
            break;
        xv_val_buf_add(b, s + i, (size_t)(hit - (s + i)));
        xv_val_buf_add(b, nw, nn);
        i = (size_t)(hit - s) + on;
        done++;
    }
    xv_val_buf_add(b, s + i, n - i);
}

BI_FN(bi_replace)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2) || want_str(ctx, a, 3))
        return XV_BI_ERROR;
    struct xv_val_buf b = {0};
    replace_all(&b, S(a[0]), SL(a[0]), S(a[1]), SL(a[1]), S(a[2]), SL(a[2]), -1);
    return xv_bi_ret_buf(ctx, &b, out);
}

/* strings.replace_n: Go's strings.NewReplacer over the pairs in key order:
 * at each position the first old string (in that order) that matches wins. */
BI_FN(bi_replace_n)
{
    const struct xv_value *pat = a[0];
    if (!XV_IS(pat, XV_T_OBJECT))
        return xv_bi_type_error(ctx, 1, "object", pat);
    for (size_t k = 0; k < XV_OBJ_LEN(pat); k++) {
        if (!XV_IS(XV_OBJ_KEY(pat, k), XV_T_STRING))
            return xv_bi_operand_err(ctx, 1, "non-string key found in pattern object");
        if (!XV_IS(XV_OBJ_VAL(pat, k), XV_T_STRING))
            return xv_bi_operand_err(ctx, 1, "non-string value found in pattern object");
    }
    if (want_str(ctx, a, 2))
        return XV_BI_ERROR;
    const char *s = S(a[1]);
    size_t n = SL(a[1]), i = 0, np = XV_OBJ_LEN(pat);
    struct xv_val_buf b = {0};
    bool has_empty = np > 0 && SL(XV_OBJ_KEY(pat, 0)) == 0;  /* "" sorts first */
    while (i <= n) {
        size_t best = np;
        for (size_t k = 0; k < np; k++) {
            const struct xv_value *o = XV_OBJ_KEY(pat, k);
            if (SL(o) > 0 && SL(o) <= n - i && memcmp(s + i, S(o), SL(o)) == 0) {
                best = k;
                break;
            }
        }
        if (best < np) {
            const struct xv_value *o = XV_OBJ_KEY(pat, best);
            xv_val_buf_add(&b, S(XV_OBJ_VAL(pat, best)), SL(XV_OBJ_VAL(pat, best)));
            i += SL(o);
            continue;
        }
        if (has_empty)
            xv_val_buf_add(&b, S(XV_OBJ_VAL(pat, 0)), SL(XV_OBJ_VAL(pat, 0)));
        if (i >= n)
            break;
        uint32_t cp;
        size_t k = xv_val_utf8_decode(s + i, n - i, &cp);
        xv_val_buf_add(&b, s + i, k);
        i += k;
    }
    return xv_bi_ret_buf(ctx, &b, out);
}

/* ---- trim family ---- */

static bool in_cutset(uint32_t cp, const char *cs, size_t cn)
{
    size_t i = 0;
    uint32_t c;
    while (i < cn) {
        i += xv_val_utf8_decode(cs + i, cn - i, &c);
        if (c == cp)
            return true;
    }
    return false;
}

/* Length of the last code point ending at s[n) (n > 0), as utf8.DecodeLastRune. */
static size_t last_cp(const char *s, size_t n, uint32_t *cp)
{
    size_t st = n - 1;
    size_t lim = n >= 4 ? n - 4 : 0;
    while (st > lim && ((unsigned char)s[st] & 0xC0) == 0x80)
        st--;
    size_t k = xv_val_utf8_decode(s + st, n - st, cp);
    if (st + k != n) {
        *cp = XV_VAL_RUNE_ERROR;
        return 1;
    }
    return k;
}

static bool go_is_space(uint32_t c)
{
    switch (c) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

static void trim_span(const char *s, size_t n, const char *cs, size_t cn, bool left, bool right,
                      bool space, size_t *st, size_t *en)
{
    size_t b = 0, e = n;
    uint32_t cp;
    if (left)
        while (b < e) {
            size_t k = xv_val_utf8_decode(s + b, e - b, &cp);
            if (space ? !go_is_space(cp) : !in_cutset(cp, cs, cn))
                break;
            b += k;
        }
    if (right)
        while (e > b) {
            size_t k = last_cp(s + b, e - b, &cp);
            if (space ? !go_is_space(cp) : !in_cutset(cp, cs, cn))
                break;
            e -= k;
        }
    *st = b;
    *en = e;
}

static int do_trim(struct xv_bctx *ctx, struct xv_value *const *a, bool l, bool r,
                   struct xv_value **out)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    size_t st, en;
    trim_span(S(a[0]), SL(a[0]), S(a[1]), SL(a[1]), l, r, false, &st, &en);
    return xv_bi_ret(ctx, xv_val_string(S(a[0]) + st, en - st), out);
}

BI_FN(bi_trim) { return do_trim(ctx, a, true, true, out); }
BI_FN(bi_trim_left) { return do_trim(ctx, a, true, false, out); }
BI_FN(bi_trim_right) { return do_trim(ctx, a, false, true, out); }

BI_FN(bi_trim_space)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    size_t st, en;
    trim_span(S(a[0]), SL(a[0]), NULL, 0, true, true, true, &st, &en);
    return xv_bi_ret(ctx, xv_val_string(S(a[0]) + st, en - st), out);
}

BI_FN(bi_trim_prefix)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    size_t pn = SL(a[1]);
    if (pn <= SL(a[0]) && memcmp(S(a[0]), S(a[1]), pn) == 0)
        return xv_bi_ret(ctx, xv_val_string(S(a[0]) + pn, SL(a[0]) - pn), out);
    *out = xv_val_incref(a[0]);
    return XV_BI_OK;
}

BI_FN(bi_trim_suffix)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    size_t sn = SL(a[1]), n0 = SL(a[0]);
    if (sn <= n0 && memcmp(S(a[0]) + n0 - sn, S(a[1]), sn) == 0)
        return xv_bi_ret(ctx, xv_val_string(S(a[0]), n0 - sn), out);
    *out = xv_val_incref(a[0]);
    return XV_BI_OK;
}

/* ---- indexof / indexof_n / substring / reverse / count ---- */

/* Decode a string into code points (caller frees). */
static uint32_t *runes(const char *s, size_t n, size_t *cnt)
{
    uint32_t *r = malloc(sizeof(uint32_t) * (n + 1));
    size_t i = 0, c = 0;
    if (!r)
        return NULL;
    while (i < n)
        i += xv_val_utf8_decode(s + i, n - i, &r[c++]);
    *cnt = c;
    return r;
}

static int index_common(struct xv_bctx *ctx, struct xv_value *const *a, bool all,
                        struct xv_value **out)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    if (SL(a[1]) == 0)
        return xv_bi_error(ctx, "empty search character");
    size_t bn, sn;
    uint32_t *br = runes(S(a[0]), SL(a[0]), &bn), *sr = runes(S(a[1]), SL(a[1]), &sn);
    struct xv_value *arr = all ? xv_val_array_new(4) : NULL;
    int64_t found = -1;
    int rc = XV_BI_OK;
    if (!br || !sr || (all && !arr)) {
        rc = xv_bi_error(ctx, "out of memory");
        goto done;
    }
    for (size_t i = 0; i + sn <= bn; i++) {
        if (memcmp(br + i, sr, sn * sizeof(uint32_t)) != 0)
            continue;
        if (!all) {
            found = (int64_t)i;
            break;
        }
        struct xv_value *e = xv_val_int((int64_t)i);
        if (!e || xv_val_array_push(arr, e)) {
            xv_val_decref(e);
            rc = xv_bi_error(ctx, "out of memory");
            goto done;
        }
        xv_val_decref(e);
    }
    if (all) {
        *out = arr;
        arr = NULL;
    } else {
        rc = xv_bi_ret(ctx, xv_val_int(found), out);
    }
done:
    xv_val_decref(arr);
    free(br);
    free(sr);
    return rc;
}

BI_FN(bi_indexof) { return index_common(ctx, a, false, out); }
BI_FN(bi_indexof_n) { return index_common(ctx, a, true, out); }

BI_FN(bi_substring)
{
    int64_t off, len;
    if (want_str(ctx, a, 1) || xv_bi_int_arg(ctx, a, 2, &off) ||
        xv_bi_int_arg(ctx, a, 3, &len))
        return XV_BI_ERROR;
    if (off < 0)
        return xv_bi_error(ctx, "negative offset");
    const char *s = S(a[0]);
    size_t n = SL(a[0]);
    size_t st = xv_val_utf8_offset(s, n, (size_t)off);
    size_t en = n;
    if (len >= 0)
        en = st + xv_val_utf8_offset(s + st, n - st, (size_t)len);
    return xv_bi_ret(ctx, xv_val_string(s + st, en - st), out);
}

BI_FN(bi_reverse)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    size_t cnt;
    uint32_t *r = runes(S(a[0]), SL(a[0]), &cnt);
    if (!r)
        return xv_bi_error(ctx, "out of memory");
    struct xv_val_buf b = {0};
    for (size_t i = cnt; i > 0; i--)
        xv_val_buf_addcp(&b, r[i - 1]);
    free(r);
    if (cnt == 0)
        xv_val_buf_add(&b, "", 0);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_count_str)
{
    if (want_str(ctx, a, 1) || want_str(ctx, a, 2))
        return XV_BI_ERROR;
    const char *s = S(a[0]), *sub = S(a[1]);
    size_t n = SL(a[0]), sn = SL(a[1]);
    int64_t c = 0;
    if (sn == 0) {
        c = (int64_t)xv_val_utf8_count(s, n) + 1;
    } else {
        size_t i = 0;
        const char *h;
        while ((h = memmem(s + i, n - i, sub, sn)) != NULL) {
            c++;
            i = (size_t)(h - s) + sn;
        }
    }
    return xv_bi_ret(ctx, xv_val_int(c), out);
}

/* strings.any_prefix_match / any_suffix_match */
static int str_list(struct xv_bctx *ctx, const struct xv_value *v, int pos)
{
    if (XV_IS(v, XV_T_STRING))
        return 0;
    if (!XV_IS(v, XV_T_ARRAY) && !XV_IS(v, XV_T_SET))
        return xv_bi_type_error(ctx, pos, "one of {string, set, array}", v);
    for (size_t i = 0; i < v->u.arr.len; i++)
        if (!XV_IS(v->u.arr.items[i], XV_T_STRING))
            return xv_bi_elem_err(ctx, pos, v, v->u.arr.items[i], "string");
    return 0;
}

static int any_match(struct xv_bctx *ctx, struct xv_value *const *a, bool suffix,
                     struct xv_value **out)
{
    if (str_list(ctx, a[0], 1) || str_list(ctx, a[1], 2))
        return XV_BI_ERROR;
    const struct xv_value *const *xs, *const *ps;
    size_t nx, np;
    const struct xv_value *one0 = a[0], *one1 = a[1];
    if (XV_IS(a[0], XV_T_STRING)) { xs = &one0; nx = 1; }
    else { xs = (const struct xv_value *const *)a[0]->u.arr.items; nx = a[0]->u.arr.len; }
    if (XV_IS(a[1], XV_T_STRING)) { ps = &one1; np = 1; }
    else { ps = (const struct xv_value *const *)a[1]->u.arr.items; np = a[1]->u.arr.len; }
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < np; j++) {
            size_t sl = SL(xs[i]), pl = SL(ps[j]);
            if (pl > sl)
                continue;
            const char *base = suffix ? S(xs[i]) + sl - pl : S(xs[i]);
            if (memcmp(base, S(ps[j]), pl) == 0) {
                *out = xv_val_bool(1);
                return XV_BI_OK;
            }
        }
    *out = xv_val_bool(0);
    return XV_BI_OK;
}

BI_FN(bi_any_prefix) { return any_match(ctx, a, false, out); }
BI_FN(bi_any_suffix) { return any_match(ctx, a, true, out); }

/* ---- sprintf ---- */

BI_FN(bi_sprintf)
{
    if (want_str(ctx, a, 1))
        return XV_BI_ERROR;
    if (!XV_IS(a[1], XV_T_ARRAY))
        return xv_bi_type_error(ctx, 2, "array", a[1]);
    size_t na = XV_ARR_LEN(a[1]);
    struct xv_go_fmt_arg *args = calloc(na + 1, sizeof *args);
    char **owned = calloc(na + 1, sizeof(char *));
    if (!args || !owned) {
        free(args);
        free(owned);
        return xv_bi_error(ctx, "out of memory");
    }
    for (size_t i = 0; i < na; i++) {
        const struct xv_value *v = XV_ARR_ITEM(a[1], i);
        struct xv_go_fmt_arg *g = &args[i];
        int64_t iv;
        if (XV_IS(v, XV_T_STRING)) {
            g->kind = XV_GO_FMT_STRING;
            g->s = S(v);
            g->slen = SL(v);
        } else if (XV_IS(v, XV_T_NUMBER) && !xv_bi_num_is_float_text(v) &&
                   xv_val_number_get_int64(v, &iv) == 0) {
            g->kind = XV_GO_FMT_INT;
            g->i = iv;
        } else if (XV_IS(v, XV_T_NUMBER) && !xv_bi_num_is_float_text(v) &&
                   xv_val_number_is_int(v)) {
            mpz_t z;
            mpz_init(z);
            xv_val_number_get_mpz(v, z);
            owned[i] = mpz_get_str(NULL, 10, z);
            mpz_clear(z);
            g->kind = XV_GO_FMT_BIGINT;
            g->s = owned[i];
            g->slen = owned[i] ? strlen(owned[i]) : 0;
        } else if (XV_IS(v, XV_T_NUMBER)) {
            double d = xv_val_number_get_double(v);
            if (d == d && d - d == 0) {
                g->kind = XV_GO_FMT_FLOAT;
                g->f = d;
            } else {
                /* out of float64 range: OPA prints the number's text */
                struct xv_val_buf t = {0};
                xv_bi_rego_text(&t, v);
                owned[i] = xv_val_buf_take(&t, &g->slen);
                g->kind = XV_GO_FMT_STRING;
                g->s = owned[i] ? owned[i] : "";
            }
        } else {
            struct xv_val_buf t = {0};
            xv_bi_rego_text(&t, v);
            owned[i] = xv_val_buf_take(&t, &g->slen);
            g->kind = XV_GO_FMT_STRING;
            g->s = owned[i] ? owned[i] : "";
        }
    }
    size_t len;
    char *r = xv_go_fmt_sprintf(S(a[0]), SL(a[0]), args, na, &len);
    for (size_t i = 0; i < na; i++)
        free(owned[i]);
    free(owned);
    free(args);
    return xv_bi_ret_owned(ctx, r, len, out);
}

const struct xv_builtin_def xv_bi_strings[] = {
    {"concat", 2, bi_concat, 0},
    {"contains", 2, bi_contains, 0},
    {"startswith", 2, bi_startswith, 0},
    {"endswith", 2, bi_endswith, 0},
    {"lower", 1, bi_lower, 0},
    {"upper", 1, bi_upper, 0},
    {"split", 2, bi_split, 0},
    {"replace", 3, bi_replace, 0},
    {"strings.replace_n", 2, bi_replace_n, 0},
    {"trim", 2, bi_trim, 0},
    {"trim_left", 2, bi_trim_left, 0},
    {"trim_right", 2, bi_trim_right, 0},
    {"trim_prefix", 2, bi_trim_prefix, 0},
    {"trim_suffix", 2, bi_trim_suffix, 0},
    {"trim_space", 1, bi_trim_space, 0},
    {"indexof", 2, bi_indexof, 0},
    {"indexof_n", 2, bi_indexof_n, 0},
    {"substring", 3, bi_substring, 0},
    {"strings.reverse", 1, bi_reverse, 0},
    {"strings.count", 2, bi_count_str, 0},
    {"strings.any_prefix_match", 2, bi_any_prefix, 0},
    {"strings.any_suffix_match", 2, bi_any_suffix, 0},
    {"sprintf", 2, bi_sprintf, 0},
    {NULL, 0, NULL, 0},
};
