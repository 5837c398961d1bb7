#!/usr/bin/python3
"""py_urllib.py — integration client using the standard library only.

Usage: py_urllib.py BASE_URL CA_FILE|- SCENARIO. Single calls go through
urllib.request (a new connection each, `Connection: close`); the `keepalive`
and `chunked_req` scenarios use http.client (which urllib is built on) with one
persistent connection, since urllib.request never reuses connections and cannot
send a chunked body. Neither decodes
gzip, so the client inflates it itself, incrementally.
"""
import http.client
import os
import ssl
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xvclient  # noqa: E402

base, ca, scenario = xvclient.parse_args(sys.argv)
ctx = ssl.create_default_context(cafile=ca) if ca else None
calls = xvclient.calls_for(scenario)


def read_all(resp, t):
    dec = xvclient.GzipDecoder(resp.headers.get("Content-Encoding", "") == "gzip")
    try:
        while True:
            chunk = resp.read1(16384) if hasattr(resp, "read1") else resp.read(16384)
            if not chunk:
                break
            t.data(dec.feed(chunk))
        t.data(dec.end())
    except (http.client.HTTPException, OSError) as e:    # the `cut` scenario
        t.error(e)


if scenario in ("keepalive", "chunked_req"):
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for i, call in enumerate(calls, 1):
        t = xvclient.Transcript(i, call)
        if call.get("chunked"):
            # An iterable body with encode_chunked: http.client sends it chunked.
            hdrs = dict(xvclient.request_headers(call), **{"Transfer-Encoding": "chunked"})
            conn.request(call["method"], u.path + call["path"],
                         body=iter(xvclient.body_pieces(call)), headers=hdrs,
                         encode_chunked=True)
        else:
            conn.request(call["method"], u.path + call["path"],
                         body=xvclient.body_bytes(call), headers=xvclient.request_headers(call))
        resp = conn.getresponse()
        t.head(resp.status, resp.getheaders())
        read_all(resp, t)
        resp.read()      # reach the end so http.client lets the connection be reused
        t.end()
    conn.close()
else:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    for i, call in enumerate(calls, 1):
        t = xvclient.Transcript(i, call)
        req = urllib.request.Request(base + call["path"], data=xvclient.body_bytes(call),
                                     headers=xvclient.request_headers(call),
                                     method=call["method"])
        try:
            resp = opener.open(req, timeout=60)
        except urllib.error.HTTPError as e:     # 4xx/5xx: still a response to print
            resp = e
        t.head(resp.status, resp.headers.items())
        read_all(resp, t)
        resp.close()
        t.end()
