#!/usr/bin/python3
"""ALPN narrowing (SPEC §2): for hosts the agent must inspect, curl's h2 offer is
narrowed to http/1.1; for other hosts the offer is left alone.

A TLS server on 127.0.0.1 that prefers h2 records which protocol each
connection negotiated and answers HTTP/1.1. Without the agent (or with a host
list that does not name it) curl negotiates h2; with XENOVIA_HOSTS naming the
host, the server must see http/1.1 and curl must read a stamped response.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

LIB = sys.argv[1]
CERTS_SH = sys.argv[2]
if not os.path.exists(LIB):
    print(f"SKIP: {LIB} not built")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="xv-alpn-")
subprocess.run(["bash", CERTS_SH, tmp], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL, timeout=60)
ca = os.path.join(tmp, "ca.pem")

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key"))
ctx.set_alpn_protocols(["h2", "http/1.1"])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
srv.settimeout(30)
port = srv.getsockname()[1]
seen = []
BODY = json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "message": {
    "role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()


def serve():
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            proto = tls.selected_alpn_protocol()
            seen.append(proto)
            if proto == "h2":
                tls.close()
                continue
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            cl = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    cl = int(line.split(b":")[1])
            while len(rest) < cl:
                rest += tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + BODY)
            tls.close()
        except (OSError, ssl.SSLError):
            pass


t = threading.Thread(target=serve, daemon=True)
t.start()


def run(agent, hosts):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "LD_PRELOAD",
                        "XENOVIA_HOSTS")}
    env["XENOVIA_TRACE_FILE"] = os.path.join(tmp, "traces.jsonl")
    if agent:
        env["LD_PRELOAD"] = LIB
    if hosts is not None:
        env["XENOVIA_HOSTS"] = hosts
    before = len(seen)
    p = subprocess.run(["curl", "-s", "-i", "--cacert", ca, "--max-time", "20",
                        f"https://localhost:{port}/v1/chat/completions",
                        "-H", "Content-Type: application/json", "-d", '{"model":"m","messages":[]}'],
                       env=env, capture_output=True, timeout=30)
    return (seen[before] if len(seen) > before else None), p.stdout.decode(errors="replace")


failures = []
proto, _ = run(False, None)
if proto != "h2":
    failures.append(f"without the agent curl should negotiate h2 here, got {proto!r}")
proto, _ = run(True, "other.example")
if proto != "h2":
    failures.append(f"host not listed: offer must be left alone (h2), got {proto!r}")
proto, out = run(True, "localhost")
if proto != "http/1.1":
    failures.append(f"host listed: offer must be narrowed to http/1.1, got {proto!r}")
if "X-Xenovia-Trace-Id:" not in out:
    failures.append("narrowed call was not stamped:\n" + out[:500])
srv.close()
for f in failures:
    print("FAIL:", f)
print(f"{3 - min(3, len(failures))} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
