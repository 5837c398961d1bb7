/*
 * test_session_index.c — unit test for session/store.c's index: it starts at
 * one page of buckets (1024) and doubles, its chains rebuilt from the key
 * nodes, when the keys outnumber the buckets. With 3,000 conversations
 * (three keys each: id, response id, fingerprint) the index grows
 * 1024 -> 8192; afterwards every session must still be found by its id (no
 * session created again when its response is recorded) and by its
 * next-turn fingerprint, with its own id and turn.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
