/*
 * test_openai.c — unit tests for openai/: classification, request
 * normalisation, non-stream and SSE response extraction for the four APIs,
 * stream reassembly independent of how the bytes are split, usage present
 * vs absent, errors (malformed JSON, over-limit bodies, upstream errors,
 * cut streams), capture limits at UTF-8 boundaries and capture off.
 *
 * Every test asserts on the trace-record fields the call produces, the
 * contract the session and exporter layers rely on.
 */
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

static struct xv_openai_call *call_with_request(int type, const struct xv_openai_limits *lim,
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
static void feed3(struct xv_openai_call *c, const char *body, size_t len, size_t a, size_t b,
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

static cJSON *record_of(struct xv_openai_call *c, uint64_t start)
{
    cJSON *r = cJSON_CreateObject();
    assert_non_null(r);
    assert_int_equal(xv_openai_call_fill_record(c, r, start), 0);
    return r;
}

/* A whole call: request, response head, body split at (a, b), end. */
static cJSON *run(int type, const struct xv_openai_limits *lim, const char *req, int status,
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

static const char *str_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static int has(const cJSON *r, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(r, key) != NULL;
}

static int truncated_has(const cJSON *r, const char *field)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "truncated"), *e;
    cJSON_ArrayForEach(e, t) {
        if (cJSON_IsString(e) && strcmp(e->valuestring, field) == 0)
            return 1;
    }
    return 0;
}

static const cJSON *arr_item(const cJSON *r, const char *key, int i)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, key);
    assert_true(cJSON_IsArray(a));
    const cJSON *v = cJSON_GetArrayItem(a, i);
    assert_non_null(v);
    return v;
}

static int arr_size(const cJSON *r, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
}

/* Is s valid UTF-8? (independent of the module's own checker) */
static int valid_utf8(const char *s)
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

static char *printed(const cJSON *r)
{
    char *s = cJSON_PrintUnformatted(r);
    assert_non_null(s);
    return s;
}

/* ---- classification ---- */

static void test_classify_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *target;
        int want;
    } t[] = {
        {"POST", "/v1/chat/completions", XV_OPENAI_CHAT},
        {"POST", "/chat/completions", XV_OPENAI_CHAT},
        {"POST", "/openai/v1/chat/completions", XV_OPENAI_CHAT},
        {"POST", "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
         XV_OPENAI_CHAT},
        {"POST", "/a/0b7c2f/openai/v1/chat/completions", XV_OPENAI_CHAT},
        {"POST", "/v1/chat/completions?x=/v1/embeddings", XV_OPENAI_CHAT},
        {"POST", "https://api.openai.com/v1/chat/completions", XV_OPENAI_CHAT},
        {"POST", "/v1/chat/completions#frag", XV_OPENAI_CHAT},
        {"POST", "/v1/completions", XV_OPENAI_COMPLETIONS},
        {"POST", "/completions", XV_OPENAI_COMPLETIONS},
        {"POST", "/openai/deployments/davinci/completions?api-version=1", XV_OPENAI_COMPLETIONS},
        {"POST", "/v1/responses", XV_OPENAI_RESPONSES},
        {"POST", "/openai/v1/responses?api-version=preview", XV_OPENAI_RESPONSES},
        {"POST", "/a/ID/openai/v1/responses", XV_OPENAI_RESPONSES},
        {"POST", "/v1/embeddings", XV_OPENAI_EMBEDDINGS},
        {"POST", "/openai/deployments/emb-3/embeddings?api-version=2023-05-15",
         XV_OPENAI_EMBEDDINGS},
        /* negatives */
        {"GET", "/v1/chat/completions", XV_OPENAI_NONE},
        {"post", "/v1/chat/completions", XV_OPENAI_NONE},
        {"PUT", "/v1/responses", XV_OPENAI_NONE},
        {"POSTX", "/v1/responses", XV_OPENAI_NONE},
        {"POST", "/v1/models", XV_OPENAI_NONE},
        {"POST", "/v1/chat/completionsX", XV_OPENAI_NONE},
        {"POST", "/v1/chat/completions/", XV_OPENAI_NONE},
        {"POST", "/v1/chat/completions/chatcmpl-123", XV_OPENAI_NONE},
        {"POST", "/v1/responses/resp_1/cancel", XV_OPENAI_NONE},
        {"POST", "/v1/responses/input_tokens", XV_OPENAI_NONE},
        {"POST", "/v1/Chat/Completions", XV_OPENAI_NONE},
        {"POST", "/v1/xcompletions", XV_OPENAI_NONE},
        {"POST", "/v1/embeddingsz", XV_OPENAI_NONE},
        {"POST", "/v1/audio/transcriptions", XV_OPENAI_NONE},
        {"POST", "/v1/images/generations", XV_OPENAI_NONE},
        {"POST", "completions", XV_OPENAI_NONE},
        {"POST", "", XV_OPENAI_NONE},
        {"POST", "/?/v1/chat/completions", XV_OPENAI_NONE},
        {"POST", "/v1/files", XV_OPENAI_NONE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = xv_openai_classify(t[i].method, strlen(t[i].method), t[i].target,
                                     strlen(t[i].target));
        if (got != t[i].want)
            fail_msg("%s %s: got %d want %d", t[i].method, t[i].target, got, t[i].want);
    }
    /* Lengths are honoured: no reliance on NUL terminators. */
    const char *s = "/v1/chat/completionsXYZ";
    assert_int_equal(xv_openai_classify("POSTED", 4, s, strlen("/v1/chat/completions")),
                     XV_OPENAI_CHAT);
    assert_int_equal(xv_openai_classify("POST", 4, s, 15), XV_OPENAI_NONE);
    assert_int_equal(xv_openai_classify(NULL, 0, s, 20), XV_OPENAI_NONE);
    assert_int_equal(xv_openai_classify("POST", 4, NULL, 0), XV_OPENAI_NONE);

    assert_string_equal(xv_openai_type_name(XV_OPENAI_CHAT), "chat_completions");
    assert_string_equal(xv_openai_type_name(XV_OPENAI_RESPONSES), "responses");
    assert_string_equal(xv_openai_type_name(XV_OPENAI_EMBEDDINGS), "embeddings");
    assert_string_equal(xv_openai_type_name(XV_OPENAI_COMPLETIONS), "completions");
    assert_string_equal(xv_openai_type_name(0), "unknown");
    assert_string_equal(xv_openai_type_name(99), "unknown");
}

/* ---- requests ---- */

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

static void test_request_chat(void **state)
{
    (void)state;
    struct xv_openai_call *c = xv_openai_call_new(XV_OPENAI_CHAT, NULL);
    assert_non_null(c);
    /* Split anywhere: here, one byte at a time. */
    for (size_t i = 0; i < strlen(chat_req); i++)
        xv_openai_call_request_body(c, chat_req + i, 1);
    xv_openai_call_request_end(c);
    assert_non_null(xv_openai_call_request_json(c));
    assert_string_equal(xv_openai_call_model(c), "gpt-4o");
    assert_int_equal(xv_openai_call_stream(c), 0);
    assert_int_equal(xv_openai_call_message_count(c), 4);
    const struct xv_openai_message *m = xv_openai_call_message(c, 1);
    assert_string_equal(m->role, "user");
    assert_string_equal(m->content, "What is this?\n[image]");
    assert_int_equal(m->content_len, strlen(m->content));
    m = xv_openai_call_message(c, 2);
    assert_string_equal(m->role, "assistant");
    assert_null(m->content);
    assert_int_equal(m->ntool_calls, 1);
    assert_string_equal(m->tool_calls[0].id, "call_1");
    assert_string_equal(m->tool_calls[0].name, "lookup");
    assert_string_equal(m->tool_calls[0].arguments, "{\"q\":1}");
    m = xv_openai_call_message(c, 3);
    assert_string_equal(m->role, "tool");
    assert_string_equal(m->tool_call_id, "call_1");
    assert_string_equal(m->content, "42");
    assert_null(xv_openai_call_message(c, 4));
    assert_int_equal(xv_openai_call_tool_count(c), 2);
    assert_string_equal(xv_openai_call_tool_name(c, 0), "lookup");
    assert_string_equal(xv_openai_call_tool_name(c, 1), "search");
    assert_null(xv_openai_call_tool_name(c, 2));

    cJSON *r = record_of(c, 0);
    assert_string_equal(str_of(r, "request_type"), "chat_completions");
    assert_string_equal(str_of(r, "model"), "gpt-4o");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "stream")));
    assert_int_equal(arr_size(r, "messages"), 4);
    const cJSON *m1 = arr_item(r, "messages", 1);
    assert_string_equal(str_of(m1, "content"), "What is this?\n[image]");
    const cJSON *m2 = arr_item(r, "messages", 2);
    assert_false(has(m2, "content"));
    assert_string_equal(str_of(arr_item(m2, "tool_calls", 0), "arguments"), "{\"q\":1}");
    assert_string_equal(str_of(arr_item(r, "messages", 3), "tool_call_id"), "call_1");
    /* tools as sent */
    assert_int_equal(arr_size(r, "tools"), 2);
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(r, "tools"),
                              cJSON_GetObjectItemCaseSensitive(xv_openai_call_request_json(c),
                                                               "tools"),
                              1));
    /* nothing of a response yet */
    assert_false(has(r, "status_code"));
    assert_false(has(r, "tokens_in"));
    assert_false(has(r, "error"));
    assert_false(has(r, "truncated"));
    cJSON_Delete(r);
    xv_openai_call_free(c);
}

