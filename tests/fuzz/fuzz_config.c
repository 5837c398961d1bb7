/* link: xv_conn xv_route xv_exporter xv_session xv_http xv_common */
/*
 * fuzz_config.c — libFuzzer target for the configuration strings the agent
 * reads from an environment it does not control (a CI job's, a container
 * image's): every XENOVIA_* variable through preload/config.c (compiled in
 * here, it is part of the shared object, not of a static library), the
 * route table (XENOVIA_ROUTE/_PROXY_ID/_RUNTIME_URL → route/ parse and
 * match), the host list matcher (XENOVIA_HOSTS), the provider table and
 * the OTEL_* variables (endpoint URL, headers and resource-attribute
 * pairs, protocol, timeout, compression).
 *
 * Input: values separated by '\n', assigned in order to the variables of
 * g_vars (an empty value unsets it); the last value is also used as a
 * host name ("host" or "host:port") to match against the host list and
 * the routes.
 * Invariants checked (abort on violation): loading never crashes or leaks
 * (ASan), numbers land within their documented ranges, a parsed property
 * set respects its limits, the route table has at most XV_ROUTE_MAX rules.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../preload/config.c"

#include "otlp_int.h"
#include "xv_conn.h"
#include "xv_conn_int.h"
#include "xv_route.h"

static const char *const g_vars[] = {
    "XENOVIA_HOSTS", "XENOVIA_PROPERTIES", "XENOVIA_ROUTE", "XENOVIA_PROXY_ID",
    "XENOVIA_RUNTIME_URL", "XENOVIA_SESSION_ID", "XENOVIA_SESSION_PATH", "XENOVIA_FLOW_ID",
    "XENOVIA_CAPTURE_MAX_BYTES", "XENOVIA_BODY_MAX_BYTES", "XENOVIA_INFLATE_MAX_BYTES",
    "XENOVIA_INFLATE_MAX_RATIO", "XENOVIA_LOG_LEVEL", "XENOVIA_CAPTURE_CONTENT",
    "XENOVIA_POLICY_MODE", "XENOVIA_STREAM_POLICY", "XENOVIA_SESSION_MAX",
    "XENOVIA_PARENT_TRACE_ID", "XENOVIA_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_SERVICE_NAME",
    NULL,
};

static void config_free(struct xv_config *c)
{
    free((void *)c->trace_file);
    free((void *)c->hosts);
    free((void *)c->agent_id);
    free((void *)c->org_id);
    free((void *)c->session_id);
    free((void *)c->session_path);
    free((void *)c->flow_id);
    free((void *)c->parent_trace_id);
    free((void *)c->policy_path);
    if (c->props) {
        xv_session_props_free(c->props);
        free(c->props);
    }
    for (size_t i = 0; c->inject_lines && c->inject_lines[i]; i++)
        free((void *)c->inject_lines[i]);
    free((void *)c->inject_lines);
}

static int count_pair(void *ud, const char *k, const char *v)
{
    (void)v;
    if (!*k)
        abort(); /* documented: an empty key is never passed */
    (*(size_t *)ud)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        xv_log_set_level(-1); /* lines are rate-limited anyway; keep the output readable */
        quiet = 1;
    }
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *host = text;
    char *s = text;
    for (int i = 0; g_vars[i]; i++) {
        char *nl = s ? strchr(s, '\n') : NULL;
        if (nl)
            *nl = '\0';
        if (s && *s) {
            setenv(g_vars[i], s, 1);
            host = s;
        } else {
            unsetenv(g_vars[i]);
        }
        s = nl ? nl + 1 : NULL;
    }
    struct xv_config cfg;
    xv_config_load(&cfg);
    xv_log_set_level(-1);
    if (cfg.capture_max > (1u << 30) || cfg.body_max < 4096 || cfg.body_max > (1u << 30) ||
        cfg.inflate_ratio > 100000 || cfg.session_max < 16 || cfg.policy_timeout_ms < 1)
        abort();
    if (cfg.props && cfg.props->n > 20)
        abort();
    const struct xv_route_config *rc = xv_route_config();
    if (rc && (rc->n < 0 || rc->n > XV_ROUTE_MAX))
        abort();
    /* The last value as a host[:port] against the lists. */
    char h[300];
    snprintf(h, sizeof h, "%s", host);
    int port = 0;
    char *colon = strrchr(h, ':');
    if (colon) {
        port = atoi(colon + 1);
        *colon = '\0';
    }
    if (cfg.hosts)
        (void)xv_conn_host_allowed(cfg.hosts, h, port);
    (void)xv_conn_provider(h);
    if (rc && rc->n)
        (void)xv_route_match(rc, h, port);
    size_t npairs = 0;
    xv_exp_otlp_parse_pairs(host, count_pair, &npairs);
    struct xv_exp_otlp_cfg *oc = xv_exp_otlp_cfg_from_env();
    if (oc)
        xv_exp_otlp_cfg_unref(oc);
    config_free(&cfg);
    /* Back to the defaults for the next input. */
    xv_http_set_inflate_limits(XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO);
    static const struct xv_route_config none;
    xv_route_configure(&none);
    free(text);
    return 0;
}
