/*
 * test_session.c — unit tests for session/: every resolution strategy, the
 * turn counter, a four-turn chat conversation with a tool call landing in one
 * session while unrelated conversations get their own, the sliding expiry
 * (injected clock), the LRU bound over 100,000 conversations, tool-step
 * matching with latency, threads and fork. Canonical JSON, properties and
 * SHA-256: test_session_{canon,props,sha256}.c; UUID checks and the store's
 * keys: test_session_index.c.
 *
 * The store's clock is g_now (nanoseconds), moved by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xv_session.h"

#define SEC 1000000000ull
#define MIN (60 * SEC)

static uint64_t g_now = 1000 * SEC; /* the injected clock */

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return g_now;
}

/* The group runs twice (main): without, then with the conversation state
 * carried from resolve to record (xv_session_convo), the way the agent
 * calls the store; every fingerprint must come out the same. The state of
 * a resolve is kept with the struct it resolved into. */
static int g_use_convo;
static struct {
    const struct xv_session_resolved *r;
    struct xv_session_convo c;
} g_convos[16];

static struct xv_session_convo *convo_of(const struct xv_session_resolved *r, int make)
{
    static size_t next; /* the slot a full table gives up next */
    size_t n = sizeof g_convos / sizeof g_convos[0];
    for (size_t i = 0; i < n; i++)
        if (g_convos[i].r == r)
            return &g_convos[i].c;
    if (!make)
        return NULL; /* not resolved through resolve(): record from the start */
    for (size_t i = 0; i < n; i++)
        if (!g_convos[i].r) {
            g_convos[i].r = r;
            return &g_convos[i].c;
        }
    size_t i = next++ % n;
    g_convos[i].r = r;
    return &g_convos[i].c;
}

static struct xv_session_store *new_store(size_t max, size_t tool_max)
{
    struct xv_session_config c = { .max_sessions = max,
                                   .tool_max = tool_max,
                                   .keep_tool_args = 1,
                                   .clock = fake_clock };
    struct xv_session_store *s = xv_session_store_new(&c);
    assert_non_null(s);
    memset(g_convos, 0, sizeof g_convos); /* a new test: no state of the last one's */
    return s;
}

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* Resolve a request with no header/env; returns the strategy. */
static int resolve(struct xv_session_store *s, int type, const cJSON *body,
                   struct xv_session_resolved *out)
{
    struct xv_session_request rq = { .type = type, .body = body,
                                     .convo = g_use_convo ? convo_of(out, 1) : NULL };
    assert_int_equal(xv_session_store_resolve(s, &rq, out), 0);
    assert_int_equal(strlen(out->id), XV_SESSION_ID_LEN);
    assert_true(xv_session_uuid_valid(out->id, strlen(out->id)));
    return out->strategy;
}

static void record(struct xv_session_store *s, const struct xv_session_resolved *r, int type,
                   const cJSON *body, const char *response_id, const cJSON *reply)
{
    struct xv_session_response rs = { .session_id = r->id, .turn = r->turn, .type = type,
                                      .request = body, .response_id = response_id,
                                      .reply = reply,
                                      .convo = g_use_convo ? convo_of(r, 0) : NULL,
                                      .id_digest = r->has_id_digest ? r->id_digest : NULL };
    assert_int_equal(xv_session_store_record_response(s, &rs), 0);
}

/* ------------------------------------------------------------ strategies */

static void test_header_and_env(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    const char *env = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    const char *hdr = "  123E4567-E89B-12D3-A456-426614174000\t";
    struct xv_session_request rq = { .header_id = hdr, .header_id_len = strlen(hdr),
                                     .env_id = env, .type = XV_SESSION_REQ_CHAT };
    struct xv_session_resolved r;
    /* The header wins over the env, echoed as given (trimmed); turns count. */
    for (uint64_t t = 1; t <= 3; t++) {
        assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
        assert_string_equal(r.id, "123E4567-E89B-12D3-A456-426614174000");
        assert_int_equal(r.strategy, XV_SESSION_BY_HEADER);
        assert_string_equal(xv_session_strategy_name(r.strategy), "header");
        assert_int_equal(r.turn, t);
    }
    /* Same UUID in lower case: the same session. */
    const char *low = "123e4567-e89b-12d3-a456-426614174000";
    rq.header_id = low;
    rq.header_id_len = strlen(low);
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(r.turn, 4);
    assert_string_equal(r.id, low);

    /* Not a UUID: the synthetic 400, nothing counted. */
    const char *badh[] = { "not-a-uuid", "", "123e4567-e89b-12d3-a456-42661417400" };
    for (size_t i = 0; i < 3; i++) {
        rq.header_id = badh[i];
        rq.header_id_len = strlen(badh[i]);
        assert_int_equal(xv_session_store_resolve(s, &rq, &r), XV_SESSION_E_BAD_ID);
        assert_string_equal(r.id, "");
    }
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.sessions, 1);
    cJSON *body = parse(XV_SESSION_BAD_ID_BODY);
    cJSON *e = cJSON_GetObjectItem(body, "error");
    assert_string_equal(cJSON_GetObjectItem(e, "param")->valuestring, "X-Xenovia-Session-Id");
    assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "invalid_session_id");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "invalid_request_error");
    assert_string_equal(cJSON_GetObjectItem(e, "message")->valuestring,
                        "X-Xenovia-Session-Id must be a UUID");
    cJSON_Delete(body);
    assert_int_equal(XV_SESSION_BAD_ID_STATUS, 400);

    /* No header: the env id. */
    rq.header_id = NULL;
    for (uint64_t t = 1; t <= 2; t++) {
        assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
        assert_string_equal(r.id, env);
        assert_int_equal(r.strategy, XV_SESSION_BY_ENV);
        assert_string_equal(xv_session_strategy_name(r.strategy), "env");
        assert_int_equal(r.turn, t);
    }
    /* An env value that slipped through unvalidated is ignored: new session. */
    rq.env_id = "nope";
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_NEW);
    assert_string_equal(xv_session_strategy_name(r.strategy), "new");
    assert_int_equal(r.turn, 1);
    assert_string_not_equal(r.id, env);
    assert_string_equal(xv_session_strategy_name(99), "unknown");
    xv_session_store_free(s);
}

