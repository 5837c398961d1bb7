/*
 * test_policy_memo.c — unit_policy_memo: the decision memo (struct
 * xv_policy_memo) never changes a decision. For each policy, a request
 * input R and a response input S (R with the members the response stage
 * sets anew: stage, output, usage, status, session, properties), the
 * decision on S with the memo R filled must equal the decision on S
 * evaluated whole, and filling must not change R's decision. The policies
 * reach the changed members every way the dependency analysis must follow
 * (helper rules, functions, else chains, other packages, `input` whole or
 * under a computed key, data under a computed key, `with`, a
 * non-deterministic builtin).
 *
 * Then, that reuse happens at all: the rules that cannot see a changed
 * member are kept, and given a response input that breaks the memo's
 * contract (a stable member changed), the kept result shows through while
 * the rules reading the changed members are evaluated again.
 *
 * Thread safety: single-threaded cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_policy.h"
#include "xv_value.h"

static const char *const g_anew[] = { "stage", "output", "usage", "status", "session",
                                      "properties" };

static struct xv_value *json(const char *s)
{
    struct xv_value *v = NULL;
    char err[128];
    assert_int_equal(xv_val_json_parse(s, strlen(s), &v, err, sizeof err), 0);
    return v;
}

static struct xv_policy *compile2(const char *src, const char *other)
{
    struct xv_policy *p = xv_policy_new();
    char err[512] = "";
    assert_non_null(p);
    if (xv_policy_add_module(p, "p.rego", src, strlen(src), XV_REGO_VERSION_V1, err, sizeof err) ||
        (other && xv_policy_add_module(p, "o.rego", other, strlen(other), XV_REGO_VERSION_V1, err,
                                       sizeof err)) ||
        xv_policy_compile(p, err, sizeof err))
        fail_msg("compile: %s", err);
    return p;
}

/* The decision as JSON, or "error: ..." (caller frees). */
static char *decide(const struct xv_policy *p, struct xv_value *in, struct xv_policy_memo *m)
{
    struct xv_policy_opts o = {0, 0, 0, m};
    struct xv_decision d;
    char err[256] = "";
    int rc = xv_policy_decide(p, in, &o, &d, err, sizeof err);
    char *s;
    if (rc) {
        s = malloc(strlen(err) + 8);
        assert_non_null(s);
        sprintf(s, "error: %s", err);
    } else {
        s = xv_policy_decision_json(&d);
        assert_non_null(s);
    }
    xv_policy_decision_free(&d);
    return s;
}

static const char *g_req =
    "{\"stage\":\"request\",\"model\":\"gpt-4o\",\"tool_names\":[\"rm_rf\",\"ok\"],"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"session\":{\"id\":\"s1\"},"
    "\"properties\":{\"team\":\"a\"}}";

/* obj[key] = v, v's reference handed over. */
static void put(struct xv_value *obj, const char *key, struct xv_value *v)
{
    assert_non_null(v);
    assert_int_equal(xv_val_object_set_str(obj, key, v), 0);
    xv_val_decref(v);
}

/* The two stages' inputs: R, and S (R with the changed members anew). */
static void stage_inputs(const char *output, struct xv_value **r, struct xv_value **s)
{
    *r = json(g_req);
    *s = xv_val_copy(*r);
    assert_non_null(*s);
    char buf[512];
    snprintf(buf, sizeof buf, "{\"content\":\"%s\",\"tool_calls\":[]}", output);
    put(*s, "stage", xv_val_cstring("response"));
    put(*s, "output", json(buf));
    put(*s, "usage", json("{\"total_tokens\":7}"));
    put(*s, "status", xv_val_int(200));
    put(*s, "properties", json("{\"team\":\"b\"}"));
}

/* Checks both stages with and without the memo; returns the memo's
 * number of kept deny elements (-1: the memo was not valid). */
static int check_same(const char *src, const char *other, const char *output)
{
    struct xv_policy *p = compile2(src, other);
    struct xv_value *r, *s;
    stage_inputs(output, &r, &s);
    struct xv_policy_memo m;
    memset(&m, 0, sizeof m);
    m.changed = xv_policy_input_bits(p, g_anew, 6);
    char *r_plain = decide(p, r, NULL), *r_fill = decide(p, r, &m);
    assert_string_equal(r_fill, r_plain);
    int kept = m.valid && m.kept[0] ? (int)XV_ARR_LEN(m.kept[0]) : -1;
    m.use = 1;
    char *s_plain = decide(p, s, NULL), *s_used = decide(p, s, &m);
    if (strcmp(s_used, s_plain))
        fail_msg("policy:\n%s\noutput %s: with the memo %s, whole %s", src, output, s_used,
                 s_plain);
    free(r_plain), free(r_fill), free(s_plain), free(s_used);
    xv_policy_memo_clear(&m);
    assert_null(m.kept[0]);
    assert_false(m.valid);
    xv_val_decref(r), xv_val_decref(s);
    xv_policy_free(p);
    return kept;
}

