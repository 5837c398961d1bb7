/*
 * test_session_canon.c — unit tests for session/canon.c: the canonical JSON
 * the conversation fingerprints are taken over (key order, number forms,
 * escapes, the null fields SDKs add), and the canonical message forms; and
 * the assistant reply tree xv_session_reply_new builds in one block.
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

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* ------------------------------------------------------------ canonical JSON */

/* The canonical form of j is want; j is deleted. */
static void canon_of(cJSON *j, const char *want)
{
    assert_non_null(j);
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    assert_int_equal(xv_session_canonical_json(j, &b), 0);
    assert_string_equal(b.data, want);
    xv_buf_free(&b);
    cJSON_Delete(j);
}

static void canon_is(const char *in, const char *want)
{
    canon_of(parse(in), want);
}

static void test_canonical_json(void **state)
{
    (void)state;
    canon_is("{ \"b\" : 1, \"a\" : [ true, false, null ], \"ab\": {\"z\":\"\", \"A\":2} }",
             "{\"a\":[true,false,null],\"ab\":{\"A\":2,\"z\":\"\"},\"b\":1}");
    canon_is("[1.5, -0, 100, 1e300, -2.25e-5, 9007199254740993]",
             "[1.5,0,100,1.0000000000000001e+300,-2.2500000000000001e-05,9007199254740992]");
    canon_is("\"q\\\" b\\\\ \\/ \\b\\f\\n\\r\\t \\u0001 \\u007f \\u00e9 \\ud83d\\ude00\"",
             "\"q\\\" b\\\\ / \\b\\f\\n\\r\\t \\u0001 \x7f \xc3\xa9 \xf0\x9f\x98\x80\"");
    /* Duplicate keys keep their order; more than 16 members sort too. */
    canon_is("{\"k\":2,\"a\":0,\"k\":1}", "{\"a\":0,\"k\":2,\"k\":1}");
    canon_is("{\"s\":1,\"r\":1,\"q\":1,\"p\":1,\"o\":1,\"n\":1,\"m\":1,\"l\":1,\"k\":1,\"j\":1,"
             "\"i\":1,\"h\":1,\"g\":1,\"f\":1,\"e\":1,\"d\":1,\"c\":1,\"b\":1,\"a\":1}",
             "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,"
             "\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1,\"r\":1,\"s\":1}");
    /* Depth: 64 levels fine, 65 refused. */
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    cJSON *j = parse(deep);
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    assert_int_equal(xv_session_canonical_json(j, &b), 0);
    cJSON_Delete(j);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    j = parse(deep);
    xv_buf_reset(&b);
    assert_int_equal(xv_session_canonical_json(j, &b), XV_E_LIMIT);
    cJSON_Delete(j);
    /* A buffer too small is reported, never overrun. */
    struct xv_buf small;
    xv_buf_init(&small, 4);
    j = parse("[\"abcdef\"]");
    assert_int_equal(xv_session_canonical_json(j, &small), XV_E_LIMIT);
    xv_buf_free(&small);
    cJSON_Delete(j);
    xv_buf_free(&b);
}

static void messages_are(int type, const char *body, int drop_last, const char *want)
{
    cJSON *j = parse(body);
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    assert_int_equal(xv_session_canonical_messages(type, j, drop_last, &b), 0);
    assert_string_equal(b.data, want);
    xv_buf_free(&b);
    cJSON_Delete(j);
}

/* Strings scanned eight bytes at a time: a byte canonical JSON escapes (or
 * a neighbour of one that it does not) at every position of every length
 * up to 40, against the escaping spelled out byte by byte here. */
static void test_escape_positions(void **state)
{
    (void)state;
    static const unsigned char special[] = { '"', '\\', '\b', '\f', '\n', '\r', '\t',
                                             0x01, 0x1f, 0x20, 0x7f, 0xc3 };
    char in[48], want[400];
    for (size_t len = 0; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof special; k++) {
                memset(in, 'x', len);
                in[len] = '\0';
                in[at] = (char)special[k];
                if (special[k] == 0xc3 && at + 1 < len)
                    in[at + 1] = (char)0xa9; /* é: a whole character */
                else if (special[k] == 0xc3)
                    continue;
                size_t w = 0;
                want[w++] = '"';
                for (size_t i = 0; i < len; i++) {
                    unsigned char c = (unsigned char)in[i];
                    const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                                  : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                  : c == '\t' ? "\\t" : NULL;
                    if (e)
                        w += (size_t)sprintf(want + w, "%s", e);
                    else if (c < 0x20)
                        w += (size_t)sprintf(want + w, "\\u%04x", c);
                    else
                        want[w++] = (char)c;
                }
                want[w++] = '"';
                want[w] = '\0';
                canon_of(cJSON_CreateString(in), want);
            }
}

