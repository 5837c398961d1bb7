#!/usr/bin/python3
"""test_fork.py — acceptance 4 (fork) of issue 2: a Python process under the
agent that forks workers which then make calls. Every call has exactly one
record (nothing lost in a child that exits with os._exit, nothing the parent had
queued written again by a child), trace ids are unique, every stamped
X-Xenovia-Trace-Id equals its record's trace_id, each record's pid is the pid of
the process that made the call, and nothing hangs.

The client (this file with --child), all over TLS to the mock:
  1. parent: call P0 on a keep-alive requests.Session, then a call on a second
     session and a fork right after it (its record may still be queued: the
     child must not write it again); the child makes two more calls over that
     inherited keep-alive connection (the parent leaves it alone);
  2. os.fork() x 3: each child makes 4 calls on its own session; child 2 first
     forks a grandchild (2 calls) and then makes its own calls. With
     --exit-mode exit (default) every forked child leaves through sys.exit
     (atexit handlers and ELF destructors run); with --exit-mode os_exit every
     one calls os._exit(0) right after its last call, as pre-fork servers do
     (no destructors: the agent must not lose a record it already has);
  3. a burst of 8 forked children, one call each, leaving (as above) at once;
  4. multiprocessing, start method "fork": Pool(3).map over 12 calls (workers
     end in os._exit, as multiprocessing does), then two Process objects with
     3 calls each;
  5. parent: call P1 on the session opened before the forks (its inherited
     connection was never used by a child), and P2 on a new connection.
Each call's user message carries a unique marker (XVF-<nonce>-<who>-<n>). Every
process writes one JSON line per call to stdout with a single write(2).

Usage: test_fork.py --lib build/preload/libxenovia.so [--exit-mode exit|os_exit]
(exit 77 when the library is missing)
"""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402

MODEL = "gpt-4o-mini"
BURST = 8   # children making a single call each

_state = {}


def _call(session, marker):
    """One chat call; writes its result line to stdout atomically."""
    base = "https://127.0.0.1:%d" % _state["port"]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello %s" % marker}]}
    res = {"marker": marker, "pid": os.getpid()}
    try:
        r = session.post(base + "/v1/chat/completions", json=body, timeout=60)
        res.update(status=r.status_code, trace=r.headers.get("X-Xenovia-Trace-Id"),
                   ok=b"Hello from" in r.content)
    except Exception as e:
        res.update(error=repr(e))
    os.write(1, (json.dumps(res) + "\n").encode())
    return res


def _calls(who, n):
    import requests
    with requests.Session() as s:
        for i in range(n):
            _call(s, "XVF-%s-%s-%d" % (_state["nonce"], who, i))


def _pool_init():
    import requests
    _state["session"] = requests.Session()


def _pool_call(i):
    _call(_state["session"], "XVF-%s-pool-%d" % (_state["nonce"], i))
    return os.getpid()


def _proc_main(who):
    _calls(who, 3)


def _leave(code):
    """How a forked child ends (see --exit-mode)."""
    if _state["exit_mode"] == "os_exit":
        os._exit(code)
    sys.exit(code)


