#!/usr/bin/python3
"""test_route.py — rerouting (SPEC §8, issue 12) with real clients.

One case per invocation (`--case NAME`, listed by `--list-cases`):

  tls:<client>        the client, configured with its DEFAULT base URL
                      (https://api.openai.com), runs the chat, stream and tools
                      scenarios under XENOVIA_ROUTE=api.openai.com=https://localhost:P/a/proxy-1/openai
                      with the test mock playing the gateway (its CA in
                      XENOVIA_CA_FILE, XENOVIA_API_KEY set). Asserts: exit 0; the
                      transcript equals a run WITHOUT the agent straight at the
                      gateway URL (stamped headers aside); the mock saw every request
                      under /a/proxy-1/openai/v1/, Host localhost:P, the gateway's
                      bearer token, the injected session header exactly once, and
                      never the app's key; one record per call with `route`,
                      `server_address` localhost and the stamped trace id.
  proxy_id            the XENOVIA_PROXY_ID shorthand (XENOVIA_RUNTIME_URL at the mock).
  badcert / down      the gateway's certificate does not verify (no XENOVIA_CA_FILE) /
                      the gateway is not listening: curl fails quickly with an
                      ordinary TLS/connection error, the agent says why on stderr, the
                      call is recorded with `error`, and nothing reaches any server.
  plain:<client>      plain HTTP: a program using http://127.0.0.1:A/v1 (a decoy
                      listener that must see nothing) rerouted to http://127.0.0.1:B
                      (curl and the Node openai SDK).
  policy              a policy-blocked call on a rerouted connection gets the local 403
                      and never reaches the gateway; the next call on the same client
                      goes through.
  badroute            an unparsable XENOVIA_ROUTE: one stderr line naming the variable,
                      the program runs unrouted.

Exit 0 pass, 1 fail, 77 skip (library not built; node_modules missing).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEG)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(INTEG, "clients"))
import run_matrix as rm  # noqa: E402
import xvclient  # noqa: E402

GW_KEY = "xv-gateway-KEY-7f3a"        # XENOVIA_API_KEY: what the gateway must see
APP_KEY = xvclient.API_KEY            # the app's own key: must never leave the process
TLS_CLIENTS = ("curl", "requests", "urllib", "httpx", "httpx_async", "asyncio_raw", "node_tls")
PLAIN_CLIENTS = ("curl_plain", "node")
SCENARIOS = ("chat", "stream", "tools")
CASES = (["tls:" + c for c in TLS_CLIENTS] + ["plain:" + c for c in PLAIN_CLIENTS] +
         ["proxy_id", "badcert", "down", "policy", "badroute"])

from xvtest import check, failures  # noqa: E402  (tests/lib/xvtest.py)


def agent_env(lib, tmp, extra):
    env = rm.clean_env()
    env.update({"LD_PRELOAD": lib, "XENOVIA_TRACE_FILE": os.path.join(tmp, "traces.jsonl")})
    env.update(extra)
    return env


class Decoy:
    """A listener that must never be connected to (the original host)."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.hits = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.s.accept()
                self.hits += 1
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stop_ev.set()
        self.t.join(2)
        self.s.close()


def client_argv(name):
    argv, _transport, _scen = rm.CLIENTS[name]
    return argv


def run(argv, env, tmp, tag):
    rc, so, se, dt = rm.run_client(argv, env, tmp, tag)
    return rc, so, se, dt


def curl_chat(url):
    """One curl process making one chat call (one agent start: one config line)."""
    body = json.dumps({"model": xvclient.MODEL, "messages": [{"role": "user", "content": "hi"}]})
    return ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "Authorization: Bearer " + APP_KEY, "-H", "Content-Type: application/json",
            "--data-binary", body, url]


