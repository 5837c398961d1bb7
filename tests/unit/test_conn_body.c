/*
 * Unit tests for conn/: bodies nothing reads (issue 9). A response to a
 * request the agent does not inspect is framed, not inflated, and its body
 * of known length is handed to the app as read, all but its last byte
 * counted off unparsed (conn.c body_pass); a request body nothing reads is
 * not inflated either. Neither may leave the stream uninspected for the API
 * calls after it. The hooks' lean reads inside such a body keep the
 * framing.
 */
#include "conn_harness.h"
#include "xv_http.h"

/* "compressed body " x 20, gzipped (41 bytes; inflates to 320) */
static const char GZ[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff\x4b\xce\xcf\x2d\x28\x4a"
                         "\x2d\x2e\x4e\x4d\x51\x48\xca\x4f\xa9\x54\x48\x1e\xe5\x93\xc4\x07"
                         "\x00\x75\x2c\x64\xe4\x40\x01\x00\x00";

/* The read fast path (conn.c body_pass): a read into a passed-through body
 * of known length that cannot reach its end is handed over as read and
 * counted off unparsed (xv_conn_rx_skipped); the read that reaches the end
 * takes the full path, ends the message, and the next call on the stream is
 * stamped. No read is shortened. A gzip body nothing reads is framed only
 * (not inflated: a 16-byte inflation bound would otherwise trip and drop the
 * stream to pass-through). An inspected call's body never takes the path. */
static void test_body_fast_path(void **state)
{
    (void)state;
    reset_trace_file();
    static char resp[64 + 1000];
    int hl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (int i = 0; i < 1000; i++)
        resp[hl + i] = (char)('a' + i % 26);
    size_t rl = (size_t)hl + 1000;
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    send_request(c, "/v1/models", 0);
    char buf[4096], got[sizeof resp];
    struct fake f = { .data = resp, .len = (size_t)hl + 10, .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &f), hl + 10); /* a head */
    assert_int_equal(xv_conn_rx_skipped(c), 0);
    memcpy(got, buf, (size_t)hl + 10);
    f.len = rl;
    size_t at = (size_t)hl + 10;
    static const size_t reads[] = { 600, 389, 4096 }; /* 990 left: fast, fast, full */
    static const uint64_t skipped[] = { 600, 989, 989 };
    for (int i = 0; i < 3; i++) {
        long r = xv_conn_rx(c, buf, reads[i], fake_read, &f);
        assert_int_equal(f.asked, reads[i]); /* never shortened */
        assert_int_equal(r, i < 2 ? (long)reads[i] : 1);
        assert_int_equal(xv_conn_rx_skipped(c), skipped[i]);
        memcpy(got + at, buf, (size_t)r), at += (size_t)r;
    }
    assert_int_equal(at, rl);
    assert_memory_equal(got, resp, rl);
    xv_http_set_inflate_limits(16, 0);
    hl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                  "Content-Length: %zu\r\n\r\n", sizeof GZ - 1);
    memcpy(resp + hl, GZ, sizeof GZ - 1);
    send_request(c, "/v1/models", 0);
    struct fake z = { .data = resp, .len = (size_t)hl + sizeof GZ - 1, .split = (size_t)hl + 1,
                      .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &z), hl + 1);
    assert_int_equal(xv_conn_rx(c, buf + hl + 1, 30, fake_read, &z), 30);
    assert_int_equal(xv_conn_rx_skipped(c), 989 + 30);
    assert_int_equal(xv_conn_rx(c, buf + hl + 31, 64, fake_read, &z), sizeof GZ - 32);
    assert_memory_equal(buf, resp, z.len);
    assert_false(xv_conn_is_pass(c));
    xv_http_set_inflate_limits(XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO);
    char *chat = make_response("");
    send_request(c, "/v1/chat/completions", 0);
    struct fake g = { .data = chat, .len = strlen(chat), .eof_errno = 1 };
    size_t n;
    char *out = read_all(c, &g, 8, &n); /* 8-byte reads: each shorter than the body left */
    char id[TID_LEN + 1];
    check_stamped(chat, out, n, id);
    free(out);
    assert_int_equal(xv_conn_rx_skipped(c), 989 + 30);
    char line[4096];
    first_record(line, sizeof line);
    assert_non_null(strstr(line, "\"response_content\":\"hello there\""));
    assert_non_null(strstr(line, id));
    free(chat);
    xv_conn_unref(c);
}

