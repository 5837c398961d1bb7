/*
 * Unit tests for conn/: the connection state machine driven with a fake
 * transport. Every response is delivered split at every byte position and
 * read through app buffers of several sizes; the bytes the app gets must be
 * the upstream's bytes with exactly one `X-Xenovia-Trace-Id` line added to
 * inspected responses (and nothing added anywhere else), and each inspected
 * call must yield one record whose trace_id equals the stamped one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xv_conn.h"
#include "xv_exporter.h"
#include "xv_redact.h"

#include "conn_harness.h"

/* ---- tests --------------------------------------------------------------- */

static void test_stamp_every_split(void **state)
{
    (void)state;
    char *resp = make_response("");
    size_t rl = strlen(resp);
    size_t bufs[] = { 65536, 400, 64, 7 };
    for (size_t b = 0; b < sizeof bufs / sizeof bufs[0]; b++) {
        for (size_t split = 1; split <= rl; split++) {
            reset_trace_file();
            struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
            send_request(c, "/v1/chat/completions", split % 97);
            struct fake f = { .data = resp, .len = rl, .split = split, .step = 0, .eof_errno = 1 };
            size_t n;
            char *got = read_all(c, &f, bufs[b], &n);
            char id[TID_LEN + 1];
            check_stamped(resp, got, n, id);
            free(got);
            char ids[4][TID_LEN + 1];
            assert_int_equal(count_records(ids, 4), 1);
            assert_string_equal(ids[0], id);
            xv_conn_unref(c);
        }
    }
    free(resp);
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    reset_trace_file();
    char *resp = make_response("X-Other: 1\r\n");
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    send_request(c, "/openai/deployments/d1/chat/completions?api-version=1", 0);
    char id[TID_LEN + 1];
    expect_stamped(c, resp, 1, id);
    free(resp);
    xv_conn_unref(c);
    char ids[2][TID_LEN + 1];
    assert_int_equal(count_records(ids, 2), 1);
    assert_string_equal(ids[0], id);
}

static void test_non_api_untouched(void **state)
{
    (void)state;
    reset_trace_file();
    char *resp = make_response("");
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    send_request(c, "/v1/models", 0);
    struct fake f = { .data = resp, .len = strlen(resp), .split = 10, .eof_errno = 1 };
    size_t n;
    char *got = read_all(c, &f, 4096, &n);
    assert_int_equal(n, strlen(resp));
    assert_memory_equal(got, resp, n);
    free(got);
    free(resp);
    xv_conn_unref(c);
    char ids[1][TID_LEN + 1];
    assert_int_equal(count_records(ids, 1), 0);
}