static void test_previous_response_chain(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    struct xv_session_resolved r, first;
    cJSON *b1 = parse("{\"model\":\"m\",\"input\":\"Tell me a joke\"}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b1, &first), XV_SESSION_BY_NEW);
    assert_int_equal(first.turn, 1);
    cJSON *reply = xv_session_reply_new("A joke.", 7, NULL, 0);
    record(s, &first, XV_SESSION_REQ_RESPONSES, b1, "resp_001", reply);
    xv_session_reply_free(reply);

    cJSON *b2 = parse("{\"model\":\"m\",\"previous_response_id\":\"resp_001\","
                      "\"input\":\"Another\"}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b2, &r),
                     XV_SESSION_BY_PREVIOUS_RESPONSE);
    assert_string_equal(xv_session_strategy_name(r.strategy), "previous_response_id");
    assert_string_equal(r.id, first.id);
    assert_int_equal(r.turn, 2);
    record(s, &r, XV_SESSION_REQ_RESPONSES, b2, "resp_002", NULL);

    cJSON *b3 = parse("{\"model\":\"m\",\"previous_response_id\":\"resp_002\","
                      "\"input\":[{\"role\":\"user\",\"content\":\"One more\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b3, &r),
                     XV_SESSION_BY_PREVIOUS_RESPONSE);
    assert_string_equal(r.id, first.id);
    assert_int_equal(r.turn, 3);

    /* An unknown previous_response_id falls through to a new session. */
    cJSON *b4 = parse("{\"previous_response_id\":\"resp_999\",\"input\":\"x\"}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b4, &r), XV_SESSION_BY_NEW);
    assert_string_not_equal(r.id, first.id);
    /* previous_response_id means nothing to a chat request. */
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b2, &r), XV_SESSION_BY_NEW);
    cJSON_Delete(b1);
    cJSON_Delete(b2);
    cJSON_Delete(b3);
    cJSON_Delete(b4);
    xv_session_store_free(s);
}

/* Derived keys (user, response id, fingerprint) are scoped by the request's
 * credential digest: two API keys never share those sessions. */
