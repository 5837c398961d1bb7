/*
 * xv_policy.h — the policy module's public API: load and compile Rego
 * modules (+ optional data.json), run queries, and make the SPEC §5
 * decision for an input document.
 *
 * Two decision contracts, detected from the packages present:
 *   - `package xenovia.policy`: `deny` (a set of reason strings, or a
 *     boolean) and `redact_fields` (a set of labels);
 *   - `package xenovia`: one object `decision = {"action", "rule",
 *     "redact_fields"}` with actions allow, block, redact, block_response,
 *     redact_response.
 *   When both are present the strongest outcome wins (block > redact > allow).
 *   An action the engine does not know (`escalate`, ...) blocks and keeps
 *   its name (xv_decision.action). When neither standard package defines a
 *   contract rule, a single other package defining `decision` or `deny` is
 *   read instead (xv_policy_contract says which).
 *
 * Ownership: a struct xv_policy is immutable after xv_policy_compile and may
 * be shared by any number of threads evaluating concurrently (decisions and
 * queries allocate only per call). Values follow xv_value.h's rule.
 * Nothing here prints or exits; errors are returned as text.
 */
#ifndef XV_POLICY_H
#define XV_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "value/xv_value.h"

struct xv_policy;

/* Rego syntax selection for xv_policy_add_module. */
enum xv_rego_version {
    XV_REGO_VERSION_AUTO = 0, /* v1; a module that only parses as v0 is taken as v0 */
    XV_REGO_VERSION_V1 = 1,
    XV_REGO_VERSION_V0 = 2,   /* v0, with in/every/contains/if always available */
};

/* Caller owns the result; free with xv_policy_free. NULL on OOM. */
struct xv_policy *xv_policy_new(void);
void xv_policy_free(struct xv_policy *p);

/* Add one module (file name used in messages). On a syntax error returns
 * XV_E_PARSE and writes "file:line:col: rego_parse_error: message" to err. */
int xv_policy_add_module(struct xv_policy *p, const char *file, const char *src, size_t len,
                         int version, char *err, size_t errlen);
/* Base document (borrowed; the policy keeps a frozen copy). Must be an object. */
int xv_policy_set_data(struct xv_policy *p, struct xv_value *data);
/* Compile everything added. XV_E_PARSE with "file:line:col: code: message". */
int xv_policy_compile(struct xv_policy *p, char *err, size_t errlen);

/* Load a .rego file or a directory of .rego files (non-recursive, sorted)
 * plus `data.json` beside them (or data_path when given), and compile.
 * On failure *out is NULL and err holds the file:line:col message. */
int xv_policy_load(const char *path, const char *data_path, int version,
                   struct xv_policy **out, char *err, size_t errlen);

/* Reuse between two decisions on inputs that differ only in the members
 * named by `changed` (xv_policy_input_bits), e.g. a call's request and
 * response stages. The first decision (use 0) keeps, for `deny` and
 * `redact_fields`, what their rules that cannot see those members produced;
 * the second (use 1, valid set by the first) adds that instead of
 * evaluating them again. Same decision either way: the rules left out read
 * none of the changed members, not input whole, and nothing that may
 * differ between two evaluations (`with`, a non-deterministic builtin).
 * The step budget counts only what is evaluated. Zero it before the first
 * decision; release with xv_policy_memo_clear. Not shared between threads
 * while a decision uses it. */
struct xv_policy_memo {
    uint64_t changed;           /* xv_policy_input_bits of the changed members */
    int use;                    /* 0 fill, 1 use */
    int valid;                  /* set by a successful fill */
    struct xv_value *kept[2];   /* owned: deny's, redact_fields' kept elements */
    /* set by the fill; a use by another policy or with other `changed`
     * bits evaluates everything instead */
    const struct xv_policy *filled_by;
    uint64_t filled_changed;
};
void xv_policy_memo_clear(struct xv_policy_memo *m);

/* Evaluation options. */
struct xv_policy_opts {
    int strict;          /* raise builtin errors (OPA strict mode) */
    uint64_t max_steps;  /* step budget; 0 = default (10 million) */
    uint64_t timeout_ms; /* wall-clock budget per evaluation; 0 = none
                          * (the preload passes XENOVIA_POLICY_TIMEOUT_MS) */
    struct xv_policy_memo *memo; /* xv_policy_decide only; NULL: none */
};

/* Run a query (Rego body, e.g. "data.x.allow = a"). *rows receives an
 * array of objects (variable -> value); [] when undefined. input may be
 * NULL (undefined). On evaluation errors returns XV_E_STATE and writes
 * "file:row: code: message"; compile errors of the query give XV_E_PARSE.
 * Not thread-safe with other calls on p (the query is compiled into p);
 * use xv_policy_decide for concurrent evaluation. */