static void test_canonical_messages(void **state)
{
    (void)state;
    /* Chat: only role, content, tool_calls (id, name, arguments), tool_call_id. */
    messages_are(XV_SESSION_REQ_CHAT,
                 "{\"messages\":[{\"role\":\"system\",\"content\":\"S\",\"name\":\"n\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                 "{\"type\":\"text\",\"text\":\"b\"}]},"
                 "{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":"
                 "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                 "\"arguments\":\"{\\\"x\\\": 1}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                 "{\"url\":\"u\",\"detail\":\"low\"}},{\"type\":\"text\",\"text\":\"t\"}]},"
                 "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[]}]}",
                 0,
                 "[{\"content\":\"S\",\"role\":\"system\"},{\"content\":\"ab\",\"role\":\"user\"},"
                 "{\"role\":\"assistant\",\"tool_calls\":[{\"arguments\":\"{\\\"x\\\": 1}\","
                 "\"id\":\"c1\",\"name\":\"f\"}]},"
                 "{\"content\":\"r\",\"role\":\"tool\",\"tool_call_id\":\"c1\"},"
                 "{\"content\":[{\"image_url\":{\"detail\":\"low\",\"url\":\"u\"},"
                 "\"type\":\"image_url\"},{\"text\":\"t\",\"type\":\"text\"}],\"role\":\"user\"},"
                 "{\"role\":\"assistant\"}]");
    /* drop_last, and non-object messages kept as values. */
    messages_are(XV_SESSION_REQ_CHAT, "{\"messages\":[7,{\"role\":\"user\",\"content\":\"x\"}]}", 1,
                 "[7]");
    /* Responses: string input; items normalised; reasoning skipped. */
    messages_are(XV_SESSION_REQ_RESPONSES, "{\"input\":\"hello\"}", 0,
                 "[{\"content\":\"hello\",\"role\":\"user\"}]");
    messages_are(XV_SESSION_REQ_RESPONSES,
                 "{\"input\":[{\"type\":\"reasoning\",\"id\":\"r\"},"
                 "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
                 "\"output_text\",\"text\":\"hi\",\"annotations\":[]}]},"
                 "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"{}\"},"
                 "{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":\"o\"}]}",
                 0,
                 "[{\"content\":\"hi\",\"role\":\"assistant\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"arguments\":\"{}\",\"id\":\"c\",\"name\":\"f\"}]},"
                 "{\"content\":\"o\",\"role\":\"tool\",\"tool_call_id\":\"c\"}]");
    messages_are(XV_SESSION_REQ_EMBEDDINGS, "{\"input\":\"x\"}", 0, "[]");

    /* xv_session_fingerprint is SHA-256 of messages[:-1]'s canonical text. */
    uint8_t d1[32], d2[32];
    cJSON *x = parse("{\"messages\":[{\"content\":\"a\",\"role\":\"user\"},{\"role\":\"user\"}]}");
    cJSON *y = parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                     "\"a\"}],\"name\":\"ignored\"},{\"role\":\"user\",\"content\":\"other\"}]}");
    assert_int_equal(xv_session_fingerprint(XV_SESSION_REQ_CHAT, x, d1), 0);
    assert_int_equal(xv_session_fingerprint(XV_SESSION_REQ_CHAT, y, d2), 0);
    assert_memory_equal(d1, d2, 32);
    /* sha256("[{\"content\":\"a\",\"role\":\"user\"}]") */
    static const uint8_t want[32] = {
        0x51, 0x68, 0xbd, 0x63, 0x4e, 0x48, 0x45, 0x4d, 0xad, 0x7c, 0xe9, 0xe9, 0x0c, 0x52, 0x1b, 0xba,
        0x8b, 0x23, 0x34, 0x0b, 0xd1, 0xb1, 0xb4, 0xf7, 0x35, 0x48, 0x6e, 0x46, 0x96, 0x4a, 0x99, 0x6a
    };
    assert_memory_equal(d1, want, 32);
    cJSON *one = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    assert_int_equal(xv_session_fingerprint(XV_SESSION_REQ_CHAT, one, d1), XV_E_PARSE);
    assert_int_equal(xv_session_fingerprint(XV_SESSION_REQ_COMPLETIONS, x, d1), XV_E_PARSE);
    cJSON_Delete(x);
    cJSON_Delete(y);
    cJSON_Delete(one);
}


/* --------------------------------------------------------------- main */

/* xv_session_reply_new builds by hand, in one block, the tree cJSON's own
 * API would build: the same printed JSON, the same child links. */
static cJSON *reply_reference(const char *content, size_t len,
                              const struct xv_session_tool_call *calls, size_t n)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "assistant");
    if (content) {
        char *t = strndup(content, len);
        cJSON_AddStringToObject(m, "content", t);
        free(t);
    } else {
        cJSON_AddNullToObject(m, "content");
    }
    if (n) {
        cJSON *arr = cJSON_AddArrayToObject(m, "tool_calls");
        for (size_t i = 0; i < n; i++) {
            cJSON *tc = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, tc);
            char *a = strndup(calls[i].arguments ? calls[i].arguments : "",
                              calls[i].arguments ? calls[i].arguments_len : 0);
            cJSON_AddStringToObject(tc, "id", calls[i].id ? calls[i].id : "");
            cJSON_AddStringToObject(tc, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(tc, "function");
            cJSON_AddStringToObject(fn, "name", calls[i].name ? calls[i].name : "");
            cJSON_AddStringToObject(fn, "arguments", a);
            free(a);
        }
    }
    return m;
}

