/*
 * test_http.c — unit tests for the http module: the SSE parser and the
 * incremental HTTP/1.x parser.
 *
 * Invariant under test: the events a parser reports do not depend on how
 * the byte stream is sliced. Every case is fed whole, split into two feeds
 * at every byte position, and one byte at a time, and each run must produce
 * exactly the expected event log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <zlib.h>

#include "xv_http.h"

/* ---------------------------------------------------------------- logs */

struct log {
    char *s;
    size_t len, cap;
};

static void log_add(struct log *l, const char *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n + 1)
            cap *= 2;
        l->s = realloc(l->s, cap);
        assert_non_null(l->s);
        l->cap = cap;
    }
    memcpy(l->s + l->len, p, n);
    l->len += n;
    l->s[l->len] = '\0';
}

static void log_str(struct log *l, const char *s)
{
    log_add(l, s, strlen(s));
}

static __attribute__((format(printf, 2, 3))) void log_fmt(struct log *l, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    log_add(l, tmp, (size_t)n);
}

static void log_reset(struct log *l)
{
    l->len = 0;
    if (l->s)
        l->s[0] = '\0';
}

static const char *log_get(struct log *l)
{
    return l->s ? l->s : "";
}

/* ---------------------------------------------------------------- SSE */

struct sse_ctx {
    struct log log;
};

static void sse_cb(void *ud, const struct xv_sse_event *ev)
{
    struct sse_ctx *c = ud;
    log_str(&c->log, "[");
    log_add(&c->log, ev->event, ev->event_len);
    log_str(&c->log, "|");
    log_add(&c->log, ev->id, ev->id_len);
    log_str(&c->log, ev->truncated ? "|T|" : "||");
    log_add(&c->log, ev->data, ev->data_len);
    log_str(&c->log, "]");
}

/* Run one feeding plan: cuts[] are the offsets where a new feed begins. */
static void sse_run(const char *in, size_t n, size_t max_event, const size_t *cuts,
                    size_t ncuts, int finish, const char *want)
{
    struct sse_ctx c = {0};
    struct xv_sse_parser *s = xv_sse_parser_new(max_event, sse_cb, &c);
    assert_non_null(s);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        xv_sse_parser_feed(s, in + at, to - at);
        at = to;
    }
    if (finish)
        xv_sse_parser_finish(s);
    if (strcmp(log_get(&c.log), want) != 0) {
        fprintf(stderr, "SSE mismatch (cuts:");
        for (size_t i = 0; i < ncuts && i < 8; i++)
            fprintf(stderr, " %zu", cuts[i]);
        fprintf(stderr, ")\n  want: %s\n  got:  %s\n", want, log_get(&c.log));
    }
    assert_string_equal(log_get(&c.log), want);
    xv_sse_parser_free(s);
    free(c.log.s);
}

