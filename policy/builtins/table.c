/*
 * builtins/table.c — the list of builtin families outside the evaluator's
 * core set, one table per policy/builtins_<family>.c file.
 * Invariant: NULL-terminated; each table ends with a NULL-name entry.
 * Thread safety: constant data.
 */
#include "builtins/helpers.h"

#include <stddef.h>

const struct xv_builtin_def *const xv_bi_families[] = {
    xv_bi_strings,
    xv_bi_numbers,
    xv_bi_regex,
    xv_bi_glob,
    xv_bi_json,
    xv_bi_objects,
    xv_bi_types,
    xv_bi_sets,
    xv_bi_array,
    xv_bi_encoding,
    xv_bi_crypto,
    xv_bi_uuid,
    xv_bi_time,
    xv_bi_schema,
    xv_bi_units,
    xv_bi_deprecated,
    xv_bi_rand,
    xv_bi_semver,
    xv_bi_bits,
    xv_bi_net,
    xv_bi_graph,
    xv_bi_jwt,
    xv_bi_aws,
    xv_bi_http,
    xv_bi_template,
    xv_bi_x509,
    xv_bi_graphql,
    xv_bi_graphql_validate,
    xv_bi_yaml,
    NULL,
};
