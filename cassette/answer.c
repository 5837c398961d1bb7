/*
 * answer.c — turning recordings into the bytes the app reads, responses into
 * recordings, and a request that matches nothing into an answer that says
 * what differs from the nearest recording.
 *
 * A replayed response is framed anew: the recorded headers minus framing
 * (Content-Length, Transfer-Encoding) and minus the stamped
 * X-Xenovia-Trace-Id/-Session-Id (the agent stamps fresh ones), then
 * Content-Length for a body, or chunked framing (one chunk per SSE event for
 * a stream), as recorded, each in the recorded header's place; and
 * Connection: close (in the recorded Connection header's place, if any):
 * the agent ends the stream after a replayed answer. A body
 * recorded decoded is encoded again with its Content-Encoding, so the app's
 * decoder reads exactly the recorded text.
 *
 * Thread safety: no state; callers hold the cassette's mutex where needed.
 */
#include <nettle/base64.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cassette_int.h"
#include "xv_session.h"

/* ----------------------------------------------------------------- bodies */

/* Valid UTF-8 (common/utf8.c) without a NUL: cJSON strings are NUL-terminated. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    return !memchr(s, '\0', n) && xv_utf8_valid((const char *)s, n);
}

int xv_cassette_put_body(cJSON *obj, const char *body, size_t len)
{
    if (!body || len == 0) {
        cJSON_AddStringToObject(obj, "body", "");
        return 0;
    }
    if (utf8_valid((const unsigned char *)body, len)) {
        char *s = strndup(body, len);
        if (!s)
            return XV_E_NOMEM;
        cJSON_AddStringToObject(obj, "body", s);
        free(s);
        return 0;
    }
    size_t out = BASE64_ENCODE_RAW_LENGTH(len);
    char *b = malloc(out + 1);
    if (!b)
        return XV_E_NOMEM;
    base64_encode_raw(b, len, (const uint8_t *)body);
    b[out] = '\0';
    cJSON_AddStringToObject(obj, "body_base64", b);
    free(b);
    return 0;
}

char *xv_cassette_get_body(const cJSON *obj, size_t *len)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "body");
    if (cJSON_IsString(t)) {
        *len = strlen(t->valuestring);
        return strdup(t->valuestring);
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "body_base64");
    if (cJSON_IsString(b)) {
        size_t in = strlen(b->valuestring);
        char *out = malloc(BASE64_DECODE_LENGTH(in) + 1);
        if (!out)
            return NULL;
        struct base64_decode_ctx ctx;
        base64_decode_init(&ctx);
        size_t n = BASE64_DECODE_LENGTH(in);
        if (!base64_decode_update(&ctx, &n, (uint8_t *)out, in, b->valuestring) ||
            !base64_decode_final(&ctx)) {
            free(out);
            return NULL;
        }
        out[n] = '\0';
        *len = n;
        return out;
    }
    *len = 0;
    return strdup("");
}

/* ------------------------------------------------------ response -> JSON */

static const char *header(const struct xv_cassette_resp *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* A header a replay may hand over: a token name (RFC 9110 tchar) and a
 * value without control bytes (tab aside). A hand-edited recording can
 * neither add lines nor break the head. */
static int header_ok(const char *name, const char *value)
{
    static const char tch[] = "!#$%&'*+-.^_`|~";
    size_t n = strlen(name);
    if (n == 0 || n > 256)
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              strchr(tch, *p)))
            return 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

/* Headers a recording never keeps: the agent's own stamps (fresh ones are
 * stamped at replay). */
static int stamp_header(const char *name)
{
    return strcasecmp(name, "x-xenovia-trace-id") == 0 ||
           strcasecmp(name, "x-xenovia-session-id") == 0;
}


static uint32_t mark_time(const struct xv_cassette_resp *r, size_t end)
{
    for (size_t i = 0; i < r->nmarks; i++)
        if (r->marks[i].off_end >= end)
            return r->marks[i].t_ms;
    return r->nmarks ? r->marks[r->nmarks - 1].t_ms : 0;
}

