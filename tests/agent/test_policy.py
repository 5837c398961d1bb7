#!/usr/bin/python3
"""SPEC §5 request stage end to end: a blocked call never leaves the process.

Usage: test_policy.py LIB PART
  block    with the SPEC §5.1 first-generation policy (v0 syntax, `deny[msg]` on a
           tool name), every client (curl, requests, urllib, httpx sync and async over
           TLS, Node openai over plain HTTP) gets 403 with the policy_block body — the
           Node SDK raises PermissionDeniedError — the upstream never sees the call,
           allowed calls go through, and the record says block + reason.
  redact   `redact_fields := {"email", "ssn"}`: the upstream receives the message with
           [REDACTED:email]/[REDACTED:ssn] and a Content-Length that matches; the
           second-generation decision object (v1) blocks by rule.
  input    every way a rule reads a member of the input document (request,
           request_flat, system_prompt, tools, http_headers, input whole, a computed key, an
           import; the response stage) sees it, though the agent leaves out
           members no rule reads.
  modes    XENOVIA_POLICY_MODE=monitor records the decision and sends the call; a
           policy that does not compile gives one stderr line with file:line:col and
           403 policy_error (fail closed), or lets calls through with
           XENOVIA_FAIL_MODE=open.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, INTEG)
import run_matrix as rm  # noqa: E402

LIB, PART = sys.argv[1], sys.argv[2]
PY = "/usr/bin/python3"
if not os.path.isfile(LIB):
    print("SKIP: %s not built" % LIB)
    sys.exit(77)



sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402  (tests/lib/xvtest.py)
from xvtest import check  # noqa: E402

xvtest.QUIET = True


tmp = tempfile.mkdtemp(prefix="xv-policy-%s-" % PART)
certs = rm.make_certs(tmp)
mock = rm.Mock(tmp, certs)
tls = "https://127.0.0.1:%d" % mock.tport
plain = "http://127.0.0.1:%d" % mock.port

GEN1 = """package xenovia.policy
default allow = true
deny[msg] {
    some t in input.tool_names
    t == "drop_database"
    msg := "drop_database is not allowed"
}
"""
GEN2 = """package xenovia
import rego.v1
default decision := {"action": "allow"}
decision := {"action": "block", "rule": "no-gpt-3"} if startswith(input.model, "gpt-3")
"""
REDACT = """package xenovia.policy
import rego.v1
redact_fields := {"email", "ssn"} if input.model == "gpt-4o-mini"
"""
BROKEN = """package xenovia.policy
deny contains msg if {
    msg := sprintf("%s", [undefined_var])
"""


def write(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def env(trace, extra):
    e = rm.clean_env()
    for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        e[k] = certs["ca"]
    e["LD_PRELOAD"] = LIB
    e["XENOVIA_TRACE_FILE"] = trace
    e.update(extra)
    return e


def records(trace):
    if not os.path.exists(trace):
        return []
    return [json.loads(l) for l in open(trace) if l.strip() and '"step_type"' not in l]


TOOLS = [{"type": "function", "function": {"name": "drop_database",
                                           "parameters": {"type": "object", "properties": {}}}}]
BLOCKED = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "clean up"}], "tools": TOOLS}
ALLOWED = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}

PY_CLIENT = r'''
import asyncio, json, ssl, sys, urllib.request, urllib.error
import requests, httpx
base, ca, which, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
url = base + "/v1/chat/completions"
H = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-XENOVIA-SECRET-123"}
if which == "requests":
    r = requests.post(url, data=body, headers=H, verify=ca); st, txt = r.status_code, r.text
elif which == "urllib":
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), headers=H),
                                    context=ssl.create_default_context(cafile=ca)) as r:
            st, txt = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        st, txt = e.code, e.read().decode()
elif which == "httpx":
    with httpx.Client(verify=ca) as c:
        r = c.post(url, content=body, headers=H); st, txt = r.status_code, r.text
else:
    async def m():
        async with httpx.AsyncClient(verify=ca) as c:
            r = await c.post(url, content=body, headers=H); return r.status_code, r.text
    st, txt = asyncio.run(m())
print(json.dumps({"status": st, "body": json.loads(txt)}))
'''

NODE_CLIENT = r'''
const path = require('path');
const OpenAI = require(path.join(process.argv[1], 'node_modules', 'openai')).default;
const c = new OpenAI({apiKey: 'sk-test-XENOVIA-SECRET-123', baseURL: process.argv[2] + '/v1', maxRetries: 0});
c.chat.completions.create(JSON.parse(process.argv[3]))
  .then(r => console.log(JSON.stringify({status: 200, cls: 'ok', body: {choices: r.choices}})))
  .catch(e => console.log(JSON.stringify({status: e.status, cls: e.constructor.name, body: {error: e.error}})));
'''


def call(which, body, extra, trace, headers=()):
    b = json.dumps(body)
    if which == "curl":
        hs = [a for h in headers for a in ("-H", h)]
        p = subprocess.run(["curl", "-s", "--cacert", certs["ca"], "-w", "\n%{http_code}",
                            tls + "/v1/chat/completions", "-H", "Content-Type: application/json"]
                           + hs + ["-d", b], env=env(trace, extra), capture_output=True, timeout=60)
        text, _, code = p.stdout.decode().rpartition("\n")
        return p.returncode, {"status": int(code or 0), "body": json.loads(text or "{}")}, p.stderr
    if which == "node":
        p = subprocess.run([rm.NODE, "-e", NODE_CLIENT, os.path.join(INTEG, "node"), plain, b],
                           env=env(trace, extra), capture_output=True, timeout=60)
    else:
        p = subprocess.run([PY, "-c", PY_CLIENT, tls, certs["ca"], which, b],
                           env=env(trace, extra), capture_output=True, timeout=60)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else {}), p.stderr


CLIENTS = ["curl", "requests", "urllib", "httpx", "httpx_async", "node"]


def part_block():
    pol = write("gen1.rego", GEN1)
    big_blocked_curl(pol)
    for which in CLIENTS:
        if which == "node" and not os.path.isdir(rm.NODE_MODULES):
            print("SKIP node: node_modules missing")
            continue
        trace = os.path.join(tmp, "block-%s.jsonl" % which)
        before = len(mock.entries())
        rc, got, err = call(which, BLOCKED, {"XENOVIA_POLICY": pol}, trace)
        check(rc == 0, "%s: exit %d %s" % (which, rc, err[-300:]))
        check(got.get("status") == 403 and
              got.get("body", {}).get("error", {}).get("code") == "policy_block",
              "%s: expected 403 policy_block, got %r" % (which, got))
        if which == "node":
            check(got.get("cls") == "PermissionDeniedError",
                  "node: the SDK must raise PermissionDeniedError, got %r" % got.get("cls"))
        check(len(mock.entries()) == before, "%s: a blocked call reached the upstream" % which)
        rc, got2, err = call(which, ALLOWED, {"XENOVIA_POLICY": pol}, trace)
        check(got2.get("status") == 200, "%s: an allowed call must pass, got %r" % (which, got2))
        check(len(mock.entries()) == before + 1, "%s: the allowed call did not reach the upstream" % which)
        recs = records(trace)
        check(len(recs) == 2 and recs[0].get("policy_outcome") == "block" and
              recs[0].get("policy_reason") == "drop_database is not allowed" and
              recs[0].get("status_code") == 403 and recs[1].get("policy_outcome") == "allow",
              "%s: records %r" % (which, [(r.get("policy_outcome"), r.get("status_code")) for r in recs]))


def big_blocked_curl(pol):
    """curl sends Expect: 100-continue for bodies of 1 MB or more and waits for
    the 100 before the body: with a policy in force the agent answers the 100
    itself, holds the body and decides on it (no bypass by size)."""
    body = dict(BLOCKED, messages=[{"role": "user", "content": "x" * 1200000}])
    path = os.path.join(tmp, "big.json")
    with open(path, "w") as f:
        json.dump(body, f)
    for base in (tls, plain):
        trace = os.path.join(tmp, "big-%d.jsonl" % len(base))
        before = len(mock.entries())
        t0 = time.monotonic()
        p = subprocess.run(["curl", "-s", "--cacert", certs["ca"], "-o", "/dev/null", "-w", "%{http_code}",
                            base + "/v1/chat/completions", "-H", "Content-Type: application/json",
                            "--data-binary", "@" + path],
                           env=env(trace, {"XENOVIA_POLICY": pol}), capture_output=True, timeout=60)
        dt = time.monotonic() - t0
        check(p.stdout == b"403" and len(mock.entries()) == before,
              "%s 1.2 MB blocked body: 403 and not sent expected, got %r" % (base[:5], p.stdout))
        check(dt < 0.9, "%s: the agent's own 100 Continue must spare curl its 1 s wait (%.2fs)"
              % (base[:5], dt))
        before = len(mock.entries())
        ok = dict(ALLOWED, messages=[{"role": "user", "content": "y" * 1200000}])
        with open(path, "w") as f:
            json.dump(ok, f)
        p = subprocess.run(["curl", "-s", "--cacert", certs["ca"], "-o", "/dev/null", "-w", "%{http_code}",
                            base + "/v1/chat/completions", "-H", "Content-Type: application/json",
                            "--data-binary", "@" + path],
                           env=env(trace, {"XENOVIA_POLICY": pol}), capture_output=True, timeout=60)
        sent = mock.entries()[before:]
        check(p.stdout == b"200" and len(sent) == 1 and sent[0]["body_len"] == len(json.dumps(ok)) and
              not any(k.lower() == "expect" for k, _ in sent[0]["headers"]),
              "%s 1.2 MB allowed body: sent whole without Expect, got %r" % (base[:5], p.stdout))
        with open(path, "w") as f:
            json.dump(body, f)


def part_redact():
    pol = write("redact.rego", REDACT)
    trace = os.path.join(tmp, "redact.jsonl")
    body = {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "I am bob@example.com, SSN 123-45-6789; card 4111 1111 1111 1111"}]}
    before = len(mock.entries())
    rc, got, err = call("requests", body, {"XENOVIA_POLICY": pol}, trace)
    check(got.get("status") == 200, "redact: call must pass, got %r" % got)
    sent = mock.entries()[before:]
    check(len(sent) == 1, "redact: one upstream request expected")
    if sent:
        raw = base64.b64decode(sent[0]["body_b64"])
        cl = [v for k, v in sent[0]["headers"] if k.lower() == "content-length"]
        check(cl == [str(len(raw))], "redact: Content-Length %r for %d body bytes" % (cl, len(raw)))
        text = json.loads(raw)["messages"][0]["content"]
        check(text == "I am [REDACTED:email], SSN [REDACTED:ssn]; card 4111 1111 1111 1111",
              "redact: upstream got %r" % text)
    recs = records(trace)
    check(len(recs) == 1 and recs[0].get("policy_outcome") == "redact" and recs[0].get("request_redacted"),
          "redact: record %r" % recs)
    # second generation: decision object, v1
    pol2 = write("gen2.rego", GEN2)
    trace = os.path.join(tmp, "gen2.jsonl")
    before = len(mock.entries())
    rc, got, err = call("httpx", dict(ALLOWED, model="gpt-3.5-turbo"), {"XENOVIA_POLICY": pol2}, trace)
    check(got.get("status") == 403 and len(mock.entries()) == before,
          "decision object: gpt-3 must be blocked, got %r" % got)
    recs = records(trace)
    check(recs and recs[0].get("policy_rule_id") == "no-gpt-3", "decision object: rule id %r" % recs)


def part_modes():
    pol = write("gen1.rego", GEN1)
    trace = os.path.join(tmp, "monitor.jsonl")
    before = len(mock.entries())
    rc, got, err = call("requests", BLOCKED, {"XENOVIA_POLICY": pol, "XENOVIA_POLICY_MODE": "monitor"}, trace)
    check(got.get("status") == 200 and len(mock.entries()) == before + 1,
          "monitor: the call must be sent, got %r" % got)
    recs = records(trace)
    check(recs and recs[0].get("policy_outcome") == "block" and recs[0].get("policy_mode") == "monitor",
          "monitor: record %r" % recs)
    # response stage in monitor mode: decided at the end, recorded, not applied
    resp = write("resp.rego", """package xenovia.policy
import rego.v1
deny contains "looks like a greeting" if {
    input.stage == "response"
    contains(input.output.content, "Hello from")
    input.usage.output_tokens > 0
}
""")
    trace = os.path.join(tmp, "resp.jsonl")
    rc, got, err = call("requests", ALLOWED, {"XENOVIA_POLICY": resp, "XENOVIA_POLICY_MODE": "monitor"},
                        trace)
    recs = records(trace)
    check(got.get("status") == 200 and recs and recs[0].get("policy_outcome") == "allow" and
          recs[0].get("policy_response_outcome") == "block_response" and
          recs[0].get("policy_response_reason") == "looks like a greeting" and
          recs[0].get("policy_response_applied") is False,
          "response stage: would-be decision recorded, got %r" % [
              {k: v for k, v in r.items() if k.startswith("policy")} for r in recs])
    broken = write("broken.rego", BROKEN)
    for mode, want in (("closed", 403), ("open", 200)):
        trace = os.path.join(tmp, "broken-%s.jsonl" % mode)
        before = len(mock.entries())
        rc, got, err = call("curl", ALLOWED, {"XENOVIA_POLICY": broken, "XENOVIA_FAIL_MODE": mode}, trace)
        lines = [l for l in err.decode(errors="replace").splitlines() if l.startswith("xenovia:")]
        check(len(lines) == 1 and "broken.rego:" in lines[0] and "XENOVIA_POLICY" in lines[0],
              "broken (%s): one stderr line with file:line:col expected, got %r" % (mode, lines))
        check(got.get("status") == want, "broken (%s): status %r, want %d" % (mode, got.get("status"), want))
        if want == 403:
            check(got.get("body", {}).get("error", {}).get("code") == "policy_error" and
                  len(mock.entries()) == before, "broken (closed): 403 policy_error, not sent: %r" % got)


RESP_POLICY = """package xenovia
import rego.v1
default decision := {"action": "allow"}
decision := {"action": "block_response", "rule": "no-secret-talk"} if {
    input.stage == "response"
    some m in input.messages
    contains(m.content, "secret")
}
decision := {"action": "redact_response", "rule": "pii-out", "redact_fields": ["email"]} if {
    input.stage == "response"
    contains(input.output.content, "@")
}
"""


# One rule reads only the request (kept from the request stage), one the
# output (evaluated again): the response stage must still redact.
MEMO_POLICY = """package xenovia.policy
import rego.v1
redact_fields contains "email" if input.model == "gpt-4o-mini"
deny contains "refusal" if contains(input.output.content, "I cannot")
"""
PROPS_POLICY = """package xenovia.policy
import rego.v1
redact_fields contains "email" if {
    input.stage == "response"
    input.properties.team == "ops"
    input.session.turn >= 1
    count(input.session.id) == 36
}
"""


def pii_server():
    """A plain-HTTP upstream whose chat answer carries an e-mail address,
    chunked and keep-alive, to check the rebuilt response framing."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(30)
    body = json.dumps({"id": "chatcmpl-pii", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "write to bob@example.com today"},
         "finish_reason": "stop"}]}).encode()

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        while cl and len(rest) < cl[0]:
            rest += conn.recv(65536)
        half = len(body) // 2
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     b"%x\r\n" % half + body[:half] + b"\r\n" +
                     b"%x\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def part_response():
    pol = write("resp.rego", RESP_POLICY)
    secret = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "tell me the secret"}]}
    for which in CLIENTS:
        if which == "node" and not os.path.isdir(rm.NODE_MODULES):
            print("SKIP node: node_modules missing")
            continue
        trace = os.path.join(tmp, "resp-%s.jsonl" % which)
        rc, got, err = call(which, secret, {"XENOVIA_POLICY": pol}, trace)
        check(rc == 0 and got.get("status") == 403 and
              got.get("body", {}).get("error", {}).get("message") == "response blocked by policy",
              "%s: a blocked response must reach the app as 403, got %r" % (which, got))
        if which == "node":
            check(got.get("cls") == "PermissionDeniedError", "node: PermissionDeniedError, got %r" % got.get("cls"))
        rc, ok, err = call(which, ALLOWED, {"XENOVIA_POLICY": pol}, trace)
        check(ok.get("status") == 200, "%s: an allowed response passes, got %r" % (which, ok))
        recs = records(trace)
        check(len(recs) == 2 and recs[0].get("policy_response_outcome") == "block_response" and
              recs[0].get("policy_response_applied") is True and
              recs[1].get("policy_response_outcome") == "allow",
              "%s: records %r" % (which, [(r.get("policy_response_outcome"), r.get("policy_response_applied"))
                                          for r in recs]))
    # redact_response: a chunked upstream answer rebuilt with a Content-Length
    srv, port = pii_server()
    trace = os.path.join(tmp, "resp-redact.jsonl")
    p = subprocess.run(["curl", "-s", "-i", "http://127.0.0.1:%d/v1/chat/completions" % port,
                        "-H", "Content-Type: application/json", "-d", json.dumps(ALLOWED)],
                       env=env(trace, {"XENOVIA_POLICY": pol}), capture_output=True, timeout=30)
    srv.close()
    head, _, body = p.stdout.decode(errors="replace").partition("\r\n\r\n")
    cl = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("content-length:")]
    check("transfer-encoding" not in head.lower() and cl == [str(len(body.encode()))],
          "redact_response: the rebuilt response must carry its own Content-Length: %r" % head)
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError):
        content = body
    check(content == "write to [REDACTED:email] today", "redact_response: app got %r" % content)
    recs = records(trace)
    check(recs and recs[0].get("response_redacted") is True, "redact_response: record %r" % recs)
    # The response stage evaluates only the rules that can see what it adds;
    # the others' request-stage results stand (docs/policy.md). A request-only
    # redact_fields rule must still redact the response, and the session and
    # properties the request stage saw must still be there.
    for name, text, extra in (
            ("kept", MEMO_POLICY, {}),
            ("props", PROPS_POLICY, {"XENOVIA_PROPERTIES": "team=ops"})):
        pol2 = write("resp-%s.rego" % name, text)
        srv, port = pii_server()
        trace = os.path.join(tmp, "resp-%s.jsonl" % name)
        p = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/v1/chat/completions" % port,
                            "-H", "Content-Type: application/json", "-d", json.dumps(ALLOWED)],
                           env=env(trace, dict(extra, XENOVIA_POLICY=pol2)), capture_output=True,
                           timeout=30)
        srv.close()
        try:
            content = json.loads(p.stdout)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError):
            content = p.stdout
        check(content == "write to [REDACTED:email] today", "%s: app got %r" % (name, content))
        recs = records(trace)
        check(recs and recs[0].get("policy_response_outcome") == "redact_response",
              "%s: record %r" % (name, [r.get("policy_response_outcome") for r in recs]))
    # streams: observed (not held) by default, held with XENOVIA_STREAM_POLICY=buffer
    stream = dict(secret, stream=True)
    for mode, want in (("observe", 200), ("buffer", 403)):
        trace = os.path.join(tmp, "resp-stream-%s.jsonl" % mode)
        pr = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certs["ca"],
                             tls + "/v1/chat/completions", "-H", "Content-Type: application/json",
                             "-d", json.dumps(stream)],
                            env=env(trace, {"XENOVIA_POLICY": pol, "XENOVIA_STREAM_POLICY": mode}),
                            capture_output=True, timeout=60)
        check(pr.stdout.decode() == str(want), "stream %s: status %r, want %d" % (mode, pr.stdout, want))
        recs = records(trace)
        check(recs and recs[0].get("policy_response_outcome") == "block_response" and
              recs[0].get("policy_response_applied") is (mode == "buffer"),
              "stream %s: record %r" % (mode, [(r.get("policy_response_outcome"),
                                                r.get("policy_response_applied")) for r in recs]))


