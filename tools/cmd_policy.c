/*
 * cmd_policy.c — `xenovia policy check|eval|test`: the CLI front end of the
 * policy module (policy/xv_policy.h).
 *
 *   check PATH            exit 0, or 1 with `file:line:col: code: message`;
 *                         a warning on stderr (exit 0) when no contract rule
 *                         exists (every call would be allowed), a note when
 *                         the rules are read from another package
 *   eval --policy PATH [--data FILE] [--input FILE] [--query Q] [--strict]
 *                         with --query: rows as one JSON array (undefined is
 *                         []), evaluation errors `file:row: code: message` on
 *                         stderr with exit 2; without: the decision for the
 *                         input's stage as {"outcome","rule_id","reason",
 *                         "redact_fields"}
 *   test PATH             run test_* rules like `opa test`; exit 1 on failure
 *
 * Invariant: usage errors exit 2 with one line naming the fix; a policy that
 * does not load exits 1. Thread safety: single-threaded, like the whole CLI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_common.h"
#include "xv_policy.h"
#include "xv_tools.h"

static int policy_check(int argc, char **argv)
{
    if (argc != 3)
        return xv_tool_usage_error("policy", "usage: xenovia policy check PATH");
    struct xv_policy *p = NULL;
    char err[1024];
    if (xv_policy_load(argv[2], NULL, XV_REGO_VERSION_AUTO, &p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Compiles, but does it decide anything? A policy without a contract
     * rule allows every call: say so rather than a silent OK. */
    const char *pkg = NULL;
    int cand = 0;
    int bits = xv_policy_contract(p, &pkg, &cand);
    if (!bits && cand > 1)
        fprintf(stderr, "xenovia: warning: %s: %d packages define `decision` or `deny`; none is "
                        "read (put the contract in `package xenovia` (decision) or `package "
                        "xenovia.policy` (deny, redact_fields)): every call will be allowed\n",
                argv[2], cand);
    else if (!bits)
        fprintf(stderr, "xenovia: warning: %s: no contract rule (`decision` in `package xenovia`, "
                        "or `deny`/`redact_fields` in `package xenovia.policy`): every call will "
                        "be allowed\n", argv[2]);
    else if (pkg)
        fprintf(stderr, "xenovia: note: %s: contract rules read from `package %s` (not "
                        "xenovia / xenovia.policy)\n", argv[2], pkg);
    xv_policy_free(p);
    return 0;
}

static int policy_eval(int argc, char **argv)
{
    const char *policy = NULL, *data = NULL, *input = NULL, *query = NULL;
    int strict = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--policy") ? &policy : !strcmp(a, "--data") ? &data
                         : !strcmp(a, "--input") ? &input : !strcmp(a, "--query") ? &query : NULL;
        if (dst) {
            if (i + 1 >= argc)
                return xv_tool_usage_error("policy", "%s needs a value", a);
            *dst = argv[++i];
        } else if (!strcmp(a, "--strict")) {
            strict = 1;
        } else {
            return xv_tool_usage_error("policy", "unknown eval option %s (use --policy PATH "
                                                 "[--data FILE] [--input FILE] [--query Q] [--strict])", a);
        }
    }
    if (!policy)
        return xv_tool_usage_error("policy", "eval needs --policy PATH (a .rego file or a directory)");
    struct xv_policy *p = NULL;
    char err[2048];
    if (xv_policy_load(policy, data, XV_REGO_VERSION_AUTO, &p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct xv_value *in = NULL;
    if (input) {
        size_t len = 0;
        /* "-" is standard input; 256 MiB at most (common/bytes.c) */
        char *txt = xv_file_read(strcmp(input, "-") ? input : "/dev/stdin", (size_t)256 << 20,
                                 &len);
        if (!txt) {
            xv_policy_free(p);
            return xv_tool_usage_error("policy", "cannot read --input %s", input);
        }
        char msg[256];
        int rc = xv_val_json_parse(txt, len, &in, msg, sizeof msg);
        free(txt);
        if (rc) {
            xv_policy_free(p);
            fprintf(stderr, "%s: invalid JSON: %s\n", input, msg);
            return 1;
        }
    }
    struct xv_policy_opts opts = {strict, 0, 0, NULL};
    int status = 0;
    if (query) {
        struct xv_value *rows = NULL;
        int rc = xv_policy_query(p, query, in, &opts, &rows, err, sizeof err);
        if (rc) {
            fprintf(stderr, "%s\n", err);
            status = 2;
        } else {
            char *js = xv_val_json_dump(rows, 0);
            printf("%s\n", js ? js : "[]");
            free(js);
        }
        xv_val_decref(rows);
    } else {
        struct xv_decision d;
        if (xv_policy_decide(p, in, &opts, &d, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            status = 2;
        } else {
            char *js = xv_policy_decision_json(&d);
            printf("%s\n", js ? js : "{}");
            free(js);
        }
        xv_policy_decision_free(&d);
    }
    xv_val_decref(in);
    xv_policy_free(p);
    return status;
}

struct test_tally {
    int passed, failed; /* counts */
};

static void test_cb(void *ud, const char *name, int passed, const char *err)
{
    struct test_tally *t = ud;
    if (passed) {
        t->passed++;
        printf("PASS %s\n", name);
    } else {
        t->failed++;
        printf("FAIL %s%s%s\n", name, err ? ": " : "", err ? err : "");
    }
}

static int policy_test(int argc, char **argv)
{
    if (argc != 3)
        return xv_tool_usage_error("policy", "usage: xenovia policy test PATH");
    struct xv_policy *p = NULL;
    char err[1024];
    if (xv_policy_load(argv[2], NULL, XV_REGO_VERSION_AUTO, &p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct test_tally t = {0, 0};
    xv_policy_test(p, NULL, test_cb, &t);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    xv_policy_free(p);
    return t.failed ? 1 : 0;
}

int xv_tool_policy(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: xenovia policy check PATH\n"
                "       xenovia policy eval --policy PATH [--data FILE] [--input FILE] "
                "[--query Q] [--strict]\n"
                "       xenovia policy test PATH\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "check"))
        return policy_check(argc, argv);
    if (!strcmp(argv[1], "eval"))
        return policy_eval(argc, argv);
    if (!strcmp(argv[1], "test"))
        return policy_test(argc, argv);
    return xv_tool_usage_error("policy", "unknown subcommand %s (check, eval or test)", argv[1]);
}
