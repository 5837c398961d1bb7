#!/usr/bin/python3
"""test_node_tls.py — issue 11, acceptance 3 and the ALPN part: Node's own
HTTPS clients are covered through the patched compiled-in OpenSSL of
/usr/bin/node (NodeSource build), not only the openai SDK of the matrix.

Checks, against tests/integration/mock_upstream.py on 127.0.0.1, each mode of
node_tls_client.cjs run without and with the agent:
  * `fetch` (built-in fetch/undici, keep-alive), `https` (https.request on a
    keep-alive Agent), `worker` (a worker_threads worker making two calls,
    then the main thread one): the same statuses and bodies with and without
    the agent; with it every response carries an X-Xenovia-Trace-Id equal to
    the trace_id of exactly one record (one record per call, transport tls,
    pid of the node process); no xenovia line on stderr; the mock received
    the same number of requests;
  * ALPN (SPEC §2): against a TLS server preferring h2, `tls.connect` offering
    h2 and http/1.1 negotiates h2 without the agent and with XENOVIA_HOSTS
    naming another host, and http/1.1 when XENOVIA_HOSTS names the SNI host;
  * XENOVIA_DISABLE=on: no record and no stamp (nothing patched);
  * `parallel`: four calls at once on four connections under a policy that
    blocks the third (its model): the third reads the synthetic 403 (memory-BIO
    TLS on libuv's epoll loop: the agent's readiness path must wake the right
    socket), the others their 200s, stamped; the blocked one never reaches the
    mock; four records, one with policy_outcome block.

Usage: test_node_tls.py --lib build/preload/libxenovia.so
Exit 77 when libxenovia.so is missing, or /usr/bin/node is not a build with
OpenSSL compiled in (Debian's nodejs links libssl: the ordinary hooks cover it).
"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check, log  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_tls_client.cjs")
CALLS = {"fetch": 2, "https": 2, "worker": 3}


def node_with_static_openssl():
    node = shutil.which("node") or "/usr/bin/node"
    if not os.path.exists(node):
        return None
    out = subprocess.run(["ldd", node], capture_output=True, text=True, timeout=30).stdout
    return None if "libssl" in out else node


def parse(out):
    """Lines `<tag...> <status> <trace|-> <body>` -> [(tag, status, trace, body)]."""
    rows = []
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            rows.append(tuple(parts))
    return rows


def h2_server(m):
    """A TLS server preferring h2; returns (port, chosen protocols list, thread)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(m.cert, m.key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(30)
    chosen = []

    def serve():
        for _ in range(3):
            try:
                c, _a = srv.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    chosen.append(t.selected_alpn_protocol())
                    t.settimeout(5)
                    try:
                        t.recv(1)
                    except (OSError, ssl.SSLError):
                        pass
            except (OSError, ssl.SSLError) as e:
                chosen.append("error: %s" % e)
        srv.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return srv.getsockname()[1], chosen, th


def main():
    lib = xvtest.lib_from_argv()
    node = node_with_static_openssl()
    if not node:
        print("SKIP: no node with OpenSSL compiled in (Debian's nodejs uses libssl)")
        sys.exit(xvtest.SKIP)
    with xvtest.Mock() as m:
        node_env = {"NODE_EXTRA_CA_CERTS": m.ca}
        for mode, n in CALLS.items():
            runs = {}
            for tag, l in (("none", None), ("agent", lib)):
                trace = m.path("trace-%s-%s.jsonl" % (mode, tag))
                env = xvtest.client_env(lib=l, trace_file=trace, extra=node_env)
                before = len(m.requests())
                rc, out, err = xvtest.run([node, CLIENT, mode, str(m.tls_port), m.ca], env, timeout=60)
                check(rc == 0, "%s %s: exit 0 (rc %r, stderr %r)"
                      % (mode, tag, rc, err.decode("utf-8", "replace")[-400:]))
                runs[tag] = (parse(out), err, xvtest.read_records(trace), len(m.requests()) - before)
            rows0, _e0, _r0, up0 = runs["none"]
            rows, err, recs, up = runs["agent"]
            check(len(rows) == n and len(rows0) == n, "%s: %d calls completed (%d, %d)"
                  % (mode, n, len(rows0), len(rows)))
            check([(r[0], r[1], r[3]) for r in rows] == [(r[0], r[1], r[3]) for r in rows0]
                  and all(r[1] == "200" for r in rows),
                  "%s: same statuses and bodies with and without the agent" % mode)
            check(all(r[2] == "-" for r in rows0), "%s: no stamp without the agent" % mode)
            tids = [r[2] for r in rows]
            rec_tids = sorted(r.get("trace_id") for r in recs)
            check(len(recs) == n and sorted(tids) == rec_tids and len(set(tids)) == n,
                  "%s: one record per call, trace ids = stamped headers (records %s, headers %s)"
                  % (mode, rec_tids, tids))
            check(all(r.get("transport") == "tls" and r.get("status_code") == 200 for r in recs),
                  "%s: records say transport tls, status 200" % mode)
            check(up == up0 == n, "%s: the mock received %d requests both times (%d, %d)"
                  % (mode, n, up0, up))
            check(not xvtest.xenovia_lines(err), "%s: no xenovia line on stderr (%r)"
                  % (mode, xvtest.xenovia_lines(err)))

        # XENOVIA_DISABLE=on: nothing patched, nothing recorded
        trace = m.path("trace-disabled.jsonl")
        env = xvtest.client_env(lib=lib, trace_file=trace,
                                extra=dict(node_env, XENOVIA_DISABLE="on"))
        rc, out, err = xvtest.run([node, CLIENT, "https", str(m.tls_port), m.ca], env, timeout=60)
        rows = parse(out)
        check(rc == 0 and len(rows) == 2 and all(r[2] == "-" for r in rows)
              and not xvtest.read_records(trace) and not err,
              "XENOVIA_DISABLE=on: calls work, no stamp, no record, no stderr (%r)" % rows)

        # four calls at once, the third blocked by the policy
        pol = m.path("policy.rego")
        with open(pol, "w") as f:
            f.write('package xenovia.policy\ndeny[msg] {\n    input.model == "gpt-4o-mini-forbidden"\n'
                    '    msg := "model not allowed"\n}\n')
        trace = m.path("trace-parallel.jsonl")
        env = xvtest.client_env(lib=lib, trace_file=trace, extra=dict(node_env, XENOVIA_POLICY=pol))
        before = len(m.requests())
        rc, out, err = xvtest.run([node, CLIENT, "parallel", str(m.tls_port), m.ca], env, timeout=60)
        rows = parse(out)
        up = m.requests()[before:]
        recs = xvtest.read_records(trace)
        check(rc == 0 and len(rows) == 4, "parallel: four calls completed (rc %r, %r, stderr %r)"
              % (rc, rows, err.decode("utf-8", "replace")[-300:]))
        if len(rows) == 4:
            check([r[1] for r in rows] == ["200", "200", "403", "200"],
                  "parallel: statuses 200 200 403 200 (%r)" % [r[1] for r in rows])
            check('"code":"policy_block"' in rows[2][3] and all(r[2] != "-" for r in rows),
                  "parallel: the third read the policy 403, every answer is stamped")
        check(len(up) == 3 and not any(b"forbidden" in base64.b64decode(q.get("body_b64") or "")
                                        for q in up),
              "parallel: the mock got the three allowed calls only (%d)" % len(up))
        check(len(recs) == 4 and sum(1 for r in recs if r.get("policy_outcome") == "block") == 1,
              "parallel: four records, one blocked (%s)" % [r.get("policy_outcome") for r in recs])

        # ALPN narrowing for XENOVIA_HOSTS
        port, chosen, th = h2_server(m)
        cases = (("none", None, None, "h2"), ("other-host", lib, "other.example", "h2"),
                 ("named-host", lib, "localhost", "http/1.1"))
        for tag, l, hosts, want in cases:
            extra = dict(node_env)
            if hosts:
                extra["XENOVIA_HOSTS"] = hosts
            env = xvtest.client_env(lib=l, extra=extra)
            rc, out, err = xvtest.run([node, CLIENT, "alpn", str(port), m.ca, "localhost"],
                                      env, timeout=60)
            got = out.decode().strip()
            check(rc == 0 and got == "alpn " + want, "alpn %s: client negotiated %s (got %r, stderr %r)"
                  % (tag, want, got, err.decode("utf-8", "replace")[-300:]))
        th.join(timeout=10)
        check(chosen == ["h2", "h2", "http/1.1"], "alpn: the server saw h2, h2, http/1.1 (%r)" % chosen)
        log("alpn: %s" % json.dumps(chosen))
    xvtest.finish()


if __name__ == "__main__":
    main()