#define HEAD "package xenovia.policy\n"
/* a stable rule, so every policy below has something to keep */
#define STABLE "deny contains \"tool\" if { some t in input.tool_names; t == \"rm_rf\" }\n"

static void test_reaches_changed_members(void **state)
{
    (void)state;
    static const struct { const char *src, *other; int kept; } cases[] = {
        /* a helper rule reading the output */
        { HEAD STABLE "bad if contains(input.output.content, \"bad\")\n"
                 "deny contains \"helper\" if bad\n", NULL, 1 },
        /* a function reading the stage, with an else chain */
        { HEAD STABLE "f(x) := y if { input.stage == \"response\"; y := x } else := \"no\"\n"
                 "deny contains m if { m := f(\"fn\"); m != \"no\" }\n", NULL, 1 },
        /* a function argument from the output */
        { HEAD STABLE "g(x) := upper(x)\n"
                 "deny contains m if { m := g(input.output.content); m == \"BAD\" }\n", NULL, 1 },
        /* another package's rule */
        { HEAD STABLE "deny contains \"other\" if data.lib.flag\n",
          "package lib\nflag if input.usage.total_tokens > 5\n", 1 },
        /* input whole, and under a computed key */
        { HEAD STABLE "deny contains \"whole\" if { x := input; x.stage == \"response\" }\n", NULL,
          0 },
        { HEAD STABLE "deny contains \"key\" if { k := concat(\"\", [\"sta\", \"ge\"]);\n"
                 "input[k] == \"response\" }\n", NULL, 0 },
        /* data under a computed key reaching a rule that reads the output */
        { HEAD STABLE "h if input.output.content == \"bad\"\n"
                 "deny contains \"dyn\" if { k := \"h\"; data.xenovia.policy[k] }\n", NULL, 1 },
        { HEAD STABLE "deny contains \"pkg\" if { data.lib[_] == 200 }\n",
          "package lib\nst := input.status\n", 1 },
        /* `with`: not followed, never kept */
        { HEAD STABLE "s := input.stage\n"
                 "deny contains \"with\" if { x := s with input.model as \"m\"; x == \"response\" }\n",
          NULL, 1 },
        /* a non-deterministic builtin: never kept */
        { HEAD STABLE "deny contains \"now\" if { time.now_ns() > 0; input.model == \"gpt-4o\" }\n",
          NULL, 1 },
        /* comprehension and every over the output */
        { HEAD STABLE "deny contains \"comp\" if { count([c | some c in input.output.tool_calls]) == 0;\n"
                 "input.stage == \"response\" }\n"
                 "deny contains \"every\" if { every c in [input.output.content] { c == \"bad\" } }\n",
          NULL, 1 },
        /* properties and session are set anew too */
        { HEAD STABLE "deny contains t if { t := input.properties.team; t == \"b\" }\n"
                 "deny contains \"sess\" if input.session.id == \"s1\"\n", NULL, 1 },
        /* redact_fields: stable and output-dependent members */
        { HEAD "redact_fields contains \"email\" if input.model == \"gpt-4o\"\n"
               "redact_fields contains \"phone\" if contains(input.output.content, \"bad\")\n",
          NULL, -1 },
        /* a complete redact_fields beside a partial deny: deny still kept */
        { HEAD STABLE "redact_fields := {\"email\"} if input.stage == \"response\"\n", NULL, 1 },
        /* only a boolean deny, and a decision object reading the output */
        { HEAD "deny if input.output.content == \"bad\"\n", NULL, -1 },
        { "package xenovia\ndecision := {\"action\": \"block\", \"reason\": input.output.content}"
          " if input.stage == \"response\"\n", NULL, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int bad = 0; bad < 2; bad++) {
            int kept = check_same(cases[i].src, cases[i].other, bad ? "bad" : "fine");
            if (cases[i].kept >= 0 && kept != cases[i].kept)
                fail_msg("case %zu: %d kept deny elements, want %d", i, kept, cases[i].kept);
        }
    }
}

/* A policy that reads input whole: every bit counts as changed, nothing
 * is kept, the decisions still agree. */
