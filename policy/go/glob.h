/*
 * go/glob.h — gobwas/glob patterns (compile through a bounded cache, match, quote)
 * and the glob-like regex intersection of regex.globs_match.
 *
 * Invariant: matching is bounded in time by the pattern and subject sizes;
 * results are owned by the caller.
 * Thread safety: all functions are reentrant; the cache is guarded by its own mutex.
 */
#ifndef XV_POLICY_GO_GLOB_H
#define XV_POLICY_GO_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- glob (gobwas/glob rules) ------------------------------------------------ */

struct xv_go_glob;
/* Compile (or fetch from the bounded cache) pattern with the given
 * single-code-point delimiters (delims may be NULL/ndelim 0 meaning "no
 * delimiters"). Returns 0, or -1 with *err set to the gobwas error text
 * (caller frees). The caller holds one reference to *out; release it with
 * xv_go_glob_free. */
int xv_go_glob_compile(const char *pat, size_t n, const uint32_t *delims,
                              size_t ndelim, struct xv_go_glob **out, char **err);
bool xv_go_glob_match(const struct xv_go_glob *g, const char *s, size_t n);
void xv_go_glob_free(struct xv_go_glob *g);
/* gobwas glob.QuoteMeta: backslash before each of `*?[]{}\\!-,^`... see glob.c. */
char *xv_go_glob_quote_meta(const char *s, size_t n, size_t *outlen);

/* regex.globs_match: do the two "glob-like regexes" (literals, `.`, classes,
 * `*`, `+`) match at least one common string? Returns 1/0, or -1 with *err set
 * (caller frees) when a pattern is outside the supported subset. */
int xv_go_globs_intersect(const char *a, size_t an, const char *b, size_t bn,
                                 char **err);


#endif
