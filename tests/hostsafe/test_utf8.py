#!/usr/bin/python3
"""Issue 7 class 7 — records are always valid UTF-8 JSON, whatever the inputs.

Hostile inputs, each in its own run of a raw-socket client against a
scripted upstream on 127.0.0.1, with and without the agent:
  * the environment: XENOVIA_SESSION_PATH of 300 bytes of 'é' (the record
    keeps 255: the cut fell inside a character) plus invalid bytes;
    XENOVIA_FLOW_ID, XENOVIA_AGENT_ID, XENOVIA_ORG_ID with invalid bytes
    (0xFF, a lone continuation byte, an overlong '/', a surrogate);
    argv[0] made of invalid bytes;
  * the upstream's stamp headers: X-Xenovia-Trace-Id and -Session-Id of
    invalid bytes and of multibyte text longer than the fields kept;
  * bodies: raw invalid bytes inside JSON strings of the request (messages,
    model) and of the response (content);
  * a policy whose deny reason is 200 'é' (longer than the 255 bytes kept);
  * the app's own X-Xenovia-Session-Path header of 200 'ü' plus bad bytes.
Asserts: every line of every trace file decodes as strict UTF-8 and parses
as JSON; the expected record is there; the program's output and exit status
are identical with and without the agent (the policy run: the agent answers
403, which is the point of a policy, so only the record is checked).
Usage: test_utf8.py LIB
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest as hs  # noqa: E402  (tests/lib/xvtest.py)

LIB = hs.lib_or_skip(sys.argv[1])
BAD = b"\xff-\x80-\xc0\xaf-\xed\xa0\x80-\xe2\x82"  # invalid, lone cont., overlong, surrogate, cut

PROGRAM = r'''
import socket, sys
port = int(sys.argv[1])
body = bytes.fromhex(sys.argv[2])
extra = bytes.fromhex(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: application/json\r\n" + extra +
          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, _, rest = data.partition(b"\r\n\r\n")
lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"x-xenovia-")]
sys.stdout.buffer.write(b"\n".join(lines) + b"\n\n" + rest + b"\n")
'''


def handler(c, srv):
    head, hdrs, body = hs.read_request(c)
    if head is None:
        return
    mode = hdrs.get("x-test-upstream", "")
    extra = b""
    if mode == "stamp":
        extra = (b"X-Xenovia-Trace-Id: " + "é".encode() * 40 + BAD + b"\r\n"
                 b"X-Xenovia-Session-Id: " + BAD + "ü".encode() * 40 + b"\r\n")
    reply = (b'{"id":"chatcmpl-' + BAD + b'","object":"chat.completion","created":1,'
             b'"model":"gpt-4o-mini' + BAD + b'","choices":[{"index":0,"message":{"role":'
             b'"assistant","content":"bad ' + BAD + b' bytes ' + "é".encode() * 3 + b'"},'
             b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
             b'"total_tokens":2}}')
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(reply) + reply)


tmp = hs.artifact_dir("utf8")
prog = os.path.join(tmp, "prog.py")
with open(prog, "w") as f:
    f.write(PROGRAM)
policy = os.path.join(tmp, "deny.rego")
with open(policy, "w", encoding="utf-8") as f:
    f.write('package xenovia.policy\n\ndeny[msg] {\n  input.model != ""\n  msg := "%s"\n}\n'
            % ("é" * 200))

body = (b'{"model":"gpt-4o-mini' + BAD + b'","messages":[{"role":"user","content":"hi ' + BAD +
        b' ' + "日本".encode() * 50 + b'"}]}')
CASES = [
    # name, env additions (bytes), extra request header lines, argv0
    ("env", {b"XENOVIA_SESSION_PATH": "é".encode() * 150 + BAD.replace(b"\x80", b"x"),
             b"XENOVIA_FLOW_ID": b"flow" + BAD, b"XENOVIA_AGENT_ID": b"agent" + BAD,
             b"XENOVIA_ORG_ID": BAD}, b"", None),
    ("argv0", {}, b"", b"\xff\xfe" + BAD + b"/python3"),
    ("stamp", {}, b"X-Test-Upstream: stamp\r\n", None),
    ("apphdr", {}, b"X-Xenovia-Session-Path: " + "ü".encode() * 200 + BAD + b"\r\n", None),
    ("policy", {b"XENOVIA_POLICY": policy.encode()}, b"", None),
]
srv = hs.Server(handler)
try:
    for name, envadd, extra, argv0 in CASES:
        outs = {}
        for agent in (False, True):
            env = {k.encode(): v.encode() for k, v in hs.clean_env().items()}
            trace = os.path.join(tmp, "trace-%s.jsonl" % name)
            if agent:
                env[b"LD_PRELOAD"] = LIB.encode()
                env[b"XENOVIA_TRACE_FILE"] = trace.encode()
                env.update(envadd)
            argv = [argv0 or b"/usr/bin/python3", prog.encode(), str(srv.port).encode(),
                    body.hex().encode(), extra.hex().encode()]
            rc, out, err, _ = hs.run_timed(argv, env, timeout=60, executable="/usr/bin/python3")
            outs[agent] = (rc, out, err)
        hs.log("%s: exit %d/%d, agent stderr %r" % (name, outs[False][0], outs[True][0],
                                                    outs[True][2][:200]))
        if name != "policy":
            hs.check(outs[False][:2] == outs[True][:2],
                     "%s: same output and exit status with and without the agent" % name)
        else:
            hs.check(b" 403 " in outs[True][1].split(b"\n")[0], "policy: the agent answered 403")
        recs, probs = hs.strict_lines(trace)
        hs.check(not probs, "%s: every line is strict UTF-8 JSON (%s)" % (name, probs[:2]))
        calls = [r for r in recs if "step_type" not in r]
        hs.check(len(calls) == 1, "%s: one record (%d)" % (name, len(calls)))
        r = calls[0] if calls else {}
        if name == "env":
            sp = r.get("session_path", "")
            hs.check(sp.startswith("é" * 100) and len(sp.encode()) <= 255,
                     "env: session_path cut on a character boundary (%d bytes)" % len(sp.encode()))
            hs.check("\ufffd" in r.get("agent_id", "") and r.get("flow_id", "").startswith("flow"),
                     "env: invalid bytes replaced by U+FFFD (%r, %r)" %
                     (r.get("agent_id"), r.get("flow_id")))
        if name == "policy":
            reason = r.get("policy_reason", "")
            hs.check(reason.startswith("é" * 100) and "\ufffd" not in reason,
                     "policy: the long reason is cut between characters (%d bytes)" %
                     len(reason.encode()))
        if name == "apphdr":
            sp = r.get("session_path", "")
            hs.check(sp.startswith("ü" * 100) and "\ufffd" not in sp,
                     "apphdr: the app's header value is cut between characters")
finally:
    srv.stop()
hs.finish()
