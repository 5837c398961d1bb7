/*
 * conn_harness.h — the fake transport and helpers shared by conn/'s unit
 * tests (test_conn.c, test_conn_body.c): a reader that hands out a canned
 * response in slices, a writer that collects what reaches the "network",
 * the chat request and response they use, and checks of the stamped bytes
 * and of the trace file the exporter writes (g_trace_path, set by main).
 *
 * Header-only: every function is static inline; include it once per test.
 */
#ifndef XV_TEST_CONN_HARNESS_H
#define XV_TEST_CONN_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_conn.h"
#include "xv_exporter.h"
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

static char g_trace_path[256];

/* ---- fake transport ------------------------------------------------------ */

struct fake {
    const char *data;
    size_t len;
    size_t pos;
    size_t split;     /* first read returns at most this many bytes (0: none) */
    size_t step;      /* later reads return at most this many (0: unlimited) */
    int eof_errno;    /* 0: return 0 at the end; else return -1 (would block) */
    int calls;
    size_t asked;     /* the length the last read was given */
};

static inline long fake_read(void *ctx, char *buf, size_t len)
{
    struct fake *f = ctx;
    f->calls++;
    f->asked = len;
    if (f->pos >= f->len)
        return f->eof_errno ? -1 : 0;
    size_t n = f->len - f->pos;
    size_t lim = (f->calls == 1 && f->split) ? f->split : f->step;
    if (lim && n > lim)
        n = lim;
    if (n > len)
        n = len;
    memcpy(buf, f->data + f->pos, n);
    f->pos += n;
    return (long)n;
}

/* Read everything the app would read, with an app buffer of `bufsz`. */
static inline char *read_all(struct xv_conn *c, struct fake *f, size_t bufsz, size_t *outlen)
{
    size_t cap = f->len + 4096, n = 0;
    char *out = malloc(cap);
    char *buf = malloc(bufsz);
    for (int guard = 0; guard < 100000; guard++) {
        long r = xv_conn_rx(c, buf, bufsz, fake_read, f);
        if (r <= 0)
            break;
        assert_true(n + (size_t)r <= cap);
        memcpy(out + n, buf, (size_t)r);
        n += (size_t)r;
    }
    free(buf);
    *outlen = n;
    return out;
}

/* ---- fake transport, TX side -------------------------------------------- */

static char g_wire[1 << 16];   /* what reached the "network" */
static size_t g_wire_len;
static int g_block_every;      /* >0: every Nth write would block once */
static int g_writes, g_waits;

static inline long fake_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    g_writes++;
    if (g_block_every && g_writes % g_block_every == 0)
        return -1;
    if (n > 100)
        n = 100; /* short writes: the engine must loop */
    assert_true(g_wire_len + n <= sizeof g_wire);
    memcpy(g_wire + g_wire_len, p, n);
    g_wire_len += n;
    return (long)n;
}

static inline int fake_wait(void *ctx, int timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    g_waits++;
    return 0;
}

static inline void wire_reset(void)
{
    g_block_every = 0; /* a failed test must not leave its transport behind */
    g_wire_len = 0;
    g_writes = g_waits = 0;
}

/* The app writes p[0..n); every byte must be accepted. A plain stream
 * queues what a would-block write did not take (it never waits): a write
 * then reports would-block until the queue is flushed, as the hooks do;
 * the helper flushes like them, and drains the queue at the end. */
static inline void xv_conn_tx(struct xv_conn *c, const char *p, size_t n)
{
    size_t off = 0;
    for (int guard = 0; off < n && guard < 100000; guard++) {
        long r = xv_conn_tx_write(c, p + off, n - off, fake_write, fake_wait, NULL);
        if (r == -1) {
            xv_conn_tx_flush(c, fake_write, NULL);
            continue;
        }
        assert_true(r > 0);
        off += (size_t)r;
    }
    assert_int_equal(off, n);
    for (int guard = 0; guard < 1000 && xv_conn_tx_flush(c, fake_write, NULL) == -1; guard++)
        ;
}

/* ---- helpers ------------------------------------------------------------- */

static const char *REQ_BODY =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char *RESP_BODY =
    "{\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o-mini-2024\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";

/* The plain chat request the queue tests write: Host h, no injection. */
static inline int chat_request(char *req, size_t cap)
{
    return snprintf(req, cap,
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n%s",
                    strlen(REQ_BODY), REQ_BODY);
}

static inline void send_request(struct xv_conn *c, const char *path, size_t split)
{
    wire_reset();
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer sk-SECRET\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(REQ_BODY), REQ_BODY);
    if (split && split < (size_t)n) {
        xv_conn_tx(c, req, split);
        xv_conn_tx(c, req + split, (size_t)n - split);
    } else {
        xv_conn_tx(c, req, (size_t)n);
    }
}

