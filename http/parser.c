/*
 * parser.c — incremental HTTP/1.x message parser for one direction of one
 * connection (requests or responses), fed any slice of the byte stream.
 *
 * Invariants:
 *  - Body bytes are never buffered: they are de-chunked and decoded in place
 *    and handed to on_body as they arrive.
 *  - A header block is parsed in place when it arrives whole inside one feed;
 *    otherwise its bytes so far are kept in `hbuf` (never more than head_max)
 *    until the blank line arrives. Either way `raw` and every header pointer
 *    passed to on_head point into one contiguous block, valid during on_head.
 *  - Scanning is memchr-based; a header block is searched once (the scan
 *    resumes at the start of the last incomplete line).
 *  - Once in XV_HTTP_S_ERROR nothing is reported again; on_error fires once.
 *
 * Thread safety: a parser belongs to one connection direction; no globals.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"
#include "xv_common.h"
#include "xv_http.h"
#include "xv_word.h"

/* How a body is delimited. */
enum body_mode { BM_NONE, BM_LENGTH, BM_CHUNKED, BM_CLOSE };

/* Where we are inside chunked framing. */
enum chunk_state {
    CS_SIZE_START,   /* first hex digit of a chunk-size line */
    CS_SIZE,         /* more hex digits */
    CS_SIZE_WS,      /* whitespace after the size (BWS before ';' or CRLF) */
    CS_EXT,          /* chunk extension: skipped up to LF */
    CS_SIZE_LF,      /* CR seen, LF must follow */
    CS_DATA,         /* chunk data */
    CS_DATA_CR,      /* CRLF after chunk data */
    CS_DATA_LF,      /* LF after chunk data's CR */
    CS_TRAILER_START,/* start of a trailer line (or the final blank line) */
    CS_TRAILER_LINE, /* inside a trailer line: skipped up to LF */
    CS_TRAILER_LF,   /* CR of the final blank line seen, LF must follow */
};

/* Chunk-size values above this are rejected (no real body is this big and
 * it keeps the arithmetic far from overflow). */
#define CHUNK_SIZE_MAX ((uint64_t)1 << 60)
/* Bound on one chunk-size line's extension bytes. */
#define CHUNK_EXT_MAX 4096
/* Depth of the response side's pipelined-request queue. */
#define REQ_QUEUE 64
#define REQ_HEAD 1
#define REQ_CONNECT 2

struct xv_http_parser {
    int kind;                       /* enum xv_http_kind */
    size_t head_max;                /* bound on one header block */
    struct xv_http_callbacks cb;    /* copied at creation */
    void *ud;                       /* passed to every callback */
    int state;                      /* enum xv_http_state */

    /* Incomplete header block carried between feeds. */
    char *hbuf;                     /* owned; grows up to head_max */
    size_t hlen;                    /* bytes held */
    size_t hcap;                    /* bytes allocated */
    size_t hscan;                   /* start of the first line not yet seen whole */
    struct xv_http_header *hdrs;    /* header array reused across messages, owned */
    size_t hdrs_cap;                /* entries allocated */

    /* Body framing of the current message. */
    int mode;                       /* enum body_mode */
    uint64_t remaining;             /* BM_LENGTH: body bytes left; CS_DATA: chunk bytes left */
    int cstate;                     /* enum chunk_state */
    size_t cline;                   /* bytes of the current extension / trailer section */
    int tunnel_after;               /* enter TUNNEL when this message ends */
    int pause_at_end;               /* feed returns right after a message ends */
    int ended;                      /* a message ended during the current feed */

    /* Body decoding. */
    int decode;                     /* enum xv_http_encoding actually applied */
    struct xv_http_inflate inf;     /* zlib state for gzip/deflate bodies */

    /* Response side: kinds of the requests still waiting for a response. */
    unsigned char rq[REQ_QUEUE];    /* ring of REQ_HEAD|REQ_CONNECT flags */
    unsigned rq_head;               /* index of the oldest entry */
    unsigned rq_count;              /* entries in use */
};

