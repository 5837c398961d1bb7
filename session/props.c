/*
 * props.c — session-id validation and custom properties (SPEC §3, §10):
 * XENOVIA_SESSION_ID, XENOVIA_PROPERTIES (OTEL_RESOURCE_ATTRIBUTES syntax,
 * percent-decoded values) and app-sent X-Xenovia-Property-* headers.
 *
 * Invariant: a struct xv_session_props only ever holds properties within
 * the limits (≤ 20; key 1–64 chars of [A-Za-z0-9_-], not "policy_…", unique
 * ignoring case; value valid UTF-8, ≤ 512 code points, no control character
 * but tab), so whatever holds one can put it in headers and records as is.
 *
 * Thread safety: no shared state; a set belongs to its caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "session_int.h"

/* 1 for the bytes a UUID's hex digits may be (0-9, a-f, A-F). */
static const unsigned char g_hex[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
};

int xv_session_uuid_valid(const char *s, size_t len)
{
    if (!s || len != XV_SESSION_ID_LEN)
        return 0;
    /* No branch on the bytes (a byte-class test per byte mispredicted
     * often enough to show in a call's profile, issue 9): the dashes at
     * 8, 13, 18, 23, a hex digit everywhere else. */
    unsigned bad = 0;
    for (size_t i = 0; i < XV_SESSION_ID_LEN; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned dash = i == 8 || i == 13 || i == 18 || i == 23;
        bad |= dash ? (unsigned)(c != '-') : (unsigned)!g_hex[c];
    }
    return bad == 0;
}

/* A value quoted for an error line: at most 40 bytes, printable ASCII only. */
static void quote_for_log(char *dst, size_t cap, const char *v, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 4 < cap; i++) {
        if (i == 40) {
            dst[j++] = '.';
            dst[j++] = '.';
            dst[j++] = '.';
            break;
        }
        unsigned char c = (unsigned char)v[i];
        dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[j] = '\0';
}

int xv_session_env_id_check(const char *value, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    unsigned char b[16];
    if (!value || xv_uuid_parse(value, strlen(value), b) == 0)
        return 0; /* any UUID spelling; users of the value normalise it (xv_uuid_normalize) */
    char q[64];
    quote_for_log(q, sizeof q, value, strlen(value));
    if (err && errlen)
        snprintf(err, errlen,
                 "XENOVIA_SESSION_ID=\"%s\" is not a UUID; set it to 8-4-4-4-12 hex digits "
                 "(e.g. from uuidgen) or unset it; ignoring it",
                 q);
    return XV_E_CONFIG;
}

/* --------------------------------------------------------------- sets */

void xv_session_props_init(struct xv_session_props *p)
{
    memset(p, 0, sizeof *p);
}

void xv_session_props_free(struct xv_session_props *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->p[i].value);
    p->n = 0;
}

int xv_session_props_copy(struct xv_session_props *dst, const struct xv_session_props *src)
{
    xv_session_props_init(dst);
    for (size_t i = 0; i < src->n; i++) {
        struct xv_session_prop *d = &dst->p[i];
        memcpy(d->key, src->p[i].key, sizeof d->key);
        d->value = malloc(src->p[i].value_len + 1);
        if (!d->value) {
            xv_session_props_free(dst);
            return XV_E_NOMEM;
        }
        memcpy(d->value, src->p[i].value, src->p[i].value_len + 1);
        d->value_len = src->p[i].value_len;
        dst->n = i + 1;
    }
    dst->dropped = src->dropped;
    return 0;
}

/* Why a key is refused, or NULL. */
static const char *key_problem(const char *k, size_t n)
{
    if (n == 0)
        return "is empty";
    if (n > XV_SESSION_PROP_KEY_MAX)
        return "is longer than 64 characters";
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return "has a character other than letters, digits, '-' and '_'";
    }
    if (n >= 7 && strncasecmp(k, "policy_", 7) == 0)
        return "starts with the reserved prefix policy_";
    return NULL;
}

/* Why a (decoded) value is refused, or NULL. Counts UTF-8 code points. */
static const char *value_problem(const char *v, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)v + i;
        /* common/utf8.c: overlong forms, surrogates, past U+10FFFF refused */
        size_t len = xv_utf8_seq_len(u, n - i);
        if (len == 0)
            return "is not valid UTF-8";
        if ((len == 1 && ((u[0] < 0x20 && u[0] != '\t') || u[0] == 0x7f)) ||
            (len == 2 && u[0] == 0xC2 && u[1] < 0xA0))     /* C0, DEL, C1 (U+0080..U+009F) */
            return "contains a control character";
        i += len;
        if (++chars > XV_SESSION_PROP_VALUE_MAX)
            return "is longer than 512 characters";
    }
    return NULL;
}

static int find_key(const struct xv_session_props *p, const char *k, size_t n)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->p[i].key) == n && strncasecmp(p->p[i].key, k, n) == 0)
            return (int)i;
    return -1;
}

