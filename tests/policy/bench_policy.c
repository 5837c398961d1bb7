/*
 * bench_policy.c — time per SPEC §5 decision and compile time for a policy
 * directory (default: tests/policy/fixtures/bench, a realistic 20-rule
 * request policy, and its ~4 KiB input). Prints CPU time per decision
 * (CLOCK_PROCESS_CPUTIME_ID, so a busy machine skews it less) and the
 * decision itself; then the same input at the response stage (output,
 * usage and status added) decided whole and with the request stage's memo
 * (struct xv_policy_memo), the two decisions compared. Not a ctest: timing
 * assertions would be flaky.
 *
 * Usage: policy_bench [POLICY_DIR_OR_FILE INPUT_JSON [ITERATIONS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xv_policy.h"

#ifndef XV_BENCH_FIXTURES
#define XV_BENCH_FIXTURES "tests/policy/fixtures/bench"
#endif

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The decision as JSON (caller frees), NULL on an error. */
static char *decide_json(const struct xv_policy *p, struct xv_value *in,
                         struct xv_policy_memo *m)
{
    struct xv_policy_opts o = {0, 0, 0, m};
    struct xv_decision d;
    char err[256];
    if (xv_policy_decide(p, in, &o, &d, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    char *js = xv_policy_decision_json(&d);
    xv_policy_decision_free(&d);
    return js;
}

/* Seconds of CPU for n response-stage decisions on s (memo: used). */
static double time_decisions(const struct xv_policy *p, struct xv_value *s,
                             struct xv_policy_memo *m, int n)
{
    struct xv_policy_opts o = {0, 0, 0, m};
    struct xv_decision d;
    char err[256];
    double t0 = cpu_now();
    for (int i = 0; i < n; i++) {
        xv_policy_decide(p, s, &o, &d, err, sizeof err);
        xv_policy_decision_free(&d);
    }
    return cpu_now() - t0;
}

/* The response stage of the same call: whole, and reusing the request
 * stage's stable rules (what the agent does). 1 if they disagree. */
static int response_stage(const struct xv_policy *p, struct xv_value *in, int n)
{
    static const char *const anew[] = {"stage", "output", "usage", "status", "session",
                                       "properties"};
    static const char out_json[] = "{\"content\":\"It is sunny in Paris.\",\"tool_calls\":[]}";
    static const char usage_json[] =
        "{\"input_tokens\":812,\"output_tokens\":9,\"total_tokens\":821}";
    struct xv_value *s = xv_val_copy(in), *out = NULL, *usage = NULL;
    char err[256];
    if (!s || xv_val_json_parse(out_json, sizeof out_json - 1, &out, err, sizeof err) ||
        xv_val_json_parse(usage_json, sizeof usage_json - 1, &usage, err, sizeof err))
        return 1;
    struct xv_value *stage = xv_val_cstring("response"), *status = xv_val_int(200);
    xv_val_object_set_str(s, "stage", stage);
    xv_val_object_set_str(s, "output", out);
    xv_val_object_set_str(s, "usage", usage);
    xv_val_object_set_str(s, "status", status);
    xv_val_decref(stage), xv_val_decref(out), xv_val_decref(usage), xv_val_decref(status);
    struct xv_policy_memo m = {0};
    m.changed = xv_policy_input_bits(p, anew, 6);
    char *fill = decide_json(p, in, &m);
    m.use = 1;
    char *whole = decide_json(p, s, NULL), *used = decide_json(p, s, &m);
    int bad = !fill || !whole || !used || strcmp(whole, used) != 0;
    printf("response stage: %s\n", whole ? whole : "?");
    if (bad) {
        printf("  MISMATCH with the memo: %s\n", used ? used : "?");
    } else {
        double tw = time_decisions(p, s, NULL, n), tm = time_decisions(p, s, &m, n);
        printf("response: %.2f us per decision whole, %.2f us reusing the request stage's "
               "stable rules (%s; %zu kept)\n",
               tw / n * 1e6, tm / n * 1e6, m.valid ? "memo valid" : "memo NOT valid",
               m.kept[0] ? (size_t)XV_ARR_LEN(m.kept[0]) : 0);
    }
    free(fill), free(whole), free(used);
    xv_policy_memo_clear(&m);
    xv_val_decref(s);
    return bad;
}

int main(int argc, char **argv)
{
    const char *pol = argc > 1 ? argv[1] : XV_BENCH_FIXTURES "/policy.rego";
    const char *inp = argc > 2 ? argv[2] : XV_BENCH_FIXTURES "/input.json";
    int n = argc > 3 ? atoi(argv[3]) : 100000;
    char err[1024];
    struct xv_policy *p = NULL;
    int compiles = 50;
    double t0 = cpu_now();
    for (int i = 0; i < compiles; i++) {
        xv_policy_free(p);
        p = NULL;
        if (xv_policy_load(pol, NULL, XV_REGO_VERSION_AUTO, &p, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    double t1 = cpu_now();
    FILE *f = fopen(inp, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", inp);
        return 1;
    }
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct xv_value *in = NULL;
    if (xv_val_json_parse(buf, len, &in, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", inp, err);
        return 1;
    }
    struct xv_decision d;
    if (xv_policy_decide(p, in, NULL, &d, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *js = xv_policy_decision_json(&d);
    xv_policy_decision_free(&d);
    double t2 = cpu_now();
    for (int i = 0; i < n; i++) {
        xv_policy_decide(p, in, NULL, &d, err, sizeof err);
        xv_policy_decision_free(&d);
    }
    double t3 = cpu_now();
    printf("policy %s, input %s (%zu bytes)\n", pol, inp, len);
    printf("decision: %s\n", js ? js : "?");
    printf("compile: %.1f us per load+compile\n", (t1 - t0) / compiles * 1e6);
    printf("decide:  %.2f us per decision (%d decisions, CPU time)\n", (t3 - t2) / n * 1e6, n);
    free(js);
    int rc = response_stage(p, in, n);
    xv_val_decref(in);
    xv_policy_free(p);
    return rc;
}