struct xv_http_parser *xv_http_parser_new(int kind, size_t head_max,
                                          const struct xv_http_callbacks *cb, void *ud)
{
    struct xv_http_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->kind = kind == XV_HTTP_RESPONSE ? XV_HTTP_RESPONSE : XV_HTTP_REQUEST;
    /* A head needs at least a start line and the blank line. */
    p->head_max = head_max < 16 ? 16 : head_max;
    if (cb)
        p->cb = *cb;
    p->ud = ud;
    p->state = XV_HTTP_S_HEAD;
    return p;
}

void xv_http_parser_free(struct xv_http_parser *p)
{
    if (!p)
        return;
    free(p->hbuf);
    free(p->hdrs);
    xv_http_inflate_free(&p->inf);
    free(p);
}

size_t xv_http_parser_head_held(const struct xv_http_parser *p)
{
    return p->state == XV_HTTP_S_HEAD ? p->hlen : 0;
}

int xv_http_parser_state(const struct xv_http_parser *p)
{
    return p->state;
}

uint64_t xv_http_parser_body_left(const struct xv_http_parser *p)
{
    /* A compressed body is inflated as it comes: its decoder sees every byte. */
    int inflating = p->decode == XV_HTTP_CE_GZIP || p->decode == XV_HTTP_CE_DEFLATE;
    return p->state == XV_HTTP_S_BODY && p->mode == BM_LENGTH && !inflating ? p->remaining : 0;
}

void xv_http_parser_frame_only(struct xv_http_parser *p)
{
    if (p->state == XV_HTTP_S_BODY)
        p->decode = XV_HTTP_CE_OTHER; /* inflate_begin's state: reset by the next body's */
}

int xv_http_parser_body_skip(struct xv_http_parser *p, size_t n)
{
    if (xv_http_parser_body_left(p) <= n)
        return XV_E_STATE;
    p->remaining -= n;
    return 0;
}

void xv_http_parser_note_request(struct xv_http_parser *p, int is_head, int is_connect)
{
    /* Past the queue depth the request is forgotten: its response is then
     * framed as if it were a plain GET (documented in docs/http.md). */
    if (p->rq_count >= REQ_QUEUE)
        return;
    p->rq[(p->rq_head + p->rq_count) % REQ_QUEUE] =
        (unsigned char)((is_head ? REQ_HEAD : 0) | (is_connect ? REQ_CONNECT : 0));
    p->rq_count++;
}

static int rq_pop(struct xv_http_parser *p)
{
    if (!p->rq_count)
        return 0;
    int f = p->rq[p->rq_head];
    p->rq_head = (p->rq_head + 1) % REQ_QUEUE;
    p->rq_count--;
    return f;
}

static void set_error(struct xv_http_parser *p, const char *why)
{
    if (p->state == XV_HTTP_S_ERROR)
        return;
    p->state = XV_HTTP_S_ERROR;
    p->hlen = 0;
    if (p->cb.on_error)
        p->cb.on_error(p->ud, why);
}

/* ------------------------------------------------------------ head syntax */

/* RFC 9110 tchar. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
    ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The first byte of [c, e) a header value may not hold (a control byte
 * other than HTAB, RFC 9110 §5.5), or NULL. Eight bytes at a time past
 * words with no byte below 0x20 and no DEL; a word with one (a tab, most
 * likely) is looked at byte by byte. */
static const char *bad_value_byte(const char *c, const char *e)
{
    while (e - c >= 8) {
        uint64_t x = xv_word_load(c);
        if (xv_word_below(x, 0x20) | xv_word_is(x, 0x7f))
            break;
        c += 8;
    }
    for (; c < e; c++)
        if (is_ctl((unsigned char)*c) && *c != '\t')
            return c;
    return NULL;
}

static int name_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && strncasecmp(s, lit, l) == 0;
}

