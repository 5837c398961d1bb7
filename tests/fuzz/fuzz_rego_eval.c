/* link: xv_policy xv_common */
/*
 * fuzz_rego_eval — the evaluator on untrusted input documents. In the agent
 * the policy is the user's but the input is built from LLM traffic, so the
 * input is what an attacker controls. A fixed set of policies (the SPEC
 * §5.1 shapes: tool-name deny, write_ tools, model allow-list with sprintf,
 * response refusal detection, redact_fields, the decision object, plus
 * regex/glob/json builtins over message text) is compiled once; every fuzz
 * input is parsed as JSON and decided by each, with a small step budget.
 * An object input is also decided as a call's two stages: the response
 * stage (stage "response", output from the input's "next_output") with
 * the request stage's memo must decide as it does whole (abort if not).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_policy.h"

static const char *const g_src[] = {
    "package xenovia.policy\n"
    "default allow = true\n"
    "deny[msg] { some t in input.tool_names; t == \"drop_database\"; msg := \"no\" }\n"
    "deny[msg] { input.request_type == \"chat_completions\"; some t in input.tool_names;\n"
    "            startswith(t, \"write_\"); msg := sprintf(\"tool %s\", [t]) }\n"
    "allowed := {\"gpt-4o\", \"gpt-4o-mini\"}\n"
    "deny[msg] { not allowed[input.model]; msg := sprintf(\"model %v not allowed\", [input.model]) }\n"
    "deny[msg] { input.stage == \"response\"; contains(input.output.content, \"I cannot\"); msg := \"refusal\" }\n"
    "redact_fields := {\"email\", \"ssn\"}\n",

    "package xenovia\nimport rego.v1\n"
    "default decision := {\"action\": \"allow\"}\n"
    "decision := {\"action\": \"block\", \"rule\": \"no-drop\"} if \"drop_database\" in input.tool_names\n"
    "decision := {\"action\": \"redact\", \"rule\": \"pii\", \"redact_fields\": [\"email\"]} if {\n"
    "  some m in input.messages\n  regex.match(`(?i)[a-z0-9._%+-]+@[a-z0-9.-]+`, m.content)\n}\n",

    "package xenovia.policy\nimport rego.v1\n"
    "deny contains msg if {\n  some c in input.tool_calls\n  args := json.unmarshal(c.arguments)\n"
    "  glob.match(\"rm *\", [], args.command)\n  msg := \"destructive\"\n}\n"
    "deny contains msg if {\n  count(input.messages) > 50\n  msg := sprintf(\"%d messages\", [count(input.messages)])\n}\n"
    "deny contains msg if {\n  some k, v in input.request_flat\n  is_string(v)\n  contains(lower(v), \"ignore previous\")\n"
    "  msg := concat(\": \", [\"injection\", k])\n}\n",
};
#define NPOL (sizeof g_src / sizeof g_src[0])

static struct xv_policy *g_pol[NPOL];

static void init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    for (size_t i = 0; i < NPOL; i++) {
        char err[256];
        struct xv_policy *p = xv_policy_new();
        char name[32];
        snprintf(name, sizeof name, "fuzz-%zu.rego", i);
        if (p && xv_policy_add_module(p, name, g_src[i], strlen(g_src[i]), XV_REGO_VERSION_AUTO,
                                      err, sizeof err) == 0 &&
            xv_policy_compile(p, err, sizeof err) == 0) {
            g_pol[i] = p;
        } else {
            fprintf(stderr, "fuzz_rego_eval: policy %zu does not compile: %s\n", i, err);
            abort(); /* the harness itself is broken */
        }
    }
}

/* The decision as JSON (caller frees), NULL on an error. */
static char *decide_json(const struct xv_policy *p, struct xv_value *in, struct xv_policy_memo *m)
{
    struct xv_policy_opts opts = { .max_steps = 200000, .memo = m };
    struct xv_decision d;
    char err[128];
    char *j = NULL;
    if (xv_policy_decide(p, in, &opts, &d, err, sizeof err) == 0)
        j = xv_policy_decision_json(&d);
    xv_policy_decision_free(&d);
    return j;
}

static void two_stages(struct xv_value *in)
{
    static const char *const anew[] = {"stage", "output", "usage", "status", "session",
                                       "properties"};
    struct xv_value *s = xv_val_copy(in), *stage = xv_val_cstring("response");
    long at = xv_val_object_find_str(in, "next_output", 11);
    if (s && stage) {
        xv_val_object_set_str(s, "stage", stage);
        if (at >= 0)
            xv_val_object_set_str(s, "output", XV_OBJ_VAL(in, at));
    }
    xv_val_decref(stage);
    for (size_t i = 0; s && i < NPOL; i++) {
        struct xv_policy_memo m = { .changed = xv_policy_input_bits(g_pol[i], anew, 6) };
        free(decide_json(g_pol[i], in, &m));
        m.use = 1;
        char *used = decide_json(g_pol[i], s, &m), *whole = decide_json(g_pol[i], s, NULL);
        if (whole && (!used || strcmp(used, whole))) {
            fprintf(stderr, "fuzz_rego_eval: policy %zu: with the memo %s, whole %s\n", i,
                    used ? used : "(error)", whole);
            abort();
        }
        free(used), free(whole);
        xv_policy_memo_clear(&m);
    }
    xv_val_decref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size > 256 * 1024)
        return 0;
    struct xv_value *in = NULL;
    char err[128];
    if (xv_val_json_parse((const char *)data, size, &in, err, sizeof err) != 0)
        return 0;
    struct xv_policy_opts opts = { .max_steps = 200000 };
    for (size_t i = 0; i < NPOL; i++) {
        struct xv_decision d;
        xv_policy_decide(g_pol[i], in, &opts, &d, err, sizeof err);
        char *j = xv_policy_decision_json(&d);
        free(j);
        xv_policy_decision_free(&d);
    }
    if (in->type == XV_T_OBJECT)
        two_stages(in);
    xv_val_decref(in);
    return 0;
}
