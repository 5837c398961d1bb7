#!/usr/bin/python3
"""test_fork_midcall.py — acceptance 4 (fork) of issue 2, the hard case: the
process forks while another of its threads is in the middle of a call.

The child inherits the agent's state for that call (a copy of the parent's
connection table) but the call is the parent's: the parent finishes it and
records it; the child must not write a second record for it (neither at exit
nor when its copy of the socket is closed). SPEC §7: "After fork() the child
gets its own exporter; nothing is sent twice."

The client (this file with --child), over TLS to the mock:
  * a background thread makes calls back to back on one keep-alive
    requests.Session (model suffix `-chunked`, so each reply takes a few
    milliseconds and a fork often lands inside one; every second call streams);
  * meanwhile the main thread forks 12 children, 15 ms apart; each waits
    30 ms, odd ones make one call of their own on a new session, and all
    leave through sys.exit (destructors run);
  * then the background thread stops.
Every call's user message carries a unique marker; every process writes one
JSON line per call to stdout with one write(2).

Checks: each call has exactly one record, with the pid of the process that
made it; no record has `error`; no record without a marker; trace ids unique
and equal to the stamped headers; nothing hangs.

Usage: test_fork_midcall.py --lib build/preload/libxenovia.so   (exit 77 when missing)
"""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402

CHILDREN = 12


def _call(port, session, marker, model, stream):
    body = {"model": model, "messages": [{"role": "user", "content": "hello %s" % marker}]}
    if stream:
        body["stream"] = True
    res = {"marker": marker, "pid": os.getpid()}
    try:
        r = session.post("https://127.0.0.1:%d/v1/chat/completions" % port, json=body,
                         timeout=60)
        data = r.content
        res.update(status=r.status_code, trace=r.headers.get("X-Xenovia-Trace-Id"),
                   ok=(b"[DONE]" in data) if stream else (b"Hello from" in data))
    except Exception as e:
        res.update(error=repr(e))
    os.write(1, (json.dumps(res) + "\n").encode())


def child(port, nonce):
    import threading
    import time
    import requests

    stop = threading.Event()

    def background():
        with requests.Session() as s:
            i = 0
            while not stop.is_set():
                _call(port, s, "XVM-%s-bg-%d" % (nonce, i), "gpt-4o-mini-chunked", i % 2 == 1)
                i += 1

    t = threading.Thread(target=background)
    t.start()
    time.sleep(0.05)
    pids = []
    for k in range(CHILDREN):
        time.sleep(0.015)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                time.sleep(0.03)
                if k % 2 == 1:
                    with requests.Session() as s:
                        _call(port, s, "XVM-%s-child%d" % (nonce, k), "gpt-4o-mini", False)
            except BaseException:
                code = 2
            sys.exit(code)
        pids.append(pid)
    status = 0
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        if st != 0:
            status = 1
    stop.set()
    t.join(60)
    sys.exit(status)


def main():
    if "--child" in sys.argv:
        child(int(xvtest.arg_value("--port")), xvtest.arg_value("--nonce"))
        return
    lib = xvtest.lib_from_argv()
    nonce = uuid.uuid4().hex[:8]
    with xvtest.Mock() as m:
        trace = m.path("trace.jsonl")
        env = xvtest.client_env(ca=m.ca, lib=lib, trace_file=trace)
        rc, out, err = xvtest.run([xvtest.PYTHON, os.path.abspath(__file__), "--child",
                                   "--port", str(m.tls_port), "--nonce", nonce],
                                  env, timeout=180)
        check(rc is not None, "client and children finished within 180 s (no hang)")
        check(rc == 0, "client exit status 0 (got %r; stderr tail %r)"
              % (rc, err.decode("utf-8", "replace")[-600:]))
        calls = []
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                calls.append(json.loads(line))
            except ValueError:
                check(False, "client output line is JSON: %r" % line[:200])
        bad = [c for c in calls if c.get("error") or c.get("status") != 200 or not c.get("ok")]
        check(not bad, "every call completed with 200 (bad: %s)" % bad[:3])
        expected = {c["marker"] for c in calls}
        bg = [c for c in calls if "-bg-" in c["marker"]]
        kids = [c for c in calls if "-child" in c["marker"]]
        check(len(bg) >= 5 and len(kids) == CHILDREN // 2,
              "background thread made calls across the forks (%d) and %d children made theirs (%d)"
              % (len(bg), CHILDREN // 2, len(kids)))

        recs = xvtest.wait_records(trace, len(expected), timeout=5)
        by_marker, strays = {}, []
        for rec in recs:
            mk = xvtest.record_marker(rec, "XVM-%s-" % nonce)
            (by_marker.setdefault(mk, []) if mk else strays).append(rec)
        missing = sorted(expected - set(by_marker))
        dup = {k: sorted((r.get("pid"), r.get("error")) for r in v)
               for k, v in by_marker.items() if len(v) > 1}
        check(not missing, "a record for every call (missing %d: %s)" % (len(missing), missing[:5]))
        check(not dup, "no call recorded twice (duplicated %d; first: %s)"
              % (len(dup), list(dup.items())[:2]))
        check(not strays, "no record without a call marker (got %d)" % len(strays))
        errs = [(xvtest.record_marker(r, "XVM-"), r.get("pid"), r.get("error"))
                for r in recs if r.get("error")]
        check(not errs, "no record carries an error (got %d: %s)" % (len(errs), errs[:3]))
        check(len(recs) == len(expected), "%d records for %d calls (got %d)"
              % (len(expected), len(expected), len(recs)))
        ids = [r.get("trace_id") for r in recs]
        check(all(ids) and len(set(ids)) == len(ids), "trace ids present and unique")
        wrong = []
        for c in calls:
            rs = by_marker.get(c["marker"], [])
            if len(rs) == 1 and (rs[0].get("trace_id") != c.get("trace") or
                                 rs[0].get("pid") != c["pid"]):
                wrong.append((c["marker"], c.get("trace"), rs[0].get("trace_id"),
                              c["pid"], rs[0].get("pid")))
        check(not wrong, "records carry the stamped trace id and the caller's pid (wrong: %s)"
              % wrong[:3])
        xl = xvtest.xenovia_lines(err)
        check(not xl, "no xenovia line on stderr (got %r)" % xl[:5])
    xvtest.finish()


if __name__ == "__main__":
    main()