/* Next element of a comma-separated list; skips empty elements and
 * whitespace; cuts parameters (";q=..."). 0 when the list is exhausted. */
static int list_next(const char **v, size_t *vlen, const char **tok, size_t *tlen)
{
    const char *s = *v, *e = *v + *vlen;
    for (;;) {
        while (s < e && (is_ows(*s) || *s == ','))
            s++;
        if (s == e) {
            *v = s;
            *vlen = 0;
            return 0;
        }
        const char *c = memchr(s, ',', (size_t)(e - s));
        const char *te = c ? c : e;
        const char *t = s;
        const char *semi = memchr(t, ';', (size_t)(te - t));
        const char *end = semi ? semi : te;
        while (end > t && is_ows(end[-1]))
            end--;
        *v = te;
        *vlen = (size_t)(e - te);
        if (end > t) {
            *tok = t;
            *tlen = (size_t)(end - t);
            return 1;
        }
        s = te;
    }
}

/* "HTTP/1.x": returns the minor version, or -1. */
static int parse_version(const char *s, size_t n)
{
    if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9')
        return -1;
    return s[7] - '0';
}

/* Content-Length value: digits, or a list of identical digit strings
 * (RFC 9110 §8.6 lets a recipient accept "5, 5"). -1 when invalid. */
