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

static __attribute__((format(printf, 2, 3), unused)) void log_fmt(struct log *l, const char *fmt, ...)
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
    xv_sse_parser_feed(s, "data: x", 7);
    xv_sse_parser_finish(s);
    xv_sse_parser_feed(s, "data: y\n\n", 9);
    assert_string_equal(log_get(&c.log), "[|||y]");
    log_reset(&c.log);
    xv_sse_parser_free(s);
    free(c.log.s);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
