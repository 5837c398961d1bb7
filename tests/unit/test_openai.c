/*
 * test_openai.c — unit tests for openai/: classification, request
 * normalisation, non-stream response extraction for the four APIs, usage
 * present vs absent, errors (malformed JSON, over-limit bodies, upstream
 * errors) and providers. SSE streams: test_openai_stream.c; capture limits:
 * test_openai_capture.c.
 *
 * Every test asserts on the trace-record fields the call produces, the
 * contract the session and exporter layers rely on.
 */
#include <pthread.h>

#include "openai_harness.h"

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

/* The normalised history points into the parsed request; what it makes
 * itself (joined content parts, arguments sent as objects, more texts than
 * its first list holds) lives as long as the call, and free gives it all
 * back (valgrind and ASan check that). */
static void test_request_made_texts(void **state)
{
    (void)state;
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof req,
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"b\":[1,2],\"a\":\"x\"}}}],"
        "\"function_call\":{\"name\":\"g\",\"arguments\":7}}");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(req + n, sizeof req - n,
                              ",{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"p%d\"},"
                              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]}", i);
    snprintf(req + n, sizeof req - n, "]}");
    struct xv_openai_call *c = call_with_request(XV_OPENAI_CHAT, NULL, req);
    assert_int_equal(xv_openai_call_message_count(c), 13);
    const struct xv_openai_message *m = xv_openai_call_message(c, 0);
    assert_string_equal(m->role, "assistant");
    assert_null(m->content);
    assert_int_equal(m->ntool_calls, 2);
    assert_string_equal(m->tool_calls[0].arguments, "{\"b\":[1,2],\"a\":\"x\"}");
    assert_int_equal(m->tool_calls[0].arguments_len, strlen(m->tool_calls[0].arguments));
    assert_string_equal(m->tool_calls[1].id, "");
    assert_string_equal(m->tool_calls[1].name, "g");
    assert_string_equal(m->tool_calls[1].arguments, "7");
    for (size_t i = 1; i < 13; i++) {
        char want[32];
        snprintf(want, sizeof want, "p%zu\n[image]", i - 1);
        assert_string_equal(xv_openai_call_message(c, i)->content, want);
        assert_int_equal(xv_openai_call_message(c, i)->content_len, strlen(want));
    }
    xv_openai_call_free(c);

    /* a Responses custom tool call whose input is an object */
    c = call_with_request(XV_OPENAI_RESPONSES, NULL,
                          "{\"model\":\"m\",\"input\":[{\"type\":\"custom_tool_call\","
                          "\"call_id\":\"k\",\"name\":\"t\",\"input\":{\"q\":true}},"
                          "{\"type\":\"function_call_output\",\"call_id\":\"k\","
                          "\"output\":[{\"type\":\"input_text\",\"text\":\"ok\"}]}]}");
    assert_int_equal(xv_openai_call_message_count(c), 2);
    assert_string_equal(xv_openai_call_message(c, 0)->tool_calls[0].arguments, "{\"q\":true}");
    assert_string_equal(xv_openai_call_message(c, 1)->content, "ok");
    assert_string_equal(xv_openai_call_message(c, 1)->tool_call_id, "k");
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

/* A thread's freed call is taken by its next call (call.c): the struct and
 * its body buffers, from the thread's second call on. What calls leave behind (a stream with usage, an error
 * page, a body past the kept size, one over the limit) must not show in the
 * next call's record: it equals the record of the same call made on a
 * thread of its own, whose call is new. */
static const char reuse_body[] =
    "{\"id\":\"chatcmpl-r\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Fine.\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}";

static void *fresh_record(void *arg)
{
    cJSON *r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", reuse_body, 9, 30,
                   NULL); /* the thread's first call: new */
    *(char **)arg = printed(r);
    cJSON_Delete(r);
    return NULL;
}

static void test_call_reused(void **state)
{
    (void)state;
    /* a thread's first call is freed; from the second on the last is kept */
    xv_openai_call_free(xv_openai_call_new(XV_OPENAI_CHAT, NULL));
    struct xv_openai_call *c1 = xv_openai_call_new(XV_OPENAI_CHAT, NULL);
    assert_non_null(c1);
    xv_openai_call_free(c1);
    struct xv_openai_call *c2 = xv_openai_call_new(XV_OPENAI_RESPONSES, NULL);
    assert_ptr_equal(c2, c1); /* taken again, not allocated */
    xv_openai_call_free(c2);

    cJSON *r = run(XV_OPENAI_CHAT, NULL, stream_req, 200, "text/event-stream", chat_stream_usage,
                   7, 90, NULL);
    assert_int_equal((int)num_of(r, "tokens_in"), 12);
    cJSON_Delete(r);
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 502, "text/html", "<html>Bad gateway</html>", 0, 0,
            NULL);
    cJSON_Delete(r);
    size_t big = (size_t)200 << 10; /* past the 64 KiB a body keeps */
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    int n = snprintf(huge, 64, "{\"id\":\"x\",\"model\":\"m\",\"pad\":\"");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\"}", 3);
    r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", huge, 100, 70000, NULL);
    cJSON_Delete(r);
    struct xv_openai_limits small = { .body_max = 64, .capture_content = 1 };
    r = run(XV_OPENAI_CHAT, &small, chat_req, 200, "application/json", huge, 0, 0, NULL);
    assert_true(has(r, "error"));
    cJSON_Delete(r);
    free(huge);

    r = run(XV_OPENAI_CHAT, NULL, chat_req, 200, "application/json", reuse_body, 9, 30, NULL);
    char *reused = printed(r);
    cJSON_Delete(r);
    char *fresh = NULL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_record, &fresh), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(fresh);
    assert_string_equal(reused, fresh);
    assert_non_null(strstr(reused, "\"response_content\":\"Fine.\""));
    free(reused);
    free(fresh);
}

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
        /* longer than the thread's last-host memory (64 bytes): looked up every time */
        { "a-very-long-resource-name-for-this-test-only-0123456789.openai.azure.com", NULL,
          "azure", "azure.ai.openai", NULL },
        { "a-very-long-resource-name-for-this-test-only-0123456789.example.com", NULL,
          "openai_compatible", "openai_compatible", NULL },
    };
    /* Each case twice in a row (the thread's last host answers the second),
     * and the whole list twice (a new host after a remembered one). */
    for (size_t r = 0; r < 4 * (sizeof cases / sizeof cases[0]); r++) {
        size_t n = sizeof cases / sizeof cases[0];
        size_t i = r < 2 * n ? r / 2 : r - 2 * n;
        if (i >= n)
            i -= n;
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
        cmocka_unit_test(test_request_made_texts),
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
        cmocka_unit_test(test_call_reused),
        cmocka_unit_test(test_providers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