static int64_t parse_content_length(const char *v, size_t n)
{
    int64_t val = -1;
    const char *tok;
    size_t tlen;
    if (n == 0)
        return -1;
    while (list_next(&v, &n, &tok, &tlen)) {
        int64_t x = 0;
        for (size_t i = 0; i < tlen; i++) {
            if (tok[i] < '0' || tok[i] > '9')
                return -1;
            if (x > (INT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (tok[i] - '0');
        }
        if (val >= 0 && x != val)
            return -1;
        val = x;
    }
    return val;
}

/* What the header fields say about framing, gathered while parsing. */
struct head_facts {
    int64_t cl;          /* Content-Length, -1 when absent */
    int te;              /* Transfer-Encoding present */
    int te_chunked_last; /* its final coding is chunked */
    int te_bad;          /* chunked not last, or twice */
    int te_other;        /* a coding besides chunked (body undecodable for us) */
    int conn_close;      /* Connection: close */
    int conn_ka;         /* Connection: keep-alive */
    int expect;          /* Expect: 100-continue */
    int ce_count;        /* non-identity content codings */
    int ce;              /* the content coding when ce_count == 1 */
};

static const char *apply_header(struct head_facts *f, const struct xv_http_header *h)
{
    const char *tok;
    size_t tlen;
    const char *v = h->value;
    size_t vlen = h->value_len;
    switch (h->name_len) {
    case 14:
        if (name_is(h->name, 14, "content-length")) {
            int64_t cl = parse_content_length(v, vlen);
            if (cl < 0 || (f->cl >= 0 && f->cl != cl))
                return "bad content-length";
            f->cl = cl;
        }
        break;
    case 17:
        if (name_is(h->name, 17, "transfer-encoding")) {
            f->te = 1;
            while (list_next(&v, &vlen, &tok, &tlen)) {
                int ch = name_is(tok, tlen, "chunked");
                if (f->te_chunked_last)
                    f->te_bad = 1; /* chunked applied, then more */
                if (!ch)
                    f->te_other = 1;
                f->te_chunked_last = ch;
            }
        }
        break;
    case 10:
        if (name_is(h->name, 10, "connection")) {
            while (list_next(&v, &vlen, &tok, &tlen)) {
                if (name_is(tok, tlen, "close"))
                    f->conn_close = 1;
                else if (name_is(tok, tlen, "keep-alive"))
                    f->conn_ka = 1;
            }
        }
        break;
    case 6:
        if (name_is(h->name, 6, "expect") && name_is(v, vlen, "100-continue"))
            f->expect = 1;
        break;
    case 16:
        if (name_is(h->name, 16, "content-encoding")) {
            while (list_next(&v, &vlen, &tok, &tlen)) {
                if (name_is(tok, tlen, "identity"))
                    continue;
                f->ce_count++;
                if (name_is(tok, tlen, "gzip") || name_is(tok, tlen, "x-gzip"))
                    f->ce = XV_HTTP_CE_GZIP;
                else if (name_is(tok, tlen, "deflate"))
                    f->ce = XV_HTTP_CE_DEFLATE;
                else
                    f->ce = XV_HTTP_CE_OTHER;
            }
        }
        break;
    default:
        break;
    }
    return NULL;
}

static const char *parse_start_line(struct xv_http_parser *p, struct xv_http_head *h,
                                    const char *l, size_t n)
{
    if (p->kind == XV_HTTP_REQUEST) {
        /* method SP request-target SP HTTP-version */
        size_t i = 0;
        while (i < n && tchar[(unsigned char)l[i]])
            i++;
        if (i == 0 || i == n || l[i] != ' ')
            return "bad request line";
        h->method = l;
        h->method_len = i;
        size_t t = ++i;
        while (i < n && l[i] != ' ') {
            if (is_ctl((unsigned char)l[i]))
                return "bad request line";
            i++;
        }
        if (i == t || i == n)
            return "bad request line";
        h->target = l + t;
        h->target_len = i - t;
        i++;
        int minor = parse_version(l + i, n - i);
        if (minor < 0)
            return "bad request line";
        h->version_minor = minor;
    } else {
        /* HTTP-version SP 3DIGIT [SP reason-phrase]; the reason may be absent
         * without its space (seen from several servers). */
        int minor = n >= 8 ? parse_version(l, 8) : -1;
        if (minor < 0 || n < 12 || l[8] != ' ')
            return "bad status line";
        int st = 0;
        for (int k = 9; k < 12; k++) {
            if (l[k] < '0' || l[k] > '9')
                return "bad status line";
            st = st * 10 + (l[k] - '0');
        }
        if (st < 100 || st > 599 || (n > 12 && l[12] != ' '))
            return "bad status line";
        for (size_t k = 12; k < n; k++)
            if (is_ctl((unsigned char)l[k]) && l[k] != '\t')
                return "bad status line";
        h->status = st;
        h->version_minor = minor;
    }
    return NULL;
}

/* Grow the header array so it holds at least `need` entries. */
static int hdrs_reserve(struct xv_http_parser *p, size_t need)
{
    if (need <= p->hdrs_cap)
        return 0;
    size_t cap = p->hdrs_cap ? p->hdrs_cap * 2 : 32;
    while (cap < need)
        cap *= 2;
    struct xv_http_header *n = realloc(p->hdrs, cap * sizeof *n);
    if (!n)
        return XV_E_NOMEM;
    p->hdrs = n;
    p->hdrs_cap = cap;
    return 0;
}

/* Parse a complete header block into h (pointers into raw). NULL or why. */
static const char *parse_head(struct xv_http_parser *p, const char *raw, size_t len,
                              struct xv_http_head *h, struct head_facts *f)
{
    const char *s = raw, *e = raw + len;
    size_t nh = 0;
    int first = 1;
    while (s < e) {
        const char *lf = memchr(s, '\n', (size_t)(e - s));
        if (!lf)
            return "bad header block"; /* cannot happen: raw ends in LF */
        size_t n = (size_t)(lf - s);
        if (n && s[n - 1] == '\r')
            n--;
        /* A CR anywhere else in a line is a bare CR: reject (RFC 9112 §2.2). */
        if (n && memchr(s, '\r', n))
            return first ? "bad start line" : "bad header line";
        if (first) {
            const char *why = parse_start_line(p, h, s, n);
            if (why)
                return why;
            first = 0;
        } else if (n == 0) {
            break; /* the blank line */
        } else {
            if (is_ows(s[0]))
                return "obsolete header line folding";
            const char *colon = memchr(s, ':', n);
            if (!colon || colon == s)
                return "bad header line";
            size_t nl = (size_t)(colon - s);
            for (size_t i = 0; i < nl; i++)
                if (!tchar[(unsigned char)s[i]])
                    return "bad header name";
            const char *v = colon + 1, *ve = s + n;
            while (v < ve && is_ows(*v))
                v++;
            while (ve > v && is_ows(ve[-1]))
                ve--;
            if (bad_value_byte(v, ve))
                return "bad header value";
            if (hdrs_reserve(p, nh + 1) != 0)
                return "out of memory";
            struct xv_http_header *hd = &p->hdrs[nh++];
            hd->name = s;
            hd->name_len = nl;
            hd->value = v;
            hd->value_len = (size_t)(ve - v);
            const char *why = apply_header(f, hd);
            if (why)
                return why;
        }
        s = lf + 1;
    }
    h->headers = p->hdrs;
    h->nheaders = nh;
    return NULL;
}

/* ---------------------------------------------------------------- bodies */

static void emit_raw(void *ud, const char *d, size_t n)
{
    struct xv_http_parser *p = ud;
    if (p->cb.on_body)
        p->cb.on_body(p->ud, d, n);
}

/* Body bytes after framing is removed: decode and report. */
static void body_bytes(struct xv_http_parser *p, const char *d, size_t n)
{
    if (!n)
        return;
    if (p->cb.on_raw)
        p->cb.on_raw(p->ud, d, n);
    switch (p->decode) {
    case XV_HTTP_CE_IDENTITY:
        emit_raw(p, d, n);
        break;
    case XV_HTTP_CE_GZIP:
    case XV_HTTP_CE_DEFLATE: {
        int rc = xv_http_inflate_feed(&p->inf, d, n, emit_raw, p);
        if (rc == XV_E_NOMEM)
            set_error(p, "out of memory");
        else if (rc == XV_E_LIMIT)
            set_error(p, "compressed body exceeds the inflation limits "
                         "(XENOVIA_INFLATE_MAX_BYTES/_RATIO); not inspected");
        else if (rc)
            set_error(p, "corrupt compressed body");
        break;
    }
    default:
        break; /* an encoding we cannot decode: framing only */
    }
}

static void message_end(struct xv_http_parser *p)
{
    p->state = p->tunnel_after ? XV_HTTP_S_TUNNEL : XV_HTTP_S_HEAD;
    p->mode = BM_NONE;
    p->tunnel_after = 0;
    p->ended = 1;
    if (p->cb.on_end)
        p->cb.on_end(p->ud);
}

/* Chunked framing. Returns bytes consumed; stops early at message end or error. */
static size_t chunked_feed(struct xv_http_parser *p, const char *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = d[i];
        switch (p->cstate) {
        case CS_SIZE_START:
        case CS_SIZE: {
            int v;
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if (c >= 'a' && c <= 'f')
                v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                v = c - 'A' + 10;
            else
                v = -1;
            if (v >= 0) {
                if (p->remaining > CHUNK_SIZE_MAX) {
                    set_error(p, "chunk size too large");
                    return n;
                }
                p->remaining = p->remaining * 16 + (uint64_t)v;
                p->cstate = CS_SIZE;
                i++;
                break;
            }
            if (p->cstate == CS_SIZE_START) {
                set_error(p, "bad chunk size");
                return n;
            }
            p->cstate = CS_SIZE_WS;
            break; /* re-examine c there */
        }
        case CS_SIZE_WS:
            i++;
            if (is_ows(c))
                break;
            if (c == ';') {
                p->cstate = CS_EXT;
                p->cline = 0;
            } else if (c == '\r') {
                p->cstate = CS_SIZE_LF;
            } else if (c == '\n') {
                goto size_done;
            } else {
                set_error(p, "bad chunk size");
                return n;
            }
            break;
        case CS_EXT: {
            /* Extensions are skipped, not interpreted. */
            const char *lf = memchr(d + i, '\n', n - i);
            size_t take = lf ? (size_t)(lf - (d + i)) : n - i;
            p->cline += take;
            if (p->cline > CHUNK_EXT_MAX) {
                set_error(p, "chunk extension too long");
                return n;
            }
            i += take;
            if (!lf)
                break;
            i++;
            goto size_done;
        }
        case CS_SIZE_LF:
            i++;
            if (c != '\n') {
                set_error(p, "bad chunk size line");
                return n;
            }
        size_done:
            if (p->remaining == 0) {
                p->cstate = CS_TRAILER_START;
                p->cline = 0;
            } else {
                p->cstate = CS_DATA;
            }
            break;
        case CS_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > p->remaining)
                take = (size_t)p->remaining;
            body_bytes(p, d + i, take);
            if (p->state == XV_HTTP_S_ERROR)
                return n;
            p->remaining -= take;
            i += take;
            if (p->remaining == 0)
                p->cstate = CS_DATA_CR;
            break;
        }
        case CS_DATA_CR:
            i++;
            if (c == '\r')
                p->cstate = CS_DATA_LF;
            else if (c == '\n')
                p->cstate = CS_SIZE_START; /* bare LF tolerated, as for lines */
            else {
                set_error(p, "missing CRLF after chunk data");
                return n;
            }
            break;
        case CS_DATA_LF:
            i++;
            if (c != '\n') {
                set_error(p, "missing CRLF after chunk data");
                return n;
            }
            p->cstate = CS_SIZE_START;
            break;
        case CS_TRAILER_START:
            if (c == '\r') {
                i++;
                p->cstate = CS_TRAILER_LF;
            } else if (c == '\n') {
                i++;
                message_end(p);
                return i;
            } else {
                p->cstate = CS_TRAILER_LINE;
            }
            break;
        case CS_TRAILER_LINE: {
            /* Trailer fields are skipped (not reported), bounded by head_max. */
            const char *lf = memchr(d + i, '\n', n - i);
            size_t take = lf ? (size_t)(lf - (d + i)) + 1 : n - i;
            p->cline += take;
            if (p->cline > p->head_max) {
                set_error(p, "trailer section too large");
                return n;
            }
            i += take;
            if (lf)
                p->cstate = CS_TRAILER_START;
            break;
        }
        case CS_TRAILER_LF:
            i++;
            if (c != '\n') {
                set_error(p, "bad trailer section");
                return n;
            }
            message_end(p);
            return i;
        }
    }
    return i;
}