static void test_request_responses_items(void **state)
{
    (void)state;
    const char *req =
        "{\"model\":\"gpt-4.1\",\"instructions\":\"You are terse.\",\"stream\":true,"
        "\"input\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Weather?\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_9\",\"name\":\"weather\","
        "\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_9\",\"output\":\"sunny\"},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"weather\",\"parameters\":{}},"
        "{\"type\":\"web_search\"}]}";
    struct xv_openai_call *c = call_with_request(XV_OPENAI_RESPONSES, NULL, req);
    assert_int_equal(xv_openai_call_stream(c), 1);
    assert_int_equal(xv_openai_call_message_count(c), 4);
    assert_string_equal(xv_openai_call_message(c, 0)->role, "system");
    assert_string_equal(xv_openai_call_message(c, 0)->content, "You are terse.");
    assert_string_equal(xv_openai_call_message(c, 1)->content, "Weather?");
    assert_string_equal(xv_openai_call_message(c, 2)->role, "assistant");
    assert_string_equal(xv_openai_call_message(c, 2)->tool_calls[0].id, "call_9");
    assert_string_equal(xv_openai_call_message(c, 2)->tool_calls[0].name, "weather");
    assert_string_equal(xv_openai_call_message(c, 3)->role, "tool");
    assert_string_equal(xv_openai_call_message(c, 3)->tool_call_id, "call_9");
    assert_string_equal(xv_openai_call_message(c, 3)->content, "sunny");
    assert_int_equal(xv_openai_call_tool_count(c), 2);
    assert_string_equal(xv_openai_call_tool_name(c, 0), "weather");
    assert_string_equal(xv_openai_call_tool_name(c, 1), "web_search");
    xv_openai_call_free(c);

    /* input as a plain string */
    c = call_with_request(XV_OPENAI_RESPONSES, NULL, "{\"model\":\"m\",\"input\":\"hi\"}");
    assert_int_equal(xv_openai_call_message_count(c), 1);
    assert_string_equal(xv_openai_call_message(c, 0)->role, "user");
    assert_string_equal(xv_openai_call_message(c, 0)->content, "hi");
    xv_openai_call_free(c);
}

static void test_request_malformed_and_over_limit(void **state)
{
    (void)state;
    struct xv_openai_call *c =
        call_with_request(XV_OPENAI_CHAT, NULL, "{\"model\":\"gpt-4o\",\"messages\":[");
    assert_null(xv_openai_call_request_json(c));
    assert_null(xv_openai_call_model(c));
    cJSON *r = record_of(c, 0);
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in request body"));
    assert_false(has(r, "messages"));
    assert_string_equal(str_of(r, "request_type"), "chat_completions");
    cJSON_Delete(r);
    xv_openai_call_free(c);

    c = call_with_request(XV_OPENAI_CHAT, NULL, "[1,2]");
    assert_null(xv_openai_call_request_json(c));
    assert_non_null(strstr(xv_openai_call_error(c), "not a JSON object"));
    xv_openai_call_free(c);

    struct xv_openai_limits lim = {.body_max = 64, .capture_max = 100, .capture_content = 1};
    c = xv_openai_call_new(XV_OPENAI_CHAT, &lim);
    assert_non_null(c);
    const char *big = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"";
    xv_openai_call_request_body(c, big, strlen(big));
    for (int i = 0; i < 100; i++)
        xv_openai_call_request_body(c, "xxxxxxxxxx", 10);
    xv_openai_call_request_body(c, "\"}]}", 4);
    xv_openai_call_request_end(c);
    assert_null(xv_openai_call_request_json(c));
    assert_string_equal(xv_openai_call_error(c),
                        "request body over limit (64 bytes); not inspected");
    /* The response is still inspected. */
    const char *body = "{\"id\":\"x\",\"model\":\"m\",\"choices\":[]}";
    xv_openai_call_response_head(c, 200, "application/json", 16, 0);
    xv_openai_call_response_body(c, body, strlen(body), 0);
    xv_openai_call_response_end(c, NULL, 0);
    r = record_of(c, 0);
    assert_string_equal(str_of(r, "response_id"), "x");
    assert_string_equal(str_of(r, "error"), "request body over limit (64 bytes); not inspected");
    cJSON_Delete(r);
    xv_openai_call_free(c);

    /* Exactly at the limit is fine. */
    const char *exact = "{\"model\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz01\"}";
    lim.body_max = strlen(exact);
    c = call_with_request(XV_OPENAI_CHAT, &lim, exact);
    assert_non_null(xv_openai_call_request_json(c));
    assert_null(xv_openai_call_error(c));
    xv_openai_call_free(c);
}

/* ---- non-stream responses ---- */

static const char stream_req_n2[] = "{\"model\":\"gpt-4o\",\"stream\":true,\"n\":2,\"messages\":[]}";

static void test_chat_json(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":1,"
        "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Hello there.\",\"refusal\":null},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":3,"
        "\"total_tokens\":22}}";
    size_t len = strlen(body);
    char *first = NULL;
    for (size_t a = 0; a <= len; a += 7) {
        cJSON *r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json; charset=utf-8",
                       body, a, a + 3, NULL);
        assert_string_equal(str_of(r, "response_id"), "chatcmpl-abc");
        assert_string_equal(str_of(r, "response_model"), "gpt-4o-2024-08-06");
        assert_string_equal(str_of(r, "response_content"), "Hello there.");
        assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "stop");
        assert_int_equal(arr_size(r, "finish_reasons"), 1);
        assert_int_equal((int)num_of(r, "tokens_in"), 19);
        assert_int_equal((int)num_of(r, "tokens_out"), 3);
        assert_int_equal((int)num_of(r, "status_code"), 200);
        assert_false(has(r, "ttft_ms")); /* not a stream */
        assert_false(has(r, "tool_calls"));
        assert_false(has(r, "error"));
        char *p = printed(r);
        if (!first)
            first = p;
        else {
            assert_string_equal(p, first);
            free(p);
        }
        cJSON_Delete(r);
    }
    free(first);
}

static void test_chat_json_tool_calls(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
        "\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", body, 0, 0, NULL);
    assert_false(has(r, "response_content"));
    assert_int_equal(arr_size(r, "tool_calls"), 2);
    const cJSON *t0 = arr_item(r, "tool_calls", 0), *t1 = arr_item(r, "tool_calls", 1);
    assert_string_equal(str_of(t0, "id"), "call_A");
    assert_string_equal(str_of(t0, "name"), "get_weather");
    assert_string_equal(str_of(t0, "arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(str_of(t1, "id"), "call_B");
    assert_string_equal(str_of(t1, "arguments"), "{\"tz\":\"CET\"}");
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "tool_calls");
    cJSON_Delete(r);
}

