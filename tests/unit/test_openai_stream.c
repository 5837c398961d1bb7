/*
 * test_openai_stream.c — unit tests for openai/'s SSE extraction: stream
 * reassembly for chat (content, parallel tool calls) and the Responses API,
 * independent of how the bytes are split; usage present vs absent; sniffed
 * streams; time to first chunk; cut and failed streams.
 */
#include "openai_harness.h"

/* ---- SSE streams ---- */

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


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_stream_content),
        cmocka_unit_test(test_chat_stream_no_usage),
        cmocka_unit_test(test_stream_sniffed),
        cmocka_unit_test(test_chat_stream_parallel_tools),
        cmocka_unit_test(test_responses_stream),
        cmocka_unit_test(test_responses_stream_failed),
        cmocka_unit_test(test_stream_ttft_timing),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
