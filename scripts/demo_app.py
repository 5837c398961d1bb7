#!/usr/bin/python3
"""demo_app.py — a tiny "legacy" app for scripts/demo.sh: three OpenAI calls with urllib.

Usage: demo_app.py BASE_URL (e.g. http://127.0.0.1:PORT/v1). Stdlib only, no SDK:
the point of the demo is that the app knows nothing about libxenovia. It makes
a chat call, a streamed chat call, and a call offering two tools (one of them
`drop_database`, which scripts/demo_policy.rego denies once policies are enforced:
the app then gets a 403 and says so).
"""
import json
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1"
HEADERS = {"Authorization": "Bearer sk-demo-not-a-real-key", "Content-Type": "application/json"}


def post(body):
    req = urllib.request.Request(BASE + "/chat/completions", data=json.dumps(body).encode(),
                                 headers=HEADERS, method="POST")
    try:
        return urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as e:
        return e


def main():
    msgs = [{"role": "user", "content": "Hi! Summarise the plot of Hamlet in one line."}]
    r = post({"model": "gpt-4o-mini", "messages": msgs})
    body = json.loads(r.read())
    print("chat   [%d] trace=%s: %s" % (r.status, r.headers.get("X-Xenovia-Trace-Id", "-"),
                                         body["choices"][0]["message"]["content"]))

    # Second turn of the same conversation (the agent keeps it in one session).
    msgs = msgs + [{"role": "assistant", "content": body["choices"][0]["message"]["content"]},
                   {"role": "user", "content": "Now say it again, streamed."}]
    r = post({"model": "gpt-4o-mini", "messages": msgs, "stream": True,
              "stream_options": {"include_usage": True}})
    text = []
    for line in r:
        line = line.decode().strip()
        if line.startswith("data: ") and line != "data: [DONE]":
            for ch in json.loads(line[6:]).get("choices", []):
                text.append(ch.get("delta", {}).get("content") or "")
    print("stream [%d] trace=%s: %s" % (r.status, r.headers.get("X-Xenovia-Trace-Id", "-"),
                                         "".join(text)))

    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
             for n in ("list_tables", "drop_database")]
    r = post({"model": "gpt-4o-mini", "tools": tools,
              "messages": [{"role": "user", "content": "Clean up the staging database."}]})
    body = json.loads(r.read())
    if r.status == 200:
        calls = body["choices"][0]["message"].get("tool_calls") or []
        print("tools  [%d] trace=%s: model wants %s" % (
            r.status, r.headers.get("X-Xenovia-Trace-Id", "-"),
            ", ".join(c["function"]["name"] for c in calls)))
    else:
        print("tools  [%d] blocked: %s" % (r.status, body.get("error", {}).get("message")))


if __name__ == "__main__":
    main()
