#!/usr/bin/python3
"""Issue 7 class 6 — the agent's own lines never go to an fd that is not its stderr.

The program (run below as a child) closes fd 2, opens a keep-alive connection
to the scripted upstream (it gets fd 2), makes a chat call, waits for the
agent's exporter to have tried the trace file, and makes a second call on
the same connection. The trace file is unwritable (a path below /dev/null),
so the agent has a `xenovia: trace file …` line to say. Asserts:
  * the upstream received exactly the same bytes with and without the agent,
    apart from the X-Xenovia-* request lines the agent injects (before the fix
    the line arrived in front of the second request);
  * the program's output and exit status are the same;
  * with fd 2 left open the same run does print the line on stderr (the
    check drops only lines to a foreign fd 2), and a program that dup2's a
    data file over fd 2 gets nothing written into that file.
Usage: test_stderr.py LIB
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest as hs  # noqa: E402  (tests/lib/xvtest.py)

LIB = hs.lib_or_skip(sys.argv[1])

PROGRAM = r'''
import os, socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "close":
    os.close(2)
elif mode == "dup2":
    fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
s = socket.create_connection(("127.0.0.1", port))
print("socket fd", s.fileno() if mode == "close" else "-")
body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
f = s.makefile("rb")
for i in range(2):
    s.sendall(req)
    status = f.readline()
    n = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    print("call", i + 1, status.strip().decode(), f.read(n).decode())
    sys.stdout.flush()
    time.sleep(1.2)  # the exporter tries the trace file (and logs) meanwhile
s.close()
'''

def strip_injected(raw):
    return b"".join(l for l in raw.splitlines(keepends=True)
                    if not l.lower().startswith(b"x-xenovia-"))


tmp = hs.artifact_dir("stderr")
prog = os.path.join(tmp, "prog.py")
with open(prog, "w") as f:
    f.write(PROGRAM)
srv = hs.Server(hs.chat_handler)
try:
    res = {}
    for mode in ("close", "keep", "dup2"):
        for agent in (False, True):
            env = hs.clean_env()
            if agent:
                env["LD_PRELOAD"] = LIB
                env["XENOVIA_TRACE_FILE"] = "/dev/null/not-a-dir/trace.jsonl"
            datafile = os.path.join(tmp, "data-%s-%d.txt" % (mode, agent))
            before = len(srv.seen)
            rc, out, err, _ = hs.run_timed(["/usr/bin/python3", prog, str(srv.port), mode, datafile],
                                     env, timeout=60)
            wire = srv.seen_after(before)
            data = open(datafile, "rb").read() if os.path.exists(datafile) else b""
            res[(mode, agent)] = (rc, out, err, wire, data)
            hs.log("%s agent=%s: exit %d, %d bytes upstream, stderr %r" %
                   (mode, agent, rc, len(wire), err[:160]))
    n, a = res[("close", False)], res[("close", True)]
    hs.check(b"socket fd 2" in n[1], "the program's connection got fd 2")
    hs.check(n[0] == 0 and a[0] == 0, "closed fd 2: exit 0 with and without the agent")
    hs.check(n[1] == a[1], "closed fd 2: same program output")
    hs.check(n[3].count(b"POST ") == 2, "the upstream got two requests")
    hs.check(strip_injected(a[3]) == n[3],
             "closed fd 2: the upstream received the same bytes (minus injected lines): %r"
             % a[3][:200])
    hs.check(b"xenovia" not in a[3], "no agent line on the program's socket")
    k = res[("keep", True)]
    hs.check(b"xenovia: trace file" in k[2],
             "fd 2 intact: the agent does print its line on stderr (%r)" % k[2][:200])
    hs.check(strip_injected(k[3]) == res[("keep", False)][3], "fd 2 intact: same upstream bytes")
    d = res[("dup2", True)]
    hs.check(d[4] == res[("dup2", False)][4] == b"",
             "a data file dup2'ed over fd 2 gets no agent line (%r)" % d[4][:200])
finally:
    srv.stop()
hs.finish()