/* SSE events of a body: each ends after a blank line ("\n\n" or "\r\n\r\n");
 * a trailing part without one is the last event. */
static int add_events(cJSON *obj, const struct xv_cassette_resp *r)
{
    cJSON *ev = cJSON_AddArrayToObject(obj, "events");
    if (!ev)
        return XV_E_NOMEM;
    size_t start = 0, i = 0, n = r->body_len;
    const char *b = r->body;
    while (start < n) {
        size_t end = n;
        for (i = start; i < n; i++) {
            if (b[i] == '\n' && i + 1 < n && b[i + 1] == '\n') {
                end = i + 2;
                break;
            }
            if (b[i] == '\n' && i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') {
                end = i + 3;
                break;
            }
        }
        char *s = strndup(b + start, end - start);
        cJSON *e = cJSON_CreateObject();
        if (!s || !e) {
            free(s);
            cJSON_Delete(e);
            return XV_E_NOMEM;
        }
        cJSON_AddNumberToObject(e, "t_ms", mark_time(r, end));
        cJSON_AddStringToObject(e, "data", s);
        free(s);
        cJSON_AddItemToArray(ev, e);
        start = end;
    }
    return 0;
}

cJSON *xv_cassette_resp_json(const struct xv_cassette_resp *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "status", r->status);
    cJSON_AddStringToObject(o, "reason", r->reason ? r->reason : "");
    cJSON *h = cJSON_AddArrayToObject(o, "headers");
    for (size_t i = 0; h && i < r->nheaders; i++) {
        if (xv_cassette_header_secret(r->headers[i].name) || stamp_header(r->headers[i].name))
            continue;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(r->headers[i].name));
        cJSON_AddItemToArray(pair, cJSON_CreateString(r->headers[i].value));
        cJSON_AddItemToArray(h, pair);
    }
    const char *ct = header(r, "content-type");
    const char *ce = header(r, "content-encoding");
    int sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    int encoded = ce && strcasecmp(ce, "identity") != 0 && !r->decoded;
    if (r->decoded)
        cJSON_AddBoolToObject(o, "body_decoded", 1); /* encoded again at replay */
    if (r->chunked)
        cJSON_AddBoolToObject(o, "chunked", 1);
    int rc;
    if (sse && !encoded && utf8_valid((const unsigned char *)r->body, r->body_len))
        rc = add_events(o, r);
    else
        rc = xv_cassette_put_body(o, r->body, r->body_len);
    if (rc == 0 && r->decoded && r->raw && r->raw_len) {
        /* the exact encoded bytes too (replayed as they are while present) */
        cJSON *tmp = cJSON_CreateObject();
        rc = tmp ? xv_cassette_put_body(tmp, r->raw, r->raw_len) : XV_E_NOMEM;
        cJSON *b = tmp ? cJSON_DetachItemFromObjectCaseSensitive(tmp, "body_base64") : NULL;
        if (b)
            cJSON_AddItemToObject(o, "body_encoded_base64", b);
        cJSON_Delete(tmp);
    }
    if (rc != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------ JSON -> answer */

/* A body stored decoded is encoded again with its Content-Encoding (gzip or
 * deflate): one stream, flushed after each piece, so a stream's events stay
 * separately readable. */
struct encoder {
    z_stream z;
    int on;
};

static int enc_init(struct encoder *e, const char *ce)
{
    memset(e, 0, sizeof *e);
    int bits;
    if (ce && strcasecmp(ce, "gzip") == 0)
        bits = 15 + 16;
    else if (ce && strcasecmp(ce, "deflate") == 0)
        bits = 15;
    else
        return 0;
    if (deflateInit2(&e->z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return XV_E_NOMEM;
    e->on = 1;
    return 0;
}

/* Encode (p, n) (finishing the stream when last) into out. */
static int enc_piece(struct encoder *e, const char *p, size_t n, int last, struct xv_buf *out)
{
    if (!e->on)
        return xv_buf_append(out, p, n);
    e->z.next_in = (Bytef *)(uintptr_t)p;
    e->z.avail_in = (uInt)n;
    char tmp[16384];
    int r;
    do {
        e->z.next_out = (Bytef *)tmp;
        e->z.avail_out = sizeof tmp;
        r = deflate(&e->z, last ? Z_FINISH : Z_SYNC_FLUSH);
        if (r == Z_STREAM_ERROR)
            return XV_E_IO;
        if (xv_buf_append(out, tmp, sizeof tmp - e->z.avail_out) != 0)
            return XV_E_LIMIT;
    } while (e->z.avail_out == 0 || (last && r != Z_STREAM_END));
    return 0;
}

static void enc_end(struct encoder *e)
{
    if (e->on)
        deflateEnd(&e->z);
    e->on = 0;
}

static int put_chunk(struct xv_buf *out, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    int r = xv_buf_appendf(out, "%zx\r\n", n);
    r = r ? r : xv_buf_append(out, p, n);
    return r ? r : xv_buf_append(out, "\r\n", 2);
}

/* The framed body of a recording (chunks included when chunked), in body. */
/* One (end offset, time) pair per event in timing (when not NULL). */
static void note_time(struct xv_buf *timing, size_t off, const cJSON *e)
{
    if (!timing)
        return;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "t_ms");
    struct xv_cassette_mark m = { off, cJSON_IsNumber(t) && t->valuedouble > 0 &&
                                               t->valuedouble < 3.6e6
                                           ? (uint32_t)t->valuedouble : 0 };
    xv_buf_append(timing, &m, sizeof m);
}

static int build_body(const cJSON *resp, const char *ce, int chunked, struct xv_buf *body,
                      struct xv_buf *timing)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(resp, "events");
    const cJSON *exact = cJSON_GetObjectItemCaseSensitive(resp, "body_encoded_base64");
    int decoded = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "body_decoded"));
    struct encoder enc;
    int r = 0;
    memset(&enc, 0, sizeof enc);
    struct xv_buf piece;
    xv_buf_init(&piece, body->max);
    if (cJSON_IsString(exact)) {
        /* the bytes as they came (still encoded): handed over unchanged */
        cJSON *tmp = cJSON_CreateObject();
        cJSON_AddStringToObject(tmp, "body_base64", exact->valuestring);
        size_t bl;
        char *raw = xv_cassette_get_body(tmp, &bl);
        cJSON_Delete(tmp);
        r = raw ? xv_buf_append(&piece, raw, bl) : XV_E_PARSE;
        free(raw);
        r = r ? r : chunked ? put_chunk(body, piece.data, piece.len)
                            : xv_buf_append(body, piece.data ? piece.data : "", piece.len);
    } else if (cJSON_IsArray(ev)) {
        r = decoded ? enc_init(&enc, ce) : 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ev)
        {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "data");
            if (r || !cJSON_IsString(d) || !d->valuestring[0])
                continue;
            xv_buf_reset(&piece);
            r = enc_piece(&enc, d->valuestring, strlen(d->valuestring), 0, &piece);
            r = r ? r : put_chunk(body, piece.data, piece.len);
            note_time(timing, body->len, e);
        }
        xv_buf_reset(&piece);
        if (!r && enc.on)
            r = enc_piece(&enc, "", 0, 1, &piece);
        r = r ? r : put_chunk(body, piece.data, piece.len);
    } else {
        r = decoded ? enc_init(&enc, ce) : 0;
        size_t bl;
        char *raw = r ? NULL : xv_cassette_get_body(resp, &bl);
        r = r ? r : raw ? enc_piece(&enc, raw, bl, 1, &piece) : XV_E_PARSE;
        free(raw);
        r = r ? r : chunked ? put_chunk(body, piece.data, piece.len)
                            : xv_buf_append(body, piece.data ? piece.data : "", piece.len);
    }
    if (!r && chunked)
        r = xv_buf_append(body, "0\r\n\r\n", 5);
    enc_end(&enc);
    xv_buf_free(&piece);
    return r;
}

