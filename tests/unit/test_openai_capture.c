/*
 * test_openai_capture.c — unit tests for openai/'s capture limits: cuts on
 * UTF-8 boundaries, records always valid UTF-8, newest messages kept first,
 * stream bounds, capture off, and fields replaced in a record.
 */
#include "openai_harness.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation_utf8),
        cmocka_unit_test(test_record_always_valid_utf8),
        cmocka_unit_test(test_truncation_messages_newest_first),
        cmocka_unit_test(test_stream_bounds),
        cmocka_unit_test(test_capture_off),
        cmocka_unit_test(test_record_replaces_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
