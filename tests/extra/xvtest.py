"""xvtest.py — shared plumbing for the tests in tests/extra/ (acceptance 3, 4, 5).

What it is: finding libxenovia.so (exit 77 when it is not built), a throwaway
test CA, the integration mock upstream (tests/integration/mock_upstream.py,
plain + TLS on kernel-chosen 127.0.0.1 ports) started per test and killed by
pid, a clean environment per client (this machine exports SSL_CERT_FILE,
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE globally; every client here gets them
set to the test CA or removed), and readers for the trace file.

Invariants: nothing started here outlives the test (every child is killed by
pid in a finally block, every wait is bounded); nothing reaches beyond
127.0.0.1. Run with /usr/bin/python3 (Debian's requests/httpx serve only it).

Thread safety: none needed; one test process uses it from one thread.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INTEG = os.path.join(ROOT, "tests", "integration")
PYTHON = "/usr/bin/python3"
SKIP = 77

# Variables a client must not inherit from the developer's shell or the machine.
_SCRUB = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
          "NODE_EXTRA_CA_CERTS",
          "LD_PRELOAD", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
          "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")

_failures = []


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    """Record a failed expectation (the test goes on, then exits 1)."""
    if cond:
        log("ok:   " + msg)
    else:
        log("FAIL: " + msg)
        _failures.append(msg)
    return cond


def fatal(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def finish():
    """Exit 0 when every check passed, else 1 with a summary."""
    if _failures:
        log("%d check(s) failed:" % len(_failures))
        for f in _failures:
            log("  - " + f)
        sys.exit(1)
    log("all checks passed")
    sys.exit(0)


def lib_from_argv():
    """The --lib PATH argument (or $XV_LIB, or the default build dir); exit 77 when missing."""
    lib = os.environ.get("XV_LIB") or os.path.join(ROOT, "build", "preload", "libxenovia.so")
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--lib" and i + 1 < len(argv):
            lib = argv[i + 1]
        elif a.startswith("--lib="):
            lib = a[len("--lib="):]
    lib = os.path.abspath(lib)
    if not os.path.isfile(lib):
        print("SKIP: libxenovia.so not found at %s (build it first)" % lib, flush=True)
        sys.exit(SKIP)
    return lib


def arg_value(name, default=None):
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return default


def client_env(ca=None, lib=None, trace_file=None, extra=None):
    """A clean environment for one client: CA variables pointing at `ca` (or
    absent), LD_PRELOAD only when `lib` is given, no XENOVIA_* from outside."""
    env = {k: v for k, v in os.environ.items()
           if k not in _SCRUB and not k.startswith("XENOVIA_")}
    if ca:
        env["SSL_CERT_FILE"] = ca
        env["REQUESTS_CA_BUNDLE"] = ca
        env["CURL_CA_BUNDLE"] = ca
    if lib:
        env["LD_PRELOAD"] = lib
        # The TSan runs (ctest -L tsan) preload the sanitizer runtime first.
        if os.environ.get("XV_PRELOAD_FIRST"):
            env["LD_PRELOAD"] = os.environ["XV_PRELOAD_FIRST"] + ":" + lib
        env["XENOVIA_TRACE_FILE"] = trace_file or os.devnull
        env["XENOVIA_EXPORT_TIMEOUT_MS"] = "5000"
    if extra:
        env.update(extra)
    return env


def run(cmd, env, timeout=120, stdin=None, cwd=None):
    """Run a command to completion with a hard timeout (the process group is
    killed on expiry). Returns (rc, stdout bytes, stderr bytes); rc is None on timeout."""
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE if stdin is not None else
                         subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        return None, out, err


def read_records(path):
    """Every JSON line of a trace file (a missing file is no records)."""
    recs = []
    if not os.path.exists(path):
        return recs
    with open(path, "r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                fatal("%s line %d is not JSON: %r" % (path, n, line[:200]))
    return recs


def wait_records(path, want, timeout=10.0):
    """Records of the trace file once there are at least `want` (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = read_records(path)
        if len(recs) >= want or time.monotonic() > deadline:
            return recs
        time.sleep(0.05)


def xenovia_lines(stderr_bytes):
    """stderr lines that mention the agent."""
    return [l for l in stderr_bytes.decode("utf-8", "replace").splitlines()
            if "xenovia" in l.lower()]


def record_marker(rec, prefix):
    """The marker token (word starting with `prefix`) in a record's messages, or None."""
    msgs = rec.get("messages")
    text = json.dumps(msgs) if msgs is not None else ""
    i = text.find(prefix)
    if i < 0:
        return None
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] in "-_"):
        j += 1
    return text[i:j]


class Mock:
    """The integration mock upstream with a fresh CA, plain and TLS listeners.

    Use as a context manager: `with Mock() as m: m.port, m.tls_port, m.ca`.
    `m.requests()` returns the mock's request log (one dict per request)."""

    def __init__(self, max_seconds=600):
        self.max_seconds = max_seconds
        self.dir = None
        self.proc = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="xv-extra-")
        certs = os.path.join(self.dir, "certs")
        rc, out, err = run(["bash", os.path.join(INTEG, "certs.sh"), certs],
                           client_env(), timeout=60)
        if rc != 0:
            self.__exit__(None, None, None)
            fatal("certs.sh failed: %s" % err.decode("utf-8", "replace"))
        self.ca = os.path.join(certs, "ca.pem")
        self.cert = os.path.join(certs, "server.pem")
        self.key = os.path.join(certs, "server.key")
        # "upstream*": the secret sweep (tests/sweep) skips the mock's log of the
        # app's own requests, credentials included; only the agent's output counts
        self.log_path = os.path.join(self.dir, "upstream.jsonl")
        pf = os.path.join(self.dir, "port")
        tpf = os.path.join(self.dir, "tls_port")
        self.stderr_f = open(os.path.join(self.dir, "mock.stderr"), "wb")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(INTEG, "mock_upstream.py"), "--port-file", pf,
             "--tls-port-file", tpf, "--cert", self.cert, "--key", self.key,
             "--log", self.log_path, "--max-seconds", str(self.max_seconds)],
            env=client_env(), stdin=subprocess.DEVNULL, stdout=self.stderr_f,
            stderr=self.stderr_f)
        deadline = time.monotonic() + 20
        while not (os.path.exists(pf) and os.path.exists(tpf)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                fatal("mock upstream did not start")
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read())
        with open(tpf) as f:
            self.tls_port = int(f.read())
        return self

    def requests(self):
        return read_records(self.log_path)

    def path(self, name):
        return os.path.join(self.dir, name)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "stderr_f", None):
            self.stderr_f.close()
        if self.dir and not os.environ.get("XV_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir:
            log("kept temporary files in " + self.dir)
        return False
