/*
 * value/yaml.h — the project's one YAML reader (value/yaml.c): YAML text to
 * a Rego value, as OPA's go-yaml v2 reads it.
 * Invariant: bounded depth; never reads past n.
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_VALUE_YAML_H
#define XV_POLICY_VALUE_YAML_H

#include <stddef.h>

#include "value/xv_value.h"

/* Parse one YAML document s[0..n). Caller owns the result; NULL with
 * go-yaml's message ("yaml: line N: ...") in err (errlen bytes). */
struct xv_value *xv_val_yaml_parse(const char *s, size_t n, char *err, size_t errlen);

/* Nesting bound of the reader, and of what the marshaller writes. */
#define XV_VAL_YAML_MAX_DEPTH 100
/* A plain scalar resolved as go-yaml v2 does (null, booleans in any common
 * spelling, integers, floats, else a string). Caller owns the result. */
struct xv_value *xv_val_yaml_resolve_plain(const char *s, size_t n);

#endif
