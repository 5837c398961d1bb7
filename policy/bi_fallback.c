/*
 * bi_fallback.c — an empty builtin family list, compiled only while
 * policy/builtins_table.c (owned by the builtins helper) does not exist,
 * so the evaluator links and runs with its core builtins alone.
 * Thread safety: constant data.
 */
#include "xv_builtins.h"

#include <stddef.h>

const struct xv_builtin_def *const xv_policy_builtin_families[] = {NULL};