static void test_responses_json(void **state)
{
    (void)state;
    const char *req = "{\"model\":\"gpt-4.1\",\"input\":\"Weather in Paris?\"}";
    const char *body =
        "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":"
        "\"gpt-4.1-2025-04-14\",\"error\":null,\"output\":["
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
        "{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":["
        "{\"type\":\"output_text\",\"text\":\"Let me check.\",\"annotations\":[]}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_W\",\"name\":\"weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"status\":\"completed\"}],"
        "\"usage\":{\"input_tokens\":36,\"output_tokens\":87,\"total_tokens\":123}}";
    cJSON *r = run(XV_OPENAI_RESPONSES, NULL, req, 200, "application/json", body, 10, 100, NULL);
    assert_string_equal(str_of(r, "request_type"), "responses");
    assert_string_equal(str_of(r, "response_id"), "resp_1");
    assert_string_equal(str_of(r, "response_model"), "gpt-4.1-2025-04-14");
    assert_string_equal(str_of(r, "response_content"), "Let me check.");
    assert_int_equal(arr_size(r, "tool_calls"), 1);
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "id"), "call_W");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "name"), "weather");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "arguments"),
                        "{\"city\":\"Paris\"}");
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "completed");
    assert_int_equal((int)num_of(r, "tokens_in"), 36);
    assert_int_equal((int)num_of(r, "tokens_out"), 87);
    assert_string_equal(str_of(arr_item(r, "messages", 0), "content"), "Weather in Paris?");
    assert_false(has(r, "error"));
    cJSON_Delete(r);
}

static void test_embeddings_json(void **state)
{
    (void)state;
    const char *req =
        "{\"model\":\"text-embedding-3-small\",\"input\":[\"alpha\",\"beta\"]}";
    const char *body =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
        "[0.1,-0.2]},{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.3,0.4]}],"
        "\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}";
    cJSON *r = run(XV_OPENAI_EMBEDDINGS, NULL, req, 200, "application/json", body, 1, 2, NULL);
    assert_string_equal(str_of(r, "request_type"), "embeddings");
    assert_string_equal(str_of(r, "model"), "text-embedding-3-small");
    assert_string_equal(str_of(r, "response_model"), "text-embedding-3-small");
    assert_int_equal((int)num_of(r, "tokens_in"), 4);
    assert_false(has(r, "tokens_out")); /* embeddings send no completion tokens */
    assert_false(has(r, "response_content"));
    assert_false(has(r, "finish_reasons"));
    assert_false(has(r, "response_id"));
    assert_int_equal(arr_size(r, "messages"), 2);
    assert_string_equal(str_of(arr_item(r, "messages", 1), "content"), "beta");
    assert_false(has(r, "error"));
    cJSON_Delete(r);
}

static void test_embeddings_large_and_tricky(void **state)
{
    (void)state;
    /* A big `data` member with strings that contain brackets, quotes and
     * escapes, and keys named like the ones wanted, nested. */
    struct xv_buf b;
    xv_buf_init(&b, 1 << 24);
    assert_int_equal(xv_buf_appendf(&b, " {\"object\":\"list\",\"data\":["), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(xv_buf_appendf(&b, "%s{\"object\":\"embedding\",\"index\":%d,"
                                            "\"model\":\"nested\",\"embedding\":"
                                            "[0.0123,-1e-3,%d.5,0.25,-0.75]}",
                                        i ? "," : "", i, i), 0);
    assert_int_equal(xv_buf_appendf(&b, ",\"s\\\"}]{\",{\"usage\":{\"prompt_tokens\":1}}],"
                                        "\"model\" : \"text-embedding-3-large\" ,"
                                        "\"usage\":{\"prompt_tokens\":8000,\"total_tokens\":8000}}\n"), 0);
    cJSON *r = run(XV_OPENAI_EMBEDDINGS, NULL, "{\"model\":\"e\",\"input\":\"x\"}", 200,
                   "application/json", b.data, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_model"), "text-embedding-3-large");
    assert_int_equal((int)num_of(r, "tokens_in"), 8000);
    assert_false(has(r, "tokens_out"));
    assert_false(has(r, "error"));
    cJSON_Delete(r);
    xv_buf_free(&b);

    /* Not skimmable (truncated): the full parse reports it. */
    r = run(XV_OPENAI_EMBEDDINGS, NULL, "{\"model\":\"e\",\"input\":\"x\"}", 200,
            "application/json", "{\"data\":[[1,2],\"model\":\"m\"", 0, 0, NULL);
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in response body"));
    assert_false(has(r, "response_model"));
    cJSON_Delete(r);

    /* An error body. */
    r = run(XV_OPENAI_EMBEDDINGS, NULL, "{\"model\":\"e\",\"input\":\"x\"}", 400,
            "application/json", "{\"error\":{\"message\":\"too many inputs\",\"type\":"
            "\"invalid_request_error\",\"code\":null}}", 0, 0, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: too many inputs (invalid_request_error)");
    cJSON_Delete(r);
}

static void test_skim(void **state)
{
    (void)state;
    static const char *const keys[] = {"model", "usage", NULL};
    static const struct {
        const char *text;
        const char *want; /* printed result, NULL for "parse it whole" */
    } t[] = {
        {"{}", "{}"},
        {" {\"data\":[1,[2,{\"model\":3}],\"]}\\\"{\"],\"model\":\"m\",\"usage\":{\"a\":[1]}} ",
         "{\"model\":\"m\",\"usage\":{\"a\":[1]}}"},
        {"{\"model\":\"first\",\"model\":\"second\"}", "{\"model\":\"first\"}"},
        /* backslash runs: even ends the string, odd escapes the quote */
        {"{\"d\":\"a\\\\\",\"model\":\"m\"}", "{\"model\":\"m\"}"},
        {"{\"d\":\"\\\\\\\",\\\\\",\"model\":1}", "{\"model\":1}"},
        {"{\"d\":\"\\\",\"model\":1}", NULL},
        {"{\"x\":1,\"model\":null}", "{\"model\":null}"},
        {"{\"model\":\"m\"", NULL},              /* unterminated */
        {"{\"model\":\"m\"} x", NULL},           /* trailing bytes */
        {"{\"model\":tru}", NULL},                /* wanted value malformed */
        {"{\"model\" \"m\"}", NULL},              /* missing colon */
        {"{\"data\":]}", NULL},
        {"{\"data\":}", NULL},
        {"{\"data\":\"\\", NULL},
        {"[1]", NULL},
        {"", NULL},
        {"{\"model\":\"m\",}", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *o = xv_oai_json_skim(t[i].text, strlen(t[i].text), keys);
        if (!t[i].want) {
            if (o)
                fail_msg("case %zu: skimmed %s", i, t[i].text);
            continue;
        }
        if (!o)
            fail_msg("case %zu: not skimmed %s", i, t[i].text);
        char *p = printed(o);
        assert_string_equal(p, t[i].want);
        free(p);
        cJSON_Delete(o);
    }
}

static void test_chat_variants(void **state)
{
    (void)state;
    /* Legacy functions API, refusal, and n = 2 streamed with interleaved choices. */
    const char *body =
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":null,\"function_call\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},"
        "\"finish_reason\":\"function_call\"}]}";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, "{\"model\":\"m\",\"functions\":[{\"name\":\"f\"}]}",
                   200, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "name"), "f");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "id"), "");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "arguments"), "{\"a\":1}");
    assert_string_equal(str_of(arr_item(r, "tools", 0), "name"), "f");
    cJSON_Delete(r);

    body = "{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
           "\"content\":null,\"refusal\":\"I can't help with that.\"},\"finish_reason\":\"stop\"}]}";
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_content"), "I can't help with that.");
    cJSON_Delete(r);

    /* Tool-call deltas without `index`, each call whole in its own chunk. */
    body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"g1\",\"function\":"
           "{\"name\":\"a\",\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n"
           "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"g2\",\"function\":"
           "{\"name\":\"b\",\"arguments\":\"{\"}}]}}]}\n\n"
           "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":"
           "{\"arguments\":\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n";
    r = run(XV_OPENAI_CHAT, NULL, stream_req_n2, 200, "text/event-stream", body, 0, 0, NULL);
    assert_int_equal(arr_size(r, "tool_calls"), 2);
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "id"), "g1");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "arguments"), "{\"x\":1}");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 1), "id"), "g2");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 1), "name"), "b");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 1), "arguments"), "{}");
    cJSON_Delete(r);

    body = "data: {\"id\":\"n2\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B1\"}}]}\n\n"
           "data: {\"id\":\"n2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A1\"}}]}\n\n"
           "data: {\"id\":\"n2\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B2\"},"
           "\"finish_reason\":\"length\"},{\"index\":0,\"delta\":{\"content\":\"A2\"},"
           "\"finish_reason\":\"stop\"}]}\n\n"
           "data: [DONE]\n\n";
    r = run(XV_OPENAI_CHAT, NULL, stream_req_n2, 200, "text/event-stream", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_content"), "A1A2");
    assert_int_equal(arr_size(r, "finish_reasons"), 2);
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "stop");
    assert_string_equal(arr_item(r, "finish_reasons", 1)->valuestring, "length");
    cJSON_Delete(r);
}