static inline char *make_response(const char *extra_headers)
{
    char *r = malloc(4096);
    snprintf(r, 4096,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
             extra_headers, strlen(RESP_BODY), RESP_BODY);
    return r;
}

/* Trace ids are hyphenated lower-case v4 UUIDs (SPEC §6). */
#define TID_LEN 36

/* Count trace records written so far (flushes the exporter). */
static inline int count_records(char ids[][TID_LEN + 1], int max)
{
    xv_exp_flush(2000);
    FILE *f = fopen(g_trace_path, "r");
    if (!f)
        return 0;
    char line[1 << 16];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        assert_null(strstr(line, "sk-SECRET"));
        const char *t = strstr(line, "\"trace_id\":\"");
        if (t && n < max) {
            memcpy(ids[n], t + 12, TID_LEN);
            ids[n][TID_LEN] = '\0';
            assert_true(xv_uuid_is_v4(ids[n], TID_LEN)); /* SPEC §6 */
        }
        n++;
    }
    fclose(f);
    return n;
}

static inline void reset_trace_file(void)
{
    xv_exp_flush(2000);
    truncate(g_trace_path, 0);
}

/* The app reads `resp` through the connection and must get it unchanged. */
static inline void expect_unchanged(struct xv_conn *c, const char *resp, size_t step, int eof_errno)
{
    struct fake f = { .data = resp, .len = strlen(resp), .step = step, .eof_errno = eof_errno };
    size_t n;
    char *got = read_all(c, &f, 4096, &n);
    assert_int_equal(n, strlen(resp));
    assert_memory_equal(got, resp, n);
    free(got);
}

/* The first trace record's line (flushes the exporter). */
static inline void first_record(char *line, size_t cap)
{
    xv_exp_flush(2000);
    FILE *fp = fopen(g_trace_path, "r");
    assert_non_null(fp);
    line[0] = '\0';
    assert_non_null(fgets(line, (int)cap, fp));
    fclose(fp);
}

/* Expected app view: upstream response with our lines (session, then
 * trace) before the blank line. Returns the stamped trace id in id_out. */
static inline void check_stamped(const char *resp, const char *got, size_t gotlen, char id_out[TID_LEN + 1])
{
    const char *blank = strstr(resp, "\r\n\r\n");
    size_t head = (size_t)(blank - resp) + 2; /* through the last header's CRLF */
    size_t sline = strlen("X-Xenovia-Session-Id: ") + 36 + 2;
    size_t tline = strlen("X-Xenovia-Trace-Id: ") + TID_LEN + 2;
    assert_int_equal(gotlen, strlen(resp) + sline + tline);
    assert_memory_equal(got, resp, head);
    assert_memory_equal(got + head, "X-Xenovia-Session-Id: ", 22);
    assert_memory_equal(got + head + sline, "X-Xenovia-Trace-Id: ", 20);
    memcpy(id_out, got + head + sline + 20, TID_LEN);
    id_out[TID_LEN] = '\0';
    assert_true(xv_uuid_is_v4(id_out, TID_LEN)); /* RFC 4122 v4, hyphenated lower case */
    assert_memory_equal(got + head + sline + tline, resp + head, strlen(resp) - head);
}

/* The app reads `resp`, the answer to the call just sent, in slices of
 * `step` bytes (0: whole) and must get it stamped; its trace id in id_out. */
static inline void expect_stamped(struct xv_conn *c, const char *resp, size_t step,
                                  char id_out[TID_LEN + 1])
{
    struct fake f = { .data = resp, .len = strlen(resp), .step = step, .eof_errno = 1 };
    size_t n;
    char *got = read_all(c, &f, 4096, &n);
    check_stamped(resp, got, n, id_out);
    free(got);
}

/* A test program's set-up: a swept temp dir holding the trace file, the
 * exporter writing it, conn/'s configuration (process name `process`). */
static inline void conn_test_begin(char *dir, size_t cap, const char *process)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "xv-%s-", process);
    assert_non_null(xv_test_mkdtemp(dir, cap, prefix)); /* $TMPDIR: swept */
    snprintf(g_trace_path, sizeof g_trace_path, "%s/traces.jsonl", dir);
    struct xv_exp_config ec = { .trace_file = g_trace_path, .timeout_ms = 2000, .queue_max = 4096 };
    xv_exp_init(&ec);
    struct xv_conn_config cc = {
        .body_max = 1 << 20, .capture_max = 16384, .capture_content = 1, .head_max = 65536,
        .process = process, .hold_max = 1 << 20, .write_timeout_ms = 1000,
    };
    xv_conn_configure(&cc);
}

/* Its end: the exporter stopped, the dir removed (after the secret sweep
 * under ctest has read it); rc, the tests' result, passed through. */
static inline int conn_test_end(const char *dir, int rc)
{
    xv_exp_shutdown();
    xv_test_rmdir(dir);
    return rc;
}

#endif
