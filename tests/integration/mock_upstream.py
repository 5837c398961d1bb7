#!/usr/bin/python3
"""mock_upstream.py — an OpenAI-compatible upstream for libxenovia's integration tests.

What it is: a small HTTP/1.1 server on 127.0.0.1 (plain TCP and/or TLS, each on a
port chosen by the kernel and written to a file) that answers the four API
endpoints under any path prefix with replies derived only from the request, so
two runs of the same client produce byte-identical traffic. Standard library only;
run with /usr/bin/python3.

Invariants:
  * Every reply is a pure function of (method, path, headers, body): no clocks,
    no random ids. `plan_reply()` is that function and is imported by
    run_matrix.py to compute what a trace record must say about a call.
  * Every request is appended to the log (one JSON line) BEFORE its response is
    written, so a client that has its response has its log line.
  * Lifetime is bounded (--max-seconds); SIGTERM/SIGINT end it promptly.

Scenario selection (one server serves all of them) — flags are the `-`separated
tokens of the request's `model`, plus the comma-separated tokens of an
`X-Mock-Scenario` header:
  gzip       gzip the response body (also for SSE, flushed per event) — only when
             the request's Accept-Encoding allows gzip. `X-Mock-Gzip: 1` sets it too.
  chunked    send a non-stream JSON body with Transfer-Encoding: chunked (3 chunks).
             SSE streams are always chunked.
  nousage    omit `usage` from non-stream replies.
  details    usage carries prompt/input_tokens_details.cached_tokens (half the
             input) and completion/output_tokens_details.reasoning_tokens (a
             third of the output), as OpenAI reports them.
  status<N>  answer with HTTP status N (400..599) and an OpenAI-style error body.
  trickle    write the whole response (head and body) 7 bytes at a time with
             short pauses, so the client reads it in tiny pieces.
  long       a ~6,000-word reply (streamed without pauses between events).
  cut        drop the connection half-way through the body (a stream: after half
             its events, no terminating chunk; JSON: half of Content-Length).
Request-driven behaviour:
  * `stream: true` → SSE (chat chunks / responses API events / completions chunks).
    Chat streams carry a final usage chunk only when stream_options.include_usage.
  * `tools` present and the last message is not a tool result → tool calls to the
    first two tools (two parallel calls; streamed as interleaved argument deltas).
  * `Expect: 100-continue` → `100 Continue` before the body is read.
Other paths: `/download/<N>` serves N deterministic bytes (Content-Length);
`/plain` a small non-API JSON (gzipped with `?gz=1` when the request accepts
gzip); anything else 404.

Log line: {"conn": id, "seq": n-th request on that connection, "tls": bool,
"method", "target", "version", "headers": [[name, value], ...] (as received, in
order), "body_b64" (decoded body: de-chunked, not inflated), "body_len",
"chunked_request": bool, "expect_continue_sent": bool}.

Thread safety: one thread per connection; the log file is written under a lock.
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import zlib

API_SUFFIXES = (
    ("/chat/completions", "chat_completions"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/completions", "completions"),
)
CREATED = 1700000000          # fixed "created" timestamp: replies must be deterministic
STREAM_PAUSE_S = 0.002        # pause between SSE events so clients read them in pieces
MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------
# Reply planning: a pure function of the request (shared with run_matrix.py)
# --------------------------------------------------------------------------

def classify(method, target):
    """request_type for an API call, or None."""
    if method != "POST":
        return None
    path = target.split("?", 1)[0].rstrip("/")
    for suffix, name in API_SUFFIXES:
        if path.endswith(suffix):
            return name
    return None


def _hash(data, n=24):
    return hashlib.sha256(data).hexdigest()[:n]


def _text_of(content):
    """Text of a chat message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return "".join(out)
    return ""


def _flags(model, headers):
    flags = set(str(model or "").lower().split("-"))
    for name, value in headers:
        lname = name.lower()
        if lname == "x-mock-scenario":
            flags.update(t.strip().lower() for t in value.split(","))
        elif lname == "x-mock-gzip" and value.strip() == "1":
            flags.add("gzip")
    return flags


