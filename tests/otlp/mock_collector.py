#!/usr/bin/python3
"""mock_collector.py - a mock OTLP/HTTP trace collector for the e2e tests.

Listens on 127.0.0.1 only (port 0 = chosen by the kernel, written to
--port-file once listening). Every POST is decoded (gzip, protobuf via the
small wire-format reader below, or OTLP/JSON) and appended as one JSON line
to --log: path, headers, the status it was answered with, resource and spans.
--tls-cert/--tls-key serve HTTPS instead. --fail N answers the first N POSTs with --fail-status (and Retry-After when
--retry-after >= 0); --hang reads requests and never answers; --keep-raw also logs
each (decompressed) body as latin-1 text, for sweeps. Logged per POST: schema_url
(resource/scope), spans with trace_state.
Standard library only. Stops on SIGTERM.
"""
import argparse
import gzip
import json
import os
import signal
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def fields(b):
    """Yield (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v = struct.unpack_from("<Q", b, i)[0]
            i += 8
        elif wt == 2:
            n, i = varint(b, i)
            v = bytes(b[i:i + n])
            if len(v) != n:
                raise ValueError("truncated")
            i += n
        elif wt == 5:
            v = struct.unpack_from("<I", b, i)[0]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def anyvalue(b):
    for num, wt, v in fields(b):
        if num == 1:
            return v.decode()
        if num == 2:
            return bool(v)
        if num == 3:
            return v - (1 << 64) if v >= 1 << 63 else v
        if num == 4:
            return struct.unpack("<d", struct.pack("<Q", v))[0]
        if num == 5:
            return [anyvalue(x) for n2, _, x in fields(v) if n2 == 1]
    return None


def keyvalue(b):
    k = val = None
    for num, wt, v in fields(b):
        if num == 1:
            k = v.decode()
        elif num == 2:
            val = anyvalue(v)
    return k, val


def decode_pb(body, schemas):
    resource, spans = {}, []
    for num, _, rs in fields(body):
        assert num == 1
        for n2, _, v2 in fields(rs):
            if n2 == 3:
                schemas["resource"] = v2.decode()
            elif n2 == 1:
                for n3, _, kv in fields(v2):
                    if n3 == 1:
                        k, val = keyvalue(kv)
                        resource[k] = val
            elif n2 == 2:
                for n3, _, v3 in fields(v2):
                    if n3 == 3:
                        schemas["scope"] = v3.decode()
                    if n3 != 2:
                        continue
                    sp = {"attrs": {}, "parent": None, "status": 0}
                    for n4, _, v4 in fields(v3):
                        if n4 == 1:
                            sp["trace_id"] = v4.hex()
                        elif n4 == 2:
                            sp["span_id"] = v4.hex()
                        elif n4 == 3:
                            sp["trace_state"] = v4.decode()
                        elif n4 == 4:
                            sp["parent"] = v4.hex()
                        elif n4 == 5:
                            sp["name"] = v4.decode()
                        elif n4 == 6:
                            sp["kind"] = v4
                        elif n4 == 7:
                            sp["start"] = v4
                        elif n4 == 8:
                            sp["end"] = v4
                        elif n4 == 9:
                            k, val = keyvalue(v4)
                            sp["attrs"][k] = val
                        elif n4 == 15:
                            for n5, _, v5 in fields(v4):
                                if n5 == 3:
                                    sp["status"] = v5
                    spans.append(sp)
    return resource, spans


def json_value(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        assert isinstance(v["intValue"], str), "int64 must be a JSON string"
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [json_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def decode_json(body, schemas):
    doc = json.loads(body)
    resource, spans = {}, []
    for rs in doc["resourceSpans"]:
        if "schemaUrl" in rs:
            schemas["resource"] = rs["schemaUrl"]
        for kv in rs.get("resource", {}).get("attributes", []):
            resource[kv["key"]] = json_value(kv["value"])
        for ss in rs["scopeSpans"]:
            if "schemaUrl" in ss:
                schemas["scope"] = ss["schemaUrl"]
            for s in ss["spans"]:
                spans.append({
                    "trace_id": s["traceId"], "span_id": s["spanId"],
                    "parent": s.get("parentSpanId"), "name": s["name"], "kind": s["kind"],
                    "start": int(s["startTimeUnixNano"]), "end": int(s["endTimeUnixNano"]),
                    "status": s.get("status", {}).get("code", 0),
                    "trace_state": s.get("traceState"),
                    "attrs": {kv["key"]: json_value(kv["value"]) for kv in s.get("attributes", [])},
                })
    return resource, spans


class State:
    lock = threading.Lock()
    posts = 0
    args = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        a = State.args
        if a.hang:
            time.sleep(3600)
            return
        with State.lock:
            State.posts += 1
            fail = State.posts <= a.fail
        status = a.fail_status if fail else 200
        entry = {"t": time.time(), "path": self.path, "status": status,
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        try:
            body = raw
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(raw)
                entry["gzip"] = True
            ctype = self.headers.get("Content-Type", "")
            entry["schema_url"] = {}
            if a.keep_raw:         # for sweeps: every byte the collector got
                entry["raw"] = body.decode("latin-1")
            if ctype == "application/json":
                entry["encoding"] = "json"
                entry["resource"], entry["spans"] = decode_json(body, entry["schema_url"])
            else:
                entry["encoding"] = "pb"
                entry["resource"], entry["spans"] = decode_pb(body, entry["schema_url"])
        except Exception as e:  # recorded: the test fails on it
            entry["decode_error"] = repr(e)
            status = 400
            entry["status"] = status
        with State.lock, open(a.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        if fail and a.retry_after >= 0:
            self.send_header("Retry-After", str(a.retry_after))
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--retry-after", type=int, default=-1)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--keep-raw", action="store_true", help="log each decoded body as text too")
    p.add_argument("--lifetime", type=float, default=120.0)
    p.add_argument("--tls-cert", help="serve TLS with this certificate (PEM)")
    p.add_argument("--tls-key", help="and this key")
    State.args = a = p.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Bounded in time even if the test runner dies.
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
