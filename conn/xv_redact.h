/*
 * redact — the labels of SPEC §5's `redact` outcome: email, ssn, phone,
 * creditcard (Luhn-checked), ip, url. Matches in text are replaced by
 * "[REDACTED:<label>]". Patterns are compiled once (PCRE2, UTF mode) and
 * shared; matching allocates per call only its match data.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef XV_REDACT_H
#define XV_REDACT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "xv_common.h"

enum xv_redact_label {
    XV_REDACT_URL = 1u << 0,
    XV_REDACT_EMAIL = 1u << 1,
    XV_REDACT_CREDITCARD = 1u << 2,
    XV_REDACT_SSN = 1u << 3,
    XV_REDACT_PHONE = 1u << 4,
    XV_REDACT_IP = 1u << 5,
};

/* Bitmask of the known labels among names (unknown ones are ignored). */
unsigned xv_redact_labels_from(char *const *names, size_t n);

/* Redact `labels` in text[0..n), appending the result to out. *changed is
 * set to 1 when anything was replaced. Returns 0 or a negative code (out
 * may then hold a prefix; callers keep the original text). */
int xv_redact_text(unsigned labels, const char *text, size_t n, struct xv_buf *out, int *changed);

/* Redact a JSON string item in place (no-op for anything else); sets
 * *changed when it did. */
void xv_redact_json_text(cJSON *item, unsigned labels, int *changed);
/* Message content: a string, or an array of parts (their "text"/"content"). */
void xv_redact_json_content(cJSON *content, unsigned labels, int *changed);

#endif
