#!/usr/bin/python3
"""test_non_api.py — acceptance 3 of issue 2: traffic that is not an OpenAI-style
call passes through the agent untouched and yields no trace record.

What it checks, each run once without and once with LD_PRELOAD=libxenovia.so
against tests/integration/mock_upstream.py on 127.0.0.1:
  * curl, HTTPS, a 100 MiB GET of /download/104857600: the sha256 of the body
    equals the mock's deterministic payload in both runs; the response header
    block is identical (no X-Xenovia-* stamped);
  * curl, plain HTTP, a 10 MiB download: same checks;
  * Python `requests` over HTTPS and plain HTTP: GET /plain, a streamed 4 MiB
    GET of /download/N, and a POST to a non-API path whose JSON body looks like
    a chat request (classification is by path, not by body): identical output;
  * the bytes the mock received (request line, headers in order, body) are the
    same with and without the agent;
  * one keep-alive connection (requests) mixing non-API requests (a 20 MiB
    download, GET /plain) with two chat calls: the non-API responses are
    untouched and unstamped, each chat call is stamped, and exactly the two
    chat calls have records;
  * the trace file gets no record, and no stderr line mentions xenovia.

Usage: test_non_api.py --lib build/preload/libxenovia.so   (exit 77 when missing)
"""

import hashlib
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402

BIG = 100 * 1024 * 1024
PLAIN_BIG = 10 * 1024 * 1024
PY_DL = 4 * 1024 * 1024 + 17

# The Python client: prints one JSON line per request (status, selected headers,
# every x-xenovia-* header, body length and sha256).
PY_CLIENT = r'''
import hashlib, json, sys, requests
base = sys.argv[1]
out = []
def note(name, r, body):
    out.append({"name": name, "status": r.status_code,
                "ctype": r.headers.get("content-type"),
                "clen": r.headers.get("content-length"),
                "xv": sorted(k.lower() for k in r.headers if k.lower().startswith("x-xenovia")),
                "len": len(body), "sha256": hashlib.sha256(body).hexdigest()})
with requests.Session() as s:
    r = s.get(base + "/plain", timeout=60)
    note("get_plain", r, r.content)
    r = s.get(base + "/download/%d" % int(sys.argv[2]), stream=True, timeout=60)
    h = hashlib.sha256(); n = 0
    for block in r.iter_content(65536):
        h.update(block); n += len(block)
    out.append({"name": "download", "status": r.status_code, "len": n, "sha256": h.hexdigest(),
                "xv": sorted(k.lower() for k in r.headers if k.lower().startswith("x-xenovia"))})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "NOTAPI marker"}]}
    r = s.post(base + "/plain", json=body, timeout=60)
    note("post_plain_chatlike", r, r.content)
    r = s.post(base + "/v1/models/list", json=body, timeout=60)
    note("post_unknown_path", r, r.content)
print(json.dumps(out, sort_keys=True))
'''


