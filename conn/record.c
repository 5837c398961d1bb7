/*
 * record.c — the trace record of one finished call and its tool-step child
 * records (SPEC §6; every field is in docs/trace-fields.md), and trace ids.
 *
 * Invariants: a record says what happened — `policy_outcome` is always
 * present and final, `status_code` is what the app read, the agent's own
 * answers carry no upstream ids — and a redaction a policy decided at either
 * stage covers every captured text of the call and of its tool steps before
 * the record is handed to the exporter. Ids are v4 UUIDs. The session fields
 * come from the call (resolved when its request was released); a call whose
 * request never completed gets a session of its own. Records never contain
 * request or response headers, so no credential can reach them from here.
 *
 * Records are written as JSON text in one pass (common/xv_jsonw.h) and
 * handed to the exporter as a line: no cJSON tree per record (issue 9).
 * Field order is the one the tree had; which `error` a record carries is
 * decided before it is written (see emit_error).
 *
 * Thread safety: called with the connection's lock held; uses only
 * thread-safe functions (common/'s per-thread UUID generator, the shared
 * compiled redaction patterns, private writers).
 */
#include "xv_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xv_exporter.h"
#include "xv_jsonw.h"
#include "xv_redact.h"

void xv_conn_new_trace_id(char out[XV_TRACE_ID_LEN + 1])
{
    xv_uuid_v4(out); /* per-thread generator: no syscall per id */
}

/* n as exactly `width` decimal digits at p. */
static void put_digits(char *p, unsigned n, int width)
{
    while (width-- > 0) {
        p[width] = (char)('0' + n % 10);
        n /= 10;
    }
}

/* ISO 8601 UTC with microseconds, "2026-12-04T16:42:09.123456Z". The
 * calendar date comes from the day count by the days-to-civil arithmetic
 * of the proleptic Gregorian calendar (400-year eras of 146,097 days);
 * gmtime_r + strftime + snprintf cost ~2,500 instructions per timestamp,
 * two per record (issue 9). */
static void add_time_l(struct xv_jw *w, const char *key, size_t klen, uint64_t wall_ns)
{
    uint64_t secs = wall_ns / 1000000000u;
    unsigned us = (unsigned)((wall_ns / 1000u) % 1000000u);
    uint64_t days = secs / 86400u;
    unsigned sod = (unsigned)(secs % 86400u);
    /* days since 1970-01-01 -> civil date; shift the epoch to 0000-03-01 */
    uint64_t z = days + 719468u;
    uint64_t era = z / 146097u;
    unsigned doe = (unsigned)(z - era * 146097u);                   /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    uint64_t y = yoe + era * 400u;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                /* [0, 11], March = 0 */
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    char buf[40];
    if (y > 9999) { /* beyond the format: the library's own formatting */
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, sizeof buf - n, ".%06uZ", us);
    } else {
        memcpy(buf, "0000-00-00T00:00:00.000000Z", 28);
        put_digits(buf, (unsigned)y, 4);
        put_digits(buf + 5, m, 2);
        put_digits(buf + 8, d, 2);
        put_digits(buf + 11, sod / 3600, 2);
        put_digits(buf + 14, sod / 60 % 60, 2);
        put_digits(buf + 17, sod % 60, 2);
        put_digits(buf + 20, us, 6);
    }
    xv_jw_kstr_l(w, key, klen, buf);
}
/* (key's length passed when it is a literal: common/xv_jsonw.h) */
#define add_time(w, k, ns) add_time_l((w), (k), XV_JW_KLEN(k), (ns))

/* Bytes a record's buffer starts with: most records fit. */
#define XV_REC_HINT 4096
/* A thread keeps its record buffer between records up to this size. */
#define XV_REC_KEEP ((size_t)256 << 10)

/* Each thread writes its records in one buffer of its own, kept from one
 * record to the next (freed with the thread): the exporter copies the
 * text into its own FIFO, so no allocation is made per record. A fresh
 * allocation per record, freed in batches by the exporter thread, made
 * glibc trim the heap and the next record fault its pages in again. */