static void test_not_http_is_pass(void **state)
{
    (void)state;
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    const char hello[] = "\x16\x03\x01\x00\x05hello";
    xv_conn_tx(c, hello, sizeof hello - 1);
    assert_true(xv_conn_is_pass(c));
    struct xv_conn *d = xv_conn_new(XV_CONN_PLAIN, NULL);
    xv_conn_tx(d, "SSH-2.0-OpenSSH\r\n", 17);
    assert_true(xv_conn_is_pass(d));
    struct xv_conn *e = xv_conn_new(XV_CONN_PLAIN, NULL);
    xv_conn_tx(e, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    assert_true(xv_conn_is_pass(e));
    xv_conn_unref(c);
    xv_conn_unref(d);
    xv_conn_unref(e);
}

static void test_upstream_trace_kept(void **state)
{
    (void)state;
    /* A Xenovia runtime upstream stamps both: the app sees its values
     * unchanged; the record keeps ours and notes theirs. */
    reset_trace_file();
    char *resp = make_response("X-Xenovia-Trace-Id: 0123456789abcdef0123456789abcdef\r\n"
                               "X-Xenovia-Session-Id: 11111111-2222-3333-4444-555555555555\r\n");
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    send_request(c, "/v1/chat/completions", 0);
    expect_unchanged(c, resp, 5, 1);
    free(resp);
    xv_conn_unref(c);
    char line[8192];
    first_record(line, sizeof line);
    assert_non_null(strstr(line, "\"upstream_trace_id\":\"0123456789abcdef0123456789abcdef\""));
    assert_non_null(strstr(line, "\"upstream_session_id\":\"11111111-2222-3333-4444-555555555555\""));
}

static void test_continue_then_final(void **state)
{
    (void)state;
    reset_trace_file();
    char *final = make_response("");
    char resp[8192];
    snprintf(resp, sizeof resp, "HTTP/1.1 100 Continue\r\n\r\n%s", final);
    for (size_t split = 1; split < strlen(resp); split += 3) {
        reset_trace_file();
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
        send_request(c, "/v1/chat/completions", 0);
        struct fake f = { .data = resp, .len = strlen(resp), .split = split, .eof_errno = 1 };
        size_t n;
        char *got = read_all(c, &f, 65536, &n);
        size_t interim = strlen("HTTP/1.1 100 Continue\r\n\r\n");
        assert_memory_equal(got, resp, interim);
        char id[TID_LEN + 1];
        check_stamped(final, got + interim, n - interim, id);
        free(got);
        xv_conn_unref(c);
        char ids[1][TID_LEN + 1];
        assert_int_equal(count_records(ids, 1), 1);
        assert_string_equal(ids[0], id);
    }
    free(final);
}

static void test_keep_alive_three_calls(void **state)
{
    (void)state;
    reset_trace_file();
    char *resp = make_response("");
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    char seen[3][TID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        send_request(c, "/v1/chat/completions", 0);
        struct fake f = { .data = resp, .len = strlen(resp), .step = 33, .eof_errno = 1 };
        size_t n;
        char *got = read_all(c, &f, 1024, &n);
        check_stamped(resp, got, n, seen[i]);
        free(got);
    }
    xv_conn_unref(c);
    free(resp);
    char ids[3][TID_LEN + 1];
    assert_int_equal(count_records(ids, 3), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(ids[i], seen[i]);
    assert_string_not_equal(seen[0], seen[1]);
}

static void test_eof_mid_head_released(void **state)
{
    (void)state;
    reset_trace_file();
    const char *partial = "HTTP/1.1 200 OK\r\nContent-Type: appl";
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    send_request(c, "/v1/chat/completions", 0);
    expect_unchanged(c, partial, 4, 0);
    xv_conn_unref(c);
    char line[8192];
    first_record(line, sizeof line);
    assert_non_null(strstr(line, "\"error\""));
}

static void test_malformed_response_passes(void **state)
{
    (void)state;
    reset_trace_file();
    const char *bad = "HTTP/1.1 2x0 Weird\r\nContent-Length: zz\r\n\r\nbody bytes";
    for (size_t split = 1; split < strlen(bad); split++) {
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
        send_request(c, "/v1/chat/completions", 0);
        struct fake f = { .data = bad, .len = strlen(bad), .split = split, .eof_errno = 1 };
        size_t n;
        char *got = read_all(c, &f, 4096, &n);
        assert_int_equal(n, strlen(bad));
        assert_memory_equal(got, bad, n);
        free(got);
        xv_conn_unref(c);
    }
}

static void test_would_block_keeps_hold(void **state)
{
    (void)state;
    /* Non-blocking transport: the head arrives in two bursts with a
     * would-block in between; the app sees nothing, then the stamped head. */
    reset_trace_file();
    char *resp = make_response("");
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    send_request(c, "/v1/chat/completions", 0);
    char buf[8192];
    struct fake f1 = { .data = resp, .len = 20, .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &f1), -1);
    struct fake f2 = { .data = resp + 20, .len = strlen(resp) - 20, .eof_errno = 1 };
    size_t n;
    char *got = read_all(c, &f2, sizeof buf, &n);
    char id[TID_LEN + 1];
    check_stamped(resp, got, n, id);
    free(got);
    free(resp);
    xv_conn_unref(c);
}

static void test_no_body_response_stamped(void **state)
{
    (void)state;
    /* The parser ends a body-less message inside the same feed that
     * completes its head: the stamp must still carry that call's id. */
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (size_t split = 1; split <= strlen(resp); split++) {
        reset_trace_file();
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
        send_request(c, "/v1/embeddings", 0);
        struct fake f = { .data = resp, .len = strlen(resp), .split = split, .eof_errno = 1 };
        size_t n;
        char *got = read_all(c, &f, 4096, &n);
        char id[TID_LEN + 1];
        check_stamped(resp, got, n, id);
        free(got);
        xv_conn_unref(c);
        char ids[1][TID_LEN + 1];
        assert_int_equal(count_records(ids, 1), 1);
        assert_string_equal(ids[0], id);
    }
}

static void test_request_held_then_sent_unchanged(void **state)
{
    (void)state;
    /* No injection configured: the wire gets exactly the app's bytes, and
     * nothing before the request is complete. */
    char req[2048];
    int n = chat_request(req, sizeof req);
    for (int split = 1; split < n; split++) {
        wire_reset();
        g_block_every = split % 3 ? 0 : 2;
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
        xv_conn_tx(c, req, (size_t)split);
        assert_int_equal(g_wire_len, 0);
        xv_conn_tx(c, req + split, (size_t)n - (size_t)split);
        assert_int_equal(g_wire_len, (size_t)n);
        assert_memory_equal(g_wire, req, (size_t)n);
        xv_conn_unref(c);
    }
    g_block_every = 0;
}

/* Issue 7 class 4: a held request released into a transport that would
 * block is queued, never waited for. The write that queued it is reported
 * short by its queued bytes (here all: would-block), so the app waits for
 * writability as it would without the agent; a different write reports
 * would-block too; once a flush (as the hooks do) drained the queue the
 * app's retry of the same bytes is reported written, and nothing goes out
 * twice. */
static void test_send_queue_never_waits(void **state)
{
    (void)state;
    char req[2048];
    int n = chat_request(req, sizeof req);
    wire_reset();
    g_block_every = 1; /* every real write would block */
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_write, fake_wait, NULL), -1);
    assert_int_equal(g_waits, 0);
    assert_int_equal(g_wire_len, 0);
    assert_true(xv_conn_tx_pending_any());
    assert_true(xv_conn_tx_queued(c));
    /* the app's retry while the queue is stuck: still would-block */
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_write, fake_wait, NULL), -1);
    assert_int_equal(xv_conn_tx_flush(c, fake_write, NULL), -1);
    g_block_every = 0;
    assert_int_equal(xv_conn_tx_flush(c, fake_write, NULL), 0);
    assert_false(xv_conn_tx_pending_any());
    assert_true(xv_conn_tx_queued(c)); /* the app still owes its retry */
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_write, fake_wait, NULL), n);
    assert_false(xv_conn_tx_queued(c));
    assert_int_equal(g_wire_len, (size_t)n);
    assert_memory_equal(g_wire, req, (size_t)n);
    assert_int_equal(g_waits, 0);
    xv_conn_unref(c);
}

