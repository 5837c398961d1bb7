"""xvclient.py — scenarios and transcripts shared by the Python (and curl) test clients.

What it is: the single definition of what each integration scenario sends
(`calls_for`) and of how a client prints what it got (`Transcript`), so every
client prints the same kind of deterministic transcript: no clocks, no random
ids, headers limited to a fixed list. Response headers named `x-xenovia-*`
(stamped by the agent) are printed on separate `XV-HEADER name: value` lines,
which run_matrix.py takes out before comparing a run without the agent with a
run under it, and uses to check the trace ids.

Also a tiny CLI for the curl client: `xvclient.py manifest SCENARIO DIR` writes
each call's body to DIR/body-<i>.json and prints one tab-separated line per
call: index, method, path, stream (0/1), gzip (0/1), chunked request (0/1),
one extra request header "Name: value" or "-", body file or "-".

Thread safety: none needed (each client is one process, one thread or one
event loop).
"""

import hashlib
import json
import os
import sys
import zlib

API_KEY = "sk-test-XENOVIA-SECRET-123"   # distinctive: must never appear in a trace or log
MODEL = "gpt-4o-mini"

SCENARIOS = ("chat", "stream", "tools", "gzip", "big", "keepalive", "endpoints", "non_api",
             "chunked_req", "excluded", "nocapture", "trickle", "long", "cut",
             "conversation", "policy_block", "properties", "bad_session")
FIXED_SESSION = "5f0c6a8e-3b1d-4c2e-9a7b-1d2e3f4a5b6c"   # sent as X-Xenovia-Session-Id
# Scenarios that send the same calls as another one; run_matrix.py changes the
# agent's configuration for them (XENOVIA_HOSTS, XENOVIA_CAPTURE_CONTENT).
ALIASES = {"excluded": "chat", "nocapture": "tools"}
DOWNLOAD_BYTES = 100 * 1024 * 1024   # the non-API download (100 MiB)
BIG_BODY_TEXT_BYTES = 1024 * 1024 + 333   # > 1 MiB: curl sends Expect: 100-continue

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Local time in a timezone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}},
                       "required": ["tz"]}}},
]