static struct {
    pthread_once_t once;
    pthread_key_t key;
    int ok;              /* the key exists (else each record allocates) */
} g_rw XV_CALL_DATA = { .once = PTHREAD_ONCE_INIT };

static void rw_destroy(void *p)
{
    xv_jw_free(p);
    free(p);
}

static void rw_key(void)
{
    g_rw.ok = pthread_key_create(&g_rw.key, rw_destroy) == 0;
}

/* The calling thread's writer, emptied; `fallback` when it has none. */
static struct xv_jw *rec_writer(struct xv_jw *fallback, size_t hint)
{
    pthread_once(&g_rw.once, rw_key);
    struct xv_jw *w = g_rw.ok ? pthread_getspecific(g_rw.key) : NULL;
    if (!w && g_rw.ok && (w = malloc(sizeof *w)) != NULL) {
        xv_jw_init(w, hint);
        if (pthread_setspecific(g_rw.key, w) != 0) {
            free(w);
            w = NULL;
        }
    }
    if (!w) {
        xv_jw_init(fallback, hint);
        return fallback;
    }
    xv_jw_reset(w, XV_REC_KEEP);
    return w;
}

/* Hand a finished record to the exporter (it copies the text). */
static void push(struct xv_jw *w, struct xv_jw *fallback)
{
    if (!w->oom && w->p)
        xv_exp_push_text(w->p, w->len);
    if (w == fallback)
        xv_jw_free(w);
    else
        xv_jw_reset(w, XV_REC_KEEP);
}

/* The opening members of a child record of a call (tool step): its own v4
 * UUID, naming the call in parent_trace_id (Xenovia's field name); the
 * object is left open. start_time only when `with_start`. Returns the
 * writer (the thread's, or `fb`). */
static struct xv_jw *step_begin(struct xv_jw *fb, struct xv_call *call, const char *type,
                                int with_start)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    char id[XV_TRACE_ID_LEN + 1];
    xv_conn_new_trace_id(id);
    struct xv_jw *w = rec_writer(fb, 1024);
    xv_jw_obj_begin(w);
    xv_jw_kstr(w, "trace_id", id);
    xv_jw_kstr(w, "parent_trace_id", call->trace_id);
    xv_jw_kstr(w, "step_type", type);
    if (call->traceparent[0])      /* the app's trace context, for the OTLP tool span */
        xv_jw_kstr(w, "traceparent", call->traceparent);
    xv_jw_kstr(w, "session_id", call->session_id);
    xv_jw_knum(w, "session_turn", call->session_turn);
    if (with_start)
        add_time(w, "start_time", xv_now_wall_ns());
    xv_jw_knum(w, "pid", (double)(cfg->pid ? cfg->pid : xv_conn_pid()));
    if (cfg->process)
        xv_jw_kstr(w, "process", cfg->process);
    return w;
}

/* The record redactor (openai/'s xv_openai_redact_fn): ctx points to the
 * call's record_labels. */
static int redact_cb(void *ctx, const char *text, size_t n, struct xv_buf *out, int *changed)
{
    return xv_redact_text(*(const unsigned *)ctx, text, n, out, changed);
}

/* Text of at most `max` bytes, cut at a UTF-8 boundary, with the call's
 * record labels redacted first (a failed redaction captures a marker, never
 * the text). */