static void test_input_whole(void **state)
{
    (void)state;
    struct xv_policy *p = compile2(HEAD STABLE "deny contains \"w\" if count(input) > 100\n", NULL);
    assert_int_equal(xv_policy_input_bits(p, g_anew, 6), ~(uint64_t)0);
    xv_policy_free(p);
    assert_int_equal(check_same(HEAD STABLE "deny contains \"w\" if count(input) > 100\n", NULL,
                                "x"),
                     0);
}

/* Reuse is real: R's stable result shows through for an S that (against
 * the memo's contract) changed a stable member, while the rule reading
 * the output is evaluated on S. */
static void test_reuse_happens(void **state)
{
    (void)state;
    struct xv_policy *p = compile2(HEAD "deny contains \"model\" if input.model == \"gpt-4o\"\n"
                                        "deny contains \"out\" if input.output.content == \"bad\"\n"
                                        "redact_fields contains \"email\" if input.model == \"gpt-4o\"\n",
                                   NULL);
    struct xv_value *r, *s;
    stage_inputs("bad", &r, &s);
    put(s, "model", xv_val_cstring("other"));
    struct xv_policy_memo m;
    memset(&m, 0, sizeof m);
    m.changed = xv_policy_input_bits(p, g_anew, 6);
    char *d = decide(p, r, &m);
    free(d);
    assert_true(m.valid);
    assert_int_equal(XV_ARR_LEN(m.kept[0]), 1);
    assert_int_equal(XV_ARR_LEN(m.kept[1]), 1);
    m.use = 1;
    struct xv_value *out = NULL;
    struct xv_policy_opts o = {0, 0, 0, &m};
    struct xv_decision dec;
    char err[256];
    assert_int_equal(xv_policy_decide(p, s, &o, &dec, err, sizeof err), 0);
    /* both deny elements: "model" kept from R, "out" from S's output */
    assert_int_equal(dec.outcome, XV_OUTCOME_BLOCK_RESPONSE);
    assert_string_equal(dec.reason, "model");
    assert_int_equal(dec.nredact, 1);
    assert_string_equal(dec.redact_fields[0], "email");
    xv_policy_decision_free(&dec);
    /* whole, S has no "model" element and no redaction */
    o.memo = NULL;
    assert_int_equal(xv_policy_decide(p, s, &o, &dec, err, sizeof err), 0);
    assert_string_equal(dec.reason, "out");
    assert_int_equal(dec.nredact, 0);
    xv_policy_decision_free(&dec);
    /* a memo used by another policy, or with other bits, is not used */
    o.memo = &m;
    struct xv_policy *other = compile2(HEAD "deny contains \"out\" if input.output.content == \"bad\"\n",
                                       NULL);
    assert_int_equal(xv_policy_decide(other, s, &o, &dec, err, sizeof err), 0);
    assert_string_equal(dec.reason, "out");
    xv_policy_decision_free(&dec);
    xv_policy_free(other);
    m.changed = 0; /* narrower than the fill's: would skip the output rule too */
    assert_int_equal(xv_policy_decide(p, s, &o, &dec, err, sizeof err), 0);
    assert_string_equal(dec.reason, "out");
    xv_policy_decision_free(&dec);
    m.changed = xv_policy_input_bits(p, g_anew, 6);
    /* a memo not filled is not used */
    struct xv_policy_memo none;
    memset(&none, 0, sizeof none);
    none.use = 1;
    none.changed = m.changed;
    o.memo = &none;
    assert_int_equal(xv_policy_decide(p, s, &o, &dec, err, sizeof err), 0);
    assert_string_equal(dec.reason, "out");
    xv_policy_decision_free(&dec);
    xv_val_decref(out);
    xv_policy_memo_clear(&m);
    xv_val_decref(r), xv_val_decref(s);
    xv_policy_free(p);
}

/* A failed fill leaves no memo to use. */
static void test_failed_fill(void **state)
{
    (void)state;
    struct xv_policy *p = compile2(HEAD STABLE "x := 1 if input.model\nx := 2 if input.model\n"
                                        "deny contains \"c\" if x > 0\n",
                                   NULL);
    struct xv_value *r, *s;
    stage_inputs("fine", &r, &s);
    struct xv_policy_memo m;
    memset(&m, 0, sizeof m);
    m.changed = xv_policy_input_bits(p, g_anew, 6);
    char *d = decide(p, r, &m);
    assert_true(!strncmp(d, "error: ", 7));
    free(d);
    assert_false(m.valid);
    xv_policy_memo_clear(&m);
    xv_val_decref(r), xv_val_decref(s);
    xv_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reaches_changed_members),
        cmocka_unit_test(test_input_whole),
        cmocka_unit_test(test_reuse_happens),
        cmocka_unit_test(test_failed_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
