/*
 * test_session_index.c — unit tests for session/store.c's keys. The index
 * starts at one page of buckets (1024) and doubles, its chains rebuilt from the key
 * nodes, when the keys outnumber the buckets. With 4,500 chat conversations
 * (two keys each: id and fingerprint; a chat completion's id is not a key)
 * the index grows 1024 -> 16384; afterwards every session must still be found by its id (no
 * session created again when its response is recorded) and by its
 * next-turn fingerprint, with its own id and turn. That only a Responses
 * response's id is a key (test_response_ids). The id digest resolve
 * hands on (test_id_digest), and UUID checks (test_uuid_validation).
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
    const size_t max = 4500;
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
    assert_true(st.keys >= 2 * max);   /* past 8192 buckets' worth of growth */
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

/* Session ids: what is a UUID (SPEC §4: an app's header must be one), and
 * XENOVIA_SESSION_ID's check and its one-line message. */
static void test_uuid_validation(void **state)
{
    (void)state;
    const char *good[] = { "123e4567-e89b-12d3-a456-426614174000",
                           "123E4567-E89B-12D3-A456-426614174000",
                           "00000000-0000-0000-0000-000000000000",
                           "ffffffff-FFFF-7fff-8fff-abcdefABCDEF" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(xv_session_uuid_valid(good[i], strlen(good[i])));
    const char *bad[] = { "",
                          "123e4567-e89b-12d3-a456-42661417400",
                          "123e4567-e89b-12d3-a456-4266141740000",
                          "123e4567e89b-12d3-a456-4266141740000",
                          "123e4567-e89b-12d3-a456_426614174000",
                          "123e4567-e89b-12d3-a456-42661417400g",
                          "{23e4567-e89b-12d3-a456-42661417400}",
                          "123e4567-e89b-12d3-a4564-26614174000",
                          "urn:uuid:123e4567-e89b-12d3-a456-4266" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(xv_session_uuid_valid(bad[i], strlen(bad[i])));
    assert_false(xv_session_uuid_valid(NULL, 36));
    /* every byte at every position against the definition: 8-4-4-4-12 hex digits */
    for (int pos = 0; pos < 36; pos++) {
        for (int b = 0; b < 256; b++) {
            char u[37];
            memcpy(u, good[0], 37);
            u[pos] = (char)b;
            int want = (pos == 8 || pos == 13 || pos == 18 || pos == 23) ? b == '-'
                       : (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
            assert_int_equal(xv_session_uuid_valid(u, 36), want);
        }
    }

    char err[256];
    assert_int_equal(xv_session_env_id_check(NULL, err, sizeof err), 0);
    assert_int_equal(xv_session_env_id_check(good[1], err, sizeof err), 0);
    assert_string_equal(err, "");
    /* other UUID spellings are accepted (and normalised where used) */
    assert_int_equal(xv_session_env_id_check("{AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE}", err, sizeof err), 0);
    assert_int_equal(xv_session_env_id_check("aaaaaaaabbbb4ccc8dddeeeeeeeeeeee", err, sizeof err), 0);
    assert_int_equal(xv_session_env_id_check("urn:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", err,
                                             sizeof err), 0);
    assert_int_equal(xv_session_env_id_check("my-session\n\x01", err, sizeof err), XV_E_CONFIG);
    assert_non_null(strstr(err, "XENOVIA_SESSION_ID"));
    assert_non_null(strstr(err, "not a UUID"));
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\x01'));
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(xv_session_env_id_check(longv, err, sizeof err), XV_E_CONFIG);
    assert_true(strlen(err) < 200); /* the value is quoted truncated */
}

/* Only a Responses request can name an earlier response (SPEC §4 strategy
 * 2), so only a Responses response's id is bound: a chat completion's id,
 * recorded the same way, finds nothing when a request names it. */
static void test_response_ids(void **state)
{
    (void)state;
    struct xv_session_config cfg = { .max_sessions = 100, .clock = fake_clock };
    struct xv_session_store *s = xv_session_store_new(&cfg);
    assert_non_null(s);
    cJSON *rep = xv_session_reply_new("ok", 2, NULL, 0);
    cJSON *named = cJSON_Parse("{\"previous_response_id\":\"id-1\",\"input\":\"x\"}");
    const int types[2] = { XV_SESSION_REQ_CHAT, XV_SESSION_REQ_RESPONSES };
    for (int k = 0; k < 2; k++) {
        cJSON *body = k == 0 ? chat("hello") : cJSON_Parse("{\"input\":\"hello\"}");
        struct xv_session_request rq = { .type = types[k], .body = body };
        struct xv_session_resolved a, b;
        assert_int_equal(xv_session_store_resolve(s, &rq, &a), 0);
        struct xv_session_response rp = { .session_id = a.id, .turn = a.turn, .type = types[k],
                                          .request = body, .response_id = "id-1", .reply = rep };
        assert_int_equal(xv_session_store_record_response(s, &rp), 0);
        struct xv_session_request q = { .type = XV_SESSION_REQ_RESPONSES, .body = named };
        assert_int_equal(xv_session_store_resolve(s, &q, &b), 0);
        if (k == 0) {
            assert_int_equal(b.strategy, XV_SESSION_BY_NEW);
        } else {
            assert_int_equal(b.strategy, XV_SESSION_BY_PREVIOUS_RESPONSE);
            assert_string_equal(b.id, a.id);
        }
        cJSON_Delete(body);
    }
    cJSON_Delete(named);
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
        cmocka_unit_test(test_uuid_validation),
        cmocka_unit_test(test_index_growth),
        cmocka_unit_test(test_response_ids),
        cmocka_unit_test(test_id_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
