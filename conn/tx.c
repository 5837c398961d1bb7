/*
 * tx.c — the request side of a connection: deciding what a stream is,
 * holding request heads (and an inspected call's body) until the call can
 * be decided, injecting headers, writing the request out, or answering it
 * without sending a byte (synthetic response).
 *
 * Invariant: bytes the app wrote reach the transport in order, unchanged
 * except for injected header lines inserted before the blank line of an
 * inspected request's head; a request the agent answers itself never
 * reaches the transport at all. Held bytes count as accepted. What the
 * transport (a socket, or an SSL over a non-blocking one) would not take
 * yet waits in the send queue (tx_out), which every later write, read and
 * readiness wait flushes first (never blocking a non-blocking socket; on
 * TLS retried from the queue's start, as OpenSSL requires). Requests are
 * handled one at a time (the parser pauses at each message's end), so each
 * pipelined request is decided, injected and recorded on its own, in order.
 *
 * Thread safety: entry points take c->mu; it is released around every real
 * write and wait.
 */
#include "xv_conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>

#include "xv_jsonr.h"
#include "xv_redact.h"

#define INJECT_MAX 32 /* header lines a request can get */

/* ---- request parser callbacks ------------------------------------------ */

static void copy_host(char *dst, size_t cap, const char *p, size_t n)
{
    /* Host header "name[:port]" or "[v6]:port" -> name */
    if (n && p[0] == '[') {
        const char *e = memchr(p, ']', n);
        if (e) {
            p++;
            n = (size_t)(e - p);
        }
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon)
            n = (size_t)(colon - p);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}


/* Header name of an injection line "Name: value\r\n". */
static size_t line_name(const char *line, char *out, size_t cap)
{
    const char *colon = strchr(line, ':');
    size_t n = colon ? (size_t)(colon - line) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, line, n);
    out[n] = '\0';
    return n;
}

/* SPEC §4 (Xenovia scopes sessions per key): the sessions found by `user`,
 * response id or fingerprint belong to the request's credential. Only a
 * keyed digest of it is kept (xv_session_scope_digest), never the value. */
static void note_credential_scope(struct xv_call *call, const struct xv_http_head *h)
{
    static const char *const names[] = { "authorization", "api-key", "x-api-key" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct xv_http_header *ch = xv_http_head_find(h, names[i]);
        if (!ch || !ch->value_len)
            continue;
        const char *v = ch->value;
        size_t n = ch->value_len;
        if (i == 0 && n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
            v += 7;
            n -= 7;
        }
        xv_session_scope_digest(v, n, call->cred_scope);
        call->has_scope = 1;
        return;
    }
}

