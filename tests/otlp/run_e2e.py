#!/usr/bin/python3
"""run_e2e.py - end-to-end tests of the exporter's OTLP output.

Each scenario starts mock_collector.py processes on 127.0.0.1 (ports chosen at
run time; every process started and stopped by its pid, each bounded by a
lifetime) and runs otlp_driver (the real exporter linked into a small
program) with an OTEL_* environment, then asserts that every record arrived
exactly once as a span with the right name, parent and attributes, that
retries honour Retry-After, that the spool is written while the collector is
down and replayed by a later process (or the same one), that gzip bodies
decode and that headers are sent. Usage: run_e2e.py path/to/otlp_driver
"""
import collections
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = sys.argv[1] if len(sys.argv) > 1 else None
# --preload LIB: also run a real host (python3) under libxenovia.so
PRELOAD = sys.argv[sys.argv.index("--preload") + 1] if "--preload" in sys.argv else None
PROCS = []  # collector processes still running (stopped by pid on exit)


def start_collector(tmp, name, port=0, *args):
    port_file = os.path.join(tmp, name + ".port")
    log = os.path.join(tmp, name + ".log")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "mock_collector.py"),
                          "--port", str(port), "--port-file", port_file, "--log", log,
                          "--lifetime", "120"] + list(args))
    PROCS.append(p)
    deadline = time.time() + 10
    while not os.path.exists(port_file):
        if p.poll() is not None or time.time() > deadline:
            raise AssertionError("collector %s did not start" % name)
        time.sleep(0.02)
    with open(port_file) as f:
        return p, int(f.read()), log


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    if p in PROCS:
        PROCS.remove(p)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def base_env(tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and not k.startswith("XENOVIA_") and k != "XDG_STATE_HOME"}
    env["HOME"] = os.path.join(tmp, "home")
    os.makedirs(env["HOME"], exist_ok=True)
    env["XENOVIA_SPOOL_DIR"] = os.path.join(tmp, "spool")
    return env


