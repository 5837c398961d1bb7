/* link: xv_http xv_common */
/*
 * fuzz_http.c — libFuzzer target for the http module: HTTP/1.x requests and
 * responses, and the SSE parser, on untrusted bytes.
 *
 * Input: byte 0 is a control byte, the rest is the stream.
 *   bit 0     direction (0 request parser, 1 response parser)
 *   bits 1-4  feed stride 1..15, or 16 = one feed per byte-run of random size
 *   bit 5     on_head returns XV_HTTP_PAUSE
 *   bit 6     small limits (head_max 64, SSE max_event 16)
 *   bit 7     response side: note HEAD for the 1st request, CONNECT for the 3rd
 * Besides memory errors (ASan/UBSan), the target checks the module's central
 * invariant: the events (heads, decoded body bytes, ends, errors, pause
 * offsets) are identical whether the stream is fed whole or in slices, and
 * on_error fires at most once. A difference aborts.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_http.h"

/* FNV-1a over everything a run reports. */
struct trace {
    uint64_t h;
    int errors;
    int pause;
    int paused;
    size_t body;
};

static void mix(struct trace *t, const void *p, size_t n)
{
    const unsigned char *u = p;
    for (size_t i = 0; i < n; i++) {
        t->h ^= u[i];
        t->h *= 0x100000001b3ull;
    }
}

static void mix_u64(struct trace *t, uint64_t v)
{
    mix(t, &v, sizeof v);
}

static int f_head(void *ud, const struct xv_http_head *h)
{
    struct trace *t = ud;
    mix(t, "H", 1);
    mix(t, h->raw, h->raw_len);
    mix_u64(t, (uint64_t)h->status);
    mix_u64(t, (uint64_t)h->content_length);
    mix_u64(t, (uint64_t)(h->chunked | h->keep_alive << 1 | h->expect_continue << 2 |
                          h->content_encoding << 3 | h->no_body << 6));
    for (size_t i = 0; i < h->nheaders; i++) {
        /* Touch every borrowed byte: ASan checks they are live. */
        mix(t, h->headers[i].name, h->headers[i].name_len);
        mix(t, h->headers[i].value, h->headers[i].value_len);
    }
    if (h->method)
        mix(t, h->method, h->method_len);
    if (h->target)
        mix(t, h->target, h->target_len);
    if (h->nheaders)
        (void)xv_http_head_find(h, "content-type");
    if (t->pause)
        t->paused = 1;
    return t->pause ? XV_HTTP_PAUSE : XV_HTTP_OK;
}

static void f_body(void *ud, const char *p, size_t n)
{
    struct trace *t = ud;
    if (n == 0 || n > 16384)
        abort(); /* bounded, non-empty output chunks */
    t->body += n;
    mix(t, p, n);
}

static void f_end(void *ud)
{
    struct trace *t = ud;
    mix(t, "E", 1);
}

static void f_error(void *ud, const char *why)
{
    struct trace *t = ud;
    t->errors++;
    mix(t, "X", 1);
    mix(t, why, strlen(why));
}

static const struct xv_http_callbacks f_cbs = {
    .on_head = f_head, .on_body = f_body, .on_end = f_end, .on_error = f_error};

/* Feed `data` to a fresh parser in slices of `stride` (0 = whole). */
static uint64_t http_run(int kind, int pause, int small, int notes, const uint8_t *data,
                         size_t size, size_t stride)
{
    struct trace t = {.h = 0xcbf29ce484222325ull, .pause = pause};
    struct xv_http_parser *p = xv_http_parser_new(kind, small ? 64 : 8192, &f_cbs, &t);
    if (!p)
        abort();
    if (notes && kind == XV_HTTP_RESPONSE) {
        xv_http_parser_note_request(p, 1, 0);
        xv_http_parser_note_request(p, 0, 0);
        xv_http_parser_note_request(p, 0, 1);
    }
    const char *d = (const char *)data;
    size_t at = 0, salt = 7;
    while (at < size) {
        size_t n = size - at;
        if (stride == 16) {
            salt = salt * 31 + (unsigned char)d[at];
            n = 1 + salt % 97;
        } else if (stride) {
            n = stride;
        }
        if (n > size - at)
            n = size - at;
        size_t r = xv_http_parser_feed(p, d + at, n);
        if (r > n || (r < n && !t.paused))
            abort();
        if (t.paused) {
            mix_u64(&t, at + r); /* the absolute pause offset */
            t.paused = 0;
        }
        at += r;
    }
    xv_http_parser_eof(p);
    mix_u64(&t, (uint64_t)xv_http_parser_state(p));
    if (t.errors > 1)
        abort();
    xv_http_parser_free(p);
    return t.h;
}

static void s_event(void *ud, const struct xv_sse_event *ev)
{
    struct trace *t = ud;
    mix(t, "V", 1);
    mix(t, ev->event, ev->event_len);
    mix(t, "|", 1);
    mix(t, ev->id, ev->id_len);
    mix(t, "|", 1);
    mix(t, ev->data, ev->data_len);
    mix_u64(t, (uint64_t)ev->truncated);
}

static uint64_t sse_run(const uint8_t *data, size_t size, size_t max_event, size_t stride)
{
    struct trace t = {.h = 0xcbf29ce484222325ull};
    struct xv_sse_parser *s = xv_sse_parser_new(max_event, s_event, &t);
    if (!s)
        abort();
    size_t at = 0;
    while (at < size) {
        size_t n = stride && stride < size - at ? stride : size - at;
        xv_sse_parser_feed(s, (const char *)data + at, n);
        at += n;
    }
    xv_sse_parser_finish(s);
    xv_sse_parser_free(s);
    return t.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* Inflation bounds that keep the slicing invariant: the byte bound is
     * exact whatever the feed split; the ratio bound depends on how much
     * input zlib had at hand, so it is off here (tests/unit/test_http.c
     * covers it). */
    xv_http_set_inflate_limits(256u << 10, 0);
    unsigned ctl = data[0];
    data++;
    size--;
    int kind = ctl & 1 ? XV_HTTP_RESPONSE : XV_HTTP_REQUEST;
    size_t stride = ((ctl >> 1) & 15) + 1;
    int pause = (ctl >> 5) & 1;
    int small = (ctl >> 6) & 1;
    int notes = (ctl >> 7) & 1;

    uint64_t whole = http_run(kind, pause, small, notes, data, size, 0);
    uint64_t sliced = http_run(kind, pause, small, notes, data, size, stride);
    if (whole != sliced) {
        fprintf(stderr, "fuzz_http: events differ between whole and stride %zu feeds\n", stride);
        abort();
    }
    if (size <= 4096 && http_run(kind, pause, small, notes, data, size, 1) != whole) {
        fprintf(stderr, "fuzz_http: events differ between whole and 1-byte feeds\n");
        abort();
    }

    size_t max_event = small ? 16 : 4096;
    uint64_t sw = sse_run(data, size, max_event, 0);
    if (sse_run(data, size, max_event, stride) != sw ||
        (size <= 4096 && sse_run(data, size, max_event, 1) != sw)) {
        fprintf(stderr, "fuzz_http: SSE events differ between whole and sliced feeds\n");
        abort();
    }
    return 0;
}
