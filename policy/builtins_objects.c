/* builtins_objects.c — placeholder until written. */
#include "builtins_int.h"
const struct xv_builtin_def xv_policy_bi_objects[] = {{NULL, 0, NULL, 0}};
