/*
 * Unit tests for conn/: bodies nothing reads (issue 9). A response to a
 * request the agent does not inspect is framed, not inflated, and its body
 * of known length is handed to the app as read, all but its last byte
 * counted off unparsed (conn.c body_pass); a request body nothing reads is
 * not inflated either. Neither may leave the stream uninspected for the API
 * calls after it.
 */
#include "conn_harness.h"
#include "xv_http.h"

/* "compressed body " x 20, gzipped (41 bytes; inflates to 320) */
static const char GZ[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff\x4b\xce\xcf\x2d\x28\x4a"
                         "\x2d\x2e\x4e\x4d\x51\x48\xca\x4f\xa9\x54\x48\x1e\xe5\x93\xc4\x07"
                         "\x00\x75\x2c\x64\xe4\x40\x01\x00\x00";

/* The read fast path (conn.c body_pass): a passed-through body of known
 * length is read at most all but its last byte at a time and handed over
 * unparsed; its last byte ends the message on the full path and the next
 * call on the stream is stamped. An inspected call's body never takes it. */
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
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &f), hl + 10);
    assert_int_equal(f.asked, sizeof buf); /* a head: the full path */
    memcpy(got, buf, (size_t)hl + 10);
    f.len = rl;
    size_t at = (size_t)hl + 10;
    long r = xv_conn_rx(c, buf, 600, fake_read, &f);
    assert_int_equal(r, 600);
    assert_int_equal(f.asked, 600);
    memcpy(got + at, buf, 600), at += 600;
    r = xv_conn_rx(c, buf, sizeof buf, fake_read, &f); /* all but the last byte */
    assert_int_equal(r, 1000 - 10 - 600 - 1);
    assert_int_equal(f.asked, (size_t)r);
    memcpy(got + at, buf, (size_t)r), at += (size_t)r;
    r = xv_conn_rx(c, buf, sizeof buf, fake_read, &f); /* the last byte, full path */
    assert_int_equal(r, 1);
    assert_int_equal(f.asked, sizeof buf);
    got[at++] = buf[0];
    assert_int_equal(at, rl);
    assert_memory_equal(got, resp, rl);
    /* A gzip body nothing reads is not inflated (framed only): the fast path
     * too, and the stream stays inspected after it. */
    hl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                  "Content-Length: %zu\r\n\r\n", sizeof GZ - 1);
    memcpy(resp + hl, GZ, sizeof GZ - 1);
    send_request(c, "/v1/models", 0);
    struct fake z = { .data = resp, .len = (size_t)hl + sizeof GZ - 1, .split = (size_t)hl + 1,
                      .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &z), hl + 1);
    assert_int_equal(xv_conn_rx(c, buf + hl + 1, sizeof buf - 64, fake_read, &z), sizeof GZ - 3);
    assert_int_equal(z.asked, sizeof GZ - 3); /* all but the last byte: the fast path */
    assert_int_equal(xv_conn_rx(c, buf + hl + sizeof GZ - 2, 64, fake_read, &z), 1);
    assert_memory_equal(buf, resp, z.len);
    assert_false(xv_conn_is_pass(c));
    char *chat = make_response("");
    send_request(c, "/v1/chat/completions", 0);
    size_t chl = (size_t)(strstr(chat, "\r\n\r\n") - chat) + 4, n1, n2;
    struct fake part = { .data = chat, .len = chl + 10, .eof_errno = 1 };
    char *head = read_all(c, &part, 4096, &n1); /* the stamped head, 10 body bytes */
    struct fake rest = { .data = chat + chl + 10, .len = strlen(chat) - chl - 10, .eof_errno = 1 };
    assert_int_equal(xv_conn_rx(c, buf, sizeof buf, fake_read, &rest), (long)rest.len);
    assert_int_equal(rest.asked, sizeof buf); /* inspected: the full path */
    char *tail = read_all(c, &rest, 4096, &n2);
    assert_int_equal(n2, 0);
    head = realloc(head, n1 + rest.len);
    memcpy(head + n1, buf, rest.len);
    char id[TID_LEN + 1];
    check_stamped(chat, head, n1 + rest.len, id);
    char ids[1][TID_LEN + 1];
    assert_int_equal(count_records(ids, 1), 1);
    assert_string_equal(ids[0], id);
    free(tail);
    free(head);
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
    };
    return conn_test_end(dir, cmocka_run_group_tests(tests, NULL, NULL));
}