def _accepts_gzip(headers):
    for name, value in headers:
        if name.lower() == "accept-encoding":
            for tok in value.split(","):
                tok = tok.strip().lower()
                if tok.startswith("gzip") and not tok.replace(" ", "").endswith("q=0"):
                    return True
    return False


def _tool_args(tool_name, index, last_text):
    """Deterministic JSON arguments for the index-th tool call."""
    args = {"call": index, "tool": tool_name, "chars": len(last_text),
            "topic": last_text[:24]}
    return json.dumps(args, separators=(",", ":"), sort_keys=True)


def _tool_name(tool):
    if not isinstance(tool, dict):
        return "unknown"
    fn = tool.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return fn["name"]          # chat completions shape
    if isinstance(tool.get("name"), str):
        return tool["name"]        # responses API shape
    return "unknown"


def plan_reply(method, target, headers, body):
    """What the mock answers to one request.

    Returns a dict: api (request_type or None), model, stream, status, flags,
    gzip (bool), content (str or None), tool_calls [(id, name, arguments)],
    usage ((in, out) or None), id (response id), embeddings (list or None),
    include_usage (chat streams), error (str or None).
    """
    api = classify(method, target)
    plan = {"api": api, "model": None, "stream": False, "status": 200, "flags": set(), "cut": False,
            "gzip": False, "content": None, "tool_calls": [], "usage": None,
            "id": None, "embeddings": None, "include_usage": False, "error": None,
            "finish_reason": "stop"}
    if api is None:
        return plan
    try:
        req = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        req = None
    if not isinstance(req, dict):
        plan.update(status=400, error="request body is not a JSON object")
        return plan
    model = req.get("model") if isinstance(req.get("model"), str) else "unknown"
    flags = _flags(model, headers)
    plan["request"] = req
    plan.update(model=model, flags=flags, stream=req.get("stream") is True,
                gzip=("gzip" in flags and _accepts_gzip(headers)),
                id=_hash(body))
    for f in flags:
        if f.startswith("status") and f[6:].isdigit() and 400 <= int(f[6:]) <= 599:
            plan.update(status=int(f[6:]), error="mock error requested by scenario",
                        stream=False)
            return plan

    # What the conversation says, per API shape.
    nmsgs, total_chars, last_text, last_is_tool = 0, 0, "", False
    if api == "chat_completions":
        msgs = req.get("messages") if isinstance(req.get("messages"), list) else []
        for m in msgs:
            if isinstance(m, dict):
                t = _text_of(m.get("content"))
                total_chars += len(t)
                nmsgs += 1
                if m.get("role") == "user":
                    last_text = t
        last_is_tool = bool(msgs) and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "tool"
        so = req.get("stream_options")
        plan["include_usage"] = isinstance(so, dict) and so.get("include_usage") is True
    elif api == "responses":
        inp = req.get("input")
        if isinstance(inp, str):
            nmsgs, total_chars, last_text = 1, len(inp), inp
        elif isinstance(inp, list):
            for item in inp:
                if not isinstance(item, dict):
                    continue
                nmsgs += 1
                if item.get("type") == "function_call_output":
                    t = str(item.get("output", ""))
                    last_is_tool = True
                else:
                    t = _text_of(item.get("content"))
                    if item.get("role", "user") == "user":
                        last_text, last_is_tool = t, False
                total_chars += len(t)
    elif api == "completions":
        p = req.get("prompt")
        p = p if isinstance(p, str) else json.dumps(p)
        nmsgs, total_chars, last_text = 1, len(p), p
    elif api == "embeddings":
        inp = req.get("input")
        items = inp if isinstance(inp, list) else [inp]
        vecs = []
        for i, item in enumerate(items):
            s = item if isinstance(item, str) else json.dumps(item)
            digest = hashlib.sha256(s.encode("utf-8")).digest()
            vecs.append([round((digest[k] - 128) / 128.0, 6) for k in range(8)])
            total_chars += len(s)
        plan["embeddings"] = vecs
        plan["usage"] = (max(1, total_chars // 4), None)
        plan["stream"] = False
        return plan

    prompt_tokens = max(1, total_chars // 4)
    tools = req.get("tools") if isinstance(req.get("tools"), list) else []
    if tools and not last_is_tool and api in ("chat_completions", "responses"):
        calls = []
        for i, tool in enumerate(tools[:2]):
            name = _tool_name(tool)
            calls.append(("call_%s_%d" % (plan["id"][:12], i), name,
                          _tool_args(name, i, last_text)))
        plan["tool_calls"] = calls
        plan["finish_reason"] = "tool_calls"
        out_tokens = sum(len(c[2]) // 4 for c in calls)
    else:
        if last_is_tool:
            text = "Tool results received by %s; %d messages so far." % (model, nmsgs)
        else:
            text = ("Hello from %s. Your last message had %d characters and the "
                    "conversation has %d messages." % (model, len(last_text), nmsgs))
        if "long" in flags:
            text += "".join(" w%d" % i for i in range(6000))
        plan["content"] = text
        out_tokens = len(text.split())
    plan["cut"] = "cut" in flags
    # Usage: always in non-stream replies (unless `nousage`), in responses API
    # streams, and in chat/completions streams only when include_usage.
    if plan["cut"]:
        pass                    # the reply never gets as far as its usage
    elif plan["stream"]:
        if api == "responses" or plan["include_usage"]:
            plan["usage"] = (prompt_tokens, out_tokens)
    elif "nousage" not in flags:
        plan["usage"] = (prompt_tokens, out_tokens)
    return plan


# --------------------------------------------------------------------------
# Rendering a plan into response bytes
# --------------------------------------------------------------------------

def _j(obj):
    return json.dumps(obj, separators=(",", ":"))


def _words(text):
    """Split text into stream deltas: each word with its trailing space."""
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def _thirds(s):
    n = len(s)
    a, b = n // 3, 2 * n // 3
    return [s[:a], s[a:b], s[b:]]


def _details(plan, u):
    """With the `details` flag: the usage details OpenAI sends (cached input
    tokens = half the input, reasoning tokens = a third of the output)."""
    if "details" in plan["flags"]:
        if "input_tokens" in u:
            u["input_tokens_details"] = {"cached_tokens": u["input_tokens"] // 2}
            u["output_tokens_details"] = {"reasoning_tokens": u["output_tokens"] // 3}
        else:
            u["prompt_tokens_details"] = {"cached_tokens": u["prompt_tokens"] // 2}
            u["completion_tokens_details"] = {"reasoning_tokens": u["completion_tokens"] // 3}
    return u


def render_json(plan):
    """Non-stream reply body (dict)."""
    api, model, rid = plan["api"], plan["model"], plan["id"]
    if plan["error"]:
        return {"error": {"message": plan["error"], "type": "invalid_request_error",
                          "param": None, "code": "mock_status_%d" % plan["status"]}}
    usage = plan["usage"]
    if api == "chat_completions":
        msg = {"role": "assistant", "content": plan["content"], "refusal": None}
        if plan["tool_calls"]:
            msg["tool_calls"] = [{"id": cid, "type": "function",
                                  "function": {"name": name, "arguments": args}}
                                 for cid, name, args in plan["tool_calls"]]
        out = {"id": "chatcmpl-" + rid, "object": "chat.completion", "created": CREATED,
               "model": model, "system_fingerprint": "fp_mock",
               "choices": [{"index": 0, "message": msg, "logprobs": None,
                            "finish_reason": plan["finish_reason"]}]}
        if usage:
            out["usage"] = _details(plan, {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                           "total_tokens": usage[0] + usage[1]})
        return out
    if api == "responses":
        out = {"id": "resp_" + rid, "object": "response", "created_at": CREATED,
               "status": "completed", "model": model, "output": _responses_output(plan),
               "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        if usage:
            out["usage"] = _details(plan, {"input_tokens": usage[0], "output_tokens": usage[1],
                                           "total_tokens": usage[0] + usage[1]})
        return out
    if api == "completions":
        out = {"id": "cmpl-" + rid, "object": "text_completion", "created": CREATED,
               "model": model, "choices": [{"text": plan["content"], "index": 0,
                                            "logprobs": None, "finish_reason": "stop"}]}
        if usage:
            out["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                            "total_tokens": usage[0] + usage[1]}
        return out
    if api == "embeddings":
        data = []
        for i, vec in enumerate(plan["embeddings"]):
            if plan.get("embedding_b64"):
                emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": usage[0], "total_tokens": usage[0]}}
    return {"error": {"message": "unknown endpoint"}}


def _responses_output(plan):
    rid = plan["id"]
    if plan["tool_calls"]:
        return [{"type": "function_call", "id": "fc_%s_%d" % (rid[:12], i), "call_id": cid,
                 "name": name, "arguments": args, "status": "completed"}
                for i, (cid, name, args) in enumerate(plan["tool_calls"])]
    return [{"type": "message", "id": "msg_" + rid, "status": "completed",
             "role": "assistant",
             "content": [{"type": "output_text", "text": plan["content"],
                          "annotations": []}]}]


def render_sse(plan):
    """List of SSE event strings for a stream reply."""
    api, model, rid = plan["api"], plan["model"], plan["id"]
    events = []
    if api == "chat_completions":
        iu = plan["include_usage"]

        def chunk(delta, finish=None):
            c = {"id": "chatcmpl-" + rid, "object": "chat.completion.chunk",
                 "created": CREATED, "model": model, "system_fingerprint": "fp_mock",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish}]}
            if iu:
                c["usage"] = None
            return "data: " + _j(c) + "\n\n"

        if plan["tool_calls"]:
            events.append(chunk({"role": "assistant", "content": None}))
            for i, (cid, name, _args) in enumerate(plan["tool_calls"]):
                events.append(chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                                     "function": {"name": name, "arguments": ""}}]}))
            pieces = [_thirds(args) for _cid, _name, args in plan["tool_calls"]]
            for k in range(3):           # interleave: call0 piece k, call1 piece k, ...
                for i, p in enumerate(pieces):
                    events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": p[k]}}]}))
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            for w in _words(plan["content"]):
                events.append(chunk({"content": w}))
        events.append(chunk({}, plan["finish_reason"]))
        if iu and plan["usage"]:
            u = plan["usage"]
            events.append("data: " + _j({
                "id": "chatcmpl-" + rid, "object": "chat.completion.chunk", "created": CREATED,
                "model": model, "system_fingerprint": "fp_mock", "choices": [],
                "usage": _details(plan, {"prompt_tokens": u[0], "completion_tokens": u[1],
                                         "total_tokens": u[0] + u[1]})}) + "\n\n")
        events.append("data: [DONE]\n\n")
        return events
    if api == "completions":
        for w in _words(plan["content"]):
            events.append("data: " + _j({"id": "cmpl-" + rid, "object": "text_completion",
                                         "created": CREATED, "model": model,
                                         "choices": [{"text": w, "index": 0, "logprobs": None,
                                                      "finish_reason": None}]}) + "\n\n")
        events.append("data: " + _j({"id": "cmpl-" + rid, "object": "text_completion",
                                     "created": CREATED, "model": model,
                                     "choices": [{"text": "", "index": 0, "logprobs": None,
                                                  "finish_reason": "stop"}]}) + "\n\n")
        events.append("data: [DONE]\n\n")
        return events
    # Responses API: typed events with sequence numbers.
    seq = [0]

    def ev(etype, payload):
        payload = dict(payload)
        payload["type"] = etype
        payload["sequence_number"] = seq[0]
        seq[0] += 1
        return "event: %s\ndata: %s\n\n" % (etype, _j(payload))

    base = {"id": "resp_" + rid, "object": "response", "created_at": CREATED,
            "model": model, "output": [], "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": []}
    events.append(ev("response.created", {"response": dict(base, status="in_progress")}))
    events.append(ev("response.in_progress", {"response": dict(base, status="in_progress")}))
    output = _responses_output(plan)
    for oi, item in enumerate(output):
        if item["type"] == "function_call":
            events.append(ev("response.output_item.added", {
                "output_index": oi, "item": dict(item, arguments="", status="in_progress")}))
            for p in _thirds(item["arguments"]):
                events.append(ev("response.function_call_arguments.delta", {
                    "item_id": item["id"], "output_index": oi, "delta": p}))
            events.append(ev("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": oi, "arguments": item["arguments"]}))
            events.append(ev("response.output_item.done", {"output_index": oi, "item": item}))
        else:
            text = item["content"][0]["text"]
            events.append(ev("response.output_item.added", {
                "output_index": oi, "item": dict(item, content=[], status="in_progress")}))
            events.append(ev("response.content_part.added", {
                "item_id": item["id"], "output_index": oi, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}))
            for w in _words(text):
                events.append(ev("response.output_text.delta", {
                    "item_id": item["id"], "output_index": oi, "content_index": 0, "delta": w}))
            events.append(ev("response.output_text.done", {
                "item_id": item["id"], "output_index": oi, "content_index": 0, "text": text}))
            events.append(ev("response.content_part.done", {
                "item_id": item["id"], "output_index": oi, "content_index": 0,
                "part": item["content"][0]}))
            events.append(ev("response.output_item.done", {"output_index": oi, "item": item}))
    done = dict(base, status="completed", output=output)
    if plan["usage"]:
        u = plan["usage"]
        done["usage"] = _details(plan, {"input_tokens": u[0], "output_tokens": u[1],
                                        "total_tokens": u[0] + u[1]})
    events.append(ev("response.completed", {"response": done}))
    return events


# --------------------------------------------------------------------------
# Download data
# --------------------------------------------------------------------------

_BLOCK = bytes((i * 7 + 3) & 0xFF for i in range(65536))


def download_bytes(n):
    """Yield the deterministic /download/<n> payload in 64 KiB blocks."""
    while n > 0:
        k = min(n, len(_BLOCK))
        yield _BLOCK[:k]
        n -= k


# --------------------------------------------------------------------------
# HTTP/1.1 server
# --------------------------------------------------------------------------

class BadRequest(Exception):
    pass


class Cut(Exception):
    """Raised after a `cut` reply's partial body: drop the connection."""


class Writer:
    """sendall, or — for `trickle` — 7 bytes at a time with short pauses."""

    def __init__(self, sock, trickle):
        self.sock, self.trickle = sock, trickle

    def sendall(self, data):
        if not self.trickle:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), 7):
            self.sock.sendall(data[i:i + 7])
            time.sleep(0.0005)


class Server:
    def __init__(self, log_path):
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.conn_lock = threading.Lock()
        self.next_conn = 1
        self.stop = threading.Event()

    def log(self, entry):
        if not self.log_path:
            return
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line)

    def new_conn_id(self):
        with self.conn_lock:
            cid = self.next_conn
            self.next_conn += 1
            return cid

    # ---- connection loop ----
    def serve_conn(self, sock, tls_ctx):
        cid = self.new_conn_id()
        rf = None
        try:
            sock.settimeout(60)
            if tls_ctx is not None:
                sock = tls_ctx.wrap_socket(sock, server_side=True)
            rf = sock.makefile("rb")
            seq = 0
            while not self.stop.is_set():
                keep = self.serve_one(sock, rf, cid, seq, tls_ctx is not None)
                seq += 1
                if not keep:
                    break
        except (OSError, ssl.SSLError, BadRequest, ValueError, Cut):
            pass
        finally:
            # Close the reader too: a socket with an open makefile() is only
            # really closed when both are. No TLS close_notify is sent (a
            # `cut` reply must look like a dropped connection).
            try:
                if rf is not None:
                    rf.close()
                sock.close()
            except OSError:
                pass

    def serve_one(self, sock, rf, cid, seq, is_tls):
        line = rf.readline(65537)
        if not line:
            return False
        while line in (b"\r\n", b"\n"):     # tolerate stray CRLF between requests
            line = rf.readline(65537)
            if not line:
                return False
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3:
            raise BadRequest(line)
        method, target, version = parts
        headers, total = [], 0
        while True:
            h = rf.readline(65537)
            total += len(h)
            if not h or total > MAX_HEADER_BYTES:
                raise BadRequest("headers")
            if h in (b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").rstrip("\r\n").partition(":")
            headers.append([name, value.strip()])
        hmap = {}
        for name, value in headers:
            hmap.setdefault(name.lower(), value)

        expect_sent = False
        if hmap.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            expect_sent = True

        chunked = "chunked" in hmap.get("transfer-encoding", "").lower()
        if chunked:
            body = bytearray()
            while True:
                size_line = rf.readline(65537)
                if not size_line:
                    raise BadRequest("eof in chunk size")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:                     # trailers
                        t = rf.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                body += rf.read(size)
                rf.readline(3)
                if len(body) > MAX_BODY_BYTES:
                    raise BadRequest("body too large")
            body = bytes(body)
        else:
            n = int(hmap.get("content-length", "0") or "0")
            if n > MAX_BODY_BYTES:
                raise BadRequest("body too large")
            body = rf.read(n) if n else b""
            if len(body) != n:
                raise BadRequest("short body")

        self.log({"conn": cid, "seq": seq, "tls": is_tls, "method": method,
                  "target": target, "version": version, "headers": headers,
                  "body_b64": base64.b64encode(body).decode(), "body_len": len(body),
                  "chunked_request": chunked, "expect_continue_sent": expect_sent})

        conn_hdr = hmap.get("connection", "").lower()
        keep = (version == "HTTP/1.1" and "close" not in conn_hdr) or \
               (version == "HTTP/1.0" and "keep-alive" in conn_hdr)
        head_only = method == "HEAD"
        path = target.split("?", 1)[0]

        if path == "/plain" and method in ("GET", "HEAD", "POST"):
            gz = "gz=1" in target.partition("?")[2].split("&") and _accepts_gzip(headers)
            doc = {"ok": True, "service": "mock-upstream", "path": path}
            if gz:
                # 2 MiB that gzip shrinks ~1,000 times: past the agent's inflation
                # ratio bound, were it to inflate a body nothing reads.
                doc["pad"] = "0" * (2 << 20)
            data = _j(doc).encode()
            self.send_simple(sock, 200, "application/json", data, keep, head_only, gz)
            return keep
        if path.startswith("/download/") and method in ("GET", "HEAD"):
            try:
                n = int(path[len("/download/"):])
            except ValueError:
                n = -1
            if n < 0 or n > 1 << 31:
                self.send_simple(sock, 400, "text/plain", b"bad size\n", keep, head_only)
                return keep
            head = ("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Length: %d\r\nConnection: %s\r\n\r\n"
                    % (n, "keep-alive" if keep else "close"))
            sock.sendall(head.encode())
            if not head_only:
                for block in download_bytes(n):
                    sock.sendall(block)
            return keep

        plan = plan_reply(method, target, headers, body)
        if plan["api"] is None:
            self.send_simple(sock, 404, "application/json",
                             _j({"error": {"message": "no such route: " + path}}).encode(),
                             keep, head_only)
            return keep
        if plan["api"] == "embeddings":
            try:
                req = json.loads(body)
                plan["embedding_b64"] = req.get("encoding_format") == "base64"
            except ValueError:
                pass
        out = Writer(sock, "trickle" in plan["flags"])
        if plan["stream"] and plan["status"] == 200:
            self.send_stream(out, plan, keep)
        else:
            data = _j(render_json(plan)).encode()
            self.send_api_json(out, plan, data, keep, head_only)
        return keep

    @staticmethod
    def _reason(status):
        return {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
                503: "Service Unavailable"}.get(status, "Status")

    def send_simple(self, sock, status, ctype, data, keep, head_only=False, gz=False):
        if gz:
            data = gzip.compress(data, mtime=0)
        head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n"
                "Connection: %s\r\n\r\n" % (status, self._reason(status), ctype,
                                            "Content-Encoding: gzip\r\n" if gz else "",
                                            len(data), "keep-alive" if keep else "close"))
        sock.sendall(head.encode() + (b"" if head_only else data))

    def send_api_json(self, sock, plan, data, keep, head_only):
        hdrs = ["HTTP/1.1 %d %s" % (plan["status"], self._reason(plan["status"])),
                "Content-Type: application/json",
                "x-request-id: req_" + (plan["id"] or "none")[:20],
                "openai-processing-ms: 7"]
        if plan["gzip"]:
            data = gzip.compress(data, mtime=0)
            hdrs.append("Content-Encoding: gzip")
        chunked = "chunked" in plan["flags"] and not head_only
        if chunked:
            hdrs.append("Transfer-Encoding: chunked")
        else:
            hdrs.append("Content-Length: %d" % len(data))
        hdrs.append("Connection: %s" % ("keep-alive" if keep else "close"))
        head = ("\r\n".join(hdrs) + "\r\n\r\n").encode()
        if "cut" in plan["flags"] and not head_only and not plan["error"]:
            if chunked:
                sock.sendall(head + b"%x\r\n%s\r\n" % (len(data), data[:len(data) // 2]))
            else:
                sock.sendall(head + data[:len(data) // 2])
            raise Cut()
        if head_only:
            sock.sendall(head)
        elif chunked:
            sock.sendall(head)
            for piece in _thirds(data):
                if piece:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    time.sleep(STREAM_PAUSE_S)
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(head + data)

    def send_stream(self, sock, plan, keep):
        hdrs = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8",
                "Cache-Control: no-cache", "x-request-id: req_" + plan["id"][:20],
                "openai-processing-ms: 3", "Transfer-Encoding: chunked"]
        comp = None
        if plan["gzip"]:
            hdrs.append("Content-Encoding: gzip")
            comp = zlib.compressobj(6, zlib.DEFLATED, 31)   # gzip wrapper, mtime 0
        hdrs.append("Connection: %s" % ("keep-alive" if keep else "close"))
        sock.sendall(("\r\n".join(hdrs) + "\r\n\r\n").encode())
        events = render_sse(plan)
        if "cut" in plan["flags"]:
            events = events[:len(events) // 2]
        for i, ev in enumerate(events):
            data = ev.encode("utf-8")
            if comp is not None:
                data = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
            frame = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
            if i < len(events) - 1:
                sock.sendall(frame)
                if "long" not in plan["flags"]:
                    time.sleep(STREAM_PAUSE_S)
                continue
            if "cut" in plan["flags"]:
                sock.sendall(frame)
                raise Cut()
            # The last event goes out together with the end of the body, so a
            # client that stops at [DONE] finds the connection idle and reuses it.
            if comp is not None:
                tail = comp.flush(zlib.Z_FINISH)
                if tail:
                    frame += b"%x\r\n%s\r\n" % (len(tail), tail)
            sock.sendall(frame + b"0\r\n\r\n")


def _listen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.settimeout(0.2)
    return s


def _write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)        # readers never see a half-written file


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", help="serve plain HTTP; write its port here")
    ap.add_argument("--tls-port-file", help="serve TLS; write its port here")
    ap.add_argument("--cert", help="server certificate (PEM) for TLS")
    ap.add_argument("--key", help="server key (PEM) for TLS")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--max-seconds", type=float, default=600.0,
                    help="exit after this long whatever happens (default 600)")
    args = ap.parse_args()
    if not args.port_file and not args.tls_port_file:
        ap.error("need --port-file and/or --tls-port-file")
    if args.tls_port_file and not (args.cert and args.key):
        ap.error("--tls-port-file needs --cert and --key")

    srv = Server(args.log)
    listeners = []
    if args.port_file:
        listeners.append((_listen(), None, args.port_file))
    if args.tls_port_file:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])   # never h2: the agent inspects HTTP/1.x
        listeners.append((_listen(), ctx, args.tls_port_file))

    def on_signal(_sig, _frm):
        srv.stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def accept_loop(lsock, ctx):
        while not srv.stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=srv.serve_conn, args=(c, ctx), daemon=True).start()

    threads = []
    for lsock, ctx, pfile in listeners:
        t = threading.Thread(target=accept_loop, args=(lsock, ctx), daemon=True)
        t.start()
        threads.append(t)
    for lsock, _ctx, pfile in listeners:
        _write_port(pfile, lsock.getsockname()[1])

    deadline = time.monotonic() + args.max_seconds
    while not srv.stop.is_set() and time.monotonic() < deadline:
        srv.stop.wait(0.2)
    srv.stop.set()
    for lsock, _ctx, _p in listeners:
        lsock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
