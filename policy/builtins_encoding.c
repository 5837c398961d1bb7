/* builtins_encoding.c — placeholder until written. */
#include "builtins_int.h"
const struct xv_builtin_def xv_policy_bi_encoding[] = {{NULL, 0, NULL, 0}};
