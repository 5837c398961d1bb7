#!/usr/bin/python3
"""test_replay.py — record and replay (SPEC §8.1, issue 13) with real clients.

Cases (`--case NAME`, listed by `--list-cases`):

  <client>      the client runs chat, stream, tools, gzip and keepalive once under the agent with
                XENOVIA_CASSETTE (mode once: an empty cassette records) against the test
                mock, then again with XENOVIA_RECORD_MODE=none after the mock was
                STOPPED (its port closed, no other network): exit 0, the same transcript
                (stamped ids aside: every header, framing and keep-alive as recorded), one
                record per call marked replayed:true.
  nomatch       a changed prompt under none: the program's SDK (Python openai-style
                client: requests) reads the 404 naming the difference; one stderr line;
                nothing is sent.
  episodes      new_episodes appends exactly the new calls; all re-records (same files).
  secrets       a sweep of the cassette finds no API key or bearer token.

Exit 0 pass, 1 fail, 77 skip (library not built; node_modules missing for node).
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEG)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(INTEG, "clients"))
import run_matrix as rm  # noqa: E402
import xvclient  # noqa: E402

CLIENTS = ("curl", "curl_plain", "requests", "urllib", "httpx", "httpx_async", "asyncio_raw", "node",
           "node_tls")
SCENARIOS = ("chat", "stream", "tools", "gzip", "keepalive")
CASES = list(CLIENTS) + ["nomatch", "episodes", "timing"]
APP_KEY = xvclient.API_KEY
from xvtest import check, failures  # noqa: E402  (tests/lib/xvtest.py)


def agent_env(lib, tmp, cas, mode):
    env = rm.clean_env()
    env.update({"LD_PRELOAD": lib, "XENOVIA_TRACE_FILE": os.path.join(tmp, "traces.jsonl"),
                "XENOVIA_CASSETTE": cas, "XENOVIA_RECORD_MODE": mode})
    return env


def base_of(client, mock):
    _argv, transport, _s = rm.CLIENTS[client]
    if transport == "tls":
        return "https://127.0.0.1:%d" % mock.tport
    return "http://127.0.0.1:%d" % mock.port


def records(tmp):
    path = os.path.join(tmp, "traces.jsonl")
    recs, bad = rm.read_records(path)
    if os.path.exists(path):
        os.remove(path)
    return [r for r in recs if "step_type" not in r], bad


def sweep(cas, label):
    blob = ""
    for f in glob.glob(os.path.join(cas, "*")) + glob.glob(os.path.join(cas, ".*")):
        if os.path.isfile(f):
            blob += open(f, encoding="utf-8", errors="replace").read()
    check(APP_KEY not in blob and "Bearer" not in blob and "authorization" not in blob.lower(),
          "%s: no API key, bearer token or Authorization header in the cassette" % label)


def case_client(client, lib, tmp, certs):
    if client.startswith("node") and not os.path.isdir(rm.NODE_MODULES):
        raise rm.Skip("node_modules missing (scripts/test.sh runs npm ci)")
    argv = rm.CLIENTS[client][0]

    def env_of(cas, mode):
        e = agent_env(lib, tmp, cas, mode)
        if client.startswith("node"):
            e["NODE_EXTRA_CA_CERTS"] = certs["ca"]   # Node reads extra CAs at start only
        return e

    mock = rm.Mock(tmp, certs)
    cas_of = lambda scen: os.path.join(tmp, "cassette-" + scen)  # noqa: E731 (once: one per run)
    base = base_of(client, mock)
    transcripts = {}
    try:
        for scen in SCENARIOS:
            rc, out, err, _ = rm.run_client(argv + [base, certs["ca"], scen],
                                            env_of(cas_of(scen), "once"), tmp,
                                            "rec-" + scen)
            check(rc == 0, "%s:%s: recording run exits 0 (%r %s)" % (client, scen, rc, err[-300:]))
            transcripts[scen] = rm.split_xv(out)[0]
            recs, _ = records(tmp)
            check(recs and not any(r.get("replayed") for r in recs),
                  "%s:%s: recording run's records are not replayed" % (client, scen))
    finally:
        mock.stop()
    for scen in SCENARIOS:
        n_files = len(glob.glob(os.path.join(cas_of(scen), "*.json")))
        check(n_files >= 1, "%s:%s: %d recording(s) written" % (client, scen, n_files))
        sweep(cas_of(scen), "%s:%s" % (client, scen))
    # the mock is gone: its ports refuse; nothing else is reachable
    for scen in SCENARIOS:
        label = "%s:%s replay" % (client, scen)
        rc, out, err, dt = rm.run_client(argv + [base, certs["ca"], scen],
                                         env_of(cas_of(scen), "none"), tmp,
                                         "play-" + scen)
        check(rc == 0, "%s: exits 0 with the upstream stopped (%r %s)" % (label, rc, err[-400:]))
        got, xv = rm.split_xv(out)
        want = transcripts.get(scen, "")
        check(got == want, "%s: the program read what it read when recording%s" %
              (label, "" if got == want else "\n" + rm.diff_text(want, got, "recorded", "replayed")))
        recs, bad = records(tmp)
        check(not bad, "%s: trace file parses" % label)
        check(recs and all(r.get("replayed") is True for r in recs),
              "%s: every record says replayed (%d)" % (label, len(recs)))
        ids = sorted(v for k, v in xv if k == "x-xenovia-trace-id")
        check(ids == sorted(r["trace_id"] for r in recs), "%s: fresh stamped ids match the records" % label)


def case_nomatch(lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    cas = os.path.join(tmp, "cassette")
    base = "https://127.0.0.1:%d" % mock.tport
    argv = rm.CLIENTS["requests"][0]
    try:
        rc, _o, err, _ = rm.run_client(argv + [base, certs["ca"], "chat"],
                                       agent_env(lib, tmp, cas, "once"), tmp, "rec")
        check(rc == 0, "nomatch: recording exits 0 (%s)" % err[-300:])
    finally:
        mock.stop()
    # the program's prompt changed: the recorded request with its last message edited
    rec = json.load(open(glob.glob(os.path.join(cas, "*.json"))[0]))
    req = json.loads(rec["request"]["body"])
    req["messages"][-1]["content"] = "a changed prompt"
    code = r'''
import json, sys, requests
s = requests.Session(); s.trust_env = False
r = s.post(sys.argv[1] + "/v1/chat/completions", verify=sys.argv[2], timeout=30,
           headers={"Authorization": "Bearer %s" % sys.argv[3], "Content-Type": "application/json"},
           data=sys.argv[4])
print(r.status_code); print(r.text)
'''
    records(tmp)
    rc, out, err, _ = rm.run_client(["/usr/bin/python3", "-c", code, base, certs["ca"], APP_KEY,
                                     json.dumps(req)],
                                    agent_env(lib, tmp, cas, "none"), tmp, "miss")
    text = out.decode()
    check(rc == 0 and text.startswith("404"), "nomatch: the program reads a 404 (%r)" % text[:80])
    body = json.loads(text.split("\n", 1)[1])
    msg = body["error"]["message"]
    check(body["error"]["code"] == "cassette_no_match" and "cassette" in msg and
          "differs in 1 place" in msg and "a changed prompt" in msg and
          "messages[%d].content" % (len(req["messages"]) - 1) in msg,
          "nomatch: the error names the cassette and the difference: %r" % msg)
    lines = [l for l in err.decode().splitlines() if l.startswith("xenovia: cassette")]
    check(len(lines) == 1, "nomatch: one stderr line (%r)" % lines)
    recs, _ = records(tmp)
    check(len(recs) == 1 and recs[0].get("status_code") == 404 and recs[0].get("error"),
          "nomatch: recorded with its 404 and error")
    # an OpenAI SDK raises its ordinary error: Node's openai package, recorded
    # with one scenario and asked another under none
    if not os.path.isdir(rm.NODE_MODULES):
        print("SKIP node part: node_modules missing")
        return
    ntmp = os.path.join(tmp, "node")          # a second mock: its own port files
    os.makedirs(ntmp)
    mock = rm.Mock(ntmp, certs)
    ncas = os.path.join(tmp, "node-cassette")
    nbase = "http://127.0.0.1:%d" % mock.port
    argv = rm.CLIENTS["node"][0]
    try:
        rc, _o, err, _ = rm.run_client(argv + [nbase, "-", "chat"],
                                       agent_env(lib, tmp, ncas, "once"), tmp, "nrec")
        check(rc == 0 and glob.glob(os.path.join(ncas, "*.json")),
              "nomatch (node): recording exits 0 and records (%s)" % err[-200:])
    finally:
        mock.stop()
    rc, out, err, _ = rm.run_client(argv + [nbase, "-", "tools"],
                                    agent_env(lib, tmp, ncas, "none"), tmp, "nmiss")
    text = out.decode("utf-8", "replace")
    check(rc == 0 and "status: 404" in text and "error: NotFoundError" in text and
          "cassette_no_match" in text,
          "nomatch (node): the openai SDK raises NotFoundError naming the cassette (%r)" % text[:300])


def case_episodes(lib, tmp, certs):
    mock = rm.Mock(tmp, certs)
    cas = os.path.join(tmp, "cassette")
    base = "https://127.0.0.1:%d" % mock.tport
    argv = rm.CLIENTS["requests"][0]
    try:
        rm.run_client(argv + [base, certs["ca"], "chat"], agent_env(lib, tmp, cas, "once"), tmp, "a")
        first = sorted(os.listdir(cas))
        seen = len(mock.entries())
        # new_episodes: chat replays (nothing sent), tools is new (sent and appended)
        rc, _o, err, _ = rm.run_client(argv + [base, certs["ca"], "chat"],
                                       agent_env(lib, tmp, cas, "new_episodes"), tmp, "b")
        check(rc == 0 and len(mock.entries()) == seen,
              "new_episodes: a recorded call is replayed, not sent (%s)" % err[-200:])
        rc, _o, err, _ = rm.run_client(argv + [base, certs["ca"], "tools"],
                                       agent_env(lib, tmp, cas, "new_episodes"), tmp, "c")
        sent = len(mock.entries()) - seen
        files = sorted(f for f in os.listdir(cas) if f.endswith(".json"))
        added = [f for f in files if f not in first]
        check(rc == 0 and sent >= 1 and len(added) == sent,
              "new_episodes: exactly the %d new call(s) appended (%d files added)" % (sent, len(added)))
        # all: everything sent again and re-recorded under the same names
        before = len(mock.entries())
        rc, _o, err, _ = rm.run_client(argv + [base, certs["ca"], "chat"],
                                       agent_env(lib, tmp, cas, "all"), tmp, "d")
        check(rc == 0 and len(mock.entries()) > before, "all: calls are sent again")
        check(sorted(f for f in os.listdir(cas) if f.endswith(".json")) == files,
              "all: re-recorded under the same file names")
    finally:
        mock.stop()
    sweep(cas, "episodes")


def case_timing(lib, tmp, certs):
    """XENOVIA_REPLAY_TIMING=recorded hands stream events over with their recorded delays
    (here edited into the cassette: 0, 400, 800 ms ...); fast hands them over at once."""
    mock = rm.Mock(tmp, certs)
    cas = os.path.join(tmp, "cassette")
    base = "https://127.0.0.1:%d" % mock.tport
    argv = rm.CLIENTS["requests"][0]
    try:
        rc, out, err, _ = rm.run_client(argv + [base, certs["ca"], "stream"],
                                        agent_env(lib, tmp, cas, "once"), tmp, "rec")
        check(rc == 0, "timing: recording exits 0 (%s)" % err[-200:])
    finally:
        mock.stop()
    want = rm.split_xv(out)[0]
    for f in glob.glob(os.path.join(cas, "*.json")):
        doc = json.load(open(f))
        events = doc["response"].get("events") or []
        for i, e in enumerate(events):
            e["t_ms"] = min(i, 3) * 400          # the 4th event onwards at 1.2 s
        json.dump(doc, open(f, "w"), indent=1)
    times = {}
    for timing in ("fast", "recorded"):
        env = dict(agent_env(lib, tmp, cas, "none"), XENOVIA_REPLAY_TIMING=timing)
        rc, out, err, dt = rm.run_client(argv + [base, certs["ca"], "stream"], env, tmp, timing)
        times[timing] = dt
        check(rc == 0 and rm.split_xv(out)[0] == want,
              "timing %s: same transcript as recorded (rc %r %s)" % (timing, rc, err[-200:]))
    check(times["recorded"] >= 1.2 and times["recorded"] - times["fast"] >= 1.0,
          "timing: recorded %.2f s vs fast %.2f s (events at 0/0.4/0.8/1.2 s)" %
          (times["recorded"], times["fast"]))


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
    tmp = tempfile.mkdtemp(prefix="xvcas-")
    try:
        certs = rm.make_certs(tmp)
        if a.case in CLIENTS:
            case_client(a.case, a.lib, tmp, certs)
        elif a.case == "nomatch":
            case_nomatch(a.lib, tmp, certs)
        elif a.case == "episodes":
            case_episodes(a.lib, tmp, certs)
        elif a.case == "timing":
            case_timing(a.lib, tmp, certs)
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
