/*
 * bench_policy.c — time per SPEC §5 decision and compile time for a policy
 * directory (default: tests/policy/fixtures/bench, a realistic 20-rule
 * request policy, and its ~4 KiB input). Prints CPU time per decision
 * (CLOCK_PROCESS_CPUTIME_ID, so a busy machine skews it less) and the
 * decision itself. Not a ctest: timing assertions would be flaky.
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
    xv_val_decref(in);
    xv_policy_free(p);
    return 0;
}
