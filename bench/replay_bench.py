#!/usr/bin/python3
"""replay_bench.py — what replaying a 50-call suite from a cassette costs (issue 13).

Records N chat calls (python requests, one process, keep-alive) through the agent into a
fresh cassette against the integration mock, stops the mock, then times the same N calls
replayed with XENOVIA_RECORD_MODE=none (no network), and — for scale — the same N calls
made straight to the live mock without the agent. Prints the CPU time (user+sys of the
client process and every thread, the relay included) and wall time of each run, and the
replay's agent CPU per call. Usage: replay_bench.py LIB [N]. Not part of ctest.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(HERE, "..", "tests", "integration")
sys.path.insert(0, INTEG)
import run_matrix as rm  # noqa: E402

CLIENT = r'''
import sys, requests
s = requests.Session(); s.trust_env = False
base, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    r = s.post(base + "/v1/chat/completions", verify=ca, timeout=30,
               headers={"Authorization": "Bearer sk-bench"},
               json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "call %d" % i}]})
    assert r.status_code == 200, r.status_code
'''


def timed(argv, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main():
    lib = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    tmp = tempfile.mkdtemp(prefix="xv-replay-bench-")
    try:
        certs = rm.make_certs(tmp)
        mock = rm.Mock(tmp, certs)
        base = "https://127.0.0.1:%d" % mock.tport
        argv = ["/usr/bin/python3", "-c", CLIENT, base, certs["ca"], str(n)]
        cas = os.path.join(tmp, "cassette")
        env = rm.clean_env()
        plain = timed(argv, env)
        env_a = dict(env, LD_PRELOAD=lib, XENOVIA_TRACE_FILE=os.path.join(tmp, "t.jsonl"),
                     XENOVIA_CASSETTE=cas, XENOVIA_RECORD_MODE="once")
        rec = timed(argv, env_a)
        mock.stop()
        env_p = dict(env_a, XENOVIA_RECORD_MODE="none")
        play = timed(argv, env_p)
        print("Replay of a %d-call suite (python requests, TLS; CPU = client process, all threads):" % n)
        print("  %-34s CPU %7.3f s   wall %7.3f s" % ("live mock, no agent", plain[0], plain[1]))
        print("  %-34s CPU %7.3f s   wall %7.3f s" % ("recording through the agent", rec[0], rec[1]))
        print("  %-34s CPU %7.3f s   wall %7.3f s" % ("replay, mock stopped, no network", play[0], play[1]))
        print("  replay CPU over the live run: %+.3f s (%+.2f ms per call); goal: a 50-call suite "
              "replays in under 1 s of agent time -> %s" %
              (play[0] - plain[0], (play[0] - plain[0]) * 1000 / n,
               "met" if play[0] - plain[0] < 1.0 else "MISSED"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
