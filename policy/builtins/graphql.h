/*
 * builtins/graphql.h — what the GraphQL builtin files share: the AST value
 * kinds (gqlparser's ValueKind numbering) and the parsers, which build the
 * AST directly as Rego values in OPA's shape.
 * Invariant: parsers return new values owned by the caller, or NULL with
 * gqlparser's message.
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_BUILTINS_GRAPHQL_H
#define XV_POLICY_BUILTINS_GRAPHQL_H

#include "builtins/helpers.h"

enum {
    GQL_VARIABLE = 0, GQL_INT = 1, GQL_FLOAT = 2, GQL_STRING = 3, GQL_BLOCK = 4,
    GQL_BOOLEAN = 5, GQL_NULL = 6, GQL_ENUM = 7, GQL_LIST = 8, GQL_OBJECT = 9,
};

/* Parse an executable / type-system document. Caller owns the result; NULL
 * with gqlparser's message ("... in GraphQL string at location L:C") in err.
 * keep_pos adds "__pos": [line, col] to fields, for the validator only. */
struct xv_value *xv_bi_gql_parse_query(const char *s, size_t n, bool keep_pos, char *err,
                                              size_t errlen);
struct xv_value *xv_bi_gql_parse_schema(const char *s, size_t n, char *err, size_t errlen);

#endif
