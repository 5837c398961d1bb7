/*
 * test_session_fpcache.c — unit_session_fpcache: a thread's last hashed
 * history (session/fpcache.c) never changes a digest. Every request of a
 * scripted sequence — a conversation going on turn after turn, a retry, an
 * edit in the middle of the history, a shortened history, another
 * conversation, long and escaped texts, Responses input items — gets
 * fps.last, fps.asst and the next turn's key from the run that compares with
 * the kept history, and the same three hashed from scratch (the request
 * fingerprinted without a convo: no kept history involved; the next key
 * without the convo state; fps.last once more from the canonical text), and
 * they must be equal. Then that the kept history is used at all (a
 * continued conversation's next request takes the hash of everything it
 * repeats from the kept state), that conversations interleaved on one
 * thread each resume from their own kept history (up to XV_FPC_WAYS of
 * them; past that, digests only), that a history past XV_FPC_ENTRY_MAX is
 * not kept, and that a thread's kept bytes are given back when it exits.
 *
 * Thread safety: the thread test joins what it starts.
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

#include "session_int.h"

static cJSON *reply_of(const char *text)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "role", "assistant");
    cJSON_AddStringToObject(r, "content", text);
    return r;
}

static void add_msg(cJSON *body, const char *key, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(body, key), m);
}

static cJSON *chat(const char *system)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "m");
    cJSON_AddItemToObject(b, "messages", cJSON_CreateArray());
    add_msg(b, "messages", "system", system);
    return b;
}

/* One request checked: the kept-history run against hashing from scratch.
 * Returns the bytes this request took from a kept state. */
static uint64_t check(int type, const cJSON *body, const cJSON *reply)
{
    uint64_t before = xv_fpc_resumed_total();
    struct xv_session_convo convo;
    struct xv_session_fps got, want;
    int rc = xv_session_request_fps(type, body, &got, &convo);
    uint64_t resumed = xv_fpc_resumed_total() - before;
    int rc2 = xv_session_request_fps(type, body, &want, NULL);
    assert_int_equal(rc, rc2);
    assert_int_equal(got.has_last, want.has_last);
    assert_int_equal(got.has_asst, want.has_asst);
    if (got.has_last)
        assert_memory_equal(got.last, want.last, XV_SESSION_DIGEST_LEN);
    if (got.has_asst)
        assert_memory_equal(got.asst, want.asst, XV_SESSION_DIGEST_LEN);
    if (got.has_last) {
        /* fps.last = SHA-256 of the canonical messages[:-1] (SPEC §4) */
        struct xv_buf text;
        xv_buf_init(&text, (size_t)64 << 20);
        assert_int_equal(xv_session_canonical_messages(type, body, 1, &text), 0);
        struct sha256_ctx c;
        uint8_t d[XV_SESSION_DIGEST_LEN];
        sha256_init(&c);
        sha256_update(&c, text.len, (const uint8_t *)text.data);
        sha256_digest(&c, sizeof d, d);
        assert_memory_equal(d, got.last, sizeof d);
        xv_buf_free(&text);
    }
    uint8_t k1[XV_SESSION_DIGEST_LEN], k2[XV_SESSION_DIGEST_LEN];
    int n1 = xv_session_next_fp(type, body, reply, convo.valid ? &convo : NULL, k1);
    int n2 = xv_session_next_fp(type, body, reply, NULL, k2);
    assert_int_equal(n1, n2);
    if (n1 == 0)
        assert_memory_equal(k1, k2, sizeof k1);
    return resumed;
}

static void test_digests_unchanged(void **state)
{
    (void)state;
    char big[3000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)(i % 97 == 0 ? '"' : i % 89 == 0 ? '\n' : 'a' + i % 26);
    big[sizeof big - 1] = '\0';
    cJSON *r = reply_of("sure");
    uint64_t resumed = 0;

    /* a conversation going on: each request repeats the last and adds */
    cJSON *a = chat("You are terse.");
    add_msg(a, "messages", "user", "first question");
    check(XV_SESSION_REQ_CHAT, a, r);
    for (int turn = 0; turn < 12; turn++) {
        add_msg(a, "messages", "assistant", "sure");
        char q[64];
        snprintf(q, sizeof q, "question %d with \"quotes\" and \\", turn);
        add_msg(a, "messages", "user", turn % 3 == 0 ? big : q);
        resumed += check(XV_SESSION_REQ_CHAT, a, r);
    }
    assert_true(resumed > 10 * sizeof big); /* it was used, turn after turn */

    /* a retry of the same request (a digest is wanted inside the kept bytes):
     * the prefix states were kept with the history, nothing is hashed again */
    uint64_t hashed = xv_fpc_hashed_total();
    check(XV_SESSION_REQ_CHAT, a, r);
    check(XV_SESSION_REQ_CHAT, a, r);
    assert_int_equal(xv_fpc_hashed_total() - hashed, 0);
    /* an edit in the middle of the history */
    cJSON *m3 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "messages"), 3);
    cJSON_ReplaceItemInObject(m3, "content", cJSON_CreateString("edited"));
    check(XV_SESSION_REQ_CHAT, a, r);
    /* a shorter history (the app dropped its oldest turns) */
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(a, "messages");
    cJSON_DeleteItemFromArray(msgs, 1);
    cJSON_DeleteItemFromArray(msgs, 1);
    check(XV_SESSION_REQ_CHAT, a, r);
    /* one message fewer than the kept history, otherwise equal */
    cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
    check(XV_SESSION_REQ_CHAT, a, r);
    /* another conversation, then back to a single message */
    cJSON *b = chat("You are terse.");
    add_msg(b, "messages", "user", big);
    check(XV_SESSION_REQ_CHAT, b, r);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToObject(c, "messages", cJSON_CreateArray());
    add_msg(c, "messages", "user", "alone");
    check(XV_SESSION_REQ_CHAT, c, r);

    /* Responses input items, continued */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "input", cJSON_CreateArray());
    add_msg(d, "input", "user", "hello");
    check(XV_SESSION_REQ_RESPONSES, d, r);
    for (int turn = 0; turn < 4; turn++) {
        add_msg(d, "input", "assistant", "sure");
        add_msg(d, "input", "user", big);
        check(XV_SESSION_REQ_RESPONSES, d, r);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
    cJSON_Delete(r);
}