/* Whole, every two-way split, every three-way split (small inputs), one byte at a time. */
static void sse_check(const char *in, size_t n, size_t max_event, const char *want)
{
    sse_run(in, n, max_event, NULL, 0, 1, want);
    for (size_t i = 0; i <= n; i++) {
        size_t cuts[1] = {i};
        sse_run(in, n, max_event, cuts, 1, 1, want);
    }
    if (n <= 80)
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i; j <= n; j++) {
                size_t cuts[2] = {i, j};
                sse_run(in, n, max_event, cuts, 2, 1, want);
            }
    size_t *cuts = malloc((n ? n : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    sse_run(in, n, max_event, cuts, n, 1, want);
    free(cuts);
}

#define SSE_CHECK(lit, max, want) sse_check(lit, sizeof(lit) - 1, max, want)

static void test_sse_basic(void **st)
{
    (void)st;
    SSE_CHECK("data: hello\n\n", 1024, "[|||hello]");
    SSE_CHECK("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", 1024,
              "[|||{\"a\":1}][|||{\"b\":2}][|||[DONE]]");
    /* OpenAI Responses API style: named events. */
    SSE_CHECK("event: response.created\ndata: {\"x\":1}\n\n"
              "event: response.output_text.delta\ndata: {\"d\":\"hi\"}\n\n",
              1024,
              "[response.created|||{\"x\":1}][response.output_text.delta|||{\"d\":\"hi\"}]");
}

static void test_sse_line_ends(void **st)
{
    (void)st;
    SSE_CHECK("data: a\r\n\r\ndata: b\r\n\r\n", 1024, "[|||a][|||b]");
    SSE_CHECK("data: a\r\rdata: b\r\r", 1024, "[|||a][|||b]");
    SSE_CHECK("data: a\r\ndata: b\n\r\n", 1024, "[|||a\nb]");
    /* Mixed, with CR then LF as two line ends when a CR ends a line and LF an empty one. */
    SSE_CHECK("data: x\n\rdata: y\r\n\n", 1024, "[|||x][|||y]");
}

static void test_sse_multiline_comments_fields(void **st)
{
    (void)st;
    SSE_CHECK("data: one\ndata: two\ndata:three\ndata\n\n", 1024, "[|||one\ntwo\nthree\n]");
    SSE_CHECK(": keep-alive\n\n: comment\ndata: x\n: another\n\n", 1024, "[|||x]");
    SSE_CHECK("id: 7\nretry: 1000\nfoo: bar\ndata:  two spaces\n\n", 1024,
              "[|7|| two spaces]");
    /* The last event ID persists; the event type does not. */
    SSE_CHECK("event: e1\nid: 1\ndata: a\n\ndata: b\n\n", 1024, "[e1|1||a][|1||b]");
    /* No data: not dispatched; event type reset. */
    SSE_CHECK("event: lonely\n\ndata: c\n\n", 1024, "[|||c]");
    /* Empty data line dispatches an empty event. */
    SSE_CHECK("data:\n\n", 1024, "[|||]");
    /* Field without colon; colon only in value. */
    SSE_CHECK("data:a:b: c\n\n", 1024, "[|||a:b: c]");
}

static void test_sse_bom(void **st)
{
    (void)st;
    SSE_CHECK("\xEF\xBB\xBF" "data: x\n\n", 1024, "[|||x]");
    /* Only one BOM is skipped; a second one makes the field name unknown. */
    SSE_CHECK("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\ndata: y\n\n", 1024, "[|||y]");
    /* A partial BOM is content. */
    SSE_CHECK("\xEF\xBB" "data: x\n\ndata: y\n\n", 1024, "[|||y]");
}

static void test_sse_truncated(void **st)
{
    (void)st;
    SSE_CHECK("data: 0123456789\n\ndata: ok\n\n", 8, "[||T|01234567][|||ok]");
    SSE_CHECK("data: 0123\ndata: 4567\n\n", 8, "[||T|0123\n456]");
    SSE_CHECK("data: 0123\ndata: 456\n\n", 8, "[|||0123\n456]");
    SSE_CHECK("data: 01234567\ndata:\n\n", 8, "[||T|01234567]");
    /* A line far longer than the line buffer. */
    char big[400];
    memcpy(big, "data: ", 6);
    memset(big + 6, 'z', 300);
    memcpy(big + 306, "\n\ndata: end\n\n", 13);
    sse_check(big, 319, 16, "[||T|zzzzzzzzzzzzzzzz][|||end]");
}

static void test_sse_finish_drops_pending(void **st)
{
    (void)st;
    SSE_CHECK("data: a\n\ndata: pending\n", 1024, "[|||a]");
    SSE_CHECK("data: a\n\ndata: pend", 1024, "[|||a]");
    /* After finish the parser is reusable for a new stream. */
    struct sse_ctx c = {0};
    struct xv_sse_parser *s = xv_sse_parser_new(64, sse_cb, &c);
    xv_sse_parser_feed(s, "id: 1\ndata: x", 14);
    xv_sse_parser_finish(s);
    xv_sse_parser_feed(s, "\xEF\xBB\xBF" "data: y\n\n", 12);
    assert_string_equal(log_get(&c.log), "[|||y]");
    log_reset(&c.log);
    xv_sse_parser_free(s);
    free(c.log.s);
}

/* ---------------------------------------------------------------- HTTP */

struct note {
    int is_head, is_connect;
};

struct http_opts {
    int kind;
    size_t head_max;
    int eof;                  /* call xv_http_parser_eof after the last feed */
    int pause;                /* on_head returns XV_HTTP_PAUSE */
    const struct note *notes; /* response side: requests to note first */
    size_t nnotes;
};

struct http_ctx {
    struct log log;
    int in_body;
    int pause;
    int errors;
    int paused;              /* on_head returned PAUSE; feed must stop right there */
    size_t max_body_call;
};

static void http_close_body(struct http_ctx *c)
{
    if (c->in_body) {
        log_str(&c->log, "\n");
        c->in_body = 0;
    }
}

static int h_head(void *ud, const struct xv_http_head *h)
{
    struct http_ctx *c = ud;
    http_close_body(c);
    /* raw spans the block through the blank line; headers point inside it. */
    assert_true(h->raw_len >= 2 && h->raw[h->raw_len - 1] == '\n');
    assert_true(h->raw[h->raw_len - 2] == '\n' ||
                (h->raw_len >= 4 && memcmp(h->raw + h->raw_len - 4, "\r\n\r\n", 4) == 0));
    for (size_t i = 0; i < h->nheaders; i++) {
        assert_true(h->headers[i].name >= h->raw &&
                    h->headers[i].name + h->headers[i].name_len <= h->raw + h->raw_len);
        assert_true(h->headers[i].value >= h->raw &&
                    h->headers[i].value + h->headers[i].value_len <= h->raw + h->raw_len);
    }
    if (h->kind == XV_HTTP_REQUEST) {
        log_str(&c->log, "H:");
        log_add(&c->log, h->method, h->method_len);
        log_str(&c->log, " ");
        log_add(&c->log, h->target, h->target_len);
    } else {
        assert_null(h->method);
        log_fmt(&c->log, "H:%d", h->status);
    }
    log_fmt(&c->log, " 1.%d cl=%lld ch=%d ka=%d ec=%d ce=%d nb=%d raw=%zu [", h->version_minor,
            (long long)h->content_length, h->chunked, h->keep_alive, h->expect_continue,
            h->content_encoding, h->no_body, h->raw_len);
    for (size_t i = 0; i < h->nheaders; i++) {
        log_add(&c->log, h->headers[i].name, h->headers[i].name_len);
        log_str(&c->log, "=");
        log_add(&c->log, h->headers[i].value, h->headers[i].value_len);
        log_str(&c->log, ";");
    }
    log_str(&c->log, "]\n");
    if (c->pause)
        c->paused = 1;
    return c->pause ? XV_HTTP_PAUSE : XV_HTTP_OK;
}

static void h_body(void *ud, const char *p, size_t n)
{
    struct http_ctx *c = ud;
    assert_true(n > 0);
    if (n > c->max_body_call)
        c->max_body_call = n;
    if (!c->in_body) {
        log_str(&c->log, "B:");
        c->in_body = 1;
    }
    log_add(&c->log, p, n);
}

static void h_end(void *ud)
{
    struct http_ctx *c = ud;
    http_close_body(c);
    log_str(&c->log, "E\n");
}

static void h_error(void *ud, const char *why)
{
    struct http_ctx *c = ud;
    http_close_body(c);
    c->errors++;
    log_fmt(&c->log, "X:%s\n", why);
}

static const struct xv_http_callbacks h_cbs = {
    .on_head = h_head, .on_body = h_body, .on_end = h_end, .on_error = h_error};

/* One feeding plan; returns the log (caller frees). */
static char *http_run(const struct http_opts *o, const char *in, size_t n, const size_t *cuts,
                      size_t ncuts, size_t *max_body_call)
{
    struct http_ctx c = {0};
    c.pause = o->pause;
    struct xv_http_parser *p =
        xv_http_parser_new(o->kind, o->head_max ? o->head_max : 8192, &h_cbs, &c);
    assert_non_null(p);
    for (size_t i = 0; i < o->nnotes; i++)
        xv_http_parser_note_request(p, o->notes[i].is_head, o->notes[i].is_connect);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        while (at < to) {
            size_t r = xv_http_parser_feed(p, in + at, to - at);
            assert_true(r <= to - at);
            if (r < to - at)
                assert_true(c.paused);
            if (c.paused) {
                /* Logged from the returned offset: it must be just past the head. */
                http_close_body(&c);
                log_fmt(&c.log, "P@%zu\n", at + r);
                c.paused = 0;
            }
            at += r;
            if (!o->pause)
                assert_true(at == to);
        }
    }
    if (o->eof)
        xv_http_parser_eof(p);
    http_close_body(&c);
    log_fmt(&c.log, "S%d\n", xv_http_parser_state(p));
    assert_true(c.errors <= 1);
    xv_http_parser_free(p);
    if (max_body_call)
        *max_body_call = c.max_body_call;
    if (!c.log.s)
        log_str(&c.log, "");
    return c.log.s;
}