int xv_cassette_build_answer(const cJSON *resp, const char *extra_head, int keep_alive,
                             struct xv_buf *out, struct xv_buf *timing)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(resp, "reason");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(resp, "headers");
    int chunked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "chunked")) ||
                  cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "events"));
    if (!cJSON_IsNumber(st) || st->valuedouble < 100 || st->valuedouble > 999)
        return XV_E_PARSE;
    const char *ce = NULL;
    const cJSON *h;
    cJSON_ArrayForEach(h, hs)
    {
        const cJSON *n = cJSON_GetArrayItem(h, 0), *v = cJSON_GetArrayItem(h, 1);
        if (cJSON_IsString(n) && cJSON_IsString(v) && strcasecmp(n->valuestring, "content-encoding") == 0)
            ce = v->valuestring;
    }
    struct xv_buf body;
    xv_buf_init(&body, out->max);
    struct xv_buf times;
    xv_buf_init(&times, 1 << 20);
    int r = build_body(resp, ce, chunked, &body, timing ? &times : NULL);
    const char *reason = cJSON_IsString(rs) && rs->valuestring[0] &&
                                 header_ok("reason", rs->valuestring) ? rs->valuestring : "OK";
    r = r ? r : xv_buf_appendf(out, "HTTP/1.1 %d %s\r\n", (int)st->valuedouble, reason);
    /* the recorded headers in their order, framing stated anew in place */
    int framed = 0, conn_hdr = 0;
    cJSON_ArrayForEach(h, hs)
    {
        const cJSON *n = cJSON_GetArrayItem(h, 0), *v = cJSON_GetArrayItem(h, 1);
        if (!cJSON_IsString(n) || !cJSON_IsString(v) || stamp_header(n->valuestring) ||
            !header_ok(n->valuestring, v->valuestring))
            continue; /* a hand-edited cassette cannot inject header lines */
        if (strcasecmp(n->valuestring, "content-length") == 0 ||
            strcasecmp(n->valuestring, "transfer-encoding") == 0) {
            if (!framed)
                r = r ? r : chunked ? xv_buf_appendf(out, "Transfer-Encoding: chunked\r\n")
                                    : xv_buf_appendf(out, "Content-Length: %zu\r\n", body.len);
            framed = 1;
            continue;
        }
        if (!keep_alive && (strcasecmp(n->valuestring, "connection") == 0 ||
                            strcasecmp(n->valuestring, "keep-alive") == 0)) {
            /* the agent ends the stream after a replayed answer (its
             * synthetic-answer path): say so where the upstream said it */
            if (!conn_hdr)
                r = r ? r : xv_buf_append(out, "Connection: close\r\n", 19);
            conn_hdr = 1;
            continue;
        }
        r = r ? r : xv_buf_appendf(out, "%s: %s\r\n", n->valuestring, v->valuestring);
    }
    if (!framed)
        r = r ? r : chunked ? xv_buf_appendf(out, "Transfer-Encoding: chunked\r\n")
                            : xv_buf_appendf(out, "Content-Length: %zu\r\n", body.len);
    if (!conn_hdr && !keep_alive)
        r = r ? r : xv_buf_append(out, "Connection: close\r\n", 19);
    r = r ? r : xv_buf_appendf(out, "%s\r\n", extra_head ? extra_head : "");
    size_t body_at = out->len;
    r = r ? r : xv_buf_append(out, body.data ? body.data : "", body.len);
    /* event times, their offsets now counted from the answer's start */
    for (size_t i = 0; !r && timing && i + sizeof(struct xv_cassette_mark) <= times.len;
         i += sizeof(struct xv_cassette_mark)) {
        struct xv_cassette_mark m;
        memcpy(&m, times.data + i, sizeof m);
        m.off_end += body_at;
        r = xv_buf_append(timing, &m, sizeof m);
    }
    xv_buf_free(&times);
    xv_buf_free(&body);
    return r;
}

