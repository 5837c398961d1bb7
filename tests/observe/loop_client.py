#!/usr/bin/python3
"""loop_client.py — a long-running HTTPS client for `xenovia observe --pid`.

Usage: loop_client.py BASE_URL CA_FILE COUNT PAUSE_S [BIG_BYTES]. Makes COUNT
chat calls (urllib, one connection each), call i asking "loop call i", pausing
PAUSE_S between calls; prints "ok i" (flushed) after each complete answer,
exits 0 when every call succeeded, 1 on the first failure. With BIG_BYTES, the
first call's message is padded to that size (one SSL_write of the body).
"""
import json
import ssl
import sys
import time
import urllib.request

base, ca, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
big = int(sys.argv[5]) if len(sys.argv) > 5 else 0
ctx = ssl.create_default_context(cafile=ca)
for i in range(1, count + 1):
    body = {"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "loop call %d" % i}]}
    if i == 1 and big:
        body["messages"].insert(0, {"role": "system", "content": "x" * big})
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