static void http_expect(const struct http_opts *o, const char *in, size_t n, const size_t *cuts,
                        size_t ncuts, const char *want)
{
    char *got = http_run(o, in, n, cuts, ncuts, NULL);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "HTTP mismatch (%zu cuts, first %zu)\n--- want:\n%s--- got:\n%s", ncuts,
                ncuts ? cuts[0] : 0, want, got);
    }
    assert_string_equal(got, want);
    free(got);
}

/* Whole, split in two at every position, and one byte at a time. */
static void http_check(const struct http_opts *o, const char *in, size_t n, const char *want)
{
    http_expect(o, in, n, NULL, 0, want);
    for (size_t i = 0; i <= n; i++) {
        size_t cuts[1] = {i};
        http_expect(o, in, n, cuts, 1, want);
    }
    size_t *cuts = malloc((n ? n : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    http_expect(o, in, n, cuts, n, want);
    free(cuts);
}

#define REQ(...) (&(struct http_opts){.kind = XV_HTTP_REQUEST, __VA_ARGS__})
#define RESP(...) (&(struct http_opts){.kind = XV_HTTP_RESPONSE, __VA_ARGS__})
#define HTTP_CHECK(opts, lit, want) http_check(opts, lit, sizeof(lit) - 1, want)

static void test_http_content_length(void **st)
{
    (void)st;
    HTTP_CHECK(REQ(0),
               "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
               "Content-Type:application/json \r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}",
               "H:POST /v1/chat/completions 1.1 cl=11 ch=0 ka=1 ec=0 ce=0 nb=0 raw=112 "
               "[Host=api.openai.com;Content-Type=application/json;Content-Length=11;]\n"
               "B:{\"a\":\"bcd\"}\nE\nS0\n");
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
               "H:200 1.1 cl=5 ch=0 ka=0 ec=0 ce=0 nb=0 raw=57 "
               "[Content-Length=5;Connection=close;]\nB:hello\nE\nS0\n");
    /* HTTP/1.0 with keep-alive; bare LF line ends; "5, 5" list form. */
    HTTP_CHECK(RESP(0),
               "HTTP/1.0 200 OK\nConnection: Keep-Alive\nContent-Length: 5, 5\n\nhello",
               "H:200 1.0 cl=5 ch=0 ka=1 ec=0 ce=0 nb=0 raw=61 "
               "[Connection=Keep-Alive;Content-Length=5, 5;]\nB:hello\nE\nS0\n");
    /* Content-Length: 0 ends the message at its head. */
    HTTP_CHECK(RESP(0), "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
               "H:200 1.1 cl=0 ch=0 ka=1 ec=0 ce=0 nb=1 raw=35 [Content-Length=0;]\nE\nS0\n");
}

static void test_http_chunked(void **st)
{
    (void)st;
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5;foo=bar\r\nhello\r\n6 ; a=\"b;c\"\r\n world\r\n"
               "000\r\nX-Trailer: t\r\nY: z\r\n\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "B:hello world\nE\nS0\n");
    /* Uppercase hex, a big chunk, no trailers; chunked wins over Content-Length. */
    HTTP_CHECK(REQ(0),
               "PUT /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n"
               "Content-Encoding: identity\r\n\r\n"
               "A\r\n0123456789\r\n0\r\n\r\n",
               "H:PUT /x 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=100 "
               "[Content-Length=3;Transfer-Encoding=gzip, chunked;Content-Encoding=identity;]\n"
               "E\nS0\n");
    HTTP_CHECK(REQ(0),
               "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
               "H:POST /c 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=48 [Transfer-Encoding=chunked;]\n"
               "B:abcdefghijklmnopqrstuvwxyz\nE\nS0\n");
}

static void test_http_keep_alive(void **st)
{
    (void)st;
    HTTP_CHECK(REQ(0),
               "POST /v1/embeddings HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
               "GET /v1/models HTTP/1.1\r\nHost: h\r\n\r\n"
               "\r\n" /* stray CRLF between messages is tolerated */
               "POST /v1/responses HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "2\r\nxy\r\n0\r\n\r\n",
               "H:POST /v1/embeddings 1.1 cl=3 ch=0 ka=1 ec=0 ce=0 nb=0 raw=51 "
               "[Content-Length=3;]\nB:abc\nE\n"
               "H:GET /v1/models 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=36 [Host=h;]\nE\n"
               "H:POST /v1/responses 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=59 "
               "[Transfer-Encoding=chunked;]\nB:xy\nE\nS0\n");
}

static void test_http_continue(void **st)
{
    (void)st;
    HTTP_CHECK(REQ(0),
               "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-Continue\r\n"
               "Content-Length: 4\r\n\r\nabcd",
               "H:POST /v1/chat/completions 1.1 cl=4 ch=0 ka=1 ec=1 ce=0 nb=0 raw=79 "
               "[Expect=100-Continue;Content-Length=4;]\nB:abcd\nE\nS0\n");
    static const struct note n1[] = {{0, 0}};
    HTTP_CHECK(RESP(.notes = n1, .nnotes = 1),
               "HTTP/1.1 100 Continue\r\n\r\n"
               "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
               "H:100 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=25 []\n"
               "H:103 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=53 [Link=</a>; rel=preload;]\n"
               "H:200 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=2;]\n"
               "B:ok\nE\nS0\n");
}

static void test_http_no_body_responses(void **st)
{
    (void)st;
    static const struct note n2[] = {{1, 0}, {0, 0}, {0, 0}, {0, 0}};
    HTTP_CHECK(RESP(.notes = n2, .nnotes = 4),
               "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
               "HTTP/1.1 204 No Content\r\n\r\n"
               "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
               "H:200 1.1 cl=1234 ch=0 ka=1 ec=0 ce=0 nb=1 raw=41 [Content-Length=1234;]\nE\n"
               "H:204 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=27 []\nE\n"
               "H:304 1.1 cl=10 ch=0 ka=1 ec=0 ce=0 nb=1 raw=49 [Content-Length=10;]\nE\n"
               "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=1;]\nB:x\nE\nS0\n");
}

static void test_http_tunnels(void **st)
{
    (void)st;
    static const struct note nc[] = {{0, 1}};
    HTTP_CHECK(RESP(.notes = nc, .nnotes = 1),
               "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01 garbage",
               "H:200 1.1 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=1 raw=39 []\nE\nS2\n");
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
               "H:101 1.1 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=1 raw=56 [Upgrade=websocket;]\nE\nS2\n");
    HTTP_CHECK(REQ(0),
               "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n\x16\x03",
               "H:CONNECT api.openai.com:443 1.1 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=1 raw=65 "
               "[Host=api.openai.com:443;]\nE\nS2\n");
    /* A refused CONNECT is an ordinary response. */
    HTTP_CHECK(RESP(.notes = nc, .nnotes = 1),
               "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno",
               "H:407 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=46 [Content-Length=2;]\nB:no\nE\nS0\n");
}