/* ------------------------------------------------------------ JSON diff */

static void put_value(const cJSON *v, struct xv_buf *out)
{
    if (!out)
        return;
    if (!v) {
        xv_buf_append(out, "(absent)", 8);
        return;
    }
    struct xv_buf b;
    xv_buf_init(&b, 4096);
    xv_session_canonical_json(v, &b); /* a prefix is fine: it is shortened below */
    size_t n = b.len > 80 ? 77 : b.len;
    /* never cut inside a UTF-8 sequence */
    while (n > 0 && n < b.len && ((unsigned char)b.data[n] & 0xC0) == 0x80)
        n--;
    xv_buf_append(out, b.data ? b.data : "", n);
    if (n < b.len)
        xv_buf_append(out, "...", 3);
    xv_buf_free(&b);
}

struct diff_state {
    int count;
    char *path;
    size_t pathlen;
    struct xv_buf *was, *now;
};

static void first(struct diff_state *s, const char *path, const cJSON *a, const cJSON *b)
{
    if (s->count++ == 0) {
        snprintf(s->path, s->pathlen, "%s", path[0] ? path : "(body)");
        put_value(a, s->was);
        put_value(b, s->now);
    }
}

/* The n-th member named key (duplicate keys pair up in order). */
static const cJSON *nth_member(const cJSON *obj, const char *key, int n)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, obj)
    {
        if (x->string && strcmp(x->string, key) == 0 && n-- == 0)
            return x;
    }
    return NULL;
}

