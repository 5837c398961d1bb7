/*
 * text.c — small string helpers for the openai module: bounded, UTF-8-aware
 * helpers for captured text (records are written by record.c through
 * common/xv_jsonw.h), credential masking for upstream error
 * messages, and Content-Type matching.
 *
 * Invariant: a captured string never exceeds its byte budget and is always
 * valid UTF-8 (records are serialised as JSON and OTLP, both of which
 * require it), whatever bytes the upstream or the application sent.
 *
 * Thread safety: pure functions; no state.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openai_int.h"
#include "xv_common.h"

char *xv_oai_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

const char *xv_oai_get_str(const cJSON *obj, const char *key)
{
    return xv_json_str(xv_json_get(obj, key));
}

/* The UTF-8 helpers live in common/utf8.c (one set for every module). */
size_t xv_oai_utf8_cut(const char *s, size_t len, size_t max)
{
    return xv_utf8_cut(s, len, max);
}

char *xv_oai_utf8_fix(const char *s, size_t len, size_t max, int *cut)
{
    return xv_utf8_fix(s, len, max, cut);
}

int xv_oai_utf8_valid(const char *s, size_t len)
{
    return xv_utf8_valid(s, len);
}

/* Bytes that can appear in an API key or bearer token. */
static int key_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '+' || ch == '/' || ch == '=';
}

char *xv_oai_scrub(const char *s, size_t max)
{
    size_t len = strlen(s);
    len = xv_oai_utf8_cut(s, len, max);
    char *d = malloc(len + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        /* Upstreams sometimes echo the key they rejected; OpenAI masks it
         * ("sk-proj-****abcd") but compatible servers may not. Keep the
         * prefix, mask the rest of the token. */
        size_t keep = 0, min = 0;
        int boundary = i == 0 || !key_char((unsigned char)s[i - 1]);
        if (boundary && len - i >= 3 && memcmp(s + i, "sk-", 3) == 0)
            keep = 3, min = 8;
        else if (boundary && len - i >= 7 && strncasecmp(s + i, "bearer ", 7) == 0)
            keep = 7, min = 16; /* "Bearer authentication failed" stays readable */
        if (keep) {
            size_t j = i + keep;
            while (j < len && key_char((unsigned char)s[j]))
                j++;
            if (j - (i + keep) >= min) {
                memcpy(d + o, s + i, keep);
                o += keep;
                /* "***" is never longer than the >= 8 bytes it replaces. */
                memcpy(d + o, "***", 3);
                o += 3;
                i = j;
                continue;
            }
        }
        d[o++] = s[i++];
    }
    d[o] = '\0';
    return d;
}

int xv_oai_media_type_is(const char *ct, size_t ct_len, const char *type)
{
    if (!ct)
        return 0;
    size_t i = 0;
    while (i < ct_len && (ct[i] == ' ' || ct[i] == '\t'))
        i++;
    size_t tl = strlen(type);
    if (ct_len - i < tl || strncasecmp(ct + i, type, tl) != 0)
        return 0;
    i += tl;
    /* The media type must end here: parameters, whitespace or nothing. */
    return i == ct_len || ct[i] == ';' || ct[i] == ' ' || ct[i] == '\t';
}
