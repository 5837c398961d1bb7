/*
 * go/regexp.h — Go's regexp package (RE2 syntax) on PCRE2: compile through a bounded
 * cache, match, FindAll, ReplaceAll, QuoteMeta.
 *
 * Invariant: a pattern PCRE2 would read differently from Go is rejected or
 * translated (go/regexp.c); results are owned by the caller.
 * Thread safety: all functions are reentrant; the cache is guarded by its own mutex;
 * xv_go_re_match keeps a few patterns per thread besides (no lock).
 */
#ifndef XV_POLICY_GO_REGEXP_H
#define XV_POLICY_GO_REGEXP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- regular expressions (Go regexp syntax on PCRE2) ----------------------- */

struct xv_go_re;   /* a compiled pattern; shared via the cache, reference-counted */

/* Compile (or fetch from the bounded cache) the Go-syntax pattern pat[0..n).
 * On success returns 0 and *out (caller holds one reference; release with
 * xv_go_re_release). On a syntax error returns -1, *out is NULL and, if
 * err is not NULL, *err receives Go's message ("error parsing regexp: missing
 * closing ): `(a`"); caller frees it. */
int xv_go_re_get(const char *pat, size_t n, struct xv_go_re **out, char **err);
void xv_go_re_release(struct xv_go_re *re);
/* Number of capture groups. */
int xv_go_re_ngroups(const struct xv_go_re *re);
/* Search s[0..n) from byte `start`. Returns 1 on a match and fills ov with
 * 2*(ngroups+1) byte offsets (-1 for an unset group), 0 on no match, <0 on a
 * matching error (resource limit). ov must hold 2*(ngroups+1) entries. */
int xv_go_re_exec(const struct xv_go_re *re, const char *s, size_t n,
                         size_t start, long *ov);
/* regex.match: does the pattern pat[0..n) match anywhere in s[0..sn)?
 * 1 or 0; -1 when the pattern does not compile (*err as for xv_go_re_get,
 * if err is not NULL); -2 on a matching error (resource limit, memory).
 * Uses the calling thread's last few patterns and match data without a lock
 * (released when the thread exits). */
int xv_go_re_match(const char *pat, size_t n, const char *s, size_t sn, char **err);
/* Go's FindAll loop: up to `max` (negative: all) successive non-overlapping
 * matches; an empty match adjacent to the previous match is skipped. Calls
 * cb(ov, ud) per match (ov as for re_exec); a non-zero return from cb stops
 * the loop and is returned. Returns 0, or <0 on a matching error. */
int xv_go_re_find_all(const struct xv_go_re *re, const char *s, size_t n,
                             long max, int (*cb)(const long *ov, void *ud), void *ud);
/* Go's Regexp.ReplaceAllString: `$1`, `${name}`, `$$` expansion in repl.
 * Caller owns the result; NULL on allocation failure. */
char *xv_go_re_replace_all(const struct xv_go_re *re, const char *s, size_t n,
                                  const char *repl, size_t rn, size_t *outlen);
/* Quote every regexp metacharacter, as Go's regexp.QuoteMeta. */
char *xv_go_re_quote_meta(const char *s, size_t n, size_t *outlen);


#endif