/* How many members before x (in its object) have x's name. */
static int dup_index(const cJSON *obj, const cJSON *x)
{
    int n = 0;
    for (const cJSON *y = obj->child; y && y != x; y = y->next)
        n += y->string && x->string && strcmp(y->string, x->string) == 0;
    return n;
}

static void walk(struct diff_state *s, const char *path, const cJSON *a, const cJSON *b, int depth)
{
    if (s->count > 1000)
        return;
    if (!a || !b || depth > 64 || ((a->type & 0xFF) != (b->type & 0xFF))) {
        first(s, path, a, b);
        return;
    }
    char sub[512];
    if (cJSON_IsObject(a)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, a)
        {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", x->string ? x->string : "");
            walk(s, sub, x, x->string ? nth_member(b, x->string, dup_index(a, x)) : NULL, depth + 1);
        }
        cJSON_ArrayForEach(x, b)
        {
            if (x->string && !nth_member(a, x->string, dup_index(b, x))) {
                snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", x->string);
                first(s, sub, NULL, x);
            }
        }
        return;
    }
    if (cJSON_IsArray(a)) {
        int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
        for (int i = 0; i < (na > nb ? na : nb); i++) {
            snprintf(sub, sizeof sub, "%s[%d]", path, i);
            walk(s, sub, cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i), depth + 1);
        }
        return;
    }
    /* leaves: numbers by value (NaN equals NaN here), strings by bytes */
    if (cJSON_IsNumber(a)) {
        if (!(a->valuedouble == b->valuedouble ||
              (a->valuedouble != a->valuedouble && b->valuedouble != b->valuedouble)))
            first(s, path, a, b);
    } else if (cJSON_IsString(a) || cJSON_IsRaw(a)) {
        if (strcmp(a->valuestring ? a->valuestring : "", b->valuestring ? b->valuestring : ""))
            first(s, path, a, b);
    }
}

int xv_cassette_json_diff(const cJSON *was, const cJSON *now, char *path, size_t pathlen,
                     struct xv_buf *was_txt, struct xv_buf *now_txt)
{
    struct diff_state s = { 0, path, pathlen, was_txt, now_txt };
    path[0] = '\0';
    walk(&s, "", was, now, 0);
    return s.count;
}

/* ------------------------------------------------------------- no match */

