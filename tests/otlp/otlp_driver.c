/*
 * otlp_driver.c — pushes synthetic trace records through the real exporter
 * (xv_exp_init / xv_exp_push / xv_exp_shutdown) with whatever OTEL_* and
 * XENOVIA_* environment the test gives it, then prints one JSON line:
 *   {"pid":…, "records":[{"trace_id","name","parent"}…], "stats":{…},
 *    "shutdown_ms":…}
 * so that run_e2e.py can check every record against what the mock
 * collector received.
 *
 * Options: --calls N  --tag T  --steps-every K (a tool step after every
 * K-th call)  --timeout-ms T (export timeout)  --file PATH (explicit trace
 * file)  --flush-each (one flush per record: one request each)
 * --phase (push half, flush, print "PHASE1", wait for a line on stdin,
 * push the rest)  --fork (after pushing, fork: the child pushes one record
 * of its own and prints its own line)  --exit-flush (xv_exp_flush(timeout)
 * before the shutdown, as the preload's exit path does)  --queue-max N (ring
 * size: a small one sends pushes down the direct path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_exporter.h"

static cJSON *g_out;               /* the records array printed at the end */

static void hexid(char out[33])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        exit(3);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* The same id as records spell it: 8-4-4-4-12 (RFC 4122 layout). */
static void uuid_of(const char hex[33], char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static void stamp(cJSON *r, const char *key, uint64_t ns)
{
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[48];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%06uZ", (unsigned)((ns / 1000u) % 1000000u));
    cJSON_AddStringToObject(r, key, buf);
}

static void note(const char *tid, const char *name, const char *parent)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "trace_id", tid);
    cJSON_AddStringToObject(o, "name", name);
    if (parent)
        cJSON_AddStringToObject(o, "parent", parent);
    cJSON_AddItemToArray(g_out, o);
}

static const char *TYPES[] = { "chat_completions", "responses", "embeddings", "completions" };
static const char *OPS[] = { "chat", "chat", "embeddings", "text_completion" };

static void push_call(const char *tag, int i, int steps_every)
{
    char tid[33], tuuid[37], name[128], sess[64];
    hexid(tid);
    uuid_of(tid, tuuid);
    /* Both spellings a record may hold: hyphenated UUIDs (today's records)
     * on even calls, 32 hex digits (older spools) on odd ones. */
    int uuid = i % 2 == 0;
    cJSON *r = cJSON_CreateObject();
    uint64_t now = xv_now_wall_ns();
    snprintf(sess, sizeof sess, "sess-%s", tag);
    cJSON_AddStringToObject(r, "trace_id", uuid ? tuuid : tid);
    cJSON_AddStringToObject(r, "session_id", sess);
    cJSON_AddNumberToObject(r, "session_turn", i + 1);
    cJSON_AddStringToObject(r, "provider", "openai");
    cJSON_AddStringToObject(r, "server_address", "api.openai.com");
    cJSON_AddNumberToObject(r, "server_port", 443);
    stamp(r, "start_time", now - 250000000u);
    stamp(r, "end_time", now);
    cJSON_AddNumberToObject(r, "latency_ms", 250.5);
    cJSON_AddStringToObject(r, "request_type", TYPES[i % 4]);
    cJSON_AddStringToObject(r, "model", "gpt-4o-mini");
    cJSON_AddBoolToObject(r, "stream", i % 2);
    cJSON_AddStringToObject(r, "response_model", "gpt-4o-mini-2024-07-18");
    cJSON_AddStringToObject(r, "response_id", "chatcmpl-x");
    if (i % 3) {
        cJSON_AddNumberToObject(r, "tokens_in", 10 + i);
        cJSON_AddNumberToObject(r, "tokens_out", 20 + i);
    }
    cJSON *fr = cJSON_AddArrayToObject(r, "finish_reasons");
    cJSON_AddItemToArray(fr, cJSON_CreateString("stop"));
    cJSON_AddNumberToObject(r, "status_code", i % 7 == 6 ? 500 : 200);
    if (i % 7 == 6)
        cJSON_AddStringToObject(r, "error", "upstream answered 500");
    cJSON_AddStringToObject(r, "xv_tag", tag);
    cJSON_AddNumberToObject(r, "xv_index", i);
    cJSON_AddNumberToObject(r, "pid", getpid());
    snprintf(name, sizeof name, "%s gpt-4o-mini", OPS[i % 4]);
    note(tid, name, NULL);
    xv_exp_push(r);
    if (steps_every > 0 && i % steps_every == 0) {
        char sid[33], suuid[37];
        hexid(sid);
        uuid_of(sid, suuid);
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "trace_id", uuid ? suuid : sid);
        /* records name the call parent_trace_id; older ones parent_call_trace_id */
        cJSON_AddStringToObject(s, uuid ? "parent_trace_id" : "parent_call_trace_id",
                                uuid ? tuuid : tid);
        cJSON_AddStringToObject(s, "step_type", "tool_call");
        cJSON_AddStringToObject(s, "session_id", sess);
        stamp(s, "start_time", now);
        cJSON_AddStringToObject(s, "call_id", "call_1");
        cJSON_AddStringToObject(s, "tool_name", "get_weather");
        cJSON_AddStringToObject(s, "status", "requested");
        cJSON_AddStringToObject(s, "xv_tag", tag);
        note(uuid ? suuid : sid, "execute_tool get_weather", tid);
        xv_exp_push(s);
    }
}

