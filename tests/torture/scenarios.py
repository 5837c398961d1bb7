"""scenarios.py — the torture suite's table: one row per scenario.

Each row (a dict) names a request the client writes byte for byte, the
upstream's script (see upstream.py) and how the client does I/O (client.py).
The driver (run_torture.py) runs every row without and with the agent and
compares. Row keys:
  name      unique id (ctest runs groups by prefix)
  req       bytes, or a list of (bytes, delay_s) pieces written in order
  up        list of upstream scripts, one per connection
  io        block | rcvtimeo | poll | epoll | select | ppoll | pselect | pollblock |
            epollblock
            | asyncio   (default block; see client.py)
  poll_tmo  the client's longest single readiness wait (default 0.5 s)
  sigtest   ppoll only: the first read wait checks ppoll's signal mask (client.py)
  tls       run over TLS (default False)
  read_size, read_delay, rcvtimeo, rcvbuf, sndbuf, deadline, shut_wr   client knobs
  rec       records expected with the agent (non-step), None: not checked
  err       how many of them carry `error`, None: not checked
  max_call  longest single socket call allowed with the agent (seconds)
  env       extra agent environment (XENOVIA_*)
  compare   False: the with/without runs legitimately differ (policy);
            `expect` then checks the agent run alone
  expect    name of an extra check in run_torture.py
  classes   issue-7 class(es) the row proves (docs/testing.md)
  pending   why the row fails today (a known bug): skipped unless --with-pending
  up_rcvbuf SO_RCVBUF of the upstream's sockets (a slow uplink)
  prog      "curl": the curl CLI is the program instead of client.py (POSTs
            `body`; req unused; run_torture.py's run_curl)

Invariant: pure data; nothing here touches the network.
"""

import json

BODY = json.dumps({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "hello torture"}]}).encode()
TOOLS_BODY = json.dumps({
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "clean up"}],
    "tools": [{"type": "function", "function": {"name": "drop_database",
                                                 "parameters": {"type": "object"}}}]}).encode()
CHAT = b"/v1/chat/completions"
HOSTH = b"Host: 127.0.0.1\r\n"


def post(body=BODY, extra=b"", target=CHAT, version=b"1.1"):
    return (b"POST " + target + b" HTTP/" + version + b"\r\n" + HOSTH +
            b"Content-Type: application/json\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def get(target=b"/plain", extra=b""):
    return b"GET " + target + b" HTTP/1.1\r\n" + HOSTH + extra + b"\r\n"


REPLY = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                              "total_tokens": 4}}).encode()


def ok(body=REPLY, extra=b"", close=False):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
            (b"Connection: close\r\n" if close else b"") +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def chunked(body=REPLY, size=7, ext=b"", trailer=b""):
    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x" % len(part) + ext + b"\r\n" + part + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


END = b"\r\n\r\n"


def answer(resp, n_heads=1, then=()):
    """Upstream: wait for n request heads, send resp, run `then`, close."""
    return [[("until", END, n_heads), ("send", resp)] + list(then)]


def answer_body(resp, total):
    return [[("bytes", total), ("send", resp)]]


ROWS = []


def row(name, req, up, **kw):
    r = {"name": name, "req": req, "up": up}
    r.update(kw)
    ROWS.append(r)


# ---------------------------------------------------------------- class 1
# Malformed request heads: the agent must release every held byte unchanged
# and record the call with `error`. The upstream answers whatever arrives.
MAL_REQ = {
    "space_in_name": b"Bad Name: x\r\n",
    "ctl_in_name": b"Bad\x01Name: x\r\n",
    "space_before_colon": b"X-Thing : x\r\n",
    "obs_fold": b"X-Thing: a\r\n  folded\r\n",
    "bare_cr": b"X-Thing: a\rb\r\n",
    "nul_in_value": b"X-Thing: a\x00b\r\n",
    "no_colon": b"JustAName\r\n",
    "huge_head": b"X-Big: " + b"a" * 70000 + b"\r\n",
}
for tag, line in MAL_REQ.items():
    req = post(extra=line)
    row("req_mal_%s" % tag, req, answer_body(ok(close=True), len(req)), rec=1, err=1,
        classes=[1])
    reqg = get(extra=line)
    row("req_mal_%s_nonapi" % tag, reqg, answer_body(ok(b"plain", close=True), len(reqg)),
        rec=0, classes=[1])