int xv_cassette_build_miss(struct xv_cassette *c, const struct xv_cassette_req *req,
                           const char *extra_head, int keep_alive, struct xv_buf *answer,
                           struct xv_buf *why)
{
    struct xv_buf msg;
    xv_buf_init(&msg, 2048);
    xv_buf_appendf(&msg, "cassette %s (record mode %s): no recording matches %s %s", c->dir,
                   xv_cassette_mode_name(c->mode), req->method ? req->method : "",
                   req->path ? req->path : "");
    cJSON *now = xv_cassette_body_json(c, req->body, req->body_len);
    const struct xv_cassette_entry *best = NULL;
    int best_count = 0;
    char best_path[256] = "";
    struct xv_buf bw, bn;
    xv_buf_init(&bw, 256);
    xv_buf_init(&bn, 256);
    for (size_t i = 0; i < c->n; i++) {
        const cJSON *rq = cJSON_GetObjectItemCaseSensitive(c->e[i].doc, "request");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(rq, "method");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(rq, "path");
        if (!cJSON_IsString(m) || !cJSON_IsString(p) ||
            strcmp(m->valuestring, req->method ? req->method : "") != 0 ||
            strcmp(p->valuestring, req->path ? req->path : "") != 0)
            continue;
        size_t bl;
        char *body = xv_cassette_get_body(rq, &bl);
        cJSON *was = body ? xv_cassette_body_json(c, body, bl) : NULL;
        free(body);
        struct xv_buf w, n;
        xv_buf_init(&w, 256);
        xv_buf_init(&n, 256);
        char path[256];
        int count = xv_cassette_json_diff(was, now, path, sizeof path, &w, &n);
        if (!best || count < best_count) {
            best = &c->e[i];
            best_count = count;
            snprintf(best_path, sizeof best_path, "%s", path);
            xv_buf_reset(&bw);
            xv_buf_reset(&bn);
            xv_buf_append(&bw, w.data ? w.data : "", w.len);
            xv_buf_append(&bn, n.data ? n.data : "", n.len);
        }
        xv_buf_free(&w);
        xv_buf_free(&n);
        cJSON_Delete(was);
    }
    cJSON_Delete(now);
    if (best)
        xv_buf_appendf(&msg, "; nearest recording %s differs in %d place%s, first at %s: recorded %s, now %s",
                       best->file, best_count, best_count == 1 ? "" : "s", best_path,
                       bw.data ? bw.data : "", bn.data ? bn.data : "");
    else
        xv_buf_appendf(&msg, "; the cassette holds no %s %s recording",
                       req->method ? req->method : "", req->path ? req->path : "");
    xv_buf_free(&bw);
    xv_buf_free(&bn);
    if (why)
        xv_buf_append(why, msg.data, msg.len);

    cJSON *err = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(err, "error");
    struct xv_buf full;
    xv_buf_init(&full, 4096);
    xv_buf_appendf(&full, "xenovia %s", msg.data ? msg.data : "cassette: no recording matches");
    cJSON_AddStringToObject(e, "message", full.data ? full.data : "no recording matches");
    xv_buf_free(&full);
    cJSON_AddStringToObject(e, "type", "cassette_no_match");
    cJSON_AddStringToObject(e, "code", "cassette_no_match");
    char *body = cJSON_PrintUnformatted(err);
    cJSON_Delete(err);
    xv_buf_free(&msg);
    if (!body)
        return XV_E_NOMEM;
    size_t bl = strlen(body);
    int r = xv_buf_appendf(answer,
                           "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\n%s%s\r\n",
                           bl, keep_alive ? "" : "Connection: close\r\n", extra_head ? extra_head : "");
    r = r ? r : xv_buf_append(answer, body, bl);
    free(body);
    return r;
}

static cJSON *parse_or_string(const char *t, size_t n)
{
    cJSON *v = t && n ? cJSON_ParseWithLength(t, n) : NULL;
    if (v)
        return v;
    char *s = strndup(t ? t : "", n);
    v = cJSON_CreateString(s ? s : "");
    free(s);
    return v;
}

int xv_cassette_diff_text(const char *a, size_t alen, const char *b, size_t blen, char *path,
                          size_t pathlen, struct xv_buf *was, struct xv_buf *now)
{
    cJSON *x = parse_or_string(a, alen), *y = parse_or_string(b, blen);
    int n = xv_cassette_json_diff(x, y, path, pathlen, was, now);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return n;
}