/* A forked child drops the parent's queue and owes nothing: its own retry
 * of those bytes is a new write, as without the agent (run in a real child:
 * the fork handlers reinitialise the process-wide registry). */
static void test_fork_child_owes_nothing(void **state)
{
    (void)state;
    char req[2048];
    int n = chat_request(req, sizeof req);
    wire_reset();
    g_block_every = 1;
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_write, fake_wait, NULL), -1);
    assert_true(xv_conn_tx_queued(c));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        xv_conn_atfork_child();
        _exit(xv_conn_tx_queued(c) ? 1 : 0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(xv_conn_tx_queued(c)); /* the parent still owes it */
    g_block_every = 0;
    assert_int_equal(xv_conn_tx_flush(c, fake_write, NULL), 0);
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_write, fake_wait, NULL), n);
    assert_int_equal(g_wire_len, (size_t)n);
    xv_conn_unref(c);
}

/* OpenSSL's write model for the TLS queue test: a would-block SSL_write has
 * already taken (encrypted) a prefix of the bytes; the retry must pass at
 * least those bytes again, from the same start (with
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER the address may change), and nothing
 * else may be written before it; it then completes the whole buffer. */
static char g_tls_taken[64];
static size_t g_tls_taken_len; /* > 0: a write is pending */
static int g_tls_block;        /* the next write would block */