static void test_http_close_delimited(void **st)
{
    (void)st;
    HTTP_CHECK(RESP(.eof = 1),
               "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
               "data: a\n\ndata: b\n\n",
               "H:200 1.1 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=0 raw=52 "
               "[Content-Type=text/event-stream;]\nB:data: a\n\ndata: b\n\n\nE\nS0\n");
    /* Transfer-Encoding not ending in chunked: close-delimited for responses. */
    HTTP_CHECK(RESP(.eof = 1), "HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz",
               "H:200 1.0 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=0 raw=44 [Transfer-Encoding=gzip;]\nE\nS0\n");
    /* Without eof the message is still open. */
    HTTP_CHECK(RESP(0), "HTTP/1.1 200 OK\r\n\r\nabc",
               "H:200 1.1 cl=-1 ch=0 ka=0 ec=0 ce=0 nb=0 raw=19 []\nB:abc\nS1\n");
    /* eof between messages is fine. */
    HTTP_CHECK(REQ(.eof = 1), "GET / HTTP/1.1\r\n\r\n",
               "H:GET / 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=18 []\nE\nS0\n");
}

static void test_http_truncated(void **st)
{
    (void)st;
    HTTP_CHECK(RESP(.eof = 1), "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
               "H:200 1.1 cl=10 ch=0 ka=1 ec=0 ce=0 nb=0 raw=39 [Content-Length=10;]\n"
               "B:abc\nX:connection closed mid-message\nS3\n");
    HTTP_CHECK(RESP(.eof = 1), "HTTP/1.1 200 OK\r\nContent-Le",
               "X:connection closed mid-message\nS3\n");
    HTTP_CHECK(RESP(.eof = 1),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "B:abc\nX:connection closed mid-message\nS3\n");
}

