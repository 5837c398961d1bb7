/*
 * test_otlp_openai.c — the record fields the OTLP GenAI mapping needs from
 * openai/ (request_params, tokens_cached, tokens_reasoning), filled from real
 * request and response bodies of the four APIs, streamed and not.
 *
 * Single-threaded; no environment, no I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "xv_openai.h"

#define MS ((uint64_t)1000000)

/* A whole call; the caller owns the record. */
static cJSON *run(int type, const char *req, const char *ct, const char *body)
{
    struct xv_openai_limits lim = { 0 };
    lim.capture_content = 1;
    struct xv_openai_call *c = xv_openai_call_new(type, &lim);
    assert_non_null(c);
    xv_openai_call_request_body(c, req, strlen(req));
    xv_openai_call_request_end(c);
    xv_openai_call_response_head(c, 200, ct, strlen(ct), 2 * MS);
    xv_openai_call_response_body(c, body, strlen(body), 3 * MS);
    xv_openai_call_response_end(c, NULL, 4 * MS);
    cJSON *r = cJSON_CreateObject();
    assert_int_equal(xv_openai_call_fill_record(c, r, 1 * MS), 0);
    xv_openai_call_free(c);
    return r;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("%s missing", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v))
        fail_msg("%s missing", k);
    return v->valuestring;
}

static void test_chat_params_and_details(void **state)
{
    (void)state;
    cJSON *r = run(XV_OPENAI_CHAT,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"temperature\":0.25,\"top_p\":1,\"max_tokens\":7,\"frequency_penalty\":-0.5,"
                   "\"presence_penalty\":0,\"seed\":-3,\"n\":3,\"stop\":\"\\n\","
                   "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}",
                   "application/json",
                   "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                   "\"assistant\",\"content\":\"y\"},\"finish_reason\":\"stop\"}],\"usage\":{"
                   "\"prompt_tokens\":10,\"completion_tokens\":20,\"prompt_tokens_details\":{"
                   "\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":9}}}");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "request_params");
    assert_true(num(p, "temperature") == 0.25 && num(p, "top_p") == 1 && num(p, "max_tokens") == 7);
    assert_true(num(p, "frequency_penalty") == -0.5 && num(p, "presence_penalty") == 0);
    assert_true(num(p, "seed") == -3 && num(p, "n") == 3);
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(p, "stop");
    assert_int_equal(cJSON_GetArraySize(stop), 1);        /* a string becomes an array */
    assert_string_equal(cJSON_GetArrayItem(stop, 0)->valuestring, "\n");
    assert_string_equal(str(p, "output_type"), "json");
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "encoding_format"));
    assert_true(num(r, "tokens_cached") == 4 && num(r, "tokens_reasoning") == 9);
    cJSON_Delete(r);

    /* none of them sent, no details: no fields (absent, not zero) */
    r = run(XV_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", "application/json",
            "{\"id\":\"c2\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}");
    assert_null(cJSON_GetObjectItemCaseSensitive(r, "request_params"));
    assert_null(cJSON_GetObjectItemCaseSensitive(r, "tokens_cached"));
    assert_null(cJSON_GetObjectItemCaseSensitive(r, "tokens_reasoning"));
    cJSON_Delete(r);

    /* max_completion_tokens wins over the legacy max_tokens; non-numbers ignored */
    r = run(XV_OPENAI_CHAT, "{\"model\":\"m\",\"max_completion_tokens\":5,\"max_tokens\":9,"
            "\"temperature\":\"hot\",\"stop\":[\"a\",1,\"b\"],\"response_format\":{\"type\":\"text\"}}",
            "application/json", "{\"id\":\"c3\",\"choices\":[]}");
    p = cJSON_GetObjectItemCaseSensitive(r, "request_params");
    assert_true(num(p, "max_tokens") == 5);
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "temperature"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "stop")), 2);
    assert_string_equal(str(p, "output_type"), "text");
    cJSON_Delete(r);
}

static void test_chat_stream_details(void **state)
{
    (void)state;
    cJSON *r = run(XV_OPENAI_CHAT,
                   "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                   "text/event-stream",
                   "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
                   "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                   "\"stop\"}]}\n\n"
                   "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,"
                   "\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":8},"
                   "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
                   "data: [DONE]\n\n");
    assert_true(num(r, "tokens_cached") == 8 && num(r, "tokens_reasoning") == 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "stream")));
    cJSON_Delete(r);
}

static void test_responses_params_and_details(void **state)
{
    (void)state;
    cJSON *r = run(XV_OPENAI_RESPONSES,
                   "{\"model\":\"m\",\"input\":\"q\",\"max_output_tokens\":64,\"top_p\":0.5,"
                   "\"text\":{\"format\":{\"type\":\"json_object\"}}}",
                   "application/json",
                   "{\"id\":\"resp_1\",\"status\":\"completed\",\"model\":\"m\",\"output\":[],"
                   "\"usage\":{\"input_tokens\":30,\"output_tokens\":12,\"input_tokens_details\":"
                   "{\"cached_tokens\":16},\"output_tokens_details\":{\"reasoning_tokens\":5}}}");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "request_params");
    assert_true(num(p, "max_tokens") == 64 && num(p, "top_p") == 0.5);
    assert_string_equal(str(p, "output_type"), "json");
    assert_true(num(r, "tokens_cached") == 16 && num(r, "tokens_reasoning") == 5);
    cJSON_Delete(r);
}

static void test_embeddings_encoding_format(void **state)
{
    (void)state;
    const char *body = "{\"object\":\"list\",\"data\":[],\"model\":\"e\",\"usage\":{"
                       "\"prompt_tokens\":3,\"total_tokens\":3}}";
    cJSON *r = run(XV_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":"
                   "\"base64\"}", "application/json", body);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(r, "request_params"),
                            "encoding_format"), "base64");
    cJSON_Delete(r);
    r = run(XV_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\"}", "application/json", body);
    /* the API's default when the request names none */
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(r, "request_params"),
                            "encoding_format"), "float");
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_params_and_details),
        cmocka_unit_test(test_chat_stream_details),
        cmocka_unit_test(test_responses_params_and_details),
        cmocka_unit_test(test_embeddings_encoding_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
