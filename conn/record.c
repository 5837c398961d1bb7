/*
 * record.c — the trace record of one finished call (SPEC §6 fields that
 * need neither sessions nor policy yet) and trace ids.
 *
 * The session fields come from the call (resolved when its request was
 * released); a call whose request never completed gets a session of its own. Records never contain request or response headers, so
 * no credential can reach them from here.
 *
 * Thread safety: called with the connection's lock held; uses only
 * thread-safe functions (getrandom, libuuid, cJSON on private objects).
 */
#include "xv_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "xv_exporter.h"

void xv_conn_new_trace_id(char out[XV_TRACE_ID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        /* Entropy pool not ready (early boot): fall back to libuuid. */
        uuid_t u;
        uuid_generate(u);
        memcpy(b, u, sizeof b);
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[XV_TRACE_ID_LEN] = '\0';
}

static void add_time(cJSON *r, const char *key, uint64_t wall_ns)
{
    time_t s = (time_t)(wall_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%06uZ", (unsigned)((wall_ns / 1000u) % 1000000u));
    cJSON_AddStringToObject(r, key, buf);
}

/* A child record of a call (tool step). */
static cJSON *step_record(struct xv_conn *c, struct xv_call *call, const char *type)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    char id[XV_TRACE_ID_LEN + 1];
    xv_conn_new_trace_id(id);
    cJSON_AddStringToObject(r, "trace_id", id);
    cJSON_AddStringToObject(r, "parent_call_trace_id", call->trace_id);
    cJSON_AddStringToObject(r, "step_type", type);
    cJSON_AddStringToObject(r, "session_id", call->session_id);
    cJSON_AddNumberToObject(r, "session_turn", call->session_turn);
    add_time(r, "start_time", xv_now_wall_ns());
    cJSON_AddNumberToObject(r, "pid", (double)getpid());
    if (cfg->process)
        cJSON_AddStringToObject(r, "process", cfg->process);
    (void)c;
    return r;
}

/* Text of at most `max` bytes, cut at a UTF-8 boundary. */
static void add_text(cJSON *r, const char *key, const char *p, size_t n, size_t max)
{
    if (!p)
        return;
    if (n > max) {
        n = max;
        while (n && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
    }
    char *t = malloc(n + 1);
    if (!t)
        return;
    memcpy(t, p, n);
    t[n] = '\0';
    cJSON_AddStringToObject(r, key, t);
    free(t);
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
            add_text(r, "tool_args", steps[i].tool_args, steps[i].tool_args_len, cfg->capture_max);
            add_text(r, "tool_result", steps[i].tool_result, steps[i].tool_result_len,
                     cfg->capture_max);
        }
        cJSON_AddStringToObject(r, "status", "ok");
        cJSON_AddNumberToObject(r, "latency_ms", (double)steps[i].latency_ns / 1e6);
        xv_exp_push(r);
    }
}

/* After a call's record: teach the session store what the response said
 * (2xx only) and record the tool calls it asked for as child steps. */
static void learn_and_steps(struct xv_conn *c, struct xv_call *call, const char *error)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    int status = xv_openai_call_status(call->api);
    if (error || call->synthetic || status < 200 || status > 299)
        return;
    size_t ntc = xv_openai_call_response_tool_call_count(call->api);
    struct xv_session_tool_call tcs[64];
    size_t k = 0;
    for (size_t i = 0; i < ntc && k < 64; i++) {
        struct xv_openai_tool_call tc;
        if (xv_openai_call_response_tool_call(call->api, i, &tc) != 0)
            continue;
        tcs[k].id = tc.id;
        tcs[k].name = tc.name;
        tcs[k].arguments = tc.arguments;
        tcs[k].arguments_len = tc.arguments_len;
        k++;
        cJSON *r = step_record(c, call, "tool_call");
        if (r) {
            cJSON_AddStringToObject(r, "call_id", tc.id ? tc.id : "");
            cJSON_AddStringToObject(r, "tool_name", tc.name ? tc.name : "");
            if (cfg->capture_content)
                add_text(r, "tool_args", tc.arguments, tc.arguments_len, cfg->capture_max);
            cJSON_AddStringToObject(r, "status", "requested");
            xv_exp_push(r);
        }
    }
    struct xv_session_store *store = xv_conn_sessions();
    if (!store || !call->session_id[0])
        return;
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(call->api, &clen);
    cJSON *reply = xv_session_reply_new(content, clen, tcs, k);
    struct xv_session_response sr = {
        .session_id = call->session_id,
        .turn = (uint64_t)call->session_turn,
        .type = xv_openai_call_type(call->api),
        .request = xv_openai_call_request_json(call->api),
        .response_id = xv_openai_call_response_id(call->api),
        .reply = reply,
    };
    xv_session_store_record_response(store, &sr);
    cJSON_Delete(reply);
}