def run_driver(env, *args, timeout=60):
    r = subprocess.run([DRIVER] + list(args), env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "driver failed %d: %s" % (r.returncode, r.stderr)
    outs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    return outs, r.stderr


def entries(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        es = [json.loads(l) for l in f]
    for e in es:
        assert "decode_error" not in e, e["decode_error"]
    return es


def accepted_spans(*logs):
    spans = []
    for log in logs:
        for e in entries(log):
            if e["status"] == 200:
                spans += e["spans"]
    return spans


def expect_exactly(outs, spans):
    """Every driver record arrives exactly once, with its name and parent."""
    want = collections.Counter()
    for o in outs:
        for r in o["records"]:
            if "parent" in r:
                want[(r["parent"], r["name"], r["trace_id"])] += 1
            else:
                want[(r["trace_id"], r["name"])] += 1
    got = collections.Counter()
    call_span = {}
    for s in spans:
        if s["kind"] == 1:
            got[(s["trace_id"], s["name"], s["attrs"].get("xenovia.trace_id"))] += 1
        else:
            assert s["kind"] == 3, s
            got[(s["trace_id"], s["name"])] += 1
            call_span[s["trace_id"]] = s["span_id"]
    missing = want - got
    extra = got - want
    assert not missing and not extra, "missing %d %s / extra %d %s" % (
        len(missing), list(missing)[:3], len(extra), list(extra)[:3])
    for s in spans:
        if s["kind"] == 1:
            assert s["parent"] == call_span[s["trace_id"]], "tool span not a child of its call"
    return len(spans)


def spool_files(tmp):
    d = os.path.join(tmp, "spool")
    return sorted(f for f in os.listdir(d) if not f.startswith(".")) if os.path.isdir(d) else []


# ---- scenarios ----

def t_protobuf_gzip_headers(tmp):
    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
               OTEL_EXPORTER_OTLP_HEADERS="x-test=hello%20world, authorization=Bearer%20t0k",
               OTEL_SERVICE_NAME="e2e-svc", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=e2e")
    outs, err = run_driver(env, "--calls", "300", "--steps-every", "5", "--tag", "pb")
    stop(col)
    spans = accepted_spans(log)
    assert expect_exactly(outs, spans) == 360
    es = entries(log)
    assert len(es) >= 2, "batched into %d request(s)" % len(es)   # 360 spans > 256 per batch
    for e in es:
        assert e["path"] == "/v1/traces" and e.get("gzip"), e["path"]
        assert e["headers"]["content-type"] == "application/x-protobuf"
        assert e["headers"]["x-test"] == "hello world"
        assert e["headers"]["authorization"] == "Bearer t0k"
        assert e["resource"]["service.name"] == "e2e-svc"
        assert e["resource"]["deployment.environment"] == "e2e"
        assert e["resource"]["process.pid"] == outs[0]["pid"]
        assert e["resource"]["telemetry.sdk.name"] == "libxenovia"
    for s in spans:
        a = s["attrs"]
        if s["kind"] == 1:
            assert a["gen_ai.operation.name"] == "execute_tool"
            assert a["gen_ai.tool.name"] == "get_weather"
            continue
        i = a["xenovia.xv_index"]
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert a["server.port"] == 443 and a["server.address"] == "api.openai.com"
        assert a["gen_ai.conversation.id"] == "sess-pb"
        assert a["xenovia.stream"] is bool(i % 2)
        if i % 3:
            assert a["gen_ai.usage.input_tokens"] == 10 + i
        else:
            assert "gen_ai.usage.input_tokens" not in a   # absent, not zero
        if i % 7 == 6:
            assert s["status"] == 2 and a["error.type"] == "500"
        else:
            assert s["status"] == 0 and "error.type" not in a
        assert s["end"] - s["start"] == 250000000
    st = outs[0]["stats"]
    assert st["otlp_sent"] == 360 and st["otlp_spooled"] == 0 and st["written"] == 360, st
    # OTLP configured, no trace file asked for: no JSON Lines file
    assert not os.path.exists(os.path.join(env["HOME"], ".local/state/xenovia/traces.jsonl"))
    assert err == "", err


def t_json_traces_endpoint(tmp):
    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:%d/custom/path" % port,
               OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1",   # the traces one wins
               OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/json")
    outs, err = run_driver(env, "--calls", "40", "--steps-every", "4", "--tag", "js")
    stop(col)
    assert expect_exactly(outs, accepted_spans(log)) == 50
    for e in entries(log):
        assert e["path"] == "/custom/path" and e["encoding"] == "json"
        assert e["headers"]["content-type"] == "application/json" and not e.get("gzip")


def t_retry_after(tmp):
    col, port, log = start_collector(tmp, "c", 0, "--fail", "2", "--fail-status", "503",
                                     "--retry-after", "1")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_TIMEOUT="8000")
    outs, _ = run_driver(env, "--calls", "20", "--tag", "ra", "--timeout-ms", "9000")
    stop(col)
    es = entries(log)
    assert [e["status"] for e in es] == [503, 503, 200], [e["status"] for e in es]
    assert es[1]["t"] - es[0]["t"] >= 0.9 and es[2]["t"] - es[1]["t"] >= 0.9, "Retry-After ignored"
    assert expect_exactly(outs, accepted_spans(log)) == 20
    assert outs[0]["stats"]["otlp_sent"] == 20 and outs[0]["stats"]["otlp_spooled"] == 0

    col, port, log = start_collector(tmp, "c429", 0, "--fail", "1", "--fail-status", "429",
                                     "--retry-after", "1")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % port
    outs, _ = run_driver(env, "--calls", "5", "--tag", "r429")
    stop(col)
    es = entries(log)
    assert [e["status"] for e in es] == [429, 200] and es[1]["t"] - es[0]["t"] >= 0.9
    assert expect_exactly(outs, accepted_spans(log)) == 5


def t_backoff_without_retry_after(tmp):
    col, port, log = start_collector(tmp, "c", 0, "--fail", "3", "--fail-status", "502")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)
    outs, _ = run_driver(env, "--calls", "7", "--tag", "bo")
    stop(col)
    es = entries(log)
    assert [e["status"] for e in es] == [502, 502, 502, 200]
    assert expect_exactly(outs, accepted_spans(log)) == 7


