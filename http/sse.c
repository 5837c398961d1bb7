/*
 * sse.c — incremental text/event-stream parser (WHATWG "event stream
 * interpretation"), fed any slice of the stream split at any byte.
 *
 * Invariant: between feeds the parser holds at most one incomplete line
 * (bounded by max_event + SSE_LINE_SLACK; longer lines keep their prefix and
 * are flagged) plus the fields of the event being built (data bounded by
 * max_event, event/id by SSE_FIELD_MAX). Complete lines inside one feed are
 * interpreted in place, without copying into the line buffer.
 * A CR that ends one feed may pair with an LF that starts the next: `cr_seen`
 * remembers it so CRLF split across feeds is one line end.
 *
 * Thread safety: a parser belongs to one stream; no global state.
 */
#include <stdlib.h>
#include <string.h>

#include "xv_common.h"
#include "xv_http.h"

/* Room above max_event for the field name and colon of an over-long line,
 * so a "data: <max_event bytes>" line still fits whole. */
#define SSE_LINE_SLACK 64
/* "event" and "id" values longer than this are cut (never useful). */
#define SSE_FIELD_MAX 1024

struct xv_sse_parser {
    size_t max_event;     /* bound on an event's joined data */
    xv_sse_cb cb;         /* dispatch target */
    void *ud;             /* passed to cb */
    struct xv_buf line;   /* incomplete line carried between feeds */
    int line_over;        /* the carried line was longer than line.max */
    int cr_seen;          /* last byte seen was CR: a leading LF is not a new line */
    int bom_pos;          /* BOM bytes matched so far; -1 once past the stream start */
    struct xv_buf data;   /* data lines joined with "\n" */
    int has_data;         /* at least one data line in this event */
    int truncated;        /* data of this event was cut at max_event */
    struct xv_buf event;  /* event type of this event */
    struct xv_buf id;     /* last event ID (persists across events, per WHATWG) */
};

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

struct xv_sse_parser *xv_sse_parser_new(size_t max_event, xv_sse_cb cb, void *ud)
{
    struct xv_sse_parser *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->max_event = max_event;
    s->cb = cb;
    s->ud = ud;
    xv_buf_init(&s->line, max_event + SSE_LINE_SLACK);
    xv_buf_init(&s->data, max_event);
    xv_buf_init(&s->event, SSE_FIELD_MAX);
    xv_buf_init(&s->id, SSE_FIELD_MAX);
    return s;
}

void xv_sse_parser_free(struct xv_sse_parser *s)
{
    if (!s)
        return;
    xv_buf_free(&s->line);
    xv_buf_free(&s->data);
    xv_buf_free(&s->event);
    xv_buf_free(&s->id);
    free(s);
}

/* Append as much of p as fits under b->max; returns 1 when something was cut.
 * An allocation failure counts as a cut: the event is then delivered short
 * and flagged rather than lost. */
static int buf_append_cut(struct xv_buf *b, const char *p, size_t n)
{
    size_t room = b->max - b->len;
    int cut = 0;
    if (n > room) {
        n = room;
        cut = 1;
    }
    if (n && xv_buf_append(b, p, n) != 0)
        cut = 1;
    return cut;
}

static void sse_dispatch(struct xv_sse_parser *s)
{
    /* WHATWG: an event with an empty data buffer is not dispatched, and
     * the event type is reset either way. (Data lines are joined with the
     * "\n" written before every line but the first, so there is no trailing
     * newline to strip.) */
    if (s->has_data) {
        struct xv_sse_event ev;
        ev.event = s->event.len ? s->event.data : "";
        ev.event_len = s->event.len;
        ev.data = s->data.len ? s->data.data : "";
        ev.data_len = s->data.len;
        ev.id = s->id.len ? s->id.data : "";
        ev.id_len = s->id.len;
        ev.truncated = s->truncated;
        if (s->cb)
            s->cb(s->ud, &ev);
    }
    xv_buf_reset(&s->data);
    xv_buf_reset(&s->event);
    s->has_data = 0;
    s->truncated = 0;
}

/* Interpret one complete line (without its terminator). `over` says the
 * line was longer than what we kept. */