static int req_on_head(void *ud, const struct xv_http_head *h)
{
    struct xv_conn *c = ud;
    struct xv_call *call = xv_conn_call_alloc();
    int is_head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    int is_connect = h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0;
    /* The response parser must see every request, even one we cannot track. */
    xv_http_parser_note_request(c->resp, is_head, is_connect);
    c->tx_head_done = 1;
    /* After a protocol upgrade (WebSocket, h2c) the app's next bytes are not
     * HTTP/1.x: the stream is left alone once this request is out. */
    c->tx_upgrade = xv_http_head_find(h, "upgrade") != NULL;
    if (!call) {
        xv_http_parser_frame_only(c->req);
        return c->tx_in_head ? XV_HTTP_PAUSE : XV_HTTP_OK;
    }
    call->start_mono_ns = xv_now_mono_ns();
    call->start_wall_ns = xv_now_wall_ns();
    call->expect_continue = h->expect_continue;
    const struct xv_http_header *hh = xv_http_head_find(h, "host");
    if (hh)
        copy_host(call->host, sizeof call->host, hh->value, hh->value_len);
    if (!c->peer.host[0] && call->host[0])
        snprintf(c->peer.host, sizeof c->peer.host, "%s", call->host);
    const char *host = c->peer.host[0] ? c->peer.host : call->host;
    int type = xv_openai_classify(h->method, h->method_len, h->target, h->target_len);
    if (type != XV_OPENAI_NONE && xv_conn_host_allowed(xv_conn_cfg.hosts, host, c->peer.port)) {
        struct xv_openai_limits lim = {
            .body_max = xv_conn_cfg.body_max,
            .capture_max = xv_conn_cfg.capture_max,
            .capture_content = xv_conn_cfg.capture_content,
        };
        call->api = xv_openai_call_new(type, &lim);
        if (call->api) {
            xv_conn_new_trace_id(call->trace_id);
            xv_conn_stat_add(XV_STAT_CALLS);
            xv_openai_provider_for(host, h->target, h->target_len, &call->prov);
            /* Azure names the model in the path; the body may not. */
            char dep[128];
            if (xv_openai_azure_deployment(h->target, h->target_len, dep, sizeof dep))
                xv_openai_call_set_model_hint(call->api, dep);
        }
    }
    if (!call->api)
        xv_http_parser_frame_only(c->req); /* a body nothing reads: not inflated */
    if (call->api) {
        /* Which injected headers the app already sends (its value wins). */
        struct xv_inject_state *st = &c->inject;
        memset(st, 0, sizeof *st);
        const char *const *lines = xv_conn_cfg.inject_lines;
        for (unsigned i = 0; lines && lines[i] && i < INJECT_MAX; i++) {
            char name[128];
            line_name(lines[i], name, sizeof name);
            if (xv_http_head_find(h, name))
                st->skip |= 1u << i;
        }
        /* Values in effect for the record: the app's header, else config. */
        static const struct {
            const char *hdr;
            size_t off;
            size_t cap;
        } per_call[] = {
            { "x-xenovia-session-path", offsetof(struct xv_call, session_path), sizeof call->session_path },
            { "x-xenovia-trace-flow-id", offsetof(struct xv_call, flow_id), sizeof call->flow_id },
            { "x-xenovia-parent-trace-id", offsetof(struct xv_call, parent_trace_id), sizeof call->parent_trace_id },
        };
        const char *cfgv[3] = { xv_conn_cfg.session_path, xv_conn_cfg.flow_id,
                                xv_conn_cfg.parent_trace_id };
        for (int i = 0; i < 3; i++) {
            char *dst = (char *)call + per_call[i].off;
            const struct xv_http_header *ah = xv_http_head_find(h, per_call[i].hdr);
            if (ah) {
                size_t n = ah->value_len < per_call[i].cap - 1 ? ah->value_len : per_call[i].cap - 1;
                n = xv_utf8_cut(ah->value, ah->value_len, n); /* whole characters */
                memcpy(dst, ah->value, n);
                dst[n] = '\0';
            } else if (cfgv[i]) {
                xv_utf8_snprintf(dst, per_call[i].cap, "%s", cfgv[i]);
            }
        }
        /* The app's W3C trace context, for the OTLP span's parent (an over-long
         * value is left out: it cannot be a valid traceparent/tracestate). */
        const struct xv_http_header *tp = xv_http_head_find(h, "traceparent");
        if (tp && tp->value_len < sizeof call->traceparent) {
            memcpy(call->traceparent, tp->value, tp->value_len);
            call->traceparent[tp->value_len] = '\0';
            const struct xv_http_header *ts = xv_http_head_find(h, "tracestate");
            if (ts && ts->value_len < sizeof call->tracestate) {
                memcpy(call->tracestate, ts->value, ts->value_len);
                call->tracestate[ts->value_len] = '\0';
            }
        }
        /* Custom properties: config set, then the app's headers (its value wins). */
        int has_app_props = 0;
        for (size_t i = 0; i < h->nheaders; i++)
            if (h->headers[i].name_len > 19 &&
                strncasecmp(h->headers[i].name, XV_SESSION_PROP_HEADER_PREFIX, 19) == 0)
                has_app_props = 1;
        if (has_app_props) {
            call->props_own = malloc(sizeof *call->props_own);
            if (call->props_own) {
                if (xv_conn_cfg.props)
                    xv_session_props_copy(call->props_own, xv_conn_cfg.props);
                else
                    xv_session_props_init(call->props_own);
                for (size_t i = 0; i < h->nheaders; i++)
                    xv_session_props_add_header(call->props_own, h->headers[i].name,
                                                h->headers[i].name_len, h->headers[i].value,
                                                h->headers[i].value_len);
            }
            call->props = call->props_own;
        } else if (xv_conn_cfg.props && xv_conn_cfg.props->n) {
            /* the configured set as is: immutable for the process's life (a
             * ~1.8 KiB copy per call made glibc consolidate its fast bins on
             * every call, issue 9) */
            call->props = xv_conn_cfg.props;
        }
        if (h->content_length > 0) {
            /* The body's length known: the held request and the call's copy
             * of the body sized once (grown by doubling, a long
             * conversation's request was copied twice more); a length
             * above 4 MiB is not taken on trust, those grow as before. */
            size_t cl = h->content_length < ((int64_t)4 << 20) ? (size_t)h->content_length
                                                                : (size_t)4 << 20;
            xv_openai_call_expect_body(call->api, cl);
            if (h->raw_len <= SIZE_MAX - cl)
                xv_buf_reserve(&c->tx_hold, h->raw_len + cl);
        }
        if (xv_conn_cfg.policy || xv_conn_cfg.policy_broken)
            xv_conn_policy_note_headers(call, h);
        note_credential_scope(call, h);
        const struct xv_http_header *sh = xv_http_head_find(h, "x-xenovia-session-id");
        if (sh) {
            /* Any valid UUID spelling (8-4-4-4-12, 32 hex, braces, urn:uuid:)
             * is accepted and recorded in canonical form; the wire keeps the
             * app's own text. */
            st->app_session = 1;
            const char *v = sh->value;
            size_t n = sh->value_len;
            while (n && (*v == ' ' || *v == '\t'))
                v++, n--;
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            st->app_session_bad = xv_uuid_normalize(v, n, st->app_session_id) != 0;
        }
    }
    struct xv_call **tail = &c->calls;
    while (*tail)
        tail = &(*tail)->next;
    *tail = call;
    c->tx_call = call;
    return c->tx_in_head ? XV_HTTP_PAUSE : XV_HTTP_OK;
}