# Issue 9: members of the input document no rule reads are not built; every
# way of reading one must still see it (the request stage and the response
# stage, which shares the request stage's document).
INPUT_CASES = [
    ("request", 'deny contains "hot" if input.request.temperature > 1',
     {"temperature": 1.5}, {"temperature": 0.5}),
    ("request_flat", 'deny contains "flat" if input.request_flat["messages.0.content"] == "forbidden"',
     {"messages": [{"role": "user", "content": "forbidden"}]}, {}),
    ("system_prompt", 'deny contains "sys" if contains(input.system_prompt, "evil")',
     {"messages": [{"role": "system", "content": "be evil"}, {"role": "user", "content": "hi"}]}, {}),
    ("tools", 'deny contains "tools" if { some t in input.tools; t.function.name == "drop_database" }',
     {"tools": TOOLS}, {}),
    ("whole", 'deny contains "whole" if { some k, v in input; k == "request"; v.temperature > 1 }',
     {"temperature": 1.5}, {"temperature": 0.5}),
    ("computed", 'deny contains "computed" if { k := concat("", ["requ", "est"]); input[k].temperature > 1 }',
     {"temperature": 1.5}, {"temperature": 0.5}),
    ("import", 'import input.request as req\ndeny contains "import" if req.temperature > 1',
     {"temperature": 1.5}, {"temperature": 0.5}),
    ("http_headers", 'deny contains "hdr" if input.http_headers["x-debug"] == "1"',
     {"_headers": ["X-Debug: 1"]}, {"_headers": ["X-Debug: 0"]}),
    ("response", 'deny contains "resp" if { input.stage == "response"; input.request.max_tokens == 7 }',
     {"max_tokens": 7}, {"max_tokens": 8}),
]


