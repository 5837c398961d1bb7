/*
 * bi_util.h — internal helpers of the policy builtins that work on plain byte
 * strings and know nothing about Rego values: UTF-8 code points, Go/RE2
 * regular expressions (on PCRE2), gobwas/glob patterns, and the Go `fmt`
 * formatting engine behind sprintf.
 *
 * Invariant: every function here takes (pointer, length) byte strings that
 * need not be NUL-terminated, and every string it returns is heap-allocated,
 * NUL-terminated and owned by the caller (free with free()).
 *
 * Thread safety: all functions are reentrant; the regex and glob caches are
 * guarded by their own mutexes (see bi_regex.c, bi_glob.c).
 */
#ifndef XV_POLICY_BI_UTIL_H
#define XV_POLICY_BI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- growable byte buffer ------------------------------------------------ */

/* A byte buffer that is always NUL-terminated once anything was appended.
 * Hard limit XV_BI_BUF_MAX: past it `oom` is set and appends are dropped, so a
 * hostile pattern cannot make a builtin allocate without bound. */
#define XV_BI_BUF_MAX ((size_t)256 << 20)
struct xv_bi_buf {
    char *p;     /* data, NUL-terminated; NULL until the first append */
    size_t len;  /* bytes used, not counting the NUL */
    size_t cap;  /* bytes allocated */
    bool oom;    /* an allocation failed or the limit was hit */
};