static void test_completions_json(void **state)
{
    (void)state;
    const char *req = "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this\",\"n\":2}";
    const char *body =
        "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\","
        "\"choices\":[{\"text\":\" second\",\"index\":1,\"finish_reason\":\"length\"},"
        "{\"text\":\" This is a test.\",\"index\":0,\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}";
    cJSON *r = run(XV_OPENAI_COMPLETIONS, NULL, req, 200, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "request_type"), "completions");
    assert_string_equal(str_of(r, "response_content"), " This is a test."); /* choice 0 */
    assert_int_equal(arr_size(r, "finish_reasons"), 2);
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "stop");
    assert_string_equal(arr_item(r, "finish_reasons", 1)->valuestring, "length");
    assert_int_equal((int)num_of(r, "tokens_out"), 7);
    assert_string_equal(str_of(arr_item(r, "messages", 0), "content"), "Say this");
    cJSON_Delete(r);
}

static void test_upstream_errors(void **state)
{
    (void)state;
    const char *body =
        "{\"error\":{\"message\":\"Rate limit reached for gpt-4o\",\"type\":\"requests\","
        "\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, chat_req, 429, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "error"),
                        "upstream error: Rate limit reached for gpt-4o (requests, rate_limit_exceeded)");
    assert_int_equal((int)num_of(r, "status_code"), 429);
    assert_false(has(r, "tokens_in"));
    cJSON_Delete(r);

    /* A non-JSON error page from a proxy. */
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 502, "text/html", "<html>Bad gateway</html>", 0, 0,
            NULL);
    assert_string_equal(str_of(r, "error"), "upstream HTTP 502 (body is not JSON)");
    cJSON_Delete(r);

    /* Keys echoed by a compatible server are masked. */
    body = "{\"error\":{\"message\":\"Incorrect API key provided: sk-proj-abcdefghijklmnop1234. "
           "Header was Bearer eyJhbGciOiJIUzI1NiJ9.payload\"}}";
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 401, "application/json", body, 0, 0, NULL);
    const char *e = str_of(r, "error");
    assert_non_null(e);
    assert_null(strstr(e, "abcdefghijklmnop1234"));
    assert_null(strstr(e, "eyJhbGciOiJIUzI1NiJ9"));
    assert_non_null(strstr(e, "sk-***"));
    assert_non_null(strstr(e, "Bearer ***"));
    cJSON_Delete(r);
    body = "{\"error\":{\"message\":\"Bearer authentication failed; ask-anything-goes-here\"}}";
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 401, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "error"),
                        "upstream error: Bearer authentication failed; ask-anything-goes-here");
    cJSON_Delete(r);

    /* Responses API error body. */
    r = run(XV_OPENAI_RESPONSES, NULL, "{\"model\":\"m\",\"input\":\"x\"}", 400,
            "application/json",
            "{\"error\":{\"message\":\"Unknown parameter\",\"type\":\"invalid_request_error\","
            "\"code\":null}}",
            0, 0, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: Unknown parameter (invalid_request_error)");
    cJSON_Delete(r);
}

static void test_malformed_response_json(void **state)
{
    (void)state;
    cJSON *r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json",
                   "{\"id\":\"x\",\"choices\":[{\"index\":0,", 0, 0, NULL);
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in response body at byte"));
    assert_false(has(r, "response_id"));
    assert_int_equal((int)num_of(r, "status_code"), 200);
    cJSON_Delete(r);

    /* Cut by the connection: the transport's reason, not a parse error. */
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", "{\"id\":\"x\",", 0, 0,
            "connection closed mid-message");
    assert_string_equal(str_of(r, "error"), "connection closed mid-message");
    cJSON_Delete(r);
}

static void test_response_over_limit(void **state)
{
    (void)state;
    struct xv_openai_limits lim = {.body_max = 4096, .capture_max = 100, .capture_content = 1};
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, &lim, chat_req);
    xv_openai_call_response_head(c, 200, "application/json", 16, 0);
    const char *head = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"";
    xv_openai_call_response_body(c, head, strlen(head), 0);
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 10; i++)
        xv_openai_call_response_body(c, chunk, sizeof chunk, 0);
    xv_openai_call_response_body(c, "\"}}]}", 5, 0);
    xv_openai_call_response_end(c, NULL, 0);
    cJSON *r = record_of(c, 0);
    assert_string_equal(str_of(r, "error"), "response body over limit (4096 bytes); not inspected");
    assert_false(has(r, "response_content"));
    cJSON_Delete(r);
    xv_openai_call_free(c);
}

/* ---- SSE streams ---- */

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

static void check_chat_stream(const cJSON *r, int with_usage)
{
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "stream")));
    assert_string_equal(str_of(r, "response_id"), "chatcmpl-9");
    assert_string_equal(str_of(r, "response_model"), "gpt-4o-2024-08-06");
    assert_string_equal(str_of(r, "response_content"), "Hello, w\xc3\xb6rld \xe2\x82\xac");
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "stop");
    if (with_usage) {
        assert_int_equal((int)num_of(r, "tokens_in"), 12);
        assert_int_equal((int)num_of(r, "tokens_out"), 4);
    } else {
        assert_false(has(r, "tokens_in"));
        assert_false(has(r, "tokens_out"));
    }
    assert_int_equal((int)num_of(r, "status_code"), 200);
    assert_true(num_of(r, "ttft_ms") == 4.0); /* fed at 5 ms, request at 1 ms */
    assert_false(has(r, "error"));
    assert_false(has(r, "tool_calls"));
}

/* Every split point (and a few three-way splits): one identical record. */
static void check_all_splits(int type, const char *req, const char *body, const char *ct,
                             void (*check)(const cJSON *, int), int arg)
{
    size_t len = strlen(body);
    cJSON *ref = run(type, NULL, req, 200, ct, body, len, len, NULL);
    check(ref, arg);
    char *want = printed(ref);
    cJSON_Delete(ref);
    for (size_t a = 0; a <= len; a++) {
        cJSON *r = run(type, NULL, req, 200, ct, body, a, a, NULL);
        char *got = printed(r);
        if (strcmp(got, want) != 0)
            fail_msg("split at %zu:\n got %s\nwant %s", a, got, want);
        free(got);
        cJSON_Delete(r);
    }
    for (size_t a = 0; a <= len; a += 13) {
        cJSON *r = run(type, NULL, req, 200, ct, body, a, a + 1 + a % 7, NULL);
        char *got = printed(r);
        if (strcmp(got, want) != 0)
            fail_msg("split at %zu/%zu:\n got %s\nwant %s", a, a + 1 + a % 7, got, want);
        free(got);
        cJSON_Delete(r);
    }
    /* One byte at a time. */
    struct xv_openai_call *c = call_with_request(type, NULL, req);
    xv_openai_call_response_head(c, 200, ct, strlen(ct), 2 * MS);
    for (size_t i = 0; i < len; i++)
        xv_openai_call_response_body(c, body + i, 1, 5 * MS);
    xv_openai_call_response_end(c, NULL, 9 * MS);
    cJSON *r = record_of(c, 1 * MS);
    char *got = printed(r);
    assert_string_equal(got, want);
    free(got);
    cJSON_Delete(r);
    xv_openai_call_free(c);
    free(want);
}