static void test_http_malformed(void **st)
{
    (void)st;
    /* After the error nothing else is reported, valid or not. */
    HTTP_CHECK(REQ(0), "GARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n", "X:bad request line\nS3\n");
    HTTP_CHECK(REQ(0), "GET  / HTTP/1.1\r\n\r\n", "X:bad request line\nS3\n");
    HTTP_CHECK(REQ(0), "GET / HTTP/2.0\r\n\r\n", "X:bad request line\nS3\n");
    HTTP_CHECK(RESP(0), "HTTP/1.1 2x0 OK\r\n\r\n", "X:bad status line\nS3\n");
    HTTP_CHECK(RESP(0), "SSH-2.0-OpenSSH_9.2\r\n\r\n", "X:bad status line\nS3\n");
    HTTP_CHECK(REQ(0), "GET / HTTP/1.1\r\nHost x\r\n\r\n", "X:bad header line\nS3\n");
    HTTP_CHECK(REQ(0), "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "X:bad header name\nS3\n");
    HTTP_CHECK(REQ(0), "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
               "X:obsolete header line folding\nS3\n");
    HTTP_CHECK(REQ(0), "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "X:bad header line\nS3\n");
    HTTP_CHECK(REQ(0), "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
               "X:bad content-length\nS3\n");
    HTTP_CHECK(REQ(0), "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
               "X:bad content-length\nS3\n");
    HTTP_CHECK(REQ(0), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
               "X:bad transfer-encoding\nS3\n");
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "X:bad chunk size\nS3\n");
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "B:abc\nX:missing CRLF after chunk data\nS3\n");
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "fffffffffffffffffff\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "X:chunk size too large\nS3\n");
}