void xv_policy_bi_buf_add(struct xv_bi_buf *b, const void *p, size_t n);
void xv_policy_bi_buf_addc(struct xv_bi_buf *b, char c);
void xv_policy_bi_buf_adds(struct xv_bi_buf *b, const char *s);
void xv_policy_bi_buf_printf(struct xv_bi_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append code point `cp` encoded as UTF-8 (invalid code points as U+FFFD). */
void xv_policy_bi_buf_addcp(struct xv_bi_buf *b, uint32_t cp);
/* Hand the data to the caller (never NULL unless oom: "" for an empty buffer)
 * and reset the buffer. Caller owns the result; free with free(). */
char *xv_policy_bi_buf_take(struct xv_bi_buf *b, size_t *len);
void xv_policy_bi_buf_free(struct xv_bi_buf *b);

/* ---- UTF-8 --------------------------------------------------------------- */

#define XV_BI_RUNE_ERROR 0xFFFDu

/* Decode one code point at s[0..n) (n > 0). Stores the code point in *cp and
 * returns the number of bytes used (1..4). Invalid or truncated sequences,
 * surrogates and overlong forms decode as U+FFFD consuming one byte, as Go's
 * utf8.DecodeRuneInString does. */
size_t xv_policy_bi_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encode cp into out (>= 4 bytes); returns the length. */
size_t xv_policy_bi_utf8_encode(uint32_t cp, char *out);
/* Number of code points in s[0..n). */
size_t xv_policy_bi_utf8_count(const char *s, size_t n);
/* Byte offset of code point index `idx` (clamped to n). */
size_t xv_policy_bi_utf8_offset(const char *s, size_t n, size_t idx);
/* True if s[0..n) is valid UTF-8. */
bool xv_policy_bi_utf8_valid(const char *s, size_t n);

/* ---- regular expressions (Go regexp syntax on PCRE2) ----------------------- */

struct xv_bi_re;   /* a compiled pattern; shared via the cache, reference-counted */

/* Compile (or fetch from the bounded cache) the Go-syntax pattern pat[0..n).
 * On success returns 0 and *out (caller holds one reference; release with
 * xv_policy_bi_re_release). On a syntax error returns -1, *out is NULL and, if
 * err is not NULL, *err receives Go's message ("error parsing regexp: missing
 * closing ): `(a`"); caller frees it. */
int xv_policy_bi_re_get(const char *pat, size_t n, struct xv_bi_re **out, char **err);
void xv_policy_bi_re_release(struct xv_bi_re *re);
/* Number of capture groups. */
int xv_policy_bi_re_ngroups(const struct xv_bi_re *re);
/* Search s[0..n) from byte `start`. Returns 1 on a match and fills ov with
 * 2*(ngroups+1) byte offsets (-1 for an unset group), 0 on no match, <0 on a
 * matching error (resource limit). ov must hold 2*(ngroups+1) entries. */
int xv_policy_bi_re_exec(const struct xv_bi_re *re, const char *s, size_t n,
                         size_t start, long *ov);
/* Go's FindAll loop: up to `max` (negative: all) successive non-overlapping
 * matches; an empty match adjacent to the previous match is skipped. Calls
 * cb(ov, ud) per match (ov as for re_exec); a non-zero return from cb stops
 * the loop and is returned. Returns 0, or <0 on a matching error. */
int xv_policy_bi_re_find_all(const struct xv_bi_re *re, const char *s, size_t n,
                             long max, int (*cb)(const long *ov, void *ud), void *ud);
/* Go's Regexp.ReplaceAllString: `$1`, `${name}`, `$$` expansion in repl.
 * Caller owns the result; NULL on allocation failure. */
char *xv_policy_bi_re_replace_all(const struct xv_bi_re *re, const char *s, size_t n,
                                  const char *repl, size_t rn, size_t *outlen);
/* Quote every regexp metacharacter, as Go's regexp.QuoteMeta. */
char *xv_policy_bi_re_quote_meta(const char *s, size_t n, size_t *outlen);

/* ---- glob (gobwas/glob rules) ------------------------------------------------ */

struct xv_bi_glob;
/* Compile (or fetch from the bounded cache) pattern with the given
 * single-code-point delimiters (delims may be NULL/ndelim 0 meaning "no
 * delimiters"). Returns 0, or -1 with *err set to the gobwas error text
 * (caller frees). The caller holds one reference to *out; release it with
 * xv_policy_bi_glob_free. */
int xv_policy_bi_glob_compile(const char *pat, size_t n, const uint32_t *delims,
                              size_t ndelim, struct xv_bi_glob **out, char **err);
bool xv_policy_bi_glob_match(const struct xv_bi_glob *g, const char *s, size_t n);
void xv_policy_bi_glob_free(struct xv_bi_glob *g);
/* gobwas glob.QuoteMeta: backslash before each of `*?[]{}\\!-,^`... see glob.c. */
char *xv_policy_bi_glob_quote_meta(const char *s, size_t n, size_t *outlen);

/* regex.globs_match: do the two "glob-like regexes" (literals, `.`, classes,
 * `*`, `+`) match at least one common string? Returns 1/0, or -1 with *err set
 * (caller frees) when a pattern is outside the supported subset. */
int xv_policy_bi_globs_intersect(const char *a, size_t an, const char *b, size_t bn,
                                 char **err);

/* ---- Go fmt ------------------------------------------------------------------ */

/* One sprintf argument, already converted as OPA converts Rego values before
 * calling Go's fmt.Sprintf. */
enum xv_bi_fmt_kind {
    XV_BI_FMT_INT,     /* fits int64: Go `int` */
    XV_BI_FMT_BIGINT,  /* integer outside int64: Go *big.Int; text = decimal digits */
    XV_BI_FMT_FLOAT,   /* Go float64 */
    XV_BI_FMT_STRING,  /* Go string (Rego strings, and every non-number as Rego text) */
};
struct xv_bi_fmt_arg {
    enum xv_bi_fmt_kind kind;  /* which member below is meaningful */
    int64_t i;                 /* XV_BI_FMT_INT */
    double f;                  /* XV_BI_FMT_FLOAT */
    const char *s;             /* BIGINT (optional '-' then digits) or STRING bytes; borrowed */
    size_t slen;               /* length of s */
};
/* fmt.Sprintf(format, args...). Caller owns the result; NULL on allocation
 * failure. */
char *xv_policy_bi_fmt_sprintf(const char *fmt, size_t fn, const struct xv_bi_fmt_arg *args,
                               size_t nargs, size_t *outlen);
/* Go's strconv.FormatFloat(f, 'g', -1, 64) (shortest repr, %v style). */
void xv_policy_bi_fmt_float_shortest(struct xv_bi_buf *b, double f, char verb, int prec);

#endif