static void test_chat_stream_content(void **state)
{
    (void)state;
    check_all_splits(XV_OPENAI_CHAT, stream_req, chat_stream_usage, "text/event-stream",
                     check_chat_stream, 1);
}

static const char chat_stream_no_usage[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null", "null")
    CHUNK("{\"content\":\"Hello\"}", "null", "null")
    CHUNK("{\"content\":\", w\xc3\xb6rld \xe2\x82\xac\"}", "null", "null")
    CHUNK("{}", "\"stop\"", "null")
    "data: [DONE]\n\n";

static void test_chat_stream_no_usage(void **state)
{
    (void)state;
    const char *req = "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, req, 200, "text/event-stream; charset=utf-8",
                   chat_stream_no_usage, 100, 200, NULL);
    check_chat_stream(r, 0);
    cJSON_Delete(r);
    /* CRLF line ends are the same stream. */
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    for (const char *p = chat_stream_no_usage; *p; p++)
        assert_int_equal(*p == '\n' ? xv_buf_append(&b, "\r\n", 2) : xv_buf_append(&b, p, 1), 0);
    r = run(XV_OPENAI_CHAT, NULL, req, 200, "text/event-stream", b.data, 57, 58, NULL);
    check_chat_stream(r, 0);
    cJSON_Delete(r);
    xv_buf_free(&b);
}

static void test_stream_sniffed(void **state)
{
    (void)state;
    /* A stream request answered without an event-stream Content-Type. */
    check_all_splits(XV_OPENAI_CHAT, stream_req, chat_stream_usage, "", check_chat_stream, 1);
    check_all_splits(XV_OPENAI_CHAT, stream_req, chat_stream_usage, "text/plain",
                     check_chat_stream, 1);
    /* ... starting with a comment and a BOM. */
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    assert_int_equal(xv_buf_appendf(&b, "\xEF\xBB\xBF: keep-alive\n\n%s", chat_stream_usage), 0);
    cJSON *r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, NULL, b.data, 1, 2, NULL);
    check_chat_stream(r, 1);
    cJSON_Delete(r);
    xv_buf_free(&b);
    /* The decision does not depend on the split, even when the body is
     * over body_max (an event stream is not bounded by it, a body is). */
    struct xv_openai_limits lim = {.body_max = 300, .capture_max = 100, .capture_content = 1};
    size_t len = strlen(chat_stream_usage);
    char *want = NULL;
    for (size_t a = 0; a < 12; a++) {
        r = run(XV_OPENAI_CHAT, &lim, stream_req, 200, NULL, chat_stream_usage, a, len, NULL);
        assert_string_equal(str_of(r, "response_content"), "Hello, w\xc3\xb6rld \xe2\x82\xac");
        char *got = printed(r);
        if (!want)
            want = got;
        else {
            assert_string_equal(got, want);
            free(got);
        }
        cJSON_Delete(r);
    }
    free(want);
    /* A JSON error body for a stream request is still JSON. */
    r = run(XV_OPENAI_CHAT, NULL, stream_req, 400, NULL,
            " {\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\"}}", 1, 2, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: bad (invalid_request_error)");
    cJSON_Delete(r);
    /* Declared JSON is never sniffed; a non-stream request is never sniffed. */
    r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "application/json", chat_stream_usage, 0, 0,
            NULL);
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in response body"));
    cJSON_Delete(r);
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, NULL, chat_stream_usage, 0, 0, NULL);
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in response body"));
    cJSON_Delete(r);
}

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

static void check_tool_stream(const cJSON *r, int unused)
{
    (void)unused;
    assert_false(has(r, "response_content"));
    assert_int_equal(arr_size(r, "tool_calls"), 2);
    const cJSON *t0 = arr_item(r, "tool_calls", 0), *t1 = arr_item(r, "tool_calls", 1);
    assert_string_equal(str_of(t0, "id"), "call_A");
    assert_string_equal(str_of(t0, "name"), "get_weather");
    assert_string_equal(str_of(t0, "arguments"), "{\"city\": \"Paris\"}");
    assert_string_equal(str_of(t1, "id"), "call_B");
    assert_string_equal(str_of(t1, "name"), "get_time");
    assert_string_equal(str_of(t1, "arguments"), "{\"tz\": \"CET\"}");
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "tool_calls");
    assert_false(has(r, "tokens_in"));
    assert_false(has(r, "tokens_out"));
    assert_true(num_of(r, "ttft_ms") == 4.0);
    assert_false(has(r, "error"));
}

static void test_chat_stream_parallel_tools(void **state)
{
    (void)state;
    check_all_splits(XV_OPENAI_CHAT, stream_req, chat_stream_tools, "text/event-stream",
                     check_tool_stream, 0);
    /* The accessor view agrees with the record. */
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, NULL, stream_req);
    xv_openai_call_response_head(c, 200, "text/event-stream", 17, 0);
    xv_openai_call_response_body(c, chat_stream_tools, strlen(chat_stream_tools), 0);
    xv_openai_call_response_end(c, NULL, 0);
    assert_int_equal(xv_openai_call_response_tool_call_count(c), 2);
    struct xv_openai_tool_call tc;
    assert_int_equal(xv_openai_call_response_tool_call(c, 1, &tc), 0);
    assert_string_equal(tc.name, "get_time");
    assert_int_equal(tc.arguments_len, strlen("{\"tz\": \"CET\"}"));
    assert_int_equal(xv_openai_call_response_tool_call(c, 2, &tc), XV_E_LIMIT);
    xv_openai_call_free(c);
}

#define REV(type, rest) "event: " type "\ndata: {\"type\":\"" type "\"," rest "}\n\n"

static const char responses_stream[] =
    REV("response.created", "\"sequence_number\":0,\"response\":{\"id\":\"resp_S\",\"object\":"
        "\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],"
        "\"usage\":null}")
    REV("response.in_progress", "\"response\":{\"id\":\"resp_S\",\"status\":\"in_progress\"}")
    REV("response.output_item.added", "\"output_index\":0,\"item\":{\"type\":\"message\","
        "\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}")
    REV("response.content_part.added", "\"item_id\":\"msg_1\",\"output_index\":0,"
        "\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\"}")
    REV("response.output_text.delta", "\"item_id\":\"msg_1\",\"output_index\":0,"
        "\"content_index\":0,\"delta\":\"Checking\"")
    REV("response.output_text.delta", "\"item_id\":\"msg_1\",\"output_index\":0,"
        "\"content_index\":0,\"delta\":\" now.\"")
    REV("response.output_text.done", "\"item_id\":\"msg_1\",\"output_index\":0,"
        "\"content_index\":0,\"text\":\"Checking now.\"")
    REV("response.output_item.added", "\"output_index\":1,\"item\":{\"type\":\"function_call\","
        "\"id\":\"fc_1\",\"call_id\":\"call_W\",\"name\":\"weather\",\"arguments\":\"\"}")
    REV("response.function_call_arguments.delta", "\"item_id\":\"fc_1\",\"output_index\":1,"
        "\"delta\":\"{\\\"city\\\":\"")
    REV("response.function_call_arguments.delta", "\"item_id\":\"fc_1\",\"output_index\":1,"
        "\"delta\":\"\\\"Paris\\\"}\"")
    REV("response.function_call_arguments.done", "\"item_id\":\"fc_1\",\"output_index\":1,"
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"")
    REV("response.output_item.done", "\"output_index\":1,\"item\":{\"type\":\"function_call\","
        "\"id\":\"fc_1\",\"call_id\":\"call_W\",\"name\":\"weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\",\"status\":\"completed\"}")
    REV("response.completed", "\"response\":{\"id\":\"resp_S\",\"status\":\"completed\","
        "\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"type\":\"message\",\"id\":\"msg_1\","
        "\"content\":[{\"type\":\"output_text\",\"text\":\"Checking now.\"}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_W\",\"name\":\"weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}],"
        "\"usage\":{\"input_tokens\":20,\"output_tokens\":11,\"total_tokens\":31}}");