static void test_http_head_limit(void **st)
{
    (void)st;
    /* 40-byte block: fits a 40-byte limit, not a 39-byte one. */
    static const char blk[] = "GET /abc HTTP/1.1\r\nHost: example.org\r\n\r\n";
    assert_int_equal(sizeof blk - 1, 40);
    HTTP_CHECK(REQ(.head_max = 40), "GET /abc HTTP/1.1\r\nHost: example.org\r\n\r\n",
               "H:GET /abc 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=40 [Host=example.org;]\nE\nS0\n");
    HTTP_CHECK(REQ(.head_max = 39), "GET /abc HTTP/1.1\r\nHost: example.org\r\n\r\n",
               "X:header block too large\nS3\n");
    /* The limit applies per message, not per connection. */
    HTTP_CHECK(REQ(.head_max = 40),
               "GET /abc HTTP/1.1\r\nHost: example.org\r\n\r\n"
               "GET /abc HTTP/1.1\r\nHost: example.org\r\n\r\n",
               "H:GET /abc 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=40 [Host=example.org;]\nE\n"
               "H:GET /abc 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=40 [Host=example.org;]\nE\nS0\n");
    /* Trailers are bounded by head_max too. */
    HTTP_CHECK(RESP(.head_max = 50),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
               "X-Long-Trailer: 0123456789012345678901234567890123456789\r\n\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "X:trailer section too large\nS3\n");
    HTTP_CHECK(RESP(.head_max = 50),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
               "X-Short-Trailer: 0123456789\r\n\r\n",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=0 nb=0 raw=47 [Transfer-Encoding=chunked;]\n"
               "E\nS0\n");
}

static void test_http_pause(void **st)
{
    (void)st;
    /* feed returns the offset just past each head; the caller feeds the rest. */
    HTTP_CHECK(REQ(.pause = 1),
               "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
               "GET / HTTP/1.1\r\n\r\n",
               "H:POST /v1/chat/completions 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=57 "
               "[Content-Length=2;]\nP@57\nB:hi\nE\n"
               "H:GET / 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=18 []\nE\nP@77\nS0\n");
    static const struct note n1[] = {{0, 0}};
    HTTP_CHECK(RESP(.pause = 1, .notes = n1, .nnotes = 1),
               "\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
               "H:100 1.1 cl=-1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=25 []\nP@27\n"
               "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=1;]\nP@65\n"
               "B:z\nE\nS0\n");
}

/* xv_http_head_find, and that the head can be inspected during on_head. */
static int find_head_cb(void *ud, const struct xv_http_head *h)
{
    int *calls = ud;
    const struct xv_http_header *ct = xv_http_head_find(h, "content-TYPE");
    assert_non_null(ct);
    assert_int_equal(ct->value_len, 17);
    assert_memory_equal(ct->value, "text/event-stream", 17);
    /* First occurrence wins. */
    const struct xv_http_header *x = xv_http_head_find(h, "x-dup");
    assert_non_null(x);
    assert_memory_equal(x->value, "1", 1);
    assert_null(xv_http_head_find(h, "content-length"));
    assert_null(xv_http_head_find(h, "x-du"));
    (*calls)++;
    return XV_HTTP_OK;
}

static void test_http_head_find(void **st)
{
    (void)st;
    static const char msg[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                              "X-Dup: 1\r\nx-dup: 2\r\n\r\n";
    struct xv_http_callbacks cb = {.on_head = find_head_cb};
    int calls = 0;
    struct xv_http_parser *p = xv_http_parser_new(XV_HTTP_RESPONSE, 1024, &cb, &calls);
    assert_non_null(p);
    assert_int_equal(xv_http_parser_feed(p, msg, sizeof msg - 1), sizeof msg - 1);
    assert_int_equal(calls, 1);
    assert_int_equal(xv_http_parser_state(p), XV_HTTP_S_BODY);
    xv_http_parser_eof(p);
    assert_int_equal(xv_http_parser_state(p), XV_HTTP_S_HEAD);
    xv_http_parser_free(p);
}

/* The response side's request queue: more than 64 noted requests. */
static void test_http_request_queue(void **st)
{
    (void)st;
    struct note notes[70];
    for (int i = 0; i < 70; i++) {
        notes[i].is_head = 1;
        notes[i].is_connect = 0;
    }
    char msg[70 * 64];
    size_t len = 0;
    for (int i = 0; i < 65; i++)
        len += (size_t)snprintf(msg + len, sizeof msg - len,
                                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
    /* Responses 1..64 answer noted HEADs (no body); the 65th request was not
     * recorded, so its response is framed as an ordinary one. */
    char *got = http_run(RESP(.notes = notes, .nnotes = 70), msg, len, NULL, 0, NULL);
    const char *h = "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=0 nb=1 raw=38 [Content-Length=1;]\nE\n";
    size_t hl = strlen(h);
    for (int i = 0; i < 64; i++)
        assert_memory_equal(got + (size_t)i * hl, h, hl);
    assert_string_equal(got + 64 * hl,
                        "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=1;]\n"
                        "S1\n"); /* waiting for its one body byte */
    free(got);
}

/* pause_at_end: feed returns right after each message (pipelining). */
struct pae { int heads, ends; };
static int pae_head(void *ud, const struct xv_http_head *h)
{
    (void)h;
    ((struct pae *)ud)->heads++;
    return XV_HTTP_OK;
}
static void pae_end(void *ud)
{
    ((struct pae *)ud)->ends++;
}

static void test_http_pause_at_end(void **st)
{
    (void)st;
    struct pae n = { 0, 0 };
    struct xv_http_callbacks cb = { .on_head = pae_head, .on_end = pae_end };
    struct xv_http_parser *p = xv_http_parser_new(XV_HTTP_REQUEST, 65536, &cb, &n);
    xv_http_parser_pause_at_end(p, 1);
    static const char m1[] = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
    static const char m2[] = "GET /b HTTP/1.1\r\n\r\n";
    static const char m3[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nhi\r\n0\r\n\r\n";
    char all[256];
    size_t l1 = sizeof m1 - 1, l2 = sizeof m2 - 1, l3 = sizeof m3 - 1;
    memcpy(all, m1, l1);
    memcpy(all + l1, m2, l2);
    memcpy(all + l1 + l2, m3, l3);
    size_t total = l1 + l2 + l3;
    assert_int_equal(xv_http_parser_feed(p, all, total), l1);
    assert_int_equal(n.heads, 1);
    assert_int_equal(n.ends, 1);
    assert_int_equal(xv_http_parser_feed(p, all + l1, total - l1), l2); /* no body */
    assert_int_equal(n.ends, 2);
    assert_int_equal(xv_http_parser_feed(p, all + l1 + l2, l3), l3);
    assert_int_equal(n.heads, 3);
    assert_int_equal(n.ends, 3);
    /* off: one feed takes all three */
    struct pae m = { 0, 0 };
    struct xv_http_parser *q = xv_http_parser_new(XV_HTTP_REQUEST, 65536, &cb, &m);
    assert_int_equal(xv_http_parser_feed(q, all, total), total);
    assert_int_equal(m.ends, 3);
    xv_http_parser_free(p);
    xv_http_parser_free(q);
}

/* ------------------------------------------------------ compressed bodies */

/* Compress with zlib: wbits 31 = gzip, 15 = zlib, -15 = raw deflate. */
static size_t zpack(int wbits, const char *in, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

/* Text that compresses but not trivially. */
static void make_text(char *out, size_t n, unsigned seed)
{
    static const char *words[] = {"assistant ", "delta ", "{\"content\":", "\"hello\" ",
                                  "tokens ", "stream ", "0.42 ", "\n", "usage ", "model "};
    size_t at = 0;
    while (at < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 10];
        size_t l = strlen(w);
        if (l > n - at)
            l = n - at;
        memcpy(out + at, w, l);
        at += l;
    }
}

struct msgbuf {
    char *s;
    size_t len, cap;
};

static void mb_add(struct msgbuf *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2 + 64;
        m->s = realloc(m->s, m->cap);
        assert_non_null(m->s);
    }
    memcpy(m->s + m->len, p, n);
    m->len += n;
}

static void mb_str(struct msgbuf *m, const char *s)
{
    mb_add(m, s, strlen(s));
}

/* Append body as chunks of `step` bytes, with an extension now and then. */
static void mb_chunked(struct msgbuf *m, const char *body, size_t n, size_t step)
{
    char line[64];
    for (size_t at = 0, k = 0; at < n; at += step, k++) {
        size_t l = n - at < step ? n - at : step;
        snprintf(line, sizeof line, k % 3 == 1 ? "%zx;ext=1\r\n" : "%zX\r\n", l);
        mb_str(m, line);
        mb_add(m, body + at, l);
        mb_str(m, "\r\n");
    }
    mb_str(m, "0\r\nX-Checksum: none\r\n\r\n");
}

/* Response "HTTP/1.1 200 OK" + extra headers + Content-Length; returns the head length. */
static size_t mb_resp_cl(struct msgbuf *m, const char *extra, size_t body_len)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n", extra,
                     body_len);
    mb_add(m, head, (size_t)n);
    return (size_t)n;
}

static void test_http_gzip_deflate(void **st)
{
    (void)st;
    char plain[700], packed[1024], want[4096];
    make_text(plain, sizeof plain, 7);
    static const struct {
        int wbits;
        const char *ce;
        int code;
    } kinds[] = {{31, "gzip", 1}, {31, "x-gzip", 1}, {15, "deflate", 2}, {-15, "deflate", 2},
                 {31, "deflate", 2}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t pn = zpack(kinds[k].wbits, plain, sizeof plain, packed, sizeof packed);
        struct msgbuf m = {0};
        char extra[64];
        snprintf(extra, sizeof extra, "Content-Encoding: %s\r\n", kinds[k].ce);
        size_t hl = mb_resp_cl(&m, extra, pn);
        mb_add(&m, packed, pn);
        snprintf(want, sizeof want,
                 "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=%d nb=0 raw=%zu "
                 "[Content-Encoding=%s;Content-Length=%zu;]\nB:%.*s\nE\nS0\n",
                 pn, kinds[k].code, hl, kinds[k].ce, pn, (int)sizeof plain, plain);
        http_check(RESP(0), m.s, m.len, want);
        free(m.s);
    }

    /* Chunked + gzip request body, then an identity request on the same connection. */
    size_t pn = zpack(31, plain, sizeof plain, packed, sizeof packed);
    struct msgbuf m = {0};
    mb_str(&m, "POST /v1/chat/completions HTTP/1.1\r\nContent-Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    mb_chunked(&m, packed, pn, 37);
    mb_str(&m, "POST /v1/embeddings HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    snprintf(want, sizeof want,
             "H:POST /v1/chat/completions 1.1 cl=-1 ch=1 ka=1 ec=0 ce=1 nb=0 raw=90 "
             "[Content-Encoding=gzip;Transfer-Encoding=chunked;]\nB:%.*s\nE\n"
             "H:POST /v1/embeddings 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=51 "
             "[Content-Length=2;]\nB:{}\nE\nS0\n",
             (int)sizeof plain, plain);
    http_check(REQ(0), m.s, m.len, want);
    free(m.s);
}

static void test_http_gzip_members_and_reuse(void **st)
{
    (void)st;
    char a[300], b[200], pa[512], pb[512], want[4096];
    make_text(a, sizeof a, 1);
    make_text(b, sizeof b, 2);
    size_t na = zpack(31, a, sizeof a, pa, sizeof pa);
    size_t nb = zpack(31, b, sizeof b, pb, sizeof pb);
    /* One body of two gzip members (RFC 1952), then a raw-deflate message and
     * an identity one: the decoder is reused and reset per message. */
    struct msgbuf m = {0};
    size_t h1 = mb_resp_cl(&m, "Content-Encoding: gzip\r\n", na + nb);
    mb_add(&m, pa, na);
    mb_add(&m, pb, nb);
    size_t nr = zpack(-15, b, sizeof b, pb, sizeof pb);
    size_t h2 = mb_resp_cl(&m, "Content-Encoding: deflate\r\n", nr);
    mb_add(&m, pb, nr);
    size_t h3 = mb_resp_cl(&m, "", 3);
    mb_str(&m, "end");
    snprintf(want, sizeof want,
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=1 nb=0 raw=%zu "
             "[Content-Encoding=gzip;Content-Length=%zu;]\nB:%.*s%.*s\nE\n"
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=2 nb=0 raw=%zu "
             "[Content-Encoding=deflate;Content-Length=%zu;]\nB:%.*s\nE\n"
             "H:200 1.1 cl=3 ch=0 ka=1 ec=0 ce=0 nb=0 raw=%zu [Content-Length=3;]\nB:end\nE\nS0\n",
             na + nb, h1, na + nb, (int)sizeof a, a, (int)sizeof b, b, nr, h2, nr,
             (int)sizeof b, b, h3);
    http_check(RESP(0), m.s, m.len, want);
    free(m.s);
}

static void test_http_other_and_corrupt_encodings(void **st)
{
    (void)st;
    /* br: body not reported, framing kept; the next message parses. */
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nTransfer-Encoding: chunked\r\n\r\n"
               "4\r\n\x0b\x02\x80x\r\n0\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=3 nb=0 raw=69 "
               "[Content-Encoding=br;Transfer-Encoding=chunked;]\nE\n"
               "H:200 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=2;]\nB:ok\nE\nS0\n");
    /* Stacked codings count as "other". */
    HTTP_CHECK(RESP(0), "HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: 1\r\n\r\nq",
               "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=3 nb=0 raw=66 "
               "[Content-Encoding=gzip, br;Content-Length=1;]\nE\nS0\n");
    /* Not gzip at all. */
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\n"
               "not gzip!!!!",
               "H:200 1.1 cl=12 ch=0 ka=1 ec=0 ce=1 nb=0 raw=63 "
               "[Content-Encoding=gzip;Content-Length=12;]\nX:corrupt compressed body\nS3\n");
}

