/*
 * bench_store.c — the session store's cost per call, alone: resolve and
 * record_response of one chat call, as the agent makes them, at the store's
 * default size (XV_SESSION_DEFAULT_MAX sessions).
 *
 * Two workloads, each run after a warm-up that fills the store:
 *   new   every call a new conversation (the same first-turn request, as
 *         bench_client's), so each call takes a slot and, the store being
 *         full, evicts the least recently used session — the case of CI jobs
 *         and batch scripts, and of bench/run.sh's chat client;
 *   cont  calls continuing CONVOS conversations in turn (each request the
 *         previous one plus the reply and a new user message);
 *   loop  one conversation continued LOOP_TURNS times, each call adding the
 *         reply and a LONG_BYTES message (an agent loop): cost per history byte;
 *   iloop ILOOPS such loops interleaved on one thread (an async server), each
 *         LOOP_TURNS / ILOOPS turns;
 *   long  the same LONG_MSGS-message request again and again (a retry).
 * The timed calls of loop and long are timed one by one (CPU clock reads
 * included, ~0.1-1 us a call here).
 * Between calls POLLUTE_KB (default 512) KiB of other data is read, as the
 * rest of a call (TLS, parsing, the record) would evict the store's lines.
 * Prints ns per call (CPU time of the thread) for each workload; asserts
 * nothing (bench/README.md).
 *
 * Usage: bench_store [CALLS [POLLUTE_KB]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "xv_session.h"

#define CONVOS 64
#define LONG_MSGS 40
#define LONG_BYTES 1024
#define LOOP_TURNS 200
#define ILOOPS 4 /* agent loops interleaved on one thread */

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static volatile uint64_t g_sink;

static void pollute(const uint64_t *buf, size_t words)
{
    uint64_t s = 0;
    for (size_t i = 0; i < words; i += 8) /* a line at a time */
        s += buf[i];
    g_sink += s;
}

/* One call: resolve, then record the reply. */
static void one_call(struct xv_session_store *st, const cJSON *body, const cJSON *reply)
{
    struct xv_session_convo convo;
    struct xv_session_request rq = { .type = XV_SESSION_REQ_CHAT, .body = body, .convo = &convo };
    struct xv_session_resolved out;
    if (xv_session_store_resolve(st, &rq, &out) != 0) {
        fprintf(stderr, "bench_store: resolve failed\n");
        exit(1);
    }
    struct xv_session_response rs = { .session_id = out.id, .turn = out.turn,
                                      .type = XV_SESSION_REQ_CHAT, .request = body,
                                      .response_id = "chatcmpl-bench0001", .reply = reply,
                                      .convo = &convo,
                                      .id_digest = out.has_id_digest ? out.id_digest : NULL };
    xv_session_store_record_response(st, &rs);
}

/* `nconv` agent loops interleaved on this thread (an async server's), each
 * continued `turns` times, every call adding the reply and `text`: CPU ns
 * of the calls; *bytes gets the requests' bytes together. */
static double agent_loops(struct xv_session_store *st, const cJSON *body, const cJSON *reply,
                          const char *text, int nconv, long turns, double *bytes,
                          const uint64_t *junk, size_t words)
{
    cJSON *lb[8];
    double t = 0;
    *bytes = 0;
    for (int c = 0; c < nconv; c++) {
        if (!(lb[c] = cJSON_Duplicate(body, 1)))
            exit(1);
        char first[64];
        snprintf(first, sizeof first, "conversation %d", c); /* each its own */
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddStringToObject(u, "content", first);
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lb[c], "messages"), u);
        one_call(st, lb[c], reply);
    }
    for (long i = 0; i < turns; i++) {
        for (int c = 0; c < nconv; c++) {
            cJSON *lmsgs = cJSON_GetObjectItemCaseSensitive(lb[c], "messages");
            cJSON_AddItemToArray(lmsgs, cJSON_Duplicate(reply, 1));
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "role", "user");
            cJSON_AddStringToObject(u, "content", text);
            cJSON_AddItemToArray(lmsgs, u);
            char *p = cJSON_PrintUnformatted(lb[c]);
            *bytes += p ? (double)strlen(p) : 0;
            free(p);
            pollute(junk, words);
            double t0 = cpu_ns();
            one_call(st, lb[c], reply);
            t += cpu_ns() - t0;
        }
    }
    for (int c = 0; c < nconv; c++)
        cJSON_Delete(lb[c]);
    return t;
}

