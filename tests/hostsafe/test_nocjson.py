#!/usr/bin/python3
"""libcjson cannot be loaded: the agent still never hurts its host.

libxenovia.so does not link libcjson; it dlopens libcjson.so.1 at the first
JSON it reads or writes (preload/cjson_shim.c). Here LD_LIBRARY_PATH puts an
empty file of that name first, so the dlopen fails. The program makes two
chat calls on one keep-alive connection, with and without the agent.
Asserts:
  * same exit status and the same response bytes with and without the agent
    (apart from the two stamped response lines), and the upstream received
    the same requests apart from the X-Xenovia-* lines the agent injects;
  * the agent said so in one line on stderr;
  * both calls are still recorded (the agent's own JSON reader and record
    writer need no libcjson): two valid JSON lines with the call's fields;
  * the same program without the broken library prints no such line.
Usage: test_nocjson.py LIB
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest as hs  # noqa: E402  (tests/lib/xvtest.py)

LIB = hs.lib_or_skip(sys.argv[1])

PROGRAM = r'''
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
f = s.makefile("rb")
for i in range(2):
    s.sendall(req)
    head = [f.readline()]
    n = 0
    while head[-1] not in (b"\r\n", b""):
        head.append(f.readline())
        if head[-1].lower().startswith(b"content-length:"):
            n = int(head[-1].split(b":")[1])
    sys.stdout.buffer.write(b"".join(head) + f.read(n) + b"\n")
s.close()
'''


def without(raw, prefixes):
    return b"".join(l for l in raw.splitlines(keepends=True)
                    if not l.lower().startswith(prefixes))


tmp = hs.artifact_dir("nocjson")
prog = os.path.join(tmp, "prog.py")
with open(prog, "w") as f:
    f.write(PROGRAM)
broken = os.path.join(tmp, "lib")
os.makedirs(broken)
open(os.path.join(broken, "libcjson.so.1"), "wb").close()  # not an ELF object
srv = hs.Server(hs.chat_handler)
try:
    res = {}
    for mode in ("none", "agent", "agent-ok"):
        env = hs.clean_env()
        trace = os.path.join(tmp, "trace-%s.jsonl" % mode)
        if mode != "none":
            env["LD_PRELOAD"] = LIB
            env["XENOVIA_TRACE_FILE"] = trace
        if mode != "agent-ok":
            env["LD_LIBRARY_PATH"] = broken
        before = len(srv.seen)
        rc, out, err, _ = hs.run_timed(["/usr/bin/python3", prog, str(srv.port)], env, timeout=60)
        import time
        for _ in range(100):  # the handler records when the connection closes
            if len(srv.seen) > before:
                break
            time.sleep(0.05)
        wire = srv.seen[before] if len(srv.seen) > before else b""
        res[mode] = (rc, out, err, wire, hs.wait_records(trace, 2) if mode != "none" else [])
        hs.log("%s: exit %d, %d bytes out, %d upstream, stderr %r"
               % (mode, rc, len(out), len(wire), err[:200]))
    n, a, ok = res["none"], res["agent"], res["agent-ok"]
    hs.check(n[0] == 0 and a[0] == 0, "exit 0 with and without the agent")
    hs.check(n[1].count(b"200 OK") == 2, "two answered calls without the agent")
    hs.check(without(a[1], (b"x-xenovia-trace-id:", b"x-xenovia-session-id:")) == n[1],
             "same response bytes, apart from the stamped lines")
    hs.check(a[1].lower().count(b"x-xenovia-trace-id:") == 2, "both responses stamped")
    hs.check(without(a[3], (b"x-xenovia-",)) == n[3],
             "the upstream got the same requests, apart from the injected lines")
    hs.check(b"libcjson.so.1 not loadable" in a[2],
             "the agent says it could not load libcjson (%r)" % a[2][:300])
    hs.check(len(hs.xenovia_lines(a[2])) == 1, "one agent line: %r" % hs.xenovia_lines(a[2]))
    recs = a[4]
    hs.check(len(recs) == 2, "both calls recorded without libcjson (%d records)" % len(recs))
    for r in recs:
        hs.check(r.get("server_port") == srv.port and r.get("status_code") == 200 and
                 r.get("session_id"), "a whole record: %s" % json.dumps(r)[:300])
    hs.check(b"libcjson" not in ok[2], "with libcjson loadable no such line (%r)" % ok[2][:200])
    hs.check(len(ok[4]) == 2, "with libcjson loadable both calls recorded too")
finally:
    srv.stop()
hs.finish()
