#!/usr/bin/python3
"""Issue 7 class 8 — an append after a killed writer's partial line starts on a new line.

A trace file whose last line was cut short (a writer killed mid-line,
planted here: a record's first 60 bytes without the newline) gets two calls
appended by two processes under the agent. Asserts: the planted line stays
as it was, alone; every other line parses (strict UTF-8 JSON) and the two
calls are there (before the fix the first record was glued to the partial
line and lost); the program's output is the same without the agent; a
file that does end in a newline gets no empty line.
Usage: test_partial.py LIB
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest as hs  # noqa: E402  (tests/lib/xvtest.py)

LIB = hs.lib_or_skip(sys.argv[1])

PROGRAM = r'''
import json, sys, urllib.request
port = int(sys.argv[1])
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body,
                             headers={"Content-Type": "application/json",
                                      # credentials the secret sweep (tests/sweep) looks for
                                      "Authorization": "Bearer sk-test-XENOVIA-SECRET-partial",
                                      "Cookie": "session=XENOVIA-SECRET-cookie",
                                      "X-Api-Key": "sk-test-XENOVIA-SECRET-apikey"})
with urllib.request.urlopen(req, timeout=20) as r:
    print(r.status, r.read().decode())
'''

tmp = hs.artifact_dir("partial")
prog = os.path.join(tmp, "prog.py")
with open(prog, "w") as f:
    f.write(PROGRAM)
srv = hs.Server(hs.chat_handler)
planted = b'{"trace_id":"00000000-0000-4000-8000-000000000000","session_id":"0000'
try:
    base = hs.run_timed(["/usr/bin/python3", prog, str(srv.port)], hs.clean_env(), timeout=60)
    hs.check(base[0] == 0, "without the agent the program exits 0")
    for case, start in (("partial", planted), ("clean", b'{"earlier":1}\n')):
        trace = os.path.join(tmp, "trace-%s.jsonl" % case)
        with open(trace, "wb") as f:
            f.write(start)
        os.chmod(trace, 0o600)
        for i in range(2):
            env = hs.clean_env()
            env["LD_PRELOAD"] = LIB
            env["XENOVIA_TRACE_FILE"] = trace
            rc, out, err, _ = hs.run_timed(["/usr/bin/python3", prog, str(srv.port)], env, timeout=60)
            hs.check(rc == 0 and out == base[1],
                     "%s, call %d: same output and exit status as without the agent" % (case, i + 1))
        data = open(trace, "rb").read()
        lines = data.split(b"\n")
        hs.check(data.endswith(b"\n") and lines[-1] == b"", "%s: the file ends with a newline" % case)
        lines = lines[:-1]
        if case == "partial":
            hs.check(lines and lines[0] == planted, "partial: the planted line is alone and unchanged")
            rest = lines[1:]
        else:
            rest = lines
        hs.check(all(rest), "%s: no empty line (%r)" % (case, [l[:40] for l in rest]))
        with open(os.path.join(tmp, "rest.jsonl"), "wb") as f:
            f.write(b"".join(l + b"\n" for l in rest))
        recs, probs = hs.strict_lines(os.path.join(tmp, "rest.jsonl"))
        hs.check(not probs, "%s: every other line parses (%s)" % (case, probs[:2]))
        calls = [r for r in recs if r.get("model") == "gpt-4o-mini"]
        hs.check(len(calls) == 2, "%s: both calls recorded (%d)" % (case, len(calls)))
finally:
    srv.stop()
hs.finish()
