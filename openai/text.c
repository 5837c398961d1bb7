/*
 * text.c — small string helpers for the openai module: bounded UTF-8-aware
 * capture of text into records, credential masking for upstream error
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
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Length of the valid UTF-8 sequence starting at s[0..avail), or 0 when the
 * bytes there are not one (overlong forms, surrogates and values past
 * U+10FFFF are invalid, as in RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char b = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

size_t xv_oai_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    /* Step back over continuation bytes to the start of the sequence the
     * cut falls into; at most 3 of them belong to one character. */
    for (int i = 0; i < 4 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80; i++)
        cut--;
    return cut;
}

/* Length of the run of ASCII bytes at s (at most len), eight at a time:
 * record strings are mostly ASCII, and checking them a sequence at a time
 * was ~5 % of a call's CPU (issue 9). */
static size_t ascii_run(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    return i;
}

char *xv_oai_utf8_fix(const char *s, size_t len, size_t max, int *cut)
{
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
    if (!s)
        s = "", len = 0;
    /* Each input byte yields at most 3 output bytes (one U+FFFD). */
    size_t cap = len > max / 3 ? max : 3 * len;
    char *t = malloc(cap + 1);
    if (!t)
        return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t run = ascii_run(s + i, len - i);
        if (run) {
            size_t k = o + run > max ? max - o : run;
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
            if (k < run)
                break;
            continue;
        }
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
        const char *src = n ? s + i : repl;
        size_t outn = n ? n : 3;
        if (o + outn > max)
            break;
        memcpy(t + o, src, outn);
        o += outn;
        i += n ? n : 1;
    }
    if (i < len)
        *cut = 1;
    t[o] = '\0';
    return t;
}

int xv_oai_utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        i += ascii_run(s + i, len - i);
        if (i == len)
            break;
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

cJSON *xv_oai_capture_string(const char *s, size_t len, size_t max, int *cut)
{
    char *t = xv_oai_utf8_fix(s, len, max, cut);
    if (!t)
        return NULL;
    cJSON *v = cJSON_CreateString(t);
    free(t);
    return v;
}

/* Replace *p (owned by cJSON) with a valid copy when it is not valid UTF-8. */
static void fix_owned(char **p)
{
    if (!*p)
        return;
    size_t len = strlen(*p);
    if (xv_oai_utf8_valid(*p, len))
        return;
    int cut = 0;
    char *t = xv_oai_utf8_fix(*p, len, 3 * len, &cut);
    if (!t)
        t = xv_oai_strdup("");
    if (!t)
        return; /* OOM twice: leave it; the exporter copes with bytes */
    free(*p);
    *p = t;
}

void xv_oai_sanitize_tree(cJSON *v)
{
    /* Depth is bounded by cJSON's parse nesting limit (1000). */
    for (; v; v = v->next) {
        if (v->string && !(v->type & cJSON_StringIsConst))
            fix_owned(&v->string);
        if (cJSON_IsString(v) && !(v->type & cJSON_IsReference))
            fix_owned(&v->valuestring);
        if (v->child)
            xv_oai_sanitize_tree(v->child);
    }
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
