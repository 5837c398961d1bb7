/*
 * openai_harness.h — helpers shared by the openai module's unit tests
 * (test_openai.c, test_openai_stream.c, test_openai_capture.c): a call fed
 * a request and a response (whole or split in three), its record as a cJSON
 * tree, and accessors over that record.
 *
 * Header-only: every function is static inline; include it once per test.
 */
#ifndef XV_TEST_OPENAI_HARNESS_H
#define XV_TEST_OPENAI_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xv_common.h"
#include "xv_openai.h"
#include "openai_int.h" /* xv_oai_json_skim, tested directly */

#define MS ((uint64_t)1000000)

/* ---- helpers ---- */

static inline struct xv_openai_call *call_with_request(int type, const struct xv_openai_limits *lim,
                                                const char *req)
{
    struct xv_openai_call *c = xv_openai_call_new(type, lim);
    assert_non_null(c);
    if (req) {
        xv_openai_call_request_body(c, req, strlen(req));
        xv_openai_call_request_end(c);
    }
    return c;
}

/* Feed body in up to three slices: [0,a), [a,b), [b,len), all at time `now`. */
static inline void feed3(struct xv_openai_call *c, const char *body, size_t len, size_t a, size_t b,
                  uint64_t now)
{
    if (a > len)
        a = len;
    if (b < a)
        b = a;
    if (b > len)
        b = len;
    xv_openai_call_response_body(c, body, a, now);
    xv_openai_call_response_body(c, body + a, b - a, now);
    xv_openai_call_response_body(c, body + b, len - b, now);
}

static inline cJSON *record_of(struct xv_openai_call *c, uint64_t start)
{
    cJSON *r = cJSON_CreateObject();
    assert_non_null(r);
    assert_int_equal(xv_openai_call_fill_record(c, r, start), 0);
    return r;
}

/* A whole call: request, response head, body split at (a, b), end. */
static inline cJSON *run(int type, const struct xv_openai_limits *lim, const char *req, int status,
                  const char *ct, const char *body, size_t a, size_t b, const char *end_error)
{
    struct xv_openai_call *c = call_with_request(type, lim, req);
    xv_openai_call_response_head(c, status, ct, ct ? strlen(ct) : 0, 2 * MS);
    feed3(c, body, strlen(body), a, b, 5 * MS);
    xv_openai_call_response_end(c, end_error, 9 * MS);
    cJSON *r = record_of(c, 1 * MS);
    xv_openai_call_free(c);
    return r;
}

static inline const char *str_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double num_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static inline int has(const cJSON *r, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(r, key) != NULL;
}

static inline int truncated_has(const cJSON *r, const char *field)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "truncated"), *e;
    cJSON_ArrayForEach(e, t) {
        if (cJSON_IsString(e) && strcmp(e->valuestring, field) == 0)
            return 1;
    }
    return 0;
}

static inline const cJSON *arr_item(const cJSON *r, const char *key, int i)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, key);
    assert_true(cJSON_IsArray(a));
    const cJSON *v = cJSON_GetArrayItem(a, i);
    assert_non_null(v);
    return v;
}

static inline int arr_size(const cJSON *r, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
}

/* Is s valid UTF-8? (independent of the module's own checker) */
static inline int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (n == 0)
            return 0;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

static inline char *printed(const cJSON *r)
{
    char *s = cJSON_PrintUnformatted(r);
    assert_non_null(s);
    return s;
}


/* The chat request most tests send. */
static const char chat_req[] =
    "{\"model\":\"gpt-4o\",\"stream\":false,"
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
    "\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"parameters\":"
    "{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"search\"}}]}";

/* Stream fixtures (test_openai_stream.c, test_openai_capture.c). */
static const char stream_req[] =
    "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";

#define CHUNK(delta, finish, usage)                                                          \
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,"      \
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":" delta             \
    ",\"finish_reason\":" finish "}],\"usage\":" usage "}\n\n"

static const char chat_stream_usage[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null", "null")
    CHUNK("{\"content\":\"Hello\"}", "null", "null")
    CHUNK("{\"content\":\", w\xc3\xb6rld \xe2\x82\xac\"}", "null", "null")
    CHUNK("{}", "\"stop\"", "null")
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":4,\"total_tokens\":16}}\n\n"
    "data: [DONE]\n\n";

#define TCHUNK(tc)                                                                           \
    "data: {\"id\":\"chatcmpl-T\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","  \
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[" tc "]},\"finish_reason\":null}]}\n\n"

static const char chat_stream_tools[] =
    "data: {\"id\":\"chatcmpl-T\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},"
    "\"finish_reason\":null}]}\n\n"
    TCHUNK("{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_weather\",\"arguments\":\"\"}}")
    TCHUNK("{\"index\":1,\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_time\",\"arguments\":\"\"}}")
    TCHUNK("{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}")
    TCHUNK("{\"index\":1,\"function\":{\"arguments\":\"{\\\"tz\\\":\"}}")
    TCHUNK("{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Paris\"}}")
    TCHUNK("{\"index\":1,\"function\":{\"arguments\":\" \\\"CET\\\"}\"}}")
    TCHUNK("{\"index\":0,\"function\":{\"arguments\":\"\\\"}\"}}")
    "data: {\"id\":\"chatcmpl-T\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: [DONE]\n\n";

#endif
