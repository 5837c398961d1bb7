/* link: xv_policy xv_common */
/*
 * fuzz_rego — Rego source through the parser, compiler and evaluator. The
 * input is split at the first NUL-free line "----": the part before is a
 * module, the part after (if any) is a JSON input document. The module is
 * parsed in auto (v1, then v0) mode, compiled, and every rule is evaluated
 * through a `data = x` query and the SPEC §5 decision with a small step
 * budget, so loops end quickly. Nothing may crash, leak or hang.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xv_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    const char *src = (const char *)data;
    size_t mlen = size;
    const char *sep = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(src + i, "----", 4)) {
            sep = src + i;
            break;
        }
    struct xv_value *input = NULL;
    if (sep) {
        mlen = (size_t)(sep - src);
        char err[64];
        xv_val_json_parse(sep + 4, size - mlen - 4, &input, err, sizeof err);
    }
    struct xv_policy *p = xv_policy_new();
    char err[512];
    if (p && xv_policy_add_module(p, "fuzz.rego", src, mlen, XV_REGO_VERSION_AUTO, err,
                                  sizeof err) == 0 &&
        xv_policy_compile(p, err, sizeof err) == 0) {
        struct xv_policy_opts o = {0, 20000, 0, NULL};
        struct xv_value *rows = NULL;
        xv_policy_query(p, "data = x", input, &o, &rows, err, sizeof err);
        xv_val_decref(rows);
        o.strict = 1;
        struct xv_decision d;
        xv_policy_decide(p, input, &o, &d, err, sizeof err);
        xv_policy_decision_free(&d);
    }
    xv_policy_free(p);
    xv_val_decref(input);
    return 0;
}