def check_upstream(entries, port, n_calls, label, prefix="/a/proxy-1/openai/v1/", key=GW_KEY):
    check(len(entries) == n_calls, "%s: the gateway saw %d request(s), want %d"
          % (label, len(entries), n_calls))
    for e in entries:
        hdrs = e["headers"]
        names = [h[0].lower() for h in hdrs]
        host = [v for k, v in hdrs if k.lower() == "host"]
        auth = [v for k, v in hdrs if k.lower() == "authorization"]
        check(e["target"].startswith(prefix), "%s: target %s under %s" % (label, e["target"], prefix))
        check(host == ["localhost:%d" % port] or host == ["127.0.0.1:%d" % port],
              "%s: Host %r is the gateway's" % (label, host))
        if key:
            check(auth == ["Bearer " + key], "%s: Authorization is the gateway key (%r)" % (label, auth))
        check(names.count("x-xenovia-session-id") == 1, "%s: session header once" % label)
        check(APP_KEY not in json.dumps(e), "%s: the app's key never reached the gateway" % label)


def check_records(tmp, n_calls, label, route_url, xv_ids):
    recs, bad = rm.read_records(os.path.join(tmp, "traces.jsonl"))
    check(not bad, "%s: trace file parses (%s)" % (label, bad[:1]))
    calls = [r for r in recs if "step_type" not in r]
    check(len(calls) == n_calls, "%s: %d call record(s), want %d" % (label, len(calls), n_calls))
    for r in calls:
        check(r.get("route") == route_url, "%s: record route %r" % (label, r.get("route")))
        check(r.get("server_address") in ("localhost", "127.0.0.1"),
              "%s: server_address %r is where the call went" % (label, r.get("server_address")))
        check(r.get("status_code") == 200 and not r.get("error"),
              "%s: status %r error %r" % (label, r.get("status_code"), r.get("error")))
    ids = [v for k, v in xv_ids if k == "x-xenovia-trace-id"]
    check(sorted(ids) == sorted(r.get("trace_id") for r in calls),
          "%s: stamped trace ids equal the records'" % label)
    blob = open(os.path.join(tmp, "traces.jsonl")).read() if os.path.exists(
        os.path.join(tmp, "traces.jsonl")) else ""
    check(APP_KEY not in blob and GW_KEY not in blob, "%s: no key in the trace file" % label)


def case_tls(client, lib, tmp, certs):
    if client.startswith("node") and not os.path.isdir(rm.NODE_MODULES):
        raise rm.Skip("node_modules missing (scripts/test.sh runs npm ci)")
    mock = rm.Mock(tmp, certs)
    try:
        gw = "https://localhost:%d/a/proxy-1/openai" % mock.tport
        for scen in SCENARIOS:
            label = "%s:%s" % (client, scen)
            before = len(mock.entries())
            # A: no agent, straight at the gateway URL (what the program should read)
            env_a = rm.clean_env()
            if client == "node_tls":   # Node reads extra CAs at start only
                env_a["NODE_EXTRA_CA_CERTS"] = certs["ca"]
            rc_a, out_a, err_a, _ = run(client_argv(client) + [gw, certs["ca"], scen],
                                        env_a, tmp, "a-" + scen)
            direct = len(mock.entries()) - before
            # B: the agent, the client's default base URL, routed
            if os.path.exists(os.path.join(tmp, "traces.jsonl")):
                os.remove(os.path.join(tmp, "traces.jsonl"))
            env = agent_env(lib, tmp, {"XENOVIA_ROUTE": "api.openai.com=" + gw,
                                       "XENOVIA_CA_FILE": certs["ca"], "XENOVIA_API_KEY": GW_KEY})
            mark = len(mock.entries())
            base = "https://api.openai.com" + (":443" if client == "asyncio_raw" else "")
            rc_b, out_b, err_b, dt = run(client_argv(client) + [base, "-", scen],
                                         env, tmp, "b-" + scen)
            check(rc_a == 0, "%s: direct run exits 0 (%r %s)" % (label, rc_a, err_a[-300:]))
            check(rc_b == 0, "%s: routed run exits 0 (%r %s)" % (label, rc_b, err_b[-500:]))
            ta, _ = rm.split_xv(out_a)
            tb, xv = rm.split_xv(out_b)
            check(ta == tb, "%s: same transcript as straight at the gateway%s" %
                  (label, "" if ta == tb else "\n" + rm.diff_text(ta, tb)))
            entries = mock.entries()[mark:]
            check_upstream(entries, mock.tport, direct, label)
            time.sleep(0.2)
            check_records(tmp, direct, label, gw, xv)
            check(APP_KEY.encode() not in err_b, "%s: no key on stderr" % label)
    finally:
        mock.stop()


