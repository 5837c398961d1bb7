/*
 * cassette.c — record and replay (SPEC §8.1) inside the state machine.
 *
 * At release, after the session and the policy decided (a blocked call stays
 * blocked), a call is looked up in the cassette (cassette/):
 *   replay  -> the recorded response is queued for the app through the
 *              synthetic-answer path, with this call's session and trace ids
 *              stamped; nothing is sent; the record says replayed: true;
 *   miss    -> a 404 whose JSON error names the cassette and the nearest
 *              recording's difference, plus one stderr line; nothing is sent;
 *   record  -> the request is sent as usual and its response (status, head,
 *              decoded body, arrival times) is kept on the call and written
 *              to the cassette when it ends.
 * A request whose body was not held whole (a 100-continue over the hold
 * limit) is sent and not recorded (the record says so).
 *
 * Thread safety: called with the connection's lock held; the cassette has
 * its own lock.
 */
#include "xv_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_cassette.h"

#define CAS_MAX_HEADERS 64
#define CAS_MAX_MARKS 4096

/* What a recording call keeps until its response ends. */
struct xv_conn_cas {
    char method[16];
    char host[256];
    char path[2048];
    char type[32];
    char addr[64];
    int port;
    struct xv_buf req_head;  /* the request's header lines, NUL-separated name/value */
    struct xv_buf req_body;
    int status;
    char reason[64];
    struct xv_buf resp_head; /* the response's header lines, NUL-separated name/value */
    struct xv_buf resp_body; /* decoded body */
    struct xv_buf resp_raw;  /* ... as it came, when it was content-encoded */
    struct xv_cassette_mark marks[CAS_MAX_MARKS];
    size_t nmarks;
    uint64_t head_ns;        /* response head seen */
    int decoded;             /* resp_body is decoded from a Content-Encoding */
    int chunked;             /* the response was framed chunked */
};

void xv_conn_cassette_free(struct xv_conn_cas *k)
{
    if (!k)
        return;
    xv_buf_free(&k->req_head);
    xv_buf_free(&k->req_body);
    xv_buf_free(&k->resp_head);
    xv_buf_free(&k->resp_body);
    xv_buf_free(&k->resp_raw);
    free(k);
}

/* Header lines of a raw head (after its first line) as NUL-separated
 * name/value pairs in out. */
static void split_headers(const char *h, size_t n, struct xv_buf *out)
{
    const char *p = memchr(h, '\n', n);
    const char *end = h + n;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break;
        const char *colon = memchr(p, ':', ll);
        if (colon) {
            const char *v = colon + 1;
            size_t vl = ll - (size_t)(v - p);
            while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            xv_buf_append(out, p, (size_t)(colon - p));
            xv_buf_append(out, "", 1);
            xv_buf_append(out, v, vl);
            xv_buf_append(out, "", 1);
        }
        p = eol;
    }
}

/* NUL-separated pairs -> header array (pointers into b). */
static size_t headers_of(const struct xv_buf *b, struct xv_cassette_header *hs, size_t max)
{
    size_t n = 0;
    const char *p = b->data, *end = b->data ? b->data + b->len : NULL;
    while (p && p < end && n < max) {
        hs[n].name = p;
        p += strlen(p) + 1;
        if (p >= end)
            break;
        hs[n].value = p;
        p += strlen(p) + 1;
        n++;
    }
    return n;
}

static int head_has(const char *h, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(h + i, needle, k) == 0)
            return 1;
    return 0;
}

