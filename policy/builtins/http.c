/*
 * builtins/http.c — http.send, without the network.
 *
 * The evaluator runs inside a preloaded agent, where a policy that opens
 * connections would re-enter the hooks and stall the host's request path,
 * so http.send never performs I/O here. It checks its request object as OPA
 * does (so policies get OPA's errors for malformed requests) and then fails
 * with a builtin error; tests mock it with `with http.send as ...`.
 *
 * Invariant: no socket is ever opened from policy evaluation.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <string.h>

static const char *const allowed[] = {
    "body", "cache", "caching_mode", "cache_ignored_headers", "enable_redirect",
    "force_cache", "force_cache_duration_seconds", "force_json_decode", "force_yaml_decode",
    "headers", "max_retry_attempts", "method", "raise_error", "raw_body", "timeout",
    "tls_ca_cert", "tls_ca_cert_env_variable", "tls_ca_cert_file", "tls_client_cert",
    "tls_client_cert_env_variable", "tls_client_cert_file", "tls_client_key",
    "tls_client_key_env_variable", "tls_client_key_file", "tls_insecure_skip_verify",
    "tls_server_name", "tls_use_system_certs", "url", NULL,
};

BI_FN(bi_http_send)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    const struct xv_value *o = a[0];
    struct xv_val_buf bad = {0}, miss = {0};
    for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
        const struct xv_value *k = XV_OBJ_KEY(o, i);
        bool ok = false;
        for (int j = 0; XV_IS(k, XV_T_STRING) && allowed[j] && !ok; j++)
            ok = strcmp(XV_STR(k), allowed[j]) == 0;
        if (!ok) {
            xv_val_buf_adds(&bad, bad.len ? ", " : "{");
            xv_bi_rego_text(&bad, k);
        }
    }
    static const char *const required[] = {"method", "url", NULL};
    for (int j = 0; required[j]; j++)
        if (xv_val_object_find_str(o, required[j], strlen(required[j])) < 0) {
            xv_val_buf_adds(&miss, miss.len ? ", \"" : "{\"");
            xv_val_buf_adds(&miss, required[j]);
            xv_val_buf_addc(&miss, '"');
        }
    int rc;
    if (bad.len)
        rc = xv_bi_error_code(ctx, XV_ERR_TYPE, "invalid request parameters(s): %s}", bad.p);
    else if (miss.len)
        rc = xv_bi_error_code(ctx, XV_ERR_TYPE, "missing required request parameters(s): %s}",
                              miss.p);
    else
        rc = xv_bi_error(ctx, "network access is disabled for policies in this build");
    xv_val_buf_free(&bad);
    xv_val_buf_free(&miss);
    return rc;
}

const struct xv_builtin_def xv_bi_http[] = {
    {"http.send", 1, bi_http_send, XV_BIF_NONDET},
    {NULL, 0, NULL, 0},
};
