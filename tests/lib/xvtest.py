"""xvtest.py — the one Python helper of the test suite (tests/lib/; used by
tests/extra/ and tests/hostsafe/, importable by any test with
`sys.path.insert(0, <tests>/lib)`).

What it is: finding libxenovia.so (exit 77 when it is not built), a throwaway
test CA, the integration mock upstream (tests/integration/mock_upstream.py,
plain + TLS on kernel-chosen 127.0.0.1 ports) started per test and killed by
pid, a clean environment per client (this machine exports SSL_CERT_FILE,
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE globally; every client here gets them
set to the test CA or removed), readers for the trace file (lenient, and strict UTF-8 JSON Lines), a bounded
run that also reports the child's CPU time (`run_timed`), and a byte-exact
scripted upstream in the test process (`Server`, `read_request`,
`chat_handler`) for the host-safety tests.

Invariants: nothing started here outlives the test (every child is killed by
pid in a finally block, every wait is bounded); nothing reaches beyond
127.0.0.1. Run with /usr/bin/python3 (Debian's requests/httpx serve only it).

Thread safety: the reporting functions are for the test's main thread;
`Server` runs one daemon thread per connection (its handler touches only its
connection and `seen`).
"""

import json
import os
import shutil
import signal
import subprocess
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))   # tests/lib
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


QUIET = False   # a test may set xvtest.QUIET = True: only failed checks are printed
_count = 0


def check(cond, msg):
    """Record a failed expectation (the test goes on, then exits 1)."""
    global _count
    _count += 1
    if cond:
        if not QUIET:
            log("ok:   " + msg)
    else:
        log("FAIL: " + msg)
        _failures.append(msg)
    return cond


def summary_exit():
    """Print "N passed, M failed" and exit 1 when any check failed, else 0."""
    log("%d passed, %d failed" % (_count - len(_failures), len(_failures)))
    sys.exit(1 if _failures else 0)


def failures():
    """The failed checks so far (for drivers that report their own way)."""
    return list(_failures)


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


# ---- the host-safety plumbing (formerly tests/hostsafe/hs.py) ----

def lib_or_skip(path):
    if not os.path.isfile(path):
        log("SKIP: %s is not built" % path)
        sys.exit(SKIP)
    return os.path.abspath(path)


def artifact_dir(name):
    """A fresh directory for this test's files under $XV_ARTIFACTS (the build
    tree, so the secret sweep sees them) or the system temp dir."""
    base = os.environ.get("XV_ARTIFACTS")
    if base:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix=name + "-", dir=base)
    return tempfile.mkdtemp(prefix="xv-" + name + "-")


def clean_env():
    """The environment of the host-safety runs: no agent or OTel settings, no
    proxies, no CA overrides, C.UTF-8."""
    env = {}
    for k, v in os.environ.items():
        if k.startswith(("XENOVIA_", "OTEL_")) or k in ("LD_PRELOAD", "LD_AUDIT"):
            continue
        if k.lower().endswith("_proxy"):
            continue
        env[k] = v
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["LC_ALL"] = "C.UTF-8"
    for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(k, None)
    return env


def run_timed(argv, env, timeout=120, stdin=None, executable=None):
    """Run argv; returns (exit status, stdout bytes, stderr bytes, cpu seconds)."""
    p = subprocess.Popen(argv, env=env, executable=executable, stdin=subprocess.PIPE if stdin is not None else
                         subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}

    def reader(name, f):
        out[name] = f.read()

    ts = [threading.Thread(target=reader, args=(n, f), daemon=True)
          for n, f in (("o", p.stdout), ("e", p.stderr))]
    for t in ts:
        t.start()
    if stdin is not None:
        try:
            p.stdin.write(stdin)
            p.stdin.close()
        except BrokenPipeError:
            pass
    deadline = time.time() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            os.kill(p.pid, signal.SIGKILL)
            pid, status, ru = os.wait4(p.pid, 0)
            log("FAIL: %s timed out after %ds" % (argv[0], timeout))
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in ts:
        t.join(10)
    return p.returncode, out.get("o", b""), out.get("e", b""), ru.ru_utime + ru.ru_stime


class Server:
    """A scripted upstream: handler(conn, server) runs per accepted
    connection on its own thread; `seen` collects what handlers record."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.seen = []
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(60)
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            self.handler(c, self)
        except Exception as e:  # a handler error shows up as a failed exchange
            self.seen.append(("handler-error", repr(e)))
        finally:
            c.close()

    def stop(self):
        self.sock.close()

    def seen_after(self, before, timeout=5.0):
        """What a handler recorded after the first `before` entries (handlers
        record when their connection closes), once it is there; b"" if it
        never came within the timeout."""
        deadline = time.monotonic() + timeout
        while len(self.seen) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.seen[before] if len(self.seen) > before else b""


def read_request(c):
    """One HTTP/1.1 request with a Content-Length body: (head bytes, headers dict, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, {}, b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = c.recv(1 << 20)
        if not d:
            break
        rest += d
    return head, hdrs, rest[:n]


def strict_lines(path):
    """Every line of a JSON Lines file, decoded as strict UTF-8 and parsed
    with Python's json (which rejects lone surrogates only when asked: we
    re-encode to catch them). Returns (records, problems)."""
    recs, problems = [], []
    if not os.path.exists(path):
        return recs, ["%s missing" % path]
    data = open(path, "rb").read()
    for i, raw in enumerate(data.split(b"\n")):
        if not raw:
            continue
        try:
            text = raw.decode("utf-8", errors="strict")
            obj = json.loads(text)
            json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="strict")
            recs.append(obj)
        except Exception as e:
            problems.append("line %d: %s: %r" % (i + 1, e, raw[:120]))
    return recs, problems


CHAT_REPLY = (b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",'
         b'"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},'
         b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
         b'"total_tokens":2}}')


def chat_handler(c, srv):
    """Answers every Content-Length-framed request on a keep-alive connection
    with CHAT_REPLY; appends all bytes received to srv.seen at close."""
    got = b""
    served = 0
    c.settimeout(10)
    while True:
        try:
            d = c.recv(65536)
        except OSError:
            break
        if not d:
            break
        got += d
        # answer each complete request (Content-Length framed) in turn
        while True:
            view = got[served:]
            he = view.find(b"\r\n\r\n")
            if he < 0:
                break
            n = 0
            for line in view[:he].split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            if len(view) < he + 4 + n:
                break
            served += he + 4 + n
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(CHAT_REPLY) + CHAT_REPLY)
    srv.seen.append(got)