static void test_credential_scope(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    uint8_t ka[XV_SESSION_DIGEST_LEN], kb[XV_SESSION_DIGEST_LEN], ka2[XV_SESSION_DIGEST_LEN];
    xv_session_scope_digest("sk-a", 4, ka);
    xv_session_scope_digest("sk-b", 4, kb);
    xv_session_scope_digest("sk-a", 4, ka2);
    assert_memory_equal(ka, ka2, sizeof ka);       /* stable within the process */
    assert_memory_not_equal(ka, kb, sizeof ka);
    cJSON *c1 = parse("{\"user\":\"u\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    struct xv_session_resolved a, b, r;
    struct xv_session_request qa = { .type = XV_SESSION_REQ_CHAT, .body = c1, .scope = ka };
    struct xv_session_request qb = { .type = XV_SESSION_REQ_CHAT, .body = c1, .scope = kb };
    struct xv_session_request qn = { .type = XV_SESSION_REQ_CHAT, .body = c1 };
    assert_int_equal(xv_session_store_resolve(s, &qa, &a), 0);
    assert_int_equal(a.strategy, XV_SESSION_BY_NEW);
    assert_int_equal(xv_session_store_resolve(s, &qb, &b), 0);
    assert_int_equal(b.strategy, XV_SESSION_BY_NEW); /* same user, other key */
    assert_string_not_equal(a.id, b.id);
    assert_int_equal(xv_session_store_resolve(s, &qa, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_USER);
    assert_string_equal(r.id, a.id);
    assert_int_equal(xv_session_store_resolve(s, &qn, &r), 0); /* no credential: its own scope */
    assert_int_equal(r.strategy, XV_SESSION_BY_NEW);
    /* response ids and fingerprints too */
    cJSON *reply = parse("{\"role\":\"assistant\",\"content\":\"hello\"}");
    cJSON *t1 = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cJSON *t2 = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                      "{\"role\":\"assistant\",\"content\":\"hello\"},"
                      "{\"role\":\"user\",\"content\":\"more\"}]}");
    struct xv_session_request f1 = { .type = XV_SESSION_REQ_CHAT, .body = t1, .scope = ka };
    assert_int_equal(xv_session_store_resolve(s, &f1, &a), 0);
    struct xv_session_response rs = { .session_id = a.id, .turn = a.turn, .type = XV_SESSION_REQ_CHAT,
                                      .request = t1, .response_id = "resp_1", .reply = reply,
                                      .scope = ka };
    assert_int_equal(xv_session_store_record_response(s, &rs), 0);
    struct xv_session_response rr = rs; /* response ids: a Responses call's only */
    rr.type = XV_SESSION_REQ_RESPONSES;
    rr.request = rr.reply = NULL;
    assert_int_equal(xv_session_store_record_response(s, &rr), 0);
    struct xv_session_request f2b = { .type = XV_SESSION_REQ_CHAT, .body = t2, .scope = kb };
    assert_int_equal(xv_session_store_resolve(s, &f2b, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_NEW);
    struct xv_session_request f2a = { .type = XV_SESSION_REQ_CHAT, .body = t2, .scope = ka };
    assert_int_equal(xv_session_store_resolve(s, &f2a, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r.id, a.id);
    cJSON *p1 = parse("{\"previous_response_id\":\"resp_1\",\"input\":\"x\"}");
    struct xv_session_request pb = { .type = XV_SESSION_REQ_RESPONSES, .body = p1, .scope = kb };
    assert_int_equal(xv_session_store_resolve(s, &pb, &r), 0);
    assert_int_not_equal(r.strategy, XV_SESSION_BY_PREVIOUS_RESPONSE);
    struct xv_session_request pa = { .type = XV_SESSION_REQ_RESPONSES, .body = p1, .scope = ka };
    assert_int_equal(xv_session_store_resolve(s, &pa, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_PREVIOUS_RESPONSE);
    cJSON_Delete(c1);
    cJSON_Delete(reply);
    cJSON_Delete(t1);
    cJSON_Delete(t2);
    cJSON_Delete(p1);
    xv_session_store_free(s);
}

static void test_user_field(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    struct xv_session_resolved a, r;
    cJSON *c1 = parse("{\"user\":\"alice@example.com\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");
    cJSON *c2 = parse("{\"user\":\"alice@example.com\",\"messages\":"
                      "[{\"role\":\"system\",\"content\":\"Be brief\"},"
                      "{\"role\":\"user\",\"content\":\"Unrelated question\"}]}");
    cJSON *c3 = parse("{\"user\":\"bob\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c1, &a), XV_SESSION_BY_NEW);
    /* A separate conversation of the same user: the user's session. */
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c2, &r), XV_SESSION_BY_USER);
    assert_string_equal(xv_session_strategy_name(r.strategy), "user");
    assert_string_equal(r.id, a.id);
    assert_int_equal(r.turn, 2);
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c3, &r), XV_SESSION_BY_NEW);
    assert_string_not_equal(r.id, a.id);
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c3, &r), XV_SESSION_BY_USER);
    assert_int_equal(r.turn, 2);
    /* `user` is a chat field: on an embeddings request it means nothing. */
    assert_int_equal(resolve(s, XV_SESSION_REQ_EMBEDDINGS, c1, &r), XV_SESSION_BY_NEW);
    /* A header session binds the user too: a later header-less call joins it. */
    const char *h = "11111111-2222-4333-8444-555555555555";
    cJSON *c4 = parse("{\"user\":\"carol\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    struct xv_session_request rq = { .header_id = h, .header_id_len = strlen(h),
                                     .type = XV_SESSION_REQ_CHAT, .body = c4 };
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c4, &r), XV_SESSION_BY_USER);
    assert_string_equal(r.id, h);
    assert_int_equal(r.turn, 2);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    cJSON_Delete(c3);
    cJSON_Delete(c4);
    xv_session_store_free(s);
}

static void test_null_store(void **state)
{
    (void)state;
    /* Store creation failed: resolution still works, statelessly. */
    struct xv_session_resolved r;
    const char *h = "123e4567-e89b-12d3-a456-426614174000";
    struct xv_session_request rq = { .header_id = h, .header_id_len = 36 };
    assert_int_equal(xv_session_store_resolve(NULL, &rq, &r), 0);
    assert_string_equal(r.id, h);
    assert_int_equal(r.turn, 1);
    assert_int_equal(r.strategy, XV_SESSION_BY_HEADER);
    rq.header_id = "x";
    rq.header_id_len = 1;
    assert_int_equal(xv_session_store_resolve(NULL, &rq, &r), XV_SESSION_E_BAD_ID);
    rq.header_id = NULL;
    assert_int_equal(xv_session_store_resolve(NULL, &rq, &r), 0);
    assert_int_equal(r.strategy, XV_SESSION_BY_NEW);
    assert_true(xv_session_uuid_valid(r.id, strlen(r.id)));
    struct xv_session_response rs = { .session_id = r.id };
    assert_int_equal(xv_session_store_record_response(NULL, &rs), 0);
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools(NULL, r.id, 1, NULL, 10, &steps, &n), 0);
    assert_int_equal(n, 0);
    struct xv_session_stats st;
    xv_session_store_get_stats(NULL, &st);
    assert_int_equal(st.sessions, 0);
    /* Sizes past the pool limit are refused. */
    struct xv_session_config c = { .max_sessions = (1u << 24) + 1 };
    assert_null(xv_session_store_new(&c));
    xv_session_store_free(NULL);
    struct xv_session_store *d = xv_session_store_new(NULL); /* all defaults */
    assert_non_null(d);
    xv_session_store_free(d);
}