/* A large compressed body: output leaves in bounded chunks, every split works. */
static void test_http_large_gzip(void **st)
{
    (void)st;
    size_t plen = 300000;
    char *plain = malloc(plen);
    char *packed = malloc(plen);
    assert_non_null(plain);
    assert_non_null(packed);
    make_text(plain, plen, 99);
    size_t pn = zpack(31, plain, plen, packed, plen);
    struct msgbuf m = {0};
    size_t hl = mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);
    struct msgbuf want = {0};
    char head[256];
    snprintf(head, sizeof head,
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=1 nb=0 raw=%zu "
             "[Content-Encoding=gzip;Content-Length=%zu;]\nB:",
             pn, hl, pn);
    mb_str(&want, head);
    mb_add(&want, plain, plen);
    mb_str(&want, "\nE\nS0\n");
    mb_add(&want, "", 1);
    size_t maxcall = 0;
    char *got = http_run(RESP(0), m.s, m.len, NULL, 0, &maxcall);
    assert_string_equal(got, want.s);
    assert_true(maxcall <= 16384);
    free(got);
    for (size_t k = 1; k <= 64; k++) {
        size_t cuts[3] = {m.len * k / 130, m.len * k / 65, m.len * k / 65 + k};
        if (cuts[2] > m.len)
            cuts[2] = m.len;
        got = http_run(RESP(0), m.s, m.len, cuts, 3, NULL);
        assert_string_equal(got, want.s);
        free(got);
    }
    size_t *all = malloc(m.len * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < m.len; i++)
        all[i] = i;
    got = http_run(RESP(0), m.s, m.len, all, m.len, &maxcall);
    assert_string_equal(got, want.s);
    assert_true(maxcall <= 16384);
    free(got);
    free(all);
    free(m.s);
    free(want.s);
    free(plain);
    free(packed);
}