static void req_on_body(void *ud, const char *p, size_t n)
{
    struct xv_conn *c = ud;
    if (c->tx_call && c->tx_call->api)
        xv_openai_call_request_body(c->tx_call->api, p, n);
}

static void req_on_end(void *ud)
{
    struct xv_conn *c = ud;
    c->tx_req_done = 1;
    if (c->tx_upgrade) {
        /* held bytes are released unchanged by the write path */
        xv_conn_to_pass(c, "protocol upgrade requested; stream not inspected");
        return;
    }
    if (!c->tx_call)
        return;
    if (c->tx_call->api)
        xv_openai_call_request_end(c->tx_call->api);
    c->tx_call->request_done = 1;
}

/* A request head that failed to parse opened no call. When its request
 * line names an API call, open one now so the malformed call is recorded
 * with `error` (SPEC §10) like any other. */
static void open_unparsed_call(struct xv_conn *c)
{
    if (!c->tx_in_head || c->tx_head_done)
        return;
    /* The head so far: held bytes, then the bytes being fed. */
    char h[4096];
    size_t n = c->tx_hold.len < sizeof h ? c->tx_hold.len : sizeof h;
    if (n)
        memcpy(h, c->tx_hold.data, n);
    size_t more = c->tx_feed_n < sizeof h - n ? c->tx_feed_n : sizeof h - n;
    if (more)
        memcpy(h + n, c->tx_feed_p, more);
    n += more;
    const char *sp1 = memchr(h, ' ', n);
    if (!sp1)
        return;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', n - (size_t)(t - h));
    if (!sp2)
        return;
    const char *host = c->peer.host[0] ? c->peer.host : c->peer.addr;
    int type = xv_openai_classify(h, (size_t)(sp1 - h), t, (size_t)(sp2 - t));
    if (type == XV_OPENAI_NONE || !xv_conn_host_allowed(xv_conn_cfg.hosts, host, c->peer.port))
        return;
    struct xv_call *call = calloc(1, sizeof *call);
    if (!call)
        return;
    struct xv_openai_limits lim = {
        .body_max = xv_conn_cfg.body_max,
        .capture_max = xv_conn_cfg.capture_max,
        .capture_content = xv_conn_cfg.capture_content,
    };
    call->api = xv_openai_call_new(type, &lim);
    if (!call->api) {
        free(call);
        return;
    }
    call->start_mono_ns = xv_now_mono_ns();
    call->start_wall_ns = xv_now_wall_ns();
    xv_conn_new_trace_id(call->trace_id);
    xv_conn_stat_add(XV_STAT_CALLS);
    struct xv_call **tail = &c->calls;
    while (*tail)
        tail = &(*tail)->next;
    *tail = call;
    c->tx_call = call;
}

static void req_on_error(void *ud, const char *why)
{
    struct xv_conn *c = ud;
    open_unparsed_call(c);
    /* Passthrough from here: xv_conn_tx_write releases every held byte
     * unchanged, in order; open calls are recorded with `error`. */
    xv_conn_to_pass(c, why);
}

const struct xv_http_callbacks xv_conn_req_cb = {
    .on_head = req_on_head, .on_body = req_on_body, .on_end = req_on_end, .on_error = req_on_error,
};

/* ---- mode ---------------------------------------------------------------- */

/* Does a connection's first data look like an HTTP/1.x request line? */
int xv_conn_decide_mode(struct xv_conn *c, const unsigned char *p, size_t n)
{
    if (n == 0)
        return XV_CONN_UNDECIDED;
    if (p[0] == 0x16)
        return XV_CONN_TLSWIRE;
    if (n >= 3 && memcmp(p, "PRI", 3) == 0) {
        static atomic_int once;
        if (!atomic_exchange(&once, 1))
            xv_log(XV_LOG_INFO, "HTTP/2 connection to %s passes through uninspected",
                   c->peer.host[0] ? c->peer.host : c->peer.addr);
        return XV_CONN_PASS;
    }
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    if (i == n && i < 16)
        return XV_CONN_UNDECIDED; /* a method split across writes */
    if (!(i > 0 && i < 16 && p[i] == ' '))
        return XV_CONN_PASS;
    /* A peer whose name XENOVIA_HOSTS excludes carries no call the agent
     * inspects (req_on_head judges every request by that name when it is
     * known): the connection passes through unparsed from its first byte. */
    if (c->peer.host[0] && !xv_conn_host_allowed(xv_conn_cfg.hosts, c->peer.host, c->peer.port))
        return XV_CONN_PASS;
    return XV_CONN_HTTP;
}