static long fake_tls_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    g_writes++;
    if (g_tls_taken_len) {
        /* the retry: same leading bytes, at least as many */
        assert_true(n >= g_tls_taken_len);
        assert_memory_equal(p, g_tls_taken, g_tls_taken_len);
        p += g_tls_taken_len;
        n -= g_tls_taken_len;
        if (g_tls_block)
            return -1;
        g_tls_taken_len = 0;
        memcpy(g_wire + g_wire_len, p, n);
        g_wire_len += n;
        return (long)(n + sizeof g_tls_taken);
    }
    if (g_tls_block) {
        size_t k = n < sizeof g_tls_taken ? n : sizeof g_tls_taken;
        memcpy(g_tls_taken, p, k);
        memcpy(g_wire + g_wire_len, p, k); /* sent as a record already */
        g_wire_len += k;
        g_tls_taken_len = k;
        return -1;
    }
    memcpy(g_wire + g_wire_len, p, n);
    g_wire_len += n;
    return (long)n;
}

/* Issue 7: on TLS too, a released request that would block is queued
 * (never waited for) and retried by OpenSSL's rule until it went out. */
static void test_tls_queue_retry_rule(void **state)
{
    (void)state;
    char req[2048];
    int n = chat_request(req, sizeof req);
    wire_reset();
    g_tls_taken_len = 0;
    g_tls_block = 1;
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    /* SSL_write reports all or nothing: the write that queued is would-block */
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_tls_write, fake_wait, NULL), -1);
    assert_int_equal(g_waits, 0);
    assert_true(xv_conn_tx_queued(c));
    /* the app's retry (same bytes) would block while the queue is pending */
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_tls_write, fake_wait, NULL), -1);
    assert_int_equal(xv_conn_tx_flush(c, fake_tls_write, NULL), -1);
    g_tls_block = 0;
    assert_int_equal(xv_conn_tx_flush(c, fake_tls_write, NULL), 0);
    assert_true(xv_conn_tx_queued(c)); /* drained; the retry is still owed */
    assert_int_equal(xv_conn_tx_write(c, req, (size_t)n, fake_tls_write, fake_wait, NULL), n);
    assert_false(xv_conn_tx_queued(c));
    assert_int_equal(g_waits, 0);
    /* every byte once, in order (nothing is injected in this config) */
    assert_int_equal(g_wire_len, (size_t)n);
    assert_memory_equal(g_wire, req, (size_t)n);
    xv_conn_unref(c);
}

static void test_non_api_request_streams(void **state)
{
    (void)state;
    /* A non-API request: the head is held only until complete, the body
     * streams through as written. */
    wire_reset();
    const char *head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    xv_conn_tx(c, head, strlen(head));
    assert_int_equal(g_wire_len, strlen(head));
    xv_conn_tx(c, "01234", 5);
    assert_int_equal(g_wire_len, strlen(head) + 5);
    xv_conn_tx(c, "56789", 5);
    assert_int_equal(g_wire_len, strlen(head) + 10);
    xv_conn_unref(c);
}

/* A transport that takes every byte, noting where each write ended. */
static size_t g_cuts[16];
static int g_ncuts;