/* ------------------------------------------------------------ conversations */

/* A chat conversation kept as the app would: a growing messages array. */
struct conv {
    cJSON *body;
    cJSON *msgs;
};

static void conv_init(struct conv *c, const char *system)
{
    c->body = cJSON_CreateObject();
    cJSON_AddStringToObject(c->body, "model", "gpt-test");
    c->msgs = cJSON_AddArrayToObject(c->body, "messages");
    if (system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", system);
        cJSON_AddItemToArray(c->msgs, m);
    }
}

static void conv_add(struct conv *c, const char *json)
{
    cJSON_AddItemToArray(c->msgs, parse(json));
}

static void conv_user(struct conv *c, const char *text)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(c->msgs, m);
}

/* The app appends the assistant's reply: as the SDK hands it back, with its
 * extra null fields (refusal, annotations, audio) that canonical form drops. */
static void conv_echo(struct conv *c, const cJSON *reply)
{
    cJSON *m = cJSON_Duplicate(reply, 1);
    cJSON_AddNullToObject(m, "refusal");
    cJSON_AddArrayToObject(m, "annotations");
    cJSON_AddNullToObject(m, "audio");
    cJSON_AddItemToArray(c->msgs, m);
}

static void test_four_turn_chat_with_tool(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(1000, 0);
    struct conv a, b, d;
    struct xv_session_resolved r[4], rb, rd;
    const char *sys = "You are a helpful assistant.";
    conv_init(&a, sys);
    conv_init(&b, sys);
    conv_init(&d, sys);

    /* Turn 1: a question; the reply is a tool call. */
    conv_user(&a, "What's the weather in Paris?");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r[0]), XV_SESSION_BY_NEW);
    assert_int_equal(r[0].turn, 1);
    struct xv_session_tool_call tc = { "call_abc", "get_weather", "{\"city\":\"Paris\"}", 16 };
    cJSON *rep = xv_session_reply_new(NULL, 0, &tc, 1);
    g_now += 2 * SEC;
    record(s, &r[0], XV_SESSION_REQ_CHAT, a.body, "chatcmpl-1", rep);
    conv_echo(&a, rep);
    xv_session_reply_free(rep);

    /* Unrelated conversation b, same system prompt and same first question
     * shape: its own session (messages[:-1] = [system] is never a key). */
    conv_user(&b, "What's the weather in Rome?");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b.body, &rb), XV_SESSION_BY_NEW);
    assert_string_not_equal(rb.id, r[0].id);
    rep = xv_session_reply_new("Sunny.", 6, NULL, 0);
    record(s, &rb, XV_SESSION_REQ_CHAT, b.body, "chatcmpl-b1", rep);
    conv_echo(&b, rep);
    xv_session_reply_free(rep);

    /* Turn 2: the tool result, 1.5 s after the call's response. */
    g_now += 1500000000ull;
    conv_add(&a, "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"content\":\"18C, clear\"}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r[1]), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(xv_session_strategy_name(r[1].strategy), "fingerprint");
    assert_string_equal(r[1].id, r[0].id);
    assert_int_equal(r[1].turn, 2);
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools(s, r[1].id, XV_SESSION_REQ_CHAT, a.body, 4096,
                                                  &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].call_id, "call_abc");
    assert_string_equal(steps[0].tool_name, "get_weather");
    assert_string_equal(steps[0].tool_args, "{\"city\":\"Paris\"}");
    assert_int_equal(steps[0].tool_args_len, 16);
    assert_string_equal(steps[0].tool_result, "18C, clear");
    assert_int_equal(steps[0].tool_result_len, 10);
    assert_int_equal(steps[0].result_truncated, 0);
    assert_int_equal(steps[0].latency_ns, 1500000000ull);
    xv_session_tool_steps_free(steps, n);
    rep = xv_session_reply_new("It is 18C and clear in Paris.", 29, NULL, 0);
    record(s, &r[1], XV_SESSION_REQ_CHAT, a.body, "chatcmpl-2", rep);
    conv_echo(&a, rep);
    xv_session_reply_free(rep);

    /* Another unrelated conversation with no system prompt. */
    conv_user(&d, "Hello");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, d.body, &rd), XV_SESSION_BY_NEW);
    assert_string_not_equal(rd.id, r[0].id);
    assert_string_not_equal(rd.id, rb.id);

    /* Turns 3 and 4: ordinary follow-ups. */
    for (int t = 2; t < 4; t++) {
        conv_user(&a, t == 2 ? "And tomorrow?" : "Thanks!");
        assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r[t]),
                         XV_SESSION_BY_FINGERPRINT);
        assert_string_equal(r[t].id, r[0].id);
        assert_int_equal(r[t].turn, (uint64_t)t + 1);
        /* The tool result is still in the history: it is reported once only. */
        assert_int_equal(xv_session_store_match_tools(s, r[t].id, XV_SESSION_REQ_CHAT, a.body,
                                                      4096, &steps, &n), 0);
        assert_int_equal(n, 0);
        assert_null(steps);
        rep = xv_session_reply_new("Reply.", 6, NULL, 0);
        record(s, &r[t], XV_SESSION_REQ_CHAT, a.body, NULL, rep);
        conv_echo(&a, rep);
        xv_session_reply_free(rep);
    }

    /* Conversation b continues in its own session. */
    conv_user(&b, "And in Milan?");
    struct xv_session_resolved rb2;
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b.body, &rb2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(rb2.id, rb.id);
    assert_int_equal(rb2.turn, 2);

    /* Parallel tool results: messages[:-1] ends in a tool message; the
     * prefix up to the last assistant message still finds the session. */
    struct xv_session_tool_call two[2] = { { "call_1", "f", "{}", 2 }, { "call_2", "g", "{}", 2 } };
    rep = xv_session_reply_new(NULL, 0, two, 2);
    record(s, &rb2, XV_SESSION_REQ_CHAT, b.body, NULL, rep);
    conv_echo(&b, rep);
    xv_session_reply_free(rep);
    conv_add(&b, "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"one\"}");
    conv_add(&b, "{\"role\":\"tool\",\"tool_call_id\":\"call_2\","
                 "\"content\":[{\"type\":\"text\",\"text\":\"tw\"},{\"type\":\"text\",\"text\":\"o\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b.body, &rb2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(rb2.id, rb.id);
    assert_int_equal(rb2.turn, 3);
    assert_int_equal(xv_session_store_match_tools(s, rb2.id, XV_SESSION_REQ_CHAT, b.body, 4096,
                                                  &steps, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(steps[0].call_id, "call_1");
    assert_string_equal(steps[1].call_id, "call_2");
    assert_string_equal(steps[1].tool_name, "g");
    assert_string_equal(steps[1].tool_result, "tw\no");
    xv_session_tool_steps_free(steps, n);

    cJSON_Delete(a.body);
    cJSON_Delete(b.body);
    cJSON_Delete(d.body);
    xv_session_store_free(s);
}

static void test_responses_fingerprint_and_tools(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    struct xv_session_resolved r1, r2, r3;
    /* An app managing its own Responses history (no previous_response_id):
     * it appends the output items it got back. */
    cJSON *b = parse("{\"model\":\"m\",\"instructions\":\"be nice\",\"input\":"
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Hi\"}]}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b, &r1), XV_SESSION_BY_NEW);
    struct xv_session_tool_call tc = { "fc_9", "lookup", "{\"q\":1}", 7 };
    cJSON *rep = xv_session_reply_new("Let me check.", 13, &tc, 1);
    g_now += 3 * SEC;
    record(s, &r1, XV_SESSION_REQ_RESPONSES, b, "resp_a", rep);
    xv_session_reply_free(rep);
    cJSON *in = cJSON_GetObjectItem(b, "input");
    cJSON_AddItemToArray(in, parse("{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]}"));
    cJSON_AddItemToArray(in, parse("{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\","
                                   "\"status\":\"completed\",\"content\":[{\"type\":\"output_text\","
                                   "\"text\":\"Let me check.\",\"annotations\":[]}]}"));
    cJSON_AddItemToArray(in, parse("{\"type\":\"function_call\",\"id\":\"fc_x\",\"call_id\":\"fc_9\","
                                   "\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}"));
    cJSON_AddItemToArray(in, parse("{\"type\":\"function_call_output\",\"call_id\":\"fc_9\","
                                   "\"output\":\"found\"}"));
    g_now += 1 * SEC;
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r1.id);
    assert_int_equal(r2.turn, 2);
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools(s, r2.id, XV_SESSION_REQ_RESPONSES, b, 3,
                                                  &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].call_id, "fc_9");
    assert_string_equal(steps[0].tool_name, "lookup");
    assert_string_equal(steps[0].tool_result, "fou"); /* result_max 3 */
    assert_int_equal(steps[0].result_truncated, 1);
    assert_int_equal(steps[0].latency_ns, 1 * SEC);
    xv_session_tool_steps_free(steps, n);

    /* With previous_response_id the history lacks the call: the stored
     * name and arguments are reported. */
    struct xv_session_tool_call tc2 = { "fc_10", "fetch", "{\"url\":\"x\"}", 11 };
    rep = xv_session_reply_new(NULL, 0, &tc2, 1);
    record(s, &r2, XV_SESSION_REQ_RESPONSES, b, "resp_b", rep);
    xv_session_reply_free(rep);
    g_now += 250;
    cJSON *b3 = parse("{\"previous_response_id\":\"resp_b\",\"input\":[{\"type\":"
                      "\"function_call_output\",\"call_id\":\"fc_10\",\"output\":\"<html>\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_RESPONSES, b3, &r3), XV_SESSION_BY_PREVIOUS_RESPONSE);
    assert_string_equal(r3.id, r1.id);
    assert_int_equal(r3.turn, 3);
    assert_int_equal(xv_session_store_match_tools(s, r3.id, XV_SESSION_REQ_RESPONSES, b3, 0,
                                                  &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].tool_name, "fetch");
    assert_string_equal(steps[0].tool_args, "{\"url\":\"x\"}");
    assert_string_equal(steps[0].tool_result, ""); /* result_max 0: no text kept */
    assert_int_equal(steps[0].latency_ns, 250);
    xv_session_tool_steps_free(steps, n);
    cJSON_Delete(b);
    cJSON_Delete(b3);
    xv_session_store_free(s);
}

static void test_prefill_and_odd_results(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(10, 0);
    struct conv a;
    struct xv_session_resolved r1, r2;
    conv_init(&a, "sys");
    conv_user(&a, "Write a haiku");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r1), XV_SESSION_BY_NEW);
    struct xv_session_tool_call tc = { "call_o", "obj", "{}", 2 };
    cJSON *rep = xv_session_reply_new("Leaves fall", 11, &tc, 1);
    record(s, &r1, XV_SESSION_REQ_CHAT, a.body, NULL, rep);
    conv_echo(&a, rep);
    xv_session_reply_free(rep);
    /* The tool answers with a non-text content; then the app prefills the
     * assistant's next message: messages[:-1] ends with the user message,
     * the prefix up to the last assistant message before it matches. */
    conv_add(&a, "{\"role\":\"tool\",\"tool_call_id\":\"call_o\",\"content\":{\"b\":1,\"a\":[2]}}");
    conv_user(&a, "Another");
    conv_add(&a, "{\"role\":\"assistant\",\"content\":\"Sure:\"}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r1.id);
    assert_int_equal(r2.turn, 2);
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools(s, r2.id, XV_SESSION_REQ_CHAT, a.body, 100,
                                                  &steps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].tool_result, "{\"a\":[2],\"b\":1}");
    xv_session_tool_steps_free(steps, n);
    /* A chat reply passed as choices[0].message, extra fields and all. */
    cJSON *msg = parse("{\"role\":\"assistant\",\"content\":\"Done.\",\"refusal\":null,"
                       "\"annotations\":[]}");
    record(s, &r2, XV_SESSION_REQ_CHAT, a.body, "chatcmpl-x", msg);
    cJSON_AddItemToArray(a.msgs, parse("{\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
                                       "\"text\":\"Done.\"}]}"));
    conv_user(&a, "Bye");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r1.id);
    assert_int_equal(r2.turn, 3);
    cJSON_Delete(msg);
    cJSON_Delete(a.body);
    xv_session_store_free(s);
}