def child(port, nonce, exit_mode):
    import multiprocessing
    import requests
    _state.update(port=port, nonce=nonce, exit_mode=exit_mode)
    status = 0
    parent_session = requests.Session()
    _call(parent_session, "XVF-%s-parent-0" % nonce)

    # A child that carries on over the parent's keep-alive connection (the
    # parent never touches that session again): its calls are the child's.
    inh_session = requests.Session()
    _call(inh_session, "XVF-%s-parent-inh" % nonce)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(2):
                _call(inh_session, "XVF-%s-inherit-%d" % (nonce, i))
        except Exception:
            code = 2
        _leave(code)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        status = 1
        os.write(2, b"inheriting child exited with status %d\n" % st)

    pids = []
    for k in range(3):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if k == 2:
                    g = os.fork()
                    if g == 0:
                        try:
                            _calls("grandchild", 2)
                        except Exception:
                            _leave(2)
                        _leave(0)
                    _calls("child2", 4)
                    _, st = os.waitpid(g, 0)
                    code = 0 if st == 0 else 3
                else:
                    _calls("child%d" % k, 4)
            except Exception:
                code = 2
            _leave(code)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        if st != 0:
            status = 1
            os.write(2, b"forked child exited with status %d\n" % st)

    # A burst of short-lived children, one call each, leaving at once: makes a
    # lost record (exit racing the agent's exporter) show up reliably.
    burst = []
    for k in range(BURST):
        pid = os.fork()
        if pid == 0:
            try:
                _calls("burst%d" % k, 1)
            except Exception:
                _leave(2)
            _leave(0)
        burst.append(pid)
    for pid in burst:
        _, st = os.waitpid(pid, 0)
        if st != 0:
            status = 1
            os.write(2, b"burst child exited with status %d\n" % st)

    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(3, initializer=_pool_init)
    pool.map(_pool_call, range(12), chunksize=1)
    pool.close()
    pool.join()
    procs = [ctx.Process(target=_proc_main, args=("mp%d" % i,)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.exitcode != 0:
            status = 1
            os.write(2, b"multiprocessing.Process exit code %r\n" % (p.exitcode,))

    _call(parent_session, "XVF-%s-parent-1" % nonce)
    with requests.Session() as s:
        _call(s, "XVF-%s-parent-2" % nonce)
    parent_session.close()
    sys.exit(status)


def expected_markers(nonce):
    m = ["parent-0", "parent-1", "parent-2"]
    m += ["child%d-%d" % (k, i) for k in range(3) for i in range(4)]
    m += ["grandchild-%d" % i for i in range(2)]
    m += ["burst%d-0" % k for k in range(BURST)]
    m += ["parent-inh", "inherit-0", "inherit-1"]
    m += ["pool-%d" % i for i in range(12)]
    m += ["mp%d-%d" % (k, i) for k in range(2) for i in range(3)]
    return {"XVF-%s-%s" % (nonce, x) for x in m}


def main():
    if "--child" in sys.argv:
        child(int(xvtest.arg_value("--port")), xvtest.arg_value("--nonce"),
              xvtest.arg_value("--exit-mode", "exit"))
        return
    lib = xvtest.lib_from_argv()
    exit_mode = xvtest.arg_value("--exit-mode", "exit")
    if exit_mode not in ("exit", "os_exit"):
        xvtest.fatal("--exit-mode must be exit or os_exit")
    log("forked children leave with %s" % ("sys.exit" if exit_mode == "exit" else "os._exit"))
    nonce = uuid.uuid4().hex[:8]
    expected = expected_markers(nonce)
    with xvtest.Mock() as m:
        trace = m.path("trace.jsonl")
        env = xvtest.client_env(ca=m.ca, lib=lib, trace_file=trace)
        rc, out, err = xvtest.run([xvtest.PYTHON, os.path.abspath(__file__), "--child",
                                   "--port", str(m.tls_port), "--nonce", nonce,
                                   "--exit-mode", exit_mode],
                                  env, timeout=180)
        check(rc is not None, "client and its workers finished within 180 s (no hang)")
        check(rc == 0, "client exit status 0 (got %r; stderr tail %r)"
              % (rc, err.decode("utf-8", "replace")[-600:]))
        calls = []
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                calls.append(json.loads(line))
            except ValueError:
                check(False, "client output line is JSON: %r" % line[:200])
        errors = [c for c in calls if c.get("error")]
        check(not errors, "no call raised (got %s)" % errors[:3])
        got = [c["marker"] for c in calls]
        check(sorted(got) == sorted(expected),
              "the client made each of the %d calls once (got %d; missing %s)"
              % (len(expected), len(got), sorted(expected - set(got))[:5]))
        bad = [c for c in calls if c.get("status") != 200 or not c.get("ok") or not c.get("trace")]
        check(not bad, "every call got a 200 with X-Xenovia-Trace-Id (bad: %s)" % bad[:3])

        recs = xvtest.wait_records(trace, len(expected), timeout=10)
        by_marker, strays = {}, []
        for rec in recs:
            mk = xvtest.record_marker(rec, "XVF-%s-" % nonce)
            (by_marker.setdefault(mk, []) if mk else strays).append(rec)
        missing = sorted(expected - set(by_marker))
        dup = sorted(k for k, v in by_marker.items() if len(v) > 1)
        check(not missing, "a record for every call (missing %d: %s)" % (len(missing), missing))
        check(not dup, "no call recorded twice (duplicated %d: %s)" % (len(dup), dup))
        check(not strays, "no record without a call marker (got %d)" % len(strays))
        check(len(recs) == len(expected), "%d records (got %d)" % (len(expected), len(recs)))
        ids = [r.get("trace_id") for r in recs]
        check(all(ids) and len(set(ids)) == len(ids),
              "trace ids present and unique (%d ids, %d distinct)" % (len(ids), len(set(ids))))
        mism, wrong_pid = [], []
        for c in calls:
            rs = by_marker.get(c["marker"], [])
            if len(rs) != 1:
                continue
            if rs[0].get("trace_id") != c.get("trace"):
                mism.append((c["marker"], c.get("trace"), rs[0].get("trace_id")))
            if rs[0].get("pid") != c["pid"]:
                wrong_pid.append((c["marker"], c["pid"], rs[0].get("pid")))
        check(not mism, "each stamped trace header equals its record's trace_id (mismatch: %s)"
              % mism[:3])
        check(not wrong_pid, "each record's pid is the calling process's (wrong: %s)" % wrong_pid[:3])
        bad_rec = [(xvtest.record_marker(r, "XVF-"), r.get("status_code"), r.get("error"))
                   for r in recs if r.get("status_code") != 200 or r.get("error")]
        check(not bad_rec, "every record has status_code 200 and no error (bad: %s)" % bad_rec[:5])
        reqs = [q for q in m.requests() if q["target"] == "/v1/chat/completions"]
        check(len(reqs) == len(expected), "the mock received %d calls (got %d)"
              % (len(expected), len(reqs)))
        xl = xvtest.xenovia_lines(err)
        check(not xl, "no xenovia line on stderr (got %r)" % xl[:5])
    xvtest.finish()


if __name__ == "__main__":
    main()