def t_down_then_next_process(tmp):
    port = free_port()
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_TIMEOUT="600")
    t0 = time.time()
    outs_a, err = run_driver(env, "--calls", "30", "--steps-every", "3", "--tag", "down",
                             "--timeout-ms", "3000")
    assert time.time() - t0 < 10
    st = outs_a[0]["stats"]
    assert st["otlp_spooled"] == 40 and st["otlp_sent"] == 0 and st["written"] == 40, st
    assert "not reachable" in err, err
    files = spool_files(tmp)
    assert files, "nothing spooled"
    d = os.path.join(tmp, "spool")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for f in files:
        assert stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode) == 0o600
    col, port2, log = start_collector(tmp, "c", port)
    outs_b, _ = run_driver(env, "--calls", "5", "--tag", "next")
    stop(col)
    assert expect_exactly(outs_a + outs_b, accepted_spans(log)) == 45
    assert outs_b[0]["stats"]["otlp_replayed"] == 40
    assert spool_files(tmp) == []


def t_same_process_recovers(tmp):
    port = free_port()
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_TIMEOUT="500")
    p = subprocess.Popen([DRIVER, "--calls", "20", "--tag", "phase", "--phase"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "PHASE1", line
        assert spool_files(tmp), "phase 1 not spooled"
        col, _, log = start_collector(tmp, "c", port)
        time.sleep(1.3)   # the sink's first down period is 1 s
        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    stop(col)
    outs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert expect_exactly(outs, accepted_spans(log)) == 20
    assert outs[0]["stats"]["otlp_replayed"] == 10, outs[0]["stats"]
    assert spool_files(tmp) == []


def t_concurrent_replay(tmp):
    port = free_port()
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_TIMEOUT="300")
    outs, _ = run_driver(env, "--calls", "24", "--tag", "many", "--flush-each")
    assert len(spool_files(tmp)) >= 12, spool_files(tmp)
    col, _, log = start_collector(tmp, "c", port)
    results = [None] * 4

    def one(i):
        results[i] = run_driver(env, "--calls", "1", "--tag", "r%d" % i)[0]
    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    stop(col)
    for r in results:
        assert r is not None, "a replaying driver failed"
        outs += r
    assert expect_exactly(outs, accepted_spans(log)) == 28   # no request sent twice
    assert spool_files(tmp) == []


def t_direct_path(tmp):
    """A full ring: pushers spool their records themselves (no network on
    application threads); the thread's next success replays them."""
    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)
    outs, _ = run_driver(env, "--calls", "200", "--steps-every", "4", "--tag", "direct",
                         "--queue-max", "1")
    st = outs[0]["stats"]
    assert st["direct"] > 0 and st["written"] == 250 and st["otlp_dropped"] == 0, st
    outs2, _ = run_driver(env, "--calls", "1", "--tag", "after")   # replays what is left
    stop(col)
    assert expect_exactly(outs + outs2, accepted_spans(log)) == 251
    assert spool_files(tmp) == []


def t_fork(tmp):
    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)
    outs, _ = run_driver(env, "--calls", "50", "--tag", "fork", "--fork")
    stop(col)
    assert len(outs) == 2 and outs[0]["pid"] != outs[1]["pid"]
    assert expect_exactly(outs, accepted_spans(log)) == 51
    pids = {e["resource"]["process.pid"] for e in entries(log)}
    assert pids == {outs[0]["pid"], outs[1]["pid"]}, pids


def t_shutdown_bounded(tmp):
    col, port, log = start_collector(tmp, "c", 0, "--hang")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)  # 10 s budget
    t0 = time.time()
    outs, _ = run_driver(env, "--calls", "10", "--tag", "hang", "--timeout-ms", "1500")
    took = time.time() - t0
    stop(col)
    assert took < 4, took
    assert outs[0]["shutdown_ms"] < 1600, outs[0]["shutdown_ms"]
    assert outs[0]["stats"]["otlp_spooled"] == 10, outs[0]["stats"]
    assert spool_files(tmp)
    # the preload's exit path: flush(timeout) and then shutdown - the flush is
    # bounded the same way, so the whole exit stays near one timeout
    col, port, log = start_collector(tmp, "c2", 0, "--hang")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % port
    outs, _ = run_driver(env, "--calls", "10", "--tag", "hang2", "--timeout-ms", "1500",
                         "--exit-flush")
    stop(col)
    assert outs[0]["shutdown_ms"] < 1600, outs[0]["shutdown_ms"]
    assert outs[0]["stats"]["otlp_spooled"] == 10, outs[0]["stats"]


