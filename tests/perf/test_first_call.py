#!/usr/bin/env python3
"""test_first_call.py — the first API call of a process touches at most 1 MiB
of new pages of the agent, and maps at most three 64 KiB windows of its code
over plain HTTP, two over TLS (issue 9; not timed).

Runs first_call (tests/perf/first_call.c) without and with
LD_PRELOAD=libxenovia.so, five times each, and compares the minimum minor-fault
counts around the first call: (agent - none) * page size must stay <= 1 MiB.
Also asserts the agent really inspected the call (the response is stamped
with X-Xenovia-Trace-Id and one record is written), so the check cannot pass
by measuring nothing. Before issue 9 the session store's free lists wrote
every slot of its ~6 MB at this call (~1,584 faults).

Then the same over TLS (first_call tls CERT KEY, a throwaway certificate made
with the openssl command): start-up, the handshake and the call must map no
more of the agent's code than the two 64 KiB windows preload/hot_functions.txt's
first group is laid out in (tests/perf/test_start.py checks the layout; this
checks the list names what the call runs: a stale list maps a third window).

Usage: test_first_call.py FIRST_CALL_BINARY LIBXENOVIA
"""
import os
import subprocess
import sys
import tempfile

LIMIT = 1 << 20


# The agent's code a first (plain HTTP) call maps: start-up's and the first
# group of preload/hot_functions.txt within two 64 KiB windows, the plain
# path's own functions (group 2) in a third. 272 KiB on 8 Dec 2026 with the
# list gone stale (functions the call ran were missing from it), 192 after
# it was regenerated.
CODE_LIMIT_KIB = 3 * 64
# Over TLS (the list's first group is the bench client's one TLS call):
# start-up and that group, two windows.
TLS_CODE_LIMIT_KIB = 2 * 64


def run(binary, env, args=()):
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit("first_call failed (%d): %s" % (out.returncode, out.stderr))
    fields = dict(kv.split("=") for kv in out.stdout.split())
    return (int(fields["faults"]), int(fields["rss_kib"]), int(fields["stamped"]), out.stderr,
            int(fields["code_kib"]))


def main():
    binary, lib = sys.argv[1], sys.argv[2]
    if not os.path.exists(lib):
        print("skipped: %s not built" % lib)
        sys.exit(77)
    page = os.sysconf("SC_PAGE_SIZE")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("XENOVIA_") and k != "LD_PRELOAD"}
    with tempfile.TemporaryDirectory() as tmp:
        none, agent, code = [], [], []
        for i in range(5):
            f, r, s, _, _ = run(binary, base)
            assert s == 0, "stamped without the agent?"
            none.append((f, r))
            trace = os.path.join(tmp, "t%d.jsonl" % i)
            env = dict(base, LD_PRELOAD=lib, XENOVIA_TRACE_FILE=trace)
            f, r, s, err, ck = run(binary, env)
            code.append(ck)
            assert s == 1, "the agent did not stamp the response: %s" % err
            with open(trace) as fh:
                lines = fh.read().splitlines()
            assert len(lines) == 1, "want one record, got %d" % len(lines)
            agent.append((f, r))
    fn, fa = min(x[0] for x in none), min(x[0] for x in agent)
    added = (fa - fn) * page
    print("first API call: faults none %s agent %s; added %d faults = %.0f KiB (limit %d KiB); "
          "RSS added (min) %d KiB"
          % ([x[0] for x in none], [x[0] for x in agent], fa - fn, added / 1024.0, LIMIT // 1024,
             min(x[1] for x in agent) - min(x[1] for x in none)))
    assert added <= LIMIT, "the first API call touched %d KiB of new pages" % (added // 1024)
    print("the agent's code mapped after the first call: %s KiB (limit %d KiB)"
          % (code, CODE_LIMIT_KIB))
    assert 0 < min(code) <= CODE_LIMIT_KIB, \
        "the first call ran code in more 64 KiB windows than its list places it in: " \
        "regenerate preload/hot_functions.txt (scripts/hot_functions.sh)"
    tls_code(binary, lib, base)
    print("ok")


def tls_code(binary, lib, base):
    """The first TLS call's code: within the first group's two windows."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                               "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                              capture_output=True, text=True, timeout=30)
        assert made.returncode == 0, "openssl req failed: %s" % made.stderr
        code = []
        for i in range(3):
            trace = os.path.join(tmp, "t%d.jsonl" % i)
            env = dict(base, LD_PRELOAD=lib, XENOVIA_TRACE_FILE=trace)
            _, _, s, err, ck = run(binary, env, ("tls", cert, key))
            assert s == 1, "TLS: the agent did not stamp the response: %s" % err
            with open(trace) as fh:
                assert len(fh.read().splitlines()) == 1, "TLS: want one record"
            code.append(ck)
        print("the agent's code mapped after a first TLS call: %s KiB (limit %d KiB)"
              % (code, TLS_CODE_LIMIT_KIB))
        assert 0 < min(code) <= TLS_CODE_LIMIT_KIB, \
            "the first TLS call ran code outside the first group's two 64 KiB windows: " \
            "regenerate preload/hot_functions.txt (scripts/hot_functions.sh)"


if __name__ == "__main__":
    main()