/* Body bytes in the current framing. Returns bytes consumed. */
static size_t body_feed(struct xv_http_parser *p, const char *d, size_t n)
{
    switch (p->mode) {
    case BM_LENGTH: {
        size_t take = n;
        if ((uint64_t)take > p->remaining)
            take = (size_t)p->remaining;
        body_bytes(p, d, take);
        if (p->state == XV_HTTP_S_ERROR)
            return n;
        p->remaining -= take;
        if (p->remaining == 0)
            message_end(p);
        return take;
    }
    case BM_CHUNKED:
        return chunked_feed(p, d, n);
    case BM_CLOSE:
        body_bytes(p, d, n);
        return n;
    default:
        message_end(p);
        return 0;
    }
}

/* ----------------------------------------------------------------- heads */

/* A complete header block: parse, report, set up the body.
 * Returns 1 when on_head asked to pause. */
static int head_done(struct xv_http_parser *p, const char *raw, size_t len)
{
    struct xv_http_head h;
    struct head_facts f;
    memset(&h, 0, sizeof h);
    memset(&f, 0, sizeof f);
    f.cl = -1;
    h.kind = p->kind;
    h.raw = raw;
    h.raw_len = len;
    const char *why = parse_head(p, raw, len, &h, &f);
    if (why) {
        set_error(p, why);
        return 0;
    }
    if (f.te && f.te_bad && p->kind == XV_HTTP_REQUEST) {
        /* RFC 9112 §6.3: a request whose final coding is not chunked cannot
         * be framed. A response falls back to close-delimited below. */
        set_error(p, "bad transfer-encoding");
        return 0;
    }
    if (f.te && !f.te_chunked_last && p->kind == XV_HTTP_REQUEST) {
        set_error(p, "bad transfer-encoding");
        return 0;
    }
    h.expect_continue = p->kind == XV_HTTP_REQUEST && f.expect;
    h.content_encoding = f.ce_count == 0 ? XV_HTTP_CE_IDENTITY
                         : f.ce_count == 1 ? f.ce
                                           : XV_HTTP_CE_OTHER;
    h.keep_alive = h.version_minor >= 1 ? !f.conn_close : (f.conn_ka && !f.conn_close);
    /* Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): report
     * the length that actually frames the body. */
    h.content_length = f.te ? -1 : f.cl;

    int mode, interim = 0, tunnel = 0;
    if (p->kind == XV_HTTP_REQUEST) {
        if (name_is(h.method, h.method_len, "CONNECT")) {
            /* The client speaks the tunnelled protocol next. */
            mode = BM_NONE;
            tunnel = 1;
        } else if (f.te) {
            mode = BM_CHUNKED;
        } else if (f.cl > 0) {
            mode = BM_LENGTH;
        } else {
            mode = BM_NONE;
        }
    } else {
        int st = h.status;
        int rq = 0;
        if (st >= 200 || st == 101)
            rq = rq_pop(p);
        if (st == 101) {
            mode = BM_NONE;
            tunnel = 1;
        } else if (st < 200) {
            mode = BM_NONE;
            interim = 1;
        } else if ((rq & REQ_CONNECT) && st < 300) {
            mode = BM_NONE;
            tunnel = 1;
        } else if ((rq & REQ_HEAD) || st == 204 || st == 304) {
            mode = BM_NONE;
        } else if (f.te && f.te_chunked_last && !f.te_bad) {
            mode = BM_CHUNKED;
        } else if (f.te) {
            mode = BM_CLOSE;
        } else if (f.cl >= 0) {
            mode = f.cl > 0 ? BM_LENGTH : BM_NONE;
        } else {
            mode = BM_CLOSE;
        }
        if (mode == BM_CLOSE)
            h.keep_alive = 0;
    }
    if (tunnel)
        h.keep_alive = 0;
    h.chunked = mode == BM_CHUNKED;
    h.no_body = mode == BM_NONE;

    /* Set up before the callback so parser_state() inside it is right. */
    p->mode = mode;
    p->tunnel_after = tunnel;
    p->decode = f.te_other ? XV_HTTP_CE_OTHER : h.content_encoding;
    if (mode == BM_LENGTH)
        p->remaining = (uint64_t)f.cl;
    if (mode == BM_CHUNKED) {
        p->cstate = CS_SIZE_START;
        p->remaining = 0;
    }
    if (mode != BM_NONE) {
        p->state = XV_HTTP_S_BODY;
        if ((p->decode == XV_HTTP_CE_GZIP || p->decode == XV_HTTP_CE_DEFLATE) &&
            xv_http_inflate_begin(&p->inf, p->decode) != 0) {
            set_error(p, "out of memory");
            return 0;
        }
    }

    int rc = p->cb.on_head ? p->cb.on_head(p->ud, &h) : XV_HTTP_OK;
    if (p->state == XV_HTTP_S_ERROR)
        return 0;
    if (mode == BM_NONE && !interim)
        message_end(p);
    return rc == XV_HTTP_PAUSE;
}

