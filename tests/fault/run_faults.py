#!/usr/bin/python3
"""Fault injection driver (issue 7): the agent's own failures never show.

Clients: curl (plain HTTP, one process, a chat call then a streamed one on
one connection) and Python requests (TLS, one Session, the same two calls)
against tests/integration/mock_upstream.py on 127.0.0.1. Each runs once
without the agent (the reference), once under libxenovia-fault.so counting
the agent's calls of every kind (XV_FAULT_COUNTS), then once per N with
XV_FAULT=KIND:N for every kind fault.c knows: the Nth allocation the agent
makes fails with ENOMEM, or its Nth own open/write/read/pread/fstat/flock/
ftruncate/connect/send/recv/poll fails (EIO; write and flock also EINTR),
for N = 1, 2, … until a run in which the fault no longer fires (or N passed
the counted calls). Long ranges are sampled: every N up to DENSE (100), then a
stride that keeps each (client, kind) near PER_KIND (120) runs, always ending
past the last call. Each faulted run must: exit as the reference did, print
the same bytes on stdout, finish within CLIENT_TIMEOUT s and not die of a
signal. Prints one summary line per (client, kind): counted calls, runs,
faults fired.
Usage: run_faults.py LIBFAULT
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import run_matrix as rm  # noqa: E402

LIB = sys.argv[1] if len(sys.argv) > 1 else ""
if not os.path.isfile(LIB):
    print("SKIP: %s not built (configure with -DXV_FAULT=ON)" % LIB)
    sys.exit(77)
LIB = os.path.abspath(LIB)
PY = "/usr/bin/python3"
CLIENT_TIMEOUT = 30
DENSE = 100
PER_KIND = int(os.environ.get("XV_FAULT_PER_KIND", "120"))
KINDS = [("alloc", None), ("open", None), ("write", None), ("write", "EINTR"), ("read", None),
         ("pread", None), ("fstat", None), ("flock", None), ("ftruncate", None),
         ("connect", None), ("send", None), ("recv", None), ("poll", None)]
KEY = "sk-test-XENOVIA-SECRET-fault-1"

CHAT = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fault injection"}]}'
STREAM = ('{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},'
          '"messages":[{"role":"user","content":"fault injection stream"}]}')

REQUESTS_PROG = r'''
import sys, requests
base, ca, key = sys.argv[1], sys.argv[2], sys.argv[3]
s = requests.Session()
s.verify = ca
h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
for body in (sys.argv[4], sys.argv[5]):
    r = s.post(base + "/v1/chat/completions", data=body, headers=h, stream=True, timeout=20)
    print(r.status_code)
    for chunk in r.iter_content(chunk_size=None):
        sys.stdout.write(chunk.decode())
    print()
'''


def artifacts():
    import tempfile
    base = os.environ.get("XV_ARTIFACTS")
    if base:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix="fault-", dir=base)
    return tempfile.mkdtemp(prefix="xv-fault-")


def run(argv, env):
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=CLIENT_TIMEOUT)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        return "timeout", out, err


def schedule(count):
    """N values: all up to DENSE, then strided, always going one past count."""
    last = count + 1
    if last <= DENSE:
        return list(range(1, last + 1))
    ns = list(range(1, DENSE + 1))
    rest = PER_KIND - DENSE if PER_KIND > DENSE else 1
    step = max(1, (last - DENSE) // rest)
    ns += list(range(DENSE + step, last, step))
    ns.append(last)
    return ns


def main():
    tmp = artifacts()
    certs = rm.make_certs(tmp)
    log = open(os.path.join(tmp, "mock.stderr"), "wb")
    pfile, tfile = os.path.join(tmp, "port"), os.path.join(tmp, "tport")
    mock = subprocess.Popen([PY, os.path.join(rm.HERE, "mock_upstream.py"), "--port-file", pfile,
                             "--tls-port-file", tfile, "--cert", certs["cert"], "--key",
                             certs["key"], "--max-seconds", "590"],
                            stdout=subprocess.DEVNULL, stderr=log, env=rm.clean_env(),
                            start_new_session=True)
    fails = []
    try:
        deadline = time.monotonic() + 15
        while not (os.path.exists(pfile) and os.path.exists(tfile)):
            if mock.poll() is not None or time.monotonic() > deadline:
                print("FAIL: mock upstream did not start")
                return 1
            time.sleep(0.02)
        port, tport = int(open(pfile).read()), int(open(tfile).read())
        prog = os.path.join(tmp, "requests_client.py")
        with open(prog, "w") as f:
            f.write(REQUESTS_PROG)
        url = "http://127.0.0.1:%d/v1/chat/completions" % port
        clients = {
            "curl": ["curl", "-s", "-S", "--max-time", "20",
                     "-H", "Authorization: Bearer " + KEY, "-H", "Content-Type: application/json",
                     "--data-binary", CHAT, url, "--next", "-s", "-S", "--max-time", "20",
                     "-H", "Authorization: Bearer " + KEY, "-H", "Content-Type: application/json",
                     "--data-binary", STREAM, url],
            "requests": [PY, prog, "https://127.0.0.1:%d" % tport, certs["ca"], KEY, CHAT, STREAM],
        }
        for cname, argv in clients.items():
            env0 = rm.clean_env()
            for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                env0.pop(k, None)
            ref = run(argv, env0)
            if ref[0] != 0:
                print("FAIL: %s without the agent: exit %s %r" % (cname, ref[0], ref[2][-300:]))
                return 1
            trace = os.path.join(tmp, "trace-%s.jsonl" % cname)
            counts_file = os.path.join(tmp, "counts-%s" % cname)
            env = dict(env0, LD_PRELOAD=LIB, XENOVIA_TRACE_FILE=trace, XV_FAULT_COUNTS=counts_file)
            base = run(argv, env)
            if base[:2] != ref[:2]:
                fails.append("%s: differs under the fault library with no fault" % cname)
            counts = {}
            for line in open(counts_file).read().split("\n"):
                if line.strip():
                    k, v = line.split()
                    counts[k] = max(counts.get(k, 0), int(v))
            os.unlink(counts_file)
            for kind, err in KINDS:
                if os.environ.get("XV_FAULT_ONLY") and kind != os.environ["XV_FAULT_ONLY"]:
                    continue
                spec_kind = kind + (":" + err if err else "")
                fired = runs = 0
                for n in schedule(counts.get(kind, 0)):
                    hit = os.path.join(tmp, "hit")
                    if os.path.exists(hit):
                        os.unlink(hit)
                    spec = "%s:%d%s" % (kind, n, ":" + err if err else "")
                    fenv = dict(env, XV_FAULT=spec, XV_FAULT_HIT=hit)
                    fenv.pop("XV_FAULT_COUNTS", None)
                    rc, out, errb = run(argv, fenv)
                    runs += 1
                    did = os.path.exists(hit)
                    fired += did
                    if rc != ref[0] or out != ref[1]:
                        why = "signal %d" % -rc if isinstance(rc, int) and rc < 0 else "exit %s" % rc
                        fails.append("%s XV_FAULT=%s: %s (reference exit %s), stdout %s; stderr %r"
                                     % (cname, spec, why, ref[0],
                                        "same" if out == ref[1] else "differs", errb[-300:]))
                        print("FAIL: " + fails[-1], flush=True)
                        with open(os.path.join(tmp, "%s-%s.out" % (cname, spec)), "wb") as f:
                            f.write(out)
                        with open(os.path.join(tmp, "%s.ref" % cname), "wb") as f:
                            f.write(ref[1])
                    if not did and n > counts.get(kind, 0):
                        break
                print("%-8s %-12s calls %5d  runs %3d  faults fired %3d" %
                      (cname, spec_kind, counts.get(kind, 0), runs, fired), flush=True)
    finally:
        if mock.poll() is None:
            os.kill(mock.pid, signal.SIGTERM)
            try:
                mock.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(mock.pid, signal.SIGKILL)
                mock.wait(timeout=5)
        log.close()
    if fails:
        print("%d faulted run(s) differed from the run without the agent" % len(fails))
        return 1
    print("every faulted run matched the run without the agent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