static void add_text_l(struct xv_jw *w, const char *key, size_t klen, const char *p, size_t n,
                       size_t max, unsigned labels)
{
    if (!p)
        return;
    struct xv_buf red;
    xv_buf_init(&red, n * 4 + 4096);
    if (labels && n) {
        int changed = 0;
        if (xv_redact_text(labels, p, n, &red, &changed) != 0) {
            xv_buf_free(&red);
            xv_jw_kstr_l(w, key, klen, "[REDACTED: redaction failed]");
            return;
        }
        if (changed) {
            p = red.data;
            n = red.len;
        }
    }
    if (n > max) {
        n = max;
        while (n && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
    }
    xv_jw_key_l(w, key, klen);
    xv_jw_strn(w, p, n);
    xv_buf_free(&red);
}
/* (key's length passed when it is a literal: common/xv_jsonw.h) */
#define add_text(w, k, p, n, max, labels) add_text_l((w), (k), XV_JW_KLEN(k), (p), (n), (max), (labels))

/* key: s, with the record's labels redacted (policy reasons and errors
 * may quote what the policy matched). */
static void put_redacted_l(struct xv_jw *w, const char *key, size_t klen, const char *s,
                           unsigned labels)
{
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 30);
    int ch = 0;
    if (labels && xv_redact_text(labels, s, strlen(s), &b, &ch) == 0 && ch)
        s = b.data ? b.data : "";
    xv_jw_kstr_l(w, key, klen, s);
    xv_buf_free(&b);
}
#define put_redacted(w, k, s, labels) put_redacted_l((w), (k), XV_JW_KLEN(k), (s), (labels))

void xv_conn_record_tool_results(struct xv_conn *c, struct xv_call *call,
                                 const struct xv_session_tool_step *steps, size_t n)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    (void)c;
    for (size_t i = 0; i < n; i++) {
        struct xv_jw fb;
        struct xv_jw *w = step_begin(&fb, call, "tool_result", 1);
        xv_jw_kstr(w, "call_id", steps[i].call_id ? steps[i].call_id : "");
        xv_jw_kstr(w, "tool_name", steps[i].tool_name ? steps[i].tool_name : "");
        if (cfg->capture_content) {
            add_text(w, "tool_args", steps[i].tool_args, steps[i].tool_args_len,
                     cfg->capture_max, call->record_labels);
            add_text(w, "tool_result", steps[i].tool_result, steps[i].tool_result_len,
                     cfg->capture_max, call->record_labels);
        }
        xv_jw_kstr(w, "status", "ok");
        xv_jw_kscaled(w, "latency_ms", steps[i].latency_ns, 6); /* ns as ms */
        xv_jw_obj_end(w);
        push(w, &fb);
    }
}

/* After a call's record: teach the session store what the response said
 * (2xx only) and record the tool calls it asked for as child steps. */
/* The session learns the reply the app read: its text and tool calls
 * (tcs[0..k)). `relabel`: the app read a rebuilt response (redact_response);
 * its next turn quotes the redacted text, so the session learns that text
 * (same function, same labels as the rebuild, so the fingerprints meet). */
static void learn_reply(struct xv_call *call, unsigned relabel,
                        const struct xv_session_tool_call *tcs, size_t k)
{
    struct xv_session_store *store = xv_conn_sessions();
    if (!store || !call->session_id[0])
        return;
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(call->api, &clen);
    struct xv_buf red;
    xv_buf_init(&red, (size_t)1 << 28);
    int changed = 0;
    if (relabel && content && xv_redact_text(relabel, content, clen, &red, &changed) == 0 &&
        changed) {
        content = red.data;
        clen = red.len;
    }
    cJSON *reply = xv_session_reply_new(content, clen, tcs, k);
    if (reply) {
        struct xv_session_response sr = {
            .session_id = call->session_id,
            .turn = (uint64_t)call->session_turn,
            .type = xv_openai_call_type(call->api),
            .request = xv_openai_call_request_json(call->api),
            .response_id = xv_openai_call_response_id(call->api),
            .reply = reply,
            .scope = call->has_scope ? call->cred_scope : NULL,
            .convo = &call->convo,
            .id_digest = call->has_session_digest ? call->session_digest : NULL,
        };
        xv_session_store_record_response(store, &sr);
        xv_session_reply_free(reply);
    }
    xv_buf_free(&red);
}

/* A response with tool calls: one step record per call (at most 64), then
 * what the session learns. Out of line: its 4 KiB of arrays would otherwise
 * sit in every record's stack frame, pages a first call faults in (issue 9). */