static void test_expiry(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(100, 0);
    struct conv a;
    struct xv_session_resolved r1, r2, r3;
    conv_init(&a, NULL);
    conv_user(&a, "first");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r1), XV_SESSION_BY_NEW);
    cJSON *rep = xv_session_reply_new("ok", 2, NULL, 0);
    record(s, &r1, XV_SESSION_REQ_CHAT, a.body, NULL, rep);
    conv_echo(&a, rep);
    /* 29 minutes idle: still the session; the hit slides the expiry on. */
    g_now += 29 * MIN;
    conv_user(&a, "second");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r1.id);
    record(s, &r2, XV_SESSION_REQ_CHAT, a.body, NULL, rep);
    conv_echo(&a, rep);
    g_now += 29 * MIN; /* 58 minutes after the start, 29 after the last hit */
    conv_user(&a, "third");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r1.id);
    assert_int_equal(r2.turn, 3);
    record(s, &r2, XV_SESSION_REQ_CHAT, a.body, NULL, rep);
    conv_echo(&a, rep);
    /* Resumed after more than 30 minutes: a new session. */
    g_now += 30 * MIN + 1;
    conv_user(&a, "fourth");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r3), XV_SESSION_BY_NEW);
    assert_string_not_equal(r3.id, r1.id);
    assert_int_equal(r3.turn, 1);
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.sessions, 1);

    /* A header session past its expiry keeps its id and counts afresh. */
    const char *h = "99999999-2222-4333-8444-555555555555";
    struct xv_session_request rq = { .header_id = h, .header_id_len = 36 };
    assert_int_equal(xv_session_store_resolve(s, &rq, &r1), 0);
    assert_int_equal(xv_session_store_resolve(s, &rq, &r1), 0);
    assert_int_equal(r1.turn, 2);
    g_now += 31 * MIN;
    assert_int_equal(xv_session_store_resolve(s, &rq, &r1), 0);
    assert_int_equal(r1.turn, 1);
    assert_string_equal(r1.id, h);
    xv_session_reply_free(rep);
    cJSON_Delete(a.body);
    xv_session_store_free(s);
}

