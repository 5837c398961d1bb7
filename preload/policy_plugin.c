/*
 * policy_plugin.c — the entry table of libxenovia-policy.so, the private
 * shared object that holds the Rego engine (policy/) and pattern redaction
 * (conn/redact.c) with their libraries (pcre2, gmp, libm, cJSON).
 *
 * libxenovia.so dlopens it only when XENOVIA_POLICY is set (policy_shim.c)
 * and calls in only through this table, its one exported symbol
 * (policy_plugin.map); everything else in it is hidden, so nothing of the
 * engine reaches the host's namespace.
 *
 * Thread safety: the table is constant.
 */
#include "policy_api.h"

#define XV_PAPI_R(type, name, params, args, fail) .name = name,
#define XV_PAPI_V(name, params, args) .name = name,
__attribute__((visibility("default"))) const struct xv_policy_plugin xv_policy_plugin_table = {
    .version = XV_POLICY_API_VERSION,
    .size = sizeof(struct xv_policy_plugin),
    .xv_policy_load = xv_policy_load,
    XV_POLICY_API(XV_PAPI_R, XV_PAPI_V)
};
#undef XV_PAPI_R
#undef XV_PAPI_V