__attribute__((noinline)) static void tool_steps_and_learn(struct xv_call *call, size_t ntc,
                                                           unsigned relabel, uint64_t end_wall)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    struct xv_session_tool_call tcs[64];
    struct xv_buf red[64];
    size_t k = 0;
    for (size_t i = 0; i < ntc && k < 64; i++) {
        struct xv_openai_tool_call tc;
        if (xv_openai_call_response_tool_call(call->api, i, &tc) != 0)
            continue;
        tcs[k].id = tc.id;
        tcs[k].name = tc.name;
        tcs[k].arguments = tc.arguments;
        tcs[k].arguments_len = tc.arguments_len;
        xv_buf_init(&red[k], (size_t)1 << 28);
        int changed = 0;
        if (relabel && xv_redact_text(relabel, tc.arguments, tc.arguments_len, &red[k],
                                      &changed) == 0 && changed) {
            tcs[k].arguments = red[k].data;
            tcs[k].arguments_len = red[k].len;
        }
        k++;
        struct xv_jw fb;
        struct xv_jw *w = step_begin(&fb, call, "tool_call", 0);
        xv_jw_kstr(w, "call_id", tc.id ? tc.id : "");
        xv_jw_kstr(w, "tool_name", tc.name ? tc.name : "");
        if (cfg->capture_content)
            add_text(w, "tool_args", tc.arguments, tc.arguments_len, cfg->capture_max,
                     call->record_labels);
        xv_jw_kstr(w, "status", "requested");
        /* The step spans the call whose response asked for it, so its
         * OTLP execute_tool span lies within its parent's time range
         * (after status: where the tree form put the replaced member). */
        add_time(w, "start_time", call->start_wall_ns);
        add_time(w, "end_time", end_wall);
        xv_jw_obj_end(w);
        push(w, &fb);
    }
    learn_reply(call, relabel, tcs, k);
    for (size_t i = 0; i < k; i++)
        xv_buf_free(&red[i]);
}

static void learn_and_steps(struct xv_conn *c, struct xv_call *call, const char *error,
                            uint64_t end_wall)
{
    (void)c;
    int status = xv_openai_call_status(call->api);
    if (error || (call->synthetic && !call->replayed) || status < 200 || status > 299)
        return;
    if (call->resp_block && call->resp_policy_applied)
        return; /* the app never saw this response: no tool calls, nothing to learn */
    size_t ntc = xv_openai_call_response_tool_call_count(call->api);
    unsigned relabel = call->resp_redacted ? call->resp_redact_labels : 0;
    if (ntc)
        tool_steps_and_learn(call, ntc, relabel, end_wall);
    else
        learn_reply(call, relabel, NULL, 0);
}

/* "[email, ssn]" of a label mask, in redact.c's order. */
static void add_labels(struct xv_jw *w, unsigned labels)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        { XV_REDACT_URL, "url" },   { XV_REDACT_EMAIL, "email" }, { XV_REDACT_CREDITCARD, "creditcard" },
        { XV_REDACT_SSN, "ssn" },   { XV_REDACT_PHONE, "phone" }, { XV_REDACT_IP, "ip" },
    };
    xv_jw_key(w, "redacted_labels");
    xv_jw_arr_begin(w);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (labels & names[i].bit)
            xv_jw_str(w, names[i].name);
    xv_jw_arr_end(w);
}

/* Where a record's one `error` member sits (the tree form added, replaced
 * and skipped it at these points; the text form decides first). */
enum rec_err_at {
    ERR_NONE = 0,
    ERR_AFTER_FILL,    /* the call's own error (openai/), capped as an identifier */
    ERR_AFTER_STATUS,  /* the connection's error, else the request side's tx_error */
    ERR_SYNTHETIC,     /* the agent answered: why (replaces any other) */
    ERR_RESP_BLOCK,    /* the response stage blocked what the upstream sent */
    ERR_POLICY,        /* the request stage's evaluation failure */
};

/* The record's error: its text (*why is the buffer for composed ones) and
 * where it goes. */