static void test_lru_bound(void **state)
{
    (void)state;
    const size_t max = 10000, convs = 100000;
    struct xv_session_store *s = new_store(max, 0);
    char text[64];
    struct xv_session_resolved r, first, last;
    cJSON *rep = xv_session_reply_new("ok", 2, NULL, 0);
    cJSON *firstb = NULL, *lastb = NULL;
    for (size_t i = 0; i < convs; i++) {
        struct conv c;
        conv_init(&c, "sys");
        snprintf(text, sizeof text, "conversation %zu", i);
        conv_user(&c, text);
        assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, c.body, &r), XV_SESSION_BY_NEW);
        record(s, &r, XV_SESSION_REQ_CHAT, c.body, text, rep);
        struct xv_session_stats st;
        xv_session_store_get_stats(s, &st);
        assert_true(st.sessions <= max);
        assert_true(st.keys <= max * (2 + XV_SESSION_LINKS));
        if (i == 0 || i == convs - 1) {
            conv_echo(&c, rep);
            conv_user(&c, "more");
            if (i == 0) {
                firstb = c.body;
                first = r;
            } else {
                lastb = c.body;
                last = r;
            }
        } else {
            cJSON_Delete(c.body);
        }
        g_now += 1000; /* 100,000 µs-spaced calls: nothing expires */
    }
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.sessions, max);
    assert_int_equal(st.created, convs);
    assert_int_equal(st.evicted, convs - max);
    assert_int_equal(st.expired, 0);
    /* The newest conversation continues; the oldest was evicted. */
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, lastb, &r), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r.id, last.id);
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, firstb, &r), XV_SESSION_BY_NEW);
    assert_string_not_equal(r.id, first.id);
    /* The byte bound is fixed by the sizes alone (RSS-independent): the
     * default store stays under 8 MiB, and grows linearly. */
    size_t bound = xv_session_store_bytes_bound(max, 0);
    assert_true(bound < 8u << 20);
    assert_true(bound == xv_session_store_bytes_bound(0, 0));
    size_t per = (xv_session_store_bytes_bound(2 * max, 1024) - bound) / max;
    assert_true(per > 0 && per < 700);
    cJSON_Delete(firstb);
    cJSON_Delete(lastb);
    xv_session_reply_free(rep);
    xv_session_store_free(s);
}

