#!/usr/bin/python3
"""Issue 8: the trace records tell the truth (SPEC §4, §5, §6).

Usage: test_records.py LIB XENOVIA PART
  redact    a redacting policy at the request stage, at the response stage, and at
            both: a two-turn tool conversation (PII in the user message, in the
            upstream's reply, in tool-call arguments both ways, in the tool result)
            and a stream; no original match of any label appears anywhere in the
            trace file (messages, response_content, tool arguments, tool steps,
            errors, reasons), and the records say which labels were redacted.
  outcomes  records of a block_response, a request block, a synthetic 400, an
            escalate (second-generation action the engine does not know) and an
            upstream 500 carry the final policy_outcome and the status the app saw
            (upstream_status_code only where it differs, no upstream_* ids on the
            agent's own answers); `xenovia traces` shows them so.
  ids       every X-Xenovia-Trace-Id header and every trace_id / parent_trace_id in
            the records is an RFC 4122 v4 UUID, hyphenated lower case; an app-sent
            session id (or XENOVIA_SESSION_ID) in another valid spelling (32 hex,
            braces, urn:uuid:) is accepted and recorded in canonical form.
  scope     two API keys in one process sending the same `user` value (and the same
            conversation) get different sessions; each key keeps its own.

The upstream is a small HTTP server run by this test on 127.0.0.1 (a port the kernel
chooses); clients run under LD_PRELOAD with /usr/bin/python3 `requests`.
"""
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

LIB, XV, PART = sys.argv[1], sys.argv[2], sys.argv[3]
PY = "/usr/bin/python3"
if not os.path.isfile(LIB):
    print("SKIP: %s not built" % LIB)
    sys.exit(77)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402  (tests/lib/xvtest.py)
from xvtest import check  # noqa: E402

xvtest.QUIET = True


# Distinctive originals, one per label (the card passes the Luhn check).
PII = {
    "email": "zq-origin-7731@leak.example.org",
    "ssn": "771-28-9035",
    "phone": "415-555-0199",
    "creditcard": "4539 1488 0343 6467",
    "ip": "203.0.113.77",
    "url": "https://leak.example.org/secret-path-9931",
}
PII_TEXT = ("mail %(email)s, ssn %(ssn)s, call %(phone)s, card %(creditcard)s, "
            "host %(ip)s, see %(url)s ok" % PII)
