#!/usr/bin/python3
"""test_fork_first.py — the agent registers its fork handlers only when a hook
first reaches its own work (issue 9: a process that never gets there pays
nothing for them). A program that forks before any such call, whose child
then makes two chat calls and leaves with _exit at once, must still have both
records written (the second only by the agent's exit flush); a vfork child that reaches the agent (a write to stderr) and
leaves with _exit must leave the parent's state alone; the parent's own call
after it is recorded once. Runs tests/extra/fork_first.c (built by CMake,
--prog) against the mock over plain HTTP.

With --no-kcmp the program first makes kcmp(2) fail (a seccomp filter, as
Docker's default profile does): the agent's other way of telling a vfork child
is checked by the same assertions.

Usage: test_fork_first.py --lib build/preload/libxenovia.so --prog PATH [--no-kcmp]
(exit 77 when the library is missing)
"""

import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402


def main():
    lib = xvtest.lib_from_argv()
    prog = xvtest.arg_value("--prog")
    check(prog and os.path.isfile(prog), "fork_first program built (--prog)")
    if not (prog and os.path.isfile(prog)):
        xvtest.finish()
    nonce = uuid.uuid4().hex[:12]
    with xvtest.Mock() as m:
        trace = m.path("traces.jsonl")
        env = xvtest.client_env(lib=lib, trace_file=trace)
        argv = [prog, str(m.port), nonce] + (["nokcmp"] if "--no-kcmp" in sys.argv else [])
        rc, out, err = xvtest.run(argv, env, timeout=60)
        check(rc == 0, "fork_first exits 0 (rc=%r, stderr=%r)" % (rc, err[-300:]))
        check(b"fork_first: vfork child" in err, "the vfork child wrote its line")
        recs = xvtest.wait_records(trace, 5, timeout=10)
        marks = {}
        for r in recs:
            mk = xvtest.record_marker(r, "FF-" + nonce)
            if mk:
                marks.setdefault(mk, []).append(r)
        log("records: %s" % sorted((k, len(v)) for k, v in marks.items()))
        for who in ("child", "child2", "inflight", "parent", "parent2"):
            got = marks.get("FF-%s-%s" % (nonce, who), [])
            check(len(got) == 1, "one record of the %s's call (got %d)" % (who, len(got)))
            if got:
                check(got[0].get("status_code") == 200 and got[0].get("response_content"),
                      "the %s's record is of a completed call" % who)
        check(len(recs) == 5, "no other record (got %d)" % len(recs))
        pids = {r.get("pid") for r in recs}
        check(len(pids) == 2, "the records carry two pids (%s)" % sorted(map(str, pids)))
        check(not xvtest.xenovia_lines(err), "no agent line on stderr: %r" % err[-300:])
    xvtest.finish()


if __name__ == "__main__":
    main()