/* The held request as it goes out: head with injected lines, then the rest. */
static int build_request(struct xv_conn *c, struct xv_call *call, struct xv_buf *out)
{
    const char *h = c->tx_hold.data;
    size_t hl = c->tx_head_len, total = c->tx_hold.len;
    if (!call || !call->api || hl < 2 || hl > total)
        return xv_buf_append(out, h, total);
    size_t blank = (h[hl - 2] == '\r') ? 2 : 1;
    const char *eol = blank == 2 ? "\r\n" : "\n";
    /* the agent already answered a 100-continue: send the head without Expect */
    static const char *const no_expect[] = { "expect:", NULL };
    int rc = call->continue_local ? xv_conn_head_copy_except(out, h, hl - blank, no_expect)
                                  : xv_buf_append(out, h, hl - blank);
    const char *const *lines = xv_conn_cfg.inject_lines;
    for (unsigned i = 0; !rc && lines && lines[i] && i < INJECT_MAX; i++) {
        if (c->inject.skip & (1u << i))
            continue;
        size_t ln = strlen(lines[i]);
        if (ln >= 2 && lines[i][ln - 2] == '\r')
            ln -= 2;
        rc = xv_buf_append(out, lines[i], ln);
        if (!rc)
            rc = xv_buf_append(out, eol, blank);
    }
    if (!rc && xv_conn_cfg.inject_session && !c->inject.app_session && call->session_id[0])
        rc = xv_buf_append_header(out, "X-Xenovia-Session-Id", call->session_id, eol);
    if (!rc)
        rc = xv_buf_append(out, h + hl - blank, total - (hl - blank));
    return rc;
}

static void new_session(struct xv_call *call)
{
    xv_uuid_v4(call->session_id);
    call->has_session_digest = 0;
    call->session_turn = 1;
    call->session_strategy = "new";
}

/* Resolve the call's session (SPEC §4). Returns 0, or XV_SESSION_E_BAD_ID
 * when the app's own X-Xenovia-Session-Id is not a UUID. */
static int resolve_session(struct xv_conn *c, struct xv_call *call)
{
    struct xv_session_store *store = xv_conn_sessions();
    /* Checked on the whole header value (the copy below is truncated). */
    if (c->inject.app_session_bad)
        return XV_SESSION_E_BAD_ID;
    /* XENOVIA_SESSION_ID in any UUID spelling, used in canonical form */
    char env_id[XV_UUID_LEN + 1] = "";
    if (xv_conn_cfg.session_env)
        xv_uuid_normalize(xv_conn_cfg.session_env, strlen(xv_conn_cfg.session_env), env_id);
    if (!store) {
        if (c->inject.app_session) {
            memcpy(call->session_id, c->inject.app_session_id, 36);
            call->session_id[36] = '\0';
            call->session_strategy = "header";
            call->session_turn = 1;
        } else if (env_id[0]) {
            snprintf(call->session_id, sizeof call->session_id, "%s", env_id);
            call->session_strategy = "env";
            call->session_turn = 1;
        } else {
            new_session(call);
        }
        return 0;
    }
    struct xv_session_request rq = {
        .header_id = c->inject.app_session ? c->inject.app_session_id : NULL,
        .header_id_len = c->inject.app_session ? strlen(c->inject.app_session_id) : 0,
        .env_id = env_id[0] ? env_id : NULL,
        .type = call->api ? xv_openai_call_type(call->api) : 0,
        .body = call->api ? xv_openai_call_request_json(call->api) : NULL,
        .scope = call->has_scope ? call->cred_scope : NULL,
        .convo = &call->convo,
    };
    struct xv_session_resolved out;
    int rc = xv_session_store_resolve(store, &rq, &out);
    if (rc != 0) {
        if (rc != XV_SESSION_E_BAD_ID)
            new_session(call);
        return rc == XV_SESSION_E_BAD_ID ? rc : 0;
    }
    memcpy(call->session_id, out.id, sizeof call->session_id);
    call->has_session_digest = out.has_id_digest;
    memcpy(call->session_digest, out.id_digest, sizeof call->session_digest);
    call->session_turn = (int)out.turn;
    call->session_strategy = xv_session_strategy_name(out.strategy);
    /* Tool results this request carries for calls the session made earlier
     * (a session this request made has made none: nothing to look up). */
    struct xv_session_tool_step *steps = NULL;
    size_t nsteps = 0;
    size_t result_max = xv_conn_cfg.capture_content ? xv_conn_cfg.capture_max : 0;
    if (out.strategy != XV_SESSION_BY_NEW &&
        xv_session_store_match_tools_d(store, call->session_id,
                                       call->has_session_digest ? call->session_digest : NULL,
                                       rq.type, rq.body, result_max, &steps, &nsteps) == 0 &&
        nsteps) {
        /* Recorded with the call, once its policy decision is known: a
         * redaction of this request applies to the tool results too. */
        call->steps = steps;
        call->nsteps = nsteps;
    }
    return 0;
}

/* A synthetic answer for the app: OpenAI-style JSON error. */
static void answer_error(struct xv_conn *c, struct xv_call *call, int status, const char *reason,
                         const char *body)
{
    char head[512];
    size_t bl = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s%s%s"
                     "X-Xenovia-Trace-Id: %s\r\n\r\n",
                     status, reason, bl,
                     call->session_id[0] ? "X-Xenovia-Session-Id: " : "",
                     call->session_id[0] ? call->session_id : "",
                     call->session_id[0] ? "\r\n" : "",
                     call->trace_id);
    struct xv_buf b;
    xv_buf_init(&b, (size_t)n + bl + 1);
    if (xv_buf_append(&b, head, (size_t)n) == 0 && xv_buf_append(&b, body, bl) == 0)
        xv_conn_answer(c, b.data, b.len);
    xv_buf_free(&b);
}