static void check_responses_stream(const cJSON *r, int unused)
{
    (void)unused;
    assert_string_equal(str_of(r, "request_type"), "responses");
    assert_string_equal(str_of(r, "response_id"), "resp_S");
    assert_string_equal(str_of(r, "response_model"), "gpt-4.1-2025-04-14");
    assert_string_equal(str_of(r, "response_content"), "Checking now.");
    assert_int_equal(arr_size(r, "tool_calls"), 1);
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "id"), "call_W");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "name"), "weather");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "arguments"), "{\"city\":\"Paris\"}");
    assert_int_equal(arr_size(r, "finish_reasons"), 1);
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "completed");
    assert_int_equal((int)num_of(r, "tokens_in"), 20);
    assert_int_equal((int)num_of(r, "tokens_out"), 11);
    assert_true(num_of(r, "ttft_ms") == 4.0);
    assert_false(has(r, "error"));
}

static void test_responses_stream(void **state)
{
    (void)state;
    check_all_splits(XV_OPENAI_RESPONSES, "{\"model\":\"gpt-4.1\",\"stream\":true,\"input\":\"x\"}",
                     responses_stream, "text/event-stream", check_responses_stream, 0);
}

static void test_responses_stream_failed(void **state)
{
    (void)state;
    const char *body =
        REV("response.created", "\"response\":{\"id\":\"resp_F\",\"status\":\"in_progress\","
            "\"model\":\"o3\"}")
        REV("response.failed", "\"response\":{\"id\":\"resp_F\",\"status\":\"failed\","
            "\"model\":\"o3\",\"error\":{\"code\":\"server_error\",\"message\":\"The model "
            "failed\"},\"output\":[],\"usage\":null}");
    cJSON *r = run(XV_OPENAI_RESPONSES, NULL, "{\"model\":\"o3\",\"input\":\"x\",\"stream\":true}",
                   200, "text/event-stream", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: The model failed (server_error)");
    assert_string_equal(arr_item(r, "finish_reasons", 0)->valuestring, "failed");
    assert_false(has(r, "tokens_in"));
    assert_false(has(r, "ttft_ms")); /* no token ever came */
    cJSON_Delete(r);

    /* The `error` event. */
    r = run(XV_OPENAI_RESPONSES, NULL, "{\"model\":\"o3\",\"input\":\"x\",\"stream\":true}", 200,
            "text/event-stream",
            "event: error\ndata: {\"type\":\"error\",\"code\":\"ERR_SOMETHING\",\"message\":"
            "\"Something went wrong\",\"param\":null}\n\n",
            5, 9, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: Something went wrong (ERR_SOMETHING)");
    cJSON_Delete(r);
}

static void test_stream_ttft_timing(void **state)
{
    (void)state;
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, NULL, stream_req);
    const uint64_t start = 1000000007ull;
    xv_openai_call_response_head(c, 200, "text/event-stream", 17, start + 50 * MS);
    const char *ev1 = CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null", "null");
    const char *ev2 = CHUNK("{\"content\":\"Hi\"}", "null", "null");
    xv_openai_call_response_body(c, ev1, strlen(ev1), start + 60 * MS);
    /* The second event completes only with its last byte. */
    xv_openai_call_response_body(c, ev2, strlen(ev2) - 1, start + 70 * MS);
    xv_openai_call_response_body(c, ev2 + strlen(ev2) - 1, 1, start + 123456789ull);
    xv_openai_call_response_end(c, NULL, start + 200 * MS);
    cJSON *r = record_of(c, start);
    assert_true(num_of(r, "ttft_ms") == 123.457); /* µs precision, rounded */
    cJSON_Delete(r);
    xv_openai_call_free(c);
}

static void test_stream_errors(void **state)
{
    (void)state;
    /* Cut mid-stream: the partial content is kept, the record says why. */
    const char *body = CHUNK("{\"content\":\"Hel\"}", "null", "null") "data: {\"id\":\"chatc";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "text/event-stream", body, 3, 40,
                   "connection closed mid-stream");
    assert_string_equal(str_of(r, "response_content"), "Hel");
    assert_string_equal(str_of(r, "error"), "connection closed mid-stream");
    assert_false(has(r, "tokens_in"));
    cJSON_Delete(r);

    /* A malformed event is noted; later events still count. */
    body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n"
           "data: {not json}\n\n"
           "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"},\"finish_reason\":"
           "\"stop\"}]}\n\n"
           "data: [DONE]\n\n";
    r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "text/event-stream", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_content"), "AB");
    assert_non_null(strstr(str_of(r, "error"), "malformed JSON in SSE event 2"));
    cJSON_Delete(r);

    /* An error object in the stream. */
    body = CHUNK("{\"content\":\"x\"}", "null", "null")
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
    r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "text/event-stream", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "error"), "upstream error: overloaded (server_error)");
    cJSON_Delete(r);

    /* Events after [DONE] are ignored; comments and pings too. */
    body = ": ping\n\n" CHUNK("{\"content\":\"ok\"}", "\"stop\"", "null") "data: [DONE]\n\n"
        CHUNK("{\"content\":\"late\"}", "null", "null");
    r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "text/event-stream", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_content"), "ok");
    assert_false(has(r, "error"));
    cJSON_Delete(r);
}

/* ---- capture limits ---- */