void xv_conn_record_emit(struct xv_conn *c, struct xv_call *call, const char *error)
{
    const struct xv_conn_config *cfg = xv_conn_get_config();
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return;
    uint64_t end_mono = xv_now_mono_ns();
    uint64_t end_wall = xv_now_wall_ns();
    cJSON_AddStringToObject(r, "trace_id", call->trace_id);
    if (!call->session_id[0]) {
        /* never resolved (e.g. the request never completed): a session of its own */
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, call->session_id);
        call->session_turn = 1;
        call->session_strategy = "new";
    }
    cJSON_AddStringToObject(r, "session_id", call->session_id);
    cJSON_AddNumberToObject(r, "session_turn", call->session_turn);
    if (call->session_strategy)
        cJSON_AddStringToObject(r, "session_strategy", call->session_strategy);
    if (call->upstream_session_id[0])
        cJSON_AddStringToObject(r, "upstream_session_id", call->upstream_session_id);
    if (call->session_path[0])
        cJSON_AddStringToObject(r, "session_path", call->session_path);
    if (call->flow_id[0])
        cJSON_AddStringToObject(r, "flow_id", call->flow_id);
    if (call->parent_trace_id[0])
        cJSON_AddStringToObject(r, "parent_trace_id", call->parent_trace_id);
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
    cJSON_AddStringToObject(r, "provider", xv_conn_provider(host));
    if (c->peer.route_url) {
        /* rerouted: where the call really went, and by which rule */
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
    xv_openai_call_fill_record(call->api, r, call->start_mono_ns);
    if (error && !cJSON_GetObjectItem(r, "error"))
        cJSON_AddStringToObject(r, "error", error);
    if (call->tx_error && !cJSON_GetObjectItem(r, "error"))
        cJSON_AddStringToObject(r, "error", call->tx_error);
    if (call->synthetic) {
        /* The agent wrote that response: what openai/ read in it is ours,
         * not an upstream error. */
        char why[400];
        if (call->policy_outcome && !strcmp(call->policy_outcome, "block"))
            snprintf(why, sizeof why, "request blocked by policy%s%s",
                     call->policy_reason[0] ? ": " : "", call->policy_reason);
        else if (call->policy_error[0])
            snprintf(why, sizeof why, "%s", call->policy_error);
        else
            snprintf(why, sizeof why, "%s", call->tx_error ? call->tx_error : "answered by the agent");
        cJSON_DeleteItemFromObject(r, "error");
        cJSON_AddStringToObject(r, "error", why);
        cJSON_AddBoolToObject(r, "synthetic_response", 1);
    }
    if (call->policy_outcome) {
        cJSON_AddStringToObject(r, "policy_outcome", call->policy_outcome);
        cJSON_AddStringToObject(r, "policy_mode", call->policy_mode ? call->policy_mode : "enforce");
        if (call->policy_rule_id[0])
            cJSON_AddStringToObject(r, "policy_rule_id", call->policy_rule_id);
        if (call->policy_reason[0])
            cJSON_AddStringToObject(r, "policy_reason", call->policy_reason);
        if (call->policy_error[0] && !cJSON_GetObjectItem(r, "error"))
            cJSON_AddStringToObject(r, "error", call->policy_error);
        if (call->redacted)
            cJSON_AddBoolToObject(r, "request_redacted", 1);
    }
    if (!error)
        xv_conn_policy_response(c, call);
    if (call->resp_policy_outcome) {
        cJSON_AddStringToObject(r, "policy_response_outcome", call->resp_policy_outcome);
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
    if (call->upstream_trace_id[0])
        cJSON_AddStringToObject(r, "upstream_trace_id", call->upstream_trace_id);
    if (!call->stamped && !call->upstream_trace_id[0] && call->response_started &&
        !cfg->disabled_stamp)
        cJSON_AddBoolToObject(r, "trace_header_missing", 1);
    cJSON_AddNumberToObject(r, "pid", (double)getpid());
    if (cfg->process)
        cJSON_AddStringToObject(r, "process", cfg->process);
    xv_conn_stat_add(XV_STAT_RECORDS);
    xv_exp_push(r); /* takes ownership */
    learn_and_steps(c, call, error);
}