RESPONSES_TOOLS = [
    {"type": "function", "name": "lookup_order", "description": "Find an order",
     "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}},
    {"type": "function", "name": "refund_order", "description": "Refund an order",
     "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}},
]


def _chat(model, text, **extra):
    body = {"model": model, "messages": [
        {"role": "system", "content": "You are a terse test assistant."},
        {"role": "user", "content": text}]}
    body.update(extra)
    return body


def big_text():
    unit = "The quick brown fox jumps over the lazy dog 0123456789. "
    n = BIG_BODY_TEXT_BYTES
    return (unit * (n // len(unit) + 1))[:n]


def calls_for(scenario):
    """List of calls: dict(method, path, body (dict|None), stream, gzip)."""
    scenario = ALIASES.get(scenario, scenario)

    def post(path, body, gz=False, chunked=False):
        return {"method": "POST", "path": path, "body": body,
                "stream": bool(body.get("stream")), "gzip": gz, "chunked": chunked}

    if scenario == "chat":
        return [post("/v1/chat/completions", _chat(MODEL, "Say hello to the integration test."))]
    if scenario == "stream":
        return [post("/v1/chat/completions",
                     _chat(MODEL, "Stream a greeting, please.", stream=True,
                           stream_options={"include_usage": True}))]
    if scenario == "tools":
        return [post("/v1/chat/completions",
                     _chat(MODEL, "What is the weather in Paris and the time there?",
                           tools=TOOLS)),
                post("/v1/chat/completions",
                     _chat(MODEL, "Same question, streamed: weather and time in Oslo?",
                           tools=TOOLS, stream=True))]
    if scenario == "gzip":
        return [post("/v1/chat/completions", _chat(MODEL + "-gzip", "Compressed reply, please."),
                     gz=True),
                post("/v1/chat/completions",
                     _chat(MODEL + "-gzip", "Compressed stream, please.", stream=True,
                           stream_options={"include_usage": True}), gz=True)]
    if scenario == "trickle":
        # The mock writes these replies 7 bytes at a time.
        return [post("/v1/chat/completions", _chat(MODEL + "-trickle", "Reply slowly, please.")),
                post("/v1/chat/completions",
                     _chat(MODEL + "-trickle", "Slow tool calls, streamed.", tools=TOOLS,
                           stream=True, stream_options={"include_usage": True}))]
    if scenario == "cut":
        # The mock drops the connection half-way through each reply: clients
        # print the error they got; the agent must still write each record.
        return [post("/v1/chat/completions",
                     _chat(MODEL + "-cut", "This stream will break.", stream=True,
                           stream_options={"include_usage": True})),
                post("/v1/chat/completions", _chat(MODEL + "-cut", "This reply will break."))]
    if scenario == "policy_block":
        # Under policies/block_drop_database.rego (run_matrix.py sets
        # XENOVIA_POLICY) calls 2 and 4 must get the synthetic 403 and never
        # reach the upstream; 1 and 3 pass, on the same connection.
        drop = {"type": "function", "function": {
            "name": "drop_database", "description": "Drop a database",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}}}}
        calls = [post("/v1/chat/completions", _chat(MODEL, "Weather, allowed.", tools=TOOLS[:1])),
                 post("/v1/chat/completions", _chat(MODEL, "Clean up the database.",
                                                    tools=[TOOLS[0], drop])),
                 post("/v1/chat/completions", _chat(MODEL, "Still here after the block?")),
                 post("/v1/chat/completions", _chat(MODEL, "Drop it, streamed.", tools=[drop],
                                                    stream=True))]
        calls[1]["expect_synthetic"] = calls[3]["expect_synthetic"] = "block"
        return calls
    if scenario == "conversation":
        return conversation_calls(post)
    if scenario == "bad_session":
        # SPEC §4: an app-sent X-Xenovia-Session-Id that is not a UUID gets a
        # synthetic 400 naming the header and is not sent; the next call is.
        calls = [post("/v1/chat/completions", _chat(MODEL, "My session id is bad.")),
                 post("/v1/chat/completions", _chat(MODEL, "This one is fine."))]
        calls[0]["headers"] = {"X-Xenovia-Session-Id": "not-a-uuid"}
        calls[0]["expect_synthetic"] = "bad_session"
        return calls
    if scenario == "properties":
        # run_matrix.py sets XENOVIA_PROPERTIES/FLOW_ID/SESSION_PATH for the
        # agent; call 2 sends its own property header, which must win.
        calls = [post("/v1/chat/completions", _chat(MODEL, "Tag me with properties.")),
                 post("/v1/chat/completions", _chat(MODEL, "The app tags this one itself.",
                                                    stream=True))]
        calls[1]["headers"] = {"X-Xenovia-Property-team": "app-value"}
        return calls
    if scenario == "long":
        # ~40 KB replies: over the 16 KiB capture limit; the stream has ~6,000 events.
        return [post("/v1/chat/completions", _chat(MODEL + "-long", "A long reply, gzipped."),
                     gz=True),
                post("/v1/chat/completions",
                     _chat(MODEL + "-long", "A long streamed reply.", stream=True,
                           stream_options={"include_usage": True}))]
    if scenario == "big":
        return [post("/v1/chat/completions", _chat(MODEL, big_text()))]
    if scenario == "keepalive":
        return [post("/v1/chat/completions", _chat(MODEL, "First call on this connection.")),
                post("/v1/chat/completions",
                     _chat(MODEL, "Second call, streamed without usage.", stream=True)),
                post("/v1/chat/completions",
                     _chat(MODEL + "-chunked-nousage", "Third call: chunked reply, no usage."))]
    if scenario == "endpoints":
        return [post("/v1/responses", {"model": "gpt-4.1-mini", "input": "Responses API, plain."}),
                post("/v1/responses", {"model": "gpt-4.1-mini", "input": "Responses API, streamed.",
                                       "stream": True}),
                post("/v1/responses", {"model": "gpt-4.1-mini", "input": "Responses API tools, streamed.",
                                       "stream": True, "tools": RESPONSES_TOOLS}),
                post("/v1/embeddings", {"model": "text-embedding-3-small",
                                        "input": ["alpha", "beta"]}),
                post("/v1/completions", {"model": "gpt-3.5-turbo-instruct",
                                         "prompt": "Legacy completion:", "max_tokens": 16}),
                post("/openai/v1/chat/completions", _chat(MODEL, "Under another prefix.")),
                post("/v1/chat/completions", _chat(MODEL + "-status400", "Please fail."))]
    if scenario == "chunked_req":
        # Request bodies sent with Transfer-Encoding: chunked (in 3 pieces).
        return [post("/v1/chat/completions",
                     _chat(MODEL, "A chunked request body. " * 40), chunked=True),
                post("/v1/chat/completions",
                     _chat(MODEL, "Chunked request, streamed reply.", stream=True,
                           stream_options={"include_usage": True}), chunked=True)]
    if scenario == "non_api":
        # The gzipped /plain and the download are passed through (framed, not
        # inflated or parsed); the API call after them must still be inspected.
        return [{"method": "GET", "path": "/plain", "body": None, "stream": False, "gzip": False},
                {"method": "GET", "path": "/plain?gz=1", "body": None, "stream": False,
                 "gzip": True},
                {"method": "GET", "path": "/download/%d" % DOWNLOAD_BYTES, "body": None,
                 "stream": False, "gzip": False, "download": True},
                post("/v1/chat/completions", _chat(MODEL, "An API call after the downloads."))]
    raise SystemExit("unknown scenario %r (known: %s)" % (scenario, ", ".join(SCENARIOS)))


def _reply(call):
    """What the mock will answer to `call` (its replies are a pure function of
    the request), so later turns can quote earlier replies as an app would."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import mock_upstream
    hdrs = [[k, v] for k, v in request_headers(call).items()]
    return mock_upstream.plan_reply(call["method"], call["path"], hdrs, body_bytes(call))


def conversation_calls(post):
    """SPEC §4 session resolution, one strategy per pair of calls.

    1-2 fingerprint (turn 2 quotes reply 1); 3-4 a tool round trip (the tool
    result comes back in call 4); 5-6 Responses API previous_response_id;
    7-8 the Chat `user` field; 9 an app-sent X-Xenovia-Session-Id.
    """
    sysm = {"role": "system", "content": "You are a terse test assistant."}
    calls = []
    c1 = post("/v1/chat/completions", {"model": MODEL, "messages": [
        sysm, {"role": "user", "content": "Turn one of a conversation."}]})
    r1 = _reply(c1)
    c2 = post("/v1/chat/completions", {"model": MODEL, "stream": True, "messages": [
        sysm, {"role": "user", "content": "Turn one of a conversation."},
        {"role": "assistant", "content": r1["content"]},
        {"role": "user", "content": "And turn two, streamed."}]})
    calls += [c1, c2]
    c3 = post("/v1/chat/completions", {"model": MODEL, "tools": TOOLS[:1], "messages": [
        sysm, {"role": "user", "content": "Weather in Paris, via the tool."}]})
    r3 = _reply(c3)
    (cid, name, args), = r3["tool_calls"]
    c4 = post("/v1/chat/completions", {"model": MODEL, "tools": TOOLS[:1], "messages": [
        sysm, {"role": "user", "content": "Weather in Paris, via the tool."},
        {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_call_id": cid, "content": "18C and sunny in Paris"}]})
    calls += [c3, c4]
    c5 = post("/v1/responses", {"model": "gpt-4.1-mini", "input": "Start a thread."})
    r5 = _reply(c5)
    c6 = post("/v1/responses", {"model": "gpt-4.1-mini", "input": "Continue the thread.",
                                "previous_response_id": "resp_" + r5["id"]})
    calls += [c5, c6]
    for text in ("Alice asks a first question.", "Alice asks something else."):
        calls.append(post("/v1/chat/completions", {"model": MODEL, "user": "alice-1234",
                                                   "messages": [sysm, {"role": "user",
                                                                       "content": text}]}))
    c9 = post("/v1/chat/completions", {"model": MODEL, "messages": [
        sysm, {"role": "user", "content": "This call names its session."}]})
    c9["headers"] = {"X-Xenovia-Session-Id": FIXED_SESSION}
    calls.append(c9)
    return calls


def body_bytes(call):
    if call["body"] is None:
        return None
    return json.dumps(call["body"], separators=(",", ":")).encode("utf-8")


def body_pieces(call):
    """The body in 3 pieces, for clients that send it chunked."""
    b = body_bytes(call)
    n = len(b)
    return [b[:n // 3], b[n // 3:2 * n // 3], b[2 * n // 3:]]


def request_headers(call):
    """Headers every client sends (besides its own defaults)."""
    h = {"Authorization": "Bearer " + API_KEY}
    if call["body"] is not None:
        h["Content-Type"] = "application/json"
    if call["gzip"]:
        h["Accept-Encoding"] = "gzip"
    h.update(call.get("headers") or {})
    return h


def setup_env(ca):
    """Make the process's CA settings point at the test CA (TLS) or at nothing (plain).

    This machine exports SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE
    globally; a client must not depend on them.
    """
    for v in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
              "all_proxy"):
        os.environ.pop(v, None)
    if ca:
        for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ[v] = ca
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def parse_args(argv):
    """client BASE_URL CA_FILE|- SCENARIO → (base, ca or None, scenario)."""
    if len(argv) != 4:
        raise SystemExit("usage: %s BASE_URL CA_FILE|- SCENARIO" % argv[0])
    base, ca, scenario = argv[1].rstrip("/"), argv[2], argv[3]
    ca = None if ca == "-" else ca
    setup_env(ca)
    return base, ca, scenario


PRINTED_HEADERS = ("content-type", "content-encoding", "transfer-encoding", "x-request-id")


class Transcript:
    """Accumulates one call's response and prints it deterministically."""

    def __init__(self, index, call):
        self.call = call
        self.out = sys.stdout
        self.out.write("== call %d %s %s\n" % (index, call["method"], call["path"]))
        self.body = bytearray()
        self.status = None
        self.headers = []
        self.download = call.get("download", False)
        self.hasher = hashlib.sha256()
        self.nbytes = 0

    def head(self, status, headers):
        """headers: iterable of (name, value) as the client library reports them."""
        self.status = status
        self.headers = [(k.lower(), v) for k, v in headers]
        self.out.write("status: %d\n" % status)
        for name in PRINTED_HEADERS:
            for k, v in self.headers:
                if k == name:
                    self.out.write("%s: %s\n" % (k, v))
        for k, v in sorted(self.headers):
            if k.startswith("x-xenovia-"):
                self.out.write("XV-HEADER %s: %s\n" % (k, v))

    def error(self, exc):
        """The client library raised while reading (a dropped connection)."""
        self.out.write("client-error: %s\n" % type(exc).__name__)

    def data(self, chunk):
        """Decoded body bytes, in whatever pieces the client got them."""
        if self.download:
            self.hasher.update(chunk)
            self.nbytes += len(chunk)
        else:
            self.body += chunk

    def end(self):
        if self.download:
            self.out.write("bytes: %d sha256: %s\n" % (self.nbytes, self.hasher.hexdigest()))
            return
        ctype = dict(self.headers).get("content-type", "")
        if ctype.startswith("text/event-stream"):
            print_sse(bytes(self.body), self.out)
        else:
            try:
                obj = json.loads(self.body.decode("utf-8"))
                self.out.write("body: %s\n" % canon(obj))
            except (UnicodeDecodeError, ValueError):
                self.out.write("raw: %r\n" % bytes(self.body))
        self.out.flush()


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def print_sse(raw, out):
    """Print each SSE event, then what the stream adds up to."""
    text, tool_calls, usage, ndone = [], {}, None, 0
    for block in raw.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, datas = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                datas.append(line[5:].lstrip())
        data = "\n".join(datas)
        if data == "[DONE]":
            ndone += 1
            out.write("sse: [DONE]\n")
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            out.write("sse-raw: %r\n" % data)
            continue
        out.write("sse%s: %s\n" % ("" if event is None else "(" + event + ")", canon(obj)))
        # Chat chunks.
        for ch in obj.get("choices") or []:
            d = ch.get("delta") or {}
            if isinstance(d.get("content"), str):
                text.append(d["content"])
            if isinstance(ch.get("text"), str):
                text.append(ch["text"])
            for tc in d.get("tool_calls") or []:
                slot = tool_calls.setdefault(tc.get("index", 0), {"id": None, "name": "", "arguments": ""})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
        if obj.get("usage"):
            usage = obj["usage"]
        # Responses API events.
        t = obj.get("type", "")
        if t == "response.output_text.delta":
            text.append(obj.get("delta", ""))
        elif t == "response.output_item.added" and obj.get("item", {}).get("type") == "function_call":
            it = obj["item"]
            tool_calls[obj.get("output_index", 0)] = {"id": it.get("call_id"), "name": it.get("name", ""),
                                                      "arguments": ""}
        elif t == "response.function_call_arguments.delta":
            tool_calls.setdefault(obj.get("output_index", 0), {"id": None, "name": "", "arguments": ""})
            tool_calls[obj.get("output_index", 0)]["arguments"] += obj.get("delta", "")
        elif t == "response.completed":
            usage = (obj.get("response") or {}).get("usage")
    out.write("stream-text: %s\n" % json.dumps("".join(text)))
    for idx in sorted(tool_calls):
        tc = tool_calls[idx]
        out.write("stream-tool-call %d: id=%s name=%s arguments=%s\n"
                  % (idx, tc["id"], tc["name"], tc["arguments"]))
    out.write("stream-usage: %s\n" % (canon(usage) if usage else "none"))
    out.write("stream-done-markers: %d\n" % ndone)


class GzipDecoder:
    """Incremental gzip decoding for clients that do not decode (urllib, http.client)."""

    def __init__(self, enabled):
        self.d = zlib.decompressobj(31) if enabled else None

    def feed(self, chunk):
        return self.d.decompress(chunk) if self.d else chunk

    def end(self):
        return self.d.flush() if self.d else b""


def manifest(scenario, outdir):
    os.makedirs(outdir, exist_ok=True)
    for i, call in enumerate(calls_for(scenario), 1):
        fname = "-"
        b = body_bytes(call)
        if b is not None:
            fname = os.path.join(outdir, "body-%d.json" % i)
            with open(fname, "wb") as f:
                f.write(b)
        extra = "; ".join("%s: %s" % kv for kv in (call.get("headers") or {}).items()) or "-"
        sys.stdout.write("%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n"
                         % (i, call["method"], call["path"], int(call["stream"]),
                            int(call["gzip"]), int(call.get("chunked", False)), extra, fname))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "manifest":
        manifest(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: xvclient.py manifest SCENARIO DIR")