def mock_module():
    spec = importlib.util.spec_from_file_location(
        "mock_upstream", os.path.join(xvtest.INTEG, "mock_upstream.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expected_sha(mod, n):
    h = hashlib.sha256()
    for block in mod.download_bytes(n):
        h.update(block)
    return h.hexdigest()


def curl_download(m, url, lib, tag, with_ca):
    """curl URL | sha256sum, response header block dumped to a file."""
    trace = m.path("trace-%s.jsonl" % tag)
    hdr = m.path("headers-%s.txt" % tag)
    env = xvtest.client_env(ca=m.ca if with_ca else None, lib=lib, trace_file=trace)
    cmd = ["bash", "-c", 'set -o pipefail; curl -sS --fail --max-time 120 "$@" | sha256sum',
           "curl", "-D", hdr, "-o", "-"]
    if with_ca:
        cmd += ["--cacert", m.ca]
    cmd.append(url)
    rc, out, err = xvtest.run(cmd, env, timeout=180)
    headers = open(hdr, "rb").read() if os.path.exists(hdr) else b""
    return rc, out.decode().split(" ")[0].strip(), headers, err, trace


def mock_requests_between(m, a, b):
    """What the mock received for requests a..b-1 of its log, without the
    connection numbering (which depends on the order of runs)."""
    reqs = m.requests()[a:b]
    return [{k: r[k] for k in ("method", "target", "version", "headers", "body_b64", "tls")}
            for r in reqs]


MIXED_CLIENT = r'''
import hashlib, json, sys, requests
base, n = sys.argv[1], int(sys.argv[2])
out = []
chat = lambda mk: {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi " + mk}]}
with requests.Session() as s:
    for kind, arg in (("get", "/download/%d" % n), ("chat", "XVM-one"), ("get", "/plain"),
                      ("chat", "XVM-two"), ("get", "/download/%d" % (n // 3))):
        if kind == "get":
            r = s.get(base + arg, timeout=60)
        else:
            r = s.post(base + "/v1/chat/completions", json=chat(arg), timeout=60)
        out.append({"what": arg, "status": r.status_code, "len": len(r.content),
                    "sha256": hashlib.sha256(r.content).hexdigest(),
                    "trace": r.headers.get("X-Xenovia-Trace-Id")})
print(json.dumps(out))
'''
MIXED_DL = 20 * 1024 * 1024


def mixed_connection(m, lib, mod):
    """Non-API requests and chat calls on one keep-alive TLS connection."""
    base = "https://127.0.0.1:%d" % m.tls_port
    outs = {}
    for tag, l in (("none", None), ("agent", lib)):
        trace = m.path("trace-mixed-%s.jsonl" % tag)
        env = xvtest.client_env(ca=m.ca, lib=l, trace_file=trace)
        before = len(m.requests())
        rc, out, err = xvtest.run([xvtest.PYTHON, "-c", MIXED_CLIENT, base, str(MIXED_DL)],
                                  env, timeout=120)
        conns = {q["conn"] for q in m.requests()[before:]}
        try:
            res = json.loads(out)
        except ValueError:
            res = None
        outs[tag] = (rc, res, err, trace, conns)
        check(rc == 0 and res is not None, "mixed %s: client exit status 0 (got %r; stderr %r)"
              % (tag, rc, err.decode("utf-8", "replace")[-400:]))
    if outs["none"][1] is None or outs["agent"][1] is None:
        return
    none, agent = outs["none"][1], outs["agent"][1]
    strip = lambda res: [{k: v for k, v in r.items() if k != "trace"} for r in res]
    check(strip(none) == strip(agent),
          "mixed: every response identical with and without the agent (apart from the trace header)")
    check(agent[0]["sha256"] == expected_sha(mod, MIXED_DL) and
          agent[4]["sha256"] == expected_sha(mod, MIXED_DL // 3),
          "mixed: both downloads carry the mock's payload")
    check(all(r["trace"] is None for r in agent if not r["what"].startswith("XVM-")),
          "mixed: no non-API response stamped")
    chats = [r for r in agent if r["what"].startswith("XVM-")]
    check(all(r["trace"] for r in chats), "mixed: both chat responses stamped")
    check(len(outs["agent"][4]) == 1, "mixed: all five requests went over one connection "
          "under the agent (got %d connections)" % len(outs["agent"][4]))
    recs = xvtest.read_records(outs["agent"][3])
    marks = sorted(xvtest.record_marker(r, "XVM-") or "?" for r in recs)
    check(marks == ["XVM-one", "XVM-two"], "mixed: exactly the two chat calls have records (got %s)"
          % marks)
    ids = {xvtest.record_marker(r, "XVM-"): r.get("trace_id") for r in recs}
    check(all(ids.get(r["what"]) == r["trace"] for r in chats),
          "mixed: stamped trace ids equal the records' trace_id")
    check(not xvtest.xenovia_lines(outs["agent"][2]), "mixed: no xenovia line on stderr")


def main():
    lib = xvtest.lib_from_argv()
    mod = mock_module()
    with xvtest.Mock() as m:
        tls_base = "https://127.0.0.1:%d" % m.tls_port
        plain_base = "http://127.0.0.1:%d" % m.port

        # --- curl: 100 MiB over TLS, 10 MiB over plain HTTP -------------------
        for name, url, n, tls in (
                ("curl_https_100MiB", tls_base + "/download/%d" % BIG, BIG, True),
                ("curl_http_10MiB", plain_base + "/download/%d" % PLAIN_BIG, PLAIN_BIG, False)):
            want = expected_sha(mod, n)
            runs = {}
            for tag, l in (("none", None), ("agent", lib)):
                before = len(m.requests())
                rc, sha, hdrs, err, trace = curl_download(m, url, l, name + "-" + tag, tls)
                after = len(m.requests())
                runs[tag] = (rc, sha, hdrs, err, trace, mock_requests_between(m, before, after))
                check(rc == 0, "%s %s: curl exit status 0 (got %r; stderr %r)"
                      % (name, tag, rc, err.decode("utf-8", "replace")[-300:]))
                check(sha == want, "%s %s: body sha256 is the mock's payload (%s, got %s)"
                      % (name, tag, want[:16], sha[:16]))
            check(runs["none"][2] == runs["agent"][2] and runs["agent"][2],
                  "%s: response header block identical with and without the agent (agent: %r)"
                  % (name, runs["agent"][2][:400]))
            check(b"x-xenovia" not in runs["agent"][2].lower(),
                  "%s: no X-Xenovia-* header stamped" % name)
            check(runs["none"][5] == runs["agent"][5] and len(runs["agent"][5]) == 1,
                  "%s: the mock received the same request with and without the agent" % name)
            recs = xvtest.read_records(runs["agent"][4])
            check(not recs, "%s: no trace record (got %d: %s)"
                  % (name, len(recs), json.dumps(recs)[:300]))
            check(not xvtest.xenovia_lines(runs["agent"][3]),
                  "%s: no xenovia line on stderr (got %r)"
                  % (name, xvtest.xenovia_lines(runs["agent"][3])))

        # --- Python requests: HTTPS and plain HTTP ------------------------------
        for name, base, tls in (("requests_https", tls_base, True),
                                ("requests_http", plain_base, False)):
            outs = {}
            for tag, l in (("none", None), ("agent", lib)):
                trace = m.path("trace-%s-%s.jsonl" % (name, tag))
                env = xvtest.client_env(ca=m.ca if tls else None, lib=l, trace_file=trace)
                before = len(m.requests())
                rc, out, err = xvtest.run([xvtest.PYTHON, "-c", PY_CLIENT, base, str(PY_DL)],
                                          env, timeout=120)
                after = len(m.requests())
                outs[tag] = (rc, out, err, trace, mock_requests_between(m, before, after))
                check(rc == 0, "%s %s: client exit status 0 (got %r; stderr %r)"
                      % (name, tag, rc, err.decode("utf-8", "replace")[-400:]))
            try:
                got = json.loads(outs["agent"][1])
            except ValueError:
                got = None
            same = outs["none"][1] == outs["agent"][1] and got is not None
            check(same, "%s: client output identical with and without the agent%s"
                  % (name, "" if same else "\n  none:  %r\n  agent: %r"
                     % (outs["none"][1][:800], outs["agent"][1][:800])))
            if got:
                dl = [o for o in got if o["name"] == "download"][0]
                check(dl["len"] == PY_DL and dl["sha256"] == expected_sha(mod, PY_DL),
                      "%s: streamed download has the mock's payload" % name)
                check(all(not o["xv"] for o in got), "%s: no X-Xenovia-* header stamped" % name)
                check([o["status"] for o in got] == [200, 200, 200, 404],
                      "%s: statuses 200,200,200,404 (got %s)" % (name, [o["status"] for o in got]))
            check(outs["none"][4] == outs["agent"][4] and len(outs["agent"][4]) == 4,
                  "%s: the mock received the same 4 requests with and without the agent" % name)
            recs = xvtest.read_records(outs["agent"][3])
            check(not recs, "%s: no trace record (got %d: %s)"
                  % (name, len(recs), json.dumps(recs)[:300]))
            check(not xvtest.xenovia_lines(outs["agent"][2]),
                  "%s: no xenovia line on stderr (got %r)"
                  % (name, xvtest.xenovia_lines(outs["agent"][2])))
        mixed_connection(m, lib, mod)
    xvtest.finish()


if __name__ == "__main__":
    main()
