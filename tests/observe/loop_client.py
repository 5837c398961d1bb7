#!/usr/bin/python3
"""loop_client.py — a long-running HTTPS client for `xenovia observe --pid`.

Usage: loop_client.py BASE_URL CA_FILE COUNT PAUSE_S. Makes COUNT chat calls
(urllib, one connection each), call i asking "loop call i", pausing PAUSE_S
between calls; prints "ok i" (flushed) after each complete answer, exits 0
when every call succeeded, 1 on the first failure.
"""
import json
import ssl
import sys
import time
import urllib.request

base, ca, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
for i in range(1, count + 1):
    body = {"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "loop call %d" % i}]}
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer sk-test-loop"},
                                 method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        answer = json.loads(r.read())
    if not answer.get("choices"):
        print("bad %d" % i, flush=True)
        sys.exit(1)
    print("ok %d" % i, flush=True)
    time.sleep(pause)