static void test_truncation_utf8(void **state)
{
    (void)state;
    /* "€" is 3 bytes: a 10-byte budget over "ab€€€" must stop after 8 bytes. */
    struct xv_openai_limits lim = {.body_max = 1 << 20, .capture_max = 10, .capture_content = 1};
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"ab\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"}]}";
    const char *body = "{\"id\":\"r\",\"choices\":[{\"index\":0,\"message\":{\"content\":"
                       "\"xy\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"},\"finish_reason\":\"stop\"}]}";
    /* Budget 10 minus the message overhead would leave no text; use a
     * budget where the content cut is visible in both fields. */
    lim.capture_max = 50;
    cJSON *r = run(XV_OPENAI_CHAT, &lim, req, 200, "application/json", body, 0, 0, NULL);
    assert_string_equal(str_of(r, "response_content"), "xy\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    assert_false(has(r, "truncated"));
    cJSON_Delete(r);

    lim.capture_max = 10;
    r = run(XV_OPENAI_CHAT, &lim, req, 200, "application/json", body, 0, 0, NULL);
    const char *rc = str_of(r, "response_content");
    assert_string_equal(rc, "xy\xe2\x82\xac\xe2\x82\xac");
    assert_true(valid_utf8(rc));
    assert_true(truncated_has(r, "response_content"));
    assert_true(truncated_has(r, "messages"));
    const char *mc = str_of(arr_item(r, "messages", 0), "content");
    assert_string_equal(mc, "ab\xe2\x82\xac\xe2\x82\xac"); /* 8 of 10 bytes: "€" does not fit */
    assert_true(valid_utf8(mc));
    cJSON_Delete(r);

    for (size_t max = 1; max <= 12; max++) {
        lim.capture_max = max;
        r = run(XV_OPENAI_CHAT, &lim, req, 200, "application/json", body, 0, 0, NULL);
        rc = str_of(r, "response_content");
        assert_true(strlen(rc) <= max);
        assert_true(strlen(rc) + 2 >= max || max < 2); /* at most 2 bytes lost to the boundary */
        assert_true(valid_utf8(rc));
        assert_int_equal(truncated_has(r, "response_content"), max < 11);
        cJSON_Delete(r);
    }

    /* Invalid UTF-8 from the upstream never reaches a record as such. */
    lim.capture_max = 100;
    body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\xff\xc3(b\"}}]}\n\n";
    r = run(XV_OPENAI_CHAT, &lim, stream_req, 200, "text/event-stream", body, 0, 0, NULL);
    rc = str_of(r, "response_content");
    assert_true(valid_utf8(rc));
    assert_string_equal(rc, "a\xef\xbf\xbd\xef\xbf\xbd(b");
    cJSON_Delete(r);
}

static void test_record_always_valid_utf8(void **state)
{
    (void)state;
    /* Invalid bytes in identifiers, roles, tool definitions and keys. */
    const char *req = "{\"model\":\"gpt\xff\",\"messages\":[{\"role\":\"us\xc0r\","
                      "\"content\":\"ok\"}],\"tools\":[{\"type\":\"function\",\"function\":"
                      "{\"name\":\"t\xed\xa0\x80\",\"k\xfe\":1}}]}";
    const char *body = "{\"id\":\"i\xf8\",\"model\":\"m\x80\",\"choices\":[{\"index\":0,"
                       "\"message\":{\"content\":\"c\",\"tool_calls\":[{\"id\":\"x\xff\","
                       "\"function\":{\"name\":\"n\xff\",\"arguments\":\"{}\"}}]},"
                       "\"finish_reason\":\"st\xffop\"}]}";
    cJSON *r = run(XV_OPENAI_CHAT, NULL, req, 200, "application/json", body, 0, 0, NULL);
    char *p = printed(r);
    assert_true(valid_utf8(p));
    free(p);
    assert_string_equal(str_of(r, "model"), "gpt\xef\xbf\xbd");
    assert_string_equal(str_of(r, "response_model"), "m\xef\xbf\xbd");
    cJSON_Delete(r);

    /* Identifiers are capped. */
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    assert_int_equal(xv_buf_appendf(&b, "{\"model\":\""), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(xv_buf_append(&b, "abcdefghij", 10), 0);
    assert_int_equal(xv_buf_appendf(&b, "\"}"), 0);
    r = run(XV_OPENAI_CHAT, NULL, b.data, 200, "application/json", "{}", 0, 0, NULL);
    assert_int_equal(strlen(str_of(r, "model")), 512);
    cJSON_Delete(r);
    xv_buf_free(&b);
}

static void test_truncation_messages_newest_first(void **state)
{
    (void)state;
    struct xv_buf req;
    xv_buf_init(&req, 1 << 20);
    assert_int_equal(xv_buf_appendf(&req, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\","
                                          "\"content\":\""), 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(xv_buf_append(&req, "0123456789", 10), 0);
    assert_int_equal(xv_buf_appendf(&req, "\"},{\"role\":\"user\",\"content\":\"the question\"}],"
                                          "\"tools\":["), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(xv_buf_appendf(&req, "%s{\"type\":\"function\",\"function\":{\"name\":"
                                              "\"tool%d\",\"description\":\"%0100d\"}}",
                                        i ? "," : "", i, 0), 0);
    assert_int_equal(xv_buf_append(&req, "]}", 2), 0);
    struct xv_openai_limits lim = {.body_max = 1 << 20, .capture_max = 1000, .capture_content = 1};
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, &lim, req.data);
    xv_buf_free(&req);
    assert_int_equal(xv_openai_call_tool_count(c), 40);
    cJSON *r = record_of(c, 0);
    assert_int_equal(arr_size(r, "messages"), 2);
    /* The newest message is whole; the long system prompt was cut. */
    assert_string_equal(str_of(arr_item(r, "messages", 1), "content"), "the question");
    size_t sys = strlen(str_of(arr_item(r, "messages", 0), "content"));
    assert_int_equal(sys, 1000 - strlen("the question"));
    assert_true(truncated_has(r, "messages"));
    /* tools over the budget: names only, as many as fit. */
    assert_true(truncated_has(r, "tools"));
    int nt = arr_size(r, "tools");
    assert_true(nt > 0 && nt < 40);
    assert_string_equal(str_of(arr_item(r, "tools", 0), "name"), "tool0");
    assert_false(has(arr_item(r, "tools", 0), "function"));
    char *p = printed(cJSON_GetObjectItemCaseSensitive(r, "tools"));
    assert_true(strlen(p) <= 1000);
    free(p);
    p = printed(cJSON_GetObjectItemCaseSensitive(r, "messages"));
    assert_true(strlen(p) <= 2000);
    free(p);
    cJSON_Delete(r);
    xv_openai_call_free(c);

    /* Default budget: one long message keeps exactly 16384 bytes. */
    xv_buf_init(&req, 1 << 20);
    assert_int_equal(xv_buf_appendf(&req, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\""), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(xv_buf_append(&req, "0123456789", 10), 0);
    assert_int_equal(xv_buf_append(&req, "\"}]}", 4), 0);
    c = call_with_request(XV_OPENAI_CHAT, NULL, req.data);
    xv_buf_free(&req);
    r = record_of(c, 0);
    assert_int_equal(strlen(str_of(arr_item(r, "messages", 0), "content")), 16384);
    assert_true(truncated_has(r, "messages"));
    cJSON_Delete(r);
    xv_openai_call_free(c);

    /* Thousands of short messages: the newest are kept, in order. */
    xv_buf_init(&req, 1 << 20);
    assert_int_equal(xv_buf_appendf(&req, "{\"model\":\"m\",\"messages\":["), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(xv_buf_appendf(&req, "%s{\"role\":\"user\",\"content\":\"m%d\"}",
                                        i ? "," : "", i), 0);
    assert_int_equal(xv_buf_append(&req, "]}", 2), 0);
    c = call_with_request(XV_OPENAI_CHAT, NULL, req.data);
    xv_buf_free(&req);
    assert_int_equal(xv_openai_call_message_count(c), 3000);
    r = record_of(c, 0);
    int kept = arr_size(r, "messages");
    assert_true(kept > 100 && kept < 3000);
    assert_string_equal(str_of(arr_item(r, "messages", kept - 1), "content"), "m2999");
    assert_string_equal(str_of(arr_item(r, "messages", kept - 2), "content"), "m2998");
    assert_true(truncated_has(r, "messages"));
    p = printed(cJSON_GetObjectItemCaseSensitive(r, "messages"));
    assert_true(strlen(p) <= 2 * 16384);
    free(p);
    cJSON_Delete(r);
    xv_openai_call_free(c);
}

static void test_stream_bounds(void **state)
{
    (void)state;
    /* Assembled text over body_max: kept up to it, marked truncated. */
    struct xv_openai_limits lim = {.body_max = 200, .capture_max = 1000, .capture_content = 1};
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, &lim, "{\"model\":\"m\"}");
    xv_openai_call_response_head(c, 200, "text/event-stream", 17, 0);
    const char *ev = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                     "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}}]}\n\n";
    for (int i = 0; i < 30; i++)
        xv_openai_call_response_body(c, ev, strlen(ev), 0);
    xv_openai_call_response_end(c, NULL, 0);
    size_t len = 0;
    const char *content = xv_openai_call_response_content(c, &len);
    assert_non_null(content);
    assert_true(len <= 200 && len >= 198);
    assert_true(valid_utf8(content));
    cJSON *r = record_of(c, 0);
    assert_true(truncated_has(r, "response_content"));
    assert_false(has(r, "error"));
    cJSON_Delete(r);
    xv_openai_call_free(c);

    /* Hostile indexes: bounded lists, no allocation sized by an index. */
    c = call_with_request(XV_OPENAI_CHAT, NULL, "{\"model\":\"m\"}");
    xv_openai_call_response_head(c, 200, "text/event-stream", 17, 0);
    char buf[256];
    for (int i = 0; i < 400; i++) {
        snprintf(buf, sizeof buf,
                 "data: {\"choices\":[{\"index\":%d,\"delta\":{\"content\":\"x\",\"tool_calls\":"
                 "[{\"index\":%d,\"id\":\"c%d\",\"function\":{\"name\":\"f\"}}]}}]}\n\n",
                 i * 7919 % 1000000, 2000000000 - i, i);
        xv_openai_call_response_body(c, buf, strlen(buf), 0);
    }
    xv_openai_call_response_end(c, NULL, 0);
    assert_true(xv_openai_call_response_tool_call_count(c) <= 256);
    r = record_of(c, 0);
    assert_true(arr_size(r, "tool_calls") <= 256);
    assert_string_equal(str_of(r, "response_content"), "x"); /* choice 0 */
    cJSON_Delete(r);
    xv_openai_call_free(c);
}

static void test_capture_off(void **state)
{
    (void)state;
    struct xv_openai_limits lim = {.body_max = 1 << 20, .capture_max = 16384, .capture_content = 0};
    cJSON *r = run(XV_OPENAI_CHAT, &lim, chat_req, 200, "text/event-stream", chat_stream_tools, 0,
                   0, NULL);
    assert_false(has(r, "messages"));
    assert_false(has(r, "response_content"));
    assert_int_equal(arr_size(r, "tool_calls"), 2);
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "name"), "get_weather");
    assert_string_equal(str_of(arr_item(r, "tool_calls", 0), "id"), "call_A");
    assert_false(has(arr_item(r, "tool_calls", 0), "arguments"));
    assert_int_equal(arr_size(r, "tools"), 2); /* definitions are not content */
    assert_string_equal(str_of(r, "model"), "gpt-4o");
    char *p = printed(r);
    assert_null(strstr(p, "Paris"));
    assert_null(strstr(p, "Be brief"));
    assert_null(strstr(p, "What is this"));
    free(p);
    cJSON_Delete(r);

    r = run(XV_OPENAI_CHAT, &lim, stream_req, 200, "text/event-stream", chat_stream_usage, 0, 0,
            NULL);
    assert_false(has(r, "response_content"));
    assert_int_equal((int)num_of(r, "tokens_out"), 4);
    p = printed(r);
    assert_null(strstr(p, "Hello"));
    free(p);
    cJSON_Delete(r);
}

static void test_record_replaces_fields(void **state)
{
    (void)state;
    /* Filling twice (or over fields another layer set) leaves one of each. */
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, NULL, stream_req);
    xv_openai_call_response_head(c, 200, "text/event-stream", 17, 0);
    xv_openai_call_response_body(c, chat_stream_usage, strlen(chat_stream_usage), 5 * MS);
    xv_openai_call_response_end(c, NULL, 6 * MS);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "trace_id", "t1");
    cJSON_AddStringToObject(r, "model", "stale");
    assert_int_equal(xv_openai_call_fill_record(c, r, 1 * MS), 0);
    assert_int_equal(xv_openai_call_fill_record(c, r, 1 * MS), 0);
    int nmodel = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, r) {
        if (strcmp(e->string, "model") == 0)
            nmodel++;
    }
    assert_int_equal(nmodel, 1);
    assert_string_equal(str_of(r, "model"), "gpt-4o");
    assert_string_equal(str_of(r, "trace_id"), "t1");
    size_t len;
    assert_string_equal(xv_openai_call_response_content(c, &len), "Hello, w\xc3\xb6rld \xe2\x82\xac");
    assert_int_equal(xv_openai_call_status(c), 200);
    assert_string_equal(xv_openai_call_response_id(c), "chatcmpl-9");
    assert_int_equal(xv_openai_call_type(c), XV_OPENAI_CHAT);
    assert_null(xv_openai_call_response_id(NULL));
    cJSON_Delete(r);
    xv_openai_call_free(c);

    /* set_error: first one wins. */
    c = call_with_request(XV_OPENAI_CHAT, NULL, stream_req);
    xv_openai_call_set_error(c, "malformed HTTP response");
    xv_openai_call_set_error(c, "second");
    xv_openai_call_response_end(c, "connection closed", 0);
    assert_string_equal(xv_openai_call_error(c), "malformed HTTP response");
    xv_openai_call_free(c);
    xv_openai_call_free(NULL);
}