def t_https(tmp):
    """https through the lazily loaded libssl.so.3: verified against the
    certificate file, by address and by name; refused without it."""
    certs = os.path.join(tmp, "certs")
    subprocess.run(["bash", os.path.join(HERE, "..", "integration", "certs.sh"), certs],
                   check=True, timeout=60)
    col, port, log = start_collector(tmp, "tls", 0, "--tls-cert", os.path.join(certs, "server.pem"),
                                     "--tls-key", os.path.join(certs, "server.key"))
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="https://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_CERTIFICATE=os.path.join(certs, "ca.pem"),
               OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    outs, err = run_driver(env, "--calls", "30", "--steps-every", "3", "--tag", "tls")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://localhost:%d" % port
    outs2, _ = run_driver(env, "--calls", "3", "--tag", "tls-name")
    assert expect_exactly(outs + outs2, accepted_spans(log)) == 43
    assert all(e.get("gzip") for e in entries(log))
    # not trusted (system CAs only): nothing is sent, everything is spooled
    del env["OTEL_EXPORTER_OTLP_CERTIFICATE"]
    env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "500"
    n_before = len(entries(log))
    outs3, _ = run_driver(env, "--calls", "4", "--tag", "untrusted")
    stop(col)
    assert len(entries(log)) == n_before
    assert outs3[0]["stats"]["otlp_spooled"] == 4 and outs3[0]["stats"]["otlp_sent"] == 0


def t_bad_values(tmp):
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="ftp://127.0.0.1:1")
    outs, err = run_driver(env, "--calls", "3", "--tag", "badurl")
    lines = [l for l in err.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in l]
    assert len(lines) == 1 and "JSON Lines" in lines[0], err
    with open(os.path.join(env["HOME"], ".local/state/xenovia/traces.jsonl")) as f:
        assert len(f.readlines()) == 3

    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port,
               OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_TIMEOUT="abc",
               OTEL_EXPORTER_OTLP_COMPRESSION="zstd", OTEL_EXPORTER_OTLP_HEADERS="novalue")
    outs, err = run_driver(env, "--calls", "4", "--tag", "bad")
    stop(col)
    for var in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_HEADERS"):
        assert sum(var in l for l in err.splitlines()) == 1, (var, err)
    assert expect_exactly(outs, accepted_spans(log)) == 4
    assert all(e["encoding"] == "pb" and not e.get("gzip") for e in entries(log))


def t_file_too_and_final_4xx(tmp):
    col, port, log = start_collector(tmp, "c")
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)
    path = os.path.join(tmp, "explicit.jsonl")
    outs, _ = run_driver(env, "--calls", "6", "--tag", "both", "--file", path)
    stop(col)
    assert expect_exactly(outs, accepted_spans(log)) == 6
    with open(path) as f:
        assert len(f.readlines()) == 6

    col, port, log = start_collector(tmp, "c400", 0, "--fail", "100", "--fail-status", "400")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % port
    outs, err = run_driver(env, "--calls", "5", "--tag", "final")
    stop(col)
    assert len(entries(log)) == 1                      # not retried
    st = outs[0]["stats"]
    assert st["otlp_dropped"] == 5 and st["otlp_spooled"] == 0 and st["failed"] == 5, st
    assert "HTTP 400" in err, err


