/*
 * rewrite.c — what a rerouted request looks like to the gateway: the
 * request-target under the gateway's path prefix, the gateway's Host, and
 * (with XENOVIA_API_KEY) the gateway's credential instead of the app's.
 *
 * The stream rewriter holds only an incomplete request head (bounded by the
 * parser's head limit); bodies pass as they come. Invariant: every byte the
 * program wrote reaches `out` exactly once and in order, except the head
 * lines that are replaced.
 *
 * Thread safety: a rewriter belongs to one relayed connection.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_route.h"

#define REWRITE_HEAD_MAX (64u * 1024u)

static int name_is(const struct xv_http_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

int xv_route_rewrite_head(const struct xv_route_rule *r, const char *api_key,
                          const struct xv_http_head *h, struct xv_buf *out)
{
    const char *t = h->target;
    size_t tl = h->target_len;
    /* absolute-form (a proxy-style request): keep path and query only */
    if (tl > 7 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
        const char *a = memchr(t, ':', tl) + 3;
        const char *slash = memchr(a, '/', tl - (size_t)(a - t));
        if (slash) {
            tl -= (size_t)(slash - t);
            t = slash;
        } else {
            t = "/";
            tl = 1;
        }
    }
    int r0 = xv_buf_append(out, h->method, h->method_len);
    r0 = r0 ? r0 : xv_buf_append(out, " ", 1);
    r0 = r0 ? r0 : xv_buf_append(out, r->prefix, strlen(r->prefix));
    if (!r0 && t[0] != '/' && r->prefix[0])
        r0 = xv_buf_append(out, "/", 1);
    r0 = r0 ? r0 : xv_buf_append(out, t, tl);
    r0 = r0 ? r0 : xv_buf_appendf(out, " HTTP/1.%d\r\n", h->version_minor);
    int default_port = r->port == (r->tls ? 443 : 80);
    int v6 = strchr(r->host, ':') != NULL;
    if (!r0) {
        if (default_port)
            r0 = xv_buf_appendf(out, "Host: %s%s%s\r\n", v6 ? "[" : "", r->host, v6 ? "]" : "");
        else
            r0 = xv_buf_appendf(out, "Host: %s%s%s:%d\r\n", v6 ? "[" : "", r->host,
                                v6 ? "]" : "", r->port);
    }
    int key = api_key && *api_key;
    int saw_auth = 0;
    for (size_t i = 0; i < h->nheaders && !r0; i++) {
        const struct xv_http_header *x = &h->headers[i];
        if (name_is(x, "host"))
            continue;
        if (key && name_is(x, "authorization")) {
            if (!saw_auth)
                r0 = xv_buf_appendf(out, "Authorization: Bearer %s\r\n", api_key);
            saw_auth = 1;
            continue;
        }
        if (key && name_is(x, "api-key")) {
            r0 = xv_buf_appendf(out, "api-key: %s\r\n", api_key);
            saw_auth = 1;
            continue;
        }
        r0 = xv_buf_append(out, x->name, x->name_len);
        r0 = r0 ? r0 : xv_buf_append(out, ": ", 2);
        r0 = r0 ? r0 : xv_buf_append(out, x->value, x->value_len);
        r0 = r0 ? r0 : xv_buf_append(out, "\r\n", 2);
    }
    if (!r0 && key && !saw_auth)
        r0 = xv_buf_appendf(out, "Authorization: Bearer %s\r\n", api_key);
    return r0 ? r0 : xv_buf_append(out, "\r\n", 2);
}

/* ------------------------------------------------------- stream rewriter */

struct xv_route_rewriter {
    struct xv_http_parser *p;        /* request framing */
    const struct xv_route_rule *rule;
    const char *api_key;
    struct xv_buf held;              /* consumed bytes not yet forwarded (an incomplete head) */
    struct xv_buf head_out;          /* the rewritten head of the current feed call */
    int head_seen;                   /* on_head ran during the current feed call */
    size_t head_raw_len;             /* ... its head's length in the stream */
    int ended;                       /* on_end ran during the current feed call */
    int pass;                        /* malformed: everything passes unchanged */
    int err;                         /* output failure (limit, memory) */
};