static void report(uint64_t shutdown_ns)
{
    struct xv_exp_stats st;
    xv_exp_get_stats(&st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddItemToObject(o, "records", g_out);
    cJSON *s = cJSON_AddObjectToObject(o, "stats");
    cJSON_AddNumberToObject(s, "pushed", (double)st.pushed);
    cJSON_AddNumberToObject(s, "written", (double)st.written);
    cJSON_AddNumberToObject(s, "failed", (double)st.failed);
    cJSON_AddNumberToObject(s, "direct", (double)st.direct);
    cJSON_AddNumberToObject(s, "otlp_sent", (double)st.otlp_sent);
    cJSON_AddNumberToObject(s, "otlp_spooled", (double)st.otlp_spooled);
    cJSON_AddNumberToObject(s, "otlp_replayed", (double)st.otlp_replayed);
    cJSON_AddNumberToObject(s, "otlp_dropped", (double)st.otlp_dropped);
    cJSON_AddNumberToObject(o, "shutdown_ms", (double)shutdown_ns / 1e6);
    char *t = cJSON_PrintUnformatted(o);
    printf("%s\n", t);
    fflush(stdout);
    free(t);
    cJSON_Delete(o);
    g_out = NULL;
}

static int g_exit_flush;           /* --exit-flush: flush(timeout) first, as the preload's exit does */
static uint64_t g_timeout_ms;

static uint64_t timed_shutdown(void)
{
    uint64_t t0 = xv_now_mono_ns();
    if (g_exit_flush)
        xv_exp_flush(g_timeout_ms);
    xv_exp_shutdown();
    return xv_now_mono_ns() - t0;
}

int main(int argc, char **argv)
{
    int calls = 10, steps_every = 0, flush_each = 0, phase = 0, do_fork = 0;
    uint64_t timeout_ms = 2000;
    size_t queue_max = 4096;
    const char *tag = "t", *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
            tag = argv[++i];
        else if (!strcmp(argv[i], "--steps-every") && i + 1 < argc)
            steps_every = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--file") && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(argv[i], "--flush-each"))
            flush_each = 1;
        else if (!strcmp(argv[i], "--phase"))
            phase = 1;
        else if (!strcmp(argv[i], "--fork"))
            do_fork = 1;
        else if (!strcmp(argv[i], "--exit-flush"))
            g_exit_flush = 1;
        else if (!strcmp(argv[i], "--queue-max") && i + 1 < argc)
            queue_max = (size_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "otlp_driver: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    g_out = cJSON_CreateArray();
    g_timeout_ms = timeout_ms;
    struct xv_exp_config ec = { .trace_file = file, .timeout_ms = timeout_ms, .queue_max = queue_max };
    if (xv_exp_init(&ec) != 0)
        return 4;
    int first = phase ? calls / 2 : calls;
    for (int i = 0; i < first; i++) {
        push_call(tag, i, steps_every);
        if (flush_each)
            xv_exp_flush(60000);
    }
    if (phase) {
        xv_exp_flush(60000);
        printf("PHASE1\n");
        fflush(stdout);
        char line[64];
        if (!fgets(line, sizeof line, stdin))
            return 5;
        for (int i = first; i < calls; i++)
            push_call(tag, i, steps_every);
    }
    if (do_fork) {
        /* No flush: the parent's records are still queued or being sent;
         * the child must not send them (the parent does). */
        xv_exp_atfork_prepare();
        pid_t p = fork();
        if (p == 0) {
            xv_exp_atfork_child();
            cJSON_Delete(g_out);
            g_out = cJSON_CreateArray();
            char ctag[64];
            snprintf(ctag, sizeof ctag, "%s-child", tag);
            push_call(ctag, 0, 0);
            report(timed_shutdown());
            _exit(0);
        }
        xv_exp_atfork_parent();
        int ws;
        waitpid(p, &ws, 0);
    }
    report(timed_shutdown());
    return 0;
}