/* Find the blank line ending a header block in buf[0..n), resuming at the
 * line starting at *ls. Returns the offset just past it, or 0 when absent
 * (then *ls is the start of the incomplete line). */
static size_t find_head_end(const char *buf, size_t n, size_t *ls)
{
    size_t s = *ls;
    while (s < n) {
        const char *lf = memchr(buf + s, '\n', n - s);
        if (!lf)
            break;
        size_t i = (size_t)(lf - buf);
        if (i == s || (i == s + 1 && buf[s] == '\r'))
            return i + 1;
        s = i + 1;
    }
    *ls = s;
    return 0;
}

static int hbuf_reserve(struct xv_http_parser *p, size_t need)
{
    if (need <= p->hcap)
        return 0;
    size_t cap = p->hcap ? p->hcap * 2 : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > p->head_max)
        cap = p->head_max;
    char *n = realloc(p->hbuf, cap);
    if (!n)
        return XV_E_NOMEM;
    p->hbuf = n;
    p->hcap = cap;
    return 0;
}

/* Header-block bytes. Returns bytes consumed; *paused set when on_head paused. */
static size_t head_feed(struct xv_http_parser *p, const char *d, size_t n, int *paused)
{
    size_t i = 0;
    if (p->hlen == 0) {
        /* Between messages: tolerate stray CRLFs (RFC 9112 §2.2). */
        while (i < n && (d[i] == '\r' || d[i] == '\n'))
            i++;
        if (i == n)
            return n;
        /* Fast path: the whole block is in this feed; parse it in place. */
        size_t avail = n - i;
        size_t lim = avail < p->head_max ? avail : p->head_max;
        size_t ls = 0;
        size_t end = find_head_end(d + i, lim, &ls);
        if (end) {
            *paused = head_done(p, d + i, end);
            return i + end;
        }
        if (avail >= p->head_max) {
            set_error(p, "header block too large");
            return n;
        }
        if (hbuf_reserve(p, avail) != 0) {
            set_error(p, "out of memory");
            return n;
        }
        memcpy(p->hbuf, d + i, avail);
        p->hlen = avail;
        p->hscan = ls;
        return n;
    }
    /* Continue a carried block: copy at most what head_max still allows. */
    size_t room = p->head_max - p->hlen;
    size_t take = n < room ? n : room;
    if (hbuf_reserve(p, p->hlen + take) != 0) {
        set_error(p, "out of memory");
        return n;
    }
    memcpy(p->hbuf + p->hlen, d, take);
    size_t old = p->hlen;
    size_t end = find_head_end(p->hbuf, old + take, &p->hscan);
    if (end) {
        p->hlen = 0;
        p->hscan = 0;
        *paused = head_done(p, p->hbuf, end);
        return end - old;
    }
    if (take == room) {
        set_error(p, "header block too large");
        return n;
    }
    p->hlen = old + take;
    return n;
}