def case_proxy_id(lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    try:
        env = agent_env(lib, tmp, {"XENOVIA_PROXY_ID": "proxy-7",
                                   "XENOVIA_RUNTIME_URL": "https://localhost:%d/" % mock.tport,
                                   "XENOVIA_CA_FILE": certs["ca"], "XENOVIA_API_KEY": GW_KEY})
        rc, out, err, _ = run(client_argv("requests") + ["https://api.openai.com", "-", "chat"],
                              env, tmp, "proxy")
        check(rc == 0, "proxy_id: exits 0 (%r %s)" % (rc, err[-400:]))
        _, xv = rm.split_xv(out)
        entries = mock.entries()
        check_upstream(entries, mock.tport, len(entries) or 1, "proxy_id",
                       prefix="/a/proxy-7/openai/v1/")
        time.sleep(0.2)
        check_records(tmp, len(entries), "proxy_id",
                      "https://localhost:%d/a/proxy-7/openai" % mock.tport, xv)
    finally:
        mock.stop()


def case_failure(kind, lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    try:
        if kind == "down":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()   # nothing listens there now
            extra = {"XENOVIA_CA_FILE": certs["ca"]}
        else:
            port = mock.tport
            extra = {}  # system CAs: the test CA's certificate does not verify
        gw = "https://localhost:%d/a/proxy-1/openai" % port
        env = agent_env(lib, tmp, dict(extra, XENOVIA_ROUTE="api.openai.com=" + gw,
                                       XENOVIA_API_KEY=GW_KEY))
        rc, out, err, dt = run(curl_chat("https://api.openai.com/v1/chat/completions"),
                               env, tmp, kind)
        check(rc not in (0, "timeout after %ds" % rm.CLIENT_TIMEOUT_S),
              "%s: curl fails (rc %r)" % (kind, rc))
        check(dt < 30, "%s: and fails quickly (%.1f s)" % (kind, dt))
        text = err.decode("utf-8", "replace")
        check("curl:" in text and ("(52)" in text or "(56)" in text or "(35)" in text),
              "%s: an ordinary connection/TLS error: %r" % (kind, text[-300:]))
        lines = [l for l in text.splitlines() if l.startswith("xenovia: route")]
        want = "certificate" if kind == "badcert" else "cannot connect"
        check(len(lines) >= 1 and want in lines[0] and "never sent to api.openai.com" in lines[0],
              "%s: one agent line saying why: %r" % (kind, lines[:2]))
        check(len(mock.entries()) == 0, "%s: nothing reached the gateway" % kind)
        time.sleep(0.3)
        recs, _ = rm.read_records(os.path.join(tmp, "traces.jsonl"))
        check(len(recs) >= 1 and all(r.get("error") for r in recs) and
              all(r.get("route") == gw for r in recs),
              "%s: the call is recorded with error and its route (%r)" %
              (kind, [(r.get("error"), r.get("route")) for r in recs]))
    finally:
        mock.stop()


def case_plain(client, lib, tmp, certs):
    if client.startswith("node") and not os.path.isdir(rm.NODE_MODULES):
        raise rm.Skip("node_modules missing (scripts/test.sh runs npm ci)")
    mock = rm.Mock(tmp, certs)
    decoy = Decoy()
    try:
        for scen in SCENARIOS:
            label = "plain %s:%s" % (client, scen)
            before = len(mock.entries())
            rc_a, out_a, err_a, _ = run(client_argv(client) + [
                "http://127.0.0.1:%d" % mock.port, "-", scen], rm.clean_env(), tmp, "a-" + scen)
            direct = len(mock.entries()) - before
            if os.path.exists(os.path.join(tmp, "traces.jsonl")):
                os.remove(os.path.join(tmp, "traces.jsonl"))
            route = "http://127.0.0.1:%d" % mock.port
            env = agent_env(lib, tmp, {"XENOVIA_ROUTE": "127.0.0.1:%d=%s" % (decoy.port, route),
                                       "XENOVIA_API_KEY": GW_KEY})
            mark = len(mock.entries())
            rc_b, out_b, err_b, _ = run(client_argv(client) + [
                "http://127.0.0.1:%d" % decoy.port, "-", scen], env, tmp, "b-" + scen)
            check(rc_a == 0 and rc_b == 0, "%s: both runs exit 0 (%r %r %s)" %
                  (label, rc_a, rc_b, err_b[-400:]))
            ta, _ = rm.split_xv(out_a)
            tb, xv = rm.split_xv(out_b)
            check(ta == tb, "%s: same transcript%s" % (label, "" if ta == tb else "\n" + rm.diff_text(ta, tb)))
            check_upstream(mock.entries()[mark:], mock.port, direct, label, prefix="/v1/")
            time.sleep(0.2)
            check_records(tmp, direct, label, route, xv)
        check(decoy.hits == 0, "plain %s: the original address was never connected to (%d)"
              % (client, decoy.hits))
    finally:
        decoy.stop()
        mock.stop()


def case_policy(lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    try:
        gw = "https://localhost:%d/a/proxy-1/openai" % mock.tport
        env = agent_env(lib, tmp, {
            "XENOVIA_ROUTE": "api.openai.com=" + gw, "XENOVIA_CA_FILE": certs["ca"],
            "XENOVIA_API_KEY": GW_KEY,
            "XENOVIA_POLICY": os.path.join(INTEG, "policies", "block_drop_database.rego")})
        rc, out, err, _ = run(client_argv("requests") + ["https://api.openai.com", "-", "policy_block"],
                              env, tmp, "policy")
        check(rc == 0, "policy: exits 0 (%r %s)" % (rc, err[-400:]))
        text, _ = rm.split_xv(out)
        check("403" in text and "policy_block" in text, "policy: the app read the local 403")
        bodies = [json.dumps(e) for e in mock.entries()]
        check(not any("drop_database" in b for b in bodies),
              "policy: the blocked call never reached the gateway")
        recs, _ = rm.read_records(os.path.join(tmp, "traces.jsonl"))
        check(any(r.get("policy_outcome") == "block" for r in recs), "policy: block recorded")
    finally:
        mock.stop()


def case_badroute(lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    try:
        env = agent_env(lib, tmp, {"XENOVIA_ROUTE": "api.openai.com=ftp://nowhere"})
        rc, out, err, _ = run(curl_chat("http://127.0.0.1:%d/v1/chat/completions" % mock.port),
                              env, tmp, "badroute")
        text = err.decode("utf-8", "replace")
        lines = [l for l in text.splitlines() if "XENOVIA_ROUTE" in l]
        check(rc == 0, "badroute: the program runs (%r)" % rc)
        check(len(lines) == 1 and lines[0].startswith("xenovia: "),
              "badroute: one stderr line naming XENOVIA_ROUTE (%r)" % lines)
        check(len(mock.entries()) >= 1, "badroute: the program ran unrouted")
    finally:
        mock.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--case")
    ap.add_argument("--list-cases", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.list_cases:
        print("\n".join(CASES))
        return 0
    if not a.lib or not os.path.exists(a.lib):
        print("SKIP: libxenovia.so not built (%s)" % a.lib)
        return 77
    if not os.path.exists(os.path.join(os.path.dirname(a.lib), "libxenovia-route.so")):
        print("FAIL: libxenovia-route.so is not next to %s" % a.lib)
        return 1
    tmp = tempfile.mkdtemp(prefix="xvroute-")
    try:
        certs = rm.make_certs(tmp)
        kind, _, arg = a.case.partition(":")
        if kind == "tls":
            case_tls(arg, a.lib, tmp, certs)
        elif kind == "plain":
            case_plain(arg, a.lib, tmp, certs)
        elif kind == "proxy_id":
            case_proxy_id(a.lib, tmp, certs)
        elif kind in ("badcert", "down"):
            case_failure(kind, a.lib, tmp, certs)
        elif kind == "policy":
            case_policy(a.lib, tmp, certs)
        elif kind == "badroute":
            case_badroute(a.lib, tmp, certs)
        else:
            print("unknown case %s" % a.case)
            return 2
    except rm.Skip as e:
        print("SKIP: %s" % e)
        return 77
    finally:
        if a.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures():
        print("%d problem(s)" % len(failures()))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