# pieces that must not survive either (a match cut in half is still a leak)
PIECES = ["zq-origin-7731", "771-28-9035", "555-0199", "0343 6467", "203.0.113.77",
          "secret-path-9931"]


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        model = req.get("model", "m")
        msgs = req.get("messages", [])
        last = msgs[-1] if msgs else {}
        if "status500" in model:
            return self.send_json(500, {"error": {"message": "upstream failed", "type": "server_error"}})
        if last.get("role") == "tool":
            reply = {"role": "assistant", "content": "Done. Also " + PII_TEXT}
        elif req.get("tools"):
            reply = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_pii_1", "type": "function",
                 "function": {"name": "lookup", "arguments": json.dumps({"q": PII_TEXT})}}]}
        else:
            reply = {"role": "assistant", "content": "You said: %s" % last.get("content", "")}
        if req.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            text = reply.get("content") or ""
            for i in range(0, len(text), 17):
                ev = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                      "choices": [{"index": 0, "delta": {"content": text[i:i + 17]}, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True
            return
        self.send_json(200, {"id": "chatcmpl-%d" % len(msgs), "object": "chat.completion", "model": model,
                             "choices": [{"index": 0, "message": reply, "finish_reason":
                                          "tool_calls" if reply.get("tool_calls") else "stop"}],
                             "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
BASE = "http://127.0.0.1:%d" % server.server_address[1]
tmp = tempfile.mkdtemp(prefix="xv-records-%s-" % PART)

# The app: a list of calls, each {headers, body}; prints what it read.
CLIENT = r'''
import json, sys, requests
base, plan = sys.argv[1], json.loads(sys.argv[2])
out = []
s = requests.Session()
for c in plan:
    h = {"Content-Type": "application/json"}
    h.update(c.get("headers", {}))
    r = s.post(base + "/v1/chat/completions", data=json.dumps(c["body"]), headers=h,
               stream=bool(c["body"].get("stream")), timeout=30)
    text = b"".join(r.iter_content(4096)).decode(errors="replace")
    out.append({"status": r.status_code, "trace": r.headers.get("X-Xenovia-Trace-Id"),
                "session": r.headers.get("X-Xenovia-Session-Id"), "body": text})
print(json.dumps(out))
'''


def write(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def run_app(plan, trace, extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XENOVIA_", "OTEL_")) and k != "LD_PRELOAD" and not k.lower().endswith("_proxy")}
    env.update({"LD_PRELOAD": LIB, "XENOVIA_TRACE_FILE": trace, "NO_PROXY": "127.0.0.1",
                "no_proxy": "127.0.0.1", "XENOVIA_SPOOL_DIR": os.path.join(tmp, "spool")})
    env.update(extra or {})
    p = subprocess.run([PY, "-c", CLIENT, BASE, json.dumps(plan)], env=env, capture_output=True,
                       timeout=120)
    check(p.returncode == 0, "app exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-400:]))
    try:
        return json.loads(p.stdout), p.stderr.decode(errors="replace")
    except ValueError:
        return [], p.stderr.decode(errors="replace")


def records(trace):
    if not os.path.exists(trace):
        return []
    return [json.loads(l) for l in open(trace) if l.strip()]


def calls_of(recs):
    return [r for r in recs if "step_type" not in r]


KEY_A = {"Authorization": "Bearer sk-test-XENOVIA-SECRET-123"}
KEY_B = {"Authorization": "Bearer sk-test-XENOVIA-SECRET-456"}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def conversation(session):
    """Turn 1 asks (tools offered), the upstream calls `lookup` with PII in its
    arguments; turn 2 answers with a tool result full of PII; then a stream."""
    h = dict(KEY_A, **{"X-Xenovia-Session-Id": session})
    first = {"model": "gpt-4o-mini", "tools": TOOLS,
             "messages": [{"role": "user", "content": "find " + PII_TEXT}]}
    second = {"model": "gpt-4o-mini", "tools": TOOLS, "messages": first["messages"] + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_pii_1", "type": "function",
             "function": {"name": "lookup", "arguments": json.dumps({"q": PII_TEXT})}}]},
        {"role": "tool", "tool_call_id": "call_pii_1", "content": "found " + PII_TEXT}]}
    stream = {"model": "gpt-4o-mini", "stream": True,
              "messages": [{"role": "user", "content": "stream " + PII_TEXT}]}
    return [{"headers": h, "body": first}, {"headers": h, "body": second},
            {"headers": KEY_A, "body": stream}]


def part_redact():
    labels = '{"email", "ssn", "phone", "creditcard", "ip", "url"}'
    variants = {
        "request": 'redact_fields := %s if input.stage == "request"' % labels,
        "response": 'redact_fields := %s if input.stage == "response"' % labels,
        "both": 'redact_fields := %s' % labels,
        "monitor": 'redact_fields := %s' % labels,  # decided, not applied: still kept out of traces
    }
    for name, rule in variants.items():
        pol = write("redact-%s.rego" % name, "package xenovia.policy\nimport rego.v1\n%s\n" % rule)
        trace = os.path.join(tmp, "redact-%s.jsonl" % name)
        extra = {"XENOVIA_POLICY": pol}
        if name == "monitor":
            extra["XENOVIA_POLICY_MODE"] = "monitor"
        got, err = run_app(conversation("6f1c0a52-3b7e-4d1a-9c55-0123456789ab"), trace, extra)
        check([g["status"] for g in got] == [200, 200, 200], "%s: statuses %r" % (name, got))
        raw = open(trace, encoding="utf-8").read() if os.path.exists(trace) else ""
        recs = records(trace)
        steps = [r for r in recs if "step_type" in r]
        check(len(calls_of(recs)) == 3, "%s: 3 call records, got %d" % (name, len(calls_of(recs))))
        check(sorted(s["step_type"] for s in steps) == ["tool_call", "tool_result"],
              "%s: one tool_call and one tool_result step, got %r" % (name, [s["step_type"] for s in steps]))
        for label, orig in PII.items():
            check(orig not in raw, "%s: the original %s %r is in the trace file" % (name, label, orig))
        for piece in PIECES:
            check(piece not in raw, "%s: a piece %r of an original is in the trace file" % (name, piece))
        for label in PII:
            check("[REDACTED:%s]" % label in raw, "%s: no [REDACTED:%s] in the trace file" % (name, label))
        for r in calls_of(recs):
            check(sorted(r.get("redacted_labels", [])) == sorted(PII),
                  "%s: redacted_labels %r" % (name, r.get("redacted_labels")))
        for s in steps:
            check("[REDACTED:ssn]" in s.get("tool_args", "") and
                  (s["step_type"] == "tool_call" or "[REDACTED:ssn]" in s.get("tool_result", "")),
                  "%s: tool step text redacted: %r" % (name, s))
        # what the app and the upstream saw follow the stage
        if name in ("response", "both"):
            check(PII["ssn"] not in got[1]["body"], "%s: the app read the upstream's PII" % name)
        else:
            check(PII["ssn"] in got[1]["body"], "%s: the app's response must be untouched" % name)
        wire = [r.get("request_redacted") for r in calls_of(recs)]
        check(wire == ([None] * 3 if name in ("response", "monitor") else [True] * 3),
              "%s: request_redacted %r" % (name, wire))


def part_outcomes():
    pol = write("outcomes.rego", """package xenovia
import rego.v1
default decision := {"action": "allow"}
decision := {"action": "block", "rule": "no-drop", "reason": "drop is not allowed"} if {
    input.stage == "request"
    some m in input.messages
    contains(m.content, "drop")
}
decision := {"action": "escalate", "rule": "needs-review"} if {
    input.stage == "request"
    some m in input.messages
    contains(m.content, "wire money")
}
decision := {"action": "block_response", "rule": "no-secret"} if {
    input.stage == "response"
    contains(input.output.content, "secret")
}
""")
    trace = os.path.join(tmp, "outcomes.jsonl")
    m = lambda text, model="gpt-4o-mini": {"model": model, "messages": [{"role": "user", "content": text}]}
    plan = [
        {"headers": KEY_A, "body": m("tell me the secret")},                      # block_response
        {"headers": KEY_A, "body": m("drop the table")},                          # request block
        {"headers": dict(KEY_A, **{"X-Xenovia-Session-Id": "not-a-uuid"}), "body": m("hi")},  # 400
        {"headers": KEY_A, "body": m("wire money to Bob")},                       # escalate
        {"headers": KEY_A, "body": m("hello", "gpt-4o-mini-status500")},          # upstream 500
        {"headers": KEY_A, "body": m("hello")},                                   # allow
    ]
    # A new connection per call: the agent closes a connection it answered itself.
    got = []
    for c in plan:
        g, err = run_app([c], trace, {"XENOVIA_POLICY": pol})
        got += g
    check([g["status"] for g in got] == [403, 403, 400, 403, 500, 200], "statuses %r" % [g["status"] for g in got])
    recs = calls_of(records(trace))
    check(len(recs) == 6, "6 records, got %d" % len(recs))
    want = [  # (policy_outcome, status_code, upstream_status_code, synthetic, rule)
        ("block_response", 403, 200, None, "no-secret"),
        ("block", 403, None, True, "no-drop"),
        ("allow", 400, None, True, None),
        ("escalate", 403, None, True, "needs-review"),
        ("allow", 500, None, None, None),
        ("allow", 200, None, None, None),
    ]
    for i, (r, w) in enumerate(zip(recs, want)):
        have = (r.get("policy_outcome"), r.get("status_code"), r.get("upstream_status_code"),
                r.get("synthetic_response"), r.get("policy_rule_id"))
        check(have == w, "record %d: (outcome, status, upstream status, synthetic, rule) %r, want %r"
              % (i, have, w))
        if r.get("synthetic_response"):
            check("upstream_trace_id" not in r and "upstream_session_id" not in r,
                  "record %d: upstream ids on the agent's own answer: %r" % (i, r))
        check(r.get("trace_id") == got[i]["trace"], "record %d: trace id = header" % i)
    check(recs and recs[0].get("policy_response_outcome") == "block_response" and
          recs[0].get("policy_request_outcome") == "allow", "block_response: per-stage detail %r" % recs[:1])
    check(len(recs) > 3 and recs[3].get("policy_request_outcome") == "escalate",
          "escalate: per-stage detail %r" % recs[3:4])
    # without a policy: allow, always present
    trace2 = os.path.join(tmp, "nopolicy.jsonl")
    run_app([{"headers": KEY_A, "body": m("hello")}], trace2)
    r2 = calls_of(records(trace2))
    check(len(r2) == 1 and r2[0].get("policy_outcome") == "allow", "no policy: %r" % r2)
    # xenovia traces shows the final outcome and the status the app saw
    p = subprocess.run([XV, "traces", trace], capture_output=True, timeout=30, text=True)
    check(p.returncode == 0, "xenovia traces exit %d %s" % (p.returncode, p.stderr))
    rows = {}
    for line in p.stdout.splitlines():
        cols = line.split()
        for r in recs:
            if cols and cols[-1] == r["trace_id"][:8]:
                rows[r["trace_id"]] = cols
    cells = [(rows.get(r["trace_id"], [""] * 14)[6], rows.get(r["trace_id"], [""] * 14)[11]) for r in recs]
    want_cells = [("403(up200)!", "block_response(no-secret)"), ("403(agent)!", "block(no-drop)"),
                  ("400(agent)!", "allow"), ("403(agent)!", "escalate(needs-review)"),
                  ("500!", "allow"), ("200", "allow")]
    check(cells == want_cells, "xenovia traces STATUS/POLICY cells %r, want %r\n%s" % (cells, want_cells, p.stdout))


def part_ids():
    trace = os.path.join(tmp, "ids.jsonl")
    canon = "6f1c0a52-3b7e-4d1a-9c55-0123456789ab"
    spellings = [canon.replace("-", ""), "{%s}" % canon.upper(), "urn:uuid:" + canon, canon.upper()]
    plan = conversation("9b2d4c1e-8f3a-4b6c-a1d2-3e4f5a6b7c8d")
    plan += [{"headers": dict(KEY_A, **{"X-Xenovia-Session-Id": s}),
              "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi %d" % i}]}}
             for i, s in enumerate(spellings)]
    got, err = run_app(plan, trace)
    check([g["status"] for g in got] == [200] * len(plan), "statuses %r" % [g["status"] for g in got])
    for g in got:
        check(g["trace"] and UUID4.match(g["trace"]), "X-Xenovia-Trace-Id %r is not a v4 UUID" % g["trace"])
    recs = records(trace)
    calls = calls_of(recs)
    check(len(calls) == len(plan), "%d call records, got %d" % (len(plan), len(calls)))
    for r in recs:
        check(UUID4.match(r.get("trace_id", "")), "record trace_id %r is not a v4 UUID" % r.get("trace_id"))
        if "step_type" in r:
            check(UUID4.match(r.get("parent_trace_id", "")) and
                  r["parent_trace_id"] in [c["trace_id"] for c in calls],
                  "step parent_trace_id %r names no call" % r.get("parent_trace_id"))
    check(sorted(g["trace"] for g in got) == sorted(c["trace_id"] for c in calls), "headers = records")
    tail = calls[-len(spellings):]
    check([c.get("session_id") for c in tail] == [canon] * len(spellings),
          "other UUID spellings must be recorded canonically: %r" % [c.get("session_id") for c in tail])
    check([c.get("session_turn") for c in tail] == [1, 2, 3, 4],
          "the spellings name one session: turns %r" % [c.get("session_turn") for c in tail])
    # XENOVIA_SESSION_ID in another spelling: accepted, used in canonical form
    trace = os.path.join(tmp, "ids-env.jsonl")
    got, err = run_app([{"headers": KEY_A, "body": {"model": "m", "messages": [{"role": "user",
                                                                                 "content": "x"}]}}],
                       trace, {"XENOVIA_SESSION_ID": "urn:uuid:" + canon.upper()})
    env_recs = calls_of(records(trace))
    check(got and got[0]["session"] == canon and env_recs and env_recs[0].get("session_id") == canon and
          env_recs[0].get("session_strategy") == "env" and "xenovia" not in err,
          "XENOVIA_SESSION_ID spelling: %r %r %r" % (got, [r.get("session_id") for r in env_recs], err))