static void sse_line(struct xv_sse_parser *s, const char *l, size_t n, int over)
{
    if (n == 0) {
        sse_dispatch(s);
        return;
    }
    if (l[0] == ':')
        return; /* comment */
    const char *colon = memchr(l, ':', n);
    size_t nlen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 4 && memcmp(l, "data", 4) == 0) {
        if (s->has_data && buf_append_cut(&s->data, "\n", 1))
            s->truncated = 1;
        s->has_data = 1;
        if (buf_append_cut(&s->data, v, vlen) || over)
            s->truncated = 1;
    } else if (nlen == 5 && memcmp(l, "event", 5) == 0) {
        xv_buf_reset(&s->event);
        buf_append_cut(&s->event, v, vlen);
    } else if (nlen == 2 && memcmp(l, "id", 2) == 0) {
        /* WHATWG: an id containing NUL is ignored. */
        if (!memchr(v, '\0', vlen)) {
            xv_buf_reset(&s->id);
            buf_append_cut(&s->id, v, vlen);
        }
    }
    /* "retry" and unknown fields are ignored. */
}

/* Deliver the carried line (if any) followed by `n` more bytes of it. */
static void sse_line_carried(struct xv_sse_parser *s, const char *p, size_t n)
{
    if (s->line.len == 0 && !s->line_over) {
        /* Cut exactly as a carried line would be, so the result never
         * depends on where the feeds were split. */
        if (n > s->line.max)
            sse_line(s, p, s->line.max, 1);
        else
            sse_line(s, p, n, 0);
        return;
    }
    if (buf_append_cut(&s->line, p, n))
        s->line_over = 1;
    sse_line(s, s->line.len ? s->line.data : "", s->line.len, s->line_over);
    xv_buf_reset(&s->line);
    s->line_over = 0;
}

/* Body of the parser once past the BOM check. */
static void sse_scan(struct xv_sse_parser *s, const char *p, size_t len)
{
    const char *end = p + len;
    if (len && s->cr_seen && *p == '\n')
        p++;
    s->cr_seen = 0;
    /* Next CR and LF positions, cached so a stream with only one kind of line
     * end is not rescanned for the other on every line (quadratic otherwise). */
    const char *ncr = NULL, *nlf = NULL;
    int cr_done = 0, lf_done = 0;
    while (p < end) {
        if (!cr_done && (!ncr || ncr < p)) {
            ncr = memchr(p, '\r', (size_t)(end - p));
            if (!ncr)
                cr_done = 1;
        }
        if (!lf_done && (!nlf || nlf < p)) {
            nlf = memchr(p, '\n', (size_t)(end - p));
            if (!nlf)
                lf_done = 1;
        }
        const char *eol;
        if (cr_done && lf_done)
            break;
        else if (cr_done)
            eol = nlf;
        else if (lf_done)
            eol = ncr;
        else
            eol = ncr < nlf ? ncr : nlf;
        sse_line_carried(s, p, (size_t)(eol - p));
        if (*eol == '\r') {
            if (eol + 1 == end) {
                s->cr_seen = 1; /* the LF may come in the next feed */
                return;
            }
            p = eol[1] == '\n' ? eol + 2 : eol + 1;
        } else {
            p = eol + 1;
        }
    }
    /* Incomplete line: carry it. */
    if (p < end && buf_append_cut(&s->line, p, (size_t)(end - p)))
        s->line_over = 1;
}

void xv_sse_parser_feed(struct xv_sse_parser *s, const char *data, size_t len)
{
    if (!s || !len)
        return;
    /* Skip one UTF-8 BOM at the very start, which may itself be split. */
    while (s->bom_pos >= 0 && len) {
        if ((unsigned char)*data == sse_bom[s->bom_pos]) {
            data++;
            len--;
            if (++s->bom_pos == 3)
                s->bom_pos = -1;
            continue;
        }
        /* Not a BOM after all: the bytes matched so far are content. */
        int matched = s->bom_pos;
        s->bom_pos = -1;
        if (matched)
            sse_scan(s, (const char *)sse_bom, (size_t)matched);
    }
    if (len)
        sse_scan(s, data, len);
}

void xv_sse_parser_finish(struct xv_sse_parser *s)
{
    if (!s)
        return;
    /* A pending line or event without its blank line is dropped; the next
     * feed starts a new stream (BOM check and last event ID included). */
    xv_buf_reset(&s->line);
    s->line_over = 0;
    s->cr_seen = 0;
    xv_buf_reset(&s->data);
    xv_buf_reset(&s->event);
    xv_buf_reset(&s->id);
    s->has_data = 0;
    s->truncated = 0;
    s->bom_pos = 0;
}