/* Conversations interleaved on one thread (an async server): with up to
 * XV_FPC_WAYS of them each request resumes from its own conversation's
 * kept state, although they share a long system prompt; with more, the
 * least recently kept goes and the digests stay right. */
static void interleave(int convs, int turns, uint64_t *resumed_after_first)
{
    char sys[4000], q[64];
    memset(sys, 's', sizeof sys - 1);
    sys[sizeof sys - 1] = '\0';
    cJSON *c[8], *r = reply_of("fine");
    for (int k = 0; k < convs; k++) {
        c[k] = chat(sys);
        snprintf(q, sizeof q, "conversation %d opens", k);
        add_msg(c[k], "messages", "user", q);
    }
    *resumed_after_first = 0;
    for (int t = 0; t < turns; t++) {
        for (int k = 0; k < convs; k++) {
            uint64_t got = check(XV_SESSION_REQ_CHAT, c[k], r);
            if (t > 0)
                *resumed_after_first += got > sizeof sys ? 1 : 0;
            add_msg(c[k], "messages", "assistant", "fine");
            snprintf(q, sizeof q, "conversation %d, turn %d", k, t);
            add_msg(c[k], "messages", "user", q);
        }
    }
    for (int k = 0; k < convs; k++)
        cJSON_Delete(c[k]);
    cJSON_Delete(r);
}

static void test_interleaved_conversations(void **state)
{
    (void)state;
    uint64_t hits = 0;
    _Static_assert(XV_FPC_WAYS >= 4, "four conversations kept a thread");
    interleave(4, 6, &hits);
    assert_int_equal(hits, 4 * 5);         /* every later request resumed */
    interleave(XV_FPC_WAYS + 2, 4, &hits); /* more than kept: digests only */
}

/* A history past XV_FPC_ENTRY_MAX is hashed, not kept. */
static void test_too_big_not_kept(void **state)
{
    (void)state;
    size_t n = XV_FPC_ENTRY_MAX / 4 + 1;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, 'x', n);
    text[n] = '\0';
    cJSON *a = chat("s");
    for (int i = 0; i < 5; i++)
        add_msg(a, "messages", i % 2 ? "assistant" : "user", text);
    cJSON *r = reply_of("ok");
    check(XV_SESSION_REQ_CHAT, a, r);
    assert_true(xv_fpc_budget_used() <= XV_FPC_ENTRY_MAX);
    add_msg(a, "messages", "assistant", "ok");
    add_msg(a, "messages", "user", "more");
    assert_int_equal(check(XV_SESSION_REQ_CHAT, a, r), 0); /* nothing kept to resume */
    cJSON_Delete(a);
    cJSON_Delete(r);
    free(text);
}

static void *fingerprint_once(void *arg)
{
    const cJSON *body = arg;
    struct xv_session_convo convo;
    struct xv_session_fps f;
    xv_session_request_fps(XV_SESSION_REQ_CHAT, body, &f, &convo);
    return (void *)(uintptr_t)xv_fpc_budget_used();
}

/* A thread's kept history goes when the thread does. */
static void test_thread_exit_gives_back(void **state)
{
    (void)state;
    char big[20000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cJSON *a = chat("s");
    add_msg(a, "messages", "user", big);
    add_msg(a, "messages", "assistant", "ok");
    size_t before = xv_fpc_budget_used();
    pthread_t t;
    void *during = NULL;
    assert_int_equal(pthread_create(&t, NULL, fingerprint_once, a), 0);
    assert_int_equal(pthread_join(t, &during), 0);
    assert_true((size_t)(uintptr_t)during >= before + sizeof big); /* kept while it ran */
    assert_int_equal(xv_fpc_budget_used(), before);                  /* given back */
    cJSON_Delete(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests_unchanged),
        cmocka_unit_test(test_interleaved_conversations),
        cmocka_unit_test(test_too_big_not_kept),
        cmocka_unit_test(test_thread_exit_gives_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