static int rw_head(void *ud, const struct xv_http_head *h)
{
    struct xv_route_rewriter *w = ud;
    xv_buf_reset(&w->head_out);
    int r = xv_route_rewrite_head(w->rule, w->api_key, h, &w->head_out);
    if (r)
        w->err = r;
    w->head_seen = 1;
    w->head_raw_len = h->raw_len;
    return XV_HTTP_PAUSE;
}

static void rw_end(void *ud)
{
    ((struct xv_route_rewriter *)ud)->ended = 1;
}

static void rw_error(void *ud, const char *why)
{
    (void)why;
    ((struct xv_route_rewriter *)ud)->pass = 1;
}

static const struct xv_http_callbacks rw_cb = {
    .on_head = rw_head, .on_end = rw_end, .on_error = rw_error,
};

struct xv_route_rewriter *xv_route_rewriter_new(const struct xv_route_rule *r,
                                                const char *api_key)
{
    struct xv_route_rewriter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->rule = r;
    w->api_key = api_key;
    xv_buf_init(&w->held, REWRITE_HEAD_MAX + 16);
    xv_buf_init(&w->head_out, REWRITE_HEAD_MAX + 4096);
    w->p = xv_http_parser_new(XV_HTTP_REQUEST, REWRITE_HEAD_MAX, &rw_cb, w);
    if (!w->p) {
        free(w);
        return NULL;
    }
    return w;
}

void xv_route_rewriter_free(struct xv_route_rewriter *w)
{
    if (!w)
        return;
    xv_http_parser_free(w->p);
    xv_buf_free(&w->held);
    xv_buf_free(&w->head_out);
    free(w);
}

size_t xv_route_rewriter_held(const struct xv_route_rewriter *w, const char **p)
{
    *p = w->held.data ? w->held.data : "";
    return w->held.len;
}

int xv_route_rewriter_passthrough(const struct xv_route_rewriter *w)
{
    return w->pass;
}

/* Append S[from..to) of the stream S = held ++ p[0..k) to out. */
static int emit(struct xv_buf *out, const struct xv_buf *held, const char *p, size_t from,
                size_t to)
{
    int r = 0;
    size_t hl = held->len;
    if (from < hl)
        r = xv_buf_append(out, held->data + from, (to < hl ? to : hl) - from);
    if (!r && to > hl)
        r = xv_buf_append(out, p + (from > hl ? from - hl : 0), to - (from > hl ? from : hl));
    return r;
}

int xv_route_rewriter_feed(struct xv_route_rewriter *w, const char *p, size_t n,
                           struct xv_buf *out)
{
    while (n > 0 && !w->pass && !w->err) {
        int in_head = xv_http_parser_state(w->p) == XV_HTTP_S_HEAD;
        w->head_seen = w->ended = 0;
        size_t k = xv_http_parser_feed(w->p, p, n);
        if (w->pass)
            break;
        /* the consumed stream is S = held ++ p[0..k) */
        size_t total = w->held.len + k;
        if (w->head_seen) {
            size_t before = total >= w->head_raw_len ? total - w->head_raw_len : 0;
            w->err = emit(out, &w->held, p, 0, before);
            w->err = w->err ? w->err : xv_buf_append(out, w->head_out.data, w->head_out.len);
            xv_buf_reset(&w->held);
        } else if (w->ended && !in_head) {
            size_t next = xv_http_parser_head_held(w->p);
            size_t cut = total >= next ? total - next : 0;
            w->err = emit(out, &w->held, p, 0, cut);
            if (!w->err) {
                struct xv_buf rest;
                xv_buf_init(&rest, REWRITE_HEAD_MAX + 16);
                w->err = emit(&rest, &w->held, p, cut, total);
                xv_buf_reset(&w->held);
                w->err = w->err ? w->err : xv_buf_append(&w->held, rest.data ? rest.data : "", rest.len);
                xv_buf_free(&rest);
            }
        } else if (in_head) {
            w->err = xv_buf_append(&w->held, p, k);
        } else {
            w->err = xv_buf_append(out, p, k);
        }
        p += k;
        n -= k;
    }
    /* A malformed request is not forwarded at all: passing it through
     * unchanged would hand the app's own credential and Host to a third
     * party. The relay ends the connection instead (docs/reroute.md). */
    if (w->pass)
        return XV_E_PARSE;
    return w->err;
}