static long whole_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    assert_true(g_wire_len + n <= sizeof g_wire);
    memcpy(g_wire + g_wire_len, p, n);
    g_wire_len += n;
    if (g_ncuts < 16)
        g_cuts[g_ncuts++] = g_wire_len;
    return (long)n;
}

/* A non-API request written whole leaves in one write (one TLS record), head
 * and body together; a pipelined request behind it is not merged into that
 * write; a body past the coalescing bound still goes out byte for byte. */
static void test_non_api_one_write(void **state)
{
    (void)state;
    static char big[20000 + 128];
    const char *one = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    const char *two = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    int hl = snprintf(big, sizeof big, "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 20000\r\n\r\n");
    memset(big + hl, 'x', 20000);
    const char *reqs[3] = { one, two, big };
    size_t lens[3] = { strlen(one), strlen(two), (size_t)hl + 20000 };
    for (int i = 0; i < 3; i++) {
        wire_reset();
        g_ncuts = 0;
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
        assert_int_equal(xv_conn_tx_write(c, reqs[i], lens[i], whole_write, fake_wait, NULL),
                         (long)lens[i]);
        assert_int_equal(g_wire_len, lens[i]);
        assert_memory_equal(g_wire, reqs[i], lens[i]);
        if (i == 0)
            assert_int_equal(g_ncuts, 1);
        if (i == 1) {
            assert_int_equal(g_ncuts, 2);
            assert_int_equal(g_cuts[0], strstr(two, "GET") - two);
        }
        xv_conn_unref(c);
    }
}

static void test_injected_headers(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "X-Xenovia-Session-Path: /ci/job\r\n", "X-Xenovia-Trace-Flow-Id: flow-1\r\n", NULL,
    };
    struct xv_conn_config cc = *xv_conn_get_config();
    struct xv_conn_config saved = cc;
    cc.inject_lines = lines;
    cc.inject_session = 1;
    xv_conn_configure(&cc);
    wire_reset();
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nX-Xenovia-Trace-Flow-Id: mine\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(REQ_BODY), REQ_BODY);
    xv_conn_tx(c, req, (size_t)n);
    g_wire[g_wire_len] = '\0';
    assert_non_null(strstr(g_wire, "\r\nX-Xenovia-Session-Path: /ci/job\r\n"));
    assert_non_null(strstr(g_wire, "\r\nX-Xenovia-Session-Id: "));
    /* the app's own flow id wins and is not duplicated */
    assert_non_null(strstr(g_wire, "X-Xenovia-Trace-Flow-Id: mine\r\n"));
    assert_null(strstr(g_wire, "flow-1"));
    /* body intact after the head */
    const char *blank = strstr(g_wire, "\r\n\r\n");
    assert_string_equal(blank + 4, REQ_BODY);
    xv_conn_unref(c);
    xv_conn_configure(&saved);
}

/* Issue 7 class 2: requests pipelined in one write are each held, decided
 * and injected on their own, in order (one non-API GET between them). */
