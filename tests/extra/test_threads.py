#!/usr/bin/python3
"""test_threads.py — acceptance 4 (threads) of issue 2: 16 threads x 20 calls in
one Python process under the agent; every call has exactly one record, trace ids
are unique, every stamped X-Xenovia-Trace-Id equals its record's trace_id, and
nothing hangs.

The client (this file with --child) starts 16 threads behind a barrier; even
threads use one `requests.Session` each, odd threads one `http.client.HTTPSConnection`
each (keep-alive: one TLS connection per thread). Every 4th call is a stream
with stream_options.include_usage. Each call's user message carries a unique
marker (XVT-<nonce>-T<t>-C<c>) that the record's `messages` field must carry.
Every 5th call is followed, on the same connection, by a non-API download of a
few hundred KiB (its body read in 10 KiB pieces: the agent's lean reads, 16
threads at once): each body must arrive whole and unstamped, and the chat call
after it is still inspected. The mock must see exactly 16 TLS connections
(keep-alive survived the agent).

Usage: test_threads.py --lib build/preload/libxenovia.so   (exit 77 when missing)
"""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402

THREADS = 16
CALLS = 20
MODEL = "gpt-4o-mini"


def dl_size(t, c):
    """The download after call c of thread t: a few 16 KiB records and a tail."""
    return 196608 + 4099 * t + 17 * c


