"""`xenovia traces`: table grouped by session then turn, "-" for absent tokens,
malformed lines counted, --json round-trips, --session filters, --follow picks up
appended lines (and a rotated file), default path from XENOVIA_TRACE_FILE."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import FIXTURES, XENOVIA, check, finish, tmpdir, xv  # noqa: E402

fixture = os.path.join(FIXTURES, "traces.jsonl")
valid = []
for line in open(fixture):
    try:
        o = json.loads(line)
        if isinstance(o, dict):
            valid.append(o)
    except ValueError:
        pass
SA = "11111111-1111-4111-8111-111111111111"
SB = "22222222-2222-4222-8222-222222222222"

# -- table ----------------------------------------------------------------------
r = xv("traces", fixture)
out = r.stdout
check(r.returncode == 0, "table exits 0 (%s)" % r.stderr.strip())
ia, ib, inone = out.find("session " + SA), out.find("session " + SB), out.find("session (none)")
check(0 <= ia < ib < inone, "sessions in order of first appearance, one header each")
check(out.count("session " + SA) == 1, "session A grouped once")
block_a = out[ia:ib]
t1, t2, t3 = block_a.find("eeee5555"), block_a.find("aaaa1111"), block_a.find("abcdef00")
check(0 <= t1 < t2 < t3, "turns ordered 1, 2, 3 within the session (file had 2 before 1)")
check("(2 calls, 1 tool step, path /support, flow ci-42)" in block_a and "flow ci-42" in block_a,
      "session header: count, path, flow")
row_b = [l for l in out.splitlines() if "99990000" in l]
check(len(row_b) == 1, "session B row present once")
if row_b:
    cols = row_b[0].split()
    # TURN DATE TIME MODEL TYPE STREAM STATUS IN OUT LAT TTFT POLICY TOOLS TRACE
    check(cols[0] == "1" and cols[3] == "gpt-4.1" and cols[4] == "responses" and cols[5] == "yes",
          "B: turn, model, type, stream: %r" % cols[:6])
    check(cols[6] == "403!", "B: status with error mark: %r" % cols[6])
    check(cols[7] == "-" and cols[8] == "-", "B: absent tokens print '-': %r" % cols[7:9])
    check(cols[9] == "15" and cols[10] == "7", "B: latency and TTFT")
    check(cols[11] == "block(no-drop)", "B: policy outcome(rule)")
    check(cols[12] == "get_weather,drop_database", "B: tool call names")
    check(cols[13] == "99990000", "B: short trace id")
    check(cols[1] == "2026-11-27" and cols[2] == "01:03:00", "B: time from start_time")
check("! connection closed mid-stream" in out, "error shown under the row")
row_a2 = [l for l in out.splitlines() if "aaaa1111" in l][0].split()
check(row_a2[7] == "120" and row_a2[8] == "33" and row_a2[9] == "812.4" and row_a2[10] == "-",
      "A turn 2: tokens, fractional latency, no TTFT: %r" % row_a2[7:11])
emb = [l for l in out.splitlines() if "12345678" in l][0].split()
check(emb[7] == "8" and emb[8] == "-", "embeddings: tokens_in only")
tool = [l for l in out.splitlines() if "abcdef00" in l][0].split()
check(tool[4] == ">" and tool[5] == "tool_result" and tool[7] == "ok" and "get_weather" in tool,
      "tool step child record marked '>', with its tool name: %r" % tool)
check("4 calls, 1 tool step in 3 sessions; 3 malformed lines skipped" in out,
      "footer counts calls, sessions and malformed lines: %r" % out.strip().splitlines()[-1])
check("second" not in out, "content is not printed in the table")

# -- --json -----------------------------------------------------------------------
r = xv("traces", fixture, "--json")
try:
    arr = json.loads(r.stdout)
except ValueError:
    arr = None
check(arr == valid, "--json round-trips every valid record in file order")
check("3 malformed lines skipped" in r.stderr, "--json: malformed count on stderr")

r = xv("traces", fixture, "--json", "--session", SB)
arr = json.loads(r.stdout)
check(len(arr) == 1 and arr[0]["session_id"] == SB, "--session filters --json")
r = xv("traces", "--session=" + SA, fixture)
check("session " + SA in r.stdout and SB not in r.stdout
      and "2 calls, 1 tool step in 1 session" in r.stdout,
      "--session filters the table")
r = xv("traces", fixture, "--session", "nope")
check(r.returncode == 0 and "no calls for session nope" in r.stdout, "unknown session: says so")

# -- default path and errors --------------------------------------------------------
r = xv("traces", "--json", env={"XENOVIA_TRACE_FILE": fixture})
check(r.returncode == 0 and json.loads(r.stdout) == valid, "default path from XENOVIA_TRACE_FILE")
d = tmpdir()
r = xv("traces", env={"XDG_STATE_HOME": d})
check(r.returncode == 1 and os.path.join(d, "xenovia", "traces.jsonl") in r.stderr,
      "missing default file under XDG_STATE_HOME: exit 1 naming it")
r = xv("traces", "--bogus")
check(r.returncode == 2, "unknown flag: 2")
empty = os.path.join(d, "empty.jsonl")
open(empty, "w").close()
r = xv("traces", empty, "--json")
check(r.returncode == 0 and json.loads(r.stdout) == [], "empty file: []")
# A last line without newline still counts when not following.
nonl = os.path.join(d, "nonl.jsonl")
with open(nonl, "w") as f:
    f.write(json.dumps(valid[0]) + "\n" + json.dumps(valid[1]))
check(len(json.loads(xv("traces", nonl, "--json").stdout)) == 2, "final line without newline")
# Over-long and binary junk lines do not crash it.
junk = os.path.join(d, "junk.jsonl")
with open(junk, "wb") as f:
    f.write(b"\x00\xff{{{\n" + b"[" * 100000 + b"\n" + json.dumps(valid[0]).encode() + b"\n")
r = xv("traces", junk, "--json")
check(r.returncode == 0 and len(json.loads(r.stdout)) == 1 and "2 malformed" in r.stderr,
      "junk lines skipped and counted")

# -- --follow ---------------------------------------------------------------------
live = os.path.join(d, "live.jsonl")
with open(live, "w") as f:
    f.write(json.dumps(valid[0]) + "\n")
env = dict(os.environ)
p = subprocess.Popen([XENOVIA, "traces", live, "--follow", "--json"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=env)


def read_lines(n, timeout=10):
    got = []
    end = time.time() + timeout
    while len(got) < n and time.time() < end:
        line = p.stdout.readline()
        if line:
            got.append(json.loads(line))
    return got


check(read_lines(1) == [valid[0]], "--follow prints what is already there")
with open(live, "a") as f:
    f.write(json.dumps(valid[1])[:20])          # half a line: not yet
    f.flush()
    time.sleep(0.5)
    f.write(json.dumps(valid[1])[20:] + "\n")   # now complete
    f.write("garbage\n")
    f.write(json.dumps(valid[2]) + "\n")
check(read_lines(2) == [valid[1], valid[2]], "--follow picks up appended lines, whole only")
os.rename(live, live + ".1")                      # rotation: a new file at the path
with open(live, "w") as f:
    f.write(json.dumps(valid[3]) + "\n")
check(read_lines(1) == [valid[3]], "--follow follows a rotated file")
p.send_signal(signal.SIGINT)
try:
    _, err = p.communicate(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    _, err = p.communicate()
check(p.returncode == 0 and "4 calls;" in err and "1 malformed" in err,
      "SIGINT ends --follow with a footer (rc=%s, %r)" % (p.returncode, err.strip()))

# Table form of --follow, with a session filter.
p = subprocess.Popen([XENOVIA, "traces", fixture, "-f", "--session", SB], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
time.sleep(1.0)
p.send_signal(signal.SIGTERM)
out, _ = p.communicate(timeout=10)
check("SESSION" in out and "99990000" in out and "aaaa1111" not in out and "1 call" in out,
      "--follow table filtered by session")

shutil.rmtree(d)
finish()