def part_scope():
    trace = os.path.join(tmp, "scope.jsonl")
    m = lambda text: {"model": "gpt-4o-mini", "user": "tenant-user-1",
                      "messages": [{"role": "user", "content": text}]}
    plan = [{"headers": KEY_A, "body": m("a1")}, {"headers": KEY_B, "body": m("b1")},
            {"headers": KEY_A, "body": m("a2")}, {"headers": KEY_B, "body": m("b2")},
            {"headers": {"api-key": "azure-key-C"}, "body": m("c1")},
            {"headers": {"api-key": "azure-key-C"}, "body": m("c2")}]
    got, err = run_app(plan, trace)
    sids = [g["session"] for g in got]
    check(len(sids) == 6 and all(sids), "session headers %r" % sids)
    if len(sids) == 6:
        check(sids[0] == sids[2], "key A keeps its session by `user`: %r" % sids)
        check(sids[1] == sids[3], "key B keeps its session by `user`: %r" % sids)
        check(sids[4] == sids[5], "api-key C keeps its session by `user`: %r" % sids)
        check(len({sids[0], sids[1], sids[4]}) == 3, "three keys, three sessions: %r" % sids)
    recs = calls_of(records(trace))
    check([r.get("session_strategy") for r in recs] == ["new", "new", "user", "user", "new", "user"],
          "strategies %r" % [r.get("session_strategy") for r in recs])
    raw = open(trace).read() if os.path.exists(trace) else ""
    check("XENOVIA-SECRET" not in raw and "azure-key-C" not in raw, "a credential is in the trace file")
    # the same conversation (fingerprint) under two keys: two sessions
    trace = os.path.join(tmp, "scope-fp.jsonl")
    first = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "same start"}]}
    second = {"model": "gpt-4o-mini", "messages": first["messages"] + [
        {"role": "assistant", "content": "You said: same start"}, {"role": "user", "content": "next"}]}
    got, err = run_app([{"headers": KEY_A, "body": first}, {"headers": KEY_B, "body": second},
                        {"headers": KEY_A, "body": second}], trace)
    sids = [g["session"] for g in got]
    check(len(sids) == 3 and sids[2] == sids[0] and sids[1] != sids[0],
          "fingerprint scoped by key: %r" % sids)


try:
    {"redact": part_redact, "outcomes": part_outcomes, "ids": part_ids, "scope": part_scope}[PART]()
finally:
    server.shutdown()
xvtest.summary_exit()
