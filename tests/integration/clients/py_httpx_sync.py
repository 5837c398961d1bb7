#!/usr/bin/python3
"""py_httpx_sync.py — integration client using httpx's synchronous Client.

Usage: py_httpx_sync.py BASE_URL CA_FILE|- SCENARIO. One Client per run (one
keep-alive connection), HTTP/1.1 only, trust_env off, TLS verified against the
test CA. Responses are streamed (iter_bytes decodes gzip as it arrives).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xvclient  # noqa: E402

base, ca, scenario = xvclient.parse_args(sys.argv)
import httpx  # noqa: E402

with httpx.Client(verify=ca if ca else True, trust_env=False, timeout=60.0) as client:
    for i, call in enumerate(xvclient.calls_for(scenario), 1):
        t = xvclient.Transcript(i, call)
        content = xvclient.body_bytes(call)
        if call.get("chunked"):
            content = iter(xvclient.body_pieces(call))   # iterator: sent chunked
        with client.stream(call["method"], base + call["path"], content=content,
                           headers=xvclient.request_headers(call)) as r:
            t.head(r.status_code, r.headers.multi_items())
            try:
                for chunk in r.iter_bytes():
                    t.data(chunk)
            except httpx.HTTPError as e:                 # the `cut` scenario
                t.error(e)
        t.end()