/* SPEC §5 request stage for a held call. */
static int policy_stage(struct xv_conn *c, struct xv_call *call)
{
    if (xv_conn_cfg.policy_broken) {
        call->policy_outcome = "error";
        call->policy_mode = xv_conn_cfg.policy_monitor ? "monitor" : "enforce";
        snprintf(call->policy_error, sizeof call->policy_error,
                 "XENOVIA_POLICY did not compile (see the agent's start-up line)");
        return (xv_conn_cfg.policy_fail_open || xv_conn_cfg.policy_monitor)
                   ? XV_CONN_POLICY_SEND : XV_CONN_POLICY_ERROR;
    }
    if (c->tx_holding || c->tx_req_done)
        return xv_conn_policy_request(c, call);
    return XV_CONN_POLICY_SEND; /* only the head was held (100-continue, over limit) */
}

/* Redact message text and tool-call arguments in the held JSON body and
 * re-frame it with a Content-Length. Leaves the request as it was when the
 * body cannot be rewritten (encoded, not JSON), noting why. */
static void redact_held(struct xv_conn *c, struct xv_call *call)
{
    const cJSON *orig = xv_openai_call_request_json(call->api);
    const char *h = c->tx_hold.data;
    size_t hl = c->tx_head_len;
    if (!orig || hl < 4 || hl > c->tx_hold.len || memmem(h, hl, "\nContent-Encoding:", 18) ||
        memmem(h, hl, "\ncontent-encoding:", 18)) {
        call->tx_error = "redaction not applied: request body not plain JSON";
        return;
    }
    cJSON *body = cJSON_Duplicate(orig, 1);
    if (!body)
        return;
    unsigned labels = call->redact_labels;
    int changed = 0;
    static const char *const lists[] = { "messages", "input" };
    for (size_t l = 0; l < 2; l++) {
        cJSON *arr = xv_json_get(body, lists[l]);
        if (cJSON_IsString(arr))
            xv_redact_json_text(arr, labels, &changed);
        for (cJSON *m = cJSON_IsArray(arr) ? arr->child : NULL; m; m = m->next) {
            xv_redact_json_content(xv_json_get(m, "content"), labels, &changed);
            xv_redact_json_text(xv_json_get(m, "arguments"), labels, &changed);
            xv_redact_json_text(xv_json_get(m, "output"), labels, &changed);
            cJSON *tcs = xv_json_get(m, "tool_calls");
            for (cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next)
                xv_redact_json_text(xv_json_get(
                                     xv_json_get(tc, "function"), "arguments"),
                                 labels, &changed);
        }
    }
    xv_redact_json_text(xv_json_get(body, "prompt"), labels, &changed);
    char *text = changed ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return;
    /* New head: the app's lines minus its framing, plus our Content-Length. */
    size_t blank = (h[hl - 2] == '\r') ? 2 : 1;
    const char *eol = blank == 2 ? "\r\n" : "\n";
    struct xv_buf nb;
    xv_buf_init(&nb, c->tx_hold.max);
    static const char *const framing[] = { "content-length:", "transfer-encoding:", NULL };
    int rc = xv_conn_head_copy_except(&nb, h, hl - blank, framing);
    size_t tl = strlen(text);
    if (!rc)
        rc = xv_buf_appendf(&nb, "Content-Length: %zu%s%s", tl, eol, eol);
    size_t new_hl = nb.len;
    if (!rc)
        rc = xv_buf_append(&nb, text, tl);
    free(text);
    if (rc) {
        xv_buf_free(&nb);
        call->tx_error = "redaction not applied: out of memory";
        return;
    }
    xv_buf_free(&c->tx_hold);
    c->tx_hold = nb;
    c->tx_head_len = new_hl;
    call->redacted = 1;
}

/* The held request is complete (or over the hold limit): decide and send,
 * or answer. Returns 0 or the failing write result. */
static long pass_release(struct xv_conn *c, const struct xv_conn_io *io);