int xv_policy_query(struct xv_policy *p, const char *query, struct xv_value *input,
                    const struct xv_policy_opts *opts, struct xv_value **rows, char *err,
                    size_t errlen);

/* Run every rule whose name starts with "test_" (as `opa test` does):
 * a test passes when its value is defined and not false. cb is called once
 * per test in data-path order with the full name (data.pkg.test_x), the
 * verdict and an error text or NULL. Returns the number of failures. */
int xv_policy_test(struct xv_policy *p, const struct xv_policy_opts *opts,
                   void (*cb)(void *ud, const char *name, int passed, const char *err),
                   void *ud);

/* Parse a Rego term holding no variables (e.g. `{"x": {1, 2}, "y": set()}`),
 * as OPA's input_term. Caller owns *out. XV_E_PARSE with a message in err. */
int xv_policy_parse_term(const char *src, size_t len, struct xv_value **out, char *err,
                         size_t errlen);

/* ---- decisions (SPEC §5) ---- */
enum xv_outcome {
    XV_OUTCOME_ALLOW = 0,
    XV_OUTCOME_REDACT = 1,
    XV_OUTCOME_REDACT_RESPONSE = 2,
    XV_OUTCOME_BLOCK = 3,
    XV_OUTCOME_BLOCK_RESPONSE = 4,
};

/* Longest action name kept for an action the engine does not know. */
#define XV_ACTION_MAX 47

struct xv_decision {
    enum xv_outcome outcome; /* strongest action */
    char *action;            /* owned; NULL, or the decision object's own action name when
                                the engine does not know it ("escalate", ...): outcome is then
                                BLOCK (BLOCK_RESPONSE at the response stage) and the caller
                                records this name. Printable ASCII, no quotes, <= XV_ACTION_MAX */
    char *rule_id;           /* owned; rule that decided (decision `rule`; a deny rule's
                                METADATA id/title, else file:line), or NULL */
    char *reason;            /* owned; first deny reason, or NULL */
    char **redact_fields;    /* owned array of owned labels */
    size_t nredact;          /* count */
};

/* "allow", "block", "redact", "block_response", "redact_response". */
const char *xv_policy_outcome_name(enum xv_outcome o);

/* Decide for input (borrowed). Thread-safe. Returns 0, or XV_E_STATE with
 * the evaluation error in err (the caller applies its fail mode). The
 * decision is filled (ALLOW) even on error so it can be freed. */
int xv_policy_decide(const struct xv_policy *p, struct xv_value *input,
                     const struct xv_policy_opts *opts, struct xv_decision *out, char *err,
                     size_t errlen);
void xv_policy_decision_free(struct xv_decision *d);

/* What a compiled policy decides with (SPEC §5 contracts). Returns a mask
 * of XV_POLICY_HAS_*; 0 means no contract rule exists and every call is
 * allowed. *pkg (may be NULL) gets the package the rules were read from
 * when it is not xenovia.policy / xenovia (a single other package defining
 * `decision` or `deny`), else NULL; *candidates (may be NULL) the number of
 * other packages defining them when no standard rule exists (several: none
 * is read). */
enum { XV_POLICY_HAS_DENY = 1, XV_POLICY_HAS_REDACT = 2, XV_POLICY_HAS_DECISION = 4 };
int xv_policy_contract(const struct xv_policy *p, const char **pkg, int *candidates);

/* Can the compiled policy read input.<key> (a top-level key)? 1 when some
 * rule reads input.<key>, reads input whole or under a computed key, or
 * the policy is not compiled; 0 only when no rule can see that key, so a
 * caller may leave it out of the input document without changing any
 * decision. */
int xv_policy_reads_input(const struct xv_policy *p, const char *key);

/* The dependency bits of input.<keys[i]> for struct xv_policy_memo:
 * all of them (~0) when the policy reads input whole or is not compiled;
 * a key no rule reads adds nothing. */
uint64_t xv_policy_input_bits(const struct xv_policy *p, const char *const *keys, int n);

/* 1 when some rule or function of the policy calls a non-deterministic
 * builtin (time.now_ns, rand.intn, uuid.rfc4122, http.send): two decisions
 * on the same input may differ. 1 too for NULL or an uncompiled policy. */
int xv_policy_nondeterministic(const struct xv_policy *p);

/* The decision as JSON {"outcome","action"?,"rule_id","reason","redact_fields"}.
 * Caller frees with free(). */
char *xv_policy_decision_json(const struct xv_decision *d);

#endif
