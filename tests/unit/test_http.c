/*
 * test_http.c — unit tests for the http module: the SSE parser and the
 * incremental HTTP/1.x parser (compressed bodies: test_http_inflate.c).
 *
 * Invariant under test: the events a parser reports do not depend on how
 * the byte stream is sliced. Every case is fed whole, split into two feeds
 * at every byte position, and one byte at a time, and each run must produce
 * exactly the expected event log.
 */
#include "http_harness.h"

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

/* A header value is read eight bytes at a time: a control byte at every
 * position of every length up to 40 is refused, a tab or DEL-free
 * neighbour accepted (RFC 9110 §5.5: HTAB is allowed, other controls and
 * DEL are not). */
static void test_http_value_bytes(void **st)
{
    (void)st;
    static const unsigned char bytes[] = { 0x01, 0x1f, 0x7f, 0x00, '\t', 0x80, '~' };
    char in[128];
    for (size_t len = 1; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof bytes; k++) {
                size_t n = (size_t)snprintf(in, sizeof in, "GET / HTTP/1.1\r\nA: ");
                memset(in + n, 'v', len);
                in[n + at] = (char)bytes[k];
                if (at == 0 && bytes[k] == '\t')
                    in[n + at] = 'w'; /* a leading tab is whitespace, not the value */
                n += len;
                if (bytes[k] == '\t' && at == len - 1)
                    in[n - 1] = 'w'; /* and a trailing one too */
                memcpy(in + n, "\r\n\r\n", 4);
                n += 4;
                char *got = http_run(REQ(0), in, n, NULL, 0, NULL);
                int bad = bytes[k] < 0x20 && bytes[k] != '\t';
                bad |= bytes[k] == 0x7f;
                if (bad != (strstr(got, "X:bad header value") != NULL))
                    fprintf(stderr, "byte %#x at %zu of %zu: %s", bytes[k], at, len, got);
                assert_int_equal(bad, strstr(got, "X:bad header value") != NULL);
                free(got);
            }
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

/* --------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_http_value_bytes),
        cmocka_unit_test(test_http_head_limit),
        cmocka_unit_test(test_http_pause),
        cmocka_unit_test(test_http_head_find),
        cmocka_unit_test(test_http_request_queue),
        cmocka_unit_test(test_http_pause_at_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
