"""hs.py — plumbing shared by the host-safety tests (issue 7 classes 5-8).

What it is: a byte-exact scripted upstream on 127.0.0.1 (a thread in the
test process, one handler function per test), running a program with and
without the agent while measuring its CPU time (wait4 rusage), a strict
UTF-8 JSON Lines reader for trace files, and check/finish reporting.

Invariants: nothing reaches beyond 127.0.0.1; every child is waited for with
a timeout and killed by pid; the server thread is a daemon bound to a
kernel-chosen port and closed in stop().
Thread safety: the server runs one thread per connection; the handler
must only touch its own connection and the `seen` list (appends are atomic
in CPython).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

SKIP = 77
_fails = []


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    log(("ok:   " if cond else "FAIL: ") + msg)
    if not cond:
        _fails.append(msg)
    return cond


def finish():
    if _fails:
        log("%d check(s) failed:" % len(_fails))
        for f in _fails:
            log("  - " + f)
        sys.exit(1)
    log("all checks passed")
    sys.exit(0)


def lib_or_skip(path):
    if not os.path.isfile(path):
        log("SKIP: %s is not built" % path)
        sys.exit(SKIP)
    return os.path.abspath(path)


def artifact_dir(name):
    """A fresh directory for this test's files under $XV_ARTIFACTS (the build
    tree, so the secret sweep sees them) or the system temp dir."""
    import tempfile
    base = os.environ.get("XV_ARTIFACTS")
    if base:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix=name + "-", dir=base)
    return tempfile.mkdtemp(prefix="xv-" + name + "-")


def clean_env():
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


def run(argv, env, timeout=120, stdin=None, executable=None):
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