def t_preload_python_https(tmp):
    """A real host: python3 under libxenovia.so calls a mock OpenAI upstream
    (tools in the request: the answer asks for two tool calls) and the agent
    exports to an https collector - the host's own OpenSSL is initialised
    after ours and its exit must not pull OpenSSL from under the exporter."""
    if not PRELOAD:
        print("     (skipped: no --preload)")
        return
    certs = os.path.join(tmp, "certs")
    subprocess.run(["bash", os.path.join(HERE, "..", "integration", "certs.sh"), certs],
                   check=True, timeout=60)
    up_port_file = os.path.join(tmp, "up.port")
    up = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "integration", "mock_upstream.py"),
                           "--port-file", up_port_file, "--log", os.path.join(tmp, "up.log"),
                           "--max-seconds", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(up)
    deadline = time.time() + 10
    while not os.path.exists(up_port_file) or not open(up_port_file).read().strip():
        assert up.poll() is None and time.time() < deadline, "mock upstream did not start"
        time.sleep(0.02)
    up_port = int(open(up_port_file).read())
    col, port, log = start_collector(tmp, "tls", 0, "--tls-cert", os.path.join(certs, "server.pem"),
                                     "--tls-key", os.path.join(certs, "server.key"))
    env = base_env(tmp)
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="https://localhost:%d" % port,
               OTEL_EXPORTER_OTLP_CERTIFICATE=os.path.join(certs, "ca.pem"),
               XENOVIA_HOSTS="127.0.0.1", LD_PRELOAD=PRELOAD)
    code = """
import json, ssl, urllib.request
ssl.create_default_context()
for i in range(3):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi %%d" %% i}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                      {"type": "function", "function": {"name": "get_time", "parameters": {}}}]}
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    assert urllib.request.urlopen(req).status == 200
""" % up_port
    r = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "xenovia:" not in r.stderr, r.stderr
    # one call and out at once: the export happens during exit, after the
    # host's atexit handlers (OpenSSL's cleanup among them, unless we kept
    # it from registering one)
    quick = code.replace("range(3)", "range(1)").replace('"tools"', '"xtools"')
    for _ in range(3):
        r = subprocess.run(["/usr/bin/python3", "-c", quick], env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0 and "xenovia:" not in r.stderr, r.stderr
    stop(col)
    stop(up)
    quick_spans = [s for s in accepted_spans(log) if s["kind"] == 3 and "xenovia.tools" not in s["attrs"]]
    assert len(quick_spans) == 3, len(quick_spans)
    spans = [s for s in accepted_spans(log) if s not in quick_spans]
    calls = [s for s in spans if s["kind"] == 3]
    tools = [s for s in spans if s["kind"] == 1]
    assert len(calls) == 3 and len(tools) == 6, [s["name"] for s in spans]
    by_trace = {s["trace_id"]: s["span_id"] for s in calls}
    for s in tools:
        assert s["parent"] == by_trace[s["trace_id"]]
    assert sorted({s["name"] for s in tools}) == ["execute_tool get_time", "execute_tool get_weather"]
    for s in calls:
        assert s["name"] == "chat gpt-4o-mini" and s["attrs"]["server.port"] == up_port
    assert {e["resource"]["service.name"] for e in entries(log)} == {"python3"}
    assert spool_files(tmp) == []


SCENARIOS = [t_protobuf_gzip_headers, t_json_traces_endpoint, t_retry_after,
             t_backoff_without_retry_after, t_down_then_next_process, t_same_process_recovers,
             t_concurrent_replay, t_direct_path, t_fork, t_shutdown_bounded, t_https, t_bad_values,
             t_file_too_and_final_4xx, t_preload_python_https]


def main():
    if not DRIVER or not os.access(DRIVER, os.X_OK):
        print("usage: run_e2e.py path/to/otlp_driver [--preload libxenovia.so]")
        return 2
    only = os.environ.get("XV_OTLP_ONLY")
    failed = 0
    for sc in SCENARIOS:
        if only and only not in sc.__name__:
            continue
        tmp = tempfile.mkdtemp(prefix="xvotlp-e2e-")
        t0 = time.time()
        try:
            sc(tmp)
            print("ok   %-32s %.1fs" % (sc.__name__, time.time() - t0))
        except Exception as e:
            failed += 1
            print("FAIL %-32s %r" % (sc.__name__, e))
        finally:
            for p in list(PROCS):
                stop(p)
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