static const char *first_turn =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
    "terse assistant.\"},{\"role\":\"user\",\"content\":\"Say hello to the benchmark in "
    "one short sentence, please.\"}],\"temperature\":0.2,\"max_tokens\":64}";

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 200000;
    long kb = argc > 2 ? atol(argv[2]) : 512;
    if (calls < 1 || kb < 0) {
        fprintf(stderr, "usage: %s [CALLS [POLLUTE_KB]]\n", argv[0]);
        return 2;
    }
    size_t words = (size_t)kb * 1024 / sizeof(uint64_t);
    uint64_t *junk = calloc(words ? words : 1, sizeof *junk);
    struct xv_session_store *st = xv_session_store_new(NULL);
    cJSON *body = cJSON_Parse(first_turn);
    cJSON *reply = cJSON_Parse("{\"role\":\"assistant\",\"content\":\"Hello, benchmark! "
                               "Nice to meet you.\"}");
    if (!junk || !st || !body || !reply)
        return 1;

    /* new: the store filled past its bound first, so every call evicts */
    for (long i = 0; i < XV_SESSION_DEFAULT_MAX + 1000; i++)
        one_call(st, body, reply);
    double t0 = cpu_ns();
    for (long i = 0; i < calls; i++) {
        pollute(junk, words);
        one_call(st, body, reply);
    }
    double t_new = cpu_ns() - t0;
    t0 = cpu_ns();
    for (long i = 0; i < calls; i++)
        pollute(junk, words);
    double t_pol = cpu_ns() - t0;

    /* cont: CONVOS conversations, each request growing by a turn; the
     * bodies are built first, so the timed loop holds only the calls */
    long cont_calls = calls < 20 * CONVOS ? calls : 20 * CONVOS; /* histories stay short */
    cJSON **bodies = calloc((size_t)cont_calls, sizeof *bodies);
    cJSON *conv[CONVOS];
    if (!bodies)
        return 1;
    for (int c = 0; c < CONVOS; c++) {
        conv[c] = cJSON_Duplicate(body, 1);
        one_call(st, conv[c], reply);
    }
    for (long i = 0; i < cont_calls; i++) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(conv[i % CONVOS], "messages");
        cJSON_AddItemToArray(msgs, cJSON_Duplicate(reply, 1));
        cJSON *u = cJSON_CreateObject();
        char text[64];
        snprintf(text, sizeof text, "and now turn %ld", i / CONVOS);
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddStringToObject(u, "content", text);
        cJSON_AddItemToArray(msgs, u);
        bodies[i] = cJSON_Duplicate(conv[i % CONVOS], 1);
    }
    t0 = cpu_ns();
    for (long i = 0; i < cont_calls; i++) {
        pollute(junk, words);
        one_call(st, bodies[i], reply);
    }
    double t_cont = cpu_ns() - t0;
    t0 = cpu_ns();
    for (long i = 0; i < cont_calls; i++)
        pollute(junk, words);
    t_cont -= cpu_ns() - t0;
    /* loop: one conversation continued turn after turn (an agent loop), each
     * call adding the reply and a LONG_BYTES message; long: the same
     * LONG_MSGS-message request again and again (a retried call) */
    char *text = malloc(LONG_BYTES + 1);
    if (!text)
        return 1;
    for (size_t i = 0; i < LONG_BYTES; i++)
        text[i] = (char)(i % 77 == 0 ? ' ' : 'a' + i % 23);
    text[LONG_BYTES] = '\0';
    double t_loop = 0, t_long = 0, loop_bytes = 0;
    size_t lbytes = 0;
    long loop_calls = LOOP_TURNS, long_calls = calls < 2000 ? calls : 2000;
    for (int pass = 0; pass < 2; pass++) {
        cJSON *lb = cJSON_Duplicate(body, 1);
        cJSON *lmsgs = cJSON_GetObjectItemCaseSensitive(lb, "messages");
        if (!lb)
            return 1;
        if (pass == 1)
            for (int i = 0; i < LONG_MSGS; i++) {
                cJSON *m = cJSON_CreateObject();
                cJSON_AddStringToObject(m, "role", i % 2 ? "assistant" : "user");
                cJSON_AddStringToObject(m, "content", text);
                cJSON_AddItemToArray(lmsgs, m);
            }
        one_call(st, lb, reply);
        long n = pass == 0 ? loop_calls : long_calls;
        for (long i = 0; i < n; i++) {
            if (pass == 0) {
                cJSON_AddItemToArray(lmsgs, cJSON_Duplicate(reply, 1));
                cJSON *u = cJSON_CreateObject();
                cJSON_AddStringToObject(u, "role", "user");
                cJSON_AddStringToObject(u, "content", text);
                cJSON_AddItemToArray(lmsgs, u);
                char *t = cJSON_PrintUnformatted(lb);
                loop_bytes += t ? (double)strlen(t) : 0;
                free(t);
            }
            pollute(junk, words);
            t0 = cpu_ns();
            one_call(st, lb, reply);
            double dt = cpu_ns() - t0;
            if (pass == 0)
                t_loop += dt;
            else
                t_long += dt;
        }
        if (pass == 1) {
            char *t = cJSON_PrintUnformatted(lb);
            lbytes = t ? strlen(t) : 0;
            free(t);
        }
        cJSON_Delete(lb);
    }
    double iloop_bytes = 0;
    double t_iloop = agent_loops(st, body, reply, text, ILOOPS, LOOP_TURNS / ILOOPS, &iloop_bytes,
                                 junk, words);
    free(text);

    struct xv_session_stats s;
    xv_session_store_get_stats(st, &s);
    printf("session store, %ld calls, %ld KiB read between calls:\n", calls, kb);
    printf("  new conversation per call (store full, LRU evicting): %7.0f ns per call\n",
           (t_new - t_pol) / (double)calls);
    printf("  continuing %d conversations (%ld calls):               %7.0f ns per call\n",
           CONVOS, cont_calls, t_cont / (double)cont_calls);
    printf("  an agent loop, %ld turns of %d bytes (%.0f KiB on average):   %7.0f ns per call, "
           "%.2f ns per history byte\n", loop_calls, LONG_BYTES, loop_bytes / loop_calls / 1024,
           t_loop / (double)loop_calls, t_loop / loop_bytes);
    printf("  %d agent loops interleaved, %d turns each:                %7.0f ns per call, "
           "%.2f ns per history byte\n", ILOOPS, LOOP_TURNS / ILOOPS,
           t_iloop / (double)(LOOP_TURNS / ILOOPS * ILOOPS), t_iloop / iloop_bytes);
    printf("  the same %d-message request again (%zu bytes, %ld calls): %7.0f ns per call, "
           "%.2f ns per byte\n", LONG_MSGS + 2, lbytes, long_calls,
           t_long / (double)long_calls, t_long / (double)long_calls / (double)lbytes);
    printf("  sessions %zu, keys %zu, evicted %llu\n", s.sessions, s.keys,
           (unsigned long long)s.evicted);
    for (int c = 0; c < CONVOS; c++)
        cJSON_Delete(conv[c]);
    for (long i = 0; i < cont_calls; i++)
        cJSON_Delete(bodies[i]);
    free(bodies);
    cJSON_Delete(body);
    cJSON_Delete(reply);
    xv_session_store_free(st);
    free(junk);
    return 0;
}
