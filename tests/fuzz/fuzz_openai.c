/* link: xv_openai xv_http xv_common */
/*
 * fuzz_openai.c — libFuzzer target for the openai module: untrusted request
 * bodies and response bodies (JSON and SSE) through a whole call, then a
 * trace record.
 *
 * Input: byte 0 is a control byte, the rest is "<request body>\x00<response
 * body>" (no NUL: everything is the response, the request is empty).
 *   bits 0-1  API type (chat, responses, embeddings, completions)
 *   bit 2     response is text/event-stream (else application/json)
 *   bit 3     capture_content off
 *   bit 4     small limits (body_max 300, capture_max 24)
 *   bit 5     the connection ends with an error
 *   bits 6-7  response status 200, 200 without Content-Type (the module
 *             sniffs streams), 429, 500
 * Besides memory errors (ASan/UBSan), the target checks the module's
 * invariants: the record is the same whether the bodies arrive whole or
 * in slices (sizes from the input itself), every record is valid UTF-8,
 * no captured text field exceeds capture_max, and the embeddings skimmer
 * (skim.c) returns exactly what a full cJSON parse has for the members it
 * keeps. A violation aborts.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai_int.h" /* xv_oai_json_skim */
#include "xv_openai.h"

static int valid_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char b = p[i];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

/* Feed p[0..n) whole (stride 0) or in slices whose sizes cycle through
 * `sizes` (bytes of the input, so the fuzzer explores split points). */
static void feed(struct xv_openai_call *c, int response, const uint8_t *p, size_t n,
                 const uint8_t *sizes, size_t nsizes)
{
    size_t off = 0, k = 0;
    while (off < n) {
        size_t step = n - off;
        if (nsizes) {
            step = (size_t)(sizes[k++ % nsizes] % 17) + 1;
            if (step > n - off)
                step = n - off;
        }
        if (response)
            xv_openai_call_response_body(c, (const char *)p + off, step, 7000000);
        else
            xv_openai_call_request_body(c, (const char *)p + off, step);
        off += step;
    }
}

static char *run(uint8_t ctl, const uint8_t *req, size_t req_len, const uint8_t *resp,
                 size_t resp_len, const uint8_t *sizes, size_t nsizes, size_t *capture_max)
{
    struct xv_openai_limits lim = {
        .body_max = (ctl & 0x10) ? 300 : 1 << 20,
        .capture_max = (ctl & 0x10) ? 24 : 4096,
        .capture_content = !(ctl & 0x08),
    };
    *capture_max = lim.capture_max;
    static const int statuses[4] = {200, 200, 429, 500};
    struct xv_openai_call *c = xv_openai_call_new((ctl & 3) + 1, &lim);
    if (!c)
        return NULL;
    feed(c, 0, req, req_len, sizes, nsizes);
    xv_openai_call_request_end(c);
    const char *ct = (ctl & 0x04) ? "text/event-stream; charset=utf-8" : "application/json";
    if ((ctl >> 6) == 1)
        ct = NULL;
    xv_openai_call_response_head(c, statuses[ctl >> 6], ct, ct ? strlen(ct) : 0, 5000000);
    feed(c, 1, resp, resp_len, sizes, nsizes);
    xv_openai_call_response_end(c, (ctl & 0x20) ? "connection closed mid-stream" : NULL, 9000000);

    /* The views must be readable whatever came in. */
    for (size_t i = 0; i < xv_openai_call_message_count(c); i++) {
        const struct xv_openai_message *m = xv_openai_call_message(c, i);
        if (!m || !m->role || (m->content && strlen(m->content) != m->content_len))
            abort();
        for (size_t k = 0; k < m->ntool_calls; k++)
            if (strlen(m->tool_calls[k].arguments) != m->tool_calls[k].arguments_len)
                abort();
    }
    for (size_t i = 0; i < xv_openai_call_tool_count(c); i++)
        if (!xv_openai_call_tool_name(c, i))
            abort();
    struct xv_openai_tool_call tc;
    for (size_t i = 0; i < xv_openai_call_response_tool_call_count(c); i++)
        if (xv_openai_call_response_tool_call(c, i, &tc) != 0 || !tc.id || !tc.name)
            abort();

    cJSON *r = cJSON_CreateObject();
    char *out = NULL;
    if (r && xv_openai_call_fill_record(c, r, 1000000) == 0)
        out = cJSON_PrintUnformatted(r);
    if (r) {
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(r, "response_content");
        if (cJSON_IsString(rc) && strlen(rc->valuestring) > lim.capture_max)
            abort();
        if (!lim.capture_content && (cJSON_GetObjectItemCaseSensitive(r, "messages") || rc))
            abort();
        const cJSON *t, *tcs = cJSON_GetObjectItemCaseSensitive(r, "tool_calls");
        size_t args = 0;
        cJSON_ArrayForEach(t, tcs) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "arguments");
            if (a && !lim.capture_content)
                abort();
            if (cJSON_IsString(a))
                args += strlen(a->valuestring);
        }
        if (args > lim.capture_max)
            abort();
    }
    cJSON_Delete(r);
    xv_openai_call_free(c);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    const uint8_t *nul = memchr(body, 0, n);
    const uint8_t *req = body, *resp = body;
    size_t req_len = 0, resp_len = n;
    if (nul) {
        req_len = (size_t)(nul - body);
        resp = nul + 1;
        resp_len = n - req_len - 1;
    }
    /* The skimmer agrees with a full parse on every member it returns. */
    static const char *const keys[] = {"id", "model", "usage", "error", NULL};
    cJSON *sk = xv_oai_json_skim((const char *)resp, resp_len, keys);
    if (sk) {
        cJSON *full = cJSON_ParseWithLength((const char *)resp, resp_len);
        if (!cJSON_IsObject(sk) || (full && !cJSON_IsObject(full)))
            abort();
        for (const char *const *k = keys; full && *k; k++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(sk, *k);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(full, *k);
            /* Printed, not cJSON_Compare: that one says an object with a
             * duplicate key differs from itself. */
            char *pa = a ? cJSON_PrintUnformatted(a) : NULL;
            char *pb = b ? cJSON_PrintUnformatted(b) : NULL;
            int same = (!a && !b) || (pa && pb && strcmp(pa, pb) == 0) || (a && b && (!pa || !pb));
            free(pa);
            free(pb);
            if (!same) {
                fprintf(stderr, "skim differs on %s\n", *k);
                abort();
            }
        }
        cJSON_Delete(full);
        cJSON_Delete(sk);
    }
    size_t cap;
    char *whole = run(ctl, req, req_len, resp, resp_len, NULL, 0, &cap);
    /* Slice sizes from the input's own bytes: deterministic per input. */
    char *sliced = run(ctl, req, req_len, resp, resp_len, data, size < 64 ? size : 64, &cap);
    if (whole && sliced) {
        if (strcmp(whole, sliced) != 0) {
            fprintf(stderr, "record differs by split:\n whole  %s\n sliced %s\n", whole, sliced);
            abort();
        }
        if (!valid_utf8((const unsigned char *)whole, strlen(whole))) {
            fprintf(stderr, "record is not valid UTF-8: %s\n", whole);
            abort();
        }
    }
    free(whole);
    free(sliced);
    return 0;
}