def part_input():
    for name, rule, bad, good in INPUT_CASES:
        pol = write("input-%s.rego" % name, "package xenovia.policy\nimport rego.v1\n%s\n" % rule)
        trace = os.path.join(tmp, "input-%s.jsonl" % name)
        before = len(mock.entries())
        which = "curl" if "_headers" in bad else "requests"
        bh, gh = bad.pop("_headers", ()), good.pop("_headers", ())
        rc, got, err = call(which, dict(ALLOWED, **bad), {"XENOVIA_POLICY": pol}, trace, bh)
        check(got.get("status") == 403, "%s: the call the rule matches must be blocked, got %r %s"
              % (name, got, err.decode(errors="replace")[-300:]))
        sent = len(mock.entries()) - before
        check(sent == (1 if name == "response" else 0),
              "%s: %d upstream requests for the blocked call" % (name, sent))
        rc, got, err = call(which, dict(ALLOWED, **good), {"XENOVIA_POLICY": pol}, trace, gh)
        check(got.get("status") == 200, "%s: the other call must pass, got %r" % (name, got))
    # Credentials never reach the policy: every secret header reads "[REDACTED]",
    # whatever its case, and an ordinary one its value ("leak" sorts first, so
    # it would be the reason).
    pol = write("input-secrets.rego", """package xenovia.policy
import rego.v1
secret := ["authorization", "proxy-authorization", "api-key", "x-api-key", "x-xenovia-key",
           "cookie", "set-cookie", "openai-api-key"]
deny contains "leak" if { some h in secret; input.http_headers[h] != "[REDACTED]" }
deny contains "missing" if { some h in secret; not input.http_headers[h] }
deny contains "redacted" if input.http_headers["x-plain"] == "visible"
""")
    trace = os.path.join(tmp, "input-secrets.jsonl")
    sent = ["Authorization: Bearer sk-a", "Proxy-Authorization: Basic b", "API-Key: c",
            "x-api-key: d", "X-Xenovia-Key: e", "Cookie: f=1", "Set-Cookie: g=2",
            "OpenAI-API-Key: h", "X-Plain: visible"]
    rc, got, err = call("curl", ALLOWED, {"XENOVIA_POLICY": pol}, trace, sent)
    recs = records(trace)
    check(got.get("status") == 403 and recs and recs[-1].get("policy_reason") == "redacted",
          "secret headers: %r %r" % (got, [r.get("policy_reason") for r in recs]))


try:
    {"block": part_block, "redact": part_redact, "modes": part_modes,
     "response": part_response, "input": part_input}[PART]()
finally:
    mock.stop()
xvtest.summary_exit()