static void test_pipelined_each_injected(void **state)
{
    (void)state;
    static const char *const lines[] = { "X-Xenovia-Session-Path: /p\r\n", NULL };
    struct xv_conn_config cc = *xv_conn_get_config();
    struct xv_conn_config saved = cc;
    cc.inject_lines = lines;
    xv_conn_configure(&cc);
    wire_reset();
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    char one[1024], req[4096];
    int n1 = snprintf(one, sizeof one,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n"
                      "\r\n%s", strlen(REQ_BODY), REQ_BODY);
    int n = snprintf(req, sizeof req, "%sGET /x HTTP/1.1\r\nHost: h\r\n\r\n%s", one, one);
    assert_true(n1 > 0 && n > 0);
    xv_conn_tx(c, req, (size_t)n);
    g_wire[g_wire_len] = '\0';
    /* each API head carries the line once; the GET carries none */
    const char *p = g_wire;
    for (int i = 0; i < 2; i++) {
        const char *post = strstr(p, "POST /v1/chat/completions");
        assert_non_null(post);
        const char *end = strstr(post, "\r\n\r\n");
        const char *inj = strstr(post, "X-Xenovia-Session-Path: /p\r\n");
        assert_true(inj && inj < end);
        p = end + 4;
        if (i == 0) {
            const char *get = strstr(p, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_true(get == p + strlen(REQ_BODY));
        }
    }
    assert_int_equal(g_wire_len, (size_t)n + 2 * strlen("X-Xenovia-Session-Path: /p\r\n"));
    xv_conn_unref(c);
    xv_conn_configure(&saved);
}

static void test_bad_session_header_answered(void **state)
{
    (void)state;
    reset_trace_file();
    wire_reset();
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, NULL);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nX-Xenovia-Session-Id: nope\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(REQ_BODY), REQ_BODY);
    xv_conn_tx(c, req, (size_t)n);
    assert_int_equal(g_wire_len, 0); /* never sent */
    char buf[4096];
    struct fake f = { .data = "", .len = 0, .eof_errno = 1 };
    long r = xv_conn_rx(c, buf, sizeof buf, fake_read, &f);
    assert_true(r > 0);
    assert_int_equal(f.calls, 0); /* served without touching the transport */
    buf[r] = '\0';
    assert_true(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(buf, "X-Xenovia-Session-Id"));
    assert_non_null(strstr(buf, "\"param\":\"X-Xenovia-Session-Id\""));
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &f), 0);
    assert_true(xv_conn_synthetic_eof(c));
    xv_conn_unref(c);
    char ids[1][TID_LEN + 1];
    assert_int_equal(count_records(ids, 1), 1);
}

static void redact_eq(unsigned labels, const char *in, const char *want)
{
    struct xv_buf b;
    xv_buf_init(&b, 1 << 20);
    int changed = 0;
    assert_int_equal(xv_redact_text(labels, in, strlen(in), &b, &changed), 0);
    assert_string_equal(b.data ? b.data : "", want);
    assert_int_equal(changed, strcmp(in, want) != 0);
    xv_buf_free(&b);
}

static void test_redact_labels(void **state)
{
    (void)state;
    unsigned all = XV_REDACT_URL | XV_REDACT_EMAIL | XV_REDACT_CREDITCARD | XV_REDACT_SSN |
                   XV_REDACT_PHONE | XV_REDACT_IP;
    redact_eq(XV_REDACT_EMAIL, "write a.b+c@mail.example.org now", "write [REDACTED:email] now");
    redact_eq(XV_REDACT_SSN, "ssn 078-05-1120.", "ssn [REDACTED:ssn].");
    redact_eq(XV_REDACT_PHONE, "call +1 415-555-0100 or (212) 555 0199",
              "call [REDACTED:phone] or [REDACTED:phone]");
    /* Luhn: a valid test card is redacted, the same digits off by one are not */
    redact_eq(XV_REDACT_CREDITCARD, "card 4111-1111-1111-1111", "card [REDACTED:creditcard]");
    redact_eq(XV_REDACT_CREDITCARD, "card 4111-1111-1111-1112", "card 4111-1111-1111-1112");
    redact_eq(XV_REDACT_IP, "host 10.1.2.3 and 999.1.1.1", "host [REDACTED:ip] and 999.1.1.1");
    redact_eq(XV_REDACT_URL, "see https://x.example/a?b=c, ok", "see [REDACTED:url], ok");
    /* a URL holding an address is one URL */
    redact_eq(all, "https://u:p@h.example/x mail me@x.io",
              "[REDACTED:url] mail [REDACTED:email]");
    redact_eq(all, "nothing to see", "nothing to see");
    redact_eq(XV_REDACT_EMAIL, "", "");
    char *names[] = { "email", "SSN", "bogus" };
    assert_int_equal(xv_redact_labels_from(names, 3), XV_REDACT_EMAIL | XV_REDACT_SSN);
}