static enum rec_err_at emit_error(struct xv_conn *c, struct xv_call *call, const char *error,
                                  char why[400], const char **text)
{
    const char *oe = xv_openai_call_error(call->api);
    enum rec_err_at at = ERR_NONE;
    *text = NULL;
    if (oe) {
        *text = oe;
        at = ERR_AFTER_FILL;
    } else if (error || call->tx_error) {
        *text = error ? error : call->tx_error;
        at = ERR_AFTER_STATUS;
    }
    if (call->replayed || c->peer.replay_local) {
        /* answered from the cassette: the recorded response, as it came */
    } else if (call->synthetic) {
        /* The agent wrote that response: what openai/ read in it is ours,
         * not an upstream error. */
        if (call->policy_blocked)
            xv_utf8_snprintf(why, 400, "request blocked by policy (%s)%s%s", call->policy_outcome,
                     call->policy_reason[0] ? ": " : "", call->policy_reason);
        else if (call->policy_error[0])
            xv_utf8_snprintf(why, 400, "%s", call->policy_error);
        else
            xv_utf8_snprintf(why, 400, "%s", call->tx_error ? call->tx_error : "answered by the agent");
        *text = why;
        at = ERR_SYNTHETIC;
    } else if (call->app_status && call->resp_block && at == ERR_NONE) {
        xv_utf8_snprintf(why, 400, "response blocked by policy (%s)%s%s", call->resp_policy_outcome,
                 call->resp_policy_reason[0] ? ": " : "", call->resp_policy_reason);
        *text = why;
        at = ERR_RESP_BLOCK;
    }
    if (at == ERR_NONE && call->policy_outcome && call->policy_error[0]) {
        *text = call->policy_error;
        at = ERR_POLICY;
    }
    return at;
}

/* The error member at its place: the call's own capped as an identifier
 * (512 bytes, as openai/ caps it), then the record's labels redacted. */
static void put_error(struct xv_jw *w, enum rec_err_at at, const char *text, unsigned labels)
{
    if (at != ERR_AFTER_FILL) {
        put_redacted(w, "error", text, labels);
        return;
    }
    int cut = 0;
    size_t len = strlen(text);
    if (!labels) {
        xv_jw_key(w, "error");
        xv_jw_strn_max(w, text, len, 512, &cut);
        return;
    }
    /* Capped first, then redacted, as the tree form did. */
    char *capped = xv_utf8_fix(text, len, 512, &cut);
    if (!capped) {
        w->oom = 1;
        return;
    }
    put_redacted(w, "error", capped, labels);
    free(capped);
}

/*
 * SPEC §6: policy_outcome is always present and final. The response
 * stage's outcome wins when that stage changed what the app got (the 403 of
 * block_response / an unknown action, a rebuilt redacted response), or when
 * it applied a non-allow decision and the request stage had nothing to say;
 * else the request stage's; `allow` with no policy. Each stage's own
 * outcome stays as policy_request_* / policy_response_*. Reasons are
 * redacted with the record's labels (they may quote what was matched).
 */
static void add_policy(struct xv_jw *w, struct xv_call *call, enum rec_err_at err_at,
                       const char *err, unsigned labels)
{
    const char *req = call->policy_outcome, *resp = call->resp_policy_outcome;
    int resp_applied = resp && call->resp_policy_applied && strcmp(resp, "allow") != 0 &&
                       strcmp(resp, "error") != 0;
    int resp_final = resp_applied && ((call->resp_block && call->app_status) ||
                                      call->resp_redacted || !req || !strcmp(req, "allow"));
    if (!req && !resp) {
        xv_jw_kstr(w, "policy_outcome", "allow");
        return;
    }
    const char *fin = resp_final ? resp : req ? req : "allow";
    const char *rule = resp_final ? call->resp_policy_rule_id : call->policy_rule_id;
    const char *reason = resp_final ? call->resp_policy_reason : call->policy_reason;
    xv_jw_kstr(w, "policy_outcome", fin);
    xv_jw_kstr(w, "policy_mode", call->policy_mode ? call->policy_mode : "enforce");
    if (rule[0])
        xv_jw_kstr(w, "policy_rule_id", rule);
    if (reason[0])
        put_redacted(w, "policy_reason", reason, labels);
    if (req) {
        xv_jw_kstr(w, "policy_request_outcome", req);
        if (call->policy_rule_id[0])
            xv_jw_kstr(w, "policy_request_rule_id", call->policy_rule_id);
        if (call->policy_reason[0])
            put_redacted(w, "policy_request_reason", call->policy_reason, labels);
        if (err_at == ERR_POLICY)
            put_error(w, err_at, err, labels);
        if (call->redacted)
            xv_jw_kbool(w, "request_redacted", 1);
    }
    if (resp) {
        xv_jw_kstr(w, "policy_response_outcome", resp);
        if (call->resp_policy_rule_id[0])
            xv_jw_kstr(w, "policy_response_rule_id", call->resp_policy_rule_id);
        if (call->resp_policy_reason[0])
            put_redacted(w, "policy_response_reason", call->resp_policy_reason, labels);
        /* applied when the response was held whole (enforce), else only
         * recorded (monitor, streams under XENOVIA_STREAM_POLICY=observe) */
        xv_jw_kbool(w, "policy_response_applied", call->resp_policy_applied);
        if (call->resp_redacted)
            xv_jw_kbool(w, "response_redacted", 1);
    }
}