/* The request as the cassette sees it; fills k (request part). 0 or -1. */
static int take_request(struct xv_conn *c, struct xv_call *call, struct xv_conn_cas *k)
{
    const char *h = c->tx_hold.data;
    size_t hl = c->tx_head_len;
    if (!h || hl < 16 || hl > c->tx_hold.len)
        return -1;
    const char *sp1 = memchr(h, ' ', hl);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hl - (size_t)(sp1 + 1 - h)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - h) >= sizeof k->method ||
        (size_t)(sp2 - sp1 - 1) >= sizeof k->path)
        return -1;
    memcpy(k->method, h, (size_t)(sp1 - h));
    k->method[sp1 - h] = '\0';
    memcpy(k->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    k->path[sp2 - sp1 - 1] = '\0';
    snprintf(k->host, sizeof k->host, "%s", c->peer.host[0] ? c->peer.host : call->host);
    snprintf(k->addr, sizeof k->addr, "%s", c->peer.addr);
    k->port = c->peer.port;
    snprintf(k->type, sizeof k->type, "%s",
             xv_openai_type_name(xv_openai_call_type(call->api)));
    xv_buf_init(&k->req_head, 64 * 1024);
    xv_buf_init(&k->req_body, c->tx_hold.max);
    split_headers(h, hl, &k->req_head);
    /* the body as sent: exact bytes when they are plain, else the parsed JSON */
    if (head_has(h, hl, "\nTransfer-Encoding:") || head_has(h, hl, "\nContent-Encoding:")) {
        const cJSON *j = xv_openai_call_request_json(call->api);
        char *t = j ? cJSON_PrintUnformatted(j) : NULL;
        if (!t)
            return -1;
        int r = xv_buf_append(&k->req_body, t, strlen(t));
        free(t);
        return r ? -1 : 0;
    }
    return xv_buf_append(&k->req_body, h + hl, c->tx_hold.len - hl) ? -1 : 0;
}

static void fill_req(const struct xv_conn_cas *k, struct xv_cassette_req *rq,
                     struct xv_cassette_header *hs, size_t max)
{
    rq->method = k->method;
    rq->host = k->host;
    rq->port = k->port;
    rq->addr = k->addr;
    rq->path = k->path;
    rq->request_type = k->type;
    rq->headers = hs;
    rq->nheaders = headers_of(&k->req_head, hs, max);
    rq->body = k->req_body.data ? k->req_body.data : "";
    rq->body_len = k->req_body.len;
}

int xv_conn_cassette_release(struct xv_conn *c, struct xv_call *call)
{
    struct xv_cassette *cas = xv_conn_cfg.cassette;
    if (!cas || !call || !call->api)
        return 0;
    if (!(c->tx_holding || c->tx_req_done)) {
        call->tx_error = "not recorded or replayed: the request body was not held whole";
        return 0;
    }
    struct xv_conn_cas *k = calloc(1, sizeof *k);
    if (!k || take_request(c, call, k) != 0) {
        xv_conn_cassette_free(k);
        return 0;
    }
    struct xv_cassette_header hs[CAS_MAX_HEADERS];
    struct xv_cassette_req rq;
    fill_req(k, &rq, hs, CAS_MAX_HEADERS);
    char stamp[256];
    if (xv_conn_cfg.disabled_stamp)
        stamp[0] = '\0';
    else
        snprintf(stamp, sizeof stamp, "%s%s%sX-Xenovia-Trace-Id: %s\r\n",
                 call->session_id[0] ? "X-Xenovia-Session-Id: " : "",
                 call->session_id, call->session_id[0] ? "\r\n" : "", call->trace_id);
    struct xv_buf answer, why;
    xv_buf_init(&answer, (size_t)64 << 20);
    xv_buf_init(&why, 4096);
    int v = xv_cassette_decide(cas, &rq, stamp, 0, &answer, &why, NULL);
    int answered = 0;
    if (v == XV_CASSETTE_REPLAY || v == XV_CASSETTE_MISS) {
        call->synthetic = 1;
        call->replayed = v == XV_CASSETTE_REPLAY;
        if (v == XV_CASSETTE_MISS) {
            call->tx_error = "no cassette recording matches this request; answered 404";
            xv_log(XV_LOG_WARN, "%s", why.data ? why.data : "cassette: no recording matches");
        }
        xv_conn_answer(c, answer.data, answer.len);
        answered = 1;
        xv_conn_cassette_free(k);
    } else if (v == XV_CASSETTE_RECORD) {
        xv_buf_init(&k->resp_head, 64 * 1024);
        xv_buf_init(&k->resp_body, xv_conn_cfg.body_max);
        xv_buf_init(&k->resp_raw, xv_conn_cfg.body_max);
        call->cas = k;
    } else {
        xv_conn_cassette_free(k); /* internal failure: sent as if no cassette were set */
    }
    xv_buf_free(&answer);
    xv_buf_free(&why);
    return answered;
}