static long release(struct xv_conn *c, const struct xv_conn_io *io)
{
    struct xv_call *call = c->tx_call;
    long rc = 0;
    if (call && call->api && !call->session_id[0]) {
        if (resolve_session(c, call) == XV_SESSION_E_BAD_ID) {
            new_session(call); /* the answer and its record still carry a session */
            call->synthetic = 1;
            call->tx_error = "invalid X-Xenovia-Session-Id header (not a UUID); answered 400";
            answer_error(c, call, 400, "Bad Request",
                         "{\"error\":{\"message\":\"X-Xenovia-Session-Id must be a UUID\","
                         "\"type\":\"invalid_request_error\",\"param\":\"X-Xenovia-Session-Id\","
                         "\"code\":\"invalid_session_id\"}}");
            xv_buf_reset(&c->tx_hold);
            c->tx_holding = 0;
            return 0;
        }
        int act = policy_stage(c, call);
        if (act == XV_CONN_POLICY_BLOCK || act == XV_CONN_POLICY_ERROR) {
            call->synthetic = 1;
            call->policy_blocked = act == XV_CONN_POLICY_BLOCK;
            if (act == XV_CONN_POLICY_BLOCK)
                answer_error(c, call, 403, "Forbidden",
                             "{\"error\":{\"message\":\"request blocked by policy\","
                             "\"type\":\"policy_violation\",\"code\":\"policy_block\"}}");
            else
                answer_error(c, call, 403, "Forbidden",
                             "{\"error\":{\"message\":\"request blocked: the policy could not be "
                             "evaluated\",\"type\":\"policy_violation\",\"code\":\"policy_error\"}}");
            xv_buf_reset(&c->tx_hold);
            c->tx_holding = 0;
            return 0;
        }
        if (act == XV_CONN_POLICY_REDACT)
            redact_held(c, call);
        if (xv_conn_cfg.cassette && !c->peer.replay_local && xv_conn_cassette_release(c, call)) {
            xv_buf_reset(&c->tx_hold); /* answered from the cassette: nothing is sent */
            c->tx_holding = 0;
            return 0;
        }
    }
    if (!call || !call->api)
        return pass_release(c, io); /* not an inspected call: as written, no copy */
    struct xv_buf out;
    xv_buf_init(&out, c->tx_hold.len + 8192);
    /* Room for the usual injected lines at once: one allocation, where the
     * appends' doubling from 256 bytes cost two reallocs and their copies. */
    xv_buf_reserve(&out, c->tx_hold.len + 512);
    if (build_request(c, call, &out) != 0) {
        /* cannot inject: send exactly what the app wrote */
        xv_buf_free(&out);
        rc = xv_conn_txq_send(c, io, c->tx_hold.data, c->tx_hold.len);
    } else {
        rc = xv_conn_txq_send(c, io, out.data, out.len);
        xv_buf_free(&out);
    }
    xv_buf_reset(&c->tx_hold);
    c->tx_head_len = 0;
    c->tx_holding = 0;
    return rc;
}

/* Undecided stream: collect the first bytes until the request line shows.
 * Returns 1 when the bytes were kept for later (all accepted). */
static int tx_decide(struct xv_conn *c, const char *p, size_t n, const struct xv_conn_io *io)
{
    unsigned char tmp[sizeof c->pre];
    size_t take = sizeof tmp - c->pre_len < n ? sizeof tmp - c->pre_len : n;
    memcpy(tmp, c->pre, c->pre_len);
    memcpy(tmp + c->pre_len, p, take);
    int mode = xv_conn_decide_mode(c, tmp, c->pre_len + take);
    if (mode == XV_CONN_UNDECIDED) {
        if (c->pre_len + n < sizeof c->pre) {
            memcpy(c->pre + c->pre_len, p, n);
            c->pre_len += n;
            return 1;
        }
        mode = XV_CONN_PASS;
    }
    if (mode == XV_CONN_HTTP) {
        c->req = xv_http_parser_new(XV_HTTP_REQUEST, xv_conn_cfg.head_max, &xv_conn_req_cb, c);
        if (c->req)
            xv_http_parser_pause_at_end(c->req, 1); /* one request at a time */
        c->resp = xv_http_parser_new(XV_HTTP_RESPONSE, xv_conn_cfg.head_max, &xv_conn_resp_cb, c);
        /* responses too: the call a response belongs to is popped before the
         * next response's head is parsed (and that head is held and stamped) */
        if (c->resp)
            xv_http_parser_pause_at_end(c->resp, 1);
        if (!c->req || !c->resp)
            mode = XV_CONN_PASS;
    }
    if (mode != XV_CONN_HTTP)
        xv_conn_stat_add(XV_STAT_PASS);
    atomic_store(&c->mode, mode);
    if (c->pre_len) {
        /* The kept prefix goes first: into the head being held, or out now. */
        if (mode == XV_CONN_HTTP)
            xv_buf_append(&c->tx_hold, c->pre, c->pre_len);
        else
            xv_conn_txq_send(c, io, c->pre, c->pre_len);
        if (mode == XV_CONN_HTTP) {
            c->tx_in_head = 1;
            xv_http_parser_feed(c->req, c->pre, c->pre_len);
        }
        c->pre_len = 0;
    }
    return 0;
}

/* Not (or no longer) ours: release what is held, in order, unchanged. */
static long pass_release(struct xv_conn *c, const struct xv_conn_io *io)
{
    if (!c->tx_hold.len)
        return 0;
    long rc = xv_conn_txq_send(c, io, c->tx_hold.data, c->tx_hold.len);
    xv_buf_reset(&c->tx_hold);
    c->tx_head_len = 0;
    c->tx_holding = 0;
    return rc;
}

/* Bytes of a request the agent does not hold (a body streaming past, or a
 * request that is not an API call after its head): written zero-copy, but
 * only up to the end of the current request, so the next pipelined head is
 * held and decided on its own. Returns bytes written (> 0) or the wr result. */
