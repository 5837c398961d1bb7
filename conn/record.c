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
 * Thread safety: called with the connection's lock held; uses only
 * thread-safe functions (common/'s per-thread UUID generator, the shared
 * compiled redaction patterns, cJSON on private objects).
 */
#include "xv_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xv_exporter.h"
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
static void add_time(cJSON *r, const char *key, uint64_t wall_ns)
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
    cJSON_AddStringToObject(r, key, buf);
}

/* A child record of a call (tool step): its own v4 UUID, naming the call
 * in parent_trace_id (Xenovia's field name). */
static cJSON *step_record(struct xv_conn *c, struct xv_call *call, const char *type)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    char id[XV_TRACE_ID_LEN + 1];
    xv_conn_new_trace_id(id);
    cJSON_AddStringToObject(r, "trace_id", id);
    cJSON_AddStringToObject(r, "parent_trace_id", call->trace_id);
    cJSON_AddStringToObject(r, "step_type", type);
    if (call->traceparent[0])      /* the app's trace context, for the OTLP tool span */
        cJSON_AddStringToObject(r, "traceparent", call->traceparent);
    cJSON_AddStringToObject(r, "session_id", call->session_id);
    cJSON_AddNumberToObject(r, "session_turn", call->session_turn);
    add_time(r, "start_time", xv_now_wall_ns());
    cJSON_AddNumberToObject(r, "pid", (double)(cfg->pid ? cfg->pid : xv_conn_pid()));
    if (cfg->process)
        cJSON_AddStringToObject(r, "process", cfg->process);
    (void)c;
    return r;
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
static void add_text(cJSON *r, const char *key, const char *p, size_t n, size_t max,
                     unsigned labels)
{
    if (!p)
        return;
    struct xv_buf red;
    xv_buf_init(&red, n * 4 + 4096);
    if (labels && n) {
        int changed = 0;
        if (xv_redact_text(labels, p, n, &red, &changed) != 0) {
            xv_buf_free(&red);
            cJSON_AddStringToObject(r, key, "[REDACTED: redaction failed]");
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
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, p, n);
        t[n] = '\0';
        cJSON_AddStringToObject(r, key, t);
        free(t);
    }
    xv_buf_free(&red);
}

void xv_conn_record_tool_results(struct xv_conn *c, struct xv_call *call,
                                 const struct xv_session_tool_step *steps, size_t n)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    for (size_t i = 0; i < n; i++) {
        cJSON *r = step_record(c, call, "tool_result");
        if (!r)
            return;
        cJSON_AddStringToObject(r, "call_id", steps[i].call_id ? steps[i].call_id : "");
        cJSON_AddStringToObject(r, "tool_name", steps[i].tool_name ? steps[i].tool_name : "");
        if (cfg->capture_content) {
            add_text(r, "tool_args", steps[i].tool_args, steps[i].tool_args_len, cfg->capture_max,
                     call->record_labels);
            add_text(r, "tool_result", steps[i].tool_result, steps[i].tool_result_len,
                     cfg->capture_max, call->record_labels);
        }
        cJSON_AddStringToObject(r, "status", "ok");
        cJSON_AddNumberToObject(r, "latency_ms", (double)steps[i].latency_ns / 1e6);
        xv_exp_push(r);
    }
}

/* After a call's record: teach the session store what the response said
 * (2xx only) and record the tool calls it asked for as child steps. */