static void test_tool_bounds(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(10, 100);
    struct xv_session_resolved r;
    cJSON *b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b, &r), XV_SESSION_BY_NEW);
    /* 70 calls in one reply: the session keeps its newest 64. */
    struct xv_session_tool_call calls[70];
    char ids[70][16];
    for (int i = 0; i < 70; i++) {
        snprintf(ids[i], sizeof ids[i], "call_%d", i);
        calls[i] = (struct xv_session_tool_call){ ids[i], "t", "{}", 2 };
    }
    cJSON *rep = xv_session_reply_new(NULL, 0, calls, 70);
    record(s, &r, XV_SESSION_REQ_CHAT, b, NULL, rep);
    xv_session_reply_free(rep);
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.tools, XV_SESSION_TOOLS_PER_SESSION);
    assert_int_equal(st.tools_evicted, 70 - XV_SESSION_TOOLS_PER_SESSION);
    /* A second session's 64 calls: the store-wide pool of 100 holds. */
    struct xv_session_resolved r2;
    cJSON *b2 = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"other\"}]}");
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, b2, &r2), XV_SESSION_BY_NEW);
    for (int i = 0; i < 64; i++)
        snprintf(ids[i], sizeof ids[i], "x_%d", i);
    rep = xv_session_reply_new(NULL, 0, calls, 64);
    record(s, &r2, XV_SESSION_REQ_CHAT, b2, NULL, rep);
    xv_session_reply_free(rep);
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.tools, 100);
    /* Long arguments are kept truncated, at a UTF-8 boundary. */
    char big[3000];
    memset(big, 'a', sizeof big);
    memcpy(big + XV_SESSION_TOOL_ARGS_MAX - 1, "\xc3\xa9", 2);
    struct xv_session_tool_call one = { "big_1", "bigtool", big, sizeof big };
    rep = xv_session_reply_new(NULL, 0, &one, 1);
    record(s, &r2, XV_SESSION_REQ_CHAT, b2, NULL, rep);
    xv_session_reply_free(rep);
    cJSON *b3 = parse("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"big_1\","
                      "\"content\":\"done\"},{\"role\":\"tool\",\"tool_call_id\":\"unknown\","
                      "\"content\":\"?\"}]}");
    struct xv_session_tool_step *steps;
    size_t n;
    assert_int_equal(xv_session_store_match_tools(s, r2.id, XV_SESSION_REQ_CHAT, b3, 100, &steps,
                                                  &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].tool_name, "bigtool");
    assert_int_equal(steps[0].tool_args_len, XV_SESSION_TOOL_ARGS_MAX - 1);
    xv_session_tool_steps_free(steps, n);
    /* Another session's call ids never match here. */
    assert_int_equal(xv_session_store_match_tools(s, r.id, XV_SESSION_REQ_CHAT, b3, 100, &steps,
                                                  &n), 0);
    assert_int_equal(n, 0);
    /* keep_tool_args 0: names only. */
    struct xv_session_config c = { .max_sessions = 4, .clock = fake_clock };
    struct xv_session_store *s2 = xv_session_store_new(&c);
    assert_non_null(s2);
    assert_int_equal(resolve(s2, XV_SESSION_REQ_CHAT, b, &r), XV_SESSION_BY_NEW);
    rep = xv_session_reply_new(NULL, 0, &one, 1);
    record(s2, &r, XV_SESSION_REQ_CHAT, b, NULL, rep);
    xv_session_reply_free(rep);
    assert_int_equal(xv_session_store_match_tools(s2, r.id, XV_SESSION_REQ_CHAT, b3, 100, &steps,
                                                  &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0].tool_args, "");
    xv_session_tool_steps_free(steps, n);
    xv_session_store_free(s2);
    cJSON_Delete(b);
    cJSON_Delete(b2);
    cJSON_Delete(b3);
    xv_session_store_free(s);
}

