"""End to end through the real agent: `xenovia run` (finding libxenovia.so in the build
tree by itself) runs curl against a local plain-HTTP mock of /v1/chat/completions; the
agent's exporter appends records; `xenovia traces` reads them back. Eight curls run at
once to exercise concurrent appends from many processes. Loopback only."""
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, tmpdir, xv  # noqa: E402

curl = shutil.which("curl")
if not curl:
    print("skip: no curl")
    finish()


class Mock(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n))
        out = json.dumps({
            "id": "chatcmpl-e2e", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "lookup", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mock)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d/v1/chat/completions" % srv.server_address[1]
d = tmpdir()
trace = os.path.join(d, "state", "traces.jsonl")
req = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
curl_cmd = [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", url,
            "-H", "Content-Type: application/json", "-d", req]

r = xv("run", "--trace-file", trace, "--", *curl_cmd, env={"XENOVIA_LIB": None})
check(r.returncode == 0 and r.stdout == "200", "curl under xenovia run: 200 (%r %r)" % (r.stdout, r.stderr))
check(r.stderr == "", "nothing on stderr: %r" % r.stderr)
check(os.path.exists(trace), "trace file created by the agent")
if os.path.exists(trace):
    check(stat.S_IMODE(os.stat(trace).st_mode) == 0o600, "trace file mode 0600")
    check(stat.S_IMODE(os.stat(os.path.dirname(trace)).st_mode) == 0o700, "trace dir mode 0700")

# Eight processes at once, all appending to the same file.
script = " & ".join(["'" + "' '".join(curl_cmd) + "'"] * 8) + " & wait"
r = xv("run", "--trace-file", trace, "--", "sh", "-c", script, env={"XENOVIA_LIB": None})
check(r.returncode == 0 and r.stdout == "200" * 8, "8 concurrent curls: all 200")

r = xv("traces", trace, "--json")
recs = json.loads(r.stdout) if r.returncode == 0 else []
calls = [x for x in recs if "step_type" not in x]
steps = [x for x in recs if "step_type" in x]
check(len(calls) == 9 and "malformed" not in r.stderr, "9 call records, none malformed (%d)" % len(calls))
check(all(x.get("model") == "gpt-4o-mini" and x.get("tokens_in") == 9 and x.get("tokens_out") == 3
          for x in calls), "model and tokens recorded")
check(len({x.get("trace_id") for x in calls}) == 9, "nine distinct trace ids")
# The agent may also write a tool-step child record per tool call (SPEC §6).
check(all(x.get("tool_name") == "lookup" for x in steps) and len(steps) in (0, 9),
      "tool steps, if any, one per call (%d)" % len(steps))
r = xv("traces", trace)
check("lookup" in r.stdout and ("9 calls" + (", 9 tool steps" if steps else "")) in r.stdout,
      "table shows the tool call and the counts")

srv.shutdown()
shutil.rmtree(d)
finish()