/* Lean reads (xv_conn_lean_*, the TLS hooks' bulk path): a fast-path read
 * inside a passing body opens a credit of the bytes left; a read the credit
 * covers never reaches the body's end; bytes read lean are counted off the
 * parser at the next locked entry, so the body still ends where it ends and
 * the API call after it is stamped (without the settle the parser would
 * still wait for 500 body bytes and take the chat response for them). The
 * credit is never open for a body the agent reads, nor after the end. */
static void test_lean_reads(void **state)
{
    (void)state;
    reset_trace_file();
    static char resp[64 + 1000];
    int hl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (int i = 0; i < 1000; i++)
        resp[hl + i] = (char)('A' + i % 26);
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    send_request(c, "/download", 0);
    char buf[4096];
    struct fake f = { .data = resp, .len = (size_t)hl + 10, .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &f), hl + 10);
    assert_false(xv_conn_lean_ok(c, 0)); /* the head took the full path */
    f.len = (size_t)hl + 1000;
    assert_int_equal(xv_conn_rx(c, buf, 100, fake_read, &f), 100); /* fast: 890 left */
    assert_true(xv_conn_lean_ok(c, 889));
    assert_false(xv_conn_lean_ok(c, 890)); /* could reach the end */
    /* the hook's own real read of 500 bytes */
    f.pos += 500;
    xv_conn_lean_done(c, 500);
    assert_true(xv_conn_lean_ok(c, 389));
    assert_false(xv_conn_lean_ok(c, 390));
    assert_int_equal(xv_conn_rx_skipped(c), 100 + 500); /* settled: credit closed */
    assert_false(xv_conn_lean_ok(c, 0));
    xv_conn_lean_done(c, 0); /* a reader racing the settle: leaves it closed */
    assert_false(xv_conn_lean_ok(c, 0));
    long r = xv_conn_rx(c, buf, sizeof buf, fake_read, &f); /* the end: full path */
    assert_int_equal(r, 390);
    assert_memory_equal(buf, resp + hl + 610, 390);
    assert_false(xv_conn_lean_ok(c, 0));
    /* an inspected call's body opens no credit */
    char *chat = make_response("");
    send_request(c, "/v1/chat/completions", 0);
    struct fake g = { .data = chat, .len = strlen(chat), .eof_errno = 1 };
    size_t n;
    char *out = read_all(c, &g, 8, &n);
    assert_false(xv_conn_lean_ok(c, 0));
    char id[TID_LEN + 1];
    check_stamped(chat, out, n, id);
    free(out);
    free(chat);
    xv_conn_unref(c);
}

/* A non-API request with a gzip body: not inflated (the inflation bound,
 * 16 bytes here, would trip otherwise and the stream would pass through),
 * sent as written; the API call after it on the stream is inspected. */
static void test_request_body_framed_only(void **state)
{
    (void)state;
    reset_trace_file();
    xv_http_set_inflate_limits(16, 0);
    struct xv_conn *c = xv_conn_new(XV_CONN_TLS, NULL);
    char req[256];
    int hl = snprintf(req, sizeof req, "POST /upload HTTP/1.1\r\nHost: h\r\n"
                      "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", sizeof GZ - 1);
    memcpy(req + hl, GZ, sizeof GZ - 1);
    wire_reset();
    xv_conn_tx(c, req, (size_t)hl + sizeof GZ - 1);
    assert_int_equal(g_wire_len, (size_t)hl + sizeof GZ - 1);
    assert_memory_equal(g_wire, req, g_wire_len);
    assert_false(xv_conn_is_pass(c));
    expect_unchanged(c, "HTTP/1.1 204 No Content\r\n\r\n", 0, 1);
    send_request(c, "/v1/chat/completions", 0);
    char *chat = make_response("");
    char id[TID_LEN + 1];
    expect_stamped(c, chat, 0, id);
    free(chat);
    xv_conn_unref(c);
    xv_http_set_inflate_limits(XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO);
}

int main(void)
{
    char dir[200];
    conn_test_begin(dir, sizeof dir, "test_conn_body");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_fast_path),
        cmocka_unit_test(test_request_body_framed_only),
        cmocka_unit_test(test_lean_reads),
    };
    return conn_test_end(dir, cmocka_run_group_tests(tests, NULL, NULL));
}
