/*
 * test_session_index.c — unit tests for session/store.c's keys. The index
 * starts at one page of buckets (1024) and doubles, its chains rebuilt from the key
 * nodes, when the keys outnumber the buckets. With 3,000 conversations
 * (three keys each: id, response id, fingerprint) the index grows
 * 1024 -> 8192; afterwards every session must still be found by its id (no
 * session created again when its response is recorded) and by its
 * next-turn fingerprint, with its own id and turn. And the id digest
 * resolve hands on (test_id_digest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_session.h"

static uint64_t g_now = 1000000000ull;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return g_now;
}

/* {"model":..,"messages":[system, user(text)]} */
static cJSON *chat(const char *text)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "gpt-test");
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", "sys");
    cJSON_AddItemToArray(msgs, m);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
    return b;
}

static void test_index_growth(void **state)
{
    (void)state;
    const size_t max = 3000;
    struct xv_session_config cfg = { .max_sessions = max, .clock = fake_clock };
    struct xv_session_store *s = xv_session_store_new(&cfg);
    assert_non_null(s);
    cJSON *rep = xv_session_reply_new("ok", 2, NULL, 0);
    cJSON **next = calloc(max, sizeof *next);
    struct xv_session_resolved *rs = calloc(max, sizeof *rs);
    assert_non_null(next);
    assert_non_null(rs);
    char text[64];
    for (size_t i = 0; i < max; i++) {
        snprintf(text, sizeof text, "question %zu", i);
        cJSON *body = chat(text);
        struct xv_session_request rq = { .type = XV_SESSION_REQ_CHAT, .body = body };
        assert_int_equal(xv_session_store_resolve(s, &rq, &rs[i]), 0);
        assert_int_equal(rs[i].strategy, XV_SESSION_BY_NEW);
        snprintf(text, sizeof text, "resp-%zu", i);
        struct xv_session_response rp = { .session_id = rs[i].id, .turn = rs[i].turn,
                                          .type = XV_SESSION_REQ_CHAT, .request = body,
                                          .response_id = text, .reply = rep };
        assert_int_equal(xv_session_store_record_response(s, &rp), 0);
        /* the app's next turn: the reply appended, another question */
        cJSON *msgs = cJSON_GetObjectItem(body, "messages");
        cJSON_AddItemToArray(msgs, cJSON_Duplicate(rep, 1));
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", "and then?");
        cJSON_AddItemToArray(msgs, m);
        next[i] = body;
        g_now += 1000;
    }
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.created, max); /* every response found its session by id */
    assert_int_equal(st.sessions, max);
    assert_true(st.keys >= 3 * max);   /* past 8192 buckets' worth of growth */
    for (size_t i = 0; i < max; i++) {
        struct xv_session_request rq = { .type = XV_SESSION_REQ_CHAT, .body = next[i] };
        struct xv_session_resolved r;
        assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
        assert_int_equal(r.strategy, XV_SESSION_BY_FINGERPRINT);
        assert_string_equal(r.id, rs[i].id);
        assert_int_equal(r.turn, 2);
        cJSON_Delete(next[i]);
    }
    free(next);
    free(rs);
    xv_session_reply_free(rep);
    xv_session_store_free(s);
}

/* resolve hands out its digest of the id for a given or new id (not for one
 * found by another key), case-insensitive like the id; the response and the
 * tool match take it instead of checking and digesting the id again. */
static void test_id_digest(void **state)
{
    (void)state;
    struct xv_session_config cfg = { .max_sessions = 100, .clock = fake_clock };
    struct xv_session_store *s = xv_session_store_new(&cfg);
    assert_non_null(s);
    struct xv_session_resolved a, b, c;
    struct xv_session_request rq = { .header_id = "123E4567-E89B-12D3-A456-426614174000",
                                     .header_id_len = 36 };
    assert_int_equal(xv_session_store_resolve(s, &rq, &a), 0);
    assert_true(a.has_id_digest);
    rq.header_id = "123e4567-e89b-12d3-a456-426614174000";
    assert_int_equal(xv_session_store_resolve(s, &rq, &b), 0);
    assert_true(b.has_id_digest);
    assert_memory_equal(a.id_digest, b.id_digest, XV_SESSION_DIGEST_LEN);
    assert_int_equal(b.turn, 2);

    cJSON *t1 = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}]}");
    struct xv_session_request q1 = { .type = XV_SESSION_REQ_CHAT, .body = t1 };
    assert_int_equal(xv_session_store_resolve(s, &q1, &c), 0);
    assert_int_equal(c.strategy, XV_SESSION_BY_NEW);
    assert_true(c.has_id_digest);
    assert_memory_not_equal(c.id_digest, a.id_digest, XV_SESSION_DIGEST_LEN);
    struct xv_session_tool_call tc = { "call_1", "get_weather", "{}", 2 };
    cJSON *rep = xv_session_reply_new(NULL, 0, &tc, 1);
    struct xv_session_response rp = { .session_id = c.id, .turn = c.turn,
                                      .type = XV_SESSION_REQ_CHAT, .request = t1,
                                      .response_id = "chatcmpl-1", .reply = rep,
                                      .id_digest = c.id_digest };
    assert_int_equal(xv_session_store_record_response(s, &rp), 0);
    xv_session_reply_free(rep);
    cJSON *t2 = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
                      "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                      "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}]}");
    struct xv_session_resolved d;
    struct xv_session_request q2 = { .type = XV_SESSION_REQ_CHAT, .body = t2 };
    assert_int_equal(xv_session_store_resolve(s, &q2, &d), 0);
    assert_int_equal(d.strategy, XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(d.id, c.id);
    assert_false(d.has_id_digest); /* found by its fingerprint: no digest of its id taken */
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools_d(s, d.id, c.id_digest, XV_SESSION_REQ_CHAT, t2,
                                                    0, &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].call_id, "call_1");
    xv_session_tool_steps_free(steps, n);
    cJSON_Delete(t1);
    cJSON_Delete(t2);
    xv_session_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_growth),
        cmocka_unit_test(test_id_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
