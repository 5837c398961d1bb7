#!/usr/bin/env python3
"""test_cli.py — drives `xenovia policy check|eval|test` over the fixtures in
tests/policy/fixtures: the SPEC §5.1 example policies (v0 and v1 syntax, the
decision-object contract, a boolean deny), bad policies that must fail
`check` with a precise file:line:col, a conflict that must fail `eval` with
OPA's eval_conflict_error and the file:row, and a loop stopped by the step
budget. Usage: test_cli.py XENOVIA_BINARY. Exit 0 when every check holds.
"""
import json
import os
import subprocess
import sys
import tempfile

XV = sys.argv[1]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
failures = []


def run(*args, stdin=None):
    p = subprocess.run([XV, "policy", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def decide(policy, inp, want, data=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(inp, f)
        path = f.name
    args = ["eval", "--policy", os.path.join(FIX, policy), "--input", path]
    if data:
        args += ["--data", os.path.join(FIX, data)]
    rc, out, err = run(*args)
    os.unlink(path)
    check(rc == 0, f"{policy} {inp}: exit {rc} ({err.strip()})")
    if rc == 0:
        got = json.loads(out)
        for k, v in want.items():
            check(got.get(k) == v, f"{policy} {inp}: {k} = {got.get(k)!r}, want {v!r}")


def first_generation(policy):
    decide(policy, {"stage": "request", "model": "gpt-4o", "tool_names": ["drop_database"]},
           {"outcome": "block", "reason": "drop_database is not allowed"})
    decide(policy, {"stage": "request", "model": "gpt-4o", "request_type": "chat_completions",
                    "tool_names": ["write_file"]},
           {"outcome": "block",
            "reason": "write tool write_file is not allowed on chat completions"})
    decide(policy, {"stage": "request", "model": "gpt-4o", "request_type": "responses",
                    "tool_names": ["write_file"]}, {"outcome": "allow"})
    decide(policy, {"stage": "request", "model": "llama-3", "tool_names": []},
           {"outcome": "block", "reason": "model llama-3 is not allowed"})
    decide(policy, {"stage": "response", "model": "gpt-4o",
                    "output": {"content": "Sorry, I can't help with that."}},
           {"outcome": "block_response", "reason": "model refused"})
    decide(policy, {"stage": "request", "model": "gpt-4o", "properties": {"pii": True}},
           {"outcome": "redact", "redact_fields": ["email", "ssn"]})


first_generation("spec_v0")
first_generation("spec_v1")
decide("decision_v1", {"stage": "request", "tool_names": ["drop_database"]},
       {"outcome": "block", "rule_id": "no-drop"})
decide("decision_v1", {"stage": "request", "tool_names": ["ls"]}, {"outcome": "allow"})
decide("bool_deny.rego", {"model": "forbidden"}, {"outcome": "block"})
decide("bool_deny.rego", {"model": "gpt-4o"}, {"outcome": "allow"})

# --query: rows as one JSON array; sets as arrays in canonical order
rc, out, err = run("eval", "--policy", os.path.join(FIX, "spec_v1"), "--query",
                   "x := data.xenovia.policy.deny; y := data.allowed_models")
rows = json.loads(out) if rc == 0 else None
check(rows == [{"x": [], "y": ["gpt-4o", "gpt-4o-mini"]}], f"query rows: {rc} {out} {err}")
rc, out, err = run("eval", "--policy", os.path.join(FIX, "spec_v1"), "--query",
                   "data.xenovia.policy.nope = x")
check(rc == 0 and out.strip() == "[]", f"undefined query prints []: {rc} {out!r}")

# check: good policies pass, bad ones give file:line:col and exit 1
for good in ("spec_v0", "spec_v1", "decision_v1", "bool_deny.rego"):
    rc, out, err = run("check", os.path.join(FIX, good))
    check(rc == 0, f"check {good}: exit {rc} {err.strip()}")
    check("warning" not in err, f"check {good}: unexpected warning {err.strip()!r}")
# a policy that decides nothing gets a warning (exit 0); another package is read, and named
rc, out, err = run("check", os.path.join(FIX, "no_contract.rego"))
check(rc == 0 and "warning" in err and "no contract rule" in err, f"check no_contract: {rc} {err!r}")
rc, out, err = run("check", os.path.join(FIX, "other_pkg"))
check(rc == 0 and "warning" not in err and "acme.llm" in err, f"check other_pkg: {rc} {err!r}")
# escalate (an action the engine does not know) blocks under its own name
decide("other_pkg", {"stage": "request", "tool_names": ["wire_money"]},
       {"outcome": "block", "action": "escalate", "rule_id": "needs-review"})
decide("other_pkg", {"stage": "request", "tool_names": ["ls"]}, {"outcome": "allow"})
bad = {
    "syntax.rego": ":5:1: rego_parse_error",
    "unsafe.rego": ":4:2: rego_unsafe_var_error: var x is unsafe",
    "recursion.rego": ": rego_recursion_error: rule data.bad.",
    "unknown.rego": ":4:2: rego_type_error: undefined function no_such_builtin",
    "arity.rego": ":4:2: rego_type_error: count: arity mismatch",
}
for name, want in bad.items():
    rc, out, err = run("check", os.path.join(FIX, name))
    check(rc == 1, f"check {name}: exit {rc}, want 1")
    check(want in err and os.path.join(FIX, name) in err, f"check {name}: {err.strip()!r} lacks {want!r}")

# runtime errors: exit 2, file:row: code: message on stderr
rc, out, err = run("eval", "--policy", os.path.join(FIX, "conflict.rego"), "--query", "data.bad.p = x")
check(rc == 2 and "conflict.rego:5: eval_conflict_error: complete rules must not produce multiple outputs" in err,
      f"conflict: {rc} {err.strip()!r}")
rc, out, err = run("eval", "--policy", os.path.join(FIX, "loop.rego"), "--query", "data.bad.p = x")
check(rc == 2 and "step budget" in err, f"budget: {rc} {err.strip()!r}")

# test: like opa test
rc, out, err = run("test", os.path.join(FIX, "tests.rego"))
check(rc == 0 and "2 passed, 0 failed" in out, f"policy test: {rc} {out!r}")
rc, out, err = run("test", os.path.join(FIX, "conflict.rego"))
check(rc == 0 and "0 passed, 0 failed" in out, f"policy test without tests: {rc} {out!r}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