/* Decompression bombs (issue 7 class 5): the byte bound emits exactly
 * max_bytes then errors, whatever the feed slicing; the ratio bound stops a
 * highly compressible body soon after the floor; legitimate text under both
 * bounds is untouched; 0 disables a bound. */
static void test_http_inflate_bounds(void **st)
{
    (void)st;
    size_t plen = 4u << 20; /* 4 MiB of one letter: ratio ~1000 (no NUL: the log is a C string) */
    char *plain = malloc(plen);
    char *packed = malloc(plen);
    assert_non_null(plain);
    assert_non_null(packed);
    memset(plain, 'a', plen);
    size_t pn = zpack(31, plain, plen, packed, plen);
    struct msgbuf m = {0};
    mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);

    /* Byte bound only: exactly 100000 zero bytes reach on_body, then the error. */
    xv_http_set_inflate_limits(100000, 0);
    char *whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "X:compressed body exceeds the inflation limits"));
    assert_null(strstr(whole, "\nE\n"));
    size_t cuts[3] = {m.len / 3, m.len / 2, m.len - 1};
    char *sliced = http_run(RESP(0), m.s, m.len, cuts, 3, NULL);
    assert_string_equal(whole, sliced);
    const char *b = strstr(whole, "B:");
    assert_non_null(b);
    const char *x = strstr(b, "\nX:");
    assert_int_equal((size_t)(x - b - 2), 100000);
    free(whole);
    free(sliced);

    /* Ratio bound only: stops after the floor, long before 4 MiB. */
    xv_http_set_inflate_limits(0, 200);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    b = strstr(whole, "B:");
    x = strstr(whole, "\nX:compressed body exceeds the inflation limits");
    assert_non_null(x);
    assert_true((size_t)(x - b - 2) > XV_HTTP_INFLATE_RATIO_FLOOR);
    assert_true((size_t)(x - b - 2) < XV_HTTP_INFLATE_RATIO_FLOOR + 2 * 16384);
    free(whole);

    /* No bounds: the whole body, and the message ends. */
    xv_http_set_inflate_limits(0, 0);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "\nE\nS0\n"));
    free(whole);

    /* Defaults: ordinary text (ratio ~5) of 2 MiB passes. */
    xv_http_set_inflate_limits(XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO);
    make_text(plain, 2u << 20, 5);
    pn = zpack(31, plain, 2u << 20, packed, plen);
    free(m.s);
    memset(&m, 0, sizeof m);
    mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "\nE\nS0\n"));
    assert_null(strstr(whole, "\nX:"));
    free(whole);
    free(m.s);
    free(plain);
    free(packed);
}

/* --------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_inflate_bounds),
        cmocka_unit_test(test_sse_basic),
        cmocka_unit_test(test_sse_line_ends),
        cmocka_unit_test(test_sse_multiline_comments_fields),
        cmocka_unit_test(test_sse_bom),
        cmocka_unit_test(test_sse_truncated),
        cmocka_unit_test(test_sse_finish_drops_pending),
        cmocka_unit_test(test_http_content_length),
        cmocka_unit_test(test_http_chunked),
        cmocka_unit_test(test_http_keep_alive),
        cmocka_unit_test(test_http_continue),
        cmocka_unit_test(test_http_no_body_responses),
        cmocka_unit_test(test_http_tunnels),
        cmocka_unit_test(test_http_close_delimited),
        cmocka_unit_test(test_http_truncated),
        cmocka_unit_test(test_http_malformed),
        cmocka_unit_test(test_http_head_limit),
        cmocka_unit_test(test_http_pause),
        cmocka_unit_test(test_http_head_find),
        cmocka_unit_test(test_http_request_queue),
        cmocka_unit_test(test_http_pause_at_end),
        cmocka_unit_test(test_http_gzip_deflate),
        cmocka_unit_test(test_http_gzip_members_and_reuse),
        cmocka_unit_test(test_http_other_and_corrupt_encodings),
        cmocka_unit_test(test_http_large_gzip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
