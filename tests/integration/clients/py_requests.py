#!/usr/bin/python3
"""py_requests.py — integration client using Python `requests` (one Session per run).

Usage: py_requests.py BASE_URL CA_FILE|- SCENARIO. Prints a deterministic
transcript (see xvclient.py). All calls of a scenario share one Session, so
they reuse one keep-alive connection. TLS is verified against the test CA only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xvclient  # noqa: E402

base, ca, scenario = xvclient.parse_args(sys.argv)
import requests  # noqa: E402  (after the CA environment is set)

s = requests.Session()
s.trust_env = False
for i, call in enumerate(xvclient.calls_for(scenario), 1):
    t = xvclient.Transcript(i, call)
    data = xvclient.body_bytes(call)
    if call.get("chunked"):
        data = iter(xvclient.body_pieces(call))   # a generator body: requests sends it chunked
    r = s.request(call["method"], base + call["path"], data=data,
                  headers=xvclient.request_headers(call), stream=True,
                  verify=ca if ca else True, timeout=60)
    t.head(r.status_code, r.headers.items())
    try:
        for chunk in r.iter_content(chunk_size=None):   # decoded (gzip) as it arrives
            t.data(chunk)
    except requests.RequestException as e:               # the `cut` scenario
        t.error(e)
    r.close()
    t.end()
s.close()
