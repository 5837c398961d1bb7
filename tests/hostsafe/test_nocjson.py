#!/usr/bin/python3
"""libcjson cannot be loaded: the agent still never hurts its host.

libxenovia.so does not link libcjson; it dlopens libcjson.so.1 only when
something must go through cJSON itself (preload/cjson_shim.c): here a body
nested deeper than the agent's own reader takes (64 levels), which it hands
to cJSON. LD_LIBRARY_PATH puts an empty file of that name first, so the
dlopen fails. The program makes two chat calls on one keep-alive connection
("plain": ordinary bodies; "deep": the second body nested 80 deep), with
and without the agent. Asserts:
  * same exit status and the same response bytes with and without the agent
    (apart from the stamped response lines), and the upstream received the
    same requests apart from the X-Xenovia-* lines the agent injects;
  * ordinary calls never need libcjson: no agent line, both recorded;
  * the deep body makes the agent try: it says so in exactly one line, and
    the ordinary first call is still recorded and stamped;
  * with libcjson loadable the deep run prints no such line.
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
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
plain = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
deep = (b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":'
        + b"[" * 80 + b"]" * 80 + b"}")
f = s.makefile("rb")
for i in range(2):
    body = deep if mode == "deep" and i == 1 else plain
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
              + body)
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
    for body in ("plain", "deep"):
        for mode in ("none", "agent", "agent-ok"):
            env = hs.clean_env()
            trace = os.path.join(tmp, "trace-%s-%s.jsonl" % (body, mode))
            if mode != "none":
                env["LD_PRELOAD"] = LIB
                env["XENOVIA_TRACE_FILE"] = trace
            if mode != "agent-ok":
                env["LD_LIBRARY_PATH"] = broken
            before = len(srv.seen)
            rc, out, err, _ = hs.run_timed(["/usr/bin/python3", prog, str(srv.port), body],
                                           env, timeout=60)
            wire = srv.seen_after(before)
            recs = hs.wait_records(trace, 1 if body == "deep" else 2) if mode != "none" else []
            res[(body, mode)] = (rc, out, err, wire, recs)
            hs.log("%s %s: exit %d, %d bytes out, %d upstream, %d records, stderr %r"
                   % (body, mode, rc, len(out), len(wire), len(recs), err[:200]))
    for body in ("plain", "deep"):
        n, a = res[(body, "none")], res[(body, "agent")]
        hs.check(n[0] == 0 and a[0] == 0, "%s: exit 0 with and without the agent" % body)
        hs.check(n[1].count(b"200 OK") == 2, "%s: two answered calls without the agent" % body)
        hs.check(without(a[1], (b"x-xenovia-trace-id:", b"x-xenovia-session-id:")) == n[1],
                 "%s: same response bytes, apart from the stamped lines" % body)
        hs.check(without(a[3], (b"x-xenovia-",)) == n[3],
                 "%s: the upstream got the same requests, apart from the injected lines" % body)
        hs.check(a[1].lower().count(b"x-xenovia-trace-id:") >= 1,
                 "%s: the first response is stamped" % body)
        hs.check(b"libcjson" not in res[(body, "agent-ok")][2],
                 "%s: with libcjson loadable no such line" % body)
    p, d = res[("plain", "agent")], res[("deep", "agent")]
    hs.check(hs.xenovia_lines(p[2]) == [], "ordinary calls need no libcjson: no agent line (%r)"
             % p[2][:300])
    hs.check(len(p[4]) == 2, "ordinary calls: both recorded (%d records)" % len(p[4]))
    for r in p[4]:
        hs.check(r.get("server_port") == srv.port and r.get("status_code") == 200 and
                 r.get("session_id"), "a whole record: %s" % json.dumps(r)[:300])
    lines = hs.xenovia_lines(d[2])
    hs.check(len(lines) == 1 and "libcjson.so.1 not loadable" in lines[0],
             "the deep body made the agent try libcjson: one line (%r)" % lines)
    hs.check(len(d[4]) >= 1 and d[4][0].get("status_code") == 200,
             "deep run: the ordinary first call is recorded (%d records)" % len(d[4]))
finally:
    srv.stop()
hs.finish()