# Bad request framing.
bad_chunk = (b"POST " + CHAT + b" HTTP/1.1\r\n" + HOSTH + b"Transfer-Encoding: chunked\r\n\r\n"
             b"zz\r\n" + BODY + b"\r\n0\r\n\r\n")
row("req_mal_bad_chunk_size", bad_chunk, answer_body(ok(close=True), len(bad_chunk)),
    rec=1, err=1, classes=[1])
te_gzip = (b"POST " + CHAT + b" HTTP/1.1\r\n" + HOSTH + b"Transfer-Encoding: gzip\r\n"
           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
row("req_mal_te_not_chunked", te_gzip, answer_body(ok(close=True), len(te_gzip)),
    rec=1, err=1, classes=[1])
dup_cl = post(extra=b"Content-Length: 3\r\n")
row("req_mal_conflicting_cl", dup_cl, answer_body(ok(close=True), len(dup_cl)),
    rec=1, err=1, classes=[1])
bad_line = b"POST /v1/chat/completions HTTP/9.9\r\n" + HOSTH + b"\r\n"
row("req_mal_bad_version", bad_line, answer_body(ok(close=True), len(bad_line)), rec=None,
    classes=[1])
# The same malformed heads written in small pieces and over TLS.
req = post(extra=MAL_REQ["space_in_name"])
row("req_mal_space_in_name_split", [(req[i:i + 5], 0) for i in range(0, len(req), 5)],
    answer_body(ok(close=True), len(req)), rec=1, err=1, classes=[1])
row("req_mal_space_in_name_tls", req, answer_body(ok(close=True), len(req)), tls=True,
    rec=1, err=1, classes=[1])
row("req_mal_bad_chunk_size_tls", bad_chunk, answer_body(ok(close=True), len(bad_chunk)),
    tls=True, rec=1, err=1, classes=[1])
row("req_mal_huge_head_tls", post(extra=MAL_REQ["huge_head"]),
    answer_body(ok(close=True), len(post(extra=MAL_REQ["huge_head"]))), tls=True, rec=1, err=1,
    classes=[1])
# Malformed after a good call on the same connection (keep-alive).
good = post()
badk = post(extra=MAL_REQ["obs_fold"])
row("req_mal_after_good", [(good, 0), (badk, 0.3)],
    [[("until", END, 1), ("send", ok()), ("bytes", len(good) + len(badk)),
      ("send", ok(close=True))]], rec=2, err=None, classes=[1])
# (the first call's response is still unread when the connection turns
# passthrough, so its record may carry the error too)

# More request shapes: CL+TE, chunked not last, a NUL in the target, a
# lower-case method, absolute-form and very long targets, CONNECT, Upgrade.
clte = (b"POST " + CHAT + b" HTTP/1.1\r\n" + HOSTH + b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n")
row("req_cl_and_te", clte, answer_body(ok(close=True), len(clte)), rec=1)
te_notlast = (b"POST " + CHAT + b" HTTP/1.1\r\n" + HOSTH + b"Transfer-Encoding: chunked, gzip\r\n"
              b"\r\n%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n")
row("req_mal_te_chunked_not_last", te_notlast, answer_body(ok(close=True), len(te_notlast)),
    rec=1, err=1, classes=[1])
nul_target = b"GET /pla\x00in HTTP/1.1\r\n" + HOSTH + b"\r\n"
row("req_mal_nul_in_target", nul_target, answer_body(ok(b"x", close=True), len(nul_target)),
    rec=None, classes=[1])
lower = post().replace(b"POST", b"post", 1)
row("req_lowercase_method", lower, answer_body(ok(close=True), len(lower)), rec=0)
absf = post(target=b"http://127.0.0.1" + CHAT)
row("req_absolute_form", absf, answer(ok(close=True)), rec=None)
longt = get(target=b"/" + b"t" * 10000)
row("req_long_target", longt, answer_body(ok(b"x", close=True), len(longt)), rec=0)
conn_req = b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n" + HOSTH + b"\r\n"
row("req_connect_tunnel", [(conn_req, 0), (b"\x16\x03\x01 opaque tunnel bytes", 0.2)],
    [[("until", END, 1), ("send", b"HTTP/1.1 200 Connection established\r\n\r\n"),
      ("bytes", len(conn_req) + len(b"\x16\x03\x01 opaque tunnel bytes")),
      ("send", b"tunnel reply"), ("close",)]], rec=0)
upg = b"GET /ws HTTP/1.1\r\n" + HOSTH + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
row("req_upgrade_101", [(upg, 0), (b"\x81\x05hello", 0.2)],
    [[("until", END, 1), ("send", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\n\r\n"),
      ("bytes", len(upg) + 7), ("send", b"\x81\x02hi"), ("close",)]], rec=0)

# The program half-closes in the middle of a request (head or body): what it
# wrote must still reach the upstream, then the FIN.
full_req = post()
for cut in (10, full_req.index(END), full_req.index(END) + 4 + 10):
    row("req_cut_at_%d_shut_wr" % cut, full_req[:cut],
        [[("idle", 0.5), ("send", ok(b"partial", close=True))]], shut_wr=True, rec=None,
        classes=[1])
    row("req_cut_at_%d_close" % cut, full_req[:cut],
        [[("idle", 0.5), ("send", ok(b"partial", close=True))]], no_read="close", rec=None,
        classes=[1])

# Valid request framings pass (no error).
row("req_ok_plain", post(), answer(ok(close=True)), rec=1, err=0)
row("req_ok_tls", post(), answer(ok(close=True)), tls=True, rec=1, err=0)
good_chunked = (b"POST " + CHAT + b" HTTP/1.1\r\n" + HOSTH + b"Transfer-Encoding: chunked\r\n\r\n"
                b"%x;ext=1\r\n" % len(BODY) + BODY + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
row("req_ok_chunk_ext_trailer", good_chunked, answer_body(ok(close=True), len(good_chunked)),
    rec=1, err=0)
row("req_ok_http10", post(version=b"1.0"), answer(ok(close=True)), rec=1, err=0)
row("req_ok_split_bytes", [(post()[i:i + 1], 0) for i in range(0, 80)] + [(post()[80:], 0)],
    answer(ok(close=True)), rec=1, err=0)
row("req_ok_half_close", post(), answer(ok(close=True)), shut_wr=True, rec=1, err=0)
row("req_ok_nonapi_get", get(), answer(ok(b"plain", close=True)), rec=0)

# ---------------------------------------------------------------- class 2
# Pipelining: two requests in one write.
p2 = post() + post(BODY.replace(b"hello", b"again"))
row("pipe_two_api", p2,
    [[("until", END, 2), ("bytes", len(p2)), ("send", ok() + ok(close=True))]],
    rec=2, err=0, expect="pipe_injected_each", classes=[2])
row("pipe_two_api_tls", p2,
    [[("until", END, 2), ("bytes", len(p2)), ("send", ok() + ok(close=True))]],
    tls=True, rec=2, err=0, expect="pipe_injected_each", classes=[2])
p3 = get() + post() + get(b"/other")
row("pipe_mixed_get_api_get", p3,
    [[("until", END, 3), ("bytes", len(p3)),
      ("send", ok(b"one") + ok() + ok(b"three", close=True))]],
    rec=1, err=0, expect="pipe_injected_each", classes=[2])
# Policy: a blocked tool call pipelined first must never reach the upstream.
POL = {"XENOVIA_POLICY": "@policies/block_drop_database.rego"}
pb = post(TOOLS_BODY) + post()
row("pipe_policy_block_first", pb,
    [[("idle", 1.0), ("send", ok() + ok(close=True))]],
    env=POL, compare=False, expect="blocked_first", rec=None, classes=[2])
pb2 = post() + post(TOOLS_BODY)
row("pipe_policy_block_second", pb2,
    [[("idle", 1.0), ("send", ok(close=True))]],
    env=POL, compare=False, expect="blocked_second", rec=None, classes=[2])

# More pipelining: a blocked call in the middle, over TLS, non-blocking;
# a malformed request behind a good one; HEAD then GET; 100-continue.
pb3 = post() + post(TOOLS_BODY) + post()
row("pipe_policy_block_middle", pb3, [[("idle", 1.0), ("send", ok(close=True))]],
    env=POL, compare=False, expect="blocked_second", rec=None, classes=[2])
row("pipe_policy_block_first_tls", pb, [[("idle", 1.0), ("send", ok() + ok(close=True))]],
    env=POL, compare=False, expect="blocked_first", rec=None, tls=True, classes=[2])
row("pipe_policy_block_second_epoll", pb2, [[("idle", 1.0), ("send", ok(close=True))]],
    env=POL, compare=False, expect="blocked_second", rec=None, io="epoll", classes=[2])
row("pipe_policy_block_second_tls", pb2, [[("idle", 1.0), ("send", ok(close=True))]],
    env=POL, compare=False, expect="blocked_second", rec=None, tls=True, classes=[2])
row("pipe_policy_allowed_two", p2,
    [[("until", END, 2), ("bytes", len(p2)), ("send", ok() + ok(close=True))]],
    env=POL, rec=2, err=0, expect="pipe_injected_each", classes=[2])
pm = post() + post(extra=b"Bad Name: x\r\n")
row("pipe_good_then_malformed", pm, answer_body(ok() + ok(close=True), len(pm)), rec=2,
    classes=[1, 2])
ph = b"HEAD /v1/models HTTP/1.1\r\n" + HOSTH + b"\r\n" + get()
row("pipe_head_then_get", ph,
    [[("until", END, 2), ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" +
                          ok(b"plain", close=True))]], rec=None, classes=[2])
pe = post(extra=b"Expect: 100-continue\r\n")
he = pe[:pe.index(END) + 4]
row("req_expect_continue", [(he, 0), (pe[len(he):], 0.3)],
    [[("until", END, 1), ("send", b"HTTP/1.1 100 Continue\r\n\r\n"), ("bytes", len(pe)),
      ("send", ok(close=True))]], rec=1, err=0)

# Partial writes: a small send buffer, blocking and non-blocking.
for io in ("block", "poll"):
    row("req_partial_writes_%s" % io, post(BIGREQ_S := json.dumps({
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "z" * 300000}]}).encode()),
        [[("sleep", 0.3), ("bytes", len(post(BIGREQ_S))), ("send", ok(close=True))]],
        io=io, sndbuf=4096, rec=1, err=0, max_call=0.6 if io != "block" else None)

# ---------------------------------------------------------------- class 3
BIG = b'{"id":"big","choices":[{"index":0,"message":{"role":"assistant","content":"' + \
      b"x" * (3 << 20) + b'"}}]}'
two = [("until", END, 1), ("send", ok()), ("until", END, 2), ("send", ok(BIG, close=True))]
for rs in (65536, 1 << 20, 4 << 20, 8 << 20):
    row("warm_big_read%d" % rs, [(post(), 0), (post(), 0.2)], [two], read_size=rs,
        read_delay=0.5, rec=2, err=0, classes=[3])
row("warm_big_tls", [(post(), 0), (post(), 0.2)], [two], tls=True, read_size=4 << 20,
    read_delay=0.5, rec=2, err=0, classes=[3])
row("warm_big_rcvbuf", [(post(), 0), (post(), 0.2)], [two], read_size=8 << 20,
    rcvbuf=8 << 20, read_delay=0.5, rec=2, err=0, classes=[3])
# With a policy the response is held whole for the response stage; the
# second response arrives in the same read as the end of the first.
row("warm_big_policy", [(post(), 0), (post(), 0.2)], [two], read_size=65536, env=POL,
    read_delay=0.3, rec=2, err=0, classes=[3])
row("warm_big_policy_rcvbuf", [(post(), 0), (post(), 0.2)], [two], read_size=8 << 20,
    rcvbuf=8 << 20, env=POL, read_delay=0.5, rec=2, err=0, classes=[3])
row("warm_big_policy_small_reads", [(post(), 0), (post(), 0.2)], [two], read_size=1024,
    env=POL, read_delay=0.3, rec=2, err=0, deadline=20, classes=[3])
row("cold_big_read4m", post(), answer(ok(BIG, close=True)), read_size=4 << 20,
    read_delay=0.5, rec=1, err=0, classes=[3])

# ---------------------------------------------------------------- class 4
trickle = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
for io in ("rcvtimeo",):
    row("timeo_trickled_head", post(), [[("until", END, 1), ("send", trickle, 8, 0.25)]],
        io="rcvtimeo", rcvtimeo=0.5, max_call=0.9, deadline=20, rec=1, classes=[4])
    row("timeo_trickled_head_tls", post(), [[("until", END, 1), ("send", trickle, 8, 0.25)]],
        io="rcvtimeo", rcvtimeo=0.5, tls=True, max_call=0.9, deadline=20, rec=1, classes=[4])
row("timeo_silent_upstream", post(), [[("until", END, 1), ("sleep", 1.5),
                                        ("send", ok(close=True))]],
    io="rcvtimeo", rcvtimeo=0.3, max_call=0.7, rec=1, classes=[4])
BIGREQ = json.dumps({"model": "gpt-4o-mini",
                     "messages": [{"role": "user", "content": "y" * (6 << 20)}]}).encode()
bigreq = post(BIGREQ)
for io in ("poll", "epoll", "select"):
    row("nonblock_big_request_%s" % io, bigreq,
        [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io=io, max_call=0.6, deadline=20, rec=1, err=0, classes=[4])
# The issue's own program: an asyncio event loop must never stall in the agent.
for tls in (False, True):
    row("nonblock_asyncio_big_request%s" % ("_tls" if tls else ""), bigreq,
        [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io="asyncio", tls=tls, max_call=0.6, deadline=20, rec=1, err=0, classes=[4])
row("nonblock_asyncio_pipelined", p2,
    [[("until", END, 2), ("bytes", len(p2)), ("send", ok() + ok(close=True))]],
    io="asyncio", max_call=0.6, rec=2, err=0, expect="pipe_injected_each", classes=[2, 4])
# The program leaves right after its (queued) request: close, or _exit.
for how in ("close", "_exit"):
    row("nonblock_big_request_then_%s" % how.strip("_"), bigreq,
        [[("sleep", 1.0), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io="poll", no_read=how, deadline=20, rec=None, classes=[4])
# Issue 7 class 4 leftovers. TLS writes on a non-blocking socket: the
# released request is queued, never waited for inside SSL_write.
for io in ("poll", "epoll", "select", "ppoll", "pselect"):
    row("nonblock_big_request_tls_%s" % io, bigreq,
        [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io=io, tls=True, max_call=0.6, deadline=20, rec=1, err=0, classes=[4])
# A program whose response timeout starts when its last write returned: a
# request queued by the agent must not start it early (the upstream takes
# the request only after 1.5 s; without the agent the writes wait for it).
for io in ("poll", "epoll", "select"):
    for tls in (False, True):
        row("nonblock_big_request_read_tmo_%s%s" % (io, "_tls" if tls else ""), bigreq,
            [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
            io=io, tls=tls, sndbuf=65536, up_rcvbuf=65536, read_tmo=1.0, max_call=0.6,
            deadline=20, rec=1, err=0, classes=[4])
# curl (its own BIO): the readiness hooks may not write its SSL; they
# report the socket readable once writable, and curl's SSL_read moves the queue.
row("nonblock_big_request_tls_curl", b"", [[("sleep", 1.5), ("bytes", len(BIGREQ)),
                                            ("idle", 0.2), ("send", ok(close=True))]],
    prog="curl", body=BIGREQ, tls=True, deadline=20, rec=1, err=0, classes=[4])
# ppoll/pselect sleep long (5 s) while the request is still queued: the
# queue must make progress during the wait, not only at its entry.
for io in ("ppoll", "pselect"):
    row("nonblock_big_request_%s" % io, bigreq,
        [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io=io, poll_tmo=5.0, max_call=0.6, deadline=30, rec=1, err=0, classes=[4])
    row("nonblock_big_request_%s_tls" % io, bigreq,
        [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
        io=io, tls=True, poll_tmo=5.0, max_call=0.6, deadline=30, rec=1, err=0, classes=[4])
# ... and a signal the ppoll mask blocks (normally unblocked) arrives during
# the sliced wait: it must not be taken between slices (sig_woke compared).
row("nonblock_big_request_ppoll_signal", bigreq,
    [[("sleep", 1.5), ("bytes", len(bigreq)), ("send", ok(close=True))]],
    io="ppoll", sigtest=True, max_call=0.6, deadline=30, rec=1, err=0, classes=[4])
# A blocking socket without SO_RCVTIMEO read only after poll(timeout) said
# readable: a read must not wait for the rest of a held head past that
# poll's timeout (the program expects it to return).
# The same after epoll_wait (the event's data is mapped back to the fd
# through the program's epoll_ctl registration).
for io in ("pollblock", "epollblock"):
    for tls in (False, True):
        row("%s_trickled_head%s" % (io, "_tls" if tls else ""), post(),
            [[("until", END, 1), ("send", trickle, 8, 0.25)]], io=io, tls=tls,
            poll_tmo=0.4, max_call=0.5, deadline=20, rec=1, classes=[4])
for io in ("poll", "epoll", "select"):
    row("nonblock_trickled_head_%s" % io, post(),
        [[("until", END, 1), ("send", trickle, 5, 0.05)]], io=io, max_call=0.6, rec=1)

# ---------------------------------------------------------------- responses
# Malformed and odd responses to an API call: compared byte for byte.
MAL_RESP = {
    "bad_status_line": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nhi",
    "bad_version": b"HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "space_in_name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nhi",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nX-A : x\r\nContent-Length: 2\r\n\r\nhi",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: x\r\n y\r\nContent-Length: 2\r\n\r\nhi",
    "nul_header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi",
    "conflicting_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!",
    "bad_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nhi",
    "neg_cl": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi",
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "bad_chunk_size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
    "chunk_no_crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n",
    "chunk_huge_size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhi\r\n",
    "huge_head": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 70000 + b"\r\nContent-Length: 2\r\n\r\nhi",
    "bare_lf": b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: " +
               str(len(REPLY)).encode() + b"\n\n" + REPLY,
    "bare_cr": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nhi",
    "te_gzip_close": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot gzip at all",
    "garbage": b"\x00\x01\x02 this is not http\r\n\r\n",
    "http09": b"hi there",
}
for tag, resp in MAL_RESP.items():
    row("resp_mal_%s" % tag, post(), answer(resp), rec=1)
    row("resp_mal_%s_tiny" % tag, post(), answer(resp), rec=1, read_size=1)
for tag in ("space_in_name", "bad_chunk_size", "huge_head", "garbage"):
    row("resp_mal_%s_tls" % tag, post(), answer(MAL_RESP[tag]), tls=True, rec=1)
    split = 4096 if tag == "huge_head" else 3
    row("resp_mal_%s_split" % tag, post(), [[("until", END, 1), ("send", MAL_RESP[tag], split,
                                                                0.01)]], rec=1, io="poll")

# epoll edge-triggered and select readers of a stamped head that does not
# fit a small read (the rest is held for the app; readiness must say so).
for io in ("epoll", "select", "poll"):
    row("resp_small_reads_%s" % io, post(), answer(ok()), rec=1, err=0, io=io, read_size=40)

# Other system calls: write/sendmsg, read/recvmsg/recv_into (blocking and not).
for wapi, rapi, io in (("write", "read", "block"), ("sendmsg", "recvmsg", "block"),
                       ("sendmsg", "recv_into", "poll"), ("write", "read", "epoll")):
    row("syscalls_%s_%s_%s" % (wapi, rapi, io), p2,
        [[("until", END, 2), ("bytes", len(p2)), ("send", ok() + chunked())]],
        wapi=wapi, rapi=rapi, io=io, read_size=100, rec=2, err=0,
        expect="pipe_injected_each", classes=[2])

# Framings and odd but valid responses.
ODD_RESP = {
    "cl": ok(),
    "chunked": chunked(),
    "chunk_ext_trailer": chunked(ext=b";a=b", trailer=b"X-T: 1\r\n"),
    "close_delimited": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + REPLY,
    "http10": b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + REPLY,
    "100_then_200": b"HTTP/1.1 100 Continue\r\n\r\n" + ok(),
    "three_1xx": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                 b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(),
    "204_with_body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
    "304_with_body": b"HTTP/1.1 304 Not Modified\r\n\r\nhello",
    "500_json": b"HTTP/1.1 500 Internal\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "own_trace_id": ok(extra=b"X-Xenovia-Trace-Id: 0123456789abcdef0123456789abcdef\r\n"),
    "empty_reason": b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nhi",
    "gzip_bad": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
    "sse_garbage": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                   b"data: {not json\n\ndata: [DONE]\n\n",
}
for tag, resp in ODD_RESP.items():
    row("resp_%s" % tag, post(), answer(resp), rec=1)
    row("resp_%s_tiny" % tag, post(), answer(resp), rec=1, read_size=3)
    row("resp_%s_trickle" % tag, post(), [[("until", END, 1), ("send", resp, 4, 0.002)]], rec=1,
        io="epoll")
for tag in ("chunked", "100_then_200", "close_delimited"):
    row("resp_%s_tls" % tag, post(), answer(ODD_RESP[tag]), tls=True, rec=1)
# Premature close at every phase of a response (a reset comes 0.2 s after the
# partial bytes, so the program reads them first in both runs).
full = ok()
for cut in (0, 5, 12, 17, 40, full.index(END) + 2, full.index(END) + 4, len(full) - 3):
    row("resp_cut_at_%d" % cut, post(), [[("until", END, 1), ("send", full[:cut]), ("close",)]],
        rec=1, err=1 if cut < len(full) else 0)
    row("resp_rst_at_%d" % cut, post(), [[("until", END, 1), ("send", full[:cut]), ("sleep", 0.2), ("rst",)]],
        rec=1)
    row("resp_rst_at_%d_tls" % cut, post(), [[("until", END, 1), ("send", full[:cut]), ("sleep", 0.2), ("rst",)]],
        rec=1, tls=True)
ch = chunked()
row("resp_cut_mid_chunk", post(), [[("until", END, 1), ("send", ch[:len(ch) - 20]), ("close",)]],
    rec=1, err=1)
row("resp_cut_mid_chunk_tls", post(), [[("until", END, 1), ("send", ch[:len(ch) - 20]),
                                        ("close",)]], tls=True, rec=1, err=1)
# HEAD request, responses with bodies they must not have.
row("head_with_body", b"HEAD /v1/models HTTP/1.1\r\n" + HOSTH + b"\r\n",
    answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", then=[("sleep", 0.1),
                                                                 ("send", b"hello")]), rec=None)
# Keep-alive: two calls, second response cut; and upstream half-close.
row("keepalive_two", [(post(), 0), (post(), 0.2)],
    [[("until", END, 1), ("send", ok()), ("until", END, 2), ("send", chunked())]], rec=2, err=0)
row("upstream_half_close", post(), answer(ok(), then=[("shut_wr",), ("sleep", 0.2)]), rec=1, err=0)
