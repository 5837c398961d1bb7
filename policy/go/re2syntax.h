/*
 * go/re2syntax.h — Go (RE2) regexp syntax to PCRE2 syntax (go/re2syntax.c).
 * Invariant: what it accepts is what Go's regexp/syntax accepts.
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_GO_RE2SYNTAX_H
#define XV_POLICY_GO_RE2SYNTAX_H

#include <stddef.h>

/* The PCRE2 pattern for Go pattern pat[0..n); *outlen its length. Caller
 * owns it (free). NULL when Go rejects the pattern or memory runs out: then
 * *err (if err) is Go's message ("error parsing regexp: ..."), caller frees. */
char *xv_go_re2_translate(const char *pat, size_t n, size_t *outlen, char **err);

#endif
