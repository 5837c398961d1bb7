/*
 * skim.c — parse only some top-level members of a JSON object.
 *
 * An embeddings response is mostly `data`: thousands of floats (or base64
 * strings) per input that a trace never needs. Building a cJSON tree for
 * them costs ~64 bytes and a strtod per number — tens of megabytes and
 * milliseconds on a large batch, in the host's own thread. The skimmer walks
 * the top-level object, steps over values it was not asked for by counting
 * brackets outside strings, and hands only the wanted values to cJSON.
 *
 * Invariant: never reads outside [p, p+len); iterative (no recursion, so
 * nesting depth costs nothing). Skipped values are not validated; when the
 * text is not a top-level object by the skimmer's rules it returns NULL and
 * the caller parses the whole text with cJSON instead (which reports the
 * error precisely).
 *
 * Thread safety: pure function; no state.
 */
#include <stddef.h>
#include <string.h>

#include "openai_int.h"

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote: return just past the closing one, or NULL.
 * memchr does the scanning: base64 embeddings are long strings. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        /* An odd run of backslashes before the quote escapes it. */
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

/* Bytes that matter while stepping over a value; everything else (digits,
 * letters, whitespace) is passed over by one table lookup. */
static const unsigned char special[256] = {
    ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1, [','] = 1,
};

/* p at a value: return the ',' or '}' that ends it at depth 0, or NULL. */
static const char *skip_value(const char *p, const char *end)
{
    size_t depth = 0;
    while (p < end) {
        char ch = *p;
        if (!special[(unsigned char)ch]) {
            p++;
            continue;
        }
        if (ch == '"') {
            p = skip_string(p, end);
            if (!p)
                return NULL;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return ch == '}' ? p : NULL;
            depth--;
        } else if (depth == 0) { /* ',' */
            return p;
        }
        p++;
    }
    return NULL;
}

cJSON *xv_oai_json_skim(const char *text, size_t len, const char *const *keys)
{
    const char *p = text, *end = text + len;
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return NULL;
    cJSON *out = cJSON_CreateObject();
    if (!out)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        if (p == end || *p != '"')
            goto fail;
        const char *k = p + 1, *ke = skip_string(p, end);
        if (!ke)
            goto fail;
        size_t klen = (size_t)(ke - 1 - k);
        p = skip_ws(ke, end);
        if (p == end || *p != ':')
            goto fail;
        const char *v = skip_ws(p + 1, end);
        const char *ve = skip_value(v, end);
        if (!ve || ve == v)
            goto fail;
        /* Keys we look for have no escapes, so a raw compare is exact once
         * keys that cJSON would read differently — escaped, or cut at a NUL
         * byte — go to the full parse. */
        if (memchr(k, '\\', klen) || memchr(k, '\0', klen))
            goto fail;
        for (const char *const *w = keys; *w; w++) {
            if (strlen(*w) != klen || memcmp(*w, k, klen) != 0)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(out, *w))
                break; /* duplicate key: the first wins, as in cJSON */
            const char *pe = NULL;
            cJSON *item = cJSON_ParseWithLengthOpts(v, (size_t)(ve - v), &pe, 0);
            if (!item)
                goto fail;
            /* The value must be all that was between the delimiters. */
            if (skip_ws(pe, ve) != ve || !cJSON_AddItemToObject(out, *w, item)) {
                cJSON_Delete(item);
                goto fail;
            }
            break;
        }
        p = ve;
        if (*p == '}')
            break;
        p = skip_ws(p + 1, end); /* past ',' */
    }
done:
    /* Only whitespace may follow the object. */
    if (skip_ws(p + 1, end) != end)
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}
