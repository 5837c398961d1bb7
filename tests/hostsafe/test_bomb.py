#!/usr/bin/python3
"""Issue 7 class 5 — decompression bombs cost the agent little.

A 1 MiB gzip body that inflates to 1 GiB, once as a chat response and once
as a chat request body (Content-Encoding: gzip), through curl over plain
HTTP on 127.0.0.1 (curl itself never inflates: no --compressed). Each
direction runs three times in this one test: without the agent, with it
(default bounds) and with the bounds switched off (XENOVIA_INFLATE_MAX_BYTES=0,
XENOVIA_INFLATE_MAX_RATIO=0, what the agent did before the fix). Asserts:
  * the program's output (status line, headers minus X-Xenovia-*, body) and
    exit status are identical with and without the agent, and the upstream
    received the very same request body bytes;
  * the agent's extra CPU (curl's user+sys with the agent minus without) is
    under 0.5 s and under a third of the unbounded run's extra CPU (measured
    here 2026-12-04, load ~2: bounded +0.004 s, unbounded +0.6 s);
  * the call is recorded with `error` naming the inflation limits.
Usage: test_bomb.py LIB
"""
import hashlib
import os
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest as hs  # noqa: E402  (tests/lib/xvtest.py)

LIB = hs.lib_or_skip(sys.argv[1])


def make_bomb():
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    z = bytes(1 << 20)
    parts = [c.compress(z) for _ in range(1024)]
    parts.append(c.flush())
    return b"".join(parts)


BOMB = make_bomb()
BOMB_SHA = hashlib.sha256(BOMB).hexdigest()


def handler(c, srv):
    head, hdrs, body = hs.read_request(c)
    if head is None:
        return
    srv.seen.append((hdrs.get("x-bomb-dir"), hdrs.get("content-encoding"),
                     hashlib.sha256(body).hexdigest()))
    if hdrs.get("x-bomb-dir") == "response":
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Encoding: gzip\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(BOMB) + BOMB)
    else:
        reply = b'{"received_sha256":"%s"}' % hashlib.sha256(body).hexdigest().encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(reply) + reply)


def strip_stamps(out):
    head, sep, body = out.partition(b"\r\n\r\n")
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"x-xenovia-")]
    return b"\r\n".join(lines) + sep + body


tmp = hs.artifact_dir("bomb")
bomb_file = os.path.join(tmp, "bomb.gz")
with open(bomb_file, "wb") as f:
    f.write(BOMB)
srv = hs.Server(handler)
url = "http://127.0.0.1:%d/v1/chat/completions" % srv.port
try:
    for direction in ("response", "request"):
        argv = ["curl", "-s", "-S", "-i", "-H", "X-Bomb-Dir: " + direction,
                "-H", "Content-Type: application/json", "-H", "Expect:"]
        if direction == "request":
            argv += ["-H", "Content-Encoding: gzip", "--data-binary", "@" + bomb_file]
        else:
            argv += ["--data-binary", '{"model":"gpt-4o-mini","messages":[]}']
        argv.append(url)
        res = {}
        for mode in ("none", "agent", "unbounded"):
            env = hs.clean_env()
            trace = os.path.join(tmp, "%s-%s.jsonl" % (direction, mode))
            if mode != "none":
                env["LD_PRELOAD"] = LIB
                env["XENOVIA_TRACE_FILE"] = trace
            if mode == "unbounded":
                env["XENOVIA_INFLATE_MAX_BYTES"] = "0"
                env["XENOVIA_INFLATE_MAX_RATIO"] = "0"
            before = len(srv.seen)
            rc, out, err, cpu = hs.run_timed(argv, env, timeout=120)
            res[mode] = (rc, strip_stamps(out), cpu, srv.seen[before:], trace, err)
            hs.log("%s/%s: exit %d, %d output bytes, curl cpu %.3f s" %
                   (direction, mode, rc, len(out), cpu))
        n_rc, n_out, n_cpu, n_seen, _, _ = res["none"]
        a_rc, a_out, a_cpu, a_seen, a_trace, a_err = res["agent"]
        u_cpu = res["unbounded"][2]
        hs.check(n_rc == 0 and a_rc == 0, "%s: curl exits 0 with and without the agent" % direction)
        hs.check(a_out == n_out, "%s: identical output bytes with the agent (%d bytes)"
                 % (direction, len(n_out)))
        if direction == "response":
            hs.check(n_out.endswith(BOMB), "response: the program got the gzip bytes as sent")
        hs.check(len(a_seen) == 1 and len(n_seen) == 1 and a_seen == n_seen,
                 "%s: the upstream received the same request (%r)" % (direction, a_seen))
        if direction == "request":
            hs.check(a_seen and a_seen[0][2] == BOMB_SHA,
                     "request: the upstream received the gzip body unchanged")
        extra, extra_u = a_cpu - n_cpu, u_cpu - n_cpu
        hs.log("%s: agent extra cpu %.3f s (bounded), %.3f s (unbounded)" %
               (direction, extra, extra_u))
        hs.check(extra < 0.5, "%s: the bomb costs the agent < 0.5 s of CPU" % direction)
        hs.check(extra < max(extra_u / 3, 0.05),
                 "%s: bounded cost < a third of the unbounded cost" % direction)
        recs, probs = hs.strict_lines(a_trace)
        hs.check(not probs, "%s: trace parses (%s)" % (direction, probs[:2]))
        calls = [r for r in recs if "step_type" not in r]
        hs.check(len(calls) == 1 and "inflation limits" in str(calls[0].get("error", "")),
                 "%s: one record with error naming the inflation limits (%r)" %
                 (direction, [r.get("error") for r in calls]))
        hs.check(not a_err.strip(), "%s: no stderr line under the agent (%r)" % (direction, a_err[:200]))
finally:
    srv.stop()
hs.finish()
