#!/usr/bin/python3
"""The agent never hurts its host: hostcheck (errno kept on every successful
hooked call, libc's errno on failures, EAGAIN on an empty non-blocking read, no
descriptor left behind) passes with and without the agent, with the same output,
against the mock upstream on 127.0.0.1.  Usage: test_host.py LIB HOSTCHECK"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import run_matrix as rm  # noqa: E402

LIB, EXE = sys.argv[1], sys.argv[2]
if not os.path.isfile(LIB):
    print("SKIP: %s not built" % LIB)
    sys.exit(77)
tmp = tempfile.mkdtemp(prefix="xv-host-")
mock = rm.Mock(tmp, rm.make_certs(tmp))
fails = 0
try:
    outs = {}
    for mode in ("none", "agent"):
        env = rm.clean_env()
        env["XENOVIA_TRACE_FILE"] = os.path.join(tmp, "t.jsonl")
        if mode == "agent":
            env["LD_PRELOAD"] = LIB
        p = subprocess.run([EXE, str(mock.port)], env=env, capture_output=True, timeout=60)
        outs[mode] = p.stdout.decode()
        print("--- %s (exit %d)\n%s%s" % (mode, p.returncode, outs[mode], p.stderr.decode()))
        if p.returncode != 0:
            fails += 1
    lines = lambda s: [l for l in s.splitlines() if not l.startswith("ok   no fd left")]
    if lines(outs["none"]) != lines(outs["agent"]):
        print("FAIL: output differs with the agent")
        fails += 1
    recs = open(os.path.join(tmp, "t.jsonl")).read().count('"trace_id"') if os.path.exists(
        os.path.join(tmp, "t.jsonl")) else 0
    if recs < 22:
        print("FAIL: expected >= 22 records from the agent run, got %d" % recs)
        fails += 1
finally:
    mock.stop()
print("%d passed, %d failed" % (3 - min(fails, 3), fails))
sys.exit(1 if fails else 0)