static void test_record_after_eviction(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(2, 0);
    struct xv_session_resolved r, x;
    struct conv a;
    conv_init(&a, NULL);
    conv_user(&a, "q");
    /* A one-message request has no fingerprint: each is a new session. */
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &x), XV_SESSION_BY_NEW);
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r), XV_SESSION_BY_NEW);
    assert_string_not_equal(r.id, x.id);
    /* Two more sessions push r out before its response arrives. */
    cJSON *o = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"o\"}]}");
    resolve(s, XV_SESSION_REQ_CHAT, o, &x);
    resolve(s, XV_SESSION_REQ_CHAT, o, &x);
    cJSON *rep = xv_session_reply_new("a", 1, NULL, 0);
    record(s, &r, XV_SESSION_REQ_CHAT, a.body, NULL, rep);
    conv_echo(&a, rep);
    conv_user(&a, "q2");
    struct xv_session_resolved r2;
    assert_int_equal(resolve(s, XV_SESSION_REQ_CHAT, a.body, &r2), XV_SESSION_BY_FINGERPRINT);
    assert_string_equal(r2.id, r.id);
    assert_int_equal(r2.turn, r.turn + 1);
    struct xv_session_response bad = { .session_id = "nope" };
    assert_int_equal(xv_session_store_record_response(s, &bad), XV_E_PARSE);
    xv_session_reply_free(rep);
    cJSON_Delete(o);
    cJSON_Delete(a.body);
    xv_session_store_free(s);
}

/* ------------------------------------------------------------ threads, fork */

struct worker {
    struct xv_session_store *s;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct conv c;
    char text[64];
    snprintf(text, sizeof text, "thread %d", w->id);
    conv_init(&c, "sys");
    conv_user(&c, text);
    struct xv_session_resolved first, r;
    cJSON *rep = xv_session_reply_new("ok", 2, NULL, 0);
    struct xv_session_request rq = { .type = XV_SESSION_REQ_CHAT, .body = c.body };
    for (int t = 0; t < 200; t++) {
        if (xv_session_store_resolve(w->s, &rq, t ? &r : &first) != 0)
            w->failures++;
        if (t && (strcmp(r.id, first.id) != 0 || r.turn != (uint64_t)t + 1))
            w->failures++;
        struct xv_session_response rs = { .session_id = t ? r.id : first.id,
                                          .turn = t ? r.turn : first.turn,
                                          .type = XV_SESSION_REQ_CHAT,
                                          .request = c.body, .reply = rep };
        if (xv_session_store_record_response(w->s, &rs) != 0)
            w->failures++;
        conv_echo(&c, rep);
        conv_user(&c, "again");
    }
    xv_session_reply_free(rep);
    cJSON_Delete(c.body);
    return NULL;
}

static void test_threads_and_fork(void **state)
{
    (void)state;
    struct xv_session_store *s = new_store(1000, 0);
    pthread_t th[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){ s, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    struct xv_session_stats st;
    xv_session_store_get_stats(s, &st);
    assert_int_equal(st.sessions, 8);

    /* After fork the child uses the store (its own copy, fresh mutex). */
    const char *h = "77777777-2222-4333-8444-555555555555";
    struct xv_session_request rq = { .header_id = h, .header_id_len = 36 };
    struct xv_session_resolved r;
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    xv_session_store_atfork_prepare(s);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        xv_session_store_atfork_child(s);
        int ok = xv_session_store_resolve(s, &rq, &r) == 0 && r.turn == 2;
        _exit(ok ? 0 : 1);
    }
    xv_session_store_atfork_parent(s);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(r.turn, 2); /* the child's turn was the child's */
    xv_session_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_env),
        cmocka_unit_test(test_null_store),
        cmocka_unit_test(test_previous_response_chain),
        cmocka_unit_test(test_user_field),
        cmocka_unit_test(test_four_turn_chat_with_tool),
        cmocka_unit_test(test_responses_fingerprint_and_tools),
        cmocka_unit_test(test_prefill_and_odd_results),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_tool_bounds),
        cmocka_unit_test(test_record_after_eviction),
        cmocka_unit_test(test_threads_and_fork),
        cmocka_unit_test(test_credential_scope),
    };
    int failed = cmocka_run_group_tests_name("without the conversation state", tests, NULL, NULL);
    g_use_convo = 1;
    return failed + cmocka_run_group_tests_name("with the conversation state", tests, NULL, NULL);
}