void xv_http_parser_pause_at_end(struct xv_http_parser *p, int on)
{
    p->pause_at_end = on;
}

size_t xv_http_parser_feed(struct xv_http_parser *p, const char *data, size_t len)
{
    size_t off = 0;
    p->ended = 0;
    while (off < len) {
        switch (p->state) {
        case XV_HTTP_S_HEAD: {
            int paused = 0;
            off += head_feed(p, data + off, len - off, &paused);
            if (paused)
                return off;
            break;
        }
        case XV_HTTP_S_BODY:
            off += body_feed(p, data + off, len - off);
            break;
        default: /* TUNNEL, ERROR: opaque bytes */
            return len;
        }
        if (p->ended && p->pause_at_end && p->state != XV_HTTP_S_ERROR)
            return off; /* pipelining: the caller handles one message at a time */
    }
    return len;
}

void xv_http_parser_eof(struct xv_http_parser *p)
{
    switch (p->state) {
    case XV_HTTP_S_HEAD:
        if (p->hlen)
            set_error(p, "connection closed mid-message");
        break;
    case XV_HTTP_S_BODY:
        if (p->mode == BM_CLOSE)
            message_end(p);
        else
            set_error(p, "connection closed mid-message");
        break;
    default:
        break;
    }
}

const struct xv_http_header *xv_http_head_find_n(const struct xv_http_head *h, const char *name,
                                                 size_t n)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (h->headers[i].name_len == n && strncasecmp(h->headers[i].name, name, n) == 0)
            return &h->headers[i];
    return NULL;
}