/* A connection to a peer XENOVIA_HOSTS excludes passes through from its first
 * byte (nothing parsed, nothing held, one write per app write); one to an
 * allowed peer is inspected. */
static void test_excluded_peer_passes(void **state)
{
    (void)state;
    const char *req = "POST /v1/chat/completions HTTP/1.1\r\nHost: other.example\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    struct xv_conn_config cc = *xv_conn_get_config();
    struct xv_conn_config with = cc;
    with.hosts = "api.openai.com";
    xv_conn_configure(&with);
    for (int allowed = 0; allowed < 2; allowed++) {
        struct xv_conn_peer peer = { .port = 443 };
        snprintf(peer.host, sizeof peer.host, "%s", allowed ? "api.openai.com" : "other.example");
        wire_reset();
        g_ncuts = 0;
        struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, &peer);
        assert_int_equal(xv_conn_tx_write(c, req, strlen(req), whole_write, fake_wait, NULL),
                         (long)strlen(req));
        if (allowed) {
            assert_int_equal(xv_conn_mode(c), XV_CONN_HTTP);
        } else {
            assert_int_equal(xv_conn_mode(c), XV_CONN_PASS);
            assert_int_equal(g_ncuts, 1);
            assert_int_equal(g_wire_len, strlen(req));
            assert_memory_equal(g_wire, req, g_wire_len);
        }
        xv_conn_unref(c);
    }
    xv_conn_configure(&cc);
}

static void test_hosts_match(void **state)
{
    (void)state;
    assert_true(xv_conn_host_allowed(NULL, "x", 1));
    assert_true(xv_conn_host_allowed("api.openai.com", "API.OpenAI.com", 443));
    assert_false(xv_conn_host_allowed("api.openai.com", "evil.com", 443));
    assert_true(xv_conn_host_allowed("*.openai.azure.com", "me.openai.azure.com", 443));
    assert_false(xv_conn_host_allowed("*.openai.azure.com", "openai.azure.com", 443));
    assert_true(xv_conn_host_allowed("a.com, 127.0.0.1:8080", "127.0.0.1", 8080));
    assert_false(xv_conn_host_allowed("127.0.0.1:8080", "127.0.0.1", 8081));
    assert_true(xv_conn_host_allowed("[::1]:99", "::1", 99));
}

int main(void)
{
    char dir[200];
    conn_test_begin(dir, sizeof dir, "test_conn");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stamp_every_split),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_non_api_untouched),
        cmocka_unit_test(test_not_http_is_pass),
        cmocka_unit_test(test_upstream_trace_kept),
        cmocka_unit_test(test_continue_then_final),
        cmocka_unit_test(test_keep_alive_three_calls),
        cmocka_unit_test(test_eof_mid_head_released),
        cmocka_unit_test(test_malformed_response_passes),
        cmocka_unit_test(test_would_block_keeps_hold),
        cmocka_unit_test(test_no_body_response_stamped),
        cmocka_unit_test(test_request_held_then_sent_unchanged),
        cmocka_unit_test(test_send_queue_never_waits),
        cmocka_unit_test(test_tls_queue_retry_rule),
        cmocka_unit_test(test_fork_child_owes_nothing),
        cmocka_unit_test(test_pipelined_each_injected),
        cmocka_unit_test(test_non_api_request_streams),
        cmocka_unit_test(test_non_api_one_write),
        cmocka_unit_test(test_injected_headers),
        cmocka_unit_test(test_bad_session_header_answered),
        cmocka_unit_test(test_redact_labels),
        cmocka_unit_test(test_excluded_peer_passes),
        cmocka_unit_test(test_hosts_match),
    };
    return conn_test_end(dir, cmocka_run_group_tests(tests, NULL, NULL));
}