void xv_conn_cassette_head(struct xv_call *call, const struct xv_http_head *h)
{
    struct xv_conn_cas *k = call->cas;
    if (!k)
        return;
    k->status = h->status;
    k->head_ns = xv_now_mono_ns();
    k->decoded = h->content_encoding == XV_HTTP_CE_GZIP || h->content_encoding == XV_HTTP_CE_DEFLATE;
    k->chunked = h->chunked;
    /* reason phrase: after "HTTP/1.x NNN " up to the line end */
    const char *eol = memchr(h->raw, '\n', h->raw_len);
    if (eol && h->raw_len > 13 && eol - h->raw > 13) {
        size_t n = (size_t)(eol - h->raw) - 13;
        if (n && h->raw[13 + n - 1] == '\r')
            n--;
        if (n >= sizeof k->reason)
            n = sizeof k->reason - 1;
        memcpy(k->reason, h->raw + 13, n);
        k->reason[n] = '\0';
    }
    xv_buf_reset(&k->resp_head);
    xv_buf_reset(&k->resp_body);
    xv_buf_reset(&k->resp_raw);
    k->nmarks = 0;
    split_headers(h->raw, h->raw_len, &k->resp_head);
    if (h->content_encoding == XV_HTTP_CE_OTHER) {
        /* a body the agent cannot decode cannot be replayed faithfully */
        xv_conn_cassette_free(k);
        call->cas = NULL;
    }
}

void xv_conn_cassette_body(struct xv_call *call, const char *p, size_t n)
{
    struct xv_conn_cas *k = call->cas;
    if (!k)
        return;
    if (xv_buf_append(&k->resp_body, p, n) != 0) {
        xv_log(XV_LOG_WARN, "cassette: a response over XENOVIA_BODY_MAX_BYTES is not recorded");
        xv_conn_cassette_free(k);
        call->cas = NULL;
        return;
    }
    uint32_t t = (uint32_t)((xv_now_mono_ns() - k->head_ns) / 1000000u);
    if (k->nmarks && k->marks[k->nmarks - 1].t_ms == t)
        k->marks[k->nmarks - 1].off_end = k->resp_body.len;
    else if (k->nmarks < CAS_MAX_MARKS)
        k->marks[k->nmarks++] = (struct xv_cassette_mark){ k->resp_body.len, t };
    else
        k->marks[k->nmarks - 1].off_end = k->resp_body.len;
}

void xv_conn_cassette_raw(struct xv_call *call, const char *p, size_t n)
{
    struct xv_conn_cas *k = call->cas;
    if (k && k->decoded && xv_buf_append(&k->resp_raw, p, n) != 0) {
        xv_conn_cassette_free(k);
        call->cas = NULL;
    }
}

void xv_conn_cassette_end(struct xv_call *call, const char *error)
{
    struct xv_conn_cas *k = call->cas;
    call->cas = NULL;
    if (!k)
        return;
    if (!error && k->status >= 100) {
        struct xv_cassette_header qh[CAS_MAX_HEADERS], rh[CAS_MAX_HEADERS];
        struct xv_cassette_req rq;
        fill_req(k, &rq, qh, CAS_MAX_HEADERS);
        struct xv_cassette_resp rs = {
            .status = k->status, .reason = k->reason, .headers = rh,
            .nheaders = headers_of(&k->resp_head, rh, CAS_MAX_HEADERS),
            .body = k->resp_body.data ? k->resp_body.data : "", .body_len = k->resp_body.len,
            .marks = k->marks, .nmarks = k->nmarks, .decoded = k->decoded,
            .raw = k->resp_raw.data, .raw_len = k->resp_raw.len, .chunked = k->chunked,
        };
        if (xv_cassette_record(xv_conn_cfg.cassette, &rq, &rs) != 0)
            xv_log(XV_LOG_WARN, "cassette: could not write a recording");
    }
    xv_conn_cassette_free(k);
}

int xv_conn_cassette_wire(const struct xv_cassette_req *rq, struct xv_buf *answer,
                          struct xv_buf *timing)
{
    struct xv_cassette *cas = xv_conn_cfg.cassette;
    if (!cas)
        return XV_E_STATE;
    struct xv_buf why;
    xv_buf_init(&why, 4096);
    int v = xv_cassette_decide(cas, rq, NULL, 1, answer, &why, timing);
    if (v == XV_CASSETTE_MISS)
        xv_log(XV_LOG_WARN, "%s", why.data ? why.data : "cassette: no recording matches");
    xv_buf_free(&why);
    /* a replay-only cassette never records; anything else is a failure */
    return v == XV_CASSETTE_REPLAY || v == XV_CASSETTE_MISS ? 0 : XV_E_STATE;
}