static void assert_links(const cJSON *v)
{
    for (; v; v = v->next) {
        if (v->child) {
            const cJSON *last = v->child;
            while (last->next)
                last = last->next;
            assert_ptr_equal(v->child->prev, last);
            assert_links(v->child);
        }
    }
}

static void test_reply_block(void **state)
{
    (void)state;
    struct xv_session_tool_call calls[3] = {
        { "call_1", "get_weather", "{\"city\":\"Paris\"}xyz", 16 },
        { NULL, NULL, NULL, 0 },
        { "c3", "f", "a\0b", 3 },
    };
    struct { const char *content; size_t len; size_t n; } cases[] = {
        { "Hello.", 6, 0 }, { NULL, 0, 1 }, { "Let me check.", 13, 3 },
        { "cut\0here", 8, 2 }, { "", 0, 0 }, { "long", 2, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *mine = xv_session_reply_new(cases[i].content, cases[i].len, calls, cases[i].n);
        cJSON *ref = reply_reference(cases[i].content, cases[i].len, calls, cases[i].n);
        assert_non_null(mine);
        char *a = cJSON_PrintUnformatted(mine), *b = cJSON_PrintUnformatted(ref);
        assert_string_equal(a, b);
        assert_true(cJSON_Compare(mine, ref, 1));
        assert_links(mine);
        free(a);
        free(b);
        cJSON_Delete(ref);
        xv_session_reply_free(mine);
    }
}

/* resolve leaves the conversation's state only when it fingerprinted the
 * request (no header or env id, no previous_response_id or user hit), and
 * resets it otherwise; a stale valid state is never left behind. */
static void test_convo_state(void **state)
{
    (void)state;
    struct xv_session_config cfg = { .max_sessions = 100 };
    struct xv_session_store *s = xv_session_store_new(&cfg);
    assert_non_null(s);
    struct xv_session_convo cv;
    memset(&cv, 0x5a, sizeof cv);
    struct xv_session_resolved r;
    cJSON *one = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cJSON *two = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                       "{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_non_null(one);
    assert_non_null(two);
    struct xv_session_request rq = { .type = XV_SESSION_REQ_CHAT, .body = two, .convo = &cv };
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(cv.valid, 1);
    assert_int_equal(cv.n, 2);
    rq.body = one;
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(cv.valid, 1);
    assert_int_equal(cv.n, 1);
    /* a header id: nothing fingerprinted, the earlier state reset */
    const char *h = "7d5c3f0e-8a4b-4c2d-9e1f-0a1b2c3d4e5f";
    rq.header_id = h;
    rq.header_id_len = strlen(h);
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(cv.valid, 0);
    /* a completions request: not a conversation */
    rq.header_id = NULL;
    rq.type = XV_SESSION_REQ_COMPLETIONS;
    cv.valid = 1;
    assert_int_equal(xv_session_store_resolve(s, &rq, &r), 0);
    assert_int_equal(cv.valid, 0);
    cJSON_Delete(one);
    cJSON_Delete(two);
    xv_session_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_json),
        cmocka_unit_test(test_escape_positions),
        cmocka_unit_test(test_canonical_messages),
        cmocka_unit_test(test_reply_block),
        cmocka_unit_test(test_convo_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