static void learn_and_steps(struct xv_conn *c, struct xv_call *call, const char *error,
                            uint64_t end_wall)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    int status = xv_openai_call_status(call->api);
    if (error || (call->synthetic && !call->replayed) || status < 200 || status > 299)
        return;
    if (call->resp_block && call->resp_policy_applied)
        return; /* the app never saw this response: no tool calls, nothing to learn */
    size_t ntc = xv_openai_call_response_tool_call_count(call->api);
    struct xv_session_tool_call tcs[64];
    /* The app read a rebuilt response (redact_response): its next turn quotes
     * the redacted text, so the session learns that text (same function,
     * same labels as the rebuild, so the fingerprints meet). */
    unsigned relabel = call->resp_redacted ? call->resp_redact_labels : 0;
    struct xv_buf red[65];
    for (size_t i = 0; i < 65; i++)
        xv_buf_init(&red[i], (size_t)1 << 28);
    size_t k = 0;
    for (size_t i = 0; i < ntc && k < 64; i++) {
        struct xv_openai_tool_call tc;
        if (xv_openai_call_response_tool_call(call->api, i, &tc) != 0)
            continue;
        tcs[k].id = tc.id;
        tcs[k].name = tc.name;
        tcs[k].arguments = tc.arguments;
        tcs[k].arguments_len = tc.arguments_len;
        int changed = 0;
        if (relabel && xv_redact_text(relabel, tc.arguments, tc.arguments_len, &red[k],
                                      &changed) == 0 && changed) {
            tcs[k].arguments = red[k].data;
            tcs[k].arguments_len = red[k].len;
        }
        k++;
        cJSON *r = step_record(c, call, "tool_call");
        if (r) {
            cJSON_AddStringToObject(r, "call_id", tc.id ? tc.id : "");
            cJSON_AddStringToObject(r, "tool_name", tc.name ? tc.name : "");
            if (cfg->capture_content)
                add_text(r, "tool_args", tc.arguments, tc.arguments_len, cfg->capture_max,
                         call->record_labels);
            cJSON_AddStringToObject(r, "status", "requested");
            /* The step spans the call whose response asked for it, so its
             * OTLP execute_tool span lies within its parent's time range. */
            cJSON_DeleteItemFromObjectCaseSensitive(r, "start_time");
            add_time(r, "start_time", call->start_wall_ns);
            add_time(r, "end_time", end_wall);
            xv_exp_push(r);
        }
    }
    struct xv_session_store *store = xv_conn_sessions();
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(call->api, &clen);
    int changed = 0;
    if (store && relabel && content &&
        xv_redact_text(relabel, content, clen, &red[64], &changed) == 0 && changed) {
        content = red[64].data;
        clen = red[64].len;
    }
    cJSON *reply = store && call->session_id[0] ? xv_session_reply_new(content, clen, tcs, k) : NULL;
    if (!reply) {
        for (size_t i = 0; i < 65; i++)
            xv_buf_free(&red[i]);
        return;
    }
    struct xv_session_response sr = {
        .session_id = call->session_id,
        .turn = (uint64_t)call->session_turn,
        .type = xv_openai_call_type(call->api),
        .request = xv_openai_call_request_json(call->api),
        .response_id = xv_openai_call_response_id(call->api),
        .reply = reply,
        .scope = call->has_scope ? call->cred_scope : NULL,
    };
    xv_session_store_record_response(store, &sr);
    cJSON_Delete(reply);
    for (size_t i = 0; i < 65; i++)
        xv_buf_free(&red[i]);
}

/* "[email, ssn]" of a label mask, in redact.c's order. */
static void add_labels(cJSON *r, unsigned labels)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        { XV_REDACT_URL, "url" },   { XV_REDACT_EMAIL, "email" }, { XV_REDACT_CREDITCARD, "creditcard" },
        { XV_REDACT_SSN, "ssn" },   { XV_REDACT_PHONE, "phone" }, { XV_REDACT_IP, "ip" },
    };
    cJSON *a = cJSON_AddArrayToObject(r, "redacted_labels");
    for (size_t i = 0; a && i < sizeof names / sizeof names[0]; i++)
        if (labels & names[i].bit)
            cJSON_AddItemToArray(a, cJSON_CreateString(names[i].name));
}

/* Replace a string field with its redacted text (policy reasons and errors
 * may quote what the policy matched). */
static void redact_field(cJSON *r, const char *key, unsigned labels)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(r, key);
    int changed = 0;
    if (labels && cJSON_IsString(it))
        xv_redact_json_text(it, labels, &changed);
}

/*
 * SPEC §6: policy_outcome is always present and final. The response
 * stage's outcome wins when that stage changed what the app got (the 403 of
 * block_response / an unknown action, a rebuilt redacted response), or when
 * it applied a non-allow decision and the request stage had nothing to say;
 * else the request stage's; `allow` with no policy. Each stage's own
 * outcome stays as policy_request_* / policy_response_*.
 */