/* custom_properties (SPEC §6), as the session's properties list them. */
static void add_props(struct xv_jw *w, const struct xv_session_props *p)
{
    if (p->n == 0)
        return;
    xv_jw_key(w, "custom_properties");
    xv_jw_obj_begin(w);
    for (size_t i = 0; i < p->n && p->p[i].value; i++)
        xv_jw_kstr(w, p->p[i].key, p->p[i].value);
    xv_jw_obj_end(w);
}

/* Who the call went to: provider, gateway, server address/port, route. */
static void add_peer(struct xv_jw *w, struct xv_conn *c, struct xv_call *call)
{
    const char *host = c->peer.host[0] ? c->peer.host : call->host[0] ? call->host : c->peer.addr;
    xv_jw_kstr(w, "provider", call->prov.id ? call->prov.id : xv_conn_provider(host));
    const char *gateway = call->prov.gateway;
    if (!gateway && c->peer.via_host) {
        /* rerouted to a Xenovia runtime: the provider is the host the app
         * asked for, the runtime is the gateway */
        struct xv_openai_provider via;
        xv_openai_provider_for(c->peer.via_host, NULL, 0, &via);
        gateway = via.gateway;
    }
    if (gateway)
        xv_jw_kstr(w, "gateway", gateway);
    if (c->peer.route_url) {
        /* rerouted (SPEC §8): where the call really went, and by which rule */
        xv_jw_kstr(w, "server_address", c->peer.via_host);
        xv_jw_knum(w, "server_port", c->peer.via_port);
        xv_jw_kstr(w, "route", c->peer.route_url);
    } else {
        xv_jw_kstr(w, "server_address", host);
        if (c->peer.port)
            xv_jw_knum(w, "server_port", c->peer.port);
    }
}

