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
    if (cfg->agent_id)
        cJSON_AddStringToObject(r, "agent_id", cfg->agent_id);
    if (cfg->org_id)
        cJSON_AddStringToObject(r, "org_id", cfg->org_id);
    const char *host = c->peer.host[0] ? c->peer.host : call->host[0] ? call->host : c->peer.addr;
    cJSON_AddStringToObject(r, "provider", xv_conn_provider(host));
    cJSON_AddStringToObject(r, "server_address", host);
    if (c->peer.port)
        cJSON_AddNumberToObject(r, "server_port", c->peer.port);
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
    if (call->synthetic)
        cJSON_AddBoolToObject(r, "synthetic_response", 1);
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
}
