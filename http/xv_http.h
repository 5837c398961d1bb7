/*
 * http — incremental HTTP/1.x message parser (one direction of one
 * connection) and Server-Sent-Events parser.
 *
 * The parser never buffers body bytes and never needs the whole message:
 * feed it any slice of the byte stream, as it arrives, split at any byte.
 * It reports the header block (with the exact offset where it ends, so a
 * caller can splice bytes into the stream there), decoded body bytes
 * (chunk framing removed, gzip/deflate inflated with zlib) and the end of
 * each message; keep-alive streams carry any number of messages.
 * Malformed input moves the parser to XV_HTTP_S_ERROR; it then ignores
 * everything (callers pass such bytes through untouched and record why).
 *
 * Thread safety: a parser is owned by one connection; no global state.
 * Allocation: xv_http_parser_new allocates; feeding allocates only to grow
 * the head buffer (bounded by head_max), the header array (reused across
 * messages) and zlib state for compressed bodies (once per parser, reset
 * per message). Limits and choices: docs/http.md.
 */
#ifndef XV_HTTP_H
#define XV_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum xv_http_kind { XV_HTTP_REQUEST = 0, XV_HTTP_RESPONSE = 1 };

enum xv_http_encoding {
    XV_HTTP_CE_IDENTITY = 0,
    XV_HTTP_CE_GZIP = 1,
    XV_HTTP_CE_DEFLATE = 2,
    XV_HTTP_CE_OTHER = 3, /* br, zstd, ...: body reported raw, on_body not called */
};

enum xv_http_state {
    XV_HTTP_S_HEAD = 0,   /* reading a header block (or idle between messages) */
    XV_HTTP_S_BODY = 1,   /* reading a body */
    XV_HTTP_S_TUNNEL = 2, /* after a 101/CONNECT: opaque bytes, ignored */
    XV_HTTP_S_ERROR = 3,  /* malformed input seen: everything ignored */
};

/* One header line. Pointers borrowed; valid only during on_head. */
struct xv_http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing whitespace trimmed */
    size_t value_len;
};

/* A complete header block. Borrowed; valid only during on_head. */
struct xv_http_head {
    int kind;                  /* enum xv_http_kind */
    const char *method;        /* requests: "POST" ...; NULL for responses */
    size_t method_len;
    const char *target;        /* requests: request-target as sent */
    size_t target_len;
    int status;                /* responses: 100..599; 0 for requests */
    int version_minor;         /* HTTP/1.<n>: 0 or 1 */
    const struct xv_http_header *headers; /* in wire order */
    size_t nheaders;
    const char *raw;           /* the whole block, start line through the blank line */
    size_t raw_len;
    int64_t content_length;    /* -1 when absent, or when Transfer-Encoding
                                  overrides it (RFC 9112 §6.3) */
    int chunked;               /* Transfer-Encoding ends in chunked */
    int keep_alive;            /* connection persists after this message */
    int expect_continue;       /* request sent Expect: 100-continue */
    int content_encoding;      /* enum xv_http_encoding of Content-Encoding */
    int no_body;               /* the message ends with its head: on_end follows
                                  on_head at once (1xx/204/304, HEAD reply,
                                  Content-Length: 0, request without a length,
                                  101/CONNECT tunnels). 1xx interim responses
                                  other than 101 get no on_end at all. */
};

/* Return values of callbacks. */
#define XV_HTTP_OK 0
#define XV_HTTP_PAUSE 1 /* on_head only: make feed return right after the head */

struct xv_http_callbacks {
    /* Header block complete. Return XV_HTTP_OK or XV_HTTP_PAUSE. For
     * responses, a 1xx head is reported too and is followed by another head
     * (no on_end in between; 101 is final: on_end, then TUNNEL). A CONNECT
     * request, a 101 and a 2xx answer to a noted CONNECT end in TUNNEL. */
    int (*on_head)(void *ud, const struct xv_http_head *head);
    /* Decoded body bytes (de-chunked and inflated). Any split; never empty,
     * at most 16 KiB per call when inflating. Not called for encodings the
     * parser cannot decode (XV_HTTP_CE_OTHER, or a Transfer-Encoding coding
     * besides chunked). */
    void (*on_body)(void *ud, const char *p, size_t n);
    /* Message complete (body fully read, or no body). */
    void (*on_end)(void *ud);
    /* Parser entered XV_HTTP_S_ERROR; `why` is a short static string.
     * Called at most once per parser; a corrupt gzip/deflate body is an error. */
    void (*on_error)(void *ud, const char *why);
    /* Optional: body bytes with the framing removed but still content-encoded
     * (what on_body gets before inflation), for callers that keep a body as
     * it came (record/replay). Any split; called before on_body. */
    void (*on_raw)(void *ud, const char *p, size_t n);
};

struct xv_http_parser;

/* New parser for one direction. head_max bounds one header block (bytes);
 * a larger block is an error. Caller owns the result; free with
 * xv_http_parser_free. NULL on allocation failure. */
struct xv_http_parser *xv_http_parser_new(int kind, size_t head_max,
                                          const struct xv_http_callbacks *cb, void *ud);
void xv_http_parser_free(struct xv_http_parser *p);