/* Put (k, v) at slot i (replacing) or append; takes ownership of v. */
static void put_prop(struct xv_session_props *p, int i, const char *k, size_t kn, char *v,
                     size_t vn)
{
    if (i < 0)
        i = (int)p->n++;
    else
        free(p->p[i].value);
    memcpy(p->p[i].key, k, kn);
    p->p[i].key[kn] = '\0';
    p->p[i].value = v;
    p->p[i].value_len = vn;
}

/* Percent-decode v[0..n) into a new NUL-terminated string (*out, *outn).
 * Returns 0, XV_E_PARSE on a malformed escape, XV_E_NOMEM. A '+' stays a
 * '+' (OTEL_RESOURCE_ATTRIBUTES is not form encoding). */
static int pct_decode(const char *v, size_t n, char **out, size_t *outn)
{
    char *r = malloc(n + 1);
    if (!r)
        return XV_E_NOMEM;
    if (xv_pct_decode(v, n, r, outn, 1) != 0) {   /* common/bytes.c, strict */
        free(r);
        return XV_E_PARSE;
    }
    *out = r;
    return 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *n)
{
    while (*n && is_ows(**p))
        (*p)++, (*n)--;
    while (*n && is_ows((*p)[*n - 1]))
        (*n)--;
}

#define PROPS_VAR "XENOVIA_PROPERTIES"

int xv_session_props_parse(const char *text, struct xv_session_props *out, char *err,
                           size_t errlen)
{
    xv_session_props_init(out);
    if (err && errlen)
        err[0] = '\0';
    if (!text)
        return 0;
    char q[64];
    const char *p = text;
    int entry = 0;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *e = p;
        p = end ? end + 1 : p + n;
        trim(&e, &n);
        if (n == 0)
            continue; /* "a=1,,b=2" and a trailing comma are tolerated */
        entry++;
        const char *eq = memchr(e, '=', n);
        if (!eq) {
            quote_for_log(q, sizeof q, e, n);
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": entry %d \"%s\" has no '='; write key=value pairs "
                         "separated by commas",
                         entry, q);
            goto fail;
        }
        const char *k = e, *v = eq + 1;
        size_t kn = (size_t)(eq - e), vn = n - kn - 1;
        trim(&k, &kn);
        trim(&v, &vn);
        const char *why = key_problem(k, kn);
        if (why) {
            quote_for_log(q, sizeof q, k, kn);
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": key \"%s\" %s; keys are 1-64 letters, digits, '-' or "
                         "'_' and must not start with policy_",
                         q, why);
            goto fail;
        }
        if (find_key(out, k, kn) >= 0) {
            quote_for_log(q, sizeof q, k, kn);
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": key \"%s\" appears twice (keys are compared ignoring "
                         "case); keep one",
                         q);
            goto fail;
        }
        if (out->n == XV_SESSION_PROP_MAX) {
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": more than 20 properties; keep at most 20");
            goto fail;
        }
        char *dv;
        size_t dn;
        int rc = pct_decode(v, vn, &dv, &dn);
        if (rc == XV_E_NOMEM) {
            xv_session_props_free(out);
            return XV_E_NOMEM;
        }
        quote_for_log(q, sizeof q, k, kn);
        if (rc) {
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": value of \"%s\" has a '%%' not followed by two hex "
                         "digits; percent-encode it as %%25",
                         q);
            goto fail;
        }
        why = value_problem(dv, dn);
        if (why) {
            free(dv);
            if (err && errlen)
                snprintf(err, errlen,
                         PROPS_VAR ": value of \"%s\" %s; values are at most 512 characters "
                         "of UTF-8 text (percent-encode anything else)",
                         q, why);
            goto fail;
        }
        put_prop(out, -1, k, kn, dv, dn);
    }
    return 0;
fail:
    xv_session_props_free(out);
    return XV_E_CONFIG;
}

int xv_session_props_add_header(struct xv_session_props *p, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    static const char prefix[] = XV_SESSION_PROP_HEADER_PREFIX;
    size_t pl = sizeof prefix - 1;
    if (!name || name_len <= pl || strncasecmp(name, prefix, pl) != 0)
        return XV_E_PARSE;
    const char *k = name + pl, *v = value ? value : "";
    size_t kn = name_len - pl, vn = value ? value_len : 0;
    trim(&v, &vn);
    if (key_problem(k, kn) || memchr(v, '\0', vn) || value_problem(v, vn)) {
        p->dropped++;
        return XV_E_LIMIT;
    }
    int i = find_key(p, k, kn);
    if (i < 0 && p->n == XV_SESSION_PROP_MAX) {
        p->dropped++;
        return XV_E_LIMIT;
    }
    char *dv = malloc(vn + 1);
    if (!dv)
        return XV_E_NOMEM;
    memcpy(dv, v, vn);
    dv[vn] = '\0';
    put_prop(p, i, k, kn, dv, vn);
    return 0;
}

int xv_session_props_to_json(const struct xv_session_props *p, cJSON *record, const char *field)
{
    if (p->n == 0)
        return 0;
    cJSON *o = cJSON_AddObjectToObject(record, field);
    if (!o)
        return XV_E_NOMEM;
    for (size_t i = 0; i < p->n; i++)
        if (!cJSON_AddStringToObject(o, p->p[i].key, p->p[i].value))
            return XV_E_NOMEM;
    return 0;
}