/* Provider ids from the host (Xenovia's ids, OTel names), gateways, Azure deployments. */
static void test_providers(void **state)
{
    (void)state;
    static const struct {
        const char *host, *path, *id, *otel, *gateway;
    } cases[] = {
        { "api.openai.com", "/v1/chat/completions", "openai", "openai", NULL },
        { "API.OPENAI.COM.", NULL, "openai", "openai", NULL },
        { "myres.openai.azure.com", "/openai/deployments/gpt4o/chat/completions", "azure",
          "azure.ai.openai", NULL },
        { "api.anthropic.com", NULL, "anthropic", "anthropic", NULL },
        { "generativelanguage.googleapis.com", "/v1beta/openai/chat/completions", "gemini",
          "gcp.gemini", NULL },
        { "api.groq.com", "/openai/v1/chat/completions", "groq", "groq", NULL },
        { "bedrock-runtime.us-east-1.amazonaws.com", NULL, "bedrock", "aws.bedrock", NULL },
        { "s3.amazonaws.com", NULL, "openai_compatible", "openai_compatible", NULL },
        { "api.mistral.ai", NULL, "mistral", "mistral_ai", NULL },
        { "api.x.ai", NULL, "xai", "x_ai", NULL },
        { "openrouter.ai", "/api/v1/chat/completions", "openrouter", "openrouter", NULL },
        { "api.deepseek.com", NULL, "deepseek", "deepseek", NULL },
        { "llm.internal.example", NULL, "openai_compatible", "openai_compatible", NULL },
        { "notapi.openai.com.evil.example", NULL, "openai_compatible", "openai_compatible", NULL },
        { "runtime.xenovia.io", "/a/p-123/openai/v1/chat/completions", "openai", "openai", "xenovia" },
        { "runtime.xenovia.io", "/a/p-123/anthropic/v1/chat/completions", "anthropic", "anthropic",
          "xenovia" },
        { "runtime.xenovia.io", "/v1/chat/completions", "openai_compatible", "openai_compatible",
          "xenovia" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xv_openai_provider p;
        xv_openai_provider_for(cases[i].host, cases[i].path,
                               cases[i].path ? strlen(cases[i].path) : 0, &p);
        assert_string_equal(p.id, cases[i].id);
        assert_string_equal(p.otel_name, cases[i].otel);
        if (cases[i].gateway)
            assert_string_equal(p.gateway, cases[i].gateway);
        else
            assert_null(p.gateway);
        assert_string_equal(xv_openai_provider_otel_name(cases[i].id), cases[i].otel);
    }
    char dep[64];
    const char *t = "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-06-01";
    assert_int_equal(xv_openai_azure_deployment(t, strlen(t), dep, sizeof dep), 11);
    assert_string_equal(dep, "gpt-4o-prod");
    t = "/v1/chat/completions";
    assert_int_equal(xv_openai_azure_deployment(t, strlen(t), dep, sizeof dep), 0);
    assert_string_equal(dep, "");
    /* the model falls back to the deployment only when the body names none */
    struct xv_openai_limits lim = { 0 };
    struct xv_openai_call *c = xv_openai_call_new(XV_OPENAI_CHAT, &lim);
    xv_openai_call_set_model_hint(c, "gpt-4o-prod");
    const char *body = "{\"messages\":[]}";
    xv_openai_call_request_body(c, body, strlen(body));
    xv_openai_call_request_end(c);
    assert_string_equal(xv_openai_call_model(c), "gpt-4o-prod");
    xv_openai_call_free(c);
    c = xv_openai_call_new(XV_OPENAI_CHAT, &lim);
    xv_openai_call_set_model_hint(c, "gpt-4o-prod");
    body = "{\"model\":\"gpt-4o\",\"messages\":[]}";
    xv_openai_call_request_body(c, body, strlen(body));
    xv_openai_call_request_end(c);
    assert_string_equal(xv_openai_call_model(c), "gpt-4o");
    xv_openai_call_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_request_chat),
        cmocka_unit_test(test_request_responses_items),
        cmocka_unit_test(test_request_malformed_and_over_limit),
        cmocka_unit_test(test_chat_json),
        cmocka_unit_test(test_chat_json_tool_calls),
        cmocka_unit_test(test_responses_json),
        cmocka_unit_test(test_embeddings_json),
        cmocka_unit_test(test_embeddings_large_and_tricky),
        cmocka_unit_test(test_skim),
        cmocka_unit_test(test_chat_variants),
        cmocka_unit_test(test_completions_json),
        cmocka_unit_test(test_upstream_errors),
        cmocka_unit_test(test_malformed_response_json),
        cmocka_unit_test(test_response_over_limit),
        cmocka_unit_test(test_chat_stream_content),
        cmocka_unit_test(test_chat_stream_no_usage),
        cmocka_unit_test(test_stream_sniffed),
        cmocka_unit_test(test_chat_stream_parallel_tools),
        cmocka_unit_test(test_responses_stream),
        cmocka_unit_test(test_responses_stream_failed),
        cmocka_unit_test(test_stream_ttft_timing),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_truncation_utf8),
        cmocka_unit_test(test_record_always_valid_utf8),
        cmocka_unit_test(test_truncation_messages_newest_first),
        cmocka_unit_test(test_stream_bounds),
        cmocka_unit_test(test_capture_off),
        cmocka_unit_test(test_record_replaces_fields),
        cmocka_unit_test(test_providers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