static long tx_unheld(struct xv_conn *c, const struct xv_conn_io *io, const char *p, size_t n)
{
    size_t k = n;
    size_t ahead = c->tx_ahead;
    if (ahead) {
        /* the parser already saw these bytes (an earlier short write) */
        k = ahead < n ? ahead : n;
    } else if (atomic_load(&c->mode) == XV_CONN_HTTP) {
        k = xv_http_parser_feed(c->req, p, n);
        if (k == 0 || k > n || atomic_load(&c->mode) != XV_CONN_HTTP)
            k = n;
    }
    c->tx_busy = 1;
    pthread_mutex_unlock(&c->mu);
    long w = io->wr(io->ctx, p, k);
    pthread_mutex_lock(&c->mu);
    c->tx_busy = 0;
    size_t done = w > 0 ? (size_t)w : 0;
    if (ahead)
        c->tx_ahead = ahead - done;
    else if (atomic_load(&c->mode) == XV_CONN_HTTP)
        c->tx_ahead = k - done; /* parsed but not taken: the app writes them again */
    return w;
}

/* A request that is not an inspected call, its head just parsed: the part of
 * its body this same write carries (up to the request's end, at most
 * COALESCE_MAX bytes) joins the held head, so head and body leave in one
 * write (one TLS record), not two (issue 9: a passed-through POST cost a
 * second record and system call). Bytes the parser saw but the hold could
 * not take are left to tx_unheld as "ahead". */
#define COALESCE_MAX 16384
static void coalesce_body(struct xv_conn *c, const char *buf, size_t len, size_t *pos,
                          long *accepted)
{
    size_t n = len - *pos;
    if (!n || c->tx_ahead || c->tx_hold.len + n > COALESCE_MAX ||
        xv_http_parser_state(c->req) == XV_HTTP_S_HEAD)
        return;
    size_t k = xv_http_parser_feed(c->req, buf + *pos, n);
    if (k == 0 || k > n || atomic_load(&c->mode) != XV_CONN_HTTP)
        k = n;
    if (xv_buf_append(&c->tx_hold, buf + *pos, k) != 0) {
        c->tx_ahead = k; /* parsed, not taken: tx_unheld writes them unparsed */
        return;
    }
    *pos += k;
    *accepted += (long)k;
}

long xv_conn_tx_write(struct xv_conn *c, const char *buf, size_t len,
                      xv_conn_write_fn wr, xv_conn_wait_fn wait, void *ctx)
{
    struct xv_conn_io io = { wr, wait, ctx };
    if (len == 0)
        return wr(ctx, buf, len);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        /* answered synthetically and told to close: nothing more goes out */
        pthread_mutex_unlock(&c->mu);
        return XV_E_STATE;
    }
    if (c->tx_owed.len) {
        int handled;
        long r = xv_conn_txq_owed_write(c, &io, buf, len, &handled);
        if (handled) {
            pthread_mutex_unlock(&c->mu);
            return r;
        }
    }
    if (c->tx_out.len) {
        /* Queued bytes of an earlier request go first; while the transport
         * does not take them, this write would block. */
        long rc = xv_conn_txq_drain(c, &io);
        if (rc != 0) {
            pthread_mutex_unlock(&c->mu);
            return rc;
        }
    }
    if (atomic_load(&c->mode) == XV_CONN_UNDECIDED && tx_decide(c, buf, len, &io)) {
        pthread_mutex_unlock(&c->mu);
        return (long)len;
    }
    size_t pos = 0;
    long accepted = 0;
    long rc = 0;
    while (pos < len) {
        if (atomic_load(&c->mode) != XV_CONN_HTTP) {
            /* Not (or no longer) ours: release anything held, then step aside. */
            rc = pass_release(c, &io);
            if (rc != 0 || c->tx_out.len)
                break;
            pthread_mutex_unlock(&c->mu);
            long w = wr(ctx, buf + pos, len - pos);
            return w > 0 ? accepted + w : (accepted ? accepted : w);
        }
        if (c->tx_out.len)
            break; /* the transport is full: the app writes the rest later */
        int head_state = xv_http_parser_state(c->req) == XV_HTTP_S_HEAD && !c->tx_ahead;
        if (c->tx_holding || head_state) {
            c->tx_in_head = head_state && !c->tx_holding;
            c->tx_head_done = 0;
            c->tx_req_done = 0;
            c->tx_feed_p = buf + pos;
            c->tx_feed_n = len - pos;
            size_t k = xv_http_parser_feed(c->req, buf + pos, len - pos);
            c->tx_feed_n = 0;
            if (k == 0 || k > len - pos)
                k = len - pos;
            if (xv_buf_append(&c->tx_hold, buf + pos, k) != 0) {
                /* over the hold limit: send what is held, stop holding */
                if (c->tx_call && c->tx_call->api && !c->tx_call->tx_error)
                    c->tx_call->tx_error = "request over the hold limit; sent before it was "
                                           "complete, policy not evaluated";
                c->tx_holding = 0; /* an incomplete body is not decided on */
                rc = release(c, &io);
                if (rc == 0)
                    rc = xv_conn_txq_send(c, &io, buf + pos, k);
                pos += k;
                accepted += (long)k;
                if (rc != 0)
                    break;
                continue;
            }
            pos += k;
            accepted += (long)k;
            if (atomic_load(&c->mode) != XV_CONN_HTTP)
                continue; /* malformed: released unchanged at the loop's top */
            struct xv_call *call = c->tx_call;
            if (c->tx_in_head && c->tx_head_done) {
                c->tx_head_len = c->tx_hold.len;
                c->tx_in_head = 0;
                /* Hold the body of an inspected call. A client that waits
                 * for 100-continue gets it from the agent when a policy must
                 * see the body (else its head goes out now and the body
                 * streams): the upstream then gets the request without the
                 * Expect header, body included. */
                if (call && call->api && call->expect_continue && !c->tx_req_done &&
                    (xv_conn_cfg.policy || xv_conn_cfg.policy_broken || xv_conn_cfg.cassette)) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    if (xv_buf_append(&c->out, cont, sizeof cont - 1) == 0) {
                        call->continue_local = 1;
                        xv_conn_out_track(c); /* readiness: the app polls for it */
                    }
                }
                c->tx_holding = call && call->api && !c->tx_req_done &&
                                (!call->expect_continue || call->continue_local);
                if (!c->tx_holding && !c->tx_req_done) {
                    if (!(call && call->api))
                        coalesce_body(c, buf, len, &pos, &accepted);
                    rc = release(c, &io);
                    if (rc != 0)
                        break;
                }
            }
            if (c->tx_req_done && c->tx_hold.len) {
                rc = release(c, &io);
                if (rc != 0)
                    break;
            }
            if (c->dead) {
                /* answered by the agent: what else the app wrote in this
                 * call (a pipelined request) has nowhere to go */
                pthread_mutex_unlock(&c->mu);
                return (long)len;
            }
            continue;
        }
        /* Body of a request that is not held. */
        long w = tx_unheld(c, &io, buf + pos, len - pos);
        if (w <= 0) {
            rc = w;
            break;
        }
        pos += (size_t)w;
        accepted += w;
    }
    /* The parser gave up on bytes of this write (malformed input, a
     * compressed body past the inflation limits): the connection is
     * passthrough now and the hooks send later writes straight out, so what
     * is held leaves here, unchanged and in order (queued behind nothing). */
    if (!rc && atomic_load(&c->mode) != XV_CONN_HTTP)
        rc = pass_release(c, &io);
    if (accepted && c->tx_out.len && !rc)
        accepted = xv_conn_txq_owe(c, buf, accepted);
    pthread_mutex_unlock(&c->mu);
    if (accepted)
        return accepted;
    return rc ? rc : -1;
}