/* Feed bytes. Returns how many were consumed: all of them, except when
 * on_head returned XV_HTTP_PAUSE, in which case it returns the offset just
 * past the head's blank line and the caller feeds the rest afterwards
 * (when that message has no body, its on_end has already been called).
 * Never fails: errors are reported through on_error and the state. */
size_t xv_http_parser_feed(struct xv_http_parser *p, const char *data, size_t len);

/* Make feed also return right after each message's end (on_end ran), so a
 * caller can act on one pipelined message before the next one's head is
 * parsed (the request side uses it: each request is decided on its own). */
void xv_http_parser_pause_at_end(struct xv_http_parser *p, int on);

/* The connection closed. Ends a close-delimited body (on_end) or reports
 * a truncated message (on_error "connection closed mid-message"). */
void xv_http_parser_eof(struct xv_http_parser *p);

/* Response parsers only: the next unanswered request on this connection was
 * a HEAD request (its response has no body) or CONNECT. Queue of up to 64
 * pipelined requests; call once per request, in order, for every request. */
void xv_http_parser_note_request(struct xv_http_parser *p, int is_head, int is_connect);

int xv_http_parser_state(const struct xv_http_parser *p);

/* Inside a body framed by Content-Length and not being inflated (gzip,
 * deflate): its bytes still to come, else 0.
 * xv_http_parser_body_skip counts off n < that many without looking at
 * them (no callback runs: the caller wants nothing from them), so the
 * message never ends there; the read fast path of conn/stream.c. */
uint64_t xv_http_parser_body_left(const struct xv_http_parser *p);
/* From on_head: the body that follows is framed but not decoded (nothing
 * will read it; a gzip body is then not inflated, nor held to the
 * inflation limits). */
void xv_http_parser_frame_only(struct xv_http_parser *p);
int xv_http_parser_body_skip(struct xv_http_parser *p, size_t n);

/* Decompression-bomb bounds, process-wide (XENOVIA_INFLATE_MAX_BYTES,
 * XENOVIA_INFLATE_MAX_RATIO). A gzip/deflate body whose decoded size passes
 * max_bytes, or — once it has produced more than XV_HTTP_INFLATE_RATIO_FLOOR
 * bytes — passes max_ratio times the compressed bytes consumed, stops being
 * inflated: the parser reports on_error ("compressed body exceeds the
 * inflation limits") so the caller passes the connection through untouched
 * and records the call uninspected. 0 disables a bound. Defaults:
 * XV_HTTP_INFLATE_DEFAULT_MAX_BYTES and _RATIO. Call from once-init, before
 * parsers run on other threads (relaxed atomics: any thread sees either the
 * old or the new value, never a torn one). Never allocates. */
#define XV_HTTP_INFLATE_DEFAULT_MAX_BYTES (64ull << 20)
#define XV_HTTP_INFLATE_DEFAULT_MAX_RATIO 200u
#define XV_HTTP_INFLATE_RATIO_FLOOR (1u << 20)
void xv_http_set_inflate_limits(uint64_t max_bytes, unsigned max_ratio);

/* Bytes of an incomplete header block the parser holds (0 outside a head):
 * after a feed that ended a message, the last this-many bytes consumed are
 * the start of the next head (a relay forwards the rest). */
size_t xv_http_parser_head_held(const struct xv_http_parser *p);

/* Helpers on a head. Case-insensitive name match; first occurrence. The
 * name's n bytes (no NUL needed); xv_http_head_find takes a string, whose
 * length a literal's call site computes at compile time (issue 9: ~12
 * lookups a call). */
const struct xv_http_header *xv_http_head_find_n(const struct xv_http_head *h, const char *name,
                                                 size_t n);
static inline const struct xv_http_header *xv_http_head_find(const struct xv_http_head *h,
                                                             const char *name)
{
    return xv_http_head_find_n(h, name, strlen(name));
}

/*
 * SSE (text/event-stream) parser, per the WHATWG rules: lines end in CR,
 * LF or CRLF (a CRLF split across feeds is one line end); "data" lines are
 * joined with "\n"; an event is dispatched at a blank line; comments and
 * unknown fields are ignored; one optional space after the colon is
 * dropped; a leading UTF-8 BOM is skipped. Events whose data exceeds
 * max_event are delivered truncated with `truncated` set.
 * An event is borrowed: its pointers are valid only during the callback.
 */
struct xv_sse_event {
    const char *event; /* "" when no event field */
    size_t event_len;
    const char *data;  /* joined data lines */
    size_t data_len;
    const char *id;    /* last event ID of the stream (persists across
                          events, per WHATWG); "" when none */
    size_t id_len;
    int truncated;
};

typedef void (*xv_sse_cb)(void *ud, const struct xv_sse_event *ev);

struct xv_sse_parser;
/* Caller owns the result; free with xv_sse_parser_free. */
struct xv_sse_parser *xv_sse_parser_new(size_t max_event, xv_sse_cb cb, void *ud);
void xv_sse_parser_free(struct xv_sse_parser *s);
void xv_sse_parser_feed(struct xv_sse_parser *s, const char *data, size_t len);
/* End of stream: a pending event without its blank line is dropped, as
 * browsers do. The parser is then as new, ready for another stream. */
void xv_sse_parser_finish(struct xv_sse_parser *s);

#endif