static void add_policy(cJSON *r, struct xv_call *call)
{
    const char *req = call->policy_outcome, *resp = call->resp_policy_outcome;
    int resp_applied = resp && call->resp_policy_applied && strcmp(resp, "allow") != 0 &&
                       strcmp(resp, "error") != 0;
    int resp_final = resp_applied && ((call->resp_block && call->app_status) ||
                                      call->resp_redacted || !req || !strcmp(req, "allow"));
    if (!req && !resp) {
        cJSON_AddStringToObject(r, "policy_outcome", "allow");
        return;
    }
    const char *fin = resp_final ? resp : req ? req : "allow";
    const char *rule = resp_final ? call->resp_policy_rule_id : call->policy_rule_id;
    const char *reason = resp_final ? call->resp_policy_reason : call->policy_reason;
    cJSON_AddStringToObject(r, "policy_outcome", fin);
    cJSON_AddStringToObject(r, "policy_mode", call->policy_mode ? call->policy_mode : "enforce");
    if (rule[0])
        cJSON_AddStringToObject(r, "policy_rule_id", rule);
    if (reason[0])
        cJSON_AddStringToObject(r, "policy_reason", reason);
    if (req) {
        cJSON_AddStringToObject(r, "policy_request_outcome", req);
        if (call->policy_rule_id[0])
            cJSON_AddStringToObject(r, "policy_request_rule_id", call->policy_rule_id);
        if (call->policy_reason[0])
            cJSON_AddStringToObject(r, "policy_request_reason", call->policy_reason);
        if (call->policy_error[0] && !cJSON_GetObjectItem(r, "error"))
            cJSON_AddStringToObject(r, "error", call->policy_error);
        if (call->redacted)
            cJSON_AddBoolToObject(r, "request_redacted", 1);
    }
    if (resp) {
        cJSON_AddStringToObject(r, "policy_response_outcome", resp);
        if (call->resp_policy_rule_id[0])
            cJSON_AddStringToObject(r, "policy_response_rule_id", call->resp_policy_rule_id);
        if (call->resp_policy_reason[0])
            cJSON_AddStringToObject(r, "policy_response_reason", call->resp_policy_reason);
        /* applied when the response was held whole (enforce), else only
         * recorded (monitor, streams under XENOVIA_STREAM_POLICY=observe) */
        cJSON_AddBoolToObject(r, "policy_response_applied", call->resp_policy_applied);
        if (call->resp_redacted)
            cJSON_AddBoolToObject(r, "response_redacted", 1);
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
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return;
    uint64_t end_mono = xv_now_mono_ns();
    uint64_t end_wall = xv_now_wall_ns();
    cJSON_AddStringToObject(r, "trace_id", call->trace_id);
    if (!call->session_id[0]) {
        /* never resolved (e.g. the request never completed): a session of its own */
        xv_uuid_v4(call->session_id);
        call->session_turn = 1;
        call->session_strategy = "new";
    }
    cJSON_AddStringToObject(r, "session_id", call->session_id);
    cJSON_AddNumberToObject(r, "session_turn", call->session_turn);
    if (call->session_strategy)
        cJSON_AddStringToObject(r, "session_strategy", call->session_strategy);
    if (call->upstream_session_id[0] && !call->synthetic)
        cJSON_AddStringToObject(r, "upstream_session_id", call->upstream_session_id);
    if (call->session_path[0])
        cJSON_AddStringToObject(r, "session_path", call->session_path);
    if (call->flow_id[0])
        cJSON_AddStringToObject(r, "flow_id", call->flow_id);
    if (call->parent_trace_id[0])
        cJSON_AddStringToObject(r, "parent_trace_id", call->parent_trace_id);
    if (call->traceparent[0]) {
        cJSON_AddStringToObject(r, "traceparent", call->traceparent);
        if (call->tracestate[0])
            cJSON_AddStringToObject(r, "tracestate", call->tracestate);
    }
    if (call->props) {
        xv_session_props_to_json(call->props, r, "custom_properties");
        if (call->props->dropped)
            cJSON_AddNumberToObject(r, "custom_properties_dropped", (double)call->props->dropped);
    }
    if (cfg->agent_id)
        cJSON_AddStringToObject(r, "agent_id", cfg->agent_id);
    if (cfg->org_id)
        cJSON_AddStringToObject(r, "org_id", cfg->org_id);
    const char *host = c->peer.host[0] ? c->peer.host : call->host[0] ? call->host : c->peer.addr;
    cJSON_AddStringToObject(r, "provider", call->prov.id ? call->prov.id : xv_conn_provider(host));
    const char *gateway = call->prov.gateway;
    if (!gateway && c->peer.via_host) {
        /* rerouted to a Xenovia runtime: the provider is the host the app
         * asked for, the runtime is the gateway */
        struct xv_openai_provider via;
        xv_openai_provider_for(c->peer.via_host, NULL, 0, &via);
        gateway = via.gateway;
    }
    if (gateway)
        cJSON_AddStringToObject(r, "gateway", gateway);
    if (c->peer.route_url) {
        /* rerouted (SPEC §8): where the call really went, and by which rule */
        cJSON_AddStringToObject(r, "server_address", c->peer.via_host);
        cJSON_AddNumberToObject(r, "server_port", c->peer.via_port);
        cJSON_AddStringToObject(r, "route", c->peer.route_url);
    } else {
        cJSON_AddStringToObject(r, "server_address", host);
        if (c->peer.port)
            cJSON_AddNumberToObject(r, "server_port", c->peer.port);
    }
    cJSON_AddStringToObject(r, "transport", c->kind == XV_CONN_TLS ? "tls" : "tcp");
    add_time(r, "start_time", call->start_wall_ns);
    add_time(r, "end_time", end_wall);
    cJSON_AddNumberToObject(r, "latency_ms",
                            (double)(end_mono - call->start_mono_ns) / 1e6);
    if (call->record_labels)
        xv_openai_call_set_redactor(call->api, redact_cb, &call->record_labels);
    xv_openai_call_fill_record(call->api, r, call->start_mono_ns);
    xv_openai_call_set_redactor(call->api, NULL, NULL);
    /* status_code is what the app read; the upstream's, when different, too */
    int upstream = xv_openai_call_status(call->api);
    if (call->app_status && call->app_status != upstream) {
        cJSON_DeleteItemFromObjectCaseSensitive(r, "status_code");
        cJSON_AddNumberToObject(r, "status_code", call->app_status);
        if (upstream)
            cJSON_AddNumberToObject(r, "upstream_status_code", upstream);
    }
    if (error && !cJSON_GetObjectItem(r, "error"))
        cJSON_AddStringToObject(r, "error", error);
    if (call->tx_error && !cJSON_GetObjectItem(r, "error"))
        cJSON_AddStringToObject(r, "error", call->tx_error);
    if (call->replayed || c->peer.replay_local) {
        /* answered from the cassette: the recorded response, as it came */
        cJSON_AddBoolToObject(r, "replayed", 1);
    } else if (call->synthetic) {
        /* The agent wrote that response: what openai/ read in it is ours,
         * not an upstream error. */
        char why[400];
        if (call->policy_blocked)
            xv_utf8_snprintf(why, sizeof why, "request blocked by policy (%s)%s%s", call->policy_outcome,
                     call->policy_reason[0] ? ": " : "", call->policy_reason);
        else if (call->policy_error[0])
            xv_utf8_snprintf(why, sizeof why, "%s", call->policy_error);
        else
            xv_utf8_snprintf(why, sizeof why, "%s", call->tx_error ? call->tx_error : "answered by the agent");
        cJSON_DeleteItemFromObject(r, "error");
        cJSON_AddStringToObject(r, "error", why);
        cJSON_AddBoolToObject(r, "synthetic_response", 1);
    } else if (call->app_status && call->resp_block && !cJSON_GetObjectItem(r, "error")) {
        char why[400];
        xv_utf8_snprintf(why, sizeof why, "response blocked by policy (%s)%s%s", call->resp_policy_outcome,
                 call->resp_policy_reason[0] ? ": " : "", call->resp_policy_reason);
        cJSON_AddStringToObject(r, "error", why);
    }
    add_policy(r, call);
    if (call->record_labels) {
        static const char *const quoted[] = { "error", "policy_reason", "policy_request_reason",
                                              "policy_response_reason" };
        for (size_t i = 0; i < sizeof quoted / sizeof quoted[0]; i++)
            redact_field(r, quoted[i], call->record_labels);
        add_labels(r, call->record_labels);
    }
    if (call->upstream_trace_id[0] && !call->synthetic)
        cJSON_AddStringToObject(r, "upstream_trace_id", call->upstream_trace_id);
    if (!call->stamped && !call->upstream_trace_id[0] && call->response_started &&
        !call->synthetic && !cfg->disabled_stamp)
        cJSON_AddBoolToObject(r, "trace_header_missing", 1);
    cJSON_AddNumberToObject(r, "pid", (double)(cfg->pid ? cfg->pid : xv_conn_pid()));
    if (cfg->process)
        cJSON_AddStringToObject(r, "process", cfg->process);
    if (cfg->capture)
        cJSON_AddStringToObject(r, "capture", cfg->capture);
    xv_conn_stat_add(XV_STAT_RECORDS);
    xv_exp_push(r); /* takes ownership */
    if (call->steps) {
        /* tool results this request carried, with its redaction */
        xv_conn_record_tool_results(c, call, call->steps, call->nsteps);
        xv_session_tool_steps_free(call->steps, call->nsteps);
        call->steps = NULL;
        call->nsteps = 0;
    }
    learn_and_steps(c, call, error, end_wall);
}
