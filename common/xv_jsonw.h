/*
 * xv_jsonw.h — a JSON text writer: a trace record is written as one line
 * straight into one buffer, in the exact bytes cJSON_PrintUnformatted
 * would print for the same tree after the exporter's UTF-8 repair (issue 9:
 * building ~60-node cJSON trees and serialising them cost more than the
 * rest of a call).
 *
 * Output rules (cJSON 1.7's, which every consumer of the trace file has
 * read so far): no whitespace; a string ends at its first NUL byte (a
 * cJSON string is a C string), invalid UTF-8 is replaced by U+FFFD
 * (xv_utf8_fix), '"', '\\' and bytes below 0x20 are escaped ("\b\f\n\r\t",
 * others "\u00XX"), everything else is raw; numbers: NaN/Inf -> null,
 * integers below 10^15 as digits, else "%1.15g" unless that does not read
 * back equal, then "%1.17g", '.' as the decimal point in every locale.
 *
 * Commas are the writer's business: every value (and every key) written
 * after another one at the same level gets its separator. Keys are not
 * checked for duplicates: callers write each key once.
 *
 * Memory: one buffer, grown by doubling; an allocation failure sets `oom`
 * and every later call is a no-op, so callers check once, at the end.
 * Thread safety: a writer belongs to one thread at a time; no global state.
 */
#ifndef XV_JSONW_H
#define XV_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct xv_jw {
    char *p;      /* the text, owned; NUL-terminated after every call while !oom */
    size_t len;   /* bytes written */
    size_t cap;   /* bytes allocated */
    int oom;      /* an allocation failed: the text is incomplete */
    int comma;    /* a value was written at the current level: the next needs ',' */
};

/* An empty writer; `hint` bytes are allocated at the first write (0: 256). */
void xv_jw_init(struct xv_jw *w, size_t hint);
/* Empty the writer for the next text, keeping its buffer (freed instead
 * when it is larger than `keep_max` bytes, or after an allocation failure). */
void xv_jw_reset(struct xv_jw *w, size_t keep_max);
/* Free the text (the writer can be initialised again). */
void xv_jw_free(struct xv_jw *w);
/* Hand the text to the caller (free with free()); *len gets its length.
 * NULL (text freed) when an allocation failed on the way. */
char *xv_jw_steal(struct xv_jw *w, size_t *len);

void xv_jw_obj_begin(struct xv_jw *w);
void xv_jw_obj_end(struct xv_jw *w);
void xv_jw_arr_begin(struct xv_jw *w);
void xv_jw_arr_end(struct xv_jw *w);
/* `"key":` — the key written by the string rules (NUL-terminated).
 *
 * The key functions below are macros over *_l forms taking the key's
 * length when the key is a compile-time constant (a literal: a name of the
 * record's schema, printable ASCII without '"' or '\\', which
 * tests/layout/check_jw_keys.py checks in every source file), so that such
 * a key is copied without being measured or scanned; klen (size_t)-1
 * (every other key) is measured and written by the string rules. */
#if defined(__GNUC__) || defined(__clang__)
#define XV_JW_KLEN(k) (__builtin_constant_p(k) ? __builtin_strlen(k) : (size_t)-1)
#else
#define XV_JW_KLEN(k) ((size_t)-1)
#endif
void xv_jw_key_l(struct xv_jw *w, const char *key, size_t klen);
#define xv_jw_key(w, k) xv_jw_key_l((w), (k), XV_JW_KLEN(k))
/* A string value: s[0..n) up to its first NUL, by the rules above. s NULL: "". */
void xv_jw_strn(struct xv_jw *w, const char *s, size_t n);
void xv_jw_str(struct xv_jw *w, const char *s); /* NUL-terminated */
/* A captured text: s[0..n) cut to `max` bytes at a UTF-8 boundary, invalid
 * UTF-8 replaced by U+FFFD first (counted in the budget), then cut at its
 * first NUL; *cut set to 1 when bytes were dropped by the budget (left
 * alone otherwise). Valid text is written without a copy. */
void xv_jw_strn_max(struct xv_jw *w, const char *s, size_t n, size_t max, int *cut);
void xv_jw_num(struct xv_jw *w, double d);
void xv_jw_bool(struct xv_jw *w, int b);
void xv_jw_null(struct xv_jw *w);
/* A value written verbatim (already JSON text). */
void xv_jw_raw(struct xv_jw *w, const char *p, size_t n);

/* Where the text is now, to go back to: a value written tentatively (an
 * object that may stay empty, a text measured before it is kept). */
struct xv_jw_mark {
    size_t len;   /* bytes written then */
    int comma;    /* the separator state then */
};
struct xv_jw_mark xv_jw_mark(const struct xv_jw *w);
/* Drop everything written since the mark. */
void xv_jw_rewind(struct xv_jw *w, struct xv_jw_mark m);
/* Insert p[0..n) at byte offset `at` (<= len) of the text, verbatim. */
void xv_jw_insert(struct xv_jw *w, size_t at, const char *p, size_t n);

/* Shorthands for one member: key then value. */
void xv_jw_kstr_l(struct xv_jw *w, const char *key, size_t klen, const char *s);
void xv_jw_knum_l(struct xv_jw *w, const char *key, size_t klen, double d);
void xv_jw_kbool_l(struct xv_jw *w, const char *key, size_t klen, int b);
#define xv_jw_kstr(w, k, s) xv_jw_kstr_l((w), (k), XV_JW_KLEN(k), (s))
#define xv_jw_knum(w, k, d) xv_jw_knum_l((w), (k), XV_JW_KLEN(k), (d))
#define xv_jw_kbool(w, k, b) xv_jw_kbool_l((w), (k), XV_JW_KLEN(k), (b))

/* A cJSON tree as a value: what cJSON_PrintUnformatted prints for it,
 * with every key and string repaired to UTF-8 first when `repair` (what
 * the exporter always did). Returns 0, or -1 when cJSON could not print it
 * either (an invalid item, a raw item without text, nesting past 1000);
 * the writer's text is then unusable (oom set). */
struct cJSON;
int xv_jw_cjson(struct xv_jw *w, const struct cJSON *item, int repair);

/* The number rules above into buf (no NUL needed by callers); returns the
 * length. Used by exporter/exp_json.c for cJSON trees. */
size_t xv_jw_format_number(double d, char buf[40]);
/* n / 10^k (0 <= k <= 6) exactly as xv_jw_format_number((double)n / 10^k)
 * prints it, without printf and strtod (a latency in ns as ms: k = 6). */
size_t xv_jw_format_scaled(uint64_t n, int k, char buf[40]);
/* Member shorthand for it. */
void xv_jw_kscaled_l(struct xv_jw *w, const char *key, size_t klen, uint64_t n, int k);
#define xv_jw_kscaled(w, key, n, k) xv_jw_kscaled_l((w), (key), XV_JW_KLEN(key), (n), (k))
/* Escape s[0..n) as a JSON string (quotes included) without the NUL cut or
 * the UTF-8 repair: for text already known to be clean. */
void xv_jw_escaped(struct xv_jw *w, const char *s, size_t n);

#endif
