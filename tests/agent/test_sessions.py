#!/usr/bin/python3
"""Issue 3 end to end: sessions, injected and stamped headers, bad input.

Usage: test_sessions.py LIB PART
PART is one of:
  headers     every client of the matrix (curl, requests, urllib, httpx sync and
              async over TLS, Node openai over plain HTTP), with
              XENOVIA_SESSION_PATH, three XENOVIA_PROPERTIES and XENOVIA_FLOW_ID set:
              each upstream request carries exactly those headers once each plus one
              X-Xenovia-Session-Id; each client reads X-Xenovia-Session-Id and
              X-Xenovia-Trace-Id equal to the call's record (non-stream and stream).
  strategies  explicit header, XENOVIA_SESSION_ID, a previous_response_id chain of
              three Responses calls, the `user` field across two conversations, a
              four-turn chat with a tool call and its result (one session, turns 1-4,
              tool-step records) while two unrelated conversations get their own.
  badinput    a non-UUID X-Xenovia-Session-Id gets a synthetic 400 naming the header
              in every client and never reaches the upstream; invalid
              XENOVIA_SESSION_ID / XENOVIA_PROPERTIES give one stderr line and the
              program runs on.
  runtime     an upstream that stamps X-Xenovia-* itself (a Xenovia runtime): the app
              sees the upstream's values; the record keeps ours plus upstream_trace_id.
Servers are started here on 127.0.0.1 and stopped by pid. Exit 77 only when the
library is not built.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, INTEG)
import run_matrix as rm  # noqa: E402  (the matrix's mock, certs and clients)

LIB = sys.argv[1]
PART = sys.argv[2]
PY = "/usr/bin/python3"
KEY = "sk-test-XENOVIA-SECRET-123"
if not os.path.isfile(LIB):
    print("SKIP: %s not built" % LIB)
    sys.exit(77)



sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402  (tests/lib/xvtest.py)
from xvtest import check  # noqa: E402

xvtest.QUIET = True


def agent_env(trace, extra=None):
    env = rm.clean_env()
    # this machine exports CA bundles globally: every client here uses the test CA
    for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        env[k] = certs["ca"]  # NODE_EXTRA_CA_CERTS: the node_tls matrix client
    env["LD_PRELOAD"] = LIB
    env["XENOVIA_TRACE_FILE"] = trace
    env.update(extra or {})
    return env


def records(trace):
    if not os.path.exists(trace):
        return []
    with open(trace) as f:
        return [json.loads(l) for l in f if l.strip()]


def calls(trace):
    return [r for r in records(trace) if "step_type" not in r]


def xv_headers(stdout):
    """XV-HEADER lines a matrix client printed, in order."""
    out = []
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("XV-HEADER "):
            name, _, value = line[10:].partition(": ")
            out.append((name.lower(), value.strip()))
    return out


def run(argv, env, timeout=120, stdin=None):
    p = subprocess.run(argv, env=env, capture_output=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout, p.stderr


tmp = tempfile.mkdtemp(prefix="xv-sessions-%s-" % PART)
certs = rm.make_certs(tmp)
mock = rm.Mock(tmp, certs)
tls_base = "https://127.0.0.1:%d" % mock.tport
plain_base = "http://127.0.0.1:%d" % mock.port


def part_headers():
    extra = {"XENOVIA_SESSION_PATH": "/ci/build-42", "XENOVIA_FLOW_ID": "flow-7",
             "XENOVIA_PROPERTIES": "team=infra,env=ci%2Cprod,tier=gold"}
    want = {"x-xenovia-session-path": "/ci/build-42", "x-xenovia-trace-flow-id": "flow-7",
            "x-xenovia-property-team": "infra", "x-xenovia-property-env": "ci,prod",
            "x-xenovia-property-tier": "gold"}
    for client, (argv0, transport, _scen) in rm.CLIENTS.items():
        if client in ("curl_plain", "asyncio_raw"):
            continue
        if client.startswith("node") and not os.path.isdir(rm.NODE_MODULES):
            print("SKIP node: node_modules missing")
            continue
        for scenario in ("chat", "stream"):
            base, ca = (tls_base, certs["ca"]) if transport == "tls" else (plain_base, "-")
            trace = os.path.join(tmp, "%s-%s.jsonl" % (client, scenario))
            before = len(mock.entries())
            rc, out, err = run(argv0 + [base, ca, scenario], agent_env(trace, extra))
            label = "%s:%s" % (client, scenario)
            check(rc == 0, "%s exited %d: %s" % (label, rc, err[-400:]))
            reqs = [e for e in mock.entries()[before:] if e["method"] == "POST"]
            recs = calls(trace)
            check(len(reqs) >= 1 and len(recs) == len(reqs),
                  "%s: %d API requests upstream, %d records" % (label, len(reqs), len(recs)))
            for i, e in enumerate(reqs):
                xv = [(k.lower(), v) for k, v in e["headers"] if k.lower().startswith("x-xenovia-")]
                names = [k for k, _ in xv]
                for k, v in want.items():
                    check(names.count(k) == 1 and dict(xv).get(k) == v,
                          "%s: upstream header %s once with %r, got %r" % (label, k, v, xv))
                check(names.count("x-xenovia-session-id") == 1,
                      "%s: X-Xenovia-Session-Id once upstream, got %r" % (label, xv))
                check(len(names) == len(want) + 1, "%s: unexpected X-Xenovia headers %r" % (label, xv))
                if i < len(recs):
                    check(dict(xv).get("x-xenovia-session-id") == recs[i]["session_id"],
                          "%s: upstream session id != record" % label)
                    check(recs[i].get("custom_properties") ==
                          {"team": "infra", "env": "ci,prod", "tier": "gold"},
                          "%s: record custom_properties %r" % (label, recs[i].get("custom_properties")))
                    check(recs[i].get("flow_id") == "flow-7" and
                          recs[i].get("session_path") == "/ci/build-42",
                          "%s: record flow_id/session_path" % label)
            seen = xv_headers(out)
            sids = [v for k, v in seen if k == "x-xenovia-session-id"]
            tids = [v for k, v in seen if k == "x-xenovia-trace-id"]
            check(sids == [r["session_id"] for r in recs],
                  "%s: client saw session ids %r, records %r" % (label, sids, [r["session_id"] for r in recs]))
            check(tids == [r["trace_id"] for r in recs],
                  "%s: client saw trace ids %r, records %r" % (label, tids, [r["trace_id"] for r in recs]))
            check(KEY.encode() not in open(trace, "rb").read() and KEY.encode() not in err,
                  "%s: API key leaked into a record or stderr" % label)


# A small driver for the strategy checks: one Python process, requests over TLS.
DRIVER = r'''
import json, sys, requests
base, ca = sys.argv[1], sys.argv[2]
s = requests.Session()
s.verify = ca
H = {"Authorization": "Bearer sk-test-XENOVIA-SECRET-123"}
out = []
def post(path, body, headers=None):
    r = s.post(base + path, json=body, headers=dict(H, **(headers or {})))
    out.append({"status": r.status_code, "sid": r.headers.get("X-Xenovia-Session-Id"),
                "tid": r.headers.get("X-Xenovia-Trace-Id"), "json": r.json()})
    return r.json()
script = json.loads(sys.stdin.read())
for step in script:
    kind = step["kind"]
    if kind == "chat":
        post("/v1/chat/completions", step["body"], step.get("headers"))
    elif kind == "responses_chain":
        prev = None
        for i in range(step["n"]):
            body = {"model": "gpt-4o-mini", "input": "step %d" % i}
            if prev:
                body["previous_response_id"] = prev
            prev = post("/v1/responses", body)["id"]
    elif kind == "conversation":
        msgs = [{"role": "user", "content": step["first"]}]
        tools = step.get("tools")
        for turn in range(step["turns"]):
            body = {"model": "gpt-4o-mini", "messages": msgs}
            if tools:
                body["tools"] = tools
            msg = post("/v1/chat/completions", body)["choices"][0]["message"]
            msgs = msgs + [{k: v for k, v in msg.items() if k in ("role", "content", "tool_calls")}]
            if msg.get("tool_calls"):
                for tc in msg["tool_calls"]:
                    msgs.append({"role": "tool", "tool_call_id": tc["id"], "content": "sunny 21C"})
                tools = None  # answer in text next
            else:
                msgs.append({"role": "user", "content": "and then %d?" % turn})
print(json.dumps(out))
'''


def drive(script, trace, extra=None):
    rc, out, err = run([PY, "-c", DRIVER, tls_base, certs["ca"]], agent_env(trace, extra),
                       stdin=json.dumps(script).encode())
    check(rc == 0, "driver exited %d: %s" % (rc, err[-600:].decode(errors="replace")))
    return (json.loads(out) if rc == 0 else []), err


def part_strategies():
    sid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    # 1. explicit header: kept, sent upstream once, strategy "header"
    trace = os.path.join(tmp, "header.jsonl")
    before = len(mock.entries())
    res, _ = drive([{"kind": "chat", "headers": {"X-Xenovia-Session-Id": sid},
                     "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a"}]}}] * 2,
                   trace)
    recs = calls(trace)
    check([r["session_id"] for r in recs] == [sid, sid], "header: records %r" % recs)
    check([r.get("session_strategy") for r in recs] == ["header", "header"], "header: strategy")
    check([r["sid"] for r in res] == [sid, sid], "header: responses carry the app's session")
    for e in mock.entries()[before:]:
        n = sum(1 for k, _ in e["headers"] if k.lower() == "x-xenovia-session-id")
        check(n == 1, "header: upstream got X-Xenovia-Session-Id %d times" % n)
    # 2. XENOVIA_SESSION_ID
    trace = os.path.join(tmp, "env.jsonl")
    env_sid = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    drive([{"kind": "chat", "body": {"model": "gpt-4o-mini",
                                     "messages": [{"role": "user", "content": "q%d" % i}]}}
           for i in range(3)], trace, {"XENOVIA_SESSION_ID": env_sid})
    recs = calls(trace)
    check([r["session_id"] for r in recs] == [env_sid] * 3 and
          [r.get("session_strategy") for r in recs] == ["env"] * 3, "env: %r" % recs)
    # 3. previous_response_id chain over three Responses calls
    trace = os.path.join(tmp, "chain.jsonl")
    drive([{"kind": "responses_chain", "n": 3}], trace)
    recs = calls(trace)
    check(len(recs) == 3 and len({r["session_id"] for r in recs}) == 1,
          "previous_response_id: one session expected, got %r" % [r["session_id"] for r in recs])
    check([r["session_turn"] for r in recs] == [1, 2, 3], "previous_response_id: turns %r"
          % [r["session_turn"] for r in recs])
    check([r.get("session_strategy") for r in recs][1:] == ["previous_response_id"] * 2,
          "previous_response_id: strategies %r" % [r.get("session_strategy") for r in recs])
    # 4. user field across separate conversations
    trace = os.path.join(tmp, "user.jsonl")
    drive([{"kind": "chat", "body": {"model": "gpt-4o-mini", "user": "alice@example.com",
                                     "messages": [{"role": "user", "content": topic}]}}
           for topic in ("weather", "stocks", "recipes")], trace)
    recs = calls(trace)
    check(len(recs) == 3 and len({r["session_id"] for r in recs}) == 1 and
          [r["session_turn"] for r in recs] == [1, 2, 3], "user: %r" %
          [(r["session_id"], r["session_turn"]) for r in recs])
    check(not os.path.exists(trace) or "alice@example.com" not in open(trace).read(),
          "user: the user value is in a record")
    # 5. four-turn conversation with a tool call and its result; two unrelated ones
    trace = os.path.join(tmp, "conv.jsonl")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    drive([{"kind": "conversation", "first": "trip to Oslo", "turns": 4, "tools": tools},
           {"kind": "conversation", "first": "unrelated one", "turns": 1},
           {"kind": "conversation", "first": "unrelated two", "turns": 1}], trace)
    recs = calls(trace)
    check(len(recs) == 6, "conversation: 6 calls expected, got %d" % len(recs))
    if len(recs) == 6:
        conv = recs[:4]
        check(len({r["session_id"] for r in conv}) == 1 and
              [r["session_turn"] for r in conv] == [1, 2, 3, 4],
              "conversation: one session, turns 1-4 expected, got %r" %
              [(r["session_id"], r["session_turn"], r.get("session_strategy")) for r in conv])
        others = {recs[4]["session_id"], recs[5]["session_id"]}
        check(len(others) == 2 and conv[0]["session_id"] not in others,
              "unrelated conversations must get sessions of their own")
        steps = [r for r in records(trace) if r.get("step_type")]
        kinds = sorted(r["step_type"] for r in steps)
        check("tool_call" in kinds and "tool_result" in kinds,
              "tool steps expected (tool_call and tool_result), got %r" % kinds)
        for r in steps:
            if r["step_type"] == "tool_result":
                check(r.get("tool_name") == "get_weather" and r.get("tool_result") == "sunny 21C"
                      and isinstance(r.get("latency_ms"), (int, float)),
                      "tool_result step fields: %r" % r)


BAD = {"X-Xenovia-Session-Id": "not-a-uuid"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

PY_BAD = r'''
import asyncio, json, ssl, sys, urllib.request, urllib.error
import requests, httpx
base, ca, which = sys.argv[1], sys.argv[2], sys.argv[3]
H = {"X-Xenovia-Session-Id": "not-a-uuid", "Content-Type": "application/json"}
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
url = base + "/v1/chat/completions"
if which == "requests":
    r = requests.post(url, data=body, headers=H, verify=ca); st, js = r.status_code, r.json()
elif which == "urllib":
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), headers=H),
                               context=ssl.create_default_context(cafile=ca))
        st, js = 200, {}
    except urllib.error.HTTPError as e:
        st, js = e.code, json.loads(e.read())
elif which == "httpx":
    with httpx.Client(verify=ca) as c:
        r = c.post(url, content=body, headers=H); st, js = r.status_code, r.json()
else:
    async def m():
        async with httpx.AsyncClient(verify=ca) as c:
            r = await c.post(url, content=body, headers=H); return r.status_code, r.json()
    st, js = asyncio.run(m())
print(json.dumps({"status": st, "param": js.get("error", {}).get("param")}))
'''

NODE_BAD = r'''
const path = require('path');
const OpenAI = require(path.join(process.argv[1], 'node_modules', 'openai')).default;
const c = new OpenAI({apiKey: 'sk-test-XENOVIA-SECRET-123', baseURL: process.argv[2] + '/v1', maxRetries: 0});
c.chat.completions.create({model: 'gpt-4o-mini', messages: [{role: 'user', content: 'hi'}]},
                          {headers: {'X-Xenovia-Session-Id': 'not-a-uuid'}})
  .then(() => console.log(JSON.stringify({status: 200})))
  .catch(e => console.log(JSON.stringify({status: e.status, param: e.param || (e.error && e.error.param)})));
'''


def part_badinput():
    for which in ("curl", "requests", "urllib", "httpx", "httpx_async", "node"):
        trace = os.path.join(tmp, "bad-%s.jsonl" % which)
        before = len(mock.entries())
        if which == "curl":
            rc, out, err = run(["curl", "-s", "--cacert", certs["ca"], "-o", "-", "-w", "\n%{http_code}",
                                tls_base + "/v1/chat/completions", "-H", "Content-Type: application/json",
                                "-H", "X-Xenovia-Session-Id: not-a-uuid", "-d", json.dumps(BODY)],
                               agent_env(trace))
            body, _, code = out.decode().rpartition("\n")
            got = {"status": int(code or 0), "param": json.loads(body or "{}").get("error", {}).get("param")}
        elif which == "node":
            if not os.path.isdir(rm.NODE_MODULES):
                print("SKIP node: node_modules missing")
                continue
            rc, out, err = run([rm.NODE, "-e", NODE_BAD, os.path.join(INTEG, "node"), plain_base],
                               agent_env(trace))
            got = json.loads(out or b"{}")
        else:
            rc, out, err = run([PY, "-c", PY_BAD, tls_base, certs["ca"], which], agent_env(trace))
            got = json.loads(out or b"{}")
        check(rc == 0, "%s: exit %d %s" % (which, rc, err[-300:]))
        check(got.get("status") == 400 and got.get("param") == "X-Xenovia-Session-Id",
              "%s: expected a 400 naming X-Xenovia-Session-Id, got %r" % (which, got))
        check(len(mock.entries()) == before, "%s: the upstream saw the call" % which)
        recs = calls(trace)
        check(len(recs) == 1 and recs[0].get("status_code") == 400 and recs[0].get("synthetic_response"),
              "%s: one record of the synthetic 400 expected, got %r" % (which, recs))
    # invalid configuration: one clear stderr line each, the call still works
    for var, val, needle in (
            ("XENOVIA_SESSION_ID", "nope", "XENOVIA_SESSION_ID"),
            ("XENOVIA_PROPERTIES", ",".join("k%d=v" % i for i in range(21)), "XENOVIA_PROPERTIES"),
            ("XENOVIA_PROPERTIES", "k" * 65 + "=v", "XENOVIA_PROPERTIES"),
            ("XENOVIA_PROPERTIES", "k=" + "v" * 513, "XENOVIA_PROPERTIES"),
            ("XENOVIA_PROPERTIES", "policy_x=1", "XENOVIA_PROPERTIES")):
        trace = os.path.join(tmp, "cfg.jsonl")
        rc, out, err = run(["curl", "-s", "--cacert", certs["ca"], tls_base + "/v1/chat/completions",
                            "-H", "Content-Type: application/json", "-d", json.dumps(BODY)],
                           agent_env(trace, {var: val}))
        lines = [l for l in err.decode(errors="replace").splitlines() if l.startswith("xenovia:")]
        check(rc == 0 and b'"choices"' in out, "%s=%s...: the program must run on" % (var, val[:20]))
        check(len(lines) == 1 and needle in lines[0],
              "%s=%s...: one stderr line naming it expected, got %r" % (var, val[:20], lines))


def part_runtime():
    """An upstream playing a Xenovia runtime: stamps its own X-Xenovia-* headers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(20)
    port = srv.getsockname()[1]
    body = json.dumps({"id": "chatcmpl-rt", "model": "m", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}).encode()
    up_tid, up_sid = "feedfacefeedfacefeedfacefeedface", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        while cl and len(rest) < cl[0]:
            rest += conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Xenovia-Trace-Id: " +
                     up_tid.encode() + b"\r\nX-Xenovia-Session-Id: " + up_sid.encode() +
                     b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    trace = os.path.join(tmp, "runtime.jsonl")
    rc, out, err = run(["curl", "-s", "-i", "http://127.0.0.1:%d/v1/chat/completions" % port,
                        "-H", "Content-Type: application/json", "-d", json.dumps(BODY)], agent_env(trace))
    t.join(10)
    srv.close()
    text = out.decode(errors="replace")
    got = [l.split(":", 1) for l in text.split("\r\n") if l.lower().startswith("x-xenovia-")]
    check(sorted((k.lower(), v.strip()) for k, v in got) ==
          sorted([("x-xenovia-trace-id", up_tid), ("x-xenovia-session-id", up_sid)]),
          "runtime: the app must see exactly the upstream's values, got %r" % got)
    recs = calls(trace)
    check(len(recs) == 1 and recs[0]["trace_id"] != up_tid and
          recs[0].get("upstream_trace_id") == up_tid and recs[0].get("upstream_session_id") == up_sid,
          "runtime: record must keep ours plus upstream_trace_id, got %r" % recs)


try:
    {"headers": part_headers, "strategies": part_strategies, "badinput": part_badinput,
     "runtime": part_runtime}[PART]()
finally:
    mock.stop()
xvtest.summary_exit()
