/*
 * http_harness.h — the event-log harness shared by the http module's unit
 * tests (test_http.c, test_http_inflate.c): a growable text log, and a
 * parser run that writes every callback into it, fed whole, split at the
 * given cut points, or one byte at a time, so that "the events do not depend
 * on the slicing" is one string comparison.
 *
 * Header-only: every function is static inline; include it once per test.
 */
#ifndef XV_TEST_HTTP_HARNESS_H
#define XV_TEST_HTTP_HARNESS_H

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

static inline void log_add(struct log *l, const char *p, size_t n)
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

static inline void log_str(struct log *l, const char *s)
{
    log_add(l, s, strlen(s));
}

static inline __attribute__((format(printf, 2, 3))) void log_fmt(struct log *l, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    log_add(l, tmp, (size_t)n);
}

static inline void log_reset(struct log *l)
{
    l->len = 0;
    if (l->s)
        l->s[0] = '\0';
}

static inline const char *log_get(struct log *l)
{
    return l->s ? l->s : "";
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

static inline void http_close_body(struct http_ctx *c)
{
    if (c->in_body) {
        log_str(&c->log, "\n");
        c->in_body = 0;
    }
}

static inline int h_head(void *ud, const struct xv_http_head *h)
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

static inline void h_body(void *ud, const char *p, size_t n)
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

static inline void h_end(void *ud)
{
    struct http_ctx *c = ud;
    http_close_body(c);
    log_str(&c->log, "E\n");
}

static inline void h_error(void *ud, const char *why)
{
    struct http_ctx *c = ud;
    http_close_body(c);
    c->errors++;
    log_fmt(&c->log, "X:%s\n", why);
}

static const struct xv_http_callbacks h_cbs = {
    .on_head = h_head, .on_body = h_body, .on_end = h_end, .on_error = h_error};

/* One feeding plan; returns the log (caller frees). */
static inline char *http_run(const struct http_opts *o, const char *in, size_t n, const size_t *cuts,
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

static inline void http_expect(const struct http_opts *o, const char *in, size_t n, const size_t *cuts,
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
static inline void http_check(const struct http_opts *o, const char *in, size_t n, const char *want)
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

#endif