void xv_conn_record_emit(struct xv_conn *c, struct xv_call *call, const char *error)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    if (!error)
        xv_conn_policy_response(c, call); /* decided before any text is captured */
    /* SPEC §6: a redaction decided at either stage applies to every captured
     * text of the record and of its tool steps. */
    call->record_labels = call->redact_labels |
                          (call->resp_policy_outcome && call->resp_redact_labels
                               ? call->resp_redact_labels : 0);
    unsigned labels = call->record_labels;
    uint64_t end_mono = xv_now_mono_ns();
    uint64_t end_wall = xv_now_wall_ns();
    struct xv_jw fb;
    struct xv_jw *w = rec_writer(&fb, XV_REC_HINT);
    xv_jw_obj_begin(w);
    xv_jw_kstr(w, "trace_id", call->trace_id);
    if (!call->session_id[0]) {
        /* never resolved (e.g. the request never completed): a session of its own */
        xv_uuid_v4(call->session_id);
        call->session_turn = 1;
        call->session_strategy = "new";
    }
    xv_jw_kstr(w, "session_id", call->session_id);
    xv_jw_knum(w, "session_turn", call->session_turn);
    if (call->session_strategy)
        xv_jw_kstr(w, "session_strategy", call->session_strategy);
    if (call->upstream_session_id[0] && !call->synthetic)
        xv_jw_kstr(w, "upstream_session_id", call->upstream_session_id);
    if (call->session_path[0])
        xv_jw_kstr(w, "session_path", call->session_path);
    if (call->flow_id[0])
        xv_jw_kstr(w, "flow_id", call->flow_id);
    if (call->parent_trace_id[0])
        xv_jw_kstr(w, "parent_trace_id", call->parent_trace_id);
    if (call->traceparent[0]) {
        xv_jw_kstr(w, "traceparent", call->traceparent);
        if (call->tracestate[0])
            xv_jw_kstr(w, "tracestate", call->tracestate);
    }
    if (call->props) {
        add_props(w, call->props);
        if (call->props->dropped)
            xv_jw_knum(w, "custom_properties_dropped", (double)call->props->dropped);
    }
    if (cfg->agent_id)
        xv_jw_kstr(w, "agent_id", cfg->agent_id);
    if (cfg->org_id)
        xv_jw_kstr(w, "org_id", cfg->org_id);
    add_peer(w, c, call);
    xv_jw_kstr(w, "transport", c->kind == XV_CONN_TLS ? "tls" : "tcp");
    add_time(w, "start_time", call->start_wall_ns);
    add_time(w, "end_time", end_wall);
    xv_jw_kscaled(w, "latency_ms", end_mono - call->start_mono_ns, 6); /* ns as ms */

    char why[400];
    const char *err = NULL;
    enum rec_err_at err_at = emit_error(c, call, error, why, &err);
    /* status_code is what the app read; the upstream's, when different, too */
    int upstream = xv_openai_call_status(call->api);
    int override = call->app_status && call->app_status != upstream;
    if (labels)
        xv_openai_call_set_redactor(call->api, redact_cb, &call->record_labels);
    xv_openai_call_write_record(call->api, w, call->start_mono_ns,
                                XV_OPENAI_REC_NO_ERROR | (override ? XV_OPENAI_REC_NO_STATUS : 0));
    xv_openai_call_set_redactor(call->api, NULL, NULL);
    if (err_at == ERR_AFTER_FILL)
        put_error(w, err_at, err, labels);
    if (override) {
        xv_jw_knum(w, "status_code", call->app_status);
        if (upstream)
            xv_jw_knum(w, "upstream_status_code", upstream);
    }
    if (err_at == ERR_AFTER_STATUS)
        put_error(w, err_at, err, labels);
    if (call->replayed || c->peer.replay_local) {
        xv_jw_kbool(w, "replayed", 1);
    } else if (call->synthetic) {
        put_error(w, err_at, err, labels);
        xv_jw_kbool(w, "synthetic_response", 1);
    } else if (err_at == ERR_RESP_BLOCK) {
        put_error(w, err_at, err, labels);
    }
    add_policy(w, call, err_at, err, labels);
    if (labels)
        add_labels(w, labels);
    if (call->upstream_trace_id[0] && !call->synthetic)
        xv_jw_kstr(w, "upstream_trace_id", call->upstream_trace_id);
    if (!call->stamped && !call->upstream_trace_id[0] && call->response_started &&
        !call->synthetic && !cfg->disabled_stamp)
        xv_jw_kbool(w, "trace_header_missing", 1);
    xv_jw_knum(w, "pid", (double)(cfg->pid ? cfg->pid : xv_conn_pid()));
    if (cfg->process)
        xv_jw_kstr(w, "process", cfg->process);
    if (cfg->capture)
        xv_jw_kstr(w, "capture", cfg->capture);
    xv_jw_obj_end(w);
    xv_conn_stat_add(XV_STAT_RECORDS);
    push(w, &fb);
    if (call->steps) {
        /* tool results this request carried, with its redaction */
        xv_conn_record_tool_results(c, call, call->steps, call->nsteps);
        xv_session_tool_steps_free(call->steps, call->nsteps);
        call->steps = NULL;
        call->nsteps = 0;
    }
    learn_and_steps(c, call, error, end_wall);
}
