/*
 * builtins/table.c — the list of builtin families outside the evaluator's
 * core set, one table per policy/builtins_<family>.c file.
 * Invariant: NULL-terminated; each table ends with a NULL-name entry.
 * Thread safety: constant data.
 */
#include "builtins/helpers.h"

#include <stddef.h>

const struct xv_builtin_def *const xv_policy_builtin_families[] = {
    xv_policy_bi_strings,
    xv_policy_bi_regex,
    xv_policy_bi_json,
    xv_policy_bi_objects,
    xv_policy_bi_encoding,
    xv_policy_bi_time,
    xv_policy_bi_schema,
    xv_policy_bi_units,
    xv_policy_bi_misc,
    xv_policy_bi_net,
    xv_policy_bi_graph,
    xv_policy_bi_jwt,
    xv_policy_bi_aws,
    xv_policy_bi_http,
    xv_policy_bi_template,
    xv_policy_bi_x509,
    xv_policy_bi_graphql,
    xv_policy_bi_graphql_validate,
    xv_policy_bi_yaml,
    NULL,
};