def expected_sha(n):
    """sha256 of mock_upstream's deterministic /download/<n> payload."""
    import hashlib
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "mock_upstream", os.path.join(xvtest.INTEG, "mock_upstream.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    h = hashlib.sha256()
    for block in mod.download_bytes(n):
        h.update(block)
    return h.hexdigest()


def child(port, nonce):
    """Runs under the agent: 16 threads x 20 calls; prints a JSON list of results."""
    import http.client
    import ssl
    import threading
    import requests

    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    base = "https://127.0.0.1:%d" % port
    path = "/v1/chat/completions"

    import hashlib

    def body_for(t, c):
        marker = "XVT-%s-T%02d-C%02d" % (nonce, t, c)
        stream = c % 4 == 3
        b = {"model": MODEL, "messages": [
            {"role": "system", "content": "terse"},
            {"role": "user", "content": "call %s please" % marker}]}
        if stream:
            b["stream"] = True
            b["stream_options"] = {"include_usage": True}
        return marker, stream, b

    def download(t, c, get):
        n = dl_size(t, c)
        status, headers, chunks = get("/download/%d" % n)
        h = hashlib.sha256()
        got = 0
        for piece in chunks:
            h.update(piece)
            got += len(piece)
        return {"download": n, "status": status, "len": got, "sha256": h.hexdigest(),
                "xv": sorted(k.lower() for k in headers if k.lower().startswith("x-xenovia"))}

    def worker(t):
        out = []
        try:
            barrier.wait(timeout=60)
            if t % 2 == 0:
                with requests.Session() as s:
                    def get(target):
                        r = s.get(base + target, stream=True, timeout=60)
                        return r.status_code, r.headers, r.iter_content(10240)
                    for c in range(CALLS):
                        marker, stream, b = body_for(t, c)
                        r = s.post(base + path, json=b, timeout=60,
                                   headers={"Authorization": "Bearer sk-test-threads"})
                        data = r.content
                        out.append({"marker": marker, "stream": stream, "status": r.status_code,
                                    "trace": r.headers.get("X-Xenovia-Trace-Id"),
                                    "ok": (b"[DONE]" in data) if stream else
                                          (b"Hello from" in data)})
                        if c % 5 == 2:
                            out.append(download(t, c, get))
            else:
                ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
                try:
                    for c in range(CALLS):
                        marker, stream, b = body_for(t, c)
                        conn.request("POST", path, body=json.dumps(b).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer sk-test-threads"})
                        r = conn.getresponse()
                        data = r.read()
                        out.append({"marker": marker, "stream": stream, "status": r.status,
                                    "trace": r.getheader("X-Xenovia-Trace-Id"),
                                    "ok": (b"[DONE]" in data) if stream else
                                          (b"Hello from" in data)})
                        if c % 5 == 2:
                            def get(target):
                                conn.request("GET", target)
                                g = conn.getresponse()
                                return (g.status, dict(g.getheaders()),
                                        iter(lambda: g.read(10240), b""))
                            out.append(download(t, c, get))
                finally:
                    conn.close()
        except Exception as e:  # reported, counted as missing calls by the parent
            out.append({"marker": None, "error": "thread %d: %r" % (t, e)})
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(json.dumps(results))


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
                                  env, timeout=240)
        check(rc is not None, "client finished within 240 s (no hang)")
        check(rc == 0, "client exit status 0 (got %r; stderr tail %r)"
              % (rc, err.decode("utf-8", "replace")[-600:]))
        try:
            results = json.loads(out)
        except ValueError:
            results = []
        errors = [r["error"] for r in results if r.get("error")]
        check(not errors, "no client thread raised (got %s)" % errors[:5])
        dls = [r for r in results if r.get("download")]
        want_dls = THREADS * len([c for c in range(CALLS) if c % 5 == 2])
        check(len(dls) == want_dls, "every thread's downloads done (%d of %d)"
              % (len(dls), want_dls))
        bad_dl = [r for r in dls if r["status"] != 200 or r["len"] != r["download"]
                  or r["xv"] or r["sha256"] != expected_sha(r["download"])]
        check(not bad_dl, "each download arrived whole, byte for byte, unstamped (bad %d: %s)"
              % (len(bad_dl), [{k: r[k] for k in ("download", "status", "len", "xv")}
                               for r in bad_dl[:3]]))
        calls = [r for r in results if r.get("marker")]
        expected = {"XVT-%s-T%02d-C%02d" % (nonce, t, c) for t in range(THREADS) for c in range(CALLS)}
        check(len(calls) == THREADS * CALLS and {r["marker"] for r in calls} == expected,
              "client completed all %d calls (got %d)" % (THREADS * CALLS, len(calls)))
        bad = [r for r in calls if r["status"] != 200 or not r["ok"]]
        check(not bad, "every call got a complete 200 response (bad: %s)" % bad[:3])
        nohdr = [r["marker"] for r in calls if not r["trace"]]
        check(not nohdr, "every response carries X-Xenovia-Trace-Id (missing on %d: %s)"
              % (len(nohdr), nohdr[:5]))

        recs = xvtest.wait_records(trace, len(expected), timeout=10)
        by_marker = {}
        strays = []
        for rec in recs:
            mk = xvtest.record_marker(rec, "XVT-%s-" % nonce)
            if mk is None:
                strays.append(rec)
            else:
                by_marker.setdefault(mk, []).append(rec)
        missing = sorted(expected - set(by_marker))
        dup = sorted(k for k, v in by_marker.items() if len(v) > 1)
        check(len(recs) == len(expected),
              "%d records for %d calls (got %d)" % (len(expected), len(expected), len(recs)))
        check(not missing, "a record for every call (missing %d: %s)" % (len(missing), missing[:5]))
        check(not dup, "no call recorded twice (duplicated %d: %s)" % (len(dup), dup[:5]))
        check(not strays, "no record without a call marker (got %d)" % len(strays))
        ids = [r.get("trace_id") for r in recs]
        check(all(ids) and len(set(ids)) == len(ids),
              "trace ids present and unique (%d ids, %d distinct)" % (len(ids), len(set(ids))))
        mism = []
        for r in calls:
            rs = by_marker.get(r["marker"], [])
            if len(rs) == 1 and rs[0].get("trace_id") != r["trace"]:
                mism.append((r["marker"], r["trace"], rs[0].get("trace_id")))
        check(not mism, "each stamped trace header equals its record's trace_id (mismatch %d: %s)"
              % (len(mism), mism[:3]))
        wrong = []
        for r in calls:
            rs = by_marker.get(r["marker"], [])
            if len(rs) == 1:
                rec = rs[0]
                if (rec.get("status_code") != 200 or rec.get("stream") is not r["stream"]
                        or rec.get("model") != MODEL or rec.get("request_type") != "chat_completions"
                        or rec.get("error")):
                    wrong.append({k: rec.get(k) for k in ("status_code", "stream", "model",
                                                          "request_type", "error")})
        check(not wrong, "records say chat_completions, 200, right model and stream flag, no error "
              "(wrong %d: %s)" % (len(wrong), wrong[:3]))
        leaked = [r for r in recs if "sk-test-threads" in json.dumps(r)]
        check(not leaked, "no record contains the API key")

        reqs = [q for q in m.requests() if q["target"] == "/v1/chat/completions"]
        check(len(reqs) == len(expected), "the mock received %d calls (got %d)"
              % (len(expected), len(reqs)))
        conns = {q["conn"] for q in m.requests()}
        check(len(conns) == THREADS, "keep-alive kept: %d TLS connections for %d threads (got %d)"
              % (THREADS, THREADS, len(conns)))
        xl = xvtest.xenovia_lines(err)
        check(not xl, "no xenovia line on stderr (got %r)" % xl[:5])
    xvtest.finish()


if __name__ == "__main__":
    main()