int xv_conn_tx_cut(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->tx_hold.len && c->kind == XV_CONN_PLAIN) {
        if (atomic_load(&c->mode) == XV_CONN_HTTP)
            xv_conn_to_pass(c, "request cut: the program ended the stream mid-request");
        if (xv_buf_append(&c->tx_out, c->tx_hold.data, c->tx_hold.len) != 0)
            xv_log(XV_LOG_ERROR, "internal: could not queue a cut request");
        xv_buf_reset(&c->tx_hold);
        xv_conn_tx_track(c);
    }
    int r = c->tx_out.len > 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---- synthetic answers --------------------------------------------------- */

static void answer_now(struct xv_conn *c, const char *resp, size_t n);

void xv_conn_answer(struct xv_conn *c, const char *resp, size_t n)
{
    struct xv_call *call = c->tx_call;
    if (call && c->calls != call) {
        /* Pipelined behind calls still waiting for their responses: the
         * answer waits its turn (xv_conn_pop_call marks it ready, the RX
         * path delivers it), and nothing more goes out meanwhile. */
        call->answer = malloc(n);
        if (call->answer) {
            memcpy(call->answer, resp, n);
            call->answer_len = n;
            c->dead = 1;
            return;
        }
    }
    answer_now(c, resp, n);
}

/* Give the front call its answer now: fed through the response parser (so
 * it is recorded), queued for the app, then end of stream. */
static void answer_now(struct xv_conn *c, const char *resp, size_t n)
{
    /* Recorded through the normal response path, but never held or stamped
     * (the agent wrote its own headers). */
    c->rx_in_head = 0;
    xv_conn_lean_settle(c);
    size_t off = 0;
    while (off < n && atomic_load(&c->mode) == XV_CONN_HTTP) {
        size_t k = xv_http_parser_feed(c->resp, resp + off, n - off);
        if (k == 0)
            break;
        off += k;
    }
    if (xv_buf_append(&c->out, resp, n) != 0)
        xv_log(XV_LOG_ERROR, "internal: could not queue a synthetic response");
    xv_conn_out_track(c);
    c->synth_eof = 1;
    c->dead = 1;
    if (c->notify)
        c->notify(c->notify_ud, c->wire_fd);
}

void xv_conn_set_notify(struct xv_conn *c, void (*fn)(void *ud, int wire_fd), void *ud)
{
    pthread_mutex_lock(&c->mu);
    c->notify = fn;
    c->notify_ud = ud;
    pthread_mutex_unlock(&c->mu);
}

void xv_conn_set_wake_byte(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->wake_byte = 1;
    pthread_mutex_unlock(&c->mu);
}

int xv_conn_take_wake_byte(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    int r = c->wake_byte;
    c->wake_byte = 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int xv_conn_synthetic_eof(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    int r = c->synth_eof && c->out.len == 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}
